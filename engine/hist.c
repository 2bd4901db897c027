/*
 * hist.c - log-linear histograms; the layout and the one-writer rule are in
 * hist_pvt.h.
 */
#include <string.h>

#include "engine/hist_pvt.h"
#include "numa/mg_base.h"

/* Relaxed single-writer add: no other thread writes this counter. */
static inline void
bump(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

unsigned
mg__hist_bucket(uint64_t v)
{
	unsigned msb;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return (msb - HIST_SUB_BITS + 1) * HIST_SUB +
	       (unsigned)((v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

uint64_t
mg__hist_lower(unsigned i)
{
	unsigned msb, sub;

	if (i < HIST_SUB)
		return i;
	msb = i / HIST_SUB + HIST_SUB_BITS - 1;
	sub = i % HIST_SUB;
	return (uint64_t)(HIST_SUB + sub) << (msb - HIST_SUB_BITS);
}

static uint64_t
upper(unsigned i)
{
	return i + 1 == HIST_BUCKETS ? UINT64_MAX : mg__hist_lower(i + 1) - 1;
}

void
mg__hist_reset(struct mg__hist *h)
{
	unsigned i;

	atomic_store_explicit(&h->count, 0, memory_order_relaxed);
	atomic_store_explicit(&h->max, 0, memory_order_relaxed);
	for (i = 0; i < HIST_BUCKETS; i++)
		atomic_store_explicit(&h->bucket[i], 0, memory_order_relaxed);
}

/*
 * The values are v_k = lo + floor(k * D / (n - 1)), k = 0..n-1, D = hi - lo.
 * v_k <= u  <=>  k * D < (u - lo + 1) * (n - 1), so walking the buckets from
 * lo's to hi's, the values at most a bucket's upper bound u number
 * K(u) = ceil((u - lo + 1) * (n - 1) / D) (capped at n), and each bucket
 * gets K(its upper) minus what earlier buckets took.
 */
void
mg__hist_add_range(struct mg__hist *h, uint64_t lo, uint64_t hi, uint64_t n)
{
	unsigned i = mg__hist_bucket(lo), last = mg__hist_bucket(hi);
	uint64_t taken = 0;

	MG_ASSERT(lo <= hi && n >= 1);
	bump(&h->count, n);
	if (hi > atomic_load_explicit(&h->max, memory_order_relaxed))
		atomic_store_explicit(&h->max, hi, memory_order_relaxed);
	if (i == last || n == 1) {
		bump(&h->bucket[i], n);
		return;
	}
	for (; i < last; i++) {
		__extension__ unsigned __int128 k =
			((unsigned __int128)(upper(i) - lo + 1) * (n - 1) +
			 (hi - lo) - 1) /
			(hi - lo);
		uint64_t upto = k > n ? n : (uint64_t)k;

		if (upto > taken) {
			bump(&h->bucket[i], upto - taken);
			taken = upto;
		}
	}
	bump(&h->bucket[last], n - taken);
}

void
mg__hist_merge(struct mg__hist *dst, const struct mg__hist *src)
{
	uint64_t m = atomic_load_explicit(&src->max, memory_order_relaxed);
	unsigned i;

	bump(&dst->count,
	     atomic_load_explicit(&src->count, memory_order_relaxed));
	if (m > atomic_load_explicit(&dst->max, memory_order_relaxed))
		atomic_store_explicit(&dst->max, m, memory_order_relaxed);
	for (i = 0; i < HIST_BUCKETS; i++) {
		uint64_t c = atomic_load_explicit(&src->bucket[i],
						  memory_order_relaxed);
		if (c)
			bump(&dst->bucket[i], c);
	}
}

uint64_t
mg__hist_count(const struct mg__hist *h)
{
	return atomic_load_explicit(&h->count, memory_order_relaxed);
}

uint64_t
mg__hist_max(const struct mg__hist *h)
{
	return atomic_load_explicit(&h->max, memory_order_relaxed);
}

uint64_t
mg__hist_quantile(const struct mg__hist *h, double q)
{
	uint64_t total = 0, need, seen = 0, max = mg__hist_max(h);
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++)
		total += atomic_load_explicit(&h->bucket[i],
					      memory_order_relaxed);
	if (!total)
		return 0;
	need = (uint64_t)(q * (double)total + 0.5);
	if (need < 1)
		need = 1;
	if (need > total)
		need = total;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += atomic_load_explicit(&h->bucket[i],
					     memory_order_relaxed);
		if (seen >= need)
			return upper(i) < max ? upper(i) : max;
	}
	return max;
}
