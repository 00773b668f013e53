#!/bin/bash
# SPDX-License-Identifier: MIT
# Boot each given kernel under QEMU (TCG) with two phsm cards, each backed
# by its own phsm-fw, run the test plan of the initramfs, and count.
#
#   tests/vm/run-vm.sh [SERIES[=KO]]...      (default: 6.1 6.12)
#
# SERIES is a kernel series of tests/vm/kernels.sh (6.1, 6.12); KO the
# phsm.ko built for it (default: build/driver/<release>/phsm.ko, see
# PHSM_KO_PATTERN).  Without a module, or with a QEMU that has no phsm
# device, the guest boots and runs the plan without cards (a smoke run:
# the device tests then fail for want of /dev/phsm*).
#
# Environment:
#   PHSM_QEMU        QEMU binary (default: the last line printed by
#                    scripts/build-qemu.sh if that exists, else
#                    qemu-system-x86_64 from PATH)
#   PHSM_FW          phsm-fw (default build/bin/phsm-fw)
#   PHSM_MFG         the simulated manufacturer the cards get their
#                    identity from, for cloning (default build/mfg, made
#                    with phsm-fw --mfg-init when missing)
#   PHSM_VM_INITRD   the base initramfs (default build/vm/initramfs.cpio.gz,
#                    made by `make vm-initramfs`)
#   PHSM_KO_PATTERN  printf pattern of the module's path from the kernel
#                    release (default build/driver/%s/phsm.ko)
#   PHSM_VM_TIMEOUT  seconds one kernel's whole run may take (default 900)
#   PHSM_VM_SMP      guest CPUs (default 2)
#
# Output: every test by name, then per kernel "vm/SERIES: N passed, N
# failed" and, last, "vm: N passed, N failed" (the sum).  The logs of each
# kernel (console, host actions, daemons) are written in a private
# directory while it runs, so that runs at the same time do not mix, and
# copied to build/vm/logs/<SERIES>.* at its end.  Exit status 0 only if
# nothing failed.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP" || exit 1
HERE=$TOP/tests/vm
LOGS=$TOP/build/vm/logs	# the logs are copied here at the end
INITRD=${PHSM_VM_INITRD:-$TOP/build/vm/initramfs.cpio.gz}
KO_PATTERN=${PHSM_KO_PATTERN:-$TOP/build/driver/%s/phsm.ko}
FW=${PHSM_FW:-$TOP/build/bin/phsm-fw}
MFG=${PHSM_MFG:-$TOP/build/mfg}
VM_TIMEOUT=${PHSM_VM_TIMEOUT:-900}
SMP=${PHSM_VM_SMP:-2}
# PBKDF2 rounds for the test daemons, as tests/lib.sh does.
PIN_ITERATIONS=${PHSM_TEST_PIN_ITERATIONS-1000}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/phsm-vm.XXXXXX")
RUNLOGS=$WORK/logs	# this run's logs, while it runs
mkdir -p "$RUNLOGS"
PIDS=()

cleanup() {
	local pid i
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	PIDS=()
}
trap 'cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() {
	echo "run-vm: $*" >&2
}

# The QEMU with the phsm device; bookworm's own only when there is no
# build script yet (a smoke run without cards).
find_qemu() {
	local q
	if [ -n "${PHSM_QEMU:-}" ]; then
		echo "$PHSM_QEMU"
	elif [ -x scripts/build-qemu.sh ]; then
		q=$(scripts/build-qemu.sh </dev/null 2>>"$LOGS/build-qemu.log" |
			tail -n 1)
		if [ ! -x "$q" ]; then
			say "scripts/build-qemu.sh failed; see $LOGS/build-qemu.log"
			return 1
		fi
		echo "$q"
	else
		command -v qemu-system-x86_64
	fi
}

