/*
 * mg_plan.h - migration plans: steps, plan files, and the strategies that
 * turn a target assignment into steps.  A public fragment (C library and
 * numa/mg_api.h only): the installed megaphone.h carries it inline.
 *
 * A *move* sends one bin to a new owner.  A *step* is a set of moves that
 * take effect together at one logical time t: records of a moved bin with
 * time < t go to its old owner, records with time >= t to its new owner.
 * A *plan* is a sequence of steps with strictly increasing times.
 *
 * Everything here is plain data on the control thread: building and checking
 * plans against a starting assignment, parsing plan files, and computing the
 * move sets of the strategies.  Submitting a plan to a running dataflow (and
 * refusing times in the past or bins in flight) is the engine's job.
 *
 * PLAN FILES, one step per line, '#' starts a comment, blank lines ignored:
 *
 *     <time> <bin> <worker> [<bin> <worker> ...]
 *     <time> map <worker of bin 0> <worker of bin 1> ... <worker of last bin>
 *
 * <time> is a timestamp in the engine's units (epochs since the run
 * started).  The map form names the owner of every bin; bins that already
 * have that owner do not move.
 *
 * Checks (each refused with -EINVAL and, for files, "path:line: reason"):
 * a bin or worker that does not exist, step times not strictly increasing,
 * the same bin twice in one step, an empty plan, a malformed number, a bin
 * without its worker, a map line with too few or too many workers.
 *
 * In a file the times of step lines must increase strictly, also across
 * lines that turn out to move nothing; only a file without any step line is
 * an empty plan.  Numbers are decimal digits only (no sign, no base prefix).
 *
 * Moving a bin to its current owner (at that point of the plan) is a no-op:
 * the move is dropped; a step whose moves are all dropped is dropped too.
 * Chains are valid: a bin may move again in a later step (A->B at t1, B->C
 * at t2 > t1), also one epoch later.
 *
 * Context: plain control-plane code.  Every function here may allocate,
 * none blocks or keeps global state; calls on different plans may run at
 * the same time, calls on one plan may not.
 */
#ifndef MG_PLAN_H
#define MG_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "numa/mg_api.h"

struct mg_move {
	uint32_t bin;
	uint32_t worker; /* the new owner */
};

struct mg_step {
	uint64_t time;
	uint32_t nmoves;
	struct mg_move *moves; /* in bin order; owned by the plan, or by the
				  step (see mg_steps_free()) */
};

/* A plan; fields read-only for users, written by the functions below. */
struct mg_plan {
	uint32_t nbins;
	uint32_t nworkers;
	uint32_t nsteps;
	uint32_t cap;	       /* private: room in steps[] */
	struct mg_step *steps; /* in time order */
	uint16_t *start;       /* private: owner of each bin before step 0 */
	uint16_t *owner; /* private: owner of each bin after the last step */
};

/*
 * An empty plan for @nbins bins and @nworkers workers, starting from the
 * assignment @start (bin -> worker).
 * @start: borrowed (copied); NULL means bin b -> worker b mod nworkers, the
 * router's first version.  @out: gives the plan, to mg_plan_destroy().
 * Return: 0; -EINVAL if nbins is 0 or nworkers is 0 or > 65535 or a start
 * owner is out of range; -ENOMEM.
 */
MG_API int mg_plan_create(struct mg_plan **out, uint32_t nbins,
			  uint32_t nworkers, const uint16_t *start);

/* Free the plan and its steps (takes @p; NULL is ignored). */
MG_API void mg_plan_destroy(struct mg_plan *p);

/*
 * Append a step at @time moving @moves[0..n) (borrowed, copied; any order,
 * stored in bin order).  Moves to the bin's owner at that point are
 * dropped; if all are (or n is 0), nothing is appended, and the previous
 * step stays the last one appended.
 * Return: 0; -EINVAL (time not after the previous step, unknown bin or
 * worker, a bin twice, even as a no-op); -ENOMEM.  On failure the plan is
 * unchanged.
 */
MG_API int mg_plan_add_step(struct mg_plan *p, uint64_t time,
			    const struct mg_move *moves, uint32_t n);

