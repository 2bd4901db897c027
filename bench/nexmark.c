/*
 * nexmark - the NEXMark queries Q1..Q8 on the engine, open-loop, with live
 * migration (semantics and generator: bench/nexmark/nexmark.h).
 *
 * One source generates the event stream (each worker its share of event
 * numbers); the chosen query runs in its migratable form (state in bins),
 * or with --native in its statically partitioned form.  --validate runs the
 * other form on the same events in the same dataflow and compares the
 * multiset of outputs of every timestamp.
 *
 * --balance on starts the engine's balancer with the run (the shared flags,
 * bench_run_start()): it moves the bins of the query's stateful
 * operators to even out the workers' load; its decisions go into the JSON
 * summary.  Q1 and Q2 are stateless and --native has no bins: nothing to
 * balance, refused.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_run.h"
#include "bench/bench_util.h"
#include "bench/nexmark/nexmark.h"

struct opts {
	struct bench_opts b;
	enum nx_query query;
	bool native;
	struct nx_config nx;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: nexmark --query qN [options]\n"
		"The NEXMark queries on the engine, open-loop, with live "
		"migration.\n"
		"\n"
		"  --query Q          q1 .. q8 (required); q1 and q2 keep no "
		"state:\n"
		"                     nothing for --balance to move\n"
		"  --native           run the statically partitioned form (no "
		"bins)\n"
		"  --time-dilation D  event time runs D times faster than wall "
		"time\n"
		"                     (default 60: one wall second is one "
		"event "
		"minute)\n"
		"  --in-flight N      in-flight auctions of the generator "
		"(default 100)\n"
		"  --seed N           event stream seed (default 1)\n"
		"  --hot-hold S       keep each set of hot ids (one auction "
		"with\n"
		"                     half the bids, one person) for S "
		"seconds\n"
		"                     instead of the model's new one every 100 "
		"ids:\n"
		"                     a skew a balancer can act on (default 0: "
		"the\n"
		"                     model)\n"
		"  --q5-window S      Q5 sliding window, event seconds "
		"(default "
		"3600)\n"
		"  --q5-slide S       Q5 slide, event seconds (default 60)\n"
		"  --q7-window S      Q7 tumbling window, event seconds "
		"(default "
		"600)\n"
		"  --q8-window S      Q8 tumbling window, event seconds "
		"(default "
		"43200)\n"
		"%s"
		"                     (the native form; the migratable one "
		"with "
		"--native)\n"
		"  --help             this text\n"
		"\n"
		"--rate is events/s.  Progress on stderr; one JSON summary "
		"line "
		"on\n"
		"stdout.  Numbers accept k, M, G suffixes.  Pin with numactl "
		"--physcpubind.\n",
		bench_opts_help);
}

static uint64_t
event_seconds(const char *p, const char *flag, const char *arg)
{
	double s;

	if (bench_parse_double(arg, 1e-6, 1e9, &s))
		bench_bad_usage(p, "bad %s '%s'", flag, arg);
	return (uint64_t)(s * 1e9);
}

static void
parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		BENCH_OPTIONS,
		{"query", required_argument, NULL, 'q'},
		{"native", no_argument, NULL, 'n'},
		{"time-dilation", required_argument, NULL, 'T'},
		{"in-flight", required_argument, NULL, 'i'},
		{"seed", required_argument, NULL, 's'},
		{"hot-hold", required_argument, NULL, 'H'},
		{"q5-window", required_argument, NULL, '5'},
		{"q5-slide", required_argument, NULL, 'S'},
		{"q7-window", required_argument, NULL, '7'},
		{"q8-window", required_argument, NULL, '8'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *p = argv[0];
	char msg[256];
	int c;

	memset(o, 0, sizeof(*o));
	bench_opts_defaults(&o->b);
	/* The events: every record a query routes is at most as large. */
	o->b.record_max = sizeof(struct nx_event);
	nx_config_init(&o->nx, 1);
	o->nx.dilation = 60;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			if (nx_query_parse(optarg, &o->query))
				bench_bad_usage(p, "--query must be q1 .. q8");
			break;
		case 'n':
			o->native = true;
			break;
		case 'T':
			if (bench_parse_double(optarg, 1, 1e6, &o->nx.dilation))
				bench_bad_usage(p, "--time-dilation must be "
						   "1 .. 10^6");
			break;
		case 'i':
			if (bench_parse_u64(optarg, 1, 1ull << 40,
					    &o->nx.in_flight))
				bench_bad_usage(p, "bad --in-flight '%s'",
						optarg);
			break;
		case 's':
			if (bench_parse_u64(optarg, 0, UINT64_MAX, &o->nx.seed))
				bench_bad_usage(p, "bad --seed '%s'", optarg);
			break;
		case 'H': {
			double hold;

			if (bench_parse_double(optarg, 0, 86400, &hold))
				bench_bad_usage(p, "--hot-hold must be 0 .. "
						   "86400 seconds");
			o->nx.hot_hold_ns = (uint64_t)(hold * 1e9);
			break;
		}
		case '5':
			o->nx.q5_window_ns =
				event_seconds(p, "--q5-window", optarg);
			break;
		case 'S':
			o->nx.q5_slide_ns =
				event_seconds(p, "--q5-slide", optarg);
			break;
		case '7':
			o->nx.q7_window_ns =
				event_seconds(p, "--q7-window", optarg);
			break;
		case '8':
			o->nx.q8_window_ns =
				event_seconds(p, "--q8-window", optarg);
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
	if (!o->query)
		bench_bad_usage(p, "--query is required");
	o->b.seed = o->nx.seed; /* random migrations draw from it too */
	bench_opts_finish(&o->b, p);
	if (o->b.migration && o->native)
		bench_bad_usage(p, "the native form has no bins to migrate");
	if (o->b.balance && o->native)
		bench_bad_usage(p, "the native form has no bins to balance");
	o->nx.rate = (double)o->b.rate;
	o->nx.epoch_ns = o->b.epoch_us * 1000;
	if (nx_config_check(&o->nx, msg, sizeof(msg)))
		bench_bad_usage(p, "%s", msg);
}

