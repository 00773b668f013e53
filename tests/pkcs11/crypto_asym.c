// SPDX-License-Identifier: MIT
/*
 * Asymmetric mechanisms: RSA (PKCS #1 v1.5, PSS, OAEP), ECDSA on P-256,
 * P-384 and P-521, and Ed25519.  Keys are generated on the token; every
 * signature the token makes is verified by OpenSSL with the public key
 * read from the token, and data OpenSSL encrypts is decrypted by the token.
 */
#include "suite.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

static const uint8_t sha256_prefix[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
	0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};

static void sha(const char *md, const void *in, size_t len, uint8_t *out)
{
	assert_int_equal(EVP_Digest(in, len, out, NULL, EVP_get_digestbyname(md),
				    NULL), 1);
}

/* RSA padding for a verification; padding 0 leaves the key's default. */
static void set_padding(EVP_PKEY_CTX *c, int padding, const char *md, int saltlen)
{
	if (!padding)
		return;
	assert_true(EVP_PKEY_CTX_set_rsa_padding(c, padding) > 0);
	if (padding == RSA_PKCS1_PSS_PADDING) {
		assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_get_digestbyname(md)) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(c, saltlen) > 0);
	}
}

/* OpenSSL's verdict on a signature over a digest (no hashing). */
static int ossl_verify_digest(EVP_PKEY *k, int padding, const char *md,
			      int saltlen, const uint8_t *sig, size_t sig_len,
			      const uint8_t *tbs, size_t tbs_len)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	int ok;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	set_padding(c, padding, md, saltlen);
	if (padding && md)
		assert_true(EVP_PKEY_CTX_set_signature_md(c, EVP_get_digestbyname(md)) > 0);
	ok = EVP_PKEY_verify(c, sig, sig_len, tbs, tbs_len);
	EVP_PKEY_CTX_free(c);
	return ok;
}

/* OpenSSL's verdict on a signature over a message, hashed with md. */
static int ossl_verify_msg(EVP_PKEY *k, const char *md, int padding,
			   int saltlen, const uint8_t *sig, size_t sig_len,
			   const uint8_t *msg, size_t len)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok;

	assert_non_null(c);
	assert_int_equal(EVP_DigestVerifyInit(c, &pc, md ? EVP_get_digestbyname(md) : NULL,
					      NULL, k), 1);
	set_padding(pc, padding, md, saltlen);
	ok = EVP_DigestVerify(c, sig, sig_len, msg, len);
	EVP_MD_CTX_free(c);
	return ok;
}

/* PKCS#11 ECDSA signatures are r || s; OpenSSL wants DER. */
static uint8_t *ecdsa_to_der(const uint8_t *sig, size_t len, size_t *der_len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)len / 2, NULL);
	BIGNUM *ss = BN_bin2bn(sig + len / 2, (int)len / 2, NULL);
	uint8_t *der = NULL;
	int n;

	assert_non_null(s);
	assert_true(r && ss);
	assert_int_equal(ECDSA_SIG_set0(s, r, ss), 1);
	n = i2d_ECDSA_SIG(s, &der);
	assert_true(n > 0);
	*der_len = (size_t)n;
	ECDSA_SIG_free(s);
	return der;
}

/* ---- RSA --------------------------------------------------------------- */

static const struct { CK_MECHANISM_TYPE pkcs, pss, hash; CK_ULONG mgf;
		      const char *md; size_t len; } rsa_hashes[] = {
	{ CKM_SHA1_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1, "SHA1", 20 },
	{ CKM_SHA224_RSA_PKCS, CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224, CKG_MGF1_SHA224,
	  "SHA224", 28 },
	{ CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256,
	  "SHA256", 32 },
	{ CKM_SHA384_RSA_PKCS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384,
	  "SHA384", 48 },
	{ CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512,
	  "SHA512", 64 },
};

