#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# multihomectl status and metrics show the traffic (issue 12), proved with
# traffic in the reference scenario (tests/lib/topo.sh: isp1 weight 8, pins
# tcp/25 and udp/1130 to 203.0.113.130; isp2 weight 2, pins ISP2's panel).
#
#   idle      both links up, no traffic yet: 0 flows each, share 80%/20%,
#             nothing got yet ("-"), exit 0
#   balanced  380 new connections from srv and 100 from the LAN: status's
#             balanced flows of each link are exactly the connections the far
#             end saw from that link's address, the ISPs' SYN counters agree,
#             and isp1 got 80±7% (with the scenario's hash seed, or a random
#             hash key where the kernel has no seed: below 0.1% to miss)
#   pinned    100 tcp/25 connections (pinned to isp1): isp1's flows grow by
#             100, no link's balanced flows move, nor the shares
#   incoming  20 internet hosts connect to srv's ISP2 address: isp2's flows
#             grow by 20, its balanced flows do not
#   bytes     50 datagrams pinned to isp1: the packets and bytes out that
#             status reports for ppp0 grow by exactly what entered isp1 from
#             srv (isp1's own counters; 14 bytes of Ethernet header a frame)
#   text      the table's line per link says share 80%/20% and the part it
#             got, as computed from what the far end saw; no line is longer
#             than 80 columns; colour only on a terminal (a pty from
#             script(1)), not with NO_COLOR, never in --json
#   metrics   a strict parser of the text exposition format (HELP and TYPE
#             before each family's samples, one group per family, names,
#             the one label link, escapes, values, no duplicate series), and
#             promtool check metrics (Debian's, taken out of the prometheus
#             package without installing it); the same numbers as --json
#
# conntrack's timeouts in srv are raised for the test (a closed connection
# stays in TIME_WAIT), so no count decays while the checks run.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/check.sh
. "$HERE/../lib/check.sh"
# shellcheck source=tests/lib/topo.sh
. "$HERE/../lib/topo.sh"

CTL=$MH_BUILD/multihomectl
WORK=$(mktemp -d /tmp/mh-traffic.XXXXXX)
ln -s /usr/sbin/xtables-legacy-multi "$WORK/iptables-legacy"
export MULTIHOME_IPTABLES=$WORK/iptables-legacy   # no legacy-on-nft warning here
BALANCE_DSTS="203.0.113.1-254 198.51.100.1-126"
HASH_SEED=$([ -e /proc/sys/net/ipv4/fib_multipath_hash_seed ] &&
	echo "hash seed ${MH_HASH_SEED:-12345}" || echo "random hash key")
A2=${LINK_LOCAL[isp2]}
B1=0    # the balanced flows each link carried, as the far end saw them
B2=0

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
	skip "multihomectl traffic tests" "not built: build/multihomectl $(topo_missing) (run make)"
	exit 0
fi
if ! command -v jq >/dev/null; then
	skip "multihomectl traffic tests" "no jq (scripts/deps.sh installs it)"
	exit 0
fi

