/*
 * t-engine-dataflow.c - the engine end to end, against an obviously correct
 * single-threaded reference computed here from the same record schedule:
 *
 *   - a unary counting operator: every timestamp's output multiset equals
 *     the reference, for bins and native, 1..4 workers, tiny rings;
 *   - post-dated records: each fires exactly at the time it was scheduled;
 *   - a binary operator joining two sources;
 *   - timestamp order per bin, and every record seen exactly once;
 *   - the operator's prefetch hint gets records with their own bin's state;
 *   - bad configurations and bad wiring refused with -EINVAL.
 *
 * Workers record; only the main thread asserts.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/megaphone.h"
#include "tests/mg_test.h"

#define EPOCH_NS    100000ull /* 100 us */
#define TIMER_DELAY 3	      /* epochs */
#define TIMER_FLAG  (1ull << 63)

struct rec {
	uint64_t key;
	uint64_t val;
};

struct root {
	struct mg_map counts; /* key -> records seen */
	uint64_t last_time;   /* order check */
	uint64_t order_errors;
	uint64_t calls;
	uint64_t bin_plus1; /* the bin this state is (0: native or unseen) */
};

struct fp {
	uint64_t count, sum;
};

struct run {
	unsigned workers, bins_log2, keys;
	uint32_t ring, batch;
	double rate[2];
	uint64_t duration_ns;
	bool native, timers, binary;
	/* results, per worker x time */
	uint64_t ntimes;
	struct fp *fp;
	uint64_t overflow;
	_Atomic uint64_t prefetches, prefetch_errors;
};

static uint64_t
key_of(const struct run *r, unsigned src, uint64_t seq)
{
	return mg_hash64(seq * 2 + src) % r->keys;
}

/* The engine's schedule: record seq of a source at rate R is due at
 * seq * 1e9 / R ns and stamped with that instant's epoch. */
static uint64_t
epoch_of(double rate, uint64_t seq)
{
	return (uint64_t)((double)seq * 1e9 / rate) / EPOCH_NS;
}

static uint64_t
records_of(double rate, uint64_t duration_ns)
{
	uint64_t n = (uint64_t)((double)duration_ns * rate / 1e9) + 2;

	while (n && (uint64_t)((double)(n - 1) * 1e9 / rate) >= duration_ns)
		n--;
	return n;
}

static void
gen0(void *ctx, unsigned w, uint64_t seq, void *out)
{
	struct rec *r = out;

	(void)w;
	r->key = key_of(ctx, 0, seq);
	r->val = seq;
}

static void
gen1(void *ctx, unsigned w, uint64_t seq, void *out)
{
	struct rec *r = out;

	(void)w;
	r->key = key_of(ctx, 1, seq);
	r->val = seq;
}

static uint64_t
hash(void *ctx, const void *rec)
{
	(void)ctx;
	return mg_hash64(((const struct rec *)rec)->key ^ 0x5555);
}

static uint64_t *
count_of(struct mg_bin_call *c, uint64_t key)
{
	struct root *root = c->state;
	void *v;

	if (!root->counts.value_size)
		mg_map_init(&root->counts, sizeof(uint64_t));
	if (mg_map_upsert(&root->counts, c->arena, key, &v) < 0) {
		c->error = -ENOMEM;
		return NULL;
	}
	return v;
}

/*
 * Unary: emit (key, running count) per input record; with timers, also
 * schedule each record TIMER_DELAY epochs later and emit it flagged when
 * it comes back.  Binary: input 1 adds to the key's count silently, then
 * every input-0 record emits (key, count of input-1 records so far).
 */
