/*
 * t-engine-dataflow.c - the engine end to end, against an obviously correct
 * single-threaded reference computed here from the same record schedule:
 *
 *   - a unary counting operator: every timestamp's output multiset equals
 *     the reference, for bins and native, 1..4 workers, tiny rings;
 *   - post-dated records: each fires exactly at the time it was scheduled;
 *   - a binary operator joining two sources;
 *   - timestamp order per bin, and every record seen exactly once;
 *   - the operator's prefetch hint gets records with their own bin's state;
 *   - bad configurations and bad wiring refused with -EINVAL;
 *   - a run fits a low RLIMIT_AS, and running out of pool memory ends the
 *     run with -ENOMEM, not a crash;
 *   - a forked child runs a dataflow of its own.
 *
 * Workers record; only the main thread asserts.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/megaphone.h"
#include "numa/mg_base.h"
#include "tests/mg_test.h"
#include "tests/mg_test_model.h"

#define EPOCH_NS    100000ull /* 100 us */
#define TIMER_DELAY 3	      /* epochs */

struct root {
	struct mg_map counts; /* key -> records seen */
	uint64_t last_time;   /* order check */
	uint64_t calls;
	uint64_t bin_plus1; /* the bin this state is (0: native or unseen) */
};

struct run {
	struct mg_test_model m; /* the computation; the sources' context */
	unsigned workers, bins_log2;
	uint32_t ring, batch;
	bool native;
	/* results, per worker x time */
	uint64_t ntimes;
	struct mg_test_model_fp *fp;
	/* Counters every worker bumps, relaxed: only their totals matter,
	 * and joining the workers orders them before main reads them. */
	_Atomic uint64_t overflow; /* outputs past ntimes */
	_Atomic uint64_t prefetches, prefetch_errors;
	_Atomic uint64_t order_errors; /* a bin called at a time <= its last */
};

/* The model's operator (mg_test_model.h), checking each bin's time order
 * and noting which bin each state is. */
static void
op(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	struct run *r = ctx;
	struct root *root = c->state;

	if (root->calls++ && c->time <= root->last_time)
		atomic_fetch_add_explicit(&r->order_errors, 1,
					  memory_order_relaxed);
	root->last_time = c->time;
	if (!r->native)
		root->bin_plus1 = c->bin + 1ull;
	mg_test_model_apply(&r->m, &root->counts, c, out);
}

/* A hint with a check: @rec must belong to the bin whose state it gets. */
static void
prefetch(void *ctx, const void *state, unsigned in, const void *rec)
{
	struct run *r = ctx;
	const struct root *root = state;

	if (!mg_test_model_hint_ok(&r->m, r->bins_log2, root->bin_plus1, in,
				   rec))
		atomic_fetch_add_explicit(&r->prefetch_errors, 1,
					  memory_order_relaxed);
	if (root->counts.value_size)
		mg_map_prefetch(&root->counts,
				((const struct mg_test_model_rec *)rec)->key);
	atomic_fetch_add_explicit(&r->prefetches, 1, memory_order_relaxed);
}

static void
sink(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	struct run *r = ctx;

	if (t >= r->ntimes) {
		atomic_fetch_add_explicit(&r->overflow, 1,
					  memory_order_relaxed);
		return;
	}
	r->fp[w * r->ntimes + t].count++;
	r->fp[w * r->ntimes + t].sum += mg_test_model_out_hash(rec);
}

