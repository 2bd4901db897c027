/*
 * t-numa-rehome.c - background re-homing of pages.
 *
 * On a fake two-node topology every request runs the whole path (queue,
 * query, decision, rate limit, publication).  What pages_moved must be is
 * computed independently from where the kernel says the pages are, so the
 * checks hold on a one-node machine (nothing moves) and on a real NUMA
 * machine (off-node pages move) alike.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <numa.h>
#include <numaif.h>

#include "numa/mg_numa.h"
#include "tests/mg_test.h"

#define WAIT_NS (10ull * 1000000000ull)

static struct mg_topology *topo;
static struct mg_pools *pools;

static int
setup(void **state)
{
	(void)state;
	return mg_test_pools_open(&topo, &pools, 2, 64ul << 20);
}

static int
teardown(void **state)
{
	(void)state;
	mg_test_pools_close(topo, pools);
	return 0;
}

/* Wait (bounded) for DONE; true if it came. */
static bool
wait_done(struct mg_rehome_req *req)
{
	uint64_t end = mg_now_ns() + WAIT_NS;
	struct timespec ms = {0, 1000000};

	/* Acquire: pairs with the rehomer's release of DONE (the results). */
	while (atomic_load_explicit(&req->state, memory_order_acquire) !=
	       MG_REHOME_DONE) {
		if (mg_now_ns() > end)
			return false;
		nanosleep(&ms, NULL);
	}
	return true;
}

/* Pages of the ranges that are present and not on real node @mem. */
static uint64_t
off_node_pages(const struct mg_range *r, unsigned n, int mem)
{
	uint64_t count = 0;
	unsigned k;
	size_t i;

	if (numa_available() < 0)
		return 0;
	for (k = 0; k < n; k++) {
		for (i = 0; i < r[k].bytes; i += MG_PAGE_SIZE) {
			void *page = (char *)r[k].addr + i;
			int status = -1;

			assert_int_equal(
				move_pages(0, 1, &page, NULL, &status, 0), 0);
			count += status >= 0 && status != mem;
		}
	}
	return count;
}

static uint64_t
range_pages(const struct mg_range *r, unsigned n)
{
	uint64_t p = 0;
	unsigned k;

	for (k = 0; k < n; k++)
		p += r[k].bytes / MG_PAGE_SIZE;
	return p;
}

static void
test_rehome(void **state)
{
	static const unsigned shift[4] = {14, 12, 16, 13};
	unsigned nn = mg_topology_nnodes(topo), target;
	struct mg_rehome_req req[2];
	struct mg_range ranges[4];
	struct mg_rehomer *r;
	uint64_t expect[2], nreq, nex, nmv, pages = 0;
	void *c[4];
	unsigned i;

	(void)state;
	assert_int_equal(mg_rehomer_create(&r, topo, NULL), 0);
	/* Three touched chunks and one never touched, all from node 0. */
	for (i = 0; i < 4; i++) {
		assert_int_equal(mg_chunk_alloc(pools, 0, shift[i], &c[i]), 0);
		ranges[i] = (struct mg_range){c[i], 1ul << shift[i]};
		if (i < 3)
			memset(c[i], (int)i + 1, 1ul << shift[i]);
	}
	pages = range_pages(ranges, 4);

	/* To the other node, then back to the home node. */
	for (i = 0; i < 2; i++) {
		target = i == 0 ? nn - 1 : 0;
		memset(&req[i], 0, sizeof(req[i]));
		req[i].ranges = ranges;
		req[i].nranges = 4;
		req[i].target = target;
		expect[i] = off_node_pages(ranges, 4,
					   mg_topology_mem_node(topo, target));
		assert_int_equal(mg_rehome_submit(r, &req[i]), 0);
		assert_true(wait_done(&req[i]));
		assert_int_equal(req[i].error, 0);
		assert_int_equal(req[i].pages_examined, pages);
		assert_int_equal(req[i].pages_moved, expect[i]);
		/* Afterwards every present page is on the target's node. */
		assert_int_equal(
			off_node_pages(ranges, 4,
				       mg_topology_mem_node(topo, target)),
			0);
	}
	if (numa_available() < 0 || numa_max_node() == 0) {
		/* One real node: a measured no-op. */
		assert_int_equal(expect[0] + expect[1], 0);
	}
	/* The data did not change. */
	for (i = 0; i < (1u << 14); i++)
		assert_int_equal(((unsigned char *)c[0])[i], 1);

	/* A done request can be submitted again, results are refreshed. */
	req[1].nranges = 1;
	assert_int_equal(mg_rehome_submit(r, &req[1]), 0);
	assert_true(wait_done(&req[1]));
	assert_int_equal(req[1].pages_examined, 4);

	mg_rehomer_stats(r, &nreq, &nex, &nmv);
	assert_int_equal(nreq, 3);
	assert_int_equal(nex, 2 * pages + 4);
	assert_int_equal(nmv, expect[0] + expect[1] + req[1].pages_moved);
	mg_rehomer_stats(r, NULL, NULL, NULL);
	mg_rehomer_destroy(r);
	mg_rehomer_destroy(NULL);
	for (i = 0; i < 4; i++)
		mg_chunk_free(pools, c[i], shift[i]);
}

