#!/bin/bash
# SPDX-License-Identifier: MIT
# Key cloning between cards (Documentation/phsm/cloning.rst, "Tests"):
# CA_MigrateKeys and CA_CloneObject between two phsm-fw, the low-level
# CPv4 flow between two processes that each see only one card (step
# messages, session IDs and blobs passed through files, as between two
# hosts), expiry with shortened timers, clock skew, cards without or with
# a foreign identity, the negotiation knobs, other domains, and a card
# killed during a batch insert.  Each check is one PASS:/FAIL: line.
#
# Usage: tests/clone/clone.sh   (PHSM_FW, PHSM_MODULE, PHSM_MFG: tests/lib.sh;
#                                CLONE_TOOL: default build/tests/clone-tool)
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

CLONE_TOOL=${CLONE_TOOL:-$PHSM_TOP/build/tests/clone-tool}
KCV="phsm clone test domain"
D=$PHSM_TMP/files
mkdir -p "$D"

if [ ! -x "$CLONE_TOOL" ]; then
	fail "no $CLONE_TOOL (make tests)"
	finish
	exit 1
fi

# on SOCKETS COMMAND ARGS...: the tool, seeing only the cards SOCKETS.
on() {
	local socks=$1
	shift
	PHSM_FW_SOCKETS=$socks "$CLONE_TOOL" "$PHSM_MODULE" "$@"
}

# expect NAME RV SOCKETS COMMAND ARGS...: one check, passed when the
# tool's last line is rv=RV.  The output stays in $OUT.
expect() {
	local name=$1 want=$2
	shift 2
	OUT=$(on "$@" 2>&1)
	if [ "$(tail -n 1 <<<"$OUT")" = "rv=$want" ]; then
		pass "$name"
	else
		fail "$name (wanted $want)"
		sed 's/^/    | /' <<<"$OUT" | tail -n 20
	fi
}

ok() {
	local name=$1
	shift
	expect "$name" CKR_OK "$@"
}

# has NAME PATTERN: one check on the last tool output.
has() {
	if grep -qE -- "$2" <<<"$OUT"; then
		pass "$1"
	else
		fail "$1 (no \"$2\" in the output)"
		sed 's/^/    | /' <<<"$OUT" | tail -n 20
	fi
}

# quiet SOCKETS COMMAND...: a set-up step that must work (not a check).
quiet() {
	local out
	if ! out=$(on "$@" 2>&1); then
		echo "set-up failed: clone-tool $*" >&2
		sed 's/^/    | /' <<<"$out" >&2
		fail "set-up: ${*:2:2}"
		return 1
	fi
}

# card NAME [phsm-fw options...]: a card whose first partition holds the
# domain $KCV (CARD_KCV overrides it); its socket in SOCK[NAME].
declare -A SOCK PID LOG
card() {
	local name=$1
	shift
	fw_start "$name" "$@" || { fail "card $name starts"; return 1; }
	SOCK[$name]=$FW_SOCK
	PID[$name]=$FW_PID
	LOG[$name]=$FW_LOG
	quiet "$FW_SOCK" init 0 "${CARD_KCV:-$KCV}"
}

# stop NAME: one check, the card stops cleanly (no sanitizer report).
stop() {
	local rc=0
	fw_stop "${PID[$1]}" || rc=$?
	if { [ "$rc" -eq 0 ] || [ "$rc" -eq 143 ]; } && ! sanitizer_report "${LOG[$1]}"; then
		pass "card $1 stops cleanly"
	else
		fail "card $1 stops cleanly (exit $rc)"
		tail -n 30 "${LOG[$1]}" | sed 's/^/    | /'
	fi
}

# diff_attrs NAME SOCK_A SOCK_B LABEL: the key LABEL has the same
# attributes (but its unique ID) on the two cards.
diff_attrs() {
	on "$2" attrs 0 "$4" >"$D/attrs.a" 2>&1
	on "$3" attrs 0 "$4" >"$D/attrs.b" 2>&1
	if [ "$(tail -n 1 "$D/attrs.a")" = rv=CKR_OK ] &&
	   [ "$(wc -l <"$D/attrs.a")" -gt 10 ] &&
	   diff -u "$D/attrs.a" "$D/attrs.b" >"$D/attrs.diff"; then
		pass "$1"
	else
		fail "$1"
		sed 's/^/    | /' "$D/attrs.diff" | head -n 20
	fi
}

