/*
 * mg_mesh.h - the worker-to-worker mesh of one exchange edge: W x W
 * channels (mg_channel.h) and, per consumer, a port that receives from its
 * W channels and keeps their frontier.
 *
 * THE MESH
 *
 * The W x W channels of one exchange edge; channel (from, to) lives on the
 * consumer's node.  The consumer side of worker `to` is a *port*: it receives
 * from its W channels round-robin and keeps the input frontier -- the minimum
 * over the channels of the last mark received -- incrementally: it counts
 * the channels sitting at the minimum and rescans only when that count drops
 * to zero, so a mark costs O(1) amortized.
 *
 * Concurrency of the entry points (per channel of the mesh):
 *
 *   | pair                                       | concurrently? |
 *   |--------------------------------------------|---------------|
 *   | producer ops (mark/flush of worker `from`)  | one thread    |
 *   | consumer ops (port recv/frontier of `to`)   | one thread    |
 *   | a producer op / a consumer op               | yes           |
 *   | anything / create, destroy                  | no            |
 */
#ifndef MG_MESH_H
#define MG_MESH_H

#include "queues/mg_channel.h"

struct mg_mesh;

/*
 * Create the @nworkers x @nworkers channels of one exchange edge; channel
 * (from, to) lives on node @node_of[to] (cfg->node is ignored).
 * @pools, @node_of, @cfg: borrowed (@pools must outlive the mesh).
 * Context: control plane; allocates.
 * Return: 0; -EINVAL (nworkers == 0 or > 4096, a bad cfg, an unknown node);
 * -ENOMEM.  Nothing is allocated on failure.
 */
int mg_mesh_create(struct mg_mesh **out, struct mg_pools *pools,
		   unsigned nworkers, const unsigned *node_of,
		   const struct mg_channel_config *cfg);

/* Free the mesh and all its channels (takes @m).  NULL is ignored. */
void mg_mesh_destroy(struct mg_mesh *m);

unsigned mg_mesh_workers(const struct mg_mesh *m);

/* Channel (@from, @to).  Borrowed: valid while the mesh lives. */
struct mg_channel *mg_mesh_channel(const struct mg_mesh *m, unsigned from,
				   unsigned to);

/*
 * Producer @from promises nothing earlier than @t on all its channels.
 * Context: the thread of worker @from.
 * Return: true if every mark is sent; false if some are pending (each
 * channel's mg_channel_flush_spsc() sends them later).
 */
bool mg_mesh_mark_spsc(struct mg_mesh *m, unsigned from, uint64_t t);

/*
 * Receive up to @n batches for worker @to from its W channels, round-robin
 * starting after the channel the previous call stopped at.  Marks met on the
 * way advance the port's frontier.  The frontier says nothing about the
 * batches returned: the caller holds those.
 * @out: gives up to @n batches; return each with mg_batch_put_spsc().
 * Context: the thread of worker @to; lock-free.
 * Return: the number of batches stored in @out (0 when all are empty).
 */
unsigned mg_mesh_recv_burst_spsc(struct mg_mesh *m, unsigned to,
				 struct mg_batch **out, unsigned n);

/* Worker @to's input frontier: min over its channels' last marks. */
uint64_t mg_mesh_frontier(const struct mg_mesh *m, unsigned to);

#endif /* MG_MESH_H */
