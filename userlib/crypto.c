// SPDX-License-Identifier: MIT
/*
 * Single- and multi-part operations: encrypt, decrypt, digest, sign,
 * verify, sign-recover and verify-recover all map onto the same four
 * commands (PHSM_OP_OP_INIT/ONESHOT/UPDATE/FINAL) with an operation kind.
 *
 * The card implements PKCS#11's operation lifetime (5.2: a size query or
 * CKR_BUFFER_TOO_SMALL keeps the operation, anything else ends it).  When
 * the library itself refuses a call (bad pointers, data too large) the
 * card never saw it, so the library ends the operation with a
 * SESSION_CANCEL to keep that rule.
 *
 * Single-part digests are the exception: digest.c computes them in the
 * library, and every other digest call first hands a digest the library
 * holds to the card (digest_to_card()).
 */
#include <string.h>

#include "lib.h"

static CK_FLAGS kind_cancel_flag(unsigned int kind)
{
	switch (kind) {
	case PHSM_OPK_ENCRYPT:		return CKF_ENCRYPT;
	case PHSM_OPK_DECRYPT:		return CKF_DECRYPT;
	case PHSM_OPK_DIGEST:		return CKF_DIGEST;
	case PHSM_OPK_SIGN:		return CKF_SIGN;
	case PHSM_OPK_VERIFY:		return CKF_VERIFY;
	case PHSM_OPK_SIGN_RECOVER:	return CKF_SIGN_RECOVER;
	case PHSM_OPK_VERIFY_RECOVER:	return CKF_VERIFY_RECOVER;
	default:			return 0;
	}
}

void op_abort(CK_SESSION_HANDLE h, unsigned int kind)
{
	C_SessionCancel(h, kind_cancel_flag(kind));
}

/* End a call the library refused, and with it the card's operation. */
static CK_RV refuse(struct lib_call *c, CK_SESSION_HANDLE h,
		    unsigned int kind, CK_RV rv)
{
	call_end(c, rv);
	op_abort(h, kind);
	return rv;
}

/* For calls that produce no output (verify, and updates of digest/sign/verify). */
static CK_RV read_no_output(struct lib_call *c, CK_RV rv)
{
	size_t n;

	if (rv != CKR_OK)
		return rv;
	phsm_get_bytes(&c->r, &n);
	phsm_get_u64(&c->r);
	if (c->r.status != PHSM_ST_OK || n)
		return CKR_DEVICE_ERROR;
	return CKR_OK;
}

/*
 * The end of every one-shot, update and final call: the output capacity
 * (0 for a call without output), then the answer, whose data must be
 * empty for a call without output.
 */
static CK_RV op_run(struct lib_call *c, bool has_output, CK_BYTE_PTR out,
		    CK_ULONG_PTR out_len)
{
	CK_RV rv;

	phsm_put_u64(&c->w, has_output ? out_capacity(out, out_len) : 0);
	if (has_output)
		rv = call_run_output(c, out, out_len);
	else
		rv = read_no_output(c, call_run(c));
	return call_end(c, rv);
}

