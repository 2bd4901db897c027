/*
 * t-migration-balance.c - the balancer's planning function (mg_balance.h),
 * on its own: loads in, moves out.
 *
 * Hand-made cases: bad input, a balanced input (no moves), one donor, a hot
 * bin (kept, left alone on its worker, and a second plan moves nothing:
 * no ping-pong), two hot bins on one worker, pinned bins (cool-down),
 * inactive workers, byte-weighted costs, base loads.
 *
 * Random small instances are checked against an exhaustive search over
 * every assignment of the movable bins (the problem as mg_balance.h states
 * it): every plan is valid (no pinned bin moves, nothing lands on an
 * inactive worker, cost adds up), its lower bound is at most the optimum,
 * and where the stated bound applies -- every movable bin of a donor or
 * an inactive worker at most threshold * M -- it reaches every target
 * with exactly the fewest moves (unit costs) or at most 3 times the
 * cheapest cost (byte-weighted).  Instances outside the bound are counted
 * and reported (how often the heuristic was optimal).  Half the instances
 * give workers base loads; the checker sees each as what mg_balance.h says
 * it is, a pinned bin of that load on its worker.  Seeded: the seed is
 * printed; MG_SEED=<seed> replays it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migration/mg_balance.h"
#include "numa/mg_base.h"
#include "tests/mg_test.h"

#define MAXN 9 /* bins of a random instance */
#define MAXW 4
#define MAXB (MAXN + MAXW) /* and a pinned bin per worker's base */

/* An instance, owning its arrays. */
struct inst {
	struct mg_balance_input in;
	double load[MAXB], cost[MAXB], base[MAXW];
	double base_sum; /* with_base(): of the load, the bases' */
	uint16_t owner[MAXB];
	uint8_t pinned[MAXB], active[MAXW];
};

static void
inst_init(struct inst *x, uint32_t nworkers, double threshold)
{
	memset(x, 0, sizeof(*x));
	x->in.nworkers = nworkers;
	x->in.threshold = threshold;
	x->in.load = x->load;
	x->in.owner = x->owner;
}

static void
add_bin(struct inst *x, double load, uint16_t owner)
{
	assert_true(x->in.nbins < MAXB);
	x->load[x->in.nbins] = load;
	x->cost[x->in.nbins] = 1;
	x->owner[x->in.nbins++] = owner;
}

static struct mg_balance_result
plan_ok(const struct mg_balance_input *in)
{
	struct mg_balance_result r;

	assert_int_equal(mg_balance_plan(in, &r), 0);
	return r;
}

/* Owners after @r applied to @in's owners, into @to. */
static void
apply(const struct mg_balance_input *in, const struct mg_balance_result *r,
      uint16_t *to)
{
	uint32_t i;

	memcpy(to, in->owner, sizeof(*to) * in->nbins);
	for (i = 0; i < r->nmoves; i++)
		to[r->moves[i].bin] = (uint16_t)r->moves[i].worker;
}

/* ---- the problem, independently ---------------------------------------- */

struct problem {
	double limit, eps;
	double slack; /* limit - mean: threshold x the bins' mean load */
	double target[MAXW];
	bool fixed[MAXB];
};

static bool
is_active(const struct mg_balance_input *in, uint32_t w)
{
	return !in->active || in->active[w];
}

static double
cost_of(const struct mg_balance_input *in, uint32_t b)
{
	return in->cost ? in->cost[b] : 1;
}

/* Limit, fixed bins and targets as mg_balance.h states them, for inputs
 * where step 0 moves nothing (see step0_moves); @base: how much of the
 * load is the workers' base loads (as pinned bins, with_base()). */
static void
problem_of(const struct mg_balance_input *in, double base, struct problem *p)
{
	double total = 0;
	uint32_t b, w, A = 0;

	memset(p, 0, sizeof(*p));
	for (b = 0; b < in->nbins; b++)
		total += in->load[b];
	for (w = 0; w < in->nworkers; w++)
		A += is_active(in, w);
	p->slack = in->threshold * (total - base) / A;
	p->limit = total / A + p->slack;
	p->eps = 1e-9 * total;
	for (b = 0; b < in->nbins; b++) {
		p->fixed[b] = (in->pinned && in->pinned[b]) ||
			      in->load[b] > p->limit + p->eps;
		if (p->fixed[b])
			p->target[in->owner[b]] += in->load[b];
	}
	for (w = 0; w < in->nworkers; w++)
		p->target[w] = fmax(p->target[w], p->limit);
}

