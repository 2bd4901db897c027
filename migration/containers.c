/*
 * containers.c - per-bin state containers: hash map, dense array, timer
 * queue.  Every byte they use lives in the arena passed to each call.
 *
 * Segments.  No arena block exceeds 2 MiB (one chunk), so each container
 * keeps its elements in segments of 2^seg_shift elements, listed in a
 * *segment directory* (an arena block of pointers).  Element i is at
 *
 *     seg[i >> seg_shift] + (i & (2^seg_shift - 1)) * element size
 *
 * a shift, a mask, a multiply and the load of a directory word that stays in
 * L1.  An array or timer queue smaller than a segment has a one-entry
 * directory and one segment sized to fit; a map's table of one segment has
 * no directory (`table` is the segment), so a lookup in a small map --
 * every map, with many bins -- is one cache miss fewer: the directory is a
 * block of its own, seldom on a line the map's handle shares.  A segment
 * holds at most 2^floor(log2(2 MiB / size)) elements, so an element size
 * that is not a power of two leaves the tail of each block unused (up to
 * half, for sizes just above a power of two: a map of 8-, 24- or 56-byte
 * values is dense, one of 16-byte values is not).
 * A directory is one arena block too, so a container has at most 2^18
 * segments.
 *
 * Map.  While it has no more entries than its handle's 32 bytes of slots
 * hold (two of 8-byte values, one of 16 or 24), the map has no table: the
 * entries sit in the handle in insertion order (an erase moves the last into
 * the hole), any key, UINT64_MAX too, and a lookup compares one or two keys
 * on the line the caller already loaded for the handle -- with many bins
 * most maps are that small, and a bin with a key or two then owns no block
 * but its root.  The entry that does not fit moves them into a first table:
 *
 * Open addressing with linear probing over 2^n slots, n >= 2.  A slot
 * is the key followed by the value, padded so values are 8-byte aligned:
 *
 *     | key (8) | value (value_size) | pad |     slot_size = 8 + round8(vs)
 *
 * The key UINT64_MAX marks an empty slot; the *real* key UINT64_MAX is kept
 * outside the table, its value in an arena block of its own (max_value), and
 * counted by mg_map_count().  A key's home slot is the top n bits of
 * map_hash(key), a 64-bit mixer, so sequential keys spread out and probing
 * needs no division.  Invariants:
 *   M1  Between a key's home slot and its slot (cyclically) no slot is
 *       empty, so a lookup stops at the first empty slot.
 *   M2  used <= 7/8 of the slots (3 of the first table's 4), so an empty
 *       slot always exists and clusters stay short.  An insert that would
 *       break this first doubles the table: new segments with every key
 *       empty, every entry moved to its first free slot from its new home,
 *       old segments and directory freed.  Growth allocates everything
 *       before changing anything.
 *   M3  No tombstones.  Erase shifts the rest of the cluster back (Knuth's
 *       Algorithm R): a later entry moves into the hole when the hole lies
 *       on its path from its home, which keeps M1.
 *
 * Array.  Segments allocated and zeroed on first touch; seg_shift is the
 * smaller of what fits 2 MiB and what covers len, and the last segment only
 * as long as len needs.  The directory is allocated zeroed (NULL = segment
 * never touched) on the first touch.
 *
 * Timers.  A binary min-heap ordered by (time, seq), seq an insertion
 * counter, so entries with equal times leave in push order.  An entry is
 *
 *     | time (8) | seq (8) | record (rec_size) | pad |     ent_size
 *
 * in the segment layout above.  While the heap fits one segment it is a
 * single block that doubles (copy, free the old one); beyond that it grows
 * a 2 MiB segment at a time, without copying, and the directory (sized to
 * the next power of two of the segment count) doubles when full.  The heap
 * never shrinks: a pop takes no arena.  Sifting moves a hole, not the new
 * entry, so each level costs one entry copy; sifting up compares times only,
 * since a new entry's seq is larger than every queued one.
 */
#include <errno.h>
#include <string.h>

#include "migration/mg_state.h"

#define SEG_MAX_BYTES	((size_t)1 << MG_CHUNK_MAX_SHIFT)
#define DIR_MAX_SEGS	(SEG_MAX_BYTES / sizeof(void *))
#define KEY_BYTES	sizeof(uint64_t)
#define MAP_EMPTY	UINT64_MAX
#define MAP_MIN_SHIFT	2 /* 4 slots */
#define MAP_VALUE_MAX	1024u
#define TIMER_HDR	(2 * sizeof(uint64_t))
#define TIMER_REC_MAX	1024u
#define TIMER_MIN_SHIFT 2 /* 4 entries */

