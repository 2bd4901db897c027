/*
 * keycount - Megaphone's key-count benchmark on the engine.
 *
 * An open-loop source produces 16-byte records {key, seq} with keys drawn
 * from [0, domain) -- uniformly, or Zipf-distributed with --keys zipf:S, hot
 * keys that change every --hot-shift seconds and, with --skew-start, start
 * in worker 0's bins (bench/bench_keys.h); a stateful operator counts each
 * key and emits (key, running count) for every record.  Backends:
 *
 *   kv      a hash map per bin (mg_map), bins by the top bits of mg_hash64(key);
 *   array   a dense array per bin: bin = key mod 2^k, slot = key >> k;
 *   native  the same counting function with static partitioning
 *           (worker = hash mod W): one hash map per worker, no bins.
 *
 * --validate runs a reference operator on the same input in the same
 * dataflow (native for kv/array, kv for native) and compares the multiset of
 * outputs of every timestamp (count and an order-independent hash of the
 * records); any difference fails the run with exit status 1.  Each record
 * gives one output, so the summary's records_lost (records the schedule
 * has, less outputs of the measured operator) is 0 in a correct run.
 *
 * For a soak: --migration random --migrate-every S moves random bins to
 * random workers every S seconds (bench_run.h), and --validate checks an
 * hour in chunks of timestamps in memory that does not grow with the run.
 *
 * --input push: the same open-loop schedule, pushed by --producers
 * application threads through an application input (mg_push_wait at
 * MG_TIME_NOW, bursts of what is due) instead of generated inside the
 * workers; producer p pushes records p, p + P, ..., pinned to the CPUs after
 * the workers'.  Latency then runs from each record's push.
 *
 * --balance on starts the engine's balancer with the run (a shared flag,
 * bench_run_start()): it moves bins to even out the workers' load,
 * in --mode handoff or copy; its decisions go into the JSON summary and the
 * plot's marks.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_keys.h"
#include "bench/bench_run.h"
#include "bench/bench_util.h"
#include "engine/megaphone.h"
#include "numa/mg_base.h"

#define MAX_PRODUCERS 64
#define PUSH_BURST    64
#define MAX_PHASES    32
/* Records a generator looks ahead (make_rec()). */
#define GEN_AHEAD 8

enum backend { KV, ARRAY, NATIVE };
static const char *const backend_name[] = {"kv", "array", "native"};

struct rec {
	uint64_t key;
	uint64_t seq;
};

/* --rate-profile: phase i offers rate[i] records/s for secs[i] seconds;
 * its records are first[i] .. first[i + 1] - 1, due from start_ns[i]. */
struct profile {
	unsigned n; /* 0: a constant --rate */
	double rate[MAX_PHASES], secs[MAX_PHASES];
	uint64_t first[MAX_PHASES + 1], start_ns[MAX_PHASES + 1];
};

struct opts {
	struct bench_opts b;
	struct profile prof;
	const char *prof_text;
	uint64_t domain, seed, producers;
	enum backend backend;
	bool prefill, push, no_stats;
	const char *keys; /* the --keys text */
	double zipf;	  /* 0: uniform */
	double hot_shift; /* seconds; 0: never */
	bool skew_start;
};

/* What each bin (or native worker) keeps: a map (kv, native) or an array,
 * one backend per run. */
union root {
	struct mg_map map;
	struct mg_array arr;
};

struct bench {
	struct opts o;
	unsigned k;
	struct bench_keys keys;
	struct bench_run run;
	uint64_t *by_bin_off; /* prefill: keys of bin b are */
	uint64_t *by_bin;     /* by_bin[by_bin_off[b] .. by_bin_off[b + 1]) */
};

/* When record @seq is due (ns after the start): mg_sched_fn. */
static uint64_t
due(void *ctx, uint64_t seq)
{
	const struct bench *b = ctx;
	const struct profile *pr = &b->o.prof;
	unsigned i = 0;

	if (!pr->n)
		return mg_sched_ns((double)b->o.b.rate, seq);
	if (seq >= pr->first[pr->n])
		return pr->start_ns[pr->n]; /* the end */
	while (seq >= pr->first[i + 1])
		i++;
	return pr->start_ns[i] +
	       (uint64_t)((double)(seq - pr->first[i]) * 1e9 / pr->rate[i]);
}