static void test_rsa_pkcs1_sign(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE pub, priv;
	CK_MECHANISM raw = { CKM_RSA_PKCS, NULL, 0 };
	uint8_t msg[200], di[sizeof(sha256_prefix) + 32], sig[512], sig2[512];
	CK_ULONG n;
	EVP_PKEY *k;

	(void)state;
	gen_rsa(h, 2048, &pub, &priv);
	k = rsa_pub_to_evp(h, pub);
	fill_pattern(msg, sizeof(msg), 40);
	memcpy(di, sha256_prefix, sizeof(sha256_prefix));
	sha("SHA256", msg, sizeof(msg), di + sizeof(sha256_prefix));

	/* CKM_RSA_PKCS signs a DigestInfo; size query and too-small first. */
	assert_rv(P11->C_SignInit(h, &raw, priv), CKR_OK);
	n = 0;
	assert_rv(P11->C_Sign(h, di, sizeof(di), NULL, &n), CKR_OK);
	assert_int_equal(n, 256);
	n = 255;
	assert_rv(P11->C_Sign(h, di, sizeof(di), sig, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 256);
	n = sizeof(sig);
	assert_rv(P11->C_Sign(h, di, sizeof(di), sig, &n), CKR_OK);
	assert_int_equal(n, 256);
	assert_int_equal(ossl_verify_digest(k, RSA_PKCS1_PADDING, NULL, 0, sig, n, di,
					    sizeof(di)), 1);
	assert_rv(verify(h, &raw, pub, di, sizeof(di), sig, n), CKR_OK);

	/* The hash-and-sign mechanisms, single and multi-part. */
	for (size_t i = 0; i < ARRAY_SIZE(rsa_hashes); i++) {
		CK_MECHANISM m = { rsa_hashes[i].pkcs, NULL, 0 };

		n = sign(h, &m, priv, msg, sizeof(msg), sig, sizeof(sig));
		assert_int_equal(n, 256);
		assert_int_equal(ossl_verify_msg(k, rsa_hashes[i].md, RSA_PKCS1_PADDING,
						 0, sig, n, msg, sizeof(msg)), 1);
		assert_rv(P11->C_SignInit(h, &m, priv), CKR_OK);
		assert_rv(P11->C_SignUpdate(h, msg, 50), CKR_OK);
		assert_rv(P11->C_SignUpdate(h, msg + 50, sizeof(msg) - 50), CKR_OK);
		n = sizeof(sig2);
		assert_rv(P11->C_SignFinal(h, sig2, &n), CKR_OK);
		assert_int_equal(n, 256);
		assert_memory_equal(sig, sig2, 256);	/* v1.5 is deterministic */
		assert_rv(verify(h, &m, pub, msg, sizeof(msg), sig, 256), CKR_OK);
		assert_rv(P11->C_VerifyInit(h, &m, pub), CKR_OK);
		assert_rv(P11->C_VerifyUpdate(h, msg, 199), CKR_OK);
		assert_rv(P11->C_VerifyUpdate(h, msg + 199, 1), CKR_OK);
		assert_rv(P11->C_VerifyFinal(h, sig, 256), CKR_OK);
		sig[100] ^= 4;
		assert_rv(verify(h, &m, pub, msg, sizeof(msg), sig, 256),
			  CKR_SIGNATURE_INVALID);
		assert_rv(verify(h, &m, pub, msg, sizeof(msg), sig, 255),
			  CKR_SIGNATURE_LEN_RANGE);
	}
	/* Signing needs the private key: a public key cannot sign. */
	{
		CK_RV rv = P11->C_SignInit(h, &raw, pub);

		if (rv != CKR_KEY_TYPE_INCONSISTENT && rv != CKR_KEY_FUNCTION_NOT_PERMITTED)
			fail_msg("C_SignInit with a public key: %s", rv_name(rv));
	}
	EVP_PKEY_free(k);
}

static void test_rsa_pss(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE pub, priv;
	uint8_t msg[123], dig[64], sig[512], sig2[512];
	CK_ULONG n;
	EVP_PKEY *k;

	(void)state;
	gen_rsa(h, 2048, &pub, &priv);
	k = rsa_pub_to_evp(h, pub);
	fill_pattern(msg, sizeof(msg), 41);
	for (size_t i = 0; i < ARRAY_SIZE(rsa_hashes); i++) {
		CK_RSA_PKCS_PSS_PARAMS p = {
			rsa_hashes[i].hash, rsa_hashes[i].mgf, rsa_hashes[i].len,
		};
		CK_MECHANISM raw = { CKM_RSA_PKCS_PSS, &p, sizeof(p) };
		CK_MECHANISM m = { rsa_hashes[i].pss, &p, sizeof(p) };
		const char *md = rsa_hashes[i].md;
		size_t dl = rsa_hashes[i].len;

		/* CKM_RSA_PKCS_PSS: the caller hashes. */
		sha(md, msg, sizeof(msg), dig);
		n = sign(h, &raw, priv, dig, dl, sig, sizeof(sig));
		assert_int_equal(n, 256);
		assert_int_equal(ossl_verify_digest(k, RSA_PKCS1_PSS_PADDING, md, (int)dl,
						    sig, n, dig, dl), 1);
		assert_rv(verify(h, &raw, pub, dig, dl, sig, n), CKR_OK);
		/* Salted: a second signature differs, and verifies too. */
		assert_int_equal(sign(h, &raw, priv, dig, dl, sig2, sizeof(sig2)), 256);
		assert_memory_not_equal(sig, sig2, 256);
		assert_rv(verify(h, &raw, pub, dig, dl, sig2, 256), CKR_OK);

		/* Hash-and-sign, multi-part. */
		assert_rv(P11->C_SignInit(h, &m, priv), CKR_OK);
		assert_rv(P11->C_SignUpdate(h, msg, 23), CKR_OK);
		assert_rv(P11->C_SignUpdate(h, msg + 23, 100), CKR_OK);
		n = sizeof(sig);
		assert_rv(P11->C_SignFinal(h, sig, &n), CKR_OK);
		assert_int_equal(n, 256);
		assert_int_equal(ossl_verify_msg(k, md, RSA_PKCS1_PSS_PADDING, (int)dl,
						 sig, n, msg, sizeof(msg)), 1);
		assert_rv(verify(h, &m, pub, msg, sizeof(msg), sig, n), CKR_OK);
		sig[0] ^= 1;
		assert_rv(verify(h, &m, pub, msg, sizeof(msg), sig, n),
			  CKR_SIGNATURE_INVALID);
	}
	/* PSS needs its parameter. */
	{
		CK_MECHANISM bare = { CKM_RSA_PKCS_PSS, NULL, 0 };

		assert_rv(P11->C_SignInit(h, &bare, priv), CKR_MECHANISM_PARAM_INVALID);
	}
	EVP_PKEY_free(k);
}

static size_t ossl_rsa_encrypt(EVP_PKEY *k, int padding, const char *md,
			       const char *label, const uint8_t *in, size_t len,
			       uint8_t *out)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	size_t n = 512;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(c, padding) > 0);
	if (md) {
		assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_get_digestbyname(md)) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_get_digestbyname(md)) > 0);
	}
	if (label) {
		char *l = OPENSSL_strdup(label);

		assert_true(EVP_PKEY_CTX_set0_rsa_oaep_label(c, l, (int)strlen(l)) > 0);
	}
	assert_int_equal(EVP_PKEY_encrypt(c, out, &n, in, len), 1);
	EVP_PKEY_CTX_free(c);
	return n;
}

