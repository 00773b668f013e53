// SPDX-License-Identifier: MIT
/*
 * RSA: PKCS#1 v1.5 (raw DigestInfo signing, encryption), PSS on a
 * precomputed hash, OAEP, and the hash-and-sign mechanisms.
 */
#include "mech_impl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

CK_RV fw_rsa_check_oaep(const struct fw_mech *m)
{
	if (!fw_hash_from_mech(m->hash_alg) || !fw_hash_from_mgf(m->mgf))
		return CKR_MECHANISM_PARAM_INVALID;
	/* Some clients leave source 0 when there is no label. */
	if (m->source != CKZ_DATA_SPECIFIED &&
	    (m->source != 0 || m->source_len))
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

CK_RV fw_rsa_set_padding(EVP_PKEY_CTX *pctx, const struct fw_mech_info *mi,
			 const struct fw_mech *m)
{
	const EVP_MD *md = fw_md(fw_hash_from_mech(m->hash_alg));
	const EVP_MD *mgf = fw_md(fw_hash_from_mgf(m->mgf));
	uint8_t *label;

	switch (mi->variant) {
	case FW_V_PKCS1:
		return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0 ?
		       CKR_OK : CKR_FUNCTION_FAILED;
	case FW_V_PSS:
		if (!md || !mgf ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
		    (mi->family == FW_FAM_RSA &&
		     EVP_PKEY_CTX_set_signature_md(pctx, md) <= 0) ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, mgf) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, (int)m->salt_len) <= 0)
			return CKR_MECHANISM_PARAM_INVALID;
		return CKR_OK;
	case FW_V_OAEP:
		if (!md || !mgf ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, md) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, mgf) <= 0)
			return CKR_MECHANISM_PARAM_INVALID;
		if (!m->source_len)
			return CKR_OK;
		/* OpenSSL takes ownership of the label. */
		label = OPENSSL_memdup(m->source_data, m->source_len);
		if (!label)
			return CKR_HOST_MEMORY;
		if (EVP_PKEY_CTX_set0_rsa_oaep_label(pctx, label,
						     (int)m->source_len) <= 0) {
			OPENSSL_free(label);
			return CKR_MECHANISM_PARAM_INVALID;
		}
		return CKR_OK;
	default:
		return CKR_MECHANISM_INVALID;
	}
}

size_t fw_rsa_max_input(const struct fw_key *k, const struct fw_mech_info *mi,
			const struct fw_mech *m)
{
	size_t klen = (size_t)EVP_PKEY_get_size(k->pkey);
	size_t h = fw_md_size(fw_hash_from_mech(m->hash_alg));

	if (mi->variant == FW_V_OAEP)
		return klen >= 2 * h + 2 ? klen - 2 * h - 2 : 0;
	return klen >= 11 ? klen - 11 : 0;
}

/* ---- Raw mechanisms (single-part) ---- */

/* What the data to sign or verify must look like. */
static CK_RV raw_sign_input_ok(const struct fw_op *op, size_t in_len)
{
	if (op->mi->variant == FW_V_PSS)
		return in_len == fw_md_size(op->p.hash) ? CKR_OK :
							  CKR_DATA_LEN_RANGE;
	return in_len <= op->max_in ? CKR_OK : CKR_DATA_LEN_RANGE;
}

static CK_RV raw_sign(struct fw_op *op, const uint8_t *in, size_t in_len,
		      uint8_t *out, size_t *out_len)
{
	CK_RV rv = raw_sign_input_ok(op, in_len);
	size_t n;

	if (rv != CKR_OK || fw_out_check(out, out_len, op->sig_len, &rv))
		return rv;
	n = *out_len;
	if (EVP_PKEY_sign(op->pctx, out, &n, in, in_len) <= 0)
		return CKR_FUNCTION_FAILED;
	*out_len = n;
	return CKR_OK;
}

static CK_RV raw_verify(struct fw_op *op, const uint8_t *in, size_t in_len,
			const uint8_t *sig, size_t sig_len)
{
	CK_RV rv = raw_sign_input_ok(op, in_len);

	if (rv != CKR_OK)
		return rv;
	if (sig_len != op->sig_len)
		return CKR_SIGNATURE_LEN_RANGE;
	if (EVP_PKEY_verify(op->pctx, sig, sig_len, in, in_len) == 1)
		return CKR_OK;
	ERR_clear_error();
	return CKR_SIGNATURE_INVALID;
}

