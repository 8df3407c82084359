#!/usr/bin/env bash
# The fallback for kernels without nexthop objects (< 5.3): the balanced
# default is one RTA_MULTIPATH route.  MULTIHOME_NO_NEXTHOPS=1 makes the core
# treat this kernel as such a kernel.  With traffic: both links balanced 8:2,
# a link's ip-down rewrites the route over the survivor before its device
# goes (traffic keeps flowing), and after all links are down nothing is left.
# (A SIGKILLed pppd takes the whole RTA_MULTIPATH route with its device — the
# reason nexthop groups are preferred; tests/ns/scenario.sh covers that case.)
#
# Topology: tests/lib/topo.sh (lan -- srv -- ppp0/isp1, ppp1/isp2 -- inet).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=../lib/topo.sh
. "$HERE/../lib/topo.sh"
export MULTIHOME_NO_NEXTHOPS=1

main() {
	local def before after
	[ "$(id -u)" = 0 ] || { skip "multipath" "needs root"; return 0; }
	if ! topo_create || ! link_start isp1 || ! link_start isp2; then
		not_ok "multipath: topology and links isp1, isp2"
		topo_destroy
		return 0
	fi
	def=$(nsx srv ip route show default)
	if grep -q 'nexthop dev ppp0 weight 8' <<<"$def" && grep -q 'nexthop dev ppp1 weight 2' <<<"$def" &&
		! grep -q nhid <<<"$def" && [ -z "$(nsx srv ip nexthop show 2>/dev/null)" ]; then
		ok "multipath: main's default is one RTA_MULTIPATH route, ppp0 weight 8, ppp1 weight 2"
	else
		not_ok "multipath: main's default is one RTA_MULTIPATH route, ppp0 weight 8, ppp1 weight 2" "$def"
	fi

	# (status wraps at 80 columns; a line that begins with four blanks goes on the one before)
	def=$(nsx srv env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$MH_TOP/build/multihomectl" status 2>&1 |
		sed -e ':a' -e '$!N' -e 's/\n    / /' -e 'ta' -e 'P;D')
	if grep -q 'balanced default route: multipath route: isp1 (ppp0) weight 8, isp2 (ppp1) weight 2' <<<"$def"; then
		ok "multipath: multihomectl status shows the multipath route's members and weights"
	else
		not_ok "multipath: multihomectl status shows the multipath route's members and weights" \
			"$(grep -i balanced <<<"$def")"
	fi

	OUT=$(probe srv --port 80 203.0.113.1-254 198.51.100.1-126)
	read -r N OK I1 I2 OTHER <<<"$(tally <<<"$OUT")"
	if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && [ $((100 * I1)) -ge $((73 * N)) ] && [ $((100 * I1)) -le $((87 * N)) ]; then
		ok "multipath: balanced 8:2 by traffic: ISP1 $I1, ISP2 $I2 of $N"
	else
		not_ok "multipath: balanced 8:2 by traffic: ISP1 $I1, ISP2 $I2 of $N" "answered $OK, other $OTHER"
	fi

	if link_stop isp2 term; then
		def=$(nsx srv ip route show default)
		if grep -q 'dev ppp0' <<<"$def" && ! grep -q ppp1 <<<"$def"; then
			ok "multipath: isp2's ip-down rewrote the route over ppp0 alone"
		else
			not_ok "multipath: isp2's ip-down rewrote the route over ppp0 alone" "$def"
		fi
		OUT=$(probe srv --port 80 203.0.113.1-60)
		read -r N OK I1 I2 OTHER <<<"$(tally <<<"$OUT")"
		if [ "$OK" = "$N" ] && [ "$I1" = "$N" ]; then
			ok "multipath: traffic by ISP1 after isp2 went down: $I1/$N"
		else
			not_ok "multipath: traffic by ISP1 after isp2 went down: $I1/$N" "answered $OK, ISP2 $I2, other $OTHER"
		fi
	else
		not_ok "multipath: isp2 stops on SIGTERM"
	fi

	before=$(nsx srv ip rule show; nsx srv ip route show table all | grep -v 'proto kernel\|^local\|^broadcast\|fe80\|multicast')
	if link_stop isp1 term; then
		after=$(nsx srv ip rule show | grep 'proto 109\|suppress'; nsx srv ip route show table all | grep 'proto 109\|proto multihome')
		if [ -z "$after" ]; then
			ok "multipath: after all links are down nothing of ours is left"
		else
			not_ok "multipath: after all links are down nothing of ours is left" "$after"
		fi
	else
		not_ok "multipath: isp1 stops on SIGTERM" "$before"
	fi
	topo_destroy
}

main
