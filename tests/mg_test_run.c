/*
 * mg_test_run.c - the run harness of the engine's migration tests (see
 * mg_test_run.h).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/mg_test.h"
#include "tests/mg_test_run.h"

/* The model's operator (mg_test_model.h), recording each call. */
static void
op(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	struct run *r = ctx;
	struct wstat *ws = &r->ws[c->worker];
	struct root *root = c->state;

	/* Acquire: pairs with the release in run_arm_stall(); stall_time is
	 * then the one it set. */
	if (r->stall_ns && c->worker == r->stall_worker &&
	    (r->stall_bin == RUN_ANY_BIN || c->bin == r->stall_bin) &&
	    atomic_load_explicit(&r->stall_state, memory_order_acquire) ==
		    RUN_STALL_NOT_YET &&
	    c->time >= r->stall_time) {
		r->stalled_bin = c->bin;
		r->stalled_time = c->time;
		/* Release: pairs with the acquire in run_wait_stall(); main
		 * then reads stalled_bin and stalled_time. */
		atomic_store_explicit(&r->stall_state, RUN_STALLING,
				      memory_order_release);
		run_sleep_ns(r->stall_ns);
		atomic_store_explicit(&r->stall_state, RUN_STALLED,
				      memory_order_release);
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

/*
 * Copy mode: a bin travels as its root's fields, then its counts.  The
 * receiver checks that the bytes are its bin's (bin_plus1) and counts the
 * bins it rebuilt.  With copy_fail set, either side may fail as if out of
 * memory (the sender before writing, the receiver after part of the state
 * was built: the engine drops it all).
 */
static int
serialize(void *ctx, struct mg_bin_call *c, struct mg_writer *w)
{
	struct run *r = ctx;
	const struct root *root = c->state;
	uint64_t head[4] = {root->last_time, root->calls, root->bin_plus1,
			    root->counts.value_size != 0};
	int err;

	if (r->copy_fail && r->copy_fail(r, true, c->bin)) {
		atomic_fetch_add_explicit(&r->copy_fails, 1,
					  memory_order_relaxed);
		return -ENOMEM;
	}
	err = mg_write(w, head, sizeof(head));
	return err || !head[3] ? err : mg_map_write(&root->counts, w);
}

static int
deserialize(void *ctx, struct mg_bin_call *c, struct mg_reader *rd)
{
	struct run *r = ctx;
	struct wstat *ws = &r->ws[c->worker];
	struct root *root = c->state;
	uint64_t head[4];
	int err = mg_read(rd, head, sizeof(head));

	if (err)
		return err;
	root->last_time = head[0];
	root->calls = head[1];
	root->bin_plus1 = head[2];
	if (head[3]) {
		mg_map_init(&root->counts, sizeof(uint64_t));
		err = mg_map_read(&root->counts, c->arena, rd);
	}
	if (!err && r->copy_fail && r->copy_fail(r, false, c->bin)) {
		atomic_fetch_add_explicit(&r->copy_fails, 1,
					  memory_order_relaxed);
		return -ENOMEM;
	}
	if (!err) {
		ws->copied_in++;
		if (head[2] && head[2] != c->bin + 1ull)
			ws->copy_errors++;
	}
	return err;
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
uint64_t run_seed; /* of the whole test file: mg_test_seed() */

/* The generator state of case @k, derived from the file's seed. */
uint64_t
run_seed_of(unsigned k)
{
	return mg_hash64(run_seed + k * 0x9e3779b97f4a7c15ull);
}

/* The running case's dataflow, for the watchdog's dump (NULL between
 * runs).  Main thread only, like the signal. */
static struct mg_dataflow *case_df;

void
run_watchdog(int sig)
{
	static const char m1[] = "# watchdog: a run hung in case ";
	static const char m2[] = " (its state and every thread's stack follow "
				 "on stderr) -- aborting\n";
	static const char m3[] = "Bail out! a run hung\n";
	ssize_t rc;

	(void)sig;
	rc = write(1, m1, sizeof(m1) - 1);
	rc = write(1, case_name, strlen(case_name));
	rc = write(1, m2, sizeof(m2) - 1);
	/* Best effort from here: neither the dump nor gdb is
	 * async-signal-safe.  Should they deadlock (the signal came inside
	 * stdio or malloc), the second alarm's default action ends the
	 * process. */
	signal(SIGALRM, SIG_DFL);
	alarm(30);
	if (case_df)
		mg_dataflow_dump(case_df, stderr);
	mg_test_dump_threads();
	rc = write(1, m3, sizeof(m3) - 1);
	(void)rc;
	_exit(1);
}

void
run_sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull),
			      (long)(ns % 1000000000ull)};

	nanosleep(&ts, NULL);
}

