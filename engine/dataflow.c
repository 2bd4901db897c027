/*
 * dataflow.c - configuring, building, starting and joining a dataflow.
 * Everything here runs on the control thread; see engine_pvt.h for the
 * graph model.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <urcu/urcu-qsbr.h>

#include "engine/engine_pvt.h"

#define DEFAULT_EPOCH_NS 1000000ull
#define MIN_EPOCH_NS	 10000ull
#define MAX_NODES	 256
#define STATE_MAX	 4096u

int
mg__vbuf_init(struct vbuf *v, size_t reserve)
{
	void *p = mmap(NULL, reserve, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	v->base = p;
	v->len = 0;
	v->reserved = reserve;
	return 0;
}

void
mg__vbuf_free(struct vbuf *v)
{
	if (v->base)
		munmap(v->base, v->reserved);
	v->base = NULL;
}

static int
check_config(const struct mg_dataflow_config *c, unsigned ncpus)
{
	if (c->workers == 0 || c->workers > UINT16_MAX)
		return -EINVAL;
	if (c->workers > ncpus && !c->oversubscribe)
		return -EINVAL;
	if (c->bins_log2 < MG_BINS_LOG2_MIN || c->bins_log2 > MG_BINS_LOG2_MAX)
		return -EINVAL;
	if (c->epoch_ns < MIN_EPOCH_NS)
		return -EINVAL;
	if (c->ring_capacity < 2 || !mg_is_pow2(c->ring_capacity) ||
	    c->ring_capacity > MG_CHANNEL_CAPACITY_MAX)
		return -EINVAL;
	if (c->batch_records == 0 || c->batch_records > MG_BATCH_RECORDS_MAX)
		return -EINVAL;
	if (c->window_ns < 1000000ull)
		return -EINVAL;
	if (c->mode != MG_HANDOFF && c->mode != MG_COPY)
		return -EINVAL;
	return 0;
}

int
mg_dataflow_create(struct mg_dataflow **out,
		   const struct mg_dataflow_config *cfg)
{
	struct mg_dataflow_config c =
		cfg ? *cfg : (struct mg_dataflow_config){0};
	struct mg_pools_config pc = {0};
	struct mg_dataflow *df;
	unsigned w;
	int err;

	if (!c.workers)
		c.workers = 1;
	if (!c.bins_log2)
		c.bins_log2 = 12;
	if (!c.epoch_ns)
		c.epoch_ns = DEFAULT_EPOCH_NS;
	if (!c.batch_records)
		c.batch_records = 256;
	if (!c.ring_capacity)
		c.ring_capacity = 64;
	if (!c.window_ns)
		c.window_ns = 250000000ull;

	df = calloc(1, sizeof(*df));
	if (!df)
		return -ENOMEM;
	df->cfg = c;
	df->nbins_log2 = c.bins_log2;
	err = mg_topology_create(&df->topo);
	if (err)
		goto fail;
	err = check_config(&c, mg_topology_ncpus(df->topo));
	if (err)
		goto fail;
	pc.reserve_bytes = c.pool_reserve;
	err = mg_pools_create(&df->pools, df->topo, &pc);
	if (err)
		goto fail;
	err = mg_router_create(&df->router, 1u << c.bins_log2, c.workers);
	if (err)
		goto fail;
	if (c.rehome) {
		err = mg_rehomer_create(&df->rehomer, df->topo, NULL);
		if (err)
			goto fail;
	}
	df->wk = aligned_alloc(MG_CACHE_LINE, sizeof(*df->wk) * c.workers);
	df->pub = aligned_alloc(MG_CACHE_LINE, sizeof(*df->pub) * c.workers);
	df->node_of = calloc(c.workers, sizeof(*df->node_of));
	df->nodes = calloc(MAX_NODES, sizeof(*df->nodes));
	err = -ENOMEM;
	if (!df->wk || !df->pub || !df->node_of || !df->nodes)
		goto fail;
	memset(df->wk, 0, sizeof(*df->wk) * c.workers);
	for (w = 0; w < c.workers; w++) {
		struct worker *wk = &df->wk[w];

		err = mg_topology_place(df->topo, w, c.workers, c.oversubscribe,
					&wk->cpu, &wk->node);
		if (err)
			goto fail;
		wk->df = df;
		wk->w = w;
		df->node_of[w] = wk->node;
		atomic_init(&df->pub[w].probe_frontier, 0);
		atomic_init(&df->pub[w].window, 0);
		atomic_init(&df->pub[w].sources_closed, false);
		atomic_init(&df->pub[w].done, false);
	}
	df->cap_nodes = MAX_NODES;
	/* The control frontier runs >= 2 epochs and >= 2 ms ahead. */
	df->ctl_lead_epochs = (2000000ull + c.epoch_ns - 1) / c.epoch_ns;
	if (df->ctl_lead_epochs < 2)
		df->ctl_lead_epochs = 2;
	atomic_init(&df->error, 0);
	atomic_init(&df->stop_reporter, false);
	atomic_init(&df->win_merged, 0);
	atomic_init(&df->ready, 0);
	atomic_init(&df->go, false);
	*out = df;
	return 0;