# flip FILE OFFSET_FROM_END: alter one byte of FILE in place.
flip() {
	"$PHSM_PY" - "$1" "$2" <<'EOF'
import sys
p, k = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
b[len(b) - k] ^= 0x5a
open(p, "wb").write(b)
EOF
}

# ---- the manufacturer directories ----------------------------------------

MFG2=$PHSM_TMP/mfg2
step "phsm-fw --mfg-init makes a manufacturer" "$PHSM_FW" --mfg-init "$MFG2"
sum=$(sha256sum <"$MFG2/root.pem" 2>/dev/null)
step "phsm-fw --mfg-init again keeps the root" "$PHSM_FW" --mfg-init "$MFG2"
if [ -n "$sum" ] && [ "$sum" = "$(sha256sum <"$MFG2/root.pem")" ] &&
   ! cmp -s "$MFG2/root.pem" "$PHSM_MFG/root.pem"; then
	pass "the root is kept, and differs from $PHSM_MFG's"
else
	fail "the root is kept, and differs from $PHSM_MFG's"
fi

# ---- two cards -----------------------------------------------------------

card a || exit 1
card b --device-curve p384 || exit 1
A=${SOCK[a]} B=${SOCK[b]}
AB=$A,$B	# card a's first partition is slot 0, card b's slot 16

quiet "$A" mkkey 0 ab-1 ab-2 ab-3
ok "CA_MigrateKeys card a (P-256) -> card b (P-384)" "$AB" migrate 0 16 0 ab-1 ab-2 ab-3
has "every object cloned and usable" "^ab-3 rv=CKR_OK"
diff_attrs "a clone has the attributes of its original" "$A" "$B" ab-1
quiet "$B" mkkey 0 ba-1
ok "CA_MigrateKeys card b -> card a" "$AB" migrate 16 0 1 ba-1
ok "CA_CloneObject card a -> card b" "$AB" cloneobj 0 16 ab-2
expect "count on card b" CKR_OK "$B" count 0 ab-2
has "two clones of ab-2 on card b" "^count=2$"
quiet "$A" init 1 "$KCV"
quiet "$A" mkkey 1 p1-1
ok "CA_MigrateKeys between two partitions of card a" "$A" migrate 1 0 0 p1-1

# ---- two processes, one card each ("separate hosts") ---------------------

H=$D/hosts
mkdir -p "$H"
quiet "$A" mkkey 0 sh-1 sh-2
ok "hosts: Start on A" "$A" start 0 "$H/m1"
has "hosts: Start gives step 1" "^step=1 "
ok "hosts: B continues with m1" "$B" continue 0 1 "$H/m1" "$H/m2" "$H/sid.b"
has "hosts: B answers step 2, MORE, a 16-byte session ID" "^step=2 status=1 .*sid_len=16$"
# A's first Continue takes no session ID: the one inside m2 is used.
ok "hosts: A continues with m2" "$A" continue 0 2 "$H/m2" "$H/m3" "$H/sid.a"
has "hosts: A answers step 3, MORE" "^step=3 status=1 "
if cmp -s "$H/sid.a" "$H/sid.b"; then
	pass "hosts: both cards name the same session"
else
	fail "hosts: both cards name the same session"
