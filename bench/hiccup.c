/*
 * hiccup - how long this machine takes a CPU away from a busy thread.
 *
 * A latency benchmark cannot be quieter than the machine it runs on: a
 * worker that loses its CPU for 20 ms shows a 20 ms spike whatever the
 * engine does.  hiccup pins one busy thread to each CPU the process may run
 * on (numactl decides, as for the benchmarks) and has each read the clock in
 * a tight loop; a gap between two readings is time the thread did not run.
 * It reports per run the longest gap, how many gaps exceed 1, 5 and 20 ms,
 * the share of CPU time lost in gaps over 1 ms, and how many 250 ms windows
 * (the benchmarks' latency windows) saw a gap over 5 ms on some CPU.  Run it
 * just before or after a benchmark, never alongside: it takes every CPU.
 *
 * A CPU can also run slow without a gap: a vCPU whose host core another
 * guest shares does less per second while it runs.  So each thread counts
 * its clock readings, and a run reports every CPU's rate (readings per
 * microsecond) and the slowest over the fastest; pinned workers that
 * exchange records all go at the slowest one's pace (the others wait for
 * its share).  (Until 2026-12-06 each thread counted into its probe's
 * struct, which shares a cache line with the next one's: with both vCPUs
 * busy the counters' line bounced between them, and the development VM
 * read 6-22 readings a us and ratios of 0.5-1 where it reads 32-36 and
 * 0.95-1.0 now, the same as one thread alone.)
 *
 * It also says whether the kernel's DAMON monitor (kdamond) is sampling
 * memory: on the development VM it does so every 500 ms, and a sample
 * stalls the threads of a process with a large working set for 4-8 ms.
 *
 * --contention asks what the CPUs are worth together: three loops -- the
 * clock reads above, an ALU loop (xorshift) and independent random reads
 * in a 64 MiB buffer of the thread's own -- each run on every CPU alone,
 * then on all at once; it reports each loop's rate per CPU both ways and
 * how many CPUs' worth all of them do together (the sum of the rates
 * together over the mean rate alone).  On the development VM (2026-12-06,
 * 5 runs): the clock and ALU loops 1.99 of 2 (medians), the random reads
 * 1.64 (1.49-2.21): two workers whose records miss the cache are worth
 * less than twice one.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "engine/megaphone.h"
#include "numa/mg_numa.h"

#define WINDOW_NS   250000000ull
#define MS	    1000000ull
#define MAX_SECONDS 3600

struct probe {
	const struct mg_topology *topo;
	unsigned i; /* which CPU of the topology */
	uint64_t ns;
	pthread_barrier_t *start;
	uint8_t *bad; /* [windows]: a gap over 5 ms ended in the window */
	/* results */
	uint64_t max_gap, over1, over5, over20, lost_ns, reads;
	int pin_err;
};

struct result {
	uint64_t max_gap, over1, over5, over20, lost_ns, bad_windows;
	double *speed; /* [ncpus]: clock readings per us */
};

static void *
probe_main(void *arg)
{
	struct probe *p = arg;
	uint64_t t0, prev, now, reads = 0;

	p->pin_err = mg_pin_self(p->topo, mg_topology_cpu(p->topo, p->i));
	pthread_barrier_wait(p->start);
	t0 = prev = mg_now_ns();
	while ((now = mg_now_ns()) - t0 < p->ns) {
		uint64_t gap = now - prev;

		prev = now;
		reads++; /* not p->reads: the probes share cache lines */
		if (gap <= MS)
			continue;
		p->max_gap = gap > p->max_gap ? gap : p->max_gap;
		p->over1++;
		p->over5 += gap > 5 * MS;
		p->over20 += gap > 20 * MS;
		p->lost_ns += gap;
		if (gap > 5 * MS)
			p->bad[(now - t0) / WINDOW_NS] = 1;
	}
	p->reads = reads;
	return NULL;
}

/* Say that the thread for CPU @i of @topo could not pin itself (@err);
 * return @err. */
static int
pin_failed(const struct mg_topology *topo, unsigned i, int err)
{
	fprintf(stderr, "hiccup: cannot pin to CPU %d: %s\n",
		mg_topology_cpu(topo, i), mg_strerror(err));
	return err;
}