/*
 * The owner of every bin after the last step (read-only, nbins entries),
 * shared with @p: valid until the next mg_plan_add_step() or destroy.
 */
MG_API const uint16_t *mg_plan_final(const struct mg_plan *p);

/*
 * Parse plan file @path into a new plan starting from @start (as for
 * mg_plan_create(), NULL allowed).
 * @out: gives the plan, to mg_plan_destroy(); untouched on failure.
 * @err: on failure receives "path:line: reason" (or "path: reason"),
 * NUL-terminated, truncated to @errlen; may be NULL if @errlen is 0.
 * Return: 0; -EINVAL for a malformed or invalid file, an empty plan, or
 * arguments mg_plan_create() refuses; -ENOENT if it does not exist (another
 * -errno of fopen() if it cannot be opened otherwise); -EIO on a read error;
 * -ENOMEM.
 */
MG_API int mg_plan_parse_file(struct mg_plan **out, const char *path,
			      uint32_t nbins, uint32_t nworkers,
			      const uint16_t *start, char *err, size_t errlen);

/* ---- strategies ----------------------------------------------------------- */

enum mg_strategy {
	MG_ALL_AT_ONCE, /* one step with every move */
	MG_FLUID,	/* one bin per step */
	MG_BATCHED,	/* each step a bipartite matching of sender ->
			   receiver moves: every worker sends and receives
			   at most one bin per step, in the fewest steps */
};

/*
 * Parse "all-at-once", "fluid", "batched" (exact, lower case).
 * Return: 0; -EINVAL for any other @name or NULL (*@out untouched).
 */
MG_API int mg_strategy_parse(const char *name, enum mg_strategy *out);

/* The name mg_strategy_parse() takes, or "unknown" outside the enum. */
MG_API const char *mg_strategy_name(enum mg_strategy s);

/*
 * The move sets of strategy @s for going from assignment @from to @to
 * (nbins entries each): a sequence of steps without times (the controller
 * assigns times as it issues them).  Moves are listed in bin order within a
 * step; fluid moves bins in increasing bin order.  A batched schedule uses
 * the minimum possible number of steps: the maximum number of bins any
 * single worker sends or receives (König's edge-colouring theorem: the
 * sender/receiver multigraph is bipartite, so its edges split into that
 * many matchings).
 * @from, @to: borrowed.  @out: gives an array of *@nsteps steps (times 0),
 * each owning its moves array (malloc), to free with mg_steps_free().
 * Time O(nbins + W + E·min(W, E/Δ)) and memory O(E + W) for E moves.
 * Return: 0 (with *@out NULL and *@nsteps 0 when nothing moves); -EINVAL
 * for an unknown strategy, nbins 0, nworkers 0 or > 65535, or an owner in
 * @from or @to >= nworkers; -ENOMEM.  On failure *@out is untouched.
 */
MG_API int mg_strategy_steps(enum mg_strategy s, const uint16_t *from,
			     const uint16_t *to, uint32_t nbins,
			     uint32_t nworkers, struct mg_step **out,
			     uint32_t *nsteps);

/*
 * Free @steps[0..nsteps) and each step's moves (takes @steps and the moves
 * arrays, e.g. what mg_strategy_steps() gave; NULL pointers are ignored).
 */
MG_API void mg_steps_free(struct mg_step *steps, uint32_t nsteps);

/*
 * The paper's target: starting from @from, move half the bins of each of the
 * first half of the workers to the workers of the second half (25% of all
 * bins when bins are spread evenly).  Precisely: workers 0..W/2-1 send;
 * walking the bins in bin order, every second bin of each sender (its 2nd,
 * 4th, ...: floor(n/2) of its n bins) goes to worker W/2 + k mod (W - W/2)
 * for the k-th bin moved so far; all other bins keep their owner.  With one
 * worker nothing moves.  Needs no memory, so it cannot fail.
 * @from: borrowed, owners < @nworkers.  @to: receives nbins entries.
 */
MG_API void mg_plan_half_of_half(const uint16_t *from, uint32_t nbins,
				 uint32_t nworkers, uint16_t *to);

#endif /* MG_PLAN_H */
