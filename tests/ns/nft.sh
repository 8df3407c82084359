#!/usr/bin/env bash
# The nftables firewall backend (MULTIHOME_FIREWALL=nft) beyond what
# scenario-nft.sh (the reference scenario's traffic checks) and state.sh (the
# exact table) already run: its table repaired when someone else changed it,
# its cleanup, and switching backends between events, proved with traffic.
# Its cost per event is make bench's (both backends).
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

CHECKS="table switch"
export MULTIHOME_FIREWALL=nft

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
	nsx srv nft list table ip multihome 2>&1 | head -n 40 | sed 's/^/        /'
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
	{ nsx srv iptables-legacy -t mangle -S; nsx srv iptables-legacy -t nat -S; } 2>/dev/null | grep -c MULTIHOME
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
nft_has_table() { nsx srv nft list table ip multihome >/dev/null 2>&1; }

table() {
	up table || return 0
	local t bad=""
	t=$(nsx srv nft list table ip multihome 2>&1)
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
	nsx srv nft list table ip multihome >"$TOPO_DIR/t.nft"
	nsx srv nft -c -f "$TOPO_DIR/t.nft" >/dev/null 2>&1 || bad="$bad; nft -c cannot read the listing back"
	if [ -z "$bad" ]; then ok "nft table: chains, maps, pins, comments as nft lists them"; else not_ok "nft table" "${bad#; }$(printf '\n%s' "$t" | head -n 30)"; fi

	link_stop isp2 term
	if nft_has_table && ! nsx srv nft list table ip multihome | grep -q 'isp2'; then
		ok "nft table: ISP2 down: nothing of isp2 left, isp1 kept"
	else
		not_ok "nft table: ISP2 down" "$(nsx srv nft list table ip multihome 2>&1 | head -n 40)"
	fi

	# Someone else's element where ISP2's restore entry goes: the first batch
	# fails (nothing changes), the whole table is read and the event succeeds.
	nsx srv nft add element ip multihome restore '{ 0x2 : accept }'
	# (the routes come before the firewall in an event: wait for the log line)
	if link_start isp2 && wait_log isp2 2 &&
		nsx srv nft list map ip multihome restore | grep -q '0x00000002 comment "multihome isp2" : goto rs_isp2_'; then
		measure srv --port 80 $PANEL_RANGE
		if [ "$OK" = "$N" ] && [ "$I2" = "$N" ]; then
			ok "nft table: a foreign element in our map: replaced, ISP2 pinned ($I2/$N)"
		else
			not_ok "nft table: a foreign element in our map" "$(detail)"
		fi
	else
		not_ok "nft table: a foreign element in our map" "$(tail -n 3 "$TOPO_DIR/isp2.log"; nsx srv nft list map ip multihome restore 2>&1)"
	fi

	# A firewall reload removes the table: the next event builds it again.
	nsx srv nft delete table ip multihome
	link_stop isp2 term
	if link_start isp2 && wait_log isp2 3 &&
		nsx srv nft list table ip multihome 2>/dev/null | grep -q '"ppp0" comment "multihome isp1"'; then
		measure srv --port 25 203.0.113.1-50
		if [ "$OK" = "$N" ] && [ "$I1" = "$N" ]; then
			ok "nft table: deleted by hand: the next event rebuilds it (tcp/25 by ISP1 $I1/$N)"
		else
			not_ok "nft table: deleted by hand, rebuilt" "$(detail)"
		fi
	else
		not_ok "nft table: deleted by hand: the next event rebuilds it" "$(nsx srv nft list ruleset 2>&1 | head -n 20)"
	fi
	link_stop isp2 term
	link_stop isp1 term
	if ! nft_has_table && [ "$(legacy_ours)" = 0 ] && [ -z "$(nsx srv nft list ruleset)" ]; then
		ok "nft table: all links down: no table multihome, nothing in iptables-legacy"
	else
		not_ok "nft table: all links down" "$(nsx srv nft list ruleset | head -n 10); legacy: $(legacy_ours)"
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
	if [ "$(legacy_ours)" != 0 ] || ! nsx srv nft list table ip multihome 2>/dev/null | grep -q '"ppp0" comment "multihome isp1"'; then
		bad="$bad; after isp2 up by nft: legacy $(legacy_ours), table: $(nsx srv nft list table ip multihome 2>&1 | grep -c multihome)"
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
