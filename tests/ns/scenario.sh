#!/usr/bin/env bash
# The reference scenario (DESIGN.md, issue 2), proved with traffic.
#
#                       ppp0 ===== isp1 ----+
#  lan ---eth0--- srv                       inet  (203.0.113.0/24, 198.51.100.0/25)
#                       ppp1 ===== isp2 ----+
#                                   |
#                                  adm   (198.51.100.192/26, ISP2's panel and admin)
#
# (addresses and the details in tests/lib/topo.sh)  isp1: weight 8, pins tcp/25
# and udp/1130 to 203.0.113.130; isp2: weight 2, pins 198.51.100.192/26.
# srv runs the real multihome.so in mh-pppd-harness, one per link, as pppd.
#
#   tests/ns/scenario.sh              every check
#   tests/ns/scenario.sh CHECK...     only those (names below)
#
# Each check builds its own topology and removes it.  Numbers each check
# measured are printed on its TEST lines.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=../lib/topo.sh
. "$HERE/../lib/topo.sh"

CHECKS="balancing pins pins_come_home replies_by_ingress nat lan_client updown killed_uplink"

# Balancing is measured over 380 distinct destinations (each one new
# connection); with a random hash key (kernels without the seed sysctl) the
# chance of an honest 8:2 split falling outside 80±7% is then below 0.1%.
BALANCE_DSTS="203.0.113.1-254 198.51.100.1-126"
HASH_SEED=$([ -e /proc/sys/net/ipv4/fib_multipath_hash_seed ] &&
	echo "hash seed ${MH_HASH_SEED:-12345}" || echo "random hash key")

A1=${LINK_LOCAL[isp1]}
A2=${LINK_LOCAL[isp2]}

# share_ok PART TOTAL: PART/TOTAL within 80% +- 7%.
share_ok() {
	local p=$1 t=$2
	[ "$t" -gt 0 ] && [ $((1000 * p)) -ge $((730 * t)) ] && [ $((1000 * p)) -le $((870 * t)) ]
}
pct() { [ "$2" -gt 0 ] && echo $((100 * $1 / $2)) || echo 0; }

# scenario_up CHECK: topology and both links; reports and fails on trouble.
scenario_up() {
	local check=$1
	if ! topo_create; then
		not_ok "$check: topology"
		topo_destroy
		return 1
	fi
	if ! link_start isp1 || ! link_start isp2; then
		not_ok "$check: links isp1 and isp2 come up" "$(tail -n 5 "$TOPO_DIR"/isp*.log 2>/dev/null)"
		topo_destroy
		return 1
	fi
	return 0
}

# measure NS ARGS...: run a probe; sets OUT N OK I1 I2 OTHER S1 S2 (SYNs, or
# UDP datagrams with --udp, that entered isp1/isp2 from srv).
measure() {
	local what=tcp
	case " $* " in *" --udp "*) what=udp ;; esac
	isp_zero
	OUT=$(probe "$@")
	read -r N OK I1 I2 OTHER <<<"$(tally <<<"$OUT")"
	S1=$(isp_count isp1 $what)
	S2=$(isp_count isp2 $what)
}

# entered_ok: the ISP counters agree with what the far end saw (a flow seen
# with ISP1's address entered isp1; retransmissions allowed, nothing extra).
entered_ok() {
	[ "$S1" -ge "$I1" ] && [ "$S2" -ge "$I2" ] && [ $((S1 + S2)) -le $((N + N / 20 + 2)) ]
}

detail() {
	echo "answered $OK/$N, far end saw ISP1 $I1, ISP2 $I2, other $OTHER; entered isp1 $S1, isp2 $S2"
	grep -v ' seen=' <<<"$OUT" | head -n 3 | sed 's/^/        not answered: /'
}

# ---- 1. balancing ----
balancing() {
	scenario_up balancing || return 0
	measure srv --port 80 $BALANCE_DSTS
	local msg
	msg="balancing: ISP1 share $I1/$N = $(pct "$I1" "$N")% (want 80±7%), ISP2 $I2; $HASH_SEED"
	if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && share_ok "$I1" "$N" && entered_ok; then
		ok "$msg"
	else
		not_ok "$msg" "$(detail)"
	fi
	topo_destroy
}

