/*
 * t-numa-pool.c - node-local page pools.
 *
 * Runs on a fake two-node topology when there are two CPUs or more, so both
 * pools and the node lookup are exercised on a one-node machine.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "numa/mg_numa.h"
#include "tests/mg_test.h"

#define SMALL_RESERVE (4ul << 20)
#define BAD_PTR	      ((void *)(uintptr_t)0xbad0)

static struct mg_topology *topo;

static int
setup(void **state)
{
	struct mg_topology *t;

	(void)state;
	if (mg_topology_create_fake(&t, 2) != 0 &&
	    mg_topology_create_fake(&t, 0) != 0)
		return -1;
	topo = t;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	mg_topology_destroy(topo);
	return 0;
}

static struct mg_pools *
make_pools(size_t reserve, size_t prefault)
{
	struct mg_pools_config cfg = {.reserve_bytes = reserve,
				      .prefault_bytes = prefault};
	struct mg_pools *p = NULL;

	assert_int_equal(mg_pools_create(&p, topo, &cfg), 0);
	assert_non_null(p);
	return p;
}

static void
test_classes(void **state)
{
	struct mg_pools *p = make_pools(SMALL_RESERVE, 0);
	void *c[MG_NUMA_MAX_NODES][MG_CHUNK_CLASSES];
	unsigned nn = mg_topology_nnodes(topo), node, got, s;
	size_t want;

	(void)state;
	for (node = 0; node < nn; node++) {
		want = 0;
		for (s = MG_CHUNK_MIN_SHIFT; s <= MG_CHUNK_MAX_SHIFT; s++) {
			size_t size = 1ul << s;
			unsigned char *b;

			assert_int_equal(
				mg_chunk_alloc(
					p, node, s,
					&c[node][s - MG_CHUNK_MIN_SHIFT]),
				0);
			b = c[node][s - MG_CHUNK_MIN_SHIFT];
			assert_int_equal((uintptr_t)b & (size - 1), 0);
			assert_true(mg_test_all_zero(b, size));
			memset(b, 0xa5, size);
			want += size;
			assert_int_equal(mg_pools_bytes_in_use(p, node), want);
			/* Its home, from anywhere inside it. */
			got = 99;
			assert_int_equal(mg_chunk_node(p, b, &got), 0);
			assert_int_equal(got, node);
			assert_int_equal(mg_chunk_node(p, b + size / 2, &got),
					 0);
			assert_int_equal(got, node);
			assert_int_equal(mg_chunk_node(p, b + size - 1, &got),
					 0);
			assert_int_equal(got, node);
		}
	}
	for (node = 0; node < nn; node++) {
		for (s = MG_CHUNK_MIN_SHIFT; s <= MG_CHUNK_MAX_SHIFT; s++)
			mg_chunk_free(p, c[node][s - MG_CHUNK_MIN_SHIFT], s);
		assert_int_equal(mg_pools_bytes_in_use(p, node), 0);
	}
	mg_pools_destroy(p);
}

static void
test_reuse_lifo(void **state)
{
	struct mg_pools *p = make_pools(SMALL_RESERVE, 0);
	void *a, *b, *x, *y, *z;

	(void)state;
	assert_int_equal(mg_chunk_alloc(p, 0, 13, &a), 0);
	assert_int_equal(mg_chunk_alloc(p, 0, 13, &b), 0);
	assert_ptr_not_equal(a, b);
	mg_chunk_free(p, a, 13);
	mg_chunk_free(p, b, 13);
	assert_int_equal(mg_pools_bytes_in_use(p, 0), 0);
	/* Last freed, first reused; then the bump pointer again. */
	assert_int_equal(mg_chunk_alloc(p, 0, 13, &x), 0);
	assert_int_equal(mg_chunk_alloc(p, 0, 13, &y), 0);
	assert_int_equal(mg_chunk_alloc(p, 0, 13, &z), 0);
	assert_ptr_equal(x, b);
	assert_ptr_equal(y, a);
	assert_true(z != a && z != b);
	assert_true(mg_test_all_zero(z, 8192));
	/* A different class of the same node does not share the list. */
	mg_chunk_free(p, z, 13);
	assert_int_equal(mg_chunk_alloc(p, 0, 12, &z), 0);
	assert_true(z != x && z != y);
	assert_int_equal(mg_pools_bytes_in_use(p, 0), 2 * 8192 + 4096);
	mg_chunk_free(p, x, 13);
	mg_chunk_free(p, y, 13);
	mg_chunk_free(p, z, 12);
	assert_int_equal(mg_pools_bytes_in_use(p, 0), 0);
	mg_pools_destroy(p);
}

