#!/bin/bash
# SPDX-License-Identifier: MIT
# `make demo`: the main job of phsm, with real clients.
#
# Starts phsm-fw (the simulated card) on a temporary state directory,
# then uses ordinary PKCS#11 applications through libphsm-pkcs11.so:
# pkcs11-tool sets up a token and makes keys, signatures made on the card
# are checked by the openssl command line, AES encrypts and decrypts on
# the card, and OpenSSL's pkcs11 engine issues a certificate with a key
# that never leaves the card.  Stops the daemon and cleans up at the end;
# exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PHSM_DEMO_NO_DEPS:-}" ]; then
	make -s deps
fi
make -s -j"$(nproc 2>/dev/null || echo 2)" all

# The demo uses the daemon's default PBKDF2 rounds, unlike the tests.
PHSM_TEST_PIN_ITERATIONS=
# shellcheck source=tests/lib.sh
. tests/lib.sh
set -e

MODULE=$PHSM_MODULE
SO_PIN=87654321
PIN=12345678
W=$PHSM_TMP
STEP=0

if [ -t 1 ]; then
	BOLD=$(printf '\033[1m') DIM=$(printf '\033[2m') OFF=$(printf '\033[0m')
else
	BOLD='' DIM='' OFF=''
fi

say() {
	STEP=$((STEP + 1))
	printf '\n%s%d. %s%s\n' "$BOLD" "$STEP" "$*" "$OFF"
}

# show CMD...: print the command as one would type it (module path and
# work directory shortened), then run it.
show() {
	local arg shown=""
	for arg in "$@"; do
		arg=${arg//$MODULE/\$MODULE}
		arg=${arg//$W\//}
		case $arg in
		*[\ \;\?\&\*]*) arg="'$arg'" ;;
		esac
		shown+=" $arg"
	done
	printf '%s$%s%s\n' "$DIM" "$shown" "$OFF"
	"$@"
}

p11() {
	show pkcs11-tool --module "$MODULE" --slot 0 "$@"
}

failed() {
	printf '\n%sDEMO FAILED%s at step %d (line %d)\n' "$BOLD" "$OFF" \
		"$STEP" "$1" >&2
}
trap 'failed $LINENO' ERR

say "Start the card: phsm-fw with a fresh state directory"
fw_start demo
export PHSM_FW_SOCKETS=$FW_SOCK
echo "phsm-fw running (pid $FW_PID), socket \$PHSM_FW_SOCKETS=$FW_SOCK"
echo "the library is \$MODULE=$MODULE"
p11 --show-info

say "The card's partitions are PKCS#11 slots; slot 0 has no token yet"
p11 --list-slots

say "Initialise the token in slot 0 (sets the security officer's PIN)"
p11 --init-token --label demo-token --so-pin "$SO_PIN"

say "As security officer, set the user's PIN"
p11 --login --login-type so --so-pin "$SO_PIN" --init-pin --pin "$PIN"

say "Generate an RSA-2048 and an EC P-256 key pair on the card"
p11 --login --pin "$PIN" --keypairgen --key-type rsa:2048 \
	--label demo-rsa --id 01 --usage-sign
p11 --login --pin "$PIN" --keypairgen --key-type EC:prime256v1 \
	--label demo-ec --id 02 --usage-sign

say "Sign a file with the RSA key (SHA256-RSA-PKCS, computed on the card)"
echo "phsm demo: signed on the card, verified by openssl" >"$W/message.txt"
p11 --login --pin "$PIN" --sign -m SHA256-RSA-PKCS --id 01 \
	-i "$W/message.txt" -o "$W/message.rsa.sig"

say "Export the public key and verify the signature with plain openssl"
p11 --read-object --type pubkey --id 01 -o "$W/rsa.pub.der"
show openssl pkey -pubin -inform DER -in "$W/rsa.pub.der" -out "$W/rsa.pub.pem"
show openssl dgst -sha256 -verify "$W/rsa.pub.pem" \
	-signature "$W/message.rsa.sig" "$W/message.txt"

say "The same with ECDSA: the card signs the SHA-256 digest"
show openssl dgst -sha256 -binary -out "$W/message.sha256" "$W/message.txt"
p11 --login --pin "$PIN" --sign -m ECDSA --id 02 --signature-format openssl \
	-i "$W/message.sha256" -o "$W/message.ec.sig"
p11 --read-object --type pubkey --id 02 -o "$W/ec.pub.der"
show openssl pkey -pubin -inform DER -in "$W/ec.pub.der" -out "$W/ec.pub.pem"
show openssl dgst -sha256 -verify "$W/ec.pub.pem" \
	-signature "$W/message.ec.sig" "$W/message.txt"

say "Encrypt and decrypt with an AES-256 key on the card (AES-CBC-PAD)"
p11 --login --pin "$PIN" --keygen --key-type AES:32 --label demo-aes \
	--id 03 --usage-decrypt
head -c 1000 /dev/urandom >"$W/secret.bin"
IV=00112233445566778899aabbccddeeff
p11 --login --pin "$PIN" --encrypt -m AES-CBC-PAD --id 03 --iv "$IV" \
	-i "$W/secret.bin" -o "$W/secret.enc"
p11 --login --pin "$PIN" --decrypt -m AES-CBC-PAD --id 03 --iv "$IV" \
	-i "$W/secret.enc" -o "$W/secret.dec"
show cmp "$W/secret.bin" "$W/secret.dec"
echo "1000 bytes -> $(stat -c %s "$W/secret.enc") bytes of ciphertext -> the same 1000 bytes back"

say "Keys stay on the card: key values cannot be read out"
if p11 --login --pin "$PIN" --read-object --type secrkey --id 03 \
	-o "$W/stolen.bin"; then
	echo "ERROR: the card gave out a secret key" >&2
	false
fi
echo "(refused, as it must be)"
p11 --login --pin "$PIN" --list-objects --type privkey | tee "$W/privkeys.txt"
grep -q 'Access: *sensitive' "$W/privkeys.txt"

say "Make a self-signed certificate with OpenSSL's pkcs11 engine"
export PKCS11_MODULE_PATH=$MODULE
KEY="pkcs11:token=demo-token;object=demo-rsa;type=private?pin-value=$PIN"
show openssl req -new -x509 -days 365 -sha256 -engine pkcs11 -keyform engine \
	-key "$KEY" -subj "/O=phsm/CN=phsm demo CA" -out "$W/demo-ca.crt"
show openssl x509 -in "$W/demo-ca.crt" -noout -subject -issuer -dates
show openssl verify -CAfile "$W/demo-ca.crt" "$W/demo-ca.crt"

say "Store the certificate on the token next to its key and list the objects"
show openssl x509 -in "$W/demo-ca.crt" -outform DER -out "$W/demo-ca.der"
p11 --login --pin "$PIN" --write-object "$W/demo-ca.der" --type cert \
	--id 01 --label demo-rsa
p11 --login --pin "$PIN" --list-objects

say "Stop the card"
fw_stop "$FW_PID" || [ $? -eq 143 ]
trap - ERR
printf '\n%sDemo complete: every step succeeded.%s\n' "$BOLD" "$OFF"
