#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs tests/malformed/shm_malformed.py (hostile clients of the
# shared-memory channels) against its own phsm-fw (best the sanitizer
# build: PHSM_FW=build/asan/bin/phsm-fw), then checks that the daemon
# stops cleanly with no sanitizer report; then shm_distrust.py (a hostile
# daemon's channels against the library, $PHSM_MODULE).
# Usage: tests/malformed/shm_malformed.sh   (PHSM_FW, PHSM_MODULE:
# tests/lib.sh)
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

fw_start shm-malformed || exit 1
"$PHSM_PY" "$PHSM_TOP/tests/malformed/shm_malformed.py" "$FW_SOCK"
rc=$?
if kill -0 "$FW_PID" 2>/dev/null; then
	pass "phsm-fw still running after the hostile channel clients"
	fw_stop_check "$FW_PID" "$FW_LOG"
else
	fail "phsm-fw died"
	sed 's/^/    | /' "$FW_LOG" | tail -n 40
fi
"$PHSM_PY" "$PHSM_TOP/tests/malformed/shm_distrust.py" "$PHSM_MODULE" ||
	rc=1
[ "$rc" -eq 0 ] && [ "$PHSM_FAILED" -eq 0 ]
