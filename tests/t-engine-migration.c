/*
 * t-engine-migration.c - the migration correctness contract, end to end
 * (DESIGN.md section 4): for any plan, strategy, bin count and worker count,
 * the timestamped output of a run with live migrations -- as a multiset per
 * timestamp -- equals the single-threaded reference of mg_test_model.h,
 * computed from the same record schedule (= a run without migration); no
 * record is lost or duplicated; every migration completes (done,
 * bins_moved == bins).
 *
 * The dataflow is the one of t-engine-dataflow.c (the model's): open-loop
 * source(s) -> counting stateful operator (unary, or binary joining two
 * sources) -> sink that fingerprints every timestamp's outputs per worker.
 * With timers each input-0 record is post-dated `delay` epochs and, when it
 * comes back, emitted with the key's count *at that time*: a timer that
 * fires on the wrong worker, too early, or without the bin's earlier
 * records applied changes the output.
 *
 * Besides the outputs, the operator records per worker which (bin, time)
 * calls it ran (and whether they carried records or timers), so main checks:
 *   - every (bin, time) is called at most once over all workers;
 *   - a bin's calls run in increasing time order (the bin remembers its last);
 *   - where the test knows the configuration (all-at-once and plans: the step
 *     times are the ones submitted), every call runs on the owner the
 *     configuration names for its time -- so a move takes effect exactly at
 *     its time, and timers fire on the new owner.  (Fluid and batched step
 *     times are chosen by the engine: for those bins only the number of
 *     owner changes is bounded.)
 *
 * Cases: bad input, a second migration over an unissued fluid step, random
 * migrations (S_ROUNDS rounds), chains in one plan, all bins in one step, a
 * migration under overload, migrations at the control frontier, timers
 * moving with their bin, a step completing as the run ends (what
 * mg_migration_wait() says), moves submitted while the run ends (the run
 * must still end; S_END_RUNS tries).  Seeded: the seed is printed;
 * MG_SEED=<seed> replays it.  S_ONLY=<test name> runs one case.
 *
 * Workers (callbacks) only record into per-worker slots; the main thread
 * checks, prints "# ..." details and asserts once per case, after every
 * sub-run of the case has run.  A run that does not end within a limit is
 * a failure (its dataflow is leaked, the other cases go on); an alarm is
 * the last resort.
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/megaphone.h"
#include "numa/mg_base.h"
#include "tests/mg_test.h"
#include "tests/mg_test_model.h"

#define EPOCH_NS       100000ull /* 100 us */
#define MS	       1000000ull
#define TIMER_DELAY    3 /* epochs */
#define MAX_W	       4
#define MAX_MIG	       96
#define CALL_N	       0x0f /* calls of a (worker, bin, time), capped */
#define CALL_IN	       0x10 /* one of them carried records */
#define CALL_TM	       0x20 /* one of them carried timers */
#define SHOW	       4    /* details printed per kind of mismatch */
#define WATCHDOG_S     180  /* last resort; finish() gives up first */
#define JOIN_TIMEOUT_S 20   /* no operator call for this long: hung */

struct root {
	struct mg_map counts; /* key -> records counted */
	uint64_t last_time;
	uint64_t calls;
	uint64_t bin_plus1; /* the bin this state is (0: not called yet) */
};

/* Written only by its worker; read by main after the join. */
struct wstat {
	uint64_t overflow;	/* calls or outputs past ntimes */
	uint64_t order_errors;	/* a bin called at a time <= its last */
	uint64_t apply_errors;	/* the model's operator failed */
	bool slept;		/* the slow last call happened */
	_Atomic uint64_t calls; /* operator calls: main sees it move */
} MG_CACHE_ALIGNED;

/* A move the test knows the time of: bin is owned by worker from time on. */
struct known {
	uint64_t time;
	uint32_t bin;
	uint32_t worker;
};

struct run;
typedef void (*hook_fn)(struct run *r, struct mg_dataflow *df);

struct run {
	const char *name;
	unsigned workers, bins_log2, keys, delay;
	uint32_t ring, batch;
	double rate[2];
	uint64_t duration_ns;
	double started; /* now_s() when the dataflow started */
	/* Retry a submission whose time passed while this thread was
	 * preempted (shifted later), and record one refused because every
	 * source has closed -- both outcomes mg_migrate() documents.  Off
	 * for the cases that test those refusals themselves. */
	bool lenient;
	bool timers, binary;
	hook_fn before_start, drive, after_join;
	uint64_t rng;	       /* the hooks' randomness */
	int expect_join;       /* what join should return; INT32_MIN: any */
	int join_err;	       /* what it returned */
	double join_timeout_s; /* give up on the run's end after this
				   long (0: JOIN_TIMEOUT_S) */
	bool hung;	       /* it gave up */
	bool outputs_only;     /* moves not recorded: skip the owner check */
	bool quiet;	       /* print only if something failed */
	uint64_t slow_last_ns; /* worker 1's first call at the last epoch
				   takes this long (a heavy user function) */
	unsigned late_moves, late_refused; /* drive_until_end() */
	/* set up by run_case */
	struct mg_dataflow *df; /* the running dataflow, for the watchdog */
	uint32_t nbins;
	uint64_t ntimes, last_epoch;
	struct mg_test_model m;	     /* from the fields above, by run_one() */
	struct mg_test_model_fp *fp; /* [W][ntimes] */
	uint8_t *calls;		     /* [W][nbins][ntimes] */
	struct wstat ws[MAX_W];
	/* what the hooks submitted */
	struct mg_migration *mig[MAX_MIG];
	const char *mig_what[MAX_MIG];
	uint8_t *mig_bins[MAX_MIG];  /* [nbins]: bins it moves */
	int mig_wait[MAX_MIG];	     /* mg_migration_wait()'s result */
	uint64_t mig_calls[MAX_MIG]; /* progress() when submitted */
	bool mig_waited[MAX_MIG];
	unsigned nmig;
	struct known *known;
	size_t nknown, cap_known;
	uint32_t *moves_of; /* [nbins]: moves submitted */
	bool *unknown;	    /* [nbins]: moved at times unknown here */
	unsigned fails;	    /* checks failed (each printed) */
	/* prefetch hints whose state is not their record's bin, or whose
	 * input does not exist; relaxed: the join orders them */
	_Atomic uint64_t prefetch_errors;
	struct mg_run_stats st;
	double wall_s;
};

/* The model's operator (mg_test_model.h), recording each call. */
static void
op(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	struct run *r = ctx;
	struct wstat *ws = &r->ws[c->worker];
	struct root *root = c->state;

	if (r->slow_last_ns && c->worker == 1 && c->time == r->last_epoch &&
	    !ws->slept) {
		struct timespec ts = {0, (long)r->slow_last_ns};

		ws->slept = true;
		nanosleep(&ts, NULL);
	}
	/* Relaxed: one writer; main only looks whether it moves. */
	atomic_store_explicit(
		&ws->calls,
		atomic_load_explicit(&ws->calls, memory_order_relaxed) + 1,
		memory_order_relaxed);
	if (root->calls++ && c->time <= root->last_time)
		ws->order_errors++;
	root->last_time = c->time;
	root->bin_plus1 = c->bin + 1ull;
	if (c->time < r->ntimes && c->bin < r->nbins) {
		uint8_t *p = &r->calls[((size_t)c->worker * r->nbins + c->bin) *
					       r->ntimes +
				       c->time];

		if ((*p & CALL_N) < CALL_N)
			(*p)++;
		if (c->n_in[0] || c->n_in[1])
			*p |= CALL_IN;
		if (c->n_timers)
			*p |= CALL_TM;
	} else {
		ws->overflow++;
	}
	if (mg_test_model_apply(&r->m, &root->counts, c, out))
		ws->apply_errors++;
}

/* A hint with a check: after every handoff the engine must still pass
 * each record the state of its own bin. */
static void
prefetch(void *ctx, const void *state, unsigned in, const void *rec)
{
	struct run *r = ctx;
	const struct root *root = state;

	if (!mg_test_model_hint_ok(&r->m, r->bins_log2, root->bin_plus1, in,
				   rec))
		atomic_fetch_add_explicit(&r->prefetch_errors, 1,
					  memory_order_relaxed);
}

static void
sink(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	struct run *r = ctx;

	if (t >= r->ntimes || w >= MAX_W) {
		r->ws[w % MAX_W].overflow++;
		return;
	}
	r->fp[w * r->ntimes + t].count++;
	r->fp[w * r->ntimes + t].sum += mg_test_model_out_hash(rec);
}

/* ---- helpers for the hooks (main thread) --------------------------------- */

static const char *case_name = "";
static uint64_t seed; /* of the whole file: mg_test_seed() */

/* The generator state of case @k, derived from the file's seed. */
static uint64_t
seed_of(unsigned k)
{
	return mg_hash64(seed + k * 0x9e3779b97f4a7c15ull);
}

static void
watchdog(int sig)
{
	static const char m1[] = "# watchdog: a run hung in case ";
	static const char m2[] = " -- aborting\nBail out! a run hung\n";
	ssize_t rc;

	(void)sig;
	rc = write(1, m1, sizeof(m1) - 1);
	rc = write(1, case_name, strlen(case_name));
	rc = write(1, m2, sizeof(m2) - 1);
	(void)rc;
	_exit(1);
}

static void
sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull),
			      (long)(ns % 1000000000ull)};

	nanosleep(&ts, NULL);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
rnd(struct run *r, uint64_t n)
{
	return n ? mg_test_rand(&r->rng) % n : 0;
}

#define FAIL(r, ...)                               \
	do {                                       \
		printf("# FAIL [%s] ", (r)->name); \
		printf(__VA_ARGS__);               \
		printf("\n");                      \
		(r)->fails++;                      \
	} while (0)

static void
expect_err(struct run *r, const char *what, int got, int want)
{
	/* -ECANCELED comes from submit()/submit_plan() only: the run had
	 * stopped taking migrations (a slow machine let it end first) */
	if (want == 0 && got == -ECANCELED) {
		printf("#   note: %s not submitted: every source had closed\n",
		       what);
		return;
	}
	if (got != want)
		FAIL(r, "%s: returned %d (%s), expected %d (%s)", what, got,
		     mg_strerror(got), want, mg_strerror(want));
}

