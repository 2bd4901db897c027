/*
 * t-migration-plan.c - migration plans, plan files and strategies.
 *
 * Plan files are written to /tmp with mkstemp and removed afterwards.  The
 * strategy tests draw random assignments from a printed seed (MG_SEED=...
 * reruns one) and check every schedule against an independent model: the
 * steps applied in order turn `from` into `to`, each moving bin moves
 * exactly once, and batched steps are matchings, exactly Δ of them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migration/mg_plan.h"
#include "numa/mg_base.h"
#include "tests/mg_test.h"

static struct mg_plan not_a_plan; /* out-parameters must stay untouched */
static struct mg_step not_steps;

static uint16_t *
alloc_map(uint32_t nbins)
{
	uint16_t *m = malloc(sizeof(*m) * nbins);

	assert_non_null(m);
	return m;
}

static uint16_t *
round_robin(uint32_t nbins, uint32_t nworkers)
{
	uint16_t *m = alloc_map(nbins);
	uint32_t b;

	for (b = 0; b < nbins; b++)
		m[b] = (uint16_t)(b % nworkers);
	return m;
}

/*
 * Everything a user can read from a plan, as bytes, so that "a failed call
 * changed nothing" is one memcmp.
 */
static unsigned char *
plan_bytes(const struct mg_plan *p, size_t *len)
{
	size_t n = sizeof(p->nsteps) + sizeof(uint16_t) * p->nbins, off = 0;
	unsigned char *buf;
	uint32_t i;

	for (i = 0; i < p->nsteps; i++)
		n += sizeof(uint64_t) + sizeof(uint32_t) +
		     sizeof(struct mg_move) * p->steps[i].nmoves;
	buf = malloc(n);
	assert_non_null(buf);
	memcpy(buf + off, &p->nsteps, sizeof(p->nsteps));
	off += sizeof(p->nsteps);
	for (i = 0; i < p->nsteps; i++) {
		const struct mg_step *s = &p->steps[i];

		memcpy(buf + off, &s->time, sizeof(s->time));
		off += sizeof(s->time);
		memcpy(buf + off, &s->nmoves, sizeof(s->nmoves));
		off += sizeof(s->nmoves);
		memcpy(buf + off, s->moves, sizeof(*s->moves) * s->nmoves);
		off += sizeof(*s->moves) * s->nmoves;
	}
	memcpy(buf + off, mg_plan_final(p), sizeof(uint16_t) * p->nbins);
	*len = n;
	return buf;
}

/* ---- plans ---------------------------------------------------------------- */

static void
test_create(void **state)
{
	uint16_t start[4] = {0, 1, 2, 4};
	struct mg_plan *p = &not_a_plan;
	const uint16_t *f;

	(void)state;
	assert_int_equal(mg_plan_create(&p, 0, 4, NULL), -EINVAL);
	assert_int_equal(mg_plan_create(&p, 4, 0, NULL), -EINVAL);
	assert_int_equal(mg_plan_create(&p, 4, 65536, NULL), -EINVAL);
	assert_int_equal(mg_plan_create(&p, 4, 4, start), -EINVAL);
	assert_ptr_equal(p, &not_a_plan);

	start[3] = 3;
	assert_int_equal(mg_plan_create(&p, 4, 4, start), 0);
	start[0] = 2; /* the plan has its own copy */
	assert_int_equal(p->nsteps, 0);
	f = mg_plan_final(p);
	assert_int_equal(f[0], 0);
	assert_int_equal(f[3], 3);
	mg_plan_destroy(p);

	/* NULL start: round-robin; the largest worker count. */
	assert_int_equal(mg_plan_create(&p, 1 << 17, 65535, NULL), 0);
	f = mg_plan_final(p);
	assert_int_equal(f[65534], 65534);
	assert_int_equal(f[65535], 0);
	assert_int_equal(f[65536], 1);
	mg_plan_destroy(p);
	mg_plan_destroy(NULL);
}