static void rsa_decrypts_to(CK_SESSION_HANDLE h, CK_MECHANISM *m,
			    CK_OBJECT_HANDLE priv, const uint8_t *ct, size_t cl,
			    const uint8_t *msg, size_t len)
{
	uint8_t pt[512];
	CK_ULONG n = sizeof(pt);

	assert_rv(P11->C_DecryptInit(h, m, priv), CKR_OK);
	assert_rv(P11->C_Decrypt(h, (CK_BYTE_PTR)ct, cl, pt, &n), CKR_OK);
	assert_int_equal(n, len);
	assert_memory_equal(pt, msg, len);
}

/* Encrypt on the token, decrypt on the token; returns the ciphertext. */
static const uint8_t *rsa_round_trip(CK_SESSION_HANDLE h, CK_MECHANISM *m,
				     CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv,
				     const uint8_t *msg, size_t len)
{
	static uint8_t ct[512];
	CK_ULONG n = sizeof(ct);

	assert_rv(P11->C_EncryptInit(h, m, pub), CKR_OK);
	assert_rv(P11->C_Encrypt(h, (CK_BYTE_PTR)msg, len, ct, &n), CKR_OK);
	assert_int_equal(n, 256);
	rsa_decrypts_to(h, m, priv, ct, n, msg, len);
	return ct;
}

