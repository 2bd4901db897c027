/*
 * graph.c - the graph under construction: appending nodes, subscribing them
 * to streams, checking a builder's streams, latching a builder's error.
 * The builders themselves are in dataflow.c (and input.c, output.c,
 * probe.c for their kinds); see engine_pvt.h for the graph model.
 * Everything here runs on the building thread, before the start.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/engine_pvt.h"

int
mg__build_error(struct mg_dataflow *df, int err)
{
	if (!df->build_error)
		df->build_error = err;
	return df->build_error;
}

int
mg_dataflow_error(const struct mg_dataflow *df)
{
	return df ? df->build_error : -EINVAL;
}

/* ---- building ------------------------------------------------------------- */

struct mg_stream *
mg__build_fail(struct mg_dataflow *df, int err)
{
	mg__build_error(df, err);
	return NULL;
}

bool
mg__stream_ok(const struct mg_dataflow *df, const struct mg_stream *in)
{
	const struct stream *s = (const struct stream *)in;

	return s && s->df == df && s->nsubs < MAX_SUBS;
}

/* Append a node (inputs subscribed by the caller); it is the graph's until
 * a rollback() below its id. */
int
mg__add_node(struct mg_dataflow *df, enum node_kind kind,
	     uint32_t out_record_size, struct node **out)
{
	struct node *n;

	if (df->started || df->nnodes == df->cap_nodes)
		return -EINVAL;
	if (out_record_size > MG_RECORD_MAX)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	if (out_record_size) {
		n->out = calloc(1, sizeof(*n->out));
		if (!n->out) {
			free(n);
			return -ENOMEM;
		}
		n->out->df = df;
		n->out->from = n;
		n->out->record_size = out_record_size;
	}
	n->kind = kind;
	n->df = df;
	n->id = df->nnodes;
	df->nodes[df->nnodes++] = n;
	*out = n;
	return 0;
}

void
mg__subscribe(struct node *n, unsigned port, struct stream *s)
{
	n->in[port] = s;
	s->subs[s->nsubs++] = n;
}
