/*
 * bench_util.h - what every benchmark program shares: strict flag parsing
 * (a bad flag prints usage and exits 2), medians, and pinning helpers.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The number parsers of every flag.  Numbers are plain decimal: no white
 * space, no sign, no base prefix, nothing after the number but the
 * suffixes named below.  @s: borrowed, may be NULL (refused).  On failure
 * *@out is untouched.  Context: any thread; no allocation.
 */

/* @s as an unsigned integer in [@lo, @hi], with an optional suffix k or K
 * (10^3), M (10^6) or G (10^9), e.g. 4M, and a fraction the suffix makes
 * whole, e.g. 8.5M (not 1.5, nor 1.0001k).
 * Return: 0 and *@out; -EINVAL (malformed, overflow, out of range). */
int bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* A byte count: as bench_parse_u64(), and also Ki, Mi, Gi, Ti (2^10 ..
 * 2^40), e.g. 64Gi.  Return: as bench_parse_u64(). */
int bench_parse_bytes(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* @s as a finite double in [@lo, @hi]: digits, an optional fraction and an
 * optional exponent (1.5, .5, 2e6; not inf, nan or hexadecimal).
 * Return: 0 and *@out; -EINVAL (malformed, overflow, out of range). */
int bench_parse_double(const char *s, double lo, double hi, double *out);

/* Median of @n values (sorts @v in place); 0 when n == 0. */
double bench_median(double *v, size_t n);

/* Print `,"@key":[...]` on stdout: the @n values @v with @prec decimals --
 * a JSON summary's array member after the first. */
void bench_print_array(const char *key, const double *v, size_t n, int prec);

/* "on", "off", "absent" or "unknown" (not root): whether a kernel DAMON
 * monitor (kdamond, configured through sysfs) is sampling memory.  On the
 * development VM it samples every 500 ms and stalls the threads of a
 * process with a large working set for 4-8 ms. */
const char *bench_damon_state(void);

/* CPU seconds the process has used so far (every thread: user and
 * system). */
double bench_cpu_s(void);

/* Pin the calling thread to the @i-th (mod their number) of the CPUs it
 * may run on, so that `numactl --physcpubind` decides.  Return: 0; -errno. */
int bench_pin_nth(unsigned i);

/* Print "prog: msg" and the usage hint on stderr, exit 2. */
_Noreturn void bench_bad_usage(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* BENCH_UTIL_H */