fail:
	mg_dataflow_destroy(df);
	return err;
}

static void
node_free(struct mg_dataflow *df, struct node *n)
{
	unsigned w, W = df->cfg.workers;

	switch (n->kind) {
	case SOURCE:
		if (n->inst.source)
			for (w = 0; w < W; w++) {
				free(n->inst.source[w].lat);
				free(n->inst.source[w].rec);
			}
		break;
	case SEND:
		mg_mesh_destroy(n->u.send.mesh);
		if (n->inst.send)
			for (w = 0; w < W; w++) {
				struct send_inst *s = &n->inst.send[w];
				struct mg_batch *b;

				while ((b = s->spare)) {
					s->spare = b->next;
					mg__overflow_free(df, b);
				}
				for (unsigned d = 0; s->q && d < W; d++)
					while ((b = s->q[d].head)) {
						s->q[d].head = b->next;
						if (!b->home)
							mg__overflow_free(df,
									  b);
					}
				if (s->cur)
					for (unsigned d = 0; d < W; d++)
						if (s->cur[d] &&
						    !s->cur[d]->home)
							mg__overflow_free(
								df, s->cur[d]);
				free(s->cur);
				free(s->q);
			}
		break;
	case STATEFUL:
		mg__stateful_fini(n);
		break;
	default:
		break;
	}
	free(n->congest);
	free(n->inst.any);
	free(n->out);
	free(n);
}

void
mg_dataflow_destroy(struct mg_dataflow *df)
{
	unsigned i;

	if (!df)
		return;
	if (df->started && !df->joined)
		mg_dataflow_join(df, NULL);
	mg_rehomer_destroy(df->rehomer); /* drains: bins may be freed next */
	mg__migrations_free(df);
	for (i = df->nnodes; i-- > 0;)
		node_free(df, df->nodes[i]);
	free(df->nodes);
	free(df->wk);
	free(df->pub);
	free(df->node_of);
	mg_router_destroy(df->router);
	mg_pools_destroy(df->pools);
	mg_topology_destroy(df->topo);
	free(df);
}

unsigned
mg_dataflow_workers(const struct mg_dataflow *df)
{
	return df->cfg.workers;
}

void
mg_dataflow_rehome_stats(const struct mg_dataflow *df, uint64_t *requests,
			 uint64_t *examined, uint64_t *moved)
{
	*requests = *examined = *moved = 0;
	if (df->rehomer)
		mg_rehomer_stats(df->rehomer, requests, examined, moved);
}

uint32_t
mg_dataflow_bins(const struct mg_dataflow *df)
{
	return 1u << df->nbins_log2;
}

/* ---- building ------------------------------------------------------------- */

static bool
stream_ok(const struct mg_dataflow *df, const struct stream *s)
{
	return s && s->df == df && s->nsubs < MAX_SUBS;
}

static int
add_node(struct mg_dataflow *df, enum node_kind kind, uint32_t out_record_size,
	 struct node **out)
{
	struct node *n;

	if (df->started || df->nnodes == df->cap_nodes)
		return -EINVAL;
	if (out_record_size > MG_RECORD_MAX)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	if (out_record_size) {
		n->out = calloc(1, sizeof(*n->out));
		if (!n->out) {
			free(n);
			return -ENOMEM;
		}
		n->out->df = df;
		n->out->from = n;
		n->out->record_size = out_record_size;
	}
	n->kind = kind;
	n->df = df;
	n->id = df->nnodes;
	df->nodes[df->nnodes++] = n;
	*out = n;
	return 0;
}

