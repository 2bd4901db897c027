/*
 * input.c - application inputs: producers push records into the workers.
 *
 * LAYOUT
 *
 * An input is an INPUT node plus a struct mg_input (the control-plane
 * handle).  Each producer owns one channel (queues/mg_channel.h) into the
 * worker it is bound to: batches of records of one time each, and progress
 * marks in the same ring.  So a producer's records and its promises stay in
 * order, and a promise can never overtake the records sent before it.
 *
 *   application thread                         worker w (INPUT step)
 *   mg_push ── cur batch ──► forward ring ──► pop: emit records, count
 *   mg_producer_advance ─── mark ──────────►      latency, return batch
 *   (sleeps on `sleeping`) ◄─ futex wake ───  after returning batches
 *
 * Who writes what:
 *   struct mg_producer
 *     own.*      the producer's thread only (batch being filled, the sealed
 *                batch the ring refused, the promise);
 *     wk.*       the worker it is bound to only (its place in the worker's
 *                list, a popped batch held back);
 *     state      OPENING -> ACTIVE by the worker (admission), ACTIVE ->
 *                RETIRED by the worker once it has popped the close mark;
 *     released   the producer's thread, as its last access in close;
 *     sleeping   both (the waiting protocol below);
 *     all_next   under the input's lock.
 *   struct input_inst (per worker, in the node)
 *     everything the worker; `own` read by the other workers; `join` pushed
 *     to by openers (CAS) and emptied by the worker (exchange).
 *
 * ADMISSION.  A producer opened before the start begins at time 0 in its
 * worker's list.  One opened during the run is pushed onto the worker's
 * `join` stack, and open waits until the worker admits it at its next round:
 * the worker starts the channel at its current frontier of the input (the
 * producer's floor, its first promise), links it, and publishes state ACTIVE
 * (release; the opener acquires it).  So a producer never starts below what
 * the worker has already promised downstream.
 *
 * THE FRONTIER of the input on worker w: its producers' minimum promise
 * (the last mark popped -- also while a batch is held back: a producer may
 * send a batch at t + 2 and then one at t, so the held batch's time bounds
 * nothing behind it), `own`.  While
 * the input may still get producers it also follows the input as a whole
 * (the minimum of every worker's `own`), so a worker without producers does
 * not race ahead of where a new producer will start; a worker with no
 * producer anywhere keeps its frontier.  It never exceeds the control
 * frontier (a migration may still be scheduled there) and never decreases.
 * Records ahead of the control frontier are held back until the worker has
 * raised it (mg_router_raise(): lock-free, fails only while a migration is
 * being submitted; then the worker retries next round).
 *
 * WAITING for room (the producer) and waking (the worker):
 *
 *   producer: sleeping = 1; fence F1 (seq_cst); if no room: futex_wait(1)
 *   worker:   pop + return batches; fence F2 (seq_cst); if sleeping:
 *             sleeping = 0; futex_wake
 *
 * Either the worker sees sleeping == 1, or the producer sees the room the
 * worker made: no lost wake-up.  The worker pays a fence per producer it
 * drained in a round, a system call only when the producer sleeps.
 * Halting the run wakes every producer (mg__inputs_wake, from the control
 * thread or the thread that stopped it); sleeps also time out every 10 ms.
 *
 * ENDING.  Close flushes, marks MG_TIME_MAX, and sets `released`; the worker
 * retires the producer once it popped that mark.  The control thread frees
 * the channel (its batches: the producer's memory) of producers both retired
 * and released (mg__inputs_reap), so a server whose connections come and go
 * does not grow by more than a tombstone (the struct, a few hundred bytes,
 * kept so that a push after close fails with -EPIPE instead of touching
 * freed memory; freed with the dataflow).  The input has ended once
 * mg_input_close() was called and no producer is open.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <ck_pr.h>

#include "engine/engine_pvt.h"

#define PUSH_SPINS	 2000	     /* room checks before sleeping */
#define PUSH_SPINS_SHORT 64	     /* ... after a preemption while spinning */
#define SPIN_CLOCK	 64	     /* room checks between clock reads */
#define SLEEP_MAX_NS	 10000000ull /* re-check halts at least this often */

