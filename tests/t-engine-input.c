/*
 * t-engine-input.c - application inputs: producers on many threads, their
 * promises, backpressure, stopping, bad input, and migrations while records
 * are pushed -- always checked against a single-threaded reference.
 *
 * The computation: producers push {key, seq} records at times they choose;
 * a stateful operator counts per key and emits, for each record of a call,
 * {key, count of the key up to and including the call's time}.  Per time,
 * that multiset does not depend on which worker held the key's bin or in
 * which order records of one time arrived, so the reference (all pushes,
 * time by time) gives each time's fingerprint.  Outputs reach the test
 * through an output queue drained by its own thread, which also checks that
 * times come complete and in increasing order.
 *
 * Only the main thread asserts; helper threads record.  Nothing here waits
 * on the wall clock to be correct: where a test waits for something (a
 * frontier to move, a blocked producer to wake), it waits for the thing,
 * and a progress watchdog (MG_WATCHDOG_S, default 120 s without any time
 * completing) prints the engine's state and every thread's stack before it
 * fails, so a slow run and a stuck one can be told apart.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_pvt.h"
#include "engine/megaphone.h"
#include "migration/mg_router.h"
#include "tests/mg_test.h"

#define MS	 1000000ull
#define MAX_P	 16
#define MAX_OUTS (1u << 22)

struct rec {
	uint64_t key, seq;
};

struct out {
	uint64_t key, total;
};

/* ---- the operator ------------------------------------------------------------ */

static uint64_t
key_hash(void *ctx, const void *r)
{
	(void)ctx;
	return mg_hash64(((const struct rec *)r)->key + 0x5eed);
}

static void
count_op(void *ctx, struct mg_bin_call *c, struct mg_emitter *e)
{
	struct mg_map *m = c->state;
	const struct rec *r = c->in[0];
	void *v;

	(void)ctx;
	if (!m->value_size)
		mg_map_init(m, sizeof(uint64_t));
	for (uint32_t i = 0; i < c->n_in[0]; i++)
		if (mg_map_upsert(m, c->arena, r[i].key, &v) < 0) {
			c->error = -ENOMEM;
			return;
		} else {
			++*(uint64_t *)v;
		}
	for (uint32_t i = 0; i < c->n_in[0]; i++) {
		struct out o = {r[i].key,
				*(uint64_t *)mg_map_find(m, r[i].key)};

		mg_emit(e, &o);
	}
}

static int
ser(void *ctx, struct mg_bin_call *c, struct mg_writer *w)
{
	(void)ctx;
	return mg_map_write(c->state, w);
}

static int
des(void *ctx, struct mg_bin_call *c, struct mg_reader *r)
{
	(void)ctx;
	mg_map_init(c->state, sizeof(uint64_t));
	return mg_map_read(c->state, c->arena, r);
}

/* The operator every test here runs (inputs set by each); the serializers
 * matter only in copy mode. */
static const struct mg_stateful_config count_cfg = {
	.ninputs = 1,
	.hash = {key_hash},
	.out_record_size = sizeof(struct out),
	.state_size = sizeof(struct mg_map),
	.fn = count_op,
	.serialize = ser,
	.deserialize = des,
};

static uint64_t
out_hash(uint64_t time, const struct out *o)
{
	return mg_hash64(time * 0x9e3779b97f4a7c15ull ^
			 mg_hash64(o->key * 31 + o->total));
}

/* ---- fingerprints ------------------------------------------------------------ */

struct fp {
	uint64_t time, count, sum;
};

static int
fp_cmp(const void *a, const void *b)
{
	const struct fp *x = a, *y = b;

	return x->time < y->time ? -1 : x->time > y->time;
}

struct pushed {
	uint64_t time, key;
};

static int
pushed_cmp(const void *a, const void *b)
{
	const struct pushed *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->key < y->key ? -1 : x->key > y->key;
}

/* The reference: sort the pushes by time; a time's outputs are one per
 * record, {key, count of key up to the time}.  Returns the fingerprints. */
static struct fp *
reference(struct pushed *p, size_t n, uint64_t keys, size_t *nfp)
{
	uint64_t *count = calloc(keys, sizeof(*count));
	struct fp *f = calloc(n + 1, sizeof(*f));
	size_t i, j, k = 0;

	assert_non_null(count);
	assert_non_null(f);
	qsort(p, n, sizeof(*p), pushed_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && p[j].time == p[i].time; j++)
			count[p[j].key]++;
		f[k].time = p[i].time;
		for (j = i; j < n && p[j].time == p[i].time; j++) {
			struct out o = {p[j].key, count[p[j].key]};

			f[k].count++;
			f[k].sum += out_hash(p[i].time, &o);
		}
		k++;
	}
	free(count);
	*nfp = k;
	return f;
}

/* ---- the output consumer ------------------------------------------------------- */

struct consumer {
	struct mg_output *o;
	pthread_t thread;
	struct fp *fp; /* delivered, in delivery order */
	size_t nfp, cap;
	uint64_t records;
	int end;	/* what ended it: -ENODATA, -EPIPE, ... */
	int order_bad;	/* a time delivered out of order or twice */
	int record_bad; /* a record of the wrong size */
};

static void *
consumer_main(void *arg)
{
	struct consumer *c = arg;
	struct mg_output_time t;
	int err;

	while ((err = mg_output_next(c->o, &t, MG_FOREVER)) == 0) {
		if (c->nfp && t.time <= c->fp[c->nfp - 1].time)
			c->order_bad++;
		if (t.record_size != sizeof(struct out))
			c->record_bad++;
		if (c->nfp == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 1024;
			c->fp = realloc(c->fp, sizeof(*c->fp) * c->cap);
			if (!c->fp) {
				c->end = -ENOMEM;
				return NULL;
			}
		}
		c->fp[c->nfp] = (struct fp){t.time, t.count, 0};
		for (uint32_t i = 0; i < t.count; i++)
			c->fp[c->nfp].sum += out_hash(
				t.time, (const struct out *)t.records + i);
		c->records += t.count;
		c->nfp++;
	}
	c->end = err;
	return NULL;
}

