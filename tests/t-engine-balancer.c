/*
 * t-engine-balancer.c - the balancer (megaphone.h, "balancing") on running
 * dataflows: it moves bins under skew without changing a single output, it
 * stops moving once balanced (no oscillation on a steady load), it leaves
 * a hot bin alone on its worker, it stops with the dataflow, and it
 * refuses bad configurations.
 *
 * The computation is tests/mg_test_count.h's: the main thread pushes
 * {key, seq} records at logical times it chooses, a stateful operator
 * counts per key and emits {key, count so far} per record, and a sink
 * fingerprints each time's outputs per worker; the reference is computed
 * by the main thread as it pushes.  The keys all live in worker 0's bins
 * (bin b starts on worker b mod W): the adversarial start.
 *
 * Nothing waits on the wall clock to be correct: the main thread pushes one
 * time after another until the condition it waits for holds (a migration
 * of the balancer done, then a number of the balancer's decisions without
 * a move), with a generous watchdog (MG_WATCHDOG_S, default 120 s) that
 * prints the balancer's events and the engine's state before it fails.
 * Only the main thread asserts; the workers record into their own slots.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_pvt.h"
#include "engine/megaphone.h"
#include "numa/mg_base.h"
#include "tests/mg_test.h"
#include "tests/mg_test_count.h"
#include "tests/mg_test_lag.h"

#define MAX_W	     2
#define QUIET_ROUNDS 20 /* decisions without a move: no oscillation */
#define INTERVAL_NS  20000000ull
/* A worker waited for its CPU this fraction of the time or more
 * (mg_worker_stats.waiting): the machine's noise drives the decisions. */
#define WAIT_NOISE 0.1
#define ALARM_S	   600 /* the last resort: the watchdog gives up first */

struct bt {
	struct count_run c;
	unsigned nkeys0;    /* keys, all in worker 0's bins */
	unsigned hot_tenth; /* tenths of the records on keys[0] (0: none) */
	unsigned nlight;    /* and keys in worker 1's bins ... */
	unsigned light;	    /* ... taking this many records of a time */
	bool on_clock;	    /* push a time per ms of the clock, catching up */
	double clock_s;	    /* ... from this clock time (s), time 0 on */
	unsigned *use;	    /* the key indices pushed now ... */
	unsigned nuse;	    /* ... (all of them at first) */
};

/* ---- set-up ------------------------------------------------------------------ */

/* The first nkeys0 keys whose bins start on worker 0, then the first
 * nlight on worker 1. */
static void
pick_keys(struct bt *x)
{
	uint64_t k = 0;
	unsigned n = 0, all = x->nkeys0 + x->nlight;

	x->c.nkeys = all;
	x->c.keys = malloc(sizeof(*x->c.keys) * all);
	x->use = malloc(sizeof(*x->use) * x->nkeys0);
	assert_non_null(x->c.keys);
	assert_non_null(x->use);
	for (x->nuse = 0; x->nuse < x->nkeys0; x->nuse++)
		x->use[x->nuse] = x->nuse;
	while (n < x->nkeys0) {
		if (count_bin_of(&x->c, k) % x->c.W == 0)
			x->c.keys[n++] = k;
		k++;
	}
	for (k = 0; n < all; k++)
		if (count_bin_of(&x->c, k) % x->c.W == 1)
			x->c.keys[n++] = k;
}

/* Build: input (its producer on worker 0) -> counting operator -> sink. */
static void
build(struct bt *x, bool no_stats)
{
	assert_true(x->c.W <= MAX_W);
	x->c.no_stats = no_stats;
	pick_keys(x);
	count_build(&x->c);
}

static void
teardown(struct bt *x)
{
	count_teardown(&x->c);
	free(x->c.keys);
	free(x->use);
}

/* ---- driving ------------------------------------------------------------------ */

/* Push the next time's records: spread over the keys in use exactly evenly
 * (round robin), but for hot_tenth tenths of them on keys[0] and the first
 * `light` of a time on the light keys -- a steady load.  Then a
 * millisecond's sleep; on_clock, only once it is not behind a time per
 * millisecond since clock_s. */
static void
push_time(struct bt *x)
{
	unsigned idx[COUNT_PER_TIME];
	uint64_t seq = x->c.seq;

	for (unsigned i = 0; i < COUNT_PER_TIME; i++, seq++)
		idx[i] = i < x->light ? x->nkeys0 + (unsigned)(seq % x->nlight)
			 : x->hot_tenth && seq % 10 < x->hot_tenth
				 ? 0
				 : x->use[seq % x->nuse];
	count_push(&x->c, idx);
	if (!x->on_clock || !count_behind_clock(&x->c, x->clock_s, 0))
		nanosleep(&(struct timespec){0, 1000000}, NULL);
}

static void
print_events(const struct bt *x)
{
	struct mg_balance_event e;
	size_t i;

	for (i = 0; !mg_balancer_event(x->c.bal, i, &e); i++)
		printf("#   event %zu at %.3f s: %s, %u bins: %s\n", i, e.t_s,
		       e.kind == MG_BALANCE_MOVE ? "move" : "hold", e.bins,
		       e.reason);
}

/* The watchdog gave up: show where things stand, then fail. */
static _Noreturn void
stuck(const struct bt *x, const char *waiting_for)
{
	struct mg_balancer_stats st;

	mg_balancer_stats(x->c.bal, &st);
	printf("# [%s] still waiting for %s after %.0f s (%llu times pushed, "
	       "%llu decisions, %llu migrations, running %d); events and the "
	       "engine's state follow\n",
	       x->c.name, waiting_for, x->c.watchdog_s,
	       (unsigned long long)x->c.times, (unsigned long long)st.rounds,
	       (unsigned long long)st.migrations, st.running);
	print_events(x);
	mg_dataflow_dump(x->c.df, stderr);
	fail_msg("[%s] the balancer did not get to %s", x->c.name, waiting_for);
	abort(); /* fail_msg does not return; this tells the compiler */
}

/* Events of kind MOVE so far. */
static unsigned
moves(const struct bt *x)
{
	struct mg_balance_event e;
	unsigned n = 0;
	size_t i;

	for (i = 0; !mg_balancer_event(x->c.bal, i, &e); i++)
		n += e.kind == MG_BALANCE_MOVE;
	return n;
}

/* Push until the balancer has logged @n events of @kind, the last one's
 * migration (for MOVE) done. */
static void
push_until(struct bt *x, enum mg_balance_kind kind, unsigned n)
{
	double start = count_now_s();
	struct mg_balance_event e;
	struct mg_migration_progress p;
	unsigned seen;
	size_t i;

	for (;;) {
		push_time(x);
		for (seen = 0, i = 0; !mg_balancer_event(x->c.bal, i, &e);
		     i++) {
			if (e.kind != kind || ++seen < n)
				continue;
			mg_migration_progress(e.migration, &p);
			if (kind == MG_BALANCE_HOLD || p.done)
				return;
		}
		if (count_now_s() - start > x->c.watchdog_s)
			stuck(x, kind == MG_BALANCE_MOVE
					 ? "a finished migration"
					 : "a hold");
	}
}

/* Push while the balancer takes @rounds more decisions; return the MOVE
 * events it logged meanwhile. */
static unsigned
push_rounds(struct bt *x, uint64_t rounds)
{
	struct mg_balancer_stats st;
	unsigned before = moves(x);
	double start = count_now_s();
	uint64_t until;

	mg_balancer_stats(x->c.bal, &st);
	until = st.rounds + rounds;
	while (st.rounds < until) {
		push_time(x);
		mg_balancer_stats(x->c.bal, &st);
		if (count_now_s() - start > x->c.watchdog_s)
			stuck(x, "its decisions");
	}
	return moves(x) - before;
}

