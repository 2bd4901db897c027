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
 *   RECV      drains an exchange/distribute mesh into its stream;
 *   STATEFUL  drains one or two distribute meshes into per-time logs and
 *             runs the user function per (bin, time) once the time is due.
 *
 * The other kinds are *pipelined* subscribers of a stream, run inline when a
 * record is emitted on it, on the same worker:
 *
 *   FLAT_MAP  calls the user function, which emits on the node's stream;
 *   SEND      writes the record into the batch for its destination worker
 *             (the sending half of an exchange, distribute or stateful input);
 *   SINK      calls the user function.
 *
 * FRONTIERS
 *
 * Every stream has, per worker, a frontier: no record earlier than it will
 * be emitted on it by that worker.  SOURCE: the epoch of its next scheduled
 * record.  FLAT_MAP: its input's.  RECV: its mesh port's.  STATEFUL: the
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
 * with anything queued is *congested*; a scheduled node whose output reaches
 * a congested SEND (through flat-maps) does no new work that round, so only
 * one round's output can ever be queued per node.  Sources therefore throttle
 * and keep their schedule (overload shows as latency); every other node keeps
 * draining as soon as its output drains, which, the graph being a DAG,
 * always happens: nothing deadlocks for any ring capacity >= 2.
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
#include "migration/mg_migration.h"

#define MAX_SUBS     8
#define LAT_RING     (1u << 16) /* epochs awaiting completion, per worker */
#define WIN_RING     64		/* latency windows in flight, per worker */
#define SOURCE_BURST 4096	/* records a source makes per round at most */
#define RECV_BURST   32		/* batches a receiver takes per call */

enum node_kind { SOURCE, FLAT_MAP, RECV, STATEFUL, SEND, SINK };

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

/* One epoch of a worker's source records awaiting completion. */
struct lat_epoch {
	uint64_t epoch, count, first_ns, last_ns;
};

struct source_inst {
	uint64_t k;		     /* next local record: seq = w + k * W */
	uint64_t frontier;	     /* never above the control frontier */
	bool closed;		     /* every record generated */
	uint64_t lat_head, lat_tail; /* ring of struct lat_epoch */
	struct lat_epoch *lat;
	unsigned char *rec; /* scratch record */
} MG_CACHE_ALIGNED;

struct pending {
	struct mg_batch *head, *tail;
};

struct send_inst {
	struct mg_batch **cur;	/* [W] batch being filled per destination */
	struct pending *q;	/* [W] full batches not yet pushed */
	struct mg_batch *spare; /* free overflow batches */
	unsigned queued;	/* batches in all q */
	bool congested;
} MG_CACHE_ALIGNED;

struct bin;

/* The worker-side index of bins with timers: a min-heap on (time, bin). */
struct theap_ent {
	uint64_t time;
	uint64_t bin;
};

struct sort_pair {
	uint64_t key; /* (time - tmin) << bins_log2 | bin */
	uint64_t ref; /* input << 63 | entry offset in its log */
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
	struct bin *native; /* native mode: this worker's one state */
	/* migration (see the handoff essay in stateful.c) */
	uint64_t *held;	    /* bitmap: bins whose state this worker has */
	uint64_t *awaiting; /* bitmap: bins with an incoming move pending */
	struct move_list in, out;
	uint64_t last_move_id; /* moves up to it are in `in`/`out` or done */
	bool acquired;	       /* something arrived: reprocess deferred */
	/* copy mode: serialized bins per peer, out and in */
	struct vbuf *ser;   /* [W] bytes to send to each worker */
	size_t *sent;	    /* [W] bytes of ser[w] already sent */
	struct vbuf *reasm; /* [W] bytes received from each worker */
	size_t *parsed;	    /* [W] bytes of reasm[w] already rebuilt */
	struct mg_batch **state_held; /* [W] a filled batch the ring refused */
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
		struct {
			mg_hash_fn hash;
			void *ctx;
			bool by_bin; /* distribute: route by bin owner */
			struct mg_mesh *mesh;
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
			unsigned vshift; /* buffer reservations >> vshift */
		} st;
	} u;
	union {
		struct source_inst *source;
		struct send_inst *send;
		struct stateful_inst *st;
		void *any;
	} inst; /* [W] per-worker state */
};

