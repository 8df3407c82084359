#!/bin/bash
# Fetch Debian 13 (trixie) packages into a cache, for building multihome.so
# against pppd 2.5.2's headers and for running trixie's real pppd in the VM
# tier:
#
#   scripts/fetch-trixie.sh [DEST]          (default: build/trixie)
#
# DEST/debs/      the .deb files (apt-get download)
# DEST/root/      all of them unpacked with dpkg-deb -x (nothing is installed)
# DEST/root/.complete   the package set; when it matches, nothing is fetched
# DEST/UNAVAILABLE      written (with the reason) when the packages cannot be
#                       fetched; the tests that need them then skip, loudly
#
# apt runs with a private configuration under DEST/apt: its own source list,
# state, lists and cache, no host preferences.  The mirror is the host's own
# (the first Debian archive entry of /etc/apt/sources.list.d/*.sources or
# /etc/apt/sources.list), read now, never written into the repository;
# MH_TRIXIE_MIRROR=URL overrides it.  The release is verified with the
# host's debian-archive-keyring (or the entry's Signed-By file).
#
# Exit status: 0 ready, 3 not available (DEST/UNAVAILABLE says why).
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -uo pipefail

SUITE=trixie
# pppd and ppp-dev, the libraries trixie's pppd needs (readelf NEEDED, closed
# over their own NEEDED), and the legacy provider pppd 2.5.2 loads at start.
PKGS="ppp ppp-dev libc6 libcrypt1 libpam0g libaudit1 libcap-ng0 libpcap0.8t64
      libdbus-1-3 libsystemd0 libcap2 libssl3t64 openssl-provider-legacy
      libzstd1 zlib1g"
PKGS=$(echo "$PKGS" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//')

dest=${1:-build/trixie}
mkdir -p "$dest" || exit 3
dest=$(cd "$dest" && pwd)
exec 9>"$dest/.lock"
flock 9

if [ -f "$dest/root/.complete" ] && [ "$(cat "$dest/root/.complete")" = "$PKGS" ]; then
	rm -f "$dest/UNAVAILABLE"
	exit 0
fi

unavailable() {
	echo "fetch-trixie: $*" >&2
	echo "$*" >"$dest/UNAVAILABLE"
	exit 3
}

# host_mirror: "URI KEYRING" of the host's first Debian archive entry whose
# suite is a release (not -security, -updates, -backports).
host_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# deb822: blank-line separated stanzas
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = uris = suites = key = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^#/) continue
				split($i, kv, /:[ \t]*/)
				k = tolower(kv[1]); v = substr($i, length(kv[1]) + 2)
				sub(/^[ \t]+/, "", v)
				if (k == "types") types = v
				else if (k == "uris") uris = v
				else if (k == "suites") suites = v
				else if (k == "signed-by") key = v
				else if (k == "enabled" && v == "no") types = ""
			}
			if (types !~ /(^| )deb( |$)/) next
			n = split(suites, s, /[ \t]+/)
			for (j = 1; j <= n; j++)
				if (s[j] != "" && s[j] !~ /-/) {
					split(uris, u, /[ \t]+/)
					if (key !~ /^\//) key = ""
					print u[1], key
					exit
				}
		}' "$f"
	done
	[ -f /etc/apt/sources.list ] &&
		awk '$1 == "deb" {
			i = 2; key = ""
			if ($2 ~ /^\[/) {
				for (; i <= NF; i++) {
					if ($i ~ /signed-by=/) { key = $i; sub(/.*signed-by=/, "", key); sub(/\]$/, "", key) }
					if ($i ~ /\]$/) { i++; break }
				}
			}
			if ($(i + 1) !~ /-/) { print $i, key; exit }
		}' /etc/apt/sources.list
}

mirror=${MH_TRIXIE_MIRROR:-}
keyring=
if [ -z "$mirror" ]; then
	read -r mirror keyring < <(host_mirror | head -n 1)
fi
[ -n "$mirror" ] || unavailable "no Debian archive entry in the host's apt sources (set MH_TRIXIE_MIRROR=URL)"
[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || unavailable "keyring $keyring not readable (package debian-archive-keyring)"
command -v apt-get >/dev/null || unavailable "apt-get not found"

apt=$dest/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dest/debs"
echo "deb [signed-by=$keyring] $mirror $SUITE main" >"$apt/sources.list"
: >"$apt/status"
aptopts=(-q -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
	-o "Dir::State=$apt" -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=$apt/status"
	-o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1)
[ "$(id -u)" = 0 ] && aptopts+=(-o APT::Sandbox::User=root)

echo "fetch-trixie: $SUITE from $mirror${MH_TRIXIE_MIRROR:+ (MH_TRIXIE_MIRROR)}"
if ! apt-get "${aptopts[@]}" update >"$apt/update.log" 2>&1 ||
	grep -q '^[EW]: ' "$apt/update.log"; then
	tail -n 5 "$apt/update.log" >&2
	unavailable "apt-get update of $SUITE from $mirror failed (see $apt/update.log)"
fi
# shellcheck disable=SC2086
if ! (cd "$dest/debs" && rm -f ./*.deb && apt-get "${aptopts[@]}" download $PKGS) >"$apt/download.log" 2>&1; then
	tail -n 5 "$apt/download.log" >&2
	unavailable "apt-get download from $SUITE failed (see $apt/download.log)"
fi

rm -rf "$dest/root.new"
mkdir -p "$dest/root.new"
for d in "$dest"/debs/*.deb; do
	dpkg-deb -x "$d" "$dest/root.new" || unavailable "dpkg-deb -x $d failed"
	# shellcheck disable=SC2016  # dpkg-deb's own ${...}
	dpkg-deb -W --showformat='${Package} ${Version}\n' "$d" >>"$dest/root.new/.versions"
done
echo "$PKGS" >"$dest/root.new/.complete"
rm -rf "$dest/root"
mv "$dest/root.new" "$dest/root"
rm -f "$dest/UNAVAILABLE"
echo "fetch-trixie: $(wc -l <"$dest/root/.versions") packages in $dest/root ($(grep '^ppp ' "$dest/root/.versions"))"