/* Build @x with a balancer that moves no bin twice, start it with a load
 * of @spin_ns per record (@spin0_ns more on worker 0), push on the clock
 * until its first migration is done, print its events and lift the load;
 * with @first, check that the first event is a move off worker 0 and give
 * it there. */
static void
load_until_move(struct bt *x, uint64_t spin_ns, uint64_t spin0_ns,
		struct mg_balance_event *first)
{
	struct mg_balancer_config bc = {
		.interval_ns = INTERVAL_NS,
		.cooldown_ns = 3600ull * 1000000000ull,
	};

	build(x, false);
	atomic_store_explicit(&x->c.spin_ns, spin_ns, memory_order_relaxed);
	atomic_store_explicit(&x->c.spin0_ns, spin0_ns, memory_order_relaxed);
	assert_int_equal(mg_balancer_start(x->c.df, &bc, &x->c.bal), 0);
	assert_int_equal(mg_dataflow_start(x->c.df, NULL, NULL), 0);
	x->clock_s = count_now_s();
	push_until(x, MG_BALANCE_MOVE, 1);
	print_events(x);
	atomic_store_explicit(&x->c.spin_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&x->c.spin0_ns, 0, memory_order_relaxed);
	if (!first)
		return;
	assert_int_equal(mg_balancer_event(x->c.bal, 0, first), 0);
	assert_int_equal(first->kind, MG_BALANCE_MOVE);
	assert_non_null(strstr(first->reason, "worker 0 at"));
}

/* ---- cases ---------------------------------------------------------------------- */

/*
 * All load on worker 0's bins: the balancer moves some to worker 1, the
 * first event says why, the outputs equal the reference, and after that
 * migration QUIET_ROUNDS decisions move nothing more.
 */
static void
balance_skew(enum mg_mode mode, const char *name)
{
	struct bt x = {
		.c = {.name = name, .W = 2, .bins_log2 = 8, .mode = mode},
		.nkeys0 = 512};
	struct mg_balancer_config bc = {
		.interval_ns = INTERVAL_NS,
		.threshold = 0.2,
		.cooldown_ns = 3600ull * 1000000000ull, /* no bin twice */
	};
	struct mg_balance_event e;
	struct mg_migration_progress p;
	unsigned quiet_moves;

	build(&x, false);
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &x.c.bal), 0);
	assert_int_equal(mg_dataflow_start(x.c.df, NULL, NULL), 0);
	push_until(&x, MG_BALANCE_MOVE, 1);
	assert_int_equal(mg_balancer_event(x.c.bal, 0, &e), 0);
	print_events(&x);
	assert_int_equal(e.kind, MG_BALANCE_MOVE);
	assert_int_equal(e.workers, 2);
	assert_true(e.bins > 0);
	assert_true(e.load_before[0] > 1.2 * e.mean);
	assert_true(e.load_before[1] < e.load_before[0]);
	assert_true(e.max_after < e.max_before);
	assert_true(e.load_after[0] <= 1.1 * e.mean * (1 + 1e-9));
	assert_true(e.load_after[0] + e.load_after[1] >
		    (e.load_before[0] + e.load_before[1]) * (1 - 1e-9));
	assert_true(e.t_s > 0);
	assert_non_null(strstr(e.reason, "worker 0"));
	if (mode == MG_COPY)
		assert_true(e.bytes > 0);
	mg_migration_progress(e.migration, &p);
	assert_int_equal(p.bins_moved, e.bins);

	quiet_moves = push_rounds(&x, QUIET_ROUNDS);
	if (quiet_moves) /* a first plan cut short by a busy bin may need one
			    more; after that, quiet */
		quiet_moves = push_rounds(&x, QUIET_ROUNDS);
	print_events(&x);
	assert_int_equal(quiet_moves, 0);
	count_finish(&x.c);
	teardown(&x);
}

static void
test_skew_handoff(void **state)
{
	(void)state;
	balance_skew(MG_HANDOFF, "skew handoff");
}

static void
test_skew_copy(void **state)
{
	(void)state;
	balance_skew(MG_COPY, "skew copy");
}

/*
 * The counting operator's deferral figures on each worker (stateful.c):
 * records deferred for bins on their way, copies made of them, rescans.
 */
static void
deferrals(const struct bt *x, unsigned w, uint64_t *deferred, uint64_t *copies,
	  uint64_t *rescans)
{
	const struct mg_dataflow *df = x->c.df;

	for (unsigned i = 0; i < df->nnodes; i++)
		if (df->nodes[i]->kind == STATEFUL) {
			const struct stateful_inst *si =
				&df->nodes[i]->inst.st[w];

			*deferred = si->deferred;
			*copies = si->defer_copies;
			*rescans = si->rescans;
			return;
		}
	fail_msg("no stateful operator");
}

/*
 * Worker 0 overloaded: its bins take 28 records a time, each 50 us of
 * work, a time per millisecond of the clock (1.4x what it can do on any
 * machine: the work is wall time), worker 1's bins 4.  The balancer moves
 * bins off worker 0 although its rates (records processed) understate its
 * load, and the outputs equal the reference.  Worker 1 holds the moved
 * bins' records until worker 0, behind, has released them: it copies each
 * once, and again only when a bin arrives -- not at each of its passes
 * meanwhile (it did: at 9 M records/s a receiver spent its time re-copying
 * a backlog that grew as long as the old owner lagged).
 */
static void
test_overloaded(void **state)
{
	struct bt x = {.c = {.name = "overloaded",
			     .W = 2,
			     .bins_log2 = 8,
			     .producer_worker = 1},
		       .nkeys0 = 256,
		       .nlight = 64,
		       .light = 4,
		       .on_clock = true};

	(void)state;
	load_until_move(&x, 50000, 0, NULL);
	count_finish(&x.c);
	for (unsigned w = 0; w < 2; w++) {
		uint64_t deferred = 0, copies = 0, rescans = 0;

		deferrals(&x, w, &deferred, &copies, &rescans);
		printf("# [%s] worker %u: %llu records deferred, %llu copies, "
		       "%llu rescans\n",
		       x.c.name, w, (unsigned long long)deferred,
		       (unsigned long long)copies, (unsigned long long)rescans);
		assert_true(copies <= deferred * (1 + rescans));
	}
	teardown(&x);
}

/*
 * The scaling rule (mg__scale_wanted) on readings seen in runs: two workers
 * at a tenth of their capacity (key-count, 1.2 M records/s) read busy 0.55-
 * 0.65 each -- nearly every round of a polling worker finds a record, and
 * counts whole -- while their operator and source steps take 0.4, and one
 * worker alone reads busy 0.35.  Judged by busy time (U * k / (k - 1) =
 * 1.2) they never scaled in; by the steps' time they do.  A load at which
 * one worker asked for more is not taken back to one above 0.8 of it.
 */