/* What each worker publishes; read by the others and the reporter. */
struct worker_pub {
	_Atomic uint64_t
		probe_frontier;	     /* this worker's frontier at the probe */
	_Atomic uint64_t window;     /* latency window it is recording */
	_Atomic bool sources_closed; /* its sources generated everything */
	_Atomic bool done;
} MG_CACHE_ALIGNED;

struct worker {
	struct mg_dataflow *df;
	unsigned w;
	int cpu;
	unsigned node; /* NUMA node index */
	pthread_t thread;
	uint64_t round_work;   /* work done this round (records, batches) */
	uint64_t window;       /* current latency window */
	bool windows_lost;     /* the reporter fell WIN_RING windows behind */
	struct mg__hist whole; /* whole-run latency (this worker's records) */
	struct mg__hist win[WIN_RING];
} MG_CACHE_ALIGNED;

struct mg_dataflow {
	struct mg_dataflow_config cfg;
	struct mg_topology *topo;
	struct mg_pools *pools;
	struct mg_router *router;
	unsigned nbins_log2;
	unsigned nmigratable; /* stateful operators with bins */
	struct mg_rehomer *rehomer;
	struct mg_migration *migrations; /* submitted, newest first */
	uint8_t *busy; /* [nbins] bin of an unfinished migration */
	bool closing;  /* no more migrations (under the list lock) */
	struct node **nodes;
	unsigned nnodes, cap_nodes;
	struct stream *probe;
	struct worker *wk;	/* [W] */
	struct worker_pub *pub; /* [W] */
	unsigned *node_of;	/* [W] NUMA node index of each worker */
	uint64_t start_ns;
	uint64_t ctl_lead_epochs; /* control frontier lead over the clock */
	_Atomic unsigned ready;	  /* workers done prefilling */
	_Atomic bool go;	  /* start_ns is set: run (or stop on error) */
	bool started, joined;
	_Atomic int error; /* first error an operator reported */
	/* reporter */
	pthread_t reporter;
	mg_window_fn on_window;
	void *on_window_ctx;
	_Atomic bool stop_reporter;
	_Atomic uint64_t win_merged; /* windows below are merged, slots free */
	uint64_t rss_peak;
	uint64_t end_ns;
};

/* ---- worker.c ---------------------------------------------------------- */
void *mg__worker_main(void *arg);
uint64_t mg__stream_frontier(const struct stream *s, unsigned w);
bool mg__congested(const struct node *n, unsigned w);
void mg__set_error(struct mg_dataflow *df, int err);
void mg__overflow_free(struct mg_dataflow *df, struct mg_batch *b);

/* ---- stateful.c -------------------------------------------------------- */
int mg__stateful_init(struct node *n);
void mg__stateful_fini(struct node *n);
void mg__stateful_step(struct node *n, struct worker *wk);
int mg__stateful_prefill(struct node *n, struct worker *wk);
int mg__stateful_copy_init(struct node *n);
size_t mg__stateful_bytes(const struct node *n);

/* ---- report.c ---------------------------------------------------------- */
int mg__reporter_start(struct mg_dataflow *df);
uint64_t mg__ctl_target(const struct mg_dataflow *df);
void mg__migrations_tick(struct mg_dataflow *df);
void mg__migrations_free(struct mg_dataflow *df);
void mg__migrations_close(struct mg_dataflow *df);
void mg__reporter_stop(struct mg_dataflow *df);
void mg__latency_record(struct worker *wk, uint64_t now, uint64_t lo,
			uint64_t hi, uint64_t n);
void mg__latency_advance(struct worker *wk, uint64_t now);
uint64_t mg__rss_bytes(void);

#endif /* MG_ENGINE_PVT_H */
