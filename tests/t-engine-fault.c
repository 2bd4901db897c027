/*
 * t-engine-fault.c - running out of memory anywhere ends a run cleanly:
 * mg_dataflow_join() reports -ENOMEM, every thread ends, nothing crashes,
 * and every time that completed before the run stopped has exactly the
 * reference's outputs (the model of mg_test_model.h, through the harness
 * of mg_test_run.h, with timers and a migration); or the run absorbs the
 * failure and every output is the reference's.
 *
 *   - a bin whose arena cannot grow (pools of 2 MiB per class): the user
 *     function sees -ENOMEM from mg_map_upsert(), once, and the run ends
 *     with it (every build);
 *   - copy mode whose serialize() says -ENOMEM: those moves go as
 *     handoffs, the run completes right; whose deserialize() does: the run
 *     ends with -ENOMEM (every build);
 *   - debug builds (numa/mg_fault.h): the Nth page-pool allocation failed,
 *     for N over the whole build (every builder rolls back, ASan sees no
 *     leak) and sampled over a run; the Nth arena allocation sampled over
 *     a run, in handoff and in copy mode; and both failing at random
 *     (seeded).
 *
 * Seeded: MG_SEED=<seed> replays.  Workers record; main asserts.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/megaphone.h"
#include "numa/mg_base.h"
#include "numa/mg_fault.h"
#include "tests/mg_test.h"
#include "tests/mg_test_model.h"
#include "tests/mg_test_run.h"

#define SAMPLES 10 /* failure points sampled over a run, per site */

/* ---- a bin whose arena is full ------------------------------------------ */

struct full {
	_Atomic uint64_t upserts, enomem; /* by the worker; main reads */
	uint64_t keys;
};

/* One bin's worth of distinct keys, each counted in the bin's map. */
static void
full_op(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	struct full *f = ctx;
	struct mg_map *m = c->state;
	const uint64_t *k = c->in[0];
	uint32_t i;
	void *v;
	int err;

	(void)out;
	if (!m->value_size)
		mg_map_init(m, sizeof(uint64_t));
	for (i = 0; i < c->n_in[0]; i++) {
		err = mg_map_upsert(m, c->arena, k[2 * i], &v);
		if (err < 0) {
			/* Relaxed: counters; the join orders them. */
			atomic_fetch_add_explicit(&f->enomem, err == -ENOMEM,
						  memory_order_relaxed);
			c->error = err;
			return;
		}
		atomic_fetch_add_explicit(&f->upserts, 1, memory_order_relaxed);
		++*(uint64_t *)v;
	}
}

static uint64_t
full_hash(void *ctx, const void *rec)
{
	(void)ctx;
	(void)rec;
	return 0; /* all in bin 0 */
}

/*
 * 2 MiB per pool class: the map doubles until its next table needs two
 * 2 MiB segments, which the 2 MiB class cannot give.  The user function
 * sees -ENOMEM from mg_map_upsert(), says so in its call, and the run
 * ends with it -- with the map as it was, and every thread joined.
 */
