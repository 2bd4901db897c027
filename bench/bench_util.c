#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"

int
bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	uint64_t mul = 1;
	char *end;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1000ull;
		end++;
		break;
	case 'M':
		mul = 1000000ull;
		end++;
		break;
	case 'G':
		mul = 1000000000ull;
		end++;
		break;
	default:
		break;
	}
	if (*end || (v && mul > UINT64_MAX / v))
		return -EINVAL;
	v *= mul;
	if (v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

int
bench_parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
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
