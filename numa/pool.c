/*
 * pool.c - node-local page pools: lock-free chunk allocation.
 *
 * Layout.  One virtual mapping (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
 * 2 MiB aligned) holds one *block* per node index, 2^node_shift bytes apart
 * (the block size rounded up to a power of two), so an address maps to its
 * node with one subtraction and one shift: mg_chunk_free() and
 * mg_chunk_node() are O(1) however many nodes there are.  A node's block is
 * its classes' reservations back to back, class 0 (128 B) first, each a
 * multiple of 2 MiB long, so every chunk is naturally aligned:
 *
 *   base                           base + 1<<node_shift
 *   | n0/128 | n0/256 | ... | n0/2M | gap | n1/128 | ... | n(N-1)/2M |
 *   each (node, class) *slot*: [ chunk 0 | chunk 1 | ... | nchunks-1 ]
 *
 * Slot = node * MG_CHUNK_CLASSES + class.  Every slot is PROT_READ |
 * PROT_WRITE, mbind(MPOL_PREFERRED) to the node's real memory node, and for
 * the sub-page classes and the 2 MiB class MADV_HUGEPAGE (sub-page chunks
 * are the first slabs of bins: thousands of small bins then share a few
 * huge pages, and a TLB entry covers many of them).  The gap between two blocks, if any, is
 * PROT_NONE so a stray pointer faults; the last block has none, so one node
 * costs exactly the sum of its reservations.  Nothing is committed until it
 * is touched, and nothing is unmapped before mg_pools_destroy().
 *
 * Sizes (the rule the header states, measured with the benchmarks).  Chunks
 * of a class come from that class's reservation only, and which class holds
 * most state depends on the bins: every bin with state owns a first slab of
 * 128 B .. 2 KiB (migration/arena.c; 2^20 bins with a key or two each:
 * 128 MiB per operator), a bigger one 4 KiB slabs; a container of a bin lives in one
 * segment of 8 KiB .. 2 MiB until it outgrows 2 MiB (keycount, 4096 bins:
 * 12M keys put 256 MiB in the 64 KiB class, 96M keys 2 GiB in the 512 KiB
 * class; NEXMark Q3..Q8 tens of MiB in 4 KiB and 8 KiB); beyond 2 MiB it is
 * 2 MiB segments, so the 2 MiB class is the only one whose share has no
 * bound but memory.  Channels take one chunk of up to 2 MiB each for their
 * batches (4 for copy mode's state channels).  So by default, with P the
 * physical memory, each node reserves P for the 2 MiB class, P/4 for 4 KiB,
 * P/16 for 128 B, 256 B and 512 B (2^20 bins with a key or two take
 * 128 MiB there) and P/8 for each other class (SHARE_*): 2.6875 P of
 * address space per node, never committed beyond what is touched.  Under
 * RLIMIT_AS, P is at most room / (10.75 * nnodes), room being the limit
 * minus the address space already mapped: the pools then take at most half of what is left, even
 * with a gap after every block.
 *
 * MPOL_PREFERRED, not MPOL_BIND: a full node then serves from another node
 * (which the rehomer can fix later) instead of killing the process with
 * SIGBUS/OOM on a first touch on the data path.  If mbind is refused
 * (EPERM/ENOSYS in a container, or NUMA unavailable) memory is left to the
 * task's policy; only ENOMEM fails mg_pools_create().
 *
 * Per slot, struct pool_class holds the shared state on two cache lines:
 *   head    {tag:32 | index+1:32} of the free list top; 0 in the low half
 *           means empty.  Written (CAS) by every pop and push.
 *   in_use  chunks handed out and not freed; relaxed counter, on the head's
 *           line because the same operations already own that line.
 *   bump    chunks carved so far from the reservation (may run past
 *           nchunks when allocations fail).  Written (fetch_add) only by
 *           allocations that find the free list empty, so steady state
 *           never writes it.
 * Everything in struct mg_pools outside cls[] is read-only after creation.
 *
 * Free list.  A free chunk's first 8 bytes hold the link: the head word's
 * low half (next index+1, or 0) as it was when the chunk was pushed.
 *   push(c): link(c) = head.low; CAS head: {tag, x} -> {tag, c+1}  (release)
 *   pop():   read head {tag, a+1} (acquire); n = link(a);
 *            CAS head: {tag, a+1} -> {tag+1, n}                    (acquire)
 * Invariants:
 *   I1 A chunk is either on exactly one free list, or owned by exactly one
 *      caller, or not yet carved (index >= bump); never two of these.
 *   I2 Only a pop changes the tag, and always by one.  A value {t, a+1} can
 *      therefore reappear in the head only after 2^32 pops: for a to be on
 *      top again with the same tag it must have been popped (I1), which
 *      changes the tag.  So a pop's CAS succeeds only if no other pop or
 *      push completed since it read the head, and the link it read is the
 *      one its push wrote.  Pushes need no tag: a push's CAS replaces
 *      exactly the top it linked to, whatever happened in between.
 *   I3 A pop may read link(a) after another thread popped a and started
 *      writing to it.  The value is garbage but its CAS must fail (I2), and
 *      the read cannot fault because reservations stay mapped.  The link is
 *      read and written with relaxed atomics; the owner's accesses are
 *      plain, so strictly this is an atomic/plain race that C11 leaves
 *      undefined; every supported target gives the garbage-then-failed-CAS
 *      behaviour described here.  ThreadSanitizer would report it, so it
 *      is told not to check that one load (MG_TSAN_IGNORE_*, mg_base.h).
 *
 * Who reads what: alloc reads head (and the link of the top), may bump,
 * adds to in_use; free subtracts from in_use, writes the chunk's link and
 * CASes head; mg_pools_bytes_in_use() reads in_use of the node's classes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <numa.h>
#include <numaif.h>

#include "numa/mg_fault.h"
#include "numa/mg_numa.h"

#define TWO_MIB (1ull << MG_CHUNK_MAX_SHIFT)
/* The default share of each class, in sixteenths of the physical memory. */
#define SUB_CLASSES 3u /* 128 B .. 512 B: first slabs of bins */
#define SHARE_SUB   1u
#define SHARE_4K    4u
#define SHARE_MID   2u
#define SHARE_2M    16u
#define SHARE_TOTAL                           \
	(SUB_CLASSES * SHARE_SUB + SHARE_4K + \
	 (MG_CHUNK_CLASSES - SUB_CLASSES - 2) * SHARE_MID + SHARE_2M)