/* Whether step 0 would move a hot bin (two on a worker, or one on an
 * inactive worker): the exhaustive search does not model it. */
static bool
step0_moves(const struct mg_balance_input *in, const struct problem *p)
{
	unsigned hot[MAXW] = {0};
	uint32_t b;

	for (b = 0; b < in->nbins; b++) {
		if (in->load[b] <= p->limit + p->eps)
			continue;
		if (++hot[in->owner[b]] > 1 || (!is_active(in, in->owner[b]) &&
						!(in->pinned && in->pinned[b])))
			return true;
	}
	return false;
}

/* Whether assignment @to reaches every target. */
static bool
reaches(const struct mg_balance_input *in, const struct problem *p,
	const uint16_t *to)
{
	double load[MAXW] = {0};
	uint32_t b, w;

	for (b = 0; b < in->nbins; b++) {
		load[to[b]] += in->load[b];
		if (!is_active(in, to[b]) && !p->fixed[b])
			return false;
	}
	for (w = 0; w < in->nworkers; w++)
		if (is_active(in, w) && load[w] > p->target[w] + p->eps)
			return false;
	return true;
}

static void
search(const struct mg_balance_input *in, const struct problem *p, uint16_t *to,
       uint32_t b, double cost, double *best)
{
	uint32_t w;

	if (cost >= *best)
		return;
	if (b == in->nbins) {
		if (reaches(in, p, to))
			*best = cost;
		return;
	}
	if (p->fixed[b]) {
		to[b] = in->owner[b];
		search(in, p, to, b + 1, cost, best);
		return;
	}
	for (w = 0; w < in->nworkers; w++) {
		to[b] = (uint16_t)w;
		search(in, p, to, b + 1,
		       cost + (w != in->owner[b] ? cost_of(in, b) : 0), best);
	}
}

/* The cheapest cost of reaching every target; INFINITY if none does. */
static double
optimum(const struct mg_balance_input *in, const struct problem *p)
{
	uint16_t to[MAXB];
	double best = INFINITY;

	search(in, p, to, 0, 0, &best);
	return best;
}

/*
 * What every plan must satisfy: moves in bin order, each to another,
 * active worker, no pinned bin, the cost their sum, and a plan said to
 * reach every target does.  Returns false (printing why) otherwise.
 */
static bool
valid(const struct mg_balance_input *in, const struct mg_balance_result *r,
      const struct problem *p)
{
	uint16_t *to;
	double cost = 0;
	uint32_t i;
	bool missed;

	for (i = 0; i < r->nmoves; i++) {
		const struct mg_move *m = &r->moves[i];

		if (m->bin >= in->nbins ||
		    (i && m->bin <= r->moves[i - 1].bin) ||
		    m->worker >= in->nworkers ||
		    m->worker == in->owner[m->bin] ||
		    !is_active(in, m->worker) ||
		    (in->pinned && in->pinned[m->bin])) {
			printf("# bad move %u: bin %u -> worker %u\n", i,
			       m->bin, m->worker);
			return false;
		}
		cost += cost_of(in, m->bin);
	}
	if (fabs(cost - r->cost) > 1e-9 * (1 + cost)) {
		printf("# cost %g, moves cost %g\n", r->cost, cost);
		return false;
	}
	if (!p)
		return true;
	to = malloc(sizeof(*to) * in->nbins);
	assert_non_null(to);
	apply(in, r, to);
	missed = r->over == 0 && !reaches(in, p, to);
	free(to);
	if (missed)
		printf("# over 0 but a target is missed\n");
	return !missed;
}

static void
print_inst(const struct mg_balance_input *in)
{
	uint32_t b;

	printf("# W=%u threshold=%g:", in->nworkers, in->threshold);
	for (b = 0; b < in->nbins; b++)
		printf(" [%g c%g w%u%s]", in->load[b], cost_of(in, b),
		       in->owner[b],
		       in->pinned && in->pinned[b] ? " pinned" : "");
	for (b = 0; b < in->nworkers; b++)
		if (!is_active(in, b))
			printf(" (worker %u inactive)", b);
	printf("\n");
}

/* @x as the checker sees it: each active worker's base load a pinned bin
 * of that load on it (mg_balance.h), in @e, without base[]; the bases'
 * sum in e->base_sum (the limit's slack is the rest's). */
