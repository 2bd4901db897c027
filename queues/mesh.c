/*
 * mesh.c - the W x W channels of one exchange edge and the consumer ports.
 *
 * Layout: channel (from, to) is chan[to * W + from], so a port walks its
 * inputs contiguously.  Each port is written only by its consumer worker and
 * sits on its own cache lines.
 *
 * The port frontier is min over its W channels of the last mark received.
 * It is kept incrementally: `front[c]` per channel, `min`, and `at_min`, the
 * number of channels whose front equals min.  A mark raising a channel that
 * sat at min decrements at_min; when at_min reaches 0 the port rescans its W
 * fronts.  Every rescan is paid for by the at_min marks that emptied it, so
 * a mark costs O(1) amortized.
 */
#include <errno.h>
#include <stdlib.h>

#include "queues/mg_mesh.h"

#define MESH_MAX_WORKERS 4096u

struct port {
	uint64_t min;	 /* the frontier */
	unsigned at_min; /* channels whose front == min */
	unsigned next;	 /* round-robin cursor */
	/* [W] last mark per input channel; on lines of its own (the ports'
	 * arrays side by side put two consumers' writes on one line) */
	uint64_t *front;
} MG_CACHE_ALIGNED;

struct mg_mesh {
	unsigned w;
	struct mg_channel **chan; /* [to * w + from] */
	struct port *ports;	  /* [w] */
};

unsigned
mg_mesh_workers(const struct mg_mesh *m)
{
	return m->w;
}

struct mg_channel *
mg_mesh_channel(const struct mg_mesh *m, unsigned from, unsigned to)
{
	MG_ASSERT(from < m->w && to < m->w);
	return m->chan[(size_t)to * m->w + from];
}

void
mg_mesh_destroy(struct mg_mesh *m)
{
	size_t i;

	if (!m)
		return;
	if (m->chan)
		for (i = 0; i < (size_t)m->w * m->w; i++)
			mg_channel_destroy(m->chan[i]);
	free(m->chan);
	if (m->ports)
		for (i = 0; i < m->w; i++)
			free(m->ports[i].front);
	free(m->ports);
	free(m);
}

int
mg_mesh_create(struct mg_mesh **out, struct mg_pools *pools, unsigned nworkers,
	       const unsigned *node_of, const struct mg_channel_config *cfg)
{
	struct mg_channel_config c;
	struct mg_mesh *m;
	unsigned from, to;
	int err;

	if (nworkers == 0 || nworkers > MESH_MAX_WORKERS || !node_of || !cfg)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->w = nworkers;
	m->chan = calloc((size_t)nworkers * nworkers, sizeof(*m->chan));
	m->ports = mg_calloc_lines(nworkers, sizeof(*m->ports));
	if (!m->chan || !m->ports) {
		mg_mesh_destroy(m);
		return -ENOMEM;
	}
	for (to = 0; to < nworkers; to++) {
		m->ports[to] = (struct port){
			.min = 0,
			.at_min = nworkers,
			.front = mg_calloc_lines(nworkers, sizeof(uint64_t)),
		};
		if (!m->ports[to].front) {
			mg_mesh_destroy(m);
			return -ENOMEM;
		}
		c = *cfg;
		c.node = node_of[to];
		for (from = 0; from < nworkers; from++) {
			err = mg_channel_create(
				&m->chan[(size_t)to * nworkers + from], pools,
				&c);
			if (err) {
				mg_mesh_destroy(m);
				return err;
			}
		}
	}
	*out = m;
	return 0;
}

bool
mg_mesh_mark_spsc(struct mg_mesh *m, unsigned from, uint64_t t)
{
	bool all = true;
	unsigned to;

	for (to = 0; to < m->w; to++)
		all &= mg_channel_mark_spsc(mg_mesh_channel(m, from, to), t);
	return all;
}

static void
port_rescan(struct port *p, unsigned w)
{
	uint64_t min = MG_TIME_MAX;
	unsigned i, at = 0;

	for (i = 0; i < w; i++) {
		if (p->front[i] < min) {
			min = p->front[i];
			at = 0;
		}
		at += p->front[i] == min;
	}
	p->min = min;
	p->at_min = at;
}

static void
port_mark(struct port *p, unsigned w, unsigned from, uint64_t t)
{
	uint64_t old = p->front[from];

	MG_ASSERT(t >= old);
	p->front[from] = t;
	if (old == p->min && t > old && --p->at_min == 0)
		port_rescan(p, w);
}

unsigned
mg_mesh_recv_burst_spsc(struct mg_mesh *m, unsigned to, struct mg_batch **out,
			unsigned n)
{
	struct port *p = &m->ports[to];
	struct mg_channel **in = m->chan + (size_t)to * m->w;
	unsigned quota = n / m->w ? n / m->w : 1;
	unsigned got = 0, empty = 0, c = p->next;

	/* Take up to `quota` batches from each channel in turn, so a busy
	 * channel cannot starve the others; stop at n batches or after a lap
	 * of W channels that had nothing at all. */
	while (got < n && empty < m->w) {
		unsigned k = 0;
		bool any = false;
		struct mg_batch *b = NULL;
		uint64_t t = 0;

		while (k < quota && got < n &&
		       mg_channel_pop_spsc(in[c], &b, &t)) {
			any = true;
			if (b) {
				out[got++] = b;
				k++;
			} else {
				port_mark(p, m->w, c, t);
			}
		}
		empty = any ? 0 : empty + 1;
		c = c + 1 == m->w ? 0 : c + 1;
	}
	p->next = c;
	return got;
}

uint64_t
mg_mesh_frontier(const struct mg_mesh *m, unsigned to)
{
	return m->ports[to].min;
}