_Static_assert(sizeof(struct mg_map) == 40,
	       "a bin's 80-byte header and a map fill a 128 B chunk");
_Static_assert(sizeof(((struct mg_map *)0)->inl) / (KEY_BYTES + 8) <
		       (1u << MAP_MIN_SHIFT) - 1,
	       "a first table takes the handle's entries and one more (M2)");

static inline size_t
round8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

/* log2 of the most elements of @size bytes that one segment holds. */
static unsigned
seg_shift_max(size_t size)
{
	return 63u - (unsigned)__builtin_clzll(SEG_MAX_BYTES / size);
}

static inline unsigned char *
seg_at(void *const *seg, unsigned shift, size_t size, uint64_t i)
{
	uint64_t mask = ((uint64_t)1 << shift) - 1;

	return (unsigned char *)seg[i >> shift] + (size_t)(i & mask) * size;
}

/* Keys and times sit at 8-byte aligned offsets of 16-byte aligned blocks. */
static inline uint64_t
load_u64(const unsigned char *p)
{
	return *(const uint64_t *)(const void *)p;
}

static inline void
store_u64(unsigned char *p, uint64_t v)
{
	*(uint64_t *)(void *)p = v;
}

/* ---- hash map ---------------------------------------------------------------- */

/*
 * MurmurHash3's fmix64 without its final xorshift, which changes only the low
 * 31 bits: home slots are the top bits of the last product, and those depend
 * on every bit of the key.
 */
static inline uint64_t
map_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k * 0xc4ceb9fe1a85ec53ull;
}

/* Whether @m has a table; without one its entries are in the handle. */
static inline bool
map_has_table(const struct mg_map *m)
{
	return m->hash_shift != 0;
}

/* Entries the handle holds without a table (0 for values over 24 B). */
static inline unsigned
map_inl_cap(const struct mg_map *m)
{
	return (unsigned)(sizeof(m->inl) / m->slot_size);
}

static inline unsigned char *
map_inl(const struct mg_map *m, unsigned k)
{
	return (unsigned char *)m->inl + (size_t)k * m->slot_size;
}

/* Whether @m's table is one segment, held without a directory. */
static inline bool
map_one_seg(const struct mg_map *m)
{
	return (m->t.mask >> m->seg_shift) == 0;
}

/* @m's segments: its directory, or a one-entry view of its one segment. */
static inline void **
map_segs(struct mg_map *m)
{
	return map_one_seg(m) ? &m->t.table : (void **)m->t.table;
}

static inline unsigned char *
map_slot(const struct mg_map *m, uint64_t i)
{
	if (MG_LIKELY(map_one_seg(m)))
		return (unsigned char *)m->t.table + (size_t)i * m->slot_size;
	return seg_at(m->t.table, m->seg_shift, m->slot_size, i);
}

/* Most table entries before the next insert doubles the table (M2). */
static inline uint64_t
map_limit(const struct mg_map *m)
{
	uint64_t slots = m->t.mask + 1, slack = slots >> 3;

	return slots - (slack ? slack : 1);
}

static inline uint64_t
map_nseg(const struct mg_map *m)
{
	return (m->t.mask >> m->seg_shift) + 1;
}

static inline size_t
map_seg_bytes(const struct mg_map *m)
{
	return ((size_t)1 << m->seg_shift) * m->slot_size;
}

/* The first empty slot from the home of hash @h (M2: there is one). */
static unsigned char *
map_probe_empty(const struct mg_map *m, uint64_t h)
{
	uint64_t i = h >> m->hash_shift;
	unsigned char *s;

	while (load_u64(s = map_slot(m, i)) != MAP_EMPTY)
		i = (i + 1) & m->t.mask;
	return s;
}

/* Free the first @nseg segments of @m's table and its directory, if any. */
static void
map_free_table(struct mg_map *m, struct mg_arena *a, uint64_t nseg)
{
	void **segs = map_segs(m);
	uint64_t k;

	for (k = 0; k < nseg; k++)
		mg_arena_free(a, segs[k], map_seg_bytes(m));
	if (!map_one_seg(m))
		mg_arena_free(a, m->t.table, map_nseg(m) * sizeof(void *));
}

