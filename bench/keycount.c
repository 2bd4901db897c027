/*
 * keycount - Megaphone's key-count benchmark on the engine.
 *
 * An open-loop source produces 16-byte records {key, seq} with keys drawn
 * uniformly from [0, domain); a stateful operator counts each key and emits
 * (key, running count) for every record.  Backends:
 *
 *   kv      a hash map per bin (mg_map), bins by the top bits of mix(key);
 *   array   a dense array per bin: bin = key mod 2^k, slot = key >> k;
 *   native  the same counting function with static partitioning
 *           (worker = hash mod W): one hash map per worker, no bins.
 *
 * --validate runs a reference operator on the same input in the same
 * dataflow (native for kv/array, kv for native) and compares the multiset of
 * outputs of every timestamp (count and an order-independent hash of the
 * records); any difference fails the run with exit status 1.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "engine/megaphone.h"

enum backend { KV, ARRAY, NATIVE };
static const char *const backend_name[] = {"kv", "array", "native"};

struct rec {
	uint64_t key;
	uint64_t seq;
};

struct opts {
	uint64_t workers, rate, domain, bins_log2, epoch_us, seed, ring, batch;
	double duration;
	enum backend backend;
	bool prefill, validate;
	const char *out;
	const char *migration; /* none, a strategy, or a plan file */
	enum mg_strategy strategy;
	enum mg_mode mode;
	double migrate_at; /* seconds; 0 = duration / 3 */
	double warmup;	   /* seconds excluded from whole-run latency */
	uint64_t gap;	   /* epochs between steps */
};

#define MAX_WINDOWS    65536
#define MAX_MIGRATIONS 16

struct mig_record {
	const char *what;
	struct mg_migration_progress p;
};

/* What each bin (or native worker) keeps. */
struct root {
	struct mg_map map;
	struct mg_array arr;
};

/* Per-timestamp output fingerprints of one operator, per worker. */
struct fp {
	uint64_t count, sum;
};

struct bench {
	struct opts o;
	uint64_t ntimes;
	unsigned k;
	struct fp *fp[2]; /* [W * ntimes]: 0 = measured, 1 = reference */
	uint64_t fp_overflow[2];
	FILE *csv;
	double last_progress;
	struct mg_window_stats *win; /* every window, for the report */
	unsigned nwin;
	struct mig_record mig[MAX_MIGRATIONS];
	unsigned nmig;
	uint64_t *by_bin_off; /* prefill: keys of bin b are */
	uint64_t *by_bin;     /* by_bin[by_bin_off[b] .. by_bin_off[b + 1]) */
};

static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
gen(void *ctx, unsigned worker, uint64_t seq, void *out)
{
	const struct bench *b = ctx;
	struct rec *r = out;

	(void)worker;
	r->key = mix64(b->o.seed ^ (seq * 0x9e3779b97f4a7c15ull)) % b->o.domain;
	r->seq = seq;
}

static uint64_t
hash_kv(void *ctx, const void *rec)
{
	(void)ctx;
	return mix64(((const struct rec *)rec)->key + 0x632be59bd9b4e019ull);
}

/* Array backend: top k bits = key mod 2^k (the bin), low bits = slot. */
static uint64_t
hash_array(void *ctx, const void *rec)
{
	const struct bench *b = ctx;
	uint64_t key = ((const struct rec *)rec)->key;

	return (key & ((1ull << b->k) - 1)) << (64 - b->k) | key >> b->k;
}

static void
count_kv(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct rec *in = c->in[0];
	struct root *root = c->state;
	uint32_t i;

	(void)ctx;
	if (!root->map.value_size)
		mg_map_init(&root->map, sizeof(uint64_t));
	for (i = 0; i < c->n_in[0]; i++) {
		struct rec o = {in[i].key, 0};
		void *v;
		int err = mg_map_upsert(&root->map, c->arena, in[i].key, &v);

		if (err < 0) {
			c->error = err;
			return;
		}
		o.seq = ++*(uint64_t *)v;
		mg_emit(out, &o);
	}
}

