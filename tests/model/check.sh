#!/bin/sh
# check.sh DIR NAME WANT [PAN_FLAGS...] - run the verifier DIR/pan (built by
# `make check-model`), print one line, and succeed only if the verdict is
# WANT: "pass" (an exhaustive search, 0 errors) or "fail" (a seeded bug:
# pan must report an error).  The counterexample stays in DIR for
# `spin -t -D... handoff.pml`.
dir=$1 name=$2 want=$3
shift 3
(cd "$dir" && ./pan "$@" >pan.out 2>&1)
out=$dir/pan.out
errs=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out")
what=$(grep -m1 '^pan:1: ' "$out" | sed 's/^pan:1: //; s/ (at depth.*//')
printf '  MODEL  %-17s %-4s states=%-8s depth=%-4s mem=%sMB time=%ss%s\n' \
	"$name" "$want" \
	"$(awk '/states, stored/ {print $1}' "$out")" \
	"$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$out")" \
	"$(awk '/total actual memory/ {print $1}' "$out")" \
	"$(awk '/elapsed time/ {print $4}' "$out")" \
	"${what:+  caught: $what}"
if [ -z "$errs" ] || grep -q 'max search depth too small' "$out"; then
	echo "  MODEL  $name: FAILED: incomplete search (see $out)"
	exit 1
fi
case $want in
pass)	[ "$errs" = 0 ] && exit 0
	echo "  MODEL  $name: FAILED: the model has an error (see $out)" ;;
fail)	[ "$errs" != 0 ] && exit 0
	echo "  MODEL  $name: FAILED: the seeded bug went unnoticed" ;;
esac
exit 1
