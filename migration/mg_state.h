/*
 * mg_state.h - the library's view of a bin's memory: the arena's layout,
 * creation, release and page ranges, and the timer queue in which the engine
 * keeps a bin's post-dated records.
 *
 * The public part -- allocation, the containers users keep state in, the
 * byte streams of copy mode -- is migration/mg_containers.h (included here),
 * whose essay describes the arena.
 *
 *   struct mg_timers min-heap of (time, fixed-size record) for post-dated
 *                    records; grows by doubling up to one 2 MiB segment,
 *                    then a segment at a time; stable FIFO order among
 *                    entries with equal time.  Lives in the bin's arena and
 *                    moves with it.
 */
#ifndef MG_STATE_H
#define MG_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migration/mg_containers.h"
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
	union {
		struct mg_arena_dirent *dir; /* owned chunks (dir_shift > 0) */
		uintptr_t dir_one;	     /* or the only one (dir_shift 0) */
	};
	unsigned char *slab; /* current slab for carving */
	void *small_free[2]; /* free lists of 16 B and 32 B blocks */
	void **free_heads;   /* those of 64 B .. 2 KiB, or NULL */
	uint32_t bytes16;    /* bytes of chunks owned (incl. dir) / 16 */
	uint32_t live16;     /* block bytes handed out, not freed / 16 */
	uint32_t ndir;	     /* dir slots used or on the free list */
	uint32_t dir_free;   /* head of free dir slots + 1, 0 = none */
	uint16_t slab_used;  /* bytes carved from slab */
	uint8_t node;	     /* pool node new chunks come from */
	uint8_t dir_shift;   /* log2 bytes of dir, 0 = the one in dir_one */
	uint8_t slab_shift;  /* log2 bytes of slab (0: none) */
	uint8_t next_shift;  /* of the next slab (0: the first) */
};

/*
 * Make @a an empty arena drawing chunks from @pools on node @node.
 * @pools: borrowed, must outlive the arena.  Owns no memory afterwards.
 */
void mg_arena_init(struct mg_arena *a, struct mg_pools *pools, unsigned node);

/*
 * The first block of a fresh arena (nothing allocated yet), zeroed: @bytes
 * rounded up to 16 only, not to a power of two, at the start of a first slab
 * sized to hold it -- so a bin's own block plus a little state fit one 128 B
 * chunk.  Never freed on its own: mg_arena_release() takes it.  Context and
 * return as mg_arena_zalloc().
 */
int mg_arena_zalloc_root(struct mg_arena *a, size_t bytes, void **out);

/*
 * Give every chunk back to the pool; @a is empty afterwards (owns nothing,
 * still draws from the same pools and node).  Every block is then dead, even
 * the one holding @a itself if the caller keeps its arena inside it: pass a
 * copy of the struct then.
 */
void mg_arena_release(struct mg_arena *a);

/*
 * Whether the arena's only live block is the root mg_arena_zalloc_root()
 * made of @bytes (nothing else allocated, or all of it freed).
 */
bool mg_arena_root_only(const struct mg_arena *a, size_t bytes);

/* The pool node new chunks come from, and pointing it at @node (the new
 * owner's, after a handoff: chunks it already owns stay where they are). */
unsigned mg_arena_node(const struct mg_arena *a);
void mg_arena_set_node(struct mg_arena *a, unsigned node);

/*
 * Fill @out with up to @n page ranges, one per chunk of a page or more the
 * arena owns (for re-homing them to another node: a sub-page chunk shares
 * its page with other arenas and stays).  @out may be NULL when @n is 0.
 * Return: the number of such chunks (may exceed @n: call again with a
 * larger array; an allocation from the arena in between may add up to two
 * chunks).
 */
size_t mg_arena_ranges(const struct mg_arena *a, struct mg_range *out,
		       size_t n);

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

/* Entry @i (< count) in storage order: its record, its time in *@time.
 * Storage order is no order of times. */
const void *mg_timers_at(const struct mg_timers *t, uint32_t i, uint64_t *time);

/*
 * Write every timer of @t into the stream, leaving @t as it was (a copy
 * that fails keeps its source), and push them into @t on the other side.
 * Within one time, their order may change (the order of records within a
 * timestamp is unspecified).
 * Return: 0; -ENOMEM from the writer / 0; -EINVAL for a malformed stream;
 * -ENOMEM from the arena (the entries read so far stay in @t).
 */
int mg_timers_write(const struct mg_timers *t, struct mg_writer *w);
int mg_timers_read(struct mg_timers *t, struct mg_arena *a,
		   struct mg_reader *r);

#endif /* MG_STATE_H */