static void
count_array(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct bench *b = ctx;
	const struct rec *in = c->in[0];
	struct root *root = c->state;
	uint32_t i;

	if (!root->arr.value_size)
		mg_array_init(&root->arr, (b->o.domain >> b->k) + 1,
			      sizeof(uint64_t));
	for (i = 0; i < c->n_in[0]; i++) {
		struct rec o = {in[i].key, 0};
		void *v;
		int err = mg_array_at(&root->arr, c->arena, in[i].key >> b->k,
				      &v);

		if (err) {
			c->error = err;
			return;
		}
		o.seq = ++*(uint64_t *)v;
		mg_emit(out, &o);
	}
}

/* Group the keys by bin (native: by worker) with a counting sort, once,
 * so that prefilling a bin visits only its keys. */
static void
group_keys(struct bench *b)
{
	uint64_t groups = b->o.backend == NATIVE ? b->o.workers : 1ull << b->k;
	uint64_t *pos, key, g;
	struct rec r;

	b->by_bin_off = calloc(groups + 1, sizeof(uint64_t));
	b->by_bin = malloc(sizeof(uint64_t) * b->o.domain);
	pos = calloc(groups, sizeof(uint64_t));
	if (!b->by_bin_off || !b->by_bin || !pos) {
		fprintf(stderr, "keycount: out of memory grouping keys\n");
		exit(1);
	}
	for (key = 0; key < b->o.domain; key++) {
		r.key = key;
		g = b->o.backend == NATIVE ? hash_kv(NULL, &r) % groups
					   : mg_bin_of(hash_kv(NULL, &r), b->k);
		b->by_bin_off[g + 1]++;
	}
	for (g = 0; g < groups; g++) {
		b->by_bin_off[g + 1] += b->by_bin_off[g];
		pos[g] = b->by_bin_off[g];
	}
	for (key = 0; key < b->o.domain; key++) {
		r.key = key;
		g = b->o.backend == NATIVE ? hash_kv(NULL, &r) % groups
					   : mg_bin_of(hash_kv(NULL, &r), b->k);
		b->by_bin[pos[g]++] = key;
	}
	free(pos);
}

/* Prefill: every key of the bin present with count 0 (outputs unchanged). */
static int
prefill_kv(void *ctx, struct mg_bin_call *c)
{
	const struct bench *b = ctx;
	struct root *root = c->state;
	uint64_t i;
	void *v;
	int err;

	mg_map_init(&root->map, sizeof(uint64_t));
	for (i = b->by_bin_off[c->bin]; i < b->by_bin_off[c->bin + 1]; i++) {
		err = mg_map_upsert(&root->map, c->arena, b->by_bin[i], &v);
		if (err < 0)
			return err;
	}
	return 0;
}

static int
prefill_array(void *ctx, struct mg_bin_call *c)
{
	const struct bench *b = ctx;
	struct root *root = c->state;
	uint64_t len = (b->o.domain >> b->k) + 1, i;
	void *v;
	int err;

	mg_array_init(&root->arr, len, sizeof(uint64_t));
	for (i = 0; i < len; i += 512) {
		err = mg_array_at(&root->arr, c->arena, i, &v);
		if (err)
			return err;
	}
	return 0;
}

/* Copy mode: a bin travels as its map or array. */
static int
serialize(void *ctx, struct mg_bin_call *c, struct mg_writer *w)
{
	const struct bench *b = ctx;
	const struct root *root = c->state;

	if (b->o.backend == ARRAY)
		return root->arr.value_size ? mg_array_write(&root->arr, w)
					    : mg_write(w, &(uint64_t){0}, 8);
	return root->map.value_size ? mg_map_write(&root->map, w)
				    : mg_write(w, &(uint64_t){0}, 8);
}

static int
deserialize(void *ctx, struct mg_bin_call *c, struct mg_reader *r)
{
	const struct bench *b = ctx;
	struct root *root = c->state;

	if (b->o.backend == ARRAY) {
		mg_array_init(&root->arr, (b->o.domain >> b->k) + 1,
			      sizeof(uint64_t));
		return mg_array_read(&root->arr, c->arena, r);
	}
	mg_map_init(&root->map, sizeof(uint64_t));
	return mg_map_read(&root->map, c->arena, r);
}

static void
fingerprint(struct bench *b, int which, unsigned worker, uint64_t time,
	    const void *rec)
{
	const struct rec *r = rec;
	struct fp *f;

	if (time >= b->ntimes) {
		b->fp_overflow[which]++; /* counted: fails validation */
		return;
	}
	f = &b->fp[which][worker * b->ntimes + time];
	f->count++;
	f->sum += mix64(r->key * 0x9e3779b97f4a7c15ull ^ mix64(r->seq));
}

