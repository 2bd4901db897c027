/*
 * mg_fault.h - allocation failure injection and shrunken buffers, for
 * proving that running out of memory ends a run cleanly.  Debug builds
 * only: compiled in when MG_FAULT_INJECT is 1, which `make DEBUG=1`
 * (MG_DEBUG=1) implies; -DMG_FAULT_INJECT=1 turns it on in any build.
 * Elsewhere every hook below is a constant and costs nothing.
 *
 * The knobs, read from the environment by mg__fault_load() -- which
 * mg_pools_create() calls, so each dataflow (each set of page pools) reads
 * them afresh and counts from zero:
 *
 *   MG_FAIL_CHUNK=N     fail the Nth mg_chunk_alloc() (1-based) with -ENOMEM
 *   MG_FAIL_CHUNK_P=p   fail each mg_chunk_alloc() with probability p
 *   MG_FAIL_ARENA=N     fail the Nth mg_arena_alloc()/zalloc() with -ENOMEM
 *   MG_FAIL_ARENA_P=p   fail each arena allocation with probability p
 *   MG_FAIL_SEED=s      the seed of the probabilities (default 1)
 *   MG_DEBUG_VSHIFT=k   every stateful operator's buffers reserve 2^k times
 *                       less than on a big machine (0..20; the machine's own
 *                       scaling wins when it is larger), so a test reaches
 *                       each buffer's limit with a small backlog
 *
 * N is decimal, 0 or unset means never; p is a decimal fraction in [0, 1].
 * An allocation's number is its place in one counter per site, shared by
 * all threads: which thread gets the Nth one depends on scheduling, but
 * with p the set of failing numbers is fixed by the seed (allocation k
 * fails iff mix(seed, site, k) < p * 2^64).  A failed allocation is one
 * that the pool or arena could have refused anyway (a class exhausted), so
 * the injection exercises only paths the engine has to handle.
 *
 * Context: mg__fault_load() on the control plane, while no allocation
 * runs that it should govern; the rest from any thread, lock-free.
 */
#ifndef MG_FAULT_H
#define MG_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#ifndef MG_FAULT_INJECT
#if defined(MG_DEBUG) && MG_DEBUG
#define MG_FAULT_INJECT 1
#else
#define MG_FAULT_INJECT 0
#endif
#endif

enum mg_fault_site {
	MG_FAULT_CHUNK, /* mg_chunk_alloc() */
	MG_FAULT_ARENA, /* mg_arena_alloc(), mg_arena_zalloc() */
	MG_FAULT_NSITES,
};

#define MG_FAULT_VSHIFT_MAX 20u /* SCRATCH_RESERVE >> 20: 1 KiB */

#if MG_FAULT_INJECT

/*
 * (Re)read the knobs and reset the counters.
 * Return: 0; -EINVAL if a knob is malformed or out of range (then printed
 * to stderr, and injection is off).
 */
int mg__fault_load(void);

/* Count one allocation at @s; true if it must fail. */
bool mg__fault_fail(enum mg_fault_site s);

/* Allocations counted / failed at @s since the last load. */
uint64_t mg__fault_seen(enum mg_fault_site s);
uint64_t mg__fault_failed(enum mg_fault_site s);

/* MG_DEBUG_VSHIFT, 0 if unset. */
unsigned mg__fault_vshift(void);

#else

static inline int
mg__fault_load(void)
{
	return 0;
}

static inline bool
mg__fault_fail(enum mg_fault_site s)
{
	(void)s;
	return false;
}

static inline unsigned
mg__fault_vshift(void)
{
	return 0;
}

#endif /* MG_FAULT_INJECT */

#endif /* MG_FAULT_H */