static void
test_arena_full(void **state)
{
	struct mg_dataflow_config dc = {
		.workers = 1, .bins_log2 = 4, .pool_reserve = 2u << 20};
	struct mg_stateful_config sc = {
		.ninputs = 1,
		.hash = {full_hash},
		.out_record_size = 8,
		.state_size = sizeof(struct mg_map),
		.fn = full_op,
	};
	struct full f = {.keys = 400000};
	struct mg_dataflow *df;
	struct mg_producer *p;
	struct mg_input *in;
	struct mg_stream *s;
	uint64_t rec[2], k;
	int err = 0;

	(void)state;
	atomic_init(&f.upserts, 0);
	atomic_init(&f.enomem, 0);
	sc.ctx = &f;
	assert_int_equal(mg_dataflow_create(&df, &dc), 0);
	s = mg_input(df, sizeof(rec), &in);
	sc.in[0] = s;
	s = mg_stateful(df, &sc);
	assert_non_null(mg_probe(df, s));
	assert_int_equal(mg_producer_open(in, 0, &p), 0);
	assert_int_equal(mg_dataflow_start(df, NULL, NULL), 0);
	for (k = 0; k < f.keys && err >= 0; k++) {
		rec[0] = k;
		rec[1] = 0;
		/* one time per 4096 keys: the map grows call by call */
		err = mg_push_wait(p, k / 4096, rec, sizeof(rec), 1,
				   MG_FOREVER);
	}
	/* the run failed on the way (-EPIPE), or it ends now */
	mg_producer_close(p);
	mg_input_close(in);
	assert_int_equal(mg_dataflow_join(df, NULL), -ENOMEM);
	printf("# %llu upserts, then -ENOMEM (%llu seen by the operator); "
	       "pushing stopped with %d\n",
	       (unsigned long long)atomic_load(&f.upserts),
	       (unsigned long long)atomic_load(&f.enomem), err);
	assert_int_equal(atomic_load(&f.enomem), 1);
	assert_true(atomic_load(&f.upserts) > 100000);
	mg_dataflow_destroy(df);
}

/* A migration of every bin to the next worker, 2 ms ahead. */
static void
drive_move_all(struct run *r, struct mg_dataflow *df)
{
	uint16_t target[1u << 8];
	uint32_t b;

	mg_dataflow_owners(df, target);
	for (b = 0; b < r->nbins; b++)
		target[b] = (uint16_t)((target[b] + 1) % r->workers);
	run_sleep_ns(4 * MS);
	run_submit(r, df, MG_ALL_AT_ONCE, target,
		   mg_dataflow_time_ahead(df, 2 * MS), 0, NULL);
}

/* A third of the bins cannot be serialized. */
static bool
ser_fail_thirds(struct run *r, bool ser, uint32_t bin)
{
	(void)r;
	return ser && bin % 3 == 0;
}

/* A third of the bins cannot be rebuilt. */
static bool
des_fail_thirds(struct run *r, bool ser, uint32_t bin)
{
	(void)r;
	return !ser && bin % 3 == 1;
}

/* ---- copy mode out of memory ---------------------------------------------- */

/*
 * Copy mode whose serialize() runs out of memory: each of those moves goes
 * as a handoff instead (counted), the run ends well, and every output is
 * the reference's (run_case() checks it all).
 */
static void
test_copy_ser_enomem(void **state)
{
	struct run r = {
		.name = "copy serialize enomem",
		.workers = 2,
		.bins_log2 = 6,
		.keys = 3000,
		.rate = {200000},
		.duration_ns = 30 * MS,
		.ring = 8,
		.batch = 16,
		.timers = true,
		.lenient = true,
		.mode = MG_COPY,
		.copy_fail = ser_fail_thirds,
		.drive = drive_move_all,
	};
	uint64_t fails;

	(void)state;
	r.rng = run_seed_of(100);
	assert_int_equal(run_case(&r), 0);
	fails = atomic_load(&r.copy_fails);
	printf("# %llu copies out of memory, %llu moves went as handoffs\n",
	       (unsigned long long)fails,
	       (unsigned long long)r.st.copy_fallbacks);
	assert_int_equal(r.st.copy_fallbacks, fails);
	if (r.nmig) /* else a slow machine ended the run first (noted) */
		assert_true(fails > 0);
}

/* After a failed run: nothing completed at or past the time of the move
 * whose bin was lost. */
static void
check_not_past_move(struct run *r, struct mg_dataflow *df)
{
	(void)df;
	if (r->join_err && r->nknown && r->completed > r->known[0].time)
		FAIL(r, "time %llu complete, past the move at %llu",
		     (unsigned long long)r->completed,
		     (unsigned long long)r->known[0].time);
}