static void
with_base(const struct inst *x, struct inst *e)
{
	uint32_t w;

	*e = *x;
	e->in.load = e->load;
	e->in.owner = e->owner;
	e->in.cost = x->in.cost ? e->cost : NULL;
	e->in.active = x->in.active ? e->active : NULL;
	e->in.pinned = x->in.pinned ? e->pinned : NULL;
	e->in.base = NULL;
	e->base_sum = 0;
	if (!x->in.base)
		return;
	if (!x->in.pinned)
		memset(e->pinned, 0, sizeof(e->pinned));
	e->in.pinned = e->pinned;
	for (w = 0; w < x->in.nworkers; w++) {
		if (!is_active(&x->in, w) || !(x->base[w] > 0))
			continue;
		add_bin(e, x->base[w], (uint16_t)w);
		e->pinned[e->in.nbins - 1] = 1;
		e->base_sum += x->base[w];
	}
}

/* ---- hand-made cases ---------------------------------------------------- */

static void
test_bad_input(void **state)
{
	struct mg_balance_result r, untouched;
	struct inst x;
	double nan_ = NAN;

	(void)state;
	memset(&untouched, 0x5a, sizeof(untouched));
	inst_init(&x, 2, 0.2);
	add_bin(&x, 1, 0);
	add_bin(&x, 2, 1);

#define REFUSED(expr)                                                  \
	do {                                                           \
		struct inst y = x;                                     \
		y.in.load = y.load;                                    \
		y.in.owner = y.owner;                                  \
		expr;                                                  \
		r = untouched;                                         \
		assert_int_equal(mg_balance_plan(&y.in, &r), -EINVAL); \
		assert_memory_equal(&r, &untouched, sizeof(r));        \
	} while (0)

	REFUSED(y.in.nbins = 0);
	REFUSED(y.in.nworkers = 0);
	REFUSED(y.in.nworkers = 65536);
	REFUSED(y.in.load = NULL);
	REFUSED(y.in.owner = NULL);
	REFUSED(y.owner[1] = 2);
	REFUSED(y.load[0] = -1);
	REFUSED(y.load[0] = nan_);
	REFUSED(y.load[0] = INFINITY);
	REFUSED((y.cost[0] = 0, y.in.cost = y.cost));
	REFUSED((y.cost[0] = -1, y.in.cost = y.cost));
	REFUSED((y.cost[1] = INFINITY, y.in.cost = y.cost));
	REFUSED(y.in.threshold = -0.1);
	REFUSED(y.in.threshold = nan_);
	REFUSED(y.in.threshold = INFINITY);
	REFUSED((y.in.active = y.active)); /* all zero: none active */
	REFUSED((y.base[1] = -1, y.in.base = y.base));
	REFUSED((y.base[0] = nan_, y.in.base = y.base));
	REFUSED((y.base[1] = INFINITY, y.in.base = y.base));
#undef REFUSED
	assert_int_equal(mg_balance_plan(NULL, &r), -EINVAL);
	assert_int_equal(mg_balance_plan(&x.in, NULL), -EINVAL);
	mg_balance_result_free(NULL);
}

/* Balanced inputs, at several thresholds, give no moves. */
static void
test_balanced(void **state)
{
	static const double thresholds[] = {0, 0.05, 0.2, 1};
	enum { N = 4096, W = 16 };
	double *load = malloc(sizeof(*load) * N);
	uint16_t *owner = malloc(sizeof(*owner) * N);
	struct mg_balance_input in = {N,    W,	  load, NULL, owner,
				      NULL, NULL, 0,	NULL};
	struct mg_balance_result r;
	double total = 0;
	size_t i;
	uint32_t b;

	(void)state;
	assert_non_null(load);
	assert_non_null(owner);
	for (b = 0; b < N; b++) {
		load[b] = 1 + (b / W) % 7; /* same sum on every worker */
		owner[b] = (uint16_t)(b % W);
		total += load[b];
	}
	for (i = 0; i < MG_ARRAY_SIZE(thresholds); i++) {
		in.threshold = thresholds[i];
		r = plan_ok(&in);
		assert_int_equal(r.nmoves, 0);
		assert_null(r.moves);
		assert_true(r.cost == 0 && r.lower_bound == 0);
		assert_int_equal(r.over, 0);
		assert_int_equal(r.hot, 0);
		assert_true(r.max_before == r.max_after);
		assert_true(fabs(r.mean - total / W) < 1e-9 * total);
	}
	/* nothing at all, and one worker */
	for (b = 0; b < N; b++)
		load[b] = 0;
	r = plan_ok(&in);
	assert_int_equal(r.nmoves, 0);
	for (b = 0; b < N; b++)
		load[b] = b % 5, owner[b] = 0;
	in.nworkers = 1;
	r = plan_ok(&in);
	assert_int_equal(r.nmoves, 0);
	free(load);
	free(owner);
}