/* ---- the progress watchdog --------------------------------------------------- */

struct watchdog {
	struct mg_dataflow *df;
	struct mg_probe *probe;
	pthread_t thread;
	_Atomic bool done;
	double limit_s;
};

static void *
watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	uint64_t last = mg_probe_frontier(w->probe);
	double idle = 0;

	while (!atomic_load_explicit(&w->done, memory_order_acquire)) {
		uint64_t f;

		nanosleep(&(struct timespec){0, 100 * MS}, NULL);
		f = mg_probe_frontier(w->probe);
		idle = f == last ? idle + 0.1 : 0;
		last = f;
		if (idle > w->limit_s) {
			fprintf(stderr,
				"watchdog: no time completed for %.0f s: the "
				"engine's state and every thread's stack:\n",
				w->limit_s);
			mg_dataflow_dump(w->df, stderr);
			mg_test_dump_threads();
			abort();
		}
	}
	return NULL;
}

static void
watchdog_start(struct watchdog *w, struct mg_dataflow *df,
	       struct mg_probe *probe)
{
	w->df = df;
	w->probe = probe;
	w->limit_s = (double)mg_test_env_u64("MG_WATCHDOG_S", 120);
	atomic_init(&w->done, false);
	assert_int_equal(pthread_create(&w->thread, NULL, watchdog_main, w), 0);
}

static void
watchdog_stop(struct watchdog *w)
{
	atomic_store_explicit(&w->done, true, memory_order_release);
	pthread_join(w->thread, NULL);
}

/* ---- a run: producers, migrations, reference ------------------------------------ */

struct run;

struct producer {
	struct run *r;
	struct mg_producer *p; /* opened before the start, or NULL */
	unsigned id;
	pthread_t thread;
	uint64_t seed;
	struct pushed *log; /* what it pushed */
	size_t n, cap;
	int err; /* the first unexpected result */
	const char *what;
};

struct run {
	const char *name;
	unsigned workers, producers, before_start; /* opened before start */
	unsigned bins_log2;
	uint32_t ring, batch;
	uint64_t records; /* per producer */
	uint64_t keys;
	uint64_t ahead; /* producers start this far ahead (logical) */
	uint64_t epoch_ns;
	enum mg_mode mode;
	bool migrate; /* random migrations while pushing */
	bool jitter;  /* a quarter of the pushes 1-2 ahead of the rest */
	bool hammer;  /* migrations back to back, no pause between */
	uint64_t seed;
	/* set by run_input() */
	struct mg_dataflow *df;
	struct mg_input *in;
	struct producer pr[MAX_P];
	_Atomic unsigned pushing; /* producers not finished */
	unsigned migrations, refused;
};

static void
log_push(struct producer *p, uint64_t time, uint64_t key)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 4096;
		p->log = realloc(p->log, sizeof(*p->log) * p->cap);
		if (!p->log)
			abort();
	}
	p->log[p->n++] = (struct pushed){time, key};
}

static void
bad(struct producer *p, const char *what, int err)
{
	if (!p->err) {
		p->err = err ? err : -EPROTO;
		p->what = what;
	}
}

/*
 * A producer thread: open (unless opened before the start), then push its
 * records in bursts at times that grow by 0..2, sometimes advancing past
 * the current time, sometimes waiting for room, sometimes non-blocking;
 * close.
 */
static void *
producer_main(void *arg)
{
	struct producer *p = arg;
	struct run *r = p->r;
	uint64_t rng = p->seed, t, i = 0;
	struct rec batch[64];
	int err;

	if (!p->p) {
		err = mg_producer_open(r->in, MG_ANY_WORKER, &p->p);
		if (err) {
			bad(p, "mg_producer_open", err);
			goto out;
		}
	}
	t = mg_producer_time(p->p);
	if (r->ahead) {
		t += r->ahead;
		err = mg_producer_advance(p->p, t);
		if (err)
			bad(p, "mg_producer_advance(ahead)", err);
	}
	while (i < r->records && !p->err) {
		uint64_t x = mg_test_rand(&rng);
		uint32_t n = 1 + (uint32_t)(x % 64), k;
		uint64_t at;

		if (n > r->records - i)
			n = (uint32_t)(r->records - i);
		t += (x >> 8) % 3;
		/* ahead of the promise, then back at t: a producer's batches
		 * need not come in time order */
		at = r->jitter && (x >> 40) % 4 == 0 ? t + 1 + (x >> 42) % 2
						     : t;
		for (k = 0; k < n; k++) {
			batch[k].key = mg_test_rand(&rng) % r->keys;
			batch[k].seq = (uint64_t)p->id << 40 | (i + k);
		}
		if ((x >> 16) % 4) {
			err = mg_push_wait(p->p, at, batch, sizeof(batch[0]), n,
					   MG_FOREVER);
			if (err != (int)n)
				bad(p, "mg_push_wait", err);
		} else {
			for (k = 0; k < n;) {
				err = mg_push_burst(p->p, at, batch + k,
						    sizeof(batch[0]), n - k);
				if (err < 0) {
					bad(p, "mg_push_burst", err);
					break;
				}
				k += (uint32_t)err;
				if (!err) /* full: let the worker drain */
					nanosleep(&(struct timespec){0, 20000},
						  NULL);
			}
		}
		for (k = 0; k < n; k++)
			log_push(p, at, batch[k].key);
		i += n;
		if ((x >> 24) % 8 == 0) {
			t += (x >> 32) % 3;
			err = mg_producer_advance(p->p, t);
			if (err)
				bad(p, "mg_producer_advance", err);
		}
	}
	err = mg_producer_close(p->p);
	if (err)
		bad(p, "mg_producer_close", err);
	if (mg_push(p->p, t, batch, sizeof(batch[0])) != -EPIPE)
		bad(p, "mg_push after close (not -EPIPE)", 0);
out:
	atomic_fetch_sub_explicit(&r->pushing, 1, memory_order_release);
	return NULL;
}

