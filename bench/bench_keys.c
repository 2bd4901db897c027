/*
 * bench_keys.c - the key streams of the key-count benchmark (see
 * bench_keys.h).
 *
 * The Zipf sampler is rejection-inversion (W. Hörmann, G. Derflinger,
 * "Rejection-inversion to generate variates from monotone discrete
 * distributions", ACM TOMACS 6(3), 1996), in the form of Apache Commons
 * RNG's RejectionInversionZipfSampler: h(x) = x^-S is integrated in closed
 * form (H), a uniform u in (H(1.5) - 1, H(N + 0.5)] is mapped back through
 * H^-1 and rounded to a rank k, which is accepted when u falls under the
 * step of k (almost always); expm1/log1p keep S near 1 exact.  Its
 * uniforms come from mg_hash64 of (seed, seq, attempt): a pure function of
 * the record.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_keys.h"
#include "bench/bench_util.h"
#include "engine/megaphone.h"

#define GOLDEN	  0x9e3779b97f4a7c15ull
#define PHASE_MIX 0xd1b54a32d192ed03ull
#define HOT_MAX	  (1ull << 16) /* skew: hot ranks placed on worker 0 */

__extension__ typedef unsigned __int128 u128;

int
bench_keys_parse(const char *spec, double *zipf)
{
	double s;

	if (!spec)
		return -EINVAL;
	if (!strcmp(spec, "uniform")) {
		*zipf = 0;
		return 0;
	}
	if (strncmp(spec, "zipf:", 5) ||
	    bench_parse_double(spec + 5, 0.01, 10, &s))
		return -EINVAL;
	*zipf = s;
	return 0;
}

/* log1p(x) / x and expm1(x) / x, continuous at 0 (series below 1e-8). */
static double
helper1(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x
			      : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double
helper2(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x
			      : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x));
}

/* H(x) = (x^(1-S) - 1) / (1 - S), log x for S = 1. */
static double
h_integral(double s, double x)
{
	double lx = log(x);

	return helper2((1 - s) * lx) * lx;
}

static double
h(double s, double x)
{
	return exp(-s * log(x));
}

static double
h_integral_inverse(double s, double x)
{
	double t = x * (1 - s);

	if (t < -1)
		t = -1;
	return exp(helper1(t) * x);
}

/* A uniform double in [0, 1) from record @seq's @attempt-th draw. */
static double
uniform(const struct bench_keys *k, uint64_t seq, uint64_t attempt)
{
	uint64_t z = mg_hash64(k->c.seed ^ (seq * GOLDEN) ^
			       mg_hash64(attempt + PHASE_MIX));

	return (double)(z >> 11) * 0x1p-53;
}

uint64_t
bench_keys_rank(const struct bench_keys *k, uint64_t seq)
{
	double n = (double)k->c.domain, s = k->c.zipf;

	for (uint64_t attempt = 0;; attempt++) {
		double u =
			k->h_n + uniform(k, seq, attempt) * (k->h_x1 - k->h_n);
		double x = h_integral_inverse(s, u);
		double r = floor(x + 0.5);

		if (r < 1)
			r = 1;
		else if (r > n)
			r = n;
		if (r - x <= k->s || u >= h_integral(s, r + 0.5) - h(s, r))
			return (uint64_t)r - 1;
	}
}

static uint64_t
gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* Position @pos of phase @phase's permutation. */
static uint64_t
affine(const struct bench_keys *k, uint64_t pos, uint64_t phase)
{
	uint64_t b = mg_hash64(k->c.seed + phase * PHASE_MIX) % k->c.domain;

	/* a, pos, b < domain: below 2^32 the product fits 64 bits, and a
	 * 64-bit remainder is a division, not a call */
	if (k->c.domain <= UINT32_MAX)
		return (k->a * pos + b) % k->c.domain;
	return (uint64_t)(((u128)k->a * pos + b) % k->c.domain);
}

uint64_t
bench_keys_rank_key(const struct bench_keys *k, uint64_t rank0, uint64_t phase)
{
	uint64_t lo = 0, hi = k->ntable, q;

	if (phase || !k->ntable)
		return affine(k, rank0, phase);
	if (rank0 < k->ntable)
		return affine(k, k->table[rank0], 0);
	/* the (rank0 - ntable)-th position that is not in the table: the
	 * first i with table[i] - i > q gives position q + i; none past the
	 * table's last position (most ranks: no search) */
	q = rank0 - k->ntable;
	if (q >= k->table[k->ntable - 1] - (k->ntable - 1))
		return affine(k, q + k->ntable, 0);
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (k->table[mid] - mid > q)
			hi = mid;
		else
			lo = mid + 1;
	}
	return affine(k, q + lo, 0);
}

uint64_t
bench_keys_key(const struct bench_keys *k, uint64_t seq)
{
	uint64_t phase = 0;

	if (!k->c.zipf)
		return mg_hash64(k->c.seed ^ (seq * GOLDEN)) % k->c.domain;
	if (k->c.shift_s > 0)
		phase = mg_sched_ns(k->c.rate, seq) /
			(uint64_t)(k->c.shift_s * 1e9);
	return bench_keys_rank_key(k, bench_keys_rank(k, seq), phase);
}

/* Skew: the first positions of phase 0 whose keys start on worker 0. */
static int
find_hot(struct bench_keys *k)
{
	uint64_t want = k->c.domain < HOT_MAX ? k->c.domain : HOT_MAX;
	uint64_t limit = want * k->c.workers * 4, pos;

	k->table = malloc(sizeof(*k->table) * want);
	if (!k->table)
		return -ENOMEM;
	for (pos = 0; pos < k->c.domain && pos < limit && k->ntable < want;
	     pos++)
		if (k->c.bin_of(k->c.bin_ctx, affine(k, pos, 0)) %
			    k->c.workers ==
		    0)
			k->table[k->ntable++] = pos;
	return 0;
}

int
bench_keys_init(struct bench_keys *k, const struct bench_keys_config *c)
{
	double s = c->zipf, n = (double)c->domain;

	memset(k, 0, sizeof(*k));
	if (!c->domain || !isfinite(s) || s < 0 || !isfinite(c->shift_s) ||
	    c->shift_s < 0 || (c->shift_s > 0 && !(c->rate > 0)) ||
	    ((c->skew || c->shift_s > 0) && !s) ||
	    (c->skew && (!c->workers || !c->bin_of)))
		return -EINVAL;
	k->c = *c;
	if (!s)
		return 0;
	k->h_x1 = h_integral(s, 1.5) - 1;
	k->h_n = h_integral(s, n + 0.5);
	k->s = 2 - h_integral_inverse(s, h_integral(s, 2.5) - h(s, 2));
	/* a factor coprime with the domain, far from 1: a permutation that
	 * scatters neighbouring ranks */
	k->a = 1;
	if (c->domain > 2) /* domain - 1 >= 2 is coprime: this ends */
		for (k->a = GOLDEN % c->domain;
		     k->a < 2 || gcd(k->a, c->domain) != 1;)
			k->a = (k->a + 1) % c->domain;
	return c->skew ? find_hot(k) : 0;
}

void
bench_keys_destroy(struct bench_keys *k)
{
	free(k->table);
	k->table = NULL;
	k->ntable = 0;
}
