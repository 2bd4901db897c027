/*
 * mg_test_run.h - the run harness of the engine's migration tests: one run
 * of the model computation (tests/mg_test_model.h) through the engine --
 * sources, the counting stateful operator, a sink that fingerprints every
 * timestamp's outputs per worker -- with hooks that submit migrations while
 * it runs, and the checks after it (outputs against the reference, every
 * (bin, time) called once, in time order, on the owner the configuration
 * names; every migration done).
 *
 * Use: fill a struct run (name, workers, bins, rates, duration, hooks),
 * call run_case(), which returns the number of failed checks (each printed
 * as "# FAIL [name] ...").  Hooks run on the main thread: before_start,
 * drive (while the dataflow runs), after_join.  Inside hooks submit with
 * run_submit()/run_submit_plan() (they record what the checks need), wait
 * with run_wait_mig(), and record failures with FAIL().
 *
 * Runs are in handoff or copy mode (mode; the counting state serializes
 * itself), and may stall one worker for a while (stall_ns: a heavy call,
 * or a worker the machine descheduled).
 *
 * A run that makes no progress (no operator call) for join_timeout_s (plus
 * stall_ns) is reported hung: the engine's state (mg_dataflow_dump) and every thread's
 * stack go to stderr, the run's dataflow is leaked and the other cases go
 * on; SIGALRM (run_watchdog: no operator call for WATCHDOG_S while the
 * harness watches, or a hook stuck that long) is the last resort, and
 * dumps the same before it exits.
 *
 * Workers only record into per-worker slots; the main thread checks.
 */
#ifndef MG_TEST_RUN_H
#define MG_TEST_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/megaphone.h"
#include "numa/mg_base.h"
#include "tests/mg_test_model.h"

#define EPOCH_NS       100000ull /* 100 us */
#define MS	       1000000ull
#define TIMER_DELAY    3 /* epochs */
#define MAX_W	       4
#define MAX_MIG	       96
#define CALL_N	       0x0f	  /* calls of a (worker, bin, time), capped */
#define CALL_IN	       0x10	  /* one of them carried records */
#define CALL_TM	       0x20	  /* one of them carried timers */
#define SHOW	       4	  /* details printed per kind of mismatch */
#define WATCHDOG_S     180	  /* last resort; finish() gives up first */
#define JOIN_TIMEOUT_S 20	  /* no operator call for this long: hung */
#define RUN_ANY_BIN    UINT32_MAX /* struct run's stall_bin */
#define RUN_LAST_EPOCH UINT64_MAX /* struct run's stall_time */

/* struct run's stall_state, in this order */
enum { RUN_STALL_UNARMED, RUN_STALL_NOT_YET, RUN_STALLING, RUN_STALLED };

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
	uint64_t copied_in;	/* copy mode: bins rebuilt here */
	uint64_t copy_errors;	/* ... whose bytes were another bin's */
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
	double started; /* run_now_s() when the dataflow started */
	/* Retry a submission whose time passed while this thread was
	 * preempted (shifted later), and record one refused because every
	 * source has closed -- both outcomes mg_migrate() documents.  Off
	 * for the cases that test those refusals themselves. */
	bool lenient;
	bool timers, binary;
	/* Copy mode: whether the operator's serialize (@ser) or deserialize
	 * of @bin says -ENOMEM (counted in copy_fails); NULL: never. */
	bool (*copy_fail)(struct run *r, bool ser, uint32_t bin);
	/* Allocations or buffers may fail: a run that ends with an error is
	 * checked up to the probe's frontier (the times complete before it
	 * stopped), and the operator's failures in it (mg_schedule, a map
	 * insert) are no failure of the engine. */
	bool faults;
	hook_fn before_start, drive, after_join;
	void *arg;	    /* the case's own data, for its hooks */
	unsigned chain_len; /* run_drive_chain(): hops after the first owner */
	bool chain_back;    /* ... the last one back to it */
	uint64_t rng;	    /* the hooks' randomness */
	int expect_join;    /* what join should return; INT32_MIN: any */
	int join_err;	    /* what it returned */
	double join_timeout_s; /* give up on the run's end after this
				   long without progress (0: JOIN_TIMEOUT_S;
				   stall_ns is added) */
	bool hung;	       /* it gave up */
	bool outputs_only;     /* moves not recorded: skip the owner check */
	bool quiet;	       /* print only if something failed */
	enum mg_mode mode;     /* how migrations move the bins */
	/* A stall: worker stall_worker's first call of bin stall_bin
	 * (RUN_ANY_BIN: of any bin) at a time >= stall_time (RUN_LAST_EPOCH:
	 * the last record's epoch) sleeps stall_ns inside the user function
	 * -- a heavy call, or a worker the machine descheduled.  stall_ns 0:
	 * none.  stall_later: a drive sets stall_time with run_arm_stall()
	 * while the run runs.  The worker moves stall_state from
	 * RUN_STALL_NOT_YET to RUN_STALLING (release) before it sleeps and to
	 * RUN_STALLED (release) after; run_wait_stall() waits for the
	 * first. */
	uint64_t stall_ns;
	unsigned stall_worker;
	uint32_t stall_bin;
	uint64_t stall_time;
	bool stall_later;
	_Atomic unsigned stall_state;
	uint32_t stalled_bin;  /* the call that stalled: written by the */
	uint64_t stalled_time; /* worker before RUN_STALLING */
	unsigned late_moves, late_refused; /* drive_until_end() */
	bool missed; /* a drive could not place its moves where it meant to
			(this thread was held up): the case decides */
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
	uint64_t completed;	     /* the probe's frontier after the join */
	_Atomic uint64_t copy_fails; /* copy_fail() said so (any thread) */
};