/* Random migrations (all strategies, ASAP or a time ahead) while the
 * producers push. */
static void *
migrator_main(void *arg)
{
	struct run *r = arg;
	uint32_t nb = 1u << r->bins_log2;
	uint16_t *t = malloc(sizeof(*t) * nb);
	uint64_t rng = r->seed ^ 0xabcdef;

	if (!t)
		abort();
	while (atomic_load_explicit(&r->pushing, memory_order_acquire)) {
		uint64_t x = mg_test_rand(&rng);
		/* hammering: a few bins at once, so that each is done soon */
		enum mg_strategy s =
			r->hammer ? MG_ALL_AT_ONCE : (enum mg_strategy)(x % 3);
		struct mg_migration *m = NULL;
		int err;

		mg_dataflow_owners(r->df, t);
		for (uint32_t b = 0; b < nb; b++)
			if (mg_test_rand(&rng) % (r->hammer ? 256 : 4) == 0)
				t[b] = (uint16_t)(mg_test_rand(&rng) %
						  r->workers);
		err = mg_migrate(r->df, s, t,
				 x >> 8 & 1 ? MG_TIME_ASAP
					    : mg_dataflow_time_ahead(r->df, MS),
				 (x >> 9) % 3, &m);
		if (!err) {
			r->migrations++;
			mg_migration_wait(m);
		} else {
			r->refused++; /* -ETIME, -EBUSY, or the end */
		}
		if (!r->hammer)
			nanosleep(&(struct timespec){0, 2 * MS}, NULL);
	}
	free(t);
	return NULL;
}

static void
run_input(struct run *r)
{
	struct mg_dataflow_config dc = {
		.workers = r->workers,
		.oversubscribe = true,
		.bins_log2 = r->bins_log2,
		.ring_capacity = r->ring,
		.batch_records = r->batch,
		.epoch_ns = r->epoch_ns,
		.mode = r->mode,
	};
	struct mg_stateful_config sc = count_cfg;
	struct consumer c = {0};
	struct watchdog wd;
	struct mg_stream *s, *o;
	struct mg_probe *probe;
	struct mg_run_stats st;
	pthread_t mig;
	struct pushed *all;
	struct fp *ref;
	size_t nall = 0, nref, i;
	unsigned k;

	printf("# %s: W=%u P=%u (%u before the start) bins=2^%u ring=%u "
	       "batch=%u records=%llu ahead=%llu %s%s\n",
	       r->name, r->workers, r->producers, r->before_start, r->bins_log2,
	       r->ring, r->batch, (unsigned long long)r->records,
	       (unsigned long long)r->ahead,
	       r->mode == MG_COPY ? "copy" : "handoff",
	       r->migrate ? " migrating" : "");
	assert_true(r->producers <= MAX_P);
	assert_int_equal(mg_dataflow_create(&r->df, &dc), 0);
	s = mg_input(r->df, sizeof(struct rec), &r->in);
	sc.in[0] = s;
	o = mg_stateful(r->df, &sc);
	c.o = mg_output(r->df, o);
	probe = mg_probe(r->df, o);
	assert_int_equal(mg_dataflow_error(r->df), 0);
	atomic_init(&r->pushing, r->producers);
	for (k = 0; k < r->producers; k++) {
		r->pr[k] = (struct producer){
			.r = r, .id = k, .seed = r->seed * 131 + k};
		if (k < r->before_start)
			assert_int_equal(mg_producer_open(r->in,
							  (int)(k % r->workers),
							  &r->pr[k].p),
					 0);
	}
	assert_int_equal(mg_dataflow_start(r->df, NULL, NULL), 0);
	watchdog_start(&wd, r->df, probe);
	assert_int_equal(pthread_create(&c.thread, NULL, consumer_main, &c), 0);
	for (k = 0; k < r->producers; k++)
		assert_int_equal(pthread_create(&r->pr[k].thread, NULL,
						producer_main, &r->pr[k]),
				 0);
	if (r->migrate)
		assert_int_equal(pthread_create(&mig, NULL, migrator_main, r),
				 0);
	for (k = 0; k < r->producers; k++)
		pthread_join(r->pr[k].thread, NULL);
	/* An open input holds its frontier even without producers (one may
	 * still open): close it before waiting on a migration. */
	assert_int_equal(mg_input_close(r->in), 0);
	if (r->migrate)
		pthread_join(mig, NULL);
	assert_int_equal(mg_dataflow_join(r->df, &st), 0);
	pthread_join(c.thread, NULL);
	watchdog_stop(&wd);

	for (k = 0; k < r->producers; k++) {
		if (r->pr[k].err)
			printf("# producer %u: %s returned %d (%s)\n", k,
			       r->pr[k].what, r->pr[k].err,
			       mg_strerror(r->pr[k].err));
		assert_int_equal(r->pr[k].err, 0);
		nall += r->pr[k].n;
	}
	all = malloc(sizeof(*all) * (nall + 1));
	assert_non_null(all);
	for (nall = 0, k = 0; k < r->producers; k++) {
		memcpy(all + nall, r->pr[k].log, sizeof(*all) * r->pr[k].n);
		nall += r->pr[k].n;
		free(r->pr[k].log);
	}
	ref = reference(all, nall, r->keys, &nref);
	printf("#   %zu records pushed at %zu times, %llu delivered at %zu "
	       "times; %u migrations (%u refused); run %.3f s\n",
	       nall, nref, (unsigned long long)c.records, c.nfp, r->migrations,
	       r->refused, st.duration_s);
	assert_int_equal(c.end, -ENODATA);
	assert_int_equal(c.order_bad, 0);
	assert_int_equal(c.record_bad, 0);
	assert_int_equal(st.records, nall);
	assert_int_equal(mg_probe_frontier(probe), MG_TIME_MAX);
	assert_int_equal(c.nfp, nref);
	qsort(c.fp, c.nfp, sizeof(*c.fp), fp_cmp);
	for (i = 0; i < nref; i++) {
		if (c.fp[i].time != ref[i].time ||
		    c.fp[i].count != ref[i].count || c.fp[i].sum != ref[i].sum)
			printf("# time %llu: got %llu records (sum %llx) at "
			       "%llu, expected %llu (sum %llx)\n",
			       (unsigned long long)ref[i].time,
			       (unsigned long long)c.fp[i].count,
			       (unsigned long long)c.fp[i].sum,
			       (unsigned long long)c.fp[i].time,
			       (unsigned long long)ref[i].count,
			       (unsigned long long)ref[i].sum);
		assert_int_equal(c.fp[i].time, ref[i].time);
		assert_int_equal(c.fp[i].count, ref[i].count);
		assert_int_equal(c.fp[i].sum, ref[i].sum);
	}
	free(all);
	free(ref);
	free(c.fp);
	mg_dataflow_destroy(r->df);
}

