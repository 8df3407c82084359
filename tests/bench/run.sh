#!/bin/bash
# make bench: the per-event cost of multihome.so against the article's shell
# commands, how it grows with foreign firewall rules and with links, and the
# outage when an uplink device vanishes.  Root; everything happens in network
# namespaces this script creates and removes (on failure too).
#
#   tests/bench/run.sh            (what `make bench` runs)
#   BENCH_EVENTS=100 BENCH_SCALE_EVENTS=50 BENCH_LINKS="2 16 64 256"
#   BENCH_FOREIGN="0 1000 10000" tests/bench/run.sh
#   BENCH_PROFILE=1 ...   also strace -c and callgrind 10 events of each case
#   BENCH_KEEP=1 ...      keep the work directory (raw numbers, logs)
#
# Foreign rules: -A FOREIGN -s 203.0.113.X/32 -p tcp -m tcp --dport P -j MARK
# --set-xmark 0x40000000/0x40000000 in mangle (a chain jumped to from FORWARD),
# loaded with iptables-legacy-restore before anything else.
#
# Topology of every case (srv = the multihomed host, far = the ISPs' side):
#
#     srv  u0 100.64.0.2 <-veth-> f0 100.64.0.1   far
#          u1 100.64.1.2 <-veth-> f1 100.64.1.1   (203.0.113.1-16 on lo,
#          ...                                    UDP reflector; failover only)
#          uI 100.64.I.2 <-veth-> fI 100.64.I.1
#
# Link I: table 1000+I, mark (I+1)<<8 / 0x1ff00 (values, never bits: up to
# 256 links without clashing fwmark rules), priority 100+I, weight 1.  The
# measured link is the last one; the others are registered before.
#
# Per event: one mh-pppd-harness process loads build/multihome.so and runs
# `--time repeat N up down`; the baseline is tests/bench/shell-link.sh (the
# same kernel state by ip/iptables-legacy, one process per change) over the
# same background state, in a fresh namespace with the same foreign rules.
# The floor is mh-bench-floor in multihome's namespace right after it: the
# same messages as one event sends, built by the core, sent alone (no
# registry, no lock, no checks, one batch, sockets open).
#
# Memory: the harness's VmRSS with its link up at 2 and at the most links,
# against the harness without the plugin; real pppd's peak RSS with and
# without the plugin loaded (this kernel has no PPP: pppd stops after its
# options, so no event runs in it).
#
# Results also go to $BENCH_OUT (default build/bench/): BACKEND.txt (this
# output), BACKEND.dat (event cost against links, for tests/bench/plot.sh).
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
set -o pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${MH_BUILD:-$TOP/build}
HARNESS=$BUILD/mh-pppd-harness
PLUGIN=$BUILD/multihome.so
FLOW=$BUILD/mh-bench-flow
FLOOR=$BUILD/mh-bench-floor
RSS=$BUILD/mh-bench-rss
SHELL_LINK=$TOP/tests/bench/shell-link.sh
BACKEND=${MULTIHOME_FIREWALL:-iptables}
OUT=${BENCH_OUT:-$BUILD/bench}

EVENTS=${BENCH_EVENTS:-100}             # up/down pairs, main case
SCALE_EVENTS=${BENCH_SCALE_EVENTS:-50}  # up/down pairs, scaling cases
LINKS=${BENCH_LINKS:-"2 16 64 256"}
FOREIGN=${BENCH_FOREIGN:-"0 1000 10000"}
PORT=7777

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for f in "$HARNESS" "$PLUGIN" "$FLOW" "$FLOOR" "$RSS"; do [ -x "$f" ] || [ -f "$f" ] || die "missing $f (make build-all)"; done
for t in ip iptables-legacy iptables-legacy-restore; do
	command -v $t >/dev/null || die "missing $t"
done

for n in $LINKS; do
	[ "$n" -ge 2 ] && [ "$n" -le 256 ] 2>/dev/null || die "BENCH_LINKS: $n is not in 2..256"
done

ID=mhb$$
# tmpfs, as production /run is: the registry's cost is part of an event
WORK=$(mktemp -d /dev/shm/mh-bench.XXXXXX) || die "mktemp"
NSLIST=()
PIDS=()