/* One donor: the fewest bins, and the last one the lightest that covers. */
static void
test_one_donor(void **state)
{
	struct mg_balance_result r;
	struct problem p;
	struct inst x;

	(void)state;
	/* total 30, mean 15, limit 18; worker 0 carries 27: excess 9.
	 * Fewest bins: 8 + 1 (two); the walk takes 8, then the lightest
	 * bin covering 1 -- a 1, not the 4. */
	inst_init(&x, 2, 0.2);
	add_bin(&x, 8, 0);
	add_bin(&x, 4, 0);
	add_bin(&x, 1, 0);
	add_bin(&x, 6, 0);
	add_bin(&x, 1, 0);
	add_bin(&x, 7, 0);
	add_bin(&x, 3, 1);
	r = plan_ok(&x.in);
	problem_of(&x.in, 0, &p);
	assert_true(valid(&x.in, &r, &p));
	assert_int_equal(r.nmoves, 2);
	assert_int_equal(r.moves[0].bin, 0);
	assert_int_equal(r.moves[1].bin, 2);
	assert_true(r.cost == 2 && r.lower_bound == 2);
	assert_int_equal(r.over, 0);
	assert_true(r.max_before == 27 && r.max_after == 18);
	assert_true(r.limit == 18 && r.mean == 15);
	mg_balance_result_free(&r);
	assert_null(r.moves);
	assert_int_equal(r.nmoves, 0);
}

/*
 * One hot bin, heavier than the limit: it stays where it is, every other
 * movable bin leaves its worker, and planning again on the result moves
 * nothing -- the bin is never ping-ponged.
 */
static void
test_hot_bin(void **state)
{
	struct mg_balance_result r, again;
	struct inst x, y;
	uint32_t i;

	(void)state;
	/* total 100 over 3 workers: mean 33.3, limit 40; the 60 is hot */
	inst_init(&x, 3, 0.2);
	add_bin(&x, 60, 0);
	add_bin(&x, 5, 0);
	add_bin(&x, 5, 0);
	add_bin(&x, 10, 1);
	add_bin(&x, 10, 1);
	add_bin(&x, 10, 2);
	r = plan_ok(&x.in);
	assert_true(valid(&x.in, &r, NULL));
	assert_int_equal(r.hot, 1);
	assert_int_equal(r.over, 0);
	assert_int_equal(r.nmoves, 2);
	for (i = 0; i < r.nmoves; i++)
		assert_true(r.moves[i].bin == 1 || r.moves[i].bin == 2);
	assert_true(r.max_before == 70 && r.max_after == 60);
	y = x;
	y.in.load = y.load;
	y.in.owner = y.owner;
	apply(&x.in, &r, y.owner);
	again = plan_ok(&y.in);
	assert_int_equal(again.nmoves, 0);
	assert_int_equal(again.over, 0);
	mg_balance_result_free(&r);

	/* The same with the hot bin's neighbours pinned: they stay (the
	 * worker misses its target), and the hot bin still does not move. */
	x.pinned[1] = 1;
	x.in.pinned = x.pinned;
	r = plan_ok(&x.in);
	assert_int_equal(r.nmoves, 1);
	assert_int_equal(r.moves[0].bin, 2);
	assert_int_equal(r.over, 0); /* pinned load counts in the target */
	mg_balance_result_free(&r);

	/* Two hot bins on one worker: the lighter moves to the least loaded
	 * worker without one, which then keeps it alone too. */
	inst_init(&x, 4, 0.1);
	add_bin(&x, 40, 0);
	add_bin(&x, 35, 0);
	add_bin(&x, 5, 1);
	add_bin(&x, 5, 1);
	add_bin(&x, 2, 2);
	add_bin(&x, 8, 3);
	add_bin(&x, 5, 3); /* total 100, mean 25, limit 27.5 */
	r = plan_ok(&x.in);
	assert_true(valid(&x.in, &r, NULL));
	assert_int_equal(r.hot, 2);
	assert_int_equal(r.over, 0);
	assert_int_equal(r.nmoves, 2); /* the 35 to worker 2, its 2 away */
	assert_int_equal(r.moves[0].bin, 1);
	assert_int_equal(r.moves[0].worker, 2);
	assert_int_equal(r.moves[1].bin, 4);
	assert_true(r.max_after == 40);
	y = x;
	y.in.load = y.load;
	y.in.owner = y.owner;
	apply(&x.in, &r, y.owner);
	again = plan_ok(&y.in);
	assert_int_equal(again.nmoves, 0);
	mg_balance_result_free(&r);
}

