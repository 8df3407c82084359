#!/usr/bin/env bash
# Upstream tracking (tests/ns/track.sh) with the nftables firewall backend:
# its egress chain restores the connmark only for flows with our bits and
# leaves a probe's SO_MARK alone, so the probe and death checks run again,
# prefixed "nft: ".
export MULTIHOME_FIREWALL=nft MH_TEST_PREFIX="nft: " TRACK_CHECKS="probes death"
exec bash "$(dirname "$0")/track.sh"
