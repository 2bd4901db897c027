/*
 * stateful.c - stateful operators: bins, per-time logs, timers.
 *
 * LAYOUT
 *
 * A bin is one block at the start of its own arena:
 *
 *   struct bin { arena | timers | user root state (state_size bytes) }
 *
 * so a bin is wholly inside pages it owns and changes owner by handing over
 * the one pointer in `bins[b]`.  A bin that never saw a record is NULL and
 * owns nothing.  bins[] is written only by the bin's owner.
 *
 * Per worker (struct stateful_inst, written only by that worker):
 *
 *   log[i][active[i]]  entries { time, bin, record } of input i, in arrival
 *                      order, not yet processed;
 *   theap              min-heap of (time, bin): for every bin of this worker
 *                      with timers, an entry at its earliest timer (plus
 *                      possibly stale duplicates, which find nothing due);
 *   pairs, tmp         sort keys of the entries being processed;
 *   gather[i], timers  one call's records, packed.
 *
 * PROCESSING
 *
 * Each round the worker drains its input ports into the logs (copying each
 * record once; batches go straight back to their producers, so holding data
 * never holds a producer's batches).  When the input frontier F has passed
 * done_upto, every entry with time < F is due: one pass splits the log into
 * due entries (their sort keys go to `pairs`) and the rest (copied to the
 * spare log, which becomes active).  A LSD radix sort on
 * key = (time - tmin) << bins_log2 | bin, skipping bytes all keys share,
 * groups them by (time, bin) in O(entries), touching no bin without work.
 * Times are visited in order, merging each time's runs with the bins whose
 * timers are due at it, and the user function runs once per (bin, time).
 *
 * HANDOFF (a move of bin b from worker A to worker B at time t)
 *
 *   0. Both learn of the move from the routing table: each round, after
 *      draining its ports, a worker reads the table and files every move
 *      with a new id that names it into `out` (it is A) or `in` (it is B).
 *      The table is read after the records were received, and records at t
 *      exist only once the control frontier passed t, which happens after
 *      the table holding the move was published -- so no worker can see a
 *      record at t >= the move's time before it knows of the move.
 *   1. Routing sends b's records before t to A and from t on to B.
 *   2. A processes no further than t while b is still here (so none of
 *      b's records or timers at t or later run on A, even when A's frontier
 *      jumps far past t in one step).  Once processed_upto >= t (every
 *      record of b before t applied, every timer of b before t fired) and
 *      A holds b, A
 *      clears its `held` bit and stores the move's id into token[b] with
 *      release: that single store hands over the bin (its pages, its
 *      timers, everything in its arena).
 *   3. B sets `awaiting` for b: its entries of b are deferred (kept in the
 *      log) while it does not hold b, and its output frontier stays at or
 *      below t, while every other
 *      bin goes on.  When B loads token[b] == id with acquire, it owns b:
 *      it sets `held`, indexes b's earliest timer, moves the arena's future
 *      allocations to its node (queueing the old pages for re-homing when
 *      enabled), reports the step done, and reprocesses the deferred entries.
 *
 * token[] orders each bin's whole life: A's last write to the bin happens
 * before its release store, which happens before B's acquire load, which
 * happens before B's first access.  Chains (A->B at t1, B->C at t2) work
 * because B releases only a bin it holds, and moves are taken in id order.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/engine_pvt.h"

#define LOG_RESERVE	(2ull << 30) /* per time bucket */
#define FAR_RESERVE	(8ull << 30)
#define COPY_RESERVE	(16ull << 30)
#define STATE_REC	1024u /* bytes per state-mesh record */
#define STATE_PAYLOAD	(STATE_REC - 8u)
#define STATE_BATCH	64u    /* records per state batch */
#define STATE_RING	128u   /* state batches per channel: 8 MiB in flight */
#define STEP_BUDGET	16384u /* work per step when timers are far behind */
#define SCRATCH_RESERVE (1ull << 30)
#define RECV_BURSTS	16
#define PREFETCH	32 /* sorted entries to look ahead, per stage */
#define VSHIFT_MAX	10 /* keeps SCRATCH_RESERVE >= 1 MiB */

struct bin {
	struct mg_arena arena;
	struct mg_timers timers;
	struct mg_rehome_req rehome; /* pages queued after a handoff */
	struct mg_range *ranges;     /* in the arena, for `rehome` */
	size_t nranges;
	unsigned char state[] __attribute__((aligned(16)));
};

struct call_ctx {
	struct mg_bin_call pub;
	struct bin *bin;
	struct stateful_inst *si;
	uint64_t bin_id;
};

/*
 * The *_RESERVE sizes are for a big machine.  An operator scales all of its
 * buffers down by one power of two, 2^vshift, so that on each worker they
 * reserve at most the physical memory (they could never hold more) and,
 * under RLIMIT_AS, that its W workers take at most a quarter of the address
 * space left.  A unary operator (keycount's) reserves 63 GiB per worker on
 * a big machine; 15.75 GiB with 23 GiB of memory.  A buffer that fills up
 * fails the run with -ENOMEM.
 */
static unsigned
vshift_for(const struct node *n)
{
	const struct mg_dataflow *df = n->df;
	size_t w = df->cfg.workers, room = mg_vm_room(), budget, full;
	bool native = n->u.st.cfg.native;
	unsigned s = 0;

	/* What mg__stateful_init() and copy mode reserve per worker. */
	full = n->u.st.cfg.ninputs * ((TLOG_BUCKETS + 2) * LOG_RESERVE +
				      2 * FAR_RESERVE + SCRATCH_RESERVE) +
	       2 * LOG_RESERVE + 4 * SCRATCH_RESERVE;
	if (!native)
		full += 2 * SCRATCH_RESERVE;
	if (!native && df->cfg.mode == MG_COPY)
		full += 2 * w * COPY_RESERVE;
	budget = mg_phys_bytes();
	if (room != SIZE_MAX && room / (4 * w) < budget)
		budget = room / (4 * w);
	while (s < VSHIFT_MAX && (full >> s) > budget)
		s++;
	return s;
}

/* A buffer of @n reserving @full bytes on a big machine. */
static int
vbuf_init(const struct node *n, struct vbuf *v, size_t full)
{
	return mg__vbuf_init(v, full >> n->u.st.vshift);
}

