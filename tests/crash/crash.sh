#!/bin/bash
# SPDX-License-Identifier: MIT
# Crash safety: an object the card acknowledged survives the card dying.
#
# Each round starts phsm-fw on the same state directory, lets
# crash-client create token objects (it records every acknowledged one,
# fsync'ed, right after C_CreateObject returned CKR_OK), SIGKILLs the
# daemon at a random moment, restarts it and checks that every object
# acknowledged in any round so far is there, once, with its value, and
# that the SQLite files pass PRAGMA integrity_check.
#
# Usage: tests/crash/crash.sh [ROUNDS]   (PHSM_FW, PHSM_MODULE: tests/lib.sh;
#        CRASH_CLIENT: the client, default build/tests/crash-client)
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

ROUNDS=${1:-6}
CLIENT=${CRASH_CLIENT:-$PHSM_TOP/build/tests/crash-client}
ACKS=$PHSM_TMP/acks
SO_PIN=11223344
PIN=12345678
# Fixed seed: the kill moments vary between rounds but not between runs.
RANDOM=4242

# integrity_ok STATE_DIR: every SQLite file in it passes integrity_check.
# Checked on a copy, so that recovering a hot journal or WAL (which the
# check has to do, as the daemon would) leaves the real state alone.
integrity_ok() {
	rm -rf "$PHSM_TMP/copy"
	cp -a "$1" "$PHSM_TMP/copy" || return 1
	"$PHSM_PY" - "$PHSM_TMP/copy" <<'EOF'
import os, sqlite3, sys
bad = 0
found = 0
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(root, name)
        # Opening the database replays and removes these.
        if name.endswith(("-journal", "-wal", "-shm")):
            continue
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\0":
                continue
        found += 1
        db = sqlite3.connect(path)
        res = db.execute("PRAGMA integrity_check").fetchall()
        db.close()
        if res != [("ok",)]:
            print("%s: %r" % (path, res))
            bad += 1
print("%d SQLite file(s), %d bad" % (found, bad))
sys.exit(1 if bad or not found else 0)
EOF
}

# wait_for_acks N TENTHS: until the ack file has N lines or time runs out.
wait_for_acks() {
	local i
	for ((i = 0; i < $2; i++)); do
		[ "$(wc -l <"$ACKS" 2>/dev/null || echo 0)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

run_round() {
	local round=$1 before client_pid delay
	before=$(wc -l <"$ACKS")
	"$CLIENT" "$PHSM_MODULE" write "$PIN" "$ACKS" "r$round" 1000000 \
		>>"$PHSM_TMP/client.log" 2>&1 &
	client_pid=$!
	# Let it get going, then pull the plug somewhere in the next 0.5 s.
	if ! wait_for_acks $((before + 3)) 300; then
		fail "round $round: no object created in 30 s"
		kill -KILL "$client_pid" 2>/dev/null
		wait "$client_pid" 2>/dev/null
		return
	fi
	delay=$(printf '0.%03d' $((RANDOM % 500)))
	sleep "$delay"
	fw_crash "$FW_PID"
	# The client must notice the card is gone and stop, not hang.
	if fw_wait_gone "$client_pid" 300; then
		wait "$client_pid" 2>/dev/null
		pass "round $round: client stopped after the crash ($(($(wc -l <"$ACKS") - before)) acknowledged, kill after ${delay}s)"
	else
		fail "round $round: client hangs after the daemon died"
		kill -KILL "$client_pid" 2>/dev/null
		wait "$client_pid" 2>/dev/null
	fi
	if integrity_ok "$PHSM_TMP/crash.state" >"$PHSM_TMP/step.out" 2>&1; then
		pass "round $round: store passes integrity_check"
	else
		fail "round $round: store corrupt"
		sed 's/^/    | /' "$PHSM_TMP/step.out"
	fi
	if ! fw_start crash; then
		fail "round $round: daemon does not restart on the crashed state"
		return 1
	fi
	export PHSM_FW_SOCKETS=$FW_SOCK
	step "round $round: all $(wc -l <"$ACKS") acknowledged objects present" \
		"$CLIENT" "$PHSM_MODULE" verify "$PIN" "$ACKS"
}

: >"$ACKS"
fw_start crash || exit 1
export PHSM_FW_SOCKETS=$FW_SOCK
step "token initialised" "$CLIENT" "$PHSM_MODULE" init "$SO_PIN" "$PIN"
for ((r = 1; r <= ROUNDS; r++)); do
	run_round "$r" || break
done
fw_stop "$FW_PID"
finish
