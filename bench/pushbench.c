/*
 * pushbench - what pushing a record into a dataflow costs the application.
 *
 * One producer thread, pinned to a CPU the workers do not use when there is
 * one, pushes --records 16-byte records into an application input whose
 * records go to a trivial operator (a sink that counts them).  Every 1024
 * records it moves to the next logical time and promises the previous one
 * over (mg_producer_advance: a flush and a mark), as a real producer does.
 * Three ways of pushing, measured in the same run, alternating run by run:
 *
 *   push    mg_push(), one record per call, retried while the path is full;
 *   burst   mg_push_burst() of --burst records, retried while full;
 *   wait    mg_push_wait() of --burst records (sleeps while full).
 * The two retrying ways spin, or with --yield call sched_yield() between
 * tries: a polite poller, for a producer that shares a CPU with a worker.
 *
 * Per mode: the producer's ns per record (its wall time from the first push
 * to the return of mg_producer_close, over the records), and end to end
 * records/s (until join: every record counted by the sink).  With one
 * worker the figure is bounded by the worker draining the path, so it is
 * the cost of the whole push path at full speed, both sides.  The JSON line
 * gives medians over --runs and every run.  --validate checks the sink saw
 * every record exactly once (count and sum).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "engine/megaphone.h"
#include "numa/mg_base.h"

#define MAX_RUNS 101
#define PER_TIME 1024 /* records per logical time */

enum mode { PUSH, BURST, WAIT, NMODES };
static const char *const mode_name[] = {"push", "burst", "wait"};

struct rec {
	uint64_t seq, val;
};

struct opts {
	uint64_t records, burst, runs, workers, batch, ring;
	bool validate, yield;
};

struct counter {
	_Atomic uint64_t n, sum;
} MG_CACHE_ALIGNED;

struct run {
	const struct opts *o;
	enum mode mode;
	struct mg_producer *p;
	struct counter *seen; /* [W] */
	double push_ns;	      /* producer: per record */
	int err;
};

static void
count(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	struct counter *c = &((struct counter *)ctx)[w];
	const struct rec *r = rec;

	(void)t;
	/* Relaxed load + store: one writer per counter, read after join. */
	atomic_store_explicit(
		&c->n, atomic_load_explicit(&c->n, memory_order_relaxed) + 1,
		memory_order_relaxed);
	atomic_store_explicit(
		&c->sum,
		atomic_load_explicit(&c->sum, memory_order_relaxed) + r->val,
		memory_order_relaxed);
}

static void *
producer_main(void *arg)
{
	struct run *r = arg;
	const struct opts *o = r->o;
	struct rec buf[1024];
	uint64_t i = 0, t0;
	int err = 0;

	bench_pin_nth((unsigned)o->workers);
	t0 = mg_now_ns();
	while (i < o->records && !err) {
		uint64_t t = i / PER_TIME, left = (t + 1) * PER_TIME - i;
		uint32_t n = (uint32_t)(left < o->burst ? left : o->burst);

		if (n > o->records - i)
			n = (uint32_t)(o->records - i);
		for (uint32_t k = 0; k < n; k++)
			buf[k] = (struct rec){i + k,
					      (i + k) * 0x9e3779b97f4a7c15ull};
		switch (r->mode) {
		case PUSH:
			for (uint32_t k = 0; k < n && !err; k++) {
				while ((err = mg_push(r->p, t, &buf[k],
						      sizeof(buf[k]))) ==
				       -EAGAIN)
					if (o->yield)
						sched_yield();
			}
			break;
		case BURST:
			for (uint32_t k = 0; k < n && !err;) {
				int got = mg_push_burst(r->p, t, buf + k,
							sizeof(buf[0]), n - k);

				if (got < 0)
					err = got;
				else if (!got && o->yield)
					sched_yield();
				else
					k += (uint32_t)got;
			}
			break;
		default:
			if (mg_push_wait(r->p, t, buf, sizeof(buf[0]), n,
					 MG_FOREVER) != (int)n)
				err = -EPIPE;
			break;
		}
		i += n;
		if (!err && i % PER_TIME == 0)
			err = mg_producer_advance(r->p, t + 1);
	}
	if (!err)
		err = mg_producer_close(r->p);
	r->push_ns = (double)(mg_now_ns() - t0) / (double)o->records;
	r->err = err;
	return NULL;
}

