/*
 * mg_numa.h - topology, thread pinning, node-local page pools, re-homing.
 *
 * The bottom layer of libmegaphone.  Nothing here knows about bins, channels
 * or dataflows: it answers "which CPUs may I use and which node is each on",
 * pins threads, hands out node-local chunks of pages without locks, and moves
 * pages between nodes in the background.
 *
 * Topology.  The topology is the process's *allowed* CPUs (sched_getaffinity)
 * and allowed memory nodes (libnuma), so `numactl --physcpubind`,
 * `--cpunodebind` and `--membind` decide where workers run and where memory
 * comes from.  Nodes are numbered densely 0..nnodes-1 (a "node index"); each
 * maps to a real libnuma node for memory binding.  When libnuma reports NUMA
 * unavailable there is one node and memory is not bound.
 *
 * Fake topologies.  MG_NUMA_FAKE=N in the environment (or
 * mg_topology_create_fake()) splits the allowed CPUs into N contiguous groups,
 * each a virtual node whose memory is bound to the real node of its first
 * CPU.  Every multi-node path (placement, pool choice, re-homing decisions)
 * then runs on a one-node machine; only the physical page moves are no-ops.
 *
 * Page pools.  One pool per node index hands out *chunks*: naturally aligned
 * power-of-two blocks from 128 B (MG_CHUNK_MIN_SHIFT) to 2 MiB
 * (MG_CHUNK_MAX_SHIFT).  Chunks below a page (MG_CHUNK_PAGE_SHIFT) are
 * *sub-page* chunks: several share a page, each owned on its own -- so that
 * a bin with a little state costs hundreds of bytes, not a page -- and they
 * are never moved between nodes on their own (a page cannot be moved for one
 * chunk of it).  Each (node, size class) owns one virtual reservation
 * (MAP_NORESERVE, mbind MPOL_PREFERRED to the node, the sub-page and 2 MiB
 * classes THP-advised; all are slices of one mapping, see pool.c) carved by an
 * atomic bump pointer; freed chunks go on a lock-free LIFO per class whose
 * head is a {chunk index, tag} word, so any thread may free and any thread may
 * allocate, with no lock and no ABA.  Reservations are never unmapped while
 * the pools live, so a chunk's first word may be read by a racing pop.
 *
 * How much address space the pools reserve.  A reservation costs address
 * space, not memory, but address space is not free everywhere: RLIMIT_AS
 * (`ulimit -v`) counts it, valgrind gives a program about 126 GiB of it, and
 * sanitizers own most of it.  So the default is sized from the machine:
 * with P the physical memory (sysconf _SC_PHYS_PAGES), every node reserves
 * P for its 2 MiB class (state larger than 2 MiB per container ends there,
 * in 2 MiB segments), P/4 for 4 KiB (slabs of bins that outgrew their first
 * ones), P/16 for 128 B, 256 B and 512 B (a bin's first slabs) and P/8
 * for each other class (a bin's slabs of 1 or 2 KiB; a bin's containers
 * while they fit a segment): 2.6875 P per node.  When
 * RLIMIT_AS is set, P is at most room / (10.75 * nnodes), with room = the
 * limit minus the address space the
 * process already maps, so the pools take at most half of the room left
 * (mg_vm_room()).  Each class is rounded down to 2 MiB, at least 2 MiB.
 * mg_pools_config.reserve_bytes overrides the rule: every class then
 * reserves exactly that.  A class that runs out fails mg_chunk_alloc() with
 * -ENOMEM (callers pass it up: a dataflow ends with it), whatever the other
 * classes still hold; a reservation the process cannot map fails
 * mg_pools_create() with -ENOMEM.
 *
 * Concurrency of the entry points:
 *
 *   | pair                                      | may run concurrently  |
 *   |-------------------------------------------|-----------------------|
 *   | mg_chunk_alloc / mg_chunk_free (any mix)  | yes, any threads      |
 *   | mg_chunk_* / mg_pools_bytes_in_use        | yes (counters relaxed)|
 *   | mg_rehome_submit (any threads)            | yes                   |
 *   | mg_rehome_submit / mg_rehomer_stats       | yes (counters relaxed)|
 *   | mg_topology_* (read-only after create)    | yes, any threads      |
 *   | anything / mg_pools_destroy               | no                    |
 *   | mg_rehome_submit / mg_rehomer_destroy     | no                    |
 */
