// SPDX-License-Identifier: MIT
/* Key and key pair generation. */
#include "mech_impl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

/* A template's CKA_CLASS / CKA_KEY_TYPE, when given, must agree. */
static CK_RV check_ulong(const struct fw_attrs *t, CK_ATTRIBUTE_TYPE type,
			 CK_ULONG want)
{
	CK_ULONG v;
	CK_RV rv = fw_attrs_get_ulong(t, type, &v);

	if (rv == CKR_TEMPLATE_INCOMPLETE)
		return CKR_OK;
	if (rv != CKR_OK)
		return rv;
	return v == want ? CKR_OK : CKR_TEMPLATE_INCONSISTENT;
}

/* The finished attributes of a new key: material plus derived ones. */
static CK_RV add_derived(struct fw_attrs *a)
{
	struct fw_key *k;
	CK_RV rv = fw_key_load(a, &k);

	if (rv != CKR_OK)
		return rv == CKR_HOST_MEMORY ? rv : CKR_GENERAL_ERROR;
	rv = fw_key_derived_attrs(k, a);
	fw_key_put(k);
	return rv;
}

static CK_RV secret_len_and_type(CK_MECHANISM_TYPE mech,
				 const struct fw_attrs *tmpl,
				 CK_ULONG *len, CK_KEY_TYPE *type)
{
	CK_RV rv = check_ulong(tmpl, CKA_CLASS, CKO_SECRET_KEY);

	if (rv != CKR_OK)
		return rv;
	*type = mech == CKM_AES_KEY_GEN ? CKK_AES : CKK_GENERIC_SECRET;
	rv = fw_attrs_get_ulong(tmpl, CKA_KEY_TYPE, type);
	if (rv != CKR_OK && rv != CKR_TEMPLATE_INCOMPLETE)
		return rv;
	if (mech == CKM_AES_KEY_GEN ? *type != CKK_AES :
	    *type != CKK_GENERIC_SECRET && !fw_key_type_is_hmac(*type))
		return CKR_TEMPLATE_INCONSISTENT;
	rv = fw_attrs_get_ulong(tmpl, CKA_VALUE_LEN, len);
	if (rv != CKR_OK)
		return rv;
	if (mech == CKM_AES_KEY_GEN)
		return *len == 16 || *len == 24 || *len == 32 ?
		       CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID;
	if (*len == 0)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	return *len <= fw_mech_find(mech)->max_key ? CKR_OK : CKR_KEY_SIZE_RANGE;
}

CK_RV fw_generate_key(const struct fw_mech *m, const struct fw_attrs *tmpl,
		      struct fw_attrs *key)
{
	const struct fw_mech_info *mi = fw_mech_info(m->type);
	uint8_t value[512];
	CK_KEY_TYPE type;
	CK_ULONG len;
	CK_RV rv;

	memset(key, 0, sizeof(*key));
	if (!mi || !(mi->desc.flags & CKF_GENERATE))
		return CKR_MECHANISM_INVALID;
	rv = secret_len_and_type(m->type, tmpl, &len, &type);
	if (rv != CKR_OK)
		return rv;
	if (len > sizeof(value))
		return CKR_KEY_SIZE_RANGE;
	if (RAND_priv_bytes(value, (int)len) != 1)
		return CKR_DEVICE_ERROR;
	rv = fw_secret_attrs(type, value, len, key);
	OPENSSL_cleanse(value, sizeof(value));
	return rv;
}

CK_RV fw_secret_attrs(CK_KEY_TYPE type, const uint8_t *value, size_t len,
		      struct fw_attrs *key)
{
	CK_RV rv = fw_attrs_set_ulong(key, CKA_CLASS, CKO_SECRET_KEY);

	if (rv == CKR_OK)
		rv = fw_attrs_set_ulong(key, CKA_KEY_TYPE, type);
	if (rv == CKR_OK)
		rv = fw_attrs_set(key, CKA_VALUE, value, len);
	if (rv == CKR_OK)
		rv = add_derived(key);
	if (rv != CKR_OK)
		fw_attrs_free(key);
	return rv;
}

