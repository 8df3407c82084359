#!/usr/bin/env bash
# An interrupted event, made deterministic: what a pppd SIGKILLed in the middle
# of its ip-up leaves behind is planted by hand (a rule and a table route of
# ours that no link wants), with the lock file's "event under way" byte set, as
# the killed event left it.  The next event of *another* link must read the
# kernel and remove it, and traffic must keep flowing; without the byte an
# ordinary event does not read the kernel (incremental), and
# `multihomectl reapply` is what repairs it.
#
# Topology: tests/lib/topo.sh (lan -- srv -- ppp0/isp1, ppp1/isp2 -- inet).
#   tests/ns/interrupted.sh
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=../lib/topo.sh
. "$HERE/../lib/topo.sh"

STALE_RULE="priority 150 fwmark 0x40/0x40 lookup 150"

plant() { # the leftovers of an event killed half-way
	nsx srv ip rule add $STALE_RULE proto 109 &&
		nsx srv ip route add default dev ppp0 table 150 proto 109
}
stale_left() {
	nsx srv ip rule show | grep -q '^150:' || nsx srv ip route show table 150 | grep -q .
}
set_busy() { printf '\001' | dd of="$MULTIHOME_RUNDIR/lock" bs=1 seek=8 conv=notrunc status=none; }
busy_byte() { od -An -tu1 -j8 -N1 "$MULTIHOME_RUNDIR/lock" | tr -d ' '; }

main() {
	[ "$(id -u)" = 0 ] || { skip "interrupted" "needs root"; return 0; }
	if ! topo_create || ! link_start isp1 || ! link_start isp2; then
		not_ok "interrupted: topology and links isp1, isp2"
		topo_destroy
		return 0
	fi

	plant && set_busy
	if link_stop isp2 term; then
		if stale_left; then
			not_ok "interrupted: the next event (isp2 down) removes what a killed event left" \
				"$(nsx srv ip rule show | grep '^150:'; nsx srv ip route show table 150)"
		else
			ok "interrupted: the next event (isp2 down) removes what a killed event left"
		fi
		check "interrupted: the event cleared the 'under way' byte" [ "$(busy_byte)" = 0 ]
		OUT=$(probe srv --port 80 203.0.113.1-40)
		read -r N OK I1 I2 OTHER <<<"$(tally <<<"$OUT")"
		if [ "$OK" = "$N" ] && [ "$I1" = "$N" ]; then
			ok "interrupted: ISP1 carries the traffic afterwards: $I1/$N"
		else
			not_ok "interrupted: ISP1 carries the traffic afterwards: $I1/$N" "answered $OK, ISP2 $I2, other $OTHER"
		fi
	else
		not_ok "interrupted: isp2 stops on SIGTERM"
	fi

	# Without the byte, an ordinary event trusts the registry: the planted
	# objects stay until reapply (status reports nothing for them: they are
	# foreign-looking leftovers, not a missing piece of a link).
	plant
	if link_start isp2; then
		if stale_left; then
			ok "interrupted: an ordinary event (isp2 up) does not read the kernel"
		else
			not_ok "interrupted: an ordinary event (isp2 up) does not read the kernel" \
				"the planted rule and route were removed although no event was interrupted"
		fi
		local st
		st=$(nsx srv env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$MH_TOP/build/multihomectl" status 2>&1)
		if grep -q 'stale-state\|no up link wants' <<<"$st"; then
			ok "interrupted: multihomectl status reports the leftovers (stale-state)"
		else
			not_ok "interrupted: multihomectl status reports the leftovers (stale-state)" "$(tail -n 5 <<<"$st")"
		fi
		nsx srv env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$MH_TOP/build/multihomectl" reapply >/dev/null 2>&1
		if stale_left; then
			not_ok "interrupted: multihomectl reapply removes the leftovers"
		else
			ok "interrupted: multihomectl reapply removes the leftovers"
		fi
		st=$(nsx srv env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$MH_TOP/build/multihomectl" status 2>&1)
		if grep -q 'stale-state\|no up link wants' <<<"$st"; then
			not_ok "interrupted: status has no stale-state after reapply" "$(grep -i stale <<<"$st")"
		else
			ok "interrupted: status has no stale-state after reapply"
		fi
		OUT=$(probe srv --port 80 203.0.113.1-100)
		read -r N OK I1 I2 OTHER <<<"$(tally <<<"$OUT")"
		if [ "$OK" = "$N" ] && [ "$I1" -gt 0 ] && [ "$I2" -gt 0 ] && [ "$OTHER" = 0 ]; then
			ok "interrupted: both links balanced after the repair: ISP1 $I1, ISP2 $I2 of $N"
		else
			not_ok "interrupted: both links balanced after the repair: ISP1 $I1, ISP2 $I2 of $N" \
				"answered $OK, other $OTHER"
		fi
	else
		not_ok "interrupted: isp2 comes back"
	fi
	topo_destroy
}

main
