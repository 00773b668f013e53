// SPDX-License-Identifier: MIT
/*
 * Key management (base spec 5.18) and random numbers (5.19): key
 * generation templates, wrapping with AES-KW, AES-KWP and RSA-OAEP
 * (checked against OpenSSL and by using the unwrapped keys), ECDH key
 * agreement, C_GenerateRandom and C_SeedRandom.
 */
#include "suite.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/kdf.h>
#include <openssl/rsa.h>

/* AES key wrap (RFC 3394) or with padding (RFC 5649) by OpenSSL. */
static size_t ossl_wrap(bool pad, const uint8_t *kek, size_t klen,
			const uint8_t *in, size_t len, uint8_t *out)
{
	const EVP_CIPHER *c;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, m = 0;

	assert_int_equal(klen, 16);
	c = pad ? EVP_aes_128_wrap_pad() : EVP_aes_128_wrap();
	assert_non_null(ctx);
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	assert_int_equal(EVP_EncryptInit_ex(ctx, c, NULL, kek, NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, out, &n, in, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, out + n, &m), 1);
	EVP_CIPHER_CTX_free(ctx);
	return (size_t)(n + m);
}

static CK_OBJECT_HANDLE kek_key(CK_SESSION_HANDLE h, const uint8_t *v)
{
	struct tmpl t;

	tmpl_init(&t);
	tmpl_bool(&t, CKA_WRAP, true);
	tmpl_bool(&t, CKA_UNWRAP, true);
	return create_secret(h, CKK_AES, v, 16, &t);
}

/* The first block of AES-ECB under a token key (proves what it is). */
static void ecb_block(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k, uint8_t out[16])
{
	CK_MECHANISM m = { CKM_AES_ECB, NULL, 0 };
	uint8_t in[16];
	CK_ULONG n = 16;

	fill_pattern(in, sizeof(in), 50);
	assert_rv(P11->C_EncryptInit(h, &m, k), CKR_OK);
	assert_rv(P11->C_Encrypt(h, in, 16, out, &n), CKR_OK);
	assert_int_equal(n, 16);
}

