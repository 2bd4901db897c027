#!/usr/bin/env bash
# Throughput against latency: key-count (2^12 bins and native) and NEXMark
# queries at increasing offered rates; latency percentiles of the whole run
# (warm-up excluded), medians of RUNS.  A rate is sustained when the
# achieved rate matches the offered one and latency stays bounded.
#
#   bench/experiments/throughput.sh [BUILD_DIR] [OUT_DIR]
#   RATES ("1M 2M 4M 6M 8M 10M"), SECONDS_PER_RUN (10), KEYS (1M), RUNS (1),
#   QUERIES ("q1 q2 q3 q4 q5 q6 q7 q8"; "" for key-count only),
#   NX_RATES ("1M 2M 3M 4M")
# Writes OUT_DIR/throughput.csv, summary.csv (medians) and keycount.png /
# nexmark.png (p99 latency against offered rate).
set -euo pipefail
B=${1:-build}
OUT=${2:-build/experiments/throughput}
RATES=${RATES:-1M 2M 4M 6M 8M 10M} SECS=${SECONDS_PER_RUN:-10} KEYS=${KEYS:-1M}
RUNS=${RUNS:-1} QUERIES=${QUERIES-q1 q2 q3 q4 q5 q6 q7 q8} NX_RATES=${NX_RATES:-1M 2M 3M 4M}
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
stall_floor "$B" "$OUT" before
csv="$OUT/throughput.csv"
echo "config,rate,run,offered,achieved,p50_us,p99_us,max_us" >"$csv"
row() { # config rate run < json
	jq -r --arg c "$1" --arg rt "$2" --arg r "$3" '[$c, $rt, $r, .rate_offered, .rate_achieved,
	  .latency_us.p50, .latency_us.p99, .latency_us.max] | @csv' | tr -d '"' >>"$csv"
}
for rate in $RATES; do
	for be in kv native; do
		for r in $(seq 1 "$RUNS"); do
			"${pin[@]}" "$B/bench/keycount" --backend $be --rate "$rate" --duration "$SECS" \
				--domain "$KEYS" --prefill 2>/dev/null | row "keycount-$be" "$rate" "$r"
			echo "throughput: keycount $be at $rate run $r done" >&2
		done
	done
done
for q in $QUERIES; do
	for rate in $NX_RATES; do
		for r in $(seq 1 "$RUNS"); do
			"${pin[@]}" "$B/bench/nexmark" --query "$q" --rate "$rate" --duration "$SECS" \
				2>/dev/null | row "nexmark-$q" "$rate" "$r"
			echo "throughput: nexmark $q at $rate run $r done" >&2
		done
	done
done
awk -F, "$AWK_MED"'
NR>1 { c = $1 "," $4; if (!(c in seen)) { seen[c] = 1; order[n++] = c }
	a[c] = a[c] " " $5; p50[c] = p50[c] " " $6; p99[c] = p99[c] " " $7; mx[c] = mx[c] " " $8 }
END { print "config,offered,achieved,p50_ms,p99_ms,max_ms"
	for (i = 0; i < n; i++) { c = order[i]
		printf "%s,%.0f,%.3f,%.3f,%.3f\n", c, med(a[c]), med(p50[c]) / 1000, med(p99[c]) / 1000,
			med(mx[c]) / 1000 } }' "$csv" >"$OUT/summary.csv"
column -s, -t "$OUT/summary.csv" | tee "$OUT/summary.txt"
plot_lines "$OUT/keycount.png" "key-count: p99 latency vs offered rate (2 workers)" \
	"offered rate (records/s)" "p99 latency (ms)" 0 1 "$OUT/summary.csv" \
	'2^12 bins:2:5:$1=="keycount-kv"' 'native:2:5:$1=="keycount-native"'
series=()
for q in $QUERIES; do series+=("$q:2:5:\$1==\"nexmark-$q\""); done
[ ${#series[@]} -gt 0 ] && plot_lines "$OUT/nexmark.png" "NEXMark: p99 latency vs offered rate (2 workers, 2^12 bins)" \
	"offered rate (events/s)" "p99 latency (ms)" 0 1 "$OUT/summary.csv" "${series[@]}"
true
stall_floor "$B" "$OUT" after
