/*
 * megaphone.h - the public interface of libmegaphone, its only installed
 * header.
 *
 * A dataflow is built on one thread, then run by W worker threads, each
 * pinned to one allowed CPU and each running an instance of every operator
 * on its share of the data in a cooperative loop.
 *
 *   source / input ──► flat_map ──► exchange / distribute ──► stateful ──►
 *       sink / output queue / probe
 *
 * Records are fixed-size per stream.  Timestamps are uint64_t.  Generated
 * sources stamp records with epochs of the dataflow's clock (epoch_ns since
 * the run started, default 1 ms); application inputs stamp them with the
 * producer's own logical time or with the clock's current epoch
 * (MG_TIME_NOW).  A time is *complete* at a point of the graph once no
 * worker can produce a record at or before it there any more.
 *
 * Stateful operators (Megaphone's interface): a key's 64-bit hash picks its
 * bin by its top k bits (2^k bins, 4 <= k <= 20); the user function is called
 * once per (bin, time) with that time's records of the bin, in timestamp
 * order, once the input frontier has passed the time.  It may emit output at
 * that time and schedule post-dated records for later times; those live in
 * the bin (in its arena, with the rest of its state) and come back through
 * the same function when their time is complete.  Within one time the order
 * of records is unspecified.  Bins move between workers live (mg_migrate):
 * outputs are identical, per timestamp, to a run without migration.
 *
 * The *native* baseline runs the same function with static hash partitioning
 * (worker = hash mod W): one state per worker, no bins, no routing table.
 *
 * Errors.  Functions that can fail return 0 or a negative errno and change
 * nothing on failure; mg_strerror() gives the text.  A NULL handle is
 * refused (-EINVAL, or -EPIPE for a producer); a getter given one returns
 * 0 (the data path's calls -- mg_emit, the containers -- do not check).  Builders (mg_source ...
 * mg_output) return what they built, or NULL, and the dataflow *latches*
 * the first builder error: a builder given a NULL stream returns NULL, so a
 * chain of builders needs one check, by mg_dataflow_error() or by
 * mg_dataflow_start(), which refuses to start a graph with an error.
 *
 * Threads.  Build, start, join and destroy from one application thread.
 * Producers (one per thread), the output queue consumer (one thread per
 * output), probes, stats, stop and migrations work from any thread while the
 * dataflow runs; the table at mg_dataflow_stop() says which calls may run at
 * the same time.  fork() while no dataflow runs (none between
 * mg_dataflow_start() and mg_dataflow_join()): the child may then build and
 * run dataflows of its own (the library registers liburcu's fork hooks).  A
 * child forked while one runs cannot use the library (liburcu still lists
 * the parent's workers as readers, and a grace period would wait for them):
 * mg_dataflow_create() says -ENOTRECOVERABLE there.
 *
 * Include it as <megaphone.h> with the flags of `pkg-config --cflags
 * megaphone`, and link with `pkg-config --libs megaphone` (add --static for
 * the static library).
 */
#ifndef MEGAPHONE_H
#define MEGAPHONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "numa/mg_api.h"
#include "migration/mg_containers.h"
#include "migration/mg_plan.h"
#include "migration/mg_balance.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MG_VERSION_MAJOR 0
#define MG_VERSION_MINOR 6
#define MG_VERSION_PATCH 1
#define MG_VERSION	 "0.6.1"
/* A number that increases with every release: 0.2.0 is 200. */
#define MG_VERSION_NUMBER \
	(MG_VERSION_MAJOR * 10000 + MG_VERSION_MINOR * 100 + MG_VERSION_PATCH)

/* The version of the library linked at run time, as MG_VERSION. */
MG_API const char *mg_version(void);

/* The text for a return code of this library (0 or -errno; a positive
 * result is a count). */
MG_API const char *mg_strerror(int err);

struct mg_dataflow;
struct mg_stream;
struct mg_probe;
struct mg_input;
struct mg_producer;
struct mg_output;
struct mg_migration;

/*
 * How a bin's state travels.  HANDOFF: the old owner releases the bin's
 * pages with one release store and the new owner acquires them; nothing is
 * copied.  COPY: Megaphone's way, the baseline -- the old owner serializes
 * the bin into the channel, the new owner rebuilds it in a fresh arena.  A
 * copy that does not fit (in its buffer, see "Limits", or the user's
 * serialize() says -ENOMEM) does not stop the run: that move goes as a
 * handoff (counted in mg_run_stats.copy_fallbacks), as does one whose bin's
 * pages are still queued for re-homing (rehome).  A fresh arena that
 * runs out of memory stops the run with -ENOMEM, as any bin's arena does.
 */
enum mg_mode { MG_HANDOFF, MG_COPY };

struct mg_dataflow_config {
	unsigned workers;	/* 1..65535, default 1 */
	bool oversubscribe;	/* allow more workers than allowed CPUs */
	unsigned bins_log2;	/* 4..20, default 12 */
	uint64_t epoch_ns;	/* >= 10 us, default 1 ms */
	uint32_t batch_records; /* records per channel batch, 1..2^20,
				    default 256 */
	uint32_t ring_capacity; /* slots per channel, a power of two in
				    2..2^15, default 64.  Each exchange
				    preallocates W x W channels of
				    ring_capacity + 1 batches: at the
				    defaults, 64 workers and
				    32-byte records take 2.2 GB (-ENOMEM past
				    the pools' reserve) */
	enum mg_mode mode;	/* how migrations move state: MG_HANDOFF */
	bool rehome;		/* after a handoff across nodes, move the
				    bin's pages to the new node (background,
				    rate-limited) */
	size_t pool_reserve;	/* virtual bytes per pool class, a multiple
				    of 2 MiB <= MG_POOL_RESERVE_MAX; 0 = sized
				    from physical memory and RLIMIT_AS */
	uint64_t window_ns;	/* latency window, >= 1 ms, default 250 ms */
	uint64_t warmup_ns;	/* whole-run latency ignores timestamps
				    completed before this; windows keep all */
	bool no_stats;		/* do not count per-bin and per-worker load
				    (mg_dataflow_bin_stats() then fails) */
	size_t output_buffer;	/* bytes each worker may hold for an output
				    beyond its ring before the output pushes
				    back (see mg_output()); 0 = 256 MiB, 1 =
				    push back as soon as the ring is full */
	uint64_t rehome_rate;	/* with rehome: pages a second the re-homer
				    examines, 0 = 262144 (1 GiB/s) */
};

