#!/bin/bash
# Issue 5, bad input through the real plugin (the harness plays pppd):
# far-end addresses (0.0.0.0, 127/8, multicast, broadcast, 240/4, the host's
# own LAN prefix) as our address or the peer's -> link refused with a log
# line, nothing applied; every option with an empty, overlong, wrong-type or
# out-of-range value and malformed pins -> pppd refuses to start, the error
# names option and value, nothing applied; two links claiming the same table,
# mark or priority -> an error naming it, nothing applied; the registry:
# created 0700/0600 even under umask 0, a symlinked or world-writable rundir
# refused, corrupt or foreign entries rejected with a message and not trusted.
# "Nothing applied" = the kernel state of srv compared as text before/after.
GROUP=bad
# shellcheck source=../lib/nsfar.sh
. "$(dirname "$0")/../lib/nsfar.sh"

need_tools
net_create || { not_ok "badinput: namespaces" "setup failed"; exit 0; }
for k in 1 2 3; do dev_add "$k"; peers "$k" >/dev/null; done
# the registry is created by the first event, here under umask 0
(umask 000; hx 2 up) >"$TMP/l2.log" 2>&1
[ -z "$(invariants 2)" ] || not_ok "badinput: link l2 up as the background" "$(invariants 2)"
modes=$(stat -c '%a %U' "$MULTIHOME_RUNDIR" "$MULTIHOME_RUNDIR/lock" "$MULTIHOME_RUNDIR/link.l2" 2>&1 | tr '\n' ' ')
if [ "$modes" = "700 root 600 root 600 root " ]; then
	ok "badinput: registry created 0700, lock and entry 0600 (umask 0)"
else
	not_ok "badinput: registry created 0700, lock and entry 0600 (umask 0)" "$modes"
fi
canon >"$TMP/base.txt"
# unchanged: the state is as before; if not, put it back (withdraw l1) so
# that one failure does not cascade into the next checks.
unchanged() {
	canon >"$TMP/now.txt"
	cmp -s "$TMP/base.txt" "$TMP/now.txt" && return 0
	cp "$TMP/now.txt" "$TMP/changed.txt"
	local saved=${PEERS_FILE[1]:-}
	PEERS_FILE[1]=$(peers 1 | sed 's/peers-1$/peers-1-clean/')
	cp "$TMP/peers-1" "${PEERS_FILE[1]}"
	ADDR[1]=100.64.1.2
	hx 1 up down >/dev/null 2>&1
	PEERS_FILE[1]=$saved
	[ -z "$saved" ] && unset "PEERS_FILE[1]"
	return 1
}

# ---- far-end addresses ----
# refused WHAT ADDR: link l1 with that address must be refused, logged, unapplied
refused() {
	local what=$1 a=$2 rc log=$TMP/addr.log errs=""
	if [ "$what" = local ]; then ADDR[1]=$a; else RMT[1]=$a; fi
	hx 1 --strict up >"$log" 2>&1
	rc=$?
	ADDR[1]=100.64.1.2
	unset "RMT[1]"
	[ $rc = 3 ] || errs+="harness exit $rc (want 3: error logged); "
	grep -q "multihome: .*refused.*$a" "$log" || errs+="no log line naming $a: $(grep multihome: "$log" | tail -n 1); "
	unchanged || errs+="state changed: $(diff "$TMP/base.txt" "$TMP/changed.txt" | grep '^[<>]' | head -n 2); "
	grep -qs '^state up' "$MULTIHOME_RUNDIR/link.l1" && errs+="registered as up; "
	if [ -z "$errs" ]; then
		ok "badinput: $what address $a from the far end refused, nothing applied"
	else
		not_ok "badinput: $what address $a from the far end refused, nothing applied" "$errs"
	fi
}
for a in 0.0.0.0 127.0.0.1 127.9.9.9 224.0.0.5 239.255.255.250 255.255.255.255 240.1.2.3 \
	192.0.2.77 192.0.2.255; do
	refused local "$a"
