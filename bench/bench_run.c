/*
 * bench_run.c - the shared harness of the dataflow benchmarks (see
 * bench_run.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_run.h"
#include "bench/bench_util.h"

/* Latency windows kept at most (250 ms each: 72 h). */
#define MAX_WINDOWS (1u << 20)
/* mg_dataflow_config.pool_reserve is a multiple of 2 MiB, at most
 * MG_POOL_RESERVE_MAX (512 GiB - 2 MiB). */
#define POOL_RESERVE_UNIT (1ull << MG_CHUNK_MAX_SHIFT)

/* --validate comes last: the programs continue its text. */
const char bench_opts_help[] =
	"  --workers N        worker threads (default 2)\n"
	"  --rate R           records/s offered in total (default 1M; k, M, G\n"
	"                     suffixes and fractions, e.g. 8.5M)\n"
	"  --duration S       seconds of input (default 10)\n"
	"  --bins K           2^K bins, 4..20 (default 12)\n"
	"  --epoch-us U       timestamp granularity in us, >= 10 "
	"(default 1000)\n"
	"  --ring N           channel ring slots, power of two (default 64)\n"
	"  --batch N          records per batch (default 256; at most "
	"what a\n"
	"                     2 MiB channel chunk holds)\n"
	"  --out DIR          write DIR/timeline.csv, DIR/workers.csv (each\n"
	"                     worker's load), DIR/summary.json and\n"
	"                     DIR/migrations.txt\n"
	"  --migration M      none | all-at-once | fluid | batched | "
	"random |\n"
	"                     PLANFILE (default none).  Strategies move half "
	"the\n"
	"                     bins of half the workers to the other half at\n"
	"                     --migrate-at and back at twice that; random "
	"moves\n"
	"                     1..bins/8 random bins to random other workers,\n"
	"                     all at once, every --migrate-every seconds from\n"
	"                     --migrate-at to the end of the input (choices "
	"from\n"
	"                     --seed); a plan file has explicit steps:\n"
	"                     '<epoch> <bin> <worker> ...' per line\n"
	"  --mode M           handoff | copy: hand the pages over, or "
	"serialize\n"
	"                     and rebuild them as Megaphone does (default "
	"handoff)\n"
	"  --migrate-at S     seconds into the run (default duration / 3)\n"
	"  --migrate-every S  with --migration random: seconds from one "
	"migration\n"
	"                     to the next (default 1)\n"
	"  --gap N            epochs between fluid/batched steps (default 0)\n"
	"  --warmup S         seconds left out of the whole-run latency and "
	"the\n"
	"                     steady-state figures (default 1)\n"
	"  --oversubscribe    allow more workers than CPUs this process may "
	"run on\n"
	"  --pool-reserve B   address space the page pools reserve per node "
	"and\n"
	"                     chunk size: a multiple of 2 MiB below 512 GiB, "
	"with\n"
	"                     suffixes Ki, Mi, Gi, Ti (default: sized "
	"from the\n"
	"                     physical memory and ulimit -v)\n"
	"  --balance B        off | on: a balancer moves bins to even "
	"out the\n"
	"                     workers' load, in --mode handoff or copy; not "
	"with\n"
	"                     --migration (default off)\n"
	"  --balance-interval MS  between its decisions (default "
	"500)\n"
	"  --balance-threshold F  it acts above (1 + F) x the mean "
	"load\n"
	"                     (default 0.2)\n"
	"  --balance-cooldown S   a moved bin stays put this long "
	"(default 5)\n"
	"  --scale LOW:HIGH   with --balance on: park a worker when the "
	"time in\n"
	"                     operators (over the active workers) is below "
	"LOW,\n"
	"                     wake one when busy time is above HIGH (e.g. "
	"0.5:0.95)\n"
	"  --validate         compare every timestamp's output with a "
	"reference\n"
	"                     form of the operators run on the same input\n";

void
bench_opts_defaults(struct bench_opts *o)
{
	*o = (struct bench_opts){.workers = 2,
				 .rate = 1000000,
				 .duration = 10,
				 .bins_log2 = 12,
				 .epoch_us = 1000,
				 .ring = 64,
				 .batch = 256,
				 .warmup = 1,
				 .record_max = MG_RECORD_MAX,
				 .bal = {
					 .interval_ns = 500000000ull,
					 .threshold = 0.2,
					 .cooldown_ns = 5000000000ull,
					 .patience = 2,
				 }};
}

