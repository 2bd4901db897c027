/*
 * t-migration-containers.c - the per-bin containers: hash map against a
 * reference under a seeded random workload (prefetch hints included),
 * growth past one 2 MiB segment, the keys 0 and UINT64_MAX, foreach, clear
 * and -ENOMEM; dense array (lazy zeroed segments, bounds); timer queue
 * (order, FIFO among equal times, `upto`, growth past one segment, clear).
 *
 * Every container lives in an arena on pools no other thread uses; each test
 * ends by clearing and releasing, and checks that the pool is back to its
 * baseline.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migration/mg_state.h"
#include "migration/mg_state.h"
#include "tests/mg_test.h"

#define RESERVE	     (256ul << 20)
#define TINY_RESERVE (2ul << 20)

static struct mg_topology *topo;
static struct mg_pools *pools;

static int
setup(void **state)
{
	(void)state;
	return mg_test_pools_open(&topo, &pools, 0, RESERVE);
}

static int
teardown(void **state)
{
	(void)state;
	mg_test_pools_close(topo, pools);
	return 0;
}

/* ---- map --------------------------------------------------------------------- */

/*
 * The reference: keys drawn from a fixed universe, so "is key j present and
 * what is its value" is an array lookup.  The universe holds small
 * sequential keys (0 included), random keys with the top bit set (disjoint
 * from those), and UINT64_MAX.
 */
#define UNIVERSE  (1u << 16)
#define MAX_VALUE 40

struct keyidx {
	uint64_t key;
	uint32_t idx;
};

static uint64_t universe[UNIVERSE];
static struct keyidx sorted[UNIVERSE];
static bool present[UNIVERSE];
static uint64_t ref_val[UNIVERSE];
static uint32_t visits[UNIVERSE];

static int
cmp_key(const void *x, const void *y)
{
	uint64_t a = ((const struct keyidx *)x)->key;
	uint64_t b = ((const struct keyidx *)y)->key;

	return (a > b) - (a < b);
}

static void
make_universe(uint64_t *seed)
{
	uint32_t i;

	for (i = 0; i < UNIVERSE / 2; i++)
		universe[i] = i;
	for (; i < UNIVERSE - 1; i++)
		universe[i] = mg_test_rand(seed) | (1ull << 63);
	universe[UNIVERSE - 1] = UINT64_MAX;
	for (i = 0; i < UNIVERSE; i++)
		sorted[i] = (struct keyidx){universe[i], i};
	qsort(sorted, UNIVERSE, sizeof(sorted[0]), cmp_key);
	for (i = 1; i < UNIVERSE; i++)
		assert_true(sorted[i - 1].key < sorted[i].key); /* distinct */
}

/* The universe index of @key. */
static uint32_t
index_of(uint64_t key)
{
	struct keyidx k = {.key = key};
	struct keyidx *s =
		bsearch(&k, sorted, UNIVERSE, sizeof(sorted[0]), cmp_key);

	assert_non_null(s);
	return s->idx;
}

/* A value of @vs bytes: @v in the first 8 (or fewer), a pattern after. */
static void
put_value(void *p, uint32_t vs, uint64_t v)
{
	unsigned char *c = p;
	uint32_t i;

	memcpy(c, &v, vs < 8 ? vs : 8);
	for (i = 8; i < vs; i++)
		c[i] = (unsigned char)(v * 31 + i);
}

static void
check_value(const void *p, uint32_t vs, uint64_t v)
{
	unsigned char want[MAX_VALUE];

	put_value(want, vs, v);
	assert_memory_equal(p, want, vs);
}

static struct visit_ctx {
	uint32_t value_size;
	uint64_t n;
	uint64_t stop_after;
} vctx;

/* Foreach callback: look the key up in the universe, count the visit. */
static int
visit(void *ctx, uint64_t key, void *value)
{
	struct visit_ctx *c = ctx;
	uint32_t j = index_of(key);

	assert_true(present[j]);
	check_value(value, c->value_size, ref_val[j]);
	visits[j]++;
	c->n++;
	return c->n == c->stop_after ? 42 : 0;
}