/* "R:S[,R:S...]" into @pr; false if malformed. */
static bool
parse_profile(const char *text, struct profile *pr)
{
	char buf[1024], *save = NULL, *tok, *colon;
	double sum = 0;

	if (strlen(text) >= sizeof(buf))
		return false;
	strcpy(buf, text);
	pr->n = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t r;

		colon = strchr(tok, ':');
		if (!colon || pr->n == MAX_PHASES)
			return false;
		*colon = '\0';
		if (bench_parse_u64(tok, 1, 1000000000ull, &r) ||
		    bench_parse_double(colon + 1, 0.001, 86400,
				       &pr->secs[pr->n]))
			return false;
		pr->rate[pr->n++] = (double)r;
	}
	if (!pr->n)
		return false;
	for (unsigned i = 0; i < pr->n; i++) {
		pr->first[i + 1] = pr->first[i] +
				   (uint64_t)llround(pr->rate[i] * pr->secs[i]);
		sum += pr->secs[i];
		pr->start_ns[i + 1] = (uint64_t)(sum * 1e9);
	}
	return true;
}

/* Record @seq into @r, and prefetch what drawing the key of record seq +
 * @ahead reads first: a source or a producer makes every stride-th record,
 * so @ahead is GEN_AHEAD strides. */
static void
make_rec(const struct bench *b, uint64_t seq, uint64_t ahead, struct rec *r)
{
	bench_keys_prefetch(&b->keys, seq + ahead);
	r->key = bench_keys_key(&b->keys, seq);
	r->seq = seq;
}

/* mg_gen_fn: worker w's source makes records w, w + W, ... */
static void
gen(void *ctx, unsigned worker, uint64_t seq, void *out)
{
	const struct bench *b = ctx;

	(void)worker;
	make_rec(b, seq, (uint64_t)GEN_AHEAD * b->o.b.workers, out);
}

static uint64_t
hash_kv(void *ctx, const void *rec)
{
	(void)ctx;
	return mg_hash64(((const struct rec *)rec)->key +
			 0x632be59bd9b4e019ull);
}

/* Array backend: top k bits = key mod 2^k (the bin), low bits = slot. */
static uint64_t
hash_array(void *ctx, const void *rec)
{
	const struct bench *b = ctx;
	uint64_t key = ((const struct rec *)rec)->key;

	return (key & ((1ull << b->k) - 1)) << (64 - b->k) | key >> b->k;
}

/* The bin of @key in the measured operator (--skew-start). */
static uint32_t
bin_of_key(void *ctx, uint64_t key)
{
	struct rec r = {key, 0};
	const struct bench *b = ctx;

	return mg_bin_of(b->o.backend == ARRAY ? hash_array(ctx, &r)
					       : hash_kv(ctx, &r),
			 b->k);
}

