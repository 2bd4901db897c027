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
 * plans (S_ROUNDS of them: the first sample of `make check-long`), chains
 * in one plan, all bins in one step, a
 * migration under overload, migrations at the control frontier, timers
 * moving with their bin, a step completing as the run ends (what
 * mg_migration_wait() says), moves submitted while the run ends (the run
 * must still end; S_END_RUNS tries), a worker stalled for seconds in the
 * middle of a migration (S_STALL_NS), an ASAP move while one worker's
 * share of the source lags (it must land near the data, not the clock).
 * Handoff and copy mode.  Seeded: the
 * seed is printed; MG_SEED=<seed> replays it.  S_ONLY=<test name> runs one
 * case.  The drives shared with tests/long/l-migration.c (10^4 random
 * plans, `make check-long`) are in tests/mg_test_drive.c.
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
#include "tests/mg_test_drive.h"
#include "tests/mg_test_lag.h"
#include "tests/mg_test_run.h"

/* ---- 1. random plans ------------------------------------------------------ */

/*
 * The first S_ROUNDS (12) plans of the long campaign (run_plan(),
 * tests/mg_test_drive.h): random migrations, chains, all bins, overload,
 * both modes.  `make check-long` runs 10^4 of the same sequence, so with
 * the same MG_SEED round i here is plan i there.
 */
static void
test_random_migrations(void **state)
{
	uint64_t rounds = mg_test_env_u64("S_ROUNDS", 12), i;
	unsigned fails = 0;
	char name[64];

	(void)state;
	for (i = 0; i < rounds; i++) {
		struct run r;

		run_plan(&r, run_seed, i, false, name, sizeof(name));
		fails += run_case(&r) != 0;
	}
	printf("# random: %u of %llu plans failed (MG_SEED=%llu)\n", fails,
	       (unsigned long long)rounds, (unsigned long long)run_seed);
	assert_int_equal(fails, 0);
}

/* ---- 2. chains in one plan ----------------------------------------------- */

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
			.drive = run_drive_chain,
			.lenient = true,
			.rng = mg_test_rand(&rng),
			.chain_len = c[i].len,
			.chain_back = c[i].back,
			.mode = i % 2 ? MG_COPY : MG_HANDOFF,
		};

		fails += run_case(&r) != 0;
	}
	assert_int_equal(fails, 0);
}

/* ---- 3. all bins in one step --------------------------------------------- */

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
			.drive = run_drive_all_bins,
			.lenient = true,
			.mode = W == 3 ? MG_COPY : MG_HANDOFF,
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
 * The case needs records to queue (the run takes well over its schedule)
 * and the moves to land inside the data.  Both depend on the machine: a
 * fast one keeps up with the rate, and a test thread the machine held up
 * places its moves after the data.  So the case runs again with twice the
 * rate when nothing queued, and with twice the data when the moves fell
 * after it, up to OVERLOAD_TRIES times: the machine's speed changes the
 * run, never the verdict.
 */
#define OVERLOAD_TRIES 6

