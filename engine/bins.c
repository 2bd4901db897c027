/*
 * bins.c - what every stateful operator's bins and buffers are made of:
 * a bin's block and its life, the worker's index of bins with timers,
 * mg_schedule(), and how big an operator's buffers may be.
 *
 * A bin is one block at the start of its own arena:
 *
 *   struct bin { arena (72) | -> extra (8) | user root state }
 *
 * (the extra block -- timer queue and re-homing request -- is a block of
 * the same arena, made when first needed), so a bin is wholly inside pages
 * it owns and changes owner by handing over the one pointer in `bins[b]`
 * (see handoff.c).  A bin that never saw a
 * record is NULL and owns nothing.  bins[] is written only by the bin's
 * holder.
 *
 * The timer index (theap, per worker): a min-heap of (time, bin) with an
 * entry at the earliest timer of every bin the worker holds that has timers
 * -- plus possibly stale entries (a bin that left, a timer popped early),
 * which find nothing due and are dropped.  Everything here runs on the
 * worker that holds the bin, or at set-up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_pvt.h"
#include "numa/mg_fault.h"

#define VSHIFT_MAX 10 /* keeps SCRATCH_RESERVE >= 1 MiB */

_Static_assert(sizeof(struct bin) == 80,
	       "a bin's header and a 40-byte map fill a 128 B chunk");

/*
 * The *_RESERVE sizes are for a big machine.  An operator scales all of its
 * buffers down by one power of two, 2^vshift, so that on each worker they
 * reserve at most the physical memory (they could never hold more) and,
 * under RLIMIT_AS, that its W workers take at most a quarter of the address
 * space left.  A unary operator (keycount's) reserves 63 GiB per worker on
 * a big machine; 15.75 GiB with 23 GiB of memory.  A buffer that fills up
 * fails the run with -ENOBUFS (the limits: engine_pvt.h).
 */
unsigned
mg__st_vshift(const struct node *n)
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
	/* Debug builds: MG_DEBUG_VSHIFT shrinks them further, so that tests
	 * reach every buffer's limit (numa/mg_fault.h). */
	return s > mg__fault_vshift() ? s : mg__fault_vshift();
}

/* A buffer of @n reserving @full bytes on a big machine. */
int
mg__st_vbuf_init(const struct node *n, struct vbuf *v, size_t full)
{
	return mg__vbuf_init(v, full >> n->u.st.vshift);
}

/* A fresh bin in a fresh arena on @node; NULL if out of memory. */
struct bin *
mg__bin_create(struct node *n, unsigned node)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct mg_arena a;
	struct bin *b;
	void *p;

	mg_arena_init(&a, n->df->pools, node);
	if (mg_arena_zalloc_root(&a, sizeof(*b) + c->state_size, &p))
		return NULL;
	b = p;
	b->arena = a;
	return b;
}

/*
 * Whether @b is still as mg__bin_create() made it: its arena holds only the
 * bin's own block (so it has no timer queue) and the operator's state is all
 * zero.
 * Such a bin is the one call_bin() would create on demand, so it need not
 * exist.
 */
bool
mg__bin_pristine(const struct node *n, const struct bin *b)
{
	size_t size = n->u.st.cfg.state_size, i;

	if (!mg_arena_root_only(&b->arena, sizeof(*b) + size))
		return false;
	for (i = 0; i < size; i++)
		if (b->state[i])
			return false;
	return true;
}

int
mg__bin_extra(const struct node *n, struct bin *b)
{
	struct bin_extra *x;
	int err;

	if (b->x)
		return 0;
	err = mg_arena_alloc(&b->arena, sizeof(*x), (void **)&x);
	if (err)
		return err;
	mg_timers_init(&x->timers, n->u.st.cfg.timer_record_size);
	x->rehome = NULL;
	b->x = x;
	return 0;
}

/* Copy mode: @b's timers as mg_timers_write() writes them (none: an empty
 * queue's). */
int
mg__bin_timers_write(const struct bin *b, struct mg_writer *w)
{
	struct mg_timers none;

	if (b->x)
		return mg_timers_write(&b->x->timers, w);
	mg_timers_init(&none, 0);
	return mg_timers_write(&none, w);
}

/* Copy mode: read what mg__bin_timers_write() wrote into @b, a new bin; its
 * extra block is made only if a timer arrives.  On error the caller frees
 * @b. */
int
mg__bin_timers_read(const struct node *n, struct bin *b, struct mg_reader *r)
{
	struct mg_timers t;
	int err;

	mg_timers_init(&t, n->u.st.cfg.timer_record_size);
	err = mg_timers_read(&t, &b->arena, r);
	if (!err && mg_timers_count(&t)) {
		err = mg__bin_extra(n, b);
		if (!err)
			b->x->timers = t; /* it holds no pointer into itself */
	}
	return err;
}

void
mg__bin_free(struct bin *b)
{
	struct mg_arena a;

	if (!b)
		return;
	a = b->arena; /* the bin lives in its own arena */
	mg_arena_release(&a);
}

/* ---- the timer index --------------------------------------------------------- */

static bool
ent_less(const struct theap_ent *a, const struct theap_ent *b)
{
	return a->time < b->time || (a->time == b->time && a->bin < b->bin);
}

int
mg__theap_push(struct stateful_inst *si, uint64_t time, uint64_t bin)
{
	struct theap_ent *h = (struct theap_ent *)(void *)si->theap.base;
	size_t i = si->theap.len / sizeof(*h);

	if (!mg__vbuf_room(&si->theap, sizeof(*h)))
		return -ENOBUFS;
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

const struct theap_ent *
mg__theap_top(const struct stateful_inst *si)
{
	return si->theap.len
		       ? (const struct theap_ent *)(const void *)si->theap.base
		       : NULL;
}

void
mg__theap_pop(struct stateful_inst *si)
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

	if (time <= call->time || time >= MG_TIME_LIMIT)
		return -EINVAL; /* not later, or not a time */
	if (!cc->n->u.st.cfg.timer_record_size)
		return -EINVAL; /* the operator keeps no timer records */
	old = mg__bin_next_timer(cc->bin);
	if (time < old &&
	    !mg__vbuf_room(&cc->si->theap, sizeof(struct theap_ent)))
		return -ENOBUFS; /* checked first: nothing changes */
	err = mg__bin_extra(cc->n, cc->bin);
	if (err)
		return err;
	err = mg_timers_push(&cc->bin->x->timers, &cc->bin->arena, time, rec);
	if (err)
		return err;
	if (time < old)
		mg__theap_push(cc->si, time, cc->bin_id);
	return 0;
}
