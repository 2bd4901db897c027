/*
 * mg_containers.h - the containers users keep their per-bin state in, the
 * bin arena they allocate from, and the byte streams of copy mode.
 *
 * A public fragment: it includes only the C library and numa/mg_api.h, and
 * the installed megaphone.h carries it inline.  The library's own view of an
 * arena (its layout, creation, release, re-homing ranges) and the engine's
 * timer queue are in migration/mg_state.h.
 *
 * THE BIN ARENA
 *
 * All of a bin's state is allocated from its arena, so the bin changes owner
 * by handing over one pointer and nothing is copied.  The arena owns chunks
 * of the NUMA page pool and nothing else:
 *
 *   - large blocks (> 2 KiB, rounded up to a power of two, <= 2 MiB) are
 *     whole chunks taken from the pool and given back on free;
 *   - small blocks (16 B .. 2 KiB in power-of-two classes) are carved from
 *     "slab" chunks the arena owns -- the first 128 B, each next one twice
 *     the last up to a 4 KiB page, or the block's own size for a block of
 *     a quarter of that or more (a growing table); freed small blocks go
 *     on a per-class free list threaded through the blocks themselves and
 *     are reused by later allocations of that class;
 *   - a directory (itself allocated from the arena: a small block, then a
 *     chunk, doubling) lists every chunk the arena owns, so the arena can
 *     release everything, report its ranges for re-homing, and account its
 *     bytes.  A bin with a little state owns one 128 B chunk, sharing a page
 *     with other bins (migration/arena.c).
 *
 * An arena that never allocated owns no memory.  Growth is geometric
 * because containers double.
 *
 * An arena is used by one thread at a time (its bin's owner); handing a bin
 * over is a release/acquire on the bin's owner word, done by the engine,
 * which makes everything written here visible to the next owner.  Nothing
 * here is thread-safe by itself and nothing here blocks; allocation takes
 * chunks from a lock-free pool, so it is allowed on the data path.  Running
 * out of memory is an error the caller sees (-ENOMEM), never a crash.
 *
 * CONTAINERS (all state inside the arena, all O(1) to hand over)
 *
 *   struct mg_map    open-addressing hash map, u64 key -> fixed-size value,
 *                    linear probing, 4 slots first, doubling at 7/8 load; large
 *                    tables are segmented into 2 MiB chunks (a directory of
 *                    segments), so no single allocation exceeds a chunk.  The
 *                    first entries (two of 8-byte values, one of up to 24)
 *                    live in the 40-byte handle itself, so a bin with a key
 *                    or two needs no table.
 *   struct mg_array  dense array of fixed-size values indexed 0..n-1,
 *                    segments allocated (zeroed) on first touch.
 *
 * The container structs are small handles embedded wherever the user keeps
 * its bin's root state; all their storage lives in the arena passed to each
 * call, which must be the same arena every time.
 *
 * BYTE STREAMS (copy mode)
 *
 * Copy mode moves a bin the way Megaphone does: the old owner serializes it,
 * the bytes travel through a channel, the new owner rebuilds it in a fresh
 * arena.  A writer appends to a buffer the engine provides; a reader
 * consumes one.  Both are plain structs with public fields and inline fast
 * paths.
 */
#ifndef MG_CONTAINERS_H
#define MG_CONTAINERS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "numa/mg_api.h"

/* ---- arena ------------------------------------------------------------------ */

struct mg_arena; /* a bin's memory; opaque (see migration/mg_state.h) */

/*
 * Allocate @bytes (1 .. 2 MiB), aligned to 16 bytes, or to the block size
 * for large blocks (> 2 KiB, rounded up to a power of two).  Contents
 * unspecified.
 * @out: gives the block, owned by the arena; return it with mg_arena_free()
 * or let mg_arena_release() take it.
 * Context: the arena's owner; lock-free, no malloc; data path allowed.
 * Return: 0 and *@out; -EINVAL for 0 or > 2 MiB; -ENOMEM when the pool is
 * exhausted or the arena already owns 2^18 chunks or nearly 64 GiB, or in
 * a debug build of the library when MG_FAIL_ARENA picked this allocation (the arena and
 * *@out are unchanged then).
 */
