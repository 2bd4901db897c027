/*
 * t-engine-hist.c - log-linear histograms: buckets tile uint64_t, bulk
 * range insertion equals inserting every value, quantiles and merge.
 */
#include <stdlib.h>

#include "engine/hist_pvt.h"
#include "tests/mg_test.h"

static void
test_buckets_tile(void **state)
{
	unsigned i;

	(void)state;
	assert_int_equal(mg__hist_lower(0), 0);
	for (i = 0; i + 1 < HIST_BUCKETS; i++) {
		uint64_t lo = mg__hist_lower(i), next = mg__hist_lower(i + 1);

		assert_true(next > lo);
		assert_int_equal(mg__hist_bucket(lo), i);
		assert_int_equal(mg__hist_bucket(next - 1), i);
		/* relative width at most 1/32 above the linear range */
		if (lo >= HIST_SUB)
			assert_true((next - lo) * HIST_SUB <= lo);
	}
	assert_int_equal(mg__hist_bucket(UINT64_MAX), HIST_BUCKETS - 1);
}

static void
test_range_equals_points(void **state)
{
	struct mg__hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	uint64_t seed = mg_test_seed();
	int round;

	(void)state;
	for (round = 0; round < 200; round++) {
		uint64_t lo = mg_test_rand(&seed) % 5000000;
		uint64_t hi = lo + mg_test_rand(&seed) % 3000000;
		uint64_t n = 1 + mg_test_rand(&seed) % 5000, k;
		unsigned i;

		mg__hist_reset(a);
		mg__hist_reset(b);
		mg__hist_add_range(a, lo, hi, n);
		for (k = 0; k < n; k++)
			mg__hist_add(
				b,
				n == 1 ? lo
				       : lo + (uint64_t)(__extension__(
								 unsigned __int128)
								 k *
							 (hi - lo) / (n - 1)));
		assert_int_equal(mg__hist_count(a), n);
		for (i = 0; i < HIST_BUCKETS; i++)
			assert_int_equal(atomic_load(&a->bucket[i]),
					 atomic_load(&b->bucket[i]));
	}
	free(a);
	free(b);
}

static void
test_quantiles_and_merge(void **state)
{
	struct mg__hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	uint64_t v;

	(void)state;
	mg__hist_reset(a);
	mg__hist_reset(b);
	assert_int_equal(mg__hist_quantile(a, 0.5), 0);
	for (v = 1; v <= 1000; v++)
		mg__hist_add(v <= 500 ? a : b, v * 1000);
	mg__hist_merge(a, b);
	assert_int_equal(mg__hist_count(a), 1000);
	assert_int_equal(mg__hist_max(a), 1000000);
	/* within one bucket (3.1%) above the exact quantile */
	assert_in_range(mg__hist_quantile(a, 0.5), 500000, 500000 * 33 / 32);
	assert_in_range(mg__hist_quantile(a, 0.99), 990000, 990000 * 33 / 32);
	assert_int_equal(mg__hist_quantile(a, 1.0), 1000000);
	free(a);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_tile),
		cmocka_unit_test(test_range_equals_points),
		cmocka_unit_test(test_quantiles_and_merge),
	};

	return MG_TEST_RUN(tests);
}
