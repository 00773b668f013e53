// SPDX-License-Identifier: MIT
/*
 * Dual-function updates (C_DigestEncryptUpdate and friends), done as the
 * two underlying updates: the one that fills the caller's buffer first (so
 * that a size query or CKR_BUFFER_TOO_SMALL touches neither operation),
 * then the other on the plaintext.  They work when the token allows the
 * two operations in one session (CKF_DUAL_CRYPTO_OPERATIONS).
 *
 * Not atomic: if the second update fails after the first succeeded, the
 * call returns the second's error with the first one's output written.
 */
#include "lib.h"

PHSM_EXPORT CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession,
					CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
					CK_BYTE_PTR pEncryptedPart,
					CK_ULONG_PTR pulEncryptedPartLen)
{
	CK_RV rv = op_update(hSession, PHSM_OPK_ENCRYPT, pPart, ulPartLen,
			     pEncryptedPart, pulEncryptedPartLen);

	if (rv != CKR_OK || !pEncryptedPart)
		return rv;
	return op_update(hSession, PHSM_OPK_DIGEST, pPart, ulPartLen, NULL,
			 NULL);
}

PHSM_EXPORT CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession,
					CK_BYTE_PTR pEncryptedPart,
					CK_ULONG ulEncryptedPartLen,
					CK_BYTE_PTR pPart,
					CK_ULONG_PTR pulPartLen)
{
	CK_RV rv = op_update(hSession, PHSM_OPK_DECRYPT, pEncryptedPart,
			     ulEncryptedPartLen, pPart, pulPartLen);

	if (rv != CKR_OK || !pPart)
		return rv;
	return op_update(hSession, PHSM_OPK_DIGEST, pPart, *pulPartLen, NULL,
			 NULL);
}

PHSM_EXPORT CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession,
				      CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
				      CK_BYTE_PTR pEncryptedPart,
				      CK_ULONG_PTR pulEncryptedPartLen)
{
	CK_RV rv = op_update(hSession, PHSM_OPK_ENCRYPT, pPart, ulPartLen,
			     pEncryptedPart, pulEncryptedPartLen);

	if (rv != CKR_OK || !pEncryptedPart)
		return rv;
	return op_update(hSession, PHSM_OPK_SIGN, pPart, ulPartLen, NULL, NULL);
}

PHSM_EXPORT CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession,
					CK_BYTE_PTR pEncryptedPart,
					CK_ULONG ulEncryptedPartLen,
					CK_BYTE_PTR pPart,
					CK_ULONG_PTR pulPartLen)
{
	CK_RV rv = op_update(hSession, PHSM_OPK_DECRYPT, pEncryptedPart,
			     ulEncryptedPartLen, pPart, pulPartLen);

	if (rv != CKR_OK || !pPart)
		return rv;
	return op_update(hSession, PHSM_OPK_VERIFY, pPart, *pulPartLen, NULL,
			 NULL);
}