/* One run on every CPU of @topo.  Return: 0, or -errno (message printed). */
static int
run_once(const struct mg_topology *topo, double seconds, struct result *res)
{
	unsigned n = mg_topology_ncpus(topo), i;
	uint64_t ns = (uint64_t)(seconds * 1e9), nwin = ns / WINDOW_NS + 1, w;
	struct probe *p = calloc(n, sizeof(*p));
	pthread_t *t = calloc(n, sizeof(*t));
	uint8_t *bad = calloc((size_t)n * nwin, 1);
	pthread_barrier_t start;
	unsigned started = 0;
	int err = 0;

	if (!p || !t || !bad) {
		err = -ENOMEM;
		goto out;
	}
	pthread_barrier_init(&start, NULL, n);
	for (i = 0; i < n; i++) {
		p[i] = (struct probe){.topo = topo,
				      .i = i,
				      .ns = ns,
				      .start = &start,
				      .bad = bad + (size_t)i * nwin};
		if (pthread_create(&t[i], NULL, probe_main, &p[i]))
			break;
		started++;
	}
	if (started < n) { /* the started ones wait at the barrier: a bug */
		fprintf(stderr, "hiccup: cannot start %u threads\n", n);
		exit(1);
	}
	*res = (struct result){.speed = res->speed};
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (p[i].pin_err && !err)
			err = pin_failed(topo, i, p[i].pin_err);
		res->max_gap = p[i].max_gap > res->max_gap ? p[i].max_gap
							   : res->max_gap;
		res->over1 += p[i].over1;
		res->over5 += p[i].over5;
		res->over20 += p[i].over20;
		res->lost_ns += p[i].lost_ns;
		res->speed[i] = (double)p[i].reads / ((double)ns / 1e3);
	}
	for (w = 0; w < nwin; w++) {
		uint8_t any = 0;

		for (i = 0; i < n; i++)
			any |= bad[(size_t)i * nwin + w];
		res->bad_windows += any;
	}
	pthread_barrier_destroy(&start);
out:
	if (err == -ENOMEM)
		fprintf(stderr, "hiccup: out of memory\n");
	free(p);
	free(t);
	free(bad);
	return err;
}

/* ---- --contention --------------------------------------------------------- */

enum loop { LOOP_CLOCK, LOOP_ALU, LOOP_READS, NLOOPS };

static const char *const loop_name[NLOOPS] = {"clock", "alu", "reads"};

#define READS_BYTES (64ull << 20)
#define CHUNK	    4096u /* iterations between clock checks */

struct worker_loop {
	const struct mg_topology *topo;
	unsigned i; /* which CPU of the topology */
	enum loop kind;
	uint64_t ns;
	pthread_barrier_t *start;
	uint64_t *buf; /* LOOP_READS: READS_BYTES of the thread's own */
	uint64_t ops, sink;
	int pin_err;
};

/* xorshift64 */
static inline uint64_t
next_x(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	return x ^ (x << 17);
}

static void *
loop_main(void *arg)
{
	struct worker_loop *l = arg;
	uint64_t n = READS_BYTES / sizeof(uint64_t), x = 88172645463325252ull,
		 sum = 0, t0;

	l->pin_err = mg_pin_self(l->topo, mg_topology_cpu(l->topo, l->i));
	if (l->kind == LOOP_READS) /* touched here: pages on this CPU's node */
		for (uint64_t j = 0; j < n; j++)
			l->buf[j] = j * 2654435761u;
	pthread_barrier_wait(l->start);
	t0 = mg_now_ns();
	while (mg_now_ns() - t0 < l->ns) {
		for (unsigned k = 0; k < CHUNK; k++) {
			switch (l->kind) {
			case LOOP_CLOCK:
				sum += mg_now_ns();
				break;
			case LOOP_ALU:
				x = next_x(x);
				sum += x;
				break;
			default:
				x = next_x(x);
				sum += l->buf[x % n];
			}
		}
		l->ops += CHUNK;
	}
	l->sink = sum; /* so the loops are not optimized away */
	return NULL;
}

/* Run loop @kind for @ns on the CPUs of @topo whose index has its bit in
 * @mask, all at once; each one's rate (operations per us) into @rate[i].
 * Return: 0, or -errno (message printed). */