static CK_RV raw_encrypt(struct fw_op *op, const uint8_t *in, size_t in_len,
			 uint8_t *out, size_t *out_len)
{
	size_t n;
	CK_RV rv;

	if (in_len > op->max_in)
		return CKR_DATA_LEN_RANGE;
	if (fw_out_check(out, out_len, op->sig_len, &rv))
		return rv;
	n = *out_len;
	if (EVP_PKEY_encrypt(op->pctx, out, &n, in, in_len) <= 0)
		return CKR_FUNCTION_FAILED;
	*out_len = n;
	return CKR_OK;
}

/*
 * Decryption and signature recovery: the result's exact length is known
 * only afterwards, so they go through a wiped buffer of the modulus size.
 */
static CK_RV raw_recover(struct fw_op *op, const uint8_t *in, size_t in_len,
			 uint8_t *out, size_t *out_len)
{
	bool dec = op->kind == PHSM_OPK_DECRYPT;
	uint8_t *tmp;
	size_t n = op->sig_len;
	int ok;
	CK_RV rv;

	if (in_len != op->sig_len)
		return dec ? CKR_ENCRYPTED_DATA_LEN_RANGE :
			     CKR_SIGNATURE_LEN_RANGE;
	if (!out) {
		*out_len = op->max_in;	/* an upper bound */
		return CKR_OK;
	}
	tmp = malloc(n);
	if (!tmp)
		return CKR_HOST_MEMORY;
	ok = dec ? EVP_PKEY_decrypt(op->pctx, tmp, &n, in, in_len) :
		   EVP_PKEY_verify_recover(op->pctx, tmp, &n, in, in_len);
	if (ok > 0) {
		rv = fw_out_copy(tmp, n, out, out_len);
	} else {
		ERR_clear_error();
		rv = dec ? CKR_ENCRYPTED_DATA_INVALID : CKR_SIGNATURE_INVALID;
	}
	fw_free_secret(tmp, op->sig_len);
	return rv;
}

static CK_RV raw_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			 const uint8_t *sig, size_t sig_len,
			 uint8_t *out, size_t *out_len)
{
	switch (op->kind) {
	case PHSM_OPK_SIGN:
	case PHSM_OPK_SIGN_RECOVER:
		return raw_sign(op, in, in_len, out, out_len);
	case PHSM_OPK_VERIFY:
		return raw_verify(op, in, in_len, sig, sig_len);
	case PHSM_OPK_ENCRYPT:
		return raw_encrypt(op, in, in_len, out, out_len);
	case PHSM_OPK_DECRYPT:
	case PHSM_OPK_VERIFY_RECOVER:
		return raw_recover(op, in, in_len, out, out_len);
	default:
		return CKR_FUNCTION_FAILED;
	}
}

static const struct fw_op_class raw_ops = {
	.oneshot = raw_oneshot,
};

/* ---- Hash-and-sign mechanisms (multi-part) ---- */

static CK_RV hash_update(struct fw_op *op, const uint8_t *in, size_t in_len,
			 uint8_t *out, size_t *out_len)
{
	int ok = op->kind == PHSM_OPK_SIGN ?
		 EVP_DigestSignUpdate(op->mdctx, in, in_len) :
		 EVP_DigestVerifyUpdate(op->mdctx, in, in_len);

	(void)out;
	*out_len = 0;
	return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

static CK_RV hash_final(struct fw_op *op, const uint8_t *sig, size_t sig_len,
			uint8_t *out, size_t *out_len)
{
	size_t n;
	CK_RV rv;

	if (op->kind == PHSM_OPK_VERIFY) {
		if (sig_len != op->sig_len)
			return CKR_SIGNATURE_LEN_RANGE;
		if (EVP_DigestVerifyFinal(op->mdctx, sig, sig_len) == 1)
			return CKR_OK;
		ERR_clear_error();
		return CKR_SIGNATURE_INVALID;
	}
	if (fw_out_check(out, out_len, op->sig_len, &rv))
		return rv;
	n = *out_len;
	if (EVP_DigestSignFinal(op->mdctx, out, &n) <= 0)
		return CKR_FUNCTION_FAILED;
	*out_len = n;
	return CKR_OK;
}

static CK_RV hash_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			  const uint8_t *sig, size_t sig_len,
			  uint8_t *out, size_t *out_len)
{
	CK_RV rv;

	if (op->kind == PHSM_OPK_VERIFY && sig_len != op->sig_len)
		return CKR_SIGNATURE_LEN_RANGE;
	if (op->kind == PHSM_OPK_SIGN &&
	    fw_out_check(out, out_len, op->sig_len, &rv))
		return rv;
	rv = hash_update(op, in, in_len, NULL, &(size_t){ 0 });
	return rv == CKR_OK ? hash_final(op, sig, sig_len, out, out_len) : rv;
}

