/*
 * stateful.c - stateful operators: receiving into per-time logs, sorting
 * what is due by (time, bin), and calling the user function once per
 * (bin, time), merged with the bins' timers.
 *
 * Per worker (struct stateful_inst, written only by that worker):
 *
 *   log[i]          input i's received entries { time, bin, record } by
 *                   time: a bucket per time of the window [processed_upto,
 *                   processed_upto + TLOG_BUCKETS), later times in `far` as
 *                   sorted runs, and `defer` -- entries of bins on their way
 *                   here (see engine_pvt.h, struct tlog, and handoff.c);
 *   theap           the bins with timers (bins.c);
 *   pairs, tmp      sort keys of the entries being processed;
 *   gather[i],
 *   timers          one call's records (when more than one: a single
 *                   record is read in its log) and due timers, packed.
 *
 * PROCESSING
 *
 * Each round the worker drains its input ports into the logs (copying each
 * record once; batches go straight back to their producers, so holding data
 * never holds a producer's batches).  Once the input frontier F has passed
 * processed_upto, every entry with a time before F is due: collect() takes
 * the due buckets, the due runs of `far` and what was deferred as sort
 * pairs (but the entries of bins awaiting a handoff, which go back to
 * `defer`).  An LSD radix sort on key = (time - tmin) << bins_log2 | bin,
 * skipping bytes all keys share, groups them by (time, bin) in O(entries),
 * touching no bin without work.  Times are visited in order, merging each
 * time's runs with the bins whose timers are due at it, and the user
 * function runs once per (bin, time), its bin's cache misses prefetched
 * ahead (prefetch_ahead()).  A pass stops at a bin's departure time while
 * the bin is still here (handoff.c), and goes one timer time at a time,
 * within a work budget, when the frontier jumps far ahead.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_pvt.h"

#define STEP_BUDGET 16384u /* work per step when timers are far behind */
#define RECV_BURSTS 16
#define PREFETCH    32 /* sorted entries to look ahead, per stage */

/* A log entry: time and bin, then the record at its batch stride. */
static size_t
entry_stride(uint32_t record_size)
{
	return 16 + (size_t)mg_batch_stride(record_size);
}

/* ---- setup -------------------------------------------------------------------- */

int
mg__stateful_init(struct node *n)
{
	struct mg_dataflow *df = n->df;
	unsigned W = df->cfg.workers, w, i, j;
	uint32_t nbins = 1u << df->nbins_log2;
	struct stateful_inst *si;
	int err = 0;

	n->u.st.vshift = mg__st_vshift(n);
	if (!n->u.st.cfg.native) {
		n->u.st.bins = calloc(nbins, sizeof(struct bin *));
		n->u.st.token = calloc(nbins, sizeof(*n->u.st.token));
		if (!n->u.st.bins || !n->u.st.token)
			return -ENOMEM;
		df->nmigratable++;
	}
	si = mg_calloc_lines(W, sizeof(*si));
	if (!si)
		return -ENOMEM;
	n->inst.st = si;
	for (w = 0; w < W && !err && !n->u.st.cfg.native; w++)
		err = mg__handoff_init(n, &si[w], w);
	for (w = 0; w < W && !err; w++) {
		for (i = 0; i < n->u.st.cfg.ninputs && !err; i++) {
			struct tlog *l = &si[w].log[i];

			for (j = 0; j < TLOG_BUCKETS && !err; j++)
				err = mg__st_vbuf_init(n, &l->bucket[j],
						       LOG_RESERVE);
			if (!err)
				err = mg__st_vbuf_init(n, &l->far, FAR_RESERVE);
			if (!err)
				err = mg__st_vbuf_init(n, &l->far_next,
						       FAR_RESERVE);
			if (!err)
				err = mg__st_vbuf_init(n, &l->runs,
						       SCRATCH_RESERVE);
			if (!err)
				err = mg__st_vbuf_init(n, &l->defer,
						       LOG_RESERVE);
			if (!err)
				err = mg__st_vbuf_init(n, &l->defer_next,
						       LOG_RESERVE);
		}
		if (!err)
			err = mg__st_vbuf_init(n, &si[w].pairs, LOG_RESERVE);
		if (!err)
			err = mg__st_vbuf_init(n, &si[w].tmp, LOG_RESERVE);
		for (i = 0; i < 2 && !err; i++)
			err = mg__st_vbuf_init(n, &si[w].gather[i],
					       SCRATCH_RESERVE);
		if (!err)
			err = mg__st_vbuf_init(n, &si[w].timers,
					       SCRATCH_RESERVE);
		if (!err)
			err = mg__st_vbuf_init(n, &si[w].theap,
					       SCRATCH_RESERVE);
	}
	return err;
}

