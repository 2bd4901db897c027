/*
 * megaphone.h - the public interface of libmegaphone.
 *
 * A dataflow is built on one control thread, then run by W worker threads,
 * each pinned to one allowed CPU and each running an instance of every
 * operator on its share of the data in a cooperative loop.
 *
 *   source ──► flat_map ──► exchange / distribute ──► stateful ──► sink
 *                                                        │
 *                                                      probe
 *
 * Records are fixed-size per stream.  Timestamps are uint64 epochs of the
 * wall clock since the run started (default epoch 1 ms, down to 10 us).
 * Open-loop sources stamp each record with the epoch of its *scheduled* time
 * and keep their schedule under overload, so overload shows as latency.
 *
 * Stateful operators (Megaphone's interface): a key's 64-bit hash picks its
 * bin by its top k bits (2^k bins, 4 <= k <= 20); the user function is called
 * once per (bin, time) with that time's records of the bin, in timestamp
 * order, once the input frontier has passed the time.  It may emit output at
 * that time and schedule post-dated records for later times; those live in
 * the bin (in its arena, with the rest of its state) and come back through
 * the same function when their time is complete.  Within one time the order
 * of records is unspecified.
 *
 * The *native* baseline runs the same function with static hash partitioning
 * (worker = hash mod W): one state per worker, no bins, no routing table.
 *
 * Errors: functions that can fail return 0 or a negative errno and change
 * nothing on failure; mg_strerror() gives the text.  Builders refuse bad
 * wiring (a stream of another dataflow, a record size that does not match,
 * building after start) with -EINVAL.
 */
#ifndef MEGAPHONE_H
#define MEGAPHONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "numa/mg_numa.h"
#include "queues/mg_ring.h"
#include "migration/mg_copy.h"
#include "migration/mg_migration.h"
#include "migration/mg_plan.h"
#include "migration/mg_state.h"

/* The text for a return code of this library (0 or -errno). */
const char *mg_strerror(int err);

struct mg_dataflow;
struct mg_stream;

/*
 * How a bin's state travels.  HANDOFF: the old owner releases the bin's
 * pages with one release store and the new owner acquires them; nothing is
 * copied.  COPY: Megaphone's way, the baseline -- the old owner serializes
 * the bin into the channel, the new owner rebuilds it in a fresh arena.
 */
enum mg_mode { MG_HANDOFF, MG_COPY };

struct mg_dataflow_config {
	unsigned workers;	/* default 1 */
	bool oversubscribe;	/* allow more workers than allowed CPUs */
	unsigned bins_log2;	/* 4..20, default 12 */
	uint64_t epoch_ns;	/* >= 10 us, default 1 ms */
	uint32_t batch_records; /* records per channel batch, default 256 */
	uint32_t ring_capacity; /* slots per channel, power of two >= 2,
				    default 64 */
	enum mg_mode mode;	/* how migrations move state: MG_HANDOFF */
	bool rehome;		/* after a handoff across nodes, move the
				    bin's pages to the new node (background,
				    rate-limited) */
	size_t pool_reserve;	/* virtual bytes per pool class, 0 = sized
				    from physical memory and RLIMIT_AS */
	uint64_t window_ns;	/* latency window, default 250 ms */
	uint64_t warmup_ns;	/* whole-run latency ignores timestamps
				    completed before this; windows keep all */
};

/*
 * Create an empty dataflow: topology, pools, latency statistics.
 * @cfg: borrowed; NULL means all defaults.
 * Context: control thread.
 * Return: 0; -EINVAL for a bad configuration (bins_log2 out of range,
 * ring_capacity not a power of two, more workers than allowed CPUs without
 * oversubscribe, epoch below 10 us); -ENOMEM.
 */
int mg_dataflow_create(struct mg_dataflow **out,
		       const struct mg_dataflow_config *cfg);

/* Stop (if running), join and free everything (takes @df). */
void mg_dataflow_destroy(struct mg_dataflow *df);

/* ---- building ------------------------------------------------------------- */

/*
 * Generate record number @seq (global, 0-based) into @rec (record_size
 * bytes, zeroed).  Record numbers are split across workers round-robin
 * (worker w generates w, w + W, ...).  Runs on worker @worker.
 */
typedef void (*mg_gen_fn)(void *ctx, unsigned worker, uint64_t seq, void *rec);

struct mg_source_config {
	uint32_t record_size;
	double rate;	      /* records/s in total over all workers, > 0 */
	uint64_t duration_ns; /* schedule length; then the source closes */
	mg_gen_fn gen;
	void *ctx; /* shared: passed to gen on every worker */
};

/* An open-loop source.  Return: 0; -EINVAL; -ENOMEM. */
int mg_source(struct mg_dataflow *df, const struct mg_source_config *cfg,
	      struct mg_stream **out);

/*
 * When an open-loop source of @rate records/s schedules record @seq: ns
 * after the run's start.  Its timestamp is that divided by the epoch.
 */
static inline uint64_t
mg_sched_ns(double rate, uint64_t seq)
{
	return (uint64_t)((double)seq * 1e9 / rate);
}

struct mg_emitter; /* where a user function's output goes */

