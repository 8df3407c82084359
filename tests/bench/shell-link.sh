#!/bin/bash
# The shell baseline of `make bench`: what the article's ip-up/ip-down scripts
# do for one link, one process per change (ip, iptables-legacy), timed per
# event.  Run inside the bench namespace.
#
#   shell-link.sh N IF LOCAL TABLE MARK/MASK PRIO NHID GROUP OTHERS
#
# repeats N times: up (table route, fwmark rule, source rule, nexthop, group
# replace, CONNMARK ingress rule, MASQUERADE), then down (the reverse), and
# prints "event up usec T" / "event down usec T" like mh-pppd-harness --time.
# OTHERS is the group's other members ("11/12/..."), already set up.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
n=$1 ifc=$2 local=$3 table=$4 mark=$5 prio=$6 nhid=$7 group=$8 others=$9
src_prio=$((10000 + prio))
ipt=iptables-legacy

link_up() {
	ip route replace default dev "$ifc" table "$table" &&
	ip rule add priority "$prio" fwmark "$mark" lookup "$table" &&
	ip rule add priority "$src_prio" from "$local" lookup "$table" &&
	ip nexthop replace id "$nhid" dev "$ifc" &&
	ip nexthop replace id "$group" group "$others/$nhid" &&
	$ipt -t mangle -A PREROUTING -i "$ifc" -j CONNMARK --set-xmark "$mark" &&
	$ipt -t nat -A POSTROUTING -o "$ifc" -j MASQUERADE
}

link_down() {
	ip nexthop replace id "$group" group "$others" &&
	ip nexthop del id "$nhid" &&
	ip rule del priority "$prio" &&
	ip rule del priority "$src_prio" &&
	ip route del default table "$table" &&
	$ipt -t mangle -D PREROUTING -i "$ifc" -j CONNMARK --set-xmark "$mark" &&
	$ipt -t nat -D POSTROUTING -o "$ifc" -j MASQUERADE
}

for ((i = 0; i < n; i++)); do
	t0=${EPOCHREALTIME/./}; link_up || { echo "shell-link: up failed" >&2; exit 1; }; t1=${EPOCHREALTIME/./}
	echo "event up usec $((t1 - t0))"
	t0=${EPOCHREALTIME/./}; link_down || { echo "shell-link: down failed" >&2; exit 1; }; t1=${EPOCHREALTIME/./}
	echo "event down usec $((t1 - t0))"
done