static void test_rsa_encrypt(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE pub, priv;
	CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 };
	CK_RSA_PKCS_OAEP_PARAMS op = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED,
				       NULL, 0 };
	CK_MECHANISM oaep = { CKM_RSA_PKCS_OAEP, &op, sizeof(op) };
	uint8_t msg[100], ct[512], pt[512];
	CK_ULONG n;
	size_t cl;
	EVP_PKEY *k;

	(void)state;
	gen_rsa(h, 2048, &pub, &priv);
	k = rsa_pub_to_evp(h, pub);
	fill_pattern(msg, sizeof(msg), 42);

	/* PKCS #1 v1.5: OpenSSL encrypts, the token decrypts, and back. */
	cl = ossl_rsa_encrypt(k, RSA_PKCS1_PADDING, NULL, NULL, msg, sizeof(msg), ct);
	assert_int_equal(cl, 256);
	assert_rv(P11->C_DecryptInit(h, &pkcs, priv), CKR_OK);
	n = 0;
	assert_rv(P11->C_Decrypt(h, ct, cl, NULL, &n), CKR_OK);
	assert_true(n >= sizeof(msg) && n <= 256);
	n = sizeof(pt);
	assert_rv(P11->C_Decrypt(h, ct, cl, pt, &n), CKR_OK);
	assert_int_equal(n, sizeof(msg));
	assert_memory_equal(pt, msg, sizeof(msg));
	rsa_round_trip(h, &pkcs, pub, priv, msg, sizeof(msg));
	/* At most k - 11 bytes fit. */
	assert_rv(P11->C_EncryptInit(h, &pkcs, pub), CKR_OK);
	n = sizeof(ct);
	assert_rv(P11->C_Encrypt(h, ct, 246, ct, &n), CKR_DATA_LEN_RANGE);

	/* OAEP with SHA-256, without and with a label. */
	cl = ossl_rsa_encrypt(k, RSA_PKCS1_OAEP_PADDING, "SHA256", NULL, msg,
			      sizeof(msg), ct);
	rsa_decrypts_to(h, &oaep, priv, ct, cl, msg, sizeof(msg));
	op.pSourceData = (CK_VOID_PTR)"label";
	op.ulSourceDataLen = 5;
	cl = ossl_rsa_encrypt(k, RSA_PKCS1_OAEP_PADDING, "SHA256", "label", msg,
			      sizeof(msg), ct);
	rsa_decrypts_to(h, &oaep, priv, ct, cl, msg, sizeof(msg));
	/* The token's own OAEP encryption round-trips. */
	memcpy(ct, rsa_round_trip(h, &oaep, pub, priv, msg, sizeof(msg)), 256);
	/* The wrong label does not decrypt. */
	op.ulSourceDataLen = 4;
	assert_rv(P11->C_DecryptInit(h, &oaep, priv), CKR_OK);
	n = sizeof(pt);
	{
		CK_RV rv = P11->C_Decrypt(h, ct, 256, pt, &n);

		assert_true(rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_DATA_INVALID);
	}
	/* A malformed OAEP parameter. */
	oaep.ulParameterLen = 3;
	assert_rv(P11->C_EncryptInit(h, &oaep, pub), CKR_MECHANISM_PARAM_INVALID);
	EVP_PKEY_free(k);
}

/* ---- ECDSA -------------------------------------------------------------- */

static const struct { const uint8_t *oid; size_t oid_len; const char *group;
		      size_t sig_len; } curves[] = {
	{ OID_P256, sizeof(OID_P256), "P-256", 64 },
	{ OID_P384, sizeof(OID_P384), "P-384", 96 },
	{ OID_P521, sizeof(OID_P521), "P-521", 132 },
};

