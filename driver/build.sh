#!/bin/bash
# SPDX-License-Identifier: MIT
# Build and check phsm.ko.  Called by driver/driver.mk; run from the top of
# the tree.
#
#   driver/build.sh module RELEASE      build/driver/RELEASE/phsm.ko, W=1,
#                                       warnings are errors
#   driver/build.sh sparse RELEASE      the same build under sparse (C=2);
#                                       any sparse report is an error
#   driver/build.sh checkpatch          checkpatch.pl --strict --no-tree on
#                                       the driver's sources
#   driver/build.sh release SERIES      kernel release of a series (6.1, 6.12)
#
# The sources are copied into build/driver/RELEASE/src (Kbuild builds in
# the directory of the sources, and the checkout stays clean); the headers
# come from driver/kheaders.sh.  checkpatch.pl and its data files are
# extracted from Debian's linux-source-6.1 into build/checkpatch/.
set -euo pipefail

die() {
	echo "driver/build.sh: $*" >&2
	exit 1
}

TOP=$(pwd)
[ -f "$TOP/driver/Kbuild" ] || die "run from the top of the tree"
OUT=$TOP/build/driver
SRCS=(driver/phsm.h driver/phsm_pci.c driver/phsm_queue.c driver/phsm_cdev.c)

release() {
	case $1 in
	6.1 | 6.12) "$TOP/tests/vm/kernels.sh" release "$1" ;;
	[0-9]*-amd64) echo "$1" ;;
	*) die "unknown kernel '$1'" ;;
	esac
}

# stage RELEASE: copy the sources, keeping their times so that Kbuild
# rebuilds only what changed; print the directory.
stage() {
	local src=$OUT/$1/src
	mkdir -p "$src/driver" "$src/uapi"
	cp -p "$TOP/Kbuild" "$src/"
	cp -p "$TOP/driver/Kbuild" "${SRCS[@]/#/$TOP/}" "$src/driver/"
	cp -p "$TOP"/uapi/phsm_*.h "$src/uapi/"
	echo "$src"
}

# kbuild RELEASE ARGS...: run Kbuild on the staged sources.
kbuild() {
	local rel=$1 kdir src
	shift
	kdir=$("$TOP/driver/kheaders.sh" "$rel")
	src=$(stage "$rel")
	# No BTF for the module: it needs pahole, and nothing here uses it.
	make -C "$kdir" M="$src" W=1 CONFIG_DEBUG_INFO_BTF_MODULES= "$@" modules
}

module() {
	local rel log
	rel=$(release "$1")
	log=$OUT/$rel/build.log
	mkdir -p "$OUT/$rel"
	if ! kbuild "$rel" >"$log" 2>&1; then
		cat "$log"
		die "build for $rel failed"
	fi
	cat "$log"
	if grep -E 'warning:|error:' "$log" >/dev/null; then
		die "build for $rel has warnings (see $log)"
	fi
	cp "$OUT/$rel/src/driver/phsm.ko" "$OUT/$rel/phsm.ko"
	echo "driver: $OUT/$rel/phsm.ko"
}

sparse() {
	local rel log
	command -v sparse >/dev/null || die "sparse is not installed (apt-get install sparse)"
	rel=$(release "$1")
	log=$OUT/$rel/sparse.log
	mkdir -p "$OUT/$rel"
	if ! kbuild "$rel" C=2 >"$log" 2>&1; then
		cat "$log"
		die "sparse build for $rel failed"
	fi
	cat "$log"
	# Reports name a source file with a line and column.
	if grep -E '^[^ ]+\.[ch]:[0-9]+:[0-9]+: ' "$log" >/dev/null; then
		die "sparse reports for $rel (see $log)"
	fi
	echo "driver: sparse clean for $rel"
}

checkpatch() {
	local dir=$TOP/build/checkpatch tarball=/usr/src/linux-source-6.1.tar.xz
	if [ ! -x "$dir/scripts/checkpatch.pl" ]; then
		[ -f "$tarball" ] || die "no $tarball (apt-get install linux-source-6.1)"
		rm -rf "$dir"
		mkdir -p "$dir"
		tar -xJf "$tarball" -C "$dir" --strip-components=1 \
			linux-source-6.1/scripts/checkpatch.pl \
			linux-source-6.1/scripts/spelling.txt \
			linux-source-6.1/scripts/const_structs.checkpatch
	fi
	"$dir/scripts/checkpatch.pl" --strict --no-tree --quiet --show-types \
		--summary-file -f "${SRCS[@]}" || die "checkpatch found problems"
	echo "driver: checkpatch --strict clean"
}

[ $# -ge 1 ] || die "usage: build.sh module|sparse RELEASE | checkpatch | release SERIES"
cmd=$1
shift
case $cmd in
module | sparse | release)
	[ $# -eq 1 ] || die "$cmd takes one kernel"
	"$cmd" "$1"
	;;
checkpatch) checkpatch ;;
*) die "unknown command '$cmd'" ;;
esac
