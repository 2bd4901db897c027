/*
 * mg_copy.h - byte streams for copy-mode migration (Megaphone's way: the old
 * owner serializes a bin, the bytes travel through a channel, the new owner
 * rebuilds the bin in a fresh arena), and the containers' serializers.
 *
 * A writer appends to a buffer the engine provides; a reader consumes one.
 * Both are plain structs with public fields and inline fast paths: they are
 * used on the data path of the worker doing the copy.  Nothing here
 * allocates except the readers, which rebuild containers in the arena given.
 */
#ifndef MG_COPY_H
#define MG_COPY_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "migration/mg_state.h"

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
int mg_map_write(const struct mg_map *m, struct mg_writer *w);

/*
 * Insert the entries written by mg_map_write() into @m (initialized with
 * the same value size), allocating from @a.
 * Return: 0; -EINVAL for a malformed stream; -ENOMEM.
 */
int mg_map_read(struct mg_map *m, struct mg_arena *a, struct mg_reader *r);

/* Write @arr's touched segments; read them back into an initialized array
 * of the same shape.  Return: 0; -EINVAL; -ENOMEM. */
int mg_array_write(const struct mg_array *arr, struct mg_writer *w);
int mg_array_read(struct mg_array *arr, struct mg_arena *a,
		  struct mg_reader *r);

/*
 * Move every timer of @t into the stream (emptying @t: the copy's source
 * is discarded after it), and push them back into @t on the other side.
 * Within one time, their order may change (the order of records within a
 * timestamp is unspecified).
 */
int mg_timers_write_drain(struct mg_timers *t, struct mg_writer *w);
int mg_timers_read(struct mg_timers *t, struct mg_arena *a,
		   struct mg_reader *r);

#endif /* MG_COPY_H */
