/*
 * report.c - the control thread: control frontier, migrations, latency
 * windows.
 *
 * Each worker records the latency of its own source records into its own
 * histograms: `whole` for the run and win[x % WIN_RING] for the window x
 * (of length window_ns) in which it saw their timestamp complete.  Protocol,
 * per worker w, between w and the reporter:
 *
 *   w:        writes only win[x % WIN_RING] for x >= pub[w].window, and
 *             before it first writes window x it resets that slot and tags
 *             it with x -- which it may do only once the reporter has
 *             merged window x - WIN_RING (win_merged > x - WIN_RING); then
 *             publishes pub[w].window = x (release).
 *   reporter: merges window x once every worker's pub.window > x (acquire),
 *             then publishes win_merged = x + 1 (release).
 *
 * So a slot is never written while it is read, and the reporter merges a
 * slot only if its tag is the window being merged (a worker stalled through
 * a window never tagged its slot: it recorded nothing there).  While the
 * reporter is WIN_RING windows behind, the worker's records miss their
 * window (flagged in windows_lost); the whole-run histogram stays exact.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_pvt.h"

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

void
mg__latency_advance(struct worker *wk, uint64_t now)
{
	struct mg_dataflow *df = wk->df;
	uint64_t x = now / df->cfg.window_ns, merged, y;

	if (x <= wk->window)
		return;
	/* ORDER(A2): pairs with R3 in merge_upto(); without it the worker
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
	/* ORDER(R2): pairs with A3 in merge_upto(); the window's counts
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
static void
merge_upto(struct mg_dataflow *df, struct mg__hist *h, uint64_t upto)
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
		/* ORDER(R3): pairs with A2; the slot's reads are done. */
		atomic_store_explicit(&df->win_merged, x + 1,
				      memory_order_release);
	}
}

/* The lowest (or highest) window any worker is recording. */
static uint64_t
worker_window(const struct mg_dataflow *df, bool highest)
{
	uint64_t lo = UINT64_MAX, hi = 0, v;
	unsigned w;

	for (w = 0; w < df->cfg.workers; w++) {
		/* ORDER(A3): pairs with R2 in mg__latency_advance(). */
		v = atomic_load_explicit(&df->pub[w].window,
					 memory_order_acquire);
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	return highest ? hi : lo;
}

/* The control frontier the clock allows now: lead epochs ahead. */
uint64_t
mg__ctl_target(const struct mg_dataflow *df)
{
	return (mg_now_ns() - df->start_ns) / df->cfg.epoch_ns +
	       df->ctl_lead_epochs;
}

/*
 * The control thread: every tick it advances the control frontier ahead of
 * the sources, drives migrations, and merges finished latency windows.
 */
static void *
control_main(void *arg)
{
	struct mg_dataflow *df = arg;
	struct mg__hist *h = malloc(sizeof(*h));
	uint64_t tick = df->ctl_lead_epochs * df->cfg.epoch_ns / 4;
	uint64_t next_merge = 0, now;
	struct timespec ts;

	if (!h) {
		mg__set_error(df, -ENOMEM);
		return NULL;
	}
	if (tick > df->cfg.window_ns / 4)
		tick = df->cfg.window_ns / 4;
	ts = (struct timespec){(time_t)(tick / 1000000000ull),
			       (long)(tick % 1000000000ull)};
	while (!atomic_load_explicit(&df->stop_reporter,
				     memory_order_relaxed)) {
		nanosleep(&ts, NULL);
		mg_router_advance(df->router, mg__ctl_target(df));
		mg__migrations_tick(df);
		mg__migrations_close(df);
		now = mg_now_ns();
		if (now >= next_merge) {
			merge_upto(df, h, worker_window(df, false));
			next_merge = now + df->cfg.window_ns / 4;
		}
	}
	/* The workers have exited: every window they wrote is final. */
	merge_upto(df, h, worker_window(df, true) + 1);
	free(h);
	return NULL;
}

int
mg__reporter_start(struct mg_dataflow *df)
{
	df->rss_peak = mg__rss_bytes();
	if (pthread_create(&df->reporter, NULL, control_main, df))
		return -EAGAIN;
	return 0;
}

void
mg__reporter_stop(struct mg_dataflow *df)
{
	/* Relaxed: the join below is the synchronization that matters. */
	atomic_store_explicit(&df->stop_reporter, true, memory_order_relaxed);
	pthread_join(df->reporter, NULL);
}
