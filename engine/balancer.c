/*
 * balancer.c - the balancer thread (see "balancing" in megaphone.h).
 *
 * Every interval the thread takes the bins' decayed rates and owners
 * (mg_dataflow_bin_stats, from the workers' own counters), scales the bins
 * of a worker behind its input by its in/out ratio (mg__worker_gain) and
 * those of a worker whose records cost more or less than the others' by
 * that ratio (mg__worker_cost), gives each worker the base load of its
 * sources (mg__worker_base), plans with mg_balance_plan() and submits
 * through mg_migrate(): it is a client of the public migration API like
 * any application thread, and never touches a worker's state.
 * Correctness is the migration protocol's.
 *
 * One decision:
 *
 *   1. While its last migration runs, nothing (a second plan would see
 *      loads half moved).  When it has finished, its bins' cool-down starts.
 *      Nothing either before the rates can carry a decision
 *      (mg__balancer_warm(): the WARM_SAMPLES-th sample, or an earlier
 *      one when a worker is at capacity; the thread wakes every sample
 *      until then, and while the sources lag), nor twice on one sample
 *      (so `patience` counts fresh samples).
 *   2. Pinned: bins whose cool-down runs, and bins of unfinished migrations
 *      (the application's too: mg_migrate() would refuse them).
 *   3. Plan at the threshold -- at a quarter of it while every source lags
 *      the clock by more than LAG_NS, or a worker is near capacity
 *      (mg__worker_near_full()).  No moves: balanced, or nothing can
 *      help (a hot bin already alone, bins pinned) -- the latter is logged
 *      once as HOLD.  Moves for `patience` decisions in a row -- or at
 *      the first such decision while lagging, or with the busiest worker
 *      above the mean by FAR_THRESHOLDS thresholds: plan again at half the
 *      threshold just used (so that a move gains at least that half, and
 *      the next needs a drift as large; if it moves nothing, take the
 *      first plan) and submit it at MG_TIME_ASAP.  -EBUSY (a bin went
 *      into another migration meanwhile) is retried at the next decision.
 *   4. Except onto a worker that is behind its input or at capacity
 *      (no_room, mg__worker_full): the rates count processed records, and
 *      a stalled worker processes none -- it would look idle.  Behind
 *      means a backlog on a busy worker (mg__worker_behind).  Logged once
 *      as HOLD, retried.
 *
 * Why it cannot oscillate on a steady load: a bin's rate is the bin's, not
 * its worker's, so a move changes the planned loads at once and exactly;
 * after a migration every worker is within half the threshold (or alone
 * with a hot bin), so the next trigger needs the rates to drift by more
 * than half the threshold of the mean for `patience` decisions (a quarter
 * as much near capacity, where the threshold is a quarter); and a bin
 * that moved cannot move back within its cool-down.
 *
 * Threads.  The balancer's thread owns everything below `lock`'s fields;
 * `lock` guards the events and the stop flag, read by application threads;
 * `join_lock` makes mg_balancer_stop() and the dataflow's join safe to run
 * at the same time.  No worker ever takes either.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_pvt.h"

#define DEFAULT_INTERVAL_NS 500000000ull
#define MIN_INTERVAL_NS	    1000000ull
#define DEFAULT_COOLDOWN_NS 5000000000ull
#define DEFAULT_THRESHOLD   0.2
#define MAX_THRESHOLD	    100.0
#define DEFAULT_PATIENCE    2u
#define MAX_PATIENCE	    1000u
#define MAX_GAP		    1000000ull
/* Rates count from the run's first samples, each of 100 ms (control.c):
 * averages of what the run has seen (stats.c), whose ratios -- all a plan
 * needs -- hold from early on: the WARM_SAMPLES-th sample, or the first
 * that holds WARM_RECORDS a bin on the mean while a worker is at capacity
 * (mg__balancer_warm(); a skewed start at 10 M/s has ten times as many in
 * its first sample). */
#define WARM_SAMPLES 3u
#define WARM_RECORDS 64u
/* A worker is behind its input with more than BEHIND_S seconds of its
 * rate -- or BEHIND_PART of all it has processed, when that is less (early
 * in a run) -- and BEHIND_MIN records, received and not processed (a
 * record waits a few epochs in steady state), while it is nearly as busy
 * as the busiest active worker (BEHIND_BUSY of it): mg__worker_behind(). */
#define BEHIND_S    0.25
#define BEHIND_PART 0.25
#define BEHIND_MIN  1024u
#define BEHIND_BUSY 0.75
/* A worker whose steps take this much of its time is at capacity:
 * nothing moves onto it (mg__worker_full).  Also, of busy time: see
 * mg__balancer_warm(). */
#define SATURATED 0.95
/* mg__worker_gain() trusts a worker's in/out ratio up to this: beyond, it
 * is stalled more than overloaded, and its backlog will come back. */
#define GAIN_MAX 4.0
/* time_per_record(): times are trusted from not at all while the busiest
 * active worker is busy COST_BUSY_LOW of the time to fully at
 * COST_BUSY_FULL, on workers that process COST_MIN_RATE records/s at
 * least; mg__worker_cost() within [1 / COST_MAX, COST_MAX], and 1 while
 * every such worker's is within [1 / COST_SAME, COST_SAME]. */
#define COST_BUSY_LOW  0.5
#define COST_BUSY_FULL 0.9
#define COST_MIN_RATE  100.0
#define COST_MAX       4.0
#define COST_SAME      1.25
/* The dataflow lags when every source is this far behind the clock (a
 * record waits a few epochs in steady state): decide() acts at once. */
#define LAG_NS 50000000ull
/* ... and by this far the active workers do not keep up: one more
 * (mg__scale_wanted()). */
