/*
 * mg_router.h - the routing table: which worker owns each bin at each
 * logical time, published through liburcu QSBR, and the control frontier.
 *
 * THE TABLE
 *
 * One published, immutable version maps every bin to its owner *as a
 * function of time*: most bins have one owner (route[b] is the worker);
 * a bin with moves scheduled has a short timeline (route[b] has
 * MG_ROUTE_TIMELINE set and indexes `timeline`): its owner before the first
 * move, then each (time, new owner) in time order.  A version also lists the
 * moves it schedules (`moves`, by increasing id), so every worker learns of
 * the bins it must release or acquire from the table itself.
 *
 * Workers read the current version with mg_router_read() between two of
 * their quiescent states (they announce one per scheduling round and go
 * offline to sleep); a version stays valid until the reader's next quiescent
 * state.  The control side builds a new version, publishes it with
 * rcu_assign_pointer() and frees the old one after a grace period with
 * call_rcu(): the data path never blocks, never takes a lock.  liburcu
 * wants call_rcu()'s caller to be a registered, online QSBR thread; the
 * publishing functions register a caller that is not for the length of the
 * call (router.c), so they may be called from any thread except a
 * registered reader that is offline.
 *
 * THE CONTROL FRONTIER
 *
 * A record at time t may be routed only once the configuration at t is
 * final.  The control frontier promises: every move with time < it is in the
 * published table.  Sources read the frontier *before* they stamp records
 * (acquire) and never stamp a time at or past it; application inputs hold a
 * received batch back until the frontier has passed its time; routing reads
 * the table after that -- so whoever routes a record at time t sees every
 * move scheduled at or before t.
 *
 * The frontier lives in one word, `frontier`: bits 0..62 the frontier (a value of
 * MG_TIME_LIMIT or more stands for MG_TIME_MAX), bit 63 CLAIM.  Two kinds of
 * writers:
 *
 *   submit  (control side, under the router's mutex) sets CLAIM with a CAS
 *           that also checks its first step is not behind the frontier,
 *           publishes the table with the new moves, then clears CLAIM with
 *           a release store.  An ASAP submission takes the frontier it
 *           claimed as its first time.  While CLAIM is set the frontier
 *           cannot move, so no record can be routed at a time whose moves
 *           are half published.
 *   raise   (anyone: the control thread's clock, a worker holding a pushed
 *           record ahead of the frontier) moves the frontier up with a CAS
 *           that fails while CLAIM is set: the data path never waits for a
 *           submission, it retries the raise on its next round.
 *
 * A raise's CAS reads the claim-clearing store (or a later raise, all RMWs:
 * one release sequence), so a reader that acquires the raised frontier sees
 * every table published before it.  A move for a time the frontier has
 * passed is refused with -ETIME.
 *
 * Who writes what:
 *   cur                 the control side (under the router's mutex);
 *   frontier            as above;
 *   step completion     workers, atomically (mg_step_done);
 *   everything else     the control side.
 */
#ifndef MG_ROUTER_H
#define MG_ROUTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu/pointer.h>
#include <urcu/call-rcu.h>
#include <urcu/urcu-qsbr.h>

#include "migration/mg_plan.h"
#include "migration/mg_state.h"

#define MG_ROUTE_TIMELINE (1u << 31)

/* Completion of one submitted step, shared with the workers. */
struct mg_step_ctl {
	_Atomic uint32_t remaining; /* (bin, operator) handoffs left */
	uint32_t nmoves;
	uint64_t time;		  /* the step's logical time */
	_Atomic uint64_t done_ns; /* wall time the last handoff finished */
	_Atomic uint64_t bytes;	  /* state bytes handed over */
};

/* One scheduled move, as workers see it in a table version. */
struct mg_route_move {
	uint64_t id; /* increasing over the router's life */
	uint64_t time;
	uint32_t bin;
	uint16_t from, to;
	struct mg_step_ctl *step; /* completion: one per step */
};

/* A bin's timeline entry: owner from `time` on. */
struct mg_route_ent {
	uint64_t time;
	uint32_t worker;
	uint32_t last; /* 1 on the bin's last entry */
};

/* One immutable table version.  Read-only for readers. */
struct mg_routing {
	struct rcu_head rcu; /* private */
	uint32_t nbins;
	uint32_t nworkers;
	uint64_t version;
	uint32_t nmoves;
	const struct mg_route_move *moves; /* scheduled, by id */
	const struct mg_route_ent *timeline;
	uint32_t route[]; /* worker, or MG_ROUTE_TIMELINE | index */
};

struct mg_router_ctl; /* private control-side state */

