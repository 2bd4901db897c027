/*
 * copy.c - container serializers for copy-mode migration, written against
 * the containers' public interface (mg_state.h).  Stream formats, all
 * native-endian (both ends are the same process):
 *
 *   map     u64 count, then count x (u64 key, value_size bytes)
 *   array   u64 segments written, then per segment (u64 first index,
 *           u64 elements, elements x value_size bytes)
 *   timers  u32 count, then count x (u64 time, rec_size bytes)
 */
#include "migration/mg_state.h"

struct map_ctx {
	struct mg_writer *w;
	uint32_t value_size;
};

static int
write_entry(void *ctx, uint64_t key, void *value)
{
	struct map_ctx *c = ctx;
	int err = mg_write(c->w, &key, sizeof(key));

	return err ? err : mg_write(c->w, value, c->value_size);
}

int
mg_map_write(const struct mg_map *m, struct mg_writer *w)
{
	struct map_ctx c = {w, m->value_size};
	uint64_t n = mg_map_count(m);
	int err = mg_write(w, &n, sizeof(n));

	return err ? err : mg_map_foreach(m, write_entry, &c);
}

int
mg_map_read(struct mg_map *m, struct mg_arena *a, struct mg_reader *r)
{
	uint64_t n, key;
	void *v;
	int err;

	err = mg_read(r, &n, sizeof(n));
	if (!err && n > (r->len - r->pos) / (sizeof(key) + m->value_size))
		err = -EINVAL; /* more entries than bytes: malformed */
	if (!err)
		err = mg_map_reserve(m, a, mg_map_count(m) + n);
	while (!err && n--) {
		err = mg_read(r, &key, sizeof(key));
		if (err)
			break;
		err = mg_map_upsert(m, a, key, &v);
		if (err < 0)
			break;
		err = mg_read(r, v, m->value_size);
	}
	return err < 0 ? err : 0;
}

int
mg_array_write(const struct mg_array *arr, struct mg_writer *w)
{
	uint64_t per = arr->len ? 1ull << arr->seg_shift : 0, i, n = 0;
	size_t count_at = w->len;
	int err = mg_write(w, &n, sizeof(n));

	for (i = 0; !err && arr->seg && per && i < arr->len; i += per) {
		const void *seg = mg_array_peek(arr, i);
		uint64_t k = arr->len - i < per ? arr->len - i : per;

		if (!seg)
			continue;
		err = mg_write(w, &i, sizeof(i));
		if (!err)
			err = mg_write(w, &k, sizeof(k));
		if (!err)
			err = mg_write(w, seg, k * arr->value_size);
		n++;
	}
	if (!err)
		memcpy(w->buf + count_at, &n, sizeof(n));
	return err;
}

int
mg_array_read(struct mg_array *arr, struct mg_arena *a, struct mg_reader *r)
{
	uint64_t n, first, k;
	void *seg;
	int err;

	err = mg_read(r, &n, sizeof(n));
	while (!err && n--) {
		err = mg_read(r, &first, sizeof(first));
		if (!err)
			err = mg_read(r, &k, sizeof(k));
		if (!err && (first >= arr->len || k > arr->len - first))
			err = -EINVAL;
		if (!err)
			err = mg_array_at(arr, a, first, &seg);
		if (!err)
			err = mg_read(r, seg, k * arr->value_size);
	}
	return err;
}

int
mg_timers_write(const struct mg_timers *t, struct mg_writer *w)
{
	uint32_t n = mg_timers_count(t), i;
	uint64_t time;
	int err = mg_write(w, &n, sizeof(n));

	for (i = 0; !err && i < n; i++) {
		const void *rec = mg_timers_at(t, i, &time);

		err = mg_write(w, &time, sizeof(time));
		if (!err)
			err = mg_write(w, rec, t->rec_size);
	}
	return err;
}

int
mg_timers_read(struct mg_timers *t, struct mg_arena *a, struct mg_reader *r)
{
	unsigned char rec[1024];
	uint64_t time;
	uint32_t n;
	int err;

	err = mg_read(r, &n, sizeof(n));
	while (!err && n--) {
		err = mg_read(r, &time, sizeof(time));
		if (!err)
			err = mg_read(r, rec, t->rec_size);
		if (!err)
			err = mg_timers_push(t, a, time, rec);
	}
	return err;
}
