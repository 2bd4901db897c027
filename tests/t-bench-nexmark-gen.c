/*
 * t-bench-nexmark-gen.c - the NEXMark event generator (bench/nexmark/gen.c).
 *
 * Checks the generator against the model it implements: kinds by n % 50,
 * ids from the formulas, field ranges and distributions (prices
 * log-uniform, hot ratios, mean auction length = the in-flight horizon),
 * strings from the standard lists, and that event n is the same whichever
 * order or worker generates it.  The time functions are checked against
 * mg_sched_ns() and nx_close_epoch() against its contract by brute force
 * over windows of consecutive events, at several rates, dilations and
 * epochs.  Random deadlines come from a fixed seed (MG_SEED=... picks
 * another).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/nexmark/nexmark.h"
#include "tests/mg_test.h"

#define N_ARRAY(a) (sizeof(a) / sizeof((a)[0]))

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

static uint64_t test_seed;

static int
find(const char *const *list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return (int)i;
	return -1;
}

/* Base-0 ids by the model's formulas. */
static uint64_t
last_person(uint64_t n)
{
	return n / 50;
}

static uint64_t
last_auction(uint64_t n)
{
	uint64_t off = n % 50;

	return n / 50 * 3 + (off >= 4 ? 2 : off - 1);
}

static double
horizon(const struct nx_config *c)
{
	return (double)c->in_flight * 50.0 / 3.0 * 1e9 / c->rate * c->dilation;
}

/* A NUL-terminated string of @len chars from @set within @cap bytes. */
static void
check_chars(const char *s, size_t cap, size_t len, const char *set)
{
	size_t i;

	assert_true(len < cap);
	for (i = 0; i < len; i++)
		assert_non_null(strchr(set, s[i]));
	for (; i < cap; i++)
		assert_int_equal(s[i], 0);
}

static void
test_defaults(void **state)
{
	struct nx_config c;
	char msg[200];

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	nx_config_init(&c, 1e6);
	assert_true(c.rate == 1e6);
	assert_true(c.dilation == 1.0);
	assert_int_equal(c.epoch_ns, 1000000);
	assert_int_equal(c.base_ns, 0);
	assert_int_equal(c.seed, 1);
	assert_int_equal(c.in_flight, 100);
	assert_int_equal(c.q5_window_ns, 3600ull * 1000000000);
	assert_int_equal(c.q5_slide_ns, 60ull * 1000000000);
	assert_int_equal(c.q7_window_ns, 600ull * 1000000000);
	assert_int_equal(c.q8_window_ns, 43200ull * 1000000000);
	assert_int_equal(nx_config_check(&c, msg, sizeof(msg)), 0);
	assert_int_equal(nx_config_check(&c, NULL, 0), 0);
}

static void
test_kinds(void **state)
{
	struct nx_config c;
	struct nx_event ev;
	uint64_t n, cnt[4] = {0};

	(void)state;
	nx_config_init(&c, 1e6);
	for (n = 0; n < 100000; n++) {
		uint64_t off = n % 50;

		nx_generate(&c, n, &ev);
		assert_int_equal(ev.kind, off == 0   ? NX_PERSON
					  : off <= 3 ? NX_AUCTION
						     : NX_BID);
		assert_int_equal(ev.pad, 0);
		cnt[ev.kind]++;
	}
	assert_int_equal(cnt[NX_PERSON], 2000);
	assert_int_equal(cnt[NX_AUCTION], 6000);
	assert_int_equal(cnt[NX_BID], 92000);
}

