/*
 * worker.c - a worker's cooperative loop: step every scheduled node, flush
 * every SEND (push queued batches, forward frontiers as marks), publish the
 * probes' frontiers, account latency and busy time, announce a quiescent
 * state.  Nothing in here allocates with malloc, blocks, logs or takes a
 * lock; the only memory it takes is overflow batches from the lock-free page
 * pool.  An idle worker spins briefly, then naps (offline for RCU), each nap
 * twice the last up to 1 ms, so an idle dataflow costs next to no CPU and a
 * busy one never naps long; one that shares its CPU with another worker (an
 * oversubscribed dataflow) naps much sooner, so the worker that has the
 * work gets the CPU.  (Not sched_yield():
 * on a loaded machine that hands the CPU to any other process for a whole
 * time slice, and measured runs of 0.1 s took 10 s.)
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <ck_pr.h>
#include <urcu/urcu-qsbr.h>

#include "engine/engine_pvt.h"

#define IDLE_SPINS	  2000	  /* idle rounds before napping */
#define IDLE_SPINS_SHARED 64	  /* ... on a CPU shared with another worker */
#define NAP_MIN_NS	  20000	  /* the first nap */
#define NAP_MAX_NS	  1000000 /* naps double up to this while idle */

/* ---- frontiers ------------------------------------------------------------- */

uint64_t
mg__stream_frontier(const struct stream *s, unsigned w)
{
	const struct node *n = s->from;

	switch (n->kind) {
	case SOURCE:
		return n->inst.source[w].frontier;
	case INPUT:
		return n->inst.input[w].frontier;
	case FLAT_MAP:
		return mg__stream_frontier(n->in[0], w);
	case RECV:
		return mg_mesh_frontier(n->u.recv.mesh, w);
	case STATEFUL:
		return n->inst.st[w].done_upto;
	default:
		MG_BUG("stream from node kind %d", (int)n->kind);
	}
}

bool
mg__congested(const struct node *n, unsigned w)
{
	unsigned i;

	for (i = 0; i < n->ncongest; i++)
		if (n->congest[i]->inst.send[w].congested)
			return true;
	return false;
}

/* ---- emitting ------------------------------------------------------------- */

void mg_emit(struct mg_emitter *e, const void *rec);
static void send_record(struct node *n, struct worker *wk, uint64_t time,
			const void *rec);

void
mg_emit(struct mg_emitter *e, const void *rec)
{
	const struct stream *s = e->s;
	unsigned i;

	for (i = 0; i < s->nsubs; i++) {
		struct node *sub = s->subs[i];

		switch (sub->kind) {
		case FLAT_MAP: {
			struct mg_emitter o = {sub->out, e->wk, e->time};

			sub->u.map.fn(sub->u.map.ctx, rec, &o);
			break;
		}
		case SEND:
			send_record(sub, e->wk, e->time, rec);
			break;
		case SINK:
			sub->u.sink.fn(sub->u.sink.ctx, e->wk->w, e->time, rec);
			break;
		default:
			MG_BUG("subscriber kind %d", (int)sub->kind);
		}
	}
}

uint64_t
mg_emitter_time(const struct mg_emitter *e)
{
	return e->time;
}

unsigned
mg_emitter_worker(const struct mg_emitter *e)
{
	return e->wk->w;
}

/* ---- SEND --------------------------------------------------------------------- */

/* The channel of destination @d: a worker of the mesh, or the consumer of an
 * output queue. */
static struct mg_channel *
send_channel(const struct node *n, unsigned w, unsigned d)
{
	return n->u.send.output ? mg__output_channel(n->u.send.output, w)
				: mg_mesh_channel(n->u.send.mesh, w, d);
}

static unsigned
batch_shift(const struct mg_batch *like)
{
	size_t bytes = sizeof(*like) + (size_t)like->capacity * like->stride;
	unsigned s = mg_log2_ceil(bytes);

	return s < MG_CHUNK_MIN_SHIFT ? MG_CHUNK_MIN_SHIFT : s;
}

void
mg__overflow_free(struct mg_dataflow *df, struct mg_batch *b)
{
	mg_chunk_free(df->pools, b, batch_shift(b));
}

/* An overflow batch shaped like @ch's batches (home == NULL), or NULL. */
static struct mg_batch *
overflow_get(struct send_inst *s, struct worker *wk, struct mg_channel *ch)
{
	const struct mg_channel_config *cc = &ch->ro.cfg;
	struct mg_batch *b = s->spare,
			shape = {
				.capacity = cc->batch_records,
				.record_size = cc->record_size,
				.stride = (cc->record_size + 7u) & ~7u,
			};
	void *mem;
	int err;

	if (b) {
		s->spare = b->next;
	} else {
		err = mg_chunk_alloc(wk->df->pools, wk->node,
				     batch_shift(&shape), &mem);
		if (err) {
			mg__set_error(wk->df, err);
			return NULL;
		}
		b = mem;
		*b = shape;
	}
	b->count = 0;
	b->next = NULL;
	return b;
}

