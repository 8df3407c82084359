# Shared by tests/openvpn/*.sh (sourced; not a test itself).
#
# The article's scenario with its VPN, in network namespaces of this run:
#
#                      ppp0 100.64.1.1 -- 100.64.1.2  [isp1] 100.64.11.1 --.
#   [srv] (this host)                                                      [inet] 203.0.113.128/25 (any address answers)
#     tun0 100.64.100.2  ppp1 100.64.2.1 -- 100.64.2.2  [isp2] 100.64.12.1 --'   | 203.0.113.9
#       :                                                                         |
#       :........ OpenVPN over udp/1130 (pinned to isp1) ..............  203.0.113.10 [corp]
#                                                                     tun0 100.64.100.1, LAN 198.51.100.22
#
# srv's uplinks are registered by the pppd plugin (multihome.so driven by
# mh-pppd-harness), the tunnel by multihome-openvpn.so inside real OpenVPN.
# Nothing outside corp routes to 198.51.100.0/24: the company is reachable
# only through the tunnel.  srv's main table has no route to it either.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${MH_BUILD:-$TOP/build}
# shellcheck source=tests/lib/check.sh
. "$TOP/tests/lib/check.sh"

OVPN_SO=$B/multihome-openvpn.so
PPPD_SO=$B/multihome.so
HARNESS=$B/mh-pppd-harness
PROBE=$B/mh-probe

VPNSERVER=203.0.113.10
CORP_HOST=198.51.100.22
ISP1_ADDR=100.64.1.1
ISP2_ADDR=100.64.2.1
TUN_SRV=100.64.100.2
TUN_CORP=100.64.100.1

NS_ID=mh$$ov
# shellcheck source=tests/lib/ns.sh
. "$TOP/tests/lib/ns.sh"
T=                      # this run's temporary directory
HARNESS_PIDS=()
SERVE_PIDS=()

# skip the whole file (with a reason) unless everything it needs is here
ovpn_require() {
	local why=
	[ "$(id -u)" = 0 ] || why="needs root"
	command -v openvpn >/dev/null || why="openvpn is not installed"
	for f in "$OVPN_SO" "$PPPD_SO" "$HARNESS" "$PROBE"; do
		[ -x "$f" ] || [ -f "$f" ] || why="${why:-$f is not built (make)}"
	done
	[ -c /dev/net/tun ] || why="${why:-no /dev/net/tun}"
	if [ -n "$why" ]; then
		skip "openvpn: $(basename "$0")" "$why"
		exit 0
	fi
}

ovpn_cleanup() {
	local p
	set +e
	disown -a 2>/dev/null
	for p in $(jobs -p) "${HARNESS_PIDS[@]}" "${SERVE_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	ns_cleanup      # every process left in them too (OpenVPN, helpers, probes)
	[ -n "$T" ] && [ -d "$T" ] && [ -z "${MH_KEEP:-}" ] && rm -rf "$T"
	if [ -n "${_mh_own_results:-}" ]; then
		mh_summary
		rm -f "$MH_RESULTS"
	fi
}

# veth NS1 IF1 ADDR1 NS2 IF2 ADDR2: a point-to-point pair (/32 peers)
veth_p2p() {
	ip link add "$2" netns "$(ns_name "$1")" type veth peer name "$5" netns "$(ns_name "$4")"
	nsx "$1" ip addr add "$3" peer "$6" dev "$2"
	nsx "$4" ip addr add "$6" peer "$3" dev "$5"
	nsx "$1" ip link set "$2" up
	nsx "$4" ip link set "$5" up
}

# uplink_p2p: like veth_p2p, but with ppp's manners: no ARP, so a device route
# ("default dev ppp0") works for any destination.  Both ends share one MAC
# address: a NOARP device sends to its own address, the peer must accept it.
uplink_p2p() {
	veth_p2p "$@"
	local mac
	mac=$(nsx "$1" cat "/sys/class/net/$2/address")
	nsx "$4" ip link set "$5" address "$mac"
	nsx "$1" ip link set "$2" arp off
	nsx "$4" ip link set "$5" arp off
}

