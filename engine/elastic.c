/*
 * elastic.c - parking and waking workers (mg_dataflow_set_active()).
 *
 * A dataflow keeps its W logical workers -- every channel, per-worker
 * source share, producer binding and frontier stays as built -- and varies
 * the threads that run them.  Lowering the active count to k moves every
 * bin of workers k..W-1 onto workers 0..k-1 with a normal migration (so
 * outputs are the migration protocol's: identical), and asks those workers
 * to park.  A worker parks only once it holds no bin and has no move
 * pending (mg__elastic_park_due()); its thread then hands its rounds over
 * and sleeps on a futex, using no CPU.  What is left of the worker --
 * frontiers to forward, its share of a source, producers bound to it,
 * records an exchange sends it -- is run by the active threads: each
 * round, every active thread claims the parked workers no other thread is
 * running and runs one round of each (host_parked() in worker.c).  So no
 * frontier ever waits on a sleeping thread, and nothing is lost or
 * reordered: a worker's rounds run one at a time, in order, whichever
 * thread runs them.
 *
 * The hand-overs, on the worker's `run` word (enum run_state):
 *
 *   set_active:   OWN -> PARK_REQ (CAS); PARK_REQ -> OWN, or HOSTED -> OWN
 *                 and a wake (CAS, retried while a host holds CLAIMED)
 *   own thread:   PARK_REQ -> HOSTED (CAS, release) once empty, then sleep
 *                 until OWN, PARK_REQ again or DONE (acquire) or the run
 *                 halts
 *   host:         HOSTED -> CLAIMED (CAS, acquire), one round, -> HOSTED or
 *                 DONE (release)
 *
 * The sleep is an event count: the thread reads park_seq, checks `run`,
 * and sleeps only while park_seq is unchanged; whoever changes `run` for
 * it bumps park_seq and wakes it.  Raising k wakes the parked workers and
 * moves bins back onto them, again by a migration.  Both migrations come
 * from mg_balance_plan() with the workers from k on inactive: the fewest
 * bins that bring every active worker within 2 % of the mean load.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_pvt.h"

/* set_active's plan: every active worker within this of the mean -- near
 * capacity, a worker woken at 1.1x the mean was over it, and the balancer
 * then moved a few hundred bins more, a second hiccup (56 ms at 16 M
 * records/s); a handoff costs little more for more bins. */
#define ELASTIC_THRESHOLD 0.02

bool
mg__elastic_park_due(struct worker *wk)
{
	struct mg_dataflow *df = wk->df;

	/* Relaxed: a request polled once a round; the CAS in
	 * mg__elastic_park() decides. */
	if (atomic_load_explicit(&df->pub[wk->w].run, memory_order_relaxed) !=
	    RUN_PARK_REQ)
		return false;
	for (unsigned i = 0; i < df->nnodes; i++) {
		const struct node *n = df->nodes[i];
		const struct stateful_inst *si;

		if (n->kind != STATEFUL || !n->inst.st[wk->w].held)
			continue;
		si = &n->inst.st[wk->w];
		if (si->nheld || si->in.n || si->out.n)
			return false;
	}
	return true;
}

