#!/usr/bin/env bash
# Bad plugin arguments: OpenVPN refuses to start, and its log names the
# argument and says what is wrong (the core's parser, shared with pppd).
# Runs OpenVPN with `--dev null` in a throwaway namespace: no tun is opened.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=${MH_BUILD:-$TOP/build}
. "$TOP/tests/lib/check.sh"
OVPN_SO=$B/multihome-openvpn.so

if [ "$(id -u)" != 0 ] || ! command -v openvpn >/dev/null || [ ! -f "$OVPN_SO" ]; then
	skip "openvpn: args.sh" "needs root, openvpn and $OVPN_SO"
	exit 0
fi
NS=mhova$$
ip netns add $NS
# a registry of its own: the plugin's init must not touch this machine's /run/multihome
RUNDIR=$(mktemp -d /tmp/mh-ova-run.XXXXXX)
export MULTIHOME_RUNDIR=$RUNDIR/run
CONF=
trap 'rm -rf "$RUNDIR" ${CONF:+"$CONF"}; ip netns pids $NS 2>/dev/null | xargs -r kill -9; ip netns del $NS 2>/dev/null' EXIT

# run_ovpn ARG...: OpenVPN with the plugin and these arguments, at most 3 s
run_ovpn() {
	timeout 3 ip netns exec $NS openvpn --dev null --verb 3 --plugin "$OVPN_SO" "$@" 2>&1
}

# refused DESC EXPECTED-TEXT ARG...
refused() {
	local desc=$1 want=$2 out rc
	shift 2
	out=$(run_ovpn "$@")
	rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [[ $out == *"$want"* ]] &&
		[[ $out != *"Initialization Sequence Completed"* ]]; then
		ok "bad argument refused: $desc"
	else
		not_ok "bad argument refused: $desc" "exit $rc; $(printf '%s' "$out" | grep -i -e multihome -e plugin | tail -3)"
	fi
}

refused "unknown key names the argument"   "plugin argument 'colour=blue': unknown option colour" name=vpn colour=blue
refused "no KEY=VALUE"                     "plugin argument 'vpn': expected KEY=VALUE"          vpn
refused "weight out of range"              "plugin argument 'weight=300'"                       weight=300
refused "table not a number or known name" "plugin argument 'table=nosuchtable'"                table=nosuchtable
refused "reserved table (main)"            "plugin argument 'table=254'"                        table=254
refused "zero mark"                        "plugin argument 'mark=0'"                           mark=0
refused "mask not covering the mark"       "plugin argument 'mark=0x4/0x1'"                     mark=0x4/0x1
refused "bad pin prefix"                   "plugin argument 'pin=tcp 198.51.100.0/33 port 22'"  "pin=tcp 198.51.100.0/33 port 22"
refused "bad link name"                    "plugin argument 'name=a b'"                         "name=a b"
refused "empty value"                      "plugin argument 'nat='"                             nat=
refused "bad nat"                          "plugin argument 'nat=yes'"                          nat=yes

out=$(run_ovpn name=vpn table=103 mark=0x4 priority=100 weight=0 "pin=tcp 198.51.100.0/24 port 22")
rc=$?
if [ "$rc" = 124 ] && [[ $out == *"PLUGIN_INIT: POST"* ]]; then
	ok "the article's arguments are accepted (OpenVPN runs)"
else
	not_ok "the article's arguments are accepted (OpenVPN runs)" "exit $rc; $(printf '%s' "$out" | tail -3)"
fi
# A lone quoted argument is split at blanks by OpenVPN itself; the plugin joins it again.
out=$(run_ovpn "pin=tcp 198.51.100.0/24 port 22")
rc=$?
if [ "$rc" = 124 ] && [[ $out == *"PLUGIN_INIT: POST"* ]]; then
	ok "a lone quoted pin argument is accepted"
else
	not_ok "a lone quoted pin argument is accepted" "exit $rc; $(printf '%s' "$out" | grep -i multihome | tail -3)"
fi

# The issue's config line, read from a file as OpenVPN users write it.
CONF=$(mktemp /tmp/mh-ovpn-args.XXXXXX)
printf 'dev null\nverb 3\nplugin %s name=vpn table=103 mark=0x4 priority=100 weight=0 "pin=tcp 198.51.100.0/24 port 22"\n' \
	"$OVPN_SO" >"$CONF"
out=$(timeout 3 ip netns exec $NS openvpn --config "$CONF" 2>&1)
rc=$?
if [ "$rc" = 124 ] && [[ $out == *"[pin=tcp 198.51.100.0/24 port 22]"* ]]; then
	ok "the issue's config line is accepted"
else
	not_ok "the issue's config line is accepted" "exit $rc; $(printf '%s' "$out" | grep -i multihome | tail -3)"
fi
printf 'dev null\nverb 3\nplugin %s name=vpn weight=0 "pin=tcp 198.51.100.0/24 port 99999"\n' "$OVPN_SO" >"$CONF"
out=$(timeout 3 ip netns exec $NS openvpn --config "$CONF" 2>&1)
rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [[ $out == *"plugin argument 'pin=tcp 198.51.100.0/24 port 99999'"* ]]; then
	ok "bad argument refused: a bad pin in a config file"
else
	not_ok "bad argument refused: a bad pin in a config file" "exit $rc; $(printf '%s' "$out" | grep -i multihome | tail -3)"
fi
exit 0
