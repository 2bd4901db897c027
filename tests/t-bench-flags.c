/*
 * t-bench-flags.c - the benchmarks' flag parsing (bench/bench_util.h,
 * bench/bench_run.h), called directly: one table per parser, each row an
 * input and what must come of it.  tests/t-bench-cli.c runs the built
 * programs with bad flags.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_run.h"
#include "bench/bench_util.h"
#include "tests/mg_test.h"

/* ---- numbers -------------------------------------------------------------- */

#define U64_UNTOUCHED 0x5a5a5a5a5a5a5a5aull

struct u64_case {
	const char *s;
	uint64_t lo, hi;
	int rc;
	uint64_t v; /* when rc == 0 */
};

static const struct u64_case u64_cases[] = {
	{"0", 0, 10, 0, 0},
	{"7", 0, 10, 0, 7},
	{"007", 0, 10, 0, 7},
	{"4k", 0, UINT64_MAX, 0, 4000},
	{"4K", 0, UINT64_MAX, 0, 4000},
	{"4M", 0, UINT64_MAX, 0, 4000000},
	{"4G", 0, UINT64_MAX, 0, 4000000000ull},
	{"18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX},
	{"18446744073709551616", 0, UINT64_MAX, -EINVAL, 0}, /* overflow */
	{"18446744073709551615k", 0, UINT64_MAX, -EINVAL, 0},
	{"18446744073709552k", 0, UINT64_MAX, -EINVAL, 0},
	{"18446744073709551k", 0, UINT64_MAX, 0, 18446744073709551000ull},
	{"11", 0, 10, -EINVAL, 0}, /* range */
	{"1", 2, 10, -EINVAL, 0},
	{"2k", 0, 1999, -EINVAL, 0},
	{"", 0, 10, -EINVAL, 0}, /* syntax */
	{NULL, 0, 10, -EINVAL, 0},
	{" 1", 0, 10, -EINVAL, 0},
	{" -1", 0, UINT64_MAX, -EINVAL, 0}, /* strtoull: 2^64 - 1 */
	{"\t1", 0, 10, -EINVAL, 0},
	{"+1", 0, 10, -EINVAL, 0},
	{"-1", 0, UINT64_MAX, -EINVAL, 0},
	{"-0", 0, 10, -EINVAL, 0},
	{"1 ", 0, 10, -EINVAL, 0},
	{"1x", 0, 10, -EINVAL, 0},
	{"0x10", 0, 100, -EINVAL, 0},
	{"1.5", 0, 10, -EINVAL, 0}, /* a fraction the suffix makes whole */
	{"8.5M", 0, UINT64_MAX, 0, 8500000},
	{"0.25k", 0, UINT64_MAX, 0, 250},
	{"1.000k", 0, UINT64_MAX, 0, 1000},
	{"1.0001k", 0, UINT64_MAX, -EINVAL, 0},
	{"2.5", 0, 10, -EINVAL, 0},
	{"8.M", 0, UINT64_MAX, -EINVAL, 0},
	{".5M", 0, UINT64_MAX, -EINVAL, 0},
	{"18446744073709551.615k", 0, UINT64_MAX, 0, UINT64_MAX},
	{"18446744073709551.616k", 0, UINT64_MAX, -EINVAL, 0},
	{"1.00000000000000000000000k", 0, UINT64_MAX, -EINVAL, 0},
	{"1e3", 0, 10000, -EINVAL, 0},
	{"4kk", 0, UINT64_MAX, -EINVAL, 0},
	{"k", 0, UINT64_MAX, -EINVAL, 0},
	{"4m", 0, UINT64_MAX, -EINVAL, 0},
	{"inf", 0, UINT64_MAX, -EINVAL, 0},
	{"nan", 0, UINT64_MAX, -EINVAL, 0},
};

static void
test_parse_u64(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(u64_cases) / sizeof(u64_cases[0]); i++) {
		const struct u64_case *c = &u64_cases[i];
		uint64_t v = U64_UNTOUCHED;
		int rc = bench_parse_u64(c->s, c->lo, c->hi, &v);

		if (rc != c->rc || v != (c->rc ? U64_UNTOUCHED : c->v))
			fail_msg("bench_parse_u64(\"%s\", %llu, %llu): %d, "
				 "%llu; expected %d, %llu",
				 c->s ? c->s : "(null)",
				 (unsigned long long)c->lo,
				 (unsigned long long)c->hi, rc,
				 (unsigned long long)v, c->rc,
				 (unsigned long long)c->v);
	}
}

