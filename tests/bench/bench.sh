#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench: one run of tests/bench/bench.c against a fresh phsm-fw, a
# fresh SoftHSMv2 token and OpenSSL; prints the table and writes
# build/bench/results.json.  Everything it starts is stopped by the trap
# of tests/lib.sh, however the script ends.
set -euo pipefail

cd "$(dirname "$0")/../.."
BENCH_BIN=${BENCH_BIN:-build/tests/bench}
BENCH_SECONDS=${BENCH_SECONDS:-2}
BENCH_JSON=${BENCH_JSON:-build/bench/results.json}

if ! dpkg -s softhsm2 >/dev/null 2>&1; then
	echo "bench: installing softhsm2" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y softhsm2 >&2
fi
SOFTHSM=
for m in /usr/lib/softhsm/libsofthsm2.so \
	 /usr/lib/"$(uname -m)"-linux-gnu/softhsm/libsofthsm2.so; do
	if [ -f "$m" ]; then
		SOFTHSM=$m
		break
	fi
done
if [ -z "$SOFTHSM" ]; then
	echo "bench: libsofthsm2.so not found" >&2
	exit 1
fi

# A quick PIN hash for the set-up; it does not touch the measured paths.
PHSM_TEST_PIN_ITERATIONS=1000
# shellcheck source=tests/lib.sh
. tests/lib.sh

fw_start card0
export PHSM_FW_SOCKETS=$FW_SOCK

mkdir -p "$PHSM_TMP/softhsm/tokens"
cat >"$PHSM_TMP/softhsm/softhsm2.conf" <<CONF
directories.tokendir = $PHSM_TMP/softhsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF=$PHSM_TMP/softhsm/softhsm2.conf

mkdir -p "$(dirname "$BENCH_JSON")"
# PHSM_TRANSPORT=socket measures the library's fallback transport.
transport=${PHSM_TRANSPORT:-shared-memory}
echo "bench: $BENCH_SECONDS s per cell, 3 back-ends x 7 operations x 2" \
	"thread counts; phsm through the $transport transport" >&2
"$BENCH_BIN" --module "$PHSM_MODULE" --module "$SOFTHSM" --openssl \
	--seconds "$BENCH_SECONDS" --json "$BENCH_JSON"
echo "bench: results in $BENCH_JSON"

# The table's phsm SHA-256 is hashed in the library (no key, no secret:
# userlib/digest.c).  The card's own digest path, for comparison.
card_json=${BENCH_JSON%.json}-digest-card.json
echo "bench: phsm SHA-256 4 KiB once more with PHSM_DIGEST=card" >&2
card_row=$(PHSM_DIGEST=card "$BENCH_BIN" --module "$PHSM_MODULE" \
	--ops sha256_4k --seconds "$BENCH_SECONDS" --json "$card_json" |
	awk '/^SHA-256 4 KiB/ { print $4, $5 }') || card_row=
read -r card_1t card_2t <<<"${card_row:-n/a n/a}"
printf '%-24s %12s %12s   (phsm 1t, 2t: the digest computed on the card,' \
	"SHA-256 4 KiB, card" "$card_1t" "$card_2t"
printf ' PHSM_DIGEST=card; above: in the library)\n\n'
echo "bench: card-path digest in $card_json"
