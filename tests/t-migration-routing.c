/*
 * t-migration-router.c - publishing routing-table versions from threads
 * that are not QSBR readers, while readers run.
 *
 * liburcu requires call_rcu()'s caller to be a registered, online QSBR
 * thread.  This binary is linked with -Wl,--wrap=urcu_qsbr_call_rcu (see
 * the Makefile), so every call_rcu() of the router passes through
 * __wrap_urcu_qsbr_call_rcu() below, which counts the calls made by a
 * thread that is not online.  Two unregistered threads (main and one more)
 * submit and advance thousands of times while registered readers read every
 * version and check it; under ASan (make SAN=address,undefined test) a
 * version freed too early is a use-after-free, one never freed a leak.
 *
 * Readers record what they saw; only the main thread asserts.
 *
 * Also the routing itself, through the router's API alone: a chain whose
 * later step completes first (found by the Promela model), the control
 * frontier's claim against a raise, ASAP submissions and -ETIME.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <urcu/urcu-qsbr.h>

#include "migration/mg_router.h"
#include "tests/mg_test.h"

#define NBINS	   1024u
#define NWORKERS   4u
#define NREADERS   2
#define SUBMITS	   2000u /* per submitting thread */
#define STEP_MOVES 8u
#define STEP_TIME  (1ull << 40) /* above every frontier the test sets */

/* ---- the call_rcu interposer ----------------------------------------------- */

void __real_urcu_qsbr_call_rcu(struct rcu_head *head,
			       void (*func)(struct rcu_head *head));
void __wrap_urcu_qsbr_call_rcu(struct rcu_head *head,
			       void (*func)(struct rcu_head *head));

/* Relaxed counters: main reads them after joining every thread that calls. */
static _Atomic uint64_t calls, calls_offline;

void
__wrap_urcu_qsbr_call_rcu(struct rcu_head *head,
			  void (*func)(struct rcu_head *head))
{
	atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
	if (!urcu_qsbr_read_ongoing())
		atomic_fetch_add_explicit(&calls_offline, 1,
					  memory_order_relaxed);
	__real_urcu_qsbr_call_rcu(head, func);
}

/* ---- readers and submitters -------------------------------------------------- */

struct reader {
	struct mg_router *r;
	_Atomic bool *stop;
	pthread_t th;
	/* what it saw */
	uint64_t reads, versions, bad;
};

static void *
reader_main(void *arg)
{
	struct reader *rd = arg;
	uint64_t last = 0;
	uint32_t i, b;

	mg_rcu_register();
	/* Relaxed: the join orders the rest; the flag only ends the loop. */
	while (!atomic_load_explicit(rd->stop, memory_order_relaxed)) {
		const struct mg_routing *t = mg_router_read(rd->r);

		if (t->version < last || t->nbins != NBINS ||
		    t->nworkers != NWORKERS)
			rd->bad++;
		rd->versions += t->version != last;
		last = t->version;
		for (i = 0; i < t->nmoves; i++)
			if (t->moves[i].bin >= NBINS ||
			    t->moves[i].to >= NWORKERS)
				rd->bad++;
		for (b = (uint32_t)rd->reads % 64; b < NBINS; b += 64)
			if (mg_routing_owner(t, b, STEP_TIME + rd->reads % 2) >=
			    NWORKERS)
				rd->bad++;
		rd->reads++;
		mg_rcu_quiescent();
	}
	mg_rcu_unregister();
	return NULL;
}

struct submitter {
	struct mg_router *r;
	uint64_t seed;
	pthread_t th;
	/* what it saw */
	uint64_t ok, errors;
	int first_error;
};