/*
 * Copy mode whose deserialize() runs out of memory, after it built a part
 * of the bin: the bin's original is gone (as in Megaphone), so the run
 * ends with -ENOMEM, and every time complete by then is right.
 */
static void
test_copy_des_enomem(void **state)
{
	struct run r = {
		.name = "copy deserialize enomem",
		.workers = 2,
		.bins_log2 = 6,
		.keys = 3000,
		.rate = {200000},
		.duration_ns = 30 * MS,
		.ring = 8,
		.batch = 16,
		.timers = true,
		.lenient = true,
		.faults = true,
		.expect_join = INT32_MIN,
		.mode = MG_COPY,
		.copy_fail = des_fail_thirds,
		.drive = drive_move_all,
		.after_join = check_not_past_move,
	};

	(void)state;
	r.rng = run_seed_of(101);
	assert_int_equal(run_case(&r), 0);
	printf("# join: %s (%s), %llu of %llu times complete\n",
	       mg_strerror(r.join_err), r.st.error_what ? r.st.error_what : "-",
	       (unsigned long long)r.completed, (unsigned long long)r.ntimes);
	if (!atomic_load(&r.copy_fails)) { /* noted: no migration ran */
		assert_int_equal(r.join_err, 0);
		return;
	}
	assert_int_equal(r.join_err, -ENOMEM);
	assert_string_equal(r.st.error_what, "copy mode: rebuilding a bin");
	assert_int_equal(r.st.copy_fallbacks, 0);
}

#if MG_FAULT_INJECT

/* ---- allocation failures injected ------------------------------------------ */

static const char *const knobs[] = {
	"MG_FAIL_CHUNK",   "MG_FAIL_CHUNK_P", "MG_FAIL_ARENA",
	"MG_FAIL_ARENA_P", "MG_FAIL_SEED",    "MG_DEBUG_VSHIFT",
};

static void
disarm(void)
{
	for (unsigned i = 0; i < MG_ARRAY_SIZE(knobs); i++)
		unsetenv(knobs[i]);
	mg__fault_load();
}

/* What the next run's before_start arms: knob[i] = value[i]. */
static const char *arm_name[2], *arm_value[2];
static uint64_t armed_chunks, armed_arenas; /* counted by the last run */

/* Before the start: the knobs, counted from here (the build is done). */
static void
arm_knobs(struct run *r, struct mg_dataflow *df)
{
	(void)r;
	(void)df;
	disarm();
	for (unsigned i = 0; i < 2; i++)
		if (arm_name[i])
			setenv(arm_name[i], arm_value[i], 1);
	assert_int_equal(mg__fault_load(), 0);
}

static void
count_knobs(struct run *r, struct mg_dataflow *df)
{
	(void)r;
	(void)df;
	armed_chunks = mg__fault_seen(MG_FAULT_CHUNK);
	armed_arenas = mg__fault_seen(MG_FAULT_ARENA);
}

static struct run model = {
	.name = "fault",
	.workers = 2,
	.bins_log2 = 6,
	.keys = 3000,
	.rate = {200000},
	.duration_ns = 30 * MS,
	.ring = 8,
	.batch = 16,
	.timers = true,
	.lenient = true,
	.faults = true,
	.expect_join = INT32_MIN,
	.before_start = arm_knobs,
	.drive = drive_move_all,
	.after_join = count_knobs,
	.quiet = true,
};

/* One run in @mode with @name = @value (NULL: none) armed at the start;
 * asserts it ended cleanly.  Return: its join result. */