/* Give @n an empty table of 2^@bits slots (its other fields kept); on
 * failure @n's table fields are garbage and nothing is allocated. */
static int
map_new_table(struct mg_map *n, struct mg_arena *a, unsigned bits)
{
	unsigned seg_max = seg_shift_max(n->slot_size);
	uint64_t nseg, per, k, j;
	size_t seg_bytes;
	void **segs;
	int err;

	n->seg_shift = (uint8_t)(bits < seg_max ? bits : seg_max);
	n->hash_shift = (uint8_t)(64u - bits);
	n->t.mask = ((uint64_t)1 << bits) - 1;
	nseg = map_nseg(n);
	if (nseg > DIR_MAX_SEGS)
		return -ENOMEM;
	per = (uint64_t)1 << n->seg_shift;
	seg_bytes = map_seg_bytes(n);
	if (!map_one_seg(n)) {
		err = mg_arena_alloc(a, nseg * sizeof(void *), &n->t.table);
		if (err)
			return err;
	}
	segs = map_segs(n);
	for (k = 0; k < nseg; k++) {
		unsigned char *s;

		err = mg_arena_alloc(a, seg_bytes, &segs[k]);
		if (err) {
			map_free_table(n, a, k);
			return err;
		}
		s = segs[k];
		for (j = 0; j < per; j++)
			store_u64(s + j * n->slot_size, MAP_EMPTY);
	}
	return 0;
}

/* Double the table (M2). */
static int
map_grow(struct mg_map *m, struct mg_arena *a)
{
	struct mg_map n = *m;
	uint64_t nseg = map_nseg(m), per = (uint64_t)1 << m->seg_shift, k, j;
	void **segs = map_segs(m);
	int err = map_new_table(&n, a, 64u - m->hash_shift + 1);

	if (err)
		return err;
	for (k = 0; k < nseg; k++) {
		unsigned char *s = segs[k];

		for (j = 0; j < per; j++, s += m->slot_size) {
			uint64_t key = load_u64(s);

			if (key != MAP_EMPTY)
				memcpy(map_probe_empty(&n, map_hash(key)), s,
				       m->slot_size);
		}
	}
	map_free_table(m, a, nseg);
	*m = n;
	return 0;
}

/* Move the handle's entries into a first table of 2^@bits slots, the key
 * UINT64_MAX's value into a block of its own.  Failure changes nothing. */
static int
map_spill(struct mg_map *m, struct mg_arena *a, unsigned bits)
{
	struct mg_map n = {.value_size = m->value_size,
			   .slot_size = m->slot_size};
	unsigned k;
	int err;

	for (k = 0; k < m->ninl; k++)
		if (load_u64(map_inl(m, k)) == MAP_EMPTY) {
			err = mg_arena_alloc(a, m->value_size, &n.t.max_value);
			if (err)
				return err;
			memcpy(n.t.max_value, map_inl(m, k) + KEY_BYTES,
			       m->value_size);
		}
	err = map_new_table(&n, a, bits);
	if (err) {
		if (n.t.max_value)
			mg_arena_free(a, n.t.max_value, m->value_size);
		return err;
	}
	for (k = 0; k < m->ninl; k++) {
		unsigned char *s = map_inl(m, k);
		uint64_t key = load_u64(s);

		if (key != MAP_EMPTY) {
			memcpy(map_probe_empty(&n, map_hash(key)), s,
			       m->slot_size);
			n.t.used++;
		}
	}
	*m = n;
	return 0;
}

void
mg_map_init(struct mg_map *m, uint32_t value_size)
{
	MG_ASSERT(value_size >= 1 && value_size <= MAP_VALUE_MAX);
	*m = (struct mg_map){
		.value_size = value_size,
		.slot_size = (uint16_t)(KEY_BYTES + round8(value_size)),
	};
}

static int
upsert_max(struct mg_map *m, struct mg_arena *a, void **value)
{
	int err;

	if (m->t.max_value) {
		*value = m->t.max_value;
		return 0;
	}
	err = mg_arena_zalloc(a, m->value_size, &m->t.max_value);
	if (err)
		return err;
	*value = m->t.max_value;
	return 1;
}

