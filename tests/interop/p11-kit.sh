#!/bin/bash
# SPDX-License-Identifier: MIT
# Interoperability with p11-kit and GnuTLS's p11tool: the library as a
# registered p11-kit module, through p11-kit's proxy module, and as a
# p11tool provider.  Starts its own phsm-fw.
#
# Usage: tests/interop/p11-kit.sh   (PHSM_FW, PHSM_MODULE: tests/lib.sh)
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

SO_PIN=87654321
PIN=12345678
TOKEN=phsm-p11kit
W=$PHSM_TMP
PROXY=/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so

# Register the module for p11-kit without touching the system's config.
# p11-kit reads ~/.config/pkcs11/modules, but not when run as root; root
# gets a private mount namespace in which our config directory stands in
# for the system's.
MODDIR=$W/modules
mkdir -p "$MODDIR"
cat >"$MODDIR/phsm.module" <<EOF
module: $PHSM_MODULE
critical: yes
EOF
SYS_MODDIR=/usr/share/p11-kit/modules

# with_config CMD...: run CMD with only our module configured.
with_config() {
	if [ "$(id -u)" -ne 0 ]; then
		mkdir -p "$W/home/.config/pkcs11"
		ln -sfn "$MODDIR" "$W/home/.config/pkcs11/modules"
		HOME=$W/home "$@"
	else
		# shellcheck disable=SC2016 # expanded by the inner shell
		unshare -m sh -c 'mount --make-rprivate / &&
			mount --bind "$0" "$1" && shift && exec "$@"' \
			"$MODDIR" "$SYS_MODDIR" "$@"
	fi
}

config_usable() {
	[ "$(id -u)" -ne 0 ] || with_config true 2>/dev/null
}

# run_grep PATTERN CMD...: CMD succeeds and prints PATTERN.
run_grep() {
	local pattern=$1
	shift
	"$@" >"$W/out" 2>&1 || { cat "$W/out"; return 1; }
	cat "$W/out"
	grep -qE "$pattern" "$W/out"
}

pin_and_key() {
	pkcs11-tool --module "$PHSM_MODULE" --slot 0 --login --login-type so \
		--so-pin "$SO_PIN" --init-pin --pin "$PIN" &&
		pkcs11-tool --module "$PHSM_MODULE" --slot 0 --login --pin "$PIN" \
			--keypairgen --key-type EC:prime256v1 --label p11kit-ec --id 21
}

fw_start interop-p11kit || exit 1
export PHSM_FW_SOCKETS=$FW_SOCK

step "token set up" pkcs11-tool --module "$PHSM_MODULE" --slot 0 \
	--init-token --label "$TOKEN" --so-pin "$SO_PIN"
step "user PIN and a key" pin_and_key
if config_usable; then
	step "p11-kit list-modules shows the module and its token" \
		run_grep "token: $TOKEN" with_config p11-kit list-modules
	if [ -e "$PROXY" ]; then
		step "pkcs11-tool through p11-kit-proxy sees the token" \
			run_grep "$TOKEN" with_config pkcs11-tool --module "$PROXY" -L
	fi
else
	echo "SKIP: p11-kit module config (root without mount namespaces)"
fi
step "p11tool --list-tokens" \
	run_grep "Label: $TOKEN" p11tool --provider "$PHSM_MODULE" --list-tokens
step "p11tool --list-privkeys after login" \
	run_grep "p11kit-ec" env GNUTLS_PIN="$PIN" p11tool \
	--provider "$PHSM_MODULE" --login --list-privkeys "pkcs11:token=$TOKEN"

fw_stop_check "$FW_PID" "$FW_LOG"
finish
