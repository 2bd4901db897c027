/*
 * nexmark.h - the NEXMark benchmark on the engine: an event generator
 * following the Beam/Flink model and queries Q1..Q8, each in a native form
 * (static hash partitioning) and a migratable form (bins).
 *
 * GENERATOR
 *
 * Event number n (0-based, global) is a person if n % 50 == 0, an auction
 * if n % 50 is 1..3, a bid otherwise (2% / 6% / 92%).  Ids derive from n
 * (persons and auctions start at 1000); hot sellers, auctions and bidders,
 * log-uniform prices ($1 .. $1M, in cents), categories 10..14, auction
 * expiry from the in-flight-auctions horizon, names, cities and states from
 * the standard lists.  Every event draws its randomness from a generator
 * seeded by (seed, n), so the stream is the same however event numbers are
 * split across workers.  Strings the queries never read (auction
 * description, padding) are left out so that an event is 104 bytes.
 *
 * TIME
 *
 * Event n is scheduled at sched(n) = mg_sched_ns(rate, n) ns after the run
 * starts (the engine's open-loop schedule) and stamped with engine time
 * (epoch) sched(n) / epoch_ns.  Its event time is
 *
 *	date_time(n) = base + floor(sched(n) * dilation)	   [ns]
 *
 * which never decreases with n (and strictly increases while events are
 * at least a few hundred ns apart: rate well below 10^9/s, dilation >= 1),
 * so event time runs `dilation` times faster than wall time: 12-hour windows fit into
 * a run of minutes.  A deadline D in event time (a window end, an auction's
 * expiry) is acted on at engine time nx_close_epoch(D): the first epoch
 * such that every event with date_time < D has a smaller epoch, and every
 * event at that epoch or later has date_time >= D.
 *
 * QUERIES (output: struct nx_out; all fields not named are zero)
 *
 *  Q1 currency conversion.  For every bid: v = {auction, bidder,
 *     price * 908 / 1000 (integer cents, dollars to euros as in Beam),
 *     date_time}, at the bid's time.  Stateless.
 *  Q2 selection.  For every bid with auction % 123 == 0: v = {auction,
 *     price}, at the bid's time.  Stateless.
 *  Q3 local item suggestion.  Incremental join over all history of persons
 *     in state OR, ID or CA with auctions of category 10 on seller = person
 *     id: for every such (person, auction) pair one output v = {auction id,
 *     person id}, s = "name,city,state", at the later of the two events'
 *     times.  State: every person (whether it qualifies) and the auctions
 *     whose seller has not appeared yet; bins by person id.
 *  Q4 average closing price per category.  An auction closes at its expiry;
 *     its closing price is its highest bid with price >= reserve and
 *     auction.date_time <= bid.date_time < expires (none: it does not
 *     close).  At every time at which auctions of category c close: v =
 *     {c, average closing price of every auction of c closed so far (integer
 *     division), their number}, at nx_close_epoch(expires).  State: open
 *     auctions with their best bid (bins by auction id), then per-category
 *     sums (bins by category).
 *  Q5 hot items.  Sliding windows of q5_window ns event time that slide by
 *     q5_slide (window k covers [k*slide - window + slide, (k+1)*slide)
 *     relative to base, i.e. it ends at base + (k+1)*slide); for every
 *     window with at least one bid, the auction(s) with the most bids in it
 *     -- a global argmax, ties all reported: v = {window end, auction,
 *     count}, at nx_close_epoch(window end).  State: bid counts per auction
 *     per slide (bins by auction id); each bin sends its local maxima to a
 *     second stage keyed by window, which takes the global maximum.
 *  Q6 average selling price by seller.  For every seller with closed
 *     auctions (closing as in Q4): the average closing price of its last 10
 *     closed auctions (last by (expires, auction id)), v = {seller, average
 *     (integer division), number averaged (<= 10)}, at every time at which
 *     one of its auctions closes.  State: open auctions, then per seller the
 *     last 10 (bins by seller).
 *  Q7 highest bid.  Tumbling windows of q7_window ns event time (window k
 *     is [base + k*w, base + (k+1)*w)): the bid(s) with the highest price in
 *     each window with bids, ties all reported: v = {window start, auction,
 *     bidder, price}, at nx_close_epoch(window end).  State: each bin's
 *     maxima per window (bins by auction id), then a global maximum per
 *     window.
 *  Q8 monitor new users.  Tumbling windows of q8_window ns event time: every
 *     person that registered in a window and opened at least one auction
 *     (seller = person id) in the same window, once per window: v = {person
 *     id, window start}, s = name, at the time of the later of the person
 *     and its first auction in the window (incremental: emitted as soon as
 *     known).  State: persons and sellers of the open windows (bins by
 *     person id), dropped at each window's end.
 */
