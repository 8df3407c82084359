#!/bin/bash
# The VM tier: real pppd over real kernel PPP, with multihome.so loaded by
# pppd itself, twice: under Debian 12's pppd 2.4.9 (the host's) and under
# Debian 13's pppd 2.5.2 (trixie's binary, libc and libraries, unpacked by
# scripts/fetch-trixie.sh into build/trixie), with the multihome.so built
# for each (build/multihome.so, build/pppd25/multihome.so).  This machine's
# kernel has no PPP, so each run is a small qemu guest booted from Debian's
# linux-image-amd64 and an initramfs assembled now (tests/vm/mkinitramfs.sh).
# The guest (tests/vm/guest.sh) prints one "RESULT pass|fail|skip ID detail"
# line per check of tests/vm/checks on its serial console; this runner
# records them as "vm pppd VERSION: description" through tests/lib/check.sh.
# A guest that cannot run has every check recorded as skipped, loudly.
#
# Environment:
#   MH_VM_ACCEL    auto (default: KVM only if it reaches the guest's /init
#                  within MH_VM_KVM_PROBE seconds, else TCG) | tcg | kvm
#   MH_VM_KVM_PROBE  seconds (default 10; probed once, for the first guest)
#   MH_VM_TIMEOUT  seconds for one guest's run (default 180)
#   MH_VM_CONNS    connections of the balancing check (default 200)
#   MH_VM_PPPD     which guests: "2.4.9 2.5.2" (default), or one of them
#   MH_VM_KEEP     keep the work directory (initramfs, console log); it is
#                  also kept, and named, when a check fails
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/lib/check.sh
. "$repo/tests/lib/check.sh"
# shellcheck source=tests/harness/variants.sh
. "$repo/tests/harness/variants.sh"

# Own directory per run: several runs (make check of teammates) may overlap.
work=
accel_mode=${MH_VM_ACCEL:-auto}
timeout_s=${MH_VM_TIMEOUT:-180}
probe_s=${MH_VM_KVM_PROBE:-10}
t0=$(date +%s.%N)
V24=$(/usr/sbin/pppd --version 2>&1 | sed -n 's/^pppd version //p')
V24=${V24:-2.4.9}
V25=2.5.2
guests=${MH_VM_PPPD:-$V24 $V25}

ids=() descs=()
while IFS=$'\t' read -r id desc; do
	case $id in '#'* | '') continue ;; esac
	ids+=("$id") descs+=("$desc")
done <"$here/checks"

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}'; }

