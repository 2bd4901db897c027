/*
 * t-engine-limits.c - every fixed buffer of a stateful operator's data path
 * has a limit, and a backlog past it stops the run cleanly: join returns
 * -ENOBUFS and mg_run_stats.error_what names the buffer (the table in
 * engine_pvt.h, "Limits" in megaphone.h).  One case per buffer drives just
 * enough backlog into it, through a producer (logical times, no clock):
 *
 *   bucket   100 records of one time
 *   far      400 records 100 times ahead, in two batches
 *   runs     60 batches of one record each, 100+ times ahead
 *   pairs    200 records of 5 times, due at once
 *   gather   20 records of one bin and time (64 B each)
 *   timers   20 timers due in one call
 *   theap    100 bins with timers (mg_schedule() says -ENOBUFS)
 *   moves    64 bins moving out of one worker at once
 *   defer    50 records of a bin whose old owner is busy
 *
 * and copy mode, whose serialization buffer is one more limit, moves a bin
 * too large for it as a handoff: the run completes and its outputs are
 * right.
 *
 * The buffers are made small by MG_DEBUG_VSHIFT (numa/mg_fault.h), so the
 * cases run in debug builds only; elsewhere the file skips (make test runs
 * the debug build's copy too).  Workers record; main asserts.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_pvt.h"
#include "numa/mg_fault.h"
#include "tests/mg_test.h"

#if MG_FAULT_INJECT

#define VSHIFT	   20 /* buffers 2^20 times smaller than on a big machine */
#define TIMER_REC  64
#define MAX_RECORD 64
#define WAIT_NS	   (60 * 1000000000ull) /* a run that never fails: a bug */

/* A record: its key, the bin it goes to, padding up to the input's size. */
struct lrec {
	uint64_t key;
	uint64_t bin;
	uint64_t pad[(MAX_RECORD - 16) / 8];
};

struct lout {
	uint64_t key;
	uint64_t count;
};

/* One case: what the operator does, and what the workers saw. */
struct lim {
	unsigned bins_log2;
	uint32_t record_size;	 /* the input's */
	uint32_t schedule;	 /* timers each call with records schedules */
	uint64_t delay;		 /* ... this far ahead */
	bool count;		 /* count keys in the bin's map, emit counts */
	int64_t block_bin;	 /* the call of this bin ... (-1: none) */
	uint64_t block_time;	 /* ... at this time waits for `release` */
	_Atomic bool release;	 /* main: the blocked call may return */
	_Atomic uint64_t nobufs; /* mg_schedule() said -ENOBUFS */
	_Atomic uint64_t outputs, count_sum; /* the sink's */
};

static uint64_t
lim_hash(void *ctx, const void *rec)
{
	const struct lim *l = ctx;

	return ((const struct lrec *)rec)->bin << (64 - l->bins_log2);
}

/* Main releases a blocked call once the run has failed; a bounded wait,
 * so that a run that never fails (a bug) still ends. */
static void
wait_release(struct lim *l)
{
	struct timespec ts = {0, 1000000};

	for (unsigned i = 0; i < 60000; i++) {
		if (atomic_load_explicit(&l->release, memory_order_acquire))
			return;
		nanosleep(&ts, NULL);
	}
}

static void
lim_op(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	struct lim *l = ctx;
	const unsigned char *in = c->in[0];
	unsigned char timer[TIMER_REC] = {0};
	uint32_t i;
	void *v;
	int err;

	if ((int64_t)c->bin == l->block_bin && c->time == l->block_time)
		wait_release(l);
	for (i = 0; c->n_in[0] && i < l->schedule; i++) {
		err = mg_schedule(c, c->time + l->delay, timer);
		if (err) {
			/* Relaxed: a counter; the join orders it. */
			atomic_fetch_add_explicit(&l->nobufs, err == -ENOBUFS,
						  memory_order_relaxed);
			c->error = err;
			return;
		}
	}
	for (i = 0; l->count && i < c->n_in[0]; i++) {
		const struct lrec *r =
			(const void *)(in + (size_t)i * l->record_size);
		struct mg_map *m = c->state;
		struct lout o;

		if (!m->value_size)
			mg_map_init(m, sizeof(uint64_t));
		err = mg_map_upsert(m, c->arena, r->key, &v);
		if (err < 0) {
			c->error = err;
			return;
		}
		o = (struct lout){r->key, ++*(uint64_t *)v};
		mg_emit(out, &o);
	}
}

static void
lim_sink(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	struct lim *l = ctx;

	(void)w;
	(void)t;
	atomic_fetch_add_explicit(&l->outputs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->count_sum,
				  ((const struct lout *)rec)->count,
				  memory_order_relaxed);
}

