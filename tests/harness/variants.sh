# The pppd builds the tests run against (source it; bash).
#   pppd25_state ROOT   sets PPPD25_STATE and PPPD25_WHY:
#     ready        ROOT/build/pppd25 has multihome.so, the harness and the
#                  timer plugin, and ROOT/build/trixie/root trixie's files
#     unavailable  Debian 13's packages could not be fetched (no mirror):
#                  the 2.5.2 checks are skipped, loudly
#     not-built    `make pppd25` never ran: skipped, loudly
#     broken       the packages are there but the build is not: a failure
#                  (make check runs `make pppd25`; read its output)
# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash

pppd25_state() {
	local root=$1 f
	PPPD25_DIR=$root/build/pppd25
	PPPD25_ROOT=$root/build/trixie/root
	PPPD25_STATE=ready PPPD25_WHY=
	for f in multihome.so mh-pppd-harness mh-timer-plugin.so; do
		[ -e "$PPPD25_DIR/$f" ] && continue
		if [ -f "$root/build/trixie/UNAVAILABLE" ]; then
			PPPD25_STATE=unavailable
			PPPD25_WHY="Debian 13 packages not available: $(cat "$root/build/trixie/UNAVAILABLE")"
		elif [ -f "$PPPD25_ROOT/.complete" ]; then
			PPPD25_STATE=broken
			PPPD25_WHY="build/pppd25/$f missing although trixie's headers are there: make pppd25 failed"
		else
			PPPD25_STATE=not-built
			PPPD25_WHY="build/pppd25/$f not built (make pppd25)"
		fi
		return
	done
	[ -x "$PPPD25_ROOT/usr/sbin/pppd" ] || {
		PPPD25_STATE=broken
		PPPD25_WHY="build/trixie/root/usr/sbin/pppd missing"
	}
}

# pppd25_banner: say loudly that the 2.5.2 checks do not run.
pppd25_banner() {
	echo "##############################################################"
	echo "## pppd 2.5.2 checks NOT RUN: $PPPD25_WHY"
	echo "## they are recorded as SKIPPED"
	echo "##############################################################"
}