/* Timestamps with outputs: the input's, then deadlines after it (windows
 * and auctions open at the end close later). */
static uint64_t
output_times(const struct opts *o)
{
	const struct nx_config *c = &o->nx;
	double horizon = (double)c->in_flight * 50.0 / 3.0 / c->rate;
	double longest = (double)c->q8_window_ns;

	if ((double)c->q7_window_ns > longest)
		longest = (double)c->q7_window_ns;
	if ((double)c->q5_window_ns > longest)
		longest = (double)c->q5_window_ns;
	longest = longest / c->dilation / 1e9;
	if (2 * horizon > longest)
		longest = 2 * horizon;
	return (uint64_t)((o->b.duration + longest + 1) * 1e9 /
			  (double)c->epoch_ns) +
	       2;
}

int
main(int argc, char **argv)
{
	static struct opts o;
	static struct bench_run run;
	struct mg_dataflow_config dc;
	struct mg_source_config src;
	struct mg_stream *ev, *out, *ref;
	struct mg_run_stats st;
	struct mg_dataflow *df;
	static char json[1 << 20]; /* room for the balancer's events */
	char hold[64] = "";
	uint64_t t0;
	bool ok = true;
	int err;

	parse(argc, argv, &o);
	bench_run_init(&run, "nexmark", &o.b, sizeof(struct nx_out),
		       o.b.validate ? output_times(&o) : 0);
	bench_run_config(&run, &dc);
	err = mg_dataflow_create(&df, &dc);
	if (err)
		bench_run_die_create(&run, err);
	src = (struct mg_source_config){
		.record_size = sizeof(struct nx_event),
		.rate = o.nx.rate,
		.duration_ns = (uint64_t)(o.b.duration * 1e9),
		.gen = nx_source_gen,
		.ctx = &o.nx,
	};
	ev = mg_source(df, &src);
	err = mg_dataflow_error(df);
	if (!err)
		err = nx_query_build(df, &o.nx, o.query, o.native, ev, &out);
	if (!err && !mg_probe(df, out))
		err = mg_dataflow_error(df);
	if (!err && o.b.validate)
		err = mg_sink(df, out, bench_run_sink_measured, &run);
	if (!err && o.b.validate)
		err = nx_query_build(df, &o.nx, o.query, !o.native, ev, &ref);
	if (!err && o.b.validate)
		err = mg_sink(df, ref, bench_run_sink_reference, &run);
	if (err)
		bench_die("nexmark", "cannot build the dataflow", err);
	err = bench_run_start(&run, df);
	if (err == -EINVAL) /* the engine found no stateful bins */
		bench_bad_usage(argv[0],
				"--balance on: q%d keeps no state in bins, "
				"there is nothing to balance (q3 .. q8 do)",
				(int)o.query);
	if (err)
		bench_die("nexmark", "cannot start the balancer", err);

	if (o.nx.hot_hold_ns)
		snprintf(hold, sizeof(hold), ", hot ids held %g s",
			 (double)o.nx.hot_hold_ns / 1e9);
	fprintf(stderr,
		"nexmark: q%d (%s), %llu workers, 2^%llu bins, %.0f events/s "
		"for %.1f s, time dilation %g%s%s%s\n",
		(int)o.query, o.native ? "native" : "bins",
		(unsigned long long)o.b.workers,
		(unsigned long long)o.b.bins_log2, o.nx.rate, o.b.duration,
		o.nx.dilation, hold, o.b.validate ? ", validating" : "",
		o.b.balance ? ", balancing" : "");
	t0 = mg_now_ns();
	err = mg_dataflow_start(df, bench_run_on_window, &run);
	if (err)
		bench_die("nexmark", "cannot start", err);
	bench_run_migrate(&run, df, t0);
	bench_run_join(&run, df, &st);
	if (o.b.validate)
		ok = bench_run_validate(&run);

	snprintf(json, sizeof(json),
		 "{\"bench\":\"nexmark\",\"query\":\"q%d\",\"form\":\"%s\","
		 "\"workers\":%llu,\"bins_log2\":%llu,\"epoch_us\":%llu,"
		 "\"time_dilation\":%g,\"in_flight\":%llu,"
		 "\"hot_hold_s\":%g,"
		 "\"rate_offered\":%llu,\"rate_achieved\":%.0f,"
		 "\"records\":%llu,\"duration_s\":%.3f,"
		 "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
		 "\"max\":%.1f},\"state_bytes\":%llu,\"rss_peak_bytes\":%llu,"
		 "\"active_final\":%u,\"validate\":\"%s\"}",
		 (int)o.query, o.native ? "native" : "bins",
		 (unsigned long long)o.b.workers,
		 (unsigned long long)o.b.bins_log2,
		 (unsigned long long)o.b.epoch_us, o.nx.dilation,
		 (unsigned long long)o.nx.in_flight,
		 (double)o.nx.hot_hold_ns / 1e9, (unsigned long long)o.b.rate,
		 bench_run_achieved(&run, st.records),
		 (unsigned long long)st.records, st.duration_s, st.p50 / 1e3,
		 st.p99 / 1e3, st.p999 / 1e3, st.max / 1e3,
		 (unsigned long long)st.state_bytes,
		 (unsigned long long)st.rss_peak_bytes, mg_dataflow_active(df),
		 !o.b.validate ? "off"
		 : ok	       ? "ok"
			       : "failed");
	bench_run_report(&run, json, sizeof(json));
	bench_run_destroy(&run);
	bench_opts_destroy(&o.b);
	mg_dataflow_destroy(df);
	return ok ? 0 : 1;
}