enum { OPENING, ACTIVE, RETIRED };

struct mg_producer {
	struct mg_input *in;
	struct mg_channel *ch;
	unsigned worker;
	uint32_t record_size;
	struct {
		struct mg_batch *cur;	  /* being filled */
		struct mg_batch *pending; /* sealed; the ring refused it */
		uint64_t promise;	  /* nothing earlier will be pushed */
		uint64_t contended_ns; /* until then spin short (wait_room) */
		bool closed;
	} MG_CACHE_ALIGNED own;
	struct {
		struct mg_producer *next; /* the worker's list */
		struct mg_batch *held;	  /* popped, ahead of the control
					     frontier */
	} MG_CACHE_ALIGNED wk;
	_Atomic uint32_t state MG_CACHE_ALIGNED;
	_Atomic uint32_t sleeping;
	_Atomic bool released;
	_Atomic uint64_t pushed; /* records; written by the producer */
	struct mg_producer *join_next;
	struct mg_producer *all_next;
};

struct mg_input {
	struct mg_dataflow *df;
	struct node *n;
	uint32_t record_size;
	pthread_mutex_t lock;	  /* opens, close, `all`; never a worker */
	struct mg_producer *all;  /* with a channel */
	struct mg_producer *dead; /* tombstones: channel freed */
	bool live;		  /* the workers' lists exist: admit by join */
	unsigned next_worker;	  /* round-robin */
	_Atomic bool closed;
	_Atomic uint32_t open; /* producers opened, not closed */
};

/* ---- building and freeing (control plane) ------------------------------------ */

struct mg_stream *
mg_input(struct mg_dataflow *df, uint32_t record_size, struct mg_input **out)
{
	struct mg_input *in, **v;
	struct node *n;
	int err;

	if (!df)
		return NULL;
	if (record_size == 0 || record_size > MG_RECORD_MAX)
		return mg__build_fail(df, -EINVAL);
	in = calloc(1, sizeof(*in));
	v = realloc(df->inputs, sizeof(*v) * (df->ninputs + 1));
	if (v)
		df->inputs = v;
	if (!in || !v) {
		free(in);
		return mg__build_fail(df, -ENOMEM);
	}
	err = mg__add_node(df, INPUT, record_size, &n);
	if (err) {
		free(in);
		return mg__build_fail(df, err);
	}
	in->df = df;
	in->n = n;
	in->record_size = record_size;
	pthread_mutex_init(&in->lock, NULL);
	atomic_init(&in->closed, false);
	atomic_init(&in->open, 0);
	n->u.input = in;
	df->inputs[df->ninputs++] = in;
	if (out)
		*out = in;
	return (struct mg_stream *)n->out;
}

static void
producer_free(struct mg_producer *p)
{
	mg_channel_destroy(p->ch); /* its batches, wherever they are */
	free(p);
}

/* The workers' lists, and the producers opened before the start in them. */
int
mg__input_prepare(struct node *n)
{
	struct mg_input *in = n->u.input;
	struct mg_dataflow *df = n->df;
	unsigned w, W = df->cfg.workers;
	struct mg_producer *p;
	int err = 0;

	n->inst.input = mg_calloc_lines(W, sizeof(*n->inst.input));
	if (!n->inst.input)
		return -ENOMEM;
	for (w = 0; w < W; w++) {
		atomic_init(&n->inst.input[w].own, 0);
		atomic_init(&n->inst.input[w].join, NULL);
		if (!err)
			err = mg__lat_init(&n->inst.input[w].lat);
	}
	pthread_mutex_lock(&in->lock);
	for (p = in->all; p; p = p->all_next) {
		struct input_inst *ii = &n->inst.input[p->worker];

		p->wk.next = ii->active;
		ii->active = p;
		atomic_store_explicit(&p->state, ACTIVE, memory_order_relaxed);
	}
	in->live = true;
	pthread_mutex_unlock(&in->lock);
	return err;
}

