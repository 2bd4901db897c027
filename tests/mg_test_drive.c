/*
 * mg_test_drive.c - the drives shared by the migration tests (see
 * mg_test_drive.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/mg_test.h"
#include "tests/mg_test_drive.h"

/* ---- random migrations ---------------------------------------------------- */

void
run_drive_random(struct run *r, struct mg_dataflow *df)
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
		uint64_t ahead = run_rnd(r, r->duration_ns / 6 / MS + 1) * MS,
			 gap = run_rnd(r, 4), at;
		char what[64];
		int err;

		run_sleep_ns(run_rnd(r, r->duration_ns / 30));
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

/* ---- a chain in one plan --------------------------------------------------- */

void
run_drive_chain(struct run *r, struct mg_dataflow *df)
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
	for (i = 0; !err && i < r->chain_len; i++) {
		unsigned to = r->chain_back && i + 1 == r->chain_len
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

/* ---- all bins in one step -------------------------------------------------- */

void
run_drive_all_bins(struct run *r, struct mg_dataflow *df)
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

/* ---- overload -------------------------------------------------------------- */

/*
 * Everything is submitted up front, for times inside the data: the control
 * frontier keeps ahead of the fastest source, which under overload may be
 * well ahead of the records the operators process, so anything submitted
 * later could fall after the last record.
 */
void
run_drive_overload(struct run *r, struct mg_dataflow *df)
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
	/* this thread was held up (a loaded machine): the moves still run,
	 * after the data, but not under the overload the case is about */
	r->missed = t1 + 60 >= r->last_epoch;
	if (r->missed)
		printf("#   note: the moves fall after the data (this thread "
		       "was held up)\n");
out:
	mg_plan_destroy(p);
	free(start);
	free(target);
	free(mv);
	free(back);
}

/* ---- a random run: one plan of a campaign ---------------------------------- */

const char *const run_plan_kind_name[RUN_PLAN_KINDS] = {"random", "chain",
							"all-bins", "overload"};

enum run_plan_kind
run_plan(struct run *r, uint64_t seed, uint64_t i, bool quiet, char *name,
	 size_t len)
{
	static const enum run_plan_kind kinds[8] = {
		RUN_PLAN_RANDOM,   RUN_PLAN_RANDOM,  RUN_PLAN_CHAIN,
		RUN_PLAN_ALL_BINS, RUN_PLAN_RANDOM,  RUN_PLAN_RANDOM,
		RUN_PLAN_CHAIN,	   RUN_PLAN_OVERLOAD};
	/* the first eight: each kind in both modes */
	static const bool copy8[8] = {false, true,  true,  false,
				      true,  false, false, true};
	enum run_plan_kind kind = kinds[i % 8];
	uint64_t rng = mg_hash64(seed ^ mg_hash64(i + 0x51ed270b27a5ull));
	bool copy = mg_test_rand(&rng) & 1;

	*r = (struct run){.lenient = true, .quiet = quiet};
	r->rng = mg_test_rand(&rng);
	r->mode = (i < 8 ? copy8[i] : copy) ? MG_COPY : MG_HANDOFF;
	/* the first four: every combination of timers and a second input */
	r->timers = i < 4 ? (i & 1) : mg_test_rand(&rng) & 1;
	r->binary = i < 4 ? (i >> 1) & 1 : mg_test_rand(&rng) % 3 == 0;
	r->delay = 1 + (unsigned)(mg_test_rand(&rng) % 7);
	r->ring = 2u << (mg_test_rand(&rng) % 6);
	r->batch = 1 + (uint32_t)(mg_test_rand(&rng) % 64);
	r->keys = 20 + (unsigned)(mg_test_rand(&rng) % 2000);
	r->bins_log2 = 4 + (unsigned)(mg_test_rand(&rng) % 7);
	switch (kind) {
	case RUN_PLAN_RANDOM:
		r->drive = run_drive_random;
		r->workers = 1 + (unsigned)(mg_test_rand(&rng) % 4);
		r->rate[0] = 50000 + (double)(mg_test_rand(&rng) % 250000);
		r->rate[1] = 20000 + (double)(mg_test_rand(&rng) % 80000);
		r->duration_ns = 120 * MS;
		break;
	case RUN_PLAN_CHAIN:
		r->drive = run_drive_chain;
		r->workers = 2 + (unsigned)(mg_test_rand(&rng) % 3);
		r->chain_len = 1 + (unsigned)(mg_test_rand(&rng) % 4);
		r->chain_back = r->chain_len > 1 && mg_test_rand(&rng) & 1;
		r->rate[0] = 100000 + (double)(mg_test_rand(&rng) % 400000);
		r->rate[1] = 20000 + (double)(mg_test_rand(&rng) % 80000);
		r->duration_ns = 60 * MS;
		break;
	case RUN_PLAN_ALL_BINS:
		r->drive = run_drive_all_bins;
		r->workers = 2 + (unsigned)(mg_test_rand(&rng) % 3);
		r->bins_log2 = 4 + (unsigned)(mg_test_rand(&rng) % 5);
		r->rate[0] = 100000 + (double)(mg_test_rand(&rng) % 200000);
		r->rate[1] = 20000 + (double)(mg_test_rand(&rng) % 80000);
		r->duration_ns = 60 * MS;
		break;
	default: /* overload: the workers cannot keep up; records queue */
		r->drive = run_drive_overload;
		r->workers = 2 + (unsigned)(mg_test_rand(&rng) % 3);
		r->ring = 2u << (mg_test_rand(&rng) % 2);
		r->batch = 1 + (uint32_t)(mg_test_rand(&rng) % 2);
		r->keys = 200 + (unsigned)(mg_test_rand(&rng) % 1000);
		r->rate[0] = 600000 + (double)(mg_test_rand(&rng) % 400000);
		r->rate[1] = 50000 + (double)(mg_test_rand(&rng) % 100000);
		r->duration_ns = 20 * MS;
		break;
	}
	snprintf(name, len, "plan %llu (%s)", (unsigned long long)i,
		 run_plan_kind_name[kind]);
	r->name = name;
	return kind;
}
