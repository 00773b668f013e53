// SPDX-License-Identifier: MIT
/*
 * The cryptography of the cloning messages (Documentation/phsm/cloning.rst):
 * ephemeral ECDH on P-256 and P-384, the KDF hashes, HKDF (RFC 5869),
 * HMAC, AES-256-GCM, and the keys a cloning domain contributes.  All of it
 * is OpenSSL 3 EVP; nothing here knows about messages or records.
 *
 * Every peer point is distrusted: it must be uncompressed SEC1 of exactly
 * the curve's length, decode to a point on the curve (which excludes the
 * point at infinity, whose encoding is one zero byte) and pass OpenSSL's
 * public key check, before it is used in a derivation.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <phsm/cryptoki_ca.h>

#include "clone.h"

struct fw_eph {
	uint64_t suite;
	EVP_PKEY *pkey;
};

/* ---- curves and hashes -------------------------------------------------- */

static const char *suite_group(uint64_t suite)
{
	switch (suite) {
	case FW_CLN_SUITE_P256:
		return "P-256";
	case FW_CLN_SUITE_P384:
		return "P-384";
	default:
		return NULL;
	}
}

/* Uncompressed point length of a suite's curve; 0 if unknown. */
static size_t suite_point_len(uint64_t suite)
{
	return suite == FW_CLN_SUITE_P256 ? 65 :
	       suite == FW_CLN_SUITE_P384 ? 97 : 0;
}

static const char *kdf_md_name(uint64_t kdf)
{
	switch (kdf) {
	case FW_CLN_KDF_SHA256:
		return "SHA256";
	case FW_CLN_KDF_SHA384:
		return "SHA384";
	default:
		return NULL;
	}
}

size_t fw_kdf_len(uint64_t kdf)
{
	return kdf == FW_CLN_KDF_SHA256 ? 32 : kdf == FW_CLN_KDF_SHA384 ? 48 : 0;
}

bool fw_kdf_hash(uint64_t kdf, const uint8_t *const *parts,
		 const size_t *lens, size_t n, uint8_t *out)
{
	const char *name = kdf_md_name(kdf);
	EVP_MD_CTX *ctx;
	unsigned int len = 0;
	bool ok;

	if (!name)
		return false;
	ctx = EVP_MD_CTX_new();
	ok = ctx && EVP_DigestInit_ex2(ctx, EVP_get_digestbyname(name), NULL);
	for (size_t i = 0; ok && i < n; i++)
		ok = !lens[i] || EVP_DigestUpdate(ctx, parts[i], lens[i]) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, out, &len) == 1 &&
	     len == fw_kdf_len(kdf);
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* ---- HKDF and HMAC -------------------------------------------------- */