/* From a thread that never registers with QSBR. */
static void *
submit_main(void *arg)
{
	struct submitter *s = arg;
	struct mg_move moves[STEP_MOVES];
	struct mg_step step = {.time = STEP_TIME, .moves = moves};
	uint64_t rng = s->seed;
	uint32_t k, i;
	int err;

	for (k = 1; k <= SUBMITS; k++) {
		step.nmoves = 0;
		for (i = 0; i < STEP_MOVES; i++) {
			uint64_t x = mg_test_rand(&rng);
			uint32_t bin = (uint32_t)(x % NBINS), j;

			for (j = 0; j < step.nmoves; j++)
				if (moves[j].bin == bin)
					break;
			if (j < step.nmoves)
				continue; /* a bin once per step */
			moves[step.nmoves++] = (struct mg_move){
				.bin = bin,
				.worker = (unsigned)((x >> 32) % NWORKERS)};
		}
		/* nops 0: every move is complete at once, and the next submit
		 * or advance folds it and publishes again. */
		err = mg_router_submit(s->r, &step, 1, 0, false, NULL, NULL);
		if (err) {
			if (!s->errors++)
				s->first_error = err;
		} else {
			s->ok++;
		}
		mg_router_advance(s->r, k);
	}
	return NULL;
}

static void
test_publish_unregistered(void **state)
{
	struct reader rd[NREADERS] = {0};
	struct submitter other = {0}, self = {0};
	_Atomic bool stop;
	struct mg_router *r;
	uint64_t seed = mg_test_seed();
	unsigned i;

	(void)state;
	assert_int_equal(mg_router_create(&r, NBINS, NWORKERS), 0);
	atomic_init(&stop, false);
	for (i = 0; i < NREADERS; i++) {
		rd[i].r = r;
		rd[i].stop = &stop;
		assert_int_equal(
			pthread_create(&rd[i].th, NULL, reader_main, &rd[i]),
			0);
	}
	other.r = self.r = r;
	other.seed = seed;
	self.seed = seed + 1;
	assert_int_equal(pthread_create(&other.th, NULL, submit_main, &other),
			 0);
	submit_main(&self); /* main is not a QSBR reader either */
	assert_int_equal(pthread_join(other.th, NULL), 0);
	atomic_store_explicit(&stop, true, memory_order_relaxed);
	for (i = 0; i < NREADERS; i++)
		assert_int_equal(pthread_join(rd[i].th, NULL), 0);
	/* Waits for every callback: under ASan a version never freed leaks. */
	mg_router_destroy(r);

	assert_int_equal(self.errors, 0);
	assert_int_equal(other.errors, 0);
	assert_int_equal(self.ok + other.ok, 2 * SUBMITS);
	/* Every submit publishes; most advances fold and publish again. */
	assert_true(atomic_load_explicit(&calls, memory_order_relaxed) >=
		    2 * SUBMITS);
	/* liburcu: "call_rcu should be called from registered RCU read-side
	 * threads.  For the QSBR flavor, the caller should be online." */
	assert_int_equal(
		atomic_load_explicit(&calls_offline, memory_order_relaxed), 0);
	for (i = 0; i < NREADERS; i++) {
		assert_int_equal(rd[i].bad, 0);
		assert_true(rd[i].reads > 0);
		print_message("# reader %u: %llu reads, %llu versions\n", i,
			      (unsigned long long)rd[i].reads,
			      (unsigned long long)rd[i].versions);
	}
}

/* An online reader publishes as it is, and stays registered and online. */
static void
test_publish_online_reader(void **state)
{
	struct mg_move mv = {.bin = 3, .worker = 1};
	struct mg_step step = {.time = 10, .nmoves = 1, .moves = &mv};
	struct mg_router *r;
	uint64_t before;

	(void)state;
	assert_int_equal(mg_router_create(&r, NBINS, NWORKERS), 0);
	mg_rcu_register();
	before = atomic_load_explicit(&calls, memory_order_relaxed);
	assert_int_equal(mg_router_submit(r, &step, 1, 0, false, NULL, NULL),
			 0);
	assert_true(urcu_qsbr_read_ongoing());
	assert_int_equal(mg_routing_owner(mg_router_read(r), 3, 10), 1);
	assert_int_equal(atomic_load_explicit(&calls, memory_order_relaxed),
			 before + 1);
	mg_rcu_offline();
	mg_rcu_unregister();
	mg_router_destroy(r);
	assert_int_equal(
		atomic_load_explicit(&calls_offline, memory_order_relaxed), 0);
}

/* The owner of @bin at @t in the current version (registered briefly). */
static unsigned
owner(struct mg_router *r, uint32_t bin, uint64_t t)
{
	unsigned w;

	mg_rcu_register();
	w = mg_routing_owner(mg_router_read(r), bin, t);
	mg_rcu_offline();
	mg_rcu_unregister();
	return w;
}

