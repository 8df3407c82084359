#!/bin/sh
# shellcheck shell=dash
# The VM tier's scenario, run by /init inside the guest (busybox sh).
#
#   srv = the guest's own namespace (the home server; pppd runs here)
#
#   srv ppp0 192.0.2.1 ===pty=== ppp0 192.0.2.254 [isp1] i1-inet 100.64.1.1 --+
#                                                                              |
#                                             [inet] 198.51.100.0/24 local,  --+
#                                                    servers on :80 and :25    |
#   srv ppp1 203.0.113.N ==pty== ppp0 203.0.113.254 [isp2] i2-inet 100.64.2.1 -+
#                                                      |
#                                         i2-adm 100.64.3.1 --- [adm2] 100.64.3.2
#                                         (ISP2's control panel / its admin)
#   srv eth0 100.64.100.1/24 --- lan-srv 100.64.100.2 [lan]  (a LAN client srv routes)
#
# Each "===pty===" is a real pppd pair: srv's pppd (peers file /etc/ppp/peers/ispN,
# option "pty") runs the ISP's pppd in the ISP namespace (mh/isp-side.sh).  Both
# ISPs drop what arrives from srv with a source that is not theirs (anti-spoofing),
# so traffic leaving by the wrong link, or un-NATed, does not get through.
#
# The same script runs under pppd 2.4.9 (Debian 12's) and 2.5.2 (Debian 13's):
# /mh/pppd-version says which pppd this initramfs carries, /mh/other-version
# which pppd /opt/multihome-other/multihome.so was built for.
#
# Output: "RESULT pass|fail|skip ID detail" per check of tests/vm/checks, and
# "DIAG ID text" lines after a failure.
IP=/usr/sbin/ip
IPT=/usr/sbin/iptables-legacy
PPPD_VERSION=$(cat /mh/pppd-version)
OTHER_VERSION=$(cat /mh/other-version)
PLUGIN=/usr/lib/pppd/$PPPD_VERSION/multihome.so
PROBE=/usr/bin/mh-probe
UDPFLOW=/usr/bin/mh-udpflow
# The guest's kernel (6.1) has no fib_multipath_hash_seed: the hash key is new
# on every boot, so the shares are statistics.  With 200 connections a split
# outside 65-95% for ISP1 (weight 8 of 10) has a chance of about 1e-7; with
# 100 connections none by ISP2 one of 2e-10.
CONNS=${MH_VM_CONNS:-200}

# The guest's uptime goes with every result: where the time goes under TCG.
result() { echo "RESULT $1 $2 $3 [t=$(cut -d' ' -f1 /proc/uptime)s]"; }
pass() { result pass "$1" "$2"; }
skip() { result skip "$1" "$2"; }
fail() {
	result fail "$1" "$2"
	diag "$1"
}
step() { echo "MH-VM: t=$(cut -d' ' -f1 /proc/uptime) $*"; }

# check ID FUNC: FUNC sets D (what was measured) and returns the verdict.
check() {
	D=
	if "$2"; then pass "$1" "$D"; else fail "$1" "$D"; fi
}

diag() {
	{
		echo "--- ip rule"; $IP rule
		echo "--- ip route (main, 101, 102)"; $IP route; $IP route show table 101; $IP route show table 102
		echo "--- ip nexthop"; $IP nexthop 2>&1
		echo "--- ip addr"; $IP -4 -br addr
		echo "--- iptables mangle/nat"; $IPT -t mangle -S; $IPT -t nat -S
		for f in /tmp/pppd-*.log /tmp/isp-side-*.log; do
			[ -f "$f" ] && { echo "--- $f"; tail -n 12 "$f"; }
		done
	} 2>&1 | sed "s/^/DIAG $1 /"
}

n() { local ns=$1; shift; $IP netns exec "$ns" "$@"; }
on() { local ns=$1; shift; if [ "$ns" = - ]; then "$@"; else n "$ns" "$@"; fi; }

