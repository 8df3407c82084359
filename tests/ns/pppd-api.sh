#!/usr/bin/env bash
# pppd's plugin API, 2.4.9 and 2.5.2: the build, pppd-plugin/pppd-api.h and
# the harness built for each (build/ for the system's pppd 2.4.9,
# build/pppd25/ for Debian 13's 2.5.2; tests/harness/build.mk):
#   - the build picks the headers it finds (PPPD_INCLUDE=, pkg-config pppd,
#     /usr/include) and installs into that pppd's plugin directory;
#   - the harness exports exactly what the real pppd of its version exports
#     of every symbol a plugin here uses, and nothing the real one lacks;
#   - each multihome.so references the symbols the other pppd lacks weakly,
#     so the other pppd's dlopen succeeds and its version check refuses it,
#     naming both versions;
#   - plugin timers (mh_timer_set/mh_timer_cancel over timeout() and
#     ppp_timeout()) fire from the harness's main loop, in order, never
#     early, a cancelled one never; mh_caller_privileged() follows the
#     invoking user;
#   - issue 10 finding 4: without multihome-name, the link is named only by
#     options that need privilege (linkname, ifname); an unprivileged
#     user's ipparam or unit does not name it; defaultroute and
#     replacedefaultroute are refused.
# The VM tier proves the same loading both ways with the real pppd binaries.
# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck disable=SC2034  # nsfar.sh names its namespaces with it
GROUP=api
# shellcheck source=../lib/nsfar.sh
. "$(dirname "$0")/../lib/nsfar.sh"
# shellcheck source=../harness/variants.sh
. "$TOP/tests/harness/variants.sh"

need_tools
pppd25_state "$TOP"
B24=$TOP/build
V24=$(make -s -C "$TOP" pppd-info 2>/dev/null | sed -n 's/^PPPD_VERSION=//p')
REAL24=/usr/sbin/pppd
FLAVOURS=24
case $PPPD25_STATE in
ready) FLAVOURS="24 25" ;;
broken) not_ok "api: build/pppd25 is built" "$PPPD25_WHY" ;;
*) pppd25_banner ;;
esac
B25=$PPPD25_DIR V25=2.5.2 REAL25=$PPPD25_ROOT/usr/sbin/pppd
dir_of() { local v=B$1; echo "${!v}"; }
ver_of() { local v=V$1; echo "${!v}"; }
real_of() { local v=REAL$1; echo "${!v}"; }
# skip25 DESC: record DESC skipped when the 2.5.2 build is not there.
skip25() { [ "$PPPD25_STATE" = ready ] || skip "$1" "$PPPD25_WHY"; }
EMPTY=$TMP/empty
: >"$EMPTY"

# ---------------------------------------------------------------- the build
info_of() { # MAKE-ARGS...: pppd-info's version and plugin directory, one line
	env "$@" make -s -C "$TOP" pppd-info 2>&1 | sed -n 's/^PPPD_VERSION=//p; s/^PPPD_PLUGIN_DIR=//p' | paste -sd' '
}
got=$(info_of)
want="$V24 /usr/lib/pppd/$V24"
if [ -n "$V24" ] && [ "$got" = "$want" ]; then
	ok "api: build: the system's headers (no pppd.pc): pppd $V24, plugins in /usr/lib/pppd/$V24"
else
	not_ok "api: build: the system's headers (no pppd.pc): pppd $V24, plugins in /usr/lib/pppd/$V24" "got '$got'"
fi
if [ "$PPPD25_STATE" = ready ]; then
	inc=$PPPD25_ROOT/usr/include
	got=$(info_of PPPD_INCLUDE="$inc")
	check "api: build: PPPD_INCLUDE=trixie's headers: pppd 2.5.2, plugins in /usr/lib/pppd/2.5.2" \
		test "$got" = "2.5.2 /usr/lib/pppd/2.5.2"
	# A 2.5 machine: only its pkg-config knows pppd (sysroot = trixie's files).
	got=$(info_of PKG_CONFIG_PATH="$PPPD25_ROOT/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$PPPD25_ROOT")
	check "api: build: pkg-config pppd (2.5.2's pppd.pc): pppd 2.5.2, plugindir from pppd.pc" \
		test "$got" = "2.5.2 $PPPD25_ROOT/usr/lib/pppd/2.5.2"
	out=$(make -n -C "$TOP" install B="$TMP/b" DESTDIR=/dest PPPD_INCLUDE="$inc" 2>&1 |
		grep -F "multihome.so /dest/")
	check "api: build: make install PPPD_INCLUDE=... puts multihome.so into /usr/lib/pppd/2.5.2 ($out)" \
		grep -q -F "$TMP/b/multihome.so /dest/usr/lib/pppd/2.5.2/multihome.so" <<<"$out"