cleanup() {
	local p n
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for n in "${NSLIST[@]}"; do ns_del "$n" 2>/dev/null; done
	[ -n "${BENCH_KEEP:-}" ] && { echo "bench: kept $WORK" >&2; return; }
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- namespaces --------------------------------------------------------------

# The uplinks are in device group UPLINKS: deleting them by group is one
# unregister of all of them, done before `ip netns del` returns.  Left to
# the kernel's cleanup of a deleted namespace, 256 veth pairs go in the
# background under the rtnl lock while the next case (the next backend's
# first one) measures.
UPLINKS=7
ns_del() { # NAME
	ip -n "$1" link del group "$UPLINKS" 2>/dev/null
	ip netns del "$1"
}

# mk_ns CASE NLINKS NFOREIGN: namespaces $ID-CASE (srv) and $ID-CASE-far with
# NLINKS veth uplinks and NFOREIGN foreign mangle rules in srv.
mk_ns() {
	local c=$1 n=$2 nf=$3 srv=$ID-$1 far=$ID-$1-far i
	ip netns add "$srv" || die "ip netns add $srv"
	NSLIST+=("$srv")
	ip netns add "$far" || die "ip netns add $far"
	NSLIST+=("$far")
	ip netns exec "$far" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	ip netns exec "$srv" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	# the failover's split of flows over the links: the same on every run (>= 6.11)
	[ -e /proc/sys/net/ipv4/fib_multipath_hash_seed ] &&
		ip netns exec "$srv" sysctl -qw net.ipv4.fib_multipath_hash_seed=12345
	{
		echo "link set lo up"
		for ((i = 0; i < n; i++)); do
			echo "link add u$i group $UPLINKS type veth peer name f$i netns $far"
			echo "addr add 100.64.$i.2 peer 100.64.$i.1 dev u$i"
			echo "link set u$i up"
		done
	} >"$WORK/$c.srv.batch"
	{
		echo "link set lo up"
		for ((i = 0; i < n; i++)); do
			echo "addr add 100.64.$i.1 peer 100.64.$i.2 dev f$i"
			echo "link set f$i up"
		done
	} >"$WORK/$c.far.batch"
	ip -n "$srv" -batch "$WORK/$c.srv.batch" || die "$c: uplinks"
	ip -n "$far" -batch "$WORK/$c.far.batch" || die "$c: far ends"
	if [ "$nf" -gt 0 ]; then
		{
			echo "*mangle"
			echo ":FOREIGN - [0:0]"
			echo "-A FORWARD -j FOREIGN"
			for ((i = 0; i < nf; i++)); do
				echo "-A FOREIGN -s 203.0.113.$((i % 256))/32 -p tcp -m tcp --dport $((1024 + i)) -j MARK --set-xmark 0x40000000/0x40000000"
			done
			echo "COMMIT"
		} >"$WORK/$c.foreign"
		ip netns exec "$srv" iptables-legacy-restore --noflush <"$WORK/$c.foreign" || die "$c: foreign rules"
	fi
}

peers() { # I: the peers file of link I
	local i=$1 f=$WORK/peers.$1
	[ -f "$f" ] || printf 'plugin %s\nmultihome-name l%d\nmultihome-table %d\nmultihome-mark 0x%x/0x1ff00\nmultihome-priority %d\nmultihome-weight 1\n' \
		"$PLUGIN" "$i" $((1000 + i)) $(((i + 1) << 8)) $((100 + i)) >"$f"
	echo "$f"
}

# harness CASE I WORDS...: the pppd harness for link I in CASE's srv
harness() {
	local c=$1 i=$2
	shift 2
	MULTIHOME_RUNDIR=$WORK/run.$c ip netns exec "$ID-$c" "$HARNESS" --file "$(peers "$i")" \
		--ifname "u$i" --local "100.64.$i.2" --remote "100.64.$i.1" "$@"
}

# mh_background CASE N: register links 0..N-2 through the plugin
mh_background() {
	local c=$1 n=$2 i
	mkdir -p "$WORK/run.$c"
	for ((i = 0; i < n - 1; i++)); do
		harness "$c" "$i" up >/dev/null 2>>"$WORK/$c.bg.log" ||
			die "$c: registering link l$i failed: $(tail -3 "$WORK/$c.bg.log")"
	done
}

# shell_background CASE N: links 0..N-2 as the shell scripts leave them.
# Sets SHELL_OTHERS and SHELL_MODE (multipath beyond SHELL_GROUP_MAX links).
SHELL_GROUP_MAX=100
shell_background() {
	local c=$1 n=$2 i members='' ifs='' mp=''
	SHELL_MODE=group
	[ "$n" -gt "$SHELL_GROUP_MAX" ] && SHELL_MODE=multipath
	{
		echo "rule add priority 99 lookup main suppress_prefixlength 0"
		for ((i = 0; i < n - 1; i++)); do
			echo "route replace default dev u$i table $((1000 + i))"
			printf 'rule add priority %d fwmark 0x%x/0x1ff00 lookup %d\n' $((100 + i)) $(((i + 1) << 8)) $((1000 + i))
			echo "rule add priority $((10100 + i)) from 100.64.$i.2 lookup $((1000 + i))"
			[ "$SHELL_MODE" = group ] && echo "nexthop replace id $((1 + i)) dev u$i"
			members=${members:+$members/}$((1 + i))
			ifs=${ifs:+$ifs,}u$i
			mp="$mp nexthop dev u$i weight 1"
		done
		if [ "$SHELL_MODE" = group ]; then
			echo "nexthop replace id 100000 group $members"
			echo "route replace default nhid 100000"
		fi
	} >"$WORK/$c.shell.batch"
	ip -n "$ID-$c" -batch "$WORK/$c.shell.batch" || die "$c: shell background"
	if [ "$SHELL_MODE" = multipath ]; then # too long for a batch line
		# shellcheck disable=SC2086
		ip -n "$ID-$c" route replace default scope global $mp || die "$c: multipath route"
	fi
	{
		echo "*mangle"
		echo "-A OUTPUT -j CONNMARK --restore-mark --nfmask 0x1ff00 --ctmask 0x1ff00"
		echo "-A OUTPUT -m mark ! --mark 0x0/0x1ff00 -j ACCEPT"
		for ((i = 0; i < n - 1; i++)); do
			printf -- '-A PREROUTING -i u%d -j CONNMARK --set-xmark 0x%x/0x1ff00\n' "$i" $(((i + 1) << 8))
		done
		echo "COMMIT"
		echo "*nat"
		for ((i = 0; i < n - 1; i++)); do
			echo "-A POSTROUTING -o u$i -j MASQUERADE"
		done
		echo "COMMIT"
	} >"$WORK/$c.shell.ipt"
	ip netns exec "$ID-$c" iptables-legacy-restore --noflush <"$WORK/$c.shell.ipt" || die "$c: shell firewall"
	SHELL_OTHERS=$members
	[ "$SHELL_MODE" = multipath ] && SHELL_OTHERS=$ifs
}

# ---- statistics -------------------------------------------------------------

# stats FILE: "median min max" of the numbers in FILE
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- - -"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%g %g %g\n", m, v[1], v[NR] }'
}

