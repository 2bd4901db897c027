/*
 * t-engine-elastic.c - elastic workers (megaphone.h, "elastic workers") on
 * running dataflows: mg_dataflow_set_active() empties the workers it parks
 * and parks them, raising it wakes them and moves bins back, a parked
 * worker's producer and share of a source keep flowing (its rounds run on
 * the active threads), the balancer plans for the active workers only and
 * can drive their number, and no output changes.
 *
 * The input cases push {key, seq} records from the main thread at logical
 * times it chooses (tests/mg_test_count.h: count per key, emit {key, count
 * so far}, a sink fingerprints each time's outputs per worker; the
 * reference is the main thread's), through a producer bound to the last
 * worker -- one that parks.  A parked worker's thread is checked to use no
 * CPU (its clock ticks in /proc/self/task).  Nothing waits on the wall
 * clock to be correct: the main thread pushes one time after another until what it
 * waits for holds, with a generous watchdog (MG_WATCHDOG_S, default 120 s)
 * that prints the engine's state before it fails.  The source case runs
 * the migration tests' harness (tests/mg_test_run.h) with random active
 * counts set while the sources run, checked output for output.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/megaphone.h"
#include "numa/mg_base.h"
#include "tests/mg_test.h"
#include "tests/mg_test_count.h"
#include "tests/mg_test_run.h"

#define EW	4   /* workers of the input cases */
#define ALARM_S 900 /* the last resort: the watchdog gives up first */

/* Build: input (its producer on the last worker) -> count -> sink, probe;
 * the keys are 0 .. nkeys-1. */
static void
build(struct count_run *x)
{
	x->W = EW;
	x->bins_log2 = 6;
	x->producer_worker = EW - 1;
	x->keys = malloc(sizeof(*x->keys) * x->nkeys);
	assert_non_null(x->keys);
	for (unsigned k = 0; k < x->nkeys; k++)
		x->keys[k] = k;
	count_build(x);
}

static void
teardown(struct count_run *x)
{
	count_teardown(x);
	free(x->keys);
}

/* Push the next time's records, round robin over the keys, without
 * waiting. */
static void
push_one(struct count_run *x)
{
	unsigned idx[COUNT_PER_TIME];

	for (unsigned i = 0; i < COUNT_PER_TIME; i++)
		idx[i] = (unsigned)((x->seq + i) % x->nkeys);
	count_push(x, idx);
}

/* One time, then a millisecond's sleep: the rate falls as the machine
 * slows down (a sleep ends late on a loaded machine). */
static void
push_time(struct count_run *x)
{
	push_one(x);
	nanosleep(&(struct timespec){0, 1000000}, NULL);
}

/* Workers below @k own every bin, and exactly those from @k on are parked;
 * with @spread, every active worker owns a bin. */
static bool
settled(const struct count_run *x, unsigned k, bool spread)
{
	uint32_t nbins = mg_dataflow_bins(x->df), b;
	uint16_t owner[64];
	unsigned own[EW] = {0}, w;

	assert_true(nbins <= 64);
	mg_dataflow_owners(x->df, owner);
	for (b = 0; b < nbins; b++)
		own[owner[b]]++;
	for (w = 0; w < EW; w++) {
		if (mg_dataflow_worker_parked(x->df, w) != (w >= k))
			return false;
		if (w >= k ? own[w] != 0 : spread && own[w] == 0)
			return false;
	}
	return true;
}

/* CPU ticks (user + system) of the thread named @name ("mg-worker-N"),
 * from /proc/self/task/TID/stat; -1 if there is none. */
static long long
thread_ticks(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	long long ticks = -1;

	assert_non_null(d);
	while (ticks < 0 && (e = readdir(d))) {
		char path[300], buf[1024], *p;
		unsigned long long ut, st;
		FILE *f;
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (strcmp(buf, name))
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat",
			 e->d_name);
		f = fopen(path, "r");
		assert_non_null(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* after "(comm)": state is field 3, utime 14, stime 15 */
		p = strrchr(buf, ')');
		assert_non_null(p);
		assert_int_equal(sscanf(p + 2,
					"%*c %*d %*d %*d %*d %*d %*u %*u %*u "
					"%*u %*u %llu %llu",
					&ut, &st),
				 2);
		ticks = (long long)(ut + st);
	}
	closedir(d);
	return ticks;
}

/* Parked threads use no CPU: over 200 pushed times (>= 200 ms), each of
 * workers @k.. gains at most one clock tick (the last instants of its
 * parking), where a thread that spun would gain ~20. */
