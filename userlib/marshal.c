// SPDX-License-Identifier: MIT
/*
 * Templates and mechanisms: from the caller's C structures to the field
 * encodings of uapi/phsm_proto.h.  The library checks what only it can
 * check (pointers, structure sizes); the card judges the values.
 */
#include <string.h>

#include "lib.h"

CK_RV check_data(const void *p, CK_ULONG len)
{
	if (!p && len)
		return CKR_ARGUMENTS_BAD;
	if (len > LIB_DATA_MAX)
		return CKR_DATA_LEN_RANGE;
	return CKR_OK;
}

CK_RV put_buffer(struct phsm_writer *w, const void *p, CK_ULONG len)
{
	if (!p && len)
		return CKR_ARGUMENTS_BAD;
	if (len > LIB_DATA_MAX)
		return CKR_ARGUMENTS_BAD;
	phsm_put_bytes(w, p, len);
	return CKR_OK;
}

/*
 * Attribute values are sent as they are in memory (lib.h asserts that a
 * CK_ULONG already is the wire's 8-byte little-endian number).  Attributes
 * whose value is an array of CK_ATTRIBUTEs (CKA_WRAP_TEMPLATE...) hold
 * pointers and have no wire encoding yet.
 */
static bool attr_sendable(CK_ATTRIBUTE_TYPE type)
{
	return !(type & CKF_ARRAY_ATTRIBUTE) || type == CKA_ALLOWED_MECHANISMS;
}