/*
 * Create an empty dataflow: topology, pools, latency statistics.
 * @cfg: borrowed; NULL means all defaults.  @out: gives the dataflow, to
 * mg_dataflow_destroy().
 * Context: any thread; allocates.
 * Return: 0; -EINVAL for a bad configuration (a field outside the range
 * its comment gives: workers, bins_log2, epoch_ns, batch_records,
 * ring_capacity (or not a power of two), window_ns; a mode other than
 * MG_HANDOFF and MG_COPY; more workers than allowed CPUs without
 * oversubscribe); -ENOMEM; -ENOTRECOVERABLE in a child forked while a
 * dataflow ran (see "Threads" above).
 */
MG_API int mg_dataflow_create(struct mg_dataflow **out,
			      const struct mg_dataflow_config *cfg);

/*
 * Stop the run if it is running (as mg_dataflow_stop()), wait for its
 * threads, and free everything: streams, inputs, producers, outputs, probes
 * and migrations of @df die with it (takes @df).  NULL is ignored.
 * Context: the thread that created @df; no other call on @df may run.
 */
MG_API void mg_dataflow_destroy(struct mg_dataflow *df);

/* ---- building --------------------------------------------------------------
 *
 * Every builder returns what it built, owned by the dataflow, or NULL: then
 * the dataflow latched an error (the first one; later ones are dropped) and
 * the graph is unchanged.  A NULL input stream yields NULL and latches
 * -EINVAL, a new error only if none was latched before (one was, when the
 * NULL came from a failed builder): a chain of builders is checked once,
 * at its end.  Context: the building thread, before mg_dataflow_start().
 */

/* The first error a builder latched, or 0. */
MG_API int mg_dataflow_error(const struct mg_dataflow *df);

/*
 * Generate record number @seq (global, 0-based) into @rec (record_size
 * bytes, zeroed).  Record numbers are split across workers round-robin
 * (worker w generates w, w + W, ...).  Runs on worker @worker.
 */
typedef void (*mg_gen_fn)(void *ctx, unsigned worker, uint64_t seq, void *rec);

/* When record @seq is due, in ns after the run's start: non-decreasing in
 * @seq.  Runs on the worker that generates it (any, concurrently). */
typedef uint64_t (*mg_sched_fn)(void *ctx, uint64_t seq);

struct mg_source_config {
	uint32_t record_size;
	double rate;	      /* records/s in total over all workers: finite,
				 > 0 and at most 1e10 */
	uint64_t duration_ns; /* schedule length; then the source closes */
	mg_gen_fn gen;
	void *ctx; /* shared: passed to gen (and sched) on every worker */
	/* optional: a schedule of varying rate (a load that rises and
	 * falls); NULL: mg_sched_ns(rate, seq) */
	mg_sched_fn sched;
};

/* An open-loop source: the benchmarks' generator.  Latches -EINVAL for a
 * bad config. */
MG_API struct mg_stream *mg_source(struct mg_dataflow *df,
				   const struct mg_source_config *cfg);

/*
 * When an open-loop source of @rate records/s schedules record @seq: ns
 * after the run's start.  Its timestamp is that divided by the epoch.
 */
static inline uint64_t
mg_sched_ns(double rate, uint64_t seq)
{
	return (uint64_t)((double)seq * 1e9 / rate);
}

/*
 * An application input of @record_size-byte records (1..MG_RECORD_MAX):
 * the application pushes records through producers (below).
 * @in: gives the input handle (owned by the dataflow; may be NULL if the
 * application opens no producer from here, which is unusual).
 * Return: the input's stream; NULL (latched -EINVAL, -ENOMEM).
 */
MG_API struct mg_stream *mg_input(struct mg_dataflow *df, uint32_t record_size,
				  struct mg_input **in);

struct mg_emitter; /* where a user function's output goes */

/* Emit @rec (the stream's record size) at the current time. */
MG_API void mg_emit(struct mg_emitter *e, const void *rec);

/* The time the current call runs at. */
MG_API uint64_t mg_emitter_time(const struct mg_emitter *e);

/* The worker the current call runs on. */
MG_API unsigned mg_emitter_worker(const struct mg_emitter *e);

/* Stateless: called once per input record; may emit 0..n records. */
typedef void (*mg_flat_map_fn)(void *ctx, const void *rec,
			       struct mg_emitter *out);

MG_API struct mg_stream *mg_flat_map(struct mg_dataflow *df,
				     struct mg_stream *in,
				     uint32_t out_record_size,
				     mg_flat_map_fn fn, void *ctx);

/* A record's 64-bit key hash: picks its bin (top bits) or worker. */
typedef uint64_t (*mg_hash_fn)(void *ctx, const void *rec);

/* Route each record to worker hash mod W (static partitioning). */
MG_API struct mg_stream *mg_exchange(struct mg_dataflow *df,
				     struct mg_stream *in, mg_hash_fn hash,
				     void *ctx);

/* Route each record to the current owner of its bin; no state. */
MG_API struct mg_stream *mg_distribute(struct mg_dataflow *df,
				       struct mg_stream *in, mg_hash_fn hash,
				       void *ctx);

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
	int error;		/* set by the function: -ENOMEM etc. (a
				   positive errno counts as its negative) */
};

/*
 * Schedule @rec (timer_record_size bytes) to come back to this bin at
 * @time > call->time.  The record lives in the bin and moves with it.
 * Return: 0; -EINVAL if @time <= call->time or not a time (at or above
 * MG_TIME_LIMIT: MG_TIME_NOW, MG_TIME_MAX ...), or the operator's
 * timer_record_size is 0 (it schedules nothing); -ENOMEM if the bin's arena
 * is full; -ENOBUFS if this worker's timer index is (see "Limits" below).
 */
MG_API int mg_schedule(struct mg_bin_call *call, uint64_t time,
		       const void *rec);

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
	 * with time 0 and no records; may not emit.  Return 0 or -errno.
	 * A bin it leaves as it found it (state all zero, nothing
	 * allocated) is dropped and created again by its first record. */
	int (*prefill)(void *ctx, struct mg_bin_call *call);
	/* Copy mode only (required there; elsewhere both or neither, so that
	 * a half pair is caught when it is written): write the bin's root
	 * state and containers to @w / rebuild them from @r into the fresh
	 * bin of @call (zeroed root state, empty arena).  Timers are moved by
	 * the engine.  Use mg_write/mg_read and the container serializers.
	 * Return 0 or -errno (a positive errno counts as its negative). */
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