static void
subscribe(struct node *n, unsigned port, struct stream *s)
{
	n->in[port] = s;
	s->subs[s->nsubs++] = n;
}

int
mg_source(struct mg_dataflow *df, const struct mg_source_config *cfg,
	  struct mg_stream **out)
{
	struct node *n;
	int err;

	if (!cfg || !cfg->gen || !(cfg->rate > 0) || cfg->record_size == 0 ||
	    cfg->record_size > MG_RECORD_MAX || !out)
		return -EINVAL;
	err = add_node(df, SOURCE, cfg->record_size, &n);
	if (err)
		return err;
	n->u.src = *cfg;
	*out = (struct mg_stream *)n->out;
	return 0;
}

int
mg_flat_map(struct mg_dataflow *df, struct mg_stream *in,
	    uint32_t out_record_size, mg_flat_map_fn fn, void *ctx,
	    struct mg_stream **out)
{
	struct stream *s = (struct stream *)in;
	struct node *n;
	int err;

	if (!stream_ok(df, s) || !fn || !out || out_record_size == 0)
		return -EINVAL;
	err = add_node(df, FLAT_MAP, out_record_size, &n);
	if (err)
		return err;
	n->u.map.fn = fn;
	n->u.map.ctx = ctx;
	subscribe(n, 0, s);
	*out = (struct mg_stream *)n->out;
	return 0;
}

/* A SEND subscribed to @s, feeding a fresh mesh towards @to's @port. */
static int
add_send(struct mg_dataflow *df, struct stream *s, mg_hash_fn hash, void *ctx,
	 bool by_bin, struct node *to, unsigned port, struct mg_mesh **mesh)
{
	struct mg_channel_config cc = {
		.record_size = s->record_size,
		.batch_records = df->cfg.batch_records,
		.capacity = df->cfg.ring_capacity,
	};
	struct node *n;
	int err;

	err = add_node(df, SEND, 0, &n);
	if (err)
		return err;
	err = mg_mesh_create(&n->u.send.mesh, df->pools, df->cfg.workers,
			     df->node_of, &cc);
	if (err) {
		df->nnodes--;
		free(n);
		return err;
	}
	n->u.send.hash = hash;
	n->u.send.ctx = ctx;
	n->u.send.by_bin = by_bin;
	n->feeds = to;
	n->port = port;
	subscribe(n, 0, s);
	*mesh = n->u.send.mesh;
	return 0;
}

static int
add_route(struct mg_dataflow *df, struct mg_stream *in, mg_hash_fn hash,
	  void *ctx, bool by_bin, struct mg_stream **out)
{
	struct stream *s = (struct stream *)in;
	struct node *n;
	int err;

	if (!stream_ok(df, s) || !hash || !out)
		return -EINVAL;
	err = add_node(df, RECV, s->record_size, &n);
	if (err)
		return err;
	err = add_send(df, s, hash, ctx, by_bin, n, 0, &n->u.recv.mesh);
	if (err) {
		df->nnodes--;
		free(n->out);
		free(n);
		return err;
	}
	*out = (struct mg_stream *)n->out;
	return 0;
}

int
mg_exchange(struct mg_dataflow *df, struct mg_stream *in, mg_hash_fn hash,
	    void *ctx, struct mg_stream **out)
{
	return add_route(df, in, hash, ctx, false, out);
}

int
mg_distribute(struct mg_dataflow *df, struct mg_stream *in, mg_hash_fn hash,
	      void *ctx, struct mg_stream **out)
{
	return add_route(df, in, hash, ctx, true, out);
}

int
mg_stateful(struct mg_dataflow *df, const struct mg_stateful_config *cfg,
	    struct mg_stream **out)
{
	struct node *n;
	unsigned i;
	int err;

