#!/bin/bash
# Issue 5, foreign state: before the test srv holds 10,000 foreign mangle
# rules, foreign nat/filter/raw rules, foreign ip rules (one inside
# multihome's priority range), routes in other tables and in main, a foreign
# nexthop object and marks used by other software (a MARK rule, a CONNMARK
# restore, a fwmark rule to a blackhole table).  Four links then go up and
# down 100 times each, concurrently; in the middle (all up) the foreign part
# is unchanged and the foreign mark still routes (traffic); after the full
# withdrawal srv's rules, routes, nexthops and every iptables table are
# byte-identical to before.  Root; namespaces of its own.
GROUP=foreign
# shellcheck source=../lib/nsfar.sh
. "$(dirname "$0")/../lib/nsfar.sh"

need_tools
CYCLES=${MH_FOREIGN_CYCLES:-100}
NRULES=${MH_FOREIGN_RULES:-10000}
ALL=(1 2 3 4)
net_create || { not_ok "foreign: namespaces" "setup failed"; exit 0; }
for k in "${ALL[@]}"; do dev_add "$k"; peers "$k" >/dev/null; done

# ---- foreign state ----
{
	echo "*mangle"
	echo ":FOREIGN - [0:0]"
	echo "-A PREROUTING -i lan0 -j CONNMARK --restore-mark --nfmask 0xff0000 --ctmask 0xff0000"
	echo "-A PREROUTING -j FOREIGN"
	echo "-A OUTPUT -p udp --dport 7001 -j MARK --set-xmark 0x10000/0x10000"
	echo "-A FORWARD -j FOREIGN"
	echo "-A POSTROUTING -o lan0 -j CONNMARK --save-mark --nfmask 0xff0000 --ctmask 0xff0000"
	for i in $(seq 0 $((NRULES - 1))); do
		echo "-A FOREIGN -d 100.100.$((i / 256)).$((i % 256))/32 -m comment --comment fx$i -j RETURN"
	done
	echo "COMMIT"
	echo "*nat"
	echo ":FOREIGN-NAT - [0:0]"
	echo "-A PREROUTING -d 192.0.2.1/32 -p tcp --dport 8080 -j DNAT --to-destination 192.0.2.10:80"
	echo "-A POSTROUTING -s 192.0.2.0/24 -o lan0 -j MASQUERADE"
	echo "-A POSTROUTING -j FOREIGN-NAT"
	for i in $(seq 50); do echo "-A FOREIGN-NAT -d 198.51.100.$i/32 -j RETURN"; done
	echo "COMMIT"
	echo "*filter"
	echo "-A INPUT -i lan0 -p tcp --dport 22 -j ACCEPT"
	echo "-A FORWARD -i lan0 -j ACCEPT"
	echo "COMMIT"
	echo "*raw"
	echo "-A PREROUTING -i lan0 -p udp --dport 53 -j CT --notrack"
	echo "COMMIT"
} >"$TMP/foreign.rules"
nsx srv iptables-legacy-restore -w <"$TMP/foreign.rules" || not_ok "foreign: loading foreign iptables rules"
nsx srv ip rule add priority 50 from 192.0.2.0/24 lookup 200
nsx srv ip rule add priority 150 fwmark 0x10000/0x10000 lookup 300
nsx srv ip rule add priority 10050 from 198.51.100.9 lookup 300 proto static
nsx srv ip rule add priority 20000 iif lan0 lookup 200
nsx srv ip route add default via 192.0.2.254 dev lan0 table 200
nsx srv ip route add blackhole 203.0.113.0/24 table 300
nsx srv ip route add 100.100.0.0/16 via 192.0.2.254 dev lan0 proto static
nsx srv ip nexthop add id 7 via 192.0.2.253 dev lan0
nsx srv ip route add 198.51.100.128/25 nhid 7 table 200

