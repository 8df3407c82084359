#!/bin/bash
# make bench, upstream tracking (issue 15): what tracking costs and how fast
# it sees a dead upstream.  Root; in the namespaces of tests/lib/topo.sh
# (created and removed here, on failure too).
#
#   tests/bench/track.sh          (make bench runs it after run.sh)
#   BENCH_TRACK_SECONDS=20 BENCH_TRACK_EVENTS=40 BENCH_TRACK_DEATHS=3 tests/bench/track.sh
#
# 1. CPU: isp1's pppd (the harness, loading build/multihome.so) tracking two
#    targets every 200 ms (5 rounds a second) for BENCH_TRACK_SECONDS, against
#    isp2's, identical but untracked, over the same seconds: the difference of
#    their CPU time (/proc/PID/schedstat, ns) per round.
# 2. Syscalls per round: strace -c -f of the tracking pppd for 10 s (if strace
#    is installed), divided by the rounds in that time.
# 3. An event's time while a link tracks: isp2's up/down events (--time) with
#    isp1 tracking every 200 ms, and with isp1 untracked, alternated; a UDP
#    flow in both keeps conntrack's table from being empty (an empty table
#    skips the event's conntrack job, and the probes' entries would end that).
# 4. Detection: the time from the upstream's death (isp1 drops what it
#    forwards) to the "offline" log line, beside the configured minimum
#    (track-down x track-interval), for 1 s x 3 (the defaults) and 200 ms x 3.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
set -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MH_TOP=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/topo.sh
. "$MH_TOP/tests/lib/topo.sh"

SECS=${BENCH_TRACK_SECONDS:-20}
EVENTS=${BENCH_TRACK_EVENTS:-40}
DEATHS=${BENCH_TRACK_DEATHS:-3}
TARGETS=203.0.113.254,198.51.100.1

die() { echo "bench track: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[ -z "$(topo_missing)" ] || die "missing: $(topo_missing)"

cpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat"; }
# user and system clock ticks of PID
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; }
now_ns() { date +%s%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)); else print "-" }'; }

track_opts() { # INTERVAL-SECONDS
	printf 'multihome-track %s\nmultihome-track-interval %s\nmultihome-track-down 3\nmultihome-track-up 5' "$TARGETS" "$1"
}

topo_create || die "topology"
trap 'topo_destroy' EXIT

# ---- 1 and 2: CPU and syscalls per round
LINK_EXTRA_isp1=$(track_opts 0.2)
link_start isp1 || die "isp1 did not come up"
LINK_EXTRA_isp1=
link_start isp2 || die "isp2 did not come up"
p1=${LINK_PID[isp1]} p2=${LINK_PID[isp2]}
sleep 1
c1=$(cpu_ns "$p1") c2=$(cpu_ns "$p2") r0=$(sed -n 's/^rounds //p' "$MULTIHOME_RUNDIR/health.isp1")
read -r u0 s0 <<<"$(ticks "$p1")"
sleep "$SECS"
d1=$(($(cpu_ns "$p1") - c1)) d2=$(($(cpu_ns "$p2") - c2))
read -r u1 s1 <<<"$(ticks "$p1")"
hz=$(getconf CLK_TCK)
rounds=$(($(sed -n 's/^rounds //p' "$MULTIHOME_RUNDIR/health.isp1") - r0))
per_round=$(( rounds > 0 ? (d1 - d2) / rounds : 0 ))
sys_line="strace not installed: not measured"
if command -v strace >/dev/null; then
	r0=$(sed -n 's/^rounds //p' "$MULTIHOME_RUNDIR/health.isp1")
	timeout -s INT 10 strace -c -f -p "$p1" -o "$TOPO_DIR/strace.txt" 2>/dev/null
	r1=$(sed -n 's/^rounds //p' "$MULTIHOME_RUNDIR/health.isp1")
	calls=$(awk '$NF == "total" { print $4 }' "$TOPO_DIR/strace.txt")
	top=$(awk 'NR > 2 && $NF != "total" && $1 !~ /^-/ { print $NF "=" $4 }' "$TOPO_DIR/strace.txt" |
		sort -t= -k2 -rn | head -n 8 | paste -sd' ')
	sys_line="$(( (r1 - r0) > 0 ? calls / (r1 - r0) : 0 )) syscalls a round ($calls in $((r1 - r0)) rounds: $top)"
fi

# ---- 3: isp2's events while isp1 tracks, and while it does not; a UDP
# flow keeps conntrack's table from being empty in both (an empty table
# skips each event's conntrack job, which tracking's probes would end)
link_stop isp2 term
link_device isp2
FLOWBIN=$MH_BUILD/mh-udpflow
ip netns exec "$(ns_name inet)" "$FLOWBIN" far --port 1131 --max-time 300 >/dev/null 2>&1 &
SERVE_PIDS+=($!)
sleep 0.3
ip netns exec "$(ns_name srv)" "$FLOWBIN" client --port 1131 --interval-ms 100 --duration-ms 60000 \
	203.0.113.9 >/dev/null 2>&1 &
