/*
 * router.c - building and publishing routing-table versions (the format
 * and the reader side are in mg_router.h).
 *
 * Control-side state (struct mg_router_ctl, guarded by `lock`):
 *   base[b]   b's owner before any move still listed;
 *   moves[]   moves not yet folded into base, by increasing id; per bin
 *             they are in time order (a bin's unfinished moves all come
 *             from one submission, whose step times increase);
 *   steps[]   every step record ever handed out (freed at destroy, so the
 *             pointers given to callers and workers stay valid).
 *
 * A version is one malloc block: header | route[nbins] | moves | timeline.
 * Publishing replaces `cur` with rcu_assign_pointer() and hands the old
 * block to call_rcu(), whose thread frees it after a grace period.
 *
 * Who may call call_rcu().  liburcu requires it "from registered RCU
 * read-side threads; for the QSBR flavor, the caller should be online"
 * (doc/rcu-api.md): call_rcu() picks its per-CPU or default call_rcu_data
 * inside a read-side critical section, because those can be freed after a
 * grace period, and a debug build of liburcu asserts that the QSBR caller
 * is online.  Our publishers are not readers: the application thread
 * (mg_migrate -> mg_router_submit) and the engine's control thread
 * (mg_router_advance, and the submissions of fluid and batched steps).  So
 * retire() registers the calling thread around the call when it is not an
 * online reader already, and leaves an online reader (a worker) as it is.
 * Registration takes liburcu's registry mutex twice per published version,
 * which the control side can afford; the caller is online for the length of
 * call_rcu() only, so a grace period waits for it no longer than that.
 * Simpler than the alternatives: a deferred free list drained after
 * synchronize_rcu() would make the control thread wait for every worker's
 * next quiescent state, holding back the control frontier the sources wait
 * for, and a reclaimer thread of our own is one more thread to start, stop
 * and register.  The one caller this cannot serve is a registered reader
 * that is offline (liburcu forbids registering a thread twice): no thread
 * of the engine publishes while offline, and applications do not use
 * liburcu.  rcu_barrier() (mg_router_destroy) needs no registration: it
 * takes the caller offline if needed and only queues work to the call_rcu
 * threads under liburcu's own mutex (rcu_barrier in urcu-call-rcu-impl.h).
 *
 * fork().  liburcu's call_rcu threads do not follow a fork, so in a child
 * whose parent had published a version, rcu_barrier() (mg_router_destroy)
 * would wait for them forever.  liburcu asks the application to call its
 * fork hooks around fork(); ours does not know it uses liburcu, so the first
 * router registers them (pthread_atfork), and a child forked while no
 * dataflow runs can build and run dataflows of its own.  (One forked while
 * workers are registered readers cannot: QSBR has no hook that forgets the
 * parent's readers, so its grace periods would wait for them.)
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "migration/mg_router.h"

struct mg_router_ctl {
	pthread_mutex_t lock;
	uint32_t nbins, nworkers;
	uint16_t *base;
	struct mg_route_move *moves;
	uint32_t nmoves, cap_moves;
	struct mg_step_ctl **steps;
	uint32_t nsteps, cap_steps;
	uint64_t next_id, version;
	uint32_t *scratch; /* nbins: per-bin counts while building */
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
register_atfork(void)
{
	/* ENOMEM leaves fork() as it was without: nothing to report */
	(void)pthread_atfork(urcu_qsbr_call_rcu_before_fork,
			     urcu_qsbr_call_rcu_after_fork_parent,
			     urcu_qsbr_call_rcu_after_fork_child);
}

