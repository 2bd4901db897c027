/*
 * balance.c - the balancer's planning function (see mg_balance.h for the
 * problem, the algorithm and the bound stated here).
 *
 * PROOF OF THE BOUND.  Take the workers after step 0, with targets T_w,
 * donors d (active, above T_d by e_d), and for each donor the set M_d of its
 * movable non-hot bins.  Any plan reaching the targets
 *
 *   (a) moves every unpinned bin off an inactive worker (forced), and
 *   (b) takes from each donor d bins of M_d whose loads sum to at least
 *       e_d plus whatever it moves onto d: pinned and hot bins stay, and
 *       nothing else lowers d's load.
 *
 * The sets of (b) are disjoint, so a plan costs at least the forced moves
 * plus, per donor, OPT_d: the cheapest subset of M_d covering e_d.  That
 * is the lower bound the planner reports, with OPT_d replaced by what it
 * can compute: for unit costs OPT_d itself (the walk below finds it), for
 * general costs the fractional cover, which is at most OPT_d.
 *
 * Unit costs.  The walk takes the heaviest bin while the heaviest left does
 * not cover the rest of the excess, then the lightest that does: after j
 * bins it holds the j heaviest, so it stops at the first j whose heaviest
 * bins cover e_d, the fewest bins that can.
 *
 * General costs.  Let O_d be a cheapest cover and 2^j the power of two a
 * bin of O_d with the largest cost c_max rounds up to (2^j < 2 c_max); the
 * walk is run with that cap.  All of O_d is within the cap, so the
 * fractional cover over the capped bins costs at most OPT_d.  The walk's
 * bins before the last are exactly that fractional cover's whole bins (it
 * takes bins in order of load per cost until one would cross the excess),
 * and the last one costs at most the crossing bin, at most the cap.  So
 * the walk costs at most OPT_d + 2^j < OPT_d + 2 c_max <= 3 OPT_d; the
 * best walk and the pruning of bins the others cover only do better.
 *
 * Placement.  While the shed bins are placed, the active workers' loads
 * sum to at most the total, so the least loaded carries at most the mean:
 * a bin of at most threshold * M fits under the limit.  If every
 * movable bin of the donors is that light, no bin is ever excluded, one
 * round places everything, every donor ends at or below its target (it
 * shed at least its excess and receives only within the limit) and every
 * receiver within the limit.  The plan then costs the forced moves plus
 * the donors' walks (less, if a bin went back to its donor): the lower
 * bound for unit costs, at most 3 times the optimum for general ones.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "migration/mg_balance.h"
#include "numa/mg_base.h"

#define MAX_WORKERS UINT16_MAX

struct planner {
	const struct mg_balance_input *in;
	uint32_t n, W;
	double eps;	 /* slack of load comparisons: rounding */
	double mean;	 /* total load / active workers */
	double limit;	 /* U */
	uint16_t *at;	 /* [n] owner after step 0 */
	uint16_t *dest;	 /* [n] owner after the plan */
	uint8_t *fixed;	 /* [n] pinned or hot: stays in steps 1-3 */
	uint8_t *gone;	 /* [n] fits nowhere: not shed again */
	uint8_t *forced; /* [n] on an inactive worker: must leave */
	uint32_t *first; /* [W + 1] worker w's bins: of[first[w]..] */
	uint32_t *of;	 /* [n] bins by worker (after step 0) */
	double *carry;	 /* [W] load after step 0, base included */
	double *target;	 /* [W] T_w */
	double *now;	 /* [W] load during placement */
	uint32_t *heap;	 /* [W] active workers, least loaded first */
	uint32_t nheap;
	uint32_t *cand; /* [n] one donor's candidates */
	uint32_t *walk; /* [n] one walk's bins */
	uint32_t *best; /* [n] the cheapest walk's bins */
	int *caps;	/* [n] exponents of the cost caps */
	uint32_t *shed; /* [n] bins leaving their worker this round */
	uint32_t nshed;
	uint8_t *has_hot; /* [W] step 0: holds a hot bin */
	uint32_t *fill;	  /* [W] step 0: next free slot in of[]; at the
			     end: unpinned bins per worker */
	double lower;	  /* lower bound, summed in the first round */
};

static double
cost_of(const struct planner *p, uint32_t b)
{
	return p->in->cost ? p->in->cost[b] : 1.0;
}

static bool
active(const struct planner *p, uint32_t w)
{
	return !p->in->active || p->in->active[w];
}