static void
test_bad_input(void **state)
{
	struct mg_pools *p = make_pools(SMALL_RESERVE, 0), *q;
	unsigned nn = mg_topology_nnodes(topo), node;
	struct mg_pools_config cfg = {0};
	void *out = BAD_PTR;
	int local;

	(void)state;
	assert_int_equal(mg_chunk_alloc(p, nn, 12, &out), -EINVAL);
	assert_int_equal(mg_chunk_alloc(p, 0, MG_CHUNK_MIN_SHIFT - 1, &out),
			 -EINVAL);
	assert_int_equal(mg_chunk_alloc(p, 0, 22, &out), -EINVAL);
	assert_int_equal(mg_chunk_alloc(p, 0, 0, &out), -EINVAL);
	assert_int_equal(mg_chunk_alloc(p, 0, 64, &out), -EINVAL);
	assert_ptr_equal(out, BAD_PTR);
	node = 77;
	assert_int_equal(mg_chunk_node(p, &local, &node), -EINVAL);
	assert_int_equal(mg_chunk_node(p, NULL, &node), -EINVAL);
	assert_int_equal(mg_chunk_node(p, (void *)UINTPTR_MAX, &node), -EINVAL);
	assert_int_equal(node, 77);
	assert_int_equal(mg_pools_bytes_in_use(p, nn), 0);
	assert_int_equal(mg_pools_bytes_in_use(p, 1000), 0);
	mg_pools_destroy(p);
	mg_pools_destroy(NULL);

	q = BAD_PTR;
	cfg.reserve_bytes = 1ul << 20; /* not a multiple of 2 MiB */
	assert_int_equal(mg_pools_create(&q, topo, &cfg), -EINVAL);
	cfg.reserve_bytes = 3ul << 20;
	assert_int_equal(mg_pools_create(&q, topo, &cfg), -EINVAL);
	/* 128 B chunk indexes overflow 32 bits (a pool too large for the
	 * address space is limited_pools()'s case) */
	cfg.reserve_bytes = 1ul << (32 + MG_CHUNK_MIN_SHIFT);
	assert_int_equal(mg_pools_create(&q, topo, &cfg), -EINVAL);
	cfg.reserve_bytes = 2ul << 20;
	cfg.prefault_bytes = (2ul << 20) + 1;
	assert_int_equal(mg_pools_create(&q, topo, &cfg), -EINVAL);
	assert_ptr_equal(q, BAD_PTR);
}

static void
test_exhaustion(void **state)
{
	struct mg_pools *p = make_pools(2ul << 20, 0);
	unsigned nn = mg_topology_nnodes(topo), i;
	void *big, *other, *out = BAD_PTR;
	static void *small[512];

	(void)state;
	assert_int_equal(mg_chunk_alloc(p, 0, 21, &big), 0);
	assert_int_equal(mg_chunk_alloc(p, 0, 21, &out), -ENOMEM);
	assert_int_equal(mg_chunk_alloc(p, 0, 21, &out), -ENOMEM);
	assert_ptr_equal(out, BAD_PTR);
	assert_int_equal(mg_pools_bytes_in_use(p, 0), 2ul << 20);
	/* Other nodes and classes are not affected. */
	assert_int_equal(mg_chunk_alloc(p, nn - 1, 20, &other), 0);
	for (i = 0; i < 512; i++)
		assert_int_equal(mg_chunk_alloc(p, 0, 12, &small[i]), 0);
	assert_int_equal(mg_chunk_alloc(p, 0, 12, &out), -ENOMEM);
	assert_ptr_equal(out, BAD_PTR);
	mg_chunk_free(p, small[100], 12);
	assert_int_equal(mg_chunk_alloc(p, 0, 12, &out), 0);
	assert_ptr_equal(out, small[100]);
	for (i = 0; i < 512; i++)
		mg_chunk_free(p, small[i], 12);
	/* Free, and the exhausted class works again. */
	mg_chunk_free(p, big, 21);
	out = BAD_PTR;
	assert_int_equal(mg_chunk_alloc(p, 0, 21, &out), 0);
	assert_ptr_equal(out, big);
	mg_chunk_free(p, out, 21);
	mg_chunk_free(p, other, 20);
	for (i = 0; i < nn; i++)
		assert_int_equal(mg_pools_bytes_in_use(p, i), 0);
	mg_pools_destroy(p);
}

