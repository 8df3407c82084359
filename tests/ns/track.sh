#!/usr/bin/env bash
# Upstream tracking (issue 15): a link whose PPP session stays up while its
# ISP forwards nothing goes offline by itself and comes back by itself.
#
# The scenario of tests/lib/topo.sh (isp1 weight 8, pins tcp/25 and udp/1130;
# isp2 weight 2), both links tracking two targets in inet, interval 1 s,
# down 3, up 5 (the defaults, written out).  The targets are chosen at run
# time so that the balanced route sends one of them by each ISP: a probe
# that lost its SO_MARK (the restore trap of the issue) would then leave by
# the other ISP, and the ISPs' counters see it.
#
#   probes      every probe leaves by its own link, at the configured rate,
#               also while its link is offline and the other carries all the
#               balanced traffic; never by the other ISP
#   death       isp1 drops everything it forwards toward inet (the session
#               stays up): time until 20/20 new connections succeed by isp2,
#               at most track-down x interval + 1 s = 4 s; the log line; status;
#               pins fall through; a UDP flow moves on; table, rules, ingress
#               and NAT stay, and an incoming connection is answered by the
#               link it came in on
#   recovery    isp1 forwards again: time until 80% +- 7% of new connections
#               go by isp1 and its pin is home, at most track-up x interval +
#               2 s = 7 s; a long-lived pinned UDP flow begun while it was
#               offline (by isp2) comes home
#   noflap      60 s with 10% loss each way on isp1's upstream (a fixed
#               pattern: nft numgen inc, the first 2 of every 20 packets in
#               each direction dropped, which also loses both probes of a
#               round, twice in a row at worst) and 100% loss to one of
#               isp2's targets: neither goes offline
#   restart     a redial in the same pppd (ip-down, ip-up) and a new pppd:
#               tracking starts afresh, one prober (the probe rate stays)
# The nftables backend runs the probe and death checks (track-nft.sh).
# shellcheck disable=SC2086  # $BALANCE_DSTS is a list of ranges
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=../lib/topo.sh
. "$HERE/../lib/topo.sh"

CTL=$MH_BUILD/multihomectl
FLOW=$MH_BUILD/mh-udpflow
A1=${LINK_LOCAL[isp1]}
A2=${LINK_LOCAL[isp2]}
BALANCE_DSTS="203.0.113.1-254 198.51.100.1-126"
PIN_DST=203.0.113.25            # tcp/25 is pinned to isp1
FLOW_PORT=1131
TRACK_CHECKS=${TRACK_CHECKS:-probes death recovery noflap restart}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# pick_targets: TA (balanced by isp1) and TB (balanced by isp2) from the
# addresses inet answers, with both links up and untracked
pick_targets() {
	local x
	TA='' TB=''
	for x in $(seq 254 -1 200); do
		case $(nsx srv ip -4 route get "203.0.113.$x" 2>/dev/null) in
		*" dev ppp0 "*) [ -z "$TA" ] && TA=203.0.113.$x ;;
		*" dev ppp1 "*) [ -z "$TB" ] && TB=203.0.113.$x ;;
		esac
		[ -n "$TA" ] && [ -n "$TB" ] && return 0
	done
	return 1
}

# probes_count ISP SRC: echo requests from SRC that entered ISP from srv
probes_count() {
	nsx "$1" iptables-legacy -t raw -L TRACKPROBES -v -x -n 2>/dev/null |
		awk -v s="$2" '$8 == s { n += $1 } END { print n + 0 }'
}

count_probes() {
	local i
	for i in 1 2; do
		nsx "isp$i" iptables-legacy -t raw -N TRACKPROBES
		nsx "isp$i" iptables-legacy -t raw -A TRACKPROBES -s "$A1" -j RETURN
		nsx "isp$i" iptables-legacy -t raw -A TRACKPROBES -s "$A2" -j RETURN
		nsx "isp$i" iptables-legacy -t raw -I PREROUTING -i cust -p icmp --icmp-type echo-request -j TRACKPROBES
	done
}

# probes_now: "isp1-from-A1 isp1-from-A2 isp2-from-A1 isp2-from-A2"
probes_now() {
	echo "$(probes_count isp1 "$A1") $(probes_count isp1 "$A2") $(probes_count isp2 "$A1") $(probes_count isp2 "$A2")"
}

