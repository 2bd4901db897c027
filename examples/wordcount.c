/*
 * wordcount - count the words of some files (or stdin) with megaphone.
 *
 *   wordcount [--workers N] [--window LINES] [--top N] [--migrate-at W] FILE...
 *
 * One reader thread per file pushes its words into an application input,
 * through its own producer.  A window is LINES lines of each file: window w
 * is logical time w, and a reader promises that a window is over
 * (mg_producer_advance) when it reaches the next one.  A stateful operator
 * keeps per-word counts in bins; for every word a window touched it emits
 * {word, count in the window, count so far}.  The main thread takes each
 * window's output from an output queue as soon as the window is complete,
 * prints its top N words, and at the end prints every word's final count:
 *
 *   window 0: the=61 of=33 and=29
 *   ...
 *   total 1201 the
 *   total 640 of
 *
 * With --migrate-at W, when window W is complete half of the bins move to
 * other workers -- live, while the readers push: the counts do not change.
 * Words are runs of letters and digits, lower-cased, cut to 31 bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <megaphone.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORD_MAX 32 /* bytes with the terminating NUL */

struct word {
	char w[WORD_MAX];
};

/* The operator's output: a word a window touched, with its counts. */
struct count {
	char w[WORD_MAX];
	uint64_t window, total;
};

/* What a bin keeps per word. */
struct entry {
	uint64_t total, window, last_time, emitted_time;
};

static uint64_t
word_hash(const char *w)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *w; w++)
		h = (h ^ (unsigned char)*w) * 1099511628211ull;
	return h;
}

static uint64_t
hash(void *ctx, const void *rec)
{
	(void)ctx;
	return mg_hash64(word_hash(((const struct word *)rec)->w));
}

/* Once per (bin, window): count, then emit each word touched once. */
static void
count_words(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	struct mg_map *m = c->state;
	const struct word *in = c->in[0];
	void *v;

	(void)ctx;
	if (!m->value_size)
		mg_map_init(m, sizeof(struct entry));
	for (uint32_t i = 0; i < c->n_in[0]; i++) {
		struct entry *e;

		if (mg_map_upsert(m, c->arena, word_hash(in[i].w), &v) < 0) {
			c->error = -ENOMEM; /* the run stops; join says so */
			return;
		}
		e = v;
		if (e->last_time != c->time + 1) { /* first in this window */
			e->window = 0;
			e->last_time = c->time + 1;
		}
		e->window++;
		e->total++;
	}
	for (uint32_t i = 0; i < c->n_in[0]; i++) {
		struct entry *e = mg_map_find(m, word_hash(in[i].w));
		struct count o;

		if (e->emitted_time == c->time + 1)
			continue;
		e->emitted_time = c->time + 1;
		memcpy(o.w, in[i].w, WORD_MAX);
		o.window = e->window;
		o.total = e->total;
		mg_emit(out, &o);
	}
}

/* Copy mode is not used here; a migration hands the bins over. */

struct reader {
	const char *path; /* NULL: stdin */
	struct mg_producer *p;
	uint64_t lines_per_window;
	pthread_t thread;
	int err;
};

/* Read one file, push its words, one window per lines_per_window lines. */
static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	FILE *f = r->path ? fopen(r->path, "r") : stdin;
	struct word batch[256];
	uint32_t n = 0;
	uint64_t line = 0, window = 0;
	char *buf = NULL;
	size_t cap = 0;
	int err = 0;

	if (!f) {
		r->err = -errno;
		mg_producer_close(r->p);
		return NULL;
	}
	while (!err && getline(&buf, &cap, f) >= 0) {
		if (line++ / r->lines_per_window != window) {
			/* flush this window, then promise it is over */
			if (n &&
			    mg_push_wait(r->p, window, batch, sizeof(batch[0]),
					 n, MG_FOREVER) != (int)n)
				err = -EPIPE;
			n = 0;
			window = (line - 1) / r->lines_per_window;
			if (!err)
				err = mg_producer_advance(r->p, window);
		}
		for (char *s = buf; *s && !err;) {
			size_t len = 0;

			while (*s && !isalnum((unsigned char)*s))
				s++;
			if (!*s)
				break;
			memset(&batch[n], 0, sizeof(batch[n]));
			for (; isalnum((unsigned char)*s); s++)
				if (len < WORD_MAX - 1)
					batch[n].w[len++] = (char)tolower(
						(unsigned char)*s);
			if (++n == 256) {
				if (mg_push_wait(r->p, window, batch,
						 sizeof(batch[0]), n,
						 MG_FOREVER) != (int)n)
					err = -EPIPE;
				n = 0;
			}
		}
	}
	if (!err && n &&
	    mg_push_wait(r->p, window, batch, sizeof(batch[0]), n,
			 MG_FOREVER) != (int)n)
		err = -EPIPE;
	if (ferror(f))
		err = -EIO;
	if (f != stdin)
		fclose(f);
	free(buf);
	r->err = err;
	mg_producer_close(r->p); /* this file's frontier no longer holds */
	return NULL;
}

