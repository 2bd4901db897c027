/*
 * dataflow.c - configuring, building, starting and joining a dataflow.
 * Everything here runs on the control thread; see engine_pvt.h for the
 * graph model.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <math.h>
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

/* Runs whose workers are alive (liburcu readers): started, not yet joined.
 * A child forked while one was cannot run a dataflow -- liburcu's grace
 * periods would wait for the parent's readers (migration/router.c) -- so
 * it gets an error instead of a hang. */
static _Atomic unsigned live_runs;
static _Atomic bool forked_while_live;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void
forked_child(void)
{
	/* Relaxed: the child has one thread; a start or join racing the
	 * fork in another thread of the parent counts either way. */
	if (atomic_load_explicit(&live_runs, memory_order_relaxed))
		atomic_store_explicit(&forked_while_live, true,
				      memory_order_relaxed);
}

static void
register_fork(void)
{
	/* ENOMEM: a child forked while a run lives hangs, as before */
	(void)pthread_atfork(NULL, NULL, forked_child);
}

/* The workers of @df have been joined (or never ran): a started run counts
 * in live_runs until then. */
static void
workers_joined(struct mg_dataflow *df)
{
	/* Relaxed: a count read only at fork (forked_child()). */
	if (!df->joined)
		atomic_fetch_sub_explicit(&live_runs, 1, memory_order_relaxed);
	df->joined = true;
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
	if (!c.output_buffer)
		c.output_buffer = (size_t)256 << 20;

	if (!out)
		return -EINVAL;
	pthread_once(&fork_once, register_fork);
	/* Relaxed: set in this process before any of its threads ran. */
	if (atomic_load_explicit(&forked_while_live, memory_order_relaxed))
		return -ENOTRECOVERABLE;
	df = calloc(1, sizeof(*df));
	if (!df)
		return -ENOMEM;
	pthread_mutex_init(&df->lock, NULL);
	pthread_mutex_init(&df->elastic_lock, NULL);
	atomic_init(&df->active, c.workers);
	atomic_init(&df->nhosted, 0);
	pthread_mutex_init(&df->stats.lock, NULL);
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
		struct mg_rehomer_config rc = {.pages_per_sec = c.rehome_rate};

		err = mg_rehomer_create(&df->rehomer, df->topo, &rc);
		if (err)
			goto fail;
	}
	df->wk = mg_calloc_lines(c.workers, sizeof(*df->wk));
	df->pub = mg_calloc_lines(c.workers, sizeof(*df->pub));
	df->node_of = calloc(c.workers, sizeof(*df->node_of));
	df->nodes = calloc(MAX_NODES, sizeof(*df->nodes));
	err = -ENOMEM;
	if (!df->wk || !df->pub || !df->node_of || !df->nodes)
		goto fail;
	for (w = 0; w < c.workers; w++) {
		struct worker *wk = &df->wk[w];

		err = mg_topology_place(df->topo, w, c.workers, c.oversubscribe,
					&wk->cpu, &wk->node);
		if (err)
			goto fail;
		wk->df = df;
		wk->w = w;
		df->node_of[w] = wk->node;
		atomic_init(&df->pub[w].window, 0);
		atomic_init(&df->pub[w].sources_closed, false);
		atomic_init(&df->pub[w].done, false);
		atomic_init(&df->pub[w].busy_ns, 0);
		atomic_init(&df->pub[w].work_ns, 0);
		atomic_init(&df->pub[w].feed_ns, 0);
		atomic_init(&df->pub[w].backlog, 0);
		atomic_init(&df->pub[w].records, 0);
		atomic_init(&df->pub[w].round_end_ns, 0);
		atomic_init(&df->pub[w].wait_fd, 0);
		atomic_init(&df->pub[w].napping, 0);
		atomic_init(&df->pub[w].run, RUN_OWN);
		atomic_init(&df->pub[w].park_seq, 0);
	}
	for (w = 0; w < c.workers; w++)
		for (unsigned v = 0; v < c.workers; v++)
			df->wk[w].shares_cpu |=
				v != w && df->wk[v].cpu == df->wk[w].cpu;
	df->cap_nodes = MAX_NODES;
	/* The control frontier runs >= 2 epochs and >= 2 ms ahead. */
	df->ctl_lead_epochs = (2000000ull + c.epoch_ns - 1) / c.epoch_ns;
	if (df->ctl_lead_epochs < 2)
		df->ctl_lead_epochs = 2;
	atomic_init(&df->error, 0);
	atomic_init(&df->halt, false);
	atomic_init(&df->stopped, false);
	atomic_init(&df->running, false);
	atomic_init(&df->closing, false);
	atomic_init(&df->wake_seq, 0);
	atomic_init(&df->waiters, 0);
	atomic_init(&df->mig_waiters, 0);
	atomic_init(&df->stop_control, false);
	atomic_init(&df->win_merged, 0);
	atomic_init(&df->ready, 0);
	atomic_init(&df->go, false);
	*out = df;
	return 0;