/* Build, run, and compare every timestamp with the reference. */
static void
run_case(struct run *r)
{
	struct mg_dataflow_config dc = {
		.workers = r->workers,
		.oversubscribe = true,
		.bins_log2 = r->bins_log2,
		.epoch_ns = EPOCH_NS,
		.ring_capacity = r->ring,
		.batch_records = r->batch,
	};
	struct mg_source_config sc = {
		.record_size = sizeof(struct mg_test_model_rec),
		.duration_ns = r->m.duration_ns,
		.ctx = &r->m,
	};
	struct mg_stateful_config op_cfg = {
		.ninputs = r->m.binary ? 2 : 1,
		.hash = {mg_test_model_hash, mg_test_model_hash},
		.out_record_size = sizeof(struct mg_test_model_out),
		.state_size = sizeof(struct root),
		.timer_record_size =
			r->m.timers ? sizeof(struct mg_test_model_rec) : 0,
		.fn = op,
		.ctx = r,
		.native = r->native,
		.prefetch = prefetch,
	};
	struct mg_stream *s0, *s1 = NULL, *out;
	struct mg_run_stats st;
	struct mg_dataflow *df;
	struct mg_test_model_fp *ref;
	uint64_t t, n;
	unsigned w;

	r->m.epoch_ns = EPOCH_NS;
	r->m.delay = TIMER_DELAY;
	/* room for the last epoch's timers */
	r->ntimes = r->m.duration_ns / EPOCH_NS + 1 + TIMER_DELAY + 1;
	r->fp = calloc(r->workers * r->ntimes, sizeof(*r->fp));
	/* before the workers start: relaxed */
	atomic_store_explicit(&r->overflow, 0, memory_order_relaxed);
	atomic_store_explicit(&r->prefetches, 0, memory_order_relaxed);
	atomic_store_explicit(&r->prefetch_errors, 0, memory_order_relaxed);
	atomic_store_explicit(&r->order_errors, 0, memory_order_relaxed);
	assert_non_null(r->fp);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.rate = r->m.rate[0];
	sc.gen = mg_test_model_gen0;
	s0 = mg_source(df, &sc);
	assert_non_null(s0);
	if (r->m.binary) {
		sc.rate = r->m.rate[1];
		sc.gen = mg_test_model_gen1;
		s1 = mg_source(df, &sc);
		assert_non_null(s1);
	}
	op_cfg.in[0] = s0;
	op_cfg.in[1] = s1;
	out = mg_stateful(df, &op_cfg);
	assert_non_null(out);
	assert_int_equal(mg_sink(df, out, sink, r), 0);
	assert_non_null(mg_probe(df, out));
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_dataflow_join(df, &st), 0);

	n = mg_test_model_records(r->m.rate[0], r->m.duration_ns);
	if (r->m.binary)
		n += mg_test_model_records(r->m.rate[1], r->m.duration_ns);
	assert_int_equal(st.records, n);
	/* after the join: relaxed */
	assert_int_equal(
		atomic_load_explicit(&r->overflow, memory_order_relaxed), 0);
	/* the engine announces the records of bins that already exist */
	assert_true(atomic_load_explicit(&r->prefetches, memory_order_relaxed) >
		    0);
	assert_int_equal(
		atomic_load_explicit(&r->prefetch_errors, memory_order_relaxed),
		0);
	assert_int_equal(
		atomic_load_explicit(&r->order_errors, memory_order_relaxed),
		0);
	ref = mg_test_model_reference(&r->m, r->ntimes);
	assert_non_null(ref);
	for (t = 0; t < r->ntimes; t++) {
		struct mg_test_model_fp got = {0, 0};

		for (w = 0; w < r->workers; w++) {
			got.count += r->fp[w * r->ntimes + t].count;
			got.sum += r->fp[w * r->ntimes + t].sum;
		}
		if (got.count != ref[t].count || got.sum != ref[t].sum)
			print_error("time %llu: %llu outputs, reference %llu\n",
				    (unsigned long long)t,
				    (unsigned long long)got.count,
				    (unsigned long long)ref[t].count);
		assert_int_equal(got.count, ref[t].count);
		assert_int_equal(got.sum, ref[t].sum);
	}
	free(ref);
	free(r->fp);
	mg_dataflow_destroy(df);
}

static void
test_unary_bins(void **state)
{
	struct run r = {.m = {.keys = 1000,
			      .rate = {200000},
			      .duration_ns = 50 * EPOCH_NS},
			.workers = 2,
			.bins_log2 = 6,
			.ring = 64,
			.batch = 64};

	(void)state;
	run_case(&r);
	r.bins_log2 = 12;
	run_case(&r);
}

static void
test_unary_native(void **state)
{
	struct run r = {.m = {.keys = 1000,
			      .rate = {200000},
			      .duration_ns = 50 * EPOCH_NS},
			.workers = 2,
			.bins_log2 = 4,
			.ring = 64,
			.batch = 64,
			.native = true};

	(void)state;
	run_case(&r);
}

