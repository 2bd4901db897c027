/*
 * t-engine-rehome.c - after a handoff across NUMA nodes, the bin's pages are
 * queued for background re-homing.  MG_NUMA_FAKE=2 splits this machine's
 * CPUs into two virtual nodes, one per worker, so every move crosses nodes:
 * the decision path runs, the re-homer examines the pages, and on one real
 * node it moves none (a measured no-op).  Outputs stay complete.
 */
#include <errno.h>
#include <numa.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/megaphone.h"
#include "numa/mg_numa.h"
#include "tests/mg_test.h"

struct rec {
	uint64_t key, n;
};

static _Atomic uint64_t outputs;

static void
gen(void *ctx, unsigned w, uint64_t seq, void *out)
{
	(void)ctx;
	(void)w;
	((struct rec *)out)->key = seq % 5000;
}

static uint64_t
hash(void *ctx, const void *r)
{
	(void)ctx;
	return ((const struct rec *)r)->key * 0x9e3779b97f4a7c15ull;
}

static void
count(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	struct mg_map *m = c->state;
	const struct rec *in = c->in[0];
	void *v;

	(void)ctx;
	if (!m->value_size)
		mg_map_init(m, sizeof(uint64_t));
	for (uint32_t i = 0; i < c->n_in[0]; i++) {
		struct rec o = {in[i].key, 0};

		if (mg_map_upsert(m, c->arena, in[i].key, &v) < 0) {
			c->error = -ENOMEM;
			return;
		}
		o.n = ++*(uint64_t *)v;
		mg_emit(out, &o);
	}
}

static void
sink(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	(void)ctx;
	(void)w;
	(void)t;
	(void)rec;
	/* Relaxed: read after the join. */
	atomic_fetch_add_explicit(&outputs, 1, memory_order_relaxed);
}

static void
test_rehome_across_fake_nodes(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2,
					.bins_log2 = 4,
					.epoch_ns = 100000,
					.rehome = true,
					.oversubscribe = true};
	struct mg_source_config sc = {.record_size = sizeof(struct rec),
				      .rate = 200000,
				      .duration_ns = 300000000ull,
				      .gen = gen};
	struct mg_stateful_config op = {.ninputs = 1,
					.hash = {hash},
					.out_record_size = sizeof(struct rec),
					.state_size = sizeof(struct mg_map),
					.fn = count};
	struct mg_migration_progress pr;
	struct mg_migration *m;
	struct mg_run_stats st;
	struct mg_dataflow *df;
	struct mg_stream *s, *out;
	uint64_t req, exam, moved;
	uint16_t target[16];

	(void)state;
	assert_int_equal(setenv("MG_NUMA_FAKE", "2", 1), 0);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_source(df, &sc);
	assert_non_null(s);
	op.in[0] = s;
	out = mg_stateful(df, &op);
	assert_non_null(out);
	assert_int_equal(mg_sink(df, out, sink, NULL), 0);
	assert_non_null(mg_probe(df, out));
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	/* every bin to the other worker, i.e. to the other (fake) node */
	for (unsigned b = 0; b < 16; b++)
		target[b] = (uint16_t)(1 - b % 2);
	nanosleep(&(struct timespec){0, 100000000}, NULL);
	assert_int_equal(
		mg_migrate(df, MG_ALL_AT_ONCE, target, MG_TIME_ASAP, 0, &m), 0);
	assert_int_equal(mg_migration_wait(m), 0);
	mg_migration_progress(m, &pr);
	assert_int_equal(mg_dataflow_join(df, &st), 0);
	mg_dataflow_rehome_stats(df, &req, &exam, &moved);
	printf("# %u bins moved (%llu bytes of state); re-homing: %llu "
	       "requests, %llu pages examined, %llu moved\n",
	       pr.bins_moved, (unsigned long long)pr.bytes_moved,
	       (unsigned long long)req, (unsigned long long)exam,
	       (unsigned long long)moved);
	assert_int_equal(pr.bins_moved, 16);
	assert_true(pr.bytes_moved > 0);
	/* one request per bin with state: all 16 had records by then */
	assert_int_equal(req, 16);
	assert_true(exam >= req);
	if (numa_available() < 0 || numa_max_node() == 0)
		assert_int_equal(moved, 0); /* one real node: nothing to move */
	assert_int_equal(atomic_load(&outputs), st.records);
	mg_dataflow_destroy(df);
	unsetenv("MG_NUMA_FAKE");
}

static _Atomic bool refuse_copy;

static int
ser(void *ctx, struct mg_bin_call *c, struct mg_writer *w)
{
	(void)ctx;
	/* Relaxed: only the value matters. */
	if (atomic_load_explicit(&refuse_copy, memory_order_relaxed))
		return -ENOMEM; /* the copy fails: the move goes as a handoff */
	return mg_map_write(c->state, w);
}

