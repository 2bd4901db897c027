#include "tests/mg_test.h"
#include "numa/mg_numa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void
mg_test_init(void)
{
	const char *only = getenv("MG_TEST_ONLY");

	if (only && *only)
		cmocka_set_test_filter(only);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

void
mg_test_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	fflush(stdout);
	exit(0);
}

uint64_t
mg_test_env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long x;

	if (!v || !*v)
		return def;
	x = strtoull(v, &end, 0);
	if (*end) {
		fprintf(stderr, "bad %s=%s, using %llu\n", name, v,
			(unsigned long long)def);
		return def;
	}
	return x;
}

bool
mg_test_args_name(const char *const *args, size_t max, const char *word)
{
	for (size_t i = 0; i < max && args[i]; i++)
		if (!strcmp(args[i], word))
			return true;
	return false;
}

uint64_t
mg_test_seed(void)
{
	struct timespec ts;
	uint64_t seed;

	seed = mg_test_env_u64("MG_SEED", 0);
	if (!seed) {
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ull +
		       (uint64_t)ts.tv_nsec;
	}
	printf("# seed %llu (rerun with MG_SEED=%llu)\n",
	       (unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

int
mg_test_pools_open(struct mg_topology **topo, struct mg_pools **pools,
		   unsigned fake_nodes, size_t reserve)
{
	struct mg_pools_config cfg = {.reserve_bytes = reserve};

	if (mg_topology_create_fake(topo, fake_nodes) != 0 &&
	    mg_topology_create_fake(topo, 0) != 0)
		return -1;
	if (mg_pools_create(pools, *topo, &cfg) != 0) {
		mg_topology_destroy(*topo);
		return -1;
	}
	return 0;
}

void
mg_test_pools_close(struct mg_topology *topo, struct mg_pools *pools)
{
	mg_pools_destroy(pools);
	mg_topology_destroy(topo);
}

/* VmSize of this process in bytes, or 0 if /proc cannot tell. */
static size_t
vm_size(void)
{
	unsigned long long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &pages) != 1)
		pages = 0;
	fclose(f);
	return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

int
mg_test_run_limited(size_t room, int (*fn)(void *), void *arg)
{
	struct rlimit rl;
	int status;
	pid_t pid;

	fflush(NULL); /* the child must not print the parent's buffers */
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		size_t used = vm_size();

		if (!used || getrlimit(RLIMIT_AS, &rl) != 0)
			_exit(255);
		rl.rlim_cur = used + room;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur)
			rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(255);
		/* _exit: no atexit handlers (leak checkers) in the child. */
		_exit(fn(arg) & 0xff);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 256 + WTERMSIG(status);
	return WEXITSTATUS(status) == 255 ? -1 : WEXITSTATUS(status);
}

bool
mg_test_all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

void
mg_test_dump_threads(void)
{
	char cmd[160];

	fflush(stdout);
	fflush(stderr);
	/* let a child (gdb) attach even where ptrace is restricted */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	snprintf(cmd, sizeof(cmd),
		 "command -v gdb >/dev/null && gdb -p %d -batch -nx -ex "
		 "'thread apply all bt 12' 1>&2 2>/dev/null",
		 (int)getpid());
	if (system(cmd) != 0)
		fprintf(stderr, "(no stacks: gdb missing or not allowed)\n");
}
