// SPDX-License-Identifier: MIT
/*
 * Key wrapping: secret keys with AES key wrap (RFC 3394 / RFC 5649) or
 * RSA (PKCS#1 v1.5, OAEP); private keys as PKCS#8 PrivateKeyInfo DER with
 * RFC 5649, the only one of these that takes arbitrary lengths.
 */
#include "mech_impl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>

/* Largest key material the engine unwraps: a PKCS#8 RSA-16384 key fits. */
#define WRAPPED_MAX (16u << 10)

static bool is_aes_wrap(const struct fw_mech_info *mi)
{
	return mi->family == FW_FAM_AES_WRAP;
}

/* ---- What gets wrapped ---- */

struct blob {
	uint8_t *p;
	size_t len;
};

static void blob_free(struct blob *b)
{
	fw_free_secret(b->p, b->len);
	b->p = NULL;
	b->len = 0;
}

static CK_RV pkcs8_der(const struct fw_key *k, struct blob *b)
{
	OSSL_ENCODER_CTX *ectx = OSSL_ENCODER_CTX_new_for_pkey(
		k->pkey, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
	unsigned char *der = NULL;
	size_t len = 0;
	bool ok = ectx && OSSL_ENCODER_to_data(ectx, &der, &len);

	OSSL_ENCODER_CTX_free(ectx);
	if (!ok) {
		ERR_clear_error();
		return CKR_KEY_NOT_WRAPPABLE;
	}
	/* Copy into plain heap memory so that blob_free() handles both. */
	b->p = malloc(len);
	if (b->p) {
		memcpy(b->p, der, len);
		b->len = len;
	}
	OPENSSL_clear_free(der, len);
	return b->p ? CKR_OK : CKR_HOST_MEMORY;
}

/*
 * The bytes to wrap.  RFC 3394 takes multiples of 8 bytes, at least 16:
 * other secret values are padded with zero bytes, the convention PKCS#11
 * uses for wrapping with block ciphers (unwrapping cuts them off again by
 * CKA_VALUE_LEN).
 */
static CK_RV wrap_input(const struct fw_mech_info *mi, const struct fw_key *k,
			struct blob *b)
{
	size_t len;

	if (k->cls == CKO_PRIVATE_KEY) {
		if (mi->variant != FW_V_KWP)
			return CKR_KEY_NOT_WRAPPABLE;
		return pkcs8_der(k, b);
	}
	if (k->cls != CKO_SECRET_KEY)
		return CKR_KEY_NOT_WRAPPABLE;
	len = k->secret_len;
	if (mi->family == FW_FAM_AES_WRAP && mi->variant != FW_V_KWP) {
		len = (len + 7) & ~(size_t)7;
		if (len < 16)
			len = 16;
	}
	b->p = calloc(1, len);
	if (!b->p)
		return CKR_HOST_MEMORY;
	memcpy(b->p, k->secret, k->secret_len);
	b->len = len;
	return CKR_OK;
}

/* ---- RSA ---- */

static CK_RV rsa_ctx(const struct fw_mech_info *mi, const struct fw_mech *m,
		     struct fw_key *k, bool enc, EVP_PKEY_CTX **out)
{
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	CK_RV rv;

	*out = NULL;
	if (!pctx)
		return CKR_HOST_MEMORY;
	if ((enc ? EVP_PKEY_encrypt_init(pctx) :
		   EVP_PKEY_decrypt_init(pctx)) <= 0) {
		EVP_PKEY_CTX_free(pctx);
		return CKR_FUNCTION_FAILED;
	}
	rv = fw_rsa_set_padding(pctx, mi, m);
	if (rv != CKR_OK) {
		EVP_PKEY_CTX_free(pctx);
		return rv;
	}
	*out = pctx;
	return CKR_OK;
}

static CK_RV rsa_wrap(const struct fw_mech_info *mi, const struct fw_mech *m,
		      struct fw_key *k, const struct blob *in,
		      uint8_t *out, size_t *out_len)
{
	size_t klen = (size_t)EVP_PKEY_get_size(k->pkey), n;
	EVP_PKEY_CTX *pctx;
	CK_RV rv;

	if (in->len > fw_rsa_max_input(k, mi, m))
		return CKR_KEY_SIZE_RANGE;
	if (fw_out_check(out, out_len, klen, &rv))
		return rv;
	rv = rsa_ctx(mi, m, k, true, &pctx);
	if (rv != CKR_OK)
		return rv;
	n = *out_len;
	if (EVP_PKEY_encrypt(pctx, out, &n, in->p, in->len) > 0)
		*out_len = n;
	else
		rv = CKR_FUNCTION_FAILED;
	EVP_PKEY_CTX_free(pctx);
	return rv;
}

static CK_RV check_wrapping_key(const struct fw_mech_info *mi,
				const struct fw_key *k, bool wrap)
{
	bool ok = is_aes_wrap(mi) ?
		  k->cls == CKO_SECRET_KEY && k->type == CKK_AES :
		  k->type == CKK_RSA &&
		  k->cls == (wrap ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY);

	if (!ok)
		return wrap ? CKR_WRAPPING_KEY_TYPE_INCONSISTENT :
			      CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
	return fw_check_key_size(mi, k, wrap ? CKR_WRAPPING_KEY_SIZE_RANGE :
					       CKR_UNWRAPPING_KEY_SIZE_RANGE);
}

CK_RV fw_wrap(const struct fw_mech *m, struct fw_key *wrapping,
	      const struct fw_key *key, const struct fw_attrs *key_obj,
	      uint8_t *out, size_t *out_len)
{
	const struct fw_mech_info *mi = fw_mech_info(m->type);
	struct blob in = { 0 };
	CK_RV rv;

	(void)key_obj;	/* the engine's key already holds the material */
	if (!mi || !(mi->desc.flags & CKF_WRAP))
		return CKR_MECHANISM_INVALID;
	rv = check_wrapping_key(mi, wrapping, true);
	if (rv == CKR_OK)
		rv = wrap_input(mi, key, &in);
	if (rv != CKR_OK)
		return rv;
	if (is_aes_wrap(mi)) {
		rv = fw_aes_kw(wrapping, mi->variant == FW_V_KWP, true, m,
			       in.p, in.len, out, out_len);
		if (rv == CKR_DATA_LEN_RANGE)
			rv = CKR_KEY_SIZE_RANGE;
	} else {
		rv = rsa_wrap(mi, m, wrapping, &in, out, out_len);
	}
	blob_free(&in);
	return rv;
}

/* ---- Unwrapping ---- */

static CK_RV unwrap_bytes(const struct fw_mech_info *mi,
			  const struct fw_mech *m, struct fw_key *k,
			  const uint8_t *wrapped, size_t wrapped_len,
			  struct blob *out)
{
	EVP_PKEY_CTX *pctx = NULL;
	size_t n = wrapped_len;
	CK_RV rv;

	if (wrapped_len > WRAPPED_MAX)
		return CKR_WRAPPED_KEY_LEN_RANGE;
	out->p = malloc(wrapped_len ? wrapped_len : 1);
	if (!out->p)
		return CKR_HOST_MEMORY;
	out->len = wrapped_len;
	if (is_aes_wrap(mi)) {
		rv = fw_aes_kw(k, mi->variant == FW_V_KWP, false, m, wrapped,
			       wrapped_len, out->p, &n);
		if (rv == CKR_ENCRYPTED_DATA_LEN_RANGE)
			rv = CKR_WRAPPED_KEY_LEN_RANGE;
		else if (rv == CKR_ENCRYPTED_DATA_INVALID)
			rv = CKR_WRAPPED_KEY_INVALID;
	} else if (wrapped_len != (size_t)EVP_PKEY_get_size(k->pkey)) {
		rv = CKR_WRAPPED_KEY_LEN_RANGE;
	} else {
		rv = rsa_ctx(mi, m, k, false, &pctx);
		if (rv == CKR_OK && EVP_PKEY_decrypt(pctx, out->p, &n, wrapped,
						     wrapped_len) <= 0) {
			ERR_clear_error();
			rv = CKR_WRAPPED_KEY_INVALID;
		}
		EVP_PKEY_CTX_free(pctx);
	}
	if (rv != CKR_OK) {
		blob_free(out);
		return rv;
	}
	/* Keep the allocation size for the wipe, the length for the user. */
	OPENSSL_cleanse(out->p + n, wrapped_len - n);
	out->len = n;
	return CKR_OK;
}

/*
 * A secret key's length: CKA_VALUE_LEN when given.  Only RFC 3394 pads
 * (with zeros), so only there may the template ask for fewer bytes.
 */
static CK_RV unwrap_secret(const struct fw_mech_info *mi,
			   const struct fw_attrs *tmpl, CK_KEY_TYPE type,
			   const struct blob *b, struct fw_attrs *key)
{
	bool padded = is_aes_wrap(mi) && mi->variant != FW_V_KWP;
	CK_ULONG len = b->len;
	CK_RV rv;

	if (type != CKK_AES && type != CKK_GENERIC_SECRET &&
	    !fw_key_type_is_hmac(type))
		return CKR_TEMPLATE_INCONSISTENT;
	rv = fw_attrs_get_ulong(tmpl, CKA_VALUE_LEN, &len);
	if (rv == CKR_TEMPLATE_INCOMPLETE)
		len = b->len;
	else if (rv != CKR_OK)
		return rv;
	else if (len > b->len || (len < b->len && !padded))
		return CKR_TEMPLATE_INCONSISTENT;
	for (size_t i = len; i < b->len; i++)
		if (b->p[i])
			return CKR_WRAPPED_KEY_INVALID;
	if (type == CKK_AES && len != 16 && len != 24 && len != 32)
		return CKR_WRAPPED_KEY_INVALID;
	if (len == 0)
		return CKR_WRAPPED_KEY_INVALID;
	return fw_secret_attrs(type, b->p, len, key);
}

static enum fw_curve curve_of(EVP_PKEY *pkey)
{
	char name[64];
	static const struct {
		const char *name;
		enum fw_curve c;
	} names[] = {
		{ "prime256v1", FW_CURVE_P256 },
		{ "P-256", FW_CURVE_P256 },
		{ "secp384r1", FW_CURVE_P384 },
		{ "P-384", FW_CURVE_P384 },
		{ "secp521r1", FW_CURVE_P521 },
		{ "P-521", FW_CURVE_P521 },
	};

	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
					    name, sizeof(name), NULL))
		return FW_CURVE_NONE;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i].name) == 0)
			return names[i].c;
	return FW_CURVE_NONE;
}

