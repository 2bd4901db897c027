/*
 * gen.c - the NEXMark event generator (the Beam/Flink model).
 *
 * THE MODEL
 *
 * Event number n (0-based, global) decides everything but the random
 * fields.  With epoch = n / 50 and off = n % 50: off 0 is a person, 1..3
 * an auction, 4..49 a bid.  Ids are computed base-0 and shifted by the
 * first id (1000 for persons and auctions):
 *
 *   last person  = epoch                 (person n has that id)
 *   last auction = epoch * 3 + min(off - 1, 2)   for off >= 1
 *   next person  = P - A + U[0, A + 10),  P = last person + 1,
 *                  A = min(P, 1000 active people)
 *   next auction = lo + U[0, last auction - lo + 1 + 10),
 *                  lo = max(0, last auction - in_flight)
 *
 * Sellers are hot (last person / 100 * 100) with probability 3/4, bid
 * auctions (last auction / 100 * 100) with 1/2, bidders
 * (last person / 100 * 100 + 1) with 3/4; otherwise they are the next
 * person or auction, which may lie up to 10 ids in the future.  So there
 * is one hot id of each kind at a time, and it moves on every 100 auctions
 * (5000 / 3 events) or persons (5000 events): every 3.3 or 10 ms at 500k
 * events/s.  Keyed by auction, half the bids of a millisecond fall into
 * one bin; over the hundreds of milliseconds a balancer looks at they
 * spread over hundreds of hot auctions: of two workers (bin b on worker
 * b mod 2) the busier carries about 1.03 times their mean of the bids of
 * a second at 500k events/s, far below what makes a balancer move bins.
 * With hot_hold_ns (not the model's), the hot ids are those of the last
 * event of the first proportion of each hold period (rate * hold events),
 * so one auction takes half the bids, one person 3/4 of the bidders and
 * sellers, for the whole period: its worker carries 3/4 of the bids.
 * Prices are
 * round(10^(U[0,1) * 6) * 100) cents, log-uniform over $1 .. $1M.  An
 * auction expires 1 + U[0, 2 * horizon) ns of event time after it opens,
 * where the horizon is the event time it takes to generate in_flight
 * auctions (one auction per 50/3 events), so that in_flight auctions are
 * open at any time on average.
 *
 * RANDOMNESS
 *
 * Every event runs its own splitmix64 stream seeded by mg_hash64(mg_hash64(seed) ^ n):
 * the stream does not depend on which worker generates which numbers or
 * in which order.  Uniform integers in [0, k) are the high half of a
 * 64 x 64-bit product (bias below k / 2^64).  A bid costs five draws and
 * one exp(); only persons and auctions touch the string tables.
 *
 * TIME
 *
 * sched(n) = mg_sched_ns(rate, n) is the engine's open-loop schedule, the
 * epoch is sched(n) / epoch_ns exactly as the engine stamps it, and the
 * event time is base + floor(sched(n) * dilation).  Both never decrease
 * with n, which is all nx_close_epoch() relies on to find the first event
 * at or after a deadline by a binary search around a float estimate.  (The
 * event time strictly increases unless events are about 1 ns apart: at
 * rates near 10^9/s, mg_sched_ns() computes seq * 1e9 in doubles and
 * repeats a value once that passes 2^53.)
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bench/nexmark/nexmark.h"

#define FIRST_PERSON_ID		1000
#define FIRST_AUCTION_ID	1000
#define ACTIVE_PEOPLE		1000
#define PERSON_ID_LEAD		10
#define AUCTION_ID_LEAD		10
#define HOT_SELLER_RATIO	4 /* hot with p = 3/4 */
#define HOT_BIDDER_RATIO	4 /* hot with p = 3/4 */
#define NUM_CATEGORIES		5 /* categories 10 .. 14 */
#define FIRST_CATEGORY		10
#define PROPORTION		50 /* 1 person, 3 auctions, 46 bids per 50 */
#define AUCTIONS_PER_PROPORTION 3
#define ITEM_NAME_LEN		20

