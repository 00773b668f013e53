#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs tests/interop/pykcs11.py against its own phsm-fw.
# Usage: tests/interop/pykcs11.sh   (PHSM_FW, PHSM_MODULE: tests/lib.sh)
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

fw_start interop-py || exit 1
export PHSM_FW_SOCKETS=$FW_SOCK PHSM_MODULE
"$PHSM_PY" "$PHSM_TOP/tests/interop/pykcs11.py"
rc=$?
fw_stop_check "$FW_PID" "$FW_LOG"
[ "$rc" -eq 0 ] && [ "$PHSM_FAILED" -eq 0 ]
