#!/usr/bin/env bash
# A TLS client/server tunnel with `pull` (certificates made here): the server in
# corp pushes topology subnet, its route-gateway and redirect-gateway; the client
# is examples/client.conf (user nobody, persist-tun, pull-filter ignore
# redirect-gateway) with this run's addresses and files.
#
# Covered: ROUTE_UP as root with pulled options (privileges drop only at
# "Initialization Sequence Completed"), "pulled options changed" on reconnect
# (the server hands out another address: tun0 reopened, all events unprivileged),
# SIGUSR1 with persist-tun and unchanged options, a pushed gateway off the
# tunnel's subnet (refused), SIGTERM; traffic each time.
# Topology: see ovpn-lib.bash.
set -u
# shellcheck source=tests/openvpn/ovpn-lib.bash
. "$(dirname "$0")/ovpn-lib.bash"
ovpn_require
command -v openssl >/dev/null || { skip "openvpn: tls.sh" "openssl is not installed"; exit 0; }
topo_up

isp_start isp1 ppp0 $ISP1_ADDR 100.64.1.2 101 0x1 101 8 "udp $VPNSERVER/32 port 1130" || exit 1
isp_start isp2 ppp1 $ISP2_ADDR 100.64.2.2 102 0x2 102 2 || exit 1

