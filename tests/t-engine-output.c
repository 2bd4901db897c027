/*
 * t-engine-output.c - what an application reads back: output queues (whole
 * times, in time order, also when records arrive out of order), probes and
 * their waits and callbacks, load statistics, the errors start reports,
 * and that a prefill's untouched bins take no memory.
 *
 * Only the main thread asserts.  No check depends on how fast the machine
 * is: waits are for events, with MG_FOREVER, and the stats check waits for
 * the first sample instead of sleeping a guessed time.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/megaphone.h"
#include "numa/mg_base.h"
#include "tests/mg_test.h"

#define MS 1000000ull

struct rec {
	uint64_t key, val;
};

static uint64_t
key_hash(void *ctx, const void *r)
{
	(void)ctx;
	return mg_hash64(((const struct rec *)r)->key + 17);
}

/* Per (bin, time): emit every record; count keys in the bin's map. */
static void
keep_op(void *ctx, struct mg_bin_call *c, struct mg_emitter *e)
{
	struct mg_map *m = c->state;
	const struct rec *r = c->in[0];
	void *v;

	(void)ctx;
	if (!m->value_size)
		mg_map_init(m, sizeof(uint64_t));
	for (uint32_t i = 0; i < c->n_in[0]; i++) {
		if (mg_map_upsert(m, c->arena, r[i].key, &v) < 0) {
			c->error = -ENOMEM;
			return;
		}
		++*(uint64_t *)v;
		mg_emit(e, &r[i]);
	}
}

/* The operator every test here runs: unary, keep_op (inputs set by each). */
static const struct mg_stateful_config keep_cfg = {
	.ninputs = 1,
	.hash = {key_hash},
	.out_record_size = sizeof(struct rec),
	.state_size = sizeof(struct mg_map),
	.fn = keep_op,
};

/* ---- output queues ---------------------------------------------------------- */

static void
test_output_in_time_order(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2, .oversubscribe = true};
	struct mg_stateful_config sc = keep_cfg;
	/* times pushed out of order, by two producers on two workers */
	static const uint64_t times[] = {10, 5, 7, 5, 12, 7, 30, 6, 10};
	uint64_t expect[40] = {0};
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p[2];
	struct mg_output *o;
	struct mg_output_time t;
	uint64_t last = 0, seen = 0;
	unsigned i;
	int err;

	(void)state;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.in[0] = mg_input(df, sizeof(struct rec), &in);
	o = mg_output(df, mg_stateful(df, &sc));
	assert_non_null(o);
	assert_int_equal(mg_producer_open(in, 0, &p[0]), 0);
	assert_int_equal(mg_producer_open(in, 1, &p[1]), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	/* nothing is complete yet: a zero timeout does not wait */
	assert_int_equal(mg_output_next(o, &t, 0), -ETIMEDOUT);
	for (i = 0; i < MG_ARRAY_SIZE(times); i++) {
		struct rec r = {i, times[i]};

		assert_int_equal(mg_push(p[i % 2], times[i], &r, sizeof(r)), 0);
		expect[times[i]]++;
	}
	/* a quiet producer holds everything after its promise back */
	assert_int_equal(mg_producer_advance(p[0], 100), 0);
	assert_int_equal(mg_producer_advance(p[1], 8), 0);
	for (;;) { /* times 5, 6, 7 complete; 10 and later wait for p[1] */
		assert_int_equal(mg_output_next(o, &t, MG_FOREVER), 0);
		assert_true(t.time > last && t.time < 8);
		assert_int_equal(t.count, expect[t.time]);
		assert_int_equal(t.record_size, sizeof(struct rec));
		for (uint32_t k = 0; k < t.count; k++)
			assert_int_equal(((const struct rec *)t.records)[k].val,
					 t.time);
		last = t.time;
		seen += t.count;
		if (t.time == 7)
			break;
	}
	assert_true(mg_output_frontier(o) <= 8);
	assert_int_equal(mg_output_next(o, &t, 0), -ETIMEDOUT);
	assert_int_equal(mg_producer_close(p[0]), 0);
	assert_int_equal(mg_producer_close(p[1]), 0);
	assert_int_equal(mg_input_close(in), 0);
	while ((err = mg_output_next(o, &t, MG_FOREVER)) == 0) {
		assert_true(t.time > last);
		assert_int_equal(t.count, expect[t.time]);
		last = t.time;
		seen += t.count;
	}
	assert_int_equal(err, -ENODATA);
	assert_int_equal(seen, MG_ARRAY_SIZE(times));
	assert_int_equal(mg_output_frontier(o), MG_TIME_MAX);
	assert_int_equal(mg_output_next(o, &t, MG_FOREVER), -ENODATA);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	mg_dataflow_destroy(df);
}