static void
test_one_producer(void **state)
{
	struct run r = {.name = "one producer",
			.workers = 1,
			.producers = 1,
			.before_start = 1,
			.bins_log2 = 4,
			.ring = 8,
			.batch = 16,
			.records = 5000,
			.keys = 50,
			.seed = mg_test_seed()};

	(void)state;
	run_input(&r);
}

static void
test_many_producers(void **state)
{
	uint64_t seed = mg_test_seed();

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		uint64_t x = mg_test_rand(&seed);
		struct run r = {.name = "many producers",
				.workers = 1 + (unsigned)(x % 3),
				.producers = 2 + (unsigned)((x >> 8) % 7),
				.bins_log2 = 4 + (unsigned)((x >> 16) % 5),
				.ring = 2u << ((x >> 24) % 5),
				.batch = 1 + (uint32_t)((x >> 32) % 40),
				.records = 4000,
				.keys = 200,
				.ahead = (x >> 40) % 2 ? 1000000000ull : 0,
				.seed = x};

		r.before_start = (unsigned)((x >> 48) % (r.producers + 1));
		run_input(&r);
	}
}

static void
test_migrations_while_pushing(void **state)
{
	uint64_t seed = mg_test_seed();

	(void)state;
	for (unsigned i = 0; i < 6; i++) {
		uint64_t x = mg_test_rand(&seed);
		struct run r = {.name = "pushing and migrating",
				.workers = 2 + (unsigned)(x % 3),
				.producers = 2 + (unsigned)((x >> 8) % 4),
				.bins_log2 = 4 + (unsigned)((x >> 16) % 4),
				.ring = 4u << ((x >> 24) % 4),
				.batch = 1 + (uint32_t)((x >> 32) % 32),
				.records = 20000,
				.keys = 500,
				.epoch_ns = 100000,
				.ahead = (x >> 40) % 3 == 0 ? 1000000000ull : 0,
				.mode = (x >> 44) % 2 ? MG_COPY : MG_HANDOFF,
				.migrate = true,
				.jitter = true,
				.seed = x};

		r.before_start = (unsigned)((x >> 48) % (r.producers + 1));
		run_input(&r);
	}
}

/*
 * Producers whose batches come out of time order (t + 2, then t) while
 * migrations are submitted back to back: a batch ahead of the control
 * frontier is held back while a submission claims it, and the input's
 * frontier was once taken from the held batch's time -- past the earlier
 * batches behind it in the ring, which then reached the exchange below
 * its promise (the channel's I2 assertion).  The frontier is the last mark.
 * The claim is brief, so this case only gives the race room (it did not
 * hit the old code in 6 seeds); test_held_batch_frontier makes it happen.
 */
static void
test_jitter_while_migrating(void **state)
{
	uint64_t seed = mg_test_seed();

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		uint64_t x = mg_test_rand(&seed);
		struct run r = {
			.name = "jittered pushes, migrations back to back",
			.workers = 2,
			.producers = 2 + (unsigned)(x % 3),
			.bins_log2 = 10,
			.ring = 8,
			.batch = 1 + (uint32_t)((x >> 8) % 8),
			.records = 20000,
			.keys = 500,
			.epoch_ns = 100000,
			.mode = MG_HANDOFF,
			.migrate = true,
			.jitter = true,
			.hammer = true,
			.seed = x};

		run_input(&r);
	}
}

/* ---- frontiers: a quiet producer holds times back; advance and close ---------- */

