/*
 * copymode.c - copy mode, the Megaphone baseline: the handoff protocol of
 * handoff.c with Megaphone's data movement, to measure handoff against copy
 * side by side in one run (and for a future move across machines).
 *
 * Where a handoff would release bin b (step 2 in handoff.c), A serializes
 * it instead -- a header {move id, bytes, bin}, the user's serialize()
 * output, then its timers -- into ser[B], frees the bin, and streams ser[B]
 * through the operator's state mesh in STATE_PAYLOAD pieces as the ring
 * allows.  B appends what arrives to reasm[A] (a sender's bins come in
 * order), rebuilds every complete bin in a fresh arena on its own node, and
 * then stores the move's id in token[b] (written by B in this mode), where
 * mg__handoff_acquire() finds it as it finds a released bin.  The cost is
 * proportional to the bytes moved, and the bytes in flight are memory.
 *
 * BUFFERS.  A copy needs room a handoff does not.  If A's bytes do not fit
 * in ser[B], or serialize() says -ENOMEM, the copy fails, not the move: A
 * hands b over instead (mg__handoff_release() stores the token), counted
 * in mg_run_stats.copy_fallbacks.  So is a bin whose pages are still
 * queued for re-homing (an earlier handoff across nodes): the re-homer
 * reads its request, a block of b's arena, so b must not be freed yet.
 * The routing already sends b's records
 * from time t to B, so b at B by t is the one outcome the correctness
 * contract allows, and handing it over needs no memory.  serialize() and
 * mg_timers_write() only read b, so it is whole when its copy fails; any
 * other error of serialize() fails the run.  reasm[A] cannot overflow: it
 * is larger than ser[A] by a batch's payload, B takes a batch only while
 * every reasm has room for it, and after parsing holds at most a part of
 * one bin, which fit in ser.  B's fresh arena is like any bin's: running
 * out of memory there fails the run with -ENOMEM.  (B could adopt the
 * original instead if A kept it until the rebuild, but then the original
 * and its copy would take memory at once, which Megaphone -- whose memory
 * this baseline is there to measure -- never does.)
 *
 * The baseline is kept efficient so the comparison is honest: the buffers
 * are in huge pages, maps are rebuilt at their final size, and a state
 * ring holds STATE_RING batches (8 MiB, resident from creation, so not
 * more), so that after the sender's one long round -- it serializes a whole
 * step at once, as Megaphone does -- each receiver round takes a good
 * share.  Everything here runs on the workers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/engine_pvt.h"

#define STATE_REC     1024u /* bytes per state-mesh record */
#define STATE_PAYLOAD (STATE_REC - 8u)
#define STATE_BATCH   64u  /* records per state batch */
#define STATE_RING    128u /* state batches per channel: 8 MiB in flight */

struct state_rec {
	uint32_t len;
	uint32_t src;
	unsigned char payload[STATE_PAYLOAD];
};
_Static_assert(sizeof(struct state_rec) == STATE_REC, "state record");

#define STATE_BATCH_BYTES ((size_t)STATE_BATCH * STATE_PAYLOAD)

struct copy_hdr {
	uint64_t move_id;
	uint64_t bytes; /* serialized bytes after the header */
	uint32_t bin;
	uint32_t empty; /* the bin never held state */
};

/* A copy buffer of @extra bytes more than ser: transient, up to the bytes
 * of a whole step, so in huge pages (512 faults per GiB written instead
 * of 262144). */
static int
copy_vbuf_init(const struct node *n, struct vbuf *v, size_t extra)
{
	int err = mg__vbuf_init(v, (COPY_RESERVE >> n->u.st.vshift) + extra);

	if (!err) /* failure (no THP) costs only page faults */
		(void)madvise(v->base, v->reserved, MADV_HUGEPAGE);
	return err;
}

