/*
 * mg_test_count.h - the pushed counting computation of the balancer and
 * elastic tests: the main thread pushes {key, seq} records through one
 * producer at logical times it chooses, a stateful operator counts per key
 * and emits {key, count so far} per record (spinning spin_ns per record
 * when a case wants load, spin0_ns more on worker 0), and a sink fingerprints each time's outputs per
 * worker.  The reference is computed by the main thread as it pushes;
 * count_finish() compares time for time after the join.
 *
 * Use: fill the case's fields of a struct count_run (name .. keys), call
 * count_build(), start the dataflow, count_push() times, count_finish(),
 * count_teardown().  Only the main thread asserts; workers record into
 * their own rows.
 */
#ifndef MG_TEST_COUNT_H
#define MG_TEST_COUNT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/megaphone.h"
#include "numa/mg_base.h"

#define COUNT_MAX_T    (1u << 17) /* logical times a run may push */
#define COUNT_MAX_W    4
#define COUNT_PER_TIME 32 /* records pushed per time */

struct count_fp {
	uint64_t count, sum;
};

/* Written by worker w into its own row; read by main after the join. */
struct count_row {
	struct count_fp fp[COUNT_MAX_T];
	uint64_t overflow;
} MG_CACHE_ALIGNED;

struct count_run {
	/* the case's */
	const char *name;
	unsigned W, bins_log2;
	enum mg_mode mode;
	bool no_stats;
	unsigned producer_worker; /* the producer is bound to it */
	unsigned nkeys;		  /* keys[] entries */
	uint64_t *keys;		  /* the keys pushed, by index (the case's) */
	/* per record, in the operator: a load; set by main while the workers
	 * read it (relaxed: only the value matters) */
	_Atomic uint64_t spin_ns;
	_Atomic uint64_t spin0_ns; /* more on worker 0: a slower CPU */
	/* count_build()'s */
	uint64_t *counts;	/* [nkeys] reference count per key */
	struct count_fp *ref;	/* [COUNT_MAX_T] */
	struct count_row *rows; /* [W] */
	uint64_t seq, times;
	struct mg_dataflow *df;
	struct mg_balancer *bal; /* the case's, if it starts one */
	struct mg_producer *p;
	struct mg_input *in;
	struct mg_probe *probe;
	double watchdog_s; /* MG_WATCHDOG_S, default 120 */
};

/* The dataflow (created, not started): input -> count -> sink, probe. */
void count_build(struct count_run *x);
/* Push the next time's COUNT_PER_TIME records, record i on keys[idx[i]],
 * and advance past it, without waiting; the reference follows. */
void count_push(struct count_run *x, const unsigned *idx);
/* Close the input, join, and compare every time's outputs with the
 * reference (and, with a balancer, print its decisions). */
void count_finish(struct count_run *x);
void count_teardown(struct count_run *x);
/* Whether fewer times were pushed since logical time @t0 than milliseconds
 * have passed since @t0_s (count_now_s()): a load offered on the clock,
 * a time per millisecond however late the pusher's sleeps end, pushes
 * while this holds. */
bool count_behind_clock(const struct count_run *x, double t0_s, uint64_t t0);
/* The bin of @key (bins_log2 set). */
uint32_t count_bin_of(const struct count_run *x, uint64_t key);
/* The clock in seconds. */
double count_now_s(void);

#endif
