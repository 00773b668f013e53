#!/bin/bash
# SPDX-License-Identifier: MIT
# Interoperability with OpenSSL 3 through libp11's engine
# (libengine-pkcs11-openssl): certificate requests, self-signed
# certificates and file signatures made with keys that never leave the
# token, checked by plain openssl.  Starts its own phsm-fw.
#
# Usage: tests/interop/openssl.sh   (PHSM_FW, PHSM_MODULE: tests/lib.sh)
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

SO_PIN=87654321
PIN=12345678
TOKEN=phsm-ossl
W=$PHSM_TMP
# The engine finds the module here.
export PKCS11_MODULE_PATH=$PHSM_MODULE

p11() {
	pkcs11-tool --module "$PHSM_MODULE" --slot 0 "$@"
}

key_uri() {
	echo "pkcs11:token=$TOKEN;object=$1;type=private?pin-value=$PIN"
}

# make_csr KEY: a certificate request signed by the token's key.
make_csr() {
	openssl req -new -engine pkcs11 -keyform engine -key "$(key_uri "$1")" \
		-sha256 -subj "/CN=phsm $1" -out "$W/$1.csr"
}

# make_selfsigned KEY: a self-signed CA certificate.
make_selfsigned() {
	openssl req -new -x509 -days 30 -engine pkcs11 -keyform engine \
		-key "$(key_uri "$1")" -sha256 -subj "/CN=phsm $1 CA" \
		-out "$W/$1.crt"
}

csr_verifies() {
	openssl req -in "$W/$1.csr" -verify -noout 2>&1 | tee "$W/out"
	grep -q "verify OK" "$W/out"
}

crt_verifies() {
	openssl x509 -in "$W/$1.crt" -noout -text >/dev/null &&
		openssl verify -CAfile "$W/$1.crt" "$W/$1.crt"
}

# The EC key's request, signed by the RSA CA key on the token.
issue_cert() {
	openssl x509 -req -in "$W/eckey.csr" -engine pkcs11 \
		-CAkeyform engine -CAkey "$(key_uri rsakey)" -CA "$W/rsakey.crt" \
		-CAcreateserial -CAserial "$W/serial" -days 30 -sha256 \
		-out "$W/issued.crt" &&
		openssl verify -CAfile "$W/rsakey.crt" "$W/issued.crt"
}

# sign_file KEY: openssl dgst signs with the token's key.
sign_file() {
	openssl dgst -engine pkcs11 -keyform engine -sign "$(key_uri "$1")" \
		-sha256 -out "$W/$1.sig" "$W/data"
}

# export_pub KEY ID: the public key, read from the token, as PEM.
export_pub() {
	p11 --read-object --type pubkey --id "$2" -o "$W/$1.pub.der" &&
		openssl pkey -pubin -inform DER -in "$W/$1.pub.der" \
			-out "$W/$1.pub.pem"
}

sig_verifies() {
	openssl dgst -sha256 -verify "$W/$1.pub.pem" -signature "$W/$1.sig" \
		"$W/data"
}

sig_rejects_other_data() {
	! openssl dgst -sha256 -verify "$W/$1.pub.pem" -signature "$W/$1.sig" \
		"$W/other"
}

fw_start interop-ossl || exit 1
export PHSM_FW_SOCKETS=$FW_SOCK
head -c 4096 /dev/urandom >"$W/data"
head -c 4096 /dev/urandom >"$W/other"

step "token set up" p11 --init-token --label "$TOKEN" --so-pin "$SO_PIN"
step "user PIN set" p11 --login --login-type so --so-pin "$SO_PIN" \
	--init-pin --pin "$PIN"
step "RSA key on the token" p11 --login --pin "$PIN" --keypairgen \
	--key-type rsa:2048 --label rsakey --id 10 --usage-sign
step "EC key on the token" p11 --login --pin "$PIN" --keypairgen \
	--key-type EC:prime256v1 --label eckey --id 11 --usage-sign

for key in rsakey eckey; do
	step "$key: CSR through the engine" make_csr "$key"
	step "$key: openssl req -verify" csr_verifies "$key"
	step "$key: self-signed certificate through the engine" \
		make_selfsigned "$key"
	step "$key: openssl verify of the certificate" crt_verifies "$key"
done
step "certificate for the EC key issued by the RSA key" issue_cert

for key in rsakey:10 eckey:11; do
	name=${key%:*}
	step "$name: openssl dgst -sign through the engine" sign_file "$name"
	step "$name: public key exported with pkcs11-tool" export_pub "$name" \
		"${key#*:}"
	step "$name: openssl dgst -verify" sig_verifies "$name"
	step "$name: signature fails on other data" sig_rejects_other_data "$name"
done

fw_stop_check "$FW_PID" "$FW_LOG"
finish
