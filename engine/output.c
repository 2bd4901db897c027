/*
 * output.c - output queues: a stream's records, drained by one application
 * thread in time order, a whole time at a time.
 *
 * LAYOUT
 *
 * An output is a SEND node with one destination per worker: worker w writes
 * the stream's records into batches of one time each, as for an exchange,
 * and forwards the stream's frontier as progress marks, all through its own
 * channel ch[w] to the consumer.  So the consumer receives, per worker, the
 * records and *after them* the promise that no earlier time follows: once
 * the minimum of the W channels' marks passes t, every record at t has
 * arrived.  Backpressure is the SEND's, after a slack of output_buffer
 * bytes of overflow batches per worker (see BACKPRESSURE in engine_pvt.h):
 * a consumer that does not drain eventually stops the sources and the
 * producers (nothing is dropped).
 *
 * The consumer copies records out of the batches at once (returning the
 * batches to the workers, so holding incomplete times never holds a
 * worker's batches) into one buffer per pending time, kept sorted by time,
 * and hands out the earliest pending time once it is complete.
 *
 * Who writes what: ch[w] as any channel (producer worker w, consumer the
 * application thread); times/last/frontier the consumer only; `waiting`
 * the consumer, `seq` whoever wakes it.
 *
 * WAITING: the consumer sets waiting = 1, fence C1 (seq_cst), checks every
 * channel, and sleeps on `seq`; a worker that sent something fences (C2,
 * seq_cst) and, seeing waiting, bumps seq and wakes it.  No lost wake-up.
 *
 * ENDING.  A consumer may start reading after mg_dataflow_join(), so a worker
 * does not wait for it at the end: once the output's stream has ended on
 * worker w, w counts the output as flushed even with batches still queued
 * (or the last mark not yet in the ring), and after its last round sets
 * end[w].ended (release, mg__output_end()).  The consumer, seeing it
 * (acquire), drains the ring once more -- the worker pushed nothing after
 * -- then takes the worker's queue straight from its SEND, which no thread
 * touches any more, and counts w's frontier as MG_TIME_MAX.
 *
 * STOPPING.  A run that was stopped, or failed, leaves queues too, and a
 * probe may have reported their times complete.  Every SEND keeps in
 * `flushed` the stream's frontier at its last flush: each record before
 * it was emitted by then (a round that fails returns before its flush,
 * and what it emitted is of later times).  Once halt is set the consumer
 * waits until every worker thread has exited (mg__workers_exited()) --
 * only then can no host still run a parked
 * worker's round -- drains every ring, takes every queue and counts
 * worker w's frontier as its `flushed` (MG_TIME_MAX if it had ENDED):
 * the times before the least are delivered whole, then -EPIPE.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_pvt.h"

#define SLEEP_MAX_NS 10000000ull /* re-check halts at least this often */

struct out_time {
	uint64_t time;
	unsigned char *buf;
	size_t len, cap; /* bytes */
};

/* Worker w's end of the run, as the output sees it (see ENDING). */
struct out_end {
	_Atomic bool ended; /* set once (release) when it ran its last round */
	bool taken;	    /* the consumer's: it took what the worker left */
	uint64_t final;	    /* and then the worker's frontier (STOPPING) */
};

struct mg_output {
	struct mg_dataflow *df;
	struct node *node; /* its SEND */
	uint32_t record_size;
	unsigned nch;
	struct mg_channel **ch; /* [W]: worker w -> the consumer */
	struct mg_batch **held; /* [W]: popped, not copied (out of memory) */
	struct out_end *end;	/* [W] */
	/* the consumer's */
	struct out_time *times; /* pending, by time */
	unsigned ntimes, cap;
	unsigned char *last; /* the buffer handed out by the last call */
	uint64_t frontier;
	/* shared */
	_Atomic uint32_t seq MG_CACHE_ALIGNED;
	_Atomic uint32_t waiting;
};

/* Batches a worker may queue for an output with channels of @cc beyond
 * its ring: output_buffer bytes of overflow batches (1 byte: none). */
static unsigned
output_slack(const struct mg_dataflow *df, const struct mg_channel_config *cc)
{
	size_t n = df->cfg.output_buffer / mg__overflow_bytes(cc);

	return n < UINT_MAX ? (unsigned)n : UINT_MAX;
}