/* A class's default reservation: @sixteenths of @p, in 2 MiB, >= 2 MiB. */
static size_t
share(size_t p, unsigned sixteenths)
{
	size_t r = (p / 16 * sixteenths) & ~((2ul << 20) - 1);

	return r < (2ul << 20) ? 2ul << 20 : r;
}

static void
test_default_reserve(void **state)
{
	unsigned last = mg_topology_nnodes(topo) - 1, node = 99, s;
	size_t r2m, r4k, rmid, rsub;
	struct mg_pools *p = NULL;
	char *c;

	(void)state;
	/* Sized from the machine: P for 2 MiB, P/4 for 4 KiB, P/16 for 128 B,
	 * 256 B and 512 B, P/8 others. */
	assert_int_equal(mg_pools_create(&p, topo, NULL), 0);
	r2m = mg_pools_reserved(p, 21);
	r4k = mg_pools_reserved(p, 12);
	rmid = mg_pools_reserved(p, 16);
	rsub = mg_pools_reserved(p, MG_CHUNK_MIN_SHIFT);
	if (mg_vm_room() == SIZE_MAX) {
		assert_int_equal(r2m, share(mg_phys_bytes(), 16));
		assert_int_equal(r4k, share(mg_phys_bytes(), 4));
		assert_int_equal(rmid, share(mg_phys_bytes(), 2));
		assert_int_equal(rsub, share(mg_phys_bytes(), 1));
	}
	assert_true(r2m >= r4k && r4k >= rmid && rmid >= rsub &&
		    rsub >= (2ul << 20));
	for (s = MG_CHUNK_MIN_SHIFT; s < 21; s++)
		if (s != 12)
			assert_int_equal(mg_pools_reserved(p, s),
					 s < MG_CHUNK_MIN_SHIFT + 3 ? rsub
								    : rmid);
	assert_int_equal(mg_pools_reserved(p, MG_CHUNK_MIN_SHIFT - 1), 0);
	assert_int_equal(mg_pools_reserved(p, 22), 0);
	/* The first 2 MiB chunk starts the class; its reservation ends the
	 * node's block (and the mapping, on the last node). */
	assert_int_equal(mg_chunk_alloc(p, last, 21, (void **)&c), 0);
	assert_int_equal(mg_chunk_node(p, c, &node), 0);
	assert_int_equal(node, last);
	assert_int_equal(mg_chunk_node(p, c + r2m - 1, &node), 0);
	assert_int_equal(node, last);
	node = 99;
	assert_int_equal(mg_chunk_node(p, c + r2m, &node), -EINVAL);
	assert_int_equal(node, 99);
	mg_chunk_free(p, c, 21);
	/* Between two nodes' blocks: a gap, not a pool. */
	if (last) {
		assert_int_equal(mg_chunk_alloc(p, 0, 21, (void **)&c), 0);
		assert_int_equal(mg_chunk_node(p, c + r2m - 1, &node), 0);
		assert_int_equal(node, 0);
		assert_int_equal(mg_chunk_node(p, c + r2m, &node), -EINVAL);
		mg_chunk_free(p, c, 21);
	}
	mg_pools_destroy(p);
}

#define LIMITED_ROOM (256ul << 20)

