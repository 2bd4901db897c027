#!/usr/bin/env bash
# Balancing a skewed key-count: Zipf keys whose hot set starts in worker 0's
# bins (--skew-start) and moves every HOT_SHIFT seconds (--hot-shift), with
# the balancer off and on, by handoff and by copy, next to the same load
# with uniform keys (the reference: what balanced workers do) and, for
# key-count, the same Zipf keys without the skewed start, balancer off
# ("hashed": the hash spreads the hot keys, so this is what the skewed
# keys cost a fair placement -- hotter bins, dearer keys -- apart from any
# move); RUNS
# interleaved rounds, medians reported (and each configuration's p99 over
# the same round's uniform p99, per round and their median: the machine's
# speed changes between rounds, less within one), and each configuration's
# last run plotted with the balancer's decisions marked (blue bands): its
# latency (NAME.png) and each worker's records/s received and processed
# (NAME-workers.png).  RATE should be one two balanced workers sustain but
# a static placement cannot (worker 0 over capacity): then "off" falls
# behind for good -- its p99 of the last 2 s (end_p99) keeps growing with
# the run and its achieved rate stays below the offered one, or it fails
# when the backlog fills a buffer (reported, its row kept) -- while "on"
# stays near "uniform".
#
# With BENCH=nexmark, the same for NEXMark query QUERY (q5; q3 .. q8 keep
# state in bins): the skew is --hot-hold HOT_SHIFT (one hot auction takes
# half the bids, one person most bidders and sellers, each for HOT_SHIFT
# seconds; keyed by auction, its worker carries 3/4 of the bids), and
# "uniform" is the model's own stream, whose hot ids change every few ms.
#
#   bench/experiments/balance.sh [--help] [BUILD_DIR] [OUT_DIR]
#   RATE (10M), SECONDS_PER_RUN (30), KEYS (1M), ZIPF (1.0), HOT_SHIFT (10),
#   WORKERS (2), RUNS (3), INTERVAL_MS (500), THRESHOLD (0.2),
#   CONFIGS (all: "uniform hashed off-handoff on-handoff off-copy on-copy";
#   hashed is key-count's only),
#   BENCH (keycount), QUERY (q5)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
help_if_asked "$0" "$@"
B=${1:-build}
OUT=${2:-build/experiments/balance}
RATE=${RATE:-10M} SECS=${SECONDS_PER_RUN:-30} KEYS=${KEYS:-1M} ZIPF=${ZIPF:-1.0}
SHIFT=${HOT_SHIFT:-10} W=${WORKERS:-2} RUNS=${RUNS:-3}
INTERVAL=${INTERVAL_MS:-500} THRESHOLD=${THRESHOLD:-0.2}
BENCH=${BENCH:-keycount} QUERY=${QUERY:-q5}
case $BENCH in
keycount)
	bench=(--domain "$KEYS" --prefill)
	skew=(--keys "zipf:$ZIPF" --skew-start --hot-shift "$SHIFT")
	hashed=(--keys "zipf:$ZIPF" --hot-shift "$SHIFT")
	what="key-count" skewed="zipf:$ZIPF, skewed start, hot keys shift every ${SHIFT} s"
	uniform="uniform keys" ;;
nexmark)
	bench=(--query "$QUERY")
	skew=(--hot-hold "$SHIFT")
	hashed=()
	what="NEXMark $QUERY" skewed="hot ids held for ${SHIFT} s"
	uniform="the model's hot ids" ;;