static const struct fw_op_class hash_ops = {
	.oneshot = hash_oneshot,
	.update = hash_update,
	.final = hash_final,
};

/* ---- Setup ---- */

static bool wants_private(enum phsm_op_kind kind)
{
	return kind == PHSM_OPK_SIGN || kind == PHSM_OPK_DECRYPT ||
	       kind == PHSM_OPK_SIGN_RECOVER;
}

static int raw_init(EVP_PKEY_CTX *pctx, enum phsm_op_kind kind)
{
	switch (kind) {
	case PHSM_OPK_SIGN:
	case PHSM_OPK_SIGN_RECOVER:
		return EVP_PKEY_sign_init(pctx);
	case PHSM_OPK_VERIFY:
		return EVP_PKEY_verify_init(pctx);
	case PHSM_OPK_VERIFY_RECOVER:
		return EVP_PKEY_verify_recover_init(pctx);
	case PHSM_OPK_ENCRYPT:
		return EVP_PKEY_encrypt_init(pctx);
	case PHSM_OPK_DECRYPT:
		return EVP_PKEY_decrypt_init(pctx);
	default:
		return 0;
	}
}

/* PSS: emLen >= hLen + sLen + 2 (RFC 8017, 9.1.1). */
static CK_RV pss_salt_ok(const struct fw_op *op)
{
	size_t em_len = (op->key->size - 1 + 7) / 8;
	size_t h = fw_md_size(op->p.hash);

	return em_len >= h + 2 && op->p.salt_len <= em_len - h - 2 ?
	       CKR_OK : CKR_MECHANISM_PARAM_INVALID;
}

static CK_RV hash_setup(struct fw_op *op, const struct fw_mech *m)
{
	EVP_PKEY_CTX *pctx = NULL;	/* owned by mdctx */
	int ok;

	op->mdctx = EVP_MD_CTX_new();
	if (!op->mdctx)
		return CKR_HOST_MEMORY;
	if (op->kind == PHSM_OPK_SIGN)
		ok = EVP_DigestSignInit_ex(op->mdctx, &pctx,
					   fw_md_name(op->mi->hash), NULL,
					   NULL, op->key->pkey, NULL);
	else
		ok = EVP_DigestVerifyInit_ex(op->mdctx, &pctx,
					     fw_md_name(op->mi->hash), NULL,
					     NULL, op->key->pkey, NULL);
	if (ok <= 0)
		return CKR_FUNCTION_FAILED;
	op->ops = &hash_ops;
	return fw_rsa_set_padding(pctx, op->mi, m);
}

CK_RV fw_rsa_op_init(struct fw_op *op, const struct fw_mech *m)
{
	const struct fw_key *k = op->key;
	CK_RV rv;

	if (k->type != CKK_RSA ||
	    (k->cls == CKO_PRIVATE_KEY) != wants_private(op->kind))
		return CKR_KEY_TYPE_INCONSISTENT;
	rv = fw_check_key_size(op->mi, k, CKR_KEY_SIZE_RANGE);
	if (rv != CKR_OK)
		return rv;
	op->sig_len = (size_t)EVP_PKEY_get_size(k->pkey);
	op->max_in = fw_rsa_max_input(k, op->mi, m);
	op->p.hash = fw_hash_from_mech(m->hash_alg);
	op->p.mgf = fw_hash_from_mgf(m->mgf);
	op->p.salt_len = m->salt_len;
	if (op->mi->variant == FW_V_PSS && (rv = pss_salt_ok(op)) != CKR_OK)
		return rv;
	if (op->mi->family == FW_FAM_RSA_HASH)
		return hash_setup(op, m);
	op->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (!op->pctx)
		return CKR_HOST_MEMORY;
	if (raw_init(op->pctx, op->kind) <= 0)
		return CKR_FUNCTION_FAILED;
	op->ops = &raw_ops;
	return fw_rsa_set_padding(op->pctx, op->mi, m);
}