MG_API int mg_arena_alloc(struct mg_arena *a, size_t bytes, void **out);

/* Like mg_arena_alloc() but the block is zeroed. */
MG_API int mg_arena_zalloc(struct mg_arena *a, size_t bytes, void **out);

/*
 * Free a block from mg_arena_alloc(a, @bytes) (same @bytes; takes it).  A
 * small block (<= 2 KiB) goes on a free list of the arena and is O(1); a
 * large block goes back to the pool, after a search of the arena's chunk
 * directory (O(chunks owned)).  A block that is not live in @a is a bug
 * (MG_BUG for large blocks, MG_ASSERT_EXPENSIVE for small ones).
 * Context: the arena's owner; lock-free, no malloc; data path allowed.
 */
MG_API void mg_arena_free(struct mg_arena *a, void *p, size_t bytes);

/*
 * Bytes of chunks the arena owns (what it costs, its chunk directory
 * included), and bytes live in it (each live block counted at its size:
 * the request rounded up to a power of two, at least 16).  live <= bytes.
 */
MG_API size_t mg_arena_bytes(const struct mg_arena *a);
MG_API size_t mg_arena_live(const struct mg_arena *a);

/* ---- hash map: u64 key -> fixed-size value ---------------------------------- */

/*
 * A handle; fields private.  Set it up with mg_map_init(); a zero-filled
 * handle is not a map yet (its value_size reads 0, which state kept in a
 * zeroed bin may test to know whether to initialize).  A small map's
 * entries are inside the handle, so keep it where it is (in the bin's root
 * state, say): a copy of the struct is not the map.
 */
struct mg_map {
	union {
		struct {
			void *table;	 /* the one segment, or the segment
					    directory (arena) */
			void *max_value; /* value of key UINT64_MAX (arena) or
					    NULL */
			uint64_t mask;	 /* slots - 1 (a power of two) */
			uint64_t used;	 /* entries in the table (all but
					    UINT64_MAX) */
		} t;			 /* a table (hash_shift != 0) */
		uint64_t inl[4];	 /* no table: the first few entries */
	};
	uint32_t value_size; /* bytes per value, 1 .. 1024 */
	uint16_t slot_size;  /* 8-byte key + value rounded up to 8 */
	union {
		uint8_t seg_shift; /* log2 slots per segment (a table) */
		uint8_t ninl;	   /* entries in inl[] (no table) */
	};
	uint8_t hash_shift; /* 64 - log2 slots; 0: no table */
};

/*
 * An empty map of @value_size-byte values (1 .. 1024); owns nothing until
 * an insert.  Values are 8-byte aligned.
 */
MG_API void mg_map_init(struct mg_map *m, uint32_t value_size);

/*
 * Find @key; if absent insert it with a zeroed value.  Either way give a
 * pointer to its value, valid until the next insert, erase or reserve on
 * @m.
 * Context: the arena's owner; data path allowed.
 * Return: 1 if inserted, 0 if found, -ENOMEM if the table had to grow and
 * could not (nothing changed).
 */
MG_API int mg_map_upsert(struct mg_map *m, struct mg_arena *a, uint64_t key,
			 void **value);

/*
 * Grow the table so that @n entries fit without growing again (a bulk
 * load, as when copy mode rebuilds a bin); the key UINT64_MAX, whose value
 * is a block of its own, may still need one allocation.
 * Context: the arena's owner; data path allowed.
 * Return: 0; -ENOMEM (the map keeps its entries, at some size).
 */
MG_API int mg_map_reserve(struct mg_map *m, struct mg_arena *a, uint64_t n);

/*
 * Start loading the slot where a lookup of @key begins.  A bin's table is
 * usually far larger than the caches, so a loop over many keys waits for one
 * miss per key in turn; prefetching a few keys ahead overlaps those misses.
 * A hint: changes nothing, never faults, any key.
 * Context: the arena's owner; data path allowed.
 */
