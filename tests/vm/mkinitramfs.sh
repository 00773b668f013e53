#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the VM test guest's initramfs (cpio, newc, gzip).
#
#   mkinitramfs.sh base OUT PLAN FILE...
#       busybox-static, tests/vm/guest-init.sh as /init, PLAN as
#       /etc/phsm/plan, and each FILE as /opt/phsm/<basename> with the
#       shared libraries it needs (found with ldd) under their own paths.
#   mkinitramfs.sh module OUT KO
#       phsm.ko alone, as /lib/phsm/phsm.ko.
#
# The kernel unpacks concatenated archives in order, so the guest's
# initrd for one kernel is `cat base.cpio.gz module-<release>.cpio.gz`:
# the userspace is built once, the module once per kernel.
set -euo pipefail

die() {
	echo "mkinitramfs.sh: $*" >&2
	exit 1
}

HERE=$(cd "$(dirname "$0")" && pwd)

# pack DIR OUT: DIR's tree as a gzip'ed newc cpio at OUT, written atomically.
pack() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0) | gzip -6 -n >"$2.tmp"
	mv "$2.tmp" "$2"
}

# copy_libs FILE ROOT: the shared libraries FILE loads, and the loader.
copy_libs() {
	local lib
	# ldd prints "name => /path (addr)" and "/lib64/ld-linux... (addr)".
	# (Scripts and static programs have none: ldd fails for them.)
	{ ldd "$1" 2>/dev/null || true; } | awk '
		$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }' |
	while read -r lib; do
		[ -e "$2$lib" ] && continue
		mkdir -p "$2$(dirname "$lib")"
		cp -L "$lib" "$2$lib"
	done
}

base() {
	local out=$1 plan=$2 root f applet
	shift 2
	# The static build: ldd finds nothing to load.
	if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
		die "needs busybox-static (apt-get install busybox-static)"
	fi
	[ -f "$plan" ] || die "no plan $plan"
	root=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$root'" EXIT
	mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,etc/phsm,opt/phsm,lib/phsm}
	cp /bin/busybox "$root/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
	done
	mknod -m 600 "$root/dev/console" c 5 1
	mknod -m 666 "$root/dev/null" c 1 3
	install -m 755 "$HERE/guest-init.sh" "$root/init"
	install -m 644 "$plan" "$root/etc/phsm/plan"
	for f in "$@"; do
		[ -f "$f" ] || die "missing $f"
		cp -L "$f" "$root/opt/phsm/"
		copy_libs "$f" "$root"
	done
	# glibc's loader also looks here; some libraries are found by path.
	[ -e "$root/lib64" ] || ln -s lib "$root/lib64"
	pack "$root" "$out"
}

module() {
	local out=$1 ko=$2 root
	[ -f "$ko" ] || die "missing $ko"
	root=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$root'" EXIT
	mkdir -p "$root/lib/phsm"
	cp "$ko" "$root/lib/phsm/phsm.ko"
	pack "$root" "$out"
}

[ $# -ge 2 ] || die "usage: mkinitramfs.sh base OUT PLAN FILE... | module OUT KO"
cmd=$1
shift
case $cmd in
base) [ $# -ge 2 ] || die "base OUT PLAN FILE..."; base "$@" ;;
module) [ $# -eq 2 ] || die "module OUT KO"; module "$@" ;;
*) die "unknown command '$cmd'" ;;
esac