static void
op(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct run *r = ctx;
	const struct rec *in0 = c->in[0], *in1 = c->in[1];
	const struct rec *tm = c->timers;
	struct root *root = c->state;
	uint32_t i;

	if (root->calls++ && c->time <= root->last_time)
		root->order_errors++;
	if (!r->native)
		root->bin_plus1 = c->bin + 1ull;
	root->last_time = c->time;
	for (i = 0; i < c->n_in[1]; i++) {
		uint64_t *n = count_of(c, in1[i].key);

		if (!n)
			return;
		++*n;
	}
	for (i = 0; i < c->n_in[0]; i++) {
		uint64_t *n = count_of(c, in0[i].key);
		struct rec o = {in0[i].key, 0};

		if (!n)
			return;
		o.val = r->binary ? *n : ++*n;
		mg_emit(out, &o);
		if (r->timers &&
		    mg_schedule(c, c->time + TIMER_DELAY, &in0[i]) != 0)
			c->error = -ENOMEM;
	}
	for (i = 0; i < c->n_timers; i++) {
		struct rec o = {tm[i].key, tm[i].val | TIMER_FLAG};

		mg_emit(out, &o);
	}
}

/* A hint with a check: @rec must belong to the bin whose state it gets. */
static void
prefetch(void *ctx, const void *state, unsigned in, const void *rec)
{
	struct run *r = ctx;
	const struct root *root = state;

	if (root->bin_plus1 &&
	    (root->bin_plus1 - 1 != mg_bin_of(hash(NULL, rec), r->bins_log2) ||
	     in >= (r->binary ? 2u : 1u)))
		atomic_fetch_add_explicit(&r->prefetch_errors, 1,
					  memory_order_relaxed);
	if (root->counts.value_size)
		mg_map_prefetch(&root->counts, ((const struct rec *)rec)->key);
	atomic_fetch_add_explicit(&r->prefetches, 1, memory_order_relaxed);
}

static void
sink(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	struct run *r = ctx;
	const struct rec *x = rec;

	if (t >= r->ntimes) {
		r->overflow++;
		return;
	}
	r->fp[w * r->ntimes + t].count++;
	r->fp[w * r->ntimes + t].sum +=
		mg_hash64(x->key * 31 + mg_hash64(x->val));
}

/* The reference: the same computation, one thread, in time order. */
static struct fp *
reference(const struct run *r)
{
	struct fp *fp = calloc(r->ntimes, sizeof(*fp));
	uint64_t *cnt = calloc(r->keys, sizeof(*cnt));
	uint64_t n0 = records_of(r->rate[0], r->duration_ns);
	uint64_t n1 = r->binary ? records_of(r->rate[1], r->duration_ns) : 0;
	uint64_t i = 0, j = 0, t;

	assert_non_null(fp);
	assert_non_null(cnt);
	for (t = 0; t < r->ntimes; t++) {
		uint64_t i0 = i;

		/* input 1 of this time first, as the operator does */
		for (; j < n1 && epoch_of(r->rate[1], j) == t; j++)
			cnt[key_of(r, 1, j)]++;
		for (; i < n0 && epoch_of(r->rate[0], i) == t; i++) {
			uint64_t k = key_of(r, 0, i);
			uint64_t v = r->binary ? cnt[k] : ++cnt[k];

			fp[t].count++;
			fp[t].sum += mg_hash64(k * 31 + mg_hash64(v));
		}
		if (r->timers) {
			/* each record comes back exactly TIMER_DELAY later,
			 * also after the sources have closed */
			for (uint64_t s = i0; s < i; s++) {
				uint64_t ft = t + TIMER_DELAY;

				assert_true(ft < r->ntimes);
				fp[ft].count++;
				fp[ft].sum +=
					mg_hash64(key_of(r, 0, s) * 31 +
						  mg_hash64(s | TIMER_FLAG));
			}
		}
	}
	free(cnt);
	return fp;
}