fi
ok "hosts: B continues with m3" "$B" continue 0 3 "$H/m3" "$H/m4" "$H/sid.b"
has "hosts: B answers step 4, DONE" "^step=4 status=2 "
ok "hosts: A's first CA_Extract takes m4" "$A" extract 0 "$H/sid.a" "$H/m4" "$H" sh-1 sh-2
ok "hosts: B inserts the blobs" "$B" insert 0 "$H/sid.b" 0 "$H/sh-1.blob" "$H/sh-2.blob"
ok "hosts: A encrypts with sh-1" "$A" encrypt 0 sh-1 "$H/ct"
ok "hosts: B's clone of sh-1 decrypts it" "$B" decrypt 0 sh-1 "$H/ct"
diff_attrs "hosts: the clone's attributes" "$A" "$B" sh-2
expect "hosts: a blob inserted twice" CKR_DATA_INVALID "$B" insert 0 "$H/sid.b" 0 "$H/sh-1.blob"
expect "hosts: a blob sent back to its maker" CKR_DATA_INVALID "$A" insert 0 "$H/sid.a" 0 "$H/sh-1.blob"
ok "hosts: A extracts sh-2 again" "$A" extract 0 "$H/sid.a" - "$H" sh-2
cp "$H/sh-2.blob" "$H/bad.blob"
flip "$H/bad.blob" 5
expect "hosts: a tampered blob" CKR_ENCRYPTED_DATA_INVALID "$B" insert 0 "$H/sid.b" 0 "$H/bad.blob"
expect "hosts: count on B" CKR_OK "$B" count 0 sh-2
has "hosts: nothing made of it" "^count=1$"
ok "hosts: the untouched blob" "$B" insert 0 "$H/sid.b" 0 "$H/sh-2.blob"
ok "hosts: A closes" "$A" close 0 "$H/sid.a"
ok "hosts: B closes" "$B" close 0 "$H/sid.b"
expect "hosts: closed twice" CKR_SESSION_ID_INVALID "$B" close 0 "$H/sid.b"
expect "hosts: insert after close" CKR_SESSION_ID_INVALID "$B" insert 0 "$H/sid.b" 0 "$H/sh-1.blob"

# The initiator is the target: m4 goes back to it through a step-4 Continue.
H=$D/hosts2
mkdir -p "$H"
quiet "$A" mkkey 0 sh-3
ok "hosts: Start on B (the target)" "$B" start 0 "$H/m1"
ok "hosts: A continues with m1" "$A" continue 0 1 "$H/m1" "$H/m2" "$H/sid.a"
ok "hosts: B continues with m2" "$B" continue 0 2 "$H/m2" "$H/m3" "$H/sid.b"
ok "hosts: A continues with m3" "$A" continue 0 3 "$H/m3" "$H/m4" "$H/sid.a"
has "hosts: A answers step 4, DONE" "^step=4 status=2 "
ok "hosts: B takes m4 with a step-4 Continue" "$B" continue 0 4 "$H/m4" "$H/m5" "$H/sid.b"
has "hosts: step 0, DONE, no output" "^step=0 status=2 len=0 "
ok "hosts: A (the responder) extracts" "$A" extract 0 "$H/sid.a" - "$H" sh-3
ok "hosts: B inserts" "$B" insert 0 "$H/sid.b" 0 "$H/sh-3.blob"
ok "hosts: A encrypts with sh-3" "$A" encrypt 0 sh-3 "$H/ct"
ok "hosts: B's clone of sh-3 decrypts it" "$B" decrypt 0 sh-3 "$H/ct"

# Two processes insert from one clone session at once.
H=$D/procs
mkdir -p "$H"
labels=()
for ((i = 0; i < 40; i++)); do
	labels+=("pp-$i")
done
quiet "$A" mkkey 0 "${labels[@]}"
quiet "$A" start 0 "$H/m1"
quiet "$B" continue 0 1 "$H/m1" "$H/m2" "$H/sid.b"
quiet "$A" continue 0 2 "$H/m2" "$H/m3" "$H/sid.a"
quiet "$B" continue 0 3 "$H/m3" "$H/m4" "$H/sid.b"
ok "procs: A extracts 40 objects" "$A" extract 0 "$H/sid.a" "$H/m4" "$H" "${labels[@]}"
blobs=()
for l in "${labels[@]}"; do
	blobs+=("$H/$l.blob")
	echo "$l"
done >"$H/labels"
on "$B" insert 0 "$H/sid.b" 0 "${blobs[@]:0:20}" >"$H/p1.out" 2>&1 &
p1=$!
on "$B" insert 0 "$H/sid.b" 0 "${blobs[@]:20}" >"$H/p2.out" 2>&1 &
p2=$!
if wait "$p1" && wait "$p2"; then
	pass "procs: two processes insert from one session at once"