void
mg__stateful_fini(struct node *n)
{
	unsigned W = n->df->cfg.workers, w, i, j;
	uint32_t b, nbins = 1u << n->df->nbins_log2;

	if (n->u.st.bins)
		for (b = 0; b < nbins; b++)
			mg__bin_free(n->u.st.bins[b]);
	if (n->u.st.state && n->inst.st)
		mg__copy_fini(n);
	free(n->u.st.bins);
	free(n->u.st.token);
	free(n->u.st.counts);
	if (!n->inst.st)
		return;
	for (w = 0; w < W; w++) {
		struct stateful_inst *si = &n->inst.st[w];

		mg__handoff_fini(si);
		mg__bin_free(si->native);
		for (i = 0; i < 2; i++) {
			struct tlog *l = &si->log[i];

			for (j = 0; j < TLOG_BUCKETS; j++)
				mg__vbuf_free(&l->bucket[j]);
			mg__vbuf_free(&l->far);
			mg__vbuf_free(&l->far_next);
			mg__vbuf_free(&l->runs);
			mg__vbuf_free(&l->defer);
			mg__vbuf_free(&l->defer_next);
			mg__vbuf_free(&si->gather[i]);
		}
		mg__vbuf_free(&si->pairs);
		mg__vbuf_free(&si->tmp);
		mg__vbuf_free(&si->timers);
		mg__vbuf_free(&si->theap);
	}
}

size_t
mg__stateful_bytes(const struct node *n)
{
	uint32_t b, nbins = 1u << n->df->nbins_log2;
	unsigned w;
	size_t sum = 0;

	if (n->u.st.bins)
		for (b = 0; b < nbins; b++)
			if (n->u.st.bins[b])
				sum += mg_arena_bytes(&n->u.st.bins[b]->arena);
	for (w = 0; w < n->df->cfg.workers; w++)
		if (n->inst.st[w].native)
			sum += mg_arena_bytes(&n->inst.st[w].native->arena);
	return sum;
}

/* ---- receiving ------------------------------------------------------------------ */

/* Log batch @b of input @in.  Return: NULL; or the limit (LIMIT_*) of
 * the buffer that cannot take it, and nothing changed. */
static const char *
log_batch(struct node *n, struct stateful_inst *si, unsigned in,
	  const struct mg_batch *b)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct tlog *l = &si->log[in];
	uint32_t size = b->record_size, i;
	size_t stride = entry_stride(size);
	unsigned k = n->df->nbins_log2;
	struct vbuf *log;

	/* Everything before processed_upto arrived before its mark did. */
	MG_ASSERT(b->time >= si->processed_upto);
	if (b->time - si->processed_upto < TLOG_BUCKETS) {
		log = &l->bucket[b->time % TLOG_BUCKETS];
	} else {
		struct far_run *r = (struct far_run *)(void *)l->runs.base;
		size_t at = l->runs.len / sizeof(*r);

		log = &l->far;
		if (!mg__vbuf_room(&l->runs, sizeof(*r)))
			return LIMIT_RUNS;
		if (!mg__vbuf_room(log, stride * b->count))
			return LIMIT_FAR;
		/* insertion from the end: times mostly arrive in order */
		while (at > l->runs_head && r[at - 1].time > b->time) {
			r[at] = r[at - 1];
			at--;
		}
		r[at] = (struct far_run){b->time, log->len, stride * b->count};
		l->runs.len += sizeof(*r);
		l->far_live += stride * b->count;
	}
	if (!mg__vbuf_room(log, stride * b->count))
		return LIMIT_BUCKET;
	for (i = 0; i < b->count; i++) {
		const unsigned char *rec = b->data + (size_t)i * b->stride;
		uint64_t *e = (uint64_t *)(void *)(log->base + log->len);

		e[0] = b->time;
		e[1] = c->native ? 0
				 : mg_bin_of(c->hash[in](c->hash_ctx, rec), k);
		mg_copy_small(e + 2, rec, size);
		log->len += stride;
	}
	return NULL;
}

