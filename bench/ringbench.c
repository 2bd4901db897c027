/*
 * ringbench - records per second through one channel between two pinned
 * threads, against the raw Concurrency Kit ring it is built on carrying one
 * 16-byte record per slot, both measured in the same run.
 *
 * Each run gives each mode --seconds; the modes alternate run by run so that
 * drift on a noisy machine hits both.  The JSON line reports medians over
 * --runs and every run's figure.  Both producers do the same work per record
 * (write a sequence number and a derived value); both consumers read both
 * words, and with --validate check order and value of every record.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <ck_pr.h>
#include <ck_ring.h>

#include "bench/bench_util.h"
#include "queues/mg_channel.h"

#define K_MUL	      0x9e3779b97f4a7c15ull
#define MAX_RUNS      101
#define RAW_SLOTS_MAX (1u << 30)

struct rec {
	uint64_t seq;
	uint64_t val;
};
_Static_assert(sizeof(struct rec) == 16, "16-byte records");
CK_RING_PROTOTYPE(rec, rec)

struct opts {
	double seconds;
	uint64_t runs, batch, capacity, raw_slots;
	bool validate;
};

struct run {
	const struct opts *o;
	const struct mg_topology *topo;
	struct mg_channel *ch; /* channel mode */
	struct ck_ring raw;    /* raw mode */
	struct rec *raw_buf;
	pthread_barrier_t start;
	/* producer results */
	uint64_t sent, sent_sum;
	/* consumer results */
	uint64_t got, got_sum, errors, ns;
};

static void
pin(const struct mg_topology *topo, unsigned i)
{
	int err = mg_pin_self(
		topo, mg_topology_cpu(topo, i % mg_topology_ncpus(topo)));

	if (err)
		fprintf(stderr, "ringbench: cannot pin: %s\n", strerror(-err));
}

static void *
chan_producer(void *arg)
{
	struct run *r = arg;
	uint32_t batch = (uint32_t)r->o->batch;
	uint64_t seq = 0, sum = 0, deadline, nb = 0;
	struct mg_batch *b;

	pin(r->topo, 0);
	pthread_barrier_wait(&r->start);
	deadline = mg_now_ns() + (uint64_t)(r->o->seconds * 1e9);
	for (;;) {
		struct rec *rec;

		while (!(b = mg_channel_batch_get_spsc(r->ch)))
			ck_pr_stall();
		rec = (struct rec *)(void *)b->data;
		for (uint32_t i = 0; i < batch; i++, seq++) {
			rec[i].seq = seq;
			rec[i].val = seq * K_MUL;
			sum += rec[i].val;
		}
		b->count = batch;
		b->time = 0;
		while (!mg_channel_push_spsc(r->ch, b))
			ck_pr_stall();
		if ((++nb & 15) == 0 && mg_now_ns() >= deadline)
			break;
	}
	while (!mg_channel_mark_spsc(r->ch, MG_TIME_MAX))
		ck_pr_stall();
	r->sent = seq;
	r->sent_sum = sum;
	return NULL;
}

static void *
chan_consumer(void *arg)
{
	struct run *r = arg;
	uint64_t got = 0, sum = 0, errors = 0, t0, t;
	bool validate = r->o->validate;
	struct mg_batch *b;

	pin(r->topo, 1);
	pthread_barrier_wait(&r->start);
	t0 = mg_now_ns();
	for (;;) {
		const struct rec *rec;

		if (!mg_channel_pop_spsc(r->ch, &b, &t)) {
			ck_pr_stall();
			continue;
		}
		if (!b) {
			if (t == MG_TIME_MAX)
				break;
			continue;
		}
		rec = (const struct rec *)(const void *)b->data;
		for (uint32_t i = 0; i < b->count; i++) {
			sum += rec[i].val;
			if (validate)
				errors += rec[i].seq != got + i ||
					  rec[i].val != rec[i].seq * K_MUL;
		}
		got += b->count;
		mg_batch_put_spsc(b);
	}
	r->ns = mg_now_ns() - t0;
	r->got = got;
	r->got_sum = sum;
	r->errors = errors;
	return NULL;
}

static void *
raw_producer(void *arg)
{
	struct run *r = arg;
	uint64_t seq = 0, sum = 0, deadline;
	struct rec rec;

	pin(r->topo, 0);
	pthread_barrier_wait(&r->start);
	deadline = mg_now_ns() + (uint64_t)(r->o->seconds * 1e9);
	for (;;) {
		rec.seq = seq;
		rec.val = seq * K_MUL;
		sum += rec.val;
		while (!ck_ring_enqueue_spsc_rec(&r->raw, r->raw_buf, &rec))
			ck_pr_stall();
		if ((++seq & 4095) == 0 && mg_now_ns() >= deadline)
			break;
	}
	rec.seq = UINT64_MAX;
	while (!ck_ring_enqueue_spsc_rec(&r->raw, r->raw_buf, &rec))
		ck_pr_stall();
	r->sent = seq;
	r->sent_sum = sum;
	return NULL;
}

