/*
 * error.c - the bottom of the engine: the text of the library's return codes
 * (mg_strerror), its version, and the run's state every layer may set or
 * ask -- the first error (latched), halting, whether the run is over, the
 * run's clock.
 * Nothing here calls into the rest of the engine.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "engine/engine_pvt.h"

const char *
mg_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EINVAL:
		return "invalid argument";
	case -ENOMEM:
		return "out of memory";
	case -EAGAIN:
		return "resource temporarily unavailable";
	case -ENOENT:
		return "no such entry";
	case -EBUSY:
		return "busy: already in progress";
	case -ETIME:
		return "too late: that time has already passed";
	case -EPIPE:
		return "closed: the producer or the dataflow has ended";
	case -ETIMEDOUT:
		return "timed out";
	case -ENODATA:
		return "end of stream: everything was delivered";
	case -ECANCELED:
		return "canceled: the run ended first";
	case -ENOTRECOVERABLE:
		return "this process was forked while a dataflow ran: the "
		       "library cannot run in it (megaphone.h, \"Threads\")";
	case -ENOBUFS:
		return "a buffer limit was reached: too much backlog "
		       "(megaphone.h, \"Limits\")";
	default:
		/* Positive: a count (mg_push_burst(), mg_push_wait());
		 * INT_MIN has no negation. */
		if (err == INT_MIN)
			return "unknown error";
		return err < 0 ? strerror(-err)
			       : "not an error: a positive result is a count";
	}
}

const char *
mg_version(void)
{
	return MG_VERSION;
}

/* ---- the run's state ----------------------------------------------------- */

/* ---- errors and stopping -------------------------------------------------- */

void
mg__set_error(struct mg_dataflow *df, int err, const char *what)
{
	int zero = 0;

	/* Relaxed: only the value matters; mg__halt() orders the rest, and
	 * error_what is read after the join, which joins its writer. */
	if (atomic_compare_exchange_strong_explicit(&df->error, &zero, err,
						    memory_order_relaxed,
						    memory_order_relaxed))
		df->error_what = what;
	mg__halt(df);
}

void
mg__halt(struct mg_dataflow *df)
{
	if (atomic_exchange_explicit(&df->halt, true, memory_order_relaxed))
		return;
	/* Lock-free, so a worker may call it: wakes the probe waiters and the
	 * control thread, which wakes producers and output consumers (their
	 * wake-ups take the inputs' locks) at its next tick. */
	atomic_fetch_add_explicit(&df->wake_seq, 1, memory_order_seq_cst);
	mg_futex_wake(&df->wake_seq, INT32_MAX);
	mg__elastic_wake_all(df);
}

bool
mg__run_over(const struct mg_dataflow *df)
{
	/* Relaxed: whoever sets halt bumps wake_seq (seq_cst) after it.
	 * go without running: the run ended (joined) or failed to start;
	 * running is cleared after the last completion is published. */
	return atomic_load_explicit(&df->halt, memory_order_relaxed) ||
	       (atomic_load_explicit(&df->go, memory_order_acquire) &&
		!atomic_load_explicit(&df->running, memory_order_acquire));
}

uint64_t
mg__resolve_time(const struct mg_dataflow *df, uint64_t t)
{
	return t == MG_TIME_NOW ? mg_dataflow_now(df) : t;
}

uint64_t
mg_dataflow_now(const struct mg_dataflow *df)
{
	if (!df)
		return 0;
	/* ORDER(df.A1): pairs with df.R1 in mg_dataflow_start(); start_ns
	 * is written before `go`. */
	if (!atomic_load_explicit(&df->go, memory_order_acquire) ||
	    !df->start_ns)
		return 0;
	return (mg_now_ns() - df->start_ns) / df->cfg.epoch_ns;
}
