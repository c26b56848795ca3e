#!/usr/bin/env bash
# Installs the Debian packages E3's lab needs (as root), skipping apt when all are present: the
# lab's own tools, and the VPNs of the survey that E3 runs as candidates.
set -euo pipefail
exec bash "$(dirname "$0")/apt-install.sh" iproute2 nftables iptables conntrack iputils-ping \
    iperf3 procps openssl wireguard-go wireguard-tools nebula tinc n2n openvpn