/* One run of @mode: ns per pushed record, and end-to-end records/s. */
static void
run_once(const struct opts *o, enum mode mode, double *push_ns, double *rate)
{
	struct mg_dataflow_config dc = {
		.workers = (unsigned)o->workers,
		.batch_records = (uint32_t)o->batch,
		.ring_capacity = (uint32_t)o->ring,
		.oversubscribe = true,
	};
	struct run r = {.o = o, .mode = mode};
	struct mg_dataflow *df;
	struct mg_input *in;
	pthread_t t;
	uint64_t t0, n = 0, sum = 0, want = 0;
	int err;

	r.seen = aligned_alloc(MG_CACHE_LINE,
			       sizeof(*r.seen) * (size_t)o->workers);
	if (!r.seen) {
		fprintf(stderr, "pushbench: out of memory\n");
		exit(1);
	}
	memset(r.seen, 0, sizeof(*r.seen) * (size_t)o->workers);
	err = mg_dataflow_create(&df, &dc);
	if (!err)
		mg_sink(df, mg_input(df, sizeof(struct rec), &in), count,
			r.seen);
	if (!err)
		err = mg_dataflow_error(df);
	if (!err)
		err = mg_producer_open(in, 0, &r.p);
	if (!err)
		err = mg_input_close(in); /* the one producer is all */
	if (!err)
		err = mg_dataflow_start(df, NULL, NULL);
	if (err) {
		fprintf(stderr, "pushbench: cannot run: %s\n",
			mg_strerror(err));
		exit(1);
	}
	t0 = mg_now_ns();
	pthread_create(&t, NULL, producer_main, &r);
	pthread_join(t, NULL);
	err = r.err ? r.err : mg_dataflow_join(df, NULL);
	*rate = (double)o->records / ((double)(mg_now_ns() - t0) / 1e9);
	*push_ns = r.push_ns;
	if (err) {
		fprintf(stderr, "pushbench: %s failed: %s\n", mode_name[mode],
			mg_strerror(err));
		exit(1);
	}
	for (uint64_t w = 0; w < o->workers; w++) {
		n += atomic_load(&r.seen[w].n);
		sum += atomic_load(&r.seen[w].sum);
	}
	for (uint64_t i = 0; i < o->records; i++)
		want += i * 0x9e3779b97f4a7c15ull;
	if (o->validate && (n != o->records || sum != want)) {
		fprintf(stderr,
			"pushbench: %s: %llu records arrived of %llu (sum "
			"%s)\n",
			mode_name[mode], (unsigned long long)n,
			(unsigned long long)o->records,
			sum == want ? "right" : "wrong");
		exit(1);
	}
	mg_dataflow_destroy(df);
	free(r.seen);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: pushbench [options]\n"
		"The cost of pushing records into a dataflow: one producer "
		"thread,\n"
		"a trivial operator, mg_push / mg_push_burst / mg_push_wait.\n"
		"\n"
		"  --records N   records per run and way of pushing (default "
		"10M)\n"
		"  --burst N     records per burst call, 1..1024 (default 64)\n"
		"  --runs N      runs, the ways alternating (default 5)\n"
		"  --workers N   workers (default 1)\n"
		"  --batch N     records per batch (default 256)\n"
		"  --ring N      ring slots, a power of two (default 64)\n"
		"  --yield       push and burst: sched_yield() while the path "
		"is full\n"
		"                (default: spin)\n"
		"  --validate    check every record arrived once\n"
		"  --help\n"
		"One JSON line on stdout.  Pin with numactl --physcpubind "
		"(the\n"
		"producer takes the CPU after the workers').\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"records", required_argument, NULL, 'n'},
		{"burst", required_argument, NULL, 'b'},
		{"runs", required_argument, NULL, 'r'},
		{"workers", required_argument, NULL, 'w'},
		{"batch", required_argument, NULL, 'B'},
		{"ring", required_argument, NULL, 'R'},
		{"validate", no_argument, NULL, 'v'},
		{"yield", no_argument, NULL, 'y'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.records = 10000000,
			 .burst = 64,
			 .runs = 5,
			 .workers = 1,
			 .batch = 256,
			 .ring = 64};
	static double ns[NMODES][MAX_RUNS], rate[NMODES][MAX_RUNS];
	double med_ns[NMODES], med_rate[NMODES];
	const char *p = argv[0];
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		uint64_t *v = NULL, lo_ = 1, hi = 0;
		const char *flag = "";

		switch (c) {
		case 'n':
			v = &o.records, hi = 1ull << 40, flag = "records";
			break;
		case 'b':
			v = &o.burst, hi = 1024, flag = "burst";
			break;
		case 'r':
			v = &o.runs, hi = MAX_RUNS, flag = "runs";
			break;
		case 'w':
			v = &o.workers, hi = 256, flag = "workers";
			break;
		case 'B':
			v = &o.batch, hi = 65536, flag = "batch";
			break;
		case 'R':
			v = &o.ring, lo_ = 2, hi = 1u << 15, flag = "ring";
			break;
		case 'v':
			o.validate = true;
			break;
		case 'y':
			o.yield = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (v && bench_parse_u64(optarg, lo_, hi, v))
			bench_bad_usage(p, "bad value '%s' for --%s", optarg,
					flag);
	}
	if (optind < argc)
		bench_bad_usage(p, "unexpected argument '%s'", argv[optind]);
	if (!mg_is_pow2(o.ring))
		bench_bad_usage(p, "--ring must be a power of two");
	fprintf(stderr,
		"pushbench: %llu records x %llu runs, burst %llu, %llu "
		"workers, batch %llu, ring %llu\n",
		(unsigned long long)o.records, (unsigned long long)o.runs,
		(unsigned long long)o.burst, (unsigned long long)o.workers,
		(unsigned long long)o.batch, (unsigned long long)o.ring);
	for (uint64_t i = 0; i < o.runs; i++)
		for (int m = 0; m < NMODES; m++) {
			run_once(&o, (enum mode)m, &ns[m][i], &rate[m][i]);
			fprintf(stderr,
				"pushbench: run %llu %-5s %6.2f ns/record, "
				"%.1f M records/s end to end\n",
				(unsigned long long)i + 1, mode_name[m],
				ns[m][i], rate[m][i] / 1e6);
		}
	printf("{\"bench\":\"pushbench\",\"records\":%llu,\"burst\":%llu,"
	       "\"workers\":%llu,\"runs\":%llu,\"batch\":%llu,\"ring\":%llu,"
	       "\"yield\":%s",
	       (unsigned long long)o.records, (unsigned long long)o.burst,
	       (unsigned long long)o.workers, (unsigned long long)o.runs,
	       (unsigned long long)o.batch, (unsigned long long)o.ring,
	       o.yield ? "true" : "false");
	for (int m = 0; m < NMODES; m++) {
		double a[MAX_RUNS], b[MAX_RUNS];

		memcpy(a, ns[m], sizeof(a));
		memcpy(b, rate[m], sizeof(b));
		med_ns[m] = bench_median(a, o.runs);
		med_rate[m] = bench_median(b, o.runs);
		printf(",\"%s\":{\"ns_per_record\":%.2f,\"records_per_s\":%.0f,"
		       "\"runs_ns\":[",
		       mode_name[m], med_ns[m], med_rate[m]);
		for (uint64_t i = 0; i < o.runs; i++)
			printf("%s%.2f", i ? "," : "", ns[m][i]);
		printf("]}");
	}
	printf(",\"validate\":\"%s\"}\n", o.validate ? "ok" : "off");
	return 0;
}