/* A stateful operator (@cfg borrowed).  Return: its output stream; NULL
 * (latched -EINVAL for a bad config or inputs, -ENOMEM). */
MG_API struct mg_stream *mg_stateful(struct mg_dataflow *df,
				     const struct mg_stateful_config *cfg);

/*
 * Limits.  A stateful operator keeps what it received and cannot process
 * yet (its backlog) in buffers of fixed size, reserved per worker when the
 * dataflow is built, so that the data path never allocates.  On a big
 * machine, per worker and operator (an entry is 16 B + the record rounded
 * up to 8 B):
 *
 *   records of one time, per input, up to 16 times ahead   2 GiB of entries
 *   records further ahead, per input                       8 GiB of entries
 *     ... as the batches they came in, per input           44 million
 *   records of bins on their way to this worker, per input 2 GiB of entries
 *   records due in one pass (all inputs, all times)        2^27 records
 *   records of one call (one bin, one time), per input     1 GiB
 *   timers due in one call                                 1 GiB of records
 *   bins with timers (the timer index)                     2^26 entries
 *   pending moves, into and out of this worker             2^25 each
 *
 * With less physical memory, or under RLIMIT_AS, an operator divides all of
 * them by one power of two (up to 2^10), so that they reserve at most the
 * physical memory per worker and, over all workers, a quarter of the
 * address space left.  A buffer that would overflow stops the run:
 * mg_dataflow_join() returns -ENOBUFS and mg_run_stats.error_what names the
 * buffer (mg_schedule() returns -ENOBUFS for a full timer index).  The
 * cure is less backlog: producers that advance (a quiet one holds every
 * later time back), more workers or bins, or a lower rate.  Copy mode's
 * buffers (16 GiB per pair of workers) never stop a run: a bin that does
 * not fit moves as a handoff (MG_COPY).  A bin's own state (its arena) is
 * at most 64 GiB: past that its allocations fail with -ENOMEM.
 */

/* Called per record on the worker that holds it. */
typedef void (*mg_sink_fn)(void *ctx, unsigned worker, uint64_t time,
			   const void *rec);

/* Call @fn on every record of @in, on its worker.  Return: 0; the latched
 * error (-EINVAL, -ENOMEM). */
MG_API int mg_sink(struct mg_dataflow *df, struct mg_stream *in, mg_sink_fn fn,
		   void *ctx);

/*
 * A probe on @in: it tells when times are complete there (see "completion"
 * below).  The first probe of a dataflow also measures latency: a source
 * record's from its scheduled time, a pushed record's from its push, to the
 * moment its time completes at the probe.  Any number of probes.
 * Return: the probe (owned by the dataflow); NULL (latched error).
 */
MG_API struct mg_probe *mg_probe(struct mg_dataflow *df, struct mg_stream *in);

/*
 * An output queue on @in: one application thread drains it with
 * mg_output_next(), receiving each completed time's records at once, in
 * time order.  Records the consumer has not taken wait in the workers, up
 * to output_buffer bytes per worker beyond the output's ring (pool memory);
 * past that the output pushes back: the operators feeding it stop, and
 * then the sources and the producers' pushes wait.  So a thread that both
 * pushes and reads, e.g. pushes everything before it reads, must read
 * before that much output is waiting, or its push waits forever.  The end
 * of the run does not wait for the consumer: after mg_dataflow_join() the
 * output still has every record of the run (not after a stop).
 * Return: the output (owned by the dataflow); NULL (latched).
 */
MG_API struct mg_output *mg_output(struct mg_dataflow *df,
				   struct mg_stream *in);

/* ---- running -------------------------------------------------------------- */

struct mg_window_stats {
	double t_s;	/* window end, seconds since start */
	uint64_t count; /* records completed in the window */
	uint64_t p25, p50, p75, p95, p99, p999, max; /* latency, ns */
	uint64_t rss_bytes;
};

/* Called by the control thread after each latency window. */
typedef void (*mg_window_fn)(void *ctx, const struct mg_window_stats *w);

struct mg_run_stats {
	uint64_t records;  /* source records generated + records pushed */
	double duration_s; /* wall time from start to the end of the run */
	uint64_t count;	   /* latency samples (records at the first probe) */
	uint64_t p50, p99, p999, max; /* whole-run latency, ns */
	uint64_t rss_peak_bytes;
	uint64_t state_bytes;	 /* bytes owned by bin arenas at the end */
	bool stopped;		 /* mg_dataflow_stop() ended the run */
	uint64_t copy_fallbacks; /* copy mode: moves that went as a handoff:
				    their copy did not fit, or their pages
				    were still being re-homed (MG_COPY) */
	/* What failed, when join returns an error the engine raised: the
	 * buffer whose limit was reached (-ENOBUFS), what ran out of memory
	 * (-ENOMEM), or "the operator's function"; static text; NULL if the
	 * run did not fail. */
	const char *error_what;
};

/*
 * Start the workers and the control thread.  They run until every source
 * and every input has closed and the last time is complete everywhere, or
 * until mg_dataflow_stop() or an error.  Workers first build the bins'
 * initial state (prefill); the clock starts when all are done.
 * @on_window: optional, with @ctx.  Context: the building thread.
 * Return: 0; the latched builder error; -EINVAL if the graph has no source
 * and no input, or was started already; -ENOMEM; -EAGAIN if threads cannot
 * be created; the error of a failed prefill.  On failure no thread runs and
 * only mg_dataflow_destroy() is left to call.
 */
MG_API int mg_dataflow_start(struct mg_dataflow *df, mg_window_fn on_window,
			     void *ctx);

