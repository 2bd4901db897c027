/*
 * queries.c - NEXMark Q1..Q8 on the engine (semantics: nexmark.h).
 *
 * Every query starts with a flat_map that projects the events it reads into
 * compact records, then either routes them (the stateless Q1, Q2) or feeds
 * stateful operators whose state lives in bins: hash maps keyed by the
 * entity id (persons, auctions, sellers, categories, windows), timers for
 * auction expiries and window ends.  The same operator functions run in
 * the native form (static partitioning, state per worker) and in the
 * migratable form (state per bin), so the two differ only in routing.
 *
 * Bins hash ids with a mixer other than the maps' own, so that the keys of
 * one bin (equal top bits here) still spread over the bin's table.
 *
 * Deadlines in event time (expiries, window ends) become engine times with
 * nx_close_epoch(): when a timer fires, every event before the deadline has
 * been applied and none after it.  Windows are at least two epochs long
 * (nx_config_check), so a bin holds at most two open windows: the
 * windowed queries keep their per-window state in two slots by parity.
 *
 * Outputs that depend on several records of one time are computed from all
 * of them (the order of records within a time is unspecified), so every
 * output is a function of the input and the times alone, and migrations
 * cannot change it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bench/nexmark/nexmark.h"

int
nx_query_parse(const char *s, enum nx_query *q)
{
	if (s[0] != 'q' || s[1] < '1' || s[1] > '8' || s[2])
		return -EINVAL;
	*q = (enum nx_query)(NX_Q1 + (s[1] - '1'));
	return 0;
}

/* The bin (or native worker) hash of an id. */
static uint64_t
id_hash(uint64_t id)
{
	return mg_hash64(id + 0x632be59bd9b4e019ull);
}

#define SLOTS 2 /* open windows per bin */

/* ---- copy mode: a root struct followed by its maps ------------------------- */

/* Write the root bytes, then each of its @n consecutive maps at @off. */
static int
copy_out(const struct mg_bin_call *c, size_t size, size_t off, unsigned n,
	 struct mg_writer *w)
{
	const struct mg_map *m =
		(const struct mg_map *)(const void *)((const char *)c->state +
						      off);
	int err = mg_write(w, c->state, size);
	unsigned i;

	for (i = 0; !err && i < n; i++) {
		err = mg_write(w, &m[i].value_size, sizeof(m[i].value_size));
		if (!err && m[i].value_size)
			err = mg_map_write(&m[i], w);
	}
	return err;
}

static int
copy_in(struct mg_bin_call *c, size_t size, size_t off, unsigned n,
	struct mg_reader *r)
{
	struct mg_map *m = (struct mg_map *)(void *)((char *)c->state + off);
	int err = mg_read(r, c->state, size);
	uint32_t vs;
	unsigned i;

	for (i = 0; !err && i < n; i++) {
		err = mg_read(r, &vs, sizeof(vs));
		memset(&m[i], 0, sizeof(m[i])); /* the old owner's handle */
		if (err || !vs)
			continue;
		mg_map_init(&m[i], vs);
		err = mg_map_read(&m[i], c->arena, r);
	}
	return err;
}

/* Serializers of a root type whose maps are the array field @maps. */
#define COPY_FNS(name, type, maps)                                             \
	static int name##_ser(void *ctx, struct mg_bin_call *c,                \
			      struct mg_writer *w)                             \
	{                                                                      \
		(void)ctx;                                                     \
		return copy_out(                                               \
			c, sizeof(type), offsetof(type, maps),                 \
			sizeof(((type *)0)->maps) / sizeof(struct mg_map), w); \
	}                                                                      \
	static int name##_des(void *ctx, struct mg_bin_call *c,                \
			      struct mg_reader *r)                             \
	{                                                                      \
		(void)ctx;                                                     \
		return copy_in(                                                \
			c, sizeof(type), offsetof(type, maps),                 \
			sizeof(((type *)0)->maps) / sizeof(struct mg_map), r); \
	}

/* A stage whose state lives only within one call: nothing to move. */
static int
none_ser(void *ctx, struct mg_bin_call *c, struct mg_writer *w)
{
	(void)ctx, (void)c, (void)w;
	return 0;
}

static int
none_des(void *ctx, struct mg_bin_call *c, struct mg_reader *r)
{
	(void)ctx, (void)c, (void)r;
	return 0;
}

/* A map's value for @key, inserted zeroed if absent; NULL on -ENOMEM
 * (recorded in the call). */
static void *
upsert(struct mg_bin_call *c, struct mg_map *m, uint32_t value_size,
       uint64_t key)
{
	void *v;
	int err;

	if (!m->value_size)
		mg_map_init(m, value_size);
	err = mg_map_upsert(m, c->arena, key, &v);
	if (err < 0) {
		c->error = err;
		return NULL;
	}
	return v;
}

/* ---- building blocks ------------------------------------------------------- */

struct builder {
	struct mg_dataflow *df;
	const struct nx_config *c;
	bool native;
};