static void
count_kv(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct rec *in = c->in[0];
	union root *root = c->state;
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

/* The slot the kv operator will look up (the engine calls it ahead). */
static void
prefetch_kv(void *ctx, const void *state, unsigned in, const void *rec)
{
	const union root *root = state;

	(void)ctx;
	(void)in;
	if (root->map.value_size)
		mg_map_prefetch(&root->map, ((const struct rec *)rec)->key);
}

static void
count_array(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct bench *b = ctx;
	const struct rec *in = c->in[0];
	union root *root = c->state;
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
	uint64_t groups =
		b->o.backend == NATIVE ? b->o.b.workers : 1ull << b->k;
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
	union root *root = c->state;
	uint64_t i;
	void *v;
	int err;

	if (b->by_bin_off[c->bin] == b->by_bin_off[c->bin + 1])
		return 0; /* no key: the engine drops the untouched bin */
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
	union root *root = c->state;
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
	const union root *root = c->state;

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
	union root *root = c->state;

	if (b->o.backend == ARRAY) {
		mg_array_init(&root->arr, (b->o.domain >> b->k) + 1,
			      sizeof(uint64_t));
		return mg_array_read(&root->arr, c->arena, r);
	}
	mg_map_init(&root->map, sizeof(uint64_t));
	return mg_map_read(&root->map, c->arena, r);
}

/* ---- --input push: application threads push the schedule ------------------- */

struct pusher {
	struct bench *b;
	struct mg_producer *p;
	unsigned id;
	uint64_t t0; /* the run's start, mg_now_ns() */
	pthread_t thread;
	int err;
};

/* Push records id, id + P, ... as they fall due on the open-loop schedule,
 * in bursts of what is due; sleep when the next is far. */
static void *
pusher_main(void *arg)
{
	struct pusher *u = arg;
	struct bench *b = u->b;
	uint64_t P = b->o.producers, k = 0,
		 dur = (uint64_t)(b->o.b.duration * 1e9);
	struct rec buf[PUSH_BURST];
	bool done = false;

	bench_pin_nth((unsigned)(b->o.b.workers + u->id));
	while (!done && !u->err) {
		uint64_t now = mg_now_ns() - u->t0, at = 0;
		uint32_t n = 0;

		while (n < PUSH_BURST) {
			uint64_t seq = u->id + k * P;

			at = due(b, seq);
			if (at >= dur) {
				done = true;
				break;
			}
			if (at > now)
				break;
			make_rec(b, seq, (uint64_t)GEN_AHEAD * P, &buf[n++]);
			k++;
		}
		if (n && mg_push_wait(u->p, MG_TIME_NOW, buf, sizeof(buf[0]), n,
				      MG_FOREVER) != (int)n)
			u->err = -EPIPE;
		else if (!n && !done && at - now > 200000)
			nanosleep(&(struct timespec){0,
						     (long)(at - now - 100000)},
				  NULL);
	}
	if (!u->err)
		u->err = mg_producer_close(u->p);
	return NULL;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: keycount [options]\n"
		"Megaphone's key-count benchmark: count keys in bins, "
		"open-loop input.\n"
		"\n"
		"  --domain N         distinct keys (default 1M)\n"
		"  --backend B        kv | array | native (default kv)\n"
		"  --prefill          build every key's state before the clock "
		"starts\n"
		"  --seed N           key stream seed (default 1)\n"
		"  --input I          gen: generated in the workers; push: "
		"pushed by\n"
		"                     application threads (default gen)\n"
		"  --producers P      pushing threads with --input push "
		"(default 1)\n"
		"  --no-stats         do not count per-bin and per-worker "
		"load\n"
		"  --keys K           uniform | zipf:S, Zipf exponent S in "
		"0.01..10\n"
		"                     (default uniform)\n"
		"  --hot-shift S      zipf: the hot keys change every S "
		"seconds\n"
		"  --skew-start       zipf: the hot keys start in worker 0's "
		"bins\n"
		"  --rate-profile R:S[,R:S...]  offer R records/s for S "
		"seconds, then\n"
		"                     the next (a load that rises and falls); "
		"sets\n"
		"                     --rate (its peak) and --duration (the "
		"sum)\n"
		"%s"
		"                     (native; kv for --backend native)\n"
		"  --help             this text\n"
		"\n"
		"Progress on stderr; one JSON summary line on stdout.  Numbers "
		"accept\n"
		"k, M, G suffixes.  Pin with numactl --physcpubind.\n",
		bench_opts_help);
}