#define PAGE_CLASS (MG_CHUNK_PAGE_SHIFT - MG_CHUNK_MIN_SHIFT)
/* Used when sysconf() cannot tell the physical memory. */
#define PHYS_FALLBACK (16ull << 30)
/* Largest reservation whose smallest chunks' count, plus one, fits 32 bits. */
#define RESERVE_MAX ((1ull << (32 + MG_CHUNK_MIN_SHIFT)) - TWO_MIB)
_Static_assert(RESERVE_MAX == MG_POOL_RESERVE_MAX, "the public limit");
#define LOW_MASK 0xffffffffull
#define TAG_ONE	 (1ull << 32)
#define NO_CHUNK UINT32_MAX
/* Bits of the nodemask handed to mbind(): libnuma's possible-node limit. */
#define MASK_BITS 1024

struct pool_class {
	/* Pop and push: the free list top and the in-use count. */
	MG_CACHE_ALIGNED _Atomic uint64_t head;
	_Atomic uint64_t in_use;
	/* Carving fresh chunks only. */
	MG_CACHE_ALIGNED _Atomic uint64_t bump;
};

_Static_assert(offsetof(struct pool_class, head) % MG_CACHE_LINE == 0,
	       "free-list head starts a cache line");
_Static_assert(offsetof(struct pool_class, bump) -
			       offsetof(struct pool_class, head) >=
		       MG_CACHE_LINE,
	       "bump is not on the free-list head's line");
_Static_assert(sizeof(struct pool_class) % MG_CACHE_LINE == 0,
	       "classes do not share lines");

struct mg_pools {
	/* Read-only after mg_pools_create(). */
	MG_CACHE_ALIGNED char *base; /* node 0's block; 2 MiB aligned */
	size_t node_bytes;	     /* one block: the sum of reserve[] */
	unsigned node_shift;	     /* log2 of the distance between blocks */
	unsigned nnodes;
	unsigned nslots;
	size_t reserve[MG_CHUNK_CLASSES]; /* bytes of each (node, class) */
	size_t offset[MG_CHUNK_CLASSES];  /* where a class starts in a block */
	struct pool_class cls[];	  /* [nslots] */
};

_Static_assert(offsetof(struct mg_pools, cls) % MG_CACHE_LINE == 0,
	       "read-only header does not share a line with class 0");

static unsigned
class_of(unsigned shift)
{
	return shift - MG_CHUNK_MIN_SHIFT;
}

