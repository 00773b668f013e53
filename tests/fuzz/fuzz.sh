#!/bin/bash
# SPDX-License-Identifier: MIT
# Bounded libFuzzer run of the firmware's request handling.
#
# Usage: tests/fuzz/fuzz.sh [SECONDS]   (default 60)
# The seed corpus is written afresh by build/tests/fuzz-seeds; what the
# fuzzer finds is kept in build/fuzz/corpus, crashes in build/fuzz/artifacts
# (reproduce one with: build/fuzz/fuzz-decoder build/fuzz/artifacts/crash-...).
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

SECONDS_MAX=${1:-60}
FUZZER=${FUZZER:-$PHSM_TOP/build/fuzz/fuzz-decoder}
SEEDER=${FUZZ_SEEDS:-$PHSM_TOP/build/tests/fuzz-seeds}
OUT=$PHSM_TOP/build/fuzz

mkdir -p "$OUT/corpus" "$OUT/artifacts" "$PHSM_TMP/seeds"
step "seed corpus generated" "$SEEDER" "$PHSM_TMP/seeds"

# Every input opens a card on a new state directory under $TMPDIR; on
# tmpfs that costs a fifth of what it costs on disk (no real fsync).
if FUZZ_TMP=$(mktemp -d /dev/shm/phsm-fuzz.XXXXXX 2>/dev/null); then
	PHSM_CLEAN_DIRS+=("$FUZZ_TMP")
	export TMPDIR=$FUZZ_TMP
else
	export TMPDIR=$PHSM_TMP
fi
"$FUZZER" -max_total_time="$SECONDS_MAX" -timeout=20 -rss_limit_mb=4096 \
	-max_len=16384 -print_final_stats=1 \
	-artifact_prefix="$OUT/artifacts/" \
	"$OUT/corpus" "$PHSM_TMP/seeds" 2>&1 | tail -n 60
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 0 ]; then
	pass "fuzz-decoder: no crash in ${SECONDS_MAX} s"
else
	fail "fuzz-decoder exit $rc (crash, leak or timeout; see $OUT/artifacts)"
fi
finish
