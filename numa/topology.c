/*
 * topology.c - allowed CPUs, their nodes, memory nodes, pinning.
 *
 * A topology is built once and then only read, so it needs no
 * synchronisation: any number of threads may query it concurrently.
 *
 * Construction:
 *   1. The allowed CPUs are the calling thread's affinity mask
 *      (sched_getaffinity), normally the process's as set by numactl or
 *      taskset.  The mask is read with a growing dynamic cpu set, so more
 *      than CPU_SETSIZE CPUs work.
 *   2. Each CPU gets its real node from libnuma (numa_node_of_cpu); if
 *      numa_available() < 0 every CPU is on real node 0.
 *   3. The CPUs are sorted by (real node, CPU number).  Real mode numbers the
 *      distinct real nodes densely in that order; fake mode cuts the sorted
 *      list into N contiguous groups of floor/ceil(ncpus / N) CPUs.  Either
 *      way the order is "by node index, then CPU number".
 *   4. A node index's memory node is the real node of its first CPU when
 *      that node is in numa_get_mems_allowed() (numactl --membind), else
 *      the nearest allowed memory node by numa_distance().  Nodes that have
 *      memory but no allowed CPU get no node index: no worker runs there.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <numa.h>

#include "numa/mg_numa.h"

struct mg_topology {
	unsigned ncpus;
	unsigned nnodes;
	bool fake;
	int max_cpu;			 /* largest allowed CPU number */
	int *cpu;			 /* [ncpus], ordered */
	unsigned *node;			 /* [ncpus], node index of cpu[i] */
	unsigned *index_of;		 /* [max_cpu + 1], i or UINT_MAX */
	int mem_node[MG_NUMA_MAX_NODES]; /* real node per node index */
};

struct cpu_entry {
	int cpu;
	int real; /* real node, or -1 if libnuma does not know */
};

