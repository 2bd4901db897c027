/*
 * migrate.c - submitting migrations and driving them from the control
 * thread.
 *
 * A migration is a list of steps.  A plan's steps carry absolute times and
 * are submitted to the router at once.  A strategy's steps are move sets:
 * all-at-once has one; fluid and batched are issued one at a time by the
 * control thread, each once the previous one completed, `gap` epochs after
 * the earliest time the control frontier allows.
 *
 * The list of migrations is shared by the application threads (which add)
 * and the control thread (which issues steps): both are control plane, so
 * the dataflow's mutex guards it, and a migration's steps.  Progress fields
 * a reader may poll and the `closing` flag are atomics.
 *
 * A handle stays valid until destroy, but a finished migration keeps only
 * its final progress: reap() frees its steps and moves it to the
 * `finished` list, so a run that migrates every second for hours (a
 * balancer) holds a few dozen bytes per migration, and the walks over
 * unfinished ones stay short.
 *
 * Waiting.  mg_migration_wait() sleeps on the dataflow's `wake_seq` (the
 * probes' futex word, probe.c) counted as a migration waiter, not a probe
 * waiter, so that it does not make the workers bump and wake as their
 * probes move (it may still wake with a probe waiter's wake-ups, and look
 * again):
 *
 *   waiter:   mig_waiters++; seq = wake_seq; fence (seq_cst); check done,
 *             error, exit; futex_wait(seq)
 *   notifier: the end; fence (seq_cst); if mig_waiters: wake_seq++,
 *             futex_wake(all) -- the probes' mg__wake_counted()
 *
 * The notifiers: the worker whose handoff completes a step (a migration
 * is done to its readers once its steps are complete, summarize()), so
 * that a wait ends with its last step, not at the control thread's next
 * tick; reap(), which marks it done (a step with no handoff, done at its
 * time); and each worker as it exits.  Either the waiter's check sees the
 * end (the run failed, the workers gone), or the notifier sees it counted
 * and wakes it; a halt always bumps wake_seq.  Once the workers have
 * exited, a waiter reaps: what has not ended then never will (-ECANCELED).
 * Nobody waiting costs a notifier a fence and a load, once per step.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_pvt.h"

struct mg_migration {
	struct mg_migration *next;
	struct mg_dataflow *df;
	struct mg_step *steps;	  /* times filled in as issued */
	struct mg_step_ctl **ctl; /* per step, once issued */
	uint32_t nsteps;
	bool step_by_step; /* fluid/batched: issue after completion */
	uint64_t gap;
	bool asap;		 /* step 0 at the control frontier */
	_Atomic uint32_t issued; /* steps handed to the router */
	_Atomic bool done;
	_Atomic uint64_t end_ns;
	struct mg_migration_progress final; /* once done; steps freed */
};

static bool
running(const struct mg_dataflow *df)
{
	/* Acquire: pairs with the release in mg_dataflow_start(). */
	return atomic_load_explicit(&df->running, memory_order_acquire) &&
	       !atomic_load_explicit(&df->halt, memory_order_relaxed);
}

/* The epoch the most advanced open source is at (MG_TIME_MAX: none open). */
static uint64_t
sources_front(const struct mg_dataflow *df)
{
	uint64_t front = MG_TIME_MAX;
	unsigned i, w;

	for (i = 0; i < df->nnodes; i++) {
		const struct node *n = df->nodes[i];

		if (n->kind != SOURCE || !n->inst.source)
			continue;
		for (w = 0; w < df->cfg.workers; w++) {
			uint64_t p = atomic_load_explicit(
				&n->inst.source[w].progress,
				memory_order_relaxed);

			/* closed (MG_TIME_MAX): no say */
			if (p != MG_TIME_MAX &&
			    (front == MG_TIME_MAX || p > front))
				front = p;
		}
	}
	return front;
}

static uint64_t
clock_epoch(const struct mg_dataflow *df)
{
	return (mg_now_ns() - df->start_ns) / df->cfg.epoch_ns;
}

/*
 * The control frontier to advance to: lead epochs ahead of the clock -- or
 * of the data, when every open source is behind the clock (the workers are
 * over their capacity, or catching up).  A frontier seconds ahead of the
 * data would put a move at MG_TIME_ASAP (the balancer's) seconds after the
 * records now being made, all of which would still go to the old owners.
 * The most advanced source counts, so none waits for the frontier (and
 * sources raise it for their records themselves: worker.c, source_step);
 * no source runs far ahead of its slowest share.
 */
