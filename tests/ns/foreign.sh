#!/bin/bash
# Issue 5, foreign state: before the test srv holds 10,000 foreign mangle
# rules, foreign nat/filter/raw rules, foreign ip rules (one inside
# multihome's priority range), routes in other tables and in main, a foreign
# nexthop object and marks used by other software (a MARK rule, a CONNMARK
# restore, a fwmark rule to a blackhole table).  Four links then go up and
# down 100 times each, concurrently; in the middle (all up) the foreign part
# is unchanged and the foreign mark still routes (traffic); after the full
# withdrawal srv's rules, routes, nexthops and every iptables table are
# byte-identical to before.  Root; namespaces of its own.
GROUP=foreign
# ---- namespace helpers (the same block heads every tests/ns script of this group) ----
# srv: the multihomed host; far: every link's far end (ISP), owns 203.0.113.0/24
# and answers UDP 7000 there (mh-probe).  Link k: srv pppK <-> far cK, a
# point-to-point veth (no ARP, /32 peers) standing in for a ppp unit:
# local 100.64.K.2, peer 100.64.K.1, name lK, table 100+K, mark 1<<(K-1),
# priority 100+K, pin "udp 203.0.113.K port 7000".  far drops packets from a
# link whose source is not that link's address (strict rp_filter), so the
# address the far end saw names the link a flow left by.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/lib/check.sh
. "$TOP/tests/lib/check.sh"
HARNESS=$TOP/build/mh-pppd-harness
PLUGIN=$TOP/build/multihome.so
PROBE=$TOP/build/mh-probe
ID=mh${GROUP:-x}$$
SRV=$ID-srv
FAR=$ID-far
TMP=$(mktemp -d "/tmp/mh-$GROUP.XXXXXX")
chmod 755 "$TMP"
export MULTIHOME_RUNDIR=$TMP/run
declare -A ADDR=()      # link k -> its local address now
BG=()

