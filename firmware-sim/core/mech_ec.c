// SPDX-License-Identifier: MIT
/*
 * Elliptic curves: ECDSA with PKCS#11's r || s signature format, Ed25519,
 * and ECDH1 key derivation with the ANSI X9.63 KDF.
 */
#include "mech_impl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>

/* Largest input CKM_ECDSA signs: a digest, never more than SHA-512's. */
#define ECDSA_MAX_INPUT FW_MAX_MD
#define ED25519_SIG 64

/* ---- Signature format: DER ECDSA-Sig-Value <-> r || s ---- */

static bool der_to_rs(const uint8_t *der, size_t der_len, uint8_t *out,
		      size_t n)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	const BIGNUM *r, *s;
	bool ok = false;

	if (sig) {
		ECDSA_SIG_get0(sig, &r, &s);
		ok = BN_bn2binpad(r, out, (int)n) == (int)n &&
		     BN_bn2binpad(s, out + n, (int)n) == (int)n;
	}
	ECDSA_SIG_free(sig);
	return ok;
}

/* DER of r || s (2n bytes) in *der, to be freed with OPENSSL_free. */
static int rs_to_der(const uint8_t *rs, size_t n, unsigned char **der)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, (int)n, NULL);
	BIGNUM *s = BN_bin2bn(rs + n, (int)n, NULL);
	int len = -1;

	*der = NULL;
	if (sig && r && s && ECDSA_SIG_set0(sig, r, s)) {
		r = s = NULL;	/* owned by sig now */
		len = i2d_ECDSA_SIG(sig, der);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return len;
}

/* Turn OpenSSL's DER signature (in der) into r || s at out. */
static CK_RV finish_sign(struct fw_op *op, const uint8_t *der, size_t der_len,
			 uint8_t *out, size_t *out_len)
{
	if (!der_to_rs(der, der_len, out, op->sig_len / 2))
		return CKR_FUNCTION_FAILED;
	*out_len = op->sig_len;
	return CKR_OK;
}

/* ---- ECDSA on a precomputed digest (single-part) ---- */

static CK_RV ecdsa_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			   const uint8_t *sig, size_t sig_len,
			   uint8_t *out, size_t *out_len)
{
	uint8_t der[16 + 2 * 66];
	unsigned char *dsig = NULL;
	size_t der_len = sizeof(der);
	int len, ok;
	CK_RV rv;

	if (in_len < 1 || in_len > ECDSA_MAX_INPUT)
		return CKR_DATA_LEN_RANGE;
	if (op->kind == PHSM_OPK_VERIFY) {
		if (sig_len != op->sig_len)
			return CKR_SIGNATURE_LEN_RANGE;
		len = rs_to_der(sig, sig_len / 2, &dsig);
		if (len <= 0)
			return CKR_HOST_MEMORY;
		ok = EVP_PKEY_verify(op->pctx, dsig, (size_t)len, in, in_len);
		OPENSSL_free(dsig);
		if (ok == 1)
			return CKR_OK;
		ERR_clear_error();
		return CKR_SIGNATURE_INVALID;
	}
	if (fw_out_check(out, out_len, op->sig_len, &rv))
		return rv;
	if (EVP_PKEY_sign(op->pctx, der, &der_len, in, in_len) <= 0)
		return CKR_FUNCTION_FAILED;
	return finish_sign(op, der, der_len, out, out_len);
}

static const struct fw_op_class ecdsa_ops = {
	.oneshot = ecdsa_oneshot,
};

/* ---- ECDSA with hashing (multi-part) ---- */