/* gen_bid() draws the bidder's coin with a mask. */
_Static_assert((HOT_BIDDER_RATIO & (HOT_BIDDER_RATIO - 1)) == 0,
	       "hot bidder ratio a power of two");

/* Limits nx_config_check() enforces. */
#define MAX_RATE      1e9
#define MAX_DILATION  1e6
#define MIN_EPOCH_NS  10000
#define MAX_Q5_SLIDES 80
/* Event-time offsets stay below this, far from the 2^64 wrap. */
#define MAX_EVENT_OFF 4611686018427387904.0 /* 2^62 */

static const char *const first_names[] = {
	"peter", "paul",  "luke",  "john",   "saul",   "vicky",
	"kate",	 "julie", "sarah", "deiter", "walter",
};
static const char *const last_names[] = {
	"shultz", "abrams", "spencer", "white", "bartels",
	"walton", "smith",  "jones",   "noris",
};
static const char *const cities[] = {
	"phoenix", "los angeles", "san francisco", "boise", "portland",
	"bend",	   "redmond",	  "seattle",	   "kent",  "cheyenne",
};
static const char *const states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- randomness ---------------------------------------------------------- */

/* splitmix64: the next draw of the stream at @s. */
static inline uint64_t
rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mg_hash64(*s);
}

/* The stream of event @n: independent of every other event's. */
static inline uint64_t
rng_seed(uint64_t seed, uint64_t n)
{
	return mg_hash64(mg_hash64(seed) ^ n);
}

/* High half of r * k: uniform in [0, k) for uniform r. */
static inline uint64_t
mulhi(uint64_t r, uint64_t k)
{
	return (uint64_t)(__extension__((unsigned __int128)r * k) >> 64);
}

static inline uint64_t
uniform(uint64_t *s, uint64_t k)
{
	return mulhi(rng_next(s), k);
}

/* U[0, 1) with 53 bits. */
static inline double
unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1p-53;
}

/* round(10^(U[0,1) * 6) * 100) cents: $1 .. $1M, log-uniform. */
static inline uint64_t
price(uint64_t *s)
{
	/* exp(x ln 10) is 10^x; 6 ln 10 = ln 10^6. */
	return (uint64_t)llround(exp(unit(s) * 13.815510557964274) * 100.0);
}

/* @n lowercase letters into @dst (not terminated). */
static void
letters(uint64_t *s, char *dst, unsigned n)
{
	uint64_t r = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (!(i & 1))
			r = rng_next(s);
		/* Each 32-bit half picks one of 26 letters. */
		dst[i] = (char)('a' + (((r & 0xffffffffu) * 26) >> 32));
		r >>= 32;
	}
}

/* @n decimal digits into @dst (not terminated). */
static void
digits(uint64_t *s, char *dst, unsigned n)
{
	uint64_t r = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (!(i & 1))
			r = rng_next(s);
		dst[i] = (char)('0' + (((r & 0xffffffffu) * 10) >> 32));
		r >>= 32;
	}
}

/* Copy NUL-terminated @src to @dst; return the byte after it. */
static inline char *
put(char *dst, const char *src)
{
	size_t l = strlen(src);

	memcpy(dst, src, l);
	return dst + l;
}

/* ---- ids (base-0) -------------------------------------------------------- */

static inline uint64_t
last_person(uint64_t n)
{
	return n / PROPORTION;
}

/* Only for auctions and bids (n % 50 >= 1). */
static inline uint64_t
last_auction(uint64_t n)
{
	uint64_t off = n % PROPORTION;

	return n / PROPORTION * AUCTIONS_PER_PROPORTION +
	       (off <= AUCTIONS_PER_PROPORTION ? off - 1
					       : AUCTIONS_PER_PROPORTION - 1);
}