/*
 * A chain in one submission: step 0 at t=1 moves bin 0 from worker 0 to 1
 * (and bin 1 from 1 to 0), step 1 at t=2 moves bin 0 on from 1 to 2.  When
 * step 1 completes first (worker 0 is slow to acquire bin 1), folding must
 * not make worker 2 bin 0's owner from the start while the move at t=1
 * still routes later records to worker 1.  Before the fix, records of bin 0
 * at t=25 went to worker 1, forever once step 0 completed too.
 */
static void
test_fold_in_order(void **state)
{
	struct mg_move s0[2] = {{.bin = 0, .worker = 1},
				{.bin = 1, .worker = 0}};
	struct mg_move s1[1] = {{.bin = 0, .worker = 2}};
	struct mg_step steps[2] = {{.time = 1, .nmoves = 2, .moves = s0},
				   {.time = 2, .nmoves = 1, .moves = s1}};
	struct mg_step_ctl *ctl[2];
	struct mg_router *r;

	(void)state;
	assert_int_equal(mg_router_create(&r, NBINS, 3), 0);
	assert_int_equal(mg_router_submit(r, steps, 2, 1, false, ctl, NULL), 0);
	assert_int_equal(owner(r, 0, 0), 0);
	assert_int_equal(owner(r, 0, 1), 1);
	assert_int_equal(owner(r, 0, 25), 2);
	/* step 1's one handoff finishes; step 0 has one of two left */
	assert_true(mg_step_done(ctl[1], 100, 0));  /* its last handoff */
	assert_false(mg_step_done(ctl[0], 100, 0)); /* one left */
	assert_true(mg_step_complete(ctl[1]));
	assert_false(mg_step_complete(ctl[0]));
	mg_router_advance(r, 3);
	assert_int_equal(owner(r, 0, 1), 1);
	assert_int_equal(owner(r, 0, 25), 2);
	assert_true(mg_step_done(ctl[0], 101, 0));
	mg_router_advance(r, 4);
	assert_int_equal(owner(r, 0, 25), 2);
	assert_int_equal(owner(r, 1, 25), 0);
	mg_router_destroy(r);
}

/*
 * What a submission checks and how it builds its moves: a bin or worker out
 * of range or a bin twice in one step is -EINVAL, a bin with an unfinished
 * move -EBUSY, and a refused submission changes nothing; a bin may move in
 * several steps of one submission, each move from where the one before
 * left it, and a move to where the bin already is is no move.
 */
static void
test_submit_checks(void **state)
{
	struct mg_move twice[2] = {{.bin = 7, .worker = 1},
				   {.bin = 7, .worker = 2}};
	struct mg_move bad[2] = {{.bin = 3, .worker = 1},
				 {.bin = NBINS, .worker = 1}};
	struct mg_move s0[1] = {{.bin = 0, .worker = 1}};
	struct mg_move s1[2] = {{.bin = 0, .worker = 1},
				{.bin = 1, .worker = 2}};
	struct mg_move s2[1] = {{.bin = 0, .worker = 2}};
	struct mg_step steps[3] = {{.time = 1, .nmoves = 1, .moves = s0},
				   {.time = 2, .nmoves = 2, .moves = s1},
				   {.time = 3, .nmoves = 1, .moves = s2}};
	struct mg_step one = {.time = 5, .nmoves = 2, .moves = twice};
	struct mg_step_ctl *ctl[3];
	struct mg_router *r;
	uint16_t fin[NBINS];

	(void)state;
	assert_int_equal(mg_router_create(&r, NBINS, 3), 0);
	assert_int_equal(mg_router_submit(r, &one, 1, 1, false, ctl, NULL),
			 -EINVAL);
	one.moves = bad;
	assert_int_equal(mg_router_submit(r, &one, 1, 1, false, ctl, NULL),
			 -EINVAL);
	bad[1] = (struct mg_move){.bin = 4, .worker = 3};
	assert_int_equal(mg_router_submit(r, &one, 1, 1, false, ctl, NULL),
			 -EINVAL);
	mg_router_final(r, fin);
	assert_int_equal(fin[3], 0); /* nothing of the refused ones */
	assert_int_equal(mg_router_frontier(r), 0);
	/* a chain: 0 -> 1, again to 1 (no move), then 1 -> 2 */
	assert_int_equal(mg_router_submit(r, steps, 3, 1, false, ctl, NULL), 0);
	assert_int_equal(ctl[0]->nmoves, 1);
	assert_int_equal(ctl[1]->nmoves, 1); /* bin 1 only */
	assert_int_equal(ctl[2]->nmoves, 1);
	assert_int_equal(owner(r, 0, 0), 0);
	assert_int_equal(owner(r, 0, 2), 1);
	assert_int_equal(owner(r, 0, 3), 2);
	assert_int_equal(owner(r, 1, 2), 2);
	mg_router_final(r, fin);
	assert_int_equal(fin[0], 2);
	assert_int_equal(fin[1], 2);
	assert_int_equal(fin[2], 2); /* 2 % 3, never moved */
	/* bin 1's move is unfinished; one whose moves all finished may go */
	s0[0] = (struct mg_move){.bin = 1, .worker = 0};
	steps[0].time = 10;
	assert_int_equal(mg_router_submit(r, steps, 1, 1, false, ctl, NULL),
			 -EBUSY);
	mg_step_done(ctl[1], 100, 0);
	assert_int_equal(mg_router_submit(r, steps, 1, 1, false, ctl, NULL), 0);
	assert_int_equal(owner(r, 1, 10), 0);
	mg_router_destroy(r);
}