static void
sink_measured(void *ctx, unsigned w, uint64_t t, const void *r)
{
	fingerprint(ctx, 0, w, t, r);
}

static void
sink_reference(void *ctx, unsigned w, uint64_t t, const void *r)
{
	fingerprint(ctx, 1, w, t, r);
}

static void
on_window(void *ctx, const struct mg_window_stats *w)
{
	struct bench *b = ctx;

	if (b->nwin < MAX_WINDOWS)
		b->win[b->nwin++] = *w;
	if (b->csv)
		fprintf(b->csv,
			"%.3f,%llu,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f\n",
			w->t_s, (unsigned long long)w->count, w->p25 / 1e3,
			w->p50 / 1e3, w->p75 / 1e3, w->p95 / 1e3, w->p99 / 1e3,
			w->p999 / 1e3, w->max / 1e3, w->rss_bytes / 1048576.0);
	if (w->t_s - b->last_progress >= 1.0 - 1e-9) {
		b->last_progress = w->t_s;
		fprintf(stderr,
			"keycount: t=%5.1fs  %8.0f rec/s  p50 %8.1f us  "
			"p99 %8.1f us  max %8.1f us  rss %6.0f MiB\n",
			w->t_s, (double)w->count * 1e9 / 250e6, w->p50 / 1e3,
			w->p99 / 1e3, w->max / 1e3, w->rss_bytes / 1048576.0);
	}
}

/* Compare the two operators' per-timestamp fingerprints. */
static bool
validate(const struct bench *b)
{
	uint64_t t, bad = 0, total = 0;
	unsigned w, W = (unsigned)b->o.workers;

	if (b->fp_overflow[0] || b->fp_overflow[1]) {
		fprintf(stderr,
			"keycount: validate: outputs beyond the last "
			"timestamp (%llu, %llu)\n",
			(unsigned long long)b->fp_overflow[0],
			(unsigned long long)b->fp_overflow[1]);
		return false;
	}
	for (t = 0; t < b->ntimes; t++) {
		struct fp x = {0, 0}, y = {0, 0};

		for (w = 0; w < W; w++) {
			x.count += b->fp[0][w * b->ntimes + t].count;
			x.sum += b->fp[0][w * b->ntimes + t].sum;
			y.count += b->fp[1][w * b->ntimes + t].count;
			y.sum += b->fp[1][w * b->ntimes + t].sum;
		}
		total += x.count;
		if (x.count != y.count || x.sum != y.sum) {
			if (bad++ < 5)
				fprintf(stderr,
					"keycount: validate: time %llu: "
					"%llu outputs vs %llu in the "
					"reference\n",
					(unsigned long long)t,
					(unsigned long long)x.count,
					(unsigned long long)y.count);
		}
	}
	fprintf(stderr,
		"keycount: validate: %llu outputs in %llu timestamps, "
		"%llu timestamps differ\n",
		(unsigned long long)total, (unsigned long long)b->ntimes,
		(unsigned long long)bad);
	return bad == 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: keycount [options]\n"
		"Megaphone's key-count benchmark: count keys in bins, "
		"open-loop input.\n"
		"\n"
		"  --workers N        worker threads (default 2)\n"
		"  --rate R           records/s offered in total (default 1M)\n"
		"  --duration S       seconds of input (default 10)\n"
		"  --domain N         distinct keys (default 1M)\n"
		"  --bins K           2^K bins, 4..20 (default 12)\n"
		"  --backend B        kv | array | native (default kv)\n"
		"  --epoch-us U       timestamp granularity in us, >= 10 "
		"(default 1000)\n"
		"  --prefill          build every key's state before the clock "
		"starts\n"
		"  --seed N           key stream seed (default 1)\n"
		"  --ring N           channel ring slots, power of two "
		"(default 64)\n"
		"  --batch N          records per batch (default 256)\n"
		"  --out DIR          write DIR/timeline.csv and "
		"DIR/summary.json\n"
		"  --migration M      none | all-at-once | fluid | batched | "
		"PLANFILE\n"
		"                     (default none).  Strategies move half "
		"the bins of\n"
		"                     half the workers to the other half at "
		"--migrate-at\n"
		"                     and back at twice that; a plan file has "
		"explicit\n"
		"                     steps: '<epoch> <bin> <worker> ...' per "
		"line\n"
		"  --mode M           handoff | copy: hand the pages over, or "
		"serialize\n"
		"                     and rebuild them as Megaphone does "
		"(default handoff)\n"
		"  --migrate-at S     seconds into the run (default duration / "
		"3)\n"
		"  --gap N            epochs between fluid/batched steps "
		"(default 0)\n"
		"  --warmup S         seconds left out of the whole-run "
		"latency and the\n"
		"                     steady-state figures (default 1)\n"
		"  --validate         compare every timestamp's output with a "
		"reference\n"
		"                     operator (native; kv for --backend "
		"native)\n"
		"  --help             this text\n"
		"\n"
		"Progress on stderr; one JSON summary line on stdout.  Numbers "
		"accept\n"
		"k, M, G suffixes.  Pin with numactl --physcpubind.\n");
}