struct mg_output *
mg_output(struct mg_dataflow *df, struct mg_stream *in)
{
	struct stream *s = (struct stream *)in;
	struct mg_channel_config cc;
	struct mg_output *o, **v;
	struct node *n;
	unsigned w, W;
	int err = 0;

	if (!df)
		return NULL;
	if (!mg__stream_ok(df, in))
		return (struct mg_output *)mg__build_fail(df, -EINVAL);
	W = df->cfg.workers;
	o = calloc(1, sizeof(*o));
	v = realloc(df->outputs, sizeof(*v) * (df->noutputs + 1));
	if (v)
		df->outputs = v;
	if (o) {
		o->ch = calloc(W, sizeof(*o->ch));
		o->held = calloc(W, sizeof(*o->held));
		o->end = calloc(W, sizeof(*o->end));
	}
	if (!o || !v || !o->ch || !o->held || !o->end) {
		mg__output_free(o);
		return (struct mg_output *)mg__build_fail(df, -ENOMEM);
	}
	o->df = df;
	o->record_size = s->record_size;
	o->nch = W;
	for (w = 0; w < W; w++)
		atomic_init(&o->end[w].ended, false);
	atomic_init(&o->seq, 0);
	atomic_init(&o->waiting, 0);
	cc = (struct mg_channel_config){
		.record_size = s->record_size,
		.batch_records = df->cfg.batch_records,
		.capacity = df->cfg.ring_capacity,
	};
	for (w = 0; w < W && !err; w++) {
		cc.node = df->node_of[w];
		err = mg_channel_create(&o->ch[w], df->pools, &cc);
	}
	if (!err)
		err = mg__add_node(df, SEND, 0, &n);
	if (err) {
		mg__output_free(o);
		return (struct mg_output *)mg__build_fail(df, err);
	}
	o->node = n;
	n->u.send.output = o;
	n->u.send.ndest = 1;
	n->u.send.slack = output_slack(df, &cc);
	mg__subscribe(n, 0, s);
	df->outputs[df->noutputs++] = o;
	return o;
}

void
mg__output_free(struct mg_output *o)
{
	if (!o)
		return;
	for (unsigned w = 0; o->ch && w < o->nch; w++)
		mg_channel_destroy(o->ch[w]);
	for (unsigned i = 0; i < o->ntimes; i++)
		free(o->times[i].buf);
	free(o->times);
	free(o->last);
	free(o->ch);
	free(o->held);
	free(o->end);
	free(o);
}

struct mg_channel *
mg__output_channel(const struct mg_output *o, unsigned w)
{
	return o->ch[w];
}

