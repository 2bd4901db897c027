/*
 * worker.c - a worker's cooperative loop: step every scheduled node, flush
 * every SEND (push queued batches, forward frontiers as marks), publish the
 * probes' frontiers, account latency and busy time, run a round of each
 * parked worker no other thread is running (elastic.c), announce a
 * quiescent state.  Nothing in here allocates with malloc, logs or takes
 * a lock, and it blocks only in a nap, idle.  Memory comes from the
 * lock-free page pool: overflow batches, and the chunks of bins' arenas as
 * state grows.  System calls: a FUTEX_WAKE for a thread that waits on the
 * worker (a producer opening or out of room, an output's reader, a probe's
 * waiter, the re-homer), when it sleeps or is about to; the nap's futex
 * wait; and in copy mode (the baseline) an madvise that gives a drained
 * copy buffer of over 64 MiB back.  An idle worker spins briefly, then
 * naps (offline for RCU), each nap twice the last up to 1 ms, so an idle dataflow costs
 * next to no CPU and a busy one never naps long; one that shares its CPU
 * with another worker (an oversubscribed dataflow), or that the kernel
 * preempted while it spun (spin_limit()), naps much sooner, so the thread
 * that has the work gets the CPU.  (Not sched_yield(): on a loaded
 * machine that hands the CPU to any other process for a whole time slice,
 * and measured runs of 0.1 s took 10 s.)
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <ck_pr.h>

#include "engine/engine_pvt.h"

#define IDLE_SPINS	  2000	  /* idle rounds before napping */
#define IDLE_SPINS_SHARED 64	  /* ... on a CPU shared with another worker */
#define NAP_MIN_NS	  20000	  /* the first nap */
#define NAP_MAX_NS	  1000000 /* naps double up to this while idle */

/* ---- SOURCE ------------------------------------------------------------------ */

/* When the record @seq of source @n is scheduled, in ns of the run. */
static uint64_t
sched_at(const struct node *n, uint64_t seq)
{
	const struct mg_source_config *c = &n->u.src;

	return c->sched ? c->sched(c->ctx, seq) : mg_sched_ns(c->rate, seq);
}

/* The least progress of the open instances of source @n: no record of it
 * will come before this epoch (MG_TIME_MAX: all closed). */
static uint64_t
sources_floor(const struct node *n, unsigned W)
{
	uint64_t f = MG_TIME_MAX, p;

	for (unsigned w = 0; w < W; w++) {
		p = atomic_load_explicit(&n->inst.source[w].progress,
					 memory_order_relaxed);
		f = p < f ? p : f;
	}
	return f;
}

/*
 * Generate the records due by @clock_ns (mg_now_ns(), read by the caller,
 * which times the step from it), up to SOURCE_BURST, at times before the
 * control frontier -- and less than SOURCE_SKEW leads ahead of the source's
 * slowest worker.  Every output waits for the slowest anyway (the frontier
 * is a minimum): a worker's share made further ahead would only wait in its
 * receivers' logs -- growing them without bound while one worker is over
 * its capacity -- and the control frontier, which keeps ahead of the
 * fastest source (mg__ctl_target), would put a move at MG_TIME_ASAP
 * seconds past the data the overloaded worker is making.  The slowest share is never held back, so one always goes on.
 * A source raises the frontier for its own records (up to the clock's lead
 * at most: epoch <= now) rather than wait for the control thread's tick.
 */
