# Shared by the experiment scripts (sourced, not run).
#
#   help_if_asked "$0" "$@" print the script's header comment and exit 0 when
#                          its first argument is --help
#   pin                    the numactl prefix every run uses (empty without numactl)
#   stall_floor B OUT NAME how long the machine itself stalls a busy thread
#                          (bench/hiccup, 5 s), and how fast each CPU runs:
#                          OUT/hiccup-NAME.json and a line on stderr; the
#                          scripts run it before and after, so a noisy or
#                          slow period shows next to its results
#   cpu_speed B            "RATIO,SLOWEST" (two CSV fields, empty if hiccup
#                          fails) from a 1 s hiccup: the slowest
#                          CPU's speed over the fastest's, and its clock
#                          readings a microsecond (the VM's vCPUs drift apart
#                          by up to 2x for minutes, and a two-worker run goes
#                          at the slower one's pace): the scripts record them
#                          beside each run
#   AWK_MED                an awk function med(" v1 v2 ...") -> median
#   plot_lines PNG TITLE XLABEL YLABEL LOGX LOGY CSV SERIES...
#                          one line per series; SERIES is "label:xcol:ycol:filter"
#                          where filter is an awk condition on the CSV row
#                          (e.g. '$1=="native"'); columns are 1-based
help_if_asked() {
	[ "${2:-}" = --help ] || return 0
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"
	exit 0
}

pin=()
if command -v numactl >/dev/null && numactl --physcpubind=0,1 true 2>/dev/null; then
	pin=(numactl --physcpubind=0,1)
fi

stall_floor() {
	"${pin[@]}" "$1/bench/hiccup" --seconds 5 >"$2/hiccup-$3.json" 2>/dev/null || return 0
	jq -r --arg n "$3" '"stall floor (\($n)): max gap \(.runs[0].max_gap_us / 10 | floor / 100) ms, \(.runs[0].gaps_over_5ms) gaps over 5 ms in \(.seconds) s, slowest CPU at \(.runs[0].speed_ratio) of the fastest (\(.runs[0].reads_per_us | map(tostring) | join(" / ")) clock reads a us), kdamond \(.damon)"' \
		"$2/hiccup-$3.json" >&2
}

cpu_speed() {
	local s
	s=$("${pin[@]}" "$1/bench/hiccup" --seconds 1 2>/dev/null |
		jq -r '.runs[0] | "\(.speed_ratio),\(.reads_per_us | min)"') || s=""
	echo "${s:-,}"
}

AWK_MED='function med(s,   a, k, i, j, x) { k = split(s, a, " ")
	for (i = 2; i <= k; i++) { x = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j+1] = a[j]; a[j+1] = x }
	return k % 2 ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2 }'

plot_lines() {
	local png=$1 title=${2//\'/\'\'} xl=$3 yl=$4 logx=$5 logy=$6 csv=$7
	shift 7
	command -v gnuplot >/dev/null || { echo "plot: gnuplot not installed (make deps)" >&2; return 0; }
	local tmp plots="" s label xc yc filt i=0
	tmp=$(mktemp -d)
	for s in "$@"; do
		IFS=: read -r label xc yc filt <<<"$s"
		awk -F, -v OFS=' ' "NR > 1 && ($filt) { print \$$xc, \$$yc }" "$csv" | sort -g >"$tmp/$i.dat"
		[ -s "$tmp/$i.dat" ] && plots+="${plots:+, }'$tmp/$i.dat' using 1:2 with linespoints lw 2 title '$label'"
		i=$((i + 1))
	done
	if [ -n "$plots" ]; then
		gnuplot <<GP
set terminal pngcairo size 1000,600 font ',10'
set output '$png'
set title '$title'
set xlabel '$xl'
set ylabel '$yl'
$([ "$logx" = 1 ] && echo 'set logscale x 2')
$([ "$logy" = 1 ] && echo 'set logscale y')
set key outside right
set grid
plot $plots
GP
		echo "plot: wrote $png" >&2
	fi
	rm -rf "$tmp"
}
