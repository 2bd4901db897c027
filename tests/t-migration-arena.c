/*
 * t-migration-arena.c - the bin arena: small and large blocks, alignment,
 * reuse, accounting (checked against the pool's own count), ranges, release,
 * and -EINVAL / -ENOMEM leaving the arena unchanged.
 *
 * The arena draws from node 0 of pools no other thread uses, so the pool's
 * bytes in use minus its baseline must equal mg_arena_bytes() at all times.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migration/mg_state.h"
#include "tests/mg_test.h"

#define RESERVE	     (256ul << 20)
#define TINY_RESERVE (2ul << 20) /* per class: 512 slabs, one 2 MiB chunk */
#define LARGE_MAX    (2ul << 20)
#define MAX_BLOCKS   8192
#define MAX_RANGES   8192

struct block {
	unsigned char *p;
	size_t bytes;
	uint64_t tag;
};

static struct mg_topology *topo;
static struct mg_pools *pools;
static struct block blocks[MAX_BLOCKS];
static struct mg_range ranges[MAX_RANGES + 1];

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

static struct mg_pools *
tiny_pools(void)
{
	struct mg_pools_config cfg = {.reserve_bytes = TINY_RESERVE};
	struct mg_pools *p = NULL;

	assert_int_equal(mg_pools_create(&p, topo, &cfg), 0);
	return p;
}

/* What a block of @bytes costs: a power of two, at least 16. */
static size_t
block_size(size_t bytes)
{
	return bytes <= 16 ? 16 : (size_t)1 << mg_log2_ceil(bytes);
}

/* The pool and the arena agree on what the arena owns. */
static void
check_owned(const struct mg_pools *p, size_t base, const struct mg_arena *a)
{
	assert_int_equal(mg_pools_bytes_in_use(p, 0) - base, mg_arena_bytes(a));
	assert_true(mg_arena_live(a) <= mg_arena_bytes(a));
}

static void
fill(struct block *b)
{
	size_t i;

	for (i = 0; i + 1 < b->bytes; i += 61)
		b->p[i] = (unsigned char)(b->tag + i);
	b->p[b->bytes - 1] = (unsigned char)(b->tag * 7);
}

static void
check_fill(const struct block *b)
{
	size_t i;

	for (i = 0; i + 1 < b->bytes; i += 61)
		assert_int_equal(b->p[i], (unsigned char)(b->tag + i));
	assert_int_equal(b->p[b->bytes - 1], (unsigned char)(b->tag * 7));
}

static void
alloc_block(struct mg_arena *a, struct block *b, size_t bytes, uint64_t tag)
{
	void *p = NULL;
	size_t align = bytes > 2048 ? block_size(bytes) : 16;

	assert_int_equal(mg_arena_alloc(a, bytes, &p), 0);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % align, 0);
	b->p = p;
	b->bytes = bytes;
	b->tag = tag;
	fill(b);
}

static int
cmp_range(const void *x, const void *y)
{
	uintptr_t a = (uintptr_t)((const struct mg_range *)x)->addr;
	uintptr_t b = (uintptr_t)((const struct mg_range *)y)->addr;

	return (a > b) - (a < b);
}

/* An arena's slabs below a page stay out of its ranges: they share pages
 * with other arenas.  Each fresh slab takes the next size up at least, so
 * there are at most five, 128 B .. 2 KiB (and five when a directory grew
 * from nothing to a page by itself). */
#define SUBPAGE_SLABS	  5
#define SUBPAGE_MAX_BYTES (128 + 256 + 512 + 1024 + 2048)

/*
 * The ranges are the arena's chunks of a page or more: as many as it says,
 * page and naturally aligned, disjoint, summing to its bytes but for its
 * sub-page slabs, covering the @n blocks but for small ones there.
 */
