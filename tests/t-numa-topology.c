/*
 * t-numa-topology.c - topology, fake nodes, placement, pinning.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <numa.h>

#include "numa/mg_numa.h"
#include "tests/mg_test.h"

#define SENTINEL ((struct mg_topology *)(uintptr_t)0x5a5a)

static cpu_set_t
allowed_set(void)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	assert_int_equal(sched_getaffinity(0, sizeof(s), &s), 0);
	return s;
}

/* Ordering, cpu/node consistency and error returns of any topology. */
static void
check_consistent(const struct mg_topology *t)
{
	cpu_set_t s = allowed_set();
	unsigned n = mg_topology_ncpus(t), nn = mg_topology_nnodes(t);
	unsigned i, node, prev_node = 0, seen_nodes = 0;
	int cpu, prev_cpu = -1;

	assert_true(n >= 1);
	assert_int_equal(n, CPU_COUNT(&s));
	assert_true(nn >= 1 && nn <= n && nn <= MG_NUMA_MAX_NODES);
	for (i = 0; i < n; i++) {
		cpu = mg_topology_cpu(t, i);
		assert_true(cpu >= 0 && CPU_ISSET(cpu, &s));
		assert_int_equal(mg_topology_node_of_cpu(t, cpu, &node), 0);
		assert_true(node < nn);
		/* By node index, then CPU number; every node has a CPU. */
		if (i > 0 && node == prev_node)
			assert_true(cpu > prev_cpu);
		else
			assert_int_equal(node, i == 0 ? 0 : prev_node + 1);
		if (i == 0 || node != prev_node)
			seen_nodes++;
		prev_node = node;
		prev_cpu = cpu;
	}
	assert_int_equal(seen_nodes, nn);
	for (i = 0; i < nn; i++)
		assert_true(mg_topology_mem_node(t, i) >= 0);
	assert_int_equal(mg_topology_mem_node(t, nn), -EINVAL);
	assert_int_equal(mg_topology_cpu(t, n), -EINVAL);
	node = 12345;
	assert_int_equal(mg_topology_node_of_cpu(t, -1, &node), -EINVAL);
	assert_int_equal(mg_topology_node_of_cpu(t, 1 << 20, &node), -EINVAL);
	assert_int_equal(node, 12345);
}

static void
test_real(void **state)
{
	struct mg_topology *t;
	struct bitmask *mems = NULL;
	unsigned i, node, nreal = 0;
	int last_real = -2;

	(void)state;
	if (numa_available() >= 0)
		mems = numa_get_mems_allowed();
	unsetenv("MG_NUMA_FAKE");
	assert_int_equal(mg_topology_create(&t), 0);
	assert_false(mg_topology_is_fake(t));
	check_consistent(t);
	/* One node index per real node with allowed CPUs. */
	for (i = 0; i < mg_topology_ncpus(t); i++) {
		int cpu = mg_topology_cpu(t, i);
		int real = numa_available() >= 0 ? numa_node_of_cpu(cpu) : 0;

		assert_int_equal(mg_topology_node_of_cpu(t, cpu, &node), 0);
		if (real != last_real)
			nreal++;
		last_real = real;
		if (mems && numa_bitmask_isbitset(mems, (unsigned)real))
			assert_int_equal(mg_topology_mem_node(t, node), real);
	}
	if (mems)
		numa_bitmask_free(mems);
	assert_int_equal(mg_topology_nnodes(t), nreal);
	mg_topology_destroy(t);
	mg_topology_destroy(NULL);
}

static void
check_fake(struct mg_topology *f, unsigned nfake)
{
	struct mg_topology *real;
	unsigned n, i, g, node, rnode;

	assert_int_equal(mg_topology_create_fake(&real, 0), 0);
	assert_false(mg_topology_is_fake(real));
	n = mg_topology_ncpus(real);
	assert_true(mg_topology_is_fake(f));
	assert_int_equal(mg_topology_nnodes(f), nfake);
	assert_int_equal(mg_topology_ncpus(f), n);
	check_consistent(f);
	for (i = 0; i < n; i++) {
		/* Same order as the real topology, cut into even groups. */
		assert_int_equal(mg_topology_cpu(f, i),
				 mg_topology_cpu(real, i));
		assert_int_equal(mg_topology_node_of_cpu(
					 f, mg_topology_cpu(f, i), &node),
				 0);
		assert_int_equal(node, (unsigned)((uint64_t)i * nfake / n));
	}
	for (g = 0; g < nfake; g++) {
		/* Memory of a fake node: the real node of its first CPU. */
		int first =
			mg_topology_cpu(f, (unsigned)((uint64_t)g * n / nfake));

		assert_int_equal(mg_topology_node_of_cpu(real, first, &rnode),
				 0);
		assert_int_equal(mg_topology_mem_node(f, g),
				 mg_topology_mem_node(real, rnode));
	}
	mg_topology_destroy(real);
}