static void
check_parked_idle(struct count_run *x, unsigned k)
{
	long long before[EW], after;
	char name[16];
	unsigned w;

	for (w = k; w < EW; w++) {
		snprintf(name, sizeof(name), "mg-worker-%u", w);
		before[w] = thread_ticks(name);
		assert_true(before[w] >= 0);
	}
	for (int i = 0; i < 200; i++)
		push_time(x);
	for (w = k; w < EW; w++) {
		snprintf(name, sizeof(name), "mg-worker-%u", w);
		after = thread_ticks(name);
		if (after - before[w] > 1 ||
		    !mg_dataflow_worker_parked(x->df, w))
			fail_msg("[%s] parked worker %u used %lld clock ticks "
				 "in 200 pushed times",
				 x->name, w, after - before[w]);
	}
}

/* Set @k active workers and push until the dataflow has settled there. */
static void
set_and_settle(struct count_run *x, unsigned k)
{
	double start = count_now_s();
	int err;

	while ((err = mg_dataflow_set_active(x->df, k)) == -EBUSY ||
	       err == -ETIME)
		push_time(x); /* a move still running: retry */
	assert_int_equal(err, 0);
	assert_int_equal(mg_dataflow_active(x->df), k);
	while (!settled(x, k, true)) {
		push_time(x);
		if (count_now_s() - start > x->watchdog_s) {
			printf("# [%s] not settled at %u active workers "
			       "after %.0f s; the engine's state follows\n",
			       x->name, k, x->watchdog_s);
			mg_dataflow_dump(x->df, stderr);
			fail_msg("[%s] set_active(%u) did not settle", x->name,
				 k);
		}
	}
	for (int i = 0; i < 20; i++) /* parked, the records still flow */
		push_time(x);
	printf("# [%s] %u active: settled after %.3f s, %llu times\n", x->name,
	       k, count_now_s() - start, (unsigned long long)x->times);
	check_parked_idle(x, k);
}

/* ---- cases ---------------------------------------------------------------------- */

/* Down to 2, to 1 (the producer's worker parked all along), up to all 4,
 * down to 3: each settles, and the outputs equal the reference. */
static void
park_unpark(enum mg_mode mode, const char *name)
{
	struct count_run x = {.name = name, .mode = mode, .nkeys = 256};
	static const unsigned ks[] = {2, 1, 4, 3, 1, 4};

	build(&x);
	assert_int_equal(mg_dataflow_set_active(x.df, 2), -EINVAL); /* idle */
	assert_int_equal(mg_dataflow_active(x.df), EW);
	assert_int_equal(mg_dataflow_start(x.df, NULL, NULL), 0);
	for (int i = 0; i < 10; i++)
		push_time(&x);
	assert_true(settled(&x, EW, true));
	for (size_t i = 0; i < MG_ARRAY_SIZE(ks); i++)
		set_and_settle(&x, ks[i]);
	count_finish(&x);
	assert_int_equal(mg_dataflow_set_active(x.df, 2), -EINVAL); /* over */
	teardown(&x);
}

static void
test_park_unpark_handoff(void **state)
{
	(void)state;
	park_unpark(MG_HANDOFF, "park-unpark-handoff");
}

static void
test_park_unpark_copy(void **state)
{
	(void)state;
	park_unpark(MG_COPY, "park-unpark-copy");
}

/* No migration may move a bin onto worker @parked, which is parked: it
 * would hold bins while parked. */
static void
refuse_parked_targets(struct count_run *x, unsigned parked)
{
	uint32_t nbins = 1u << x->bins_log2;
	uint16_t *target = calloc(nbins, sizeof(*target));
	struct mg_move mv = {.bin = 0, .worker = parked};
	struct mg_plan *plan;

	assert_non_null(target);
	target[0] = (uint16_t)parked;
	assert_int_equal(mg_migrate(x->df, MG_ALL_AT_ONCE, target, MG_TIME_ASAP,
				    0, NULL),
			 -EINVAL);
	assert_int_equal(mg_plan_create(&plan, nbins, EW, NULL), 0);
	assert_int_equal(mg_plan_add_step(plan, 1ull << 40, &mv, 1), 0);
	assert_int_equal(mg_migrate_plan(x->df, plan, NULL), -EINVAL);
	mg_plan_destroy(plan);
	free(target);
}

