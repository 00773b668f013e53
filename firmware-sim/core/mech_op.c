// SPDX-License-Identifier: MIT
/*
 * Operations: checks common to every mechanism, then the family's own
 * functions (mech_hash.c, mech_aes.c, mech_rsa.c, mech_ec.c).
 */
#include "mech_impl.h"

#include <stdlib.h>
#include <string.h>

static CK_FLAGS kind_flag(enum phsm_op_kind kind)
{
	switch (kind) {
	case PHSM_OPK_ENCRYPT: return CKF_ENCRYPT;
	case PHSM_OPK_DECRYPT: return CKF_DECRYPT;
	case PHSM_OPK_DIGEST: return CKF_DIGEST;
	case PHSM_OPK_SIGN: return CKF_SIGN;
	case PHSM_OPK_VERIFY: return CKF_VERIFY;
	case PHSM_OPK_SIGN_RECOVER: return CKF_SIGN_RECOVER;
	case PHSM_OPK_VERIFY_RECOVER: return CKF_VERIFY_RECOVER;
	}
	return 0;
}

CK_RV fw_check_key_size(const struct fw_mech_info *mi, const struct fw_key *k,
			CK_RV range_rv)
{
	if (k->size < mi->desc.min_key || k->size > mi->desc.max_key)
		return range_rv;
	return CKR_OK;
}

static CK_RV family_init(struct fw_op *op, const struct fw_mech *m)
{
	switch (op->mi->family) {
	case FW_FAM_DIGEST:
		return fw_digest_op_init(op, m);
	case FW_FAM_HMAC:
	case FW_FAM_CMAC:
		return fw_mac_op_init(op, m);
	case FW_FAM_AES:
		return fw_aes_op_init(op, m);
	case FW_FAM_AES_WRAP:
		return fw_aes_wrap_op_init(op, m);
	case FW_FAM_RSA:
	case FW_FAM_RSA_HASH:
		return fw_rsa_op_init(op, m);
	case FW_FAM_ECDSA:
	case FW_FAM_ECDSA_HASH:
	case FW_FAM_EDDSA:
		return fw_ec_op_init(op, m);
	case FW_FAM_KEYGEN:
	case FW_FAM_ECDH:
		break;
	}
	return CKR_MECHANISM_INVALID;
}

CK_RV fw_op_new(enum phsm_op_kind kind, const struct fw_mech *m,
		struct fw_key *key, struct fw_op **out)
{
	const struct fw_mech_info *mi = fw_mech_info(m->type);
	struct fw_op *op;
	CK_RV rv;

	*out = NULL;
	if (!mi || !(mi->desc.flags & kind_flag(kind)))
		return CKR_MECHANISM_INVALID;
	if ((kind == PHSM_OPK_DIGEST) != (key == NULL))
		return CKR_KEY_TYPE_INCONSISTENT;
	op = calloc(1, sizeof(*op));
	if (!op)
		return CKR_HOST_MEMORY;
	op->kind = kind;
	op->mi = mi;
	op->key = fw_key_get(key);
	rv = family_init(op, m);
	if (rv != CKR_OK) {
		fw_op_free(op);
		return rv;
	}
	*out = op;
	return CKR_OK;
}

void fw_op_free(struct fw_op *op)
{
	if (!op)
		return;
	if (op->ops && op->ops->release)
		op->ops->release(op);
	EVP_MD_CTX_free(op->mdctx);
	EVP_PKEY_CTX_free(op->pctx);
	EVP_MAC_CTX_free(op->macctx);
	EVP_CIPHER_CTX_free(op->aes.ctx);
	fw_free_secret(op->aes.gcm_buf, op->aes.gcm_cap);
	free(op->aes.aad);
	free(op->p.label);
	fw_key_put(op->key);
	OPENSSL_cleanse(op, sizeof(*op));
	free(op);
}

bool fw_op_multipart(const struct fw_op *op)
{
	return op->ops->update != NULL;
}

/* Callers may pass NULL for empty inputs; OpenSSL and memcpy want a
 * pointer. */
static const uint8_t empty[1];

static bool input_ok(const uint8_t **p, size_t len)
{
	if (*p)
		return true;
	*p = empty;
	return len == 0;
}

static bool makes_output(const struct fw_op *op)
{
	return op->kind == PHSM_OPK_ENCRYPT || op->kind == PHSM_OPK_DECRYPT;
}

CK_RV fw_op_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
		    const uint8_t *sig, size_t sig_len,
		    uint8_t *out, size_t *out_len)
{
	/* C_Encrypt and friends cannot finish a multi-part operation. */
	if (op->started)
		return CKR_OPERATION_ACTIVE;
	if (!input_ok(&in, in_len) || !input_ok(&sig, sig_len))
		return CKR_ARGUMENTS_BAD;
	return op->ops->oneshot(op, in, in_len, sig, sig_len, out, out_len);
}

CK_RV fw_op_update(struct fw_op *op, const uint8_t *in, size_t in_len,
		   uint8_t *out, size_t *out_len)
{
	size_t none = 0;
	CK_RV rv;

	if (!op->ops->update)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (!input_ok(&in, in_len))
		return CKR_ARGUMENTS_BAD;
	if (!out_len)
		out_len = &none;
	if (!makes_output(op)) {
		out = NULL;
		*out_len = 0;
	}
	rv = op->ops->update(op, in, in_len, out, out_len);
	if (rv == CKR_OK && (out || !makes_output(op)))
		op->started = true;
	return rv;
}

CK_RV fw_op_digest_key(struct fw_op *op, const struct fw_key *key)
{
	if (op->kind != PHSM_OPK_DIGEST)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (key->cls != CKO_SECRET_KEY)
		return CKR_KEY_INDIGESTIBLE;
	if (!EVP_DigestUpdate(op->mdctx, key->secret, key->secret_len))
		return CKR_FUNCTION_FAILED;
	op->started = true;
	return CKR_OK;
}

CK_RV fw_op_final(struct fw_op *op, const uint8_t *sig, size_t sig_len,
		  uint8_t *out, size_t *out_len)
{
	size_t none = 0;

	if (!op->ops->final)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (!input_ok(&sig, sig_len))
		return CKR_ARGUMENTS_BAD;
	if (!out_len)
		out_len = &none;
	return op->ops->final(op, sig, sig_len, out, out_len);
}
