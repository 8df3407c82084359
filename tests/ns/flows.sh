#!/usr/bin/env bash
# Flows follow the links (issue 16), proved with long-lived UDP flows whose
# far end keeps sending too (keepalives every 100 ms, as OpenVPN's server).
#
#                       ppp0 ===== isp1 ----+
#  lan ---eth0--- srv                       inet   mh-udpflow far on udp/1131
#                       ppp1 ===== isp2 ----+      (pinned to ISP1) and udp/1132
#
# (tests/lib/topo.sh; here isp1 pins "udp 203.0.113.0/24 port 1131")
#
#   come_home_isp1 / come_home_isp2
#       ISP1 down: pinned flows of every kind leave by ISP2 (host: unbound,
#       connected, bound to ISP2's address; a LAN client); ISP1's device comes
#       back and more flows start before its ip-up (connected, bound to ISP1's
#       address, unbound, LAN); at ip-up the far end bursts keepalives (one a
#       millisecond for 600 ms) to the addresses it knows.  Every flow must
#       leave by ISP1 within 2 s and stay there.  Run once for a far end the
#       balanced route sends by ISP1 (so an unbound socket's source changes)
#       and once for one it sends by ISP2 (the source stays ISP2's address).
#   move_on_masquerade / move_on_snat (each after ip-down and after SIGKILL)
#       Flows that left by ISP1 (pinned and balanced; LAN and host; unbound
#       and connected sockets) must go on by ISP2 within 1 s.  A flow of ISP2,
#       an incoming connection to ISP2's address and a LAN flow to srv keep
#       their conntrack entries (same creation time): nothing else is touched.
#   watcher
#       The process multihome.so leaves behind each pppd holds nothing of it;
#       after a SIGKILL it withdraws the link as soon as the unit is gone.
#
# The far end's address for each case is chosen at run time among
# 203.0.113.0/24 by asking srv's balanced route, so each case has the outcome
# it names whatever the multipath hash.  Every TEST line says which link each
# flow left by before and after, and how long it took to move.
#
#   tests/ns/flows.sh [CHECK...]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=../lib/topo.sh
. "$HERE/../lib/topo.sh"

CHECKS="come_home_isp1 come_home_isp2 move_on_masquerade move_on_snat watcher"
FLOW=$MH_BUILD/mh-udpflow
CTL=$MH_BUILD/mh-ct
PINNED=1131
FREE=1132
A1=${LINK_LOCAL[isp1]}
A2=${LINK_LOCAL[isp2]}

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

link_of() {
	case $1 in
	"$A1") echo ISP1 ;;
	"$A2") echo ISP2 ;;
	*) echo "$1" ;;
	esac
}

# far_start: the far ends in inet; ready on return
far_start() {
	local port
	for port in $PINNED $FREE; do
		ip netns exec "$(ns_name inet)" "$FLOW" far --port $port --max-time 120 >"$TOPO_DIR/far-$port" 2>&1 &
		SERVE_PIDS+=($!)
		FAR_PID[$port]=$!
	done
	for _ in $(seq 50); do
		grep -qs ready "$TOPO_DIR/far-$PINNED" && grep -qs ready "$TOPO_DIR/far-$FREE" && return 0
		sleep 0.05
	done
	return 1
}
declare -A FAR_PID=()

# flow NAME NS ARGS...: a client flow in NS, logged to flow-NAME
FLOW_ID=0
flow() {
	local name=$1 ns=$2
	shift 2
	FLOW_ID=$((FLOW_ID + 1))
	ip netns exec "$(ns_name "$ns")" "$FLOW" client --id $FLOW_ID "$@" >"$TOPO_DIR/flow-$name" 2>&1 &
	SERVE_PIDS+=($!)
}

# first_dst WANT [ROUTE-ARGS...]: the first of 203.0.113.1-254 whose route in
# srv (ip route get ADDR ROUTE-ARGS) leaves by device WANT
first_dst() {
	local want=$1 x
	shift
	for x in $(seq 1 254); do
		if nsx srv ip -4 route get "203.0.113.$x" "$@" 2>/dev/null | grep -q "dev $want "; then
			echo "203.0.113.$x"
			return 0
		fi
	done
	return 1
}