static void
test_overload(void **state)
{
	unsigned fails = 0, i, k, rate_x, data_x;

	(void)state;
	for (i = 0; i < 2; i++) { /* without timers, then with */
		const char *name = i ? "overload timers" : "overload";

		rate_x = data_x = 0;
		for (k = 0; k < OVERLOAD_TRIES; k++) {
			struct run r = {
				.name = name,
				.workers = 2,
				.bins_log2 = 6,
				.keys = 1000,
				.ring = 2,
				.batch = 1,
				.duration_ns = (20 * MS) << data_x,
				.timers = i == 1,
				.drive = run_drive_overload,
				.lenient = true,
			};

			r.rate[0] = (double)(mg_test_env_u64("S_OVERLOAD_RATE",
							     1000000)
					     << rate_x);
			fails += run_case(&r) != 0;
			printf("# %s: run %.0f ms for a %.0f ms schedule "
			       "(%.1fx) at %.0f records/s, latency p99 %.1f "
			       "ms, max %.1f ms\n",
			       name, r.wall_s * 1e3,
			       (double)r.duration_ns / 1e6,
			       r.wall_s * 1e9 / (double)r.duration_ns,
			       r.rate[0], (double)r.st.p99 / 1e6,
			       (double)r.st.max / 1e6);
			if (r.missed) {
				printf("# [%s] the moves fell after the data: "
				       "again with twice the data\n",
				       name);
				data_x++;
			} else if (!run_overloaded(&r)) {
				printf("# [%s] the machine kept up: again at "
				       "twice the rate\n",
				       name);
				rate_x++;
			} else {
				break;
			}
		}
		if (k == OVERLOAD_TRIES) {
			printf("# FAIL [%s] no overloaded run with the moves "
			       "inside the data in %u tries\n",
			       name, k);
			fails++;
		}
	}
	assert_int_equal(fails, 0);
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
	int err;

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
		err = run_submit_plan(r, df, p, NULL);
		run_expect_err(r, "mg_migrate_plan(far ahead)", err, 0);
		mg_plan_destroy(p);
		p = NULL;
		/* A slow machine (a sanitizer) may have let the run end
		 * first: then no bin can be in flight. */
		if (err == -ECANCELED) {
			printf("#   note: no bin in flight: the checks that "
			       "need one skipped\n");
			goto out;
		}
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
		.lenient = true,
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
			.stall_ns = mg_test_env_u64("S_END_SLOW_NS", 2 * MS),
			.stall_worker = 1,
			.stall_bin = RUN_ANY_BIN,
			.stall_time = RUN_LAST_EPOCH,
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

/* ---- 9. a worker stalled in the middle of a migration -------------------- */

/*
 * One worker sleeps for seconds (S_STALL_NS, default 2 s) inside a user
 * call -- a heavy call, or a worker the machine descheduled -- while a
 * migration that involves it is in flight:
 *
 *   before release  the stalled worker S owns bin b and stalls in its call
 *                   of b at a time ts; once the stall has begun (the drive
 *                   waits for that event, not for a time) b moves S -> T at
 *                   a time t after the control frontier, so t > ts: S
 *                   cannot release b before that call returns, and the
 *                   move must not be reported done while the stall lasts;
 *   before acquire  b moves T -> S at a time t, and S stalls in its first
 *                   call (of any bin) at a time >= t - 2: T releases b
 *                   once it processed every time before t, and S takes b
 *                   as soon as it sees that -- so S usually stalls before
 *                   it took b (T may release b during the stall, or wait
 *                   for S's records), unless T was quicker (a race: then
 *                   the run is repeated, and after four tries noted).
 *
 * Half way through the stall the drive prints both workers' side of the
 * move (mg_dataflow_dump(): frontiers, the sender's outgoing moves, the
 * receiver's incoming ones) and whether the sender had released the bin.
 * Then everything must complete, the outputs equal the reference and every
 * call run on the owner of its time.  Nothing waits for a time: a slow
 * machine makes it longer, and where it lets the input end before the
 * stall (no migration is taken any more) the run is repeated twice as
 * long, then noted.
 */
struct stall_case {
	bool acquire;	/* the stalled worker receives the bin */
	uint32_t bin;	/* the bin that moves ... */
	unsigned from;	/* ... from this worker ... */
	unsigned to;	/* ... to this one */
	uint64_t at;	/* at this time */
	bool placed;	/* submitted, and the stall began before it was done */
	bool checked;	/* ... and still stalling half way through */
	bool released;	/* half way: the sender had released the bin */
	double done_ms; /* the move's completion after its submission */
};

/* The bin with the most of the model's keys (records in every epoch). */
static uint32_t
busiest_bin(unsigned keys, unsigned bins_log2)
{
	uint32_t *n = calloc(1u << bins_log2, sizeof(*n)), b = 0, i;
	uint64_t k;

	assert_non_null(n);
	for (k = 0; k < keys; k++) {
		struct mg_test_model_rec x = {k, 0};

		n[mg_bin_of(mg_test_model_hash(NULL, &x), bins_log2)]++;
	}
	for (i = 1; i < 1u << bins_log2; i++)
		b = n[i] > n[b] ? i : b;
	free(n);
	return b;
}

/*
 * Print the dump's lines of the two workers of @sc's move, and tell
 * whether the sender has released the bin: it processed up to the move's
 * time (handoff.c: the condition of the release) and its outgoing moves
 * no longer list it.  The stalled worker's
 * fields are still; the other's may be a round old.
 */
static void
show_move(struct mg_dataflow *df, struct stall_case *sc)
{
	char *buf = NULL, *line, *save = NULL, mv[64];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int w = -1;

	if (!f)
		return;
	mg_dataflow_dump(df, f);
	fclose(f);
	snprintf(mv, sizeof(mv), "t %llu bin %u to %u}",
		 (unsigned long long)sc->at, sc->bin, sc->to);
	sc->released = false;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *out = strstr(line, " out="),
		     *fr = strstr(line, "frontier=");

		if (sscanf(line, "  worker %d", &w) == 1 ||
		    strstr(line, "control frontier")) {
			printf("#     %s\n", line);
			continue;
		}
		if ((w != (int)sc->from && w != (int)sc->to) ||
		    !strstr(line, "stateful"))
			continue;
		printf("#     %s\n", line);
		if (w == (int)sc->from && out && fr)
			sc->released = strtoull(fr + 9, NULL, 10) >= sc->at &&
				       !(strstr(out, mv) &&
					 strstr(out, mv) < strstr(out, " in="));
	}
	free(buf);
}