/* Room for a move list in its own reservation (control plane: at set-up). */
static int
list_init(const struct node *n, struct move_list *l)
{
	int err = vbuf_init(n, &l->mem, SCRATCH_RESERVE);

	if (err)
		return err;
	l->v = (struct pending_move *)(void *)l->mem.base;
	l->cap = (uint32_t)(l->mem.reserved / sizeof(*l->v));
	return 0;
}

static void copy_fini(struct node *n);

static size_t
entry_stride(uint32_t record_size)
{
	return 16 + ((record_size + 7u) & ~(size_t)7);
}

/* Load statistics (stats.c): a relaxed load and store each, no RMW; only
 * this worker writes its row. */
static void
count_bin(struct stateful_inst *si, uint32_t bin, uint64_t records,
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

/* ---- setup -------------------------------------------------------------------- */

int
mg__stateful_init(struct node *n)
{
	struct mg_dataflow *df = n->df;
	unsigned W = df->cfg.workers, w, i, j;
	struct stateful_inst *si;
	int err = 0;

	uint32_t b, nbins = 1u << df->nbins_log2, words = (nbins + 63) / 64;

	n->u.st.vshift = vshift_for(n);
	if (!n->u.st.cfg.native) {
		n->u.st.bins = calloc(nbins, sizeof(struct bin *));
		n->u.st.token = calloc(nbins, sizeof(*n->u.st.token));
		if (!n->u.st.bins || !n->u.st.token)
			return -ENOMEM;
		df->nmigratable++;
	}
	si = aligned_alloc(MG_CACHE_LINE, sizeof(*si) * W);
	if (!si)
		return -ENOMEM;
	memset(si, 0, sizeof(*si) * W);
	n->inst.st = si;
	if (!n->u.st.cfg.native)
		for (w = 0; w < W; w++) {
			si[w].held = calloc(words, sizeof(uint64_t));
			si[w].awaiting = calloc(words, sizeof(uint64_t));
			if (!si[w].held || !si[w].awaiting)
				return -ENOMEM;
			err = list_init(n, &si[w].in);
			if (!err)
				err = list_init(n, &si[w].out);
			if (err)
				return err;
			/* the router's first version: bin b on worker b mod W */
			for (b = w; b < nbins; b += W)
				si[w].held[b / 64] |= 1ull << (b % 64);
		}
	for (w = 0; w < W && !err; w++) {
		for (i = 0; i < n->u.st.cfg.ninputs && !err; i++) {
			struct tlog *l = &si[w].log[i];

			for (j = 0; j < TLOG_BUCKETS && !err; j++)
				err = vbuf_init(n, &l->bucket[j], LOG_RESERVE);
			if (!err)
				err = vbuf_init(n, &l->far, FAR_RESERVE);
			if (!err)
				err = vbuf_init(n, &l->far_next, FAR_RESERVE);
			if (!err)
				err = vbuf_init(n, &l->runs, SCRATCH_RESERVE);
			if (!err)
				err = vbuf_init(n, &l->defer, LOG_RESERVE);
			if (!err)
				err = vbuf_init(n, &l->defer_next, LOG_RESERVE);
		}
		if (!err)
			err = vbuf_init(n, &si[w].pairs, LOG_RESERVE);
		if (!err)
			err = vbuf_init(n, &si[w].tmp, LOG_RESERVE);
		for (i = 0; i < 2 && !err; i++)
			err = vbuf_init(n, &si[w].gather[i], SCRATCH_RESERVE);
		if (!err)
			err = vbuf_init(n, &si[w].timers, SCRATCH_RESERVE);
		if (!err)
			err = vbuf_init(n, &si[w].theap, SCRATCH_RESERVE);
	}
	return err;
}

static void
bin_free(struct bin *b)
{
	struct mg_arena a;

	if (!b)
		return;
	a = b->arena; /* the bin lives in its own arena */
	mg_arena_release(&a);
}

void
mg__stateful_fini(struct node *n)
{
	unsigned W = n->df->cfg.workers, w, i, j;
	uint32_t b, nbins = 1u << n->df->nbins_log2;

	if (n->u.st.bins)
		for (b = 0; b < nbins; b++)
			bin_free(n->u.st.bins[b]);
	if (n->u.st.state && n->inst.st)
		copy_fini(n);
	free(n->u.st.bins);
	free(n->u.st.token);
	free(n->u.st.counts);
	if (!n->inst.st)
		return;
	for (w = 0; w < W; w++) {
		struct stateful_inst *si = &n->inst.st[w];

		free(si->held);
		free(si->awaiting);
		mg__vbuf_free(&si->in.mem);
		mg__vbuf_free(&si->out.mem);
		bin_free(si->native);
		for (i = 0; i < 2; i++) {
			struct tlog *l = &si->log[i];

			for (j = 0; j < TLOG_BUCKETS; j++)
				mg__vbuf_free(&l->bucket[j]);
			mg__vbuf_free(&l->far);
			mg__vbuf_free(&l->far_next);
			mg__vbuf_free(&l->runs);
			mg__vbuf_free(&l->defer);
			mg__vbuf_free(&l->defer_next);
			mg__vbuf_free(&si->gather[i]);
		}
		mg__vbuf_free(&si->pairs);
		mg__vbuf_free(&si->tmp);
		mg__vbuf_free(&si->timers);
		mg__vbuf_free(&si->theap);
	}
}

size_t
mg__stateful_bytes(const struct node *n)
{
	uint32_t b, nbins = 1u << n->df->nbins_log2;
	unsigned w;
	size_t sum = 0;

	if (n->u.st.bins)
		for (b = 0; b < nbins; b++)
			if (n->u.st.bins[b])
				sum += mg_arena_bytes(&n->u.st.bins[b]->arena);
	for (w = 0; w < n->df->cfg.workers; w++)
		if (n->inst.st[w].native)
			sum += mg_arena_bytes(&n->inst.st[w].native->arena);
	return sum;
}

/* A fresh bin in a fresh arena on @node; NULL if out of memory. */
static struct bin *
bin_create(struct node *n, unsigned node)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct mg_arena a;
	struct bin *b;
	void *p;

	mg_arena_init(&a, n->df->pools, node);
	if (mg_arena_zalloc(&a, sizeof(*b) + c->state_size, &p))
		return NULL;
	b = p;
	b->arena = a;
	mg_timers_init(&b->timers, c->timer_record_size);
	return b;
}

/* ---- the timer index --------------------------------------------------------- */