else
	fail "procs: two processes insert from one session at once"
	tail -n 3 "$H/p1.out" "$H/p2.out" | sed 's/^/    | /'
fi
expect "procs: every object once on B" CKR_OK "$B" verify-acked 0 "$H/labels"

# ---- a card killed during a batch insert ---------------------------------

# Every clone the target acknowledged is there after the restart, once.
card k || exit 1
K=${SOCK[k]}
H=$D/kill
mkdir -p "$H"
labels=()
for ((i = 0; i < 400; i++)); do
	labels+=("kill-$i")
done
quiet "$A" mkkey 0 "${labels[@]}"
quiet "$A" start 0 "$H/m1"
quiet "$K" continue 0 1 "$H/m1" "$H/m2" "$H/sid.k"
quiet "$A" continue 0 2 "$H/m2" "$H/m3" "$H/sid.a"
quiet "$K" continue 0 3 "$H/m3" "$H/m4" "$H/sid.k"
ok "kill: A extracts 400 objects in one call" "$A" extract 0 "$H/sid.a" "$H/m4" "$H" "${labels[@]}"
blobs=()
for l in "${labels[@]}"; do
	blobs+=("$H/$l.blob")
done
: >"$H/acks"
on "$K" insert-acked 0 "$H/sid.k" "$H/acks" "${blobs[@]}" >"$H/insert.out" 2>&1 &
ins=$!
for ((i = 0; i < 200; i++)); do
	[ "$(wc -l <"$H/acks")" -ge 20 ] && break
	sleep 0.05
done
fw_crash "${PID[k]}"
wait "$ins"
n=$(wc -l <"$H/acks")
if [ "$n" -ge 400 ]; then
	# Not a fault of the card: it was just faster than the kill.
	echo "note: all 400 clones were acknowledged before the card was killed"
elif [ "$n" -ge 1 ]; then
	pass "kill: the card died in the middle ($n of 400 acknowledged)"
else
	fail "kill: the card died in the middle (nothing acknowledged)"
	sed 's/^/    | /' "$H/insert.out" | tail -n 5
fi
fw_start k || fail "kill: the card restarts"
PID[k]=$FW_PID
expect "kill: every acknowledged clone is there, once" CKR_OK "$K" verify-acked 0 "$H/acks"
ok "kill: the restarted card still clones (its identity is kept)" "$A,$K" migrate 0 16 0 kill-0
stop k

# ---- expiry --------------------------------------------------------------

card t1 --clone-negotiation-timeout 2 --clone-session-lifetime 2 || exit 1
card t2 --clone-negotiation-timeout 2 --clone-session-lifetime 2 || exit 1
card t3 --clone-negotiation-timeout 2 --clone-session-lifetime 2 || exit 1
T1=${SOCK[t1]} T2=${SOCK[t2]} T3=${SOCK[t3]}
H=$D/expiry
mkdir -p "$H"
quiet "$T1" mkkey 0 ex-1
quiet "$T3" mkkey 0 ex-3
# N3 first: t3 (I) has m4 but has not taken it yet.  No call on t3
# follows, and what it leaves on t2 may go.
quiet "$T3" start 0 "$H/n3.m1"
quiet "$T2" continue 0 1 "$H/n3.m1" "$H/n3.m2" "$H/n3.sid.r"
quiet "$T3" continue 0 2 "$H/n3.m2" "$H/n3.m3" "$H/n3.sid.i"
quiet "$T2" continue 0 3 "$H/n3.m3" "$H/n3.m4" "$H/n3.sid.r"
# From here on every record must outlive the set-up (2 s): few calls.
began=$SECONDS
# S: a session established between t1 (I) and t2 (R), a blob for it.
quiet "$T1" start 0 "$H/s.m1"
quiet "$T2" continue 0 1 "$H/s.m1" "$H/s.m2" "$H/s.sid.r"
quiet "$T1" continue 0 2 "$H/s.m2" "$H/s.m3" "$H/s.sid.i"
quiet "$T2" continue 0 3 "$H/s.m3" "$H/s.m4" "$H/s.sid.r"
quiet "$T1" extract 0 "$H/s.sid.i" "$H/s.m4" "$H" ex-1
# N1, N2: negotiations waiting for t1's step 2.
quiet "$T1" start 0 "$H/n1.m1"
quiet "$T2" continue 0 1 "$H/n1.m1" "$H/n1.m2" "$H/n1.sid.r"
quiet "$T1" start 0 "$H/n2.m1"
quiet "$T2" continue 0 1 "$H/n2.m1" "$H/n2.m2" "$H/n2.sid.r"
# An m1 of card a (default timeout), to reach t2 when it is stale.
quiet "$A" start 0 "$H/old.m1"
if [ $((SECONDS - began)) -ge 2 ]; then
	echo "note: the expiry set-up took $((SECONDS - began)) s (timers are 2 s)"
