/*
 * bench_run.h - what the dataflow benchmarks (keycount, nexmark) share: the
 * common flags, the latency timeline (CSV, progress lines), the paper's
 * migration protocol, a plan file or a random migration every few seconds
 * (for soak runs), --validate by per-timestamp output fingerprints, and the
 * JSON summary with its per-migration figures.
 *
 * Memory that grows with the run's length -- the fingerprints and the
 * latency windows -- is sized from --duration and resident from the start,
 * so that RSS measures the engine, not the harness: a long run (an hour's
 * soak) is validated in chunks of consecutive timestamps, each output's
 * time hashed into its fingerprint, so outputs must still match time by
 * time, in at most BENCH_FP_SLOTS fingerprints per worker.
 *
 * Use: bench_opts_defaults(), set record_max; getopt_long over your
 * options plus BENCH_OPTIONS, handing unknown codes to bench_opts_parse();
 * bench_opts_finish() (every flag, and a plan file, is checked by then);
 * bench_run_init(); build the dataflow with bench_run_config(), sinks
 * bench_run_sink_measured / _reference; bench_run_start() (what --balance
 * asks for; or a balancer of your own, given to bench_run_balancer());
 * mg_dataflow_start(df, bench_run_on_window, run);
 * bench_run_migrate(); join; bench_run_validate(); bench_run_report();
 * bench_run_destroy(); bench_opts_destroy().
 */
#ifndef BENCH_RUN_H
#define BENCH_RUN_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "engine/megaphone.h"
#include "numa/mg_base.h"
#include "queues/mg_channel.h"

struct bench_opts {
	uint64_t workers, rate, bins_log2, epoch_us, ring, batch, gap;
	uint64_t pool_reserve; /* bytes per pool class; 0 = the default */
	double duration;
	double migrate_at;    /* seconds; 0 = duration / 3 */
	double migrate_every; /* --migration random: seconds between two
				 migrations; 0 = 1 */
	uint64_t seed;	      /* the program's --seed, which random
				 migrations draw from too */
	double warmup;	      /* seconds excluded from whole-run latency */
	bool validate;
	bool random_mig;     /* --migration random */
	bool oversubscribe;  /* more workers than allowed CPUs */
	uint32_t record_max; /* bytes of the largest record the program's
				dataflow sends between workers: bounds
				--batch (default MG_RECORD_MAX) */
	const char *out;
	const char *migration; /* NULL (none), a strategy, "random", or a
				  plan file */
	struct mg_plan *plan;  /* that plan file, parsed by bench_opts_check();
				  owned, freed by bench_opts_destroy() */
	enum mg_strategy strategy;
	enum mg_mode mode;
	bool balance;	/* --balance on */
	bool bal_flags; /* a --balance-* flag or --scale was given */
	struct mg_balancer_config bal; /* --balance-interval, -threshold,
					  -cooldown, --scale (the rest:
					  the engine's defaults) */
};

/* The shared long options (codes 0x100 and up). */
#define BENCH_OPTIONS                                                  \
	{"workers", required_argument, NULL, 0x100},                   \
		{"rate", required_argument, NULL, 0x101},              \
		{"duration", required_argument, NULL, 0x102},          \
		{"bins", required_argument, NULL, 0x103},              \
		{"epoch-us", required_argument, NULL, 0x104},          \
		{"ring", required_argument, NULL, 0x105},              \
		{"batch", required_argument, NULL, 0x106},             \
		{"out", required_argument, NULL, 0x107},               \
		{"validate", no_argument, NULL, 0x108},                \
		{"migration", required_argument, NULL, 0x109},         \
		{"mode", required_argument, NULL, 0x10a},              \
		{"migrate-at", required_argument, NULL, 0x10b},        \
		{"gap", required_argument, NULL, 0x10c},               \
		{"warmup", required_argument, NULL, 0x10d},            \
		{"oversubscribe", no_argument, NULL, 0x10e},           \
		{"pool-reserve", required_argument, NULL, 0x10f},      \
		{"migrate-every", required_argument, NULL, 0x110},     \
		{"balance", required_argument, NULL, 0x111},           \
		{"balance-interval", required_argument, NULL, 0x112},  \
		{"balance-threshold", required_argument, NULL, 0x113}, \
		{"balance-cooldown", required_argument, NULL, 0x114},  \
	{                                                              \
		"scale", required_argument, NULL, 0x115                \
	}