#define SCALE_LAG_NS 10000000ull
/* Scaling in to k workers only below this part of the lowest input rate
 * at which k workers asked for one more (mg__scale_wanted()). */
#define SCALE_IN_PART 0.8
/* A busiest worker above the mean by FAR_THRESHOLDS thresholds: decide()
 * acts at once. */
#define FAR_THRESHOLDS 2.0
/* A worker whose steps take this much of its time is near capacity: an
 * imbalance within the threshold costs latency there, so decide() plans as
 * while the sources lag (mg__worker_near_full()). */
#define NEAR_FULL 0.8
/* Copy mode: what moving a bin costs besides its bytes (a page), so that a
 * plan does not treat empty bins as free. */
#define COPY_BIN_BYTES 4096.0

struct mg_balancer {
	struct mg_dataflow *df;
	struct mg_balancer_config cfg;
	pthread_t thread;
	_Atomic bool running; /* the thread has not ended */
	/* relaxed counters: each written by the thread, read by anyone */
	_Atomic uint64_t rounds, migrations, bins_moved;

	pthread_mutex_t lock; /* the fields up to the next blank line */
	pthread_cond_t wake;  /* stop was set */
	bool stop;
	struct mg_balance_event *ev;
	size_t nev, cap;

	pthread_mutex_t join_lock;
	bool joined; /* under join_lock */

	/* the thread's own */
	uint32_t nbins;
	unsigned W;
	struct mg_bin_stats *bins;
	struct mg_worker_stats *wk;
	double *load, *cost;
	double *scale; /* [W] gain x cost: what a worker's bins' rates weigh */
	double *base;  /* [W] mg__worker_base() */
	uint16_t *owner, *target;
	uint8_t *pinned;
	uint8_t *active;      /* [W] the first mg_dataflow_active() */
	uint64_t *settled_ns; /* [nbins] when its last move finished, 0 */
	struct mg_migration *current;
	uint32_t *cur_bins; /* [nbins] the bins `current` moves */
	uint32_t ncur;
	uint64_t samples; /* the rates' samples at the last decision */
	uint64_t lag_ns;  /* how far the sources lagged at it */
	unsigned streak;  /* decisions in a row with a plan at the threshold */
	bool holding;	  /* a HOLD was logged since the last change */
	unsigned k;	  /* active workers at this decision */
	struct mg__scale_reading sr; /* what scaling read at it */
	double *full_rate;	     /* [W + 1] mg__scale_wanted()'s */
	unsigned scale_streak;	     /* decisions in a row wanting another k */
	int scale_dir;		     /* ... this way: +1 or -1 */
	uint64_t scaled_ns;	     /* when it last changed k; 0: never */
};

/* The sources lagged the clock by more than LAG_NS at the last decision. */
static bool
lagging(const struct mg_balancer *b)
{
	return b->lag_ns > LAG_NS;
}

static void
balancer_free(struct mg_balancer *b)
{
	size_t i;

	for (i = 0; i < b->nev; i++) {
		free((void *)b->ev[i].load_before);
		free((void *)b->ev[i].load_after);
		free((void *)b->ev[i].busy);
	}
	free(b->ev);
	free(b->bins);
	free(b->wk);
	free(b->load);
	free(b->scale);
	free(b->cost);
	free(b->base);
	free(b->owner);
	free(b->target);
	free(b->pinned);
	free(b->active);
	free(b->settled_ns);
	free(b->cur_bins);
	free(b->full_rate);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->join_lock);
	free(b);
}

/* Sleep one interval -- until the first decision, and while the sources
 * lag, one sample period at most: the first comes with the first sample
 * that can carry it (mg__balancer_warm()), and a lagging dataflow's next
 * move with the first sample after the last one finished, its backlog
 * growing meanwhile; false once stop is set. */
static bool
sleep_interval(struct mg_balancer *b)
{
	uint64_t ns = b->cfg.interval_ns;
	struct timespec dl;
	bool go_on;

	if ((!b->samples || lagging(b)) && ns > MG_STATS_SAMPLE_NS)
		ns = MG_STATS_SAMPLE_NS;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (time_t)(ns / 1000000000ull);
	dl.tv_nsec += (long)(ns % 1000000000ull);
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->lock);
	while (!b->stop &&
	       pthread_cond_timedwait(&b->wake, &b->lock, &dl) != ETIMEDOUT)
		;
	go_on = !b->stop;
	pthread_mutex_unlock(&b->lock);
	return go_on;
}

/* Per-worker sums of load[] under @owner into a fresh array; NULL if out
 * of memory. */
static double *
worker_loads(const struct mg_balancer *b, const uint16_t *owner)
{
	double *l = malloc(sizeof(*l) * b->W);
	uint32_t i;

	if (l) {
		memcpy(l, b->base, sizeof(*l) * b->W);
		for (i = 0; i < b->nbins; i++)
			l[owner[i]] += b->load[i];
	}
	return l;
}

/* Log event @e (its arrays given to the balancer) and tell the callback.
 * Out of memory, the event is dropped: a decision still stands. */