/* Worker @w's base load: none when inactive. */
static double
base_of(const struct planner *p, uint32_t w)
{
	return p->in->base && active(p, w) ? p->in->base[w] : 0;
}

static int
check(const struct mg_balance_input *in)
{
	uint32_t b, w, nactive = 0;

	if (!in || !in->load || !in->owner || in->nbins == 0 ||
	    in->nworkers == 0 || in->nworkers > MAX_WORKERS ||
	    !isfinite(in->threshold) || in->threshold < 0)
		return -EINVAL;
	for (b = 0; b < in->nbins; b++)
		if (in->owner[b] >= in->nworkers || !isfinite(in->load[b]) ||
		    in->load[b] < 0 ||
		    (in->cost &&
		     (!isfinite(in->cost[b]) || !(in->cost[b] > 0))))
			return -EINVAL;
	for (w = 0; w < in->nworkers; w++) {
		nactive += !in->active || in->active[w];
		if (in->base && (!isfinite(in->base[w]) || in->base[w] < 0))
			return -EINVAL;
	}
	return nactive ? 0 : -EINVAL;
}

static void
planner_free(struct planner *p)
{
	free(p->at);
	free(p->dest);
	free(p->fixed);
	free(p->gone);
	free(p->forced);
	free(p->first);
	free(p->of);
	free(p->carry);
	free(p->target);
	free(p->now);
	free(p->heap);
	free(p->cand);
	free(p->walk);
	free(p->best);
	free(p->caps);
	free(p->shed);
	free(p->has_hot);
	free(p->fill);
}

static int
planner_init(struct planner *p, const struct mg_balance_input *in)
{
	size_t n = in->nbins, W = in->nworkers;

	memset(p, 0, sizeof(*p));
	p->in = in;
	p->n = in->nbins;
	p->W = in->nworkers;
	p->at = malloc(sizeof(*p->at) * n);
	p->dest = malloc(sizeof(*p->dest) * n);
	p->fixed = calloc(n, 1);
	p->gone = calloc(n, 1);
	p->forced = calloc(n, 1);
	p->first = calloc(W + 1, sizeof(*p->first));
	p->of = malloc(sizeof(*p->of) * n);
	p->carry = calloc(W, sizeof(*p->carry));
	p->target = calloc(W, sizeof(*p->target));
	p->now = calloc(W, sizeof(*p->now));
	p->heap = malloc(sizeof(*p->heap) * W);
	p->cand = malloc(sizeof(*p->cand) * n);
	p->walk = malloc(sizeof(*p->walk) * n);
	p->best = malloc(sizeof(*p->best) * n);
	p->caps = malloc(sizeof(*p->caps) * n);
	p->shed = malloc(sizeof(*p->shed) * n);
	p->has_hot = calloc(W, 1);
	p->fill = calloc(W, sizeof(*p->fill));
	if (!p->at || !p->dest || !p->fixed || !p->gone || !p->forced ||
	    !p->first || !p->of || !p->carry || !p->target || !p->now ||
	    !p->heap || !p->cand || !p->walk || !p->best || !p->caps ||
	    !p->shed || !p->has_hot || !p->fill) {
		planner_free(p);
		return -ENOMEM;
	}
	return 0;
}

/* qsort_r orders: the context is the planner. */

