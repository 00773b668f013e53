#!/bin/bash
# SPDX-License-Identifier: MIT
# Build qemu-system-x86_64 10.0.13 with the phsm device (firmware-sim/qemu/)
# from Debian's trixie source package, and print the binary's path on the
# last line of stdout.  Everything else goes to stderr.
#
#   scripts/build-qemu.sh [--force]
#
# The binary is cached as /var/cache/phsm/qemu-<hash>/qemu-system-x86_64,
# where <hash> covers the device sources, the uapi headers they include,
# this script and the QEMU version; with a warm cache the script only
# prints that path.  QEMU's sources and the build tree live under
# /var/cache/phsm/src (PHSM_CACHE overrides /var/cache/phsm), outside the
# checkout, and are reused, so a changed device only recompiles itself.
#
# Needs root (or sudo) the first time: it installs the build dependencies,
# the runtime firmware (seabios, qemu-system-data) and a deb-src entry for
# trixie (source packages only: never a binary line for a newer release).
# Run QEMU with -L /usr/share/qemu -L /usr/share/seabios.
set -euo pipefail

QEMU_VERSION=10.0.13
QEMU_DEB_VERSION=1:10.0.13+ds-0+deb13u1

TOP=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${PHSM_CACHE:-/var/cache/phsm}
SRC_ROOT=$CACHE/src
DEV_DIR=$TOP/firmware-sim/qemu
# The files that make up the device; each is hashed.
DEV_FILES=(phsm.c phsm-glue.Kconfig phsm-glue.meson)
UAPI_FILES=(phsm_dev.h phsm_proto.h)

log() {
	echo "build-qemu: $*" >&2
}

die() {
	log "$*"
	exit 1
}

input_hash() {
	{
		echo "qemu $QEMU_DEB_VERSION"
		for f in "${DEV_FILES[@]}"; do
			echo "== $f"
			cat "$DEV_DIR/$f"
		done
		for f in "${UAPI_FILES[@]}"; do
			echo "== uapi/$f"
			cat "$TOP/uapi/$f"
		done
		echo "== script"
		cat "$TOP/scripts/build-qemu.sh"
	} | sha256sum | cut -c1-16
}

FORCE=0
case "${1:-}" in
--force) FORCE=1 ;;
"") ;;
*) die "usage: scripts/build-qemu.sh [--force]" ;;
esac

HASH=$(input_hash)
OUT_DIR=$CACHE/qemu-$HASH
OUT=$OUT_DIR/qemu-system-x86_64
if [ "$FORCE" = 0 ] && [ -x "$OUT" ]; then
	echo "$OUT"
	exit 0
fi

# ---- dependencies -------------------------------------------------------

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "not root and no sudo"
	SUDO=sudo
fi

apt_updated=0
apt_update() {
	if [ "$apt_updated" = 0 ]; then
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
		apt_updated=1
	fi
}

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# apt_install [-t RELEASE] PKG...: install those not installed yet.
apt_install() {
	local opts=() missing=() p
	if [ "$1" = -t ]; then
		opts=(-t "$2")
		shift 2
	fi
	for p in "$@"; do
		installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	apt_update
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${opts[@]}" "${missing[@]}" </dev/null >&2
}

# The archive's URI, taken from the system's own sources (never hard-coded).
archive_uri() {
	local f=/etc/apt/sources.list.d/debian.sources uri=
	if [ -f "$f" ]; then
		uri=$(awk '/^URIs:/ { print $2; exit }' "$f")
	fi
	if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
			/etc/apt/sources.list)
	fi
	[ -n "$uri" ] || die "cannot find the Debian archive's URI"
	echo "$uri"
}

ensure_sources() {
	local uri bpo=/etc/apt/sources.list.d/phsm-backports.sources
	local src=/etc/apt/sources.list.d/phsm-trixie-src.sources
	if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list \
		/etc/apt/sources.list.d/; then
		uri=$(archive_uri)
		log "adding bookworm-backports ($uri)"
		printf 'Types: deb deb-src\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$uri" | $SUDO tee "$bpo" >/dev/null
		apt_updated=0
	fi
	if ! grep -rqsE '^(Suites:.*[[:space:]]trixie([[:space:]]|$)|deb-src[[:space:]].*[[:space:]]trixie[[:space:]])' \
		/etc/apt/sources.list /etc/apt/sources.list.d/; then
		uri=$(archive_uri)
		log "adding a deb-src entry for trixie ($uri)"
		# Source packages only: a binary line for trixie would break
		# this bookworm system.
		printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$uri" | $SUDO tee "$src" >/dev/null
		apt_updated=0
	fi
}

ensure_deps() {
	ensure_sources
	apt_install dpkg-dev build-essential ninja-build python3-venv \
		libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev flex bison \
		pkg-config seabios qemu-system-data
	local v
	v=$(meson --version 2>/dev/null || echo 0)
	if ! dpkg --compare-versions "$v" ge 1.5; then
		# QEMU 10 wants meson >= 1.5; bookworm has 1.0.
		installed meson && [ "$v" != 0 ] && log "meson $v is too old"
		apt_update
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends -t bookworm-backports meson \
			</dev/null >&2
	fi
	installed python3-pycotap ||
		apt_install -t bookworm-backports python3-pycotap
}

# ---- sources ------------------------------------------------------------