int
mg__copy_init(struct node *n)
{
	struct mg_dataflow *df = n->df;
	unsigned W = df->cfg.workers, w, p;
	struct mg_channel_config cc = {
		.record_size = STATE_REC,
		.batch_records = STATE_BATCH,
		.capacity = STATE_RING,
	};
	int err;

	err = mg_mesh_create(&n->u.st.state, df->pools, W, df->node_of, &cc);
	for (w = 0; w < W && !err; w++) {
		struct stateful_inst *si = &n->inst.st[w];

		si->ser = mg_calloc_lines(W, sizeof(*si->ser));
		si->reasm = mg_calloc_lines(W, sizeof(*si->reasm));
		si->sent = mg_calloc_lines(W, sizeof(*si->sent));
		si->state_held = mg_calloc_lines(W, sizeof(*si->state_held));
		if (!si->ser || !si->reasm || !si->sent || !si->state_held)
			return -ENOMEM;
		for (p = 0; p < W && !err; p++) {
			err = copy_vbuf_init(n, &si->ser[p], 0);
			if (!err)
				err = copy_vbuf_init(n, &si->reasm[p],
						     STATE_BATCH_BYTES);
		}
	}
	return err;
}

void
mg__copy_fini(struct node *n)
{
	unsigned W = n->df->cfg.workers, w, p;

	mg_mesh_destroy(n->u.st.state);
	for (w = 0; w < W; w++) {
		struct stateful_inst *si = &n->inst.st[w];

		for (p = 0; p < W && si->ser; p++) {
			mg__vbuf_free(&si->ser[p]);
			mg__vbuf_free(&si->reasm[p]);
		}
		free(si->ser);
		free(si->reasm);
		free(si->sent);
		free(si->state_held);
	}
}

/* Give a drained buffer's pages back: the copy's memory is transient. */
static void
vbuf_reset(struct vbuf *v)
{
	if (v->len > (64u << 20))
		madvise(v->base, v->len, MADV_DONTNEED);
	v->len = 0;
}

/* A: serialize bin m->bin for m->to and discard it; or, out of room,
 * leave it whole for a handoff (see the essay). */
bool
mg__copy_release(struct node *n, struct worker *wk, struct stateful_inst *si,
		 const struct pending_move *m)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct vbuf *v = &si->ser[m->to];
	struct bin *b = n->u.st.bins[m->bin];
	struct copy_hdr h = {m->id, 0, m->bin, b == NULL};
	struct mg_writer wr;
	int err = 0;

	/* Out of room, or the bin's pages still queued for re-homing (the
	 * re-homer reads a request inside the bin: it must not be freed). */
	if (!mg__vbuf_room(v, sizeof(h)) || (b && mg__bin_rehoming(b))) {
		si->copy_fallbacks++;
		return false;
	}
	wr = (struct mg_writer){v->base + v->len + sizeof(h), 0,
				v->reserved - v->len - sizeof(h)};
	if (b) {
		struct call_ctx cc = {
			.pub = {.time = m->time,
				.bin = m->bin,
				.worker = wk->w,
				.state = b->state,
				.arena = &b->arena},
			.bin = b,
			.n = n,
			.si = si,
			.bin_id = m->bin,
		};

		err = mg__user_err(c->serialize(c->ctx, &cc.pub, &wr));
		if (!err)
			err = mg__bin_timers_write(b, &wr);
	}
	if (err) { /* nothing appended to ser: b goes as it is */
		if (err == -ENOMEM)
			si->copy_fallbacks++;
		else
			mg__set_error(n->df, err,
				      "copy mode: the operator's serialize");
		return false;
	}
	mg__bin_free(b);
	n->u.st.bins[m->bin] = NULL;
	h.bytes = wr.len;
	memcpy(v->base + v->len, &h, sizeof(h));
	v->len += sizeof(h) + wr.len;
	return true;
}

/* A: stream serialized bytes to every peer as far as the rings allow. */
void
mg__copy_send(struct node *n, struct worker *wk, struct stateful_inst *si)
{
	unsigned W = n->df->cfg.workers, d;

	for (d = 0; d < W; d++) {
		struct mg_channel *ch =
			mg_mesh_channel(n->u.st.state, wk->w, d);
		struct vbuf *v = &si->ser[d];

		while (si->state_held[d] || si->sent[d] < v->len) {
			struct mg_batch *b = si->state_held[d];

			if (!b) {
				b = mg_channel_batch_get_spsc(ch);
				if (!b)
					break;
				b->time = 0;
				while (b->count < b->capacity &&
				       si->sent[d] < v->len) {
					struct state_rec *r =
						mg_batch_record(b, b->count++);
					size_t k = v->len - si->sent[d];

					r->len =
						(uint32_t)(k < STATE_PAYLOAD
								   ? k
								   : STATE_PAYLOAD);
					r->src = wk->w;
					memcpy(r->payload,
					       v->base + si->sent[d], r->len);
					si->sent[d] += r->len;
				}
			}
			si->state_held[d] = NULL;
			if (!mg_channel_push_spsc(ch, b)) {
				si->state_held[d] = b;
				break;
			}
			wk->round_work += b->count;
		}
		if (si->sent[d] && si->sent[d] == v->len) {
			vbuf_reset(v);
			si->sent[d] = 0;
		}
	}
}