static bool
ent_less(const struct theap_ent *a, const struct theap_ent *b)
{
	return a->time < b->time || (a->time == b->time && a->bin < b->bin);
}

static int
theap_push(struct stateful_inst *si, uint64_t time, uint64_t bin)
{
	struct theap_ent *h = (struct theap_ent *)(void *)si->theap.base;
	size_t i = si->theap.len / sizeof(*h);

	if (!mg__vbuf_room(&si->theap, sizeof(*h)))
		return -ENOMEM;
	si->theap.len += sizeof(*h);
	h[i] = (struct theap_ent){time, bin};
	while (i && ent_less(&h[i], &h[(i - 1) / 2])) {
		struct theap_ent t = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
	return 0;
}

static const struct theap_ent *
theap_top(const struct stateful_inst *si)
{
	return si->theap.len
		       ? (const struct theap_ent *)(const void *)si->theap.base
		       : NULL;
}

static void
theap_pop(struct stateful_inst *si)
{
	struct theap_ent *h = (struct theap_ent *)(void *)si->theap.base;
	size_t n = si->theap.len / sizeof(*h) - 1, i = 0;

	h[0] = h[n];
	si->theap.len -= sizeof(*h);
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct theap_ent t;

		if (l < n && ent_less(&h[l], &h[m]))
			m = l;
		if (r < n && ent_less(&h[r], &h[m]))
			m = r;
		if (m == i)
			break;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

int
mg_schedule(struct mg_bin_call *call, uint64_t time, const void *rec)
{
	struct call_ctx *cc = (struct call_ctx *)(void *)call;
	uint64_t old;
	int err;

	if (time <= call->time)
		return -EINVAL;
	old = mg_timers_next(&cc->bin->timers);
	if (time < old &&
	    !mg__vbuf_room(&cc->si->theap, sizeof(struct theap_ent)))
		return -ENOMEM; /* checked first: nothing changes */
	err = mg_timers_push(&cc->bin->timers, &cc->bin->arena, time, rec);
	if (err)
		return err;
	if (time < old)
		theap_push(cc->si, time, cc->bin_id);
	return 0;
}

/* ---- handoff ------------------------------------------------------------------ */

static bool
bit(const uint64_t *map, uint32_t b)
{
	return map[b / 64] >> (b % 64) & 1;
}

static void
set_bit(uint64_t *map, uint32_t b, bool on)
{
	if (on)
		map[b / 64] |= 1ull << (b % 64);
	else
		map[b / 64] &= ~(1ull << (b % 64));
}

static int
list_add(struct move_list *l, const struct mg_route_move *m)
{
	if (l->n == l->cap)
		return -ENOMEM;
	l->v[l->n++] =
		(struct pending_move){m->id, m->time, m->bin, m->to, m->step};
	return 0;
}

static void
list_remove(struct move_list *l, uint32_t i)
{
	memmove(&l->v[i], &l->v[i + 1], sizeof(l->v[0]) * (l->n - i - 1));
	l->n--;
}

/* File the moves of the current table that are new and name this worker. */
static int
learn_moves(struct node *n, struct worker *wk, struct stateful_inst *si)
{
	const struct mg_routing *rt = mg_router_read(n->df->router);
	uint32_t lo = 0, hi = rt->nmoves, i;
	int err = 0;

	if (!rt->nmoves || rt->moves[rt->nmoves - 1].id <= si->last_move_id)
		return 0;
	while (lo < hi) { /* first move with a new id */
		uint32_t mid = (lo + hi) / 2;

		if (rt->moves[mid].id <= si->last_move_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < rt->nmoves && !err; i++) {
		const struct mg_route_move *m = &rt->moves[i];

		if (m->from == wk->w)
			err = list_add(&si->out, m);
		if (!err && m->to == wk->w) {
			err = list_add(&si->in, m);
			set_bit(si->awaiting, m->bin, true);
		}
		si->last_move_id = m->id;
	}
	return err;
}

/* After a handoff: new allocations on this worker's node, old pages queued
 * for re-homing (rate-limited, in the background) when enabled. */
static void
rehome(struct node *n, struct worker *wk, struct bin *b)
{
	struct mg_rehomer *r = n->df->rehomer;
	size_t need;
	void *p;

	b->arena.node = wk->node;
	if (!r ||
	    atomic_load_explicit(&b->rehome.state, memory_order_acquire) ==
		    MG_REHOME_QUEUED)
		return;
	if (b->ranges)
		mg_arena_free(&b->arena, b->ranges,
			      sizeof(*b->ranges) * b->nranges);
	b->ranges = NULL;
	/* + the list's own block, which may also grow the directory */
	need = mg_arena_ranges(&b->arena, NULL, 0) + 2;
	if (mg_arena_alloc(&b->arena, sizeof(*b->ranges) * need, &p))
		return; /* no memory for the list: the pages just stay */
	b->ranges = p;
	b->nranges = need;
	b->rehome.ranges = b->ranges;
	b->rehome.nranges =
		(unsigned)mg_arena_ranges(&b->arena, b->ranges, need);
	if (b->rehome.nranges > need)
		b->rehome.nranges = (unsigned)need;
	b->rehome.target = wk->node;
	mg_rehome_submit(r, &b->rehome);
}

/* Take every incoming bin whose old owner has released it. */
static void
acquire_moves(struct node *n, struct worker *wk, struct stateful_inst *si)
{
	uint32_t i = 0, j;

	while (i < si->in.n) {
		struct pending_move *m = &si->in.v[i];
		struct bin *b;
		bool again = false;

		/* ORDER(A7): pairs with R7 in release_moves(); without it B
		 * could read the bin's state before A's last update to it. */
		if (atomic_load_explicit(&n->u.st.token[m->bin],
					 memory_order_acquire) != m->id) {
			i++;
			continue;
		}
		b = n->u.st.bins[m->bin];
		set_bit(si->held, m->bin, true);
		if (si->counts)
			count_bin(si, m->bin, 0, b ? b->arena.bytes : 0);
		if (b) {
			if (mg_timers_count(&b->timers) &&
			    theap_push(si, mg_timers_next(&b->timers), m->bin))
				mg__set_error(n->df, -ENOMEM);
			if (b->arena.node != wk->node)
				rehome(n, wk, b);
		}
		mg_step_done(m->step, mg_now_ns() - n->df->start_ns,
			     b ? mg_arena_bytes(&b->arena) : 0);
		for (j = 0; j < si->in.n; j++)
			again |= j != i && si->in.v[j].bin == m->bin;
		set_bit(si->awaiting, m->bin, again);
		list_remove(&si->in, i);
		si->acquired = true;
	}
}

/* ---- copy mode ------------------------------------------------------------------- */

/*
 * COPY MODE (the Megaphone baseline): at the point where a handoff would
 * release b, A serializes it instead -- a header {move id, bytes, bin}, the
 * user's serialize() output, then its timers -- into ser[B], frees the bin,
 * and streams ser[B] through the state mesh in STATE_PAYLOAD pieces as the
 * ring allows.  B appends what arrives to reasm[A] (a sender's bins come in
 * order), rebuilds every complete bin in a fresh arena on its own node and
 * then marks the move arrived in token[b] (written by B only in this mode),
 * where acquire_moves() finds it as it finds a released bin.  The cost is
 * proportional to the bytes moved, and the bytes in flight are memory.
 * The baseline is kept efficient so the comparison is honest: the buffers
 * are in huge pages, maps are rebuilt at their final size, and a state ring
 * holds STATE_RING batches (8 MiB, resident from creation, so not more), so
 * that after the sender's one long round -- it serializes a whole step at
 * once, as Megaphone does -- each receiver round takes a good share.
 */

struct state_rec {
	uint32_t len;
	uint32_t src;
	unsigned char payload[STATE_PAYLOAD];
};
_Static_assert(sizeof(struct state_rec) == STATE_REC, "state record");

struct copy_hdr {
	uint64_t move_id;
	uint64_t bytes; /* serialized bytes after the header */
	uint32_t bin;
	uint32_t empty; /* the bin never held state */
};

static bool
copy_mode(const struct node *n)
{
	return n->u.st.state != NULL;
}

/* A copy buffer: transient, up to the bytes of a whole step, so in huge
 * pages (512 faults per GiB written instead of 262144). */
static int
copy_vbuf_init(const struct node *n, struct vbuf *v)
{
	int err = vbuf_init(n, v, COPY_RESERVE);

	if (!err) /* failure (no THP) costs only page faults */
		(void)madvise(v->base, v->reserved, MADV_HUGEPAGE);
	return err;
}

int
mg__stateful_copy_init(struct node *n)
{
	struct mg_dataflow *df = n->df;
	unsigned W = df->cfg.workers, w, p;
	struct mg_channel_config cc = {
		.record_size = STATE_REC,
		.batch_records = STATE_BATCH,
		.capacity = STATE_RING,
	};
	int err;

	err = mg_mesh_create(&n->u.st.state, df->pools, W, df->node_of, &cc);
	for (w = 0; w < W && !err; w++) {
		struct stateful_inst *si = &n->inst.st[w];

		si->ser = calloc(W, sizeof(*si->ser));
		si->reasm = calloc(W, sizeof(*si->reasm));
		si->sent = calloc(W, sizeof(*si->sent));
		si->parsed = calloc(W, sizeof(*si->parsed));
		si->state_held = calloc(W, sizeof(*si->state_held));
		if (!si->ser || !si->reasm || !si->sent || !si->parsed ||
		    !si->state_held)
			return -ENOMEM;
		for (p = 0; p < W && !err; p++) {
			err = copy_vbuf_init(n, &si->ser[p]);
			if (!err)
				err = copy_vbuf_init(n, &si->reasm[p]);
		}
	}
	return err;
}

static void
copy_fini(struct node *n)
{
	unsigned W = n->df->cfg.workers, w, p;

	mg_mesh_destroy(n->u.st.state);
	for (w = 0; w < W; w++) {
		struct stateful_inst *si = &n->inst.st[w];

		for (p = 0; p < W && si->ser; p++) {
			mg__vbuf_free(&si->ser[p]);
			mg__vbuf_free(&si->reasm[p]);
		}
		free(si->ser);
		free(si->reasm);
		free(si->sent);
		free(si->parsed);
		free(si->state_held);
	}
}

/* Give a drained buffer's pages back: the copy's memory is transient. */
static void
vbuf_reset(struct vbuf *v)
{
	if (v->len > (64u << 20))
		madvise(v->base, v->len, MADV_DONTNEED);
	v->len = 0;
}

/* A: serialize bin m->bin for m->to and discard it. */
static void
copy_release(struct node *n, struct worker *wk, struct stateful_inst *si,
	     const struct pending_move *m)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct vbuf *v = &si->ser[m->to];
	struct bin *b = n->u.st.bins[m->bin];
	struct copy_hdr h = {m->id, 0, m->bin, b == NULL};
	struct mg_writer wr;
	int err = 0;

	if (!mg__vbuf_room(v, sizeof(h))) {
		mg__set_error(n->df, -ENOMEM);
		return;
	}
	wr = (struct mg_writer){v->base + v->len + sizeof(h), 0,
				v->reserved - v->len - sizeof(h)};
	if (b) {
		struct call_ctx cc = {
			.pub = {.time = m->time,
				.bin = m->bin,
				.worker = wk->w,
				.state = b->state,
				.arena = &b->arena},
			.bin = b,
			.si = si,
			.bin_id = m->bin,
		};

		err = c->serialize(c->ctx, &cc.pub, &wr);
		if (!err)
			err = mg_timers_write_drain(&b->timers, &wr);
		bin_free(b);
		n->u.st.bins[m->bin] = NULL;
	}
	if (err) {
		mg__set_error(n->df, err);
		return;
	}
	h.bytes = wr.len;
	memcpy(v->base + v->len, &h, sizeof(h));
	v->len += sizeof(h) + wr.len;
}

/* A: stream serialized bytes to every peer as far as the rings allow. */
static void
copy_send(struct node *n, struct worker *wk, struct stateful_inst *si)
{
	unsigned W = n->df->cfg.workers, d;

	for (d = 0; d < W; d++) {
		struct mg_channel *ch =
			mg_mesh_channel(n->u.st.state, wk->w, d);
		struct vbuf *v = &si->ser[d];

		while (si->state_held[d] || si->sent[d] < v->len) {
			struct mg_batch *b = si->state_held[d];

			if (!b) {
				b = mg_channel_batch_get_spsc(ch);
				if (!b)
					break;
				b->time = 0;
				while (b->count < b->capacity &&
				       si->sent[d] < v->len) {
					struct state_rec *r =
						mg_batch_record(b, b->count++);
					size_t k = v->len - si->sent[d];

					r->len =
						(uint32_t)(k < STATE_PAYLOAD
								   ? k
								   : STATE_PAYLOAD);
					r->src = wk->w;
					memcpy(r->payload,
					       v->base + si->sent[d], r->len);
					si->sent[d] += r->len;
				}
			}
			si->state_held[d] = NULL;
			if (!mg_channel_push_spsc(ch, b)) {
				si->state_held[d] = b;
				break;
			}
			wk->round_work += b->count;
		}
		if (si->sent[d] && si->sent[d] == v->len) {
			vbuf_reset(v);
			si->sent[d] = 0;
		}
	}
}

/* B: take what arrived and rebuild every complete bin. */
static void
copy_receive(struct node *n, struct worker *wk, struct stateful_inst *si)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	unsigned W = n->df->cfg.workers, i, j, got, p;
	struct mg_batch *b[RECV_BURST];

	while ((got = mg_mesh_recv_burst_spsc(n->u.st.state, wk->w, b,
					      RECV_BURST))) {
		for (i = 0; i < got; i++) {
			for (j = 0; j < b[i]->count; j++) {
				const struct state_rec *r =
					mg_batch_record(b[i], j);
				struct vbuf *v = &si->reasm[r->src];

				if (!mg__vbuf_room(v, r->len)) {
					mg__set_error(n->df, -ENOMEM);
					break;
				}
				memcpy(v->base + v->len, r->payload, r->len);
				v->len += r->len;
			}
			wk->round_work += b[i]->count;
			mg_batch_put_spsc(b[i]);
		}
	}
	for (p = 0; p < W; p++) {
		struct vbuf *v = &si->reasm[p];
		struct copy_hdr h;

		while (v->len - si->parsed[p] >= sizeof(h)) {
			struct mg_reader rd;
			struct bin *bn = NULL;
			int err = 0;

			memcpy(&h, v->base + si->parsed[p], sizeof(h));
			if (v->len - si->parsed[p] - sizeof(h) < h.bytes)
				break; /* the rest is still on its way */
			rd = (struct mg_reader){v->base + si->parsed[p] +
							sizeof(h),
						h.bytes, 0};
			if (!h.empty) {
				bn = bin_create(n, wk->node);
				err = bn ? 0 : -ENOMEM;
			}
			if (bn) {
				struct call_ctx cc = {
					.pub = {.bin = h.bin,
						.worker = wk->w,
						.state = bn->state,
						.arena = &bn->arena},
					.bin = bn,
					.si = si,
					.bin_id = h.bin,
				};

				err = c->deserialize(c->ctx, &cc.pub, &rd);
				if (!err)
					err = mg_timers_read(&bn->timers,
							     &bn->arena, &rd);
			}
			if (err)
				mg__set_error(n->df, err);
			n->u.st.bins[h.bin] = bn;
			/* Only this worker reads the token in copy mode; the
			 * bytes themselves came through the channel. */
			atomic_store_explicit(&n->u.st.token[h.bin], h.move_id,
					      memory_order_relaxed);
			si->parsed[p] += sizeof(h) + h.bytes;
		}
		if (si->parsed[p] && si->parsed[p] == v->len) {
			vbuf_reset(v);
			si->parsed[p] = 0;
		}
	}
}

/* Hand over every outgoing bin whose records before the move are done. */
static void
release_moves(struct node *n, struct worker *wk, struct stateful_inst *si)
{
	uint32_t i = 0;

	while (i < si->out.n) {
		struct pending_move *m = &si->out.v[i];

		if (m->time > si->processed_upto || !bit(si->held, m->bin)) {
			i++;
			continue;
		}
		set_bit(si->held, m->bin, false);
		if (si->counts) /* its bytes are the next owner's */
			count_bin(si, m->bin, 0, 0);
		if (copy_mode(n))
			copy_release(n, wk, si, m);
		else
			/* ORDER(R7): pairs with A7 in acquire_moves(). */
			atomic_store_explicit(&n->u.st.token[m->bin], m->id,
					      memory_order_release);
		list_remove(&si->out, i);
	}
}

/* The earliest move time in @l: a departure (out) or an awaited arrival
 * (in); MG_TIME_MAX when empty. */
static uint64_t
earliest(const struct move_list *l)
{
	uint64_t t = MG_TIME_MAX;
	uint32_t i;

	for (i = 0; i < l->n; i++)
		t = l->v[i].time < t ? l->v[i].time : t;
	return t;
}

/* ---- receiving ------------------------------------------------------------------ */

static int
log_batch(struct node *n, struct stateful_inst *si, unsigned in,
	  const struct mg_batch *b)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct tlog *l = &si->log[in];
	uint32_t size = b->record_size, i;
	size_t stride = entry_stride(size);
	unsigned k = n->df->nbins_log2;
	struct vbuf *log;

	/* Everything before processed_upto arrived before its mark did. */
	MG_ASSERT(b->time >= si->processed_upto);
	if (b->time - si->processed_upto < TLOG_BUCKETS) {
		log = &l->bucket[b->time % TLOG_BUCKETS];
	} else {
		struct far_run *r = (struct far_run *)(void *)l->runs.base;
		size_t at = l->runs.len / sizeof(*r);

		log = &l->far;
		if (!mg__vbuf_room(&l->runs, sizeof(*r)) ||
		    !mg__vbuf_room(log, stride * b->count))
			return -ENOMEM; /* checked first: nothing changes */
		/* insertion from the end: times mostly arrive in order */
		while (at > l->runs_head && r[at - 1].time > b->time) {
			r[at] = r[at - 1];
			at--;
		}
		r[at] = (struct far_run){b->time, log->len, stride * b->count};
		l->runs.len += sizeof(*r);
		l->far_live += stride * b->count;
	}
	if (!mg__vbuf_room(log, stride * b->count))
		return -ENOMEM;
	for (i = 0; i < b->count; i++) {
		const unsigned char *rec = b->data + (size_t)i * b->stride;
		uint64_t *e = (uint64_t *)(void *)(log->base + log->len);

		e[0] = b->time;
		e[1] = c->native ? 0
				 : mg_bin_of(c->hash[in](c->hash_ctx, rec), k);
		memcpy(e + 2, rec, size);
		log->len += stride;
	}
	return 0;
}