static void
test_scale_wanted(void **state)
{
	struct mg_balancer_config c = {.scale_low = 0.5, .scale_high = 0.95};
	struct mg_worker_stats ws[3] = {
		{.busy = 0.63,
		 .work = 0.31,
		 .feed = 0.10,
		 .in_rate = 6e5,
		 .rate = 6e5,
		 .records = 1000000000},
		{.busy = 0.57,
		 .work = 0.29,
		 .feed = 0.11,
		 .in_rate = 6e5,
		 .rate = 6e5,
		 .records = 1000000000},
		{.busy = 0}, /* parked */
	};
	double full[4] = {0};
	struct mg__scale_reading r;

	(void)state;
	assert_int_equal(mg__scale_wanted(ws, 2, 3, &c, 0, full, &r), -1);
	assert_true(fabs(r.util - 0.60) < 1e-9 && fabs(r.ops - 0.405) < 1e-9);
	assert_true(r.in_rate == 1.2e6 && !r.late);
	/* a parked worker's steps (its source, run by the others) count:
	 * (0.81 + 0.2) / 2 */
	ws[2].feed = 0.2;
	assert_int_equal(mg__scale_wanted(ws, 2, 3, &c, 0, full, &r), 0);
	ws[2].feed = 0;
	/* not at 0.8 of an input rate one worker asked for more at */
	full[1] = 1.5e6;
	assert_int_equal(mg__scale_wanted(ws, 2, 3, &c, 0, full, &r), 0);
	full[1] = 1.51e6;
	assert_int_equal(mg__scale_wanted(ws, 2, 3, &c, 0, full, &r), -1);
	/* not while late: the sources 10 ms behind the clock ask for one
	 * more; a worker behind its input too */
	assert_int_equal(mg__scale_wanted(ws, 2, 3, &c, 10000001, full, &r), 1);
	assert_true(r.late);
	assert_int_equal(mg__scale_wanted(ws, 2, 3, &c, 9000000, full, &r), -1);
	ws[0].backlog = 1000000;
	assert_int_equal(mg__scale_wanted(ws, 2, 3, &c, 0, full, &r), 1);
	ws[0].backlog = 0;
	/* busy above scale_high: one more; all W active: none more, and not
	 * fewer either, whatever the steps read */
	ws[0].busy = ws[1].busy = ws[2].busy = 0.96;
	assert_int_equal(mg__scale_wanted(ws, 2, 3, &c, 0, full, &r), 1);
	assert_int_equal(mg__scale_wanted(ws, 3, 3, &c, 0, full, &r), 0);
	/* one active worker: never fewer */
	ws[0] = (struct mg_worker_stats){.busy = 0.1, .work = 0.05};
	ws[1] = ws[2] = (struct mg_worker_stats){.busy = 0};
	assert_int_equal(mg__scale_wanted(ws, 1, 3, &c, 0, full, &r), 0);
}

/*
 * The guard against moving onto a worker behind its input
 * (mg__worker_behind): a backlog counts only on a busy worker.  The light
 * worker beside an overloaded one holds as large a backlog -- its records
 * wait for the input frontier, which the overloaded worker's marks hold
 * back -- but idle: judged by its backlog alone it was "behind", and the
 * balancer held every plan that would relieve the overloaded one (seen at
 * 8 M records/s in bench/experiments/balance.sh).
 */
static void
test_behind(void **state)
{
	/* rate 1000 records/s: behind above 1024 records (BEHIND_MIN); long
	 * runs (records: 10^9 processed) */
	struct mg_worker_stats ws[3] = {
		{.busy = 1.00,
		 .backlog = 900000,
		 .rate = 1000,
		 .records = 1000000000}, /* overloaded */
		{.busy = 0.30,
		 .backlog = 400000,
		 .rate = 1000,
		 .records = 1000000000}, /* waiting */
		{.busy = 0.90,
		 .backlog = 2000,
		 .rate = 1000,
		 .records = 1000000000}, /* starved */
	};

	(void)state;
	assert_true(mg__worker_behind(ws, 3, 0));
	assert_false(mg__worker_behind(ws, 3, 1)); /* waits on worker 0 */
	assert_true(mg__worker_behind(ws, 3, 2));
	/* a backlog of a steady stream: a few epochs of the rate */
	ws[2].rate = 1e6;
	assert_false(mg__worker_behind(ws, 3, 2));
	/* early in a run, its rate holds fewer records than BEHIND_S of it:
	 * behind with a quarter of all it processed waiting */
	ws[2].records = 7999;
	assert_true(mg__worker_behind(ws, 3, 2));
	ws[2].records = 8001;
	assert_false(mg__worker_behind(ws, 3, 2));
	ws[2].rate = 10;
	ws[2].backlog = 1000; /* fewer than BEHIND_MIN */
	assert_false(mg__worker_behind(ws, 3, 2));
	/* alone, or all alike: busy enough */
	assert_true(mg__worker_behind(ws + 1, 1, 0));
	ws[0].busy = ws[1].busy = 0.6;
	assert_true(mg__worker_behind(ws, 2, 1));
	/* only the active workers' busy counts (worker 2 parked) */
	ws[2].busy = 1.0;
	assert_true(mg__worker_behind(ws, 2, 1));
	/* no room: behind, or at capacity (steps 0.95) -- not busy alone: a
	 * polling worker that keeps up reads busy 1.0 */
	assert_true(mg__worker_full(ws, 2, 0)); /* behind */
	ws[1] = (struct mg_worker_stats){
		.busy = 0.96, .work = 0.6, .feed = 0.36};
	assert_true(mg__worker_full(ws, 3, 1));
	ws[1].feed = 0.3;
	assert_false(mg__worker_full(ws, 3, 1));
	ws[1].busy = 1.0;
	assert_false(mg__worker_full(ws, 3, 1));
	/* near capacity: the active worker with the most steps, from 0.8;
	 * steps 0.79, 0.7 and (inactive) 1.0 */
	ws[0] = (struct mg_worker_stats){
		.busy = 1.0, .work = 0.5, .feed = 0.29};
	ws[1] = (struct mg_worker_stats){.busy = 1.0, .work = 0.4, .feed = 0.3};
	ws[2] = (struct mg_worker_stats){.busy = 1.0, .work = 0.9, .feed = 0.1};
	assert_int_equal(mg__worker_near_full(ws, 2), -1);
	assert_int_equal(mg__worker_near_full(ws, 3), 2);
	/* 0.81, then 0.9 on worker 1: the most */
	ws[0].feed = 0.31;
	assert_int_equal(mg__worker_near_full(ws, 2), 0);
	ws[1].work = 0.6;
	assert_int_equal(mg__worker_near_full(ws, 2), 1);
}

/* A worker's bins' rates understate its load by its in/out ratio while
 * it is behind, within [1, GAIN_MAX = 4]; not at all when it keeps up. */
static void
test_gain(void **state)
{
	struct mg_worker_stats ws[2] = {
		{.busy = 1.0,
		 .backlog = 1000000,
		 .rate = 1e6,
		 .in_rate = 1.5e6,
		 .records = 1000000000},
		{.busy = 0.5,
		 .backlog = 1000000,
		 .rate = 1e6,
		 .in_rate = 1.5e6,
		 .records = 1000000000},
	};

	(void)state;
	assert_float_equal(mg__worker_gain(ws, 2, 0), 1.5, 1e-12);
	/* not behind: idle, waiting on worker 0 */
	assert_float_equal(mg__worker_gain(ws, 2, 1), 1.0, 1e-12);
	ws[0].in_rate = 0.9e6; /* draining its backlog */
	assert_float_equal(mg__worker_gain(ws, 2, 0), 1.0, 1e-12);
	ws[0].in_rate = 1e9; /* stalled more than overloaded */
	assert_float_equal(mg__worker_gain(ws, 2, 0), 4.0, 1e-12);
	ws[0].backlog = 100000; /* 0.1 s of its rate: keeping up */
	assert_float_equal(mg__worker_gain(ws, 2, 0), 1.0, 1e-12);
	/* ... but behind 0.3 s into a run, 300000 records processed: it
	 * waits on a third of them, received at 1.5x its rate */
	ws[0].records = 300000;
	ws[0].in_rate = 1.5e6;
	assert_float_equal(mg__worker_gain(ws, 2, 0), 1.5, 1e-12);
}

