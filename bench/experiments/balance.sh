#!/usr/bin/env bash
# Balancing a skewed key-count: Zipf keys whose hot set starts in worker 0's
# bins (--skew-start) and moves every HOT_SHIFT seconds (--hot-shift), with
# the balancer off and on, by handoff and by copy; RUNS interleaved rounds,
# medians reported, and each configuration's last run plotted with the
# balancer's decisions marked (blue bands).
#
#   bench/experiments/balance.sh [BUILD_DIR] [OUT_DIR]
#   RATE (1M), SECONDS_PER_RUN (20), KEYS (1M), ZIPF (1.0), HOT_SHIFT (5),
#   WORKERS (2), RUNS (3), INTERVAL_MS (500), THRESHOLD (0.2),
#   CONFIGS (all: "off-handoff on-handoff off-copy on-copy")
set -euo pipefail
B=${1:-build}
OUT=${2:-build/experiments/balance}
RATE=${RATE:-1M} SECS=${SECONDS_PER_RUN:-20} KEYS=${KEYS:-1M} ZIPF=${ZIPF:-1.0}
SHIFT=${HOT_SHIFT:-5} W=${WORKERS:-2} RUNS=${RUNS:-3}
INTERVAL=${INTERVAL_MS:-500} THRESHOLD=${THRESHOLD:-0.2}
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
stall_floor "$B" "$OUT" before
csv="$OUT/balance.csv"
echo "config,run,rate_achieved,p50_us,p99_us,max_us,decisions,migrations,bins_moved,bytes_moved" >"$csv"
run() { # name, run, flags...
	local name=$1 r=$2; shift 2
	[[ " ${CONFIGS:-$name} " == *" $name "* ]] || return 0
	"${pin[@]}" "$B/bench/keycount" --workers "$W" --rate "$RATE" \
		--duration "$SECS" --domain "$KEYS" --keys "zipf:$ZIPF" \
		--skew-start --hot-shift "$SHIFT" --out "$OUT/$name-$r" "$@" 2>/dev/null |
		jq -r --arg n "$name" --arg r "$r" '[$n, $r, .rate_achieved,
		  .latency_us.p50, .latency_us.p99, .latency_us.max,
		  (.balance.decisions // 0), (.balance.migrations // 0),
		  (.balance.bins_moved // 0),
		  ([.balance.events[]?.bytes] | add // 0)] | @csv' |
		tr -d '"' >>"$csv"
	echo "balance: $name run $r done" >&2
}
on=(--balance on --balance-interval "$INTERVAL" --balance-threshold "$THRESHOLD")
# Interleaved: each round runs every configuration once, so a noisy period
# of the machine does not fall on one configuration's runs only.
for r in $(seq 1 "$RUNS"); do
	run off-handoff "$r" --balance off --mode handoff
	run on-handoff "$r" "${on[@]}" --mode handoff
	run off-copy "$r" --balance off --mode copy
	run on-copy "$r" "${on[@]}" --mode copy
done
for name in off-handoff on-handoff off-copy on-copy; do
	d="$OUT/$name-$RUNS"
	[ -r "$d/timeline.csv" ] || continue
	"$(dirname "$0")/../plot" "$d/timeline.csv" "$OUT/$name.png" \
		"key-count zipf:$ZIPF, skewed start, hot keys shift every ${SHIFT} s: balancer ${name%%-*}, ${name#*-}" \
		"$d/migrations.txt" >&2
done
echo
echo "median of $RUNS runs, $RATE records/s, $W workers, zipf:$ZIPF over $KEYS keys:"
printf '%-12s %12s %10s %10s %10s %10s %10s %12s\n' config rec/s p50_ms p99_ms max_ms migr bins MiB_moved
awk -F, "$AWK_MED"'
NR>1 { c=$1; if (!(c in seen)) { seen[c]=1; order[n++]=c }
	a[c]=a[c] " " $3; p5[c]=p5[c] " " $4; p9[c]=p9[c] " " $5; mx[c]=mx[c] " " $6;
	mg[c]=mg[c] " " $8; bn[c]=bn[c] " " $9; by[c]=by[c] " " $10 }
END { for (i = 0; i < n; i++) { c = order[i];
	printf "%-12s %12.0f %10.2f %10.2f %10.2f %10.1f %10.1f %12.1f\n", c, med(a[c]),
		med(p5[c]) / 1000, med(p9[c]) / 1000, med(mx[c]) / 1000, med(mg[c]),
		med(bn[c]), med(by[c]) / 1048576 } }' "$csv" | tee "$OUT/summary.txt"
stall_floor "$B" "$OUT" after