void
mg__input_fini(struct node *n)
{
	struct mg_input *in = n->u.input;
	struct mg_producer *p;

	if (n->inst.input)
		for (unsigned w = 0; w < n->df->cfg.workers; w++)
			mg__lat_fini(&n->inst.input[w].lat);
	while ((p = in->all)) {
		in->all = p->all_next;
		producer_free(p);
	}
	while ((p = in->dead)) {
		in->dead = p->all_next;
		free(p);
	}
	pthread_mutex_destroy(&in->lock);
	free(in);
}

/* ---- opening and closing ------------------------------------------------------ */

int
mg_producer_open(struct mg_input *in, int worker, struct mg_producer **out)
{
	struct mg_dataflow *df;
	struct mg_channel_config cc;
	struct mg_producer *p;
	unsigned W;
	int err;

	if (!in || !out)
		return -EINVAL;
	df = in->df;
	W = df->cfg.workers;
	if (worker != MG_ANY_WORKER && (worker < 0 || (unsigned)worker >= W))
		return -EINVAL;
	p = mg_calloc_lines(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->in = in;
	p->record_size = in->record_size;
	atomic_init(&p->state, OPENING);
	atomic_init(&p->sleeping, 0);
	atomic_init(&p->released, false);
	atomic_init(&p->pushed, 0);
	pthread_mutex_lock(&in->lock);
	if (atomic_load_explicit(&in->closed, memory_order_relaxed) ||
	    mg__run_over(df)) {
		pthread_mutex_unlock(&in->lock);
		free(p);
		return -EPIPE;
	}
	p->worker = worker == MG_ANY_WORKER ? in->next_worker++ % W
					    : (unsigned)worker;
	cc = (struct mg_channel_config){
		.record_size = in->record_size,
		.batch_records = df->cfg.batch_records,
		.capacity = df->cfg.ring_capacity,
		.node = df->node_of[p->worker],
	};
	err = mg_channel_create(&p->ch, df->pools, &cc);
	if (err) {
		pthread_mutex_unlock(&in->lock);
		free(p);
		return err;
	}
	p->all_next = in->all;
	in->all = p;
	atomic_fetch_add_explicit(&in->open, 1, memory_order_relaxed);
	if (!in->live) {
		/* Before the start: mg__input_prepare() links it. */
		atomic_store_explicit(&p->state, ACTIVE, memory_order_relaxed);
	} else {
		_Atomic(struct mg_producer *) *join =
			&in->n->inst.input[p->worker].join;
		struct mg_producer *head =
			atomic_load_explicit(join, memory_order_relaxed);

		do
			p->join_next = head;
		/* ORDER(input.R1): pairs with input.A1 in admit(); the
		 * producer's fields are visible to the worker. */
		while (!atomic_compare_exchange_weak_explicit(
			join, &head, p, memory_order_release,
			memory_order_relaxed));
	}
	pthread_mutex_unlock(&in->lock);
	/* During the run: wait for the worker to admit it.
	 * ORDER(input.A2): pairs with input.R2 in admit(); the channel's
	 * start is visible before the first push. */
	while (atomic_load_explicit(&p->state, memory_order_acquire) ==
	       OPENING) {
		if (mg__run_over(df)) {
			/* Never admitted, or admitted by a worker that is
			 * leaving: either way nobody pushes through it; it is
			 * freed with the dataflow. */
			p->own.closed = true;
			atomic_fetch_sub_explicit(&in->open, 1,
						  memory_order_relaxed);
			return -EPIPE;
		}
		mg_futex_wait(&p->state, OPENING, SLEEP_MAX_NS);
	}
	p->own.promise = mg_channel_mark_wanted(p->ch);
	*out = p;
	return 0;
}

int
mg_input_close(struct mg_input *in)
{
	if (!in)
		return -EINVAL;
	pthread_mutex_lock(&in->lock);
	/* Release: the opens before it are visible to a worker that sees it
	 * (input_step reads it before it takes its join stack). */
	atomic_store_explicit(&in->closed, true, memory_order_release);
	pthread_mutex_unlock(&in->lock);
	return 0;
}

bool
mg__inputs_ended(struct mg_dataflow *df)
{
	for (unsigned i = 0; i < df->ninputs; i++) {
		struct mg_input *in = df->inputs[i];

		if (!atomic_load_explicit(&in->closed, memory_order_acquire) ||
		    atomic_load_explicit(&in->open, memory_order_acquire))
			return false;
	}
	return true;
}

void
mg__inputs_wake(struct mg_dataflow *df)
{
	for (unsigned i = 0; i < df->ninputs; i++) {
		struct mg_input *in = df->inputs[i];
		struct mg_producer *p;

		pthread_mutex_lock(&in->lock);
		for (p = in->all; p; p = p->all_next) {
			if (atomic_load_explicit(
				    &p->state, memory_order_relaxed) == OPENING)
				mg_futex_wake(&p->state, 1);
			atomic_store_explicit(&p->sleeping, 0,
					      memory_order_relaxed);
			mg_futex_wake(&p->sleeping, 1);
		}
		pthread_mutex_unlock(&in->lock);
	}
}

void
mg__inputs_reap(struct mg_dataflow *df)
{
	for (unsigned i = 0; i < df->ninputs; i++) {
		struct mg_input *in = df->inputs[i];
		struct mg_producer **pp, *p;

		pthread_mutex_lock(&in->lock);
		for (pp = &in->all; (p = *pp);) {
			/* ORDER(input.A3): pairs with input.R3 (the worker is
			 * done with it) and input.R4 (so is its thread). */
			if (atomic_load_explicit(&p->state,
						 memory_order_acquire) !=
				    RETIRED ||
			    !atomic_load_explicit(&p->released,
						  memory_order_acquire)) {
				pp = &p->all_next;
				continue;
			}
			*pp = p->all_next;
			mg_channel_destroy(p->ch);
			p->ch = NULL;
			p->all_next = in->dead;
			in->dead = p;
		}
		pthread_mutex_unlock(&in->lock);
	}
}

uint64_t
mg__inputs_pushed(const struct mg_dataflow *df)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < df->ninputs; i++) {
		struct mg_input *in = df->inputs[i];
		struct mg_producer *p;

		pthread_mutex_lock(&in->lock);
		for (p = in->all; p; p = p->all_next)
			sum += atomic_load_explicit(&p->pushed,
						    memory_order_relaxed);
		for (p = in->dead; p; p = p->all_next)
			sum += atomic_load_explicit(&p->pushed,
						    memory_order_relaxed);
		pthread_mutex_unlock(&in->lock);
	}
	return sum;
}

