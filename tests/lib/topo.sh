# The reference scenario in network namespaces: topology, links, traffic.
# shellcheck shell=bash
#
#                                   100.64.101.0/30
#                       ppp0 ===== isp1 ---------------+
#     192.0.2.0/24     /  100.64.1.2 <-> 100.64.1.1     |
#  lan ---eth0--- srv                                   inet   local 203.0.113.0/24
#  192.0.2.2    192.0.2.1                               |      local 198.51.100.0/25
#                      \  100.64.2.2 <-> 100.64.2.1     |
#                       ppp1 ===== isp2 ---------------+
#                                   |   100.64.102.0/30
#                                  adm  local 198.51.100.192/26 ("ISP2's control
#                                       panel"; its admin host is 198.51.100.200)
#
# ===  a point-to-point veth standing in for a ppp unit: /32 peer addresses, no
#      ARP (both ends share one MAC), created when the link comes up and deleted
#      when it goes down, as pppd does with its unit.
# isp1/isp2 drop packets from their customer port whose source is not the
# customer's address (strict rp_filter), as real ISPs do: a flow answered with
# ISP1's address can only have left srv by ppp0.  Every ISP counts what enters
# from its customer port (raw PREROUTING counters; isp_count).
# inet owns every "internet" address and routes each ISP's customer range back
# through that ISP; adm sits behind isp2 and is reachable from inet via isp2.
#
# Every namespace name carries this shell's PID (mh<PID>-srv ...), every run
# gets its own MULTIHOME_RUNDIR, and topo_destroy (trapped on EXIT by
# topo_create) removes all of it, on failure too.