# ctl ARGS...: multihomectl in srv; OUT (status's wrapped lines joined), RC
ctl() {
	OUT=$(nsx srv env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$CTL" "$@" 2>&1)
	RC=$?
	OUT=$(sed -E ':a;$!N;s/\n {4,}/ /;ta;P;D' <<<"$OUT")
}

# about_out DESC EXPR: EXPR (eval'd) about the last ctl's OUT; shows OUT if not
about_out() {
	if eval "$2"; then
		ok "$1"
	else
		not_ok "$1" "exit $RC; $(grep -v '^#' <<<"$OUT" | grep -e track -e multihome_link_online -e multihome_track -e critical -e warning | head -n 6)"
	fi
}

upstream_dead() { nsx isp1 iptables-legacy -I FORWARD -o wan -j DROP; }
upstream_back() { nsx isp1 iptables-legacy -D FORWARD -o wan -j DROP; }

# new_conns DSTS...: a new connection to each; sets GOT (answered) BY2 (seen as A2)
new_conns() {
	local out
	out=$(probe srv --port 80 --timeout 300 "$@" 2>&1)
	GOT=$(grep -c ' seen=' <<<"$out")
	BY2=$(grep -c " seen=$A2:" <<<"$out")
}

# logged NAME TEXT: the link's log has a line with TEXT
logged() { grep -F -- "$2" "$TOPO_DIR/$1.log" >/dev/null; }
# logs NAME TEXT: ... within 2 s (the line follows the event's kernel changes)
logs() {
	local i
	for i in $(seq 20); do logged "$1" "$2" && return 0; sleep 0.1; done
	return 1
}

# track_up: topology, targets picked, both links up tracking them
track_up() {
	local what=$1
	if ! topo_create || ! link_start isp1 || ! link_start isp2; then
		not_ok "$what: topology and links" "$(tail -n 5 "$TOPO_DIR"/isp*.log 2>/dev/null)"
		topo_destroy
		return 1
	fi
	if ! pick_targets; then
		not_ok "$what: a target balanced by each ISP" "$(nsx srv ip route show)"
		topo_destroy
		return 1
	fi
	link_stop isp1 term
	link_stop isp2 term
	local t="multihome-track $TA,$TB"$'\n'"multihome-track-interval 1"$'\n'
	t+="multihome-track-down 3"$'\n'"multihome-track-up 5"
	# shellcheck disable=SC2034  # peers_file reads them
	LINK_EXTRA_isp1=$t${PIN_EXTRA:-} LINK_EXTRA_isp2=$t
	count_probes
	if ! link_start isp1 || ! link_start isp2; then
		not_ok "$what: links with tracking come up" "$(tail -n 5 "$TOPO_DIR"/isp*.log 2>/dev/null)"
		topo_destroy
		return 1
	fi
	return 0
}

# probes_by_own_link DESC SECONDS: over SECONDS, each link's probes entered
# its own ISP at 2 a second (+-2), and none the other ISP
probes_by_own_link() {
	local desc=$1 secs=$2 b a d11 d12 d21 d22 lo hi
	read -r -a b <<<"$(probes_now)"
	sleep "$secs"
	read -r -a a <<<"$(probes_now)"
	d11=$((a[0] - b[0])) d12=$((a[1] - b[1])) d21=$((a[2] - b[2])) d22=$((a[3] - b[3]))
	lo=$((2 * secs - 2)) hi=$((2 * secs + 2))
	check "$desc: in ${secs} s ISP1 saw $d11 probes of isp1 and $d12 of isp2, ISP2 $d22 of isp2 and $d21 of isp1 (want $lo..$hi of its own, 0 of the other)" \
		test "$d11" -ge "$lo" -a "$d11" -le "$hi" -a "$d22" -ge "$lo" -a "$d22" -le "$hi" -a "$d12" = 0 -a "$d21" = 0
}

t_probes() {
	track_up probes || return 0
	check "probes: targets $TA (balanced by ISP1) and $TB (balanced by ISP2) as picked: the route still says so" \
		test "$(nsx srv ip -4 route get "$TA" | grep -c 'dev ppp0 ')$(nsx srv ip -4 route get "$TB" | grep -c 'dev ppp1 ')" = 11
	probes_by_own_link "probes, both online" 4
	# balanced traffic meanwhile: the probes are not the user's flows
	local out
	out=$(probe srv --port 80 $BALANCE_DSTS 2>&1)
	check "probes: 380 balanced connections answered meanwhile ($(grep -c ' seen=' <<<"$out"))" \
		test "$(grep -c ' seen=' <<<"$out")" = 380
	ctl status
	about_out "probes: status shows both links online with an RTT and 0% loss" \
		'grep -q "tracking $TA, $TB every 1.000 s .*: online since .*, rtt [0-9]*\.[0-9]* ms, loss 0%" <<<"$OUT" &&
		      [ "$(grep -c ": online since" <<<"$OUT")" = 2 ]'
	ctl status --json
	about_out "probes: status --json: tracking state, rtt_ms and loss_pct per link" \
		'grep -q "\"tracking\":{\"targets\":\[\"$TA\",\"$TB\"\],\"interval_ms\":1000,\"down\":3,\"up\":5,\"state\":\"online\",\"since\":[0-9]*,\"rtt_ms\":[0-9.]*,\"loss_pct\":0" <<<"$OUT"'
	ctl metrics
	about_out "probes: metrics: multihome_link_online 1 and an RTT per link" \
		'[ "$(grep -c "^multihome_link_online{link=\"isp[12]\"} 1$" <<<"$OUT")" = 2 ] &&
		 [ "$(grep -Ec "^multihome_track_rtt_seconds\{link=\"isp[12]\"\} [0-9.]+(e-[0-9]+)?$" <<<"$OUT")" = 2 ]'
	topo_destroy
}

t_death() {
	local t0 elapsed=-1 i f1 out lines members
	track_up death || return 0
	ip netns exec "$(ns_name inet)" "$FLOW" far --port $FLOW_PORT --max-time 60 >"$TOPO_DIR/far" 2>&1 &
	SERVE_PIDS+=($!)
	for _ in $(seq 50); do grep -qs ready "$TOPO_DIR/far" && break; sleep 0.05; done
	# a flow the balanced route sends by isp1 (TA is such a destination)
	ip netns exec "$(ns_name srv)" "$FLOW" client --port $FLOW_PORT --interval-ms 100 \
		--duration-ms 12000 "$TA" >"$TOPO_DIR/flow" 2>&1 &
	SERVE_PIDS+=($!)
	sleep 1
	upstream_dead
	t0=$(now_ms)
	for i in $(seq 40); do
		new_conns 203.0.113.100-119
		if [ "$GOT" = 20 ] && [ "$BY2" = 20 ]; then
			elapsed=$(($(now_ms) - t0))
			break
		fi
		sleep 0.05
	done
	check "death: 20/20 new connections by ISP2 ${elapsed} ms after ISP1's upstream died (want <= 4000: track-down 3 x 1 s + 1 s)" \
		test "$elapsed" -ge 0 -a "$elapsed" -le 4000
	check "death: isp1's log says 'isp1 offline: 3 rounds lost ($TA, $TB)'" \
		logs isp1 "isp1 offline: 3 rounds lost ($TA, $TB)"
	ctl status
	about_out "death: status says isp1 offline (exit $RC, want 2: critical link-offline)" \
		'[ "$RC" = 2 ] && grep -q "tracking $TA, $TB every 1.000 s .*: offline since" <<<"$OUT" &&
		      grep -q "critical (link-offline)" <<<"$OUT"'
	out=$(probe srv --port 25 "$PIN_DST" 2>&1)
	check "death: isp1's pin tcp/25 falls through: answered by ISP2 ($(head -n 1 <<<"$out"))" \
		grep -q " seen=$A2:" <<<"$out"
	probes_by_own_link "death: isp1 offline, isp2 carries every balanced flow" 3
	sleep 1
	f1=$(awk '/^ans / { split($4, s, "="); split(s[2], h, ":"); last = h[1] } END { print last }' "$TOPO_DIR/flow")
	check "death: the UDP flow balanced by isp1 moved on: its last answers saw $f1 (want $A2)" \
		test "$f1" = "$A2"
	incoming_while_offline
	lines=$(nsx srv ip rule show | grep -c 'lookup 101')
	check "death: isp1 keeps its table route, its 2 rules, its ingress and NAT rules" \
		eval 'nsx srv ip route show table 101 | grep -q "^default dev ppp0" && [ "$lines" = 2 ] && fw_keeps_isp1'
	members=$(nsx srv ip nexthop show | sed -n 's/.* group \([^ ]*\).*/\1/p' | tr '/' '\n' | cut -d, -f1)
	check "death: the balanced group holds isp2 alone (members: $(echo $members))" \
		eval '[ "$(wc -w <<<"$members")" = 1 ] && nsx srv ip nexthop show id "$members" | grep -q " dev ppp1 "'
	topo_destroy
}

# incoming_while_offline: ISP1's router connects from its WAN address
# (100.64.101.1, which srv routes by the balanced route: isp2 alone now) to
# srv's isp1 address.  The answers must leave by ppp0 (the link it came in
# on): by ppp1 they would be dropped, ISP2 filtering a source that is not
# its customer's.
incoming_while_offline() {
	local t0 t1 d0 d1 out n
	serve_start srv --tcp 8080 || { not_ok "death: a server on srv"; return; }
	t0=$(tx_packets srv ppp0)
	t1=$(tx_packets srv ppp1)
	out=$(probe isp1 --port 8080 --bind 100.64.101.1 --repeat 10 "$A1" 2>&1)
	d0=$(($(tx_packets srv ppp0) - t0))
	d1=$(($(tx_packets srv ppp1) - t1))
	n=$(grep -c " seen=100.64.101.1:" <<<"$out")
	check "death: while isp1 is offline, 10/10 incoming connections to $A1 from ISP1's 100.64.101.1 answered ($n), by ppp0 (tx +$d0; ppp1 +$d1)" \
		test "$n" = 10 -a "$d0" -ge 20 -a "$d1" -lt 10
}

# fw_keeps_isp1: isp1's ingress connmark and NAT rules are there
fw_keeps_isp1() {
	if [ "${MULTIHOME_FIREWALL:-}" = nft ]; then
		# elements of map ingress and set masq
		[ "$(nsx srv nft list table ip multihome | grep -c '"ppp0" comment "multihome isp1"')" = 2 ]
	else
		[ "$(nsx srv iptables-legacy -t mangle -S MULTIHOME-PRE | grep -c -- "-i ppp0 ")" = 2 ] &&
			nsx srv iptables-legacy -t nat -S MULTIHOME-NAT | grep -q -- "-o ppp0 "
	fi
}

# share_ok PART TOTAL: PART/TOTAL within 80% +- 7%.
share_ok() { [ "$2" -gt 0 ] && [ $((1000 * $1)) -ge $((730 * $2)) ] && [ $((1000 * $1)) -le $((870 * $2)) ]; }

t_recovery() {
	local t0 elapsed=-1 i out n=0 i1=0 p25 deadline first last
	local PIN_EXTRA=$'\n''multihome-pin "udp port 1132"'   # track_up adds it to isp1's options
	track_up recovery || return 0
	ip netns exec "$(ns_name inet)" "$FLOW" far --port 1132 --max-time 60 >"$TOPO_DIR/far" 2>&1 &
	SERVE_PIDS+=($!)
	for _ in $(seq 50); do grep -qs ready "$TOPO_DIR/far" && break; sleep 0.05; done
	upstream_dead
	for i in $(seq 60); do logged isp1 "isp1 offline:" && break; sleep 0.1; done
	check "recovery: isp1 went offline first" logged isp1 "isp1 offline:"
	# a long-lived flow of isp1's pin udp/1132, begun while isp1 is offline
	# (by isp2, its pin falling through), keepalives every 100 ms both ways
	ip netns exec "$(ns_name srv)" "$FLOW" client --port 1132 --interval-ms 100 \
		--duration-ms 14000 "$TA" >"$TOPO_DIR/flow" 2>&1 &
	SERVE_PIDS+=($!)
	sleep 1
	upstream_back
	t0=$(now_ms)
	deadline=$((t0 + 9000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		out=$(probe srv --port 80 --timeout 500 $BALANCE_DSTS 2>&1)
		n=$(grep -c ' seen=' <<<"$out")
		i1=$(grep -c " seen=$A1:" <<<"$out")
		p25=$(probe srv --port 25 --timeout 500 "$PIN_DST" 2>&1)
		if [ "$n" = 380 ] && share_ok "$i1" "$n" && grep -q " seen=$A1:" <<<"$p25"; then
			elapsed=$(($(now_ms) - t0))
			break
		fi
		sleep 0.1
	done
	check "recovery: ISP1's share back to $i1/$n (80% +- 7%) and tcp/25 home ${elapsed} ms after its upstream returned (want <= 7000: track-up 5 x 1 s + 2 s)" \
		test "$elapsed" -ge 0 -a "$elapsed" -le 7000
	sleep 1
	first=$(awk '/^ans / { split($4, s, "="); split(s[2], h, ":"); print h[1]; exit }' "$TOPO_DIR/flow")
	last=$(awk '/^ans / { split($4, s, "="); split(s[2], h, ":"); last = h[1] } END { print last }' "$TOPO_DIR/flow")
	check "recovery: a pinned UDP flow begun while isp1 was offline came home: first answers saw $first (want $A2), the last $last (want $A1)" \
		test "$first" = "$A2" -a "$last" = "$A1"
	logs isp1 "isp1 online: "
	check "recovery: isp1's log says 'isp1 online: 5 rounds answered' ($(grep -e 'isp1 online' -e 'going online' "$TOPO_DIR/isp1.log" | head -n 2 | tr '\n' ' '))" \
		logged isp1 "isp1 online: 5 rounds answered"
	ctl status
	about_out "recovery: status: both online again, nothing critical (exit $RC)" \
		'[ "$RC" -le 1 ] && ! grep -q "^critical" <<<"$OUT" && [ "$(grep -c ": online since" <<<"$OUT")" = 2 ]'
	topo_destroy
}

t_noflap() {
	local s1 l1 l2
	track_up noflap || return 0
	# isp1: the first 2 of every 20 packets forwarded each way are lost (10%)
	if ! nsx isp1 nft -f - <<-'EOF'
	table ip lossy {
		chain forward {
			type filter hook forward priority 0; policy accept;
			oifname "wan" icmp type echo-request numgen inc mod 20 < 2 counter drop
			iifname "wan" icmp type echo-reply numgen inc mod 20 < 2 counter drop
		}
	}
	EOF
	then
		not_ok "noflap: the lossy upstream of isp1 (nft)"
		topo_destroy
		return 0
	fi
	# isp2: one of its two targets never answers
	nsx isp2 iptables-legacy -I FORWARD -o wan -d "$TB" -p icmp -j DROP
	sleep 60
	ctl status
	s1=$(grep -c "^  tracking .*: online since" <<<"$OUT")
	l1=$(sed -n 's/^  tracking .*: online since.* loss \([0-9]*\)% .*/\1/p' <<<"$OUT" | head -n 1)
	l2=$(sed -n 's/^  tracking .*: online since.* loss \([0-9]*\)% .*/\1/p' <<<"$OUT" | sed -n 2p)
	check "noflap: isp1's upstream lost $(nsx isp1 nft list table ip lossy | grep -o 'packets [0-9]*' | awk '{ n += $2 } END { print n + 0 }') probes or answers in 60 s; status: isp1 loss ${l1:-?}% (want 10..30), isp2 ${l2:-?}% (want 50: one target of two)" \
		test "${l1:-0}" -ge 10 -a "${l1:-0}" -le 30 -a "${l2:-0}" = 50
	check "noflap: 60 s of 10% loss each way on isp1's upstream: isp1 never offline" \
		eval '! logged isp1 "isp1 offline:"'
	check "noflap: 60 s of 100% loss to $TB on isp2's: isp2 never offline" \
		eval '! logged isp2 "isp2 offline:"'
	check "noflap: status: both online" test "$s1" = 2
	topo_destroy
}

# rate_ok DESC: isp1's probes at 2 a second over 3 s, none at ISP2
rate_ok() {
	local b a d
	read -r -a b <<<"$(probes_now)"
	sleep 3
	read -r -a a <<<"$(probes_now)"
	d=$((a[0] - b[0]))
	check "$1: isp1's probes over 3 s: $d (want 4..8: one prober), $((a[2] - b[2])) by ISP2" \
		test "$d" -ge 4 -a "$d" -le 8 -a $((a[2] - b[2])) = 0
}

t_restart() {
	local peers
	track_up restart || return 0
	# a redial of persist: ip-down and ip-up in the same pppd
	link_stop isp1 term
	link_device isp1
	peers=$(peers_file isp1)
	ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" \
		"$HARNESS" --file "$peers" --plugin "$PLUGIN" --ifname ppp0 --local "$A1" \
		--remote "${LINK_PEER[isp1]}" --linkname isp1 up sleep 2500 down up wait down exit \
		>"$TOPO_DIR/isp1-redial.log" 2>&1 &
	LINK_PID[isp1]=$!
	sleep 4
	check "restart: a redial (ip-down, ip-up) in one pppd: tracking started twice, stopped once" \
		test "$(grep -c 'upstream tracking of 2 target' "$TOPO_DIR/isp1-redial.log")" = 2 -a \
		"$(grep -c 'isp1 down' "$TOPO_DIR/isp1-redial.log")" = 1
	rate_ok "restart: after the redial"
	link_stop isp1 term
	link_start isp1
	rate_ok "restart: a new pppd"
	check "restart: after pppd ended, its health file is gone with its prober" \
		test ! -e "$MULTIHOME_RUNDIR/health.isp1" -o "$(sed -n 's/^pid //p' "$MULTIHOME_RUNDIR/health.isp1")" = "${LINK_PID[isp1]}"
	topo_destroy
}

main() {
	local c missing
	[ "$(id -u)" = 0 ] || { skip "track" "needs root"; return 0; }
	missing=$(topo_missing)
	[ -x "$FLOW" ] || missing="$missing mh-udpflow"
	command -v nft >/dev/null || missing="$missing nft"
	if [ -n "$missing" ]; then
		not_ok "track: tools present" "missing: $missing"
		return 1
	fi
	for c in $TRACK_CHECKS; do
		echo "# $c"
		"t_$c"
	done
}

main