static void
add_known(struct run *r, uint64_t time, uint32_t bin, uint32_t worker)
{
	if (r->nknown == r->cap_known) {
		size_t cap = r->cap_known ? 2 * r->cap_known : 256;
		struct known *k = realloc(r->known, sizeof(*k) * cap);

		if (!k) {
			FAIL(r, "out of memory in the test");
			return;
		}
		r->known = k;
		r->cap_known = cap;
	}
	r->known[r->nknown++] = (struct known){time, bin, worker};
}

/* What a hung run's threads still use: kept reachable, never freed. */
static void *kept[64];
static unsigned nkept;

static void
keep(void *p)
{
	if (nkept < MG_ARRAY_SIZE(kept))
		kept[nkept++] = p;
}

static uint64_t
progress(const struct run *r)
{
	uint64_t sum = 0;
	unsigned w;

	for (w = 0; w < r->workers; w++)
		sum += atomic_load_explicit(&r->ws[w].calls,
					    memory_order_relaxed);
	return sum;
}

static uint8_t *
new_mig(struct run *r, struct mg_migration *m, const char *what)
{
	uint8_t *bins;

	if (r->nmig == MAX_MIG) {
		FAIL(r, "too many migrations for the test");
		return NULL;
	}
	bins = calloc(r->nbins, 1);
	if (!bins) {
		FAIL(r, "out of memory in the test");
		return NULL;
	}
	r->mig[r->nmig] = m;
	r->mig_what[r->nmig] = what;
	r->mig_wait[r->nmig] = 0;
	r->mig_waited[r->nmig] = false;
	r->mig_calls[r->nmig] = progress(r);
	r->mig_bins[r->nmig++] = bins;
	return bins;
}

/* mg_migrate, and on success remember what it moves and, for all-at-once,
 * when (the test then knows the configuration of those bins). */
static int
submit(struct run *r, struct mg_dataflow *df, enum mg_strategy s,
       const uint16_t *target, uint64_t at, uint64_t gap,
       struct mg_migration **out)
{
	uint16_t *before = malloc(sizeof(*before) * r->nbins);
	struct mg_migration *m = NULL;
	uint8_t *bins;
	uint32_t b;
	int err;

	if (!before) {
		FAIL(r, "out of memory in the test");
		return -ENOMEM;
	}
	mg_dataflow_owners(df, before);
	err = mg_migrate(df, s, target, at, gap, &m);
	if (err == -EINVAL && !mg_dataflow_accepts_migrations(df))
		err = -ECANCELED;
	/* -ETIME: the time passed before the submission (a slow machine
	 * preempted us); retry later */
	for (int i = 0; r->lenient && err == -ETIME && i < 5; i++) {
		if (!mg_dataflow_accepts_migrations(df)) {
			err = -ECANCELED;
			break;
		}
		printf("#   note: time %llu passed before the submission "
		       "(preempted); shifted\n",
		       (unsigned long long)at);
		at = mg_dataflow_time_ahead(df, 3 * MS);
		err = mg_migrate(df, s, target, at, gap, &m);
	}
	if (!err && (bins = new_mig(r, m, mg_strategy_name(s)))) {
		for (b = 0; b < r->nbins; b++) {
			if (target[b] == before[b])
				continue;
			bins[b] = 1;
			r->moves_of[b]++;
			if (s == MG_ALL_AT_ONCE)
				add_known(r, at, b, target[b]);
			else
				r->unknown[b] = true;
		}
	}
	free(before);
	if (out)
		*out = m;
	return err;
}

/* mg_migrate_plan, remembering every step's moves and time. */
static int
submit_plan(struct run *r, struct mg_dataflow *df, const struct mg_plan *p,
	    struct mg_migration **out)
{
	const struct mg_plan *orig = p;
	struct mg_migration *m = NULL;
	struct mg_plan *shifted = NULL;
	uint8_t *bins;
	uint32_t s, i;
	int err = mg_migrate_plan(df, p, &m);

	if (err == -EINVAL && !mg_dataflow_accepts_migrations(df))
		err = -ECANCELED;
	/* -ETIME: the plan's time passed before the submission (a slow
	 * machine preempted us): shift the original plan later and retry */
	for (int k = 0; r->lenient && err == -ETIME && k < 5; k++) {
		uint64_t d;

		if (!mg_dataflow_accepts_migrations(df)) {
			err = -ECANCELED;
			break;
		}
		d = mg_dataflow_time_ahead(df, 3 * MS) - orig->steps[0].time;
		printf("#   note: plan time %llu passed before the submission "
		       "(preempted); shifted by %llu\n",
		       (unsigned long long)orig->steps[0].time,
		       (unsigned long long)d);
		p = orig;
		mg_plan_destroy(shifted);
		shifted = NULL;
		if (mg_plan_create(&shifted, orig->nbins, orig->nworkers,
				   orig->start))
			break;
		for (s = 0; s < orig->nsteps; s++)
			if (mg_plan_add_step(shifted, orig->steps[s].time + d,
					     orig->steps[s].moves,
					     orig->steps[s].nmoves))
				break;
		p = shifted;
		err = mg_migrate_plan(df, p, &m);
	}

	if (!err && (bins = new_mig(r, m, "plan")))
		for (s = 0; s < p->nsteps; s++)
			for (i = 0; i < p->steps[s].nmoves; i++) {
				const struct mg_move *mv =
					&p->steps[s].moves[i];

				bins[mv->bin] = 1;
				r->moves_of[mv->bin]++;
				add_known(r, p->steps[s].time, mv->bin,
					  mv->worker);
			}
	if (out)
		*out = m;
	mg_plan_destroy(shifted);
	return err;
}

/* A bin some submitted migration moves and that is not done yet. */
static bool
in_flight(const struct run *r, uint32_t b)
{
	struct mg_migration_progress p;
	unsigned i;

	for (i = 0; i < r->nmig; i++) {
		if (!r->mig_bins[i][b])
			continue;
		mg_migration_progress(r->mig[i], &p);
		if (!p.done)
			return true;
	}
	return false;
}

/*
 * Run @fn(@arg) on a helper thread and wait for it as long as the run makes
 * progress (operator calls).  A run whose operators stay idle for
 * join_timeout_s (default JOIN_TIMEOUT_S) without ending has hung: then
 * r->hung is set, the helper is left behind (with @arg, which must be on
 * the heap) and false returned.
 */
static bool
watch(struct run *r, void *(*fn)(void *), void *arg)
{
	double limit =
		r->join_timeout_s > 0 ? r->join_timeout_s : JOIN_TIMEOUT_S;
	uint64_t last = progress(r), now;
	double idle_since = now_s();
	pthread_t t;

	if (r->hung)
		return false;
	if (pthread_create(&t, NULL, fn, arg)) {
		FAIL(r, "cannot create a thread");
		fn(arg);
		return true;
	}
	for (;;) {
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += 50000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		if (!pthread_timedjoin_np(t, NULL, &dl))
			return true;
		now = progress(r);
		if (now != last) {
			last = now;
			idle_since = now_s();
			alarm(WATCHDOG_S);
		} else if (now_s() - idle_since > limit) {
			break;
		}
	}
	pthread_detach(t);
	r->hung = true;
	alarm(0);
	FAIL(r,
	     "the run has not ended, and no operator ran for %.0f s: it "
	     "hung (the engine's state and every thread's stack follow on "
	     "stderr)",
	     limit);
	mg_dataflow_dump(r->df, stderr);
	mg_test_dump_threads();
	return false;
}

struct waiter {
	struct mg_migration *m;
	int err;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->err = mg_migration_wait(w->m);
	return NULL;
}

/* mg_migration_wait() under watch(), its result kept for
 * check_migrations(); -ETIMEDOUT if the run hung. */
static int
wait_mig(struct run *r, struct mg_migration *m)
{
	struct waiter *wt = malloc(sizeof(*wt));
	unsigned i;
	int err;

	if (!wt) {
		FAIL(r, "out of memory in the test");
		return -ENOMEM;
	}
	*wt = (struct waiter){m, 0};
	if (!watch(r, waiter_main, wt)) {
		keep(wt); /* its thread still has it */
		return -ETIMEDOUT;
	}
	err = wt->err;
	free(wt);
	for (i = 0; i < r->nmig && r->mig[i] != m; i++)
		;
	if (i < r->nmig && !r->mig_waited[i]) {
		r->mig_waited[i] = true;
		r->mig_wait[i] = err;
	}
	return err;
}

static bool
owners_equal(struct run *r, const uint16_t *a, const uint16_t *b,
	     const char *what)
{
	uint32_t i;

	for (i = 0; i < r->nbins; i++)
		if (a[i] != b[i]) {
			FAIL(r, "%s: owner of bin %u is %u, expected %u", what,
			     i, a[i], b[i]);
			return false;
		}
	return true;
}

/* ---- one run ------------------------------------------------------------- */

static int
cmp_known(const void *a, const void *b)
{
	const struct known *x = a, *y = b;

	if (x->bin != y->bin)
		return x->bin < y->bin ? -1 : 1;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return 0;
}

/* Owner of @b at @t by the known moves (sorted, [lo, hi) are b's). */
static uint32_t
owner_at(const struct run *r, uint32_t b, size_t lo, size_t hi, uint64_t t)
{
	uint32_t w = b % r->workers; /* the router's first version */

	for (; lo < hi && r->known[lo].time <= t; lo++)
		w = r->known[lo].worker;
	return w;
}

static uint8_t
call_at(const struct run *r, unsigned w, uint32_t b, uint64_t t)
{
	return r->calls[((size_t)w * r->nbins + b) * r->ntimes + t];
}

static const char *
call_kind(uint8_t v)
{
	if ((v & CALL_IN) && (v & CALL_TM))
		return "records + timers";
	return v & CALL_IN ? "records" : v & CALL_TM ? "timers" : "nothing";
}

