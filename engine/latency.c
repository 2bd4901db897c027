/*
 * latency.c - latency of source and input records: per-worker rings of the
 * times awaiting completion, and the latency windows the control thread
 * merges.
 *
 * A worker counts each time of its source or input records in a lat ring
 * (time, count, first and last scheduled or push instant); once the first
 * probe's frontier passes the time, the records' latencies -- spread evenly
 * between the first and the last instant -- go into the worker's histograms.
 *
 * Each worker records the latency of its own source records into its own
 * histograms: `whole` for the run and win[x % WIN_RING] for the window x
 * (of length window_ns) in which it saw their timestamp complete.  Protocol,
 * per worker w, between w and the control thread:
 *
 *   w:        writes only win[x % WIN_RING] for x >= pub[w].window, and
 *             before it first writes window x it resets that slot and tags
 *             it with x -- which it may do only once the control thread has
 *             merged window x - WIN_RING (win_merged > x - WIN_RING); then
 *             publishes pub[w].window = x (release).
 *   control thread: merges window x once every worker's pub.window > x (acquire),
 *             then publishes win_merged = x + 1 (release).
 *
 * So a slot is never written while it is read, and the control thread merges a
 * slot only if its tag is the window being merged (a worker stalled through
 * a window never tagged its slot: it recorded nothing there).  While the
 * control thread is WIN_RING windows behind, the worker's records miss their
 * window (flagged in windows_lost); the whole-run histogram stays exact.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>

#include "engine/engine_pvt.h"

/* load statistics sample period */

uint64_t
mg__rss_bytes(void)
{
	unsigned long size, rss;
	FILE *f = fopen("/proc/self/statm", "r");
	int ok;

	if (!f)
		return 0;
	ok = fscanf(f, "%lu %lu", &size, &rss) == 2;
	fclose(f);
	return ok ? (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

int
mg__lat_init(struct lat_ring *r)
{
	r->head = r->tail = 0;
	r->lat = mg_calloc_lines(LAT_RING, sizeof(*r->lat));
	return r->lat ? 0 : -ENOMEM;
}

void
mg__lat_fini(struct lat_ring *r)
{
	free(r->lat);
	r->lat = NULL;
}

void
mg__lat_complete(struct lat_ring *r, struct worker *wk, uint64_t done,
		 uint64_t now)
{
	while (r->head != r->tail) {
		struct lat_epoch *l = &r->lat[r->head % LAT_RING];

		/* Times need not arrive in order (a producer may push an
		 * earlier time after a later one): stop at the first one not
		 * complete; the rest wait for it. */
		if (l->epoch >= done)
			break;
		if (l->count)
			mg__latency_record(
				wk, now,
				now > l->last_ns ? now - l->last_ns : 0,
				now > l->first_ns ? now - l->first_ns : 0,
				l->count);
		r->head++;
	}
}

void
mg__latency_advance(struct worker *wk, uint64_t now)
{
	struct mg_dataflow *df = wk->df;
	uint64_t x = now / df->cfg.window_ns, merged, y;

	if (x <= wk->window)
		return;
	/* ORDER(lat.A2): pairs with lat.R3 in mg__windows_merge(); without it the worker
	 * could reset a slot the reporter is still reading. */
	merged = atomic_load_explicit(&df->win_merged, memory_order_acquire);
	/* Take every window up to x whose slot the reporter is done with;
	 * after a long stall that may stop short of x until it catches up. */
	for (y = wk->window + 1; y <= x && y < merged + WIN_RING; y++) {
		struct mg__hist *h = &wk->win[y % WIN_RING];

		mg__hist_reset(h);
		/* Relaxed: published with the window below (R2). */
		atomic_store_explicit(&h->id, y, memory_order_relaxed);
		wk->window = y;
	}
	/* ORDER(lat.R2): pairs with lat.A3 in mg__windows_worker(); the window's counts
	 * written before are visible to the reporter that merges it. */
	atomic_store_explicit(&df->pub[wk->w].window, wk->window,
			      memory_order_release);
}

void
mg__latency_record(struct worker *wk, uint64_t now, uint64_t lo, uint64_t hi,
		   uint64_t n)
{
	uint64_t x = now / wk->df->cfg.window_ns;

	mg__latency_advance(wk, now);
	if (now >= wk->df->cfg.warmup_ns)
		mg__hist_add_range(&wk->whole, lo, hi, n);
	if (wk->window == x) /* else the reporter is behind: window lost */
		mg__hist_add_range(&wk->win[x % WIN_RING], lo, hi, n);
	else
		wk->windows_lost = true;
}

/* Merge and report every window below @upto. */
void
mg__windows_merge(struct mg_dataflow *df, struct mg__hist *h, uint64_t upto)
{
	uint64_t x =
		atomic_load_explicit(&df->win_merged, memory_order_relaxed);
	struct mg_window_stats ws;
	unsigned w;

	for (; x < upto; x++) {
		mg__hist_reset(h);
		for (w = 0; w < df->cfg.workers; w++) {
			const struct mg__hist *src =
				&df->wk[w].win[x % WIN_RING];

			/* a slot still tagged with an older window: the worker
			 * recorded nothing in x (it was stalled) */
			if (atomic_load_explicit(&src->id,
						 memory_order_relaxed) == x)
				mg__hist_merge(h, src);
		}
		ws = (struct mg_window_stats){
			.t_s = (double)((x + 1) * df->cfg.window_ns) / 1e9,
			.count = mg__hist_count(h),
			.p25 = mg__hist_quantile(h, 0.25),
			.p50 = mg__hist_quantile(h, 0.50),
			.p75 = mg__hist_quantile(h, 0.75),
			.p95 = mg__hist_quantile(h, 0.95),
			.p99 = mg__hist_quantile(h, 0.99),
			.p999 = mg__hist_quantile(h, 0.999),
			.max = mg__hist_max(h),
			.rss_bytes = mg__rss_bytes(),
		};
		if (ws.rss_bytes > df->rss_peak)
			df->rss_peak = ws.rss_bytes;
		if (df->on_window)
			df->on_window(df->on_window_ctx, &ws);
		/* ORDER(lat.R3): pairs with lat.A2; the slot's reads are done. */
		atomic_store_explicit(&df->win_merged, x + 1,
				      memory_order_release);
	}
}

/* The lowest (or highest) window any worker is recording. */
uint64_t
mg__windows_worker(const struct mg_dataflow *df, bool highest)
{
	uint64_t lo = UINT64_MAX, hi = 0, v;
	unsigned w;

	for (w = 0; w < df->cfg.workers; w++) {
		/* ORDER(lat.A3): pairs with lat.R2 in mg__latency_advance(). */
		v = atomic_load_explicit(&df->pub[w].window,
					 memory_order_acquire);
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	return highest ? hi : lo;
}
