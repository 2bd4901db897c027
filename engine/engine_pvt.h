/*
 * engine_pvt.h - the dataflow runtime's internal structures.
 *
 * GRAPH
 *
 * A dataflow is a DAG of nodes, created in topological order (a node's
 * inputs exist before it).  Every node produces at most one stream.  Nodes of
 * three kinds are *scheduled* -- each worker steps them once per round:
 *
 *   SOURCE    generates its share of the open-loop schedule;
 *   INPUT     drains the application's producers bound to this worker
 *             (input.c) into its stream;
 *   RECV      drains an exchange/distribute mesh into its stream;
 *   STATEFUL  drains one or two distribute meshes into per-time logs and
 *             runs the user function per (bin, time) once the time is due.
 *
 * The other kinds are *pipelined* subscribers of a stream, run inline when a
 * record is emitted on it, on the same worker:
 *
 *   FLAT_MAP  calls the user function, which emits on the node's stream;
 *   SEND      writes the record into the batch for its destination worker
 *             (the sending half of an exchange, distribute or stateful input)
 *             or, for an output queue, into the batch for the application's
 *             consumer thread (one channel per worker: output.c); batches
 *             go out when full and at the end of the round -- one bound
 *             for a stateful log once its time has closed here
 *             (mg__send_flush());
 *   SINK      calls the user function.
 *
 * FRONTIERS
 *
 * Every stream has, per worker, a frontier: no record earlier than it will
 * be emitted on it by that worker.  SOURCE: the epoch of its next scheduled
 * record.  INPUT: the minimum over its producers (input.c).  FLAT_MAP: its
 * input's.  RECV: its mesh port's.  STATEFUL: the
 * input frontier up to which it has processed everything (`done_upto`).
 * A SEND forwards the frontier of the stream it subscribes to as progress
 * marks, held back by the times of batches it has not pushed yet.
 *
 * BACKPRESSURE
 *
 * A SEND gets its batches from the channel; when the channel has none free
 * (every batch is in the ring or unreturned) it takes an *overflow* batch from
 * the page pool and queues it.  Overflow batches never travel: once the
 * channel has room, their records are copied into a channel batch.  A SEND
 * takes a channel batch only while nothing is queued for that destination,
 * so a queued channel batch is always at the head: otherwise the channel's
 * batches could all sit queued behind an overflow batch that then finds
 * none to be copied into (a self-deadlock the tiny-ring tests caught).  A SEND
 * with more queued than its *slack* is *congested*; a scheduled node whose
 * output reaches a congested SEND (through flat-maps) does no new work that
 * round, so only one round's output beyond the slack can ever be queued per
 * node.  Sources therefore throttle and keep their schedule (overload shows
 * as latency); every other node keeps draining as soon as its output
 * drains, which, the graph being a DAG, always happens: nothing deadlocks
 * for any ring capacity >= 2.  The slack is 0 for an exchange; for an
 * output it is output_buffer's worth of batches, because an output drains
 * only when an application thread reads it: one that pushes everything
 * before it reads (a new user's first program) stopped at the first ring's
 * worth -- its own push waiting on the output it was yet to read.
 *
 * The per-worker parts of each node live in its `inst` array, one cache-
 * aligned element per worker, written only by that worker.
 */
#ifndef MG_ENGINE_PVT_H
#define MG_ENGINE_PVT_H

#include <pthread.h>
#include <stdatomic.h>

#include "engine/hist_pvt.h"
#include "engine/megaphone.h"
#include "migration/mg_router.h"
#include "queues/mg_mesh.h"

#define MAX_SUBS     8
#define LAT_RING     (1u << 16) /* epochs awaiting completion, per worker */
#define WIN_RING     64		/* latency windows in flight, per worker */
#define SOURCE_BURST 4096	/* records a source makes per round at most */
/* A thread that spins (an idle worker, a producer waiting for room) and
 * finds a gap this long between two looks was preempted: its CPU is shared,
 * and it spins short for MG__CONTENDED_NS (worker.c, input.c). */
#define MG__PREEMPTED_NS 100000ull
#define MG__CONTENDED_NS 100000000ull
#define RECV_BURST	 32 /* batches a receiver takes per call */
/* control leads a source's share may run ahead of its slowest (worker.c) */
#define SOURCE_SKEW 8

enum node_kind { SOURCE, INPUT, FLAT_MAP, RECV, STATEFUL, SEND, SINK };

/* A growable array in a private virtual reservation (MAP_NORESERVE): it
 * grows by touching pages, never by a system call or malloc. */
struct vbuf {
	unsigned char *base;
	size_t len, reserved;
};

int mg__vbuf_init(struct vbuf *v, size_t reserve);
void mg__vbuf_free(struct vbuf *v);

/* Room for @n more bytes; false if the reservation is exhausted. */
static inline bool
mg__vbuf_room(const struct vbuf *v, size_t n)
{
	return v->reserved - v->len >= n;
}

struct stream {
	struct mg_dataflow *df;
	struct node *from; /* producer */
	struct node *subs[MAX_SUBS];
	unsigned nsubs;
	uint32_t record_size;
};

struct mg_emitter {
	struct stream *s;
	struct worker *wk;
	uint64_t time;
};

