#!/usr/bin/env bash
# make demo: the reference scenario in network namespaces, shown.
#
#                       ppp0 ===== isp1 ----+
#  lan ---eth0--- srv                       inet  (203.0.113.0/24, 198.51.100.0/25)
#                       ppp1 ===== isp2 ----+
#                                   |
#                                  adm   (198.51.100.192/26, ISP2's panel)
#
# srv brings up isp1 (weight 8, pins tcp/25) and isp2 (weight 2, pins ISP2's
# panel) through multihome.so loaded by a pppd stand-in, shows what multihome
# installed and where traffic goes, takes ISP2 down, shows what changed, and
# removes everything.  After each step, `multihomectl status`: the tool an
# admin uses on the router.  Nothing outside the namespaces is touched.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/topo.sh
. "$HERE/lib/topo.sh"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run_srv() { echo "srv# $*"; nsx srv "$@"; }
CTL=$MH_BUILD/multihomectl

# The demo reads multihome's rules with iptables-legacy: status is told so
# (else, where this host's iptables is the nft variant, every status would
# end with the warning legacy-on-nft, which says just that).
LEGACY_IPTABLES=/usr/sbin/xtables-legacy-multi

# status: multihomectl status in srv, as the admin types it; its exit status.
status() {
	echo "srv# multihomectl status"
	nsx srv env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" MULTIHOME_IPTABLES="$LEGACY_IPTABLES" "$CTL" status
	echo "(exit status $?: 0 all well, 1 a warning, 2 a link that should be up is not)"
}

missing=$(topo_missing)
[ -x "$CTL" ] || missing="$missing build/multihomectl"
if [ -n "$missing" ]; then
	echo "demo: missing $missing (run make)" >&2
	exit 1
fi

show_state() {
	run_srv ip rule show
	run_srv ip route show table main
	run_srv ip route show table 101
	run_srv ip route show table 102
	run_srv ip nexthop show
	run_srv iptables-legacy -t mangle -S
	run_srv iptables-legacy -t nat -S
}

# summary NS ARGS...: where 100 connections went.
summary() {
	local ns=$1 out n ok i1 i2 other
	shift
	out=$(probe "$ns" "$@")
	read -r n ok i1 i2 other <<<"$(tally <<<"$out")"
	printf '  %-40s answered %3d/%-3d  by ISP1 %3d  by ISP2 %3d  other %d\n' \
		"$ns $*" "$ok" "$n" "$i1" "$i2" "$other"
}

say "topology (namespaces ${NS_ID}-*)"
sed -n '/^#  *100.64.101/,/^#  *panel/p' "$HERE/lib/topo.sh" | sed 's/^#/ /'
topo_create || exit 1

# both links track two hosts beyond their ISP (upstream tracking)
# shellcheck disable=SC2034  # peers_file reads them
LINK_EXTRA_isp1="multihome-track 203.0.113.254,198.51.100.1" LINK_EXTRA_isp2="multihome-track 203.0.113.254,198.51.100.1"

say "pppd brings up isp1 on ppp0 and isp2 on ppp1 (multihome.so)"
for l in isp1 isp2; do
	echo "--- /etc/ppp/peers/$l"
	grep -v '^plugin' "$(peers_file $l)" | sed 's/^/  /'
	link_start "$l" || { echo "demo: $l did not come up" >&2; exit 1; }
done
grep -h 'multihome\|isp[12] up' "$TOPO_DIR"/isp*.log | sed 's/^/  /'

say "multihomectl status: both links up, no traffic yet"
status

say "what multihome installed in srv"
show_state
before=$(show_state 2>&1)

say "traffic: 100 new connections each (the far end reports the address it saw)"
summary srv --port 80 203.0.113.1-100
summary srv --port 25 203.0.113.1-100
summary lan --port 80 203.0.113.101-200
summary srv --port 80 $PANEL_RANGE
echo "  pinned: tcp/25 to 203.0.113.7 -> $(probe srv --port 25 203.0.113.7 | cut -d' ' -f2)"
echo "  pinned: ISP2's panel $ADMIN_HOST  -> $(probe srv --port 80 $ADMIN_HOST | cut -d' ' -f2)"

say "multihomectl status: the flows per link, and the 8:2 share (share) beside what each link got"
status
echo "srv# multihomectl metrics | grep share   # the same numbers for Prometheus"
nsx srv env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" "$CTL" metrics | grep '^multihome_link_share'

say "ISP1's upstream dies: its session stays up, but it forwards nothing (upstream tracking)"
nsx isp1 iptables-legacy -I FORWARD -o wan -j DROP
t0=$(date +%s%N)
for _ in $(seq 100); do grep -q 'isp1 offline:' "$TOPO_DIR/isp1.log" && break; sleep 0.1; done
echo "  after $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(grep -h 'isp1 offline:' "$TOPO_DIR/isp1.log" | tail -n 1 | sed 's/^pppd: //; s/; [0-9]* netlink.*//')"
summary srv --port 80 203.0.113.1-100
echo "  pinned: tcp/25 to 203.0.113.7 -> $(probe srv --port 25 203.0.113.7 | cut -d' ' -f2)  (the pin falls through)"
echo
status
echo
echo "ISP1's upstream comes back"
nsx isp1 iptables-legacy -D FORWARD -o wan -j DROP
t0=$(date +%s%N)
for _ in $(seq 150); do grep -q 'isp1 online:' "$TOPO_DIR/isp1.log" && break; sleep 0.1; done
echo "  after $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(grep -h 'isp1 online:' "$TOPO_DIR/isp1.log" | tail -n 1 | sed 's/^pppd: //; s/; [0-9]* netlink.*//')"
summary srv --port 80 203.0.113.1-100

say "ISP2 goes down (pppd gets SIGTERM: ip-down, then ppp1 disappears)"
link_stop isp2 term
grep -h 'isp2 down' "$TOPO_DIR"/isp2.log | sed 's/^/  /'
after=$(show_state 2>&1)
echo "--- what changed in srv (- before, + after)"
diff <(echo "$before") <(echo "$after") | grep '^[<>]' | sed 's/^</-/; s/^>/+/'
echo
summary srv --port 80 203.0.113.1-100
summary srv --port 80 $PANEL_RANGE
echo "  ISP2's panel $ADMIN_HOST now -> $(probe srv --port 80 $ADMIN_HOST | cut -d' ' -f2)"
echo
status

say "ISP1 goes down too: nothing of multihome's is left"
link_stop isp1 term
show_state
status

say "removing the namespaces"
topo_destroy
echo "done."