# skip_guest VERSION REASON: every check of that guest, skipped, loudly.
skip_guest() {
	echo "##############################################################"
	echo "## VM tier, pppd $1: NOT RUN: $2"
	echo "## all ${#ids[@]} of its checks are recorded as SKIPPED"
	echo "##############################################################"
	for i in "${!ids[@]}"; do skip "vm pppd $1: ${descs[$i]}" "$2"; done
}
skip_all() {
	local v
	for v in $guests; do skip_guest "$v" "$1"; done
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
probe=$repo/build/mh-probe
[ -x "$probe" ] || skip_all "$probe not built (make)"

work=$(mktemp -d "${TMPDIR:-/tmp}/mh-vm.XXXXXX")
pppd25_state "$repo"

# claim_version SO VERSION OUT: a copy of SO whose pppd_version says VERSION
# (same length), for when no build for another pppd exists.
claim_version() {
	local so=$1 v=$2 out=$3 addr off='' _ type saddr soff ssize cur
	cp "$so" "$out"
	addr=$(nm -D --defined-only "$out" | awk '$3=="pppd_version"{print $1}')
	[ -n "$addr" ] || return 1
	# file offset = symbol address - section address + section offset
	while read -r _ type saddr soff ssize _; do
		[ "$type" = NOBITS ] && continue
		if ((16#$addr >= 16#$saddr && 16#$addr < 16#$saddr + 16#$ssize)); then
			off=$((16#$addr - 16#$saddr + 16#$soff))
			break
		fi
	done < <(readelf -SW "$out" | sed -n 's/^ *\[ *[0-9]*\] //p' | grep -v '^NULL')
	[ -n "$off" ] || return 1
	cur=$(dd if="$out" bs=1 skip="$off" count=$((${#v} + 1)) 2>/dev/null | od -An -c | tr -d ' ')
	[ "$cur" = "$V24\\0" ] || return 1
	printf '%s' "$v" | dd of="$out" bs=1 seek="$off" conv=notrunc 2>/dev/null
}

# ------------------------------------------------------------ one guest
accel=
append="console=ttyS0 panic=-1 quiet loglevel=1 MH_VM_CONNS=${MH_VM_CONNS:-200}"
qpid=
start_qemu() { # ACCEL INITRAMFS LOG
	: >"$3"
	"$qemu" -accel "$1" -m 512 -smp 2 -nodefaults -no-user-config -display none \
		-nic none -no-reboot -serial "file:$3" \
		-kernel "$kernel" -initrd "$2" -append "$append" \
		>"$(dirname "$3")/qemu.out" 2>&1 &
	qpid=$!
}
stop_qemu() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=; }
# Keep check.sh's EXIT trap (its summary when run alone) after ours.
prev_exit=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
# shellcheck disable=SC2064
trap "stop_qemu; $prev_exit" EXIT
# wait_for LOG PATTERN SECONDS: until the console shows PATTERN or qemu exits.
wait_for() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt $end ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$qpid" 2>/dev/null || { grep -q "$2" "$1" 2>/dev/null; return; }
		sleep 0.2
	done
	return 1
}

# boot INITRAMFS LOG: run the guest to its end; sets accel on the first boot.
# Returns 1 (with the reason in BOOT_WHY) when it never reached /init.
boot() {
	local initrd=$1 log=$2
	BOOT_WHY=
	if [ -z "$accel" ] && [ "$accel_mode" != tcg ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		start_qemu kvm "$initrd" "$log"
		if wait_for "$log" '^MH-VM: init' "$probe_s"; then
			accel=kvm
		else
			stop_qemu
			if [ "$accel_mode" = kvm ]; then
				BOOT_WHY="MH_VM_ACCEL=kvm but the KVM guest did not reach /init in ${probe_s} s"
				return 1
			fi
			echo "vm: KVM did not reach the guest's /init in ${probe_s} s; using TCG"
		fi
	elif [ -z "$accel" ] && [ "$accel_mode" = kvm ]; then
		BOOT_WHY="MH_VM_ACCEL=kvm but /dev/kvm is not usable"
		return 1
	fi
	if [ "$accel" != kvm ]; then
		accel=tcg
		start_qemu tcg "$initrd" "$log"
		if ! wait_for "$log" '^MH-VM: init' 60; then
			stop_qemu
			tail -n 30 "$log" "$(dirname "$log")/qemu.out"
			BOOT_WHY="the TCG guest did not reach /init within 60 s (log: $log)"
			return 1
		fi
	fi
	echo "vm: accelerator ${accel^^}"
	if ! wait_for "$log" '^MH-VM: done' "$timeout_s"; then
		echo "vm: the guest did not finish within $timeout_s s; its missing checks fail"
	fi
	stop_qemu
}

# record VERSION LOG: one result per check, "vm pppd VERSION: ...".
record() {
	local v=$1 log=$2 i id desc line status detail failed=0
	tr -d '\r' <"$log" >"$log.txt"
	for i in "${!ids[@]}"; do
		id=${ids[$i]} desc="vm pppd $v: ${descs[$i]}"
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
		echo "vm pppd $v: guest console (non-result lines, last 40):"
		grep -v -e '^RESULT ' -e '^DIAG ' "$log.txt" | tail -n 40 | sed 's/^/      > /'
	fi
	return $failed
}

# run_guest VERSION PPPD-ROOT PLUGIN OTHER-PLUGIN OTHER-VERSION
# (the timer test plugin sits next to PLUGIN)
run_guest() {
	local v=$1 proot=$2 plugin=$3 other=$4 ov=$5 gw tstart tboot rc=0
	gw=$work/$v
	mkdir -p "$gw"
	tstart=$(date +%s.%N)
	[ -f "$plugin" ] || echo "vm pppd $v: $plugin not built: the infrastructure checks run, the plugin's are skipped"
	if ! MH_PPPD_ROOT=$proot MH_PPPD_VERSION=$v MH_PLUGIN=$plugin MH_PLUGIN_OTHER=$other \
		MH_OTHER_VERSION=$ov MH_PROBE=$probe MH_UDPFLOW=$repo/build/mh-udpflow MH_TIMER_PLUGIN=$(dirname "$plugin")/mh-timer-plugin.so \
		"$here/mkinitramfs.sh" "$gw/initramfs.gz" "$kver" "$gw" >"$gw/mkinitramfs.log" 2>&1; then
		cat "$gw/mkinitramfs.log"
		skip_guest "$v" "building the initramfs failed"
		return 0
	fi
	rm -rf "$gw/root"
	echo "vm pppd $v: kernel $kver, initramfs $(du -h "$gw/initramfs.gz" | cut -f1) built in $(elapsed "$tstart") s"
	tboot=$(date +%s.%N)
	if ! boot "$gw/initramfs.gz" "$gw/console.log"; then
		skip_guest "$v" "$BOOT_WHY"
		return 0
	fi
	record "$v" "$gw/console.log" || rc=1
	echo "vm pppd $v: ${accel^^} guest boot to poweroff $(elapsed "$tboot") s"
	return $rc
}

failed=0
for v in $guests; do
	case $v in
	"$V24")
		other=$PPPD25_DIR/multihome.so ov=$V25
		if [ "$PPPD25_STATE" != ready ]; then
			# No 2.5.2 build: pppd's version check still meets another version.
			other=$work/multihome-2.4.8.so ov=2.4.8
			claim_version "$repo/build/multihome.so" 2.4.8 "$other" 2>/dev/null || other=
		fi
		run_guest "$v" / "$repo/build/multihome.so" "$other" "$ov" || failed=1 ;;
	"$V25")
		case $PPPD25_STATE in
		ready) run_guest "$v" "$PPPD25_ROOT" "$PPPD25_DIR/multihome.so" \
			"$repo/build/multihome.so" "$V24" || failed=1 ;;
		broken) not_ok "vm pppd $v: build/pppd25 is built" "$PPPD25_WHY"
			skip_guest "$v" "$PPPD25_WHY" ;;
		*) skip_guest "$v" "$PPPD25_WHY" ;;
		esac ;;
	*) not_ok "vm: MH_VM_PPPD: unknown pppd '$v' (have $V24 $V25)" ;;
	esac
done
echo "vm: tier total $(elapsed "$t0") s"
if [ -n "${MH_VM_KEEP:-}" ] || [ "$failed" = 1 ]; then
	echo "vm: kept $work (console.log, initramfs.gz per pppd version)"
else
	rm -rf "$work"
fi
exit 0