static void
test_tiny_rings_many_workers(void **state)
{
	struct run r = {.m = {.keys = 50,
			      .rate = {100000},
			      .duration_ns = 40 * EPOCH_NS},
			.bins_log2 = 4,
			.ring = 2,
			.batch = 1};

	(void)state;
	for (r.workers = 1; r.workers <= 4; r.workers++)
		run_case(&r);
	r.batch = 3;
	r.workers = 3;
	r.native = true;
	run_case(&r);
}

static void
test_timers(void **state)
{
	struct run r = {.m = {.keys = 300,
			      .rate = {100000},
			      .duration_ns = 40 * EPOCH_NS,
			      .timers = true},
			.workers = 2,
			.bins_log2 = 5,
			.ring = 8,
			.batch = 16};

	(void)state;
	run_case(&r);
	r.native = true;
	run_case(&r);
}

static void
test_binary_join(void **state)
{
	struct run r = {.m = {.keys = 200,
			      .rate = {100000, 37000},
			      .duration_ns = 40 * EPOCH_NS,
			      .binary = true},
			.workers = 2,
			.bins_log2 = 6,
			.ring = 16,
			.batch = 8};

	(void)state;
	run_case(&r);
	r.workers = 3;
	r.native = true;
	run_case(&r);
}

static void
nop_gen(void *ctx, unsigned w, uint64_t seq, void *out)
{
	(void)ctx;
	(void)w;
	(void)seq;
	(void)out;
}

static void
nop_sink(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	(void)ctx;
	(void)w;
	(void)t;
	(void)rec;
}

static void
test_bad_config(void **state)
{
	static const struct mg_dataflow_config bad[] = {
		{.bins_log2 = 3},
		{.bins_log2 = 21},
		{.ring_capacity = 3},
		{.ring_capacity = 1},
		{.epoch_ns = 9999},
		{.workers = 4096}, /* more than the CPUs, no opt-in */
	};
	struct mg_dataflow *df = (struct mg_dataflow *)&df;
	size_t i;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		assert_int_equal(mg_dataflow_create(&df, &bad[i]), -EINVAL);
		assert_ptr_equal(df, (struct mg_dataflow *)&df);
	}
	assert_string_equal(mg_strerror(-EINVAL), "invalid argument");
	assert_string_equal(mg_strerror(-ERANGE), strerror(ERANGE));
	assert_non_null(strstr(mg_strerror(3), "count"));
	assert_non_null(mg_strerror(INT_MIN));
	assert_non_null(mg_strerror(INT_MAX));
}

/* Half of a serializer pair (test_bad_wiring). */
static int
half_ser(void *ctx, struct mg_bin_call *c, struct mg_writer *w)
{
	(void)ctx;
	(void)c;
	(void)w;
	return 0;
}

/* On a fresh dataflow d_ with a source s_, @build latches @err: start
 * refuses it. */
#define EXPECT_LATCH(build, err)                                          \
	do {                                                              \
		struct mg_dataflow *d_;                                   \
		struct mg_stream *s_;                                     \
		assert_int_equal(mg_dataflow_create(&d_, NULL), 0);       \
		s_ = mg_source(d_, &good);                                \
		assert_non_null(s_);                                      \
		assert_int_equal(mg_dataflow_error(d_), 0);               \
		build;                                                    \
		assert_int_equal(mg_dataflow_error(d_), err);             \
		assert_int_equal(mg_dataflow_start(d_, NULL, NULL), err); \
		mg_dataflow_destroy(d_);                                  \
	} while (0)

static void
nop_map(void *ctx, const void *rec, struct mg_emitter *out)
{
	(void)ctx;
	(void)rec;
	(void)out;
}

struct fork_rec {
	uint64_t key, value;
};

static uint64_t
fork_hash(void *ctx, const void *rec)
{
	(void)ctx;
	return mg_hash64(((const struct fork_rec *)rec)->key);
}