# ratio_stats A B [OUT]: median/min/max of A[i]/B[i], pair by pair (kept in OUT, A.ratio)
ratio_stats() {
	local out=${3:-$1.ratio}
	paste "$1" "$2" | awk '$2 > 0 { printf "%.5f\n", $1 / $2 }' >"$out"
	stats "$out"
}

fmt_us() { # microseconds -> "123 us" or "12.3 ms"
	awk -v v="$1" 'BEGIN { if (v == "-") print "-"; else if (v >= 1000) printf "%.2f ms", v / 1000; else printf "%d us", v + 0.5 }'
}

# range FILE: "N" when all equal, else "MIN-MAX"
range() {
	sort -n "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR == 0) print "-"; else if (lo == hi) print lo; else print lo "-" hi }'
}

# ---- one case ---------------------------------------------------------------

# mh_and_floor CASE I PAIRS: multihome's events and the floor's, in ROUNDS
# turns (the two in the same stretch of time: a neighbour's load hits both
# alike).  A round's harness is a new process: its first up event reads the
# registry from the files; that one is kept apart (the first round's is
# the "first event" figure) and not in the medians, nor the floor's first.
ROUNDS=5
mh_and_floor() {
	local c=$1 m=$2 pairs=$3 k r
	k=$(((pairs + ROUNDS - 1) / ROUNDS))
	: >"$WORK/$c.mh.out"
	: >"$WORK/$c.mh.log"
	: >"$WORK/$c.fl.out"
	: >"$WORK/$c.mh.cold"
	for ((r = 0; r < ROUNDS; r++)); do
		harness "$c" "$m" --time repeat "$k" up down >"$WORK/$c.mh.round" 2>"$WORK/$c.mh.rlog" ||
			die "$c: harness failed: $(tail -3 "$WORK/$c.mh.rlog")"
		grep -c ' up on ' "$WORK/$c.mh.rlog" | grep -qx "$k" ||
			die "$c: not every up event succeeded: $(grep -v ' up on \| down on ' "$WORK/$c.mh.rlog" | tail -3)"
		[ "$r" = 0 ] && awk '$1 == "event" && $2 == "up" { print $4; exit }' "$WORK/$c.mh.round" >"$WORK/$c.mh.cold"
		awk '$1 == "event" && $2 == "up" && !seen { seen = 1; next } { print }' "$WORK/$c.mh.round" >>"$WORK/$c.mh.out"
		awk '/ up on / && !seen { seen = 1; next } { print }' "$WORK/$c.mh.rlog" >>"$WORK/$c.mh.log"
		MULTIHOME_RUNDIR=$WORK/run.$c ip netns exec "$ID-$c" "$FLOOR" --link "l$m" --ifname "u$m" \
			--local "100.64.$m.2" --remote "100.64.$m.1" --repeat "$k" \
			$([ "$r" = $((ROUNDS - 1)) ] && echo --groups "$pairs") >"$WORK/$c.fl.round" \
			2>"$WORK/$c.fl.log" || die "$c: floor failed: $(tail -3 "$WORK/$c.fl.log")"
		# its first up, too, is a new process's (new sockets): left out alike
		awk '$1 == "event" && $2 == "up" && !seen { seen = 1; next } { print }' "$WORK/$c.fl.round" >>"$WORK/$c.fl.out"
	done
}