#ifndef MG_NUMA_H
#define MG_NUMA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu/wfcqueue.h>

#include "numa/mg_base.h"

#define MG_PAGE_SHIFT	    12
#define MG_PAGE_SIZE	    (1ul << MG_PAGE_SHIFT)
#define MG_CHUNK_MIN_SHIFT  7  /* 128 B */
#define MG_CHUNK_PAGE_SHIFT 12 /* 4 KiB: chunks below it share pages */
#define MG_CHUNK_MAX_SHIFT  21 /* 2 MiB */
#define MG_CHUNK_CLASSES    (MG_CHUNK_MAX_SHIFT - MG_CHUNK_MIN_SHIFT + 1)
#define MG_NUMA_MAX_NODES   64

/* ---- topology ------------------------------------------------------------ */

struct mg_topology;

/*
 * Read the process's topology: allowed CPUs (the calling thread's affinity
 * mask, so call it before pinning), their nodes, allowed memory nodes;
 * honours MG_NUMA_FAKE=N (decimal digits only, 1 <= N <= min(allowed CPUs,
 * MG_NUMA_MAX_NODES); unset or empty means no faking).
 * @out: gives a topology the caller destroys with mg_topology_destroy().
 * Context: any thread; allocates; not on the data path.
 * Return: 0; -EINVAL if MG_NUMA_FAKE is malformed or out of range;
 * -ERANGE if the allowed CPUs span more than MG_NUMA_MAX_NODES real nodes;
 * -ENOMEM.  On failure *@out is unchanged.
 */
int mg_topology_create(struct mg_topology **out);

/*
 * Like mg_topology_create() but split the allowed CPUs into @fake_nodes
 * virtual nodes regardless of the environment (tests).  @fake_nodes == 0
 * means "no faking".
 * Return: 0; -EINVAL if @fake_nodes exceeds the allowed CPUs or
 * MG_NUMA_MAX_NODES; -ERANGE (see above, only when @fake_nodes == 0);
 * -ENOMEM.
 */
int mg_topology_create_fake(struct mg_topology **out, unsigned fake_nodes);

/* Free @topo (takes it).  NULL is ignored. */
void mg_topology_destroy(struct mg_topology *topo);

/* Number of allowed CPUs (>= 1). */
unsigned mg_topology_ncpus(const struct mg_topology *topo);

/* Number of node indexes (>= 1). */
unsigned mg_topology_nnodes(const struct mg_topology *topo);

/* True if the node split is virtual (MG_NUMA_FAKE or create_fake). */
bool mg_topology_is_fake(const struct mg_topology *topo);

/*
 * The @i-th allowed CPU, ordered by node index, then CPU number.
 * Return: the CPU number; -EINVAL if @i >= ncpus.
 */
int mg_topology_cpu(const struct mg_topology *topo, unsigned i);

/*
 * The node index of @cpu.
 * Return: 0 and *@node; -EINVAL if @cpu is not an allowed CPU.
 */
int mg_topology_node_of_cpu(const struct mg_topology *topo, int cpu,
			    unsigned *node);

/*
 * The real libnuma node that memory of node index @node is bound to.
 * Return: the node number (>= 0); -EINVAL if @node >= nnodes.
 */
int mg_topology_mem_node(const struct mg_topology *topo, unsigned node);

/*
 * Place worker @worker of @nworkers: CPU mg_topology_cpu(worker % ncpus) and
 * its node index.  More workers than CPUs is allowed only with
 * @oversubscribe (they then share CPUs round-robin).  @cpu and @node may
 * each be NULL.
 * Return: 0; -EINVAL if @worker >= @nworkers, or @nworkers > ncpus without
 * @oversubscribe.  On failure *@cpu and *@node are unchanged.
 */
int mg_topology_place(const struct mg_topology *topo, unsigned worker,
		      unsigned nworkers, bool oversubscribe, int *cpu,
		      unsigned *node);

