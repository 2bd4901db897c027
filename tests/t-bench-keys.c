/*
 * t-bench-keys.c - the key-count benchmark's key streams (bench/bench_keys.h):
 * the --keys parser, the uniform stream unchanged, the Zipf sampler's alias
 * table against the exact probabilities, Zipf frequencies against the
 * distribution, the rank-to-key mapping a permutation in every phase
 * (with and without the skewed start), the skewed start's hot keys in
 * worker 0's bins, and the hot set shifting with the schedule.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_keys.h"
#include "engine/megaphone.h"
#include "tests/mg_test.h"

#define BINS_LOG2 6

static uint32_t
bin_of(void *ctx, uint64_t key)
{
	(void)ctx;
	return mg_bin_of(mg_hash64(key + 0x632be59bd9b4e019ull), BINS_LOG2);
}

static void
test_parse(void **state)
{
	static const struct {
		const char *s;
		int rc;
		double v;
	} cases[] = {
		{"uniform", 0, 0},	  {"zipf:1", 0, 1},
		{"zipf:0.5", 0, 0.5},	  {"zipf:1.25", 0, 1.25},
		{"zipf:10", 0, 10},	  {"zipf:0.01", 0, 0.01},
		{"zipf", -EINVAL, 0},	  {"zipf:", -EINVAL, 0},
		{"zipf:0", -EINVAL, 0},	  {"zipf:-1", -EINVAL, 0},
		{"zipf:11", -EINVAL, 0},  {"zipf:nan", -EINVAL, 0},
		{"zipf:inf", -EINVAL, 0}, {"zipf:1x", -EINVAL, 0},
		{"zipf: 1", -EINVAL, 0},  {"Zipf:1", -EINVAL, 0},
		{"uniform ", -EINVAL, 0}, {"", -EINVAL, 0},
		{NULL, -EINVAL, 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = -42;
		int rc = bench_keys_parse(cases[i].s, &v);

		if (rc != cases[i].rc || v != (rc ? -42 : cases[i].v))
			fail_msg("bench_keys_parse(\"%s\"): %d, %g; expected "
				 "%d, %g",
				 cases[i].s ? cases[i].s : "(null)", rc, v,
				 cases[i].rc, cases[i].v);
	}
}

static void
test_bad_config(void **state)
{
	struct bench_keys k;
	struct bench_keys_config bad[] = {
		{.domain = 0},
		{.domain = 10, .zipf = -1},
		{.domain = 10, .zipf = NAN},
		{.domain = 10, .shift_s = 1, .rate = 1}, /* shift, uniform */
		{.domain = 10, .skew = true},		 /* skew, uniform */
		{.domain = 10, .zipf = 1, .shift_s = 1}, /* no rate */
		{.domain = 10, .zipf = 1, .shift_s = -1, .rate = 1},
		{.domain = 10, .zipf = 1, .skew = true}, /* no bin_of */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(bench_keys_init(&k, &bad[i]), -EINVAL);
}

/* Uniform keys are the benchmark's original stream. */
static void
test_uniform(void **state)
{
	struct bench_keys_config c = {.domain = 1000003, .seed = 7};
	struct bench_keys k;
	uint64_t seq;

	(void)state;
	assert_int_equal(bench_keys_init(&k, &c), 0);
	for (seq = 0; seq < 100000; seq++)
		assert_true(bench_keys_key(&k, seq) ==
			    mg_hash64(7 ^ (seq * 0x9e3779b97f4a7c15ull)) %
				    1000003);
	bench_keys_destroy(&k);
}

