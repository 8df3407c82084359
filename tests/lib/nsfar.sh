# Namespace helpers shared by tests/ns/{badinput,concurrency,faults,foreign}.sh.
# Source after setting GROUP (a short name used in namespace names).
# shellcheck shell=bash
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
HARNESS=${MH_PPPD_HARNESS:-$TOP/build/mh-pppd-harness}
PLUGIN=${MH_PPPD_PLUGIN:-$TOP/build/multihome.so}
PROBE=$TOP/build/mh-probe
NS_ID=mh$$${GROUP:-x}
# shellcheck source=ns.sh
. "$TOP/tests/lib/ns.sh"
SRV=$(ns_name srv)
FAR=$(ns_name far)
TMP=$(mktemp -d "/tmp/mh-$GROUP.XXXXXX")
chmod 755 "$TMP"
export MULTIHOME_RUNDIR=$TMP/run
declare -A ADDR=()      # link k -> its local address now
BG=()

cleanup() {
	local p rc=0
	for p in "${BG[@]}"; do kill -KILL "$p" 2>/dev/null; done
	ns_cleanup
	wait 2>/dev/null
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

need_tools() {
	local f
	for f in "$HARNESS" "$PLUGIN" "$PROBE"; do
		[ -e "$f" ] || { skip "$GROUP: namespace tests" "$f not built"; exit 0; }
	done
	[ "$(id -u)" = 0 ] || { skip "$GROUP: namespace tests" "needs root"; exit 0; }
}

net_create() {
	ns_add srv && ns_add far || return 1
	nsx srv sysctl -qw net.ipv4.ip_forward=1 >/dev/null
	nsx far sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 >/dev/null
	nsx far ip route add local 203.0.113.0/24 dev lo
	# srv's LAN
	nsx srv ip link add lan0 type veth peer name lan0p
	nsx srv ip addr add 192.0.2.1/24 dev lan0
	nsx srv ip link set lan0p up
	nsx srv ip link set lan0 up
	nsx far "$PROBE" serve --udp 7000 --udp 7001 --max-time 900 >"$TMP/serve.log" 2>&1 &
	BG+=($!)
	disown $!
	for n in $(seq 50); do grep -q ready "$TMP/serve.log" && return 0; sleep 0.05; done
	echo "mh-probe serve did not start" >&2
	return 1
}

# dev_add K [LOCAL]: link K's unit appears, addressed (a new ifindex each time).
dev_add() {
	local k=$1 a=${2:-100.64.$1.2} mac
	nsx srv ip link add "ppp$k" type veth peer name "c$k" netns "$FAR" || return 1
	mac=$(nsx srv cat "/sys/class/net/ppp$k/address")
	nsx far ip link set "c$k" address "$mac"
	nsx srv ip link set "ppp$k" arp off
	nsx far ip link set "c$k" arp off
	nsx far ip addr add "100.64.$k.1/32" peer "$a/32" dev "c$k"
	nsx far sysctl -qw "net.ipv4.conf.c$k.rp_filter=1" >/dev/null
	nsx far ip link set "c$k" up
	nsx srv ip addr add "$a/32" peer "100.64.$k.1/32" dev "ppp$k"
	nsx srv ip link set "ppp$k" up
	ADDR[$k]=$a
}
dev_del() { nsx srv ip link del "ppp$1" 2>/dev/null; return 0; }
# dev_readdr K NEW: the far end hands out a new address on the same unit.
dev_readdr() {
	local k=$1 a=$2 old=${ADDR[$1]}
	nsx srv ip addr del "$old/32" peer "100.64.$k.1/32" dev "ppp$k"
	nsx srv ip addr add "$a/32" peer "100.64.$k.1/32" dev "ppp$k"
	nsx far ip addr del "100.64.$k.1/32" peer "$old/32" dev "c$k"
	nsx far ip addr add "100.64.$k.1/32" peer "$a/32" dev "c$k"
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
	nsx srv "$HARNESS" "${HXA[@]}" "$@"
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
	nsx srv ip nexthop show 2>/dev/null | awk '
		$1 == "id" && $3 == "dev" { printf "s/\\<%s\\>/nh(%s)/g\n", $2, $4 }
		$1 == "id" && $3 == "group" { printf "s/\\<%s\\>/nh(group)/g\n", $2 }' >"$sedf"
	{
		echo "== rules"; nsx srv ip rule show
		echo "== routes"; nsx srv ip route show table all | grep -v -e '^local ' -e '^broadcast ' \
			-e 'table local' -e 'proto kernel' | sed -f "$sedf" | sort
		echo "== nexthops"; nsx srv ip nexthop show 2>/dev/null | sed -f "$sedf" | sort
		echo "== mangle"; nsx srv iptables-legacy-save -t mangle | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
		echo "== nat"; nsx srv iptables-legacy-save -t nat | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
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
			# the fwmark rule and the source rule; its pin falls through, so
			# it is no rule (only a strict link's pins are)
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
	out=$(nsx srv "$PROBE" connect --udp --port 7000 --timeout 1000 --parallel 16 $dests 2>&1)
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
		out=$(nsx srv "$PROBE" connect --udp --port 7000 --timeout 1000 --bind "${ADDR[$j]}" 203.0.113.200 2>&1)
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
