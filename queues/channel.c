/*
 * channel.c - creating and destroying channels (the format is described in
 * mg_channel.h; the data path is inline there).
 *
 * Memory: everything comes from the page pool of the consumer's node.  One
 * "meta" chunk holds the struct, the forward ring's slots, the return ring's
 * slots and the list of batch chunks; batches are carved from chunks of the
 * smallest class that holds them all, up to 2 MiB per chunk.
 */
#include <errno.h>

#include "queues/mg_channel.h"

static size_t
batch_bytes(const struct mg_channel_config *cfg)
{
	size_t b =
		sizeof(struct mg_batch) +
		(size_t)cfg->batch_records * mg_batch_stride(cfg->record_size);

	return (b + MG_CACHE_LINE - 1) & ~(size_t)(MG_CACHE_LINE - 1);
}

static int
check_config(const struct mg_channel_config *cfg)
{
	if (!cfg || cfg->record_size == 0 || cfg->record_size > MG_RECORD_MAX)
		return -EINVAL;
	if (cfg->batch_records == 0 ||
	    cfg->batch_records > mg_channel_batch_records_max(cfg->record_size))
		return -EINVAL;
	if (cfg->capacity < 2 || cfg->capacity > MG_CHANNEL_CAPACITY_MAX ||
	    !mg_is_pow2(cfg->capacity))
		return -EINVAL;
	MG_ASSERT(batch_bytes(cfg) <= (1ul << MG_CHUNK_MAX_SHIFT));
	return 0;
}

static unsigned
clamp_shift(size_t bytes)
{
	unsigned s = mg_log2_ceil(bytes);

	if (s < MG_CHUNK_MIN_SHIFT)
		s = MG_CHUNK_MIN_SHIFT;
	return s > MG_CHUNK_MAX_SHIFT ? MG_CHUNK_MAX_SHIFT : s;
}

int
mg_channel_create(struct mg_channel **out, struct mg_pools *pools,
		  const struct mg_channel_config *cfg)
{
	uint32_t nbatches, per_chunk, i;
	size_t bbytes, meta_bytes;
	unsigned meta_shift, chunk_shift, nchunks, c;
	struct mg_channel *ch;
	void *meta;
	int err;

	err = check_config(cfg);
	if (err)
		return err;
	nbatches = cfg->capacity + 1;
	bbytes = batch_bytes(cfg);
	chunk_shift = clamp_shift(bbytes * nbatches);
	per_chunk = (uint32_t)((1ul << chunk_shift) / bbytes);
	nchunks = (nbatches + per_chunk - 1) / per_chunk;

	meta_bytes = sizeof(*ch) + sizeof(struct mg_slot) * cfg->capacity +
		     sizeof(struct ck_ring_buffer) * 2 * cfg->capacity +
		     sizeof(void *) * nchunks;
	meta_shift = clamp_shift(meta_bytes);
	if (meta_bytes > (1ul << meta_shift))
		return -EINVAL;
	err = mg_chunk_alloc(pools, cfg->node, meta_shift, &meta);
	if (err)
		return err;

	ch = meta;
	memset(ch, 0, sizeof(*ch));
	ch->ro.cfg = *cfg;
	ch->ro.pools = pools;
	ch->ro.fwd_buf = (struct mg_slot *)(ch + 1);
	ch->ro.ret_buf =
		(struct ck_ring_buffer *)(ch->ro.fwd_buf + cfg->capacity);
	ch->ro.chunks = (void **)(ch->ro.ret_buf + 2 * cfg->capacity);
	ch->ro.chunk_shift = chunk_shift;
	ch->ro.meta_shift = meta_shift;
	ck_ring_init(&ch->fwd, cfg->capacity);
	ck_ring_init(&ch->ret, 2 * cfg->capacity);

	for (c = 0; c < nchunks; c++) {
		err = mg_chunk_alloc(pools, cfg->node, chunk_shift,
				     &ch->ro.chunks[c]);
		if (err) {
			ch->ro.nchunks = c;
			mg_channel_destroy(ch);
			return err;
		}
	}
	ch->ro.nchunks = nchunks;

	for (i = 0; i < nbatches; i++) {
		unsigned char *base = ch->ro.chunks[i / per_chunk];
		struct mg_batch *b =
			(struct mg_batch *)(void *)(base +
						    (i % per_chunk) * bbytes);
		bool ok;

		memset(b, 0, sizeof(*b));
		b->capacity = cfg->batch_records;
		b->record_size = cfg->record_size;
		b->stride = mg_batch_stride(cfg->record_size);
		b->home = ch;
		ok = ck_ring_enqueue_spsc(&ch->ret, ch->ro.ret_buf, b);
		MG_ASSERT(ok);
		(void)ok;
	}
	*out = ch;
	return 0;
}

void
mg_channel_destroy(struct mg_channel *ch)
{
	unsigned c;

	if (!ch)
		return;
	for (c = 0; c < ch->ro.nchunks; c++)
		mg_chunk_free(ch->ro.pools, ch->ro.chunks[c],
			      ch->ro.chunk_shift);
	mg_chunk_free(ch->ro.pools, ch, ch->ro.meta_shift);
}