/* The queries' builders return 0 or the error the dataflow latched (the
 * engine's builders return the stream and latch their errors). */
static int
built(struct mg_dataflow *df, struct mg_stream *s, struct mg_stream **out)
{
	*out = s;
	return s ? 0 : mg_dataflow_error(df);
}

static int
stateful(const struct builder *b, struct mg_stream *in0, mg_hash_fn h0,
	 struct mg_stream *in1, mg_hash_fn h1, uint32_t out_size,
	 uint32_t state_size, uint32_t timer_size, mg_bin_fn fn,
	 int (*ser)(void *, struct mg_bin_call *, struct mg_writer *),
	 int (*des)(void *, struct mg_bin_call *, struct mg_reader *),
	 struct mg_stream **out)
{
	struct mg_stateful_config sc = {
		.ninputs = in1 ? 2 : 1,
		.in = {in0, in1},
		.hash = {h0, h1},
		.hash_ctx = (void *)b->c,
		.out_record_size = out_size,
		.state_size = state_size,
		.timer_record_size = timer_size,
		.fn = fn,
		.ctx = (void *)b->c,
		.native = b->native,
		.serialize = ser,
		.deserialize = des,
	};

	return built(b->df, mg_stateful(b->df, &sc), out);
}

static const struct nx_event *
event(const void *rec)
{
	return rec;
}

/* ---- Q1, Q2: stateless ---------------------------------------------------- */

static void
q1_map(void *ctx, const void *rec, struct mg_emitter *out)
{
	const struct nx_event *ev = event(rec);
	struct nx_out o;

	(void)ctx;
	if (ev->kind != NX_BID)
		return;
	memset(&o, 0, sizeof(o));
	o.v[0] = ev->u.bid.auction;
	o.v[1] = ev->u.bid.bidder;
	o.v[2] = ev->u.bid.price * 908 / 1000;
	o.v[3] = ev->u.bid.date_time;
	mg_emit(out, &o);
}

static void
q2_map(void *ctx, const void *rec, struct mg_emitter *out)
{
	const struct nx_event *ev = event(rec);
	struct nx_out o;

	(void)ctx;
	if (ev->kind != NX_BID || ev->u.bid.auction % 123)
		return;
	memset(&o, 0, sizeof(o));
	o.v[0] = ev->u.bid.auction;
	o.v[1] = ev->u.bid.price;
	mg_emit(out, &o);
}

static uint64_t
out_hash(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct nx_out *)rec)->v[0]);
}

/* Route by auction: by bin (migratable) or worker (native). */
static int
stateless(const struct builder *b, mg_flat_map_fn fn, struct mg_stream *ev,
	  struct mg_stream **out)
{
	struct mg_stream *s;
	int err = built(b->df,
			mg_flat_map(b->df, ev, sizeof(struct nx_out), fn, NULL),
			&s);

	if (err)
		return err;
	return built(b->df,
		     b->native ? mg_exchange(b->df, s, out_hash, NULL)
			       : mg_distribute(b->df, s, out_hash, NULL),
		     out);
}

/* ---- Q3: local item suggestion ------------------------------------------- */

struct q3_person {
	uint64_t id;
	uint32_t qualifies;
	char name[16], city[16], state[4];
};

struct q3_auction {
	uint64_t id, seller;
};

enum { Q3_UNKNOWN, Q3_NO, Q3_YES };

/* Per person id: whether it arrived and qualifies, its auctions waiting
 * for it (pending keys (id << Q3_SHIFT) + 0 .. npending - 1). */
struct q3_pval {
	uint32_t status, npending;
	char name[16], city[16], state[4];
};

#define Q3_SHIFT 20

struct q3_root {
	struct mg_map maps[2]; /* persons: id -> q3_pval; pending -> auction */
};

COPY_FNS(q3, struct q3_root, maps)

static void
q3_map_persons(void *ctx, const void *rec, struct mg_emitter *out)
{
	const struct nx_event *ev = event(rec);
	const struct nx_person *p = &ev->u.person;
	struct q3_person o;

	(void)ctx;
	if (ev->kind != NX_PERSON)
		return;
	memset(&o, 0, sizeof(o));
	o.id = p->id;
	o.qualifies = !strcmp(p->state, "OR") || !strcmp(p->state, "ID") ||
		      !strcmp(p->state, "CA");
	memcpy(o.name, p->name, sizeof(o.name));
	memcpy(o.city, p->city, sizeof(o.city));
	memcpy(o.state, p->state, sizeof(o.state));
	mg_emit(out, &o);
}

static void
q3_map_auctions(void *ctx, const void *rec, struct mg_emitter *out)
{
	const struct nx_event *ev = event(rec);

	(void)ctx;
	if (ev->kind == NX_AUCTION && ev->u.auction.category == 10)
		mg_emit(out, &(struct q3_auction){ev->u.auction.id,
						  ev->u.auction.seller});
}

static uint64_t
q3_hash_person(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct q3_person *)rec)->id);
}

