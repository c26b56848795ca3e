#!/usr/bin/env bash
# Installs the Debian packages E3's lab needs (as root), skipping apt when all are present: the
# lab's own tools, and the VPNs of the survey that E3 runs as candidates.
set -euo pipefail
packages=(iproute2 nftables iptables conntrack iputils-ping iperf3 procps openssl
    wireguard-go wireguard-tools nebula tinc n2n openvpn)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
