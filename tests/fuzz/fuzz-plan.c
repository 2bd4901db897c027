/*
 * fuzz-plan.c - libFuzzer harness for the plan-file parser,
 * mg_plan_parse_file() (migration/plan.c).
 *
 * The input is the file's text.  It is written to a memfd and parsed
 * through /proc/self/fd/N, so the parser runs exactly as for a file on disk,
 * three times: 2^4 bins on 4 workers from the router's start (bin b on
 * worker b mod 4); 100 bins on 3 workers from a start given explicitly;
 * and with room for only 8 bytes of message.  Each result is checked
 * against mg_plan.h: a parsed plan has steps in strictly increasing time,
 * moves in strictly increasing bin order, bins and workers in range, and
 * every move changes its bin's owner (replayed from the start); a failure
 * leaves *out untouched and a NUL-terminated message starting with the
 * path.  A broken promise aborts, which libFuzzer reports as a crash.
 *
 * Built with clang -fsanitize=fuzzer by `make fuzz`; built with cc and
 * tests/fuzz/replay.c it replays tests/fuzz/plan/corpus under `make test`.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migration/mg_plan.h"
#include "tests/fuzz/fuzz.h"

static int fd = -1;
static char path[64];

#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "fuzz-plan: %s:%d: broken: %s\n", \
				__FILE__, __LINE__, #cond);               \
			abort();                                          \
		}                                                         \
	} while (0)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = memfd_create("plan", 0);
	if (fd < 0) {
		perror("fuzz-plan: memfd_create");
		exit(1);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

static void
check_plan(const struct mg_plan *p, uint32_t nbins, uint32_t nworkers,
	   const uint16_t *start)
{
	uint16_t *owner = malloc(sizeof(*owner) * nbins);
	uint32_t b, i, k;

	CHECK(owner);
	CHECK(p->nbins == nbins && p->nworkers == nworkers);
	/* nsteps may be 0: step lines that only name current owners */
	for (b = 0; b < nbins; b++)
		owner[b] = start ? start[b] : (uint16_t)(b % nworkers);
	for (i = 0; i < p->nsteps; i++) {
		const struct mg_step *s = &p->steps[i];

		CHECK(i == 0 || s->time > p->steps[i - 1].time);
		CHECK(s->nmoves > 0);
		for (k = 0; k < s->nmoves; k++) {
			const struct mg_move *m = &s->moves[k];

			CHECK(k == 0 || m->bin > s->moves[k - 1].bin);
			CHECK(m->bin < nbins && m->worker < nworkers);
			CHECK(owner[m->bin] != m->worker);
			owner[m->bin] = (uint16_t)m->worker;
		}
	}
	CHECK(!memcmp(owner, mg_plan_final(p), sizeof(*owner) * nbins));
	free(owner);
}

static void
parse_once(uint32_t nbins, uint32_t nworkers, const uint16_t *start,
	   size_t errlen)
{
	struct mg_plan *plan = (struct mg_plan *)&plan;
	char err[256];
	int rc;

	memset(err, 'x', sizeof(err));
	rc = mg_plan_parse_file(&plan, path, nbins, nworkers, start, err,
				errlen);
	if (rc == 0) {
		check_plan(plan, nbins, nworkers, start);
		mg_plan_destroy(plan);
		return;
	}
	CHECK(rc == -EINVAL || rc == -ENOMEM || rc == -EIO);
	CHECK(plan == (struct mg_plan *)&plan);
	CHECK(memchr(err, '\0', errlen));
	CHECK(!strncmp(err, path,
		       errlen - 1 < strlen(path) ? errlen - 1 : strlen(path)));
	CHECK(err[errlen] == 'x'); /* nothing written past errlen */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t start[100];
	uint32_t b;

	if (fd < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	if (ftruncate(fd, 0) ||
	    (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
		perror("fuzz-plan: memfd");
		exit(1);
	}
	parse_once(16, 4, NULL, 200);
	for (b = 0; b < 100; b++)
		start[b] = (uint16_t)(b * 7 % 3);
	parse_once(100, 3, start, 200);
	parse_once(16, 4, NULL, 8);
	return 0;
}