PRISTINE=$SRC_ROOT/qemu-$QEMU_VERSION
WORK=$SRC_ROOT/qemu-$QEMU_VERSION-phsm

fetch_sources() {
	local tmp
	[ -f "$PRISTINE/.phsm-fetched" ] && return 0
	mkdir -p "$SRC_ROOT"
	tmp=$(mktemp -d "$SRC_ROOT/fetch.XXXXXX")
	log "fetching qemu=$QEMU_DEB_VERSION into $SRC_ROOT"
	# apt-get source also applies Debian's patches, which the build needs.
	if ! (cd "$tmp" && apt-get source -q "qemu=$QEMU_DEB_VERSION" >&2); then
		apt_update
		(cd "$tmp" && apt-get source -q "qemu=$QEMU_DEB_VERSION" >&2) ||
			die "apt-get source qemu=$QEMU_DEB_VERSION failed"
	fi
	local dir
	dir=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -n 1)
	[ -n "$dir" ] && [ -f "$dir/VERSION" ] || die "no source tree in $tmp"
	grep -qx "$QEMU_VERSION" "$dir/VERSION" ||
		die "unexpected QEMU version $(cat "$dir/VERSION")"
	rm -rf "$PRISTINE"
	mv "$dir" "$PRISTINE"
	touch "$PRISTINE/.phsm-fetched"
	rm -rf "$tmp"
}

# Copy $1 to $2 only if it differs, so ninja sees unchanged files as such.
install_file() {
	cmp -s "$1" "$2" || cp "$1" "$2"
}

# Append the glue fragment $1 to $2 once; the marker names the fragment.
append_glue() {
	local marker="phsm: added by scripts/build-qemu.sh"
	grep -q "$marker" "$2" && return 0
	{
		echo "# $marker"
		cat "$1"
	} >>"$2"
}

prepare_tree() {
	if [ ! -f "$WORK/.phsm-copied" ]; then
		log "copying the QEMU sources to $WORK"
		rm -rf "$WORK"
		cp -a "$PRISTINE" "$WORK"
		touch "$WORK/.phsm-copied"
	fi
	install_file "$DEV_DIR/phsm.c" "$WORK/hw/misc/phsm.c"
	mkdir -p "$WORK/include/hw/misc/phsm"
	for f in "${UAPI_FILES[@]}"; do
		install_file "$TOP/uapi/$f" "$WORK/include/hw/misc/phsm/$f"
	done
	append_glue "$DEV_DIR/phsm-glue.Kconfig" "$WORK/hw/misc/Kconfig"
	append_glue "$DEV_DIR/phsm-glue.meson" "$WORK/hw/misc/meson.build"
}

# The system's python3, which has the meson that apt installed (a python3
# earlier in PATH, e.g. from pyenv, would not find it).
CONFIGURE_OPTS=(
	--python=/usr/bin/python3 --target-list=x86_64-softmmu
	--disable-docs --disable-tools --disable-user --disable-install-blobs
	--disable-werror --disable-gtk --disable-sdl --disable-vnc
	--disable-opengl --disable-virglrenderer --disable-spice
	--disable-curses --disable-slirp --disable-guest-agent
	--disable-xen --disable-libusb --disable-usb-redir
	--disable-alsa --disable-pa --disable-jack --disable-pipewire
	--disable-oss --disable-sndio --disable-dbus-display
	--disable-vhost-user-blk-server --disable-capstone
	--disable-gio --disable-linux-io-uring --disable-libiscsi
	--disable-libnfs --disable-rbd --disable-glusterfs
	--disable-curl --disable-gnutls --disable-nettle --disable-gcrypt
	--disable-brlapi --disable-vde --disable-netmap --disable-bpf
	--disable-zstd --disable-lzo --disable-snappy --disable-bzip2
	--disable-seccomp --disable-cap-ng --disable-attr --disable-numa
	--disable-rdma --disable-vte --disable-sparse
	--disable-qom-cast-debug --enable-trace-backends=nop
)

configure_tree() {
	local stamp=$WORK/build/.phsm-configure
	local want
	want=$(printf '%s\n' "${CONFIGURE_OPTS[@]}")
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
		[ -f "$WORK/build/build.ninja" ]; then
		return 0
	fi
	log "configuring QEMU"
	rm -rf "$WORK/build"
	mkdir -p "$WORK/build"
	(cd "$WORK/build" && ../configure "${CONFIGURE_OPTS[@]}" >&2) ||
		die "configure failed"
	echo "$want" >"$stamp"
}

build() {
	log "building qemu-system-x86_64 (a few minutes on a cold tree)"
	ninja -C "$WORK/build" qemu-system-x86_64 >&2 || die "ninja failed"
	"$WORK/build/qemu-system-x86_64" -device help 2>/dev/null |
		grep -q '^name "phsm"' || die "the build has no phsm device"
	mkdir -p "$OUT_DIR"
	cp "$WORK/build/qemu-system-x86_64" "$OUT.tmp.$$"
	mv "$OUT.tmp.$$" "$OUT"
}

# One build at a time on this machine.
mkdir -p "$CACHE"
exec 9>"$CACHE/.build-qemu.lock"
flock 9
if [ "$FORCE" = 0 ] && [ -x "$OUT" ]; then
	echo "$OUT"
	exit 0
fi

ensure_deps
fetch_sources
prepare_tree
configure_tree
build
log "built $OUT"
echo "$OUT"