/* ---- sorting ---------------------------------------------------------------------- */

/* LSD radix sort of @n pairs on their keys, 8 bits a pass, over the bytes
 * some key has set, skipping bytes every key shares.  Returns the buffer
 * holding the result. */
static struct sort_pair *
radix_sort(struct sort_pair *a, struct sort_pair *t, size_t n)
{
	static _Thread_local size_t count[8][256];
	uint64_t any = 0;
	unsigned d, i, nd;
	size_t j;

	for (j = 0; j < n; j++)
		any |= a[j].key;
	nd = any ? (unsigned)(64 - __builtin_clzll(any) + 7) / 8 : 0;
	memset(count, 0, sizeof(count[0]) * nd);
	for (j = 0; j < n; j++)
		for (d = 0; d < nd; d++)
			count[d][(a[j].key >> (8 * d)) & 0xff]++;
	for (d = 0; d < nd; d++) {
		size_t sum = 0;
		struct sort_pair *x;

		if (count[d][(a[0].key >> (8 * d)) & 0xff] == n)
			continue; /* every key has this byte */
		for (i = 0; i < 256; i++) {
			size_t c = count[d][i];

			count[d][i] = sum;
			sum += c;
		}
		for (j = 0; j < n; j++)
			t[count[d][(a[j].key >> (8 * d)) & 0xff]++] = a[j];
		x = a;
		a = t;
		t = x;
	}
	return a;
}

/* ---- processing ---------------------------------------------------------------------- */

/* A pair's entry: its address (entries are 8-byte aligned, and their
 * buffers never move during a pass: vbuf.c) with its input in bit 0. */
#define REF(in, e)     ((uint64_t)(uintptr_t)(e) | (uint64_t)(in))
#define REF_INPUT(ref) ((unsigned)((ref)&1))

static const unsigned char *
entry_of(uint64_t ref)
{
	return (const unsigned char *)(uintptr_t)(ref & ~(uint64_t)1);
}

/* Add the entries of @v in [@from, @to) as pairs keyed (time - @tmin) <<
 * @k | bin, except those of bins awaiting acquisition, which go to @defer
 * (@again: @v is what was deferred before).  Return: NULL; or the limit
 * (LIMIT_*) of pairs or @defer, full -- the pass cannot go on. */
static const char *
collect(struct stateful_inst *si, unsigned in, bool again, const struct vbuf *v,
	size_t from, size_t to, size_t stride, struct vbuf *defer,
	uint64_t tmin, unsigned k)
{
	struct sort_pair *p = (struct sort_pair *)(void *)si->pairs.base;
	size_t np = si->pairs.len / sizeof(*p), off;

	/* Room for every entry as a pair: exact unless some are deferred,
	 * which is rare enough to check one by one. */
	if (!mg__vbuf_room(&si->pairs, (to - from) / stride * sizeof(*p)))
		return LIMIT_PAIRS;
	for (off = from; off < to; off += stride) {
		const uint64_t *e =
			(const uint64_t *)(const void *)(v->base + off);

		/* a bin on its way here: its entries wait for it (a bin this
		 * worker still holds is processed, up to its next departure:
		 * see mg__stateful_step) */
		if (si->in.n && mg__bit(si->awaiting, (uint32_t)e[1]) &&
		    !mg__bit(si->held, (uint32_t)e[1])) {
			if (!mg__vbuf_room(defer, stride))
				return LIMIT_DEFER;
			memcpy(defer->base + defer->len, e, stride);
			defer->len += stride;
			si->deferred += !again;
			si->defer_copies++;
			continue;
		}
		MG_ASSERT_EXPENSIVE(e[0] >= tmin);
		p[np].key = (e[0] - tmin) << k | e[1];
		p[np].ref = REF(in, e);
		np++;
	}
	si->pairs.len = np * sizeof(*p);
	return NULL;
}

static void
swap_vbuf(struct vbuf *a, struct vbuf *b)
{
	struct vbuf t = *a;

	*a = *b;
	*b = t;
}