# start_fw NAME [OPTIONS...]: a phsm-fw with a fresh state, listening on
# $WORK/NAME.sock.
start_fw() {
	local name=$1 sock=$WORK/$1.sock i pid args=("${@:2}")
	[ -n "$PIN_ITERATIONS" ] && args+=(--pin-iterations "$PIN_ITERATIONS")
	# Both cards from one manufacturer, so that they clone to each other.
	if [ -f "$MFG/root.pem" ] || "$FW" --mfg-init "$MFG" >&2; then
		args+=(--mfg "$MFG")
	else
		say "phsm-fw --mfg-init $MFG failed; card $name has no identity"
	fi
	mkdir -p "$WORK/$name.state"
	"$FW" --state "$WORK/$name.state" --bridge "$sock" "${args[@]}" \
		>"$RUNLOGS/$SERIES.$name.log" 2>&1 </dev/null &
	pid=$!
	PIDS+=("$pid")
	for ((i = 0; i < 300; i++)); do
		[ -S "$sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	say "phsm-fw $name did not start:"
	tail -n 20 "$RUNLOGS/$SERIES.$name.log" >&2
	return 1
}

# run_kernel SERIES[=KO]: one boot; prints its tests, returns its status.
run_kernel() {
	local spec=$1 rel vmlinuz ko initrd console qmp qpid mpid rc
	local cards=() devs=() n
	SERIES=${spec%%=*}
	console=$RUNLOGS/$SERIES.console.log
	: >"$console"
	if ! rel=$(tests/vm/kernels.sh release "$SERIES") ||
	   ! vmlinuz=$(tests/vm/kernels.sh image "$SERIES"); then
		echo "  FAIL  vm/$SERIES/kernel  (cannot fetch the kernel)"
		echo "vm/$SERIES: 0 passed, 1 failed"
		return 1
	fi
	if [[ $spec == *=* ]]; then
		ko=${spec#*=}
	else
		# shellcheck disable=SC2059
		ko=$(printf "$KO_PATTERN" "$rel")
	fi
	initrd=$WORK/initrd-$SERIES.cpio.gz
	if [ -f "$ko" ]; then
		tests/vm/mkinitramfs.sh module "$WORK/module.cpio.gz" "$ko" &&
			cat "$INITRD" "$WORK/module.cpio.gz" >"$initrd" || return 1
	else
		say "$SERIES: no module at $ko; booting without phsm.ko"
		cp "$INITRD" "$initrd"
	fi

	if "$QEMU" -device help 2>/dev/null | grep -q '^name "phsm"'; then
		for n in 0 1; do
			# Card 1 has a third partition, which the PKCS#11
			# suite clones keys to; the kselftests use the first two.
			if [ "$n" -eq 1 ]; then
				start_fw "fw$n" --partitions 3 || return 1
			else
				start_fw "fw$n" || return 1
			fi
			cards+=(-device "pcie-root-port,id=rp$n,chassis=$((n + 1)),slot=$((n + 1))"
				-chardev "socket,id=fw$n,path=$WORK/fw$n.sock"
				-device "phsm,bus=rp$n,chardev=fw$n,id=card$n")
			devs+=(--device "card$n=driver=phsm,bus=rp$n,chardev=fw$n")
		done
	else
		say "$SERIES: $QEMU has no phsm device; booting without cards"
	fi

	qmp=$WORK/qmp-$SERIES.sock
	say "$SERIES: booting $rel"
	"$QEMU" -machine q35 -accel tcg -cpu max -smp "$SMP" -m 1G \
		-nographic -nic none -no-reboot \
		-L /usr/share/qemu -L /usr/share/seabios \
		-kernel "$vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet" \
		-qmp "unix:$qmp,server=on,wait=off" \
		"${cards[@]}" >"$console" 2>&1 </dev/null &
	qpid=$!
	PIDS+=("$qpid")

	python3 "$HERE/vmhost.py" monitor --log "$console" --qmp "$qmp" \
		--pid "$qpid" --timeout "$VM_TIMEOUT" "${devs[@]}" \
		2>"$RUNLOGS/$SERIES.host.log" &
	mpid=$!
	PIDS+=("$mpid")
	wait "$mpid"
	rc=$?
	[ "$rc" -eq 124 ] && say "$SERIES: timed out after $VM_TIMEOUT s"
	# The guest powers off after "done"; give it a moment, then stop it.
	for ((n = 0; n < 100; n++)); do
		kill -0 "$qpid" 2>/dev/null || break
		sleep 0.1
	done
	cleanup
	python3 "$HERE/vmhost.py" results --log "$console" --kernel "$SERIES" \
		>"$RUNLOGS/$SERIES.results"
	rc=$?
	cat "$RUNLOGS/$SERIES.results"
	cp "$RUNLOGS/$SERIES".* "$LOGS/"
	return "$rc"
}

# nothing_ran REASON: the run could not start; count it as one failure.
nothing_ran() {
	say "$1"
	echo "  FAIL  vm/setup  ($1)"
	echo "vm: 0 passed, 1 failed"
	exit 1
}

mkdir -p "$LOGS"
[ -f "$INITRD" ] || nothing_ran "no initramfs $INITRD (make vm-initramfs)"
QEMU=$(find_qemu) || nothing_ran "no QEMU with the phsm device"
say "QEMU: $QEMU"
[ $# -gt 0 ] || set -- 6.1 6.12

passed=0
failed=0
status=0
for spec in "$@"; do
	run_kernel "$spec" || status=1
	line=$(tail -n 1 "$RUNLOGS/${spec%%=*}.results" 2>/dev/null)
	if [[ $line =~ :\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		failed=$((failed + 1))
		status=1
	fi
done
echo "vm: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && exit "$status"
exit 1