/* ---- sorting ---------------------------------------------------------------------- */

/* LSD radix sort of @n pairs on their keys, 8 bits a pass, over the bytes
 * some key has set, skipping bytes every key shares.  Returns the buffer
 * holding the result. */
static struct sort_pair *
radix_sort(struct sort_pair *a, struct sort_pair *t, size_t n)
{
	static _Thread_local size_t count[8][256];
	uint64_t any = 0;
	unsigned d, i, nd;
	size_t j;

	for (j = 0; j < n; j++)
		any |= a[j].key;
	nd = any ? (unsigned)(64 - __builtin_clzll(any) + 7) / 8 : 0;
	memset(count, 0, sizeof(count[0]) * nd);
	for (j = 0; j < n; j++)
		for (d = 0; d < nd; d++)
			count[d][(a[j].key >> (8 * d)) & 0xff]++;
	for (d = 0; d < nd; d++) {
		size_t sum = 0;
		struct sort_pair *x;

		if (count[d][(a[0].key >> (8 * d)) & 0xff] == n)
			continue; /* every key has this byte */
		for (i = 0; i < 256; i++) {
			size_t c = count[d][i];

			count[d][i] = sum;
			sum += c;
		}
		for (j = 0; j < n; j++)
			t[count[d][(a[j].key >> (8 * d)) & 0xff]++] = a[j];
		x = a;
		a = t;
		t = x;
	}
	return a;
}

