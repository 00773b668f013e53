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
 *
 * A digest that the library holds (digest.c) goes to the card in
 * op_update(), like before any C_DigestUpdate; until the digest update
 * runs it stays where it is, so a failed first update leaves it alone.
 */
#include "lib.h"

/* Encrypt, then feed the same plaintext to the @then operation. */
static CK_RV encrypt_then(CK_SESSION_HANDLE h, unsigned int then,
			  CK_BYTE_PTR part, CK_ULONG part_len,
			  CK_BYTE_PTR enc, CK_ULONG_PTR enc_len)
{
	CK_RV rv = op_update(h, PHSM_OPK_ENCRYPT, part, part_len, enc,
			     enc_len);

	if (rv != CKR_OK || !enc)
		return rv;
	return op_update(h, then, part, part_len, NULL, NULL);
}

/* Decrypt, then feed the plaintext it gave to the @then operation. */
static CK_RV decrypt_then(CK_SESSION_HANDLE h, unsigned int then,
			  CK_BYTE_PTR enc, CK_ULONG enc_len,
			  CK_BYTE_PTR part, CK_ULONG_PTR part_len)
{
	CK_RV rv = op_update(h, PHSM_OPK_DECRYPT, enc, enc_len, part,
			     part_len);

	if (rv != CKR_OK || !part)
		return rv;
	return op_update(h, then, part, *part_len, NULL, NULL);
}

PHSM_EXPORT CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession,
					CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
					CK_BYTE_PTR pEncryptedPart,
					CK_ULONG_PTR pulEncryptedPartLen)
{
	return encrypt_then(hSession, PHSM_OPK_DIGEST, pPart, ulPartLen,
			    pEncryptedPart, pulEncryptedPartLen);
}

PHSM_EXPORT CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession,
					CK_BYTE_PTR pEncryptedPart,
					CK_ULONG ulEncryptedPartLen,
					CK_BYTE_PTR pPart,
					CK_ULONG_PTR pulPartLen)
{
	return decrypt_then(hSession, PHSM_OPK_DIGEST, pEncryptedPart,
			    ulEncryptedPartLen, pPart, pulPartLen);
}

PHSM_EXPORT CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession,
				      CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
				      CK_BYTE_PTR pEncryptedPart,
				      CK_ULONG_PTR pulEncryptedPartLen)
{
	return encrypt_then(hSession, PHSM_OPK_SIGN, pPart, ulPartLen,
			    pEncryptedPart, pulEncryptedPartLen);
}

PHSM_EXPORT CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession,
					CK_BYTE_PTR pEncryptedPart,
					CK_ULONG ulEncryptedPartLen,
					CK_BYTE_PTR pPart,
					CK_ULONG_PTR pulPartLen)
{
	return decrypt_then(hSession, PHSM_OPK_VERIFY, pEncryptedPart,
			    ulEncryptedPartLen, pPart, pulPartLen);
}