/* A stateful operator @fn over struct fork_rec records, keyed by key. */
static struct mg_stateful_config
fork_rec_op(mg_bin_fn fn)
{
	return (struct mg_stateful_config){
		.ninputs = 1,
		.hash = {fork_hash},
		.out_record_size = sizeof(struct fork_rec),
		.state_size = sizeof(uint64_t),
		.fn = fn,
	};
}

/* Counts the records it is given into the _Atomic uint64_t @ctx. */
static void
count_sink(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	(void)w;
	(void)t;
	(void)rec;
	/* Relaxed: read after the join. */
	atomic_fetch_add_explicit((_Atomic uint64_t *)ctx, 1,
				  memory_order_relaxed);
}

#if !MG_TSAN /* ThreadSanitizer supports no threads in a forked child */
static void
fork_op(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	uint64_t *seen = c->state;

	(void)ctx;
	for (uint32_t i = 0; i < c->n_in[0]; i++) {
		++*seen;
		mg_emit(out, (const struct fork_rec *)c->in[0] + i);
	}
}

/* A small run with a migration, which publishes routing versions through
 * liburcu's call_rcu threads.  Return: 0 if each of its records came out
 * once; no assertion (a forked child runs it too). */
static int
run_with_a_move(void)
{
	enum { RECORDS = 100 };
	struct mg_dataflow_config dc = {
		.workers = 2, .oversubscribe = true, .bins_log2 = 4};
	struct mg_stateful_config sc = fork_rec_op(fork_op);
	static _Atomic uint64_t out;
	uint16_t target[16];
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;
	int err;

	atomic_store(&out, 0);
	if (mg_dataflow_create(&df, &dc))
		return -1;
	sc.in[0] = mg_input(df, sizeof(struct fork_rec), &in);
	err = mg_sink(df, mg_stateful(df, &sc), count_sink, (void *)&out);
	if (!err)
		err = mg_producer_open(in, 0, &p);
	if (!err)
		err = mg_dataflow_start(df, NULL, NULL);
	for (uint64_t k = 0; !err && k < RECORDS; k++)
		err = mg_push_wait(p, 1, &(struct fork_rec){k, 0},
				   sizeof(struct fork_rec), 1, MG_FOREVER) == 1
			      ? 0
			      : -1;
	if (!err) {
		mg_dataflow_owners(df, target);
		for (unsigned b = 0; b < 16; b++)
			target[b] = (uint16_t)(1 - target[b]);
		err = mg_migrate(df, MG_ALL_AT_ONCE, target, MG_TIME_ASAP, 0,
				 NULL);
	}
	if (!err)
		err = mg_producer_close(p);
	mg_input_close(in);
	if (!err)
		err = mg_dataflow_join(df, NULL);
	mg_dataflow_destroy(df);
	return err ? err : atomic_load(&out) == RECORDS ? 0 : -1;
}

/* Fork; the child exits with @child()'s result; the parent waits for it
 * (a watchdog shows its threads and fails if it hangs) and checks it
 * exited 0. */
