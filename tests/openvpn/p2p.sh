#!/usr/bin/env bash
# A static-key OpenVPN tunnel (real OpenVPN 2.6, peer to peer) as the article's
# tun0 to the company: name=vpn table=103 mark=0x4 weight=0, pin tcp/22 to the
# company network; its transport (udp/1130 to the VPN server) pinned by ISP1.
#
# Privilege states and events covered, each proven with traffic:
#   1. OpenVPN as root: UP, ROUTE_UP, ROUTE_PREDOWN, DOWN (SIGTERM)
#   2. user nobody / group nogroup, --daemon, no persist-tun: first UP/ROUTE_UP as
#      root, then SIGUSR1 (all four events unprivileged, through the root helper),
#      SIGHUP (close + open again), ISP1 down/up under the tunnel 20 times for
#      each outcome of the multipath hash (the VPN server balanced by ISP1, by
#      ISP2): the transport on ISP2 while ISP1 is down, home within 2 s, SIGTERM
#   3. nobody with persist-tun: SIGUSR1 keeps tun0 (no down/up), SIGHUP
#   4. OpenVPN killed with SIGKILL: the helper withdraws the link on its own
#   5. OpenVPN in the foreground of a terminal session, stopped by Ctrl-C (SIGINT
#      to its process group): the helper, in a session of its own, serves the
#      down events
# Topology: see ovpn-lib.bash.
set -u
# shellcheck source=tests/openvpn/ovpn-lib.bash
. "$(dirname "$0")/ovpn-lib.bash"
p2p_setup

UP_MSG="link 'vpn' up on tun0"

# restart_and_wait SIGNAL: signal the client, wait for a new registration
restart_and_wait() {
	local c
	c=$(log_count "$UP_MSG")
	kill -"$1" "$CLIENT_PID"
	wait_log "$UP_MSG" "$c" 20 && wait_for 10 tunnel_alive
}

privileges_dropped() {
	grep -q '^Uid:[[:space:]]*65534' "/proc/$CLIENT_PID/status" &&
		grep -q '^CapEff:[[:space:]]*0000000000001000' "/proc/$CLIENT_PID/status"
}

# ---- 1. root ----
ovpn_p2p_client root
if wait_log "$UP_MSG" 0 && wait_for 10 tunnel_alive; then
	ok "root: tunnel up, link registered at ROUTE_UP"
	vpn_checks "root"
	transport_via ISP1 "root: the tunnel's transport leaves by ISP1 (pinned)"
else
	not_ok "root: tunnel up, link registered at ROUTE_UP" "$(tail -5 "$CLIENT_LOG")"
fi
ovpn_stop
clean_checks "root: after SIGTERM"

# ---- 2. user nobody, no persist-tun ----
for f in nobody.log pid/nobody.pid; do install -m 644 -o nobody /dev/null "$T/$f"; done
ovpn_p2p_client nobody --user nobody --group nogroup
if wait_log "$UP_MSG" 0 && wait_for 10 tunnel_alive; then
	check "nobody: OpenVPN runs as nobody with CAP_NET_ADMIN only" privileges_dropped
	vpn_checks "nobody"

	if restart_and_wait USR1; then
		ok "nobody: SIGUSR1 (tun closed and reopened, unprivileged): link back"
		vpn_checks "nobody, after SIGUSR1"
	else
		not_ok "nobody: SIGUSR1 (tun closed and reopened, unprivileged): link back" "$(tail -5 "$CLIENT_LOG")"
	fi

	if restart_and_wait HUP; then
		ok "nobody: SIGHUP (plugin closed and reopened): link back"
		vpn_checks "nobody, after SIGHUP"
	else
		not_ok "nobody: SIGHUP (plugin closed and reopened): link back" "$(tail -5 "$CLIENT_LOG")"
	fi

	transport_via ISP1 "nobody: the tunnel's transport leaves by ISP1 (pinned)"
	# ISP1 goes down as pppd does it: ip-down notifiers, then the interface
	isp_signal isp1
	wait_for 10 eval '! has_table 101'
	nsx srv ip link set ppp0 down
	transport_via ISP2 "ISP1 down: the tunnel's transport falls back to ISP2"
	check "ISP1 down: tunnel still carries the company network" \
		eval 'probe srv 22 $CORP_HOST | grep -q "seen=$TUN_SRV:"'
	nsx srv ip link set ppp0 up
	isp_signal isp1
	wait_for 10 has_table 101
	transport_via ISP1 "ISP1 back: the tunnel's transport returns to ISP1"
	# How the transport comes home depends on the balanced route's choice for
	# the server's address: by ppp0, the unbound socket's source becomes ISP1's
	# (a new flow); by ppp1 it stays ISP2's, and only the conntrack work at
	# ip-up brings the flow home.  Both, by a hash seed found now.
	for via in ppp0 ppp1; do
		isp=$([ $via = ppp0 ] && echo ISP1 || echo ISP2)
		if seed=$(seed_for $VPNSERVER $via); then
			transport_cycles "VPN server balanced by $isp (hash seed $seed)" 20
		else
			skip "VPN server balanced by $isp: ISP1 down/up x20" \
				"no net.ipv4.fib_multipath_hash_seed on this kernel: the outcome cannot be chosen"
		fi
	done
	vpn_checks "nobody, after ISP1 down and up"