static void
parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		BENCH_OPTIONS,
		{"domain", required_argument, NULL, 'D'},
		{"backend", required_argument, NULL, 'B'},
		{"prefill", no_argument, NULL, 'p'},
		{"seed", required_argument, NULL, 's'},
		{"input", required_argument, NULL, 'i'},
		{"producers", required_argument, NULL, 'P'},
		{"no-stats", no_argument, NULL, 'S'},
		{"keys", required_argument, NULL, 'K'},
		{"hot-shift", required_argument, NULL, 'H'},
		{"skew-start", no_argument, NULL, 'W'},
		{"rate-profile", required_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *p = argv[0];
	int c;

	memset(o, 0, sizeof(*o));
	bench_opts_defaults(&o->b);
	o->b.record_max = sizeof(struct rec);
	o->domain = 1000000;
	o->seed = 1;
	o->producers = 1;
	o->backend = KV;
	o->keys = "uniform";
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'D':
			if (bench_parse_u64(optarg, 1, 1ull << 40, &o->domain))
				bench_bad_usage(p, "bad --domain '%s'", optarg);
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
		case 'p':
			o->prefill = true;
			break;
		case 's':
			if (bench_parse_u64(optarg, 0, UINT64_MAX, &o->seed))
				bench_bad_usage(p, "bad --seed '%s'", optarg);
			break;
		case 'i':
			if (!strcmp(optarg, "push") || !strcmp(optarg, "gen"))
				o->push = !strcmp(optarg, "push");
			else
				bench_bad_usage(p,
						"--input must be gen or push");
			break;
		case 'P':
			if (bench_parse_u64(optarg, 1, MAX_PRODUCERS,
					    &o->producers))
				bench_bad_usage(p,
						"bad --producers '%s' (1..%d)",
						optarg, MAX_PRODUCERS);
			break;
		case 'S':
			o->no_stats = true;
			break;
		case 'K':
			if (bench_keys_parse(optarg, &o->zipf))
				bench_bad_usage(p,
						"--keys must be uniform or "
						"zipf:S with S in 0.01..10, "
						"not '%s'",
						optarg);
			o->keys = optarg;
			break;
		case 'H':
			if (bench_parse_double(optarg, 0.001, 86400,
					       &o->hot_shift))
				bench_bad_usage(p, "bad --hot-shift '%s'",
						optarg);
			break;
		case 'W':
			o->skew_start = true;
			break;
		case 'R':
			if (!parse_profile(optarg, &o->prof))
				bench_bad_usage(p,
						"bad --rate-profile '%s' "
						"(R:S[,R:S...], at most %d "
						"phases, S in 0.001..86400)",
						optarg, MAX_PHASES);
			o->prof_text = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			if (!bench_opts_parse(&o->b, c, optarg, p))
				bench_bad_usage(p, "unknown option");
		}
	}
	if (optind < argc)
		bench_bad_usage(p, "unexpected argument '%s'", argv[optind]);
	o->b.seed = o->seed; /* random migrations draw from it too */
	if (o->prof.n) {
		o->b.rate = 0;
		for (unsigned i = 0; i < o->prof.n; i++)
			if (o->prof.rate[i] > (double)o->b.rate)
				o->b.rate = (uint64_t)o->prof.rate[i];
		o->b.duration = (double)o->prof.start_ns[o->prof.n] / 1e9;
	}
	bench_opts_finish(&o->b, p);
	if (o->prof.n && o->hot_shift)
		bench_bad_usage(p, "--hot-shift times its shifts by --rate: "
				   "not with --rate-profile");
	if (o->b.migration && o->backend == NATIVE)
		bench_bad_usage(p, "the native backend has no bins to migrate");
	if ((o->hot_shift || o->skew_start) && !o->zipf)
		bench_bad_usage(p,
				"%s needs --keys zipf:S (uniform keys have "
				"no hot keys)",
				o->hot_shift ? "--hot-shift" : "--skew-start");
	if (o->skew_start && o->backend == NATIVE)
		bench_bad_usage(p, "--skew-start places keys in bins: the "
				   "native backend has none");
	if (o->b.balance && o->backend == NATIVE)
		bench_bad_usage(p, "the native backend has no bins to balance");
	if (o->b.balance && o->no_stats)
		bench_bad_usage(p, "--balance needs the load statistics "
				   "(--no-stats)");
}

/* Add one counting operator reading @in; its output goes to @sink.
 * Return: its output (NULL: the dataflow latched the error). */
static struct mg_stream *
add_counter(struct mg_dataflow *df, struct bench *b, struct mg_stream *in,
	    enum backend be, mg_sink_fn sink)
{
	struct mg_stateful_config sc = {
		.ninputs = 1,
		.in = {in},
		.hash = {be == ARRAY ? hash_array : hash_kv},
		.hash_ctx = b,
		.out_record_size = sizeof(struct rec),
		.state_size = sizeof(union root),
		.fn = be == ARRAY ? count_array : count_kv,
		.prefetch = be == ARRAY ? NULL : prefetch_kv,
		.ctx = b,
		.native = be == NATIVE,
		.serialize = serialize,
		.deserialize = deserialize,
		/* only the measured operator: keys are grouped for it */
		.prefill = !b->o.prefill || be != b->o.backend ? NULL
			   : be == ARRAY		       ? prefill_array
							       : prefill_kv,
	};
	struct mg_stream *out = mg_stateful(df, &sc);