static void
fork_and_check(int (*child)(void))
{
	uint64_t limit = mg_test_env_u64("MG_WATCHDOG_S", 120);
	time_t start;
	pid_t pid;
	int st = 0;

	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(child() ? 1 : 0);
	for (start = time(NULL); waitpid(pid, &st, WNOHANG) != pid;) {
		if ((uint64_t)(time(NULL) - start) > limit) {
			char cmd[128];

			snprintf(cmd, sizeof(cmd),
				 "cd /proc/%d/task && grep -H . */comm */wchan",
				 (int)pid);
			printf("# the child is still running after %llu s; its "
			       "threads (comm, wchan):\n",
			       (unsigned long long)limit);
			fflush(stdout);
			if (system(cmd)) {
			}
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("a forked child's dataflow did not finish");
		}
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* In a child forked while a dataflow ran: refused, not a hang. */
static int
create_refused(void)
{
	struct mg_dataflow *df = NULL;

	return mg_dataflow_create(&df, NULL) == -ENOTRECOVERABLE && !df ? 0 : 1;
}

/*
 * fork() after the library ran a migration, while no dataflow runs:
 * liburcu's call_rcu threads do not follow, and without its fork hooks
 * (migration/router.c registers them) the child's first dataflow hung for
 * good in rcu_barrier() at its destroy.  The child runs one of its own.
 * Forked while a dataflow runs, the child cannot (its grace periods would
 * wait for the parent's workers): its create says so at once.
 */
static void
test_fork(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2, .oversubscribe = true};
	struct mg_dataflow *df;
	struct mg_input *in;

	(void)state;
	assert_int_equal(run_with_a_move(), 0);
	fork_and_check(run_with_a_move);
	/* forked while one runs */
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	assert_non_null(
		mg_probe(df, mg_input(df, sizeof(struct fork_rec), &in)));
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	fork_and_check(create_refused);
	mg_dataflow_destroy(df);
	/* and once it is gone, the parent's next child runs again */
	fork_and_check(run_with_a_move);
}
#endif /* !MG_TSAN */

/* Sets a positive errno, a common slip for -EIO. */
static void
positive_error_op(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	(void)ctx;
	(void)out;
	c->error = EIO;
}

/* An operator's positive errno fails the run with its negative (join
 * returns 0 or a negative errno); NULL handles are refused, and getters
 * given one say 0. */
static void
test_operator_error(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2, .oversubscribe = true};
	struct mg_stateful_config sc = fork_rec_op(positive_error_op);
	uint16_t target[16] = {0};
	struct mg_run_stats st;
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_producer *p;

	(void)state;
	assert_int_equal(mg_probe_wait(NULL, 0, 0), -EINVAL);
	assert_int_equal(
		mg_migrate(NULL, MG_ALL_AT_ONCE, target, MG_TIME_ASAP, 0, NULL),
		-EINVAL);
	/* getters say 0 */
	assert_true(!mg_probe_frontier(NULL) && !mg_output_frontier(NULL) &&
		    !mg_producer_time(NULL) && !mg_dataflow_now(NULL) &&
		    !mg_dataflow_time_ahead(NULL, 0) &&
		    !mg_dataflow_accepts_migrations(NULL) &&
		    !mg_dataflow_active(NULL) && !mg_dataflow_workers(NULL) &&
		    !mg_dataflow_bins(NULL));
	mg_dataflow_owners(NULL, target);
	/* a producer's calls say -EPIPE, as after its close */
	assert_int_equal(mg_push(NULL, 1, target, 2), -EPIPE);
	assert_int_equal(mg_push_burst(NULL, 1, target, 2, 1), -EPIPE);
	assert_int_equal(mg_push_wait(NULL, 1, target, 2, 1, 0), -EPIPE);
	assert_int_equal(mg_producer_flush(NULL), -EPIPE);
	assert_int_equal(mg_producer_advance(NULL, 2), -EPIPE);
	assert_int_equal(mg_producer_close(NULL), -EPIPE);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.in[0] = mg_input(df, sizeof(struct fork_rec), &in);
	assert_non_null(mg_probe(df, mg_stateful(df, &sc)));
	assert_int_equal(mg_producer_open(in, 0, &p), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_push(p, 1, &(struct fork_rec){1, 0},
				 sizeof(struct fork_rec)),
			 0);
	(void)mg_producer_close(p); /* -EPIPE if the failure came first */
	mg_input_close(in);
	assert_int_equal(mg_dataflow_join(df, &st), -EIO);
	assert_string_equal(st.error_what, "the operator's function");
	mg_dataflow_destroy(df);
}

/* Refuses to schedule at what is not a later time, then schedules each
 * record one time later and emits it when it comes back -- or, with a
 * non-NULL @ctx (an operator whose timer_record_size is 0), is refused
 * that too. */
static void
schedule_op(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	static const uint64_t not_times[] = {0, MG_TIME_LIMIT, MG_TIME_NOW,
					     MG_TIME_ASAP, MG_TIME_MAX};
	const struct fork_rec *in = c->in[0], *due = c->timers;

	for (uint32_t i = 0; i < c->n_in[0]; i++) {
		for (unsigned k = 0; k < MG_ARRAY_SIZE(not_times); k++)
			if (mg_schedule(c,
					not_times[k] ? not_times[k] : c->time,
					&in[i]) != -EINVAL)
				c->error = -EPROTO;
		if (mg_schedule(c, c->time + 1, &in[i]) != (ctx ? -EINVAL : 0))
			c->error = -EPROTO;
	}
	for (uint32_t i = 0; i < c->n_timers; i++)
		mg_emit(out, &due[i]);
}