/* One time of a worker's source or input records awaiting completion. */
struct lat_epoch {
	uint64_t epoch, count, first_ns, last_ns;
};

/* Times whose latency is measured once the first probe completes them. */
struct lat_ring {
	uint64_t head, tail; /* of lat[LAT_RING] */
	struct lat_epoch *lat;
};

struct source_inst {
	uint64_t k;	   /* next local record: seq = w + k * W */
	uint64_t frontier; /* never above the control frontier */
	bool closed;	   /* every record generated */
	uint64_t floor;	   /* the least progress of all shares, as last read */
	struct lat_ring lat; /* its records' scheduled times */
	unsigned char *rec;  /* scratch record */
	/* the epoch of its next record (MG_TIME_MAX once closed): read by
	 * the other workers' shares, which keep within SOURCE_SKEW of the
	 * slowest, and by the control thread (mg__ctl_target).  On a line
	 * of its own, stored only when it moves: a share held back by the
	 * skew reads it every round, and beside `k`, which the source
	 * writes on every record, that read took the line from the worker
	 * behind on every record. */
	_Atomic uint64_t progress MG_CACHE_ALIGNED;
} MG_CACHE_ALIGNED;

struct mg_producer;

/* A worker's part of an application input (input.c). */
struct input_inst {
	struct mg_producer *active; /* admitted producers: worker-private */
	uint64_t frontier;	    /* published downstream, monotone */
	struct lat_ring lat;	    /* pushed records' push times */
	/* min over its producers' frontiers (MG_TIME_MAX: none); read by
	 * the other workers to follow the input's frontier */
	_Atomic uint64_t own MG_CACHE_ALIGNED;
	/* producers opened during the run, for this worker to admit */
	_Atomic(struct mg_producer *) join MG_CACHE_ALIGNED;
} MG_CACHE_ALIGNED;

struct pending {
	struct mg_batch *head, *tail;
	uint64_t floor; /* no queued batch is earlier: head's time while
			   they were queued in time order */
	bool sorted;	/* queued in time order since it was last empty */
};

struct send_inst {
	struct mg_batch **cur;	/* [ndest] batch being filled per destination */
	struct pending *q;	/* [ndest] full batches not yet pushed */
	struct mg_batch *spare; /* free overflow batches */
	unsigned queued;	/* batches in all q */
	uint64_t flushed;	/* the stream's frontier at the last flush:
				   every record before it was emitted (an
				   output's STOPPING) */
	uint32_t round_records; /* records it took this round
				   (mg__send_flush()) */
	bool congested;
	bool sent; /* a batch or mark went out: wake a consumer */
} MG_CACHE_ALIGNED;

struct bin;

/* The worker-side index of bins with timers: a min-heap on (time, bin). */
struct theap_ent {
	uint64_t time;
	uint64_t bin;
};

struct sort_pair {
	uint64_t key; /* (time - tmin) << bins_log2 | bin */
	uint64_t ref; /* the entry's address | its input (stateful.c) */
};

/* A move this worker takes part in, learned from the routing table. */
struct pending_move {
	uint64_t id, time;
	uint32_t bin, to;
	struct mg_step_ctl *step;
};

/* In a reserved mapping, like the logs: it grows without allocating. */
struct move_list {
	struct pending_move *v; /* mem.base */
	uint32_t n, cap;
	struct vbuf mem;
};

/*
 * One input's received entries { time, bin, record }, by time: bucket[t % NB]
 * holds the entries of time t for t in the window [processed_upto,
 * processed_upto + NB); `far` holds later times as runs (a received batch is
 * one run, all of one time) listed in `runs` sorted by time from runs_head;
 * `defer` holds due entries of bins awaiting acquisition.  Due work and the
 * next window's entries come off the head of `runs` in O(what is taken), so
 * a backlog of future entries (a worker far behind under overload) costs
 * nothing per pass.  far's data is append-only and compacted when most of
 * it is dead.
 */
#define TLOG_BUCKETS 16
struct far_run {
	uint64_t time;
	uint64_t off; /* in far */
	uint64_t bytes;
};

struct tlog {
	struct vbuf bucket[TLOG_BUCKETS];
	struct vbuf far, far_next; /* far_next: compaction target */
	struct vbuf runs;	   /* struct far_run, by time */
	size_t runs_head;	   /* first live run */
	size_t runs_taken;	   /* due runs the current pass took */
	size_t far_live;	   /* bytes of live runs */
	struct vbuf defer, defer_next;
};

/* A bin's load as one worker saw it (stats.c). */
struct bin_count {
	_Atomic uint64_t records; /* processed while this worker held it */
	_Atomic uint64_t bytes;	  /* its arena's bytes, 0 once it left */
};