/* Copy mode: the bin's map, and back. */
static int
lim_ser(void *ctx, struct mg_bin_call *c, struct mg_writer *w)
{
	const struct mg_map *m = c->state;
	int err;

	(void)ctx;
	err = mg_write(w, &m->value_size, sizeof(m->value_size));
	return err || !m->value_size ? err : mg_map_write(m, w);
}

static int
lim_des(void *ctx, struct mg_bin_call *c, struct mg_reader *r)
{
	struct mg_map *m = c->state;
	uint32_t vs;
	int err;

	(void)ctx;
	err = mg_read(r, &vs, sizeof(vs));
	if (err || !vs)
		return err;
	mg_map_init(m, vs);
	return mg_map_read(m, c->arena, r);
}

/* A running dataflow: one input of @record_size-byte records into the
 * operator of @l, a sink and a probe on its output. */
struct rig {
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	struct mg_probe *probe;
	uint32_t record_size;
};

static void
rig_start(struct rig *g, struct lim *l, unsigned workers, unsigned vshift,
	  uint32_t record_size, enum mg_mode mode)
{
	struct mg_dataflow_config dc = {
		.workers = workers,
		.oversubscribe = true,
		.bins_log2 = l->bins_log2,
		.mode = mode,
	};
	struct mg_stateful_config sc = {
		.ninputs = 1,
		.hash = {lim_hash},
		.hash_ctx = l,
		.out_record_size = sizeof(struct lout),
		.state_size = sizeof(struct mg_map),
		.timer_record_size = TIMER_REC,
		.fn = lim_op,
		.ctx = l,
		.serialize = lim_ser,
		.deserialize = lim_des,
	};
	struct mg_stream *s;
	char v[16];

	l->record_size = record_size;
	atomic_init(&l->release, false);
	atomic_init(&l->nobufs, 0);
	atomic_init(&l->outputs, 0);
	atomic_init(&l->count_sum, 0);
	/* the knob is read by the pools, applied by the operator's build */
	snprintf(v, sizeof(v), "%u", vshift);
	setenv("MG_DEBUG_VSHIFT", v, 1);
	assert_int_equal(mg_dataflow_create(&g->df, &dc), 0);
	s = mg_input(g->df, record_size, &g->in);
	sc.in[0] = s;
	s = mg_stateful(g->df, &sc);
	assert_int_equal(mg_sink(g->df, s, lim_sink, l), 0);
	g->probe = mg_probe(g->df, s);
	assert_int_equal(mg_dataflow_error(g->df), 0);
	unsetenv("MG_DEBUG_VSHIFT");
	g->record_size = record_size;
	/* bound to the last worker: the defer case blocks worker 0 */
	assert_int_equal(mg_producer_open(g->in, (int)workers - 1, &g->p), 0);
	assert_int_equal(mg_dataflow_start(g->df, NULL, NULL), 0);
}

/* Push @n records of bin @bin at @time, keys from @key0.  Return: false
 * once the run has stopped. */
static bool
rig_push(struct rig *g, uint64_t time, uint64_t bin, uint64_t key0, uint32_t n)
{
	struct lrec r = {.bin = bin};

	for (uint32_t i = 0; i < n; i++) {
		r.key = key0 + i;
		if (mg_push_wait(g->p, time, &r, g->record_size, 1, WAIT_NS) !=
		    1)
			return false;
	}
	return true;
}

/* Wait for the run to fail, let a blocked call go, end and join it: join
 * must say -ENOBUFS, naming @what. */
static void
rig_expect(struct rig *g, struct lim *l, const char *what)
{
	struct mg_run_stats st;
	int err;

	(void)mg_producer_flush(g->p);
	err = mg_probe_wait(g->probe, MG_TIME_LIMIT - 1, WAIT_NS);
	atomic_store_explicit(&l->release, true, memory_order_release);
	(void)mg_producer_close(g->p);
	mg_input_close(g->in);
	assert_int_equal(err, -EPIPE); /* the run failed, not ended */
	err = mg_dataflow_join(g->df, &st);
	printf("# join: %s (%s)\n", mg_strerror(err),
	       st.error_what ? st.error_what : "no detail");
	assert_int_equal(err, -ENOBUFS);
	assert_non_null(st.error_what);
	assert_string_equal(st.error_what, what);
	mg_dataflow_destroy(g->df);
}

static struct lim
lim_default(void)
{
	return (struct lim){.bins_log2 = 4, .block_bin = -1};
}

/* 100 records of one time: 3200 bytes of entries, a bucket holds 2048.
 * The time closes (advance): a batch bound for a stateful log leaves only
 * then, or once full (send.c, mg__send_flush()). */
