/*
 * dump.c - mg_dataflow_dump(): the engine's state in words, for watchdogs
 * and for people looking at a run that does not end.
 *
 * It reads other threads' private fields without synchronizing (a worker's
 * frontier, its pending moves): values may be a round old or mix two
 * rounds, which is fine for telling "slow" from "stuck", and nothing here
 * writes.  ThreadSanitizer would call these reads races; they are on
 * purpose, never on the data path, and making the workers' fields atomic
 * for them would not make a move list read during its memmove consistent.
 * So they are left unchecked (MG_TSAN_IGNORE_*, numa/mg_base.h).
 */
#include <inttypes.h>
#include <stdio.h>

#include "engine/engine_pvt.h"

static const char *const kind_name[] = {
	[SOURCE] = "source", [INPUT] = "input",	      [FLAT_MAP] = "flat_map",
	[RECV] = "recv",     [STATEFUL] = "stateful", [SEND] = "send",
	[SINK] = "sink",
};

static void
time_str(char *buf, size_t len, uint64_t t)
{
	if (t == MG_TIME_MAX)
		snprintf(buf, len, "MAX");
	else
		snprintf(buf, len, "%" PRIu64, t);
}

static unsigned
count_bits(const uint64_t *map, uint32_t nbins)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < (nbins + 63) / 64; i++)
		n += (unsigned)__builtin_popcountll(map[i]);
	return n;
}

static void
dump_moves(FILE *f, const char *what, const struct move_list *l)
{
	uint32_t i;

	fprintf(f, " %s=%u", what, l->n);
	for (i = 0; i < l->n && i < 4; i++)
		fprintf(f, "%s{id %" PRIu64 " t %" PRIu64 " bin %u to %u}",
			i ? "," : "[", l->v[i].id, l->v[i].time, l->v[i].bin,
			l->v[i].to);
	if (l->n)
		fprintf(f, "%s]", l->n > 4 ? ",..." : "");
}

static void
dump_node(FILE *f, const struct mg_dataflow *df, const struct node *n,
	  unsigned w)
{
	uint32_t nbins = 1u << df->nbins_log2;
	char a[24], b[24];

	fprintf(f, "    node %u %s", n->id, kind_name[n->kind]);
	if (n->out && n->kind != FLAT_MAP && n->inst.any) {
		time_str(a, sizeof(a), mg__stream_frontier(n->out, w));
		fprintf(f, " frontier=%s", a);
	}
	switch (n->kind) {
	case SOURCE:
		if (n->inst.source)
			fprintf(f, " generated=%" PRIu64 " closed=%d",
				n->inst.source[w].k,
				(int)n->inst.source[w].closed);
		break;
	case SEND:
		if (n->inst.send) {
			const struct send_inst *s = &n->inst.send[w];

			fprintf(f, " queued=%u congested=%d marks=[", s->queued,
				(int)s->congested);
			for (unsigned d = 0; d < n->u.send.ndest; d++) {
				const struct mg_channel *ch =
					n->u.send.output
						? mg__output_channel(
							  n->u.send.output, w)
						: mg_mesh_channel(
							  n->u.send.mesh, w, d);
				const struct mg_batch *qb;
				unsigned q = 0;

				/* racy unless the worker is stuck: capped */
				for (qb = s->q[d].head; qb && q < 100000;
				     qb = qb->next)
					q++;
				time_str(a, sizeof(a),
					 mg_channel_mark_wanted(ch));
				fprintf(f, "%s%s", d ? "," : "", a);
				/* what holds a destination back: its ring's
				 * messages, batches queued behind them */
				if (q || mg_channel_in_flight(ch))
					fprintf(f, " (ring %u/%u, queued %u)",
						mg_channel_in_flight(ch),
						mg_channel_room(ch), q);
			}
			fprintf(f, "]");
		}
		break;
	case STATEFUL:
		if (n->inst.st) {
			const struct stateful_inst *si = &n->inst.st[w];

			time_str(a, sizeof(a), si->processed_upto);
			time_str(b, sizeof(b), si->done_upto);
			fprintf(f,
				" processed_upto=%s done_upto=%s calls=%" PRIu64
				" backlog=%" PRIu64,
				a, b, si->calls, si->backlog);
			for (unsigned i = 0; i < n->u.st.cfg.ninputs; i++) {
				time_str(a, sizeof(a),
					 mg_mesh_frontier(n->u.st.mesh[i], w));
				fprintf(f, " in%u=%s", i, a);
			}
			if (si->held)
				fprintf(f,
					" held=%u awaiting=%u deferred=%" PRIu64
					" (copies %" PRIu64 ", rescans %" PRIu64
					")",
					count_bits(si->held, nbins),
					count_bits(si->awaiting, nbins),
					si->deferred, si->defer_copies,
					si->rescans);
			if (!n->u.st.cfg.native) {
				dump_moves(f, "out", &si->out);
				dump_moves(f, "in", &si->in);
			}
		}
		break;
	default:
		break;
	}
	fputc('\n', f);
}