static void ossl_ecb_block(const uint8_t *key, size_t klen, uint8_t out[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *cipher = klen == 16 ? EVP_aes_128_ecb() :
				   klen == 24 ? EVP_aes_192_ecb() : EVP_aes_256_ecb();
	uint8_t in[16];
	int n = 0;

	fill_pattern(in, sizeof(in), 50);
	assert_non_null(c);
	assert_int_equal(EVP_EncryptInit_ex(c, cipher, NULL, key, NULL), 1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	assert_int_equal(EVP_EncryptUpdate(c, out, &n, in, 16), 1);
	assert_int_equal(n, 16);
	EVP_CIPHER_CTX_free(c);
}

static void unwrap_tmpl(struct tmpl *t, CK_KEY_TYPE type)
{
	tmpl_init(t);
	tmpl_ulong(t, CKA_CLASS, CKO_SECRET_KEY);
	tmpl_ulong(t, CKA_KEY_TYPE, type);
	tmpl_bool(t, CKA_ENCRYPT, true);
	tmpl_bool(t, CKA_DECRYPT, true);
	tmpl_bool(t, CKA_SIGN, type == CKK_GENERIC_SECRET);
	tmpl_bool(t, CKA_VERIFY, type == CKK_GENERIC_SECRET);
}

static void test_aes_key_wrap(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM m = { CKM_AES_KEY_WRAP, NULL, 0 };
	uint8_t kek[16], key[32], want[48], got[48], b1[16], b2[16];
	CK_OBJECT_HANDLE wk, k, uk;
	CK_ULONG n;
	struct tmpl t;
	size_t wl;

	(void)state;
	fill_pattern(kek, sizeof(kek), 51);
	fill_pattern(key, sizeof(key), 52);
	wk = kek_key(h, kek);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_SENSITIVE, true);
	tmpl_bool(&t, CKA_EXTRACTABLE, true);
	tmpl_bool(&t, CKA_ENCRYPT, true);
	k = create_secret(h, CKK_AES, key, sizeof(key), &t);

	wl = ossl_wrap(false, kek, 16, key, 32, want);
	assert_int_equal(wl, 40);
	n = 0;
	assert_rv(P11->C_WrapKey(h, &m, wk, k, NULL, &n), CKR_OK);
	assert_int_equal(n, 40);
	n = 39;
	assert_rv(P11->C_WrapKey(h, &m, wk, k, got, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 40);
	n = sizeof(got);
	assert_rv(P11->C_WrapKey(h, &m, wk, k, got, &n), CKR_OK);
	assert_int_equal(n, 40);
	assert_memory_equal(got, want, 40);

	unwrap_tmpl(&t, CKK_AES);
	assert_rv(P11->C_UnwrapKey(h, &m, wk, got, 40, t.a, t.n, &uk), CKR_OK);
	assert_int_equal(attr_ulong(h, uk, CKA_VALUE_LEN), 32);
	/* 5.18.4: unwrapped keys are neither local nor always sensitive. */
	assert_false(attr_bool(h, uk, CKA_LOCAL));
	assert_false(attr_bool(h, uk, CKA_ALWAYS_SENSITIVE));
	assert_false(attr_bool(h, uk, CKA_NEVER_EXTRACTABLE));
	ecb_block(h, k, b1);
	ecb_block(h, uk, b2);
	assert_memory_equal(b1, b2, 16);
	ossl_ecb_block(key, 32, b2);
	assert_memory_equal(b1, b2, 16);

	/* Damaged or mis-sized wrapped keys. */
	got[20] ^= 1;
	assert_rv(P11->C_UnwrapKey(h, &m, wk, got, 40, t.a, t.n, &uk),
		  CKR_WRAPPED_KEY_INVALID);
	assert_rv(P11->C_UnwrapKey(h, &m, wk, got, 39, t.a, t.n, &uk),
		  CKR_WRAPPED_KEY_LEN_RANGE);
	/*
	 * A key that is not whole 8-byte blocks is zero padded by
	 * CKM_AES_KEY_WRAP (PKCS#11 mechanisms, AES Key Wrap), and cut back
	 * to CKA_VALUE_LEN on unwrapping.
	 */
	{
		CK_MECHANISM hm = { CKM_SHA256_HMAC, NULL, 0 };
		uint8_t odd[24] = { 0 }, s1[32], s2[32];
		CK_OBJECT_HANDLE ok;

		fill_pattern(odd, 20, 53);
		tmpl_init(&t);
		tmpl_bool(&t, CKA_SIGN, true);
		ok = create_secret(h, CKK_GENERIC_SECRET, odd, 20, &t);
		wl = ossl_wrap(false, kek, 16, odd, 24, want);
		assert_int_equal(wl, 32);
		n = sizeof(got);
		assert_rv(P11->C_WrapKey(h, &m, wk, ok, got, &n), CKR_OK);
		assert_int_equal(n, 32);
		assert_memory_equal(got, want, 32);
		unwrap_tmpl(&t, CKK_GENERIC_SECRET);
		tmpl_ulong(&t, CKA_VALUE_LEN, 20);
		assert_rv(P11->C_UnwrapKey(h, &m, wk, got, 32, t.a, t.n, &uk), CKR_OK);
		assert_int_equal(attr_ulong(h, uk, CKA_VALUE_LEN), 20);
		assert_int_equal(sign(h, &hm, ok, "x", 1, s1, sizeof(s1)), 32);
		assert_int_equal(sign(h, &hm, uk, "x", 1, s2, sizeof(s2)), 32);
		assert_memory_equal(s1, s2, 32);
	}
	/* The wrapping key must allow wrapping. */
	tmpl_init(&t);
	tmpl_bool(&t, CKA_WRAP, false);
	tmpl_bool(&t, CKA_UNWRAP, false);
	wk = create_secret(h, CKK_AES, kek, 16, &t);
	n = sizeof(got);
	assert_rv(P11->C_WrapKey(h, &m, wk, k, got, &n), CKR_KEY_FUNCTION_NOT_PERMITTED);
	unwrap_tmpl(&t, CKK_AES);
	assert_rv(P11->C_UnwrapKey(h, &m, wk, want, 40, t.a, t.n, &uk),
		  CKR_KEY_FUNCTION_NOT_PERMITTED);
}

static void kwp_round(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE mech)
{
	CK_MECHANISM m = { mech, NULL, 0 }, hm = { CKM_SHA256_HMAC, NULL, 0 };
	uint8_t kek[16], key[20], want[40], got[40], s1[32], s2[32];
	CK_OBJECT_HANDLE wk, k, uk;
	CK_ULONG n;
	struct tmpl t;
	size_t wl;

	fill_pattern(kek, sizeof(kek), 54);
	fill_pattern(key, sizeof(key), 55);
	wk = kek_key(h, kek);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_SIGN, true);
	tmpl_bool(&t, CKA_EXTRACTABLE, true);
	k = create_secret(h, CKK_GENERIC_SECRET, key, sizeof(key), &t);

	wl = ossl_wrap(true, kek, 16, key, sizeof(key), want);
	assert_int_equal(wl, 32);
	n = sizeof(got);
	assert_rv(P11->C_WrapKey(h, &m, wk, k, got, &n), CKR_OK);
	assert_int_equal(n, 32);
	assert_memory_equal(got, want, 32);	/* RFC 5649 */

	unwrap_tmpl(&t, CKK_GENERIC_SECRET);
	assert_rv(P11->C_UnwrapKey(h, &m, wk, got, 32, t.a, t.n, &uk), CKR_OK);
	assert_int_equal(attr_ulong(h, uk, CKA_VALUE_LEN), 20);
	assert_int_equal(sign(h, &hm, k, "x", 1, s1, sizeof(s1)), 32);
	assert_int_equal(sign(h, &hm, uk, "x", 1, s2, sizeof(s2)), 32);
	assert_memory_equal(s1, s2, 32);
	got[31] ^= 1;
	assert_rv(P11->C_UnwrapKey(h, &m, wk, got, 32, t.a, t.n, &uk),
		  CKR_WRAPPED_KEY_INVALID);
}

static void test_aes_key_wrap_pad(void **state)
{
	CK_SESSION_HANDLE h = user_session();

	(void)state;
	kwp_round(h, CKM_AES_KEY_WRAP_PAD);
	if (mech_supported(S.slot, CKM_AES_KEY_WRAP_KWP))
		kwp_round(h, CKM_AES_KEY_WRAP_KWP);
}

/* A private key leaves the token only wrapped, and comes back working. */
static void test_wrap_private_key(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM m = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_MECHANISM ecdsa = { CKM_ECDSA_SHA256, NULL, 0 };
	uint8_t kek[16], wrapped[512], sig[64];
	CK_OBJECT_HANDLE wk, pub, priv, upriv;
	CK_ULONG n = sizeof(wrapped);
	struct tmpl pt, kt;

	(void)state;
	fill_pattern(kek, sizeof(kek), 56);
	wk = kek_key(h, kek);
	tmpl_init(&pt);
	tmpl_bytes(&pt, CKA_EC_PARAMS, OID_P256, sizeof(OID_P256));
	tmpl_bool(&pt, CKA_VERIFY, true);
	tmpl_init(&kt);
	tmpl_bool(&kt, CKA_SIGN, true);
	tmpl_bool(&kt, CKA_SENSITIVE, true);
	tmpl_bool(&kt, CKA_EXTRACTABLE, true);
	assert_rv(P11->C_GenerateKeyPair(h, &gen, pt.a, pt.n, kt.a, kt.n, &pub, &priv),
		  CKR_OK);
	assert_rv(P11->C_WrapKey(h, &m, wk, priv, wrapped, &n), CKR_OK);
	assert_true(n > 32);

	tmpl_init(&kt);
	tmpl_ulong(&kt, CKA_CLASS, CKO_PRIVATE_KEY);
	tmpl_ulong(&kt, CKA_KEY_TYPE, CKK_EC);
	tmpl_bool(&kt, CKA_SIGN, true);
	assert_rv(P11->C_UnwrapKey(h, &m, wk, wrapped, n, kt.a, kt.n, &upriv), CKR_OK);
	assert_int_equal(sign(h, &ecdsa, upriv, "msg", 3, sig, sizeof(sig)), 64);
	assert_rv(verify(h, &ecdsa, pub, "msg", 3, sig, 64), CKR_OK);
}

static void test_rsa_oaep_wrap(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_RSA_PKCS_OAEP_PARAMS op = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED,
				       NULL, 0 };
	CK_MECHANISM m = { CKM_RSA_PKCS_OAEP, &op, sizeof(op) };
	uint8_t key[16], wrapped[512], b1[16], b2[16];
	CK_OBJECT_HANDLE pub, priv, k, uk;
	CK_ULONG n;
	struct tmpl t;
	EVP_PKEY *pk;
	EVP_PKEY_CTX *c;
	size_t wl = sizeof(wrapped);

	(void)state;
	gen_rsa(h, 2048, &pub, &priv);
	fill_pattern(key, sizeof(key), 57);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_ENCRYPT, true);
	tmpl_bool(&t, CKA_EXTRACTABLE, true);
	k = create_secret(h, CKK_AES, key, sizeof(key), &t);

	/* Token to token. */
	n = 0;
	assert_rv(P11->C_WrapKey(h, &m, pub, k, NULL, &n), CKR_OK);
	assert_int_equal(n, 256);
	assert_rv(P11->C_WrapKey(h, &m, pub, k, wrapped, &n), CKR_OK);
	assert_int_equal(n, 256);
	unwrap_tmpl(&t, CKK_AES);
	assert_rv(P11->C_UnwrapKey(h, &m, priv, wrapped, n, t.a, t.n, &uk), CKR_OK);
	assert_int_equal(attr_ulong(h, uk, CKA_VALUE_LEN), 16);
	ecb_block(h, k, b1);
	ecb_block(h, uk, b2);
	assert_memory_equal(b1, b2, 16);

	/* OpenSSL wraps a key it knows; the token unwraps and uses it. */
	pk = rsa_pub_to_evp(h, pub);
	c = EVP_PKEY_CTX_new(pk, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) > 0);
	fill_pattern(key, sizeof(key), 58);
	assert_int_equal(EVP_PKEY_encrypt(c, wrapped, &wl, key, sizeof(key)), 1);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pk);
	assert_rv(P11->C_UnwrapKey(h, &m, priv, wrapped, wl, t.a, t.n, &uk), CKR_OK);
	ecb_block(h, uk, b1);
	ossl_ecb_block(key, sizeof(key), b2);
	assert_memory_equal(b1, b2, 16);
}