/* Ids and references over a stretch starting at @n0. */
static void
check_ids(const struct nx_config *c, uint64_t n0, uint64_t count)
{
	struct nx_event ev;
	uint64_t n, next_auction = 0; /* 0: no auction seen yet */
	uint64_t bids = 0, hot_auction = 0, hot_bidder = 0, hot_seller = 0;
	uint64_t auctions = 0;
	uint64_t reach = c->in_flight > 99 ? c->in_flight : 99;

	for (n = n0; n < n0 + count; n++) {
		uint64_t lp = last_person(n), la;
		uint64_t plo = lp + 1 > 1000 ? lp + 1 - 1000 : 0;

		nx_generate(c, n, &ev);
		if (ev.kind == NX_PERSON) {
			assert_int_equal(ev.u.person.id, 1000 + lp);
			continue;
		}
		la = last_auction(n);
		if (ev.kind == NX_AUCTION) {
			const struct nx_auction *a = &ev.u.auction;

			/* One more than the previous auction's. */
			if (next_auction)
				assert_int_equal(a->id, next_auction);
			next_auction = a->id + 1;
			assert_int_equal(a->id, 1000 + la);
			assert_true(a->seller >=
				    1000 + (lp / 100 * 100 < plo
						    ? lp / 100 * 100
						    : plo));
			assert_true(a->seller <= 1000 + lp + 10);
			hot_seller += a->seller == 1000 + lp / 100 * 100;
			auctions++;
			continue;
		}
		const struct nx_bid *b = &ev.u.bid;

		assert_true(b->auction <= 1000 + la + 10);
		assert_true(b->auction + reach >= 1000 + la);
		assert_true(b->auction >= 1000);
		assert_true(b->bidder <= 1000 + lp + 10);
		assert_true(b->bidder >= 1000 + (lp / 100 * 100 + 1 < plo
							 ? lp / 100 * 100 + 1
							 : plo));
		hot_auction += b->auction == 1000 + la / 100 * 100;
		hot_bidder += b->bidder == 1000 + lp / 100 * 100 + 1;
		bids++;
	}
	/* Hot with p = 1/2 and 3/4, plus the odd uniform pick of the same. */
	assert_in_range(hot_auction * 1000 / bids, 470, 600);
	assert_in_range(hot_bidder * 1000 / bids, 720, 800);
	assert_in_range(hot_seller * 1000 / auctions, 700, 810);
}

static void
test_ids(void **state)
{
	struct nx_config c;
	struct nx_event ev;

	(void)state;
	nx_config_init(&c, 1e6);
	nx_generate(&c, 0, &ev);
	assert_int_equal(ev.u.person.id, 1000);
	nx_generate(&c, 50, &ev);
	assert_int_equal(ev.u.person.id, 1001);
	nx_generate(&c, 1, &ev);
	assert_int_equal(ev.u.auction.id, 1000);
	nx_generate(&c, 3, &ev);
	assert_int_equal(ev.u.auction.id, 1002);
	nx_generate(&c, 51, &ev);
	assert_int_equal(ev.u.auction.id, 1003);

	check_ids(&c, 0, 200000);
	check_ids(&c, 123456789012, 100000);
	c.in_flight = 10000;
	check_ids(&c, 0, 100000);
	check_ids(&c, 987654321000, 100000);
	c.in_flight = 1;
	check_ids(&c, 50000000, 100000);
}

/*
 * --hot-hold: over a hold period of @per events from @n0 the hot ids are
 * those of the last event of its first proportion -- one auction takes
 * half the bids, one bidder and one seller 3/4 -- and exist before any
 * event of the period names them (the bidder may be the next person, as
 * in the model).  Returns the hot auction.  (Without it, the model's:
 * test_ids.)
 */