static void
test_bad_input(void **state)
{
	struct count_run x = {.name = "bad", .mode = MG_HANDOFF, .nkeys = 8};

	(void)state;
	build(&x);
	assert_int_equal(mg_dataflow_start(x.df, NULL, NULL), 0);
	assert_int_equal(mg_dataflow_set_active(NULL, 1), -EINVAL);
	assert_int_equal(mg_dataflow_set_active(x.df, 0), -EINVAL);
	assert_int_equal(mg_dataflow_set_active(x.df, EW + 1), -EINVAL);
	assert_int_equal(mg_dataflow_active(x.df), EW); /* unchanged */
	assert_false(mg_dataflow_worker_parked(x.df, EW));
	assert_false(mg_dataflow_worker_parked(NULL, 0));
	/* the same count twice is fine; so is stopping with workers parked */
	set_and_settle(&x, 2);
	assert_int_equal(mg_dataflow_set_active(x.df, 2), 0);
	refuse_parked_targets(&x, 2);
	mg_dataflow_stop(x.df);
	assert_int_equal(mg_dataflow_join(x.df, NULL), 0); /* no hang */
	teardown(&x);
}

/*
 * With scale_low/scale_high the balancer parks workers under a light load
 * and wakes them under a heavy one (records that each take SPIN_NS in the
 * operator), and any move it plans stays off parked workers.  Busy fractions
 * are wall time in rounds that did work, which a loaded machine inflates
 * (a round preempted half way counts whole): the thresholds are wide, so
 * the light load reads below 0.85 on a machine shared three ways, and the
 * heavy one, offered on the clock, is more than the active workers can do
 * on any machine: they are busy (above 0.95) or fall behind their input,
 * and either asks for a worker more.
 */
#define SPIN_NS 100000ull

/* The first SCALE event from @from on that goes @up (or down); -1. */
static long
scale_event(const struct count_run *x, size_t from, bool up,
	    struct mg_balance_event *out)
{
	for (size_t i = from; !mg_balancer_event(x->bal, i, out); i++)
		if (out->kind == MG_BALANCE_SCALE &&
		    (out->active_after > out->active_before) == up)
			return (long)i;
	return -1;
}

/* A time if fewer were pushed since logical time @t0 than milliseconds
 * have passed since @start (count_behind_clock), else a 0.2 ms sleep: a
 * load offered on the clock however late the sleeps end. */
static void
push_clocked(struct count_run *x, double start, uint64_t t0)
{
	if (count_behind_clock(x, start, t0))
		push_one(x);
	else
		nanosleep(&(struct timespec){0, 200000}, NULL);
}

/* Push until the balancer scaled @up (or down) at an event after @from,
 * and the workers it woke run or those it parked are parked.  Down: a time
 * and a millisecond's sleep (push_time: lighter still on a slow machine).
 * Up: a time per millisecond of the clock, catching up without sleeping
 * when behind, so the load offered stays above capacity however late the
 * sleeps end (paced by sleeps alone, a loaded machine offered a time per
 * 2.2 ms, which two workers kept up with at 0.8 busy: no reason to scale).
 */
static long
push_until_scaled(struct count_run *x, size_t from, bool up)
{
	struct mg_balance_event e;
	double start = count_now_s();
	uint64_t t0 = x->times;
	long i;

	for (;;) {
		i = scale_event(x, from, up, &e);
		if (i >= 0 &&
		    (up ? !mg_dataflow_worker_parked(x->df, e.active_after - 1)
			: settled(x, e.active_after, false)))
			break;
		if (!up)
			push_time(x);
		else
			push_clocked(x, start, t0);
		if (count_now_s() - start > x->watchdog_s) {
			printf("# [%s] no scaling %s after %.0f s; events and "
			       "the engine's state follow\n",
			       x->name, up ? "up" : "down", x->watchdog_s);
			for (size_t j = 0; !mg_balancer_event(x->bal, j, &e);
			     j++)
				printf("#   event at %.3f s: %s\n", e.t_s,
				       e.reason);
			{
				struct mg_worker_stats ws[EW];

				if (!mg_dataflow_worker_stats(x->df, ws))
					for (unsigned w = 0; w < EW; w++)
						printf("#   worker %u: busy "
						       "%.3f, %u bins\n",
						       w, ws[w].busy,
						       ws[w].bins);
			}
			mg_dataflow_dump(x->df, stderr);
			fail_msg("[%s] the balancer did not scale %s", x->name,
				 up ? "up" : "down");
		}
	}
	printf("# [%s] %u -> %u active after %.3f s: %s\n", x->name,
	       e.active_before, e.active_after, count_now_s() - start,
	       e.reason);
	return i;
}