/* Pinned bins (cool-down) never move; the rest still balances. */
static void
test_pinned(void **state)
{
	struct mg_balance_result r;
	struct problem p;
	struct inst x;

	(void)state;
	inst_init(&x, 2, 0);
	add_bin(&x, 4, 0);
	add_bin(&x, 4, 0);
	add_bin(&x, 1, 0);
	add_bin(&x, 1, 0); /* worker 0: 10, worker 1: 0 -> 5 each */
	x.pinned[0] = x.pinned[1] = 1;
	x.in.pinned = x.pinned;
	r = plan_ok(&x.in);
	problem_of(&x.in, 0, &p);
	assert_true(valid(&x.in, &r, &p));
	/* target max(5, 8) = 8: the two 1s leave, the 4s stay */
	assert_int_equal(r.nmoves, 2);
	assert_int_equal(r.moves[0].bin, 2);
	assert_int_equal(r.moves[1].bin, 3);
	assert_int_equal(r.over, 0);
	mg_balance_result_free(&r);
	x.pinned[1] = 0; /* target 5: a 4 and a 1 leave */
	r = plan_ok(&x.in);
	problem_of(&x.in, 0, &p);
	assert_true(valid(&x.in, &r, &p));
	assert_int_equal(r.nmoves, 2);
	assert_int_equal(r.moves[0].bin, 1);
	assert_int_equal(r.moves[1].bin, 2);
	assert_true(r.max_after == 5);
	assert_int_equal(r.over, 0);
	mg_balance_result_free(&r);
	x.pinned[0] = x.pinned[1] = x.pinned[2] = x.pinned[3] = 1;
	r = plan_ok(&x.in); /* everything pinned: nothing to do */
	assert_int_equal(r.nmoves, 0);
	assert_int_equal(r.over, 0);
}

/* Inactive workers: every bin leaves, even unloaded ones; nothing lands. */
static void
test_inactive(void **state)
{
	struct mg_balance_result r;
	struct problem p;
	struct inst x;

	(void)state;
	inst_init(&x, 3, 0.5);
	add_bin(&x, 3, 0);
	add_bin(&x, 0, 0);
	add_bin(&x, 2, 1);
	add_bin(&x, 2, 2);
	add_bin(&x, 2, 2);
	x.active[0] = 0;
	x.active[1] = x.active[2] = 1;
	x.in.active = x.active;
	r = plan_ok(&x.in);
	problem_of(&x.in, 0, &p);
	assert_true(valid(&x.in, &r, &p));
	assert_int_equal(r.nmoves, 2);
	assert_int_equal(r.moves[0].bin, 0);
	assert_int_equal(r.moves[0].worker, 1);
	assert_int_equal(r.moves[1].bin, 1);
	assert_int_equal(r.over, 0);
	assert_true(r.lower_bound == 2);
	mg_balance_result_free(&r);
	/* a pinned bin stays on its inactive worker (not counted in over:
	 * the caller pinned it); an unpinned one that fits nowhere still
	 * leaves, and is counted */
	x.pinned[1] = 1;
	x.in.pinned = x.pinned;
	r = plan_ok(&x.in);
	assert_int_equal(r.nmoves, 1);
	assert_int_equal(r.over, 0);
	mg_balance_result_free(&r);
	inst_init(&x, 3, 0.2); /* limit 6.6: the 5 fits on neither */
	add_bin(&x, 5, 0);
	add_bin(&x, 3, 1);
	add_bin(&x, 3, 2);
	x.active[1] = x.active[2] = 1;
	x.in.active = x.active;
	r = plan_ok(&x.in);
	assert_int_equal(r.nmoves, 1);
	assert_int_equal(r.moves[0].worker, 1);
	assert_int_equal(r.over, 1);
	mg_balance_result_free(&r);
}

