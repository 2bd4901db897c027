/*
 * t-numa-fault.c - the allocation failure injection knobs of debug builds
 * (numa/mg_fault.h): MG_FAIL_CHUNK fails exactly the Nth chunk allocation,
 * MG_FAIL_*_P fails a seeded set, the same for the same seed, MG_FAIL_ARENA
 * fails an arena allocation leaving the arena as it was, and a malformed
 * knob makes mg_pools_create() refuse with -EINVAL.  Other builds compile
 * the hooks out: the file skips.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migration/mg_state.h"
#include "numa/mg_fault.h"
#include "numa/mg_numa.h"
#include "tests/mg_test.h"

#define RESERVE (8ul << 20)

static const char *const knobs[] = {
	"MG_FAIL_CHUNK",   "MG_FAIL_CHUNK_P", "MG_FAIL_ARENA",
	"MG_FAIL_ARENA_P", "MG_FAIL_SEED",    "MG_DEBUG_VSHIFT",
};

static void
clear_knobs(void)
{
	for (unsigned i = 0; i < MG_ARRAY_SIZE(knobs); i++)
		unsetenv(knobs[i]);
}

#if MG_FAULT_INJECT

static struct mg_topology *topo;

/* Pools created with the knobs @name=@value (and @name2=@value2). */
static struct mg_pools *
pools_with2(const char *name, const char *value, const char *name2,
	    const char *value2)
{
	struct mg_pools_config cfg = {.reserve_bytes = RESERVE};
	struct mg_pools *p = NULL;

	clear_knobs();
	if (name)
		setenv(name, value, 1);
	if (name2)
		setenv(name2, value2, 1);
	assert_int_equal(mg_pools_create(&p, topo, &cfg), 0);
	return p;
}

static struct mg_pools *
pools_with(const char *name, const char *value)
{
	return pools_with2(name, value, NULL, NULL);
}

/* Exactly the Nth allocation fails, with -ENOMEM and *out unchanged. */
static void
test_nth_chunk(void **state)
{
	struct mg_pools *p = pools_with("MG_FAIL_CHUNK", "3");
	void *c[6], *keep = (void *)&c;
	unsigned i;

	(void)state;
	for (i = 0; i < 6; i++) {
		void *x = keep;
		int err = mg_chunk_alloc(p, 0, 12, &x);

		if (i == 2) {
			assert_int_equal(err, -ENOMEM);
			assert_ptr_equal(x, keep);
			c[i] = NULL;
		} else {
			assert_int_equal(err, 0);
			c[i] = x;
		}
	}
	assert_int_equal(mg__fault_seen(MG_FAULT_CHUNK), 6);
	assert_int_equal(mg__fault_failed(MG_FAULT_CHUNK), 1);
	for (i = 0; i < 6; i++)
		if (c[i])
			mg_chunk_free(p, c[i], 12);
	/* bad arguments are still -EINVAL, and counted */
	assert_int_equal(mg_chunk_alloc(p, 0, MG_CHUNK_MIN_SHIFT - 1, &keep),
			 -EINVAL);
	mg_pools_destroy(p);
	clear_knobs();
}

/* Which allocations fail with p depends on the seed alone; p = 0.25 fails
 * about a quarter, p = 1 all of them. */
static void
test_probability(void **state)
{
	struct mg_pools *p;
	uint64_t fails[2] = {0, 0};
	unsigned r, i;
	char pattern[2][512];

	(void)state;
	for (r = 0; r < 2; r++) {
		p = pools_with2("MG_FAIL_CHUNK_P", "0.25", "MG_FAIL_SEED",
				"42");
		for (i = 0; i < sizeof(pattern[r]); i++) {
			void *x;
			int err = mg_chunk_alloc(p, 0, 12, &x);

			pattern[r][i] = err ? 1 : 0;
			fails[r] += err != 0;
			if (!err)
				mg_chunk_free(p, x, 12);
		}
		mg_pools_destroy(p);
	}
	assert_memory_equal(pattern[0], pattern[1], sizeof(pattern[0]));
	assert_true(fails[0] > 64 && fails[0] < 192);

	p = pools_with("MG_FAIL_CHUNK_P", "1");
	for (i = 0; i < 16; i++) {
		void *x;

		assert_int_equal(mg_chunk_alloc(p, 0, 12 + i % 10, &x),
				 -ENOMEM);
	}
	mg_pools_destroy(p);
	clear_knobs();
}

/* An arena allocation that fails leaves the arena as it was; the next one
 * works. */
