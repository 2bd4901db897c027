/*
 * mg_state.h - a bin's memory: the bin arena and the containers users keep
 * their per-bin state in (hash map, dense array, timer queue).
 *
 * THE BIN ARENA
 *
 * All of a bin's state is allocated from its arena, so the bin changes owner
 * by handing over one pointer and nothing is copied.  The arena owns chunks
 * of the NUMA page pool (numa/mg_numa.h) and nothing else:
 *
 *   - large blocks (> 2 KiB, rounded up to a power of two, <= 2 MiB) are
 *     whole chunks taken from the pool and given back on free;
 *   - small blocks (16 B .. 2 KiB in power-of-two classes) are carved from
 *     4 KiB "slab" chunks the arena owns; freed small blocks go on a
 *     per-class free list threaded through the blocks themselves and are
 *     reused by later allocations of that class;
 *   - a directory (itself allocated from the arena: a small block, then a
 *     chunk, doubling) lists every chunk the arena owns, so the arena can
 *     release everything, report its ranges for re-homing, and account its
 *     bytes.  A bin with a little state owns one 4 KiB page.
 *
 * An arena that never allocated owns no memory: the struct is a few words
 * embedded in the bin.  Growth is geometric because containers double.
 *
 * An arena is used by one thread at a time (its bin's owner); handing a bin
 * over is a release/acquire on the bin's owner word, done by the migration
 * layer, which makes everything written here visible to the next owner.
 * Nothing here is thread-safe by itself and nothing here blocks; allocation
 * takes chunks from the lock-free pool, so it is allowed on the data path.
 * Running out of memory is an error the caller sees (-ENOMEM), never a crash.
 *
 * CONTAINERS (all state inside the arena, all O(1) to hand over)
 *
 *   struct mg_map    open-addressing hash map, u64 key -> fixed-size value,
 *                    linear probing, grows by doubling at 7/8 load; large
 *                    tables are segmented into 2 MiB chunks (a directory of
 *                    segments), so no single allocation exceeds a chunk.
 *   struct mg_array  dense array of fixed-size values indexed 0..n-1,
 *                    segments allocated (zeroed) on first touch.
 *   struct mg_timers min-heap of (time, fixed-size record) for post-dated
 *                    records; grows by doubling up to one 2 MiB segment,
 *                    then a segment at a time; stable FIFO order among
 *                    entries with equal time.
 *
 * The container structs are small handles embedded wherever the user keeps
 * its bin's root state; all their storage lives in the arena passed to each
 * call, which must be the same arena every time.
 */
#ifndef MG_STATE_H
#define MG_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "numa/mg_numa.h"

/* ---- arena ------------------------------------------------------------------ */

struct mg_arena_dirent; /* private */

/*
 * Fields are private; set by mg_arena_init() (a zero-filled struct is not an
 * arena).  The struct holds no pointer into itself, so it may be copied:
 * a bin may keep its arena inside a block of that very arena.
 */
struct mg_arena {
	struct mg_pools *pools;
	unsigned node;		     /* pool node new chunks come from */
	unsigned dir_shift;	     /* log2 bytes of dir, 0 = none */
	struct mg_arena_dirent *dir; /* owned chunks */
	uint32_t ndir;		     /* dir slots used or on the free list */
	uint32_t dir_free;	     /* head of free dir slots + 1, 0 = none */
	void *small_free[8];	     /* per-class free lists, 16 B .. 2 KiB */
	unsigned char *slab;	     /* current slab for carving */
	uint32_t slab_used;	     /* bytes carved from slab */
	size_t bytes;		     /* bytes of chunks owned (incl. dir) */
	size_t live;		     /* block bytes handed out, not freed */
};

/*
 * Make @a an empty arena drawing chunks from @pools on node @node.
 * @pools: borrowed, must outlive the arena.  Owns no memory afterwards.
 */
void mg_arena_init(struct mg_arena *a, struct mg_pools *pools, unsigned node);

/*
 * Allocate @bytes (1 .. 2 MiB), aligned to 16 bytes, or to the block size
 * for large blocks (> 2 KiB, rounded up to a power of two).  Contents
 * unspecified.
 * @out: gives the block, owned by the arena; return it with mg_arena_free()
 * or let mg_arena_release() take it.
 * Context: the arena's owner; lock-free, no malloc; data path allowed.
 * Return: 0 and *@out; -EINVAL for 0 or > 2 MiB; -ENOMEM when the pool is
 * exhausted or the arena already owns 2^18 chunks (the arena and *@out are
 * unchanged then).
 */
