/*
 * mg_test_model.c - the engine tests' computation and its reference (see
 * mg_test_model.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "tests/mg_test_model.h"

uint64_t
mg_test_model_key(const struct mg_test_model *m, unsigned src, uint64_t seq)
{
	return mg_hash64(seq * 2 + src) % m->keys;
}

uint64_t
mg_test_model_epoch(const struct mg_test_model *m, double rate, uint64_t seq)
{
	return (uint64_t)((double)seq * 1e9 / rate) / m->epoch_ns;
}

uint64_t
mg_test_model_records(double rate, uint64_t duration_ns)
{
	uint64_t n = (uint64_t)((double)duration_ns * rate / 1e9) + 2;

	while (n && (uint64_t)((double)(n - 1) * 1e9 / rate) >= duration_ns)
		n--;
	return n;
}

static void
gen(const struct mg_test_model *m, unsigned src, uint64_t seq, void *out)
{
	struct mg_test_model_rec *x = out;

	x->key = mg_test_model_key(m, src, seq);
	x->val = seq;
}

void
mg_test_model_gen0(void *ctx, unsigned w, uint64_t seq, void *out)
{
	(void)w;
	gen(ctx, 0, seq, out);
}

void
mg_test_model_gen1(void *ctx, unsigned w, uint64_t seq, void *out)
{
	(void)w;
	gen(ctx, 1, seq, out);
}

uint64_t
mg_test_model_hash(void *ctx, const void *rec)
{
	(void)ctx;
	return mg_hash64(((const struct mg_test_model_rec *)rec)->key ^ 0x5555);
}

uint64_t
mg_test_model_out_hash(const struct mg_test_model_out *o)
{
	return mg_hash64(mg_hash64(o->key * 31 + mg_hash64(o->val)) +
			 o->cnt * 0x9e3779b97f4a7c15ull);
}

static uint64_t *
count_of(struct mg_map *counts, struct mg_bin_call *c, uint64_t key)
{
	void *v;

	if (!counts->value_size)
		mg_map_init(counts, sizeof(uint64_t));
	if (mg_map_upsert(counts, c->arena, key, &v) < 0) {
		c->error = -ENOMEM;
		return NULL;
	}
	return v;
}

int
mg_test_model_apply(const struct mg_test_model *m, struct mg_map *counts,
		    struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct mg_test_model_rec *in0 = c->in[0], *in1 = c->in[1];
	const struct mg_test_model_rec *tm = c->timers;
	uint32_t i;
	int err;

	for (i = 0; i < c->n_in[1]; i++) {
		uint64_t *n = count_of(counts, c, in1[i].key);

		if (!n)
			return c->error;
		++*n;
	}
	for (i = 0; i < c->n_in[0]; i++) {
		uint64_t *n = count_of(counts, c, in0[i].key);
		struct mg_test_model_out o = {in0[i].key, 0, 0};

		if (!n)
			return c->error;
		o.val = m->binary ? *n : ++*n;
		mg_emit(out, &o);
		if (m->timers) {
			err = mg_schedule(c, c->time + m->delay, &in0[i]);
			if (err)
				return c->error = err;
		}
	}
	for (i = 0; i < c->n_timers; i++) {
		uint64_t *n = counts->value_size
				      ? mg_map_find(counts, tm[i].key)
				      : NULL;
		struct mg_test_model_out o = {
			tm[i].key, tm[i].val | MG_TEST_MODEL_TIMER, n ? *n : 0};

		mg_emit(out, &o);
	}
	return 0;
}

bool
mg_test_model_hint_ok(const struct mg_test_model *m, unsigned bins_log2,
		      uint64_t bin_plus1, unsigned in, const void *rec)
{
	if (in >= (m->binary ? 2u : 1u))
		return false;
	return !bin_plus1 ||
	       bin_plus1 - 1 ==
		       mg_bin_of(mg_test_model_hash(NULL, rec), bins_log2);
}

static void
add(struct mg_test_model_fp *fp, uint64_t key, uint64_t val, uint64_t cnt)
{
	struct mg_test_model_out o = {key, val, cnt};

	fp->count++;
	fp->sum += mg_test_model_out_hash(&o);
}

/* The same computation, one thread, in time order: per time, input 1
 * first, then input 0, then the timers due at it (seeing this time's
 * counts). */
struct mg_test_model_fp *
mg_test_model_reference(const struct mg_test_model *m, uint64_t ntimes)
{
	struct mg_test_model_fp *fp = calloc(ntimes, sizeof(*fp));
	uint64_t *cnt = calloc(m->keys, sizeof(*cnt));
	uint64_t *first = calloc(ntimes + 1, sizeof(*first));
	uint64_t n0 = mg_test_model_records(m->rate[0], m->duration_ns);
	uint64_t n1 =
		m->binary ? mg_test_model_records(m->rate[1], m->duration_ns)
			  : 0;
	uint64_t i = 0, j = 0, t, s;
	bool fits;

	if (!fp || !cnt || !first)
		goto fail;
	for (t = 0; t < ntimes; t++) {
		first[t] = i;
		for (; j < n1 && mg_test_model_epoch(m, m->rate[1], j) == t;
		     j++)
			cnt[mg_test_model_key(m, 1, j)]++;
		for (; i < n0 && mg_test_model_epoch(m, m->rate[0], i) == t;
		     i++) {
			uint64_t k = mg_test_model_key(m, 0, i);

			add(&fp[t], k, m->binary ? cnt[k] : ++cnt[k], 0);
		}
		if (!m->timers || t < m->delay)
			continue;
		for (s = first[t - m->delay]; s < first[t + 1 - m->delay];
		     s++) {
			uint64_t k = mg_test_model_key(m, 0, s);

			add(&fp[t], k, s | MG_TEST_MODEL_TIMER, cnt[k]);
		}
	}
	/* every record placed, and every timer fired before ntimes */
	fits = i == n0 && j == n1 &&
	       (!m->timers || !n0 ||
		mg_test_model_epoch(m, m->rate[0], n0 - 1) + m->delay < ntimes);
	if (fits)
		goto out;
fail:
	free(fp);
	fp = NULL;
out:
	free(cnt);
	free(first);
	return fp;
}