bool
mg_step_done(struct mg_step_ctl *s, uint64_t now_ns, uint64_t bytes)
{
	uint64_t cur = atomic_load_explicit(&s->done_ns, memory_order_relaxed);

	/* Relaxed: read only after `remaining` is seen at 0 (acquire). */
	atomic_fetch_add_explicit(&s->bytes, bytes, memory_order_relaxed);
	while (now_ns > cur &&
	       !atomic_compare_exchange_weak_explicit(&s->done_ns, &cur, now_ns,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
	/* ORDER(route.R3): pairs with route.A3 in mg_step_complete(). */
	return atomic_fetch_sub_explicit(&s->remaining, 1,
					 memory_order_release) == 1;
}

bool
mg_step_complete(const struct mg_step_ctl *s)
{
	/* ORDER(route.A3): pairs with route.R3 in mg_step_done(). */
	return atomic_load_explicit(&s->remaining, memory_order_acquire) == 0;
}

#if MG_TSAN
char mg__rcu_grace;
#endif

/* Runs on one of liburcu's call_rcu threads, after a grace period. */
static void
free_version(struct rcu_head *head)
{
	struct mg_routing *t = caa_container_of(head, struct mg_routing, rcu);

	/* ORDER(route.A5): pairs with route.R5 in mg__rcu_release_reads();
	 * the grace period: every reader's last read of @t is done. */
	MG_TSAN_ACQUIRE(&mg__rcu_grace);
	/* ORDER(route.A6): pairs with route.R6 in retire(); the publisher's
	 * writes of @t are done. */
	MG_TSAN_ACQUIRE(t);
	free(t);
}

/* Free @old after a grace period, from any thread but a registered reader
 * that is offline (see the essay above). */
static void
retire(struct mg_routing *old)
{
	bool online = urcu_qsbr_read_ongoing();

	if (!online)
		mg_rcu_register();
	/* ORDER(route.R6): pairs with route.A6 in free_version(); call_rcu's
	 * queue orders our writes of @old before its free, TSan sees none
	 * of it. */
	MG_TSAN_RELEASE(old);
	/* liburcu's own accesses (the queue, its allocations, handed to the
	 * call_rcu thread) unchecked, as in mg_rcu_quiescent(). */
	MG_TSAN_IGNORE_BEGIN();
	urcu_qsbr_call_rcu(&old->rcu, free_version);
	MG_TSAN_IGNORE_END();
	if (!online)
		mg_rcu_unregister();
}

/* Build a version from base + moves and publish it.  Called locked. */
static int
publish(struct mg_router *r)
{
	struct mg_router_ctl *c = r->ctl;
	uint32_t b, i, nbins = c->nbins, nent = 0, at = 0;
	struct mg_route_move *mv;
	struct mg_route_ent *tl;
	struct mg_routing *t, *old;
	size_t bytes;

	memset(c->scratch, 0, sizeof(*c->scratch) * nbins);
	for (i = 0; i < c->nmoves; i++)
		c->scratch[c->moves[i].bin]++;
	for (b = 0; b < nbins; b++)
		nent += c->scratch[b] ? c->scratch[b] + 1 : 0;
	bytes = sizeof(*t) + sizeof(t->route[0]) * nbins +
		sizeof(*mv) * c->nmoves + sizeof(*tl) * nent;
	t = malloc(bytes);
	if (!t)
		return -ENOMEM;
	mv = (struct mg_route_move *)(void *)(t->route + nbins);
	tl = (struct mg_route_ent *)(void *)(mv + c->nmoves);
	_Static_assert(_Alignof(struct mg_route_move) <= 8 &&
			       _Alignof(struct mg_route_ent) <= 8,
		       "version layout");
	t->nbins = nbins;
	t->nworkers = c->nworkers;
	t->version = ++c->version;
	t->nmoves = c->nmoves;
	t->moves = mv;
	t->timeline = tl;
	memcpy(mv, c->moves, sizeof(*mv) * c->nmoves);
	/* Timelines: [base owner from 0] then each move, in id (= time)
	 * order; scratch[b] becomes the next free entry of b's timeline. */
	for (b = 0; b < nbins; b++) {
		uint32_t k = c->scratch[b];

		if (!k) {
			t->route[b] = c->base[b];
			continue;
		}
		t->route[b] = MG_ROUTE_TIMELINE | at;
		tl[at] = (struct mg_route_ent){0, c->base[b], 0};
		for (i = 1; i <= k; i++)
			tl[at + i].last = i == k;
		c->scratch[b] = at + 1;
		at += k + 1;
	}
	for (i = 0; i < c->nmoves; i++) {
		struct mg_route_ent *e = &tl[c->scratch[c->moves[i].bin]++];

		e->time = c->moves[i].time;
		e->worker = c->moves[i].to;
	}
	old = r->cur;
	/* ORDER(route.R4): pairs with route.A4 in mg_router_read(); without
	 * it a reader could see @t before its contents.  liburcu's store is
	 * a fence and a volatile store, which TSan takes for a plain write
	 * racing with the readers' loads: it is hidden from it, and the edge
	 * it carries annotated. */
	MG_TSAN_RELEASE(&r->cur);
	MG_TSAN_IGNORE_BEGIN();
	rcu_assign_pointer(r->cur, t);
	MG_TSAN_IGNORE_END();
	retire(old);
	return 0;
}

int
mg_router_create(struct mg_router **out, uint32_t nbins, unsigned nworkers)
{
	struct mg_router_ctl *c;
	struct mg_router *r;
	struct mg_routing *t;
	uint32_t b;

	if (!mg_is_pow2(nbins) || nbins < (1u << MG_BINS_LOG2_MIN) ||
	    nbins > (1u << MG_BINS_LOG2_MAX) || nworkers == 0 ||
	    nworkers > UINT16_MAX)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	c = calloc(1, sizeof(*c));
	t = malloc(sizeof(*t) + sizeof(t->route[0]) * nbins);
	if (c) {
		c->base = malloc(sizeof(*c->base) * nbins);
		c->scratch = malloc(sizeof(*c->scratch) * nbins);
	}
	if (!r || !c || !t || !c->base || !c->scratch) {
		if (c) {
			free(c->base);
			free(c->scratch);
		}
		free(r);
		free(c);
		free(t);
		return -ENOMEM;
	}
	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_init(&c->lock, NULL);
	c->nbins = nbins;
	c->nworkers = nworkers;
	c->next_id = 1;
	c->version = 1;
	memset(t, 0, sizeof(*t));
	t->nbins = nbins;
	t->nworkers = nworkers;
	t->version = 1;
	for (b = 0; b < nbins; b++) {
		c->base[b] = (uint16_t)(b % nworkers);
		t->route[b] = b % nworkers;
	}
	r->cur = t; /* not shared yet: no publication barrier needed */
	r->ctl = c;
	atomic_init(&r->frontier, 0);
	*out = r;
	return 0;
}

void
mg_router_destroy(struct mg_router *r)
{
	struct mg_router_ctl *c;
	uint32_t i;

	if (!r)
		return;
	c = r->ctl;
	/* Old versions' callbacks have run.  Any thread may wait so (see
	 * the essay). */
	MG_TSAN_IGNORE_BEGIN(); /* liburcu's own, as in retire() */
	urcu_qsbr_barrier();
	MG_TSAN_IGNORE_END();
	free(r->cur);
	for (i = 0; i < c->nsteps; i++)
		free(c->steps[i]);
	free(c->steps);
	free(c->moves);
	free(c->base);
	free(c->scratch);
	pthread_mutex_destroy(&c->lock);
	free(c);
	free(r);
}

/*
 * Fold the moves whose step completed into base, in id order, stopping per
 * bin at its first move not yet done: a later step of a chain can complete
 * before an earlier one (a slow acquirer), and folding it first would make
 * base the chain's end while the earlier move still routes from its time
 * on -- records would go to a worker that no longer holds the bin (found
 * by the model, tests/model/handoff.pml, FOLD_ANY_ORDER).  scratch marks
 * the bins with a move kept.  Called locked.
 */
static bool
fold(struct mg_router_ctl *c)
{
	uint32_t i, keep = 0;

	for (i = 0; i < c->nmoves; i++)
		c->scratch[c->moves[i].bin] = 0;
	for (i = 0; i < c->nmoves; i++) {
		struct mg_route_move *m = &c->moves[i];

		if (!c->scratch[m->bin] && mg_step_complete(m->step)) {
			c->base[m->bin] = m->to;
		} else {
			c->scratch[m->bin] = 1;
			c->moves[keep++] = *m;
		}
	}
	if (keep == c->nmoves)
		return false;
	c->nmoves = keep;
	return true;
}

static int
grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
	uint32_t n = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, (size_t)n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

/*
 * Check what does not depend on the frontier, in one pass over the bins
 * and the moves (an all-at-once move of 2^20 bins is one step of 2^20
 * moves): scratch[b] is BUSY for a bin with a listed move, and 2 + s once
 * step s moves it.  Called locked, after fold().
 */
static int
check_steps(struct mg_router_ctl *c, const struct mg_step *steps, uint32_t n,
	    bool asap)
{
	enum { FREE, BUSY };
	uint32_t s, i;

	if (!steps || n == 0 || n > UINT32_MAX - 2)
		return -EINVAL;
	memset(c->scratch, FREE, sizeof(*c->scratch) * c->nbins);
	for (i = 0; i < c->nmoves; i++)
		c->scratch[c->moves[i].bin] = BUSY;
	for (s = 0; s < n; s++) {
		if ((!asap || s) && steps[s].time >= MG_TIME_LIMIT)
			return -EINVAL;
		if (s && (!asap || s > 1) && steps[s].time <= steps[s - 1].time)
			return -EINVAL;
		for (i = 0; i < steps[s].nmoves; i++) {
			const struct mg_move *m = &steps[s].moves[i];

			if (m->bin >= c->nbins || m->worker >= c->nworkers)
				return -EINVAL;
			if (c->scratch[m->bin] == BUSY)
				return -EBUSY;
			if (c->scratch[m->bin] == 2 + s)
				return -EINVAL; /* twice in one step */
			c->scratch[m->bin] = 2 + s;
		}
	}
	return 0;
}

/*
 * Set CLAIM on the control frontier if @t (the first step's time; with
 * @asap, none) is not behind it.  Called locked: submissions are the only
 * claimers, so CLAIM is clear here.  *@f receives the frontier.
 * Return: 0; -ETIME if @t is behind the frontier.
 */
static int
claim(struct mg_router *r, uint64_t t, bool asap, uint64_t *f)
{
	uint64_t w = atomic_load_explicit(&r->frontier, memory_order_relaxed);

	do {
		MG_ASSERT(!(w & MG__CTL_CLAIM));
		*f = mg__ctl_decode(w);
		if (*f == MG_TIME_MAX || (!asap && t < *f))
			return -ETIME;
		/* Acquire: a raise that moved the frontier is ordered before
		 * what we publish; relaxed would do, the mutex orders the
		 * rest. */
	} while (!atomic_compare_exchange_weak_explicit(
		&r->frontier, &w, w | MG__CTL_CLAIM, memory_order_acquire,
		memory_order_relaxed));
	return 0;
}

static void
unclaim(struct mg_router *r, uint64_t f)
{
	/* ORDER(route.R1): pairs with route.A1 in mg_router_frontier(); the
	 * table published under the claim is visible to whoever reads a
	 * frontier at or past this one.  No raise can have moved it. */
	atomic_store_explicit(&r->frontier,
			      f >= MG_TIME_LIMIT ? MG_TIME_LIMIT : f,
			      memory_order_release);
}

int
mg_router_submit(struct mg_router *r, const struct mg_step *steps, uint32_t n,
		 uint32_t nops, bool asap, struct mg_step_ctl **ctl,
		 uint64_t *first)
{
	struct mg_router_ctl *c = r->ctl;
	uint32_t s, i, total = 0, old_nmoves, old_nsteps;
	uint64_t old_id, f = 0, t0;
	int err;

	pthread_mutex_lock(&c->lock);
	fold(c);
	err = check_steps(c, steps, n, asap);
	for (s = 0; !err && s < n; s++)
		total += steps[s].nmoves;
	if (!err)
		err = grow((void **)&c->moves, &c->cap_moves, c->nmoves + total,
			   sizeof(*c->moves));
	if (!err)
		err = grow((void **)&c->steps, &c->cap_steps, c->nsteps + n,
			   sizeof(*c->steps));
	if (!err)
		err = claim(r, steps[0].time, asap, &f);
	t0 = asap ? f : steps[0].time;
	if (!err && n > 1 && steps[1].time <= t0) {
		unclaim(r, f);
		err = -ETIME; /* asap came later than the next step */
	}
	if (err) {
		pthread_mutex_unlock(&c->lock);
		return err;
	}
	old_nmoves = c->nmoves;
	old_nsteps = c->nsteps;
	old_id = c->next_id;
	/* scratch[b]: b's owner after every move listed so far */
	for (i = 0; i < c->nbins; i++)
		c->scratch[i] = c->base[i];
	for (i = 0; i < c->nmoves; i++)
		c->scratch[c->moves[i].bin] = c->moves[i].to;
	for (s = 0; s < n; s++) {
		struct mg_step_ctl *sc = calloc(1, sizeof(*sc));
		uint64_t t = s ? steps[s].time : t0;
		uint32_t moved = 0;

		if (!sc) {
			err = -ENOMEM;
			break;
		}
		c->steps[c->nsteps++] = sc;
		sc->time = t;
		for (i = 0; i < steps[s].nmoves; i++) {
			const struct mg_move *m = &steps[s].moves[i];
			uint32_t from = c->scratch[m->bin];

			if (from == m->worker)
				continue; /* already there: a no-op */
			c->scratch[m->bin] = m->worker;
			c->moves[c->nmoves++] = (struct mg_route_move){
				.id = c->next_id++,
				.time = t,
				.bin = m->bin,
				.from = (uint16_t)from,
				.to = (uint16_t)m->worker,
				.step = sc,
			};
			moved++;
		}
		sc->nmoves = moved;
		atomic_init(&sc->remaining, moved * nops);
		atomic_init(&sc->done_ns, 0);
		atomic_init(&sc->bytes, 0);
		if (ctl)
			ctl[s] = sc;
	}
	if (!err)
		err = publish(r);
	unclaim(r, f);
	if (err) { /* undo: nothing was published */
		while (c->nsteps > old_nsteps)
			free(c->steps[--c->nsteps]);
		c->nmoves = old_nmoves;
		c->next_id = old_id;
	} else if (first) {
		*first = t0;
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}

bool
mg_router_raise(struct mg_router *r, uint64_t f)
{
	uint64_t w = atomic_load_explicit(&r->frontier, memory_order_relaxed);

	if (f > MG_TIME_LIMIT)
		f = MG_TIME_LIMIT;
	for (;;) {
		if ((w & ~MG__CTL_CLAIM) >= f)
			return true;
		if (w & MG__CTL_CLAIM)
			return false; /* a submission holds it: retry later */
		/* ORDER(route.R2): pairs with route.A1 in
		 * mg_router_frontier(); it continues the release sequence of
		 * route.R1, so tables published before are visible to whoever
		 * reads the raised frontier.  Without it a router could read a
		 * table too old for the time it routes at. */
		if (atomic_compare_exchange_weak_explicit(&r->frontier, &w, f,
							  memory_order_release,
							  memory_order_relaxed))
			return true;
	}
}

void
mg_router_advance(struct mg_router *r, uint64_t f)
{
	struct mg_router_ctl *c = r->ctl;
	bool ok;

	pthread_mutex_lock(&c->lock);
	if (fold(c))
		publish(r); /* best effort: on -ENOMEM the old version is
			       still right, only slower for folded bins */
	/* Locked: no submission holds the frontier, so the raise succeeds. */
	ok = mg_router_raise(r, f);
	MG_ASSERT(ok);
	(void)ok;
	pthread_mutex_unlock(&c->lock);
}

void
mg_router_settled(struct mg_router *r, uint16_t *out)
{
	struct mg_router_ctl *c = r->ctl;

	pthread_mutex_lock(&c->lock);
	fold(c); /* as a submission would: base is then what settled */
	memcpy(out, c->base, sizeof(*out) * c->nbins);
	pthread_mutex_unlock(&c->lock);
}

void
mg_router_final(struct mg_router *r, uint16_t *out)
{
	struct mg_router_ctl *c = r->ctl;
	uint32_t i;

	pthread_mutex_lock(&c->lock);
	memcpy(out, c->base, sizeof(*out) * c->nbins);
	for (i = 0; i < c->nmoves; i++)
		out[c->moves[i].bin] = c->moves[i].to;
	pthread_mutex_unlock(&c->lock);
}
