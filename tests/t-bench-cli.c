/*
 * t-bench-cli.c - the benchmark programs with bad flags: each must print a
 * message naming what is wrong and exit 2 before running anything (DESIGN.md
 * section 6: "Command-line programs print usage and exit 2 on bad flags").
 *
 * The programs are the ones built next to this test: <dir of this
 * executable>/../bench/<name>, so every build variant tests its own.  Each
 * row of a table runs one program with stdout thrown away and stderr
 * captured, and checks the exit status and that stderr holds every expected
 * piece of text.  A program that has not exited after MG_WATCHDOG_S
 * (default 120 s: a sanitized build on a loaded machine starts slowly) is
 * killed and the row fails (a bad flag must not start a run).  A failing
 * row is told on stderr, which prove shows.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/mg_test.h"

#define MAX_ARGS  12
#define MAX_TEXTS 3

struct cli_case {
	const char *prog; /* keycount, nexmark, ringbench, hiccup */
	const char *args[MAX_ARGS];
	int status;		       /* expected exit status */
	const char *text[MAX_TEXTS];   /* expected in stderr */
	const char *absent[MAX_TEXTS]; /* not expected in stderr */
};

static char bench_dir[PATH_MAX];

static void
find_bench_dir(void)
{
	ssize_t n =
		readlink("/proc/self/exe", bench_dir, sizeof(bench_dir) - 1);
	char *slash;

	if (n <= 0)
		mg_test_skip_all("cannot read /proc/self/exe");
	bench_dir[n] = '\0';
	slash = strrchr(bench_dir, '/');
	if (!slash)
		mg_test_skip_all("no directory in /proc/self/exe");
	/* build/<variant>/tests/t-bench-cli -> build/<variant>/bench */
	*slash = '\0';
	slash = strrchr(bench_dir, '/');
	if (!slash || strcmp(slash, "/tests") != 0)
		mg_test_skip_all("not run from its build directory");
	strcpy(slash, "/bench");
	strcat(bench_dir, "/keycount");
	if (access(bench_dir, X_OK))
		mg_test_skip_all("no benchmark programs here: make bench");
	*strrchr(bench_dir, '/') = '\0';
}

/*
 * Flags put before each row's own, so that a command line that is wrongly
 * accepted makes a short run instead of a default one (a row's flags come
 * later and win).  With @workers, --oversubscribe too unless the row names
 * --workers: a row about other flags must not fail on a one-CPU machine for
 * the default two workers.
 */
static const struct {
	const char *prog;
	const char *args[5];
	bool workers;
} quick[] = {
	{"keycount", {"--duration", "0.3", "--warmup", "0"}, true},
	{"nexmark", {"--duration", "0.3", "--warmup", "0"}, true},
	{"ringbench", {"--seconds", "0.01", "--runs", "1"}, false},
	{"hiccup", {"--seconds", "0.01"}, false},
};

/*
 * Run @c's program (after the flags of quick[]) with @as_gib GiB of address
 * space (0: no limit); its exit status (or 128 + signal) into *@status and
 * up to @len - 1 bytes of its stderr into @err.
 */