static void
source_step(struct node *n, struct worker *wk, uint64_t clock_ns)
{
	struct mg_dataflow *df = wk->df;
	struct source_inst *s = &n->inst.source[wk->w];
	const struct mg_source_config *c = &n->u.src;
	unsigned W = df->cfg.workers, made = 0;
	uint64_t now = clock_ns - df->start_ns, seq, at, epoch;
	uint64_t ctl = mg_router_frontier(df->router); /* before routing */
	uint64_t skew = SOURCE_SKEW * df->ctl_lead_epochs;
	struct mg_emitter e = {n->out, wk, 0};

	/* Even a closed source promises no more than the control frontier:
	 * a move may still be scheduled at any time at or past it, and no
	 * downstream frontier may pass a move its workers have not seen.  The
	 * control thread raises it to MAX once every source has closed and it
	 * has stopped accepting migrations. */
	if (s->closed) {
		s->frontier = ctl;
		return;
	}
	for (;;) {
		seq = wk->w + s->k * W;
		at = sched_at(n, seq);
		if (at >= c->duration_ns) {
			s->closed = true;
			s->frontier = ctl;
			atomic_store_explicit(&s->progress, MG_TIME_MAX,
					      memory_order_relaxed);
			return;
		}
		epoch = at / df->cfg.epoch_ns;
		if (at > now || made == SOURCE_BURST ||
		    (!made && mg__congested(n, wk->w)))
			break;
		/* the others' progress only grows: a stale floor holds back
		 * no more than it must; read it again only when it does */
		if (s->floor != MG_TIME_MAX && epoch >= s->floor + skew) {
			s->floor = sources_floor(n, W);
			if (s->floor != MG_TIME_MAX && epoch >= s->floor + skew)
				break;
		}
		/* Records wait for their time's configuration to be final. */
		if (epoch >= ctl &&
		    mg_router_raise(df->router, epoch + df->ctl_lead_epochs))
			ctl = mg_router_frontier(df->router);
		if (epoch >= ctl)
			break; /* a submission holds the frontier */
		if (!mg__lat_add(&s->lat, epoch, 1, at, at))
			break; /* the probe is far behind: throttle */
		mg_zero_small(s->rec, n->out->record_size);
		c->gen(c->ctx, wk->w, seq, s->rec);
		e.time = epoch;
		mg_emit(&e, s->rec);
		s->k++;
		made++;
	}
	if (epoch != atomic_load_explicit(&s->progress, memory_order_relaxed))
		atomic_store_explicit(&s->progress, epoch,
				      memory_order_relaxed);
	s->frontier = epoch < ctl ? epoch : ctl;
	wk->round_work += made;
}

/* ---- RECV ---------------------------------------------------------------------- */

static void
recv_step(struct node *n, struct worker *wk)
{
	struct mg_batch *b[RECV_BURST];
	struct mg_emitter e = {n->out, wk, 0};
	unsigned got, i, j;

	if (mg__congested(n, wk->w))
		return;
	got = mg_mesh_recv_burst_spsc(n->u.recv.mesh, wk->w, b, RECV_BURST);
	for (i = 0; i < got; i++) {
		e.time = b[i]->time;
		for (j = 0; j < b[i]->count; j++)
			mg_emit(&e, b[i]->data + (size_t)j * b[i]->stride);
		wk->round_work += b[i]->count + 1;
		mg_batch_put_spsc(b[i]);
	}
}

/* ---- the loop -------------------------------------------------------------------- */

/*
 * Load statistics (stats.c): busy time, the part of it in stateful steps
 * (stateful_timed()), and the stateful operators' backlog and records.
 * Relaxed stores of counters the control thread samples.
 *
 * Busy time is what a round that did work took beyond an empty round (one
 * clock read per round, from the previous round's end): a worker polls, so
 * under a steady stream nearly every round finds a few records, and
 * counting whole rounds would call a worker at a tenth of its capacity
 * busy all the time.  An empty round's cost (polling every node,
 * publishing frontiers) is learnt from the empty rounds: a lower one at
 * once, a higher one slowly, one longer than IDLE_ROUND_MAX_NS (the thread
 * was preempted) not at all -- but a round counts at least its steps that
 * did work (work_ns, feed_ns): a round of a record or two is not much
 * longer than an empty one, and without the floor a worker whose rounds
 * are all small read busy below its steps' time (one worker running 6 M
 * records/s read 0.45, its steps 0.54).  Every round's end is published
 * too: a round that has not ended for a whole sample is a stall, busy
 * meanwhile.
 */