static bool hkdf(uint64_t kdf, int mode, const uint8_t *salt, size_t salt_len,
		 const uint8_t *key, size_t key_len, const uint8_t *info,
		 size_t info_len, uint8_t *out, size_t out_len)
{
	const char *name = kdf_md_name(kdf);
	EVP_KDF *k;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM p[6];
	int i = 0;
	bool ok = false;

	if (!name || !key_len)
		return false;
	p[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						  (char *)name, 0);
	p[i++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	p[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						   (void *)key, key_len);
	if (salt_len)
		p[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
							   (void *)salt,
							   salt_len);
	if (info_len)
		p[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
							   (void *)info,
							   info_len);
	p[i] = OSSL_PARAM_construct_end();
	k = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (k)
		ctx = EVP_KDF_CTX_new(k);
	if (ctx)
		ok = EVP_KDF_derive(ctx, out, out_len, p) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(k);
	ERR_clear_error();
	return ok;
}

/* An empty salt is the RFC's default: HashLen zero bytes. */
bool fw_hkdf_extract(uint64_t kdf, const uint8_t *salt, size_t salt_len,
		     const uint8_t *ikm, size_t ikm_len, uint8_t *prk)
{
	size_t len = fw_kdf_len(kdf);

	return len && hkdf(kdf, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, salt_len,
			   ikm, ikm_len, NULL, 0, prk, len);
}

/* prk is fw_kdf_len(kdf) bytes; at most 255 blocks of output (RFC 5869). */
bool fw_hkdf_expand(uint64_t kdf, const uint8_t *prk, const uint8_t *info,
		    size_t info_len, uint8_t *out, size_t out_len)
{
	size_t len = fw_kdf_len(kdf);

	return len && out_len && out_len <= 255 * len &&
	       hkdf(kdf, EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, prk, len,
		    info, info_len, out, out_len);
}

bool fw_hkdf_label(uint64_t kdf, const uint8_t *prk, const char *label,
		   const uint8_t *ctx, size_t ctx_len, uint8_t *out,
		   size_t out_len)
{
	uint8_t info[64 + FW_CLN_HASH_MAX];
	size_t n = strlen(label);

	if (n + ctx_len > sizeof(info))
		return false;
	memcpy(info, label, n);
	if (ctx_len)
		memcpy(info + n, ctx, ctx_len);
	return fw_hkdf_expand(kdf, prk, info, n + ctx_len, out, out_len);
}

bool fw_th(uint64_t kdf, const uint8_t *a, size_t al, const uint8_t *b,
	   size_t bl, const uint8_t *c, size_t cl, const uint8_t *d, size_t dl,
	   uint8_t *out)
{
	const uint8_t *parts[4] = { a, b, c, d };
	size_t lens[4] = { al, bl, cl, dl };
	size_t n = d ? 4 : c ? 3 : b ? 2 : 1;

	return fw_kdf_hash(kdf, parts, lens, n, out);
}

bool fw_cln_master(uint64_t kdf, const uint8_t *hs,
		   const uint8_t psk[FW_CLN_PSK_LEN], const char *derived,
		   const char *fin_a, const char *fin_b, uint8_t *ms,
		   uint8_t *fk_a, uint8_t *fk_b)
{
	uint8_t salt[FW_CLN_HASH_MAX];
	size_t l = fw_kdf_len(kdf);
	bool ok;

	ok = l && fw_hkdf_label(kdf, hs, derived, NULL, 0, salt, l) &&
	     fw_hkdf_extract(kdf, salt, l, psk, FW_CLN_PSK_LEN, ms) &&
	     fw_hkdf_label(kdf, ms, fin_a, NULL, 0, fk_a, l) &&
	     fw_hkdf_label(kdf, ms, fin_b, NULL, 0, fk_b, l);
	OPENSSL_cleanse(salt, sizeof(salt));
	return ok;
}

/* out is fw_kdf_len(kdf) bytes. */
bool fw_hmac(uint64_t kdf, const uint8_t *key, size_t key_len,
	     const uint8_t *data, size_t len, uint8_t *out)
{
	const char *name = kdf_md_name(kdf);
	size_t out_len = 0;
	bool ok;

	if (!name || !key_len)
		return false;
	ok = EVP_Q_mac(NULL, "HMAC", NULL, name, NULL, key, key_len, data, len,
		       out, fw_kdf_len(kdf), &out_len) != NULL &&
	     out_len == fw_kdf_len(kdf);
	ERR_clear_error();
	return ok;
}

/* ---- AES-256-GCM ------------------------------------------------------ */

static bool gcm(bool seal, const uint8_t key[FW_CLN_KEY_LEN],
		const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
		const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t none[1];
	int n = 0, fin = 0;
	bool ok;

	if (len > INT_MAX || aad_len > INT_MAX)
		return false;
	if (!len)
		out = none;	/* an empty message still has a tag */
	ctx = EVP_CIPHER_CTX_new();
	ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce,
				      seal) == 1 &&
	     (!aad_len ||
	      EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1) &&
	     (!len || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1);
	if (ok && !seal)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
					 FW_CLN_TAG_LEN, tag) == 1;
	/* Decrypting, the final step is where a wrong tag shows. */
	ok = ok && EVP_CipherFinal_ex(ctx, out + (len ? n : 0), &fin) == 1;
	if (ok && seal)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
					 FW_CLN_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* out: len + FW_CLN_TAG_LEN bytes. */
bool fw_gcm_seal(const uint8_t key[FW_CLN_KEY_LEN], const uint8_t nonce[12],
		 const uint8_t *aad, size_t aad_len, const uint8_t *in,
		 size_t len, uint8_t *out)
{
	return gcm(true, key, nonce, aad, aad_len, in, len, out, out + len);
}

/*
 * in: ciphertext || tag, len bytes; out: len - FW_CLN_TAG_LEN bytes.
 * On failure out is wiped: nothing unauthenticated is left behind.
 */
bool fw_gcm_open(const uint8_t key[FW_CLN_KEY_LEN], const uint8_t nonce[12],
		 const uint8_t *aad, size_t aad_len, const uint8_t *in,
		 size_t len, uint8_t *out)
{
	uint8_t tag[FW_CLN_TAG_LEN];
	size_t clen;

	if (len < FW_CLN_TAG_LEN)
		return false;
	clen = len - FW_CLN_TAG_LEN;
	memcpy(tag, in + clen, sizeof(tag));
	if (gcm(false, key, nonce, aad, aad_len, in, clen, out, tag))
		return true;
	OPENSSL_cleanse(out, clen);
	return false;
}

