#!/usr/bin/env bash
# multihomectl against the reference scenario (issue 7), in network namespaces.
#
#   check     peers files and OpenVPN plugin lines: the examples are valid,
#             bad options give the plugins' own messages (compared with what
#             the pppd harness and a real OpenVPN print for the same values)
#   status    both links of the scenario: text, --json (health, flows,
#             configured shares, counters), the balanced group's members and
#             weights read from the kernel, exit 0 when clean;
#             then every warning, provoked one at a time, with exit 1, and
#             gone again once the cause is fixed (reapply where that is the fix):
#               rp-filter-strict (per interface, and through conf.all)
#               ip-forward-off, hooks-missing (firewall reload), rules-missing
#               (ip rule deleted, firewall chain flushed), legacy-on-nft,
#               interface-gone (pppd SIGKILLed: critical, exit 2)
#   exit codes 3 for usage errors and a registry that cannot be read; 2
#             (critical, link-down) while a link is down and its pppd still
#             runs (redialing), also in metrics (which exits 0); 0 once it
#             exited; 2 (link-offline) for an up link upstream tracking
#             found offline (the verdict written into the registry by hand)
#   proto     `ip route` names protocol 109 "multihome" with the shipped
#             rt_protos.d file (bind-mounted in a private mount namespace)
#   flush     withdraws every object of multihome's, leaves foreign rules,
#             routes, nexthops and firewall rules alone, empties the registry
#   nft       the same with MULTIHOME_FIREWALL=nft (a topology of its own):
#             status reads table ip multihome (exit 0 and "firewall":"nft"
#             when clean), rules-missing per link (map elements, set masq)
#             and for the table (a base chain flushed, the table deleted,
#             nft flush ruleset), each gone after reapply; firewall-leftover
#             when the backend changes without an event (both ways, and a
#             stray table while iptables is in use), the choice read from
#             MULTIHOME_CONF; flush leaves no table and no legacy chain
#   install   make install DESTDIR=... lands every file where pppd, OpenVPN,
#             man and iproute2 look for it
#
# Topology and links: tests/lib/topo.sh (every name carries this PID; removed
# on exit, failures included).

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=tests/lib/topo.sh
. "$HERE/../lib/topo.sh"

CTL=$MH_BUILD/multihomectl
OVPN_SO=$MH_BUILD/multihome-openvpn.so
WORK=$(mktemp -d /tmp/mh-ctl.XXXXXX)
# status reads the iptables alternative through MULTIHOME_IPTABLES: point it
# at a legacy and an nft "iptables" of our own, whatever this host has.
ln -s /usr/sbin/xtables-legacy-multi "$WORK/iptables-legacy"
ln -s /usr/sbin/xtables-nft-multi "$WORK/iptables-nft"
export MULTIHOME_IPTABLES=$WORK/iptables-legacy

cleanup() {
	topo_destroy
	rm -rf "$WORK"
	if [ -n "${_mh_own_results:-}" ]; then
		mh_summary
		rm -f "$MH_RESULTS"
	fi
}
trap cleanup EXIT

if [ ! -x "$CTL" ] || [ -n "$(topo_missing)" ]; then
	skip "multihomectl tests" "not built: build/multihomectl $(topo_missing) (run make)"
	exit 0
fi