struct double_case {
	const char *s;
	double lo, hi;
	int rc;
	double v;
};

static const struct double_case double_cases[] = {
	{"0", 0, 10, 0, 0},
	{"1", 0, 10, 0, 1},
	{"1.5", 0, 10, 0, 1.5},
	{".5", 0, 10, 0, 0.5},
	{"5.", 0, 10, 0, 5},
	{"2e3", 0, 1e4, 0, 2000},
	{"2E+3", 0, 1e4, 0, 2000},
	{"2e-3", 0, 1, 0, 0.002},
	{"10.5", 0, 10, -EINVAL, 0}, /* range */
	{"0.001", 0.01, 10, -EINVAL, 0},
	{"1e30", 0, 1e10, -EINVAL, 0},
	{"1e400", 0, INFINITY, -EINVAL, 0}, /* overflow */
	{"1e-400", 0, 1, -EINVAL, 0},	    /* underflow */
	{"", 0, 10, -EINVAL, 0},	    /* syntax */
	{NULL, 0, 10, -EINVAL, 0},
	{".", 0, 10, -EINVAL, 0},
	{" 1", 0, 10, -EINVAL, 0},
	{"+1", 0, 10, -EINVAL, 0},
	{"-1", -10, 10, -EINVAL, 0},
	{"-0", 0, 10, -EINVAL, 0},
	{"1 ", 0, 10, -EINVAL, 0},
	{"1e", 0, 10, -EINVAL, 0},
	{"1e+", 0, 10, -EINVAL, 0},
	{"1.2.3", 0, 10, -EINVAL, 0},
	{"0x10", 0, 100, -EINVAL, 0},
	{"0x1p3", 0, 100, -EINVAL, 0},
	{"inf", 0, INFINITY, -EINVAL, 0},
	{"infinity", 0, INFINITY, -EINVAL, 0},
	{"nan", 0, INFINITY, -EINVAL, 0},
	{"1k", 0, 1e4, -EINVAL, 0},
};

static const struct u64_case bytes_cases[] = {
	{"0", 0, UINT64_MAX, 0, 0},
	{"4Ki", 0, UINT64_MAX, 0, 4096},
	{"2Mi", 0, UINT64_MAX, 0, 2097152},
	{"64Gi", 0, UINT64_MAX, 0, 64ull << 30},
	{"15Ti", 0, UINT64_MAX, 0, 15ull << 40},
	{"1.5Gi", 0, UINT64_MAX, 0, 3ull << 29},
	{"0.5Ki", 0, UINT64_MAX, 0, 512},
	{"1.3Ki", 0, UINT64_MAX, -EINVAL, 0}, /* 1331.2 */
	{"4k", 0, UINT64_MAX, 0, 4000},	      /* the decimal ones stay */
	{"4M", 0, UINT64_MAX, 0, 4000000},
	{"16777216Ti", 0, UINT64_MAX, -EINVAL, 0}, /* 2^64: overflow */
	{"16777215Ti", 0, UINT64_MAX, 0, 16777215ull << 40},
	{"4ki", 0, UINT64_MAX, -EINVAL, 0},
	{"4KiB", 0, UINT64_MAX, -EINVAL, 0},
	{"4T", 0, UINT64_MAX, -EINVAL, 0},
	{"Gi", 0, UINT64_MAX, -EINVAL, 0},
	{" 4Gi", 0, UINT64_MAX, -EINVAL, 0},
	{"-4Gi", 0, UINT64_MAX, -EINVAL, 0},
	{"2Gi", 0, 1ull << 30, -EINVAL, 0},
};

static void
test_parse_bytes(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bytes_cases) / sizeof(bytes_cases[0]); i++) {
		const struct u64_case *c = &bytes_cases[i];
		uint64_t v = U64_UNTOUCHED;
		int rc = bench_parse_bytes(c->s, c->lo, c->hi, &v);

		if (rc != c->rc || v != (c->rc ? U64_UNTOUCHED : c->v))
			fail_msg("bench_parse_bytes(\"%s\", %llu, %llu): %d, "
				 "%llu; expected %d, %llu",
				 c->s, (unsigned long long)c->lo,
				 (unsigned long long)c->hi, rc,
				 (unsigned long long)v, c->rc,
				 (unsigned long long)c->v);
	}
}