# ---- 2. pins ----
pins() {
	scenario_up pins || return 0
	local msg

	measure srv --port 25 203.0.113.1-250
	msg="pins: tcp/25 by ISP1: $I1/$N (entered isp2: $S2)"
	if [ "$I1" = "$N" ] && [ "$S2" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	measure srv --udp --port 1130 203.0.113.130 --repeat 10
	msg="pins: udp/1130 to the VPN server by ISP1: $I1/$N (entered isp2: $S2)"
	if [ "$I1" = "$N" ] && [ "$S2" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	measure srv --port 80 $PANEL_RANGE
	msg="pins: ISP2's panel $ISP2_PANEL_NET by ISP2: $I2/$N (entered isp1: $S1)"
	if [ "$I2" = "$N" ] && [ "$S1" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	if link_stop isp2 term; then
		measure srv --port 80 $PANEL_RANGE
		msg="pins: ISP2 down: its panel goes balanced (by ISP1): $I1/$N answered by ISP1"
		if [ "$OK" = "$N" ] && [ "$I1" = "$N" ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	else
		not_ok "pins: ISP2 stops on SIGTERM"
	fi

	if link_start isp2; then
		measure srv --port 80 $PANEL_RANGE
		msg="pins: ISP2 back: its panel by ISP2 again: $I2/$N (entered isp1: $S1)"
		if [ "$I2" = "$N" ] && [ "$S1" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	else
		not_ok "pins: ISP2 comes back" "$(tail -n 5 "$TOPO_DIR/isp2.log")"
	fi

	# A pinned link that is down falls through to the balanced default.
	if link_stop isp1 term; then
		measure srv --port 25 203.0.113.1-50
		msg="pins: ISP1 down: tcp/25 falls through to ISP2: $I2/$N"
		if [ "$OK" = "$N" ] && [ "$I2" = "$N" ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	else
		not_ok "pins: ISP1 stops on SIGTERM"
	fi
	if link_start isp1; then
		measure srv --port 25 203.0.113.1-50
		msg="pins: ISP1 back: tcp/25 by ISP1 again: $I1/$N (entered isp2: $S2)"
		if [ "$I1" = "$N" ] && [ "$S2" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	else
		not_ok "pins: ISP1 comes back" "$(tail -n 5 "$TOPO_DIR/isp1.log")"
	fi
	topo_destroy
}

# ---- 2b. a long-lived pinned flow returns to its link ----
# The article's VPN transport: one UDP flow (same socket, same 5-tuple) pinned
# to ISP1.  While ISP1 is down it leaves by ISP2 and its replies stamp ISP2's
# connmark on it; when ISP1 returns the flow must come home, not stay on ISP2
# for as long as it keeps talking.
pins_come_home() {
	local LINK_EXTRA_isp1='multihome-pin "udp 203.0.113.128/27 port 1131"'
	local flow before after line msg dst= x
	scenario_up pins_come_home || return 0
	flow="$TOPO_DIR/flow"
	if ! link_stop isp1 term; then
		not_ok "pins: ISP1 stops on SIGTERM"
		topo_destroy
		return 0
	fi
	# a destination the balanced route sends by ISP2 even with ISP1 up: the
	# socket's source address (and so the flow's 5-tuple) then stays the same
	# when ISP1 returns, the case where only multihome can bring it home
	link_start isp1 >/dev/null 2>&1
	for x in $(seq 129 158); do
		if nsx srv ip route get "203.0.113.$x" | grep -q 'dev ppp1'; then
			dst=203.0.113.$x
			break
		fi
	done
	link_stop isp1 term
	if [ -z "$dst" ]; then
		not_ok "pins: a destination balanced by ISP2 in 203.0.113.128/27"
		topo_destroy
		return 0
	fi
	nsx inet "$MH_TOP/build/mh-bench-flow" reflect --port 1131 --max-time 20 >"$TOPO_DIR/reflect" 2>&1 &
	SERVE_PIDS+=($!)
	for _ in $(seq 50); do grep -q ready "$TOPO_DIR/reflect" 2>/dev/null && break; sleep 0.05; done
	# one socket, a datagram every 2 ms for 4 s; ISP1 comes back after ~1 s
	# ("before" is what the far end saw at 500 ms: the sender's start may lag)
	nsx srv "$MH_TOP/build/mh-bench-flow" send --port 1131 --interval-us 2000 --duration-ms 4000 \
		--at-ms 500 --exec true "$dst" >"$flow" 2>&1 &
	local sender=$!
	sleep 1
	link_start isp1 || not_ok "pins: ISP1 comes back" "$(tail -n 5 "$TOPO_DIR/isp1.log")"
	wait "$sender"
	line=$(grep '^flow ' "$flow")
	before=$(sed -n 's/.* before=\([^ ]*\).*/\1/p' <<<"$line")
	after=$(sed -n 's/.* after=\([^ ]*\).*/\1/p' <<<"$line")
	msg="pins: one UDP flow to $dst pinned to ISP1: on ISP2 ($before) while ISP1 is down, back on ISP1 ($after) when it returns"
	if [ "$before" = "${LINK_LOCAL[isp2]}" ] && [ "$after" = "${LINK_LOCAL[isp1]}" ]; then
		ok "$msg"
	else
		not_ok "$msg" "$line"
	fi
	topo_destroy
}

# ---- 3. replies by ingress ----
# srv_replies NS ADDR PROBE-ARGS...: connect from NS to srv's ADDR:8080;
# sets R_OK R_N R_AT (answers that came from ADDR) R_SEEN D0 D1 (ppp0/ppp1 tx).
srv_replies() {
	local ns=$1 addr=$2 t0 t1
	shift 2
	t0=$(tx_packets srv ppp0)
	t1=$(tx_packets srv ppp1)
	OUT=$(probe "$ns" --port 8080 "$@")
	D0=$(($(tx_packets srv ppp0) - t0))
	D1=$(($(tx_packets srv ppp1) - t1))
	R_N=$(wc -l <<<"$OUT")
	R_OK=$(grep -c ' seen=' <<<"$OUT")
	R_AT=$(grep -c " at=$addr:8080 " <<<"$OUT")
}

replies_by_ingress() {
	scenario_up replies_by_ingress || return 0
	serve_start srv --tcp 8080 || { not_ok "replies: server on srv"; topo_destroy; return 0; }
	local msg

	# The admin's address is pinned to ISP2: srv's own connections to it go by ISP2.
	measure srv --port 80 $ADMIN_HOST --repeat 10
	msg="replies: srv -> ISP2's admin $ADMIN_HOST pinned by ISP2: $I2/$N"
	if [ "$I2" = "$N" ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	# The admin connects through ISP1 to srv's ISP1 address.
	srv_replies adm "$A1" --bind $ADMIN_HOST 100.64.1.2 --repeat 20
	local seen
	seen=$(grep -c " seen=$ADMIN_HOST:" <<<"$OUT")
	msg="replies: ISP2's admin -> $A1: answered $R_OK/$R_N from $A1 ($R_AT), ppp0 tx +$D0, ppp1 tx +$D1"
	if [ "$R_OK" = 20 ] && [ "$R_AT" = 20 ] && [ "$seen" = 20 ] && [ "$D0" -ge 40 ] && [ "$D1" = 0 ]; then
		ok "$msg"
	else
		not_ok "$msg" "srv saw the admin as itself in $seen/20; $(head -n 3 <<<"$OUT")"
	fi

	# Internet hosts (balanced 8:2 by the default route) connect to srv's ISP2
	# address: every answer leaves by ppp1.
	local k out="" r t0 t1
	t0=$(tx_packets srv ppp0)
	t1=$(tx_packets srv ppp1)
	out=""
	for k in $(seq 101 120); do
		r=$(probe inet --bind "203.0.113.$k" --port 8080 "$A2" 2>&1)
		out="$out$r"$'\n'
	done
	D0=$(($(tx_packets srv ppp0) - t0))
	D1=$(($(tx_packets srv ppp1) - t1))
	R_OK=$(grep -c ' seen=' <<<"$out")
	R_AT=$(grep -c " at=$A2:8080 " <<<"$out")
	msg="replies: 20 internet hosts -> $A2: answered $R_OK/20 from $A2 ($R_AT), ppp1 tx +$D1, ppp0 tx +$D0"
	if [ "$R_OK" = 20 ] && [ "$R_AT" = 20 ] && [ "$D1" -ge 40 ] && [ "$D0" = 0 ]; then
		ok "$msg"
	else
		not_ok "$msg" "$(grep -v ' seen=' <<<"$out" | head -n 3)"
	fi
	topo_destroy
}

# ---- 4. NAT ----
nat() {
	scenario_up nat || return 0
	local msg rewritten

	# srv's own socket bound to its LAN address.
	measure srv --bind $SRV_LAN --port 80 203.0.113.1-100
	msg="nat: srv from $SRV_LAN: far end saw a link address $((I1 + I2))/$N (ISP1 $I1, ISP2 $I2, other $OTHER)"
	if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && [ "$I1" -gt 0 ] && [ "$I2" -gt 0 ] && entered_ok; then
		ok "$msg"
	else
		not_ok "$msg" "$(detail)"
	fi

	# The LAN client.
	measure lan --port 80 203.0.113.101-200
	msg="nat: LAN $LAN_CLIENT: far end saw a link address $((I1 + I2))/$N (ISP1 $I1, ISP2 $I2, other $OTHER)"
	if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && [ "$I1" -gt 0 ] && [ "$I2" -gt 0 ] && entered_ok; then
		ok "$msg"
	else
		not_ok "$msg" "$(detail)"
	fi

	# Pinned traffic re-routed by its mark: the socket's source came from the
	# balanced route (often ISP2's address); it must leave with ISP1's.
	measure srv --port 25 203.0.113.1-250
	rewritten=$(grep -c " seen=$A1:.* src=$A2:" <<<"$OUT")
	msg="nat: tcp/25 by ISP1 seen as $A1: $I1/$N ($rewritten began with source $A2)"
	if [ "$OK" = "$N" ] && [ "$I1" = "$N" ] && [ "$S2" = 0 ]; then
		ok "$msg"
	else
		not_ok "$msg" "$(detail)"
	fi
	topo_destroy
}

# ---- 5. the LAN client ----
lan_client() {
	scenario_up lan_client || return 0
	local msg

	measure lan --port 80 $BALANCE_DSTS
	msg="lan: balanced: ISP1 share $I1/$N = $(pct "$I1" "$N")% (want 80±7%), ISP2 $I2"
	if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && share_ok "$I1" "$N" && entered_ok; then
		ok "$msg"
	else
		not_ok "$msg" "$(detail)"
	fi

	measure lan --port 25 203.0.113.1-250
	msg="lan: tcp/25 by ISP1: $I1/$N (entered isp2: $S2)"
	if [ "$I1" = "$N" ] && [ "$S2" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	measure lan --port 80 $PANEL_RANGE
	msg="lan: ISP2's panel by ISP2: $I2/$N (entered isp1: $S1)"
	if [ "$I2" = "$N" ] && [ "$S1" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	topo_destroy
}

# ---- 6. links up and down in every order ----
plant_foreign() {
	nsx srv ip rule add pref 500 fwmark 0x100/0x100 lookup 200
	nsx srv ip rule add pref 600 from 192.0.2.128/25 lookup 201
	nsx srv ip route add 198.51.100.0/28 via 192.0.2.254 table 200
	nsx srv ip route add 198.51.100.16/28 via 192.0.2.254
	nsx srv ip nexthop add id 7 via 192.0.2.254 dev eth0
	nsx srv ip route add 198.51.100.32/28 nhid 7
	nsx srv iptables-legacy -t mangle -A OUTPUT -p tcp --dport 22 -j MARK --set-xmark 0x100/0x100
	nsx srv iptables-legacy -t mangle -N FOREIGN
	nsx srv iptables-legacy -t mangle -A FOREIGN -j RETURN
	nsx srv iptables-legacy -t mangle -A PREROUTING -i eth0 -j FOREIGN
	nsx srv iptables-legacy -t nat -A POSTROUTING -o eth0 -j RETURN
	nsx srv iptables-legacy -t filter -A INPUT -p tcp --dport 9 -j DROP
}

# traffic_matches UP...: 40 connections from srv: with no link up none gets
# out; otherwise all are answered, only by up links, and by each of them
# when both are up.
traffic_matches() {
	measure srv --port 80 --timeout 1000 203.0.113.1-40
	case "$*" in
	"") [ "$OK" = 0 ] ;;
	isp1) [ "$OK" = "$N" ] && [ "$I1" = "$N" ] ;;
	isp2) [ "$OK" = "$N" ] && [ "$I2" = "$N" ] ;;
	*) [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && [ "$I1" -gt 0 ] && [ "$I2" -gt 0 ] ;;
	esac
}

updown() {
	if ! topo_create; then not_ok "updown: topology"; topo_destroy; return 0; fi
	plant_foreign
	local before foreign_rules foreign_fw
	before=$(srv_state)
	foreign_rules=$(nsx srv ip rule show | grep -E '^(500|600):')
	foreign_fw=$(nsx srv iptables-legacy -t mangle -S | grep -E 'FOREIGN|0x100')

	local order step name act up bad log after
	for order in "isp1+ isp2+ isp1- isp2-" "isp1+ isp2+ isp2- isp1-" \
		"isp2+ isp1+ isp1- isp2-" "isp2+ isp1+ isp2- isp1-" \
		"isp1+ isp1- isp2+ isp2-" "isp2+ isp2- isp1+ isp1-"; do
		up=() bad="" log=""
		for step in $order; do
			name=${step%?} act=${step#"$name"}
			if [ "$act" = + ]; then
				link_start "$name" 2>/dev/null || bad="$bad; $name did not come up"
				up+=("$name")
			else
				link_stop "$name" term || bad="$bad; $name did not stop on SIGTERM"
				up=("${up[@]/$name/}")
				mapfile -t up < <(printf '%s\n' "${up[@]}" | grep . | sort)
			fi
			if traffic_matches "${up[@]}"; then
				log="$log $step($I1/$I2)"
			else
				log="$log $step($I1/$I2!)"
				bad="$bad; after $step with [${up[*]}] up: $(detail | head -n 1)"
			fi
			if [ ${#up[@]} = 2 ]; then
				[ "$(nsx srv ip rule show | grep -E '^(500|600):')" = "$foreign_rules" ] ||
					bad="$bad; foreign ip rules changed while links were up"
				[ "$(nsx srv iptables-legacy -t mangle -S | grep -E 'FOREIGN|0x100')" = "$foreign_fw" ] ||
					bad="$bad; foreign mangle rules changed while links were up"
			fi
		done
		after=$(srv_state)
		if [ "$after" != "$before" ]; then
			bad="$bad; left behind: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -n 8 | tr '\n' '|')"
		fi
		if [ -z "$bad" ]; then
			ok "updown: $order: traffic at each step (ISP1/ISP2 of 40):$log; state restored"
		else
			not_ok "updown: $order" "${bad#; }"
		fi
	done

	# Both pppd at the same moment (the registry lock serializes them), 5 times.
	local round
	bad="" log=""
	for round in 1 2 3 4 5; do
		link_spawn isp1 && link_spawn isp2
		link_wait_up isp1 2>/dev/null || bad="$bad; round $round: isp1 did not come up"
		link_wait_up isp2 2>/dev/null || bad="$bad; round $round: isp2 did not come up"
		if traffic_matches isp1 isp2; then
			log="$log $I1/$I2"
		else
			bad="$bad; round $round, both up: $(detail | head -n 1)"
		fi
		links_stop_together isp1 isp2 || bad="$bad; round $round: a pppd did not stop"
		after=$(srv_state)
		[ "$after" = "$before" ] ||
			bad="$bad; round $round, left behind: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -n 8 | tr '\n' '|')"
	done
	if [ -z "$bad" ]; then
		ok "updown: both up at once, both down at once, 5 rounds: traffic (ISP1/ISP2 of 40):$log; state restored"
	else
		not_ok "updown: both up at once, both down at once, 5 rounds" "${bad#; }"
	fi
	topo_destroy
}

# ---- 7. an uplink killed with no ip-down ----
killed_uplink() {
	local msg def before after
	if ! topo_create; then not_ok "killed: topology"; topo_destroy; return 0; fi
	before=$(srv_state)
	if ! link_start isp1 || ! link_start isp2; then
		not_ok "killed: links isp1 and isp2 come up" "$(tail -n 5 "$TOPO_DIR"/isp*.log 2>/dev/null)"
		topo_destroy
		return 0
	fi

	link_stop isp1 kill
	def=$(nsx srv ip route show default | head -n 1)
	measure srv --port 80 203.0.113.1-250
	msg="killed: ISP1's pppd SIGKILLed, ppp0 deleted: ISP2 carries $I2/$N (default: ${def:-none})"
	if [ "$OK" = "$N" ] && [ "$I2" = "$N" ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	measure lan --port 80 203.0.113.1-100
	msg="killed: the LAN client's traffic by ISP2: $I2/$N"
	if [ "$OK" = "$N" ] && [ "$I2" = "$N" ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	measure srv --port 25 203.0.113.1-50
	msg="killed: tcp/25 (pinned to dead ISP1) falls through to ISP2: $I2/$N"
	if [ "$OK" = "$N" ] && [ "$I2" = "$N" ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	# pppd restarts on a new unit device: the stale registration is pruned.
	if link_start isp1; then
		measure srv --port 80 $BALANCE_DSTS
		msg="killed: ISP1 back after the kill: ISP1 share $I1/$N = $(pct "$I1" "$N")%"
		if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && share_ok "$I1" "$N" && entered_ok; then
			ok "$msg"
		else
			not_ok "$msg" "$(detail)"
		fi
	else
		not_ok "killed: ISP1 comes back after the kill" "$(tail -n 5 "$TOPO_DIR/isp1.log")"
	fi

	# Now ISP2 is killed; it reconnects with a new dynamic address.
	link_stop isp2 kill
	measure srv --port 80 $PANEL_RANGE
	msg="killed: ISP2's pppd SIGKILLed: its panel reached by ISP1 $I1/$N"
	if [ "$OK" = "$N" ] && [ "$I1" = "$N" ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	if link_start isp2 100.64.2.7; then
		measure srv --port 80 $BALANCE_DSTS
		msg="killed: ISP2 back with new address 100.64.2.7: ISP1 $I1, ISP2 $I2 of $N, other $OTHER"
		if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && share_ok "$I1" "$N" && entered_ok; then
			ok "$msg"
		else
			not_ok "$msg" "$(detail)"
		fi
		if nsx srv ip rule show | grep -q "from $A2 "; then
			not_ok "killed: no rule left for ISP2's old address $A2" "$(nsx srv ip rule show | grep "from $A2 ")"
		else
			ok "killed: no rule left for ISP2's old address $A2"
		fi
	else
		not_ok "killed: ISP2 comes back with a new address" "$(tail -n 5 "$TOPO_DIR/isp2.log")"
	fi

	# ISP1 killed again, then ISP2 stops normally: its ip-down must also
	# prune what the killed ISP1 left, so nothing of ours remains.
	link_stop isp1 kill
	link_stop isp2 term
	after=$(srv_state)
	msg="killed: ISP1 killed, then ISP2 down: nothing of ours left"
	if [ "$after" = "$before" ]; then
		ok "$msg"
	else
		not_ok "$msg" "$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -n 8)"
	fi
	topo_destroy
}

main() {
	local c missing
	[ "$(id -u)" = 0 ] || { skip "scenario" "needs root"; return 0; }
	missing=$(topo_missing)
	if [ -n "$missing" ]; then
		not_ok "scenario: build products present" "missing: $missing (run make)"
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
