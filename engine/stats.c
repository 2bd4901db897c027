/*
 * stats.c - the load statistics a controller needs.
 *
 * Counted by the workers, with no atomic read-modify-write and no lock, each
 * into memory it alone writes:
 *
 *   counts[w * nbins + b]       (per stateful operator with bins) records
 *                               worker w processed for bin b, cumulative,
 *                               and the bytes bin b's arena owns while w
 *                               holds it (0 once it left);
 *   pub[w].busy_ns              time in rounds that did work;
 *   pub[w].work_ns              of it, time in stateful steps that did
 *                               work (what the worker's bins cost it);
 *   pub[w].feed_ns              ... and in source and input steps that
 *                               did (what it costs whatever it holds);
 *   pub[w].backlog, .records    records received but not processed, and
 *                               processed, by w's stateful operators;
 *   pub[w].round_end_ns         when its last round ended.
 *
 * Each is a relaxed load and a relaxed store by its writer (a plain add on
 * x86) and a relaxed load by the reader: a reader may see a count a round
 * late, never a torn one.  A bin's counts are spread over the workers that
 * held it; their sum is the bin's.
 *
 * Rates are decayed, under `lock`: rate += (sample - rate) * (1 - e^(-dt/tau))
 * with tau = 1 s.  Decayed from 0, a worker's figures read low for the
 * first seconds (63% of the truth at 1 s): mg_dataflow_worker_stats()
 * divides them by the weight their samples carry, 1 - e^(-t/tau), so they
 * are averages of what the run has seen from the first sample on (a busy
 * fraction is compared with absolute bounds: the balancer's trust in
 * costs, the elastic thresholds).  So are the bins' rates, by the weight
 * of their reads (the balancer adds a worker's base load, from its
 * averages, to its bins' rates).  The control thread samples the workers
 * every 100 ms (mg__stats_sample).  The bins' rates are brought up to date
 * when they are read (bins_read): sampled every 100 ms, 2^20 bins cost the
 * control thread 78 M instructions a sample (callgrind, one worker) -- a
 * third of a CPU, taken from the workers whether anyone read the rates or
 * not.  A reader every second or more often sees what 100 ms samples would
 * show it; one after a longer gap, the gap's rate, weighted as if it were
 * one sample.  Readers copy under the same lock, which no worker takes.
 *
 * A worker whose thread runs its rounds (not parked) but ended none in a
 * whole sample is inside one -- an operator call that takes long, a stall
 * -- and busy, though its busy time counts only once the round ends: a
 * stalled worker must not look idle to a controller.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine_pvt.h"

#define TAU_S 1.0 /* decay time constant */

int
mg__stats_init(struct mg_dataflow *df)
{
	struct stats *st = &df->stats;
	uint32_t nbins = 1u << df->nbins_log2;
	unsigned W = df->cfg.workers;

	if (df->cfg.no_stats)
		return 0;
	for (unsigned i = 0; i < df->nnodes; i++) {
		struct node *n = df->nodes[i];
		size_t cells = (size_t)W * nbins;

		if (n->kind != STATEFUL || n->u.st.cfg.native)
			continue;
		/* calloc of a large block maps zero pages: untouched bins cost
		 * no memory. */
		n->u.st.counts = calloc(cells, sizeof(*n->u.st.counts));
		if (!n->u.st.counts)
			return -ENOMEM;
		for (unsigned w = 0; w < W; w++)
			n->inst.st[w].counts =
				n->u.st.counts + (size_t)w * nbins;
	}
	st->bin_total = calloc(nbins, sizeof(*st->bin_total));
	st->bin_rate = calloc(nbins, sizeof(*st->bin_rate));
	st->wk = calloc(W, sizeof(*st->wk));
	if (!st->bin_total || !st->bin_rate || !st->wk)
		return -ENOMEM;
	return 0;
}

void
mg__stats_fini(struct mg_dataflow *df)
{
	struct stats *st = &df->stats;

	/* the operators' counters go with them (mg__stateful_fini); every
	 * thread that read the descriptors is gone */
	for (unsigned w = 0; df->pub && w < df->cfg.workers; w++) {
		int fd = atomic_load_explicit(&df->pub[w].wait_fd,
					      memory_order_relaxed);

		if (fd > 0)
			close(fd - 1);
	}
	free(st->bin_total);
	free(st->bin_rate);
	free(st->wk);
}

/* Worker @w's records processed and received (processed + backlog; the
 * two are stored apart, so a sample may be a round off -- below the last
 * sample's received count, even -- never more). */
