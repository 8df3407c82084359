#!/bin/bash
# Issue 5, faults: a link's pppd killed with SIGKILL at many points of its
# ip-up/ip-down (many times, delays spread over 0-99 ms into a tight up/down loop, so the
# kill lands before, inside and after the netlink batch and the firewall
# commits); then the unit disappears (another link's next event must prune
# it), or the pppd is restarted on a new unit or on the same one (no
# duplicates).  Every outcome is compared, as text, with the state of the
# same links brought up calmly in a fresh registry.  Then reconnects with a
# new local address (dynamic-IP ISP): source rule and SNAT/MASQUERADE follow,
# nothing of the old address is left.  Root; namespaces of its own.
GROUP=faults
# shellcheck source=../lib/nsfar.sh
. "$(dirname "$0")/../lib/nsfar.sh"

need_tools
ITERS=${MH_FAULT_ITERS:-40}
ALL=(1 2 3 4)
net_create || { not_ok "faults: namespaces" "setup failed"; exit 0; }
for k in "${ALL[@]}"; do dev_add "$k"; peers "$k" >/dev/null; done

# ref NAME K...: the state with links K... up, brought up calmly one by one
# in a fresh registry, then withdrawn again.
ref() {
	local name=$1 k saved=$MULTIHOME_RUNDIR
	shift
	export MULTIHOME_RUNDIR=$TMP/run-ref-$name
	for k in "$@"; do hx "$k" up >>"$TMP/ref.log" 2>&1; done
	canon >"$TMP/ref-$name.txt"
	for k in "$@"; do hx "$k" up down >>"$TMP/ref.log" 2>&1; done
	export MULTIHOME_RUNDIR=$saved
}
ref all "${ALL[@]}"
for v in "${ALL[@]}"; do ref "no$v" "${ALL[@]/$v/}"; done
ref none
if grep -q 'proto 109' "$TMP/ref-all.txt" && ! grep -q -e 'proto 109' -e MULTIHOME "$TMP/ref-none.txt" &&
	[ -z "$(invariants)" ]; then
	ok "faults: reference states built (all up, each one missing, none)"
else
	not_ok "faults: reference states built" "$(tail -n 5 "$TMP/ref.log")"
fi

# same REF: current state equals the reference; else the diff, once per REF
same() {
	canon >"$TMP/now.txt"
	diff -u "$TMP/ref-$1.txt" "$TMP/now.txt" >"$TMP/diff.txt" && return 0
	grep '^[-+][^-+]' "$TMP/diff.txt" | head -n 4 >>"$TMP/why.txt"
	return 1
}

for k in "${ALL[@]}"; do hx "$k" up >>"$TMP/setup.log" 2>&1; done
if same all; then
	ok "faults: 4 links up"
else
	not_ok "faults: 4 links up" "$(cat "$TMP/why.txt")"
fi

declare -A tried=([gone]=0 [newunit]=0 [sameunit]=0) bad=([gone]=0 [newunit]=0 [sameunit]=0)
partial=0 pruned_bad=0
: >"$TMP/why.txt"
# Victim, what follows the kill and how long into its loop the kill lands are
# a fixed schedule: every combination of victim and outcome, kill delays
# spread over 0-99 ms (they land before, inside and after the transactions).
for it in $(seq "$ITERS"); do
	v=${ALL[(it - 1) % 4]}
	hxbg "$TMP/victim.log" "$v" repeat 2000 down up
	sleep "0.$(printf '%03d' $(((it * 37) % 100)))"
	kill -KILL "$HPID" 2>/dev/null
	wait "$HPID" 2>/dev/null
	# did the kill land inside a transaction?
	canon >"$TMP/pre.txt"
	cmp -s "$TMP/pre.txt" "$TMP/ref-all.txt" || cmp -s "$TMP/pre.txt" "$TMP/ref-no$v.txt" ||
		{ partial=$((partial + 1)); cp "$TMP/pre.txt" "$TMP/partial-$partial.txt"; }
	case $(((it - 1) / 4 % 3)) in
	0)	# pppd dead, the kernel removes its unit; another link's event comes next
		how=gone
		tried[$how]=$((tried[$how] + 1))
		dev_del "$v"
		w=${ALL[(v % 4)]}
		hx "$w" up >>"$TMP/events.log" 2>&1
		same "no$v" || { bad[$how]=$((bad[$how] + 1)); echo "it $it: l$v gone, after l$w's event" >>"$TMP/why.txt"; }
		grep -q '^state down' "$MULTIHOME_RUNDIR/link.l$v" 2>/dev/null ||
			{ pruned_bad=$((pruned_bad + 1)); echo "it $it: registry entry of l$v not pruned: $(grep '^state' "$MULTIHOME_RUNDIR/link.l$v" 2>&1)" >>"$TMP/why.txt"; }
		dev_add "$v"
		hx "$v" up >>"$TMP/events.log" 2>&1
		same all || { bad[$how]=$((bad[$how] + 1)); echo "it $it: l$v back" >>"$TMP/why.txt"; }
		;;
	1)	# pppd restarted (pon): a new unit of the same name
		how=newunit
		tried[$how]=$((tried[$how] + 1))
		dev_del "$v"
		dev_add "$v"
		hx "$v" up >>"$TMP/events.log" 2>&1
		same all || { bad[$how]=$((bad[$how] + 1)); echo "it $it: l$v restarted on a new unit" >>"$TMP/why.txt"; }
		;;
	2)	# pppd restarted while its unit survived (same ifindex)
		how=sameunit
		tried[$how]=$((tried[$how] + 1))
		hx "$v" up >>"$TMP/events.log" 2>&1
		same all || { bad[$how]=$((bad[$how] + 1)); echo "it $it: l$v restarted on the same unit" >>"$TMP/why.txt"; }
		;;
	esac