static void
show_dup(const struct run *r, uint32_t b, uint64_t t, unsigned n)
{
	unsigned w;

	printf("# [%s] bin %u time %llu called %u times:", r->name, b,
	       (unsigned long long)t, n);
	for (w = 0; w < r->workers; w++) {
		uint8_t v = call_at(r, w, b, t);

		if (v & CALL_N)
			printf(" worker %u x%u (%s)", w, v & CALL_N,
			       call_kind(v));
	}
	printf("\n");
}

/*
 * Calls at most once per (bin, time), on the configured owner.  After the
 * last record the old owner of a bin moved later than that may fire its
 * timers itself (nothing can change them any more), so a call at t belongs
 * to the owner at min(t, last_epoch).
 */
static void
check_calls(struct run *r)
{
	uint64_t dups = 0, misowned = 0, jumps = 0, calls = 0, t;
	unsigned w;
	size_t k = 0, lo, hi;
	uint32_t b;

	if (r->nknown)
		qsort(r->known, r->nknown, sizeof(*r->known), cmp_known);
	for (b = 0; b < r->nbins; b++) {
		uint32_t changes = 0;
		int last_w = -1;

		for (lo = k; k < r->nknown && r->known[k].bin == b; k++)
			;
		hi = k;
		for (t = 0; t < r->ntimes; t++) {
			uint64_t te = t < r->last_epoch ? t : r->last_epoch;
			uint32_t exp = owner_at(r, b, lo, hi, te);
			unsigned n = 0;

			for (w = 0; w < r->workers; w++) {
				uint8_t v = call_at(r, w, b, t);

				if (!(v & CALL_N))
					continue;
				n += v & CALL_N;
				if (r->unknown[b] && (v & CALL_IN)) {
					changes += last_w >= 0 &&
						   (unsigned)last_w != w;
					last_w = (int)w;
				}
				if (r->unknown[b] || w == exp)
					continue;
				if (misowned++ < SHOW)
					printf("# [%s] bin %u time %llu ran on "
					       "worker %u (%s), its owner then "
					       "is %u\n",
					       r->name, b,
					       (unsigned long long)t, w,
					       call_kind(v), exp);
			}
			calls += n;
			if (n > 1 && dups++ < SHOW)
				show_dup(r, b, t, n);
		}
		if (r->unknown[b] && changes > r->moves_of[b] && jumps++ < SHOW)
			printf("# [%s] bin %u changed owner %u times, %u "
			       "moves submitted\n",
			       r->name, b, changes, r->moves_of[b]);
	}
	if (dups)
		FAIL(r, "%llu (bin, time) pairs called more than once",
		     (unsigned long long)dups);
	if (misowned)
		FAIL(r,
		     "%llu calls on a worker that does not own the bin at "
		     "that time",
		     (unsigned long long)misowned);
	if (jumps)
		FAIL(r, "%llu bins changed owner more often than moved",
		     (unsigned long long)jumps);
	if (!calls)
		FAIL(r, "no operator call recorded");
}

static void
check_outputs(struct run *r)
{
	struct mg_test_model_fp *ref =
		mg_test_model_reference(&r->m, r->ntimes);
	uint64_t t, bad = 0, shown = 0, total = 0;
	unsigned w;

	if (!ref) {
		FAIL(r, "reference: out of memory or ntimes too small");
		return;
	}
	for (t = 0; t < r->ntimes; t++) {
		struct mg_test_model_fp got = {0, 0};

		for (w = 0; w < r->workers; w++) {
			got.count += r->fp[w * r->ntimes + t].count;
			got.sum += r->fp[w * r->ntimes + t].sum;
		}
		total += got.count;
		if (got.count == ref[t].count && got.sum == ref[t].sum)
			continue;
		bad++;
		if (shown++ < SHOW)
			printf("# [%s] time %llu: %llu outputs (fingerprint "
			       "%016llx), reference %llu (%016llx)\n",
			       r->name, (unsigned long long)t,
			       (unsigned long long)got.count,
			       (unsigned long long)got.sum,
			       (unsigned long long)ref[t].count,
			       (unsigned long long)ref[t].sum);
	}
	if (bad)
		FAIL(r, "%llu of %llu timestamps differ from the reference",
		     (unsigned long long)bad, (unsigned long long)r->ntimes);
	free(ref);
}

/* A run that took much longer than its schedule: records queued. */
static bool
overloaded(const struct run *r)
{
	return r->wall_s * 1e9 > 1.5 * (double)r->duration_ns + 30e6;
}

/* Records lagged well behind the clock: the run was overloaded, or its
 * latency exceeded a few epochs. */
static bool
lagged(const struct run *r)
{
	return overloaded(r) || r->st.p99 > 5 * MS;
}

/*
 * Every migration done with every bin moved, and mg_migration_wait() said
 * so.  Two excuses, both -ECANCELED ("the run ended first"): a migration
 * submitted after the workers left cannot complete (mg_migrate() accepts
 * it until the join) -- taken as such when no operator ran after it was
 * submitted; and a fluid or batched migration issues each step after
 * the previous one completed, at the control frontier (wall clock + lead),
 * and a step completes once the *data* reaches its time; when records lag
 * the clock by L, each step takes ~L, and with L large the data ends
 * before the later steps, which then complete only as the sources close
 * and the next one is issued after the workers have left.  Tolerated, and
 * said, for lagged runs only.
 */
static void
check_migrations(struct run *r)
{
	struct mg_migration_progress p;
	unsigned i;

	for (i = 0; i < r->nmig; i++) {
		bool by_step = strcmp(r->mig_what[i], "fluid") == 0 ||
			       strcmp(r->mig_what[i], "batched") == 0;
		int w = r->mig_wait[i];

		mg_migration_progress(r->mig[i], &p);
		printf("#   migration %u (%s): %u/%u bins in %u/%u steps from "
		       "time %llu, %s (%.2f ms after its first step)%s%s\n",
		       i, r->mig_what[i], p.bins_moved, p.bins, p.steps_done,
		       p.steps, (unsigned long long)p.first_time,
		       p.done ? "done" : "NOT DONE",
		       p.done && p.end_ns > p.start_ns
			       ? (double)(p.end_ns - p.start_ns) / 1e6
			       : 0.0,
		       w ? ", wait: " : "", w ? mg_strerror(w) : "");
		if (w == -ECANCELED && p.done && p.bins_moved == p.bins) {
			FAIL(r,
			     "migration %u (%s): mg_migration_wait returned "
			     "-ECANCELED, yet the migration completed (all "
			     "%u bins moved, done)",
			     i, r->mig_what[i], p.bins);
			continue;
		}
		if (w == -ECANCELED && !p.done &&
		    progress(r) == r->mig_calls[i]) {
			printf("#   note: migration %u (%s) was submitted "
			       "as the run ended (no operator ran after "
			       "it): tolerated\n",
			       i, r->mig_what[i]);
			continue;
		}
		if (w == -ECANCELED && !p.done && by_step && lagged(r)) {
			printf("#   note: migration %u (%s) could not finish "
			       "before its lagged run ended (%.0f ms for a "
			       "%.0f ms schedule, latency p99 %.1f ms): "
			       "tolerated\n",
			       i, r->mig_what[i], r->wall_s * 1e3,
			       (double)r->duration_ns / 1e6,
			       (double)r->st.p99 / 1e6);
			continue;
		}
		if (w)
			FAIL(r,
			     "migration %u (%s): mg_migration_wait returned "
			     "%d (%s)",
			     i, r->mig_what[i], w, mg_strerror(w));
		if (!p.done || p.bins_moved != p.bins ||
		    p.steps_done != p.steps)
			FAIL(r,
			     "migration %u (%s) incomplete: done %d, bins "
			     "%u/%u, steps %u/%u",
			     i, r->mig_what[i], p.done, p.bins_moved, p.bins,
			     p.steps_done, p.steps);
	}
}

struct joiner {
	struct mg_dataflow *df;
	struct mg_run_stats st;
	int err;
};

static void *
joiner_main(void *arg)
{
	struct joiner *j = arg;

	j->err = mg_dataflow_join(j->df, &j->st);
	return NULL;
}

/* Wait for every migration not waited for yet, then join the run; false
 * if it hung (then the dataflow stays allocated for good: its workers may
 * still touch it). */
static bool
finish(struct run *r, struct mg_dataflow *df)
{
	struct joiner *j = malloc(sizeof(*j));
	unsigned i;

	if (!j) {
		FAIL(r, "out of memory in the test");
		return false;
	}
	for (i = 0; i < r->nmig && !r->hung; i++)
		if (!r->mig_waited[i])
			wait_mig(r, r->mig[i]);
	*j = (struct joiner){.df = df};
	if (!watch(r, joiner_main, j)) {
		keep(j); /* its thread still has it */
		return false;
	}
	r->join_err = j->err;
	r->st = j->st;
	free(j);
	return true;
}