static char *
slot_base(const struct mg_pools *p, unsigned slot)
{
	unsigned node = slot / MG_CHUNK_CLASSES, k = slot % MG_CHUNK_CLASSES;

	return p->base + ((size_t)node << p->node_shift) + p->offset[k];
}

/* Bytes of the mapping: every block, the gaps between them, no tail. */
static size_t
mapped_bytes(const struct mg_pools *p)
{
	return ((size_t)(p->nnodes - 1) << p->node_shift) + p->node_bytes;
}

static _Atomic uint64_t *
link_of(char *sbase, unsigned shift, uint32_t idx)
{
	return (void *)(sbase + ((size_t)idx << shift));
}

/* Pop the free list of a class; the chunk index or NO_CHUNK. */
static uint32_t
pop(struct pool_class *c, char *sbase, unsigned shift)
{
	uint64_t old, next;
	uint32_t top;

	/*
	 * ORDER(pool.A1): pairs with pool.R1 in push(); without it the link read below
	 * could predate the pusher's store to it, and the chunk's old owner's
	 * writes could land after we hand the chunk out.
	 */
	old = atomic_load_explicit(&c->head, memory_order_acquire);
	do {
		top = (uint32_t)(old & LOW_MASK);
		if (top == 0)
			return NO_CHUNK;
		/*
		 * Relaxed: A1/A2 ordered it after the push that wrote it; if
		 * another pop took the chunk meanwhile the value is garbage
		 * and the CAS below fails (I2, I3).  The race I3 describes is
		 * the algorithm's, so TSan does not check this one load.
		 */
		MG_TSAN_IGNORE_BEGIN();
		next = atomic_load_explicit(link_of(sbase, shift, top - 1),
					    memory_order_relaxed);
		MG_TSAN_IGNORE_END();
		/*
		 * ORDER(pool.A2): pairs with pool.R1.  On failure it acquires the new
		 * top before its link is read, as A1 does; without it the next
		 * iteration could read a stale link.  On success the value is
		 * the one A1/A2 already acquired (I2), so it costs nothing and
		 * keeps the caller's use of the chunk after the pop.
		 */
	} while (!atomic_compare_exchange_weak_explicit(
		&c->head, &old,
		((old & ~LOW_MASK) + TAG_ONE) | (next & LOW_MASK),
		memory_order_acquire, memory_order_acquire));
	return top - 1;
}

/* Push chunk @idx on the free list of a class. */
static void
push(struct pool_class *c, char *sbase, unsigned shift, uint32_t idx)
{
	_Atomic uint64_t *link = link_of(sbase, shift, idx);
	uint64_t old;

	/* Relaxed: only a guess at the top; the CAS checks it. */
	old = atomic_load_explicit(&c->head, memory_order_relaxed);
	do {
		/* Relaxed: published by R1. */
		atomic_store_explicit(link, old & LOW_MASK,
				      memory_order_relaxed);
		/*
		 * ORDER(pool.R1): pairs with pool.A1/pool.A2 in pop(); without it a popper
		 * could read a stale link (and corrupt the list) or see the
		 * freeing thread's last writes to the chunk after its own.
		 * Failure relaxed: the link is rewritten before the retry.
		 */
	} while (!atomic_compare_exchange_weak_explicit(
		&c->head, &old, (old & ~LOW_MASK) | ((uint64_t)idx + 1),
		memory_order_release, memory_order_relaxed));
}

/* Carve a fresh chunk; its index or NO_CHUNK when exhausted. */
static uint32_t
carve(struct pool_class *c, uint64_t nchunks)
{
	uint64_t i;

	/*
	 * Relaxed (both): the index is the only thing shared, and fetch_add
	 * hands each index to exactly one caller.  The pre-check keeps failed
	 * allocations from hammering the line once the class is exhausted.
	 */
	if (atomic_load_explicit(&c->bump, memory_order_relaxed) >= nchunks)
		return NO_CHUNK;
	i = atomic_fetch_add_explicit(&c->bump, 1, memory_order_relaxed);
	return i < nchunks ? (uint32_t)i : NO_CHUNK;
}