fail:
	mg_dataflow_destroy(df);
	return err;
}

void
mg_dataflow_stop(struct mg_dataflow *df)
{
	if (!df || !atomic_load_explicit(&df->running, memory_order_acquire))
		return;
	atomic_store_explicit(&df->stopped, true, memory_order_relaxed);
	mg__halt(df);
	mg__wake_all(df);
}

/* ---- freeing -------------------------------------------------------------- */

static void
send_free(struct mg_dataflow *df, struct node *n)
{
	unsigned w, d, W = df->cfg.workers, nd = n->u.send.ndest;

	mg_mesh_destroy(n->u.send.mesh);
	if (!n->inst.send)
		return;
	for (w = 0; w < W; w++) {
		struct send_inst *s = &n->inst.send[w];
		struct mg_batch *b;

		while ((b = s->spare)) {
			s->spare = b->next;
			mg__overflow_free(df, b);
		}
		for (d = 0; s->q && d < nd; d++)
			while ((b = s->q[d].head)) {
				s->q[d].head = b->next;
				if (!b->home)
					mg__overflow_free(df, b);
			}
		for (d = 0; s->cur && d < nd; d++)
			if (s->cur[d] && !s->cur[d]->home)
				mg__overflow_free(df, s->cur[d]);
		free(s->cur);
		free(s->q);
	}
}

