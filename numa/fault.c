/*
 * fault.c - allocation failure injection (see mg_fault.h): the knobs, one
 * allocation counter per site, and the decision.
 *
 * The knobs are written by mg__fault_load() and read by any thread, so they
 * are relaxed atomics: a load runs on the control plane before the
 * allocations it governs (the threads that make them start afterwards, or
 * are synchronised with it by whatever hands them work), and a reader that
 * saw an older value would only fail another allocation, never misbehave.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numa/mg_fault.h"

#if MG_FAULT_INJECT

struct site {
	const char *nth_name, *p_name;
	_Atomic uint64_t nth;	    /* fail allocation number nth; 0: none */
	_Atomic uint64_t threshold; /* fail if mix < it; 0: never */
	_Atomic uint64_t seen, failed;
};

static struct site sites[MG_FAULT_NSITES] = {
	[MG_FAULT_CHUNK] = {.nth_name = "MG_FAIL_CHUNK",
			    .p_name = "MG_FAIL_CHUNK_P"},
	[MG_FAULT_ARENA] = {.nth_name = "MG_FAIL_ARENA",
			    .p_name = "MG_FAIL_ARENA_P"},
};
static _Atomic uint64_t seed;
static _Atomic unsigned vshift;

/* A decimal number up to @max; false if @s is not one. */
static bool
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end || x > max)
		return false;
	*out = x;
	return true;
}

/* A probability in [0, 1] as a threshold on 64-bit hashes. */
static bool
parse_p(const char *s, uint64_t *out)
{
	char *end;
	double p;

	if (!s || !*s)
		return false;
	errno = 0;
	p = strtod(s, &end);
	if (errno || *end || !(p >= 0.0 && p <= 1.0))
		return false;
	*out = p >= 1.0 ? UINT64_MAX : (uint64_t)(p * 18446744073709551616.0);
	return true;
}

/* An unset or empty knob is 0; a malformed one is reported. */
static bool
knob(const char *name, bool prob, uint64_t max, uint64_t *out)
{
	const char *v = getenv(name);

	*out = 0;
	if (!v || !*v)
		return true;
	if (prob ? parse_p(v, out) : parse_u64(v, max, out))
		return true;
	if (prob)
		fprintf(stderr, "megaphone: bad %s=%s (want 0..1)\n", name, v);
	else
		fprintf(stderr, "megaphone: bad %s=%s (want decimal 0..%llu)\n",
			name, v, (unsigned long long)max);
	return false;
}

int
mg__fault_load(void)
{
	uint64_t nth[MG_FAULT_NSITES], thr[MG_FAULT_NSITES], s, k;
	bool ok = true;
	unsigned i;

	for (i = 0; i < MG_FAULT_NSITES; i++) {
		ok &= knob(sites[i].nth_name, false, UINT64_MAX, &nth[i]);
		ok &= knob(sites[i].p_name, true, 0, &thr[i]);
	}
	ok &= knob("MG_FAIL_SEED", false, UINT64_MAX, &s);
	ok &= knob("MG_DEBUG_VSHIFT", false, MG_FAULT_VSHIFT_MAX, &k);
	if (!getenv("MG_FAIL_SEED") || !*getenv("MG_FAIL_SEED"))
		s = 1;
	for (i = 0; i < MG_FAULT_NSITES; i++) {
		atomic_store_explicit(&sites[i].nth, ok ? nth[i] : 0,
				      memory_order_relaxed);
		atomic_store_explicit(&sites[i].threshold, ok ? thr[i] : 0,
				      memory_order_relaxed);
		atomic_store_explicit(&sites[i].seen, 0, memory_order_relaxed);
		atomic_store_explicit(&sites[i].failed, 0,
				      memory_order_relaxed);
	}
	atomic_store_explicit(&seed, s, memory_order_relaxed);
	atomic_store_explicit(&vshift, ok ? (unsigned)k : 0,
			      memory_order_relaxed);
	return ok ? 0 : -EINVAL;
}

/* splitmix64's finalizer (as mg_hash64() in megaphone.h). */
static uint64_t
mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

bool
mg__fault_fail(enum mg_fault_site s)
{
	struct site *x = &sites[s];
	uint64_t k, nth, thr;
	bool fail;

	/* Relaxed, all: a counter handing out numbers, and knobs (above). */
	k = atomic_fetch_add_explicit(&x->seen, 1, memory_order_relaxed) + 1;
	nth = atomic_load_explicit(&x->nth, memory_order_relaxed);
	thr = atomic_load_explicit(&x->threshold, memory_order_relaxed);
	fail = k == nth ||
	       (thr && mix(atomic_load_explicit(&seed, memory_order_relaxed) ^
			   mix(k * MG_FAULT_NSITES + s)) < thr);
	if (fail)
		atomic_fetch_add_explicit(&x->failed, 1, memory_order_relaxed);
	return fail;
}

uint64_t
mg__fault_seen(enum mg_fault_site s)
{
	return atomic_load_explicit(&sites[s].seen, memory_order_relaxed);
}

uint64_t
mg__fault_failed(enum mg_fault_site s)
{
	return atomic_load_explicit(&sites[s].failed, memory_order_relaxed);
}

unsigned
mg__fault_vshift(void)
{
	return atomic_load_explicit(&vshift, memory_order_relaxed);
}

#else

/* Not a debug build: the hooks are inline constants (mg_fault.h). */
_Static_assert(MG_FAULT_NSITES == 2, "two sites");

#endif /* MG_FAULT_INJECT */