static void
overflow_put(struct send_inst *s, struct mg_batch *b)
{
	b->next = s->spare;
	s->spare = b;
}

static void
enqueue(struct send_inst *s, unsigned d, struct mg_batch *b)
{
	struct pending *q = &s->q[d];

	b->next = NULL;
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
	s->queued++;
	s->congested = true;
}

/* Send the filled batch for @d, or queue it behind earlier ones. */
static void
push_or_queue(struct send_inst *s, struct mg_channel *ch, unsigned d)
{
	struct mg_batch *b = s->cur[d];

	MG_ASSERT(b && b->count);
	s->cur[d] = NULL;
	if (!s->q[d].head && b->home && mg_channel_push_spsc(ch, b)) {
		s->sent = true;
		return;
	}
	enqueue(s, d, b);
}

static void
send_record(struct node *n, struct worker *wk, uint64_t time, const void *rec)
{
	struct send_inst *s = &n->inst.send[wk->w];
	unsigned W = wk->df->cfg.workers, d;
	uint64_t h = n->u.send.hash ? n->u.send.hash(n->u.send.ctx, rec) : 0;
	struct mg_channel *ch;
	struct mg_batch *b;

	/* The table is read after the record was received or stamped, so it
	 * holds every move at or before `time` (see mg_migration.h). */
	if (n->u.send.output)
		d = 0;
	else if (n->u.send.by_bin)
		d = mg_routing_owner(mg_router_read(wk->df->router),
				     mg_bin_of(h, wk->df->nbins_log2), time);
	else
		d = (unsigned)(h % W);
	ch = send_channel(n, wk->w, d);
	b = s->cur[d];
	if (MG_UNLIKELY(!b || b->time != time || mg_batch_full(b))) {
		if (b && b->count)
			push_or_queue(s, ch, d);
		else if (b) /* unused: reuse it for this time */
			goto stamp;
		/* Channel batches only while nothing is queued: a channel
		 * batch queued behind an overflow batch could leave the
		 * overflow head no channel batch to be copied into. */
		b = s->q[d].head ? NULL : mg_channel_batch_get_spsc(ch);
		if (!b)
			b = overflow_get(s, wk, ch);
		if (!b)
			return; /* out of memory: the run stops with an error */
		s->cur[d] = b;
	stamp:
		b->time = time;
	}
	memcpy(mg_batch_record(b, b->count++), rec, n->in[0]->record_size);
	wk->round_work++;
}

/* Push queued batches of @d in order; overflow ones are copied into channel
 * batches first.  Return: true if @d's queue is empty afterwards. */
static bool
drain_queue(struct send_inst *s, struct mg_channel *ch, unsigned d)
{
	struct pending *q = &s->q[d];
	struct mg_batch *b, *c;

	while ((b = q->head)) {
		c = b;
		if (!b->home) {
			c = mg_channel_batch_get_spsc(ch);
			if (!c)
				return false;
			c->time = b->time;
			c->count = b->count;
			memcpy(c->data, b->data, (size_t)b->count * b->stride);
		}
		if (!mg_channel_push_spsc(ch, c)) {
			if (c != b) { /* keep the channel batch in b's place */
				c->next = b->next;
				if (q->tail == b)
					q->tail = c;
				q->head = c;
				overflow_put(s, b);
			}
			return false;
		}
		q->head = b->next;
		if (!q->head)
			q->tail = NULL;
		s->queued--;
		s->sent = true;
		if (c != b)
			overflow_put(s, b);
	}
	return true;
}

/* The earliest time @d still owes: queued batches and the one in hand. */
static uint64_t
owed(const struct send_inst *s, unsigned d)
{
	uint64_t t = MG_TIME_MAX;
	const struct mg_batch *b;

	for (b = s->q[d].head; b; b = b->next)
		t = b->time < t ? b->time : t;
	if (s->cur[d] && s->cur[d]->count && s->cur[d]->time < t)
		t = s->cur[d]->time;
	return t;
}