/* mg_schedule() refuses the time of the call and every value that is not
 * a time (a timer at MG_TIME_MAX aborted the run, found by a probe; the
 * others fired at times no record can have), and schedules what is -- in
 * an operator that keeps timer records: with timer_record_size 0 it
 * refuses every call (it had taken them, and handed back timers whose
 * records were whatever lay beyond the call's timer array). */
static void
test_schedule_not_a_time(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2, .oversubscribe = true};
	static _Atomic uint64_t out;

	(void)state;
	for (unsigned no_timers = 0; no_timers < 2; no_timers++) {
		struct mg_stateful_config sc = fork_rec_op(schedule_op);
		struct mg_run_stats st;
		struct mg_dataflow *df;
		struct mg_producer *p;
		struct mg_input *in;

		atomic_store(&out, 0);
		sc.timer_record_size = no_timers ? 0 : sizeof(struct fork_rec);
		sc.ctx = no_timers ? &out : NULL;
		assert_int_equal(mg_dataflow_create(&df, &dc), 0);
		sc.in[0] = mg_input(df, sizeof(struct fork_rec), &in);
		assert_int_equal(mg_sink(df, mg_stateful(df, &sc), count_sink,
					 (void *)&out),
				 0);
		assert_int_equal(mg_producer_open(in, 0, &p), 0);
		assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
		for (uint64_t k = 0; k < 100; k++)
			assert_int_equal(mg_push_wait(p, k % 7,
						      &(struct fork_rec){k, 0},
						      sizeof(struct fork_rec),
						      1, MG_FOREVER),
					 1);
		assert_int_equal(mg_producer_close(p), 0);
		mg_input_close(in);
		assert_int_equal(mg_dataflow_join(df, &st), 0);
		assert_int_equal(atomic_load(&out), no_timers ? 0 : 100);
		mg_dataflow_destroy(df);
	}
}

static void
test_bad_wiring(void **state)
{
	struct mg_source_config good = {.record_size = 16,
					.rate = 1000,
					.duration_ns = 1000000,
					.gen = nop_gen};
	struct mg_source_config sc = good;
	struct mg_stateful_config op_cfg = {
		.ninputs = 1,
		.hash = {mg_test_model_hash},
		.out_record_size = 16,
		.fn = op,
	};
	struct mg_dataflow *a, *b;
	struct mg_stream *sa, *sb;

	(void)state;
	assert_int_equal(mg_dataflow_create(&a, NULL), 0);
	assert_int_equal(mg_dataflow_create(&b, NULL), 0);
	/* start without a source */
	assert_int_equal(mg_dataflow_start(a, NULL, NULL), -EINVAL);
	mg_dataflow_destroy(a);
	sb = mg_source(b, &good);
	assert_non_null(sb);

	/* each bad builder: NULL, the error latched, start refuses it */
	sc.rate = 0;
	EXPECT_LATCH(assert_null(mg_source(d_, &sc)), -EINVAL);
	sc.rate = 1.0 / 0.0;
	EXPECT_LATCH(assert_null(mg_source(d_, &sc)), -EINVAL);
	sc.rate = 1000;
	sc.record_size = MG_RECORD_MAX + 1;
	EXPECT_LATCH(assert_null(mg_source(d_, &sc)), -EINVAL);
	/* a stream of another dataflow */
	EXPECT_LATCH(assert_int_equal(mg_sink(d_, sb, nop_sink, NULL), -EINVAL),
		     -EINVAL);
	op_cfg.in[0] = sb;
	EXPECT_LATCH(assert_null(mg_stateful(d_, &op_cfg)), -EINVAL);
	op_cfg.ninputs = 3;
	EXPECT_LATCH((op_cfg.in[0] = s_, assert_null(mg_stateful(d_, &op_cfg))),
		     -EINVAL);
	op_cfg.ninputs = 1;
	op_cfg.fn = NULL;
	EXPECT_LATCH((op_cfg.in[0] = s_, assert_null(mg_stateful(d_, &op_cfg))),
		     -EINVAL);
	op_cfg.fn = op;
	op_cfg.state_size = 1u << 20;
	EXPECT_LATCH((op_cfg.in[0] = s_, assert_null(mg_stateful(d_, &op_cfg))),
		     -EINVAL);
	op_cfg.state_size = 0;
	op_cfg.serialize = half_ser; /* without deserialize, in any mode */
	EXPECT_LATCH((op_cfg.in[0] = s_, assert_null(mg_stateful(d_, &op_cfg))),
		     -EINVAL);
	op_cfg.serialize = NULL;
	EXPECT_LATCH(assert_null(mg_probe(d_, sb)), -EINVAL);
	/* a chain: the first error stays, a NULL stream adds none */
	EXPECT_LATCH(
		{
			struct mg_stream *x =
				mg_flat_map(d_, s_, 0, NULL, NULL);

			assert_null(x);
			assert_null(
				mg_exchange(d_, x, mg_test_model_hash, NULL));
			op_cfg.in[0] = x;
			assert_null(mg_stateful(d_, &op_cfg));
			assert_null(mg_probe(d_, x));
			assert_null(mg_output(d_, x));
		},
		-EINVAL);
	/* a good graph needs no probe; two probes are fine */
	assert_int_equal(mg_dataflow_create(&a, NULL), 0);
	sa = mg_source(a, &good);
	assert_non_null(mg_probe(a, sa));
	assert_non_null(mg_probe(a, sa));
	assert_int_equal(mg_dataflow_error(a), 0);
	assert_int_equal(mg_dataflow_join(a, NULL), -EINVAL); /* not started */
	mg_dataflow_destroy(a);
	mg_dataflow_destroy(b);
}

