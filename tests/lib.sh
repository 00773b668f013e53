# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared helpers of the test scripts (bash; sourced, not run).
#
# Every script that sources this gets a private temporary directory
# ($PHSM_TMP) and a trap that stops every phsm-fw it started and removes
# the directory, however the script ends.
#
# Environment understood by the scripts:
#   PHSM_FW       the phsm-fw binary     (default: build/bin/phsm-fw)
#   PHSM_MODULE   the PKCS#11 library    (default: build/lib/libphsm-pkcs11.so)
#   PHSM_PY       python with PyKCS11    (default: /usr/bin/python3)
#   PHSM_MFG      the simulated manufacturer directory that test cards
#                 get their identity from (default: build/mfg; made with
#                 phsm-fw --mfg-init when missing)

PHSM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PHSM_FW=${PHSM_FW:-$PHSM_TOP/build/bin/phsm-fw}
PHSM_MODULE=${PHSM_MODULE:-$PHSM_TOP/build/lib/libphsm-pkcs11.so}
# Debian's python3-pykcs11 lives in the system python, not in pyenv's.
PHSM_PY=${PHSM_PY:-/usr/bin/python3}
# PBKDF2 rounds for test daemons: enough to exercise the code, not slow.
# Set it empty to use the daemon's default.
PHSM_TEST_PIN_ITERATIONS=${PHSM_TEST_PIN_ITERATIONS-1000}
PHSM_MFG=${PHSM_MFG:-$PHSM_TOP/build/mfg}

PHSM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/phsm-test.XXXXXX")
PHSM_FW_PIDS=()
# More directories for the trap to remove.
PHSM_CLEAN_DIRS=()

phsm_cleanup() {
	local pid
	for pid in "${PHSM_FW_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PHSM_FW_PIDS[@]}"; do
		fw_wait_gone "$pid" 50 || kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$PHSM_TMP" "${PHSM_CLEAN_DIRS[@]}"
}
trap phsm_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fw_wait_gone PID TENTHS: wait until PID is gone; false on timeout.
fw_wait_gone() {
	local i
	for ((i = 0; i < $2; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	! kill -0 "$1" 2>/dev/null
}

# mfg_init DIR: make the manufacturer directory DIR if it is not there
# (phsm-fw --mfg-init is idempotent and locks, so parallel runs agree).
mfg_init() {
	[ -f "$1/root.pem" ] && return 0
	"$PHSM_FW" --mfg-init "$1"
}

# fw_start NAME [phsm-fw options...]: start a daemon with state
# $PHSM_TMP/NAME.state and socket $PHSM_TMP/NAME.sock (the state survives
# a restart under the same NAME).  Sets FW_PID and FW_SOCK; the daemon's
# output goes to $PHSM_TMP/NAME.log.  Waits until the socket accepts.
#
# The card gets its identity from the manufacturer directory $FW_MFG,
# by default $PHSM_MFG: `FW_MFG=DIR fw_start ...` provisions it from
# another manufacturer, `FW_MFG= fw_start ...` starts a card without
# identity (it cannot clone).
fw_start() {
	local name=$1 mfg=${FW_MFG-$PHSM_MFG} i
	shift
	FW_SOCK=$PHSM_TMP/$name.sock
	FW_LOG=$PHSM_TMP/$name.log
	rm -f "$FW_SOCK"
	if [ -n "$mfg" ]; then
		if mfg_init "$mfg" >>"$FW_LOG" 2>&1; then
			set -- --mfg "$mfg" "$@"
		else
			echo "phsm-fw --mfg-init $mfg failed; card $name starts" \
				"without identity:" >&2
			tail -n 5 "$FW_LOG" >&2
		fi
	fi
	if [ -n "$PHSM_TEST_PIN_ITERATIONS" ]; then
		set -- --pin-iterations "$PHSM_TEST_PIN_ITERATIONS" "$@"
	fi
	"$PHSM_FW" --state "$PHSM_TMP/$name.state" --socket "$FW_SOCK" "$@" \
		>>"$FW_LOG" 2>&1 </dev/null &
	FW_PID=$!
	PHSM_FW_PIDS+=("$FW_PID")
	for ((i = 0; i < 300; i++)); do
		if [ -S "$FW_SOCK" ]; then
			return 0
		fi
		if ! kill -0 "$FW_PID" 2>/dev/null; then
			echo "phsm-fw exited at start:" >&2
			tail -n 20 "$FW_LOG" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "phsm-fw did not create $FW_SOCK in 30 s" >&2
	return 1
}

# fw_stop PID: SIGTERM, then wait; SIGKILL if it does not go in 10 s.
# Returns the daemon's exit status (0 or 143 is a clean stop).
fw_stop() {
	local pid=$1 rc=0
	kill -TERM "$pid" 2>/dev/null || true
	if ! fw_wait_gone "$pid" 100; then
		echo "phsm-fw $pid ignored SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	fw_forget "$pid"
	return "$rc"
}

# fw_crash PID: SIGKILL, the way a power cut would stop the card.
fw_crash() {
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	fw_forget "$1"
}

fw_forget() {
	local pid keep=()
	for pid in "${PHSM_FW_PIDS[@]}"; do
		[ "$pid" = "$1" ] || keep+=("$pid")
	done
	PHSM_FW_PIDS=("${keep[@]}")
}

# sanitizer_report LOG: true if a sanitizer complained in LOG.
sanitizer_report() {
	grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$1"
}

# fw_stop_check PID LOG: stop a daemon and count, as one check, that it
# stopped cleanly (exit 0 or death by SIGTERM) with no sanitizer report.
fw_stop_check() {
	local rc=0
	fw_stop "$1" || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 143 ]; then
		fail "phsm-fw exit status $rc on SIGTERM"
		sed 's/^/    | /' "$2" | tail -n 30
	elif sanitizer_report "$2"; then
		fail "phsm-fw: sanitizer report"
		grep -A30 -E 'Sanitizer|runtime error' "$2" | sed 's/^/    | /' | head -n 60
	else
		pass "phsm-fw stops cleanly"
	fi
}

# Checks: each is one pass or fail, counted by tests/run.sh from the
# PASS:/FAIL: lines.
PHSM_PASSED=0
PHSM_FAILED=0

pass() {
	PHSM_PASSED=$((PHSM_PASSED + 1))
	echo "PASS: $*"
}

fail() {
	PHSM_FAILED=$((PHSM_FAILED + 1))
	echo "FAIL: $*"
}

# step NAME COMMAND...: run COMMAND with its output in $PHSM_TMP/step.out
# (shown on failure), count it as one check.
step() {
	local name=$1
	shift
	if "$@" >"$PHSM_TMP/step.out" 2>&1; then
		pass "$name"
	else
		fail "$name (exit $?)"
		sed 's/^/    | /' "$PHSM_TMP/step.out" | tail -n 30
	fi
}

# finish: the summary line of a script; its exit status.
finish() {
	echo "summary: $PHSM_PASSED of $((PHSM_PASSED + PHSM_FAILED)) checks passed"
	[ "$PHSM_FAILED" -eq 0 ]
}