	if (!cfg || !out || !cfg->fn ||
	    (cfg->ninputs != 1 && cfg->ninputs != 2))
		return -EINVAL;
	if (cfg->out_record_size == 0 || cfg->state_size > STATE_MAX ||
	    cfg->timer_record_size > 1024)
		return -EINVAL;
	if (df->cfg.mode == MG_COPY && !cfg->native &&
	    (!cfg->serialize || !cfg->deserialize))
		return -EINVAL; /* copy mode needs to serialize the bins */
	for (i = 0; i < cfg->ninputs; i++)
		if (!stream_ok(df, (struct stream *)cfg->in[i]) ||
		    !cfg->hash[i] ||
		    (i == 1 && cfg->in[1] == cfg->in[0] &&
		     ((struct stream *)cfg->in[0])->nsubs + 2 > MAX_SUBS))
			return -EINVAL;
	err = add_node(df, STATEFUL, cfg->out_record_size, &n);
	if (err)
		return err;
	n->u.st.cfg = *cfg;
	for (i = 0; i < cfg->ninputs; i++) {
		err = add_send(df, (struct stream *)cfg->in[i], cfg->hash[i],
			       cfg->hash_ctx, !cfg->native, n, i,
			       &n->u.st.mesh[i]);
		if (err)
			return err; /* n stays in the graph, unusable: destroy */
	}
	err = mg__stateful_init(n);
	if (!err && df->cfg.mode == MG_COPY && !cfg->native)
		err = mg__stateful_copy_init(n);
	if (err)
		return err;
	*out = (struct mg_stream *)n->out;
	return 0;
}

int
mg_sink(struct mg_dataflow *df, struct mg_stream *in, mg_sink_fn fn, void *ctx)
{
	struct stream *s = (struct stream *)in;
	struct node *n;
	int err;

	if (!stream_ok(df, s) || !fn)
		return -EINVAL;
	err = add_node(df, SINK, 0, &n);
	if (err)
		return err;
	n->u.sink.fn = fn;
	n->u.sink.ctx = ctx;
	subscribe(n, 0, s);
	return 0;
}

int
mg_probe(struct mg_dataflow *df, struct mg_stream *in)
{
	struct stream *s = (struct stream *)in;

	if (!s || s->df != df || df->probe || df->started)
		return -EINVAL;
	df->probe = s;
	return 0;
}

/* ---- starting ---------------------------------------------------------------- */

/* Collect the SENDs reachable from @s through flat-maps. */
static int
collect_sends(struct node *n, const struct stream *s)
{
	unsigned i;
	int err;

	for (i = 0; i < s->nsubs; i++) {
		struct node *sub = s->subs[i];

		if (sub->kind == SEND) {
			struct node **c = realloc(
				n->congest, sizeof(*c) * (n->ncongest + 1));
			if (!c)
				return -ENOMEM;
			n->congest = c;
			c[n->ncongest++] = sub;
		} else if (sub->kind == FLAT_MAP) {
			err = collect_sends(n, sub->out);
			if (err)
				return err;
		}
	}
	return 0;
}

static int
alloc_inst(struct mg_dataflow *df, struct node *n, size_t size)
{
	n->inst.any = aligned_alloc(MG_CACHE_LINE, size * df->cfg.workers);
	if (!n->inst.any)
		return -ENOMEM;
	memset(n->inst.any, 0, size * df->cfg.workers);
	return 0;
}

static int
prepare(struct mg_dataflow *df)
{
	unsigned i, w, W = df->cfg.workers;
	int err;

	for (i = 0; i < df->nnodes; i++) {
		struct node *n = df->nodes[i];

		if (n->out && (n->kind == SOURCE || n->kind == RECV ||
			       n->kind == STATEFUL)) {
			err = collect_sends(n, n->out);
			if (err)
				return err;
		}
		if (n->kind == SOURCE) {
			err = alloc_inst(df, n, sizeof(struct source_inst));
			if (err)
				return err;
			for (w = 0; w < W; w++) {
				struct source_inst *s = &n->inst.source[w];

				s->lat = calloc(LAT_RING, sizeof(*s->lat));
				s->rec = calloc(1, n->out->record_size);
				if (!s->lat || !s->rec)
					return -ENOMEM;
			}
		} else if (n->kind == SEND) {
			err = alloc_inst(df, n, sizeof(struct send_inst));
			if (err)
				return err;
			for (w = 0; w < W; w++) {
				struct send_inst *s = &n->inst.send[w];

				s->cur = calloc(W, sizeof(*s->cur));
				s->q = calloc(W, sizeof(*s->q));
				if (!s->cur || !s->q)
					return -ENOMEM;
			}
		}
	}
	return 0;
}