uint32_t
mg__elastic_park(struct worker *wk)
{
	struct mg_dataflow *df = wk->df;
	struct worker_pub *pub = &df->pub[wk->w];
	uint32_t req = RUN_PARK_REQ, seq, s;

	atomic_fetch_add_explicit(&df->nhosted, 1, memory_order_relaxed);
	/* ORDER(elastic.R1): pairs with elastic.A2 in host_parked()
	 * (worker.c): this thread's rounds are visible to the first host. */
	if (!atomic_compare_exchange_strong_explicit(
		    &pub->run, &req, RUN_HOSTED, memory_order_release,
		    memory_order_relaxed)) {
		/* the request was withdrawn meanwhile */
		atomic_fetch_sub_explicit(&df->nhosted, 1,
					  memory_order_relaxed);
		return RUN_OWN;
	}
	mg_rcu_offline();
	for (;;) {
		seq = atomic_load_explicit(&pub->park_seq,
					   memory_order_seq_cst);
		/* ORDER(elastic.A1): pairs with elastic.R3 in unpark() and
		 * elastic.R2 in host_parked(): the last host's round is
		 * visible before this thread runs the worker again (also
		 * through park()'s relaxed CAS, an RMW: it continues the
		 * release sequence). */
		s = atomic_load_explicit(&pub->run, memory_order_acquire);
		/* Not hosted any more: its own again -- OWN, or PARK_REQ when
		 * a set_active woke it and the next asked it to park before
		 * this thread ran (it parks again once due; sleeping on would
		 * leave it unhosted and unwoken: the run hangs). */
		if ((s != RUN_HOSTED && s != RUN_CLAIMED) ||
		    atomic_load_explicit(&df->halt, memory_order_relaxed))
			break;
		mg_futex_wait(&pub->park_seq, seq, UINT64_MAX);
	}
	mg_rcu_online();
	return s;
}

static void
wake(struct worker_pub *pub)
{
	atomic_fetch_add_explicit(&pub->park_seq, 1, memory_order_seq_cst);
	mg_futex_wake(&pub->park_seq, 1);
}

void
mg__elastic_wake_all(struct mg_dataflow *df)
{
	if (!df->pub)
		return;
	for (unsigned w = 0; w < df->cfg.workers; w++)
		wake(&df->pub[w]);
}

/* Worker @w runs on its own thread again (or has ended). */
static void
unpark(struct mg_dataflow *df, unsigned w)
{
	struct worker_pub *pub = &df->pub[w];
	struct timespec ts = {0, 50000};

	for (;;) {
		uint32_t s =
			atomic_load_explicit(&pub->run, memory_order_relaxed);

		if (s == RUN_OWN || s == RUN_DONE)
			return;
		if (s == RUN_CLAIMED) { /* a host is in one of its rounds */
			if (atomic_load_explicit(&df->halt,
						 memory_order_relaxed))
				return;
			nanosleep(&ts, NULL);
			continue;
		}
		/* ORDER(elastic.A3/R3): acquires the last host's round
		 * (elastic.R2) and releases it to the worker's thread
		 * (elastic.A1), a release sequence through the CAS. */
		if (atomic_compare_exchange_strong_explicit(
			    &pub->run, &s, RUN_OWN, memory_order_acq_rel,
			    memory_order_relaxed)) {
			if (s == RUN_HOSTED) {
				atomic_fetch_sub_explicit(&df->nhosted, 1,
							  memory_order_relaxed);
				wake(pub);
			}
			return;
		}
	}
}

/* Ask worker @w to park once it is empty (no-op if it is parked, asked
 * already, or has ended). */
static void
park(struct mg_dataflow *df, unsigned w)
{
	uint32_t own = RUN_OWN;

	atomic_compare_exchange_strong_explicit(
		&df->pub[w].run, &own, RUN_PARK_REQ, memory_order_relaxed,
		memory_order_relaxed);
}

/*
 * The move set that empties workers @k.. and evens out 0..@k-1: planned
 * from the bins' rates (plus one record/s each, so that bins without load
 * -- or a dataflow that counts nothing -- spread by number), bins of
 * unfinished migrations pinned.  Return: 0 and *@target (nbins entries,
 * malloc'd) and *@moves; -EBUSY if a pinned bin would stay on a worker
 * that parks; -ENOMEM.
 */
