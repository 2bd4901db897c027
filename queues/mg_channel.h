/*
 * mg_channel.h - batched lock-free channels: one producer thread, one
 * consumer thread, records in batches of one time, progress marks in band.
 *
 * THE CHANNEL FORMAT
 *
 * A channel carries records of one fixed size from one producer thread to
 * one consumer thread.  Records travel in *batches*: a 64-byte header (the
 * batch's one timestamp, its record count, its home channel) followed by
 * `batch_records` records at a stride of `record_size` rounded up to 8 bytes.
 *
 *        producer                                   consumer
 *   batch_get ──(return ring: free batches)◄── batch_put
 *       │                                            ▲
 *       ▼                                            │
 *     push ──────(forward ring: slots)─────────────► pop
 *     mark ──────{batch=NULL, time=t}──────────────►  (frontier := t)
 *
 * Forward ring: a Concurrency Kit ck_ring of `capacity` 16-byte slots
 * {batch, time}, holding at most capacity - 1 of them (ck_ring keeps one slot
 * free to tell full from empty).  A slot with batch == NULL is a *progress
 * mark*: the producer promises that nothing with a time earlier than `time`
 * follows on this channel.  Marks are in-band, so a mark can never overtake
 * data sent before it, and a mark costs one slot, no batch.
 *
 * Return ring: a ck_ring of batch pointers, producer and consumer roles
 * swapped.  At creation it holds every one of the channel's capacity + 1
 * batches, so it *is* the producer's free list: batch_get dequeues from it,
 * the consumer's batch_put enqueues to it.  It has 2 * capacity slots, so it
 * can hold every batch at once and a put can never find it full (I1).
 *
 * Invariants (checked by MG_ASSERT where cheap):
 *   I1. Every batch of the channel is in exactly one place: the return
 *       ring, the producer's hands, the forward ring, or the consumer's hands.
 *   I2. Marks sent are non-decreasing, and every batch pushed after mark t
 *       has time >= t.
 *   I3. Only the producer calls batch_get/push/mark/flush; only the consumer
 *       calls pop/batch_put (the "_spsc" suffix).
 *   I4. A mark that did not fit goes ahead of the next batch pushed: which
 *       I2 allows, and without which a producer that keeps a ring of one
 *       slot (capacity 2) busy with batches never sends a mark -- the
 *       consumer's frontier stayed where it was until the stream ended.
 *
 * Who writes what:
 *   - the ck_ring indices: as ck_ring documents (p_tail by the enqueuer,
 *     c_head by the dequeuer, each on its own cache line);
 *   - `prod`: the producer only (own cache line);
 *   - `cons`: the consumer only (own cache line);
 *   - `cfg`: written once at creation, then read-only.
 *
 * Memory ordering.  Each direction is a release/acquire pair, made of
 * explicit C11 fences around ck_ring's calls (DPDK's ring does the same
 * around its index updates):
 *
 *   push   writes the batch, then fence release (ring.R1), then enqueues;
 *   pop    dequeues, then fence acquire (ring.A1), then reads the batch;
 *   put    reads the batch last, fence release (ring.R2), then enqueues;
 *   get    dequeues, then fence acquire (ring.A2), then refills the batch.
 *
 * ck_ring alone is not enough on weak memory.  Its SPSC enqueue writes the
 * slot, calls ck_pr_fence_store() and stores p_tail; its dequeue loads
 * p_tail, calls ck_pr_fence_load() and reads the slot.  By ck_pr's contract
 * (and in ck 0.7.1's ports) fence_store orders stores before later stores
 * only: `dmb ishst` on aarch64, `dmb st` on 32-bit ARM, `membar #StoreStore`
 * on SPARC RMO (lwsync on POWER, which is a full release).  So the
 * consumer's *reads* of a batch may be performed after the p_tail store
 * that hands it back, and the producer's refill can overwrite records
 * still being read: the put/get pair needs R2.  R1 is the same gap on the
 * forward ring (a producer's read of a batch it pushed could see the
 * consumer's later write, e.g. of `next`).  fence_load orders loads before
 * later loads by contract; on aarch64 it is `dmb ishld`, which also orders
 * later stores and so is an acquire, but not on SPARC RMO (`#LoadLoad`):
 * A1 and A2 make the acquire half explicit too.  On x86 (TSO) all four are
 * compiler barriers only: ck's fences are no-ops there and ringbench's
 * figure does not move.  Marks need no more than ck's own fences: a mark
 * publishes only its slot.
 *
 * ThreadSanitizer sees none of this: ck_ring's indices are inline assembly
 * and TSan does not model standalone fences.  So each of the four fences is
 * followed by MG_TSAN_RELEASE(ring) or MG_TSAN_ACQUIRE(ring) (the same ring:
 * R1/A1 on `fwd`, R2/A2 on `ret`), and ck_ring's own copies into and out of
 * its slots, which its indices order, are left unchecked (MG_TSAN_IGNORE_*,
 * in the mg__ring_* helpers below).  The forward ring thus carries no
 * consumer-to-producer edge for TSan: a batch comes back to the producer
 * only through R2/A2, as in the protocol.
 *
 * Not fixable from outside: inside ck's dequeue the slot read is followed
 * by ck_pr_fence_store() and the c_head store that frees the slot, so on
 * aarch64 the slot read may in principle be performed after the producer
 * saw c_head, wrapped around the whole ring and rewrote that slot (load
 * buffering: allowed by the architecture, the producer's side being
 * ordered only by its control dependency).  It needs
 * ck_pr_fence_load_store() in ck_ring (or a ring of our own).
 *
 * Backpressure: a full forward ring is a result (push returns false), not an
 * error.  The producer keeps the batch and tries again later; a batch_get
 * that finds no free batch returns NULL.  Nothing is ever dropped.
 *
 * Concurrency of the entry points (per channel):
 *
 *   | pair                                       | concurrently? |
 *   |--------------------------------------------|---------------|
 *   | producer ops (get/push/mark/flush)          | one thread    |
 *   | consumer ops (pop/put)                      | one thread    |
 *   | a producer op / a consumer op               | yes           |
 *   | anything / create, destroy                  | no            |
 */
