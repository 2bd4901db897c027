#!/bin/bash
# t-examples.sh - the two example programs, driven the way a user drives
# them, checked against a straightforward reference computed here:
#
#   wordcount  files and stdin; the final counts must equal a count by
#              tr | sort | uniq; with stdin from a fifo the test holds the
#              rest of the text back until the program reports a window, so
#              the live migration happens while words still flow;
#   sessions   several concurrent TCP clients (bash /dev/tcp), a
#              "!rebalance" control line and a SIGUSR1 while they send, then
#              SIGTERM; the sessions must equal an awk sessionizer's.
#
# TAP, run by prove.  Waits are for events (a line appearing), with a
# generous limit only against a hang.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MG_BUILD:-$root/build}/examples
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; [ -n "${KEEP:-}" ] && echo "# kept $tmp" || rm -rf "$tmp"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"
	for f in "${@:2}"; do [ -f "$f" ] && tail -15 "$f" | sed "s|^|# $(basename "$f"): |"; done
}
check() { if eval "$2"; then ok "$1"; else not_ok "$1" "${@:3}"; fi; }
# wait_for FILE PATTERN: until PATTERN appears (a hang guard, not a timing)
wait_for() {
	for _ in $(seq 1 1200); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
echo "1..9"

# ---- wordcount -----------------------------------------------------------------
check "wordcount --help exits 0" '"$bin/wordcount" --help >/dev/null'
"$bin/wordcount" --window x >/dev/null 2>"$tmp/err"
check "wordcount with a bad flag exits 2" '[ $? -eq 2 ]' "$tmp/err"

# a text: 3 files of generated lines, some words long, some mixed case
for f in 1 2 3; do
	awk -v s="$f" 'BEGIN { srand(s); split("the of and a to in is It THE Of ab12 supercalifragilisticexpialidociousnessness x y z", w);
		for (i = 0; i < 3000; i++) { l = ""; k = 1 + int(rand() * 9);
			for (j = 0; j < k; j++) l = l w[1 + int(rand() * 16)] (rand() < 0.2 ? ", " : " ");
			print l } }' >"$tmp/text$f"
done
reference() {
	cat "$@" | tr -cs 'A-Za-z0-9' '\n' | tr 'A-Z' 'a-z' | grep -v '^$' |
		cut -c1-31 | sort | uniq -c | awk '{print $1, $2}' | sort
}
reference "$tmp/text1" "$tmp/text2" "$tmp/text3" >"$tmp/want"
"$bin/wordcount" --workers 2 --window 200 --top 3 --migrate-at 2 \
	"$tmp/text1" "$tmp/text2" "$tmp/text3" >"$tmp/wc.out" 2>"$tmp/wc.err"
grep '^total' "$tmp/wc.out" | awk '{print $2, $3}' | sort >"$tmp/got"
check "wordcount of 3 files: final counts equal the reference" \
	'cmp -s "$tmp/got" "$tmp/want" && grep -q "^window 2:" "$tmp/wc.out"' \
	"$tmp/wc.err"

# stdin from a fifo: half the text, wait for window 3, then the rest
mkfifo "$tmp/fifo"
"$bin/wordcount" --workers 2 --window 100 --migrate-at 3 <"$tmp/fifo" \
	>"$tmp/wc2.out" 2>"$tmp/wc2.err" &
wc_pid=$!
pids+=("$wc_pid")
exec 3>"$tmp/fifo"
head -n 1500 "$tmp/text1" >&3
wait_for "$tmp/wc2.out" '^window 3:'
tail -n +1501 "$tmp/text1" >&3
exec 3>&-
wait "$wc_pid"
status=$?
reference "$tmp/text1" >"$tmp/want1"
grep '^total' "$tmp/wc2.out" | awk '{print $2, $3}' | sort >"$tmp/got1"
check "wordcount of stdin: exits 0" '[ $status -eq 0 ]' "$tmp/wc2.err"
check "wordcount of stdin: live migration in the middle, counts unchanged" \
	'grep -q "moving half the bins: success" "$tmp/wc2.err" && cmp -s "$tmp/got1" "$tmp/want1"' \
	"$tmp/wc2.err" "$tmp/got1"