struct stateful_inst {
	struct tlog log[2];	 /* per input */
	struct vbuf pairs, tmp;	 /* sort keys of due entries */
	struct vbuf gather[2];	 /* one call's records per input */
	struct vbuf timers;	 /* one call's due timers */
	struct vbuf theap;	 /* struct theap_ent */
	uint64_t done_upto;	 /* output frontier */
	uint64_t processed_upto; /* every due entry before it is processed,
				    but those of bins awaiting acquisition */
	uint64_t calls;
	uint64_t records; /* records processed */
	uint64_t backlog; /* records logged, not yet processed (stats) */
	/* entries of bins on their way here: deferred, copies made of them
	 * (each is copied once, and again at each rescan), rescans (dump.c) */
	uint64_t deferred, defer_copies, rescans;
	struct bin_count *counts; /* this worker's row of st.counts, or NULL */
	struct bin *native;	  /* native mode: this worker's one state */
	/* migration (see the handoff essay in stateful.c) */
	uint64_t *held;	    /* bitmap: bins whose state this worker has */
	uint64_t *awaiting; /* bitmap: bins with an incoming move pending */
	uint32_t nheld;	    /* bits set in held */
	struct move_list in, out;
	uint64_t last_move_id; /* moves up to it are in `in`/`out` or done */
	bool acquired;	       /* something arrived: reprocess deferred */
	/* copy mode: serialized bins per peer, out and in */
	struct vbuf *ser;   /* [W] bytes to send to each worker */
	size_t *sent;	    /* [W] bytes of ser[w] already sent */
	struct vbuf *reasm; /* [W] bytes from each worker, not yet rebuilt */
	struct mg_batch **state_held; /* [W] a filled batch the ring refused */
	uint64_t copy_fallbacks; /* moves handed over: their copy did not fit */
} MG_CACHE_ALIGNED;

struct node {
	enum node_kind kind;
	unsigned id;
	struct mg_dataflow *df;
	struct stream *in[2];  /* inputs: subscribed (pipelined) streams */
	struct stream *out;    /* NULL for SEND and SINK */
	struct node *feeds;    /* SEND: the node its mesh delivers to */
	unsigned port;	       /* SEND: which input of `feeds` */
	struct node **congest; /* scheduled: SENDs reachable downstream */
	unsigned ncongest;
	union {
		struct mg_source_config src;
		struct {
			mg_flat_map_fn fn;
			void *ctx;
		} map;
		struct {
			mg_sink_fn fn;
			void *ctx;
		} sink;
		struct mg_input *input;
		struct {
			mg_hash_fn hash;
			void *ctx;
			bool by_bin; /* distribute: route by bin owner */
			struct mg_mesh *mesh;	  /* or ... */
			struct mg_output *output; /* one channel per worker */
			unsigned ndest;		  /* W, or 1 for an output */
			unsigned slack;		  /* batches queued before it is
					   congested: 0, or output_buffer's
					   worth for an output */
		} send;
		struct {
			struct mg_mesh *mesh;
		} recv;
		struct {
			struct mg_stateful_config cfg;
			struct mg_mesh *mesh[2];
			struct bin **bins; /* [nbins], holder-written */
			_Atomic uint64_t
				*token;	       /* [nbins] last move released */
			struct mg_mesh *state; /* copy mode: serialized bins */
			/* [W * nbins]: per worker and bin, records processed
			 * and state bytes; NULL with no_stats.  Each worker
			 * writes its own row (relaxed load + store, no RMW);
			 * the control thread reads them relaxed (stats.c). */
			struct bin_count *counts;
			unsigned vshift; /* buffer reservations >> vshift */
		} st;
	} u;
	union {
		struct source_inst *source;
		struct input_inst *input;
		struct send_inst *send;
		struct stateful_inst *st;
		void *any;
	} inst; /* [W] per-worker state */
};

/* What each worker publishes; read by the others and the control thread. */
struct worker_pub {
	_Atomic uint64_t window;     /* latency window it is recording */
	_Atomic bool sources_closed; /* its sources generated everything */
	_Atomic bool done;
	/* load, for controllers (stats.c): plain stores by the worker; busy:
	 * rounds that did work, beyond an empty one (account_round()) */
	_Atomic uint64_t busy_ns;
	_Atomic uint64_t work_ns; /* of it, in stateful steps that worked */
	_Atomic uint64_t feed_ns; /* ... in source and input steps that did */
	_Atomic uint64_t backlog; /* records received, not yet processed */
	_Atomic uint64_t records; /* records its stateful operators took */
	_Atomic uint64_t round_end_ns; /* when its last round ended (clock) */
	/* its thread's mg_thread_wait_open() + 1, stored by the thread before
	 * its first round; 0: none (yet); closed by mg__stats_fini() */
	_Atomic int wait_fd;
	/* elasticity (elastic.c): who runs its rounds (enum run_state), and
	 * the event count its thread sleeps on while parked */
	_Atomic uint32_t run;
	_Atomic uint32_t park_seq;
	/* 1 while its thread naps, idle (worker.c); a thread that waits on
	 * it -- a producer for room, an output's reader that made room --
	 * ends the nap (mg__worker_kick).  On a line of its own: the kickers
	 * read it on every wait, and it changes only when the worker naps. */
	_Atomic uint32_t napping MG_CACHE_ALIGNED;
} MG_CACHE_ALIGNED;

/*
 * Who runs a worker's rounds (elastic.c).  Exactly one thread at a time
 * does, and every hand-over is a release/acquire pair on `run`, so the
 * worker's state stays single-writer whichever thread writes it:
 *
 *   RUN_OWN       its own thread
 *   RUN_PARK_REQ  its own thread, asked to park once it holds no bins
 *   RUN_HOSTED    parked: its thread sleeps; any active thread may claim it
 *   RUN_CLAIMED   an active thread is running one round of it
 *   RUN_DONE      its rounds are over (its streams ended)
 */