static struct mg_dataflow *watched; /* for stuck_alarm() */

/* The last resort of test_push_then_read: a push or a read that made no
 * progress for MG_WATCHDOG_S (stuck, not slow) shows the engine's state and
 * every thread's stack. */
static void
stuck_alarm(int sig)
{
	(void)sig;
	fprintf(stderr, "no progress for MG_WATCHDOG_S: the engine's state "
			"and every thread's stack:\n");
	mg_dataflow_dump(watched, stderr);
	mg_test_dump_threads();
	abort();
}

/*
 * A new user's first program: one thread pushes everything (advancing as it
 * goes), closes, and only then reads the output.  Tiny rings, so the output
 * is behind its ring after a few records: with no room beyond the ring the
 * worker stopped, the push waited on the very thread that would read, and
 * the program hung (before output_buffer).  Then the same, joining the run
 * before reading: the workers used to wait for the reader to take their
 * last batches, and the join for them (now they leave them to the output).
 * With output_buffer 1 (no room beyond the ring), pushes at MG_TIME_NOW do
 * come to wait (100 ms without room ends the loop; a slow machine may end
 * it sooner, which proves nothing but cannot fail), and a read still finds
 * a complete time.
 */
static void
test_push_then_read(void **state)
{
	enum { N = 20000, PER_TIME = 100 };
	const unsigned watchdog_s =
		(unsigned)mg_test_env_u64("MG_WATCHDOG_S", 120);
	struct mg_stateful_config sc = keep_cfg;

	(void)state;
	signal(SIGALRM, stuck_alarm);
	for (int mode = 0; mode < 3; mode++) {
		const bool join_first = mode == 1, strict = mode == 2;
		struct mg_dataflow_config dc = {.workers = 2,
						.oversubscribe = true,
						.ring_capacity = 2,
						.batch_records = 4,
						.output_buffer =
							strict ? 1 : 0};
		struct mg_dataflow *df;
		struct mg_input *in;
		struct mg_producer *p;
		struct mg_output *o;
		struct mg_output_time t;
		uint64_t i, seen = 0, next = 0;
		int err;

		assert_int_equal(mg_dataflow_create(&df, &dc), 0);
		watched = df;
		sc.in[0] = mg_input(df, sizeof(struct rec), &in);
		o = mg_output(df, mg_stateful(df, &sc));
		assert_non_null(o);
		assert_int_equal(mg_producer_open(in, MG_ANY_WORKER, &p), 0);
		assert_int_equal(mg_input_close(in), 0);
		assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
		for (i = 0; i < N; i++) {
			struct rec r = {i % 37, i / PER_TIME};

			if (i % PER_TIME == 0)
				alarm(watchdog_s);
			if (strict) {
				err = mg_push_wait(p, MG_TIME_NOW, &r,
						   sizeof(r), 1, 100 * MS);
				if (err == -ETIMEDOUT)
					break; /* the output pushes back */
				assert_int_equal(err, 1);
				continue;
			}
			assert_int_equal(mg_push_wait(p, r.val, &r, sizeof(r),
						      1, MG_FOREVER),
					 1);
			if (i % PER_TIME == PER_TIME - 1)
				assert_int_equal(
					mg_producer_advance(p, r.val + 1), 0);
		}
		alarm(watchdog_s);
		if (strict) {
			printf("#   output_buffer 1: pushes wait after %llu "
			       "records\n",
			       (unsigned long long)i);
			assert_true(i < N);
			assert_int_equal(mg_output_next(o, &t, MG_FOREVER), 0);
			assert_true(t.count > 0);
			mg_dataflow_stop(df);
		} else {
			assert_int_equal(mg_producer_close(p), 0);
			if (join_first)
				assert_int_equal(mg_dataflow_join(df, NULL), 0);
			while ((err = mg_output_next(o, &t, MG_FOREVER)) == 0) {
				assert_int_equal(t.time, next);
				assert_int_equal(t.count, PER_TIME);
				next = t.time + 1;
				seen += t.count;
			}
			assert_int_equal(err, -ENODATA);
			assert_int_equal(seen, N);
		}
		alarm(0);
		mg_dataflow_join(df, NULL);
		mg_dataflow_destroy(df);
	}
}