static void
test_balancer_scales(void **state)
{
	struct count_run x = {
		.name = "autoscale", .mode = MG_HANDOFF, .nkeys = 256};
	struct mg_balancer_config bc = {
		.interval_ns = 20000000ull,
		.cooldown_ns = 100000000ull,
		.scale_low = 0.85,
		.scale_high = 0.95,
	};
	struct mg_balance_event e;
	long down;

	(void)state;
	build(&x);
	assert_int_equal(mg_dataflow_start(x.df, NULL, NULL), 0);
	assert_int_equal(mg_balancer_start(x.df, &bc, &x.bal), 0);
	/* light: 32 cheap records a millisecond on 4 workers */
	down = push_until_scaled(&x, 0, false);
	/* heavy: each record spins, 3.2 ms of work a millisecond */
	atomic_store_explicit(&x.spin_ns, SPIN_NS, memory_order_relaxed);
	push_until_scaled(&x, (size_t)down + 1, true);
	atomic_store_explicit(&x.spin_ns, 0, memory_order_relaxed);
	/* Bites only if the balancer moved bins besides scaling (round-robin
	 * keys rarely need it); the planner's rule itself -- nothing onto an
	 * inactive worker -- is t-migration-balance's, on random instances. */
	for (size_t i = 0; !mg_balancer_event(x.bal, i, &e); i++)
		if (e.kind == MG_BALANCE_MOVE)
			for (unsigned w = e.active_after; w < EW; w++)
				assert_true(e.load_after[w] == 0);
	count_finish(&x);
	teardown(&x);
}

/*
 * A steady load does not make the balancer scale in and out again: with
 * scale_low 0.99 it asks for one fewer whenever nothing is late, and the
 * load -- a time a millisecond on the clock, each record spinning 40 us,
 * 1.28 ms of work a millisecond -- is more than one worker can do.  So it
 * parks workers down to one, which falls behind its input and wakes one
 * more; from then on it may wake more (a loaded machine), but it never
 * again parks down to a count that asked for more at an input rate within
 * 0.8 of the one now (mg__scale_wanted's learnt rates; without them it
 * parked and woke a worker every cool-down).  scale_high 1: busy time
 * never asks for more, only a worker behind its input does.
 */
static void
test_scale_steady(void **state)
{
	struct count_run x = {
		.name = "steady", .mode = MG_HANDOFF, .nkeys = 256};
	struct mg_balancer_config bc = {
		.interval_ns = 20000000ull,
		.cooldown_ns = 100000000ull,
		.scale_low = 0.99,
		.scale_high = 1.0,
	};
	struct mg_balancer_stats st;
	struct mg_balance_event u, d;
	double start;
	uint64_t t0, until = 0;
	unsigned ups = 0, downs = 0;

	(void)state;
	build(&x);
	assert_int_equal(mg_dataflow_start(x.df, NULL, NULL), 0);
	assert_int_equal(mg_balancer_start(x.df, &bc, &x.bal), 0);
	atomic_store_explicit(&x.spin_ns, 40000, memory_order_relaxed);
	start = count_now_s();
	t0 = x.times;
	/* until 50 decisions after the first scale-out */
	for (mg_balancer_stats(x.bal, &st); !until || st.rounds < until;
	     mg_balancer_stats(x.bal, &st)) {
		if (!until && scale_event(&x, 0, true, &u) >= 0)
			until = st.rounds + 50;
		push_clocked(&x, start, t0);
		if (count_now_s() - start > x.watchdog_s) {
			mg_dataflow_dump(x.df, stderr);
			fail_msg("[steady] %s after %.0f s",
				 until ? "50 decisions took" : "no scale-out",
				 x.watchdog_s);
		}
	}
	atomic_store_explicit(&x.spin_ns, 0, memory_order_relaxed);
	for (size_t i = 0; !mg_balancer_event(x.bal, i, &u); i++) {
		if (u.kind != MG_BALANCE_SCALE)
			continue;
		printf("# [steady] %u -> %u at %.3f s, %.0f records/s in: %s\n",
		       u.active_before, u.active_after, u.t_s, u.in_rate,
		       u.reason);
		if (u.active_after < u.active_before) {
			downs++;
			continue;
		}
		ups++;
		for (size_t j = i + 1; !mg_balancer_event(x.bal, j, &d); j++)
			if (d.kind == MG_BALANCE_SCALE &&
			    d.active_after == u.active_before)
				assert_true(d.in_rate < 0.8 * u.in_rate);
	}
	assert_true(ups >= 1 && downs >= 1); /* it parked, and woke */
	count_finish(&x);
	teardown(&x);
}

/* ---- sources: random active counts while the run runs ------------------------ */