SERVE_PIDS+=($!)
sleep 0.5
events() { # LOG: isp2's pppd, EVENTS up/down pairs with --time (the first one left out)
	ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$HARNESS" --time \
		--file "$(peers_file isp2)" --plugin "$PLUGIN" --ifname ppp1 --local "${LINK_LOCAL[isp2]}" \
		--remote "${LINK_PEER[isp2]}" --linkname isp2 repeat "$EVENTS" up down 2>/dev/null |
		awk '$1 == "event" && ++n > 2' >>"$1"      # a new process's first pair left out
}
: >"$TOPO_DIR/ev.tracked" ; : >"$TOPO_DIR/ev.plain"
for round in 1 2; do
	events "$TOPO_DIR/ev.tracked"
	link_stop isp1 term
	link_start isp1 || die "isp1 (untracked) did not come up"
	events "$TOPO_DIR/ev.plain"
	link_stop isp1 term
	LINK_EXTRA_isp1=$(track_opts 0.2)
	link_start isp1 || die "isp1 (tracked) did not come up"
	LINK_EXTRA_isp1=
done
ev() { awk -v e="$2" '$1 == "event" && $2 == e { print $4 }' "$1" | median; }
up_t=$(ev "$TOPO_DIR/ev.tracked" up) down_t=$(ev "$TOPO_DIR/ev.tracked" down)
up_p=$(ev "$TOPO_DIR/ev.plain" up) down_p=$(ev "$TOPO_DIR/ev.plain" down)

# ---- 4: detection time against the configured minimum
detect() { # INTERVAL-SECONDS: one line "configured measured..."
	local i t0 ms all=""
	for i in $(seq "$DEATHS"); do
		link_stop isp1 term
		LINK_EXTRA_isp1=$(track_opts "$1")
		link_start isp1 || die "isp1 did not come up"
		LINK_EXTRA_isp1=
		sleep "$(awk -v s="$1" 'BEGIN { print 2 * s + 0.3 }')"
		local before
		before=$(grep -c "isp1 offline:" "$TOPO_DIR/isp1.log")
		t0=$(now_ns)
		nsx isp1 iptables-legacy -I FORWARD -o wan -j DROP
		while [ "$(grep -c "isp1 offline:" "$TOPO_DIR/isp1.log")" = "$before" ]; do
			[ $(( ($(now_ns) - t0) / 1000000 )) -gt 20000 ] && break
			sleep 0.01
		done
		ms=$(( ($(now_ns) - t0) / 1000000 ))
		nsx isp1 iptables-legacy -D FORWARD -o wan -j DROP
		all="$all $ms"
	done
	echo "$all"
}
det1=$(detect 1)
det02=$(detect 0.2)
m1=$(tr ' ' '\n' <<<"$det1" | grep . | median) m02=$(tr ' ' '\n' <<<"$det02" | grep . | median)
max1=$(tr ' ' '\n' <<<"$det1" | grep . | sort -n | tail -n 1) max02=$(tr ' ' '\n' <<<"$det02" | grep . | sort -n | tail -n 1)

echo
echo "Upstream tracking (tests/bench/track.sh; two targets; $(nproc) cores, $(uname -r))"
echo
echo "| measure | value |"
echo "|---|---:|"
echo "| rounds a second at track-interval 0.2 | $(awk -v r="$rounds" -v s="$SECS" 'BEGIN { printf "%.1f", r / s }') ($rounds in $SECS s) |"
echo "| CPU of a tracking pppd over an idle one | $(( (d1 - d2) / 1000 )) us in $SECS s = $((per_round / 1000)).$(printf %03d $((per_round % 1000))) us a round: user $(( (u1 - u0) * 1000 / hz )) ms, system $(( (s1 - s0) * 1000 / hz )) ms (system time includes the probes' whole trip through the test's namespaces: veth delivers in the sender's context) |"
echo "| syscalls | $sys_line |"
echo "| isp2 up, median of $((2 * (EVENTS - 1))) | $up_t us while isp1 tracks, $up_p us while it does not |"
echo "| isp2 down, median of $((2 * (EVENTS - 1))) | $down_t us while isp1 tracks, $down_p us while it does not |"
echo "| detection, 1 s x 3 (configured 3000 ms; bounds 2500..3500) | median $m1 ms, max $max1 ms (of$det1) |"
echo "| detection, 200 ms x 3 (configured 600 ms; bounds 500..700) | median $m02 ms, max $max02 ms (of$det02) |"
echo
echo "Detection ends at the round that decides, half an interval after it was sent: between"
echo "(track-down - 0.5) and (track-down + 0.5) intervals after the death, by where in a round it fell,"
echo "plus the event.  An event's time beside a tracking link: both with a UDP flow in conntrack (a"
echo "non-empty table makes each event hand its conntrack job to the watcher, whose dump walks the"
echo "host's whole table: $(cat /proc/sys/net/netfilter/nf_conntrack_buckets 2>/dev/null || echo '?') buckets here; the next event waits for it)."
echo "The others' defaults, for comparison (../shared/notes/TRACKING-NOTES.md): mwan3 about 60 s,"
echo "dpinger (pfSense/OPNsense) about 14-16 s, foolsm about 8 s, NetworkManager about 5 min."
