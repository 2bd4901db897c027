#!/usr/bin/env bash
# Soak: key-count (kv, 2 workers) for SOAK_SECONDS at RATE records/s with a
# random migration every MIGRATE_EVERY seconds (keycount --migration random:
# 1..bins/8 random bins to random other workers), every output checked
# against the reference operator (--validate, in chunks of timestamps, in
# memory that does not grow with the run), RSS read from /proc/PID/status
# (VmRSS) every SOAK_SAMPLE seconds.
#
# The engine moves all bins of a run one way (--mode belongs to the
# dataflow), so the modes alternate by segment: SOAK_SECONDS is split evenly
# over SOAK_MODES, one keycount run each, back to back.  Per segment it
# reports the RSS drift after the warm-up (median of the last 3 samples
# against the median of the first 3 past SOAK_WARMUP; target: within
# SOAK_RSS_TOL %), the migrations done, the records lost (scheduled less
# outputs: 0) and the validation; it exits 1 if any segment misses one.
#
#   bench/experiments/soak.sh [--help] [BUILD_DIR] [OUT_DIR]
#   SOAK_SECONDS (3600), RATE (2M), MIGRATE_EVERY (1), SOAK_MODES
#   ("handoff copy"), SOAK_WARMUP (300; at most a fifth of a segment),
#   SOAK_SAMPLE (10), SOAK_RSS_TOL (2), DOMAIN (1M), BINS (12), SEED (1)
# Writes OUT_DIR/rss.csv (mode,t_s,rss_kib: every sample), soak.csv (one row
# per segment), summary.txt, and per mode OUT_DIR/<mode>/ (keycount's
# timeline.csv, summary.json, stderr in keycount.log).
set -euo pipefail

usage() { # the comment above, up to set -e
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}
die_usage() {
	echo "soak.sh: $*" >&2
	echo "Try 'bench/experiments/soak.sh --help'." >&2
	exit 2
}

args=()
for a in "$@"; do
	case $a in
	-h | --help) usage; exit 0 ;;
	-*) die_usage "unknown option '$a'" ;;
	*) args+=("$a") ;;
	esac