#ifndef MG_CHANNEL_H
#define MG_CHANNEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <ck_ring.h>

#include "numa/mg_numa.h"

#define MG_BATCH_RECORDS_MAX	(1u << 20)
#define MG_CHANNEL_CAPACITY_MAX (1u << 15)

struct mg_channel;

/* A batch: one timestamp, up to `capacity` records.  64-byte header. */
struct mg_batch {
	uint64_t time;		 /* public: every record's timestamp */
	uint32_t count;		 /* public: records in use */
	uint32_t capacity;	 /* read-only: records that fit */
	uint32_t record_size;	 /* read-only: bytes per record */
	uint32_t stride;	 /* read-only: bytes between records */
	struct mg_channel *home; /* read-only: channel it belongs to */
	struct mg_batch *next;	 /* public: for the holder's own lists */
	uint64_t stamp[2];	 /* public: the producer's (application
				    inputs: first push and send, ns) */
	unsigned char pad_[MG_CACHE_LINE - 56];
	unsigned char data[]; /* public: records, 8-byte aligned */
};
_Static_assert(sizeof(struct mg_batch) == MG_CACHE_LINE, "batch header");

/* Bytes between records in a batch of @record_size-byte records. */
static inline uint32_t
mg_batch_stride(uint32_t record_size)
{
	return (record_size + 7u) & ~7u;
}

/*
 * The most records of @record_size bytes (1..MG_RECORD_MAX) one batch can
 * hold: its header and records, each padded to 8 bytes, fit one 2 MiB
 * chunk, and at most MG_BATCH_RECORDS_MAX.  A channel refuses a larger
 * batch_records.
 */
static inline uint32_t
mg_channel_batch_records_max(uint32_t record_size)
{
	uint32_t stride = mg_batch_stride(record_size);
	uint32_t n = (uint32_t)(((1ul << MG_CHUNK_MAX_SHIFT) -
				 sizeof(struct mg_batch)) /
				stride);

	return n < MG_BATCH_RECORDS_MAX ? n : MG_BATCH_RECORDS_MAX;
}