/* ---- processing ---------------------------------------------------------------------- */

/* Where a pair's entry lives: buffer slot (bucket 0..NB-1, far, defer). */
#define SLOT_FAR   TLOG_BUCKETS
#define SLOT_DEFER (TLOG_BUCKETS + 1)
#define REF(in, slot, off) \
	((uint64_t)(in) << 63 | (uint64_t)(slot) << 48 | (uint64_t)(off))

static const unsigned char *
entry_of(const struct stateful_inst *si, uint64_t ref)
{
	const struct tlog *l = &si->log[ref >> 63];
	unsigned slot = (unsigned)(ref >> 48) & 0x7fff;
	const struct vbuf *v = slot < TLOG_BUCKETS ? &l->bucket[slot]
			       : slot == SLOT_FAR  ? &l->far
						   : &l->defer;

	return v->base + (ref & ((1ull << 48) - 1));
}

/* Add the entries of @v in [@from, @to) as pairs, except those of bins
 * awaiting acquisition, which go to l->defer_next.  False, adding nothing,
 * if pairs or defer_next might not hold them. */
static bool
collect(struct stateful_inst *si, unsigned in, unsigned slot,
	const struct vbuf *v, size_t from, size_t to, size_t stride,
	uint64_t *tmin)
{
	struct tlog *l = &si->log[in];
	struct sort_pair *p = (struct sort_pair *)(void *)si->pairs.base;
	size_t np = si->pairs.len / sizeof(*p), off;

	if (!mg__vbuf_room(&si->pairs, (to - from) / stride * sizeof(*p)) ||
	    !mg__vbuf_room(&l->defer_next, to - from))
		return false;
	for (off = from; off < to; off += stride) {
		const uint64_t *e =
			(const uint64_t *)(const void *)(v->base + off);

		/* a bin on its way here: its entries wait for it (a bin this
		 * worker still holds is processed, up to its next departure:
		 * see mg__stateful_step) */
		if (si->in.n && bit(si->awaiting, (uint32_t)e[1]) &&
		    !bit(si->held, (uint32_t)e[1])) {
			memcpy(l->defer_next.base + l->defer_next.len, e,
			       stride);
			l->defer_next.len += stride;
			continue;
		}
		p[np].key = e[0];
		p[np].ref = REF(in, slot, off);
		np++;
		*tmin = e[0] < *tmin ? e[0] : *tmin;
	}
	si->pairs.len = np * sizeof(*p);
	return true;
}