static void
test_bucket(void **state)
{
	struct lim l = lim_default();
	struct rig g;

	(void)state;
	rig_start(&g, &l, 1, VSHIFT, 16, MG_HANDOFF);
	if (rig_push(&g, 0, 1, 0, 100))
		(void)mg_producer_advance(g.p, 1);
	rig_expect(&g, &l, LIMIT_BUCKET);
}

/* Two batches of 200 records 100 times ahead: the far log (8 KiB here)
 * takes the first (6400 bytes), not the second, which leaves once its time
 * closes (advance; test_bucket). */
static void
test_far(void **state)
{
	struct lim l = lim_default();
	struct rig g;

	(void)state;
	rig_start(&g, &l, 1, VSHIFT, 16, MG_HANDOFF);
	if (rig_push(&g, 100, 1, 0, 200) && rig_push(&g, 101, 1, 0, 200))
		(void)mg_producer_advance(g.p, 102);
	rig_expect(&g, &l, LIMIT_FAR);
}

/* 60 batches of one record each, far ahead: the list of far batches
 * (1 KiB here, 24 bytes each) holds 42. */
static void
test_runs(void **state)
{
	struct lim l = lim_default();
	struct rig g;
	uint64_t t;

	(void)state;
	rig_start(&g, &l, 1, VSHIFT, 16, MG_HANDOFF);
	for (t = 100; t < 160 && rig_push(&g, t, 1, t, 1); t++)
		;
	rig_expect(&g, &l, LIMIT_RUNS);
}

/* 40 records at each of 5 times, then the frontier passes all 5: one pass
 * of 200 sort keys, where pairs (2 KiB here) holds 128. */
static void
test_pairs(void **state)
{
	struct lim l = lim_default();
	struct rig g;
	uint64_t t;

	(void)state;
	rig_start(&g, &l, 1, VSHIFT, 16, MG_HANDOFF);
	for (t = 0; t < 5 && rig_push(&g, t, t % 16, 0, 40); t++)
		;
	(void)mg_producer_advance(g.p, 5);
	rig_expect(&g, &l, LIMIT_PAIRS);
}

/* 20 records of 64 bytes for one call: its gather buffer (1 KiB here)
 * holds 16. */
static void
test_gather(void **state)
{
	struct lim l = lim_default();
	struct rig g;

	(void)state;
	rig_start(&g, &l, 1, VSHIFT, MAX_RECORD, MG_HANDOFF);
	rig_push(&g, 0, 3, 0, 20);
	(void)mg_producer_advance(g.p, 1);
	rig_expect(&g, &l, LIMIT_GATHER);
}

/* A call schedules 20 timers of 64 bytes for the next time: they are due
 * in one call, whose timer buffer (1 KiB here) holds 16. */
static void
test_timers(void **state)
{
	struct lim l = lim_default();
	struct rig g;

	(void)state;
	l.schedule = 20;
	l.delay = 1;
	rig_start(&g, &l, 1, VSHIFT, 16, MG_HANDOFF);
	rig_push(&g, 0, 5, 0, 1);
	(void)mg_producer_advance(g.p, 2);
	rig_expect(&g, &l, LIMIT_TIMERS);
}

/* 100 bins each schedule a timer: the timer index (1 KiB here, 16 bytes
 * an entry) takes 64; the 65th mg_schedule() says -ENOBUFS, and the
 * operator fails the run with it. */
static void
test_theap(void **state)
{
	struct lim l = lim_default();
	struct rig g;
	uint64_t b;
	bool ok = true;

	(void)state;
	l.bins_log2 = 8;
	l.schedule = 1;
	l.delay = 5;
	rig_start(&g, &l, 1, VSHIFT, 16, MG_HANDOFF);
	for (b = 0; b < 100 && ok; b++) /* two times: 50 per bucket */
		ok = rig_push(&g, b / 50, b, b, 1);
	(void)mg_producer_advance(g.p, 2);
	rig_expect(&g, &l, "the operator's function");
	assert_int_equal(atomic_load(&l.nobufs), 1);
}

/* All 64 bins of worker 0 move to worker 1 at once: a worker's list of
 * pending moves (1 KiB here, 32 bytes a move) holds 32. */
static void
test_moves(void **state)
{
	struct lim l = lim_default();
	uint16_t target[128];
	struct rig g;
	uint32_t b;

	(void)state;
	l.bins_log2 = 7;
	rig_start(&g, &l, 2, VSHIFT, 16, MG_HANDOFF);
	for (b = 0; b < 128; b++)
		target[b] = 1;
	assert_int_equal(
		mg_migrate(g.df, MG_ALL_AT_ONCE, target, MG_TIME_ASAP, 0, NULL),
		0);
	rig_expect(&g, &l, LIMIT_MOVES);
}

