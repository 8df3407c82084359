#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian package end to end, as an admin uses it (issue 12).
#
#   build    make deb (dpkg-buildpackage -us -uc -b in a copy of the tree):
#            multihome_VERSION_ARCH.deb, the plugin in the plugin directory of
#            the installed pppd, the OpenVPN plugin beside OpenVPN's own,
#            multihomectl, man pages, the rt_protos.d conffile; Depends holds
#            ppp to the versions of that pppd; lintian finds no error and no
#            warning without an override
#   install  dpkg -i
#   use      one uplink in network namespaces (tests/lib/topo.sh), its pppd
#            (the harness) reading a peers file that says `plugin
#            multihome.so`: pppd's bare-name lookup loads the installed file;
#            LAN traffic gets no answer before the link is up and is answered
#            by way of it after (the far end sees the link's address);
#            /usr/sbin/multihomectl status reads the link from /run/multihome
#   purge    the link goes down; dpkg -P; every file dpkg -L named is gone,
#            and /run/multihome
#
# The machine is left as it was, on failure too: the script runs in a mount
# namespace of its own whose /run is a fresh tmpfs (the link's registry,
# /run/multihome, is then the package's alone, and the host's is never
# touched; the network namespaces' mounts live there too), and the package is
# purged on exit.  If the package is installed on this machine (an admin's
# install), or a file it would own exists (make install PREFIX=/usr), nothing
# is touched and the checks are skipped, loudly.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)

# Into a private mount namespace first (once; anything else is decided inside).
if [ -z "${MH_PKG_PRIVATE_RUN:-}" ] && [ "$(id -u)" = 0 ] &&
	unshare --mount --propagation private true 2>/dev/null; then
	export MH_PKG_PRIVATE_RUN=$$
	exec unshare --mount --propagation private bash "$0" "$@"
fi

# shellcheck source=tests/lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=tests/lib/topo.sh
. "$HERE/../lib/topo.sh"

PKG=multihome
CTL=/usr/sbin/multihomectl
WORK=
PURGE_ON_EXIT=
REGISTRY_SEEN=   # /run/multihome held the link's entry while it was up

CHECKS=(
	"make deb: the .deb is built (dpkg-buildpackage -us -uc -b)"
	"deb: every file where pppd, OpenVPN, man and iproute2 look for it"
	"deb: Depends: ppp of the plugin's pppd version only, and shlibs"
	"deb: /etc/iproute2/rt_protos.d/multihome.conf is a conffile"
	"lintian: no error, no warning without an override"
	"dpkg -i: the package is installed"
	"before the link: the LAN gets no answer (no route out)"
	"'plugin multihome.so' loads the installed file (pppd's bare-name lookup)"
	"traffic: LAN connections answered by way of the link"
	"/usr/sbin/multihomectl status reads the link"
	"dpkg -P: the package is purged"
	"purge: every file dpkg -L named is gone"
	"purge: /run/multihome is gone"
)
DONE=0  # how many of CHECKS have been recorded

# record OK|FAIL DESC [DETAIL]: one result, counted against CHECKS.
record() {
	DONE=$((DONE + 1))
	if [ "$1" = OK ]; then ok "pkg: $2"; else not_ok "pkg: $2" "${3:-}"; fi
}