static int
des(void *ctx, struct mg_bin_call *c, struct mg_reader *r)
{
	(void)ctx;
	mg_map_init(c->state, sizeof(uint64_t));
	return mg_map_read(c->state, c->arena, r);
}

/* Push every key once at time *@t and advance past it, until @m is done
 * (NULL: once). */
static void
feed_until_done(struct mg_producer *p, uint64_t *t, struct mg_migration *m)
{
	struct mg_migration_progress pr = {.done = true};

	do {
		for (uint64_t k = 0; k < 5000; k++) {
			struct rec r = {k, 0};

			assert_int_equal(mg_push_wait(p, *t, &r, sizeof(r), 1,
						      MG_FOREVER),
					 1);
		}
		assert_int_equal(mg_producer_advance(p, ++*t), 0);
		if (m)
			mg_migration_progress(m, &pr);
	} while (!pr.done);
	if (m)
		assert_int_equal(mg_migration_wait(m), 0);
}

/*
 * Copy mode with re-homing: a move whose copy failed went as a handoff
 * across (fake) nodes, so the bin's pages are queued for re-homing, and the
 * re-homer reads the request, a block of the bin's own arena.  A copy of
 * that bin must not free it then: the move goes as a handoff again.  With
 * the re-homer at a page a second (every bin has pages: 312 keys), the
 * requests queue up behind the first, so the moves back find bins still
 * queued; their copies fall back, and every count stays right.
 */
static void
test_copy_while_rehoming(void **state)
{
	struct mg_dataflow_config dc = {.workers = 2,
					.bins_log2 = 4,
					.mode = MG_COPY,
					.rehome = true,
					.rehome_rate = 1,
					.oversubscribe = true};
	struct mg_stateful_config op = {.ninputs = 1,
					.hash = {hash},
					.out_record_size = sizeof(struct rec),
					.state_size = sizeof(struct mg_map),
					.fn = count,
					.serialize = ser,
					.deserialize = des};
	struct mg_migration *m;
	struct mg_run_stats st;
	struct mg_dataflow *df;
	struct mg_stream *s, *out;
	struct mg_producer *p;
	struct mg_probe *probe;
	struct mg_input *in;
	uint64_t t = 0, req, exam, moved, fell_back;
	uint16_t there[16], back[16];

	(void)state;
	atomic_store(&outputs, 0);
	assert_int_equal(setenv("MG_NUMA_FAKE", "2", 1), 0);
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_input(df, sizeof(struct rec), &in);
	assert_non_null(s);
	op.in[0] = s;
	out = mg_stateful(df, &op);
	assert_non_null(out);
	assert_int_equal(mg_sink(df, out, sink, NULL), 0);
	probe = mg_probe(df, out);
	assert_non_null(probe);
	assert_int_equal(mg_producer_open(in, 0, &p), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	mg_dataflow_owners(df, back);
	for (unsigned b = 0; b < 16; b++)
		there[b] = (uint16_t)(1 - back[b]);
	feed_until_done(p, &t, NULL);
	assert_int_equal(mg_probe_wait(probe, 0, MG_FOREVER), 0); /* state */
	/* there, by handoff: every copy refused */
	atomic_store(&refuse_copy, true);
	assert_int_equal(
		mg_migrate(df, MG_ALL_AT_ONCE, there, MG_TIME_ASAP, 0, &m), 0);
	feed_until_done(p, &t, m);
	/* and back by copy, while the requests queue */
	atomic_store(&refuse_copy, false);
	assert_int_equal(
		mg_migrate(df, MG_ALL_AT_ONCE, back, MG_TIME_ASAP, 0, &m), 0);
	feed_until_done(p, &t, m);
	/* requests done by now: at most that many bins could be copied */
	mg_dataflow_rehome_stats(df, &req, &exam, &moved);
	assert_int_equal(mg_producer_close(p), 0);
	assert_int_equal(mg_input_close(in), 0);
	assert_int_equal(mg_dataflow_join(df, &st), 0);
	fell_back = st.copy_fallbacks - 16;
	printf("# copies refused: 16; moves back: %llu handed over while "
	       "their pages were queued, %llu re-homing requests done\n",
	       (unsigned long long)fell_back, (unsigned long long)req);
	assert_true(st.copy_fallbacks >= 16 && req <= 16);
	assert_true(fell_back >= 16 - req);
	assert_int_equal(atomic_load(&outputs), st.records);
	assert_int_equal(st.records, t * 5000);
	mg_dataflow_destroy(df);
	unsetenv("MG_NUMA_FAKE");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rehome_across_fake_nodes),
		cmocka_unit_test(test_copy_while_rehoming),
	};
	struct mg_topology *two;

	if (mg_topology_create_fake(&two, 2))
		mg_test_skip_all("two fake nodes need two CPUs this process "
				 "may run on");
	mg_topology_destroy(two);

	return MG_TEST_RUN(tests);
}