/* The publication point.  Fields private; read through the inlines. */
struct mg_router {
	struct mg_routing *cur;	   /* RCU-protected */
	_Atomic uint64_t frontier; /* | MG__CTL_CLAIM, see above */
	struct mg_router_ctl *ctl;
};

/*
 * Create a router whose first version maps bin b to worker b mod @nworkers,
 * with the control frontier at 0.
 * Context: control thread; allocates.
 * Return: 0; -EINVAL if @nbins is not a power of two in 2^4..2^20 or
 * @nworkers is 0 or above 65535; -ENOMEM.
 */
int mg_router_create(struct mg_router **out, uint32_t nbins, unsigned nworkers);

/*
 * Free the router, its current version and every step record (takes @r).
 * No reader may run; waits for pending call_rcu callbacks (rcu_barrier:
 * from any thread not inside a call_rcu callback).
 */
void mg_router_destroy(struct mg_router *r);

/*
 * The current version.  Valid until the caller's next quiescent state.
 * Context: a registered, online QSBR thread; wait-free.
 * Ordering: consume/acquire (rcu_dereference), pairs with the release in
 * the publication, so the table's contents are visible.
 */
static inline const struct mg_routing *
mg_router_read(struct mg_router *r)
{
	const struct mg_routing *t = rcu_dereference(r->cur);

	/* ORDER(route.A4): pairs with route.R4 in publish(); without it the
	 * table's contents could be read before the publisher's writes to
	 * them.  rcu_dereference() is the acquire; TSan sees it, but not
	 * liburcu's store it pairs with, so the edge is annotated. */
	MG_TSAN_ACQUIRE(&r->cur);
	return t;
}

/*
 * A reader's QSBR states, liburcu's under thin wrappers that tell
 * ThreadSanitizer what it cannot see (numa/mg_base.h):
 *
 *   mg_rcu_register()    become a reader (online); from an unregistered thread
 *   mg_rcu_quiescent()   every version read so far is no longer used
 *   mg_rcu_offline()     the same, and none is read until mg_rcu_online()
 *   mg_rcu_online()      reads may start again
 *   mg_rcu_unregister()  stop being a reader (online or offline)
 *
 * A version retired by a publisher is freed (free_version() in router.c)
 * only once every registered reader has passed a quiescent state, been
 * offline or unregistered.  liburcu orders the reads before that with its
 * own barriers and counters; for TSan each of the three releases the
 * reader's reads (route.R5) to the free, which acquires them (route.A5).
 * liburcu's inline code (its counters, its futex word) is left unchecked:
 * its volatile accesses are its own protocol, which TSan would take for
 * races.
 * Context: the calling thread only, as liburcu's; never block except
 * register and unregister (liburcu's registry mutex).
 * Ordering: liburcu's; no more.
 */
extern char mg__rcu_grace; /* TSan's name for the grace period */

/* What every state that ends a thread's reads implies for TSan. */
static inline void
mg__rcu_release_reads(void)
{
	/* ORDER(route.R5): pairs with route.A5 in free_version(); without
	 * it TSan would take the free of a version for a race with the
	 * reads this thread made of it. */
	MG_TSAN_RELEASE(&mg__rcu_grace);
}

static inline void
mg_rcu_register(void)
{
	MG_TSAN_IGNORE_BEGIN();
	urcu_qsbr_register_thread();
	MG_TSAN_IGNORE_END();
}

static inline void
mg_rcu_unregister(void)
{
	mg__rcu_release_reads();
	MG_TSAN_IGNORE_BEGIN();
	urcu_qsbr_unregister_thread();
	MG_TSAN_IGNORE_END();
}

static inline void
mg_rcu_quiescent(void)
{
	mg__rcu_release_reads();
	MG_TSAN_IGNORE_BEGIN();
	urcu_qsbr_quiescent_state();
	MG_TSAN_IGNORE_END();
}

static inline void
mg_rcu_offline(void)
{
	mg__rcu_release_reads();
	MG_TSAN_IGNORE_BEGIN();
	urcu_qsbr_thread_offline();
	MG_TSAN_IGNORE_END();
}

static inline void
mg_rcu_online(void)
{
	MG_TSAN_IGNORE_BEGIN();
	urcu_qsbr_thread_online();
	MG_TSAN_IGNORE_END();
}

#define MG__CTL_CLAIM (1ull << 63)

/* The frontier a `frontier` word holds. */
static inline uint64_t
mg__ctl_decode(uint64_t w)
{
	w &= ~MG__CTL_CLAIM;
	return w >= MG_TIME_LIMIT ? MG_TIME_MAX : w;
}