static void
test_parse_double(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(double_cases) / sizeof(double_cases[0]); i++) {
		const struct double_case *c = &double_cases[i];
		double v = -42;
		int rc = bench_parse_double(c->s, c->lo, c->hi, &v);

		if (rc != c->rc || v != (c->rc ? -42 : c->v))
			fail_msg("bench_parse_double(\"%s\", %g, %g): %d, %g; "
				 "expected %d, %g",
				 c->s ? c->s : "(null)", c->lo, c->hi, rc, v,
				 c->rc, c->v);
	}
}

/* ---- the shared flags ----------------------------------------------------- */

#define MAX_FLAGS 20

struct opts_case {
	uint32_t record_max;	     /* 0: the default */
	const char *args[MAX_FLAGS]; /* "--flag", "value" or "--flag" */
	int rc;			     /* of the first failing call, or 0 */
	const char *text;	     /* in its reason */
};

static const struct option long_opts[] = {BENCH_OPTIONS, {NULL, 0, NULL, 0}};

/*
 * Apply @c's flags as a program does: defaults, each flag through
 * bench_opts_set(), then bench_opts_check().  Return: the first failure
 * (with its reason in @err) or 0.
 */
static int
apply(struct bench_opts *o, const struct opts_case *c, char *err, size_t len)
{
	const char *const *args = c->args;
	const struct option *lo;
	size_t i;
	int rc;

	bench_opts_defaults(o);
	if (c->record_max)
		o->record_max = c->record_max;
	/* A row about other flags must not fail on a one-CPU machine for
	 * the default two workers; rows naming --workers say what they mean. */
	o->oversubscribe = !mg_test_args_name(c->args, MAX_FLAGS, "--workers");
	for (i = 0; i < MAX_FLAGS && args[i]; i++) {
		for (lo = long_opts; lo->name; lo++)
			if (!strncmp(args[i], "--", 2) &&
			    !strcmp(args[i] + 2, lo->name))
				break;
		if (!lo->name)
			fail_msg("no shared flag %s", args[i]);
		rc = bench_opts_set(o, lo->val, lo->has_arg ? args[++i] : NULL,
				    err, len);
		if (rc < 0)
			return rc;
		assert_int_equal(rc, 1);
	}
	return bench_opts_check(o, err, len);
}

static void
run_opts_cases(const struct opts_case *cases, size_t n)
{
	struct bench_opts o;
	char err[BENCH_ERR_MAX];
	unsigned bad = 0;
	size_t i, k;
	int rc;

	for (i = 0; i < n; i++) {
		const struct opts_case *c = &cases[i];

		strcpy(err, "");
		rc = apply(&o, c, err, sizeof(err));
		if (rc == c->rc && (!c->text || strstr(err, c->text)))
			continue;
		printf("# FAIL");
		for (k = 0; k < MAX_FLAGS && c->args[k]; k++)
			printf(" '%s'", c->args[k]);
		printf(": %d '%s'; expected %d '%s'\n", rc, err, c->rc,
		       c->text ? c->text : "");
		bad++;
	}
	if (bad)
		fail_msg("%u of %zu flag sets misparsed", bad, n);
}

#define RUN_OPTS_CASES(t) run_opts_cases(t, sizeof(t) / sizeof(t[0]))