static uint64_t
q3_hash_auction(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct q3_auction *)rec)->seller);
}

static void
q3_emit(struct mg_emitter *out, const struct q3_pval *p, uint64_t person,
	uint64_t auction)
{
	struct nx_out o;

	memset(&o, 0, sizeof(o));
	o.v[0] = auction;
	o.v[1] = person;
	snprintf(o.s, sizeof(o.s), "%s,%s,%s", p->name, p->city, p->state);
	mg_emit(out, &o);
}

static void
q3_join(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct q3_person *pin = c->in[0];
	const struct q3_auction *ain = c->in[1];
	struct q3_root *r = c->state;
	struct q3_pval *p;
	uint32_t i, k;

	(void)ctx;
	for (i = 0; i < c->n_in[0]; i++) {
		uint64_t *a;

		p = upsert(c, &r->maps[0], sizeof(*p), pin[i].id);
		if (!p)
			return;
		p->status = pin[i].qualifies ? Q3_YES : Q3_NO;
		memcpy(p->name, pin[i].name, sizeof(p->name));
		memcpy(p->city, pin[i].city, sizeof(p->city));
		memcpy(p->state, pin[i].state, sizeof(p->state));
		for (k = 0; k < p->npending; k++) {
			uint64_t key = (pin[i].id << Q3_SHIFT) + k;

			a = mg_map_find(&r->maps[1], key);
			if (p->status == Q3_YES)
				q3_emit(out, p, pin[i].id, *a);
			mg_map_erase(&r->maps[1], c->arena, key);
		}
		p->npending = 0;
	}
	for (i = 0; i < c->n_in[1]; i++) {
		uint64_t *a;

		p = upsert(c, &r->maps[0], sizeof(*p), ain[i].seller);
		if (!p)
			return;
		if (p->status == Q3_YES) {
			q3_emit(out, p, ain[i].seller, ain[i].id);
		} else if (p->status == Q3_UNKNOWN) {
			if (p->npending == 1u << Q3_SHIFT) {
				c->error = -E2BIG;
				return;
			}
			k = p->npending++;
			a = upsert(c, &r->maps[1], sizeof(*a),
				   (ain[i].seller << Q3_SHIFT) + k);
			if (!a)
				return;
			*a = ain[i].id;
		}
	}
}

static int
q3_build(const struct builder *b, struct mg_stream *ev, struct mg_stream **out)
{
	struct mg_stream *persons, *auctions;
	int err;

	err = built(b->df,
		    mg_flat_map(b->df, ev, sizeof(struct q3_person),
				q3_map_persons, NULL),
		    &persons);
	if (!err)
		err = built(b->df,
			    mg_flat_map(b->df, ev, sizeof(struct q3_auction),
					q3_map_auctions, NULL),
			    &auctions);
	if (!err)
		err = stateful(b, persons, q3_hash_person, auctions,
			       q3_hash_auction, sizeof(struct nx_out),
			       sizeof(struct q3_root), 0, q3_join, q3_ser,
			       q3_des, out);
	return err;
}

/* ---- closing auctions (Q4, Q6) -------------------------------------------- */

struct open_auction {
	uint64_t id, seller, category, reserve, date_time, expires;
};

/* A closed auction: its winning bid's price. */
struct closed {
	uint64_t auction, seller, category, price, expires;
};

struct open_val {
	uint64_t seller, category, reserve, date_time, expires, best;
};

struct close_root {
	struct mg_map maps[1]; /* auction id -> open_val */
};

COPY_FNS(close, struct close_root, maps)

static void
close_map_auctions(void *ctx, const void *rec, struct mg_emitter *out)
{
	const struct nx_event *ev = event(rec);
	const struct nx_auction *a = &ev->u.auction;

	(void)ctx;
	if (ev->kind == NX_AUCTION)
		mg_emit(out, &(struct open_auction){a->id, a->seller,
						    a->category, a->reserve,
						    a->date_time, a->expires});
}

static void
map_bids(void *ctx, const void *rec, struct mg_emitter *out)
{
	const struct nx_event *ev = event(rec);

	(void)ctx;
	if (ev->kind == NX_BID)
		mg_emit(out, &ev->u.bid);
}

static uint64_t
hash_open_auction(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct open_auction *)rec)->id);
}

static uint64_t
hash_bid_auction(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct nx_bid *)rec)->auction);
}

/*
 * Auctions (input 0) open; bids (input 1) raise their auction's best
 * qualifying price; a timer at the expiry closes the auction.  A bid for an
 * auction not seen yet precedes it in event time, so it cannot qualify.
 */