/*
 * Make a running dataflow stop as soon as possible: workers leave their
 * loops at the end of their current round (outputs for incomplete times are
 * dropped; an output still delivers every complete time, see
 * mg_output_next()), producers blocked in a push and threads waiting on a
 * probe wake up with -EPIPE, later pushes fail with -EPIPE.  Does not
 * wait: mg_dataflow_join() does.  Idempotent; nothing happens if @df is
 * not running.
 * Context: any thread, also a callback of the dataflow; never blocks.
 *
 * Which calls may run at the same time, on one dataflow:
 *
 *   | pair                                           | concurrently?       |
 *   |------------------------------------------------|---------------------|
 *   | builders, start, join, destroy, balancer start | one thread, in turn |
 *   | push/flush/advance/close on one producer       | one thread          |
 *   | calls on different producers                   | yes                 |
 *   | mg_producer_open / mg_input_close (any mix)    | yes                 |
 *   | mg_output_next on one output                   | one thread          |
 *   | probe, stats, stop, and migrations: migrate,    | yes                 |
 *   |   set_active (serialized; -EBUSY while a move  |                     |
 *   |   it needs is unfinished), migration wait and   |                     |
 *   |   progress, owners, time_ahead (any mix)        |                     |
 *   | balancer stop, events, stats (with the above)  | yes                 |
 *   | any of these / join                            | yes                 |
 *   | any of these / destroy                         | no                  |
 *
 * From a callback of the dataflow (a sink runs on a worker; on_complete and
 * on_window on the control thread; on_event on the balancer's) the calls
 * that do not wait may be made -- stats, stop, mg_migrate() -- but nothing
 * that waits for the run (join, mg_migration_wait(), mg_probe_wait()), and
 * not mg_dataflow_set_active() from a sink.
 */
MG_API void mg_dataflow_stop(struct mg_dataflow *df);

/*
 * Wait for the run to end and fill @stats (may be NULL).  A run that fails
 * stops completing times where the failure happened, and calls no user
 * function after it: every time complete at a probe or output (its
 * frontier when the run ended) has all of its outputs, as in a run without
 * the failure.
 * Return: 0 (also after mg_dataflow_stop()); the run's first error, which
 * @stats->error_what explains: -ENOMEM from a bin arena or the page pools,
 * -ENOBUFS from a full buffer (see "Limits" at mg_stateful()), or what an
 * operator's function reported; -EINVAL if not started; after a failed
 * mg_dataflow_start(), the error it returned.
 */
MG_API int mg_dataflow_join(struct mg_dataflow *df, struct mg_run_stats *stats);

/* The current epoch of the dataflow's clock: ns since the start divided by
 * the epoch (0 before the start).  Context: any thread. */
MG_API uint64_t mg_dataflow_now(const struct mg_dataflow *df);

/* ---- application inputs ------------------------------------------------------
 *
 * An input has any number of producers, one per application thread, opened
 * before or during the run.  A producer is a lock-free single-producer path
 * into one worker: batches of records of one time each, and progress marks
 * carried in the same ring, so a record can never be overtaken by its
 * producer's promise.  Pushing takes no lock and, once the path is warm,
 * allocates nothing.
 *
 * Time.  A producer stamps records with its own logical time, or with
 * MG_TIME_NOW (the clock's current epoch).  It promises progress with
 * mg_producer_advance(p, t): nothing earlier than t will follow; pushing at
 * MG_TIME_NOW advances to now as well.  The input's frontier is the minimum
 * over its open producers' promises (a producer opened during the run starts
 * at that frontier: mg_producer_time() tells it).  A time is complete once
 * every producer has advanced past it, so A QUIET PRODUCER HOLDS EVERY
 * LATER TIME BACK: a producer with nothing to push must advance, e.g. call
 * mg_producer_advance(p, MG_TIME_NOW) from its poll loop or a timer
 * (examples/sessions does), or close.  Times must be below MG_TIME_LIMIT;
 * in a graph that mixes inputs with generated sources, stamp with the clock
 * (MG_TIME_NOW), because the sources' times are clock epochs.
 *
 * Batching.  Records wait in the producer's current batch until it is full,
 * the producer pushes at another time, or it flushes, advances or closes.
 * Records of a time cannot be processed before that time is complete, so
 * for a producer that advances, batching adds no latency.
 *
 * Before the start no worker drains a path: pushes fill it (then
 * -EAGAIN), and a call that waits for room (mg_push_wait, flush, advance,
 * close) waits for mg_dataflow_start() -- forever if the calling thread
 * is the one to start the run.
 *
 * Ending.  An input ends once mg_input_close() was called and each of its
 * producers is closed; the run ends when every source and input has ended
 * and the last time is complete.
 */

#define MG_ANY_WORKER (-1)
#define MG_FOREVER    UINT64_MAX /* a timeout that never expires */

/*
 * Open a producer on @in, bound to @worker (0..W-1) or to the next worker
 * round-robin (MG_ANY_WORKER).  During the run the worker admits it at its
 * next round; the producer then starts at the input's frontier.
 * @out: gives the producer; it lives until mg_producer_close().
 * Context: any thread; allocates; may wait for the worker (briefly).
 * Return: 0; -EINVAL (bad worker); -EPIPE (the input was closed, or the
 * dataflow stopped or ended); -ENOMEM.
 */
MG_API int mg_producer_open(struct mg_input *in, int worker,
			    struct mg_producer **out);

/*
 * Push one record of @size bytes (the input's record size; copied) at
 * @time, or at MG_TIME_NOW (the later of the clock's epoch and the
 * producer's promise, which then advances to it).  Never blocks.
 * Context: the producer's thread; lock-free.
 * Return: 0; -EAGAIN when the path is full (try again, or mg_push_wait());
 * -EINVAL if @size is not the input's record size, or @time is before the
 * producer's promise or not a time (at or above MG_TIME_LIMIT, but
 * MG_TIME_NOW); -EPIPE after close, or once the dataflow stopped or ended.
 * Nothing is pushed on failure, and -EINVAL or -EPIPE change nothing; a push
 * at MG_TIME_NOW that finds the path full (-EAGAIN) has still advanced the
 * promise to now.
 */
MG_API int mg_push(struct mg_producer *p, uint64_t time, const void *rec,
		   size_t size);

/*
 * Push up to @n records of @size bytes each (@recs: packed) at @time.
 * Never blocks.  Context: the producer's thread; lock-free.
 * Return: the number pushed, 0 when the path is full; -EINVAL, -EPIPE as
 * mg_push() (nothing pushed then).
 */
MG_API int mg_push_burst(struct mg_producer *p, uint64_t time, const void *recs,
			 size_t size, uint32_t n);