/* Build, run with the hooks, check everything; returns the failed checks. */
static unsigned
run_one(struct run *r)
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
		.duration_ns = r->duration_ns,
	};
	struct mg_stateful_config op_cfg = {
		.ninputs = r->binary ? 2 : 1,
		.hash = {mg_test_model_hash, mg_test_model_hash},
		.out_record_size = sizeof(struct mg_test_model_out),
		.state_size = sizeof(struct root),
		.timer_record_size =
			r->timers ? sizeof(struct mg_test_model_rec) : 0,
		.fn = op,
		.ctx = r,
		.prefetch = prefetch,
	};
	struct mg_stream *s0, *s1 = NULL, *out;
	struct mg_dataflow *df;
	uint64_t n0, n1 = 0, overflow = 0, order = 0, apply = 0;
	unsigned w, i;
	double t0;
	int err;

	if (!r->delay)
		r->delay = TIMER_DELAY;
	r->nbins = 1u << r->bins_log2;
	r->ntimes = r->duration_ns / EPOCH_NS + 2 + r->delay;
	r->m = (struct mg_test_model){
		.keys = r->keys,
		.rate = {r->rate[0], r->rate[1]},
		.duration_ns = r->duration_ns,
		.epoch_ns = EPOCH_NS,
		.binary = r->binary,
		.timers = r->timers,
		.delay = r->delay,
	};
	n0 = mg_test_model_records(r->rate[0], r->duration_ns);
	r->last_epoch = mg_test_model_epoch(&r->m, r->rate[0], n0 - 1);
	if (r->binary) {
		n1 = mg_test_model_records(r->rate[1], r->duration_ns);
		if (mg_test_model_epoch(&r->m, r->rate[1], n1 - 1) >
		    r->last_epoch)
			r->last_epoch =
				mg_test_model_epoch(&r->m, r->rate[1], n1 - 1);
	}
	r->fp = calloc(r->workers * r->ntimes, sizeof(*r->fp));
	r->calls = calloc((size_t)r->workers * r->nbins * r->ntimes, 1);
	r->moves_of = calloc(r->nbins, sizeof(*r->moves_of));
	r->unknown = calloc(r->nbins, sizeof(*r->unknown));
	assert_non_null(r->fp);
	assert_non_null(r->calls);
	assert_non_null(r->moves_of);
	assert_non_null(r->unknown);
	assert_true(r->workers <= MAX_W);
	memset(r->ws, 0, sizeof(r->ws));
	atomic_store_explicit(&r->prefetch_errors, 0, memory_order_relaxed);
	for (w = 0; w < MAX_W; w++)
		atomic_init(&r->ws[w].calls, 0);
	r->nmig = 0;
	r->nknown = 0;
	r->fails = 0;
	r->join_err = 0;
	memset(&r->st, 0, sizeof(r->st));

	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	r->df = df;
	sc.rate = r->rate[0];
	sc.gen = mg_test_model_gen0;
	sc.ctx = &r->m;
	s0 = mg_source(df, &sc);
	assert_non_null(s0);
	if (r->binary) {
		sc.rate = r->rate[1];
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

	case_name = r->name;
	alarm(WATCHDOG_S);
	if (r->before_start)
		r->before_start(r, df);
	t0 = now_s();
	r->started = now_s();
	err = mg_dataflow_start(df, NULL, NULL);
	expect_err(r, "mg_dataflow_start", err, 0);
	if (!err) {
		if (r->drive)
			r->drive(r, df);
		if (r->hung || !finish(r, df)) {
			check_migrations(r); /* shows where it stands */
			printf("# FAILED %s: W=%u bins=2^%u, the run hung; its "
			       "dataflow is leaked\n",
			       r->name, r->workers, r->bins_log2);
			return r->fails;
		}
		if (r->expect_join != INT32_MIN)
			expect_err(r, "mg_dataflow_join", r->join_err,
				   r->expect_join);
		r->wall_s = now_s() - t0;
		if (r->after_join)
			r->after_join(r, df);
		check_migrations(r);
	}
	mg_dataflow_destroy(df);
	alarm(0);

	for (w = 0; w < r->workers; w++) {
		overflow += r->ws[w].overflow;
		order += r->ws[w].order_errors;
		apply += r->ws[w].apply_errors;
	}
	if (!err && r->join_err == 0) {
		if (r->st.records != n0 + n1)
			FAIL(r, "%llu records generated, schedule has %llu",
			     (unsigned long long)r->st.records,
			     (unsigned long long)(n0 + n1));
		check_outputs(r);
		if (!r->outputs_only)
			check_calls(r);
	}
	if (overflow)
		FAIL(r, "%llu calls or outputs past the last time",
		     (unsigned long long)overflow);
	if (order)
		FAIL(r, "%llu calls of a bin not in increasing time order",
		     (unsigned long long)order);
	if (atomic_load_explicit(&r->prefetch_errors, memory_order_relaxed))
		FAIL(r, "%llu prefetch hints with another bin's state",
		     (unsigned long long)atomic_load_explicit(
			     &r->prefetch_errors, memory_order_relaxed));
	if (apply)
		FAIL(r,
		     "the operator failed %llu times (mg_schedule or a map "
		     "insert)",
		     (unsigned long long)apply);
	if (!r->quiet || r->fails)
		printf("# %s %s: W=%u bins=2^%u ring=%u batch=%u rate=%.0f%s, "
		       "timers %s%.0u, %llu records, schedule %.0f ms, run "
		       "%.0f ms, p99 %.2f ms, %u migrations, %zu timed moves\n",
		       r->fails ? "FAILED" : "ok", r->name, r->workers,
		       r->bins_log2, r->ring, r->batch, r->rate[0],
		       r->binary ? " binary" : "", r->timers ? "+" : "off",
		       r->timers ? r->delay : 0,
		       (unsigned long long)r->st.records,
		       (double)r->duration_ns / 1e6, r->wall_s * 1e3,
		       (double)r->st.p99 / 1e6, r->nmig, r->nknown);

	for (i = 0; i < r->nmig; i++)
		free(r->mig_bins[i]);
	free(r->fp);
	free(r->calls);
	free(r->moves_of);
	free(r->unknown);
	free(r->known);
	r->known = NULL;
	r->cap_known = 0;
	return r->fails;
}

/*
 * run_one() on a copy of @r on the heap: the callbacks of a run that hangs
 * keep pointing at it, so it must outlive the caller's frame (it is then
 * leaked).  Results are copied back.
 */
static unsigned
run_case(struct run *r)
{
	struct run *h = malloc(sizeof(*h));
	unsigned fails;

	assert_non_null(h);
	memcpy(h, r, sizeof(*h));
	fails = run_one(h);
	memcpy(r, h, sizeof(*r));
	if (h->hung)
		keep(h); /* the hung run's callbacks point here */
	else
		free(h);
	return fails;
}

/* ---- 1. random migrations ------------------------------------------------ */

static void
drive_random(struct run *r, struct mg_dataflow *df)
{
	unsigned W = r->workers, n = 1 + (unsigned)rnd(r, 3), k;
	uint16_t *owners = malloc(sizeof(*owners) * r->nbins);
	uint16_t *target = malloc(sizeof(*target) * r->nbins);
	uint32_t *cand = malloc(sizeof(*cand) * r->nbins);

	if (!owners || !target || !cand) {
		FAIL(r, "out of memory in the test");
		goto out;
	}
	for (k = 0; k < n; k++) {
		enum mg_strategy s = (enum mg_strategy)rnd(r, 3);
		uint32_t b, nc = 0, want, i;
		uint64_t ahead = rnd(r, 21) * MS, gap = rnd(r, 4), at;
		char what[64];
		int err;

		sleep_ns(rnd(r, 4 * MS));
		for (b = 0; b < r->nbins; b++)
			if (!in_flight(r, b))
				cand[nc++] = b;
		if (k && (rnd(r, 2) || nc == 0)) {
			/* this one after the others (else: concurrently,
			 * with the bins they leave alone) */
			for (i = 0, err = 0; i < r->nmig && !err; i++)
				err = wait_mig(r, r->mig[i]);
			if (err) { /* the run is over (or hung) */
				printf("#   waiting for migration %u: %s; no "
				       "more submissions\n",
				       i - 1, mg_strerror(err));
				break;
			}
			for (nc = 0, b = 0; b < r->nbins; b++)
				if (!in_flight(r, b))
					cand[nc++] = b;
		}
		mg_dataflow_owners(df, owners);
		memcpy(target, owners, sizeof(*target) * r->nbins);
		switch (s) {
		case MG_ALL_AT_ONCE:
			want = (uint32_t[]){1, 1 + (uint32_t)rnd(r, nc + 1),
					    nc}[rnd(r, 3)];
			break;
		case MG_FLUID: /* one step each, ~2.5 ms apiece */
			want = 1 + (uint32_t)rnd(r, 6);
			break;
		default:
			want = 1 + (uint32_t)rnd(r, 8);
			break;
		}
		want = want < nc ? want : nc;
		for (i = 0; i < want && W > 1; i++) { /* partial shuffle */
			uint32_t j = i + (uint32_t)rnd(r, nc - i), x = cand[j];

			cand[j] = cand[i];
			cand[i] = x;
			target[x] =
				(uint16_t)((owners[x] + 1 + rnd(r, W - 1)) % W);
		}
		at = mg_dataflow_time_ahead(df, ahead);
		err = submit(r, df, s, target, at, gap, NULL);
		if (err == -EINVAL) {
			/* the control frontier passed the time meanwhile (a
			 * loaded machine preempted this thread): allowed;
			 * try once more, further ahead */
			printf("#   note: time %llu refused, the frontier "
			       "moved; again 10 ms later\n",
			       (unsigned long long)at);
			ahead += 10 * MS;
			at = mg_dataflow_time_ahead(df, ahead);
			err = submit(r, df, s, target, at, gap, NULL);
		}
		snprintf(what, sizeof(what), "mg_migrate(%s, %u bins)",
			 mg_strategy_name(s), W > 1 ? want : 0);
		if (err == -EINVAL && !mg_dataflow_accepts_migrations(df)) {
			/* every source may have closed: then the engine
			 * takes no more migrations (mg_migrate: -EINVAL) */
			printf("#   note: %s refused after the schedule ended; "
			       "no more submissions\n",
			       what);
			break;
		}
		expect_err(r, what, err, 0);
		printf("#   submitted %s at time %llu (+%llu ms), gap %llu\n",
		       what, (unsigned long long)at,
		       (unsigned long long)(ahead / MS),
		       (unsigned long long)gap);
	}
out:
	free(owners);
	free(target);
	free(cand);
}

