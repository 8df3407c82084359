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
# With a 10th argument "multipath", OTHERS is the other uplinks ("u0,u1,...")
# and the balanced route is the article's RTA_MULTIPATH `ip route replace
# default nexthop dev ... weight 1 ...` instead of nexthop + group: iproute2
# 6.1 cannot send a group of more than ~120 members in one command.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
n=$1 ifc=$2 local=$3 table=$4 mark=$5 prio=$6 nhid=$7 group=$8 others=$9 mode=${10:-group}
src_prio=$((10000 + prio))
ipt=iptables-legacy

multipath() { # IF...: the balanced default over these uplinks
	local a=() i
	for i in "$@"; do a+=(nexthop dev "$i" weight 1); done
	ip route replace default scope global "${a[@]}"
}
IFS=, read -r -a other_ifs <<<"$others"

link_up() {
	if [ "$mode" = multipath ]; then
		ip route replace default dev "$ifc" table "$table" &&
		ip rule add priority "$prio" fwmark "$mark" lookup "$table" &&
		ip rule add priority "$src_prio" from "$local" lookup "$table" &&
		multipath "${other_ifs[@]}" "$ifc" &&
		$ipt -t mangle -A PREROUTING -i "$ifc" -j CONNMARK --set-xmark "$mark" &&
		$ipt -t nat -A POSTROUTING -o "$ifc" -j MASQUERADE
		return
	fi
	ip route replace default dev "$ifc" table "$table" &&
	ip rule add priority "$prio" fwmark "$mark" lookup "$table" &&
	ip rule add priority "$src_prio" from "$local" lookup "$table" &&
	ip nexthop replace id "$nhid" dev "$ifc" &&
	ip nexthop replace id "$group" group "$others/$nhid" &&
	$ipt -t mangle -A PREROUTING -i "$ifc" -j CONNMARK --set-xmark "$mark" &&
	$ipt -t nat -A POSTROUTING -o "$ifc" -j MASQUERADE
}

link_down() {
	if [ "$mode" = multipath ]; then
		multipath "${other_ifs[@]}" &&
		ip rule del priority "$prio" &&
		ip rule del priority "$src_prio" &&
		ip route del default table "$table" &&
		$ipt -t mangle -D PREROUTING -i "$ifc" -j CONNMARK --set-xmark "$mark" &&
		$ipt -t nat -D POSTROUTING -o "$ifc" -j MASQUERADE
		return
	fi
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
