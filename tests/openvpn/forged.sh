#!/usr/bin/env bash
# A compromised OpenVPN against its root helper (issue 10, finding 2 and the
# helper's hardening).  Real OpenVPN 2.6 as nobody (CAP_NET_ADMIN only), the
# article's vpn link registered through the real helper; then mh-ovpn-forge
# takes OpenVPN's end of the helper's socketpair (pidfd_getfd) and sends what
# a compromised OpenVPN could: the link on the LAN interface or on an
# unregistered uplink, an added pin, weight=256, nat=off, the table, mark and
# priority of a ppp link that is down, a DOWN for another interface, a DOWN
# with other arguments, a /1 tunnel subnet, a /16 one over a network of the
# host (that one the core refuses, not the helper).  Each must be refused with the
# reason in the answer and a line in syslog (the helper logs where OpenVPN
# cannot take it back; OpenVPN runs in a mount namespace of its own whose
# /dev/log is this test's listener), and nothing may change: the kernel's
# rules, routes, nexthops and firewall and the registry, byte for byte.
# Traffic then shows the vpn link as configured and isp2 back with its own
# numbers.  A changed configuration after SIGHUP is refused likewise.
#
# Also measured: the helper's capabilities (/proc/PID/status: CapEff, CapPrm,
# CapBnd = CAP_NET_ADMIN|CAP_NET_RAW, CapInh = CapAmb = 0, NoNewPrivs 1) and
# that it is not dumpable (uid 0 without CAP_SYS_PTRACE cannot open its
# /proc/PID/mem, but can a dumpable process's).
# Topology: see ovpn-lib.bash; srv also has eth0 (a LAN, 192.0.2.1/24) and
# ppp2 (an uplink multihome does not know, 100.64.3.1 peer 100.64.3.2).
set -u
# shellcheck source=tests/openvpn/ovpn-lib.bash
. "$(dirname "$0")/ovpn-lib.bash"
ovpn_require
FORGE=$B/mh-ovpn-forge
if [ ! -x "$FORGE" ]; then
	skip "openvpn: forged.sh" "$FORGE is not built (make)"
	exit 0
fi
topo_up

ip link add eth0 netns "$(ns_name srv)" type veth peer name lan0 netns "$(ns_name srv)"
ip link add ppp2 netns "$(ns_name srv)" type veth peer name isp3 netns "$(ns_name srv)"
nsx srv ip addr add 192.0.2.1/24 dev eth0
nsx srv ip addr add 100.64.3.1 peer 100.64.3.2 dev ppp2
for dev in eth0 lan0 ppp2 isp3; do nsx srv ip link set $dev up; done

isp_start isp1 ppp0 $ISP1_ADDR 100.64.1.2 101 0x1 101 8 "udp $VPNSERVER/32 port 1130" || exit 1
isp_start isp2 ppp1 $ISP2_ADDR 100.64.2.2 102 0x2 102 2 || exit 1
ovpn_key
ovpn_p2p_server

# syslog as the helper sees it: /dev/log of OpenVPN's mount namespace is
# this test's listener (bound over the host's /dev/log there, or, on a host
# without one, in a tmpfs /dev holding only what OpenVPN opens)
SYSLOG=
SYSLOG_LOG=$T/syslog.log
nsx srv timeout 280 "$FORGE" syslog "$T/log.sock" 270 >"$SYSLOG_LOG" 2>&1 &
SERVE_PIDS+=($!)
wait_for 5 grep -q '^ready' "$SYSLOG_LOG" && SYSLOG=1
mkdir -m 700 "$T/hostdev"
cat >"$T/ovpn-ns.sh" <<'EOF_NS'
# run in a private mount namespace: SOCK HOSTDEV OPENVPN-ARGS...
sock=$1 hostdev=$2
shift 2
if [ -n "$sock" ] && [ -e /dev/log ]; then
	mount --bind "$sock" /dev/log || exit 1
elif [ -n "$sock" ]; then
	mount --rbind /dev "$hostdev" && mount -t tmpfs -o mode=755 mh-dev /dev || exit 1
	mkdir /dev/net
	for f in null zero random urandom net/tun log; do
		: >"/dev/$f"
		if [ $f = log ]; then mount --bind "$sock" /dev/log; else mount --bind "$hostdev/$f" "/dev/$f"; fi || exit 1
	done
