/*
 * mg_test_model.h - the computation the engine tests run through the
 * engine, and its single-threaded reference, shared by t-engine-dataflow.c
 * and t-engine-migration.c.
 *
 * One or two open-loop sources emit struct mg_test_model_rec {key, val = seq}:
 * record seq of source s is due at seq * 1e9 / rate[s] ns (the engine's
 * schedule), stamped with that instant's epoch, and has key
 * mg_hash64(2 * seq + s) mod keys.  A stateful counting operator keeps a
 * count per key (in a bin's hash map) and, per call:
 *
 *   - input 1 (binary only): adds to its keys' counts, emitting nothing;
 *   - input 0: emits {key, count, 0} per record, the count after this
 *     record (binary: the count of input-1 records so far);
 *   - with timers: schedules every input-0 record `delay` epochs later and,
 *     when it comes back, emits {key, seq | MG_TEST_MODEL_TIMER, count of the key
 *     at that time, inputs of that time included}.
 *
 * A timer that fires on the wrong worker, too early, or without the bin's
 * earlier records applied changes an output.  The reference computes the
 * same thing in one thread, time by time, and gives each timestamp's
 * outputs as a fingerprint {count, sum of mg_test_model_out_hash()}: a multiset
 * per timestamp, whatever worker emitted what.
 */
#ifndef MG_TEST_MODEL_H
#define MG_TEST_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/megaphone.h"

#define MG_TEST_MODEL_TIMER (1ull << 63) /* flags a timer's output */

struct mg_test_model {
	unsigned keys;
	double rate[2]; /* records/s of source 0 and 1 */
	uint64_t duration_ns, epoch_ns;
	bool binary, timers;
	uint64_t delay; /* timer delay, epochs (> 0 with timers) */
};

struct mg_test_model_rec {
	uint64_t key;
	uint64_t val;
};

struct mg_test_model_out {
	uint64_t key;
	uint64_t val;
	uint64_t cnt;
};

struct mg_test_model_fp {
	uint64_t count, sum;
};

/* Key of record @seq of source @src. */
uint64_t mg_test_model_key(const struct mg_test_model *m, unsigned src,
			   uint64_t seq);

/* Epoch of record @seq of a source at @rate. */
uint64_t mg_test_model_epoch(const struct mg_test_model *m, double rate,
			     uint64_t seq);

/* Records a source at @rate generates in @duration_ns. */
uint64_t mg_test_model_records(double rate, uint64_t duration_ns);

/* Source generators and the key hash (ctx: the struct mg_test_model). */
void mg_test_model_gen0(void *ctx, unsigned w, uint64_t seq, void *out);
void mg_test_model_gen1(void *ctx, unsigned w, uint64_t seq, void *out);
uint64_t mg_test_model_hash(void *ctx, const void *rec);

/* The fingerprint term of one output. */
uint64_t mg_test_model_out_hash(const struct mg_test_model_out *o);

/*
 * The operator's work for call @c, its counts in @counts (in the bin's
 * root state; a zeroed map is initialized here).
 * Context: the worker running the call.
 * Return: 0; -ENOMEM (a map insert) or mg_schedule()'s error, also set in
 * c->error (the run stops with it).
 */
int mg_test_model_apply(const struct mg_test_model *m, struct mg_map *counts,
			struct mg_bin_call *c, struct mg_emitter *out);

/*
 * For an operator's prefetch hint: whether @rec may be announced for input
 * @in with the state of bin @bin_plus1 - 1 (0: a state not yet called,
 * or native, whose bin is not checked) among 2^@bins_log2 bins.
 */
bool mg_test_model_hint_ok(const struct mg_test_model *m, unsigned bins_log2,
			   uint64_t bin_plus1, unsigned in, const void *rec);

/*
 * The reference: per timestamp 0 .. @ntimes - 1 the fingerprint of its
 * outputs.  Gives a calloc'd array (free it); NULL if out of memory or if
 * some output would fall at or after @ntimes (a bug of the caller).
 */
struct mg_test_model_fp *mg_test_model_reference(const struct mg_test_model *m,
						 uint64_t ntimes);

#endif /* MG_TEST_MODEL_H */