double
run_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t
run_rnd(struct run *r, uint64_t n)
{
	return n ? mg_test_rand(&r->rng) % n : 0;
}

void
run_expect_err(struct run *r, const char *what, int got, int want)
{
	/* -ECANCELED comes from run_submit()/run_submit_plan() only: the run had
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
int
run_submit(struct run *r, struct mg_dataflow *df, enum mg_strategy s,
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
	if (!err && at == MG_TIME_ASAP) { /* the time the engine took */
		struct mg_migration_progress pr;

		mg_migration_progress(m, &pr);
		at = pr.first_time;
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
int
run_submit_plan(struct run *r, struct mg_dataflow *df, const struct mg_plan *p,
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
bool
run_in_flight(const struct run *r, uint32_t b)
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

void
run_arm_stall(struct run *r, uint64_t time)
{
	r->stall_time = time;
	/* Release: pairs with the acquire in op(); without it the worker
	 * could stall at the stall_time of before. */
	atomic_store_explicit(&r->stall_state, RUN_STALL_NOT_YET,
			      memory_order_release);
}

/* How long a run may make no progress before it counts as hung: a stall
 * adds its length. */
static double
idle_limit(const struct run *r)
{
	return (r->join_timeout_s > 0 ? r->join_timeout_s : JOIN_TIMEOUT_S) +
	       (double)r->stall_ns / 1e9;
}

bool
run_wait_stall(struct run *r, struct mg_dataflow *df)
{
	double limit = idle_limit(r);
	uint64_t last = progress(r), now;
	double idle_since = run_now_s();

	/* Acquire: pairs with the release in op(); stalled_bin and
	 * stalled_time are then the stalled call's. */
	while (atomic_load_explicit(&r->stall_state, memory_order_acquire) <
	       RUN_STALLING) {
		if (!mg_dataflow_accepts_migrations(df))
			return false; /* the input ended first */
		now = progress(r);
		if (now != last) {
			last = now;
			idle_since = run_now_s();
		} else if (run_now_s() - idle_since > limit) {
			FAIL(r,
			     "no operator ran for %.0f s and worker %u has "
			     "not stalled",
			     limit, r->stall_worker);
			return false;
		}
		run_sleep_ns(MS / 4);
	}
	return true;
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
	double limit = idle_limit(r);
	uint64_t last = progress(r), now;
	double idle_since = run_now_s();
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
			idle_since = run_now_s();
			alarm(WATCHDOG_S);
		} else if (run_now_s() - idle_since > limit) {
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
int
run_wait_mig(struct run *r, struct mg_migration *m)
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

bool
run_owners_equal(struct run *r, const uint16_t *a, const uint16_t *b,
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

/* A known move of @b ([lo, hi) are b's) after the last record, at a
 * time up to @t, hands it to @w. */
static bool
moved_to_after_data(const struct run *r, size_t lo, size_t hi, uint64_t t,
		    unsigned w)
{
	for (; lo < hi && r->known[lo].time <= t; lo++)
		if (r->known[lo].time > r->last_epoch &&
		    r->known[lo].worker == w)
			return true;
	return false;
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
 * timers itself (nothing can change them any more), or the moves may
 * complete as the sources close, so a call at t > last_epoch belongs to
 * the owner at last_epoch or to one a move between last_epoch and t names.
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
				if (r->unknown[b] || w == exp ||
				    (t > r->last_epoch &&
				     moved_to_after_data(r, lo, hi, t, w)))
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

/* Every time before @upto has the reference's outputs. */
static void
check_outputs(struct run *r, uint64_t upto)
{
	struct mg_test_model_fp *ref =
		mg_test_model_reference(&r->m, r->ntimes);
	uint64_t t, bad = 0, shown = 0, total = 0;
	unsigned w;

	if (!ref) {
		FAIL(r, "reference: out of memory or ntimes too small");
		return;
	}
	for (t = 0; t < r->ntimes && t < upto; t++) {
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
bool
run_overloaded(const struct run *r)
{
	return r->wall_s * 1e9 > 1.5 * (double)r->duration_ns + 30e6;
}

/* Records lagged well behind the clock: the run was overloaded, or its
 * latency exceeded a few epochs. */
bool
run_lagged(const struct run *r)
{
	return run_overloaded(r) || r->st.p99 > 5 * MS;
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
		if (r->faults && r->join_err && w == r->join_err) {
			printf("#   note: migration %u (%s) ended with the "
			       "run's error\n",
			       i, r->mig_what[i]);
			continue;
		}
		if (w == -ECANCELED && !p.done && by_step && run_lagged(r)) {
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
			run_wait_mig(r, r->mig[i]);
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
		.mode = r->mode,
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
		.serialize = serialize,
		.deserialize = deserialize,
	};
	struct mg_stream *s0, *s1 = NULL, *out;
	struct mg_probe *probe;
	struct mg_dataflow *df;
	uint64_t n0, n1 = 0, overflow = 0, order = 0, apply = 0, copied = 0,
		     copy_errors = 0;
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
	if (r->stall_time == RUN_LAST_EPOCH)
		r->stall_time = r->last_epoch;
	atomic_store_explicit(&r->stall_state,
			      r->stall_later ? RUN_STALL_UNARMED
					     : RUN_STALL_NOT_YET,
			      memory_order_relaxed); /* no worker yet */
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
	r->completed = 0;
	atomic_store_explicit(&r->copy_fails, 0, memory_order_relaxed);
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
	probe = mg_probe(df, out);
	assert_non_null(probe);

	case_name = r->name;
	case_df = df;
	alarm(WATCHDOG_S);
	if (r->before_start)
		r->before_start(r, df);
	t0 = run_now_s();
	r->started = run_now_s();
	err = mg_dataflow_start(df, NULL, NULL);
	run_expect_err(r, "mg_dataflow_start", err, 0);
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
			run_expect_err(r, "mg_dataflow_join", r->join_err,
				       r->expect_join);
		r->wall_s = run_now_s() - t0;
		r->completed = mg_probe_frontier(probe);
		if (r->after_join)
			r->after_join(r, df);
		check_migrations(r);
	}
	case_df = NULL; /* the watchdog must not dump it as it goes */
	mg_dataflow_destroy(df);
	alarm(0);

	for (w = 0; w < r->workers; w++) {
		overflow += r->ws[w].overflow;
		order += r->ws[w].order_errors;
		apply += r->ws[w].apply_errors;
		copied += r->ws[w].copied_in;
		copy_errors += r->ws[w].copy_errors;
	}
	if (!err && r->join_err == 0) {
		if (r->st.records != n0 + n1)
			FAIL(r, "%llu records generated, schedule has %llu",
			     (unsigned long long)r->st.records,
			     (unsigned long long)(n0 + n1));
		check_outputs(r, MG_TIME_MAX);
		if (!r->outputs_only)
			check_calls(r);
	} else if (!err && r->faults && r->join_err) {
		/* what completed before the run stopped is right */
		check_outputs(r, r->completed);
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
	if (copy_errors)
		FAIL(r, "%llu bins rebuilt from another bin's bytes",
		     (unsigned long long)copy_errors);
	if (r->mode == MG_HANDOFF && copied)
		FAIL(r, "%llu bins rebuilt from bytes in handoff mode",
		     (unsigned long long)copied);
	if (apply && !(r->faults && r->join_err))
		FAIL(r,
		     "the operator failed %llu times (mg_schedule or a map "
		     "insert)",
		     (unsigned long long)apply);
	if (!r->quiet || r->fails)
		printf("# %s %s: W=%u bins=2^%u ring=%u batch=%u rate=%.0f%s, "
		       "timers %s%.0u, %s, %llu records, schedule %.0f ms, "
		       "run %.0f ms, p99 %.2f ms, %u migrations, %zu timed "
		       "moves, %llu bins copied\n",
		       r->fails ? "FAILED" : "ok", r->name, r->workers,
		       r->bins_log2, r->ring, r->batch, r->rate[0],
		       r->binary ? " binary" : "", r->timers ? "+" : "off",
		       r->timers ? r->delay : 0,
		       r->mode == MG_COPY ? "copy" : "handoff",
		       (unsigned long long)r->st.records,
		       (double)r->duration_ns / 1e6, r->wall_s * 1e3,
		       (double)r->st.p99 / 1e6, r->nmig, r->nknown,
		       (unsigned long long)copied);

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
unsigned
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