/* ---- pushing (the producer's thread) ----------------------------------------- */

static bool
halted(const struct mg_producer *p)
{
	/* Relaxed: a poll; the push that races a stop is dropped with the
	 * rest of the run, which is what stopping means. */
	return atomic_load_explicit(&p->in->df->halt, memory_order_relaxed);
}

/*
 * Ask for the promise's mark once nothing earlier is left to send (I2 of
 * mg_channel.h); the channel sends it ahead of the next batch (I4).  Asked
 * only after a settle had sealed everything, a producer pushing at
 * MG_TIME_NOW into a ring of one slot never marked anything: each new time
 * sealed the batch of the last one, which found the slot taken by the batch
 * before, and the frontier stayed put until the producer closed.
 */
static void
want_mark(struct mg_producer *p)
{
	if (p->own.promise > mg_channel_mark_wanted(p->ch) && !p->own.pending &&
	    (!p->own.cur || p->own.cur->time >= p->own.promise))
		(void)mg_channel_mark_spsc(p->ch, p->own.promise);
}

/* Hand the sealed batch the ring refused to it.  False if still full. */
static bool
send_pending(struct mg_producer *p)
{
	if (p->own.pending && !mg_channel_push_spsc(p->ch, p->own.pending))
		return false;
	p->own.pending = NULL;
	want_mark(p);
	return true;
}