/* Build, run, and compare every timestamp with the reference. */
static void
run_case(struct run *r)
{
	struct mg_dataflow_config dc = {
		.workers = r->workers,
		.oversubscribe = true,
		.bins_log2 = r->bins_log2,
		.epoch_ns = EPOCH_NS,
		.ring_capacity = r->ring,
		.batch_records = r->batch,
	};
	struct mg_source_config sc = {
		.record_size = sizeof(struct rec),
		.duration_ns = r->duration_ns,
	};
	struct mg_stateful_config op_cfg = {
		.ninputs = r->binary ? 2 : 1,
		.hash = {hash, hash},
		.out_record_size = sizeof(struct rec),
		.state_size = sizeof(struct root),
		.timer_record_size = r->timers ? sizeof(struct rec) : 0,
		.fn = op,
		.ctx = r,
		.native = r->native,
		.prefetch = prefetch,
	};
	struct mg_stream *s0, *s1 = NULL, *out;
	struct mg_run_stats st;
	struct mg_dataflow *df;
	struct fp *ref;
	uint64_t t, n0;
	unsigned w;

	/* room for the last epoch's timers */
	r->ntimes = r->duration_ns / EPOCH_NS + 1 + TIMER_DELAY + 1;
	r->fp = calloc(r->workers * r->ntimes, sizeof(*r->fp));
	r->overflow = 0;
	atomic_store(&r->prefetches, 0);
	atomic_store(&r->prefetch_errors, 0);
	assert_non_null(r->fp);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	sc.rate = r->rate[0];
	sc.gen = gen0;
	sc.ctx = r;
	assert_int_equal(mg_source(df, &sc, &s0), 0);
	if (r->binary) {
		sc.rate = r->rate[1];
		sc.gen = gen1;
		assert_int_equal(mg_source(df, &sc, &s1), 0);
	}
	op_cfg.in[0] = s0;
	op_cfg.in[1] = s1;
	assert_int_equal(mg_stateful(df, &op_cfg, &out), 0);
	assert_int_equal(mg_sink(df, out, sink, r), 0);
	assert_int_equal(mg_probe(df, out), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	assert_int_equal(mg_dataflow_join(df, &st), 0);

	n0 = records_of(r->rate[0], r->duration_ns);
	assert_int_equal(
		st.records,
		n0 + (r->binary ? records_of(r->rate[1], r->duration_ns) : 0));
	assert_int_equal(r->overflow, 0);
	/* records of bins that exist yet are announced ahead */
	assert_true(atomic_load(&r->prefetches) > 0);
	assert_int_equal(atomic_load(&r->prefetch_errors), 0);
	ref = reference(r);
	for (t = 0; t < r->ntimes; t++) {
		struct fp got = {0, 0};

		for (w = 0; w < r->workers; w++) {
			got.count += r->fp[w * r->ntimes + t].count;
			got.sum += r->fp[w * r->ntimes + t].sum;
		}
		if (got.count != ref[t].count || got.sum != ref[t].sum)
			print_error("time %llu: %llu outputs, reference %llu\n",
				    (unsigned long long)t,
				    (unsigned long long)got.count,
				    (unsigned long long)ref[t].count);
		assert_int_equal(got.count, ref[t].count);
		assert_int_equal(got.sum, ref[t].sum);
	}
	free(ref);
	free(r->fp);
	mg_dataflow_destroy(df);
}

static void
test_unary_bins(void **state)
{
	struct run r = {.workers = 2,
			.bins_log2 = 6,
			.keys = 1000,
			.ring = 64,
			.batch = 64,
			.rate = {200000},
			.duration_ns = 50 * EPOCH_NS};

	(void)state;
	run_case(&r);
	r.bins_log2 = 12;
	run_case(&r);
}

static void
test_unary_native(void **state)
{
	struct run r = {.workers = 2,
			.bins_log2 = 4,
			.keys = 1000,
			.ring = 64,
			.batch = 64,
			.rate = {200000},
			.duration_ns = 50 * EPOCH_NS,
			.native = true};

	(void)state;
	run_case(&r);
}

static void
test_tiny_rings_many_workers(void **state)
{
	struct run r = {.bins_log2 = 4,
			.keys = 50,
			.ring = 2,
			.batch = 1,
			.rate = {100000},
			.duration_ns = 40 * EPOCH_NS};

	(void)state;
	for (r.workers = 1; r.workers <= 4; r.workers++)
		run_case(&r);
	r.batch = 3;
	r.workers = 3;
	r.native = true;
	run_case(&r);
}

static void
test_timers(void **state)
{
	struct run r = {.workers = 2,
			.bins_log2 = 5,
			.keys = 300,
			.ring = 8,
			.batch = 16,
			.rate = {100000},
			.duration_ns = 40 * EPOCH_NS,
			.timers = true};

	(void)state;
	run_case(&r);
	r.native = true;
	run_case(&r);
}

static void
test_binary_join(void **state)
{
	struct run r = {.workers = 2,
			.bins_log2 = 6,
			.keys = 200,
			.ring = 16,
			.batch = 8,
			.rate = {100000, 37000},
			.duration_ns = 40 * EPOCH_NS,
			.binary = true};

	(void)state;
	run_case(&r);
	r.workers = 3;
	r.native = true;
	run_case(&r);
}

static void
nop_gen(void *ctx, unsigned w, uint64_t seq, void *out)
{
	(void)ctx;
	(void)w;
	(void)seq;
	(void)out;
}

static void
nop_sink(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	(void)ctx;
	(void)w;
	(void)t;
	(void)rec;
}

static void
test_bad_config(void **state)
{
	static const struct mg_dataflow_config bad[] = {
		{.bins_log2 = 3},
		{.bins_log2 = 21},
		{.ring_capacity = 3},
		{.ring_capacity = 1},
		{.epoch_ns = 9999},
		{.workers = 4096}, /* more than the CPUs, no opt-in */
	};
	struct mg_dataflow *df = (struct mg_dataflow *)&df;
	size_t i;

	(void)state;
	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		assert_int_equal(mg_dataflow_create(&df, &bad[i]), -EINVAL);
		assert_ptr_equal(df, (struct mg_dataflow *)&df);
	}
	assert_string_equal(mg_strerror(-EINVAL), "invalid argument");
}