CK_RV put_template(struct phsm_writer *w, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	size_t mark;

	if (!t && n)
		return CKR_ARGUMENTS_BAD;
	if (n > PHSM_ATTRS_MAX)
		return CKR_ARGUMENTS_BAD;
	for (CK_ULONG i = 0; i < n; i++) {
		if (!attr_sendable(t[i].type))
			return CKR_ATTRIBUTE_TYPE_INVALID;
		if ((!t[i].pValue && t[i].ulValueLen) ||
		    t[i].ulValueLen > UINT32_MAX)
			return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	mark = phsm_put_attrs_begin(w);
	for (CK_ULONG i = 0; i < n; i++)
		phsm_put_attr(w, t[i].type, PHSM_ATTR_F_VALUE,
			      (uint32_t)t[i].ulValueLen, t[i].pValue);
	phsm_put_attrs_end(w, mark);
	return CKR_OK;
}

/* The parameter must be exactly one C structure of this size. */
static bool param_is(const CK_MECHANISM *m, size_t size)
{
	return m->pParameter && m->ulParameterLen == size;
}

static bool bytes_ok(const void *p, CK_ULONG len)
{
	return (p || !len) && len <= LIB_DATA_MAX;
}

static CK_RV put_gcm(struct phsm_writer *w, const CK_MECHANISM *m)
{
	const CK_GCM_PARAMS *g = m->pParameter;

	if (!param_is(m, sizeof(*g)))
		return CKR_MECHANISM_PARAM_INVALID;
	if (!bytes_ok(g->pIv, g->ulIvLen) || !bytes_ok(g->pAAD, g->ulAADLen))
		return CKR_MECHANISM_PARAM_INVALID;
	phsm_put_bytes(w, g->pIv, g->ulIvLen);
	phsm_put_u64(w, g->ulIvBits);
	phsm_put_bytes(w, g->pAAD, g->ulAADLen);
	phsm_put_u64(w, g->ulTagBits);
	return CKR_OK;
}

static CK_RV put_ctr(struct phsm_writer *w, const CK_MECHANISM *m)
{
	const CK_AES_CTR_PARAMS *p = m->pParameter;

	if (!param_is(m, sizeof(*p)))
		return CKR_MECHANISM_PARAM_INVALID;
	phsm_put_u64(w, p->ulCounterBits);
	phsm_put_bytes(w, p->cb, sizeof(p->cb));
	return CKR_OK;
}

static CK_RV put_pss(struct phsm_writer *w, const CK_MECHANISM *m)
{
	const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;

	if (!param_is(m, sizeof(*p)))
		return CKR_MECHANISM_PARAM_INVALID;
	phsm_put_u64(w, p->hashAlg);
	phsm_put_u64(w, p->mgf);
	phsm_put_u64(w, p->sLen);
	return CKR_OK;
}

static CK_RV put_oaep(struct phsm_writer *w, const CK_MECHANISM *m)
{
	const CK_RSA_PKCS_OAEP_PARAMS *p = m->pParameter;

	if (!param_is(m, sizeof(*p)))
		return CKR_MECHANISM_PARAM_INVALID;
	if (!bytes_ok(p->pSourceData, p->ulSourceDataLen))
		return CKR_MECHANISM_PARAM_INVALID;
	phsm_put_u64(w, p->hashAlg);
	phsm_put_u64(w, p->mgf);
	phsm_put_u64(w, p->source);
	phsm_put_bytes(w, p->pSourceData, p->ulSourceDataLen);
	return CKR_OK;
}

static CK_RV put_ecdh1(struct phsm_writer *w, const CK_MECHANISM *m)
{
	const CK_ECDH1_DERIVE_PARAMS *p = m->pParameter;

	if (!param_is(m, sizeof(*p)))
		return CKR_MECHANISM_PARAM_INVALID;
	if (!bytes_ok(p->pSharedData, p->ulSharedDataLen) ||
	    !bytes_ok(p->pPublicData, p->ulPublicDataLen))
		return CKR_MECHANISM_PARAM_INVALID;
	phsm_put_u64(w, p->kdf);
	phsm_put_bytes(w, p->pSharedData, p->ulSharedDataLen);
	phsm_put_bytes(w, p->pPublicData, p->ulPublicDataLen);
	return CKR_OK;
}

static CK_RV put_eddsa(struct phsm_writer *w, const CK_MECHANISM *m)
{
	const CK_EDDSA_PARAMS *p = m->pParameter;

	if (m->ulParameterLen == 0)
		return CKR_OK;
	if (!param_is(m, sizeof(*p)))
		return CKR_MECHANISM_PARAM_INVALID;
	if (!bytes_ok(p->pContextData, p->ulContextDataLen))
		return CKR_MECHANISM_PARAM_INVALID;
	phsm_put_u64(w, p->phFlag);
	phsm_put_bytes(w, p->pContextData, p->ulContextDataLen);
	return CKR_OK;
}

static CK_RV put_mac_general(struct phsm_writer *w, const CK_MECHANISM *m)
{
	const CK_MAC_GENERAL_PARAMS *p = m->pParameter;

	if (!param_is(m, sizeof(*p)))
		return CKR_MECHANISM_PARAM_INVALID;
	phsm_put_u64(w, *p);
	return CKR_OK;
}

/* A raw byte-string parameter: an IV of exactly @size, or any (size 0). */
static CK_RV put_iv(struct phsm_writer *w, const CK_MECHANISM *m, size_t size,
		    bool optional)
{
	if (optional && m->ulParameterLen == 0)
		return CKR_OK;
	if (!m->pParameter || !m->ulParameterLen ||
	    (size && m->ulParameterLen != size) ||
	    m->ulParameterLen > LIB_DATA_MAX)
		return CKR_MECHANISM_PARAM_INVALID;
	phsm_put_bytes(w, m->pParameter, m->ulParameterLen);
	return CKR_OK;
}

static CK_RV put_none(const CK_MECHANISM *m)
{
	return m->ulParameterLen ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
}

static CK_RV put_param(struct phsm_writer *w, const CK_MECHANISM *m,
		       bool message)
{
	switch (m->mechanism) {
	case CKM_AES_ECB:
	case CKM_AES_CMAC:
	case CKM_SHA_1: case CKM_SHA224: case CKM_SHA256:
	case CKM_SHA384: case CKM_SHA512:
	case CKM_SHA3_224: case CKM_SHA3_256: case CKM_SHA3_384:
	case CKM_SHA3_512:
	case CKM_SHA_1_HMAC: case CKM_SHA224_HMAC: case CKM_SHA256_HMAC:
	case CKM_SHA384_HMAC: case CKM_SHA512_HMAC:
	case CKM_SHA3_224_HMAC: case CKM_SHA3_256_HMAC:
	case CKM_SHA3_384_HMAC: case CKM_SHA3_512_HMAC:
	case CKM_RSA_PKCS: case CKM_RSA_X_509:
	case CKM_SHA1_RSA_PKCS: case CKM_SHA224_RSA_PKCS:
	case CKM_SHA256_RSA_PKCS: case CKM_SHA384_RSA_PKCS:
	case CKM_SHA512_RSA_PKCS:
	case CKM_SHA3_224_RSA_PKCS: case CKM_SHA3_256_RSA_PKCS:
	case CKM_SHA3_384_RSA_PKCS: case CKM_SHA3_512_RSA_PKCS:
	case CKM_ECDSA: case CKM_ECDSA_SHA1: case CKM_ECDSA_SHA224:
	case CKM_ECDSA_SHA256: case CKM_ECDSA_SHA384: case CKM_ECDSA_SHA512:
	case CKM_AES_KEY_GEN: case CKM_GENERIC_SECRET_KEY_GEN:
	case CKM_RSA_PKCS_KEY_PAIR_GEN: case CKM_EC_KEY_PAIR_GEN:
	case CKM_EC_EDWARDS_KEY_PAIR_GEN:
		return put_none(m);
	case CKM_AES_CBC:
	case CKM_AES_CBC_PAD:
		return put_iv(w, m, 16, false);
	case CKM_AES_CTR:
		return put_ctr(w, m);
	case CKM_AES_GCM:
		/* Message-based GCM takes its parameters per message. */
		if (message && m->ulParameterLen == 0)
			return CKR_OK;
		return put_gcm(w, m);
	case CKM_AES_KEY_WRAP:
	case CKM_AES_KEY_WRAP_PAD:
	case CKM_AES_KEY_WRAP_KWP:
		return put_iv(w, m, 0, true);
	case CKM_RSA_PKCS_PSS:
	case CKM_SHA1_RSA_PKCS_PSS: case CKM_SHA224_RSA_PKCS_PSS:
	case CKM_SHA256_RSA_PKCS_PSS: case CKM_SHA384_RSA_PKCS_PSS:
	case CKM_SHA512_RSA_PKCS_PSS:
	case CKM_SHA3_224_RSA_PKCS_PSS: case CKM_SHA3_256_RSA_PKCS_PSS:
	case CKM_SHA3_384_RSA_PKCS_PSS: case CKM_SHA3_512_RSA_PKCS_PSS:
		return put_pss(w, m);
	case CKM_RSA_PKCS_OAEP:
		return put_oaep(w, m);
	case CKM_ECDH1_DERIVE:
		return put_ecdh1(w, m);
	case CKM_EDDSA:
		return put_eddsa(w, m);
	case CKM_SHA_1_HMAC_GENERAL: case CKM_SHA224_HMAC_GENERAL:
	case CKM_SHA256_HMAC_GENERAL: case CKM_SHA384_HMAC_GENERAL:
	case CKM_SHA512_HMAC_GENERAL:
	case CKM_SHA3_224_HMAC_GENERAL: case CKM_SHA3_256_HMAC_GENERAL:
	case CKM_SHA3_384_HMAC_GENERAL: case CKM_SHA3_512_HMAC_GENERAL:
	case CKM_AES_CMAC_GENERAL:
		return put_mac_general(w, m);
	default:
		/* Not ours to judge: the card answers CKR_MECHANISM_INVALID. */
		return CKR_OK;
	}
}

CK_RV put_mechanism(struct phsm_writer *w, const CK_MECHANISM *m,
		    bool message)
{
	size_t mark;
	CK_RV rv;

	if (!m)
		return CKR_ARGUMENTS_BAD;
	if (!m->pParameter && m->ulParameterLen)
		return CKR_MECHANISM_PARAM_INVALID;
	mark = phsm_put_mech_begin(w, m->mechanism);
	rv = put_param(w, m, message);
	phsm_put_mech_end(w, mark);
	return rv;
}