static struct far_run *
runs_of(const struct tlog *l, size_t *n)
{
	*n = l->runs.len / sizeof(struct far_run);
	return (struct far_run *)(void *)l->runs.base;
}

/* The earliest time of input @in's entries due before @upto (what
 * collect_input() takes), or MG_TIME_MAX: the first non-empty bucket, the
 * first far run, and with @rescan what was deferred.  Keys count from it,
 * so they span only the pass's times, whatever the times are. */
static uint64_t
due_tmin(const struct node *n, const struct stateful_inst *si, unsigned in,
	 uint64_t upto, bool rescan)
{
	const struct tlog *l = &si->log[in];
	size_t stride = entry_stride(
		((struct stream *)n->u.st.cfg.in[in])->record_size);
	uint64_t base = si->processed_upto, tmin = MG_TIME_MAX, t;
	size_t nr;
	const struct far_run *r = runs_of(l, &nr);

	if (rescan)
		for (size_t off = 0; off < l->defer.len; off += stride) {
			t = *(const uint64_t *)(const void *)(l->defer.base +
							      off);
			tmin = t < tmin ? t : tmin;
		}
	for (t = base; t < upto && t - base < TLOG_BUCKETS && t < tmin; t++)
		if (l->bucket[t % TLOG_BUCKETS].len) {
			tmin = t;
			break;
		}
	if (l->runs_head < nr && r[l->runs_head].time < upto &&
	    r[l->runs_head].time < tmin)
		tmin = r[l->runs_head].time;
	return tmin;
}

/*
 * Gather every due entry of input @in as a pair.  Entries of bins still on
 * their way here are deferred: appended to `defer`, or with @rescan (a bin
 * arrived since the last pass: only then can a deferred entry be due)
 * `defer` is read again and what still waits goes to `defer_next`.  So a
 * deferred entry is copied again only when some bin arrives, not on every
 * pass while its bin's old owner lags behind.  Return: NULL; or the limit
 * (LIMIT_*) of the buffer that could not take them all.
 */
static const char *
collect_input(struct node *n, struct stateful_inst *si, unsigned in,
	      uint64_t upto, bool rescan, uint64_t tmin)
{
	struct tlog *l = &si->log[in];
	size_t stride = entry_stride(
		((struct stream *)n->u.st.cfg.in[in])->record_size);
	uint64_t base = si->processed_upto, t;
	size_t nr, i;
	struct far_run *r = runs_of(l, &nr);
	struct vbuf *defer = rescan ? &l->defer_next : &l->defer;
	const char *full = NULL;
	unsigned k = n->df->nbins_log2;

	if (rescan && l->defer.len) {
		si->rescans++;
		full = collect(si, in, true, &l->defer, 0, l->defer.len, stride,
			       defer, tmin, k);
	}
	for (t = base; !full && t < upto && t - base < TLOG_BUCKETS; t++) {
		const struct vbuf *v = &l->bucket[t % TLOG_BUCKETS];

		full = collect(si, in, false, v, 0, v->len, stride, defer, tmin,
			       k);
	}
	/* due runs of the far log, when the frontier jumped past the window */
	for (i = l->runs_head; !full && i < nr && r[i].time < upto; i++)
		full = collect(si, in, false, &l->far, r[i].off,
			       r[i].off + r[i].bytes, stride, defer, tmin, k);
	l->runs_taken = i - l->runs_head;
	return full;
}

/* Copy the live runs to far_next and make it the far log. */
static void
compact_far(struct tlog *l)
{
	size_t nr, i, k = 0;
	struct far_run *r = runs_of(l, &nr);

	l->far_next.len = 0;
	for (i = l->runs_head; i < nr; i++, k++) {
		memcpy(l->far_next.base + l->far_next.len,
		       l->far.base + r[i].off, r[i].bytes);
		r[k] = (struct far_run){r[i].time, l->far_next.len, r[i].bytes};
		l->far_next.len += r[i].bytes;
	}
	l->runs.len = k * sizeof(*r);
	l->runs_head = 0;
	swap_vbuf(&l->far, &l->far_next);
	l->far_next.len = 0;
}