else
	for d in "PPPD_INCLUDE=trixie's headers" "pkg-config pppd (2.5.2's pppd.pc)" "make install PPPD_INCLUDE=..."; do
		skip "api: build: $d" "$PPPD25_WHY"
	done
fi
out=$(make -n -C "$TOP" install B="$TMP/b" DESTDIR=/dest 2>&1 | grep -F "multihome.so /dest/")
check "api: build: make install puts multihome.so into /usr/lib/pppd/$V24 ($out)" \
	grep -q -F "$TMP/b/multihome.so /dest/usr/lib/pppd/$V24/multihome.so" <<<"$out"

# ---------------------------------------------------------------- symbols
# pppd_refs SO: the pppd symbols SO references ("U name" / "w name"):
# unversioned undefined symbols that none of its libraries defines.
pppd_refs() {
	local so=$1 lib libsyms=$TMP/libsyms
	: >"$libsyms"
	for lib in $(ldd "$so" | awk '/=> \//{print $3}'); do
		nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' >>"$libsyms"
	done
	nm -D --undefined-only "$so" | awk '$NF !~ /@/ && $NF !~ /^_/ {print $1, $2}' |
		grep -v -w -F -f "$libsyms"
}
exports() { nm -D --defined-only "$1" | awk '{print $3}' | sort -u; }

plugins="$B24/multihome.so $B24/mh-timer-plugin.so"
[ "$PPPD25_STATE" = ready ] && plugins="$plugins $B25/multihome.so $B25/mh-timer-plugin.so"
for so in $plugins; do pppd_refs "$so"; done | awk '{print $2}' | sort -u >"$TMP/refs"
for f in $FLAVOURS; do
	v=$(ver_of "$f")
	exports "$(real_of "$f")" >"$TMP/real$f"
	exports "$(dir_of "$f")/mh-pppd-harness" >"$TMP/hx$f"
	diff=$(comm -3 <(grep -x -F -f "$TMP/refs" "$TMP/real$f") <(grep -x -F -f "$TMP/refs" "$TMP/hx$f") |
		sed 's/^\t/harness only: /; s/^[^h]/real only: &/' | tr '\n' ' ')
	n=$(wc -l <"$TMP/refs")
	check "api pppd $v: harness and real pppd $v export the same of the $n symbols our plugins use ($diff)" \
		test -z "$diff"
	extra=$(comm -23 "$TMP/hx$f" "$TMP/real$f" | tr '\n' ' ')
	check "api pppd $v: the harness exports nothing real pppd $v does not ($extra)" test -z "$extra"
done
skip25 "api pppd 2.5.2: harness and real pppd 2.5.2 export the same symbols"
# Loaded by the other pppd, dlopen(RTLD_NOW) must not fail: every strong
# pppd reference of the one build is exported by the other pppd.
if [ "$PPPD25_STATE" = ready ]; then
	for f in 24 25; do
		o=$((f == 24 ? 25 : 24))
		so=$(dir_of "$f")/multihome.so
		missing=$(pppd_refs "$so" | awk '$1 == "U" {print $2}' | grep -v -x -F -f "$TMP/real$o" | tr '\n' ' ')
		weak=$(pppd_refs "$so" | awk '$1 == "w" {print $2}' | tr '\n' ' ')
		check "api: the pppd $(ver_of "$f") build's strong references all exist in pppd $(ver_of "$o") ($missing); weak: $weak" \
			test -z "$missing"
	done
else
	skip "api: each build's strong references exist in the other pppd" "$PPPD25_WHY"
fi

# ---------------------------------------------------------------- loading
for f in $FLAVOURS; do
	[ "$PPPD25_STATE" = ready ] || break
	v=$(ver_of "$f") o=$((f == 24 ? 25 : 24))
	ov=$(ver_of "$o")
	out=$("$(dir_of "$f")/mh-pppd-harness" --file "$EMPTY" --plugin "$(dir_of "$o")/multihome.so" exit 2>&1)
	rc=$?
	check "api pppd $v: the $ov build is refused by the version check: exit $rc, '$(grep -m1 'is for' <<<"$out")'" \
		grep -q "is for pppd version $ov, this is $v" <<<"$out"
	check "api pppd $v: ... not by the loader (no undefined symbol), and pppd stops (exit $rc)" \
		test "$rc" != 0 -a -z "$(grep -i 'undefined symbol' <<<"$out")"
