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
#include "tests/mg_test_run.h"

/* ---- 1. random migrations ------------------------------------------------ */

static void
drive_random(struct run *r, struct mg_dataflow *df)
{
	unsigned W = r->workers, n = 1 + (unsigned)run_rnd(r, 3), k;
	uint16_t *owners = malloc(sizeof(*owners) * r->nbins);
	uint16_t *target = malloc(sizeof(*target) * r->nbins);
	uint32_t *cand = malloc(sizeof(*cand) * r->nbins);

	if (!owners || !target || !cand) {
		FAIL(r, "out of memory in the test");
		goto out;
	}
	for (k = 0; k < n; k++) {
		enum mg_strategy s = (enum mg_strategy)run_rnd(r, 3);
		uint32_t b, nc = 0, want, i;
		uint64_t ahead = run_rnd(r, 21) * MS, gap = run_rnd(r, 4), at;
		char what[64];
		int err;

		run_sleep_ns(run_rnd(r, 4 * MS));
		for (b = 0; b < r->nbins; b++)
			if (!run_in_flight(r, b))
				cand[nc++] = b;
		if (k && (run_rnd(r, 2) || nc == 0)) {
			/* this one after the others (else: concurrently,
			 * with the bins they leave alone) */
			for (i = 0, err = 0; i < r->nmig && !err; i++)
				err = run_wait_mig(r, r->mig[i]);
			if (err) { /* the run is over (or hung) */
				printf("#   waiting for migration %u: %s; no "
				       "more submissions\n",
				       i - 1, mg_strerror(err));
				break;
			}
			for (nc = 0, b = 0; b < r->nbins; b++)
				if (!run_in_flight(r, b))
					cand[nc++] = b;
		}
		mg_dataflow_owners(df, owners);
		memcpy(target, owners, sizeof(*target) * r->nbins);
		switch (s) {
		case MG_ALL_AT_ONCE:
			want = (uint32_t[]){1, 1 + (uint32_t)run_rnd(r, nc + 1),
					    nc}[run_rnd(r, 3)];
			break;
		case MG_FLUID: /* one step each, ~2.5 ms apiece */
			want = 1 + (uint32_t)run_rnd(r, 6);
			break;
		default:
			want = 1 + (uint32_t)run_rnd(r, 8);
			break;
		}
		want = want < nc ? want : nc;
		for (i = 0; i < want && W > 1; i++) { /* partial shuffle */
			uint32_t j = i + (uint32_t)run_rnd(r, nc - i),
				 x = cand[j];

			cand[j] = cand[i];
			cand[i] = x;
			target[x] =
				(uint16_t)((owners[x] + 1 + run_rnd(r, W - 1)) %
					   W);
		}
		at = mg_dataflow_time_ahead(df, ahead);
		err = run_submit(r, df, s, target, at, gap, NULL);
		if (err == -EINVAL) {
			/* the control frontier passed the time meanwhile (a
			 * loaded machine preempted this thread): allowed;
			 * try once more, further ahead */
			printf("#   note: time %llu refused, the frontier "
			       "moved; again 10 ms later\n",
			       (unsigned long long)at);
			ahead += 10 * MS;
			at = mg_dataflow_time_ahead(df, ahead);
			err = run_submit(r, df, s, target, at, gap, NULL);
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
		run_expect_err(r, what, err, 0);
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
	uint64_t rng = run_seed_of(1), i;
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
	       (unsigned long long)rounds, (unsigned long long)run_seed);
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
	run_sleep_ns(2 * MS);
	mg_dataflow_owners(df, owners);
	err = mg_plan_create(&p, r->nbins, W, owners);
	run_expect_err(r, "mg_plan_create", err, 0);
	t = mg_dataflow_time_ahead(df, (5 + run_rnd(r, 5)) * MS);
	printf("#   bin %u: worker %u", b, owners[b]);
	for (i = 0; !err && i < chain_arg.len; i++) {
		unsigned to = chain_arg.back && i + 1 == chain_arg.len
				      ? owners[b]
				      : (owners[b] + i + 1) % W;
		struct mg_move mv = {b, to};

		err = mg_plan_add_step(p, t + i, &mv, 1);
		run_expect_err(r, "mg_plan_add_step", err, 0);
		printf(" -> %u at %llu", to, (unsigned long long)(t + i));
	}
	printf("\n");
	if (!err)
		run_expect_err(r, "mg_migrate_plan(chain)",
			       run_submit_plan(r, df, p, NULL), 0);
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
	uint64_t rng = run_seed_of(2);
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
	run_sleep_ns(2 * MS);
	/* every bin to the next worker, with mg_migrate ... */
	mg_dataflow_owners(df, owners);
	for (b = 0; b < r->nbins; b++)
		target[b] = (uint16_t)((owners[b] + 1) % W);
	at = mg_dataflow_time_ahead(df, (5 + run_rnd(r, 5)) * MS);
	err = run_submit(r, df, MG_ALL_AT_ONCE, target, at, 0, &m);
	run_expect_err(r, "mg_migrate(all bins)", err, 0);
	if (err)
		goto out;
	run_wait_mig(r, m);
	/* ... then again, as a one-step plan */
	mg_dataflow_owners(df, owners);
	run_owners_equal(r, owners, target, "owners after the rotation");
	run_expect_err(r, "mg_plan_create",
		       mg_plan_create(&p, r->nbins, W, owners), 0);
	for (b = 0; b < r->nbins; b++)
		mv[b] = (struct mg_move){b, (owners[b] + 1) % W};
	at = mg_dataflow_time_ahead(df, (5 + run_rnd(r, 5)) * MS);
	if (p) {
		run_expect_err(r, "mg_plan_add_step(all bins)",
			       mg_plan_add_step(p, at, mv, r->nbins), 0);
		run_expect_err(r, "mg_migrate_plan(all bins)",
			       run_submit_plan(r, df, p, NULL), 0);
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
	uint64_t rng = run_seed_of(3);
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
	run_sleep_ns(2 * MS);
	mg_dataflow_owners(df, start);
	/* the paper's target, all at once ... */
	mg_plan_half_of_half(start, nb, W, target);
	t1 = mg_dataflow_time_ahead(df, 3 * MS);
	err = run_submit(r, df, MG_ALL_AT_ONCE, target, t1, 0, NULL);
	run_expect_err(r, "mg_migrate(half of half)", err, 0);
	/* ... and a plan moving the other bins in two steps (no bin twice:
	 * chains have their own case) */
	run_expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, start),
		       0);
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
		run_expect_err(r, "mg_plan_add_step",
			       mg_plan_add_step(p, t1 + 20, back, (n + 1) / 2),
			       0);
		run_expect_err(r, "mg_plan_add_step",
			       mg_plan_add_step(p, t1 + 60, mv, n / 2), 0);
		run_expect_err(r, "mg_migrate_plan(two steps)",
			       run_submit_plan(r, df, p, NULL), 0);
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
		over += run_overloaded(&r);
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
	run_sleep_ns(3 * MS + run_rnd(r, 2 * MS));
	/* A move that completed proves the control frontier passed its time
	 * (the old owner released it only once its input frontier did). */
	mg_dataflow_owners(df, owners);
	memcpy(target, owners, sizeof(*target) * nb);
	target[pace] = (uint16_t)((owners[pace] + 1) % r->workers);
	t0 = mg_dataflow_time_ahead(df, 3 * MS);
	r->lenient = true; /* an ordinary move: it may be shifted */
	err = run_submit(r, df, MG_ALL_AT_ONCE, target, t0, 0, &m);
	run_expect_err(r, "mg_migrate(pace)", err, 0);
	r->lenient = false;
	if (err || run_wait_mig(r, m))
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
		err = run_submit(r, df, MG_ALL_AT_ONCE, target, at, 0, NULL);
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
			run_owners_equal(r, after, owners,
					 "owners after a refused migration");
		} else if (err == -EINVAL &&
			   !mg_dataflow_accepts_migrations(df)) {
			printf("#   note: the run stopped taking migrations "
			       "(a slow machine); %llu times tried\n",
			       (unsigned long long)d);
			break;
		} else {
			run_expect_err(r, "mg_migrate(near the frontier)", err,
				       0);
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
	uint64_t rng = run_seed_of(5);
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
	run_expect_err(r, "mg_migrate before start",
		       mg_migrate(df, MG_ALL_AT_ONCE, target, 100, 0, NULL),
		       -EINVAL);
	run_expect_err(r, "mg_plan_create",
		       mg_plan_create(&p, r->nbins, r->workers, NULL), 0);
	if (p) {
		run_expect_err(r, "mg_plan_add_step",
			       mg_plan_add_step(p, 100, &mv, 1), 0);
		run_expect_err(r, "mg_migrate_plan before start",
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
	run_expect_err(r, "mg_migrate after join",
		       mg_migrate(df, MG_ALL_AT_ONCE, target, r->ntimes + 1000,
				  0, NULL),
		       -EINVAL);
	run_expect_err(r, "mg_plan_create",
		       mg_plan_create(&p, r->nbins, r->workers, owners), 0);
	mv = (struct mg_move){1, target[1]};
	if (p) {
		run_expect_err(r, "mg_plan_add_step",
			       mg_plan_add_step(p, r->ntimes + 1000, &mv, 1),
			       0);
		run_expect_err(r, "mg_migrate_plan after join",
			       mg_migrate_plan(df, p, NULL), -EINVAL);
	}
	mg_dataflow_owners(df, after);
	run_owners_equal(r, after, owners, "owners after refusals after join");
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
		run_expect_err(r, what, got, want);
	if (!now) {
		FAIL(r, "out of memory in the test");
		return;
	}
	mg_dataflow_owners(df, now);
	run_owners_equal(r, now, before, what);
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
	run_sleep_ns(3 * MS);
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
	/* ASAP: a time that cannot pass before the submission, however slow
	 * the machine; the engine reports the one it took */
	run_expect_err(
		r, "mg_migrate(bin 7)",
		run_submit(r, df, MG_ALL_AT_ONCE, target, MG_TIME_ASAP, 0, &m),
		0);
	{
		struct mg_migration_progress pr;

		mg_migration_progress(m, &pr);
		at = pr.first_time;
	}
	run_expect_err(r, "mg_migration_wait(bin 7)", run_wait_mig(r, m), 0);
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
	run_expect_err(r, "mg_plan_create", mg_plan_create(&p, nb * 2, W, NULL),
		       0);
	if (p) {
		mv[0] = (struct mg_move){nb + 1, (nb + 2) % W};
		run_expect_err(
			r, "mg_plan_add_step",
			mg_plan_add_step(p, mg_dataflow_time_ahead(df, 20 * MS),
					 mv, 1),
			0);
		refused(r, df, "mg_migrate_plan(2x the bins)",
			mg_migrate_plan(df, p, &m), -EINVAL, owners);
		mg_plan_destroy(p);
		p = NULL;
	}
	run_expect_err(r, "mg_plan_create", mg_plan_create(&p, nb / 2, W, NULL),
		       0);
	if (p) {
		mv[0] = (struct mg_move){1, 2 % W};
		run_expect_err(
			r, "mg_plan_add_step",
			mg_plan_add_step(p, mg_dataflow_time_ahead(df, 20 * MS),
					 mv, 1),
			0);
		refused(r, df, "mg_migrate_plan(half the bins)",
			mg_migrate_plan(df, p, &m), -EINVAL, owners);
		mg_plan_destroy(p);
		p = NULL;
	}
	run_expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W + 1, NULL),
		       0);
	if (p) {
		mv[0] = (struct mg_move){1, W};
		run_expect_err(
			r, "mg_plan_add_step",
			mg_plan_add_step(p, mg_dataflow_time_ahead(df, 20 * MS),
					 mv, 1),
			0);
		refused(r, df, "mg_migrate_plan(W + 1 workers)",
			mg_migrate_plan(df, p, &m), -EINVAL, owners);
		mg_plan_destroy(p);
		p = NULL;
	}
	run_expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, owners),
		       0);
	if (p) {
		mv[0] = (struct mg_move){1, (owners[1] + 1) % W};
		run_expect_err(r, "mg_plan_add_step",
			       mg_plan_add_step(p, 2, mv, 1), 0);
		refused(r, df, "mg_migrate_plan(step at time 2)",
			mg_migrate_plan(df, p, &m), -ETIME, owners);
		mg_plan_destroy(p);
		p = NULL;
	}
	refused(r, df, "mg_migrate_plan(NULL)", mg_migrate_plan(df, NULL, &m),
		-EINVAL, owners);

	/* a bin in flight: a plan far ahead moves `busy` -- at a time no
	 * record reaches, so the move stays in flight until the run's end,
	 * however slow the machine ... */
	far = mg_dataflow_time_ahead(df, 0) + 1000000;
	run_expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, owners),
		       0);
	if (p) {
		mv[0] = (struct mg_move){busy, (owners[busy] + 1) % W};
		run_expect_err(r, "mg_plan_add_step",
			       mg_plan_add_step(p, far, mv, 1), 0);
		run_expect_err(r, "mg_migrate_plan(far ahead)",
			       run_submit_plan(r, df, p, NULL), 0);
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
	run_expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, owners),
		       0);
	if (p) {
		at = mg_dataflow_time_ahead(df, 20 * MS);
		mv[0] = (struct mg_move){other, target[other]};
		run_expect_err(r, "mg_plan_add_step",
			       mg_plan_add_step(p, at, mv, 1), 0);
		mv[0] = (struct mg_move){busy, target[busy]};
		run_expect_err(r, "mg_plan_add_step",
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
	run_expect_err(r, "mg_migrate of a free bin next to one in flight",
		       run_submit(r, df, MG_ALL_AT_ONCE, target, MG_TIME_ASAP,
				  0, NULL),
		       0);
	mg_dataflow_owners(df, owners);
	run_owners_equal(r, owners, target, "owners after the accepted move");
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
	run_sleep_ns(2 * MS);
	mg_dataflow_owners(df, owners);
	memcpy(target, owners, sizeof(*target) * nb);
	for (b = 0; b < 4; b++)
		target[moved[b]] =
			(uint16_t)((owners[moved[b]] + 1) % r->workers);
	err = run_submit(r, df, MG_FLUID, target,
			 mg_dataflow_time_ahead(df, 3 * MS), 0, &m);
	run_expect_err(r, "mg_migrate(fluid, 4 bins)", err, 0);
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
	err = run_submit(r, df, MG_ALL_AT_ONCE, target,
			 mg_dataflow_time_ahead(df, 40 * MS), 0, NULL);
	run_expect_err(r,
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
	run_sleep_ns(2 * MS);
	mg_dataflow_owners(df, start);
	/* the paper's target, all at once ... */
	mg_plan_half_of_half(start, nb, W, half);
	t1 = mg_dataflow_time_ahead(df, (3 + run_rnd(r, 3)) * MS);
	err = run_submit(r, df, MG_ALL_AT_ONCE, half, t1, 0, &m1);
	run_expect_err(r, "mg_migrate(half of half)", err, 0);
	/* ... and, a few epochs later, every other bin hops twice in two
	 * consecutive epochs (A->B->C), closer than the timer delay */
	run_expect_err(r, "mg_plan_create", mg_plan_create(&p, nb, W, start),
		       0);
	t2 = t1 + 1 + run_rnd(r, r->delay + 1);
	for (b = 0; b < nb && p; b++)
		if (half[b] == start[b]) {
			s1[n] = (struct mg_move){b, (start[b] + 1) % W};
			s2[n++] = (struct mg_move){b, (start[b] + 2) % W};
		}
	if (p && n) {
		run_expect_err(r, "mg_plan_add_step",
			       mg_plan_add_step(p, t2, s1, n), 0);
		run_expect_err(r, "mg_plan_add_step",
			       mg_plan_add_step(p, t2 + 1, s2, n), 0);
		run_expect_err(r, "mg_migrate_plan(two hops)",
			       run_submit_plan(r, df, p, &m2), 0);
	}
	printf("#   half of half at %llu, %u bins hop at %llu and %llu\n",
	       (unsigned long long)t1, n, (unsigned long long)t2,
	       (unsigned long long)(t2 + 1));
	if (m1)
		run_wait_mig(r, m1);
	if (m2)
		run_wait_mig(r, m2);
	/* then everything back home at once */
	t1 = mg_dataflow_time_ahead(df, (3 + run_rnd(r, 3)) * MS);
	run_expect_err(r, "mg_migrate(back home)",
		       run_submit(r, df, MG_ALL_AT_ONCE, start, t1, 0, NULL),
		       0);
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
	uint64_t rng = run_seed_of(7);
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
	uint32_t b = (uint32_t)run_rnd(r, r->nbins);
	uint64_t at;

	if (!target) {
		FAIL(r, "out of memory in the test");
		return;
	}
	run_sleep_ns(2 * MS);
	mg_dataflow_owners(df, target);
	target[b] = (uint16_t)((target[b] + 1) % r->workers);
	at = mg_dataflow_time_ahead(df, r->duration_ns + 10 * MS);
	run_expect_err(r, "mg_migrate(after the last record)",
		       run_submit(r, df, MG_ALL_AT_ONCE, target, at, 0, NULL),
		       0);
	printf("#   bin %u moves at %llu, the last record is at %llu\n", b,
	       (unsigned long long)at, (unsigned long long)r->last_epoch);
	free(target);
}

static void
test_wait_step_at_end(void **state)
{
	uint64_t rng = run_seed_of(8);
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
	double t0 = run_now_s(),
	       until = (double)(r->duration_ns + 12 * MS) / 1e9;
	unsigned ok = 0, busy = 0;
	uint32_t b = 0;
	int err;

	if (!t) {
		FAIL(r, "out of memory in the test");
		return;
	}
	run_sleep_ns(r->duration_ns - MS);
	while (run_now_s() - t0 < until) {
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
			run_expect_err(r, "mg_migrate(at the end)", err, 0);
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

	run_seed = mg_test_seed();
	signal(SIGALRM, run_watchdog);
	if (getenv("S_ONLY")) /* e.g. S_ONLY=test_chains */
		cmocka_set_test_filter(getenv("S_ONLY"));
	return MG_TEST_RUN(tests);
}