/* Record @i of @b (i < capacity). */
static inline void *
mg_batch_record(struct mg_batch *b, uint32_t i)
{
	return b->data + (size_t)i * b->stride;
}

static inline bool
mg_batch_full(const struct mg_batch *b)
{
	return b->count == b->capacity;
}

/* One forward-ring slot: a batch, or a mark when batch == NULL. */
struct mg_slot {
	struct mg_batch *batch;
	uint64_t time;
};
CK_RING_PROTOTYPE(mg_slot, mg_slot)

struct mg_channel_config {
	uint32_t record_size;	/* bytes per record, 1..MG_RECORD_MAX */
	uint32_t batch_records; /* records per batch, 1..
				   mg_channel_batch_records_max() */
	uint32_t capacity;	/* forward ring slots: power of two, >= 2 */
	unsigned node;		/* node index of the consumer: memory home */
};

/*
 * Channel layout.  Exposed only for the static inline fast paths below:
 * all fields are private.
 */
struct mg_channel {
	struct ck_ring fwd; /* producer enqueues, consumer dequeues */
	struct ck_ring ret; /* consumer enqueues, producer dequeues */
	struct {
		struct mg_slot *fwd_buf;
		struct ck_ring_buffer *ret_buf;
		struct mg_pools *pools;
		void **chunks; /* memory to give back at destroy */
		unsigned nchunks;
		unsigned chunk_shift;
		unsigned meta_shift;
		struct mg_channel_config cfg;
	} MG_CACHE_ALIGNED ro;
	struct {
		uint64_t mark_sent;   /* last mark in the forward ring */
		uint64_t mark_wanted; /* last mark asked for (>= mark_sent) */
	} MG_CACHE_ALIGNED prod;
	struct {
		uint64_t frontier; /* last mark popped */
	} MG_CACHE_ALIGNED cons;
};

/*
 * ck_ring's calls, with its slot copies hidden from ThreadSanitizer: they
 * are ordered by ck_ring's indices, which TSan cannot see (see "Memory
 * ordering" above).  Plain calls in any other build.
 */
static inline bool
mg__ring_enqueue_slot(struct mg_channel *ch, struct mg_slot *s)
{
	bool ok;

	MG_TSAN_IGNORE_BEGIN();
	ok = ck_ring_enqueue_spsc_mg_slot(&ch->fwd, ch->ro.fwd_buf, s);
	MG_TSAN_IGNORE_END();
	return ok;
}

static inline bool
mg__ring_dequeue_slot(struct mg_channel *ch, struct mg_slot *s)
{
	bool ok;

	MG_TSAN_IGNORE_BEGIN();
	ok = ck_ring_dequeue_spsc_mg_slot(&ch->fwd, ch->ro.fwd_buf, s);
	MG_TSAN_IGNORE_END();
	return ok;
}

static inline bool
mg__ring_enqueue_batch(struct mg_channel *ch, struct mg_batch *b)
{
	bool ok;

	MG_TSAN_IGNORE_BEGIN();
	ok = ck_ring_enqueue_spsc(&ch->ret, ch->ro.ret_buf, b);
	MG_TSAN_IGNORE_END();
	return ok;
}

static inline struct mg_batch *
mg__ring_dequeue_batch(struct mg_channel *ch)
{
	struct ck_ring_buffer e;
	bool ok;

	MG_TSAN_IGNORE_BEGIN();
	ok = ck_ring_dequeue_spsc(&ch->ret, ch->ro.ret_buf, &e.value);
	MG_TSAN_IGNORE_END();
	return ok ? e.value : NULL;
}

/*
 * Create a channel with capacity + 1 batches, all its memory (rings, batches)
 * from @pools on node cfg->node.
 * @pools: borrowed; must outlive the channel.  @cfg: borrowed.
 * Context: control plane; allocates.
 * Return: 0; -EINVAL if a config field is out of range or capacity is not a
 * power of two; -ENOMEM.  On failure nothing is allocated.
 */
int mg_channel_create(struct mg_channel **out, struct mg_pools *pools,
		      const struct mg_channel_config *cfg);