#define IDLE_ROUND_MAX_NS MG__PREEMPTED_NS
static void
account_round(struct worker *wk, bool worked, uint64_t now)
{
	struct worker_pub *pub = &wk->df->pub[wk->w];
	uint64_t backlog = 0, records = 0, dt = now - wk->round_ns;
	uint64_t steps = wk->work_ns + wk->feed_ns - wk->steps_ns, over;
	struct mg_dataflow *df = wk->df;

	atomic_store_explicit(&pub->round_end_ns, now, memory_order_relaxed);
	wk->steps_ns = wk->work_ns + wk->feed_ns;
	if (!worked) {
		if (wk->round_ns && dt < IDLE_ROUND_MAX_NS)
			wk->idle_round_ns =
				dt < wk->idle_round_ns
					? dt
					: wk->idle_round_ns +
						  (dt - wk->idle_round_ns) / 64;
		wk->round_ns = now;
		return;
	}
	over = dt > wk->idle_round_ns ? dt - wk->idle_round_ns : 0;
	if (wk->round_ns && (over || steps)) {
		wk->busy_ns += over > steps ? over : steps;
		atomic_store_explicit(&pub->busy_ns, wk->busy_ns,
				      memory_order_relaxed);
	}
	atomic_store_explicit(&pub->work_ns, wk->work_ns, memory_order_relaxed);
	atomic_store_explicit(&pub->feed_ns, wk->feed_ns, memory_order_relaxed);
	wk->round_ns = now;
	for (unsigned i = 0; i < df->nnodes; i++)
		if (df->nodes[i]->kind == STATEFUL) {
			backlog += df->nodes[i]->inst.st[wk->w].backlog;
			records += df->nodes[i]->inst.st[wk->w].records;
		}
	atomic_store_explicit(&pub->backlog, backlog, memory_order_relaxed);
	atomic_store_explicit(&pub->records, records, memory_order_relaxed);
}

/* The clock a step's time counts from; 0 without statistics. */
static uint64_t
step_clock(const struct worker *wk)
{
	return wk->df->cfg.no_stats ? 0 : mg_now_ns();
}

/* A step that began at @t (0 without statistics), with the round's work
 * at @work: its time into *@ns if it did work.  Stateful steps count into
 * work_ns: what the worker's bins cost it, apart from its sources and
 * exchange (the balancer's per-record cost); source and input steps into
 * feed_ns: what the worker costs whatever bins it holds (the balancer's
 * base load).  See stats.c. */
static void
step_timed(struct worker *wk, uint64_t work, uint64_t t, uint64_t *ns)
{
	if (!wk->df->cfg.no_stats && wk->round_work != work)
		*ns += mg_now_ns() - t;
}

