// SPDX-License-Identifier: MIT
/* Digests (CKM_SHA*), HMAC and AES-CMAC. */
#include "mech_impl.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>

/* ---- Digests ---- */

static CK_RV digest_update(struct fw_op *op, const uint8_t *in, size_t in_len,
			   uint8_t *out, size_t *out_len)
{
	(void)out;
	*out_len = 0;
	return EVP_DigestUpdate(op->mdctx, in, in_len) ? CKR_OK :
							 CKR_FUNCTION_FAILED;
}

static CK_RV digest_final(struct fw_op *op, const uint8_t *sig,
			  size_t sig_len, uint8_t *out, size_t *out_len)
{
	unsigned int n = 0;
	CK_RV rv;

	(void)sig;
	(void)sig_len;
	if (fw_out_check(out, out_len, fw_md_size(op->mi->hash), &rv))
		return rv;
	if (!EVP_DigestFinal_ex(op->mdctx, out, &n))
		return CKR_FUNCTION_FAILED;
	*out_len = n;
	return CKR_OK;
}

static CK_RV digest_oneshot(struct fw_op *op, const uint8_t *in,
			    size_t in_len, const uint8_t *sig, size_t sig_len,
			    uint8_t *out, size_t *out_len)
{
	CK_RV rv;

	if (fw_out_check(out, out_len, fw_md_size(op->mi->hash), &rv))
		return rv;
	if (!EVP_DigestUpdate(op->mdctx, in, in_len))
		return CKR_FUNCTION_FAILED;
	return digest_final(op, sig, sig_len, out, out_len);
}

static const struct fw_op_class digest_ops = {
	.oneshot = digest_oneshot,
	.update = digest_update,
	.final = digest_final,
};

CK_RV fw_digest_op_init(struct fw_op *op, const struct fw_mech *m)
{
	const EVP_MD *md = fw_md(op->mi->hash);

	(void)m;
	if (!md)
		return CKR_MECHANISM_INVALID;
	op->ops = &digest_ops;
	op->mdctx = EVP_MD_CTX_new();
	if (!op->mdctx)
		return CKR_HOST_MEMORY;
	return EVP_DigestInit_ex2(op->mdctx, md, NULL) ? CKR_OK :
							 CKR_FUNCTION_FAILED;
}

/* ---- HMAC and CMAC ---- */

static enum fw_hash hmac_key_hash(CK_KEY_TYPE t)
{
	switch (t) {
	case CKK_SHA_1_HMAC: return FW_H_SHA1;
	case CKK_SHA224_HMAC: return FW_H_SHA224;
	case CKK_SHA256_HMAC: return FW_H_SHA256;
	case CKK_SHA384_HMAC: return FW_H_SHA384;
	case CKK_SHA512_HMAC: return FW_H_SHA512;
	case CKK_SHA3_224_HMAC: return FW_H_SHA3_224;
	case CKK_SHA3_256_HMAC: return FW_H_SHA3_256;
	case CKK_SHA3_384_HMAC: return FW_H_SHA3_384;
	case CKK_SHA3_512_HMAC: return FW_H_SHA3_512;
	default: return FW_H_NONE;
	}
}

static CK_RV mac_update(struct fw_op *op, const uint8_t *in, size_t in_len,
			uint8_t *out, size_t *out_len)
{
	(void)out;
	*out_len = 0;
	return EVP_MAC_update(op->macctx, in, in_len) ? CKR_OK :
							CKR_FUNCTION_FAILED;
}

/* Sign: the (possibly truncated) MAC.  Verify: compare in constant time. */
static CK_RV mac_final(struct fw_op *op, const uint8_t *sig, size_t sig_len,
		       uint8_t *out, size_t *out_len)
{
	uint8_t mac[FW_MAX_MD];
	size_t n = 0;
	CK_RV rv;

	if (op->kind == PHSM_OPK_VERIFY) {
		if (sig_len != op->mac_len)
			return CKR_SIGNATURE_LEN_RANGE;
	} else if (fw_out_check(out, out_len, op->mac_len, &rv)) {
		return rv;
	}
	if (!EVP_MAC_final(op->macctx, mac, &n, sizeof(mac)) || n < op->mac_len)
		return CKR_FUNCTION_FAILED;
	if (op->kind == PHSM_OPK_VERIFY) {
		rv = CRYPTO_memcmp(mac, sig, op->mac_len) == 0 ?
		     CKR_OK : CKR_SIGNATURE_INVALID;
	} else {
		memcpy(out, mac, op->mac_len);
		*out_len = op->mac_len;
		rv = CKR_OK;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return rv;
}

static CK_RV mac_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			 const uint8_t *sig, size_t sig_len,
			 uint8_t *out, size_t *out_len)
{
	CK_RV rv;

	if (op->kind == PHSM_OPK_VERIFY) {
		if (sig_len != op->mac_len)
			return CKR_SIGNATURE_LEN_RANGE;
	} else if (fw_out_check(out, out_len, op->mac_len, &rv)) {
		return rv;
	}
	if (!EVP_MAC_update(op->macctx, in, in_len))
		return CKR_FUNCTION_FAILED;
	return mac_final(op, sig, sig_len, out, out_len);
}

static const struct fw_op_class mac_ops = {
	.oneshot = mac_oneshot,
	.update = mac_update,
	.final = mac_final,
};

static CK_RV mac_check_key(const struct fw_op *op)
{
	const struct fw_key *k = op->key;

	if (k->cls != CKO_SECRET_KEY)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (op->mi->family == FW_FAM_CMAC) {
		if (k->type != CKK_AES)
			return CKR_KEY_TYPE_INCONSISTENT;
	} else if (k->type != CKK_GENERIC_SECRET &&
		   hmac_key_hash(k->type) != op->mi->hash) {
		return CKR_KEY_TYPE_INCONSISTENT;
	}
	return fw_check_key_size(op->mi, k, CKR_KEY_SIZE_RANGE);
}

CK_RV fw_mac_op_init(struct fw_op *op, const struct fw_mech *m)
{
	bool cmac = op->mi->family == FW_FAM_CMAC;
	EVP_MAC *mac = cmac ? fw_mac_cmac() : fw_mac_hmac();
	const char *alg;
	OSSL_PARAM params[2];
	CK_RV rv = mac_check_key(op);

	if (rv != CKR_OK)
		return rv;
	if (cmac)
		alg = EVP_CIPHER_get0_name(fw_aes_cipher(FW_AES_CBC,
							 op->key->secret_len));
	else
		alg = fw_md_name(op->mi->hash);
	if (!mac || !alg)
		return CKR_MECHANISM_INVALID;
	params[0] = OSSL_PARAM_construct_utf8_string(
		cmac ? OSSL_MAC_PARAM_CIPHER : OSSL_MAC_PARAM_DIGEST,
		(char *)alg, 0);
	params[1] = OSSL_PARAM_construct_end();
	op->ops = &mac_ops;
	op->mac_len = op->mi->general ? m->mac_len :
		      cmac ? FW_AES_BLOCK : fw_md_size(op->mi->hash);
	op->macctx = EVP_MAC_CTX_new(mac);
	if (!op->macctx)
		return CKR_HOST_MEMORY;
	if (!EVP_MAC_init(op->macctx, op->key->secret, op->key->secret_len,
			  params))
		return CKR_FUNCTION_FAILED;
	return CKR_OK;
}