static void test_ecdsa_curves(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	uint8_t msg[64], dig[48], sig[256], *der, *params;
	size_t der_len;
	CK_ULONG n;

	(void)state;
	fill_pattern(msg, sizeof(msg), 43);
	sha("SHA384", msg, sizeof(msg), dig);
	for (size_t i = 0; i < ARRAY_SIZE(curves); i++) {
		CK_OBJECT_HANDLE pub, priv;
		EVP_PKEY *k;

		gen_ec(h, curves[i].oid, curves[i].oid_len, &pub, &priv);
		params = attr_get(h, pub, CKA_EC_PARAMS, &n);
		assert_int_equal(n, curves[i].oid_len);
		assert_memory_equal(params, curves[i].oid, n);
		free(params);
		assert_int_equal(attr_ulong(h, pub, CKA_KEY_TYPE), CKK_EC);
		k = ec_pub_to_evp(h, pub, curves[i].group);

		assert_rv(P11->C_SignInit(h, &m, priv), CKR_OK);
		n = 0;
		assert_rv(P11->C_Sign(h, dig, sizeof(dig), NULL, &n), CKR_OK);
		assert_int_equal(n, curves[i].sig_len);
		n = 10;
		assert_rv(P11->C_Sign(h, dig, sizeof(dig), sig, &n), CKR_BUFFER_TOO_SMALL);
		assert_int_equal(n, curves[i].sig_len);
		n = sizeof(sig);
		assert_rv(P11->C_Sign(h, dig, sizeof(dig), sig, &n), CKR_OK);
		assert_int_equal(n, curves[i].sig_len);
		der = ecdsa_to_der(sig, n, &der_len);
		assert_int_equal(ossl_verify_digest(k, 0, NULL, 0, der, der_len, dig,
						    sizeof(dig)), 1);
		OPENSSL_free(der);
		assert_rv(verify(h, &m, pub, dig, sizeof(dig), sig, n), CKR_OK);
		sig[n - 1] ^= 1;
		assert_rv(verify(h, &m, pub, dig, sizeof(dig), sig, n),
			  CKR_SIGNATURE_INVALID);
		assert_rv(verify(h, &m, pub, dig, sizeof(dig), sig, n - 2),
			  CKR_SIGNATURE_LEN_RANGE);
		EVP_PKEY_free(k);
	}
	/* An unknown curve (secp256k1) is not supported. */
	{
		static const uint8_t k1[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a };
		CK_MECHANISM g = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
		CK_OBJECT_HANDLE pub, priv;
		struct tmpl pt, kt;
		CK_RV rv;

		tmpl_init(&pt);
		tmpl_bytes(&pt, CKA_EC_PARAMS, k1, sizeof(k1));
		tmpl_init(&kt);
		rv = P11->C_GenerateKeyPair(h, &g, pt.a, pt.n, kt.a, kt.n, &pub, &priv);
		if (rv != CKR_CURVE_NOT_SUPPORTED && rv != CKR_ATTRIBUTE_VALUE_INVALID &&
		    rv != CKR_DOMAIN_PARAMS_INVALID)
			fail_msg("generating on secp256k1: %s", rv_name(rv));
	}
}

static void test_ecdsa_hash_mechanisms(void **state)
{
	static const struct { CK_MECHANISM_TYPE m; const char *md; } mechs[] = {
		{ CKM_ECDSA_SHA1, "SHA1" }, { CKM_ECDSA_SHA224, "SHA224" },
		{ CKM_ECDSA_SHA256, "SHA256" }, { CKM_ECDSA_SHA384, "SHA384" },
		{ CKM_ECDSA_SHA512, "SHA512" },
	};
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE pub, priv;
	uint8_t msg[500], sig[64], *der;
	size_t der_len;
	CK_ULONG n;
	EVP_PKEY *k;

	(void)state;
	gen_ec(h, OID_P256, sizeof(OID_P256), &pub, &priv);
	k = ec_pub_to_evp(h, pub, "P-256");
	fill_pattern(msg, sizeof(msg), 44);
	for (size_t i = 0; i < ARRAY_SIZE(mechs); i++) {
		CK_MECHANISM m = { mechs[i].m, NULL, 0 };

		n = sign(h, &m, priv, msg, sizeof(msg), sig, sizeof(sig));
		assert_int_equal(n, 64);
		der = ecdsa_to_der(sig, n, &der_len);
		assert_int_equal(ossl_verify_msg(k, mechs[i].md, 0, 0, der, der_len, msg,
						 sizeof(msg)), 1);
		OPENSSL_free(der);

		assert_rv(P11->C_SignInit(h, &m, priv), CKR_OK);
		for (size_t off = 0; off < sizeof(msg); off += 100)
			assert_rv(P11->C_SignUpdate(h, msg + off, 100), CKR_OK);
		n = sizeof(sig);
		assert_rv(P11->C_SignFinal(h, sig, &n), CKR_OK);
		assert_int_equal(n, 64);
		der = ecdsa_to_der(sig, n, &der_len);
		assert_int_equal(ossl_verify_msg(k, mechs[i].md, 0, 0, der, der_len, msg,
						 sizeof(msg)), 1);
		OPENSSL_free(der);
		assert_rv(P11->C_VerifyInit(h, &m, pub), CKR_OK);
		assert_rv(P11->C_VerifyUpdate(h, msg, 250), CKR_OK);
		assert_rv(P11->C_VerifyUpdate(h, msg + 250, 250), CKR_OK);
		assert_rv(P11->C_VerifyFinal(h, sig, n), CKR_OK);
		msg[0] ^= 1;
		assert_rv(verify(h, &m, pub, msg, sizeof(msg), sig, n),
			  CKR_SIGNATURE_INVALID);
		msg[0] ^= 1;
	}
	EVP_PKEY_free(k);
}