/* The final counts, by word: an open-addressing table on the main thread. */
struct totals {
	struct count *v;
	size_t cap, n;
};

static int
totals_put(struct totals *t, const struct count *c)
{
	size_t i;

	if (2 * (t->n + 1) > t->cap) {
		struct totals g = {
			calloc(t->cap ? 2 * t->cap : 1024, sizeof(*g.v)),
			t->cap ? 2 * t->cap : 1024, 0};

		if (!g.v)
			return -ENOMEM;
		for (i = 0; i < t->cap; i++)
			if (t->v[i].w[0])
				totals_put(&g, &t->v[i]);
		free(t->v);
		*t = g;
	}
	for (i = word_hash(c->w) & (t->cap - 1); t->v[i].w[0];
	     i = (i + 1) & (t->cap - 1))
		if (!strcmp(t->v[i].w, c->w)) {
			if (c->total > t->v[i].total)
				t->v[i].total = c->total;
			return 0;
		}
	t->v[i] = *c;
	t->n++;
	return 0;
}

static int
by_window(const void *a, const void *b)
{
	const struct count *x = a, *y = b;

	if (x->window != y->window)
		return x->window > y->window ? -1 : 1;
	return strcmp(x->w, y->w);
}

static int
by_total(const void *a, const void *b)
{
	const struct count *x = a, *y = b;

	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp(x->w, y->w);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: wordcount [options] [FILE...]   (no FILE: stdin)\n"
		   "  --workers N      worker threads (default 2)\n"
		   "  --window LINES   lines of each file per window (default "
		   "1000)\n"
		   "  --top N          words printed per window (default 3)\n"
		   "  --migrate-at W   move half the bins when window W is "
		   "complete\n"
		   "  --help\n");
}

/* @s as a decimal number >= @min, or exit(2) saying why. */
static uint64_t
number_from(const char *s, const char *flag, uint64_t min)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
	if (!isdigit((unsigned char)*s) || *end || errno || v < min) {
		fprintf(stderr,
			"wordcount: %s wants a number >= %llu, not "
			"'%s' (--help)\n",
			flag, (unsigned long long)min, s);
		exit(2);
	}
	return v;
}

static uint64_t
number(const char *s, const char *flag)
{
	return number_from(s, flag, 1);
}