static const struct opts_case opts_cases[] = {
	{0, {NULL}, 0, NULL},
	{0,
	 {"--workers", "2", "--oversubscribe", "--rate", "5k", "--duration",
	  "2.5"},
	 0,
	 NULL},
	{0, {"--workers", "0"}, -EINVAL, "--workers"},
	{0, {"--workers", " -1"}, -EINVAL, "--workers"},
	{0, {"--rate", "inf"}, -EINVAL, "--rate"},
	{0, {"--rate", "nan"}, -EINVAL, "--rate"},
	{0, {"--rate", "1e30"}, -EINVAL, "--rate"},
	{0, {"--rate", "0"}, -EINVAL, "--rate"},
	{0, {"--rate", "10000000001"}, -EINVAL, "--rate"},
	{0, {"--duration", "inf"}, -EINVAL, "--duration"},
	{0, {"--bins", "3"}, -EINVAL, "--bins"},
	{0, {"--bins", "21"}, -EINVAL, "--bins"},
	{0, {"--epoch-us", "9"}, -EINVAL, "--epoch-us"},
	{0, {"--ring", "3"}, -EINVAL, "--ring"},
	{0, {"--ring", "1"}, -EINVAL, "--ring"},
	{0, {"--ring", "65536"}, -EINVAL, "--ring"},
	{0, {"--batch", "0"}, -EINVAL, "--batch"},
	{0, {"--batch", "2000000"}, -EINVAL, "--batch"},
	{0, {"--mode", "move"}, -EINVAL, "--mode"},
	{0, {"--mode", "copy", "--validate", "--out", "x"}, 0, NULL},
	{0, {"--migration", "none"}, 0, NULL},
	{0, {"--migration", "fluid"}, 0, NULL},
	{0, {"--migration", "no/such/plan"}, -EINVAL, "--migration"},
	{0, {"--gap", "+1"}, -EINVAL, "--gap"},
	{0, {"--warmup", "1", "--duration", "1"}, -EINVAL, "--warmup"},
	{0,
	 {"--migration", "batched", "--migrate-at", "5"},
	 -EINVAL,
	 "--migrate-at"},
	{0, {"--migrate-at", "5"}, 0, NULL}, /* without a migration */
	/* --migration random: every --migrate-every s from --migrate-at */
	{0, {"--migration", "random"}, 0, NULL},
	{0,
	 {"--migration", "random", "--migrate-every", "0.5", "--migrate-at",
	  "9"},
	 0,
	 NULL},
	{0,
	 {"--migration", "random", "--migrate-at", "10"},
	 -EINVAL,
	 "--migrate-at"},
	{0,
	 {"--migration", "random", "--workers", "1"},
	 -EINVAL,
	 "--workers 2"},
	{0,
	 {"--migration", "random", "--migrate-every", "0"},
	 -EINVAL,
	 "--migrate-every"},
	{0,
	 {"--migration", "random", "--migrate-every", "1s"},
	 -EINVAL,
	 "--migrate-every"},
	{0, {"--migrate-every", "1"}, -EINVAL, "--migration random"},
	{0,
	 {"--migration", "fluid", "--migrate-every", "1"},
	 -EINVAL,
	 "--migration random"},
	/* --batch: what a 2 MiB chunk holds of the largest record */
	{16, {"--batch", "1M"}, -EINVAL, "--batch"},
	{16, {"--batch", "131069"}, -EINVAL, "at most 131068 records of 16"},
	{16, {"--batch", "131068"}, 0, NULL},
	{104, {"--batch", "20164"}, 0, NULL},
	{104, {"--batch", "20165"}, -EINVAL, "--batch"},
	{0, {"--batch", "511"}, 0, NULL}, /* MG_RECORD_MAX */
	{0, {"--batch", "512"}, -EINVAL, "--batch"},
	/* --workers: at most the allowed CPUs, unless --oversubscribe */
	{0, {"--workers", "1"}, 0, NULL},
	{0, {"--workers", "1024"}, -EINVAL, "--oversubscribe"},
	{0, {"--workers", "1024", "--oversubscribe"}, 0, NULL},
	/* --pool-reserve: a multiple of 2 MiB below 512 GiB; 0 the default */
	{0, {"--pool-reserve", "64Gi"}, 0, NULL},
	{0, {"--pool-reserve", "2Mi"}, 0, NULL},
	{0, {"--pool-reserve", "0"}, 0, NULL},
	{0, {"--pool-reserve", "510Gi"}, 0, NULL},
	{0, {"--pool-reserve", "524286Mi"}, 0, NULL},
	{0, {"--pool-reserve", "512Gi"}, -EINVAL, "--pool-reserve"},
	{0, {"--pool-reserve", "2M"}, -EINVAL, "--pool-reserve"},
	{0, {"--pool-reserve", "1Ki"}, -EINVAL, "--pool-reserve"},
	{0, {"--pool-reserve", " 2Mi"}, -EINVAL, "--pool-reserve"},
};