fi
exec openvpn "$@"
EOF_NS
ARGS=(name=vpn table=103 mark=0x4 priority=100 weight=0 "pin=tcp 198.51.100.0/24 port 22")
ARGS_W256=(name=vpn table=103 mark=0x4 priority=100 weight=256 "pin=tcp 198.51.100.0/24 port 22")
ARGS_ISP2=(name=vpn table=102 mark=0x2 priority=102 weight=0 "pin=tcp 198.51.100.0/24 port 22")
CONF=$T/client.conf

# write_conf WEIGHT: the client's config, read again by OpenVPN on SIGHUP
write_conf() {
	cat >"$CONF" <<-EOF
		dev tun0
		ifconfig $TUN_SRV $TUN_CORP
		secret $T/static.key
		cipher AES-256-CBC
		data-ciphers-fallback AES-256-CBC
		remote $VPNSERVER 1130
		nobind
		ping 1
		ping-restart 10
		persist-key
		user nobody
		group nogroup
		plugin $OVPN_SO name=vpn table=103 mark=0x4 priority=100 weight=$1 "pin=tcp 198.51.100.0/24 port 22"
		verb 3
	EOF
	chmod 644 "$CONF"
}

write_conf 0
CLIENT_LOG=$T/forged-client.log
CLIENT_PIDFILE=$T/pid/forged-client.pid
for f in "$CLIENT_LOG" "$CLIENT_PIDFILE"; do install -m 644 -o nobody /dev/null "$f"; done
# shellcheck disable=SC2016 # expanded by the inner shell
ip netns exec "$(ns_name srv)" unshare -m --propagation private sh "$T/ovpn-ns.sh" \
	"${SYSLOG:+$T/log.sock}" "$T/hostdev" --config "$CONF" --log "$CLIENT_LOG" --daemon \
	--writepid "$CLIENT_PIDFILE" >/dev/null 2>&1
wait_for 5 test -s "$CLIENT_PIDFILE"
CLIENT_PID=$(cat "$CLIENT_PIDFILE")
UP_MSG="link 'vpn' up on tun0"
if ! wait_log "$UP_MSG" 0 || ! wait_for 10 tunnel_alive; then
	not_ok "tunnel up, link registered through the root helper" "$(tail -5 "$CLIENT_LOG")"
	exit 1
fi
HELPER=$(sed -n "s/.*root helper for link '[^']*' started (pid \([0-9]*\)).*/\1/p" "$CLIENT_LOG" | tail -1)
check "OpenVPN runs as nobody with CAP_NET_ADMIN only (the attacker)" \
	eval 'grep -q "^Uid:[[:space:]]*65534" /proc/$CLIENT_PID/status && grep -q "^CapEff:[[:space:]]*0000000000001000" /proc/$CLIENT_PID/status'

# ---- the helper's privileges ----

status_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }
expect_field() { # FIELD WANT MEANING
	local got
	got=$(status_field "$HELPER" "$1")
	if [ "$got" = "$2" ]; then
		ok "helper: $1 $2 ($3)"
	else
		not_ok "helper: $1 $2 ($3)" "helper pid ${HELPER:-?}: $1 is '${got}'"
	fi
}
expect_field CapEff 0000000000003000 "CAP_NET_ADMIN and CAP_NET_RAW"
expect_field CapPrm 0000000000003000 "CAP_NET_ADMIN and CAP_NET_RAW"
expect_field CapBnd 0000000000003000 "nothing else can ever be gained"
expect_field CapInh 0000000000000000 "none"
expect_field CapAmb 0000000000000000 "none"
expect_field NoNewPrivs 1 "no privileges through exec"
out=$(nsx srv "$FORGE" opens "$HELPER" mem 2>&1)
rc=$?
if [ "$rc" = 1 ]; then
	ok "helper: not dumpable (uid 0 without CAP_SYS_PTRACE cannot open its mem)"
else
	not_ok "helper: not dumpable (uid 0 without CAP_SYS_PTRACE cannot open its mem)" "exit $rc: $out"
fi

# ---- the forged requests ----