static void
parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"workers", required_argument, NULL, 'w'},
		{"rate", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 'd'},
		{"domain", required_argument, NULL, 'D'},
		{"bins", required_argument, NULL, 'b'},
		{"backend", required_argument, NULL, 'B'},
		{"epoch-us", required_argument, NULL, 'e'},
		{"prefill", no_argument, NULL, 'p'},
		{"seed", required_argument, NULL, 's'},
		{"ring", required_argument, NULL, 'R'},
		{"batch", required_argument, NULL, 'a'},
		{"out", required_argument, NULL, 'o'},
		{"validate", no_argument, NULL, 'v'},
		{"migration", required_argument, NULL, 'm'},
		{"mode", required_argument, NULL, 'M'},
		{"migrate-at", required_argument, NULL, 'A'},
		{"gap", required_argument, NULL, 'g'},
		{"warmup", required_argument, NULL, 'W'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *p = argv[0];
	int c;

	*o = (struct opts){.workers = 2,
			   .rate = 1000000,
			   .duration = 10,
			   .domain = 1000000,
			   .bins_log2 = 12,
			   .epoch_us = 1000,
			   .seed = 1,
			   .ring = 64,
			   .batch = 256,
			   .backend = KV,
			   .warmup = 1};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'w':
			if (bench_parse_u64(optarg, 1, 1024, &o->workers))
				bench_bad_usage(p, "bad --workers '%s'",
						optarg);
			break;
		case 'r':
			if (bench_parse_u64(optarg, 1, 10000000000ull,
					    &o->rate))
				bench_bad_usage(p, "bad --rate '%s'", optarg);
			break;
		case 'd':
			if (bench_parse_double(optarg, 0.01, 86400,
					       &o->duration))
				bench_bad_usage(p, "bad --duration '%s'",
						optarg);
			break;
		case 'D':
			if (bench_parse_u64(optarg, 1, 1ull << 40, &o->domain))
				bench_bad_usage(p, "bad --domain '%s'", optarg);
			break;
		case 'b':
			if (bench_parse_u64(optarg, MG_BINS_LOG2_MIN,
					    MG_BINS_LOG2_MAX, &o->bins_log2))
				bench_bad_usage(p, "--bins must be %d..%d",
						MG_BINS_LOG2_MIN,
						MG_BINS_LOG2_MAX);
			break;
		case 'B':
			if (!strcmp(optarg, "kv"))
				o->backend = KV;
			else if (!strcmp(optarg, "array"))
				o->backend = ARRAY;
			else if (!strcmp(optarg, "native"))
				o->backend = NATIVE;
			else
				bench_bad_usage(p, "--backend must be kv, "
						   "array or native");
			break;
		case 'e':
			if (bench_parse_u64(optarg, 10, 60000000, &o->epoch_us))
				bench_bad_usage(p, "--epoch-us must be >= 10");
			break;
		case 'p':
			o->prefill = true;
			break;
		case 's':
			if (bench_parse_u64(optarg, 0, UINT64_MAX, &o->seed))
				bench_bad_usage(p, "bad --seed '%s'", optarg);
			break;
		case 'R':
			if (bench_parse_u64(optarg, 2, MG_CHANNEL_CAPACITY_MAX,
					    &o->ring) ||
			    !mg_is_pow2(o->ring))
				bench_bad_usage(
					p,
					"--ring must be a power of two >= 2");
			break;
		case 'a':
			if (bench_parse_u64(optarg, 1, MG_BATCH_RECORDS_MAX,
					    &o->batch))
				bench_bad_usage(p, "bad --batch '%s'", optarg);
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'v':
			o->validate = true;
			break;
		case 'm':
			o->migration = optarg;
			if (!strcmp(optarg, "none"))
				o->migration = NULL;
			else if (mg_strategy_parse(optarg, &o->strategy) &&
				 access(optarg, R_OK))
				bench_bad_usage(
					p,
					"--migration: '%s' is no strategy "
					"and no readable plan file",
					optarg);
			break;
		case 'M':
			if (!strcmp(optarg, "handoff"))
				o->mode = MG_HANDOFF;
			else if (!strcmp(optarg, "copy"))
				o->mode = MG_COPY;
			else
				bench_bad_usage(
					p, "--mode must be handoff or copy");
			break;
		case 'A':
			if (bench_parse_double(optarg, 0.001, 86400,
					       &o->migrate_at))
				bench_bad_usage(p, "bad --migrate-at '%s'",
						optarg);
			break;
		case 'g':
			if (bench_parse_u64(optarg, 0, 1000000, &o->gap))
				bench_bad_usage(p, "bad --gap '%s'", optarg);
			break;
		case 'W':
			if (bench_parse_double(optarg, 0, 86400, &o->warmup))
				bench_bad_usage(p, "bad --warmup '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bench_bad_usage(p, "unknown option");
		}
	}
	if (optind < argc)
		bench_bad_usage(p, "unexpected argument '%s'", argv[optind]);
	if (!o->migrate_at)
		o->migrate_at = o->duration / 3;
	if (o->migration && o->backend == NATIVE)
		bench_bad_usage(p, "the native backend has no bins to migrate");
	if (o->warmup >= o->duration)
		bench_bad_usage(p, "--warmup must be below --duration");
	if (o->migration && 2 * o->migrate_at >= o->duration)
		bench_bad_usage(p, "--migrate-at must be below duration / 2");
}

