#!/bin/sh
# SPDX-License-Identifier: MIT
# Install what building, the demo and the tests need on Debian 12.
# Usage: scripts/install-deps.sh [--check]
# Fast when everything is there: apt-get runs only for missing packages,
# and the package lists are refreshed only then.
set -eu

PACKAGES="
	build-essential make pkg-config
	libssl-dev openssl
	libsqlite3-dev
	libcmocka-dev
	clang libclang-rt-14-dev
	opensc
	libengine-pkcs11-openssl
	python3 python3-pykcs11
	p11-kit gnutls-bin
	linux-libc-dev
	libpci-dev pciutils
"
# `--check`: also what the kernel-module checks and the VM tests need
# (scripts/build-qemu.sh installs QEMU's own build dependencies).
if [ "${1:-}" = "--check" ]; then
	PACKAGES="$PACKAGES
	sparse linux-source-6.1 perl bc kmod
	busybox-static cpio xz-utils seabios qemu-system-data
"
fi

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

missing=
for p in $PACKAGES; do
	installed "$p" || missing="$missing $p"
done

if [ -z "$missing" ]; then
	echo "install-deps: all dependencies present"
	exit 0
fi

echo "install-deps: installing$missing"
sudo=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || {
		echo "install-deps: not root and no sudo; install:$missing" >&2
		exit 1
	}
	sudo=sudo
fi
# The lists may be missing or stale on a fresh machine.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing </dev/null