static CK_RV decode_pkcs8(const struct blob *b, CK_KEY_TYPE type,
			  EVP_PKEY **pkey, enum fw_curve *c)
{
	const unsigned char *p = b->p;
	size_t left = b->len;
	OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(
		pkey, "DER", "PrivateKeyInfo", NULL, EVP_PKEY_KEYPAIR, NULL,
		NULL);
	bool ok = dctx && OSSL_DECODER_from_data(dctx, &p, &left) && !left;

	OSSL_DECODER_CTX_free(dctx);
	ERR_clear_error();
	*c = FW_CURVE_NONE;
	if (!ok || !*pkey)
		return CKR_WRAPPED_KEY_INVALID;
	switch (type) {
	case CKK_RSA:
		if (!EVP_PKEY_is_a(*pkey, "RSA") ||
		    EVP_PKEY_get_bits(*pkey) > FW_RSA_PARSE_MAX_BITS)
			return CKR_WRAPPED_KEY_INVALID;
		return CKR_OK;
	case CKK_EC:
		if (!EVP_PKEY_is_a(*pkey, "EC"))
			return CKR_WRAPPED_KEY_INVALID;
		*c = curve_of(*pkey);
		return *c ? CKR_OK : CKR_CURVE_NOT_SUPPORTED;
	case CKK_EC_EDWARDS:
		*c = FW_CURVE_ED25519;
		return EVP_PKEY_is_a(*pkey, "ED25519") ? CKR_OK :
							 CKR_WRAPPED_KEY_INVALID;
	default:
		return CKR_TEMPLATE_INCONSISTENT;
	}
}