# wait_until SECONDS CMD...: poll CMD every 0.2 s.
wait_until() {
	local t=$(($1 * 5))
	shift
	while [ $t -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		t=$((t - 1))
	done
	return 1
}

# ---------------------------------------------------------------- topology
# Every exec costs tens of milliseconds under TCG: one "ip -batch" per
# namespace, one shell per namespace for the rest.
topology() {
	for ns in isp1 isp2 inet adm2 lan; do $IP netns add $ns; done
	$IP -b - <<-EOF
	link add i1-inet netns isp1 type veth peer name inet-i1 netns inet
	link add i2-inet netns isp2 type veth peer name inet-i2 netns inet
	link add i2-adm netns isp2 type veth peer name adm-i2 netns adm2
	link add eth0 type veth peer name lan-srv netns lan
	addr add 100.64.100.1/24 dev eth0
	link set eth0 up
	link add foreign0 type dummy
	link set foreign0 up
	route add default dev foreign0 table 200
	rule add priority 500 fwmark 0x100 lookup 200
	EOF
	$IP -n isp1 -b - <<-EOF
	link set lo up
	addr add 100.64.1.1/30 dev i1-inet
	link set i1-inet up
	route add default via 100.64.1.2
	EOF
	$IP -n isp2 -b - <<-EOF
	link set lo up
	addr add 100.64.2.1/30 dev i2-inet
	link set i2-inet up
	addr add 100.64.3.1/30 dev i2-adm
	link set i2-adm up
	route add default via 100.64.2.2
	EOF
	$IP -n inet -b - <<-EOF
	link set lo up
	addr add 100.64.1.2/30 dev inet-i1
	link set inet-i1 up
	addr add 100.64.2.2/30 dev inet-i2
	link set inet-i2 up
	route add 192.0.2.0/24 via 100.64.1.1
	route add 203.0.113.0/24 via 100.64.2.1
	route add 100.64.3.0/30 via 100.64.2.1
	route add local 198.51.100.0/24 dev lo
	EOF
	$IP -n adm2 -b - <<-EOF
	link set lo up
	addr add 100.64.3.2/30 dev adm-i2
	link set adm-i2 up
	route add default via 100.64.3.1
	EOF
	$IP -n lan -b - <<-EOF
	link set lo up
	addr add 100.64.100.2/24 dev lan-srv
	link set lan-srv up
	route add default via 100.64.100.1
	EOF
	echo 1 >/proc/sys/net/ipv4/ip_forward
	# Anti-spoofing at the ISPs, and a counter of what srv sends to adm2 by ISP1.
	n isp1 sh -c "echo 1 >/proc/sys/net/ipv4/ip_forward
		$IPT -A FORWARD -i ppp+ -s 192.0.2.1 -d 100.64.3.2 -j ACCEPT
		$IPT -A FORWARD -i ppp+ ! -s 192.0.2.0/24 -j DROP"
	n isp2 sh -c "echo 1 >/proc/sys/net/ipv4/ip_forward
		$IPT -A FORWARD -i ppp+ ! -s 203.0.113.0/24 -j DROP"
	n inet sh -c "echo 1 >/proc/sys/net/ipv4/ip_forward
		exec $PROBE serve --tcp 80 --tcp 25 --max-time 900" >/dev/null &
	n adm2 $PROBE serve --tcp 80 --max-time 900 >/dev/null &
	[ -x $UDPFLOW ] && n inet $UDPFLOW far --port 1131 --max-time 600 >/dev/null &
	$PROBE serve --tcp 8080 --max-time 900 >/dev/null &
	# Foreign firewall state in srv that multihome must never touch.
	$IPT -t mangle -A OUTPUT -d 100.64.99.1 -j MARK --set-mark 0x100
	$IPT -t nat -A POSTROUTING -o foreign0 -j MASQUERADE
}

snapshot() {
	{
		$IP rule; $IP -4 route show table all; $IP nexthop 2>&1
		for t in filter mangle nat raw; do $IPT -t $t -S; done
	} >"$1" 2>&1
}

# ------------------------------------------------------------------- helpers
PIDS=/run/mh-pppd
mkdir -p $PIDS
start_pppd() { # PEERS
	pppd call "$1" nodetach debug logfile "/tmp/pppd-$1.log" >"/tmp/pppd-$1.out" 2>&1 &
	echo $! >"$PIDS/$1"
}
pid_of() { cat "$PIDS/$1"; }
alive() { kill -0 "$1" 2>/dev/null; }
gone() { ! alive "$1"; }

addr_of() { $IP -4 -o addr show dev "$1" 2>/dev/null | sed -n 's/.* inet \([0-9.]*\).*/\1/p'; }
has_addr() { [ "$(addr_of "$1")" = "$2" ]; }
no_dev() { ! $IP link show dev "$1" >/dev/null 2>&1; }
rules_have() { $IP rule | grep -q -- "$1"; }
registered() { # DEV ADDR TABLE
	has_addr "$1" "$2" && rules_have "from $2 lookup $3" &&
		$IP route show table "$3" 2>/dev/null | grep -q "dev $1"
}

# seen_of: the address the far end saw, from mh-probe connect's output.
seen_of() { sed -n 's/.* seen=\([0-9.]*\):.*/\1/p'; }
# seen_by DST PORT: connect from srv; print what the far end saw.
seen_by() { $PROBE connect --tcp --port "$2" --timeout 3000 "$1" 2>/dev/null | seen_of; }
# sweep FIRST LAST PORT: one connection to each of 198.51.100.FIRST..LAST;
# "<seen address> <count>" lines and "fail N".
sweep() { sweep_from - "$@"; }
sweep_from() { # NS FIRST LAST PORT (NS "-" = srv)
	local ns=$1
	shift
	on "$ns" $PROBE connect --tcp --port "$3" --timeout 3000 --parallel 8 "198.51.100.$1-$2" 2>/dev/null |
		awk '$2 ~ /^seen=/ { split(substr($2, 6), a, ":"); n[a[1]]++; next }
		     { f++ }
		     END { for (k in n) print k, n[k]; print "fail", f + 0 }'
}
count_of() { awk -v a="$2" '$1==a{print $2; f=1} END{if(!f)print 0}' "$1"; }

# all_by FIRST LAST PORT ADDR: every connection answered and seen from ADDR.
all_by() {
	sweep "$1" "$2" "$3" >/tmp/sweep.out
	want=$(($2 - $1 + 1))
	got=$(count_of /tmp/sweep.out "$4")
	ALL_BY="$got/$want seen as $4 ($(tr '\n' ' ' </tmp/sweep.out))"
	[ "$got" = "$want" ]
}

# ------------------------------------------------------------------- run
if [ -c /dev/ppp ] && grep -q '^ppp_async' /proc/modules &&
   grep -q '^x_tables' /proc/modules; then
	pass boot "$(uname -r), /dev/ppp present"
else
	fail boot "no /dev/ppp or modules missing: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
fi

step topology
topology
snapshot /tmp/before
step "topology done"

if [ -f "$PLUGIN" ]; then
	HAVE_PLUGIN=1
	P1=isp1 P2=isp2
else
	HAVE_PLUGIN=
	# Without the plugin the infrastructure is still proven: the same peers
	# files minus their plugin lines.
	for p in isp1 isp2; do
		grep -v -e '^plugin' -e '^multihome-' /etc/ppp/peers/$p >/etc/ppp/peers/$p-bare
	done
	P1=isp1-bare P2=isp2-bare
fi

start_pppd $P1
start_pppd $P2
wait_until 30 has_addr ppp0 192.0.2.1
step "ppp0 up"
wait_until 30 has_addr ppp1 203.0.113.10
step "ppp1 up"
if has_addr ppp0 192.0.2.1 && has_addr ppp1 203.0.113.10; then
	pass ppp-links "ppp0 192.0.2.1, ppp1 203.0.113.10 (ISP sides in their own namespaces)"
else
	fail ppp-links "ppp0 '$(addr_of ppp0)', ppp1 '$(addr_of ppp1)'"
fi
c_ppp_traffic() {
	D="ping over ppp0 to 192.0.2.254 and over ppp1 to 203.0.113.254"
	ping -c1 -W3 192.0.2.254 >/dev/null && ping -c1 -W3 203.0.113.254 >/dev/null
}
check ppp-traffic c_ppp_traffic

c_pppd_version() {
	started=$(grep -o 'pppd [^ ]* started by [^,]*' /var/log/messages | sort | uniq -c | tr -s ' \n' '  ')
	D="syslog: '$started'"
	grep -q "pppd $PPPD_VERSION started by root" /var/log/messages &&
		! grep 'pppd [^ ]* started by' /var/log/messages | grep -v -q "pppd $PPPD_VERSION started"
}
check pppd-version c_pppd_version

# Every check of /mh/checks after the four above needs the plugin.
PLUGIN_CHECKS=$(grep -v -e '^#' -e '^boot' -e '^ppp-' -e '^pppd-version' /mh/checks | cut -f1)
if [ -z "$HAVE_PLUGIN" ]; then
	for c in $PLUGIN_CHECKS; do skip "$c" "multihome.so not built (build/multihome.so)"; done
	kill "$(pid_of $P1)" "$(pid_of $P2)" 2>/dev/null
	exit 0
fi

wait_until 10 registered ppp0 192.0.2.1 101
wait_until 10 registered ppp1 203.0.113.10 102

# ---- registration on ip-up
prio() { $IP rule | grep -- "$1" | head -n1 | cut -d: -f1; }
c_reg_rules() {
	s=$(prio 'lookup main suppress_prefixlength 0')
	m1=$(prio 'fwmark 0x1/0x1 lookup 101') m2=$(prio 'fwmark 0x2/0x2 lookup 102')
	f1=$(prio 'from 192.0.2.1 lookup 101') f2=$(prio 'from 203.0.113.10 lookup 102')
	D="priorities: suppress '$s' < fwmark '$m1','$m2' < from '$f1','$f2'"
	[ -n "$s" ] && [ -n "$m1" ] && [ -n "$m2" ] && [ -n "$f1" ] && [ -n "$f2" ] &&
		[ "$s" -lt "$m1" ] && [ "$s" -lt "$m2" ] && [ "$m1" = 101 ] && [ "$m2" = 102 ] &&
		[ "$m1" -lt "$f1" ] && [ "$m2" -lt "$f1" ] && [ "$m1" -lt "$f2" ] && [ "$m2" -lt "$f2" ]
}
check reg-rules c_reg_rules

c_reg_tables() {
	t1=$($IP route show table 101 | grep '^default') t2=$($IP route show table 102 | grep '^default')
	D="101: '$t1'; 102: '$t2'"
	echo "$t1" | grep -q 'dev ppp0' && echo "$t2" | grep -q 'dev ppp1'
}
check reg-tables c_reg_tables

# nh_members: "DEV,WEIGHT ..." of the group main's default route uses.
nh_members() {
	gid=$($IP route show default | sed -n 's/.*nhid \([0-9]*\).*/\1/p' | head -n1)
	[ -n "$gid" ] || return 1
	grp=$($IP nexthop show id "$gid" | sed -n 's/.* group \([^ ]*\).*/\1/p')
	for m in $(echo "$grp" | tr '/' ' '); do
		id=${m%%,*} w=1
		[ "$id" != "$m" ] && w=${m#*,}
		dev=$($IP nexthop show id "$id" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
		printf '%s,%s ' "$dev" "$w"
	done
}
c_reg_nexthop() {
	mem=$(nh_members)
	D="default: '$($IP route show default | tr '\n' ' ')' members: $mem"
	echo " $mem" | grep -q ' ppp0,8 ' && echo " $mem" | grep -q ' ppp1,2 ' &&
		[ "$($IP route show default | grep -c '^default')" = 1 ]
}
check reg-nexthop c_reg_nexthop

c_reg_firewall() {
	mg=$($IPT -t mangle -S) nt=$($IPT -t nat -S)
	in1=$(echo "$mg" | grep -c -- '-i ppp0 .*CONNMARK') in2=$(echo "$mg" | grep -c -- '-i ppp1 .*CONNMARK')
	rst=$(echo "$mg" | grep -c -- '--restore-mark')
	hook_out=$(echo "$mg" | grep -c -- '^-A OUTPUT .*-j ') hook_pre=$(echo "$mg" | grep -c -- '^-A PREROUTING .*-j ')
	ms1=$(echo "$nt" | grep -c -- '-o ppp0 .*MASQUERADE') ms2=$(echo "$nt" | grep -c -- '-o ppp1 .*MASQUERADE')
	D="ingress connmark $in1/$in2, restore $rst, hooks OUTPUT $hook_out PREROUTING $hook_pre, MASQUERADE $ms1/$ms2"
	[ "$in1" -ge 1 ] && [ "$in2" -ge 1 ] && [ "$rst" -ge 1 ] && [ "$hook_out" -ge 1 ] &&
		[ "$hook_pre" -ge 1 ] && [ "$ms1" = 1 ] && [ "$ms2" = 1 ]
}
check reg-firewall c_reg_firewall

c_reg_rpfilter() {
	r0=$(cat /proc/sys/net/ipv4/conf/ppp0/rp_filter) r1=$(cat /proc/sys/net/ipv4/conf/ppp1/rp_filter)
	D="ppp0 $r0, ppp1 $r1"
	[ "$r0" = 2 ] && [ "$r1" = 2 ]
}
check reg-rpfilter c_reg_rpfilter

# ---- traffic with both links up
c_balance() {
	sweep 1 "$CONNS" 80 >/tmp/balance.out
	a=$(count_of /tmp/balance.out 192.0.2.1) b=$(count_of /tmp/balance.out 203.0.113.10)
	f=$(count_of /tmp/balance.out fail)
	D="$CONNS connections to distinct destinations: ISP1 $a, ISP2 $b, failed $f"
	[ "$f" = 0 ] && [ "$b" -gt 0 ] && [ $((a * 100)) -ge $((CONNS * 65)) ] &&
		[ $((a * 100)) -le $((CONNS * 95)) ]
}
check balance c_balance

c_nat() {
	D="far ends saw: $(tr '\n' ' ' </tmp/balance.out)"
	! grep -v -e '^192\.0\.2\.1 ' -e '^203\.0\.113\.10 ' -e '^fail 0$' /tmp/balance.out | grep -q .
}
check nat c_nat

c_pin_port() { all_by 1 20 25 192.0.2.1; D="tcp/25: $ALL_BY"; }
check pin-port c_pin_port

c_pin_dst() {
	s=$(seen_by 100.64.3.2 80)
	D="100.64.3.2:80 saw '$s'"
	[ "$s" = 203.0.113.10 ]
}
check pin-dst c_pin_dst

fwd_count() { # NS: packets of srv's replies to adm2 seen forwarded by ISP1
	n "$1" $IPT -L FORWARD -v -n -x | awk '$3=="ACCEPT" && $8=="192.0.2.1"{print $1}'
}
drop_count() { n isp2 $IPT -L FORWARD -v -n -x | awk '$3=="DROP"{print $1}'; }
c_ingress_reply() {
	before=$(fwd_count isp1) dropped=$(drop_count)
	s=$(n adm2 $PROBE connect --tcp --port 8080 --timeout 3000 192.0.2.1 | seen_of)
	via1=$(($(fwd_count isp1) - before)) via2=$(($(drop_count) - dropped))
	D="adm2 -> 192.0.2.1:8080 answered '$s'; replies via ISP1 $via1 packets, dropped at ISP2 $via2"
	[ "$s" = 100.64.3.2 ] && [ "$via1" -gt 0 ] && [ "$via2" = 0 ]
}
check ingress-reply c_ingress_reply

c_lan() {
	sweep_from lan 1 100 80 >/tmp/lan.out
	a=$(count_of /tmp/lan.out 192.0.2.1) b=$(count_of /tmp/lan.out 203.0.113.10)
	sweep_from lan 1 5 25 >/tmp/lan25.out
	p25=$(count_of /tmp/lan25.out 192.0.2.1)
	pd=$(n lan $PROBE connect --tcp --port 80 --timeout 3000 100.64.3.2 | seen_of)
	D="100 connections: ISP1 $a, ISP2 $b; tcp/25 by ISP1 $p25/5; pinned 100.64.3.2 saw '$pd'"
	[ "$a" -gt "$b" ] && [ "$b" -gt 0 ] && [ $((a + b)) = 100 ] && [ "$p25" = 5 ] &&
		[ "$pd" = 203.0.113.10 ]
}
check lan c_lan

# ---- ISP2 hangs up; pppd redials and gets a new address
kill "$(cat /run/isp-side-isp2.pid)"
c_reconnect_addr() {
	wait_until 40 registered ppp1 203.0.113.20 102
	D="ppp1 '$(addr_of ppp1)' (was 203.0.113.10); same pppd process: $(alive "$(pid_of isp2)" && echo yes || echo no)"
	has_addr ppp1 203.0.113.20 && alive "$(pid_of isp2)"
}
check reconnect-addr c_reconnect_addr
c_reconnect_rule() {
	D="$($IP rule | grep 'lookup 102' | tr '\t\n' ' ')"
	rules_have 'from 203.0.113.20 lookup 102' && ! rules_have '203.0.113.10' &&
		[ "$($IP rule | grep -c 'lookup 102')" = 2 ]
}
check reconnect-rule c_reconnect_rule
c_reconnect_nat() {
	s=$(seen_by 100.64.3.2 80)
	sweep 1 20 80 >/tmp/sweep.out
	D="pinned 100.64.3.2 saw '$s'; sweep: $(tr '\n' ' ' </tmp/sweep.out)"
	[ "$s" = 203.0.113.20 ] && ! grep -q 203.0.113.10 /tmp/sweep.out && grep -q 'fail 0' /tmp/sweep.out
}
check reconnect-nat c_reconnect_nat

# ---- SIGTERM isp2's pppd: ip-down withdraws the link
P=$(pid_of isp2)
kill -TERM "$P"
wait_until 20 gone "$P"
c_down_withdraw() {
	left=$( {
		$IP rule | grep -e 'lookup 102' -e '203\.0\.113\.'
		$IP route show table 102 2>/dev/null
		$IP nexthop 2>/dev/null | grep ppp1
		$IPT -t mangle -S | grep -e ppp1 -e isp2 -e 100.64.3.2
		$IPT -t nat -S | grep -e ppp1 -e isp2
	} | tr '\n' ';')
	mem=$(nh_members)
	D="pppd exited: $(gone "$P" && echo yes || echo no); left of isp2: '$left'; default members: $mem"
	gone "$P" && [ -z "$left" ] && [ "$mem" = "ppp0,8 " ]
}
check down-withdraw c_down_withdraw
c_down_traffic() {
	all_by 1 20 80 192.0.2.1
	s=$(seen_by 100.64.3.2 80)
	D="$ALL_BY; isp2-pinned 100.64.3.2 saw '$s'"
	[ "$got" = 20 ] && [ "$s" = 192.0.2.1 ]
}
check down-traffic c_down_traffic

start_pppd isp2
c_down_repin() {
	wait_until 40 registered ppp1 203.0.113.30 102
	s=$(seen_by 100.64.3.2 80)
	D="ppp1 '$(addr_of ppp1)'; pinned 100.64.3.2 saw '$s'; members: $(nh_members)"
	[ "$s" = 203.0.113.30 ] && echo " $(nh_members)" | grep -q ' ppp1,2 '
}
check down-repin c_down_repin

# ---- kill -9 of isp1's pppd: no ip-down ever runs
# A long-lived UDP flow pinned to isp1 ("udp port 1131") from a socket bound to
# ISP2's address, so NATed to ISP1's: it must move to ISP2 after the kill and
# come home when isp1 is back (the conntrack work of ip-up, on this kernel).
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
# flow_after T: "FIRST-ADDR MS-AFTER-T COUNT-OF-IT LAST-ADDR" of the answers after T
flow_after() {
	awk -v t="$1" '/^ans / { split($2, a, "="); if (a[2] / 1000 < t) next
		split($4, s, "="); split(s[2], h, ":"); n++
		if (n == 1) { first = h[1]; ms = a[2] - t * 1000 }
		if (h[1] == first) same++; last = h[1] }
		END { printf "%s %d %d %s\n", n ? first : "none", ms, same, n ? last : "none" }' /tmp/flow.log
}
if [ -x $UDPFLOW ]; then
	$UDPFLOW client --port 1131 --bind 203.0.113.30 --duration-ms 50000 198.51.100.50 >/tmp/flow.log 2>&1 &
	sleep 1
fi
P=$(pid_of isp1)
T_KILL=$EPOCHREALTIME
kill -KILL "$P"
# polled with the shell's own read (an exec costs tens of ms under TCG); the
# registry is written after the kernel was changed
down_in_registry() {
	while read -r k v _; do [ "$k" = state ] && [ "$v" = down ] && return 0; done </run/multihome/link.isp1
	return 1
}
i=200
while [ $i -gt 0 ] && ! down_in_registry; do sleep 0.01; i=$((i - 1)); done
KILL_MS=$(ms_since "$T_KILL")
c_kill9_watch() {
	D="isp1's rules gone $KILL_MS ms after kill -9; mh-watch processes (isp2's) left: $(grep -l mh-watch /proc/[0-9]*/comm 2>/dev/null | wc -l)"
	! rules_have 'lookup 101' && [ "$KILL_MS" -le 1000 ]
}
check kill9-watch c_kill9_watch
wait_until 20 no_dev ppp0
c_kill9_traffic() {
	all_by 1 30 80 203.0.113.30
	a=$ALL_BY g=$got
	all_by 1 5 25 203.0.113.30
	D="ppp0 gone: $(no_dev ppp0 && echo yes || echo no); :80 $a; tcp/25: $ALL_BY"
	[ "$g" = 30 ] && [ "$got" = 5 ]
}
check kill9-traffic c_kill9_traffic
c_kill9_survivor() {
	D="rules: $($IP rule | grep 'lookup 102' | tr '\t\n' ' '); 102: $($IP route show table 102 | tr '\n' ' '); members: $(nh_members)"
	registered ppp1 203.0.113.30 102 && rules_have 'fwmark 0x2/0x2 lookup 102' &&
		echo " $(nh_members)" | grep -q ' ppp1,'
}
check kill9-survivor c_kill9_survivor

c_kill9_flow() {
	[ -x $UDPFLOW ] || { D="no mh-udpflow in the guest"; return 1; }
	# an answer already on its way by ISP1 may still arrive after the kill:
	# what counts is when the run of answers by ISP2 that lasts began
	set -- $(awk -v t="$T_KILL" '/^ans / { split($2, a, "="); if (a[2] / 1000 < t) next
		split($4, s, "="); split(s[2], h, ":"); n++
		if (h[1] != last) { from = a[2] - t * 1000; run = 0 }
		run++; last = h[1] }
		END { printf "%s %d %d\n", n ? last : "none", from, run }' /tmp/flow.log)
	before=$(awk -v t="$T_KILL" '/^ans / { split($2, a, "="); split($4, s, "="); split(s[2], h, ":")
		if (a[2] / 1000 < t) v = h[1] } END { print v }' /tmp/flow.log)
	D="before the kill by '$before' (ISP1 is 192.0.2.1); from $2 ms after it on by $1 only, $3 answers so"
	[ "$before" = 192.0.2.1 ] && [ "$1" = 203.0.113.30 ] && [ "$2" -le 1000 ] && [ "$3" -ge 5 ]
}
check kill9-flow c_kill9_flow

start_pppd isp1
wait_until 40 registered ppp0 192.0.2.1 101
T_REG=$EPOCHREALTIME
c_kill9_recover() {
	wait_until 40 registered ppp0 192.0.2.1 101
	sweep 1 100 80 >/tmp/sweep.out
	a=$(count_of /tmp/sweep.out 192.0.2.1) b=$(count_of /tmp/sweep.out 203.0.113.30)
	n1=$($IP rule | grep -c 'fwmark 0x1/0x1 lookup 101') n2=$($IP rule | grep -c 'from 192.0.2.1 lookup 101')
	D="isp1 rules: fwmark x$n1, from x$n2; members: $(nh_members); 100 connections: ISP1 $a, ISP2 $b"
	[ "$n1" = 1 ] && [ "$n2" = 1 ] && [ "$a" -gt 0 ] && [ "$b" -gt 0 ] && [ $((a + b)) = 100 ]
}
check kill9-recover c_kill9_recover
c_ct_home() {
	[ -x $UDPFLOW ] || { D="no mh-udpflow in the guest"; return 1; }
	sleep 2
	set -- $(flow_after "$T_REG")
	home=$(awk -v t="$T_REG" '/^ans / { split($2, a, "="); split($4, s, "="); split(s[2], h, ":")
		if (a[2] / 1000 >= t && h[1] == "192.0.2.1" && !ms) ms = a[2] - t * 1000 } END { printf "%d\n", ms }' /tmp/flow.log)
	D="after isp1's registration: first by $1, by ISP1 (192.0.2.1) from $home ms on, last by $4"
	[ "$4" = 192.0.2.1 ] && [ "$home" -le 2000 ] &&
		[ -z "$(awk -v t="$T_REG" -v h="$home" '/^ans / { split($2, a, "="); split($4, s, "="); split(s[2], x, ":")
			if (a[2] - t * 1000 > h && x[1] != "192.0.2.1") print }' /tmp/flow.log)" ]
}
check ct-home c_ct_home

# ---- upstream tracking in real pppd (peers/isp1: two targets, every 1 s):
# the probes are sent from pppd's own timer, the ISP's upstream dies while
# the PPP session stays up, and the link goes offline and online by itself
probes_at_isp1() {
	n isp1 $IPT -t raw -L TRACKPROBES -v -x -n 2>/dev/null | awk '$8 == "192.0.2.1" { print $1 }'
}
n isp1 sh -c "$IPT -t raw -N TRACKPROBES
	$IPT -t raw -A TRACKPROBES -s 192.0.2.1 -j RETURN
	$IPT -t raw -I PREROUTING -i ppp+ -p icmp --icmp-type echo-request -j TRACKPROBES"
c_track_timer() {
	a=$(probes_at_isp1)
	sleep 5
	b=$(probes_at_isp1)
	D="echo requests from 192.0.2.1 at ISP1 in 5 s: $((b - a)) (2 targets a second: want 8..12); $(grep -c 'upstream tracking of 2 target' /tmp/pppd-isp1.log) tracker start(s) in isp1's log"
	[ $((b - a)) -ge 8 ] && [ $((b - a)) -le 12 ]
}
check track-timer c_track_timer
n isp1 $IPT -I FORWARD -o i1-inet -j DROP
T_DEAD=$EPOCHREALTIME
c_track_offline() {
	wait_until 15 grep -q 'isp1 offline: 3 rounds lost' /tmp/pppd-isp1.log
	t=$(awk -v a="$T_DEAD" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	sweep 1 40 80 >/tmp/sweep.out
	a=$(count_of /tmp/sweep.out 192.0.2.1) f=$(count_of /tmp/sweep.out fail)
	D="isp1's upstream dropped, its session up: '$(grep -o 'isp1 offline: [^;]*' /tmp/pppd-isp1.log | tail -n 1)' seen within ${t} s; 40 new connections: $f failed, $a by ISP1; members: $(nh_members)"
	grep -q 'isp1 offline: 3 rounds lost (198.51.100.250, 198.51.100.251)' /tmp/pppd-isp1.log &&
		[ "$f" = 0 ] && [ "$a" = 0 ] && ! echo " $(nh_members)" | grep -q ' ppp0,'
}
check track-offline c_track_offline
n isp1 $IPT -D FORWARD -o i1-inet -j DROP
c_track_online() {
	wait_until 20 grep -q 'isp1 online: 5 rounds answered' /tmp/pppd-isp1.log
	sweep 1 100 80 >/tmp/sweep.out
	a=$(count_of /tmp/sweep.out 192.0.2.1) f=$(count_of /tmp/sweep.out fail)
	D="'$(grep -o 'isp1 online: [^;]*' /tmp/pppd-isp1.log | tail -n 1)'; 100 new connections: $f failed, $a by ISP1; members: $(nh_members)"
	grep -q 'isp1 online: 5 rounds answered' /tmp/pppd-isp1.log && [ "$f" = 0 ] && [ "$a" -gt 0 ] &&
		echo " $(nh_members)" | grep -q ' ppp0,8 '
}
check track-online c_track_online

# ---- a third link whose peers file has nothing of multihome but the plugin
start_pppd minimal
c_minimal() {
	wait_until 40 has_addr ppp2 192.0.2.2
	wait_until 10 rules_have 'from 192.0.2.2 lookup'
	t=$($IP rule | sed -n 's/.*from 192\.0\.2\.2 lookup \([^ ]*\).*/\1/p')
	fw=$($IP rule | grep -c "fwmark .* lookup $t ")
	named=$($IPT -t mangle -S | grep -c '"multihome minimal"')
	s=$($PROBE connect --tcp --port 80 --timeout 3000 --bind 192.0.2.2 198.51.100.7 | seen_of)
	D="table '$t', fwmark rules for it $fw, members: $(nh_members); mangle rules named 'minimal' (pppd's linkname): $named; bound to 192.0.2.2 the far end saw '$s'"
	[ -n "$t" ] && [ "$t" != 101 ] && [ "$t" != 102 ] && [ "$fw" = 1 ] &&
		echo " $(nh_members)" | grep -q ' ppp2,1 ' && [ "$named" -ge 1 ] && [ "$s" = 192.0.2.2 ]
}
check minimal c_minimal

# ---- a user of group dip dials with every variable multihome reads set to
# something harmful: none of it counts (pppd does not trust that user)
other_state() {
	{ $IP rule | grep -e 'lookup 102' -e 'lookup 101'; $IP route show table 101; $IP route show table 102
	  $IPT -t mangle -S | grep -e ppp0 -e ppp1; $IPT -t nat -S | grep -e ppp0 -e ppp1; } 2>&1
}
targets_state() {
	ls -ld /etc/nologin /etc/hostile.lock /tmp/hostile.fifo /tmp/hostile.conf 2>&1
}
mkfifo /tmp/hostile.fifo
other_state >/tmp/other.before
targets_state >/tmp/targets.before
mkfifo /tmp/hostile.up /tmp/hostile.down
n isp1 /mh/isp-side.sh isp1c 192.0.2.252 192.0.2.3 <>/tmp/hostile.up >/tmp/hostile.down &
su dialer -s /bin/sh -c "exec env MULTIHOME_RUNDIR=/etc/nologin MULTIHOME_FIREWALL=nft \
	MULTIHOME_CONF=/tmp/hostile.fifo XTABLES_LOCKFILE=/etc/hostile.lock MULTIHOME_NO_NEXTHOPS=1 \
	MULTIHOME_DEBUG=1 timeout 60 /usr/sbin/pppd call hostile nodetach" \
	<>/tmp/hostile.down >/tmp/hostile.up 2>/tmp/hostile.out &
c_hostile_env() {
	wait_until 20 has_addr ppp3 192.0.2.3 && wait_until 10 rules_have 'from 192.0.2.3 lookup'
	other_state >/tmp/other.after
	targets_state >/tmp/targets.after
	reg=$(ls /run/multihome 2>/dev/null | tr '\n' ' ')
	named=$($IPT -t mangle -S | grep -c '"multihome hostile"')
	D="registry /run/multihome: $reg; iptables rules of 'hostile': $named; members: $(nh_members); other links' state $(cmp -s /tmp/other.before /tmp/other.after && echo unchanged || echo CHANGED); target paths $(cmp -s /tmp/targets.before /tmp/targets.after && echo unchanged || diff /tmp/targets.before /tmp/targets.after | tr '\n' ' '); pppd: $(grep -e multihome -e hostile -e rror /tmp/hostile.out | tail -n 4 | tr '\n' ' ')"
	[ -f /run/multihome/link.hostile ] && [ ! -e /etc/nologin ] && [ ! -e /etc/hostile.lock ] &&
		[ "$named" -ge 1 ] && echo " $(nh_members)" | grep -q ' ppp3,1 ' &&
		cmp -s /tmp/other.before /tmp/other.after && cmp -s /tmp/targets.before /tmp/targets.after
}
check hostile-env c_hostile_env
PH=$(cat /run/ppp3.pid 2>/dev/null)
[ -n "$PH" ] && kill -TERM "$PH"
wait_until 20 no_dev ppp3

# ---- everything down
P1=$(pid_of isp1) P2=$(pid_of isp2) P3=$(pid_of minimal)
kill -TERM "$P1" "$P2" "$P3"
wait_until 20 gone "$P1"
wait_until 20 gone "$P2"
wait_until 20 gone "$P3"
c_final_clean() {
	snapshot /tmp/after
	D="diff against the state before any pppd: $(diff /tmp/before /tmp/after | grep '^[-+][^-+]' | tr '\t\n' ' ')"
	gone "$P1" && gone "$P2" && gone "$P3" && diff /tmp/before /tmp/after >/dev/null
}
check final-clean c_final_clean

# ---- real pppd's handling of the plugin itself
c_bad_option() {
	timeout 20 pppd call bad-weight nodetach >/tmp/bad.out 2>&1
	rc=$?
	D="exit $rc: $(tr '\n' ' ' </tmp/bad.out)"
	[ "$rc" != 0 ] && [ "$rc" != 143 ] && grep -q multihome-weight /tmp/bad.out &&
		grep -q 300 /tmp/bad.out && no_dev ppp0
}
check bad-option c_bad_option

# pppd's own version check, not the loader, refuses a plugin of another
# pppd: it names both versions, and no symbol is missing.
c_wrong_version() {
	if [ ! -f /opt/multihome-other/multihome.so ] || [ -z "$OTHER_VERSION" ]; then
		D="no multihome.so for another pppd was built"
		return 1
	fi
	timeout 20 pppd call wrong-version nodetach >/tmp/old.out 2>&1
	rc=$?
	D="built for $OTHER_VERSION: exit $rc: $(tr '\n' ' ' </tmp/old.out)"
	[ "$rc" != 0 ] && [ "$rc" != 143 ] && no_dev ppp0 &&
		grep -q "is for pppd version $OTHER_VERSION, this is $PPPD_VERSION" /tmp/old.out &&
		! grep -q -i 'undefined symbol' /tmp/old.out
}
check wrong-version c_wrong_version

# ---- the timer shims of pppd-api.h in real pppd (the harness's test plugin)
timer_lines() { sed -n 's/.*timer \([a-z]*\) fired at +\([0-9]*\) ms (due +\([0-9]*\)).*/\1 \2 \3/p' "$1"; }
# timer_problems FILE: tick x3, twice x1, once x1, never cancelled or late,
# none early, in due order (ties within the 1 ms the plugin's clock can
# tell apart aside); prints what is wrong.
timer_problems() {
	timer_lines "$1" | awk '
		{ n[$1]++; if ($2 < $3) bad = bad "early " $1 "@" $2 "; "
		  if ($3 < last - 1) bad = bad "out of order; "; last = $3 }
		END { if (n["tick"] != 3) bad = bad "tick " n["tick"] + 0 "x; "
		      if (n["twice"] != 1) bad = bad "twice " n["twice"] + 0 "x; "
		      if (n["once"] != 1) bad = bad "once " n["once"] + 0 "x; "
		      if (n["cancelled"] + n["late"] > 0) bad = bad "a cancelled or later timer fired; "
		      printf "%s", bad }'
}
three_ticks() { [ "$(grep -c 'timer tick fired' /tmp/timer.out)" -ge 3 ]; }
c_timer() {
	if [ ! -f /opt/mh-timer-plugin.so ]; then
		D="/opt/mh-timer-plugin.so not built"
		return 1
	fi
	pppd call timer nodetach >/dev/null 2>&1 &
	p=$!
	wait_until 10 three_ticks
	kill -TERM "$p"
	wait "$p"
	bad=$(timer_problems /tmp/timer.out)
	priv=$(sed -n 's/.*caller privileged //p' /tmp/timer.out)
	D="fired: $(timer_lines /tmp/timer.out | awk '{printf "%s@%s ", $1, $2}')${bad}mh_caller_privileged $priv (started by root)"
	[ -z "$bad" ] && [ "$priv" = 1 ] && return 0
	D="$D; pppd's log: $(tail -n 12 /tmp/timer.out | tr '\n' '|')"
	return 1
}
check timer c_timer

# pppd logs through its own vslprintf: 2.4.9 has no %lld (tests/harness
# warns about formats the pppd it imitates cannot print).
c_log_format() {
	line=$(grep -m1 'log format' /tmp/timer.out | sed 's/.*log format/log format/')
	case $PPPD_VERSION in
	2.4.*) want='log format %lld: %lld' ;;
	*) want='log format %lld: 12345678901' ;;
	esac
	D="pppd $PPPD_VERSION logged '$line', as the harness expects"
	[ "$line" = "$want" ]
}
check log-format c_log_format

# ---- pppd started by a user (setuid root, as `pon` by a member of dip)
c_user_start() {
	su dialer -s /bin/sh -c "exec timeout 20 /usr/sbin/pppd call noname nodetach ipparam isp1" \
		>/tmp/user.out 2>&1
	rc=$?
	priv=$(sed -n 's/.*caller privileged //p' /tmp/user.out)
	by=$(grep -o "pppd $PPPD_VERSION started by [^,]*, uid [0-9]*" /var/log/messages | grep -v root | tail -n 1)
	D="syslog: '$by'; mh_caller_privileged $priv; exit $rc: $(grep multihome: /tmp/user.out | tr '\n' ' ')"
	[ "$rc" = 1 ] && [ "$priv" = 0 ] && [ -n "$by" ] &&
		grep -q "ipparam 'isp1' cannot name the link" /tmp/user.out &&
		! rules_have 'lookup 103'
}
check user-start c_user_start

# ---- privgroup dip in /etc/ppp/options: pppd trusts that group's members as
# it trusts root (its `privileged`), and so does mh_caller_privileged.
c_privgroup() {
	echo "privgroup dip" >/etc/ppp/options
	su dialer -s /bin/sh -c "exec timeout 4 /usr/sbin/pppd call noname nodetach ipparam isp1" \
		>/tmp/pgroup.out 2>&1
	rc=$?
	: >/etc/ppp/options
	priv=$(sed -n 's/.*caller privileged //p' /tmp/pgroup.out)
	D="mh_caller_privileged $priv; pppd kept dialling until timeout's SIGTERM (exit $rc, not 1 or 2); $(grep -e multihome: /tmp/pgroup.out | tr '\n' ' ')"
	[ "$priv" = 1 ] && [ "$rc" -gt 2 ] && ! grep -q 'no link name' /tmp/pgroup.out
}
check privgroup c_privgroup