static CK_RV op_init(CK_SESSION_HANDLE h, unsigned int kind,
		     CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
	struct lib_call c;
	CK_RV rv;

	/* 5.8.1 and its siblings: a NULL mechanism ends the active operation. */
	if (!mech)
		return C_SessionCancel(h, kind_cancel_flag(kind));
	rv = call_session(&c, h, PHSM_OP_OP_INIT);
	phsm_put_u64(&c.w, kind);
	if (rv == CKR_OK)
		rv = put_mechanism(&c.w, mech, false);
	phsm_put_u64(&c.w, key);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

/* @sig is the signature for VERIFY; @out/@out_len unused for VERIFY. */
static CK_RV op_oneshot(CK_SESSION_HANDLE h, unsigned int kind,
			CK_BYTE_PTR in, CK_ULONG in_len,
			CK_BYTE_PTR sig, CK_ULONG sig_len,
			CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	bool verify = kind == PHSM_OPK_VERIFY;
	struct lib_call c;
	CK_RV rv = call_session(&c, h, PHSM_OP_OP_ONESHOT);

	if (rv != CKR_OK)
		return call_end(&c, rv);
	rv = check_data(in, in_len);
	if (rv == CKR_OK)
		rv = check_data(sig, sig_len);
	if (rv == CKR_OK && !verify && !out_len)
		rv = CKR_ARGUMENTS_BAD;
	if (rv != CKR_OK)
		return refuse(&c, h, kind, rv);
	phsm_put_u64(&c.w, kind);
	phsm_put_bytes(&c.w, in, in_len);
	phsm_put_bytes(&c.w, sig, sig_len);
	return op_run(&c, !verify, out, out_len);
}

/* @out_len NULL: an update that produces no output (digest, sign, verify). */
static CK_RV card_update(CK_SESSION_HANDLE h, unsigned int kind,
			 CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
			 CK_ULONG_PTR out_len)
{
	bool has_output = kind == PHSM_OPK_ENCRYPT || kind == PHSM_OPK_DECRYPT;
	struct lib_call c;
	CK_RV rv = call_session(&c, h, PHSM_OP_OP_UPDATE);

	if (rv != CKR_OK)
		return call_end(&c, rv);
	rv = check_data(in, in_len);
	if (rv == CKR_OK && has_output && !out_len)
		rv = CKR_ARGUMENTS_BAD;
	if (rv != CKR_OK)
		return refuse(&c, h, kind, rv);
	phsm_put_u64(&c.w, kind);
	phsm_put_bytes(&c.w, in, in_len);
	return op_run(&c, has_output, out, out_len);
}

static CK_RV op_final(CK_SESSION_HANDLE h, unsigned int kind,
		      CK_BYTE_PTR sig, CK_ULONG sig_len,
		      CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	bool verify = kind == PHSM_OPK_VERIFY;
	struct lib_call c;
	CK_RV rv = call_session(&c, h, PHSM_OP_OP_FINAL);

	if (rv != CKR_OK)
		return call_end(&c, rv);
	rv = check_data(sig, sig_len);
	if (rv == CKR_OK && !verify && !out_len)
		rv = CKR_ARGUMENTS_BAD;
	if (rv != CKR_OK)
		return refuse(&c, h, kind, rv);
	phsm_put_u64(&c.w, kind);
	phsm_put_bytes(&c.w, sig, sig_len);
	return op_run(&c, !verify, out, out_len);
}

/* ---- digests on the card ------------------------------------------ */

/*
 * Before a digest call goes to the card: mark the session's digest state
 * and, if the library holds a pending digest (C_DigestInit answered by
 * digest.c), start it on the card first.  An error of that C_DigestInit
 * is the call's answer.
 */
static CK_RV digest_to_card(CK_SESSION_HANDLE h, enum lib_dg_use use,
			    struct lib_dg_mark *mark)
{
	CK_MECHANISM m = { 0 };

	if (!lib_digest_begin(h, use, mark, &m.mechanism))
		return CKR_OK;
	return op_init(h, PHSM_OPK_DIGEST, &m, CK_INVALID_HANDLE);
}

/* The card's answer: @ended, or no operation there, means none is left. */
static CK_RV digest_answered(const struct lib_dg_mark *mark, CK_RV rv,
			     bool ended)
{
	if (ended || rv == CKR_OPERATION_NOT_INITIALIZED)
		lib_digest_ended(mark);
	return rv;
}

CK_RV op_update(CK_SESSION_HANDLE h, unsigned int kind, CK_BYTE_PTR in,
		CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	struct lib_dg_mark mark;
	CK_RV rv;

	if (kind != PHSM_OPK_DIGEST)
		return card_update(h, kind, in, in_len, out, out_len);
	rv = digest_to_card(h, LIB_DG_USE, &mark);
	if (rv != CKR_OK)
		return rv;
	rv = card_update(h, kind, in, in_len, out, out_len);
	return digest_answered(&mark, rv, false);
}

/* ---- encryption --------------------------------------------------- */

PHSM_EXPORT CK_RV C_EncryptInit(CK_SESSION_HANDLE hSession,
				CK_MECHANISM_PTR pMechanism,
				CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, PHSM_OPK_ENCRYPT, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
			    CK_ULONG ulDataLen, CK_BYTE_PTR pEncryptedData,
			    CK_ULONG_PTR pulEncryptedDataLen)
{
	return op_oneshot(hSession, PHSM_OPK_ENCRYPT, pData, ulDataLen, NULL, 0,
			  pEncryptedData, pulEncryptedDataLen);
}

PHSM_EXPORT CK_RV C_EncryptUpdate(CK_SESSION_HANDLE hSession,
				  CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
				  CK_BYTE_PTR pEncryptedPart,
				  CK_ULONG_PTR pulEncryptedPartLen)
{
	return op_update(hSession, PHSM_OPK_ENCRYPT, pPart, ulPartLen,
			 pEncryptedPart, pulEncryptedPartLen);
}

PHSM_EXPORT CK_RV C_EncryptFinal(CK_SESSION_HANDLE hSession,
				 CK_BYTE_PTR pLastEncryptedPart,
				 CK_ULONG_PTR pulLastEncryptedPartLen)
{
	return op_final(hSession, PHSM_OPK_ENCRYPT, NULL, 0,
			pLastEncryptedPart, pulLastEncryptedPartLen);
}

/* ---- decryption --------------------------------------------------- */

PHSM_EXPORT CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession,
				CK_MECHANISM_PTR pMechanism,
				CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, PHSM_OPK_DECRYPT, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_Decrypt(CK_SESSION_HANDLE hSession,
			    CK_BYTE_PTR pEncryptedData,
			    CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData,
			    CK_ULONG_PTR pulDataLen)
{
	return op_oneshot(hSession, PHSM_OPK_DECRYPT, pEncryptedData,
			  ulEncryptedDataLen, NULL, 0, pData, pulDataLen);
}

PHSM_EXPORT CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession,
				  CK_BYTE_PTR pEncryptedPart,
				  CK_ULONG ulEncryptedPartLen,
				  CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	return op_update(hSession, PHSM_OPK_DECRYPT, pEncryptedPart,
			 ulEncryptedPartLen, pPart, pulPartLen);
}

