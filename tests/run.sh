#!/bin/bash
# SPDX-License-Identifier: MIT
# The whole of `make check`: build the normal and the sanitizer
# (ASan/UBSan) trees, run every suite, count.
#
# Suites:
#   build       make (normal, SAN=1): one check each
#   unit        tests/unit/test_* (cmocka), both builds
#   pkcs11      the PKCS#11 behaviour suite, both builds (the ASan suite
#               loads the ASan library against an ASan phsm-fw)
#   interop     pkcs11-tool, OpenSSL's pkcs11 engine, PyKCS11, p11-kit, phsmctl
#   crash       SIGKILL the daemon while it stores objects
#   clone       key cloning between two cards and between two processes
#               that each see one card (tests/clone/clone.sh)
#   malformed   malformed messages straight to the daemon's socket, and
#               garbage in the shared-memory rings (both directions)
#   fuzz        libFuzzer on the firmware's request handling (bounded)
#   driver      phsm.ko: W=1 build and sparse against 6.1 and 6.12, checkpatch
#   qemu        the QEMU device (qtest) and phsm-fw's bridge mode
#   vm          make vm-check: kselftests and the PKCS#11 suite through
#               /dev/phsm* in VMs with the 6.1 and 6.12 kernels
#
# Each suite's output goes to build/logs/<suite>.log; a failing suite
# prints the tail of its log.  The last line is "N passed, N failed".
#
# Environment: PHSM_FUZZ_SECONDS (default 60), PHSM_SUITES (a subset of the
# suite names above, space-separated, to run only those).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=tests/lib.sh
. tests/lib.sh

TOP=$PWD
LOGS=$TOP/build/logs
SUMMARY=$TOP/build/test-summary.txt
FUZZ_SECONDS=${PHSM_FUZZ_SECONDS:-60}
SUITES=${PHSM_SUITES:-build unit pkcs11 interop crash clone malformed fuzz driver qemu vm}
JOBS=$(nproc 2>/dev/null || echo 2)

TOTAL_PASSED=0
TOTAL_FAILED=0
mkdir -p "$LOGS"
rm -f "$SUMMARY"

want() {
	[[ " $SUITES " == *" $1 "* ]]
}

# count_cmocka LOG: sets P and F from cmocka's summary lines.
count_cmocka() {
	P=$(sed -nE 's/^\[  PASSED  \] ([0-9]+) test.*/\1/p' "$1" |
		awk '{ s += $1 } END { print s + 0 }')
	F=$(sed -nE 's/^\[  FAILED  \] ([0-9]+) test.*/\1/p' "$1" |
		awk '{ s += $1 } END { print s + 0 }')
}

# count_checks LOG: sets P and F from PASS:/FAIL: lines.
count_checks() {
	P=$(grep -c '^PASS: ' "$1")
	F=$(grep -c '^FAIL: ' "$1")
}

# count_totals LOG: sets P and F from the last "<name>: N passed, N failed"
# line that a runner of its own printed (tests/qemu, tests/vm).
count_totals() {
	local line
	line=$(grep -E '^[a-z0-9/.-]+: [0-9]+ passed, [0-9]+ failed$' "$1" |
		tail -n 1)
	P=$(sed -nE 's/.*: ([0-9]+) passed.*/\1/p' <<<"$line")
	F=$(sed -nE 's/.*, ([0-9]+) failed$/\1/p' <<<"$line")
	P=${P:-0} F=${F:-0}
}

# count_make LOG: a make target is one check, passed when it succeeded
# (report turns a non-zero exit into the failure).
count_make() {
	P=1 F=0
}