enum run_state { RUN_OWN, RUN_PARK_REQ, RUN_HOSTED, RUN_CLAIMED, RUN_DONE };

/*
 * A probe (probe.c): per worker the frontier of its stream there, and the
 * global frontier -- the minimum -- that completion waits on.
 */
struct probe_pub {
	_Atomic uint64_t frontier;
} MG_CACHE_ALIGNED;

struct mg_probe {
	struct mg_dataflow *df;
	struct stream *s;
	struct probe_pub *pub; /* [W] */
	/* min over pub, monotone: raised by any worker with a CAS, read by
	 * anyone (acquire) */
	_Atomic uint64_t completed MG_CACHE_ALIGNED;
	mg_complete_fn fn; /* called by the control thread */
	void *ctx;
	uint64_t reported; /* control thread: last frontier given to fn */
};

struct worker {
	struct mg_dataflow *df;
	unsigned w;
	int cpu;
	bool shares_cpu; /* oversubscribed: another worker runs on its CPU */
	unsigned node;	 /* NUMA node index */
	pthread_t thread;
	uint64_t round_work;	/* work done this round (records, batches) */
	uint64_t round_ns;	/* clock at the start of this round */
	uint64_t busy_ns;	/* rounds that did work, beyond an empty one */
	uint64_t work_ns;	/* stateful steps that did work (worker.c) */
	uint64_t feed_ns;	/* source and input steps that did work */
	uint64_t idle_round_ns; /* what an empty round takes (worker.c) */
	uint64_t end_ns;	/* clock at the end of its last round */
	uint64_t contended_ns;	/* until then it spins as on a shared CPU */
	uint64_t steps_ns;	/* work_ns + feed_ns at the last round's end */
	uint64_t window;	/* current latency window */
	bool windows_lost;	/* the reporter fell WIN_RING windows behind */
	struct mg__hist whole;	/* whole-run latency (this worker's records) */
	struct mg__hist win[WIN_RING];
} MG_CACHE_ALIGNED;

/* A worker's counters at the previous sample, and their decayed rates:
 * fractions of time for the times, records/s for the counts (stats.c). */
struct wk_load {
	uint64_t busy_ns, work_ns, feed_ns, done, recv;
	uint64_t wait_ns; /* its thread's run queue delay; UINT64_MAX: unread */
	double busy, work, feed, done_rate, recv_rate, waiting;
};

/* The control thread's view of per-bin and per-worker load (stats.c). */
struct stats {
	pthread_mutex_t lock; /* readers vs the sampler; never a worker */
	uint64_t last_ns;     /* previous sample */
	uint64_t samples;     /* samples that updated the workers' rates */
	uint64_t bins_ns;     /* previous read of the bins' rates */
	uint64_t *bin_total;  /* [nbins] records at the previous read */
	double *bin_rate;     /* [nbins] decayed records/s */
	struct wk_load *wk;   /* [W] */
	double unseen;	      /* e^(-t/tau), t since the first sample: the
				 weight the workers' averages lack */
	double bins_unseen;   /* the same for the bins', at their last read */
};

struct mg_dataflow {
	struct mg_dataflow_config cfg;
	struct mg_topology *topo;
	struct mg_pools *pools;
	struct mg_router *router;
	unsigned nbins_log2;
	unsigned nmigratable; /* stateful operators with bins */
	struct mg_rehomer *rehomer;
	int build_error; /* first builder error (building thread) */
	/* migrations (migrate.c), guarded by `lock` */
	pthread_mutex_t lock;
	struct mg_migration *migrations; /* unfinished, newest first */
	struct mg_migration *finished;	 /* finished: progress only */
	uint8_t *busy;	      /* [nbins] bin of an unfinished migration */
	_Atomic bool closing; /* no more migrations (set under `lock`) */
	struct node **nodes;
	unsigned nnodes, cap_nodes;
	struct mg_probe **probes; /* probes[0] measures latency */
	unsigned nprobes;
	struct mg_input **inputs;
	unsigned ninputs;
	struct mg_output **outputs;
	unsigned noutputs;
	struct worker *wk;	/* [W] */
	struct worker_pub *pub; /* [W] */
	unsigned *node_of;	/* [W] NUMA node index of each worker */
	uint64_t start_ns;
	uint64_t ctl_lead_epochs; /* control frontier lead over the clock */
	bool clocked;		  /* it has sources: the control frontier
				     follows the clock (else inputs raise it
				     as their records need) */
	_Atomic unsigned ready;	  /* workers done prefilling */
	_Atomic bool go;	  /* start_ns is set: run (or stop on error) */
	_Atomic bool running;	  /* started and not yet ended */
	bool started, joined;
	_Atomic bool halt;	/* stop or error: workers leave their loops */
	_Atomic bool stopped;	/* mg_dataflow_stop() asked for it */
	_Atomic int error;	/* first error an operator reported */
	const char *error_what; /* what failed: written once, by the thread
				   whose error won, read after the join */
	/* completion: bumped when a probe's frontier advances or the run
	 * halts -- and, while mig_waiters, when a migration's step completes,
	 * it ends or a worker exits; probe waiters, the control thread and
	 * mg_migration_wait() sleep on it */
	_Atomic uint32_t wake_seq MG_CACHE_ALIGNED;
	_Atomic uint32_t waiters;     /* probe waiters, the control thread */
	_Atomic uint32_t mig_waiters; /* in mg_migration_wait() */
	/* control thread */
	pthread_t control;
	mg_window_fn on_window;
	void *on_window_ctx;
	_Atomic bool stop_control;
	_Atomic uint64_t win_merged; /* windows below are merged, slots free */
	uint64_t rss_peak;
	uint64_t end_ns;
	struct stats stats;
	/* mg_balancer_start() (building thread); its thread is joined by
	 * mg_dataflow_join(), the balancer freed by destroy (balancer.c) */
	struct mg_balancer *balancer;
	/* elasticity (elastic.c): workers that may hold bins (the first
	 * `active`), serialized by elastic_lock (never a worker's); workers
	 * whose rounds active threads run (RUN_HOSTED or RUN_CLAIMED), a
	 * hint read every round */
	pthread_mutex_t elastic_lock;
	_Atomic unsigned active;
	_Atomic unsigned nhosted MG_CACHE_ALIGNED;
};