fi
sleep 3
# The first CPv4 call on t2 after the expiry, then the next one.
expect "an expired session: CKR_SESSION_ID_EXPIRED" CKR_SESSION_ID_EXPIRED \
	"$T2" insert 0 "$H/s.sid.r" 0 "$H/ex-1.blob"
expect "then it is gone: CKR_SESSION_ID_INVALID" CKR_SESSION_ID_INVALID \
	"$T2" insert 0 "$H/s.sid.r" 0 "$H/ex-1.blob"
# The first CPv4 call on t1 after the expiry, then the next ones.
expect "an expired negotiation: _EXPIRED" CKR_SESSION_NEGOTIATION_EXPIRED \
	"$T1" continue 0 2 "$H/n1.m2" "$H/n1.m3" "$H/n1.sid.i"
expect "then it is gone: _NOT_STARTED" CKR_SESSION_NEGOTIATION_NOT_STARTED \
	"$T1" continue 0 2 "$H/n1.m2" "$H/n1.m3" "$H/n1.sid.i"
expect "cleaned up by another call: _NOT_STARTED" CKR_SESSION_NEGOTIATION_NOT_STARTED \
	"$T1" continue 0 2 "$H/n2.m2" "$H/n2.m3" "$H/n2.sid.i"
expect "the session is gone on t1 too" CKR_SESSION_ID_INVALID \
	"$T1" extract 0 "$H/s.sid.i" - "$H" ex-1
expect "an m1 older than the negotiation timeout" CKR_ATTESTATION_EXPIRED \
	"$T2" continue 0 1 "$H/old.m1" "$H/x.m2" "$H/x.sid"
# The first CPv4 call on t3: its first CA_Extract, with m4.
expect "the first CA_Extract of an expired negotiation: _EXPIRED" \
	CKR_SESSION_NEGOTIATION_EXPIRED "$T3" extract 0 "$H/n3.sid.i" "$H/n3.m4" "$H" ex-3
expect "then _NOT_STARTED" CKR_SESSION_NEGOTIATION_NOT_STARTED \
	"$T3" extract 0 "$H/n3.sid.i" "$H/n3.m4" "$H" ex-3
stop t1
stop t2
stop t3

# ---- clocks --------------------------------------------------------------

card skew --clock-offset 10 || exit 1
S=${SOCK[skew]}
quiet "$A" mkkey 0 sk-1
quiet "$S" mkkey 0 sk-2
expect "a card 10 s ahead, as target" CKR_TIME_NOT_INITIALIZED "$A,$S" migrate 0 16 0 sk-1
expect "a card 10 s ahead, as source" CKR_TIME_NOT_INITIALIZED "$A,$S" migrate 16 0 0 sk-2
expect "count on the skewed card" CKR_OK "$S" count 0 sk-1
has "nothing cloned" "^count=0$"
stop skew
card near --clock-offset 2 || exit 1
quiet "${SOCK[near]}" mkkey 0 sk-3
ok "a card 2 s ahead, as target" "$A,${SOCK[near]}" migrate 0 16 0 sk-1
ok "a card 2 s ahead, as source" "$A,${SOCK[near]}" migrate 16 0 0 sk-3
stop near

# ---- identities ----------------------------------------------------------