/* In a child with LIMITED_ROOM of address space left (0 = all went well). */
static int
limited_pools(void *arg)
{
	struct mg_pools_config big = {.reserve_bytes = 64ul << 20};
	struct mg_pools *p = NULL, *q = BAD_PTR;
	unsigned node, s;
	void *c;

	(void)arg;
	if (mg_vm_room() > LIMITED_ROOM)
		return 1; /* the limit is not seen */
	if (mg_pools_create(&p, topo, NULL) != 0)
		return 2;
	for (node = 0; node < mg_topology_nnodes(topo); node++) {
		for (s = MG_CHUNK_MIN_SHIFT; s <= MG_CHUNK_MAX_SHIFT; s++) {
			if (mg_chunk_alloc(p, node, s, &c) != 0)
				return 3;
			memset(c, 0xa5, 1ul << s);
			mg_chunk_free(p, c, s);
		}
	}
	mg_pools_destroy(p);
	/* 640 MiB a node: more than the limit leaves. */
	if (mg_pools_create(&q, topo, &big) != -ENOMEM || q != BAD_PTR)
		return 4;
	/* The failure left nothing mapped: the default fits again. */
	p = NULL;
	if (mg_pools_create(&p, topo, NULL) != 0)
		return 5;
	mg_pools_destroy(p);
	return 0;
}

static void
test_rlimit(void **state)
{
	(void)state;
	/* `ulimit -v`: the default must fit what is left, and an explicit
	 * reservation that cannot fit is -ENOMEM, not a crash. */
	assert_int_equal(mg_test_run_limited(LIMITED_ROOM, limited_pools, NULL),
			 0);
}