static void
test_random_migrations(void **state)
{
	uint64_t rounds = mg_test_env_u64("S_ROUNDS", 12);
	uint64_t rng = seed_of(1), i;
	unsigned fails = 0;
	char names[64][32];

	(void)state;
	for (i = 0; i < rounds; i++) {
		struct run r = {
			.drive = drive_random, .lenient = true, .rate = {0, 0}};

		snprintf(names[i % 64], sizeof(names[0]), "random %llu",
			 (unsigned long long)i);
		r.name = names[i % 64];
		r.rng = mg_test_rand(&rng);
		r.workers = 1 + (unsigned)(mg_test_rand(&rng) % 4);
		r.bins_log2 = 4 + (unsigned)(mg_test_rand(&rng) % 7);
		r.ring = 2u << (mg_test_rand(&rng) % 6);
		r.batch = 1 + (uint32_t)(mg_test_rand(&rng) % 64);
		/* the first four rounds cover every combination */
		r.timers = i < 4 ? (i & 1) : mg_test_rand(&rng) & 1;
		r.binary = i < 4 ? (i >> 1) & 1 : mg_test_rand(&rng) % 3 == 0;
		r.keys = 20 + (unsigned)(mg_test_rand(&rng) % 2000);
		r.rate[0] = 50000 + (double)(mg_test_rand(&rng) % 250000);
		r.rate[1] = 20000 + (double)(mg_test_rand(&rng) % 80000);
		r.duration_ns = 120 * MS;
		fails += run_case(&r) != 0;
	}
	printf("# random: %u of %llu rounds failed (MG_SEED=%llu)\n", fails,
	       (unsigned long long)rounds, (unsigned long long)seed);
	assert_int_equal(fails, 0);
}

/* ---- 2. chains in one plan ----------------------------------------------- */

struct chain {
	unsigned len; /* workers visited after the first: B, C, (A) */
	bool back;    /* the last hop returns to A */
};

static struct chain chain_arg;

static void
drive_chain(struct run *r, struct mg_dataflow *df)
{
	unsigned W = r->workers, i;
	uint16_t *owners = malloc(sizeof(*owners) * r->nbins);
	uint32_t *keys = calloc(r->nbins, sizeof(*keys));
	struct mg_plan *p = NULL;
	uint32_t b = 0;
	uint64_t t, k;
	int err;

	if (!owners || !keys) {
		FAIL(r, "out of memory in the test");
		free(owners);
		free(keys);
		return;
	}
	/* the bin with the most keys: it has records in every epoch, so
	 * each hop has work (a hop without records cannot show anything) */
	for (k = 0; k < r->keys; k++) {
		struct mg_test_model_rec x = {k, 0};

		keys[mg_bin_of(mg_test_model_hash(NULL, &x), r->bins_log2)]++;
	}
	for (i = 1; i < r->nbins; i++)
		b = keys[i] > keys[b] ? i : b;
	free(keys);
	sleep_ns(2 * MS);
	mg_dataflow_owners(df, owners);
	err = mg_plan_create(&p, r->nbins, W, owners);
	expect_err(r, "mg_plan_create", err, 0);
	t = mg_dataflow_time_ahead(df, (5 + rnd(r, 5)) * MS);
	printf("#   bin %u: worker %u", b, owners[b]);
	for (i = 0; !err && i < chain_arg.len; i++) {
		unsigned to = chain_arg.back && i + 1 == chain_arg.len
				      ? owners[b]
				      : (owners[b] + i + 1) % W;
		struct mg_move mv = {b, to};

		err = mg_plan_add_step(p, t + i, &mv, 1);
		expect_err(r, "mg_plan_add_step", err, 0);
		printf(" -> %u at %llu", to, (unsigned long long)(t + i));
	}
	printf("\n");
	if (!err)
		expect_err(r, "mg_migrate_plan(chain)",
			   submit_plan(r, df, p, NULL), 0);
	mg_plan_destroy(p);
	free(owners);
}

static void
test_chains(void **state)
{
	static const struct {
		const char *name;
		unsigned workers, len;
		bool back, binary, timers;
	} c[] = {
		{"chain A->B->C", 3, 2, false, false, false},
		{"chain A->B->C->A", 3, 3, true, false, false},
		{"chain A->B->A", 2, 2, true, false, false},
		{"chain A->B->C->A binary timers", 4, 3, true, true, true},
		{"chain A->B->C->D timers", 4, 3, false, false, true},
	};
	uint64_t rng = seed_of(2);
	unsigned fails = 0;
	size_t i;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(c); i++) {
		struct run r = {
			.name = c[i].name,
			.workers = c[i].workers,
			.bins_log2 = 4,
			.keys = 64,
			.ring = 16,
			.batch = 16,
			.rate = {400000, 100000},
			.duration_ns = 60 * MS,
			.binary = c[i].binary,
			.timers = c[i].timers,
			.drive = drive_chain,
			.lenient = true,
			.rng = mg_test_rand(&rng),
		};

		chain_arg = (struct chain){c[i].len, c[i].back};
		fails += run_case(&r) != 0;
	}
	assert_int_equal(fails, 0);
}

/* ---- 3. all bins in one step --------------------------------------------- */

static void
drive_all_bins(struct run *r, struct mg_dataflow *df)
{
	unsigned W = r->workers;
	uint16_t *owners = malloc(sizeof(*owners) * r->nbins);
	uint16_t *target = malloc(sizeof(*target) * r->nbins);
	struct mg_move *mv = malloc(sizeof(*mv) * r->nbins);
	struct mg_migration *m = NULL;
	struct mg_plan *p = NULL;
	uint32_t b;
	uint64_t at;
	int err;

	if (!owners || !target || !mv) {
		FAIL(r, "out of memory in the test");
		goto out;
	}
	sleep_ns(2 * MS);
	/* every bin to the next worker, with mg_migrate ... */
	mg_dataflow_owners(df, owners);
	for (b = 0; b < r->nbins; b++)
		target[b] = (uint16_t)((owners[b] + 1) % W);
	at = mg_dataflow_time_ahead(df, (5 + rnd(r, 5)) * MS);
	err = submit(r, df, MG_ALL_AT_ONCE, target, at, 0, &m);
	expect_err(r, "mg_migrate(all bins)", err, 0);
	if (err)
		goto out;
	wait_mig(r, m);
	/* ... then again, as a one-step plan */
	mg_dataflow_owners(df, owners);
	owners_equal(r, owners, target, "owners after the rotation");
	expect_err(r, "mg_plan_create", mg_plan_create(&p, r->nbins, W, owners),
		   0);
	for (b = 0; b < r->nbins; b++)
		mv[b] = (struct mg_move){b, (owners[b] + 1) % W};
	at = mg_dataflow_time_ahead(df, (5 + rnd(r, 5)) * MS);
	if (p) {
		expect_err(r, "mg_plan_add_step(all bins)",
			   mg_plan_add_step(p, at, mv, r->nbins), 0);
		expect_err(r, "mg_migrate_plan(all bins)",
			   submit_plan(r, df, p, NULL), 0);
	}
out:
	mg_plan_destroy(p);
	free(owners);
	free(target);
	free(mv);
}

static void
test_all_bins_one_step(void **state)
{
	uint64_t rng = seed_of(3);
	unsigned fails = 0, W;
	char names[5][32];

	(void)state;
	for (W = 2; W <= 4; W++) {
		struct run r = {
			.workers = W,
			.keys = 500,
			.ring = 8,
			.batch = 32,
			.rate = {200000, 50000},
			.duration_ns = 60 * MS,
			.timers = W != 3,
			.binary = W == 4,
			.drive = drive_all_bins,
			.lenient = true,
			.rng = mg_test_rand(&rng),
		};

		r.bins_log2 = 4 + (unsigned)(mg_test_rand(&rng) % 5);
		snprintf(names[W], sizeof(names[W]), "all bins W=%u", W);
		r.name = names[W];
		fails += run_case(&r) != 0;
	}
	assert_int_equal(fails, 0);
}

/* ---- 4. overload --------------------------------------------------------- */

/*
 * Everything is submitted up front, for times inside the data: the control
 * frontier follows the wall clock, so under overload anything submitted
 * later would fall after the last record.
 */
static void
drive_overload(struct run *r, struct mg_dataflow *df)
{
	unsigned W = r->workers;
	uint32_t nb = r->nbins, b, n = 0;
	uint16_t *start = malloc(sizeof(*start) * nb);
	uint16_t *target = malloc(sizeof(*target) * nb);
	struct mg_move *mv = malloc(sizeof(*mv) * nb);
	struct mg_move *back = malloc(sizeof(*back) * nb);
	struct mg_plan *p = NULL;
	uint64_t t1;
	int err;

	if (!start || !target || !mv || !back) {
		FAIL(r, "out of memory in the test");
		goto out;
	}
	sleep_ns(2 * MS);
	mg_dataflow_owners(df, start);
	/* the paper's target, all at once ... */
	mg_plan_half_of_half(start, nb, W, target);
	t1 = mg_dataflow_time_ahead(df, 3 * MS);
	err = submit(r, df, MG_ALL_AT_ONCE, target, t1, 0, NULL);
	expect_err(r, "mg_migrate(half of half)", err, 0);
	/* ... and a plan moving the other bins in two steps (no bin twice:
	 * chains have their own case) */
	expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, start), 0);
	for (b = 0; b < nb && p; b++)
		if (target[b] == start[b]) {
			struct mg_move x = {b, (start[b] + 1) % W};

			if (n % 2)
				mv[n / 2] = x;
			else
				back[n / 2] = x;
			n++;
		}
	if (p && n > 1) {
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p, t1 + 20, back, (n + 1) / 2), 0);
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p, t1 + 60, mv, n / 2), 0);
		expect_err(r, "mg_migrate_plan(two steps)",
			   submit_plan(r, df, p, NULL), 0);
	}
	printf("#   half of half at %llu; %u more bins at %llu and %llu; "
	       "last record at %llu\n",
	       (unsigned long long)t1, n, (unsigned long long)(t1 + 20),
	       (unsigned long long)(t1 + 60),
	       (unsigned long long)r->last_epoch);
	if (t1 + 60 >= r->last_epoch)
		FAIL(r, "the test's moves fall after the data: lengthen it");
out:
	mg_plan_destroy(p);
	free(start);
	free(target);
	free(mv);
	free(back);
}