/* ---- Ed25519 ------------------------------------------------------------ */

static void ed25519_round(CK_SESSION_HANDLE h, const uint8_t *params,
			  size_t params_len)
{
	CK_MECHANISM m = { CKM_EDDSA, NULL, 0 };
	CK_OBJECT_HANDLE pub, priv;
	uint8_t msg[150], sig[64], sig2[64];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	CK_ULONG n;
	EVP_PKEY *k;

	gen_ed25519(h, params, params_len, &pub, &priv);
	assert_int_equal(attr_ulong(h, pub, CKA_KEY_TYPE), CKK_EC_EDWARDS);
	assert_int_equal(attr_len(h, pub, CKA_EC_POINT), 34);	/* 04 20 + 32 */
	k = ed25519_pub_to_evp(h, pub);
	fill_pattern(msg, sizeof(msg), 45);

	n = sign(h, &m, priv, msg, sizeof(msg), sig, sizeof(sig));
	assert_int_equal(n, 64);
	assert_non_null(c);
	assert_int_equal(EVP_DigestVerifyInit(c, NULL, NULL, NULL, k), 1);
	assert_int_equal(EVP_DigestVerify(c, sig, 64, msg, sizeof(msg)), 1);
	/* Deterministic (RFC 8032). */
	assert_int_equal(sign(h, &m, priv, msg, sizeof(msg), sig2, sizeof(sig2)), 64);
	assert_memory_equal(sig, sig2, 64);
	assert_rv(verify(h, &m, pub, msg, sizeof(msg), sig, 64), CKR_OK);
	sig[32] ^= 1;
	assert_rv(verify(h, &m, pub, msg, sizeof(msg), sig, 64), CKR_SIGNATURE_INVALID);
	assert_rv(verify(h, &m, pub, msg, sizeof(msg), sig, 63), CKR_SIGNATURE_LEN_RANGE);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
}

static void test_ed25519(void **state)
{
	CK_SESSION_HANDLE h = user_session();

	(void)state;
	ed25519_round(h, OID_ED25519, sizeof(OID_ED25519));
}

/* CKA_EC_PARAMS may also name the curve as a PrintableString (3.0). */
static void test_ed25519_curve_name(void **state)
{
	static const uint8_t name[] = {
		0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9',
	};
	CK_SESSION_HANDLE h = user_session();

	(void)state;
	ed25519_round(h, name, sizeof(name));
}

const struct CMUnitTest crypto_asym_tests[] = {
	P11_TEST(test_rsa_pkcs1_sign),
	P11_TEST(test_rsa_pss),
	P11_TEST(test_rsa_encrypt),
	P11_TEST(test_ecdsa_curves),
	P11_TEST(test_ecdsa_hash_mechanisms),
	P11_TEST(test_ed25519),
	P11_TEST(test_ed25519_curve_name),
};
SUITE_COUNT(crypto_asym);