static void test_unextractable_cannot_wrap(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM m = { CKM_AES_KEY_WRAP, NULL, 0 };
	uint8_t kek[16], wrapped[64];
	CK_OBJECT_HANDLE wk, k;
	CK_ULONG n = sizeof(wrapped);
	struct tmpl t;

	(void)state;
	fill_pattern(kek, sizeof(kek), 59);
	wk = kek_key(h, kek);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_EXTRACTABLE, false);
	tmpl_bool(&t, CKA_SENSITIVE, false);
	k = gen_aes(h, 32, &t);
	assert_rv(P11->C_WrapKey(h, &m, wk, k, wrapped, &n), CKR_KEY_UNEXTRACTABLE);
	n = 0;
	assert_rv(P11->C_WrapKey(h, &m, wk, k, NULL, &n), CKR_KEY_UNEXTRACTABLE);
	/* Made unextractable later: the same. */
	tmpl_init(&t);
	tmpl_bool(&t, CKA_EXTRACTABLE, true);
	k = gen_aes(h, 16, &t);
	n = sizeof(wrapped);
	assert_rv(P11->C_WrapKey(h, &m, wk, k, wrapped, &n), CKR_OK);
	{
		CK_BBOOL no = CK_FALSE;
		CK_ATTRIBUTE a = { CKA_EXTRACTABLE, &no, 1 };

		assert_rv(P11->C_SetAttributeValue(h, k, &a, 1), CKR_OK);
	}
	n = sizeof(wrapped);
	assert_rv(P11->C_WrapKey(h, &m, wk, k, wrapped, &n), CKR_KEY_UNEXTRACTABLE);
	n = sizeof(wrapped);
	assert_rv(P11->C_WrapKey(h, &m, CK_INVALID_HANDLE, k, wrapped, &n),
		  CKR_WRAPPING_KEY_HANDLE_INVALID);
	n = sizeof(wrapped);
	assert_rv(P11->C_WrapKey(h, &m, wk, CK_INVALID_HANDLE, wrapped, &n),
		  CKR_KEY_HANDLE_INVALID);
}