/* Format the reason into @err (may be NULL if @len is 0); return -EINVAL. */
static int __attribute__((format(printf, 3, 4)))
bad(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* --scale "LOW:HIGH", two plain decimal numbers (bench_parse_double()),
 * into @low, @high: 0 < LOW < HIGH <= 1.  Return: 0 or -EINVAL (nothing
 * set). */
static int
parse_scale(const char *arg, double *low, double *high)
{
	const char *colon = arg ? strchr(arg, ':') : NULL;
	char left[64];
	double l, h;

	if (!colon || (size_t)(colon - arg) >= sizeof(left))
		return -EINVAL;
	memcpy(left, arg, (size_t)(colon - arg));
	left[colon - arg] = '\0';
	if (bench_parse_double(left, 0, 1, &l) ||
	    bench_parse_double(colon + 1, 0, 1, &h) || !(l > 0 && l < h))
		return -EINVAL;
	*low = l;
	*high = h;
	return 0;
}

int
bench_opts_set(struct bench_opts *o, int c, const char *arg, char *err,
	       size_t len)
{
	uint64_t u;
	double x, lo;

	switch (c) {
	case 0x100:
		if (bench_parse_u64(arg, 1, 1024, &o->workers))
			return bad(err, len, "bad --workers '%s'", arg);
		return 1;
	case 0x101:
		if (bench_parse_u64(arg, 1, 1000000000ull, &o->rate))
			return bad(err, len, "bad --rate '%s'", arg);
		return 1;
	case 0x102:
		if (bench_parse_double(arg, 0.01, 86400, &o->duration))
			return bad(err, len, "bad --duration '%s'", arg);
		return 1;
	case 0x103:
		if (bench_parse_u64(arg, MG_BINS_LOG2_MIN, MG_BINS_LOG2_MAX,
				    &o->bins_log2))
			return bad(err, len, "--bins must be %d..%d",
				   MG_BINS_LOG2_MIN, MG_BINS_LOG2_MAX);
		return 1;
	case 0x104:
		if (bench_parse_u64(arg, 10, 60000000, &o->epoch_us))
			return bad(err, len, "--epoch-us must be >= 10");
		return 1;
	case 0x105:
		if (bench_parse_u64(arg, 2, MG_CHANNEL_CAPACITY_MAX,
				    &o->ring) ||
		    !mg_is_pow2(o->ring))
			return bad(err, len,
				   "--ring must be a power of two >= 2");
		return 1;
	case 0x106:
		if (bench_parse_u64(arg, 1, MG_BATCH_RECORDS_MAX, &o->batch))
			return bad(err, len, "bad --batch '%s'", arg);
		return 1;
	case 0x107:
		o->out = arg;
		return 1;
	case 0x108:
		o->validate = true;
		return 1;
	case 0x109:
		o->migration = arg;
		o->random_mig = !strcmp(arg, "random");
		if (!strcmp(arg, "none"))
			o->migration = NULL;
		else if (!o->random_mig &&
			 mg_strategy_parse(arg, &o->strategy) &&
			 access(arg, R_OK))
			return bad(err, len,
				   "--migration: '%s' is no strategy and no "
				   "readable plan file",
				   arg);
		return 1;
	case 0x10a:
		if (!strcmp(arg, "handoff"))
			o->mode = MG_HANDOFF;
		else if (!strcmp(arg, "copy"))
			o->mode = MG_COPY;
		else
			return bad(err, len, "--mode must be handoff or copy");
		return 1;
	case 0x10b:
		if (bench_parse_double(arg, 0.001, 86400, &o->migrate_at))
			return bad(err, len, "bad --migrate-at '%s'", arg);
		return 1;
	case 0x10c:
		if (bench_parse_u64(arg, 0, 1000000, &o->gap))
			return bad(err, len, "bad --gap '%s'", arg);
		return 1;
	case 0x10d:
		if (bench_parse_double(arg, 0, 86400, &o->warmup))
			return bad(err, len, "bad --warmup '%s'", arg);
		return 1;
	case 0x10e:
		o->oversubscribe = true;
		return 1;
	case 0x10f:
		if (bench_parse_bytes(arg, 0, MG_POOL_RESERVE_MAX,
				      &o->pool_reserve) ||
		    o->pool_reserve % POOL_RESERVE_UNIT)
			return bad(err, len,
				   "bad --pool-reserve '%s': a multiple of 2 "
				   "MiB below 512 GiB, e.g. 64Gi",
				   arg);
		return 1;
	case 0x110:
		if (bench_parse_double(arg, 0.001, 86400, &o->migrate_every))
			return bad(err, len, "bad --migrate-every '%s'", arg);
		return 1;
	case 0x111:
		if (!arg || (strcmp(arg, "on") && strcmp(arg, "off")))
			return bad(err, len, "--balance must be on or off");
		o->balance = !strcmp(arg, "on");
		return 1;
	case 0x112:
		if (bench_parse_u64(arg, 1, 3600000, &u))
			return bad(err, len,
				   "bad --balance-interval '%s' (milliseconds, "
				   ">= 1)",
				   arg);
		o->bal.interval_ns = u * 1000000ull;
		o->bal_flags = true;
		return 1;
	case 0x113:
		if (bench_parse_double(arg, 0.001, 100, &x))
			return bad(err, len,
				   "bad --balance-threshold '%s' (0.001..100)",
				   arg);
		o->bal.threshold = x;
		o->bal_flags = true;
		return 1;
	case 0x114:
		if (bench_parse_double(arg, 0.001, 86400, &x))
			return bad(err, len,
				   "bad --balance-cooldown '%s' (seconds)",
				   arg);
		o->bal.cooldown_ns = (uint64_t)(x * 1e9);
		o->bal_flags = true;
		return 1;
	case 0x115:
		if (parse_scale(arg, &lo, &x))
			return bad(err, len,
				   "bad --scale '%s' (LOW:HIGH, 0 < LOW < HIGH "
				   "<= 1)",
				   arg);
		o->bal.scale_low = lo;
		o->bal.scale_high = x;
		o->bal_flags = true;
		return 1;
	}
	return 0;
}

/* The CPUs this thread may run on, as the engine counts them; 0 if that
 * cannot be told (the engine will say). */
static unsigned
allowed_cpus(void)
{
	static unsigned ncpus; /* option processing is single-threaded */
	struct mg_topology *topo;

	if (!ncpus && !mg_topology_create(&topo)) {
		ncpus = mg_topology_ncpus(topo);
		mg_topology_destroy(topo);
	}
	return ncpus;
}

int
bench_opts_check(struct bench_opts *o, char *err, size_t len)
{
	uint32_t rec = o->record_max, max;
	unsigned ncpus;
	int rc;

	if (rec == 0 || rec > MG_RECORD_MAX)
		rec = MG_RECORD_MAX;
	max = mg_channel_batch_records_max(rec);
	if (o->batch > max)
		return bad(err, len,
			   "--batch %llu: a channel batch holds at most %u "
			   "records of %u bytes",
			   (unsigned long long)o->batch, max, rec);
	ncpus = allowed_cpus();
	if (!o->oversubscribe && ncpus && o->workers > ncpus)
		return bad(err, len,
			   "--workers %llu: more than the %u CPUs this process "
			   "may run on (--oversubscribe allows it)",
			   (unsigned long long)o->workers, ncpus);
	if (!o->migrate_at)
		o->migrate_at = o->duration / 3;
	if (o->warmup >= o->duration)
		return bad(err, len, "--warmup must be below --duration");
	mg_plan_destroy(o->plan);
	o->plan = NULL;
	if (o->balance && o->migration)
		return bad(err, len,
			   "--balance and --migration both move bins: "
			   "choose one");
	if (o->bal_flags && !o->balance)
		return bad(err, len, "--balance-* flags need --balance on");
	if (o->migrate_every && !o->random_mig)
		return bad(err, len,
			   "--migrate-every needs --migration random");
	if (o->random_mig) {
		if (o->workers < 2)
			return bad(err, len,
				   "--migration random moves bins between "
				   "workers: it needs --workers 2 or more");
		if (o->migrate_at >= o->duration)
			return bad(err, len,
				   "--migrate-at must be below --duration");
		o->strategy = MG_ALL_AT_ONCE;
		return 0;
	}
	if (o->migration && 2 * o->migrate_at >= o->duration)
		return bad(err, len, "--migrate-at must be below duration / 2");
	if (!o->migration || !mg_strategy_parse(o->migration, &o->strategy))
		return 0;
	/* the router starts with bin b on worker b mod W (NULL) */
	rc = mg_plan_parse_file(&o->plan, o->migration, 1u << o->bins_log2,
				(uint32_t)o->workers, NULL, err, len);
	if (rc)
		return rc;
	if (!o->plan->nsteps) { /* the engine refuses an empty plan */
		mg_plan_destroy(o->plan);
		o->plan = NULL;
		return bad(err, len,
			   "%s: moves no bin: every move is to the bin's "
			   "owner at that point (bin b starts on worker b mod "
			   "%llu)",
			   o->migration, (unsigned long long)o->workers);
	}
	return 0;
}

bool
bench_opts_parse(struct bench_opts *o, int c, const char *arg, const char *prog)
{
	char err[BENCH_ERR_MAX];
	int rc = bench_opts_set(o, c, arg, err, sizeof(err));

	if (rc < 0)
		bench_bad_usage(prog, "%s", err);
	return rc > 0;
}

void
bench_opts_finish(struct bench_opts *o, const char *prog)
{
	char err[BENCH_ERR_MAX];
	int rc = bench_opts_check(o, err, sizeof(err));

	if (rc == -ENOMEM) {
		fprintf(stderr, "%s: %s\n", prog, err);
		exit(1);
	}
	if (rc)
		bench_bad_usage(prog, "%s", err);
}

void
bench_opts_destroy(struct bench_opts *o)
{
	mg_plan_destroy(o->plan);
	o->plan = NULL;
}

_Noreturn void
bench_die(const char *name, const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", name, what, mg_strerror(err));
	exit(1);
}

/*
 * @bytes of zeroed memory, resident from the start (MAP_POPULATE): what
 * the harness fills as the run goes then adds nothing to its RSS, which a
 * soak measures.  NULL if out of memory.
 */
static void *
resident_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void
resident_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

void
bench_run_init(struct bench_run *r, const char *name,
	       const struct bench_opts *o, uint32_t rec_size, uint64_t ntimes)
{
	double nwin = (2 * o->duration + 60) * 4 + 64; /* 250 ms each */
	char path[4096];

	memset(r, 0, sizeof(*r));
	r->name = name;
	r->o = o;
	r->rec_size = rec_size;
	r->ntimes = ntimes ? ntimes : 1;
	r->span = (r->ntimes + BENCH_FP_SLOTS - 1) / BENCH_FP_SLOTS;
	r->nslots = (r->ntimes + r->span - 1) / r->span;
	if (o->validate) {
		r->fp_bytes = o->workers * r->nslots * sizeof(struct bench_fp);
		r->fp[0] = resident_alloc(r->fp_bytes);
		r->fp[1] = resident_alloc(r->fp_bytes);
		if (!r->fp[0] || !r->fp[1])
			bench_die(name, "fingerprints", -ENOMEM);
	}
	r->maxwin = nwin < MAX_WINDOWS ? (unsigned)nwin : MAX_WINDOWS;
	r->win = resident_alloc(r->maxwin * sizeof(*r->win));
	if (!r->win)
		bench_die(name, "windows", -ENOMEM);
	if (strcmp(bench_damon_state(), "on") == 0)
		fprintf(stderr,
			"%s: note: the kernel's DAMON monitor is sampling "
			"memory; expect periodic stalls (bench/hiccup measures "
			"this machine's)\n",
			name);
	if (!o->out)
		return;
	mkdir(o->out, 0755);
	snprintf(path, sizeof(path), "%s/timeline.csv", o->out);
	r->csv = fopen(path, "w");
	if (!r->csv) {
		fprintf(stderr, "%s: cannot write %s\n", name, path);
		exit(1);
	}
	fprintf(r->csv, "t_s,count,p25_us,p50_us,p75_us,p95_us,p99_us,"
			"p999_us,max_us,rss_mib,cpu_s\n");
	snprintf(path, sizeof(path), "%s/workers.csv", o->out);
	r->wcsv = fopen(path, "w");
	if (!r->wcsv) {
		fprintf(stderr, "%s: cannot write %s\n", name, path);
		exit(1);
	}
	fprintf(r->wcsv, "t_s,worker,busy,rate,in_rate,backlog,bins,work,feed,"
			 "waiting\n");
}

/* Every worker's load at the end of window @t_s, to workers.csv; nothing
 * if the dataflow counts no load (--no-stats). */
static void
worker_loads(struct bench_run *r, double t_s)
{
	unsigned W = (unsigned)r->o->workers;
	struct mg_worker_stats *ws = malloc(sizeof(*ws) * W);

	if (ws && !mg_dataflow_worker_stats(r->df, ws))
		for (unsigned w = 0; w < W; w++)
			fprintf(r->wcsv,
				"%.3f,%u,%.3f,%.0f,%.0f,%llu,%u,%.3f,%.3f,%."
				"3f\n",
				t_s, w, ws[w].busy, ws[w].rate, ws[w].in_rate,
				(unsigned long long)ws[w].backlog, ws[w].bins,
				ws[w].work, ws[w].feed, ws[w].waiting);
	free(ws);
}

void
bench_run_config(const struct bench_run *r, struct mg_dataflow_config *dc)
{
	const struct bench_opts *o = r->o;

	memset(dc, 0, sizeof(*dc));
	dc->workers = (unsigned)o->workers;
	dc->oversubscribe = o->oversubscribe;
	dc->pool_reserve = (size_t)o->pool_reserve;
	dc->bins_log2 = (unsigned)o->bins_log2;
	dc->epoch_ns = o->epoch_us * 1000;
	dc->ring_capacity = (uint32_t)o->ring;
	dc->batch_records = (uint32_t)o->batch;
	dc->mode = o->mode;
	dc->warmup_ns = (uint64_t)(o->warmup * 1e9);
}

void
bench_run_die_create(const struct bench_run *r, int err)
{
	const struct bench_opts *o = r->o;
	unsigned ncpus = allowed_cpus();
	char hint[256] = "";

	if (err == -EINVAL && !o->oversubscribe && ncpus && o->workers > ncpus)
		snprintf(hint, sizeof(hint),
			 " (%llu workers, %u CPUs allowed: --oversubscribe "
			 "allows it)",
			 (unsigned long long)o->workers, ncpus);
	else if (err == -ENOMEM && o->pool_reserve)
		snprintf(hint, sizeof(hint),
			 " (the page pools reserve %.0f GiB of address space "
			 "per node and chunk size: is it limited, ulimit -v? "
			 "see --pool-reserve)",
			 (double)o->pool_reserve / (1ull << 30));
	else if (err == -ENOMEM)
		snprintf(hint, sizeof(hint),
			 " (the page pools reserve address space per node and "
			 "chunk size, sized from the physical memory and "
			 "ulimit -v: is it limited? see --pool-reserve)");
	fprintf(stderr, "%s: cannot create the dataflow: %s%s\n", r->name,
		mg_strerror(err), hint);
	exit(1);
}

void
bench_run_on_window(void *ctx, const struct mg_window_stats *w)
{
	struct bench_run *r = ctx;

	if (r->nwin < r->maxwin)
		r->win[r->nwin++] = *w;
	if (r->csv)
		fprintf(r->csv,
			"%.3f,%llu,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,"
			"%.3f\n",
			w->t_s, (unsigned long long)w->count, w->p25 / 1e3,
			w->p50 / 1e3, w->p75 / 1e3, w->p95 / 1e3, w->p99 / 1e3,
			w->p999 / 1e3, w->max / 1e3, w->rss_bytes / 1048576.0,
			bench_cpu_s());
	if (r->wcsv && r->df)
		worker_loads(r, w->t_s);
	if (w->t_s - r->last_progress >= 1.0 - 1e-9) {
		r->last_progress = w->t_s;
		fprintf(stderr,
			"%s: t=%5.1fs  %8.0f rec/s  p50 %8.1f us  "
			"p99 %8.1f us  max %8.1f us  rss %6.0f MiB\n",
			r->name, w->t_s, (double)w->count * 1e9 / 250e6,
			w->p50 / 1e3, w->p99 / 1e3, w->max / 1e3,
			w->rss_bytes / 1048576.0);
	}
}

/* An order-independent hash of one output (FNV-1a, then a mixer). */
static uint64_t
rec_hash(const void *rec, uint32_t size)
{
	const unsigned char *p = rec;
	uint64_t h = 0xcbf29ce484222325ull;
	uint32_t i;

	for (i = 0; i < size; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

/* Add (time, record) to its slot: the time is hashed in, so a slot of
 * several timestamps still tells an output at the wrong time. */
static void
fingerprint(struct bench_run *r, int which, unsigned worker, uint64_t time,
	    const void *rec)
{
	struct bench_fp *f;

	if (time >= r->ntimes) {
		r->fp_overflow[which]++; /* counted: fails validation */
		return;
	}
	f = &r->fp[which][worker * r->nslots + time / r->span];
	f->count++;
	f->sum += mg_hash64(rec_hash(rec, r->rec_size) +
			    time * 0x9e3779b97f4a7c15ull);
}

void
bench_run_sink_measured(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	fingerprint(ctx, 0, w, t, rec);
}

void
bench_run_sink_reference(void *ctx, unsigned w, uint64_t t, const void *rec)
{
	fingerprint(ctx, 1, w, t, rec);
}

double
bench_run_achieved(const struct bench_run *r, uint64_t records)
{
	double span = r->o->duration;
	unsigned i;

	for (i = r->nwin; i-- > 0;)
		if (r->win[i].count) {
			/* the last completions: within (t_s - 0.25, t_s] */
			if (r->win[i].t_s - 0.25 > span)
				span = r->win[i].t_s - 0.25;
			break;
		}
	return (double)records / span;
}

uint64_t
bench_run_outputs(const struct bench_run *r, int which)
{
	uint64_t n = r->fp_overflow[which], i;

	for (i = 0; r->fp[which] && i < r->o->workers * r->nslots; i++)
		n += r->fp[which][i].count;
	return n;
}

bool
bench_run_validate(const struct bench_run *r)
{
	uint64_t t, bad = 0, total = 0;
	unsigned w, W = (unsigned)r->o->workers;

	if (r->fp_overflow[0] || r->fp_overflow[1]) {
		fprintf(stderr,
			"%s: validate: outputs beyond the last timestamp "
			"(%llu, %llu)\n",
			r->name, (unsigned long long)r->fp_overflow[0],
			(unsigned long long)r->fp_overflow[1]);
		return false;
	}
	for (t = 0; t < r->nslots; t++) {
		struct bench_fp x = {0, 0}, y = {0, 0};

		for (w = 0; w < W; w++) {
			x.count += r->fp[0][w * r->nslots + t].count;
			x.sum += r->fp[0][w * r->nslots + t].sum;
			y.count += r->fp[1][w * r->nslots + t].count;
			y.sum += r->fp[1][w * r->nslots + t].sum;
		}
		total += x.count;
		if ((x.count != y.count || x.sum != y.sum) && bad++ < 5) {
			if (r->span == 1)
				fprintf(stderr, "%s: validate: time %llu",
					r->name, (unsigned long long)t);
			else
				fprintf(stderr,
					"%s: validate: times %llu..%llu",
					r->name,
					(unsigned long long)(t * r->span),
					(unsigned long long)((t + 1) * r->span -
							     1));
			fprintf(stderr,
				": %llu outputs vs %llu in the "
				"reference%s\n",
				(unsigned long long)x.count,
				(unsigned long long)y.count,
				x.count == y.count ? ", not the same" : "");
		}
	}
	if (r->span == 1)
		fprintf(stderr,
			"%s: validate: %llu outputs in %llu timestamps, %llu "
			"timestamps differ\n",
			r->name, (unsigned long long)total,
			(unsigned long long)r->ntimes, (unsigned long long)bad);
	else
		fprintf(stderr,
			"%s: validate: %llu outputs in %llu timestamps, "
			"checked in %llu chunks of %llu, %llu chunks differ\n",
			r->name, (unsigned long long)total,
			(unsigned long long)r->ntimes,
			(unsigned long long)r->nslots,
			(unsigned long long)r->span, (unsigned long long)bad);
	return bad == 0;
}

static void
sleep_until(uint64_t t0, double s)
{
	double left = s - (double)(mg_now_ns() - t0) / 1e9;

	if (left > 0)
		nanosleep(
			&(struct timespec){
				(time_t)left,
				(long)((left - (double)(time_t)left) * 1e9)},
			NULL);
}

static void
record(struct bench_run *r, const char *what, struct mg_migration *m)
{
	struct mg_migration_progress *p;

	if (r->nmig == BENCH_MAX_MIGRATIONS)
		return;
	r->mig[r->nmig].what = what;
	p = &r->mig[r->nmig++].p;
	mg_migration_progress(m, p);
	if (p->done)
		fprintf(stderr,
			"%s: %s migration (%s) of %u bins in %u steps: "
			"%.2f ms from epoch %llu\n",
			r->name, what,
			r->o->mode == MG_COPY ? "copy" : "handoff",
			p->bins_moved, p->steps,
			(double)(p->end_ns - p->start_ns) / 1e6,
			(unsigned long long)p->first_time);
}

/* Submit one migration to @target at @at_s seconds and wait for it. */
static void
migrate_once(struct bench_run *r, struct mg_dataflow *df,
	     const uint16_t *target, double at_s)
{
	const char *what = mg_strategy_name(r->o->strategy);
	uint64_t at = (uint64_t)(at_s * 1e6 / (double)r->o->epoch_us);
	uint64_t earliest = mg_dataflow_time_ahead(df, 0);
	struct mg_migration *m;
	int err;

	if (at < earliest)
		at = earliest;
	err = mg_migrate(df, r->o->strategy, target, at, r->o->gap, &m);
	if (err == -EINVAL && !mg_dataflow_accepts_migrations(df)) {
		fprintf(stderr,
			"%s: %s migration not run: the input ended first "
			"(an earlier migration took too long?)\n",
			r->name, what);
		return;
	}
	if (err)
		bench_die(r->name, "cannot migrate", err);
	err = mg_migration_wait(m);
	if (err)
		fprintf(stderr, "%s: migration did not finish: %s\n", r->name,
			mg_strerror(err));
	record(r, what, m);
}

/* A random number below @n (0 for 0) from *@s (splitmix64). */
static uint64_t
rnd(uint64_t *s, uint64_t n)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return n ? (z ^ (z >> 31)) % n : 0;
}

/* One random migration done (or not) after @ms: count it; a line now
 * and then (at most every 10 s), and for one that did not finish. */
static void
tally_random(struct bench_run *r, struct mg_migration *m, double ms,
	     double now_s, int err)
{
	struct bench_random_migs *t = &r->rnd;
	struct mg_migration_progress p;

	mg_migration_progress(m, &p);
	if (err || !p.done) {
		t->unfinished++;
		fprintf(stderr,
			"%s: random migration %llu did not finish: %s\n",
			r->name, (unsigned long long)t->submitted,
			mg_strerror(err));
		return;
	}
	t->done++;
	t->bins += p.bins_moved;
	t->bytes += p.bytes_moved;
	t->sum_ms += ms;
	t->max_ms = ms > t->max_ms ? ms : t->max_ms;
	if (t->done > 1 && now_s - t->last_print < 10)
		return;
	t->last_print = now_s;
	fprintf(stderr,
		"%s: t=%5.0fs  random migrations (%s): %llu done, %llu bins, "
		"%.0f MiB moved, this one %u bins in %.2f ms, max %.2f ms, "
		"%llu late\n",
		r->name, now_s, r->o->mode == MG_COPY ? "copy" : "handoff",
		(unsigned long long)t->done, (unsigned long long)t->bins,
		(double)t->bytes / 1048576.0, p.bins_moved, ms, t->max_ms,
		(unsigned long long)t->late);
}

/*
 * --migration random (see bench_run_migrate()).  A migration is submitted
 * at the logical time of its moment (or the earliest the engine takes, if
 * that passed) and waited for; one that takes longer than --migrate-every
 * makes the next late, which is then submitted at once.
 */
static void
migrate_random(struct bench_run *r, struct mg_dataflow *df, uint64_t t0)
{
	uint32_t nbins = mg_dataflow_bins(df), n, i, b;
	unsigned W = mg_dataflow_workers(df);
	uint16_t *target = malloc(sizeof(*target) * nbins);
	uint64_t rng = mg_hash64(r->o->seed + 0x6d69677261746521ull);
	double at_s = r->o->migrate_at, every = r->o->migrate_every;

	if (!target)
		bench_die(r->name, "migration set-up", -ENOMEM);
	every = every > 0 ? every : 1;
	for (;; at_s += every) {
		double now_s = (double)(mg_now_ns() - t0) / 1e9, t_ms;
		uint64_t at, earliest, t1;
		struct mg_migration *m;
		int err;

		if (at_s < now_s) { /* the last one took longer than every */
			r->rnd.late += r->rnd.submitted > 0;
			at_s = now_s;
		}
		if (at_s >= r->o->duration)
			break;
		sleep_until(t0, at_s);
		mg_dataflow_owners(df, target);
		n = 1 + (uint32_t)rnd(&rng, nbins / 8 > 1 ? nbins / 8 : 1);
		for (i = 0; i < n; i++) {
			b = (uint32_t)rnd(&rng, nbins);
			target[b] =
				(uint16_t)((target[b] + 1 + rnd(&rng, W - 1)) %
					   W);
		}
		at = (uint64_t)(at_s * 1e6 / (double)r->o->epoch_us);
		earliest = mg_dataflow_time_ahead(df, 0);
		t1 = mg_now_ns();
		err = mg_migrate(df, MG_ALL_AT_ONCE, target,
				 at > earliest ? at : earliest, 0, &m);
		if (err == -ETIME) /* the control frontier moved meanwhile */
			err = mg_migrate(df, MG_ALL_AT_ONCE, target,
					 MG_TIME_ASAP, 0, &m);
		if (err == -EINVAL && !mg_dataflow_accepts_migrations(df))
			break; /* the input ended */
		if (err)
			bench_die(r->name, "cannot migrate", err);
		r->rnd.submitted++;
		err = mg_migration_wait(m);
		t_ms = (double)(mg_now_ns() - t1) / 1e6;
		tally_random(r, m, t_ms, (double)(mg_now_ns() - t0) / 1e9, err);
		if (err)
			break;
	}
	free(target);
}

void
bench_run_migrate(struct bench_run *r, struct mg_dataflow *df, uint64_t t0)
{
	uint32_t nbins = mg_dataflow_bins(df);
	unsigned W = mg_dataflow_workers(df);
	uint16_t *initial = malloc(sizeof(*initial) * nbins);
	uint16_t *target = malloc(sizeof(*target) * nbins);
	struct mg_migration *m;
	int err;

	if (!r->o->migration)
		goto out;
	if (r->o->random_mig) {
		migrate_random(r, df, t0);
		goto out;
	}
	if (!initial || !target)
		bench_die(r->name, "migration set-up", -ENOMEM);
	mg_dataflow_owners(df, initial);
	if (!r->o->plan) {
		mg_plan_half_of_half(initial, nbins, W, target);
		sleep_until(t0, r->o->migrate_at - 0.05);
		migrate_once(r, df, target, r->o->migrate_at);
		sleep_until(t0, 2 * r->o->migrate_at - 0.05);
		migrate_once(r, df, initial, 2 * r->o->migrate_at);
		goto out;
	}
	err = mg_migrate_plan(df, r->o->plan, &m);
	if (err)
		bench_die(r->name,
			  "cannot submit the plan (are its times in the "
			  "future?)",
			  err);
	err = mg_migration_wait(m);
	if (err)
		fprintf(stderr, "%s: plan did not finish: %s\n", r->name,
			mg_strerror(err));
	record(r, "plan", m);
out:
	free(initial);
	free(target);
}

/* Window (t - 0.25 s, t] overlaps [a, e). */
static bool
in_span(const struct mg_window_stats *w, double a, double e)
{
	return w->t_s > a && w->t_s - 0.25 < e;
}

/* The largest window max past the warm-up and before the first migration
 * (@first, seconds): the latency level a migration must return to; 0 when
 * no window qualifies. */
static uint64_t
baseline_max(const struct bench_run *r, double first)
{
	uint64_t max = 0;
	unsigned i;

	for (i = 0; i < r->nwin; i++)
		if (r->win[i].count && r->win[i].t_s - 0.25 >= r->o->warmup &&
		    r->win[i].t_s <= first && r->win[i].max > max)
			max = r->win[i].max;
	return max;
}

/*
 * Where the latency windows a migration that ran until @z accounts for
 * end: at the first window starting after @z that completed records
 * with a max of at most @base (latency is back to where it was before the
 * first migration), or without a baseline, the first none of whose records
 * can have been scheduled by @z (its oldest completed after t - 0.25 with
 * at most the window's max).  The windows overlapping the migration always
 * count; so does the backlog it leaves behind, not against the steady
 * state.
 */
static double
settled(const struct bench_run *r, double z, uint64_t base)
{
	unsigned i;

	for (i = 0; i < r->nwin; i++) {
		const struct mg_window_stats *w = &r->win[i];

		if (w->t_s - 0.25 <= z || !w->count)
			continue;
		if (base ? w->max <= base
			 : w->t_s - 0.25 - (double)w->max / 1e9 > z)
			return w->t_s - 0.25;
	}
	return 1e30;
}

/* Seconds a migration spans; unfinished: everything after its start. */
static double
mig_end(const struct mg_migration_progress *p)
{
	return p->done ? p->end_ns / 1e9 : 1e30;
}

/* Append the migrations and steady-state figures to @json. */
static void
report_migrations(const struct bench_run *r, char *json, size_t len)
{
	uint64_t st_p99 = 0, st_max = 0, st_rss = 0, in_rss = 0, base;
	size_t at = strlen(json) - 1; /* drop the closing brace */
	double first = 1e30, span_end[BENCH_MAX_MIGRATIONS];
	unsigned i, k;

	for (k = 0; k < r->nmig; k++)
		if (r->mig[k].p.start_ns / 1e9 < first)
			first = r->mig[k].p.start_ns / 1e9;
	base = baseline_max(r, first);
	for (k = 0; k < r->nmig; k++)
		span_end[k] = settled(r, mig_end(&r->mig[k].p), base);

	at += (size_t)snprintf(json + at, len - at,
			       ",\"mode\":\"%s\",\"migrations\":[",
			       r->o->mode == MG_COPY ? "copy" : "handoff");
	for (k = 0; k < r->nmig; k++) {
		const struct mg_migration_progress *p = &r->mig[k].p;
		double a = p->start_ns / 1e9, z = mig_end(p);
		uint64_t p99 = 0, max = 0, rss = 0;

		for (i = 0; i < r->nwin; i++)
			if (in_span(&r->win[i], a, span_end[k])) {
				p99 = r->win[i].p99 > p99 ? r->win[i].p99 : p99;
				max = r->win[i].max > max ? r->win[i].max : max;
				rss = r->win[i].rss_bytes > rss
					      ? r->win[i].rss_bytes
					      : rss;
			}
		in_rss = rss > in_rss ? rss : in_rss;
		at += (size_t)snprintf(
			json + at, len - at,
			"%s{\"strategy\":\"%s\",\"start_s\":%.3f,"
			"\"duration_ms\":%.3f,\"steps\":%u,\"bins_moved\":%u,"
			"\"bytes_moved\":%llu,\"max_latency_us\":%.1f,"
			"\"p99_latency_us\":%.1f,\"rss_peak_bytes\":%llu,"
			"\"done\":%s}",
			k ? "," : "", r->mig[k].what, a,
			p->done ? (z - a) * 1e3 : -1.0, p->steps, p->bins_moved,
			(unsigned long long)p->bytes_moved, max / 1e3,
			p99 / 1e3, (unsigned long long)rss,
			p->done ? "true" : "false");
	}
	/* steady: past the warm-up, in no migration's span */
	for (i = 0; i < r->nwin; i++) {
		bool quiet = r->win[i].t_s - 0.25 >= r->o->warmup;

		for (k = 0; k < r->nmig && quiet; k++)
			quiet = !in_span(&r->win[i], r->mig[k].p.start_ns / 1e9,
					 span_end[k]);
		if (!quiet || !r->win[i].count)
			continue;
		st_p99 = r->win[i].p99 > st_p99 ? r->win[i].p99 : st_p99;
		st_max = r->win[i].max > st_max ? r->win[i].max : st_max;
		st_rss = r->win[i].rss_bytes > st_rss ? r->win[i].rss_bytes
						      : st_rss;
	}
	snprintf(json + at, len - at,
		 "],\"steady\":{\"p99_us\":%.1f,\"max_us\":%.1f,"
		 "\"rss_peak_bytes\":%llu},\"rss_peak_migrating_bytes\":%llu}",
		 st_p99 / 1e3, st_max / 1e3, (unsigned long long)st_rss,
		 (unsigned long long)in_rss);
}

void
bench_run_balancer(struct bench_run *r, struct mg_balancer *b,
		   const struct mg_balancer_config *c)
{
	r->bal = b;
	r->bal_cfg = *c;
}

void
bench_run_on_balance(void *ctx, const struct mg_balance_event *e)
{
	const struct bench_run *r = ctx;

	fprintf(stderr, "%s: balance at %.2f s: %s\n", r->name, e->t_s,
		e->reason);
}

int
bench_run_start(struct bench_run *r, struct mg_dataflow *df)
{
	struct mg_balancer_config c = r->o->bal;
	struct mg_balancer *b;
	int err;

	r->df = df;
	if (!r->o->balance)
		return 0;
	c.on_event = bench_run_on_balance;
	c.ctx = r;
	err = mg_balancer_start(df, &c, &b);
	if (err)
		return err;
	bench_run_balancer(r, b, &c);
	return 0;
}

/* Append to @json (room for @len) at *@at what @fmt makes, if it fits
 * with @keep bytes to spare; false (nothing appended) if not. */
static bool __attribute__((format(printf, 5, 6)))
append(char *json, size_t len, size_t *at, size_t keep, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*at + keep >= len)
		return false;
	va_start(ap, fmt);
	n = vsnprintf(json + *at, len - keep - *at, fmt, ap);
	va_end(ap);
	if (n < 0 || *at + (size_t)n >= len - keep) {
		json[*at] = '\0';
		return false;
	}
	*at += (size_t)n;
	return true;
}

/* @n doubles as a JSON array. */
static void
json_array(FILE *f, const char *name, const double *v, uint32_t n)
{
	uint32_t i;

	fprintf(f, ",\"%s\":[", name);
	for (i = 0; i < n; i++)
		fprintf(f, "%s%.6g", i ? "," : "", v[i]);
	fputc(']', f);
}

/* A balancer event as a JSON object, malloc'd; NULL if out of memory. */
static char *
event_json(const struct mg_balance_event *e)
{
	struct mg_migration_progress p;
	char *buf = NULL;
	size_t n = 0, i;
	FILE *f = open_memstream(&buf, &n);

	if (!f)
		return NULL;
	mg_migration_progress(e->migration, &p);
	fprintf(f, "{\"t_s\":%.3f,\"kind\":\"%s\",\"reason\":\"", e->t_s,
		e->kind == MG_BALANCE_MOVE    ? "move"
		: e->kind == MG_BALANCE_SCALE ? "scale"
					      : "hold");
	for (i = 0; e->reason[i]; i++) {
		if (e->reason[i] == '"' || e->reason[i] == '\\')
			fputc('\\', f);
		fputc(e->reason[i], f);
	}
	fprintf(f,
		"\",\"mean\":%.6g,\"limit\":%.6g,\"max_before\":%.6g,"
		"\"max_after\":%.6g,\"active_before\":%u,\"active_after\":%u,"
		"\"utilization\":%.4f,\"op_utilization\":%.4f,"
		"\"in_rate\":%.6g",
		e->mean, e->limit, e->max_before, e->max_after,
		e->active_before, e->active_after, e->utilization,
		e->op_utilization, e->in_rate);
	json_array(f, "loads_before", e->load_before, e->workers);
	json_array(f, "loads_after", e->load_after, e->workers);
	json_array(f, "busy", e->busy, e->workers);
	fprintf(f,
		",\"bins_moved\":%u,\"bytes\":%llu,\"hot\":%u,"
		"\"pinned\":%u,\"migration_start_s\":%.3f,"
		"\"duration_ms\":%.3f,\"done\":%s}",
		e->bins, (unsigned long long)e->bytes, e->hot, e->pinned,
		p.start_ns / 1e9,
		p.done ? (double)(p.end_ns - p.start_ns) / 1e6 : -1.0,
		e->migration ? (p.done ? "true" : "false") : "null");
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Append the balancer's configuration, totals and events to @json. */
static void
report_balance(const struct bench_run *r, char *json, size_t len)
{
	struct mg_balancer_stats st;
	struct mg_balance_event e;
	size_t at = strlen(json) - 1, i, n = mg_balancer_nevents(r->bal);
	size_t dropped = 0;
	const size_t keep = 64; /* the closing brackets */

	mg_balancer_stats(r->bal, &st);
	if (!append(json, len, &at, keep,
		    ",\"balance\":{\"mode\":\"%s\",\"interval_ms\":%.3f,"
		    "\"threshold\":%g,"
		    "\"cooldown_s\":%.3f,\"patience\":%u,\"decisions\":%llu,"
		    "\"migrations\":%llu,\"bins_moved\":%llu,\"events\":[",
		    r->o->mode == MG_COPY ? "copy" : "handoff",
		    r->bal_cfg.interval_ns / 1e6, r->bal_cfg.threshold,
		    r->bal_cfg.cooldown_ns / 1e9, r->bal_cfg.patience,
		    (unsigned long long)st.rounds,
		    (unsigned long long)st.migrations,
		    (unsigned long long)st.bins_moved)) {
		strcpy(json + at, "}"); /* no room at all: as it was */
		return;
	}
	for (i = 0; i < n && !mg_balancer_event(r->bal, i, &e); i++) {
		char *ev = dropped ? NULL : event_json(&e);

		if (!ev ||
		    !append(json, len, &at, keep, "%s%s", i ? "," : "", ev))
			dropped++;
		free(ev);
	}
	append(json, len, &at, 0, "],\"events_dropped\":%zu}}", dropped);
}

static FILE *
out_file(const struct bench_run *r, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", r->o->out, name);
	return fopen(path, "w");
}

/* Append what the random migrations did to @json. */
static void
report_random(const struct bench_run *r, char *json, size_t len)
{
	const struct bench_random_migs *t = &r->rnd;
	size_t at = strlen(json) - 1; /* drop the closing brace */

	snprintf(json + at, len - at,
		 ",\"mode\":\"%s\",\"random_migrations\":{\"every_s\":%.3f,"
		 "\"submitted\":%llu,\"done\":%llu,\"unfinished\":%llu,"
		 "\"late\":%llu,\"bins_moved\":%llu,\"bytes_moved\":%llu,"
		 "\"mean_ms\":%.3f,\"max_ms\":%.3f}}",
		 r->o->mode == MG_COPY ? "copy" : "handoff",
		 r->o->migrate_every > 0 ? r->o->migrate_every : 1.0,
		 (unsigned long long)t->submitted, (unsigned long long)t->done,
		 (unsigned long long)t->unfinished, (unsigned long long)t->late,
		 (unsigned long long)t->bins, (unsigned long long)t->bytes,
		 t->done ? t->sum_ms / (double)t->done : 0.0, t->max_ms);
}

/* The balancer's decisions as marks: a move spans its migration (labelled
 * "balance:<bins>"), a hold is a sliver at its time. */
static void
balance_marks(const struct bench_run *r, FILE *f)
{
	struct mg_migration_progress p;
	struct mg_balance_event e;
	size_t i;

	for (i = 0; r->bal && !mg_balancer_event(r->bal, i, &e); i++) {
		double a = e.t_s, z;

		mg_migration_progress(e.migration, &p);
		if (e.migration && p.start_ns)
			a = p.start_ns / 1e9;
		z = p.done ? p.end_ns / 1e9 : a;
		if (e.kind == MG_BALANCE_MOVE)
			fprintf(f, "%.4f %.4f balance:%u\n", a,
				z > a + 0.02 ? z : a + 0.02, e.bins);
		else if (e.kind == MG_BALANCE_SCALE)
			fprintf(f, "%.4f %.4f active:%u\n", a,
				z > a + 0.02 ? z : a + 0.02, e.active_after);
		else
			fprintf(f, "%.4f %.4f hold\n", a, a + 0.02);
	}
}

void
bench_run_join(struct bench_run *r, struct mg_dataflow *df,
	       struct mg_run_stats *st)
{
	int err = mg_dataflow_join(df, st);

	if (err)
		bench_die(r->name,
			  st->error_what ? st->error_what : "the run failed",
			  err);
	if (st->copy_fallbacks)
		fprintf(stderr,
			"%s: %llu moves went as handoffs: their copy did not "
			"fit\n",
			r->name, (unsigned long long)st->copy_fallbacks);
}

void
bench_run_report(struct bench_run *r, char *json, size_t len)
{
	FILE *f;
	unsigned k;

	if (r->o->random_mig)
		report_random(r, json, len);
	else if (r->o->migration)
		report_migrations(r, json, len);
	if (r->bal)
		report_balance(r, json, len);
	puts(json);
	if (!r->o->out)
		return;
	if ((r->nmig || (r->bal && mg_balancer_nevents(r->bal))) &&
	    (f = out_file(r, "migrations.txt"))) {
		for (k = 0; k < r->nmig; k++) { /* marks for bench/plot */
			double a = r->mig[k].p.start_ns / 1e9;
			double z = r->mig[k].p.end_ns / 1e9;

			/* at least a visible sliver on a seconds axis */
			fprintf(f, "%.4f %.4f %s\n", a,
				z > a + 0.02 ? z : a + 0.02, r->mig[k].what);
		}
		balance_marks(r, f);
		fclose(f);
	}
	if ((f = out_file(r, "summary.json"))) {
		fprintf(f, "%s\n", json);
		fclose(f);
	}
}

void
bench_run_destroy(struct bench_run *r)
{
	if (r->csv)
		fclose(r->csv);
	if (r->wcsv)
		fclose(r->wcsv);
	resident_free(r->fp[0], r->fp_bytes);
	resident_free(r->fp[1], r->fp_bytes);
	resident_free(r->win, r->maxwin * sizeof(*r->win));
}