/* mg_chunk_alloc() without failure injection (prefaulting uses it). */
static int
chunk_alloc(struct mg_pools *pools, unsigned node, unsigned shift, void **out)
{
	struct pool_class *c;
	unsigned slot;
	uint32_t idx;
	char *sbase;

	if (node >= pools->nnodes || shift < MG_CHUNK_MIN_SHIFT ||
	    shift > MG_CHUNK_MAX_SHIFT)
		return -EINVAL;
	slot = node * MG_CHUNK_CLASSES + class_of(shift);
	c = &pools->cls[slot];
	sbase = slot_base(pools, slot);
	idx = pop(c, sbase, shift);
	if (idx == NO_CHUNK) {
		idx = carve(c, pools->reserve[class_of(shift)] >> shift);
		if (idx == NO_CHUNK)
			return -ENOMEM;
	}
	/* Relaxed: a statistic; see mg_pools_bytes_in_use(). */
	atomic_fetch_add_explicit(&c->in_use, 1, memory_order_relaxed);
	*out = sbase + ((size_t)idx << shift);
	return 0;
}

int
mg_chunk_alloc(struct mg_pools *pools, unsigned node, unsigned shift,
	       void **out)
{
	/* Debug builds: a refusal the caller must handle anyway (mg_fault.h);
	 * bad arguments are still -EINVAL first. */
	if (MG_UNLIKELY(mg__fault_fail(MG_FAULT_CHUNK)) &&
	    node < pools->nnodes && shift >= MG_CHUNK_MIN_SHIFT &&
	    shift <= MG_CHUNK_MAX_SHIFT)
		return -ENOMEM;
	return chunk_alloc(pools, node, shift, out);
}

void
mg_chunk_free(struct mg_pools *pools, void *chunk, unsigned shift)
{
	uintptr_t off = (uintptr_t)chunk - (uintptr_t)pools->base;
	uint64_t idx, carved;
	struct pool_class *c;
	unsigned node, k;

	if (MG_UNLIKELY(shift < MG_CHUNK_MIN_SHIFT ||
			shift > MG_CHUNK_MAX_SHIFT))
		MG_BUG("mg_chunk_free: bad shift %u", shift);
	node = (unsigned)(off >> pools->node_shift);
	k = class_of(shift);
	off &= ((uintptr_t)1 << pools->node_shift) - 1;
	if (MG_UNLIKELY((uintptr_t)chunk < (uintptr_t)pools->base ||
			node >= pools->nnodes || off < pools->offset[k] ||
			off - pools->offset[k] >= pools->reserve[k]))
		MG_BUG("mg_chunk_free: %p is not a 2^%u chunk", chunk, shift);
	off -= pools->offset[k];
	idx = off >> shift;
	c = &pools->cls[node * MG_CHUNK_CLASSES + k];
	/*
	 * Relaxed: the carve of a live chunk happens-before its free (the
	 * caller passed the chunk on), so bump already counts it.
	 */
	carved = atomic_load_explicit(&c->bump, memory_order_relaxed);
	if (MG_UNLIKELY((off & ((1ull << shift) - 1)) || idx >= carved))
		MG_BUG("mg_chunk_free: %p was never handed out as a 2^%u chunk",
		       chunk, shift);
	/*
	 * Relaxed: a statistic.  Cannot underflow: the matching increment
	 * happens-before this decrement, so it precedes it in the counter's
	 * modification order.
	 */
	atomic_fetch_sub_explicit(&c->in_use, 1, memory_order_relaxed);
	push(c, slot_base(pools, node * MG_CHUNK_CLASSES + k), shift,
	     (uint32_t)idx);
}

int
mg_chunk_node(const struct mg_pools *pools, const void *addr, unsigned *node)
{
	uintptr_t off = (uintptr_t)addr - (uintptr_t)pools->base;
	uintptr_t n = off >> pools->node_shift;

	if ((uintptr_t)addr < (uintptr_t)pools->base || n >= pools->nnodes)
		return -EINVAL;
	if ((off & (((uintptr_t)1 << pools->node_shift) - 1)) >=
	    pools->node_bytes)
		return -EINVAL; /* in a PROT_NONE gap */
	*node = (unsigned)n;
	return 0;
}

size_t
mg_pools_reserved(const struct mg_pools *pools, unsigned shift)
{
	if (shift < MG_CHUNK_MIN_SHIFT || shift > MG_CHUNK_MAX_SHIFT)
		return 0;
	return pools->reserve[class_of(shift)];
}