MH_TOP=${MH_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MH_BUILD=${MH_BUILD:-$MH_TOP/build}
PROBE=$MH_BUILD/mh-probe
HARNESS=${MH_PPPD_HARNESS:-$MH_BUILD/mh-pppd-harness}
PLUGIN=${MH_PPPD_PLUGIN:-$MH_BUILD/multihome.so}

# shellcheck source=ns.sh
. "$MH_TOP/tests/lib/ns.sh"
TOPO_NS="lan srv isp1 isp2 inet adm"
TOPO_DIR=
TOPO_UP=

# The links of the scenario.
declare -A LINK_IF=([isp1]=ppp0 [isp2]=ppp1)
declare -A LINK_UPS=()  # how many "NAME up on" lines the log had before a start
declare -A LINK_LOCAL=([isp1]=100.64.1.2 [isp2]=100.64.2.2)
declare -A LINK_PEER=([isp1]=100.64.1.1 [isp2]=100.64.2.1)
declare -A LINK_TABLE=([isp1]=101 [isp2]=102)
declare -A LINK_PID=()
declare -A LINK_ADDR=()         # the address the link has now (dynamic ISP2)

# shellcheck disable=SC2034  # used by the scripts that source this file
LAN_CLIENT=192.0.2.2
SRV_LAN=192.0.2.1
# shellcheck disable=SC2034
ADMIN_HOST=198.51.100.200       # ISP2's admin, inside ISP2's pinned /26
ISP2_PANEL_NET=198.51.100.192/26
# shellcheck disable=SC2034
PANEL_RANGE=198.51.100.193-254  # every address of that /26 answers

SERVE_PIDS=()


# topo_have_tools: the build products every namespace test needs.
topo_missing() {
	local f missing=
	for f in "$PROBE" "$HARNESS" "$PLUGIN"; do
		[ -x "$f" ] || [ -f "$f" ] || missing="$missing ${f#"$MH_TOP"/}"
	done
	echo "${missing# }"
}

topo_create() {
	local ns
	[ -n "$TOPO_UP" ] && topo_destroy
	TOPO_DIR=$(mktemp -d /tmp/mh-topo.XXXXXX)
	export MULTIHOME_RUNDIR=$TOPO_DIR/run
	mkdir -p "$MULTIHOME_RUNDIR"
	TOPO_UP=1
	if [ -z "${_topo_trapped:-}" ]; then
		# Keep whatever EXIT trap the caller had (check.sh's summary) after ours.
		local prev
		prev=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
		# shellcheck disable=SC2064
		trap "topo_destroy; $prev" EXIT
		trap 'exit 130' INT TERM
		_topo_trapped=1
	fi

	for ns in $TOPO_NS; do
		ns_add "$ns" || return 1
	done

	# lan <-> srv
	nsx srv ip link add eth0 type veth peer name eth0 netns "$(ns_name lan)"
	nsx srv ip addr add $SRV_LAN/24 dev eth0
	nsx srv ip link set eth0 up
	nsx lan ip addr add $LAN_CLIENT/24 dev eth0
	nsx lan ip link set eth0 up
	nsx lan ip route add default via $SRV_LAN
	ns_sysctl srv net.ipv4.ip_forward=1
	# Repeatable balancing: a fixed multipath hash seed (per netns, >= 6.11).
	if [ -e /proc/sys/net/ipv4/fib_multipath_hash_seed ]; then
		ns_sysctl srv net.ipv4.fib_multipath_hash_seed="${MH_HASH_SEED:-12345}"
	fi

	# isp1/isp2 <-> inet
	local i
	for i in 1 2; do
		nsx "isp$i" ip link add wan type veth peer name "isp$i" netns "$(ns_name inet)"
		nsx "isp$i" ip addr add "100.64.10$i.1/30" dev wan
		nsx "isp$i" ip link set wan up
		nsx inet ip addr add "100.64.10$i.2/30" dev "isp$i"
		nsx inet ip link set "isp$i" up
		nsx "isp$i" ip route add default via "100.64.10$i.2"
		nsx inet ip route add "100.64.$i.0/24" via "100.64.10$i.1"
		ns_sysctl "isp$i" net.ipv4.ip_forward=1 \
			net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1
		# What enters an ISP from its customer (srv) port.
		nsx "isp$i" iptables-legacy -t raw -A PREROUTING -i cust -p tcp --syn
		nsx "isp$i" iptables-legacy -t raw -A PREROUTING -i cust -p udp
		nsx "isp$i" iptables-legacy -t raw -A PREROUTING -i cust
	done
	ns_sysctl inet net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=1 \
		net.ipv4.conf.default.rp_filter=1
	nsx inet ip route add local 203.0.113.0/24 dev lo
	nsx inet ip route add local 198.51.100.0/25 dev lo

	# adm behind isp2
	nsx isp2 ip link add adm type veth peer name eth0 netns "$(ns_name adm)"
	nsx isp2 ip addr add 198.51.100.190/32 peer 198.51.100.191 dev adm
	nsx isp2 ip link set adm up
	nsx isp2 ip route add $ISP2_PANEL_NET via 198.51.100.191
	nsx adm ip addr add 198.51.100.191/32 peer 198.51.100.190 dev eth0
	nsx adm ip link set eth0 up
	nsx adm ip route add default via 198.51.100.190
	nsx adm ip route add local $ISP2_PANEL_NET dev lo
	nsx inet ip route add $ISP2_PANEL_NET via 100.64.102.1

	# The far ends answer on these ports.
	serve_start inet --tcp 80 --tcp 25 --udp 1130 --udp 53 || return 1
	serve_start adm --tcp 80 --tcp 25 || return 1
}

# serve_start NS ARGS...: a background mh-probe server, ready on return.
serve_start() {
	local ns=$1 log
	shift
	log=$TOPO_DIR/serve-$ns-${#SERVE_PIDS[@]}.log
	ip netns exec "$(ns_name "$ns")" "$PROBE" serve --max-time 900 "$@" >"$log" 2>&1 &
	SERVE_PIDS+=($!)
	local t
	for t in $(seq 50); do
		grep -q ready "$log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "mh-probe serve in $ns did not start: $(cat "$log")" >&2
	return 1
}

_kill_wait() { # PID SIGNAL: signal, then wait for it up to 5 s, then KILL
	local pid=$1 sig=$2 t
	kill -"$sig" "$pid" 2>/dev/null || return 0
	for t in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 1
	fi
	wait "$pid" 2>/dev/null
	return 0
}

topo_destroy() {
	local name pid ns
	[ -z "$TOPO_UP" ] && return 0
	for name in "${!LINK_PID[@]}"; do
		pid=${LINK_PID[$name]}
		[ -n "$pid" ] && _kill_wait "$pid" TERM
	done
	LINK_PID=()
	for pid in "${SERVE_PIDS[@]}"; do
		_kill_wait "$pid" TERM
	done
	SERVE_PIDS=()
	ns_cleanup     # and whatever still runs in them (a watcher, a server)
	[ -n "$TOPO_DIR" ] && [ -z "${MH_KEEP:-}" ] && rm -rf "$TOPO_DIR"
	TOPO_UP=
}

# ---- links: pppd, played by the harness ----

# peers_file NAME: the peers file of link NAME (the article's configuration;
# extra option lines may follow in $LINK_EXTRA_<name>).
peers_file() {
	local name=$1 f=$TOPO_DIR/peers-$1
	{
		echo "plugin $PLUGIN"
		echo "multihome-name $name"
		echo "multihome-table ${LINK_TABLE[$name]}"
		case $name in
		isp1)
			echo "multihome-mark 0x1"
			echo "multihome-priority 101"
			echo "multihome-weight 8"
			echo 'multihome-pin "tcp port 25"'
			echo 'multihome-pin "udp 203.0.113.130 port 1130"'
			;;
		isp2)
			echo "multihome-mark 0x2"
			echo "multihome-priority 102"
			echo "multihome-weight 2"
			echo "multihome-pin $ISP2_PANEL_NET"
			;;
		esac
		local extra="LINK_EXTRA_$name"
		[ -n "${!extra:-}" ] && printf '%s\n' "${!extra}"
	} >"$f"
	echo "$f"
}

