#include "tests/mg_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void
mg_test_init(void)
{
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