/* The first decision waits for the third sample -- or, when a worker is
 * at capacity (busy 0.95), only for 64 records a bin on the mean: at high
 * rates the first 100 ms sample holds them, and on a skewed start every
 * sample waited is a backlog to drain. */
static void
test_warm(void **state)
{
	struct mg_bin_stats bins[4] = {{.records = 250}, {.records = 0}};
	struct mg_worker_stats ws[2] = {{.busy = 0.5}, {.busy = 0.95}};

	(void)state;
	assert_false(mg__balancer_warm(bins, 4, ws, 2, 1));
	bins[3].records = 6; /* 256 = 64 x 4 */
	assert_true(mg__balancer_warm(bins, 4, ws, 2, 1));
	assert_true(mg__balancer_warm(bins, 4, ws, 2, 2));
	assert_false(mg__balancer_warm(bins, 4, ws, 1, 1)); /* inactive */
	ws[1].busy = 0.94;
	assert_false(mg__balancer_warm(bins, 4, ws, 2, 2));
	memset(bins, 0, sizeof(bins));
	assert_true(mg__balancer_warm(bins, 4, ws, 2, 3));
}

/* What a record costs on a worker against the mean: time in stateful
 * steps per processed record over the active workers', trusted from a
 * busiest worker at 0.5 busy (not at all) to 0.9 (fully), within [1/4, 4],
 * and 1 everywhere while every worker's is within 1.25x of the mean. */
static void
test_cost(void **state)
{
	struct mg_worker_stats ws[3] = {
		{.busy = 1.0, .work = 0.8, .rate = 14000},
		{.busy = 0.3, .work = 0.16, .rate = 16000},
		{.busy = 0.0, .rate = 0}, /* parked */
	};
	double mean = (0.8 + 0.16) / 30000;

	(void)state;
	assert_float_equal(mg__worker_cost(ws, 2, 0), 0.8 / 14000 / mean,
			   1e-12);
	assert_float_equal(mg__worker_cost(ws, 2, 1), 0.16 / 16000 / mean,
			   1e-12);
	assert_float_equal(mg__worker_cost(ws, 3, 2), 1.0, 1e-12);
	ws[1].work = 0.01; /* clamped */
	assert_float_equal(mg__worker_cost(ws, 2, 1), 0.25, 1e-12);
	ws[1].work = 0.16;
	/* busiest at 0.7: half trusted */
	ws[0].busy = 0.7;
	assert_float_equal(mg__worker_cost(ws, 2, 0),
			   1 + 0.5 * (0.8 / 14000 / mean - 1), 1e-12);
	/* everyone has room: records alone */
	ws[0].busy = 0.45;
	assert_float_equal(mg__worker_cost(ws, 2, 0), 1.0, 1e-12);
	assert_float_equal(mg__worker_cost(ws, 2, 1), 1.0, 1e-12);
	/* equal costs */
	ws[0] = (struct mg_worker_stats){
		.busy = 0.95, .work = 0.5, .rate = 1e6};
	ws[1] = (struct mg_worker_stats){
		.busy = 0.95, .work = 0.5, .rate = 1e6};
	assert_float_equal(mg__worker_cost(ws, 2, 0), 1.0, 1e-12);
	/* every worker within 1.25x of the mean: the same (batch sizes make
	 * that much): 0.58 and 0.5 of the time, 1.074x and 0.926x the mean;
	 * 0.66 and 0.5 are 1.138x and 0.862x.  With 0.8 and 0.5 (1.23x and
	 * 0.77x) one is outside: both count */
	ws[0].work = 0.58;
	assert_float_equal(mg__worker_cost(ws, 2, 0), 1.0, 1e-12);
	assert_float_equal(mg__worker_cost(ws, 2, 1), 1.0, 1e-12);
	ws[0].work = 0.66;
	assert_float_equal(mg__worker_cost(ws, 2, 0), 1.0, 1e-12);
	assert_float_equal(mg__worker_cost(ws, 2, 1), 1.0, 1e-12);
	ws[0].work = 0.8;
	assert_float_equal(mg__worker_cost(ws, 2, 0), 0.8 / 0.65, 1e-12);
	assert_float_equal(mg__worker_cost(ws, 2, 1), 0.5 / 0.65, 1e-12);
	/* Each worker generates half the input (busy time no placement
	 * moves): worker 0, with the hot bins, processes 7.9 M/s; worker 1,
	 * 1.1 M/s, still reads 0.87 busy.  Busy per record would call worker
	 * 1's records 6x dearer and the placement balanced; the time in
	 * stateful steps says they cost the same. */
	ws[0] = (struct mg_worker_stats){
		.busy = 0.997, .work = 0.60, .rate = 7.9e6};
	ws[1] = (struct mg_worker_stats){
		.busy = 0.87, .work = 0.084, .rate = 1.1e6};
	assert_float_equal(mg__worker_cost(ws, 2, 0), 1.0, 0.02);
	assert_float_equal(mg__worker_cost(ws, 2, 1), 1.0, 0.02);
	/* too few records to tell */
	ws[1].rate = 50;
	assert_float_equal(mg__worker_cost(ws, 2, 1), 1.0, 1e-12);
}

/*
 * Worker 0 runs on a slower CPU: a record costs it 70 us against worker
 * 1's 10 (wall time spun in the operator, so on any machine), and the
 * records split evenly between their bins -- equal record rates, which a
 * plan on records alone calls balanced (worker 0's in/out gain is ~1.15,
 * within the threshold) while worker 0, over capacity, never catches up.
 * Weighted by what a record costs (mg__worker_cost), worker 0 carries
 * ~1.8x the mean: the balancer moves bins off it, and says why.
 */
static void
test_slow_cpu(void **state)
{
	struct bt x = {.c = {.name = "slow cpu",
			     .W = 2,
			     .bins_log2 = 8,
			     .producer_worker = 1},
		       .nkeys0 = 64,
		       .nlight = 64,
		       .light = COUNT_PER_TIME / 2,
		       .on_clock = true};
	struct mg_balance_event e;

	(void)state;
	load_until_move(&x, 10000, 60000, &e);
	assert_non_null(strstr(e.reason, "its records cost"));
	assert_true(e.load_before[0] > e.load_before[1]);
	assert_true(e.load_after[0] < e.load_before[0]);
	count_finish(&x.c);
	teardown(&x);
}

/*
 * An imbalance of twice the threshold is no noise: the balancer acts on
 * its first decision, which comes within the first three samples of the
 * rates whatever the interval.  All load on worker 0 (2x the mean, above
 * 1.4x), an interval of an hour and a patience of 1000: without either
 * rule nothing would move within the watchdog.
 */
static void
test_far_acts_at_once(void **state)
{
	struct bt x = {.c = {.name = "far", .W = 2, .bins_log2 = 8},
		       .nkeys0 = 512};
	struct mg_balancer_config bc = {
		.interval_ns = 3600ull * 1000000000ull,
		.patience = 1000,
	};
	struct mg_balance_event e;

	(void)state;
	build(&x, false);
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &x.c.bal), 0);
	assert_int_equal(mg_dataflow_start(x.c.df, NULL, NULL), 0);
	push_until(&x, MG_BALANCE_MOVE, 1);
	print_events(&x);
	assert_int_equal(mg_balancer_event(x.c.bal, 0, &e), 0);
	assert_int_equal(e.kind, MG_BALANCE_MOVE);
	assert_true(e.load_before[0] > 1.4 * e.mean);
	assert_non_null(strstr(e.reason, "for 1 decision:"));
	count_finish(&x.c);
	teardown(&x);
}

