// SPDX-License-Identifier: MIT
/*
 * Argument checking: NULL pointers where an output or input is required
 * give CKR_ARGUMENTS_BAD (5.1.6), never a crash, and leave no operation
 * half-started.  A refused C_Encrypt, C_Sign, C_Digest... still ends the
 * active operation (5.8.2 and the like: "always terminates ... unless it
 * returns CKR_BUFFER_TOO_SMALL"), so each is followed by a fresh init.
 */
#include "suite.h"

#include <string.h>

static void test_null_outputs_general(void **state)
{
	CK_ULONG n = 0;
	CK_SESSION_HANDLE h;
	CK_UTF8CHAR label[32];

	(void)state;
	pad_label(label, "x");
	assert_rv(P11->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetSlotList(CK_TRUE, NULL, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetSlotInfo(S.slot, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetTokenInfo(S.slot, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetMechanismList(S.slot, NULL, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetMechanismInfo(S.slot, CKM_SHA256, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_OpenSession(S.slot, CKF_SERIAL_SESSION, NULL, NULL, NULL),
		  CKR_ARGUMENTS_BAD);
	/* C_InitToken needs its 32-byte label. */
	assert_rv(P11->C_InitToken(S.slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), NULL),
		  CKR_ARGUMENTS_BAD);
	/* No session was opened by the failed call. */
	h = open_ro();
	assert_rv(P11->C_GetSessionInfo(h, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
}

static void test_null_pins(void **state)
{
	CK_SESSION_HANDLE h = open_rw();

	(void)state;
	/* No protected authentication path: a PIN is required. */
	assert_rv(P11->C_Login(h, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
	assert_int_equal(session_state(h), CKS_RW_PUBLIC_SESSION);
	assert_rv(P11->C_SetPIN(h, NULL, 4, (CK_UTF8CHAR_PTR)"abcd", 4), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_SetPIN(h, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN), NULL, 4),
		  CKR_ARGUMENTS_BAD);
	login_user(h);
}

static void test_null_objects(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE o, obj = create_data(h, "args", false, false);
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE t = { CKA_CLASS, &cls, sizeof(cls) };
	CK_ULONG n;

	(void)state;
	assert_rv(P11->C_CreateObject(h, NULL, 1, &o), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_CreateObject(h, &t, 1, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_CopyObject(h, obj, NULL, 1, &o), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_CopyObject(h, obj, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetAttributeValue(h, obj, NULL, 1), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_SetAttributeValue(h, obj, NULL, 1), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetObjectSize(h, obj, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_FindObjectsInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
	/* The failed init did not start a search. */
	assert_rv(P11->C_FindObjectsInit(h, &t, 1), CKR_OK);
	assert_rv(P11->C_FindObjects(h, NULL, 1, &n), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_FindObjects(h, &o, 1, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_FindObjectsFinal(h), CKR_OK);
	/* An attribute whose value pointer is NULL with a length: refused
	 * (the spec names no code; either reading is fair), nothing made. */
	t.pValue = NULL;
	o = CK_INVALID_HANDLE;
	{
		CK_RV rv = P11->C_CreateObject(h, &t, 1, &o);

		if (rv != CKR_ARGUMENTS_BAD && rv != CKR_ATTRIBUTE_VALUE_INVALID)
			fail_msg("NULL attribute value: %s", rv_name(rv));
	}
	assert_int_equal(o, CK_INVALID_HANDLE);
}

static void test_null_crypto(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 }, sha = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM hm = { CKM_SHA256_HMAC, NULL, 0 };
	uint8_t key[16], buf[64];
	CK_OBJECT_HANDLE k;
	CK_ULONG n = sizeof(buf);
	struct tmpl t;

	(void)state;
	fill_pattern(key, sizeof(key), 80);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_ENCRYPT, true);
	tmpl_bool(&t, CKA_DECRYPT, true);
	tmpl_bool(&t, CKA_SIGN, true);
	tmpl_bool(&t, CKA_VERIFY, true);
	k = create_secret(h, CKK_GENERIC_SECRET, key, sizeof(key), &t);
	{
		CK_OBJECT_HANDLE a = create_secret(h, CKK_AES, key, sizeof(key), &t);

		assert_rv(P11->C_EncryptInit(h, &ecb, a), CKR_OK);
		assert_rv(P11->C_Encrypt(h, NULL, 16, buf, &n), CKR_ARGUMENTS_BAD);
		n = sizeof(buf);
		assert_rv(P11->C_EncryptInit(h, &ecb, a), CKR_OK);
		assert_rv(P11->C_Encrypt(h, key, 16, buf, NULL), CKR_ARGUMENTS_BAD);
		assert_rv(P11->C_EncryptInit(h, &ecb, a), CKR_OK);
		assert_rv(P11->C_EncryptUpdate(h, key, 16, buf, NULL), CKR_ARGUMENTS_BAD);
		assert_rv(P11->C_EncryptInit(h, &ecb, a), CKR_OK);
		assert_rv(P11->C_EncryptFinal(h, buf, NULL), CKR_ARGUMENTS_BAD);
		assert_rv(P11->C_DecryptInit(h, &ecb, a), CKR_OK);
		assert_rv(P11->C_Decrypt(h, key, 16, buf, NULL), CKR_ARGUMENTS_BAD);
	}
	assert_rv(P11->C_DigestInit(h, &sha), CKR_OK);
	assert_rv(P11->C_Digest(h, key, 16, buf, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_DigestInit(h, &sha), CKR_OK);
	assert_rv(P11->C_DigestUpdate(h, NULL, 16), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_DigestInit(h, &sha), CKR_OK);
	assert_rv(P11->C_DigestFinal(h, buf, NULL), CKR_ARGUMENTS_BAD);

	assert_rv(P11->C_SignInit(h, &hm, k), CKR_OK);
	assert_rv(P11->C_Sign(h, key, 16, buf, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_SignInit(h, &hm, k), CKR_OK);
	assert_rv(P11->C_SignFinal(h, buf, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_VerifyInit(h, &hm, k), CKR_OK);
	assert_rv(P11->C_Verify(h, key, 16, NULL, 32), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_VerifyInit(h, &hm, k), CKR_OK);
	assert_rv(P11->C_VerifyFinal(h, NULL, 32), CKR_ARGUMENTS_BAD);

	assert_rv(P11->C_GenerateRandom(h, NULL, 8), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_SeedRandom(h, NULL, 8), CKR_ARGUMENTS_BAD);
	/* After all that the session still works. */
	assert_int_equal(sign(h, &hm, k, "ok", 2, buf, sizeof(buf)), 32);
}

static void test_null_keys(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM ecgen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_MECHANISM kw = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_ULONG len = 16;
	CK_ATTRIBUTE t = { CKA_VALUE_LEN, &len, sizeof(len) };
	CK_ATTRIBUTE ec = { CKA_EC_PARAMS, (void *)OID_P256, sizeof(OID_P256) };
	CK_OBJECT_HANDLE k, k2, pub, priv;
	uint8_t buf[64];
	struct tmpl w;

	(void)state;
	assert_rv(P11->C_GenerateKey(h, NULL, &t, 1, &k), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GenerateKey(h, &gen, &t, 1, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GenerateKey(h, &gen, NULL, 1, &k), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GenerateKeyPair(h, &ecgen, &ec, 1, NULL, 0, NULL, &priv),
		  CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GenerateKeyPair(h, &ecgen, &ec, 1, NULL, 0, &pub, NULL),
		  CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GenerateKeyPair(h, NULL, &ec, 1, NULL, 0, &pub, &priv),
		  CKR_ARGUMENTS_BAD);

	tmpl_init(&w);
	tmpl_ulong(&w, CKA_VALUE_LEN, 16);
	tmpl_bool(&w, CKA_WRAP, true);
	tmpl_bool(&w, CKA_UNWRAP, true);
	tmpl_bool(&w, CKA_EXTRACTABLE, true);
	assert_rv(P11->C_GenerateKey(h, &gen, w.a, w.n, &k), CKR_OK);
	assert_rv(P11->C_WrapKey(h, &kw, k, k, buf, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_WrapKey(h, NULL, k, k, buf, &len), CKR_ARGUMENTS_BAD);
	len = sizeof(buf);
	assert_rv(P11->C_WrapKey(h, &kw, k, k, buf, &len), CKR_OK);
	assert_rv(P11->C_UnwrapKey(h, &kw, k, NULL, len, &t, 0, &k2), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_UnwrapKey(h, &kw, k, buf, len, &t, 0, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_DeriveKey(h, NULL, k, &t, 0, &k2), CKR_ARGUMENTS_BAD);
}

const struct CMUnitTest args_tests[] = {
	P11_TEST(test_null_outputs_general),
	P11_TEST(test_null_pins),
	P11_TEST(test_null_objects),
	P11_TEST(test_null_crypto),
	P11_TEST(test_null_keys),
};
SUITE_COUNT(args);
