/*
 * probe.c - completion: when is a time done at a point of the graph.
 *
 * A probe watches one stream.  A worker whose frontier of that stream moved
 * in a round publishes it in its own slot, pub[w] (release), then reads all
 * slots (acquire) and, if their minimum g is past the probe's `completed`,
 * raises `completed` to g with a CAS (monotone: several workers may race to
 * raise it; the highest wins, none lowers it).  A seq_cst fence between the
 * store and the reads (probe.F4) makes the last of the workers to publish
 * see every slot's newest value, so `completed` reaches the minimum of the
 * published frontiers; it is the earliest time some worker may still
 * produce at the probe, as of some recent round, and every time before it
 * is complete.
 *
 * Waiting.  A thread that waits for a time (mg_probe_wait, the control
 * thread calling completion callbacks, anyone waiting on the run to halt)
 * sleeps on the dataflow's futex word `wake_seq`:
 *
 *   waiter:  seq = wake_seq; waiters++ (F1: seq_cst); check; futex_wait(seq)
 *   worker:  completed = g;  fence (F1: seq_cst); if waiters: wake_seq++,
 *            futex_wake(all)
 *
 * Either the worker sees the waiter's count and wakes it, or the waiter's
 * check sees the new `completed` -- a wake-up cannot be lost.  The worker
 * pays a fence only when `completed` moves (about once per time), and a
 * system call only when someone sleeps (mg__wake_counted(), which
 * mg_migration_wait()'s wakers share with their own count).  Halting the
 * run bumps wake_seq and wakes everyone the same way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_pvt.h"

struct mg_probe *
mg_probe(struct mg_dataflow *df, struct mg_stream *in)
{
	struct mg_probe *p, **v;
	unsigned w;

	if (!df)
		return NULL;
	if (!in || ((struct stream *)in)->df != df || df->started)
		return (struct mg_probe *)mg__build_fail(df, -EINVAL);
	p = calloc(1, sizeof(*p));
	v = realloc(df->probes, sizeof(*v) * (df->nprobes + 1));
	if (v)
		df->probes = v;
	if (p)
		p->pub = mg_calloc_lines(df->cfg.workers, sizeof(*p->pub));
	if (!p || !v || !p->pub) {
		mg__probe_free(p);
		return (struct mg_probe *)mg__build_fail(df, -ENOMEM);
	}
	p->df = df;
	p->s = (struct stream *)in;
	for (w = 0; w < df->cfg.workers; w++)
		atomic_init(&p->pub[w].frontier, 0);
	atomic_init(&p->completed, 0);
	df->probes[df->nprobes++] = p;
	return p;
}

void
mg__probe_free(struct mg_probe *p)
{
	if (!p)
		return;
	free(p->pub);
	free(p);
}

void
mg__probes_publish(struct mg_dataflow *df, struct worker *wk)
{
	unsigned i, w, W = df->cfg.workers;
	bool moved = false;

	for (i = 0; i < df->nprobes; i++) {
		struct mg_probe *p = df->probes[i];
		uint64_t g = MG_TIME_MAX, f = mg__stream_frontier(p->s, wk->w),
			 c;

		/* Unchanged: nothing to publish, and the slot's line stays
		 * shared in the other workers' caches (a store every round
		 * bounced it between the CPUs: 3-8 ns a record at 8 M/s a
		 * worker).  Own slot: only this worker writes it. */
		if (f == atomic_load_explicit(&p->pub[wk->w].frontier,
					      memory_order_relaxed))
			continue;
		/* ORDER(probe.R1): pairs with probe.A1 below, in the other
		 * workers; what this worker did before (sinks, outputs) is
		 * visible to whoever completes the time. */
		atomic_store_explicit(&p->pub[wk->w].frontier, f,
				      memory_order_release);
		/* ORDER(probe.F4): pairs with itself in the other workers.
		 * Only a worker whose frontier moved scans now, so of two
		 * that publish at once one must see the other's new frontier
		 * (store buffering): otherwise both could raise `completed`
		 * to a stale minimum and, their frontiers then still, leave
		 * it there for good. */
		atomic_thread_fence(memory_order_seq_cst);
		for (w = 0; w < W; w++) {
			/* ORDER(probe.A1): pairs with probe.R1. */
			f = atomic_load_explicit(&p->pub[w].frontier,
						 memory_order_acquire);
			g = f < g ? f : g;
		}
		c = atomic_load_explicit(&p->completed, memory_order_relaxed);
		/* ORDER(probe.R2): pairs with probe.A2 in the readers; the
		 * release publishes what probe.A1 acquired. */
		while (g > c &&
		       !atomic_compare_exchange_weak_explicit(
			       &p->completed, &c, g, memory_order_release,
			       memory_order_relaxed))
			;
		moved |= g > c;
	}
	if (moved)
		mg__wake_counted(df, &df->waiters);
}

