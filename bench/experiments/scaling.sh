#!/usr/bin/env bash
# Sustainable rate against workers: for each worker count, key domain and
# backend (kv with 2^12 bins, native), the highest offered rate whose run
# keeps up (achieved >= 98% of offered) with p99 <= P99_MS.  Rates are tried
# in increasing order and the search stops at the first rate that fails in
# the median of RUNS runs, so one stall of the machine does not end it.
# Worker counts above the CPUs this process may use run with
# --oversubscribe and are marked as such: they measure correctness under
# contention, not capacity.
#
#   bench/experiments/scaling.sh [BUILD_DIR] [OUT_DIR]
#   WORKERS ("1 2"), KEYS_LIST ("1M 96M"), BACKENDS ("kv native"),
#   RATES ("2M 4M 6M 8M 10M 12M 14M 16M 18M 20M"), RUNS (3),
#   SECONDS_PER_RUN (10), P99_MS (5)
# Writes OUT_DIR/scaling.csv (every run, with lib.sh's cpu_speed just
# before it), summary.csv (the highest
# sustained rate per configuration) and scaling.png (sustained rate
# against workers).
set -euo pipefail
B=${1:-build}
OUT=${2:-build/experiments/scaling}
WORKERS=${WORKERS:-1 2} KEYS_LIST=${KEYS_LIST:-1M 96M} BACKENDS=${BACKENDS:-kv native}
RATES=${RATES:-2M 4M 6M 8M 10M 12M 14M 16M 18M 20M} RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-10} P99_MS=${P99_MS:-5}
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
cpus=$("${pin[@]}" nproc)
stall_floor "$B" "$OUT" before
csv="$OUT/scaling.csv"
echo "backend,keys,workers,oversubscribed,rate,run,offered,achieved,p50_us,p99_us,max_us,cpu_speed,slowest_reads_per_us" >"$csv"
summary="$OUT/summary.csv"
echo "backend,keys,workers,oversubscribed,sustained_rate,p99_ms_at_it" >"$summary"
# ok OFFERED: whether the last RUNS rows of the CSV keep up, by the median
ok() {
	tail -n "$RUNS" "$csv" | awk -F, -v p="$P99_MS" "$AWK_MED"'
	{ a = a " " $8 / $7; q = q " " $10 }
	END { exit !(med(a) >= 0.98 && med(q) <= p * 1000) }'
}
for keys in $KEYS_LIST; do
	for be in $BACKENDS; do
		for w in $WORKERS; do
			over=0 flags=()
			if [ "$w" -gt "$cpus" ]; then over=1 flags=(--oversubscribe); fi
			best=0 best_p99=""
			for rate in $RATES; do
				for r in $(seq 1 "$RUNS"); do
					speed=$(cpu_speed "$B")
					if ! "${pin[@]}" "$B/bench/keycount" --backend "$be" --workers "$w" \
						"${flags[@]}" --rate "$rate" --duration "$SECS" \
						--domain "$keys" --prefill >"$OUT/run.json" 2>"$OUT/run.err"; then
						echo "scaling: keycount failed:" >&2
						cat "$OUT/run.err" >&2
						exit 1
					fi
					jq -r --arg b "$be" --arg k "$keys" --arg w "$w" --arg o "$over" \
							--arg rt "$rate" --arg r "$r" --arg sp "$speed" \
							'[$b, $k, $w, $o, $rt, $r, .rate_offered, .rate_achieved,
							  .latency_us.p50, .latency_us.p99, .latency_us.max, ($sp | split(",")[])] | @csv' \
						"$OUT/run.json" | tr -d '"' >>"$csv"
				done
				if ! ok; then
					echo "scaling: $be $keys keys, $w workers: $rate not sustained" >&2
					break
				fi
				best=$(tail -n 1 "$csv" | cut -d, -f7)
				best_p99=$(tail -n "$RUNS" "$csv" | awk -F, "$AWK_MED"'{ q = q " " $10 }
					END { printf "%.2f", med(q) / 1000 }')
				echo "scaling: $be $keys keys, $w workers: $rate sustained (p99 $best_p99 ms)" >&2
			done
			echo "$be,$keys,$w,$over,$best,$best_p99" >>"$summary"
		done
	done
done
column -s, -t "$summary" | tee "$OUT/summary.txt"
series=()
for keys in $KEYS_LIST; do
	for be in $BACKENDS; do
		series+=("$be, $keys keys:3:5:\$1==\"$be\" && \$2==\"$keys\"")
	done
done
plot_lines "$OUT/scaling.png" "key-count: highest rate with p99 <= $P99_MS ms (oversubscribed counts marked in summary.csv)" \
	"workers" "sustained rate (records/s)" 0 0 "$summary" "${series[@]}"
stall_floor "$B" "$OUT" after
