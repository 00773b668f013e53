// SPDX-License-Identifier: MIT
/*
 * PIN records: PBKDF2-HMAC-SHA256 over a random 16-byte salt, compared in
 * constant time, with a retry counter that locks the PIN after
 * FW_PIN_TRIES wrong tries in a row.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "internal.h"

bool fw_pin_len_ok(size_t len)
{
	return len >= FW_PIN_MIN && len <= FW_PIN_MAX;
}

CK_RV fw_pin_derive(const uint8_t *pin, size_t len, const uint8_t *salt,
		    uint32_t iterations, uint8_t out[FW_HASH_LEN])
{
	if (len > FW_PIN_MAX || iterations == 0 || iterations > INT32_MAX)
		return CKR_GENERAL_ERROR;
	if (PKCS5_PBKDF2_HMAC((const char *)pin, (int)len, salt, FW_SALT_LEN,
			      (int)iterations, EVP_sha256(), FW_HASH_LEN,
			      out) != 1)
		return CKR_DEVICE_ERROR;
	return CKR_OK;
}

CK_RV fw_pin_make(struct fw_pin *p, const uint8_t *pin, size_t len,
		  uint32_t iterations)
{
	struct fw_pin n = { .set = true, .iterations = iterations };
	CK_RV rv;

	if (RAND_bytes(n.salt, sizeof(n.salt)) != 1)
		return CKR_DEVICE_ERROR;
	rv = fw_pin_derive(pin, len, n.salt, iterations, n.hash);
	if (rv == CKR_OK)
		*p = n;
	OPENSSL_cleanse(&n, sizeof(n));
	return rv;
}

bool fw_pin_equal(const struct fw_pin *p, const uint8_t hash[FW_HASH_LEN])
{
	return p->set && CRYPTO_memcmp(p->hash, hash, FW_HASH_LEN) == 0;
}

bool fw_pin_locked(const struct fw_pin *p)
{
	return p->fails >= FW_PIN_TRIES;
}

/* The CK_TOKEN_INFO flags that describe this PIN's retry counter. */
CK_FLAGS fw_pin_flags(const struct fw_pin *p, bool so)
{
	CK_FLAGS f = 0;

	if (p->fails >= FW_PIN_TRIES)
		f |= so ? CKF_SO_PIN_LOCKED : CKF_USER_PIN_LOCKED;
	else if (p->fails == FW_PIN_TRIES - 1)
		f |= so ? CKF_SO_PIN_FINAL_TRY : CKF_USER_PIN_FINAL_TRY;
	if (p->fails > 0 && p->fails < FW_PIN_TRIES)
		f |= so ? CKF_SO_PIN_COUNT_LOW : CKF_USER_PIN_COUNT_LOW;
	return f;
}