/* True while the stalled worker is still in its call (acquire: pairs
 * with the release in the harness's operator). */
static bool
stalling(struct run *r)
{
	return atomic_load_explicit(&r->stall_state, memory_order_acquire) ==
	       RUN_STALLING;
}

static void
drive_stall(struct run *r, struct mg_dataflow *df)
{
	struct stall_case *sc = r->arg;
	uint16_t *target = malloc(sizeof(*target) * r->nbins);
	struct mg_migration_progress p;
	struct mg_migration *m = NULL;
	double t0;
	int err;

	if (!target) {
		FAIL(r, "out of memory in the test");
		return;
	}
	if (sc->acquire) {
		/* the move, and the stall at its time; not shifted if the
		 * time passed (then the stall would come before it) */
		run_sleep_ns(20 * MS);
		sc->at = mg_dataflow_time_ahead(df, 5 * MS);
		run_arm_stall(r, sc->at - 2);
		r->lenient = false;
	} else if (!run_wait_stall(r, df)) {
		goto out; /* the input ended first (or a FAIL) */
	} else {
		sc->at = mg_dataflow_time_ahead(df, 2 * MS);
	}
	mg_dataflow_owners(df, target);
	target[sc->bin] = (uint16_t)sc->to;
	t0 = run_now_s();
	err = run_submit(r, df, MG_ALL_AT_ONCE, target, sc->at, 0, &m);
	r->lenient = true;
	if (err == -ETIME && sc->acquire) {
		printf("#   note: time %llu passed before the submission (a "
		       "slow machine)\n",
		       (unsigned long long)sc->at);
		goto out;
	}
	run_expect_err(r, "mg_migrate(bin of the stall)", err, 0);
	if (err)
		goto out;
	sc->at = r->known[r->nknown - 1].time; /* if shifted */
	if (sc->acquire && !run_wait_stall(r, df))
		goto wait;
	/* progress first, then the stall: done while still stalling is a
	 * move completed around the stalled worker */
	mg_migration_progress(m, &p);
	if (!stalling(r))
		goto wait; /* this thread was descheduled the whole stall */
	printf("#   worker %u stalls in its call of bin %u at time %llu; "
	       "bin %u moves %u -> %u at time %llu (last record at %llu)\n",
	       r->stall_worker, r->stalled_bin,
	       (unsigned long long)r->stalled_time, sc->bin, sc->from, sc->to,
	       (unsigned long long)sc->at, (unsigned long long)r->last_epoch);
	if (p.done && sc->acquire) {
		printf("#   note: worker %u took bin %u before it stalled\n",
		       sc->to, sc->bin);
		goto wait;
	}
	if (p.done)
		FAIL(r,
		     "bin %u's move is done while worker %u is stalled in a "
		     "call of it at time %llu",
		     sc->bin, r->stall_worker,
		     (unsigned long long)r->stalled_time);
	sc->placed = true;
	run_sleep_ns(r->stall_ns / 2);
	mg_migration_progress(m, &p);
	if (!stalling(r))
		goto wait;
	sc->checked = true;
	if (p.done && !sc->acquire)
		FAIL(r, "bin %u's move is done half way through the stall",
		     sc->bin);
	printf("#   half way through the stall:\n");
	show_move(df, sc);
wait:
	err = run_wait_mig(r, m);
	sc->done_ms = (run_now_s() - t0) * 1e3;
	run_expect_err(r, "mg_migration_wait(bin of the stall)", err, 0);
out:
	free(target);
}

