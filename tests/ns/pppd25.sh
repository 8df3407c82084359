#!/usr/bin/env bash
# The namespace scenario (tests/ns/scenario.sh) and the bad-input tests
# (tests/ns/badinput.sh) again, with multihome.so and the harness built
# against Debian 13's pppd 2.5.2 headers (make pppd25): the harness then
# imitates pppd 2.5.2's loader and API, and the same checks run, prefixed
# "pppd 2.5.2: ".  The other namespace tests exercise the core (faults,
# concurrency, nft, multipath...), which does not differ between the two
# builds, and run against the system's pppd build only; what does differ
# (options, notifiers, names, addresses, timers, the version check) is
# covered by these two and by tests/ns/pppd-api.sh.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/check.sh
. "$TOP/tests/lib/check.sh"
# shellcheck source=tests/harness/variants.sh
. "$TOP/tests/harness/variants.sh"

pppd25_state "$TOP"
case $PPPD25_STATE in
ready) ;;
broken)
	not_ok "pppd 2.5.2: build/pppd25 is built" "$PPPD25_WHY"
	exit 0 ;;
*)
	pppd25_banner
	skip "pppd 2.5.2: tests/ns/scenario.sh (all its checks)" "$PPPD25_WHY"
	skip "pppd 2.5.2: tests/ns/badinput.sh (all its checks)" "$PPPD25_WHY"
	exit 0 ;;
esac

export MH_PPPD_HARNESS=$PPPD25_DIR/mh-pppd-harness MH_PPPD_PLUGIN=$PPPD25_DIR/multihome.so
export MH_TEST_PREFIX="pppd 2.5.2: "
rc=0
for t in scenario badinput; do
	echo "## pppd 2.5.2: tests/ns/$t.sh"
	bash "$TOP/tests/ns/$t.sh" || rc=1
done
exit $rc