static void
close_fn(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct nx_config *cfg = ctx;
	const struct open_auction *a = c->in[0];
	const struct nx_bid *bid = c->in[1];
	const uint64_t *due = c->timers;
	struct close_root *r = c->state;
	struct open_val *v;
	uint32_t i;

	for (i = 0; i < c->n_in[0]; i++) {
		v = upsert(c, &r->maps[0], sizeof(*v), a[i].id);
		if (!v)
			return;
		*v = (struct open_val){a[i].seller,  a[i].category,
				       a[i].reserve, a[i].date_time,
				       a[i].expires, 0};
		c->error = mg_schedule(c, nx_close_epoch(cfg, a[i].expires),
				       &a[i].id);
		if (c->error)
			return;
	}
	for (i = 0; i < c->n_in[1]; i++) {
		v = r->maps[0].value_size
			    ? mg_map_find(&r->maps[0], bid[i].auction)
			    : NULL;
		if (v && bid[i].price >= v->reserve &&
		    bid[i].date_time >= v->date_time &&
		    bid[i].date_time < v->expires && bid[i].price > v->best)
			v->best = bid[i].price;
	}
	for (i = 0; i < c->n_timers; i++) {
		v = mg_map_find(&r->maps[0], due[i]);
		if (v->best)
			mg_emit(out,
				&(struct closed){due[i], v->seller, v->category,
						 v->best, v->expires});
		mg_map_erase(&r->maps[0], c->arena, due[i]);
	}
}

static int
closing_build(const struct builder *b, struct mg_stream *ev,
	      struct mg_stream **out)
{
	struct mg_stream *auctions, *bids;
	int err;

	err = built(b->df,
		    mg_flat_map(b->df, ev, sizeof(struct open_auction),
				close_map_auctions, NULL),
		    &auctions);
	if (!err)
		err = built(b->df,
			    mg_flat_map(b->df, ev, sizeof(struct nx_bid),
					map_bids, NULL),
			    &bids);
	if (!err)
		err = stateful(b, auctions, hash_open_auction, bids,
			       hash_bid_auction, sizeof(struct closed),
			       sizeof(struct close_root), sizeof(uint64_t),
			       close_fn, close_ser, close_des, out);
	return err;
}

/* ---- Q4: average closing price per category ------------------------------ */

struct q4_val {
	uint64_t sum, count, emitted; /* emitted: time + 1 of the last output */
};

struct q4_root {
	struct mg_map maps[1]; /* category -> q4_val */
};

COPY_FNS(q4, struct q4_root, maps)

static uint64_t
hash_closed_category(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct closed *)rec)->category);
}

static void
q4_fn(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct closed *in = c->in[0];
	struct q4_root *r = c->state;
	struct q4_val *v;
	struct nx_out o;
	uint32_t i;

	(void)ctx;
	for (i = 0; i < c->n_in[0]; i++) {
		v = upsert(c, &r->maps[0], sizeof(*v), in[i].category);
		if (!v)
			return;
		v->sum += in[i].price;
		v->count++;
	}
	for (i = 0; i < c->n_in[0]; i++) { /* once per category and time */
		v = mg_map_find(&r->maps[0], in[i].category);
		if (v->emitted == c->time + 1)
			continue;
		v->emitted = c->time + 1;
		memset(&o, 0, sizeof(o));
		o.v[0] = in[i].category;
		o.v[1] = v->sum / v->count;
		o.v[2] = v->count;
		mg_emit(out, &o);
	}
}

/* ---- Q6: average selling price of a seller's last 10 auctions ------------- */

#define Q6_LAST 10

struct q6_val {
	uint64_t n, emitted;
	struct {
		uint64_t expires, auction, price;
	} last[Q6_LAST];
};

struct q6_root {
	struct mg_map maps[1]; /* seller -> q6_val */
};

COPY_FNS(q6, struct q6_root, maps)

static uint64_t
hash_closed_seller(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct closed *)rec)->seller);
}

static bool
q6_before(uint64_t e1, uint64_t a1, uint64_t e2, uint64_t a2)
{
	return e1 < e2 || (e1 == e2 && a1 < a2);
}

/* Keep the Q6_LAST latest by (expires, auction): independent of the order
 * in which one time's closings arrive. */
static void
q6_fn(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct closed *in = c->in[0];
	struct q6_root *r = c->state;
	struct q6_val *v;
	struct nx_out o;
	uint32_t i;
	uint64_t k, min, sum;

	(void)ctx;
	for (i = 0; i < c->n_in[0]; i++) {
		v = upsert(c, &r->maps[0], sizeof(*v), in[i].seller);
		if (!v)
			return;
		if (v->n < Q6_LAST) {
			k = v->n++;
		} else {
			for (min = 0, k = 1; k < Q6_LAST; k++)
				if (q6_before(v->last[k].expires,
					      v->last[k].auction,
					      v->last[min].expires,
					      v->last[min].auction))
					min = k;
			k = min;
			if (q6_before(in[i].expires, in[i].auction,
				      v->last[k].expires, v->last[k].auction))
				continue; /* older than all ten */
		}
		v->last[k].expires = in[i].expires;
		v->last[k].auction = in[i].auction;
		v->last[k].price = in[i].price;
	}
	for (i = 0; i < c->n_in[0]; i++) {
		v = mg_map_find(&r->maps[0], in[i].seller);
		if (v->emitted == c->time + 1)
			continue;
		v->emitted = c->time + 1;
		for (sum = 0, k = 0; k < v->n; k++)
			sum += v->last[k].price;
		memset(&o, 0, sizeof(o));
		o.v[0] = in[i].seller;
		o.v[1] = sum / v->n;
		o.v[2] = v->n;
		mg_emit(out, &o);
	}
}