# ctl ARGS...: multihomectl in srv; exit status in $RC, output in $OUT.
ctl() {
	OUT=$(ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" \
		MULTIHOME_IPTABLES="$MULTIHOME_IPTABLES" "$CTL" "$@" 2>&1)
	RC=$?
}

# j LINK KEY: a key of LINK in the last `status --json` ($JSON).
j() { jq -r --arg l "$1" ".links[] | select(.name == \$l) | .$2" <<<"$JSON"; }

snapshot() { # status --json into $JSON; 1 when it is not valid JSON
	ctl status --json
	JSON=$OUT
	JRC=$RC
	jq -e . >/dev/null 2>&1 <<<"$JSON"
}

# raw_in ISP pkts|bytes: everything that entered ISP from srv (its raw counters).
raw_in() {
	nsx "$1" iptables-legacy -t raw -L PREROUTING -v -x -n |
		awk -v c="$([ "$2" = bytes ] && echo 2 || echo 1)" 'NR == 5 { print $c }'
}

# got_text PART TOTAL: the percentage as the table prints it (one decimal).
got_text() { awk -v p="$1" -v t="$2" 'BEGIN { x = int(1000 * p / t + 0.5); printf "%d.%d%%\n", x / 10, x % 10 }'; }

share_ok() { # PART TOTAL: within 80% +- 7%
	[ "$2" -gt 0 ] && [ $((1000 * $1)) -ge $((730 * $2)) ] && [ $((1000 * $1)) -le $((870 * $2)) ]
}

# ---------------------------------------------------------------- setup
if ! topo_create; then
	not_ok "traffic: topology"
	exit 0
fi
if ! nsx srv sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=900 \
	net.netfilter.nf_conntrack_tcp_timeout_close=900 \
	net.netfilter.nf_conntrack_tcp_timeout_fin_wait=900 \
	net.netfilter.nf_conntrack_udp_timeout=900 \
	net.netfilter.nf_conntrack_udp_timeout_stream=900 2>"$WORK/err"; then
	not_ok "traffic: srv's conntrack timeouts raised for the test" "$(cat "$WORK/err")"
	exit 0
fi
if ! link_start isp1 || ! link_start isp2; then
	not_ok "traffic: links isp1 and isp2 come up" "$(tail -n 5 "$TOPO_DIR"/isp*.log 2>/dev/null)"
	exit 0
fi

# ---------------------------------------------------------------- idle
test_idle() {
	local desc="idle: 0 flows per link, share 0.8/0.2 configured, none got yet, health ok, exit 0"
	if snapshot && [ "$JRC" = 0 ] && [ "$(j isp1 flows)" = 0 ] && [ "$(j isp2 flows)" = 0 ] &&
		[ "$(j isp1 share_configured)" = 0.8 ] && [ "$(j isp2 share_configured)" = 0.2 ] &&
		[ "$(j isp1 share_balanced)" = null ] &&
		[ "$(jq -r '.health, .balanced_flows' <<<"$JSON" | paste -sd' ')" = "ok 0" ]; then
		ok "$desc"
	else
		not_ok "$desc" "exit $JRC: $(jq -c '[.links[] | {name, flows, share_configured, share_balanced}], .warnings' <<<"$JSON" 2>&1)"
	fi
}

# ---------------------------------------------------------------- balanced
# Sets B1 B2 (balanced flows by link as the far end saw them).
test_balanced() {
	local out n ok i1 i2 other n2 ok2 l1 l2 other2 s1 s2 desc
	isp_zero
	# shellcheck disable=SC2086 # a list of ranges
	out=$(probe srv --port 80 $BALANCE_DSTS)
	read -r n ok i1 i2 other <<<"$(tally <<<"$out")"
	out=$(probe lan --port 80 203.0.113.101-200)
	read -r n2 ok2 l1 l2 other2 <<<"$(tally <<<"$out")"
	s1=$(isp_count isp1 tcp)
	s2=$(isp_count isp2 tcp)
	B1=$((i1 + l1))
	B2=$((i2 + l2))
	snapshot
	desc="balanced: status's balanced flows = what the far end saw: isp1 $(j isp1 flows_balanced)/$B1, isp2 $(j isp2 flows_balanced)/$B2"
	if [ "$ok" = "$n" ] && [ "$ok2" = "$n2" ] && [ "$other" = 0 ] && [ "$other2" = 0 ] &&
		[ "$(j isp1 flows_balanced)" = "$B1" ] && [ "$(j isp2 flows_balanced)" = "$B2" ] &&
		[ "$(j isp1 flows)" = "$B1" ] && [ "$(j isp2 flows)" = "$B2" ] &&
		[ "$(jq -r .balanced_flows <<<"$JSON")" = $((n + n2)) ]; then
		ok "$desc"
	else
		not_ok "$desc" "answered $ok/$n + $ok2/$n2, other $other/$other2; $(jq -c '[.links[] | {name, flows, flows_balanced}], .balanced_flows' <<<"$JSON")"
	fi
	desc="balanced: the ISPs' SYN counters agree (isp1 $s1 >= $B1, isp2 $s2 >= $B2, retransmits <= 5%)"
	if [ "$s1" -ge "$B1" ] && [ "$s2" -ge "$B2" ] && [ $((s1 + s2)) -le $((n + n2 + (n + n2) / 20 + 2)) ]; then
		ok "$desc"
	else
		not_ok "$desc"
	fi
	desc="balanced: isp1 got $B1/$((B1 + B2)) = $(j isp1 share_balanced) of the balanced flows (80±7%; $HASH_SEED)"
	if share_ok "$B1" $((B1 + B2)) &&
		awk -v s="$(j isp1 share_balanced)" -v p="$B1" -v t=$((B1 + B2)) \
			'BEGIN { d = s - p / t; exit !(d < 0.00006 && d > -0.00006) }'; then
		ok "$desc"
	else
		not_ok "$desc"
	fi
}

# ---------------------------------------------------------------- pinned
test_pinned() {
	local out n ok i1 i2 other f1 f2 desc
	f1=$(j isp1 flows)
	f2=$(j isp2 flows)
	out=$(probe srv --port 25 203.0.113.1-100)
	read -r n ok i1 i2 other <<<"$(tally <<<"$out")"
	snapshot
	desc="pinned: 100 tcp/25 flows by isp1 ($i1 seen): isp1 flows $f1 -> $(j isp1 flows), balanced still $B1/$B2"
	if [ "$ok" = 100 ] && [ "$i1" = 100 ] && [ "$(j isp1 flows)" = $((f1 + 100)) ] &&
		[ "$(j isp2 flows)" = "$f2" ] && [ "$(j isp1 flows_balanced)" = "$B1" ] &&
		[ "$(j isp2 flows_balanced)" = "$B2" ]; then
		ok "$desc"
	else
		not_ok "$desc" "$(jq -c '[.links[] | {name, flows, flows_balanced}]' <<<"$JSON")"
	fi
}

# ---------------------------------------------------------------- incoming
test_incoming() {
	local k r answered=0 f1 f2 desc
	serve_start srv --tcp 8080 || { not_ok "incoming: a server on srv"; return 0; }
	f1=$(j isp1 flows)
	f2=$(j isp2 flows)
	for k in $(seq 101 120); do
		r=$(probe inet --bind "203.0.113.$k" --port 8080 "$A2" 2>&1)
		grep -q " seen=" <<<"$r" && answered=$((answered + 1))
	done
	snapshot
	desc="incoming: 20 connections to $A2 ($answered answered): isp2 flows $f2 -> $(j isp2 flows), balanced still $B2"
	if [ "$answered" = 20 ] && [ "$(j isp2 flows)" = $((f2 + 20)) ] && [ "$(j isp1 flows)" = "$f1" ] &&
		[ "$(j isp2 flows_balanced)" = "$B2" ] && [ "$(j isp1 flows_balanced)" = "$B1" ]; then
		ok "$desc"
	else
		not_ok "$desc" "$(jq -c '[.links[] | {name, flows, flows_balanced}]' <<<"$JSON")"
	fi
}

# ---------------------------------------------------------------- bytes
test_bytes() {
	local p0 b0 p1 b1 ip0 ib0 ip1 ib1 out dp db dip dib desc
	nsx isp1 iptables-legacy -t raw -Z PREROUTING
	snapshot
	p0=$(j isp1 tx_packets)
	b0=$(j isp1 tx_bytes)
	ip0=$(raw_in isp1 pkts)
	ib0=$(raw_in isp1 bytes)
	out=$(probe srv --udp --port 1130 203.0.113.130 --repeat 50)
	snapshot
	p1=$(j isp1 tx_packets)
	b1=$(j isp1 tx_bytes)
	ip1=$(raw_in isp1 pkts)
	ib1=$(raw_in isp1 bytes)
	dp=$((p1 - p0))
	db=$((b1 - b0))
	dip=$((ip1 - ip0))
	dib=$((ib1 - ib0))
	desc="bytes: ppp0 out +$dp packets +$db bytes; isp1 saw +$dip packets +$dib bytes (+14 a frame)"
	if [ "$(grep -c ' seen=' <<<"$out")" = 50 ] && [ "$dip" -ge 50 ] && [ "$dp" = "$dip" ] &&
		[ "$db" = $((dib + 14 * dip)) ]; then
		ok "$desc"
	else
		not_ok "$desc" "answered $(grep -c ' seen=' <<<"$out")/50"
	fi
	desc="bytes: status's tx counters are ppp0's own (/sys/class/net/ppp0/statistics)"
	if [ "$p1" = "$(tx_packets srv ppp0)" ] &&
		[ "$b1" = "$(nsx srv cat /sys/class/net/ppp0/statistics/tx_bytes)" ]; then
		ok "$desc"
	else
		not_ok "$desc" "status $p1 packets $b1 bytes; sysfs $(tx_packets srv ppp0)"
	fi
}

# ---------------------------------------------------------------- text
test_text() {
	local row1 row2 want1 want2 long t=$((B1 + B2)) desc
	ctl status
	printf '%s\n' "$OUT" | sed -n '1,4p' | sed 's/^/      | /'
	row1=$(awk '$1 == "isp1" && $2 == "up" && $3 == "ppp0"' <<<"$OUT")
	row2=$(awk '$1 == "isp2" && $2 == "up" && $3 == "ppp1"' <<<"$OUT")
	want1="80% $(got_text "$B1" "$t")"
	want2="20% $(got_text "$B2" "$t")"
	desc="text: the line of isp1 says '$want1', of isp2 '$want2' (share, got); flows $(j isp1 flows), $(j isp2 flows)"
	if [ "$RC" = 0 ] && [ "$(awk '{ print $(NF - 1), $NF }' <<<"$row1")" = "$want1" ] &&
		[ "$(awk '{ print $(NF - 1), $NF }' <<<"$row2")" = "$want2" ] &&
		[ "$(awk '{ print $4 }' <<<"$row1")" = "$(j isp1 flows)" ] &&
		[ "$(awk '{ print $4 }' <<<"$row2")" = "$(j isp2 flows)" ] &&
		grep -q "^share: by weight; got: of the $t outgoing, not pinned flows tracked now$" <<<"$OUT"; then
		ok "$desc"
	else
		not_ok "$desc" "$(head -n 4 <<<"$OUT")"
	fi
	# with the long warnings too (strict rp_filter; legacy-on-nft with iptables)
	local nwarn=2
	[ "${MULTIHOME_FIREWALL:-}" = nft ] && nwarn=1
	nsx srv sysctl -qw net.ipv4.conf.ppp0.rp_filter=1
	ln -sf /usr/sbin/xtables-nft-multi "$WORK/iptables-nft"
	MULTIHOME_IPTABLES=$WORK/iptables-nft ctl status
	nsx srv sysctl -qw net.ipv4.conf.ppp0.rp_filter=2
	long=$(awk 'length($0) > 80' <<<"$OUT")
	desc="text: no line is longer than 80 columns ($(wc -l <<<"$OUT") lines, $nwarn warnings)"
	if [ -z "$long" ] && [ "$(grep -c '^warning (' <<<"$OUT")" = "$nwarn" ]; then
		ok "$desc"
	else
		not_ok "$desc" "$long"
	fi
	if grep -q $'\033' <<<"$OUT"; then
		not_ok "text: no colour when not on a terminal"
	else
		ok "text: no colour when not on a terminal"
	fi
	if ! command -v script >/dev/null; then
		skip "text: colour on a terminal, none with NO_COLOR or --json" "no script(1) (bsdutils)"
		return 0
	fi
	local tty nocolor json
	tty=$(ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" \
		MULTIHOME_IPTABLES="$MULTIHOME_IPTABLES" TERM=xterm script -qec "$CTL status" /dev/null </dev/null)
	nocolor=$(ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" \
		MULTIHOME_IPTABLES="$MULTIHOME_IPTABLES" TERM=xterm NO_COLOR=1 script -qec "$CTL status" /dev/null </dev/null)
	json=$(ip netns exec "$(ns_name srv)" env MULTIHOME_RUNDIR="$MULTIHOME_RUNDIR" \
		MULTIHOME_IPTABLES="$MULTIHOME_IPTABLES" TERM=xterm script -qec "$CTL status --json" /dev/null </dev/null)
	desc="text: colour on a terminal (the up links' state green), none with NO_COLOR, none in --json"
	if grep -q $'\033\\[32mup' <<<"$tty" && ! grep -q $'\033' <<<"$nocolor" &&
		! grep -q $'\033' <<<"$json" && grep -q '"name":"isp1"' <<<"$json"; then
		ok "$desc"
	else
		not_ok "$desc" "$(head -n 2 <<<"$tty" | od -c | head -n 3)"
	fi
}

# ---------------------------------------------------------------- metrics
# A strict reader of the Prometheus text exposition format (0.0.4), and of
# this project's rules for it; prints what is wrong, exits 1 then.
strict_metrics() {
	perl -e '
		use strict; use warnings;
		my $name = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
		my $num = qr/[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN/;
		my (%help, %type, %seen_series, %has_samples, %done, @err, $cur, $samples);
		my $text = do { local $/; <STDIN> };
		push @err, "does not end with a newline" unless $text =~ /\n\z/;
		my $ln = 0;
		for my $l (split /\n/, $text) {
			$ln++;
			if ($l =~ /^# HELP ($name) (.*)$/) {
				push @err, "$ln: second HELP for $1" if $help{$1}++;
				push @err, "$ln: bad escape in HELP" if $2 =~ /\\[^\\n]/;
				push @err, "$ln: HELP of $1 after its samples" if $done{$1} || ($cur // "") eq $1 && $samples;
				next;
			}
			if ($l =~ /^# TYPE ($name) (counter|gauge|histogram|summary|untyped)$/) {
				push @err, "$ln: second TYPE for $1" if $type{$1};
				push @err, "$ln: TYPE of $1 after its samples" if $done{$1} || ($cur // "") eq $1 && $samples;
				$type{$1} = $2;
				next;
			}
			if ($l =~ /^#/) { push @err, "$ln: a comment that is neither HELP nor TYPE: $l"; next; }
			if ($l eq "") { push @err, "$ln: empty line"; next; }
			my ($m, $labels, $v, $ts) = $l =~ /^($name)(?:\{(.*)\})? ($num)(?: (-?[0-9]+))?$/
				or do { push @err, "$ln: not a sample: $l"; next };
			push @err, "$ln: a timestamp (the textfile collector refuses them)" if defined $ts;
			if (($cur // "") ne $m) {
				push @err, "$ln: samples of $m in two groups" if $done{$m};
				$done{$cur} = 1 if defined $cur;
				($cur, $samples) = ($m, 0);
			}
			$samples++;
			$has_samples{$m} = 1;
			push @err, "$ln: $m has no HELP" unless $help{$m};
			push @err, "$ln: $m has no TYPE before its samples" unless $type{$m};
			push @err, "$ln: $m is not multihome_*" unless $m =~ /^multihome_/;
			push @err, "$ln: counter $m does not end in _total" if ($type{$m} // "") eq "counter" && $m !~ /_total$/;
			push @err, "$ln: counter $m is negative" if ($type{$m} // "") eq "counter" && $v =~ /^-/;
			my @names;
			if (defined $labels) {
				my $rest = $labels;
				while ($rest =~ s/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)//) {
					push @names, $1;
					last if $3 eq "";
				}
				push @err, "$ln: bad labels {$labels}" if $rest ne "";
			}
			push @err, "$ln: labels are not exactly {link}: {$labels}" if @names && "@names" ne "link";
			push @err, "$ln: duplicate series $m\{" . ($labels // "") . "}" if $seen_series{$m . "{" . ($labels // "")}++;
		}
		for (sort keys %type) { push @err, "TYPE of $_ without samples" unless $has_samples{$_}; }
		print "$_\n" for @err;
		exit(@err ? 1 : 0);
	'
}

# promtool: on PATH, or taken out of Debian's prometheus package into the
# build directory once (never installed: the package starts a server).
find_promtool() {
	local cache=$MH_BUILD/cache/promtool d
	if command -v promtool >/dev/null; then
		command -v promtool
		return 0
	fi
	if [ ! -x "$cache/usr/bin/promtool" ]; then
		d=$(mktemp -d "$WORK/apt.XXXXXX")
		(cd "$d" && apt-get download -qq prometheus) >"$WORK/apt.log" 2>&1 || return 1
		mkdir -p "$cache"
		dpkg-deb --fsys-tarfile "$d"/prometheus_*.deb | tar -x -C "$cache" ./usr/bin/promtool || return 1
		rm -rf "$d"
	fi
	echo "$cache/usr/bin/promtool"
}

test_metrics() {
	local m desc promtool out
	ctl metrics
	m=$OUT
	if [ "$RC" = 0 ] && out=$(strict_metrics <<<"$m"); then
		ok "metrics: a strict parser accepts the text format ($(grep -c '^# TYPE' <<<"$m") families, $(grep -vc '^#' <<<"$m") samples)"
	else
		not_ok "metrics: a strict parser accepts the text format" "exit $RC: $out"
	fi
	# the parser is not a rubber stamp
	out=$(printf '# HELP multihome_x a\n# TYPE multihome_x counter\nmultihome_x{link="a",b="c"} 1 5\nmultihome_y 1\n' | strict_metrics)
	if [ "$(wc -l <<<"$out")" -ge 4 ]; then
		ok "metrics: the strict parser refuses a bad exposition ($(wc -l <<<"$out") faults found)"
	else
		not_ok "metrics: the strict parser refuses a bad exposition" "$out"
	fi
	if promtool=$(find_promtool); then
		if out=$("$promtool" check metrics <<<"$m" 2>&1); then
			ok "metrics: promtool check metrics finds nothing to lint ($($promtool --version 2>&1 | head -n 1 | cut -c1-40))"
		else
			not_ok "metrics: promtool check metrics finds nothing to lint" "$out"
		fi
	else
		skip "metrics: promtool check metrics" "no promtool: apt-get download prometheus failed ($(tail -n 1 "$WORK/apt.log" 2>/dev/null))"
	fi
	snapshot
	local l bad=
	for l in isp1 isp2; do
		for pair in "flows:flows" "balanced_flows:flows_balanced" "transmit_packets_total:tx_packets" \
			"transmit_bytes_total:tx_bytes" "weight:weight"; do
			local metric=${pair%%:*} key=${pair#*:} mv
			mv=$(awk -v n="multihome_link_${metric}{link=\"$l\"}" '$1 == n { print $2 }' <<<"$m")
			[ "$mv" = "$(j "$l" "$key")" ] || bad="$bad $l:$metric=$mv/$(j "$l" "$key")"
		done
	done
	if [ "$(awk '$1 == "multihome_status" { print $2 }' <<<"$m")" != "$JRC" ]; then
		bad="$bad status"
	fi
	desc="metrics: flows, balanced flows, packets, bytes, weights and status as --json has them"
	if [ -z "$bad" ]; then ok "$desc"; else not_ok "$desc" "differ:$bad"; fi
	desc="metrics: share ratios 0.8/0.2 configured, isp1's balanced one = its part"
	if [ "$(awk '$1 == "multihome_link_share_configured_ratio{link=\"isp1\"}" { print $2 }' <<<"$m")" = 0.8 ] &&
		awk -v s="$(awk '$1 == "multihome_link_share_balanced_ratio{link=\"isp1\"}" { print $2 }' <<<"$m")" \
			-v p="$B1" -v t=$((B1 + B2)) 'BEGIN { d = s - p / t; exit !(d < 0.000001 && d > -0.000001) }'; then
		ok "$desc"
	else
		not_ok "$desc" "$(grep share <<<"$m")"
	fi
}

test_idle
test_balanced
test_pinned
test_incoming
test_bytes
test_text
test_metrics