/* After a pass up to @upto (@rescan: it read `defer` into `defer_next`):
 * empty what was consumed and fill the buckets of the new window [upto,
 * upto + NB) from the head of the far log. */
static void
retire_input(struct stateful_inst *si, unsigned in, uint64_t upto, bool rescan)
{
	struct tlog *l = &si->log[in];
	uint64_t base = si->processed_upto, t;
	size_t nr, i;
	struct far_run *r = runs_of(l, &nr);

	for (t = base; t < upto && t - base < TLOG_BUCKETS; t++)
		l->bucket[t % TLOG_BUCKETS].len = 0;
	if (rescan) {
		swap_vbuf(&l->defer, &l->defer_next);
		l->defer_next.len = 0;
	}
	for (i = l->runs_head; i < l->runs_head + l->runs_taken; i++)
		l->far_live -= r[i].bytes;
	l->runs_head += l->runs_taken;
	l->runs_taken = 0;
	for (; l->runs_head < nr && r[l->runs_head].time - upto < TLOG_BUCKETS;
	     l->runs_head++) {
		const struct far_run *x = &r[l->runs_head];
		struct vbuf *to = &l->bucket[x->time % TLOG_BUCKETS];

		/* A full bucket leaves this run and later ones in far, where
		 * collect_input() takes them once they are due. */
		if (!mg__vbuf_room(to, x->bytes))
			break;
		memcpy(to->base + to->len, l->far.base + x->off, x->bytes);
		to->len += x->bytes;
		l->far_live -= x->bytes;
	}
	if (l->runs_head == nr) {
		l->far.len = 0;
		l->runs.len = 0;
		l->runs_head = 0;
	} else if (l->far.len - l->far_live > l->far_live &&
		   l->far.len > (64u << 20)) {
		compact_far(l); /* each live byte moves once per halving */
	}
}

static void
call_bin(struct node *n, struct worker *wk, struct stateful_inst *si,
	 uint64_t t, uint64_t bin_id, const void *in[2], uint32_t n_in[2])
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct bin **slot = c->native ? &si->native : &n->u.st.bins[bin_id];
	struct call_ctx cc;
	struct mg_emitter e = {n->out, wk, t};
	uint32_t ntimers = 0, tsize = c->timer_record_size;
	uint64_t tt;
	bool popped = false;

	if (!*slot) {
		*slot = mg__bin_create(n, wk->node);
		if (!*slot) {
			mg__set_error(n->df, -ENOMEM, "bin arena: a new bin");
			return;
		}
	}
	/* Every timer due: one call per (bin, time), so none may wait. */
	si->timers.len = 0;
	while (mg__bin_next_timer(*slot) <= t) {
		if (!mg__vbuf_room(&si->timers, tsize)) {
			mg__set_error(n->df, -ENOBUFS, LIMIT_TIMERS);
			return;
		}
		mg_timers_pop(&(*slot)->x->timers, t, &tt,
			      si->timers.base + si->timers.len);
		si->timers.len += tsize;
		ntimers++;
		popped = true;
	}
	if (!n_in[0] && !n_in[1] && !ntimers)
		return; /* a stale index entry */
	cc = (struct call_ctx){
		.pub =
			{
				.time = t,
				.bin = (uint32_t)(c->native ? wk->w : bin_id),
				.worker = wk->w,
				.state = (*slot)->state,
				.arena = &(*slot)->arena,
				.in = {in[0], in[1]},
				.n_in = {n_in[0], n_in[1]},
				.timers = si->timers.base,
				.n_timers = ntimers,
			},
		.bin = *slot,
		.n = n,
		.si = si,
		.bin_id = bin_id,
	};
	c->fn(c->ctx, &cc.pub, &e);
	si->calls++;
	si->records += n_in[0] + n_in[1];
	if (si->counts)
		mg__count_bin(si, (uint32_t)bin_id, n_in[0] + n_in[1],
			      mg_arena_bytes(&(*slot)->arena));
	if (cc.pub.error)
		mg__set_error(n->df, mg__user_err(cc.pub.error),
			      "the operator's function");
	if (popped && mg__bin_timer_count(*slot) &&
	    mg__theap_push(si, mg__bin_next_timer(*slot), bin_id))
		mg__set_error(n->df, -ENOBUFS, LIMIT_THEAP);
}

