/*
 * arena.c - the bin arena: all of a bin's memory, in chunks of the page pool.
 *
 * Chunks.  The arena owns chunks of the pool (numa/mg_numa.h): 128 B ..
 * 2 MiB, naturally aligned.  Each chunk is one of
 *   - a large block, handed out whole (requests of 2 KiB + 1 .. 2 MiB,
 *     rounded up to a power of two);
 *   - a slab, carved into small blocks: the arena's first slab is 128 B (or
 *     what its first block needs), each next one twice the larger of the
 *     last and the one before up to a page, 4 KiB, except that a block of a
 *     quarter of that size or more gets a slab of its own size
 *     (next_slab_shift()) -- so a bin with a little state owns one 128 B
 *     sub-page chunk, sharing a page (a huge page, THP permitting) with
 *     other bins, a container's doubling table takes a slab its size each
 *     time, and a bin that grows soon takes whole pages;
 *   - the directory, once it outgrows a small block.
 * Chunks may come from different nodes (the migration layer points `node` at
 * the new owner's node after a handoff); mg_chunk_free() finds a chunk's pool
 * from its address, so nothing here records the node of a chunk.
 *
 * Directory.  An array of one-word entries listing every chunk the arena
 * owns, *including the chunk that holds the directory itself*, so that
 * `bytes` is the sum of the listed sizes, mg_arena_ranges() is the list and
 * mg_arena_release() frees the list (the directory's own chunk last).  An
 * arena of one chunk keeps its one entry in the struct (dir_one, dir_shift
 * 0), so a bin of one 128 B chunk needs no directory block:
 *
 *   used slot   chunk address | (shift - 7)         low nibble 0 .. 14
 *   free slot   (next free slot + 1) << 4 | 0xf     low nibble 0xf
 *
 * Slots [0, ndir) are used or on the free-slot list (head dir_free, slot + 1,
 * 0 = empty); a freed large block's slot is reused before ndir grows.  The
 * directory is allocated from the arena itself: a small block of 32 B .. 2
 * KiB (4 .. 256 entries: the first must hold the struct's entry, its own
 * slab's and one more) while it fits one -- a free block if there is one,
 * else carved -- then a chunk of 4 KiB .. 2 MiB (512 .. 2^18 entries),
 * doubling when full.  So an arena owns at most 2^18 chunks.  Finding a large
 * block's slot on free is a backward scan of the directory: large blocks are
 * freed when a container grows or is cleared, which costs in proportion to
 * the memory involved anyway.
 *
 * Small blocks.  Classes 16 B, 32 B, .. 2 KiB (class c holds 16 << c bytes),
 * all 16-byte aligned.  A free block's first word links to the next free
 * block of its class.  The heads of the 16 B and 32 B lists are in the
 * struct; those of 64 B .. 2 KiB in a 64 B block, the first 64 B of the first
 * such block ever freed (or cut from a retired slab's tail) -- so the arena
 * struct holds two heads, not eight, in every bin.  That block is never
 * freed alone and, like the directory, is not live.  An allocation takes,
 * in order: (1) the head of its class's list; (2) the next bytes of the
 * current slab; (3) a free block of a larger class, halved down to size, the
 * upper halves going on the lists in between; (4) a fresh slab, sized by
 * next_slab_shift() for the block and a small directory growing to list the
 * slab.  A fresh arena's first block may instead be a *root*
 * (mg_arena_zalloc_root()): carved at its size rounded to 16, not to a
 * power of two, and never freed alone -- a bin's own block, so that it and
 * a key or two (in a map's handle) fill the first 128 B slab.  When a fresh
 * slab replaces the current one, the old one's unused tail is cut into
 * power-of-two blocks on the free lists, so no byte of a slab is lost.  Slabs go back to the pool
 * only in mg_arena_release(): a bin's small blocks are its root state and
 * container handles, which live as long as the bin.
 *
 * Moving pages.  A sub-page chunk shares its page with chunks of other
 * arenas, so it cannot follow its bin to another node: mg_arena_ranges()
 * lists the arena's chunks of a page or more only -- re-homing moves those,
 * and a bin's first slab stays where it was born.
 *
 * Accounting.  bytes = sizes of the chunks owned (the directory included);
 * live = sizes of the blocks handed out and not freed (the request rounded up
 * to its class or chunk), so live <= bytes.  The directory and the heads
 * block are not live.  Both count 16 B units in 32 bits (the struct is 72
 * bytes, so a bin's header is 80): an arena owns at most 64 GiB, and a
 * chunk that would pass that is refused with -ENOMEM (take_chunk()).
 *
 * Invariants.
 *   A1  slab_used == 1 << slab_shift (1) when there is no current slab, so
 *       the carve test needs no NULL check; with a slab, slab_used is a
 *       multiple of 16.
 *   A2  Every small block, free or live, and the current slab lie in listed
 *       slabs.
 *   A3  Failure changes nothing: each path first takes the one chunk it may
 *       need from the pool and only then links it in, and the only later step
 *       that can fail (growing a chunk-sized directory) fails before touching
 *       anything.  An -ENOMEM leaves bytes, live, lists and directory as they
 *       were.
 *
 * The struct holds no pointer into itself, so it may be copied (the engine
 * keeps a bin's arena inside the bin, which lives in the arena).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "migration/mg_state.h"
#include "numa/mg_fault.h"

#define SMALL_MIN_SHIFT	 4  /* 16 B */
#define SMALL_MAX_SHIFT	 11 /* 2 KiB */
#define SMALL_MAX	 (1u << SMALL_MAX_SHIFT)
#define SMALL_CLASSES	 (SMALL_MAX_SHIFT - SMALL_MIN_SHIFT + 1)
#define SLAB_FIRST_SHIFT 7 /* 128 B: a bin with a key or a few */
#define SLAB_MAX_SHIFT	 MG_CHUNK_PAGE_SHIFT
#define LARGE_MAX	 ((size_t)1 << MG_CHUNK_MAX_SHIFT)
#define DIR_MIN_SHIFT	 5 /* 4 entries: the first block of a directory */
#define UNIT_SHIFT	 4 /* bytes16, live16: 16 B units, 64 GiB at most */
/* A directory entry's low nibble: shift - MG_CHUNK_MIN_SHIFT, or free. */
#define DIRENT_LOW  0xfu
#define DIRENT_FREE 0xfu

