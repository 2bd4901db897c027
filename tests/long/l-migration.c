/*
 * l-migration.c - the long random campaign of `make check-long`: MG_PLANS
 * (default 10^4) random migration plans against the reference, the same
 * sequence whose first plans the random test of t-engine-migration.c runs
 * in `make test` (run_plan(), tests/mg_test_drive.h): random migrations of
 * every strategy, chains of moves of one bin, all bins at once, migrations
 * under overload with tiny rings; 1-4 workers; handoff and copy mode; with
 * and without timers and a second input.  Each plan is one run_case()
 * (tests/mg_test_run.h): outputs equal the reference, every (bin, time)
 * called once, in order, on the owner its time's configuration names, every
 * migration done.
 *
 * Each plan runs in a child process of its own, so that a crash (an engine
 * assertion, a sanitizer report) or a hung run takes only that plan with it
 * and is reported with the seed that replays it.  The child's output goes to
 * a scratch file, shown (prefixed "# ") only if the plan failed; the
 * campaign prints one progress line every MG_PROGRESS (100) plans and a
 * summary at the end: plans per kind, mode and worker count, failures, the
 * time taken.
 *
 * Nothing here waits for a time: a plan ends when its run ends, and the
 * harness's watchdogs judge a run by its progress (no operator call for
 * JOIN_TIMEOUT_S: the engine's state and every thread's stack are dumped,
 * then the plan fails; SIGALRM after WATCHDOG_S without progress is the
 * last resort and dumps the same).  A slow or shared machine makes the
 * campaign longer, not red.
 *
 * Knobs (environment):
 *   MG_SEED=S        the campaign's seed (printed; fresh if unset)
 *   MG_PLANS=N       plans to run (10000)
 *   MG_PLAN=I        replay plan I of seed MG_SEED alone, in this process,
 *                    with its full output (the configuration and every
 *                    choice of its drive are the same; the interleaving of
 *                    the threads is the machine's)
 *   MG_JOBS=J        plans run at the same time (1; each plan has 1-4
 *                    workers of its own, oversubscribed)
 *   MG_PROGRESS=K    a progress line every K plans (100)
 *   MG_MAX_FAILS=F   stop starting plans after F failures (10)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/mg_test.h"
#include "tests/mg_test_drive.h"
#include "tests/mg_test_run.h"

#define MAX_JOBS 64

/* A plan running in a child. */
struct job {
	pid_t pid; /* 0: the slot is free */
	uint64_t plan;
	int log; /* the child's stdout and stderr, a scratch file */
};

struct tally {
	uint64_t plans, failed;
	uint64_t kind[RUN_PLAN_KINDS], kind_failed[RUN_PLAN_KINDS];
	uint64_t copy, workers[MAX_W + 1];
};

static const char *self; /* argv[0], for the replay line */

/* A scratch file, already unlinked; -1 if none can be made. */
static int
scratch(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/l-migration.XXXXXX",
		 dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* One line describing plan @r. */
static void
describe(const struct run *r, char *buf, size_t len)
{
	snprintf(buf, len,
		 "%s: W=%u bins=2^%u ring=%u batch=%u rate=%.0f%s, timers %s, "
		 "%s",
		 r->name, r->workers, r->bins_log2, r->ring, r->batch,
		 r->rate[0], r->binary ? " binary" : "",
		 r->timers ? "on" : "off",
		 r->mode == MG_COPY ? "copy" : "handoff");
}

/* In the child: run plan @r with its output in @log; exits. */
static _Noreturn void
child(struct run *r, int log)
{
	if (dup2(log, 1) < 0 || dup2(log, 2) < 0)
		_exit(125);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, run_watchdog);
	if (run_case(r) == 0)
		exit(0); /* exit: stdout flushed, a leak checker runs */
	fflush(NULL);
	_exit(1); /* a hung run's threads may still run: no exit handlers */
}

static void
start(struct job *j, uint64_t plan)
{
	char name[64];
	struct run r;

	run_plan(&r, run_seed, plan, true, name, sizeof(name));
	if (ftruncate(j->log, 0) || lseek(j->log, 0, SEEK_SET) < 0)
		fail_msg("cannot reset a scratch file: %s", strerror(errno));
	fflush(NULL); /* the child must not print our buffers */
	j->plan = plan;
	j->pid = fork();
	if (j->pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (j->pid == 0)
		child(&r, j->log);
}

/* Copy the child's output to stdout, each line as a TAP comment. */
static void
show_log(int log)
{
	char line[4096];
	FILE *f;
	int fd = dup(log);

	if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0 || !(f = fdopen(fd, "r"))) {
		printf("#   (its output cannot be read)\n");
		if (fd >= 0)
			close(fd);
		return;
	}
	while (fgets(line, sizeof(line), f))
		printf("#   | %s%s", line, strchr(line, '\n') ? "" : "\n");
	fclose(f);
}

/* Plan @j ended with @status: count it; show it if it failed. */
static void
finish(struct job *j, int status, struct tally *t)
{
	char name[64], what[256];
	enum run_plan_kind k;
	struct run r;
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;

	k = run_plan(&r, run_seed, j->plan, true, name, sizeof(name));
	t->plans++;
	t->kind[k]++;
	t->copy += r.mode == MG_COPY;
	t->workers[r.workers]++;
	j->pid = 0;
	if (ok)
		return;
	t->failed++;
	t->kind_failed[k]++;
	describe(&r, what, sizeof(what));
	printf("# FAIL %s\n", what);
	if (WIFSIGNALED(status))
		printf("#   killed by signal %d (%s)\n", WTERMSIG(status),
		       strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) != 1)
		printf("#   exit status %d\n", WEXITSTATUS(status));
	printf("#   its output:\n");
	show_log(j->log);
	printf("#   replay: MG_SEED=%llu MG_PLAN=%llu %s\n",
	       (unsigned long long)run_seed, (unsigned long long)j->plan, self);
}