static void
test_fake_api(void **state)
{
	struct mg_topology *t, *f = SENTINEL;
	unsigned n;

	(void)state;
	unsetenv("MG_NUMA_FAKE");
	assert_int_equal(mg_topology_create(&t), 0);
	n = mg_topology_ncpus(t);
	mg_topology_destroy(t);

	if (n >= 2) {
		assert_int_equal(mg_topology_create_fake(&f, 2), 0);
		check_fake(f, 2);
		mg_topology_destroy(f);
	} else {
		assert_int_equal(mg_topology_create_fake(&f, 2), -EINVAL);
		assert_ptr_equal(f, SENTINEL);
	}
	assert_int_equal(mg_topology_create_fake(&f, 1), 0);
	check_fake(f, 1);
	mg_topology_destroy(f);
	assert_int_equal(mg_topology_create_fake(&f, n), 0);
	check_fake(f, n);
	mg_topology_destroy(f);

	f = SENTINEL;
	assert_int_equal(mg_topology_create_fake(&f, n + 1), -EINVAL);
	assert_int_equal(mg_topology_create_fake(&f, MG_NUMA_MAX_NODES + 1),
			 -EINVAL);
	assert_ptr_equal(f, SENTINEL);
}

static void
test_fake_env(void **state)
{
	static const char *const bad[] = {
		"0",  "abc", "99", "2x",  " 2",
		"2 ", "+2",  "-1", "0x2", "18446744073709551618",
		"65",
	};
	struct mg_topology *t = SENTINEL, *f;
	unsigned n, i;

	(void)state;
	assert_int_equal(mg_topology_create_fake(&f, 0), 0);
	n = mg_topology_ncpus(f);
	mg_topology_destroy(f);

	if (n >= 2) {
		assert_int_equal(setenv("MG_NUMA_FAKE", "2", 1), 0);
		assert_int_equal(mg_topology_create(&t), 0);
		check_fake(t, 2);
		mg_topology_destroy(t);
		/* The explicit call ignores the environment. */
		assert_int_equal(mg_topology_create_fake(&t, 0), 0);
		assert_false(mg_topology_is_fake(t));
		mg_topology_destroy(t);
	}
	assert_int_equal(setenv("MG_NUMA_FAKE", "1", 1), 0);
	assert_int_equal(mg_topology_create(&t), 0);
	check_fake(t, 1);
	mg_topology_destroy(t);
	/* Empty is the same as unset. */
	assert_int_equal(setenv("MG_NUMA_FAKE", "", 1), 0);
	assert_int_equal(mg_topology_create(&t), 0);
	assert_false(mg_topology_is_fake(t));
	mg_topology_destroy(t);

	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		t = SENTINEL;
		assert_int_equal(setenv("MG_NUMA_FAKE", bad[i], 1), 0);
		assert_int_equal(mg_topology_create(&t), -EINVAL);
		assert_ptr_equal(t, SENTINEL);
	}
	/* Well formed but more nodes than CPUs. */
	if (n < MG_NUMA_MAX_NODES) {
		char buf[16];

		snprintf(buf, sizeof(buf), "%u", n + 1);
		assert_int_equal(setenv("MG_NUMA_FAKE", buf, 1), 0);
		assert_int_equal(mg_topology_create(&t), -EINVAL);
		assert_ptr_equal(t, SENTINEL);
	}
	unsetenv("MG_NUMA_FAKE");
}