static uint64_t
id_hash(void *ctx, const void *r)
{
	(void)ctx;
	return mg_hash64(((const struct rec *)r)->key);
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
test_advance_and_close_orders(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2, .oversubscribe = true};
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *a, *b, *late;
	struct mg_probe *probe;
	struct mg_stream *s;
	struct rec x = {1, 1};

	(void)state;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_input(df, sizeof(struct rec), &in);
	s = mg_exchange(df, s, id_hash, NULL);
	assert_int_equal(mg_sink(df, s, nop_sink, NULL), 0);
	probe = mg_probe(df, s);
	assert_int_equal(mg_producer_open(in, 0, &a), 0);
	assert_int_equal(mg_producer_open(in, 1, &b), 0);
	assert_int_equal(mg_producer_time(a), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);

	/* a runs ahead; b is quiet: nothing past b's promise completes */
	assert_int_equal(mg_push(a, 100, &x, sizeof(x)), 0);
	assert_int_equal(mg_producer_advance(a, 200), 0);
	assert_int_equal(mg_producer_advance(b, 10), 0);
	assert_int_equal(mg_probe_wait(probe, 9, MG_FOREVER), 0);
	assert_true(mg_probe_frontier(probe) <= 10); /* held by b */
	assert_int_equal(mg_probe_wait(probe, 10, 0), -ETIMEDOUT);
	/* b advances: the frontier follows it, up to a's promise */
	assert_int_equal(mg_producer_advance(b, 150), 0);
	assert_int_equal(mg_probe_wait(probe, 149, MG_FOREVER), 0);
	assert_true(mg_probe_frontier(probe) <= 150);
	/* a producer opened now starts at the input's frontier, not before
	 * what the workers already promised */
	assert_int_equal(mg_producer_open(in, 1, &late), 0);
	assert_true(mg_producer_time(late) >= 150);
	assert_int_equal(
		mg_push(late, mg_producer_time(late) - 1, &x, sizeof(x)),
		-EINVAL);
	assert_int_equal(mg_push(late, mg_producer_time(late), &x, sizeof(x)),
			 0);
	/* b closes: a and late hold it now */
	assert_int_equal(mg_producer_close(b), 0);
	assert_int_equal(mg_producer_advance(late, 300), 0);
	assert_int_equal(mg_probe_wait(probe, 199, MG_FOREVER), 0);
	assert_true(mg_probe_frontier(probe) <= 200);
	/* a closes, late advances: nothing holds back but late */
	assert_int_equal(mg_producer_close(a), 0);
	assert_int_equal(mg_probe_wait(probe, 299, MG_FOREVER), 0);
	/* an input that is not closed keeps the run alive after all its
	 * producers close; closing it ends the run */
	assert_int_equal(mg_producer_close(late), 0);
	assert_true(mg_dataflow_accepts_migrations(df));
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_producer_open(in, 0, &late), -EPIPE);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	assert_int_equal(mg_probe_frontier(probe), MG_TIME_MAX);
	assert_int_equal(mg_probe_wait(probe, 1000000, 0), 0);
	assert_int_equal(mg_probe_wait(probe, MG_TIME_LIMIT - 1, 0), 0);
	/* not a time: never complete, even after the end */
	assert_int_equal(mg_probe_wait(probe, MG_TIME_MAX, 0), -EINVAL);
	mg_dataflow_destroy(df);
}

/* ---- backpressure: a full path, a blocked producer, stop -------------------------- */

static _Atomic int gate; /* 1: the sink blocks its worker */

static void
gated_sink(void *ctx, unsigned w, uint64_t t, const void *r)
{
	_Atomic uint64_t *n = ctx;

	(void)w;
	(void)t;
	(void)r;
	while (atomic_load_explicit(&gate, memory_order_acquire))
		nanosleep(&(struct timespec){0, 100000}, NULL);
	atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
}

struct blocked {
	struct mg_producer *p;
	uint32_t n;
	int result;
	_Atomic bool started, finished;
};

static void *
blocked_main(void *arg)
{
	struct blocked *b = arg;
	struct rec x[64];

	for (uint32_t i = 0; i < 64; i++)
		x[i] = (struct rec){i, i};
	atomic_store_explicit(&b->started, true, memory_order_release);
	b->result = mg_push_wait(b->p, 7, x, sizeof(x[0]), b->n, MG_FOREVER);
	atomic_store_explicit(&b->finished, true, memory_order_release);
	return NULL;
}