/* The control frontier: raises, a claim that blocks them, ASAP, -ETIME. */
static void
test_frontier_claims(void **state)
{
	struct mg_move mv = {.bin = 5, .worker = 2};
	struct mg_step step = {.time = 7, .nmoves = 1, .moves = &mv};
	struct mg_step_ctl *ctl;
	struct mg_router *r;
	uint64_t first = 0;

	(void)state;
	assert_int_equal(mg_router_create(&r, NBINS, NWORKERS), 0);
	assert_int_equal(mg_router_frontier(r), 0);
	assert_true(mg_router_raise(r, 10));
	assert_true(mg_router_raise(r, 5)); /* never backwards */
	assert_int_equal(mg_router_frontier(r), 10);
	/* a time the frontier passed is too late, not invalid */
	assert_int_equal(mg_router_submit(r, &step, 1, 1, false, &ctl, NULL),
			 -ETIME);
	step.time = MG_TIME_LIMIT;
	assert_int_equal(mg_router_submit(r, &step, 1, 1, false, &ctl, NULL),
			 -EINVAL);
	/* ASAP takes the frontier as it is at the submission */
	assert_int_equal(mg_router_submit(r, &step, 1, 1, true, &ctl, &first),
			 0);
	assert_int_equal(first, 10);
	assert_int_equal(ctl->time, 10);
	assert_int_equal(owner(r, 5, 9), 5 % NWORKERS);
	assert_int_equal(owner(r, 5, 10), 2);
	/* a raise that would pass a claimed frontier fails, and leaves it */
	atomic_fetch_or(&r->frontier, MG__CTL_CLAIM);
	assert_false(mg_router_raise(r, 20));
	assert_true(mg_router_raise(r, 9)); /* already there */
	assert_int_equal(mg_router_frontier(r), 10);
	atomic_fetch_and(&r->frontier, ~MG__CTL_CLAIM);
	assert_true(mg_router_raise(r, 20));
	assert_int_equal(mg_router_frontier(r), 20);
	/* MG_TIME_LIMIT and above mean the end: MG_TIME_MAX */
	assert_true(mg_router_raise(r, MG_TIME_MAX));
	assert_int_equal(mg_router_frontier(r), MG_TIME_MAX);
	mv.bin = 6; /* bin 5's move never completed: -EBUSY otherwise */
	assert_int_equal(mg_router_submit(r, &step, 1, 1, true, &ctl, &first),
			 -ETIME);
	mg_router_destroy(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_unregistered),
		cmocka_unit_test(test_publish_online_reader),
		cmocka_unit_test(test_fold_in_order),
		cmocka_unit_test(test_submit_checks),
		cmocka_unit_test(test_frontier_claims),
	};

	return MG_TEST_RUN(tests);
}
