// SPDX-License-Identifier: MIT
/*
 * Sessions and users (base spec 5.5.4-5.5.6, 5.6): session flags and
 * states, login rules, PINs, the retry counter and lockout (on the second
 * partition, so that the suite's token stays usable), C_CloseAllSessions,
 * C_SessionCancel and invalid handles.
 */
#include "suite.h"

#include <string.h>

#define PIN(s) (CK_UTF8CHAR_PTR)(s), strlen(s)

static CK_FLAGS token_flags(CK_SLOT_ID slot)
{
	CK_TOKEN_INFO ti;

	assert_rv(P11->C_GetTokenInfo(slot, &ti), CKR_OK);
	return ti.flags;
}

static void test_open_session_flags(void **state)
{
	CK_SESSION_HANDLE h, h2;
	CK_SESSION_INFO si;

	(void)state;
	/* CKF_SERIAL_SESSION is mandatory (5.6.1). */
	assert_rv(P11->C_OpenSession(S.slot, 0, NULL, NULL, &h),
		  CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	assert_rv(P11->C_OpenSession(S.slot, CKF_RW_SESSION, NULL, NULL, &h),
		  CKR_SESSION_PARALLEL_NOT_SUPPORTED);

	h = open_ro();
	memset(&si, 0xa5, sizeof(si));
	assert_rv(P11->C_GetSessionInfo(h, &si), CKR_OK);
	assert_int_equal(si.slotID, S.slot);
	assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
	assert_int_equal(si.flags, CKF_SERIAL_SESSION);

	h2 = open_rw();
	assert_true(h2 != h);
	memset(&si, 0xa5, sizeof(si));
	assert_rv(P11->C_GetSessionInfo(h2, &si), CKR_OK);
	assert_int_equal(si.slotID, S.slot);
	assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION);
	assert_int_equal(si.flags, CKF_SERIAL_SESSION | CKF_RW_SESSION);

	/* A session on the other partition names its own slot. */
	h = open_session(S.slot2, CKF_SERIAL_SESSION);
	assert_rv(P11->C_GetSessionInfo(h, &si), CKR_OK);
	assert_int_equal(si.slotID, S.slot2);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
	assert_rv(P11->C_CloseSession(h2), CKR_OK);
}

/* Login state belongs to the application and spans its sessions (5.6). */
static void test_session_states(void **state)
{
	CK_SESSION_HANDLE ro, rw, more;

	(void)state;
	ro = open_ro();
	rw = open_rw();
	assert_int_equal(session_state(ro), CKS_RO_PUBLIC_SESSION);
	assert_int_equal(session_state(rw), CKS_RW_PUBLIC_SESSION);

	/* The user may log in through a read-only session. */
	login_user(ro);
	assert_int_equal(session_state(ro), CKS_RO_USER_FUNCTIONS);
	assert_int_equal(session_state(rw), CKS_RW_USER_FUNCTIONS);
	more = open_ro();
	assert_int_equal(session_state(more), CKS_RO_USER_FUNCTIONS);
	assert_rv(P11->C_CloseSession(more), CKR_OK);
	more = open_rw();
	assert_int_equal(session_state(more), CKS_RW_USER_FUNCTIONS);
	assert_rv(P11->C_CloseSession(more), CKR_OK);

	assert_rv(P11->C_Logout(rw), CKR_OK);
	assert_int_equal(session_state(ro), CKS_RO_PUBLIC_SESSION);
	assert_int_equal(session_state(rw), CKS_RW_PUBLIC_SESSION);

	/* No SO login while a read-only session exists (5.6.9) ... */
	assert_rv(P11->C_Login(rw, CKU_SO, PIN(SO_PIN)), CKR_SESSION_READ_ONLY_EXISTS);
	assert_int_equal(session_state(rw), CKS_RW_PUBLIC_SESSION);
	assert_rv(P11->C_CloseSession(ro), CKR_OK);
	assert_rv(P11->C_Login(rw, CKU_SO, PIN(SO_PIN)), CKR_OK);
	assert_int_equal(session_state(rw), CKS_RW_SO_FUNCTIONS);
	/* ... and no read-only session while the SO is in (5.6.1). */
	assert_rv(P11->C_OpenSession(S.slot, CKF_SERIAL_SESSION, NULL, NULL, &more),
		  CKR_SESSION_READ_WRITE_SO_EXISTS);
	more = open_rw();
	assert_int_equal(session_state(more), CKS_RW_SO_FUNCTIONS);
	assert_rv(P11->C_Logout(more), CKR_OK);
	assert_int_equal(session_state(rw), CKS_RW_PUBLIC_SESSION);
	assert_rv(P11->C_CloseSession(more), CKR_OK);
	assert_rv(P11->C_CloseSession(rw), CKR_OK);
}

