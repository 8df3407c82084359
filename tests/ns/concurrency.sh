#!/bin/bash
# Issue 5, concurrency: 8 links, each driven by its own pppd (the harness),
# come up and go down concurrently for 50 rounds in random order, while
# iptables-legacy and iptables-legacy-restore write mangle and nat.
# Afterwards: exactly the expected kernel state (invariants independent of
# the core, and the same state as the surviving links brought up calmly one
# by one in a fresh registry), traffic by the right links, no foreign
# iptables update lost.  Root; namespaces of its own, removed on exit.
GROUP=conc
# shellcheck source=../lib/nsfar.sh
. "$(dirname "$0")/../lib/nsfar.sh"

need_tools
ROUNDS=${MH_CONC_ROUNDS:-50}
NLINKS=8
net_create || { not_ok "concurrency: namespaces" "setup failed"; exit 0; }
for k in $(seq $NLINKS); do dev_add "$k"; peers "$k" >/dev/null; done

# ---- a foreign writer: iptables-legacy and iptables-legacy-restore ----
nsx srv iptables-legacy -w -t mangle -N FOREIGN-M
nsx srv iptables-legacy -w -t mangle -A OUTPUT -j FOREIGN-M
nsx srv iptables-legacy -w -t mangle -N FOREIGN-R
nsx srv iptables-legacy -w -t mangle -A FOREIGN-R -m comment --comment r0 -j RETURN
nsx srv iptables-legacy -w -t nat -N FOREIGN-N
nsx srv iptables-legacy -w -t nat -A POSTROUTING -j FOREIGN-N
NFW=${MH_CONC_FW:-120}
foreign_writer() {
	local i
	for i in $(seq "$NFW"); do
		nsx srv iptables-legacy -w -t mangle -A FOREIGN-M -m comment --comment "m$i" -j RETURN || echo "FAIL append m$i"
		# a replace keeps the rule count: the case a blind commit would wipe
		nsx srv iptables-legacy -w -t mangle -R FOREIGN-R 1 -m comment --comment "r$i" -j RETURN || echo "FAIL replace r$i"
		printf '*nat\n-A FOREIGN-N -d 198.51.100.%d/32 -m comment --comment n%d -j RETURN\nCOMMIT\n' \
			$((i % 250 + 1)) "$i" | nsx srv iptables-legacy-restore -w --noflush || echo "FAIL restore n$i"
	done
	echo "writer done"
}
foreign_writer >"$TMP/writer.log" 2>&1 &
WRITER=$!
BG+=($WRITER)

# ---- 8 links flapping ----
# The pauses between events are drawn from a seeded generator (MH_CONC_SEED):
# the same schedule on every run, so a failure can be run again.  Which links
# end up: the odd ones, always (both outcomes covered).
SEED=${MH_CONC_SEED:-20261201}
RANDOM=$SEED
declare -A FINAL=() LPID=()
for k in $(seq $NLINKS); do
	words=(sleep $((RANDOM % 20)))
	for r in $(seq "$ROUNDS"); do
		words+=(up sleep $((RANDOM % 12)) down sleep $((RANDOM % 12)))
	done
	if ((k % 2)); then words+=(up); FINAL[$k]=1; fi
	words+=(wait down exit)
	hxbg "$TMP/l$k.log" "$k" --time "${words[@]}"
	LPID[$k]=$HPID
done
want_up=()
for k in $(seq $NLINKS); do [ -n "${FINAL[$k]:-}" ] && want_up+=("$k"); done
# every harness has run its last event when its --time lines are all there
done_all=1
for k in $(seq $NLINKS); do
	n=$((2 * ROUNDS + ${FINAL[$k]:-0}))
	wait_lines "$TMP/l$k.log" '^event \(up\|down\)' "$n" 120 || done_all=0
done
wait "$WRITER" 2>/dev/null
if [ $done_all = 1 ]; then
	ok "concurrency: 8 links x $ROUNDS up/down rounds finished (schedule seed $SEED)"
else
	not_ok "concurrency: 8 links x $ROUNDS up/down rounds finished" "$(tail -n 3 "$TMP"/l*.log)"
fi
errs=$(grep -h 'multihome:' "$TMP"/l*.log | grep -iv -e 'plugin loaded' | grep -i -e error -e fail -e refused -e 'timed out' | head -n 5)
if [ -z "$errs" ]; then
	ok "concurrency: no event failed ($((NLINKS * (2 * ROUNDS))) + ${#want_up[@]} events)"
else
	not_ok "concurrency: no event failed" "$errs"
fi

out=$(invariants "${want_up[@]}")
if [ -z "$out" ]; then
	ok "concurrency: state exact for up links {${want_up[*]}}: tables, rules, nexthops, chains"
else
	not_ok "concurrency: state exact for up links {${want_up[*]}}" "$out"
fi
out=$(traffic "${want_up[@]}")
if [ -z "$out" ]; then
	ok "concurrency: traffic: pins and bound sockets leave by their links"
else
	not_ok "concurrency: traffic: pins and bound sockets leave by their links" "$out"
fi

# foreign updates: none lost
m=$(nsx srv iptables-legacy -t mangle -S FOREIGN-M | grep -c -- '--comment m')
seq_ok=$(nsx srv iptables-legacy -t mangle -S FOREIGN-M | grep -o 'comment m[0-9]*' | sed 's/comment m//' | tr '\n' ' ')
r=$(nsx srv iptables-legacy -t mangle -S FOREIGN-R | grep -o 'comment r[0-9]*')
n=$(nsx srv iptables-legacy -t nat -S FOREIGN-N | grep -c -- '--comment n')
wfail=$(grep FAIL "$TMP/writer.log" | head -n 3)
if [ "$m" = "$NFW" ] && [ "$seq_ok" = "$(seq -s ' ' "$NFW") " ] && [ "$r" = "comment r$NFW" ] &&
	[ "$n" = "$NFW" ] && [ -z "$wfail" ]; then
	ok "concurrency: iptables-legacy(-restore) writers: all $((3 * NFW)) updates kept"
else
	not_ok "concurrency: iptables-legacy(-restore) writers: all $((3 * NFW)) updates kept" \
		"mangle appends $m/$NFW, replace '$r' (want r$NFW), nat restores $n/$NFW; $wfail"
fi

# the same links brought up calmly in a fresh registry give the same state
canon >"$TMP/after-chaos.txt"
for k in $(seq $NLINKS); do kill -TERM "${LPID[$k]}" 2>/dev/null; done
for k in $(seq $NLINKS); do wait "${LPID[$k]}" 2>/dev/null; done
out=$(invariants)
if [ -z "$out" ]; then
	ok "concurrency: after every link's ip-down nothing of ours is left"
else
	not_ok "concurrency: after every link's ip-down nothing of ours is left" "$out"
fi
export MULTIHOME_RUNDIR=$TMP/run-calm
for k in "${want_up[@]}"; do hx "$k" up >>"$TMP/calm.log" 2>&1; done
canon >"$TMP/calm.txt"
if diff -u "$TMP/calm.txt" "$TMP/after-chaos.txt" >"$TMP/diff.txt"; then
	ok "concurrency: state after the flapping == the same links brought up calmly"
else
	not_ok "concurrency: state after the flapping == the same links brought up calmly" \
		"$(grep '^[-+][^-+]' "$TMP/diff.txt" | head -n 6)"
fi