static void
test_output_after_stop(void **state)
{
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	struct mg_output *o;
	struct mg_output_time t;
	struct rec r = {1, 1};

	(void)state;
	assert_int_equal(mg_dataflow_create(&df, NULL), 0);
	o = mg_output(df, mg_input(df, sizeof(struct rec), &in));
	assert_int_equal(mg_producer_open(in, 0, &p), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_push(p, 3, &r, sizeof(r)), 0);
	assert_int_equal(mg_producer_advance(p, 4), 0);
	assert_int_equal(mg_output_next(o, &t, MG_FOREVER), 0);
	assert_int_equal(t.time, 3);
	assert_int_equal(mg_push(p, 9, &r, sizeof(r)), 0);
	mg_dataflow_stop(df);
	/* time 9 never completes: the consumer learns the run is over */
	assert_int_equal(mg_output_next(o, &t, MG_FOREVER), -EPIPE);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	mg_dataflow_destroy(df);
}

/*
 * A stop with a consumer that has not read yet: every time a probe on the
 * same stream reported complete still comes out whole, then -EPIPE (the
 * workers hand over what they queued, as at the end).  2-slot rings and
 * 4-record batches, so that nearly all of it is queued in the workers.
 * Before, the stop dropped the queues: times 0 .. 2 of 30 came out.
 */
