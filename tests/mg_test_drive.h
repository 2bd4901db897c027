/*
 * mg_test_drive.h - drives: struct run hooks (tests/mg_test_run.h) that
 * submit migrations while a run runs, shared by t-engine-migration.c and
 * the long random campaign (tests/long/l-migration.c).  Each draws its
 * choices from the run's generator (run_rnd()), submits through
 * run_submit()/run_submit_plan() so that the checks know the moves, and
 * records what goes wrong with FAIL().
 *
 *   run_drive_random    1-3 migrations, each all-at-once, fluid or batched
 *                       of a random set of bins not in flight, at a random
 *                       time ahead (up to duration / 6), after a random
 *                       pause (up to duration / 30), each either after the
 *                       ones before it or concurrently with them;
 *   run_drive_chain     one plan moving the bin with the most keys along
 *                       r->chain_len workers in consecutive epochs
 *                       (A->B->C...), the last hop back to A if
 *                       r->chain_back (needs 2 or more workers);
 *   run_drive_all_bins  every bin to the next worker all-at-once, then
 *                       again as a one-step plan;
 *   run_drive_overload  everything up front, for times inside the data:
 *                       the paper's half of half all-at-once, the other
 *                       bins in a two-step plan (for short runs at a rate
 *                       above what the workers sustain: 20 ms or more);
 *                       if this thread was held up so long that the moves
 *                       fall after the data, it says so and sets r->missed.
 *
 * Context: the main thread, as struct run's drive hook.
 *
 * run_plan() draws a whole run -- which drive, workers, bins, rings,
 * batches, rates, timers, inputs, mode -- as plan @i of a campaign seeded
 * with @seed: the random test of t-engine-migration.c runs plans 0..11,
 * `make check-long` (tests/long/l-migration.c) 0..9999, so the test suite's
 * random test is the first sample of the long campaign.
 */
#ifndef MG_TEST_DRIVE_H
#define MG_TEST_DRIVE_H

#include "tests/mg_test_run.h"

void run_drive_random(struct run *r, struct mg_dataflow *df);
void run_drive_chain(struct run *r, struct mg_dataflow *df);
void run_drive_all_bins(struct run *r, struct mg_dataflow *df);
void run_drive_overload(struct run *r, struct mg_dataflow *df);

/* The kinds of plans run_plan() draws. */
enum run_plan_kind {
	RUN_PLAN_RANDOM,   /* run_drive_random: 1-3 migrations, any strategy */
	RUN_PLAN_CHAIN,	   /* run_drive_chain: one bin along 1-4 workers */
	RUN_PLAN_ALL_BINS, /* run_drive_all_bins: every bin, twice */
	RUN_PLAN_OVERLOAD, /* run_drive_overload: tiny rings, 0.6-1 M rec/s */
	RUN_PLAN_KINDS
};

extern const char *const run_plan_kind_name[RUN_PLAN_KINDS];

/*
 * Fill @r with plan @i of the campaign seeded with @seed: the kind is
 * fixed by @i (of every 8 plans 4 random, 2 chains, 1 all-bins, 1
 * overload), everything else is drawn from a generator derived from @seed
 * and @i alone, so one plan can be replayed without the ones before it.
 * The first plans cover both modes for every kind and every combination of
 * timers and a second input; then 1-4 workers (2-4 where a move needs
 * two), 2^4..2^10 bins, rings of 2..64 slots, batches of 1..64 records.
 * @name: the caller's buffer (@len bytes) for r->name.  The run is
 * lenient (submissions whose time passed are shifted) and, for a campaign,
 * @quiet (printing only if it fails).  Return: the plan's kind.
 */
enum run_plan_kind run_plan(struct run *r, uint64_t seed, uint64_t i,
			    bool quiet, char *name, size_t len);

#endif /* MG_TEST_DRIVE_H */