/*
 * Push @n records of @size bytes each at @time, waiting while the path is
 * full: a short spin, then sleep (no CPU is used while blocked) until the
 * worker makes room, the dataflow stops, or @timeout_ns (MG_FOREVER: no
 * limit) passes.  MG_TIME_NOW is read once: all @n records get one time.
 * Context: the producer's thread; may block.
 * Return: the number pushed: @n, or fewer when the time ran out or the
 * dataflow stopped first (-ETIMEDOUT / -EPIPE if none was pushed); -EINVAL
 * as mg_push().
 */
MG_API int mg_push_wait(struct mg_producer *p, uint64_t time, const void *recs,
			size_t size, uint32_t n, uint64_t timeout_ns);

/*
 * Send the records waiting in the current batch.
 * Context: the producer's thread; waits while the path is full.
 * Return: 0; -EPIPE (closed, stopped).
 */
MG_API int mg_producer_flush(struct mg_producer *p);

/*
 * Promise that this producer pushes nothing before @time (MG_TIME_NOW: the
 * clock's current epoch); flushes first.  A time at or before the current
 * promise changes nothing.
 * Context: the producer's thread; waits while the path is full.
 * Return: 0; -EINVAL if @time is not a time; -EPIPE (closed, stopped).
 */
MG_API int mg_producer_advance(struct mg_producer *p, uint64_t time);

/* The producer's promise: the earliest time it may still push at.
 * Context: the producer's thread. */
MG_API uint64_t mg_producer_time(const struct mg_producer *p);

/*
 * Flush and end the producer; it no longer holds the input's frontier back.
 * The engine frees its path once the worker has drained it; the handle
 * stays valid (a few hundred bytes) until the dataflow is destroyed, and
 * every later call on it returns -EPIPE.
 * Context: the producer's thread; waits while the path is full.
 * Return: 0; -EPIPE if it was closed already, or if the dataflow stopped
 * first (the unsent records are dropped with the rest of the run).
 */
MG_API int mg_producer_close(struct mg_producer *p);

/*
 * No more producers will open on @in: it ends once the open ones close.
 * Idempotent.  Context: any thread.
 * Return: 0.
 */
MG_API int mg_input_close(struct mg_input *in);

/* ---- completion --------------------------------------------------------------- */

/*
 * The probe's frontier: every time before it is complete at the probe (no
 * worker can produce a record at such a time there any more); MG_TIME_MAX
 * once the stream has ended.
 * Context: any thread; wait-free.
 * Ordering: acquire: whatever the workers did for the completed times
 * (sinks called, records handed to outputs) is visible to the caller.  An
 * output whose consumer lags may still hold some of them in the workers'
 * queues (backpressure): take a completed time with mg_output_next() and a
 * timeout, not 0, which says only what has reached the consumer yet.
 */
MG_API uint64_t mg_probe_frontier(const struct mg_probe *p);

/*
 * Wait until @time is complete at the probe (its frontier is past @time),
 * sleeping (futex) for at most @timeout_ns (MG_FOREVER: no limit).
 * Context: any thread but the workers; may block.
 * Ordering: as mg_probe_frontier().
 * Return: 0; -ETIMEDOUT; -EPIPE if the run stopped or failed first;
 * -EINVAL for a NULL probe or a @time that is not a time (at or above
 * MG_TIME_LIMIT: to wait for the end, wait for MG_TIME_LIMIT - 1).
 */
MG_API int mg_probe_wait(struct mg_probe *p, uint64_t time,
			 uint64_t timeout_ns);

/* Told that every time before @frontier is complete at the probe. */
typedef void (*mg_complete_fn)(void *ctx, uint64_t frontier);

/*
 * Call @fn each time the probe's frontier advances, with the new frontier,
 * on one thread of the engine (in order, never concurrently; it must not
 * block for long: it delays the next calls and latency windows).  The last
 * call has MG_TIME_MAX when the stream ends.  A NULL @fn calls nothing
 * (it clears an earlier one).
 * Context: the building thread, before the start.
 * Return: 0; -EINVAL (started already).
 */
MG_API int mg_probe_on_complete(struct mg_probe *p, mg_complete_fn fn,
				void *ctx);

/* ---- output queues ------------------------------------------------------------ */

/* One completed time of an output: every record the stream carried at it. */
struct mg_output_time {
	uint64_t time;
	uint32_t count;	      /* records */
	uint32_t record_size; /* bytes each; records are packed */
	const void *records;  /* valid until the next mg_output_next() */
};

/*
 * Take the next completed time that has records, in time order, waiting up
 * to @timeout_ns (0: do not wait; MG_FOREVER: no limit).  Times without
 * records are skipped; mg_output_frontier() says how far completion went.
 * Context: one application thread per output; may block (futex).
 * Return: 0 and *@out; -ETIMEDOUT (nothing completed in time; with 0:
 * nothing complete yet); -ENODATA once the stream ended and everything was
 * taken; -EPIPE if the run stopped or failed (every time that had
 * completed was delivered first, also what the workers still queued for a
 * consumer that lagged: after a halt the call waits for the workers to
 * exit, then takes it); -ENOMEM.
 */
MG_API int mg_output_next(struct mg_output *o, struct mg_output_time *out,
			  uint64_t timeout_ns);

/* Every time before it is complete at the output: its records are taken or
 * ready to take.  Context: the output's consumer thread. */
MG_API uint64_t mg_output_frontier(const struct mg_output *o);

/* ---- statistics a controller needs --------------------------------------------
 *
 * Workers count as they go, each into cache lines it alone writes, with
 * plain stores.  Rates are decayed (exponential, time constant 1 s): the
 * workers' busy fractions from samples the control thread takes every
 * 100 ms; the bins' rates from their counts at each mg_dataflow_bin_stats()
 * call, which costs O(bins) -- read them every second or more often for a
 * rate over about the last second (after a longer gap, the rate is the
 * gap's).  The workers' figures are weighted averages of what the run has
 * seen, true from the first samples on; the bins' rates start from 0 and
 * read low in the first seconds, all alike (compare them with each other).
 * Readers take a consistent copy without slowing the workers.
 */

struct mg_bin_stats {
	double rate;	      /* records/s processed, decayed (in the first
				 seconds, the average so far) */
	uint64_t records;     /* records processed since the start */
	uint64_t state_bytes; /* bytes its arena owns (all operators) */
	uint32_t owner;	      /* its worker after all submitted moves */
};

