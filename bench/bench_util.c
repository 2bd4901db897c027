#include <errno.h>
#include <sched.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"

/*
 * The flags take plain decimal numbers: strtoull() and strtod() would also
 * take leading white space, a sign (" -1" wraps to 2^64 - 1), a base prefix,
 * hexadecimal floats, "inf" and "nan", so the digits are checked first and
 * the C library only converts what passed.
 */
__extension__ typedef unsigned __int128 u128;

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Powers of ten k, K, M, G; with @bytes also Ki, Mi, Gi, Ti (of 1024).
 * Return: the multiplier, @s advanced past the suffix, or 1. */
static uint64_t
suffix(const char **s, bool bytes)
{
	static const struct {
		const char *name;
		uint64_t mul;
		bool bytes;
	} suffixes[] = {
		{"Ki", 1ull << 10, true}, {"Mi", 1ull << 20, true},
		{"Gi", 1ull << 30, true}, {"Ti", 1ull << 40, true},
		{"k", 1000ull, false},	  {"K", 1000ull, false},
		{"M", 1000000ull, false}, {"G", 1000000000ull, false},
	};
	size_t i, n;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (suffixes[i].bytes && !bytes)
			continue;
		n = strlen(suffixes[i].name);
		if (!strncmp(*s, suffixes[i].name, n)) {
			*s += n;
			return suffixes[i].mul;
		}
	}
	return 1;
}

/* A count with an optional suffix, and a fraction where the suffix makes
 * it whole ("8.5M" is 8500000, "1.5Gi" 1610612736; "1.5" and "1.0001k"
 * are refused). */
static int
parse_unsigned(const char *s, uint64_t lo, uint64_t hi, bool bytes,
	       uint64_t *out)
{
	unsigned long long v, frac = 0, scale = 1;
	u128 part;
	uint64_t mul;
	const char *rest;
	char *end;

	if (!s || !is_digit(*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL; /* ERANGE */
	rest = end;
	if (*rest == '.') {
		for (rest++; is_digit(*rest); rest++) {
			if (scale > UINT64_MAX / 10)
				return -EINVAL;
			frac = frac * 10 + (unsigned long long)(*rest - '0');
			scale *= 10;
		}
		if (scale == 1)
			return -EINVAL; /* "8." */
	}
	mul = suffix(&rest, bytes);
	part = (u128)frac * mul;
	if (*rest || (v && mul > UINT64_MAX / v) || part % scale)
		return -EINVAL;
	v *= mul;
	frac = (unsigned long long)(part / scale); /* < mul */
	if (frac > UINT64_MAX - v)
		return -EINVAL;
	v += frac;
	if (v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

int
bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	return parse_unsigned(s, lo, hi, false, out);
}

int
bench_parse_bytes(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	return parse_unsigned(s, lo, hi, true, out);
}

int
bench_parse_double(const char *s, double lo, double hi, double *out)
{
	const char *p = s;
	unsigned digits = 0;
	char *end;
	double v;

	if (!s)
		return -EINVAL;
	for (; is_digit(*p); p++)
		digits++;
	if (*p == '.')
		for (p++; is_digit(*p); p++)
			digits++;
	if (!digits)
		return -EINVAL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!is_digit(*p))
			return -EINVAL;
		while (is_digit(*p))
			p++;
	}
	if (*p)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end != p || !isfinite(v) || !(v >= lo && v <= hi))
		return -EINVAL;
	*out = v;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double
bench_median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void
bench_bad_usage(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	exit(2);
}

double
bench_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
bench_print_array(const char *key, const double *v, size_t n, int prec)
{
	printf(",\"%s\":[", key);
	for (size_t i = 0; i < n; i++)
		printf("%s%.*f", i ? "," : "", prec, v[i]);
	printf("]");
}

const char *
bench_damon_state(void)
{
	const char *state = "absent";
	glob_t g;
	size_t i;

	if (glob("/sys/kernel/mm/damon/admin/kdamonds/*/state", 0, NULL, &g)) {
		globfree(&g);
		return state;
	}
	for (i = 0; i < g.gl_pathc && strcmp(state, "on") != 0; i++) {
		char buf[16] = "";
		FILE *f = fopen(g.gl_pathv[i], "r");

		if (!f) { /* root only: a kdamond exists, its state unknown */
			state = "unknown";
			continue;
		}
		if (fgets(buf, sizeof(buf), f))
			state = strncmp(buf, "on", 2) == 0 ? "on" : "off";
		fclose(f);
	}
	globfree(&g);
	return state;
}

int
bench_pin_nth(unsigned i)
{
	cpu_set_t allowed, one;
	int n, cpu;

	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return -errno;
	n = CPU_COUNT(&allowed);
	if (n <= 0)
		return -EINVAL;
	i %= (unsigned)n;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &allowed) && i-- == 0)
			break;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return sched_setaffinity(0, sizeof(one), &one) ? -errno : 0;
}