/*
 * Hide the cache misses of the calls to come, in two stages over the sorted
 * entries: up to 2 * PREFETCH ahead of @at, each entry's bin block, root
 * state (both its lines, if it straddles one) and load counter (stats.c);
 * up to PREFETCH ahead, the operator's own prefetch of what the record
 * will touch (it reads the root state, in cache by then).  pf[] are the
 * two cursors, each at its stage's end after a refill (the ends never go
 * back: @at only grows); entries behind @at (a call that took many) are
 * skipped.  The caller refills once stage 1 is less than PREFETCH / 2 ahead,
 * PREFETCH / 2 entries at a time, not one per call: with many bins nearly
 * every call has one record, and the operator's hook loads (the map's
 * header and directory) miss in cache -- issued in a burst, those misses
 * overlap.  At 2^16 and 2^20 bins that took one worker's key-count
 * capacity up 30-50% (5.6-6.8 -> 7.8-8.5 and 3.6-4.4 -> 5.4-6.2 M
 * records/s), for 40 fewer instructions a record.
 */
static void
prefetch_ahead(const struct node *n, const struct stateful_inst *si,
	       const struct sort_pair *p, size_t np, size_t at, size_t pf[2])
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	uint64_t bin_mask = (1ull << n->df->nbins_log2) - 1;
	size_t i, end = at + 2 * PREFETCH < np ? at + 2 * PREFETCH : np;
	/* the root state's last byte of its first 128: a state that starts
	 * late in a line (after the bin's header) spills into the next */
	size_t tail = c->state_size > 128 ? 127
		      : c->state_size	  ? c->state_size - 1
					  : 0;
	const struct bin *x;

	for (i = pf[0] > at ? pf[0] : at; i < end; i++) {
		uint64_t b = p[i].key & bin_mask;

		x = c->native ? si->native : n->u.st.bins[b];
		if (x) {
			__builtin_prefetch(x);
			__builtin_prefetch(x->state);
			__builtin_prefetch(x->state + tail);
		}
		if (si->counts && !c->native)
			__builtin_prefetch(&si->counts[b], 1);
	}
	pf[0] = end;
	end = at + PREFETCH < np ? at + PREFETCH : np;
	for (i = pf[1] > at ? pf[1] : at; c->prefetch && i < end; i++) {
		x = c->native ? si->native : n->u.st.bins[p[i].key & bin_mask];
		if (x)
			c->prefetch(c->ctx, x->state, REF_INPUT(p[i].ref),
				    entry_of(p[i].ref) + 16);
	}
	pf[1] = end;
}

/*
 * The records of the pairs from *@at on that share its key -- one (time,
 * bin) -- for a call: their count per input in @cnt and where they are in
 * @recs.  One record is read where it lies in the log (an entry keeps its
 * place until the pass retires it), the common case with many bins; more
 * are copied, per input, into gather[] (@recs comes in pointing there).
 * *@at moves past them.
 * Return: false if gather[] is full (the run's error is set).
 */
static bool
gather(struct node *n, struct stateful_inst *si, const struct sort_pair *p,
       size_t np, size_t *at, const uint32_t size[2], const void *recs[2],
       uint32_t cnt[2])
{
	size_t i = *at, end = i + 1;

	while (end < np && p[end].key == p[i].key)
		end++;
	*at = end;
	if (end - i == 1) {
		unsigned in = REF_INPUT(p[i].ref);

		recs[in] = entry_of(p[i].ref) + 16;
		cnt[in] = 1;
		return true;
	}
	si->gather[0].len = si->gather[1].len = 0;
	for (; i < end; i++) {
		unsigned in = REF_INPUT(p[i].ref);
		struct vbuf *g = &si->gather[in];

		if (MG_UNLIKELY(!mg__vbuf_room(g, size[in]))) {
			mg__set_error(n->df, -ENOBUFS, LIMIT_GATHER);
			return false;
		}
		mg_copy_small(g->base + g->len, entry_of(p[i].ref) + 16,
			      size[in]);
		g->len += size[in];
		cnt[in]++;
	}
	return true;
}

