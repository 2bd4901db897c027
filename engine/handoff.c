/*
 * handoff.c - moving a bin between workers: the per-bin handoff protocol.
 *
 * The one file a newcomer must understand to trust a migration.  Its
 * Promela model is tests/model/handoff.pml (make check-model); the words in
 * brackets below name the model's steps.
 *
 * WHO WRITES WHAT (a stateful operator; bin b; worker w)
 *
 *   bins[b]         the bin's block (bins.c): written only by the worker
 *                   that holds b (it creates it at b's first record, and
 *                   frees it when copy mode serializes it), and in copy
 *                   mode by the receiver, which sets the rebuilt copy.
 *   token[b]        the id of the last move of b handed over: stored with
 *                   release by the releasing worker (handoff, and a copy
 *                   that did not fit) or by the receiving one (copy mode);
 *                   loaded with acquire by the receiver.
 *   held[w]         bitmap of the bins w holds: w only.
 *   awaiting[w]     bitmap of the bins with an incoming move w has learned
 *                   and not yet acquired: w only.
 *   in[w], out[w]   the moves w takes part in, learned from the routing
 *                   table, in id order: w only.
 *
 * A MOVE of bin b from worker A to worker B at time t:
 *
 *   0. Learn [learn].  mg__handoff_learn(): each round, after draining its
 *      ports, a worker reads the routing table and files every move with a
 *      new id that names it into `out` (it is A) or `in` (it is B, and sets
 *      awaiting[b]).  The table is read after the records were received,
 *      and a record at t exists only once the control frontier has passed
 *      t, which happens after the table holding the move was published
 *      (migration/mg_router.h) -- so no worker sees a record at t or later
 *      before it knows of the move.
 *   1. Route [route].  Records of b before t go to A, from t on to B
 *      (send_record() in send.c reads the same table).
 *   2. Release [release].  A processes no further than t while it holds b:
 *      mg__stateful_step() caps each pass at mg__handoff_earliest(out), so
 *      none of b's records or timers at t or later run on A, even when A's
 *      frontier jumps far past t in one step.  Once processed_upto >= t
 *      (every record of b before t applied, every timer of b before t
 *      fired), mg__handoff_release() clears held[b] and stores the move's id
 *      into token[b] with release (handoff.R1 below): that one store hands
 *      over the bin -- its pages, its timers, everything in its arena.  In
 *      copy mode A serializes the bin into a channel instead, or hands it
 *      over like this when the copy does not fit (copymode.c).
 *   3. Defer [defer], hold [hold], acquire [acquire].  While B does not
 *      hold b, collect() (stateful.c) keeps B's entries of b aside in the
 *      log's defer buffer, and B's output frontier stays at or below t
 *      (done_upto is capped by mg__handoff_earliest(in)) -- b may carry
 *      timers at t or later -- while every other bin goes on.  When
 *      mg__handoff_acquire() loads token[b] == the move's id with acquire
 *      (handoff.A1 below), B owns b: it sets held[b], indexes b's earliest
 *      timer, moves the arena's future allocations to its own node (queueing
 *      the old pages for re-homing when enabled), reports the step done,
 *      and reprocesses what was deferred.
 *
 * token[] orders each bin's whole life: A's last write to the bin happens
 * before its release store, which happens before B's acquire load, which
 * happens before B's first access.  Chains (A->B at t1, B->C at t2) work
 * because a worker releases only a bin it holds and takes moves in id
 * order, and the router folds a bin's finished moves only in order
 * (fold() in migration/router.c).
 *
 * Everything here runs on the worker (the data path): no malloc, no lock;
 * the move lists live in reserved mappings set up at build time.  With
 * re-homing on, a bin acquired across nodes takes its request from its own
 * arena, and submitting it makes one FUTEX_WAKE system call when the
 * re-homer sleeps.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_pvt.h"

/* Room for a move list in its own reservation (control plane: at set-up). */
static int
list_init(const struct node *n, struct move_list *l)
{
	int err = mg__st_vbuf_init(n, &l->mem, SCRATCH_RESERVE);

	if (err)
		return err;
	l->v = (struct pending_move *)(void *)l->mem.base;
	l->cap = (uint32_t)(l->mem.reserved / sizeof(*l->v));
	return 0;
}