# run_case NAME NLINKS NFOREIGN PAIRS: multihome and shell, N up/down pairs each
run_case() {
	local c=$1 n=$2 nf=$3 pairs=$4 m=$(($2 - 1)) t0 t1 ev
	local mark
	mark=$(printf '0x%x/0x1ff00' $(((m + 1) << 8)))
	t0=$(date +%s.%N)

	mk_ns "$c" "$n" "$nf"
	mh_background "$c" "$n"
	mh_and_floor "$c" "$m" "$pairs"
	case " $RSS_CASES " in *" $c "*) rss_case "$c" "$m" ;; esac

	[ -n "${BENCH_PROFILE:-}" ] && profile "$c" "$m"

	mk_ns "$c-sh" "$n" "$nf"
	shell_background "$c-sh" "$n"
	ip netns exec "$ID-$c-sh" "$SHELL_LINK" "$pairs" "u$m" "100.64.$m.2" $((1000 + m)) "$mark" \
		$((100 + m)) $((1 + m)) 100000 "$SHELL_OTHERS" "$SHELL_MODE" >"$WORK/$c.sh.out" 2>"$WORK/$c.sh.log" ||
		die "$c: shell baseline failed: $(tail -3 "$WORK/$c.sh.log")"

	for ev in up down; do
		awk -v e="$ev" '$1 == "event" && $2 == e { print $4 }' "$WORK/$c.mh.out" >"$WORK/$c.mh.$ev"
		awk -v e="$ev" '$1 == "event" && $2 == e { print $4 }' "$WORK/$c.sh.out" >"$WORK/$c.sh.$ev"
		awk -v e="$ev" '$1 == "event" && $2 == e { print $4 }' "$WORK/$c.fl.out" >"$WORK/$c.fl.$ev"
		awk -v e="$ev" '$1 == "event" && $2 == e { print $8 }' "$WORK/$c.fl.out" >"$WORK/$c.fl.$ev.fwus"
		awk -v e="$ev" '$1 == "event" && $2 == e { print $6 }' "$WORK/$c.fl.out" >"$WORK/$c.fl.$ev.nlus"
		grep " $ev on " "$WORK/$c.mh.log" |
			sed -n 's/.* \([0-9]*\) netlink messages, \([0-9]*\) firewall commits, \([0-9]*\) us (firewall \([0-9]*\) us).*/\1 \2 \3 \4/p' \
			>"$WORK/$c.mh.$ev.cnt"
		awk '{ print $1 }' "$WORK/$c.mh.$ev.cnt" >"$WORK/$c.mh.$ev.nl"
		awk '{ print $2 }' "$WORK/$c.mh.$ev.cnt" >"$WORK/$c.mh.$ev.fw"
		# the firewall backend's part of the event, and the rest (the netlink half)
		awk '{ print $4 }' "$WORK/$c.mh.$ev.cnt" >"$WORK/$c.mh.$ev.fwus"
		awk '{ print $3 - $4 }' "$WORK/$c.mh.$ev.cnt" >"$WORK/$c.mh.$ev.nlus"
	done
	for k in mpath resilient; do
		awk -v k="$k" '$1 == "group" && $2 == k { print $4 }' "$WORK/$c.fl.out" >"$WORK/$c.group.$k"
	done
	# the namespaces of a finished case go now: 256 links x 4 namespaces add up
	ns_del "$ID-$c" && ns_del "$ID-$c-far" && ns_del "$ID-$c-sh" && ns_del "$ID-$c-sh-far"
	t1=$(date +%s.%N)
	[ "$SHELL_MODE" = multipath ] && echo "$n" >>"$WORK/shell-multipath"
	echo "$c" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" >>"$WORK/case-seconds"
}

# profile CASE I: where an event's time goes (BENCH_PROFILE=1): wall time per
# syscall (strace -w -c) and user-space instructions per function inside the
# core (callgrind, collected only within mh_link_up/mh_link_down), 10 events.
profile() {
	local c=$1 m=$2 f=$WORK/$1.profile
	{
		echo "== $c: strace -f -w -c, repeat 5 up down (wall time per syscall)"
		harness "$c" "$m" repeat 5 up down 2>/dev/null >/dev/null
		MULTIHOME_RUNDIR=$WORK/run.$c ip netns exec "$ID-$c" strace -f -w -c -o "$f.strace" \
			"$HARNESS" --file "$(peers "$m")" --ifname "u$m" --local "100.64.$m.2" \
			--remote "100.64.$m.1" repeat 5 up down >/dev/null 2>&1
		head -n 16 "$f.strace"
		echo "== $c: callgrind, repeat 5 up down (inclusive instructions, top functions)"
		MULTIHOME_RUNDIR=$WORK/run.$c ip netns exec "$ID-$c" valgrind -q --tool=callgrind \
			--callgrind-out-file="$f.cg" --toggle-collect='mh_link_up' --toggle-collect='mh_link_down' \
			"$HARNESS" --file "$(peers "$m")" --ifname "u$m" --local "100.64.$m.2" \
			--remote "100.64.$m.1" repeat 5 up down >/dev/null 2>&1
		callgrind_annotate --inclusive=yes "$f.cg" 2>/dev/null | grep -E '^ *[0-9,]+ ' |
			grep -v 'pppd-harness\|libc-start\|below main\|ld-linux' | head -n 25
		echo "== $c: callgrind, self instructions, top functions"
		callgrind_annotate "$f.cg" 2>/dev/null | grep -E '^ *[0-9,]+ ' | head -n 12
	} >"$f" 2>&1
	echo "bench: profile of $c in $f" >&2
}

# row CASE LINKS FOREIGN EVENT: one line of the table
row() {
	local c=$1 n=$2 nf=$3 ev=$4 r med min max smed fwmed flmed flr
	read -r med min max <<<"$(stats "$WORK/$c.mh.$ev")"
	read -r smed _ _ <<<"$(stats "$WORK/$c.sh.$ev")"
	read -r fwmed _ _ <<<"$(stats "$WORK/$c.mh.$ev.fwus")"
	read -r flmed _ _ <<<"$(stats "$WORK/$c.fl.$ev")"
	read -r r _ _ <<<"$(ratio_stats "$WORK/$c.mh.$ev" "$WORK/$c.sh.$ev")"
	read -r flr _ _ <<<"$(ratio_stats "$WORK/$c.mh.$ev" "$WORK/$c.fl.$ev" "$WORK/$c.mh.$ev.flratio")"
	printf '| %5s | %6s | %-4s | %4s | %9s | %9s | %9s | %9s | %9s | %5.2fx | %9s | %7.4f | %6.1fx | %3s | %3s |\n' \
		"$n" "$nf" "$ev" "$(wc -l <"$WORK/$c.mh.$ev")" "$(fmt_us "$med")" "$(fmt_us "$min")" "$(fmt_us "$max")" \
		"$(fmt_us "$fwmed")" "$(fmt_us "$flmed")" "$flr" \
		"$(fmt_us "$smed")" "$r" "$(awk -v r="$r" 'BEGIN { print (r > 0) ? 1 / r : 0 }')" \
		"$(range "$WORK/$c.mh.$ev.nl")" "$(range "$WORK/$c.mh.$ev.fw")"
}