/* CKA_PUBLIC_EXPONENT: odd, at least 3, at most 256 bits. */
static CK_RV rsa_exponent(const struct fw_attrs *pub_tmpl, BIGNUM **e)
{
	const struct fw_attr *at = fw_attrs_find(pub_tmpl, CKA_PUBLIC_EXPONENT);

	*e = at ? BN_bin2bn(at->value, (int)at->len, NULL) : BN_new();
	if (!*e)
		return CKR_HOST_MEMORY;
	if (!at)
		return BN_set_word(*e, RSA_F4) ? CKR_OK : CKR_HOST_MEMORY;
	if (!BN_is_odd(*e) || BN_is_one(*e) || BN_num_bits(*e) > 256)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	return CKR_OK;
}

static CK_RV gen_rsa(const struct fw_mech_info *mi,
		     const struct fw_attrs *pub_tmpl, EVP_PKEY **pkey)
{
	CK_ULONG bits;
	BIGNUM *e = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	CK_RV rv = fw_attrs_get_ulong(pub_tmpl, CKA_MODULUS_BITS, &bits);

	if (rv != CKR_OK)
		return rv;
	if (bits < mi->desc.min_key || bits > mi->desc.max_key)
		return CKR_KEY_SIZE_RANGE;
	rv = rsa_exponent(pub_tmpl, &e);
	if (rv == CKR_OK) {
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		rv = CKR_DEVICE_ERROR;
		if (ctx && EVP_PKEY_keygen_init(ctx) > 0 &&
		    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) > 0 &&
		    EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) > 0 &&
		    EVP_PKEY_generate(ctx, pkey) > 0)
			rv = CKR_OK;
	}
	EVP_PKEY_CTX_free(ctx);
	BN_free(e);
	return rv;
}