uint64_t
mg__ctl_target(const struct mg_dataflow *df)
{
	uint64_t t = clock_epoch(df), front = sources_front(df);

	return (front < t ? front : t) + df->ctl_lead_epochs;
}

uint64_t
mg__sources_lag_ns(const struct mg_dataflow *df)
{
	uint64_t t = clock_epoch(df), front = sources_front(df);

	return front < t ? (t - front) * df->cfg.epoch_ns : 0;
}

bool
mg_dataflow_accepts_migrations(const struct mg_dataflow *df)
{
	return df && running(df) &&
	       !atomic_load_explicit(&df->closing, memory_order_acquire);
}

uint64_t
mg_dataflow_time_ahead(const struct mg_dataflow *df, uint64_t ahead_ns)
{
	uint64_t t, f;

	if (!df)
		return 0;
	t = df->clocked ? mg__ctl_target(df) : 0;
	f = mg_router_frontier(df->router);

	/* Inputs raise the frontier as their records need. */
	t = f > t && f != MG_TIME_MAX ? f : t;
	return t + ahead_ns / df->cfg.epoch_ns + 1;
}

void
mg_dataflow_owners(const struct mg_dataflow *df, uint16_t *out)
{
	const struct mg_migration *m;

	if (!df || !out)
		return;
	if (mg__run_over(df)) {
		/* the end may have cut moves short: only what happened */
		mg_router_settled(df->router, out);
		return;
	}
	pthread_mutex_lock((pthread_mutex_t *)&df->lock);
	mg_router_final(df->router, out);
	/* steps of fluid/batched migrations not yet issued */
	for (m = df->migrations; m; m = m->next) {
		uint32_t k =
			atomic_load_explicit(&m->issued, memory_order_relaxed);

		for (; k < m->nsteps; k++)
			for (uint32_t i = 0; i < m->steps[k].nmoves; i++)
				out[m->steps[k].moves[i].bin] =
					(uint16_t)m->steps[k].moves[i].worker;
	}
	pthread_mutex_unlock((pthread_mutex_t *)&df->lock);
}

/* Every step issued and complete; *end the time the last one finished. */
static bool
complete(const struct mg_migration *m, uint64_t *end)
{
	uint32_t k = atomic_load_explicit(&m->issued, memory_order_acquire);
	uint64_t e = 0;

	if (k < m->nsteps)
		return false;
	for (uint32_t i = 0; i < k; i++) {
		if (!mg_step_complete(m->ctl[i]))
			return false;
		uint64_t d = atomic_load_explicit(&m->ctl[i]->done_ns,
						  memory_order_relaxed);
		/* A step with no handoff to wait for (a dataflow whose only
		 * binned operator is distribute) is done at its time. */
		uint64_t at = m->steps[i].time * m->df->cfg.epoch_ns;

		e = d > e ? d : e;
		e = at > e ? at : e;
	}
	*end = e;
	return true;
}

/* Mark or clear the bins a migration moves.  Locked. */
static void
reserve(struct mg_dataflow *df, const struct mg_migration *m, uint8_t on)
{
	for (uint32_t k = 0; k < m->nsteps; k++)
		for (uint32_t i = 0; i < m->steps[k].nmoves; i++)
			df->busy[m->steps[k].moves[i].bin] = on;
}

static void summarize(const struct mg_migration *m,
		      struct mg_migration_progress *p);

void
mg__migrations_wake(struct mg_dataflow *df)
{
	/* its fence and release (probe.F1, probe.R3) pair with mig.F2 and
	 * mig.A1 in mg_migration_wait() */
	mg__wake_counted(df, &df->mig_waiters);
}

/* Mark every complete migration done, free its bins, keep its final
 * progress only and move it to the finished list; wake mg_migration_wait()
 * if any ended.  Locked. */
