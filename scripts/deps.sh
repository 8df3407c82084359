#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# What building and testing multihome needs (Debian 12), from one list:
# debian/control's Build-Depends, plus build-essential (Debian's implied
# build dependency), plus debian/tests/control's Depends (what only the
# tests need).
#
#   scripts/deps.sh                  install what is missing (root); quiet
#                                    and offline when nothing is
#   scripts/deps.sh --missing WHAT   print the packages of WHAT that are not
#                                    installed, one line; exit 1 if any
#   scripts/deps.sh --list WHAT      print WHAT's dependencies, one a line
#
# WHAT: build    what `make` compiles with (Build-Depends less the packaging
#                tools, debhelper and dh-*)
#       package  Build-Depends (dpkg-buildpackage, `make deb`)
#       all      everything (the default for installing)
#
# "Installed" means installed, or provided by an installed package, whatever
# the version: the version constraints are apt's business when it installs.
# DPKG_ADMINDIR (dpkg's own variable) points the check at another database.
TOP=$(cd "$(dirname "$0")/.." && pwd)

# field FILE NAME: the values of field NAME in every stanza of the deb822
# FILE, comma-separated entries one a line (comments and @-tokens dropped).
field() {
	awk -v want="$2" '
		/^#/ { next }
		/^[^ \t]/ {
			infield = tolower(substr($0, 1, index($0, ":") - 1)) == tolower(want)
			if (infield) print substr($0, index($0, ":") + 1)
			next
		}
		/^[ \t]/ && infield { print; next }
		{ infield = 0 }
	' "$1" | tr ',' '\n' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' \
		-e '/^$/d' -e '/^@/d'
}

list() {
	case $1 in
	build)
		field "$TOP/debian/control" Build-Depends | sed -e '/^debhelper/d' -e '/^dh-/d' ;;
	package)
		field "$TOP/debian/control" Build-Depends ;;
	all)
		echo build-essential
		field "$TOP/debian/control" Build-Depends
		field "$TOP/debian/tests/control" Depends ;;
	*)
		echo "deps.sh: unknown list '$1' (build, package, all)" >&2
		exit 2 ;;
	esac
}

# missing WHAT: the entries of WHAT that no installed package satisfies
# (an entry "a | b" is satisfied by either), by package name.
missing() {
	deps=$(list "$1")
	dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Provides}\n' 2>/dev/null |
		awk -F '\t' -v deps="$deps" '
			function name(s) { sub(/^[ \t]+/, "", s); sub(/[ \t:(\[<].*/, "", s); return s }
			substr($1, 2, 1) == "i" {
				have[$2] = 1
				n = split($3, p, ",")
				for (i = 1; i <= n; i++) have[name(p[i])] = 1
			}
			END {
				n = split(deps, d, "\n")
				for (i = 1; i <= n; i++) {
					m = split(d[i], alt, "|")
					ok = 0
					for (j = 1; j <= m; j++) if (name(alt[j]) in have) ok = 1
					if (!ok) out = out (out == "" ? "" : " ") name(alt[1])
				}
				if (out != "") { print out; exit 1 }
			}'
}

case ${1:-} in
--list)
	list "${2:-all}"
	exit 0 ;;
--missing)
	# Not a Debian system: nothing to say (build as the libraries allow).
	command -v dpkg-query >/dev/null || exit 0
	if missing "${2:-all}"; then exit 0; else exit 1; fi ;;
"") ;;
*)
	echo "usage: scripts/deps.sh [--missing|--list build|package|all]" >&2
	exit 2 ;;
esac

if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
	echo "deps: not a Debian system; install these by hand:" >&2
	list all | sed 's/^/  /' >&2
	exit 1
fi
todo=$(missing all) && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing $todo; run as root (sudo make deps)" >&2
	exit 1
fi
echo "deps: installing $todo"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || exit 1
# apt resolves the entries as written: versions, alternatives, virtual packages
apt-get satisfy -y -qq --no-install-recommends "$(list all | paste -sd, -)" >/dev/null || exit 1
todo=$(missing all) || { echo "deps: still missing after apt-get: $todo" >&2; exit 1; }