static void
test_overload(void **state)
{
	unsigned fails = 0, over = 0, i;

	(void)state;
	for (i = 0; i < 2; i++) { /* without timers, then with */
		struct run r = {
			.name = i ? "overload timers" : "overload",
			.workers = 2,
			.bins_log2 = 6,
			.keys = 1000,
			.ring = 2,
			.batch = 1,
			.duration_ns = 20 * MS,
			.timers = i == 1,
			.drive = drive_overload,
			.lenient = true,
		};

		r.rate[0] = (double)mg_test_env_u64("S_OVERLOAD_RATE", 1000000);
		fails += run_case(&r) != 0;
		over += overloaded(&r);
		printf("# %s: run %.0f ms for a %.0f ms schedule (%.1fx), "
		       "latency p99 %.1f ms, max %.1f ms\n",
		       r.name, r.wall_s * 1e3, (double)r.duration_ns / 1e6,
		       r.wall_s * 1e9 / (double)r.duration_ns,
		       (double)r.st.p99 / 1e6, (double)r.st.max / 1e6);
	}
	assert_int_equal(fails, 0);
	assert_int_equal(over, 2); /* records did queue */
}

/* ---- 5. at the control frontier ------------------------------------------ */

static void
drive_frontier(struct run *r, struct mg_dataflow *df)
{
	uint32_t nb = r->nbins, pace = nb - 1, bin;
	uint16_t *owners = malloc(sizeof(*owners) * nb);
	uint16_t *after = malloc(sizeof(*after) * nb);
	uint16_t *target = malloc(sizeof(*target) * nb);
	struct mg_migration *m = NULL;
	unsigned accepted = 0, refused = 0;
	uint64_t t0, base, d, nd, low_ok = 0, high_no = 0;
	bool seen_refusal = false;
	int err;

	if (!owners || !target || !after) {
		FAIL(r, "out of memory in the test");
		goto out;
	}
	sleep_ns(3 * MS + rnd(r, 2 * MS));
	/* A move that completed proves the control frontier passed its time
	 * (the old owner released it only once its input frontier did). */
	mg_dataflow_owners(df, owners);
	memcpy(target, owners, sizeof(*target) * nb);
	target[pace] = (uint16_t)((owners[pace] + 1) % r->workers);
	t0 = mg_dataflow_time_ahead(df, 3 * MS);
	r->lenient = true; /* an ordinary move: it may be shifted */
	err = submit(r, df, MG_ALL_AT_ONCE, target, t0, 0, &m);
	expect_err(r, "mg_migrate(pace)", err, 0);
	r->lenient = false;
	if (err || wait_mig(r, m))
		goto out;
	/* base, base - 1, ... down to t0 - 1: times decrease while the
	 * frontier only grows, so once one is refused every later one must
	 * be; t0 - 1 is surely in the past.  Each moves its own bin. */
	base = mg_dataflow_time_ahead(df, 0);
	nd = base - t0 + 2;
	for (d = 0; d < nd; d++) {
		/* the first 48 times, then straight to t0 - 1 (a loaded
		 * machine can put thousands of epochs in between) */
		uint64_t at = d < 48 || d + 1 == nd ? base - d : 0;

		if (!at)
			continue;
		bin = (uint32_t)(d < 48 ? d : 48);
		mg_dataflow_owners(df, owners);
		memcpy(target, owners, sizeof(*target) * nb);
		target[bin] = (uint16_t)((owners[bin] + 1) % r->workers);
		err = submit(r, df, MG_ALL_AT_ONCE, target, at, 0, NULL);
		if (err == 0) {
			accepted++;
			low_ok = at;
			if (seen_refusal)
				FAIL(r,
				     "time %llu accepted after %llu was "
				     "refused",
				     (unsigned long long)at,
				     (unsigned long long)high_no);
			if (at < t0)
				FAIL(r,
				     "time %llu accepted, but a move at "
				     "%llu has completed: it is in the past",
				     (unsigned long long)at,
				     (unsigned long long)t0);
		} else if (err == -ETIME) {
			refused++;
			if (!seen_refusal)
				high_no = at;
			seen_refusal = true;
			mg_dataflow_owners(df, after);
			owners_equal(r, after, owners,
				     "owners after a refused migration");
		} else if (err == -EINVAL &&
			   !mg_dataflow_accepts_migrations(df)) {
			printf("#   note: the run stopped taking migrations "
			       "(a slow machine); %llu times tried\n",
			       (unsigned long long)d);
			break;
		} else {
			expect_err(r, "mg_migrate(near the frontier)", err, 0);
		}
	}
	printf("#   time_ahead(df, 0) = %llu, a move at %llu completed: "
	       "%u accepted (lowest %llu), %u refused (highest %llu)\n",
	       (unsigned long long)base, (unsigned long long)t0, accepted,
	       (unsigned long long)low_ok, refused,
	       (unsigned long long)high_no);
	if (seen_refusal && high_no == base)
		printf("#   note: even mg_dataflow_time_ahead(df, 0) was "
		       "refused (the control frontier moved meanwhile)\n");
out:
	free(owners);
	free(after);
	free(target);
}

static void
test_near_frontier(void **state)
{
	uint64_t rng = seed_of(5);
	unsigned fails = 0, i;
	static const char *names[] = {"frontier W=2", "frontier W=3",
				      "frontier W=4 binary timers"};

	(void)state;
	for (i = 0; i < 3; i++) {
		struct run r = {
			.name = names[i],
			.workers = 2 + i,
			.bins_log2 = 7,
			.keys = 400,
			.ring = 16,
			.batch = 8,
			.rate = {400000, 100000},
			.duration_ns = 40 * MS,
			.timers = i == 2,
			.binary = i == 2,
			.drive = drive_frontier,
			.rng = mg_test_rand(&rng),
		};

		fails += run_case(&r) != 0;
	}
	assert_int_equal(fails, 0);
}

/* ---- 6. bad input -------------------------------------------------------- */

static void
before_bad(struct run *r, struct mg_dataflow *df)
{
	uint16_t *target = calloc(r->nbins, sizeof(*target));
	struct mg_plan *p = NULL;
	struct mg_move mv = {0, 1};

	if (!target) {
		FAIL(r, "out of memory in the test");
		return;
	}
	expect_err(r, "mg_migrate before start",
		   mg_migrate(df, MG_ALL_AT_ONCE, target, 100, 0, NULL),
		   -EINVAL);
	expect_err(r, "mg_plan_create",
		   mg_plan_create(&p, r->nbins, r->workers, NULL), 0);
	if (p) {
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p, 100, &mv, 1), 0);
		expect_err(r, "mg_migrate_plan before start",
			   mg_migrate_plan(df, p, NULL), -EINVAL);
	}
	mg_plan_destroy(p);
	free(target);
}

static void
after_bad(struct run *r, struct mg_dataflow *df)
{
	uint16_t *target = malloc(sizeof(*target) * r->nbins);
	uint16_t *owners = malloc(sizeof(*owners) * r->nbins);
	uint16_t *after = malloc(sizeof(*after) * r->nbins);
	struct mg_plan *p = NULL;
	struct mg_move mv;

	if (!target || !owners || !after) {
		FAIL(r, "out of memory in the test");
		goto out;
	}
	mg_dataflow_owners(df, owners);
	memcpy(target, owners, sizeof(*target) * r->nbins);
	target[1] = (uint16_t)((owners[1] + 1) % r->workers);
	expect_err(r, "mg_migrate after join",
		   mg_migrate(df, MG_ALL_AT_ONCE, target, r->ntimes + 1000, 0,
			      NULL),
		   -EINVAL);
	expect_err(r, "mg_plan_create",
		   mg_plan_create(&p, r->nbins, r->workers, owners), 0);
	mv = (struct mg_move){1, target[1]};
	if (p) {
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p, r->ntimes + 1000, &mv, 1), 0);
		expect_err(r, "mg_migrate_plan after join",
			   mg_migrate_plan(df, p, NULL), -EINVAL);
	}
	mg_dataflow_owners(df, after);
	owners_equal(r, after, owners, "owners after refusals after join");
out:
	mg_plan_destroy(p);
	free(target);
	free(owners);
	free(after);
}

/* Submit something bad; it must be refused with @want and change nothing. */
static void
refused(struct run *r, struct mg_dataflow *df, const char *what, int got,
	int want, const uint16_t *before)
{
	uint16_t *now = malloc(sizeof(*now) * r->nbins);

	/* A slow machine may have let the run end first: then nothing is
	 * taken any more, whatever the time. */
	if (got == -EINVAL && want == -ETIME &&
	    !mg_dataflow_accepts_migrations(df))
		printf("#   note: %s: the run stopped taking migrations "
		       "first\n",
		       what);
	else
		expect_err(r, what, got, want);
	if (!now) {
		FAIL(r, "out of memory in the test");
		return;
	}
	mg_dataflow_owners(df, now);
	owners_equal(r, now, before, what);
	free(now);
}