# ---- sessions ---------------------------------------------------------------------
check "sessions --help exits 0" '"$bin/sessions" --help >/dev/null'
"$bin/sessions" --gap nope >/dev/null 2>"$tmp/err"
check "sessions with a bad flag exits 2" '[ $? -eq 2 ]' "$tmp/err"

"$bin/sessions" --workers 2 --gap 10 --idle-ms 0 --lateness 0 \
	>"$tmp/s.out" 2>"$tmp/s.err" &
s_pid=$!
pids+=("$s_pid")
if ! wait_for "$tmp/s.err" 'listening on'; then
	not_ok "sessions listens" "$tmp/s.err"
	exit 1
fi
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/s.err")
# 6 clients, 20 users shared between them, ts increasing per client; all
# connect first (so all start at time 0, with no lateness allowed), send
# half, the test asks for a rebalance (SIGUSR1) and waits for it, then the
# second halves follow, client 0's starting with "!rebalance"
for c in 0 1 2 3 4 5; do
	awk -v c="$c" 'BEGIN { srand(100 + c); ts = 0;
		for (i = 0; i < 400; i++) {
			ts += int(rand() * 4) + (rand() < 0.05 ? 25 : 0);
			if (c == 0 && i == 200) print "!rebalance";
			printf "u%d,%s,%d\n", int(rand() * 20), (rand() < 0.5 ? "click" : "view"), ts } }' >"$tmp/client$c"
	head -n 200 "$tmp/client$c" >"$tmp/first$c"
	tail -n +201 "$tmp/client$c" >"$tmp/second$c"
done
for c in 0 1 2 3 4 5; do
	eval "exec $((c + 3))<>/dev/tcp/127.0.0.1/$port"
done
wait_for "$tmp/s.err" '(6 open)'
send() { # send FILE FD
	while IFS= read -r line; do printf '%s\n' "$line" >&"$2"; done <"$1"
}
senders=()
for c in 0 1 2 3 4 5; do send "$tmp/first$c" $((c + 3)) & senders+=($!); done
wait "${senders[@]}"
kill -USR1 "$s_pid"
wait_for "$tmp/s.err" 'rebalancing every bin: success'
senders=()
for c in 0 1 2 3 4 5; do
	(send "$tmp/second$c" $((c + 3))) & senders+=($!)
	eval "exec $((c + 3))>&-"
done
wait "${senders[@]}"
wait_for "$tmp/s.err" '(0 open)'
for _ in $(seq 1 600); do
	[ "$(grep -c 'rebalancing every bin' "$tmp/s.err")" -ge 2 ] && break
	sleep 0.1
done
kill -TERM "$s_pid"
wait "$s_pid"
status=$?
# the reference: per user, events sorted by ts, split where the gap >= 10
cat "$tmp"/client? | grep -v '^!' | awk -F, '{print $1, $3}' | sort -k1,1 -k2,2n |
	awk -v gap=10 '
	function flush() { if (u != "") print "session", u, first, last, cnt }
	{ if ($1 != u || $2 - last >= gap) { flush(); u = $1; first = $2; cnt = 0 }
	  last = $2; cnt++ }
	END { flush() }' | sort >"$tmp/s.want"
sort "$tmp/s.out" >"$tmp/s.got"
check "sessions: exits 0 after SIGTERM" '[ $status -eq 0 ]' "$tmp/s.err"
check "sessions of 6 concurrent clients, rebalanced twice, equal the reference ($(wc -l <"$tmp/s.want") sessions)" \
	'cmp -s "$tmp/s.got" "$tmp/s.want" && [ $(grep -c "rebalancing every bin: success" "$tmp/s.err") -eq 2 ] && grep -q " 0 late or invalid" "$tmp/s.err"' \
	"$tmp/s.err" "$tmp/s.got"
exit $((fails > 0))