static void
worker_counts(const struct mg_dataflow *df, unsigned w, uint64_t *done,
	      uint64_t *recv)
{
	*done = atomic_load_explicit(&df->pub[w].records, memory_order_relaxed);
	*recv = *done +
		atomic_load_explicit(&df->pub[w].backlog, memory_order_relaxed);
}

/* Fold a part of busy time (counter @ns, *@last at the previous sample)
 * into its decayed fraction *@part, at most this sample's busy @frac. */
static void
decay_part(double *part, uint64_t *last, uint64_t ns, double frac, double dt,
	   double k)
{
	double f = (double)(ns - *last) / 1e9 / dt;

	f = f > frac ? frac : f;
	*part += (f - *part) * k;
	*last = ns;
}

/* Worker @w's run queue delay so far (UINT64_MAX: not known -- its thread
 * has not started, or the kernel keeps no such count). */
static uint64_t
thread_wait_ns(const struct mg_dataflow *df, unsigned w)
{
	/* ORDER(stats.A1): pairs with stats.R1 in mg__worker_main(): the
	 * descriptor is open */
	int fd = atomic_load_explicit(&df->pub[w].wait_fd,
				      memory_order_acquire) -
		 1;

	return fd >= 0 ? mg_thread_wait_ns(fd) : UINT64_MAX;
}

void
mg__stats_sample(struct mg_dataflow *df, uint64_t now)
{
	struct stats *st = &df->stats;
	double dt, k;

	if (df->cfg.no_stats || !st->wk)
		return;
	pthread_mutex_lock(&st->lock);
	if (!st->last_ns) {
		for (unsigned w = 0; w < df->cfg.workers; w++) {
			struct wk_load *l = &st->wk[w];

			l->busy_ns = atomic_load_explicit(&df->pub[w].busy_ns,
							  memory_order_relaxed);
			l->work_ns = atomic_load_explicit(&df->pub[w].work_ns,
							  memory_order_relaxed);
			l->feed_ns = atomic_load_explicit(&df->pub[w].feed_ns,
							  memory_order_relaxed);
			worker_counts(df, w, &l->done, &l->recv);
			l->wait_ns = thread_wait_ns(df, w);
		}
		st->last_ns = st->bins_ns = now; /* the bins' counts are 0 */
		st->unseen = st->bins_unseen = 1;
		pthread_mutex_unlock(&st->lock);
		return;
	}
	dt = (double)(now - st->last_ns) / 1e9;
	if (dt <= 0) {
		pthread_mutex_unlock(&st->lock);
		return;
	}
	k = 1.0 - exp(-dt / TAU_S);
	for (unsigned w = 0; w < df->cfg.workers; w++) {
		struct wk_load *l = &st->wk[w];
		uint64_t busy = atomic_load_explicit(&df->pub[w].busy_ns,
						     memory_order_relaxed);
		double frac = (double)(busy - l->busy_ns) / 1e9 / dt;
		uint64_t end = atomic_load_explicit(&df->pub[w].round_end_ns,
						    memory_order_relaxed);
		uint32_t run = atomic_load_explicit(&df->pub[w].run,
						    memory_order_relaxed);
		uint64_t done, recv, wait;

		worker_counts(df, w, &done, &recv);
		l->done_rate +=
			((double)(done - l->done) / dt - l->done_rate) * k;
		/* signed: a sample a batch off may read below the last */
		l->recv_rate += ((double)(int64_t)(recv - l->recv) / dt -
				 l->recv_rate) *
				k;
		l->done = done;
		l->recv = recv;
		if (end && end < st->last_ns &&
		    (run == RUN_OWN || run == RUN_PARK_REQ))
			frac = 1; /* in a round all this sample: a stall */
		frac = frac > 1 ? 1 : frac;
		l->busy += (frac - l->busy) * k;
		l->busy_ns = busy;
		decay_part(&l->work, &l->work_ns,
			   atomic_load_explicit(&df->pub[w].work_ns,
						memory_order_relaxed),
			   frac, dt, k);
		decay_part(&l->feed, &l->feed_ns,
			   atomic_load_explicit(&df->pub[w].feed_ns,
						memory_order_relaxed),
			   frac, dt, k);
		/* the run queue delay, as a fraction of this sample's time
		 * (not known before the thread opened its count) */
		wait = thread_wait_ns(df, w);
		if (wait != UINT64_MAX && l->wait_ns != UINT64_MAX)
			decay_part(&l->waiting, &l->wait_ns, wait, 1, dt, k);
		else
			l->wait_ns = wait;
	}
	st->unseen *= 1 - k;
	st->last_ns = now;
	st->samples++;
	pthread_mutex_unlock(&st->lock);
}