static CK_RV gen_ec(enum fw_curve c, EVP_PKEY **pkey)
{
	EVP_PKEY_CTX *ctx;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (c == FW_CURVE_ED25519) {
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
		if (ctx && EVP_PKEY_keygen_init(ctx) > 0 &&
		    EVP_PKEY_generate(ctx, pkey) > 0)
			rv = CKR_OK;
	} else {
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (ctx && EVP_PKEY_keygen_init(ctx) > 0 &&
		    EVP_PKEY_CTX_set_group_name(ctx, fw_curve_group(c)) > 0 &&
		    EVP_PKEY_generate(ctx, pkey) > 0)
			rv = CKR_OK;
	}
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

static CK_RV pair_types(CK_MECHANISM_TYPE mech, CK_KEY_TYPE *type)
{
	switch (mech) {
	case CKM_RSA_PKCS_KEY_PAIR_GEN:
		*type = CKK_RSA;
		return CKR_OK;
	case CKM_EC_KEY_PAIR_GEN:
		*type = CKK_EC;
		return CKR_OK;
	case CKM_EC_EDWARDS_KEY_PAIR_GEN:
		*type = CKK_EC_EDWARDS;
		return CKR_OK;
	default:
		return CKR_MECHANISM_INVALID;
	}
}

static CK_RV check_pair_templates(const struct fw_attrs *pub_tmpl,
				  const struct fw_attrs *priv_tmpl,
				  CK_KEY_TYPE type)
{
	CK_RV rv = check_ulong(pub_tmpl, CKA_CLASS, CKO_PUBLIC_KEY);

	if (rv == CKR_OK)
		rv = check_ulong(priv_tmpl, CKA_CLASS, CKO_PRIVATE_KEY);
	if (rv == CKR_OK)
		rv = check_ulong(pub_tmpl, CKA_KEY_TYPE, type);
	if (rv == CKR_OK)
		rv = check_ulong(priv_tmpl, CKA_KEY_TYPE, type);
	return rv;
}

/* Both halves as attribute lists; CKA_EC_PARAMS as the caller spelled it. */
static CK_RV pair_attrs(EVP_PKEY *pkey, CK_KEY_TYPE type, enum fw_curve c,
			const struct fw_attr *ec_params,
			struct fw_attrs *pub, struct fw_attrs *priv)
{
	struct fw_key *kpub = NULL, *kpriv = NULL;
	CK_RV rv;

	if (!EVP_PKEY_up_ref(pkey)) {
		EVP_PKEY_free(pkey);
		return CKR_GENERAL_ERROR;
	}
	rv = fw_key_from_pkey(pkey, CKO_PRIVATE_KEY, type, c, &kpriv);
	if (rv != CKR_OK) {
		EVP_PKEY_free(pkey);
		return rv;
	}
	rv = fw_key_from_pkey(pkey, CKO_PUBLIC_KEY, type, c, &kpub);
	if (rv == CKR_OK)
		rv = fw_public_attrs(kpub, pub);
	if (rv == CKR_OK)
		rv = fw_key_derived_attrs(kpub, pub);
	if (rv == CKR_OK)
		rv = fw_private_attrs(kpriv, priv);
	if (rv == CKR_OK)
		rv = fw_key_derived_attrs(kpriv, priv);
	if (rv == CKR_OK && ec_params) {
		rv = fw_attrs_set(pub, CKA_EC_PARAMS, ec_params->value,
				  ec_params->len);
		if (rv == CKR_OK)
			rv = fw_attrs_set(priv, CKA_EC_PARAMS, ec_params->value,
					  ec_params->len);
	}
	fw_key_put(kpub);
	fw_key_put(kpriv);
	return rv;
}

CK_RV fw_generate_key_pair(const struct fw_mech *m,
			   const struct fw_attrs *pub_tmpl,
			   const struct fw_attrs *priv_tmpl,
			   struct fw_attrs *pub, struct fw_attrs *priv)
{
	const struct fw_mech_info *mi = fw_mech_info(m->type);
	const struct fw_attr *params = NULL;
	enum fw_curve c = FW_CURVE_NONE;
	EVP_PKEY *pkey = NULL;
	CK_KEY_TYPE type;
	CK_RV rv;

	memset(pub, 0, sizeof(*pub));
	memset(priv, 0, sizeof(*priv));
	if (!mi || !(mi->desc.flags & CKF_GENERATE_KEY_PAIR))
		return CKR_MECHANISM_INVALID;
	rv = pair_types(m->type, &type);
	if (rv == CKR_OK)
		rv = check_pair_templates(pub_tmpl, priv_tmpl, type);
	if (rv != CKR_OK)
		return rv;
	if (type == CKK_RSA) {
		rv = gen_rsa(mi, pub_tmpl, &pkey);
	} else {
		params = fw_attrs_find(pub_tmpl, CKA_EC_PARAMS);
		if (!params)
			return CKR_TEMPLATE_INCOMPLETE;
		rv = fw_curve_from_params(params->value, params->len, &c);
		if (rv == CKR_OK &&
		    (type == CKK_EC_EDWARDS) != (c == FW_CURVE_ED25519))
			rv = CKR_CURVE_NOT_SUPPORTED;
		if (rv == CKR_OK)
			rv = gen_ec(c, &pkey);
	}
	if (rv != CKR_OK)
		return rv;
	rv = pair_attrs(pkey, type, c, params, pub, priv);
	if (rv != CKR_OK) {
		fw_attrs_free(pub);
		fw_attrs_free(priv);
	}
	return rv;
}

CK_RV fw_secret_template(const struct fw_attrs *tmpl, size_t avail,
			 CK_KEY_TYPE *type, size_t *len)
{
	CK_RV rv = check_ulong(tmpl, CKA_CLASS, CKO_SECRET_KEY);
	CK_ULONG v = avail;
	bool given;

	if (rv != CKR_OK)
		return rv;
	*type = CKK_GENERIC_SECRET;
	rv = fw_attrs_get_ulong(tmpl, CKA_KEY_TYPE, type);
	if (rv != CKR_OK && rv != CKR_TEMPLATE_INCOMPLETE)
		return rv;
	if (*type != CKK_AES && *type != CKK_GENERIC_SECRET &&
	    !fw_key_type_is_hmac(*type))
		return CKR_TEMPLATE_INCONSISTENT;
	rv = fw_attrs_get_ulong(tmpl, CKA_VALUE_LEN, &v);
	given = rv == CKR_OK;
	if (rv != CKR_OK && rv != CKR_TEMPLATE_INCOMPLETE)
		return rv;
	if (!given && !avail)
		return CKR_TEMPLATE_INCOMPLETE;
	if (*type == CKK_AES && v != 16 && v != 24 && v != 32)
		return given ? CKR_ATTRIBUTE_VALUE_INVALID :
			       CKR_TEMPLATE_INCOMPLETE;
	if (v == 0)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	if (v > 512)
		return CKR_KEY_SIZE_RANGE;
	*len = v;
	return CKR_OK;
}
