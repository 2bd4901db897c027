/*
 * mg_test_count.c - the pushed counting computation (mg_test_count.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/mg_test.h"
#include "tests/mg_test_count.h"

#define SALT 0x5eedull

struct rec {
	uint64_t key, seq;
};

struct out {
	uint64_t key, count;
};

static uint64_t
key_hash(void *ctx, const void *r)
{
	(void)ctx;
	return mg_hash64(((const struct rec *)r)->key + SALT);
}

static uint64_t
out_hash(const struct out *o)
{
	return mg_hash64(o->key * 0x9e3779b97f4a7c15ull ^ mg_hash64(o->count));
}

static void
count_op(void *ctx, struct mg_bin_call *c, struct mg_emitter *e)
{
	struct count_run *x = ctx;
	struct mg_map *m = c->state;
	const struct rec *r = c->in[0];
	uint64_t spin = atomic_load_explicit(&x->spin_ns, memory_order_relaxed);
	uint32_t i;
	void *v;

	if (c->worker == 0)
		spin += atomic_load_explicit(&x->spin0_ns,
					     memory_order_relaxed);
	if (!m->value_size)
		mg_map_init(m, sizeof(uint64_t));
	for (i = 0; i < c->n_in[0]; i++) {
		struct out o = {r[i].key, 0};
		int err = mg_map_upsert(m, c->arena, r[i].key, &v);

		if (err < 0) {
			c->error = err;
			return;
		}
		o.count = ++*(uint64_t *)v;
		mg_emit(e, &o);
		for (uint64_t t0 = spin ? mg_now_ns() : 0;
		     spin && mg_now_ns() - t0 < spin;)
			;
	}
}

static int
ser(void *ctx, struct mg_bin_call *c, struct mg_writer *w)
{
	const struct mg_map *m = c->state;

	(void)ctx;
	return m->value_size ? mg_map_write(m, w)
			     : mg_write(w, &(uint64_t){0}, 8);
}

static int
deser(void *ctx, struct mg_bin_call *c, struct mg_reader *r)
{
	struct mg_map *m = c->state;

	(void)ctx;
	mg_map_init(m, sizeof(uint64_t));
	return mg_map_read(m, c->arena, r);
}

static void
sink(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	struct count_run *x = ctx;

	if (t >= COUNT_MAX_T) {
		x->rows[w].overflow++;
		return;
	}
	x->rows[w].fp[t].count++;
	x->rows[w].fp[t].sum += out_hash(rec);
}

void
count_build(struct count_run *x)
{
	struct mg_dataflow_config dc = {
		.workers = x->W,
		.oversubscribe = true,
		.bins_log2 = x->bins_log2,
		.mode = x->mode,
		.no_stats = x->no_stats,
	};
	struct mg_stateful_config sc = {
		.ninputs = 1,
		.hash = {key_hash},
		.out_record_size = sizeof(struct out),
		.state_size = sizeof(struct mg_map),
		.fn = count_op,
		.ctx = x,
		.serialize = ser,
		.deserialize = deser,
	};
	struct mg_stream *out;

	assert_true(x->W <= COUNT_MAX_W);
	x->rows = aligned_alloc(MG_CACHE_LINE, sizeof(*x->rows) * x->W);
	x->ref = calloc(COUNT_MAX_T, sizeof(*x->ref));
	x->counts = calloc(x->nkeys, sizeof(*x->counts));
	assert_non_null(x->rows);
	assert_non_null(x->ref);
	assert_non_null(x->counts);
	memset(x->rows, 0, sizeof(*x->rows) * x->W);
	x->seq = x->times = 0;
	x->watchdog_s = (double)mg_test_env_u64("MG_WATCHDOG_S", 120);
	assert_int_equal(mg_dataflow_create(&x->df, &dc), 0);
	sc.in[0] = mg_input(x->df, sizeof(struct rec), &x->in);
	out = mg_stateful(x->df, &sc);
	assert_non_null(out);
	assert_int_equal(mg_sink(x->df, out, sink, x), 0);
	x->probe = mg_probe(x->df, out);
	assert_non_null(x->probe);
	assert_int_equal(mg_producer_open(x->in, x->producer_worker, &x->p), 0);
}

void
count_push(struct count_run *x, const unsigned *idx)
{
	struct rec buf[COUNT_PER_TIME];
	uint64_t t = x->times;
	unsigned i;

	assert_true(t < COUNT_MAX_T - 1);
	for (i = 0; i < COUNT_PER_TIME; i++, x->seq++) {
		unsigned k = idx[i];
		struct out o = {x->keys[k], ++x->counts[k]};

		buf[i] = (struct rec){x->keys[k], x->seq};
		x->ref[t].count++;
		x->ref[t].sum += out_hash(&o);
	}
	assert_int_equal(mg_push_wait(x->p, t, buf, sizeof(buf[0]),
				      COUNT_PER_TIME, MG_FOREVER),
			 COUNT_PER_TIME);
	assert_int_equal(mg_producer_advance(x->p, t + 1), 0);
	x->times++;
}

void
count_finish(struct count_run *x)
{
	struct mg_balancer_stats st = {0};
	uint64_t t, bad = 0;
	unsigned w;

	assert_int_equal(mg_producer_close(x->p), 0);
	assert_int_equal(mg_input_close(x->in), 0);
	assert_int_equal(mg_dataflow_join(x->df, NULL), 0);
	if (x->bal) {
		mg_balancer_stats(x->bal, &st);
		assert_false(st.running); /* it stopped with the dataflow */
	}
	for (w = 0; w < x->W; w++)
		assert_int_equal(x->rows[w].overflow, 0);
	for (t = 0; t < x->times; t++) {
		struct count_fp got = {0, 0};

		for (w = 0; w < x->W; w++) {
			got.count += x->rows[w].fp[t].count;
			got.sum += x->rows[w].fp[t].sum;
		}
		if ((got.count != x->ref[t].count ||
		     got.sum != x->ref[t].sum) &&
		    bad++ < 5)
			printf("# [%s] time %llu: %llu outputs, reference "
			       "%llu\n",
			       x->name, (unsigned long long)t,
			       (unsigned long long)got.count,
			       (unsigned long long)x->ref[t].count);
	}
	printf("# [%s] %llu times, %llu records", x->name,
	       (unsigned long long)x->times, (unsigned long long)x->seq);
	if (x->bal)
		printf(", %llu decisions, %llu migrations moving %llu bins",
		       (unsigned long long)st.rounds,
		       (unsigned long long)st.migrations,
		       (unsigned long long)st.bins_moved);
	printf("; %llu times differ\n", (unsigned long long)bad);
	assert_int_equal(bad, 0);
}

void
count_teardown(struct count_run *x)
{
	mg_dataflow_destroy(x->df);
	free(x->counts);
	free(x->ref);
	free(x->rows);
}

bool
count_behind_clock(const struct count_run *x, double t0_s, uint64_t t0)
{
	return (double)(x->times - t0) < (count_now_s() - t0_s) * 1000;
}

uint32_t
count_bin_of(const struct count_run *x, uint64_t key)
{
	struct rec r = {key, 0};

	return mg_bin_of(key_hash(NULL, &r), x->bins_log2);
}

double
count_now_s(void)
{
	return (double)mg_now_ns() / 1e9;
}
