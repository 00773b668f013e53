#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs tests/malformed/malformed.py against its own phsm-fw (best the
# sanitizer build: PHSM_FW=build/asan/bin/phsm-fw), then checks that the
# daemon stops cleanly with no sanitizer report.
# Usage: tests/malformed/malformed.sh   (PHSM_FW: tests/lib.sh)
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

fw_start malformed || exit 1
"$PHSM_PY" "$PHSM_TOP/tests/malformed/malformed.py" "$FW_SOCK"
rc=$?
if kill -0 "$FW_PID" 2>/dev/null; then
	pass "phsm-fw still running after the malformed input"
	fw_stop_check "$FW_PID" "$FW_LOG"
else
	fail "phsm-fw died"
	sed 's/^/    | /' "$FW_LOG" | tail -n 40
fi
[ "$rc" -eq 0 ] && [ "$PHSM_FAILED" -eq 0 ]