static void
test_bad_input(void **state)
{
	unsigned nn = mg_topology_nnodes(topo);
	struct mg_rehome_req req;
	struct mg_range range;
	struct mg_rehomer *r;
	uint64_t nreq;
	void *c;

	(void)state;
	assert_int_equal(mg_rehomer_create(&r, topo, NULL), 0);
	assert_int_equal(mg_chunk_alloc(pools, 0, 13, &c), 0);
	memset(&req, 0, sizeof(req));
	req.ranges = &range;
	req.nranges = 1;

	req.target = nn;
	range = (struct mg_range){c, 8192};
	assert_int_equal(mg_rehome_submit(r, &req), -EINVAL);
	req.target = 0;
	range = (struct mg_range){(char *)c + 1, 4096};
	assert_int_equal(mg_rehome_submit(r, &req), -EINVAL);
	range = (struct mg_range){c, 4095};
	assert_int_equal(mg_rehome_submit(r, &req), -EINVAL);
	range = (struct mg_range){c, 100};
	assert_int_equal(mg_rehome_submit(r, &req), -EINVAL);
	req.ranges = NULL;
	assert_int_equal(mg_rehome_submit(r, &req), -EINVAL);
	/* Refused requests were not queued and not touched. */
	assert_int_equal(atomic_load_explicit(&req.state, memory_order_relaxed),
			 MG_REHOME_IDLE);
	/* An empty request is valid. */
	req.nranges = 0;
	assert_int_equal(mg_rehome_submit(r, &req), 0);
	assert_true(wait_done(&req));
	assert_int_equal(req.pages_examined, 0);
	mg_rehomer_destroy(r);

	/* Nothing was processed but the empty request. */
	assert_int_equal(mg_rehomer_create(&r, topo, NULL), 0);
	mg_rehomer_stats(r, &nreq, NULL, NULL);
	assert_int_equal(nreq, 0);
	mg_rehomer_destroy(r);
	mg_chunk_free(pools, c, 13);
}

/*
 * Double submit and FIFO, then the rate limit.  At a page a second a
 * 1536-page blocker takes 25 minutes, so a request queued behind it is
 * QUEUED however slow the machine (no wall-clock assumption), and a
 * submit of either again is refused; destroy then finishes both without
 * the limit.  At 2000 pages/s the blocker takes at least
 * (1536 - 512) / 2000 s.
 */