/* Pages of [p, p + len) resident, per mincore(). */
static size_t
resident_pages(void *p, size_t len)
{
	unsigned char vec[512];
	size_t i, n = len / MG_PAGE_SIZE, r = 0;

	assert_true(n <= sizeof(vec));
	assert_int_equal(mincore(p, len, vec), 0);
	for (i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

static void
test_prefault(void **state)
{
	struct mg_pools *p = make_pools(SMALL_RESERVE, 0);
	unsigned nn = mg_topology_nnodes(topo), node, i;
	void *c[16], *prev = NULL;

	(void)state;
	/* Control: a fresh chunk is not resident before its first touch. */
	assert_int_equal(mg_chunk_alloc(p, 0, 16, &c[0]), 0);
	assert_int_equal(resident_pages(c[0], 1ul << 16), 0);
	mg_chunk_free(p, c[0], 16);
	mg_pools_destroy(p);

	/* 40 KiB: ten 4 KiB chunks, one 64 KiB chunk, one 2 MiB chunk. */
	p = make_pools(SMALL_RESERVE, 40ul << 10);
	for (node = 0; node < nn; node++) {
		assert_int_equal(mg_pools_bytes_in_use(p, node), 0);
		for (i = 0; i < 10; i++) {
			assert_int_equal(mg_chunk_alloc(p, node, 12, &c[i]), 0);
			/* Lowest address first, already resident. */
			if (prev)
				assert_ptr_equal(c[i], (char *)prev + 4096);
			prev = c[i];
			assert_int_equal(resident_pages(c[i], 4096), 1);
		}
		/* The eleventh comes from the untouched bump region. */
		assert_int_equal(mg_chunk_alloc(p, node, 12, &c[10]), 0);
		assert_ptr_equal(c[10], (char *)prev + 4096);
		assert_int_equal(resident_pages(c[10], 4096), 0);
		for (i = 0; i <= 10; i++)
			mg_chunk_free(p, c[i], 12);
		prev = NULL;

		assert_int_equal(mg_chunk_alloc(p, node, 16, &c[0]), 0);
		assert_int_equal(resident_pages(c[0], 1ul << 16), 16);
		assert_true(mg_test_all_zero(c[0], 1ul << 16));
		mg_chunk_free(p, c[0], 16);
		assert_int_equal(mg_chunk_alloc(p, node, 21, &c[0]), 0);
		assert_int_equal(resident_pages(c[0], 2ul << 20), 512);
		mg_chunk_free(p, c[0], 21);
		assert_int_equal(mg_pools_bytes_in_use(p, node), 0);
	}
	mg_pools_destroy(p);
}

/* ---- multi-threaded stress ----------------------------------------------- */

#define STRESS_THREADS 4
#define STRESS_HELD    32
#define STRESS_SLOTS   8

struct stamp {
	uint64_t magic;
	uint64_t owner; /* thread id << 32 | sequence */
};

struct stress {
	struct mg_pools *pools;
	unsigned nnodes;
	uint64_t iters;
	uint64_t seed;
	/* Chunks passed between threads: freed by whoever takes them. */
	_Atomic(void *) slot[STRESS_SLOTS];
};

struct worker {
	struct stress *s;
	unsigned id;
	pthread_t th;
	/* What the thread saw; main asserts. */
	uint64_t allocs, alloc_errors, corrupt, wrong_node, misaligned;
};

#define STAMP_MAGIC 0x6d6567617068ull
#define HANDED_OFF  UINT64_MAX

static void
stamp_write(void *c, unsigned shift, uint64_t owner)
{
	struct stamp *a = c;
	struct stamp *z =
		(void *)((char *)c + (1ul << shift) - sizeof(struct stamp));

	a->magic = z->magic = STAMP_MAGIC ^ shift;
	a->owner = z->owner = owner;
}

static bool
stamp_ok(const void *c, unsigned shift, uint64_t owner)
{
	const struct stamp *a = c;
	const struct stamp *z =
		(const void *)((const char *)c + (1ul << shift) -
			       sizeof(struct stamp));

	return a->magic == (STAMP_MAGIC ^ shift) && z->magic == a->magic &&
	       a->owner == owner && z->owner == owner;
}

/* The size of a handed-off chunk is in its stamp; free it if intact. */
static bool
free_handed_off(struct mg_pools *pools, void *c)
{
	unsigned shift = (unsigned)(((struct stamp *)c)->magic ^ STAMP_MAGIC);

	if (shift < MG_CHUNK_MIN_SHIFT || shift > MG_CHUNK_MAX_SHIFT ||
	    !stamp_ok(c, shift, HANDED_OFF))
		return false;
	mg_chunk_free(pools, c, shift);
	return true;
}

static const unsigned stress_shifts[] = {9, 10, 12, 12, 12, 13, 14, 16, 21};

static void *
stress_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	void *held[STRESS_HELD] = {0};
	unsigned hshift[STRESS_HELD];
	uint64_t howner[STRESS_HELD];
	uint64_t rng = s->seed + w->id, i, r;
	unsigned k, node, got;

	for (i = 0; i < s->iters; i++) {
		r = mg_test_rand(&rng);
		k = (unsigned)(r % STRESS_HELD);
		if (held[k]) {
			/* Still ours alone?  Then give it back. */
			if (!stamp_ok(held[k], hshift[k], howner[k]))
				w->corrupt++;
			if ((r >> 8) & 1) {
				mg_chunk_free(s->pools, held[k], hshift[k]);
			} else {
				/* Hand it over; free what the slot held. */
				unsigned j =
					(unsigned)((r >> 9) % STRESS_SLOTS);
				void *prev;

				stamp_write(held[k], hshift[k], HANDED_OFF);
				/*
				 * Release: our stamp reaches the taker;
				 * acquire: the giver's stamp reaches us.
				 */
				prev = atomic_exchange_explicit(
					&s->slot[j], held[k],
					memory_order_acq_rel);
				if (prev && !free_handed_off(s->pools, prev))
					w->corrupt++;
			}
			held[k] = NULL;
			continue;
		}
		hshift[k] =
			stress_shifts[(r >> 16) % MG_ARRAY_SIZE(stress_shifts)];
		node = (unsigned)((r >> 24) % s->nnodes);
		if (mg_chunk_alloc(s->pools, node, hshift[k], &held[k])) {
			w->alloc_errors++;
			held[k] = NULL;
			continue;
		}
		w->allocs++;
		if ((uintptr_t)held[k] & ((1ul << hshift[k]) - 1))
			w->misaligned++;
		if (mg_chunk_node(s->pools, held[k], &got) || got != node)
			w->wrong_node++;
		howner[k] = (uint64_t)w->id << 32 | (i & 0xffffffffu);
		stamp_write(held[k], hshift[k], howner[k]);
	}
	for (k = 0; k < STRESS_HELD; k++) {
		if (!held[k])
			continue;
		if (!stamp_ok(held[k], hshift[k], howner[k]))
			w->corrupt++;
		mg_chunk_free(s->pools, held[k], hshift[k]);
	}
	return NULL;
}

/* mg_calloc_lines(): zeroed, line-aligned, padded to whole lines -- two
 * small allocations never share a line (plain calloc()s of 16 bytes made
 * one after another do) -- and NULL on a size that overflows. */
static void
test_calloc_lines(void **state)
{
	static const size_t sizes[] = {0, 1, 16, 63, 64, 65, 1000};
	unsigned char *a, *b;

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t lines = sizes[i] ? (sizes[i] + MG_CACHE_LINE - 1) /
						  MG_CACHE_LINE
					: 1;

		a = mg_calloc_lines(1, sizes[i]);
		b = mg_calloc_lines(sizes[i], 1);
		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal((uintptr_t)a % MG_CACHE_LINE, 0);
		assert_int_equal((uintptr_t)b % MG_CACHE_LINE, 0);
		/* whole lines of zeros, none of them b's */
		for (size_t j = 0; j < lines * MG_CACHE_LINE; j++)
			assert_int_equal(a[j] | b[j], 0);
		assert_true(b >= a + lines * MG_CACHE_LINE ||
			    a >= b + lines * MG_CACHE_LINE);
		free(a);
		free(b);
	}
	assert_null(mg_calloc_lines(SIZE_MAX / 2, 4));
	assert_null(mg_calloc_lines(1, SIZE_MAX - 1));
}