/* ---- Q5: hot items --------------------------------------------------------- */

#define Q5_MAX_SLIDES 80

/* A bin's local maximum of one window, for the global stage. */
struct q5_local {
	uint64_t window, auction, count;
};

#define Q5_TOP 8 /* keys at the maximum kept by name */

/*
 * Bids of slide j count in bucket[j % (N + 1)]; win holds the counts of
 * window `open` (slides open - N + 1 .. open); the slide after it may
 * already be filling (its bids arrive before window open closes) and joins
 * win when it does.  The maximum of win is kept up to date as counts move
 * (max, nmax entries at it, their keys in top[] unless more than Q5_TOP
 * or `stale`), so closing a window costs the slide that leaves it, not a
 * scan of the window; a scan happens only when the last entry at the
 * maximum drops or ties overflow top[].
 */
struct q5_root {
	uint64_t open, active;
	uint64_t max, nmax, stale;
	uint64_t top[Q5_TOP];
	struct mg_map maps[Q5_MAX_SLIDES + 2]; /* win, bucket[N + 1] */
};

_Static_assert(sizeof(struct q5_root) <= 4096, "mg_stateful state_size limit");

COPY_FNS(q5, struct q5_root, maps)

static uint64_t
q5_slides(const struct nx_config *c)
{
	return c->q5_window_ns / c->q5_slide_ns;
}

static uint64_t
q5_close(const struct nx_config *c, uint64_t window)
{
	return nx_close_epoch(c, c->base_ns + (window + 1) * c->q5_slide_ns);
}

struct q5_visit {
	struct mg_bin_call *c;
	struct q5_root *r;
	struct mg_emitter *out;
	uint64_t window;
};

/* Count @k more bids of @auction in win. */
static int
q5_win_add(struct mg_bin_call *c, struct q5_root *r, uint64_t auction,
	   uint64_t k)
{
	uint64_t *n = upsert(c, &r->maps[0], sizeof(*n), auction);

	if (!n)
		return -ENOMEM;
	*n += k;
	if (*n > r->max) {
		r->max = *n;
		r->nmax = 1;
		r->stale = 0;
		r->top[0] = auction;
	} else if (*n == r->max) {
		if (r->nmax < Q5_TOP && !r->stale)
			r->top[r->nmax] = auction;
		else
			r->stale = 1;
		r->nmax++;
	}
	return 0;
}

/* Count @k fewer bids of @auction in win. */
static void
q5_win_sub(struct mg_bin_call *c, struct q5_root *r, uint64_t auction,
	   uint64_t k)
{
	uint64_t *n = mg_map_find(&r->maps[0], auction), i;

	if (*n == r->max) {
		for (i = 0; !r->stale && i < r->nmax; i++)
			if (r->top[i] == auction) {
				r->top[i] = r->top[r->nmax - 1];
				break;
			}
		r->nmax--;
	}
	*n -= k;
	if (!*n)
		mg_map_erase(&r->maps[0], c->arena, auction);
}

static int
q5_find_max(void *ctx, uint64_t key, void *value)
{
	struct q5_root *r = ctx;

	(void)key;
	if (*(uint64_t *)value > r->max)
		r->max = *(uint64_t *)value;
	return 0;
}

static int
q5_find_top(void *ctx, uint64_t key, void *value)
{
	struct q5_root *r = ctx;

	if (*(uint64_t *)value != r->max)
		return 0;
	if (r->nmax < Q5_TOP)
		r->top[r->nmax] = key;
	else
		r->stale = 1;
	r->nmax++;
	return 0;
}

/* Recompute max, nmax and top[] from win. */
static void
q5_rescan(struct q5_root *r)
{
	r->max = r->nmax = r->stale = 0;
	if (!r->maps[0].value_size)
		return;
	mg_map_foreach(&r->maps[0], q5_find_max, r);
	mg_map_foreach(&r->maps[0], q5_find_top, r);
}

static int
q5_emit_max(void *ctx, uint64_t key, void *value)
{
	struct q5_visit *q = ctx;

	if (*(uint64_t *)value == q->r->max)
		mg_emit(q->out, &(struct q5_local){q->window, key, q->r->max});
	return 0;
}

static int
q5_add_bucket(void *ctx, uint64_t key, void *value)
{
	struct q5_visit *q = ctx;

	return q5_win_add(q->c, q->r, key, *(uint64_t *)value);
}

static int
q5_sub_bucket(void *ctx, uint64_t key, void *value)
{
	struct q5_visit *q = ctx;

	q5_win_sub(q->c, q->r, key, *(uint64_t *)value);
	return 0;
}

