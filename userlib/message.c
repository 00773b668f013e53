// SPDX-License-Identifier: MIT
/*
 * Message-based operations (PKCS#11 3.0 C_Message*): encrypt, decrypt,
 * sign and verify, each with one-shot and Begin/Next forms.
 *
 * Each message has its own parameter (CK_GCM_MESSAGE_PARAMS for AES-GCM),
 * encoded as the card expects for the mechanism given to C_Message*Init,
 * which the library therefore remembers per session and kind.  What the
 * card writes into the parameter (a generated IV, the tag) comes back in
 * param_out and is copied into the caller's structure.
 */
#include <string.h>

#include "lib.h"

struct msg_param {
	CK_MECHANISM_TYPE mech;
	bool known;		/* mech was remembered from the init */
	void *p;
	CK_ULONG len;
};

static CK_ULONG gcm_tag_bytes(const CK_GCM_MESSAGE_PARAMS *g)
{
	return (g->ulTagBits + 7) / 8;
}

/* AES-GCM: BYTES iv, U64 iv_fixed_bits, U64 iv_generator, BYTES tag, U64 tag_bits. */
static CK_RV encode_gcm(struct phsm_writer *pw, const struct msg_param *mp,
			unsigned int kind)
{
	const CK_GCM_MESSAGE_PARAMS *g = mp->p;
	bool tag_in = kind == PHSM_OPK_DECRYPT || kind == PHSM_OPK_VERIFY;
	CK_ULONG tag_len = gcm_tag_bytes(g);

	if (!g || mp->len != sizeof(*g))
		return CKR_MECHANISM_PARAM_INVALID;
	if ((!g->pIv && g->ulIvLen) || g->ulIvLen > LIB_DATA_MAX ||
	    g->ulTagBits > 1024 || (tag_in && !g->pTag && tag_len))
		return CKR_MECHANISM_PARAM_INVALID;
	phsm_put_bytes(pw, g->pIv, g->ulIvLen);
	phsm_put_u64(pw, g->ulIvFixedBits);
	phsm_put_u64(pw, g->ivGenerator);
	/* The tag is ours to check when decrypting; the card's to make otherwise. */
	phsm_put_bytes(pw, g->pTag, tag_in ? tag_len : 0);
	phsm_put_u64(pw, g->ulTagBits);
	return CKR_OK;
}

static CK_RV put_msg_param(struct phsm_writer *w, const struct msg_param *mp,
			   unsigned int kind)
{
	struct phsm_writer pw = { 0 };
	CK_RV rv = CKR_OK;

	if (!mp->p && mp->len)
		return CKR_ARGUMENTS_BAD;
	if (mp->known && mp->mech == CKM_AES_GCM)
		rv = encode_gcm(&pw, mp, kind);
	else if (mp->known && mp->len)
		rv = CKR_MECHANISM_PARAM_INVALID;	/* no encoding for it */
	/* Not initialised: an empty parameter, the card answers for it. */
	if (rv == CKR_OK && pw.failed)
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		phsm_put_bytes(w, pw.data, pw.len);
	phsm_writer_free(&pw);
	return rv;
}

/*
 * param_out: what the card wrote into the caller's parameter, as BYTES iv,
 * BYTES tag (each empty when unchanged).  Only an AES-GCM parameter has
 * room for them.
 */
static CK_RV apply_param_out(const struct msg_param *mp, const uint8_t *p,
			     size_t n)
{
	CK_GCM_MESSAGE_PARAMS *g = mp->p;
	struct phsm_reader r;
	const uint8_t *iv, *tag;
	size_t iv_len, tag_len;

	phsm_reader_init(&r, p, n);
	iv = phsm_get_bytes(&r, &iv_len);
	tag = phsm_get_bytes(&r, &tag_len);
	if (!phsm_reader_done(&r))
		return CKR_DEVICE_ERROR;
	if (!iv_len && !tag_len)
		return CKR_OK;
	if (!mp->known || mp->mech != CKM_AES_GCM)
		return CKR_DEVICE_ERROR;	/* nowhere to put them */
	if (iv_len && (!g->pIv || iv_len != g->ulIvLen))
		return CKR_DEVICE_ERROR;
	if (tag_len && (!g->pTag || tag_len != gcm_tag_bytes(g)))
		return CKR_DEVICE_ERROR;
	if (iv_len)
		memcpy(g->pIv, iv, iv_len);
	if (tag_len)
		memcpy(g->pTag, tag, tag_len);
	return CKR_OK;
}