static void
process(struct node *n, struct worker *wk, struct stateful_inst *si,
	uint64_t upto, bool rescan)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	unsigned k = n->df->nbins_log2, i;
	uint64_t tmin = MG_TIME_MAX, bin_mask = (1ull << k) - 1;
	struct sort_pair *p;
	size_t np = 0, at = 0, pf[2] = {0, 0};
	uint32_t size[2] = {0, 0};
	const char *full;

	si->pairs.len = 0;
	for (i = 0; i < c->ninputs; i++) {
		uint64_t t = due_tmin(n, si, i, upto, rescan);

		size[i] = ((struct stream *)c->in[i])->record_size;
		tmin = t < tmin ? t : tmin;
	}
	for (i = 0; i < c->ninputs; i++) {
		full = collect_input(n, si, i, upto, rescan, tmin);
		if (full) {
			mg__set_error(n->df, -ENOBUFS, full);
			return;
		}
	}
	np = si->pairs.len / sizeof(*p);
	si->backlog -= np; /* due now: processed in this pass */
	p = (struct sort_pair *)(void *)si->pairs.base;
	if (np > 1)
		p = radix_sort(p, (struct sort_pair *)(void *)si->tmp.base, np);

	for (;;) {
		const struct theap_ent *top = mg__theap_top(si);
		uint64_t t_in = at < np ? tmin + (p[at].key >> k) : MG_TIME_MAX;
		uint64_t t, last_timer_bin = MG_TIME_MAX;

		while (top && !c->native &&
		       !mg__bit(si->held, (uint32_t)top->bin)) {
			mg__theap_pop(si); /* the bin left this worker */
			top = mg__theap_top(si);
		}
		t = top && top->time < t_in ? top->time : t_in;
		if (t >= upto)
			break;
		/* Merge this time's input runs (by bin) with its due timers. */
		for (;;) {
			uint64_t b_in = MG_TIME_MAX, b_tm = MG_TIME_MAX, b;
			uint32_t cnt[2] = {0, 0};
			const void *recs[2] = {si->gather[0].base,
					       si->gather[1].base};

			if (at < np && tmin + (p[at].key >> k) == t)
				b_in = p[at].key & bin_mask;
			top = mg__theap_top(si);
			while (top && top->time == t &&
			       (top->bin == last_timer_bin ||
				(!c->native &&
				 !mg__bit(si->held, (uint32_t)top->bin)))) {
				mg__theap_pop(
					si); /* duplicate, or the bin left */
				top = mg__theap_top(si);
			}
			if (top && top->time == t)
				b_tm = top->bin;
			b = b_in < b_tm ? b_in : b_tm;
			if (b == MG_TIME_MAX)
				break;
			/* A failed run calls no user function any more: its
			 * outputs would be dropped, and what failed may have
			 * cut this call's records or timers short. */
			if (MG_UNLIKELY(mg__failed(n->df)))
				return;
			if (b_tm == b) {
				mg__theap_pop(si);
				last_timer_bin = b;
			}
			if (pf[1] < np && pf[1] < at + PREFETCH / 2)
				prefetch_ahead(n, si, p, np, at, pf);
			if (b_in == b &&
			    !gather(n, si, p, np, &at, size, recs, cnt))
				return; /* the run stops */
			call_bin(n, wk, si, t, b, recs, cnt);
			wk->round_work += cnt[0] + cnt[1] + 1;
		}
	}
	for (i = 0; i < c->ninputs; i++)
		retire_input(si, i, upto, rescan);
}