FW_MFG='' card noid || exit 1
N=${SOCK[noid]}
quiet "$A" mkkey 0 nr-1
quiet "$N" mkkey 0 nr-2
expect "a card without identity: Start" CKR_SESSION_NEGOTIATION_NO_ROOTS "$N" start 0 "$D/nr.m1"
expect "a card without identity as target" CKR_SESSION_NEGOTIATION_NO_ROOTS "$A,$N" migrate 0 16 0 nr-1
expect "a card without identity as source" CKR_SESSION_NEGOTIATION_NO_ROOTS "$A,$N" migrate 16 0 0 nr-2
stop noid
FW_MFG=$MFG2 card other || exit 1
O=${SOCK[other]}
quiet "$O" mkkey 0 nr-3
expect "a card of another manufacturer as target" CKR_SESSION_NEGOTIATION_NO_ROOTS "$A,$O" migrate 0 16 0 nr-1
expect "a card of another manufacturer as source" CKR_SESSION_NEGOTIATION_NO_ROOTS "$A,$O" migrate 16 0 0 nr-3
ok "hosts: Start on the foreign card" "$O" start 0 "$D/nr.m1"
expect "hosts: card a refuses its m1" CKR_SESSION_NEGOTIATION_NO_ROOTS "$A" continue 0 1 "$D/nr.m1" "$D/nr.m2" "$D/nr.sid"
stop other

# ---- what the cards offer ------------------------------------------------

# knob NAME RV OPTS_X OPTS_Y: CA_MigrateKeys between two cards made with
# those options gives RV.
KNOBS=0
knob() {
	local name=$1 want=$2 x y kx ky
	read -ra x <<<"$3"
	read -ra y <<<"$4"
	KNOBS=$((KNOBS + 1))
	kx=knob$KNOBS-x ky=knob$KNOBS-y
	card "$kx" "${x[@]}" || return
	card "$ky" "${y[@]}" || return
	quiet "${SOCK[$kx]}" mkkey 0 kn-1
	expect "$name" "$want" "${SOCK[$kx]},${SOCK[$ky]}" migrate 0 16 0 kn-1
	stop "$kx"
	stop "$ky"
}

knob "suite 1 only against suite 2 only: NO_ALGS" CKR_SESSION_NEGOTIATION_NO_ALGS \
	"--clone-suites 1" "--clone-suites 2"
knob "suite 1 only against both" CKR_OK "--clone-suites 1" ""
knob "HKDF-SHA256 only against HKDF-SHA384 only: NO_KDF" CKR_SESSION_NEGOTIATION_NO_KDF \
	"--clone-kdfs 1" "--clone-kdfs 2"
knob "HKDF-SHA384 only against both" CKR_OK "" "--clone-kdfs 2"
knob "sessions of 5 s against 3600 s: NO_SESSION_DURATION" \
	CKR_SESSION_NEGOTIATION_NO_SESSION_DURATION "--clone-session-lifetime 5" ""
knob "sessions of 5 s on both cards" CKR_OK \
	"--clone-session-lifetime 5" "--clone-session-lifetime 5"
knob "two cards with P-384 device keys" CKR_OK \
	"--device-curve p384" "--device-curve p384"

# ---- domains and policies ------------------------------------------------

CARD_KCV="another domain" card c || exit 1
C=${SOCK[c]}
quiet "$A" mkkey 0 dm-1
expect "no common domain: NO_PSK" CKR_SESSION_NEGOTIATION_NO_PSK "$A,$C" migrate 0 16 0 dm-1
expect "no common domain (CPv3): NO_PSK" CKR_SESSION_NEGOTIATION_NO_PSK "$A,$C" cloneobj 0 16 dm-1
stop c
# CPv4 off on card b: CA_MigrateKeys falls back to CPv3 across the cards.
quiet "$B" policy 0 0x1004 1
ok "CPv4 disabled on the target: CPv3 across the cards" "$AB" migrate 0 16 0 dm-1
quiet "$A" policy 0 0x1003 1
expect "CPv3 off on one card, CPv4 on the other: nothing in common" \
	CKR_PROTOCOL_DISABLED "$AB" migrate 0 16 0 dm-1

stop a
stop b
finish