static void
reap(struct mg_dataflow *df)
{
	struct mg_migration **pm = &df->migrations, *m;
	uint64_t end;
	bool ended = false;

	while ((m = *pm)) {
		if (!atomic_load_explicit(&m->done, memory_order_relaxed) &&
		    !complete(m, &end)) {
			pm = &m->next;
			continue;
		}
		if (!atomic_load_explicit(&m->done, memory_order_relaxed)) {
			atomic_store_explicit(&m->end_ns, end,
					      memory_order_relaxed);
			ended = true;
		}
		/* Release: progress readers see end_ns first. */
		atomic_store_explicit(&m->done, true, memory_order_release);
		reserve(df, m, 0);
		summarize(m, &m->final);
		mg_steps_free(m->steps, m->nsteps);
		free(m->ctl);
		m->steps = NULL;
		m->ctl = NULL;
		*pm = m->next;
		m->next = df->finished;
		df->finished = m;
	}
	if (ended)
		mg__migrations_wake(df);
}

void
mg__migrations_busy(struct mg_dataflow *df, uint8_t *out)
{
	uint32_t nbins = 1u << df->nbins_log2;

	pthread_mutex_lock(&df->lock);
	reap(df);
	if (df->busy)
		memcpy(out, df->busy, nbins);
	else
		memset(out, 0, nbins);
	pthread_mutex_unlock(&df->lock);
}

static void
migration_free(struct mg_migration *m)
{
	if (!m)
		return;
	mg_steps_free(m->steps, m->nsteps);
	free(m->ctl);
	free(m);
}

void
mg__migrations_free(struct mg_dataflow *df)
{
	struct mg_migration *m, *next;

	for (m = df->migrations; m; m = next) {
		next = m->next;
		migration_free(m);
	}
	for (m = df->finished; m; m = next) {
		next = m->next;
		migration_free(m);
	}
	df->migrations = df->finished = NULL;
	free(df->busy);
	df->busy = NULL;
}

/* Copy a plan's steps (owned by the caller) into ours. */
static int
copy_steps(const struct mg_plan *p, struct mg_step **out)
{
	struct mg_step *s = calloc(p->nsteps, sizeof(*s));
	uint32_t i;

	if (!s)
		return -ENOMEM;
	for (i = 0; i < p->nsteps; i++) {
		s[i] = p->steps[i];
		s[i].moves =
			malloc(sizeof(*s[i].moves) * (p->steps[i].nmoves + 1));
		if (!s[i].moves) {
			mg_steps_free(s, i);
			return -ENOMEM;
		}
		memcpy(s[i].moves, p->steps[i].moves,
		       sizeof(*s[i].moves) * p->steps[i].nmoves);
	}
	*out = s;
	return 0;
}

/* Hand steps [from, from + n) to the router.  Locked. */
static int
issue(struct mg_migration *m, uint32_t from, uint32_t n)
{
	struct mg_dataflow *df = m->df;
	bool asap = from == 0 && m->asap;
	uint64_t first;
	int err =
		mg_router_submit(df->router, m->steps + from, n,
				 df->nmigratable, asap, m->ctl + from, &first);

	if (!err && asap)
		m->steps[0].time = first;
	if (!err)
		atomic_store_explicit(&m->issued, from + n,
				      memory_order_release);
	return err;
}

static int
add(struct mg_dataflow *df, struct mg_migration *m, struct mg_migration **out)
{
	int err = 0;

	m->df = df;
	m->ctl = calloc(m->nsteps ? m->nsteps : 1, sizeof(*m->ctl));
	if (!m->ctl) {
		migration_free(m);
		return -ENOMEM;
	}
	atomic_init(&m->issued, 0);
	atomic_init(&m->done, m->nsteps == 0);
	atomic_init(&m->end_ns, 0);
	pthread_mutex_lock(&df->lock);
	if (atomic_load_explicit(&df->closing, memory_order_relaxed) ||
	    !running(df))
		err = -EINVAL; /* every input has ended: the run is ending */
	if (!err && !df->busy) {
		df->busy = calloc(1u << df->nbins_log2, 1);
		err = df->busy ? 0 : -ENOMEM;
	}
	if (!err)
		reap(df);
	for (uint32_t k = 0; !err && k < m->nsteps; k++)
		for (uint32_t i = 0; !err && i < m->steps[k].nmoves; i++)
			if (df->busy[m->steps[k].moves[i].bin])
				err = -EBUSY; /* in an unfinished migration */
	if (!err && m->nsteps)
		err = issue(m, 0, m->step_by_step ? 1 : m->nsteps);
	if (!err) {
		reserve(df, m, 1);
		m->next = df->migrations;
		df->migrations = m;
	}
	pthread_mutex_unlock(&df->lock);
	if (err) {
		migration_free(m);
		return err;
	}
	if (out)
		*out = m;
	return 0;
}

