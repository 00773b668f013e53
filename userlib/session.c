// SPDX-License-Identifier: MIT
/*
 * Sessions and logins.  The card hands out session handles; the
 * application sees them with the card index in the high bits (lib.h).
 * Notification callbacks are accepted and never called: the card has no
 * surrender events to report.
 *
 * The library keeps the set of sessions it opened on each card's
 * connection (digest.c), for the digests it computes itself: opening a
 * session adds it, closing removes it before the card is asked.
 */
#include <string.h>

#include "lib.h"

/* The card gave us a handle we cannot express: give it back. */
static void close_local(struct lib_card *card, uint64_t local)
{
	struct lib_call c;
	CK_RV rv = call_card(&c, card, PHSM_OP_CLOSE_SESSION);

	phsm_put_u64(&c.w, local);
	if (rv == CKR_OK)
		rv = call_run(&c);
	call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags,
				CK_VOID_PTR pApplication, CK_NOTIFY Notify,
				CK_SESSION_HANDLE_PTR phSession)
{
	struct lib_call c;
	uint64_t local = 0;
	unsigned int part = 0;
	uint32_t ticket = 0;
	CK_RV rv = need_init();

	(void)pApplication;
	(void)Notify;
	if (rv != CKR_OK)
		return rv;
	if (!phSession)
		return CKR_ARGUMENTS_BAD;
	rv = call_slot(&c, slotID, PHSM_OP_OPEN_SESSION, &part);
	phsm_put_u64(&c.w, flags);
	if (rv == CKR_OK) {
		ticket = lib_sess_ticket(c.card);
		rv = call_run(&c);
	}
	if (rv == CKR_OK) {
		local = phsm_get_u64(&c.r);
		if (!call_done(&c))
			rv = CKR_DEVICE_ERROR;
		else if (!(*phSession = lib_session_handle(c.card, c.generation, local)))
			rv = CKR_DEVICE_ERROR;
		if (rv != CKR_OK && local)
			close_local(c.card, local);
		if (rv == CKR_OK)
			lib_sess_add(c.card, c.generation, local, part, ticket);
	}
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_CLOSE_SESSION);

	/* Before the card closes it: the library's digest ends with it. */
	if (rv == CKR_OK)
		lib_sess_forget(c.card, hSession & LIB_HANDLE_LOCAL_MASK);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK)
		lib_msg_mech_forget(c.card, hSession);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
	struct lib_call c;
	unsigned int part;
	CK_RV rv = call_slot(&c, slotID, PHSM_OP_CLOSE_ALL_SESSIONS, &part);

	/* Before and after: a session opened meanwhile may be gone too. */
	if (rv == CKR_OK) {
		lib_sess_close_all(c.card, part);
		rv = call_run(&c);
		lib_sess_close_all(c.card, part);
	}
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession,
				   CK_SESSION_INFO_PTR pInfo)
{
	struct lib_call c;
	uint64_t part, state, flags, err;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_GET_SESSION_INFO);

	if (rv == CKR_OK && !pInfo)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK) {
		part = phsm_get_u64(&c.r);
		state = phsm_get_u64(&c.r);
		flags = phsm_get_u64(&c.r);
		err = phsm_get_u64(&c.r);
		if (!call_done(&c) || part >= LIB_PARTS_PER_CARD)
			return call_end(&c, CKR_DEVICE_ERROR);
		pInfo->slotID = c.card->index * LIB_PARTS_PER_CARD + part;
		pInfo->state = state;
		pInfo->flags = flags;
		pInfo->ulDeviceError = err;
	}
	return call_end(&c, rv);
}

static CK_RV login(CK_SESSION_HANDLE h, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin,
		   CK_ULONG pin_len, CK_UTF8CHAR_PTR user, CK_ULONG user_len)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, h, PHSM_OP_LOGIN);

	/* A NULL PIN asks for a protected path, which we do not have. */
	if (rv == CKR_OK && !pin)
		rv = CKR_ARGUMENTS_BAD;
	phsm_put_u64(&c.w, type);
	if (rv == CKR_OK)
		rv = put_buffer(&c.w, pin, pin_len);
	if (rv == CKR_OK)
		rv = put_buffer(&c.w, user, user_len);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
			  CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	return login(hSession, userType, pPin, ulPinLen, NULL, 0);
}

PHSM_EXPORT CK_RV C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
			      CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
			      CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)
{
	return login(hSession, userType, pPin, ulPinLen, pUsername,
		     ulUsernameLen);
}

PHSM_EXPORT CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
	return call_session_simple(hSession, PHSM_OP_LOGOUT);
}

/* The card checks the session and the flags; a digest the library holds
 * ends with the card's CKR_OK, like the card's own. */
PHSM_EXPORT CK_RV C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
	struct lib_dg_mark mark = { 0 };
	CK_RV rv;

	if (flags & CKF_DIGEST)
		lib_digest_begin(hSession, LIB_DG_CANCEL, &mark, NULL);
	rv = call_session_u64(hSession, PHSM_OP_SESSION_CANCEL, flags);
	if (rv == CKR_OK)
		lib_digest_ended(&mark);
	return rv;
}

/* Operation state would carry card secrets through the host: refused
 * (without a word to the card, so a digest the library holds stays). */
PHSM_EXPORT CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession,
				      CK_BYTE_PTR pOperationState,
				      CK_ULONG_PTR pulOperationStateLen)
{
	CK_RV rv = need_init();

	(void)hSession;
	(void)pOperationState;
	(void)pulOperationStateLen;
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

PHSM_EXPORT CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession,
				      CK_BYTE_PTR pOperationState,
				      CK_ULONG ulOperationStateLen,
				      CK_OBJECT_HANDLE hEncryptionKey,
				      CK_OBJECT_HANDLE hAuthenticationKey)
{
	CK_RV rv = need_init();

	(void)hSession;
	(void)pOperationState;
	(void)ulOperationStateLen;
	(void)hEncryptionKey;
	(void)hAuthenticationKey;
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

/* Legacy parallel-function management: never anything in parallel. */
PHSM_EXPORT CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	CK_RV rv = need_init();

	(void)hSession;
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL;
}

PHSM_EXPORT CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	CK_RV rv = need_init();

	(void)hSession;
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL;
}