static int
run_armed(enum mg_mode mode, const char *name, const char *value,
	  const char *name2, const char *value2)
{
	struct run r = model;
	char label[96];

	snprintf(label, sizeof(label), "%s%s=%s%s%s%s%s",
		 mode == MG_COPY ? "copy " : "", name ? name : "none",
		 name ? value : "", name2 ? " " : "", name2 ? name2 : "",
		 name2 ? "=" : "", name2 ? value2 : "");
	r.name = label;
	r.mode = mode;
	arm_name[0] = name;
	arm_value[0] = value;
	arm_name[1] = name2;
	arm_value[1] = value2;
	r.rng = run_seed_of(0);
	if (run_case(&r))
		fail_msg("%s: %u checks failed", label, r.fails);
	disarm();
	if (r.join_err != 0 && r.join_err != -ENOMEM)
		fail_msg("%s: join returned %d (%s)", label, r.join_err,
			 mg_strerror(r.join_err));
	if (r.join_err)
		printf("# %s: -ENOMEM at join (%s), %llu of %llu times "
		       "complete and right\n",
		       label, r.st.error_what ? r.st.error_what : "?",
		       (unsigned long long)r.completed,
		       (unsigned long long)r.ntimes);
	else if (r.st.copy_fallbacks)
		printf("# %s: complete and right, %llu moves went as "
		       "handoffs\n",
		       label, (unsigned long long)r.st.copy_fallbacks);
	return r.join_err;
}

/*
 * The Nth chunk allocation of a run, N sampled from 1 to what a run takes
 * (calibrated by a run without failures): batches of overflow, bins'
 * slabs and tables, the timer queues, the migration.  A failure the run
 * cannot absorb ends it with -ENOMEM, and what completed before is right.
 * Return: the runs that ended with -ENOMEM.
 */
static unsigned
sweep(enum mg_mode mode, const char *knob, enum mg_fault_site site)
{
	uint64_t total, n;
	unsigned i, failed = 0;
	char v[32];

	run_armed(mode, NULL, NULL, NULL, NULL);
	total = site == MG_FAULT_CHUNK ? armed_chunks : armed_arenas;
	printf("# a run makes %llu %s allocations\n", (unsigned long long)total,
	       site == MG_FAULT_CHUNK ? "chunk" : "arena");
	assert_true(total > SAMPLES);
	for (i = 0; i < SAMPLES; i++) {
		/* the first few, then spread over the run */
		n = i < 3 ? i + 1 : 1 + total * (i - 2) / (SAMPLES - 2);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)n);
		failed += run_armed(mode, knob, v, NULL, NULL) != 0;
	}
	printf("# %u of %u runs ended with -ENOMEM\n", failed, SAMPLES);
	return failed;
}

/* Handoff mode: most allocations of a run are on its data path, where
 * running out of memory ends the run. */
static void
test_chunk_in_run(void **state)
{
	(void)state;
	assert_true(sweep(MG_HANDOFF, "MG_FAIL_CHUNK", MG_FAULT_CHUNK) >=
		    SAMPLES / 2);
}

static void
test_arena_in_run(void **state)
{
	(void)state;
	assert_true(sweep(MG_HANDOFF, "MG_FAIL_ARENA", MG_FAULT_ARENA) >=
		    SAMPLES / 2);
}

/* Copy mode: the rebuilds of moved bins allocate as well. */
static void
test_arena_in_copy_run(void **state)
{
	(void)state;
	sweep(MG_COPY, "MG_FAIL_ARENA", MG_FAULT_ARENA);
}

/* Both sites failing at random (seeded): clean ends, right prefixes. */
static void
test_random(void **state)
{
	static const char *const p[] = {"0.0005", "0.002", "0.01"};
	unsigned i, failed = 0;
	char seed[32];

	(void)state;
	for (i = 0; i < 6; i++) {
		snprintf(seed, sizeof(seed), "%llu",
			 (unsigned long long)(run_seed_of(i) % 1000000));
		failed +=
			run_armed(i % 4 < 2 ? MG_HANDOFF : MG_COPY,
				  i % 2 ? "MG_FAIL_CHUNK_P" : "MG_FAIL_ARENA_P",
				  p[i % 3], "MG_FAIL_SEED", seed) != 0;
	}
	printf("# %u of 6 runs ended with -ENOMEM\n", failed);
}

