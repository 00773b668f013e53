#!/bin/bash
# SPDX-License-Identifier: MIT
# make vm-bench: the device path of the benchmark (issue 5).
#
#   1. phsm-fw alone: tests/bench/fw_nop_bench against a fresh
#      `phsm-fw --bridge` on the host (the firmware and its socket);
#   2. one guest (VM_BENCH_KERNEL, default 6.12) booted by
#      tests/vm/run-vm.sh with an initramfs whose plan is
#      tests/bench/vm-plan.txt: tests/bench/vm_nop_bench on /dev/phsm0;
#   3. the summary: depth-32 / depth-1 commands per second, and where the
#      time of one depth-1 command goes, as shares.
#
# Output: the summary on standard output, the raw "phsm-bench:" lines and
# the summary in build/bench/vm/.  Reports only; the exit status is not 0
# only if a part did not run.  Documentation/phsm/bench.rst, "The device
# path", says what each number measures.
set -euo pipefail

cd "$(dirname "$0")/../.."
SERIES=${VM_BENCH_KERNEL:-6.12}
GUEST=${VM_BENCH_GUEST:-build/tests/vm_nop_bench}
FWB=${FW_NOP_BENCH:-build/tests/fw_nop_bench}
OUT=build/bench/vm
FW_SECONDS=${VM_BENCH_FW_SECONDS:-3}

PHSM_TEST_PIN_ITERATIONS=1000
# shellcheck source=tests/lib.sh
. tests/lib.sh

mkdir -p "$OUT"
rm -f "$OUT"/fw.txt "$OUT"/guest.txt "$OUT"/summary.txt

# 1. The firmware alone, before the guest (never at the same time: both
# would share the two CPUs).
fw_start fwbench --bridge "$PHSM_TMP/bridge.sock"
for ((i = 0; i < 100; i++)); do
	[ -S "$PHSM_TMP/bridge.sock" ] && break
	sleep 0.1
done
"$FWB" "$PHSM_TMP/bridge.sock" "$FW_SECONDS" 32 | tee "$OUT/fw.txt"
fw_stop "$FW_PID" || true

# 2. The guest.  The release (not the series) names the run, so that its
# logs in build/vm/logs/ do not overwrite those of `make vm-check`.
rel=$(tests/vm/kernels.sh release "$SERIES")
tests/vm/mkinitramfs.sh base "$OUT/initramfs.cpio.gz" tests/bench/vm-plan.txt \
	"$GUEST"
vm_rc=0
PHSM_VM_INITRD=$OUT/initramfs.cpio.gz tests/vm/run-vm.sh "$rel" || vm_rc=$?
tr -d '\r' <"build/vm/logs/$rel.console.log" |
	grep -o 'phsm-bench: .*' >"$OUT/guest.txt" || true
cat "$OUT/guest.txt"

# 3. The summary.  KEY=VALUE of the line that starts with PREFIX.
val() {
	grep -h "^phsm-bench: $1" "$OUT/fw.txt" "$OUT/guest.txt" 2>/dev/null |
		head -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}
d1=$(val "depth=1 " cmds_per_s)
d32=$(val "depth=32 " cmds_per_s)
us1=$(val "depth=1 " us_per_cmd)
sub=$(val "split drv_submit" drv_submit_us)
devfw=$(val "split drv_submit" dev_fw_us)
comp=$(val "split drv_submit" drv_complete_us)
user=$(val "split drv_submit" syscall_user_us)
traced=$(val "split cmds" traced_us_per_cmd)
untraced=$(val "split cmds" untraced_us_per_cmd)
fw1=$(val "fw depth=1 " us_per_cmd)
fw1r=$(val "fw depth=1 " cmds_per_s)
fw32=$(val "fw depth=32 " cmds_per_s)
{
	echo "vm-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), guest $rel (TCG), $(nproc) host CPUs"
	awk -v d1="$d1" -v d32="$d32" -v us1="$us1" -v dsub="$sub" \
	    -v devfw="$devfw" -v comp="$comp" -v user="$user" \
	    -v traced="$traced" -v untraced="$untraced" -v fw1="$fw1" \
	    -v fw1r="$fw1r" -v fw32="$fw32" 'BEGIN {
		if (d1 > 0 && d32 > 0)
			printf "  /dev/phsm0 NOP: depth 1 %d/s (%.1f us), depth 32 %d/s: %.2fx (goal >= 4x: %s)\n",
				d1, us1, d32, d32 / d1, (d32 >= 4 * d1 ? "MET" : "NOT MET")
		else
			print "  /dev/phsm0 NOP: no result"
		if (traced > 0) {
			printf "  one depth-1 NOP under kprobes: %.1f us (untraced %.1f us)\n", traced, untraced
			printf "    driver %.0f%% (submit %.1f us, completion %.1f us), device+firmware %.0f%% (%.1f us), syscall+user %.0f%% (%.1f us)\n",
				100 * (dsub + comp) / traced, dsub, comp,
				100 * devfw / traced, devfw, 100 * user / traced, user
		} else {
			print "  time split: no result"
		}
		if (fw1 > 0) {
			printf "  phsm-fw alone (host, bridge socket): depth 1 %d/s (%.1f us), depth 32 %d/s: %.2fx\n",
				fw1r, fw1, fw32, fw32 / fw1r
			if (devfw > 0)
				printf "    phsm-fw + socket = %.0f%% of the device+firmware time, the device model and the guest exits the rest (%.1f us)\n",
					100 * fw1 / devfw, devfw - fw1
		}
	}'
} | tee "$OUT/summary.txt"
[ -n "$d1" ] && [ -n "$d32" ] && [ "$vm_rc" -eq 0 ]