# med FILE: the median of the numbers in FILE
med() {
	local m
	read -r m _ _ <<<"$(stats "$1")"
	echo "$m"
}

# ---- memory -------------------------------------------------------------------

# vm PID FIELD: FIELD of /proc/PID/status in KiB ("VmRSS", "VmHWM")
vm() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# rss_harness CASE I FILE: the harness (as pppd) with link I up and waiting,
# on peers FILE; prints "VmRSS Private" in KiB (Private: its anonymous and
# private file pages, what no other process shares).
rss_harness() {
	local c=$1 i=$2 f=$3 pid k
	MULTIHOME_RUNDIR=$WORK/run.$c ip netns exec "$ID-$c" "$HARNESS" --file "$f" --ifname "u$i" \
		--local "100.64.$i.2" --remote "100.64.$i.1" up wait down >/dev/null 2>"$WORK/$c.rss.log" &
	pid=$!
	PIDS+=("$pid")
	for k in $(seq 200); do
		if grep -q 'plugin' "$f"; then grep -q ' up on ' "$WORK/$c.rss.log" && break
		else [ "$(awk '$1 == "State:" { print $2 }' "/proc/$pid/status" 2>/dev/null)" = S ] && break; fi
		sleep 0.02
	done
	echo "$(vm "$pid" VmRSS) $(awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s }' "/proc/$pid/smaps_rollup")"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# rss_case CASE I: the harness's memory with link I up (N links in all), and without the plugin
rss_case() {
	local c=$1 i=$2 base with
	printf 'noauth\n' >"$WORK/peers.none"
	read -r base bpriv <<<"$(rss_harness "$c" "$i" "$WORK/peers.none")"
	read -r with wpriv <<<"$(rss_harness "$c" "$i" "$(peers "$i")")"
	grep -q ' up on ' "$WORK/$c.rss.log" || die "$c: memory: link l$i did not come up: $(tail -2 "$WORK/$c.rss.log")"
	echo "$c $((i + 1)) $base $with $bpriv $wpriv" >>"$WORK/rss"
}

# rss_pppd: real pppd's peak RSS with and without the plugin ("with without" KiB)
rss_pppd() {
	local ns=$ID-pppd w wo
	ip netns add "$ns" || die "ip netns add $ns"
	NSLIST+=("$ns")
	printf 'plugin %s\nmultihome-name l0\n' "$PLUGIN" >"$WORK/pppd.with"
	printf 'noauth\n' >"$WORK/pppd.without"
	w=$(ip netns exec "$ns" "$RSS" pppd file "$WORK/pppd.with" nodetach pty true 2>&1 | sed -n 's/^peak_rss_kib \([0-9]*\).*/\1/p')
	wo=$(ip netns exec "$ns" "$RSS" pppd file "$WORK/pppd.without" nodetach pty true 2>&1 | sed -n 's/^peak_rss_kib \([0-9]*\).*/\1/p')
	ip netns del "$ns"
	echo "${w:--} ${wo:--}"
}

# ---- failover -----------------------------------------------------------------

# failover KIND: KIND=mh (two links registered by the plugin) or article (the
# article's RTA_MULTIPATH default route by hand); 16 UDP flows at 1 ms, u1
# deleted at 500 ms with no ip-down.
failover() {
	local k=$1 c=fo-$1 srv far i dests=
	mk_ns "$c" 2 0
	srv=$ID-$c far=$ID-$c-far
	{
		for i in $(seq 1 16); do echo "addr add 203.0.113.$i/32 dev lo"; dests="$dests 203.0.113.$i"; done
	} >"$WORK/$c.dst.batch"
	ip -n "$far" -batch "$WORK/$c.dst.batch" || die "$c: destinations"
	if [ "$k" = mh ]; then
		mkdir -p "$WORK/run.$c"
		harness "$c" 0 up >/dev/null 2>>"$WORK/$c.log" && harness "$c" 1 up >/dev/null 2>>"$WORK/$c.log" ||
			die "$c: link up failed: $(tail -3 "$WORK/$c.log")"
	else
		ip -n "$srv" route replace default scope global nexthop dev u0 weight 1 nexthop dev u1 weight 1 ||
			die "$c: multipath route"
		ip netns exec "$srv" iptables-legacy -t nat -A POSTROUTING -o u0 -j MASQUERADE
		ip netns exec "$srv" iptables-legacy -t nat -A POSTROUTING -o u1 -j MASQUERADE
		ip netns exec "$srv" sysctl -qw net.ipv4.conf.u0.rp_filter=2 net.ipv4.conf.u1.rp_filter=2
	fi
	ip netns exec "$far" "$FLOW" reflect --port $PORT --max-time 60 >"$WORK/$c.reflect" 2>&1 &
	PIDS+=($!)
	for i in $(seq 50); do grep -q ready "$WORK/$c.reflect" 2>/dev/null && break; sleep 0.05; done
	ip route show default table main >/dev/null
	# shellcheck disable=SC2086
	ip netns exec "$srv" "$FLOW" send --port $PORT --interval-us 1000 --duration-ms 1500 \
		--at-ms 500 --exec "ip link del u1" --gone 100.64.1.2 $dests >"$WORK/$c.flow" 2>&1 ||
		die "$c: probe failed: $(tail -3 "$WORK/$c.flow")"
	kill "${PIDS[-1]}" 2>/dev/null
	ip -n "$srv" route show default >"$WORK/$c.route-after"
}

fo_row() { # KIND LABEL
	local k=$1 s ns sg nm mg ex after
	s=$(grep '^summary' "$WORK/fo-$k.flow")
	ns=$(sed 's/.*surviving_flows=\([0-9]*\).*/\1/' <<<"$s")
	sg=$(sed 's/.*surviving_gap_ms=\(-*[0-9]*\).*/\1/' <<<"$s")
	nm=$(sed 's/.*moved_flows=\([0-9]*\).*/\1/' <<<"$s")
	mg=$(sed 's/.*moved_gap_ms=\(-*[0-9]*\).*/\1/' <<<"$s")
	ex=$(sed 's/.*exec_ms=\([0-9.]*\).*/\1/' <<<"$s")
	after=$(sed 's/.*window_after_ms=\([0-9]*\).*/\1/' <<<"$s")
	[ "$sg" = -1 ] && sg="no traffic in ${after} ms"
	[ "$mg" = -1 ] && mg="no traffic in ${after} ms"
	printf '| %-36s | %2s | %-22s | %2s | %-22s | %6s |\n' "$2" "$ns" "$sg" "$nm" "$mg" "$ex"
}

# ---- main ---------------------------------------------------------------------

START=$(date +%s)
mkdir -p "$OUT" || die "mkdir $OUT"
exec > >(tee "$OUT/$BACKEND.txt")
echo "multihome bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, kernel $(uname -r), $(iptables-legacy -V), $(ip -V | sed 's/, libbpf.*//')"
echo "multihome's firewall backend: $BACKEND (the shell baseline always uses iptables-legacy)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine inflates every column)"
echo "command: $( [ -n "${SUDO_USER:-}" ] && echo sudo )make bench  (${MULTIHOME_FIREWALL:+MULTIHOME_FIREWALL=$MULTIHOME_FIREWALL }tests/bench/run.sh; BENCH_EVENTS=$EVENTS BENCH_SCALE_EVENTS=$SCALE_EVENTS BENCH_LINKS=\"$LINKS\" BENCH_FOREIGN=\"$FOREIGN\")"
echo

last=
for n in $LINKS; do last=$n; done
RSS_CASES="base l$last"
CASES=()
run_case base 2 0 "$EVENTS"
CASES+=("base 2 0")
for nf in $FOREIGN; do
	[ "$nf" = 0 ] && continue
	echo "bench: 2 links, $nf foreign mangle rules ..." >&2
	run_case "f$nf" 2 "$nf" "$SCALE_EVENTS"
	CASES+=("f$nf 2 $nf")
done
for n in $LINKS; do
	[ "$n" = 2 ] && continue
	echo "bench: $n links ..." >&2
	run_case "l$n" "$n" 0 "$SCALE_EVENTS"
	CASES+=("l$n $n 0")
done
echo "bench: failover ..." >&2
failover mh
failover article
echo "bench: memory of real pppd ..." >&2
read -r PPPD_WITH PPPD_WITHOUT <<<"$(rss_pppd)"

echo "Per event: multihome.so (pppd harness, one process, --time) vs the article's commands"
echo "(shell-link.sh: ip/iptables-legacy, one process per change) and vs the floor"
echo "(mh-bench-floor: the same messages sent alone), the measured link registered and"
echo "withdrawn while the other links stay up.  fw part = the firewall backend's share of"
echo "the event (from the plugin's log line); mh/floor and ratio = multihome/floor and"
echo "multihome/shell pair by pair (median); speedup = 1/ratio; nl = netlink messages,"
echo "fw = firewall commits per event (min-max over all events)."
echo
echo "| links | foreign | event | n | mh median | mh min | mh max | fw part | floor | mh/floor | shell median | ratio | speedup | nl | fw |"
echo "|------:|-------:|------|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for cs in "${CASES[@]}"; do
	read -r c n nf <<<"$cs"
	row "$c" "$n" "$nf" up
	row "$c" "$n" "$nf" down
done
[ -f "$WORK/shell-multipath" ] &&
	echo "(shell at $(sort -un "$WORK/shell-multipath" | tr '\n' ' ')links: ip route replace multipath instead of nexthop + group; iproute2 cannot send a group that large)"
echo
echo "First event of the harness process (its registry read from the files, as every"
echo "event of a pppd is when other links' events came in between; the medians above are"
echo "of a process whose registry cache stays valid):"
for cs in "${CASES[@]}"; do
	read -r c n nf <<<"$cs"
	printf '  %3s links, %5s foreign: up %s\n' "$n" "$nf" "$(fmt_us "$(cat "$WORK/$c.mh.cold")")"
done
echo
echo "Floor per event, netlink / firewall part (medians):"
for cs in "${CASES[@]}"; do
	read -r c n nf <<<"$cs"
	for ev in up down; do
		printf '  %3s links, %5s foreign, %-4s: %s = netlink %s + firewall %s\n' "$n" "$nf" "$ev" \
			"$(fmt_us "$(med "$WORK/$c.fl.$ev")")" \
			"$(fmt_us "$(awk -v e="$ev" '$2 == e { print $6 }' "$WORK/$c.fl.out" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')")" \
			"$(fmt_us "$(med "$WORK/$c.fl.$ev.fwus")")"
	done
done
echo
echo "The balanced nexthop group (mh-bench-floor --groups): an up event must replace it"
echo "(the kernel builds it anew: a multipath group, or a resilient one); a down event"
echo "deletes the link's nexthop and the kernel takes it out of the group (the floor's"
echo "netlink part of a down event).  Medians, us:"
echo
echo "| links | replace, multipath | replace, resilient (512 buckets) | down event's netlink floor |"
echo "|---:|---:|---:|---:|"
for cs in "${CASES[@]}"; do
	read -r c n nf <<<"$cs"
	[ "$nf" = 0 ] || continue
	printf '| %3s | %s | %s | %s |\n' "$n" "$(fmt_us "$(med "$WORK/$c.group.mpath")")" \
		"$(fmt_us "$(med "$WORK/$c.group.resilient")")" \
		"$(fmt_us "$(awk '$2 == "down" { print $6 }' "$WORK/$c.fl.out" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')")"
done
echo
echo "Shell baseline per event, min / max:"
for cs in "${CASES[@]}"; do
	read -r c n nf <<<"$cs"
	for ev in up down; do
		read -r med min max <<<"$(stats "$WORK/$c.sh.$ev")"
		printf '  %3s links, %5s foreign, %-4s: median %s, min %s, max %s (n=%s)\n' "$n" "$nf" "$ev" \
			"$(fmt_us "$med")" "$(fmt_us "$min")" "$(fmt_us "$max")" "$(wc -l <"$WORK/$c.sh.$ev")"
	done
done
echo
echo "Memory in the host process (KiB): mh-pppd-harness as pppd, its link up and waiting,"
echo "against the same harness without the plugin; real pppd 2.4.9: peak RSS with and"
echo "without the plugin loaded (no kernel PPP here: pppd stops once its options and plugins"
echo "are read, so no event runs in it).  Private = pages no other process shares."
echo "multihome.so: $(size "$PLUGIN" | awk 'NR == 2 { printf "text %d, data %d, bss %d bytes", $1, $2, $3 }')"
echo
echo "| host | links registered | RSS without | RSS with | added | private without | private with | added |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
while read -r c n base with bpriv wpriv; do
	printf '| mh-pppd-harness | %3s | %6s | %6s | %+6d | %6s | %6s | %+6d |\n' "$n" "$base" "$with" \
		$((with - base)) "$bpriv" "$wpriv" $((wpriv - bpriv))
done <"$WORK/rss"
printf '| pppd 2.4.9 (peak) | - | %6s | %6s | %+6d | | | |\n' "$PPPD_WITHOUT" "$PPPD_WITH" \
	$(( ${PPPD_WITH:-0} - ${PPPD_WITHOUT:-0} ))
echo
echo "Failover: 16 UDP flows (one datagram per flow per ms) to 16 far addresses;"
echo "at 500 ms uplink u1 is deleted (ip link del, no ip-down); outage = longest run"
echo "of unanswered datagrams after that, per class of flow (surviving = was on u0)."
echo
echo "| default route | surv. flows | surviving outage (ms) | moved flows | moved outage (ms) | del ms |"
echo "|---|---:|---|---:|---|---:|"
fo_row mh "multihome (nexthop group)"
fo_row article "article (RTA_MULTIPATH route)"
echo
echo "after the deletion, main's default route was:"
echo "  multihome: $(tr '\n' ' ' <"$WORK/fo-mh.route-after")"
echo "  article:   $(tr '\n' ' ' <"$WORK/fo-article.route-after")"
echo "  (empty = the kernel removed it)"
echo

# ---- the plot's data: event cost against links ----------------------------------
{
	echo "# $BACKEND: links mh_up mh_down floor_up floor_down shell_up shell_down netlink_half_up netlink_half_down (us, medians)"
	for cs in "${CASES[@]}"; do
		read -r c n nf <<<"$cs"
		[ "$nf" = 0 ] || continue
		echo "$n $(med "$WORK/$c.mh.up") $(med "$WORK/$c.mh.down") $(med "$WORK/$c.fl.up") $(med "$WORK/$c.fl.down")" \
			"$(med "$WORK/$c.sh.up") $(med "$WORK/$c.sh.down") $(med "$WORK/$c.mh.up.nlus") $(med "$WORK/$c.mh.down.nlus")"
	done
} >"$OUT/$BACKEND.dat"

# ---- targets --------------------------------------------------------------------
echo "Targets:"
read -r ru _ _ <<<"$(stats "$WORK/base.mh.up.ratio")"
read -r rd _ _ <<<"$(stats "$WORK/base.mh.down.ratio")"
if [ "$BACKEND" = nft ]; then speed=100; else speed=20; fi
awk -v u="$ru" -v d="$rd" -v t="$speed" 'BEGIN {
	su = 1 / u; sd = 1 / d
	printf "  2 links: up and down each >= %dx faster than the shell, same run: up %.1fx, down %.1fx -> %s\n",
		t, su, sd, (su >= t && sd >= t) ? "met" : sprintf("MISSED (up needs %.0f%% less time, down %.0f%%)",
		su >= t ? 0 : 100 * (1 - su / t), sd >= t ? 0 : 100 * (1 - sd / t)) }'
if [ -n "$last" ] && [ "$last" != 2 ] && [ -f "$WORK/l$last.mh.up" ]; then
	for ev in up down; do
		if [ "$BACKEND" = nft ]; then part=mh.$ev what="the event"; else part=mh.$ev.nlus what="its netlink half (all but libiptc)"; fi
		a=$(med "$WORK/base.$part") b=$(med "$WORK/l$last.$part")
		awk -v a="$a" -v b="$b" -v n="$last" -v e="$ev" -v w="$what" 'BEGIN {
			printf "  %s at %d links: %s <= 2x its cost at 2 links: %.0f us vs %.0f us = %.2fx -> %s\n",
				e, n, w, b, a, b / a, (b <= 2 * a) ? "met" : sprintf("MISSED by %.1fx", b / (2 * a)) }'
		if [ "$BACKEND" != nft ]; then
			awk -v t="$(med "$WORK/l$last.mh.$ev")" -v f="$(med "$WORK/l$last.mh.$ev.fwus")" -v n="$last" -v e="$ev" 'BEGIN {
				printf "    (libiptc, O(table) by design: %.0f us of the %.0f us %s event at %d links, %.0f%%)\n",
					f, t, e, n, (t > 0) ? 100 * f / t : 0 }'
		fi
		if [ "$BACKEND" = nft ]; then part=fl.$ev what="the floor itself"; else part=fl.$ev.nlus what="the floor's netlink part"; fi
		a=$(med "$WORK/base.$part") b=$(med "$WORK/l$last.$part")
		awk -v a="$a" -v b="$b" -v n="$last" -v w="$what" 'BEGIN {
			printf "    (%s: %.0f us at %d links vs %.0f us at 2 = %.2fx)\n", w, b, n, a, b / a }'
	done
