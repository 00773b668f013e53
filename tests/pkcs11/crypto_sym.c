// SPDX-License-Identifier: MIT
/*
 * Symmetric mechanisms and the rules of operations (base spec 5.2,
 * 5.8-5.16): digests, HMAC, AES in every mode phsm offers, CMAC, AES-GCM
 * through the single-part, multi-part and message-based APIs.  Every
 * result is compared with OpenSSL computing the same thing from the same
 * key material, which the tests create on the token with known values.
 */
#include "suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>

/* ---- OpenSSL references ----------------------------------------------- */

static size_t ossl_digest(const char *md, const uint8_t *in, size_t len,
			  uint8_t *out)
{
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(in, len, out, &n, EVP_get_digestbyname(md), NULL), 1);
	return n;
}

static size_t ossl_mac(const char *mac, const char *sub, const uint8_t *key,
		       size_t klen, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t n = 0;

	assert_non_null(EVP_Q_mac(NULL, mac, NULL, sub, NULL, key, klen, in, len,
				  out, 64, &n));
	return n;
}

/* AES in a classic mode; len must suit the mode. */
static size_t ossl_aes(const char *mode, const uint8_t *key, size_t klen,
		       const uint8_t *iv, bool pad, bool enc, const uint8_t *in,
		       size_t len, uint8_t *out)
{
	char name[32];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *cipher;
	int n1 = 0, n2 = 0;

	snprintf(name, sizeof(name), "AES-%zu-%s", klen * 8, mode);
	cipher = EVP_get_cipherbyname(name);
	assert_non_null(cipher);
	assert_non_null(c);
	assert_int_equal(EVP_CipherInit_ex(c, cipher, NULL, key, iv, enc), 1);
	EVP_CIPHER_CTX_set_padding(c, pad);
	assert_int_equal(EVP_CipherUpdate(c, out, &n1, in, (int)len), 1);
	assert_int_equal(EVP_CipherFinal_ex(c, out + n1, &n2), 1);
	EVP_CIPHER_CTX_free(c);
	return (size_t)(n1 + n2);
}

/* AES-GCM encryption: ciphertext then tag, as PKCS#11's C_Encrypt. */
static size_t ossl_gcm_encrypt(const uint8_t *key, size_t klen,
			       const uint8_t *iv, size_t ivlen,
			       const uint8_t *aad, size_t aadlen,
			       const uint8_t *in, size_t len, size_t taglen,
			       uint8_t *out)
{
	char name[32];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0;

	snprintf(name, sizeof(name), "AES-%zu-GCM", klen * 8);
	assert_non_null(c);
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_get_cipherbyname(name), NULL,
					    NULL, NULL), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, (int)ivlen,
					     NULL), 1);
	assert_int_equal(EVP_EncryptInit_ex(c, NULL, NULL, key, iv), 1);
	if (aadlen)
		assert_int_equal(EVP_EncryptUpdate(c, NULL, &m, aad, (int)aadlen), 1);
	assert_int_equal(EVP_EncryptUpdate(c, out, &n, in, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, out + n, &m), 1);
	n += m;
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, (int)taglen,
					     out + n), 1);
	EVP_CIPHER_CTX_free(c);
	return (size_t)n + taglen;
}

/* ---- token helpers ---------------------------------------------------- */

static CK_OBJECT_HANDLE aes_key(CK_SESSION_HANDLE h, const uint8_t *v,
				size_t len)
{
	struct tmpl t;

	tmpl_init(&t);
	tmpl_bool(&t, CKA_ENCRYPT, true);
	tmpl_bool(&t, CKA_DECRYPT, true);
	tmpl_bool(&t, CKA_SIGN, true);
	tmpl_bool(&t, CKA_VERIFY, true);
	return create_secret(h, CKK_AES, v, len, &t);
}

static CK_OBJECT_HANDLE hmac_key(CK_SESSION_HANDLE h, const uint8_t *v,
				 size_t len)
{
	struct tmpl t;

	tmpl_init(&t);
	tmpl_bool(&t, CKA_SIGN, true);
	tmpl_bool(&t, CKA_VERIFY, true);
	return create_secret(h, CKK_GENERIC_SECRET, v, len, &t);
}

/* One-shot en- or decryption with a size query first; returns the length. */
static CK_ULONG crypt1(CK_SESSION_HANDLE h, CK_MECHANISM *m,
		       CK_OBJECT_HANDLE k, bool enc, const uint8_t *in,
		       CK_ULONG len, uint8_t *out, CK_ULONG cap)
{
	CK_C_Encrypt once = enc ? P11->C_Encrypt : P11->C_Decrypt;
	CK_ULONG n = 0;

	assert_rv((enc ? P11->C_EncryptInit : P11->C_DecryptInit)(h, m, k), CKR_OK);
	assert_rv(once(h, (CK_BYTE_PTR)in, len, NULL, &n), CKR_OK);
	assert_true(n <= cap);
	assert_rv(once(h, (CK_BYTE_PTR)in, len, out, &n), CKR_OK);
	return n;
}

static CK_ULONG encrypt1(CK_SESSION_HANDLE h, CK_MECHANISM *m,
			 CK_OBJECT_HANDLE k, const uint8_t *in, CK_ULONG len,
			 uint8_t *out, CK_ULONG cap)
{
	return crypt1(h, m, k, true, in, len, out, cap);
}