struct mg_arena_dirent {
	uintptr_t word; /* see "Directory" above */
};

#define INLINE_CLASSES 2  /* 16 B, 32 B: lists in the struct */
#define HEAD_BYTES     64 /* the block holding the other classes' heads */

_Static_assert(INLINE_CLASSES ==
		       MG_ARRAY_SIZE(((struct mg_arena *)0)->small_free),
	       "the smallest classes' free lists are in the struct");
_Static_assert((16u << INLINE_CLASSES) == HEAD_BYTES &&
		       (SMALL_CLASSES - INLINE_CLASSES) * sizeof(void *) <=
			       HEAD_BYTES,
	       "the first block with a lazy list can hold every lazy head");
_Static_assert(MG_NUMA_MAX_NODES <= 256 && SLAB_MAX_SHIFT < 16,
	       "node and slab_used fit their fields");
_Static_assert(MG_CHUNK_MAX_SHIFT - MG_CHUNK_MIN_SHIFT < DIRENT_FREE,
	       "a chunk's shift fits the low nibble without looking free");
_Static_assert(SMALL_MAX <= (1u << SLAB_MAX_SHIFT),
	       "a small block fits a slab");
_Static_assert(SMALL_MIN_SHIFT + SMALL_CLASSES - 1 <= SLAB_MAX_SHIFT &&
		       SLAB_FIRST_SHIFT >= MG_CHUNK_MIN_SHIFT,
	       "slabs are chunks");
_Static_assert((1u << DIR_MIN_SHIFT) / sizeof(struct mg_arena_dirent) >= 3,
	       "a directory's first block holds the entry it replaces, its "
	       "host and one more chunk");

/* ---- small blocks ---------------------------------------------------------- */

/* The class of a small request (1 .. 2 KiB): log2_ceil(bytes) - 4, >= 0. */
static inline unsigned
small_class(size_t bytes)
{
	/* (bytes - 1) | 15 has its top bit at log2_ceil(bytes) - 1 (>= 3). */
	return 60u - (unsigned)__builtin_clzll((uint64_t)(bytes - 1) | 15);
}