static void
drive_random_active(struct run *r, struct mg_dataflow *df)
{
	unsigned parks = 0, sets = 0;
	struct timespec ts = {0, 2000000};

	while (mg_dataflow_accepts_migrations(df)) {
		unsigned k = 1 + (unsigned)run_rnd(r, r->workers);
		int err = mg_dataflow_set_active(df, k);

		if (err == -EINVAL && !mg_dataflow_accepts_migrations(df))
			break; /* the sources closed meanwhile */
		if (err && err != -EBUSY && err != -ETIME) {
			FAIL(r, "set_active(%u): %d", k, err);
			break;
		}
		sets += !err;
		/* wait for the parking (or the run's end), a few ms each */
		for (int i = 0; i < 50; i++) {
			bool all = true;

			for (unsigned w = k; w < r->workers; w++)
				all &= mg_dataflow_worker_parked(df, w);
			if (all && !err) {
				parks += k < r->workers;
				break;
			}
			nanosleep(&ts, NULL);
		}
	}
	printf("# [%s] %u active counts set, %u parkings seen\n", r->name, sets,
	       parks);
}

static void
test_sources_random(void **state)
{
	unsigned cases = (unsigned)mg_test_env_u64("MG_ELASTIC_CASES", 4);

	(void)state;
	for (unsigned i = 0; i < cases; i++) {
		struct run r = {
			.name = i % 2 ? "sources-random-copy"
				      : "sources-random-handoff",
			.workers = 3 + i % 2,
			.bins_log2 = 5,
			.keys = 500,
			.rate = {150000, 0},
			.duration_ns = 1500 * MS,
			.mode = i % 2 ? MG_COPY : MG_HANDOFF,
			.drive = drive_random_active,
			.outputs_only = true,
			.lenient = true,
			.rng = run_seed_of(i),
		};

		assert_int_equal(run_case(&r), 0);
	}
}

/* ---- woken and asked to park again before it ran ------------------------------- */

static void
drop(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	(void)ctx, (void)w, (void)t, (void)rec;
}

/* Workers @from.. of @df are parked, within the watchdog. */
static void
wait_parked(struct mg_dataflow *df, unsigned from, double watchdog_s,
	    unsigned round)
{
	double start = count_now_s();

	for (unsigned w = from; w < EW; w++)
		while (!mg_dataflow_worker_parked(df, w)) {
			if (count_now_s() - start > watchdog_s) {
				mg_dataflow_dump(df, stderr);
				mg_test_dump_threads();
				fail_msg("[repark] round %u: worker %u never "
					 "parked again",
					 round, w);
			}
			nanosleep(&(struct timespec){0, 20000}, NULL);
		}
}

/*
 * All workers woken and, at once, all but one asked to park again: a
 * thread woken by the first call often runs only after the second asked
 * its worker to park.  It must take its rounds back and park again once
 * empty; it slept on -- its worker neither hosted nor woken, PARK_REQ,
 * then OWN at the next wake-up, which did not wake it -- and the run hung
 * (seen in test_sources_random on a loaded machine) until
 * mg__elastic_park() returned on PARK_REQ too.  A dataflow without bins
 * (input -> sink): set_active moves nothing, so the two calls follow each
 * other within microseconds, a thousand times.
 */
static void
test_repark(void **state)
{
	struct mg_dataflow_config dc = {.workers = EW, .oversubscribe = true};
	unsigned rounds = (unsigned)mg_test_env_u64("MG_REPARK_ROUNDS", 1000);
	double watchdog_s = (double)mg_test_env_u64("MG_WATCHDOG_S", 120);
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_stream *s;

	(void)state;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_input(df, 8, &in);
	assert_non_null(s);
	assert_int_equal(mg_sink(df, s, drop, NULL), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_dataflow_set_active(df, 1), 0);
	wait_parked(df, 1, watchdog_s, 0);
	for (unsigned i = 1; i <= rounds; i++) {
		assert_int_equal(mg_dataflow_set_active(df, EW), 0);
		assert_int_equal(mg_dataflow_set_active(df, 1), 0);
		wait_parked(df, 1, watchdog_s, i);
	}
	printf("# [repark] %u rounds: every worker parked again\n", rounds);
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_dataflow_join(df, NULL), 0);
	mg_dataflow_destroy(df);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_park_unpark_handoff),
		cmocka_unit_test(test_park_unpark_copy),
		cmocka_unit_test(test_balancer_scales),
		cmocka_unit_test(test_scale_steady),
		cmocka_unit_test(test_sources_random),
		cmocka_unit_test(test_repark),
	};

	run_seed = mg_test_seed();
	signal(SIGALRM, run_watchdog); /* dumps the engine and every stack */
	alarm(ALARM_S);
	return MG_TEST_RUN(tests);
}