static void
swap_vbuf(struct vbuf *a, struct vbuf *b)
{
	struct vbuf t = *a;

	*a = *b;
	*b = t;
}

static struct far_run *
runs_of(const struct tlog *l, size_t *n)
{
	*n = l->runs.len / sizeof(struct far_run);
	return (struct far_run *)(void *)l->runs.base;
}

/* Gather every due entry of input @in as a pair.  Return: 0; -ENOMEM if
 * the sort keys of what is due do not fit (the run stops). */
static int
collect_input(struct node *n, struct stateful_inst *si, unsigned in,
	      uint64_t upto, uint64_t *tmin)
{
	struct tlog *l = &si->log[in];
	size_t stride = entry_stride(
		((struct stream *)n->u.st.cfg.in[in])->record_size);
	uint64_t base = si->processed_upto, t;
	size_t nr, i;
	struct far_run *r = runs_of(l, &nr);
	bool ok;

	ok = collect(si, in, SLOT_DEFER, &l->defer, 0, l->defer.len, stride,
		     tmin);
	for (t = base; ok && t < upto && t - base < TLOG_BUCKETS; t++) {
		const struct vbuf *v = &l->bucket[t % TLOG_BUCKETS];

		ok = collect(si, in, (unsigned)(t % TLOG_BUCKETS), v, 0, v->len,
			     stride, tmin);
	}
	/* due runs of the far log, when the frontier jumped past the window */
	for (i = l->runs_head; ok && i < nr && r[i].time < upto; i++)
		ok = collect(si, in, SLOT_FAR, &l->far, r[i].off,
			     r[i].off + r[i].bytes, stride, tmin);
	l->runs_taken = i - l->runs_head;
	return ok ? 0 : -ENOMEM;
}

/* Copy the live runs to far_next and make it the far log. */
static void
compact_far(struct tlog *l)
{
	size_t nr, i, k = 0;
	struct far_run *r = runs_of(l, &nr);

	l->far_next.len = 0;
	for (i = l->runs_head; i < nr; i++, k++) {
		memcpy(l->far_next.base + l->far_next.len,
		       l->far.base + r[i].off, r[i].bytes);
		r[k] = (struct far_run){r[i].time, l->far_next.len, r[i].bytes};
		l->far_next.len += r[i].bytes;
	}
	l->runs.len = k * sizeof(*r);
	l->runs_head = 0;
	swap_vbuf(&l->far, &l->far_next);
	l->far_next.len = 0;
}