static inline uint32_t
class_bytes(unsigned c)
{
	return 16u << c;
}

/* The head of class @c's free list; NULL when its list was never made. */
static inline void **
free_head(struct mg_arena *a, unsigned c)
{
	if (c < INLINE_CLASSES)
		return &a->small_free[c];
	return a->free_heads ? &a->free_heads[c - INLINE_CLASSES] : NULL;
}

static inline void *
pop_free(struct mg_arena *a, unsigned c)
{
	void **h = free_head(a, c);
	void *p = h ? *h : NULL;

	if (p)
		*h = *(void **)p;
	return p;
}

static inline void
push_free(struct mg_arena *a, unsigned c, void *p)
{
	void **h = free_head(a, c);
	unsigned k;

	if (MG_LIKELY(h != NULL)) {
		*(void **)p = *h;
		*h = p;
		return;
	}
	/*
	 * The first free block of 64 B or more: its first 64 B become the
	 * heads of those classes' lists (so a bin that never frees one pays
	 * 8 bytes for them, not 48), its other halves go on them.
	 */
	a->free_heads = p;
	memset(p, 0, HEAD_BYTES);
	for (k = INLINE_CLASSES; k < c; k++)
		push_free(a, k, (unsigned char *)p + class_bytes(k));
}
static inline uint32_t
slab_bytes(const struct mg_arena *a)
{
	return (uint32_t)1 << a->slab_shift;
}

/* The next block of class @c from the current slab, or NULL (A1). */
static inline void *
carve(struct mg_arena *a, unsigned c)
{
	void *p;

	if (class_bytes(c) > slab_bytes(a) - a->slab_used)
		return NULL;
	p = a->slab + a->slab_used;
	a->slab_used = (uint16_t)(a->slab_used + class_bytes(c));
	return p;
}

/* A block of class @c cut from a free block of a larger class, or NULL. */
static void *
split(struct mg_arena *a, unsigned c)
{
	unsigned char *p = NULL;
	unsigned k;

	for (k = c + 1; k < SMALL_CLASSES; k++)
		if ((p = pop_free(a, k)) != NULL)
			break;
	if (!p)
		return NULL;
	while (k-- > c)
		push_free(a, k, p + class_bytes(k));
	return p;
}

/* Whether a free block of class @c or larger is there to take. */
static bool
has_free(struct mg_arena *a, unsigned c)
{
	for (; c < SMALL_CLASSES; c++) {
		void **h = free_head(a, c);

		if (h && *h)
			return true;
	}
	return false;
}

/* A block of class @c from memory the arena already owns, or NULL: a free
 * block first (has_free() says whether there is one), then the slab. */
static void *
small_take(struct mg_arena *a, unsigned c)
{
	void *p = pop_free(a, c);

	if (!p)
		p = split(a, c);
	if (!p)
		p = carve(a, c);
	return p;
}

/* Cut the unused tail of a retired slab into free blocks, largest first. */
static void
retire_slab(struct mg_arena *a, unsigned char *slab, uint32_t bytes,
	    uint32_t used)
{
	while (bytes - used >= class_bytes(0)) {
		uint32_t rem = bytes - used;
		unsigned top = 31u - (unsigned)__builtin_clz(rem);
		unsigned c = (top > SMALL_MAX_SHIFT ? SMALL_MAX_SHIFT : top) -
			     SMALL_MIN_SHIFT;

		push_free(a, c, slab + used);
		used += class_bytes(c);
	}
}

/* Make @slab of 2^@shift bytes (owned, listed or about to be) the current
 * slab. */
static void
set_slab(struct mg_arena *a, unsigned char *slab, unsigned shift)
{
	retire_slab(a, a->slab, slab_bytes(a), a->slab_used);
	a->slab = slab;
	a->slab_shift = (uint8_t)shift;
	a->slab_used = 0;
}