done
skip25 "api: each pppd refuses the other's build by its version check"

# ---------------------------------------------------------------- timers
# timer_lines LOG: "NAME AT DUE" per timer callback, in the order they ran.
timer_lines() { sed -n 's/.*timer \([a-z]*\) fired at +\([0-9]*\) ms (due +\([0-9]*\)).*/\1 \2 \3/p' "$1"; }
# timers_ok LOG: tick x3, twice x1, once x1, never cancelled or late; none
# early; callbacks in due order (see tests/harness/timer-plugin.c).  Prints
# what is wrong.
timers_ok() {
	local lines bad=
	lines=$(timer_lines "$1")
	[ "$(grep -c '^tick ' <<<"$lines")" = 3 ] || bad+="tick fired $(grep -c '^tick ' <<<"$lines")x, want 3; "
	[ "$(grep -c '^twice ' <<<"$lines")" = 1 ] || bad+="twice (set twice, cancelled once) fired $(grep -c '^twice ' <<<"$lines")x, want 1; "
	[ "$(grep -c '^once ' <<<"$lines")" = 1 ] || bad+="once fired $(grep -c '^once ' <<<"$lines")x; "
	grep -q -e '^cancelled ' -e '^late ' <<<"$lines" && bad+="a cancelled or later timer fired; "
	awk '$2 < $3 { print "early: " $0 }' <<<"$lines" | grep . && bad+="fired early; "
	# in due order, but for ties within the 1 ms the plugin's clock tells apart
	awk '$3 < last - 1 { bad = 1 } { last = $3 } END { exit !bad }' <<<"$lines" &&
		bad+="not in due order; "
	echo "$bad"
}
for f in $FLAVOURS; do
	d=$(dir_of "$f") v=$(ver_of "$f")
	t=$TMP/sleep$f.log w=$TMP/wait$f.log
	"$d/mh-pppd-harness" --file "$EMPTY" --plugin "$d/mh-timer-plugin.so" sleep 1500 exit >"$t" 2>&1
	rc=$? bad=$(timers_ok "$t")
	check "api pppd $v: timers in 'sleep': $(timer_lines "$t" | awk '{printf "%s@%s ", $1, $2}')${bad}exit $rc" \
		test -z "$bad" -a "$rc" = 0
	# In 'wait' nothing but the timers can wake the loop until the signal;
	# the signal goes only once the handler is in place ("waiting" printed).
	"$d/mh-pppd-harness" --file "$EMPTY" --plugin "$d/mh-timer-plugin.so" wait exit >"$w" 2>&1 &
	pid=$!
	wait_lines "$w" "waiting for a signal" 1 10
	wait_lines "$w" "timer tick fired" 3 10
	kill -TERM "$pid"
	wait "$pid"
	rc=$? bad=$(timers_ok "$w")
	check "api pppd $v: timers while waiting for a signal: ${bad}SIGTERM ends the wait (exit $rc)" \
		test -z "$bad" -a "$rc" = 0 -a "$(grep -c 'Received signal 15' "$w")" = 1
	# pppd's vslprintf: 2.4.9 has no %lld (the VM tier shows real pppd's).
	warned=$(grep -c "harness: pppd $v's vslprintf cannot print '%lld'" "$t")
	want=1 can="cannot print it"
	[ "$f" = 25 ] && want=0 can="prints it"
	check "api pppd $v: a %lld in a log format: pppd $v $can, the harness warns ${warned}x" \
		test "$warned" = "$want"
	p_root=$("$d/mh-pppd-harness" --file "$EMPTY" --plugin "$d/mh-timer-plugin.so" exit 2>&1 | sed -n 's/.*caller privileged //p')
	p_user=$("$d/mh-pppd-harness" --uid 65534 --file "$EMPTY" --plugin "$d/mh-timer-plugin.so" exit 2>&1 | sed -n 's/.*caller privileged //p')
	check "api pppd $v: mh_caller_privileged: started by root '$p_root', by uid 65534 '$p_user'" \
		test "$p_root" = 1 -a "$p_user" = 0
done
skip25 "api pppd 2.5.2: timers and mh_caller_privileged"

# ---------------------------------------------------------------- names
net_create || { not_ok "api: namespaces" "setup failed"; exit 0; }
dev_add 1
dev_add 2
canon >"$TMP/base.txt"
unchanged() { canon >"$TMP/now.txt"; cmp -s "$TMP/base.txt" "$TMP/now.txt"; }