/* After a pass up to @upto: empty what was consumed and fill the buckets of
 * the new window [upto, upto + NB) from the head of the far log. */
static void
retire_input(struct stateful_inst *si, unsigned in, uint64_t upto)
{
	struct tlog *l = &si->log[in];
	uint64_t base = si->processed_upto, t;
	size_t nr, i;
	struct far_run *r = runs_of(l, &nr);

	for (t = base; t < upto && t - base < TLOG_BUCKETS; t++)
		l->bucket[t % TLOG_BUCKETS].len = 0;
	swap_vbuf(&l->defer, &l->defer_next);
	l->defer_next.len = 0;
	for (i = l->runs_head; i < l->runs_head + l->runs_taken; i++)
		l->far_live -= r[i].bytes;
	l->runs_head += l->runs_taken;
	l->runs_taken = 0;
	for (; l->runs_head < nr && r[l->runs_head].time - upto < TLOG_BUCKETS;
	     l->runs_head++) {
		const struct far_run *x = &r[l->runs_head];
		struct vbuf *to = &l->bucket[x->time % TLOG_BUCKETS];

		/* A full bucket leaves this run and later ones in far, where
		 * collect_input() takes them once they are due. */
		if (!mg__vbuf_room(to, x->bytes))
			break;
		memcpy(to->base + to->len, l->far.base + x->off, x->bytes);
		to->len += x->bytes;
		l->far_live -= x->bytes;
	}
	if (l->runs_head == nr) {
		l->far.len = 0;
		l->runs.len = 0;
		l->runs_head = 0;
	} else if (l->far.len - l->far_live > l->far_live &&
		   l->far.len > (64u << 20)) {
		compact_far(l); /* each live byte moves once per halving */
	}
}

static void
call_bin(struct node *n, struct worker *wk, struct stateful_inst *si,
	 uint64_t t, uint64_t bin_id, uint32_t n_in[2])
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct bin **slot = c->native ? &si->native : &n->u.st.bins[bin_id];
	struct call_ctx cc;
	struct mg_emitter e = {n->out, wk, t};
	uint32_t ntimers = 0, tsize = c->timer_record_size;
	uint64_t tt;
	bool popped = false;

	if (!*slot) {
		*slot = bin_create(n, wk->node);
		if (!*slot) {
			mg__set_error(n->df, -ENOMEM);
			return;
		}
	}
	si->timers.len = 0;
	while (mg_timers_count(&(*slot)->timers) &&
	       mg__vbuf_room(&si->timers, tsize + 1) &&
	       mg_timers_pop(&(*slot)->timers, t, &tt,
			     si->timers.base + si->timers.len)) {
		si->timers.len += tsize;
		ntimers++;
		popped = true;
	}
	if (!n_in[0] && !n_in[1] && !ntimers)
		return; /* a stale index entry */
	cc = (struct call_ctx){
		.pub =
			{
				.time = t,
				.bin = (uint32_t)(c->native ? wk->w : bin_id),
				.worker = wk->w,
				.state = (*slot)->state,
				.arena = &(*slot)->arena,
				.in = {si->gather[0].base, si->gather[1].base},
				.n_in = {n_in[0], n_in[1]},
				.timers = si->timers.base,
				.n_timers = ntimers,
			},
		.bin = *slot,
		.si = si,
		.bin_id = bin_id,
	};
	c->fn(c->ctx, &cc.pub, &e);
	si->calls++;
	si->records += n_in[0] + n_in[1];
	if (si->counts)
		count_bin(si, (uint32_t)bin_id, n_in[0] + n_in[1],
			  (*slot)->arena.bytes);
	if (cc.pub.error)
		mg__set_error(n->df, cc.pub.error);
	if (popped && mg_timers_count(&(*slot)->timers) &&
	    theap_push(si, mg_timers_next(&(*slot)->timers), bin_id))
		mg__set_error(n->df, -ENOMEM);
}

/*
 * Hide the cache misses of the calls to come, in two stages over the sorted
 * entries: 2 * PREFETCH ahead of @at, each entry's bin block and root state;
 * PREFETCH ahead, the operator's own prefetch of what the record will touch
 * (it reads the root state, in cache by then).  pf[] are the two cursors.
 */
static void
prefetch_ahead(const struct node *n, const struct stateful_inst *si,
	       const struct sort_pair *p, size_t np, size_t at, size_t pf[2])
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	uint64_t bin_mask = (1ull << n->df->nbins_log2) - 1;
	const struct bin *x;

	for (; pf[0] < np && pf[0] < at + 2 * PREFETCH; pf[0]++) {
		x = c->native ? si->native
			      : n->u.st.bins[p[pf[0]].key & bin_mask];
		if (x) {
			__builtin_prefetch(x);
			__builtin_prefetch(x->state);
		}
	}
	for (; c->prefetch && pf[1] < np && pf[1] < at + PREFETCH; pf[1]++) {
		x = c->native ? si->native
			      : n->u.st.bins[p[pf[1]].key & bin_mask];
		if (x)
			c->prefetch(c->ctx, x->state,
				    (unsigned)(p[pf[1]].ref >> 63),
				    entry_of(si, p[pf[1]].ref) + 16);
	}
}

