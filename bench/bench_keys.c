/*
 * bench_keys.c - the key streams of the key-count benchmark (see
 * bench_keys.h).
 *
 * The Zipf sampler draws the 2^16 hottest ranks, and "the tail" as one
 * more outcome, from an alias table (A. J. Walker, "An efficient method for
 * generating discrete random variables with general distributions", ACM
 * TOMS 3(3), 1977; built as M. D. Vose, IEEE TSE 17(9), 1991): one 64-bit
 * hash times the column count gives a column (the product's high word) and
 * a position in it (the low word), which picks the column or its alias --
 * one 8-byte entry of a 512 KiB table.  The head carries 81 % of the draws
 * at S = 1 over 10^6 keys.  Its CDF searched from a guide table (the
 * sampler before this one) cost two dependent cache misses a record: at 10
 * M records/s over 10^6 keys on two workers it took 15.0 % of their CPU
 * samples (~30 ns a record), the alias table with its prefetch 5.1 %
 * (perf record -e cpu-clock, keycount --keys zipf:1.0).
 * The entry is prefetched a few records ahead (bench_keys_prefetch()).  The
 * head's probabilities are exact sums of r^-S over the total, whose tail
 * beyond the head is Euler-Maclaurin's to double precision; the entries
 * hold them to 2^-32 of a column.  The tail is
 * rejection-inversion (W. Hörmann, G. Derflinger, "Rejection-inversion to
 * generate variates from monotone discrete distributions", ACM TOMACS
 * 6(3), 1996), in the form of Apache Commons RNG's
 * RejectionInversionZipfSampler, over ranks m = nhead + 1 .. N: h(x) = x^-S
 * is integrated in closed form (H), a uniform u in (H(m + 0.5) - h(m),
 * H(N + 0.5)] is mapped back through H^-1 and rounded to a rank k, which is
 * accepted when u falls under the step of k (almost always); each rank k
 * gets a measure of exactly h(k), so the tail's conditional law is exact.
 * expm1/log1p keep S near 1 exact.  The uniforms come from mg_hash64 of
 * (seed, seq, attempt): a pure function of the record.
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
#define HEAD_MAX  (1ull << 16) /* Zipf: ranks drawn from a table */

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

/* Record @seq's @attempt-th draw: 64 random bits. */
static uint64_t
draw(const struct bench_keys *k, uint64_t seq, uint64_t attempt)
{
	return mg_hash64(k->c.seed ^ (seq * GOLDEN) ^
			 (attempt ? mg_hash64(attempt + PHASE_MIX) : k->mix0));
}

/* A uniform double in [0, 1) from record @seq's @attempt-th draw. */
static double
uniform(const struct bench_keys *k, uint64_t seq, uint64_t attempt)
{
	return (double)(draw(k, seq, attempt) >> 11) * 0x1p-53;
}

/* Record @seq's alias-table column, and in *@f its position in it (32
 * bits): the first draw times the column count, high word and low word. */
static inline uint32_t
column(const struct bench_keys *k, uint64_t seq, uint32_t *f)
{
	u128 x = (u128)draw(k, seq, 0) * k->ncol;

	*f = (uint32_t)((uint64_t)x >> 32);
	return (uint32_t)(x >> 64);
}

void
bench_keys_prefetch_zipf(const struct bench_keys *k, uint64_t seq)
{
	uint32_t f;

	__builtin_prefetch(&k->alias[column(k, seq, &f)]);
}

uint64_t
bench_keys_rank(const struct bench_keys *k, uint64_t seq)
{
	double n = (double)k->c.domain, s = k->c.zipf, m = (double)k->nhead + 1;
	uint32_t f, i = column(k, seq, &f);

	if (f >= k->alias[i].thr)
		i = k->alias[i].alias;
	if (i < k->nhead)
		return i;
	for (uint64_t attempt = 1;; attempt++) { /* the tail */
		double x, r, u;

		u = k->h_n + uniform(k, seq, attempt) * (k->h_m - k->h_n);
		x = h_integral_inverse(s, u);
		r = floor(x + 0.5);
		if (r < m)
			r = m;
		else if (r > n)
			r = n;
		if (r - x <= k->s || u >= h_integral(s, r + 0.5) - h(s, r))
			return (uint64_t)r - 1;
	}
}

/* Sum of r^-S over r = @m .. @n (m >= 2): Euler-Maclaurin to the third
 * derivative, below 1e-16 relative from m = 2^16 on. */