void
mg__wake_counted(struct mg_dataflow *df, _Atomic uint32_t *count)
{
	/* ORDER(probe.F1): pairs with ctl.F1, the fence in mg_probe_wait()
	 * (see the essay) and mig.F2 in mg_migration_wait(): without it the
	 * count could be read before the end it follows is visible, and a
	 * waiter whose check came before the end would sleep through it.
	 * Relaxed load: the fences order it. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(count, memory_order_relaxed))
		return;
	/* ORDER(probe.R3): pairs with mig.A1 in mg_migration_wait(): a
	 * waiter that reads the new seq and checks sees the end (a probe
	 * waiter's check acquires the frontier itself). */
	atomic_fetch_add_explicit(&df->wake_seq, 1, memory_order_release);
	mg_futex_wake(&df->wake_seq, INT32_MAX);
}

uint64_t
mg_probe_frontier(const struct mg_probe *p)
{
	/* ORDER(probe.A2): pairs with probe.R2. */
	return p ? atomic_load_explicit(&p->completed, memory_order_acquire)
		 : 0;
}

int
mg_probe_wait(struct mg_probe *p, uint64_t time, uint64_t timeout_ns)
{
	struct mg_dataflow *df;
	uint64_t start = mg_now_ns(), now;
	int err = 0;

	if (!p || time >= MG_TIME_LIMIT)
		return -EINVAL; /* no probe, or not a time: never complete */
	df = p->df;

	atomic_fetch_add_explicit(&df->waiters, 1, memory_order_relaxed);
	for (;;) {
		uint32_t seq = atomic_load_explicit(&df->wake_seq,
						    memory_order_acquire);

		/* ORDER(probe.F3): pairs with probe.F1/F2: counted as a
		 * waiter before the check, so a raise after it wakes us. */
		atomic_thread_fence(memory_order_seq_cst);
		if (mg_probe_frontier(p) > time)
			break;
		if (mg__run_over(df)) {
			err = -EPIPE;
			break;
		}
		now = mg_now_ns();
		if (timeout_ns != MG_FOREVER && now - start >= timeout_ns) {
			err = -ETIMEDOUT;
			break;
		}
		mg_futex_wait(&df->wake_seq, seq,
			      timeout_ns == MG_FOREVER
				      ? 100000000ull
				      : timeout_ns - (now - start));
	}
	atomic_fetch_sub_explicit(&df->waiters, 1, memory_order_relaxed);
	return err;
}

void
mg__probes_finish(struct mg_dataflow *df)
{
	unsigned i, w;

	for (i = 0; i < df->nprobes; i++) {
		struct mg_probe *p = df->probes[i];
		uint64_t g = MG_TIME_MAX, f;

		for (w = 0; w < df->cfg.workers; w++) {
			f = atomic_load_explicit(&p->pub[w].frontier,
						 memory_order_relaxed);
			g = f < g ? f : g;
		}
		if (g >
		    atomic_load_explicit(&p->completed, memory_order_relaxed))
			/* Release: as probe.R2; the workers are joined. */
			atomic_store_explicit(&p->completed, g,
					      memory_order_release);
	}
}

int
mg_probe_on_complete(struct mg_probe *p, mg_complete_fn fn, void *ctx)
{
	if (!p || p->df->started)
		return -EINVAL;
	p->fn = fn;
	p->ctx = ctx;
	return 0;
}

void
mg__probes_report(struct mg_dataflow *df, bool last)
{
	unsigned i;

	for (i = 0; i < df->nprobes; i++) {
		struct mg_probe *p = df->probes[i];
		uint64_t c = mg_probe_frontier(p);

		/* The last call (after the workers exited) reports how far the
		 * run got: MG_TIME_MAX unless it was halted. */
		(void)last;
		if (p->fn && c > p->reported) {
			p->reported = c;
			p->fn(p->ctx, c);
		}
	}
}
