#!/usr/bin/env bash
# Migration cost, key-count kv with a prefilled multi-GiB state: all-at-once
# by handoff and by copy, fluid and batched by handoff, and all-at-once by
# handoff at 4x less state; RUNS interleaved rounds, medians reported.  The
# paper's protocol: at duration/3 move half the bins of half the workers, at
# 2/3 move them back; figures are the worse of the two migrations of a run.
#
#   bench/experiments/migration.sh [BUILD_DIR] [OUT_DIR]
#   RATE (2M), SECONDS_PER_RUN (12), KEYS (96M), RUNS (3),
#   CONFIGS (all: "handoff-all copy-all handoff-fluid handoff-batched
#   handoff-all-quarter")
set -euo pipefail
B=${1:-build}
OUT=${2:-build/experiments/migration}
RATE=${RATE:-2M} SECS=${SECONDS_PER_RUN:-12} KEYS=${KEYS:-96M} RUNS=${RUNS:-3}
SMALL=$(( $(echo "$KEYS" | sed 's/M$/000000/') / 4 ))
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
stall_floor "$B" "$OUT" before
csv="$OUT/migration.csv"
echo "config,run,state_gib,duration_ms,max_us,p99_us,steady_max_us,steady_p99_us,rss_steady,rss_migrating" >"$csv"
run() { # name, run, keys, flags...
	local name=$1 r=$2 keys=$3; shift 3
	[[ " ${CONFIGS:-$name} " == *" $name "* ]] || return 0
	"${pin[@]}" "$B/bench/keycount" --rate "$RATE" --duration "$SECS" \
		--domain "$keys" --prefill --out "$OUT/$name-$r" "$@" 2>/dev/null |
		jq -r --arg n "$name" --arg r "$r" '[$n, $r,
		  (.state_bytes / 1073741824 * 100 | floor / 100),
		  ([.migrations[].duration_ms] | max),
		  ([.migrations[].max_latency_us] | max),
		  ([.migrations[].p99_latency_us] | max),
		  .steady.max_us, .steady.p99_us,
		  .steady.rss_peak_bytes, .rss_peak_migrating_bytes] | @csv' |
		tr -d '"' >>"$csv"
	echo "migration: $name run $r done" >&2
}
# Interleaved: each round runs every configuration once, so a noisy period
# of the machine does not fall on one configuration's runs only.
for r in $(seq 1 "$RUNS"); do
	run handoff-all "$r" "$KEYS" --migration all-at-once --mode handoff
	run copy-all "$r" "$KEYS" --migration all-at-once --mode copy
	run handoff-fluid "$r" "$KEYS" --migration fluid --mode handoff
	run handoff-batched "$r" "$KEYS" --migration batched --mode handoff
	run handoff-all-quarter "$r" "$SMALL" --migration all-at-once --mode handoff
done
echo
echo "median of $RUNS runs, $RATE records/s, 2 workers, 2^12 bins:"
printf '%-20s %6s %12s %12s %12s %12s %12s\n' config GiB migr_ms max_ms steady_max p99_ms rss_delta%
awk -F, "$AWK_MED"'
NR>1 { c=$1; if (!(c in seen)) { seen[c]=1; order[n++]=c }
	g[c]=$3; d[c]=d[c] " " $4; m[c]=m[c] " " $5; sm[c]=sm[c] " " $7; p[c]=p[c] " " $6;
	rd[c]=rd[c] " " (($10 - $9) * 100 / $9) }
END { for (i = 0; i < n; i++) { c = order[i];
	printf "%-20s %6.2f %12.2f %12.2f %12.2f %12.2f %12.1f\n", c, g[c], med(d[c]), med(m[c]) / 1000,
		med(sm[c]) / 1000, med(p[c]) / 1000, med(rd[c]) }
	if (("copy-all" in seen) && ("handoff-all" in seen))
		printf "copy / handoff, all-at-once: max latency %.3gx, duration %.3gx\n",
			med(m["copy-all"]) / med(m["handoff-all"]), med(d["copy-all"]) / med(d["handoff-all"]) }' \
	"$csv" | tee "$OUT/summary.txt"
stall_floor "$B" "$OUT" after
