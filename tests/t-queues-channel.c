/*
 * t-queues-channel.c - one channel and the mesh, single-threaded: FIFO order,
 * wraparound, full and empty edges, progress marks, bad configurations, and
 * memory returning to the pool.
 */
#include <errno.h>

#include "queues/mg_mesh.h"
#include "tests/mg_test.h"

static struct mg_topology *topo;
static struct mg_pools *pools;

static int
setup(void **state)
{
	(void)state;
	return mg_test_pools_open(&topo, &pools, 0, 0);
}

static int
teardown(void **state)
{
	(void)state;
	mg_test_pools_close(topo, pools);
	return 0;
}

static struct mg_channel *
make(uint32_t rec, uint32_t per_batch, uint32_t cap)
{
	struct mg_channel_config cfg = {rec, per_batch, cap, 0};
	struct mg_channel *ch = NULL;

	assert_int_equal(mg_channel_create(&ch, pools, &cfg), 0);
	return ch;
}

static struct mg_batch *
fill(struct mg_channel *ch, uint64_t t, uint64_t v)
{
	struct mg_batch *b = mg_channel_batch_get_spsc(ch);

	assert_non_null(b);
	b->time = t;
	*(uint64_t *)mg_batch_record(b, 0) = v;
	b->count = 1;
	return b;
}

static void
test_bad_config(void **state)
{
	static const struct mg_channel_config bad[] = {
		{0, 16, 8, 0},		       /* empty record */
		{MG_RECORD_MAX + 1, 16, 8, 0}, /* record too large */
		{16, 0, 8, 0},		       /* empty batch */
		{16, 16, 0, 0},		       /* no slots */
		{16, 16, 1, 0},		       /* one slot holds nothing */
		{16, 16, 6, 0},		       /* not a power of two */
		{16, 16, MG_CHANNEL_CAPACITY_MAX * 2, 0},
		{4096, 1024, 8, 0}, /* batch over 2 MiB */
		{16, 16, 8, 99},    /* unknown node */
	};
	struct mg_channel *ch = (struct mg_channel *)&ch;
	size_t before = mg_pools_bytes_in_use(pools, 0);
	size_t i;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		assert_int_equal(mg_channel_create(&ch, pools, &bad[i]),
				 -EINVAL);
		assert_ptr_equal(ch, (struct mg_channel *)&ch);
	}
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), before);
}

/* mg_channel_batch_records_max() is exactly the channel's limit. */
static void
test_batch_records_max(void **state)
{
	static const uint32_t sizes[] = {1, 8, 9, 16, 104, 1000, MG_RECORD_MAX};
	size_t i;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(sizes); i++) {
		uint32_t max = mg_channel_batch_records_max(sizes[i]);
		struct mg_channel_config cfg = {sizes[i], max + 1, 2, 0};
		struct mg_channel *ch = NULL;

		assert_true(max >= 1 && max <= MG_BATCH_RECORDS_MAX);
		assert_int_equal(mg_channel_create(&ch, pools, &cfg), -EINVAL);
		cfg.batch_records = max;
		assert_int_equal(mg_channel_create(&ch, pools, &cfg), 0);
		mg_channel_destroy(ch);
	}
}

static void
test_fifo_wraparound(void **state)
{
	struct mg_channel *ch = make(16, 4, 4);
	uint64_t next_push = 0, next_pop = 0, t;
	struct mg_batch *b = NULL;
	int round;

	(void)state;
	/* 3 in flight at most; cycle far more often than the ring is big. */
	for (round = 0; round < 1000; round++) {
		while (next_push - next_pop < 3) {
			b = fill(ch, next_push, next_push);
			assert_true(mg_channel_push_spsc(ch, b));
			next_push++;
		}
		assert_true(mg_channel_pop_spsc(ch, &b, &t));
		assert_non_null(b);
		assert_int_equal(t, next_pop);
		assert_int_equal(b->time, next_pop);
		assert_int_equal(*(uint64_t *)mg_batch_record(b, 0), next_pop);
		next_pop++;
		mg_batch_put_spsc(b);
	}
	mg_channel_destroy(ch);
}

