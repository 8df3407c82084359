#!/usr/bin/env bash
# The nftables firewall backend (MULTIHOME_FIREWALL=nft), proved with traffic
# in the reference scenario (tests/lib/topo.sh), then its table, its cleanup,
# switching backends between events, and the cost of one event.
#
#   tests/ns/nft.sh              every check
#   tests/ns/nft.sh CHECK...     only those (names below)
#
# Each check builds its own namespaces and removes them (trap, on failure too).

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=../lib/topo.sh
. "$HERE/../lib/topo.sh"

CHECKS="balancing pins replies nat lan_client table switch cost"
export MULTIHOME_FIREWALL=nft

BALANCE_DSTS="203.0.113.1-254 198.51.100.1-126"
A1=${LINK_LOCAL[isp1]}
A2=${LINK_LOCAL[isp2]}

share_ok() { # PART TOTAL: within 80% +- 7%
	[ "$2" -gt 0 ] && [ $((1000 * $1)) -ge $((730 * $2)) ] && [ $((1000 * $1)) -le $((870 * $2)) ]
}

measure() { # NS ARGS...: sets OUT N OK I1 I2 OTHER S1 S2
	local what=tcp
	case " $* " in *" --udp "*) what=udp ;; esac
	isp_zero
	OUT=$(probe "$@")
	read -r N OK I1 I2 OTHER <<<"$(tally <<<"$OUT")"
	S1=$(isp_count isp1 $what)
	S2=$(isp_count isp2 $what)
}

detail() {
	echo "answered $OK/$N, far end saw ISP1 $I1, ISP2 $I2, other $OTHER; entered isp1 $S1, isp2 $S2"
	n_srv nft list table ip multihome 2>&1 | head -n 40 | sed 's/^/        /'
}

up() { # CHECK: topology and both links
	if ! topo_create; then
		not_ok "$1: topology"
		topo_destroy
		return 1
	fi
	if ! link_start isp1 || ! link_start isp2; then
		not_ok "$1: links isp1 and isp2 come up (nft)" "$(tail -n 5 "$TOPO_DIR"/isp*.log 2>/dev/null)"
		topo_destroy
		return 1
	fi
}