/* Multi-part, in uneven pieces; returns the total output. */
static const CK_ULONG pieces[] = { 1, 15, 17, 0, 33, 100 };

static CK_ULONG crypt_parts(CK_SESSION_HANDLE h, CK_MECHANISM *m,
			    CK_OBJECT_HANDLE k, bool enc, const uint8_t *in,
			    CK_ULONG len, uint8_t *out, CK_ULONG cap)
{
	CK_ULONG done = 0, off = 0, n;

	assert_rv((enc ? P11->C_EncryptInit : P11->C_DecryptInit)(h, m, k), CKR_OK);
	for (size_t i = 0; off < len; i = (i + 1) % ARRAY_SIZE(pieces)) {
		CK_ULONG part = pieces[i] < len - off ? pieces[i] : len - off;

		n = cap - done;
		assert_rv((enc ? P11->C_EncryptUpdate : P11->C_DecryptUpdate)(
				  h, (CK_BYTE_PTR)in + off, part, out + done, &n), CKR_OK);
		assert_true(n <= cap - done);
		done += n;
		off += part;
	}
	n = cap - done;
	assert_rv((enc ? P11->C_EncryptFinal : P11->C_DecryptFinal)(h, out + done, &n),
		  CKR_OK);
	return done + n;
}

/*
 * The token must turn plain into exactly want (the reference result)
 * single- and multi-part, and want back into plain both ways too.
 */
static void check_cipher(CK_SESSION_HANDLE h, CK_MECHANISM *m,
			 CK_OBJECT_HANDLE k, const uint8_t *plain, CK_ULONG len,
			 const uint8_t *want, CK_ULONG want_len)
{
	uint8_t out[512];
	CK_ULONG n;

	assert_true(len <= sizeof(out) && want_len <= sizeof(out));
	n = encrypt1(h, m, k, plain, len, out, sizeof(out));
	assert_int_equal(n, want_len);
	assert_memory_equal(out, want, want_len);
	n = crypt_parts(h, m, k, true, plain, len, out, sizeof(out));
	assert_int_equal(n, want_len);
	assert_memory_equal(out, want, want_len);
	n = crypt1(h, m, k, false, want, want_len, out, sizeof(out));
	assert_int_equal(n, len);
	assert_memory_equal(out, plain, len);
	n = crypt_parts(h, m, k, false, want, want_len, out, sizeof(out));
	assert_int_equal(n, len);
	assert_memory_equal(out, plain, len);
}

/* ---- digests ---------------------------------------------------------- */

static const struct { CK_MECHANISM_TYPE m; const char *md; size_t len; } digests[] = {
	{ CKM_SHA_1, "SHA1", 20 }, { CKM_SHA224, "SHA224", 28 },
	{ CKM_SHA256, "SHA256", 32 }, { CKM_SHA384, "SHA384", 48 },
	{ CKM_SHA512, "SHA512", 64 }, { CKM_SHA3_224, "SHA3-224", 28 },
	{ CKM_SHA3_256, "SHA3-256", 32 }, { CKM_SHA3_384, "SHA3-384", 48 },
	{ CKM_SHA3_512, "SHA3-512", 64 },
};

static void test_digests(void **state)
{
	CK_SESSION_HANDLE h = open_ro();
	uint8_t data[1000], want[64], got[64];
	CK_ULONG n;

	(void)state;
	fill_pattern(data, sizeof(data), 10);
	for (size_t i = 0; i < ARRAY_SIZE(digests); i++) {
		CK_MECHANISM m = { digests[i].m, NULL, 0 };
		size_t wl = ossl_digest(digests[i].md, data, sizeof(data), want);

		assert_int_equal(wl, digests[i].len);
		/* Single part. */
		assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
		n = sizeof(got);
		assert_rv(P11->C_Digest(h, data, sizeof(data), got, &n), CKR_OK);
		assert_int_equal(n, wl);
		assert_memory_equal(got, want, wl);
		/* Multi-part, with an empty update on the way. */
		assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
		assert_rv(P11->C_DigestUpdate(h, data, 1), CKR_OK);
		assert_rv(P11->C_DigestUpdate(h, data + 1, 0), CKR_OK);
		assert_rv(P11->C_DigestUpdate(h, data + 1, 600), CKR_OK);
		assert_rv(P11->C_DigestUpdate(h, data + 601, sizeof(data) - 601), CKR_OK);
		n = sizeof(got);
		assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
		assert_int_equal(n, wl);
		assert_memory_equal(got, want, wl);
	}
	/* Empty input. */
	{
		CK_MECHANISM m = { CKM_SHA256, NULL, 0 };

		ossl_digest("SHA256", data, 0, want);
		assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
		n = sizeof(got);
		assert_rv(P11->C_Digest(h, data, 0, got, &n), CKR_OK);
		assert_int_equal(n, 32);
		assert_memory_equal(got, want, 32);
	}
}

/* 5.2: size queries and too-small buffers leave the operation active. */
static void test_output_conventions(void **state)
{
	CK_SESSION_HANDLE h = open_ro();
	CK_MECHANISM m = { CKM_SHA512, NULL, 0 };
	uint8_t want[64], got[64];
	CK_ULONG n;

	(void)state;
	ossl_digest("SHA512", (const uint8_t *)"abc", 3, want);
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	n = 1;
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"abc", 3, NULL, &n), CKR_OK);
	assert_int_equal(n, 64);
	n = 63;
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"abc", 3, got, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 64);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"abc", 3, got, &n), CKR_OK);
	assert_int_equal(n, 64);
	assert_memory_equal(got, want, 64);
	/* Now it is over. */
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"abc", 3, got, &n),
		  CKR_OPERATION_NOT_INITIALIZED);

	/* The same for C_DigestFinal. */
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"abc", 3), CKR_OK);
	n = 0;
	assert_rv(P11->C_DigestFinal(h, NULL, &n), CKR_OK);
	assert_int_equal(n, 64);
	n = 10;
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 64);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
	assert_memory_equal(got, want, 64);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OPERATION_NOT_INITIALIZED);
}