fi
for cs in "base 2" "l$last $last"; do
	read -r c n <<<"$cs"
	[ -f "$WORK/$c.mh.up" ] || continue
	read -r fu _ _ <<<"$(stats "$WORK/$c.mh.up.flratio")"
	read -r fd _ _ <<<"$(stats "$WORK/$c.mh.down.flratio")"
	awk -v u="$fu" -v d="$fd" -v n="$n" 'BEGIN {
		printf "  %d links: <= 3x the floor: up %.2fx, down %.2fx -> %s\n", n, u, d,
			(u <= 3 && d <= 3) ? "met" : sprintf("MISSED by %.1fx", (u > d ? u : d) / 3) }'
done
if [ "$BACKEND" = nft ] && [ -f "$WORK/f10000.mh.up" ]; then
	for ev in up down; do
		awk -v a="$(med "$WORK/base.mh.$ev")" -v b="$(med "$WORK/f10000.mh.$ev")" -v e="$ev" 'BEGIN {
			printf "  %s with 10,000 foreign rules <= 1.2x the empty firewall: %.0f us vs %.0f us = %.2fx -> %s\n",
				e, b, a, b / a, (b <= 1.2 * a) ? "met" : sprintf("MISSED by %.2fx", b / (1.2 * a)) }'
	done