static void
test_full_and_empty(void **state)
{
	struct mg_channel *ch = make(8, 2, 4);
	struct mg_batch *held[8], *b = NULL, *extra, *fifth;
	uint64_t t = 0;
	int i;

	(void)state;
	assert_false(mg_channel_pop_spsc(ch, &b, &t));
	assert_int_equal(mg_channel_room(ch), 3);
	for (i = 0; i < 3; i++)
		assert_true(mg_channel_push_spsc(ch, fill(ch, 1, (uint64_t)i)));
	/* The ring is full: the push fails and the caller keeps the batch. */
	extra = fill(ch, 1, 99);
	assert_false(mg_channel_push_spsc(ch, extra));
	assert_false(mg_channel_mark_spsc(ch, 1));
	/* capacity + 1 batches exist: with one more in hand, all are out. */
	fifth = mg_channel_batch_get_spsc(ch);
	assert_non_null(fifth);
	assert_null(mg_channel_batch_get_spsc(ch));
	for (i = 0; i < 3; i++) {
		assert_true(mg_channel_pop_spsc(ch, &held[i], &t));
		assert_int_equal(*(uint64_t *)mg_batch_record(held[i], 0), i);
	}
	assert_false(mg_channel_pop_spsc(ch, &b, &t));
	/* Room again: the pending mark goes through, ahead of the kept
	 * batch (I4). */
	assert_true(mg_channel_push_spsc(ch, extra));
	assert_true(mg_channel_flush_spsc(ch));
	assert_true(mg_channel_pop_spsc(ch, &b, &t));
	assert_null(b);
	assert_int_equal(t, 1);
	assert_true(mg_channel_pop_spsc(ch, &b, &t));
	assert_ptr_equal(b, extra);
	mg_batch_put_spsc(extra);
	for (i = 0; i < 3; i++)
		mg_batch_put_spsc(held[i]);
	for (i = 0; i < 4; i++) /* the fifth is still in hand */
		assert_non_null(held[i] = mg_channel_batch_get_spsc(ch));
	assert_null(mg_channel_batch_get_spsc(ch));
	mg_channel_destroy(ch);
}

static void
test_marks_follow_data(void **state)
{
	struct mg_channel *ch = make(8, 1, 8);
	struct mg_batch *b = NULL;
	uint64_t t = 0;

	(void)state;
	assert_int_equal(mg_channel_frontier(ch), 0);
	assert_true(mg_channel_push_spsc(ch, fill(ch, 5, 50)));
	assert_true(mg_channel_mark_spsc(ch, 6));
	assert_true(mg_channel_push_spsc(ch, fill(ch, 6, 60)));
	assert_true(mg_channel_mark_spsc(ch, 6)); /* repeated: no new slot */
	assert_true(mg_channel_mark_spsc(ch, 9));

	assert_true(mg_channel_pop_spsc(ch, &b, &t));
	assert_non_null(b);
	assert_int_equal(t, 5);
	/* The batch sent before the mark arrives while the frontier is 0. */
	assert_int_equal(mg_channel_frontier(ch), 0);
	mg_batch_put_spsc(b);
	assert_true(mg_channel_pop_spsc(ch, &b, &t));
	assert_null(b);
	assert_int_equal(mg_channel_frontier(ch), 6);
	assert_true(mg_channel_pop_spsc(ch, &b, &t));
	assert_int_equal(b->time, 6);
	mg_batch_put_spsc(b);
	assert_true(mg_channel_pop_spsc(ch, &b, &t));
	assert_null(b);
	assert_int_equal(t, 9);
	assert_false(mg_channel_pop_spsc(ch, &b, &t));
	assert_int_equal(mg_channel_frontier(ch), 9);
	mg_channel_destroy(ch);
}

static void
test_pending_marks_coalesce(void **state)
{
	struct mg_channel *ch = make(8, 1, 2); /* one message in flight */
	struct mg_batch *b = NULL;
	uint64_t t = 0;

	(void)state;
	assert_true(mg_channel_push_spsc(ch, fill(ch, 1, 1)));
	assert_false(mg_channel_mark_spsc(ch, 2));
	assert_false(mg_channel_mark_spsc(ch, 3));
	assert_false(mg_channel_mark_spsc(ch, 4));
	assert_int_equal(mg_channel_mark_wanted(ch), 4);
	assert_true(mg_channel_pop_spsc(ch, &b, &t));
	mg_batch_put_spsc(b);
	assert_true(mg_channel_flush_spsc(ch));
	assert_true(mg_channel_pop_spsc(ch, &b, &t));
	assert_null(b);
	assert_int_equal(t, 4); /* only the newest pending mark travels */
	assert_false(mg_channel_pop_spsc(ch, &b, &t));
	mg_channel_destroy(ch);
}

/* I4: with one slot kept busy by batches, a pending mark still gets it. */
static void
test_mark_not_starved(void **state)
{
	struct mg_channel *ch = make(8, 1, 2); /* one message in flight */
	struct mg_batch *b = NULL, *next;
	uint64_t t = 0;

	(void)state;
	assert_true(mg_channel_push_spsc(ch, fill(ch, 1, 1)));
	assert_false(mg_channel_mark_spsc(ch, 2));
	for (uint64_t i = 2; i < 10; i++) {
		assert_true(mg_channel_pop_spsc(ch, &b, &t));
		assert_non_null(b); /* the batch of time i - 1 */
		mg_batch_put_spsc(b);
		/* the slot is free: the mark takes it, the batch waits */
		next = fill(ch, i, i);
		assert_false(mg_channel_push_spsc(ch, next));
		assert_true(mg_channel_pop_spsc(ch, &b, &t));
		assert_null(b);
		assert_int_equal(t, i);
		assert_int_equal(mg_channel_frontier(ch), i);
		assert_true(mg_channel_push_spsc(ch, next));
		assert_false(mg_channel_mark_spsc(ch, i + 1));
	}
	assert_true(mg_channel_pop_spsc(ch, &b, &t));
	mg_batch_put_spsc(b);
	mg_channel_destroy(ch);
}