/* Seal the current batch: to the ring, or into the pending slot.  False if
 * the pending slot is taken and the ring still full. */
static bool
seal(struct mg_producer *p)
{
	struct mg_batch *b = p->own.cur;

	if (!b)
		return true;
	if (!send_pending(p))
		return false;
	b->stamp[1] = mg_now_ns();
	/* Relaxed: a counter for the run's totals, one writer. */
	atomic_store_explicit(
		&p->pushed,
		atomic_load_explicit(&p->pushed, memory_order_relaxed) +
			b->count,
		memory_order_relaxed);
	p->own.cur = NULL;
	if (mg_channel_push_spsc(p->ch, b))
		want_mark(p);
	else
		p->own.pending = b;
	return true;
}

/*
 * Move out what must go before the promise can be marked -- the pending
 * batch, the current one if it is earlier than the promise (or @all), then
 * the mark.  True when all of it is in the ring.
 */
static bool
settle_once(struct mg_producer *p, bool all)
{
	if (!send_pending(p))
		return false;
	if (p->own.cur && (all || p->own.cur->time < p->own.promise)) {
		if (!seal(p) || p->own.pending)
			return false;
	}
	want_mark(p);
	return mg_channel_flush_spsc(p->ch);
}

/* Whether the producer could go on now (a hint): a batch the ring refused
 * needs a slot; else a free batch will do.  With only a free batch back, a
 * producer holding a refused batch spun here instead of sleeping -- and
 * mg_push_wait() never reached its timeout. */
static bool
room(const struct mg_producer *p)
{
	return p->own.pending ? mg_channel_slot_free_spsc(p->ch)
			      : mg_channel_room_spsc(p->ch);
}

/*
 * Wait for the worker to make room, until @deadline (mg_now_ns() time,
 * UINT64_MAX: none): kick it (it may nap while the ring is full), spin a
 * little, then sleep.  A spin the kernel preempted means the CPU is shared,
 * maybe with the very worker that would make room: then spin short for
 * MG__CONTENDED_NS, as a worker does (spin_limit() in worker.c).  2-slot rings,
 * 1-record batches, two workers and the producer on two CPUs (`pushbench
 * --workers 2 --ring 2 --batch 1 --yield`): mg_push_wait 78-94 -> 44-67 us
 * a record; on one CPU 79-82 -> 30-39; default rings unchanged.
 * Return: 0 (look again); -ETIMEDOUT; -EPIPE.
 */
static int
wait_room(struct mg_producer *p, uint64_t deadline)
{
	uint64_t now = mg_now_ns(), last = now;
	unsigned spins =
		now < p->own.contended_ns ? PUSH_SPINS_SHORT : PUSH_SPINS;

	mg__worker_kick(p->in->df, p->worker);
	for (unsigned i = 1; i <= spins; i++) {
		if (room(p))
			return 0;
		ck_pr_stall();
		if (i % SPIN_CLOCK)
			continue;
		now = mg_now_ns();
		if (now - last > MG__PREEMPTED_NS) {
			p->own.contended_ns = now + MG__CONTENDED_NS;
			break;
		}
		last = now;
	}
	for (;;) {
		atomic_store_explicit(&p->sleeping, 1, memory_order_relaxed);
		/* ORDER(input.F1): pairs with input.F2 in drain(); see the
		 * essay: either the worker sees `sleeping` or we see room. */
		atomic_thread_fence(memory_order_seq_cst);
		if (room(p))
			break;
		if (halted(p))
			return -EPIPE;
		now = mg_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		mg_futex_wait(&p->sleeping, 1,
			      deadline - now < SLEEP_MAX_NS ? deadline - now
							    : SLEEP_MAX_NS);
	}
	atomic_store_explicit(&p->sleeping, 0, memory_order_relaxed);
	return 0;
}

