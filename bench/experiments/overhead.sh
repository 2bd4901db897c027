#!/usr/bin/env bash
# Steady-state overhead of bins against the native operator (key-count, kv):
# p50, p99 and max latency for 2^k bins, k = 4 8 12 16 20, and native, all
# at the same rate, pinned.  Runs are interleaved -- round r runs native and
# every bin count once -- so a noisy period of the machine hits all of them,
# and each round's ratio to native is taken side by side; the summary has
# the medians over RUNS rounds.
#
#   bench/experiments/overhead.sh [BUILD_DIR] [OUT_DIR]
# Writes OUT_DIR/overhead.csv (every run), summary.csv (medians per bin
# count, with native's) and overhead.png (p50 and p99 vs bins).
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
run() { # name, run, extra flags...
	local name=$1 r=$2; shift 2
	"${pin[@]}" "$B/bench/keycount" --rate "$RATE" --duration "$SECS" \
		--domain "$KEYS" --prefill "$@" 2>/dev/null |
		jq -r --arg n "$name" --arg r "$r" \
		'[$n, $r, .latency_us.p50, .latency_us.p99, .latency_us.max, .rate_achieved, .state_bytes] | @csv' |
		tr -d '"' >>"$csv"
	echo "overhead: $name run $r done" >&2
}
for r in $(seq 1 "$RUNS"); do
	run native "$r" --backend native
	for k in $BINS; do run "2^$k" "$r" --backend kv --bins "$k"; done
done
echo
echo "median of $RUNS rounds, $RATE records/s, $KEYS keys, 2 workers (ratios: to native, same round):"
printf '%-8s %9s %9s %9s %11s %11s\n' config p50_ms p99_ms max_ms p50/native p99/native
# shellcheck disable=SC2016
SUMMARY='NR>1 { c=$1; r=$2; p50[c]=p50[c] " " $3; p99[c]=p99[c] " " $4; mx[c]=mx[c] " " $5
	v50[c,r]=$3; v99[c,r]=$4; if (!(c in seen)) { seen[c]=1; order[n++]=c } }
function ratios(c, v, r, s) { s=""; for (r = 1; (c,r) in v; r++) if (("native",r) in v) s = s " " v[c,r] / v["native",r]; return s }'
awk -F, "$AWK_MED$SUMMARY"'
END { for (i = 0; i < n; i++) { c = order[i];
	printf "%-8s %9.2f %9.2f %9.2f %11.2f %11.2f\n", c, med(p50[c]) / 1000, med(p99[c]) / 1000,
		med(mx[c]) / 1000, med(ratios(c, v50)), med(ratios(c, v99)) } }' "$csv" | tee "$OUT/summary.txt"
awk -F, "$AWK_MED$SUMMARY"'
END { print "bins_log2,p50_ms,p99_ms,max_ms,native_p50_ms,native_p99_ms,p50_ratio,p99_ratio"
	for (c in p99) if (c != "native") { k = substr(c, 3) + 0
		printf "%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f\n", k, med(p50[c]) / 1000, med(p99[c]) / 1000,
			med(mx[c]) / 1000, med(p50["native"]) / 1000, med(p99["native"]) / 1000,
			med(ratios(c, v50)), med(ratios(c, v99)) } }' \
	"$csv" | sort -t, -k1,1n >"$OUT/summary.csv"
plot_lines "$OUT/overhead.png" "key-count steady state at $RATE records/s: bins vs native" \
	"bins (log2)" "latency (ms)" 0 1 "$OUT/summary.csv" \
	"bins p50:1:2:1" "bins p99:1:3:1" "native p50:1:5:1" "native p99:1:6:1"
stall_floor "$B" "$OUT" after