/* An error a user function reported (an operator, prefill, copy mode's
 * serializers): a positive errno counts as its negative. */
static inline int
mg__user_err(int err)
{
	return err > 0 ? -err : err;
}

/* ---- worker.c ---------------------------------------------------------- */
void *mg__worker_main(void *arg);
void mg__worker_kick(struct mg_dataflow *df, unsigned w);
/* Whether every worker thread has exited its loop: no thread touches a
 * worker's state any more (acquire: what they did is visible). */
bool mg__workers_exited(const struct mg_dataflow *df);

/* ---- send.c ------------------------------------------------------------ */
uint64_t mg__stream_frontier(const struct stream *s, unsigned w);
bool mg__congested(const struct node *n, unsigned w);
bool mg__send_flush(struct node *n, struct worker *wk);
void mg__overflow_free(struct mg_dataflow *df, struct mg_batch *b);
/* The pool memory an overflow batch for channels of @cc takes (send.c). */
size_t mg__overflow_bytes(const struct mg_channel_config *cc);

/* ---- dataflow.c -------------------------------------------------------- */
/* Building (the building thread): append a node, subscribe it to a stream,
 * check a stream given to a builder, latch a builder error (NULL). */
int mg__add_node(struct mg_dataflow *df, enum node_kind kind,
		 uint32_t out_record_size, struct node **out);
void mg__subscribe(struct node *n, unsigned port, struct stream *s);
bool mg__stream_ok(const struct mg_dataflow *df, const struct mg_stream *in);
struct mg_stream *mg__build_fail(struct mg_dataflow *df, int err);
/* Latch @err as the run's error (the first one wins) and halt the run.
 * @what: static text naming what failed, for mg_run_stats.error_what. */
void mg__set_error(struct mg_dataflow *df, int err, const char *what);
/* The run failed: an error is latched.  Relaxed: a flag polled on the data
 * path; a worker that loses data latches the error itself before it could
 * publish anything past the loss (round_once() in worker.c). */
static inline bool
mg__failed(struct mg_dataflow *df)
{
	return atomic_load_explicit(&df->error, memory_order_relaxed) != 0;
}
/* Halt the workers and wake the probe waiters; lock-free (workers may call
 * it).  The control thread then wakes the rest (mg__wake_all). */
void mg__halt(struct mg_dataflow *df);
/* Latch a builder error; returns it. */
int mg__build_error(struct mg_dataflow *df, int err);
/* A time in the dataflow's clock: MG_TIME_NOW resolved to the current
 * epoch, anything else unchanged. */
uint64_t mg__resolve_time(const struct mg_dataflow *df, uint64_t t);

/* ---- latency.c --------------------------------------------------------- */
uint64_t mg__rss_bytes(void);
int mg__lat_init(struct lat_ring *r);
void mg__lat_fini(struct lat_ring *r);
/* Count @n records of time @t seen from @first_ns to @last_ns (run time).
 * Inline: a source counts each record.
 * Return: false if the ring is full (the probe is far behind). */
static inline bool
mg__lat_add(struct lat_ring *r, uint64_t t, uint64_t n, uint64_t first_ns,
	    uint64_t last_ns)
{
	struct lat_epoch *l =
		r->tail != r->head ? &r->lat[(r->tail - 1) % LAT_RING] : NULL;

	if (!l || l->epoch != t) {
		if (r->tail - r->head == LAT_RING)
			return false;
		l = &r->lat[r->tail++ % LAT_RING];
		*l = (struct lat_epoch){t, 0, first_ns, last_ns};
	}
	l->count += n;
	l->first_ns = first_ns < l->first_ns ? first_ns : l->first_ns;
	l->last_ns = last_ns > l->last_ns ? last_ns : l->last_ns;
	return true;
}
/* Record the latency of every time before @done (the first probe's
 * frontier), as of @now. */
