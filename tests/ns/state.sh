#!/usr/bin/env bash
# The exact kernel state multihome leaves, step by step, compared with the
# expected text in tests/ns/golden/ (normalised: no counters, no handles, no
# interface indexes).  Any change to what multihome installs shows here as
# a diff; a change on purpose updates the golden files (MH_GOLDEN_UPDATE=1).
#
#   tests/ns/state.sh              compare
#   MH_GOLDEN_UPDATE=1 tests/ns/state.sh   rewrite the golden files
#   MH_STATE_OUT=DIR tests/ns/state.sh     also keep the dumps in DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=../lib/topo.sh
. "$HERE/../lib/topo.sh"

GOLDEN=$HERE/golden

# dump: what of multihome's the kernel holds in srv, normalised
dump() {
	echo "== ip rule"
	nsx srv ip -4 rule show
	echo "== ip route (ours and main)"
	nsx srv ip -4 route show table all proto 109
	echo "== ip nexthop"
	nsx srv ip nexthop show 2>&1
	echo "== iptables-legacy mangle"
	nsx srv iptables-legacy -t mangle -S
	echo "== iptables-legacy nat"
	nsx srv iptables-legacy -t nat -S
	echo "== nft"
	nsx srv nft list ruleset 2>&1
}

# steps BACKEND: the scenario's links up and down, one dump per step
steps() {
	local be=$1
	export MULTIHOME_FIREWALL=$be
	topo_create || return 1
	echo "### start"; dump
	link_start isp1 || return 1
	echo "### isp1 up"; dump
	link_start isp2 || return 1
	echo "### isp1 and isp2 up"; dump
	link_stop isp1 term || return 1
	echo "### isp1 down"; dump
	link_start isp1 || return 1
	echo "### isp1 up again"; dump
	link_stop isp2 term || return 1
	LINK_EXTRA_isp2=$(printf 'multihome-nat snat\nmultihome-reply-via-link no\nmultihome-weight 0')
	link_start isp2 || return 1
	echo "### isp2 back with snat, reply-via-link off, weight 0"; dump
	link_stop isp2 kill
	link_stop isp1 term || return 1
	echo "### isp2 killed, isp1 down"; dump
	topo_destroy
}

main() {
	local be out rc=0 tmp
	[ "$(id -u)" = 0 ] || { skip "state: exact kernel state" "needs root"; return 0; }
	tmp=$(mktemp /tmp/mh-state.XXXXXX)
	for be in iptables nft; do
		# in this shell, not a $(...) subshell: topo_create's EXIT trap belongs here
		steps "$be" >"$tmp" 2>&1
		out=$(cat "$tmp")
		[ -n "${MH_STATE_OUT:-}" ] && printf '%s\n' "$out" >"$MH_STATE_OUT/state-$be.txt"
		if [ -n "${MH_GOLDEN_UPDATE:-}" ]; then
			printf '%s\n' "$out" >"$GOLDEN/state-$be.txt"
			ok "state: $be: golden file rewritten ($(wc -l <"$GOLDEN/state-$be.txt") lines)"
		elif diff -u "$GOLDEN/state-$be.txt" <(printf '%s\n' "$out") >/tmp/mh-state-diff.$$; then
			ok "state: $be: every step's kernel state equals tests/ns/golden/state-$be.txt"
		else
			not_ok "state: $be: every step's kernel state equals tests/ns/golden/state-$be.txt" \
				"$(head -n 20 /tmp/mh-state-diff.$$)"
			rc=1
		fi
		rm -f /tmp/mh-state-diff.$$
	done
	rm -f "$tmp"
	return $rc
}
main