/*
 * Near capacity, an imbalance within the threshold is latency (balancer.c,
 * NEAR_FULL): the balancer plans at a quarter of it.  Worker 0's bins take
 * 18 of every 32 records, worker 1's 14 (1.125x the mean: within the
 * default threshold, 1.2x), each spinning 48 us of wall time: worker 0's
 * steps take ~0.86 of its time (or it falls behind, on a machine too slow
 * for that: then the sources lag, which tightens the threshold alike).
 * Without either rule nothing would move within the watchdog.  (The
 * event's limit is the quarter threshold's: the mean plus a quarter of
 * what the default adds to it.)
 */
static void
test_near_full(void **state)
{
	struct bt x = {.c = {.name = "near full", .W = 2, .bins_log2 = 8},
		       .nkeys0 = 64,
		       .nlight = 64,
		       .light = 14,
		       .on_clock = true};
	struct mg_balance_event e;

	(void)state;
	load_until_move(&x, 48000, 0, &e);
	assert_true(strstr(e.reason, "near capacity") ||
		    strstr(e.reason, "lag the clock"));
	assert_true(e.load_before[0] <= e.mean + 4 * (e.limit - e.mean));
	assert_true(e.load_after[0] < e.load_before[0]);
	count_finish(&x.c);
	teardown(&x);
}

/* ---- a source that lags the clock ------------------------------------------ */

/*
 * While the whole dataflow lags the clock, the balancer acts at its first
 * decision, at a quarter of its threshold (balancer.c, LAG_NS): a backlog
 * grows with every decision waited for.  Worker 0's share of the source is
 * 5x slower than its schedule (100 us of wall time a record, so on any
 * machine: every share keeps with it, worker.c), and the records go to
 * 8 bins, the first @on0 of worker 0 and the rest of worker 1.  Returns
 * the balancer's first event (kind and whether it says the sources lag,
 * in *@lag; in *@margin, if not NULL, the busiest worker's planned margin
 * above the mean over the limit's), and in *@more (if not NULL) the
 * decisions after it, counted once there are 3, the balancer stopped or
 * the run made every record; then every record is counted once.
 */
/* The workers' largest waiting fraction (mg_worker_stats.waiting) now, or
 * @max if larger. */
static double
df_max_waiting(struct mg_dataflow *df, double max)
{
	struct mg_worker_stats ws[MAX_W];

	assert_true(mg_dataflow_workers(df) <= MAX_W);
	assert_int_equal(mg_dataflow_worker_stats(df, ws), 0);
	for (unsigned w = 0; w < mg_dataflow_workers(df); w++)
		max = ws[w].waiting > max ? ws[w].waiting : max;
	return max;
}