/* Free the channel and its batches (takes @ch).  NULL is ignored. */
void mg_channel_destroy(struct mg_channel *ch);

/* The configuration the channel was made with. */
static inline const struct mg_channel_config *
mg_channel_cfg(const struct mg_channel *ch)
{
	return &ch->ro.cfg;
}

/* Messages (batches + marks) the forward ring can hold: capacity - 1. */
static inline uint32_t
mg_channel_room(const struct mg_channel *ch)
{
	return ch->ro.cfg.capacity - 1;
}

/*
 * Take a free batch to fill; count is 0 and next NULL.
 * The caller is given the batch and must push it eventually (an empty
 * batch may be pushed; the consumer puts it back like any other).
 * Context: producer only; lock-free, never allocates.
 * Ordering: acquire (ring.A2) pairs with the consumer's batch_put, so the
 * consumer's reads of the batch are done before the producer refills it.
 * Return: the batch, or NULL when every batch is in flight (backpressure).
 */
static inline struct mg_batch *
mg_channel_batch_get_spsc(struct mg_channel *ch)
{
	struct mg_batch *b = mg__ring_dequeue_batch(ch);

	if (!b)
		return NULL;
	/*
	 * ORDER(ring.A2): pairs with ring.R2 in mg_batch_put_spsc(); without
	 * it our writes to the batch (below, and the caller's records) could
	 * be performed before the return ring's p_tail load, while the
	 * consumer is still reading the batch.
	 */
	atomic_thread_fence(memory_order_acquire);
	MG_TSAN_ACQUIRE(&ch->ret);
	b->count = 0;
	b->next = NULL;
	return b;
}

/*
 * Send any mark asked for but not yet sent.
 * Context: producer only; lock-free.
 * Return: true if nothing is pending afterwards; false if the ring was full.
 */
static inline bool
mg_channel_flush_spsc(struct mg_channel *ch)
{
	struct mg_slot s = {.batch = NULL, .time = ch->prod.mark_wanted};

	if (ch->prod.mark_sent == s.time)
		return true;
	if (!mg__ring_enqueue_slot(ch, &s))
		return false;
	ch->prod.mark_sent = s.time;
	return true;
}

/*
 * Send @b (its time and count set) to the consumer.
 * @b: on success the channel takes it; on failure the caller keeps it.
 * A mark still pending goes first (I4).
 * Context: producer only; lock-free, never blocks.
 * Ordering: release (ring.R1): every access to @b before the push happens
 * before the consumer's pop returns it.
 * Return: true if sent; false if the forward ring is full (the pending mark
 * may have gone).
 */
static inline bool
mg_channel_push_spsc(struct mg_channel *ch, struct mg_batch *b)
{
	struct mg_slot s = {.batch = b, .time = b->time};

	MG_ASSERT(b->home == ch);
	MG_ASSERT(b->time >= ch->prod.mark_wanted); /* I2 */
	if (!mg_channel_flush_spsc(ch))		    /* I4 */
		return false;
	/*
	 * ORDER(ring.R1): pairs with ring.A1 in mg_channel_pop_spsc();
	 * ck_pr_fence_store() in the enqueue orders only our stores before
	 * the p_tail store: without this fence our earlier reads of the batch
	 * could be performed after it and see the consumer's writes.
	 */
	atomic_thread_fence(memory_order_release);
	MG_TSAN_RELEASE(&ch->fwd);
	return mg__ring_enqueue_slot(ch, &s);
}

/*
 * Promise that nothing earlier than @t will follow, and try to send the mark.
 * A mark that does not fit stays pending: a later mark_spsc or flush_spsc
 * sends it (only the newest pending mark is kept -- marks coalesce).
 * Context: producer only; lock-free.  @t below an earlier mark is a bug.
 * Return: true if the mark is in the ring; false if it is pending.
 */
static inline bool
mg_channel_mark_spsc(struct mg_channel *ch, uint64_t t)
{
	MG_ASSERT(t >= ch->prod.mark_wanted); /* I2 */
	ch->prod.mark_wanted = t;
	return mg_channel_flush_spsc(ch);
}