/* settle_once() until done, waiting for room.  -EPIPE once the dataflow
 * stopped: what the ring would take now is dropped with the rest of the
 * run, and a flush or close must not report it sent. */
static int
settle(struct mg_producer *p, bool all)
{
	int err;

	if (halted(p))
		return -EPIPE;
	while (!settle_once(p, all)) {
		if (halted(p))
			return -EPIPE;
		err = wait_room(p, UINT64_MAX);
		if (err)
			return err;
	}
	return 0;
}

/* Check a push of @n records of @size bytes at @time, arguments first
 * (a push refused for them changes nothing), then resolve MG_TIME_NOW,
 * which also advances the promise.  Return: 0 and *@t; -EPIPE; -EINVAL. */
static int
push_time(struct mg_producer *p, uint64_t time, const void *recs, size_t size,
	  uint32_t n, uint64_t *t)
{
	if ((!recs && n) || size != p->record_size || n > INT32_MAX)
		return -EINVAL;
	if (p->own.closed || halted(p))
		return -EPIPE;
	if (time == MG_TIME_NOW) {
		time = mg_dataflow_now(p->in->df);
		if (time < p->own.promise)
			time = p->own.promise;
		if (time > p->own.promise) {
			p->own.promise = time;
			(void)settle_once(p, false); /* the mark, if it fits */
		}
	}
	if (time >= MG_TIME_LIMIT || time < p->own.promise)
		return -EINVAL;
	*t = time;
	return 0;
}

int
mg_push_burst(struct mg_producer *p, uint64_t time, const void *recs,
	      size_t size, uint32_t n)
{
	const unsigned char *r = recs;
	uint32_t done = 0;
	uint64_t t;
	int err;

	if (!p)
		return -EPIPE;
	err = push_time(p, time, recs, size, n, &t);
	if (err)
		return err;
	/* What the ring refused before goes first, when it fits now: else a
	 * batch (and the mark behind it) would wait until a push needs a new
	 * batch, and with a ring of one slot that is always too late. */
	if (send_pending(p))
		(void)mg_channel_flush_spsc(p->ch);
	while (done < n) {
		struct mg_batch *b = p->own.cur;
		uint32_t k;

		if (!b || b->time != t || mg_batch_full(b)) {
			b = seal(p) ? mg_channel_batch_get_spsc(p->ch) : NULL;
			if (!b) {
				/* Full: every batch is in flight.  The worker
				 * may nap, idle, while the caller polls: wake
				 * it (see nap()). */
				mg__worker_kick(p->in->df, p->worker);
				break;
			}
			b->time = t;
			b->stamp[0] = mg_now_ns();
			p->own.cur = b;
		}
		k = b->capacity - b->count;
		k = k < n - done ? k : n - done;
		if (b->stride == size) {
			memcpy(mg_batch_record(b, b->count), r,
			       (size_t)k * size);
		} else {
			for (uint32_t i = 0; i < k; i++)
				memcpy(mg_batch_record(b, b->count + i),
				       r + (size_t)i * size, size);
		}
		b->count += k;
		r += (size_t)k * size;
		done += k;
	}
	return (int)done;
}

int
mg_push(struct mg_producer *p, uint64_t time, const void *rec, size_t size)
{
	struct mg_batch *b = p ? p->own.cur : NULL;
	int r;

	/* The common case: one more record for the batch being filled, at
	 * its time, which the promise has not passed (a push at MG_TIME_NOW
	 * may have raised it without sealing the batch yet), the producer
	 * open. */
	if (MG_LIKELY(b && b->time == time && b->count < b->capacity &&
		      time >= p->own.promise && size == p->record_size &&
		      !p->own.closed && !halted(p))) {
		memcpy(mg_batch_record(b, b->count), rec, size);
		b->count++;
		return 0;
	}
	r = mg_push_burst(p, time, rec, size, 1);
	return r == 1 ? 0 : r == 0 ? -EAGAIN : r;
}