/*
 * Build the unary model of @r (bins, no reference) with pools reserving
 * @pool_reserve per class (0: the default) and run it.  No cmocka asserts,
 * so a forked child may call it.
 * Return: 0 and *@st; the first error of a builder or of the run.
 */
static int
run_plain(struct run *r, size_t pool_reserve, struct mg_run_stats *st)
{
	struct mg_dataflow_config dc = {
		.workers = r->workers,
		.oversubscribe = true,
		.bins_log2 = r->bins_log2,
		.epoch_ns = EPOCH_NS,
		.ring_capacity = r->ring,
		.batch_records = r->batch,
		.pool_reserve = pool_reserve,
	};
	struct mg_source_config sc = {
		.record_size = sizeof(struct mg_test_model_rec),
		.rate = r->m.rate[0],
		.duration_ns = r->m.duration_ns,
		.gen = mg_test_model_gen0,
		.ctx = &r->m,
	};
	struct mg_stateful_config op_cfg = {
		.ninputs = 1,
		.hash = {mg_test_model_hash},
		.out_record_size = sizeof(struct mg_test_model_out),
		.state_size = sizeof(struct root),
		.fn = op,
		.ctx = r,
	};
	struct mg_stream *s, *out;
	struct mg_dataflow *df;
	int err;

	r->m.epoch_ns = EPOCH_NS;
	err = mg_dataflow_create(&df, &dc);
	if (err)
		return err;
	s = mg_source(df, &sc);
	op_cfg.in[0] = s;
	out = mg_stateful(df, &op_cfg);
	mg_sink(df, out, nop_sink, NULL);
	mg_probe(df, out);
	err = mg_dataflow_start(df, NULL, NULL); /* or the builders' error */
	if (!err)
		err = mg_dataflow_join(df, st);
	mg_dataflow_destroy(df);
	return err;
}

#define LIMITED_ROOM (2ul << 30)

static struct run limited = {
	.m = {.keys = 1000, .rate = {200000}, .duration_ns = 50 * EPOCH_NS},
	.workers = 2,
	.bins_log2 = 12,
	.ring = 64,
	.batch = 64};

/* In a child with LIMITED_ROOM of address space left: 0, or what failed. */
static int
limited_run(void *arg)
{
	struct mg_run_stats st;
	int err = run_plain(arg, 0, &st);

	if (err)
		return -err < 200 ? -err : 200; /* errno values are small */
	if (st.records !=
	    mg_test_model_records(limited.m.rate[0], limited.m.duration_ns))
		return 201;
	return 0;
}