/*
 * The size of a fresh slab that must hold @need bytes.  Below a page, a
 * need of a quarter of the next slab size or more gets a slab of its own
 * size (at least 128 B), any other the next size (128 B, doubling up to a
 * page); at a page, a page.  Either way the next size is then twice the
 * larger of the two.  So small blocks share slabs that double, while a
 * container's doubling table -- 64 B, 128 B, .. the block a slab is taken
 * for -- takes a slab of its own size each time, not one twice its size
 * whose other half its next doubling would not fit: with many bins, most
 * of them with a few keys, that is up to 40% of their memory.
 */
static unsigned
next_slab_shift(struct mg_arena *a, uint32_t need)
{
	unsigned next = a->next_shift ? a->next_shift : SLAB_FIRST_SHIFT;
	unsigned s = next;

	if (s < SLAB_MAX_SHIFT && need >= ((uint32_t)1 << s) / 4)
		s = need > (1u << SLAB_FIRST_SHIFT) ? mg_log2_ceil(need)
						    : SLAB_FIRST_SHIFT;
	else if (((uint32_t)1 << s) < need)
		s = mg_log2_ceil(need);
	MG_ASSERT(s <= SLAB_MAX_SHIFT);
	next = (s > next ? s : next) + 1;
	a->next_shift =
		(uint8_t)(next < SLAB_MAX_SHIFT ? next : SLAB_MAX_SHIFT);
	return s;
}

/* ---- directory ------------------------------------------------------------- */

static inline uintptr_t
dirent_used(const void *chunk, unsigned shift)
{
	return (uintptr_t)chunk | (shift - MG_CHUNK_MIN_SHIFT);
}

static inline bool
dirent_is_free(uintptr_t w)
{
	return (w & DIRENT_LOW) == DIRENT_FREE;
}

static inline unsigned char *
dirent_chunk(uintptr_t w)
{
	return (unsigned char *)(w & ~(uintptr_t)DIRENT_LOW);
}

static inline unsigned
dirent_shift(uintptr_t w)
{
	return (unsigned)(w & DIRENT_LOW) + MG_CHUNK_MIN_SHIFT;
}

/* The directory's slots: its block, or the one slot in the struct. */
static inline struct mg_arena_dirent *
dir_slots(const struct mg_arena *a)
{
	if (a->dir_shift)
		return a->dir;
	return (struct mg_arena_dirent *)(uintptr_t)&a->dir_one;
}

static uint32_t
dir_cap(const struct mg_arena *a)
{
	if (!a->dir_shift)
		return 1;
	return (uint32_t)(((size_t)1 << a->dir_shift) /
			  sizeof(struct mg_arena_dirent));
}

/*
 * A chunk of 2^@shift bytes from the pool for @a; -ENOMEM also when the
 * arena's bytes could pass their counter's 64 GiB (live <= bytes, so live
 * cannot either).  At most two chunks are taken before either is listed
 * (a large block or a slab, then the directory's), each at most 2 MiB: so
 * each take leaves room for the other.
 */
static int
take_chunk(struct mg_arena *a, unsigned shift, void **out)
{
	if ((uint64_t)a->bytes16 + ((uint64_t)1 << (shift - UNIT_SHIFT)) +
		    (LARGE_MAX >> UNIT_SHIFT) >
	    UINT32_MAX)
		return -ENOMEM;
	return mg_chunk_alloc(a->pools, a->node, shift, out);
}

/* List @chunk in a slot the caller knows is available. */
static void
dir_put(struct mg_arena *a, void *chunk, unsigned shift)
{
	struct mg_arena_dirent *dir = dir_slots(a);
	uint32_t i;

	if (a->dir_free) {
		i = a->dir_free - 1;
		a->dir_free = (uint32_t)(dir[i].word >> 4);
	} else {
		MG_ASSERT(a->ndir < dir_cap(a));
		i = a->ndir++;
	}
	dir[i].word = dirent_used(chunk, shift);
	a->bytes16 += (uint32_t)1 << (shift - UNIT_SHIFT);
}

static void
dir_remove(struct mg_arena *a, uint32_t i)
{
	struct mg_arena_dirent *dir = dir_slots(a);

	a->bytes16 -= (uint32_t)1 << (dirent_shift(dir[i].word) - UNIT_SHIFT);
	dir[i].word = (uintptr_t)a->dir_free << 4 | DIRENT_FREE;
	a->dir_free = i + 1;
}

