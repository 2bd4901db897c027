/*
 * mg_test_lag.h - a source whose worker-0 share lags the clock, for the
 * migration and balancer tests: 2 workers, an open-loop source whose
 * records on worker 0 each take LAG_SPIN_NS of wall time to make (with
 * `slow_op`: to count, in the operator on worker 0) while `slow` is set
 * (5x slower than a 10^5 records/s schedule, on any machine; every share
 * keeps with the slowest, worker.c), all records on `nkeys` keys in
 * distinct bins -- the first `on0` of worker 0, the rest of worker 1 --
 * each key as many records, and a counting stateful operator.
 *
 * Use: fill the case's fields, mg_test_lag_build() (asserts; `slow` set,
 * not started), start the dataflow, clear `slow` to let the run end,
 * join, destroy -- or mg_test_lag_finish() for the last three.
 */
#ifndef MG_TEST_LAG_H
#define MG_TEST_LAG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/megaphone.h"

#define LAG_SPIN_NS  100000ull /* worker 0's share, per record while slow */
#define LAG_MAX_KEYS 16
#define LAG_EPOCH_NS 100000ull

struct mg_test_lag {
	/* the case's */
	unsigned bins_log2;
	unsigned nkeys;	      /* 1..LAG_MAX_KEYS */
	unsigned on0;	      /* of them in worker 0's bins, <= nkeys */
	bool slow_op;	      /* worker 0 slow in its bins, not its source */
	uint32_t ring;	      /* ring capacity; 0: the default */
	double rate;	      /* records/s over both workers */
	uint64_t duration_ns; /* the source's schedule */
	/* set by mg_test_lag_build(); the counters by the workers */
	struct mg_dataflow *df;
	uint64_t keys[LAG_MAX_KEYS]; /* record seq carries keys[seq % nkeys] */
	_Atomic bool slow;
	_Atomic uint64_t records;   /* counted by the operator */
	_Atomic uint64_t last_time; /* the latest time it was called at */
};

void mg_test_lag_build(struct mg_test_lag *l);
/* The records the source makes in all: rate x duration. */
uint64_t mg_test_lag_total(const struct mg_test_lag *l);
/* Clear `slow`, join the run, check the operator counted every record
 * once, destroy the dataflow (and a balancer on it). */
void mg_test_lag_finish(struct mg_test_lag *l);
/* The bin of keys[i]. */
uint32_t mg_test_lag_bin(const struct mg_test_lag *l, unsigned i);

#endif /* MG_TEST_LAG_H */