size_t
mg_pools_bytes_in_use(const struct mg_pools *pools, unsigned node)
{
	const struct pool_class *c;
	size_t bytes = 0;
	unsigned k;

	if (node >= pools->nnodes)
		return 0;
	c = &pools->cls[node * MG_CHUNK_CLASSES];
	for (k = 0; k < MG_CHUNK_CLASSES; k++)
		/* Relaxed: an approximate snapshot is the contract. */
		bytes += (size_t)atomic_load_explicit(&c[k].in_use,
						      memory_order_relaxed)
			 << (k + MG_CHUNK_MIN_SHIFT);
	return bytes;
}

/* ---- creation ------------------------------------------------------------ */

size_t
mg_phys_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || size <= 0)
		return PHYS_FALLBACK;
	return (size_t)pages * (size_t)size;
}

size_t
mg_vm_room(void)
{
	unsigned long long pages;
	struct rlimit rl;
	size_t used = 0;
	FILE *f;

	if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	/* The first field of statm is VmSize in pages; if /proc cannot be
	 * read, count nothing as used: a too large guess only fails later,
	 * with -ENOMEM from mmap(). */
	f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%llu", &pages) == 1)
			used = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
		fclose(f);
	}
	return rl.rlim_cur > used ? (size_t)(rl.rlim_cur - used) : 0;
}

/* The default reservation of every class, per the rule in the header. */
static void
default_reserves(unsigned nnodes, size_t reserve[MG_CHUNK_CLASSES])
{
	size_t p = mg_phys_bytes(), room = mg_vm_room(), r;
	unsigned k, share;

	/* Half the room, halved again for the gaps, holds nnodes blocks of
	 * SHARE_TOTAL sixteenths of p: p <= room / (10.75 * nnodes). */
	if (room != SIZE_MAX && room / (4u * nnodes) / SHARE_TOTAL * 16 < p)
		p = room / (4u * nnodes) / SHARE_TOTAL * 16;
	for (k = 0; k < MG_CHUNK_CLASSES; k++) {
		share = k < SUB_CLASSES ? SHARE_SUB : SHARE_MID;
		if (k == PAGE_CLASS)
			share = SHARE_4K;
		if (k == MG_CHUNK_CLASSES - 1)
			share = SHARE_2M;
		r = (p / 16 * share) & ~(size_t)(TWO_MIB - 1);
		if (r < TWO_MIB)
			r = TWO_MIB;
		reserve[k] = r > RESERVE_MAX ? RESERVE_MAX : r;
	}
}

static int
check_config(const struct mg_pools_config *cfg, unsigned nnodes,
	     size_t reserve[MG_CHUNK_CLASSES], size_t *prefault)
{
	unsigned k;

	*prefault = cfg ? cfg->prefault_bytes : 0;
	if (cfg && cfg->reserve_bytes) {
		if (cfg->reserve_bytes % TWO_MIB ||
		    cfg->reserve_bytes > RESERVE_MAX)
			return -EINVAL;
		for (k = 0; k < MG_CHUNK_CLASSES; k++)
			reserve[k] = cfg->reserve_bytes;
	} else {
		default_reserves(nnodes, reserve);
	}
	for (k = 0; k < MG_CHUNK_CLASSES; k++)
		if (*prefault > reserve[k])
			return -EINVAL;
	return 0;
}

/* Bind a reservation to @mem; only running out of memory is fatal. */
static int
bind_slot(char *addr, size_t len, int mem)
{
	unsigned long mask[MASK_BITS / (8 * sizeof(unsigned long))];

	if (mem < 0 || mem >= MASK_BITS)
		return 0;
	memset(mask, 0, sizeof(mask));
	mask[(unsigned)mem / (8 * sizeof(unsigned long))] =
		1ul << ((unsigned)mem % (8 * sizeof(unsigned long)));
	/* maxnode counts one past the last bit the kernel reads. */
	if (mbind(addr, len, MPOL_PREFERRED, mask, MASK_BITS + 1, 0) != 0 &&
	    errno == ENOMEM)
		return -ENOMEM;
	return 0;
}

