#!/bin/bash
# SPDX-License-Identifier: MIT
# Print the kernel build directory for a kernel release, fetching Debian's
# headers for it if they are not installed.
#
#   driver/kheaders.sh RELEASE      e.g. 6.1.0-56-amd64, 6.12.117+deb12-amd64
#
# Installed headers (/usr/src/linux-headers-RELEASE) are used as they are.
# Otherwise the three packages (linux-headers-RELEASE, its -common package
# and its linux-kbuild package) are `apt-get download`ed and unpacked with
# `dpkg-deb -x` into $PHSM_CACHE/kheaders/RELEASE_<hash>/ (default
# PHSM_CACHE=/var/cache/phsm), keyed by the packages' archive hashes.
# Nothing is installed: installing the headers package would pull the
# kernel image into /boot.
set -euo pipefail

CACHE=${PHSM_CACHE:-/var/cache/phsm}

die() {
	echo "kheaders.sh: $*" >&2
	exit 1
}

apt_get() {
	DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@" </dev/null
}

[ $# -eq 1 ] || die "usage: kheaders.sh RELEASE"
rel=$1
case $rel in
*[!A-Za-z0-9.+_-]* | "") die "bad release '$rel'" ;;
esac

if [ -f "/usr/src/linux-headers-$rel/Makefile" ]; then
	echo "/usr/src/linux-headers-$rel"
	exit 0
fi

pkg=linux-headers-$rel
# candidate PACKAGE: the version apt would take, empty if none.
candidate() {
	apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '^(none)$' || true
}
ver=$(candidate "$pkg")
if [ -z "$ver" ]; then
	apt_get update >&2
	ver=$(candidate "$pkg")
fi
[ -n "$ver" ] || die "apt knows no $pkg (6.12 needs bookworm-backports or bookworm-security)"

# The -common and kbuild packages are named in the headers' dependencies.
deps=$(apt-cache show "$pkg=$ver" | sed -n 's/^Depends: //p' | head -n 1 | tr ',' '\n' |
	sed -n 's/^ *\(linux-headers-[^ ]*-common\|linux-kbuild-[^ ]*\).*/\1/p')
pkgs="$pkg=$ver"
for d in $deps; do
	pkgs="$pkgs $d=$ver"
done
[ "$(echo "$pkgs" | wc -w)" -eq 3 ] || die "unexpected dependencies of $pkg: $deps"

key=$(for p in $pkgs; do apt-cache show "$p" | sed -n 's/^SHA256: //p' | head -n 1; done |
	sha256sum | cut -c1-16)
dir=$CACHE/kheaders/${rel}_$key
kdir=$dir/usr/src/linux-headers-$rel
if [ ! -f "$dir/.done" ]; then
	mkdir -p "$CACHE/kheaders"
	tmp=$(mktemp -d "$CACHE/kheaders/.fetch.XXXXXX")
	chmod 755 "$tmp"	# apt-get download drops to user _apt
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" EXIT
	# shellcheck disable=SC2086
	(cd "$tmp" && apt_get download $pkgs >&2) || die "apt-get download $pkgs failed"
	for deb in "$tmp"/*.deb; do
		dpkg-deb -x "$deb" "$tmp/root"
	done
	# The headers' Makefile includes the -common one by absolute path.
	sed -i "s#^include /usr/src/#include $dir/usr/src/#" \
		"$tmp/root/usr/src/linux-headers-$rel/Makefile"
	rm -f "$tmp"/*.deb
	rm -rf "$dir"
	mv "$tmp/root" "$dir"
	rmdir "$tmp"
	trap - EXIT
	touch "$dir/.done"
fi
[ -f "$kdir/Makefile" ] || die "no $kdir/Makefile"
echo "$kdir"