int mg_arena_alloc(struct mg_arena *a, size_t bytes, void **out);

/* Like mg_arena_alloc() but the block is zeroed. */
int mg_arena_zalloc(struct mg_arena *a, size_t bytes, void **out);

/*
 * Free a block from mg_arena_alloc(a, @bytes) (same @bytes; takes it).  A
 * small block (<= 2 KiB) goes on a free list of the arena and is O(1); a
 * large block goes back to the pool, after a search of the arena's chunk
 * directory (O(chunks owned)).  A block that is not live in @a is a bug
 * (MG_BUG for large blocks, MG_ASSERT_EXPENSIVE for small ones).
 * Context: the arena's owner; lock-free, no malloc; data path allowed.
 */
void mg_arena_free(struct mg_arena *a, void *p, size_t bytes);

/*
 * Give every chunk back to the pool; @a is empty afterwards (owns nothing,
 * still draws from the same pools and node).  Every block is then dead, even
 * the one holding @a itself if the caller keeps its arena inside it: pass a
 * copy of the struct then.
 */
void mg_arena_release(struct mg_arena *a);

/*
 * Bytes of chunks the arena owns (what it costs, its chunk directory
 * included), and bytes live in it (each live block counted at its size:
 * the request rounded up to a power of two, at least 16).  live <= bytes.
 */
size_t mg_arena_bytes(const struct mg_arena *a);
size_t mg_arena_live(const struct mg_arena *a);

/*
 * Fill @out with up to @n page ranges, one per chunk the arena owns (for
 * re-homing them to another node).  @out may be NULL when @n is 0.
 * Return: the number of chunks the arena owns (may exceed @n: call again
 * with a larger array; an allocation from the arena in between may add up
 * to two chunks).
 */
size_t mg_arena_ranges(const struct mg_arena *a, struct mg_range *out,
		       size_t n);

/* ---- hash map: u64 key -> fixed-size value ---------------------------------- */

/*
 * A handle; fields private.  Set it up with mg_map_init(); a zero-filled
 * handle is not a map yet (its value_size reads 0, which state kept in a
 * zeroed bin may test to know whether to initialize).
 */
struct mg_map {
	void **seg;	     /* segment directory (arena) or NULL */
	void *max_value;     /* value of key UINT64_MAX (arena) or NULL */
	uint64_t mask;	     /* slots - 1 (a power of two), 0 = no table */
	uint64_t used;	     /* entries in the table (all but UINT64_MAX) */
	uint32_t value_size; /* bytes per value, 1 .. 1024 */
	uint32_t slot_size;  /* 8-byte key + value rounded up to 8 */
	uint8_t seg_shift;   /* log2 slots per segment */
	uint8_t hash_shift;  /* 64 - log2 slots */
};

/*
 * An empty map of @value_size-byte values (1 .. 1024); owns nothing until
 * an insert.  Values are 8-byte aligned.
 */
void mg_map_init(struct mg_map *m, uint32_t value_size);

/*
 * Find @key; if absent insert it with a zeroed value.  Either way give a
 * pointer to its value, valid until the next insert or erase on @m.
 * Context: the arena's owner; data path allowed.
 * Return: 1 if inserted, 0 if found, -ENOMEM if the table had to grow and
 * could not (nothing changed).
 */
int mg_map_upsert(struct mg_map *m, struct mg_arena *a, uint64_t key,
		  void **value);

/*
 * Grow the table so that @n entries fit without growing again (a bulk
 * load, as when copy mode rebuilds a bin).
 * Context: the arena's owner; data path allowed.
 * Return: 0; -ENOMEM (the map keeps its entries, at some size).
 */
int mg_map_reserve(struct mg_map *m, struct mg_arena *a, uint64_t n);

/*
 * Start loading the slot where a lookup of @key begins.  A bin's table is
 * usually far larger than the caches, so a loop over many keys waits for one
 * miss per key in turn; prefetching a few keys ahead overlaps those misses.
 * A hint: changes nothing, never faults, any key.
 * Context: the arena's owner; data path allowed.
 */
