/*
 * mg_test_lag.c - a source whose worker-0 share lags (mg_test_lag.h).
 */
#include <stdlib.h>
#include <string.h>

#include "numa/mg_base.h"
#include "tests/mg_test.h"
#include "tests/mg_test_lag.h"

/* On worker 0 while `slow`: LAG_SPIN_NS of wall time per record. */
static void
spin_if_slow(struct mg_test_lag *l, unsigned worker, uint64_t records)
{
	uint64_t until = mg_now_ns() + records * LAG_SPIN_NS;

	while (worker == 0 &&
	       atomic_load_explicit(&l->slow, memory_order_relaxed) &&
	       mg_now_ns() < until)
		;
}

static void
lag_gen(void *ctx, unsigned worker, uint64_t seq, void *rec)
{
	struct mg_test_lag *l = ctx;

	if (!l->slow_op)
		spin_if_slow(l, worker, 1);
	memcpy(rec, &l->keys[seq % l->nkeys], sizeof(uint64_t));
}

static uint64_t
lag_hash(void *ctx, const void *rec)
{
	uint64_t k;

	(void)ctx;
	memcpy(&k, rec, sizeof(k));
	return k * 0x9e3779b97f4a7c15ull;
}

static void
lag_op(void *ctx, struct mg_bin_call *call, struct mg_emitter *out)
{
	struct mg_test_lag *l = ctx;

	(void)out;
	if (l->slow_op)
		spin_if_slow(l, call->worker, call->n_in[0]);
	*(uint64_t *)call->state += call->n_in[0];
	atomic_fetch_add_explicit(&l->records, call->n_in[0],
				  memory_order_relaxed);
	if (call->time >
	    atomic_load_explicit(&l->last_time, memory_order_relaxed))
		atomic_store_explicit(&l->last_time, call->time,
				      memory_order_relaxed);
}

static void
lag_sink(void *ctx, unsigned worker, uint64_t time, const void *rec)
{
	(void)ctx;
	(void)worker;
	(void)time;
	(void)rec;
}

uint32_t
mg_test_lag_bin(const struct mg_test_lag *l, unsigned i)
{
	return mg_bin_of(lag_hash(NULL, &l->keys[i]), l->bins_log2);
}

void
mg_test_lag_build(struct mg_test_lag *l)
{
	struct mg_dataflow_config dc = {
		.workers = 2,
		.oversubscribe = true,
		.bins_log2 = l->bins_log2,
		.epoch_ns = LAG_EPOCH_NS,
		.ring_capacity = l->ring,
	};
	struct mg_source_config sc = {
		.record_size = sizeof(uint64_t),
		.rate = l->rate,
		.duration_ns = l->duration_ns,
		.gen = lag_gen,
		.ctx = l,
	};
	struct mg_stateful_config oc = {
		.ninputs = 1,
		.hash = {lag_hash},
		.out_record_size = 8,
		.state_size = sizeof(uint64_t),
		.fn = lag_op,
		.ctx = l,
	};
	uint16_t *owners = calloc(1u << l->bins_log2, sizeof(*owners));
	unsigned n = 0, i;
	uint64_t k;

	assert_non_null(owners);
	assert_true(l->nkeys >= 1 && l->nkeys <= LAG_MAX_KEYS &&
		    l->on0 <= l->nkeys);
	atomic_store_explicit(&l->slow, true, memory_order_relaxed);
	assert_int_equal(mg_dataflow_create(&l->df, &dc), 0);
	oc.in[0] = mg_source(l->df, &sc);
	assert_non_null(oc.in[0]);
	assert_int_equal(
		mg_sink(l->df, mg_stateful(l->df, &oc), lag_sink, NULL), 0);
	mg_dataflow_owners(l->df, owners);
	for (k = 0; n < l->nkeys; k++) { /* keys in distinct bins */
		l->keys[n] = k;
		if (owners[mg_test_lag_bin(l, n)] != (n < l->on0 ? 0 : 1))
			continue;
		for (i = 0;
		     i < n && mg_test_lag_bin(l, i) != mg_test_lag_bin(l, n);
		     i++)
			;
		n += i == n;
	}
	free(owners);
}

uint64_t
mg_test_lag_total(const struct mg_test_lag *l)
{
	return (uint64_t)(l->rate * (double)l->duration_ns / 1e9 + 0.5);
}

void
mg_test_lag_finish(struct mg_test_lag *l)
{
	struct mg_run_stats rs;

	atomic_store_explicit(&l->slow, false, memory_order_relaxed);
	assert_int_equal(mg_dataflow_join(l->df, &rs), 0);
	assert_int_equal(
		atomic_load_explicit(&l->records, memory_order_relaxed),
		mg_test_lag_total(l));
	mg_dataflow_destroy(l->df);
	l->df = NULL;
}