static void test_operation_state_rules(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 }, ecb = { CKM_AES_ECB, NULL, 0 };
	uint8_t key[16], buf[64], out[64];
	CK_OBJECT_HANDLE k;
	CK_ULONG n;

	(void)state;
	fill_pattern(key, sizeof(key), 11);
	fill_pattern(buf, sizeof(buf), 12);
	k = aes_key(h, key, sizeof(key));
	/* Nothing started. */
	assert_rv(P11->C_DigestUpdate(h, buf, 1), CKR_OPERATION_NOT_INITIALIZED);
	n = sizeof(out);
	assert_rv(P11->C_DigestFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);
	n = sizeof(out);
	assert_rv(P11->C_Encrypt(h, buf, 16, out, &n), CKR_OPERATION_NOT_INITIALIZED);
	n = sizeof(out);
	assert_rv(P11->C_DecryptUpdate(h, buf, 16, out, &n),
		  CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_SignUpdate(h, buf, 1), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_VerifyFinal(h, buf, 16), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_DigestKey(h, k), CKR_OPERATION_NOT_INITIALIZED);

	/* One operation of a kind at a time; the first stays usable. */
	assert_rv(P11->C_DigestInit(h, &sha), CKR_OK);
	assert_rv(P11->C_DigestInit(h, &sha), CKR_OPERATION_ACTIVE);
	assert_rv(P11->C_DigestUpdate(h, buf, 10), CKR_OK);
	n = sizeof(out);
	assert_rv(P11->C_DigestFinal(h, out, &n), CKR_OK);
	assert_rv(P11->C_DigestUpdate(h, buf, 1), CKR_OPERATION_NOT_INITIALIZED);

	assert_rv(P11->C_EncryptInit(h, &ecb, k), CKR_OK);
	assert_rv(P11->C_EncryptInit(h, &ecb, k), CKR_OPERATION_ACTIVE);
	n = sizeof(out);
	assert_rv(P11->C_Encrypt(h, buf, 32, out, &n), CKR_OK);
	assert_int_equal(n, 32);
	/* An error other than CKR_BUFFER_TOO_SMALL ends the operation. */
	assert_rv(P11->C_EncryptInit(h, &ecb, k), CKR_OK);
	n = sizeof(out);
	assert_rv(P11->C_Encrypt(h, buf, 15, out, &n), CKR_DATA_LEN_RANGE);
	n = sizeof(out);
	assert_rv(P11->C_Encrypt(h, buf, 16, out, &n), CKR_OPERATION_NOT_INITIALIZED);

	/* Unknown mechanisms and handles. */
	ecb.mechanism = 0x7ffffff0UL;
	assert_rv(P11->C_EncryptInit(h, &ecb, k), CKR_MECHANISM_INVALID);
	ecb.mechanism = CKM_AES_ECB;
	assert_rv(P11->C_EncryptInit(h, &ecb, CK_INVALID_HANDLE), CKR_KEY_HANDLE_INVALID);
	assert_rv(P11->C_EncryptInit(h, &ecb, 0x7ffffff0UL), CKR_KEY_HANDLE_INVALID);
	/* A digest mechanism cannot encrypt. */
	assert_rv(P11->C_EncryptInit(h, &sha, k), CKR_MECHANISM_INVALID);
}

/* Every C_xxxInit with a NULL mechanism ends its operation (5.8.1 ...). */
static void test_init_null_mechanism_cancels(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 }, sha = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM mac = { CKM_AES_CMAC, NULL, 0 };
	uint8_t key[16], buf[16];
	CK_ULONG n;
	CK_OBJECT_HANDLE k;

	(void)state;
	fill_pattern(key, sizeof(key), 61);
	k = aes_key(h, key, sizeof(key));

	assert_rv(P11->C_EncryptInit(h, &ecb, k), CKR_OK);
	assert_rv(P11->C_EncryptInit(h, NULL, k), CKR_OK);	/* 5.8.1 */
	n = sizeof(buf);
	assert_rv(P11->C_EncryptUpdate(h, key, 16, buf, &n), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_EncryptInit(h, &ecb, k), CKR_OK);

	assert_rv(P11->C_DecryptInit(h, &ecb, k), CKR_OK);
	assert_rv(P11->C_DecryptInit(h, NULL, k), CKR_OK);	/* 5.10.1 */
	n = sizeof(buf);
	assert_rv(P11->C_DecryptUpdate(h, key, 16, buf, &n), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_DecryptInit(h, &ecb, k), CKR_OK);

	assert_rv(P11->C_DigestInit(h, &sha), CKR_OK);
	assert_rv(P11->C_DigestInit(h, NULL), CKR_OK);	/* 5.12.1 */
	assert_rv(P11->C_DigestUpdate(h, key, 1), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_DigestInit(h, &sha), CKR_OK);

	assert_rv(P11->C_SignInit(h, &mac, k), CKR_OK);
	assert_rv(P11->C_SignInit(h, NULL, k), CKR_OK);		/* 5.13.1 */
	assert_rv(P11->C_SignUpdate(h, key, 1), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_SignInit(h, &mac, k), CKR_OK);

	assert_rv(P11->C_VerifyInit(h, &mac, k), CKR_OK);
	assert_rv(P11->C_VerifyInit(h, NULL, k), CKR_OK);	/* 5.15.1 */
	assert_rv(P11->C_VerifyUpdate(h, key, 1), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_VerifyInit(h, &mac, k), CKR_OK);
}