static void
nop_fn(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	(void)ctx;
	(void)c;
	(void)out;
}

static int
nop_ser(void *ctx, struct mg_bin_call *c, struct mg_writer *w)
{
	(void)ctx;
	(void)c;
	(void)w;
	return 0;
}

static int
nop_des(void *ctx, struct mg_bin_call *c, struct mg_reader *r)
{
	(void)ctx;
	(void)c;
	(void)r;
	return 0;
}

/* The graph of the builder sweep: a source and an input into a binary
 * stateful operator (two meshes) in copy mode (a state mesh), an output
 * queue, a probe; built and destroyed without running.  Return: the
 * builders' latched error. */
static int
build(void)
{
	struct mg_dataflow_config dc = {.workers = 2,
					.oversubscribe = true,
					.bins_log2 = 4,
					.epoch_ns = EPOCH_NS,
					.mode = MG_COPY};
	static struct mg_test_model m = {.keys = 10,
					 .rate = {10000},
					 .duration_ns = 2 * MS,
					 .epoch_ns = EPOCH_NS};
	struct mg_source_config src = {
		.record_size = sizeof(struct mg_test_model_rec),
		.rate = 10000,
		.duration_ns = 2 * MS,
		.gen = mg_test_model_gen0,
		.ctx = &m,
	};
	struct mg_stateful_config sc = {
		.ninputs = 2,
		.hash = {mg_test_model_hash, mg_test_model_hash},
		.out_record_size = sizeof(struct mg_test_model_out),
		.state_size = 64,
		.fn = nop_fn,
		.serialize = nop_ser,
		.deserialize = nop_des,
	};
	struct mg_dataflow *df;
	struct mg_input *in;
	struct mg_stream *a, *b, *o;
	int err;

	err = mg_dataflow_create(&df, &dc);
	if (err)
		return err;
	a = mg_source(df, &src);
	b = mg_input(df, sizeof(struct mg_test_model_rec), &in);
	sc.in[0] = a;
	sc.in[1] = b;
	o = mg_stateful(df, &sc);
	mg_output(df, o);
	mg_probe(df, o);
	err = mg_dataflow_error(df);
	mg_dataflow_destroy(df);
	return err;
}

/*
 * Every chunk allocation of a build, failed in turn: the builder that gets
 * -ENOMEM latches it, rolls its nodes back, and the dataflow destroys
 * cleanly (the sanitizer builds see no leak, no double free).
 */
static void
test_chunk_in_build(void **state)
{
	uint64_t total, n;
	char v[32];

	(void)state;
	disarm();
	assert_int_equal(build(), 0);
	total = mg__fault_seen(MG_FAULT_CHUNK);
	printf("# a build makes %llu chunk allocations\n",
	       (unsigned long long)total);
	assert_true(total > 4);
	for (n = 1; n <= total; n++) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)n);
		setenv("MG_FAIL_CHUNK", v, 1);
		assert_int_equal(build(), -ENOMEM);
	}
	disarm();
}

#endif /* MG_FAULT_INJECT */

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena_full),
		cmocka_unit_test(test_copy_ser_enomem),
		cmocka_unit_test(test_copy_des_enomem),
#if MG_FAULT_INJECT
		cmocka_unit_test(test_chunk_in_build),
		cmocka_unit_test(test_chunk_in_run),
		cmocka_unit_test(test_arena_in_run),
		cmocka_unit_test(test_arena_in_copy_run),
		cmocka_unit_test(test_random),
#endif
	};

	run_seed = mg_test_seed();
	signal(SIGALRM, run_watchdog);
#if !MG_FAULT_INJECT
	printf("# allocation failure injection is in debug builds only "
	       "(make DEBUG=1; make test runs them there too): here only "
	       "the arena-full and copy cases run\n");
#endif
	return MG_TEST_RUN(tests);
}