done
# 100.64.2.1 and 100.64.2.2: link l2's peer and local address (issue 10
# finding 5: another link's far end would take that link's traffic)
for a in 127.0.0.1 224.0.0.5 255.255.255.255 240.1.2.3 192.0.2.77 192.0.2.1 100.64.2.1 100.64.2.2; do
	refused peer "$a"
done

# ---- options: every one, through pppd's option parser ----
# badopt LINE VALUE-SHOWN: a peers file with LINE; pppd must refuse to start.
badopt() {
	local line=$1 want=$2 rc f log=$TMP/opt.log errs="" opt
	opt=${line%% *}
	f=$(peers 1 "$line")
	hx 1 up >"$log" 2>&1
	rc=$?
	[ $rc = 2 ] || [ $rc = 1 ] || errs+="harness exit $rc (want 1/2: pppd refuses); "
	grep -q -F -- "$opt" "$log" || errs+="error does not name $opt: $(grep -v 'loaded' "$log" | head -n 1); "
	[ -z "$want" ] || grep -q -F -- "$want" "$log" || errs+="error does not show '$want': $(grep -v loaded "$log" | head -n 1); "
	unchanged || errs+="state changed; "
	grep -qs '^state up' "$MULTIHOME_RUNDIR/link.l1" && errs+="registered as up; "
	if [ -z "$errs" ]; then
		ok "badinput: $(printf '%.60s' "$line") refused"
	else
		not_ok "badinput: $(printf '%.60s' "$line") refused" "$errs"
	fi
}
long=$(printf '%0300d' 7)
badopt 'multihome-table ""' ""
badopt "multihome-table $long" ""
badopt 'multihome-table 0' "0"
badopt 'multihome-table 253' "253"
badopt 'multihome-table 254' "254"
badopt 'multihome-table 255' "255"
badopt 'multihome-table 4294967296' "4294967296"
badopt 'multihome-table isp-nowhere' "isp-nowhere"
badopt 'multihome-table 1.5' "1.5"
badopt 'multihome-mark ""' ""
badopt 'multihome-mark 0' "0"
badopt 'multihome-mark 0x3/0x1' "0x3/0x1"
badopt 'multihome-mark 0x100000000' "0x100000000"
badopt 'multihome-mark red' "red"
badopt 'multihome-weight 257' "257"
badopt 'multihome-weight -1' "-1"
badopt 'multihome-weight heavy' "heavy"
badopt 'multihome-weight ""' ""
badopt 'multihome-priority 99' "99"
badopt 'multihome-priority 10000' "10000"
badopt 'multihome-priority ""' ""
badopt 'multihome-nat maybe' "maybe"
badopt 'multihome-nat ""' ""
badopt 'multihome-reply-via-link sometimes' "sometimes"
badopt 'multihome-reply-via-link ""' ""
badopt 'multihome-name "a/b"' "a/b"
badopt "multihome-name abcdefghijklmnopqrstuvwxyz0123456" "abcdefghijklmnopqrstuvwxyz0123456"
badopt 'multihome-name ""' ""
badopt 'multihome-pin ""' ""
badopt 'multihome-pin "port 25"' "port 25"
badopt 'multihome-pin "tcp port 0"' "tcp port 0"
badopt 'multihome-pin "tcp port 30-20"' "30-20"
badopt 'multihome-pin "192.0.2.1/24"' "192.0.2.1/24"
badopt 'multihome-pin "192.0.2.0/33"' "192.0.2.0/33"
badopt 'multihome-pin "sctp port 9"' "sctp"
badopt "multihome-pin \"tcp $long\"" ""
badopt 'multihome-weight' ""
peers 1 >/dev/null