static bool
round_once(struct worker *wk)
{
	struct mg_dataflow *df = wk->df;
	unsigned i;
	bool clear = true;
	uint64_t g, now;

	for (i = 0; i < df->nnodes; i++) {
		struct node *n = df->nodes[i];
		uint64_t work = wk->round_work;

		switch (n->kind) {
		case SOURCE: /* reads the clock anyway: timed from that read */
			now = mg_now_ns();
			source_step(n, wk, now);
			step_timed(wk, work, now, &wk->feed_ns);
			break;
		case INPUT:
			now = step_clock(wk);
			mg__input_step(n, wk);
			step_timed(wk, work, now, &wk->feed_ns);
			break;
		case RECV:
			recv_step(n, wk);
			break;
		case STATEFUL:
			now = step_clock(wk);
			mg__stateful_step(n, wk);
			step_timed(wk, work, now, &wk->work_ns);
			break;
		default:
			break;
		}
	}
	/* A failed run may have lost data here (a batch not logged, a record
	 * not sent, a call cut short): from the round a worker sees the
	 * run's error it publishes nothing more -- no marks, no probe
	 * frontier -- so no time completes downstream without all of its
	 * outputs.  Relaxed is enough: the worker that lost data set the
	 * error itself, in program order before; a frontier another worker
	 * publishes meanwhile cannot pass the loss without this worker's
	 * marks. */
	if (mg__failed(df))
		return false;
	for (i = 0; i < df->nnodes; i++)
		if (df->nodes[i]->kind == SEND)
			clear &= mg__send_flush(df->nodes[i], wk);

	now = mg_now_ns();
	wk->end_ns = now;
	/* counted before the frontiers that complete the work go out */
	if (!df->cfg.no_stats)
		account_round(wk, wk->round_work != 0, now);
	now -= df->start_ns;
	mg__probes_publish(df, wk);
	g = df->nprobes ? atomic_load_explicit(&df->probes[0]->completed,
					       memory_order_acquire)
			: MG_TIME_MAX;
	mg__latency_advance(wk, now);
	if (!atomic_load_explicit(&df->pub[wk->w].sources_closed,
				  memory_order_relaxed)) {
		bool closed = true;

		for (i = 0; i < df->nnodes; i++)
			if (df->nodes[i]->kind == SOURCE)
				closed &=
					df->nodes[i]->inst.source[wk->w].closed;
		/* Relaxed: the control thread only needs to see it eventually;
		 * the frontier it then raises carries the ordering. */
		if (closed)
			atomic_store_explicit(&df->pub[wk->w].sources_closed,
					      true, memory_order_relaxed);
	}
	for (i = 0; i < df->nnodes; i++) {
		struct node *n = df->nodes[i];

		if (n->kind == SOURCE)
			mg__lat_complete(&n->inst.source[wk->w].lat, wk, g,
					 now);
		else if (n->kind == INPUT)
			mg__lat_complete(&n->inst.input[wk->w].lat, wk, g, now);
	}
	if (g != MG_TIME_MAX || !clear)
		return false;
	for (i = 0; i < df->nnodes; i++) {
		struct node *n = df->nodes[i];

		if (n->out && n->kind != FLAT_MAP &&
		    mg__stream_frontier(n->out, wk->w) != MG_TIME_MAX)
			return false;
	}
	return true;
}

/*
 * Sleep @ns (offline for RCU), or until mg__worker_kick(): a thread that
 * waits on this worker -- a producer whose ring is full, an output's
 * reader that just made room in a full one -- ends the nap, so a worker
 * blocked on such a thread, which reads as idle, resumes when it may go on
 * instead of up to NAP_MAX_NS later.  With 2-slot rings and 1-record
 * batches a nap ended per ring's worth of records: 20,000 records pushed
 * by an application thread through a counting operator to an output took
 * 11 s with naps that only time out, 2.2 s with kicks (1.6 s with every
 * nap NAP_MIN_NS long -- which an idle dataflow would pay in CPU).  Best
 * effort: a kick that comes before the nap begins is lost, and the nap
 * lasts as long as before.
 */
static void
nap(struct worker *wk, uint64_t ns)
{
	_Atomic uint32_t *word = &wk->df->pub[wk->w].napping;

	mg_rcu_offline();
	atomic_store_explicit(word, 1, memory_order_relaxed);
	mg_futex_wait(word, 1, ns);
	atomic_store_explicit(word, 0, memory_order_relaxed);
	mg_rcu_online();
}

/*
 * How many empty rounds to spin before napping.  Spinning keeps an idle
 * worker quick to resume, but it takes the CPU from the thread it waits
 * for when that thread shares the CPU: another worker of an oversubscribed
 * dataflow (known from the start: shares_cpu), or an application's producer
 * or output reader, or anything else the machine runs.  Those show only
 * when the kernel preempts the spinning worker -- an empty round that took
 * longer than IDLE_ROUND_MAX_NS -- and then the worker spins as little as
 * one on a shared CPU for MG__CONTENDED_NS (a worker that spins again too
 * soon loses a time slice per MG__CONTENDED_NS; one on a CPU of its own that a
 * control thread's tick preempted pays the shorter spin's naps for as long:
 * at 100k records/s, p50 +1.5%).  One producer polling mg_push() with
 * sched_yield() into 2-slot rings of 1-record batches, two workers on the
 * machine's two CPUs (pushbench --workers 2 --ring 2 --batch 1 --yield):
 * 233 us a record when the workers spun 2000 rounds (a time slice lost per
 * ring's worth), 139 us now; one worker and the producer on one CPU: 215,
 * now 97 (README).  @last: the end of the previous empty round, 0 after
 * work or a nap.
 */