static void
test_stall(void **state)
{
	static const struct {
		const char *name;
		bool acquire;
		enum mg_mode mode;
		bool binary;
	} c[] = {
		{"stall before release", false, MG_HANDOFF, false},
		{"stall before acquire", true, MG_HANDOFF, true},
		{"stall before release copy", false, MG_COPY, true},
		{"stall before acquire copy", true, MG_COPY, false},
	};
	uint64_t stall_ns = mg_test_env_u64("S_STALL_NS", 2000 * MS);
	uint32_t b = busiest_bin(64, 4);
	unsigned fails = 0, W = 3, owner = b % W, tries; /* the router's
							    first version */
	size_t i;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(c); i++) {
		struct stall_case sc = {0};
		struct run r;

		for (tries = 0; tries < 4 && !sc.placed; tries++) {
			sc = (struct stall_case){
				.acquire = c[i].acquire,
				.bin = b,
				.from = owner,
				.to = (owner + 1) % W,
			};
			r = (struct run){
				.name = c[i].name,
				.workers = W,
				.bins_log2 = 4,
				.keys = 64,
				.ring = 16,
				.batch = 16,
				.rate = {200000, 50000},
				.duration_ns = (600 * MS)
					       << (tries < 2 ? tries : 2),
				.timers = true,
				.binary = c[i].binary,
				.mode = c[i].mode,
				.drive = drive_stall,
				.lenient = true,
				.arg = &sc,
				.stall_ns = stall_ns,
				/* release: the owner, in a call of b at 10
				 * ms (well inside the data, so that the move
				 * is too); acquire: the receiver, armed by
				 * the drive for the move's time */
				.stall_worker = c[i].acquire ? sc.to : owner,
				.stall_bin = c[i].acquire ? RUN_ANY_BIN : b,
				.stall_time = 10 * MS / EPOCH_NS,
				.stall_later = c[i].acquire,
			};
			fails += run_case(&r) != 0;
			if (!sc.placed && !r.fails)
				printf("#   note: no stall while the move was "
				       "in flight (the input ended first, or "
				       "the race went the other way)%s\n",
				       tries < 3 ? "; again" : "");
		}
		printf("# %s: %s, worker %u stalled %.1f s, bin %u %u -> %u "
		       "at %llu: %s%s, run %.2f s, move done %.0f ms after "
		       "its submission\n",
		       c[i].name, c[i].mode == MG_COPY ? "copy" : "handoff",
		       r.stall_worker, (double)stall_ns / 1e9, sc.bin, sc.from,
		       sc.to, (unsigned long long)sc.at,
		       !sc.placed   ? "not in flight in the stall"
		       : sc.checked ? "in flight half way through the stall"
				    : "in flight as the stall began",
		       sc.checked ? (sc.released ? " (released by the sender)"
						 : " (not released yet)")
				  : "",
		       r.wall_s, sc.done_ms);
	}
	assert_int_equal(fails, 0);
}