/*
 * Bin 0 moves from worker 0 to worker 1 at time 10, while worker 0 is
 * stuck in a call at time 9 (of bin 2): it cannot release bin 0, so worker
 * 1 keeps the records of bin 0 at 10..19 aside -- 50 of 64 bytes, where
 * its buffer of deferred records (2 KiB here, 80 bytes an entry) holds 25.
 */
static void
test_defer(void **state)
{
	struct lim l = lim_default();
	uint16_t target[16];
	struct rig g;
	uint64_t t;
	uint32_t b;

	(void)state;
	l.block_bin = 2;
	l.block_time = 9;
	rig_start(&g, &l, 2, VSHIFT, MAX_RECORD, MG_HANDOFF);
	for (b = 0; b < 16; b++)
		target[b] = (uint16_t)(b % 2);
	target[0] = 1;
	assert_int_equal(mg_migrate(g.df, MG_ALL_AT_ONCE, target, 10, 0, NULL),
			 0);
	rig_push(&g, 9, 2, 0, 1);
	for (t = 10; t < 20 && rig_push(&g, t, 0, 0, 5); t++)
		;
	(void)mg_producer_advance(g.p, 20);
	rig_expect(&g, &l, LIMIT_DEFER);
}

/*
 * Copy mode, buffers 2^18 times smaller: 64 KiB to serialize bins into.
 * Bin 0 holds 5040 keys (some 80 KiB serialized) when it moves, bin 2 ten:
 * bin 2 is copied, bin 0 does not fit and goes as a handoff, and the run
 * completes with every count right.  Pushed a time at a time (at most 250
 * records: a bucket holds 256), each waited for, so that no other buffer
 * fills.
 */
static void
test_copy_too_big(void **state)
{
	struct lim l = lim_default();
	struct mg_migration *m;
	struct mg_run_stats st;
	uint16_t target[16];
	struct rig g;
	uint64_t t, ones = 21 * 240 + 10, twos = 480 + 10;
	uint32_t b;

	(void)state;
	l.count = true;
	rig_start(&g, &l, 2, VSHIFT - 2, 16, MG_COPY);
	for (t = 0; t < 21; t++) {
		assert_true(rig_push(&g, t, 0, t * 240, 240));
		if (t == 0)
			assert_true(rig_push(&g, t, 2, 0, 10));
		assert_int_equal(mg_producer_advance(g.p, t + 1), 0);
		assert_int_equal(mg_probe_wait(g.probe, t, WAIT_NS), 0);
	}
	for (b = 0; b < 16; b++)
		target[b] = (uint16_t)(b % 2);
	target[0] = target[2] = 1;
	assert_int_equal(mg_migrate(g.df, MG_ALL_AT_ONCE, target, 25, 0, &m),
			 0);
	/* at most 240 records kept aside while bin 0 is on its way (the
	 * buffer holds 256), then the rest */
	assert_true(rig_push(&g, 25, 0, 0, 240));
	assert_int_equal(mg_producer_advance(g.p, 26), 0);
	assert_int_equal(mg_probe_wait(g.probe, 25, WAIT_NS), 0);
	assert_true(rig_push(&g, 26, 0, 240, 240));
	assert_true(rig_push(&g, 26, 2, 0, 10));
	assert_int_equal(mg_producer_close(g.p), 0);
	mg_input_close(g.in);
	assert_int_equal(mg_migration_wait(m), 0);
	assert_int_equal(mg_dataflow_join(g.df, &st), 0);
	printf("# %llu outputs, %llu moves went as handoffs\n",
	       (unsigned long long)atomic_load(&l.outputs),
	       (unsigned long long)st.copy_fallbacks);
	assert_int_equal(st.copy_fallbacks, 1);
	assert_int_equal(atomic_load(&l.outputs), ones + twos);
	assert_int_equal(atomic_load(&l.count_sum), ones + 2 * twos);
	mg_dataflow_destroy(g.df);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_far),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_gather),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_theap),
		cmocka_unit_test(test_moves),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_copy_too_big),
	};

	unsetenv("MG_DEBUG_VSHIFT");
	return MG_TEST_RUN(tests);
}

#else

int
main(void)
{
	mg_test_skip_all("the buffers are made small enough to fill by "
			 "MG_DEBUG_VSHIFT, in debug builds only (make "
			 "DEBUG=1; make test runs them there too)");
}

#endif /* MG_FAULT_INJECT */