/* Window r->open closes: send its local maxima, slide it by one. */
static int
q5_close_window(const struct nx_config *cfg, struct mg_bin_call *c,
		struct q5_root *r, struct mg_emitter *out)
{
	struct mg_map *bucket = &r->maps[1];
	uint64_t N = q5_slides(cfg), i;
	struct q5_visit q = {c, r, out, r->open};

	/* The entries at the maximum dropped, or top[] can be exact again. */
	if ((!r->nmax || (r->stale && r->nmax <= Q5_TOP)) &&
	    r->maps[0].value_size && mg_map_count(&r->maps[0]))
		q5_rescan(r);
	if (r->stale)
		mg_map_foreach(&r->maps[0], q5_emit_max, &q);
	for (i = 0; !r->stale && i < r->nmax; i++)
		mg_emit(out, &(struct q5_local){r->open, r->top[i], r->max});
	if (r->open + 1 >= N) { /* the oldest slide leaves */
		struct mg_map *old = &bucket[(r->open + 1 - N) % (N + 1)];

		if (old->value_size) {
			mg_map_foreach(old, q5_sub_bucket, &q);
			mg_map_clear(old, c->arena);
		}
	}
	r->open++;
	if (bucket[r->open % (N + 1)].value_size &&
	    mg_map_foreach(&bucket[r->open % (N + 1)], q5_add_bucket, &q))
		return c->error;
	if (!r->maps[0].value_size || !mg_map_count(&r->maps[0])) {
		r->active = 0;
		r->max = r->nmax = r->stale = 0;
		return 0;
	}
	return mg_schedule(c, q5_close(cfg, r->open), &r->open);
}

static void
q5_fn(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct nx_config *cfg = ctx;
	const struct nx_bid *in = c->in[0];
	const uint64_t *due = c->timers;
	struct q5_root *r = c->state;
	struct mg_map *bucket = &r->maps[1];
	uint64_t N = q5_slides(cfg), j, *n;
	uint32_t i;

	for (i = 0; i < c->n_timers; i++) {
		MG_ASSERT(r->active && due[i] == r->open);
		c->error = q5_close_window(cfg, c, r, out);
		if (c->error)
			return;
	}
	if (!r->active && c->n_in[0]) {
		/* Open at the call's earliest slide: one time may hold bids of
		 * two slides, in any order. */
		r->open = UINT64_MAX;
		for (i = 0; i < c->n_in[0]; i++) {
			j = (in[i].date_time - cfg->base_ns) / cfg->q5_slide_ns;
			r->open = j < r->open ? j : r->open;
		}
		r->active = 1;
		c->error = mg_schedule(c, q5_close(cfg, r->open), &r->open);
		if (c->error)
			return;
	}
	for (i = 0; i < c->n_in[0]; i++) {
		j = (in[i].date_time - cfg->base_ns) / cfg->q5_slide_ns;
		MG_ASSERT(j >= r->open && j <= r->open + 1);
		n = upsert(c, &bucket[j % (N + 1)], sizeof(*n), in[i].auction);
		if (!n)
			return;
		++*n;
		if (j == r->open && q5_win_add(c, r, in[i].auction, 1))
			return;
	}
}

static uint64_t
q5_hash_window(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct q5_local *)rec)->window);
}

/*
 * The global stage: every bin's local maxima of a window arrive at the
 * window's close, and no other window closes then (windows are at least two
 * epochs apart), so a call sees exactly one window.
 */
static void
q5_global(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct nx_config *cfg = ctx;
	const struct q5_local *in = c->in[0];
	uint64_t max = 0;
	struct nx_out o;
	uint32_t i;

	for (i = 0; i < c->n_in[0]; i++) {
		if (in[i].window != in[0].window) {
			c->error = -EPROTO; /* a broken window contract */
			return;
		}
		max = in[i].count > max ? in[i].count : max;
	}
	for (i = 0; i < c->n_in[0]; i++) {
		if (in[i].count != max)
			continue;
		memset(&o, 0, sizeof(o));
		o.v[0] = cfg->base_ns + (in[i].window + 1) * cfg->q5_slide_ns;
		o.v[1] = in[i].auction;
		o.v[2] = in[i].count;
		mg_emit(out, &o);
	}
}

/* ---- Q7: highest bid ------------------------------------------------------- */

struct q7_local {
	uint64_t window, auction, bidder, price;
};

/* Per open window (slot by parity): the window, its highest price and the
 * bids at that price (maps: index -> q7_local). */
struct q7_root {
	uint64_t window[SLOTS], max[SLOTS], n[SLOTS], active[SLOTS];
	struct mg_map maps[SLOTS];
};

COPY_FNS(q7, struct q7_root, maps)