static void test_digest_key(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
	uint8_t key[32], msg[3 + 32 + 5], want[32], got[32];
	CK_OBJECT_HANDLE k, pub, priv;
	CK_ULONG n = sizeof(got);

	(void)state;
	fill_pattern(key, sizeof(key), 13);
	k = aes_key(h, key, sizeof(key));
	memcpy(msg, "pre", 3);
	memcpy(msg + 3, key, 32);
	memcpy(msg + 35, "-post", 5);
	ossl_digest("SHA256", msg, sizeof(msg), want);

	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"pre", 3), CKR_OK);
	assert_rv(P11->C_DigestKey(h, k), CKR_OK);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"-post", 5), CKR_OK);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
	assert_int_equal(n, 32);
	assert_memory_equal(got, want, 32);

	/* Only secret keys can be digested (5.1.6, CKR_KEY_INDIGESTIBLE). */
	gen_ec(h, OID_P256, sizeof(OID_P256), &pub, &priv);
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	assert_rv(P11->C_DigestKey(h, pub), CKR_KEY_INDIGESTIBLE);
	/* Whether that ended the digest is not specified: use a new session. */
	h = open_ro();
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	assert_rv(P11->C_DigestKey(h, CK_INVALID_HANDLE), CKR_KEY_HANDLE_INVALID);
}

/* ---- HMAC -------------------------------------------------------------- */

static const struct { CK_MECHANISM_TYPE m, general; const char *md; } hmacs[] = {
	{ CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL, "SHA1" },
	{ CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL, "SHA224" },
	{ CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL, "SHA256" },
	{ CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL, "SHA384" },
	{ CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL, "SHA512" },
	{ CKM_SHA3_224_HMAC, CKM_SHA3_224_HMAC_GENERAL, "SHA3-224" },
	{ CKM_SHA3_256_HMAC, CKM_SHA3_256_HMAC_GENERAL, "SHA3-256" },
	{ CKM_SHA3_384_HMAC, CKM_SHA3_384_HMAC_GENERAL, "SHA3-384" },
	{ CKM_SHA3_512_HMAC, CKM_SHA3_512_HMAC_GENERAL, "SHA3-512" },
};

static void test_hmac(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[40], data[300], want[64], got[64];
	CK_OBJECT_HANDLE k;
	CK_ULONG n;

	(void)state;
	fill_pattern(key, sizeof(key), 14);
	fill_pattern(data, sizeof(data), 15);
	k = hmac_key(h, key, sizeof(key));
	for (size_t i = 0; i < ARRAY_SIZE(hmacs); i++) {
		CK_MECHANISM m = { hmacs[i].m, NULL, 0 };
		size_t wl = ossl_mac("HMAC", hmacs[i].md, key, sizeof(key), data,
				     sizeof(data), want);

		n = sign(h, &m, k, data, sizeof(data), got, sizeof(got));
		assert_int_equal(n, wl);
		assert_memory_equal(got, want, wl);
		/* Multi-part. */
		assert_rv(P11->C_SignInit(h, &m, k), CKR_OK);
		assert_rv(P11->C_SignUpdate(h, data, 100), CKR_OK);
		assert_rv(P11->C_SignUpdate(h, data + 100, 200), CKR_OK);
		n = sizeof(got);
		assert_rv(P11->C_SignFinal(h, got, &n), CKR_OK);
		assert_int_equal(n, wl);
		assert_memory_equal(got, want, wl);
		/* Verification, single and multi-part. */
		assert_rv(verify(h, &m, k, data, sizeof(data), want, wl), CKR_OK);
		assert_rv(P11->C_VerifyInit(h, &m, k), CKR_OK);
		assert_rv(P11->C_VerifyUpdate(h, data, 299), CKR_OK);
		assert_rv(P11->C_VerifyUpdate(h, data + 299, 1), CKR_OK);
		assert_rv(P11->C_VerifyFinal(h, want, wl), CKR_OK);
		want[wl - 1] ^= 1;
		assert_rv(verify(h, &m, k, data, sizeof(data), want, wl),
			  CKR_SIGNATURE_INVALID);
		/* A MAC of the wrong length is invalid by its length (5.15.2). */
		assert_rv(verify(h, &m, k, data, sizeof(data), want, wl - 1),
			  CKR_SIGNATURE_LEN_RANGE);
		/* Verify ends the operation whatever its result. */
		assert_rv(P11->C_VerifyFinal(h, want, wl), CKR_OPERATION_NOT_INITIALIZED);
	}
}