topo_up() {
	T=$(mktemp -d /tmp/mh-ovpn.XXXXXX)
	chmod 755 "$T"
	mkdir -m 700 "$T/run" && mkdir -m 1777 "$T/pid"
	export MULTIHOME_RUNDIR=$T/run
	trap ovpn_cleanup EXIT
	trap 'exit 1' INT TERM

	local ns
	for ns in srv isp1 isp2 inet corp; do ns_add "$ns"; done
	for ns in isp1 isp2 inet corp; do nsx "$ns" sysctl -qw net.ipv4.ip_forward=1; done
	nsx srv sysctl -qw net.ipv4.ip_forward=1
	# Repeatable balancing: a fixed multipath hash seed (per netns, >= 6.11);
	# the checks that depend on the hash's outcome choose it (seed_for).
	if [ -e /proc/sys/net/ipv4/fib_multipath_hash_seed ]; then
		nsx srv sysctl -qw net.ipv4.fib_multipath_hash_seed=12345
	fi

	uplink_p2p srv ppp0 $ISP1_ADDR isp1 down0 100.64.1.2
	uplink_p2p srv ppp1 $ISP2_ADDR isp2 down0 100.64.2.2
	veth_p2p isp1 up0 100.64.11.1 inet isp1 100.64.11.2
	veth_p2p isp2 up0 100.64.12.1 inet isp2 100.64.12.2
	veth_p2p inet corp 203.0.113.9 corp up0 $VPNSERVER
	nsx isp1 ip route add default via 100.64.11.2
	nsx isp2 ip route add default via 100.64.12.2
	nsx inet ip route add 100.64.1.0/24 via 100.64.11.1
	nsx inet ip route add 100.64.2.0/24 via 100.64.12.1
	nsx inet ip route add local 203.0.113.128/25 dev lo
	nsx corp ip route add default via 203.0.113.9
	nsx corp ip addr add $CORP_HOST/32 dev lo

	# far ends that report what they saw
	nsx inet timeout 300 "$PROBE" serve --tcp 80 --max-time 290 >"$T/serve-inet.log" 2>&1 &
	SERVE_PIDS+=($!)
	nsx corp timeout 300 "$PROBE" serve --tcp 22 --tcp 80 --max-time 290 >"$T/serve-corp.log" 2>&1 &
	SERVE_PIDS+=($!)
	nsx srv timeout 300 "$PROBE" serve --tcp 7000 --max-time 290 >"$T/serve-srv.log" 2>&1 &
	SERVE_PIDS+=($!)
	# what corp's VPN server saw: the transport's source address, per ISP
	nsx corp iptables-legacy -N TRANSPORT
	nsx corp iptables-legacy -A INPUT -p udp --dport 1130 -j TRANSPORT
	nsx corp iptables-legacy -A TRANSPORT -s $ISP1_ADDR
	nsx corp iptables-legacy -A TRANSPORT -s $ISP2_ADDR
	for ns in inet corp srv; do wait_for 5 grep -q ready "$T/serve-$ns.log" || true; done
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" 2>/dev/null; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

# isp_start NAME IF LOCAL REMOTE TABLE MARK PRIO WEIGHT [PIN]: raise an uplink
# in srv through the pppd plugin; it stays up until isp_signal advances it.
isp_start() {
	local name=$1 ifname=$2 peers=$T/$1.peers
	{
		echo "plugin multihome.so"
		echo "multihome-name $name"
		echo "multihome-table $5"
		echo "multihome-mark $6"
		echo "multihome-priority $7"
		echo "multihome-weight $8"
		[ -n "${9:-}" ] && echo "multihome-pin \"$9\""
	} >"$peers"
	# up, then on each signal: down / up / down ... (100 cycles at most)
	ip netns exec "$(ns_name srv)" "$HARNESS" --file "$peers" --plugin "$PPPD_SO" --ifname "$ifname" \
		--local "$3" --remote "$4" up wait repeat 100 down wait up wait \
		>"$T/$name.log" 2>&1 &
	HARNESS_PIDS+=($!)
	eval "ISP_PID_$name=$!"
	wait_for 10 has_table "$5" || { echo "uplink $name did not come up:"; cat "$T/$name.log"; return 1; }
}

has_table() { [ -n "$(nsx srv ip -4 route show table "$1" 2>/dev/null)" ]; }

isp_signal() { local v="ISP_PID_$1"; kill -HUP "${!v}"; }

# ---- OpenVPN ----

ovpn_key() {
	openvpn --genkey secret "$T/static.key" >/dev/null 2>&1
	chmod 644 "$T/static.key"
}

# The p2p server in corp (static key; it floats to whichever ISP address the
# client's transport arrives from).
ovpn_p2p_server() {
	nsx corp openvpn --dev tun0 --ifconfig $TUN_CORP $TUN_SRV --secret "$T/static.key" \
		--cipher AES-256-CBC --data-ciphers-fallback AES-256-CBC --port 1130 --float \
		--ping 1 --ping-restart 30 --verb 3 --log "$T/corp-ovpn.log" \
		--daemon --writepid "$T/pid/corp-ovpn.pid" >/dev/null 2>&1
	wait_for 5 test -s "$T/pid/corp-ovpn.pid"
}

OVPN_ARGS=(name=vpn table=103 mark=0x4 priority=100 weight=0 "pin=tcp 198.51.100.0/24 port 22")

# p2p_setup: the namespaces, both uplinks (isp1 8, with the transport's pin;
# isp2 2) and the p2p server: what every static-key test starts from
p2p_setup() {
	ovpn_require
	topo_up
	isp_start isp1 ppp0 $ISP1_ADDR 100.64.1.2 101 0x1 101 8 "udp $VPNSERVER/32 port 1130" || exit 1
	isp_start isp2 ppp1 $ISP2_ADDR 100.64.2.2 102 0x2 102 2 || exit 1
	ovpn_key
	ovpn_p2p_server
}

# ovpn_p2p_client LOGNAME EXTRA-OPTIONS...: the client in srv, as a daemon
ovpn_p2p_client() {
	local name=$1
	shift
	CLIENT_LOG=$T/$name.log
	CLIENT_PIDFILE=$T/pid/$name.pid
	nsx srv openvpn --dev tun0 --ifconfig $TUN_SRV $TUN_CORP --secret "$T/static.key" \
		--cipher AES-256-CBC --data-ciphers-fallback AES-256-CBC \
		--remote $VPNSERVER 1130 --nobind --ping 1 --ping-restart 10 --persist-key \
		--plugin "$OVPN_SO" "${OVPN_ARGS[@]}" \
		--verb 3 --log "$CLIENT_LOG" --daemon --writepid "$CLIENT_PIDFILE" "$@" >/dev/null 2>&1
	wait_for 5 test -s "$CLIENT_PIDFILE"
	CLIENT_PID=$(cat "$CLIENT_PIDFILE")
}

# count of lines matching PATTERN in the client's log
log_count() { grep -c -- "$1" "$CLIENT_LOG" 2>/dev/null || true; }
# wait until PATTERN has appeared more than N times
wait_log() { wait_for "${3:-15}" log_more "$1" "$2"; }
log_more() { [ "$(log_count "$1")" -gt "$2" ]; }

tunnel_alive() { nsx srv "$PROBE" connect --tcp --port 80 --timeout 1000 $TUN_CORP >/dev/null 2>&1; }

# ---- what the tests look at ----

tx_packets() { nsx srv cat "/sys/class/net/$1/statistics/tx_packets"; }

# probe NS PROTO PORT DEST...: one line per destination ("DEST seen=A:P ...")
probe() {
	local ns=$1 port=$2
	shift 2
	nsx "$ns" "$PROBE" connect --tcp --port "$port" --timeout 2000 --parallel 16 "$@" 2>&1
}

# vpn_rules: how many of srv's rules belong to the vpn link
vpn_fwmark_rules() { nsx srv ip -4 rule show | grep -c 'fwmark 0x4/0x4 lookup 103' || true; }
vpn_from_rules() { nsx srv ip -4 rule show | grep -c "from $1 lookup 103" || true; }
vpn_any_rules() { nsx srv ip -4 rule show | grep -c 'lookup 103' || true; }

# Everything of ours that mentions the vpn link: rules, table, nexthops, firewall.
vpn_leftovers() {
	{
		nsx srv ip -4 rule show | grep 'lookup 103'
		nsx srv ip -4 route show table 103
		nsx srv ip nexthop show 2>/dev/null | grep -w tun0
		nsx srv ip -4 route show table main proto 109 | grep -w tun0
		nsx srv iptables-legacy-save 2>/dev/null | grep -E 'tun0|0x4/0x4|comment "?vpn'
	} 2>/dev/null
}

# the isp links are still all there
isp_intact() {
	nsx srv ip -4 rule show | grep -q 'lookup 101' &&
		nsx srv ip -4 rule show | grep -q 'lookup 102' &&
		has_table 101 && has_table 102
}

# ---- the checks every privilege state and restart must pass ----

# vpn_checks LABEL: registered once; company by tun0; weight 0; ingress answered
vpn_checks() {
	local label=$1 out tx0 tx1 bad local_addr=${2:-$TUN_SRV}

	check "$label: vpn link registered exactly once (fwmark rule, table 103)" \
		eval '[ "$(vpn_fwmark_rules)" = 1 ] && [ "$(vpn_from_rules '"$local_addr"')" = 1 ] && nsx srv ip -4 route show table 103 | grep -q "dev tun0"'

	out=$(probe srv 22 $CORP_HOST)
	if [[ $out == *"seen=$local_addr:"* ]]; then
		ok "$label: company network reached by tun0 (pin tcp/22)"
	else
		not_ok "$label: company network reached by tun0 (pin tcp/22)" "$out"
	fi

	tx0=$(tx_packets tun0)
	out=$(probe srv 80 203.0.113.130-169)
	tx1=$(tx_packets tun0)
	bad=$(printf '%s\n' "$out" | grep -v -e "seen=$ISP1_ADDR:" -e "seen=$ISP2_ADDR:" | head -3)
	if [ -z "$bad" ] && [ "$tx0" = "$tx1" ]; then
		ok "$label: weight 0: 40 balanced connections, none by tun0"
	else
		not_ok "$label: weight 0: 40 balanced connections, none by tun0" \
			"tun0 tx $tx0 -> $tx1; ${bad//$'\n'/; }"
	fi

	tx0=$(tx_packets tun0)
	out=$(nsx corp "$PROBE" connect --tcp --port 7000 --bind $CORP_HOST --timeout 2000 "$local_addr" 2>&1)
	tx1=$(tx_packets tun0)
	if [[ $out == *"seen=$CORP_HOST:"* ]] && [ "$tx1" -gt "$tx0" ] &&
		! nsx srv ip -4 route show table main | grep -q '^198\.51\.100\.'; then
		ok "$label: connection arriving through tun0 answered through tun0"
	else
		not_ok "$label: connection arriving through tun0 answered through tun0" "$out; tun0 tx $tx0 -> $tx1"
	fi
}

# transport_counts: "ISP1 ISP2" packets corp's VPN server has seen so far
transport_counts() {
	nsx corp iptables-legacy -nvxL TRANSPORT | awk 'NR > 2 { printf "%s ", $1 }'
}

# transport_moved WANT A0 B0 A1 B1: >= 10 new packets from WANT, none from the other
transport_moved() {
	case $1 in
	ISP1) [ $(($4 - $2)) -ge 10 ] && [ "$5" = "$3" ] ;;
	ISP2) [ $(($5 - $3)) -ge 10 ] && [ "$4" = "$2" ] ;;
	esac
}