static int
plan_active(struct mg_dataflow *df, unsigned k, uint16_t **target,
	    uint32_t *moves)
{
	uint32_t b, nbins = 1u << df->nbins_log2;
	unsigned W = df->cfg.workers;
	struct mg_bin_stats *bs = malloc(sizeof(*bs) * nbins);
	double *load = malloc(sizeof(*load) * nbins);
	double *cost = malloc(sizeof(*cost) * nbins);
	uint16_t *owner = malloc(sizeof(*owner) * nbins);
	uint8_t *pinned = malloc(nbins), *active = calloc(W, 1);
	struct mg_balance_result r;
	int err = -ENOMEM;

	*target = NULL;
	if (!bs || !load || !cost || !owner || !pinned || !active)
		goto out;
	if (df->cfg.no_stats || mg_dataflow_bin_stats(df, bs)) {
		mg_dataflow_owners(df, owner);
		for (b = 0; b < nbins; b++)
			bs[b] = (struct mg_bin_stats){.owner = owner[b]};
	}
	for (b = 0; b < nbins; b++) {
		load[b] = bs[b].rate + 1;
		cost[b] = (double)bs[b].state_bytes + 4096;
		owner[b] = (uint16_t)bs[b].owner;
	}
	for (unsigned w = 0; w < k; w++)
		active[w] = 1;
	mg__migrations_busy(df, pinned);
	err = mg_balance_plan(
		&(struct mg_balance_input){
			.nbins = nbins,
			.nworkers = W,
			.load = load,
			.cost = df->cfg.mode == MG_COPY ? cost : NULL,
			.owner = owner,
			.pinned = pinned,
			.active = active,
			.threshold = ELASTIC_THRESHOLD,
		},
		&r);
	if (err)
		goto out;
	for (uint32_t i = 0; i < r.nmoves; i++)
		owner[r.moves[i].bin] = (uint16_t)r.moves[i].worker;
	for (b = 0; b < nbins; b++)
		if (owner[b] >= k)
			err = -EBUSY; /* pinned on a worker that parks */
	*moves = r.nmoves;
	mg_balance_result_free(&r);
	if (!err) {
		*target = owner;
		owner = NULL;
	}
out:
	free(bs);
	free(load);
	free(cost);
	free(owner);
	free(pinned);
	free(active);
	return err;
}

int
mg__set_active(struct mg_dataflow *df, unsigned k, struct mg_migration **out)
{
	unsigned w, W, was;
	uint16_t *target = NULL;
	uint32_t moves = 0;
	int err = 0;

	if (out)
		*out = NULL;
	if (!df || k < 1 || k > df->cfg.workers ||
	    !mg_dataflow_accepts_migrations(df))
		return -EINVAL;
	W = df->cfg.workers;
	pthread_mutex_lock(&df->elastic_lock);
	was = atomic_load_explicit(&df->active, memory_order_relaxed);
	/* wake first, so the bins that move back find their threads */
	for (w = 0; w < k; w++)
		unpark(df, w);
	if (df->nmigratable)
		err = plan_active(df, k, &target, &moves);
	if (!err && moves)
		err = mg__migrate(df, MG_ALL_AT_ONCE, target, MG_TIME_ASAP, 0,
				  k, out);
	free(target);
	if (err) { /* as it was: park again what was parked */
		for (w = was; w < k; w++)
			park(df, w);
	} else {
		for (w = k; w < W; w++)
			park(df, w);
		atomic_store_explicit(&df->active, k, memory_order_relaxed);
	}
	pthread_mutex_unlock(&df->elastic_lock);
	return err;
}

int
mg_dataflow_set_active(struct mg_dataflow *df, unsigned k)
{
	return mg__set_active(df, k, NULL);
}

unsigned
mg_dataflow_active(const struct mg_dataflow *df)
{
	return df ? atomic_load_explicit(&df->active, memory_order_relaxed) : 0;
}

bool
mg_dataflow_worker_parked(const struct mg_dataflow *df, unsigned w)
{
	uint32_t s;

	if (!df || w >= df->cfg.workers)
		return false;
	s = atomic_load_explicit(&df->pub[w].run, memory_order_relaxed);
	return s == RUN_HOSTED || s == RUN_CLAIMED;
}
