#!/bin/sh
# SPDX-License-Identifier: MIT
# /init of the VM test guest (busybox sh).  Mounts the pseudo file
# systems, loads phsm.ko, runs the plan /etc/phsm/plan, prints everything
# on the serial console between markers the host parses
# (tests/vm/vmhost.py), and powers off.
#
# Plan lines: NAME KIND LIMIT COMMAND...  KIND is how the host counts the
# output: tap (kselftest), cmocka, or check (exit status only).  LIMIT is
# in seconds.
#
# Markers, each on a line of its own:
#   PHSM-VM: boot RELEASE
#   PHSM-VM: begin NAME KIND
#   PHSM-VM: end NAME rc=N
#   PHSM-VM: check pass|fail NAME [reason]
#   PHSM-VM: host ACTION ARGS...    (written by the tests: a request to the
#                                    host, see tests/kselftest/.../phsm_lib.c)
#   PHSM-VM: done
PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ln -sf /proc/self/fd /dev/fd

mark() {
	echo "PHSM-VM: $*"
}

# check RC NAME [REASON...]
check() {
	if [ "$1" -eq 0 ]; then
		mark "check pass $2"
	else
		n=$2
		shift 2
		mark "check fail $n $*"
	fi
}

# The console must not be flooded with informational kernel messages
# that would split the test output; warnings still come through.
echo 4 >/proc/sys/kernel/printk
mark "boot $(uname -r)"

# Let tests know the host answers "PHSM-VM: host" requests.
PHSM_VM_HOST=1
export PHSM_VM_HOST

if [ -f /lib/phsm/phsm.ko ]; then
	if out=$(insmod /lib/phsm/phsm.ko 2>&1); then
		check 0 insmod
	else
		check 1 insmod "$out"
	fi
	# Both cards probe asynchronously; give them a moment.
	i=0
	while [ $i -lt 100 ] && { [ ! -c /dev/phsm0 ] || [ ! -c /dev/phsm1 ]; }; do
		sleep 0.1
		i=$((i + 1))
	done
	if [ -c /dev/phsm0 ] && [ -c /dev/phsm1 ]; then
		check 0 devices
	else
		check 1 devices "found: $(echo /dev/phsm*)"
	fi
else
	check 1 insmod "no phsm.ko in the initramfs"
fi

while read -r name kind limit cmd; do
	case $name in
	'' | '#'*) continue ;;
	esac
	mark "begin $name $kind"
	# shellcheck disable=SC2086
	timeout "$limit" $cmd </dev/null 2>&1
	rc=$?
	mark "end $name rc=$rc"
done </etc/phsm/plan

mark "done"
sync
poweroff -f