#ifndef NEXMARK_H
#define NEXMARK_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/megaphone.h"
#include "numa/mg_base.h"

enum nx_kind { NX_PERSON = 1, NX_AUCTION, NX_BID };

struct nx_person {
	uint64_t id;
	uint64_t date_time;
	char name[16];	      /* "first last" */
	char email[24];	      /* 7 letters @ 5 letters .com */
	char credit_card[20]; /* "dddd dddd dddd dddd" */
	char city[16];
	char state[4];
};

struct nx_auction {
	uint64_t id;
	uint64_t date_time;
	uint64_t expires;
	uint64_t seller;
	uint64_t category;
	uint64_t initial_bid; /* cents */
	uint64_t reserve;     /* cents */
	char item_name[24];   /* 20 random letters */
};

struct nx_bid {
	uint64_t auction;
	uint64_t bidder;
	uint64_t price; /* cents */
	uint64_t date_time;
};

struct nx_event {
	uint32_t kind; /* enum nx_kind */
	uint32_t pad;
	union {
		struct nx_person person;
		struct nx_auction auction;
		struct nx_bid bid;
	} u;
};

/* What every query outputs: fixed fields, unused ones zero. */
struct nx_out {
	uint64_t v[4];
	char s[40];
};

/* The generator's parameters; nx_config_init() fills the defaults. */
struct nx_config {
	double rate;	       /* events/s, total; <= 10^9 */
	double dilation;       /* event time per wall time, >= 1 */
	uint64_t epoch_ns;     /* the engine's epoch */
	uint64_t base_ns;      /* event time of the run's start */
	uint64_t seed;	       /* stream seed */
	uint64_t in_flight;    /* in-flight auctions (default 100) */
	uint64_t q5_window_ns; /* event time; default 60 min */
	uint64_t q5_slide_ns;  /* default 1 min */
	uint64_t q7_window_ns; /* default 10 min */
	uint64_t q8_window_ns; /* default 12 h */
	uint64_t hot_hold_ns;  /* 0: the model's hot ids, new every 100 ids;
				  else each set of hot ids stays this long
				  (wall time of the schedule): a skew that
				  lasts, for a balancer to act on */
};

/* Defaults for @rate events/s: dilation 1, epoch 1 ms, seed 1, 100
 * in-flight auctions, the NEXMark windows. */
void nx_config_init(struct nx_config *c, double rate);

/*
 * Check @c: rate, dilation and windows in range; every window and slide
 * at least two epochs of wall time (so at most two windows are open at
 * once), the Q5 window a multiple of its slide, at most 80 slides.
 * Return: 0, or -EINVAL with a message in @msg (@len bytes).
 */
int nx_config_check(const struct nx_config *c, char *msg, size_t len);

/* Event @n into @ev (fully written, padding zeroed). */
void nx_generate(const struct nx_config *c, uint64_t n, struct nx_event *ev);

/* Engine time (epoch) and event time of event @n. */
uint64_t nx_epoch_of(const struct nx_config *c, uint64_t n);
uint64_t nx_event_time(const struct nx_config *c, uint64_t n);

/* The engine time at which event-time deadline @d is acted on (above). */
uint64_t nx_close_epoch(const struct nx_config *c, uint64_t d);

/* ---- queries ----------------------------------------------------------- */

enum nx_query { NX_Q1 = 1, NX_Q2, NX_Q3, NX_Q4, NX_Q5, NX_Q6, NX_Q7, NX_Q8 };

/* "q1".."q8" -> query.  Return: 0 or -EINVAL. */
int nx_query_parse(const char *s, enum nx_query *q);

/*
 * Add query @q reading the event stream @events (struct nx_event records)
 * to @df: its migratable form (stateful operators on bins, distribute for
 * the stateless queries) or with @native its baseline (static hash
 * partitioning: stateful operators with native = true, exchange).
 * @c: shared, must outlive the dataflow.
 * @out: gives the stream of struct nx_out records.
 * Context: control thread, while building.
 * Return: 0; -EINVAL; -ENOMEM.
 */
int nx_query_build(struct mg_dataflow *df, const struct nx_config *c,
		   enum nx_query q, bool native, struct mg_stream *events,
		   struct mg_stream **out);

/* The source generator for mg_source (ctx: the struct nx_config). */
void nx_source_gen(void *ctx, unsigned worker, uint64_t seq, void *rec);

#endif /* NEXMARK_H */
