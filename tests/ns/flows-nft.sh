#!/usr/bin/env bash
# Flows follow the links (tests/ns/flows.sh) with the nftables firewall
# backend: a pinned flow comes home with the source staying ISP2's, and a
# dead link's SNAT flows move on (the checks that need multihome's
# conntrack work), prefixed "nft: ".
export MULTIHOME_FIREWALL=nft MH_TEST_PREFIX="nft: "
[ $# -gt 0 ] || set -- come_home_isp2 move_on_snat
exec bash "$(dirname "$0")/flows.sh" "$@"