static CK_OBJECT_HANDLE ecdh(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv,
			     const uint8_t *point, size_t len, CK_ULONG kdf,
			     const char *shared, bool readable)
{
	CK_ECDH1_DERIVE_PARAMS p = {
		.kdf = kdf, .pSharedData = (CK_BYTE_PTR)shared,
		.ulSharedDataLen = shared ? strlen(shared) : 0,
		.pPublicData = (CK_BYTE_PTR)point, .ulPublicDataLen = len,
	};
	CK_MECHANISM m = { CKM_ECDH1_DERIVE, &p, sizeof(p) };
	CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
	struct tmpl t;

	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	tmpl_ulong(&t, CKA_KEY_TYPE, CKK_AES);
	tmpl_ulong(&t, CKA_VALUE_LEN, 32);
	tmpl_bool(&t, CKA_ENCRYPT, true);
	tmpl_bool(&t, CKA_DECRYPT, true);
	tmpl_bool(&t, CKA_SENSITIVE, !readable);
	tmpl_bool(&t, CKA_EXTRACTABLE, readable);
	assert_rv(P11->C_DeriveKey(h, &m, priv, t.a, t.n, &k), CKR_OK);
	assert_true(k != CK_INVALID_HANDLE);
	return k;
}

static void test_ecdh_derive(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE apub, apriv, bpub, bpriv, ka, kb;
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 };
	uint8_t *pa, *pb, b1[16], b2[16], ct[32], pt[32], data[32];
	size_t la, lb;
	CK_ULONG n;

	(void)state;
	gen_ec(h, OID_P256, sizeof(OID_P256), &apub, &apriv);
	gen_ec(h, OID_P256, sizeof(OID_P256), &bpub, &bpriv);
	pa = ec_point_raw(h, apub, &la);
	pb = ec_point_raw(h, bpub, &lb);
	ka = ecdh(h, apriv, pb, lb, CKD_NULL, NULL, false);
	kb = ecdh(h, bpriv, pa, la, CKD_NULL, NULL, false);
	assert_true(ka != kb);
	assert_false(attr_bool(h, ka, CKA_LOCAL));
	assert_int_equal(attr_ulong(h, ka, CKA_VALUE_LEN), 32);
	/* Both sides hold the same key: one encrypts, the other decrypts. */
	ecb_block(h, ka, b1);
	ecb_block(h, kb, b2);
	assert_memory_equal(b1, b2, 16);
	fill_pattern(data, sizeof(data), 60);
	assert_rv(P11->C_EncryptInit(h, &ecb, ka), CKR_OK);
	n = sizeof(ct);
	assert_rv(P11->C_Encrypt(h, data, 32, ct, &n), CKR_OK);
	assert_rv(P11->C_DecryptInit(h, &ecb, kb), CKR_OK);
	n = sizeof(pt);
	assert_rv(P11->C_Decrypt(h, ct, 32, pt, &n), CKR_OK);
	assert_int_equal(n, 32);
	assert_memory_equal(pt, data, 32);
	/* A point that is not on the curve. */
	{
		CK_ECDH1_DERIVE_PARAMS p = { CKD_NULL, 0, NULL, (CK_ULONG)lb, pb };
		CK_MECHANISM m = { CKM_ECDH1_DERIVE, &p, sizeof(p) };
		struct tmpl t;
		CK_OBJECT_HANDLE k;
		CK_RV rv;

		pb[lb - 1] ^= 1;
		tmpl_init(&t);
		tmpl_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
		tmpl_ulong(&t, CKA_KEY_TYPE, CKK_AES);
		tmpl_ulong(&t, CKA_VALUE_LEN, 32);
		rv = P11->C_DeriveKey(h, &m, apriv, t.a, t.n, &k);
		if (rv != CKR_MECHANISM_PARAM_INVALID && rv != CKR_PUBLIC_KEY_INVALID)
			fail_msg("ECDH with a point off the curve: %s", rv_name(rv));
	}
	free(pa);
	free(pb);
}