/* Add one counting operator reading @in; its output goes to @sink. */
static int
add_counter(struct mg_dataflow *df, struct bench *b, struct mg_stream *in,
	    enum backend be, mg_sink_fn sink, struct mg_stream **out)
{
	struct mg_stateful_config sc = {
		.ninputs = 1,
		.in = {in},
		.hash = {be == ARRAY ? hash_array : hash_kv},
		.hash_ctx = b,
		.out_record_size = sizeof(struct rec),
		.state_size = sizeof(struct root),
		.fn = be == ARRAY ? count_array : count_kv,
		.ctx = b,
		.native = be == NATIVE,
		.serialize = serialize,
		.deserialize = deserialize,
		/* only the measured operator: keys are grouped for it */
		.prefill = !b->o.prefill || be != b->o.backend ? NULL
			   : be == ARRAY		       ? prefill_array
							       : prefill_kv,
	};
	int err = mg_stateful(df, &sc, out);

	if (err || !b->o.validate)
		return err;
	return mg_sink(df, *out, sink, b);
}

static void
die(const char *what, int err)
{
	fprintf(stderr, "keycount: %s: %s\n", what, mg_strerror(err));
	exit(1);
}

static void
sleep_until(uint64_t t0, double s)
{
	struct timespec now;
	double el;

	clock_gettime(CLOCK_MONOTONIC, &now);
	el = (double)((uint64_t)now.tv_sec * 1000000000ull +
		      (uint64_t)now.tv_nsec - t0) /
	     1e9;
	if (s > el)
		nanosleep(&(struct timespec){(time_t)(s - el),
					     (long)((s - el -
						     (double)(time_t)(s - el)) *
						    1e9)},
			  NULL);
}