# link_device NAME [LOCAL]: what pppd's establishing the unit does: the ppp
# device appears, addressed, with the ISP's end.
link_device() {
	local name=$1 addr=${2:-${LINK_LOCAL[$1]}}
	local dev=${LINK_IF[$1]} peer=${LINK_PEER[$1]} mac
	nsx srv ip link add "$dev" type veth peer name cust netns "$(ns_name "$name")" || return 1
	mac=$(nsx srv cat "/sys/class/net/$dev/address")
	nsx "$name" ip link set cust address "$mac"
	nsx srv ip link set "$dev" arp off mtu 1492
	nsx "$name" ip link set cust arp off mtu 1492
	nsx "$name" ip addr add "$peer/32" peer "$addr/32" dev cust
	nsx "$name" ip link set cust up
	ns_sysctl "$name" net.ipv4.conf.cust.rp_filter=1
	nsx srv ip addr add "$addr/32" peer "$peer/32" dev "$dev"
	nsx srv ip link set "$dev" up
	LINK_ADDR[$name]=$addr
}

# link_start NAME [LOCAL]: bring link NAME up: device, then a pppd (harness)
# that runs ip-up and stays up until link_stop.  Returns once the link's
# table has its default route (or fails after 5 s).
link_start() {
	link_spawn "$@" && link_wait_up "$1"
}

# link_spawn NAME [LOCAL]: device and pppd, without waiting for ip-up.
link_spawn() {
	link_device "$1" "${2:-${LINK_LOCAL[$1]}}" || return 1
	link_pppd "$@"
}

# link_pppd NAME [LOCAL]: the pppd (harness) on the device link_device made;
# traffic in between leaves by the other links, as between a real unit's
# coming up and its ip-up.
link_pppd() {
	local name=$1 addr=${2:-${LINK_LOCAL[$1]}} peers
	peers=$(peers_file "$name")
	LINK_UPS[$name]=$(grep -c "$name up on " "$TOPO_DIR/$name.log" 2>/dev/null || true)
	ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" \
		"$HARNESS" --file "$peers" \
		--plugin "$PLUGIN" --ifname "${LINK_IF[$name]}" --local "$addr" \
		--remote "${LINK_PEER[$name]}" --linkname "$name" up wait down exit \
		>>"$TOPO_DIR/$name.log" 2>&1 &
	LINK_PID[$name]=$!
}

# link_wait_up NAME: wait (5 s at most) until the plugin logged the link up
# (the whole event is done then: routes, rules and firewall) and its table
# has the route.
link_wait_up() {
	local name=$1 t ups
	for t in $(seq 100); do
		ups=$(grep -c "$name up on " "$TOPO_DIR/$name.log" 2>/dev/null)
		if [ "${ups:-0}" -gt "${LINK_UPS[$name]:-0}" ] &&
			nsx srv ip route show table "${LINK_TABLE[$name]}" 2>/dev/null | grep -q '^default'; then
			return 0
		fi
		kill -0 "${LINK_PID[$name]}" 2>/dev/null || break
		sleep 0.05
	done
	echo "link $name did not come up; harness log:" >&2
	tail -n 20 "$TOPO_DIR/$name.log" >&2
	return 1
}