*) echo "balance: BENCH must be keycount or nexmark" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
stall_floor "$B" "$OUT" before
csv="$OUT/balance.csv"
echo "config,run,rate_achieved,p50_us,p99_us,max_us,decisions,migrations,bins_moved,bytes_moved,end_p99_us,cpu_speed,slowest_reads_per_us" >"$csv"
run() { # name, run, flags...
	local name=$1 r=$2 d end speed; shift 2
	[[ " ${CONFIGS:-$name} " == *" $name "* ]] || return 0
	d="$OUT/$name-$r"
	speed=$(cpu_speed "$B")
	"${pin[@]}" "$B/bench/$BENCH" --workers "$W" --rate "$RATE" \
		--duration "$SECS" "${bench[@]}" --out "$d" "$@" \
		>"$d.json" 2>"$d.log" ||
		echo "balance: $name run $r ended with an error (see $d.log): $(tail -1 "$d.log")" >&2
	jq -e . "$d.json" >/dev/null 2>&1 || { echo "balance: $name run $r: no summary" >&2; return 0; }
	# the worst window p99 of the run's last 2 s: a backlog that grows shows here
	end=$(awk -F, -v s="$SECS" 'NR > 1 && $1 >= s - 2 && $1 <= s && $7 > m { m = $7 } END { print m + 0 }' "$d/timeline.csv")
	jq -r --arg n "$name" --arg r "$r" --arg e "$end" --arg sp "$speed" '[$n, $r, .rate_achieved,
	  .latency_us.p50, .latency_us.p99, .latency_us.max,
	  (.balance.decisions // 0), (.balance.migrations // 0),
	  (.balance.bins_moved // 0),
	  ([.balance.events[]?.bytes] | add // 0), $e, ($sp | split(",")[])] | @csv' "$d.json" |
		tr -d '"' >>"$csv"
	echo "balance: $name run $r: $(jq -r '"p99 \(.latency_us.p99) us, \(.rate_achieved) rec/s"' "$d.json"), end p99 $end us, slowest CPU at ${speed%,*} of the fastest" >&2
}
on=(--balance on --balance-interval "$INTERVAL" --balance-threshold "$THRESHOLD")
# Interleaved: each round runs every configuration once, so a noisy period
# of the machine does not fall on one configuration's runs only.
for r in $(seq 1 "$RUNS"); do
	run uniform "$r" --balance off --mode handoff
	[ ${#hashed[@]} -eq 0 ] ||
		run hashed "$r" "${hashed[@]}" --balance off --mode handoff
	run off-handoff "$r" "${skew[@]}" --balance off --mode handoff
	run on-handoff "$r" "${skew[@]}" "${on[@]}" --mode handoff
	run off-copy "$r" "${skew[@]}" --balance off --mode copy
	run on-copy "$r" "${skew[@]}" "${on[@]}" --mode copy
done
for name in uniform hashed off-handoff on-handoff off-copy on-copy; do
	d="$OUT/$name-$RUNS"
	[ -r "$d/timeline.csv" ] || continue
	case $name in
	uniform) title=$uniform ;;
	hashed) title="zipf:$ZIPF, hot keys shift every ${SHIFT} s, hashed placement: balancer off" ;;
	*) title="$skewed: balancer ${name%%-*}, ${name#*-}" ;;
	esac
	"$(dirname "$0")/../plot" "$d/timeline.csv" "$OUT/$name.png" \
		"$what $RATE rec/s, $title" \
		"$d/migrations.txt" >&2
	if [ -r "$d/workers.csv" ]; then
		"$(dirname "$0")/../plot" "$d/workers.csv" "$OUT/$name-workers.png" \
			"$what $RATE rec/s, $name: records/s per worker" "$d/migrations.txt" >&2
	fi
done
echo
echo "median of $RUNS runs, $what, $RATE records/s, $W workers, $skewed:"
printf '%-12s %12s %10s %10s %10s %12s %8s %8s %10s\n' config rec/s p50_ms p99_ms max_ms end_p99_ms migr bins MiB_moved
awk -F, "$AWK_MED"'
NR>1 { c=$1; if (!(c in seen)) { seen[c]=1; order[n++]=c }
	a[c]=a[c] " " $3; p5[c]=p5[c] " " $4; p9[c]=p9[c] " " $5; mx[c]=mx[c] " " $6;
	mg[c]=mg[c] " " $8; bn[c]=bn[c] " " $9; by[c]=by[c] " " $10; ep[c]=ep[c] " " $11 }
END { for (i = 0; i < n; i++) { c = order[i];
	printf "%-12s %12.0f %10.2f %10.2f %10.2f %12.2f %8.1f %8.1f %10.1f\n", c, med(a[c]),
		med(p5[c]) / 1000, med(p9[c]) / 1000, med(mx[c]) / 1000, med(ep[c]) / 1000,
		med(mg[c]), med(bn[c]), med(by[c]) / 1048576 } }' "$csv" | tee "$OUT/summary.txt"
# Ratios within a round (the machine's speed changes between rounds): each
# configuration's p99 over the same round's uniform p99, and their median.
awk -F, "$AWK_MED"'
NR>1 { c=$1; if (!(c in seen)) { seen[c]=1; order[n++]=c } p99[c, $2]=$5; if ($2 > nr) nr=$2 }
END { if (!("uniform" in seen)) exit
	print "p99 against the same round'"'"'s uniform keys (per round; median):"
	for (i = 0; i < n; i++) { c = order[i]; if (c == "uniform") continue
		list = ""; vals = ""
		for (r = 1; r <= nr; r++) if ((c, r) in p99 && ("uniform", r) in p99 && p99["uniform", r] > 0) {
			x = p99[c, r] / p99["uniform", r]; vals = vals " " x
			list = list (list == "" ? "" : " / ") sprintf("%.2f", x) }
		if (vals != "") printf "%-12s %s (median %.2fx)\n", c, list, med(vals) } }' "$csv" |
	tee -a "$OUT/summary.txt"
stall_floor "$B" "$OUT" after