static void
test_add_step_refused(void **state)
{
	static const struct {
		const char *what;
		uint64_t time;
		uint32_t n;
		struct mg_move m[3];
	} bad[] = {
		{"same time", 10, 1, {{3, 0}}},
		{"earlier time", 9, 1, {{3, 0}}},
		{"earlier time, no moves", 9, 0, {{0, 0}}},
		{"bin out of range", 11, 1, {{16, 0}}},
		{"bin far out of range", 11, 1, {{UINT32_MAX, 0}}},
		{"worker out of range", 11, 1, {{3, 4}}},
		{"worker far out of range", 11, 1, {{3, UINT32_MAX}}},
		{"bad move last", 11, 3, {{3, 0}, {4, 3}, {7, 4}}},
		{"bin twice", 11, 3, {{3, 2}, {7, 0}, {3, 1}}},
		{"bin twice as no-ops", 11, 2, {{3, 3}, {3, 3}}},
		{"bin twice, same move", 11, 2, {{6, 0}, {6, 0}}},
	};
	static const struct mg_move first[] = {{5, 3}, {0, 1}};
	unsigned char *before, *after;
	size_t nbefore, nafter, i;
	struct mg_plan *p;

	(void)state;
	assert_int_equal(mg_plan_create(&p, 16, 4, NULL), 0);
	assert_int_equal(mg_plan_add_step(p, 10, first, 2), 0);
	before = plan_bytes(p, &nbefore);
	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		print_message("# refused: %s\n", bad[i].what);
		assert_int_equal(
			mg_plan_add_step(p, bad[i].time, bad[i].m, bad[i].n),
			-EINVAL);
		after = plan_bytes(p, &nafter);
		assert_int_equal(nafter, nbefore);
		assert_memory_equal(after, before, nbefore);
		free(after);
	}
	free(before);
	assert_int_equal(mg_plan_add_step(p, 11, bad[0].m, 1), 0);
	assert_int_equal(p->nsteps, 2);
	mg_plan_destroy(p);
}

static void
test_add_step_noops(void **state)
{
	/* Round-robin over 4 workers: bin b starts on b % 4. */
	static const struct mg_move mixed[] = {
		{9, 1}, {2, 0}, {5, 1}, {0, 3}, {13, 1},
	};
	static const struct mg_move noops[] = {{1, 1}, {6, 2}};
	static const struct mg_move again[] = {{0, 3}};
	static const struct mg_move back[] = {{0, 0}};
	const uint16_t *f;
	struct mg_plan *p;

	(void)state;
	assert_int_equal(mg_plan_create(&p, 16, 4, NULL), 0);

	/* Only 2->0 and 0->3 move; stored in bin order. */
	assert_int_equal(mg_plan_add_step(p, 5, mixed, 5), 0);
	assert_int_equal(p->nsteps, 1);
	assert_int_equal(p->steps[0].time, 5);
	assert_int_equal(p->steps[0].nmoves, 2);
	assert_int_equal(p->steps[0].moves[0].bin, 0);
	assert_int_equal(p->steps[0].moves[0].worker, 3);
	assert_int_equal(p->steps[0].moves[1].bin, 2);
	assert_int_equal(p->steps[0].moves[1].worker, 0);

	/* A step of no-ops, or of nothing, is not appended. */
	assert_int_equal(mg_plan_add_step(p, 8, noops, 2), 0);
	assert_int_equal(mg_plan_add_step(p, 9, NULL, 0), 0);
	assert_int_equal(p->nsteps, 1);

	/* No-ops are judged against the owner at that point of the plan. */
	assert_int_equal(mg_plan_add_step(p, 6, again, 1), 0);
	assert_int_equal(p->nsteps, 1);
	assert_int_equal(mg_plan_add_step(p, 7, back, 1), 0);
	assert_int_equal(p->nsteps, 2);
	f = mg_plan_final(p);
	assert_int_equal(f[0], 0);
	assert_int_equal(f[2], 0);
	assert_int_equal(f[9], 1);
	mg_plan_destroy(p);
}

static void
test_chains(void **state)
{
	/* Bin 4 starts on worker 1 (4 % 3): 1 -> 2 -> 0 -> 1, one epoch apart. */
	static const struct mg_move ab[] = {{4, 2}}, bc[] = {{4, 0}},
				    ca[] = {{4, 1}};
	struct mg_plan *p;
	uint32_t i;

	(void)state;
	assert_int_equal(mg_plan_create(&p, 8, 3, NULL), 0);
	assert_int_equal(mg_plan_add_step(p, 0, ab, 1), 0);
	assert_int_equal(mg_plan_add_step(p, 1, bc, 1), 0);
	assert_int_equal(mg_plan_add_step(p, 2, ca, 1), 0);
	assert_int_equal(mg_plan_add_step(p, UINT64_MAX, ab, 1), 0);
	assert_int_equal(p->nsteps, 4);
	for (i = 0; i < 3; i++) {
		assert_int_equal(p->steps[i].time, i);
		assert_int_equal(p->steps[i].nmoves, 1);
	}
	assert_int_equal(p->steps[2].moves[0].worker, 1);
	assert_int_equal(mg_plan_final(p)[4], 2);
	/* Nothing can follow the largest time. */
	assert_int_equal(mg_plan_add_step(p, UINT64_MAX, bc, 1), -EINVAL);
	mg_plan_destroy(p);
}