PHSM_EXPORT CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession,
				 CK_BYTE_PTR pLastPart,
				 CK_ULONG_PTR pulLastPartLen)
{
	return op_final(hSession, PHSM_OPK_DECRYPT, NULL, 0, pLastPart,
			pulLastPartLen);
}

/* ---- digests ------------------------------------------------------ */

PHSM_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE hSession,
			       CK_MECHANISM_PTR pMechanism)
{
	struct lib_dg_mark mark;
	CK_RV rv;

	if (lib_digest_init_local(hSession, pMechanism, &rv))
		return rv;
	/* A NULL mechanism is C_SessionCancel's, which keeps its own marks. */
	if (!pMechanism)
		return op_init(hSession, PHSM_OPK_DIGEST, NULL,
			       CK_INVALID_HANDLE);
	/* A held digest goes first, so that the card answers as it would
	 * with it active (CKR_MECHANISM_INVALID before OPERATION_ACTIVE). */
	rv = digest_to_card(hSession, LIB_DG_INIT, &mark);
	if (rv != CKR_OK)
		return rv;
	return op_init(hSession, PHSM_OPK_DIGEST, pMechanism,
		       CK_INVALID_HANDLE);
}

PHSM_EXPORT CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
			   CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
			   CK_ULONG_PTR pulDigestLen)
{
	struct lib_dg_mark mark;
	CK_RV rv;

	if (lib_digest_oneshot_local(hSession, pData, ulDataLen, pDigest,
				     pulDigestLen, &rv))
		return rv;
	rv = digest_to_card(hSession, LIB_DG_USE, &mark);
	if (rv != CKR_OK)
		return rv;
	rv = op_oneshot(hSession, PHSM_OPK_DIGEST, pData, ulDataLen, NULL, 0,
			pDigest, pulDigestLen);
	return digest_answered(&mark, rv, rv == CKR_OK && pDigest);
}