void mg__lat_complete(struct lat_ring *r, struct worker *wk, uint64_t done,
		      uint64_t now);
void mg__latency_record(struct worker *wk, uint64_t now, uint64_t lo,
			uint64_t hi, uint64_t n);
void mg__latency_advance(struct worker *wk, uint64_t now);
/* Control thread: merge and report the windows below @upto; the lowest (or
 * highest) window any worker is recording. */
void mg__windows_merge(struct mg_dataflow *df, struct mg__hist *h,
		       uint64_t upto);
uint64_t mg__windows_worker(const struct mg_dataflow *df, bool highest);

/* ---- input.c ----------------------------------------------------------- */
int mg__input_prepare(struct node *n);
void mg__input_fini(struct node *n);
void mg__input_step(struct node *n, struct worker *wk);
bool mg__inputs_ended(struct mg_dataflow *df);
void mg__inputs_wake(struct mg_dataflow *df);
void mg__inputs_reap(struct mg_dataflow *df);
uint64_t mg__inputs_pushed(const struct mg_dataflow *df);

/* ---- output.c ---------------------------------------------------------- */
struct mg_channel *mg__output_channel(const struct mg_output *o, unsigned w);
void mg__output_notify(struct mg_output *o);
/* Worker @w ran its last round of a run that ended (not stopped): what it
 * still queues for @o is the consumer's to take (output.c, ENDING). */
void mg__output_end(struct mg_output *o, unsigned w);
void mg__output_free(struct mg_output *o);

/* ---- probe.c ----------------------------------------------------------- */
void mg__probes_publish(struct mg_dataflow *df, struct worker *wk);
void mg__probes_report(struct mg_dataflow *df, bool last);
/* After the workers were joined: every probe's final frontier. */
void mg__probes_finish(struct mg_dataflow *df);
/* The run halted, failed to start or ended: nothing more will complete. */
bool mg__run_over(const struct mg_dataflow *df);
/* After an end that sleepers counted in @count (df->waiters, mig_waiters)
 * wait for: if any sleeps, bump wake_seq and wake them.  Lock-free: a
 * fence and a load when nobody sleeps (the waiting protocol: probe.c). */
void mg__wake_counted(struct mg_dataflow *df, _Atomic uint32_t *count);
/* Wake every thread sleeping on the run: probe waiters, producers, openers,
 * output consumers.  Takes the inputs' locks: never on a worker. */
void mg__wake_all(struct mg_dataflow *df);
void mg__probe_free(struct mg_probe *p);

/* ---- stateful operators: stateful.c, bins.c, handoff.c, copymode.c ----- */

/* An operator's buffers reserve these on a big machine, scaled down by
 * 2^vshift to the machine (bins.c). */
#define LOG_RESERVE	(2ull << 30) /* per time bucket */
#define FAR_RESERVE	(8ull << 30)
#define COPY_RESERVE	(16ull << 30)
#define SCRATCH_RESERVE (1ull << 30)

/*
 * The limits those give (the table "Limits" in megaphone.h; keep the two
 * alike).  Every write into a buffer is checked first; one that would
 * overflow fails the run with -ENOBUFS and the buffer's name below, as
 * mg_run_stats.error_what.  A failed run drops its incomplete times (see
 * round_once() in worker.c), so a write cut short loses nothing complete.
 *
 *   buffer                     reserve   holds (per worker and operator)
 *   log.bucket[t % 16]         LOG       entries of time t, per input
 *   log.far                    FAR       entries 16+ times ahead, per input
 *   log.runs                   SCRATCH   one far_run per such batch
 *   log.defer, defer_next      LOG       entries of bins awaiting arrival
 *   pairs (and tmp, as large)  LOG       sort keys of one pass's entries
 *   gather[in]                 SCRATCH   one call's records of input in
 *   timers                     SCRATCH   one call's due timer records
 *   theap                      SCRATCH   the index of bins with timers
 *   in, out (handoff.c)        SCRATCH   pending moves
 *
 * tmp never overflows (it takes what pairs holds), nor does log.far_next
 * (the live runs of far).  Copy mode's ser and reasm never stop a run
 * (copymode.c).
 */
#define LIMIT_BUCKET "records of one time, per input"
#define LIMIT_FAR    "records further ahead, per input"
#define LIMIT_RUNS   "records further ahead: the batches they came in"
#define LIMIT_DEFER  "records of bins on their way to this worker"
#define LIMIT_PAIRS  "records due in one pass"
#define LIMIT_GATHER "records of one call, per input"
#define LIMIT_TIMERS "timers due in one call"
#define LIMIT_THEAP  "bins with timers (the timer index)"
#define LIMIT_MOVES  "pending moves, into or out of a worker"

/* Pages of a bin queued for re-homing after a handoff: a block of the
 * bin's arena, made at its first re-homing (handoff.c). */
struct bin_rehome {
	struct mg_rehome_req req;
	size_t cap;		  /* ranges[] entries allocated */
	struct mg_range ranges[]; /* req.ranges */
};

/* What a bin makes when it first needs it, a block of its arena: its
 * timer queue and its re-homing request (bins.c). */