# flow_eval NAME T0: what the far end saw of flow NAME before and after T0
# (ms).  Sets BEFORE AFTER (links), MOVED (ms from T0 to the answer from
# which on every answer came by AFTER; 0 if AFTER's run began before T0),
# NAFTER (answers in that run after T0), ERRS (send errors after T0), LASTERR.
flow_eval() {
	local out
	out=$(awk -v t0="$2" '
		/^ans / { split($2, a, "="); split($4, s, "="); split(s[2], h, ":");
			n++; at[n] = a[2]; seen[n] = h[1] }
		/^err / { split($2, a, "="); if (a[2] >= t0) { errs++; sub(/^.*error=/, ""); last = $0 } }
		END {
			before = "none"
			for (i = 1; i <= n; i++) if (at[i] < t0) before = seen[i]
			after = n ? seen[n] : "none"
			k = n; while (k > 1 && seen[k - 1] == after) k--
			moved = (n && at[k] >= t0) ? at[k] - t0 : 0
			for (i = k; i <= n; i++) if (at[i] >= t0) nafter++
			if (!nafter) after = "none"
			gsub(/ /, "_", last)
			printf "%s %s %d %d %d %s\n", before, after, moved, nafter, errs, last == "" ? "-" : last
		}' "$TOPO_DIR/flow-$1")
	read -r BEFORE AFTER MOVED NAFTER ERRS LASTERR <<<"$out"
	BEFORE=$(link_of "$BEFORE")
	AFTER=$(link_of "$AFTER")
}

# flow_src NAME: the flow's own address and port, as its socket has it
flow_src() { sed -n 's/^start at=[0-9]* src=//p' "$TOPO_DIR/flow-$1"; }
flow_port() { flow_src "$1" | cut -d: -f2; }

# ct_entry PATTERN: the conntrack entry of srv matching PATTERN (id and start)
ct_entry() { nsx srv "$CTL" list | grep -e "$1" | awk '{ print $2, $3 }' | head -n 1; }

flows_up() { # CHECK: topology and both links, conntrack timestamps on
	if ! topo_create || ! far_start; then
		not_ok "$1: topology and far ends"
		topo_destroy
		return 1
	fi
	ns_sysctl srv net.netfilter.nf_conntrack_timestamp=1
	if ! link_start isp1 || ! link_start isp2; then
		not_ok "$1: links isp1 and isp2 come up" "$(tail -n 5 "$TOPO_DIR"/isp*.log 2>/dev/null)"
		topo_destroy
		return 1
	fi
}

# ---- part 1: a pinned flow comes home ----

# come_home VIA: the far end is one the balanced route sends by VIA (ppp0|ppp1)
come_home() {
	local via=$1 R t0 name what moved ok_all=1
	local LINK_EXTRA_isp1="multihome-pin \"udp 203.0.113.0/24 port $PINNED\""
	flows_up "come home ($via)" || return 0
	R=$(first_dst "$via")
	if [ -z "$R" ]; then
		not_ok "come home: a far end the balanced route sends by $via" "$(nsx srv ip route show)"
		topo_destroy
		return 0
	fi
	what="far end $R, balanced by $([ "$via" = ppp0 ] && echo ISP1 || echo ISP2)"
	link_stop isp1 term
	flow unbound srv --port $PINNED --duration-ms 9000 "$R"
	flow connected srv --port $PINNED --connect --duration-ms 9000 "$R"
	flow bound-isp2 srv --port $PINNED --bind "$A2" --duration-ms 9000 "$R"
	flow lan lan --port $PINNED --duration-ms 9000 "$R"
	sleep 1.5
	# the unit is back, ip-up has not run: these leave by ISP2 too
	link_device isp1
	flow gap-connected srv --port $PINNED --connect --duration-ms 7000 "$R"
	flow gap-bound-isp1 srv --port $PINNED --bind "$A1" --duration-ms 7000 "$R"
	flow gap-unbound srv --port $PINNED --duration-ms 7000 "$R"
	flow gap-lan lan --port $PINNED --duration-ms 7000 "$R"
	sleep 0.7
	kill -USR1 "${FAR_PID[$PINNED]}"
	t0=$(now_ms)
	link_pppd isp1
	link_wait_up isp1 || not_ok "come home: ISP1's ip-up" "$(tail -n 5 "$TOPO_DIR/isp1.log")"
	sleep 4
	for name in unbound connected bound-isp2 lan gap-connected gap-bound-isp1 gap-unbound gap-lan; do
		flow_eval "$name" "$t0"
		moved="by $BEFORE before ISP1's return, by $AFTER after it, moved in $MOVED ms"
		if [ "$BEFORE" = ISP2 ] && [ "$AFTER" = ISP1 ] && [ "$MOVED" -le 2000 ] && [ "$NAFTER" -ge 15 ]; then
			ok "come home ($what): $name flow $moved"
		else
			ok_all=0
			not_ok "come home ($what): $name flow $moved" \
				"$NAFTER answers by $AFTER after the move, $ERRS send errors ($LASTERR); $(tail -n 2 "$TOPO_DIR/flow-$name" | tr '\n' ' ')"
		fi
	done
	[ $ok_all = 1 ] || nsx srv "$CTL" list | grep ":$PINNED " | sed 's/^/      /'
	topo_destroy
}

come_home_isp1() { come_home ppp0; }
come_home_isp2() { come_home ppp1; }

# ---- part 2: a dead link's flows move on ----

# move_on NAT HOW: ISP1 (and ISP2) with nat NAT; ISP1 goes by HOW (term|kill)
move_on() {
	local nat=$1 how=$2 R1 R2 t0 name e1 e2 e3 s0 s1 x label ok_all=1 untouched
	local LINK_EXTRA_isp1="multihome-pin \"udp 203.0.113.0/24 port $PINNED\""$'\n'"multihome-nat $nat"
	local LINK_EXTRA_isp2="multihome-nat $nat"
	label="move on ($nat, $([ "$how" = term ] && echo "ip-down, unit gone 1.5 s later" || echo "SIGKILL, unit gone"))"
	flows_up "$label" || return 0
	# R1: pinned to ISP1, the balanced route sends it by ISP2 (a host socket
	# then has ISP2's source address, NATed to ISP1's).  R2: not pinned, the
	# balanced route sends it by ISP1, for the host and for the LAN client.
	R1=$(first_dst ppp1)
	R2=
	for x in $(seq 1 254); do
		if nsx srv ip -4 route get "203.0.113.$x" | grep -q "dev ppp0 " &&
			nsx srv ip -4 route get "203.0.113.$x" from $LAN_CLIENT iif eth0 | grep -q "dev ppp0 "; then
			R2=203.0.113.$x
			break
		fi
	done
	if [ -z "$R1" ] || [ -z "$R2" ]; then
		not_ok "$label: far ends balanced by ISP2 ($R1) and by ISP1 for host and LAN ($R2)"
		topo_destroy
		return 0
	fi
	ip netns exec "$(ns_name srv)" "$FLOW" far --port 7001 --max-time 60 >"$TOPO_DIR/far-srv" 2>&1 &
	SERVE_PIDS+=($!)
	for _ in $(seq 50); do grep -qs ready "$TOPO_DIR/far-srv" && break; sleep 0.05; done
	flow lan-pinned lan --port $PINNED --duration-ms 8000 "$R1"
	flow lan-balanced lan --port $FREE --duration-ms 8000 "$R2"
	flow host-balanced srv --port $FREE --duration-ms 8000 "$R2"
	flow host-pinned srv --port $PINNED --duration-ms 8000 "$R1"
	flow host-connected srv --port $PINNED --connect --duration-ms 8000 "$R1"
	flow host-from-isp1 srv --port $PINNED --bind "$A1" --connect --duration-ms 8000 "$R1"
	# not to be touched: a flow of ISP2, an incoming one to ISP2's address, a LAN one to srv
	flow isp2-flow srv --port $FREE --bind "$A2" --duration-ms 8000 "$R2"
	flow incoming inet --port 7001 --duration-ms 8000 "$A2"
	flow lan-srv lan --port 7001 --duration-ms 8000 $SRV_LAN
	sleep 2
	untouched=("orig=$(flow_src isp2-flow)>$R2:$FREE " "orig=[0-9.]*:$(flow_port incoming)>$A2:7001 "
		"orig=$LAN_CLIENT:$(flow_port lan-srv)>$SRV_LAN:7001 ")
	s0=""
	for e1 in "${untouched[@]}"; do
		s0="$s0|$(ct_entry "$e1")"
	done
	t0=$(now_ms)
	if [ "$how" = term ]; then
		# pppd's ip-down; the unit goes 1.5 s later (pppd downs it at once):
		# the flows must move on before the kernel's own flush of MASQUERADE
		_kill_wait "${LINK_PID[isp1]}" TERM
		unset "LINK_PID[isp1]"
		sleep 1.5
		nsx srv ip link del ppp0
		sleep 1.5
	else
		link_stop isp1 kill
		sleep 3
	fi
	for name in lan-pinned lan-balanced host-balanced host-pinned host-connected; do
		flow_eval "$name" "$t0"
		if [ "$BEFORE" = ISP1 ] && [ "$AFTER" = ISP2 ] && [ "$MOVED" -le 1000 ] && [ "$NAFTER" -ge 15 ]; then
			ok "$label: $name flow by $BEFORE before, by $AFTER after, moved in $MOVED ms"
		else
			ok_all=0
			not_ok "$label: $name flow by $BEFORE before, by $AFTER after, moved in $MOVED ms" \
				"$NAFTER answers after the move, $ERRS send errors ($LASTERR)"
		fi
	done
	flow_eval host-from-isp1 "$t0"
	if [ "$BEFORE" = ISP1 ] && [ "$ERRS" -gt 0 ]; then
		ok "$label: a host socket connected from ISP1's address gets an error once the unit is gone (${LASTERR//_/ }): the application's to redo"
	else
		not_ok "$label: a host socket connected from ISP1's address gets an error once the unit is gone" \
			"by $BEFORE before, by $AFTER after, $ERRS errors ($LASTERR)"
	fi
	flow_eval isp2-flow "$t0"
	s1=""
	for e1 in "${untouched[@]}"; do
		s1="$s1|$(ct_entry "$e1")"
	done
	IFS='|' read -r _ e1 e2 e3 <<<"$s0"
	if [ "$s0" = "$s1" ] && [ -n "$e1" ] && [ -n "$e2" ] && [ -n "$e3" ] && [ "$AFTER" = ISP2 ] && [ "$NAFTER" -ge 25 ]; then
		ok "$label: ISP2's own flow, an incoming flow to ISP2's address, a LAN flow to srv: same conntrack entries"
	else
		ok_all=0
		not_ok "$label: ISP2's own flow, an incoming flow to ISP2's address, a LAN flow to srv: same conntrack entries" \
			"before $s0; after $s1; ISP2 flow by $AFTER, $NAFTER answers"
	fi
	[ $ok_all = 1 ] || nsx srv "$CTL" list | sed 's/^/      /' | head -n 20
	topo_destroy
}

move_on_masquerade() { move_on masquerade term; move_on masquerade kill; }
move_on_snat() { move_on snat term; move_on snat kill; }

# ---- the watcher: what a SIGKILLed pppd cannot do ----

# detached PID HOST: nothing of the host left in PID
detached() {
	local p=$1 host=$2 f t
	for f in /proc/"$p"/fd/*; do
		t=$(readlink "$f")
		case $t in /dev/null | socket:* | anon_inode:\[pidfd\]) ;; *) echo "holds $t"; return 1 ;; esac
	done
	# signals 32 and 33 are glibc's own (no sigaction can change them): an
	# ignore of them inherited from whoever started the test is not ours
	local k v left=0
	while read -r k v; do
		case $k in SigBlk: | SigCgt:) left=$((left | 16#$v)) ;; SigIgn:) left=$((left | (16#$v & ~0x180000000))) ;; esac
	done <"/proc/$p/status"
	[ "$left" = 0 ] || { grep -E '^Sig(Blk|Ign|Cgt)' "/proc/$p/status" | tr '\n' ' '; return 1; }
	[ "$(awk '{ print $6 }' "/proc/$p/stat")" = "$p" ] || { echo "not in a session of its own"; return 1; }
	[ "$(awk '{ print $4 }' "/proc/$p/stat")" != "$host" ] || { echo "a child of the host"; return 1; }
	grep -q '^Uid:[[:space:]]*0[[:space:]]*0[[:space:]]*0' "/proc/$p/status" || { echo "not root"; return 1; }
}

gone_within() { # MS PID: PID has exited within MS (a zombie has: init reaps it)
	local t
	for t in $(seq $(($1 / 20))); do
		[ "$(awk '{ print $3 }' "/proc/$2/stat" 2>/dev/null || echo X)" = Z ] && return 0
		kill -0 "$2" 2>/dev/null || return 0
		sleep 0.02
	done
	return 1
}

watcher() {
	local w1 w2 h1 h2 t0 t1 why=
	flows_up watcher || return 0
	h1=${LINK_PID[isp1]} h2=${LINK_PID[isp2]}
	w1=$(link_watcher isp1)
	w2=$(link_watcher isp2)
	if [ -n "$w1" ] && [ -n "$w2" ] && why=$(detached "$w1" "$h1") && why=$(detached "$w2" "$h2"); then
		ok "watcher: one per pppd; only /dev/null, its socket and pppd's pidfd open; default signals; own session; root"
	else
		not_ok "watcher: one per pppd; only /dev/null, its socket and pppd's pidfd open; default signals; own session; root" \
			"isp1's ${w1:-none}, isp2's ${w2:-none}: $why"
	fi
	_kill_wait "$h2" TERM
	unset "LINK_PID[isp2]"
	if [ -n "$w2" ] && gone_within 1000 "$w2" && [ -z "$(nsx srv ip -4 route show table 102)" ]; then
		ok "watcher: pppd of isp2 exits after ip-down: its watcher exits too"
	else
		not_ok "watcher: pppd of isp2 exits after ip-down: its watcher exits too" "watcher ${w2:-none}"
	fi
	nsx srv ip link del ppp1
	# SIGKILL: the unit goes with pppd (here 0.3 s later); the watcher prunes at once
	kill -KILL "$h1"
	wait "$h1" 2>/dev/null
	unset "LINK_PID[isp1]"
	sleep 0.3
	nsx srv ip -4 rule show | grep -q 'lookup 101' || why="withdrawn while its unit was still there"
	t0=$(now_ms)
	nsx srv ip link del ppp0
	for _ in $(seq 100); do
		nsx srv ip -4 rule show | grep -q 'lookup 101' || break
		sleep 0.01
	done
	t1=$(now_ms)
	if ! nsx srv ip -4 rule show | grep -q 'lookup 101' && [ -n "$w1" ] && gone_within 1000 "$w1" &&
		[ $((t1 - t0)) -le 1000 ] && [ -z "$why" ]; then
		ok "watcher: SIGKILL of isp1's pppd: withdrawn by its watcher $((t1 - t0)) ms after the unit went"
	else
		not_ok "watcher: SIGKILL of isp1's pppd: withdrawn by its watcher $((t1 - t0)) ms after the unit went" \
			"${why:-} $(nsx srv ip -4 rule show | grep 'lookup 101')"
	fi
	# a unit that outlives its pppd (no real pppd's does): left to the next event
	link_start isp2
	h2=${LINK_PID[isp2]}
	w2=$(link_watcher isp2)
	kill -KILL "$h2"
	wait "$h2" 2>/dev/null
	unset "LINK_PID[isp2]"
	if [ -n "$w2" ] && gone_within 3000 "$w2" && nsx srv ip -4 rule show | grep -q 'lookup 102'; then
		ok "watcher: SIGKILL of isp2's pppd, its unit left: the link stays for the next event, the watcher exits"
	else
		not_ok "watcher: SIGKILL of isp2's pppd, its unit left: the link stays for the next event, the watcher exits" \
			"watcher ${w2:-none}; $(nsx srv ip -4 rule show | grep 'lookup 102')"
	fi
	topo_destroy
}

main() {
	local c missing
	[ "$(id -u)" = 0 ] || { skip "flows" "needs root"; return 0; }
	missing=$(topo_missing)
	[ -x "$FLOW" ] && [ -x "$CTL" ] || missing="$missing mh-udpflow mh-ct"
	if [ -n "$missing" ]; then
		not_ok "flows: build products present" "missing: $missing (run make)"
		return 1
	fi
	local fails_before
	fails_before=$(grep -c '^fail' "$MH_RESULTS")
	for c in "$@"; do
		case " $CHECKS " in
		*" $c "*) echo "# $c"; "$c" ;;
		*) echo "unknown check '$c' (checks: $CHECKS)" >&2; return 2 ;;
		esac
	done
	[ "$(grep -c '^fail' "$MH_RESULTS")" = "$fails_before" ]
}

if [ $# -gt 0 ]; then main "$@"; else main $CHECKS; fi