PHSM_EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
				 CK_ULONG ulPartLen)
{
	return op_update(hSession, PHSM_OPK_DIGEST, pPart, ulPartLen, NULL,
			 NULL);
}

PHSM_EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
	struct lib_dg_mark mark;
	CK_RV rv = digest_to_card(hSession, LIB_DG_USE, &mark);

	if (rv != CKR_OK)
		return rv;
	rv = call_session_u64(hSession, PHSM_OP_DIGEST_KEY, hKey);
	return digest_answered(&mark, rv, false);
}

PHSM_EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest,
				CK_ULONG_PTR pulDigestLen)
{
	struct lib_dg_mark mark;
	CK_RV rv = digest_to_card(hSession, LIB_DG_USE, &mark);

	if (rv != CKR_OK)
		return rv;
	rv = op_final(hSession, PHSM_OPK_DIGEST, NULL, 0, pDigest,
		      pulDigestLen);
	return digest_answered(&mark, rv, rv == CKR_OK && pDigest);
}

/* ---- signatures and MACs ------------------------------------------ */

PHSM_EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE hSession,
			     CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, PHSM_OPK_SIGN, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
			 CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
			 CK_ULONG_PTR pulSignatureLen)
{
	return op_oneshot(hSession, PHSM_OPK_SIGN, pData, ulDataLen, NULL, 0,
			  pSignature, pulSignatureLen);
}

PHSM_EXPORT CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
			       CK_ULONG ulPartLen)
{
	return op_update(hSession, PHSM_OPK_SIGN, pPart, ulPartLen, NULL, NULL);
}

PHSM_EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE hSession,
			      CK_BYTE_PTR pSignature,
			      CK_ULONG_PTR pulSignatureLen)
{
	return op_final(hSession, PHSM_OPK_SIGN, NULL, 0, pSignature,
			pulSignatureLen);
}

PHSM_EXPORT CK_RV C_SignRecoverInit(CK_SESSION_HANDLE hSession,
				    CK_MECHANISM_PTR pMechanism,
				    CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, PHSM_OPK_SIGN_RECOVER, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
				CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
				CK_ULONG_PTR pulSignatureLen)
{
	return op_oneshot(hSession, PHSM_OPK_SIGN_RECOVER, pData, ulDataLen,
			  NULL, 0, pSignature, pulSignatureLen);
}

/* ---- verification ------------------------------------------------- */

PHSM_EXPORT CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession,
			       CK_MECHANISM_PTR pMechanism,
			       CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, PHSM_OPK_VERIFY, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
			   CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
			   CK_ULONG ulSignatureLen)
{
	return op_oneshot(hSession, PHSM_OPK_VERIFY, pData, ulDataLen,
			  pSignature, ulSignatureLen, NULL, NULL);
}

PHSM_EXPORT CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
				 CK_ULONG ulPartLen)
{
	return op_update(hSession, PHSM_OPK_VERIFY, pPart, ulPartLen, NULL,
			 NULL);
}

PHSM_EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession,
				CK_BYTE_PTR pSignature,
				CK_ULONG ulSignatureLen)
{
	return op_final(hSession, PHSM_OPK_VERIFY, pSignature, ulSignatureLen,
			NULL, NULL);
}

PHSM_EXPORT CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE hSession,
				      CK_MECHANISM_PTR pMechanism,
				      CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, PHSM_OPK_VERIFY_RECOVER, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_VerifyRecover(CK_SESSION_HANDLE hSession,
				  CK_BYTE_PTR pSignature,
				  CK_ULONG ulSignatureLen, CK_BYTE_PTR pData,
				  CK_ULONG_PTR pulDataLen)
{
	return op_oneshot(hSession, PHSM_OPK_VERIFY_RECOVER, pSignature,
			  ulSignatureLen, NULL, 0, pData, pulDataLen);
}