static void *
raw_consumer(void *arg)
{
	struct run *r = arg;
	uint64_t got = 0, sum = 0, errors = 0, t0;
	bool validate = r->o->validate;
	struct rec rec;

	pin(r->topo, 1);
	pthread_barrier_wait(&r->start);
	t0 = mg_now_ns();
	for (;;) {
		if (!ck_ring_dequeue_spsc_rec(&r->raw, r->raw_buf, &rec)) {
			ck_pr_stall();
			continue;
		}
		if (rec.seq == UINT64_MAX)
			break;
		sum += rec.val;
		if (validate)
			errors += rec.seq != got || rec.val != rec.seq * K_MUL;
		got++;
	}
	r->ns = mg_now_ns() - t0;
	r->got = got;
	r->got_sum = sum;
	r->errors = errors;
	return NULL;
}

/* One timed run of one mode; returns records/s, counts failures. */
static double
run_once(struct run *r, bool raw, uint64_t *bad)
{
	pthread_t p, c;

	pthread_barrier_init(&r->start, NULL, 2);
	if (pthread_create(&c, NULL, raw ? raw_consumer : chan_consumer, r) ||
	    pthread_create(&p, NULL, raw ? raw_producer : chan_producer, r)) {
		fprintf(stderr, "ringbench: cannot create threads\n");
		exit(1);
	}
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	pthread_barrier_destroy(&r->start);
	if (r->got != r->sent || r->got_sum != r->sent_sum || r->errors)
		(*bad)++;
	return (double)r->got / ((double)r->ns / 1e9);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: ringbench [options]\n"
		"Records/s of one megaphone channel between two pinned "
		"threads,\n"
		"against the raw ck_ring with one 16-byte record per slot, in "
		"one run.\n"
		"Threads pin to the first two allowed CPUs (use numactl "
		"--physcpubind).\n"
		"\n"
		"  --seconds S     time per run and mode (default 1)\n"
		"  --runs N        runs per mode; medians are reported "
		"(default 5)\n"
		"  --batch N       records per batch (default 256)\n"
		"  --capacity N    channel ring slots, power of two (default "
		"64)\n"
		"  --raw-slots N   raw ring slots, power of two (default "
		"capacity*batch\n"
		"                  rounded up: the same records of buffering)\n"
		"  --validate      check every record's order and value; exit "
		"1 on error\n"
		"  --help          this text\n"
		"\n"
		"Prints one JSON line on stdout; progress on stderr.\n");
}

static void
parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{"seconds", required_argument, NULL, 's'},
		{"runs", required_argument, NULL, 'r'},
		{"batch", required_argument, NULL, 'b'},
		{"capacity", required_argument, NULL, 'c'},
		{"raw-slots", required_argument, NULL, 'R'},
		{"validate", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const uint32_t batch_max =
		mg_channel_batch_records_max(sizeof(struct rec));
	int c;

	*o = (struct opts){
		.seconds = 1, .runs = 5, .batch = 256, .capacity = 64};
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (bench_parse_double(optarg, 0.001, 3600,
					       &o->seconds))
				bench_bad_usage(argv[0], "bad --seconds '%s'",
						optarg);
			break;
		case 'r':
			if (bench_parse_u64(optarg, 1, MAX_RUNS, &o->runs))
				bench_bad_usage(argv[0], "--runs must be 1..%d",
						MAX_RUNS);
			break;
		case 'b':
			if (bench_parse_u64(optarg, 1, batch_max, &o->batch))
				bench_bad_usage(argv[0],
						"bad --batch '%s' (1..%u "
						"records of %zu bytes)",
						optarg, batch_max,
						sizeof(struct rec));
			break;
		case 'c':
			if (bench_parse_u64(optarg, 2, MG_CHANNEL_CAPACITY_MAX,
					    &o->capacity) ||
			    !mg_is_pow2(o->capacity))
				bench_bad_usage(argv[0],
						"--capacity must be a power of "
						"two in 2..%u",
						MG_CHANNEL_CAPACITY_MAX);
			break;
		case 'R':
			if (bench_parse_u64(optarg, 2, RAW_SLOTS_MAX,
					    &o->raw_slots) ||
			    !mg_is_pow2(o->raw_slots))
				bench_bad_usage(
					argv[0],
					"--raw-slots must be a power of two");
			break;
		case 'v':
			o->validate = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bench_bad_usage(argv[0], "unknown option");
		}
	}
	if (optind < argc)
		bench_bad_usage(argv[0], "unexpected argument '%s'",
				argv[optind]);
	if (!o->raw_slots && o->capacity * o->batch > RAW_SLOTS_MAX)
		bench_bad_usage(argv[0],
				"--capacity x --batch is more than %u raw "
				"ring slots: set --raw-slots",
				RAW_SLOTS_MAX);
	if (!o->raw_slots)
		o->raw_slots = 1ull << mg_log2_ceil(o->capacity * o->batch);
}

