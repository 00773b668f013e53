#!/bin/bash
# SPDX-License-Identifier: MIT
# Interoperability with OpenSC's pkcs11-tool: the library as a real
# client sees it.  Starts its own phsm-fw; every step is one check.
#
# Usage: tests/interop/pkcs11-tool.sh   (PHSM_FW, PHSM_MODULE: tests/lib.sh)
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

SO_PIN=87654321
PIN=12345678
SLOT=0
W=$PHSM_TMP

p11() {
	pkcs11-tool --module "$PHSM_MODULE" "$@"
}

# Run pkcs11-tool and require a pattern in its output.
p11_grep() {
	local pattern=$1
	shift
	p11 "$@" >"$W/out" 2>&1 || { cat "$W/out"; return 1; }
	cat "$W/out"
	grep -qE "$pattern" "$W/out"
}

user() {
	p11 --slot "$SLOT" --login --pin "$PIN" "$@"
}

# pkcs11-tool --test exits 0 even when tests fail; it counts its errors.
self_test() {
	user --test >"$W/test.out" 2>&1
	local rc=$?
	cat "$W/test.out"
	[ "$rc" -eq 0 ] && grep -q '^No errors' "$W/test.out"
}

pubkey_pem() {
	user --read-object --type pubkey --id "$1" -o "$W/pub$1.der" &&
		openssl pkey -pubin -inform DER -in "$W/pub$1.der" -out "$W/pub$1.pem"
}

change_pin_and_back() {
	p11 --slot "$SLOT" --login --pin "$PIN" --change-pin --new-pin 99999999 &&
		p11 --slot "$SLOT" --login --pin 99999999 --change-pin --new-pin "$PIN"
}

objects_listed() {
	user -O >"$W/objs" 2>&1 || { cat "$W/objs"; return 1; }
	cat "$W/objs"
	grep -q rsa1 "$W/objs" && grep -q ec1 "$W/objs" && grep -q aes1 "$W/objs"
}

digest_matches() {
	p11 --slot "$SLOT" --hash -m SHA256 -i "$W/data" -o "$W/h" &&
		cmp "$W/h" "$W/data.sha256"
}

random_64() {
	p11 --slot "$SLOT" --generate-random 64 -o "$W/rnd" &&
		[ "$(stat -c %s "$W/rnd")" -eq 64 ]
}

# The key values must stay on the card: the AES key's CKA_VALUE cannot be
# read, and the private keys are listed as sensitive.
secret_unreadable() {
	! user --read-object --type secrkey --id 03 -o "$W/secret"
}

private_sensitive() {
	user -O --type privkey >"$W/out" 2>&1 || { cat "$W/out"; return 1; }
	cat "$W/out"
	[ "$(grep -c '^Private Key Object' "$W/out")" -eq 2 ] &&
		[ "$(grep -c 'Access: *sensitive' "$W/out")" -eq 2 ]
}

wrong_pin_refused() {
	p11 --slot "$SLOT" --login --pin 00000000 -O >"$W/out" 2>&1
	cat "$W/out"
	grep -q CKR_PIN_INCORRECT "$W/out"
}

differs() {
	! cmp -s "$1" "$2"
}

ec_self_test() {
	user --test-ec --key-type EC:prime256v1 >"$W/tec" 2>&1
	local rc=$?
	cat "$W/tec"
	[ "$rc" -eq 0 ] && ! grep -qiE "error|fail" "$W/tec"
}

fw_start interop-p11 || exit 1
export PHSM_FW_SOCKETS=$FW_SOCK
head -c 1000 /dev/urandom >"$W/data"
openssl dgst -sha256 -binary "$W/data" >"$W/data.sha256"
head -c 100 /dev/urandom >"$W/plain"
IV=000102030405060708090a0b0c0d0e0f

step "-L lists the slots" p11_grep "Slot 0 .*" -L
step "-I shows the library" p11_grep "Cryptoki version 3\\." -I
step "-M lists mechanisms" p11_grep "SHA256-RSA-PKCS|RSA-PKCS" --slot "$SLOT" -M
step "--init-token" p11 --slot "$SLOT" --init-token --label phsm-interop \
	--so-pin "$SO_PIN"
step "token is initialised" p11_grep "token initialized" -L
step "--init-pin" p11 --slot "$SLOT" --login --login-type so \
	--so-pin "$SO_PIN" --init-pin --pin "$PIN"
step "--change-pin and back" change_pin_and_back
step "RSA 2048 key pair" user --keypairgen --key-type rsa:2048 \
	--label rsa1 --id 01 --usage-sign --usage-decrypt
step "EC P-256 key pair" user --keypairgen --key-type EC:prime256v1 \
	--label ec1 --id 02 --usage-sign
step "AES-256 key" user --keygen --key-type AES:32 --label aes1 --id 03 \
	--usage-decrypt
step "--list-objects shows the keys" objects_listed

step "RSA sign (SHA256-RSA-PKCS)" user --sign -m SHA256-RSA-PKCS --id 01 \
	-i "$W/data" -o "$W/rsa.sig"
step "RSA verify with pkcs11-tool" user --verify -m SHA256-RSA-PKCS --id 01 \
	-i "$W/data" --signature-file "$W/rsa.sig"
step "RSA public key export" pubkey_pem 01
step "RSA signature verifies with openssl" openssl dgst -sha256 \
	-verify "$W/pub01.pem" -signature "$W/rsa.sig" "$W/data"
step "RSA-PSS sign" user --sign -m SHA256-RSA-PKCS-PSS --id 01 \
	-i "$W/data" -o "$W/pss.sig"
step "RSA-PSS signature verifies with openssl" openssl dgst -sha256 \
	-verify "$W/pub01.pem" -sigopt rsa_padding_mode:pss \
	-sigopt rsa_pss_saltlen:32 -signature "$W/pss.sig" "$W/data"

step "ECDSA sign" user --sign -m ECDSA --id 02 --signature-format openssl \
	-i "$W/data.sha256" -o "$W/ec.sig"
step "ECDSA verify with pkcs11-tool" user --verify -m ECDSA --id 02 \
	--signature-format openssl -i "$W/data.sha256" \
	--signature-file "$W/ec.sig"
step "EC public key export" pubkey_pem 02
step "ECDSA signature verifies with openssl" openssl dgst -sha256 \
	-verify "$W/pub02.pem" -signature "$W/ec.sig" "$W/data"

step "AES-CBC-PAD encrypt" user --encrypt -m AES-CBC-PAD --id 03 \
	--iv "$IV" -i "$W/plain" -o "$W/ct"
step "AES-CBC-PAD decrypt" user --decrypt -m AES-CBC-PAD --id 03 \
	--iv "$IV" -i "$W/ct" -o "$W/pt"
step "AES round trip gives the plaintext back" cmp "$W/plain" "$W/pt"
step "ciphertext is not the plaintext" differs "$W/plain" "$W/ct"

step "SHA-256 digest matches openssl" digest_matches
step "--generate-random 64" random_64
step "secret key value is not readable" secret_unreadable
step "private keys are sensitive" private_sensitive
step "wrong PIN is refused" wrong_pin_refused
step "pkcs11-tool --test passes" self_test
step "pkcs11-tool --test-ec passes" ec_self_test
step "key deletion" user --delete-object --type secrkey --id 03

fw_stop_check "$FW_PID" "$FW_LOG"
finish