fi
worst=$(awk '{ d = $4 - $3; if (d > m) m = d } END { print m + 0 }' "$WORK/rss")
pw=$(( ${PPPD_WITH:-0} - ${PPPD_WITHOUT:-0} ))
[ "$pw" -gt "$worst" ] && worst=$pw
if [ "$worst" -lt 1024 ]; then v=met; else v="MISSED (by $((worst - 1024)) KiB)"; fi
echo "  memory: < 1 MiB added per pppd (RSS, worst of the rows above): +$worst KiB -> $v"
# iptables: mangle and nat are two tables; nftables: one table, one batch
if [ "$BACKEND" = nft ]; then want=1 tables="table ip multihome = 1"; else want=2 tables="mangle + nat = 2"; fi
cat "$WORK"/*.mh.up.fw "$WORK"/*.mh.down.fw | sort -u | tr '\n' ' ' | awk -v want="$want" -v tables="$tables" '{
	ok = 1; for (i = 1; i <= NF; i++) if ($i != want) ok = 0
	printf "  one commit per table touched (%s) per event, every case: commits seen {%s} -> %s\n",
		tables, $0, ok ? "met" : "MISSED" }'
s=$(grep '^summary' "$WORK/fo-mh.flow")
sg=$(sed 's/.*surviving_gap_ms=\(-*[0-9]*\).*/\1/' <<<"$s")
echo "  zero outage for surviving links when an uplink vanishes: multihome ${sg} ms -> $([ "$sg" = 0 ] && echo met || echo MISSED)"
echo
if [ -n "${BENCH_PROFILE:-}" ]; then
	echo "Profiles (BENCH_PROFILE=1; 10 events each, strace/callgrind slow them down):"
	for cs in "${CASES[@]}"; do
		read -r c _ _ <<<"$cs"
		cat "$WORK/$c.profile"
		echo
	done
fi
echo "case wall time (s): $(tr '\n' ' ' <"$WORK/case-seconds"); total $(($(date +%s) - START)) s; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data for the plot: $OUT/$BACKEND.dat (tests/bench/plot.sh draws $OUT/bench.png)"