/* ---- 11. an ASAP move while the sources lag ------------------------------ */

/*
 * Worker 0's share of the source is 5x slower than its schedule (each of
 * its records 100 us of wall time, so on any machine); worker 1's share
 * keeps up easily, and every record goes to a bin of worker 1.  Worker 1's
 * share keeps within SOURCE_SKEW of worker 0's (worker.c): every output
 * waits for worker 0's share anyway, and what worker 1 made ahead would pile
 * up in its log -- its backlog stays a few ms of records, not a second's.
 * And a move submitted at MG_TIME_ASAP a second into the run takes effect
 * near the data's time: the control frontier keeps within its lead of the
 * sources when all lag (migrate.c, mg__ctl_target), not of the clock,
 * which the sources reach only after seconds of backlog have drained with
 * the old placement (a balancer's move off an overloaded worker used to
 * wait that long).  The data is at most 1/5 of the way plus what the
 * buffers hold: the check is "before half the clock", however slow the
 * machine (slower: further behind).  Then every record is counted once.
 */
static void
test_asap_follows_data(void **state)
{
	struct mg_test_lag l = {.bins_log2 = 4,
				.nkeys = 1,
				.ring = 16,
				.rate = 100000,
				.duration_ns = 2000 * MS};
	struct mg_migration_progress pr;
	struct mg_worker_stats ws[2];
	struct mg_migration *m = NULL;
	struct mg_run_stats st;
	uint16_t target[1u << 4];
	uint64_t started, clock_at, seen;

	(void)state;
	mg_test_lag_build(&l);
	mg_dataflow_owners(l.df, target);
	assert_int_equal(mg_dataflow_start(l.df, NULL, NULL), 0);
	started = mg_now_ns(); /* the dataflow's clock started before */
	while (mg_now_ns() - started < 1000 * MS)
		nanosleep(&(struct timespec){0, 10 * MS}, NULL);
	target[mg_test_lag_bin(&l, 0)] = 0;
	clock_at = (mg_now_ns() - started) / EPOCH_NS; /* at most the clock */
	assert_int_equal(
		mg_migrate(l.df, MG_ALL_AT_ONCE, target, MG_TIME_ASAP, 0, &m),
		0);
	seen = atomic_load_explicit(&l.last_time, memory_order_relaxed);
	mg_migration_progress(m, &pr);
	assert_int_equal(mg_dataflow_worker_stats(l.df, ws), 0);
	printf("# [asap] clock at epoch >= %llu, operator at %llu, the move "
	       "at %llu; worker 1's backlog %llu records\n",
	       (unsigned long long)clock_at, (unsigned long long)seen,
	       (unsigned long long)pr.first_time,
	       (unsigned long long)ws[1].backlog);
	atomic_store_explicit(&l.slow, false, memory_order_relaxed);
	assert_int_equal(mg_migration_wait(m), 0);
	assert_int_equal(mg_dataflow_join(l.df, &st), 0);
	assert_int_equal(atomic_load_explicit(&l.records, memory_order_relaxed),
			 mg_test_lag_total(&l));
	assert_int_equal(st.records, mg_test_lag_total(&l));
	mg_dataflow_destroy(l.df);
	assert_true(pr.first_time < clock_at / 2);
	/* a tenth of a second of the whole rate; SOURCE_SKEW is 16 ms */
	assert_true(ws[1].backlog < 10000);
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
		cmocka_unit_test(test_stall),
		cmocka_unit_test(test_asap_follows_data),
		cmocka_unit_test(test_no_hang_at_end), /* last: may leak a
							  stuck worker */
	};

	run_seed = mg_test_seed();
	signal(SIGALRM, run_watchdog);
	if (getenv("S_ONLY")) /* e.g. S_ONLY=test_chains */
		cmocka_set_test_filter(getenv("S_ONLY"));
	return MG_TEST_RUN(tests);
}