cleanup() {
	local p rc=0
	for p in "${BG[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$SRV" 2>/dev/null
	ip netns del "$FAR" 2>/dev/null
	[ -z "${MH_KEEP:-}" ] && rm -rf "$TMP"
	if [ -n "${_mh_own_results:-}" ]; then     # run alone: check.sh's summary
		mh_summary || rc=1
		rm -f "$MH_RESULTS"
		exit $rc
	fi
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

S() { ip netns exec "$SRV" "$@"; }
F() { ip netns exec "$FAR" "$@"; }

need_tools() {
	local f
	for f in "$HARNESS" "$PLUGIN" "$PROBE"; do
		[ -e "$f" ] || { skip "$GROUP: namespace tests" "$f not built"; exit 0; }
	done
	[ "$(id -u)" = 0 ] || { skip "$GROUP: namespace tests" "needs root"; exit 0; }
}

net_create() {
	ip netns add "$SRV" && ip netns add "$FAR" || return 1
	local n
	for n in "$SRV" "$FAR"; do
		ip netns exec "$n" ip link set lo up
		ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 >/dev/null
	done
	S sysctl -qw net.ipv4.ip_forward=1 >/dev/null
	F sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 >/dev/null
	F ip route add local 203.0.113.0/24 dev lo
	# srv's LAN
	S ip link add lan0 type veth peer name lan0p
	S ip addr add 192.0.2.1/24 dev lan0
	S ip link set lan0p up
	S ip link set lan0 up
	F "$PROBE" serve --udp 7000 --udp 7001 --max-time 900 >"$TMP/serve.log" 2>&1 &
	BG+=($!)
	disown $!
	for n in $(seq 50); do grep -q ready "$TMP/serve.log" && return 0; sleep 0.05; done
	echo "mh-probe serve did not start" >&2
	return 1
}

# dev_add K [LOCAL]: link K's unit appears, addressed (a new ifindex each time).
dev_add() {
	local k=$1 a=${2:-100.64.$1.2} mac
	S ip link add "ppp$k" type veth peer name "c$k" netns "$FAR" || return 1
	mac=$(S cat "/sys/class/net/ppp$k/address")
	F ip link set "c$k" address "$mac"
	S ip link set "ppp$k" arp off
	F ip link set "c$k" arp off
	F ip addr add "100.64.$k.1/32" peer "$a/32" dev "c$k"
	F sysctl -qw "net.ipv4.conf.c$k.rp_filter=1" >/dev/null
	F ip link set "c$k" up
	S ip addr add "$a/32" peer "100.64.$k.1/32" dev "ppp$k"
	S ip link set "ppp$k" up
	ADDR[$k]=$a
}
dev_del() { S ip link del "ppp$1" 2>/dev/null; return 0; }
# dev_readdr K NEW: the far end hands out a new address on the same unit.
dev_readdr() {
	local k=$1 a=$2 old=${ADDR[$1]}
	S ip addr del "$old/32" peer "100.64.$k.1/32" dev "ppp$k"
	S ip addr add "$a/32" peer "100.64.$k.1/32" dev "ppp$k"
	F ip addr del "100.64.$k.1/32" peer "$old/32" dev "c$k"
	F ip addr add "100.64.$k.1/32" peer "$a/32" dev "c$k"
	ADDR[$k]=$a
}

# peers K [EXTRA...]: write link K's peers file, print its path.
peers() {
	local k=$1 f=$TMP/peers-$1
	shift
	{
		echo "plugin $PLUGIN"
		echo "multihome-name l$k"
		echo "multihome-table $((100 + k))"
		printf 'multihome-mark 0x%x\n' $((1 << (k - 1)))
		echo "multihome-priority $((100 + k))"
		echo "multihome-pin \"udp 203.0.113.$k port 7000\""
		local x
		for x in "$@"; do echo "$x"; done
	} >"$f"
	echo "$f"
}

# hx K WORDS...: run link K's pppd (the harness) in the foreground.
# hxbg LOG K WORDS...: in the background; HPID is its pid (signal it directly).
hxargs() {
	HXA=(--file "${PEERS_FILE[$1]:-$TMP/peers-$1}" --plugin "$PLUGIN" --ifname "ppp$1"
	     --local "${ADDR[$1]:-100.64.$1.2}" --remote "${RMT[$1]:-100.64.$1.1}" --linkname "l$1")
}
hx() {
	local k=$1
	shift
	hxargs "$k"
	S "$HARNESS" "${HXA[@]}" "$@"
}
hxbg() {
	local log=$1 k=$2
	shift 2
	hxargs "$k"
	ip netns exec "$SRV" "$HARNESS" "${HXA[@]}" "$@" >>"$log" 2>&1 &
	HPID=$!
	BG+=("$HPID")
}
declare -A PEERS_FILE=() RMT=()

# canon: multihome-relevant kernel state of srv as text; nexthop ids are
# replaced by the device names they stand for (slots differ between runs).
canon() {
	local sedf=$TMP/nh.sed
	S ip nexthop show 2>/dev/null | awk '
		$1 == "id" && $3 == "dev" { printf "s/\\<%s\\>/nh(%s)/g\n", $2, $4 }
		$1 == "id" && $3 == "group" { printf "s/\\<%s\\>/nh(group)/g\n", $2 }' >"$sedf"
	{
		echo "== rules"; S ip rule show
		echo "== routes"; S ip route show table all | grep -v -e '^local ' -e '^broadcast ' \
			-e 'table local' -e 'proto kernel' | sed -f "$sedf" | sort
		echo "== nexthops"; S ip nexthop show 2>/dev/null | sed -f "$sedf" | sort
		echo "== mangle"; S iptables-legacy-save -t mangle | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
		echo "== nat"; S iptables-legacy-save -t nat | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	} | sed -f "$sedf" | awk '/^id nh\(group\) group / {
		n = split($4, m, "/")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && m[j - 1] > m[j]; j--) { t = m[j]; m[j] = m[j - 1]; m[j - 1] = t }
		g = m[1]
		for (i = 2; i <= n; i++) g = g "/" m[i]
		$4 = g } { print }'
}