static int
run_loops(const struct mg_topology *topo, enum loop kind, uint64_t ns,
	  uint64_t mask, double *rate)
{
	unsigned n = mg_topology_ncpus(topo), i, m = 0, started = 0;
	struct worker_loop *l = calloc(n, sizeof(*l));
	pthread_t *t = calloc(n, sizeof(*t));
	pthread_barrier_t start;
	int err = 0;

	for (i = 0; i < n; i++)
		m += (unsigned)(mask >> i & 1);
	if (!l || !t)
		err = -ENOMEM;
	for (i = 0; !err && i < n; i++)
		if (mask >> i & 1 && kind == LOOP_READS &&
		    !(l[i].buf = malloc(READS_BYTES)))
			err = -ENOMEM;
	if (!err)
		pthread_barrier_init(&start, NULL, m);
	for (i = 0; !err && i < n; i++) {
		if (!(mask >> i & 1))
			continue;
		l[i].topo = topo;
		l[i].i = i;
		l[i].kind = kind;
		l[i].ns = ns;
		l[i].start = &start;
		if (pthread_create(&t[i], NULL, loop_main, &l[i])) {
			fprintf(stderr, "hiccup: cannot start %u threads\n", m);
			exit(1); /* the started ones wait at the barrier */
		}
		started++;
	}
	for (i = 0; started && i < n; i++) {
		if (!(mask >> i & 1))
			continue;
		pthread_join(t[i], NULL);
		if (l[i].pin_err && !err)
			err = pin_failed(topo, i, l[i].pin_err);
		rate[i] = (double)l[i].ops / ((double)ns / 1e3);
	}
	if (started)
		pthread_barrier_destroy(&start);
	if (err == -ENOMEM)
		fprintf(stderr, "hiccup: out of memory\n");
	for (i = 0; l && i < n; i++)
		free(l[i].buf);
	free(l);
	free(t);
	return err;
}

/* --contention: every loop on each CPU alone, then on all at once; one
 * JSON line on stdout once all are measured.  Return: the exit status. */
static int
contention(const struct mg_topology *topo, double seconds)
{
	unsigned n = mg_topology_ncpus(topo), i;
	uint64_t ns = (uint64_t)(seconds * 1e9);
	double alone[NLOOPS][64], together[NLOOPS][64], worth[NLOOPS];

	if (n > 64) {
		fprintf(stderr, "hiccup: --contention takes 64 CPUs at most "
				"(pin it with numactl)\n");
		return 1;
	}
	for (int k = 0; k < NLOOPS; k++) {
		double sum = 0, mean = 0;

		for (i = 0; i < n; i++)
			if (run_loops(topo, (enum loop)k, ns, 1ull << i,
				      alone[k]))
				return 1;
		if (run_loops(topo, (enum loop)k, ns,
			      n == 64 ? ~0ull : (1ull << n) - 1, together[k]))
			return 1;
		for (i = 0; i < n; i++) {
			sum += together[k][i];
			mean += alone[k][i] / n;
		}
		worth[k] = mean > 0 ? sum / mean : 0;
		fprintf(stderr,
			"hiccup: %-5s loop: %u CPUs together do %.2f CPUs' "
			"worth\n",
			loop_name[k], n, worth[k]);
	}
	printf("{\"bench\":\"hiccup\",\"mode\":\"contention\",\"cpus\":%u,"
	       "\"seconds\":%.2f,\"loops\":[",
	       n, seconds);
	for (int k = 0; k < NLOOPS; k++) {
		printf("%s{\"loop\":\"%s\"", k ? "," : "", loop_name[k]);
		bench_print_array("alone_per_us", alone[k], n, 2);
		bench_print_array("together_per_us", together[k], n, 2);
		printf(",\"cpus_worth\":%.3f}", worth[k]);
	}
	printf("]}\n");
	return 0;
}