/* Their help text, for a program's usage(). */
extern const char bench_opts_help[];

/* Defaults: 2 workers, 1 M records/s, 10 s, 2^12 bins, 1 ms epochs, ring
 * 64, batch 256, handoff, warm-up 1 s; records up to MG_RECORD_MAX; no
 * balancer (when on: decisions every 500 ms, threshold 0.2, cool-down 5 s,
 * patience 2, no scaling). */
void bench_opts_defaults(struct bench_opts *o);

/* Room for any reason bench_opts_set() and bench_opts_check() give. */
#define BENCH_ERR_MAX 512

/*
 * Apply shared option @c with @arg (borrowed; --out and --migration keep
 * pointing into it).  Context: option processing; allocates nothing.
 * Return: 1 if applied; 0 if @c is not one of BENCH_OPTIONS; -EINVAL for
 * a bad value, with the reason, naming the flag, in @err (truncated to
 * @len; @err may be NULL if @len is 0).
 */
int bench_opts_set(struct bench_opts *o, int c, const char *arg, char *err,
		   size_t len);

/*
 * Defaults that depend on other flags, and cross-flag checks, once every
 * flag is set: --batch against what a channel holds of @o->record_max
 * byte records, --workers against the CPUs this thread may run on (unless
 * --oversubscribe), --warmup and --migrate-at against --duration, the
 * --balance-* flags and --scale need --balance on, which excludes
 * --migration (both move bins).  A
 * --migration plan file is read and checked against --bins and --workers
 * into @o->plan (replacing one parsed before).  Context: option
 * processing, once the flags are set; may allocate and read the file.
 * Return: 0; -EINVAL with the reason in @err, as for bench_opts_set() (for
 * a plan file "path:line: reason" or "path: reason"); -ENOMEM, -ENOENT, -EIO
 * or another -errno of reading the plan file, with its reason.
 */
int bench_opts_check(struct bench_opts *o, char *err, size_t len);

/* bench_opts_set() for programs: a bad value prints "prog: reason" and
 * the usage hint and exits 2.  Return: false if @c is not one of
 * BENCH_OPTIONS. */
bool bench_opts_parse(struct bench_opts *o, int c, const char *arg,
		      const char *prog);

/* bench_opts_check() for programs: a failed check exits 2 the same way
 * (out of memory: 1). */
void bench_opts_finish(struct bench_opts *o, const char *prog);

/* Free what the options own (the plan); @o can be set again. */
void bench_opts_destroy(struct bench_opts *o);

#define BENCH_MAX_MIGRATIONS 16
/* Fingerprints per worker and operator at most: a run with more
 * timestamps is validated in chunks of consecutive ones. */
#define BENCH_FP_SLOTS 65536

struct bench_fp {
	uint64_t count, sum;
};

/* --migration random: what the migrations did. */
struct bench_random_migs {
	uint64_t submitted, done, bins, bytes;
	uint64_t late;	       /* began after their moment: the one before
				  took longer than --migrate-every */
	uint64_t unfinished;   /* the run ended first */
	double sum_ms, max_ms; /* duration, submission to done */
	double last_print;
};

struct bench_run {
	const char *name;	    /* program name for messages */
	const struct bench_opts *o; /* borrowed */
	uint32_t rec_size;	    /* bytes fingerprinted per output */
	uint64_t ntimes;	    /* timestamps fingerprinted */
	uint64_t span;		    /* ... in slots of this many */
	uint64_t nslots;	    /* ceil(ntimes / span) */
	struct bench_fp *fp[2];	    /* [W * nslots]: measured, reference */
	size_t fp_bytes;	    /* each (resident mapping) */
	uint64_t fp_overflow[2];
	FILE *csv;
	FILE *wcsv;		/* workers.csv: each window's worker loads */
	struct mg_dataflow *df; /* borrowed, from bench_run_start() */
	double last_progress;
	struct mg_window_stats *win; /* resident mapping */
	unsigned nwin, maxwin;
	struct bench_random_migs rnd;
	struct {
		const char *what;
		struct mg_migration_progress p;
	} mig[BENCH_MAX_MIGRATIONS];
	unsigned nmig;
	struct mg_balancer *bal; /* borrowed; NULL without one */
	struct mg_balancer_config bal_cfg;
};

/*
 * Set up @r: fingerprints if validating (outputs of @rec_size bytes, times
 * up to @ntimes - 1; later ones fail validation), the latency windows of
 * a run of --duration (and as long again behind), @o->out's timeline.csv.
 * Exits 1 with a message on failure.
 */