static void
test_stop_delivers_complete(void **state)
{
	enum { T = 40, N = 50, K = 20 };
	struct mg_dataflow_config dc = {.workers = 2,
					.oversubscribe = true,
					.ring_capacity = 2,
					.batch_records = 4};
	struct mg_producer *p[2];
	struct mg_output_time ot;
	struct mg_dataflow *df;
	struct mg_probe *probe;
	struct mg_output *o;
	struct mg_stream *s;
	struct mg_input *in;
	uint64_t f, next = 0;
	int err;

	(void)state;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_input(df, sizeof(struct rec), &in);
	o = mg_output(df, s);
	probe = mg_probe(df, s);
	assert_non_null(o);
	assert_non_null(probe);
	for (int w = 0; w < 2; w++)
		assert_int_equal(mg_producer_open(in, w, &p[w]), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	for (uint64_t t = 0; t < T; t++)
		for (int w = 0; w < 2; w++) {
			for (uint64_t i = 0; i < N; i++) {
				struct rec r = {i, t};

				assert_int_equal(mg_push_wait(p[w], t, &r,
							      sizeof(r), 1,
							      MG_FOREVER),
						 1);
			}
			assert_int_equal(mg_producer_advance(p[w], t + 1), 0);
		}
	assert_int_equal(mg_probe_wait(probe, K, MG_FOREVER), 0);
	f = mg_probe_frontier(probe);
	mg_dataflow_stop(df);
	while ((err = mg_output_next(o, &ot, MG_FOREVER)) == 0) {
		assert_int_equal(ot.time, next);
		assert_int_equal(ot.count, 2 * N);
		next++;
	}
	printf("#   probe frontier %llu at the stop; times 0 .. %llu came "
	       "out whole, then %d\n",
	       (unsigned long long)f, (unsigned long long)next - 1, err);
	assert_int_equal(err, -EPIPE);
	assert_true(next >= f);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	mg_dataflow_destroy(df);
}

/* ---- probes: waits and callbacks ---------------------------------------------- */

struct calls {
	uint64_t last, n;
	pthread_t thread;
	int nonmonotone, threads, concurrent;
	_Atomic int inside;
};

static void
on_complete(void *ctx, uint64_t frontier)
{
	struct calls *c = ctx;

	if (atomic_fetch_add(&c->inside, 1))
		c->concurrent++;
	if (c->n && frontier <= c->last)
		c->nonmonotone++;
	if (c->n && !pthread_equal(c->thread, pthread_self()))
		c->threads++;
	c->thread = pthread_self();
	c->last = frontier;
	c->n++;
	atomic_fetch_sub(&c->inside, 1);
}

static void
nop_sink(void *ctx, unsigned w, uint64_t t, const void *r)
{
	(void)ctx;
	(void)w;
	(void)t;
	(void)r;
}

static void
gen(void *ctx, unsigned w, uint64_t seq, void *out)
{
	(void)ctx;
	(void)w;
	((struct rec *)out)->key = seq % 97;
	((struct rec *)out)->val = seq;
}

static void
test_probes(void **state)
{
	struct mg_dataflow_config dc = {
		.workers = 2, .oversubscribe = true, .epoch_ns = 200000};
	struct mg_source_config src = {.record_size = sizeof(struct rec),
				       .rate = 200000,
				       .duration_ns = 100 * MS,
				       .gen = gen};
	struct mg_stateful_config sc = keep_cfg;
	struct calls c = {0}, c2 = {0};
	struct mg_dataflow *df;
	struct mg_stream *s, *out;
	struct mg_probe *p1, *p2;

	(void)state;
	atomic_init(&c.inside, 0);
	atomic_init(&c2.inside, 0);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_source(df, &src);
	sc.in[0] = s;
	out = mg_stateful(df, &sc);
	assert_int_equal(mg_sink(df, out, nop_sink, NULL), 0);
	p1 = mg_probe(df, out);
	p2 = mg_probe(df, s);
	assert_int_equal(mg_probe_on_complete(p1, on_complete, &c), 0);
	assert_int_equal(mg_probe_on_complete(p2, on_complete, &c2), 0);
	assert_int_equal(mg_probe_frontier(p1), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_probe_on_complete(p1, on_complete, &c), -EINVAL);
	/* the schedule's 100 ms are 500 epochs: wait for the middle */
	assert_int_equal(mg_probe_wait(p1, 250, MG_FOREVER), 0);
	assert_true(mg_probe_frontier(p1) > 250);
	/* the source's stream completes no later than the operator's */
	assert_true(mg_probe_frontier(p2) >= 250);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	assert_int_equal(mg_probe_frontier(p1), MG_TIME_MAX);
	assert_int_equal(mg_probe_wait(p1, MG_TIME_LIMIT - 1, 0), 0);
	printf("#   %llu and %llu callbacks\n", (unsigned long long)c.n,
	       (unsigned long long)c2.n);
	assert_true(c.n >= 2);
	assert_int_equal(c.last, MG_TIME_MAX);
	assert_int_equal(c2.last, MG_TIME_MAX);
	assert_int_equal(c.nonmonotone + c2.nonmonotone, 0);
	assert_int_equal(c.threads + c2.threads, 0);
	assert_int_equal(c.concurrent + c2.concurrent, 0);
	mg_dataflow_destroy(df);
}

/* ---- load statistics ---------------------------------------------------------- */

static void
test_stats(void **state)
{
	struct mg_dataflow_config dc = {
		.workers = 2, .oversubscribe = true, .bins_log2 = 5};
	struct mg_stateful_config sc = keep_cfg;
	struct mg_bin_stats bs[32];
	struct mg_worker_stats ws[2] = {0};
	uint16_t owners[32];
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	struct mg_probe *probe;
	struct rec batch[100];
	uint64_t total = 0, wtotal = 0, n = 0, bytes = 0;
	double rate = 0;
	unsigned b, bins = 0;

	(void)state;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.in[0] = mg_input(df, sizeof(struct rec), &in);
	probe = mg_probe(df, mg_stateful(df, &sc));
	assert_int_equal(mg_producer_open(in, MG_ANY_WORKER, &p), 0);
	/* not started: nothing to read */
	assert_int_equal(mg_dataflow_bin_stats(df, bs), -EINVAL);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	for (unsigned i = 0; i < 100; i++)
		batch[i] = (struct rec){i % 40, i};
	/* push until the sampler has seen a rate, the bins' and the
	 * workers' (it samples every 100 ms; push for as long as that
	 * takes, however slow the machine) */
	while (rate <= 0 || ws[0].rate + ws[1].rate <= 0) {
		assert_int_equal(mg_push_wait(p, MG_TIME_NOW, batch,
					      sizeof(batch[0]), 100,
					      MG_FOREVER),
				 100);
		n += 100;
		assert_int_equal(mg_producer_advance(p, MG_TIME_NOW), 0);
		assert_int_equal(mg_dataflow_bin_stats(df, bs), 0);
		assert_int_equal(mg_dataflow_worker_stats(df, ws), 0);
		for (rate = 0, b = 0; b < 32; b++)
			rate += bs[b].rate;
		nanosleep(&(struct timespec){0, 2 * MS}, NULL);
	}
	assert_int_equal(mg_producer_close(p), 0);
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_probe_wait(probe, MG_TIME_LIMIT - 1, MG_FOREVER),
			 0);
	/* counted, all of it: the workers count before they publish the
	 * frontier the wait returned on */
	assert_int_equal(mg_dataflow_bin_stats(df, bs), 0);
	assert_int_equal(mg_dataflow_worker_stats(df, ws), 0);
	mg_dataflow_owners(df, owners);
	for (b = 0; b < 32; b++) {
		total += bs[b].records;
		bytes += bs[b].state_bytes;
		bins += bs[b].records > 0;
		assert_int_equal(bs[b].owner, owners[b]);
		assert_true(bs[b].rate >= 0);
		if (bs[b].records)
			assert_true(bs[b].state_bytes > 0);
	}
	for (unsigned w = 0; w < 2; w++) {
		assert_true(ws[w].busy >= 0 && ws[w].busy <= 1);
		wtotal += ws[w].records;
	}
	for (rate = 0, b = 0; b < 32; b++)
		rate += bs[b].rate;
	printf("#   %llu records in %u bins, %llu state bytes; busy %.3f "
	       "%.3f; bins %.0f, workers %.0f records/s\n",
	       (unsigned long long)total, bins, (unsigned long long)bytes,
	       ws[0].busy, ws[1].busy, rate, ws[0].rate + ws[1].rate);
	/* both averages of what the run has seen (stats.c), not one
	 * decayed from 0 against the other */
	assert_true(rate > (ws[0].rate + ws[1].rate) / 2 &&
		    rate < 2 * (ws[0].rate + ws[1].rate));
	assert_int_equal(total, n);
	assert_int_equal(wtotal, n);
	assert_int_equal(ws[0].bins + ws[1].bins, 32);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	mg_dataflow_destroy(df);

	/* no_stats: nothing counted, nothing to read */
	dc.no_stats = true;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.in[0] = mg_input(df, sizeof(struct rec), &in);
	mg_probe(df, mg_stateful(df, &sc));
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_dataflow_bin_stats(df, bs), -EINVAL);
	assert_int_equal(mg_dataflow_worker_stats(df, ws), -EINVAL);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	mg_dataflow_destroy(df);
}

