/*
 * bench_keys.h - the key streams of the key-count benchmark: uniform keys,
 * or Zipf-distributed keys whose hot set can shift during the run and can
 * start out in one worker's bins (a placement the balancer must fix).
 *
 * Record number seq gets its key from seq alone (and the time the schedule
 * gives it), so every worker can generate any record, the same record the
 * same way each time: a measured and a reference operator see one input.
 *
 *   uniform   mg_hash64(seed ^ seq * golden) mod domain (the benchmark's
 *             original stream, unchanged).
 *   zipf:S    a rank r in 1..domain with probability proportional to r^-S
 *             (an alias table for the 2^16 hottest, rejection-inversion
 *             sampling for the rest: O(1) expected per record for any
 *             S > 0; see bench_keys.c), then a
 *             permutation of the ranks onto the keys: key = (a * (r - 1) +
 *             b_p) mod domain, a coprime with the domain, b_p drawn per
 *             phase p.
 *   shift     phase p = floor(schedule time / shift): every shift seconds
 *             the hot keys are others, so a placement that balanced the
 *             last phase is as good as random for the next.
 *   skew      in phase 0 the hottest ranks (up to 2^16, or as many as there
 *             are) take, in order, the keys of the permutation that fall
 *             into bins that start on worker 0 (bin b starts on worker b
 *             mod W); the other ranks take the remaining keys in order, so
 *             the mapping stays a permutation.  With S = 1 over 1M keys the
 *             top 2^16 ranks carry about 80% of the records.
 */
#ifndef BENCH_KEYS_H
#define BENCH_KEYS_H

#include <stdbool.h>
#include <stdint.h>

/* The bin a key's records go to (the benchmark's hash and bin count). */
typedef uint32_t (*bench_bin_fn)(void *ctx, uint64_t key);

#define BENCH_KEYS_PHASES 64

struct bench_keys_config {
	uint64_t domain; /* keys 0 .. domain - 1, >= 1 */
	uint64_t seed;
	double zipf;	     /* 0: uniform; else the exponent S, > 0 */
	double rate;	     /* records/s: the schedule of seq (with shift) */
	double shift_s;	     /* 0: never; else the hot set's period, > 0 */
	bool skew;	     /* phase 0's hot keys in worker 0's bins */
	unsigned workers;    /* with skew: W, bins start on bin mod W */
	bench_bin_fn bin_of; /* with skew */
	void *bin_ctx;
};

/* A column of the Zipf sampler's alias table: a draw that falls in column i
 * at a position below thr (of 2^32) is i, else alias. */
struct bench_alias {
	uint32_t thr, alias;
};

struct bench_keys {
	struct bench_keys_config c;
	double h_m, h_n, s;	   /* the tail sampler's constants */
	struct bench_alias *alias; /* Zipf: [ncol], see bench_keys.c */
	uint32_t ncol;	/* nhead, and one for the tail if domain > nhead */
	uint64_t nhead; /* ranks drawn from the table: min(domain, 2^16) */
	uint64_t mix0;	/* the first draw's salt */
	uint64_t a;	/* the permutation's factor */
	uint64_t b[BENCH_KEYS_PHASES]; /* ... and the first phases' offsets */
	double inv_domain;	       /* 1 / domain */
	uint64_t shift_ns;	       /* the hot set's period; 0: never */
	double inv_shift;	       /* 1 / shift_ns */
	uint64_t *pos0; /* skew: phase 0's positions of ranks < nspan */
	uint64_t nhot;	/* ... the first nhot of them on worker 0 */
	uint64_t nspan;
};

/*
 * Parse a --keys value: "uniform" (*@zipf = 0) or "zipf:S" with S a plain
 * decimal in [0.01, 10].  @spec: borrowed, may be NULL (refused).
 * Return: 0; -EINVAL (*@zipf untouched).
 */
int bench_keys_parse(const char *spec, double *zipf);

/*
 * Set up @k for @c (copied).  Zipf: tabulates the 2^16 hottest ranks and
 * the tail in an alias table (512 KiB).  With skew, finds phase 0's hot keys
 * (at most 2^16 bin lookups per worker).
 * Return: 0; -EINVAL for a domain of 0, a bad exponent, rate or shift, or
 * skew without Zipf keys or without workers and bin_of; -ENOMEM.
 */
int bench_keys_init(struct bench_keys *k, const struct bench_keys_config *c);

/* Free what @k holds. */
void bench_keys_destroy(struct bench_keys *k);

/* The key of record @seq.  Context: any thread; @k read-only. */
uint64_t bench_keys_key(const struct bench_keys *k, uint64_t seq);

/* Zipf keys: the key of rank @rank0 (0-based: 0 is the hottest) in phase
 * @phase; the rank a record draws is what bench_keys_key() maps. */
uint64_t bench_keys_rank_key(const struct bench_keys *k, uint64_t rank0,
			     uint64_t phase);

/* bench_keys_prefetch()'s out-of-line half: Zipf keys only. */
void bench_keys_prefetch_zipf(const struct bench_keys *k, uint64_t seq);

/* Zipf keys: bring in what drawing record @seq's rank reads first (a
 * source calls it a few records ahead); nothing for uniform keys (a test,
 * not a call).  Context: any thread; @k read-only. */
static inline void
bench_keys_prefetch(const struct bench_keys *k, uint64_t seq)
{
	if (k->alias)
		bench_keys_prefetch_zipf(k, seq);
}

/* Zipf keys: the rank (0-based) record @seq draws. */
uint64_t bench_keys_rank(const struct bench_keys *k, uint64_t seq);

#endif /* BENCH_KEYS_H */