/* Fault in [addr, addr + len) for writing. */
static int
populate(char *addr, size_t len)
{
	size_t off;

#ifdef MADV_POPULATE_WRITE
	if (madvise(addr, len, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL) /* EINVAL: kernel < 5.14 */
		return -ENOMEM;
#endif
	for (off = 0; off < len; off += MG_PAGE_SIZE)
		addr[off] = 0;
	return 0;
}

/* Allocate, fault in and free the first @bytes (rounded up) of a class. */
static int
prefault_class(struct mg_pools *p, unsigned node, unsigned shift, size_t bytes)
{
	size_t n = (bytes + (1ull << shift) - 1) >> shift, i;
	void *chunk, *first = NULL;
	int err;

	for (i = 0; i < n; i++) {
		err = chunk_alloc(p, node, shift, &chunk);
		if (err)
			return err; /* cannot happen: prefault <= reserve */
		if (!first)
			first = chunk;
		/* A fresh pool carves in address order. */
		MG_ASSERT((char *)chunk == (char *)first + (i << shift));
	}
	err = populate(first, n << shift);
	/* Free in reverse so the lowest chunk is handed out first. */
	while (n--)
		mg_chunk_free(p, (char *)first + (n << shift), shift);
	return err;
}

int
mg_pools_create(struct mg_pools **out, const struct mg_topology *topo,
		const struct mg_pools_config *cfg)
{
	size_t reserve[MG_CHUNK_CLASSES], prefault, total, head;
	unsigned nnodes = mg_topology_nnodes(topo), node, k, slot;
	struct mg_pools *p;
	bool numa = numa_available() >= 0;
	char *map, *base;
	int err;

	err = check_config(cfg, nnodes, reserve, &prefault);
	if (!err) /* debug builds: the injection knobs, counted from here */
		err = mg__fault_load();
	if (err)
		return err;
	p = aligned_alloc(MG_CACHE_LINE, sizeof(*p) + sizeof(p->cls[0]) *
							      nnodes *
							      MG_CHUNK_CLASSES);
	if (!p)
		return -ENOMEM;
	memset(p, 0, sizeof(*p));
	p->nnodes = nnodes;
	p->nslots = nnodes * MG_CHUNK_CLASSES;
	for (k = 0; k < MG_CHUNK_CLASSES; k++) {
		p->reserve[k] = reserve[k];
		p->offset[k] = p->node_bytes;
		p->node_bytes += reserve[k];
	}
	p->node_shift = mg_log2_ceil(p->node_bytes);
	for (slot = 0; slot < p->nslots; slot++) {
		atomic_init(&p->cls[slot].head, 0);
		atomic_init(&p->cls[slot].in_use, 0);
		atomic_init(&p->cls[slot].bump, 0);
	}

	/*
	 * Read-write at once, then the gaps between blocks PROT_NONE: never
	 * mprotect a reservation to accessible.  Valgrind's memcheck handles
	 * that byte by byte (80 GiB took it 17 minutes and 21 GiB of shadow
	 * memory), while fresh mappings and PROT_NONE cost it nothing.
	 */
	total = mapped_bytes(p);
	map = mmap(NULL, total + TWO_MIB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED) {
		free(p);
		return -ENOMEM;
	}
	base = (char *)(((uintptr_t)map + TWO_MIB - 1) &
			~(uintptr_t)(TWO_MIB - 1));
	head = (size_t)(base - map);
	if (head)
		munmap(map, head);
	munmap(base + total, TWO_MIB - head);
	p->base = base;

	for (node = 0; node < nnodes; node++) {
		int mem = mg_topology_mem_node(topo, node);
		char *b = slot_base(p, node * MG_CHUNK_CLASSES);

		err = -ENOMEM;
		if (node + 1 < nnodes &&
		    mprotect(b + p->node_bytes,
			     ((size_t)1 << p->node_shift) - p->node_bytes,
			     PROT_NONE))
			goto fail;
		if (numa && bind_slot(b, p->node_bytes, mem))
			goto fail;
		/* Failure (no THP in this kernel) only costs TLB. */
		for (k = 0; k < PAGE_CLASS; k++)
			(void)madvise(slot_base(p, node * MG_CHUNK_CLASSES + k),
				      reserve[k], MADV_HUGEPAGE);
		(void)madvise(slot_base(p, node * MG_CHUNK_CLASSES +
						   MG_CHUNK_CLASSES - 1),
			      reserve[MG_CHUNK_CLASSES - 1], MADV_HUGEPAGE);
	}
	for (node = 0; prefault && node < nnodes; node++) {
		for (k = 0; k < MG_CHUNK_CLASSES; k++) {
			err = prefault_class(p, node, k + MG_CHUNK_MIN_SHIFT,
					     prefault);
			if (err)
				goto fail;
		}
	}
	*out = p;
	return 0;

fail:
	munmap(p->base, total);
	free(p);
	return err;
}

void
mg_pools_destroy(struct mg_pools *pools)
{
	if (!pools)
		return;
	munmap(pools->base, mapped_bytes(pools));
	free(pools);
}