static inline int
map_insert(struct mg_map *m, unsigned char *s, uint64_t key, void **value)
{
	store_u64(s, key);
	memset(s + KEY_BYTES, 0, m->value_size);
	m->t.used++;
	*value = s + KEY_BYTES;
	return 1;
}

/* mg_map_upsert() into a map without a table. */
static int
inl_upsert(struct mg_map *m, struct mg_arena *a, uint64_t key, void **value)
{
	unsigned char *s;
	unsigned k;
	int err;

	MG_ASSERT(m->slot_size != 0); /* mg_map_init() was called */
	for (k = 0; k < m->ninl; k++)
		if (load_u64(s = map_inl(m, k)) == key) {
			*value = s + KEY_BYTES;
			return 0;
		}
	if (k < map_inl_cap(m)) {
		s = map_inl(m, k);
		m->ninl++;
		store_u64(s, key);
		memset(s + KEY_BYTES, 0, m->value_size);
		*value = s + KEY_BYTES;
		return 1;
	}
	if (key == MAP_EMPTY) { /* its block first: failure changes nothing */
		void *max;

		err = mg_arena_zalloc(a, m->value_size, &max);
		if (err)
			return err;
		err = map_spill(m, a, MAP_MIN_SHIFT);
		if (err) {
			mg_arena_free(a, max, m->value_size);
			return err;
		}
		m->t.max_value = max;
		*value = max;
		return 1;
	}
	err = map_spill(m, a, MAP_MIN_SHIFT);
	if (err)
		return err;
	return map_insert(m, map_probe_empty(m, map_hash(key)), key, value);
}

int
mg_map_upsert(struct mg_map *m, struct mg_arena *a, uint64_t key, void **value)
{
	uint64_t h, i;
	int err;

	if (!map_has_table(m)) /* with many bins, most maps */
		return inl_upsert(m, a, key, value);
	if (MG_UNLIKELY(key == MAP_EMPTY))
		return upsert_max(m, a, value);
	h = map_hash(key);
	for (i = h >> m->hash_shift;; i = (i + 1) & m->t.mask) {
		unsigned char *s = map_slot(m, i);
		uint64_t k = load_u64(s);

		if (k == key) {
			*value = s + KEY_BYTES;
			return 0;
		}
		if (k == MAP_EMPTY) {
			if (MG_LIKELY(m->t.used < map_limit(m)))
				return map_insert(m, s, key, value);
			break;
		}
	}
	err = map_grow(m, a);
	if (err)
		return err;
	return map_insert(m, map_probe_empty(m, h), key, value);
}

int
mg_map_reserve(struct mg_map *m, struct mg_arena *a, uint64_t n)
{
	int err = 0;

	if (!map_has_table(m)) {
		MG_ASSERT(m->slot_size != 0); /* mg_map_init() was called */
		if (n <= map_inl_cap(m))
			return 0;
		err = map_spill(m, a, MAP_MIN_SHIFT);
	}
	/* Growing a table costs a pass over its entries: a map that is
	 * filled afterwards grows at most once per doubling of its size. */
	while (!err && map_limit(m) < n)
		err = map_grow(m, a);
	return err;
}

void
mg_map_prefetch(const struct mg_map *m, uint64_t key)
{
	if (map_has_table(m))
		__builtin_prefetch(map_slot(m, map_hash(key) >> m->hash_shift),
				   1);
}

void *
mg_map_find(const struct mg_map *m, uint64_t key)
{
	uint64_t i;

	if (!map_has_table(m)) {
		unsigned k;

		for (k = 0; k < m->ninl; k++)
			if (load_u64(map_inl(m, k)) == key)
				return map_inl(m, k) + KEY_BYTES;
		return NULL;
	}
	if (MG_UNLIKELY(key == MAP_EMPTY))
		return m->t.max_value;
	for (i = map_hash(key) >> m->hash_shift;; i = (i + 1) & m->t.mask) {
		unsigned char *s = map_slot(m, i);
		uint64_t k = load_u64(s);

		if (k == key)
			return s + KEY_BYTES;
		if (k == MAP_EMPTY)
			return NULL;
	}
}

/* mg_map_erase() from a map without a table: the last entry fills the
 * hole. */
static bool
inl_erase(struct mg_map *m, uint64_t key)
{
	unsigned k;

	for (k = 0; k < m->ninl; k++)
		if (load_u64(map_inl(m, k)) == key) {
			if (k != --m->ninl)
				memcpy(map_inl(m, k), map_inl(m, m->ninl),
				       m->slot_size);
			return true;
		}
	return false;
}

