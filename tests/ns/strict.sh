#!/usr/bin/env bash
# Strict pins, a kill switch (issue 16): with `multihome-pin-fallback no`,
# traffic that matches a link's pins is refused while the link is down —
# before it first comes up, after ip-down, after its pppd was SIGKILLed — with
# "no route to host" for the host's own sockets and ICMP unreachable for the
# LAN, and not one packet of it reaches an ISP.  `multihomectl forget` ends it.
#
# The scenario of tests/lib/topo.sh; isp2 (pin: ISP2's panel 198.51.100.192/26)
# has pin-fallback no.  Both firewall backends.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=../lib/topo.sh
. "$HERE/../lib/topo.sh"

CTL=$MH_BUILD/multihomectl
PANEL_DST=198.51.100.200

# panel_at ISP: packets to the panel that entered ISP from srv so far
panel_at() {
	nsx "$1" iptables-legacy -t raw -L PANEL -v -x -n 2>/dev/null | awk 'NR == 3 { print $1 }'
}

count_panel() {
	local i
	for i in 1 2; do
		nsx "isp$i" iptables-legacy -t raw -N PANEL
		nsx "isp$i" iptables-legacy -t raw -A PANEL
		nsx "isp$i" iptables-legacy -t raw -I PREROUTING -i cust -d "$ISP2_PANEL_NET" -j PANEL
	done
}

# refused NS DESC: 20 connections from NS to the panel: none answered, not one
# packet to it at either ISP.  srv's own sockets are refused at once ("no
# route to host"); the LAN client gets ICMP host unreachable from srv, which
# the kernel rate-limits twice per destination, from one token bucket of the
# LAN host's inet_peer: ip_error() (net.ipv4.route.error_cost/error_burst: 1 s
# a message, 5 s at most; global, not per namespace) and icmp_send()
# (net.ipv4.icmp_ratelimit, 1 s a message; per namespace).  Both drawing on it,
# a message costs 2 s, and a 1.2 s pause left 0.2 s -- no message at all when
# the previous refusals had drained it (seen on 6.18).  srv's icmp_ratelimit is
# 0 (run), so only ip_error()'s limit is left: after a 1.2 s pause with no
# packet from the LAN at least one message, whatever came before.
refused() {
	local ns=$1 desc=$2 out n refused answered a1 a2 p1 p2 want=20
	[ "$ns" = srv ] || { want=1; sleep 1.2; }
	p1=$(panel_at isp1)
	p2=$(panel_at isp2)
	out=$(probe "$ns" --port 80 --timeout 1500 "198.51.100.200-219" 2>&1)
	n=$(grep -c . <<<"$out")
	refused=$(grep -c 'error=No route to host' <<<"$out")
	answered=$(grep -c ' seen=' <<<"$out")
	a1=$(($(panel_at isp1) - p1))
	a2=$(($(panel_at isp2) - p2))
	if [ "$n" = 20 ] && [ "$refused" -ge "$want" ] && [ "$answered" = 0 ] && [ "$a1" = 0 ] && [ "$a2" = 0 ]; then
		ok "$desc: 0/20 answered, $refused refused as unreachable, packets at ISP1 $a1, ISP2 $a2"
	else
		not_ok "$desc: 0/20 answered, $refused refused (want >= $want), packets at ISP1 $a1, ISP2 $a2" \
			"answered $answered; $(grep -v 'No route' <<<"$out" | head -n 2 | tr '\n' ' ')"
	fi
}

# reached NS ISP DESC: 20 connections to the panel, all answered via ISP
reached() {
	local ns=$1 isp=$2 desc=$3 out okn at p
	p=$(panel_at "$isp")
	out=$(probe "$ns" --port 80 "198.51.100.200-219" 2>&1)
	okn=$(grep -c ' seen=' <<<"$out")
	at=$(($(panel_at "$isp") - p))
	if [ "$okn" = 20 ] && [ "$at" -ge 20 ]; then
		ok "$desc: 20/20 answered, $at packets entered $isp"
	else
		not_ok "$desc: 20/20 answered, $at packets entered $isp" "$(head -n 2 <<<"$out" | tr '\n' ' ')"
	fi
}

