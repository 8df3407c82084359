#!/bin/bash
# The VM tier: real pppd 2.4.9 over real kernel PPP, with multihome.so loaded
# by pppd itself.  This machine's kernel has no PPP, so the scenario runs in a
# small qemu guest booted from Debian's linux-image-amd64 and an initramfs
# assembled now from installed packages (tests/vm/mkinitramfs.sh).  The guest
# (tests/vm/guest.sh) prints one "RESULT pass|fail|skip ID detail" line per
# check of tests/vm/checks on its serial console; this runner records them
# through tests/lib/check.sh.  When the guest cannot run, every check is
# recorded as skipped, loudly.
#
# Environment:
#   MH_VM_ACCEL    auto (default: KVM only if it reaches the guest's /init
#                  within MH_VM_KVM_PROBE seconds, else TCG) | tcg | kvm
#   MH_VM_KVM_PROBE  seconds (default 10)
#   MH_VM_TIMEOUT  seconds for the whole guest run (default 170)
#   MH_VM_CONNS    connections of the balancing check (default 200)
#   MH_VM_PLUGIN   the multihome.so to test (default build/multihome.so)
#   MH_VM_KEEP     keep the work directory (initramfs, console log); it is
#                  also kept, and named, when a check fails
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/lib/check.sh
. "$repo/tests/lib/check.sh"

# Own directory per run: several runs (make check of teammates) may overlap.
work=
log=
accel_mode=${MH_VM_ACCEL:-auto}
timeout_s=${MH_VM_TIMEOUT:-170}
probe_s=${MH_VM_KVM_PROBE:-10}
t0=$(date +%s.%N)

ids=() descs=()
while IFS=$'\t' read -r id desc; do
	case $id in '#'* | '') continue ;; esac
	ids+=("$id") descs+=("$desc")
done <"$here/checks"

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}'; }

skip_all() {
	echo "##############################################################"
	echo "## VM tier NOT RUN: $1"
	echo "## all ${#ids[@]} of its checks are recorded as SKIPPED"
	echo "##############################################################"
	for i in "${!ids[@]}"; do skip "vm: ${descs[$i]}" "$1"; done
	if [ -n "$work" ] && [ -z "${MH_VM_KEEP:-}" ]; then rm -rf "$work"; fi
	exit 0
}

# ------------------------------------------------------------ prerequisites
[ "$(id -u)" = 0 ] || skip_all "needs root (pppd is mode 4754 root:dip; initramfs copies it)"
qemu=$(command -v qemu-system-x86_64) || skip_all "qemu-system-x86_64 not installed (package qemu-system-x86)"
for t in cpio gzip depmod modprobe ldd nm readelf; do
	command -v $t >/dev/null || skip_all "$t not installed"