struct bin_extra {
	struct mg_timers timers;   /* empty until mg_schedule() */
	struct bin_rehome *rehome; /* NULL: not re-homed since the last
				      handoff */
};

/* A bin's block, at the start of its own arena (bins.c): 80 bytes and the
 * operator's root state -- with a map of a key or two, one 128 B chunk.
 * What few bins need is a block of its own, made on first use. */
struct bin {
	struct mg_arena arena;
	struct bin_extra *x; /* NULL: no timer yet, never re-homed */
	unsigned char state[] __attribute__((aligned(16)));
};

/*
 * Whether @b's pages are queued for re-homing: the re-homer still reads the
 * request, a block of @b's own arena, so @b must not be freed until DONE.
 */
static inline bool
mg__bin_rehoming(const struct bin *b)
{
	/* ORDER(rehome.A2): pairs with rehome.R2 in the re-homer's process();
	 * after DONE it never touches the request again. */
	return b->x && b->x->rehome &&
	       atomic_load_explicit(&b->x->rehome->req.state,
				    memory_order_acquire) == MG_REHOME_QUEUED;
}

/* The bin's earliest timer, UINT64_MAX if none. */
static inline uint64_t
mg__bin_next_timer(const struct bin *b)
{
	return b->x ? mg_timers_next(&b->x->timers) : UINT64_MAX;
}

static inline uint32_t
mg__bin_timer_count(const struct bin *b)
{
	return b->x ? mg_timers_count(&b->x->timers) : 0;
}

/* @b's extra block, made if it has none.  Context and return as
 * mg_arena_alloc(). */
int mg__bin_extra(const struct node *n, struct bin *b);

/* One call of the user function: the public part, and what mg_schedule()
 * needs besides. */
struct call_ctx {
	struct mg_bin_call pub;
	const struct node *n;
	struct bin *bin;
	struct stateful_inst *si;
	uint64_t bin_id;
};

static inline bool
mg__bit(const uint64_t *map, uint32_t b)
{
	return map[b / 64] >> (b % 64) & 1;
}

static inline void
mg__set_bit(uint64_t *map, uint32_t b, bool on)
{
	if (on)
		map[b / 64] |= 1ull << (b % 64);
	else
		map[b / 64] &= ~(1ull << (b % 64));
}

static inline bool
mg__copy_mode(const struct node *n)
{
	return n->u.st.state != NULL;
}

/* Load statistics (stats.c): a relaxed load and store each, no RMW; only
 * this worker writes its row. */
static inline void
mg__count_bin(struct stateful_inst *si, uint32_t bin, uint64_t records,
	      uint64_t bytes)
{
	struct bin_count *c = &si->counts[bin];

	if (records)
		atomic_store_explicit(
			&c->records,
			atomic_load_explicit(&c->records,
					     memory_order_relaxed) +
				records,
			memory_order_relaxed);
	if (atomic_load_explicit(&c->bytes, memory_order_relaxed) != bytes)
		atomic_store_explicit(&c->bytes, bytes, memory_order_relaxed);
}

int mg__stateful_init(struct node *n);
void mg__stateful_fini(struct node *n);
void mg__stateful_step(struct node *n, struct worker *wk);
int mg__stateful_prefill(struct node *n, struct worker *wk);
size_t mg__stateful_bytes(const struct node *n);

/* bins.c */
unsigned mg__st_vshift(const struct node *n);
int mg__st_vbuf_init(const struct node *n, struct vbuf *v, size_t full);
struct bin *mg__bin_create(struct node *n, unsigned node);
void mg__bin_free(struct bin *b);
bool mg__bin_pristine(const struct node *n, const struct bin *b);
int mg__bin_timers_write(const struct bin *b, struct mg_writer *w);
int mg__bin_timers_read(const struct node *n, struct bin *b,
			struct mg_reader *r);
int mg__theap_push(struct stateful_inst *si, uint64_t time, uint64_t bin);
const struct theap_ent *mg__theap_top(const struct stateful_inst *si);
void mg__theap_pop(struct stateful_inst *si);

/* handoff.c */
int mg__handoff_init(struct node *n, struct stateful_inst *si, unsigned w);
void mg__handoff_fini(struct stateful_inst *si);
int mg__handoff_learn(struct node *n, struct worker *wk,
		      struct stateful_inst *si);
void mg__handoff_acquire(struct node *n, struct worker *wk,
			 struct stateful_inst *si);
void mg__handoff_release(struct node *n, struct worker *wk,
			 struct stateful_inst *si);
uint64_t mg__handoff_earliest(const struct move_list *l);

/* copymode.c */
int mg__copy_init(struct node *n);
void mg__copy_fini(struct node *n);
/* Return: true if the bin is on its way as bytes; false if it must be
 * handed over instead (its copy did not fit, or the run failed). */
bool mg__copy_release(struct node *n, struct worker *wk,
		      struct stateful_inst *si, const struct pending_move *m);
void mg__copy_send(struct node *n, struct worker *wk, struct stateful_inst *si);
void mg__copy_receive(struct node *n, struct worker *wk,
		      struct stateful_inst *si);

