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
 *                       above what the workers sustain: 20 ms or more).
 *
 * Context: the main thread, as struct run's drive hook.
 */
#ifndef MG_TEST_DRIVE_H
#define MG_TEST_DRIVE_H

#include "tests/mg_test_run.h"

void run_drive_random(struct run *r, struct mg_dataflow *df);
void run_drive_chain(struct run *r, struct mg_dataflow *df);
void run_drive_all_bins(struct run *r, struct mg_dataflow *df);
void run_drive_overload(struct run *r, struct mg_dataflow *df);

#endif /* MG_TEST_DRIVE_H */