# link_stop NAME term|kill: pppd stops (SIGTERM: ip-down runs) or is killed
# (SIGKILL: nothing runs); then the unit disappears, as the kernel does when
# pppd closes /dev/ppp.
link_stop() {
	local name=$1 how=${2:-term} pid=${LINK_PID[$1]:-} rc=0
	if [ -n "$pid" ]; then
		if [ "$how" = kill ]; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		else
			_kill_wait "$pid" TERM || rc=1
		fi
	fi
	unset "LINK_PID[$name]"
	nsx srv ip link del "${LINK_IF[$name]}" 2>/dev/null
	return $rc
}

# link_watcher NAME: the pid of the watcher multihome.so started for link
# NAME's pppd (mh-watch, holding a pidfd of it)
link_watcher() {
	local host=${LINK_PID[$1]:-} p f
	[ -n "$host" ] || return 1
	for p in $(ip netns pids "$(ns_name srv)"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = mh-watch ] || continue
		for f in /proc/"$p"/fdinfo/*; do
			grep -qx "Pid:[[:space:]]*$host" "$f" 2>/dev/null && { echo "$p"; return 0; }
		done
	done
	return 1
}

# links_stop_together NAME...: SIGTERM to every pppd at once, then wait.
links_stop_together() {
	local name rc=0
	for name in "$@"; do
		[ -n "${LINK_PID[$name]:-}" ] && kill -TERM "${LINK_PID[$name]}" 2>/dev/null
	done
	for name in "$@"; do
		link_stop "$name" term || rc=1
	done
	return $rc
}

# ---- traffic ----

# probe NS ARGS...: mh-probe connect from namespace NS (bounded: 60 s max).
probe() {
	local ns=$1
	shift
	nsx "$ns" "$PROBE" connect --timeout 1500 --parallel 64 --max-time 60000 "$@"
}

# tally < probe-output: "total answered isp1 isp2 other" where isp1/isp2
# count answers whose far end saw that link's current address.
tally() {
	awk -v a1="${LINK_ADDR[isp1]:-${LINK_LOCAL[isp1]}}" \
	    -v a2="${LINK_ADDR[isp2]:-${LINK_LOCAL[isp2]}}" '
		{ n++ }
		$2 ~ /^seen=/ { ok++; split(substr($2, 6), s, ":");
			if (s[1] == a1) i1++; else if (s[1] == a2) i2++; else other++ }
		END { printf "%d %d %d %d %d\n", n, ok, i1, i2, other }'
}

# isp_zero; isp_count ISP tcp|udp|all: packets that entered ISP from srv
# (tcp = SYNs only, i.e. new connections) since isp_zero.
isp_zero() {
	nsx isp1 iptables-legacy -t raw -Z PREROUTING
	nsx isp2 iptables-legacy -t raw -Z PREROUTING
}
isp_count() {
	local isp=$1 what=$2 n
	case $what in tcp) n=1 ;; udp) n=2 ;; *) n=3 ;; esac
	nsx "$isp" iptables-legacy -t raw -L PREROUTING -v -x -n | awk -v n="$n" 'NR == 2 + n { print $1 }'
}

# tx_packets NS DEV: packets the device has sent.
tx_packets() {
	nsx "$1" cat "/sys/class/net/$2/statistics/tx_packets" 2>/dev/null || echo 0
}

# srv_state: everything a multihome event may touch in srv, as text.
srv_state() {
	echo "== ip rule"; nsx srv ip rule show
	echo "== ip route table all"; nsx srv ip route show table all
	echo "== ip nexthop"; nsx srv ip nexthop show 2>&1
	local t
	for t in raw mangle nat filter; do
		echo "== iptables-legacy -t $t -S"
		nsx srv iptables-legacy -t $t -S
	done
	echo "== sysctl"
	nsx srv sysctl net.ipv4.ip_forward net.ipv4.conf.all.rp_filter \
		net.ipv4.conf.all.src_valid_mark net.ipv4.conf.eth0.rp_filter \
		net.ipv4.conf.eth0.src_valid_mark
}