/* Byte-weighted costs: of two ways to shed the excess, the cheaper. */
static void
test_costs(void **state)
{
	struct mg_balance_result r;
	struct problem p;
	struct inst x;

	(void)state;
	/* worker 0: 20, worker 1: 0; limit 11, excess 9.  One bin of 9
	 * with a big state, or three of 3 with small ones. */
	inst_init(&x, 2, 0.1);
	add_bin(&x, 9, 0);
	add_bin(&x, 3, 0);
	add_bin(&x, 3, 0);
	add_bin(&x, 3, 0);
	add_bin(&x, 2, 0);
	x.cost[0] = 1000;
	x.cost[1] = x.cost[2] = x.cost[3] = 10;
	x.cost[4] = 10;
	r = plan_ok(&x.in); /* unit costs: the single bin */
	assert_int_equal(r.nmoves, 1);
	assert_int_equal(r.moves[0].bin, 0);
	mg_balance_result_free(&r);
	x.in.cost = x.cost;
	r = plan_ok(&x.in);
	problem_of(&x.in, 0, &p);
	assert_true(valid(&x.in, &r, &p));
	assert_int_equal(r.nmoves, 3);
	assert_true(r.moves[0].bin >= 1 && r.moves[2].bin <= 3);
	assert_true(r.cost == 30);
	assert_true(r.lower_bound <= 30 && r.lower_bound > 0);
	assert_int_equal(r.over, 0);
	mg_balance_result_free(&r);
	/* A bin with the best load per cost that alone covers the excess
	 * but costs 50, against five bins of cost 1: only a walk capped
	 * below 50 finds the cheap cover.  Worker 0: 100 + 6 x 1, worker 2:
	 * 45.5; mean 50.5, limit 101 (threshold 1), excess 5. */
	inst_init(&x, 3, 1);
	add_bin(&x, 100, 0);
	for (int i = 0; i < 6; i++)
		add_bin(&x, 1, 0);
	add_bin(&x, 45.5, 2);
	x.cost[0] = 50;
	x.in.cost = x.cost;
	r = plan_ok(&x.in);
	problem_of(&x.in, 0, &p);
	assert_true(valid(&x.in, &r, &p));
	assert_int_equal(r.hot, 0);
	assert_int_equal(r.nmoves, 5);
	assert_true(r.cost == 5);
	assert_true(r.moves[0].bin == 1 && r.moves[0].worker == 1);
	assert_int_equal(r.over, 0);
	mg_balance_result_free(&r);
}

/*
 * Base loads: a worker's load is its base plus its bins', and no move
 * changes the base -- a worker whose base leaves no room sheds bins the
 * others would not.  An inactive worker's base is ignored.
 */
static void
test_base(void **state)
{
	struct mg_balance_result r;
	struct problem p;
	struct inst x, y, e;

	(void)state;
	/* bins 2 + 2 on each worker, worker 0's base 10: total 18, mean 9,
	 * limit 9 + 0.2 x 4 (the bins' mean) = 9.8; worker 0 carries 14,
	 * more than the limit on its base alone: it sheds both its bins and
	 * ends at its target, its base (10); worker 1 takes them (8) */
	inst_init(&x, 2, 0.2);
	add_bin(&x, 2, 0);
	add_bin(&x, 2, 0);
	add_bin(&x, 2, 1);
	add_bin(&x, 2, 1);
	x.base[0] = 10;
	x.in.base = x.base;
	r = plan_ok(&x.in);
	assert_true(r.mean == 9 && fabs(r.limit - 9.8) < 1e-12);
	assert_true(r.max_before == 14 && r.max_after == 10);
	assert_int_equal(r.nmoves, 2);
	assert_true(r.moves[0].bin == 0 && r.moves[1].bin == 1);
	assert_int_equal(r.over, 0);
	assert_int_equal(r.hot, 0);
	mg_balance_result_free(&r);
	/* equal bases change nothing: the threshold is of the bins' load
	 * (2 + 2 + 2 against 2: one bin moves, with bases of 10 or none) */
	inst_init(&y, 2, 0.2);
	add_bin(&y, 2, 0);
	add_bin(&y, 2, 0);
	add_bin(&y, 2, 0);
	add_bin(&y, 2, 1);
	r = plan_ok(&y.in);
	assert_int_equal(r.nmoves, 1);
	mg_balance_result_free(&r);
	y.base[0] = y.base[1] = 10;
	y.in.base = y.base;
	r = plan_ok(&y.in);
	assert_true(r.mean == 14 && fabs(r.limit - 14.8) < 1e-12);
	assert_int_equal(r.nmoves, 1);
	assert_true(r.max_after == 14);
	mg_balance_result_free(&r);
	/* a base above the limit on its own: the worker keeps no movable
	 * bin, and is not counted as holding a hot bin */
	x.base[0] = 30; /* total 38, mean 19, limit 19.8 */
	r = plan_ok(&x.in);
	with_base(&x, &e);
	problem_of(&e.in, e.base_sum, &p);
	assert_true(valid(&e.in, &r, &p));
	assert_int_equal(r.nmoves, 2);
	assert_int_equal(r.hot, 0);
	assert_int_equal(r.over, 0);
	assert_true(r.max_after == 30);
	mg_balance_result_free(&r);
	/* worker 1 inactive: its base is ignored, its bins go to worker 0 */
	x.base[0] = 0;
	x.base[1] = 100;
	x.active[0] = 1;
	x.in.active = x.active;
	r = plan_ok(&x.in);
	assert_true(r.mean == 8 && r.max_after == 8);
	assert_int_equal(r.nmoves, 2);
	assert_true(r.moves[0].bin == 2 && r.moves[1].bin == 3);
	mg_balance_result_free(&r);
}

