#!/usr/bin/env bash
# Upstream tracking through a real OpenVPN tunnel (issue 15): the vpn link
# probes the company host through tun0 from its root helper's loop; the
# company's side stops answering while the tunnel itself stays up (its UDP
# pings flow), so the link goes offline: its pin (tcp/22 to the company
# network) falls through to the ISPs; when the company answers again it is
# online and the pin takes the tunnel again.  A SIGHUP starts tracking afresh
# with one prober; a SIGKILLed OpenVPN leaves no prober behind.
# Topology: see ovpn-lib.bash.
set -u
# shellcheck source=tests/openvpn/ovpn-lib.bash
. "$(dirname "$0")/ovpn-lib.bash"
p2p_setup

UP_MSG="link 'vpn' up on tun0"
OVPN_ARGS+=("track=$CORP_HOST" track-interval=0.5 track-down=3 track-up=3)

# echo requests from the tunnel's address that reached the company host
nsx corp iptables-legacy -N PROBES
nsx corp iptables-legacy -A PROBES -s $TUN_SRV -j RETURN
nsx corp iptables-legacy -I INPUT -i tun0 -p icmp --icmp-type echo-request -j PROBES
corp_probes() { nsx corp iptables-legacy -L PROBES -v -x -n | awk '$8 == "'$TUN_SRV'" { print $1 }'; }
# what of the pinned company traffic reached the internet instead (by an ISP)
nsx inet iptables-legacy -t raw -A PREROUTING -d $CORP_HOST -p tcp --dport 22
inet_pinned() { nsx inet iptables-legacy -t raw -L PREROUTING -v -x -n | awk 'NR == 3 { print $1 }'; }

# rate DESC SECONDS: the company saw 2 probes a second (+-2) meanwhile
rate() {
	local a b
	a=$(corp_probes)
	sleep "$2"
	b=$(corp_probes)
	check "$1: the company host saw $((b - a)) probes in $2 s (want $((2 * $2 - 2))..$((2 * $2 + 2)): one prober, every 0.5 s)" \
		test $((b - a)) -ge $((2 * $2 - 2)) -a $((b - a)) -le $((2 * $2 + 2))
}

ovpn_p2p_client track
if ! wait_log "$UP_MSG" 0 || ! wait_for 10 tunnel_alive; then
	not_ok "track: tunnel up, link registered" "$(tail -5 "$CLIENT_LOG")"
	exit 1
fi
ok "track: tunnel up, link registered"
check "track: the root helper tracks $CORP_HOST every 500 ms (OpenVPN's log)" \
	wait_for 5 grep -q "vpn: upstream tracking of 1 target(s) every 500 ms" "$CLIENT_LOG"
rate "track: online" 4

# the company stops answering anything from the tunnel; the tunnel stays up
nsx corp iptables-legacy -I INPUT -i tun0 -d $CORP_HOST -j DROP
check "track: the company host unreachable through the tunnel: 'vpn offline: 3 rounds lost ($CORP_HOST)' in OpenVPN's log" \
	wait_for 6 grep -q "multihome: vpn offline: 3 rounds lost ($CORP_HOST)" "$CLIENT_LOG"
check "track: ... while the tunnel itself stayed up (no restart in OpenVPN's log)" \
	eval '! grep -q -e "Restart pause" -e "SIGUSR1" "$CLIENT_LOG"'
p0=$(inet_pinned)
probe srv 22 $CORP_HOST >/dev/null
p1=$(inet_pinned)
check "track: vpn offline: its pin tcp/22 falls through: the connection's SYNs reached the internet by an ISP ($((p1 - p0)))" \
	test $((p1 - p0)) -ge 1
check "track: vpn offline: its table, fwmark and source rules stay" \
	eval '[ "$(vpn_fwmark_rules)" = 1 ] && [ "$(vpn_from_rules $TUN_SRV)" = 1 ] && has_table 103'

nsx corp iptables-legacy -D INPUT -i tun0 -d $CORP_HOST -j DROP
check "track: the company answers again: 'vpn online: 3 rounds answered' within 4 s" \
	wait_for 4 grep -q "multihome: vpn online: 3 rounds answered" "$CLIENT_LOG"
out=$(probe srv 22 $CORP_HOST)
if [[ $out == *"seen=$TUN_SRV:"* ]]; then
	ok "track: vpn online: tcp/22 to the company by tun0 again"
else
	not_ok "track: vpn online: tcp/22 to the company by tun0 again" "$out"
fi

# SIGHUP: OpenVPN closes and opens the plugin; tracking starts afresh, once
c=$(grep -c "upstream tracking of 1 target" "$CLIENT_LOG")
kill -HUP "$CLIENT_PID"
wait_for 20 eval '[ "$(grep -c "upstream tracking of 1 target" "$CLIENT_LOG")" -gt '"$c"' ]' && wait_for 10 tunnel_alive
check "track: after SIGHUP tracking started again ($(($(grep -c "upstream tracking of 1 target" "$CLIENT_LOG") - c)) start(s))" \
	test "$(($(grep -c "upstream tracking of 1 target" "$CLIENT_LOG") - c))" = 1
rate "track: after SIGHUP" 4

# SIGKILL: the helper ends with OpenVPN, and its prober with it
helper=$(sed -n "s/.*root helper for link 'vpn' started (pid \([0-9]*\)).*/\1/p" "$CLIENT_LOG" | tail -1)
kill -KILL "$CLIENT_PID"
wait_for 5 eval '! kill -0 '"${helper:-0}"' 2>/dev/null'
sleep 1
a=$(corp_probes)
sleep 2
b=$(corp_probes)
check "track: OpenVPN SIGKILLed: its root helper (pid $helper) is gone, no probe in 2 s ($((b - a)))" \
	eval '! kill -0 '"${helper:-0}"' 2>/dev/null && [ $((b - a)) = 0 ]'
