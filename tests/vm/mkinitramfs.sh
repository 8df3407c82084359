#!/bin/bash
# Assemble the VM tier's initramfs from installed Debian packages (and, for
# pppd 2.5.2, from Debian 13's packages unpacked by scripts/fetch-trixie.sh):
#   mkinitramfs.sh OUT.cpio.gz KVER WORKDIR
# Environment:
#   MH_PPPD_ROOT     where pppd and its libraries come from: / (the host's
#                    pppd 2.4.9, libraries found by ldd) or an unpacked tree
#                    (build/trixie/root: pppd 2.5.2, its libraries and
#                    trixie's libc resolved by their NEEDED entries in that
#                    tree, the OpenSSL legacy provider pppd 2.5.2 loads)
#   MH_PPPD_VERSION  that pppd's version: the plugin directory
#                    /usr/lib/pppd/VERSION, and /mh/pppd-version
#   MH_PLUGIN        multihome.so built for that pppd (absent: not put in)
#   MH_PLUGIN_OTHER  a multihome.so for another pppd, installed as
#                    /opt/multihome-other/multihome.so; MH_OTHER_VERSION is
#                    its version (/mh/other-version)
#   MH_TIMER_PLUGIN  the harness's timer test plugin for that pppd, installed
#                    as /opt/mh-timer-plugin.so
#   MH_PROBE         the traffic tool (build/mh-probe)
#   MH_UDPFLOW       long-lived UDP flows (build/mh-udpflow)
# The host's binaries (ip, iptables, busybox) run on the newer libc too.
# Needs root: /usr/sbin/pppd is mode 4754 root:dip.
set -euo pipefail

out=$1 kver=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
proot=${MH_PPPD_ROOT:-/}
pver=${MH_PPPD_VERSION:?MH_PPPD_VERSION not set}
root=$work/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc/ppp/peers,proc,sys,dev,run,tmp,var,mnt}
ln -s usr/lib "$root/lib"        # merged /usr, as on the host
ln -s usr/lib64 "$root/lib64"
ln -s ../run "$root/var/run"
mkdir -p "$root/var/lock" "$root/var/log"

# Binaries, by full path (busybox sh prefers its own applets to PATH).
cp -L "$proot/usr/sbin/pppd" "$root/usr/sbin/pppd"
for b in /usr/sbin/ip /usr/sbin/xtables-legacy-multi; do cp -L "$b" "$root$b"; done
for n in iptables-legacy iptables-legacy-save iptables-legacy-restore; do
	ln -s xtables-legacy-multi "$root/usr/sbin/$n"
done
cp -a /usr/lib/x86_64-linux-gnu/xtables "$root/usr/lib/x86_64-linux-gnu/"

cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do
	case $a in ip|busybox) continue ;; esac
	[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
ln -s ../bin/busybox "$root/sbin/modprobe"
ln -s ../bin/busybox "$root/sbin/poweroff"
ln -s ../bin/busybox "$root/sbin/syslogd"

plugdir=$root/usr/lib/pppd/$pver
mkdir -p "$plugdir"
host_bins="$root/usr/sbin/ip $root/usr/sbin/xtables-legacy-multi"
host_bins="$host_bins $(ls /usr/lib/x86_64-linux-gnu/xtables/*.so)"
[ "$proot" = / ] && host_bins="$host_bins $root/usr/sbin/pppd"
if [ -n "${MH_PLUGIN:-}" ] && [ -f "$MH_PLUGIN" ]; then
	cp "$MH_PLUGIN" "$plugdir/multihome.so"
	host_bins="$host_bins $MH_PLUGIN"
fi
if [ -n "${MH_PLUGIN_OTHER:-}" ] && [ -f "$MH_PLUGIN_OTHER" ]; then
	mkdir -p "$root/opt/multihome-other"
	cp "$MH_PLUGIN_OTHER" "$root/opt/multihome-other/multihome.so"
fi
if [ -n "${MH_TIMER_PLUGIN:-}" ] && [ -f "$MH_TIMER_PLUGIN" ]; then
	mkdir -p "$root/opt"
	cp "$MH_TIMER_PLUGIN" "$root/opt/mh-timer-plugin.so"
fi
if [ -n "${MH_PROBE:-}" ] && [ -f "$MH_PROBE" ]; then
	cp "$MH_PROBE" "$root/usr/bin/mh-probe"
	host_bins="$host_bins $MH_PROBE"
fi
if [ -n "${MH_UDPFLOW:-}" ] && [ -f "$MH_UDPFLOW" ]; then
	cp "$MH_UDPFLOW" "$root/usr/bin/mh-udpflow"
	host_bins="$host_bins $MH_UDPFLOW"
fi

# The host's shared libraries (and the loader) of the host's binaries.
for f in $host_bins; do
	{ ldd "$f" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\/lib/{print $1}'
done | sort -u | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"

# pppd from another tree: its NEEDED closure from that tree, over the host's
# copies (so libc, the loader and libcrypto are the tree's).
find_lib() { # SONAME: its path in $proot
	local d
	for d in usr/lib/x86_64-linux-gnu lib/x86_64-linux-gnu usr/lib lib; do
		[ -e "$proot/$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}
if [ "$proot" != / ]; then
	todo="usr/sbin/pppd usr/lib/x86_64-linux-gnu/ossl-modules/legacy.so"
	seen=" "
	while [ -n "$todo" ]; do
		# shellcheck disable=SC2086  # split into paths (no blanks in them)
		set -- $todo
		f=$1
		shift
		todo="$*"
		case $seen in *" $f "*) continue ;; esac
		seen="$seen$f "
		[ -e "$proot/$f" ] || { echo "mkinitramfs: $proot/$f missing" >&2; exit 1; }
		mkdir -p "$root/$(dirname "$f")"
		cp -L "$proot/$f" "$root/$f"
		for so in $(readelf -d "$proot/$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			lib=$(find_lib "$so") || { echo "mkinitramfs: $so (needed by $f) not in $proot" >&2; exit 1; }
			todo="$todo $lib"
		done
	done
	# The loader every binary names (PT_INTERP /lib64/ld-linux-x86-64.so.2).
	rm -f "$root/usr/lib64/ld-linux-x86-64.so.2"
	cp -L "$proot/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$root/usr/lib64/ld-linux-x86-64.so.2"
fi

# Kernel modules: PPP, veth/dummy, legacy x_tables with every xt extension
# (the kernel autoloads them by alias through /sbin/modprobe), plus their
# dependencies (crc32c_generic for libcrc32c: pitfall 4 of VM-NOTES).
mods=/lib/modules/$kver
want="ppp_generic ppp_async veth dummy crc32c_generic ip_tables iptable_filter
      iptable_mangle iptable_nat iptable_raw nf_conntrack nf_nat nf_conntrack_netlink"
for f in "$mods"/kernel/net/netfilter/xt_*.ko*; do
	m=$(basename "$f"); want="$want ${m%%.ko*}"
done
for m in $want; do
	modprobe -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}'
done | sort -u | while read -r ko; do
	mkdir -p "$root$(dirname "$ko")"
	cp "$ko" "$root$ko"
done
cp "$mods"/modules.order "$mods"/modules.builtin* "$root$mods/" 2>/dev/null || true
depmod -b "$root" "$kver"

# Configuration: iproute2 tables, pppd's (empty) system options, peers files.
cp -a /etc/iproute2 "$root/etc/" 2>/dev/null || true
: >"$root/etc/ppp/options"
# A user of group dip may start the setuid pppd, as on Debian.
printf 'root:x:0:0:root:/root:/bin/sh\ndialer:x:1000:30::/tmp:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\ndip:x:30:dialer\n' >"$root/etc/group"
printf '/bin/sh\n' >"$root/etc/shells"
chown root:30 "$root/usr/sbin/pppd"
chmod 4754 "$root/usr/sbin/pppd"
cp "$here"/peers/* "$root/etc/ppp/peers/"

# The guest's programs, and what it must know about this pppd.
mkdir -p "$root/mh"
cp "$here/init" "$root/init"
cp "$here/guest.sh" "$here/isp-side.sh" "$here/checks" "$root/mh/"
chmod 755 "$root/init" "$root/mh/"*.sh
echo "$pver" >"$root/mh/pppd-version"
echo "${MH_OTHER_VERSION:-}" >"$root/mh/other-version"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out"