static void
q7_fn(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct nx_config *cfg = ctx;
	const struct nx_bid *in = c->in[0];
	const uint64_t *due = c->timers;
	struct q7_root *r = c->state;
	struct q7_local *l;
	uint64_t w, k;
	uint32_t i;
	unsigned s;

	for (i = 0; i < c->n_timers; i++) {
		s = due[i] % SLOTS;
		MG_ASSERT(r->active[s] && r->window[s] == due[i]);
		for (k = 0; k < r->n[s]; k++)
			mg_emit(out, mg_map_find(&r->maps[s], k));
		r->active[s] = 0;
	}
	for (i = 0; i < c->n_in[0]; i++) {
		w = (in[i].date_time - cfg->base_ns) / cfg->q7_window_ns;
		s = w % SLOTS;
		if (!r->active[s]) {
			r->active[s] = 1;
			r->window[s] = w;
			r->max[s] = 0;
			r->n[s] = 0;
			c->error = mg_schedule(
				c,
				nx_close_epoch(
					cfg,
					cfg->base_ns +
						(w + 1) * cfg->q7_window_ns),
				&w);
			if (c->error)
				return;
		}
		MG_ASSERT(r->window[s] == w);
		if (in[i].price < r->max[s])
			continue;
		if (in[i].price > r->max[s]) {
			r->max[s] = in[i].price;
			r->n[s] = 0; /* entries are overwritten */
		}
		l = upsert(c, &r->maps[s], sizeof(*l), r->n[s]++);
		if (!l)
			return;
		*l = (struct q7_local){w, in[i].auction, in[i].bidder,
				       in[i].price};
	}
}

static uint64_t
q7_hash_window(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct q7_local *)rec)->window);
}

/* As q5_global(): one window per call. */
static void
q7_global(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct nx_config *cfg = ctx;
	const struct q7_local *in = c->in[0];
	uint64_t max = 0;
	struct nx_out o;
	uint32_t i;

	for (i = 0; i < c->n_in[0]; i++) {
		if (in[i].window != in[0].window) {
			c->error = -EPROTO;
			return;
		}
		max = in[i].price > max ? in[i].price : max;
	}
	for (i = 0; i < c->n_in[0]; i++) {
		if (in[i].price != max)
			continue;
		memset(&o, 0, sizeof(o));
		o.v[0] = cfg->base_ns + in[i].window * cfg->q7_window_ns;
		o.v[1] = in[i].auction;
		o.v[2] = in[i].bidder;
		o.v[3] = in[i].price;
		mg_emit(out, &o);
	}
}

/* ---- Q8: monitor new users ------------------------------------------------- */

struct q8_person {
	uint64_t id, date_time;
	char name[16];
};

struct q8_seller {
	uint64_t seller, date_time;
};

struct q8_val {
	uint32_t person, seller, emitted, pad;
	char name[16];
};

/* Per open window (slot by parity): person id -> q8_val. */
struct q8_root {
	uint64_t window[SLOTS], active[SLOTS];
	struct mg_map maps[SLOTS];
};

COPY_FNS(q8, struct q8_root, maps)

static void
q8_map_persons(void *ctx, const void *rec, struct mg_emitter *out)
{
	const struct nx_event *ev = event(rec);
	struct q8_person o;

	(void)ctx;
	if (ev->kind != NX_PERSON)
		return;
	memset(&o, 0, sizeof(o));
	o.id = ev->u.person.id;
	o.date_time = ev->u.person.date_time;
	memcpy(o.name, ev->u.person.name, sizeof(o.name));
	mg_emit(out, &o);
}

static void
q8_map_auctions(void *ctx, const void *rec, struct mg_emitter *out)
{
	const struct nx_event *ev = event(rec);

	(void)ctx;
	if (ev->kind == NX_AUCTION)
		mg_emit(out, &(struct q8_seller){ev->u.auction.seller,
						 ev->u.auction.date_time});
}

static uint64_t
q8_hash_person(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct q8_person *)rec)->id);
}

static uint64_t
q8_hash_seller(void *ctx, const void *rec)
{
	(void)ctx;
	return id_hash(((const struct q8_seller *)rec)->seller);
}

/* The entry of @id in the window of @date_time, opening the window. */
static struct q8_val *
q8_entry(struct mg_bin_call *c, const struct nx_config *cfg, uint64_t id,
	 uint64_t date_time, uint64_t *window)
{
	struct q8_root *r = c->state;
	uint64_t w = (date_time - cfg->base_ns) / cfg->q8_window_ns;
	unsigned s = w % SLOTS;

	*window = w;
	if (!r->active[s]) {
		r->active[s] = 1;
		r->window[s] = w;
		c->error = mg_schedule(
			c,
			nx_close_epoch(cfg,
				       cfg->base_ns +
					       (w + 1) * cfg->q8_window_ns),
			&w);
		if (c->error)
			return NULL;
	}
	MG_ASSERT(r->window[s] == w);
	return upsert(c, &r->maps[s], sizeof(struct q8_val), id);
}

static void
q8_emit(const struct nx_config *cfg, struct mg_emitter *out, uint64_t id,
	struct q8_val *v, uint64_t window)
{
	struct nx_out o;