struct mg_worker_stats {
	double busy;	  /* fraction of time in rounds that did work,
			     beyond what an empty round takes (a polling
			     worker's own overhead), decayed, 0..1; a round
			     that spans a whole 100 ms sample (a stall)
			     counts while it runs */
	uint64_t backlog; /* records received but not yet processed */
	uint64_t records; /* records its stateful operators processed */
	uint32_t bins;	  /* bins it owns after all submitted moves */
	double rate;	  /* records/s they processed, decayed */
	double in_rate;	  /* records/s they received, decayed: above `rate`
			     while the backlog grows, so an overloaded
			     worker's load is in_rate, not rate */
	double work;	  /* of `busy`, the fraction in its stateful
			     operators' steps (receiving, state, calls):
			     what its bins cost it, apart from its sources
			     and sending; decayed, 0..busy */
	double feed;	  /* of `busy`, the fraction in its sources' and
			     inputs' steps (making and sending records):
			     what it costs whatever bins it holds;
			     decayed, 0..busy */
	double waiting;	  /* fraction of time its thread was ready to run
			     but had no CPU (other threads had it: a
			     machine with more runnable threads than CPUs;
			     its busy and step times then hold their time
			     slices), decayed, 0..1; 0 where the kernel
			     does not count it */
};

/*
 * Fill @out (mg_dataflow_bins() entries) / @out (mg_dataflow_workers()
 * entries).  Before the first sample the rates are 0.
 * Context: any thread, while the dataflow lives; does not block the workers.
 * Return: 0; -EINVAL if the dataflow counts nothing (no_stats) or was not
 * started.
 */
MG_API int mg_dataflow_bin_stats(struct mg_dataflow *df,
				 struct mg_bin_stats *out);
MG_API int mg_dataflow_worker_stats(struct mg_dataflow *df,
				    struct mg_worker_stats *out);

/* ---- migrating ---------------------------------------------------------------- */

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
 * strategy @s.  The first step takes effect at logical time @at: a time at
 * or after the control frontier (mg_dataflow_time_ahead() gives one), or
 * MG_TIME_ASAP for the earliest time the engine can take (reported as
 * first_time by mg_migration_progress()).  With fluid and batched each next
 * step is issued once the previous one completed, @gap epochs later.  Bins
 * already at their target do not move.  The control thread issues those
 * steps on its ticks (a quarter of the control lead, a few epochs of the
 * clock): a fluid migration of n steps lasts n ticks of wall time at least,
 * however fast an application's inputs run through their logical times --
 * inputs that end sooner end the run with it unfinished
 * (mg_migration_wait(): -ECANCELED).
 * @target: borrowed.  @out: gives a handle (owned by the dataflow; valid
 * until destroy); may be NULL.
 * Context: any thread, while the run takes migrations (any source or input
 * open).
 * Return: 0; -ETIME if @at has already passed (retry later or with
 * MG_TIME_ASAP); -EINVAL (not running, no longer taking migrations, a bad
 * strategy or target, or a target naming a parked worker: see
 * mg_dataflow_set_active()); -EBUSY (a bin has an unfinished move);
 * -ENOMEM.
 */
MG_API int mg_migrate(struct mg_dataflow *df, enum mg_strategy s,
		      const uint16_t *target, uint64_t at, uint64_t gap,
		      struct mg_migration **out);

/*
 * Submit a whole plan with absolute step times (a plan file, or steps
 * prepared ahead of time).  @plan: borrowed (its steps are copied; destroy
 * it when you like).  Same context and errors as mg_migrate(), -EINVAL also
 * for a plan of another shape (bins, workers).
 */
MG_API int mg_migrate_plan(struct mg_dataflow *df, const struct mg_plan *plan,
			   struct mg_migration **out);

/* Progress of @m (all zero for NULL).  Context: any thread. */
MG_API void mg_migration_progress(const struct mg_migration *m,
				  struct mg_migration_progress *p);

/* Block until @m is done.  Context: any thread but the dataflow's
 * callbacks; sleeps on a futex until the migration ends, the run fails or
 * its workers exit (no polling).  Return: 0; -EINVAL for NULL; -ECANCELED
 * if the run ended before it was done (stopped, or every input and source
 * ended before a fluid or batched migration issued its remaining steps: a
 * step already issued is carried out as the frontiers run to the end, even
 * if its time comes after the last record); the run's error if it failed. */
MG_API int mg_migration_wait(struct mg_migration *m);

/*
 * Whether mg_migrate() can take migrations now: the run has started and
 * some source or input is open (once all have ended, the engine stops
 * taking migrations and lets every frontier run to the end).
 * Context: any thread.
 */
MG_API bool mg_dataflow_accepts_migrations(const struct mg_dataflow *df);

/* A logical time a migration submitted now may use: the control frontier
 * plus @ahead_ns of the clock.  Context: any thread, while running. */
MG_API uint64_t mg_dataflow_time_ahead(const struct mg_dataflow *df,
				       uint64_t ahead_ns);

/* The owner of every bin once all submitted moves are done (@out: nbins
 * entries); once the run has ended, the owner each bin had at the end --
 * moves the end cut short do not count.  Context: any thread. */
MG_API void mg_dataflow_owners(const struct mg_dataflow *df, uint16_t *out);

/* Re-homing totals since start (all 0 when rehome is off): requests done,
 * pages examined, pages moved to their bin's new node. */
MG_API void mg_dataflow_rehome_stats(const struct mg_dataflow *df,
				     uint64_t *requests, uint64_t *examined,
				     uint64_t *moved);