# invariants K...: core-independent checks that exactly links K... are up.
# Prints what is wrong; returns 1 if anything is.
invariants() {
	local up=" $* " k bad=0 st=$TMP/inv.txt n t m
	canon >"$st"
	grep -q '^32767:' "$st" && grep -q '^\*nat' "$st" || { echo "cannot read the state"; return 1; }
	for k in 1 2 3 4 5 6 7 8 9; do
		t=$((100 + k)); m=$(printf '0x%x' $((1 << (k - 1))))
		if [[ $up == *" $k "* ]]; then
			n=$(grep -c "^$t:	from all fwmark $m/$m lookup $t proto 109" "$st")
			[ "$n" = 1 ] || { echo "l$k: $n fwmark rules"; bad=1; }
			n=$(grep -c "^1$(printf %04d $t):	from ${ADDR[$k]} lookup $t proto 109" "$st")
			[ "$n" = 1 ] || { echo "l$k: $n source rules for ${ADDR[$k]}"; bad=1; }
			n=$(grep -c "lookup $t " "$st")
			[ "$n" = 2 ] || { echo "l$k: $n rules for table $t"; bad=1; }
			n=$(grep -c "^default dev ppp$k table $t proto 109" "$st")
			[ "$n" = 1 ] || { echo "l$k: $n default routes in table $t"; bad=1; }
			n=$(grep -c "^id nh(ppp$k) dev ppp$k .*proto 109" "$st")
			[ "$n" = 1 ] || { echo "l$k: $n nexthop objects"; bad=1; }
			grep -q "^id nh(group) group.*nh(ppp$k)" "$st" || { echo "l$k: not in the group"; bad=1; }
			n=$(grep -c -- "-A MULTIHOME-PRE -i ppp$k " "$st")
			[ "$n" = 2 ] || { echo "l$k: $n ingress rules"; bad=1; }
			n=$(grep -c -- "-A MULTIHOME-NAT -o ppp$k " "$st")
			[ "$n" = 1 ] || { echo "l$k: $n NAT rules"; bad=1; }
		else
			n=$(grep -c -e "lookup $t " -e "table $t " -e "ppp$k\\>" -e "multihome l$k\"" "$st")
			[ "$n" = 0 ] || { echo "l$k (down): $n leftovers"; grep -e "lookup $t " -e "table $t " -e "ppp$k\\>" "$st" | head -3; bad=1; }
		fi
	done
	n=$(grep -c "^99:	from all lookup main suppress_prefixlength 0" "$st")
	if [ -n "${*}" ]; then
		[ "$n" = 1 ] || { echo "$n suppress rules"; bad=1; }
		n=$(grep -c "^default nhid nh(group) .*proto 109" "$st")
		[ "$n" = 1 ] || { echo "$n balanced default routes"; bad=1; }
		for h in "-A PREROUTING -j MULTIHOME-PRE" "-A OUTPUT -j MULTIHOME-MARK" "-A POSTROUTING -j MULTIHOME-NAT"; do
			n=$(grep -c -- "^$h\$" "$st")
			[ "$n" = 1 ] || { echo "$n hooks '$h'"; bad=1; }
		done
	else
		n=$(grep -c -e "proto 109" -e MULTIHOME "$st")
		[ "$n" = 0 ] || { echo "$n objects of ours with no link up"; bad=1; }
	fi
	n=$(grep -c '^[0-9]' "$st"); m=$(grep '^[0-9]' "$st" | sort -u | wc -l)
	[ "$n" = "$m" ] || { echo "duplicate rules"; bad=1; }
	return $bad
}