/* The balancer's flags: --balance on|off, its settings, --scale. */
static const struct opts_case balance_cases[] = {
	{0, {"--balance", "on"}, 0, NULL},
	{0, {"--balance", "off"}, 0, NULL},
	{0,
	 {"--balance", "on", "--balance-interval", "1", "--balance-threshold",
	  "0.001", "--balance-cooldown", "0.001", "--scale", "0.3:0.7"},
	 0,
	 NULL},
	{0,
	 {"--balance", "on", "--balance-interval", "3600000",
	  "--balance-threshold", "100", "--balance-cooldown", "86400"},
	 0,
	 NULL},
	{0, {"--balance", "on", "--mode", "copy"}, 0, NULL},
	{0, {"--balance", "on", "--workers", "1"}, 0, NULL},
	{0, {"--balance", "yes"}, -EINVAL, "--balance must be on or off"},
	{0, {"--balance", "ON"}, -EINVAL, "--balance must be on or off"},
	{0, {"--balance", ""}, -EINVAL, "--balance must be on or off"},
	{0, {"--balance", "on "}, -EINVAL, "--balance must be on or off"},
	/* the settings need --balance on, which excludes --migration */
	{0,
	 {"--balance-interval", "100"},
	 -EINVAL,
	 "--balance-* flags need --balance on"},
	{0,
	 {"--balance", "off", "--balance-threshold", "0.5"},
	 -EINVAL,
	 "--balance-* flags need --balance on"},
	{0,
	 {"--balance-cooldown", "1", "--balance", "off"},
	 -EINVAL,
	 "--balance-* flags need --balance on"},
	{0,
	 {"--scale", "0.3:0.7"},
	 -EINVAL,
	 "--balance-* flags need --balance on"},
	{0,
	 {"--balance", "on", "--migration", "fluid"},
	 -EINVAL,
	 "both move bins: choose one"},
	{0,
	 {"--balance", "on", "--migration", "random"},
	 -EINVAL,
	 "both move bins: choose one"},
	{0, {"--balance", "off", "--migration", "fluid"}, 0, NULL},
	/* --balance-interval: milliseconds, 1 .. 3600000 */
	{0,
	 {"--balance", "on", "--balance-interval", "0"},
	 -EINVAL,
	 "--balance-interval"},
	{0,
	 {"--balance", "on", "--balance-interval", "3600001"},
	 -EINVAL,
	 "--balance-interval"},
	{0,
	 {"--balance", "on", "--balance-interval", "1.5"},
	 -EINVAL,
	 "--balance-interval"},
	{0,
	 {"--balance", "on", "--balance-interval", " 100"},
	 -EINVAL,
	 "--balance-interval"},
	/* --balance-threshold: 0.001 .. 100 */
	{0,
	 {"--balance", "on", "--balance-threshold", "0"},
	 -EINVAL,
	 "--balance-threshold"},
	{0,
	 {"--balance", "on", "--balance-threshold", "101"},
	 -EINVAL,
	 "--balance-threshold"},
	{0,
	 {"--balance", "on", "--balance-threshold", "nan"},
	 -EINVAL,
	 "--balance-threshold"},
	{0,
	 {"--balance", "on", "--balance-threshold", "-0.5"},
	 -EINVAL,
	 "--balance-threshold"},
	/* --balance-cooldown: seconds, 0.001 .. 86400 */
	{0,
	 {"--balance", "on", "--balance-cooldown", "-1"},
	 -EINVAL,
	 "--balance-cooldown"},
	{0,
	 {"--balance", "on", "--balance-cooldown", "0"},
	 -EINVAL,
	 "--balance-cooldown"},
	{0,
	 {"--balance", "on", "--balance-cooldown", "86401"},
	 -EINVAL,
	 "--balance-cooldown"},
	{0,
	 {"--balance", "on", "--balance-cooldown", "5s"},
	 -EINVAL,
	 "--balance-cooldown"},
	/* --scale LOW:HIGH: 0 < LOW < HIGH <= 1, plain decimals */
	{0, {"--balance", "on", "--scale", "0.001:1"}, 0, NULL},
	{0, {"--balance", "on", "--scale", ".3:.7"}, 0, NULL},
	{0, {"--balance", "on", "--scale", "0:0.5"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0.5:0.5"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0.7:0.3"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0.3:1.01"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "1:1"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "-0.1:0.5"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0.3"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0.3:"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", ":0.7"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", ""}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0.3:0.7:0.9"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0.3:0.7x"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", " 0.3:0.7"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0.3: 0.7"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "nan:0.7"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0.3:inf"}, -EINVAL, "--scale"},
	{0, {"--balance", "on", "--scale", "0x1p-2:1"}, -EINVAL, "--scale"},
};