/*
 * Pin the calling thread to @cpu.
 * Context: any thread; a system call; not on the data path.
 * Return: 0; -EINVAL if @cpu is not an allowed CPU; -ENOMEM (only for
 * @cpu >= CPU_SETSIZE, which needs a heap cpu set); or the -errno of
 * pthread_setaffinity_np().  On failure the affinity is unchanged.
 */
int mg_pin_self(const struct mg_topology *topo, int cpu);

/* ---- page pools ----------------------------------------------------------- */

struct mg_pools;

struct mg_pools_config {
	/* Virtual bytes reserved per (node, size class); 0 = sized from the
	 * machine (see "How much address space" above).  Must be a multiple
	 * of 2 MiB, at most MG_POOL_RESERVE_MAX (512 GiB - 2 MiB).  Nothing is
	 * committed until touched. */
	size_t reserve_bytes;
	/* Bytes of 128 B..2 MiB chunks to fault in at creation per node and
	 * class (rounded up to whole chunks), so first touches do not land on
	 * the data path.  0 = none; at most the smallest class reservation.
	 * Prefaulted chunks are free (not in use) and handed out lowest
	 * address first. */
	size_t prefault_bytes;
};

/* Physical memory in bytes (sysconf; 16 GiB if it cannot tell). */
size_t mg_phys_bytes(void);

/*
 * Address space the process may still map: RLIMIT_AS's soft limit minus the
 * current VmSize (/proc/self/statm), or SIZE_MAX when there is no limit.
 * Context: any thread; reads a /proc file; not on the data path.
 */
size_t mg_vm_room(void);

/*
 * Create one page pool per node of @topo.
 * @topo: borrowed; must outlive the pools.  @cfg: borrowed; NULL = defaults.
 * Debug builds (numa/mg_fault.h) read the failure-injection knobs here and
 * count allocations from here on.
 * Context: control plane; allocates, maps memory.
 * Return: 0; -EINVAL for a bad @cfg or (debug builds) a malformed MG_FAIL_*
 * knob; -ENOMEM if the reservations cannot be mapped (e.g. beyond
 * RLIMIT_AS) or the prefault fails.  On failure *@out is unchanged and
 * nothing stays mapped.
 */
int mg_pools_create(struct mg_pools **out, const struct mg_topology *topo,
		    const struct mg_pools_config *cfg);

/* Unmap everything (takes @pools; NULL is ignored).  No chunk may be used
 * afterwards. */
void mg_pools_destroy(struct mg_pools *pools);

/*
 * Allocate one chunk of 2^@shift bytes from node @node's pool, aligned to its
 * size.  Its contents are unspecified (fresh chunks are zero).
 * @out: gives the chunk; return it with mg_chunk_free() from any thread.
 * Context: any thread, lock-free, never blocks or calls malloc; may take a
 * page fault on a chunk's first use unless prefaulted.
 * Ordering: the chunk's previous contents written before its mg_chunk_free()
 * happen-before this return (acq_rel on the free list head).
 * Return: 0; -EINVAL if @node >= nnodes or @shift is outside
 * [MG_CHUNK_MIN_SHIFT, MG_CHUNK_MAX_SHIFT]; -ENOMEM if the class's
 * reservation is exhausted, or (debug builds) MG_FAIL_CHUNK picked this
 * allocation (numa/mg_fault.h).  On failure *@out is unchanged.
 */
int mg_chunk_alloc(struct mg_pools *pools, unsigned node, unsigned shift,
		   void **out);

/*
 * Return @chunk (2^@shift bytes, from mg_chunk_alloc()) to its pool.
 * Context: any thread, lock-free.  A pointer that is not a live chunk of
 * that size is a bug (MG_BUG).
 */
void mg_chunk_free(struct mg_pools *pools, void *chunk, unsigned shift);

/*
 * The node index whose pool @addr (anywhere inside a chunk) came from.
 * This is the pool's home, not necessarily where the pages now are.
 * Return: 0 and *@node; -EINVAL if @addr is not inside any reservation.
 */