/* The slowest CPU's rate over the fastest's in @res (1: all alike). */
static double
speed_ratio(const struct result *res, unsigned n)
{
	double lo = res->speed[0], hi = res->speed[0];

	for (unsigned i = 1; i < n; i++) {
		lo = res->speed[i] < lo ? res->speed[i] : lo;
		hi = res->speed[i] > hi ? res->speed[i] : hi;
	}
	return hi > 0 ? lo / hi : 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: hiccup [--seconds S] [--runs N] [--contention]\n"
		"How long this machine takes a CPU away from a busy thread:\n"
		"one pinned thread per allowed CPU reads the clock in a tight\n"
		"loop and reports the gaps, and how fast each CPU read it\n"
		"(a vCPU that shares its host core runs slow without gaps).\n"
		"Run it before or after a benchmark, pinned the same way\n"
		"(numactl --physcpubind).\n"
		"\n"
		"  --seconds S   length of one run, 0.01 .. 3600 (default 10)\n"
		"  --runs N      runs, 1 .. 1000 (default 1), each in the "
		"JSON\n"
		"  --contention  instead: what the CPUs are worth together --\n"
		"                clock reads, an ALU loop and random reads in\n"
		"                64 MiB, each on every CPU alone, then on all\n"
		"                at once, S seconds each (default 1)\n"
		"  --help        this text\n"
		"\n"
		"Progress on stderr; one JSON line on stdout.\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"seconds", required_argument, NULL, 's'},
		{"runs", required_argument, NULL, 'r'},
		{"contention", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	double seconds = 0;
	uint64_t runs = 1, r;
	bool contend = false;
	struct mg_topology *topo;
	struct result *res;
	double *speed;
	unsigned n;
	int c, err;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (bench_parse_double(optarg, 0.01, MAX_SECONDS,
					       &seconds))
				bench_bad_usage(argv[0], "bad --seconds '%s'",
						optarg);
			break;
		case 'r':
			if (bench_parse_u64(optarg, 1, 1000, &runs))
				bench_bad_usage(argv[0], "bad --runs '%s'",
						optarg);
			break;
		case 'c':
			contend = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			bench_bad_usage(argv[0], "unknown option");
		}
	}
	if (optind < argc)
		bench_bad_usage(argv[0], "unexpected argument '%s'",
				argv[optind]);
	err = mg_topology_create(&topo);
	if (err) {
		fprintf(stderr, "hiccup: topology: %s\n", mg_strerror(err));
		return 1;
	}
	if (contend) {
		err = contention(topo, seconds ? seconds : 1);
		mg_topology_destroy(topo);
		return err;
	}
	seconds = seconds ? seconds : 10;
	n = mg_topology_ncpus(topo);
	res = calloc(runs, sizeof(*res));
	speed = calloc(runs * n, sizeof(*speed));
	if (!res || !speed) {
		fprintf(stderr, "hiccup: out of memory\n");
		return 1;
	}
	for (r = 0; r < runs; r++) {
		res[r].speed = speed + r * n;
		err = run_once(topo, seconds, &res[r]);
		if (err)
			return 1;
		fprintf(stderr,
			"hiccup: run %llu: max gap %.2f ms, gaps > 1 ms %llu, "
			"> 5 ms %llu, > 20 ms %llu, lost %.2f%% of CPU time, "
			"slowest CPU at %.2f of the fastest\n",
			(unsigned long long)r + 1, (double)res[r].max_gap / 1e6,
			(unsigned long long)res[r].over1,
			(unsigned long long)res[r].over5,
			(unsigned long long)res[r].over20,
			100.0 * (double)res[r].lost_ns / (seconds * 1e9 * n),
			speed_ratio(&res[r], n));
	}
	printf("{\"bench\":\"hiccup\",\"cpus\":%u,\"seconds\":%.2f,"
	       "\"damon\":\"%s\",\"runs\":[",
	       n, seconds, bench_damon_state());
	for (r = 0; r < runs; r++) {
		printf("%s{\"max_gap_us\":%.1f,\"gaps_over_1ms\":%llu,"
		       "\"gaps_over_5ms\":%llu,\"gaps_over_20ms\":%llu,"
		       "\"lost_pct\":%.3f,\"windows_with_5ms_gap\":%llu,"
		       "\"windows\":%llu,\"speed_ratio\":%.3f",
		       r ? "," : "", (double)res[r].max_gap / 1e3,
		       (unsigned long long)res[r].over1,
		       (unsigned long long)res[r].over5,
		       (unsigned long long)res[r].over20,
		       100.0 * (double)res[r].lost_ns / (seconds * 1e9 * n),
		       (unsigned long long)res[r].bad_windows,
		       (unsigned long long)(seconds * 1e9 / WINDOW_NS),
		       speed_ratio(&res[r], n));
		bench_print_array("reads_per_us", res[r].speed, n, 2);
		printf("}");
	}
	printf("]}\n");
	free(speed);
	free(res);
	mg_topology_destroy(topo);
	return 0;
}