void
mg_dataflow_dump(const struct mg_dataflow *df, FILE *f)
{
	unsigned w, i;
	char a[24];

	if (!df || !f)
		return;
	time_str(a, sizeof(a), mg_router_frontier(df->router));
	fprintf(f,
		"megaphone dataflow %p: %u workers, 2^%u bins, %u nodes, "
		"started=%d running=%d halt=%d error=%d closing=%d "
		"control frontier=%s hosted=%u\n",
		(const void *)df, df->cfg.workers, df->nbins_log2, df->nnodes,
		(int)df->started,
		(int)atomic_load_explicit(&df->running, memory_order_relaxed),
		(int)atomic_load_explicit(&df->halt, memory_order_relaxed),
		atomic_load_explicit(&df->error, memory_order_relaxed),
		(int)atomic_load_explicit(&df->closing, memory_order_relaxed),
		a, atomic_load_explicit(&df->nhosted, memory_order_relaxed));
	for (i = 0; i < df->nprobes; i++) {
		time_str(a, sizeof(a), mg_probe_frontier(df->probes[i]));
		fprintf(f, "  probe %u: frontier=%s\n", i, a);
	}
	if (!df->started)
		return;
	for (w = 0; w < df->cfg.workers; w++) {
		static const char *const run[] = {"own", "park-req", "hosted",
						  "claimed", "done"};
		const struct worker_pub *p = &df->pub[w];
		uint32_t r =
			atomic_load_explicit(&p->run, memory_order_relaxed);
		uint64_t end = atomic_load_explicit(&p->round_end_ns,
						    memory_order_relaxed);

		/* How long ago its last round ended tells a worker that
		 * finds nothing to do (recent, napping) from one that does
		 * not run (its CPU stalled, or it is stuck in a step). */
		if (end)
			snprintf(a, sizeof(a), "%.3f s ago",
				 (double)(mg_now_ns() - end) / 1e9);
		else
			snprintf(a, sizeof(a), "not counted");
		fprintf(f,
			"  worker %u (cpu %d): run=%s done=%d napping=%u last "
			"round ended %s sources_closed=%d busy=%.3f s "
			"backlog=%" PRIu64 "\n",
			w, df->wk[w].cpu, r <= RUN_DONE ? run[r] : "?",
			(int)atomic_load_explicit(&p->done,
						  memory_order_relaxed),
			(unsigned)atomic_load_explicit(&p->napping,
						       memory_order_relaxed),
			a,
			(int)atomic_load_explicit(&p->sources_closed,
						  memory_order_relaxed),
			(double)atomic_load_explicit(&p->busy_ns,
						     memory_order_relaxed) /
				1e9,
			atomic_load_explicit(&p->backlog,
					     memory_order_relaxed));
		MG_TSAN_IGNORE_BEGIN(); /* racy on purpose: see above */
		for (i = 0; i < df->nnodes; i++)
			dump_node(f, df, df->nodes[i], w);
		MG_TSAN_IGNORE_END();
	}
	fflush(f);
}