/* Stop and join the first @n workers after a failed start. */
static void
release_workers(struct mg_dataflow *df, unsigned n)
{
	unsigned w;

	atomic_store_explicit(&df->go, true, memory_order_release);
	for (w = 0; w < n; w++)
		pthread_join(df->wk[w].thread, NULL);
	df->joined = true;
}

int
mg_dataflow_start(struct mg_dataflow *df, mg_window_fn on_window, void *ctx)
{
	unsigned w, i, nsources = 0;
	int err;

	if (df->started || !df->probe)
		return -EINVAL;
	for (i = 0; i < df->nnodes; i++)
		nsources += df->nodes[i]->kind == SOURCE;
	if (!nsources)
		return -EINVAL;
	err = prepare(df);
	if (err)
		return err;
	df->on_window = on_window;
	df->on_window_ctx = ctx;
	df->started = true;
	for (w = 0; w < df->cfg.workers; w++) {
		mg__hist_reset(&df->wk[w].whole);
		for (i = 0; i < WIN_RING; i++) {
			mg__hist_reset(&df->wk[w].win[i]);
			/* slot i holds window i at the start */
			atomic_store_explicit(&df->wk[w].win[i].id, i,
					      memory_order_relaxed);
		}
		if (pthread_create(&df->wk[w].thread, NULL, mg__worker_main,
				   &df->wk[w])) {
			mg__set_error(df, -EAGAIN);
			release_workers(df, w);
			return -EAGAIN;
		}
	}
	/* Workers prefill their bins, then the clock starts for all.
	 * ORDER(A4): pairs with R4 in mg__worker_main(). */
	while (atomic_load_explicit(&df->ready, memory_order_acquire) <
	       df->cfg.workers) {
		if (atomic_load_explicit(&df->error, memory_order_relaxed))
			break;
		nanosleep(&(struct timespec){0, 100000}, NULL);
	}
	df->start_ns = mg_now_ns();
	mg_router_advance(df->router, df->ctl_lead_epochs);
	/* ORDER(R5): pairs with A5 in mg__worker_main(). */
	atomic_store_explicit(&df->go, true, memory_order_release);
	err = mg__reporter_start(df);
	if (err) {
		mg__set_error(df, err);
		release_workers(df, df->cfg.workers);
		return err;
	}
	return 0;
}

int
mg_dataflow_join(struct mg_dataflow *df, struct mg_run_stats *stats)
{
	struct mg__hist *all;
	unsigned w, i;

	if (!df->started)
		return -EINVAL;
	if (!df->joined) {
		for (w = 0; w < df->cfg.workers; w++)
			pthread_join(df->wk[w].thread, NULL);
		df->end_ns = mg_now_ns();
		mg__reporter_stop(df);
		df->joined = true;
	}
	if (stats) {
		all = malloc(sizeof(*all));
		if (!all)
			return -ENOMEM;
		mg__hist_reset(all);
		memset(stats, 0, sizeof(*stats));
		for (w = 0; w < df->cfg.workers; w++)
			mg__hist_merge(all, &df->wk[w].whole);
		for (i = 0; i < df->nnodes; i++) {
			struct node *n = df->nodes[i];

			if (n->kind == SOURCE)
				for (w = 0; w < df->cfg.workers; w++)
					stats->records += n->inst.source[w].k;
			if (n->kind == STATEFUL)
				stats->state_bytes += mg__stateful_bytes(n);
		}
		stats->duration_s = (double)(df->end_ns - df->start_ns) / 1e9;
		stats->count = mg__hist_count(all);
		stats->p50 = mg__hist_quantile(all, 0.50);
		stats->p99 = mg__hist_quantile(all, 0.99);
		stats->p999 = mg__hist_quantile(all, 0.999);
		stats->max = mg__hist_max(all);
		stats->rss_peak_bytes = df->rss_peak;
		free(all);
	}
	return atomic_load_explicit(&df->error, memory_order_relaxed);
}
