#!/bin/sh
# Install what building and testing multihome needs (Debian 12).  Idempotent
# and quiet when everything is already there.
set -e
PKGS="build-essential pkg-config libmnl-dev libnftnl-dev libip4tc-dev libxtables-dev
      ppp ppp-dev openvpn openssl iptables iproute2 nftables kmod procps psmisc jq
      clang libclang-rt-14-dev
      busybox-static qemu-system-x86 linux-image-amd64 cpio"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