static void
node_free(struct mg_dataflow *df, struct node *n)
{
	unsigned w, W = df->cfg.workers;

	switch (n->kind) {
	case SOURCE:
		if (n->inst.source)
			for (w = 0; w < W; w++) {
				mg__lat_fini(&n->inst.source[w].lat);
				free(n->inst.source[w].rec);
			}
		break;
	case INPUT:
		mg__input_fini(n);
		break;
	case SEND:
		send_free(df, n);
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
	if (df->started && !df->joined) {
		mg_dataflow_stop(df);
		mg_dataflow_join(df, NULL);
	}
	mg__balancer_free(df);		 /* first: its thread reads the rest */
	mg_rehomer_destroy(df->rehomer); /* drains: bins may be freed next */
	mg__migrations_free(df);
	for (i = df->nnodes; i-- > 0;)
		node_free(df, df->nodes[i]);
	for (i = 0; i < df->nprobes; i++)
		mg__probe_free(df->probes[i]);
	for (i = 0; i < df->noutputs; i++)
		mg__output_free(df->outputs[i]);
	free(df->probes);
	free(df->inputs);
	free(df->outputs);
	mg__stats_fini(df);
	free(df->nodes);
	free(df->wk);
	free(df->pub);
	free(df->node_of);
	mg_router_destroy(df->router);
	mg_pools_destroy(df->pools);
	mg_topology_destroy(df->topo);
	pthread_mutex_destroy(&df->lock);
	pthread_mutex_destroy(&df->elastic_lock);
	pthread_mutex_destroy(&df->stats.lock);
	free(df);
}

unsigned
mg_dataflow_workers(const struct mg_dataflow *df)
{
	return df ? df->cfg.workers : 0;
}

void
mg_dataflow_rehome_stats(const struct mg_dataflow *df, uint64_t *requests,
			 uint64_t *examined, uint64_t *moved)
{
	*requests = *examined = *moved = 0;
	if (df && df->rehomer)
		mg_rehomer_stats(df->rehomer, requests, examined, moved);
}

uint32_t
mg_dataflow_bins(const struct mg_dataflow *df)
{
	return df ? 1u << df->nbins_log2 : 0;
}

/* Remove the nodes a failed builder added (ids >= @mark), newest first, so
 * the graph is as it was: nothing half-built stays. */
static void
rollback(struct mg_dataflow *df, unsigned mark)
{
	while (df->nnodes > mark) {
		struct node *n = df->nodes[--df->nnodes];

		for (unsigned port = 0; port < 2; port++) {
			struct stream *s = n->in[port];
			unsigned i, j;

			for (i = j = 0; s && i < s->nsubs; i++)
				if (s->subs[i] != n)
					s->subs[j++] = s->subs[i];
			if (s)
				s->nsubs = j;
		}
		if (n->kind == STATEFUL && n->u.st.bins && n->u.st.token)
			df->nmigratable--;
		node_free(df, n);
	}
}

#define MAX_RATE 1e10 /* records/s: beyond any machine, and finite */

struct mg_stream *
mg_source(struct mg_dataflow *df, const struct mg_source_config *cfg)
{
	struct node *n;
	int err;

	if (!df)
		return NULL;
	if (!cfg || !cfg->gen || !isfinite(cfg->rate) || !(cfg->rate > 0) ||
	    cfg->rate > MAX_RATE || cfg->record_size == 0 ||
	    cfg->record_size > MG_RECORD_MAX)
		return mg__build_fail(df, -EINVAL);
	err = mg__add_node(df, SOURCE, cfg->record_size, &n);
	if (err)
		return mg__build_fail(df, err);
	n->u.src = *cfg;
	return (struct mg_stream *)n->out;
}

struct mg_stream *
mg_flat_map(struct mg_dataflow *df, struct mg_stream *in,
	    uint32_t out_record_size, mg_flat_map_fn fn, void *ctx)
{
	struct node *n;
	int err;

	if (!df)
		return NULL;
	if (!mg__stream_ok(df, in) || !fn || out_record_size == 0)
		return mg__build_fail(df, -EINVAL);
	err = mg__add_node(df, FLAT_MAP, out_record_size, &n);
	if (err)
		return mg__build_fail(df, err);
	n->u.map.fn = fn;
	n->u.map.ctx = ctx;
	mg__subscribe(n, 0, (struct stream *)in);
	return (struct mg_stream *)n->out;
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

	err = mg__add_node(df, SEND, 0, &n);
	if (err)
		return err;
	mg__subscribe(n, 0, s);
	n->u.send.ndest = df->cfg.workers;
	err = mg_mesh_create(&n->u.send.mesh, df->pools, df->cfg.workers,
			     df->node_of, &cc);
	if (err)
		return err;
	n->u.send.hash = hash;
	n->u.send.ctx = ctx;
	n->u.send.by_bin = by_bin;
	n->feeds = to;
	n->port = port;
	*mesh = n->u.send.mesh;
	return 0;
}

static struct mg_stream *
add_route(struct mg_dataflow *df, struct mg_stream *in, mg_hash_fn hash,
	  void *ctx, bool by_bin)
{
	struct stream *s = (struct stream *)in;
	unsigned mark;
	struct node *n;
	int err;

	if (!df)
		return NULL;
	if (!mg__stream_ok(df, in) || !hash)
		return mg__build_fail(df, -EINVAL);
	mark = df->nnodes;
	err = mg__add_node(df, RECV, s->record_size, &n);
	if (!err)
		err = add_send(df, s, hash, ctx, by_bin, n, 0, &n->u.recv.mesh);
	if (err) {
		rollback(df, mark);
		return mg__build_fail(df, err);
	}
	return (struct mg_stream *)n->out;
}

struct mg_stream *
mg_exchange(struct mg_dataflow *df, struct mg_stream *in, mg_hash_fn hash,
	    void *ctx)
{
	return add_route(df, in, hash, ctx, false);
}

struct mg_stream *
mg_distribute(struct mg_dataflow *df, struct mg_stream *in, mg_hash_fn hash,
	      void *ctx)
{
	return add_route(df, in, hash, ctx, true);
}

static bool
stateful_ok(const struct mg_dataflow *df, const struct mg_stateful_config *cfg)
{
	unsigned i;

	if (!cfg || !cfg->fn || (cfg->ninputs != 1 && cfg->ninputs != 2))
		return false;
	if (cfg->out_record_size == 0 || cfg->out_record_size > MG_RECORD_MAX ||
	    cfg->state_size > STATE_MAX || cfg->timer_record_size > 1024)
		return false;
	if (df->cfg.mode == MG_COPY && !cfg->native &&
	    (!cfg->serialize || !cfg->deserialize))
		return false; /* copy mode needs to serialize the bins */
	if (!cfg->serialize != !cfg->deserialize)
		return false; /* half a pair: a mistake in any mode */
	for (i = 0; i < cfg->ninputs; i++)
		if (!mg__stream_ok(df, cfg->in[i]) || !cfg->hash[i] ||
		    (i == 1 && cfg->in[1] == cfg->in[0] &&
		     ((struct stream *)cfg->in[0])->nsubs + 2 > MAX_SUBS))
			return false;
	return true;
}

struct mg_stream *
mg_stateful(struct mg_dataflow *df, const struct mg_stateful_config *cfg)
{
	unsigned i, mark;
	struct node *n;
	int err;

	if (!df)
		return NULL;
	if (!stateful_ok(df, cfg))
		return mg__build_fail(df, -EINVAL);
	mark = df->nnodes;
	err = mg__add_node(df, STATEFUL, cfg->out_record_size, &n);
	if (!err)
		n->u.st.cfg = *cfg;
	for (i = 0; !err && i < cfg->ninputs; i++)
		err = add_send(df, (struct stream *)cfg->in[i], cfg->hash[i],
			       cfg->hash_ctx, !cfg->native, n, i,
			       &n->u.st.mesh[i]);
	if (!err)
		err = mg__stateful_init(n);
	if (!err && df->cfg.mode == MG_COPY && !cfg->native)
		err = mg__copy_init(n);
	if (err) {
		rollback(df, mark);
		return mg__build_fail(df, err);
	}
	return (struct mg_stream *)n->out;
}

int
mg_sink(struct mg_dataflow *df, struct mg_stream *in, mg_sink_fn fn, void *ctx)
{
	struct node *n;
	int err;

	if (!df)
		return -EINVAL;
	if (!mg__stream_ok(df, in) || !fn)
		return mg__build_error(df, -EINVAL);
	err = mg__add_node(df, SINK, 0, &n);
	if (err)
		return mg__build_error(df, err);
	n->u.sink.fn = fn;
	n->u.sink.ctx = ctx;
	mg__subscribe(n, 0, (struct stream *)in);
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
	n->inst.any = mg_calloc_lines(df->cfg.workers, size);
	return n->inst.any ? 0 : -ENOMEM;
}

static int
prepare_node(struct mg_dataflow *df, struct node *n)
{
	unsigned w, W = df->cfg.workers;
	int err = 0;

	if (n->out && (n->kind == SOURCE || n->kind == INPUT ||
		       n->kind == RECV || n->kind == STATEFUL)) {
		err = collect_sends(n, n->out);
		if (err)
			return err;
	}
	switch (n->kind) {
	case SOURCE:
		err = alloc_inst(df, n, sizeof(struct source_inst));
		for (w = 0; w < W && !err; w++) {
			struct source_inst *s = &n->inst.source[w];

			atomic_init(&s->progress, 0);
			err = mg__lat_init(&s->lat);
			s->rec = mg_calloc_lines(1, n->out->record_size);
			if (!err && !s->rec)
				err = -ENOMEM;
		}
		return err;
	case INPUT:
		return mg__input_prepare(n);
	case SEND:
		err = alloc_inst(df, n, sizeof(struct send_inst));
		for (w = 0; w < W && !err; w++) {
			struct send_inst *s = &n->inst.send[w];

			s->cur = mg_calloc_lines(n->u.send.ndest,
						 sizeof(*s->cur));
			s->q = mg_calloc_lines(n->u.send.ndest, sizeof(*s->q));
			if (!s->cur || !s->q)
				err = -ENOMEM;
		}
		return err;
	default:
		return 0;
	}
}

/* Let the first @n workers go and join them after a failed start: they see
 * `halt` and leave at once. */
static void
release_workers(struct mg_dataflow *df, unsigned n)
{
	unsigned w;

	atomic_store_explicit(&df->halt, true, memory_order_relaxed);
	atomic_store_explicit(&df->go, true, memory_order_release);
	for (w = 0; w < n; w++)
		pthread_join(df->wk[w].thread, NULL);
	workers_joined(df);
}

int
mg_dataflow_start(struct mg_dataflow *df, mg_window_fn on_window, void *ctx)
{
	unsigned w, i, nsources = 0;
	int err;

	if (!df)
		return -EINVAL;
	if (df->build_error)
		return df->build_error;
	if (df->started)
		return -EINVAL;
	for (i = 0; i < df->nnodes; i++) {
		nsources += df->nodes[i]->kind == SOURCE ||
			    df->nodes[i]->kind == INPUT;
		df->clocked |= df->nodes[i]->kind == SOURCE;
	}
	if (!nsources)
		return -EINVAL;
	df->started = true; /* from here on, only destroy */
	/* relaxed: as in workers_joined() */
	atomic_fetch_add_explicit(&live_runs, 1, memory_order_relaxed);
	for (i = 0, err = 0; i < df->nnodes && !err; i++)
		err = prepare_node(df, df->nodes[i]);
	if (!err)
		err = mg__stats_init(df);
	if (err) {
		workers_joined(df);
		return err;
	}
	df->on_window = on_window;
	df->on_window_ctx = ctx;
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
			release_workers(df, w);
			return -EAGAIN;
		}
	}
	/* Workers prefill their bins, then the clock starts for all.
	 * ORDER(df.A2): pairs with worker.R1 in mg__worker_main(): the
	 * prefilled state, and a prefill's error, are visible. */
	while (atomic_load_explicit(&df->ready, memory_order_acquire) <
	       df->cfg.workers)
		nanosleep(&(struct timespec){0, 100000}, NULL);
	err = atomic_load_explicit(&df->error, memory_order_relaxed);
	if (err) { /* a prefill failed: nothing ran */
		release_workers(df, df->cfg.workers);
		return err;
	}
	df->start_ns = mg_now_ns();
	if (df->clocked)
		mg_router_advance(df->router, df->ctl_lead_epochs);
	atomic_store_explicit(&df->running, true, memory_order_release);
	/* ORDER(df.R1): pairs with worker.A1 in mg__worker_main(), df.A1
	 * in mg_dataflow_now() and bal.A1 in balancer_main(); without it a
	 * worker could read start_ns before it is set. */
	atomic_store_explicit(&df->go, true, memory_order_release);
	err = mg__control_start(df);
	if (err) {
		mg__set_error(df, err, "starting the control thread");
		for (w = 0; w < df->cfg.workers; w++)
			pthread_join(df->wk[w].thread, NULL);
		atomic_store_explicit(&df->running, false,
				      memory_order_release);
		workers_joined(df);
		return err;
	}
	return 0;
}