static void
process(struct node *n, struct worker *wk, struct stateful_inst *si,
	uint64_t upto)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	unsigned k = n->df->nbins_log2, i;
	uint64_t tmin = MG_TIME_MAX, bin_mask = (1ull << k) - 1;
	struct sort_pair *p;
	size_t np = 0, at = 0, j, pf[2] = {0, 0};
	uint32_t size[2] = {0, 0};

	si->pairs.len = 0;
	for (i = 0; i < c->ninputs; i++) {
		size[i] = ((struct stream *)c->in[i])->record_size;
		if (collect_input(n, si, i, upto, &tmin)) {
			mg__set_error(n->df, -ENOMEM);
			return;
		}
	}
	np = si->pairs.len / sizeof(*p);
	si->backlog -= np; /* due now: processed in this pass */
	p = (struct sort_pair *)(void *)si->pairs.base;
	for (j = 0; j < np; j++) {
		const uint64_t *e =
			(const uint64_t *)(const void *)entry_of(si, p[j].ref);

		p[j].key = (e[0] - tmin) << k | e[1];
	}
	if (np > 1)
		p = radix_sort(p, (struct sort_pair *)(void *)si->tmp.base, np);

	for (;;) {
		const struct theap_ent *top = theap_top(si);
		uint64_t t_in = at < np ? tmin + (p[at].key >> k) : MG_TIME_MAX;
		uint64_t t, last_timer_bin = MG_TIME_MAX;

		while (top && !c->native &&
		       !bit(si->held, (uint32_t)top->bin)) {
			theap_pop(si); /* the bin left this worker */
			top = theap_top(si);
		}
		t = top && top->time < t_in ? top->time : t_in;
		if (t >= upto)
			break;
		/* Merge this time's input runs (by bin) with its due timers. */
		for (;;) {
			uint64_t b_in = MG_TIME_MAX, b_tm = MG_TIME_MAX, b;
			uint32_t cnt[2] = {0, 0};

			if (at < np && tmin + (p[at].key >> k) == t)
				b_in = p[at].key & bin_mask;
			top = theap_top(si);
			while (top && top->time == t &&
			       (top->bin == last_timer_bin ||
				(!c->native &&
				 !bit(si->held, (uint32_t)top->bin)))) {
				theap_pop(si); /* duplicate, or the bin left */
				top = theap_top(si);
			}
			if (top && top->time == t)
				b_tm = top->bin;
			b = b_in < b_tm ? b_in : b_tm;
			if (b == MG_TIME_MAX)
				break;
			if (b_tm == b) {
				theap_pop(si);
				last_timer_bin = b;
			}
			prefetch_ahead(n, si, p, np, at, pf);
			si->gather[0].len = si->gather[1].len = 0;
			while (at < np && tmin + (p[at].key >> k) == t &&
			       (p[at].key & bin_mask) == b) {
				unsigned in = (unsigned)(p[at].ref >> 63);
				struct vbuf *g = &si->gather[in];

				if (MG_UNLIKELY(!mg__vbuf_room(g, size[in]))) {
					mg__set_error(n->df, -ENOMEM);
					return; /* the run stops */
				}
				memcpy(g->base + g->len,
				       entry_of(si, p[at].ref) + 16, size[in]);
				g->len += size[in];
				cnt[in]++;
				at++;
			}
			call_bin(n, wk, si, t, b, cnt);
			wk->round_work += cnt[0] + cnt[1] + 1;
		}
	}
	for (i = 0; i < c->ninputs; i++)
		retire_input(si, i, upto);
}

void
mg__stateful_step(struct node *n, struct worker *wk)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct stateful_inst *si = &n->inst.st[wk->w];
	struct mg_batch *b[RECV_BURST];
	uint64_t f = MG_TIME_MAX, fi;
	unsigned i, r, got, j;
	uint64_t work0 = wk->round_work;
	uint32_t before;
	int err;

	if (mg__congested(n, wk->w))
		return;
	for (i = 0; i < c->ninputs; i++) {
		for (r = 0; r < RECV_BURSTS; r++) {
			got = mg_mesh_recv_burst_spsc(n->u.st.mesh[i], wk->w, b,
						      RECV_BURST);
			for (j = 0; j < got; j++) {
				err = log_batch(n, si, i, b[j]);
				if (err)
					mg__set_error(n->df, err);
				else /* received, not processed (stats.c) */
					si->backlog += b[j]->count;
				wk->round_work += b[j]->count + 1;
				mg_batch_put_spsc(b[j]);
			}
			if (got < RECV_BURST)
				break;
		}
		fi = mg_mesh_frontier(n->u.st.mesh[i], wk->w);
		f = fi < f ? fi : f;
	}
	if (!c->native) {
		/* after receiving: see the essay, step 0 */
		if (learn_moves(n, wk, si))
			mg__set_error(n->df, -ENOMEM);
		if (copy_mode(n))
			copy_receive(n, wk, si);
		if (si->in.n)
			acquire_moves(n, wk, si);
	}
	/* Process up to the frontier, but never past a bin's departure time
	 * while it is still here: release it there, then go on (its records
	 * and timers from that time on belong to the new owner). */
	for (;;) {
		const struct theap_ent *top = theap_top(si);
		uint64_t upto = earliest(&si->out);
		bool capped = false;

		upto = upto < f ? upto : f;
		/* When the frontier is far ahead (the input closed, or a stall
		 * ended), go one timer time at a time and stop once a step has
		 * done STEP_BUDGET work: each time's output and frontier go out
		 * before the work of later timers. */
		if (top && top->time >= si->processed_upto &&
		    top->time + 1 < upto) {
			upto = top->time + 1;
			capped = true;
		}
		/* A move is learned before the frontier passes its time (the
		 * control frontier argument of step 0): never behind us. */
		MG_ASSERT(upto >= si->processed_upto);
		if (upto > si->processed_upto || si->acquired) {
			si->acquired = false;
			process(n, wk, si, upto);
			si->processed_upto = upto;
		}
		if (capped && wk->round_work - work0 < STEP_BUDGET)
			continue; /* progress each time: upto > processed_upto */
		if (!si->out.n)
			break;
		before = si->out.n;
		release_moves(n, wk, si);
		if (si->out.n == before || upto == f)
			break; /* nothing left here, or waiting for a bin */
	}
	if (copy_mode(n))
		copy_send(n, wk, si);
	fi = earliest(&si->in);
	si->done_upto = si->processed_upto < fi ? si->processed_upto : fi;
}

int
mg__stateful_prefill(struct node *n, struct worker *wk)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct stateful_inst *si = &n->inst.st[wk->w];
	const struct mg_routing *rt = mg_router_read(n->df->router);
	uint32_t b, nbins = 1u << n->df->nbins_log2;
	struct bin **slot;
	int err;

	if (!c->prefill)
		return 0;
	for (b = 0; b < (c->native ? 1 : nbins); b++) {
		struct call_ctx cc;

		if (!c->native && mg_routing_owner(rt, b, 0) != wk->w)
			continue;
		slot = c->native ? &si->native : &n->u.st.bins[b];
		if (!*slot)
			*slot = bin_create(n, wk->node);
		if (!*slot)
			return -ENOMEM;
		cc = (struct call_ctx){
			.pub =
				{
					.bin = c->native ? wk->w : b,
					.worker = wk->w,
					.state = (*slot)->state,
					.arena = &(*slot)->arena,
				},
			.bin = *slot,
			.si = si,
			.bin_id = b,
		};
		err = c->prefill(c->ctx, &cc.pub);
		if (err)
			return err;
	}
	return 0;
}