# transport_via ISP1|ISP2 LABEL: over a burst of tunnel traffic, the VPN
# server saw the transport only from that ISP's address (retried for ~10 s)
transport_via() {
	local want=$1 label=$2 a0 b0 a1 b1
	for _ in $(seq 1 10); do
		read -r a0 b0 <<<"$(transport_counts)"
		nsx srv "$PROBE" connect --tcp --port 80 --timeout 1000 --repeat 4 $TUN_CORP >/dev/null 2>&1
		read -r a1 b1 <<<"$(transport_counts)"
		transport_moved "$want" "$a0" "$b0" "$a1" "$b1" && break
		sleep 0.5
	done
	if transport_moved "$want" "$a0" "$b0" "$a1" "$b1"; then
		ok "$label"
	else
		not_ok "$label" "VPN server saw from ISP1 +$((a1 - a0)), from ISP2 +$((b1 - b0))"
	fi
}

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# seed_for ADDR DEV: a multipath hash seed with which srv's balanced route
# sends ADDR by DEV (the first of 1..200; the choice is the kernel's, so the
# same on every run of one kernel).  Fails on kernels without the sysctl.
seed_for() {
	local s
	[ -e /proc/sys/net/ipv4/fib_multipath_hash_seed ] || return 1
	for s in $(seq 1 200); do
		nsx srv sysctl -qw net.ipv4.fib_multipath_hash_seed="$s"
		nsx srv ip -4 route get "$1" | grep -q "dev $2 " && { echo "$s"; return 0; }
	done
	return 1
}