static void test_login_rules(void **state)
{
	CK_SESSION_HANDLE h = open_rw();

	(void)state;
	assert_rv(P11->C_Logout(h), CKR_USER_NOT_LOGGED_IN);
	assert_rv(P11->C_Login(h, 7, PIN(USER_PIN)), CKR_USER_TYPE_INVALID);
	login_user(h);
	assert_rv(P11->C_Login(h, CKU_USER, PIN(USER_PIN)), CKR_USER_ALREADY_LOGGED_IN);
	assert_rv(P11->C_Login(h, CKU_SO, PIN(SO_PIN)),
		  CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
	/* Context-specific login without an operation on such a key (4.9). */
	assert_rv(P11->C_Login(h, CKU_CONTEXT_SPECIFIC, PIN(USER_PIN)),
		  CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(session_state(h), CKS_RW_USER_FUNCTIONS);
	assert_rv(P11->C_Logout(h), CKR_OK);
	assert_rv(P11->C_Logout(h), CKR_USER_NOT_LOGGED_IN);

	assert_rv(P11->C_Login(h, CKU_SO, PIN(SO_PIN)), CKR_OK);
	assert_rv(P11->C_Login(h, CKU_SO, PIN(SO_PIN)), CKR_USER_ALREADY_LOGGED_IN);
	assert_rv(P11->C_Login(h, CKU_USER, PIN(USER_PIN)),
		  CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
	assert_rv(P11->C_Logout(h), CKR_OK);
	/* Login state ends with the application's last session (5.6.2). */
	login_user(h);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
	h = open_ro();
	assert_int_equal(session_state(h), CKS_RO_PUBLIC_SESSION);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
}

static void test_wrong_pin_count_low(void **state)
{
	CK_SESSION_HANDLE h = open_rw();

	(void)state;
	assert_false(token_flags(S.slot) & CKF_USER_PIN_COUNT_LOW);
	assert_rv(P11->C_Login(h, CKU_USER, PIN("wrong-pin")), CKR_PIN_INCORRECT);
	assert_int_equal(session_state(h), CKS_RW_PUBLIC_SESSION);
	/* 3.2: "an incorrect user login PIN has been entered at least once
	 * since the last successful authentication". */
	assert_true(token_flags(S.slot) & CKF_USER_PIN_COUNT_LOW);
	assert_false(token_flags(S.slot) & CKF_USER_PIN_LOCKED);
	/* A PIN of the wrong length is just a wrong PIN at login. */
	assert_rv(P11->C_Login(h, CKU_USER, PIN("123")), CKR_PIN_INCORRECT);
	login_user(h);
	assert_false(token_flags(S.slot) & CKF_USER_PIN_COUNT_LOW);
	assert_false(token_flags(S.slot) & CKF_USER_PIN_FINAL_TRY);
	assert_rv(P11->C_Logout(h), CKR_OK);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
}

static void test_set_pin_user(void **state)
{
	static const char pin4[] = "abcd";
	static const char pin64[] =
		"0123456789012345678901234567890123456789012345678901234567890123";
	static const char pin65[] =
		"01234567890123456789012345678901234567890123456789012345678901234";
	CK_SESSION_HANDLE h, ro;

	(void)state;
	assert_int_equal(strlen(pin64), 64);
	assert_int_equal(strlen(pin65), 65);
	ro = open_ro();
	h = user_session();
	/* Only in R/W sessions (5.5.6). */
	assert_rv(P11->C_SetPIN(ro, PIN(USER_PIN), PIN(pin4)), CKR_SESSION_READ_ONLY);
	assert_rv(P11->C_SetPIN(h, PIN(USER_PIN), PIN("abc")), CKR_PIN_LEN_RANGE);
	assert_rv(P11->C_SetPIN(h, PIN(USER_PIN), PIN(pin65)), CKR_PIN_LEN_RANGE);
	assert_rv(P11->C_SetPIN(h, PIN("not-the-pin"), PIN(pin4)), CKR_PIN_INCORRECT);
	/* 4 and 64 bytes are the limits, both allowed. */
	assert_rv(P11->C_SetPIN(h, PIN(USER_PIN), PIN(pin4)), CKR_OK);
	assert_rv(P11->C_Logout(h), CKR_OK);
	assert_rv(P11->C_Login(h, CKU_USER, PIN(USER_PIN)), CKR_PIN_INCORRECT);
	assert_rv(P11->C_Login(h, CKU_USER, PIN(pin4)), CKR_OK);
	assert_rv(P11->C_SetPIN(h, PIN(pin4), PIN(pin64)), CKR_OK);
	assert_rv(P11->C_Logout(h), CKR_OK);
	/* Not logged in: C_SetPIN changes the user PIN (5.5.6). */
	assert_rv(P11->C_SetPIN(h, PIN(pin64), PIN(USER_PIN)), CKR_OK);
	login_user(h);
	assert_rv(P11->C_Logout(h), CKR_OK);
	assert_rv(P11->C_CloseSession(ro), CKR_OK);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
}

static void test_set_pin_so_and_init_pin(void **state)
{
	CK_SESSION_HANDLE h = open_rw();

	(void)state;
	/* C_InitPIN needs the R/W SO state (5.5.5). */
	assert_rv(P11->C_InitPIN(h, PIN(USER_PIN)), CKR_USER_NOT_LOGGED_IN);
	login_user(h);
	assert_rv(P11->C_InitPIN(h, PIN(USER_PIN)), CKR_USER_NOT_LOGGED_IN);
	assert_rv(P11->C_Logout(h), CKR_OK);

	assert_rv(P11->C_Login(h, CKU_SO, PIN(SO_PIN)), CKR_OK);
	assert_rv(P11->C_InitPIN(h, PIN("abc")), CKR_PIN_LEN_RANGE);
	assert_rv(P11->C_InitPIN(h,
		PIN("01234567890123456789012345678901234567890123456789012345678901234")),
		CKR_PIN_LEN_RANGE);
	assert_rv(P11->C_InitPIN(h, PIN(USER_PIN)), CKR_OK);
	/* The SO changes its own PIN, and back. */
	assert_rv(P11->C_SetPIN(h, PIN(SO_PIN), PIN(SO_PIN_ALT)), CKR_OK);
	assert_rv(P11->C_Logout(h), CKR_OK);
	assert_rv(P11->C_Login(h, CKU_SO, PIN(SO_PIN)), CKR_PIN_INCORRECT);
	assert_rv(P11->C_Login(h, CKU_SO, PIN(SO_PIN_ALT)), CKR_OK);
	assert_rv(P11->C_SetPIN(h, PIN(SO_PIN_ALT), PIN(SO_PIN)), CKR_OK);
	assert_rv(P11->C_Logout(h), CKR_OK);
	assert_rv(P11->C_Login(h, CKU_SO, PIN(SO_PIN)), CKR_OK);
	assert_rv(P11->C_Logout(h), CKR_OK);
	/* The user PIN still works after C_InitPIN set it again. */
	login_user(h);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
}

static void test_pin_lockout(void **state)
{
	CK_SESSION_HANDLE h;
	CK_FLAGS flags, prev = 0;
	CK_RV rv = CKR_OK;
	int tries;

	(void)state;
	/* The second partition gets its own token, freshly initialised. */
	assert_rv(init_token_and_pin(S.slot2, SO2_PIN, NULL, "phsm-suite-2",
				     USER2_PIN, NULL), CKR_OK);
	flags = token_flags(S.slot2);
	assert_false(flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY |
			      CKF_USER_PIN_LOCKED));
	h = open_session(S.slot2, CKF_SERIAL_SESSION | CKF_RW_SESSION);
	for (tries = 1; tries <= 20; tries++) {
		prev = flags;
		rv = P11->C_Login(h, CKU_USER, PIN("0000"));
		flags = token_flags(S.slot2);
		if (flags & CKF_USER_PIN_LOCKED)
			break;
		assert_rv(rv, CKR_PIN_INCORRECT);
		assert_true(flags & CKF_USER_PIN_COUNT_LOW);
	}
	assert_true(flags & CKF_USER_PIN_LOCKED);
	assert_true(tries >= 3);
	/* The try that locked was announced as the final one (3.2). */
	assert_true(prev & CKF_USER_PIN_FINAL_TRY);
	assert_true(rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED);
	/* Locked: even the right PIN is refused. */
	assert_rv(P11->C_Login(h, CKU_USER, PIN(USER2_PIN)), CKR_PIN_LOCKED);
	assert_int_equal(session_state(h), CKS_RW_PUBLIC_SESSION);
	/* The first partition is not affected. */
	assert_false(token_flags(S.slot) & CKF_USER_PIN_LOCKED);
	{
		CK_SESSION_HANDLE u = user_session();

		assert_rv(P11->C_CloseSession(u), CKR_OK);
	}
	/* The SO sets a new user PIN, which unlocks. */
	assert_rv(P11->C_Login(h, CKU_SO, PIN(SO2_PIN)), CKR_OK);
	assert_rv(P11->C_InitPIN(h, PIN(USER2_PIN)), CKR_OK);
	assert_rv(P11->C_Logout(h), CKR_OK);
	flags = token_flags(S.slot2);
	assert_false(flags & CKF_USER_PIN_LOCKED);
	assert_rv(P11->C_Login(h, CKU_USER, PIN(USER2_PIN)), CKR_OK);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
}

static void test_close_all_sessions(void **state)
{
	CK_SESSION_HANDLE h[3], other;
	CK_SESSION_INFO si;

	(void)state;
	other = open_session(S.slot2, CKF_SERIAL_SESSION);
	h[0] = open_ro();
	h[1] = open_rw();
	h[2] = open_rw();
	login_user(h[1]);
	assert_rv(P11->C_CloseAllSessions(S.slot), CKR_OK);
	for (int i = 0; i < 3; i++)
		assert_rv(P11->C_GetSessionInfo(h[i], &si), CKR_SESSION_HANDLE_INVALID);
	/* Back to public sessions (5.6.3). */
	h[0] = open_rw();
	assert_int_equal(session_state(h[0]), CKS_RW_PUBLIC_SESSION);
	/* Other slots keep their sessions. */
	assert_rv(P11->C_GetSessionInfo(other, &si), CKR_OK);
	assert_int_equal(si.slotID, S.slot2);
	/* Nothing open: still fine. */
	assert_rv(P11->C_CloseAllSessions(S.slot), CKR_OK);
	assert_rv(P11->C_CloseAllSessions(S.slot), CKR_OK);
	assert_rv(P11->C_CloseSession(other), CKR_OK);
}

static void test_invalid_session_handles(void **state)
{
	static const CK_SESSION_HANDLE bad[] = {
		CK_INVALID_HANDLE, 0x7fffffffUL, 0xdeadbeefUL, ~0UL,
	};
	CK_SESSION_INFO si;
	CK_SESSION_HANDLE h;
	uint8_t buf[8];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_rv(P11->C_GetSessionInfo(bad[i], &si), CKR_SESSION_HANDLE_INVALID);
		assert_rv(P11->C_CloseSession(bad[i]), CKR_SESSION_HANDLE_INVALID);
		assert_rv(P11->C_Login(bad[i], CKU_USER, PIN(USER_PIN)),
			  CKR_SESSION_HANDLE_INVALID);
		assert_rv(P11->C_GenerateRandom(bad[i], buf, sizeof(buf)),
			  CKR_SESSION_HANDLE_INVALID);
		assert_rv(P11->C_FindObjectsInit(bad[i], NULL, 0),
			  CKR_SESSION_HANDLE_INVALID);
	}
	h = open_ro();
	assert_rv(P11->C_CloseSession(h), CKR_OK);
	assert_rv(P11->C_CloseSession(h), CKR_SESSION_HANDLE_INVALID);
	assert_rv(P11->C_GetSessionInfo(h, &si), CKR_SESSION_HANDLE_INVALID);
	assert_rv(P11->C_Logout(h), CKR_SESSION_HANDLE_INVALID);
}

static void test_session_cancel(void **state)
{
	CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
	CK_SESSION_HANDLE h = open_ro();
	uint8_t out[64];
	CK_ULONG n = sizeof(out);

	(void)state;
	assert_rv(P11->C_SessionCancel(h, 0), CKR_OK);
	/* A flag for an operation that is not active is ignored (5.6.5). */
	assert_rv(P11->C_SessionCancel(h, CKF_ENCRYPT | CKF_SIGN), CKR_OK);
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"abc", 3), CKR_OK);
	assert_rv(P11->C_SessionCancel(h, CKF_DIGEST), CKR_OK);
	assert_rv(P11->C_DigestFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);
	/* The session is usable afterwards. */
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	n = sizeof(out);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"abc", 3, out, &n), CKR_OK);
	assert_int_equal(n, 32);
	assert_rv(P11->C_SessionCancel(0x7fffffffUL, CKF_DIGEST),
		  CKR_SESSION_HANDLE_INVALID);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
}