# skip_rest REASON: the checks not yet run are skipped, loudly.
skip_rest() {
	local i
	echo "##############################################################"
	echo "## package tier NOT RUN (from check $((DONE + 1)) of ${#CHECKS[@]}): $1"
	echo "## the remaining checks are recorded as SKIPPED"
	echo "##############################################################"
	for ((i = DONE; i < ${#CHECKS[@]}; i++)); do skip "pkg: ${CHECKS[$i]}" "$1"; done
	DONE=${#CHECKS[@]}
	exit 0
}

# fail_rest DESC DETAIL: a failed check that the rest depend on.
fail_rest() {
	record FAIL "$1" "$2"
	skip_rest "an earlier check failed"
}

pkg_status() { # the package's dpkg status ("ii ", "rc ", ...), empty if unknown
	dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null
}

pkg_present() { # installed, even in part, or its conffiles left ("rc ")
	local s
	s=$(pkg_status)
	[ -n "$s" ] && [ "${s:1:1}" != n ]
}

# dpkg_do ARGS...: dpkg, waiting (60 s at most) while another apt or dpkg
# holds its lock.
dpkg_do() {
	local t out rc=1
	for t in $(seq 60); do
		out=$(dpkg "$@" 2>&1)
		rc=$?
		[ "$rc" = 0 ] && break
		grep -q 'lock.*another process' <<<"$out" || break
		sleep 1
	done
	printf '%s\n' "$out"
	return $rc
}

cleanup() {
	topo_destroy
	if [ -n "$PURGE_ON_EXIT" ] && pkg_present; then
		echo "pkg: purging $PKG (installed by this test)"
		dpkg_do --purge "$PKG" >/dev/null
	fi
	[ -n "$WORK" ] && rm -rf "$WORK"
	if [ -n "${_mh_own_results:-}" ]; then
		mh_summary
		rm -f "$MH_RESULTS"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ prerequisites
[ "$(id -u)" = 0 ] || skip_rest "needs root (dpkg -i, network namespaces)"
[ "${MH_PKG_PRIVATE_RUN:-}" ] || skip_rest "unshare --mount does not work here (no private /run)"
mount -t tmpfs -o mode=0755,nosuid,nodev mh-pkg-run /run ||
	skip_rest "cannot mount a private /run"
for t in dpkg-buildpackage dh lintian pppd dpkg-parsechangelog jq; do
	command -v $t >/dev/null || skip_rest "$t not installed (run make deps)"
done
for f in "$PROBE" "$HARNESS"; do
	[ -x "$f" ] || skip_rest "not built: ${f#"$MH_TOP"/} (run make)"
done
pkg_present && skip_rest "$PKG is installed on this machine (dpkg status '$(pkg_status)'): not touched"

WORK=$(mktemp -d /tmp/mh-pkg.XXXXXX)
PPPD_VERSION=$(pppd --version 2>&1 | awk '/^pppd version/ { print $3 }')
PPPD_DIR=/usr/lib/pppd/$PPPD_VERSION
OVPN_DIR=$(dpkg -L openvpn 2>/dev/null | sed -n 's|/openvpn-plugin-[^/]*\.so$||p' | head -n 1)
VERSION=$(dpkg-parsechangelog -l "$MH_TOP/debian/changelog" -S Version)
ARCH=$(dpkg --print-architecture)
DEB=$WORK/deb/${PKG}_${VERSION}_$ARCH.deb

# ------------------------------------------------------------ build
test_build() {
	local t0 t1 out
	t0=$(date +%s.%N)
	out=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$MH_TOP" deb DEB_DIR="$WORK/deb" 2>&1)
	t1=$(date +%s.%N)
	[ -f "$DEB" ] || fail_rest "${CHECKS[0]}" "no $DEB; $(tail -n 15 <<<"$out")"
	record OK "make deb: ${DEB##*/} built in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s (dpkg-buildpackage -us -uc -b)"
}

test_contents() {
	local list f missing='' mode
	list=$(dpkg-deb -c "$DEB" | awk '{ sub(/^\./, "", $6); print $1, $6 }')
	for f in "$PPPD_DIR/multihome.so" "$OVPN_DIR/multihome-openvpn.so" "$CTL" \
		/usr/share/man/man8/multihome.8.gz /usr/share/man/man8/multihomectl.8.gz \
		/etc/iproute2/rt_protos.d/multihome.conf; do
		grep -q " $f\$" <<<"$list" || missing="$missing $f"
	done
	mode=$(awk -v f="$CTL" '$2 == f { print $1 }' <<<"$list")
	if [ -n "$OVPN_DIR" ] && [ -z "$missing" ] && [ "$mode" = "-rwxr-xr-x" ]; then
		record OK "deb: $PPPD_DIR/multihome.so (pppd $PPPD_VERSION), $OVPN_DIR/, $CTL, man8, rt_protos.d"
	else
		record FAIL "${CHECKS[1]}" "missing:$missing; $CTL mode '$mode'; OpenVPN's plugin dir '$OVPN_DIR'"
	fi
}

# upstream VERSION: the upstream part of a Debian version (no epoch, revision).
upstream() { sed -e 's/^[0-9]*://' -e 's/-[^-]*$//' <<<"$1"; }

test_depends() {
	local dep lo hi have libs
	dep=$(dpkg-deb -f "$DEB" Depends)
	lo=$(sed -n 's/.*ppp (>= \([^)]*\)).*/\1/p' <<<"$dep")
	hi=$(sed -n 's/.*ppp (<< \([^)]*\)).*/\1/p' <<<"$dep")
	have=$(dpkg-query -W -f='${Version}' ppp 2>/dev/null)
	libs=$(grep -c -E 'libc6 \(|libmnl0 \(|libnftnl11 \(|libip4tc2 \(' <<<"${dep//, /$'\n'}")
	# Both bounds carry pppd's own version: no other pppd version is in range.
	if [ -n "$lo" ] && [ -n "$hi" ] && [ "$(upstream "$lo")" = "$PPPD_VERSION" ] &&
		[ "$(upstream "$hi")" = "$PPPD_VERSION" ] &&
		dpkg --compare-versions "$have" ge "$lo" && dpkg --compare-versions "$have" lt "$hi" &&
		[ "$libs" = 4 ]; then
		record OK "deb: Depends: ppp (>= $lo), ppp (<< $hi) (pppd $PPPD_VERSION; installed $have), libc6 libmnl0 libnftnl11 libip4tc2"
	else
		record FAIL "${CHECKS[2]}" "Depends: $dep (installed ppp $have, pppd $PPPD_VERSION)"
	fi
	echo "Depends: $dep"
}

test_conffile() {
	local c
	c=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles 2>/dev/null)
	if [ "$c" = /etc/iproute2/rt_protos.d/multihome.conf ]; then
		record OK "${CHECKS[3]} (the only one)"
	else
		record FAIL "${CHECKS[3]}" "conffiles: '$c'"
	fi
}

test_lintian() {
	local out rc
	out=$(lintian --fail-on error,warning "$WORK/deb/${PKG}_${VERSION}_$ARCH.changes" 2>&1)
	rc=$?
	out=$(grep -v '^running with root privileges is not recommended!$' <<<"$out")
	echo "lintian (exit $rc):"
	printf '%s\n' "${out:-  (no output)}" | sed 's/^/  /'
	if [ "$rc" = 0 ] && ! grep -q '^[EW]: ' <<<"$out"; then
		record OK "lintian ${PKG}_${VERSION}_$ARCH.changes: no error, no warning without an override"
	else
		record FAIL "${CHECKS[4]}" "$(grep '^[EW]: ' <<<"$out" | head -n 10)"
	fi
}

# ------------------------------------------------------------ install
test_install() {
	local f out exists=''
	# A file the package would own must not be there already: dpkg would
	# take it over and the purge delete it.
	while read -r f; do
		[ -e "$f" ] || [ -L "$f" ] && exists="$exists $f"
	done < <(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }')
	[ -n "$exists" ] && skip_rest "files the package would own exist:$exists (make install PREFIX=/usr?): not touched"
	# Serialize against this test in another run on the same machine: flock
	# on dpkg's directory (dpkg's own locks are fcntl locks on other files).
	exec 9</var/lib/dpkg
	flock -w 120 9 || skip_rest "another run holds the package test's lock (120 s)"
	pkg_present && skip_rest "$PKG appeared meanwhile (dpkg status '$(pkg_status)'): not touched"
	PURGE_ON_EXIT=1
	if out=$(dpkg_do --install "$DEB") && [ "$(pkg_status)" = "ii " ]; then
		record OK "dpkg -i ${DEB##*/}: installed"
	else
		fail_rest "${CHECKS[5]}" "$(tail -n 10 <<<"$out")"
	fi
}

# ------------------------------------------------------------ use
# The link: isp1 of the scenario, its peers file naming the plugin bare.
# The nft backend (what Debian 12, whose iptables is nft, calls for).
export MULTIHOME_FIREWALL=nft
HPID=

link_up() {
	local peers=$TOPO_DIR/peers-isp1 t
	printf '%s\n' "plugin multihome.so" "multihome-name isp1" "multihome-table 101" \
		"multihome-mark 0x1" "multihome-weight 8" >"$peers"
	link_device isp1 || return 1
	# ip netns exec and env exec: $! is the harness (without the lock's fd)
	ip netns exec "$(ns_name srv)" env -u MULTIHOME_RUNDIR "$HARNESS" --file "$peers" \
		--ifname ppp0 --local "${LINK_LOCAL[isp1]}" --remote "${LINK_PEER[isp1]}" \
		--linkname isp1 up wait down exit >"$TOPO_DIR/isp1.log" 2>&1 9<&- &
	HPID=$!
	LINK_PID[isp1]=$HPID
	for t in $(seq 100); do
		grep -q "isp1 up on " "$TOPO_DIR/isp1.log" && return 0
		kill -0 "$HPID" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}

test_use() {
	local out n ok i1 other syn st json
	out=$(probe lan --tcp --port 80 203.0.113.10-12)
	read -r n ok i1 _ other <<<"$(tally <<<"$out")"
	if [ "$n" = 3 ] && [ "$ok" = 0 ]; then
		record OK "before the link: 0/3 LAN connections answered (no route out)"
	else
		record FAIL "${CHECKS[6]}" "$out"
	fi

	if ! link_up; then
		fail_rest "${CHECKS[7]}" "link isp1 did not come up: $(tail -n 10 "$TOPO_DIR/isp1.log")"
	fi
	if grep -q "Plugin multihome.so loaded" "$TOPO_DIR/isp1.log" &&
		grep -q " $PPPD_DIR/multihome.so\$" "/proc/$HPID/maps"; then
		record OK "'plugin multihome.so' loaded $PPPD_DIR/multihome.so (bare-name lookup); isp1 up"
	else
		record FAIL "${CHECKS[7]}" "$(grep -m 3 multihome "/proc/$HPID/maps"; tail -n 5 "$TOPO_DIR/isp1.log")"
	fi

	isp_zero
	out=$(probe lan --tcp --port 80 203.0.113.10-29)
	read -r n ok i1 _ other <<<"$(tally <<<"$out")"
	syn=$(isp_count isp1 tcp)
	if [ "$n" = 20 ] && [ "$ok" = 20 ] && [ "$i1" = 20 ] && [ "$syn" -ge 20 ]; then
		record OK "traffic: 20/20 LAN connections answered, far end saw ${LINK_LOCAL[isp1]} (isp1), $syn SYNs entered isp1"
	else
		record FAIL "${CHECKS[8]}" "answered $ok/$n, seen as isp1 $i1, other $other, SYNs into isp1 $syn"
	fi

	out=$(nsx srv env -u MULTIHOME_RUNDIR "$CTL" status 2>&1)
	st=$?
	json=$(nsx srv env -u MULTIHOME_RUNDIR "$CTL" status --json 2>/dev/null)
	if [ "$st" = 0 ] && grep -q 'isp1' <<<"$out" &&
		jq -e '(.links | map(select(.name == "isp1" and .interface == "ppp0" and .state == "up")) | length == 1)
			and (.warnings | length == 0)' <<<"$json" >/dev/null 2>&1 &&
		[ -f /run/multihome/link.isp1 ]; then
		REGISTRY_SEEN=1
		record OK "$CTL status: isp1 up on ppp0, no warning, exit 0 (registry /run/multihome)"
	else
		record FAIL "${CHECKS[9]}" "exit $st: $out; json: $json; $(ls -l /run/multihome 2>&1)"
	fi
	printf '%s\n' "$out" | sed 's/^/  | /'

	# ip-down, then pppd exits
	link_stop isp1 term
}

# ------------------------------------------------------------ purge
test_purge() {
	local files out left='' f
	files=$(dpkg-query -L "$PKG")
	if out=$(dpkg_do --purge "$PKG") && ! pkg_present; then
		record OK "dpkg -P $PKG: purged (no config-files state left)"
		PURGE_ON_EXIT=
	else
		record FAIL "${CHECKS[10]}" "status '$(pkg_status)': $(tail -n 5 <<<"$out")"
	fi
	# files, and directories no other package owns
	while read -r f; do
		[ "$f" = /. ] || [ ! -e "$f" ] && continue
		[ -d "$f" ] && dpkg-query -S "$f" >/dev/null 2>&1 && continue
		left="$left $f"
	done <<<"$files"
	if [ -z "$left" ]; then
		record OK "purge: all $(wc -l <<<"$files") paths of dpkg -L gone (but directories of other packages)"
	else
		record FAIL "${CHECKS[11]}" "left:$left"
	fi
	if [ -n "$REGISTRY_SEEN" ] && [ ! -e /run/multihome ]; then
		record OK "${CHECKS[12]} (it held the link's registry before)"
	else
		record FAIL "${CHECKS[12]}" "registry seen: ${REGISTRY_SEEN:-no}; $(ls -la /run/multihome 2>&1)"
	fi
}

test_build
test_contents
test_depends
test_conffile
test_lintian
# The namespaces before the lock (their servers must not inherit its fd).
topo_create || fail_rest "${CHECKS[5]}" "the network namespaces could not be set up"
# the installed plugin keeps its registry where an admin's does
unset MULTIHOME_RUNDIR
test_install
test_use
test_purge