# wait_transport ISP1|ISP2 A0 B0 T0 MS: until corp's VPN server has seen a
# new transport packet from that ISP (counters were A0 B0), at most MS after
# T0 (ms); prints the ms from T0
wait_transport() {
	local want=$1 a0=$2 b0=$3 t0=$4 limit=$5 a b
	while [ $(($(now_ms) - t0)) -le "$limit" ]; do
		read -r a b <<<"$(transport_counts)"
		if { [ "$want" = ISP1 ] && [ "$a" -gt "$a0" ]; } || { [ "$want" = ISP2 ] && [ "$b" -gt "$b0" ]; }; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		sleep 0.02
	done
	return 1
}

# transport_cycles LABEL N: ISP1 down and up N times under a busy tunnel
# (a UDP flow to corp's end of the tunnel every 50 ms, corp's keepalives every
# 100 ms: the VPN server keeps sending to the address it knows).  Each time
# the transport must be on ISP2 while ISP1 is down and home within 2 s of
# ISP1's ip-up, and stay there.  One TEST line with the numbers.
transport_cycles() {
	local label=$1 cycles=$2 c a b a1 b1 t0 down home good=0 fell=0 maxh=0 maxd=0 bad= homes=
	local far busy
	ip netns exec "$(ns_name corp)" "$B/mh-udpflow" far --port 7100 --max-time 190 >/dev/null 2>&1 &
	far=$!
	ip netns exec "$(ns_name srv)" "$B/mh-udpflow" client --port 7100 --interval-ms 50 \
		--duration-ms 60000 $TUN_CORP >"$T/busy-$cycles-$(now_ms)" 2>&1 &
	busy=$!
	SERVE_PIDS+=("$far" "$busy")
	for c in $(seq 1 "$cycles"); do
		read -r a b <<<"$(transport_counts)"
		t0=$(now_ms)
		isp_signal isp1                 # ip-down, then the unit goes down
		wait_for 10 eval '! has_table 101'
		nsx srv ip link set ppp0 down
		if down=$(wait_transport ISP2 "$a" "$b" "$t0" 5000); then
			fell=$((fell + 1))
			[ "$down" -gt "$maxd" ] && maxd=$down
		else
			bad="$bad; cycle $c: not on ISP2 within 5 s of ISP1's going"
		fi
		sleep 0.2
		read -r a b <<<"$(transport_counts)"
		nsx srv ip link set ppp0 up
		t0=$(now_ms)
		isp_signal isp1                 # ip-up
		if home=$(wait_transport ISP1 "$a" "$b" "$t0" 2000); then
			sleep 0.1
			read -r a1 b1 <<<"$(transport_counts)"
			sleep 0.5
			read -r a b <<<"$(transport_counts)"
			if [ "$b" = "$b1" ] && [ "$a" -gt "$a1" ]; then
				good=$((good + 1))
				homes="$homes $home"
				[ "$home" -gt "$maxh" ] && maxh=$home
			else
				bad="$bad; cycle $c: home in $home ms, then ISP1 +$((a - a1)) ISP2 +$((b - b1)) in 0.5 s"
			fi
		else
			read -r a1 b1 <<<"$(transport_counts)"
			bad="$bad; cycle $c: not home within 2 s (ISP1 +$((a1 - a)), ISP2 +$((b1 - b)))"
		fi
	done
	kill "$busy" "$far" 2>/dev/null
	wait "$busy" "$far" 2>/dev/null
	local med
	med=$(tr ' ' '\n' <<<"$homes" | grep . | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }')
	local msg="$label: ISP1 down/up x$cycles: on ISP2 while down $fell/$cycles (max $maxd ms), by ISP1 within 2 s of ip-up and staying $good/$cycles (median $med ms, max $maxh ms)"
	if [ "$good" = "$cycles" ] && [ "$fell" = "$cycles" ]; then
		ok "$msg"
	else
		not_ok "$msg" "${bad#; }"
		nsx srv "$B/mh-ct" list 2>/dev/null | grep ':1130 ' | sed 's/^/      /'
	fi
}

# ovpn_stop: SIGTERM the client and wait until it (and its helper) are gone
ovpn_stop() {
	local helper
	helper=$(sed -n "s/.*root helper for link '[^']*' started (pid \([0-9]*\)).*/\1/p" "$CLIENT_LOG" | tail -1)
	kill -TERM "$CLIENT_PID" 2>/dev/null
	wait_for 10 eval '! kill -0 '"$CLIENT_PID"
	[ -n "$helper" ] && wait_for 5 eval '! kill -0 '"$helper"
	HELPER_PID=$helper
}

clean_checks() {
	local label=$1 left
	left=$(vpn_leftovers)
	if [ -z "$left" ]; then
		ok "$label: nothing of the vpn link left (rules, routes, nexthops, firewall)"
	else
		not_ok "$label: nothing of the vpn link left (rules, routes, nexthops, firewall)" "${left//$'\n'/; }"
	fi
	check "$label: isp links untouched" isp_intact
	if [ -n "${HELPER_PID:-}" ]; then
		check "$label: root helper (pid $HELPER_PID) exited with OpenVPN" eval '! kill -0 '"$HELPER_PID"
	fi
}