void
mg__output_notify(struct mg_output *o)
{
	/* ORDER(out.C2): pairs with out.C1 in wait_data(). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&o->waiting, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&o->seq, 1, memory_order_relaxed);
		mg_futex_wake(&o->seq, 1);
	}
}

/* The pending time @t, created in order if new; NULL if out of memory. */
static struct out_time *
pending(struct mg_output *o, uint64_t t)
{
	unsigned lo = 0, hi = o->ntimes;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (o->times[mid].time < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < o->ntimes && o->times[lo].time == t)
		return &o->times[lo];
	if (o->ntimes == o->cap) {
		unsigned cap = o->cap ? 2 * o->cap : 8;
		struct out_time *v = realloc(o->times, sizeof(*v) * cap);

		if (!v)
			return NULL;
		o->times = v;
		o->cap = cap;
	}
	memmove(&o->times[lo + 1], &o->times[lo],
		sizeof(*o->times) * (o->ntimes - lo));
	o->ntimes++;
	o->times[lo] = (struct out_time){.time = t};
	return &o->times[lo];
}

/* Copy @b's records into its time's buffer. */
static int
keep(struct mg_output *o, const struct mg_batch *b)
{
	struct out_time *x = pending(o, b->time);
	size_t need, size = o->record_size;

	if (!x)
		return -ENOMEM;
	need = x->len + (size_t)b->count * size;
	if (need > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		unsigned char *buf;

		while (cap < need)
			cap *= 2;
		buf = realloc(x->buf, cap);
		if (!buf)
			return -ENOMEM;
		x->buf = buf;
		x->cap = cap;
	}
	for (uint32_t j = 0; j < b->count; j++)
		memcpy(x->buf + x->len + (size_t)j * size,
		       b->data + (size_t)j * b->stride, size);
	x->len = need;
	return 0;
}

/* Take everything worker @w sent.  Return: 0; -ENOMEM (the batch that did
 * not fit is held, and copied by a later call). */
static int
drain_channel(struct mg_output *o, unsigned w)
{
	struct mg_batch *b = o->held[w];
	uint64_t t;
	bool took = false;

	while (b || mg_channel_pop_spsc(o->ch[w], &b, &t)) {
		if (b && keep(o, b)) {
			o->held[w] = b;
			return -ENOMEM;
		}
		if (b) /* else a mark: the channel's frontier moved */
			mg_batch_put_spsc(b);
		o->held[w] = b = NULL;
		took = true;
	}
	/* room again: a worker blocked on a full ring may nap */
	if (took)
		mg__worker_kick(o->df, w);
	return 0;
}

/* Take what worker @w, which ran its last round, still queued for the
 * output (see ENDING).  Return: 0; -ENOMEM (the rest stays queued). */
static int
take_left(struct mg_output *o, unsigned w)
{
	struct pending *q = &o->node->inst.send[w].q[0];
	struct mg_batch *b;

	while ((b = q->head)) {
		if (keep(o, b))
			return -ENOMEM;
		q->head = b->next;
		if (!q->head)
			q->tail = NULL;
		o->node->inst.send[w].queued--;
		if (b->home)
			mg_batch_put_spsc(b);
		else
			mg__overflow_free(o->df, b);
	}
	return 0;
}

/* Whether worker @w has ended and left something the consumer has not
 * taken yet.  Consumer only. */
static bool
left_to_take(const struct mg_output *o, unsigned w)
{
	/* ORDER(out.A3): pairs with out.R3 in mg__output_end(): the
	 * worker's pushes and its queue are complete before we take them. */
	return !o->end[w].taken &&
	       atomic_load_explicit(&o->end[w].ended, memory_order_acquire);
}

/* Whether the run was halted (stopped, or failed) after it went.  Relaxed:
 * mg__workers_exited() orders what is read after it. */
static bool
halted(const struct mg_dataflow *df)
{
	return atomic_load_explicit(&df->go, memory_order_relaxed) &&
	       atomic_load_explicit(&df->halt, memory_order_relaxed);
}

/* Take everything the workers sent or left (with @stopped, the run was
 * halted and every worker thread has exited: all they queued).  Return: 0;
 * -ENOMEM (what did not fit is taken by a later call). */
static int
poll_channels(struct mg_output *o, bool stopped)
{
	uint64_t f = MG_TIME_MAX, t;
	int err;

	for (unsigned w = 0; w < o->nch; w++) {
		bool ended = left_to_take(o, w);

		err = drain_channel(o, w);
		if (!err && (ended || (stopped && !o->end[w].taken))) {
			/* the ring once more: the worker may have pushed
			 * after the pass above, and nothing after `ended` */
			err = drain_channel(o, w);
			if (!err)
				err = take_left(o, w);
			o->end[w].taken = !err;
			o->end[w].final = ended ? MG_TIME_MAX
						: o->node->inst.send[w].flushed;
		}
		if (err)
			return err;
		t = o->end[w].taken ? o->end[w].final
				    : mg_channel_frontier(o->ch[w]);
		f = t < f ? t : f;
	}
	o->frontier = f;
	return 0;
}

void
mg__output_end(struct mg_output *o, unsigned w)
{
	/* ORDER(out.R3): pairs with out.A3 in left_to_take(). */
	atomic_store_explicit(&o->end[w].ended, true, memory_order_release);
	mg__output_notify(o);
}

uint64_t
mg_output_frontier(const struct mg_output *o)
{
	return o ? o->frontier : 0;
}

/* Sleep until a worker sent something or @deadline. */
static void
wait_data(struct mg_output *o, uint64_t deadline)
{
	uint32_t seq = atomic_load_explicit(&o->seq, memory_order_relaxed);
	uint64_t now = mg_now_ns();
	bool empty = true;

	atomic_store_explicit(&o->waiting, 1, memory_order_relaxed);
	/* ORDER(out.C1): pairs with out.C2 in mg__output_notify(). */
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned w = 0; w < o->nch && empty; w++)
		empty = mg_channel_in_flight(o->ch[w]) == 0 &&
			!left_to_take(o, w);
	if (empty && now < deadline && !mg__run_over(o->df))
		mg_futex_wait(&o->seq, seq,
			      deadline - now < SLEEP_MAX_NS ? deadline - now
							    : SLEEP_MAX_NS);
	atomic_store_explicit(&o->waiting, 0, memory_order_relaxed);
}

int
mg_output_next(struct mg_output *o, struct mg_output_time *out,
	       uint64_t timeout_ns)
{
	uint64_t deadline = timeout_ns == MG_FOREVER ? UINT64_MAX
						     : mg_now_ns() + timeout_ns;
	bool over, halt, exited;
	int err;

	if (!o || !out)
		return -EINVAL;
	free(o->last);
	o->last = NULL;
	for (;;) {
		/* Whether the run was over before this pass: then what the pass
		 * finds is all there will ever be -- after a halt, once the
		 * workers have exited (STOPPING). */
		over = mg__run_over(o->df);
		halt = halted(o->df);
		exited = halt && mg__workers_exited(o->df);
		err = poll_channels(o, exited);
		if (err)
			return err;
		if (o->ntimes && o->times[0].time < o->frontier) {
			struct out_time x = o->times[0];

			memmove(&o->times[0], &o->times[1],
				sizeof(*o->times) * --o->ntimes);
			o->last = x.buf;
			*out = (struct mg_output_time){
				.time = x.time,
				.count = (uint32_t)(x.len / o->record_size),
				.record_size = o->record_size,
				.records = x.buf,
			};
			return 0;
		}
		if (o->frontier == MG_TIME_MAX)
			return -ENODATA;
		if (halt && !exited) {
			/* the workers are leaving: then take what they left */
			if (mg_now_ns() >= deadline)
				return -ETIMEDOUT;
			nanosleep(&(struct timespec){0, 1000000}, NULL);
			continue;
		}
		if (over)
			return -EPIPE;
		if (mg_now_ns() >= deadline)
			return -ETIMEDOUT;
		wait_data(o, deadline);
	}
}
