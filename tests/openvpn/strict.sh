#!/usr/bin/env bash
# Strict pins through real OpenVPN (issue 16, the kill switch a VPN user
# wants): the tunnel's link with pin-fallback=no.  While the tunnel is down --
# after OpenVPN's SIGTERM (its DOWN event through the root helper), after a
# SIGKILL (the helper withdraws the link) -- the company's traffic (the pin,
# tcp/22 to 198.51.100.0/24) is refused at once with "no route to host", and
# not one packet of it reaches either ISP; with the tunnel back it goes by
# tun0 again; `multihomectl forget vpn` ends it.  The control first: the same
# tunnel with the default pin-fallback (yes) lets the company's traffic fall
# through to the ISPs when it is down, so the ISPs' counters do see a leak
# when there is one.
# Topology: see ovpn-lib.bash (the p2p static-key tunnel).
set -u
# shellcheck source=tests/openvpn/ovpn-lib.bash
. "$(dirname "$0")/ovpn-lib.bash"
p2p_setup
CTL=$B/multihomectl
UP_MSG="link 'vpn' up on tun0"
COMPANY="198.51.100.20-29"      # ten addresses of the company's network, tcp/22: the pin

# packets to the company network that entered each ISP from srv
for i in 1 2; do
	nsx "isp$i" iptables-legacy -t raw -N COMPANY
	nsx "isp$i" iptables-legacy -t raw -A COMPANY
	nsx "isp$i" iptables-legacy -t raw -I PREROUTING -i down0 -d 198.51.100.0/24 -j COMPANY
done
company_at() { nsx "$1" iptables-legacy -t raw -L COMPANY -v -x -n 2>/dev/null | awk 'NR == 3 { print $1 }'; }

# company DESC WANT: ten connections to the company; WANT refused (none
# answered, all refused as unreachable, 0 packets at the ISPs) or leak (some
# packets at an ISP)
company() {
	local desc=$1 want=$2 out n refused answered a1 a2 p1 p2
	p1=$(company_at isp1)
	p2=$(company_at isp2)
	out=$(nsx srv "$PROBE" connect --tcp --port 22 --timeout 1500 --parallel 16 $COMPANY 2>&1)
	n=$(grep -c . <<<"$out")
	refused=$(grep -c 'error=No route to host' <<<"$out")
	answered=$(grep -c ' seen=' <<<"$out")
	a1=$(($(company_at isp1) - p1))
	a2=$(($(company_at isp2) - p2))
	case $want in
	refused)
		if [ "$n" = 10 ] && [ "$refused" = 10 ] && [ "$answered" = 0 ] && [ "$a1" = 0 ] && [ "$a2" = 0 ]; then
			ok "$desc: company tcp/22 0/10 answered, 10 refused as unreachable, packets at ISP1 $a1, ISP2 $a2"
		else
			not_ok "$desc: company tcp/22 0/10 answered, 10 refused as unreachable, packets at ISP1 0, ISP2 0" \
				"$n lines, $answered answered, $refused refused, packets at ISP1 $a1, ISP2 $a2; $(head -n 2 <<<"$out" | tr '\n' ' ')"
		fi ;;
	leak)
		if [ "$answered" = 0 ] && [ $((a1 + a2)) -ge 10 ]; then
			ok "$desc: company tcp/22 falls through to the ISPs: packets at ISP1 $a1, ISP2 $a2"
		else
			not_ok "$desc: company tcp/22 falls through to the ISPs" \
				"$answered answered, packets at ISP1 $a1, ISP2 $a2; $(head -n 2 <<<"$out" | tr '\n' ' ')"
		fi ;;
	esac
}

start_client() { # LOGNAME EXTRA...
	ovpn_p2p_client "$@"
	wait_log "$UP_MSG" 0 && wait_for 10 tunnel_alive
}

# ---- the control: pin-fallback yes (the default) ----
if start_client control; then
	vpn_checks "strict control (pin-fallback yes)"
else
	not_ok "strict control: tunnel up" "$(tail -5 "$CLIENT_LOG")"
fi
ovpn_stop
company "strict control: tunnel down (SIGTERM), pin-fallback yes" leak
clean_checks "strict control: after SIGTERM"

# ---- pin-fallback=no, OpenVPN as nobody (its DOWN through the root helper) ----
OVPN_ARGS+=(pin-fallback=no)
for f in strict.log pid/strict.pid strict2.log pid/strict2.pid; do install -m 644 -o nobody /dev/null "$T/$f"; done
if start_client strict --user nobody --group nogroup; then
	vpn_checks "strict (pin-fallback=no)"
else
	not_ok "strict: tunnel up" "$(tail -5 "$CLIENT_LOG")"
fi
ovpn_stop
company "strict: tunnel down (OpenVPN SIGTERM)" refused
check "strict: after SIGTERM: isp links untouched" isp_intact
route=$(nsx srv ip -4 route get $VPNSERVER mark 0x1 2>&1)
if [[ $route == *"dev ppp0"* ]]; then
	ok "strict: after SIGTERM: the other pins still work (isp1's table routes the transport)"
else
	not_ok "strict: after SIGTERM: the other pins still work (isp1's table routes the transport)" "$route"
fi

if start_client strict2 --user nobody --group nogroup; then
	vpn_checks "strict, tunnel back"
else
	not_ok "strict: tunnel back" "$(tail -5 "$CLIENT_LOG")"
fi
HELPER_PID=$(sed -n "s/.*root helper for link '[^']*' started (pid \([0-9]*\)).*/\1/p" "$CLIENT_LOG" | tail -1)
kill -KILL "$CLIENT_PID"
# the helper sees OpenVPN go and withdraws the link: tun0's route leaves table 103
wait_for 10 eval '! nsx srv ip -4 route show table 103 | grep -q "dev tun0"'
wait_for 5 eval '! kill -0 '"${HELPER_PID:-0}"
company "strict: OpenVPN SIGKILLed, withdrawn by its helper" refused

if out=$(nsx srv env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$CTL" forget vpn 2>&1); then
	ok "strict: multihomectl forget vpn"
else
	not_ok "strict: multihomectl forget vpn" "$out"
fi
company "strict: after forget vpn" leak
clean_checks "strict: after forget"
exit 0