int mg_chunk_node(const struct mg_pools *pools, const void *addr,
		  unsigned *node);

/* Bytes each node reserves for chunks of 2^@shift bytes; 0 for a bad
 * @shift.  Read-only after creation. */
size_t mg_pools_reserved(const struct mg_pools *pools, unsigned shift);

/*
 * Bytes of chunks currently allocated (not free) from node @node's pool.
 * Context: any thread; an approximate snapshot while others allocate.
 * Return: the byte count; 0 for an unknown node.
 */
size_t mg_pools_bytes_in_use(const struct mg_pools *pools, unsigned node);

/* ---- re-homing ------------------------------------------------------------ */

struct mg_range {
	void *addr;   /* page aligned */
	size_t bytes; /* multiple of MG_PAGE_SIZE */
};

enum mg_rehome_state {
	MG_REHOME_IDLE = 0,
	MG_REHOME_QUEUED,
	MG_REHOME_DONE,
};

/*
 * A request to move the pages of some ranges to node index @target.  Owned by
 * the caller, who must keep it and @ranges alive until @state reads
 * MG_REHOME_DONE (acquire).  Fields are public unless marked private.
 */
struct mg_rehome_req {
	struct cds_wfcq_node qnode;    /* private */
	const struct mg_range *ranges; /* public: set before submit */
	unsigned nranges;	       /* public: set before submit */
	unsigned target;	       /* public: set before submit */
	_Atomic int state;	       /* read-only: enum mg_rehome_state */
	uint64_t pages_examined;       /* read-only, valid once DONE */
	uint64_t pages_moved;	       /* read-only, valid once DONE */
	int error; /* read-only, valid once DONE: 0/-errno */
};

struct mg_rehomer;

struct mg_rehomer_config {
	/* Rate limit in pages per second; 0 = default 262144 (1 GiB/s).  Every
	 * page examined counts (moved or not), with a burst of one batch of
	 * at most 512 pages, so a request of P pages takes at least
	 * (P - 512) / pages_per_sec seconds. */
	uint64_t pages_per_sec;
};

/*
 * Start the background re-homing thread.
 * @topo: borrowed, must outlive the rehomer.  @cfg: NULL = defaults.
 * Context: control plane; allocates, creates a thread.
 * Return: 0; -ENOMEM; -EAGAIN (or another -errno of pthread_create()) if
 * the thread cannot be created.  On failure *@out is unchanged.
 */
int mg_rehomer_create(struct mg_rehomer **out, const struct mg_topology *topo,
		      const struct mg_rehomer_config *cfg);

/*
 * Finish every queued request, stop the thread and free @r (takes it;
 * NULL is ignored).  Every submit must have returned before this is called.
 * Context: control plane; blocks until the queue is drained (no longer at
 * the rate limit: the one request in progress may still sleep one batch).
 */
void mg_rehomer_destroy(struct mg_rehomer *r);

/*
 * Queue @req (shares it until its state is MG_REHOME_DONE).  Pages already on
 * the target's real node are counted as examined, not moved: on a one-node
 * machine every request is a measured no-op.  Pages never touched (or only
 * read: the zero page) are examined and left alone.  A request whose state
 * reads DONE may be submitted again; its results are then overwritten.
 * Context: any thread; wait-free (one wfcqueue enqueue, plus one FUTEX_WAKE
 * system call if the rehomer is idle), never allocates or blocks: safe on
 * the data path.
 * Ordering: the request's fields written before submit are visible to the
 * rehomer (release in the enqueue); its results are published by a release
 * store of @state = MG_REHOME_DONE.
 * Return: 0; -EINVAL if @req->target >= nnodes, a range is not page aligned,
 * or @req is already queued (nothing is queued then).
 */
int mg_rehome_submit(struct mg_rehomer *r, struct mg_rehome_req *req);

/* Totals since creation: requests done, pages examined, pages moved (any
 * pointer may be NULL).  They include every request whose DONE the caller
 * has read (acquire). */
void mg_rehomer_stats(const struct mg_rehomer *r, uint64_t *requests,
		      uint64_t *pages_examined, uint64_t *pages_moved);

#endif /* MG_NUMA_H */
