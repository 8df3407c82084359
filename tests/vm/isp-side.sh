#!/bin/sh
# The ISP's end of a PPP link, run by the server's pppd through its "pty"
# option inside the ISP's namespace:
#   isp-side.sh NAME LOCAL POOL_ADDRESS...
# Each call hands out the next address of the pool (the last one repeats), so
# a dynamic-address ISP gives a new address on every reconnect.
name=$1 local=$2
shift 2
count_file=/run/isp-side-$name.count
n=$(cat "$count_file" 2>/dev/null || echo 0)
echo $((n + 1)) >"$count_file"
i=0
for a in "$@"; do
	addr=$a
	[ "$i" = "$n" ] && break
	i=$((i + 1))
done
echo $$ >"/run/isp-side-$name.pid"
echo "$addr" >"/run/isp-side-$name.addr"
exec /usr/sbin/pppd notty noauth nodefaultroute noccp nodetach \
	logfile "/tmp/isp-side-$name.log" "$local:$addr"