/* Emit @rec (the stream's record size) at the current time. */
void mg_emit(struct mg_emitter *e, const void *rec);

/* The time the current call runs at. */
uint64_t mg_emitter_time(const struct mg_emitter *e);

/* The worker the current call runs on. */
unsigned mg_emitter_worker(const struct mg_emitter *e);

/* Stateless: called once per input record; may emit 0..n records. */
typedef void (*mg_flat_map_fn)(void *ctx, const void *rec,
			       struct mg_emitter *out);

int mg_flat_map(struct mg_dataflow *df, struct mg_stream *in,
		uint32_t out_record_size, mg_flat_map_fn fn, void *ctx,
		struct mg_stream **out);

/* A record's 64-bit key hash: picks its bin (top bits) or worker. */
typedef uint64_t (*mg_hash_fn)(void *ctx, const void *rec);

/* Route each record to worker hash mod W (static partitioning). */
int mg_exchange(struct mg_dataflow *df, struct mg_stream *in, mg_hash_fn hash,
		void *ctx, struct mg_stream **out);

/* Route each record to the current owner of its bin; no state. */
int mg_distribute(struct mg_dataflow *df, struct mg_stream *in, mg_hash_fn hash,
		  void *ctx, struct mg_stream **out);

/* One call of a stateful operator's function: one bin, one time. */
struct mg_bin_call {
	uint64_t time;		/* the time being processed */
	uint32_t bin;		/* the bin, or the worker for native */
	unsigned worker;	/* the worker running the call */
	void *state;		/* the bin's root state, state_size bytes,
				   zeroed before its first call */
	struct mg_arena *arena; /* where the bin's containers allocate */
	const void *in[2];	/* each input's records at this time ... */
	uint32_t n_in[2];	/* ... and their number */
	const void *timers;	/* post-dated records due at this time ... */
	uint32_t n_timers;	/* ... and their number */
	int error;		/* set by the function: -ENOMEM etc. */
};

/*
 * Schedule @rec (timer_record_size bytes) to come back to this bin at
 * @time > call->time.  The record lives in the bin and moves with it.
 * Return: 0; -EINVAL if @time <= call->time; -ENOMEM.
 */
int mg_schedule(struct mg_bin_call *call, uint64_t time, const void *rec);

typedef void (*mg_bin_fn)(void *ctx, struct mg_bin_call *call,
			  struct mg_emitter *out);

struct mg_stateful_config {
	unsigned ninputs; /* 1 (unary) or 2 (binary) */
	struct mg_stream *in[2];
	mg_hash_fn hash[2]; /* key hash of each input */
	void *hash_ctx;
	uint32_t out_record_size;
	uint32_t state_size;	    /* per-bin root state, 0..4096 bytes */
	uint32_t timer_record_size; /* 0 if the operator schedules nothing */
	mg_bin_fn fn;
	void *ctx;
	bool native; /* baseline: hash mod W, no bins */
	/* Optional: build a bin's initial state.  Called once for every bin
	 * (native: every worker's state) by its owner before the clock starts,
	 * with time 0 and no records; may not emit.  Return 0 or -errno. */
	int (*prefill)(void *ctx, struct mg_bin_call *call);
	/* Copy mode only (required there): write the bin's root state and
	 * containers to @w / rebuild them from @r into the fresh bin of
	 * @call (zeroed root state, empty arena).  Timers are moved by the
	 * engine.  Use mg_write/mg_read and the container serializers of
	 * migration/mg_copy.h.  Return 0 or -errno. */
	int (*serialize)(void *ctx, struct mg_bin_call *call,
			 struct mg_writer *w);
	int (*deserialize)(void *ctx, struct mg_bin_call *call,
			   struct mg_reader *r);
	/* Optional: start loading what processing @rec (of input @in) will
	 * touch in the bin's root @state (e.g. mg_map_prefetch()).  The
	 * engine calls it a few records ahead of the user function, so the
	 * cache misses of a large state overlap instead of queueing.  A hint:
	 * it must not change anything.  @state and @rec are borrowed for the
	 * call.  Context: the worker that holds the bin; must not block. */
	void (*prefetch)(void *ctx, const void *state, unsigned in,
			 const void *rec);
};

/* A stateful operator.  Return: 0; -EINVAL; -ENOMEM. */
int mg_stateful(struct mg_dataflow *df, const struct mg_stateful_config *cfg,
		struct mg_stream **out);

/* Called per record on the worker that holds it. */
typedef void (*mg_sink_fn)(void *ctx, unsigned worker, uint64_t time,
			   const void *rec);

int mg_sink(struct mg_dataflow *df, struct mg_stream *in, mg_sink_fn fn,
	    void *ctx);

/*
 * Make @in the dataflow's probe: a timestamp is complete when every worker's
 * frontier on @in has passed it; each source record's latency is measured
 * from its scheduled time to that moment.  One probe per dataflow.
 */
int mg_probe(struct mg_dataflow *df, struct mg_stream *in);

/* ---- running ---------------------------------------------------------------- */

