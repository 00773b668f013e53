// SPDX-License-Identifier: MIT
/*
 * Key management (generate, wrap, unwrap, derive) and random numbers.
 * Keys are made and kept on the card; only wrapped keys cross the wire.
 */
#include <string.h>

#include "lib.h"

/* Random bytes asked for per request, well inside one message. */
#define RANDOM_CHUNK (1u << 20)

PHSM_EXPORT CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession,
				CK_MECHANISM_PTR pMechanism,
				CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
				CK_OBJECT_HANDLE_PTR phKey)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_GENERATE_KEY);

	if (rv == CKR_OK && !phKey)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = put_mechanism(&c.w, pMechanism, false);
	if (rv == CKR_OK)
		rv = put_template(&c.w, pTemplate, ulCount);
	if (rv == CKR_OK)
		rv = read_handle(&c, call_run(&c), phKey);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession,
				    CK_MECHANISM_PTR pMechanism,
				    CK_ATTRIBUTE_PTR pPublicKeyTemplate,
				    CK_ULONG ulPublicKeyAttributeCount,
				    CK_ATTRIBUTE_PTR pPrivateKeyTemplate,
				    CK_ULONG ulPrivateKeyAttributeCount,
				    CK_OBJECT_HANDLE_PTR phPublicKey,
				    CK_OBJECT_HANDLE_PTR phPrivateKey)
{
	struct lib_call c;
	uint64_t pub, priv;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_GENERATE_KEY_PAIR);

	if (rv == CKR_OK && (!phPublicKey || !phPrivateKey))
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = put_mechanism(&c.w, pMechanism, false);
	if (rv == CKR_OK)
		rv = put_template(&c.w, pPublicKeyTemplate,
				  ulPublicKeyAttributeCount);
	if (rv == CKR_OK)
		rv = put_template(&c.w, pPrivateKeyTemplate,
				  ulPrivateKeyAttributeCount);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK) {
		pub = phsm_get_u64(&c.r);
		priv = phsm_get_u64(&c.r);
		if (!call_done(&c) || !pub || !priv)
			return call_end(&c, CKR_DEVICE_ERROR);
		*phPublicKey = pub;
		*phPrivateKey = priv;
	}
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_WrapKey(CK_SESSION_HANDLE hSession,
			    CK_MECHANISM_PTR pMechanism,
			    CK_OBJECT_HANDLE hWrappingKey,
			    CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey,
			    CK_ULONG_PTR pulWrappedKeyLen)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_WRAP_KEY);

	if (rv == CKR_OK && !pulWrappedKeyLen)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = put_mechanism(&c.w, pMechanism, false);
	if (rv != CKR_OK)
		return call_end(&c, rv);
	phsm_put_u64(&c.w, hWrappingKey);
	phsm_put_u64(&c.w, hKey);
	phsm_put_u64(&c.w, out_capacity(pWrappedKey, pulWrappedKeyLen));
	rv = call_run_output(&c, pWrappedKey, pulWrappedKeyLen);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession,
			      CK_MECHANISM_PTR pMechanism,
			      CK_OBJECT_HANDLE hUnwrappingKey,
			      CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
			      CK_ATTRIBUTE_PTR pTemplate,
			      CK_ULONG ulAttributeCount,
			      CK_OBJECT_HANDLE_PTR phKey)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_UNWRAP_KEY);

	if (rv == CKR_OK && (!phKey || !pWrappedKey))
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = put_mechanism(&c.w, pMechanism, false);
	phsm_put_u64(&c.w, hUnwrappingKey);
	if (rv == CKR_OK && ulWrappedKeyLen > LIB_DATA_MAX)
		rv = CKR_WRAPPED_KEY_LEN_RANGE;
	phsm_put_bytes(&c.w, pWrappedKey, ulWrappedKeyLen);
	if (rv == CKR_OK)
		rv = put_template(&c.w, pTemplate, ulAttributeCount);
	if (rv == CKR_OK)
		rv = read_handle(&c, call_run(&c), phKey);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession,
			      CK_MECHANISM_PTR pMechanism,
			      CK_OBJECT_HANDLE hBaseKey,
			      CK_ATTRIBUTE_PTR pTemplate,
			      CK_ULONG ulAttributeCount,
			      CK_OBJECT_HANDLE_PTR phKey)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_DERIVE_KEY);

	if (rv == CKR_OK && !phKey)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = put_mechanism(&c.w, pMechanism, false);
	phsm_put_u64(&c.w, hBaseKey);
	if (rv == CKR_OK)
		rv = put_template(&c.w, pTemplate, ulAttributeCount);
	if (rv == CKR_OK)
		rv = read_handle(&c, call_run(&c), phKey);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed,
			       CK_ULONG ulSeedLen)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_SEED_RANDOM);

	if (rv == CKR_OK)
		rv = put_buffer(&c.w, pSeed, ulSeedLen);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

static CK_RV random_chunk(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len)
{
	struct lib_call c;
	const uint8_t *p;
	size_t n;
	CK_RV rv = call_session(&c, h, PHSM_OP_GENERATE_RANDOM);

	phsm_put_u64(&c.w, len);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK) {
		p = phsm_get_bytes(&c.r, &n);
		if (!call_done(&c) || n != len)
			return call_end(&c, CKR_DEVICE_ERROR);
		if (n)
			memcpy(out, p, n);
	}
	return call_end(&c, rv);
}

/* Large requests are split so that each answer fits in one message. */
PHSM_EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession,
				   CK_BYTE_PTR pRandomData,
				   CK_ULONG ulRandomLen)
{
	CK_RV rv = need_init();

	if (rv == CKR_OK && !pRandomData && ulRandomLen)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK && ulRandomLen == 0)
		rv = random_chunk(hSession, pRandomData, 0);
	while (rv == CKR_OK && ulRandomLen) {
		CK_ULONG n = ulRandomLen < RANDOM_CHUNK ? ulRandomLen : RANDOM_CHUNK;

		rv = random_chunk(hSession, pRandomData, n);
		pRandomData += n;
		ulRandomLen -= n;
	}
	return rv;
}
