/*
 * s-channel.c - two threads push S_RECORDS records (default 10^8) through
 * one channel with a tiny ring (S_CAPACITY slots, default 4) in batches of
 * random fill (1..S_BATCH records), with timestamps that advance and progress
 * marks between them.  The consumer checks order as it goes and records what
 * it saw; the main thread then asserts: every record arrived exactly once and
 * in order (count, sequence, checksum), no batch came with a time below a
 * mark received before it, and the pool got all its memory back.
 *
 * A loaded or slow machine gets a shorter run, never a failure: after
 * S_SECONDS (default 60) the producer ends the stream at the next batch
 * once it has sent at least S_MIN_RECORDS (default 10^5), and both sides
 * yield while they wait, so they also progress on one CPU shared with
 * other work.
 *
 * Knobs: S_RECORDS, S_MIN_RECORDS, S_SECONDS, S_CAPACITY, S_BATCH, MG_SEED.
 */
#include <pthread.h>
#include <sched.h>

#include "queues/mg_channel.h"
#include "tests/mg_test.h"

struct rec {
	uint64_t seq;
	uint64_t check;
};

struct shared {
	struct mg_channel *ch;
	const struct mg_topology *topo;
	uint64_t records, min_records, deadline_ns;
	uint32_t batch;
	uint64_t seed;
	/* producer's results */
	uint64_t sent, sent_sum, full_pushes, no_batch;
	/* consumer's results */
	uint64_t got, got_sum, order_errors, mark_errors, marks;
};

static uint64_t
check_of(uint64_t seq, uint64_t seed)
{
	uint64_t s = seq ^ seed;

	return mg_test_rand(&s);
}

static void
pin(const struct mg_topology *topo, unsigned i)
{
	unsigned n = mg_topology_ncpus(topo);

	(void)mg_pin_self(topo, mg_topology_cpu(topo, i % n));
}

/* The ring is full: let the consumer run if it shares our CPU. */
static void
full_wait(struct shared *s)
{
	s->full_pushes++;
	sched_yield();
}

static void *
producer(void *arg)
{
	struct shared *s = arg;
	uint64_t rng = s->seed, seq = 0, t = 0;
	struct mg_batch *b = NULL;

	pin(s->topo, 0);
	while (seq < s->records &&
	       (seq < s->min_records || mg_now_ns() < s->deadline_ns)) {
		uint32_t n, i;

		while (!(b = mg_channel_batch_get_spsc(s->ch))) {
			s->no_batch++;
			sched_yield();
		}
		n = 1 + (uint32_t)(mg_test_rand(&rng) % s->batch);
		if (n > s->records - seq)
			n = (uint32_t)(s->records - seq);
		/* A new timestamp every few batches, then a mark for it. */
		if (mg_test_rand(&rng) % 4 == 0) {
			t++;
			while (!mg_channel_mark_spsc(s->ch, t))
				full_wait(s);
		}
		b->time = t;
		for (i = 0; i < n; i++, seq++) {
			struct rec *r = mg_batch_record(b, i);

			r->seq = seq;
			r->check = check_of(seq, s->seed);
			s->sent_sum += r->check;
		}
		b->count = n;
		while (!mg_channel_push_spsc(s->ch, b))
			full_wait(s);
		s->sent += n;
	}
	while (!mg_channel_mark_spsc(s->ch, MG_TIME_MAX))
		full_wait(s);
	return NULL;
}

static void *
consumer(void *arg)
{
	struct shared *s = arg;
	uint64_t expect = 0, t;
	struct mg_batch *b;

	pin(s->topo, 1);
	for (;;) {
		if (!mg_channel_pop_spsc(s->ch, &b, &t)) {
			sched_yield(); /* also progresses on one CPU */
			continue;
		}
		if (!b) {
			s->marks++;
			if (t == MG_TIME_MAX)
				break;
			continue;
		}
		if (b->time < mg_channel_frontier(s->ch))
			s->mark_errors++;
		for (uint32_t i = 0; i < b->count; i++) {
			const struct rec *r = mg_batch_record(b, i);

			if (r->seq != expect)
				s->order_errors++;
			expect = r->seq + 1;
			s->got_sum += r->check;
		}
		s->got += b->count;
		mg_batch_put_spsc(b);
	}
	return NULL;
}

static void
test_stress(void **state)
{
	struct mg_topology *topo;
	struct mg_pools *pools;
	struct mg_channel_config cfg;
	struct shared s = {0};
	pthread_t p, c;
	uint64_t t0;

	(void)state;
	assert_int_equal(mg_topology_create(&topo), 0);
	assert_int_equal(mg_pools_create(&pools, topo, NULL), 0);
	cfg = (struct mg_channel_config){
		.record_size = sizeof(struct rec),
		.batch_records = (uint32_t)mg_test_env_u64("S_BATCH", 64),
		.capacity = (uint32_t)mg_test_env_u64("S_CAPACITY", 4),
		.node = 0,
	};
	assert_int_equal(mg_channel_create(&s.ch, pools, &cfg), 0);
	s.topo = topo;
	s.records = mg_test_env_u64("S_RECORDS", 100000000);
	s.min_records = mg_test_env_u64("S_MIN_RECORDS", 100000);
	s.deadline_ns =
		mg_now_ns() + mg_test_env_u64("S_SECONDS", 60) * 1000000000ull;
	s.batch = cfg.batch_records;
	s.seed = mg_test_seed();

	t0 = mg_now_ns();
	assert_int_equal(pthread_create(&c, NULL, consumer, &s), 0);
	assert_int_equal(pthread_create(&p, NULL, producer, &s), 0);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	printf("# %llu records in %.2f s through a %u-slot ring, batches of "
	       "<= %u; %llu full pushes, %llu waits for a batch, %llu marks\n",
	       (unsigned long long)s.got, (double)(mg_now_ns() - t0) / 1e9,
	       cfg.capacity, cfg.batch_records,
	       (unsigned long long)s.full_pushes,
	       (unsigned long long)s.no_batch, (unsigned long long)s.marks);

	/* all of them, or the least a slow machine must get through */
	assert_true(s.sent == s.records || s.sent >= s.min_records);
	assert_int_equal(s.got, s.sent);
	assert_int_equal(s.got_sum, s.sent_sum);
	assert_int_equal(s.order_errors, 0);
	assert_int_equal(s.mark_errors, 0);
	mg_channel_destroy(s.ch);
	assert_int_equal(mg_pools_bytes_in_use(pools, 0), 0);
	mg_pools_destroy(pools);
	mg_topology_destroy(topo);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress),
	};

	return MG_TEST_RUN(tests);
}