/* The event whose last person and auction name the hot ones at event @n:
 * @n itself in the model, else the last of its hold period's first
 * proportion (a bid), whose person and auctions exist before any auction
 * or bid of the period names them. */
static inline uint64_t
hot_event(const struct nx_config *c, uint64_t n)
{
	uint64_t per;

	if (!c->hot_hold_ns)
		return n;
	per = (uint64_t)(c->rate * (double)c->hot_hold_ns / 1e9);
	per = per > PROPORTION ? per : PROPORTION;
	return n / per * per / PROPORTION * PROPORTION + PROPORTION - 1;
}

static inline uint64_t
next_person(uint64_t *s, uint64_t n)
{
	uint64_t p = last_person(n) + 1;
	uint64_t a = p < ACTIVE_PEOPLE ? p : ACTIVE_PEOPLE;

	return p - a + uniform(s, a + PERSON_ID_LEAD);
}

static inline uint64_t
next_auction(uint64_t *s, uint64_t last, uint64_t in_flight)
{
	uint64_t lo = last > in_flight ? last - in_flight : 0;

	return lo + uniform(s, last - lo + 1 + AUCTION_ID_LEAD);
}

/* ---- time ---------------------------------------------------------------- */

/* Event time of @n after the base: floor(sched(n) * dilation). */
static inline uint64_t
event_off(const struct nx_config *c, uint64_t n)
{
	return (uint64_t)((double)mg_sched_ns(c->rate, n) * c->dilation);
}

uint64_t
nx_epoch_of(const struct nx_config *c, uint64_t n)
{
	return mg_sched_ns(c->rate, n) / c->epoch_ns;
}

uint64_t
nx_event_time(const struct nx_config *c, uint64_t n)
{
	return c->base_ns + event_off(c, n);
}

/* The last event number whose event-time offset is safely computable. */
static uint64_t
max_event(const struct nx_config *c)
{
	double m = MAX_EVENT_OFF / c->dilation / 1e9 * c->rate;

	if (m >= 0x1p53) /* beyond that n is not exact in a double */
		return (uint64_t)1 << 53;
	return m >= 1.0 ? (uint64_t)m : 0;
}

/*
 * The first epoch e with every event of date_time < d at an epoch < e:
 * e = epoch(m - 1) + 1 for the first event m with date_time >= d (e = 0
 * when that is event 0).  Events at epochs >= e then all come at or after
 * m, so they have date_time >= d: both halves of the contract hold.  m is
 * found from a float estimate by galloping then bisecting with
 * event_off() itself, so rounding in the estimate cannot matter.
 * Deadlines past the last event whose time is computed exactly (n <= 2^53
 * and at most about 2^62 ns of event time: years) give the epoch after
 * that event.
 */
uint64_t
nx_close_epoch(const struct nx_config *c, uint64_t d)
{
	uint64_t t, nmax, m, lo, hi, step;
	double est;

	if (d <= c->base_ns)
		return 0;
	t = d - c->base_ns; /* > 0 = event_off(0) */
	nmax = max_event(c);
	if (event_off(c, nmax) < t)
		return nx_epoch_of(c, nmax) + 1;

	est = (double)t / c->dilation / 1e9 * c->rate;
	m = est < 1.0 ? 1 : est >= (double)nmax ? nmax : (uint64_t)est;

	/* Invariant after the gallop: event_off(lo) < t <= event_off(hi). */
	step = 1;
	if (event_off(c, m) >= t) {
		hi = m;
		for (;;) {
			lo = hi > step ? hi - step : 0;
			if (event_off(c, lo) < t)
				break;
			hi = lo;
			step *= 2;
		}
	} else {
		lo = m;
		for (;;) {
			hi = nmax - lo > step ? lo + step : nmax;
			if (event_off(c, hi) >= t)
				break;
			lo = hi;
			step *= 2;
		}
	}
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (event_off(c, mid) >= t)
			hi = mid;
		else
			lo = mid;
	}
	return nx_epoch_of(c, hi - 1) + 1;
}