done
echo "      $ITERS SIGKILLs, $partial of them left a state between two clean ones"
for how in gone newunit sameunit; do
	case $how in
	gone) d="SIGKILL, unit gone: next event of another link prunes it exactly" ;;
	newunit) d="SIGKILL, restart on a new unit: exact state, no duplicates" ;;
	sameunit) d="SIGKILL, restart on the same unit: exact state, no duplicates" ;;
	esac
	if [ "${tried[$how]}" = 0 ]; then
		skip "faults: $d" "not drawn in $ITERS tries"
	elif [ "${bad[$how]}" = 0 ]; then
		ok "faults: $d (${tried[$how]}x)"
	else
		not_ok "faults: $d (${bad[$how]} of ${tried[$how]} wrong)" "$(head -n 8 "$TMP/why.txt")"
	fi
done
if [ "$pruned_bad" = 0 ]; then
	ok "faults: registry entry of a vanished link pruned to down"
else
	not_ok "faults: registry entry of a vanished link pruned to down" "$(grep registry "$TMP/why.txt" | head -n 3)"
fi
out=$(traffic "${ALL[@]}")
if [ -z "$out" ]; then
	ok "faults: traffic by the right links after the faults"
else
	not_ok "faults: traffic by the right links after the faults" "$out"
fi

# ---- reconnects with a new local address ----
for k in "${ALL[@]}"; do hx "$k" up down >>"$TMP/events.log" 2>&1; done
out=$(invariants)
[ -z "$out" ] || not_ok "faults: every link withdrawn before the reconnect tests" "$out"

# no_old ADDR: the old address appears nowhere in our state
no_old() { ! canon | grep -q -F -e "$1 " -e "$1/" -e "to-source $1"; }

# 1. pppd persist: ip-down, the ISP hands out a new address, ip-up (snat)
cp "$(peers 1 "multihome-nat snat")" "$TMP/peers-1-snat"
PEERS_FILE[1]=$TMP/peers-1-snat
old=${ADDR[1]}
new=100.64.1.66
hxbg "$TMP/recon1.log" 1 --time up wait down wait addr "$new" up wait down exit
p1=$HPID
wait_lines "$TMP/recon1.log" '^event up' 1 10
kill -HUP "$p1"
wait_lines "$TMP/recon1.log" '^event down' 1 10
dev_readdr 1 "$new"
kill -HUP "$p1"
wait_lines "$TMP/recon1.log" '^event up' 2 10
st=$(canon)
errs=""
[ -z "$(invariants 1)" ] || errs+="$(invariants 1); "
no_old "$old" || errs+="old address $old still in: $(canon | grep -F "$old" | head -n 2); "
grep -q -- "-A MULTIHOME-NAT -o ppp1 .*-j SNAT --to-source $new\$" <<<"$st" || errs+="no SNAT to $new; "
t=$(traffic 1) || errs+="$t"
if [ -z "$errs" ]; then
	ok "faults: reconnect (ip-down, new address, ip-up): source rule, SNAT, traffic follow"
else
	not_ok "faults: reconnect (ip-down, new address, ip-up): source rule, SNAT, traffic follow" "$errs"
fi
kill -TERM "$p1"
wait "$p1" 2>/dev/null
out=$(invariants)
if [ -z "$out" ]; then ok "faults: ip-down after the reconnect leaves nothing"; else
	not_ok "faults: ip-down after the reconnect leaves nothing" "$out"; fi

# 2. new address with no ip-down in between (masquerade): ip-up again
hx 2 up >>"$TMP/events.log" 2>&1
old=${ADDR[2]}
dev_readdr 2 100.64.2.66
hx 2 up >>"$TMP/events.log" 2>&1
errs=""
[ -z "$(invariants 2)" ] || errs+="$(invariants 2); "
no_old "$old" || errs+="old address $old still in: $(canon | grep -F "$old" | head -n 2); "
t=$(traffic 2) || errs+="$t"
if [ -z "$errs" ]; then
	ok "faults: new address without ip-down (ip-up again): only the new one is used"
else
	not_ok "faults: new address without ip-down (ip-up again): only the new one is used" "$errs"
fi

# 3. SIGKILL, then a new unit with a new address (snat on link 3)
cp "$(peers 3 "multihome-nat snat")" "$TMP/peers-3-snat"
PEERS_FILE[3]=$TMP/peers-3-snat
hxbg "$TMP/recon3.log" 3 --time up wait down exit
p3=$HPID
wait_lines "$TMP/recon3.log" '^event up' 1 10
kill -KILL "$p3"
wait "$p3" 2>/dev/null
old=${ADDR[3]}
dev_del 3
dev_add 3 100.64.3.66
hx 3 up >>"$TMP/events.log" 2>&1
errs=""
[ -z "$(invariants 2 3)" ] || errs+="$(invariants 2 3); "
no_old "$old" || errs+="old address $old still in: $(canon | grep -F "$old" | head -n 2); "
grep -q -- "-j SNAT --to-source 100.64.3.66\$" <<<"$(canon)" || errs+="no SNAT to the new address; "
t=$(traffic 2 3) || errs+="$t"
if [ -z "$errs" ]; then
	ok "faults: SIGKILL then a new unit with a new address: nothing of the old left"
else
	not_ok "faults: SIGKILL then a new unit with a new address: nothing of the old left" "$errs"
fi