static int
cmp_cpu_entry(const void *a, const void *b)
{
	const struct cpu_entry *x = a, *y = b;

	if (x->real != y->real)
		return x->real < y->real ? -1 : 1;
	return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

/*
 * The calling thread's allowed CPUs, sorted by (real node, CPU).
 * Return: 0 and a malloc'ed array in *@out; -ENOMEM; -errno.
 */
static int
read_allowed(struct cpu_entry **out, unsigned *count, bool numa)
{
	struct cpu_entry *e;
	cpu_set_t *set;
	size_t size;
	int nbits, cpu, n, i, err;

	for (nbits = CPU_SETSIZE;; nbits *= 2) {
		set = CPU_ALLOC(nbits);
		if (!set)
			return -ENOMEM;
		size = CPU_ALLOC_SIZE(nbits);
		if (sched_getaffinity(0, size, set) == 0)
			break;
		err = errno;
		CPU_FREE(set);
		/* EINVAL: the kernel's mask is larger than ours; grow. */
		if (err != EINVAL || nbits >= (1 << 22))
			return err ? -err : -EINVAL;
	}
	n = CPU_COUNT_S(size, set);
	e = n > 0 ? calloc((size_t)n, sizeof(*e)) : NULL;
	if (!e) {
		CPU_FREE(set);
		return n > 0 ? -ENOMEM : -EINVAL;
	}
	for (cpu = 0, i = 0; cpu < nbits && i < n; cpu++) {
		if (!CPU_ISSET_S((size_t)cpu, size, set))
			continue;
		e[i].cpu = cpu;
		e[i].real = numa ? numa_node_of_cpu(cpu) : 0;
		i++;
	}
	CPU_FREE(set);
	qsort(e, (size_t)n, sizeof(*e), cmp_cpu_entry);
	*out = e;
	*count = (unsigned)n;
	return 0;
}

/* The allowed memory node closest to real node @real (see step 4). */
static int
pick_mem_node(struct bitmask *mems, int real)
{
	int best = -1, best_dist = INT_MAX, m, d;

	if (!mems)
		return 0;
	if (real >= 0 && numa_bitmask_isbitset(mems, (unsigned)real))
		return real;
	for (m = 0; m <= numa_max_node(); m++) {
		if (!numa_bitmask_isbitset(mems, (unsigned)m))
			continue;
		d = real >= 0 ? numa_distance(real, m) : 0;
		if (d <= 0)
			d = INT_MAX -
			    1; /* unknown distance: any node will do */
		if (d < best_dist) {
			best = m;
			best_dist = d;
		}
	}
	return best >= 0 ? best : 0;
}

/* Strict decimal: digits only, no sign, no blanks, 1..MG_NUMA_MAX_NODES. */
static int
parse_fake(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > MG_NUMA_MAX_NODES)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

static int
build(struct mg_topology **out, unsigned fake_nodes)
{
	struct mg_topology *t;
	struct cpu_entry *e = NULL;
	struct bitmask *mems = NULL;
	unsigned n = 0, i, g;
	bool numa = numa_available() >= 0;
	int err;

	if (fake_nodes > MG_NUMA_MAX_NODES)
		return -EINVAL;
	err = read_allowed(&e, &n, numa);
	if (err)
		return err;
	if (fake_nodes > n) {
		free(e);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		goto enomem;
	t->ncpus = n;
	t->fake = fake_nodes != 0;
	t->max_cpu = 0;
	for (i = 0; i < n; i++)
		if (e[i].cpu > t->max_cpu)
			t->max_cpu = e[i].cpu;
	t->cpu = calloc(n, sizeof(*t->cpu));
	t->node = calloc(n, sizeof(*t->node));
	t->index_of = malloc(((size_t)t->max_cpu + 1) * sizeof(*t->index_of));
	if (!t->cpu || !t->node || !t->index_of)
		goto enomem;
	if (numa) {
		mems = numa_get_mems_allowed();
		if (!mems)
			goto enomem;
	}
	for (i = 0; i <= (unsigned)t->max_cpu; i++)
		t->index_of[i] = UINT_MAX;

	if (t->fake) {
		t->nnodes = fake_nodes;
		for (g = 0; g < fake_nodes; g++) {
			unsigned lo = (unsigned)((uint64_t)g * n / fake_nodes);
			unsigned hi =
				(unsigned)((uint64_t)(g + 1) * n / fake_nodes);

			for (i = lo; i < hi; i++)
				t->node[i] = g;
			t->mem_node[g] = pick_mem_node(mems, e[lo].real);
		}
	} else {
		t->nnodes = 0;
		for (i = 0; i < n; i++) {
			if (i == 0 || e[i].real != e[i - 1].real) {
				if (t->nnodes == MG_NUMA_MAX_NODES) {
					err = -ERANGE;
					goto fail;
				}
				t->mem_node[t->nnodes++] =
					pick_mem_node(mems, e[i].real);
			}
			t->node[i] = t->nnodes - 1;
		}
	}
	for (i = 0; i < n; i++) {
		t->cpu[i] = e[i].cpu;
		t->index_of[e[i].cpu] = i;
	}
	if (mems)
		numa_bitmask_free(mems);
	free(e);
	*out = t;
	return 0;

enomem:
	err = -ENOMEM;
fail:
	if (mems)
		numa_bitmask_free(mems);
	free(e);
	mg_topology_destroy(t);
	return err;
}

int
mg_topology_create(struct mg_topology **out)
{
	const char *env = getenv("MG_NUMA_FAKE");
	unsigned fake = 0;
	int err;

	if (env && *env) {
		err = parse_fake(env, &fake);
		if (err)
			return err;
	}
	return build(out, fake);
}

int
mg_topology_create_fake(struct mg_topology **out, unsigned fake_nodes)
{
	return build(out, fake_nodes);
}

void
mg_topology_destroy(struct mg_topology *topo)
{
	if (!topo)
		return;
	free(topo->cpu);
	free(topo->node);
	free(topo->index_of);
	free(topo);
}

unsigned
mg_topology_ncpus(const struct mg_topology *topo)
{
	return topo->ncpus;
}

unsigned
mg_topology_nnodes(const struct mg_topology *topo)
{
	return topo->nnodes;
}

bool
mg_topology_is_fake(const struct mg_topology *topo)
{
	return topo->fake;
}

int
mg_topology_cpu(const struct mg_topology *topo, unsigned i)
{
	return i < topo->ncpus ? topo->cpu[i] : -EINVAL;
}

/* Index of @cpu in the ordered CPU list, or UINT_MAX if not allowed. */
static unsigned
index_of(const struct mg_topology *topo, int cpu)
{
	if (cpu < 0 || cpu > topo->max_cpu)
		return UINT_MAX;
	return topo->index_of[cpu];
}

int
mg_topology_node_of_cpu(const struct mg_topology *topo, int cpu, unsigned *node)
{
	unsigned i = index_of(topo, cpu);

	if (i == UINT_MAX)
		return -EINVAL;
	*node = topo->node[i];
	return 0;
}

int
mg_topology_mem_node(const struct mg_topology *topo, unsigned node)
{
	return node < topo->nnodes ? topo->mem_node[node] : -EINVAL;
}

int
mg_topology_place(const struct mg_topology *topo, unsigned worker,
		  unsigned nworkers, bool oversubscribe, int *cpu,
		  unsigned *node)
{
	unsigned i;

	if (worker >= nworkers)
		return -EINVAL;
	if (nworkers > topo->ncpus && !oversubscribe)
		return -EINVAL;
	i = worker % topo->ncpus;
	if (cpu)
		*cpu = topo->cpu[i];
	if (node)
		*node = topo->node[i];
	return 0;
}

int
mg_pin_self(const struct mg_topology *topo, int cpu)
{
	cpu_set_t one, *set = &one;
	size_t size = sizeof(one);
	int err;

	if (index_of(topo, cpu) == UINT_MAX)
		return -EINVAL;
	if (cpu >= CPU_SETSIZE) {
		set = CPU_ALLOC(cpu + 1);
		if (!set)
			return -ENOMEM;
		size = CPU_ALLOC_SIZE(cpu + 1);
	}
	CPU_ZERO_S(size, set);
	CPU_SET_S((size_t)cpu, size, set);
	/* The kernel replaces the mask atomically: on failure it is unchanged. */
	err = pthread_setaffinity_np(pthread_self(), size, set);
	if (set != &one)
		CPU_FREE(set);
	return -err;
}