static size_t
check_ranges(const struct mg_arena *a, const struct block *b, size_t n)
{
	size_t nr = mg_arena_ranges(a, NULL, 0), i, j, sum = 0;

	assert_true(nr <= MAX_RANGES);
	assert_int_equal(mg_arena_ranges(a, ranges, MAX_RANGES), nr);
	for (i = 0; i < nr; i++) {
		assert_true(mg_is_pow2(ranges[i].bytes));
		assert_true(ranges[i].bytes >= MG_PAGE_SIZE &&
			    ranges[i].bytes <= LARGE_MAX);
		assert_int_equal((uintptr_t)ranges[i].addr % ranges[i].bytes,
				 0);
		sum += ranges[i].bytes;
	}
	assert_true(sum <= mg_arena_bytes(a) &&
		    mg_arena_bytes(a) - sum <= SUBPAGE_MAX_BYTES);
	qsort(ranges, nr, sizeof(ranges[0]), cmp_range);
	for (i = 1; i < nr; i++)
		assert_true((uintptr_t)ranges[i - 1].addr +
				    ranges[i - 1].bytes <=
			    (uintptr_t)ranges[i].addr);
	for (j = 0; j < n; j++) {
		uintptr_t p = (uintptr_t)b[j].p;
		bool in = false;

		for (i = 0; i < nr && !in; i++)
			in = p >= (uintptr_t)ranges[i].addr &&
			     p + b[j].bytes <= (uintptr_t)ranges[i].addr +
						       ranges[i].bytes;
		assert_true(in ||
			    (mg_arena_bytes(a) != sum && b[j].bytes <= 2048));
	}
	return nr;
}