/* ---- stats.c ----------------------------------------------------------- */
#define MG_STATS_SAMPLE_NS 100000000ull /* the control thread samples */
int mg__stats_init(struct mg_dataflow *df);
void mg__stats_fini(struct mg_dataflow *df);
void mg__stats_sample(struct mg_dataflow *df, uint64_t now);
/* How many samples have updated the rates so far. */
uint64_t mg__stats_samples(struct mg_dataflow *df);

/* ---- balancer.c -------------------------------------------------------- */
/* Stop the balancer's thread and wait for it (events stay); no-op without
 * one.  The building thread, from join and destroy. */
void mg__balancer_join(struct mg_dataflow *df);
/* mg__balancer_join(), then free it. */
void mg__balancer_free(struct mg_dataflow *df);
/* Worker @w of @ws (the first @k active) is behind its input, has no
 * room for more bins (behind or at capacity); which active worker is near
 * capacity (or -1); what @w's bins' rates understate its load by, what a
 * record costs on it against the mean, and its base load (pure; the
 * balancer's guards and load, tested on their own). */
bool mg__worker_behind(const struct mg_worker_stats *ws, unsigned k,
		       unsigned w);
bool mg__worker_full(const struct mg_worker_stats *ws, unsigned k, unsigned w);
int mg__worker_near_full(const struct mg_worker_stats *ws, unsigned k);
double mg__worker_gain(const struct mg_worker_stats *ws, unsigned k,
		       unsigned w);
double mg__worker_cost(const struct mg_worker_stats *ws, unsigned k,
		       unsigned w);
double mg__worker_base(const struct mg_worker_stats *ws, unsigned k,
		       unsigned w);
/* The bins' and the first @k workers' rates, read at the rates' sample
 * @samples, can carry a first decision (pure). */
bool mg__balancer_warm(const struct mg_bin_stats *bins, uint32_t nbins,
		       const struct mg_worker_stats *ws, unsigned k,
		       uint64_t samples);
/* What scaling read at a decision, over all W workers' statistics: */
struct mg__scale_reading {
	double util;	/* busy fractions summed, over the k active */
	double ops;	/* work + feed summed, over k */
	double in_rate; /* records/s the stateful operators received */
	bool late;	/* an active worker behind its input, or the
			   sources lagging by SCALE_LAG_NS (balancer.c) */
};
/* The direction (+1, -1, 0) @ws's W workers, the first @k active, ask the
 * active count to change in, under @c's scale_low/high; @full_rate[j]: the
 * lowest in_rate at which j workers asked for one more, 0 if never (pure;
 * see balancer.c). */
int mg__scale_wanted(const struct mg_worker_stats *ws, unsigned k, unsigned W,
		     const struct mg_balancer_config *c, uint64_t lag_ns,
		     const double *full_rate, struct mg__scale_reading *out);

/* ---- elastic.c --------------------------------------------------------- */
/* Worker side: true if @wk's thread was asked to park and holds no bins
 * nor pending moves; then mg__elastic_park() hands its rounds over and
 * sleeps until it is wanted again (returns RUN_OWN, or RUN_PARK_REQ if
 * asked to park again meanwhile), its rounds are over (RUN_DONE) or the
 * run halts (anything else: the worker is not its own to touch). */
bool mg__elastic_park_due(struct worker *wk);
uint32_t mg__elastic_park(struct worker *wk);
/* Wake every parked thread (the run halts); lock-free. */
void mg__elastic_wake_all(struct mg_dataflow *df);
/* mg_migrate() onto workers 0 .. @onto - 1 only; the caller holds
 * elastic_lock (migrate.c). */
int mg__migrate(struct mg_dataflow *df, enum mg_strategy s,
		const uint16_t *target, uint64_t at, uint64_t gap,
		unsigned onto, struct mg_migration **out);
/* Unpark workers below @k and ask those from @k on to park, moving their
 * bins onto the first @k with a migration given in *@out (NULL: none
 * needed).  Any thread but the workers. */
int mg__set_active(struct mg_dataflow *df, unsigned k,
		   struct mg_migration **out);

/* ---- control.c --------------------------------------------------------- */
int mg__control_start(struct mg_dataflow *df);
void mg__control_stop(struct mg_dataflow *df);

/* ---- migrate.c --------------------------------------------------------- */
void mg__migrations_tick(struct mg_dataflow *df);
/* Wake mg_migration_wait() callers, if any (a step completed, a migration
 * ended, a worker exited): lock-free, a fence and a load when nobody
 * waits, a system call when someone does. */
void mg__migrations_wake(struct mg_dataflow *df);
/* @out[b] = 1 if bin b is in an unfinished migration (nbins entries). */
void mg__migrations_busy(struct mg_dataflow *df, uint8_t *out);
void mg__migrations_free(struct mg_dataflow *df);
void mg__migrations_close(struct mg_dataflow *df);
/* The control frontier to advance to: lead epochs ahead of the clock, or
 * of the sources when all are behind it. */
uint64_t mg__ctl_target(const struct mg_dataflow *df);
/* How far every open source is behind the clock, in ns: 0 if one keeps up
 * (or none is open) -- the whole dataflow lags by at least this. */
uint64_t mg__sources_lag_ns(const struct mg_dataflow *df);

#endif /* MG_ENGINE_PVT_H */