int
mg_push_wait(struct mg_producer *p, uint64_t time, const void *recs,
	     size_t size, uint32_t n, uint64_t timeout_ns)
{
	uint64_t deadline = timeout_ns == MG_FOREVER ? UINT64_MAX
						     : mg_now_ns() + timeout_ns;
	uint32_t done = 0;
	int r;

	if (!p)
		return -EPIPE;
	/* MG_TIME_NOW is resolved once: all n records get one time. */
	r = push_time(p, time, recs, size, n, &time);
	if (r)
		return r;
	for (;;) {
		r = mg_push_burst(p, time,
				  (const unsigned char *)recs +
					  (size_t)done * size,
				  size, n - done);
		if (r < 0)
			return done ? (int)done : r;
		done += (uint32_t)r;
		if (done == n)
			return (int)n;
		r = wait_room(p, deadline);
		if (r)
			return done ? (int)done : r;
	}
}

int
mg_producer_flush(struct mg_producer *p)
{
	if (!p || p->own.closed)
		return -EPIPE;
	return settle(p, true);
}

int
mg_producer_advance(struct mg_producer *p, uint64_t time)
{
	if (!p || p->own.closed || halted(p))
		return -EPIPE;
	time = mg__resolve_time(p->in->df, time);
	if (time >= MG_TIME_LIMIT)
		return -EINVAL;
	if (time > p->own.promise)
		p->own.promise = time;
	return settle(p, true);
}

uint64_t
mg_producer_time(const struct mg_producer *p)
{
	return p ? p->own.promise : 0;
}

int
mg_producer_close(struct mg_producer *p)
{
	struct mg_input *in;
	int err;

	if (!p || p->own.closed)
		return -EPIPE;
	in = p->in;
	err = settle(p, true);
	p->own.closed = true;
	/* ORDER(input.R5): pairs with the acquire in mg__inputs_ended(). */
	atomic_fetch_sub_explicit(&in->open, 1, memory_order_release);
	if (!err) {
		p->own.promise = MG_TIME_MAX;
		err = settle(p, false);
	}
	/* ORDER(input.R4): pairs with input.A3 in mg__inputs_reap(); the last
	 * access to p by this thread. */
	atomic_store_explicit(&p->released, true, memory_order_release);
	return err;
}

/* ---- the INPUT step (a worker) --------------------------------------------------- */

/* Admit the producers opened since the last round, at our frontier. */
static void
admit(struct input_inst *ii)
{
	/* ORDER(input.A1): pairs with input.R1 in mg_producer_open(). */
	struct mg_producer *p =
		atomic_exchange_explicit(&ii->join, NULL, memory_order_acquire);

	while (p) {
		struct mg_producer *next = p->join_next;

		mg_channel_start(p->ch, ii->frontier);
		p->wk.next = ii->active;
		ii->active = p;
		/* ORDER(input.R2): pairs with input.A2 in mg_producer_open();
		 * the channel's start is visible to the producer. */
		atomic_store_explicit(&p->state, ACTIVE, memory_order_release);
		mg_futex_wake(&p->state, 1);
		p = next;
	}
}

/* Emit @b's records, count their latency, return the batch.  False if the
 * latency ring is full (the probe is far behind): then it is kept. */
static bool
take(struct node *n, struct worker *wk, struct input_inst *ii,
     struct mg_batch *b)
{
	struct mg_emitter e = {n->out, wk, b->time};
	uint64_t t0 = wk->df->start_ns;
	uint64_t first = b->stamp[0] > t0 ? b->stamp[0] - t0 : 0;
	uint64_t last = b->stamp[1] > t0 ? b->stamp[1] - t0 : 0;
	uint32_t j;