static enum mg_balance_kind
lagging_run(unsigned on0, bool slow_op, const struct mg_balancer_config *bc,
	    bool *lag, uint64_t *more, double *margin, double *waited)
{
	struct mg_test_lag l = {.bins_log2 = 4,
				.nkeys = 8,
				.on0 = on0,
				.slow_op = slow_op,
				.rate = 100000,
				.duration_ns = 3000000000ull};
	struct mg_balancer_stats st;
	struct mg_balance_event e;
	struct mg_balancer *bal;
	enum mg_balance_kind kind = MG_BALANCE_SCALE; /* none */

	mg_test_lag_build(&l);
	assert_int_equal(mg_balancer_start(l.df, bc, &bal), 0);
	assert_int_equal(mg_dataflow_start(l.df, NULL, NULL), 0);
	/* until its first event; the run ends (3 s of schedule, 5x slower
	 * while slow: 15 s) before a balancer that waits would act */
	while (mg_balancer_event(bal, 0, &e)) {
		mg_balancer_stats(bal, &st);
		if (!st.running)
			break;
		if (waited)
			*waited = df_max_waiting(l.df, *waited);
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	if (waited) /* the sample the decision read, at the latest */
		*waited = df_max_waiting(l.df, *waited);
	mg_balancer_stats(bal, &st);
	*lag = false;
	if (!mg_balancer_event(bal, 0, &e)) {
		printf("# [lagging] first event after %llu decisions: %s: %s "
		       "(busy %.2f %.2f)\n",
		       (unsigned long long)st.rounds,
		       e.kind == MG_BALANCE_MOVE ? "move" : "hold", e.reason,
		       e.busy[0], e.busy[1]);
		kind = e.kind;
		*lag = strstr(e.reason, "lag the clock") != NULL;
		if (margin) /* of the busiest worker's, after over before */
			*margin = (e.max_after - e.mean) / (e.limit - e.mean);
	}
	if (more) {
		uint64_t first = st.rounds;

		/* or until the run made every record: a balancer that
		 * waits out its interval would sleep past the run's end */
		while (st.running && st.rounds < first + 3 &&
		       atomic_load_explicit(&l.records, memory_order_relaxed) <
			       mg_test_lag_total(&l)) {
			nanosleep(&(struct timespec){0, 10000000}, NULL);
			mg_balancer_stats(bal, &st);
		}
		*more = st.rounds - first;
	}
	mg_test_lag_finish(&l);
	return kind;
}

/* All records on worker 0's bins, which are what is slow there (its
 * source share is not: no base load to speak of), config @bc: the first
 * event is a move, made because the sources lag.  Two workers: worker 0
 * carries 2x the mean. */
static void
lagging_moves(const struct mg_balancer_config *bc)
{
	bool lag;
	double margin = 1, waited = 0;

	assert_int_equal(lagging_run(8, true, bc, &lag, NULL, &margin, &waited),
			 MG_BALANCE_MOVE);
	assert_true(lag);
	/* planned for half the trigger's margin above the mean at most: a
	 * move that only just crosses the limit gains nothing.  Where the
	 * machine took the workers' CPUs the bins' rates read what the
	 * scheduler did, and four bins may not split that finely (0.77 and
	 * 0.9 in 2 runs of 20 beside a load of 27) */
	printf("# [lagging] planned margin %.2f; the workers waited for their "
	       "CPUs up to %.0f%% of the time\n",
	       margin, 100 * waited);
	assert_true(margin <= 0.5 + 1e-9 || waited >= WAIT_NOISE);
}

/* Above a threshold of 0.6 (1.6x) but within its far rule (2.2x): with a
 * patience of 1000 decisions the balancer would wait 20 s; lagging, it
 * moves at its first decision. */
static void
test_lagging_acts_at_once(void **state)
{
	(void)state;
	lagging_moves(&(struct mg_balancer_config){
		.interval_ns = INTERVAL_NS,
		.threshold = 0.6,
		.patience = 1000,
	});
}

/* Within a threshold of 3 (4x the mean) -- and its far rule (7x) -- but
 * above a quarter of it (1.75x).  Over capacity, worker 0's rates are its
 * capacity and understate its load: a balancer that waited for the
 * threshold would never move. */
static void
test_lagging_within_threshold(void **state)
{
	(void)state;
	lagging_moves(&(struct mg_balancer_config){
		.interval_ns = INTERVAL_NS,
		.threshold = 3.0,
	});
}

/* With an interval of an hour, the next decision after the first would
 * come an hour later -- but while the sources lag the balancer decides
 * every sample (100 ms), its backlog growing meanwhile. */
static void
test_lagging_decides_every_sample(void **state)
{
	uint64_t more = 0;
	bool lag;

	(void)state;
	lagging_run(8, false,
		    &(struct mg_balancer_config){
			    .interval_ns = 3600000000000ull,
		    },
		    &lag, &more, NULL, NULL);
	printf("# [lagging] %llu more decisions\n", (unsigned long long)more);
	assert_true(lag);
	assert_true(more >= 3);
}

/* All records on worker 1's bins, which carries 2x their rates' mean.  But
 * worker 0's time goes to its slow source share (mg_worker_stats.feed,
 * its base load): it is the busier one, and moving bins onto it could only
 * make it worse.  The balancer holds. */
static void
test_slow_source_holds(void **state)
{
	bool lag;
	double waited = 0;
	enum mg_balance_kind kind;

	(void)state;
	kind = lagging_run(0, false,
			   &(struct mg_balancer_config){
				   .interval_ns = INTERVAL_NS,
			   },
			   &lag, NULL, NULL, &waited);
	printf("# [slow source] the workers waited for their CPUs up to "
	       "%.0f%% of the time\n",
	       100 * waited);
	/* where the machine took the workers' CPUs, worker 0's times read
	 * what the scheduler did: a move is let pass then (4 runs of 12
	 * moved beside six CPU hogs) */
	if (kind != MG_BALANCE_HOLD)
		assert_true(waited >= WAIT_NOISE);
}

/*
 * Sources that lag the clock ask for one more worker, whatever the busy
 * time reads: worker 1 parked (mg_dataflow_set_active(1)), worker 0 runs
 * both shares of a source whose worker-0 share is 5x slower than its
 * schedule.  Its busy time is its whole time, and a utilization can never
 * be above a scale_high of 1; nor is it behind its input (its source is
 * slow, not its bins).  The balancer wakes worker 1 and says why.
 */
static void
test_lag_scales_out(void **state)
{
	struct mg_test_lag l = {.bins_log2 = 4,
				.nkeys = 8,
				.on0 = 4,
				.rate = 100000,
				.duration_ns = 3000000000ull};
	struct mg_balancer_config bc = {
		.interval_ns = INTERVAL_NS,
		.cooldown_ns = 100000000ull,
		.scale_low = 0.01,
		.scale_high = 1.0,
	};
	struct mg_balance_event e;
	struct mg_balancer_stats st;
	struct mg_balancer *bal;
	bool up = false;
	int err;

	(void)state;
	mg_test_lag_build(&l);
	assert_int_equal(mg_balancer_start(l.df, &bc, &bal), 0);
	assert_int_equal(mg_dataflow_start(l.df, NULL, NULL), 0);
	while ((err = mg_dataflow_set_active(l.df, 1)) == -EBUSY)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	assert_int_equal(err, 0);
	/* until it scales out, or the run made every record (15 s while
	 * slow: a balancer that waits for utilization never acts) */
	for (mg_balancer_stats(bal, &st); st.running && !up;
	     mg_balancer_stats(bal, &st)) {
		for (size_t i = 0; !mg_balancer_event(bal, i, &e); i++)
			up |= e.kind == MG_BALANCE_SCALE &&
			      e.active_after > e.active_before;
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	for (size_t i = 0; !mg_balancer_event(bal, i, &e); i++)
		printf("# [lag scales out] event at %.3f s: %s\n", e.t_s,
		       e.reason);
	assert_true(up);
	mg_test_lag_finish(&l);
}

/*
 * The workers' time split: worker 0 spends its rounds making its share of
 * a slow source (feed), worker 1 counting every record (work), each far
 * below the other's.  Read while the source lags, however slow the
 * machine (every figure is a fraction of wall time).
 */
static void
test_feed_time(void **state)
{
	struct mg_test_lag l = {.bins_log2 = 4,
				.nkeys = 8,
				.rate = 100000,
				.duration_ns = 3000000000ull};
	struct mg_worker_stats ws[2];
	struct mg_run_stats rs;
	double waited = 0;

	(void)state;
	mg_test_lag_build(&l);
	assert_int_equal(mg_dataflow_start(l.df, NULL, NULL), 0);
	/* A step's time counts when it ends, and a round that spans a whole
	 * sample counts as busy while it runs: on a loaded machine the first
	 * samples can show worker 0 busy before its source time is in.  So
	 * wait for the feed too -- or for the run to have made every record
	 * (15 s while slow), which a feed that is never counted would reach. */
	do {
		nanosleep(&(struct timespec){0, 10000000}, NULL);
		waited = df_max_waiting(l.df, waited);
		assert_int_equal(mg_dataflow_worker_stats(l.df, ws), 0);
	} while ((ws[0].busy < 0.5 || ws[1].rate < 1000 || ws[0].feed <= 0.4) &&
		 atomic_load_explicit(&l.records, memory_order_relaxed) <
			 mg_test_lag_total(&l));
	atomic_store_explicit(&l.slow, false, memory_order_relaxed);
	printf("# [feed] worker 0 busy %.3f feed %.3f work %.3f; worker 1 "
	       "busy %.3f feed %.3f work %.3f, %.0f records/s; the workers "
	       "waited for their CPUs up to %.0f%% of the time\n",
	       ws[0].busy, ws[0].feed, ws[0].work, ws[1].busy, ws[1].feed,
	       ws[1].work, ws[1].rate, 100 * waited);
	assert_int_equal(mg_dataflow_join(l.df, &rs), 0);
	mg_dataflow_destroy(l.df);
	/* where the machine takes the workers' CPUs the rest of a round
	 * stretches too: the feed read 0.34 of worker 0's time once beside
	 * six CPU hogs (the run made every record first) */
	assert_true(ws[0].feed > (waited >= WAIT_NOISE ? 0.2 : 0.4) &&
		    ws[0].feed <= ws[0].busy);
	assert_true(ws[0].work < ws[0].feed / 10);
	assert_true(ws[1].feed < ws[0].feed / 4);
	assert_true(ws[1].work > 0 && ws[1].work <= ws[1].busy);
	assert_true(mg__worker_base(ws, 2, 0) > 4 * mg__worker_base(ws, 2, 1));
	assert_true(mg__worker_base(ws, 1, 1) == 0); /* inactive */
}

/*
 * A stall -- one round of a few seconds, each record 100 ms of work -- is
 * busy time while it lasts (stats.c), not only once the round ends: a
 * stalled worker must not look idle to the balancer's guard.  The time's
 * outputs complete only after the stall; before that, the busy fraction
 * of the worker with the records has risen.
 */
static void
test_stall_busy(void **state)
{
	struct bt x = {.c = {.name = "stall", .W = 2, .bins_log2 = 4},
		       .nkeys0 = 4};
	struct mg_worker_stats ws[2];
	double top = 0;
	uint64_t t;

	(void)state;
	build(&x, false);
	assert_int_equal(mg_dataflow_start(x.c.df, NULL, NULL), 0);
	atomic_store_explicit(&x.c.spin_ns, 100000000, memory_order_relaxed);
	push_time(&x); /* 32 records of worker 0's keys: 3.2 s of work */
	t = x.c.times;
	while (mg_probe_frontier(x.c.probe) < t) { /* the call runs */
		assert_int_equal(mg_dataflow_worker_stats(x.c.df, ws), 0);
		top = ws[0].busy > top ? ws[0].busy : top;
		if (top > 0.5)
			break;
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	atomic_store_explicit(&x.c.spin_ns, 0, memory_order_relaxed);
	printf("# [stall] worker 0 busy %.2f during its stall\n", top);
	assert_true(top > 0.5);
	count_finish(&x.c);
	teardown(&x);
}

/* A busy loop on CPU (intptr_t)@arg until *hogs_stop. */
static _Atomic bool hogs_stop;
static void *
hog_main(void *arg)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET((int)(intptr_t)arg, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	while (!atomic_load_explicit(&hogs_stop, memory_order_relaxed))
		;
	return NULL;
}

/*
 * A worker that waits for its CPU says so (mg_worker_stats.waiting, the
 * kernel's run queue delay): with a busy loop pinned to every CPU the
 * process may use, beside two workers kept busy (each record spins 50 us), the larger of their
 * waiting fractions passes a fifth -- in a second or two; on a quiet
 * machine it reads 2-3% (test_hot_bin).  Where the kernel keeps no such
 * count, it reads 0 -- checked over three samples of the same load.
 */
static void
test_waiting(void **state)
{
	struct bt x = {.c = {.name = "waiting", .W = 2, .bins_log2 = 4},
		       .nkeys0 = 8};
	cpu_set_t allowed;
	pthread_t *hog;
	int ncpu = 0, cpu;
	double waited = 0, start;
	int fd = mg_thread_wait_open();
	bool counted = fd >= 0;

	(void)state;
	if (counted)
		close(fd);
	assert_int_equal(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	hog = malloc(sizeof(*hog) * (size_t)CPU_COUNT(&allowed));
	assert_non_null(hog);
	build(&x, false);
	atomic_store_explicit(&x.c.spin_ns, 50000, memory_order_relaxed);
	assert_int_equal(mg_dataflow_start(x.c.df, NULL, NULL), 0);
	atomic_store_explicit(&hogs_stop, false, memory_order_relaxed);
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &allowed))
			assert_int_equal(pthread_create(&hog[ncpu++], NULL,
							hog_main,
							(void *)(intptr_t)cpu),
					 0);
	for (start = count_now_s();
	     counted ? waited < 0.2 : mg__stats_samples(x.c.df) < 3;) {
		push_time(&x);
		waited = df_max_waiting(x.c.df, waited);
		if (count_now_s() - start > x.c.watchdog_s)
			break;
	}
	atomic_store_explicit(&hogs_stop, true, memory_order_relaxed);
	for (int i = 0; i < ncpu; i++)
		pthread_join(hog[i], NULL);
	free(hog);
	atomic_store_explicit(&x.c.spin_ns, 0, memory_order_relaxed);
	printf("# [waiting] up to %.0f%% of the time, %.1f s in, beside %d "
	       "busy loops%s\n",
	       100 * waited, count_now_s() - start, ncpu,
	       counted ? "" : " (this kernel keeps no run queue delay)");
	if (counted)
		assert_true(waited >= 0.2);
	else
		assert_true(waited == 0);
	count_finish(&x.c);
	teardown(&x);
}

/* A HOLD because bins are hot -- heavier than the limit alone -- not
 * because a receiver has no room (its event counts the hot bins too). */
static bool
hot_hold(const struct mg_balance_event *e)
{
	return e->kind == MG_BALANCE_HOLD && strstr(e->reason, "kept alone");
}

/*
 * One key with 7 in 10 records: its bin alone is above the limit (mean
 * 50%, limit 60%).  The balancer moves every other loaded bin to worker 1
 * (on a loaded machine a first sample may not show every bin's rate yet:
 * then in more than one step), keeps the hot one on worker 0, logs one
 * HOLD that says so, and then, for QUIET_ROUNDS decisions, moves nothing.
 * With no cool-down and a patience of 1 it acts on every sample, so where
 * the machine takes the workers' CPUs (four CPU hogs beside them: they
 * wait for them 60-70% of the time, against 2-3% without) their rates and
 * times read what the
 * scheduler did, and it moved bins after the hold in 3 runs of 30 under
 * ASan -- once light bins back onto worker 0, and then the hot one to
 * even that out: moves after the hold are let pass only when a worker
 * waited WAIT_NOISE of the time or more, and said.
 */
static void
test_hot_bin(void **state)
{
	struct bt x = {.c = {.name = "hot bin",
			     .W = 2,
			     .bins_log2 = 6,
			     .mode = MG_HANDOFF},
		       .nkeys0 = 64,
		       .hot_tenth = 7};
	struct mg_balancer_config bc = {
		.interval_ns = INTERVAL_NS,
		.threshold = 0.2,
		.cooldown_ns = 1, /* no cool-down: the hot bin could move */
		.patience = 1,
	};
	struct mg_balance_event e;
	struct mg_balancer_stats st;
	uint16_t owners[64];
	unsigned b, k, hot_holds = 0, before, quiet_moves, hot_bin;
	bool hot_moved = false;
	double start, waited = 0;
	uint64_t until;
	size_t i;

	(void)state;
	build(&x, false);
	hot_bin = count_bin_of(&x.c, x.c.keys[0]);
	assert_int_equal(mg_dataflow_start(x.c.df, NULL, NULL), 0);
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &x.c.bal), 0);
	for (start = count_now_s(); !hot_holds;) {
		push_time(&x);
		for (i = 0; !mg_balancer_event(x.c.bal, i, &e); i++)
			hot_holds += hot_hold(&e);
		if (count_now_s() - start > x.c.watchdog_s)
			stuck(&x, "a hold for the hot bin");
	}
	mg_dataflow_owners(x.c.df, owners);
	assert_int_equal(owners[hot_bin], 0);
	for (k = 1; k < x.nkeys0; k++) {
		b = count_bin_of(&x.c, x.c.keys[k]);
		if (b != hot_bin)
			assert_int_equal(owners[b], 1);
	}
	assert_true(moves(&x) >= 1);

	before = moves(&x);
	mg_balancer_stats(x.c.bal, &st);
	for (until = st.rounds + QUIET_ROUNDS, start = count_now_s();
	     st.rounds < until; mg_balancer_stats(x.c.bal, &st)) {
		push_time(&x);
		waited = df_max_waiting(x.c.df, waited);
		mg_dataflow_owners(x.c.df, owners);
		hot_moved |= owners[hot_bin] != 0;
		if (count_now_s() - start > x.c.watchdog_s)
			stuck(&x, "its decisions");
	}
	quiet_moves = moves(&x) - before;
	print_events(&x);
	printf("# [hot bin] %u moves in %u decisions after the hold (the hot "
	       "bin's: %s); the workers waited for their CPUs up to %.0f%% of "
	       "the time\n",
	       quiet_moves, QUIET_ROUNDS, hot_moved ? "yes" : "no",
	       100 * waited);
	if (quiet_moves)
		assert_true(waited >= WAIT_NOISE);
	for (hot_holds = 0, i = 0; !mg_balancer_event(x.c.bal, i, &e); i++)
		if (hot_hold(&e)) {
			assert_int_equal(e.hot, 1);
			hot_holds++;
		}
	assert_true(hot_holds == 1 || (quiet_moves && hot_holds > 1));
	count_finish(&x.c);
	teardown(&x);
}