/* Submit one migration and wait for it; record its progress. */
static void
migrate_once(struct mg_dataflow *df, struct bench *b, const uint16_t *target,
	     double at_s, const char *what)
{
	uint64_t at = (uint64_t)(at_s * 1e6 / (double)b->o.epoch_us);
	uint64_t earliest = mg_dataflow_time_ahead(df, 0);
	struct mg_migration *m;
	int err;

	if (at < earliest)
		at = earliest;
	err = mg_migrate(df, b->o.strategy, target, at, b->o.gap, &m);
	if (err == -EINVAL && !mg_dataflow_accepts_migrations(df)) {
		fprintf(stderr,
			"keycount: %s migration not run: the input "
			"ended first (an earlier migration took too long?)\n",
			what);
		return;
	}
	if (err)
		die("cannot migrate", err);
	err = mg_migration_wait(m);
	if (err)
		fprintf(stderr, "keycount: migration did not finish: %s\n",
			mg_strerror(err));
	if (b->nmig < MAX_MIGRATIONS) {
		b->mig[b->nmig].what = what;
		mg_migration_progress(m, &b->mig[b->nmig].p);
		if (b->mig[b->nmig].p.done)
			fprintf(stderr,
				"keycount: %s migration (%s) of %u bins "
				"in %u steps: %.2f ms from epoch %llu\n",
				what, b->o.mode == MG_COPY ? "copy" : "handoff",
				b->mig[b->nmig].p.bins_moved,
				b->mig[b->nmig].p.steps,
				(double)(b->mig[b->nmig].p.end_ns -
					 b->mig[b->nmig].p.start_ns) /
					1e6,
				(unsigned long long)b->mig[b->nmig]
					.p.first_time);
		b->nmig++;
	}
}

/* The paper's protocol: at migrate_at move half the bins of half the
 * workers to the other half; at twice that, move them back.  Or a plan. */
static void
run_migrations(struct mg_dataflow *df, struct bench *b, uint64_t t0)
{
	uint32_t nbins = mg_dataflow_bins(df);
	unsigned W = mg_dataflow_workers(df);
	uint16_t *initial = malloc(sizeof(*initial) * nbins);
	uint16_t *target = malloc(sizeof(*target) * nbins);
	struct mg_migration *m;
	struct mg_plan *plan;
	char err_text[512];
	int err;

	if (!initial || !target)
		die("migration set-up", -ENOMEM);
	mg_dataflow_owners(df, initial);
	if (mg_strategy_parse(b->o.migration, &b->o.strategy)) {
		err = mg_plan_parse_file(&plan, b->o.migration, nbins, W,
					 initial, err_text, sizeof(err_text));
		if (err) {
			fprintf(stderr, "keycount: %s\n", err_text);
			exit(2);
		}
		err = mg_migrate_plan(df, plan, &m);
		mg_plan_destroy(plan);
		if (err)
			die("cannot submit the plan (are its times in the "
			    "future?)",
			    err);
		err = mg_migration_wait(m);
		if (err)
			fprintf(stderr, "keycount: plan did not finish: %s\n",
				mg_strerror(err));
		b->mig[0].what = "plan";
		mg_migration_progress(m, &b->mig[0].p);
		b->nmig = 1;
	} else {
		mg_plan_half_of_half(initial, nbins, W, target);
		sleep_until(t0, b->o.migrate_at - 0.05);
		migrate_once(df, b, target, b->o.migrate_at,
			     mg_strategy_name(b->o.strategy));
		sleep_until(t0, 2 * b->o.migrate_at - 0.05);
		migrate_once(df, b, initial, 2 * b->o.migrate_at,
			     mg_strategy_name(b->o.strategy));
	}
	free(initial);
	free(target);
}

/* Windows (t - 0.25 s, t] overlapping [a, z]. */
static bool
overlaps(const struct mg_window_stats *w, double a, double z)
{
	return w->t_s > a && w->t_s - 0.25 <= z;
}