static uint64_t
hot_period(const struct nx_config *c, uint64_t n0, uint64_t per)
{
	uint64_t h = n0 / 50 * 50 + 49, n, bids = 0, auctions = 0;
	uint64_t ha = 1000 + last_auction(h) / 100 * 100;
	uint64_t hp = 1000 + last_person(h) / 100 * 100, na = 0, nb = 0, ns = 0;
	struct nx_event ev;

	for (n = n0; n < n0 + per; n++) {
		nx_generate(c, n, &ev);
		if (ev.kind == NX_BID) {
			/* the hot ids exist at every bid of the period (the
			 * bidder, as the model's, may be the next person) */
			assert_true(ha <= 1000 + last_auction(n));
			assert_true(hp + 1 <= 1000 + last_person(n) + 1);
			na += ev.u.bid.auction == ha;
			nb += ev.u.bid.bidder == hp + 1;
			bids++;
		} else if (ev.kind == NX_AUCTION) {
			assert_true(hp <= 1000 + last_person(n));
			ns += ev.u.auction.seller == hp;
			auctions++;
		}
	}
	assert_in_range(na * 1000 / bids, 470, 560);
	assert_in_range(nb * 1000 / bids, 720, 780);
	assert_in_range(ns * 1000 / auctions, 700, 800);
	return ha;
}

static void
test_hot_hold(void **state)
{
	struct nx_config c;
	char msg[128];

	(void)state;
	nx_config_init(&c, 1e6);
	c.hot_hold_ns = 100000000; /* 0.1 s: 100,000 events */
	assert_int_equal(nx_config_check(&c, msg, sizeof(msg)), 0);
	assert_true(hot_period(&c, 0, 100000) !=
		    hot_period(&c, 100000, 100000));
	hot_period(&c, 123400000, 100000);
	c.in_flight = 1;
	hot_period(&c, 500000, 100000);
	/* a hold beyond 2^62 events is refused */
	c.hot_hold_ns = UINT64_MAX;
	c.rate = 1e9;
	assert_int_equal(nx_config_check(&c, msg, sizeof(msg)), -EINVAL);
}

static void
test_fields(void **state)
{
	struct nx_config c;
	struct nx_event ev;
	uint64_t n, prices = 0, below10 = 0, above10k = 0, below1k = 0;
	uint64_t cat[5] = {0}, auctions = 0, i;

	(void)state;
	nx_config_init(&c, 1e6);
	for (n = 0; n < 200000; n++) {
		uint64_t p[2];
		unsigned np = 0, k;

		nx_generate(&c, n, &ev);
		if (ev.kind == NX_BID) {
			p[np++] = ev.u.bid.price;
		} else if (ev.kind == NX_AUCTION) {
			const struct nx_auction *a = &ev.u.auction;

			assert_in_range(a->category, 10, 14);
			cat[a->category - 10]++;
			auctions++;
			assert_true(a->reserve > a->initial_bid);
			assert_true(a->expires > a->date_time);
			p[np++] = a->initial_bid;
			p[np++] = a->reserve - a->initial_bid;
		}
		for (k = 0; k < np; k++) {
			assert_in_range(p[k], 100, 100000000);
			prices++;
			below10 += p[k] < 1000;
			below1k += p[k] < 100000;
			above10k += p[k] > 1000000;
		}
	}
	/* log10(price / $1) is U[0, 6): 1/6 below $10, 1/2 below $1k, 1/3
	 * above $10k. */
	assert_in_range(below10 * 1000 / prices, 155, 178);
	assert_in_range(below1k * 1000 / prices, 485, 515);
	assert_in_range(above10k * 1000 / prices, 320, 346);
	for (i = 0; i < 5; i++)
		assert_in_range(cat[i] * 1000 / auctions, 180, 220);
}

/* Mean auction length over 100k auctions against the horizon. */
static void
check_expiry(const struct nx_config *c)
{
	struct nx_event ev;
	uint64_t n, k = 0;
	double sum = 0, h = horizon(c), maxlen = 0;

	for (n = 0; k < 100000; n++) {
		if (n % 50 == 0 || n % 50 > 3)
			continue;
		nx_generate(c, n, &ev);
		assert_int_equal(ev.kind, NX_AUCTION);
		assert_true(ev.u.auction.expires > ev.u.auction.date_time);
		double len =
			(double)(ev.u.auction.expires - ev.u.auction.date_time);

		assert_true(len <= 2 * h + 1);
		if (len > maxlen)
			maxlen = len;
		sum += len;
		k++;
	}
	assert_true(fabs(sum / (double)k - h) < 0.2 * h);
	assert_true(maxlen > 1.5 * h);
}