done
[ ${#args[@]} -le 2 ] || die_usage "too many arguments (BUILD_DIR and OUT_DIR at most)"
B=${args[0]:-build}
OUT=${args[1]:-build/experiments/soak}
SECS=${SOAK_SECONDS:-3600} RATE=${RATE:-2M} EVERY=${MIGRATE_EVERY:-1}
MODES=${SOAK_MODES:-handoff copy} WARM=${SOAK_WARMUP:-300}
SAMPLE=${SOAK_SAMPLE:-10} TOL=${SOAK_RSS_TOL:-2} DOMAIN=${DOMAIN:-1M}
BINS=${BINS:-12} SEED=${SEED:-1}

is_num() { [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || die_usage "$1 must be a number of seconds or percent, not '$2'"; }
is_num SOAK_SECONDS "$SECS"
is_num MIGRATE_EVERY "$EVERY"
is_num SOAK_WARMUP "$WARM"
is_num SOAK_SAMPLE "$SAMPLE"
is_num SOAK_RSS_TOL "$TOL"
read -r -a modes <<<"$MODES"
[ ${#modes[@]} -ge 1 ] || die_usage "SOAK_MODES is empty"
for m in "${modes[@]}"; do
	[ "$m" = handoff ] || [ "$m" = copy ] || die_usage "SOAK_MODES: '$m' is not handoff or copy"
done
awk -v s="$SAMPLE" 'BEGIN { exit !(s >= 1) }' || die_usage "SOAK_SAMPLE must be 1 s or more"
# each segment: its share of the time; warm-up at most a fifth of it
SEG=$(awk -v s="$SECS" -v n=${#modes[@]} 'BEGIN { printf "%.3f", s / n }')
WARM=$(awk -v w="$WARM" -v g="$SEG" 'BEGIN { printf "%.3f", w < g / 5 ? w : g / 5 }')
awk -v g="$SEG" -v w="$WARM" -v s="$SAMPLE" 'BEGIN { exit !(g - w >= 3 * s) }' ||
	die_usage "a segment of $SEG s leaves fewer than 3 samples of $SAMPLE s past a $WARM s warm-up: raise SOAK_SECONDS or lower SOAK_SAMPLE"
command -v jq >/dev/null || { echo "soak.sh: needs jq (make deps)" >&2; exit 1; }
[ -x "$B/bench/keycount" ] || { echo "soak.sh: no $B/bench/keycount: run make bench" >&2; exit 1; }

mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
rss_csv="$OUT/rss.csv" csv="$OUT/soak.csv"
echo "mode,t_s,rss_kib" >"$rss_csv"
echo "mode,seconds,rss_base_mib,rss_end_mib,drift_pct,rss_min_mib,rss_max_mib,migrations_done,migrations_submitted,unfinished,late,bins_moved,records,records_lost,validate,p99_us,max_us,exit" >"$csv"
echo "soak: ${#modes[@]} segment(s) of $SEG s (${modes[*]}), $RATE rec/s, a random migration every $EVERY s, RSS every $SAMPLE s past a $WARM s warm-up" >&2
stall_floor "$B" "$OUT" before

pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; exit 130' INT TERM

# One segment: keycount in mode $1, sampled until it exits.
segment() {
	local mode=$1 dir="$OUT/$1" t0 now t rss status=0
	mkdir -p "$dir"
	"${pin[@]}" "$B/bench/keycount" --rate "$RATE" --duration "$SEG" \
		--domain "$DOMAIN" --bins "$BINS" --seed "$SEED" --mode "$mode" \
		--warmup "$WARM" --migration random --migrate-every "$EVERY" \
		--migrate-at 1 --validate --out "$dir" \
		>"$dir/summary.line" 2>"$dir/keycount.log" &
	pid=$!
	t0=$(date +%s.%N)
	while kill -0 "$pid" 2>/dev/null; do
		rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
		now=$(date +%s.%N)
		t=$(awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
		if [ -n "$rss" ]; then
			echo "$mode,$t,$rss" >>"$rss_csv"
			printf 'soak: %-7s t=%7.1fs  rss %8.1f MiB%s  | %s\n' "$mode" "$t" \
				"$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" \
				"$(awk -v t="$t" -v w="$WARM" 'BEGIN { if (t < w) printf " (warm-up)" }')" \
				"$(grep 'rec/s' "$dir/keycount.log" | tail -n 1 | sed "s/^keycount: //; s/  rss .*//")" >&2
		fi
		sleep "$SAMPLE" &
		wait $! || true
	done
	wait "$pid" || status=$?
	pid=
	grep -E 'validate|migration' "$dir/keycount.log" | tail -n 3 | sed 's/^/soak:   /' >&2
	# drift: median of the first 3 samples past the warm-up against the
	# median of the last 3 before the input ended
	awk -F, -v m="$mode" -v w="$WARM" -v g="$SEG" "$AWK_MED"'
	$1 == m && $2 + 0 >= w && $2 + 0 <= g { v[n++] = $3 }
	END {
		if (n < 3) { print "nan,nan,nan,nan,nan"; exit }
		b = med(v[0] " " v[1] " " v[2]); e = med(v[n-3] " " v[n-2] " " v[n-1])
		lo = hi = v[0]; for (i = 1; i < n; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
		printf "%.1f,%.1f,%.2f,%.1f,%.1f\n", b / 1024, e / 1024, (e - b) * 100 / b, lo / 1024, hi / 1024
	}' "$rss_csv" >"$dir/rss.txt"
	if jq -e . "$dir/summary.line" >/dev/null 2>&1; then
		jq -r --arg m "$mode" --arg s "$SEG" --arg r "$(cat "$dir/rss.txt")" --arg x "$status" '[$m, $s, $r,
		  .random_migrations.done, .random_migrations.submitted,
		  .random_migrations.unfinished, .random_migrations.late,
		  .random_migrations.bins_moved, .records, .records_lost,
		  .validate, .latency_us.p99, .latency_us.max, $x] | map(tostring) | join(",")' \
			"$dir/summary.line" >>"$csv"
	else
		echo "$mode,$SEG,$(cat "$dir/rss.txt"),,,,,,,,failed,,,$status" >>"$csv"
		echo "soak: $mode: keycount gave no summary (exit $status); see $dir/keycount.log" >&2
	fi
}

for m in "${modes[@]}"; do
	segment "$m"
done
stall_floor "$B" "$OUT" after

echo
awk -F, -v tol="$TOL" '
NR == 1 { next }
{
	ok = $18 == 0 && $15 == "ok" && $14 == 0 && $8 + 0 > 0 && $8 == $9 && $10 == 0 &&
	     $5 != "nan" && ($5 < 0 ? -$5 : $5) <= tol
	bad += !ok
	printf "%-8s %6.0f s  RSS %7.1f -> %7.1f MiB (drift %+.2f%%, range %.1f..%.1f MiB)  " \
	       "migrations %s done of %s (%s late, %s bins)  records %s, lost %s  validate %s  " \
	       "p99 %.1f ms, max %.1f ms  %s\n",
	       $1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12, $13, $14, $15, $16 / 1000, $17 / 1000,
	       ok ? "PASS" : "FAIL"
}
END {
	printf "soak: %s (targets: |RSS drift| <= %s%%, every migration done, no record lost, outputs identical)\n",
	       bad ? "FAILED" : "passed", tol
	exit bad != 0
}' "$csv" | tee "$OUT/summary.txt"