static double
thread_cpu_s(pthread_t t)
{
	clockid_t id;
	struct timespec ts;

	if (pthread_getcpuclockid(t, &id) || clock_gettime(id, &ts))
		return -1;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Push until the path is full (the worker is held in the sink). */
static uint64_t
fill(struct mg_producer *p)
{
	struct rec x = {3, 3};
	uint64_t n = 0;
	int err;

	while ((err = mg_push(p, 7, &x, sizeof(x))) == 0)
		n++;
	assert_int_equal(err, -EAGAIN);
	return n;
}

static void
test_full_path_wakes(void **state)
{
	struct mg_dataflow_config dc = {
		.workers = 1, .ring_capacity = 2, .batch_records = 4};
	static _Atomic uint64_t sunk;
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	struct mg_stream *s;
	struct blocked b = {.n = 64};
	struct mg_run_stats st;
	pthread_t t;
	uint64_t n;
	double cpu0, cpu1;

	(void)state;
	atomic_store(&sunk, 0);
	atomic_store(&gate, 1);
	atomic_init(&b.started, false);
	atomic_init(&b.finished, false);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_input(df, sizeof(struct rec), &in);
	assert_int_equal(mg_sink(df, s, gated_sink, (void *)&sunk), 0);
	assert_int_equal(mg_producer_open(in, 0, &p), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	n = fill(p);
	printf("#   the path took %llu records, then -EAGAIN\n",
	       (unsigned long long)n);
	/* a blocking push waits without using the CPU ... */
	b.p = p;
	assert_int_equal(pthread_create(&t, NULL, blocked_main, &b), 0);
	while (!atomic_load_explicit(&b.started, memory_order_acquire))
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	nanosleep(&(struct timespec){0, 50 * MS}, NULL);
	cpu0 = thread_cpu_s(t);
	nanosleep(&(struct timespec){0, 200 * MS}, NULL);
	cpu1 = thread_cpu_s(t);
	if (!atomic_load_explicit(&b.finished, memory_order_acquire)) {
		printf("#   blocked producer used %.1f ms of CPU in 200 ms\n",
		       (cpu1 - cpu0) * 1e3);
		assert_true(cpu1 - cpu0 < 0.05);
	}
	/* ... and wakes once the worker drains */
	atomic_store_explicit(&gate, 0, memory_order_release);
	pthread_join(t, NULL);
	assert_int_equal(b.result, 64);
	assert_int_equal(mg_producer_close(p), 0);
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_dataflow_join(df, &st), 0);
	assert_int_equal(atomic_load(&sunk), n + 64);
	assert_int_equal(st.records, n + 64);
	assert_false(st.stopped);
	mg_dataflow_destroy(df);
}

static void
test_stop_wakes_blocked(void **state)
{
	struct mg_dataflow_config dc = {
		.workers = 1, .ring_capacity = 2, .batch_records = 4};
	static _Atomic uint64_t sunk;
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p, *q;
	struct mg_stream *s;
	struct mg_probe *probe;
	struct blocked b = {.n = 64};
	struct mg_run_stats st;
	struct rec x = {1, 1};
	pthread_t t;

	(void)state;
	atomic_store(&gate, 1);
	atomic_init(&b.started, false);
	atomic_init(&b.finished, false);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_input(df, sizeof(struct rec), &in);
	assert_int_equal(mg_sink(df, s, gated_sink, (void *)&sunk), 0);
	probe = mg_probe(df, s);
	assert_int_equal(mg_producer_open(in, 0, &p), 0);
	assert_int_equal(mg_producer_open(in, 0, &q), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	fill(p);
	/* one record in q's batch, not yet sent */
	assert_int_equal(mg_push(q, 50, &x, sizeof(x)), 0);
	b.p = p;
	assert_int_equal(pthread_create(&t, NULL, blocked_main, &b), 0);
	while (!atomic_load_explicit(&b.started, memory_order_acquire))
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	/* stop while a producer is blocked and the input is open: the
	 * producer gets an error, nothing hangs */
	mg_dataflow_stop(df);
	pthread_join(t, NULL);
	assert_true(b.result == -EPIPE || (b.result >= 0 && b.result < 64));
	atomic_store_explicit(&gate, 0, memory_order_release);
	assert_int_equal(mg_dataflow_join(df, &st), 0);
	assert_true(st.stopped);
	/* everything after the stop is refused */
	assert_int_equal(mg_push(q, 100, &x, sizeof(x)), -EPIPE);
	assert_int_equal(mg_push_wait(q, 100, &x, sizeof(x), 1, MG_FOREVER),
			 -EPIPE);
	assert_int_equal(mg_producer_advance(q, 200), -EPIPE);
	/* q's record was dropped with the run: neither says it was sent */
	assert_int_equal(mg_producer_flush(q), -EPIPE);
	assert_int_equal(mg_producer_close(q), -EPIPE);
	assert_int_equal(mg_producer_close(q), -EPIPE);
	assert_int_equal(mg_producer_open(in, 0, &q), -EPIPE);
	assert_int_equal(mg_probe_wait(probe, MG_TIME_LIMIT - 1, MG_FOREVER),
			 -EPIPE);
	mg_dataflow_stop(df); /* idempotent */
	mg_dataflow_destroy(df);
}

/* destroy keeps its promise: it stops a running dataflow whose input is
 * open and whose producers never close */
static void
test_destroy_stops(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2, .oversubscribe = true};
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	struct mg_stream *s;
	struct rec x = {1, 1};

	(void)state;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_input(df, sizeof(struct rec), &in);
	assert_int_equal(mg_sink(df, s, nop_sink, NULL), 0);
	assert_int_equal(mg_producer_open(in, MG_ANY_WORKER, &p), 0);
	assert_int_equal(mg_push(p, MG_TIME_NOW, &x, sizeof(x)), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_push(p, MG_TIME_NOW, &x, sizeof(x)), 0);
	mg_dataflow_destroy(df);
}

/* Start @dc's run of count_cfg from one producer into a gated sink that
 * counts into @sunk (the gate open); the dataflow, input and producer into
 * the pointers. */
static void
start_gated(const struct mg_dataflow_config *dc, _Atomic uint64_t *sunk,
	    struct mg_dataflow **df, struct mg_input **in,
	    struct mg_producer **p)
{
	struct mg_stateful_config sc = count_cfg;

	atomic_store(&gate, 0);
	atomic_store(sunk, 0);
	assert_int_equal(mg_dataflow_create(df, dc), 0);
	sc.in[0] = mg_input(*df, sizeof(struct rec), in);
	assert_int_equal(
		mg_sink(*df, mg_stateful(*df, &sc), gated_sink, (void *)sunk),
		0);
	assert_int_equal(mg_producer_open(*in, 0, p), 0);
	assert_int_equal(mg_dataflow_start(*df, NULL, NULL), 0);
}

/*
 * test_jitter_while_migrating, made to happen: a submission's claim on the control frontier
 * is held by hand (white box) while one producer sends a batch at t + 2
 * (ahead of the control frontier: held back) and then one at t behind it.
 * Before the fix the worker promised t + 1 downstream from the held batch
 * and, once the claim was gone, sent t's record below that promise: the
 * channel's I2 assertion aborted the test.  Where the workers get no CPU
 * for the pause below the case proves nothing, but cannot fail.
 */
static void
test_held_batch_frontier(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2,
					.oversubscribe = true,
					.bins_log2 = 4,
					.epoch_ns = 100000};
	static _Atomic uint64_t sunk;
	const uint64_t t = 10;
	struct mg_run_stats st;
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	uint64_t waited_ms = 0;

	(void)state;
	start_gated(&dc, &sunk, &df, &in, &p);
	/* a record at t raises the control frontier past t */
	assert_int_equal(mg_push(p, t, &(struct rec){1, 0}, sizeof(struct rec)),
			 0);
	assert_int_equal(mg_producer_flush(p), 0);
	while (mg_router_frontier(df->router) <= t) {
		nanosleep(&(struct timespec){0, MS}, NULL);
		if (++waited_ms > 1000 * mg_test_env_u64("MG_WATCHDOG_S", 120))
			fail_msg("the control frontier stayed at %llu",
				 (unsigned long long)mg_router_frontier(
					 df->router));
	}
	/* a submission claims it (by hand): nothing raises it meanwhile */
	atomic_fetch_or_explicit(&df->router->frontier, MG__CTL_CLAIM,
				 memory_order_relaxed);
	assert_int_equal(
		mg_push(p, t + 2, &(struct rec){2, 0}, sizeof(struct rec)), 0);
	assert_int_equal(mg_push(p, t, &(struct rec){3, 0}, sizeof(struct rec)),
			 0);
	assert_int_equal(mg_producer_flush(p), 0);
	nanosleep(&(struct timespec){0, 100 * MS}, NULL); /* rounds run */
	atomic_fetch_and_explicit(&df->router->frontier, ~MG__CTL_CLAIM,
				  memory_order_relaxed);
	assert_int_equal(mg_producer_close(p), 0);
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_dataflow_join(df, &st), 0);
	assert_int_equal(atomic_load(&sunk), 3);
	mg_dataflow_destroy(df);
}