/*
 * Under `ulimit -v` a small run works: the pools, the operators' buffers
 * and the workers fit 2 GiB of address space.  It runs first: a forked
 * child must not inherit liburcu's call_rcu threads (none exist yet).
 */
static void
test_address_space(void **state)
{
	int rc;

	(void)state;
	rc = mg_test_run_limited(LIMITED_ROOM, limited_run, &limited);
	if (rc)
		print_error("limited run: %d (an errno, or 201: records)\n",
			    rc);
	assert_int_equal(rc, 0);
}

/* Pools too small for the state: the run ends with -ENOMEM. */
static void
test_pool_exhausted(void **state)
{
	struct run r = limited;
	struct mg_run_stats st;

	(void)state;
	/* 400000 records on 2^20 keys in 4096 bins: ~80 keys, some 3 KiB of
	 * state per bin, 12 MiB in all, and no class may hold more than 2 MiB */
	r.m.keys = 1u << 20;
	r.m.rate[0] = 2e6;
	r.m.duration_ns = 2000 * EPOCH_NS;
	assert_int_equal(run_plain(&r, 2ul << 20, &st), -ENOMEM);
}

/* The graph's node count, as mg_dataflow_dump() tells it. */
static unsigned
node_count(const struct mg_dataflow *df)
{
	char *buf = NULL, *at;
	size_t len = 0;
	unsigned n = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	mg_dataflow_dump(df, f);
	fclose(f);
	at = strstr(buf, " nodes,");
	assert_non_null(at);
	while (at > buf && at[-1] >= '0' && at[-1] <= '9')
		at--;
	n = (unsigned)strtoul(at, NULL, 10);
	free(buf);
	return n;
}

/*
 * A builder that fails half way -- out of memory for its second input's
 * channels, after the first input's are made -- leaves nothing behind: the
 * nodes it added are gone (the dataflow destroys cleanly, ASan and
 * valgrind see no leak or double free), the error is latched, and the
 * streams it would have read can still be built on.
 */
static void
test_builder_rolls_back(void **state)
{
	/* 2 MiB per pool class: one 2-worker mesh fits (4 channels of 129
	 * batches of 64 + 200 x 16 bytes: 1.7 MB), the second does not */
	struct mg_dataflow_config dc = {.workers = 2,
					.oversubscribe = true,
					.batch_records = 200,
					.ring_capacity = 128,
					.pool_reserve = 2u << 20};
	struct mg_source_config sc = {.record_size = 16,
				      .rate = 1000,
				      .duration_ns = 1000000,
				      .gen = nop_gen};
	struct mg_stateful_config op_cfg = {
		.ninputs = 2,
		.hash = {mg_test_model_hash, mg_test_model_hash},
		.out_record_size = 16,
		.fn = op,
	};
	struct mg_dataflow *df;
	struct mg_stream *a, *b;

	(void)state;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	a = mg_source(df, &sc);
	b = mg_source(df, &sc);
	op_cfg.in[0] = a;
	op_cfg.in[1] = b;
	assert_int_equal(node_count(df), 2);
	assert_null(mg_stateful(df, &op_cfg));
	assert_int_equal(mg_dataflow_error(df), -ENOMEM);
	assert_int_equal(node_count(df), 2); /* the stateful node, two sends */
	/* the sources are as they were: a stateless build on them works */
	assert_non_null(mg_flat_map(df, a, 16, nop_map, NULL));
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), -ENOMEM);
	mg_dataflow_destroy(df);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_space),
		cmocka_unit_test(test_pool_exhausted),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_bad_wiring),
#if !MG_TSAN
		cmocka_unit_test(test_fork),
#endif
		cmocka_unit_test(test_operator_error),
		cmocka_unit_test(test_schedule_not_a_time),
		cmocka_unit_test(test_builder_rolls_back),
		cmocka_unit_test(test_unary_bins),
		cmocka_unit_test(test_unary_native),
		cmocka_unit_test(test_tiny_rings_many_workers),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_binary_join),
	};

	return MG_TEST_RUN(tests);
}
