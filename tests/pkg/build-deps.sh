#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A build that says what is wrong (issue 12): on a machine without the build
# dependencies, plain `make` stops before compiling anything, naming the
# missing packages and the command that installs them.
#
# The machine without them is this one seen through a dpkg database that
# lacks libmnl-dev and ppp-dev (DPKG_ADMINDIR, dpkg's own variable, points
# dpkg-query at a copy of /var/lib/dpkg/status without their stanzas).  The
# compiler is a wrapper that logs every compile or link, and make builds
# into a directory of this test (B=...), so "nothing compiled" is seen.  No
# root needed; nothing outside a temporary directory is written.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/lib/check.sh
. "$HERE/../lib/check.sh"

WORK=$(mktemp -d /tmp/mh-builddeps.XXXXXX)
cleanup() {
	rm -rf "$WORK"
	if [ -n "${_mh_own_results:-}" ]; then
		mh_summary
		rm -f "$MH_RESULTS"
	fi
}
trap cleanup EXIT

HIDDEN="libmnl-dev ppp-dev"

if ! command -v dpkg-query >/dev/null || [ ! -f /var/lib/dpkg/status ]; then
	skip "build deps: make names missing packages" "not a Debian system (no dpkg)"
	exit 0
fi
missing=$("$TOP/scripts/deps.sh" --missing build)
if [ -n "$missing" ]; then
	skip "build deps: make names missing packages" "this machine lacks $missing itself (run make deps)"
	exit 0
fi

# A dpkg database without the HIDDEN packages.
mkdir -p "$WORK/dpkg"
awk -v hide="$HIDDEN" '
	BEGIN { RS = ""; ORS = "\n\n"; n = split(hide, h, " "); for (i = 1; i <= n; i++) gone["Package: " h[i]] = 1 }
	{ split($0, line, "\n") } !(line[1] in gone)
' /var/lib/dpkg/status >"$WORK/dpkg/status"

# The compiler: logs compiles and links (not make's -print-multiarch query).
cat >"$WORK/cc" <<EOF
#!/bin/sh
case " \$* " in *" -c "* | *" -o "*) echo "\$*" >>"$WORK/cc.log" ;; esac
exec cc "\$@"
EOF
chmod +x "$WORK/cc"

mk() { # ARGS...: make in the tree, its own make (not the runner's), CC logged
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$TOP" CC="$WORK/cc" "$@"
}

# 1. plain make with the packages hidden
out=$(DPKG_ADMINDIR=$WORK/dpkg mk B="$WORK/b" 2>&1)
rc=$?
compiled=0
[ -f "$WORK/cc.log" ] && compiled=$(wc -l <"$WORK/cc.log")
if [ "$rc" != 0 ] && [ "$compiled" = 0 ] && [ ! -e "$WORK/b" ] &&
	grep -q "missing build dependencies: libmnl-dev ppp-dev\$" <<<"$out" &&
	grep -Eq "make deps\$" <<<"$out" &&
	grep -Eq "apt-get install libmnl-dev ppp-dev\$" <<<"$out"; then
	ok "build deps: make without libmnl-dev, ppp-dev stops first (exit $rc, 0 compiles), names both, 'make deps'"
else
	not_ok "build deps: make without libmnl-dev, ppp-dev stops before compiling, naming them" \
		"exit $rc, $compiled compiles/links, build dir $([ -e "$WORK/b" ] && echo created || echo absent): $(tail -n 5 <<<"$out")"
fi
printf '%s\n' "$out" | sed 's/^/  | /'

# 2. the command it names is not itself refused, nor is clean
if out=$(DPKG_ADMINDIR=$WORK/dpkg mk -n B="$WORK/b" deps clean 2>&1) &&
	grep -q 'deps.sh' <<<"$out"; then
	ok "build deps: 'make deps' and 'make clean' still run without them"
else
	not_ok "build deps: 'make deps' and 'make clean' still run without them" "$out"
fi

# 3. our reading of debian/control agrees with dpkg's own (dpkg-checkbuilddeps)
if command -v dpkg-checkbuilddeps >/dev/null; then
	ours=$(DPKG_ADMINDIR=$WORK/dpkg "$TOP/scripts/deps.sh" --missing package)
	dpkgs=$(cd "$TOP" && dpkg-checkbuilddeps --admindir="$WORK/dpkg" 2>&1 |
		sed -n 's/.*Unmet build dependencies: //p' | tr ' ' '\n' | sed '/^$/d; /^(/d; /)$/d' | sort | paste -sd' ')
	if [ "$(tr ' ' '\n' <<<"$ours" | sort | paste -sd' ')" = "$dpkgs" ] && [ "$dpkgs" = "$HIDDEN" ]; then
		ok "build deps: scripts/deps.sh and dpkg-checkbuilddeps both find: $dpkgs"
	else
		not_ok "build deps: scripts/deps.sh agrees with dpkg-checkbuilddeps" "deps.sh: '$ours'; dpkg: '$dpkgs'"
	fi
else
	skip "build deps: scripts/deps.sh agrees with dpkg-checkbuilddeps" "no dpkg-checkbuilddeps (dpkg-dev)"
fi

# 4. with every package there, the same make goes on to compile
if out=$(mk -n B="$WORK/b" 2>&1) && grep -q -- "-c -o $WORK/b/common/" <<<"$out"; then
	ok "build deps: with all of them installed, make goes on to compile"
else
	not_ok "build deps: with all of them installed, make goes on to compile" "$(tail -n 5 <<<"$out")"
fi