static unsigned
spin_limit(struct worker *wk, uint64_t *last)
{
	if (*last && wk->end_ns - *last > IDLE_ROUND_MAX_NS)
		wk->contended_ns = wk->end_ns + MG__CONTENDED_NS;
	*last = wk->end_ns;
	return wk->shares_cpu || wk->end_ns < wk->contended_ns
		       ? IDLE_SPINS_SHARED
		       : IDLE_SPINS;
}

/* End worker @w's nap, if it naps (see nap()).  Context: any thread; a
 * system call only when the worker naps. */
void
mg__worker_kick(struct mg_dataflow *df, unsigned w)
{
	_Atomic uint32_t *word = &df->pub[w].napping;

	/* Relaxed: a hint; the data it should look at is ordered by the
	 * ring it is in, and a lost kick costs one nap. */
	if (atomic_load_explicit(word, memory_order_relaxed) &&
	    atomic_exchange_explicit(word, 0, memory_order_relaxed))
		mg_futex_wake(word, 1);
}

/*
 * Run one round of every parked worker no other thread is running (see
 * enum run_state): claim it (acquire: the previous runner's round is
 * visible), run it, hand it back (release).  Its busy time counts from
 * the claim.  Return: the work done.
 */
static uint64_t
host_parked(struct worker *self)
{
	struct mg_dataflow *df = self->df;
	unsigned W = df->cfg.workers;
	uint64_t work = 0;

	/* Relaxed: a hint; a worker parked meanwhile waits one round. */
	if (!atomic_load_explicit(&df->nhosted, memory_order_relaxed))
		return 0;
	for (unsigned i = 1; i < W; i++) {
		unsigned v = (self->w + i) % W;
		_Atomic uint32_t *run = &df->pub[v].run;
		uint32_t hosted = RUN_HOSTED;
		struct worker *g = &df->wk[v];
		bool over;

		if (atomic_load_explicit(run, memory_order_relaxed) !=
			    RUN_HOSTED ||
		    /* ORDER(elastic.A2): pairs with elastic.R1 in
		     * mg__elastic_park() and elastic.R2 below: the
		     * worker's last round, by whichever thread, is
		     * visible before this one starts. */
		    !atomic_compare_exchange_strong_explicit(
			    run, &hosted, RUN_CLAIMED, memory_order_acquire,
			    memory_order_relaxed))
			continue;
		g->round_work = 0;
		g->round_ns = mg_now_ns();
		over = round_once(g);
		work += g->round_work;
		/* ORDER(elastic.R2): pairs with elastic.A2 above and
		 * elastic.A3 in unpark(): this round is the next runner's
		 * to see. */
		atomic_store_explicit(run, over ? RUN_DONE : RUN_HOSTED,
				      memory_order_release);
		if (over) {
			atomic_fetch_sub_explicit(&df->nhosted, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&df->pub[v].park_seq, 1,
						  memory_order_seq_cst);
			mg_futex_wake(&df->pub[v].park_seq, 1);
		}
	}
	if (work)
		self->round_ns = mg_now_ns(); /* its own busy time starts */
	return work;
}

/* The run ended: what the worker still queues for an output is its
 * consumer's to take (output.c, ENDING).  Not after a stop. */
static void
end_outputs(struct worker *wk)
{
	struct mg_dataflow *df = wk->df;

	for (unsigned i = 0; i < df->nnodes; i++)
		if (df->nodes[i]->kind == SEND && df->nodes[i]->u.send.output)
			mg__output_end(df->nodes[i]->u.send.output, wk->w);
}

/* Every worker's rounds are over: a thread whose own are keeps running
 * parked workers' until then. */
static bool
all_done(const struct mg_dataflow *df)
{
	for (unsigned w = 0; w < df->cfg.workers; w++)
		if (atomic_load_explicit(&df->pub[w].run,
					 memory_order_relaxed) != RUN_DONE)
			return false;
	return true;
}