static void
test_rate_and_double_submit(void **state)
{
	const struct mg_rehomer_config slow = {.pages_per_sec = 1},
				       cfg = {.pages_per_sec = 2000};
	struct mg_rehome_req blocker, req;
	struct mg_range big[3], small;
	struct mg_rehomer *r;
	uint64_t t0, elapsed;
	void *c[3], *s;
	unsigned i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_int_equal(mg_chunk_alloc(pools, 0, 21, &c[i]), 0);
		big[i] = (struct mg_range){c[i], 2ul << 20};
	}
	assert_int_equal(mg_chunk_alloc(pools, 0, 14, &s), 0);
	small = (struct mg_range){s, 1ul << 14};
	memset(&blocker, 0, sizeof(blocker));
	blocker.ranges = big;
	blocker.nranges = 3;
	blocker.target = mg_topology_nnodes(topo) - 1;
	memset(&req, 0, sizeof(req));
	req.ranges = &small;
	req.nranges = 1;

	assert_int_equal(mg_rehomer_create(&r, topo, &slow), 0);
	assert_int_equal(mg_rehome_submit(r, &blocker), 0);
	assert_int_equal(mg_rehome_submit(r, &req), 0);
	assert_int_equal(mg_rehome_submit(r, &req), -EINVAL);
	assert_int_equal(mg_rehome_submit(r, &blocker), -EINVAL);
	/* FIFO: while the blocker runs, req cannot have been processed. */
	assert_int_equal(atomic_load_explicit(&req.state, memory_order_acquire),
			 MG_REHOME_QUEUED);
	/* Destroy finishes queued work before it returns, unthrottled. */
	mg_rehomer_destroy(r);
	assert_int_equal(
		atomic_load_explicit(&blocker.state, memory_order_acquire),
		MG_REHOME_DONE);
	assert_int_equal(atomic_load_explicit(&req.state, memory_order_acquire),
			 MG_REHOME_DONE);
	assert_int_equal(blocker.error, 0);
	assert_int_equal(blocker.pages_examined, 1536);
	assert_int_equal(req.pages_examined, 4);

	assert_int_equal(mg_rehomer_create(&r, topo, &cfg), 0);
	t0 = mg_now_ns();
	assert_int_equal(mg_rehome_submit(r, &blocker), 0);
	assert_true(wait_done(&blocker));
	elapsed = mg_now_ns() - t0;
	assert_int_equal(blocker.pages_examined, 1536);
	assert_true(elapsed >= (1536ull - 512) * 1000000000ull / 2000);
	mg_rehomer_destroy(r);
	for (i = 0; i < 3; i++)
		mg_chunk_free(pools, c[i], 21);
	mg_chunk_free(pools, s, 14);
}

/* Concurrent submitters: nothing lost, no wake-up missed. */
#define SUBMITTERS    3
#define PER_SUBMITTER 200

struct submitter {
	struct mg_rehomer *r;
	struct mg_range *range;
	struct mg_rehome_req req[PER_SUBMITTER];
	pthread_t th;
	int failures; /* submits that did not return 0 */
};

static void *
submit_thread(void *arg)
{
	struct submitter *s = arg;
	struct timespec pause = {0, 20000};
	unsigned i;

	for (i = 0; i < PER_SUBMITTER; i++) {
		s->req[i].ranges = s->range;
		s->req[i].nranges = 1;
		s->req[i].target = i % mg_topology_nnodes(topo);
		if (mg_rehome_submit(s->r, &s->req[i]))
			s->failures++;
		/* Now and then let the rehomer fall asleep. */
		if (i % 16 == 0)
			nanosleep(&pause, NULL);
	}
	return NULL;
}

static void
test_concurrent_submit(void **state)
{
	struct submitter *sub = calloc(SUBMITTERS, sizeof(*sub));
	struct mg_range range;
	struct mg_rehomer *r;
	uint64_t nreq, nex;
	unsigned i, j;
	void *c;

	(void)state;
	assert_non_null(sub);
	assert_int_equal(mg_chunk_alloc(pools, 0, 12, &c), 0);
	memset(c, 7, 4096);
	range = (struct mg_range){c, 4096};
	assert_int_equal(mg_rehomer_create(&r, topo, NULL), 0);
	for (i = 0; i < SUBMITTERS; i++) {
		sub[i].r = r;
		sub[i].range = &range;
		assert_int_equal(pthread_create(&sub[i].th, NULL, submit_thread,
						&sub[i]),
				 0);
	}
	for (i = 0; i < SUBMITTERS; i++)
		assert_int_equal(pthread_join(sub[i].th, NULL), 0);
	for (i = 0; i < SUBMITTERS; i++) {
		assert_int_equal(sub[i].failures, 0);
		/* Bounded: a missed wake-up would leave requests queued. */
		for (j = 0; j < PER_SUBMITTER; j++) {
			assert_true(wait_done(&sub[i].req[j]));
			assert_int_equal(sub[i].req[j].pages_examined, 1);
			assert_int_equal(sub[i].req[j].error, 0);
		}
	}
	mg_rehomer_stats(r, &nreq, &nex, NULL);
	assert_int_equal(nreq, SUBMITTERS * PER_SUBMITTER);
	assert_int_equal(nex, SUBMITTERS * PER_SUBMITTER);
	mg_rehomer_destroy(r);
	mg_chunk_free(pools, c, 12);
	free(sub);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rehome),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_rate_and_double_submit),
		cmocka_unit_test(test_concurrent_submit),
	};

	mg_test_init();
	return cmocka_run_group_tests_name(__FILE__, tests, setup, teardown);
}