static void
test_expiry(void **state)
{
	struct nx_config c;

	(void)state;
	nx_config_init(&c, 1e6);
	check_expiry(&c);
	c.dilation = 60;
	c.base_ns = 1700000000ull * 1000000000;
	check_expiry(&c);
	/* Megaphone's 12-hour auctions: in-flight = rate * 2592. */
	nx_config_init(&c, 12345);
	c.in_flight = 12345 * 2592;
	check_expiry(&c);
	assert_true(fabs(horizon(&c) - 43200e9) < 1e6);
}

static void
test_strings(void **state)
{
	struct nx_config c;
	struct nx_event ev;
	uint64_t n;
	uint64_t seen_first[N_ARRAY(first_names)] = {0};
	uint64_t seen_last[N_ARRAY(last_names)] = {0};
	uint64_t seen_city[N_ARRAY(cities)] = {0};
	uint64_t seen_state[N_ARRAY(states)] = {0};
	size_t i;

	(void)state;
	nx_config_init(&c, 1e6);
	for (n = 0; n < 20000 * 50; n++) {
		if (n % 50 > 3)
			continue;
		nx_generate(&c, n, &ev);
		if (ev.kind == NX_AUCTION) {
			check_chars(ev.u.auction.item_name,
				    sizeof(ev.u.auction.item_name), 20,
				    "abcdefghijklmnopqrstuvwxyz");
			continue;
		}
		const struct nx_person *p = &ev.u.person;
		char name[sizeof(p->name)], *sp;
		int f, l, ci, st;

		assert_non_null(memchr(p->name, 0, sizeof(p->name)));
		memcpy(name, p->name, sizeof(name));
		sp = strchr(name, ' ');
		assert_non_null(sp);
		*sp = 0;
		f = find(first_names, N_ARRAY(first_names), name);
		l = find(last_names, N_ARRAY(last_names), sp + 1);
		assert_true(f >= 0 && l >= 0);
		seen_first[f]++;
		seen_last[l]++;
		check_chars(p->name, sizeof(p->name), strlen(p->name),
			    "abcdefghijklmnopqrstuvwxyz ");

		check_chars(p->email, sizeof(p->email), 17,
			    "abcdefghijklmnopqrstuvwxyz@.");
		for (i = 0; i < 13; i++)
			assert_true((p->email[i] == '@') == (i == 7));
		assert_memory_equal(p->email + 13, ".com", 5);

		check_chars(p->credit_card, sizeof(p->credit_card), 19,
			    "0123456789 ");
		for (i = 0; i < 19; i++)
			assert_true((p->credit_card[i] == ' ') == (i % 5 == 4));

		assert_non_null(memchr(p->city, 0, sizeof(p->city)));
		ci = find(cities, N_ARRAY(cities), p->city);
		assert_true(ci >= 0);
		seen_city[ci]++;
		check_chars(p->city, sizeof(p->city), strlen(p->city),
			    "abcdefghijklmnopqrstuvwxyz ");
		st = find(states, N_ARRAY(states), p->state);
		assert_true(st >= 0);
		seen_state[st]++;
		check_chars(p->state, sizeof(p->state), 2,
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
	}
	/* 20000 persons: every list entry shows up. */
	for (i = 0; i < N_ARRAY(first_names); i++)
		assert_true(seen_first[i] > 1000);
	for (i = 0; i < N_ARRAY(last_names); i++)
		assert_true(seen_last[i] > 1000);
	for (i = 0; i < N_ARRAY(cities); i++)
		assert_true(seen_city[i] > 1000);
	for (i = 0; i < N_ARRAY(states); i++)
		assert_true(seen_state[i] > 2000);
}

#define DET_N 6000

static void
test_determinism(void **state)
{
	struct nx_config c, c2;
	struct nx_event *fwd, *other, ev;
	uint64_t n, w, differ = 0;

	(void)state;
	nx_config_init(&c, 1e6);
	c.seed = 77;
	fwd = malloc(sizeof(*fwd) * DET_N);
	other = malloc(sizeof(*other) * DET_N);
	assert_non_null(fwd);
	assert_non_null(other);
	for (n = 0; n < DET_N; n++)
		nx_generate(&c, n, &fwd[n]);

	/* Reverse order, into dirty memory. */
	memset(other, 0xa5, sizeof(*other) * DET_N);
	for (n = DET_N; n-- > 0;)
		nx_generate(&c, n, &other[n]);
	assert_memory_equal(fwd, other, sizeof(*fwd) * DET_N);

	/* Three workers through the source callback, round-robin, run one
	 * after the other. */
	memset(other, 0x5a, sizeof(*other) * DET_N);
	for (w = 0; w < 3; w++)
		for (n = w; n < DET_N; n += 3)
			nx_source_gen(&c, (unsigned)w, n, &other[n]);
	assert_memory_equal(fwd, other, sizeof(*fwd) * DET_N);

	/* Random access. */
	for (n = 0; n < 2000; n++) {
		uint64_t k = mg_test_rand(&test_seed) % DET_N;

		memset(&ev, (int)k, sizeof(ev));
		nx_generate(&c, k, &ev);
		assert_memory_equal(&fwd[k], &ev, sizeof(ev));
	}

	/* Another seed: the same ids and times, other random fields. */
	c2 = c;
	c2.seed = 78;
	for (n = 0; n < DET_N; n++) {
		nx_generate(&c2, n, &ev);
		assert_int_equal(ev.kind, fwd[n].kind);
		differ += memcmp(&ev, &fwd[n], sizeof(ev)) != 0;
	}
	assert_true(differ > DET_N * 9 / 10);
	free(fwd);
	free(other);
}

/* @n, or less so that event times up to @n + 10^4 stay below 2^58 ns. */
static uint64_t
in_range(const struct nx_config *c, uint64_t n)
{
	double lim = 0x1p58 / (1e9 / c->rate * c->dilation) - 10000;

	return (double)n < lim ? n : (uint64_t)lim;
}

/*
 * Event times strictly increase when events are at least 256 ns apart: at
 * rates near 10^9/s, mg_sched_ns() itself (seq * 1e9 / rate in doubles)
 * repeats a value once seq * 1e9 passes 2^53, so only non-decreasing
 * holds there, which is all nx_close_epoch() needs.
 */
static bool
strict(const struct nx_config *c)
{
	return 1e9 / c->rate >= 256;
}

static void
check_time(const struct nx_config *c, uint64_t n0, uint64_t count)
{
	struct nx_event ev;
	uint64_t n, prev = 0;

	n0 = in_range(c, n0);
	for (n = n0; n < n0 + count; n++) {
		uint64_t s = mg_sched_ns(c->rate, n);
		uint64_t t = nx_event_time(c, n);

		assert_int_equal(nx_epoch_of(c, n), s / c->epoch_ns);
		assert_int_equal(
			t, c->base_ns + (uint64_t)((double)s * c->dilation));
		if (n > n0)
			assert_true(strict(c) ? t > prev : t >= prev);
		prev = t;
		if (n % 97 == 0) {
			nx_generate(c, n, &ev);
			assert_int_equal(ev.kind == NX_BID ? ev.u.bid.date_time
					 : ev.kind == NX_AUCTION
						 ? ev.u.auction.date_time
						 : ev.u.person.date_time,
					 t);
		}
	}
}

/* The configurations the time tests run at. */
static void
time_configs(struct nx_config *cs, size_t *n)
{
	size_t k = 0;

	nx_config_init(&cs[k], 2e6); /* 60x dilated, 1 ms epochs */
	cs[k++].dilation = 60;
	nx_config_init(&cs[k], 2e6); /* 100 us epochs */
	cs[k++].epoch_ns = 100000;
	nx_config_init(&cs[k], 12345); /* about one event per epoch */
	cs[k].epoch_ns = 100000;
	cs[k++].base_ns = 1700000000ull * 1000000000;
	nx_config_init(&cs[k], 12345);
	cs[k].dilation = 60;
	cs[k++].base_ns = 123456789;
	nx_config_init(&cs[k], 1e9); /* sched(n) = n */
	cs[k].epoch_ns = 10000;
	cs[k++].dilation = 1.5;
	nx_config_init(&cs[k], 3.5); /* empty epochs galore */
	cs[k].dilation = 1000;
	cs[k++].epoch_ns = 100000;
	nx_config_init(&cs[k], 999983);
	cs[k].dilation = 7.3;
	cs[k++].epoch_ns = 1000000;
	*n = k;
}

static void
test_time(void **state)
{
	struct nx_config cs[8];
	size_t k, nc;

	(void)state;
	time_configs(cs, &nc);
	for (k = 0; k < nc; k++) {
		check_time(&cs[k], 0, 20000);
		check_time(&cs[k], 1000000007, 2000);
		check_time(&cs[k], 1ull << 40, 2000);
	}
}

#define WIN 4000

/*
 * nx_close_epoch() by brute force over events n0 .. n0 + WIN - 1, for
 * deadlines whose first event at or after them lies well inside: the
 * contract's two halves for every event of the window (monotonicity, also
 * checked, carries them to the events outside) and minimality.
 */
static void
check_close(const struct nx_config *c, uint64_t n0, unsigned ndeadlines)
{
	static uint64_t t[WIN], ep[WIN];
	uint64_t lo, hi, i;
	unsigned k;

	n0 = in_range(c, n0);
	for (i = 0; i < WIN; i++) {
		t[i] = nx_event_time(c, n0 + i);
		ep[i] = nx_epoch_of(c, n0 + i);
		if (i) {
			assert_true(strict(c) ? t[i] > t[i - 1]
					      : t[i] >= t[i - 1]);
			assert_true(ep[i] >= ep[i - 1]);
		}
	}
	lo = t[WIN / 4];
	hi = t[3 * WIN / 4];
	for (k = 0; k < ndeadlines; k++) {
		uint64_t r = mg_test_rand(&test_seed), d, e;
		bool minimal = false;

		switch (k % 4) {
		case 0:
		case 1:
			d = lo + r % (hi - lo);
			break;
		default: /* on an event time, or next to one */
			d = t[WIN / 4 + r % (WIN / 2)] + (k % 4 == 2 ? 0 : 1) -
			    (r >> 63);
			break;
		}
		e = nx_close_epoch(c, d);
		for (i = 0; i < WIN; i++) {
			if (t[i] < d)
				assert_true(ep[i] < e);
			if (ep[i] >= e)
				assert_true(t[i] >= d);
			if (t[i] < d && ep[i] + 1 >= e)
				minimal = true;
		}
		assert_true(minimal);
	}
}

static void
test_close_epoch(void **state)
{
	struct nx_config cs[8];
	size_t k, nc;

	(void)state;
	time_configs(cs, &nc);
	for (k = 0; k < nc; k++) {
		const struct nx_config *c = &cs[k];

		/* At and before the base: epoch 0. */
		assert_int_equal(nx_close_epoch(c, c->base_ns), 0);
		assert_int_equal(nx_close_epoch(c, 0), 0);
		if (c->base_ns)
			assert_int_equal(nx_close_epoch(c, c->base_ns - 1), 0);
		/* Just after the base: after event 0. */
		assert_int_equal(nx_close_epoch(c, c->base_ns + 1),
				 nx_epoch_of(c, 0) + 1);
		check_close(c, 0, 300);
		check_close(c, 1000003, 100);
		check_close(c, 123456789012ull, 100);
		check_close(c, 1ull << 44, 100);
		/* Far deadlines answer (quickly) and grow. */
		assert_true(nx_close_epoch(c, c->base_ns + (1ull << 60)) >=
			    nx_close_epoch(c, c->base_ns + (1ull << 50)));
		assert_true(nx_close_epoch(c, UINT64_MAX) >=
			    nx_close_epoch(c, c->base_ns + (1ull << 60)));
	}
}

static void
refused(const struct nx_config *c)
{
	char msg[256];

	memset(msg, 0, sizeof(msg));
	assert_int_equal(nx_config_check(c, msg, sizeof(msg)), -EINVAL);
	assert_true(strlen(msg) > 10);
	print_message("# refused: %s\n", msg);
	assert_int_equal(nx_config_check(c, NULL, 0), -EINVAL);
	assert_int_equal(nx_config_check(c, msg, 1), -EINVAL);
	assert_int_equal(msg[0], 0);
}

static void
test_config_check(void **state)
{
	struct nx_config ok, c;

	(void)state;
	nx_config_init(&ok, 1e6);
	assert_int_equal(nx_config_check(&ok, NULL, 0), 0);

#define BAD(field, value)          \
	do {                       \
		c = ok;            \
		c.field = (value); \
		refused(&c);       \
	} while (0)
#define GOOD(field, value)                                         \
	do {                                                       \
		c = ok;                                            \
		c.field = (value);                                 \
		assert_int_equal(nx_config_check(&c, NULL, 0), 0); \
	} while (0)

	BAD(rate, 0);
	BAD(rate, -5);
	BAD(rate, NAN);
	BAD(rate, 1.1e9);
	GOOD(rate, 1e9);
	GOOD(rate, 0.5);
	BAD(dilation, 0.99);
	BAD(dilation, NAN);
	BAD(dilation, 1.1e6);
	GOOD(dilation, 60);
	BAD(epoch_ns, 9999);
	BAD(epoch_ns, 0);
	GOOD(epoch_ns, 10000);
	BAD(in_flight, 0);
	GOOD(in_flight, 1);
	BAD(in_flight, UINT64_MAX / 2);
	BAD(q5_window_ns, 0);
	BAD(q5_slide_ns, 0);
	BAD(q7_window_ns, 0);
	BAD(q8_window_ns, 0);
	/* The Q5 window a multiple of the slide, at most 80 slides. */
	BAD(q5_window_ns, ok.q5_slide_ns * 60 + 1);
	BAD(q5_window_ns, ok.q5_slide_ns * 81);
	GOOD(q5_window_ns, ok.q5_slide_ns * 80);
	GOOD(q5_window_ns, ok.q5_slide_ns);
	/* Two epochs of wall time: 2 ms at dilation 1. */
	BAD(q7_window_ns, 1999999);
	GOOD(q7_window_ns, 2000000);
	BAD(q8_window_ns, 1999999);
	GOOD(q8_window_ns, 2000000);
	c = ok;
	c.q5_slide_ns = 1999999;
	c.q5_window_ns = 1999999 * 10;
	refused(&c);
	c.q5_slide_ns = 2000000;
	c.q5_window_ns = 2000000 * 10;
	assert_int_equal(nx_config_check(&c, NULL, 0), 0);
	/* The same in event time at dilation 1000 (and 60 s of slide at 1e6
	 * is 60 us of wall time). */
	c = ok;
	c.dilation = 1000;
	c.q7_window_ns = 1999999999;
	refused(&c);
	c.q7_window_ns = 2000000000;
	assert_int_equal(nx_config_check(&c, NULL, 0), 0);
	BAD(dilation, 1e6);
#undef BAD
#undef GOOD
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_hot_hold),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_close_epoch),
		cmocka_unit_test(test_config_check),
	};

	test_seed = mg_test_env_u64("MG_SEED", 20240601);
	printf("# seed %llu (MG_SEED=... picks another)\n",
	       (unsigned long long)test_seed);
	return MG_TEST_RUN(tests);
}
