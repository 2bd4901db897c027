/*
 * mg_balance.h - the balancer's planning function: per-bin loads in, a move
 * set out.  A public fragment (C library and numa/mg_api.h, mg_plan.h
 * only): the installed megaphone.h carries it inline.  The engine's
 * balancer (mg_balancer_start()) calls it every interval; an application
 * with its own controller may call it too.
 *
 * THE PROBLEM
 *
 * Bins carry loads l_b >= 0 (any unit: the balancer uses records/s) and sit
 * on workers; moving a bin costs c_b > 0 (1 each to count moves; the
 * balancer's copy mode uses the bin's state bytes plus a constant).  An
 * active worker w may also carry a base load B_w >= 0 that no move changes
 * (the balancer's: the time its sources and inputs take).  A worker's load
 * is its base plus its bins' loads.  With A active workers the mean is
 * the total load over A, M the bins' share of it (their loads over A),
 * and the *limit* is U = mean + threshold * M: (1 + threshold) * mean
 * without bases, and with equal bases the same plan as without them (the
 * threshold is of the load moves can change).
 *
 *   Pinned bins never move (the caller pins bins in cool-down or in an
 *   unfinished migration).
 *
 *   A *hot* bin, heavier than U by itself, cannot be brought within the
 *   limit on any worker, and moving it only moves the problem (the next
 *   plan would move it back: ping-pong).  So it stays where it is and its
 *   worker keeps nothing else that can move: the hot bin ends up alone.
 *   Step 0 places hot bins once: each stays on its worker, except that of
 *   two on one worker the lighter moves, and so does one on an inactive
 *   worker, to the least loaded active worker without a hot bin (there
 *   always is one: each hot bin is above the mean, so fewer than A are).
 *
 *   After step 0 an active worker w has the *target* T_w = max(U, B_w +
 *   load of its pinned and hot bins); an inactive worker must hold nothing
 *   but pinned bins.  The planner looks for the cheapest moves of the
 *   other bins that bring every worker within its target.
 *
 * THE ALGORITHM
 *
 *   1. Donors.  An active worker above its target sheds a set of its
 *      movable, non-hot bins whose loads cover its excess; each donor is
 *      solved on its own as a covering knapsack.  The bins are taken in
 *      order of load per cost (for unit costs: largest load first) until
 *      the next one would cover the rest of the excess; the last bin is
 *      then the cheapest one that covers it (ties: the lightest, so as
 *      little load as needed moves).  For general costs this walk is
 *      repeated with a cost cap -- only bins costing at most 2^j, for each
 *      j that some bin's cost rounds up to -- and the cheapest result kept.
 *      Bins of an inactive worker all leave.
 *   2. Receivers.  The shed bins, heaviest first, each go to the least
 *      loaded active worker if it stays within the limit (a worker at or
 *      below the mean always exists, so a bin lighter than threshold * M
 *      always fits).  A bin given back to its own donor does not move.
 *   3. A donor's bin that fits nowhere is excluded and steps 1 and 2 run
 *      again without it (at most once per bin heavier than threshold *
 *      M).  A donor that cannot cover its excess sheds what it can; a
 *      bin of an inactive worker that fits nowhere goes to the least
 *      loaded worker all the same.  Both are reported in `over`.
 *
 * THE BOUND (proved in balance.c), for the moves after step 0
 *
 *   Unit costs: when every movable bin of the donors carries at most
 *   threshold * M, the plan reaches every target with the fewest moves
 *   of any plan.  General costs, same condition: it costs at most 3 times
 *   the cheapest plan.  Otherwise (heavier bins) it is a heuristic: it may
 *   move more than needed, or leave a donor over its target although a
 *   plan that first makes room on a receiver would reach it.
 *
 *   Every result carries `lower_bound`: no plan reaching the targets costs
 *   less (unit costs: the donors' minimal move counts, exact; general: the
 *   donors' fractional covers; step 0's and the inactive workers' moves
 *   counted as they are forced).  cost == lower_bound proves a plan
 *   optimal.
 *
 * Time O(R * (K * n + n log n)) for n bins, K distinct powers of two among
 * the costs (1 for unit costs), R <= 1 + the bins heavier than threshold *
 * M; memory O(n + W).
 *
 * Context: plain control-plane code: it allocates, never blocks, keeps no
 * global state; calls may run concurrently.
 */
#ifndef MG_BALANCE_H
#define MG_BALANCE_H

#include <stdint.h>

#include "numa/mg_api.h"
#include "migration/mg_plan.h"

struct mg_balance_input {
	uint32_t nbins;	       /* >= 1 */
	uint32_t nworkers;     /* 1 .. 65535 */
	const double *load;    /* [nbins] finite, >= 0 */
	const double *cost;    /* [nbins] finite, > 0; NULL: 1 each */
	const uint16_t *owner; /* [nbins] < nworkers */
	const uint8_t *pinned; /* [nbins] nonzero: may not move; NULL: none */
	const uint8_t *active; /* [nworkers] nonzero: may hold bins; NULL: all
				  active; at least one must be */
	double threshold;      /* finite, >= 0 */
	const double *base;    /* [nworkers] finite, >= 0: load a worker
				  carries whatever bins it holds (its share
				  of the sources, say); NULL: none; an
				  inactive worker's is ignored */
};

/* A plan; fields read-only for users. */
struct mg_balance_result {
	uint32_t nmoves;
	struct mg_move *moves; /* in bin order; NULL when nmoves is 0 */
	double cost;	       /* of the moves */
	double lower_bound;    /* no plan reaching the targets costs less */
	double mean;	       /* total load / active workers */
	double limit;	       /* mean + threshold * the bins' mean */
	double max_before;     /* highest worker load, now ... */
	double max_after;      /* ... and after the moves */
	uint32_t hot;	       /* hot bins (heavier than the limit) */
	uint32_t over; /* workers left above their target, or inactive with
			  an unpinned bin: 0 when the plan reaches every
			  target */
};

/*
 * Plan the moves that bring every worker within its target (above).
 * @in: borrowed.  @out: receives the plan; its moves are given to the
 * caller, to mg_balance_result_free().  A balanced input gives no moves.
 * Context: any thread; allocates.
 * Return: 0; -EINVAL for a NULL argument, nbins 0, nworkers 0 or above
 * 65535, an owner out of range, a load or base negative or not finite, a
 * cost not above 0 or not finite, a threshold negative or not finite, or
 * no active worker; -ENOMEM.  On failure *@out is untouched.
 */
MG_API int mg_balance_plan(const struct mg_balance_input *in,
			   struct mg_balance_result *out);

/* Free @r's moves (NULL is ignored); @r can be planned into again. */
MG_API void mg_balance_result_free(struct mg_balance_result *r);

#endif /* MG_BALANCE_H */