bool
mg__workers_exited(const struct mg_dataflow *df)
{
	for (unsigned w = 0; w < df->cfg.workers; w++)
		/* ORDER(worker.A2): pairs with worker.R2 in mg__worker_main():
		 * the thread's last pushes and its queues are complete. */
		if (!atomic_load_explicit(&df->pub[w].done,
					  memory_order_acquire))
			return false;
	return true;
}

void *
mg__worker_main(void *arg)
{
	struct worker *wk = arg;
	struct mg_dataflow *df = wk->df;
	_Atomic uint32_t *run = &df->pub[wk->w].run;
	uint64_t nap_ns = NAP_MIN_NS, work, spun = 0;
	unsigned idle = 0;
	bool over = false;
	char name[16];
	int err;

	/* "top -H" and /proc/PID/task/TID/comm tell the threads apart */
	snprintf(name, sizeof(name), "mg-worker-%u", wk->w);
	pthread_setname_np(pthread_self(), name);
	err = mg_pin_self(df->topo, wk->cpu);
	if (err)
		mg__set_error(df, err, "pinning a worker to its CPU");
	prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0);
	/* ORDER(stats.R1): pairs with stats.A1 in wait_ns() (stats.c) */
	if (!df->cfg.no_stats)
		atomic_store_explicit(&df->pub[wk->w].wait_fd,
				      mg_thread_wait_open() + 1,
				      memory_order_release);
	mg_rcu_register();
	for (unsigned i = 0; i < df->nnodes && !err; i++)
		if (df->nodes[i]->kind == STATEFUL)
			err = mg__stateful_prefill(df->nodes[i], wk);
	if (err)
		mg__set_error(df, err, "an operator's prefill");
	/* The clock starts once every worker has built its state.
	 * ORDER(worker.R1): pairs with df.A2 in mg_dataflow_start(): the
	 * prefilled state (or the error) is written before the control
	 * thread starts the clock. */
	atomic_fetch_add_explicit(&df->ready, 1, memory_order_release);
	/* ORDER(worker.A1): pairs with df.R1 in mg_dataflow_start(); without
	 * it the worker could read start_ns before it is set. */
	while (!atomic_load_explicit(&df->go, memory_order_acquire))
		nap(wk, NAP_MIN_NS);
	/* Relaxed: a flag polled once a round; whoever sets it also wakes
	 * the sleepers, and the join orders the rest. */
	while (!atomic_load_explicit(&df->halt, memory_order_relaxed)) {
		work = 0;
		if (!over) {
			wk->round_work = 0;
			over = round_once(wk);
			work = wk->round_work;
			if (over) /* a parker's request is moot */
				atomic_store_explicit(run, RUN_DONE,
						      memory_order_relaxed);
		}
		work += host_parked(wk);
		mg_rcu_quiescent();
		if (over && all_done(df)) {
			end_outputs(wk);
			break;
		}
		if (!over && mg__elastic_park_due(wk)) {
			uint32_t s = mg__elastic_park(wk);

			if (s == RUN_DONE) { /* a host ran its last round */
				over = true;
			} else if (s == RUN_OWN || s == RUN_PARK_REQ) {
				/* unparked (and maybe asked again) */
				wk->round_ns = 0;
				idle = 0;
				nap_ns = NAP_MIN_NS;
			} else { /* halted: a host may be in its round */
				break;
			}
		} else if (work) {
			idle = 0;
			nap_ns = NAP_MIN_NS;
			spun = 0;
		} else if (++idle >= spin_limit(wk, &spun)) {
			nap(wk, nap_ns);
			spun = 0;
			nap_ns = nap_ns * 2 < NAP_MAX_NS ? nap_ns * 2
							 : NAP_MAX_NS;
			/* not busy while it slept */
			wk->round_ns = df->cfg.no_stats ? 0 : mg_now_ns();
		} else {
			ck_pr_stall();
		}
	}
	/* ORDER(worker.R2): pairs with worker.A2 in mg__workers_exited():
	 * after a stop, an output's consumer takes what this thread left. */
	atomic_store_explicit(&df->pub[wk->w].done, true, memory_order_release);
	mg__migrations_wake(df); /* a waiter may be waiting on the run's end */
	mg_rcu_unregister();
	return NULL;
}