static void
test_empty(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	struct mg_arena a;

	(void)state;
	mg_arena_init(&a, pools, 0);
	assert_int_equal(mg_arena_bytes(&a), 0);
	assert_int_equal(mg_arena_live(&a), 0);
	assert_int_equal(mg_arena_ranges(&a, NULL, 0), 0);
	mg_arena_release(&a);
	assert_int_equal(mg_arena_bytes(&a), 0);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

static void
test_einval(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0);
	void *sentinel = &base, *p = sentinel;
	struct mg_arena a;

	(void)state;
	mg_arena_init(&a, pools, 0);
	assert_int_equal(mg_arena_alloc(&a, 0, &p), -EINVAL);
	assert_int_equal(mg_arena_alloc(&a, LARGE_MAX + 1, &p), -EINVAL);
	assert_int_equal(mg_arena_alloc(&a, SIZE_MAX, &p), -EINVAL);
	assert_int_equal(mg_arena_zalloc(&a, 0, &p), -EINVAL);
	assert_int_equal(mg_arena_zalloc(&a, LARGE_MAX + 1, &p), -EINVAL);
	assert_ptr_equal(p, sentinel);
	assert_int_equal(mg_arena_bytes(&a), 0);
	assert_int_equal(mg_arena_live(&a), 0);
	assert_int_equal(mg_arena_alloc(&a, LARGE_MAX, &p), 0);
	assert_int_equal((uintptr_t)p % LARGE_MAX, 0);
	mg_arena_free(&a, p, LARGE_MAX);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

static void
test_small(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0), live = 0, bytes;
	uint64_t seed = mg_test_seed();
	const size_t n = 3000;
	struct mg_arena a;
	size_t i;
	void *p;

	(void)state;
	mg_arena_init(&a, pools, 0);
	for (i = 0; i < n; i++) {
		alloc_block(&a, &blocks[i], 1 + mg_test_rand(&seed) % 2048, i);
		live += block_size(blocks[i].bytes);
		assert_int_equal(mg_arena_live(&a), live);
	}
	check_owned(pools, base, &a);
	for (i = 0; i < n; i++)
		check_fill(&blocks[i]); /* no two blocks overlap */
	check_ranges(&a, blocks, n);

	/* A freed block is the next one of its class. */
	bytes = mg_arena_bytes(&a);
	mg_arena_free(&a, blocks[7].p, blocks[7].bytes);
	assert_int_equal(mg_arena_live(&a), live - block_size(blocks[7].bytes));
	assert_int_equal(mg_arena_alloc(&a, block_size(blocks[7].bytes), &p),
			 0);
	assert_ptr_equal(p, blocks[7].p);
	assert_int_equal(mg_arena_live(&a), live);

	/* Freeing keeps the slabs; the same classes again need no more. */
	for (i = 0; i < n; i++)
		mg_arena_free(&a, blocks[i].p, blocks[i].bytes);
	assert_int_equal(mg_arena_live(&a), 0);
	assert_int_equal(mg_arena_bytes(&a), bytes);
	for (i = 0; i < n; i++)
		alloc_block(&a, &blocks[i], blocks[i].bytes, i + 1);
	assert_int_equal(mg_arena_bytes(&a), bytes);
	assert_int_equal(mg_arena_live(&a), live);
	for (i = 0; i < n; i++)
		check_fill(&blocks[i]);

	/* Small requests of every size round up to their class. */
	for (i = 0; i < n; i++)
		mg_arena_free(&a, blocks[i].p, blocks[i].bytes);
	for (i = 1; i <= 2048; i++) {
		assert_int_equal(mg_arena_alloc(&a, i, &p), 0);
		assert_int_equal((uintptr_t)p % 16, 0);
		assert_int_equal(mg_arena_live(&a), block_size(i));
		mg_arena_free(&a, p, i);
	}
	check_owned(pools, base, &a);
	mg_arena_release(&a);
	assert_int_equal(mg_arena_bytes(&a), 0);
	assert_int_equal(mg_arena_live(&a), 0);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/*
 * No byte of a slab is lost: a retired slab's tail serves the smaller
 * classes, and a free large block is split for small ones.
 */
static void
test_small_no_waste(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0), in_big = 0, bytes;
	struct mg_arena a;
	void *p, *big;

	(void)state;
	mg_arena_init(&a, pools, 0);
	/* Slab 1, the first: 128 B, listed by the one directory entry the
	 * arena struct holds. */
	assert_int_equal(mg_arena_alloc(&a, 16, &p), 0);
	assert_int_equal(mg_arena_bytes(&a), 128);
	assert_int_equal(mg_arena_alloc(&a, 64, &p), 0);
	assert_int_equal(mg_arena_bytes(&a), 128);
	/* Slab 2 is 128 B again, not the next size (256 B): the block and
	 * the directory's first block (32 B) take more than a quarter of
	 * that.  Slab 1's 48-byte tail goes on the free lists ... */
	assert_int_equal(mg_arena_alloc(&a, 64, &p), 0);
	assert_int_equal(mg_arena_bytes(&a), 256);
	/* ... and serves 32 B and 16 B; slab 2's last 32 B one more. */
	assert_int_equal(mg_arena_alloc(&a, 32, &p), 0);
	assert_int_equal(mg_arena_alloc(&a, 16, &p), 0);
	assert_int_equal(mg_arena_alloc(&a, 32, &p), 0);
	assert_int_equal(mg_arena_bytes(&a), 256);
	assert_int_equal(mg_arena_live(&a), 256 - 32);
	/* Slab 3 is the block's size (the next size is 512 B). */
	assert_int_equal(mg_arena_alloc(&a, 2048, &big), 0);
	bytes = mg_arena_bytes(&a);
	assert_int_equal(bytes, 256 + 2048);
	/* A free 2 KiB block is 124 blocks of 16 bytes: its first 64 B are
	 * the heads of the 64 B .. 2 KiB lists. */
	mg_arena_free(&a, big, 2048);
	for (;;) {
		assert_int_equal(mg_arena_alloc(&a, 16, &p), 0);
		if (mg_arena_bytes(&a) != bytes)
			break;
		in_big += (uintptr_t)p - (uintptr_t)big < 2048;
	}
	assert_int_equal(in_big, 124);
	/* All but the directory and the heads, and 16 B in the new slab */
	assert_int_equal(mg_arena_live(&a), bytes - 32 - 64 + 16);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/*
 * The heads of the 64 B .. 2 KiB free lists are the first 64 B of the first
 * such block freed: a freed 2 KiB block then serves 64 B, 128 B, .. 1 KiB
 * from its other halves, and nothing else of it is lost.
 */
static void
test_free_heads(void **state)
{
	static const size_t halves[] = {1024, 512, 256, 128, 64};
	size_t base = mg_pools_bytes_in_use(pools, 0), bytes, live, i;
	struct mg_arena a;
	void *big, *p;

	(void)state;
	mg_arena_init(&a, pools, 0);
	assert_int_equal(mg_arena_alloc(&a, 2048, &big), 0);
	bytes = mg_arena_bytes(&a);
	live = mg_arena_live(&a);
	mg_arena_free(&a, big, 2048);
	assert_int_equal(mg_arena_live(&a), live - 2048);
	for (i = 0; i < MG_ARRAY_SIZE(halves); i++) {
		assert_int_equal(mg_arena_alloc(&a, halves[i], &p), 0);
		assert_true((uintptr_t)p - (uintptr_t)big < 2048);
		assert_true((uintptr_t)p - (uintptr_t)big >= 64);
	}
	/* 64 B of it are the heads: the next 64 B block is not in it */
	assert_int_equal(mg_arena_bytes(&a), bytes);
	assert_int_equal(mg_arena_alloc(&a, 64, &p), 0);
	assert_true((uintptr_t)p - (uintptr_t)big >= 2048);
	/* and a freed block of a list goes back on it */
	mg_arena_free(&a, p, 64);
	assert_int_equal(mg_arena_alloc(&a, 33, &big), 0);
	assert_ptr_equal(big, p);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

static void
test_large(void **state)
{
	static const size_t sizes[] = {2049,	  3000,
				       4096,	  4097,
				       8192,	  65536,
				       100000,	  (1ul << 20) - 1,
				       1ul << 20, (1ul << 20) + 1,
				       LARGE_MAX};
	const size_t n = MG_ARRAY_SIZE(sizes);
	size_t base = mg_pools_bytes_in_use(pools, 0), live = 0, before, i;
	struct mg_arena a;

	(void)state;
	mg_arena_init(&a, pools, 0);
	for (i = 0; i < n; i++) {
		before = mg_arena_bytes(&a);
		alloc_block(&a, &blocks[i], sizes[i], i);
		live += block_size(sizes[i]);
		assert_int_equal(mg_arena_live(&a), live);
		assert_true(mg_arena_bytes(&a) - before >=
			    block_size(sizes[i]));
		check_owned(pools, base, &a);
	}
	for (i = 0; i < n; i++)
		check_fill(&blocks[i]);
	check_ranges(&a, blocks, n);
	/* A large block goes straight back to the pool. */
	for (i = 0; i < n; i++) {
		before = mg_arena_bytes(&a);
		mg_arena_free(&a, blocks[i].p, blocks[i].bytes);
		live -= block_size(sizes[i]);
		assert_int_equal(mg_arena_live(&a), live);
		assert_int_equal(before - mg_arena_bytes(&a),
				 block_size(sizes[i]));
		check_owned(pools, base, &a);
	}
	/* What is left is the slabs the directory took (two of 128 B). */
	assert_int_equal(mg_arena_bytes(&a), 256);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

static void
test_zalloc(void **state)
{
	static const size_t sizes[] = {1, 100, 2048, 8192, 1ul << 20};
	size_t base = mg_pools_bytes_in_use(pools, 0), i;
	struct mg_arena a;
	void *p, *q;

	(void)state;
	mg_arena_init(&a, pools, 0);
	/* The first free block of 64 B or more makes the free lists' heads. */
	assert_int_equal(mg_arena_alloc(&a, 64, &p), 0);
	mg_arena_free(&a, p, 64);
	for (i = 0; i < MG_ARRAY_SIZE(sizes); i++) {
		/* Dirty a block, free it, and get the same memory again. */
		assert_int_equal(mg_arena_alloc(&a, sizes[i], &p), 0);
		memset(p, 0xab, sizes[i]);
		mg_arena_free(&a, p, sizes[i]);
		assert_int_equal(mg_arena_zalloc(&a, sizes[i], &q), 0);
		if (sizes[i] <= 2048)
			assert_ptr_equal(p, q);
		assert_true(mg_test_all_zero(q, sizes[i]));
		mg_arena_free(&a, q, sizes[i]);
	}
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/* A request size: mostly small, some chunks of 4 KiB .. 64 KiB. */
static size_t
random_size(uint64_t *seed)
{
	uint64_t r = mg_test_rand(seed);

	if (r % 5)
		return 1 + (r >> 8) % 2048;
	return 2049 + (r >> 8) % ((64ul << 10) - 2048);
}

/*
 * A root block is its size rounded to 16, at the start of a first slab
 * sized to fit it, which the one directory entry in the arena struct lists:
 * a root of 120 bytes (a bin's header and a map, which holds a key or two
 * itself) takes one 128 B chunk.  A root too big for a slab is a large
 * block.  A map's third key takes a second 128 B slab, for its table and
 * the arena's first directory block.
 */
static void
test_root(void **state)
{
	static const size_t sizes[] = {1,   120, 128,  129,  256,  257,
				       512, 513, 1000, 2048, 2049, 5000};
	static const size_t first[] = {128, 128,  128,	256,  256,  512,
				       512, 1024, 1024, 2048, 4096, 8192};
	size_t base = mg_pools_bytes_in_use(pools, 0), i;
	struct mg_map m;
	struct mg_arena a;
	uint64_t *v;
	void *root;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(sizes); i++) {
		mg_arena_init(&a, pools, 0);
		assert_int_equal(mg_arena_zalloc_root(&a, sizes[i], &root), 0);
		assert_int_equal((uintptr_t)root % 16, 0);
		assert_true(mg_test_all_zero(root, sizes[i]));
		assert_int_equal(mg_arena_bytes(&a), first[i]);
		assert_true(mg_arena_root_only(&a, sizes[i]));
		memset(root, 0x5a, sizes[i]);
		check_owned(pools, base, &a);
		mg_arena_release(&a);
	}
	mg_arena_init(&a, pools, 0);
	assert_int_equal(mg_arena_zalloc_root(&a, 120, &root), 0);
	mg_map_init(&m, sizeof(uint64_t));
	for (i = 0; i < 2; i++) {
		assert_int_equal(mg_map_upsert(&m, &a, 42 + i, (void **)&v), 1);
		*v = 7;
	}
	assert_int_equal(mg_arena_bytes(&a), 128);
	assert_true(mg_arena_root_only(&a, 120)); /* the keys are in m */
	assert_int_equal(mg_map_upsert(&m, &a, 44, (void **)&v), 1);
	assert_int_equal(mg_arena_bytes(&a), 256);
	assert_true(mg_test_all_zero(root, 120));
	assert_false(mg_arena_root_only(&a, 120)); /* and the map's table */
	check_owned(pools, base, &a);
	mg_map_clear(&m, &a);
	assert_true(mg_arena_root_only(&a, 120));
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/*
 * What a bin with a map costs as the map grows (a 120-byte root: a bin's
 * header and the map): its first two keys live in the map's handle, and
 * each table after that takes a slab of its own size, so the bin owns
 * about twice its table, not four times.
 */
static void
test_map_growth_bytes(void **state)
{
	/* keys -> bytes: 128 B root; + 128 B (4 slots, directory); + 128 B
	 * (8 slots); + 256 B; + 512 B; + a page for 1 KiB and 2 KiB; + the
	 * 4 KiB table, a chunk of its own */
	static const struct {
		uint64_t keys;
		size_t bytes;
	} steps[] = {{2, 128},	 {3, 256},   {7, 384},	  {14, 640},
		     {28, 1152}, {56, 5248}, {112, 5248}, {224, 9344}};
	size_t base = mg_pools_bytes_in_use(pools, 0), i;
	uint64_t k = 0;
	struct mg_arena a;
	struct mg_map m;
	void *root, *v;

	(void)state;
	mg_arena_init(&a, pools, 0);
	assert_int_equal(mg_arena_zalloc_root(&a, 120, &root), 0);
	mg_map_init(&m, sizeof(uint64_t));
	for (i = 0; i < MG_ARRAY_SIZE(steps); i++) {
		while (k < steps[i].keys)
			assert_int_equal(mg_map_upsert(&m, &a, k++, &v), 1);
		assert_int_equal(mg_arena_bytes(&a), steps[i].bytes);
	}
	check_owned(pools, base, &a);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/*
 * An arena owns at most 64 GiB (its byte counts are 16 B units in 32 bits):
 * a chunk that could take it past that is refused, leaving room for the
 * directory chunk that may have to list it.  (White box: the counter is set
 * as if the arena owned that much.)
 */
static void
test_size_limit(void **state)
{
	const uint32_t two_mib = (2u << 20) >> 4;
	size_t base = mg_pools_bytes_in_use(pools, 0);
	struct mg_arena a;
	void *p = NULL;

	(void)state;
	mg_arena_init(&a, pools, 0);
	a.bytes16 = UINT32_MAX - 2 * two_mib + 1;
	assert_int_equal(mg_arena_alloc(&a, 2u << 20, &p), -ENOMEM);
	assert_null(p);
	assert_int_equal(a.bytes16, UINT32_MAX - 2 * two_mib + 1);
	/* A 128 B slab still fits beside a directory chunk. */
	assert_int_equal(mg_arena_alloc(&a, 16, &p), 0);
	assert_int_equal(a.bytes16, UINT32_MAX - 2 * two_mib + 1 + 8);
	mg_arena_release(&a);
	mg_arena_init(&a, pools, 0);
	a.bytes16 = UINT32_MAX - 2 * two_mib;
	assert_int_equal(mg_arena_alloc(&a, 2u << 20, &p), 0);
	assert_int_equal(a.bytes16, UINT32_MAX - two_mib);
	assert_int_equal(mg_arena_live(&a), 2u << 20);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

static void
test_random_release(void **state)
{
	size_t base = mg_pools_bytes_in_use(pools, 0), live = 0, n = 0, i;
	uint64_t seed = mg_test_seed();
	struct mg_arena a, copy;
	void *p;

	(void)state;
	mg_arena_init(&a, pools, 0);
	for (i = 0; i < 40000; i++) {
		uint64_t r = mg_test_rand(&seed);

		if (n < MAX_BLOCKS && (n == 0 || r % 8 < 5)) {
			alloc_block(&a, &blocks[n], random_size(&seed), i);
			live += block_size(blocks[n++].bytes);
		} else {
			struct block *b = &blocks[(r >> 8) % n];

			check_fill(b);
			mg_arena_free(&a, b->p, b->bytes);
			live -= block_size(b->bytes);
			*b = blocks[--n];
		}
		assert_int_equal(mg_arena_live(&a), live);
		if (i % 1024 == 0)
			check_owned(pools, base, &a);
	}
	/* Enough chunks that the directory is several pages. */
	for (i = 0; i < 1500 && n < MAX_BLOCKS; i++) {
		alloc_block(&a, &blocks[n], 4096, i);
		live += block_size(blocks[n++].bytes);
	}
	check_owned(pools, base, &a);
	for (i = 0; i < n; i++)
		check_fill(&blocks[i]);
	assert_true(check_ranges(&a, blocks, n) > 2048);

	/* A short array gets the first entries and the full count. */
	memset(ranges, 0x5a, sizeof(ranges));
	assert_int_equal(mg_arena_ranges(&a, ranges, 5),
			 mg_arena_ranges(&a, NULL, 0));
	memset(&ranges[MAX_RANGES], 0x5a, sizeof(ranges[0]));
	assert_memory_equal(&ranges[5], &ranges[MAX_RANGES], sizeof(ranges[0]));

	/* The struct may be copied: the copy is the arena. */
	copy = a;
	assert_int_equal(mg_arena_alloc(&copy, 777, &p), 0);
	mg_arena_free(&copy, p, 777);
	mg_arena_release(&copy);
	assert_int_equal(mg_arena_bytes(&copy), 0);
	assert_int_equal(mg_arena_live(&copy), 0);
	assert_int_equal(mg_arena_ranges(&copy, NULL, 0), 0);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);

	/* A released arena is an empty one. */
	assert_int_equal(mg_arena_alloc(&copy, 5000, &p), 0);
	assert_int_equal(mg_arena_live(&copy), 8192);
	mg_arena_release(&copy);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), base);
}

/* A failed allocation changes nothing the caller can see. */
static void
expect_enomem(struct mg_arena *a, const struct mg_pools *p, size_t base,
	      size_t bytes)
{
	size_t owned = mg_arena_bytes(a), live = mg_arena_live(a);
	void *sentinel = &owned, *out = sentinel;

	assert_int_equal(mg_arena_alloc(a, bytes, &out), -ENOMEM);
	assert_ptr_equal(out, sentinel);
	assert_int_equal(mg_arena_bytes(a), owned);
	assert_int_equal(mg_arena_live(a), live);
	check_owned(p, base, a);
}

static void
test_enomem(void **state)
{
	struct mg_pools *p = tiny_pools();
	size_t base = mg_pools_bytes_in_use(p, 0), n = 0, i, fails = 0;
	uint64_t seed = mg_test_seed();
	struct mg_arena a;

	(void)state;
	mg_arena_init(&a, p, 0);
	/* The 2 MiB class has one chunk, the 1 MiB class two. */
	alloc_block(&a, &blocks[n++], LARGE_MAX, 0);
	expect_enomem(&a, p, base, LARGE_MAX);
	alloc_block(&a, &blocks[n++], 1ul << 20, 1);
	alloc_block(&a, &blocks[n++], 1ul << 20, 2);
	expect_enomem(&a, p, base, 1ul << 20);

	/* Random sizes until the pool is dry for each of them. */
	for (i = 0; fails < 300 && n < MAX_BLOCKS; i++) {
		size_t bytes = random_size(&seed);
		size_t owned = mg_arena_bytes(&a), live = mg_arena_live(&a);
		void *sentinel = &owned, *out = sentinel;
		int err = mg_arena_alloc(&a, bytes, &out);

		if (err) {
			assert_int_equal(err, -ENOMEM);
			assert_ptr_equal(out, sentinel);
			assert_int_equal(mg_arena_bytes(&a), owned);
			assert_int_equal(mg_arena_live(&a), live);
			fails++;
		} else {
			blocks[n] = (struct block){out, bytes, i};
			fill(&blocks[n++]);
		}
		check_owned(p, base, &a);
	}
	assert_int_equal(fails, 300);
	for (i = 0; i < n; i++)
		check_fill(&blocks[i]);
	check_ranges(&a, blocks, n);

	/* Freeing still works, and freed memory serves again. */
	for (i = 0; i < n; i++)
		mg_arena_free(&a, blocks[i].p, blocks[i].bytes);
	assert_int_equal(mg_arena_live(&a), 0);
	check_owned(p, base, &a);
	alloc_block(&a, &blocks[0], LARGE_MAX, 0);
	alloc_block(&a, &blocks[1], 100, 1);
	mg_arena_free(&a, blocks[0].p, LARGE_MAX);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(p, 0), base);
	mg_pools_destroy(p);
}

/*
 * The directory cannot grow: with the 8 KiB class used up, the 513th chunk
 * needs an 8 KiB directory and fails, though 4 KiB chunks remain.
 */
static void
test_enomem_directory(void **state)
{
	struct mg_pools *p = tiny_pools();
	size_t base = mg_pools_bytes_in_use(p, 0), n = 0, i;
	struct mg_arena a;
	void *out;

	(void)state;
	mg_arena_init(&a, p, 0);
	while (mg_arena_alloc(&a, 8192, &out) == 0) {
		blocks[n] = (struct block){out, 8192, n};
		fill(&blocks[n++]);
	}
	assert_int_equal(n, TINY_RESERVE / 8192);
	for (;;) {
		size_t owned = mg_arena_bytes(&a);

		if (mg_arena_alloc(&a, 4096, &out) != 0) {
			assert_int_equal(mg_arena_bytes(&a), owned);
			break;
		}
		blocks[n] = (struct block){out, 4096, n};
		fill(&blocks[n++]);
	}
	/* The directory is one 4 KiB page of 512 entries, now full. */
	assert_int_equal(mg_arena_ranges(&a, NULL, 0) + SUBPAGE_SLABS, 512);
	check_owned(p, base, &a);
	expect_enomem(&a, p, base, 4096);
	/* Small blocks come from owned memory until a slab is needed. */
	while (mg_arena_alloc(&a, 2048, &out) == 0) {
		blocks[n] = (struct block){out, 2048, n};
		fill(&blocks[n++]);
	}
	expect_enomem(&a, p, base, 2048);
	assert_int_equal(mg_arena_ranges(&a, NULL, 0) + SUBPAGE_SLABS, 512);

	/* A freed chunk frees a slot, then an 8 KiB chunk for the directory. */
	mg_arena_free(&a, blocks[0].p, blocks[0].bytes);
	blocks[0] = blocks[--n];
	alloc_block(&a, &blocks[n++], 4096, 1);
	alloc_block(&a, &blocks[n++], 4096, 2);
	assert_int_equal(mg_arena_ranges(&a, NULL, 0) + SUBPAGE_SLABS, 513);
	/* Small blocks after the failures still come from owned slabs. */
	for (i = 0; i < 300; i++)
		alloc_block(&a, &blocks[n++], 16 + i % 200, i);
	check_owned(p, base, &a);
	for (i = 0; i < n; i++)
		check_fill(&blocks[i]);
	check_ranges(&a, blocks, n);
	mg_arena_release(&a);
	assert_int_equal(mg_pools_bytes_in_use(p, 0), base);
	mg_pools_destroy(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_einval),
		cmocka_unit_test(test_small),
		cmocka_unit_test(test_small_no_waste),
		cmocka_unit_test(test_free_heads),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_zalloc),
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_map_growth_bytes),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_random_release),
		cmocka_unit_test(test_enomem),
		cmocka_unit_test(test_enomem_directory),
	};

	mg_test_init();
	return cmocka_run_group_tests_name(__FILE__, tests, setup, teardown);
}
