/*
 * fuzz-flags.c - libFuzzer harness for the benchmarks' flag parsing:
 * getopt_long() over BENCH_OPTIONS with bench_opts_set(), then
 * bench_opts_check() and bench_run_config(), as keycount and nexmark run
 * them; and the number parsers (bench/bench_util.h) and keycount's --keys
 * parser (bench/bench_keys.h) on every word.
 *
 * The input is a command line, one argument per line ("--rate\n5k\n").
 * Checked against the headers: a flag set that passes bench_opts_check()
 * gives a configuration the engine accepts (engine/dataflow.c's
 * check_config(), restated here) and channels can carry (--batch against
 * mg_channel_batch_records_max()); a refusal comes with a message naming a
 * flag; the number parsers agree with a plain reference implementation of
 * their grammar.  A broken promise aborts, which libFuzzer reports.
 *
 * File names must not reach the file system here: --migration with
 * anything but a strategy, "random", "none" or "@plan" is dropped.  A line "@@"
 * ends the command line; what follows is a plan file, written to a memfd,
 * which "--migration @plan" names (plan files have their own harness,
 * fuzz-plan.c; this one checks that bench_opts_check() reads one against
 * --bins and --workers and owns the result).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench/bench_keys.h"
#include "bench/bench_run.h"
#include "bench/bench_util.h"
#include "tests/fuzz/fuzz.h"

#define MAX_ARGS 64

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "fuzz-flags: %s:%d: broken: %s\n", \
				__FILE__, __LINE__, #cond);                \
			abort();                                           \
		}                                                          \
	} while (0)

static const struct option long_opts[] = {BENCH_OPTIONS, {NULL, 0, NULL, 0}};
static int plan_fd = -1;
static char plan_path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	plan_fd = memfd_create("plan", 0);
	if (plan_fd < 0) {
		perror("fuzz-flags: memfd_create");
		exit(1);
	}
	snprintf(plan_path, sizeof(plan_path), "/proc/self/fd/%d", plan_fd);
	return 0;
}

/*
 * The grammar of bench_parse_u64() (@bytes: bench_parse_bytes()) without
 * the C library: digits, an optional '.' and at most 19 more digits, then at
 * most one suffix; the value (in 128-bit arithmetic) must be whole -- "8.5M"
 * is, "1.5" is not.  Return: as they do.
 */
__extension__ typedef unsigned __int128 u128;

static int
ref_unsigned(const char *s, uint64_t lo, uint64_t hi, bool bytes, uint64_t *out)
{
	static const struct {
		const char *name;
		uint64_t mul;
	} suf[] = {{"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30},
		   {"Ti", 1ull << 40}, {"k", 1000},	   {"K", 1000},
		   {"M", 1000000},     {"G", 1000000000}};
	u128 whole, part;
	uint64_t v = 0, frac = 0, scale = 1, mul = 1;
	unsigned ndigits = 0;
	size_t i;

	if (!(*s >= '0' && *s <= '9'))
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, ndigits++) {
			if (ndigits == 19)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*s - '0');
			scale *= 10;
		}
		if (!ndigits)
			return -EINVAL;
	}
	for (i = bytes ? 0 : 4; *s && i < sizeof(suf) / sizeof(suf[0]); i++)
		if (!strcmp(s, suf[i].name)) {
			mul = suf[i].mul;
			s += strlen(s);
		}
	whole = (u128)v * mul;
	part = (u128)frac * mul;
	if (*s || part % scale || whole + part / scale > UINT64_MAX)
		return -EINVAL;
	v = (uint64_t)(whole + part / scale);
	if (v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The number parsers on one word, against the reference. */
static void
numbers(const char *w)
{
	static const uint64_t bounds[][2] = {
		{0, UINT64_MAX}, {1, 1000}, {4, 20}, {1000, 1000000000}};
	uint64_t v, r;
	double d, r_d;
	size_t i;
	int rc, rr;

	for (i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		v = r = 42;
		rc = bench_parse_u64(w, bounds[i][0], bounds[i][1], &v);
		rr = ref_unsigned(w, bounds[i][0], bounds[i][1], false, &r);
		CHECK(rc == rr && v == r);
		v = r = 42;
		rc = bench_parse_bytes(w, bounds[i][0], bounds[i][1], &v);
		rr = ref_unsigned(w, bounds[i][0], bounds[i][1], true, &r);
		CHECK(rc == rr && v == r);
	}
	d = -1;
	rc = bench_parse_double(w, 0, HUGE_VAL, &d);
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0) {
		CHECK(isfinite(d) && d >= 0);
		CHECK((*w >= '0' && *w <= '9') || *w == '.');
		CHECK(!strpbrk(w, " \t\n\vxXpPiInN"));
	} else {
		CHECK(d == -1);
	}
	d = -1;
	rc = bench_parse_double(w, 0.01, 86400, &d);
	CHECK(rc == -EINVAL ? d == -1 : (d >= 0.01 && d <= 86400));
	/* --keys: "uniform", or "zipf:" and an exponent in [0.01, 10] */
	d = -1;
	rc = bench_keys_parse(w, &d);
	if (!strcmp(w, "uniform")) {
		CHECK(rc == 0 && d == 0);
	} else if (!strncmp(w, "zipf:", 5) &&
		   !bench_parse_double(w + 5, 0.01, 10, &r_d)) {
		CHECK(rc == 0 && d == r_d);
	} else {
		CHECK(rc == -EINVAL && d == -1);
	}
}