/* ---- start reports a failed prefill ------------------------------------------- */

static int
bad_prefill(void *ctx, struct mg_bin_call *c)
{
	(void)ctx;
	return c->bin == 3 ? -EIO : 0;
}

static void
test_start_reports_prefill(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2, .oversubscribe = true};
	struct mg_source_config src = {.record_size = sizeof(struct rec),
				       .rate = 1000,
				       .duration_ns = 10 * MS,
				       .gen = gen};
	struct mg_stateful_config sc = keep_cfg;
	struct mg_dataflow *df;

	(void)state;
	sc.prefill = bad_prefill;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.in[0] = mg_source(df, &src);
	mg_probe(df, mg_stateful(df, &sc));
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), -EIO);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), -EINVAL);
	mg_dataflow_stop(df);
	mg_dataflow_destroy(df);
}

/* ---- a prefill that leaves a bin untouched costs no memory ------------------- */

/* Even bins get a map with one key; odd bins are left as they are. */
static int
even_prefill(void *ctx, struct mg_bin_call *c)
{
	struct mg_map *m = c->state;
	void *v;

	(void)ctx;
	if (c->bin % 2)
		return 0;
	mg_map_init(m, sizeof(uint64_t));
	return mg_map_upsert(m, c->arena, 1000 + c->bin, &v) < 0 ? -ENOMEM : 0;
}