int
mg_dataflow_join(struct mg_dataflow *df, struct mg_run_stats *stats)
{
	struct mg__hist *all;
	unsigned w, i;

	if (!df || !df->started)
		return -EINVAL;
	if (!df->joined) {
		for (w = 0; w < df->cfg.workers; w++)
			pthread_join(df->wk[w].thread, NULL);
		mg__balancer_join(df); /* the run no longer takes migrations */
		df->end_ns = mg_now_ns();
		mg__probes_finish(df);
		atomic_store_explicit(&df->running, false,
				      memory_order_release);
		mg__control_stop(df);
		mg__wake_all(df); /* the run is over: nobody waits for it */
		workers_joined(df);
	}
	if (stats) {
		memset(stats, 0, sizeof(*stats));
		all = malloc(sizeof(*all));
		if (!all)
			return -ENOMEM;
		mg__hist_reset(all);
		for (w = 0; w < df->cfg.workers; w++)
			mg__hist_merge(all, &df->wk[w].whole);
		for (i = 0; i < df->nnodes; i++) {
			struct node *n = df->nodes[i];

			if (n->kind == SOURCE && n->inst.source)
				for (w = 0; w < df->cfg.workers; w++)
					stats->records += n->inst.source[w].k;
			if (n->kind == STATEFUL)
				stats->state_bytes += mg__stateful_bytes(n);
			for (w = 0; n->kind == STATEFUL && w < df->cfg.workers;
			     w++)
				stats->copy_fallbacks +=
					n->inst.st[w].copy_fallbacks;
		}
		stats->records += mg__inputs_pushed(df);
		if (df->end_ns > df->start_ns && df->start_ns)
			stats->duration_s =
				(double)(df->end_ns - df->start_ns) / 1e9;
		stats->count = mg__hist_count(all);
		stats->p50 = mg__hist_quantile(all, 0.50);
		stats->p99 = mg__hist_quantile(all, 0.99);
		stats->p999 = mg__hist_quantile(all, 0.999);
		stats->max = mg__hist_max(all);
		stats->rss_peak_bytes = df->rss_peak;
		stats->stopped = atomic_load_explicit(&df->stopped,
						      memory_order_relaxed);
		stats->error_what = df->error_what;
		free(all);
	}
	return atomic_load_explicit(&df->error, memory_order_relaxed);
}