/* Legacy and unsupported functions still answer as 5.20 and 5.6 say. */
static void test_legacy_functions(void **state)
{
	CK_SESSION_HANDLE h = open_ro();
	CK_ULONG n = 0;

	(void)state;
	assert_rv(P11->C_GetFunctionStatus(h), CKR_FUNCTION_NOT_PARALLEL);
	assert_rv(P11->C_CancelFunction(h), CKR_FUNCTION_NOT_PARALLEL);
	/* No saved state to give: nothing is active, or it is unsupported. */
	{
		CK_RV rv = P11->C_GetOperationState(h, NULL, &n);

		assert_true(rv == CKR_OPERATION_NOT_INITIALIZED ||
			    rv == CKR_FUNCTION_NOT_SUPPORTED);
	}
	assert_rv(P11->C_CloseSession(h), CKR_OK);
}

const struct CMUnitTest sessions_tests[] = {
	P11_TEST(test_open_session_flags),
	P11_TEST(test_session_states),
	P11_TEST(test_login_rules),
	P11_TEST(test_wrong_pin_count_low),
	P11_TEST(test_set_pin_user),
	P11_TEST(test_set_pin_so_and_init_pin),
	P11_TEST(test_pin_lockout),
	P11_TEST(test_close_all_sessions),
	P11_TEST(test_invalid_session_handles),
	P11_TEST(test_session_cancel),
	P11_TEST(test_legacy_functions),
};
SUITE_COUNT(sessions);