static CK_RV unwrap_private(const struct fw_attrs *tmpl, CK_KEY_TYPE type,
			    const struct blob *b, struct fw_attrs *key)
{
	const struct fw_attr *params = fw_attrs_find(tmpl, CKA_EC_PARAMS);
	EVP_PKEY *pkey = NULL;
	struct fw_key *k = NULL;
	enum fw_curve c, tc;
	CK_RV rv = decode_pkcs8(b, type, &pkey, &c);

	if (rv == CKR_OK && params) {
		rv = fw_curve_from_params(params->value, params->len, &tc);
		if (rv == CKR_OK && tc != c)
			rv = CKR_TEMPLATE_INCONSISTENT;
	}
	if (rv != CKR_OK) {
		EVP_PKEY_free(pkey);
		return rv;
	}
	rv = fw_key_from_pkey(pkey, CKO_PRIVATE_KEY, type, c, &k);
	if (rv == CKR_OK)
		rv = fw_private_attrs(k, key);
	if (rv == CKR_OK)
		rv = fw_key_derived_attrs(k, key);
	if (rv == CKR_OK && params)
		rv = fw_attrs_set(key, CKA_EC_PARAMS, params->value,
				  params->len);
	fw_key_put(k);
	if (rv != CKR_OK)
		fw_attrs_free(key);
	return rv;
}

CK_RV fw_unwrap(const struct fw_mech *m, struct fw_key *unwrapping,
		const uint8_t *wrapped, size_t wrapped_len,
		CK_OBJECT_CLASS cls, CK_KEY_TYPE type,
		const struct fw_attrs *tmpl, struct fw_attrs *key)
{
	const struct fw_mech_info *mi = fw_mech_info(m->type);
	struct blob b = { 0 };
	CK_RV rv;

	memset(key, 0, sizeof(*key));
	if (!mi || !(mi->desc.flags & CKF_UNWRAP))
		return CKR_MECHANISM_INVALID;
	if (!wrapped && wrapped_len)
		return CKR_ARGUMENTS_BAD;
	if (cls != CKO_SECRET_KEY && cls != CKO_PRIVATE_KEY)
		return CKR_TEMPLATE_INCONSISTENT;
	rv = check_wrapping_key(mi, unwrapping, false);
	if (rv == CKR_OK)
		rv = unwrap_bytes(mi, m, unwrapping, wrapped, wrapped_len, &b);
	if (rv != CKR_OK)
		return rv;
	if (cls == CKO_SECRET_KEY)
		rv = unwrap_secret(mi, tmpl, type, &b, key);
	else
		rv = unwrap_private(tmpl, type, &b, key);
	blob_free(&b);
	return rv;
}
