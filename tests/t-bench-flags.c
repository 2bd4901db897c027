/*
 * t-bench-flags.c - the benchmarks' flag parsing (bench/bench_util.h,
 * bench/bench_run.h), called directly: one table per parser, each row an
 * input and what must come of it.  tests/t-bench-cli.c runs the built
 * programs with bad flags.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "tests/mg_test.h"

/* ---- numbers -------------------------------------------------------------- */

#define U64_UNTOUCHED 0x5a5a5a5a5a5a5a5aull

struct u64_case {
	const char *s;
	uint64_t lo, hi;
	int rc;
	uint64_t v; /* when rc == 0 */
};

static const struct u64_case u64_cases[] = {
	{"0", 0, 10, 0, 0},
	{"7", 0, 10, 0, 7},
	{"007", 0, 10, 0, 7},
	{"4k", 0, UINT64_MAX, 0, 4000},
	{"4K", 0, UINT64_MAX, 0, 4000},
	{"4M", 0, UINT64_MAX, 0, 4000000},
	{"4G", 0, UINT64_MAX, 0, 4000000000ull},
	{"18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX},
	{"18446744073709551616", 0, UINT64_MAX, -EINVAL, 0}, /* overflow */
	{"18446744073709551615k", 0, UINT64_MAX, -EINVAL, 0},
	{"18446744073709552k", 0, UINT64_MAX, -EINVAL, 0},
	{"18446744073709551k", 0, UINT64_MAX, 0, 18446744073709551000ull},
	{"11", 0, 10, -EINVAL, 0}, /* range */
	{"1", 2, 10, -EINVAL, 0},
	{"2k", 0, 1999, -EINVAL, 0},
	{"", 0, 10, -EINVAL, 0}, /* syntax */
	{NULL, 0, 10, -EINVAL, 0},
	{" 1", 0, 10, -EINVAL, 0},
	{" -1", 0, UINT64_MAX, -EINVAL, 0}, /* strtoull: 2^64 - 1 */
	{"\t1", 0, 10, -EINVAL, 0},
	{"+1", 0, 10, -EINVAL, 0},
	{"-1", 0, UINT64_MAX, -EINVAL, 0},
	{"-0", 0, 10, -EINVAL, 0},
	{"1 ", 0, 10, -EINVAL, 0},
	{"1x", 0, 10, -EINVAL, 0},
	{"0x10", 0, 100, -EINVAL, 0},
	{"1.5", 0, 10, -EINVAL, 0},
	{"1e3", 0, 10000, -EINVAL, 0},
	{"4kk", 0, UINT64_MAX, -EINVAL, 0},
	{"k", 0, UINT64_MAX, -EINVAL, 0},
	{"4m", 0, UINT64_MAX, -EINVAL, 0},
	{"inf", 0, UINT64_MAX, -EINVAL, 0},
	{"nan", 0, UINT64_MAX, -EINVAL, 0},
};

static void
test_parse_u64(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(u64_cases) / sizeof(u64_cases[0]); i++) {
		const struct u64_case *c = &u64_cases[i];
		uint64_t v = U64_UNTOUCHED;
		int rc = bench_parse_u64(c->s, c->lo, c->hi, &v);

		if (rc != c->rc || v != (c->rc ? U64_UNTOUCHED : c->v))
			fail_msg("bench_parse_u64(\"%s\", %llu, %llu): %d, "
				 "%llu; expected %d, %llu",
				 c->s ? c->s : "(null)",
				 (unsigned long long)c->lo,
				 (unsigned long long)c->hi, rc,
				 (unsigned long long)v, c->rc,
				 (unsigned long long)c->v);
	}
}

struct double_case {
	const char *s;
	double lo, hi;
	int rc;
	double v;
};

static const struct double_case double_cases[] = {
	{"0", 0, 10, 0, 0},
	{"1", 0, 10, 0, 1},
	{"1.5", 0, 10, 0, 1.5},
	{".5", 0, 10, 0, 0.5},
	{"5.", 0, 10, 0, 5},
	{"2e3", 0, 1e4, 0, 2000},
	{"2E+3", 0, 1e4, 0, 2000},
	{"2e-3", 0, 1, 0, 0.002},
	{"10.5", 0, 10, -EINVAL, 0}, /* range */
	{"0.001", 0.01, 10, -EINVAL, 0},
	{"1e30", 0, 1e10, -EINVAL, 0},
	{"1e400", 0, INFINITY, -EINVAL, 0}, /* overflow */
	{"1e-400", 0, 1, -EINVAL, 0},	    /* underflow */
	{"", 0, 10, -EINVAL, 0},	    /* syntax */
	{NULL, 0, 10, -EINVAL, 0},
	{".", 0, 10, -EINVAL, 0},
	{" 1", 0, 10, -EINVAL, 0},
	{"+1", 0, 10, -EINVAL, 0},
	{"-1", -10, 10, -EINVAL, 0},
	{"-0", 0, 10, -EINVAL, 0},
	{"1 ", 0, 10, -EINVAL, 0},
	{"1e", 0, 10, -EINVAL, 0},
	{"1e+", 0, 10, -EINVAL, 0},
	{"1.2.3", 0, 10, -EINVAL, 0},
	{"0x10", 0, 100, -EINVAL, 0},
	{"0x1p3", 0, 100, -EINVAL, 0},
	{"inf", 0, INFINITY, -EINVAL, 0},
	{"infinity", 0, INFINITY, -EINVAL, 0},
	{"nan", 0, INFINITY, -EINVAL, 0},
	{"1k", 0, 1e4, -EINVAL, 0},
};

static void
test_parse_double(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(double_cases) / sizeof(double_cases[0]); i++) {
		const struct double_case *c = &double_cases[i];
		double v = -42;
		int rc = bench_parse_double(c->s, c->lo, c->hi, &v);

		if (rc != c->rc || v != (c->rc ? -42 : c->v))
			fail_msg("bench_parse_double(\"%s\", %g, %g): %d, %g; "
				 "expected %d, %g",
				 c->s ? c->s : "(null)", c->lo, c->hi, rc, v,
				 c->rc, c->v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_double),
	};

	return MG_TEST_RUN(tests);
}
