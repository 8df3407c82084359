#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/ns/traffic.sh again, with the nftables firewall backend (`firewall
# nft`: its ingress rules stamp the connmarks): the same checks, prefixed "nft: ".
export MULTIHOME_FIREWALL=nft MH_TEST_PREFIX="nft: "
exec bash "$(dirname "$0")/traffic.sh" "$@"