# ctl ARGS...: multihomectl in srv; its exit status in $RC, output in $OUT
# (status's text with its wrapped lines joined again: a line that begins
# with four blanks goes on with the one before).
ctl() {
	OUT=$(ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" \
		MULTIHOME_IPTABLES="$MULTIHOME_IPTABLES" "$CTL" "$@" 2>&1)
	RC=$?
	if [ "$1" = status ] && [ "${2:-}" != --json ]; then
		OUT=$(unwrap <<<"$OUT")
	fi
}

unwrap() {
	awk 'NR > 1 && /^    / { sub(/^ +/, " "); printf "%s", $0; next }
		NR > 1 { print "" } { printf "%s", $0 } END { print "" }'
}

json_ok() { # JSON: parses
	if command -v python3 >/dev/null; then
		printf '%s' "$1" | python3 -c 'import json,sys; json.load(sys.stdin)'
	elif command -v jq >/dev/null; then
		printf '%s' "$1" | jq -e . >/dev/null
	else
		echo "no JSON parser (python3 or jq; scripts/deps.sh installs jq)" >&2
		return 1
	fi
}

# expect_warning DESC CODE [EXIT]: status exits EXIT (1, a warning; 2 for a
# critical one), --json names CODE with its severity, the text says it.
expect_warning() {
	local desc=$1 code=$2 want=${3:-1} text sev=warning
	[ "$want" = 2 ] && sev=critical
	ctl status
	text=$OUT
	if [ "$RC" = "$want" ] && grep -q "^$sev ($code): " <<<"$text"; then
		ctl status --json
		if [ "$RC" = "$want" ] && grep -q "\"code\":\"$code\",\"severity\":\"$sev\"" <<<"$OUT" &&
			grep -q "^{\"rundir\":.*,\"health\":\"$sev\"," <<<"$OUT" && json_ok "$OUT"; then
			ok "status: $desc ($sev $code, exit $want)"
			return 0
		fi
	fi
	not_ok "status: $desc ($sev $code, exit $want)" "exit $RC: $(tail -n 3 <<<"$text$OUT")"
}

# expect_clean DESC: status exits 0 without warnings.
expect_clean() {
	ctl status
	if [ "$RC" = 0 ] && ! grep -q '^\(warning\|critical\) (' <<<"$OUT"; then
		ok "$1"
	else
		not_ok "$1" "exit $RC: $(grep '^\(warning\|critical\) (' <<<"$OUT" | head -n 3)"
	fi
}

# ---------------------------------------------------------------- check
test_check() {
	local f msg want got
	for f in "$MH_TOP"/examples/*; do
		[ -f "$f" ] || continue
		check "check: ${f#"$MH_TOP"/} is valid (exit 0)" "$CTL" check "$f"
	done

	# Each bad value: check's message is the one pppd (the harness loading
	# the real multihome.so) prints for the same file.
	local -a bad=("multihome-weight 300" "multihome-mark 0x3/0x1" "multihome-table main"
		"multihome-priority 50" 'multihome-pin "tcp port 99999"' "multihome-nat maybe"
		"multihome-reply-via-link perhaps" "multihome-name bad/name" "multihome-pin-fallback maybe"
		"multihome-track 203.0.113.1,localhost" "multihome-track-interval 0.1" "multihome-track-down 0")
	local i=0 line
	for line in "${bad[@]}"; do
		i=$((i + 1))
		f=$WORK/bad$i
		printf 'plugin %s\n# a comment\nmultihome-name isp1\n%s\n' "$PLUGIN" "$line" >"$f"
		"$CTL" check "$f" >"$WORK/out" 2>&1
		got=$?
		msg=$(sed -n "s|^$f:4: ||p" "$WORK/out")
		want=$("$HARNESS" --file "$f" --plugin "$PLUGIN" 2>&1 | sed -n 's/^pppd: \(option .*\)/\1/p' | head -n 1)
		if [ "$got" = 1 ] && [ -n "$msg" ] && [ "$msg" = "$want" ]; then
			ok "check: '$line' refused as pppd does: $msg"
		else
			not_ok "check: '$line' refused as pppd does" "exit $got; check: '$msg'; pppd: '$want'"
		fi
	done

	printf 'plugin %s\nmultihome-weight 2\ndefaultroute\n' "$PLUGIN" >"$WORK/defroute"
	"$CTL" check "$WORK/defroute" >"$WORK/out" 2>&1
	got=$?
	if [ "$got" = 1 ] && grep -q "$WORK/defroute:3: multihome: option defaultroute conflicts" "$WORK/out"; then
		ok "check: defaultroute refused, with its line"
	else
		not_ok "check: defaultroute refused, with its line" "exit $got: $(cat "$WORK/out")"
	fi
	printf 'multihome-weight 2\nplugin multihome.so\n' >"$WORK/order"
	"$CTL" check "$WORK/order" >"$WORK/out" 2>&1
	if [ $? = 1 ] && grep -q "order:1: unrecognized option 'multihome-weight'" "$WORK/out"; then
		ok "check: a multihome option before 'plugin multihome.so' is refused"
	else
		not_ok "check: a multihome option before 'plugin multihome.so' is refused" "$(cat "$WORK/out")"
	fi
	printf 'user "someone"\nlinkname "bad name"\nplugin multihome.so\n' >"$WORK/linkname"
	"$CTL" check "$WORK/linkname" >"$WORK/out" 2>&1
	if [ $? = 1 ] && grep -q "option linkname: bad link name 'bad name'.*set multihome-name" "$WORK/out"; then
		ok "check: a linkname unusable as the default link name is refused"
	else
		not_ok "check: a linkname unusable as the default link name is refused" "$(cat "$WORK/out")"
	fi

	# OpenVPN: the article's plugin line is valid; a bad argument gives the
	# message OpenVPN itself prints when the plugin refuses to start.
	{
		echo "dev tun"
		echo "; the VPN to the company"
		echo "plugin $OVPN_SO name=vpn table=103 mark=0x4 priority=100 weight=0 \"pin=tcp 198.51.100.0/24 port 22\""
	} >"$WORK/client.conf"
	check "check: OpenVPN config with the article's plugin line is valid" "$CTL" check "$WORK/client.conf"
	local arg
	for arg in "weight=x" "table=254" "pin=tcp port 0" "mark" "colour=blue" "track=127.0.0.1" "track-up=101"; do
		printf 'dev tun\nplugin %s name=vpn "%s"\n' "$OVPN_SO" "$arg" >"$WORK/bad.conf"
		"$CTL" check "$WORK/bad.conf" >"$WORK/out" 2>&1
		got=$?
		msg=$(sed -n "s|^$WORK/bad.conf:2: ||p" "$WORK/out")
		if command -v openvpn >/dev/null && [ -f "$OVPN_SO" ]; then
			want=$(ip netns exec "$(ns_name srv)" timeout 20 openvpn --dev null --verb 3 \
				--plugin "$OVPN_SO" name=vpn "$arg" 2>&1 | sed -n 's/.*PLUGIN multihome: //p' | head -n 1)
		else
			want=$msg
		fi
		if [ "$got" = 1 ] && [ -n "$msg" ] && [ "$msg" = "$want" ]; then
			ok "check: OpenVPN argument '$arg' refused as OpenVPN does"
		else
			not_ok "check: OpenVPN argument '$arg' refused as OpenVPN does" \
				"exit $got; check: '$msg'; openvpn: '$want'"
		fi
	done
	printf 'dev tun\n' >"$WORK/none.conf"
	"$CTL" check --type openvpn "$WORK/none.conf" >/dev/null 2>&1
	got=$?
	"$CTL" check /nonexistent/file >/dev/null 2>&1
	local got2=$?
	if [ "$got" = 1 ] && [ "$got2" = 3 ]; then
		ok "check: a config without the plugin line exits 1, an unreadable file 3"
	else
		not_ok "check: a config without the plugin line exits 1, an unreadable file 3" \
			"exits $got and $got2"
	fi
}

# ---------------------------------------------------------------- status
test_status() {
	ctl status
	if [ "$RC" = 0 ] && grep -q '^no links registered' <<<"$OUT" && [ ! -e "$MULTIHOME_RUNDIR" ]; then
		ok "status: no registry yet: no links, exit 0, nothing created"
	else
		not_ok "status: no registry yet: no links, exit 0, nothing created" "exit $RC: $OUT"
	fi
	mkdir -p "$MULTIHOME_RUNDIR"
	if ! link_start isp1 || ! link_start isp2; then
		not_ok "status: links isp1 and isp2 come up" "$(tail -n 5 "$TOPO_DIR"/isp*.log 2>/dev/null)"
		return 1
	fi

	ctl status
	local text=$OUT
	if [ "$RC" = 0 ] &&
		grep -q '^link isp1: up on ppp0, since .*, pid [0-9]' <<<"$text" &&
		grep -q '^  table 101, mark 0x1/0x1, priority 101, weight 8$' <<<"$text" &&
		grep -q '^  nat masquerade, reply-via-link yes; local 100.64.1.2, peer 100.64.1.1$' <<<"$text" &&
		grep -q 'pins: tcp port 25; udp 203.0.113.130/32 port 1130' <<<"$text" &&
		grep -q '^link isp2: up on ppp1' <<<"$text" &&
		grep -q 'pins: 198.51.100.192/26' <<<"$text" &&
		grep -q '^balanced default route: nexthop group 0x6d68ffff: isp1 (ppp0) weight 8, isp2 (ppp1) weight 2$' <<<"$text"; then
		ok "status: both links, their settings, pins, balanced group 8:2; exit 0"
	else
		not_ok "status: both links, their settings, pins, balanced group 8:2; exit 0" "exit $RC: $text"
	fi
	ctl status --json
	if [ "$RC" = 0 ] && json_ok "$OUT" &&
		grep -q '"name":"isp1","interface":"ppp0","state":"up","interface_present":true' <<<"$OUT" &&
		grep -q '"table":102,"mark":"0x2","mask":"0x2","priority":102,"weight":2' <<<"$OUT" &&
		grep -q '"balanced":{"kind":"nexthop-group","id":"0x6d68ffff","members":\[{"link":"isp1","interface":"ppp0","weight":8},{"link":"isp2","interface":"ppp1","weight":2}\]}' <<<"$OUT" &&
		grep -q '"warnings":\[\]' <<<"$OUT"; then
		ok "status --json: valid JSON, links, members and weights, no warnings"
	else
		not_ok "status --json: valid JSON, links, members and weights, no warnings" "exit $RC: $OUT"
	fi
	if grep -q '^{"rundir":"[^"]*","firewall":"iptables","firewall_last_event":"iptables","health":"ok","links":' <<<"$OUT" &&
		grep -q '"pid":[0-9]*,"tracking":null,"health":"ok","flows":0,"flows_balanced":0,"share_configured":0.8000,"share_balanced":null,"tx_bytes":[0-9]*,"tx_packets":[0-9]*,"rx_bytes":[0-9]*,"rx_packets":[0-9]*}' <<<"$OUT" &&
		grep -q '"share_configured":0.2000' <<<"$OUT" && grep -q '"balanced_flows":0,"conntrack_error":null' <<<"$OUT"; then
		ok "status --json: health ok, per link flows 0, configured share 0.8/0.2, interface counters"
	else
		not_ok "status --json: health ok, per link flows 0, configured share 0.8/0.2, interface counters" "$OUT"
	fi

	# rp_filter: effective value is max(all, interface)
	nsx srv sysctl -qw net.ipv4.conf.ppp0.rp_filter=1
	expect_warning "strict rp_filter on ppp0" rp-filter-strict
	nsx srv sysctl -qw net.ipv4.conf.ppp0.rp_filter=0 net.ipv4.conf.all.rp_filter=1
	expect_warning "strict rp_filter through conf.all (ppp0 at 0)" rp-filter-strict
	nsx srv sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.ppp0.rp_filter=2
	expect_clean "status: clean again with loose rp_filter (exit 0)"

	nsx srv sysctl -qw net.ipv4.ip_forward=0
	expect_warning "ip_forward off with the LAN's eth0 present" ip-forward-off
	nsx srv sysctl -qw net.ipv4.ip_forward=1
	expect_clean "status: clean again with ip_forward on (exit 0)"

	# a firewall reload that flushes the built-in chains
	nsx srv iptables-legacy -t mangle -F PREROUTING
	nsx srv iptables-legacy -t mangle -F OUTPUT
	nsx srv iptables-legacy -t nat -F POSTROUTING
	expect_warning "firewall reload removed the jumps into our chains" hooks-missing
	ctl reapply
	[ "$RC" = 0 ] || not_ok "reapply after the firewall reload" "$OUT"
	expect_clean "reapply restores the hooks: status clean (exit 0)"

	nsx srv ip rule del priority 101 fwmark 0x1/0x1 table 101
	expect_warning "isp1's fwmark rule deleted behind our back" rules-missing
	ctl status
	grep -q "kernel lacks its rule 'fwmark 0x1/0x1 lookup 101'" <<<"$OUT" ||
		not_ok "rules-missing names the missing rule" "$OUT"
	nsx srv ip route flush table 102
	nsx srv iptables-legacy -t mangle -F MULTIHOME-MARK
	expect_warning "isp2's table route and the pins' firewall rules gone" rules-missing
	ctl reapply
	[ "$RC" = 0 ] || not_ok "reapply after the deletions" "$OUT"
	expect_clean "reapply restores rules, routes and pins: status clean (exit 0)"

	MULTIHOME_IPTABLES=$WORK/iptables-nft expect_warning "legacy rules while iptables is iptables-nft" legacy-on-nft
	MULTIHOME_IPTABLES=$WORK/iptables-nft ctl status
	if grep -q "^warning (legacy-on-nft): .*put 'firewall nft' in /etc/multihome.conf .*where 'nft list ruleset' shows them" <<<"$OUT" &&
		grep -q '^firewall: iptables (legacy x_tables, chains MULTIHOME-\*)$' <<<"$OUT"; then
		ok "legacy-on-nft suggests 'firewall nft' in /etc/multihome.conf; status names the iptables backend"
	else
		not_ok "legacy-on-nft suggests 'firewall nft' in /etc/multihome.conf; status names the iptables backend" "$OUT"
	fi

	# pppd of isp2 killed with SIGKILL: no ip-down, the unit disappears; its
	# watcher killed first (root can), so nothing prunes the link before an event
	kill -KILL "$(link_watcher isp2)" 2>/dev/null
	link_stop isp2 kill
	expect_warning "isp2's registry entry is up but ppp1 is gone" interface-gone 2
	ctl status
	if grep -q '^link isp2: up on ppp1 (interface gone)' <<<"$OUT" &&
		grep -q '^balanced default route: nexthop group 0x6d68ffff: isp1 (ppp0) weight 8$' <<<"$OUT"; then
		ok "status: the dead link is marked, the kernel's group holds isp1 only"
	else
		not_ok "status: the dead link is marked, the kernel's group holds isp1 only" "$OUT"
	fi
	ctl reapply
	expect_clean "reapply prunes the dead link: status clean (exit 0)"
	ctl status --json
	if grep -q '"name":"isp2","interface":"ppp1","state":"down"' <<<"$OUT"; then
		ok "status --json: isp2 down after reapply, its allocation kept"
	else
		not_ok "status --json: isp2 down after reapply, its allocation kept" "$OUT"
	fi
}

# ---------------------------------------------------------------- exit codes
# The monitoring convention: 0 OK, 1 a warning, 2 a link that should be up
# is not (critical), 3 unknown (usage, state that cannot be read).
test_exit_codes() {
	local r=() f=$WORK/not-a-directory
	ctl status --bogus; r+=("$RC")
	ctl frobnicate; r+=("$RC")
	ctl metrics extra; r+=("$RC")
	: >"$f"
	OUT=$(ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$f" "$CTL" status 2>&1); r+=("$?")
	OUT=$(ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$f" "$CTL" metrics 2>&1); r+=("$?")
	if [ "${r[*]}" = "3 3 3 3 3" ] && grep -q "multihomectl metrics: .*$f" <<<"$OUT"; then
		ok "exit 3: status --bogus, an unknown command, metrics ARG, a registry that is a file (status, metrics)"
	else
		not_ok "exit 3: usage errors and an unreadable registry" "exits ${r[*]}: $OUT"
	fi

	# isp2's pppd loses its link and redials: ip-down ran, the process runs on
	local peers downs pid t
	peers=$(peers_file isp2)
	link_device isp2 || { not_ok "exit 2: isp2's device"; return 0; }
	LINK_UPS[isp2]=$(grep -c "isp2 up on " "$TOPO_DIR/isp2.log" 2>/dev/null || true)
	downs=$(grep -c "isp2 down" "$TOPO_DIR/isp2.log" 2>/dev/null || true)
	ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" \
		"$HARNESS" --file "$peers" --plugin "$PLUGIN" --ifname ppp1 \
		--local "${LINK_LOCAL[isp2]}" --remote "${LINK_PEER[isp2]}" --linkname isp2 \
		up wait down wait exit >>"$TOPO_DIR/isp2.log" 2>&1 &
	pid=$!
	LINK_PID[isp2]=$pid
	if ! link_wait_up isp2; then
		not_ok "exit 2: isp2 comes up (a pppd that will redial)"
		return 0
	fi
	expect_clean "exit 0: isp2 up again"
	kill -TERM "$pid"
	for t in $(seq 100); do
		[ "$(grep -c "isp2 down" "$TOPO_DIR/isp2.log")" -gt "$downs" ] && break
		sleep 0.05
	done
	expect_warning "isp2 is down while its pppd (pid $pid) runs on, redialing" link-down 2
	ctl status
	if grep -q "^critical (link-down): link isp2 is down, but the process that registered it still runs (pid $pid, mh-pppd-harness)" <<<"$OUT" &&
		grep -qE '^isp2 +down +\(ppp1\) +- +- +- +- +-$' <<<"$OUT"; then
		ok "status: the critical line names the pid; the table shows isp2 down, no counts"
	else
		not_ok "status: the critical line names the pid; the table shows isp2 down, no counts" "$OUT"
	fi
	ctl metrics
	if [ "$RC" = 0 ] && grep -qx 'multihome_status 2' <<<"$OUT" &&
		grep -qx 'multihome_link_status{link="isp2"} 2' <<<"$OUT" &&
		grep -qx 'multihome_link_up{link="isp2"} 0' <<<"$OUT" &&
		grep -qx 'multihome_link_status{link="isp1"} 0' <<<"$OUT"; then
		ok "metrics: exit 0 with multihome_status 2, isp2's status 2 and up 0, isp1's status 0"
	else
		not_ok "metrics: exit 0 with multihome_status 2, isp2's status 2 and up 0" "exit $RC: $OUT"
	fi
	# pppd gives up and exits: the link was stopped, not lost
	_kill_wait "$pid" TERM
	unset "LINK_PID[isp2]"
	nsx srv ip link del ppp1 2>/dev/null
	expect_clean "exit 0: isp2's pppd has exited: down, nothing to warn about"

	# offline: upstream tracking's verdict, written into isp1's registry entry
	# by hand (the pppd stand-in of these tests runs no prober): how status
	# shows it, not how it comes about
	local entry=$MULTIHOME_RUNDIR/link.isp1
	if ! grep -qx 'online 1' "$entry"; then
		not_ok "status: isp1's registry entry says online 1" "$(cat "$entry")"
		return 0
	fi
	sed -i 's/^online 1$/online 0/' "$entry"
	expect_warning "isp1 is up but its upstream does not answer" link-offline 2
	ctl status --json
	if grep -q '"name":"isp1","interface":"ppp0","state":"offline"' <<<"$OUT"; then
		ok "status --json: isp1's state is offline"
	else
		not_ok "status --json: isp1's state is offline" "$OUT"
	fi
	sed -i 's/^online 0$/online 1/' "$entry"
	expect_clean "exit 0: isp1 online again"
}

# ---------------------------------------------------------------- proto name
test_proto_name() {
	local out
	if ! command -v unshare >/dev/null || [ ! -d /etc/iproute2/rt_protos.d ]; then
		skip "ip route shows 'proto multihome' with the shipped file" "no unshare or /etc/iproute2/rt_protos.d"
		return 0
	fi
	mkdir -p "$WORK/rt_protos.d"
	cp "$MH_TOP/etc/rt_protos.d/multihome.conf" "$WORK/rt_protos.d/"
	# shellcheck disable=SC2016 # $1 and $2 are the inner shell's
	out=$(unshare -m --propagation private sh -c \
		'mount --bind "$1" /etc/iproute2/rt_protos.d && ip netns exec "$2" ip route show table 101' \
		sh "$WORK/rt_protos.d" "$(ns_name srv)" 2>&1)
	if grep -q 'default dev ppp0 proto multihome' <<<"$out"; then
		ok "ip route show table 101: 'default dev ppp0 proto multihome' (rt_protos.d)"
	else
		not_ok "ip route show table 101: 'default dev ppp0 proto multihome' (rt_protos.d)" "$out"
	fi
}

# ---------------------------------------------------------------- flush
test_flush() {
	local before after
	# foreign state, some of it close to ours
	nsx srv ip rule add priority 98 fwmark 0x80/0x80 lookup 200
	nsx srv ip route add default dev eth0 table 200
	nsx srv ip nexthop add id 77 dev eth0
	nsx srv ip route add 203.0.113.0/28 nhid 77 table 200
	nsx srv iptables-legacy -t mangle -A PREROUTING -i eth0 -j MARK --set-mark 0x80
	nsx srv iptables-legacy -t nat -A POSTROUTING -o eth0 -j RETURN
	nsx srv iptables-legacy -t mangle -N FOREIGN
	foreign() {
		nsx srv ip rule show | grep -v -e 'lookup 10[12]' -e 'suppress_prefixlength 0' \
			-e 'from 100.64'
		nsx srv ip route show table 200
		nsx srv ip nexthop show id 77
		nsx srv iptables-legacy -t mangle -S | grep -v MULTIHOME
		nsx srv iptables-legacy -t nat -S | grep -v MULTIHOME
	}
	before=$(foreign)
	ctl flush
	if [ "$RC" != 0 ]; then
		not_ok "flush exits 0" "$OUT"
		return 1
	fi
	local left
	left=$( {
		nsx srv ip -d rule show | grep -E 'proto (109|multihome)'
		nsx srv ip -d route show table all | grep -E 'proto (109|multihome)'
		nsx srv ip nexthop show | grep -E 'proto (109|multihome)'
		nsx srv iptables-legacy -t mangle -S | grep MULTIHOME
		nsx srv iptables-legacy -t nat -S | grep MULTIHOME
	} 2>&1)
	if [ -z "$left" ]; then
		ok "flush: no rule, route, nexthop or chain of multihome's left"
	else
		not_ok "flush: no rule, route, nexthop or chain of multihome's left" "$left"
	fi
	after=$(foreign)
	if [ "$before" = "$after" ] && grep -q 'fwmark 0x80/0x80 lookup 200' <<<"$after" &&
		grep -q 'nhid 77' <<<"$after" && grep -q -- '-N FOREIGN' <<<"$after"; then
		ok "flush: foreign rules, routes, nexthops and firewall rules untouched"
	else
		not_ok "flush: foreign rules, routes, nexthops and firewall rules untouched" \
			"$(diff <(echo "$before") <(echo "$after"))"
	fi
	ctl status
	if [ "$RC" = 0 ] && grep -q '^no links registered' <<<"$OUT" &&
		grep -q '^balanced default route: none' <<<"$OUT" &&
		! ls "$MULTIHOME_RUNDIR"/link.* >/dev/null 2>&1; then
		ok "flush: registry emptied; status shows no links, exit 0"
	else
		not_ok "flush: registry emptied; status shows no links, exit 0" "exit $RC: $OUT"
	fi
	# the still-running pppd of isp1 goes down later: nothing to withdraw, no error
	link_stop isp1 term
	if ! nsx srv ip -d rule show | grep -qE 'proto (109|multihome)' &&
		! grep -qi 'error' "$TOPO_DIR/isp1.log"; then
		ok "flush: a link's later ip-down finds nothing to withdraw, no error"
	else
		not_ok "flush: a link's later ip-down finds nothing to withdraw, no error" \
			"$(tail -n 3 "$TOPO_DIR/isp1.log")"
	fi
}

# ---------------------------------------------------------------- nft
# legacy_ours: lines of multihome's chains in srv's iptables-legacy (mangle, nat)
legacy_ours() {
	{ nsx srv iptables-legacy -t mangle -S; nsx srv iptables-legacy -t nat -S; } 2>/dev/null | grep -c MULTIHOME
}
nft_has_table() { nsx srv nft list table ip multihome >/dev/null 2>&1; }

# expect_message DESC REGEX: status prints a warning line matching REGEX.
expect_message() {
	ctl status
	if grep -q -- "^warning ([a-z-]*): $2" <<<"$OUT"; then
		ok "$1"
	else
		not_ok "$1" "exit $RC: $(grep -v '^  ' <<<"$OUT" | tail -n 4)"
	fi
}

# reapply_clean DESC: reapply exits 0 (its output in $REAPPLIED), then status is clean.
reapply_clean() {
	ctl reapply
	REAPPLIED=$OUT
	[ "$RC" = 0 ] || not_ok "$1: reapply exits 0" "$OUT"
	expect_clean "$1"
}

test_nft() {
	local f
	if ! command -v nft >/dev/null; then
		skip "multihomectl with the nft backend" "no nft command"
		return 0
	fi
	export MULTIHOME_FIREWALL=nft
	topo_destroy
	if ! topo_create || ! link_start isp1 || ! link_start isp2; then
		not_ok "nft: links isp1 and isp2 come up (MULTIHOME_FIREWALL=nft)" \
			"$(tail -n 5 "$TOPO_DIR"/isp*.log 2>/dev/null)"
		return 1
	fi
	ctl status
	if [ "$RC" = 0 ] && ! grep -q '^\(warning\|critical\) (' <<<"$OUT" &&
		grep -q '^firewall: nft (table ip multihome)$' <<<"$OUT" &&
		grep -q '^balanced default route: nexthop group 0x6d68ffff: isp1 (ppp0) weight 8, isp2 (ppp1) weight 2$' <<<"$OUT" &&
		nft_has_table && [ "$(legacy_ours)" = 0 ]; then
		ok "nft: status clean with both links, names the backend and its table (exit 0)"
	else
		not_ok "nft: status clean with both links, names the backend and its table (exit 0)" "exit $RC: $OUT"
	fi
	ctl status --json
	if [ "$RC" = 0 ] && json_ok "$OUT" &&
		grep -q '^{"rundir":"[^"]*","firewall":"nft","firewall_last_event":"nft","health":"ok","links":' <<<"$OUT" &&
		grep -q '"warnings":\[\]' <<<"$OUT"; then
		ok "nft: status --json: \"firewall\":\"nft\", the last event's backend, no warnings"
	else
		not_ok "nft: status --json: \"firewall\":\"nft\", the last event's backend, no warnings" "exit $RC: $OUT"
	fi

	# a link's element deleted by hand: named per link; an event does not read
	# the kernel, reapply does (the whole table) and adds exactly that element
	nsx srv nft delete element ip multihome masq '{ "ppp0" }'
	expect_warning "nft: isp1's masq element deleted" rules-missing
	expect_message "nft: rules-missing names isp1's element in set masq" \
		'link isp1 is up on ppp0 but the kernel lacks its element "ppp0" in set masq (masquerade); run .multihomectl reapply.$'
	reapply_clean "nft: reapply restores the masq element: status clean (exit 0)"
	if nsx srv nft list set ip multihome masq | grep -q '"ppp0" comment "multihome isp1"' &&
		grep -q '^multihomectl reapply: adding element "ppp0" in set masq (masquerade) of link isp1 (firewall)$' <<<"$REAPPLIED" &&
		[ "$(grep -c '^multihomectl reapply: \(adding\|changing\|removing\)' <<<"$REAPPLIED")" = 1 ]; then
		ok "nft: the masq element of isp1 is back (reapply adds that element, says so, and nothing else)"
	else
		not_ok "nft: the masq element of isp1 is back (reapply adds that element, says so, and nothing else)" \
			"$REAPPLIED; $(nsx srv nft list set ip multihome masq 2>&1)"
	fi
	nsx srv nft delete element ip multihome ingress '{ "ppp1" }'
	expect_warning "nft: isp2's ingress element deleted" rules-missing
	expect_message "nft: rules-missing names isp2's element in map ingress" \
		'link isp2 is up on ppp1 but the kernel lacks its element "ppp1" : goto in_isp2_0x2_0x2_m in map ingress'
	reapply_clean "nft: reapply restores the ingress element: status clean (exit 0)"

	# a base chain emptied, a pin chain emptied
	nsx srv nft flush chain ip multihome prerouting
	f=$(nsx srv nft list table ip multihome | sed -n 's/^\tchain \(pin_isp2_[0-9a-f]*\) {$/\1/p')
	[ -n "$f" ] && nsx srv nft flush chain ip multihome "$f"
	expect_warning "nft: chain prerouting and isp2's pin chain flushed" rules-missing
	expect_message "nft: rules-missing names the rules of chain prerouting" \
		'table ip multihome lacks its 2 of the 2 rules of chain prerouting'
	expect_message "nft: rules-missing names isp2's pin chain" \
		"link isp2 .*lacks its 1 of the 1 pin rules in chain pin_isp2_"
	reapply_clean "nft: reapply restores chain prerouting and the pins: status clean (exit 0)"

	# the table deleted: one warning for it, none per link
	nsx srv nft delete table ip multihome
	expect_warning "nft: table ip multihome deleted" rules-missing
	ctl status
	if [ "$(grep -c '^warning' <<<"$OUT")" = 1 ] &&
		grep -q "^warning (rules-missing): table ip multihome is gone (deleted by 'nft flush ruleset'.*run 'multihomectl reapply'" <<<"$OUT" &&
		grep -q '^firewall: nft (no table ip multihome)$' <<<"$OUT"; then
		ok "nft: the deleted table is one warning suggesting reapply"
	else
		not_ok "nft: the deleted table is one warning suggesting reapply" "$OUT"
	fi
	reapply_clean "nft: reapply rebuilds table ip multihome: status clean (exit 0)"
	nsx srv nft flush ruleset
	expect_message "nft: nft flush ruleset: the table is gone" 'table ip multihome is gone'
	reapply_clean "nft: reapply after nft flush ruleset: status clean (exit 0)"

	# the backend changes without an event: the other one holds our state
	MULTIHOME_FIREWALL=iptables expect_warning "nft -> iptables without an event: table ip multihome left" firewall-leftover
	MULTIHOME_FIREWALL=iptables expect_message "nft -> iptables: the leftover names the table and the last event's backend" \
		"the firewall backend in use is iptables, but table ip multihome (nft) is still there (the last event used nft): multihome's rules have not moved yet; run 'multihomectl reapply' to move them"
	if [ "$(grep -c '^warning' <<<"$OUT")" = 1 ] &&
		grep -q '^firewall: iptables (legacy x_tables, chains MULTIHOME-\*), the last event used nft$' <<<"$OUT"; then
		ok "nft -> iptables: one warning (no rules-missing, hooks-missing for rules not moved yet); the last event's backend shown"
	else
		not_ok "nft -> iptables: one warning (no rules-missing, hooks-missing for rules not moved yet)" "$OUT"
	fi
	MULTIHOME_FIREWALL=iptables reapply_clean "nft -> iptables: reapply moves the rules: status clean (exit 0)"
	if ! nft_has_table && [ "$(legacy_ours)" -gt 0 ]; then
		ok "nft -> iptables: reapply: no table ip multihome, chains MULTIHOME-* in iptables-legacy"
	else
		not_ok "nft -> iptables: reapply: no table ip multihome, chains MULTIHOME-*" \
			"legacy: $(legacy_ours); $(nsx srv nft list tables 2>&1)"
	fi
	# a stray table while the last event used iptables too
	nsx srv nft add table ip multihome
	MULTIHOME_FIREWALL=iptables expect_warning "iptables in use, last event iptables: a stray table ip multihome" firewall-leftover
	MULTIHOME_FIREWALL=iptables expect_message "iptables: the stray table is a leftover to remove" \
		"the firewall backend in use is iptables, but table ip multihome (nft) is still there (the last event used iptables): it still marks packets; run 'multihomectl reapply' to remove the leftover"
	MULTIHOME_FIREWALL=iptables reapply_clean "iptables: reapply removes the stray table: status clean (exit 0)"
	nft_has_table && not_ok "iptables: reapply removes the stray table" "$(nsx srv nft list table ip multihome 2>&1)"
	# back to nft, chosen in the configuration file this time
	printf '# test\nfirewall nft\n' >"$WORK/multihome.conf"
	MULTIHOME_FIREWALL='' MULTIHOME_CONF=$WORK/multihome.conf expect_warning "iptables -> nft (MULTIHOME_CONF): legacy chains left" firewall-leftover
	MULTIHOME_FIREWALL='' MULTIHOME_CONF=$WORK/multihome.conf expect_message "iptables -> nft: the leftover names the legacy chains" \
		"the firewall backend in use is nft, but multihome's legacy iptables chains (MULTIHOME-\*) are still there (the last event used iptables)"
	MULTIHOME_FIREWALL='' MULTIHOME_CONF=$WORK/multihome.conf ctl status --json
	if grep -q '"firewall":"nft","firewall_last_event":"iptables"' <<<"$OUT"; then
		ok "iptables -> nft: --json names nft in use, iptables used by the last event"
	else
		not_ok "iptables -> nft: --json names nft in use, iptables used by the last event" "$OUT"
	fi
	MULTIHOME_FIREWALL='' MULTIHOME_CONF=$WORK/multihome.conf reapply_clean "iptables -> nft: reapply moves the rules back: status clean (exit 0)"
	if nft_has_table && [ "$(legacy_ours)" = 0 ]; then
		ok "iptables -> nft: reapply: table ip multihome, no legacy chain"
	else
		not_ok "iptables -> nft: reapply: table ip multihome, no legacy chain" "legacy: $(legacy_ours)"
	fi

	# isp2 with snat and reply-via-link off: its srcaddr element, its up_ chain
	link_stop isp2 term
	local LINK_EXTRA_isp2   # read by peers_file (tests/lib/topo.sh)
	# shellcheck disable=SC2034
	LINK_EXTRA_isp2=$(printf 'multihome-nat snat\nmultihome-reply-via-link no')
	if link_start isp2; then
		expect_clean "nft: isp2 back with snat, reply-via-link off: status clean (exit 0)"
		nsx srv nft delete element ip multihome srcaddr '{ "ppp1" }'
		expect_message "nft: rules-missing names isp2's srcaddr element" \
			'link isp2 is up on ppp1 but the kernel lacks its element "ppp1" : 100.64.2.2 in map srcaddr (snat)'
		reapply_clean "nft: reapply restores the srcaddr element: status clean (exit 0)"
		nsx srv nft delete element ip multihome ingress '{ "ppp1" }'
		expect_message "nft: with reply-via-link off the ingress element goes to chain up_isp2_..." \
			'link isp2 .*lacks its element "ppp1" : goto up_isp2_0x2_0x2_s100.64.2.2 in map ingress'
		reapply_clean "nft: reapply restores it: status clean (exit 0)"
	else
		not_ok "nft: isp2 back with snat, reply-via-link off" "$(tail -n 5 "$TOPO_DIR/isp2.log")"
	fi

	# flush: nothing of ours in either backend, even when the last event's
	# backend (nft) is the one in use and a legacy chain of ours is left
	nsx srv iptables-legacy -t mangle -N MULTIHOME-PRE
	expect_warning "nft in use, last event nft: a legacy chain MULTIHOME-PRE left" firewall-leftover
	ctl flush
	if [ "$RC" = 0 ] && ! nft_has_table && [ "$(legacy_ours)" = 0 ] &&
		! nsx srv ip -d rule show | grep -qE 'proto (109|multihome)'; then
		ok "nft: flush: no table ip multihome, no legacy chain, no rule of ours"
	else
		not_ok "nft: flush: no table ip multihome, no legacy chain, no rule of ours" \
			"exit $RC: $OUT; legacy $(legacy_ours); $(nsx srv nft list tables 2>&1)"
	fi
	expect_clean "nft: status after flush: no links, clean (exit 0)"
	unset MULTIHOME_FIREWALL
}

# ---------------------------------------------------------------- install
test_install() {
	local d=$WORK/destdir pv ma out missing='' f
	pv=$(sed -n 's/^#define[[:space:]]*VERSION[[:space:]]*"\(.*\)"/\1/p' /usr/include/pppd/patchlevel.h 2>/dev/null)
	ma=$(${CC:-cc} -print-multiarch 2>/dev/null)
	# install what is built; never rebuild here (-o: take the files as they are)
	local -a make_install=(make -s -C "$MH_TOP" -o "${PLUGIN#"$MH_TOP"/}" -o "${OVPN_SO#"$MH_TOP"/}" -o "${CTL#"$MH_TOP"/}" install)
	if ! out=$("${make_install[@]}" DESTDIR="$d" PREFIX=/usr 2>&1); then
		not_ok "make install DESTDIR=... PREFIX=/usr" "$(tail -n 5 <<<"$out")"
		return 1
	fi
	for f in "/usr/lib/pppd/$pv/multihome.so" \
		"/usr/lib/${ma:+$ma/}openvpn/plugins/multihome-openvpn.so" \
		/usr/sbin/multihomectl /usr/share/man/man8/multihome.8 \
		/usr/share/man/man8/multihomectl.8 /etc/iproute2/rt_protos.d/multihome.conf; do
		[ -f "$d$f" ] || missing="$missing $f"
	done
	if [ -z "$missing" ] && [ -x "$d/usr/sbin/multihomectl" ] &&
		cmp -s "$d/usr/lib/pppd/$pv/multihome.so" "$PLUGIN" &&
		grep -qE '^109[[:space:]]+multihome$' "$d/etc/iproute2/rt_protos.d/multihome.conf"; then
		ok "make install DESTDIR PREFIX=/usr: pppd $pv dir, OpenVPN plugins, sbin, man8, rt_protos.d"
	else
		not_ok "make install DESTDIR PREFIX=/usr: every file in place" "missing:$missing"
	fi
	rm -rf "$d"
	if out=$("${make_install[@]}" DESTDIR="$d" 2>&1) &&
		[ -x "$d/usr/local/sbin/multihomectl" ] &&
		[ -f "$d/usr/local/lib/${ma:+$ma/}openvpn/plugins/multihome-openvpn.so" ] &&
		[ -f "$d/usr/local/share/man/man8/multihomectl.8" ] &&
		[ -f "$d/usr/lib/pppd/$pv/multihome.so" ]; then
		ok "make install DESTDIR (default PREFIX=/usr/local; pppd's own plugin dir)"
	else
		not_ok "make install DESTDIR (default PREFIX=/usr/local; pppd's own plugin dir)" \
			"$(tail -n 5 <<<"$out"; find "$d" -type f)"
	fi
	# the installed multihomectl works on its own (static core)
	if "$d/usr/local/sbin/multihomectl" check "$MH_TOP/examples/isp1" >/dev/null 2>&1; then
		ok "installed multihomectl runs (core linked in)"
	else
		not_ok "installed multihomectl runs (core linked in)"
	fi
}

# ---------------------------------------------------------------- main
if ! topo_create; then
	not_ok "ctl: topology"
	exit 1
fi
trap cleanup EXIT
# status before any link: the registry directory does not exist yet
rmdir "$MULTIHOME_RUNDIR"
test_check
test_status
test_exit_codes
test_proto_name
test_flush
test_nft
test_install
