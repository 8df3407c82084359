#!/bin/bash
# Issue 10, finding 1, with real events (the harness plays pppd): the run
# directory is opened once per event and nothing in it is followed.
#   - a FIFO named `firewall` (the last event's backend): the event does not
#     hang on it, says so, and replaces it with a regular file;
#   - `firewall` a symlink to a file outside: ignored with a message, the
#     file outside untouched;
#   - the run directory replaced by a symlink to another directory of ours
#     between two events: the event is refused with a message, nothing is
#     written there;
#   - XTABLES_LOCKFILE (root's environment) a symlink or a FIFO: the lock is
#     never taken through either, the event is refused whole.
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

# ---- XTABLES_LOCKFILE (honoured from root's environment only): never
# followed, never anything but a regular file; the event that cannot take the
# lock is refused whole ----
ln -s "$OUT/xlock" "$TMP/xlock-link"
XTABLES_LOCKFILE=$TMP/xlock-link hx 3 --strict up >"$TMP/xlink.log" 2>&1
rc=$?
bad=$(invariants 1 2; traffic 1 2)
if [ "$rc" = 3 ] && grep -q "cannot open $TMP/xlock-link: Too many levels of symbolic links" "$TMP/xlink.log" &&
	[ ! -e "$OUT/xlock" ] && [ "$(listing "$OUT")" = "$OUT0" ] && [ -z "$bad" ]; then
	ok "rundir: XTABLES_LOCKFILE a symlink: not followed (its target not created), l3 refused whole, l1 and l2 carry their traffic"
else
	not_ok "rundir: XTABLES_LOCKFILE a symlink: not followed (its target not created), l3 refused whole, l1 and l2 carry their traffic" \
		"harness exit $rc; $(grep multihome: "$TMP/xlink.log" | tail -n 1) $(ls -l "$OUT/xlock" 2>&1) ${bad//$'\n'/; }"
fi
mkfifo -m 600 "$TMP/xlock-fifo"
hxargs 3
XTABLES_LOCKFILE=$TMP/xlock-fifo timeout 20 ip netns exec "$SRV" "$HARNESS" "${HXA[@]}" --strict up >"$TMP/xfifo.log" 2>&1
rc=$?
bad=$(invariants 1 2; traffic 1 2)
if [ "$rc" = 3 ] && grep -q "$TMP/xlock-fifo is not a regular file: refusing to lock it" "$TMP/xfifo.log" && [ -z "$bad" ]; then
	ok "rundir: XTABLES_LOCKFILE a FIFO: refused at once (no hang), l3 refused whole, l1 and l2 carry their traffic"
else
	not_ok "rundir: XTABLES_LOCKFILE a FIFO: refused at once (no hang), l3 refused whole, l1 and l2 carry their traffic" \
		"harness exit $rc$([ $rc = 124 ] && echo ' (timed out)'); $(grep multihome: "$TMP/xfifo.log" | tail -n 1) ${bad//$'\n'/; }"
fi

# ---- finding 5: a stopped process holds the lock (a dip user can SIGSTOP
# their own pppd in the middle of an event): the next event says who ----
flock "$RUN/lock" sleep 30 &
holder=$!
for _ in $(seq 50); do grep -q " FLOCK .* WRITE " /proc/locks && break; sleep 0.05; done
hpid=$holder                    # flock(1) holds it, its child sleeps
kill -STOP "$hpid"
hx 3 up down exit >"$TMP/hostage.log" 2>&1 &
ev=$!
for _ in $(seq 60); do grep -q "waiting for $RUN/lock" "$TMP/hostage.log" && break; sleep 0.1; done
kill -KILL "$hpid" $(pgrep -P "$hpid") 2>/dev/null
wait "$ev"
rc=$?
if grep -q "waiting for $RUN/lock, held by pid $hpid (flock), which is stopped" "$TMP/hostage.log" &&
	[ "$rc" = 0 ] && grep -q "l3 up on ppp3" "$TMP/hostage.log"; then
	ok "rundir: the lock held by a stopped process: the event names it (pid, name, stopped) after 2 s, and goes on once it is gone"
else
	not_ok "rundir: the lock held by a stopped process: the event names it (pid, name, stopped) after 2 s, and goes on once it is gone" \
		"exit $rc; $(grep -e 'lock' -e 'l3 up' "$TMP/hostage.log" | head -n 3 | tr '\n' ' ')"
fi
bad=$(invariants 1 2; traffic 1 2)
[ -z "$bad" ] && ok "rundir: after the hostage: l1 and l2 carry their traffic" ||
	not_ok "rundir: after the hostage: l1 and l2 carry their traffic" "${bad//$'\n'/; }"
exit 0