/*
 * The control frontier: every move before it is in the published table.
 * Context: any thread; wait-free.
 * Ordering: acquire; pairs with route.R1 in the claim's release and
 * route.R2 in mg_router_raise(), so a table read after this sees
 * every move before the returned time.
 */
static inline uint64_t
mg_router_frontier(struct mg_router *r)
{
	/* ORDER(route.A1): pairs with route.R1 and route.R2. */
	return mg__ctl_decode(
		atomic_load_explicit(&r->frontier, memory_order_acquire));
}

/*
 * Raise the control frontier to at least @f (>= MG_TIME_LIMIT: to
 * MG_TIME_MAX) unless a submission holds it.
 * Context: any thread; lock-free, never blocks, never allocates: the data
 * path may call it.
 * Ordering: release (route.R2 in router.c).
 * Return: true if the frontier is at least @f afterwards; false if a
 * submission holds it below @f (try again later).
 */
bool mg_router_raise(struct mg_router *r, uint64_t f);

/* A bin with a timeline: its owner before the first move, then each move
 * in time order. */
static inline unsigned
mg__routing_owner_slow(const struct mg_routing *t, uint32_t bin, uint64_t time)
{
	const struct mg_route_ent *e =
		t->timeline + (t->route[bin] & ~MG_ROUTE_TIMELINE);
	uint32_t w = e->worker;

	while (!e->last) {
		e++;
		if (time < e->time)
			break;
		w = e->worker;
	}
	return w;
}

/* Owner of @bin for a record at @time in version @t. */
static inline unsigned
mg_routing_owner(const struct mg_routing *t, uint32_t bin, uint64_t time)
{
	uint32_t r = t->route[bin];

	if (MG_LIKELY(!(r & MG_ROUTE_TIMELINE)))
		return r;
	return mg__routing_owner_slow(t, bin, time);
}

/*
 * Schedule the steps of @steps[0..n) (absolute times, strictly increasing,
 * each below MG_TIME_LIMIT and >= the control frontier) as one submission,
 * for @nops stateful operators (each move completes when all of them have
 * handed the bin over).  With @asap, step 0's time is ignored: it takes the
 * control frontier at the moment of submission, and a later step whose time
 * is not after it is refused.  Moves to a bin's current owner are dropped.
 * Chains inside the submission are valid.
 * @ctl: receives, per step, a pointer to its completion record (borrowed:
 * valid until the router is destroyed); may be NULL.  @first: receives the
 * time step 0 took effect at (its own, or the frontier with @asap); may be
 * NULL.
 * Context: control side: any thread that is not a registered QSBR reader,
 * or one that is online (briefly registers the former); allocates,
 * publishes a new version, may block on the router's mutex and liburcu's
 * registry mutex (never on readers).
 * Return: 0; -ETIME if a step's time is behind the control frontier (too
 * late: retry with a later time or asap); -EINVAL (no steps, times not
 * increasing or not below MG_TIME_LIMIT, an unknown bin or worker, a bin
 * twice in a step); -EBUSY if a bin has an unfinished move from an earlier
 * submission; -ENOMEM.  On failure nothing is published.
 */
int mg_router_submit(struct mg_router *r, const struct mg_step *steps,
		     uint32_t n, uint32_t nops, bool asap,
		     struct mg_step_ctl **ctl, uint64_t *first);

/*
 * Fold completed steps into the base map (republishing if any), then raise
 * the control frontier to @f (never backwards).
 * Context: control side, as for mg_router_submit().
 * Ordering: release, as mg_router_raise().
 */
void mg_router_advance(struct mg_router *r, uint64_t f);

/* The owners every bin will have once all scheduled moves are done
 * (@out: nbins entries).  Context: control side. */
void mg_router_final(struct mg_router *r, uint16_t *out);

/* The owners every bin has by the moves that completed: a bin's moves in
 * order, up to its first that did not (@out: nbins entries).  For after a
 * run, when moves its end cut short never happen.  Context: control side. */
void mg_router_settled(struct mg_router *r, uint16_t *out);

/*
 * A worker finished one (bin, operator) handoff of the step @s at wall time
 * @now_ns, having received @bytes of state.  Context: any worker; lock-free.
 * Ordering: release, so the control side that sees remaining == 0 with
 * acquire also sees everything the worker did before.
 * Return: true if this was the step's last handoff (it is complete now).
 */
bool mg_step_done(struct mg_step_ctl *s, uint64_t now_ns, uint64_t bytes);

/* True once every handoff of @s is done (acquire). */
bool mg_step_complete(const struct mg_step_ctl *s);

#endif /* MG_ROUTER_H */
