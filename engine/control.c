/*
 * control.c - the control thread.  Every tick (a quarter of the control
 * frontier's lead, at most a quarter of a latency window) it
 *
 *   - advances the control frontier ahead of the clock (or of the data,
 *     while every source lags: mg__ctl_target), when the dataflow has
 *     sources, and folds finished moves (mg_router_advance),
 *   - issues the next steps of running migrations, and once every source
 *     and input has ended stops taking migrations and lets the frontier run
 *     to the end (migrate.c),
 *   - merges finished latency windows (latency.c) and samples load
 *     statistics (stats.c),
 *   - calls the probes' completion callbacks (probe.c).
 *
 * It sleeps on the completion futex between ticks, so a probe with a
 * callback is reported as soon as its frontier moves.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_pvt.h"

/*
 * The control thread: every tick it advances the control frontier ahead of
 * the sources, drives migrations, and merges finished latency windows.
 */
void
mg__wake_all(struct mg_dataflow *df)
{
	unsigned i;

	/* ORDER(probe.F2): with F1 in the waiters: a waiter that counted
	 * itself before this sees the new seq and does not sleep. */
	atomic_fetch_add_explicit(&df->wake_seq, 1, memory_order_seq_cst);
	mg_futex_wake(&df->wake_seq, INT32_MAX);
	mg__inputs_wake(df);
	for (i = 0; i < df->noutputs; i++)
		mg__output_notify(df->outputs[i]);
}

/* Sleep until the next tick, or -- with completion callbacks to call --
 * until a probe's frontier moves. */
static void
wait_tick(struct mg_dataflow *df, uint64_t tick, bool callbacks)
{
	uint32_t seq =
		atomic_load_explicit(&df->wake_seq, memory_order_acquire);

	if (!callbacks) {
		nanosleep(&(struct timespec){(time_t)(tick / 1000000000ull),
					     (long)(tick % 1000000000ull)},
			  NULL);
		return;
	}

	/* ORDER(ctl.F1): pairs with probe.F1 in mg__probes_publish(): the
	 * waiter count is visible before we sleep, or the bump before it. */
	atomic_fetch_add_explicit(&df->waiters, 1, memory_order_seq_cst);
	mg_futex_wait(&df->wake_seq, seq, tick);
	atomic_fetch_sub_explicit(&df->waiters, 1, memory_order_relaxed);
}

static void *
control_main(void *arg)
{
	struct mg_dataflow *df = arg;
	struct mg__hist *h = malloc(sizeof(*h));
	uint64_t tick = df->ctl_lead_epochs * df->cfg.epoch_ns / 4;
	uint64_t next_merge = 0, next_tick = 0, next_stats = 0, now;
	bool callbacks = false, woke = false;

	pthread_setname_np(pthread_self(), "mg-control");

	for (unsigned i = 0; i < df->nprobes; i++)
		callbacks |= df->probes[i]->fn != NULL;
	if (!h) {
		mg__set_error(df, -ENOMEM, "control thread: its histogram");
		return NULL;
	}
	if (tick > df->cfg.window_ns / 4)
		tick = df->cfg.window_ns / 4;
	while (!atomic_load_explicit(&df->stop_control, memory_order_relaxed)) {
		now = mg_now_ns();
		if (now < next_tick) {
			wait_tick(df, next_tick - now, callbacks);
			mg__probes_report(df, false);
			continue;
		}
		next_tick = now + tick;
		if (!woke &&
		    atomic_load_explicit(&df->halt, memory_order_relaxed)) {
			mg__wake_all(df); /* a worker halted the run */
			woke = true;
		}
		/* With sources the control frontier runs ahead of the clock
		 * or the data; inputs alone raise it as their records need
		 * (input.c). */
		mg_router_advance(df->router,
				  df->clocked ? mg__ctl_target(df) : 0);
		mg__migrations_tick(df);
		mg__migrations_close(df);
		mg__inputs_reap(df);
		mg__probes_report(df, false);
		if (now >= next_merge) {
			mg__windows_merge(df, h, mg__windows_worker(df, false));
			next_merge = now + df->cfg.window_ns / 4;
		}
		if (now >= next_stats) {
			mg__stats_sample(df, now);
			next_stats = now + MG_STATS_SAMPLE_NS;
		}
	}
	/* The workers have exited: every window they wrote is final. */
	mg__windows_merge(df, h, mg__windows_worker(df, true) + 1);
	mg__probes_report(df, true);
	free(h);
	return NULL;
}

int
mg__control_start(struct mg_dataflow *df)
{
	df->rss_peak = mg__rss_bytes();
	if (pthread_create(&df->control, NULL, control_main, df))
		return -EAGAIN;
	return 0;
}

void
mg__control_stop(struct mg_dataflow *df)
{
	/* Relaxed: the join below is the synchronization that matters. */
	atomic_store_explicit(&df->stop_control, true, memory_order_relaxed);
	atomic_fetch_add_explicit(&df->wake_seq, 1, memory_order_seq_cst);
	mg_futex_wake(&df->wake_seq, INT32_MAX);
	pthread_join(df->control, NULL);
}