/* The slot of @chunk; newest first, as containers free what they grew. */
static uint32_t
dir_find(const struct mg_arena *a, const void *chunk, unsigned shift)
{
	const struct mg_arena_dirent *dir = dir_slots(a);
	uintptr_t w = dirent_used(chunk, shift);
	uint32_t i;

	for (i = a->ndir; i-- > 0;)
		if (dir[i].word == w)
			return i;
	MG_BUG("arena %p frees %zu bytes at %p it does not own", (void *)a,
	       (size_t)1 << shift, chunk);
}

/*
 * Double the directory (or create it).  The one chunk this may need (a slab
 * for a small directory when no owned memory fits, or the new directory
 * chunk) is taken first, so failure changes nothing (A3).
 */
static int
dir_grow(struct mg_arena *a)
{
	unsigned old_shift = a->dir_shift;
	unsigned shift = old_shift ? old_shift + 1 : DIR_MIN_SHIFT;
	struct mg_arena_dirent *old = dir_slots(a);
	void *host = NULL, *p;
	unsigned host_shift = 0;
	int err;

	if (shift > MG_CHUNK_MAX_SHIFT)
		return -ENOMEM;
	if (shift <= SMALL_MAX_SHIFT) {
		unsigned c = shift - SMALL_MIN_SHIFT;

		p = small_take(a, c);
		if (!p) {
			uint8_t next = a->next_shift;

			host_shift = next_slab_shift(a, class_bytes(c));
			err = take_chunk(a, host_shift, &host);
			if (err) {
				a->next_shift = next; /* A3 */
				return err;
			}
			set_slab(a, host, host_shift);
			p = carve(a, c);
		}
	} else {
		host_shift = shift;
		err = take_chunk(a, host_shift, &host);
		if (err)
			return err;
		p = host;
	}
	if (a->ndir)
		memcpy(p, old, a->ndir * sizeof(*old));
	a->dir = p;
	a->dir_shift = shift;
	if (host)
		dir_put(a, host, host_shift);
	if (old_shift > SMALL_MAX_SHIFT) {
		dir_remove(a, dir_find(a, old, old_shift));
		mg_chunk_free(a->pools, old, old_shift);
	} else if (old_shift) {
		push_free(a, old_shift - SMALL_MIN_SHIFT, old);
	}
	return 0;
}

/* List a chunk just taken from the pool; on failure the caller frees it. */
static int
dir_add(struct mg_arena *a, void *chunk, unsigned shift)
{
	if (!a->dir_free && a->ndir == dir_cap(a)) {
		int err = dir_grow(a);

		if (err)
			return err;
	}
	dir_put(a, chunk, shift);
	return 0;
}

/* ---- allocation ------------------------------------------------------------ */

/* Bytes the directory would carve from a fresh slab to list it: a small
 * directory's next block if it is full and no free block can hold it
 * (dir_grow() takes one first), else 0. */
static uint32_t
dir_need(struct mg_arena *a)
{
	unsigned shift = a->dir_shift ? a->dir_shift + 1u : DIR_MIN_SHIFT;

	if (a->dir_free || a->ndir < dir_cap(a) || shift > SMALL_MAX_SHIFT ||
	    has_free(a, shift - SMALL_MIN_SHIFT))
		return 0;
	return (uint32_t)1 << shift;
}

/*
 * Make a fresh slab with room for @need more bytes the current one: listed,
 * its predecessor retired.  Failure changes nothing (A3).
 */
static int
fresh_slab(struct mg_arena *a, uint32_t need)
{
	unsigned char *old_slab = a->slab;
	uint16_t old_used = a->slab_used;
	uint8_t old_shift = a->slab_shift, old_next = a->next_shift;
	unsigned shift = next_slab_shift(a, need + dir_need(a));
	void *slab;
	int err;

	err = take_chunk(a, shift, &slab);
	if (err) {
		MG_ASSERT(err == -ENOMEM);
		a->next_shift = old_next;
		return err;
	}
	/*
	 * Current before it is listed: a small directory that must grow
	 * carves itself from the fresh slab, sized for it, and cannot fail.
	 * Only a chunk-sized directory can, before touching anything.
	 */
	a->slab = slab;
	a->slab_shift = (uint8_t)shift;
	a->slab_used = 0;
	err = dir_add(a, slab, shift);
	if (err) {
		a->slab = old_slab;
		a->slab_shift = old_shift;
		a->slab_used = old_used;
		a->next_shift = old_next;
		mg_chunk_free(a->pools, slab, shift);
		return err;
	}
	retire_slab(a, old_slab, (uint32_t)1 << old_shift, old_used);
	return 0;
}