/*
 * A producer that pushes at MG_TIME_NOW into a ring of one slot (capacity 2)
 * completes times while it keeps pushing.  Before the fix the frontier stayed
 * where it started until the producer closed: each new time sealed the last
 * time's batch, which found the slot taken, so the promise was never marked
 * (and a mark asked for lost its slot to the next batch every time).  Then
 * this test pushes until the watchdog gives up.  Batches of one record and
 * of 64 (the ring holds a batch being filled, and one refused, behind it).
 */
static void
test_now_marks_one_slot(void **state)
{
	static const uint32_t batch[] = {1, 64};

	(void)state;
	for (unsigned i = 0; i < MG_ARRAY_SIZE(batch); i++) {
		struct mg_dataflow_config dc = {.workers = 1,
						.ring_capacity = 2,
						.batch_records = batch[i],
						.epoch_ns = 100000};
		struct mg_dataflow *df;
		struct mg_input *in;
		struct mg_producer *p;
		struct mg_probe *probe;
		struct watchdog wd;
		struct rec x = {1, 1};
		uint64_t t0, pushes = 0;

		assert_int_equal(mg_dataflow_create(&df, &dc), 0);
		probe = mg_probe(df, mg_input(df, sizeof(struct rec), &in));
		assert_non_null(probe);
		assert_int_equal(mg_producer_open(in, 0, &p), 0);
		assert_int_equal(mg_input_close(in), 0);
		assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
		watchdog_start(&wd, df, probe);
		assert_int_equal(mg_push_wait(p, MG_TIME_NOW, &x, sizeof(x), 1,
					      MG_FOREVER),
				 1);
		t0 = mg_producer_time(p);
		while (mg_probe_frontier(probe) <= t0 + 2) {
			assert_int_equal(mg_push_wait(p, MG_TIME_NOW, &x,
						      sizeof(x), 1, MG_FOREVER),
					 1);
			pushes++;
			nanosleep(&(struct timespec){0, 20000}, NULL);
		}
		printf("#   batches of %u: time %llu complete after %llu more "
		       "pushes\n",
		       batch[i], (unsigned long long)t0 + 2,
		       (unsigned long long)pushes);
		watchdog_stop(&wd);
		assert_int_equal(mg_producer_close(p), 0);
		assert_int_equal(mg_dataflow_join(df, NULL), 0);
		mg_dataflow_destroy(df);
	}
}

/*
 * Batches bound for a stateful operator's log leave full, or when their time
 * closes, or from a round in which their SEND took a batch's worth of
 * records (send.c, mg__send_flush()) -- not each round: a producer that
 * flushes every record of one time and pauses, so that the worker's rounds
 * find a record or two, still makes whole batches.  The slots pushed into
 * the worker's own exchange channel (white box: its ring's producer index)
 * are those batches and a mark for each frontier the worker saw (the
 * producer's time, its end).  A round that sends a partial batch early took
 * BATCH records at least, so there are at most 2 N / BATCH batches however
 * the rounds fall, where sending each round's records pushed one for
 * nearly every record (4098 for 4096).
 */
static void
test_trickle_fills_batches(void **state)
{
	enum { BATCH = 64, N = 64 * BATCH };
	struct mg_dataflow_config dc = {.workers = 1,
					.oversubscribe = true,
					.bins_log2 = 4,
					.batch_records = BATCH};
	static _Atomic uint64_t sunk;
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	struct node *send = NULL;
	unsigned slots;

	(void)state;
	start_gated(&dc, &sunk, &df, &in, &p);
	assert_int_equal(mg_input_close(in), 0);
	for (uint64_t i = 0; i < N; i++) {
		assert_int_equal(mg_push(p, 1, &(struct rec){i % 97, i},
					 sizeof(struct rec)),
				 0);
		assert_int_equal(mg_producer_flush(p), 0);
		nanosleep(&(struct timespec){0, 20000}, NULL);
	}
	assert_int_equal(mg_producer_close(p), 0);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	assert_int_equal(atomic_load(&sunk), N);
	for (unsigned i = 0; i < df->nnodes; i++)
		if (df->nodes[i]->kind == SEND && df->nodes[i]->feeds &&
		    df->nodes[i]->feeds->kind == STATEFUL)
			send = df->nodes[i];
	assert_non_null(send);
	slots = mg_mesh_channel(send->u.send.mesh, 0, 0)->fwd.p_tail;
	printf("#   %u records of one time, flushed one by one: %u slots "
	       "(%u full batches)\n",
	       N, slots, N / BATCH);
	assert_true(slots >= N / BATCH);
	assert_true(slots <= 2 * N / BATCH + 16);
	mg_dataflow_destroy(df);
}

/* ---- bad input: a clear error, nothing changed, the run still right ----------- */