static void
map_random(uint32_t value_size, uint64_t ops)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	uint64_t seed = mg_test_seed(), count = 0, op;
	unsigned char zero[MAX_VALUE] = {0};
	struct mg_arena a;
	struct mg_map m;
	uint32_t j;
	void *v;

	make_universe(&seed);
	memset(present, 0, sizeof(present));
	mg_arena_init(&a, pools, 0);
	mg_map_init(&m, value_size);
	assert_int_equal(mg_map_count(&m), 0);
	mg_map_prefetch(&m, 1); /* no table yet: a no-op */
	for (op = 0; op < ops; op++) {
		uint64_t r = mg_test_rand(&seed);
		/* Mostly a hot half of the universe, so erases find keys. */
		uint32_t span = (r & 0x10) ? UNIVERSE : UNIVERSE / 4;
		uint64_t key;
		int rc;

		j = (uint32_t)((r >> 16) % span);
		if (j >= UNIVERSE / 8 && j < UNIVERSE / 4)
			j += UNIVERSE / 2 - UNIVERSE / 8; /* some random keys */
		if ((r >> 48) % 4096 == 0)
			j = UNIVERSE - 1;
		key = universe[j];
		switch (r % 8) {
		case 0:
		case 1:
		case 2:
			rc = mg_map_upsert(&m, &a, key, &v);
			assert_int_equal(rc, present[j] ? 0 : 1);
			assert_int_equal((uintptr_t)v % 8, 0);
			if (rc) {
				assert_memory_equal(v, zero, value_size);
				present[j] = true;
				count++;
			} else {
				check_value(v, value_size, ref_val[j]);
			}
			ref_val[j] = op;
			put_value(v, value_size, op);
			break;
		case 3:
		case 4:
			assert_int_equal(mg_map_erase(&m, &a, key), present[j]);
			count -= present[j];
			present[j] = false;
			break;
		default:
			/* a hint, present key or not: changes nothing */
			mg_map_prefetch(&m, universe[(j + 1) % UNIVERSE]);
			v = mg_map_find(&m, key);
			if (present[j]) {
				assert_non_null(v);
				check_value(v, value_size, ref_val[j]);
			} else {
				assert_null(v);
			}
			break;
		}
		assert_int_equal(mg_map_count(&m), count);
	}
	/* Every key agrees with the reference, and foreach sees each once. */
	for (j = 0; j < UNIVERSE; j++) {
		v = mg_map_find(&m, universe[j]);
		assert_true((v != NULL) == present[j]);
		if (v)
			check_value(v, value_size, ref_val[j]);
	}
	memset(visits, 0, sizeof(visits));
	vctx = (struct visit_ctx){.value_size = value_size};
	assert_int_equal(mg_map_foreach(&m, visit, &vctx), 0);
	assert_int_equal(vctx.n, count);
	for (j = 0; j < UNIVERSE; j++)
		assert_int_equal(visits[j], present[j]);
	/* A non-zero result stops the walk and is returned. */
	vctx = (struct visit_ctx){.value_size = value_size, .stop_after = 3};
	assert_int_equal(mg_map_foreach(&m, visit, &vctx), 42);
	assert_int_equal(vctx.n, 3);

	mg_map_clear(&m, &a);
	assert_int_equal(mg_map_count(&m), 0);
	assert_int_equal(mg_arena_live(&a), 0);
	assert_null(mg_map_find(&m, 0));
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

static void
test_map_random_8(void **state)
{
	(void)state;
	map_random(8, 600000);
}

static void
test_map_random_odd(void **state)
{
	(void)state;
	map_random(1, 150000);
	map_random(MAX_VALUE - 3, 150000);
}

