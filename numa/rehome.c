/*
 * rehome.c - background re-homing of pages (move_pages) after a handoff.
 *
 * Protocol.  Any thread submits a request with one wait-free wfcqueue
 * enqueue; one background thread dequeues (__cds_wfcq_dequeue_blocking: it is
 * the only dequeuer, so the queue's lock is not needed and the lock-less head
 * is used), works through the request's ranges and publishes the results
 * with a release store of state = MG_REHOME_DONE.  A request's state:
 *
 *   IDLE/DONE --submit (CAS, R1)--> QUEUED --rehomer (A1 ... R2)--> DONE
 *
 * The CAS is what refuses a request that is already queued; after R2 the
 * rehomer never touches the request again, so the caller may reuse or free
 * it as soon as it reads DONE (acquire, A2 in the caller).
 *
 * Sleeping.  When the queue is empty the thread sleeps on a futex word
 * `sleeping`.  Lost wake-ups are excluded Dekker style:
 *   rehomer:   sleeping = 1; fence F1; if queue empty: futex_wait(1)
 *   submitter: enqueue;      fence F2; if sleeping: sleeping = 0; futex_wake
 * With both seq_cst fences, either the rehomer sees the node or the
 * submitter sees sleeping == 1 (and then futex_wait returns at once because
 * the word is no longer 1, or is woken).  A submitter thus makes at most one
 * FUTEX_WAKE system call, only when the rehomer is idle; it never blocks.
 * The queue's own accesses are liburcu's (word-sized volatile loads and an
 * atomic xchg), which the fences order like relaxed atomics on every target
 * liburcu supports.
 *
 * Work.  Each range is processed in batches of `batch` pages: one
 * move_pages(0, n, pages, NULL, status, 0) query finds each page's node;
 * pages present on a node other than the target's memory node are moved with
 * one move_pages(..., MPOL_MF_MOVE) call.  Pages not present (never touched)
 * or not movable as such (the shared zero page) are examined and left alone.
 * Without NUMA (numa_available() < 0) pages are only counted.
 *
 * Rate.  Every examined page costs one token; tokens accrue at
 * pages_per_sec with a bucket of one batch, implemented as GCRA: `tat` is
 * the theoretical arrival time of the next page, and the thread sleeps
 * whenever tat runs more than one batch ahead of the clock.  A batch is
 * pages_per_sec / 64 pages (1..MAX_BATCH), so a throttled rehomer wakes
 * about 64 times a second.
 */
#define _LGPL_SOURCE /* inline wfcqueue: submit is one xchg and one store */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <numa.h>
#include <numaif.h>

#include "numa/mg_numa.h"

#define NSEC_PER_SEC	      1000000000ull
#define DEFAULT_PAGES_PER_SEC 262144ull
#define MAX_BATCH	      512u

struct mg_rehomer {
	/* Read-only after mg_rehomer_create(). */
	const struct mg_topology *topo;
	uint64_t pages_per_sec;
	unsigned batch;
	bool numa;
	pthread_t thread;

	/* Written by every submitter (xchg). */
	MG_CACHE_ALIGNED struct cds_wfcq_tail tail;

	/* Written by the rehomer around sleeps, and by a waking submitter. */
	MG_CACHE_ALIGNED _Atomic uint32_t sleeping;
	_Atomic bool stop; /* written once, by mg_rehomer_destroy() */

	/* Rehomer thread only, except the totals (read by mg_rehomer_stats). */
	MG_CACHE_ALIGNED struct __cds_wfcq_head head;
	_Atomic uint64_t nrequests;
	_Atomic uint64_t nexamined;
	_Atomic uint64_t nmoved;
	uint64_t tat_ns;
	void *pages[MAX_BATCH];
	int nodes[MAX_BATCH];
	int status[MAX_BATCH];
};

_Static_assert(offsetof(struct mg_rehomer, sleeping) -
			       offsetof(struct mg_rehomer, tail) >=
		       MG_CACHE_LINE,
	       "the wake word is not on the enqueuers' line");