/* Class @c found no free block and no room in the slab. */
static int
small_slow(struct mg_arena *a, unsigned c, void **out)
{
	void *p = split(a, c);
	int err;

	if (!p) {
		err = fresh_slab(a, class_bytes(c));
		if (err)
			return err;
		p = carve(a, c);
		MG_ASSERT(p != NULL);
	}
	a->live16 += class_bytes(c) >> UNIT_SHIFT;
	*out = p;
	return 0;
}

static int
large_alloc(struct mg_arena *a, size_t bytes, void **out)
{
	unsigned shift;
	void *p;
	int err;

	if (bytes == 0 || bytes > LARGE_MAX)
		return -EINVAL;
	shift = mg_log2_ceil(bytes);
	err = take_chunk(a, shift, &p);
	if (err) {
		/* -EINVAL would mean a node the pools do not have. */
		MG_ASSERT(err == -ENOMEM);
		return err;
	}
	err = dir_add(a, p, shift);
	if (err) {
		mg_chunk_free(a->pools, p, shift);
		return err;
	}
	a->live16 += (uint32_t)1 << (shift - UNIT_SHIFT);
	*out = p;
	return 0;
}

void
mg_arena_init(struct mg_arena *a, struct mg_pools *pools, unsigned node)
{
	/* A1: no current slab. */
	MG_ASSERT(node < MG_NUMA_MAX_NODES);
	*a = (struct mg_arena){
		.pools = pools,
		.node = (uint8_t)node,
		.slab_used = 1,
	};
}

int
mg_arena_alloc(struct mg_arena *a, size_t bytes, void **out)
{
	/* Debug builds: a refusal as if the pool were exhausted (A3: nothing
	 * changes), for the sizes the arena could serve. */
	if (MG_UNLIKELY(mg__fault_fail(MG_FAULT_ARENA)) && bytes &&
	    bytes <= LARGE_MAX)
		return -ENOMEM;
	/* 1 .. 2 KiB; 0 wraps around to the large path, which refuses it. */
	if (MG_LIKELY(bytes - 1 < SMALL_MAX)) {
		unsigned c = small_class(bytes);
		void *p = pop_free(a, c);

		if (MG_LIKELY(p != NULL) || (p = carve(a, c)) != NULL) {
			a->live16 += class_bytes(c) >> UNIT_SHIFT;
			*out = p;
			return 0;
		}
		return small_slow(a, c, out);
	}
	return large_alloc(a, bytes, out);
}

int
mg_arena_zalloc(struct mg_arena *a, size_t bytes, void **out)
{
	void *p;
	int err = mg_arena_alloc(a, bytes, &p);

	if (err)
		return err;
	memset(p, 0, bytes);
	*out = p;
	return 0;
}

/* Bytes a root of @bytes takes: rounded to 16, or as any block if above
 * the small classes (or 0, which is refused). */
static size_t
root_bytes(size_t bytes)
{
	if (bytes == 0 || bytes > LARGE_MAX)
		return 0;
	if (bytes > SMALL_MAX)
		return (size_t)1 << mg_log2_ceil(bytes);
	return (bytes + 15) & ~(size_t)15;
}

int
mg_arena_zalloc_root(struct mg_arena *a, size_t bytes, void **out)
{
	uint32_t n = (uint32_t)root_bytes(bytes);
	void *p;
	int err;

	MG_ASSERT(a->ndir == 0);
	if (bytes == 0 || bytes > SMALL_MAX)
		return mg_arena_zalloc(a, bytes, out);
	err = fresh_slab(a, n);
	if (err)
		return err;
	p = a->slab + a->slab_used;
	a->slab_used = (uint16_t)(a->slab_used + n);
	a->live16 += n >> UNIT_SHIFT;
	memset(p, 0, n);
	*out = p;
	return 0;
}