/* ---- plan files ----------------------------------------------------------- */

static char *
write_tmp(const char *data, size_t len)
{
	char *path = strdup("/tmp/t-migration-plan-XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), len);
	assert_int_equal(close(fd), 0);
	return path;
}

static void
check_moves(const struct mg_step *s, uint64_t time, uint32_t n,
	    const struct mg_move *m)
{
	uint32_t i;

	assert_int_equal(s->time, time);
	assert_int_equal(s->nmoves, n);
	for (i = 0; i < n; i++) {
		assert_int_equal(s->moves[i].bin, m[i].bin);
		assert_int_equal(s->moves[i].worker, m[i].worker);
	}
}

static void
test_parse_good(void **state)
{
	static const char text[] =
		"# a plan for 16 bins on 4 workers\n"
		"\n"
		"  10 3 1   5 2 # two moves\n"
		"\t \n"
		"11\t3 2\r\n"
		"12 9 1 # a no-op line: bin 9 is on worker 1 already\n"
		"13 map 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 0#map, comment glued\n"
		"   # indented comment\n"
		"014 0 0 3 1"; /* leading zero, no final newline */
	static const struct mg_move s10[] = {{3, 1}, {5, 2}}, s11[] = {{3, 2}},
				    s14[] = {{0, 0}, {3, 1}};
	char err[256] = "", *path = write_tmp(text, sizeof(text) - 1);
	struct mg_plan *p = NULL;
	const uint16_t *f;
	uint32_t b;

	(void)state;
	assert_int_equal(
		mg_plan_parse_file(&p, path, 16, 4, NULL, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(p->nsteps, 4);
	check_moves(&p->steps[0], 10, 2, s10);
	check_moves(&p->steps[1], 11, 1, s11);
	/* Map (b + 1) % 4: bin 3 (now on 2) moves, bin 5 (now on 2) not. */
	assert_int_equal(p->steps[2].time, 13);
	assert_int_equal(p->steps[2].nmoves, 15);
	for (b = 0; b < 15; b++) {
		uint32_t bin = b < 5 ? b : b + 1;

		assert_int_equal(p->steps[2].moves[b].bin, bin);
		assert_int_equal(p->steps[2].moves[b].worker, (bin + 1) % 4);
	}
	check_moves(&p->steps[3], 14, 2, s14);
	f = mg_plan_final(p);
	for (b = 0; b < 16; b++)
		assert_int_equal(f[b], b == 0 ? 0 : b == 3 ? 1 : (b + 1) % 4);
	mg_plan_destroy(p);
	unlink(path);
	free(path);
}

static void
test_parse_noops_and_extremes(void **state)
{
	static const char noops[] = "1 0 0 1 1\n2 map 0 1 0 1\n";
	static const char extremes[] = "0 3 0\n18446744073709551615 3 1\n";
	uint16_t start[4] = {0, 1, 0, 1};
	struct mg_plan *p = NULL;
	char *path;

	(void)state;
	/* Only no-ops: a valid plan without steps (not an empty file). */
	path = write_tmp(noops, sizeof(noops) - 1);
	assert_int_equal(mg_plan_parse_file(&p, path, 4, 2, start, NULL, 0), 0);
	assert_int_equal(p->nsteps, 0);
	mg_plan_destroy(p);
	unlink(path);
	free(path);

	path = write_tmp(extremes, sizeof(extremes) - 1);
	assert_int_equal(mg_plan_parse_file(&p, path, 4, 2, start, NULL, 0), 0);
	assert_int_equal(p->nsteps, 2);
	assert_int_equal(p->steps[0].time, 0);
	assert_int_equal(p->steps[1].time, UINT64_MAX);
	mg_plan_destroy(p);
	unlink(path);
	free(path);
}

/*
 * Parse @data (@len bytes) for @nbins bins on @nworkers round-robin and
 * expect -EINVAL with exactly "path:line: reason", or "path: reason" for
 * line 0.
 */
static void
expect_bad(const char *data, size_t len, uint32_t nbins, uint32_t nworkers,
	   unsigned line, const char *reason)
{
	char err[256], want[512], *path = write_tmp(data, len);
	struct mg_plan *p = &not_a_plan;

	if (line)
		snprintf(want, sizeof(want), "%s:%u: %s", path, line, reason);
	else
		snprintf(want, sizeof(want), "%s: %s", path, reason);
	assert_int_equal(mg_plan_parse_file(&p, path, nbins, nworkers, NULL,
					    err, sizeof(err)),
			 -EINVAL);
	assert_ptr_equal(p, &not_a_plan);
	assert_string_equal(err, want);
	unlink(path);
	free(path);
}

#define BAD(text, line, reason) \
	expect_bad(text, sizeof(text) - 1, 4096, 16, line, reason)

static void
test_parse_bad_lines(void **state)
{
	(void)state;
	BAD("1 1 1\n2 2 2\n3 3 3\n4 4 4\n5 5 5\n6 6 6\n7 5000 1\n", 7,
	    "bin 5000 does not exist (2^12 bins)");
	BAD("1 4096 1\n", 1, "bin 4096 does not exist (2^12 bins)");
	BAD("12 1 1\n# comment\n10 2 2\n", 3,
	    "time 10 is not after the previous step (12)");
	BAD("5 1 1\n5 2 2\n", 2, "time 5 is not after the previous step (5)");
	/* Also after a line that moved nothing (bin 0 is on worker 0). */
	BAD("20 0 0\n10 1 2\n", 2,
	    "time 10 is not after the previous step (20)");
	BAD("\n\n\n4 17 1 17 2\n", 4, "bin 17 appears twice in one step");
	BAD("4 17 1 17 1\n", 1, "bin 17 appears twice in one step");
	BAD("4 3 0 17 2 9 9 17 2\n", 1, "bin 17 appears twice in one step");
	BAD("1 1 1\n2 9\n", 2, "bin 9 has no worker");
	BAD("1 1 1 2 # comment\n", 1, "bin 2 has no worker");
	BAD("1 9 16\n", 1, "bin 9: worker 16 does not exist (16 workers)");
	BAD("x 1 1\n", 1, "time 'x' is not a number");
	BAD("-1 1 1\n", 1, "time '-1' is not a number");
	BAD("+1 1 1\n", 1, "time '+1' is not a number");
	BAD("0x10 1 1\n", 1, "time '0x10' is not a number");
	BAD("1.5 1 1\n", 1, "time '1.5' is not a number");
	BAD("18446744073709551616 1 1\n", 1,
	    "time '18446744073709551616' is out of range");
	BAD("1 abc 1\n", 1, "bin 'abc' is not a number");
	BAD("1 -1 1\n", 1, "bin '-1' is not a number");
	BAD("1 99999999999999999999 1\n", 1,
	    "bin '99999999999999999999' is out of range");
	BAD("1 1 w\n", 1, "bin 1: worker 'w' is not a number");
	BAD("1 1 2x\n", 1, "bin 1: worker '2x' is not a number");
	BAD("7\n", 1, "time 7 has no moves");
	BAD("1 1 1\n7 # nothing\n", 2, "time 7 has no moves");
	BAD("1 map\n", 1, "map names 0 workers, expected 4096 (one per bin)");
	BAD("1 map 0 1 2\n", 1,
	    "map names 3 workers, expected 4096 (one per bin)");
	BAD("1 MAP 0\n", 1, "bin 'MAP' is not a number");
	BAD("1 1 1\n2 2\0 2\n", 2, "line contains a NUL byte");
	BAD("", 0, "empty plan");
	BAD("# only a comment\n\n   \n", 0, "empty plan");
	expect_bad("1 100 0\n", 8, 100, 1, 1,
		   "bin 100 does not exist (100 bins)");
	expect_bad("1 0 1\n", 6, 100, 1, 1,
		   "bin 0: worker 1 does not exist (1 worker)");
}

/* A map line for 4096 bins on 16 workers, with @n workers and a bad one. */
static char *
map_line(uint32_t n, uint32_t bad_bin)
{
	char *s = malloc(16 + 6 * (size_t)n), *q = s;
	uint32_t b;

	assert_non_null(s);
	q += sprintf(q, "3 map");
	for (b = 0; b < n; b++)
		q += sprintf(q, " %u", b == bad_bin ? 16 : (b * 7) % 16);
	sprintf(q, "\n");
	return s;
}

static void
test_parse_bad_maps(void **state)
{
	char *s;

	(void)state;
	s = map_line(4095, UINT32_MAX);
	expect_bad(s, strlen(s), 4096, 16, 1,
		   "map names 4095 workers, expected 4096 (one per bin)");
	free(s);
	s = map_line(4097, UINT32_MAX);
	expect_bad(s, strlen(s), 4096, 16, 1,
		   "map names 4097 workers, expected 4096 (one per bin)");
	free(s);
	s = map_line(4096, 4095);
	expect_bad(s, strlen(s), 4096, 16, 1,
		   "bin 4095: worker 16 does not exist (16 workers)");
	free(s);

	/* The full map is fine, and the plan then equals it. */
	s = map_line(4096, UINT32_MAX);
	{
		struct mg_plan *p = NULL;
		char *path = write_tmp(s, strlen(s));
		uint32_t b;

		assert_int_equal(
			mg_plan_parse_file(&p, path, 4096, 16, NULL, NULL, 0),
			0);
		assert_int_equal(p->nsteps, 1);
		for (b = 0; b < 4096; b++)
			assert_int_equal(mg_plan_final(p)[b], (b * 7) % 16);
		mg_plan_destroy(p);
		unlink(path);
		free(path);
	}
	free(s);
}

static void
test_parse_errors_other(void **state)
{
	static const char text[] = "1 1 1\n";
	char err[64], small[8], want[128];
	struct mg_plan *p = &not_a_plan;
	char *path = write_tmp(text, sizeof(text) - 1);

	(void)state;
	/* Missing file. */
	assert_int_equal(mg_plan_parse_file(&p, "/tmp/no/such/plan.txt", 16, 4,
					    NULL, err, sizeof(err)),
			 -ENOENT);
	assert_ptr_equal(p, &not_a_plan);
	assert_true(strncmp(err, "/tmp/no/such/plan.txt: ", 23) == 0);

	/* Arguments mg_plan_create() refuses. */
	assert_int_equal(
		mg_plan_parse_file(&p, path, 0, 4, NULL, err, sizeof(err)),
		-EINVAL);
	snprintf(want, sizeof(want), "%s: ", path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	assert_ptr_equal(p, &not_a_plan);

	/* A message is cut to the buffer and stays terminated. */
	assert_int_equal(
		mg_plan_parse_file(&p, path, 1, 4, NULL, small, sizeof(small)),
		-EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_true(strncmp(small, path, sizeof(small) - 1) == 0);
	assert_int_equal(mg_plan_parse_file(&p, path, 1, 4, NULL, NULL, 0),
			 -EINVAL);
	assert_ptr_equal(p, &not_a_plan);
	unlink(path);
	free(path);
}

/* ---- strategies ----------------------------------------------------------- */

static void
test_strategy_names(void **state)
{
	static const char *const names[] = {"all-at-once", "fluid", "batched"};
	enum mg_strategy s = MG_FLUID;
	size_t i;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(names); i++) {
		assert_int_equal(mg_strategy_parse(names[i], &s), 0);
		assert_int_equal(s, (enum mg_strategy)i);
		assert_string_equal(mg_strategy_name(s), names[i]);
	}
	s = MG_FLUID;
	assert_int_equal(mg_strategy_parse("Fluid", &s), -EINVAL);
	assert_int_equal(mg_strategy_parse("batched ", &s), -EINVAL);
	assert_int_equal(mg_strategy_parse("", &s), -EINVAL);
	assert_int_equal(mg_strategy_parse(NULL, &s), -EINVAL);
	assert_int_equal(s, MG_FLUID);
	assert_string_equal(mg_strategy_name((enum mg_strategy)42), "unknown");
}

static void
test_strategy_refused(void **state)
{
	uint16_t from[4] = {0, 1, 2, 3}, to[4] = {1, 1, 2, 3};
	struct mg_step *steps = &not_steps;
	uint32_t n = 77;

	(void)state;
	assert_int_equal(mg_strategy_steps((enum mg_strategy)3, from, to, 4, 4,
					   &steps, &n),
			 -EINVAL);
	assert_int_equal(
		mg_strategy_steps(MG_BATCHED, from, to, 0, 4, &steps, &n),
		-EINVAL);
	assert_int_equal(
		mg_strategy_steps(MG_BATCHED, from, to, 4, 0, &steps, &n),
		-EINVAL);
	assert_int_equal(
		mg_strategy_steps(MG_BATCHED, from, to, 4, 65536, &steps, &n),
		-EINVAL);
	assert_int_equal(
		mg_strategy_steps(MG_FLUID, from, to, 4, 3, &steps, &n),
		-EINVAL); /* from[3] == 3 */
	to[2] = 9;
	assert_int_equal(
		mg_strategy_steps(MG_ALL_AT_ONCE, from, to, 4, 4, &steps, &n),
		-EINVAL);
	assert_ptr_equal(steps, &not_steps);
	assert_int_equal(n, 77);

	/* Nothing to move. */
	assert_int_equal(
		mg_strategy_steps(MG_BATCHED, from, from, 4, 4, &steps, &n), 0);
	assert_null(steps);
	assert_int_equal(n, 0);
	mg_steps_free(NULL, 0);

	/* Steps built elsewhere, some without moves, free the same way. */
	steps = calloc(3, sizeof(*steps));
	assert_non_null(steps);
	steps[0].moves = malloc(sizeof(*steps[0].moves));
	steps[2].moves = malloc(sizeof(*steps[2].moves) * 5);
	mg_steps_free(steps, 3);
}

/* Δ: the most bins one worker sends or receives, counted here afresh. */
static uint32_t
max_degree(const uint16_t *from, const uint16_t *to, uint32_t nbins,
	   uint32_t nworkers)
{
	uint32_t *out = calloc(nworkers, sizeof(*out));
	uint32_t *in = calloc(nworkers, sizeof(*in));
	uint32_t b, w, d = 0;

	assert_non_null(out);
	assert_non_null(in);
	for (b = 0; b < nbins; b++) {
		if (from[b] != to[b]) {
			out[from[b]]++;
			in[to[b]]++;
		}
	}
	for (w = 0; w < nworkers; w++) {
		d = out[w] > d ? out[w] : d;
		d = in[w] > d ? in[w] : d;
	}
	free(out);
	free(in);
	return d;
}

/* Check one strategy's schedule against the model in the file comment. */
static void
check_strategy(enum mg_strategy s, const uint16_t *from, const uint16_t *to,
	       uint32_t nbins, uint32_t nworkers)
{
	uint16_t *cur = alloc_map(nbins);
	unsigned char *moved = calloc(nbins, 1);
	uint32_t *sent = calloc(nworkers, sizeof(*sent));
	uint32_t *recv = calloc(nworkers, sizeof(*recv));
	uint32_t b, i, j, n = 0, nmoves = 0, want = 0, last = 0;
	struct mg_step *steps = NULL;

	assert_non_null(moved);
	assert_non_null(sent);
	assert_non_null(recv);
	for (b = 0; b < nbins; b++)
		want += from[b] != to[b];
	assert_int_equal(
		mg_strategy_steps(s, from, to, nbins, nworkers, &steps, &n), 0);
	memcpy(cur, from, sizeof(*cur) * nbins);
	for (i = 0; i < n; i++) {
		const struct mg_step *st = &steps[i];

		assert_int_equal(st->time, 0);
		assert_true(st->nmoves >= 1);
		for (j = 0; j < st->nmoves; j++) {
			const struct mg_move *m = &st->moves[j];

			assert_true(m->bin < nbins);
			assert_true(j == 0 || m->bin > st->moves[j - 1].bin);
			/* Each bin moves once, straight to its target. */
			assert_int_equal(moved[m->bin], 0);
			assert_int_equal(m->worker, to[m->bin]);
			assert_int_not_equal(from[m->bin], to[m->bin]);
			moved[m->bin] = 1;
			nmoves++;
			if (s == MG_BATCHED) {
				/* Each worker sends once and receives once. */
				assert_int_not_equal(sent[cur[m->bin]], i + 1);
				assert_int_not_equal(recv[m->worker], i + 1);
				sent[cur[m->bin]] = i + 1;
				recv[m->worker] = i + 1;
			}
			cur[m->bin] = (uint16_t)m->worker;
		}
	}
	assert_memory_equal(cur, to, sizeof(*cur) * nbins);
	assert_int_equal(nmoves, want);
	switch (s) {
	case MG_ALL_AT_ONCE:
		assert_int_equal(n, want ? 1 : 0);
		break;
	case MG_FLUID:
		assert_int_equal(n, want);
		for (i = 0; i < n; i++) {
			assert_int_equal(steps[i].nmoves, 1);
			assert_true(i == 0 || steps[i].moves[0].bin > last);
			last = steps[i].moves[0].bin;
		}
		break;
	case MG_BATCHED:
		assert_int_equal(n, max_degree(from, to, nbins, nworkers));
		break;
	}
	if (n == 0)
		assert_null(steps);
	mg_steps_free(steps, n);
	free(cur);
	free(moved);
	free(sent);
	free(recv);
}

static void
check_all(const uint16_t *from, const uint16_t *to, uint32_t nbins,
	  uint32_t nworkers)
{
	check_strategy(MG_ALL_AT_ONCE, from, to, nbins, nworkers);
	check_strategy(MG_FLUID, from, to, nbins, nworkers);
	check_strategy(MG_BATCHED, from, to, nbins, nworkers);
}

static void
test_strategies_random(void **state)
{
	uint64_t seed = mg_test_seed(), r = seed;
	uint32_t round, b, nbins, nworkers, hot;
	uint16_t *from, *to;

	(void)state;
	for (round = 0; round < 300; round++) {
		nbins = mg_test_rand(&r) % 2 ? 1u << (4 + mg_test_rand(&r) % 9)
					     : 1 + mg_test_rand(&r) % 3000;
		switch (mg_test_rand(&r) % 4) {
		case 0:
			nworkers = 1 + mg_test_rand(&r) % 4;
			break;
		case 3:
			nworkers = 1 + mg_test_rand(&r) % 1000;
			break;
		default:
			nworkers = 1 + mg_test_rand(&r) % 64;
			break;
		}
		hot = (uint32_t)(mg_test_rand(&r) % nworkers);
		from = alloc_map(nbins);
		to = alloc_map(nbins);
		for (b = 0; b < nbins; b++)
			from[b] = (uint16_t)(mg_test_rand(&r) % nworkers);
		for (b = 0; b < nbins; b++) {
			switch (round % 4) {
			case 0: /* anything */
				to[b] = (uint16_t)(mg_test_rand(&r) % nworkers);
				break;
			case 1: /* a few bins move */
				to[b] = mg_test_rand(&r) % 8
						? from[b]
						: (uint16_t)(mg_test_rand(&r) %
							     nworkers);
				break;
			case 2: /* skew: many bins to one worker */
				to[b] = mg_test_rand(&r) % 2 ? (uint16_t)hot
							     : from[b];
				break;
			default: /* skew: one worker sheds its bins */
				to[b] = from[b] == hot
						? (uint16_t)(mg_test_rand(&r) %
							     nworkers)
						: from[b];
				break;
			}
		}
		check_all(from, to, nbins, nworkers);
		free(from);
		free(to);
	}
}

/* Structured cases where Δ is reached in only some places. */
static void
test_strategies_shapes(void **state)
{
	const uint32_t nbins = 4096;
	uint16_t *from = alloc_map(nbins), *to = alloc_map(nbins);
	uint32_t b;

	(void)state;
	/* One sender to every worker: Δ = E, one bin per step. */
	for (b = 0; b < nbins; b++) {
		from[b] = 0;
		to[b] = (uint16_t)(b % 64);
	}
	check_all(from, to, nbins, 64);
	/* Every worker to one receiver. */
	check_all(to, from, nbins, 64);
	/* A rotation: every worker sends and receives nbins / W. */
	for (b = 0; b < nbins; b++) {
		from[b] = (uint16_t)(b % 64);
		to[b] = (uint16_t)((b + 1) % 64);
	}
	check_all(from, to, nbins, 64);
	/* Many workers, few bins each: the groups merge many workers. */
	for (b = 0; b < nbins; b++) {
		from[b] = (uint16_t)(b % 65535);
		to[b] = (uint16_t)((b * 2654435761u) % 65535);
	}
	check_all(from, to, nbins, 65535);
	free(from);
	free(to);
}

/* 2^16 bins on 64 workers, everything moves: the largest schedule here. */
static void
test_strategies_large(void **state)
{
	const uint32_t nbins = 1 << 16, nworkers = 64;
	uint16_t *from = alloc_map(nbins), *to = alloc_map(nbins);
	uint64_t r = 12345;
	uint32_t b;

	(void)state;
	for (b = 0; b < nbins; b++) {
		from[b] = (uint16_t)(mg_test_rand(&r) % nworkers);
		to[b] = (uint16_t)((from[b] + 1 +
				    mg_test_rand(&r) % (nworkers - 1)) %
				   nworkers);
	}
	check_strategy(MG_BATCHED, from, to, nbins, nworkers);
	free(from);
	free(to);
}

static void
test_paper_example(void **state)
{
	const uint32_t nbins = 4096, nworkers = 16;
	uint16_t *from = round_robin(nbins, nworkers), *to = alloc_map(nbins);
	uint32_t b, i, n = 0, moves = 0, sent[16] = {0};
	struct mg_step *steps = NULL;
	struct mg_plan *p;

	(void)state;
	mg_plan_half_of_half(from, nbins, nworkers, to);
	for (b = 0; b < nbins; b++) {
		if (from[b] == to[b])
			continue;
		assert_true(from[b] < 8);
		assert_true(to[b] >= 8);
		sent[from[b]]++;
		moves++;
	}
	assert_int_equal(moves, 1024);
	for (i = 0; i < 8; i++)
		assert_int_equal(sent[i], 128);

	assert_int_equal(mg_strategy_steps(MG_BATCHED, from, to, nbins,
					   nworkers, &steps, &n),
			 0);
	assert_int_equal(n, 128);
	for (i = 0; i < n; i++)
		assert_int_equal(steps[i].nmoves, 8);

	/* The steps make a plan that ends in the target. */
	assert_int_equal(mg_plan_create(&p, nbins, nworkers, from), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(mg_plan_add_step(p, 100 + i, steps[i].moves,
						  steps[i].nmoves),
				 0);
	assert_int_equal(p->nsteps, 128);
	assert_memory_equal(mg_plan_final(p), to, sizeof(*to) * nbins);
	mg_plan_destroy(p);
	mg_steps_free(steps, n);

	check_all(from, to, nbins, nworkers);
	check_all(to, from, nbins, nworkers); /* and back */
	free(from);
	free(to);
}

static void
test_half_of_half(void **state)
{
	const uint32_t nbins = 1 << 12;
	uint16_t *from = round_robin(nbins, 2), *to = alloc_map(nbins);
	uint32_t b, moved = 0, kept0 = 0;

	(void)state;
	mg_plan_half_of_half(from, nbins, 2, to);
	for (b = 0; b < nbins; b++) {
		if (from[b] == 1)
			assert_int_equal(to[b], 1);
		else if (to[b] == 1)
			moved++;
		else
			kept0++;
	}
	assert_int_equal(moved, 1024);
	assert_int_equal(kept0, 1024);

	/* One worker: nothing moves.  Three: worker 0 sends to 1 and 2. */
	for (b = 0; b < nbins; b++)
		from[b] = 0;
	mg_plan_half_of_half(from, nbins, 1, to);
	assert_memory_equal(from, to, sizeof(*to) * nbins);
	mg_plan_half_of_half(from, 5, 3, to);
	assert_int_equal(to[0], 0);
	assert_int_equal(to[1], 1);
	assert_int_equal(to[2], 0);
	assert_int_equal(to[3], 2);
	assert_int_equal(to[4], 0);
	free(from);
	free(to);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_add_step_refused),
		cmocka_unit_test(test_add_step_noops),
		cmocka_unit_test(test_chains),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_noops_and_extremes),
		cmocka_unit_test(test_parse_bad_lines),
		cmocka_unit_test(test_parse_bad_maps),
		cmocka_unit_test(test_parse_errors_other),
		cmocka_unit_test(test_strategy_names),
		cmocka_unit_test(test_strategy_refused),
		cmocka_unit_test(test_strategies_random),
		cmocka_unit_test(test_strategies_shapes),
		cmocka_unit_test(test_strategies_large),
		cmocka_unit_test(test_paper_example),
		cmocka_unit_test(test_half_of_half),
	};

	return MG_TEST_RUN(tests);
}