/* Hot bins: pinned first (they cannot leave), then heaviest, then bin. */
static int
by_keep(const void *x, const void *y, void *ctx)
{
	const struct planner *p = ctx;
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	bool pa = p->in->pinned && p->in->pinned[a];
	bool pb = p->in->pinned && p->in->pinned[b];
	double la = p->in->load[a], lb = p->in->load[b];

	if (pa != pb)
		return pa ? -1 : 1;
	if (la != lb)
		return la > lb ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* Heaviest first, then bin: the placement order. */
static int
by_load(const void *x, const void *y, void *ctx)
{
	const struct planner *p = ctx;
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	double la = p->in->load[a], lb = p->in->load[b];

	if (la != lb)
		return la > lb ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* Most load per cost first (cross-multiplied: no division), then
 * heaviest, then bin. */
static int
by_ratio(const void *x, const void *y, void *ctx)
{
	const struct planner *p = ctx;
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	double ra = p->in->load[a] * cost_of(p, b);
	double rb = p->in->load[b] * cost_of(p, a);

	if (ra != rb)
		return ra > rb ? -1 : 1;
	return by_load(x, y, ctx);
}

/* Most expensive first, then lightest, then bin: the pruning order. */
static int
by_cost(const void *x, const void *y, void *ctx)
{
	const struct planner *p = ctx;
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	double ca = cost_of(p, a), cb = cost_of(p, b);
	double la = p->in->load[a], lb = p->in->load[b];

	if (ca != cb)
		return ca > cb ? -1 : 1;
	if (la != lb)
		return la < lb ? -1 : 1;
	return a < b ? -1 : a > b;
}

static int
by_int_desc(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;

	return a > b ? -1 : a < b;
}

/* The least loaded active worker of the heap nodes @i and @j. */
static bool
lighter(const struct planner *p, uint32_t i, uint32_t j)
{
	uint32_t a = p->heap[i], b = p->heap[j];

	return p->now[a] < p->now[b] || (p->now[a] == p->now[b] && a < b);
}

static void
sift_down(struct planner *p, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i, t;

		if (l < p->nheap && lighter(p, l, m))
			m = l;
		if (r < p->nheap && lighter(p, r, m))
			m = r;
		if (m == i)
			return;
		t = p->heap[i];
		p->heap[i] = p->heap[m];
		p->heap[m] = t;
		i = m;
	}
}

static void
heap_build(struct planner *p)
{
	uint32_t w;

	p->nheap = 0;
	for (w = 0; w < p->W; w++)
		if (active(p, w))
			p->heap[p->nheap++] = w;
	for (w = p->nheap / 2; w-- > 0;)
		sift_down(p, w);
}

/*
 * Step 0: the limit, the hot bins and their places, the loads, targets and
 * bins by worker after it.  Each active worker keeps its first hot bin in
 * by_keep order; the other hot bins that may move go, heaviest first, to
 * the least loaded active worker without one.  Return: the cost of the
 * forced moves (step 0's and the inactive workers').
 */
static double
step0(struct planner *p)
{
	const struct mg_balance_input *in = p->in;
	uint32_t b, w, k, nhot = 0, nmove = 0, nactive = 0;
	uint32_t *hot = p->shed; /* scratch until the first round */
	double total = 0, base = 0, forced = 0;

	for (b = 0; b < p->n; b++)
		total += in->load[b];
	for (w = 0; w < p->W; w++) {
		nactive += active(p, w);
		p->carry[w] = p->target[w] = base_of(p, w);
		base += p->carry[w];
	}
	p->mean = (total + base) / nactive;
	p->limit = p->mean + in->threshold * total / nactive;
	total += base;
	p->eps = 1e-9 * total;
	for (b = 0; b < p->n; b++) {
		p->at[b] = in->owner[b];
		p->fixed[b] = in->pinned && in->pinned[b];
		if (in->load[b] > p->limit + p->eps) {
			p->fixed[b] = 1;
			hot[nhot++] = b;
		}
		p->carry[in->owner[b]] += in->load[b];
	}
	qsort_r(hot, nhot, sizeof(*hot), by_keep, p);
	for (k = 0; k < nhot; k++) {
		b = hot[k];
		if (active(p, p->at[b]) && !p->has_hot[p->at[b]])
			p->has_hot[p->at[b]] = 1;
		else if (!(in->pinned && in->pinned[b]))
			hot[nmove++] = b;
	}
	qsort_r(hot, nmove, sizeof(*hot), by_load, p);
	for (k = 0; k < nmove; k++) {
		uint32_t to = UINT32_MAX;

		b = hot[k];
		for (w = 0; w < p->W; w++)
			if (active(p, w) && !p->has_hot[w] &&
			    (to == UINT32_MAX || p->carry[w] < p->carry[to]))
				to = w;
		/* each hot bin is above the mean: fewer of them than
		 * active workers, so one without a hot bin is left */
		MG_ASSERT(to != UINT32_MAX);
		p->has_hot[to] = 1;
		p->carry[p->at[b]] -= in->load[b];
		p->carry[to] += in->load[b];
		p->at[b] = (uint16_t)to;
		forced += cost_of(p, b);
	}

	for (b = 0; b < p->n; b++) {
		w = p->at[b];
		p->first[w + 1]++;
		if (p->fixed[b]) {
			p->target[w] += in->load[b];
		} else if (!active(p, w)) {
			p->forced[b] = 1;
			forced += cost_of(p, b);
		}
	}
	for (w = 0; w < p->W; w++) {
		if (p->target[w] < p->limit)
			p->target[w] = p->limit;
		p->first[w + 1] += p->first[w];
		p->fill[w] = p->first[w];
	}
	for (b = 0; b < p->n; b++)
		p->of[p->fill[p->at[b]]++] = b;
	return forced;
}

/*
 * One walk over the candidates cand[0..m) (in by_ratio order) covering
 * @excess with bins costing at most @cap, into walk[]: whole bins while
 * the next one does not cover the rest, then the cheapest that does.
 * Return: its cost, or INFINITY if the capped bins cannot cover it.
 */
static double
walk(struct planner *p, uint32_t m, double excess, double cap, uint32_t *nwalk)
{
	const double *load = p->in->load;
	double rem = excess, cost = 0;
	uint32_t i, j, k = 0, pick;

	for (i = 0; i < m; i++) {
		uint32_t b = p->cand[i];

		if (cost_of(p, b) > cap)
			continue;
		if (load[b] < rem - p->eps) {
			p->walk[k++] = b;
			rem -= load[b];
			cost += cost_of(p, b);
			continue;
		}
		for (pick = b, j = i + 1; j < m; j++) {
			uint32_t c = p->cand[j];
			double cc = cost_of(p, c), cp = cost_of(p, pick);

			if (cc > cap || load[c] < rem - p->eps)
				continue;
			if (cc < cp ||
			    (cc == cp && (load[c] < load[pick] ||
					  (load[c] == load[pick] && c < pick))))
				pick = c;
		}
		p->walk[k++] = pick;
		*nwalk = k;
		return cost + cost_of(p, pick);
	}
	return INFINITY;
}

/* The fractional cover of @excess by cand[0..m) in by_ratio order: a lower
 * bound on any cover's cost.  Assumes the candidates cover it. */
static double
fractional(const struct planner *p, uint32_t m, double excess)
{
	double rem = excess, cost = 0;
	uint32_t i;

	for (i = 0; i < m && rem > p->eps; i++) {
		uint32_t b = p->cand[i];
		double l = p->in->load[b];

		if (l >= rem)
			return cost + cost_of(p, b) * rem / l;
		rem -= l;
		cost += cost_of(p, b);
	}
	return cost;
}

/* The exponent of the power of two @c rounds up to. */
static int
cap_exponent(double c)
{
	int e;
	double m = frexp(c, &e); /* c = m * 2^e, 0.5 <= m < 1 */

	return m == 0.5 ? e - 1 : e;
}

/*
 * Step 1 for donor @w: append to shed[] a set of its candidate bins whose
 * loads cover its excess (all of them if they cannot).  In the first round
 * (@first: nothing excluded yet) add the donor's part of the lower bound.
 */
static void
cover(struct planner *p, uint32_t w, bool first)
{
	const double *load = p->in->load;
	double excess = p->carry[w] - p->target[w], sum = 0, best = INFINITY;
	uint32_t i, m = 0, ncaps = 0, nbest = 0, nwalk = 0;

	for (i = p->first[w]; i < p->first[w + 1]; i++) {
		uint32_t b = p->of[i];

		if (!p->fixed[b] && !p->gone[b] && load[b] > 0) {
			p->cand[m++] = b;
			sum += load[b];
		}
	}
	if (sum < excess - p->eps) { /* cannot reach its target: all go */
		for (i = 0; i < m; i++) {
			p->shed[p->nshed++] = p->cand[i];
			p->lower += first ? cost_of(p, p->cand[i]) : 0;
		}
		return;
	}
	qsort_r(p->cand, m, sizeof(*p->cand), by_ratio, p);
	if (!p->in->cost) {
		best = walk(p, m, excess, INFINITY, &nbest);
		memcpy(p->best, p->walk, sizeof(*p->best) * nbest);
		p->lower += first ? nbest : 0;
	} else {
		for (i = 0; i < m; i++)
			p->caps[ncaps++] = cap_exponent(cost_of(p, p->cand[i]));
		qsort(p->caps, ncaps, sizeof(*p->caps), by_int_desc);
		for (i = 0; i < ncaps; i++) {
			double c;

			if (i && p->caps[i] == p->caps[i - 1])
				continue;
			c = walk(p, m, excess, ldexp(1, p->caps[i]), &nwalk);
			if (c < best || (c == best && nwalk < nbest)) {
				best = c;
				nbest = nwalk;
				memcpy(p->best, p->walk,
				       sizeof(*p->best) * nbest);
			}
		}
		p->lower += first ? fractional(p, m, excess) : 0;
	}
	MG_ASSERT(isfinite(best)); /* the uncapped walk covers */

	/* Drop what the others cover, most expensive first. */
	for (sum = 0, i = 0; i < nbest; i++)
		sum += load[p->best[i]];
	qsort_r(p->best, nbest, sizeof(*p->best), by_cost, p);
	for (i = 0; i < nbest; i++) {
		uint32_t b = p->best[i];

		if (sum - load[b] >= excess - p->eps)
			sum -= load[b];
		else
			p->shed[p->nshed++] = b;
	}
}

/*
 * Steps 1 and 2, one round: choose the shed bins, place them heaviest
 * first on the least loaded active worker.  Return: how many donor bins
 * fit nowhere (excluded for the next round).
 */
static uint32_t
round_once(struct planner *p, bool first)
{
	const double *load = p->in->load;
	uint32_t w, i, b, unplaced = 0;

	p->nshed = 0;
	for (b = 0; b < p->n; b++)
		p->dest[b] = p->at[b];
	for (w = 0; w < p->W; w++) {
		p->now[w] = p->carry[w];
		if (active(p, w) && p->carry[w] > p->target[w] + p->eps)
			cover(p, w, first);
	}
	for (b = 0; b < p->n; b++)
		if (p->forced[b])
			p->shed[p->nshed++] = b;
	qsort_r(p->shed, p->nshed, sizeof(*p->shed), by_load, p);
	for (i = 0; i < p->nshed; i++)
		p->now[p->at[p->shed[i]]] -= load[p->shed[i]];
	heap_build(p);
	for (i = 0; i < p->nshed; i++) {
		uint32_t to = p->heap[0];

		b = p->shed[i];
		if (p->now[to] + load[b] > p->limit + p->eps && !p->forced[b]) {
			/* Left out of now[] for the rest of the round, which
			 * is run again anyway: the heap stays consistent. */
			p->gone[b] = 1;
			unplaced++;
			continue;
		}
		p->dest[b] = (uint16_t)to;
		p->now[to] += load[b];
		sift_down(p, 0);
	}
	return unplaced;
}

int
mg_balance_plan(const struct mg_balance_input *in,
		struct mg_balance_result *out)
{
	struct mg_balance_result r = {0};
	struct planner p;
	uint32_t b, w, k;
	bool first = true;
	int err;

	if (!out || (err = check(in)))
		return -EINVAL;
	err = planner_init(&p, in);
	if (err)
		return err;
	p.lower = step0(&p);
	while (round_once(&p, first))
		first = false;

	for (w = 0; w < p.W; w++) {
		p.carry[w] = base_of(&p, w); /* loads before */
		p.now[w] = p.carry[w];	     /* and after */
		p.fill[w] = 0;		     /* unpinned bins after */
	}
	for (b = 0; b < p.n; b++) {
		r.nmoves += p.dest[b] != in->owner[b];
		p.now[p.dest[b]] += in->load[b];
		p.fill[p.dest[b]] += !(in->pinned && in->pinned[b]);
		p.carry[in->owner[b]] += in->load[b];
		r.hot += in->load[b] > p.limit + p.eps;
	}
	if (r.nmoves) {
		r.moves = malloc(sizeof(*r.moves) * r.nmoves);
		if (!r.moves) {
			planner_free(&p);
			return -ENOMEM;
		}
	}
	for (k = 0, b = 0; b < p.n; b++) {
		if (p.dest[b] == in->owner[b])
			continue;
		r.moves[k++] = (struct mg_move){b, p.dest[b]};
		r.cost += cost_of(&p, b);
	}
	for (w = 0; w < p.W; w++) {
		r.max_before = fmax(r.max_before, p.carry[w]);
		r.max_after = fmax(r.max_after, p.now[w]);
		if (active(&p, w) ? p.now[w] > p.target[w] + p.eps
				  : p.fill[w] > 0)
			r.over++;
	}
	r.mean = p.mean;
	r.limit = p.limit;
	r.lower_bound = p.lower;
	planner_free(&p);
	*out = r;
	return 0;
}

void
mg_balance_result_free(struct mg_balance_result *r)
{
	if (!r)
		return;
	free(r->moves);
	r->moves = NULL;
	r->nmoves = 0;
}
