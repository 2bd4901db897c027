/*
 * mg_test.h - the TAP harness shared by tests/t-*.c and tests/stress/s-*.c.
 *
 * Tests are cmocka groups with TAP output, run by prove.  cmocka 1.1.5 prints
 * a skipped case as "not ok # SKIP", which prove counts as a failure, so a
 * test that needs what the machine lacks skips its whole file with
 * mg_test_skip_all(), which prints "1..0 # SKIP <reason>" and exits 0.
 *
 * Only the main thread asserts: worker threads record what they saw and the
 * main thread checks it after joining them.
 */
#ifndef MG_TEST_H
#define MG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

/* Run @tests as one TAP group; returns the process exit status.  With
 * MG_TEST_ONLY=PATTERN set, only the cases whose names match it (cmocka's
 * filter: * and ? wildcards), e.g. MG_TEST_ONLY=test_hot_bin. */
#define MG_TEST_RUN(tests) \
	(mg_test_init(),   \
	 cmocka_run_group_tests_name(__FILE__, tests, NULL, NULL))

void mg_test_init(void);

/* Print "1..0 # SKIP <reason>" and exit 0. */
_Noreturn void mg_test_skip_all(const char *reason);

/* An unsigned environment knob (stress sizes), or @def if unset. */
uint64_t mg_test_env_u64(const char *name, uint64_t def);

/* Whether the first @max words of @args (or those before a NULL) include
 * @word: a command line naming a flag. */
bool mg_test_args_name(const char *const *args, size_t max, const char *word);

/* The seed from MG_SEED, or a fresh one; printed as a TAP comment. */
uint64_t mg_test_seed(void);

struct mg_topology;
struct mg_pools;

/*
 * The fixture most tests share: a topology split into @fake_nodes virtual
 * nodes (0: none; falls back to none where the CPUs cannot be split) and
 * page pools reserving @reserve bytes per class (0: the default).
 * Return: 0, or -1 with nothing left allocated.
 */
int mg_test_pools_open(struct mg_topology **topo, struct mg_pools **pools,
		       unsigned fake_nodes, size_t reserve);
void mg_test_pools_close(struct mg_topology *topo, struct mg_pools *pools);

/* Print every thread's stack to stderr (gdb attached to this process, if
 * the machine has gdb and may ptrace), for a watchdog that gives up: so a
 * slow run and a stuck one can be told apart. */
void mg_test_dump_threads(void);

/*
 * Run @fn(@arg) in a forked child whose RLIMIT_AS leaves @room bytes of
 * address space above what the child maps at the fork (relative, so it
 * works under sanitizers, which map terabytes).  The child must not use
 * cmocka's asserts: @fn returns 0 for success or a small code naming the
 * check that failed.  Call it while the process has one thread.
 * Return: @fn's value (0..255); 256 + the signal if the child was killed;
 * -1 if the child could not be started or limited.
 */
int mg_test_run_limited(size_t room, int (*fn)(void *), void *arg);

/* True if the @n bytes at @p are all zero. */
bool mg_test_all_zero(const void *p, size_t n);

/* splitmix64: a small deterministic generator for seeded tests. */
static inline uint64_t
mg_test_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif /* MG_TEST_H */
