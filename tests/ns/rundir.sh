#!/bin/bash
# Issue 10, finding 1, with real events (the harness plays pppd): the run
# directory is opened once per event and nothing in it is followed.
#   - a FIFO named `firewall` (the last event's backend): the event does not
#     hang on it, says so, and replaces it with a regular file;
#   - `firewall` a symlink to a file outside: ignored with a message, the
#     file outside untouched;
#   - the run directory replaced by a symlink to another directory of ours
#     between two events: the event is refused with a message, nothing is
#     written there.
# Each time the links that are up still carry their traffic (nsfar.sh's
# invariants and traffic: the far end saw each link's address).
GROUP=rd
# shellcheck source=../lib/nsfar.sh
. "$(dirname "$0")/../lib/nsfar.sh"

need_tools
net_create || { not_ok "rundir: namespaces" "setup failed"; exit 0; }
for k in 1 2 3; do dev_add "$k"; peers "$k" >/dev/null; done
RUN=$MULTIHOME_RUNDIR
OUT=$TMP/outside                # a directory of ours that is not the registry
mkdir -m 700 "$RUN" "$OUT"
printf 'nft\n' >"$OUT/firewall"
printf 'not ours\n' >"$OUT/lock"
listing() { (cd "$1" && find . -printf '%p %y %m %s %T@\n' | sort && cat ./* 2>/dev/null); }
OUT0=$(listing "$OUT")

# ---- a FIFO as firewall ----
mkfifo -m 600 "$RUN/firewall"
hxargs 1
timeout 20 ip netns exec "$SRV" "$HARNESS" "${HXA[@]}" up >"$TMP/fifo.log" 2>&1
rc=$?
if [ "$rc" = 0 ] && grep -q "firewall is not a regular file" "$TMP/fifo.log"; then
	ok "rundir: a FIFO as firewall: the event goes on (no hang), with a message"
else
	not_ok "rundir: a FIFO as firewall: the event goes on (no hang), with a message" \
		"harness exit $rc$([ $rc = 124 ] && echo ' (timed out: blocked on the FIFO)'); $(grep multihome: "$TMP/fifo.log" | tail -n 2 | tr '\n' ' ')"
fi
if [ -f "$RUN/firewall" ] && [ "$(cat "$RUN/firewall")" = iptables ]; then
	ok "rundir: the FIFO is replaced by a regular firewall file (iptables)"
else
	not_ok "rundir: the FIFO is replaced by a regular firewall file (iptables)" "$(ls -l "$RUN/firewall")"
fi
bad=$(invariants 1; traffic 1)
if [ -z "$bad" ]; then
	ok "rundir: after the FIFO: l1 up, its pin and source address leave by it"
else
	not_ok "rundir: after the FIFO: l1 up, its pin and source address leave by it" "${bad//$'\n'/; }"
fi

# ---- firewall a symlink to a file outside ----
rm -f "$RUN/firewall"
ln -s "$OUT/firewall" "$RUN/firewall"
hx 2 up >"$TMP/fwlink.log" 2>&1
rc=$?
if [ "$rc" = 0 ] && grep -q "firewall is a symlink; ignored" "$TMP/fwlink.log"; then
	ok "rundir: firewall a symlink: ignored with a message, the event goes on"
else
	not_ok "rundir: firewall a symlink: ignored with a message, the event goes on" \
		"harness exit $rc; $(grep multihome: "$TMP/fwlink.log" | tail -n 2 | tr '\n' ' ')"
fi
bad=$(invariants 1 2; traffic 1 2)
if [ -z "$bad" ] && [ ! -L "$RUN/firewall" ] && [ "$(listing "$OUT")" = "$OUT0" ]; then
	ok "rundir: firewall a symlink: l1 and l2 carry their traffic, the file outside untouched"
else
	not_ok "rundir: firewall a symlink: l1 and l2 carry their traffic, the file outside untouched" \
		"${bad//$'\n'/; } $(ls -l "$RUN/firewall") $(diff <(echo "$OUT0") <(listing "$OUT") | head -n 2)"
fi

# ---- the run directory replaced by a symlink between two events ----
mv "$RUN" "$RUN.real"
ln -s "$OUT" "$RUN"
hx 3 --strict up >"$TMP/dirlink.log" 2>&1
rc=$?
if [ "$rc" = 3 ] && grep -q "$RUN is a symlink: refusing to use it" "$TMP/dirlink.log" &&
	[ "$(listing "$OUT")" = "$OUT0" ]; then
	ok "rundir: replaced by a symlink: the next event refused with a message, nothing written there"
else
	not_ok "rundir: replaced by a symlink: the next event refused with a message, nothing written there" \
		"harness exit $rc; $(grep multihome: "$TMP/dirlink.log" | tail -n 1) $(diff <(echo "$OUT0") <(listing "$OUT") | head -n 2)"
fi
bad=$(invariants 1 2; traffic 1 2)
if [ -z "$bad" ]; then
	ok "rundir: after the refused event: l1 and l2 still carry their traffic, l3 not applied"
else
	not_ok "rundir: after the refused event: l1 and l2 still carry their traffic, l3 not applied" "${bad//$'\n'/; }"
fi
rm -f "$RUN"
mv "$RUN.real" "$RUN"
exit 0