/*
 * Start the channel at frontier @t, as if mark t had been sent and received
 * (both sides' mark fields): for a channel that joins a running dataflow
 * at a later time than 0.
 * Context: before either side uses the channel; whoever hands it over to
 * the two sides orders this before their first operation.
 */
static inline void
mg_channel_start(struct mg_channel *ch, uint64_t t)
{
	ch->prod.mark_sent = ch->prod.mark_wanted = t;
	ch->cons.frontier = t;
}

/*
 * Messages (batches and marks) in the forward ring.  A hint: either side
 * may change it at any moment; for a consumer deciding whether to sleep,
 * and for diagnostics (any thread).
 */
static inline uint32_t
mg_channel_in_flight(const struct mg_channel *ch)
{
	return ck_ring_size(&ch->fwd);
}

/*
 * Whether a push (of a batch or a mark) would find a free slot in the
 * forward ring now.  A hint (the consumer may change it at any moment), for
 * deciding whether to sleep.  Producer only.
 */
static inline bool
mg_channel_slot_free_spsc(const struct mg_channel *ch)
{
	return mg_channel_in_flight(ch) < mg_channel_room(ch);
}

/*
 * Whether a producer operation could make progress now: the forward ring has
 * a free slot, or a free batch is back (enough only for a producer that holds
 * no batch the ring refused).  A hint, as mg_channel_slot_free_spsc().
 */
static inline bool
mg_channel_room_spsc(const struct mg_channel *ch)
{
	return mg_channel_slot_free_spsc(ch) || ck_ring_size(&ch->ret) > 0;
}

/* The last mark the producer asked for (sent or pending).  Producer only. */
static inline uint64_t
mg_channel_mark_wanted(const struct mg_channel *ch)
{
	return ch->prod.mark_wanted;
}

/*
 * Receive one message.  A batch is given to the caller (return it with
 * batch_put); a mark updates the channel's frontier and is reported as
 * *@batch == NULL with *@time = the mark.
 * Context: consumer only; lock-free.
 * Ordering: acquire (ring.A1), pairs with the producer's push: the batch's
 * records are visible.
 * Return: true if a message was received; false if the channel is empty.
 */
static inline bool
mg_channel_pop_spsc(struct mg_channel *ch, struct mg_batch **batch,
		    uint64_t *time)
{
	struct mg_slot s;

	if (!mg__ring_dequeue_slot(ch, &s))
		return false;
	/*
	 * ORDER(ring.A1): pairs with ring.R1 in mg_channel_push_spsc();
	 * ck_pr_fence_load() promises only load-load order: without this
	 * fence our writes to the batch (its `next`, or after the caller's
	 * put) could be performed before the p_tail load that made it ours.
	 */
	atomic_thread_fence(memory_order_acquire);
	MG_TSAN_ACQUIRE(&ch->fwd);
	*batch = s.batch;
	*time = s.time;
	if (!s.batch) {
		MG_ASSERT(s.time >= ch->cons.frontier);
		ch->cons.frontier = s.time;
	}
	return true;
}

/* The last mark received (0 before any).  Consumer only. */
static inline uint64_t
mg_channel_frontier(const struct mg_channel *ch)
{
	return ch->cons.frontier;
}

/*
 * Give @b back to its producer once its records have been consumed.
 * @b: taken.  Context: consumer of b->home only; lock-free, wait-free.
 * Ordering: release (ring.R2), pairs with batch_get (see there).
 */
static inline void
mg_batch_put_spsc(struct mg_batch *b)
{
	struct mg_channel *ch = b->home;
	bool ok;

	/*
	 * ORDER(ring.R2): pairs with ring.A2 in mg_channel_batch_get_spsc();
	 * ck's enqueue has only a store-store fence before its p_tail store:
	 * without this one our reads of the batch's records could be
	 * performed after the producer has it back, and see its next records.
	 */
	atomic_thread_fence(memory_order_release);
	MG_TSAN_RELEASE(&ch->ret);
	ok = mg__ring_enqueue_batch(ch, b);

	if (MG_UNLIKELY(!ok)) /* sized to hold every batch: I1 is broken */
		MG_BUG("return ring of channel %p full", (void *)ch);
}

#endif /* MG_CHANNEL_H */