int
main(int argc, char **argv)
{
	double chan[MAX_RUNS], raw[MAX_RUNS], ratio[MAX_RUNS];
	double chan_s[MAX_RUNS], raw_s[MAX_RUNS];
	struct mg_channel_config cfg;
	struct mg_topology *topo;
	struct mg_pools *pools;
	struct run r;
	struct opts o;
	uint64_t bad = 0, i;
	int err;

	parse(argc, argv, &o);
	err = mg_topology_create(&topo);
	if (!err)
		err = mg_pools_create(&pools, topo, NULL);
	if (err) {
		fprintf(stderr, "ringbench: set-up failed: %s\n",
			strerror(-err));
		return 1;
	}
	if (mg_topology_ncpus(topo) < 2)
		fprintf(stderr, "ringbench: warning: one allowed CPU, both "
				"threads share it\n");
	cfg = (struct mg_channel_config){.record_size = sizeof(struct rec),
					 .batch_records = (uint32_t)o.batch,
					 .capacity = (uint32_t)o.capacity,
					 .node = 0};
	memset(&r, 0, sizeof(r));
	r.o = &o;
	r.topo = topo;
	r.raw_buf =
		aligned_alloc(MG_CACHE_LINE, sizeof(struct rec) * o.raw_slots);
	if (!r.raw_buf) {
		fprintf(stderr, "ringbench: out of memory\n");
		return 1;
	}
	for (i = 0; i < o.runs; i++) {
		/* A fresh channel per run: the last run closed it (mark MAX). */
		mg_channel_destroy(r.ch);
		err = mg_channel_create(&r.ch, pools, &cfg);
		if (err) {
			fprintf(stderr,
				"ringbench: cannot create the channel: %s\n",
				strerror(-err));
			return 1;
		}
		ck_ring_init(&r.raw, (unsigned)o.raw_slots);
		chan[i] = run_once(&r, false, &bad);
		raw[i] = run_once(&r, true, &bad);
		ratio[i] = chan[i] / raw[i];
		fprintf(stderr,
			"run %llu/%llu: channel %.1f M records/s, raw ck_ring "
			"%.1f M/s, ratio %.1fx\n",
			(unsigned long long)i + 1, (unsigned long long)o.runs,
			chan[i] / 1e6, raw[i] / 1e6, ratio[i]);
	}
	memcpy(chan_s, chan, sizeof(chan));
	memcpy(raw_s, raw, sizeof(raw));
	printf("{\"bench\":\"ringbench\",\"record_bytes\":%zu,\"batch\":%llu,"
	       "\"capacity\":%llu,\"raw_slots\":%llu,\"runs\":%llu,\"seconds\":"
	       "%g,"
	       "\"channel_rps\":%.0f,\"raw_ck_ring_rps\":%.0f,\"ratio\":%.2f",
	       sizeof(struct rec), (unsigned long long)o.batch,
	       (unsigned long long)o.capacity, (unsigned long long)o.raw_slots,
	       (unsigned long long)o.runs, o.seconds,
	       bench_median(chan_s, o.runs), bench_median(raw_s, o.runs),
	       bench_median(ratio, o.runs));
	bench_print_array("channel_rps_runs", chan, o.runs, 0);
	bench_print_array("raw_ck_ring_rps_runs", raw, o.runs, 0);
	if (bad)
		fprintf(stderr,
			"ringbench: %llu runs lost, duplicated or "
			"reordered records\n",
			(unsigned long long)bad);
	printf(",\"validate\":\"%s\"}\n", !o.validate ? "off"
					  : bad	      ? "failed"
						      : "ok");
	fprintf(stderr,
		"\n%-30s %16s\n%-30s %14.1f M\n%-30s %14.1f M\n%-30s %15.1fx\n",
		"median of runs", "records/s", "megaphone channel",
		bench_median(chan_s, o.runs) / 1e6,
		"raw ck_ring (1 record/slot)",
		bench_median(raw_s, o.runs) / 1e6, "channel / raw",
		bench_median(ratio, o.runs));
	free(r.raw_buf);
	mg_channel_destroy(r.ch);
	mg_pools_destroy(pools);
	mg_topology_destroy(topo);
	return bad ? 1 : 0;
}
