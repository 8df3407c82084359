#!/usr/bin/env bash
# The issue-2 scenario again, with the nftables firewall backend
# (`firewall nft`): the same checks, prefixed "nft: ".
export MULTIHOME_FIREWALL=nft MH_TEST_PREFIX="nft: "
exec bash "$(dirname "$0")/scenario.sh" "$@"