/* ---- ephemeral ECDH ------------------------------------------------- */

/* The peer's public key, if pt is a valid point of the suite's curve. */
static EVP_PKEY *peer_key(uint64_t suite, const uint8_t *pt, size_t len)
{
	const char *group = suite_group(suite);
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM p[3];

	if (!group || !pt || len != suite_point_len(suite) || pt[0] != 0x04)
		return NULL;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						(char *)group, 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
						 (void *)pt, len);
	p[2] = OSSL_PARAM_construct_end();
	/* Decoding refuses points that are not on the curve. */
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, p) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	if (pkey) {
		ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
		EVP_PKEY_CTX_free(ctx);
	}
	ERR_clear_error();
	return pkey;
}

bool fw_eph_point_ok(uint64_t suite, const uint8_t *pt, size_t len)
{
	EVP_PKEY *pkey = peer_key(suite, pt, len);

	EVP_PKEY_free(pkey);
	return pkey != NULL;
}

/* pub: room for FW_CLN_POINT_MAX bytes; *pub_len is set. */
CK_RV fw_eph_new(uint64_t suite, struct fw_eph **out, uint8_t *pub,
		 size_t *pub_len)
{
	const char *group = suite_group(suite);
	struct fw_eph *e;
	size_t len = 0;

	*out = NULL;
	if (!group)
		return CKR_SESSION_NEGOTIATION_NO_ALGS;
	e = calloc(1, sizeof(*e));
	if (!e)
		return CKR_HOST_MEMORY;
	e->suite = suite;
	e->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
	if (!e->pkey ||
	    EVP_PKEY_get_octet_string_param(e->pkey,
					    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
					    pub, FW_CLN_POINT_MAX, &len) != 1 ||
	    len != suite_point_len(suite)) {
		ERR_clear_error();
		fw_eph_free(e);
		return CKR_DEVICE_ERROR;
	}
	*pub_len = len;
	*out = e;
	return CKR_OK;
}

void fw_eph_free(struct fw_eph *e)
{
	if (!e)
		return;
	EVP_PKEY_free(e->pkey);	/* clears the private scalar */
	free(e);
}

/* z: room for FW_CLN_HASH_MAX bytes (P-384's x); *z_len is set. */
CK_RV fw_eph_derive(struct fw_eph *e, const uint8_t *peer, size_t peer_len,
		    uint8_t *z, size_t *z_len)
{
	EVP_PKEY *pk = peer_key(e->suite, peer, peer_len);
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = FW_CLN_HASH_MAX;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (!pk)
		return CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, e->pkey, NULL);
	if (ctx && EVP_PKEY_derive_init(ctx) > 0 &&
	    EVP_PKEY_derive_set_peer(ctx, pk) > 0 &&
	    EVP_PKEY_derive(ctx, z, &len) > 0 &&
	    len == suite_point_len(e->suite) / 2) {
		*z_len = len;
		rv = CKR_OK;
	}
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rv;
}

/* ---- domains ---------------------------------------------------------- */

/*
 * A domain's ID and psk (cloning.rst, "Cloning domains as pre-shared
 * keys").  The card keeps only the secret luna.c derived from the KCV,
 * never the KCV itself, so that secret is the HKDF input keying
 * material; it is as unique to the KCV as the KCV is.
 */
bool fw_domain_keys(const struct fw_domain *d,
		    uint8_t id[FW_CLN_DOMAIN_ID_LEN],
		    uint8_t psk[FW_CLN_PSK_LEN])
{
	static const char salt[] = "phsm domain v1";
	uint8_t prk[32];
	bool ok;

	ok = fw_hkdf_extract(FW_CLN_KDF_SHA256, (const uint8_t *)salt,
			     sizeof(salt) - 1, d->secret, sizeof(d->secret),
			     prk) &&
	     fw_hkdf_label(FW_CLN_KDF_SHA256, prk, "id", NULL, 0, id,
			   FW_CLN_DOMAIN_ID_LEN) &&
	     fw_hkdf_label(FW_CLN_KDF_SHA256, prk, "psk", NULL, 0, psk,
			   FW_CLN_PSK_LEN);
	OPENSSL_cleanse(prk, sizeof(prk));
	if (!ok) {
		OPENSSL_cleanse(id, FW_CLN_DOMAIN_ID_LEN);
		OPENSSL_cleanse(psk, FW_CLN_PSK_LEN);
	}
	return ok;
}