static CK_RV read_param_out(struct lib_call *c, CK_RV rv,
			    const struct msg_param *mp)
{
	const uint8_t *p;
	size_t n;

	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		return rv;
	if (!phsm_next_is(&c->r, PHSM_FT_BYTES))
		return rv;	/* left out: nothing was written */
	p = phsm_get_bytes(&c->r, &n);
	if (!call_done(c))
		return CKR_DEVICE_ERROR;
	if (rv != CKR_OK || !n)
		return rv;
	return apply_param_out(mp, p, n);
}

/* Start a message request; the mechanism decides the parameter's form. */
static CK_RV msg_begin_call(struct lib_call *c, CK_SESSION_HANDLE h,
			    uint16_t opcode, unsigned int kind,
			    struct msg_param *mp, void *param, CK_ULONG len)
{
	CK_RV rv = call_session(c, h, opcode);

	memset(mp, 0, sizeof(*mp));
	mp->p = param;
	mp->len = len;
	if (rv != CKR_OK)
		return rv;
	mp->known = lib_msg_mech_get(c->card, h, kind, &mp->mech);
	phsm_put_u64(&c->w, kind);
	return put_msg_param(&c->w, mp, kind);
}

static CK_RV msg_init(CK_SESSION_HANDLE h, unsigned int kind,
		      CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, h, PHSM_OP_MSG_INIT);

	phsm_put_u64(&c.w, kind);
	if (rv == CKR_OK)
		rv = put_mechanism(&c.w, mech, true);
	phsm_put_u64(&c.w, key);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK)
		lib_msg_mech_set(c.card, h, kind, mech->mechanism);
	return call_end(&c, rv);
}

/* One whole message.  @sig: VERIFY's signature; @out_len NULL for VERIFY. */
static CK_RV msg_oneshot(CK_SESSION_HANDLE h, unsigned int kind,
			 void *param, CK_ULONG param_len,
			 CK_BYTE_PTR assoc, CK_ULONG assoc_len,
			 CK_BYTE_PTR in, CK_ULONG in_len,
			 CK_BYTE_PTR sig, CK_ULONG sig_len,
			 CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	bool verify = kind == PHSM_OPK_VERIFY;
	struct msg_param mp;
	struct lib_call c;
	CK_RV rv = msg_begin_call(&c, h, PHSM_OP_MSG_ONESHOT, kind, &mp,
				  param, param_len);

	if (rv == CKR_OK)
		rv = check_data(assoc, assoc_len);
	if (rv == CKR_OK)
		rv = check_data(in, in_len);
	if (rv == CKR_OK)
		rv = check_data(sig, sig_len);
	if (rv == CKR_OK && !verify && !out_len)
		rv = CKR_ARGUMENTS_BAD;
	if (rv != CKR_OK)
		return call_end(&c, rv);
	phsm_put_bytes(&c.w, assoc, assoc_len);
	phsm_put_bytes(&c.w, in, in_len);
	phsm_put_bytes(&c.w, sig, sig_len);
	phsm_put_u64(&c.w, verify ? 0 : out_capacity(out, out_len));
	if (verify) {
		CK_ULONG none = 0;

		rv = read_output(&c, call_run(&c), NULL, &none);
	} else {
		rv = call_run_output(&c, out, out_len);
	}
	return call_end(&c, read_param_out(&c, rv, &mp));
}

