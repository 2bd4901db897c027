#!/usr/bin/env bash
# NEXMark latency timelines with migrations, the paper's Figure for each
# query: all-at-once against batched, by handoff and by copy (Megaphone's
# way), plus a run without migration; the paper's protocol (half the bins of
# half the workers at duration/3, back at 2/3).  Timed runs do not validate
# (the reference would share the CPUs); VALIDATE=1 adds --validate.
#
#   bench/experiments/nexmark.sh [BUILD_DIR] [OUT_DIR]
#   QUERIES ("q1 q2 q3 q4 q5 q6 q7 q8"), RATE (2M), SECONDS_PER_RUN (30),
#   RUNS (1), CONFIGS ("none all-at-once:handoff batched:handoff
#   all-at-once:copy batched:copy"), DILATION (60), IN_FLIGHT (the
#   generator's default, 100; Megaphone used rate * 2592 for 12-hour
#   auctions), VALIDATE (0), EXTRA (more nexmark flags)
# Writes OUT_DIR/nexmark.csv (every run: migration figures, steady state),
# OUT_DIR/<query>.png (max latency per 250 ms window of every config) and
# each run's timeline with its migrations marked (<query>-<config>-<run>.png).
set -euo pipefail
B=${1:-build}
OUT=${2:-build/experiments/nexmark}
QUERIES=${QUERIES:-q1 q2 q3 q4 q5 q6 q7 q8} RATE=${RATE:-2M} SECS=${SECONDS_PER_RUN:-30}
RUNS=${RUNS:-1} DILATION=${DILATION:-60} EXTRA=${EXTRA:-}
CONFIGS=${CONFIGS:-none all-at-once:handoff batched:handoff all-at-once:copy batched:copy}
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
stall_floor "$B" "$OUT" before
here=$(dirname "$0")
val=()
[ "${VALIDATE:-0}" = 1 ] && val=(--validate)
flight=()
[ -n "${IN_FLIGHT:-}" ] && flight=(--in-flight "$IN_FLIGHT")
csv="$OUT/nexmark.csv"
echo "query,config,run,rate_achieved,p99_us,max_us,migr_ms,migr_max_us,steady_p99_us,steady_max_us,state_mib,validate" >"$csv"
for q in $QUERIES; do
	tl="$OUT/$q-timelines.csv"
	echo "config,t_s,max_us,p99_us" >"$tl"
	for cfg in $CONFIGS; do
		s=${cfg%%:*} m=${cfg#*:}
		mig=(--migration none)
		[ "$s" != none ] && mig=(--migration "$s" --mode "$m")
		name=$(echo "$cfg" | tr : -)
		for r in $(seq 1 "$RUNS"); do
			dir="$OUT/$q-$name-$r"
			# shellcheck disable=SC2086
			"${pin[@]}" "$B/bench/nexmark" --query "$q" --rate "$RATE" --duration "$SECS" \
				--time-dilation "$DILATION" "${flight[@]}" "${mig[@]}" "${val[@]}" \
				--out "$dir" $EXTRA 2>"$dir.log" >"$dir.json" || true
			jq -r --arg q "$q" --arg c "$name" --arg r "$r" '[$q, $c, $r, .rate_achieved,
			  .latency_us.p99, .latency_us.max,
			  ((.migrations // []) | map(.duration_ms) | max // 0),
			  ((.migrations // []) | map(.max_latency_us) | max // 0),
			  (.steady.p99_us // .latency_us.p99), (.steady.max_us // .latency_us.max),
			  (.state_bytes / 1048576 | floor), .validate] | @csv' "$dir.json" |
				tr -d '"' >>"$csv" || echo "$q,$name,$r,failed" >>"$csv"
			[ "$r" = 1 ] && awk -F, -v c="$name" 'NR > 1 { print c "," $1 "," $9 "," $7 }' \
				"$dir/timeline.csv" >>"$tl"
			"$here/../plot" "$dir/timeline.csv" "$OUT/$q-$name-$r.png" \
				"NEXMark $q at $RATE events/s: $cfg" "$dir/migrations.txt" >/dev/null 2>&1 || true
			echo "nexmark: $q $cfg run $r: $(jq -c '{p99: .latency_us.p99, max: .latency_us.max, validate}' "$dir.json" 2>/dev/null)" >&2
		done
	done
	series=()
	for cfg in $CONFIGS; do
		name=$(echo "$cfg" | tr : -)
		series+=("$name:2:3:\$1==\"$name\"")
	done
	plot_lines "$OUT/$q.png" "NEXMark $q at $RATE events/s: max latency per 250 ms window" \
		"time (s)" "max latency (us)" 0 1 "$tl" "${series[@]}"
done
column -s, -t "$csv" | tee "$OUT/summary.txt"
stall_floor "$B" "$OUT" after