void bench_run_init(struct bench_run *r, const char *name,
		    const struct bench_opts *o, uint32_t rec_size,
		    uint64_t ntimes);

/* The dataflow configuration the shared flags ask for. */
void bench_run_config(const struct bench_run *r, struct mg_dataflow_config *dc);

/*
 * Print why mg_dataflow_create() failed with @err for the configuration
 * bench_run_config() gave, with a hint only where the flags explain the
 * error (-EINVAL: more workers than allowed CPUs without --oversubscribe;
 * -ENOMEM: the pools' address space), and exit 1.
 */
_Noreturn void bench_run_die_create(const struct bench_run *r, int err);

/* mg_window_fn (ctx: the run): keep, write CSV, print progress each second. */
void bench_run_on_window(void *ctx, const struct mg_window_stats *w);

/* mg_sink_fn (ctx: the run): fingerprint an output of the measured or the
 * reference operator. */
void bench_run_sink_measured(void *ctx, unsigned worker, uint64_t time,
			     const void *rec);
void bench_run_sink_reference(void *ctx, unsigned worker, uint64_t time,
			      const void *rec);

/*
 * Run the migrations --migration asks for, from the control thread, while
 * @df runs (@t0: its start, mg_now_ns()): the paper's protocol (half the
 * bins of half the workers at --migrate-at and back at twice that), a plan
 * file, or random: from --migrate-at every --migrate-every seconds until
 * the input ends, 1 to nbins / 8 random bins each to a random other
 * worker, all at once, one migration after the other (drawn from --seed).
 * Returns when they are done or the run ended.
 */
void bench_run_migrate(struct bench_run *r, struct mg_dataflow *df,
		       uint64_t t0);

/*
 * Join @df into @st; a failed run exits naming what failed (e.g. the buffer
 * whose limit was hit), and moves that copy mode made as handoffs are said
 * on stderr (such a run measured less copying).
 */
void bench_run_join(struct bench_run *r, struct mg_dataflow *df,
		    struct mg_run_stats *st);

/*
 * Records per second the run sustained: @records over the input's duration,
 * or over the time its last records completed if that was later (a run
 * that fell behind).  Work after the input -- timers firing at far-future
 * deadlines -- does not count against it.
 */
double bench_run_achieved(const struct bench_run *r, uint64_t records);

/*
 * Report balancer @b (started with @c, borrowed), owned by the dataflow,
 * with the run: its events go into the JSON summary (bench_run_report(),
 * which must run before the dataflow is destroyed) and, as marks, into
 * migrations.txt for bench/plot.
 */
void bench_run_balancer(struct bench_run *r, struct mg_balancer *b,
			const struct mg_balancer_config *c);

/* mg_balance_fn (ctx: the run): a progress line per balancer decision. */
void bench_run_on_balance(void *ctx, const struct mg_balance_event *e);

/*
 * Tie @r to @df (built, not yet started): with --out, each latency window
 * adds every worker's load to DIR/workers.csv.  With --balance on, start
 * the engine's balancer on @df with the --balance-* and --scale settings,
 * a progress line per decision (bench_run_on_balance) and its report in
 * the run's (bench_run_balancer()).
 * Context: the building thread, before mg_dataflow_start(); creates a
 * thread.
 * Return: 0; -EINVAL if --balance is on and @df has no stateful operator
 * with bins to balance, or counts no load (no_stats); the other errors of
 * mg_balancer_start().
 */
int bench_run_start(struct bench_run *r, struct mg_dataflow *df);

/* Compare the two operators' per-timestamp fingerprints; print a line. */
bool bench_run_validate(const struct bench_run *r);

/* Outputs fingerprinted of the measured (@which 0) or the reference (1)
 * operator, beyond the last timestamp included; 0 unless validating. */
uint64_t bench_run_outputs(const struct bench_run *r, int which);

/* Complete @json (an object) with the migrations and steady-state figures
 * (when migrating) and the balancer's decisions (with one: as many events
 * as fit in @len, the rest counted as dropped), print it on stdout, write
 * summary.json and migrations.txt under --out. */
void bench_run_report(struct bench_run *r, char *json, size_t len);

void bench_run_destroy(struct bench_run *r);

/* Print "name: what: error" and exit 1. */
_Noreturn void bench_die(const char *name, const char *what, int err);

#endif /* BENCH_RUN_H */