/* End of round: everything filled goes out (or is queued), marks follow. */
static bool
send_flush(struct node *n, struct worker *wk)
{
	struct send_inst *s = &n->inst.send[wk->w];
	unsigned d;
	uint64_t f = mg__stream_frontier(n->in[0], wk->w);
	bool clear = true;

	for (d = 0; d < n->u.send.ndest; d++) {
		struct mg_channel *ch = send_channel(n, wk->w, d);
		uint64_t m;

		if (s->q[d].head)
			drain_queue(s, ch, d);
		if (s->cur[d] && s->cur[d]->count)
			push_or_queue(s, ch, d);
		m = owed(s, d);
		m = m < f ? m : f;
		if (m > mg_channel_mark_wanted(ch)) {
			mg_channel_mark_spsc(ch, m);
			s->sent = true;
		}
		clear &= mg_channel_flush_spsc(ch) && !s->q[d].head;
	}
	s->congested = s->queued > 0;
	if (s->sent && n->u.send.output) /* its consumer may be asleep */
		mg__output_notify(n->u.send.output);
	s->sent = false;
	return clear;
}

/* ---- SOURCE ------------------------------------------------------------------ */

static void
source_step(struct node *n, struct worker *wk)
{
	struct mg_dataflow *df = wk->df;
	struct source_inst *s = &n->inst.source[wk->w];
	const struct mg_source_config *c = &n->u.src;
	unsigned W = df->cfg.workers, made = 0;
	uint64_t now = mg_now_ns() - df->start_ns, seq, at, epoch;
	uint64_t ctl = mg_router_frontier(df->router); /* before routing */
	struct mg_emitter e = {n->out, wk, 0};

	/* Even a closed source promises no more than the control frontier:
	 * a move may still be scheduled at any time at or past it, and no
	 * downstream frontier may pass a move its workers have not seen.  The
	 * control thread raises it to MAX once every source has closed and it
	 * has stopped accepting migrations. */
	if (s->closed) {
		s->frontier = ctl;
		return;
	}
	if (mg__congested(n, wk->w))
		return;
	for (;;) {
		seq = wk->w + s->k * W;
		at = mg_sched_ns(c->rate, seq);
		if (at >= c->duration_ns) {
			s->closed = true;
			s->frontier = ctl;
			return;
		}
		epoch = at / df->cfg.epoch_ns;
		/* Records wait for their time's configuration to be final. */
		if (at > now || made == SOURCE_BURST || epoch >= ctl)
			break;
		if (!mg__lat_add(&s->lat, epoch, 1, at, at))
			break; /* the probe is far behind: throttle */
		memset(s->rec, 0, n->out->record_size);
		c->gen(c->ctx, wk->w, seq, s->rec);
		e.time = epoch;
		mg_emit(&e, s->rec);
		s->k++;
		made++;
	}
	s->frontier = epoch < ctl ? epoch : ctl;
	wk->round_work += made;
}

/* ---- RECV ---------------------------------------------------------------------- */

static void
recv_step(struct node *n, struct worker *wk)
{
	struct mg_batch *b[RECV_BURST];
	struct mg_emitter e = {n->out, wk, 0};
	unsigned got, i, j;

	if (mg__congested(n, wk->w))
		return;
	got = mg_mesh_recv_burst_spsc(n->u.recv.mesh, wk->w, b, RECV_BURST);
	for (i = 0; i < got; i++) {
		e.time = b[i]->time;
		for (j = 0; j < b[i]->count; j++)
			mg_emit(&e, b[i]->data + (size_t)j * b[i]->stride);
		wk->round_work += b[i]->count + 1;
		mg_batch_put_spsc(b[i]);
	}
}

/* ---- the loop -------------------------------------------------------------------- */

/* Load statistics (stats.c): busy time -- a round that did work counts
 * from the previous round's start, one clock read per round -- and the
 * stateful operators' backlog and records.  Relaxed stores of counters the
 * control thread samples. */
static void
account_round(struct worker *wk, bool worked, uint64_t now)
{
	struct worker_pub *pub = &wk->df->pub[wk->w];
	uint64_t backlog = 0, records = 0;
	struct mg_dataflow *df = wk->df;

	if (!worked) {
		wk->round_ns = now;
		return;
	}
	if (wk->round_ns) {
		wk->busy_ns += now - wk->round_ns;
		atomic_store_explicit(&pub->busy_ns, wk->busy_ns,
				      memory_order_relaxed);
	}
	wk->round_ns = now;
	for (unsigned i = 0; i < df->nnodes; i++)
		if (df->nodes[i]->kind == STATEFUL) {
			backlog += df->nodes[i]->inst.st[wk->w].backlog;
			records += df->nodes[i]->inst.st[wk->w].records;
		}
	atomic_store_explicit(&pub->backlog, backlog, memory_order_relaxed);
	atomic_store_explicit(&pub->records, records, memory_order_relaxed);
}