static CK_RV ecdsa_hash_update(struct fw_op *op, const uint8_t *in,
			       size_t in_len, uint8_t *out, size_t *out_len)
{
	int ok = op->kind == PHSM_OPK_SIGN ?
		 EVP_DigestSignUpdate(op->mdctx, in, in_len) :
		 EVP_DigestVerifyUpdate(op->mdctx, in, in_len);

	(void)out;
	*out_len = 0;
	return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

static CK_RV ecdsa_hash_final(struct fw_op *op, const uint8_t *sig,
			      size_t sig_len, uint8_t *out, size_t *out_len)
{
	uint8_t der[16 + 2 * 66];
	unsigned char *dsig = NULL;
	size_t der_len = sizeof(der);
	int len, ok;
	CK_RV rv;

	if (op->kind == PHSM_OPK_VERIFY) {
		if (sig_len != op->sig_len)
			return CKR_SIGNATURE_LEN_RANGE;
		len = rs_to_der(sig, sig_len / 2, &dsig);
		if (len <= 0)
			return CKR_HOST_MEMORY;
		ok = EVP_DigestVerifyFinal(op->mdctx, dsig, (size_t)len);
		OPENSSL_free(dsig);
		if (ok == 1)
			return CKR_OK;
		ERR_clear_error();
		return CKR_SIGNATURE_INVALID;
	}
	if (fw_out_check(out, out_len, op->sig_len, &rv))
		return rv;
	if (EVP_DigestSignFinal(op->mdctx, der, &der_len) <= 0)
		return CKR_FUNCTION_FAILED;
	return finish_sign(op, der, der_len, out, out_len);
}

static CK_RV ecdsa_hash_oneshot(struct fw_op *op, const uint8_t *in,
				size_t in_len, const uint8_t *sig,
				size_t sig_len, uint8_t *out, size_t *out_len)
{
	CK_RV rv;

	if (op->kind == PHSM_OPK_VERIFY && sig_len != op->sig_len)
		return CKR_SIGNATURE_LEN_RANGE;
	if (op->kind == PHSM_OPK_SIGN &&
	    fw_out_check(out, out_len, op->sig_len, &rv))
		return rv;
	rv = ecdsa_hash_update(op, in, in_len, NULL, &(size_t){ 0 });
	return rv == CKR_OK ? ecdsa_hash_final(op, sig, sig_len, out, out_len) :
			      rv;
}

static const struct fw_op_class ecdsa_hash_ops = {
	.oneshot = ecdsa_hash_oneshot,
	.update = ecdsa_hash_update,
	.final = ecdsa_hash_final,
};

/* ---- Ed25519 (single-part: the algorithm hashes the message twice) ---- */

static CK_RV eddsa_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			   const uint8_t *sig, size_t sig_len,
			   uint8_t *out, size_t *out_len)
{
	size_t n;
	CK_RV rv;

	if (op->kind == PHSM_OPK_VERIFY) {
		if (sig_len != ED25519_SIG)
			return CKR_SIGNATURE_LEN_RANGE;
		if (EVP_DigestVerify(op->mdctx, sig, sig_len, in, in_len) == 1)
			return CKR_OK;
		ERR_clear_error();
		return CKR_SIGNATURE_INVALID;
	}
	if (fw_out_check(out, out_len, ED25519_SIG, &rv))
		return rv;
	n = *out_len;
	if (EVP_DigestSign(op->mdctx, out, &n, in, in_len) <= 0)
		return CKR_FUNCTION_FAILED;
	*out_len = n;
	return CKR_OK;
}

static const struct fw_op_class eddsa_ops = {
	.oneshot = eddsa_oneshot,
};

/* ---- Setup ---- */

static CK_RV ec_check_key(const struct fw_op *op)
{
	const struct fw_key *k = op->key;
	bool ed = op->mi->family == FW_FAM_EDDSA;
	CK_OBJECT_CLASS want = op->kind == PHSM_OPK_SIGN ? CKO_PRIVATE_KEY :
							   CKO_PUBLIC_KEY;

	if (k->type != (ed ? CKK_EC_EDWARDS : CKK_EC) || k->cls != want)
		return CKR_KEY_TYPE_INCONSISTENT;
	return fw_check_key_size(op->mi, k, CKR_KEY_SIZE_RANGE);
}

static CK_RV digest_sign_setup(struct fw_op *op, const char *md)
{
	int ok;

	op->mdctx = EVP_MD_CTX_new();
	if (!op->mdctx)
		return CKR_HOST_MEMORY;
	if (op->kind == PHSM_OPK_SIGN)
		ok = EVP_DigestSignInit_ex(op->mdctx, NULL, md, NULL, NULL,
					   op->key->pkey, NULL);
	else
		ok = EVP_DigestVerifyInit_ex(op->mdctx, NULL, md, NULL, NULL,
					     op->key->pkey, NULL);
	return ok > 0 ? CKR_OK : CKR_FUNCTION_FAILED;
}

/*
 * The context of a raw ECDSA operation: a copy of one kept with the key.
 * OpenSSL 3.0 looks the algorithm up again for every new context and its
 * initialisation, ~7 % of a P-256 signature; a copy shares what was found.
 * The kept contexts are never used directly, so concurrent copies only read.
 */
static CK_RV ecdsa_ctx(struct fw_op *op)
{
	bool sign = op->kind == PHSM_OPK_SIGN;
	_Atomic(EVP_PKEY_CTX *) *slot = &op->key->ecdsa_ctx[sign];
	EVP_PKEY_CTX *kept = atomic_load_explicit(slot, memory_order_acquire);
	EVP_PKEY_CTX *fresh, *none = NULL;

	if (!kept) {
		fresh = EVP_PKEY_CTX_new_from_pkey(NULL, op->key->pkey, NULL);
		if (!fresh)
			return CKR_HOST_MEMORY;
		if ((sign ? EVP_PKEY_sign_init(fresh) :
			    EVP_PKEY_verify_init(fresh)) <= 0) {
			EVP_PKEY_CTX_free(fresh);
			return CKR_FUNCTION_FAILED;
		}
		/* Another thread may have been quicker: keep its context. */
		if (atomic_compare_exchange_strong_explicit(
			    slot, &none, fresh, memory_order_acq_rel,
			    memory_order_acquire)) {
			kept = fresh;
		} else {
			EVP_PKEY_CTX_free(fresh);
			kept = none;
		}
	}
	op->pctx = EVP_PKEY_CTX_dup(kept);
	return op->pctx ? CKR_OK : CKR_HOST_MEMORY;
}

