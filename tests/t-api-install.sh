#!/bin/sh
# t-api-install.sh - the library as a user gets it: `make install` into a
# scratch root, exactly one header, exactly the declared symbols exported,
# the SONAME, and the README's first example built with the pkg-config flags
# against the installed library (shared and static) and run: it must end by
# itself with the output it prints.  TAP, run by prove.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"
	[ -f "$tmp/log" ] && sed 's/^/# /' "$tmp/log" | tail -20
}
echo "1..9"

# The default variant: a user's library has no sanitizer runtime.
if make -C "$root" -s --no-print-directory install SAN= DEBUG=0 \
	DESTDIR="$tmp/root" PREFIX=/usr >"$tmp/log" 2>&1; then
	ok "make install"
else
	not_ok "make install"
	exit 1
fi
inc=$tmp/root/usr/include
lib=$tmp/root/usr/lib

if [ "$(cd "$inc" && find . -type f)" = "./megaphone.h" ]; then
	ok "one header installed: megaphone.h"
else
	(cd "$inc" && find . -type f) >"$tmp/log"; not_ok "one header installed"
fi

# No header of the project's modules or of its dependencies is included.
if grep -E '#include "|#include <(ck_|urcu)' "$inc/megaphone.h" >"$tmp/log"; then
	not_ok "megaphone.h includes nothing but the C library"
else
	ok "megaphone.h includes nothing but the C library"
fi

so=$(ls "$lib"/libmegaphone.so.*.*.* 2>/dev/null | head -1)
if [ -n "$so" ] && readelf -d "$so" | grep -q 'SONAME.*libmegaphone\.so\.0\]' &&
	[ -L "$lib/libmegaphone.so.0" ] && [ -L "$lib/libmegaphone.so" ]; then
	ok "SONAME libmegaphone.so.0 and its links"
else
	readelf -d "$so" >"$tmp/log" 2>&1; not_ok "SONAME libmegaphone.so.0"
fi

# Exported = declared with MG_API, both ways.
nm -D --defined-only "$so" | awk '{print $3}' | sort >"$tmp/exported"
tr '\n' ' ' <"$inc/megaphone.h" | grep -oE 'MG_API [^;{]*' |
	grep -oE '\*?mg_[a-z0-9_]+\(' | tr -d '*(' | sort >"$tmp/declared"
if diff "$tmp/declared" "$tmp/exported" >"$tmp/log"; then
	ok "exported symbols are exactly the declared ones ($(wc -l <"$tmp/exported"))"
else
	not_ok "exported symbols are exactly the declared ones"
fi

# The README's first example.
awk '/<!-- readme-example/ { want = 1; next }
     want && /^```c/ { on = 1; next }
     on && /^```/ { exit }
     on { print }' "$root/README.md" >"$tmp/demo.c"
pc() {
	PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root" \
		pkg-config "$@" megaphone
}
if cc -std=c11 -Wall -Wextra -Werror -O2 "$tmp/demo.c" $(pc --cflags --libs) \
	-o "$tmp/demo" >"$tmp/log" 2>&1; then
	ok "README example builds with pkg-config --cflags --libs"
else
	not_ok "README example builds with pkg-config --cflags --libs"
fi
# With cc and, where installed, clang, whose linker records every shared
# library named unless told --as-needed (Debian's gcc always tells it).
for c in cc clang; do
	if ! command -v $c >/dev/null; then
		ok "# SKIP README example statically linked with $c: none"
		continue
	fi
	if $c -std=c11 -O2 "$tmp/demo.c" $(pc --cflags) -L"$lib" -Wl,-Bstatic \
		-lmegaphone -Wl,-Bdynamic -Wl,--as-needed $(pc --static --libs) \
		-o "$tmp/demo-static" >"$tmp/log" 2>&1 &&
		! ldd "$tmp/demo-static" | grep -q libmegaphone &&
		[ "$(timeout 120 "$tmp/demo-static" | tail -1)" = "time 2: 1000 counts" ]; then
		ok "README example builds and runs statically linked with $c"
	else
		ldd "$tmp/demo-static" >>"$tmp/log" 2>&1
		not_ok "README example builds and runs statically linked with $c"
	fi
done
if LD_LIBRARY_PATH="$lib" timeout 120 "$tmp/demo" >"$tmp/out" 2>"$tmp/log" &&
	[ "$(cat "$tmp/out")" = "time 0: 1000 counts
time 1: 1000 counts
time 2: 1000 counts" ]; then
	ok "README example runs and ends by itself"
else
	cat "$tmp/out" >>"$tmp/log"; not_ok "README example runs and ends by itself"
fi
exit $((fails > 0))