else
	not_ok "nobody: tunnel up, link registered at ROUTE_UP" "$(tail -5 "$CLIENT_LOG")"
fi
ovpn_stop
clean_checks "nobody: after SIGTERM"

# ---- 3. nobody with persist-tun ----
for f in persist.log pid/persist.pid; do install -m 644 -o nobody /dev/null "$T/$f"; done
ovpn_p2p_client persist --user nobody --group nogroup --persist-tun
if wait_log "$UP_MSG" 0 && wait_for 10 tunnel_alive; then
	vpn_checks "persist-tun"
	c=$(log_count "Initialization Sequence Completed")
	# shellcheck disable=SC2034 # read by the eval below
	d=$(log_count "withdrawn")
	kill -USR1 "$CLIENT_PID"
	wait_log "Initialization Sequence Completed" "$c" 20
	wait_for 10 tunnel_alive
	check "persist-tun: SIGUSR1 keeps tun0 and the link (no withdraw)" \
		eval '[ "$(log_count withdrawn)" = "$d" ]'
	vpn_checks "persist-tun, after SIGUSR1"
	if restart_and_wait HUP; then
		vpn_checks "persist-tun, after SIGHUP"
	else
		not_ok "persist-tun: SIGHUP: link back" "$(tail -5 "$CLIENT_LOG")"
	fi
else
	not_ok "persist-tun: tunnel up" "$(tail -5 "$CLIENT_LOG")"
fi

# ---- 4. SIGKILL: no down event ever runs; the helper cleans up ----
helper=$(sed -n "s/.*root helper for link '[^']*' started (pid \([0-9]*\)).*/\1/p" "$CLIENT_LOG" | tail -1)
kill -9 "$CLIENT_PID"
wait_for 10 eval '! kill -0 '"${helper:-0}"
HELPER_PID=$helper
wait_for 5 eval '[ -z "$(vpn_leftovers)" ]'
clean_checks "SIGKILL of OpenVPN"

# ---- 5. foreground, Ctrl-C ----
install -m 644 -o nobody /dev/null "$T/fg.log"
CLIENT_LOG=$T/fg.log
ip netns exec "$(ns_name srv)" setsid openvpn --dev tun0 --ifconfig $TUN_SRV $TUN_CORP \
	--secret "$T/static.key" --cipher AES-256-CBC --data-ciphers-fallback AES-256-CBC \
	--remote $VPNSERVER 1130 --nobind --ping 1 --persist-key --user nobody --group nogroup \
	--plugin "$OVPN_SO" "${OVPN_ARGS[@]}" --verb 3 --log "$CLIENT_LOG" </dev/null >/dev/null 2>&1 &
CLIENT_PID=$!
if wait_log "$UP_MSG" 0 && wait_for 10 tunnel_alive; then
	helper=$(sed -n "s/.*root helper for link '[^']*' started (pid \([0-9]*\)).*/\1/p" "$CLIENT_LOG" | tail -1)
	check "foreground: the helper is in a session of its own" \
		eval '[ "$(ps -o sid= -p '"$helper"')" != "$(ps -o sid= -p $CLIENT_PID)" ]'
	vpn_checks "foreground"
	kill -INT -- "-$CLIENT_PID"     # what the terminal does on Ctrl-C
	wait_for 10 eval '! kill -0 $CLIENT_PID'
	wait_for 5 eval '! kill -0 '"$helper"
	HELPER_PID=$helper
	check "foreground: Ctrl-C: down events ran through the helper" \
		eval 'grep -q "route-predown: link .vpn. on tun0 withdrawn" "$CLIENT_LOG"'
	clean_checks "foreground: after Ctrl-C"
else
	not_ok "foreground: tunnel up" "$(tail -5 "$CLIENT_LOG")"
fi
exit 0