_Static_assert(offsetof(struct mg_rehomer, head) -
			       offsetof(struct mg_rehomer, sleeping) >=
		       MG_CACHE_LINE,
	       "the dequeuer's line is separate");
/* Wake the rehomer if it sleeps or is about to. */
static void
wake(struct mg_rehomer *r)
{
	/*
	 * Relaxed: F2 (or the fence in destroy) already ordered this after the
	 * enqueue; the load keeps busy-time submits off the line's write path.
	 */
	if (atomic_load_explicit(&r->sleeping, memory_order_relaxed) &&
	    atomic_exchange_explicit(&r->sleeping, 0, memory_order_relaxed))
		mg_futex_wake(&r->sleeping, 1);
}

/* Sleep until tokens for @n more pages have accrued (GCRA); once
 * mg_rehomer_destroy() was called, the queue drains without a limit. */
static void
throttle(struct mg_rehomer *r, unsigned n)
{
	uint64_t cost = (uint64_t)n * NSEC_PER_SEC / r->pages_per_sec;
	uint64_t tau = (uint64_t)r->batch * NSEC_PER_SEC / r->pages_per_sec;
	uint64_t now = mg_now_ns(), until;
	struct timespec ts;

	/* Relaxed: a late look only costs one more sleep. */
	if (atomic_load_explicit(&r->stop, memory_order_relaxed))
		return;
	if (r->tat_ns < now)
		r->tat_ns = now;
	r->tat_ns += cost;
	if (r->tat_ns <= now + tau)
		return;
	until = r->tat_ns - tau;
	ts.tv_sec = (time_t)(until / NSEC_PER_SEC);
	ts.tv_nsec = (long)(until % NSEC_PER_SEC);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

/*
 * Examine @n pages from @addr and move those not on @target.
 * Return: 0 (per-page failures go to *@err if it is still 0), or the -errno
 * of a failed move_pages() call, which ends the request.
 */
static int
rehome_batch(struct mg_rehomer *r, char *addr, unsigned n, int target,
	     uint64_t *moved, int *err)
{
	unsigned i, m = 0;
	long rc;

	if (!r->numa)
		return 0;
	for (i = 0; i < n; i++)
		r->pages[i] = addr + (size_t)i * MG_PAGE_SIZE;
	if (move_pages(0, n, r->pages, NULL, r->status, 0) < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		/* < 0: not present (-ENOENT) or not a movable page. */
		if (r->status[i] >= 0 && r->status[i] != target) {
			r->pages[m] = r->pages[i];
			r->nodes[m] = target;
			m++;
		}
	}
	if (m == 0)
		return 0;
	/* > 0 counts pages left behind; the status array says which. */
	rc = move_pages(0, m, r->pages, r->nodes, r->status, MPOL_MF_MOVE);
	if (rc < 0)
		return -errno;
	for (i = 0; i < m; i++) {
		if (r->status[i] == target)
			(*moved)++;
		else if (r->status[i] == -ENOENT || r->status[i] == -EFAULT)
			continue; /* gone meanwhile, or the zero page */
		else if (!*err)
			*err = r->status[i] < 0 ? r->status[i] : -EBUSY;
	}
	return 0;
}

static void
process(struct mg_rehomer *r, struct mg_rehome_req *req)
{
	uint64_t examined = 0, moved = 0;
	int target, state, err = 0, rc = 0;
	unsigned k;

	/*
	 * ORDER(rehome.A1): pairs with rehome.R1 in mg_rehome_submit(); without it the
	 * ranges, nranges and target written before submit might not be
	 * visible here (C11 does not see liburcu's barriers).
	 */
	state = atomic_load_explicit(&req->state, memory_order_acquire);
	MG_ASSERT(state == MG_REHOME_QUEUED);
	(void)state;
	target = mg_topology_mem_node(r->topo, req->target);
	for (k = 0; k < req->nranges && !rc; k++) {
		char *addr = req->ranges[k].addr;
		size_t left = req->ranges[k].bytes >> MG_PAGE_SHIFT;

		while (left && !rc) {
			unsigned n =
				left < r->batch ? (unsigned)left : r->batch;

			throttle(r, n);
			rc = rehome_batch(r, addr, n, target, &moved, &err);
			if (rc)
				break;
			examined += n;
			addr += (size_t)n * MG_PAGE_SIZE;
			left -= n;
		}
	}
	req->pages_examined = examined;
	req->pages_moved = moved;
	req->error = rc ? rc : err;
	/*
	 * Relaxed: single writer; a reader wanting totals that include this
	 * request acquires its DONE (R2) first.
	 */
	atomic_fetch_add_explicit(&r->nrequests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->nexamined, examined,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&r->nmoved, moved, memory_order_relaxed);
	/*
	 * ORDER(rehome.R2): pairs with the caller's acquire load of state (rehome.A2);
	 * without it the caller could read the results (or reuse the request)
	 * before our writes above.  The request is the caller's from here on.
	 */
	atomic_store_explicit(&req->state, MG_REHOME_DONE,
			      memory_order_release);
}

/*
 * The queue's own accesses, hidden from ThreadSanitizer: liburcu's volatile
 * loads and stores, which TSan takes for plain accesses racing with each
 * other, are ordered by its xchg (invisible to TSan) and the fences F1/F2.
 * What a request carries is ordered by its state (R1/A1), which TSan sees.
 */
static void
enqueue(struct mg_rehomer *r, struct mg_rehome_req *req)
{
	MG_TSAN_IGNORE_BEGIN();
	cds_wfcq_node_init(&req->qnode);
	cds_wfcq_enqueue(&r->head, &r->tail, &req->qnode);
	MG_TSAN_IGNORE_END();
}

static struct cds_wfcq_node *
dequeue(struct mg_rehomer *r)
{
	struct cds_wfcq_node *qn;

	MG_TSAN_IGNORE_BEGIN();
	qn = __cds_wfcq_dequeue_blocking(&r->head, &r->tail);
	MG_TSAN_IGNORE_END();
	return qn;
}

static bool
queue_empty(struct mg_rehomer *r)
{
	bool empty;

	MG_TSAN_IGNORE_BEGIN();
	empty = cds_wfcq_empty(&r->head, &r->tail);
	MG_TSAN_IGNORE_END();
	return empty;
}

/* caa_container_of() without its alignment-raising char * cast. */
static struct mg_rehome_req *
req_of(struct cds_wfcq_node *qn)
{
	return (void *)((char *)qn - offsetof(struct mg_rehome_req, qnode));
}

static void
drain(struct mg_rehomer *r)
{
	struct cds_wfcq_node *qn;

	while ((qn = dequeue(r)))
		process(r, req_of(qn));
}

static void *
rehomer_main(void *arg)
{
	struct mg_rehomer *r = arg;

	for (;;) {
		drain(r);
		/*
		 * ORDER(rehome.A3): pairs with rehome.R3 in mg_rehomer_destroy(); every
		 * submit happened before destroy, so after seeing stop one
		 * more drain finds every request.
		 */
		if (atomic_load_explicit(&r->stop, memory_order_acquire)) {
			drain(r);
			return NULL;
		}
		/* Relaxed: F1 orders it before the emptiness check. */
		atomic_store_explicit(&r->sleeping, 1, memory_order_relaxed);
		/*
		 * ORDER(rehome.F1): pairs with rehome.F2 in mg_rehome_submit() and the fence
		 * in mg_rehomer_destroy(); without it the check below could
		 * run before the store above is visible, a submitter could
		 * then miss sleeping == 1 and we would sleep on a non-empty
		 * queue.
		 */
		atomic_thread_fence(memory_order_seq_cst);
		if (queue_empty(r) &&
		    !atomic_load_explicit(&r->stop, memory_order_relaxed))
			mg_futex_wait(&r->sleeping, 1, UINT64_MAX);
		/* Relaxed: only saves submitters a needless wake call. */
		atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
	}
}

int
mg_rehomer_create(struct mg_rehomer **out, const struct mg_topology *topo,
		  const struct mg_rehomer_config *cfg)
{
	sigset_t all, old;
	struct mg_rehomer *r;
	uint64_t pps;
	int err;

	r = mg_calloc_lines(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pps = cfg && cfg->pages_per_sec ? cfg->pages_per_sec
					: DEFAULT_PAGES_PER_SEC;
	r->topo = topo;
	r->pages_per_sec = pps;
	r->batch = pps / 64 >= MAX_BATCH ? MAX_BATCH : (unsigned)(pps / 64);
	if (r->batch == 0)
		r->batch = 1;
	r->numa = numa_available() >= 0;
	__cds_wfcq_init(&r->head, &r->tail);
	atomic_init(&r->sleeping, 0);
	atomic_init(&r->stop, false);
	atomic_init(&r->nrequests, 0);
	atomic_init(&r->nexamined, 0);
	atomic_init(&r->nmoved, 0);

	/* The thread inherits a full signal mask: signals go elsewhere. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&r->thread, NULL, rehomer_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		free(r);
		return -err;
	}
	(void)pthread_setname_np(r->thread, "mg-rehome");
	*out = r;
	return 0;
}

void
mg_rehomer_destroy(struct mg_rehomer *r)
{
	if (!r)
		return;
	/*
	 * ORDER(rehome.R3): pairs with rehome.A3 in rehomer_main(); publishes every
	 * enqueue that happened before this call.
	 */
	atomic_store_explicit(&r->stop, true, memory_order_release);
	/* Pairs with F1 like F2: the rehomer sees stop or we see it asleep. */
	atomic_thread_fence(memory_order_seq_cst);
	wake(r);
	pthread_join(r->thread, NULL);
	free(r);
}

int
mg_rehome_submit(struct mg_rehomer *r, struct mg_rehome_req *req)
{
	int s;
	unsigned k;

	if (req->target >= mg_topology_nnodes(r->topo))
		return -EINVAL;
	if (req->nranges && !req->ranges)
		return -EINVAL;
	for (k = 0; k < req->nranges; k++) {
		uintptr_t a = (uintptr_t)req->ranges[k].addr;
		size_t b = req->ranges[k].bytes;

		if ((a | b) & (MG_PAGE_SIZE - 1) || a + b < a)
			return -EINVAL;
	}
	/* Relaxed: only a first guess; the CAS decides. */
	s = atomic_load_explicit(&req->state, memory_order_relaxed);
	do {
		if (s == MG_REHOME_QUEUED)
			return -EINVAL;
		/*
		 * ORDER(rehome.R1): the release half pairs with rehome.A1 in process(): the
		 * request's fields are visible to the rehomer.  The acquire
		 * half pairs with rehome.R2 of the previous run, so the rehomer's old
		 * result writes cannot race with the next run's.
		 */
	} while (!atomic_compare_exchange_weak_explicit(
		&req->state, &s, MG_REHOME_QUEUED, memory_order_acq_rel,
		memory_order_relaxed));
	enqueue(r, req);
	/*
	 * ORDER(rehome.F2): pairs with rehome.F1 in rehomer_main(); without it the load of
	 * sleeping in wake() could pass the enqueue, and a rehomer that
	 * checked the queue just before our enqueue would sleep on it.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	wake(r);
	return 0;
}

void
mg_rehomer_stats(const struct mg_rehomer *r, uint64_t *requests,
		 uint64_t *pages_examined, uint64_t *pages_moved)
{
	/* Relaxed: a snapshot; see process(). */
	if (requests)
		*requests = atomic_load_explicit(&r->nrequests,
						 memory_order_relaxed);
	if (pages_examined)
		*pages_examined = atomic_load_explicit(&r->nexamined,
						       memory_order_relaxed);
	if (pages_moved)
		*pages_moved =
			atomic_load_explicit(&r->nmoved, memory_order_relaxed);
}