static void
test_prefill_drops_untouched(void **state)
{
	struct mg_dataflow_config dc = {
		.workers = 2, .oversubscribe = true, .bins_log2 = 5};
	struct mg_stateful_config sc = keep_cfg;
	struct mg_bin_stats bs[32];
	struct mg_run_stats st;
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	struct rec batch[64];
	unsigned b;

	(void)state;
	sc.prefill = even_prefill;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.in[0] = mg_input(df, sizeof(struct rec), &in);
	mg_probe(df, mg_stateful(df, &sc));
	assert_int_equal(mg_producer_open(in, MG_ANY_WORKER, &p), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_dataflow_bin_stats(df, bs), 0);
	for (b = 0; b < 32; b++)
		if (b % 2)
			assert_int_equal(bs[b].state_bytes, 0);
		else
			assert_true(bs[b].state_bytes > 0);
	/* records into every bin: the dropped ones are created afresh */
	for (b = 0; b < 64; b++)
		batch[b] = (struct rec){b, b};
	assert_int_equal(mg_push_wait(p, MG_TIME_NOW, batch, sizeof(batch[0]),
				      64, MG_FOREVER),
			 64);
	assert_int_equal(mg_producer_close(p), 0);
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_dataflow_join(df, &st), 0);
	assert_int_equal(st.records, 64);
	mg_dataflow_destroy(df);
}

/* Binary: input 0 from a generated source, input 1 pushed; count both. */
static void
both_op(void *ctx, struct mg_bin_call *c, struct mg_emitter *e)
{
	_Atomic uint64_t *n = ctx;

	(void)e;
	atomic_fetch_add_explicit(&n[0], c->n_in[0], memory_order_relaxed);
	atomic_fetch_add_explicit(&n[1], c->n_in[1], memory_order_relaxed);
}

/* A graph mixing a generated source and an application input: both feed
 * one binary operator; the run ends once the source's schedule is over and
 * the input is closed, with every record of both counted. */
static void
test_mixed_graph(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2, .oversubscribe = true};
	struct mg_source_config src = {.record_size = sizeof(struct rec),
				       .rate = 100000,
				       .duration_ns = 50 * MS,
				       .gen = gen};
	static _Atomic uint64_t n[2];
	struct mg_stateful_config sc = {
		.ninputs = 2,
		.hash = {key_hash, key_hash},
		.out_record_size = sizeof(struct rec),
		.fn = both_op,
		.ctx = (void *)n,
	};
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	struct mg_run_stats st;
	struct rec r = {1, 1};

	(void)state;
	atomic_store(&n[0], 0);
	atomic_store(&n[1], 0);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.in[0] = mg_source(df, &src);
	sc.in[1] = mg_input(df, sizeof(struct rec), &in);
	mg_probe(df, mg_stateful(df, &sc));
	assert_int_equal(mg_producer_open(in, MG_ANY_WORKER, &p), 0);
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	/* stamped with the clock, as a mixed graph should */
	for (unsigned i = 0; i < 1000; i++)
		assert_int_equal(mg_push_wait(p, MG_TIME_NOW, &r, sizeof(r), 1,
					      MG_FOREVER),
				 1);
	assert_int_equal(mg_producer_close(p), 0);
	assert_int_equal(mg_dataflow_join(df, &st), 0);
	assert_int_equal(atomic_load(&n[0]), 5000);
	assert_int_equal(atomic_load(&n[1]), 1000);
	assert_int_equal(st.records, 6000);
	mg_dataflow_destroy(df);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_in_time_order),
		cmocka_unit_test(test_output_after_stop),
		cmocka_unit_test(test_stop_delivers_complete),
		cmocka_unit_test(test_push_then_read),
		cmocka_unit_test(test_probes),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_start_reports_prefill),
		cmocka_unit_test(test_prefill_drops_untouched),
		cmocka_unit_test(test_mixed_graph),
	};

	return MG_TEST_RUN(tests);
}
