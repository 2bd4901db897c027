/*
 * t-bench-validate.c - the benchmarks' --validate (bench/bench_run.h),
 * called directly: outputs fed to the measured and the reference sinks
 * must match time by time, whether a fingerprint covers one timestamp (a
 * short run) or a chunk of them (a run with more than BENCH_FP_SLOTS
 * timestamps, such as an hour's soak): an output one timestamp off inside
 * a chunk, a missing one and one past the last timestamp all fail.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_run.h"
#include "tests/mg_test.h"

struct rec {
	uint64_t key, count;
};

/* What the harness prints on stderr goes to /dev/null (-1: kept). */
static int quiet_fd = -1, stderr_fd = -1;

static void
hush(bool on)
{
	fflush(stderr);
	if (quiet_fd >= 0 && stderr_fd >= 0)
		dup2(on ? quiet_fd : stderr_fd, 2);
}

static void
open_run(struct bench_run *r, struct bench_opts *o, uint64_t ntimes)
{
	bench_opts_defaults(o);
	o->validate = true;
	o->workers = 3;
	hush(true);
	bench_run_init(r, "t-bench-validate", o, sizeof(struct rec), ntimes);
	hush(false);
}

static bool
validate(const struct bench_run *r)
{
	bool ok;

	hush(true);
	ok = bench_run_validate(r);
	hush(false);
	return ok;
}

/* Both operators emit the same outputs, on different workers. */
static void
feed_same(struct bench_run *r, uint64_t ntimes)
{
	uint64_t t;

	for (t = 0; t < ntimes; t += 7) {
		struct rec x = {t * 31, t % 5};

		bench_run_sink_measured(r, (unsigned)(t % 3), t, &x);
		bench_run_sink_reference(r, (unsigned)((t + 1) % 3), t, &x);
	}
}

static void
check(uint64_t ntimes, uint64_t span)
{
	struct bench_opts o;
	struct bench_run r;
	struct rec x = {42, 1}, y = {43, 1};
	uint64_t n;

	open_run(&r, &o, ntimes);
	assert_int_equal(r.span, span);
	assert_true(r.nslots * r.span >= ntimes);
	assert_true(r.nslots <= BENCH_FP_SLOTS);
	feed_same(&r, ntimes);
	assert_true(validate(&r));
	n = bench_run_outputs(&r, 0);
	assert_int_equal(n, bench_run_outputs(&r, 1));
	assert_int_equal(n, (ntimes + 6) / 7);

	/* one timestamp off, inside one chunk (times 8..11 with span 4) */
	bench_run_sink_measured(&r, 0, 8, &x);
	bench_run_sink_reference(&r, 0, 9, &x);
	assert_false(validate(&r));
	bench_run_sink_measured(&r, 0, 9, &x); /* now both have 8 and 9 */
	bench_run_sink_reference(&r, 0, 8, &x);
	assert_true(validate(&r));

	/* another record at the same time */
	bench_run_sink_measured(&r, 1, 20, &x);
	bench_run_sink_reference(&r, 1, 20, &y);
	assert_false(validate(&r));
	bench_run_destroy(&r);

	/* a missing output, and one past the last timestamp */
	open_run(&r, &o, ntimes);
	feed_same(&r, ntimes);
	bench_run_sink_reference(&r, 2, ntimes - 1, &x);
	assert_false(validate(&r));
	bench_run_sink_measured(&r, 2, ntimes - 1, &x);
	assert_true(validate(&r));
	bench_run_sink_measured(&r, 2, ntimes, &x);
	bench_run_sink_reference(&r, 2, ntimes, &x);
	assert_false(validate(&r));
	assert_int_equal(bench_run_outputs(&r, 0), n + 2);
	bench_run_destroy(&r);
}

/* A short run: one fingerprint per timestamp. */
static void
test_per_timestamp(void **state)
{
	(void)state;
	check(10002, 1);
	check(BENCH_FP_SLOTS, 1);
}

/* A long run: chunks of consecutive timestamps, in bounded memory. */
static void
test_chunks(void **state)
{
	(void)state;
	check(BENCH_FP_SLOTS + 1, 2);
	check(3 * BENCH_FP_SLOTS + 5, 4);
	check(3600ull * 1000 + 2, 55); /* an hour of 1 ms epochs */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_timestamp),
		cmocka_unit_test(test_chunks),
	};

	quiet_fd = open("/dev/null", O_WRONLY);
	stderr_fd = dup(2);
	return MG_TEST_RUN(tests);
}