/* The token's ECDH secret equals OpenSSL's, raw and through X9.63 KDF. */
static void test_ecdh_against_openssl(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE apub, apriv, k;
	EVP_PKEY *peer = EVP_EC_gen("P-256"), *a;
	EVP_PKEY_CTX *c;
	uint8_t *pt = NULL, z[32], kdf_out[32], *v;
	size_t ptlen, zlen = sizeof(z);
	CK_ULONG n;

	(void)state;
	assert_non_null(peer);
	gen_ec(h, OID_P256, sizeof(OID_P256), &apub, &apriv);
	ptlen = EVP_PKEY_get1_encoded_public_key(peer, &pt);
	assert_int_equal(ptlen, 65);

	a = ec_pub_to_evp(h, apub, "P-256");
	c = EVP_PKEY_CTX_new(peer, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_derive_init(c), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(c, a), 1);
	assert_int_equal(EVP_PKEY_derive(c, z, &zlen), 1);
	assert_int_equal(zlen, 32);
	EVP_PKEY_CTX_free(c);

	k = ecdh(h, apriv, pt, ptlen, CKD_NULL, NULL, true);
	v = attr_get(h, k, CKA_VALUE, &n);
	assert_int_equal(n, 32);
	assert_memory_equal(v, z, 32);
	free(v);

	/* ANSI X9.63 KDF with SHA-256 and shared info. */
	{
		EVP_KDF *kdf = EVP_KDF_fetch(NULL, "X963KDF", NULL);
		EVP_KDF_CTX *kc = EVP_KDF_CTX_new(kdf);
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
							 (char *)"SHA256", 0),
			OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, 32),
			OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
							  (char *)"phsm info", 9),
			OSSL_PARAM_construct_end(),
		};

		assert_non_null(kc);
		assert_int_equal(EVP_KDF_derive(kc, kdf_out, 32, params), 1);
		EVP_KDF_CTX_free(kc);
		EVP_KDF_free(kdf);
	}
	k = ecdh(h, apriv, pt, ptlen, CKD_SHA256_KDF, "phsm info", true);
	v = attr_get(h, k, CKA_VALUE, &n);
	assert_int_equal(n, 32);
	assert_memory_equal(v, kdf_out, 32);
	free(v);
	OPENSSL_free(pt);
	EVP_PKEY_free(a);
	EVP_PKEY_free(peer);
}