static void
test_bad_input(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2, .oversubscribe = true};
	static _Atomic uint64_t sunk;
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p, *q;
	struct mg_stream *s;
	struct mg_run_stats st;
	struct rec x = {1, 1};
	char small[4] = {0};

	(void)state;
	atomic_store(&gate, 0);
	atomic_store(&sunk, 0);
	/* inputs that cannot be */
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	assert_null(mg_input(df, 0, &in));
	assert_int_equal(mg_dataflow_error(df), -EINVAL);
	mg_dataflow_destroy(df);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	assert_null(mg_input(df, MG_RECORD_MAX + 1, &in));
	assert_int_equal(mg_dataflow_error(df), -EINVAL);
	mg_dataflow_destroy(df);

	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_input(df, sizeof(struct rec), &in);
	assert_int_equal(mg_sink(df, s, gated_sink, (void *)&sunk), 0);
	assert_int_equal(mg_producer_open(in, 2, &p), -EINVAL);
	assert_int_equal(mg_producer_open(in, -2, &p), -EINVAL);
	assert_int_equal(mg_producer_open(NULL, 0, &p), -EINVAL);
	assert_int_equal(mg_producer_open(in, 0, &p), 0);
	assert_int_equal(mg_producer_open(in, 1, &q), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	/* each refused, nothing pushed */
	assert_int_equal(mg_push(p, 5, small, sizeof(small)), -EINVAL);
	assert_int_equal(mg_push_burst(p, 5, &x, sizeof(x) + 8, 1), -EINVAL);
	assert_int_equal(mg_push(p, MG_TIME_LIMIT, &x, sizeof(x)), -EINVAL);
	assert_int_equal(mg_push(p, MG_TIME_MAX, &x, sizeof(x)), -EINVAL);
	assert_int_equal(mg_producer_advance(p, MG_TIME_LIMIT), -EINVAL);
	assert_int_equal(mg_producer_advance(p, 10), 0);
	assert_int_equal(mg_push(p, 9, &x, sizeof(x)), -EINVAL); /* late */
	assert_int_equal(mg_push_wait(p, 9, &x, sizeof(x), 1, MG_FOREVER),
			 -EINVAL);
	/* refused at MG_TIME_NOW, once now is past the promise: the promise
	 * stays (a refused push advances nothing) */
	while (mg_dataflow_now(df) <= 10)
		sched_yield();
	assert_int_equal(mg_push(p, MG_TIME_NOW, small, sizeof(small)),
			 -EINVAL);
	assert_int_equal(mg_push_burst(p, MG_TIME_NOW, NULL, sizeof(x), 1),
			 -EINVAL);
	assert_int_equal(
		mg_push_wait(p, MG_TIME_NOW, &x, sizeof(x) + 8, 1, MG_FOREVER),
		-EINVAL);
	assert_int_equal(mg_producer_time(p), 10);
	/* what is right still goes through */
	assert_int_equal(mg_push(p, 10, &x, sizeof(x)), 0);
	assert_int_equal(mg_push(q, 3, &x, sizeof(x)), 0);
	assert_int_equal(mg_producer_close(p), 0);
	/* after close */
	assert_int_equal(mg_push(p, 20, &x, sizeof(x)), -EPIPE);
	assert_int_equal(mg_producer_advance(p, 20), -EPIPE);
	assert_int_equal(mg_producer_flush(p), -EPIPE);
	assert_int_equal(mg_producer_close(p), -EPIPE);
	assert_int_equal(mg_producer_close(q), 0);
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_input_close(in), 0); /* idempotent */
	assert_int_equal(mg_dataflow_join(df, &st), 0);
	assert_int_equal(atomic_load(&sunk), 2);
	assert_int_equal(st.records, 2);
	mg_dataflow_destroy(df);
}

/*
 * A fluid migration moves one bin per step, each step issued after the
 * previous completed; a run that ends first never issues the rest.  After
 * the run, mg_dataflow_owners() reports where the bins are -- the moved
 * ones moved, the others home -- not the targets of steps that never ran.
 */
static void
test_owners_after_end(void **state)
{
	struct mg_dataflow_config dc = {
		.workers = 2, .oversubscribe = true, .bins_log2 = 4};
	struct mg_stateful_config sc = count_cfg;
	struct mg_migration_progress pr;
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	struct mg_migration *m;
	uint16_t start[16], target[16], after[16];
	struct rec x = {1, 1};
	unsigned b, moved = 0, differ = 0;

	(void)state;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.in[0] = mg_input(df, sizeof(struct rec), &in);
	mg_probe(df, mg_stateful(df, &sc));
	assert_int_equal(mg_producer_open(in, 0, &p), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_push(p, 1, &x, sizeof(x)), 0);
	mg_dataflow_owners(df, start);
	for (b = 0; b < 16; b++)
		target[b] = (uint16_t)(1 - start[b]);
	/* 16 steps, 1000 epochs apart: the run ends long before the last */
	assert_int_equal(
		mg_migrate(df, MG_FLUID, target, MG_TIME_ASAP, 1000, &m), 0);
	mg_dataflow_owners(df, after); /* while running: the targets */
	assert_memory_equal(after, target, sizeof(after));
	assert_int_equal(mg_producer_advance(p, 1500), 0);
	assert_int_equal(mg_producer_close(p), 0);
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	mg_migration_progress(m, &pr);
	mg_dataflow_owners(df, after);
	for (b = 0; b < 16; b++) {
		moved += after[b] == target[b];
		differ += after[b] != start[b];
	}
	printf("#   %u of 16 bins moved before the end (progress: %u)\n", moved,
	       pr.bins_moved);
	assert_false(pr.done);
	assert_true(pr.bins_moved < 16);
	assert_int_equal(moved, pr.bins_moved);
	assert_int_equal(differ, pr.bins_moved);
	mg_dataflow_destroy(df);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_producer),
		cmocka_unit_test(test_many_producers),
		cmocka_unit_test(test_advance_and_close_orders),
		cmocka_unit_test(test_full_path_wakes),
		cmocka_unit_test(test_stop_wakes_blocked),
		cmocka_unit_test(test_destroy_stops),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_owners_after_end),
		cmocka_unit_test(test_migrations_while_pushing),
		cmocka_unit_test(test_jitter_while_migrating),
		cmocka_unit_test(test_held_batch_frontier),
		cmocka_unit_test(test_now_marks_one_slot),
		cmocka_unit_test(test_trickle_fills_batches),
	};

	return MG_TEST_RUN(tests);
}