static void
test_bad_wiring(void **state)
{
	struct mg_source_config sc = {.record_size = 16,
				      .rate = 1000,
				      .duration_ns = 1000000,
				      .gen = nop_gen};
	struct mg_stateful_config op_cfg = {
		.ninputs = 1,
		.hash = {hash},
		.out_record_size = 16,
		.fn = op,
	};
	struct mg_dataflow *a, *b;
	struct mg_stream *sa, *sb, *o;

	(void)state;
	assert_int_equal(mg_dataflow_create(&a, NULL), 0);
	assert_int_equal(mg_dataflow_create(&b, NULL), 0);
	/* start without a source or a probe */
	assert_int_equal(mg_dataflow_start(a, NULL, NULL), -EINVAL);
	sc.rate = 0;
	assert_int_equal(mg_source(a, &sc, &sa), -EINVAL);
	sc.rate = 1000;
	sc.record_size = MG_RECORD_MAX + 1;
	assert_int_equal(mg_source(a, &sc, &sa), -EINVAL);
	sc.record_size = 16;
	assert_int_equal(mg_source(a, &sc, &sa), 0);
	assert_int_equal(mg_source(b, &sc, &sb), 0);
	/* a stream of another dataflow */
	assert_int_equal(mg_sink(a, sb, nop_sink, NULL), -EINVAL);
	op_cfg.in[0] = sb;
	assert_int_equal(mg_stateful(a, &op_cfg, &o), -EINVAL);
	op_cfg.in[0] = sa;
	op_cfg.ninputs = 3;
	assert_int_equal(mg_stateful(a, &op_cfg, &o), -EINVAL);
	op_cfg.ninputs = 1;
	op_cfg.fn = NULL;
	assert_int_equal(mg_stateful(a, &op_cfg, &o), -EINVAL);
	op_cfg.fn = op;
	op_cfg.state_size = 1u << 20;
	assert_int_equal(mg_stateful(a, &op_cfg, &o), -EINVAL);
	/* no probe yet */
	assert_int_equal(mg_dataflow_start(a, NULL, NULL), -EINVAL);
	assert_int_equal(mg_probe(a, sb), -EINVAL);
	assert_int_equal(mg_probe(a, sa), 0);
	assert_int_equal(mg_probe(a, sa), -EINVAL); /* one probe */
	assert_int_equal(mg_dataflow_join(a, NULL), -EINVAL);
	mg_dataflow_destroy(a);
	mg_dataflow_destroy(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_bad_wiring),
		cmocka_unit_test(test_unary_bins),
		cmocka_unit_test(test_unary_native),
		cmocka_unit_test(test_tiny_rings_many_workers),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_binary_join),
	};

	return MG_TEST_RUN(tests);
}