static void
test_stress(void **state)
{
	struct stress *s = calloc(1, sizeof(*s));
	struct worker w[STRESS_THREADS];
	uint64_t total = 0;
	unsigned i;
	void *c;

	(void)state;
	assert_non_null(s);
	s->pools = make_pools(512ul << 20, 0);
	s->nnodes = mg_topology_nnodes(topo);
	s->iters = mg_test_env_u64("MG_POOL_STRESS_ITERS", 500000);
	s->seed = mg_test_seed();
	for (i = 0; i < STRESS_SLOTS; i++)
		atomic_init(&s->slot[i], NULL);
	memset(w, 0, sizeof(w));
	for (i = 0; i < STRESS_THREADS; i++) {
		w[i].s = s;
		w[i].id = i + 1;
		assert_int_equal(
			pthread_create(&w[i].th, NULL, stress_thread, &w[i]),
			0);
	}
	for (i = 0; i < STRESS_THREADS; i++)
		assert_int_equal(pthread_join(w[i].th, NULL), 0);
	for (i = 0; i < STRESS_THREADS; i++) {
		assert_int_equal(w[i].alloc_errors, 0);
		assert_int_equal(w[i].corrupt, 0);
		assert_int_equal(w[i].wrong_node, 0);
		assert_int_equal(w[i].misaligned, 0);
		total += w[i].allocs;
	}
	assert_true(total > s->iters);
	/* Chunks left in the hand-off slots. */
	for (i = 0; i < STRESS_SLOTS; i++) {
		c = atomic_load_explicit(&s->slot[i], memory_order_relaxed);
		if (c)
			assert_true(free_handed_off(s->pools, c));
	}
	for (i = 0; i < s->nnodes; i++)
		assert_int_equal(mg_pools_bytes_in_use(s->pools, i), 0);
	mg_pools_destroy(s->pools);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_reuse_lifo),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_default_reserve),
		cmocka_unit_test(test_rlimit),
		cmocka_unit_test(test_prefault),
		cmocka_unit_test(test_calloc_lines),
		cmocka_unit_test(test_stress),
	};

	mg_test_init();
	return cmocka_run_group_tests_name(__FILE__, tests, setup, teardown);
}
