/*
 * hist_pvt.h - log-linear latency histograms.
 *
 * Values are nanoseconds.  Values below 32 have a bucket each; above, every
 * power of two is split into 32 linear sub-buckets, so a bucket's width is
 * at most 1/32 (3.1%) of its values: 1920 buckets cover all of uint64_t.
 *
 * One writer, any number of readers: the writer updates a counter with a
 * relaxed load and a relaxed store (a plain add on x86, not a locked RMW),
 * readers load relaxed.  A reader may see a histogram mid-update (counts of
 * different buckets from slightly different moments) but never a torn
 * counter; the engine reads a window's histogram only after its writer has
 * moved past the window (see report.c), so those reads are exact.
 */
#ifndef MG_HIST_PVT_H
#define MG_HIST_PVT_H

#include <stdatomic.h>
#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

struct mg__hist {
	_Atomic uint64_t id; /* owner's tag (the latency window it holds) */
	_Atomic uint64_t count;
	_Atomic uint64_t max;
	_Atomic uint64_t bucket[HIST_BUCKETS];
};

void mg__hist_reset(struct mg__hist *h);

/* Add @n values spread evenly from @lo to @hi (lo <= hi; n >= 1). */
void mg__hist_add_range(struct mg__hist *h, uint64_t lo, uint64_t hi,
			uint64_t n);

static inline void
mg__hist_add(struct mg__hist *h, uint64_t v)
{
	mg__hist_add_range(h, v, v, 1);
}

/* dst += src (dst has one writer: the caller). */
void mg__hist_merge(struct mg__hist *dst, const struct mg__hist *src);

/* Smallest bucket upper bound covering fraction @q of the values (clamped to
 * the exact max); 0 when empty. */
uint64_t mg__hist_quantile(const struct mg__hist *h, double q);

uint64_t mg__hist_count(const struct mg__hist *h);
uint64_t mg__hist_max(const struct mg__hist *h);

/* Bucket of @v and the bounds of bucket @i (for tests). */
unsigned mg__hist_bucket(uint64_t v);
uint64_t mg__hist_lower(unsigned i);

#endif /* MG_HIST_PVT_H */
