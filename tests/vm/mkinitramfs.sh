#!/bin/bash
# Assemble the VM tier's initramfs from installed Debian packages:
#   mkinitramfs.sh OUT.cpio.gz KVER WORKDIR
# Environment (all optional; absent files are simply not put in):
#   MH_PLUGIN      multihome.so to install as /usr/lib/pppd/2.4.9/multihome.so
#   MH_PLUGIN_OLD  a copy of it that claims another pppd version, installed as
#                  /opt/multihome-2.4.8/multihome.so
#   MH_PROBE       the traffic tool (build/mh-probe)
#   MH_UDPFLOW     long-lived UDP flows (build/mh-udpflow)
# Needs root: /usr/sbin/pppd is mode 4754 root:dip.
set -euo pipefail

out=$1 kver=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$work/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc/ppp/peers,proc,sys,dev,run,tmp,var,mnt}
ln -s usr/lib "$root/lib"        # merged /usr, as on the host
ln -s usr/lib64 "$root/lib64"
ln -s ../run "$root/var/run"
mkdir -p "$root/var/lock"

# Binaries, by full path (busybox sh prefers its own applets to PATH).
bins="/usr/sbin/pppd /usr/sbin/ip /usr/sbin/xtables-legacy-multi"
for b in $bins; do cp -L "$b" "$root$b"; done
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

plugdir=$root/usr/lib/pppd/2.4.9
mkdir -p "$plugdir"
libs_of="$root/usr/sbin/pppd $root/usr/sbin/ip $root/usr/sbin/xtables-legacy-multi"
libs_of="$libs_of $(ls /usr/lib/x86_64-linux-gnu/xtables/*.so)"
if [ -n "${MH_PLUGIN:-}" ] && [ -f "$MH_PLUGIN" ]; then
	cp "$MH_PLUGIN" "$plugdir/multihome.so"
	libs_of="$libs_of $MH_PLUGIN"
fi
if [ -n "${MH_PLUGIN_OLD:-}" ] && [ -f "$MH_PLUGIN_OLD" ]; then
	mkdir -p "$root/opt/multihome-2.4.8"
	cp "$MH_PLUGIN_OLD" "$root/opt/multihome-2.4.8/multihome.so"
fi
if [ -n "${MH_PROBE:-}" ] && [ -f "$MH_PROBE" ]; then
	cp "$MH_PROBE" "$root/usr/bin/mh-probe"
	libs_of="$libs_of $MH_PROBE"
fi
if [ -n "${MH_UDPFLOW:-}" ] && [ -f "$MH_UDPFLOW" ]; then
	cp "$MH_UDPFLOW" "$root/usr/bin/mh-udpflow"
	libs_of="$libs_of $MH_UDPFLOW"
fi

# Shared libraries (and the loader) of everything above.
for f in $libs_of; do
	{ ldd "$f" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\/lib/{print $1}'
done | sort -u | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"

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
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\ndip:x:30:\n' >"$root/etc/group"
cp "$here"/peers/* "$root/etc/ppp/peers/"

# The guest's programs.
mkdir -p "$root/mh"
cp "$here/init" "$root/init"
cp "$here/guest.sh" "$here/isp-side.sh" "$here/checks" "$root/mh/"
chmod 755 "$root/init" "$root/mh/"*.sh

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out"