static void
log_event(struct mg_balancer *b, struct mg_balance_event *e)
{
	bool kept = false;

	pthread_mutex_lock(&b->lock);
	if (b->nev == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		struct mg_balance_event *v = realloc(b->ev, sizeof(*v) * cap);

		if (v) {
			b->ev = v;
			b->cap = cap;
		}
	}
	if (b->nev < b->cap && e->load_before && e->load_after && e->busy) {
		b->ev[b->nev++] = *e;
		kept = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (b->cfg.on_event)
		b->cfg.on_event(b->cfg.ctx, e);
	if (!kept) {
		free((void *)e->load_before);
		free((void *)e->load_after);
		free((void *)e->busy);
	}
}

/* An event of @kind with the loads before (and after @target, or the
 * same), the busiest worker in *@busiest. */
static struct mg_balance_event
new_event(struct mg_balancer *b, enum mg_balance_kind kind,
	  const struct mg_balance_result *r, const uint16_t *target,
	  unsigned *busiest)
{
	struct mg_dataflow *df = b->df;
	struct mg_balance_event e = {
		.t_s = (double)(mg_now_ns() - df->start_ns) / 1e9,
		.kind = kind,
		.mean = r->mean,
		.limit = r->limit,
		.max_before = r->max_before,
		.max_after = r->max_after,
		.workers = b->W,
		.hot = r->hot,
		.active_before = b->k,
		.active_after = b->k,
		.utilization = b->sr.util,
		.op_utilization = b->sr.ops,
		.in_rate = b->sr.in_rate,
	};
	double *busy = malloc(sizeof(*busy) * b->W);
	const double *before = worker_loads(b, b->owner);
	unsigned w;

	e.load_before = before;
	e.load_after = worker_loads(b, target);
	*busiest = 0;
	for (w = 0; busy && w < b->W; w++)
		busy[w] = b->wk[w].busy;
	for (w = 0; before && w < b->W; w++)
		if (before[w] > before[*busiest])
			*busiest = w;
	e.busy = busy;
	for (uint32_t i = 0; i < b->nbins; i++)
		e.pinned += b->pinned[i];
	return e;
}

static double
times_mean(double x, double mean)
{
	return mean > 0 ? x / mean : 0;
}

/* The fraction of its time worker @w spends in operator and source steps
 * (work + feed): what it does, without its polling. */
static double
steps(const struct mg_worker_stats *w)
{
	return w->work + w->feed;
}

/* A HOLD: nothing can move (@behind < 0), or the plan would move bins
 * onto worker @behind, which has no room (mg__worker_full). */
static void
hold(struct mg_balancer *b, const struct mg_balance_result *r, int behind)
{
	unsigned busiest;
	struct mg_balance_event e =
		new_event(b, MG_BALANCE_HOLD, r, b->owner, &busiest);

	if (behind >= 0 && !mg__worker_behind(b->wk, b->k, (unsigned)behind))
		snprintf(e.reason, sizeof(e.reason),
			 "worker %u at %.2fx the mean, but worker %d is at "
			 "capacity (steps %.2f of its time): nothing moves "
			 "onto it",
			 busiest, times_mean(r->max_before, r->mean), behind,
			 steps(&b->wk[behind]));
	else if (behind >= 0)
		snprintf(e.reason, sizeof(e.reason),
			 "worker %u at %.2fx the mean, but worker %d is behind "
			 "its input (%llu records waiting): nothing moves "
			 "onto it until it catches up",
			 busiest, times_mean(r->max_before, r->mean), behind,
			 (unsigned long long)b->wk[behind].backlog);
	else if (r->hot)
		snprintf(e.reason, sizeof(e.reason),
			 "worker %u at %.2fx the mean (limit %.2fx): %u hot "
			 "bin%s heavier than the limit, kept alone",
			 busiest, times_mean(r->max_before, r->mean),
			 times_mean(r->limit, r->mean), r->hot,
			 r->hot == 1 ? "" : "s, each");
	else if (e.pinned)
		snprintf(e.reason, sizeof(e.reason),
			 "worker %u at %.2fx the mean (limit %.2fx): its "
			 "bins are cooling down or moving (%u pinned)",
			 busiest, times_mean(r->max_before, r->mean),
			 times_mean(r->limit, r->mean), e.pinned);
	else
		snprintf(e.reason, sizeof(e.reason),
			 "worker %u at %.2fx the mean (limit %.2fx): its "
			 "sources' and inputs' load, which no move changes "
			 "(%.0f%% of its time)",
			 busiest, times_mean(r->max_before, r->mean),
			 times_mean(r->limit, r->mean),
			 100 * b->wk[busiest].feed);
	log_event(b, &e);
}

/* The busiest of the first @k workers' busy fractions; 0 for none. */
static double
top_busy(const struct mg_worker_stats *ws, unsigned k)
{
	double top = 0;

	for (unsigned v = 0; v < k; v++)
		top = ws[v].busy > top ? ws[v].busy : top;
	return top;
}

/*
 * Worker @w is behind its input: more than BEHIND_S of its rate (records/s
 * processed) -- or BEHIND_PART of all it has processed, when less: in a
 * run's first second its rate holds under BEHIND_S of records, and a
 * skewed start must show as one -- and BEHIND_MIN records received and not
 * processed, and it is busy -- at least BEHIND_BUSY of the busiest active
 * worker's fraction.
 * A backlog alone does not say who is late: records wait for the input
 * frontier, which every sender's marks hold, so a light worker beside an
 * overloaded one holds a backlog as large, only idle (its records wait
 * on the other's rounds).  Busy time is wall time, so a worker starved of
 * its CPU, whose rounds are preempted, reads busy: it still counts.
 */
bool
mg__worker_behind(const struct mg_worker_stats *ws, unsigned k, unsigned w)
{
	double backlog = (double)ws[w].backlog;
	double part = BEHIND_PART * (double)ws[w].records,
	       span = ws[w].rate * BEHIND_S;

	return backlog > BEHIND_MIN && backlog > (part < span ? part : span) &&
	       ws[w].busy >= BEHIND_BUSY * top_busy(ws, k);
}

/*
 * What worker @w's bins' rates understate its load by: the records it
 * receives per record it processes while it is behind its input
 * (mg__worker_behind), at most GAIN_MAX; else 1.  A bin's rate counts
 * processed records, so an overloaded worker shows its capacity, not its
 * load, and a plan on those rates moves too little off it (or nothing,
 * early on, when every worker has processed little).  Its bins' shares of
 * what it receives are taken to be their shares of what it processed.
 * Only a worker behind: one that has just received bins waits on their
 * old owner a while, and that backlog is no load to move back.
 */
double
mg__worker_gain(const struct mg_worker_stats *ws, unsigned k, unsigned w)
{
	double g;

	if (!mg__worker_behind(ws, k, w) || ws[w].rate <= 0)
		return 1;
	g = ws[w].in_rate / ws[w].rate;
	return g < 1 ? 1 : g > GAIN_MAX ? GAIN_MAX : g;
}

/*
 * The active workers' time in stateful steps per processed record (work /
 * rate, summed over the workers that process COST_MIN_RATE at least),
 * and in *@trust how far times are trusted: from not at all while the
 * busiest active worker is busy COST_BUSY_LOW of the time (everyone has
 * room: latency does not depend on it, and busy time is mostly noise) to
 * fully (1) at COST_BUSY_FULL.  0 when it cannot tell.
 */
static double
time_per_record(const struct mg_worker_stats *ws, unsigned k, double *trust)
{
	double work = 0, rate = 0;

	for (unsigned v = 0; v < k; v++)
		if (ws[v].rate >= COST_MIN_RATE) {
			work += ws[v].work;
			rate += ws[v].rate;
		}
	*trust = (top_busy(ws, k) - COST_BUSY_LOW) /
		 (COST_BUSY_FULL - COST_BUSY_LOW);
	*trust = *trust < 0 ? 0 : *trust > 1 ? 1 : *trust;
	return work > 0 && rate > 0 ? work / rate : 0;
}

/* Worker @s's time in stateful steps per record over @unit, untrusted. */
static double
raw_cost(const struct mg_worker_stats *s, double unit)
{
	return s->work / s->rate / unit;
}

/*
 * What a record costs on worker @w against the active workers' mean: its
 * time in stateful steps per processed record over theirs
 * (time_per_record()), as far as trusted, within [1 / COST_MAX,
 * COST_MAX]; 1 for a worker with too few records to tell.  A plan on
 * records alone equals the workers' record rates, which is not an equal
 * load when a worker's CPU does less per second -- a slower or shared
 * vCPU, a worker whose keys miss the cache more -- and, once such a worker
 * is over capacity, it never catches up on a plan that says "balanced".
 * Weighted by this, a worker's bins' load is their share of its time: the
 * plan evens out time, and a placement that evened it is a fixed point,
 * not a record imbalance to undo.  A bin is taken to cost the same on its
 * receiver, so a move off a costly worker onto a cheap one plans for more
 * than it adds there: the next decision moves the rest.
 *
 * With every worker's within COST_SAME of the mean (before the trust), a
 * record costs the same everywhere: a step costs less a record the more
 * records share it (~400 ns a step besides ~75 ns a record, measured with
 * fixed placements), so a worker that sheds bins reads dearer with each
 * and the one that takes them cheaper -- taken at its word, that moved
 * bins off the same worker again and again (at 15 M/s skewed, its cost
 * read 1.12x, then 1.53x four seconds and 24 moves later; under a rising
 * elastic load 1.17x, 1.26x, 1.36x).  A slower CPU's difference is larger
 * (1.5-3x on this VM's slow vCPU, 7x in test_slow_cpu) and counts whole.
 */
double
mg__worker_cost(const struct mg_worker_stats *ws, unsigned k, unsigned w)
{
	double trust, unit = time_per_record(ws, k, &trust), c;
	bool same = true;

	if (ws[w].rate < COST_MIN_RATE || !(unit > 0) || !(trust > 0))
		return 1;
	for (unsigned v = 0; v < k; v++) {
		if (ws[v].rate < COST_MIN_RATE)
			continue;
		c = raw_cost(&ws[v], unit);
		same &= c <= COST_SAME && c >= 1 / COST_SAME;
	}
	if (same)
		return 1;
	c = 1 + trust * (raw_cost(&ws[w], unit) - 1);
	return c < 1 / COST_MAX ? 1 / COST_MAX : c > COST_MAX ? COST_MAX : c;
}

/*
 * Worker @w's base load, in the bins' unit (records/s at the mean cost):
 * its time in source and input steps (mg_worker_stats.feed) over the
 * active workers' time per record, as far as trusted; 0 when inactive or
 * when it cannot tell.  Making and sending a source's share costs a worker
 * nearly the same whatever bins it holds -- but on a slower CPU it costs
 * more, and leaves less room for bins: a slow worker whose bins' time
 * equals the others' is still the one over capacity.  (Not quite the same:
 * a record its source sends into another worker's ring costs ~30 ns more
 * than one kept local on the README's VM -- 27-33 ns, from the feed time
 * with 87.5 % of the bins on one worker and on the other, uniform keys at
 * 6 M/s -- so a worker that sheds bins pays a little more base.  The plan
 * takes the base as it reads, and the next decision sees what a move did
 * to it.)
 * Not busy time less the bins' (that holds the polling, which a light
 * worker pays in many small rounds and a loaded one amortizes).
 */
double
mg__worker_base(const struct mg_worker_stats *ws, unsigned k, unsigned w)
{
	double trust, unit = time_per_record(ws, k, &trust);

	if (w >= k || !(unit > 0))
		return 0;
	return trust * ws[w].feed / unit;
}

/*
 * Worker @w has no room for more bins: it is behind its input
 * (mg__worker_behind) or at capacity: its steps (work + feed) take
 * SATURATED of its time.  Not its busy time: a worker that keeps up polls
 * in rounds that nearly all find a record or two, and reads busy 1.00 far
 * below its capacity (two workers keeping up with 12 M key-count
 * records/s: busy 1.00, steps 0.81 -- and such a worker, the light one of
 * a skewed start, got nothing: "at capacity (busy 1.00)").  The rates count
 * processed records, so an overloaded worker's understate its load and a
 * stalled one's show none: moving more onto it on their word could only
 * make it worse -- and when every worker is at capacity (a machine short
 * of CPU), moves only cost, each a round of cold caches on its receiver.
 * Moves away from it are fine (they are what catches it up).
 */
bool
mg__worker_full(const struct mg_worker_stats *ws, unsigned k, unsigned w)
{
	return mg__worker_behind(ws, k, w) || steps(&ws[w]) >= SATURATED;
}

/* A worker the plan @r moves bins onto although it has no room
 * (mg__worker_full), or -1. */
static int
no_room(const struct mg_balancer *b, const struct mg_balance_result *r)
{
	for (uint32_t i = 0; i < r->nmoves; i++)
		if (mg__worker_full(b->wk, b->k, r->moves[i].worker))
			return (int)r->moves[i].worker;
	return -1;
}

/*
 * The busiest active worker (by steps: work + feed) when its steps take
 * NEAR_FULL of its time, or -1.  There, an imbalance the threshold allows
 * is latency: the threshold trades moves against an imbalance that costs
 * nothing while every worker has room, but a worker near capacity has no
 * margin for the machine's stalls -- at 11 M/s skewed, a placement at
 * 7.0 M/s on worker 0 (steps 0.81-0.85) against 4.0 M/s on worker 1
 * (0.68), within the threshold once their sources' time is counted, held
 * 7 s, until a slowdown put worker 0 behind and latency rose to 130 ms.
 */
int
mg__worker_near_full(const struct mg_worker_stats *ws, unsigned k)
{
	int top = -1;

	for (unsigned v = 0; v < k; v++)
		if (steps(&ws[v]) >= NEAR_FULL &&
		    (top < 0 || steps(&ws[v]) > steps(&ws[top])))
			top = (int)v;
	return top;
}

/* Submit @r as a migration (planned at @first's threshold, whose reason
 * the event gives); false if the engine refused it (retried at the next
 * decision, or the run is ending). */
static bool
submit(struct mg_balancer *b, const struct mg_balance_result *r,
       const struct mg_balance_result *first)
{
	struct mg_migration *m;
	struct mg_balance_event e;
	unsigned busiest;
	uint64_t bytes = 0;
	uint32_t i;
	char costs[40] = "", why[32] = "";
	int near = mg__worker_near_full(b->wk, b->k);
	double cost;

	memcpy(b->target, b->owner, sizeof(*b->target) * b->nbins);
	for (i = 0; i < r->nmoves; i++) {
		b->target[r->moves[i].bin] = (uint16_t)r->moves[i].worker;
		b->cur_bins[i] = r->moves[i].bin;
		bytes += b->bins[r->moves[i].bin].state_bytes;
	}
	if (mg_migrate(b->df, b->cfg.strategy, b->target, MG_TIME_ASAP,
		       b->cfg.gap, &m))
		return false;
	b->current = m;
	b->ncur = r->nmoves;
	atomic_store_explicit(
		&b->migrations,
		atomic_load_explicit(&b->migrations, memory_order_relaxed) + 1,
		memory_order_relaxed);
	atomic_store_explicit(
		&b->bins_moved,
		atomic_load_explicit(&b->bins_moved, memory_order_relaxed) +
			r->nmoves,
		memory_order_relaxed);
	e = new_event(b, MG_BALANCE_MOVE, first, b->target, &busiest);
	e.max_after = r->max_after;
	e.bins = r->nmoves;
	e.bytes = bytes;
	e.migration = m;
	cost = mg__worker_cost(b->wk, b->k, busiest);
	if (fabs(cost - 1) >= 0.1)
		snprintf(costs, sizeof(costs), ", its records cost %.2fx",
			 cost);
	if (lagging(b))
		snprintf(why, sizeof(why), " (the sources lag the clock)");
	else if (near >= 0)
		snprintf(why, sizeof(why), " (worker %u near capacity)",
			 (uint16_t)near); /* workers fit 16 bits */
	snprintf(e.reason, sizeof(e.reason),
		 "worker %u at %.2fx the mean%s, above %.2fx for %u "
		 "decision%s: %u bin%s move, planned for %.2fx%s",
		 busiest, times_mean(first->max_before, first->mean), costs,
		 times_mean(first->limit, first->mean), b->streak,
		 b->streak == 1 ? "" : "s", r->nmoves,
		 r->nmoves == 1 ? "" : "s",
		 times_mean(r->max_after, first->mean), why);
	log_event(b, &e);
	return true;
}

/*
 * Scaling (mg_balancer_config.scale_low/high): the direction @ws (of @W
 * workers, the first @k active) asks for, 0 if none, and what it read in
 * *@out.
 *
 * One more worker with the busy fractions above scale_high, with an active
 * worker behind its input -- busy time is wall time, so a worker starved
 * of its CPU (an oversubscribed or loaded machine) looks idle while its
 * backlog grows -- or with the sources lagging the clock by SCALE_LAG_NS
 * (@lag_ns; a record waits a few epochs in steady state): the active
 * workers do not keep up, whatever their busy time reads, and the lag
 * comes well before 0.25 s of a worker's rate waiting.
 *
 * One fewer by the time in operator and source steps (work + feed), not
 * the busy time: a polling worker's busy time counts every round that
 * found a record whole, with the round's own costs (receiving, flushing,
 * frontiers), and on a light stream nearly every round finds one -- two
 * workers at a tenth of their capacity read busy 0.55-0.65 each, and one
 * worker alone at that load 0.35 (the rounds' costs do not add up: more
 * records share a round).  So busy time can only say when to scale out
 * (it reads full early: one worker at 3.6 M/s reads 1.0, and keeps up
 * with 14 M/s).
 * The steps' time is no projection either: two workers at 1.2 M/s spend
 * 0.4 of their time each in steps, one alone 0.3 (small batches cost
 * more a record: receiving from the other worker, the per-step work), so
 * "k workers' steps over k - 1" overstates what one fewer would take 2-3x
 * and refused every scale-in from two workers at 10 % of 18 M/s.  So the
 * rule learns instead: one fewer when the steps' time over k is below
 * scale_low and nothing asks for one more (all W may be active and busy
 * above scale_high) -- and not at an input rate of SCALE_IN_PART of one
 * at which k - 1 workers asked for one more (@full_rate[k - 1], 0 if
 * never: the caller's record of scale-outs).  A scale-in too far shows
 * as lag or busy time within a few decisions and is undone, once: a
 * steady load cannot make it scale in and out again.
 */
int
mg__scale_wanted(const struct mg_worker_stats *ws, unsigned k, unsigned W,
		 const struct mg_balancer_config *c, uint64_t lag_ns,
		 const double *full_rate, struct mg__scale_reading *out)
{
	struct mg__scale_reading r = {.late = lag_ns > SCALE_LAG_NS};
	double ops = 0;

	for (unsigned w = 0; w < W; w++) {
		r.util += ws[w].busy;
		ops += steps(&ws[w]);
		r.in_rate += ws[w].in_rate;
		if (w < k)
			r.late |= mg__worker_behind(ws, k, w);
	}
	r.util /= k;
	r.ops = ops / k;
	*out = r;
	if (r.util > c->scale_high || r.late)
		return k < W ? 1 : 0;
	if (r.ops < c->scale_low && k > 1 &&
	    (!full_rate[k - 1] || r.in_rate < SCALE_IN_PART * full_rate[k - 1]))
		return -1;
	return 0;
}

/* mg__scale_wanted() for this decision, 0 within a cool-down of the last
 * change. */
static int
scale_wanted(struct mg_balancer *b, uint64_t now)
{
	int dir = mg__scale_wanted(b->wk, b->k, b->W, &b->cfg, b->lag_ns,
				   b->full_rate, &b->sr);

	if (!b->cfg.scale_high ||
	    (b->scaled_ns && now - b->scaled_ns < b->cfg.cooldown_ns))
		return 0;
	return dir;
}

/* Change the active workers by @dir; false if the engine refused (retried
 * at the next decision). */
static bool
scale(struct mg_balancer *b, int dir, uint64_t now)
{
	unsigned k = (unsigned)((int)b->k + dir), busiest;
	struct mg_balance_result none = {0};
	struct mg_balance_event e;
	struct mg_migration *m;
	const struct mg_balancer_config *c = &b->cfg;
	char why[40] = "";

	if (mg__set_active(b->df, k, &m))
		return false;
	b->current = m; /* the next decision waits for it */
	b->ncur = 0;
	b->scaled_ns = now;
	e = new_event(b, MG_BALANCE_SCALE, &none, b->owner, &busiest);
	e.active_after = k;
	e.migration = m;
	if (m) {
		struct mg_migration_progress p;

		mg_migration_progress(m, &p);
		e.bins = p.bins;
	}
	if (dir > 0 &&
	    (!b->full_rate[b->k] || b->sr.in_rate < b->full_rate[b->k]))
		b->full_rate[b->k] = b->sr.in_rate;
	if (dir < 0) {
		snprintf(e.reason, sizeof(e.reason),
			 "operators' time %.2f below %.2f (busy %.2f) for %u "
			 "decision%s: %u -> %u active workers, %u bin%s move",
			 b->sr.ops, c->scale_low, b->sr.util, b->scale_streak,
			 b->scale_streak == 1 ? "" : "s", b->k, k, e.bins,
			 e.bins == 1 ? "" : "s");
	} else {
		if (b->lag_ns > SCALE_LAG_NS)
			snprintf(why, sizeof(why),
				 ", the sources %.0f ms behind",
				 (double)b->lag_ns / 1e6);
		else if (b->sr.late)
			snprintf(why, sizeof(why),
				 ", a worker behind its input");
		snprintf(e.reason, sizeof(e.reason),
			 "utilization %.2f %s %.2f%s for %u decision%s: %u -> "
			 "%u active workers, %u bin%s move",
			 b->sr.util,
			 b->sr.util > c->scale_high ? "above" : "(not above)",
			 c->scale_high, why, b->scale_streak,
			 b->scale_streak == 1 ? "" : "s", b->k, k, e.bins,
			 e.bins == 1 ? "" : "s");
	}
	log_event(b, &e);
	return true;
}

/*
 * The rates read at the rates' sample @samples -- of the @nbins bins @bins
 * and the first @k workers @ws -- can carry a first decision: from the
 * WARM_SAMPLES-th sample on; before, only to relieve a worker at capacity
 * (busy SATURATED: its backlog grows with every sample waited for) and on
 * WARM_RECORDS a bin on the mean.  An early sample also holds the run's
 * start-up, and a worker's time counts only once a step has ended, so
 * early busy and feed times read low -- but a worker that reads full from
 * the first sample on is full.
 */
bool
mg__balancer_warm(const struct mg_bin_stats *bins, uint32_t nbins,
		  const struct mg_worker_stats *ws, unsigned k,
		  uint64_t samples)
{
	uint64_t records = 0;

	if (samples >= WARM_SAMPLES)
		return true;
	if (top_busy(ws, k) < SATURATED)
		return false;
	for (uint32_t i = 0; i < nbins; i++)
		records += bins[i].records;
	return records >= (uint64_t)WARM_RECORDS * nbins;
}

/* One decision (see the file comment). */
static void
decide(struct mg_balancer *b)
{
	struct mg_dataflow *df = b->df;
	struct mg_balance_input in = {
		.nbins = b->nbins,
		.nworkers = b->W,
		.load = b->load,
		.cost = df->cfg.mode == MG_COPY ? b->cost : NULL,
		.owner = b->owner,
		.pinned = b->pinned,
		.active = b->active,
		.threshold = b->cfg.threshold,
		.base = b->base,
	};
	struct mg_balance_result r1, r2 = {0};
	uint64_t now = mg_now_ns(), samples;
	bool far;
	uint32_t i;
	unsigned w;
	int dir;

	b->lag_ns = mg__sources_lag_ns(df);
	if (b->current) {
		struct mg_migration_progress p;

		mg_migration_progress(b->current, &p);
		if (!p.done)
			return;
		for (i = 0; i < b->ncur; i++)
			b->settled_ns[b->cur_bins[i]] = now;
		b->current = NULL;
		b->streak = 0;
	}
	samples = mg__stats_samples(df);
	if (!samples || samples == b->samples)
		return; /* nothing new to decide on */
	if (mg_dataflow_bin_stats(df, b->bins) ||
	    mg_dataflow_worker_stats(df, b->wk))
		return; /* out of memory: try again next time */
	b->k = mg_dataflow_active(df);
	if (!mg__balancer_warm(b->bins, b->nbins, b->wk, b->k, samples))
		return;
	b->samples = samples;
	atomic_store_explicit(
		&b->rounds,
		atomic_load_explicit(&b->rounds, memory_order_relaxed) + 1,
		memory_order_relaxed);
	mg__migrations_busy(df, b->pinned);
	for (w = 0; w < b->W; w++) {
		b->scale[w] = mg__worker_gain(b->wk, b->k, w) *
			      mg__worker_cost(b->wk, b->k, w);
		b->base[w] = mg__worker_base(b->wk, b->k, w);
	}
	for (i = 0; i < b->nbins; i++) {
		b->load[i] = b->bins[i].rate * b->scale[b->bins[i].owner];
		b->cost[i] = (double)b->bins[i].state_bytes + COPY_BIN_BYTES;
		b->owner[i] = (uint16_t)b->bins[i].owner;
		b->pinned[i] |= b->settled_ns[i] &&
				now - b->settled_ns[i] < b->cfg.cooldown_ns;
	}
	for (w = 0; w < b->W; w++)
		b->active[w] = w < b->k;
	dir = scale_wanted(b, now);
	if (!dir || dir != b->scale_dir)
		b->scale_streak = 0;
	b->scale_dir = dir;
	if (dir && ++b->scale_streak >= b->cfg.patience) {
		if (scale(b, dir, now))
			b->scale_streak = 0;
		return;
	}
	/* While the whole dataflow lags the clock, a backlog grows with each
	 * decision waited for, and a busiest worker within the threshold can
	 * still be the one that holds it back (its processed rates are its
	 * capacity, not its load): act at the first decision, at a quarter of
	 * the threshold, so that it gets room to drain the backlog.  A steady
	 * load that keeps up never lags, so this cannot make one oscillate.
	 * Near capacity, at a quarter too, after `patience` as usual: the
	 * hysteresis is a quarter as wide there, and the cool-down holds. */
	in.threshold =
		b->cfg.threshold /
		(lagging(b) || mg__worker_near_full(b->wk, b->k) >= 0 ? 4 : 1);
	if (mg_balance_plan(&in, &r1))
		return; /* out of memory */
	if (!r1.nmoves) {
		bool above = r1.max_before > r1.limit * (1 + 1e-9);

		b->streak = 0;
		if (above && !b->holding)
			hold(b, &r1, -1);
		b->holding = above;
		return;
	}
	/* Nor is an imbalance of twice the threshold noise: a steady load
	 * left within half the threshold cannot drift that far.  (The limit
	 * is the mean plus the threshold times the bins' mean load.) */
	far = r1.max_before - r1.mean > FAR_THRESHOLDS * b->cfg.threshold /
						in.threshold *
						(r1.limit - r1.mean);
	if (++b->streak >= (lagging(b) || far ? 1 : b->cfg.patience)) {
		const struct mg_balance_result *r = &r1;
		int behind;

		in.threshold /= 2;
		if (!mg_balance_plan(&in, &r2) && r2.nmoves)
			r = &r2;
		behind = no_room(b, r);
		if (behind >= 0) {
			if (!b->holding)
				hold(b, &r1, behind);
			b->holding = true;
		} else if (submit(b, r, &r1)) {
			b->streak = 0;
			b->holding = false;
		}
		mg_balance_result_free(&r2);
	}
	mg_balance_result_free(&r1);
}

static void *
balancer_main(void *arg)
{
	struct mg_balancer *b = arg;
	struct mg_dataflow *df = b->df;

	pthread_setname_np(pthread_self(), "mg-balancer");
	while (sleep_interval(b)) {
		/* ORDER(bal.A1): pairs with df.R1 in mg_dataflow_start(): the
		 * run's start (start_ns, the statistics) is visible. */
		if (!atomic_load_explicit(&df->go, memory_order_acquire))
			continue; /* not started yet */
		if (!mg_dataflow_accepts_migrations(df))
			break; /* ended, stopped or failed */
		decide(b);
	}
	/* ORDER(bal.R2): pairs with bal.A2 in mg_balancer_stats(): whoever
	 * sees the thread ended sees its last counts. */
	atomic_store_explicit(&b->running, false, memory_order_release);
	return NULL;
}

static int
check_config(struct mg_balancer_config *c)
{
	if (!c->interval_ns)
		c->interval_ns = DEFAULT_INTERVAL_NS;
	if (c->threshold == 0)
		c->threshold = DEFAULT_THRESHOLD;
	if (!c->cooldown_ns)
		c->cooldown_ns = DEFAULT_COOLDOWN_NS;
	if (!c->patience)
		c->patience = DEFAULT_PATIENCE;
	if (c->interval_ns < MIN_INTERVAL_NS || !isfinite(c->threshold) ||
	    c->threshold < 0 || c->threshold > MAX_THRESHOLD ||
	    c->patience > MAX_PATIENCE || (unsigned)c->strategy > MG_BATCHED ||
	    c->gap > MAX_GAP)
		return -EINVAL;
	if ((c->scale_low || c->scale_high) &&
	    !(c->scale_low > 0 && c->scale_low < c->scale_high &&
	      c->scale_high <= 1)) /* also false for NaN */
		return -EINVAL;
	return 0;
}

int
mg_balancer_start(struct mg_dataflow *df, const struct mg_balancer_config *cfg,
		  struct mg_balancer **out)
{
	struct mg_balancer_config c =
		cfg ? *cfg : (struct mg_balancer_config){0};
	struct mg_balancer *b;
	size_t n;

	if (!df || check_config(&c) || df->cfg.no_stats || !df->nmigratable ||
	    df->joined || (df->started && mg__run_over(df)))
		return -EINVAL;
	if (df->balancer)
		return -EBUSY;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->df = df;
	b->cfg = c;
	b->nbins = 1u << df->nbins_log2;
	b->W = df->cfg.workers;
	n = b->nbins;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->join_lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&b->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	atomic_init(&b->running, true);
	atomic_init(&b->rounds, 0);
	atomic_init(&b->migrations, 0);
	atomic_init(&b->bins_moved, 0);
	b->bins = malloc(sizeof(*b->bins) * n);
	b->wk = malloc(sizeof(*b->wk) * b->W);
	b->load = malloc(sizeof(*b->load) * n);
	b->scale = malloc(sizeof(*b->scale) * b->W);
	b->base = calloc(b->W, sizeof(*b->base));
	b->cost = malloc(sizeof(*b->cost) * n);
	b->owner = malloc(sizeof(*b->owner) * n);
	b->target = malloc(sizeof(*b->target) * n);
	b->pinned = malloc(n);
	b->active = malloc(b->W);
	b->settled_ns = calloc(n, sizeof(*b->settled_ns));
	b->cur_bins = malloc(sizeof(*b->cur_bins) * n);
	b->full_rate = calloc(b->W + 1, sizeof(*b->full_rate));
	if (!b->full_rate || !b->bins || !b->wk || !b->load || !b->scale ||
	    !b->base || !b->cost || !b->owner || !b->target || !b->pinned ||
	    !b->active || !b->settled_ns || !b->cur_bins) {
		balancer_free(b);
		return -ENOMEM;
	}
	if (pthread_create(&b->thread, NULL, balancer_main, b)) {
		balancer_free(b);
		return -EAGAIN;
	}
	df->balancer = b;
	if (out)
		*out = b;
	return 0;
}

int
mg_balancer_stop(struct mg_balancer *b)
{
	if (!b)
		return -EINVAL;
	pthread_mutex_lock(&b->join_lock);
	if (!b->joined) {
		pthread_mutex_lock(&b->lock);
		b->stop = true;
		pthread_cond_broadcast(&b->wake);
		pthread_mutex_unlock(&b->lock);
		pthread_join(b->thread, NULL);
		b->joined = true;
	}
	pthread_mutex_unlock(&b->join_lock);
	return 0;
}

void
mg__balancer_join(struct mg_dataflow *df)
{
	if (df->balancer)
		mg_balancer_stop(df->balancer);
}

void
mg__balancer_free(struct mg_dataflow *df)
{
	if (!df->balancer)
		return;
	mg_balancer_stop(df->balancer);
	balancer_free(df->balancer);
	df->balancer = NULL;
}

size_t
mg_balancer_nevents(const struct mg_balancer *b)
{
	struct mg_balancer *m = (struct mg_balancer *)b; /* for the lock */
	size_t n;

	if (!b)
		return 0;
	pthread_mutex_lock(&m->lock);
	n = m->nev;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int
mg_balancer_event(const struct mg_balancer *b, size_t i,
		  struct mg_balance_event *out)
{
	struct mg_balancer *m = (struct mg_balancer *)b; /* for the lock */
	int err = 0;

	if (!b || !out)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (i < m->nev)
		*out = m->ev[i];
	else
		err = -ENOENT;
	pthread_mutex_unlock(&m->lock);
	return err;
}

void
mg_balancer_stats(const struct mg_balancer *b, struct mg_balancer_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!b)
		return;
	out->rounds = atomic_load_explicit(&b->rounds, memory_order_relaxed);
	out->migrations =
		atomic_load_explicit(&b->migrations, memory_order_relaxed);
	out->bins_moved =
		atomic_load_explicit(&b->bins_moved, memory_order_relaxed);
	/* ORDER(bal.A2): pairs with bal.R2 in balancer_main(). */
	out->running = atomic_load_explicit(&b->running, memory_order_acquire);
}