static bool
round_once(struct worker *wk)
{
	struct mg_dataflow *df = wk->df;
	unsigned i;
	bool clear = true;
	uint64_t g, now;

	for (i = 0; i < df->nnodes; i++) {
		struct node *n = df->nodes[i];

		switch (n->kind) {
		case SOURCE:
			source_step(n, wk);
			break;
		case INPUT:
			mg__input_step(n, wk);
			break;
		case RECV:
			recv_step(n, wk);
			break;
		case STATEFUL:
			mg__stateful_step(n, wk);
			break;
		default:
			break;
		}
	}
	for (i = 0; i < df->nnodes; i++)
		if (df->nodes[i]->kind == SEND)
			clear &= send_flush(df->nodes[i], wk);

	now = mg_now_ns();
	/* counted before the frontiers that complete the work go out */
	if (!df->cfg.no_stats)
		account_round(wk, wk->round_work != 0, now);
	now -= df->start_ns;
	mg__probes_publish(df, wk);
	g = df->nprobes ? atomic_load_explicit(&df->probes[0]->completed,
					       memory_order_acquire)
			: MG_TIME_MAX;
	mg__latency_advance(wk, now);
	if (!atomic_load_explicit(&df->pub[wk->w].sources_closed,
				  memory_order_relaxed)) {
		bool closed = true;

		for (i = 0; i < df->nnodes; i++)
			if (df->nodes[i]->kind == SOURCE)
				closed &=
					df->nodes[i]->inst.source[wk->w].closed;
		/* Relaxed: the control thread only needs to see it eventually;
		 * the frontier it then raises carries the ordering. */
		if (closed)
			atomic_store_explicit(&df->pub[wk->w].sources_closed,
					      true, memory_order_relaxed);
	}
	for (i = 0; i < df->nnodes; i++) {
		struct node *n = df->nodes[i];

		if (n->kind == SOURCE)
			mg__lat_complete(&n->inst.source[wk->w].lat, wk, g,
					 now);
		else if (n->kind == INPUT)
			mg__lat_complete(&n->inst.input[wk->w].lat, wk, g, now);
	}
	if (g != MG_TIME_MAX || !clear)
		return false;
	for (i = 0; i < df->nnodes; i++) {
		struct node *n = df->nodes[i];

		if (n->out && n->kind != FLAT_MAP &&
		    mg__stream_frontier(n->out, wk->w) != MG_TIME_MAX)
			return false;
	}
	return true;
}

static void
nap(uint64_t ns)
{
	struct timespec ts = {0, (long)ns};

	urcu_qsbr_thread_offline();
	nanosleep(&ts, NULL);
	urcu_qsbr_thread_online();
}

void *
mg__worker_main(void *arg)
{
	struct worker *wk = arg;
	struct mg_dataflow *df = wk->df;
	uint64_t nap_ns = NAP_MIN_NS;
	unsigned idle = 0;
	int err;

	err = mg_pin_self(df->topo, wk->cpu);
	if (err)
		mg__set_error(df, err);
	prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0);
	urcu_qsbr_register_thread();
	for (unsigned i = 0; i < df->nnodes && !err; i++)
		if (df->nodes[i]->kind == STATEFUL)
			err = mg__stateful_prefill(df->nodes[i], wk);
	if (err)
		mg__set_error(df, err);
	/* The clock starts once every worker has built its state.
	 * ORDER(worker.R1): pairs with df.A2 in mg_dataflow_start(): the
	 * prefilled state (or the error) is written before the control
	 * thread starts the clock. */
	atomic_fetch_add_explicit(&df->ready, 1, memory_order_release);
	/* ORDER(worker.A1): pairs with df.R1 in mg_dataflow_start(); without
	 * it the worker could read start_ns before it is set. */
	while (!atomic_load_explicit(&df->go, memory_order_acquire))
		nap(NAP_MIN_NS);
	/* Relaxed: a flag polled once a round; whoever sets it also wakes
	 * the sleepers, and the join orders the rest. */
	while (!atomic_load_explicit(&df->halt, memory_order_relaxed)) {
		wk->round_work = 0;
		if (round_once(wk))
			break;
		urcu_qsbr_quiescent_state();
		if (wk->round_work) {
			idle = 0;
			nap_ns = NAP_MIN_NS;
		} else if (++idle >=
			   (wk->shares_cpu ? IDLE_SPINS_SHARED : IDLE_SPINS)) {
			nap(nap_ns);
			nap_ns = nap_ns * 2 < NAP_MAX_NS ? nap_ns * 2
							 : NAP_MAX_NS;
		} else {
			ck_pr_stall();
		}
	}
	/* Relaxed: read by nobody before the join, which synchronizes. */
	atomic_store_explicit(&df->pub[wk->w].done, true, memory_order_relaxed);
	urcu_qsbr_unregister_thread();
	return NULL;
}