	if (!v->person || !v->seller || v->emitted)
		return;
	v->emitted = 1;
	memset(&o, 0, sizeof(o));
	o.v[0] = id;
	o.v[1] = cfg->base_ns + window * cfg->q8_window_ns;
	memcpy(o.s, v->name, sizeof(v->name));
	mg_emit(out, &o);
}

static void
q8_fn(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct nx_config *cfg = ctx;
	const struct q8_person *p = c->in[0];
	const struct q8_seller *a = c->in[1];
	const uint64_t *due = c->timers;
	struct q8_root *r = c->state;
	struct q8_val *v;
	uint64_t w;
	uint32_t i;

	for (i = 0; i < c->n_timers; i++) {
		unsigned s = due[i] % SLOTS;

		MG_ASSERT(r->active[s] && r->window[s] == due[i]);
		mg_map_clear(&r->maps[s], c->arena);
		r->active[s] = 0;
	}
	for (i = 0; i < c->n_in[0]; i++) {
		v = q8_entry(c, cfg, p[i].id, p[i].date_time, &w);
		if (!v)
			return;
		v->person = 1;
		memcpy(v->name, p[i].name, sizeof(v->name));
		q8_emit(cfg, out, p[i].id, v, w);
	}
	for (i = 0; i < c->n_in[1]; i++) {
		v = q8_entry(c, cfg, a[i].seller, a[i].date_time, &w);
		if (!v)
			return;
		v->seller = 1;
		q8_emit(cfg, out, a[i].seller, v, w);
	}
}

/* ---- building ---------------------------------------------------------------- */

static int
windowed_build(const struct builder *b, struct mg_stream *ev, mg_bin_fn local,
	       uint32_t local_size, uint32_t state_size,
	       int (*ser)(void *, struct mg_bin_call *, struct mg_writer *),
	       int (*des)(void *, struct mg_bin_call *, struct mg_reader *),
	       mg_hash_fn window_hash, mg_bin_fn global, struct mg_stream **out)
{
	struct mg_stream *bids, *maxima;
	int err;

	err = built(
		b->df,
		mg_flat_map(b->df, ev, sizeof(struct nx_bid), map_bids, NULL),
		&bids);
	if (!err)
		err = stateful(b, bids, hash_bid_auction, NULL, NULL,
			       local_size, state_size, sizeof(uint64_t), local,
			       ser, des, &maxima);
	if (!err)
		err = stateful(b, maxima, window_hash, NULL, NULL,
			       sizeof(struct nx_out), 0, 0, global, none_ser,
			       none_des, out);
	return err;
}

int
nx_query_build(struct mg_dataflow *df, const struct nx_config *c,
	       enum nx_query q, bool native, struct mg_stream *events,
	       struct mg_stream **out)
{
	struct builder b = {df, c, native};
	struct mg_stream *s, *persons, *auctions;
	char msg[160];
	int err;

	if (!df || !c || !events || !out ||
	    nx_config_check(c, msg, sizeof(msg)))
		return -EINVAL;
	switch (q) {
	case NX_Q1:
		return stateless(&b, q1_map, events, out);
	case NX_Q2:
		return stateless(&b, q2_map, events, out);
	case NX_Q3:
		return q3_build(&b, events, out);
	case NX_Q4:
	case NX_Q6:
		err = closing_build(&b, events, &s);
		if (err)
			return err;
		if (q == NX_Q4)
			return stateful(&b, s, hash_closed_category, NULL, NULL,
					sizeof(struct nx_out),
					sizeof(struct q4_root), 0, q4_fn,
					q4_ser, q4_des, out);
		return stateful(&b, s, hash_closed_seller, NULL, NULL,
				sizeof(struct nx_out), sizeof(struct q6_root),
				0, q6_fn, q6_ser, q6_des, out);
	case NX_Q5:
		return windowed_build(&b, events, q5_fn,
				      sizeof(struct q5_local),
				      sizeof(struct q5_root), q5_ser, q5_des,
				      q5_hash_window, q5_global, out);
	case NX_Q7:
		return windowed_build(&b, events, q7_fn,
				      sizeof(struct q7_local),
				      sizeof(struct q7_root), q7_ser, q7_des,
				      q7_hash_window, q7_global, out);
	case NX_Q8:
		err = built(df,
			    mg_flat_map(df, events, sizeof(struct q8_person),
					q8_map_persons, NULL),
			    &persons);
		if (!err)
			err = built(df,
				    mg_flat_map(df, events,
						sizeof(struct q8_seller),
						q8_map_auctions, NULL),
				    &auctions);
		if (!err)
			err = stateful(&b, persons, q8_hash_person, auctions,
				       q8_hash_seller, sizeof(struct nx_out),
				       sizeof(struct q8_root), sizeof(uint64_t),
				       q8_fn, q8_ser, q8_des, out);
		return err;
	}
	return -EINVAL;
}