/* ---- balancing ----------------------------------------------------------------
 *
 * A balancer is a thread of the dataflow that moves bins between workers
 * to even out their load, as an application could with mg_migrate(): it
 * samples the bins' decayed record rates every interval, plans with
 * mg_balance_plan() (the load of a worker is the sum of its bins' rates)
 * and submits the plan as a normal migration at the earliest time the
 * engine takes (MG_TIME_ASAP), so outputs stay exactly those of a run
 * without it.  It never runs on the data path.
 *
 * When it acts.  It decides every interval, at most once per sample of
 * the workers' rates (every 100 ms); the first time with the third
 * sample -- or an earlier one when a worker is at capacity and the bins
 * have processed 64 records each on the mean (a skewed start at a high
 * rate: the first, at 100 ms) -- and every sample while
 * the dataflow lags (below), whatever the interval.  It acts only when a
 * plan at the threshold moves something -- some worker carries more than
 * the mean plus `threshold` times the bins' mean load ((1 + threshold)
 * times the mean, but for the workers' base loads, below) and bins can
 * move to fix it -- for `patience` decisions in a row, or at once when a
 * worker is above the mean by twice that (no steady load drifts that
 * far).  It then plans for half the threshold (hysteresis: a steady load
 * that was balanced to threshold / 2 needs a change of more than half the
 * threshold to make it act again), and waits for its migration to finish
 * before planning again.  A moved bin stays put for `cooldown_ns` after
 * its move finished (and bins of other, unfinished migrations do not
 * move), so no bin moves twice within a cool-down.  A hot bin, heavier
 * than the limit on its own, is left alone on its worker (see
 * mg_balance.h); it does not make the balancer act again and again.
 * Rates count processed records, so a worker far behind its input (a
 * quarter second of its rate waiting, or a quarter of all it processed
 * when that is less, early in a run) looks lighter than it is: its bins'
 * rates are scaled by what it receives over what it processes
 * (mg_worker_stats.in_rate / rate), and nothing moves onto it until it
 * catches up -- nor onto a worker at capacity (its operator and source
 * steps 0.95 of its time: work + feed).  They are also weighed by what a
 * record costs on their worker -- its time in stateful steps per processed
 * record over the active workers' (mg_worker_stats.work / rate), trusted
 * from not at all while the busiest worker is busy half the time to fully
 * at 0.9: even record rates are not an even load when one worker's CPU
 * does less per second (a slower or shared vCPU, keys that miss the cache
 * more), and such a worker, once over capacity, would never catch up on a
 * plan that calls it balanced.  And each worker carries, besides its
 * bins, the time its sources and inputs take (mg_worker_stats.feed, in the
 * same unit, trusted alike; the planner's `base`): a slower CPU pays more
 * of it and has less room left for bins.  (Moves change it too, which a
 * plan does not model: a record sent into another worker's ring costs its
 * source more than one kept local -- ~30 ns more on the README's VM.)
 * So the plan evens out the workers' time, which a balanced placement then
 * keeps.  While the whole dataflow lags -- every open source more than 50
 * ms behind the clock -- its threshold is a quarter of `threshold`, and it
 * acts at the first decision, not after `patience` (planning, as always,
 * for half the threshold it triggered at): the backlog grows with every
 * decision waited for, the busiest worker needs room below the limit to
 * drain it, and while it is over capacity its rates are its capacity, not
 * its load, so an imbalance within the threshold can be what holds the
 * dataflow back.  A steady load
 * that keeps up never lags.  Near capacity -- a worker's operator and
 * source steps take 0.8 of its time -- the threshold is a quarter of
 * `threshold` as well (after `patience`, as usual): an imbalance that
 * costs nothing while every worker has room leaves that one no margin for
 * a stall of the machine.  (A source's shares keep within a few ms of
 * each other, so an overloaded worker holds every source back, and a move
 * at MG_TIME_ASAP lands within a few ms of the data being made.)
 *
 * Costs.  In MG_HANDOFF mode a plan moves the fewest bins; in MG_COPY mode
 * a bin's cost is its state bytes plus 4 KiB, so the plan moves few bytes.
 *
 * Events.  Every decision is an event, kept until mg_dataflow_destroy()
 * and given to the optional callback: MG_BALANCE_MOVE when a migration is
 * submitted, MG_BALANCE_HOLD when a worker is above the limit and nothing
 * can move (once, until the balance changes), MG_BALANCE_SCALE when it
 * changed the active workers.
 *
 * Elastic workers.  It plans for the active workers only (parked ones
 * hold no bins) and, with scale_low and scale_high set, drives their
 * number from the workers' busy and operator times (mg_balancer_config).
 *
 * Lifetime.  The balancer stops by itself when the run stops taking
 * migrations (every source and input ended, mg_dataflow_stop(), an
 * error); mg_dataflow_join() waits for it, mg_dataflow_destroy() frees it.
 * mg_balancer_stop() stops it earlier.
 */

struct mg_balancer;

enum mg_balance_kind {
	MG_BALANCE_MOVE,  /* a migration was submitted */
	MG_BALANCE_HOLD,  /* a worker is above the limit, nothing can move */
	MG_BALANCE_SCALE, /* the active workers changed (scale_low/high) */
};

struct mg_balance_event {
	double t_s; /* seconds since the run started */
	enum mg_balance_kind kind;
	char reason[160];  /* what the balancer saw, in words */
	double mean;	   /* load per worker, records/s */
	double limit;	   /* mean + threshold x the bins' mean (without
			      the workers' base loads) */
	double max_before; /* the busiest worker's load ... */
	double max_after;  /* ... and what the plan expects after it */
	uint32_t workers;  /* entries of the arrays below */
	/* [workers] records/s before and as planned after, busy fraction
	 * (0..1, decayed); shared with the balancer: valid until
	 * mg_dataflow_destroy() */
	const double *load_before, *load_after, *busy;
	uint32_t bins;	 /* bins moved (MOVE) */
	uint64_t bytes;	 /* their state bytes when planned */
	uint32_t hot;	 /* bins heavier than the limit on their own */
	uint32_t pinned; /* bins cooling down or in a migration */
	struct mg_migration *migration; /* MOVE, SCALE: its progress (NULL if
					   no bin had to move); else NULL */
	uint32_t active_before, active_after; /* active workers (SCALE:
						 changed) */
	double utilization;    /* the workers' busy fractions summed, over the
			       active ones */
	double op_utilization; /* their time in operator and source steps
				  (mg_worker_stats work + feed) summed,
				  over the active ones */
	double in_rate;	       /* records/s all workers' stateful operators
			   received (mg_worker_stats in_rate, summed) */
};

/* Called on the balancer's thread after each event (@e: borrowed for the
 * call); must not block for long nor call mg_balancer_stop(). */
typedef void (*mg_balance_fn)(void *ctx, const struct mg_balance_event *e);