	if (b->o.b.validate)
		mg_sink(df, out, sink, &b->run);
	return out;
}

/* Records the open-loop schedule has: those due before the input ends
 * (the first one due at or after it, by bisection: due() is monotone). */
static uint64_t
scheduled(const struct bench *b, uint64_t duration_ns)
{
	uint64_t lo = 0,
		 hi = (uint64_t)(b->o.b.duration * (double)b->o.b.rate) + 2;

	while (due((void *)b, hi) < duration_ns)
		hi *= 2;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (due((void *)b, mid) < duration_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
main(int argc, char **argv)
{
	static struct bench b;
	struct mg_dataflow_config dc;
	struct mg_source_config src;
	static struct pusher pushers[MAX_PRODUCERS];
	static char json[1 << 20]; /* room for the balancer's events */
	struct bench_keys_config kc;
	struct mg_stream *s, *out;
	struct mg_input *in = NULL;
	struct mg_run_stats st;
	struct mg_dataflow *df;
	char lost[64] = "null";
	uint64_t t0, sched, outputs = 0;
	bool ok = true;
	int err;

	parse(argc, argv, &b.o);
	b.k = (unsigned)b.o.b.bins_log2;
	kc = (struct bench_keys_config){
		.domain = b.o.domain,
		.seed = b.o.seed,
		.zipf = b.o.zipf,
		.rate = (double)b.o.b.rate,
		.shift_s = b.o.hot_shift,
		.skew = b.o.skew_start,
		.workers = (unsigned)b.o.b.workers,
		.bin_of = bin_of_key,
		.bin_ctx = &b,
	};
	err = bench_keys_init(&b.keys, &kc);
	if (err)
		bench_die("keycount", "cannot set up the keys", err);
	/* pushed records carry the epoch of their push, which a producer
	 * that falls behind makes later than its schedule: room for 10 s */
	bench_run_init(&b.run, "keycount", &b.o.b, sizeof(struct rec),
		       (uint64_t)((b.o.b.duration + (b.o.push ? 10 : 0)) * 1e6 /
				  (double)b.o.b.epoch_us) +
			       2);
	bench_run_config(&b.run, &dc);
	dc.no_stats = b.o.no_stats;
	err = mg_dataflow_create(&df, &dc);
	if (err)
		bench_run_die_create(&b.run, err);
	src = (struct mg_source_config){
		.record_size = sizeof(struct rec),
		.rate = (double)b.o.b.rate,
		.duration_ns = (uint64_t)(b.o.b.duration * 1e9),
		.gen = gen,
		.ctx = &b,
		.sched = b.o.prof.n ? due : NULL,
	};
	if (b.o.push) {
		s = mg_input(df, sizeof(struct rec), &in);
		for (unsigned i = 0; i < b.o.producers && s; i++) {
			pushers[i] = (struct pusher){.b = &b, .id = i};
			err = mg_producer_open(in, MG_ANY_WORKER,
					       &pushers[i].p);
			if (err)
				bench_die("keycount", "cannot open a producer",
					  err);
		}
		if (s)
			mg_input_close(in); /* these are all */
	} else {
		s = mg_source(df, &src);
	}
	out = add_counter(df, &b, s, b.o.backend, bench_run_sink_measured);
	if (b.o.b.validate)
		add_counter(df, &b, s, b.o.backend == NATIVE ? KV : NATIVE,
			    bench_run_sink_reference);
	mg_probe(df, out);
	err = mg_dataflow_error(df);
	if (err)
		bench_die("keycount", "cannot build the dataflow", err);
	err = bench_run_start(&b.run, df);
	if (err)
		bench_die("keycount", "cannot start the balancer", err);

	fprintf(stderr,
		"keycount: %s, %llu workers, 2^%u bins, %llu keys (%s%s%s), "
		"%.0f rec/s for %.1f s%s%s%s\n",
		backend_name[b.o.backend], (unsigned long long)b.o.b.workers,
		b.k, (unsigned long long)b.o.domain, b.o.keys,
		b.o.hot_shift ? ", shifting" : "",
		b.o.skew_start ? ", skewed start" : "", (double)b.o.b.rate,
		b.o.b.duration, b.o.prefill ? ", prefilled" : "",
		b.o.b.validate ? ", validating" : "",
		b.o.b.balance ? ", balancing" : "");
	if (b.o.prefill && b.o.backend != ARRAY)
		group_keys(&b);
	t0 = mg_now_ns();
	err = mg_dataflow_start(df, bench_run_on_window, &b.run);
	if (err)
		bench_die("keycount", "cannot start", err);
	for (unsigned i = 0; b.o.push && i < b.o.producers; i++) {
		pushers[i].t0 = t0;
		if (pthread_create(&pushers[i].thread, NULL, pusher_main,
				   &pushers[i]))
			bench_die("keycount", "cannot start a producer",
				  -EAGAIN);
	}
	bench_run_migrate(&b.run, df, t0);
	for (unsigned i = 0; b.o.push && i < b.o.producers; i++) {
		pthread_join(pushers[i].thread, NULL);
		if (pushers[i].err)
			bench_die("keycount", "a producer failed",
				  pushers[i].err);
	}
	bench_run_join(&b.run, df, &st);
	if (b.o.b.validate)
		ok = bench_run_validate(&b.run);
	sched = scheduled(&b, (uint64_t)(b.o.b.duration * 1e9));
	if (b.o.b.validate) {
		outputs = bench_run_outputs(&b.run, 0);
		snprintf(lost, sizeof(lost), "%lld",
			 (long long)(sched - outputs));
	}

	snprintf(
		json, sizeof(json),
		"{\"bench\":\"keycount\",\"workers\":%llu,\"bins_log2\":%u,"
		"\"backend\":\"%s\",\"input\":\"%s\",\"producers\":%llu,"
		"\"domain\":%llu,\"keys\":\"%s\",\"hot_shift_s\":%g,"
		"\"skew_start\":%s,\"rate_profile\":\"%s\",\"epoch_us\":%llu,"
		"\"rate_offered\":%llu,\"rate_achieved\":%.0f,\"records\":%llu,"
		"\"records_scheduled\":%llu,\"outputs\":%llu,"
		"\"records_lost\":%s,"
		"\"duration_s\":%.3f,\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,"
		"\"p999\":%.1f,\"max\":%.1f},\"state_bytes\":%llu,"
		"\"rss_peak_bytes\":%llu,\"cpu_s\":%.3f,"
		"\"active_final\":%u,\"validate\":\"%s\"}",
		(unsigned long long)b.o.b.workers, b.k,
		backend_name[b.o.backend], b.o.push ? "push" : "gen",
		(unsigned long long)(b.o.push ? b.o.producers : 0),
		(unsigned long long)b.o.domain, b.o.keys, b.o.hot_shift,
		b.o.skew_start ? "true" : "false",
		b.o.prof_text ? b.o.prof_text : "",
		(unsigned long long)b.o.b.epoch_us,
		(unsigned long long)b.o.b.rate,
		bench_run_achieved(&b.run, st.records),
		(unsigned long long)st.records, (unsigned long long)sched,
		(unsigned long long)outputs, lost, st.duration_s, st.p50 / 1e3,
		st.p99 / 1e3, st.p999 / 1e3, st.max / 1e3,
		(unsigned long long)st.state_bytes,
		(unsigned long long)st.rss_peak_bytes, bench_cpu_s(),
		mg_dataflow_active(df),
		!b.o.b.validate ? "off"
		: ok		? "ok"
				: "failed");
	bench_run_report(&b.run, json, sizeof(json));
	bench_run_destroy(&b.run);
	bench_opts_destroy(&b.o.b);
	mg_dataflow_destroy(df);
	bench_keys_destroy(&b.keys);
	free(b.by_bin_off);
	free(b.by_bin);
	return ok ? 0 : 1;
}