static uint64_t
number0(const char *s, const char *flag)
{
	return number_from(s, flag, 0);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"workers", required_argument, NULL, 'w'},
		{"window", required_argument, NULL, 'l'},
		{"top", required_argument, NULL, 't'},
		{"migrate-at", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mg_dataflow_config cfg = {.workers = 2, .oversubscribe = true};
	struct mg_stateful_config op = {
		.ninputs = 1,
		.hash = {hash},
		.out_record_size = sizeof(struct count),
		.state_size = sizeof(struct mg_map),
		.fn = count_words,
	};
	uint64_t window = 1000, top = 3, migrate_at = UINT64_MAX;
	struct mg_dataflow *df = NULL;
	struct mg_input *in;
	struct mg_output *out;
	struct mg_output_time t;
	struct totals totals = {0};
	struct reader *rd;
	unsigned nr, i;
	int c, err;
	const char *stage = NULL; /* what failed, while setting up */

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			cfg.workers = (unsigned)number(optarg, "--workers");
			break;
		case 'l':
			window = number(optarg, "--window");
			break;
		case 't':
			top = number(optarg, "--top");
			break;
		case 'm':
			migrate_at = number0(optarg, "--migrate-at");
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	nr = optind < argc ? (unsigned)(argc - optind) : 1;
	rd = calloc(nr, sizeof(*rd));
	if (!rd)
		return 1;

	/* The pipeline: input -> counting in bins -> output queue. */
	stage = "cannot create the dataflow";
	if ((err = mg_dataflow_create(&df, &cfg)))
		goto fail;
	stage = "cannot build the pipeline";
	op.in[0] = mg_input(df, sizeof(struct word), &in);
	out = mg_output(df, mg_stateful(df, &op));
	/* one producer per file, all opened now: then no more will come */
	for (i = 0; i < nr && !(err = mg_dataflow_error(df)); i++) {
		rd[i].path = optind < argc ? argv[optind + i] : NULL;
		rd[i].lines_per_window = window;
		err = mg_producer_open(in, MG_ANY_WORKER, &rd[i].p);
	}
	if (err || (err = mg_input_close(in)) ||
	    (stage = "cannot start", err = mg_dataflow_start(df, NULL, NULL)))
		goto fail;
	stage = NULL;
	for (i = 0; i < nr; i++)
		if (pthread_create(&rd[i].thread, NULL, reader_main, &rd[i])) {
			err = -EAGAIN;
			mg_dataflow_stop(df);
			nr = i;
			break;
		}

	/* Each window, as soon as it is complete everywhere. */
	while ((err = mg_output_next(out, &t, MG_FOREVER)) == 0) {
		struct count *v = malloc(sizeof(*v) * (t.count + 1));

		if (!v) {
			err = -ENOMEM;
			break;
		}
		memcpy(v, t.records, sizeof(*v) * t.count);
		qsort(v, t.count, sizeof(*v), by_window);
		printf("window %llu:", (unsigned long long)t.time);
		for (i = 0; i < t.count && i < top; i++)
			printf(" %s=%llu", v[i].w,
			       (unsigned long long)v[i].window);
		printf("\n");
		fflush(stdout); /* a window is news as soon as it is done */
		for (i = 0; i < t.count && !err; i++)
			err = totals_put(&totals, &v[i]);
		free(v);
		if (t.time >= migrate_at) {
			uint32_t nb = mg_dataflow_bins(df);
			uint16_t *from = malloc(sizeof(*from) * nb);
			uint16_t *to = malloc(sizeof(*to) * nb);

			if (from && to) {
				mg_dataflow_owners(df, from);
				mg_plan_half_of_half(from, nb, cfg.workers, to);
				err = mg_migrate(df, MG_ALL_AT_ONCE, to,
						 MG_TIME_ASAP, 0, NULL);
				fprintf(stderr,
					"wordcount: after window %llu, moving "
					"half the bins: %s\n",
					(unsigned long long)t.time,
					mg_strerror(err));
				err = err == -EINVAL ? 0 : err; /* ended */
			}
			free(from);
			free(to);
			migrate_at = UINT64_MAX;
		}
	}
	if (err == -ENODATA) /* every window taken */
		err = 0;
	for (i = 0; i < nr; i++) {
		pthread_join(rd[i].thread, NULL);
		if (rd[i].err && !err) {
			fprintf(stderr, "wordcount: %s: %s\n",
				rd[i].path ? rd[i].path : "stdin",
				mg_strerror(rd[i].err));
			err = rd[i].err;
		}
	}
	c = mg_dataflow_join(df, NULL);
	err = err ? err : c;
	if (!err) { /* the final counts */
		struct count *v = malloc(sizeof(*v) * (totals.n + 1));
		size_t k = 0;

		for (size_t j = 0; v && j < totals.cap; j++)
			if (totals.v[j].w[0])
				v[k++] = totals.v[j];
		if (v)
			qsort(v, k, sizeof(*v), by_total);
		for (size_t j = 0; v && j < k; j++)
			printf("total %llu %s\n",
			       (unsigned long long)v[j].total, v[j].w);
		free(v);
	}
fail:
	if (err && stage)
		fprintf(stderr, "wordcount: %s with %u workers: %s%s\n", stage,
			cfg.workers, mg_strerror(err),
			err == -ENOMEM
				? " (an exchange holds workers x workers "
				  "channels of batches)"
				: "");
	else if (err)
		fprintf(stderr, "wordcount: %s\n", mg_strerror(err));
	mg_dataflow_destroy(df);
	free(totals.v);
	free(rd);
	return err ? 1 : 0;
}