struct mg_balancer_config {
	uint64_t interval_ns;	   /* between decisions, >= 1 ms; default 500 ms
				 (rates are refreshed every 100 ms) */
	double threshold;	   /* (0, 100]; default 0.2 */
	uint64_t cooldown_ns;	   /* a moved bin stays put; default 5 s */
	unsigned patience;	   /* decisions above the threshold before it
				      acts, 1..1000; default 2 */
	enum mg_strategy strategy; /* default MG_ALL_AT_ONCE */
	uint64_t gap;		   /* epochs between fluid/batched steps */
	mg_balance_fn on_event;	   /* optional, with ctx */
	void *ctx;
	/* Scaling (off when both are 0): with utilization U -- the busy
	 * fractions of all workers summed, over the k active ones -- above
	 * scale_high for `patience` decisions, or an active worker behind
	 * its input (busy time is wall time: a worker starved of its CPU
	 * looks idle while its backlog grows), or the sources lagging the
	 * clock by 10 ms, one more worker becomes active.  One fewer with
	 * the operators' utilization O -- their time in operator and source
	 * steps (work + feed) summed, over k: busy time counts every round
	 * that found a record whole, so on a light stream it reads far
	 * above what the records take -- below scale_low, nothing behind
	 * or lagging, and the input rate below 0.8 of the lowest at which
	 * k - 1 workers asked for one more: a scale-in too far is undone
	 * once, and not tried again at that load (no projection from k
	 * workers' times to k - 1's holds: a step's cost per record falls
	 * as more records share it).  Each change through
	 * mg_dataflow_set_active(), at most once per cooldown_ns.
	 * 0 < scale_low < scale_high <= 1. */
	double scale_low, scale_high;
};

/*
 * Start a balancer on @df, before mg_dataflow_start() (it begins with the
 * run) or while it runs.  @cfg: borrowed; zero fields (or NULL) take the
 * defaults.  @out: gives the balancer, owned by the dataflow (valid until
 * mg_dataflow_destroy()); may be NULL.
 * Context: the building thread; creates a thread.
 * Return: 0; -EINVAL for a bad config, a dataflow without bins to move (no
 * stateful operator with bins, or no_stats), or one that has ended or been
 * joined; -EBUSY if @df has a balancer already (also a stopped one: a
 * dataflow has one balancer for its life); -ENOMEM; -EAGAIN if the
 * thread cannot be created.  Started before a start that fails, it waits,
 * idle, for mg_dataflow_destroy().
 */
MG_API int mg_balancer_start(struct mg_dataflow *df,
			     const struct mg_balancer_config *cfg,
			     struct mg_balancer **out);

/*
 * Stop @b and wait for its thread; its events stay readable.  A migration
 * it submitted goes on.  Idempotent.
 * Context: any thread but the balancer's own (its callback); blocks for at
 * most one decision.
 * Return: 0; -EINVAL for NULL.
 */
MG_API int mg_balancer_stop(struct mg_balancer *b);

/* The number of events so far.  Context: any thread. */
MG_API size_t mg_balancer_nevents(const struct mg_balancer *b);

/*
 * Copy event @i (0 .. mg_balancer_nevents() - 1, in time order) to @out;
 * its arrays stay shared with the balancer (valid until destroy).
 * Context: any thread.
 * Return: 0; -ENOENT if there is no event @i; -EINVAL for NULL.
 */
MG_API int mg_balancer_event(const struct mg_balancer *b, size_t i,
			     struct mg_balance_event *out);

struct mg_balancer_stats {
	uint64_t rounds;     /* decisions taken: at most one per interval
				and per sample of the rates */
	uint64_t migrations; /* migrations submitted */
	uint64_t bins_moved; /* bins those moved */
	bool running;	     /* its thread has not ended */
};

/* Fill @out (zeros for NULL @b).  Context: any thread. */
MG_API void mg_balancer_stats(const struct mg_balancer *b,
			      struct mg_balancer_stats *out);

/* ---- elastic workers ----------------------------------------------------------
 *
 * A dataflow keeps its workers (channels, a source's per-worker shares,
 * producers' workers, frontiers) but not necessarily a thread each:
 * mg_dataflow_set_active(df, k) moves every bin of workers k and above onto
 * workers 0..k-1 (a normal migration at the earliest time the engine
 * takes: outputs stay identical) and parks those workers as soon as they
 * hold no bin: their threads sleep on a futex and use no CPU.  What a
 * parked worker still has to do -- forward frontiers, generate its share
 * of a source, drain producers bound to it, take what an exchange sends it
 * -- the active threads run for it, a round at a time, so no frontier waits
 * on a sleeping thread and nothing is lost or reordered.  Raising k wakes
 * workers and moves bins back onto them.  Both migrations move the fewest
 * bins that bring every active worker within 2 % of the mean load (by
 * the bins' rates; by number of bins without statistics).  A running
 * balancer (above) plans for the active workers only, and can drive k from
 * load (mg_balancer_config.scale_low / scale_high).
 */

/*
 * Keep @k workers (1 .. mg_dataflow_workers()) running, the first @k;
 * park the others once their bins have left (asynchronous: see
 * mg_dataflow_worker_parked()).
 * Context: any thread but the workers, while the run takes migrations.
 * Return: 0; -EINVAL (@k out of range, not running or no longer taking
 * migrations); -EBUSY (a bin that must leave is in an unfinished
 * migration to a worker that would park: retry once it is done);
 * -ETIME, -ENOMEM as mg_migrate().  On failure nothing changed.
 */
MG_API int mg_dataflow_set_active(struct mg_dataflow *df, unsigned k);

/* The active workers last set (mg_dataflow_workers() until then).
 * Context: any thread. */
MG_API unsigned mg_dataflow_active(const struct mg_dataflow *df);

/* Whether worker @w's thread is parked now (its rounds run on the active
 * threads).  Context: any thread. */
MG_API bool mg_dataflow_worker_parked(const struct mg_dataflow *df, unsigned w);

/*
 * Print the engine's state to @f: the control frontier, each probe's
 * frontier, and per worker every node's frontier, a stateful operator's
 * progress, held and awaiting bins and pending moves, a send's queue and
 * marks.  For watchdogs and for looking at a run that does not end: it
 * reads the workers' fields without stopping them, so values may be a
 * round old.  Context: any thread.
 */
MG_API void mg_dataflow_dump(const struct mg_dataflow *df, FILE *f);

/* Workers of @df, and the number of bins (1 << bins_log2). */
MG_API unsigned mg_dataflow_workers(const struct mg_dataflow *df);
MG_API uint32_t mg_dataflow_bins(const struct mg_dataflow *df);

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

#ifdef __cplusplus
}
#endif

#endif /* MEGAPHONE_H */