static void
test_memory_returns(void **state)
{
	size_t before = mg_pools_bytes_in_use(pools, 0);
	struct mg_channel *ch;
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		ch = make(24, 256, 64);
		assert_true(mg_pools_bytes_in_use(pools, 0) > before);
		mg_channel_destroy(ch);
		assert_int_equal(mg_pools_bytes_in_use(pools, 0), before);
	}
}

static void
test_mesh_frontier(void **state)
{
	enum { W = 3 };
	const unsigned nodes[W] = {0, 0, 0};
	struct mg_channel_config cfg = {8, 4, 8, 0};
	struct mg_batch *out[16], *b;
	struct mg_mesh *m;
	unsigned from, n, i;

	(void)state;
	assert_int_equal(mg_mesh_create(&m, pools, 0, nodes, &cfg), -EINVAL);
	assert_int_equal(mg_mesh_create(&m, pools, W, nodes, &cfg), 0);
	assert_int_equal(mg_mesh_workers(m), W);
	for (from = 0; from < W; from++) {
		b = fill(mg_mesh_channel(m, from, 1), 10 + from, from);
		assert_true(
			mg_channel_push_spsc(mg_mesh_channel(m, from, 1), b));
	}
	assert_true(mg_mesh_mark_spsc(m, 0, 20));
	assert_true(mg_mesh_mark_spsc(m, 1, 30));
	n = mg_mesh_recv_burst_spsc(m, 1, out, 16);
	assert_int_equal(n, W);
	/* Producer 2 has not marked: the frontier stays at 0. */
	assert_int_equal(mg_mesh_frontier(m, 1), 0);
	assert_true(mg_mesh_mark_spsc(m, 2, 25));
	assert_int_equal(mg_mesh_recv_burst_spsc(m, 1, out + n, 16), 0);
	assert_int_equal(mg_mesh_frontier(m, 1), 20);
	assert_true(mg_mesh_mark_spsc(m, 0, 40));
	assert_int_equal(mg_mesh_recv_burst_spsc(m, 1, out + n, 16), 0);
	assert_int_equal(mg_mesh_frontier(m, 1), 25);
	for (i = 0; i < n; i++)
		mg_batch_put_spsc(out[i]);
	/* Other ports saw only marks. */
	assert_int_equal(mg_mesh_recv_burst_spsc(m, 0, out, 16), 0);
	assert_int_equal(mg_mesh_frontier(m, 0), 25);
	assert_true(mg_mesh_mark_spsc(m, 0, MG_TIME_MAX));
	assert_true(mg_mesh_mark_spsc(m, 1, MG_TIME_MAX));
	assert_true(mg_mesh_mark_spsc(m, 2, MG_TIME_MAX));
	assert_int_equal(mg_mesh_recv_burst_spsc(m, 2, out, 16), 0);
	assert_true(mg_mesh_frontier(m, 2) == MG_TIME_MAX);
	mg_mesh_destroy(m);
}

static void
test_mesh_fair(void **state)
{
	enum { W = 2 };
	const unsigned nodes[W] = {0, 0};
	struct mg_channel_config cfg = {8, 1, 16, 0};
	struct mg_batch *out[2];
	struct mg_channel *c0, *c1;
	struct mg_mesh *m;
	int i, from1 = 0;

	(void)state;
	assert_int_equal(mg_mesh_create(&m, pools, W, nodes, &cfg), 0);
	c0 = mg_mesh_channel(m, 0, 0);
	c1 = mg_mesh_channel(m, 1, 0);
	for (i = 0; i < 8; i++) {
		assert_true(mg_channel_push_spsc(c0, fill(c0, 1, 0)));
		assert_true(mg_channel_push_spsc(c1, fill(c1, 1, 1)));
	}
	/* Bursts of 2 from a port with 2 busy inputs take one from each. */
	for (i = 0; i < 4; i++) {
		assert_int_equal(mg_mesh_recv_burst_spsc(m, 0, out, 2), 2);
		from1 += out[0]->home == c1;
		from1 += out[1]->home == c1;
		mg_batch_put_spsc(out[0]);
		mg_batch_put_spsc(out[1]);
	}
	assert_int_equal(from1, 4);
	mg_mesh_destroy(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_batch_records_max),
		cmocka_unit_test(test_fifo_wraparound),
		cmocka_unit_test(test_full_and_empty),
		cmocka_unit_test(test_marks_follow_data),
		cmocka_unit_test(test_pending_marks_coalesce),
		cmocka_unit_test(test_mark_not_starved),
		cmocka_unit_test(test_memory_returns),
		cmocka_unit_test(test_mesh_frontier),
		cmocka_unit_test(test_mesh_fair),
	};

	mg_test_init();
	return cmocka_run_group_tests_name(__FILE__, tests, setup, teardown);
}