ctl() {
	OUT=$(nsx srv env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$CTL" "$@" 2>&1)
	RC=$?
}

run() {
	local before after LINK_EXTRA_isp2='multihome-pin-fallback no' peers pid
	topo_create || { not_ok "strict: topology"; return 1; }
	ns_sysctl srv net.ipv4.icmp_ratelimit=0
	count_panel
	before=$(srv_state)
	link_start isp1 || { not_ok "strict: isp1 comes up"; topo_destroy; return 1; }

	# isp2's pppd started, its link not up yet (no device, no ip-up)
	peers=$(peers_file isp2)
	ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$HARNESS" --file "$peers" \
		--plugin "$PLUGIN" --ifname ppp1 --local "${LINK_LOCAL[isp2]}" \
		--remote "${LINK_PEER[isp2]}" --linkname isp2 wait up wait down exit \
		>>"$TOPO_DIR/isp2.log" 2>&1 &
	pid=$!
	LINK_PID[isp2]=$pid
	for _ in $(seq 100); do
		grep -q 'pin-fallback no: while the link is down' "$TOPO_DIR/isp2.log" && break
		sleep 0.05
	done
	refused srv "strict: isp2's pppd started, not up yet: srv -> panel"
	refused lan "strict: isp2 not up yet: LAN -> panel"
	measure_other "strict: isp2 not up yet: other traffic still balanced by isp1"

	link_device isp2 || not_ok "strict: isp2's device"
	LINK_UPS[isp2]=$(grep -c "isp2 up on " "$TOPO_DIR/isp2.log")
	kill -HUP "$pid"
	if link_wait_up isp2; then
		reached srv isp2 "strict: isp2 up: srv -> panel by ISP2"
		reached lan isp2 "strict: isp2 up: LAN -> panel by ISP2"
	else
		not_ok "strict: isp2 comes up"
	fi

	kill -HUP "$pid"        # ip-down, pppd stays (as with persist)
	for _ in $(seq 100); do
		[ -z "$(nsx srv ip route show table 102 2>/dev/null | grep '^default dev')" ] && break
		sleep 0.05
	done
	nsx srv ip link set ppp1 down
	refused srv "strict: isp2 ip-down: srv -> panel"
	refused lan "strict: isp2 ip-down: LAN -> panel"
	link_stop isp2 term

	if link_start isp2; then
		reached srv isp2 "strict: isp2 back: srv -> panel by ISP2"
	else
		not_ok "strict: isp2 comes back"
	fi
	link_stop isp2 kill     # SIGKILL: nothing of ours runs, the device vanishes
	refused srv "strict: isp2's pppd SIGKILLed, ppp1 gone: srv -> panel"
	refused lan "strict: isp2 SIGKILLed: LAN -> panel"
	# its watcher withdraws it once the unit is gone (tests/ns/flows.sh): wait
	# for that, then status says so (no race with the watcher)
	for _ in $(seq 30); do
		ctl status
		grep -q "^link isp2: down" <<<"$OUT" && break
		sleep 0.1
	done
	if [ "$RC" -le 1 ] && grep -q "^link isp2: down" <<<"$OUT" &&
		grep -q "its pins are refused while it is down (pin-fallback no)" <<<"$OUT"; then
		ok "strict: status shows isp2 down, withdrawn by its watcher, its pins refused (pin-fallback no)"
	else
		not_ok "strict: status shows isp2 down, withdrawn by its watcher, its pins refused (pin-fallback no)" "exit $RC: $OUT"
	fi

	ctl reapply         # prunes the SIGKILLed link: the refusal stays
	refused srv "strict: after reapply (isp2 pruned as down): srv -> panel"
	ctl forget isp2
	if [ "$RC" = 0 ]; then
		reached srv isp1 "strict: multihomectl forget isp2: the panel falls through to ISP1"
	else
		not_ok "strict: multihomectl forget isp2" "$OUT"
	fi
	link_stop isp1 term
	after=$(srv_state)
	if [ "$after" = "$before" ]; then
		ok "strict: isp1 down after forget: nothing of ours left"
	else
		not_ok "strict: isp1 down after forget: nothing of ours left" \
			"$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -n 6)"
	fi
	topo_destroy
}

# measure_other DESC: 40 balanced connections from srv all answered (by isp1)
measure_other() {
	local out okn
	out=$(probe srv --port 80 203.0.113.1-40 2>&1)
	okn=$(grep -c " seen=${LINK_LOCAL[isp1]}:" <<<"$out")
	if [ "$okn" = 40 ]; then ok "$1: 40/40"; else not_ok "$1: 40/40" "by isp1: $okn"; fi
}

[ "$(id -u)" = 0 ] || { skip "strict pins" "needs root"; exit 0; }
[ -z "$(topo_missing)" ] || { not_ok "strict: build products" "$(topo_missing)"; exit 1; }
run
MH_TEST_PREFIX="nft: " MULTIHOME_FIREWALL=nft run