	if (b->count && !mg__lat_add(&ii->lat, b->time, b->count, first,
				     last > first ? last : first))
		return false;
	for (j = 0; j < b->count; j++)
		mg_emit(&e, mg_batch_record(b, j));
	wk->round_work += b->count + 1;
	mg_batch_put_spsc(b);
	return true;
}

/* Take what @p sent, up to RECV_BURST messages.  Return its frontier: the
 * last mark popped. */
static uint64_t
drain(struct node *n, struct worker *wk, struct input_inst *ii,
      struct mg_producer *p, uint64_t *ctl)
{
	struct mg_router *r = wk->df->router;
	unsigned popped = 0, k;

	for (k = 0; k < RECV_BURST; k++) {
		struct mg_batch *b = p->wk.held;
		uint64_t t;

		if (!b) {
			if (!mg_channel_pop_spsc(p->ch, &b, &t))
				break;
			popped++; /* a slot (and maybe a batch) is free */
		}
		if (!b) /* a mark: the channel's frontier moved */
			continue;
		p->wk.held = NULL;
		/* Route nothing the configuration is not final for. */
		if (b->time >= *ctl) {
			if (mg_router_raise(r, b->time + 1))
				*ctl = mg_router_frontier(r);
			if (b->time >= *ctl) {
				p->wk.held = b; /* a submission: next round */
				break;
			}
		}
		if (!take(n, wk, ii, b)) {
			p->wk.held = b;
			break;
		}
	}
	if (popped) {
		/* ORDER(input.F2): pairs with input.F1 in wait_room(). */
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&p->sleeping, memory_order_relaxed)) {
			atomic_store_explicit(&p->sleeping, 0,
					      memory_order_relaxed);
			mg_futex_wake(&p->sleeping, 1);
		}
	}
	/* Not the held batch's time: batches behind it in the ring may be
	 * earlier (a producer may push at t + 2, then at t), bounded only
	 * by the last mark, which the held one is at or after too. */
	return mg_channel_frontier(p->ch);
}

void
mg__input_step(struct node *n, struct worker *wk)
{
	struct mg_dataflow *df = wk->df;
	struct mg_input *in = n->u.input;
	struct input_inst *ii = &n->inst.input[wk->w];
	struct mg_producer **pp, *p;
	uint64_t own = MG_TIME_MAX, ctl, g, f, x;
	bool closed;
	unsigned w;

	if (mg__congested(n, wk->w))
		return;
	/* Closed first, then the joins: every open before the close is in
	 * the stack by then (the input's lock orders them). */
	closed = atomic_load_explicit(&in->closed, memory_order_acquire);
	admit(ii);
	ctl = mg_router_frontier(df->router);
	for (pp = &ii->active; (p = *pp);) {
		f = drain(n, wk, ii, p, &ctl);
		if (f == MG_TIME_MAX) {
			*pp = p->wk.next;
			/* ORDER(input.R3): pairs with input.A3 in
			 * mg__inputs_reap(); we are done with it. */
			atomic_store_explicit(&p->state, RETIRED,
					      memory_order_release);
			continue;
		}
		own = f < own ? f : own;
		pp = &p->wk.next;
	}
	/* Relaxed: the other workers only follow it (a hint for their
	 * frontier while producers may still join, not a promise). */
	atomic_store_explicit(&ii->own, own, memory_order_relaxed);
	if (closed) {
		f = own;
	} else {
		for (g = MG_TIME_MAX, w = 0; w < df->cfg.workers; w++) {
			x = atomic_load_explicit(&n->inst.input[w].own,
						 memory_order_relaxed);
			g = x < g ? x : g;
		}
		f = g == MG_TIME_MAX ? ii->frontier : (own < g ? own : g);
	}
	/* Promise nothing the control frontier has not passed: a migration
	 * may still be scheduled there.  Producers that promised more let it
	 * move on. */
	if (f > ctl && f != MG_TIME_MAX && mg_router_raise(df->router, f))
		ctl = mg_router_frontier(df->router);
	f = f < ctl ? f : ctl;
	if (f > ii->frontier)
		ii->frontier = f;
}