/*
 * Sum every worker's and operator's counts into @out, row by row (each a
 * sequential read), and bring the bins' rates up to date at @now.  Caller
 * holds st->lock.  Before the first sample the rates stay 0.
 */
static void
bins_read(struct mg_dataflow *df, uint64_t now, struct mg_bin_stats *out)
{
	struct stats *st = &df->stats;
	uint32_t b, nbins = 1u << df->nbins_log2;
	double dt = st->bins_ns ? (double)(now - st->bins_ns) / 1e9 : 0, k;
	double seen;

	memset(out, 0, sizeof(*out) * nbins);
	for (unsigned i = 0; i < df->nnodes; i++) {
		const struct node *n = df->nodes[i];

		if (n->kind != STATEFUL || !n->u.st.counts)
			continue;
		for (unsigned w = 0; w < df->cfg.workers; w++) {
			const struct bin_count *row =
				n->u.st.counts + (size_t)w * nbins;

			for (b = 0; b < nbins; b++) {
				out[b].records += atomic_load_explicit(
					&row[b].records, memory_order_relaxed);
				out[b].state_bytes += atomic_load_explicit(
					&row[b].bytes, memory_order_relaxed);
			}
		}
	}
	if (dt > 0) {
		k = 1.0 - exp(-dt / TAU_S);
		for (b = 0; b < nbins; b++) {
			double r = (double)(out[b].records - st->bin_total[b]) /
				   dt;

			st->bin_rate[b] += (r - st->bin_rate[b]) * k;
			st->bin_total[b] = out[b].records;
		}
		st->bins_unseen *= 1 - k;
		st->bins_ns = now;
	}
	/* not read since the first sample: the rates are 0, nothing to weigh */
	seen = st->bins_unseen < 1 ? 1 - st->bins_unseen : 1;
	for (b = 0; b < nbins; b++)
		out[b].rate = st->bin_rate[b] / seen;
}

uint64_t
mg__stats_samples(struct mg_dataflow *df)
{
	uint64_t n;

	pthread_mutex_lock(&df->stats.lock);
	n = df->stats.samples;
	pthread_mutex_unlock(&df->stats.lock);
	return n;
}

int
mg_dataflow_bin_stats(struct mg_dataflow *df, struct mg_bin_stats *out)
{
	uint32_t b, nbins;
	uint16_t *owner;

	if (!df || !out || df->cfg.no_stats || !df->started ||
	    !df->stats.bin_rate)
		return -EINVAL;
	nbins = 1u << df->nbins_log2;
	owner = malloc(sizeof(*owner) * nbins);
	if (!owner)
		return -ENOMEM;
	mg_dataflow_owners(df, owner);
	pthread_mutex_lock(&df->stats.lock);
	bins_read(df, mg_now_ns(), out);
	pthread_mutex_unlock(&df->stats.lock);
	for (b = 0; b < nbins; b++)
		out[b].owner = owner[b];
	free(owner);
	return 0;
}

int
mg_dataflow_worker_stats(struct mg_dataflow *df, struct mg_worker_stats *out)
{
	uint32_t b, nbins;
	uint16_t *owner;
	unsigned w;
	double seen;

	if (!df || !out || df->cfg.no_stats || !df->started || !df->stats.wk)
		return -EINVAL;
	nbins = 1u << df->nbins_log2;
	owner = malloc(sizeof(*owner) * nbins);
	if (!owner)
		return -ENOMEM;
	mg_dataflow_owners(df, owner);
	pthread_mutex_lock(&df->stats.lock);
	/* no rates yet (they are 0): nothing to weigh */
	seen = df->stats.samples ? 1 - df->stats.unseen : 1;
	for (w = 0; w < df->cfg.workers; w++) {
		const struct wk_load *l = &df->stats.wk[w];
		double busy = l->busy / seen, work = l->work / seen;
		double feed = l->feed / seen, waiting = l->waiting / seen;

		out[w] = (struct mg_worker_stats){
			.busy = busy < 1 ? busy : 1,
			.backlog = atomic_load_explicit(&df->pub[w].backlog,
							memory_order_relaxed),
			.records = atomic_load_explicit(&df->pub[w].records,
							memory_order_relaxed),
			.rate = l->done_rate / seen,
			.in_rate = l->recv_rate / seen,
			.work = work < 1 ? work : 1,
			.feed = feed < 1 ? feed : 1,
			.waiting = waiting < 1 ? waiting : 1,
		};
	}
	pthread_mutex_unlock(&df->stats.lock);
	for (b = 0; b < nbins; b++)
		out[owner[b]].bins++;
	free(owner);
	return 0;
}