static CK_RV msg_begin(CK_SESSION_HANDLE h, unsigned int kind, void *param,
		       CK_ULONG param_len, CK_BYTE_PTR assoc,
		       CK_ULONG assoc_len)
{
	struct msg_param mp;
	struct lib_call c;
	CK_RV rv = msg_begin_call(&c, h, PHSM_OP_MSG_BEGIN, kind, &mp, param,
				  param_len);

	if (rv == CKR_OK)
		rv = check_data(assoc, assoc_len);
	phsm_put_bytes(&c.w, assoc, assoc_len);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

/*
 * One part of a message.  @last says it ends the message; only then do
 * sign (into @out) and verify (against @sig) produce their result.
 */
static CK_RV msg_next(CK_SESSION_HANDLE h, unsigned int kind, void *param,
		      CK_ULONG param_len, CK_BYTE_PTR in, CK_ULONG in_len,
		      CK_BYTE_PTR sig, CK_ULONG sig_len, CK_BYTE_PTR out,
		      CK_ULONG_PTR out_len, bool last)
{
	bool output = kind == PHSM_OPK_ENCRYPT || kind == PHSM_OPK_DECRYPT ||
		      (kind == PHSM_OPK_SIGN && last);
	CK_ULONG none = 0;
	struct msg_param mp;
	struct lib_call c;
	CK_RV rv = msg_begin_call(&c, h, PHSM_OP_MSG_NEXT, kind, &mp, param,
				  param_len);

	if (rv == CKR_OK)
		rv = check_data(in, in_len);
	if (rv == CKR_OK)
		rv = check_data(sig, sig_len);
	if (rv == CKR_OK && output && !out_len)
		rv = CKR_ARGUMENTS_BAD;
	if (rv != CKR_OK)
		return call_end(&c, rv);
	if (!output) {
		out = NULL;
		out_len = &none;
	}
	phsm_put_bytes(&c.w, in, in_len);
	phsm_put_u64(&c.w, last ? CKF_END_OF_MESSAGE : 0);
	phsm_put_bytes(&c.w, sig, sig_len);
	phsm_put_u64(&c.w, output ? out_capacity(out, out_len) : 0);
	rv = call_run_output(&c, out, out_len);
	return call_end(&c, read_param_out(&c, rv, &mp));
}

/* Encrypt and decrypt parts say in @flags whether they end the message. */
static CK_RV crypt_next(CK_SESSION_HANDLE h, unsigned int kind, void *param,
			CK_ULONG param_len, CK_BYTE_PTR in, CK_ULONG in_len,
			CK_BYTE_PTR out, CK_ULONG_PTR out_len, CK_FLAGS flags)
{
	if (flags & ~CKF_END_OF_MESSAGE)
		return need_init() != CKR_OK ? need_init() : CKR_ARGUMENTS_BAD;
	return msg_next(h, kind, param, param_len, in, in_len, NULL, 0, out,
			out_len, flags & CKF_END_OF_MESSAGE);
}

static CK_RV msg_final(CK_SESSION_HANDLE h, unsigned int kind)
{
	return call_session_u64(h, PHSM_OP_MSG_FINAL, kind);
}

/* ---- encryption --------------------------------------------------- */

PHSM_EXPORT CK_RV C_MessageEncryptInit(CK_SESSION_HANDLE hSession,
				       CK_MECHANISM_PTR pMechanism,
				       CK_OBJECT_HANDLE hKey)
{
	return msg_init(hSession, PHSM_OPK_ENCRYPT, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_EncryptMessage(CK_SESSION_HANDLE hSession,
				   CK_VOID_PTR pParameter,
				   CK_ULONG ulParameterLen,
				   CK_BYTE_PTR pAssociatedData,
				   CK_ULONG ulAssociatedDataLen,
				   CK_BYTE_PTR pPlaintext,
				   CK_ULONG ulPlaintextLen,
				   CK_BYTE_PTR pCiphertext,
				   CK_ULONG_PTR pulCiphertextLen)
{
	return msg_oneshot(hSession, PHSM_OPK_ENCRYPT, pParameter,
			   ulParameterLen, pAssociatedData, ulAssociatedDataLen,
			   pPlaintext, ulPlaintextLen, NULL, 0, pCiphertext,
			   pulCiphertextLen);
}

PHSM_EXPORT CK_RV C_EncryptMessageBegin(CK_SESSION_HANDLE hSession,
					CK_VOID_PTR pParameter,
					CK_ULONG ulParameterLen,
					CK_BYTE_PTR pAssociatedData,
					CK_ULONG ulAssociatedDataLen)
{
	return msg_begin(hSession, PHSM_OPK_ENCRYPT, pParameter,
			 ulParameterLen, pAssociatedData, ulAssociatedDataLen);
}

PHSM_EXPORT CK_RV C_EncryptMessageNext(CK_SESSION_HANDLE hSession,
				       CK_VOID_PTR pParameter,
				       CK_ULONG ulParameterLen,
				       CK_BYTE_PTR pPlaintextPart,
				       CK_ULONG ulPlaintextPartLen,
				       CK_BYTE_PTR pCiphertextPart,
				       CK_ULONG_PTR pulCiphertextPartLen,
				       CK_FLAGS flags)
{
	return crypt_next(hSession, PHSM_OPK_ENCRYPT, pParameter,
			  ulParameterLen, pPlaintextPart, ulPlaintextPartLen,
			  pCiphertextPart, pulCiphertextPartLen, flags);
}

PHSM_EXPORT CK_RV C_MessageEncryptFinal(CK_SESSION_HANDLE hSession)
{
	return msg_final(hSession, PHSM_OPK_ENCRYPT);
}

/* ---- decryption --------------------------------------------------- */

PHSM_EXPORT CK_RV C_MessageDecryptInit(CK_SESSION_HANDLE hSession,
				       CK_MECHANISM_PTR pMechanism,
				       CK_OBJECT_HANDLE hKey)
{
	return msg_init(hSession, PHSM_OPK_DECRYPT, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_DecryptMessage(CK_SESSION_HANDLE hSession,
				   CK_VOID_PTR pParameter,
				   CK_ULONG ulParameterLen,
				   CK_BYTE_PTR pAssociatedData,
				   CK_ULONG ulAssociatedDataLen,
				   CK_BYTE_PTR pCiphertext,
				   CK_ULONG ulCiphertextLen,
				   CK_BYTE_PTR pPlaintext,
				   CK_ULONG_PTR pulPlaintextLen)
{
	return msg_oneshot(hSession, PHSM_OPK_DECRYPT, pParameter,
			   ulParameterLen, pAssociatedData, ulAssociatedDataLen,
			   pCiphertext, ulCiphertextLen, NULL, 0, pPlaintext,
			   pulPlaintextLen);
}

PHSM_EXPORT CK_RV C_DecryptMessageBegin(CK_SESSION_HANDLE hSession,
					CK_VOID_PTR pParameter,
					CK_ULONG ulParameterLen,
					CK_BYTE_PTR pAssociatedData,
					CK_ULONG ulAssociatedDataLen)
{
	return msg_begin(hSession, PHSM_OPK_DECRYPT, pParameter,
			 ulParameterLen, pAssociatedData, ulAssociatedDataLen);
}

PHSM_EXPORT CK_RV C_DecryptMessageNext(CK_SESSION_HANDLE hSession,
				       CK_VOID_PTR pParameter,
				       CK_ULONG ulParameterLen,
				       CK_BYTE_PTR pCiphertextPart,
				       CK_ULONG ulCiphertextPartLen,
				       CK_BYTE_PTR pPlaintextPart,
				       CK_ULONG_PTR pulPlaintextPartLen,
				       CK_FLAGS flags)
{
	return crypt_next(hSession, PHSM_OPK_DECRYPT, pParameter,
			  ulParameterLen, pCiphertextPart, ulCiphertextPartLen,
			  pPlaintextPart, pulPlaintextPartLen, flags);
}

PHSM_EXPORT CK_RV C_MessageDecryptFinal(CK_SESSION_HANDLE hSession)
{
	return msg_final(hSession, PHSM_OPK_DECRYPT);
}

/* ---- signing ------------------------------------------------------ */

PHSM_EXPORT CK_RV C_MessageSignInit(CK_SESSION_HANDLE hSession,
				    CK_MECHANISM_PTR pMechanism,
				    CK_OBJECT_HANDLE hKey)
{
	return msg_init(hSession, PHSM_OPK_SIGN, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_SignMessage(CK_SESSION_HANDLE hSession,
				CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
				CK_BYTE_PTR pData, CK_ULONG ulDataLen,
				CK_BYTE_PTR pSignature,
				CK_ULONG_PTR pulSignatureLen)
{
	return msg_oneshot(hSession, PHSM_OPK_SIGN, pParameter, ulParameterLen,
			   NULL, 0, pData, ulDataLen, NULL, 0, pSignature,
			   pulSignatureLen);
}

PHSM_EXPORT CK_RV C_SignMessageBegin(CK_SESSION_HANDLE hSession,
				     CK_VOID_PTR pParameter,
				     CK_ULONG ulParameterLen)
{
	return msg_begin(hSession, PHSM_OPK_SIGN, pParameter, ulParameterLen,
			 NULL, 0);
}

/* The last part is the one given a place for the signature. */
PHSM_EXPORT CK_RV C_SignMessageNext(CK_SESSION_HANDLE hSession,
				    CK_VOID_PTR pParameter,
				    CK_ULONG ulParameterLen,
				    CK_BYTE_PTR pData, CK_ULONG ulDataLen,
				    CK_BYTE_PTR pSignature,
				    CK_ULONG_PTR pulSignatureLen)
{
	return msg_next(hSession, PHSM_OPK_SIGN, pParameter, ulParameterLen,
			pData, ulDataLen, NULL, 0, pSignature, pulSignatureLen,
			pulSignatureLen != NULL);
}

PHSM_EXPORT CK_RV C_MessageSignFinal(CK_SESSION_HANDLE hSession)
{
	return msg_final(hSession, PHSM_OPK_SIGN);
}

/* ---- verification ------------------------------------------------- */

PHSM_EXPORT CK_RV C_MessageVerifyInit(CK_SESSION_HANDLE hSession,
				      CK_MECHANISM_PTR pMechanism,
				      CK_OBJECT_HANDLE hKey)
{
	return msg_init(hSession, PHSM_OPK_VERIFY, pMechanism, hKey);
}

PHSM_EXPORT CK_RV C_VerifyMessage(CK_SESSION_HANDLE hSession,
				  CK_VOID_PTR pParameter,
				  CK_ULONG ulParameterLen, CK_BYTE_PTR pData,
				  CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
				  CK_ULONG ulSignatureLen)
{
	return msg_oneshot(hSession, PHSM_OPK_VERIFY, pParameter,
			   ulParameterLen, NULL, 0, pData, ulDataLen,
			   pSignature, ulSignatureLen, NULL, NULL);
}

PHSM_EXPORT CK_RV C_VerifyMessageBegin(CK_SESSION_HANDLE hSession,
				       CK_VOID_PTR pParameter,
				       CK_ULONG ulParameterLen)
{
	return msg_begin(hSession, PHSM_OPK_VERIFY, pParameter, ulParameterLen,
			 NULL, 0);
}

/* The last part is the one that comes with the signature. */
PHSM_EXPORT CK_RV C_VerifyMessageNext(CK_SESSION_HANDLE hSession,
				      CK_VOID_PTR pParameter,
				      CK_ULONG ulParameterLen,
				      CK_BYTE_PTR pData, CK_ULONG ulDataLen,
				      CK_BYTE_PTR pSignature,
				      CK_ULONG ulSignatureLen)
{
	return msg_next(hSession, PHSM_OPK_VERIFY, pParameter, ulParameterLen,
			pData, ulDataLen, pSignature, ulSignatureLen, NULL, NULL,
			pSignature != NULL);
}

PHSM_EXPORT CK_RV C_MessageVerifyFinal(CK_SESSION_HANDLE hSession)
{
	return msg_final(hSession, PHSM_OPK_VERIFY);
}