/* ---- random instances against exhaustive search ------------------------- */

struct tally {
	unsigned n, in_bound, beyond, beyond_feasible, beyond_reached;
	unsigned beyond_optimal;
	double worst_ratio;
};

static void
random_inst(struct inst *x, uint64_t *rng, bool costs)
{
	static const double thresholds[] = {0.1, 0.25, 0.5, 1};
	uint32_t W = 2 + (uint32_t)(mg_test_rand(rng) % (MAXW - 1));
	uint32_t n = 1 + (uint32_t)(mg_test_rand(rng) % (MAXN - 1));
	bool skew = mg_test_rand(rng) % 2, light = mg_test_rand(rng) % 2;
	uint32_t b, w;

	if (W == MAXW && n > 7)
		n = 7; /* 4^7 assignments at most */
	inst_init(x, W,
		  thresholds[mg_test_rand(rng) % MG_ARRAY_SIZE(thresholds)]);
	for (b = 0; b < n; b++) {
		uint64_t z = mg_test_rand(rng);

		add_bin(x, (double)(light ? 1 + z % 3 : z % 21),
			(uint16_t)(skew && z % 4 ? 0 : (z >> 8) % W));
		x->cost[b] = (double)(1 + (z >> 16) % 1000);
		x->pinned[b] = (z >> 32) % 7 == 0;
	}
	x->in.pinned = mg_test_rand(rng) % 2 ? x->pinned : NULL;
	x->in.cost = costs ? x->cost : NULL;
	for (w = 0; w < W; w++)
		x->active[w] = 1;
	if (mg_test_rand(rng) % 5 == 0) {
		x->active[mg_test_rand(rng) % W] = 0;
		x->in.active = x->active;
	}
	if (mg_test_rand(rng) % 2) {
		for (w = 0; w < W; w++)
			x->base[w] = (double)(mg_test_rand(rng) % 4
						      ? 0
						      : mg_test_rand(rng) % 21);
		x->in.base = x->base;
	}
}

/* Whether the stated bound applies: every movable bin of a donor or an
 * inactive worker carries at most threshold x the bins' mean load. */
static bool
in_bound(const struct mg_balance_input *in, const struct problem *p)
{
	double load[MAXW] = {0};
	uint32_t b;

	for (b = 0; b < in->nbins; b++)
		load[in->owner[b]] += in->load[b];
	for (b = 0; b < in->nbins; b++) {
		uint16_t w = in->owner[b];
		bool donor = is_active(in, w) ? load[w] > p->target[w] + p->eps
					      : true;

		if (donor && !p->fixed[b] && in->load[b] > p->slack + p->eps)
			return false;
	}
	return true;
}

static void
check_random(struct inst *x, struct tally *t, bool costs)
{
	struct mg_balance_result r = plan_ok(&x->in);
	struct problem p;
	struct inst e;
	double opt;
	bool ok = true;

	with_base(x, &e);
	problem_of(&e.in, e.base_sum, &p);
	if (step0_moves(&e.in, &p)) {
		mg_balance_result_free(&r);
		return;
	}
	t->n++;
	opt = optimum(&e.in, &p);
	ok = valid(&e.in, &r, &p);
	if (ok && isfinite(opt) && r.lower_bound > opt + 1e-9 * (1 + opt)) {
		printf("# lower bound %g above the optimum %g\n", r.lower_bound,
		       opt);
		ok = false;
	}
	if (ok && in_bound(&e.in, &p)) {
		t->in_bound++;
		if (!isfinite(opt) || r.over ||
		    (costs ? r.cost > 3 * opt + 1e-9 : r.cost != opt)) {
			printf("# within the bound: cost %g (over %u), "
			       "optimum %g\n",
			       r.cost, r.over, opt);
			ok = false;
		}
		if (costs && opt > 0 && r.cost / opt > t->worst_ratio)
			t->worst_ratio = r.cost / opt;
	} else if (ok) {
		t->beyond++;
		t->beyond_feasible += isfinite(opt) != 0;
		t->beyond_reached += isfinite(opt) && !r.over;
		t->beyond_optimal += isfinite(opt) && !r.over && r.cost == opt;
	}
	if (!ok) {
		print_inst(&e.in);
		fail_msg("instance %u fails (seed printed above)", t->n);
	}
	mg_balance_result_free(&r);
}