/* Append the migrations and steady-state figures to @json. */
static void
report_migrations(const struct bench *b, char *json, size_t len)
{
	uint64_t st_p99 = 0, st_max = 0, st_rss = 0, in_rss = 0;
	size_t at = strlen(json) - 1; /* drop the closing brace */
	unsigned i, k;

	at += (size_t)snprintf(json + at, len - at,
			       ",\"mode\":\"%s\",\"migrations\":[",
			       b->o.mode == MG_COPY ? "copy" : "handoff");
	for (k = 0; k < b->nmig; k++) {
		const struct mg_migration_progress *p = &b->mig[k].p;
		double a = p->start_ns / 1e9;
		/* unfinished: it overlaps everything after its start */
		double z = p->done ? p->end_ns / 1e9 : 1e30;
		uint64_t p99 = 0, max = 0, rss = 0;

		for (i = 0; i < b->nwin; i++)
			if (overlaps(&b->win[i], a, z)) {
				p99 = b->win[i].p99 > p99 ? b->win[i].p99 : p99;
				max = b->win[i].max > max ? b->win[i].max : max;
				rss = b->win[i].rss_bytes > rss
					      ? b->win[i].rss_bytes
					      : rss;
			}
		in_rss = rss > in_rss ? rss : in_rss;
		at += (size_t)snprintf(
			json + at, len - at,
			"%s{\"strategy\":\"%s\",\"start_s\":%.3f,\"duration_"
			"ms\":%.3f,"
			"\"steps\":%u,\"bins_moved\":%u,\"bytes_moved\":%llu,"
			"\"max_latency_us\":%.1f,\"p99_latency_us\":%.1f,"
			"\"rss_peak_bytes\":%llu,\"done\":%s}",
			k ? "," : "", b->mig[k].what, a,
			p->done ? (z - a) * 1e3 : -1.0, p->steps, p->bins_moved,
			(unsigned long long)p->bytes_moved, max / 1e3,
			p99 / 1e3, (unsigned long long)rss,
			p->done ? "true" : "false");
	}
	/* steady: past the warm-up, overlapping no migration */
	for (i = 0; i < b->nwin; i++) {
		bool quiet = b->win[i].t_s - 0.25 >= b->o.warmup;

		for (k = 0; k < b->nmig && quiet; k++)
			quiet = !overlaps(
				&b->win[i], b->mig[k].p.start_ns / 1e9,
				b->mig[k].p.done ? b->mig[k].p.end_ns / 1e9
						 : 1e30);
		if (!quiet || !b->win[i].count)
			continue;
		st_p99 = b->win[i].p99 > st_p99 ? b->win[i].p99 : st_p99;
		st_max = b->win[i].max > st_max ? b->win[i].max : st_max;
		st_rss = b->win[i].rss_bytes > st_rss ? b->win[i].rss_bytes
						      : st_rss;
	}
	snprintf(json + at, len - at,
		 "],\"steady\":{\"p99_us\":%.1f,\"max_us\":%.1f,"
		 "\"rss_peak_bytes\":%llu},\"rss_peak_migrating_bytes\":%llu}",
		 st_p99 / 1e3, st_max / 1e3, (unsigned long long)st_rss,
		 (unsigned long long)in_rss);
}