/* Record a failed check of @r: printed at once, counted in r->fails. */
#define FAIL(r, ...)                               \
	do {                                       \
		printf("# FAIL [%s] ", (r)->name); \
		printf(__VA_ARGS__);               \
		printf("\n");                      \
		(r)->fails++;                      \
	} while (0)

extern uint64_t run_seed; /* the test file's seed: set it from mg_test_seed() */

/* The generator state of case @k, derived from run_seed. */
uint64_t run_seed_of(unsigned k);
/* SIGALRM handler: the last resort against a hung run (writes the
 * running case's name, its engine state and every thread's stack, exits 1). */
void run_watchdog(int sig);
void run_sleep_ns(uint64_t ns);
double run_now_s(void);
/* A random number below @n from the run's hook generator (0 for 0). */
uint64_t run_rnd(struct run *r, uint64_t n);
/* FAIL() unless @got == @want; -ECANCELED from a submission is tolerated
 * where 0 is wanted (the run had ended: a slow machine). */
void run_expect_err(struct run *r, const char *what, int got, int want);
/* mg_migrate() / mg_migrate_plan(), recording the moves for the checks
 * (with MG_TIME_ASAP, at the time the engine took); retried later when the
 * time passed (-ETIME) on a lenient run. */
int run_submit(struct run *r, struct mg_dataflow *df, enum mg_strategy s,
	       const uint16_t *target, uint64_t at, uint64_t gap,
	       struct mg_migration **out);
int run_submit_plan(struct run *r, struct mg_dataflow *df,
		    const struct mg_plan *p, struct mg_migration **out);
/* For a run with stall_later: stall at the first call at a time >= @time
 * from now on (once; the worker, bin and length are the run's). */
void run_arm_stall(struct run *r, uint64_t time);
/* Wait until the stall has begun (r->stall_state past RUN_STALL_NOT_YET).
 * False if the run stopped taking migrations first (a slow machine: the
 * stalled worker had not reached stall_time when the input ended), or,
 * with a FAIL(), if it made no progress for join_timeout_s. */
bool run_wait_stall(struct run *r, struct mg_dataflow *df);
/* Whether a migration the run submitted still moves bin @b. */
bool run_in_flight(const struct run *r, uint32_t b);
/* mg_migration_wait() under the progress watchdog. */
int run_wait_mig(struct run *r, struct mg_migration *m);
/* FAIL() (with @what) unless the two owner arrays are equal. */
bool run_owners_equal(struct run *r, const uint16_t *a, const uint16_t *b,
		      const char *what);
/* The run took much longer than its schedule / lagged behind the clock. */
bool run_overloaded(const struct run *r);
bool run_lagged(const struct run *r);
/* One case: build, start, drive, join, check.  Return: failed checks. */
unsigned run_case(struct run *r);

#endif /* MG_TEST_RUN_H */