static double
tail_sum(double s, double m, double n)
{
	double d1m = -s * pow(m, -s - 1), d1n = -s * pow(n, -s - 1);
	double d3 = -s * (s + 1) * (s + 2);

	return h_integral(s, n) - h_integral(s, m) + (h(s, m) + h(s, n)) / 2 +
	       (d1n - d1m) / 12 - d3 * (pow(n, -s - 3) - pow(m, -s - 3)) / 720;
}

/* A probability below 1 as a column's threshold: 32 bits of fraction,
 * rounded to the nearest (truncated, a column that is many columns' alias
 * gained half a unit from each: 2.4e-9 of rank 1's share at S = 0.5). */
static uint32_t
fixed32(double q)
{
	double x = nearbyint(q * 0x1p32);

	return x >= 0x1p32 - 1 ? UINT32_MAX : (uint32_t)x;
}

/* The alias table of the head's ranks and the tail (see the top of the
 * file): Vose's construction.  Each column's mass, scaled so that the mean
 * is 1, is filled up to 1 from a column above 1, which keeps the rest. */
static int
tabulate(struct bench_keys *k)
{
	double s = k->c.zipf, total = 0, *q;
	uint32_t *small, *large, ns = 0, nl = 0, n, i, l;

	k->nhead = k->c.domain < HEAD_MAX ? k->c.domain : HEAD_MAX;
	n = k->ncol = (uint32_t)k->nhead + (k->c.domain > k->nhead);
	q = malloc(sizeof(*q) * n);
	small = malloc(sizeof(*small) * n);
	large = malloc(sizeof(*large) * n);
	k->alias = malloc(sizeof(*k->alias) * n);
	if (!q || !small || !large || !k->alias) {
		free(q);
		free(small);
		free(large);
		return -ENOMEM;
	}
	for (i = 0; i < k->nhead; i++)
		total += q[i] = h(s, (double)i + 1);
	if (n > k->nhead) /* the tail: ranks nhead + 1 .. domain */
		total += q[n - 1] =
			tail_sum(s, (double)k->nhead + 1, (double)k->c.domain);
	for (i = 0; i < n; i++) {
		q[i] *= n / total;
		if (q[i] < 1)
			small[ns++] = i;
		else
			large[nl++] = i;
	}
	while (ns && nl) {
		i = small[--ns];
		l = large[nl - 1];
		k->alias[i] = (struct bench_alias){fixed32(q[i]), l};
		q[l] -= 1 - q[i];
		if (q[l] < 1) {
			nl--;
			small[ns++] = l;
		}
	}
	while (nl || ns) { /* 1 up to rounding: the column is its own */
		i = nl ? large[--nl] : small[--ns];
		k->alias[i] = (struct bench_alias){UINT32_MAX, i};
	}
	free(q);
	free(small);
	free(large);
	return 0;
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

/* @x / @d, and @x mod @d in *@rem if not NULL (@inv = 1 / @d): for a
 * quotient below 2^52, a multiplication and a correction or two, not a
 * division. */
static inline uint64_t
div_small(uint64_t x, uint64_t d, double inv, uint64_t *rem)
{
	uint64_t q = (uint64_t)((double)x * inv);
	int64_t r = (int64_t)(x - q * d);

	for (; r < 0; r += (int64_t)d)
		q--;
	for (; r >= (int64_t)d; r -= (int64_t)d)
		q++;
	if (rem)
		*rem = (uint64_t)r;
	return q;
}

/* Phase @phase's permutation's offset. */
static uint64_t
phase_offset(const struct bench_keys_config *c, uint64_t phase)
{
	return mg_hash64(c->seed + phase * PHASE_MIX) % c->domain;
}

/* Position @pos of phase @phase's permutation. */
static uint64_t
affine(const struct bench_keys *k, uint64_t pos, uint64_t phase)
{
	uint64_t b = phase < BENCH_KEYS_PHASES ? k->b[phase]
					       : phase_offset(&k->c, phase),
		 key;

	/* a, pos, b < domain: below 2^32 the product fits 64 bits and the
	 * quotient 32 */
	if (k->c.domain <= UINT32_MAX) {
		div_small(k->a * pos + b, k->c.domain, k->inv_domain, &key);
		return key;
	}
	return (uint64_t)(((u128)k->a * pos + b) % k->c.domain);
}

uint64_t
bench_keys_rank_key(const struct bench_keys *k, uint64_t rank0, uint64_t phase)
{
	/* phase 0 with skew: the first nspan ranks take the positions
	 * pos0 lists (the hot ones first), the others their own */
	if (!phase && rank0 < k->nspan)
		return affine(k, k->pos0[rank0], 0);
	return affine(k, rank0, phase);
}

uint64_t
bench_keys_key(const struct bench_keys *k, uint64_t seq)
{
	uint64_t phase = 0;

	if (!k->c.zipf)
		return mg_hash64(k->c.seed ^ (seq * GOLDEN)) % k->c.domain;
	if (k->shift_ns)
		phase = div_small(mg_sched_ns(k->c.rate, seq), k->shift_ns,
				  k->inv_shift, NULL);
	return bench_keys_rank_key(k, bench_keys_rank(k, seq), phase);
}

/* Skew: phase 0's position @pos starts on worker 0. */
static bool
on_worker0(const struct bench_keys *k, uint64_t pos)
{
	return k->c.bin_of(k->c.bin_ctx, affine(k, pos, 0)) % k->c.workers == 0;
}

/*
 * Skew: phase 0's positions of the first ranks -- the hottest (up to
 * HOT_MAX) the first positions whose keys start on worker 0, in order,
 * then the positions among them that do not, in order, up to the last
 * hot one: a permutation of 0 .. nspan - 1, so ranks from nspan on keep
 * their own positions.  Two passes: the first finds nhot and nspan.
 */
static int
find_hot(struct bench_keys *k)
{
	uint64_t want = k->c.domain < HOT_MAX ? k->c.domain : HOT_MAX;
	uint64_t limit = want * k->c.workers * 4, pos, hot = 0, cold;

	for (pos = 0; pos < k->c.domain && pos < limit && hot < want; pos++)
		hot += on_worker0(k, pos);
	k->pos0 = malloc(sizeof(*k->pos0) * (pos ? pos : 1));
	if (!k->pos0)
		return -ENOMEM;
	k->nhot = hot;
	k->nspan = pos;
	for (pos = hot = 0, cold = k->nhot; pos < k->nspan; pos++)
		k->pos0[on_worker0(k, pos) ? hot++ : cold++] = pos;
	return 0;
}

int
bench_keys_init(struct bench_keys *k, const struct bench_keys_config *c)
{
	double s = c->zipf, n = (double)c->domain;
	int err;

	memset(k, 0, sizeof(*k));
	if (!c->domain || !isfinite(s) || s < 0 || !isfinite(c->shift_s) ||
	    c->shift_s < 0 || (c->shift_s > 0 && !(c->rate > 0)) ||
	    ((c->skew || c->shift_s > 0) && !s) ||
	    (c->skew && (!c->workers || !c->bin_of)))
		return -EINVAL;
	k->c = *c;
	if (!s)
		return 0;
	k->inv_domain = 1.0 / n;
	k->shift_ns = (uint64_t)(c->shift_s * 1e9);
	k->inv_shift = k->shift_ns ? 1.0 / (double)k->shift_ns : 0;
	k->mix0 = mg_hash64(PHASE_MIX);
	for (unsigned p = 0; p < BENCH_KEYS_PHASES; p++)
		k->b[p] = phase_offset(c, p);
	err = tabulate(k);
	if (err) {
		bench_keys_destroy(k);
		return err;
	}
	k->h_m = h_integral(s, (double)k->nhead + 1.5) -
		 h(s, (double)k->nhead + 1);
	k->h_n = h_integral(s, n + 0.5);
	k->s = 2 - h_integral_inverse(s, h_integral(s, 2.5) - h(s, 2));
	/* a factor coprime with the domain, far from 1: a permutation that
	 * scatters neighbouring ranks */
	k->a = 1;
	if (c->domain > 2) /* domain - 1 >= 2 is coprime: this ends */
		for (k->a = GOLDEN % c->domain;
		     k->a < 2 || gcd(k->a, c->domain) != 1;)
			k->a = (k->a + 1) % c->domain;
	err = c->skew ? find_hot(k) : 0;
	if (err)
		bench_keys_destroy(k);
	return err;
}

void
bench_keys_destroy(struct bench_keys *k)
{
	free(k->pos0);
	free(k->alias);
	k->pos0 = NULL;
	k->alias = NULL;
	k->nhot = k->nspan = 0;
}
