#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Install what moat needs to build, test and demo on Debian, and mount bpffs.
# Does nothing (and needs no network) when everything is already there.
set -eu

PKGS="clang llvm libbpf-dev libxdp-dev bpftool xdp-tools libjson-c-dev libcmocka-dev \
libelf-dev zlib1g-dev pkg-config make gcc libc6-dev gcc-multilib iproute2 nmap nftables \
socat netcat-openbsd python3 clang-format libclang-rt-14-dev ethtool iputils-ping"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing packages:$missing (run as root to install)" >&2
		exit 1
	fi
	echo "install-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ "$(id -u)" = 0 ] && ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
	echo "install-deps: mounting bpffs on /sys/fs/bpf"
	mount -t bpf bpf /sys/fs/bpf
fi
exit 0