static int
list_add(struct move_list *l, const struct mg_route_move *m)
{
	if (l->n == l->cap)
		return -ENOBUFS;
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

/* The bins, move lists and first ownership of worker @w (at build time). */
int
mg__handoff_init(struct node *n, struct stateful_inst *si, unsigned w)
{
	unsigned W = n->df->cfg.workers;
	uint32_t b, nbins = 1u << n->df->nbins_log2, words = (nbins + 63) / 64;
	int err;

	si->held = mg_calloc_lines(words, sizeof(uint64_t));
	si->awaiting = mg_calloc_lines(words, sizeof(uint64_t));
	if (!si->held || !si->awaiting)
		return -ENOMEM;
	err = list_init(n, &si->in);
	if (!err)
		err = list_init(n, &si->out);
	if (err)
		return err;
	/* the router's first version: bin b on worker b mod W */
	for (b = w; b < nbins; b += W) {
		mg__set_bit(si->held, b, true);
		si->nheld++;
	}
	return 0;
}

void
mg__handoff_fini(struct stateful_inst *si)
{
	free(si->held);
	free(si->awaiting);
	mg__vbuf_free(&si->in.mem);
	mg__vbuf_free(&si->out.mem);
}

/* File the moves of the current table that are new and name this worker.
 * Return: 0; -ENOBUFS if a move list is full (LIMIT_MOVES). */
int
mg__handoff_learn(struct node *n, struct worker *wk, struct stateful_inst *si)
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
			mg__set_bit(si->awaiting, m->bin, true);
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
	struct bin_rehome *rh;
	size_t need;
	void *p;

	mg_arena_set_node(&b->arena, wk->node);
	if (!r || mg__bin_rehoming(b) || mg__bin_extra(n, b))
		return; /* (no memory for the extra block: the pages stay) */
	rh = b->x->rehome;
	if (rh)
		mg_arena_free(&b->arena, rh,
			      sizeof(*rh) + sizeof(rh->ranges[0]) * rh->cap);
	b->x->rehome = NULL;
	/* + the request's own block, which may also grow the directory */
	need = mg_arena_ranges(&b->arena, NULL, 0) + 2;
	if (mg_arena_zalloc(&b->arena,
			    sizeof(*rh) + sizeof(rh->ranges[0]) * need, &p))
		return; /* no memory for the request: the pages just stay */
	rh = p;
	rh->cap = need;
	rh->req.ranges = rh->ranges;
	rh->req.nranges =
		(unsigned)mg_arena_ranges(&b->arena, rh->ranges, need);
	if (rh->req.nranges > need)
		rh->req.nranges = (unsigned)need;
	rh->req.target = wk->node;
	b->x->rehome = rh;
	mg_rehome_submit(r, &rh->req);
}

/* Take every incoming bin whose old owner has released it. */
void
mg__handoff_acquire(struct node *n, struct worker *wk, struct stateful_inst *si)
{
	uint32_t i = 0, j;

	while (i < si->in.n) {
		struct pending_move *m = &si->in.v[i];
		struct bin *b;
		bool again = false;

		/* ORDER(handoff.A1): pairs with handoff.R1 in mg__handoff_release(); without it B
		 * could read the bin's state before A's last update to it. */
		if (atomic_load_explicit(&n->u.st.token[m->bin],
					 memory_order_acquire) != m->id) {
			i++;
			continue;
		}
		b = n->u.st.bins[m->bin];
		mg__set_bit(si->held, m->bin, true);
		si->nheld++;
		if (si->counts)
			mg__count_bin(si, m->bin, 0,
				      b ? mg_arena_bytes(&b->arena) : 0);
		if (b) {
			if (mg__bin_timer_count(b) &&
			    mg__theap_push(si, mg__bin_next_timer(b), m->bin))
				mg__set_error(n->df, -ENOBUFS, LIMIT_THEAP);
			if (mg_arena_node(&b->arena) != wk->node)
				rehome(n, wk, b);
		}
		if (mg_step_done(m->step, mg_now_ns() - n->df->start_ns,
				 b ? mg_arena_bytes(&b->arena) : 0))
			mg__migrations_wake(n->df); /* the step's last move */
		for (j = 0; j < si->in.n; j++)
			again |= j != i && si->in.v[j].bin == m->bin;
		mg__set_bit(si->awaiting, m->bin, again);
		list_remove(&si->in, i);
		si->acquired = true;
	}
}

/* Hand over every outgoing bin whose records before the move are done. */
void
mg__handoff_release(struct node *n, struct worker *wk, struct stateful_inst *si)
{
	uint32_t i = 0;

	while (i < si->out.n) {
		struct pending_move *m = &si->out.v[i];

		if (m->time > si->processed_upto ||
		    !mg__bit(si->held, m->bin)) {
			i++;
			continue;
		}
		mg__set_bit(si->held, m->bin, false);
		si->nheld--;
		if (si->counts) /* its bytes are the next owner's */
			mg__count_bin(si, m->bin, 0, 0);
		if (!mg__copy_mode(n) || !mg__copy_release(n, wk, si, m))
			/* ORDER(handoff.R1): pairs with handoff.A1 in mg__handoff_acquire();
			 * the bin, its pages and timers are the next owner's. */
			atomic_store_explicit(&n->u.st.token[m->bin], m->id,
					      memory_order_release);
		list_remove(&si->out, i);
	}
}

/* The earliest move time in @l: a departure (out) or an awaited arrival
 * (in); MG_TIME_MAX when empty. */
uint64_t
mg__handoff_earliest(const struct move_list *l)
{
	uint64_t t = MG_TIME_MAX;
	uint32_t i;

	for (i = 0; i < l->n; i++)
		t = l->v[i].time < t ? l->v[i].time : t;
	return t;
}
