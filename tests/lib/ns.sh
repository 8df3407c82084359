# The one namespace library of the tests (sourced): one naming scheme, one
# exec wrapper, one way to make and to remove a namespace.
# shellcheck shell=bash
#
#   NS_ID             this run's prefix, mh<PID> by default (a library may put
#                     a short group name after the PID: mh<PID>rd); the test
#                     runner finds the test that made a namespace by that PID
#   ns_name ROLE      the namespace's name: $NS_ID-ROLE
#   ns_add ROLE       make it: loopback up, IPv6 off (no DAD or RS chatter in
#                     the counters); remembered for ns_cleanup
#   nsx ROLE CMD...   run CMD in it (MH_VERBOSE=1 prints it first)
#   ns_sysctl ROLE KEY=VALUE...
#   ns_cleanup        everything still running in this run's namespaces is
#                     killed (a background `nsx ROLE cmd &` is a subshell whose
#                     child would outlive its $!), then they are deleted
#
# Addresses only from 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and
# 100.64.0.0/10, inside the namespaces.

NS_ID=${NS_ID:-mh$$}
NS_ROLES=()

ns_name() { echo "$NS_ID-$1"; }

nsx() {
	local role=$1
	shift
	[ -n "${MH_VERBOSE:-}" ] && echo "[$role] $*" >&2
	ip netns exec "$NS_ID-$role" "$@"
}

ns_sysctl() {
	local role=$1
	shift
	nsx "$role" sysctl -qw "$@" >/dev/null
}

ns_add() {
	ip netns add "$(ns_name "$1")" || return 1
	NS_ROLES+=("$1")
	nsx "$1" ip link set lo up
	ns_sysctl "$1" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

ns_cleanup() {
	local role pid
	for role in "${NS_ROLES[@]}"; do
		for pid in $(ip netns pids "$(ns_name "$role")" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
	done
	for role in "${NS_ROLES[@]}"; do
		ip netns del "$(ns_name "$role")" 2>/dev/null
	done
	NS_ROLES=()
}