bool
mg_map_erase(struct mg_map *m, struct mg_arena *a, uint64_t key)
{
	unsigned char *hole;
	uint64_t i, j, k;

	if (!map_has_table(m))
		return inl_erase(m, key);
	if (MG_UNLIKELY(key == MAP_EMPTY)) {
		if (!m->t.max_value)
			return false;
		mg_arena_free(a, m->t.max_value, m->value_size);
		m->t.max_value = NULL;
		return true;
	}
	for (i = map_hash(key) >> m->hash_shift;; i = (i + 1) & m->t.mask) {
		hole = map_slot(m, i);
		k = load_u64(hole);
		if (k == key)
			break;
		if (k == MAP_EMPTY)
			return false;
	}
	/* M3: entry j may fill hole i if i is on its way from its home. */
	for (j = (i + 1) & m->t.mask;; j = (j + 1) & m->t.mask) {
		unsigned char *s = map_slot(m, j);
		uint64_t home;

		k = load_u64(s);
		if (k == MAP_EMPTY)
			break;
		home = map_hash(k) >> m->hash_shift;
		if (((j - home) & m->t.mask) >= ((j - i) & m->t.mask)) {
			memcpy(hole, s, m->slot_size);
			hole = s;
			i = j;
		}
	}
	store_u64(hole, MAP_EMPTY);
	m->t.used--;
	return true;
}

uint64_t
mg_map_count(const struct mg_map *m)
{
	if (!map_has_table(m))
		return m->ninl;
	return m->t.used + (m->t.max_value != NULL);
}

int
mg_map_foreach(const struct mg_map *m,
	       int (*fn)(void *ctx, uint64_t key, void *value), void *ctx)
{
	uint64_t k, j, nseg, per;
	int r;

	if (!map_has_table(m)) {
		for (k = 0; k < m->ninl; k++) {
			unsigned char *s = map_inl(m, (unsigned)k);

			if ((r = fn(ctx, load_u64(s), s + KEY_BYTES)) != 0)
				return r;
		}
		return 0;
	}
	if (m->t.max_value && (r = fn(ctx, UINT64_MAX, m->t.max_value)) != 0)
		return r;
	nseg = map_nseg(m);
	per = (uint64_t)1 << m->seg_shift;
	for (k = 0; k < nseg; k++) {
		unsigned char *s = map_slot(m, k << m->seg_shift);

		for (j = 0; j < per; j++, s += m->slot_size) {
			uint64_t key = load_u64(s);

			if (key != MAP_EMPTY &&
			    (r = fn(ctx, key, s + KEY_BYTES)) != 0)
				return r;
		}
	}
	return 0;
}

void
mg_map_clear(struct mg_map *m, struct mg_arena *a)
{
	if (map_has_table(m)) {
		map_free_table(m, a, map_nseg(m));
		if (m->t.max_value)
			mg_arena_free(a, m->t.max_value, m->value_size);
	}
	mg_map_init(m, m->value_size);
}

/* ---- dense array ------------------------------------------------------------ */

static inline uint64_t
array_nseg(const struct mg_array *arr)
{
	return arr->len ? ((arr->len - 1) >> arr->seg_shift) + 1 : 0;
}

/* Bytes of segment @k: a full one, or what the last one needs. */
static size_t
array_seg_bytes(const struct mg_array *arr, uint64_t k)
{
	uint64_t first = k << arr->seg_shift;
	uint64_t n = (uint64_t)1 << arr->seg_shift;

	if (arr->len - first < n)
		n = arr->len - first;
	return (size_t)n * arr->value_size;
}

void
mg_array_init(struct mg_array *arr, uint64_t len, uint32_t value_size)
{
	unsigned shift;

	MG_ASSERT(value_size >= 1 && value_size <= SEG_MAX_BYTES);
	shift = seg_shift_max(value_size);
	if (len && mg_log2_ceil(len) < shift)
		shift = mg_log2_ceil(len);
	*arr = (struct mg_array){
		.len = len,
		.value_size = value_size,
		.seg_shift = shift,
	};
}