# What the plugin itself sends for this tunnel: accepted (the tool speaks the protocol).
out=$(nsx srv "$FORGE" send "$CLIENT_PID" --local $TUN_SRV --peer $TUN_CORP "${ARGS[@]}" 2>&1)
if [[ $out == *"status=0"* ]]; then
	ok "control: the plugin's own request, sent by the test tool, is accepted"
else
	not_ok "control: the plugin's own request, sent by the test tool, is accepted" "${out//$'\n'/; }"
fi

# isp2 down: its table 102, mark 0x2 and priority 102 are free in the kernel
isp_signal isp2
wait_for 10 eval '! has_table 102'

kernel_state() {
	nsx srv ip -4 rule show
	nsx srv ip -4 route show table all
	nsx srv ip nexthop show
	for t in mangle nat filter; do
		nsx srv iptables-legacy-save -t $t | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//'
	done
	nsx srv nft list ruleset
	nsx srv ip -o link show | sed 's/^[0-9]*: //'
}
registry_state() {
	local f
	for f in "$T/run"/* "$T/run"/.[!.]*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		stat -c '%n %F %a %u %s %y' "$f"
		[ -f "$f" ] && od -An -c "$f"
	done
}
# a network of srv's own (a LAN of /24) for the tunnel's network to overlap
nsx srv ip link add mhlan type veth peer name mhlanp
nsx srv ip link set mhlanp up
nsx srv ip addr add 100.64.200.1/24 dev mhlan
nsx srv ip link set mhlan up
KERNEL0=$(kernel_state 2>&1)
REG0=$(registry_state)

syslog_lines() { wc -l <"$SYSLOG_LOG" 2>/dev/null || echo 0; }

# forged DESC EXPECTED FORGE-ARGS...: refused, the reason in the answer and in syslog
forged() {
	local desc=$1 want=$2 out l0
	shift 2
	l0=$(syslog_lines)
	out=$(nsx srv "$FORGE" send "$CLIENT_PID" "$@" 2>&1)
	if [[ $out == *"status=-1"* ]] && [[ $out == *"$want"* ]]; then
		ok "forged $desc: refused"
	else
		not_ok "forged $desc: refused" "want '$want'; got: ${out//$'\n'/; }"
	fi
	if [ -z "$SYSLOG" ]; then
		skip "forged $desc: refusal logged to syslog" "the syslog listener did not start"
		return
	fi
	wait_for 3 eval 'tail -n +$((l0 + 1)) "$SYSLOG_LOG" | grep -F "refused a request from OpenVPN" | grep -qF -- "$want"'
	if tail -n +$((l0 + 1)) "$SYSLOG_LOG" | grep -F "refused a request from OpenVPN" | grep -qF -- "$want"; then
		ok "forged $desc: refusal logged to syslog"
	else
		not_ok "forged $desc: refusal logged to syslog" "$(tail -n +$((l0 + 1)) "$SYSLOG_LOG" | tail -2)"
	fi
}

forged "UP of vpn on eth0 (the LAN)" "serves interface tun0, not eth0" \
	--ifname eth0 --local 192.0.2.1 "${ARGS[@]}"
forged "UP of vpn on ppp2 (an unregistered uplink)" "serves interface tun0, not ppp2" \
	--ifname ppp2 --local 100.64.3.1 --peer 100.64.3.2 "${ARGS[@]}"
forged "UP with an added pin=tcp" "an added 'pin=tcp'" \
	--local $TUN_SRV --peer $TUN_CORP "${ARGS[@]}" pin=tcp
forged "UP with weight=256" "'weight=256' instead of 'weight=0'" \
	--local $TUN_SRV --peer $TUN_CORP "${ARGS_W256[@]}"
forged "UP with nat=off" "an added 'nat=off'" \
	--local $TUN_SRV --peer $TUN_CORP "${ARGS[@]}" nat=off
forged "UP with a /1 tunnel subnet" "a tunnel subnet of /1 is not accepted" \
	--local $TUN_SRV --plen 1 "${ARGS[@]}"
forged "DOWN for ppp0 (isp1's interface)" "serves interface tun0, not ppp0" \
	--op down --ifname ppp0 "${ARGS[@]}"
forged "DOWN of vpn with other arguments" "'weight=256' instead of 'weight=0'" \
	--op down "${ARGS_W256[@]}"
# last, so that on a helper that took it isp2 finds its numbers taken below
forged "UP with down isp2's table, mark and priority" "'table=102' instead of 'table=103'" \
	--local $TUN_SRV --peer $TUN_CORP "${ARGS_ISP2[@]}"

# within the helper's limits (/16../30), but 100.64.201.2/16 covers srv's
# 100.64.200.0/24: the core refuses the tunnel's network (finding 5)
out=$(nsx srv "$FORGE" send "$CLIENT_PID" --local 100.64.201.2 --plen 16 "${ARGS[@]}" 2>&1)
if [[ $out == *"status=-1"* ]] && [[ $out == *"its network 100.64.201.2/16 overlaps 100.64.200."* ]]; then
	ok "forged UP with a /16 tunnel network over srv's 100.64.200.0/24: refused by the core"
else
	not_ok "forged UP with a /16 tunnel network over srv's 100.64.200.0/24: refused by the core" "got: ${out//$'\n'/; }"
fi

KERNEL1=$(kernel_state 2>&1)
REG1=$(registry_state)
nsx srv ip link del mhlan
if [ "$KERNEL0" = "$KERNEL1" ]; then
	ok "forged requests changed nothing in the kernel (rules, routes, nexthops, firewall, links)"
else
	not_ok "forged requests changed nothing in the kernel (rules, routes, nexthops, firewall, links)" \
		"$(diff <(echo "$KERNEL0") <(echo "$KERNEL1") | grep '^[<>]' | head -4 | tr '\n' ';')"
fi
if [ "$REG0" = "$REG1" ]; then
	ok "forged requests changed nothing in the registry (names, modes, times, bytes)"
else
	not_ok "forged requests changed nothing in the registry (names, modes, times, bytes)" \
		"$(diff <(echo "$REG0") <(echo "$REG1") | grep '^[<>]' | head -4 | tr '\n' ';')"
fi

vpn_checks "after the forged requests"
isp_signal isp2
wait_for 10 has_table 102
out=$(nsx srv "$PROBE" connect --tcp --port 80 --bind $ISP2_ADDR --timeout 2000 203.0.113.140 2>&1)
if [[ $out == *"seen=$ISP2_ADDR:"* ]] && nsx srv ip -4 rule show | grep -q 'fwmark 0x2/0x2 lookup 102'; then
	ok "isp2 back up with its own table, mark and priority (a flow from its address leaves by it)"
else
	not_ok "isp2 back up with its own table, mark and priority (a flow from its address leaves by it)" \
		"$out; $(grep -i refused "$T/isp2.log" | tail -1)"
fi

# ---- a changed configuration after SIGHUP: refused until a restart ----

write_conf 1
c=$(log_count "configuration change needs an OpenVPN restart")
l0=$(syslog_lines)
kill -HUP "$CLIENT_PID"
if wait_log "configuration change needs an OpenVPN restart" "$c" 20; then
	ok "SIGHUP with weight=1: the new arguments are refused, OpenVPN's log says restart"
else
	not_ok "SIGHUP with weight=1: the new arguments are refused, OpenVPN's log says restart" "$(grep multihome "$CLIENT_LOG" | tail -3)"
fi
if [ -n "$SYSLOG" ]; then
	check "SIGHUP with weight=1: refusal logged to syslog" \
		eval 'tail -n +$((l0 + 1)) "$SYSLOG_LOG" | grep -F "refused a request from OpenVPN" | grep -qF "'"'weight=1' instead of 'weight=0'"'"'
else
	skip "SIGHUP with weight=1: refusal logged to syslog" "the syslog listener did not start"
fi
wait_for 10 tunnel_alive
tx0=$(tx_packets tun0)
out=$(probe srv 80 203.0.113.130-169)
tx1=$(tx_packets tun0)
if [ "$tx0" = "$tx1" ] && ! nsx srv ip nexthop show | grep -qw tun0 && grep -q '^weight 0$' "$T/run/link.vpn"; then
	ok "SIGHUP with weight=1: not applied (40 balanced connections, none by tun0; registry weight 0)"
else
	not_ok "SIGHUP with weight=1: not applied (40 balanced connections, none by tun0; registry weight 0)" \
		"tun0 tx $tx0 -> $tx1; $(nsx srv ip nexthop show | grep -w tun0)"
fi

ovpn_stop
clean_checks "after SIGTERM"
exit 0