/* B: rebuild bin @bin from @rd in a fresh arena.  Return: 0 and *@out;
 * or the error, which fails the run (nothing is left then). */
static int
rebuild(struct node *n, struct worker *wk, struct stateful_inst *si,
	uint32_t bin, struct mg_reader *rd, struct bin **out)
{
	const struct mg_stateful_config *c = &n->u.st.cfg;
	struct bin *bn;
	int err = -ENOMEM;

	bn = mg__bin_create(n, wk->node);
	if (bn) {
		struct call_ctx cc = {
			.pub = {.bin = bin,
				.worker = wk->w,
				.state = bn->state,
				.arena = &bn->arena},
			.bin = bn,
			.n = n,
			.si = si,
			.bin_id = bin,
		};

		err = mg__user_err(c->deserialize(c->ctx, &cc.pub, rd));
		if (!err)
			err = mg__bin_timers_read(n, bn, rd);
	}
	if (err) {
		mg__bin_free(bn); /* a partial copy, or none */
		mg__set_error(n->df, err,
			      bn ? "copy mode: rebuilding a bin"
				 : "bin arena: a new bin");
		return err;
	}
	*out = bn;
	return 0;
}

/* How many state batches every reasm buffer has room for, up to a burst. */
static unsigned
reasm_room(const struct stateful_inst *si, unsigned W)
{
	size_t k = RECV_BURST;
	unsigned p;

	for (p = 0; p < W; p++) {
		size_t r = (si->reasm[p].reserved - si->reasm[p].len) /
			   STATE_BATCH_BYTES;

		k = r < k ? r : k;
	}
	return (unsigned)k;
}

/* B: take what arrived and rebuild every complete bin. */
void
mg__copy_receive(struct node *n, struct worker *wk, struct stateful_inst *si)
{
	unsigned W = n->df->cfg.workers, i, j, got, p, room;
	struct mg_batch *b[RECV_BURST];

	/* Batches only as far as every reasm has room (see the essay): the
	 * rest waits in the ring until the bins ahead of them are rebuilt. */
	while ((room = reasm_room(si, W)) &&
	       (got = mg_mesh_recv_burst_spsc(n->u.st.state, wk->w, b, room))) {
		for (i = 0; i < got; i++) {
			for (j = 0; j < b[i]->count; j++) {
				const struct state_rec *r =
					mg_batch_record(b[i], j);
				struct vbuf *v = &si->reasm[r->src];

				MG_ASSERT(mg__vbuf_room(v, r->len));
				memcpy(v->base + v->len, r->payload, r->len);
				v->len += r->len;
			}
			wk->round_work += b[i]->count;
			mg_batch_put_spsc(b[i]);
		}
	}
	for (p = 0; p < W; p++) {
		struct vbuf *v = &si->reasm[p];
		struct copy_hdr h;
		size_t at = 0; /* bytes of v rebuilt */

		while (v->len - at >= sizeof(h)) {
			struct mg_reader rd;
			struct bin *bn = NULL;

			memcpy(&h, v->base + at, sizeof(h));
			if (v->len - at - sizeof(h) < h.bytes)
				break; /* the rest is still on its way */
			rd = (struct mg_reader){v->base + at + sizeof(h),
						h.bytes, 0};
			if (!h.empty && rebuild(n, wk, si, h.bin, &rd, &bn))
				return; /* the run failed */
			n->u.st.bins[h.bin] = bn;
			/* Relaxed: only this worker reads the token of a copied
			 * bin; the bytes came through the channel. */
			atomic_store_explicit(&n->u.st.token[h.bin], h.move_id,
					      memory_order_relaxed);
			at += sizeof(h) + h.bytes;
		}
		/* What is left is a part of the next bin: to the front, so
		 * that the buffer keeps room (each byte moves at most once:
		 * the bytes moved are the next to be parsed). */
		if (at == v->len) {
			vbuf_reset(v);
		} else if (at) {
			memmove(v->base, v->base + at, v->len - at);
			v->len -= at;
		}
	}
}