/* What bench_run_config() makes of the flags. */
static void
test_config(void **state)
{
	static const char *const args[] = {
		"--workers",	  "1",	 "--bins",	   "5",
		"--epoch-us",	  "250", "--ring",	   "8",
		"--batch",	  "100", "--mode",	   "copy",
		"--warmup",	  "0.5", "--pool-reserve", "6Mi",
		"--oversubscribe"};
	struct mg_dataflow_config dc;
	struct opts_case c = {0, {NULL}, 0, NULL};
	struct bench_run r = {0};
	struct bench_opts o;
	char err[BENCH_ERR_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		c.args[i] = args[i];
	assert_int_equal(apply(&o, &c, err, sizeof(err)), 0);
	r.o = &o;
	bench_run_config(&r, &dc);
	assert_int_equal(dc.workers, 1);
	assert_true(dc.oversubscribe);
	assert_int_equal(dc.bins_log2, 5);
	assert_int_equal(dc.epoch_ns, 250000);
	assert_int_equal(dc.ring_capacity, 8);
	assert_int_equal(dc.batch_records, 100);
	assert_int_equal(dc.mode, MG_COPY);
	assert_int_equal(dc.warmup_ns, 500000000);
	assert_int_equal(dc.pool_reserve, 6ull << 20);
	bench_opts_defaults(&o);
	bench_run_config(&r, &dc);
	assert_int_equal(dc.pool_reserve, 0); /* the engine's default */
	assert_false(dc.oversubscribe);
}

static void
test_opts(void **state)
{
	(void)state;
	RUN_OPTS_CASES(opts_cases);
}

static void
test_balance(void **state)
{
	(void)state;
	RUN_OPTS_CASES(balance_cases);
}

/* The code BENCH_OPTIONS gives flag --@name. */
static int
code_of(const char *name)
{
	const struct option *lo;

	for (lo = long_opts; lo->name; lo++)
		if (!strcmp(lo->name, name))
			return lo->val;
	fail_msg("no shared flag --%s", name);
	return 0;
}

/* What the balancer's flags set: the configuration the balancer gets. */
static void
test_balance_config(void **state)
{
	struct opts_case c = {0,
			      {"--balance", "on", "--balance-interval", "250",
			       "--balance-threshold", "0.5",
			       "--balance-cooldown", "2.5", "--scale",
			       "0.25:0.75"},
			      0,
			      NULL};
	struct bench_opts o;
	char err[BENCH_ERR_MAX];

	(void)state;
	bench_opts_defaults(&o); /* off, with the defaults keycount had */
	assert_false(o.balance);
	assert_false(o.bal_flags);
	assert_int_equal(o.bal.interval_ns, 500000000ull);
	assert_true(o.bal.threshold == 0.2);
	assert_int_equal(o.bal.cooldown_ns, 5000000000ull);
	assert_int_equal(o.bal.patience, 2);
	assert_true(o.bal.scale_low == 0 && o.bal.scale_high == 0);
	assert_null(o.bal.on_event);

	assert_int_equal(apply(&o, &c, err, sizeof(err)), 0);
	assert_true(o.balance);
	assert_true(o.bal_flags);
	assert_int_equal(o.bal.interval_ns, 250000000ull);
	assert_true(o.bal.threshold == 0.5);
	assert_int_equal(o.bal.cooldown_ns, 2500000000ull);
	assert_int_equal(o.bal.patience, 2);
	assert_true(o.bal.scale_low == 0.25 && o.bal.scale_high == 0.75);

	/* a bad value leaves the setting as it was */
	assert_int_equal(bench_opts_set(&o, code_of("scale"), "0.9:0.1", err,
					sizeof(err)),
			 -EINVAL);
	assert_true(o.bal.scale_low == 0.25 && o.bal.scale_high == 0.75);
	assert_int_equal(
		bench_opts_set(&o, code_of("balance"), "off", err, sizeof(err)),
		1);
	assert_false(o.balance);
	bench_opts_destroy(&o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_bytes),
		cmocka_unit_test(test_parse_double),
		cmocka_unit_test(test_opts),
		cmocka_unit_test(test_balance),
		cmocka_unit_test(test_balance_config),
		cmocka_unit_test(test_config),
	};

	return MG_TEST_RUN(tests);
}