static void test_generate_key_templates(void **state)
{
	CK_SESSION_HANDLE h = user_session(), ro = open_ro();
	CK_MECHANISM aes = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM gen = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
	CK_MECHANISM rsa = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_MECHANISM hm = { CKM_SHA512_HMAC, NULL, 0 };
	CK_OBJECT_HANDLE k, pub, priv;
	uint8_t sig[64];
	struct tmpl t, t2;
	CK_RV rv;

	(void)state;
	/* A generic secret of 48 bytes, usable for HMAC. */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_VALUE_LEN, 48);
	tmpl_bool(&t, CKA_SIGN, true);
	assert_rv(P11->C_GenerateKey(h, &gen, t.a, t.n, &k), CKR_OK);
	assert_int_equal(attr_ulong(h, k, CKA_KEY_TYPE), CKK_GENERIC_SECRET);
	assert_int_equal(attr_ulong(h, k, CKA_VALUE_LEN), 48);
	assert_int_equal(attr_ulong(h, k, CKA_KEY_GEN_MECHANISM),
			 CKM_GENERIC_SECRET_KEY_GEN);
	assert_int_equal(sign(h, &hm, k, "m", 1, sig, sizeof(sig)), 64);

	/* 5.18.1: a class or key type the mechanism does not make. */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_VALUE_LEN, 16);
	tmpl_ulong(&t, CKA_KEY_TYPE, CKK_GENERIC_SECRET);
	assert_rv(P11->C_GenerateKey(h, &aes, t.a, t.n, &k), CKR_TEMPLATE_INCONSISTENT);
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_VALUE_LEN, 16);
	tmpl_ulong(&t, CKA_CLASS, CKO_PUBLIC_KEY);
	assert_rv(P11->C_GenerateKey(h, &aes, t.a, t.n, &k), CKR_TEMPLATE_INCONSISTENT);
	/* Consistent class and type are fine. */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_VALUE_LEN, 24);
	tmpl_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	tmpl_ulong(&t, CKA_KEY_TYPE, CKK_AES);
	assert_rv(P11->C_GenerateKey(h, &aes, t.a, t.n, &k), CKR_OK);
	assert_int_equal(attr_ulong(h, k, CKA_VALUE_LEN), 24);
	/* AES needs its length, and a valid one. */
	tmpl_init(&t);
	assert_rv(P11->C_GenerateKey(h, &aes, t.a, t.n, &k), CKR_TEMPLATE_INCOMPLETE);
	tmpl_ulong(&t, CKA_VALUE_LEN, 20);
	rv = P11->C_GenerateKey(h, &aes, t.a, t.n, &k);
	if (rv != CKR_ATTRIBUTE_VALUE_INVALID && rv != CKR_KEY_SIZE_RANGE &&
	    rv != CKR_TEMPLATE_INCONSISTENT)
		fail_msg("AES key of 20 bytes: %s", rv_name(rv));
	/* Read-only attributes may not be given (Table 23). */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_VALUE_LEN, 16);
	tmpl_bool(&t, CKA_LOCAL, true);
	rv = P11->C_GenerateKey(h, &aes, t.a, t.n, &k);
	if (rv != CKR_ATTRIBUTE_READ_ONLY && rv != CKR_TEMPLATE_INCONSISTENT)
		fail_msg("CKA_LOCAL in a key generation template: %s", rv_name(rv));
	/* Token keys need an R/W session (5.18.1). */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_VALUE_LEN, 16);
	tmpl_bool(&t, CKA_TOKEN, true);
	assert_rv(P11->C_GenerateKey(ro, &aes, t.a, t.n, &k), CKR_SESSION_READ_ONLY);
	/* RSA keys outside 2048..4096 bits are refused. */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_MODULUS_BITS, 1024);
	tmpl_init(&t2);
	rv = P11->C_GenerateKeyPair(h, &rsa, t.a, t.n, t2.a, t2.n, &pub, &priv);
	if (rv != CKR_KEY_SIZE_RANGE && rv != CKR_ATTRIBUTE_VALUE_INVALID &&
	    rv != CKR_TEMPLATE_INCONSISTENT)
		fail_msg("RSA-1024 key pair: %s", rv_name(rv));
	/* A key pair template claiming the wrong class. */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_MODULUS_BITS, 2048);
	tmpl_ulong(&t, CKA_CLASS, CKO_PRIVATE_KEY);
	rv = P11->C_GenerateKeyPair(h, &rsa, t.a, t.n, t2.a, t2.n, &pub, &priv);
	assert_rv(rv, CKR_TEMPLATE_INCONSISTENT);
	/* EC needs its curve. */
	{
		CK_MECHANISM ec = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };

		tmpl_init(&t);
		assert_rv(P11->C_GenerateKeyPair(h, &ec, t.a, t.n, t2.a, t2.n, &pub, &priv),
			  CKR_TEMPLATE_INCOMPLETE);
	}
}