# full: everything that must come back byte-identical
full() {
	echo "== rules"; nsx srv ip rule show
	echo "== routes"; nsx srv ip route show table all
	echo "== nexthops"; nsx srv ip nexthop show
	local t
	for t in mangle nat filter raw; do
		echo "== $t"; nsx srv iptables-legacy-save -t "$t" | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	done
}
# foreign_only: the same without what is tagged as multihome's
foreign_only() {
	full | grep -v -e 'proto 109' -e MULTIHOME -e '^	nexthop dev ppp' |
		grep -v -e '^default dev ppp[0-9] table 10[0-9] ' 
}
full >"$TMP/before.txt"
foreign_only >"$TMP/before-foreign.txt"
n=$(nsx srv iptables-legacy -t mangle -S FOREIGN | grep -c -- '-A FOREIGN')
if [ "$n" = "$NRULES" ] && grep -q '^150:' "$TMP/before.txt" && grep -q 'nhid 7' "$TMP/before.txt"; then
	ok "foreign: $NRULES foreign mangle rules, nat/filter/raw rules, ip rules, routes, nexthop set"
else
	not_ok "foreign: foreign state set up" "$n mangle rules"
fi

# ---- all up: the foreign part untouched, the foreign mark still routes ----
for k in "${ALL[@]}"; do hx "$k" up >>"$TMP/ev.log" 2>&1; done
out=$(invariants "${ALL[@]}")
foreign_only >"$TMP/mid-foreign.txt"
if [ -z "$out" ] && cmp -s "$TMP/before-foreign.txt" "$TMP/mid-foreign.txt"; then
	ok "foreign: 4 links up, all foreign state unchanged beside ours"
else
	not_ok "foreign: 4 links up, all foreign state unchanged beside ours" \
		"$out $(diff "$TMP/before-foreign.txt" "$TMP/mid-foreign.txt" | head -n 4)"
fi
out=$(traffic "${ALL[@]}")
[ -z "$out" ] && ok "foreign: traffic: pins and bound sockets by their links among 10k foreign rules" ||
	not_ok "foreign: traffic: pins and bound sockets by their links among 10k foreign rules" "$out"
# the foreign mark 0x10000 (udp 7001) must still reach its blackhole table;
# the same flow without the mark (udp 7000) gets through
m=$(nsx srv "$PROBE" connect --udp --port 7001 --timeout 500 203.0.113.50 2>&1)
u=$(nsx srv "$PROBE" connect --udp --port 7000 --timeout 1000 203.0.113.50 2>&1)
if [[ $m != *seen=* ]] && [[ $u == *seen=* ]]; then
	ok "foreign: a foreign fwmark still routes by its own rule (blackholed), unmarked flows pass"
else
	not_ok "foreign: a foreign fwmark still routes by its own rule (blackholed), unmarked flows pass" \
		"marked: $m / unmarked: $u"
fi
for k in "${ALL[@]}"; do hx "$k" up down >>"$TMP/ev.log" 2>&1; done

# ---- 100 up/down cycles of every link, concurrently ----
start=$(date +%s)
pids=()
for k in "${ALL[@]}"; do
	hxbg "$TMP/cyc$k.log" "$k" --time repeat "$CYCLES" up down
	pids+=("$HPID")
done
for p in "${pids[@]}"; do wait "$p"; done
secs=$(($(date +%s) - start))
n=$(cat "$TMP"/cyc*.log | grep -c '^event \(up\|down\)')
errs=$(grep -h 'multihome:' "$TMP"/cyc*.log | grep -i -e error -e fail -e refused | head -n 3)
if [ "$n" = $((2 * CYCLES * ${#ALL[@]})) ] && [ -z "$errs" ]; then
	ok "foreign: $CYCLES up/down cycles of 4 links concurrently ($n events, ${secs}s), none failed"
else
	not_ok "foreign: $CYCLES up/down cycles of 4 links concurrently" "$n events; $errs"
fi
for k in "${ALL[@]}"; do hx "$k" up down >>"$TMP/ev.log" 2>&1; done
full >"$TMP/after.txt"
if cmp -s "$TMP/before.txt" "$TMP/after.txt"; then
	ok "foreign: after full withdrawal rules, routes, nexthops, 4 tables byte-identical"
else
	not_ok "foreign: after full withdrawal rules, routes, nexthops, 4 tables byte-identical" \
		"$(diff "$TMP/before.txt" "$TMP/after.txt" | grep '^[<>]' | head -n 6)"
fi