void
mg__stateful_step(struct node *n, struct worker *wk)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct stateful_inst *si = &n->inst.st[wk->w];
	struct mg_batch *b[RECV_BURST];
	uint64_t f = MG_TIME_MAX, fi;
	unsigned i, r, got, j;
	uint64_t work0 = wk->round_work;
	uint32_t before;
	const char *full;

	if (mg__congested(n, wk->w) || mg__failed(n->df))
		return;
	for (i = 0; i < c->ninputs; i++) {
		for (r = 0; r < RECV_BURSTS; r++) {
			got = mg_mesh_recv_burst_spsc(n->u.st.mesh[i], wk->w, b,
						      RECV_BURST);
			for (j = 0; j < got; j++) {
				full = log_batch(n, si, i, b[j]);
				if (full)
					mg__set_error(n->df, -ENOBUFS, full);
				else /* received, not processed (stats.c) */
					si->backlog += b[j]->count;
				wk->round_work += b[j]->count + 1;
				mg_batch_put_spsc(b[j]);
			}
			if (got < RECV_BURST)
				break;
		}
		fi = mg_mesh_frontier(n->u.st.mesh[i], wk->w);
		f = fi < f ? fi : f;
	}
	if (!c->native) {
		/* after receiving: see the essay, step 0 */
		if (mg__handoff_learn(n, wk, si))
			mg__set_error(n->df, -ENOBUFS, LIMIT_MOVES);
		if (mg__copy_mode(n))
			mg__copy_receive(n, wk, si);
		if (si->in.n)
			mg__handoff_acquire(n, wk, si);
	}
	/* Process up to the frontier, but never past a bin's departure time
	 * while it is still here: release it there, then go on (its records
	 * and timers from that time on belong to the new owner). */
	for (;;) {
		const struct theap_ent *top = mg__theap_top(si);
		uint64_t upto = mg__handoff_earliest(&si->out);
		bool capped = false;

		upto = upto < f ? upto : f;
		/* When the frontier is far ahead (the input closed, or a stall
		 * ended), go one timer time at a time and stop once a step has
		 * done STEP_BUDGET work: each time's output and frontier go out
		 * before the work of later timers. */
		if (top && top->time >= si->processed_upto &&
		    top->time + 1 < upto) {
			upto = top->time + 1;
			capped = true;
		}
		/* A move is learned before the frontier passes its time (the
		 * control frontier argument of step 0): never behind us. */
		MG_ASSERT(upto >= si->processed_upto);
		if (upto > si->processed_upto || si->acquired) {
			/* Only an arrival can end an entry's wait (handoff.c
			 * clears `awaiting` only then): without one, what
			 * was deferred stays so, unread. */
			bool rescan = si->acquired;

			si->acquired = false;
			process(n, wk, si, upto, rescan);
			si->processed_upto = upto;
			/* A pass cut short by the run's error left its
			 * entries unretired: no other pass may read them. */
			if (MG_UNLIKELY(mg__failed(n->df)))
				return;
		}
		if (capped && wk->round_work - work0 < STEP_BUDGET)
			continue; /* progress each time: upto > processed_upto */
		if (!si->out.n)
			break;
		before = si->out.n;
		mg__handoff_release(n, wk, si);
		if (si->out.n == before || upto == f)
			break; /* nothing left here, or waiting for a bin */
	}
	if (mg__copy_mode(n))
		mg__copy_send(n, wk, si);
	fi = mg__handoff_earliest(&si->in);
	si->done_upto = si->processed_upto < fi ? si->processed_upto : fi;
}

int
mg__stateful_prefill(struct node *n, struct worker *wk)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct stateful_inst *si = &n->inst.st[wk->w];
	const struct mg_routing *rt = mg_router_read(n->df->router);
	uint32_t b, nbins = 1u << n->df->nbins_log2;
	struct bin **slot;
	int err;

	if (!c->prefill)
		return 0;
	for (b = 0; b < (c->native ? 1 : nbins); b++) {
		struct call_ctx cc;

		if (!c->native && mg_routing_owner(rt, b, 0) != wk->w)
			continue;
		slot = c->native ? &si->native : &n->u.st.bins[b];
		if (!*slot)
			*slot = mg__bin_create(n, wk->node);
		if (!*slot)
			return -ENOMEM;
		cc = (struct call_ctx){
			.pub =
				{
					.bin = c->native ? wk->w : b,
					.worker = wk->w,
					.state = (*slot)->state,
					.arena = &(*slot)->arena,
				},
			.bin = *slot,
			.n = n,
			.si = si,
			.bin_id = b,
		};
		err = c->prefill(c->ctx, &cc.pub);
		if (err)
			return mg__user_err(err);
		/* A bin the prefill left untouched costs nothing until a
		 * record needs it: with 2^20 bins that is 512 MiB. */
		if (!c->native && mg__bin_pristine(n, *slot)) {
			mg__bin_free(*slot);
			*slot = NULL;
		} else if (!c->native && si->counts) {
			mg__count_bin(si, b, 0,
				      mg_arena_bytes(&(*slot)->arena));
		}
	}
	return 0;
}