# legacy_ours: multihome's chains in iptables-legacy (mangle, nat) of srv
legacy_ours() {
	{ n_srv iptables-legacy -t mangle -S; n_srv iptables-legacy -t nat -S; } 2>/dev/null | grep -c MULTIHOME
}
# wait_log LINK N: the link's harness log (appended to by every start) has
# its N-th "up on" line: the event is over, firewall included (an event
# installs routes before the firewall, and link_start waits for the routes).
wait_log() {
	local t
	for t in $(seq 100); do
		[ "$(grep -c "$1 up on" "$TOPO_DIR/$1.log" 2>/dev/null)" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
nft_has_table() { n_srv nft list table ip multihome >/dev/null 2>&1; }

balancing() {
	up balancing || return 0
	measure srv --port 80 $BALANCE_DSTS
	local msg="nft balancing: ISP1 share $I1/$N (want 80±7%), ISP2 $I2, other $OTHER"
	if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && share_ok "$I1" "$N" && [ "$S1" -ge "$I1" ] && [ "$S2" -ge "$I2" ]; then
		ok "$msg"
	else
		not_ok "$msg" "$(detail)"
	fi
	topo_destroy
}

pins() {
	up pins || return 0
	local msg
	measure srv --port 25 203.0.113.1-100
	msg="nft pins: tcp/25 by ISP1: $I1/$N (entered isp2: $S2)"
	if [ "$OK" = "$N" ] && [ "$I1" = "$N" ] && [ "$S2" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	measure srv --udp --port 1130 203.0.113.130 --repeat 10
	msg="nft pins: udp/1130 to the VPN server by ISP1: $I1/$N (entered isp2: $S2)"
	if [ "$OK" = "$N" ] && [ "$I1" = "$N" ] && [ "$S2" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	measure srv --port 80 $PANEL_RANGE
	msg="nft pins: ISP2's panel by ISP2: $I2/$N (entered isp1: $S1)"
	if [ "$OK" = "$N" ] && [ "$I2" = "$N" ] && [ "$S1" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi

	if link_stop isp2 term; then
		measure srv --port 80 $PANEL_RANGE
		msg="nft pins: ISP2 down: its panel balanced (by ISP1): $I1/$N"
		if [ "$OK" = "$N" ] && [ "$I1" = "$N" ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	else
		not_ok "nft pins: ISP2 stops on SIGTERM"
	fi
	if link_start isp2; then
		measure srv --port 80 $PANEL_RANGE
		msg="nft pins: ISP2 back: its panel by ISP2 again: $I2/$N (entered isp1: $S1)"
		if [ "$OK" = "$N" ] && [ "$I2" = "$N" ] && [ "$S1" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	else
		not_ok "nft pins: ISP2 comes back" "$(tail -n 5 "$TOPO_DIR/isp2.log")"
	fi
	if link_stop isp1 term; then
		measure srv --port 25 203.0.113.1-50
		msg="nft pins: ISP1 down: tcp/25 falls through to ISP2: $I2/$N"
		if [ "$OK" = "$N" ] && [ "$I2" = "$N" ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	else
		not_ok "nft pins: ISP1 stops on SIGTERM"
	fi
	if link_start isp1; then
		measure srv --port 25 203.0.113.1-50
		msg="nft pins: ISP1 back: tcp/25 by ISP1 again: $I1/$N (entered isp2: $S2)"
		if [ "$OK" = "$N" ] && [ "$I1" = "$N" ] && [ "$S2" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	else
		not_ok "nft pins: ISP1 comes back" "$(tail -n 5 "$TOPO_DIR/isp1.log")"
	fi
	topo_destroy
}

# Replies leave by the link the request came in on, even against a pin.
replies() {
	up replies || return 0
	serve_start srv --tcp 8080 || { not_ok "nft replies: server on srv"; topo_destroy; return 0; }
	local t0 t1 d0 d1 n ok_at seen msg
	t0=$(tx_packets srv ppp0)
	t1=$(tx_packets srv ppp1)
	# ISP2's admin (pinned to ISP2) connects to srv's ISP1 address, via ISP1.
	OUT=$(probe adm --bind "$ADMIN_HOST" --port 8080 "$A1" --repeat 20)
	d0=$(($(tx_packets srv ppp0) - t0))
	d1=$(($(tx_packets srv ppp1) - t1))
	n=$(grep -c ' seen=' <<<"$OUT")
	ok_at=$(grep -c " at=$A1:8080 " <<<"$OUT")
	seen=$(grep -c " seen=$ADMIN_HOST:" <<<"$OUT")
	msg="nft replies: ISP2's admin -> $A1: answered $n/20 from $A1 ($ok_at), ppp0 tx +$d0, ppp1 tx +$d1"
	if [ "$n" = 20 ] && [ "$ok_at" = 20 ] && [ "$seen" = 20 ] && [ "$d0" -ge 40 ] && [ "$d1" = 0 ]; then
		ok "$msg"
	else
		not_ok "$msg" "$(head -n 3 <<<"$OUT")"
	fi
	# Internet hosts connect to srv's ISP2 address: answers leave by ppp1.
	local k out=""
	t0=$(tx_packets srv ppp0)
	t1=$(tx_packets srv ppp1)
	for k in $(seq 101 110); do
		out="$out$(probe inet --bind "203.0.113.$k" --port 8080 "$A2" 2>&1)"$'\n'
	done
	d0=$(($(tx_packets srv ppp0) - t0))
	d1=$(($(tx_packets srv ppp1) - t1))
	n=$(grep -c ' seen=' <<<"$out")
	msg="nft replies: 10 internet hosts -> $A2: answered $n/10, ppp1 tx +$d1, ppp0 tx +$d0"
	if [ "$n" = 10 ] && [ "$d1" -ge 20 ] && [ "$d0" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(grep -v ' seen=' <<<"$out" | head -n 3)"; fi
	topo_destroy
}

nat() {
	up nat || return 0
	local msg
	measure srv --bind "$SRV_LAN" --port 80 203.0.113.1-100
	msg="nft nat: srv from $SRV_LAN: far end saw a link address $((I1 + I2))/$N (ISP1 $I1, ISP2 $I2)"
	if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && [ "$I1" -gt 0 ] && [ "$I2" -gt 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	# snat instead of masquerade for ISP2 (map srcaddr)
	topo_destroy
	LINK_EXTRA_isp2="multihome-nat snat"
	export LINK_EXTRA_isp2
	if up nat-snat; then
		measure lan --port 80 203.0.113.101-200
		msg="nft nat: ISP2 by snat: LAN client seen as $A1 ($I1) or $A2 ($I2) of $N, other $OTHER"
		if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && [ "$I1" -gt 0 ] && [ "$I2" -gt 0 ] &&
			n_srv nft list map ip multihome srcaddr | grep -q "\"ppp1\" comment \"multihome isp2\" : $A2"; then
			ok "$msg"
		else
			not_ok "$msg" "$(detail)"
		fi
		topo_destroy
	fi
	unset LINK_EXTRA_isp2
}

lan_client() {
	up lan_client || return 0
	local msg
	measure lan --port 80 $BALANCE_DSTS
	msg="nft lan: balanced: ISP1 share $I1/$N (want 80±7%), ISP2 $I2"
	if [ "$OK" = "$N" ] && [ "$OTHER" = 0 ] && share_ok "$I1" "$N"; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	measure lan --port 25 203.0.113.1-100
	msg="nft lan: tcp/25 by ISP1: $I1/$N (entered isp2: $S2)"
	if [ "$OK" = "$N" ] && [ "$I1" = "$N" ] && [ "$S2" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	measure lan --port 80 $PANEL_RANGE
	msg="nft lan: ISP2's panel by ISP2: $I2/$N (entered isp1: $S1)"
	if [ "$OK" = "$N" ] && [ "$I2" = "$N" ] && [ "$S1" = 0 ]; then ok "$msg"; else not_ok "$msg" "$(detail)"; fi
	topo_destroy
}

# The table as nft shows it, and nothing left once every link is down.
table() {
	up table || return 0
	local t bad=""
	t=$(n_srv nft list table ip multihome 2>&1)
	grep -q 'type route hook output priority mangle' <<<"$t" || bad="$bad; no output route chain"
	grep -q 'type nat hook postrouting priority srcnat' <<<"$t" || bad="$bad; no postrouting nat chain"
	grep -q '"ppp0" comment "multihome isp1" : goto in_isp1_' <<<"$t" || bad="$bad; no ingress element for isp1"
	grep -q '"ppp1" comment "multihome isp2" : goto in_isp2_' <<<"$t" || bad="$bad; no ingress element for isp2"
	grep -q 'tcp dport 25 meta mark set .* accept comment "multihome isp1"' <<<"$t" || bad="$bad; no tcp/25 pin"
	grep -q 'ip daddr 198.51.100.192/26 meta mark set .* accept comment "multihome isp2"' <<<"$t" || bad="$bad; no panel pin"
	# every rule carries a comment
	local bare
	bare=$(awk '/chain /{c=1; next} /^\t\t[a-z]/ && c && !/type |comment "multihome/' <<<"$t" | head -n 3)
	[ -z "$bare" ] || bad="$bad; rules without comment: $bare"
	[ "$(legacy_ours)" = 0 ] || bad="$bad; multihome chains in iptables-legacy"
	# the listing parses back (nft -c)
	n_srv nft list table ip multihome >"$TOPO_DIR/t.nft"
	n_srv nft -c -f "$TOPO_DIR/t.nft" >/dev/null 2>&1 || bad="$bad; nft -c cannot read the listing back"
	if [ -z "$bad" ]; then ok "nft table: chains, maps, pins, comments as nft lists them"; else not_ok "nft table" "${bad#; }$(printf '\n%s' "$t" | head -n 30)"; fi

	link_stop isp2 term
	if nft_has_table && ! n_srv nft list table ip multihome | grep -q 'isp2'; then
		ok "nft table: ISP2 down: nothing of isp2 left, isp1 kept"
	else
		not_ok "nft table: ISP2 down" "$(n_srv nft list table ip multihome 2>&1 | head -n 40)"
	fi

	# Someone else's element where ISP2's restore entry goes: the first batch
	# fails (nothing changes), the whole table is read and the event succeeds.
	n_srv nft add element ip multihome restore '{ 0x2 : accept }'
	# (the routes come before the firewall in an event: wait for the log line)
	if link_start isp2 && wait_log isp2 2 &&
		n_srv nft list map ip multihome restore | grep -q '0x00000002 comment "multihome isp2" : goto rs_isp2_'; then
		measure srv --port 80 $PANEL_RANGE
		if [ "$OK" = "$N" ] && [ "$I2" = "$N" ]; then
			ok "nft table: a foreign element in our map: replaced, ISP2 pinned ($I2/$N)"
		else
			not_ok "nft table: a foreign element in our map" "$(detail)"
		fi
	else
		not_ok "nft table: a foreign element in our map" "$(tail -n 3 "$TOPO_DIR/isp2.log"; n_srv nft list map ip multihome restore 2>&1)"
	fi

	# A firewall reload removes the table: the next event builds it again.
	n_srv nft delete table ip multihome
	link_stop isp2 term
	if link_start isp2 && wait_log isp2 3 &&
		n_srv nft list table ip multihome 2>/dev/null | grep -q '"ppp0" comment "multihome isp1"'; then
		measure srv --port 25 203.0.113.1-50
		if [ "$OK" = "$N" ] && [ "$I1" = "$N" ]; then
			ok "nft table: deleted by hand: the next event rebuilds it (tcp/25 by ISP1 $I1/$N)"
		else
			not_ok "nft table: deleted by hand, rebuilt" "$(detail)"
		fi
	else
		not_ok "nft table: deleted by hand: the next event rebuilds it" "$(n_srv nft list ruleset 2>&1 | head -n 20)"
	fi
	link_stop isp2 term
	link_stop isp1 term
	if ! nft_has_table && [ "$(legacy_ours)" = 0 ] && [ -z "$(n_srv nft list ruleset)" ]; then
		ok "nft table: all links down: no table multihome, nothing in iptables-legacy"
	else
		not_ok "nft table: all links down" "$(n_srv nft list ruleset | head -n 10); legacy: $(legacy_ours)"
	fi
	topo_destroy
}

# MULTIHOME_FIREWALL changes between events: the rules move.
switch() {
	if ! topo_create; then not_ok "nft switch: topology"; topo_destroy; return 0; fi
	local bad=""
	MULTIHOME_FIREWALL=iptables link_start isp1 && wait_log isp1 1 || bad="$bad; isp1 (iptables) did not come up"
	[ "$(legacy_ours)" -gt 0 ] && ! nft_has_table || bad="$bad; after isp1 up by iptables: legacy $(legacy_ours), nft table $(nft_has_table && echo yes)"
	MULTIHOME_FIREWALL=nft link_start isp2 && wait_log isp2 1 || bad="$bad; isp2 (nft) did not come up"
	if [ "$(legacy_ours)" != 0 ] || ! n_srv nft list table ip multihome 2>/dev/null | grep -q '"ppp0" comment "multihome isp1"'; then
		bad="$bad; after isp2 up by nft: legacy $(legacy_ours), table: $(n_srv nft list table ip multihome 2>&1 | grep -c multihome)"
	fi
	measure srv --port 25 203.0.113.1-50
	[ "$OK" = "$N" ] && [ "$I1" = "$N" ] || bad="$bad; tcp/25 after the switch to nft: $I1/$N by ISP1"
	link_stop isp2 term
	MULTIHOME_FIREWALL=iptables link_start isp2 && wait_log isp2 2 || bad="$bad; isp2 (iptables) did not come back"
	if [ "$(legacy_ours)" = 0 ] || nft_has_table; then
		bad="$bad; after the switch back: legacy $(legacy_ours), nft table $(nft_has_table && echo yes)"
	fi
	measure srv --port 80 $PANEL_RANGE
	[ "$OK" = "$N" ] && [ "$I2" = "$N" ] || bad="$bad; panel after the switch back: $I2/$N by ISP2"
	links_stop_together isp1 isp2
	if [ "$(legacy_ours)" != 0 ] || nft_has_table; then bad="$bad; left behind after all down"; fi
	if [ -z "$bad" ]; then
		ok "nft switch: iptables -> nft -> iptables between events: rules moved, traffic pinned"
	else
		not_ok "nft switch" "${bad#; }"
	fi
	topo_destroy
}

# cost_case N BACKEND: median "event up usec" of link N-1 while N-1 links are up.
cost_case() {
	local n=$1 fw=$2 ns="$TOPO_ID-cost" i dir peers
	dir=$(mktemp -d /tmp/mh-nftcost.XXXXXX)
	ip netns add "$ns" || return 1
	{
		echo "link set lo up"
		for ((i = 0; i < n; i++)); do
			echo "link add u$i type veth peer name f$i"
			echo "addr add 100.64.$i.2 peer 100.64.$i.1 dev u$i"
			echo "link set u$i up"
			echo "link set f$i up"
		done
	} >"$dir/batch"
	ip -n "$ns" -batch "$dir/batch" >/dev/null
	for ((i = 0; i < n; i++)); do
		peers=$dir/peers.$i
		printf 'plugin %s\nmultihome-name l%d\nmultihome-table %d\nmultihome-mark 0x%x/0x1ff00\nmultihome-priority %d\n' \
			"$PLUGIN" "$i" $((1000 + i)) $(((i + 1) << 8)) $((100 + i)) >"$peers"
		local words=(up)
		[ "$i" = $((n - 1)) ] && words=(--time repeat 30 up down)
		MULTIHOME_FIREWALL=$fw MULTIHOME_RUNDIR=$dir/run ip netns exec "$ns" "$HARNESS" --file "$peers" \
			--ifname "u$i" --local "100.64.$i.2" --remote "100.64.$i.1" "${words[@]}" >>"$dir/out" 2>>"$dir/log"
	done
	if [ "$(ip -n "$ns" rule show | grep -c 'lookup 10')" -lt "$n" ] || grep -qi 'error\|fail' "$dir/log"; then
		echo "?"       # a link did not register
		tail -n 3 "$dir/log" >&2
	else
		awk '$1 == "event" && $2 == "up" { print $4 }' "$dir/out" | sort -n |
			awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "?" }'
	fi
	ip netns del "$ns"
	rm -rf "$dir"
}

cost() {
	local t2 t64 l2 l64
	t2=$(cost_case 2 nft)
	t64=$(cost_case 64 nft)
	l2=$(cost_case 2 iptables)
	l64=$(cost_case 64 iptables)
	if [ "$t2" != "?" ] && [ "$t64" != "?" ]; then
		ok "nft cost (median event up usec, 30 events): nft 2 links $t2, 64 links $t64; iptables $l2 / $l64"
	else
		not_ok "nft cost: events did not run" "nft $t2/$t64 iptables $l2/$l64"
	fi
}

missing=$(topo_missing)
if [ -n "$missing" ]; then
	skip "nft backend" "missing$missing (make build-all)"
	exit 0
fi
if ! command -v nft >/dev/null; then
	skip "nft backend" "no nft command"
	exit 0
fi
# shellcheck disable=SC2086  # a list of names
[ $# -gt 0 ] || set -- $CHECKS
for c in "$@"; do
	"$c"
done