/*
 * A moved bin stays put for the cool-down.  Once the balancer has moved
 * part of worker 0's bins to worker 1, the load switches to the keys of
 * exactly those bins: worker 1 carries everything, and only bins that just
 * moved could relieve it.  With a long cool-down the balancer holds (and
 * says why) and no bin moves again; with a cool-down of 1 ns it moves
 * bins back -- so it is the cool-down that held them.
 */
static void
cooldown_case(uint64_t cooldown_ns, const char *name)
{
	struct bt x = {.c = {.name = name, .W = 2, .bins_log2 = 8},
		       .nkeys0 = 512};
	struct mg_balancer_config bc = {
		.interval_ns = INTERVAL_NS,
		.cooldown_ns = cooldown_ns,
	};
	struct mg_balance_event e;
	uint16_t owners[256], later[256];
	unsigned k;
	bool held = cooldown_ns > 1;

	build(&x, false);
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &x.c.bal), 0);
	assert_int_equal(mg_dataflow_start(x.c.df, NULL, NULL), 0);
	push_until(&x, MG_BALANCE_MOVE, 1);
	mg_dataflow_owners(x.c.df, owners);
	for (x.nuse = 0, k = 0; k < x.nkeys0; k++)
		if (owners[count_bin_of(&x.c, x.c.keys[k])] == 1)
			x.use[x.nuse++] = k;
	assert_true(x.nuse > 0);
	if (held) {
		push_until(&x, MG_BALANCE_HOLD, 1);
		assert_int_equal(push_rounds(&x, QUIET_ROUNDS), 0);
		print_events(&x);
		assert_int_equal(moves(&x), 1);
		assert_int_equal(mg_balancer_event(x.c.bal, 1, &e), 0);
		assert_int_equal(e.kind, MG_BALANCE_HOLD);
		assert_true(e.pinned > 0);
		assert_non_null(strstr(e.reason, "cooling down"));
		mg_dataflow_owners(x.c.df, later);
		assert_memory_equal(owners, later, sizeof(owners));
	} else {
		push_until(&x, MG_BALANCE_MOVE, 2);
		print_events(&x);
		mg_dataflow_owners(x.c.df, later);
		for (k = 0; k < 256 && later[k] == owners[k]; k++)
			;
		assert_true(k < 256); /* some bin moved back */
		assert_int_equal(owners[k], 1);
	}
	count_finish(&x.c);
	teardown(&x);
}