# ---- two links claiming the same table, mark or priority ----
conflict() {
	local line=$1 want=$2 rc log=$TMP/conf.log errs=""
	peers 1 "$line" >/dev/null
	hx 1 --strict up >"$log" 2>&1
	rc=$?
	[ $rc = 3 ] || errs+="harness exit $rc (want 3: error logged); "
	grep -q -- "$want" "$log" || errs+="no error naming it: $(grep multihome: "$log" | tail -n 1); "
	unchanged || errs+="state changed: $(diff "$TMP/base.txt" "$TMP/changed.txt" | grep '^[<>]' | head -n 2); "
	grep -qs '^state up' "$MULTIHOME_RUNDIR/link.l1" && errs+="registered as up; "
	if [ -z "$errs" ]; then
		ok "badinput: l1 with $line while l2 holds it: refused, nothing applied"
	else
		not_ok "badinput: l1 with $line while l2 holds it: refused, nothing applied" "$errs"
	fi
}
conflict "multihome-table 102" "table 102 .*l2"
conflict "multihome-mark 0x2" "mark 0x2.*l2"
conflict "multihome-mark 0x2/0x3" "mark 0x2/0x3.*l2"
conflict "multihome-priority 102" "priority 102 .*l2"
peers 1 >/dev/null

# ---- the registry directory ----
# rundir_refused DESC PATH WANT: l1 up with MULTIHOME_RUNDIR=PATH must fail
rundir_refused() {
	local desc=$1 path=$2 want=$3 rc errs=""
	(MULTIHOME_RUNDIR=$path; export MULTIHOME_RUNDIR; hx 1 --strict up) >"$TMP/rd.log" 2>&1
	rc=$?
	[ $rc = 3 ] || errs+="harness exit $rc (want 3); "
	grep -q -- "$want" "$TMP/rd.log" || errs+="no message: $(grep multihome: "$TMP/rd.log" | tail -n 1); "
	unchanged || errs+="state changed; "
	if [ -z "$errs" ]; then ok "badinput: $desc refused with a message, nothing applied"; else
		not_ok "badinput: $desc refused with a message, nothing applied" "$errs"; fi
}
mkdir -m 700 "$TMP/real"
ln -s "$TMP/real" "$TMP/symrun"
rundir_refused "symlinked rundir" "$TMP/symrun" "symlink"
[ -z "$(ls -A "$TMP/real")" ] || not_ok "badinput: nothing created through the symlinked rundir" "$(ls "$TMP/real")"
mkdir -m 777 "$TMP/wide"
chmod 777 "$TMP/wide"
rundir_refused "world-writable rundir" "$TMP/wide" "writable"
mkdir -m 700 "$TMP/lockln"
ln -s "$TMP/victim" "$TMP/lockln/lock"
rundir_refused "symlinked lock file" "$TMP/lockln" "lock"
[ -e "$TMP/victim" ] && not_ok "badinput: lock symlink not followed" "$TMP/victim created"

# corrupt entries: rejected with a message, not trusted
R=$MULTIHOME_RUNDIR
printf 'garbage\n\001\002' >"$R/link.l5"
sed 's/^table .*/table 254/' "$R/link.l2" | sed 's/^name .*/name l6/' >"$R/link.l6"
# well-formed, claims table 101 and is up on ppp3, but the file is not root's
sed -e 's/^name .*/name l7/' -e 's/^table .*/table 101/' -e 's/^ifname .*/ifname ppp3/' \
	-e 's/^mark .*/mark 0x1\/0x1/' -e 's/^priority .*/priority 150/' "$R/link.l2" >"$R/link.l7"
ifi=$(nsx srv cat /sys/class/net/ppp3/ifindex)
sed -i "s/^ifindex .*/ifindex $ifi/" "$R/link.l7"
chown nobody "$R/link.l7"
# a well-formed entry whose file name and link name differ
sed 's/^name .*/name l8/' "$R/link.l2" >"$R/link.l9"
hx 1 --strict up >"$TMP/corrupt.log" 2>&1
rc=$?
errs=""
[ $rc = 0 ] || errs+="l1 up failed (exit $rc): $(grep multihome: "$TMP/corrupt.log" | tail -n 2); "
for e in l5 l6 l7 l9; do
	grep -q "registry entry .*link.$e rejected" "$TMP/corrupt.log" || errs+="no message for link.$e; "
done
[ -z "$(invariants 1 2)" ] || errs+="$(invariants 1 2 | head -n 3); "
if [ -z "$errs" ]; then
	ok "badinput: corrupt/foreign registry entries rejected with a message, not trusted"
else
	not_ok "badinput: corrupt/foreign registry entries rejected with a message, not trusted" "$errs"
fi