struct mg_window_stats {
	double t_s;	/* window end, seconds since start */
	uint64_t count; /* records completed in the window */
	uint64_t p25, p50, p75, p95, p99, p999, max; /* latency, ns */
	uint64_t rss_bytes;
};

/* Called by the reporter thread after each latency window. */
typedef void (*mg_window_fn)(void *ctx, const struct mg_window_stats *w);

struct mg_run_stats {
	uint64_t records;  /* source records generated */
	double duration_s; /* wall time from start to completion */
	uint64_t count;	   /* latency samples (= records at the probe) */
	uint64_t p50, p99, p999, max; /* whole-run latency, ns */
	uint64_t rss_peak_bytes;
	uint64_t state_bytes; /* bytes owned by bin arenas at the end */
};

/*
 * Start the workers and the reporter; they run until every source has closed
 * and its last timestamp is complete at the probe.
 * @on_window: optional, with @ctx.  Context: control thread.
 * Return: 0; -EINVAL if the graph has no source or no probe, or was started
 * already; -ENOMEM; -EAGAIN if threads cannot be created.
 */
int mg_dataflow_start(struct mg_dataflow *df, mg_window_fn on_window,
		      void *ctx);

/*
 * Wait for the run to finish and fill @stats (may be NULL).
 * Return: 0; the first error an operator reported (e.g. -ENOMEM from a bin
 * arena); -EINVAL if not started.
 */
int mg_dataflow_join(struct mg_dataflow *df, struct mg_run_stats *stats);

/* ---- migrating ---------------------------------------------------------------- */

struct mg_migration; /* one submitted migration; owned by the dataflow */

struct mg_migration_progress {
	uint32_t steps, steps_done;
	uint32_t bins, bins_moved; /* (bin moves, not operator handoffs) */
	uint64_t bytes_moved;	   /* logical state bytes handed over */
	uint64_t first_time;	   /* logical time of the first step */
	uint64_t start_ns, end_ns; /* since the run started; end 0 = running */
	bool done;
};

/*
 * Migrate to the assignment @target (bin -> worker, nbins entries) with
 * strategy @s.  The first step takes effect at logical time @at (an epoch,
 * at or after the control frontier: use mg_dataflow_time_ahead()); with
 * fluid and batched each next step is issued once the previous one
 * completed, @gap epochs later.  Bins already at their target do not move.
 * @out: gives a handle (owned by the dataflow; valid until destroy); may be
 * NULL.
 * Context: the control thread of the application, while running.
 * Return: 0; -EINVAL (not running, a bad target, @at in the past);
 * -EBUSY (a bin has an unfinished move); -ENOMEM.
 */
int mg_migrate(struct mg_dataflow *df, enum mg_strategy s,
	       const uint16_t *target, uint64_t at, uint64_t gap,
	       struct mg_migration **out);

/*
 * Submit a whole plan with absolute step times (a plan file, or steps
 * prepared ahead of time).  Same errors as mg_migrate().
 */
int mg_migrate_plan(struct mg_dataflow *df, const struct mg_plan *plan,
		    struct mg_migration **out);

/* Progress of @m (all zero for NULL).  Context: any thread. */
void mg_migration_progress(const struct mg_migration *m,
			   struct mg_migration_progress *p);

/* Block until @m is done.  Return: 0; -EINVAL for NULL; -ECANCELED if the
 * run ended first; the run's error if it failed. */
int mg_migration_wait(struct mg_migration *m);

/*
 * Whether mg_migrate() can take migrations now: the run has started and not
 * every source has closed (once all have, the engine stops taking
 * migrations and lets every frontier run to the end; mg_migrate() then
 * returns -EINVAL).  Context: any thread.
 */
bool mg_dataflow_accepts_migrations(const struct mg_dataflow *df);

/* The earliest logical time a migration submitted now may use, plus
 * @ahead_ns of wall time.  Context: any thread, while running. */
uint64_t mg_dataflow_time_ahead(const struct mg_dataflow *df,
				uint64_t ahead_ns);

/* The current owner of every bin once all submitted moves are done
 * (@out: nbins entries). */
void mg_dataflow_owners(const struct mg_dataflow *df, uint16_t *out);

/* Re-homing totals since start (all 0 when rehome is off): requests done,
 * pages examined, pages moved to their bin's new node. */
void mg_dataflow_rehome_stats(const struct mg_dataflow *df, uint64_t *requests,
			      uint64_t *examined, uint64_t *moved);

/* Workers of @df, and the number of bins (1 << bins_log2). */
unsigned mg_dataflow_workers(const struct mg_dataflow *df);
uint32_t mg_dataflow_bins(const struct mg_dataflow *df);

/*
 * A 64-bit mixer (splitmix64's finalizer): every input bit reaches every
 * output bit, so mg_hash64(id + salt) makes a good key hash for ids that
 * are small or sequential.  Use a salt the bin's containers do not (mg_map
 * hashes its keys again, with its own mixer).
 */
static inline uint64_t
mg_hash64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Bin of a hash: its top bins_log2 bits. */
static inline uint32_t
mg_bin_of(uint64_t hash, unsigned bins_log2)
{
	return (uint32_t)(hash >> (64 - bins_log2));
}

#endif /* MEGAPHONE_H */