CK_RV fw_ec_op_init(struct fw_op *op, const struct fw_mech *m)
{
	CK_RV rv = ec_check_key(op);

	if (rv != CKR_OK)
		return rv;
	switch (op->mi->family) {
	case FW_FAM_EDDSA:
		/* Ed25519ctx and Ed25519ph need OpenSSL 3.2. */
		if (m->has_eddsa_params && (m->ph_flag || m->context_len))
			return CKR_MECHANISM_PARAM_INVALID;
		op->sig_len = ED25519_SIG;
		op->ops = &eddsa_ops;
		return digest_sign_setup(op, NULL);
	case FW_FAM_ECDSA_HASH:
		op->sig_len = 2 * op->key->order_len;
		op->ops = &ecdsa_hash_ops;
		return digest_sign_setup(op, fw_md_name(op->mi->hash));
	case FW_FAM_ECDSA:
		op->sig_len = 2 * op->key->order_len;
		op->ops = &ecdsa_ops;
		return ecdsa_ctx(op);
	default:
		return CKR_MECHANISM_INVALID;
	}
}

/* ---- ECDH1 derivation ---- */

/* The shared secret Z: the x coordinate, field-length bytes. */
static CK_RV ecdh_shared(struct fw_key *base, const struct fw_mech *m,
			 uint8_t *z, size_t *z_len)
{
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	CK_RV rv;

	rv = fw_ec_public_from_point(base->curve, m->public_data,
				     m->public_len, &peer);
	if (rv != CKR_OK) {
		ERR_clear_error();
		return CKR_MECHANISM_PARAM_INVALID;
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, base->pkey, NULL);
	rv = CKR_FUNCTION_FAILED;
	if (ctx && EVP_PKEY_derive_init(ctx) > 0) {
		if (EVP_PKEY_derive_set_peer(ctx, peer) <= 0)
			rv = CKR_MECHANISM_PARAM_INVALID;
		else if (EVP_PKEY_derive(ctx, z, z_len) > 0)
			rv = CKR_OK;
	}
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return rv;
}

static CK_RV x963_kdf(enum fw_hash h, const uint8_t *z, size_t z_len,
		      const uint8_t *info, size_t info_len,
		      uint8_t *out, size_t len)
{
	EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(fw_kdf_x963());
	OSSL_PARAM p[4];
	int i = 0;
	bool ok;

	p[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						  (char *)fw_md_name(h), 0);
	p[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						   (void *)z, z_len);
	if (info_len)
		p[i++] = OSSL_PARAM_construct_octet_string(
			OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	p[i] = OSSL_PARAM_construct_end();
	ok = kctx && EVP_KDF_derive(kctx, out, len, p) > 0;
	EVP_KDF_CTX_free(kctx);
	return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV fw_derive(const struct fw_mech *m, struct fw_key *base,
		const struct fw_attrs *tmpl, struct fw_attrs *key)
{
	const struct fw_mech_info *mi = fw_mech_info(m->type);
	uint8_t z[66], value[512];
	size_t z_len = sizeof(z), len;
	enum fw_hash h = fw_hash_from_kdf(m->kdf);
	CK_KEY_TYPE type;
	CK_RV rv;

	memset(key, 0, sizeof(*key));
	if (!mi || mi->family != FW_FAM_ECDH)
		return CKR_MECHANISM_INVALID;
	if (base->type != CKK_EC || base->cls != CKO_PRIVATE_KEY)
		return CKR_KEY_TYPE_INCONSISTENT;
	rv = fw_check_key_size(mi, base, CKR_KEY_SIZE_RANGE);
	if (rv == CKR_OK)
		rv = fw_secret_template(tmpl, m->kdf == CKD_NULL ?
					fw_curve_field_len(base->curve) :
					fw_md_size(h), &type, &len);
	if (rv == CKR_OK)
		rv = ecdh_shared(base, m, z, &z_len);
	if (rv != CKR_OK)
		goto out;
	if (m->kdf == CKD_NULL) {
		/* Shorter keys take Z's least significant bytes, as other
		 * tokens (NSS, SoftHSM) do. */
		if (len > z_len)
			rv = CKR_KEY_SIZE_RANGE;
		else
			memcpy(value, z + z_len - len, len);
	} else {
		rv = x963_kdf(h, z, z_len, m->shared_data, m->shared_len,
			      value, len);
	}
	if (rv == CKR_OK)
		rv = fw_secret_attrs(type, value, len, key);
out:
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(value, sizeof(value));
	return rv;
}