int
mg__migrate(struct mg_dataflow *df, enum mg_strategy s, const uint16_t *target,
	    uint64_t at, uint64_t gap, unsigned onto, struct mg_migration **out)
{
	uint32_t nbins, b;
	struct mg_migration *m;
	uint16_t *from;
	int err;

	if (!running(df) || !target || s > MG_BATCHED ||
	    (at >= MG_TIME_LIMIT && at != MG_TIME_ASAP))
		return -EINVAL;
	nbins = 1u << df->nbins_log2;
	for (b = 0; b < nbins; b++)
		if (target[b] >= onto)
			return -EINVAL; /* no such worker, or a parked one */
	m = calloc(1, sizeof(*m));
	from = malloc(sizeof(*from) * nbins);
	if (!m || !from) {
		free(m);
		free(from);
		return -ENOMEM;
	}
	mg_dataflow_owners(df,
			   from); /* as callers see it: unissued steps too */
	err = mg_strategy_steps(s, from, target, nbins, df->cfg.workers,
				&m->steps, &m->nsteps);
	free(from);
	if (err) {
		free(m);
		return err;
	}
	if (m->nsteps)
		m->steps[0].time = at == MG_TIME_ASAP ? 0 : at;
	m->asap = at == MG_TIME_ASAP;
	m->step_by_step = s != MG_ALL_AT_ONCE;
	m->gap = gap;
	return add(df, m, out);
}

int
mg_migrate(struct mg_dataflow *df, enum mg_strategy s, const uint16_t *target,
	   uint64_t at, uint64_t gap, struct mg_migration **out)
{
	int err;

	if (!df)
		return -EINVAL;
	/* Onto the active workers only (a parked one holds no bin), under
	 * elastic_lock: none parks while the migration is checked and
	 * submitted. */
	pthread_mutex_lock(&df->elastic_lock);
	err = mg__migrate(df, s, target, at, gap, mg_dataflow_active(df), out);
	pthread_mutex_unlock(&df->elastic_lock);
	return err;
}

int
mg_migrate_plan(struct mg_dataflow *df, const struct mg_plan *plan,
		struct mg_migration **out)
{
	struct mg_migration *m;
	unsigned active;
	int err;

	if (!df || !running(df) || !plan || !plan->nsteps ||
	    plan->nbins != (1u << df->nbins_log2) ||
	    plan->nworkers != df->cfg.workers)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->nsteps = plan->nsteps;
	err = copy_steps(plan, &m->steps);
	if (err) {
		free(m);
		return err;
	}
	pthread_mutex_lock(&df->elastic_lock); /* as in mg_migrate() */
	active = mg_dataflow_active(df);
	for (uint32_t k = 0; !err && k < m->nsteps; k++)
		for (uint32_t i = 0; !err && i < m->steps[k].nmoves; i++)
			if (m->steps[k].moves[i].worker >= active)
				err = -EINVAL; /* onto a parked worker */
	if (err)
		migration_free(m);
	else
		err = add(df, m, out);
	pthread_mutex_unlock(&df->elastic_lock);
	return err;
}

/* Control thread: issue next steps, mark finished migrations. */
void
mg__migrations_tick(struct mg_dataflow *df)
{
	struct mg_migration *m;

	pthread_mutex_lock(&df->lock);
	reap(df);
	for (m = df->migrations; m; m = m->next) {
		uint32_t k =
			atomic_load_explicit(&m->issued, memory_order_relaxed);
		uint64_t t;
		int err;

		if (atomic_load_explicit(&m->done, memory_order_relaxed) ||
		    atomic_load_explicit(&df->closing, memory_order_relaxed) ||
		    k == m->nsteps || !mg_step_complete(m->ctl[k - 1]))
			continue;
		t = m->steps[k - 1].time + 1;
		if (t < mg_router_frontier(df->router))
			t = mg_router_frontier(df->router);
		m->steps[k].time = t + m->gap;
		err = issue(m, k, 1);
		if (err == -ETIME) /* a raise overtook us: next tick */
			continue;
		if (err) /* reservations rule out conflicts: a real failure */
			mg__set_error(df, err,
				      "issuing a migration's next step");
	}
	pthread_mutex_unlock(&df->lock);
}