static void
test_map_edge_keys(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	struct mg_arena a;
	struct mg_map m;
	void *v0, *vmax, *v;

	(void)state;
	mg_arena_init(&a, pools, 0);
	mg_map_init(&m, sizeof(uint64_t));
	assert_null(mg_map_find(&m, 0));
	assert_null(mg_map_find(&m, UINT64_MAX));
	assert_false(mg_map_erase(&m, &a, 0));
	assert_false(mg_map_erase(&m, &a, UINT64_MAX));
	assert_int_equal(mg_arena_bytes(&a), 0); /* nothing until an insert */

	assert_int_equal(mg_map_upsert(&m, &a, UINT64_MAX, &vmax), 1);
	assert_true(mg_test_all_zero(vmax, 8));
	*(uint64_t *)vmax = 7;
	assert_int_equal(mg_map_upsert(&m, &a, 0, &v0), 1);
	*(uint64_t *)v0 = 9;
	assert_int_equal(mg_map_count(&m), 2);
	assert_int_equal(mg_map_upsert(&m, &a, UINT64_MAX, &v), 0);
	assert_ptr_equal(v, vmax);
	assert_int_equal(*(uint64_t *)mg_map_find(&m, UINT64_MAX), 7);
	assert_int_equal(*(uint64_t *)mg_map_find(&m, 0), 9);
	assert_null(mg_map_find(&m, UINT64_MAX - 1));
	assert_null(mg_map_find(&m, 1));

	assert_true(mg_map_erase(&m, &a, UINT64_MAX));
	assert_false(mg_map_erase(&m, &a, UINT64_MAX));
	assert_null(mg_map_find(&m, UINT64_MAX));
	assert_int_equal(mg_map_count(&m), 1);
	assert_int_equal(mg_map_upsert(&m, &a, UINT64_MAX, &v), 1);
	assert_true(mg_test_all_zero(v, 8)); /* a new entry is zero again */
	assert_true(mg_map_erase(&m, &a, 0));
	assert_int_equal(mg_map_count(&m), 1);
	mg_map_clear(&m, &a);
	assert_int_equal(mg_map_count(&m), 0);
	assert_null(mg_map_find(&m, UINT64_MAX));
	assert_int_equal(mg_arena_live(&a), 0);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

#define SEG_KEYS 300000u /* > 131072 slots of 16 bytes: several segments */

static uint64_t
seg_key(uint64_t i)
{
	return i * 3; /* sequential-ish, with gaps to look up */
}

static void
test_map_segments(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	struct mg_arena a;
	struct mg_map m;
	uint64_t i;
	void *v;

	(void)state;
	mg_arena_init(&a, pools, 0);
	mg_map_init(&m, sizeof(uint64_t));
	for (i = 0; i < SEG_KEYS; i++) {
		assert_int_equal(mg_map_upsert(&m, &a, seg_key(i), &v), 1);
		*(uint64_t *)v = ~i;
	}
	assert_int_equal(mg_map_count(&m), SEG_KEYS);
	/* 2^19 slots of 16 bytes: four 2 MiB segments and their directory. */
	assert_true(mg_arena_bytes(&a) >= (8ul << 20));
	assert_true(mg_arena_bytes(&a) < (9ul << 20));
	for (i = 0; i < SEG_KEYS; i++) {
		v = mg_map_find(&m, seg_key(i));
		assert_non_null(v);
		assert_int_equal(*(uint64_t *)v, ~i);
		assert_null(mg_map_find(&m, seg_key(i) + 1));
	}
	for (i = 0; i < SEG_KEYS; i += 2)
		assert_true(mg_map_erase(&m, &a, seg_key(i)));
	assert_int_equal(mg_map_count(&m), SEG_KEYS / 2);
	for (i = 0; i < SEG_KEYS; i++) {
		v = mg_map_find(&m, seg_key(i));
		if (i % 2) {
			assert_non_null(v);
			assert_int_equal(*(uint64_t *)v, ~i);
		} else {
			assert_null(v);
		}
	}
	mg_map_clear(&m, &a);
	assert_int_equal(mg_arena_live(&a), 0);
	/* The segments went back to the pool; only slabs remain. */
	assert_true(mg_arena_bytes(&a) <= (64ul << 10));
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/* A reserved map takes its entries without growing; a map travels through
 * a byte stream (copy mode) whole, and a stream that claims more entries
 * than it holds is refused before anything is allocated. */
static void
test_map_reserve_and_copy(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0), reserved;
	static unsigned char buf[SEG_KEYS * 16 + 64];
	struct mg_writer w = {buf, 0, sizeof(buf)};
	struct mg_reader r;
	struct mg_arena a, b;
	struct mg_map m, n;
	uint64_t i;
	void *v;

	(void)state;
	mg_arena_init(&a, pools, 0);
	mg_arena_init(&b, pools, 0);
	mg_map_init(&m, sizeof(uint64_t));
	assert_int_equal(mg_map_reserve(&m, &a, SEG_KEYS), 0);
	reserved = mg_arena_bytes(&a);
	for (i = 0; i < SEG_KEYS; i++) {
		assert_int_equal(mg_map_upsert(&m, &a, seg_key(i), &v), 1);
		*(uint64_t *)v = ~i;
	}
	assert_int_equal(mg_arena_bytes(&a), reserved); /* never grew */
	assert_int_equal(mg_map_write(&m, &w), 0);

	mg_map_init(&n, sizeof(uint64_t));
	r = (struct mg_reader){buf, w.len - 1, 0}; /* one byte short */
	*(uint64_t *)(void *)buf += 1; /* and one entry more than written */
	assert_int_equal(mg_map_read(&n, &b, &r), -EINVAL);
	assert_int_equal(mg_arena_bytes(&b), 0);
	*(uint64_t *)(void *)buf -= 1;
	r = (struct mg_reader){buf, w.len, 0};
	assert_int_equal(mg_map_read(&n, &b, &r), 0);
	assert_int_equal(r.pos, w.len);
	assert_int_equal(mg_map_count(&n), SEG_KEYS);
	for (i = 0; i < SEG_KEYS; i++) {
		v = mg_map_find(&n, seg_key(i));
		assert_non_null(v);
		assert_int_equal(*(uint64_t *)v, ~i);
	}
	mg_arena_release(&a);
	mg_arena_release(&b);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/* A map that cannot grow keeps every entry and its count. */
static void
test_map_enomem(void **state)
{
	struct mg_pools_config cfg = {.reserve_bytes = TINY_RESERVE};
	struct mg_pools *p = NULL;
	struct mg_arena a;
	struct mg_map m;
	size_t bytes, live, base;
	uint64_t i, n;
	void *v;
	int rc;

	(void)state;
	assert_int_equal(mg_pools_create(&p, topo, &cfg), 0);
	base = mg_pools_bytes_in_use(p, 0);
	mg_arena_init(&a, p, 0);
	mg_map_init(&m, sizeof(uint64_t));
	for (i = 0;; i++) {
		bytes = mg_arena_bytes(&a);
		live = mg_arena_live(&a);
		rc = mg_map_upsert(&m, &a, i, &v);
		if (rc < 0)
			break;
		assert_int_equal(rc, 1);
		*(uint64_t *)v = i + 1;
	}
	assert_int_equal(rc, -ENOMEM);
	n = i;
	/* One 2 MiB chunk: 2^17 slots hold 7/8 * 2^17 entries. */
	assert_int_equal(n, 131072 - 131072 / 8);
	assert_int_equal(mg_map_count(&m), n);
	assert_int_equal(mg_arena_bytes(&a), bytes);
	assert_int_equal(mg_arena_live(&a), live);
	assert_null(mg_map_find(&m, n));
	for (i = 0; i < n; i++) {
		v = mg_map_find(&m, i);
		assert_non_null(v);
		assert_int_equal(*(uint64_t *)v, i + 1);
	}
	/* Existing keys still update; an erase makes room for one insert. */
	assert_int_equal(mg_map_upsert(&m, &a, 5, &v), 0);
	assert_true(mg_map_erase(&m, &a, 5));
	assert_int_equal(mg_map_upsert(&m, &a, n, &v), 1);
	assert_int_equal(mg_map_upsert(&m, &a, n + 1, &v), -ENOMEM);
	mg_map_clear(&m, &a);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(p, 0), base);
	mg_pools_destroy(p);
}

/* Take every chunk below a page from @p: no slab can be had.  Return how
 * many, in @chunks with their shifts. */
static size_t
take_sub_page(struct mg_pools *p, void **chunks, unsigned *shifts, size_t max)
{
	size_t n = 0;
	unsigned shift;

	for (shift = MG_CHUNK_MIN_SHIFT; shift < MG_CHUNK_PAGE_SHIFT; shift++)
		while (n < max && mg_chunk_alloc(p, 0, shift, &chunks[n]) == 0)
			shifts[n++] = shift;
	assert_true(n < max);
	return n;
}

/*
 * A map holds its first entries in its handle (two of 8-byte values, one of
 * 16 or 24, none above): up to that many it allocates nothing, even from an
 * exhausted pool, and the next insert moves them into a table -- UINT64_MAX
 * into its own block -- or, when the pool cannot give one, changes nothing.
 */
static void
test_map_inline(void **state)
{
	static const struct {
		uint32_t value_size;
		unsigned cap;
	} cases[] = {{1, 2}, {8, 2}, {16, 1}, {24, 1}, {25, 0}, {40, 0}};
	static void *chunks[1 << 16];
	static unsigned shifts[1 << 16];
	const uint64_t keys[] = {UINT64_MAX, 0, 7, 1u << 20};
	struct mg_pools_config cfg = {.reserve_bytes = TINY_RESERVE};
	struct mg_pools *p = NULL;
	unsigned char want[4][40];
	size_t c, n, i;
	unsigned k;

	(void)state;
	assert_int_equal(mg_pools_create(&p, topo, &cfg), 0);
	for (c = 0; c < MG_ARRAY_SIZE(cases); c++) {
		uint32_t vs = cases[c].value_size;
		unsigned cap = cases[c].cap;
		struct mg_arena a;
		struct mg_map m;
		void *v;

		n = take_sub_page(p, chunks, shifts, MG_ARRAY_SIZE(chunks));
		mg_arena_init(&a, p, 0);
		mg_map_init(&m, vs);
		for (k = 0; k < 4; k++)
			memset(want[k], (int)(k + 1), vs);
		for (k = 0; k < cap; k++) {
			assert_int_equal(mg_map_upsert(&m, &a, keys[k], &v), 1);
			memcpy(v, want[k], vs);
			assert_int_equal(mg_map_upsert(&m, &a, keys[k], &v), 0);
			assert_memory_equal(v, want[k], vs);
		}
		assert_int_equal(mg_arena_bytes(&a), 0);
		assert_int_equal(mg_map_count(&m), cap);
		assert_null(mg_map_find(&m, 3));
		assert_false(mg_map_erase(&m, &a, 3));
		/* The one more that needs a table: refused, nothing changed. */
		assert_int_equal(mg_map_upsert(&m, &a, keys[cap], &v), -ENOMEM);
		assert_int_equal(mg_map_reserve(&m, &a, cap + 1), -ENOMEM);
		assert_int_equal(mg_map_reserve(&m, &a, cap), 0);
		assert_int_equal(mg_map_count(&m), cap);
		assert_int_equal(mg_arena_bytes(&a), 0);
		for (k = 0; k < cap; k++)
			assert_memory_equal(mg_map_find(&m, keys[k]), want[k],
					    vs);
		/* Room again: a table takes them all and two more. */
		for (i = 0; i < n; i++)
			mg_chunk_free(p, chunks[i], shifts[i]);
		for (k = cap; k < cap + 2; k++) {
			assert_int_equal(mg_map_upsert(&m, &a, keys[k], &v), 1);
			memcpy(v, want[k], vs);
		}
		assert_true(mg_arena_bytes(&a) > 0);
		assert_int_equal(mg_map_count(&m), cap + 2);
		for (k = 0; k < cap + 2; k++)
			assert_memory_equal(mg_map_find(&m, keys[k]), want[k],
					    vs);
		/* Erased down to nothing, the map keeps its table. */
		for (k = 0; k < cap + 2; k++) {
			assert_true(mg_map_erase(&m, &a, keys[k]));
			assert_null(mg_map_find(&m, keys[k]));
			assert_int_equal(mg_map_count(&m), cap + 1 - k);
		}
		mg_map_clear(&m, &a);
		mg_arena_release(&a);
		/* In the handle again after a clear; an erase fills the hole
		 * with the last entry. */
		mg_arena_init(&a, p, 0);
		for (k = 0; k < cap; k++) {
			assert_int_equal(mg_map_upsert(&m, &a, keys[k], &v), 1);
			memcpy(v, want[k], vs);
		}
		if (cap == 2) {
			assert_true(mg_map_erase(&m, &a, keys[0]));
			assert_memory_equal(mg_map_find(&m, keys[1]), want[1],
					    vs);
			assert_null(mg_map_find(&m, keys[0]));
		}
		assert_int_equal(mg_arena_bytes(&a), 0);
		mg_map_clear(&m, &a);
		mg_arena_release(&a);
	}
	mg_pools_destroy(p);
}

/* ---- array -------------------------------------------------------------------- */

static void
test_array_basic(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	struct mg_array arr;
	struct mg_arena a;
	void *v, *w;
	uint64_t i;

	(void)state;
	mg_arena_init(&a, pools, 0);
	mg_array_init(&arr, 1000, sizeof(uint64_t));
	assert_int_equal(mg_arena_bytes(&a), 0);
	for (i = 0; i < 1000; i++)
		assert_null(mg_array_peek(&arr, i));
	assert_null(mg_array_peek(&arr, 1000));
	v = &i;
	assert_int_equal(mg_array_at(&arr, &a, 1000, &v), -EINVAL);
	assert_int_equal(mg_array_at(&arr, &a, UINT64_MAX, &v), -EINVAL);
	assert_ptr_equal(v, &i);
	assert_int_equal(mg_arena_bytes(&a), 0);

	for (i = 0; i < 1000; i++) {
		assert_int_equal(mg_array_at(&arr, &a, i, &v), 0);
		assert_int_equal(*(uint64_t *)v, 0);
		*(uint64_t *)v = i * i;
	}
	/* One segment of 1000 elements (an 8 KiB block), a 16-byte directory. */
	assert_int_equal(mg_arena_live(&a), 8192 + 16);
	for (i = 0; i < 1000; i++) {
		w = mg_array_peek(&arr, i);
		assert_int_equal(mg_array_at(&arr, &a, i, &v), 0);
		assert_ptr_equal(v, w);
		assert_int_equal(*(uint64_t *)v, i * i);
		if (i)
			assert_ptr_equal((char *)w - 8,
					 mg_array_peek(&arr, i - 1));
	}
	mg_array_clear(&arr, &a);
	assert_null(mg_array_peek(&arr, 3));
	assert_int_equal(mg_arena_live(&a), 0);
	/* Cleared elements read as zero again, in recycled memory. */
	assert_int_equal(mg_array_at(&arr, &a, 999, &v), 0);
	assert_int_equal(*(uint64_t *)v, 0);
	mg_array_clear(&arr, &a);

	/* An empty array has no elements. */
	mg_array_init(&arr, 0, 4);
	assert_int_equal(mg_array_at(&arr, &a, 0, &v), -EINVAL);
	assert_null(mg_array_peek(&arr, 0));
	mg_array_clear(&arr, &a);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

static void
test_array_segments(void **state)
{
	const uint64_t len = 1000000; /* 12-byte elements: 8 segments */
	const uint32_t vs = 12;
	size_t base = mg_pools_bytes_in_use(pools, 0);
	struct mg_arena a, dirty;
	struct mg_array arr;
	void *v, *p[4];
	uint64_t i;
	int k;

	(void)state;
	/* Leave dirty 2 MiB chunks in the pool for the segments to reuse. */
	mg_arena_init(&dirty, pools, 0);
	for (k = 0; k < 4; k++) {
		assert_int_equal(mg_arena_alloc(&dirty, 2ul << 20, &p[k]), 0);
		memset(p[k], 0xee, 2ul << 20);
	}
	mg_arena_release(&dirty);

	mg_arena_init(&a, pools, 0);
	mg_array_init(&arr, len, vs);
	/* Touch the first and last segments only. */
	for (i = 0; i < 1000; i++) {
		assert_int_equal(mg_array_at(&arr, &a, i, &v), 0);
		assert_true(mg_test_all_zero(v, vs));
		memset(v, (int)(i % 251) + 1, vs);
		assert_int_equal(mg_array_at(&arr, &a, len - 1 - i, &v), 0);
		assert_true(mg_test_all_zero(v, vs));
		memset(v, (int)(i % 241) + 1, vs);
	}
	assert_null(mg_array_peek(&arr, len / 2));
	assert_null(mg_array_peek(&arr, 200000));
	assert_true(mg_arena_bytes(&a) <= (4ul << 20) + (64ul << 10));
	for (i = 0; i < 1000; i++) {
		unsigned char want[12];

		memset(want, (int)(i % 251) + 1, vs);
		assert_memory_equal(mg_array_peek(&arr, i), want, vs);
		memset(want, (int)(i % 241) + 1, vs);
		assert_memory_equal(mg_array_peek(&arr, len - 1 - i), want, vs);
	}
	/* Every segment, touched once each: all zero, all distinct. */
	for (i = 0; i < len; i += 4096) {
		assert_int_equal(mg_array_at(&arr, &a, i, &v), 0);
		if (i >= 1000 && i < len - 1000)
			assert_true(mg_test_all_zero(v, vs));
		assert_ptr_equal(v, mg_array_peek(&arr, i));
	}
	assert_int_equal(mg_array_at(&arr, &a, len, &v), -EINVAL);
	assert_true(mg_arena_live(&a) >= len * vs);
	mg_array_clear(&arr, &a);
	assert_int_equal(mg_arena_live(&a), 0);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/* ---- timers ------------------------------------------------------------------- */

struct trec {
	uint64_t id;   /* push order */
	uint64_t time; /* a copy, to check the record travels with its time */
};

#define MAX_IDS (1u << 18)

static void
test_timers_order(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	uint64_t seed = mg_test_seed(), t, prev_t = 0, prev_id = 0, i;
	const uint64_t n = 200000; /* 32-byte entries: several segments */
	struct mg_timers q;
	struct mg_arena a;
	struct trec r;

	(void)state;
	mg_arena_init(&a, pools, 0);
	mg_timers_init(&q, sizeof(r));
	assert_int_equal(mg_timers_next(&q), UINT64_MAX);
	assert_false(mg_timers_pop(&q, UINT64_MAX, &t, &r));
	for (i = 0; i < n; i++) {
		r.id = i;
		r.time = 1000 + mg_test_rand(&seed) % 5000; /* many ties */
		assert_int_equal(mg_timers_push(&q, &a, r.time, &r), 0);
	}
	assert_int_equal(mg_timers_count(&q), n);
	assert_true(mg_arena_bytes(&a) > (4ul << 20));
	for (i = 0; i < n; i++) {
		uint64_t next = mg_timers_next(&q);

		assert_true(mg_timers_pop(&q, UINT64_MAX, &t, &r));
		assert_int_equal(t, next);
		assert_int_equal(r.time, t);
		assert_true(t >= prev_t);
		if (i && t == prev_t)
			assert_true(r.id > prev_id); /* FIFO among ties */
		prev_t = t;
		prev_id = r.id;
	}
	assert_int_equal(mg_timers_count(&q), 0);
	assert_int_equal(mg_timers_next(&q), UINT64_MAX);
	/* The heap keeps its memory until cleared. */
	assert_true(mg_arena_live(&a) > 0);
	mg_timers_clear(&q, &a);
	assert_int_equal(mg_arena_live(&a), 0);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/*
 * Interleaved pushes and pops against a reference: live times always lie in
 * [now, now + WINDOW), so one FIFO per time (a ring of lists) is an exact
 * reference for "earliest time, then earliest pushed".
 */
#define WINDOW 100
#define RING   128

static uint32_t ring_head[RING], ring_tail[RING]; /* id + 1, 0 = empty */
static uint32_t next_id[MAX_IDS];

static void
ref_push(uint64_t time, uint32_t id)
{
	uint32_t b = (uint32_t)(time % RING);

	next_id[id] = 0;
	if (ring_tail[b])
		next_id[ring_tail[b] - 1] = id + 1;
	else
		ring_head[b] = id + 1;
	ring_tail[b] = id + 1;
}

/* The earliest entry at a time in [lo, upto], or false. */
static bool
ref_pop(uint64_t lo, uint64_t upto, uint64_t *time, uint32_t *id)
{
	uint64_t t;

	for (t = lo; t <= upto; t++) {
		uint32_t b = (uint32_t)(t % RING);

		if (ring_head[b]) {
			*id = ring_head[b] - 1;
			*time = t;
			ring_head[b] = next_id[*id];
			if (!ring_head[b])
				ring_tail[b] = 0;
			return true;
		}
	}
	return false;
}

static void
test_timers_reference(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	uint64_t seed = mg_test_seed(), now = 0, t, rt;
	uint32_t id = 0, rid, k, count = 0;
	struct mg_timers q;
	struct mg_arena a;
	struct trec r;

	(void)state;
	memset(ring_head, 0, sizeof(ring_head));
	memset(ring_tail, 0, sizeof(ring_tail));
	mg_arena_init(&a, pools, 0);
	mg_timers_init(&q, sizeof(r));
	while (id < MAX_IDS - 16) {
		uint64_t r0 = mg_test_rand(&seed), upto, pops;
		bool got, want;

		now++;
		for (k = 0; k < r0 % 9; k++, id++) {
			r.id = id;
			r.time = now + mg_test_rand(&seed) % WINDOW;
			assert_int_equal(mg_timers_push(&q, &a, r.time, &r), 0);
			ref_push(r.time, id);
			count++;
		}
		/* Some pops up to a later time, then all up to now. */
		upto = now + (r0 >> 8) % 50;
		pops = (r0 >> 16) % 4;
		for (;;) {
			if (pops == 0)
				upto = now;
			got = mg_timers_pop(&q, upto, &t, &r);
			want = ref_pop(now, upto, &rt, &rid);
			assert_int_equal(got, want);
			if (!got)
				break;
			assert_int_equal(t, rt);
			assert_int_equal(r.id, rid);
			assert_int_equal(r.time, t);
			count--;
			if (pops)
				pops--;
		}
		assert_int_equal(mg_timers_count(&q), count);
		assert_true(mg_timers_next(&q) > now);
	}
	mg_timers_clear(&q, &a);
	assert_int_equal(mg_timers_count(&q), 0);
	assert_false(mg_timers_pop(&q, UINT64_MAX, &t, &r));
	assert_int_equal(mg_arena_live(&a), 0);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

static void
test_timers_upto_and_empty_records(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	struct mg_timers q;
	struct mg_arena a;
	uint64_t t = 0, i;

	(void)state;
	mg_arena_init(&a, pools, 0);
	mg_timers_init(&q, 0); /* times only */
	assert_int_equal(mg_timers_push(&q, &a, 30, NULL), 0);
	assert_int_equal(mg_timers_push(&q, &a, 10, NULL), 0);
	assert_int_equal(mg_timers_push(&q, &a, 20, NULL), 0);
	assert_int_equal(mg_timers_next(&q), 10);
	assert_false(mg_timers_pop(&q, 9, &t, NULL));
	assert_int_equal(mg_timers_count(&q), 3);
	assert_true(mg_timers_pop(&q, 10, &t, NULL));
	assert_int_equal(t, 10);
	assert_false(mg_timers_pop(&q, 19, &t, NULL));
	assert_true(mg_timers_pop(&q, 25, &t, NULL));
	assert_int_equal(t, 20);
	assert_false(mg_timers_pop(&q, 25, &t, NULL));
	assert_int_equal(mg_timers_next(&q), 30);
	assert_true(mg_timers_pop(&q, UINT64_MAX, &t, NULL));
	assert_int_equal(t, 30);
	assert_int_equal(mg_timers_count(&q), 0);

	/* Clear with entries queued, then reuse. */
	for (i = 0; i < 1000; i++)
		assert_int_equal(mg_timers_push(&q, &a, 1000 - i, NULL), 0);
	mg_timers_clear(&q, &a);
	assert_int_equal(mg_timers_count(&q), 0);
	assert_int_equal(mg_timers_next(&q), UINT64_MAX);
	assert_int_equal(mg_arena_live(&a), 0);
	assert_int_equal(mg_timers_push(&q, &a, UINT64_MAX, NULL), 0);
	assert_int_equal(mg_timers_push(&q, &a, 0, NULL), 0);
	assert_true(mg_timers_pop(&q, 0, &t, NULL));
	assert_int_equal(t, 0);
	assert_true(mg_timers_pop(&q, UINT64_MAX, &t, NULL));
	assert_int_equal(t, UINT64_MAX);
	mg_timers_clear(&q, &a);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/* Copy mode writes a queue without changing it (a copy that fails keeps
 * its source); one read back pops the same (time, record) pairs, and a
 * writer too small for it says -ENOMEM. */
static void
test_timers_write_read(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	static unsigned char buf[4 + 3000 * (8 + sizeof(struct trec))];
	struct mg_writer w = {buf, 0, sizeof(buf)}, small = {buf, 0, 100};
	struct mg_timers q, c;
	struct mg_reader r;
	struct mg_arena a, b;
	struct trec x, y;
	uint64_t i, t, u;

	(void)state;
	mg_arena_init(&a, pools, 0);
	mg_arena_init(&b, pools, 0);
	mg_timers_init(&q, sizeof(x));
	mg_timers_init(&c, sizeof(x));
	for (i = 0; i < 3000; i++) {
		x.id = i;
		x.time = (i * 7919) % 1000;
		assert_int_equal(mg_timers_push(&q, &a, x.time, &x), 0);
	}
	assert_int_equal(mg_timers_write(&q, &small), -ENOMEM);
	assert_int_equal(mg_timers_write(&q, &w), 0);
	assert_int_equal(w.len, sizeof(buf));
	assert_int_equal(mg_timers_count(&q), 3000);
	r = (struct mg_reader){buf, w.len, 0};
	assert_int_equal(mg_timers_read(&c, &b, &r), 0);
	assert_int_equal(r.pos, w.len);
	/* Same times in the same order; within a time, any order of ids:
	 * the ids of one time add up alike. */
	while (mg_timers_pop(&q, UINT64_MAX, &t, &x)) {
		uint64_t sx = x.id, sy;

		assert_true(mg_timers_pop(&c, UINT64_MAX, &u, &y));
		assert_int_equal(t, u);
		assert_int_equal(y.time, u);
		sy = y.id;
		while (mg_timers_next(&q) == t) {
			assert_true(mg_timers_pop(&q, t, &u, &x));
			assert_true(mg_timers_pop(&c, t, &u, &y));
			sx += x.id;
			sy += y.id;
		}
		assert_int_equal(sx, sy);
	}
	assert_int_equal(mg_timers_count(&c), 0);
	mg_timers_clear(&q, &a);
	mg_timers_clear(&c, &b);
	mg_arena_release(&a);
	mg_arena_release(&b);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/* A queue that cannot grow keeps its entries. */
static void
test_timers_enomem(void **state)
{
	struct mg_pools_config cfg = {.reserve_bytes = TINY_RESERVE};
	struct mg_pools *p = NULL;
	struct mg_timers q;
	struct mg_arena a;
	struct trec r;
	uint64_t i, n, t;
	size_t base;
	int rc;

	(void)state;
	assert_int_equal(mg_pools_create(&p, topo, &cfg), 0);
	base = mg_pools_bytes_in_use(p, 0);
	mg_arena_init(&a, p, 0);
	mg_timers_init(&q, sizeof(r));
	for (i = 0;; i++) {
		r.id = i;
		r.time = (i * 7919) % 1000;
		rc = mg_timers_push(&q, &a, r.time, &r);
		if (rc)
			break;
	}
	assert_int_equal(rc, -ENOMEM);
	n = i;
	/* 32-byte entries: one 2 MiB segment; a second one is refused. */
	assert_int_equal(n, 65536);
	assert_int_equal(mg_timers_count(&q), n);
	for (i = 0; i < n; i++) {
		assert_true(mg_timers_pop(&q, UINT64_MAX, &t, &r));
		assert_int_equal(r.time, t);
	}
	mg_timers_clear(&q, &a);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(p, 0), base);
	mg_pools_destroy(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_random_8),
		cmocka_unit_test(test_map_random_odd),
		cmocka_unit_test(test_map_edge_keys),
		cmocka_unit_test(test_map_segments),
		cmocka_unit_test(test_map_reserve_and_copy),
		cmocka_unit_test(test_map_enomem),
		cmocka_unit_test(test_map_inline),
		cmocka_unit_test(test_array_basic),
		cmocka_unit_test(test_array_segments),
		cmocka_unit_test(test_timers_order),
		cmocka_unit_test(test_timers_reference),
		cmocka_unit_test(test_timers_upto_and_empty_records),
		cmocka_unit_test(test_timers_write_read),
		cmocka_unit_test(test_timers_enomem),
	};

	mg_test_init();
	return cmocka_run_group_tests_name(__FILE__, tests, setup, teardown);
}