static void
test_nth_arena(void **state)
{
	struct mg_pools *p = pools_with("MG_FAIL_ARENA", "2");
	struct mg_arena a, before;
	void *x, *y = NULL;

	(void)state;
	mg_arena_init(&a, p, 0);
	assert_int_equal(mg_arena_alloc(&a, 100, &x), 0);
	before = a;
	assert_int_equal(mg_arena_zalloc(&a, 5000, &y), -ENOMEM);
	assert_null(y);
	assert_memory_equal(&a, &before, sizeof(a));
	assert_int_equal(mg_arena_zalloc(&a, 5000, &y), 0);
	assert_true(mg_test_all_zero(y, 5000));
	assert_int_equal(mg__fault_seen(MG_FAULT_ARENA), 3);
	assert_int_equal(mg__fault_failed(MG_FAULT_ARENA), 1);
	mg_arena_release(&a);
	mg_pools_destroy(p);
	clear_knobs();
}

/*
 * A map whose handle is full moves its entries into a table when a key
 * comes that needs one; for the key UINT64_MAX, whose value is a block of
 * its own, that block is taken first, so whichever of the two allocations
 * fails, the map is as it was: its two entries in the handle, nothing live.
 */
static void
test_map_spill(void **state)
{
	static const char *const nth[] = {"1", "2"};
	unsigned i;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(nth); i++) {
		struct mg_pools *p = pools_with("MG_FAIL_ARENA", nth[i]);
		struct mg_arena a;
		struct mg_map m;
		uint64_t k;
		void *v;

		mg_arena_init(&a, p, 0);
		mg_map_init(&m, sizeof(uint64_t));
		for (k = 1; k <= 2; k++) {
			assert_int_equal(mg_map_upsert(&m, &a, k, &v), 1);
			*(uint64_t *)v = k * 10;
		}
		assert_int_equal(mg_map_upsert(&m, &a, UINT64_MAX, &v),
				 -ENOMEM);
		assert_int_equal(mg_map_count(&m), 2);
		assert_null(mg_map_find(&m, UINT64_MAX));
		for (k = 1; k <= 2; k++)
			assert_int_equal(*(uint64_t *)mg_map_find(&m, k),
					 k * 10);
		assert_int_equal(mg_arena_live(&a), 0);
		/* Then it works: the table takes them, UINT64_MAX aside. */
		assert_int_equal(mg_map_upsert(&m, &a, UINT64_MAX, &v), 1);
		*(uint64_t *)v = 7;
		assert_int_equal(mg_map_count(&m), 3);
		assert_int_equal(*(uint64_t *)mg_map_find(&m, UINT64_MAX), 7);
		for (k = 1; k <= 2; k++)
			assert_int_equal(*(uint64_t *)mg_map_find(&m, k),
					 k * 10);
		mg_map_clear(&m, &a);
		mg_arena_release(&a);
		mg_pools_destroy(p);
	}
	clear_knobs();
}

/* A knob that does not parse is refused, not ignored. */
static void
test_malformed(void **state)
{
	static const char *const bad[][2] = {
		{"MG_FAIL_CHUNK", "x"},	     {"MG_FAIL_CHUNK", "-1"},
		{"MG_FAIL_CHUNK", "3 "},     {"MG_FAIL_CHUNK_P", "1.5"},
		{"MG_FAIL_ARENA_P", "-0.1"}, {"MG_FAIL_ARENA_P", "nan"},
		{"MG_FAIL_SEED", "0x10"},    {"MG_DEBUG_VSHIFT", "21"},
	};
	struct mg_pools_config cfg = {.reserve_bytes = RESERVE};
	struct mg_pools *p;
	unsigned i;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		clear_knobs();
		setenv(bad[i][0], bad[i][1], 1);
		p = NULL;
		assert_int_equal(mg_pools_create(&p, topo, &cfg), -EINVAL);
		assert_null(p);
	}
	p = pools_with("MG_DEBUG_VSHIFT", "20");
	assert_int_equal(mg__fault_vshift(), 20);
	mg_pools_destroy(p);
	p = pools_with(NULL, NULL); /* unset: nothing fails */
	assert_int_equal(mg__fault_vshift(), 0);
	mg_pools_destroy(p);
	clear_knobs();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nth_chunk),
		cmocka_unit_test(test_probability),
		cmocka_unit_test(test_nth_arena),
		cmocka_unit_test(test_map_spill),
		cmocka_unit_test(test_malformed),
	};

	clear_knobs();
	if (mg_topology_create_fake(&topo, 0) != 0)
		mg_test_skip_all("no topology");
	return MG_TEST_RUN(tests);
}

#else

int
main(void)
{
	clear_knobs();
	mg_test_skip_all("allocation failure injection is in debug builds "
			 "only (make DEBUG=1)");
}

#endif /* MG_FAULT_INJECT */