static void test_private_key_needs_login(void **state)
{
	CK_SESSION_HANDLE h = open_rw();
	CK_MECHANISM aes = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_OBJECT_HANDLE k;
	struct tmpl t;

	(void)state;
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_VALUE_LEN, 16);
	tmpl_bool(&t, CKA_PRIVATE, true);
	assert_rv(P11->C_GenerateKey(h, &aes, t.a, t.n, &k), CKR_USER_NOT_LOGGED_IN);
	tmpl_bool(&t, CKA_TOKEN, true);
	assert_rv(P11->C_GenerateKey(h, &aes, t.a, t.n, &k), CKR_USER_NOT_LOGGED_IN);
}

static void test_random(void **state)
{
	CK_SESSION_HANDLE h = open_ro();
	static uint8_t a[100000], b[100000];
	uint8_t seed[16] = { 1, 2, 3 };
	size_t zeros = 0;
	CK_RV rv;

	(void)state;
	assert_rv(P11->C_GenerateRandom(h, a, 0), CKR_OK);
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_rv(P11->C_GenerateRandom(h, a, 4096), CKR_OK);
	assert_rv(P11->C_GenerateRandom(h, b, 4096), CKR_OK);
	assert_memory_not_equal(a, b, 4096);
	for (size_t i = 0; i < 4096; i++)
		zeros += a[i] == 0;
	assert_true(zeros < 64);	/* about 16 expected */
	/* Only the asked-for bytes are written. */
	memset(a, 0xee, 64);
	assert_rv(P11->C_GenerateRandom(h, a, 33), CKR_OK);
	for (size_t i = 33; i < 64; i++)
		assert_int_equal(a[i], 0xee);
	/* A larger request. */
	memset(a, 0, sizeof(a));
	assert_rv(P11->C_GenerateRandom(h, a, sizeof(a)), CKR_OK);
	zeros = 0;
	for (size_t i = sizeof(a) - 4096; i < sizeof(a); i++)
		zeros += a[i] == 0;
	assert_true(zeros < 64);
	rv = P11->C_SeedRandom(h, seed, sizeof(seed));
	assert_true(rv == CKR_OK || rv == CKR_RANDOM_SEED_NOT_SUPPORTED);
	assert_rv(P11->C_GenerateRandom(h, NULL, 16), CKR_ARGUMENTS_BAD);
}

const struct CMUnitTest keys_tests[] = {
	P11_TEST(test_aes_key_wrap),
	P11_TEST(test_aes_key_wrap_pad),
	P11_TEST(test_wrap_private_key),
	P11_TEST(test_rsa_oaep_wrap),
	P11_TEST(test_unextractable_cannot_wrap),
	P11_TEST(test_ecdh_derive),
	P11_TEST(test_ecdh_against_openssl),
	P11_TEST(test_generate_key_templates),
	P11_TEST(test_private_key_needs_login),
	P11_TEST(test_random),
};
SUITE_COUNT(keys);
