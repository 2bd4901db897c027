#!/usr/bin/env bash
# Elastic workers: a key-count load that rises from 10 % to 90 % of what
# two workers sustain and falls back (--rate-profile, PHASE_S seconds per
# step), with two workers always running (elastic off) and with the
# balancer driving the active workers (elastic on: --balance on --scale
# LOW:HIGH, parking a worker's thread when the load fits on fewer).  RUNS
# interleaved rounds; reported per configuration as medians: the CPU
# seconds the process used (all threads), and per phase the worst 250 ms
# window's p99 latency (the first second of each phase skipped: the step
# itself).  Each configuration's last run is plotted with the active-worker
# changes marked (green bands).
#
#   bench/experiments/elastic.sh [--help] [BUILD_DIR] [OUT_DIR]
#   CAPACITY (18M: records/s two workers sustain here; measure yours with
#   bench/experiments/scaling.sh), STEPS ("10 30 50 70 90 70 50 30 10",
#   percent of CAPACITY), PHASE_S (5), KEYS (1M), WORKERS (2), RUNS (3),
#   SCALE (0.6:0.95; two workers at 10 % read 0.45-0.52 of their time in
#   steps, at 30 % 0.7), INTERVAL_MS (200), COOLDOWN_S (1)
# Writes OUT_DIR/elastic.csv (one row per run and phase), summary.txt, and
# per run OUT_DIR/<config>-<run>/ (keycount's timeline.csv, summary.json).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
help_if_asked "$0" "$@"
B=${1:-build}
OUT=${2:-build/experiments/elastic}
CAP=${CAPACITY:-18M} STEPS=${STEPS:-10 30 50 70 90 70 50 30 10} PHASE=${PHASE_S:-5}
KEYS=${KEYS:-1M} W=${WORKERS:-2} RUNS=${RUNS:-3} SCALE=${SCALE:-0.6:0.95}
INTERVAL=${INTERVAL_MS:-200} COOLDOWN=${COOLDOWN_S:-1}
mkdir -p "$OUT"
num() { numfmt --from=si "$1"; }
cap=$(num "$CAP")
profile=""
for p in $STEPS; do
	profile+="${profile:+,}$((cap * p / 100)):$PHASE"
done
stall_floor "$B" "$OUT" before
csv="$OUT/elastic.csv"
echo "config,run,phase,percent,rate,p99_us,cpu_s,rate_achieved,active_final" >"$csv"
run() { # name, run, flags...
	local name=$1 r=$2 d
	shift 2
	d="$OUT/$name-$r"
	"${pin[@]}" "$B/bench/keycount" --workers "$W" --domain "$KEYS" --prefill \
		--rate-profile "$profile" --out "$d" "$@" >"$d.json" 2>"$d.log" ||
		{ echo "elastic: $name run $r failed (see $d.log)" >&2; return 1; }
	# per phase: the worst window p99, windows starting in the phase's
	# first second skipped (t_s is a 250 ms window's end)
	awk -F, -v n="$name" -v r="$r" -v len="$PHASE" -v steps="$STEPS" -v cap="$cap" \
		-v cpu="$(jq .cpu_s "$d.json")" -v ach="$(jq .rate_achieved "$d.json")" \
		-v act="$(jq .active_final "$d.json")" '
		BEGIN { k = split(steps, pc, " ") }
		NR > 1 { t = $1 - 0.25; ph = int(t / len + 1e-9)
			if (ph < k && t - ph * len >= 1 - 1e-9 && $7 > worst[ph]) worst[ph] = $7 }
		END { for (i = 0; i < k; i++)
			printf "%s,%s,%d,%s,%d,%.1f,%s,%s,%s\n", n, r, i, pc[i+1],
				cap * pc[i+1] / 100, worst[i], cpu, ach, act }' \
		"$d/timeline.csv" >>"$csv"
	echo "elastic: $name run $r: $(jq -r '"\(.cpu_s) CPU s, p99 \(.latency_us.p99) us, \(.active_final) active at the end"' "$d.json")" >&2
}
on=(--balance on --scale "$SCALE" --balance-interval "$INTERVAL" --balance-cooldown "$COOLDOWN")
for r in $(seq 1 "$RUNS"); do
	run off "$r"
	run on "$r" "${on[@]}"
done
for name in off on; do
	d="$OUT/$name-$RUNS"
	[ -r "$d/timeline.csv" ] || continue
	"$(dirname "$0")/../plot" "$d/timeline.csv" "$OUT/elastic-$name.png" \
		"key-count, load $STEPS % of $CAP rec/s (${PHASE} s each): elastic $name" \
		"$d/migrations.txt" >&2
done
{
	echo "median of $RUNS runs, $W workers, load steps of ${PHASE} s: $STEPS % of $CAP records/s"
	awk -F, "$AWK_MED"'
	NR > 1 { k = $1 "," $3; if (!($1 in cs)) { order[n++] = $1; cs[$1] = "" }
		if ($3 == 0) cs[$1] = cs[$1] " " $7
		p[k] = p[k] " " $6; pc[$3] = $4; if ($3 + 1 > np) np = $3 + 1 }
	END { printf "%-8s %10s", "elastic", "CPU_s"
		for (i = 0; i < np; i++) printf " %8s", pc[i] "%"
		printf "   (p99 ms of the worst window per phase)\n"
		for (j = 0; j < n; j++) { c = order[j]; printf "%-8s %10.1f", c, med(cs[c])
			for (i = 0; i < np; i++) printf " %8.2f", med(p[c "," i]) / 1000
			printf "\n" } }' "$csv"
} | tee "$OUT/summary.txt"
stall_floor "$B" "$OUT" after