# traffic K...: with exactly links K... up, UDP to 203.0.113.J (pinned to
# lJ) must leave by lJ if it is up, else by some up link (balanced); a socket
# bound to lJ's address leaves by lJ.  Prints what is wrong.
traffic() {
	local up=" $* " j out seen bad=0 dests="" ok_addrs=" "
	for j in "$@"; do ok_addrs+="${ADDR[$j]} "; done
	for j in 1 2 3 4 5 6 7 8; do [ -n "${ADDR[$j]:-}" ] && dests+=" 203.0.113.$j"; done
	# shellcheck disable=SC2086
	out=$(S "$PROBE" connect --udp --port 7000 --timeout 1000 --parallel 16 $dests 2>&1)
	while read -r d s _; do
		j=${d##*.}
		seen=${s#seen=}; seen=${seen%:*}
		if [[ $up == *" $j "* ]]; then
			[ "$seen" = "${ADDR[$j]}" ] || { echo "pin of l$j: far end saw '$s'"; bad=1; }
		elif [ -n "$*" ]; then
			[[ $ok_addrs == *" $seen "* ]] || { echo "l$j down: balanced flow seen as '$s'"; bad=1; }
		fi
	done <<<"$out"
	for j in "$@"; do
		out=$(S "$PROBE" connect --udp --port 7000 --timeout 1000 --bind "${ADDR[$j]}" 203.0.113.200 2>&1)
		[[ $out == *"seen=${ADDR[$j]}:"* ]] || { echo "bound to l$j's address: $out"; bad=1; }
	done
	return $bad
}

# wait_lines FILE PATTERN COUNT [SECONDS]: until FILE has COUNT lines matching.
wait_lines() {
	local t n
	for t in $(seq $((${4:-30} * 20))); do
		n=$(grep -c -- "$2" "$1" 2>/dev/null)
		[ "${n:-0}" -ge "$3" ] && return 0
		sleep 0.05
	done
	return 1
}
# ---- end of helpers ----

need_tools
CYCLES=${MH_FOREIGN_CYCLES:-100}
NRULES=${MH_FOREIGN_RULES:-10000}
ALL=(1 2 3 4)
net_create || { not_ok "foreign: namespaces" "setup failed"; exit 0; }
for k in "${ALL[@]}"; do dev_add "$k"; peers "$k" >/dev/null; done

# ---- foreign state ----
{
	echo "*mangle"
	echo ":FOREIGN - [0:0]"
	echo "-A PREROUTING -i lan0 -j CONNMARK --restore-mark --nfmask 0xff0000 --ctmask 0xff0000"
	echo "-A PREROUTING -j FOREIGN"
	echo "-A OUTPUT -p udp --dport 7001 -j MARK --set-xmark 0x10000/0x10000"
	echo "-A FORWARD -j FOREIGN"
	echo "-A POSTROUTING -o lan0 -j CONNMARK --save-mark --nfmask 0xff0000 --ctmask 0xff0000"
	for i in $(seq 0 $((NRULES - 1))); do
		echo "-A FOREIGN -d 100.100.$((i / 256)).$((i % 256))/32 -m comment --comment fx$i -j RETURN"
	done
	echo "COMMIT"
	echo "*nat"
	echo ":FOREIGN-NAT - [0:0]"
	echo "-A PREROUTING -d 192.0.2.1/32 -p tcp --dport 8080 -j DNAT --to-destination 192.0.2.10:80"
	echo "-A POSTROUTING -s 192.0.2.0/24 -o lan0 -j MASQUERADE"
	echo "-A POSTROUTING -j FOREIGN-NAT"
	for i in $(seq 50); do echo "-A FOREIGN-NAT -d 198.51.100.$i/32 -j RETURN"; done
	echo "COMMIT"
	echo "*filter"
	echo "-A INPUT -i lan0 -p tcp --dport 22 -j ACCEPT"
	echo "-A FORWARD -i lan0 -j ACCEPT"
	echo "COMMIT"
	echo "*raw"
	echo "-A PREROUTING -i lan0 -p udp --dport 53 -j CT --notrack"
	echo "COMMIT"
} >"$TMP/foreign.rules"
S iptables-legacy-restore -w <"$TMP/foreign.rules" || not_ok "foreign: loading foreign iptables rules"
S ip rule add priority 50 from 192.0.2.0/24 lookup 200
S ip rule add priority 150 fwmark 0x10000/0x10000 lookup 300
S ip rule add priority 10050 from 198.51.100.9 lookup 300 proto static
S ip rule add priority 20000 iif lan0 lookup 200
S ip route add default via 192.0.2.254 dev lan0 table 200
S ip route add blackhole 203.0.113.0/24 table 300
S ip route add 100.100.0.0/16 via 192.0.2.254 dev lan0 proto static
S ip nexthop add id 7 via 192.0.2.253 dev lan0
S ip route add 198.51.100.128/25 nhid 7 table 200

# full: everything that must come back byte-identical
full() {
	echo "== rules"; S ip rule show
	echo "== routes"; S ip route show table all
	echo "== nexthops"; S ip nexthop show
	local t
	for t in mangle nat filter raw; do
		echo "== $t"; S iptables-legacy-save -t "$t" | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	done
}
# foreign_only: the same without what is tagged as multihome's
foreign_only() {
	full | grep -v -e 'proto 109' -e MULTIHOME -e '^	nexthop dev ppp' |
		grep -v -e '^default dev ppp[0-9] table 10[0-9] ' 
}
full >"$TMP/before.txt"
foreign_only >"$TMP/before-foreign.txt"
n=$(S iptables-legacy -t mangle -S FOREIGN | grep -c -- '-A FOREIGN')
if [ "$n" = "$NRULES" ] && grep -q '^150:' "$TMP/before.txt" && grep -q 'nhid 7' "$TMP/before.txt"; then
	ok "foreign: $NRULES foreign mangle rules, nat/filter/raw rules, ip rules, routes, nexthop set"
else
	not_ok "foreign: foreign state set up" "$n mangle rules"
fi

# ---- all up: the foreign part untouched, the foreign mark still routes ----
for k in "${ALL[@]}"; do hx "$k" up >>"$TMP/ev.log" 2>&1; done
out=$(invariants "${ALL[@]}")
foreign_only >"$TMP/mid-foreign.txt"
if [ -z "$out" ] && cmp -s "$TMP/before-foreign.txt" "$TMP/mid-foreign.txt"; then
	ok "foreign: 4 links up, all foreign state unchanged beside ours"
else
	not_ok "foreign: 4 links up, all foreign state unchanged beside ours" \
		"$out $(diff "$TMP/before-foreign.txt" "$TMP/mid-foreign.txt" | head -n 4)"
fi
out=$(traffic "${ALL[@]}")
[ -z "$out" ] && ok "foreign: traffic: pins and bound sockets by their links among 10k foreign rules" ||
	not_ok "foreign: traffic: pins and bound sockets by their links among 10k foreign rules" "$out"
# the foreign mark 0x10000 (udp 7001) must still reach its blackhole table;
# the same flow without the mark (udp 7000) gets through
m=$(S "$PROBE" connect --udp --port 7001 --timeout 500 203.0.113.50 2>&1)
u=$(S "$PROBE" connect --udp --port 7000 --timeout 1000 203.0.113.50 2>&1)
if [[ $m != *seen=* ]] && [[ $u == *seen=* ]]; then
	ok "foreign: a foreign fwmark still routes by its own rule (blackholed), unmarked flows pass"
else
	not_ok "foreign: a foreign fwmark still routes by its own rule (blackholed), unmarked flows pass" \
		"marked: $m / unmarked: $u"
fi
for k in "${ALL[@]}"; do hx "$k" up down >>"$TMP/ev.log" 2>&1; done

# ---- 100 up/down cycles of every link, concurrently ----
start=$(date +%s)
pids=()
for k in "${ALL[@]}"; do
	hxbg "$TMP/cyc$k.log" "$k" --time repeat "$CYCLES" up down
	pids+=("$HPID")
done
for p in "${pids[@]}"; do wait "$p"; done
secs=$(($(date +%s) - start))
n=$(cat "$TMP"/cyc*.log | grep -c '^event \(up\|down\)')
errs=$(grep -h 'multihome:' "$TMP"/cyc*.log | grep -i -e error -e fail -e refused | head -n 3)
if [ "$n" = $((2 * CYCLES * ${#ALL[@]})) ] && [ -z "$errs" ]; then
	ok "foreign: $CYCLES up/down cycles of 4 links concurrently ($n events, ${secs}s), none failed"
else
	not_ok "foreign: $CYCLES up/down cycles of 4 links concurrently" "$n events; $errs"
fi
for k in "${ALL[@]}"; do hx "$k" up down >>"$TMP/ev.log" 2>&1; done
full >"$TMP/after.txt"
if cmp -s "$TMP/before.txt" "$TMP/after.txt"; then
	ok "foreign: after full withdrawal rules, routes, nexthops, 4 tables byte-identical"
else
	not_ok "foreign: after full withdrawal rules, routes, nexthops, 4 tables byte-identical" \
		"$(diff "$TMP/before.txt" "$TMP/after.txt" | grep '^[<>]' | head -n 6)"
fi