int
main(int argc, char **argv)
{
	static struct bench b;
	struct mg_dataflow_config dc = {0};
	struct mg_source_config src;
	struct mg_stream *s, *out, *ref;
	struct mg_run_stats st;
	struct mg_dataflow *df;
	char path[4096], json[8192];
	uint64_t t0;
	bool ok = true;
	int err;

	parse(argc, argv, &b.o);
	b.k = (unsigned)b.o.bins_log2;
	b.ntimes = (uint64_t)(b.o.duration * 1e6 / (double)b.o.epoch_us) + 2;
	if (b.o.validate) {
		b.fp[0] = calloc(b.o.workers * b.ntimes, sizeof(struct fp));
		b.fp[1] = calloc(b.o.workers * b.ntimes, sizeof(struct fp));
		if (!b.fp[0] || !b.fp[1])
			die("fingerprints", -ENOMEM);
	}
	if (b.o.out) {
		mkdir(b.o.out, 0755);
		snprintf(path, sizeof(path), "%s/timeline.csv", b.o.out);
		b.csv = fopen(path, "w");
		if (!b.csv) {
			fprintf(stderr, "keycount: cannot write %s\n", path);
			return 1;
		}
		fprintf(b.csv, "t_s,count,p25_us,p50_us,p75_us,p95_us,p99_us,"
			       "p999_us,max_us,rss_mib\n");
	}

	dc.workers = (unsigned)b.o.workers;
	dc.bins_log2 = b.k;
	dc.epoch_ns = b.o.epoch_us * 1000;
	dc.ring_capacity = (uint32_t)b.o.ring;
	dc.batch_records = (uint32_t)b.o.batch;
	dc.mode = b.o.mode;
	dc.warmup_ns = (uint64_t)(b.o.warmup * 1e9);
	err = mg_dataflow_create(&df, &dc);
	if (err)
		die("cannot create the dataflow (more workers than CPUs?)",
		    err);
	src = (struct mg_source_config){
		.record_size = sizeof(struct rec),
		.rate = (double)b.o.rate,
		.duration_ns = (uint64_t)(b.o.duration * 1e9),
		.gen = gen,
		.ctx = &b,
	};
	err = mg_source(df, &src, &s);
	if (!err)
		err = add_counter(df, &b, s, b.o.backend, sink_measured, &out);
	if (!err && b.o.validate)
		err = add_counter(df, &b, s,
				  b.o.backend == NATIVE ? KV : NATIVE,
				  sink_reference, &ref);
	if (!err)
		err = mg_probe(df, out);
	if (err)
		die("cannot build the dataflow", err);

	fprintf(stderr,
		"keycount: %s, %llu workers, 2^%u bins, %llu keys, "
		"%.0f rec/s for %.1f s%s%s\n",
		backend_name[b.o.backend], (unsigned long long)b.o.workers, b.k,
		(unsigned long long)b.o.domain, (double)b.o.rate, b.o.duration,
		b.o.prefill ? ", prefilled" : "",
		b.o.validate ? ", validating" : "");
	if (b.o.prefill && b.o.backend != ARRAY)
		group_keys(&b);
	b.win = calloc(MAX_WINDOWS, sizeof(*b.win));
	if (!b.win)
		die("windows", -ENOMEM);
	t0 = mg_now_ns();
	err = mg_dataflow_start(df, on_window, &b);
	if (err)
		die("cannot start", err);
	if (b.o.migration)
		run_migrations(df, &b, t0);
	err = mg_dataflow_join(df, &st);
	if (err)
		die("the run failed", err);
	if (b.o.validate)
		ok = validate(&b);

	snprintf(
		json, sizeof(json),
		"{\"bench\":\"keycount\",\"workers\":%llu,\"bins_log2\":%u,"
		"\"backend\":\"%s\",\"domain\":%llu,\"epoch_us\":%llu,"
		"\"rate_offered\":%llu,\"rate_achieved\":%.0f,\"records\":%llu,"
		"\"duration_s\":%.3f,\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,"
		"\"p999\":%.1f,\"max\":%.1f},\"state_bytes\":%llu,"
		"\"rss_peak_bytes\":%llu,\"validate\":\"%s\"}",
		(unsigned long long)b.o.workers, b.k, backend_name[b.o.backend],
		(unsigned long long)b.o.domain,
		(unsigned long long)b.o.epoch_us, (unsigned long long)b.o.rate,
		(double)st.records / st.duration_s,
		(unsigned long long)st.records, st.duration_s, st.p50 / 1e3,
		st.p99 / 1e3, st.p999 / 1e3, st.max / 1e3,
		(unsigned long long)st.state_bytes,
		(unsigned long long)st.rss_peak_bytes,
		!b.o.validate ? "off"
		: ok	      ? "ok"
			      : "failed");
	if (b.o.migration)
		report_migrations(&b, json, sizeof(json));
	puts(json);
	if (b.o.out && b.nmig) { /* marks for bench/plot */
		FILE *f;

		snprintf(path, sizeof(path), "%s/migrations.txt", b.o.out);
		f = fopen(path, "w");
		for (unsigned k = 0; f && k < b.nmig; k++) {
			double a = b.mig[k].p.start_ns / 1e9;
			double z = b.mig[k].p.end_ns / 1e9;

			/* at least a visible sliver on a seconds axis */
			fprintf(f, "%.4f %.4f %s\n", a,
				z > a + 0.02 ? z : a + 0.02, b.mig[k].what);
		}
		if (f)
			fclose(f);
	}
	if (b.o.out) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/summary.json", b.o.out);
		f = fopen(path, "w");
		if (f) {
			fprintf(f, "%s\n", json);
			fclose(f);
		}
	}
	if (b.csv)
		fclose(b.csv);
	mg_dataflow_destroy(df);
	free(b.fp[0]);
	free(b.fp[1]);
	free(b.win);
	free(b.by_bin_off);
	free(b.by_bin);
	return ok ? 0 : 1;
}