/* First touch of @i's segment (and maybe of the directory). */
static int
array_touch(struct mg_array *arr, struct mg_arena *a, uint64_t i, void **value)
{
	uint64_t nseg = array_nseg(arr);
	void *p;
	int err;

	if (!arr->seg) {
		if (nseg > DIR_MAX_SEGS)
			return -ENOMEM;
		err = mg_arena_zalloc(a, nseg * sizeof(void *), &p);
		if (err)
			return err;
		err = mg_arena_zalloc(a,
				      array_seg_bytes(arr, i >> arr->seg_shift),
				      &((void **)p)[i >> arr->seg_shift]);
		if (err) {
			mg_arena_free(a, p, nseg * sizeof(void *));
			return err;
		}
		arr->seg = p;
	} else {
		err = mg_arena_zalloc(a,
				      array_seg_bytes(arr, i >> arr->seg_shift),
				      &arr->seg[i >> arr->seg_shift]);
		if (err)
			return err;
	}
	*value = seg_at(arr->seg, arr->seg_shift, arr->value_size, i);
	return 0;
}

int
mg_array_at(struct mg_array *arr, struct mg_arena *a, uint64_t i, void **value)
{
	if (MG_UNLIKELY(i >= arr->len))
		return -EINVAL;
	if (MG_LIKELY(arr->seg != NULL && arr->seg[i >> arr->seg_shift])) {
		*value = seg_at(arr->seg, arr->seg_shift, arr->value_size, i);
		return 0;
	}
	return array_touch(arr, a, i, value);
}

void *
mg_array_peek(const struct mg_array *arr, uint64_t i)
{
	if (i >= arr->len || !arr->seg || !arr->seg[i >> arr->seg_shift])
		return NULL;
	return seg_at(arr->seg, arr->seg_shift, arr->value_size, i);
}

void
mg_array_clear(struct mg_array *arr, struct mg_arena *a)
{
	uint64_t k, nseg = array_nseg(arr);

	if (!arr->seg)
		return;
	for (k = 0; k < nseg; k++)
		if (arr->seg[k])
			mg_arena_free(a, arr->seg[k], array_seg_bytes(arr, k));
	mg_arena_free(a, arr->seg, nseg * sizeof(void *));
	arr->seg = NULL;
}

/* ---- timer queue ------------------------------------------------------------ */

static inline unsigned char *
timer_ent(const struct mg_timers *t, uint64_t i)
{
	return seg_at(t->seg, t->seg_shift, t->ent_size, i);
}

/* (time, seq) order. */
static inline bool
timer_less(const unsigned char *x, const unsigned char *y)
{
	uint64_t tx = load_u64(x), ty = load_u64(y);

	return tx < ty || (tx == ty && load_u64(x + sizeof(uint64_t)) <
					       load_u64(y + sizeof(uint64_t)));
}

/* One segment while the heap fits one, then cap / segment. */
static inline uint32_t
timers_nseg(const struct mg_timers *t)
{
	return t->cap >> t->seg_shift;
}

static inline size_t
timers_seg_bytes(const struct mg_timers *t, unsigned shift)
{
	return (size_t)t->ent_size << shift;
}

/* The directory holds the next power of two of nseg pointers. */
static inline size_t
timers_dir_bytes(uint32_t nseg)
{
	return sizeof(void *) << mg_log2_ceil(nseg);
}

static int
timers_grow(struct mg_timers *t, struct mg_arena *a)
{
	unsigned max = seg_shift_max(t->ent_size);
	uint32_t nseg = timers_nseg(t);
	void *seg, *dir;
	int err;

	if (t->cap == 0 || t->seg_shift < max) {
		/* One segment, doubled: a new block, the entries copied. */
		unsigned shift = t->cap ? t->seg_shift + 1 : TIMER_MIN_SHIFT;

		dir = t->seg;
		if (!dir) {
			err = mg_arena_alloc(a, timers_dir_bytes(1), &dir);
			if (err)
				return err;
		}
		err = mg_arena_alloc(a, timers_seg_bytes(t, shift), &seg);
		if (err) {
			if (!t->seg)
				mg_arena_free(a, dir, timers_dir_bytes(1));
			return err;
		}
		if (t->cap) {
			memcpy(seg, t->seg[0], (size_t)t->count * t->ent_size);
			mg_arena_free(a, t->seg[0],
				      timers_seg_bytes(t, t->seg_shift));
		}
		t->seg = dir;
		t->seg[0] = seg;
		t->seg_shift = shift;
		t->cap = 1u << shift;
		return 0;
	}
	/* Full segments: add one; the directory doubles at powers of two. */
	if (nseg == DIR_MAX_SEGS || t->cap > UINT32_MAX - (1u << t->seg_shift))
		return -ENOMEM;
	err = mg_arena_alloc(a, timers_seg_bytes(t, t->seg_shift), &seg);
	if (err)
		return err;
	if (mg_is_pow2(nseg)) {
		err = mg_arena_alloc(a, timers_dir_bytes(nseg + 1), &dir);
		if (err) {
			mg_arena_free(a, seg,
				      timers_seg_bytes(t, t->seg_shift));
			return err;
		}
		memcpy(dir, t->seg, nseg * sizeof(void *));
		mg_arena_free(a, t->seg, timers_dir_bytes(nseg));
		t->seg = dir;
	}
	t->seg[nseg] = seg;
	t->cap += 1u << t->seg_shift;
	return 0;
}