static void
test_cooldown(void **state)
{
	(void)state;
	cooldown_case(3600ull * 1000000000ull, "cool-down holds");
	cooldown_case(1, "no cool-down");
}

/* The balancer stops with the dataflow, however the dataflow ends. */
static void
test_stops(void **state)
{
	struct bt x = {.c = {.name = "stops", .W = 2, .bins_log2 = 6},
		       .nkeys0 = 16};
	struct mg_balancer_config bc = {.interval_ns = INTERVAL_NS};
	struct mg_balancer_stats st;
	struct mg_balancer *b2;
	uint64_t r;

	(void)state;
	/* mg_dataflow_stop(): the balancer has ended by the join */
	build(&x, false);
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &x.c.bal), 0);
	assert_int_equal(mg_dataflow_start(x.c.df, NULL, NULL), 0);
	push_rounds(&x, 2);
	mg_dataflow_stop(x.c.df);
	assert_int_equal(mg_dataflow_join(x.c.df, NULL), 0);
	mg_balancer_stats(x.c.bal, &st);
	assert_false(st.running);
	assert_int_equal(mg_balancer_stop(x.c.bal), 0); /* after: no-op */
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &b2), -EINVAL);
	teardown(&x);

	/* mg_balancer_stop() while the run goes on: the events stay, the
	 * run ends normally, stopping again changes nothing */
	build(&x, false);
	assert_int_equal(mg_dataflow_start(x.c.df, NULL, NULL), 0);
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &x.c.bal), 0);
	push_rounds(&x, 2);
	assert_int_equal(mg_balancer_stop(x.c.bal), 0);
	mg_balancer_stats(x.c.bal, &st);
	assert_false(st.running);
	r = st.rounds;
	for (int i = 0; i < 50; i++)
		push_time(&x);
	assert_int_equal(mg_balancer_stop(x.c.bal), 0);
	mg_balancer_stats(x.c.bal, &st);
	assert_true(st.rounds == r);
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &b2), -EBUSY);
	count_finish(&x.c);
	teardown(&x);

	/* never started, and destroyed while running: no hang, no leak */
	build(&x, false);
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &x.c.bal), 0);
	teardown(&x);
	build(&x, false);
	assert_int_equal(mg_balancer_start(x.c.df, &bc, &x.c.bal), 0);
	assert_int_equal(mg_dataflow_start(x.c.df, NULL, NULL), 0);
	push_rounds(&x, 1);
	teardown(&x);
}

static void
test_bad_config(void **state)
{
	struct bt x = {.c = {.name = "bad", .W = 2, .bins_log2 = 4},
		       .nkeys0 = 4};
	struct mg_balancer *b = (struct mg_balancer *)&x; /* untouched */
	struct mg_balancer *const sentinel = b;
	struct mg_balancer_config bad[] = {
		{.threshold = -0.1},
		{.threshold = NAN},
		{.threshold = INFINITY},
		{.threshold = 101},
		{.interval_ns = 999999},
		{.patience = 1001},
		{.strategy = (enum mg_strategy)3},
		{.gap = 1000001},
	};
	struct mg_balance_event e;
	struct mg_balancer_stats st;
	struct mg_dataflow *df;
	struct mg_input *in;
	size_t i;

	(void)state;
	build(&x, false);
	assert_int_equal(mg_balancer_start(NULL, NULL, &b), -EINVAL);
	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		printf("# bad config %zu\n", i);
		assert_int_equal(mg_balancer_start(x.c.df, &bad[i], &b),
				 -EINVAL);
		assert_ptr_equal(b, sentinel);
	}
	assert_int_equal(mg_balancer_stop(NULL), -EINVAL);
	assert_int_equal(mg_balancer_nevents(NULL), 0);
	assert_int_equal(mg_balancer_event(NULL, 0, &e), -EINVAL);
	mg_balancer_stats(NULL, &st);
	assert_int_equal(st.rounds, 0);
	assert_false(st.running);
	assert_int_equal(mg_balancer_start(x.c.df, NULL, &x.c.bal), 0); /* ok */
	assert_int_equal(mg_balancer_event(x.c.bal, 0, &e), -ENOENT);
	assert_int_equal(mg_balancer_event(x.c.bal, 0, NULL), -EINVAL);
	assert_int_equal(mg_balancer_start(x.c.df, NULL, &b), -EBUSY);
	teardown(&x);

	/* no statistics, or no bins to move */
	x = (struct bt){.c = {.name = "bad", .W = 2, .bins_log2 = 4},
			.nkeys0 = 4};
	build(&x, true);
	assert_int_equal(mg_balancer_start(x.c.df, NULL, &b), -EINVAL);
	teardown(&x);
	assert_int_equal(mg_dataflow_create(&df, NULL), 0);
	mg_probe(df, mg_input(df, 8, &in));
	assert_int_equal(mg_balancer_start(df, NULL, &b), -EINVAL);
	assert_ptr_equal(b, sentinel);
	mg_dataflow_destroy(df);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_stops),
		cmocka_unit_test(test_skew_handoff),
		cmocka_unit_test(test_skew_copy),
		cmocka_unit_test(test_hot_bin),
		cmocka_unit_test(test_overloaded),
		cmocka_unit_test(test_scale_wanted),
		cmocka_unit_test(test_behind),
		cmocka_unit_test(test_gain),
		cmocka_unit_test(test_warm),
		cmocka_unit_test(test_cost),
		cmocka_unit_test(test_slow_cpu),
		cmocka_unit_test(test_far_acts_at_once),
		cmocka_unit_test(test_near_full),
		cmocka_unit_test(test_lagging_acts_at_once),
		cmocka_unit_test(test_lagging_within_threshold),
		cmocka_unit_test(test_lagging_decides_every_sample),
		cmocka_unit_test(test_slow_source_holds),
		cmocka_unit_test(test_lag_scales_out),
		cmocka_unit_test(test_feed_time),
		cmocka_unit_test(test_stall_busy),
		cmocka_unit_test(test_waiting),
		cmocka_unit_test(test_cooldown),
	};

	alarm(ALARM_S);
	return MG_TEST_RUN(tests);
}