static void
drive_bad(struct run *r, struct mg_dataflow *df)
{
	unsigned W = r->workers;
	uint32_t nb = r->nbins, b;
	uint16_t *owners = malloc(sizeof(*owners) * nb);
	uint16_t *target = malloc(sizeof(*target) * nb);
	struct mg_plan *p = NULL;
	struct mg_migration *m = NULL;
	struct mg_move mv[2];
	uint32_t busy = 3, other = 6;
	uint64_t far, at;

	if (!owners || !target) {
		FAIL(r, "out of memory in the test");
		goto out;
	}
	sleep_ns(3 * MS);
	mg_dataflow_owners(df, owners);

	/* a target naming a worker that does not exist */
	memcpy(target, owners, sizeof(*target) * nb);
	target[5] = (uint16_t)W;
	refused(r, df, "mg_migrate to worker W",
		mg_migrate(df, MG_ALL_AT_ONCE, target,
			   mg_dataflow_time_ahead(df, 20 * MS), 0, &m),
		-EINVAL, owners);
	target[5] = UINT16_MAX;
	refused(r, df, "mg_migrate(fluid) to worker 65535",
		mg_migrate(df, MG_FLUID, target,
			   mg_dataflow_time_ahead(df, 20 * MS), 0, &m),
		-EINVAL, owners);
	refused(r, df, "mg_migrate(NULL target)",
		mg_migrate(df, MG_ALL_AT_ONCE, NULL,
			   mg_dataflow_time_ahead(df, 20 * MS), 0, &m),
		-EINVAL, owners);
	target[5] = (uint16_t)((owners[5] + 1) % W);
	refused(r, df, "mg_migrate(unknown strategy)",
		mg_migrate(df, (enum mg_strategy)7, target,
			   mg_dataflow_time_ahead(df, 20 * MS), 0, &m),
		-EINVAL, owners);
	/* not a time */
	refused(r, df, "mg_migrate at MG_TIME_LIMIT",
		mg_migrate(df, MG_ALL_AT_ONCE, target, MG_TIME_LIMIT, 0, &m),
		-EINVAL, owners);
	refused(r, df, "mg_migrate at MG_TIME_MAX",
		mg_migrate(df, MG_ALL_AT_ONCE, target, MG_TIME_MAX, 0, &m),
		-EINVAL, owners);
	/* times in the past: too late, a distinct error */
	refused(r, df, "mg_migrate at time 0",
		mg_migrate(df, MG_ALL_AT_ONCE, target, 0, 0, &m), -ETIME,
		owners);
	refused(r, df, "mg_migrate(batched) at time 1",
		mg_migrate(df, MG_BATCHED, target, 1, 0, &m), -ETIME, owners);
	/* a move that completed at t0 proves the control frontier passed
	 * t0, so t0 - 1 is in the past */
	memcpy(target, owners, sizeof(*target) * nb);
	target[7] = (uint16_t)((owners[7] + 1) % W);
	at = mg_dataflow_time_ahead(df, 5 * MS);
	expect_err(r, "mg_migrate(bin 7)",
		   submit(r, df, MG_ALL_AT_ONCE, target, at, 0, &m), 0);
	expect_err(r, "mg_migration_wait(bin 7)", wait_mig(r, m), 0);
	mg_dataflow_owners(df, owners);
	memcpy(target, owners, sizeof(*target) * nb);
	target[5] = (uint16_t)((owners[5] + 1) % W);
	refused(r, df, "mg_migrate one epoch before a completed move",
		mg_migrate(df, MG_ALL_AT_ONCE, target, at - 1, 0, &m), -ETIME,
		owners);
	refused(r, df, "mg_migrate(fluid) one epoch before a completed move",
		mg_migrate(df, MG_FLUID, target, at - 1, 0, &m), -ETIME,
		owners);

	/* plans: another bin count, another worker count, a past step */
	expect_err(r, "mg_plan_create", mg_plan_create(&p, nb * 2, W, NULL), 0);
	if (p) {
		mv[0] = (struct mg_move){nb + 1, (nb + 2) % W};
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p,
					    mg_dataflow_time_ahead(df, 20 * MS),
					    mv, 1),
			   0);
		refused(r, df, "mg_migrate_plan(2x the bins)",
			mg_migrate_plan(df, p, &m), -EINVAL, owners);
		mg_plan_destroy(p);
		p = NULL;
	}
	expect_err(r, "mg_plan_create", mg_plan_create(&p, nb / 2, W, NULL), 0);
	if (p) {
		mv[0] = (struct mg_move){1, 2 % W};
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p,
					    mg_dataflow_time_ahead(df, 20 * MS),
					    mv, 1),
			   0);
		refused(r, df, "mg_migrate_plan(half the bins)",
			mg_migrate_plan(df, p, &m), -EINVAL, owners);
		mg_plan_destroy(p);
		p = NULL;
	}
	expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W + 1, NULL), 0);
	if (p) {
		mv[0] = (struct mg_move){1, W};
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p,
					    mg_dataflow_time_ahead(df, 20 * MS),
					    mv, 1),
			   0);
		refused(r, df, "mg_migrate_plan(W + 1 workers)",
			mg_migrate_plan(df, p, &m), -EINVAL, owners);
		mg_plan_destroy(p);
		p = NULL;
	}
	expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, owners), 0);
	if (p) {
		mv[0] = (struct mg_move){1, (owners[1] + 1) % W};
		expect_err(r, "mg_plan_add_step", mg_plan_add_step(p, 2, mv, 1),
			   0);
		refused(r, df, "mg_migrate_plan(step at time 2)",
			mg_migrate_plan(df, p, &m), -ETIME, owners);
		mg_plan_destroy(p);
		p = NULL;
	}
	refused(r, df, "mg_migrate_plan(NULL)", mg_migrate_plan(df, NULL, &m),
		-EINVAL, owners);

	/* a bin in flight: a plan far ahead moves `busy` ... */
	far = mg_dataflow_time_ahead(df, 40 * MS);
	expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, owners), 0);
	if (p) {
		mv[0] = (struct mg_move){busy, (owners[busy] + 1) % W};
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p, far, mv, 1), 0);
		expect_err(r, "mg_migrate_plan(far ahead)",
			   submit_plan(r, df, p, NULL), 0);
		mg_plan_destroy(p);
		p = NULL;
	}
	mg_dataflow_owners(df, owners);
	if (owners[busy] != mv[0].worker)
		FAIL(r, "mg_dataflow_owners: bin %u at %u, its move goes to %u",
		     busy, owners[busy], mv[0].worker);
	/* ... so every other move of `busy` is refused, whole */
	memcpy(target, owners, sizeof(*target) * nb);
	target[busy] = (uint16_t)((owners[busy] + 1) % W);
	target[other] = (uint16_t)((owners[other] + 1) % W);
	for (b = 0; b < 3; b++)
		refused(r, df,
			(const char *[]){
				"mg_migrate(all-at-once) of a bin in flight",
				"mg_migrate(fluid) of a bin in flight",
				"mg_migrate(batched) of a bin in flight"}[b],
			mg_migrate(df, (enum mg_strategy)b, target,
				   mg_dataflow_time_ahead(df, 20 * MS), 0, &m),
			-EBUSY, owners);
	expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, owners), 0);
	if (p) {
		at = mg_dataflow_time_ahead(df, 20 * MS);
		mv[0] = (struct mg_move){other, target[other]};
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p, at, mv, 1), 0);
		mv[0] = (struct mg_move){busy, target[busy]};
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p, far + 10, mv, 1), 0);
		refused(r, df,
			"mg_migrate_plan(a free bin, then a bin in "
			"flight)",
			mg_migrate_plan(df, p, &m), -EBUSY, owners);
		mg_plan_destroy(p);
		p = NULL;
	}
	/* still accepting what is fine: `other` alone */
	memcpy(target, owners, sizeof(*target) * nb);
	target[other] = (uint16_t)((owners[other] + 1) % W);
	expect_err(r, "mg_migrate of a free bin next to one in flight",
		   submit(r, df, MG_ALL_AT_ONCE, target,
			  mg_dataflow_time_ahead(df, 20 * MS), 0, NULL),
		   0);
	mg_dataflow_owners(df, owners);
	owners_equal(r, owners, target, "owners after the accepted move");
out:
	mg_plan_destroy(p);
	free(owners);
	free(target);
}

static void
test_bad_input(void **state)
{
	struct run r = {
		.name = "bad input",
		.workers = 3,
		.bins_log2 = 5,
		.keys = 300,
		.ring = 16,
		.batch = 16,
		.rate = {200000},
		.duration_ns = 100 * MS,
		.before_start = before_bad,
		.drive = drive_bad,
		.after_join = after_bad,
	};

	(void)state;
	assert_int_equal(run_case(&r), 0);
}

/*
 * 6b. A fluid migration issues its steps one by one; its later moves are
 * submitted but not yet in the router.  A second migration touching one of
 * those bins must be refused with -EBUSY (mg_migrate(): "a bin has an
 * unfinished move"), and mg_dataflow_owners() must already show the fluid
 * migration's targets ("once all submitted moves are done").
 */
static void
drive_fluid_busy(struct run *r, struct mg_dataflow *df)
{
	uint32_t nb = r->nbins, b, moved[4] = {1, 4, 7, 10}, last = moved[3];
	uint16_t *owners = malloc(sizeof(*owners) * nb);
	uint16_t *target = malloc(sizeof(*target) * nb);
	uint16_t *now = malloc(sizeof(*now) * nb);
	struct mg_migration *m = NULL;
	int err;

	if (!owners || !target || !now) {
		FAIL(r, "out of memory in the test");
		goto out;
	}
	sleep_ns(2 * MS);
	mg_dataflow_owners(df, owners);
	memcpy(target, owners, sizeof(*target) * nb);
	for (b = 0; b < 4; b++)
		target[moved[b]] =
			(uint16_t)((owners[moved[b]] + 1) % r->workers);
	err = submit(r, df, MG_FLUID, target,
		     mg_dataflow_time_ahead(df, 3 * MS), 0, &m);
	expect_err(r, "mg_migrate(fluid, 4 bins)", err, 0);
	if (err)
		goto out;
	mg_dataflow_owners(df, now);
	for (b = 0; b < nb; b++)
		if (now[b] != target[b]) {
			FAIL(r,
			     "right after mg_migrate(fluid): "
			     "mg_dataflow_owners gives bin %u at worker %u, "
			     "the submitted migration moves it to %u",
			     b, now[b], target[b]);
			break;
		}
	/* bin `last` moves in the fluid migration's 4th step, issued ~3
	 * steps from now; move it elsewhere, far ahead */
	memcpy(target, now, sizeof(*target) * nb);
	target[last] = (uint16_t)((owners[last] + 2) % r->workers);
	err = submit(r, df, MG_ALL_AT_ONCE, target,
		     mg_dataflow_time_ahead(df, 40 * MS), 0, NULL);
	expect_err(r,
		   "mg_migrate of a bin the fluid migration has yet to "
		   "move",
		   err, -EBUSY);
	if (!err) {
		r->expect_join = INT32_MIN; /* whatever happens, report it */
		printf("#   the second migration was accepted: bin %u is now "
		       "in two migrations\n",
		       last);
	}
out:
	free(owners);
	free(target);
	free(now);
}