static void
clock_text(double s, char *buf, size_t len)
{
	unsigned long long x = (unsigned long long)(s + 0.5);

	if (x >= 3600)
		snprintf(buf, len, "%lluh%02llum%02llus", x / 3600, x / 60 % 60,
			 x % 60);
	else
		snprintf(buf, len, "%llum%02llus", x / 60, x % 60);
}

static void
progress_line(const struct tally *t, uint64_t plans, double t0)
{
	double el = run_now_s() - t0;
	char a[32], b[32];

	clock_text(el, a, sizeof(a));
	clock_text(t->plans ? el * (double)(plans - t->plans) / (double)t->plans
			    : 0,
		   b, sizeof(b));
	printf("# %llu/%llu plans, %llu failed, %s, %.3f s a plan, about %s "
	       "to go\n",
	       (unsigned long long)t->plans, (unsigned long long)plans,
	       (unsigned long long)t->failed, a,
	       t->plans ? el / (double)t->plans : 0.0, b);
}

static void
summary(const struct tally *t, uint64_t plans, double t0)
{
	double el = run_now_s() - t0;
	char a[32];
	unsigned k, w;

	clock_text(el, a, sizeof(a));
	printf("# check-long: %llu of %llu plans run, %llu failed, in %s "
	       "(%.1f s, %.3f s a plan), MG_SEED=%llu\n",
	       (unsigned long long)t->plans, (unsigned long long)plans,
	       (unsigned long long)t->failed, a, el,
	       t->plans ? el / (double)t->plans : 0.0,
	       (unsigned long long)run_seed);
	printf("#   kinds:");
	for (k = 0; k < RUN_PLAN_KINDS; k++)
		printf(" %s %llu (%llu failed)%s", run_plan_kind_name[k],
		       (unsigned long long)t->kind[k],
		       (unsigned long long)t->kind_failed[k],
		       k + 1 < RUN_PLAN_KINDS ? "," : "\n");
	printf("#   modes: handoff %llu, copy %llu; workers:",
	       (unsigned long long)(t->plans - t->copy),
	       (unsigned long long)t->copy);
	for (w = 1; w <= MAX_W; w++)
		printf(" W=%u %llu%s", w, (unsigned long long)t->workers[w],
		       w < MAX_W ? "," : "\n");
}

/* MG_PLAN=I: plan I alone, here, with everything it prints. */
static void
replay(uint64_t plan)
{
	char name[64], what[256];
	struct run r;
	unsigned fails;

	run_plan(&r, run_seed, plan, false, name, sizeof(name));
	describe(&r, what, sizeof(what));
	printf("# replaying %s\n", what);
	fails = run_case(&r);
	assert_int_equal(fails, 0);
}

static void
test_campaign(void **state)
{
	uint64_t plans = mg_test_env_u64("MG_PLANS", 10000),
		 every = mg_test_env_u64("MG_PROGRESS", 100),
		 max_fails = mg_test_env_u64("MG_MAX_FAILS", 10),
		 jobs = mg_test_env_u64("MG_JOBS", 1), next = 0, i;
	struct job job[MAX_JOBS];
	struct tally t = {0};
	unsigned running = 0;
	double t0 = run_now_s();

	(void)state;
	if (getenv("MG_PLAN") && *getenv("MG_PLAN")) {
		replay(mg_test_env_u64("MG_PLAN", 0));
		return;
	}
	jobs = jobs < 1 ? 1 : jobs > MAX_JOBS ? MAX_JOBS : jobs;
	every = every ? every : 100;
	for (i = 0; i < jobs; i++) {
		job[i] = (struct job){.log = scratch()};
		if (job[i].log < 0)
			fail_msg("cannot make a scratch file: %s",
				 strerror(errno));
	}
	printf("# %llu plans, %llu at a time; a plan's output is shown only "
	       "if it fails\n",
	       (unsigned long long)plans, (unsigned long long)jobs);
	while (next < plans || running) {
		int status;
		pid_t pid;

		for (i = 0; i < jobs && next < plans && t.failed < max_fails;
		     i++)
			if (!job[i].pid) {
				start(&job[i], next++);
				running++;
			}
		if (!running)
			break; /* stopped after max_fails */
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			fail_msg("waitpid: %s", strerror(errno));
		}
		for (i = 0; i < jobs && job[i].pid != pid; i++)
			;
		if (i == jobs)
			continue; /* not ours */
		running--;
		finish(&job[i], status, &t);
		if (t.plans % every == 0)
			progress_line(&t, plans, t0);
	}
	if (t.failed >= max_fails && t.plans < plans)
		printf("# stopped after %llu failures (MG_MAX_FAILS)\n",
		       (unsigned long long)t.failed);
	summary(&t, plans, t0);
	for (i = 0; i < jobs; i++)
		close(job[i].log);
	assert_int_equal(t.failed, 0);
	assert_int_equal(t.plans, plans);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_campaign),
	};

	(void)argc;
	self = argv[0];
	run_seed = mg_test_seed();
	signal(SIGALRM, run_watchdog);
	return MG_TEST_RUN(tests);
}