# report NAME LOG RC SECONDS: add P/F to the totals, print the suite line.
# A non-zero exit with no failure counted, or no test at all, is one failure.
report() {
	local name=$1 log=$2 rc=$3 secs=$4 note=""
	if [ "$rc" -ne 0 ] && [ "$F" -eq 0 ]; then
		F=1
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			note=" (timed out)"
		else
			note=" (exit status $rc)"
		fi
	elif [ "$P" -eq 0 ] && [ "$F" -eq 0 ]; then
		F=1
		note=" (ran no test)"
	fi
	TOTAL_PASSED=$((TOTAL_PASSED + P))
	TOTAL_FAILED=$((TOTAL_FAILED + F))
	printf '%-28s %4d pass %4d fail %5ds%s\n' "$name" "$P" "$F" "$secs" "$note"
	if [ "$F" -ne 0 ]; then
		echo "---- last lines of ${log#"$TOP"/} ----"
		tail -n 40 "$log" | sed 's/^/    /'
		echo "----"
	fi
}

# run_suite NAME KIND TIMEOUT CMD...: run CMD with its output in the log,
# count it with count_KIND (cmocka or checks).
run_suite() {
	local name=$1 kind=$2 limit=$3 log start rc
	shift 3
	log=$LOGS/${name//\//-}.log
	start=$SECONDS
	timeout -k 10 "$limit" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	"count_$kind" "$log"
	report "$name" "$log" "$rc" $((SECONDS - start))
}

# missing NAME WHAT: a suite that cannot run because WHAT was not built.
missing() {
	printf '%-28s %4d pass %4d fail        (%s not built)\n' "$1" 0 1 "$2"
	TOTAL_FAILED=$((TOTAL_FAILED + 1))
}

build_tree() {
	local name=$1 log=$LOGS/build-$1.log start=$SECONDS rc
	shift
	make -k -j"$JOBS" "$@" all tests >"$log" 2>&1 </dev/null
	rc=$?
	if [ "$rc" -eq 0 ]; then P=1 F=0; else P=0 F=1; fi
	report "build/$name" "$log" 0 $((SECONDS - start))
}

# Unit tests of one tree: each tests/unit/test_*.c is one program,
# counted from its cmocka summary; one that did not build is a failure.
unit_suite() {
	local tree=$1 dir=$2 src name found=0
	for src in tests/unit/test_*.c; do
		[ -e "$src" ] || continue
		found=1
		name=$(basename "$src" .c)
		if [ -x "$dir/tests/$name" ]; then
			run_suite "unit/$tree/$name" cmocka 300 "$dir/tests/$name"
		else
			missing "unit/$tree/$name" "$dir/tests/$name"
		fi
	done
	[ "$found" -eq 1 ] || missing "unit/$tree" "tests/unit"
}

# The behaviour suite against a fresh daemon of the same tree.
pkcs11_suite() {
	local tree=$1 dir=$2 log
	if [ ! -x "$dir/tests/pkcs11-suite" ] || [ ! -x "$dir/bin/phsm-fw" ] ||
	   [ ! -f "$dir/lib/libphsm-pkcs11.so" ]; then
		missing "pkcs11/$tree" "pkcs11-suite, phsm-fw or the library"
		return
	fi
	PHSM_FW=$TOP/$dir/bin/phsm-fw
	if ! fw_start "suite-$tree" --partitions 2; then
		missing "pkcs11/$tree" "a running phsm-fw"
		return
	fi
	# Both transports of the library to phsm-fw: shared memory (the
	# default) and the socket.
	PHSM_TRANSPORT=shm PHSM_FW_SOCKETS=$FW_SOCK run_suite "pkcs11/$tree" \
		cmocka 900 "$dir/tests/pkcs11-suite" \
		"$TOP/$dir/lib/libphsm-pkcs11.so"
	PHSM_TRANSPORT=socket PHSM_FW_SOCKETS=$FW_SOCK \
		run_suite "pkcs11/$tree/socket" cmocka 900 \
		"$dir/tests/pkcs11-suite" "$TOP/$dir/lib/libphsm-pkcs11.so"
	# The library computes single-part digests itself; the digest tests
	# once more with PHSM_DIGEST=card, the card's own path.
	PHSM_DIGEST=card PHSM_FW_SOCKETS=$FW_SOCK \
		run_suite "pkcs11/$tree/digest-card" cmocka 300 \
		"$dir/tests/pkcs11-suite" "$TOP/$dir/lib/libphsm-pkcs11.so" \
		'test_digest*'
	# The daemon's own health after the suite is one more check.
	log=$LOGS/pkcs11-$tree-daemon.log
	{ fw_stop_check "$FW_PID" "$FW_LOG"; cat "$FW_LOG"; } >"$log" 2>&1
	count_checks "$log"
	report "pkcs11/$tree/phsm-fw" "$log" 0 0
}

# A script suite, with the given daemon and library.
script_suite() {
	local name=$1 limit=$2
	shift 2
	run_suite "$name" checks "$limit" "$@"
}

ASAN_FW=build/asan/bin/phsm-fw
[ -x "$ASAN_FW" ] || ASAN_FW=build/bin/phsm-fw
# Sanitizer reports must fail loudly and be seen in the logs.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "phsm test run: $SUITES"
if want build; then
	build_tree normal
	build_tree asan SAN=1
	ASAN_FW=build/asan/bin/phsm-fw
	[ -x "$ASAN_FW" ] || ASAN_FW=build/bin/phsm-fw
fi

if want unit; then
	unit_suite normal build
	unit_suite asan build/asan
fi

if want pkcs11; then
	pkcs11_suite normal build
	pkcs11_suite asan build/asan
fi

if want interop; then
	# The clients are ordinary programs, so they load the normal library;
	# the daemon behind them is the sanitizer build.
	for t in pkcs11-tool openssl pykcs11 p11-kit phsmctl; do
		PHSM_FW=$TOP/$ASAN_FW PHSM_MODULE=$TOP/build/lib/libphsm-pkcs11.so \
			script_suite "interop/$t" 900 "tests/interop/$t.sh"
	done
fi

if want crash; then
	PHSM_FW=$TOP/build/bin/phsm-fw \
		PHSM_MODULE=$TOP/build/lib/libphsm-pkcs11.so \
		CRASH_CLIENT=$TOP/build/tests/crash-client \
		script_suite crash 600 tests/crash/crash.sh 10
fi

if want clone; then
	# The tool is an ordinary program (normal library); the cards are
	# the sanitizer build.
	PHSM_FW=$TOP/$ASAN_FW PHSM_MODULE=$TOP/build/lib/libphsm-pkcs11.so \
		CLONE_TOOL=$TOP/build/tests/clone-tool \
		script_suite clone 600 tests/clone/clone.sh
fi

if want malformed; then
	PHSM_FW=$TOP/$ASAN_FW script_suite malformed 300 \
		tests/malformed/malformed.sh
	PHSM_FW=$TOP/$ASAN_FW script_suite malformed/shm 300 \
		tests/malformed/shm_malformed.sh
fi

if want fuzz; then
	if [ -x build/fuzz/fuzz-decoder ]; then
		script_suite fuzz $((FUZZ_SECONDS + 120)) \
			tests/fuzz/fuzz.sh "$FUZZ_SECONDS"
	else
		missing fuzz "build/fuzz/fuzz-decoder"
	fi
fi

# The kernel module: W=1 builds against both kernels, sparse, checkpatch.
if want driver; then
	for k in 6.1 6.12; do
		run_suite "driver/build/$k" make 900 make --no-print-directory module KVER=$k
		run_suite "driver/sparse/$k" make 900 make --no-print-directory module-sparse KVER=$k
	done
	run_suite driver/checkpatch make 300 make --no-print-directory module-checkpatch
fi

# The QEMU device: the bridge protocol and the device driven by qtest.
if want qemu; then
	PHSM_FW=$TOP/$ASAN_FW run_suite qemu totals 1800 tests/qemu/run.sh
fi

# The whole device path in VMs with Debian's 6.1 and 6.12 kernels; every
# test is listed by name.
if want vm; then
	run_suite vm totals 3600 make --no-print-directory vm-check
	grep -E '^ +(PASS|FAIL|SKIP) ' "$LOGS/vm.log" || true
fi

echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed" | tee "$SUMMARY"
[ "$TOTAL_FAILED" -eq 0 ]
