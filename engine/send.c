/*
 * send.c - streams on a worker: emitting a record to a stream's subscribers
 * (flat-maps, sends, sinks, run inline), the SEND half of an exchange,
 * distribute, stateful input or output queue (batches per destination,
 * routing by bin under the routing table, overflow batches under
 * backpressure -- see BACKPRESSURE in engine_pvt.h), the marks that carry
 * frontiers to the next worker, and the frontier of any stream.
 * Everything here runs on the worker: no lock, no malloc; overflow batches
 * come from the lock-free page pool.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "engine/engine_pvt.h"

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

static void send_record(struct node *n, struct worker *wk, uint64_t time,
			const void *rec);

/* Hand @rec to every subscriber of @e's stream.  Out of line, so that
 * mg_emit() on a stream nobody reads (an operator's unused output) costs a
 * test, not this function's frame. */
static __attribute__((noinline)) void
emit_subs(const struct mg_emitter *e, const void *rec)
{
	const struct stream *s = e->s;

	for (unsigned i = 0; i < s->nsubs; i++) {
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

void
mg_emit(struct mg_emitter *e, const void *rec)
{
	if (e->s->nsubs)
		emit_subs(e, rec);
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

/* The pool class of an overflow batch shaped like @like. */
static unsigned
batch_shift(const struct mg_batch *like)
{
	size_t bytes = sizeof(*like) + (size_t)like->capacity * like->stride;
	unsigned s = mg_log2_ceil(bytes);

	return s < MG_CHUNK_MIN_SHIFT ? MG_CHUNK_MIN_SHIFT : s;
}

/* An empty overflow batch shaped like the batches of channels of @cc. */
static struct mg_batch
overflow_shape(const struct mg_channel_config *cc)
{
	return (struct mg_batch){
		.capacity = cc->batch_records,
		.record_size = cc->record_size,
		.stride = mg_batch_stride(cc->record_size),
	};
}

size_t
mg__overflow_bytes(const struct mg_channel_config *cc)
{
	struct mg_batch shape = overflow_shape(cc);

	return (size_t)1 << batch_shift(&shape);
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
	struct mg_batch *b = s->spare,
			shape = overflow_shape(mg_channel_cfg(ch));
	void *mem;
	int err;

	if (b) {
		s->spare = b->next;
	} else {
		err = mg_chunk_alloc(wk->df->pools, wk->node,
				     batch_shift(&shape), &mem);
		if (err) {
			mg__set_error(wk->df, err,
				      "page pool: an overflow batch");
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
enqueue(const struct node *n, struct send_inst *s, unsigned d,
	struct mg_batch *b)
{
	struct pending *q = &s->q[d];

	b->next = NULL;
	if (q->tail) {
		q->tail->next = b;
		q->sorted &= b->time >= q->tail->time;
		q->floor = b->time < q->floor ? b->time : q->floor;
	} else {
		q->head = b;
		q->sorted = true;
		q->floor = b->time;
	}
	q->tail = b;
	s->queued++;
	s->congested = s->queued > n->u.send.slack;
}

/* Send the filled batch for @d, or queue it behind earlier ones. */
static void
push_or_queue(const struct node *n, struct send_inst *s, struct mg_channel *ch,
	      unsigned d)
{
	struct mg_batch *b = s->cur[d];

	MG_ASSERT(b && b->count);
	s->cur[d] = NULL;
	if (!s->q[d].head && b->home && mg_channel_push_spsc(ch, b)) {
		s->sent = true;
		return;
	}
	enqueue(n, s, d, b);
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
	 * holds every move at or before `time` (see mg_router.h). */
	if (n->u.send.output)
		d = 0;
	else if (n->u.send.by_bin)
		d = mg_routing_owner(mg_router_read(wk->df->router),
				     mg_bin_of(h, wk->df->nbins_log2), time);
	else
		d = (unsigned)(h % W);
	b = s->cur[d];
	if (MG_UNLIKELY(!b || b->time != time || mg_batch_full(b))) {
		ch = send_channel(n, wk->w, d);
		if (b && b->count)
			push_or_queue(n, s, ch, d);
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
	mg_copy_small(mg_batch_record(b, b->count++), rec,
		      n->in[0]->record_size);
	s->round_records++;
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
		else if (q->sorted)
			q->floor = q->head->time;
		s->queued--;
		s->sent = true;
		if (c != b)
			overflow_put(s, b);
	}
	return true;
}

/* The earliest time @d may still owe, in O(1) however long its queue (an
 * output's may be long): queued batches (their floor, exact while they were
 * queued in time order, else the earliest since the queue was last empty)
 * and the one in hand. */
static uint64_t
owed(const struct send_inst *s, unsigned d)
{
	uint64_t t = s->q[d].head ? s->q[d].floor : MG_TIME_MAX;

	if (s->cur[d] && s->cur[d]->count && s->cur[d]->time < t)
		t = s->cur[d]->time;
	return t;
}

/*
 * End of round: every batch in hand goes out (or is queued), marks follow --
 * but a batch bound for a stateful operator's log waits, filling, while its
 * time is still open on this worker (the stream's frontier @f has not
 * passed it): the operator runs a time only once it is complete, and the
 * batch goes out in the round whose frontier passes its time, before the
 * mark that does, so waiting costs it nothing.  Sent each round instead,
 * a batch carried the few records one round makes: at 1 M records/s a
 * worker, 2 workers spent 2.1x the step time per record they spend with
 * full batches, and their rings filled with such batches and throttled the
 * sources (engine_pvt.h, BACKPRESSURE) in ~45% of the rounds at 5 M/s a
 * worker.  A round in which this SEND took a batch's worth of records or
 * more (a source behind the clock, making a burst) still sends what it
 * has: there the batches are full anyway, and one that waits let more
 * records pile up in flight (one worker past its capacity processed ~5%
 * fewer records/s).  The round's own work does not count: it had, and
 * a round that received a full batch sent a batch of a record or two
 * after every full one (a test, t-engine-input's trickle: 129 slots for
 * 4096 records in batches of 64, now 66).  Exchanges and outputs send
 * each round: their receivers run records as they come.
 */
bool
mg__send_flush(struct node *n, struct worker *wk)
{
	struct send_inst *s = &n->inst.send[wk->w];
	unsigned d;
	uint64_t f = mg__stream_frontier(n->in[0], wk->w);
	bool clear = true, logs = n->feeds && n->feeds->kind == STATEFUL;

	for (d = 0; d < n->u.send.ndest; d++) {
		struct mg_channel *ch = send_channel(n, wk->w, d);
		uint64_t m;

		if (s->q[d].head)
			drain_queue(s, ch, d);
		if (s->cur[d] && s->cur[d]->count &&
		    (!logs || s->cur[d]->time < f ||
		     s->round_records >= s->cur[d]->capacity))
			push_or_queue(n, s, ch, d);
		m = owed(s, d);
		m = m < f ? m : f;
		if (m > mg_channel_mark_wanted(ch)) {
			mg_channel_mark_spsc(ch, m);
			s->sent = true;
		}
		/* An output whose stream has ended does not hold the worker:
		 * its consumer may read only after the join, and what it has
		 * not taken is handed over at the end (output.c, ENDING). */
		clear &= (mg_channel_flush_spsc(ch) && !s->q[d].head) ||
			 (n->u.send.output && f == MG_TIME_MAX);
	}
	s->congested = s->queued > n->u.send.slack;
	s->flushed = f;
	s->round_records = 0;
	if (s->sent && n->u.send.output) /* its consumer may be asleep */
		mg__output_notify(n->u.send.output);
	s->sent = false;
	return clear;
}