/* Rank frequencies match r^-S / H(N, S) for the top ranks and in total. */
static void
check_zipf(double s, uint64_t n)
{
	enum { SAMPLES = 400000, TOP = 8, HEAD = 1 << 16 };
	struct bench_keys_config c = {.domain = n, .seed = 3, .zipf = s};
	struct bench_keys k;
	uint64_t *count = calloc(n, sizeof(*count)), seq, r;
	double norm = 0, chi = 0;
	unsigned top = n < TOP ? (unsigned)n : TOP;

	assert_non_null(count);
	assert_int_equal(bench_keys_init(&k, &c), 0);
	for (r = 1; r <= n; r++)
		norm += pow((double)r, -s);
	for (seq = 0; seq < SAMPLES; seq++) {
		r = bench_keys_rank(&k, seq);
		assert_true(r < n);
		count[r]++;
	}
	for (r = 0; r < top; r++) {
		double p = pow((double)(r + 1), -s) / norm;
		double e = p * SAMPLES, d = (double)count[r] - e;

		chi += d * d / e;
		/* 5 standard deviations */
		if (fabs(d) > 5 * sqrt(e * (1 - p)) + 1)
			fail_msg("zipf:%g over %llu: rank %llu drawn %llu "
				 "times, expected %.0f",
				 s, (unsigned long long)n,
				 (unsigned long long)r + 1,
				 (unsigned long long)count[r], e);
	}
	/* the table's edge: the bands on either side of rank 2^16, and all
	 * ranks from it on (the rejection-inversion tail) */
	const uint64_t band[3][2] = {
		{HEAD - 4096, HEAD}, {HEAD, HEAD + 4096}, {HEAD, n}};

	for (unsigned j = 0; j < 3 && n > HEAD; j++) {
		uint64_t lo = band[j][0], hi = band[j][1] < n ? band[j][1] : n;
		uint64_t got = 0;
		double p = 0, e, d;

		for (r = lo; r < hi; r++) {
			p += pow((double)(r + 1), -s) / norm;
			got += count[r];
		}
		e = p * SAMPLES;
		d = (double)got - e;
		if (fabs(d) > 5 * sqrt(e * (1 - p)) + 1)
			fail_msg("zipf:%g over %llu: ranks %llu..%llu drawn "
				 "%llu times, expected %.0f",
				 s, (unsigned long long)n,
				 (unsigned long long)lo + 1,
				 (unsigned long long)hi,
				 (unsigned long long)got, e);
	}
	printf("# zipf:%g over %llu keys: top ranks chi^2 %.1f (%d dof), "
	       "rank 1 %.4f (expected %.4f)\n",
	       s, (unsigned long long)n, chi, top, (double)count[0] / SAMPLES,
	       1 / norm);
	bench_keys_destroy(&k);
	free(count);
}

/* The alias table's columns carry each head rank's exact probability, and
 * the tail column the rest, to the 2^-32 of a column the entries hold:
 * half a unit from the column's own entry and from each whose alias it is. */
static void
check_alias(double s, uint64_t n)
{
	struct bench_keys_config c = {.domain = n, .seed = 5, .zipf = s};
	struct bench_keys k;
	double norm = 0, head = 0, *got, *tol, share;
	uint32_t i;

	assert_int_equal(bench_keys_init(&k, &c), 0);
	assert_true(k.ncol == k.nhead + (n > k.nhead));
	got = calloc(k.ncol, sizeof(*got));
	tol = calloc(k.ncol, sizeof(*tol));
	assert_true(got && tol);
	share = 1.0 / k.ncol;
	for (uint64_t r = 1; r <= n; r++)
		norm += pow((double)r, -s);
	for (i = 0; i < k.ncol; i++) {
		double in = k.alias[i].thr * 0x1p-32;

		assert_true(k.alias[i].alias < k.ncol);
		got[i] += share * in;
		got[k.alias[i].alias] += share * (1 - in);
		tol[i] += share * 0x1p-33;
		tol[k.alias[i].alias] += share * 0x1p-33;
	}
	for (i = 0; i < k.nhead; i++) {
		double p = pow((double)i + 1, -s) / norm;

		head += p;
		if (fabs(got[i] - p) > tol[i] + 1e-12 * p)
			fail_msg("zipf:%g over %llu: rank %u has %.12g, not "
				 "%.12g",
				 s, (unsigned long long)n, i + 1, got[i], p);
	}
	if (k.ncol > k.nhead &&
	    fabs(got[k.nhead] - (1 - head)) > tol[k.nhead] + 1e-12)
		fail_msg("zipf:%g over %llu: the tail has %.12g, not %.12g", s,
			 (unsigned long long)n, got[k.nhead], 1 - head);
	free(got);
	free(tol);
	bench_keys_destroy(&k);
}