void mg_map_prefetch(const struct mg_map *m, uint64_t key);

/*
 * The value of @key or NULL; valid until the next insert or erase.
 * Context: the arena's owner; data path allowed.
 */
void *mg_map_find(const struct mg_map *m, uint64_t key);

/*
 * Remove @key.  The table does not shrink (mg_map_clear() frees it).
 * Context: the arena's owner; data path allowed.
 * Return: true if it was present.
 */
bool mg_map_erase(struct mg_map *m, struct mg_arena *a, uint64_t key);

/* Live entries. */
uint64_t mg_map_count(const struct mg_map *m);

/*
 * Visit every entry (in unspecified order) until @fn returns non-zero.
 * @fn may modify the value but not insert or erase.
 * Return: the first non-zero result of @fn, or 0.
 */
int mg_map_foreach(const struct mg_map *m,
		   int (*fn)(void *ctx, uint64_t key, void *value), void *ctx);

/* Free the table; the map is empty afterwards, same value size. */
void mg_map_clear(struct mg_map *m, struct mg_arena *a);

/* ---- dense array ---------------------------------------------------------- */

struct mg_array {
	void **seg;	     /* segment directory (arena) or NULL */
	uint64_t len;	     /* elements */
	uint32_t value_size; /* bytes per element */
	uint32_t seg_shift;  /* log2 elements per segment */
};

/*
 * An array of @len zeroed @value_size-byte elements (value_size >= 1, at
 * most 2 MiB); owns nothing yet.  Element i lives at i * value_size within
 * its segment (segments are 16-byte aligned).
 */
void mg_array_init(struct mg_array *arr, uint64_t len, uint32_t value_size);

/*
 * Element @i (< len), its segment allocated and zeroed on first touch.
 * The pointer stays valid until mg_array_clear().
 * Context: the arena's owner; data path allowed.
 * Return: 0 and *@value; -EINVAL if @i >= len; -ENOMEM if the segment (or
 * the segment directory, at most 2 MiB) cannot be allocated; nothing
 * changed then.
 */
int mg_array_at(struct mg_array *arr, struct mg_arena *a, uint64_t i,
		void **value);

/* Element @i if its segment exists, else NULL (reads as zero; also for
 * @i >= len). */
void *mg_array_peek(const struct mg_array *arr, uint64_t i);

/* Free every segment; all elements read as zero again. */
void mg_array_clear(struct mg_array *arr, struct mg_arena *a);

/* ---- timer queue ---------------------------------------------------------- */

/* A handle; fields private.  Set it up with mg_timers_init(). */
struct mg_timers {
	void **seg;	    /* segment directory (arena) or NULL */
	uint64_t seq;	    /* insertion counter: FIFO among equal times */
	uint32_t rec_size;  /* bytes per record, 0 .. 1024 */
	uint32_t ent_size;  /* time, seq, record rounded up to 8 */
	uint32_t count;	    /* entries queued */
	uint32_t cap;	    /* entries allocated */
	uint32_t seg_shift; /* log2 entries per segment */
};

/* An empty queue of @rec_size-byte records (0 .. 1024); owns nothing. */
void mg_timers_init(struct mg_timers *t, uint32_t rec_size);

/*
 * Schedule @rec (rec_size bytes, copied; may be NULL if rec_size is 0) at
 * @time.  Context: the arena's owner; data path allowed.
 * Return: 0; -ENOMEM (nothing changed).
 */
int mg_timers_push(struct mg_timers *t, struct mg_arena *a, uint64_t time,
		   const void *rec);

/* Earliest time, or UINT64_MAX when empty. */
uint64_t mg_timers_next(const struct mg_timers *t);

/*
 * If the earliest entry's time is <= @upto, copy its record to @rec, its
 * time to *@time, remove it and return true; else return false.  Of entries
 * with equal times the earliest pushed comes first.  Never allocates (the
 * heap does not shrink; mg_timers_clear() frees it).
 */
bool mg_timers_pop(struct mg_timers *t, uint64_t upto, uint64_t *time,
		   void *rec);

/* Entries queued. */
uint32_t mg_timers_count(const struct mg_timers *t);

/* Drop every entry and free the heap. */
void mg_timers_clear(struct mg_timers *t, struct mg_arena *a);

#endif /* MG_STATE_H */