static void
test_place(void **state)
{
	struct mg_topology *t;
	unsigned n, w, node, want_node;
	int cpu;

	(void)state;
	assert_int_equal(mg_topology_create_fake(&t, 0), 0);
	n = mg_topology_ncpus(t);
	for (w = 0; w < n; w++) {
		assert_int_equal(mg_topology_place(t, w, n, false, &cpu, &node),
				 0);
		assert_int_equal(cpu, mg_topology_cpu(t, w));
		assert_int_equal(mg_topology_node_of_cpu(t, cpu, &want_node),
				 0);
		assert_int_equal(node, want_node);
	}
	/* Oversubscription only on request, then round-robin. */
	cpu = -77;
	node = 77;
	assert_int_equal(mg_topology_place(t, 0, n + 1, false, &cpu, &node),
			 -EINVAL);
	assert_int_equal(cpu, -77);
	assert_int_equal(node, 77);
	for (w = 0; w < 2 * n + 1; w++) {
		assert_int_equal(
			mg_topology_place(t, w, 2 * n + 1, true, &cpu, &node),
			0);
		assert_int_equal(cpu, mg_topology_cpu(t, w % n));
	}
	assert_int_equal(mg_topology_place(t, n, n, false, &cpu, &node),
			 -EINVAL);
	assert_int_equal(mg_topology_place(t, 0, 0, true, &cpu, &node),
			 -EINVAL);
	assert_int_equal(mg_topology_place(t, 0, 1, false, NULL, NULL), 0);
	mg_topology_destroy(t);
}

/* What the pinning thread saw; main checks it. */
struct pin_report {
	const struct mg_topology *t;
	int rc[CPU_SETSIZE];
	int ran_on[CPU_SETSIZE];
	int mask_count[CPU_SETSIZE];
	int bad_cpu[4];
	int bad_rc[4];
	bool unchanged_after_bad;
};

static void *
pin_thread(void *arg)
{
	struct pin_report *rep = arg;
	cpu_set_t before, after;
	unsigned i;
	int cpu;

	for (i = 0; i < mg_topology_ncpus(rep->t); i++) {
		cpu = mg_topology_cpu(rep->t, i);
		rep->rc[i] = mg_pin_self(rep->t, cpu);
		rep->ran_on[i] = sched_getcpu();
		CPU_ZERO(&after);
		pthread_getaffinity_np(pthread_self(), sizeof(after), &after);
		rep->mask_count[i] =
			CPU_ISSET(cpu, &after) ? CPU_COUNT(&after) : -1;
	}
	pthread_getaffinity_np(pthread_self(), sizeof(before), &before);
	for (i = 0; i < 4; i++)
		rep->bad_rc[i] = mg_pin_self(rep->t, rep->bad_cpu[i]);
	pthread_getaffinity_np(pthread_self(), sizeof(after), &after);
	rep->unchanged_after_bad = CPU_EQUAL(&before, &after);
	return NULL;
}

static void
test_pin(void **state)
{
	struct pin_report *rep = calloc(1, sizeof(*rep));
	struct mg_topology *t;
	cpu_set_t mask;
	pthread_t th;
	unsigned i;

	(void)state;
	assert_non_null(rep);
	assert_int_equal(mg_topology_create_fake(&t, 0), 0);
	rep->t = t;
	mask = allowed_set();
	rep->bad_cpu[0] = -1;
	rep->bad_cpu[1] = CPU_SETSIZE * 4;
	rep->bad_cpu[2] = 1 << 30;
	/* The first CPU number outside the allowed set. */
	for (rep->bad_cpu[3] = 0; CPU_ISSET(rep->bad_cpu[3], &mask);)
		rep->bad_cpu[3]++;
	assert_int_equal(pthread_create(&th, NULL, pin_thread, rep), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	for (i = 0; i < mg_topology_ncpus(t); i++) {
		assert_int_equal(rep->rc[i], 0);
		assert_int_equal(rep->ran_on[i], mg_topology_cpu(t, i));
		assert_int_equal(rep->mask_count[i], 1);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(rep->bad_rc[i], -EINVAL);
	assert_true(rep->unchanged_after_bad);
	/* Main's own affinity was never touched. */
	mask = allowed_set();
	assert_int_equal(CPU_COUNT(&mask), mg_topology_ncpus(t));
	mg_topology_destroy(t);
	free(rep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real),
		cmocka_unit_test(test_fake_api),
		cmocka_unit_test(test_fake_env),
		cmocka_unit_test(test_place),
		cmocka_unit_test(test_pin),
	};

	return MG_TEST_RUN(tests);
}
