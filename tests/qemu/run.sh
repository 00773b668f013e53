#!/bin/bash
# SPDX-License-Identifier: MIT
# Device-level tests of the QEMU phsm device and of phsm-fw's bridge mode,
# without a guest: tests/qemu/bridge_test.py, then tests/qemu/phsm_qtest.py
# against the QEMU that scripts/build-qemu.sh builds (or $PHSM_QEMU).
#
# Environment: PHSM_QEMU (QEMU binary), PHSM_FW (default build/bin/phsm-fw).
# The last line is "qemu-tests: N passed, N failed"; exit status 0 only if
# nothing failed.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP" || exit 1
FW=${PHSM_FW:-$TOP/build/bin/phsm-fw}
passed=0
failed=0

# count OUTPUT: add the "NAME: N passed, N failed" line of OUTPUT.
count() {
	local line
	line=$(grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed$' <<<"$1" | tail -n 1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + $(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")))
	failed=$((failed + $(sed -E 's/.*, ([0-9]+) failed/\1/' <<<"$line")))
}

if [ ! -x "$FW" ]; then
	echo "  FAIL  qemu-tests: no phsm-fw at $FW (run make)"
	echo "qemu-tests: 0 passed, 1 failed"
	exit 1
fi
out=$(timeout 300 python3 tests/qemu/bridge_test.py --fw "$FW" 2>&1)
echo "$out"
count "$out"

QEMU=${PHSM_QEMU:-}
if [ -z "$QEMU" ]; then
	QEMU=$(scripts/build-qemu.sh | tail -n 1) || QEMU=
fi
if [ -z "$QEMU" ] || [ ! -x "$QEMU" ]; then
	echo "  FAIL  qemu-tests: no QEMU with the phsm device"
	failed=$((failed + 1))
else
	out=$(timeout 600 python3 tests/qemu/phsm_qtest.py --qemu "$QEMU" --fw "$FW" 2>&1)
	echo "$out"
	count "$out"
fi
echo "qemu-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