static void
random_vs_exhaustive(bool costs)
{
	uint64_t rng = mg_test_seed();
	struct tally t = {0};
	unsigned k, rounds = (unsigned)mg_test_env_u64("S_INSTANCES", 3000);
	struct inst x;

	for (k = 0; k < rounds; k++) {
		random_inst(&x, &rng, costs);
		check_random(&x, &t, costs);
	}
	printf("# %s: %u instances, %u within the bound (all %s), %u "
	       "beyond it: %u reachable, %u reached, %u optimally\n",
	       costs ? "byte costs" : "unit costs", t.n, t.in_bound,
	       costs ? "within 3x the optimum" : "optimal", t.beyond,
	       t.beyond_feasible, t.beyond_reached, t.beyond_optimal);
	if (costs)
		printf("# byte costs: worst ratio to the optimum within the "
		       "bound %.3f\n",
		       t.worst_ratio);
	assert_true(t.in_bound > rounds / 10);
}

static void
test_random_unit(void **state)
{
	(void)state;
	random_vs_exhaustive(false);
}

static void
test_random_costs(void **state)
{
	(void)state;
	random_vs_exhaustive(true);
}

/* ---- large inputs --------------------------------------------------------- */

/*
 * 2^16 bins on 16 workers, skewed (Zipf-like) loads, everything on the
 * first four: the plan reaches every target, is deterministic, and a
 * second plan on its result moves nothing.
 */
static void
test_large(void **state)
{
	enum { N = 1 << 16, W = 16 };
	double *load = malloc(sizeof(*load) * N), *bytes;
	uint16_t *owner = malloc(sizeof(*owner) * N);
	uint16_t *after = malloc(sizeof(*after) * N);
	struct mg_balance_input in = {N,    W,	  load, NULL, owner,
				      NULL, NULL, 0.1,	NULL};
	struct mg_balance_result r, r2, again;
	uint64_t rng = 42;
	uint32_t b;

	(void)state;
	bytes = malloc(sizeof(*bytes) * N);
	assert_true(load && owner && after && bytes);
	for (b = 0; b < N; b++) {
		load[b] = 1e6 / (1 + (double)(mg_test_rand(&rng) % N));
		bytes[b] = 4096 + (double)(mg_test_rand(&rng) % (1 << 20));
		owner[b] = (uint16_t)(b % 4);
	}
	for (int pass = 0; pass < 2; pass++) {
		in.cost = pass ? bytes : NULL;
		r = plan_ok(&in);
		r2 = plan_ok(&in);
		assert_true(valid(&in, &r, NULL));
		assert_int_equal(r.nmoves, r2.nmoves);
		assert_memory_equal(r.moves, r2.moves,
				    sizeof(*r.moves) * r.nmoves);
		printf("# large %s: %u hot, %u moves, cost %.0f, lower "
		       "bound %.0f, max %.0f -> %.0f (limit %.0f), over %u\n",
		       pass ? "bytes" : "unit", r.hot, r.nmoves, r.cost,
		       r.lower_bound, r.max_before, r.max_after, r.limit,
		       r.over);
		assert_int_equal(r.over, 0);
		assert_true(r.cost >= r.lower_bound);
		apply(&in, &r, after);
		in.owner = after;
		again = plan_ok(&in);
		assert_int_equal(again.nmoves, 0);
		in.owner = owner;
		mg_balance_result_free(&r);
		mg_balance_result_free(&r2);
	}
	free(load);
	free(bytes);
	free(owner);
	free(after);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_balanced),
		cmocka_unit_test(test_one_donor),
		cmocka_unit_test(test_hot_bin),
		cmocka_unit_test(test_pinned),
		cmocka_unit_test(test_inactive),
		cmocka_unit_test(test_costs),
		cmocka_unit_test(test_base),
		cmocka_unit_test(test_random_unit),
		cmocka_unit_test(test_random_costs),
		cmocka_unit_test(test_large),
	};

	return MG_TEST_RUN(tests);
}