static void
run(const struct cli_case *c, unsigned long as_gib, int *status, char *err,
    size_t len)
{
	char path[PATH_MAX + 64];
	const char *argv[MAX_ARGS + 8];
	size_t n = 0, i, k;
	int fd[2], st, devnull;
	time_t start = time(NULL),
	       limit = (time_t)mg_test_env_u64("MG_WATCHDOG_S", 120);
	ssize_t got;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", bench_dir, c->prog);
	argv[n++] = path;
	for (i = 0; i < sizeof(quick) / sizeof(quick[0]); i++)
		if (!strcmp(c->prog, quick[i].prog)) {
			for (k = 0; quick[i].args[k]; k++)
				argv[n++] = quick[i].args[k];
			if (quick[i].workers &&
			    !mg_test_args_name(c->args, MAX_ARGS, "--workers"))
				argv[n++] = "--oversubscribe";
		}
	for (i = 0; i < MAX_ARGS && c->args[i]; i++)
		argv[n++] = c->args[i];
	argv[n] = NULL;
	n = 0;
	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		devnull = open("/dev/null", O_WRONLY);
		struct rlimit as = {as_gib << 30, as_gib << 30};

		if (devnull < 0 || dup2(devnull, 1) < 0 || dup2(fd[1], 2) < 0 ||
		    (as_gib && setrlimit(RLIMIT_AS, &as)))
			_exit(126);
		close(fd[0]);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	fcntl(fd[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		char drop[512]; /* what does not fit in @err */

		got = n < len - 1 ? read(fd[0], err + n, len - 1 - n)
				  : read(fd[0], drop, sizeof(drop));
		if (got > 0) {
			n += n < len - 1 ? (size_t)got : 0;
			continue;
		}
		if (got == 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			break;
		if (time(NULL) - start > limit) {
			fprintf(stderr,
				"# killed: still running after %lld s\n",
				(long long)limit);
			kill(pid, SIGKILL);
			break;
		}
		nanosleep(&(struct timespec){0, 5000000}, NULL);
	}
	err[n] = '\0';
	close(fd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* An ASan program reserves terabytes of shadow before main(). */
/* ASan and TSan map their shadow memory at start-up, terabytes of it. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SHADOW true
#else
#define UNDER_SHADOW false
#endif

/* Run @cases, each with @as_gib GiB of address space (0: no limit). */
static void
run_cases(const struct cli_case *cases, size_t ncases, unsigned long as_gib)
{
	char err[8192], cmd[1024];
	size_t i, k, at;
	unsigned bad = 0;
	int status;

	for (i = 0; i < ncases; i++) {
		const struct cli_case *c = &cases[i];
		bool ok;

		at = (size_t)snprintf(cmd, sizeof(cmd), "%s", c->prog);
		for (k = 0; k < MAX_ARGS && c->args[k] && at < sizeof(cmd); k++)
			at += (size_t)snprintf(cmd + at, sizeof(cmd) - at,
					       " '%s'", c->args[k]);
		if (as_gib && UNDER_SHADOW) {
			printf("# skip %s: the sanitizer's shadow does not fit "
			       "the address-space limit\n",
			       cmd);
			continue;
		}
		run(c, as_gib, &status, err, sizeof(err));
		ok = status == c->status;
		for (k = 0; k < MAX_TEXTS && c->text[k]; k++)
			ok = ok && strstr(err, c->text[k]);
		for (k = 0; k < MAX_TEXTS && c->absent[k]; k++)
			ok = ok && !strstr(err, c->absent[k]);
		printf("# %s %s: exit %d\n", ok ? "ok  " : "FAIL", cmd, status);
		if (!ok) {
			fprintf(stderr,
				"# FAIL %s: exit %d\n#   expected exit %d with",
				cmd, status, c->status);
			for (k = 0; k < MAX_TEXTS && c->text[k]; k++)
				fprintf(stderr, " '%s'", c->text[k]);
			for (k = 0; k < MAX_TEXTS && c->absent[k]; k++)
				fprintf(stderr, " without '%s'", c->absent[k]);
			fprintf(stderr, "; stderr:\n%s\n", err);
			bad++;
		}
	}
	if (bad)
		fail_msg("%u of %zu command lines misbehaved", bad, ncases);
}

#define N_CASES(t)   (sizeof(t) / sizeof(t[0]))
#define RUN_CASES(t) run_cases(t, N_CASES(t), 0)

/* ---- numbers: plain decimal digits -------------------------------------- */

static const struct cli_case number_cases[] = {
	{"keycount", {"--seed", " -1"}, 2, {"--seed"}, {NULL}},
	{"keycount", {"--seed", "-1"}, 2, {"--seed"}, {NULL}},
	{"keycount", {"--seed", "+1"}, 2, {"--seed"}, {NULL}},
	{"keycount", {"--seed", "18446744073709551616"}, 2, {"--seed"}, {NULL}},
	{"keycount", {"--domain", " 5"}, 2, {"--domain"}, {NULL}},
	{"keycount", {"--domain", "5x"}, 2, {"--domain"}, {NULL}},
	{"keycount", {"--workers", "+1"}, 2, {"--workers"}, {NULL}},
	{"keycount", {"--gap", " 0"}, 2, {"--gap"}, {NULL}},
	{"keycount", {"--duration", "0x1"}, 2, {"--duration"}, {NULL}},
	{"keycount", {"--duration", " 1"}, 2, {"--duration"}, {NULL}},
	{"keycount", {"--warmup", "-0"}, 2, {"--warmup"}, {NULL}},
	{"keycount", {"--migrate-at", "+1"}, 2, {"--migrate-at"}, {NULL}},
	{"nexmark", {"--query", "q1", "--seed", " -1"}, 2, {"--seed"}, {NULL}},
	{"nexmark",
	 {"--query", "q1", "--in-flight", "+5"},
	 2,
	 {"--in-flight"},
	 {NULL}},
	{"nexmark",
	 {"--query", "q5", "--q5-window", "0x10"},
	 2,
	 {"--q5-window"},
	 {NULL}},
	{"nexmark",
	 {"--query", "q1", "--time-dilation", " 60"},
	 2,
	 {"--time-dilation"},
	 {NULL}},
	{"nexmark",
	 {"--query", "q5", "--hot-hold", "-1"},
	 2,
	 {"--hot-hold"},
	 {NULL}},
	{"ringbench", {"--runs", " 2"}, 2, {"--runs"}, {NULL}},
	{"ringbench", {"--batch", "+8"}, 2, {"--batch"}, {NULL}},
	{"ringbench", {"--seconds", "0x1p-3"}, 2, {"--seconds"}, {NULL}},
	{"hiccup", {"--runs", " -1"}, 2, {"--runs"}, {NULL}},
	{"hiccup", {"--seconds", "nan"}, 2, {"--seconds"}, {NULL}},
};

static void
test_numbers(void **state)
{
	(void)state;
	RUN_CASES(number_cases);
}

/* ---- --rate: finite, positive, at most 10^9 ----------------------------- */

static const struct cli_case rate_cases[] = {
	{"keycount", {"--rate", "inf"}, 2, {"--rate"}, {NULL}},
	{"keycount", {"--rate", "nan"}, 2, {"--rate"}, {NULL}},
	{"keycount", {"--rate", "1e30"}, 2, {"--rate"}, {NULL}},
	{"keycount", {"--rate", "0"}, 2, {"--rate"}, {NULL}},
	{"keycount", {"--rate", "-5"}, 2, {"--rate"}, {NULL}},
	{"keycount", {"--rate", "20000000000"}, 2, {"--rate"}, {NULL}},
	{"nexmark", {"--query", "q1", "--rate", "inf"}, 2, {"--rate"}, {NULL}},
	{"nexmark", {"--query", "q1", "--rate", "1e30"}, 2, {"--rate"}, {NULL}},
};

static void
test_rate(void **state)
{
	(void)state;
	RUN_CASES(rate_cases);
}

/* ---- engine limits, checked while parsing ------------------------------ */

static const struct cli_case limit_cases[] = {
	{"keycount",
	 {"--batch", "1M"},
	 2,
	 {"--batch", "16 bytes"},
	 {"cannot build"}},
	{"nexmark",
	 {"--query", "q1", "--batch", "100000"},
	 2,
	 {"--batch", "104 bytes"},
	 {"cannot build"}},
	{"ringbench", {"--batch", "1M"}, 2, {"--batch"}, {NULL}},
	{"keycount",
	 {"--workers", "1024"},
	 2,
	 {"--workers", "--oversubscribe"},
	 {"cannot create"}},
	{"nexmark",
	 {"--query", "q2", "--workers", "1024"},
	 2,
	 {"--workers", "--oversubscribe"},
	 {"cannot create"}},
	{"keycount", {"--ring", "3"}, 2, {"--ring"}, {NULL}},
	{"keycount", {"--bins", "21"}, 2, {"--bins"}, {NULL}},
	{"keycount", {"--epoch-us", "9"}, 2, {"--epoch-us"}, {NULL}},
	{"keycount", {"--pool-reserve", "2M"}, 2, {"--pool-reserve"}, {NULL}},
	{"nexmark",
	 {"--query", "q1", "--pool-reserve", "512Gi"},
	 2,
	 {"--pool-reserve"},
	 {NULL}},
	{"keycount", {"--pool-reserve", "1Gi"}, 0, {"rec/s for 0.3 s"}, {NULL}},
	{"hiccup",
	 {"--runs", "2"},
	 0,
	 {"run 2: max gap", "slowest CPU at"},
	 {NULL}},
	{"hiccup",
	 {"--contention"},
	 0,
	 {"clock loop:", "reads loop:", "CPUs' worth"},
	 {NULL}},
};

static void
test_limits(void **state)
{
	(void)state;
	RUN_CASES(limit_cases);
}

/* The banner each program prints once its dataflow is built. */
#define BUILT	 "rec/s for"
#define BUILT_NX "events/s"

/* ---- key streams and the balancer ---------------------------------------- */

static const struct cli_case workload_cases[] = {
	{"keycount", {"--keys", "zipf:0"}, 2, {"--keys", "zipf:S"}, {BUILT}},
	{"keycount", {"--keys", "zipf"}, 2, {"--keys"}, {BUILT}},
	{"keycount", {"--keys", "pareto"}, 2, {"--keys", "'pareto'"}, {BUILT}},
	{"keycount", {"--keys", "zipf:1e1x"}, 2, {"--keys"}, {BUILT}},
	{"keycount", {"--hot-shift", "1"}, 2, {"--hot-shift", "zipf"}, {BUILT}},
	{"keycount",
	 {"--keys", "zipf:1", "--hot-shift", "0"},
	 2,
	 {"--hot-shift"},
	 {BUILT}},
	{"keycount", {"--skew-start"}, 2, {"--skew-start", "zipf"}, {BUILT}},
	{"keycount",
	 {"--keys", "zipf:1", "--skew-start", "--backend", "native"},
	 2,
	 {"--skew-start", "native"},
	 {BUILT}},
	{"keycount",
	 {"--balance", "yes"},
	 2,
	 {"--balance", "on or off"},
	 {BUILT}},
	{"keycount",
	 {"--balance", "on", "--backend", "native"},
	 2,
	 {"native", "balance"},
	 {BUILT}},
	{"keycount",
	 {"--balance", "on", "--no-stats"},
	 2,
	 {"--balance", "--no-stats"},
	 {BUILT}},
	{"keycount",
	 {"--balance", "on", "--migration", "fluid"},
	 2,
	 {"--balance", "--migration", "choose one"},
	 {BUILT}},
	{"keycount",
	 {"--balance-interval", "100"},
	 2,
	 {"--balance-* flags need --balance on"},
	 {BUILT}},
	{"keycount",
	 {"--balance", "on", "--balance-interval", "0"},
	 2,
	 {"--balance-interval"},
	 {BUILT}},
	{"keycount",
	 {"--balance", "on", "--balance-threshold", "0"},
	 2,
	 {"--balance-threshold"},
	 {BUILT}},
	{"keycount",
	 {"--balance", "on", "--balance-threshold", "101"},
	 2,
	 {"--balance-threshold"},
	 {BUILT}},
	{"keycount",
	 {"--balance", "on", "--balance-cooldown", "-1"},
	 2,
	 {"--balance-cooldown"},
	 {BUILT}},
	{"keycount",
	 {"--balance", "on", "--scale", "0.7:0.3"},
	 2,
	 {"--scale", "LOW:HIGH"},
	 {BUILT}},
	{"keycount",
	 {"--scale", "0.3:0.7"},
	 2,
	 {"--balance-* flags need --balance on"},
	 {BUILT}},
	/* nexmark: the same shared flags; only q3 .. q8 keep bins */
	{"nexmark",
	 {"--query", "q1", "--balance", "on"},
	 2,
	 {"--balance on", "q1", "nothing to balance"},
	 {BUILT_NX}},
	{"nexmark",
	 {"--query", "q2", "--balance", "on", "--validate"},
	 2,
	 {"--balance on", "q2", "nothing to balance"},
	 {BUILT_NX}},
	{"nexmark",
	 {"--query", "q5", "--native", "--balance", "on"},
	 2,
	 {"native form has no bins to balance"},
	 {BUILT_NX}},
	{"nexmark",
	 {"--query", "q5", "--balance", "maybe"},
	 2,
	 {"--balance must be on or off"},
	 {BUILT_NX}},
	{"nexmark",
	 {"--query", "q4", "--balance-threshold", "0.5"},
	 2,
	 {"--balance-* flags need --balance on"},
	 {BUILT_NX}},
	{"nexmark",
	 {"--query", "q4", "--balance", "on", "--migration", "all-at-once"},
	 2,
	 {"--balance", "--migration", "choose one"},
	 {BUILT_NX}},
	{"nexmark",
	 {"--query", "q5", "--balance", "on", "--scale", "0:1"},
	 2,
	 {"--scale"},
	 {BUILT_NX}},
	/* accepted: short validated runs, skewed and balanced */
	{"keycount",
	 {"--keys", "zipf:1.2", "--skew-start", "--balance", "on",
	  "--balance-interval", "20", "--validate"},
	 0,
	 {"zipf:1.2, skewed start", "balancing", " 0 timestamps differ"},
	 {NULL}},
	{"keycount",
	 {"--keys", "zipf:0.8", "--hot-shift", "0.1", "--balance", "on",
	  "--mode", "copy", "--validate"},
	 0,
	 {"zipf:0.8, shifting", " 0 timestamps differ"},
	 {NULL}},
	{"keycount",
	 {"--keys", "uniform", "--balance", "off", "--validate"},
	 0,
	 {"(uniform)", " 0 timestamps differ"},
	 {"balancing"}},
	{"nexmark",
	 {"--query", "q5", "--hot-hold", "0.2", "--balance", "on",
	  "--balance-interval", "20", "--validate"},
	 0,
	 {"hot ids held 0.2 s", "balancing", " 0 chunks differ"},
	 {NULL}},
};

static void
test_workload(void **state)
{
	(void)state;
	RUN_CASES(workload_cases);
}

/* ---- nexmark --balance on: runs, and its summary reports the balancer --- */

/* Whether @path holds @text (up to 64 KiB are read). */
static bool
file_has(const char *path, const char *text)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

static void
test_nexmark_balance(void **state)
{
	static const char *const queries[] = {"q4", "q5"};
	char dir[] = "/tmp/t-bench-cli-nx.XXXXXX", path[PATH_MAX];
	struct cli_case c = {"nexmark", {NULL}, 0, {NULL}, {NULL}};
	char err[8192];
	size_t i;
	int status;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/summary.json", dir);
	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		const char *args[] = {"--query",
				      queries[i],
				      "--rate",
				      "100k",
				      "--balance",
				      "on",
				      "--balance-interval",
				      "20",
				      "--validate",
				      "--out",
				      dir,
				      NULL};

		_Static_assert(sizeof(args) <= sizeof(c.args), "MAX_ARGS");
		memcpy(c.args, args, sizeof(args));
		unlink(path);
		run(&c, 0, &status, err, sizeof(err));
		printf("# nexmark --query %s --balance on: exit %d\n",
		       queries[i], status);
		if (status || !strstr(err, "balancing"))
			fail_msg("nexmark --query %s --balance on: exit %d; "
				 "stderr:\n%s",
				 queries[i], status, err);
		if (!file_has(path, "\"balance\":{\"mode\":\"handoff\"") ||
		    !file_has(path, "\"validate\":\"ok\""))
			fail_msg("%s: no balance object or not validated",
				 path);
	}
	unlink(path);
	snprintf(path, sizeof(path), "%s/timeline.csv", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/migrations.txt", dir);
	unlink(path);
	rmdir(dir);
}

/* ---- plan files: read and checked before the dataflow is built --------- */

static char plan_dir[] = "/tmp/t-bench-cli.XXXXXX";
static char plan_syntax[PATH_MAX], plan_worker[PATH_MAX], plan_bin[PATH_MAX],
	plan_empty[PATH_MAX], plan_noop[PATH_MAX], plan_good[PATH_MAX];

static void
write_plan(char *path, const char *name, const char *text)
{
	FILE *f;

	snprintf(path, PATH_MAX, "%s/%s", plan_dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int
plans_setup(void **state)
{
	(void)state;
	if (!mkdtemp(plan_dir))
		return -1;
	write_plan(plan_syntax, "syntax", "# a comment\n5 0 1\n6 1 x\n");
	write_plan(plan_worker, "worker", "5 0 1\n");
	write_plan(plan_bin, "bin", "5 16 0\n");
	write_plan(plan_empty, "empty", "# nothing\n\n");
	write_plan(plan_noop, "noop",
		   "5 1 1\n6 map 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1\n");
	write_plan(plan_good, "good", "5 0 1\n");
	return 0;
}

static int
plans_teardown(void **state)
{
	char *const paths[] = {plan_syntax, plan_worker, plan_bin,
			       plan_empty,  plan_noop,	 plan_good};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		unlink(paths[i]);
	rmdir(plan_dir);
	return 0;
}

static const struct cli_case plan_cases[] = {
	{"keycount",
	 {"--migration", plan_syntax},
	 2,
	 {"syntax:3: ", "'x'"},
	 {BUILT}},
	{"keycount",
	 {"--bins", "4", "--workers", "1", "--migration", plan_worker},
	 2,
	 {"worker:1: ", "worker 1"},
	 {BUILT}},
	{"keycount",
	 {"--bins", "4", "--migration", plan_bin},
	 2,
	 {"bin:1: ", "bin 16"},
	 {BUILT}},
	{"keycount", {"--migration", plan_empty}, 2, {"empty: "}, {BUILT}},
	{"keycount",
	 {"--bins", "4", "--workers", "2", "--oversubscribe", "--migration",
	  plan_noop},
	 2,
	 {"noop: moves no bin"},
	 {BUILT}},
	{"nexmark",
	 {"--query", "q2", "--migration", plan_syntax},
	 2,
	 {"syntax:3: "},
	 {BUILT_NX}},
	{"keycount",
	 {"--migration", plan_good, "--backend", "native"},
	 2,
	 {"native"},
	 {BUILT}},
};

/* ---- random migrations: a soak's --migration random --migrate-every ---- */

static const struct cli_case random_cases[] = {
	{"keycount",
	 {"--migrate-every", "1"},
	 2,
	 {"--migrate-every needs --migration random"},
	 {BUILT}},
	{"keycount",
	 {"--migration", "random", "--migrate-every", "0"},
	 2,
	 {"--migrate-every"},
	 {BUILT}},
	{"keycount",
	 {"--migration", "random", "--migrate-every", "-1"},
	 2,
	 {"--migrate-every"},
	 {BUILT}},
	{"keycount",
	 {"--migration", "random", "--workers", "1"},
	 2,
	 {"--workers 2 or more"},
	 {BUILT}},
	{"keycount",
	 {"--migration", "random", "--migrate-at", "0.3"},
	 2,
	 {"--migrate-at must be below --duration"},
	 {BUILT}},
	{"keycount",
	 {"--migration", "random", "--backend", "native"},
	 2,
	 {"native"},
	 {BUILT}},
	{"nexmark",
	 {"--query", "q1", "--migrate-every", "2"},
	 2,
	 {"--migrate-every"},
	 {BUILT_NX}},
	{"keycount",
	 {"--migration", "random", "--migrate-every", "0.05", "--migrate-at",
	  "0.05", "--domain", "10k", "--rate", "100k", "--validate"},
	 0,
	 {BUILT, "0 timestamps differ"},
	 {NULL}},
};

static void
test_random(void **state)
{
	(void)state;
	RUN_CASES(random_cases);
}

static void
test_plans(void **state)
{
	(void)state;
	RUN_CASES(plan_cases);
}

/* ---- errors creating the dataflow: hints only where they fit ----------- */

static const struct cli_case create_cases[] = {
	/* 15 chunk sizes x 510 GiB: more than 16 GiB of address space */
	{"keycount",
	 {"--pool-reserve", "510Gi"},
	 1,
	 {"cannot create the dataflow", "out of memory", "510 GiB"},
	 {"more workers"}},
	{"nexmark",
	 {"--query", "q1", "--pool-reserve", "510Gi"},
	 1,
	 {"cannot create the dataflow", "out of memory"},
	 {"more workers"}},
};

static void
test_create(void **state)
{
	(void)state;
	run_cases(create_cases, N_CASES(create_cases), 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_workload),
		cmocka_unit_test(test_nexmark_balance),
		cmocka_unit_test_setup_teardown(test_plans, plans_setup,
						plans_teardown),
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_random),
	};

	find_bench_dir();
	return MG_TEST_RUN(tests);
}
