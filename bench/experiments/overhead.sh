#!/usr/bin/env bash
# Steady-state overhead of bins against the native operator (key-count, kv):
# p99 and max latency for 2^k bins, k = 4 8 12 16 20, and native, RUNS runs
# each (median reported), all at the same rate, pinned.
#
#   bench/experiments/overhead.sh [BUILD_DIR] [OUT_DIR]
# Writes OUT_DIR/overhead.csv (every run), summary.csv (medians per bin
# count, with native's) and overhead.png (p99 and max vs bins).
#   RATE (default 2M), SECONDS_PER_RUN (5), KEYS (1M), RUNS (3),
#   BINS ("4 8 12 16 20")
set -euo pipefail
B=${1:-build}
OUT=${2:-build/experiments/overhead}
RATE=${RATE:-2M} SECS=${SECONDS_PER_RUN:-5} KEYS=${KEYS:-1M} RUNS=${RUNS:-3}
BINS=${BINS:-4 8 12 16 20}
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
stall_floor "$B" "$OUT" before
csv="$OUT/overhead.csv"
echo "config,run,p50_us,p99_us,max_us,rate_achieved,state_bytes" >"$csv"
run() { # name, extra flags...
	local name=$1; shift
	for r in $(seq 1 "$RUNS"); do
		"${pin[@]}" "$B/bench/keycount" --rate "$RATE" --duration "$SECS" \
			--domain "$KEYS" --prefill "$@" 2>/dev/null |
			jq -r --arg n "$name" --arg r "$r" \
			'[$n, $r, .latency_us.p50, .latency_us.p99, .latency_us.max, .rate_achieved, .state_bytes] | @csv' |
			tr -d '"' >>"$csv"
		echo "overhead: $name run $r done" >&2
	done
}
run native --backend native
for k in $BINS; do run "2^$k" --backend kv --bins "$k"; done
echo
echo "median of $RUNS runs, $RATE records/s, $KEYS keys, 2 workers:"
printf '%-8s %10s %10s %12s\n' config p99_ms max_ms p99/native
awk -F, "$AWK_MED"'
NR>1 { p99[$1] = p99[$1] " " $4; mx[$1] = mx[$1] " " $5; if (!($1 in seen)) { seen[$1]=1; order[n++]=$1 } }
END { base = med(p99["native"]); for (i = 0; i < n; i++) { c = order[i];
	printf "%-8s %10.2f %10.2f %12.2f\n", c, med(p99[c]) / 1000, med(mx[c]) / 1000, med(p99[c]) / base } }' "$csv" | tee "$OUT/summary.txt"
awk -F, "$AWK_MED"'
NR>1 { p99[$1] = p99[$1] " " $4; mx[$1] = mx[$1] " " $5 }
END { print "bins_log2,p99_ms,max_ms,native_p99_ms,native_max_ms,p99_ratio"
	for (c in p99) if (c != "native") { k = substr(c, 3) + 0
		printf "%d,%.3f,%.3f,%.3f,%.3f,%.3f\n", k, med(p99[c]) / 1000, med(mx[c]) / 1000,
			med(p99["native"]) / 1000, med(mx["native"]) / 1000, med(p99[c]) / med(p99["native"]) } }' \
	"$csv" | sort -t, -k1,1n >"$OUT/summary.csv"
plot_lines "$OUT/overhead.png" "key-count steady state at $RATE records/s: bins vs native" \
	"bins (log2)" "latency (ms)" 0 1 "$OUT/summary.csv" \
	"bins p99:1:2:1" "bins max:1:3:1" "native p99:1:4:1" "native max:1:5:1"
stall_floor "$B" "$OUT" after