/* What engine/dataflow.c check_config() and the channels accept. */
static void
check_config(const struct bench_opts *o)
{
	struct bench_run r = {.o = o};
	struct mg_dataflow_config dc;

	bench_run_config(&r, &dc);
	CHECK(dc.workers >= 1 && dc.workers <= 1024);
	CHECK(dc.bins_log2 >= MG_BINS_LOG2_MIN &&
	      dc.bins_log2 <= MG_BINS_LOG2_MAX);
	CHECK(dc.epoch_ns >= 10000);
	CHECK(dc.ring_capacity >= 2 && mg_is_pow2(dc.ring_capacity) &&
	      dc.ring_capacity <= MG_CHANNEL_CAPACITY_MAX);
	CHECK(dc.batch_records >= 1 &&
	      dc.batch_records <= mg_channel_batch_records_max(o->record_max));
	CHECK(dc.mode == MG_HANDOFF || dc.mode == MG_COPY);
	CHECK(dc.pool_reserve % (1ull << MG_CHUNK_MAX_SHIFT) == 0 &&
	      dc.pool_reserve < (1ull << 44));
	CHECK(o->rate >= 1 && o->rate <= 1000000000ull);
	CHECK(isfinite(o->duration) && o->duration > 0);
	CHECK(o->warmup >= 0 && o->warmup < o->duration);
	CHECK(!o->migration ||
	      (o->random_mig ? o->migrate_at < o->duration && o->workers >= 2
			     : 2 * o->migrate_at < o->duration));
	CHECK(!o->migrate_every || o->random_mig);
	CHECK(!o->random_mig ||
	      (o->migration && !o->plan && o->strategy == MG_ALL_AT_ONCE));
	CHECK(!o->plan ==
	      !!strcmp(o->migration ? o->migration : "", plan_path));
	CHECK(!o->plan ||
	      (o->plan->nsteps > 0 && o->plan->nbins == 1u << o->bins_log2 &&
	       o->plan->nworkers == o->workers));
	/* the balancer: what engine/balancer.c check_config() accepts */
	CHECK(!o->bal_flags || o->balance);
	CHECK(!o->balance || !o->migration);
	CHECK(o->bal.interval_ns >= 1000000ull);
	CHECK(o->bal.threshold > 0 && o->bal.threshold <= 100);
	CHECK(o->bal.cooldown_ns > 0);
	CHECK(o->bal.patience >= 1 && o->bal.patience <= 1000);
	CHECK((o->bal.scale_low == 0 && o->bal.scale_high == 0) ||
	      (o->bal.scale_low > 0 && o->bal.scale_low < o->bal.scale_high &&
	       o->bal.scale_high <= 1));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *p, *nl, *plan, err[BENCH_ERR_MAX];
	char *argv[MAX_ARGS + 2];
	struct bench_opts o;
	int argc = 1, c, rc;
	bool ok = true;

	CHECK(buf);
	if (plan_fd < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	memcpy(buf, data, size);
	buf[size] = '\0';
	plan = strlen(buf) == size ? strstr(buf, "\n@@\n") : NULL;
	if (ftruncate(plan_fd, 0) ||
	    (plan && pwrite(plan_fd, plan + 4, strlen(plan + 4), 0) < 0)) {
		perror("fuzz-flags: memfd");
		exit(1);
	}
	if (plan)
		*plan = '\0';
	argv[0] = (char *)"fuzz-flags";
	for (p = buf; argc <= MAX_ARGS; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		numbers(p);
		argv[argc++] = !strcmp(p, "@plan") ? plan_path : p;
		if (!nl)
			break;
	}
	argv[argc] = NULL;

	bench_opts_defaults(&o);
	o.record_max = 104; /* nexmark's */
	optind = 0;	    /* GNU: start over */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c == 0x109 && strcmp(optarg, "none") &&
		    strcmp(optarg, "all-at-once") && strcmp(optarg, "fluid") &&
		    strcmp(optarg, "batched") && strcmp(optarg, "random") &&
		    strcmp(optarg, plan_path))
			continue;
		memset(err, 'x', sizeof(err));
		rc = bench_opts_set(&o, c, optarg, err, sizeof(err));
		CHECK(rc == 1 || rc == 0 || rc == -EINVAL);
		CHECK(rc != 0 || c == '?' || c == ':');
		if (rc < 0) {
			CHECK(memchr(err, '\0', sizeof(err)));
			CHECK(strstr(err, "--"));
			ok = false;
			break;
		}
	}
	if (ok) {
		memset(err, 'x', sizeof(err));
		rc = bench_opts_check(&o, err, sizeof(err));
		CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM || rc == -EIO);
		if (rc == 0)
			check_config(&o);
		else
			CHECK(memchr(err, '\0', sizeof(err)) &&
			      (strstr(err, "--") ||
			       !strncmp(err, plan_path, strlen(plan_path))));
	}
	bench_opts_destroy(&o);
	free(buf);
	return 0;
}