static void test_hmac_general(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[32], want[64], got[64];
	CK_MAC_GENERAL_PARAMS len = 12;
	CK_OBJECT_HANDLE k;
	int tested = 0;

	(void)state;
	fill_pattern(key, sizeof(key), 16);
	k = hmac_key(h, key, sizeof(key));
	for (size_t i = 0; i < ARRAY_SIZE(hmacs); i++) {
		CK_MECHANISM m = { hmacs[i].general, &len, sizeof(len) };

		if (!mech_supported(S.slot, hmacs[i].general))
			continue;
		tested++;
		ossl_mac("HMAC", hmacs[i].md, key, sizeof(key), (const uint8_t *)"msg", 3,
			 want);
		assert_int_equal(sign(h, &m, k, "msg", 3, got, sizeof(got)), 12);
		assert_memory_equal(got, want, 12);
		assert_rv(verify(h, &m, k, "msg", 3, want, 12), CKR_OK);
		/* A parameter of the wrong size. */
		m.ulParameterLen = 4;
		assert_rv(P11->C_SignInit(h, &m, k), CKR_MECHANISM_PARAM_INVALID);
	}
	if (!tested)
		print_message("      (no *_HMAC_GENERAL mechanism offered)\n");
}

static void test_key_function_not_permitted(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM hm = { CKM_SHA256_HMAC, NULL, 0 }, ecb = { CKM_AES_ECB, NULL, 0 };
	uint8_t key[32];
	CK_OBJECT_HANDLE k;
	struct tmpl t;

	(void)state;
	fill_pattern(key, sizeof(key), 17);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_SIGN, false);
	tmpl_bool(&t, CKA_VERIFY, false);
	k = create_secret(h, CKK_GENERIC_SECRET, key, sizeof(key), &t);
	assert_rv(P11->C_SignInit(h, &hm, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_rv(P11->C_VerifyInit(h, &hm, k), CKR_KEY_FUNCTION_NOT_PERMITTED);

	tmpl_init(&t);
	tmpl_bool(&t, CKA_ENCRYPT, false);
	tmpl_bool(&t, CKA_DECRYPT, true);
	k = create_secret(h, CKK_AES, key, 16, &t);
	assert_rv(P11->C_EncryptInit(h, &ecb, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_rv(P11->C_DecryptInit(h, &ecb, k), CKR_OK);
	assert_rv(P11->C_Decrypt(h, key, 16, key, &(CK_ULONG){ 16 }), CKR_OK);
	/* The failed init left nothing active. */
	assert_rv(P11->C_EncryptUpdate(h, key, 16, key, &(CK_ULONG){ 16 }),
		  CKR_OPERATION_NOT_INITIALIZED);
	/* A key of the wrong type for the mechanism (5.1.6 priority). */
	assert_rv(P11->C_SignInit(h, &hm, k), CKR_KEY_TYPE_INCONSISTENT);
}

static void test_allowed_mechanisms(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM_TYPE allowed[] = { CKM_AES_CBC_PAD, CKM_AES_CMAC };
	CK_MECHANISM_TYPE back[4];
	uint8_t key[16], iv[16] = { 0 }, out[64];
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 }, pad = { CKM_AES_CBC_PAD, iv, 16 };
	CK_AES_CTR_PARAMS ctr = { .ulCounterBits = 128 };
	CK_MECHANISM ctr_m = { CKM_AES_CTR, &ctr, sizeof(ctr) };
	CK_ATTRIBUTE a = { CKA_ALLOWED_MECHANISMS, back, sizeof(back) };
	CK_OBJECT_HANDLE k;
	struct tmpl t;

	(void)state;
	fill_pattern(key, sizeof(key), 18);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_ENCRYPT, true);
	tmpl_bool(&t, CKA_SIGN, true);
	tmpl_bytes(&t, CKA_ALLOWED_MECHANISMS, allowed, sizeof(allowed));
	k = create_secret(h, CKK_AES, key, sizeof(key), &t);
	assert_rv(P11->C_GetAttributeValue(h, k, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, sizeof(allowed));
	assert_memory_equal(back, allowed, sizeof(allowed));

	assert_rv(P11->C_EncryptInit(h, &ecb, k), CKR_MECHANISM_INVALID);
	assert_rv(P11->C_EncryptInit(h, &ctr_m, k), CKR_MECHANISM_INVALID);
	assert_int_equal(encrypt1(h, &pad, k, key, 16, out, sizeof(out)), 32);
	{
		CK_MECHANISM cmac = { CKM_AES_CMAC, NULL, 0 };

		assert_int_equal(sign(h, &cmac, k, "x", 1, out, sizeof(out)), 16);
	}
}

/* ---- AES --------------------------------------------------------------- */

static void test_aes_ecb_cbc(void **state)
{
	static const size_t klens[] = { 16, 24, 32 };
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[32], iv[16], data[96], want[128], got[128];
	CK_ULONG n;

	(void)state;
	fill_pattern(data, sizeof(data), 19);
	fill_pattern(iv, sizeof(iv), 20);
	for (size_t i = 0; i < ARRAY_SIZE(klens); i++) {
		CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 };
		CK_MECHANISM cbc = { CKM_AES_CBC, iv, sizeof(iv) };
		CK_OBJECT_HANDLE k;
		size_t wl;

		fill_pattern(key, klens[i], 21 + (unsigned int)i);
		k = aes_key(h, key, klens[i]);

		wl = ossl_aes("ECB", key, klens[i], NULL, false, true, data, 96, want);
		check_cipher(h, &ecb, k, data, 96, want, wl);
		wl = ossl_aes("CBC", key, klens[i], iv, false, true, data, 96, want);
		check_cipher(h, &cbc, k, data, 96, want, wl);

		/* Block modes without padding need whole blocks. */
		assert_rv(P11->C_EncryptInit(h, &cbc, k), CKR_OK);
		n = sizeof(got);
		assert_rv(P11->C_Encrypt(h, data, 95, got, &n), CKR_DATA_LEN_RANGE);
		assert_rv(P11->C_DecryptInit(h, &ecb, k), CKR_OK);
		n = sizeof(got);
		assert_rv(P11->C_Decrypt(h, want, 17, got, &n),
			  CKR_ENCRYPTED_DATA_LEN_RANGE);
	}
	/* An IV of the wrong size. */
	{
		CK_MECHANISM bad = { CKM_AES_CBC, iv, 8 };
		CK_OBJECT_HANDLE k = aes_key(h, key, 16);

		assert_rv(P11->C_EncryptInit(h, &bad, k), CKR_MECHANISM_PARAM_INVALID);
		bad.pParameter = NULL;
		bad.ulParameterLen = 0;
		assert_rv(P11->C_EncryptInit(h, &bad, k), CKR_MECHANISM_PARAM_INVALID);
	}
}

static void test_aes_cbc_pad(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[32], iv[16], data[100], want[128], got[128], back[128];
	CK_MECHANISM m = { CKM_AES_CBC_PAD, iv, sizeof(iv) };
	CK_OBJECT_HANDLE k;
	CK_ULONG n;
	size_t wl;

	(void)state;
	fill_pattern(key, sizeof(key), 25);
	fill_pattern(iv, sizeof(iv), 26);
	fill_pattern(data, sizeof(data), 27);
	k = aes_key(h, key, sizeof(key));
	for (size_t len = 0; len <= 100; len += 25) {
		wl = ossl_aes("CBC", key, 32, iv, true, true, data, len, want);
		assert_int_equal(wl, (len / 16 + 1) * 16);
		check_cipher(h, &m, k, data, len, want, wl);
	}
	/* Too small an output buffer keeps the operation (5.2). */
	assert_rv(P11->C_EncryptInit(h, &m, k), CKR_OK);
	n = 16;
	assert_rv(P11->C_Encrypt(h, data, 50, got, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 64);
	n = sizeof(got);
	assert_rv(P11->C_Encrypt(h, data, 50, got, &n), CKR_OK);
	assert_int_equal(n, 64);
	/* Ciphertext that is not whole blocks. */
	assert_rv(P11->C_DecryptInit(h, &m, k), CKR_OK);
	n = sizeof(back);
	assert_rv(P11->C_Decrypt(h, got, 63, back, &n), CKR_ENCRYPTED_DATA_LEN_RANGE);
}

static void test_aes_ctr(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[24], data[333], want[333];
	CK_AES_CTR_PARAMS p = { .ulCounterBits = 128 };
	CK_MECHANISM m = { CKM_AES_CTR, &p, sizeof(p) };
	CK_OBJECT_HANDLE k;
	size_t wl;

	(void)state;
	fill_pattern(key, sizeof(key), 28);
	fill_pattern(p.cb, sizeof(p.cb), 29);
	p.cb[15] = 0xfe;	/* the counter wraps into the next byte soon */
	fill_pattern(data, sizeof(data), 30);
	k = aes_key(h, key, sizeof(key));
	wl = ossl_aes("CTR", key, sizeof(key), p.cb, false, true, data, sizeof(data), want);
	assert_int_equal(wl, sizeof(data));
	check_cipher(h, &m, k, data, sizeof(data), want, wl);
	/* A counter of 0 or more than 128 bits is not a parameter. */
	p.ulCounterBits = 0;
	assert_rv(P11->C_EncryptInit(h, &m, k), CKR_MECHANISM_PARAM_INVALID);
	p.ulCounterBits = 129;
	assert_rv(P11->C_EncryptInit(h, &m, k), CKR_MECHANISM_PARAM_INVALID);
}

static void test_aes_cmac(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[32], data[77], want[16], got[16];
	CK_MECHANISM m = { CKM_AES_CMAC, NULL, 0 };
	CK_OBJECT_HANDLE k;
	CK_ULONG n;
	size_t wl;

	(void)state;
	fill_pattern(key, sizeof(key), 31);
	fill_pattern(data, sizeof(data), 32);
	k = aes_key(h, key, sizeof(key));
	wl = ossl_mac("CMAC", "AES-256-CBC", key, sizeof(key), data, sizeof(data), want);
	assert_int_equal(wl, 16);
	n = sign(h, &m, k, data, sizeof(data), got, sizeof(got));
	assert_int_equal(n, 16);
	assert_memory_equal(got, want, 16);
	assert_rv(P11->C_SignInit(h, &m, k), CKR_OK);
	assert_rv(P11->C_SignUpdate(h, data, 16), CKR_OK);
	assert_rv(P11->C_SignUpdate(h, data + 16, sizeof(data) - 16), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_SignFinal(h, got, &n), CKR_OK);
	assert_memory_equal(got, want, 16);
	assert_rv(verify(h, &m, k, data, sizeof(data), want, 16), CKR_OK);
	want[0] ^= 0x80;
	assert_rv(verify(h, &m, k, data, sizeof(data), want, 16), CKR_SIGNATURE_INVALID);
	if (mech_supported(S.slot, CKM_AES_CMAC_GENERAL)) {
		CK_MAC_GENERAL_PARAMS len = 8;
		CK_MECHANISM g = { CKM_AES_CMAC_GENERAL, &len, sizeof(len) };

		want[0] ^= 0x80;
		assert_int_equal(sign(h, &g, k, data, sizeof(data), got, sizeof(got)), 8);
		assert_memory_equal(got, want, 8);
	}
}

static void test_aes_gcm(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[16], iv[12], aad[20], data[100], want[128], got[128], back[128];
	CK_GCM_PARAMS p = {
		.pIv = iv, .ulIvLen = sizeof(iv), .ulIvBits = 96,
		.pAAD = aad, .ulAADLen = sizeof(aad), .ulTagBits = 128,
	};
	CK_MECHANISM m = { CKM_AES_GCM, &p, sizeof(p) };
	CK_OBJECT_HANDLE k;
	CK_ULONG n;
	CK_RV rv;
	size_t wl;

	(void)state;
	fill_pattern(key, sizeof(key), 33);
	fill_pattern(iv, sizeof(iv), 34);
	fill_pattern(aad, sizeof(aad), 35);
	fill_pattern(data, sizeof(data), 36);
	k = aes_key(h, key, sizeof(key));
	wl = ossl_gcm_encrypt(key, 16, iv, 12, aad, 20, data, 100, 16, want);
	assert_int_equal(wl, 116);
	check_cipher(h, &m, k, data, 100, want, wl);

	/* A tampered tag, ciphertext or AAD yields no plaintext. */
	for (int what = 0; what < 3; what++) {
		uint8_t bad[128];

		memcpy(bad, want, wl);
		if (what == 0)
			bad[wl - 1] ^= 1;
		else if (what == 1)
			bad[5] ^= 1;
		else
			aad[0] ^= 1;
		assert_rv(P11->C_DecryptInit(h, &m, k), CKR_OK);
		memset(back, 0, sizeof(back));
		n = sizeof(back);
		rv = P11->C_Decrypt(h, bad, wl, back, &n);
		if (rv != CKR_ENCRYPTED_DATA_INVALID && rv != CKR_AEAD_DECRYPT_FAILED)
			fail_msg("GCM with a tampered %s: %s",
				 what == 0 ? "tag" : what == 1 ? "ciphertext" : "AAD",
				 rv_name(rv));
		for (size_t i = 0; i < sizeof(back); i++)
			assert_int_equal(back[i], 0);
		if (what == 2)
			aad[0] ^= 1;
	}

	/* A 96-bit tag. */
	p.ulTagBits = 96;
	wl = ossl_gcm_encrypt(key, 16, iv, 12, aad, 20, data, 100, 12, want);
	n = encrypt1(h, &m, k, data, 100, got, sizeof(got));
	assert_int_equal(n, 112);
	assert_memory_equal(got, want, wl);
	/* Parameters out of range (PKCS#11 3.0 mechanisms, GCM). */
	p.ulTagBits = 129;
	assert_rv(P11->C_EncryptInit(h, &m, k), CKR_MECHANISM_PARAM_INVALID);
	p.ulTagBits = 128;
	p.ulIvLen = 0;
	assert_rv(P11->C_EncryptInit(h, &m, k), CKR_MECHANISM_PARAM_INVALID);
	p.ulIvLen = 12;
	m.ulParameterLen = sizeof(p) - 1;
	assert_rv(P11->C_EncryptInit(h, &m, k), CKR_MECHANISM_PARAM_INVALID);
}

/* The PKCS#11 3.0 message-based API with AES-GCM (5.9, 5.11). */
static void test_aes_gcm_message_api(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[32], iv[12], iv2[12], tag[16], aad[9], data[70], ct[70], pt[70];
	uint8_t want[128], zero[12] = { 0 };
	CK_GCM_MESSAGE_PARAMS p;
	CK_MECHANISM m = { CKM_AES_GCM, NULL, 0 };
	CK_OBJECT_HANDLE k;
	CK_ULONG n, n2;
	size_t wl;

	(void)state;
	fill_pattern(key, sizeof(key), 37);
	fill_pattern(aad, sizeof(aad), 38);
	fill_pattern(data, sizeof(data), 39);
	k = aes_key(h, key, sizeof(key));

	assert_rv(P11->C_MessageEncryptInit(h, &m, k), CKR_OK);
	/* The card makes the IV and gives it back with the tag. */
	memset(iv, 0, sizeof(iv));
	memset(tag, 0, sizeof(tag));
	p = (CK_GCM_MESSAGE_PARAMS){
		.pIv = iv, .ulIvLen = sizeof(iv), .ulIvFixedBits = 0,
		.ivGenerator = CKG_GENERATE_RANDOM, .pTag = tag, .ulTagBits = 128,
	};
	n = sizeof(ct);
	assert_rv(P11->C_EncryptMessage(h, &p, sizeof(p), aad, sizeof(aad), data,
					sizeof(data), ct, &n), CKR_OK);
	assert_int_equal(n, sizeof(data));
	assert_memory_not_equal(iv, zero, sizeof(iv));
	wl = ossl_gcm_encrypt(key, 32, iv, 12, aad, sizeof(aad), data, sizeof(data),
			      16, want);
	assert_int_equal(wl, sizeof(data) + 16);
	assert_memory_equal(ct, want, sizeof(data));
	assert_memory_equal(tag, want + sizeof(data), 16);

	/* A second message gets another IV. */
	{
		uint8_t tag2[16];
		CK_GCM_MESSAGE_PARAMS p2 = p;

		memcpy(iv2, iv, sizeof(iv));
		p2.pIv = iv2;
		p2.pTag = tag2;
		n2 = sizeof(pt);
		assert_rv(P11->C_EncryptMessage(h, &p2, sizeof(p2), NULL, 0, data, 10, pt,
						&n2), CKR_OK);
		assert_int_equal(n2, 10);
		assert_memory_not_equal(iv, iv2, sizeof(iv));
	}

	/* Multi-part message: Begin, Next..., Next(CKF_END_OF_MESSAGE). */
	{
		uint8_t iv3[12], tag3[16], ct3[70];
		CK_GCM_MESSAGE_PARAMS p3 = {
			.pIv = iv3, .ulIvLen = sizeof(iv3),
			.ivGenerator = CKG_GENERATE_RANDOM, .pTag = tag3, .ulTagBits = 128,
		};
		CK_ULONG done = 0, part;

		assert_rv(P11->C_EncryptMessageBegin(h, &p3, sizeof(p3), aad, sizeof(aad)),
			  CKR_OK);
		part = sizeof(ct3);
		assert_rv(P11->C_EncryptMessageNext(h, &p3, sizeof(p3), data, 30, ct3, &part,
						    0), CKR_OK);
		done += part;
		part = sizeof(ct3) - done;
		assert_rv(P11->C_EncryptMessageNext(h, &p3, sizeof(p3), data + 30, 40,
						    ct3 + done, &part, CKF_END_OF_MESSAGE),
			  CKR_OK);
		done += part;
		assert_int_equal(done, sizeof(data));
		wl = ossl_gcm_encrypt(key, 32, iv3, 12, aad, sizeof(aad), data,
				      sizeof(data), 16, want);
		assert_memory_equal(ct3, want, sizeof(data));
		assert_memory_equal(tag3, want + sizeof(data), 16);
	}
	assert_rv(P11->C_MessageEncryptFinal(h), CKR_OK);
	n = sizeof(ct);
	assert_rv(P11->C_EncryptMessage(h, &p, sizeof(p), NULL, 0, data, 1, ct, &n),
		  CKR_OPERATION_NOT_INITIALIZED);

	/* Decrypt the first message with the IV and tag it was given. */
	assert_rv(P11->C_MessageDecryptInit(h, &m, k), CKR_OK);
	p.ivGenerator = CKG_NO_GENERATE;
	p.pIv = iv;
	p.pTag = tag;
	n = sizeof(pt);
	assert_rv(P11->C_DecryptMessage(h, &p, sizeof(p), aad, sizeof(aad), ct,
					sizeof(data), pt, &n), CKR_OK);
	assert_int_equal(n, sizeof(data));
	assert_memory_equal(pt, data, sizeof(data));
	/* Multi-part decryption. */
	{
		CK_ULONG done = 0, part;

		assert_rv(P11->C_DecryptMessageBegin(h, &p, sizeof(p), aad, sizeof(aad)),
			  CKR_OK);
		part = sizeof(pt);
		assert_rv(P11->C_DecryptMessageNext(h, &p, sizeof(p), ct, 33, pt, &part, 0),
			  CKR_OK);
		done += part;
		part = sizeof(pt) - done;
		assert_rv(P11->C_DecryptMessageNext(h, &p, sizeof(p), ct + 33,
						    sizeof(data) - 33, pt + done, &part,
						    CKF_END_OF_MESSAGE), CKR_OK);
		done += part;
		assert_int_equal(done, sizeof(data));
		assert_memory_equal(pt, data, sizeof(data));
	}
	/* Tampered tag: CKR_AEAD_DECRYPT_FAILED (5.11.2). */
	tag[3] ^= 0x10;
	n = sizeof(pt);
	assert_rv(P11->C_DecryptMessage(h, &p, sizeof(p), aad, sizeof(aad), ct,
					sizeof(data), pt, &n), CKR_AEAD_DECRYPT_FAILED);
	tag[3] ^= 0x10;
	assert_rv(P11->C_MessageDecryptFinal(h), CKR_OK);
	assert_rv(P11->C_MessageDecryptFinal(h), CKR_OPERATION_NOT_INITIALIZED);

	/* Message encryption needs a key that may encrypt. */
	{
		struct tmpl t;
		CK_OBJECT_HANDLE dk;

		tmpl_init(&t);
		tmpl_bool(&t, CKA_ENCRYPT, false);
		dk = create_secret(h, CKK_AES, key, 16, &t);
		assert_rv(P11->C_MessageEncryptInit(h, &m, dk),
			  CKR_KEY_FUNCTION_NOT_PERMITTED);
	}
}

const struct CMUnitTest crypto_sym_tests[] = {
	P11_TEST(test_digests),
	P11_TEST(test_output_conventions),
	P11_TEST(test_operation_state_rules),
	P11_TEST(test_init_null_mechanism_cancels),
	P11_TEST(test_digest_key),
	P11_TEST(test_hmac),
	P11_TEST(test_hmac_general),
	P11_TEST(test_key_function_not_permitted),
	P11_TEST(test_allowed_mechanisms),
	P11_TEST(test_aes_ecb_cbc),
	P11_TEST(test_aes_cbc_pad),
	P11_TEST(test_aes_ctr),
	P11_TEST(test_aes_cmac),
	P11_TEST(test_aes_gcm),
	P11_TEST(test_aes_gcm_message_api),
};
SUITE_COUNT(crypto_sym);