make_certs() {
	local d=$T/pki ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	mkdir -p "$d"
	openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.crt" -subj /CN=mh-test-ca -days 2
	for who in server client; do
		openssl req "${ec[@]}" -keyout "$d/$who.key" -out "$d/$who.csr" -subj "/CN=mh-test-$who"
		printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=%s\n' \
			"$([ $who = server ] && echo serverAuth || echo clientAuth)" >"$d/$who.ext"
		openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
			-days 2 -extfile "$d/$who.ext" -out "$d/$who.crt"
	done
	chmod 755 "$d"
	chmod 644 "$d"/*
} >/dev/null 2>&1

# tls_server POOL_FROM POOL_TO [OPTION...]: the server in corp, handing out
# addresses from the pool
tls_server() {
	local d=$T/pki from=$1 to=$2
	shift 2
	nsx corp openvpn --mode server --tls-server --dev tun0 --topology subnet \
		--ifconfig $TUN_CORP 255.255.255.0 --ifconfig-pool "$from" "$to" 255.255.255.0 \
		--push "topology subnet" --push "route-gateway $TUN_CORP" --push "redirect-gateway def1" \
		--ca "$d/ca.crt" --cert "$d/server.crt" --key "$d/server.key" --dh none \
		--port 1130 --keepalive 1 10 --explicit-exit-notify 1 \
		--verb 3 --log-append "$T/corp-ovpn.log" --daemon --writepid "$T/pid/corp-ovpn.pid" "$@" >/dev/null 2>&1
	wait_for 5 test -s "$T/pid/corp-ovpn.pid"
}

# tls_server_stop: SIGTERM the server and wait until the process is gone, not
# only its tun0: OpenVPN 2.6 unlinks its --writepid file as it exits, after
# tun0 is closed, so a server started right after tun0 vanished could have its
# new pid file removed by the old one (seen: the next stop found no pid file
# and the old server kept the port).
tls_server_stop() {
	local pid
	pid=$(cat "$T/pid/corp-ovpn.pid" 2>/dev/null)
	[ -n "$pid" ] || { not_ok "tls: the server's pid file $T/pid/corp-ovpn.pid is there"; return 1; }
	kill "$pid"
	wait_for 15 eval '! kill -0 '"$pid"
	rm -f "$T/pid/corp-ovpn.pid"
	wait_for 5 eval '! nsx corp ip link show tun0 >/dev/null 2>&1'
}

# The client is examples/client.conf itself, with this run's server, files and plugin.
tls_client() {
	local d=$T/pki
	CLIENT_LOG=$T/tls-client.log
	CLIENT_PIDFILE=$T/pid/tls-client.pid
	for f in "$CLIENT_LOG" "$CLIENT_PIDFILE"; do install -m 644 -o nobody /dev/null "$f"; done
	sed -e "s|^remote .*|remote $VPNSERVER 1130|" \
		-e "s|^ca .*|ca $d/ca.crt|" -e "s|^cert .*|cert $d/client.crt|" -e "s|^key .*|key $d/client.key|" \
		-e "s|^plugin [^ ]*multihome-openvpn.so|plugin $OVPN_SO|" \
		"$TOP/examples/client.conf" >"$T/client.conf"
	chmod 644 "$T/client.conf"
	nsx srv openvpn --config "$T/client.conf" --connect-retry 1 1 \
		--log "$CLIENT_LOG" --daemon --writepid "$CLIENT_PIDFILE" >/dev/null 2>&1
	wait_for 5 test -s "$CLIENT_PIDFILE"
	CLIENT_PID=$(cat "$CLIENT_PIDFILE")
}

UP_MSG="link 'vpn' up on tun0"
tun_addr() { nsx srv ip -4 -o addr show dev tun0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }

make_certs
[ -s "$T/pki/client.crt" ] || { not_ok "tls: certificates made with openssl"; exit 0; }
tls_server 100.64.100.10 100.64.100.19
tls_client

if wait_log "$UP_MSG" 0 20 && wait_for 15 tunnel_alive; then
	ok "tls: pulled tunnel up, link registered at ROUTE_UP"
	first=$(tun_addr)
	# no pushed routes: OpenVPN sets no route_vpn_gateway; tun is layer 3
	check "tls: no pushed routes: the link's table has a device route" \
		eval 'nsx srv ip -4 route show table 103 | grep -q "^default dev tun0"'
	check "tls: pushed redirect-gateway ignored (no 0.0.0.0/1 in main)" \
		eval '! nsx srv ip -4 route show table main | grep -q "^0\.0\.0\.0/1"'
	check "tls: OpenVPN dropped to nobody after the first ROUTE_UP" \
		eval 'wait_for 5 grep -q "^Uid:[[:space:]]*65534" /proc/$CLIENT_PID/status'
	vpn_checks "tls" "$first"
	transport_via ISP1 "tls: the tunnel's transport leaves by ISP1 (pinned)"

	# the server comes back with another pool: "Pulled options changed on restart"
	tls_server_stop
	c=$(log_count "$UP_MSG")
	tls_server 100.64.100.30 100.64.100.39 --push "route 100.64.101.0 255.255.255.0"
	if wait_log "$UP_MSG" "$c" 30 && wait_for 15 tunnel_alive; then
		second=$(tun_addr)
		check "tls: pulled options changed: tun0 reopened with a new address ($first -> $second)" \
			eval '[ -n "$second" ] && [ "$second" != "$first" ] && grep -q "Pulled options changed" "$CLIENT_LOG"'
		check "tls: no rule left for the old address $first" eval '[ "$(vpn_from_rules '"$first"')" = 0 ]'
		check "tls: a pushed route: the link's table routes by route_vpn_gateway" \
			eval 'nsx srv ip -4 route show table 103 | grep -q "^default via $TUN_CORP dev tun0"'
		vpn_checks "tls, pulled options changed" "$second"
	else
		not_ok "tls: link back after pulled options changed" "$(tail -5 "$CLIENT_LOG")"
		second=$first
	fi

	# SIGUSR1 with persist-tun and the same options: nothing to do
	c=$(log_count "Initialization Sequence Completed")
	d=$(log_count "withdrawn")
	kill -USR1 "$CLIENT_PID"
	wait_log "Initialization Sequence Completed" "$c" 20
	wait_for 10 tunnel_alive
	check "tls: SIGUSR1 with persist-tun keeps the link" eval '[ "$(log_count withdrawn)" = "$d" ]'
	vpn_checks "tls, after SIGUSR1" "$second"

	# a hostile server: its pushed gateway is not on the tunnel's subnet
	tls_server_stop
	c=$(log_count "refusing the tunnel's environment")
	tls_server 100.64.100.30 100.64.100.39 --push "route 100.64.101.0 255.255.255.0" \
		--push "route-gateway 100.64.101.1"
	if wait_log "refusing the tunnel's environment" "$c" 30; then
		ok "tls: a pushed route-gateway off the tunnel's subnet is refused"
		check "tls: ... and nothing of the vpn link is installed" eval '[ -z "$(vpn_leftovers)" ]'
	else
		not_ok "tls: a pushed route-gateway off the tunnel's subnet is refused" \
			"$(grep -i multihome "$CLIENT_LOG" | tail -3)"
	fi
else
	not_ok "tls: pulled tunnel up, link registered at ROUTE_UP" "$(tail -5 "$CLIENT_LOG")"
fi
ovpn_stop
clean_checks "tls: after SIGTERM"
exit 0
