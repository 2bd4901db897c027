#!/usr/bin/env bash
# Migration cost against state size (key-count kv, prefilled): all-at-once,
# fluid and batched, each by handoff and by copy, at each key count; the
# paper's protocol (half the bins of half the workers at duration/3, back at
# 2/3); figures are the worse of a run's two migrations, medians of RUNS.
#
#   bench/experiments/statesize.sh [BUILD_DIR] [OUT_DIR]
#   RATE (2M), SECONDS_PER_RUN (12), KEYS_LIST ("3M 12M 48M"), RUNS (1),
#   STRATEGIES ("all-at-once fluid batched"), MODES ("handoff copy")
# Writes OUT_DIR/statesize.csv (every run), summary.csv (medians) and
# max-latency.png / duration.png (against state size, log-log).
set -euo pipefail
B=${1:-build}
OUT=${2:-build/experiments/statesize}
RATE=${RATE:-2M} SECS=${SECONDS_PER_RUN:-12} RUNS=${RUNS:-1}
KEYS_LIST=${KEYS_LIST:-3M 12M 48M}
STRATEGIES=${STRATEGIES:-all-at-once fluid batched} MODES=${MODES:-handoff copy}
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
stall_floor "$B" "$OUT" before
csv="$OUT/statesize.csv"
echo "strategy,mode,keys,run,state_gib,duration_ms,max_us,steady_max_us,done" >"$csv"
for keys in $KEYS_LIST; do
	for s in $STRATEGIES; do
		for m in $MODES; do
			for r in $(seq 1 "$RUNS"); do
				"${pin[@]}" "$B/bench/keycount" --rate "$RATE" --duration "$SECS" \
					--domain "$keys" --prefill --migration "$s" --mode "$m" \
					--out "$OUT/$s-$m-$keys-$r" 2>/dev/null |
					jq -r --arg s "$s" --arg m "$m" --arg k "$keys" --arg r "$r" '[$s, $m, $k, $r,
					  (.state_bytes / 1073741824),
					  ([.migrations[].duration_ms] | max),
					  ([.migrations[].max_latency_us] | max),
					  .steady.max_us,
					  ([.migrations[].done] | all)] | @csv' | tr -d '"' >>"$csv"
				echo "statesize: $keys keys, $s by $m, run $r done" >&2
			done
		done
	done
done
awk -F, "$AWK_MED"'
NR>1 { c = $1 "," $2 "," $3; if (!(c in g)) order[n++] = c
	g[c] = $5; d[c] = d[c] " " $6; m[c] = m[c] " " $7; st[c] = st[c] " " $8; if ($9 != "true") bad[c] = 1 }
END { print "strategy,mode,keys,state_gib,duration_ms,max_ms,steady_max_ms,all_done"
	for (i = 0; i < n; i++) { c = order[i]
		printf "%s,%.3f,%.3f,%.3f,%.3f,%s\n", c, g[c], med(d[c]), med(m[c]) / 1000, med(st[c]) / 1000,
			(c in bad) ? "no" : "yes" } }' "$csv" >"$OUT/summary.csv"
column -s, -t "$OUT/summary.csv" | tee "$OUT/summary.txt"
series=()
for s in $STRATEGIES; do for m in $MODES; do
	series+=("$s by $m:4:@Y@:\$1==\"$s\" && \$2==\"$m\"")
done; done
plot_lines "$OUT/max-latency.png" "max latency during a migration vs state size ($RATE records/s)" \
	"state (GiB)" "max latency (ms)" 1 1 "$OUT/summary.csv" "${series[@]//@Y@/6}"
plot_lines "$OUT/duration.png" "migration duration vs state size ($RATE records/s)" \
	"state (GiB)" "duration (ms)" 1 1 "$OUT/summary.csv" "${series[@]//@Y@/5}"
stall_floor "$B" "$OUT" after