MG_API void mg_map_prefetch(const struct mg_map *m, uint64_t key);

/*
 * The value of @key or NULL; valid until the next insert, erase or reserve.
 * Context: the arena's owner; data path allowed.
 */
MG_API void *mg_map_find(const struct mg_map *m, uint64_t key);

/*
 * Remove @key.  The table does not shrink (mg_map_clear() frees it).
 * Context: the arena's owner; data path allowed.
 * Return: true if it was present.
 */
MG_API bool mg_map_erase(struct mg_map *m, struct mg_arena *a, uint64_t key);

/* Live entries. */
MG_API uint64_t mg_map_count(const struct mg_map *m);

/*
 * Visit every entry (in unspecified order) until @fn returns non-zero.
 * @fn may modify the value but not insert or erase.
 * Return: the first non-zero result of @fn, or 0.
 */
MG_API int mg_map_foreach(const struct mg_map *m,
			  int (*fn)(void *ctx, uint64_t key, void *value),
			  void *ctx);

/* Free the table; the map is empty afterwards, same value size. */
MG_API void mg_map_clear(struct mg_map *m, struct mg_arena *a);

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
MG_API void mg_array_init(struct mg_array *arr, uint64_t len,
			  uint32_t value_size);

/*
 * Element @i (< len), its segment allocated and zeroed on first touch.
 * The pointer stays valid until mg_array_clear().
 * Context: the arena's owner; data path allowed.
 * Return: 0 and *@value; -EINVAL if @i >= len; -ENOMEM if the segment (or
 * the segment directory, at most 2 MiB) cannot be allocated; nothing
 * changed then.
 */
MG_API int mg_array_at(struct mg_array *arr, struct mg_arena *a, uint64_t i,
		       void **value);

/* Element @i if its segment exists, else NULL (reads as zero; also for
 * @i >= len). */
MG_API void *mg_array_peek(const struct mg_array *arr, uint64_t i);

/* Free every segment; all elements read as zero again. */
MG_API void mg_array_clear(struct mg_array *arr, struct mg_arena *a);

/* ---- byte streams (copy mode) ---------------------------------------------- */

struct mg_writer {
	unsigned char *buf; /* public: set by the engine */
	size_t len;	    /* public: bytes written */
	size_t cap;	    /* public: room in buf */
};

struct mg_reader {
	const unsigned char *buf; /* public */
	size_t len;		  /* public: bytes in buf */
	size_t pos;		  /* public: bytes consumed */
};

/* Append @n bytes.  Return: 0; -ENOMEM when the buffer is full (nothing
 * written then). */
static inline int
mg_write(struct mg_writer *w, const void *p, size_t n)
{
	if (w->cap - w->len < n)
		return -ENOMEM;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

/* Consume @n bytes.  Return: 0; -EINVAL if fewer are left. */
static inline int
mg_read(struct mg_reader *r, void *p, size_t n)
{
	if (r->len - r->pos < n)
		return -EINVAL;
	memcpy(p, r->buf + r->pos, n);
	r->pos += n;
	return 0;
}

/*
 * Write @m's entries: their count, then (key, value) pairs.
 * Return: 0; -ENOMEM from the writer.
 */
MG_API int mg_map_write(const struct mg_map *m, struct mg_writer *w);

/*
 * Insert the entries written by mg_map_write() into @m (initialized with
 * the same value size), allocating from @a.
 * Return: 0; -EINVAL for a malformed stream; -ENOMEM.  On an error @m may
 * hold part of the stream (copy mode then frees the whole bin).
 */
MG_API int mg_map_read(struct mg_map *m, struct mg_arena *a,
		       struct mg_reader *r);

/* Write @arr's touched segments; read them back into an initialized array
 * of the same shape.  Return: 0; -EINVAL; -ENOMEM. */
MG_API int mg_array_write(const struct mg_array *arr, struct mg_writer *w);
MG_API int mg_array_read(struct mg_array *arr, struct mg_arena *a,
			 struct mg_reader *r);

#endif /* MG_CONTAINERS_H */