# run_named F LOG PEERS-EXTRA ARGS...: link on ppp1/ppp2 (by ADDR of the
# ifname in ARGS or ppp1) with a peers file of table/mark/priority only and
# PEERS-EXTRA lines; `up down exit`.  Returns the harness's exit status.
run_named() {
	local f=$1 log=$2 extra=$3 k=1 d
	shift 3
	d=$(dir_of "$f")
	[[ " $* $extra " == *ppp2* ]] && k=2
	printf 'plugin %s\nmultihome-table %d\nmultihome-mark 0x%x\nmultihome-priority %d\n%b' \
		"$d/multihome.so" $((100 + k)) $((1 << (k - 1))) $((100 + k)) "$extra" >"$TMP/named"
	nsx srv "$d/mh-pppd-harness" --file "$TMP/named" --local "100.64.$k.2" --remote "100.64.$k.1" \
		"$@" up down exit >"$log" 2>&1
}
upname() { sed -n "s/^pppd: \([^ ]*\) up on \(ppp[0-9]*\):.*/\1 on \2/p" "$1" | head -n 1; }
msg() { grep -m1 -e 'multihome: ' -e 'requires root' "$1" | grep -v -e 'plugin loaded' -e ' up on ' -e ' down' | sed 's/^pppd: //'; }

for f in $FLAVOURS; do
	v=$(ver_of "$f")
	L=$TMP/n.log
	# `pon isp2 ipparam isp1 unit 1` by a user of group dip.
	run_named "$f" "$L" "" --uid 65534 --opt ipparam --opt isp1 --opt unit --opt 1
	rc=$? u=$(upname "$L")
	check "api pppd $v: started by uid 65534, its command line's ipparam isp1 does not name the link ($(msg "$L"); exit $rc)" \
		test "$rc" = 1 -a -z "$u" -a -n "$(grep "ipparam 'isp1' cannot name the link" "$L")" -a \
		-n "$(grep 'set multihome-name' "$L")"
	check "api pppd $v: ... and nothing was applied" unchanged
	run_named "$f" "$L" "" --opt ipparam --opt isp1 --opt unit --opt 1
	rc=$? u=$(upname "$L")
	check "api pppd $v: started by root, ipparam isp1 names the link ('$u', exit $rc)" \
		test "$rc" = 0 -a "$u" = "isp1 on ppp1"
	run_named "$f" "$L" "" --uid 65534 --opt unit --opt 1
	rc=$? u=$(upname "$L")
	check "api pppd $v: started by uid 65534, the interface from its unit 1 does not name the link ($(msg "$L"); exit $rc)" \
		test "$rc" = 1 -a -z "$u" -a -n "$(grep 'interface name cannot name the link' "$L")"
	run_named "$f" "$L" 'ifname ppp2\n' --uid 65534 --opt ipparam --opt isp1
	rc=$? u=$(upname "$L")
	check "api pppd $v: started by uid 65534, the peers file's ifname ppp2 names it, not ipparam ('$u', exit $rc)" \
		test "$rc" = 0 -a "$u" = "ppp2 on ppp2"
	run_named "$f" "$L" 'linkname isp9\nifname ppp1\n' --uid 65534 --opt ipparam --opt isp1
	rc=$? u=$(upname "$L")
	check "api pppd $v: started by uid 65534, the peers file's linkname isp9 names it ('$u', exit $rc)" \
		test "$rc" = 0 -a "$u" = "isp9 on ppp1"
	run_named "$f" "$L" 'ifname ppp1\n' --uid 65534 --opt linkname --opt isp1
	rc=$?
	check "api pppd $v: linkname from uid 65534's command line: pppd refuses it ($(msg "$L"); exit $rc)" \
		test "$rc" = 2 -a -n "$(grep 'using the linkname option requires root privilege' "$L")"
	for opt in defaultroute replacedefaultroute; do
		run_named "$f" "$L" "multihome-name isp1\n$opt\n" --ifname ppp1
		rc=$?
		check "api pppd $v: $opt is refused ($(msg "$L"); exit $rc), nothing applied" \
			test "$rc" = 1 -a -n "$(grep "option $opt conflicts" "$L")" -a -z "$(upname "$L")"
	done
	check "api pppd $v: after all of them the state is as before" unchanged
done
skip25 "api pppd 2.5.2: link names and refused options"