done
[ -x /bin/busybox ] || skip_all "/bin/busybox missing (package busybox-static)"
[ -x /usr/sbin/pppd ] || skip_all "/usr/sbin/pppd missing (package ppp)"
[ -x /usr/sbin/xtables-legacy-multi ] || skip_all "iptables-legacy missing (package iptables)"
kver=
for d in /lib/modules/*/; do
	k=$(basename "$d")
	[ -f "/boot/vmlinuz-$k" ] && [ -f "$d/kernel/drivers/net/ppp/ppp_generic.ko" ] && kver=$k
done
[ -n "$kver" ] || skip_all "no /boot/vmlinuz-KVER with PPP modules in /lib/modules/KVER (package linux-image-amd64)"
kernel=/boot/vmlinuz-$kver
[ -r "$kernel" ] || skip_all "$kernel not readable"

work=$(mktemp -d "${TMPDIR:-/tmp}/mh-vm.XXXXXX")
log=$work/console.log

# ------------------------------------------------------------ guest contents
probe=$repo/build/mh-probe
[ -x "$probe" ] || skip_all "$probe not built (make)"

plugin=${MH_VM_PLUGIN:-$repo/build/multihome.so}
plugin_old=
if [ -f "$plugin" ]; then
	# A copy claiming pppd 2.4.8: patch the pppd_version symbol's bytes.
	plugin_old=$work/multihome-2.4.8.so
	cp "$plugin" "$plugin_old"
	addr=$(nm -D --defined-only "$plugin_old" | awk '$3=="pppd_version"{print $1}')
	off=
	if [ -n "$addr" ]; then
		# file offset = symbol address - section address + section offset
		while read -r _ type saddr soff ssize _; do
			[ "$type" = NOBITS ] && continue
			if ((16#$addr >= 16#$saddr && 16#$addr < 16#$saddr + 16#$ssize)); then
				off=$((16#$addr - 16#$saddr + 16#$soff))
				break
			fi
		done < <(readelf -SW "$plugin_old" | sed -n 's/^ *\[ *[0-9]*\] //p' | grep -v '^NULL')
	fi
	if [ -n "$off" ] && [ "$(dd if="$plugin_old" bs=1 skip="$off" count=6 2>/dev/null | od -An -c | tr -d ' ')" = '2.4.9\0' ]; then
		printf '2.4.8' | dd of="$plugin_old" bs=1 seek="$off" conv=notrunc 2>/dev/null
	else
		echo "vm: cannot find pppd_version = \"2.4.9\" in $plugin; wrong-version check will fail"
		plugin_old=
	fi
else
	echo "vm: $plugin not built: the infrastructure checks run, the plugin's are skipped"
fi

if ! MH_PLUGIN=$plugin MH_PLUGIN_OLD=$plugin_old MH_PROBE=$probe MH_UDPFLOW=$repo/build/mh-udpflow \
	"$here/mkinitramfs.sh" "$work/initramfs.gz" "$kver" "$work" >"$work/mkinitramfs.log" 2>&1; then
	cat "$work/mkinitramfs.log"
	skip_all "building the initramfs failed"
fi
echo "vm: kernel $kver, initramfs $(du -h "$work/initramfs.gz" | cut -f1) built in $(elapsed "$t0") s"

# ------------------------------------------------------------ boot
append="console=ttyS0 panic=-1 quiet loglevel=1 MH_VM_CONNS=${MH_VM_CONNS:-200}"
qpid=
start_qemu() { # ACCEL
	: >"$log"
	"$qemu" -accel "$1" -m 512 -smp 2 -nodefaults -no-user-config -display none \
		-nic none -no-reboot -serial "file:$log" \
		-kernel "$kernel" -initrd "$work/initramfs.gz" -append "$append" \
		>"$work/qemu.out" 2>&1 &
	qpid=$!
}
stop_qemu() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=; }
trap 'stop_qemu' EXIT
# wait_for PATTERN SECONDS: until the console shows PATTERN or qemu exits.
wait_for() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		grep -q "$1" "$log" 2>/dev/null && return 0
		kill -0 "$qpid" 2>/dev/null || { grep -q "$1" "$log" 2>/dev/null; return; }
		sleep 0.2
	done
	return 1
}

accel=
tboot=$(date +%s.%N)
if [ "$accel_mode" != tcg ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	start_qemu kvm
	if wait_for '^MH-VM: init' "$probe_s"; then
		accel=kvm
	else
		stop_qemu
		if [ "$accel_mode" = kvm ]; then
			skip_all "MH_VM_ACCEL=kvm but the KVM guest did not reach /init in ${probe_s} s"
		fi
		echo "vm: KVM did not reach the guest's /init in ${probe_s} s; using TCG"
	fi
elif [ "$accel_mode" = kvm ]; then
	skip_all "MH_VM_ACCEL=kvm but /dev/kvm is not usable"
fi
if [ -z "$accel" ]; then
	accel=tcg
	tboot=$(date +%s.%N)
	start_qemu tcg
	if ! wait_for '^MH-VM: init' 60; then
		stop_qemu
		tail -n 30 "$log" "$work/qemu.out"
		skip_all "the TCG guest did not reach /init within 60 s (log: $log)"
	fi
fi
echo "vm: accelerator ${accel^^}; guest /init after $(elapsed "$tboot") s"
if ! wait_for '^MH-VM: done' "$timeout_s"; then
	echo "vm: the guest did not finish within $timeout_s s; its missing checks fail"
fi
stop_qemu
trap - EXIT
tguest=$(elapsed "$tboot")

# ------------------------------------------------------------ results
tr -d '\r' <"$log" >"$log.txt"
failed=0
for i in "${!ids[@]}"; do
	id=${ids[$i]} desc="vm: ${descs[$i]}"
	line=$(grep -m1 "^RESULT [a-z]* $id " "$log.txt" || grep -m1 "^RESULT [a-z]* $id\$" "$log.txt")
	status=$(echo "$line" | cut -d' ' -f2)
	detail=$(echo "$line" | cut -d' ' -f4-)
	case $status in
	pass) ok "$desc"; [ -n "$detail" ] && echo "      $detail" ;;
	skip) skip "$desc" "$detail" ;;
	fail)
		not_ok "$desc" "$detail"
		grep "^DIAG $id " "$log.txt" | sed "s/^DIAG $id /      | /"
		failed=1 ;;
	*)
		not_ok "$desc" "no result from the guest (it stopped early; see $log)"
		failed=1 ;;
	esac
done
if [ "$failed" = 1 ]; then
	echo "vm: guest console (non-result lines, last 40):"
	grep -v -e '^RESULT ' -e '^DIAG ' "$log.txt" | tail -n 40 | sed 's/^/      > /'
fi
echo "vm: ${accel^^} guest boot to poweroff $tguest s; tier total $(elapsed "$t0") s"
if [ -n "${MH_VM_KEEP:-}" ] || [ "$failed" = 1 ]; then
	echo "vm: kept $work (console.log, initramfs.gz)"
else
	rm -rf "$work"
fi
exit 0