static void
test_alias(void **state)
{
	(void)state;
	check_alias(1.0, 1000);
	check_alias(1.0, 1000000);
	check_alias(0.5, 100000);
	check_alias(0.01, 200000);
	check_alias(3.0, 70000);
	check_alias(1.0, 1);
}

static void
test_zipf(void **state)
{
	(void)state;
	check_zipf(1.0, 1000);
	check_zipf(1.0, 1000000);
	check_zipf(0.5, 100000);
	check_zipf(0.01, 200000);
	check_zipf(1.5, 1000000);
	check_zipf(0.99, 3);
	check_zipf(2.0, 1);
}

/* Each phase's rank-to-key mapping is a permutation of the domain. */
static void
check_permutation(const struct bench_keys *k, uint64_t phase)
{
	uint64_t n = k->c.domain, r;
	uint8_t *seen = calloc(n, 1);

	assert_non_null(seen);
	for (r = 0; r < n; r++) {
		uint64_t key = bench_keys_rank_key(k, r, phase);

		assert_true(key < n);
		if (seen[key])
			fail_msg("domain %llu phase %llu: key %llu twice",
				 (unsigned long long)n,
				 (unsigned long long)phase,
				 (unsigned long long)key);
		seen[key] = 1;
	}
	free(seen);
}

static void
test_permutation_and_skew(void **state)
{
	static const uint64_t domains[] = {1, 2, 3, 64, 1000, 4096, 99991};
	static const unsigned workers[] = {1, 2, 3, 7};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		for (j = 0; j < sizeof(workers) / sizeof(workers[0]); j++) {
			struct bench_keys_config c = {
				.domain = domains[i],
				.seed = 11,
				.zipf = 1,
				.skew = true,
				.workers = workers[j],
				.bin_of = bin_of,
			};
			struct bench_keys k;
			uint64_t r;

			assert_int_equal(bench_keys_init(&k, &c), 0);
			check_permutation(&k, 0);
			check_permutation(&k, 1);
			/* the hottest ranks start on worker 0 */
			for (r = 0; r < k.nhot; r++)
				assert_int_equal(
					bin_of(NULL,
					       bench_keys_rank_key(&k, r, 0)) %
						workers[j],
					0);
			/* all of them, when the domain has that many */
			if (domains[i] >= 4096 * (uint64_t)workers[j])
				assert_true(k.nhot >= 4096);
			bench_keys_destroy(&k);
		}
}

/* The hot set changes with the phase, and the phase with the schedule. */
static void
test_shift(void **state)
{
	struct bench_keys_config c = {
		.domain = 1000000,
		.seed = 5,
		.zipf = 1.2,
		.rate = 1000, /* record seq is due at seq ms */
		.shift_s = 2,
	};
	struct bench_keys k;
	uint64_t hot0, hot1, seq, same = 0;

	(void)state;
	assert_int_equal(bench_keys_init(&k, &c), 0);
	hot0 = bench_keys_rank_key(&k, 0, 0);
	hot1 = bench_keys_rank_key(&k, 0, 1);
	assert_true(hot0 != hot1);
	for (seq = 0; seq < 4000; seq++) {
		uint64_t want = bench_keys_rank_key(
			&k, bench_keys_rank(&k, seq), seq / 2000);

		assert_true(bench_keys_key(&k, seq) == want);
		same += bench_keys_key(&k, seq) == hot0;
	}
	assert_true(same > 100); /* the hottest key is hot in phase 0 */
	bench_keys_destroy(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_alias),
		cmocka_unit_test(test_zipf),
		cmocka_unit_test(test_permutation_and_skew),
		cmocka_unit_test(test_shift),
	};

	return MG_TEST_RUN(tests);
}