/* Debug check: @p lies in a slab the arena owns (A2). */
static bool __attribute__((unused))
in_slab(const struct mg_arena *a, const void *p)
{
	uint32_t i;

	for (i = 0; i < a->ndir; i++) {
		uintptr_t w = dir_slots(a)[i].word;
		uintptr_t c = (uintptr_t)dirent_chunk(w);

		if (!dirent_is_free(w) && dirent_shift(w) <= SLAB_MAX_SHIFT &&
		    (uintptr_t)p - c < ((uintptr_t)1 << dirent_shift(w)))
			return true;
	}
	return false;
}

void
mg_arena_free(struct mg_arena *a, void *p, size_t bytes)
{
	unsigned shift;

	MG_ASSERT(p != NULL && bytes != 0 && bytes <= LARGE_MAX);
	if (MG_LIKELY(bytes <= SMALL_MAX)) {
		unsigned c = small_class(bytes);

		MG_ASSERT(((uintptr_t)p & 15) == 0);
		MG_ASSERT(a->live16 >= class_bytes(c) >> UNIT_SHIFT);
		MG_ASSERT_EXPENSIVE(in_slab(a, p));
		push_free(a, c, p);
		a->live16 -= class_bytes(c) >> UNIT_SHIFT;
		return;
	}
	shift = mg_log2_ceil(bytes);
	MG_ASSERT(((uintptr_t)p & (((uintptr_t)1 << shift) - 1)) == 0);
	dir_remove(a, dir_find(a, p, shift));
	mg_chunk_free(a->pools, p, shift);
	a->live16 -= (uint32_t)1 << (shift - UNIT_SHIFT);
}

void
mg_arena_release(struct mg_arena *a)
{
	struct mg_pools *pools = a->pools;
	const struct mg_arena_dirent *dir = dir_slots(a);
	uintptr_t host = 0;
	uint32_t i;

	for (i = 0; i < a->ndir; i++) {
		uintptr_t w = dir[i].word;
		unsigned shift = dirent_shift(w);

		if (dirent_is_free(w))
			continue;
		/* The chunk holding the directory goes last: we read it. */
		if (a->dir_shift &&
		    (uintptr_t)dir - (uintptr_t)dirent_chunk(w) <
			    ((uintptr_t)1 << shift)) {
			host = w;
			continue;
		}
		mg_chunk_free(pools, dirent_chunk(w), shift);
	}
	if (host)
		mg_chunk_free(pools, dirent_chunk(host), dirent_shift(host));
	mg_arena_init(a, pools, a->node);
}

bool
mg_arena_root_only(const struct mg_arena *a, size_t bytes)
{
	return ((size_t)a->live16 << UNIT_SHIFT) == root_bytes(bytes);
}

unsigned
mg_arena_node(const struct mg_arena *a)
{
	return a->node;
}

void
mg_arena_set_node(struct mg_arena *a, unsigned node)
{
	MG_ASSERT(node < MG_NUMA_MAX_NODES);
	a->node = (uint8_t)node;
}

size_t
mg_arena_bytes(const struct mg_arena *a)
{
	return (size_t)a->bytes16 << UNIT_SHIFT;
}

size_t
mg_arena_live(const struct mg_arena *a)
{
	return (size_t)a->live16 << UNIT_SHIFT;
}

size_t
mg_arena_ranges(const struct mg_arena *a, struct mg_range *out, size_t n)
{
	size_t k = 0;
	uint32_t i;

	for (i = 0; i < a->ndir; i++) {
		uintptr_t w = dir_slots(a)[i].word;

		/* a sub-page chunk shares its page: it stays (see above) */
		if (dirent_is_free(w) || dirent_shift(w) < MG_CHUNK_PAGE_SHIFT)
			continue;
		if (k < n)
			out[k] = (struct mg_range){
				.addr = dirent_chunk(w),
				.bytes = (size_t)1 << dirent_shift(w),
			};
		k++;
	}
	return k;
}
