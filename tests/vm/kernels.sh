#!/bin/bash
# SPDX-License-Identifier: MIT
# The guest kernels of the VM tests: which Debian package is each series,
# where its image is cached, where its headers are.
#
#   kernels.sh release SERIES   print the kernel release, e.g. 6.1.0-56-amd64
#   kernels.sh image SERIES     fetch the image if needed, print the vmlinuz path
#
# SERIES is 6.1 (bookworm's linux-image-amd64) or 6.12 (the newest
# linux-image-6.12.*+deb12-amd64-unsigned apt knows, from bookworm-backports
# or bookworm-security).  A release string (6.1.0-56-amd64) is accepted too.
# The headers to build phsm.ko against come from driver/kheaders.sh.
#
# Images are `apt-get download`ed and unpacked with `dpkg-deb -x` into
# $PHSM_CACHE/kernel/<package>_<version>_<sha256 prefix>/ (default
# PHSM_CACHE=/var/cache/phsm), keyed by the package's archive hash; they
# are never installed into /boot.
set -euo pipefail

CACHE=${PHSM_CACHE:-/var/cache/phsm}

die() {
	echo "kernels.sh: $*" >&2
	exit 1
}

# Run apt-get non-interactively, waiting for the lock other jobs may hold.
apt_get() {
	DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@" </dev/null
}

# The backports suite is safe to add (pin priority 100); it is only needed
# when apt knows no 6.12 image at all.
ensure_backports() {
	local uris
	if apt-cache search --names-only \
		'^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' | grep -q .; then
		return
	fi
	if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
		uris=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources |
			grep -v security | head -n 1)
		[ -n "$uris" ] || die "no archive URI in debian.sources"
		printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$uris" >/etc/apt/sources.list.d/phsm-backports.sources
	fi
	apt_get update >&2
}

# release SERIES: the kernel release (uname -r) of SERIES.
release() {
	local s=$1 dep
	case $s in
	6.1)
		dep=$(apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: linux-image-\(6\.1\.[^ ]*-amd64\)$/\1/p' | head -n 1)
		if [ -z "$dep" ]; then
			apt_get update >&2
			dep=$(apt-cache depends linux-image-amd64 |
				sed -n 's/^ *Depends: linux-image-\(6\.1\.[^ ]*-amd64\)$/\1/p' | head -n 1)
		fi
		[ -n "$dep" ] || die "cannot resolve linux-image-amd64"
		echo "$dep"
		;;
	6.12)
		ensure_backports
		apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
			sed -n 's/^linux-image-\(6\.12\.[0-9]*+deb12-amd64\)-unsigned .*/\1/p' |
			sort -V | tail -n 1 | grep . || die "no 6.12 kernel package known to apt"
		;;
	[0-9]*-amd64)
		echo "$s"
		;;
	*)
		die "unknown kernel series '$s' (6.1 or 6.12)"
		;;
	esac
}

# image_package RELEASE: the binary package holding its vmlinuz.
image_package() {
	case $1 in
	6.1.*) echo "linux-image-$1" ;;
	*) echo "linux-image-$1-unsigned" ;;
	esac
}

image() {
	local rel pkg ver sha dir tmp deb
	rel=$(release "$1")
	pkg=$(image_package "$rel")
	ver=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		die "apt has no $pkg"
	fi
	sha=$(apt-cache show "$pkg=$ver" | sed -n 's/^SHA256: //p' | head -n 1)
	[ -n "$sha" ] || die "no SHA256 for $pkg=$ver"
	dir=$CACHE/kernel/${pkg}_${ver}_${sha:0:16}
	if [ ! -f "$dir/vmlinuz" ]; then
		mkdir -p "$CACHE/kernel"
		tmp=$(mktemp -d "$CACHE/kernel/.fetch.XXXXXX")
		chmod 755 "$tmp"	# apt-get download drops to user _apt
		# shellcheck disable=SC2064
		trap "rm -rf '$tmp'" EXIT
		(cd "$tmp" && apt_get download "$pkg=$ver" >&2) ||
			die "apt-get download $pkg=$ver failed"
		deb=$(echo "$tmp"/*.deb)
		echo "$sha  $deb" | sha256sum -c --quiet - >&2 ||
			die "$pkg=$ver: checksum mismatch"
		dpkg-deb -x "$deb" "$tmp/root"
		[ -f "$tmp/root/boot/vmlinuz-$rel" ] || die "$pkg has no boot/vmlinuz-$rel"
		mkdir -p "$tmp/out"
		cp "$tmp/root/boot/vmlinuz-$rel" "$tmp/out/vmlinuz"
		cp "$tmp/root/boot/config-$rel" "$tmp/out/config" 2>/dev/null || true
		echo "$rel" >"$tmp/out/release"
		rm -rf "$dir"
		mv "$tmp/out" "$dir"
		rm -rf "$tmp"
		trap - EXIT
	fi
	echo "$dir/vmlinuz"
}

[ $# -eq 2 ] || die "usage: kernels.sh release|image SERIES"
case $1 in
release) release "$2" ;;
image) image "$2" ;;
*) die "unknown command '$1'" ;;
esac