/*
 * Control thread: once every worker's sources have closed and every input
 * has ended, stop accepting migrations, then let the control frontier --
 * and with it every frontier -- run to the end.  Moves submitted before are
 * in the table, published before the frontier passes them (the lock orders
 * the two).
 */
void
mg__migrations_close(struct mg_dataflow *df)
{
	unsigned w;

	if (atomic_load_explicit(&df->closing, memory_order_relaxed))
		return;
	for (w = 0; w < df->cfg.workers; w++)
		if (!atomic_load_explicit(&df->pub[w].sources_closed,
					  memory_order_relaxed))
			return;
	if (!mg__inputs_ended(df))
		return;
	pthread_mutex_lock(&df->lock);
	atomic_store_explicit(&df->closing, true, memory_order_release);
	pthread_mutex_unlock(&df->lock);
	mg_router_advance(df->router, MG_TIME_MAX);
}

/* The progress of @m, from its steps.  Locked. */
static void
summarize(const struct mg_migration *m, struct mg_migration_progress *p)
{
	uint32_t k, i;

	memset(p, 0, sizeof(*p));
	k = atomic_load_explicit(&m->issued, memory_order_acquire);
	p->done = atomic_load_explicit(&m->done, memory_order_acquire);
	p->steps = m->nsteps;
	for (i = 0; i < m->nsteps; i++)
		p->bins += m->steps[i].nmoves;
	if (k) {
		p->first_time = m->steps[0].time;
		p->start_ns = m->steps[0].time * m->df->cfg.epoch_ns;
	}
	for (i = 0; i < k; i++) {
		if (!mg_step_complete(m->ctl[i]))
			continue;
		p->steps_done++;
		p->bins_moved += m->ctl[i]->nmoves;
		p->bytes_moved += atomic_load_explicit(&m->ctl[i]->bytes,
						       memory_order_relaxed);
	}
	if (!p->done)
		p->done = complete(m, &p->end_ns);
	else
		p->end_ns =
			atomic_load_explicit(&m->end_ns, memory_order_relaxed);
}

void
mg_migration_progress(const struct mg_migration *m,
		      struct mg_migration_progress *p)
{
	pthread_mutex_t *lock;

	memset(p, 0, sizeof(*p));
	if (!m)
		return;
	lock = &m->df->lock;
	pthread_mutex_lock(lock);
	if (m->steps || !m->nsteps)
		summarize(m, p);
	else
		*p = m->final;
	pthread_mutex_unlock(lock);
}

/* mg_migration_wait() sleeps at most this long at a time: a safety net
 * only, every way a wait can end wakes it (see the file comment), and a
 * wait that times out only looks again. */
#define WAIT_MAX_NS 1000000000ull

int
mg_migration_wait(struct mg_migration *m)
{
	struct mg_dataflow *df;
	struct mg_migration_progress p;
	int err = 0;

	if (!m)
		return -EINVAL;
	df = m->df;
	/* Relaxed: mig.F2 orders it before the checks. */
	atomic_fetch_add_explicit(&df->mig_waiters, 1, memory_order_relaxed);
	for (;;) {
		/* ORDER(mig.A1): pairs with probe.R3 in mg__wake_counted()
		 * (and the halt's seq_cst bump): a seq read after a wake-up
		 * comes with the end it announces. */
		uint32_t seq = atomic_load_explicit(&df->wake_seq,
						    memory_order_acquire);

		/* ORDER(mig.F2): pairs with probe.F1 in mg__wake_counted();
		 * without it the checks could run before our count is
		 * visible, and an end after them would wake nobody. */
		atomic_thread_fence(memory_order_seq_cst);
		mg_migration_progress(m, &p);
		if (p.done)
			break;
		err = atomic_load_explicit(&df->error, memory_order_relaxed);
		if (err)
			break;
		if (mg__workers_exited(df)) {
			/* Final now; it may have ended after the control
			 * thread's last look. */
			pthread_mutex_lock(&df->lock);
			reap(df);
			/* Relaxed: written under the lock we hold. */
			if (!atomic_load_explicit(&m->done,
						  memory_order_relaxed))
				err = -ECANCELED; /* the run ended first */
			pthread_mutex_unlock(&df->lock);
			break;
		}
		mg_futex_wait(&df->wake_seq, seq, WAIT_MAX_NS);
	}
	atomic_fetch_sub_explicit(&df->mig_waiters, 1, memory_order_relaxed);
	return err;
}