static void
after_fluid_busy(struct run *r, struct mg_dataflow *df)
{
	uint16_t *owners = malloc(sizeof(*owners) * r->nbins);

	if (r->expect_join != INT32_MIN || !owners) {
		free(owners);
		return;
	}
	mg_dataflow_owners(df, owners);
	/* bin 10 starts on 10 % W; fluid: +1, the second migration: +2 */
	printf("#   consequence: the run ended with %d (%s); bin 10 ends on "
	       "worker %u (the fluid migration sends it to %u, the second "
	       "one to %u)\n",
	       r->join_err, mg_strerror(r->join_err), owners[10],
	       (10 + 1) % r->workers, (10 + 2) % r->workers);
	free(owners);
}

static void
test_busy_unissued_fluid_step(void **state)
{
	struct run r = {
		.name = "fluid then overlap",
		.workers = 3,
		.bins_log2 = 4,
		.keys = 200,
		.ring = 16,
		.batch = 16,
		.rate = {200000},
		.duration_ns = 100 * MS,
		.drive = drive_fluid_busy,
		.after_join = after_fluid_busy,
	};

	(void)state;
	assert_int_equal(run_case(&r), 0);
}

/* ---- 7. timers move with their bin --------------------------------------- */

static void
drive_timers(struct run *r, struct mg_dataflow *df)
{
	unsigned W = r->workers;
	uint32_t nb = r->nbins, b, n = 0;
	uint16_t *start = malloc(sizeof(*start) * nb);
	uint16_t *half = malloc(sizeof(*half) * nb);
	struct mg_move *s1 = malloc(sizeof(*s1) * nb);
	struct mg_move *s2 = malloc(sizeof(*s2) * nb);
	struct mg_migration *m1 = NULL, *m2 = NULL;
	struct mg_plan *p = NULL;
	uint64_t t1, t2;
	int err;

	if (!start || !half || !s1 || !s2) {
		FAIL(r, "out of memory in the test");
		goto out;
	}
	sleep_ns(2 * MS);
	mg_dataflow_owners(df, start);
	/* the paper's target, all at once ... */
	mg_plan_half_of_half(start, nb, W, half);
	t1 = mg_dataflow_time_ahead(df, (3 + rnd(r, 3)) * MS);
	err = submit(r, df, MG_ALL_AT_ONCE, half, t1, 0, &m1);
	expect_err(r, "mg_migrate(half of half)", err, 0);
	/* ... and, a few epochs later, every other bin hops twice in two
	 * consecutive epochs (A->B->C), closer than the timer delay */
	expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, start), 0);
	t2 = t1 + 1 + rnd(r, r->delay + 1);
	for (b = 0; b < nb && p; b++)
		if (half[b] == start[b]) {
			s1[n] = (struct mg_move){b, (start[b] + 1) % W};
			s2[n++] = (struct mg_move){b, (start[b] + 2) % W};
		}
	if (p && n) {
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p, t2, s1, n), 0);
		expect_err(r, "mg_plan_add_step",
			   mg_plan_add_step(p, t2 + 1, s2, n), 0);
		expect_err(r, "mg_migrate_plan(two hops)",
			   submit_plan(r, df, p, &m2), 0);
	}
	printf("#   half of half at %llu, %u bins hop at %llu and %llu\n",
	       (unsigned long long)t1, n, (unsigned long long)t2,
	       (unsigned long long)(t2 + 1));
	if (m1)
		wait_mig(r, m1);
	if (m2)
		wait_mig(r, m2);
	/* then everything back home at once */
	t1 = mg_dataflow_time_ahead(df, (3 + rnd(r, 3)) * MS);
	expect_err(r, "mg_migrate(back home)",
		   submit(r, df, MG_ALL_AT_ONCE, start, t1, 0, NULL), 0);
	printf("#   back home at %llu\n", (unsigned long long)t1);
out:
	mg_plan_destroy(p);
	free(start);
	free(half);
	free(s1);
	free(s2);
}

static void
test_timers_move(void **state)
{
	uint64_t rng = seed_of(7);
	unsigned fails = 0, i;
	static const char *names[] = {"timers W=4 delay 3",
				      "timers W=3 delay 7",
				      "timers W=4 delay 5 binary"};
	static const unsigned delay[] = {3, 7, 5};

	(void)state;
	for (i = 0; i < 3; i++) {
		struct run r = {
			.name = names[i],
			.workers = i == 1 ? 3 : 4,
			.bins_log2 = 5,
			.keys = 100,
			.ring = 16,
			.batch = 16,
			.rate = {300000, 100000},
			.duration_ns = 60 * MS,
			.timers = true,
			.binary = i == 2,
			.delay = delay[i],
			.drive = drive_timers,
			.lenient = true,
			.rng = mg_test_rand(&rng),
		};

		fails += run_case(&r) != 0;
	}
	assert_int_equal(fails, 0);
}

/* ---- 8. migrations ending with the run ----------------------------------- */

/*
 * A move whose time comes after the last record completes when the sources
 * close, i.e. as the run ends.  mg_migration_wait() must then return 0 (the
 * migration completed), not -ECANCELED ("the run ended first").
 */
static void
drive_late(struct run *r, struct mg_dataflow *df)
{
	uint16_t *target = malloc(sizeof(*target) * r->nbins);
	uint32_t b = (uint32_t)rnd(r, r->nbins);
	uint64_t at;

	if (!target) {
		FAIL(r, "out of memory in the test");
		return;
	}
	sleep_ns(2 * MS);
	mg_dataflow_owners(df, target);
	target[b] = (uint16_t)((target[b] + 1) % r->workers);
	at = mg_dataflow_time_ahead(df, r->duration_ns + 10 * MS);
	expect_err(r, "mg_migrate(after the last record)",
		   submit(r, df, MG_ALL_AT_ONCE, target, at, 0, NULL), 0);
	printf("#   bin %u moves at %llu, the last record is at %llu\n", b,
	       (unsigned long long)at, (unsigned long long)r->last_epoch);
	free(target);
}

static void
test_wait_step_at_end(void **state)
{
	uint64_t rng = seed_of(8);
	unsigned fails = 0, i;

	(void)state;
	for (i = 0; i < 4; i++) {
		struct run r = {
			.name = "step after the data",
			.workers = 2 + i % 2,
			.bins_log2 = 4,
			.keys = 100,
			.ring = 16,
			.batch = 16,
			.rate = {100000},
			.duration_ns = 10 * MS,
			.timers = true,
			.drive = drive_late,
			.lenient = true,
			.rng = mg_test_rand(&rng),
		};

		fails += run_case(&r) != 0;
	}
	assert_int_equal(fails, 0);
}

/*
 * Moves submitted while the run ends (mg_migrate() accepts them until the
 * join): each either completes or is cancelled, and the run ends -- the
 * join returns.  Single-bin moves, one bin after another, from 1 ms before
 * the last record until 12 ms after it.  Worker 1's first call at the last
 * epoch takes 2 ms (a heavy user function, S_END_SLOW_NS), which widens the
 * moment when the workers decide to stop; S_END_RUNS runs, up to the first
 * that does not end within 10 s.
 */
static void
drive_until_end(struct run *r, struct mg_dataflow *df)
{
	uint16_t *t = malloc(sizeof(*t) * r->nbins);
	double t0 = now_s(), until = (double)(r->duration_ns + 12 * MS) / 1e9;
	unsigned ok = 0, busy = 0;
	uint32_t b = 0;
	int err;

	if (!t) {
		FAIL(r, "out of memory in the test");
		return;
	}
	sleep_ns(r->duration_ns - MS);
	while (now_s() - t0 < until) {
		mg_dataflow_owners(df, t);
		t[b] = (uint16_t)((t[b] + 1) % r->workers);
		err = mg_migrate(df, MG_ALL_AT_ONCE, t,
				 mg_dataflow_time_ahead(df, 0), 0, NULL);
		if (err == 0)
			ok++;
		else if (err == -EBUSY || err == -ETIME || err == -EINVAL)
			busy++; /* in flight, the frontier moved, or the run
				   stopped taking migrations: fine */
		else
			expect_err(r, "mg_migrate(at the end)", err, 0);
		b = (b + 1) % r->nbins;
	}
	r->late_moves = ok;
	r->late_refused = busy;
	free(t);
}

static void
test_no_hang_at_end(void **state)
{
	uint64_t runs = mg_test_env_u64("S_END_RUNS", 150), i;
	struct run r = {.duration_ns = 5 * MS};
	unsigned fails = 0;

	(void)state;
	for (i = 0; i < runs && !fails; i++) {
		r = (struct run){
			.name = "moves while the run ends",
			.workers = 2,
			.bins_log2 = 10,
			.keys = 300,
			.ring = 16,
			.batch = 16,
			.rate = {100000},
			.duration_ns = 5 * MS,
			.drive = drive_until_end,
			.join_timeout_s = 10,
			.outputs_only = true,
			.quiet = true,
			.slow_last_ns =
				mg_test_env_u64("S_END_SLOW_NS", 2 * MS),
		};
		fails += run_case(&r) != 0;
	}
	printf("# moves while the run ends: %llu runs, %s; in the last one %u "
	       "single-bin moves were submitted from %.0f to %.0f ms (%u "
	       "refused)\n",
	       (unsigned long long)i,
	       fails ? (r.hung ? "the last one hung" : "the last one failed")
		     : "all ended",
	       r.late_moves, (double)(r.duration_ns - MS) / 1e6,
	       (double)(r.duration_ns + 12 * MS) / 1e6, r.late_refused);
	assert_int_equal(fails, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_busy_unissued_fluid_step),
		cmocka_unit_test(test_random_migrations),
		cmocka_unit_test(test_chains),
		cmocka_unit_test(test_all_bins_one_step),
		cmocka_unit_test(test_overload),
		cmocka_unit_test(test_near_frontier),
		cmocka_unit_test(test_timers_move),
		cmocka_unit_test(test_wait_step_at_end),
		cmocka_unit_test(test_no_hang_at_end), /* last: may leak a
							  stuck worker */
	};

	seed = mg_test_seed();
	signal(SIGALRM, watchdog);
	if (getenv("S_ONLY")) /* e.g. S_ONLY=test_chains */
		cmocka_set_test_filter(getenv("S_ONLY"));
	return MG_TEST_RUN(tests);
}