/* ---- configuration ------------------------------------------------------- */

void
nx_config_init(struct nx_config *c, double rate)
{
	memset(c, 0, sizeof(*c));
	c->rate = rate;
	c->dilation = 1.0;
	c->epoch_ns = 1000000;
	c->base_ns = 0;
	c->seed = 1;
	c->in_flight = 100;
	c->q5_window_ns = 3600ull * 1000000000;
	c->q5_slide_ns = 60ull * 1000000000;
	c->q7_window_ns = 600ull * 1000000000;
	c->q8_window_ns = 43200ull * 1000000000;
}

/* The event time it takes to generate @c->in_flight auctions, in ns. */
static double
horizon_ns(const struct nx_config *c)
{
	return (double)c->in_flight *
	       ((double)PROPORTION / AUCTIONS_PER_PROPORTION) *
	       (1e9 / c->rate) * c->dilation;
}

__attribute__((format(printf, 3, 4))) static int
refuse(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (msg && len) {
		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A window of @w ns event time lasts at least two epochs of wall time. */
static bool
window_ok(const struct nx_config *c, uint64_t w)
{
	return (double)w / c->dilation >= 2.0 * (double)c->epoch_ns;
}

int
nx_config_check(const struct nx_config *c, char *msg, size_t len)
{
	const struct {
		const char *name;
		uint64_t ns;
	} win[] = {
		{"q5 window", c->q5_window_ns},
		{"q5 slide", c->q5_slide_ns},
		{"q7 window", c->q7_window_ns},
		{"q8 window", c->q8_window_ns},
	};
	size_t i;

	/* Written so that NaN fails every test. */
	if (!(c->rate > 0 && c->rate <= MAX_RATE))
		return refuse(msg, len, "rate %g out of (0, 1e9] events/s",
			      c->rate);
	if (!(c->dilation >= 1.0 && c->dilation <= MAX_DILATION))
		return refuse(msg, len, "dilation %g out of [1, 1e6]",
			      c->dilation);
	if (c->epoch_ns < MIN_EPOCH_NS)
		return refuse(msg, len, "epoch %llu ns below %u ns",
			      (unsigned long long)c->epoch_ns, MIN_EPOCH_NS);
	if (c->in_flight < 1)
		return refuse(msg, len, "in-flight auctions must be >= 1");
	if (!(2.0 * horizon_ns(c) < MAX_EVENT_OFF))
		return refuse(msg, len,
			      "%llu in-flight auctions make auctions last "
			      "longer than 2^61 ns",
			      (unsigned long long)c->in_flight);
	if (!(c->rate * (double)c->hot_hold_ns / 1e9 < MAX_EVENT_OFF))
		return refuse(msg, len, "hot hold of %llu ns is too long",
			      (unsigned long long)c->hot_hold_ns);
	for (i = 0; i < ARRAY_LEN(win); i++) {
		if (win[i].ns == 0)
			return refuse(msg, len, "%s must be > 0", win[i].name);
		if (!window_ok(c, win[i].ns))
			return refuse(
				msg, len,
				"%s of %llu ns event time is %.0f ns "
				"wall time at dilation %g, less than "
				"two epochs (2 x %llu ns)",
				win[i].name, (unsigned long long)win[i].ns,
				(double)win[i].ns / c->dilation, c->dilation,
				(unsigned long long)c->epoch_ns);
	}
	if (c->q5_window_ns % c->q5_slide_ns)
		return refuse(msg, len,
			      "q5 window %llu ns is not a multiple of its "
			      "slide %llu ns",
			      (unsigned long long)c->q5_window_ns,
			      (unsigned long long)c->q5_slide_ns);
	if (c->q5_window_ns / c->q5_slide_ns > MAX_Q5_SLIDES)
		return refuse(
			msg, len, "q5 window is %llu slides, more than %u",
			(unsigned long long)(c->q5_window_ns / c->q5_slide_ns),
			MAX_Q5_SLIDES);
	return 0;
}

/* ---- events -------------------------------------------------------------- */

static void
gen_person(const struct nx_config *c, uint64_t n, uint64_t *s,
	   struct nx_person *p)
{
	char *q;

	p->id = FIRST_PERSON_ID + last_person(n);
	p->date_time = nx_event_time(c, n);

	q = put(p->name, first_names[uniform(s, ARRAY_LEN(first_names))]);
	*q++ = ' ';
	put(q, last_names[uniform(s, ARRAY_LEN(last_names))]);

	letters(s, p->email, 7);
	p->email[7] = '@';
	letters(s, p->email + 8, 5);
	memcpy(p->email + 13, ".com", 4);

	digits(s, p->credit_card, 4);
	p->credit_card[4] = ' ';
	digits(s, p->credit_card + 5, 4);
	p->credit_card[9] = ' ';
	digits(s, p->credit_card + 10, 4);
	p->credit_card[14] = ' ';
	digits(s, p->credit_card + 15, 4);

	put(p->city, cities[uniform(s, ARRAY_LEN(cities))]);
	put(p->state, states[uniform(s, ARRAY_LEN(states))]);
}

static void
gen_auction(const struct nx_config *c, uint64_t n, uint64_t *s,
	    struct nx_auction *a)
{
	uint64_t span = (uint64_t)(2.0 * horizon_ns(c));

	a->id = FIRST_AUCTION_ID + last_auction(n);
	a->date_time = nx_event_time(c, n);
	a->initial_bid = price(s);
	a->reserve = a->initial_bid + price(s);
	if (uniform(s, HOT_SELLER_RATIO) > 0)
		a->seller = FIRST_PERSON_ID +
			    last_person(hot_event(c, n)) / 100 * 100;
	else
		a->seller = FIRST_PERSON_ID + next_person(s, n);
	a->category = FIRST_CATEGORY + uniform(s, NUM_CATEGORIES);
	a->expires = a->date_time + 1 + uniform(s, span ? span : 1);
	letters(s, a->item_name, ITEM_NAME_LEN);
}

static inline void
gen_bid(const struct nx_config *c, uint64_t n, uint64_t *s, struct nx_bid *b)
{
	uint64_t r = rng_next(s);
	uint64_t la = last_auction(n), h = hot_event(c, n);

	/* One draw decides both: bit 0 the auction (1/2), bits 1-2 the
	 * bidder (3/4, as U[0, 4) > 0; the ratio is a power of two). */
	if (r & 1)
		b->auction = FIRST_AUCTION_ID + last_auction(h) / 100 * 100;
	else
		b->auction =
			FIRST_AUCTION_ID + next_auction(s, la, c->in_flight);
	if ((r >> 1) & (HOT_BIDDER_RATIO - 1))
		b->bidder = FIRST_PERSON_ID + last_person(h) / 100 * 100 + 1;
	else
		b->bidder = FIRST_PERSON_ID + next_person(s, n);
	b->price = price(s);
	b->date_time = nx_event_time(c, n);
}

void
nx_generate(const struct nx_config *c, uint64_t n, struct nx_event *ev)
{
	uint64_t off = n % PROPORTION;
	uint64_t s = rng_seed(c->seed, n);

	memset(ev, 0, sizeof(*ev));
	if (off == 0) {
		ev->kind = NX_PERSON;
		gen_person(c, n, &s, &ev->u.person);
	} else if (off <= AUCTIONS_PER_PROPORTION) {
		ev->kind = NX_AUCTION;
		gen_auction(c, n, &s, &ev->u.auction);
	} else {
		ev->kind = NX_BID;
		gen_bid(c, n, &s, &ev->u.bid);
	}
}

void
nx_source_gen(void *ctx, unsigned worker, uint64_t seq, void *rec)
{
	(void)worker;
	nx_generate(ctx, seq, rec);
}