void
mg_timers_init(struct mg_timers *t, uint32_t rec_size)
{
	MG_ASSERT(rec_size <= TIMER_REC_MAX);
	*t = (struct mg_timers){
		.rec_size = rec_size,
		.ent_size = (uint32_t)(TIMER_HDR + round8(rec_size)),
	};
}

int
mg_timers_push(struct mg_timers *t, struct mg_arena *a, uint64_t time,
	       const void *rec)
{
	unsigned char *e;
	uint64_t i, parent;
	int err;

	MG_ASSERT(t->ent_size != 0); /* mg_timers_init() was called */
	if (MG_UNLIKELY(t->count == t->cap)) {
		err = timers_grow(t, a);
		if (err)
			return err;
	}
	/* Sift up: a parent with an equal time has a smaller seq and stays. */
	for (i = t->count; i > 0; i = parent) {
		unsigned char *p;

		parent = (i - 1) / 2;
		p = timer_ent(t, parent);
		if (load_u64(p) <= time)
			break;
		memcpy(timer_ent(t, i), p, t->ent_size);
	}
	e = timer_ent(t, i);
	store_u64(e, time);
	store_u64(e + sizeof(uint64_t), t->seq++);
	if (t->rec_size)
		memcpy(e + TIMER_HDR, rec, t->rec_size);
	t->count++;
	return 0;
}

uint64_t
mg_timers_next(const struct mg_timers *t)
{
	return t->count ? load_u64(t->seg[0]) : UINT64_MAX;
}

bool
mg_timers_pop(struct mg_timers *t, uint64_t upto, uint64_t *time, void *rec)
{
	unsigned char *top, *last;
	uint64_t i, child, n;

	if (t->count == 0)
		return false;
	top = t->seg[0];
	if (load_u64(top) > upto)
		return false;
	*time = load_u64(top);
	if (t->rec_size)
		memcpy(rec, top + TIMER_HDR, t->rec_size);
	n = --t->count;
	if (n == 0)
		return true;
	/* Sift down the hole at the root, then fill it with the last entry. */
	last = timer_ent(t, n);
	for (i = 0; (child = 2 * i + 1) < n; i = child) {
		unsigned char *c = timer_ent(t, child);

		if (child + 1 < n) {
			unsigned char *r = timer_ent(t, child + 1);

			if (timer_less(r, c)) {
				c = r;
				child++;
			}
		}
		if (!timer_less(c, last))
			break;
		memcpy(timer_ent(t, i), c, t->ent_size);
	}
	memcpy(timer_ent(t, i), last, t->ent_size);
	return true;
}

uint32_t
mg_timers_count(const struct mg_timers *t)
{
	return t->count;
}

const void *
mg_timers_at(const struct mg_timers *t, uint32_t i, uint64_t *time)
{
	const unsigned char *e;

	MG_ASSERT(i < t->count);
	e = timer_ent(t, i);
	*time = load_u64(e);
	return e + TIMER_HDR;
}

void
mg_timers_clear(struct mg_timers *t, struct mg_arena *a)
{
	uint32_t k, nseg = timers_nseg(t);

	if (t->seg) {
		for (k = 0; k < nseg; k++)
			mg_arena_free(a, t->seg[k],
				      timers_seg_bytes(t, t->seg_shift));
		mg_arena_free(a, t->seg, timers_dir_bytes(nseg));
	}
	mg_timers_init(t, t->rec_size);
}
