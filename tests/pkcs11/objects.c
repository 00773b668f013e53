// SPDX-License-Identifier: MIT
/*
 * Objects (base spec section 4 and 5.7): creation, attribute reading
 * conventions (5.7.5), visibility of private objects, token and session
 * objects, the policy attributes, one-way attributes, attributes of
 * generated keys, CKA_UNIQUE_ID, searching, copying, sizes, destruction.
 */
#include "suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

/* A label unique to this run, so earlier runs' objects never match. */
static const char *label(const char *what)
{
	static char buf[8][64];
	static int next;
	char *s = buf[next++ % 8];

	snprintf(s, sizeof(buf[0]), "suite-%d-%s", (int)getpid(), what);
	return s;
}

static void test_create_data_object(void **state)
{
	CK_SESSION_HANDLE rw = open_rw(), ro = open_ro();
	CK_OBJECT_HANDLE o;
	CK_ULONG n;
	uint8_t *v;
	struct tmpl t;

	(void)state;
	o = create_data(rw, label("data"), false, false);
	assert_int_equal(attr_ulong(rw, o, CKA_CLASS), CKO_DATA);
	v = attr_get(rw, o, CKA_LABEL, &n);
	assert_int_equal(n, strlen(label("data")));
	assert_memory_equal(v, label("data"), n);
	free(v);
	v = attr_get(rw, o, CKA_VALUE, &n);
	assert_int_equal(n, 9);
	assert_memory_equal(v, "some data", 9);
	free(v);
	v = attr_get(rw, o, CKA_APPLICATION, &n);
	assert_int_equal(n, 10);
	assert_memory_equal(v, "phsm suite", 10);
	free(v);
	assert_false(attr_bool(rw, o, CKA_TOKEN));
	assert_false(attr_bool(rw, o, CKA_PRIVATE));
	/* Defaults of Table 17 and 18. */
	assert_true(attr_bool(rw, o, CKA_MODIFIABLE));
	assert_true(attr_bool(rw, o, CKA_COPYABLE));
	assert_true(attr_bool(rw, o, CKA_DESTROYABLE));
	assert_int_equal(attr_len(rw, o, CKA_OBJECT_ID), 0);
	assert_true(attr_len(rw, o, CKA_UNIQUE_ID) > 0);

	/* Session objects may be created in R/O sessions, token ones not. */
	o = create_data(ro, label("ro"), false, false);
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	tmpl_bool(&t, CKA_TOKEN, true);
	tmpl_bool(&t, CKA_PRIVATE, false);
	assert_rv(P11->C_CreateObject(ro, t.a, t.n, &o), CKR_SESSION_READ_ONLY);
	/* Private objects need the user (5.7.1). */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	tmpl_bool(&t, CKA_PRIVATE, true);
	assert_rv(P11->C_CreateObject(rw, t.a, t.n, &o), CKR_USER_NOT_LOGGED_IN);
	/* A class is needed. */
	tmpl_init(&t);
	tmpl_str(&t, CKA_LABEL, "no class");
	assert_rv(P11->C_CreateObject(rw, t.a, t.n, &o), CKR_TEMPLATE_INCOMPLETE);
}

static void test_create_secret_key(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[16], short_key[15];
	CK_OBJECT_HANDLE o;
	CK_ULONG n;
	uint8_t *v;
	struct tmpl t;

	(void)state;
	fill_pattern(key, sizeof(key), 1);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_ENCRYPT, true);
	o = create_secret(h, CKK_AES, key, sizeof(key), &t);
	assert_int_equal(attr_ulong(h, o, CKA_CLASS), CKO_SECRET_KEY);
	assert_int_equal(attr_ulong(h, o, CKA_KEY_TYPE), CKK_AES);
	assert_int_equal(attr_ulong(h, o, CKA_VALUE_LEN), 16);
	v = attr_get(h, o, CKA_VALUE, &n);
	assert_int_equal(n, 16);
	assert_memory_equal(v, key, 16);
	free(v);
	/* Created, not generated: 5.7.1 and 4.7. */
	assert_false(attr_bool(h, o, CKA_LOCAL));
	assert_false(attr_bool(h, o, CKA_ALWAYS_SENSITIVE));
	assert_false(attr_bool(h, o, CKA_NEVER_EXTRACTABLE));
	assert_int_equal(attr_ulong(h, o, CKA_KEY_GEN_MECHANISM),
			 CK_UNAVAILABLE_INFORMATION);
	assert_true(attr_bool(h, o, CKA_ENCRYPT));
	assert_false(attr_bool(h, o, CKA_SENSITIVE));	/* Table 28 default */

	/* An AES key of 15 bytes is not a valid value. */
	fill_pattern(short_key, sizeof(short_key), 2);
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	tmpl_ulong(&t, CKA_KEY_TYPE, CKK_AES);
	tmpl_bytes(&t, CKA_VALUE, short_key, sizeof(short_key));
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	/* Without its value the key is incomplete. */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	tmpl_ulong(&t, CKA_KEY_TYPE, CKK_AES);
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_TEMPLATE_INCOMPLETE);
	/* CKA_LOCAL is read-only (Table 23, footnote 2). */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	tmpl_ulong(&t, CKA_KEY_TYPE, CKK_AES);
	tmpl_bytes(&t, CKA_VALUE, key, sizeof(key));
	tmpl_bool(&t, CKA_LOCAL, true);
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_ATTRIBUTE_READ_ONLY);
}

/* Big-endian bytes of an OpenSSL key's BIGNUM parameter. */
static uint8_t *bn_param(EVP_PKEY *k, const char *name, int *len)
{
	BIGNUM *bn = NULL;
	uint8_t *out;

	assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
	*len = BN_num_bytes(bn);
	out = malloc(*len);
	assert_non_null(out);
	BN_bn2bin(bn, out);
	BN_free(bn);
	return out;
}

/* A public key made by OpenSSL, verified on the token. */
static void test_create_public_key(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	EVP_PKEY *k = EVP_RSA_gen(2048);
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t *n_bytes, *e_bytes, sig[512], data[100];
	size_t sig_len = sizeof(sig);
	int nlen, elen;
	CK_OBJECT_HANDLE o;
	struct tmpl t;

	(void)state;
	assert_non_null(k);
	assert_non_null(md);
	n_bytes = bn_param(k, OSSL_PKEY_PARAM_RSA_N, &nlen);
	e_bytes = bn_param(k, OSSL_PKEY_PARAM_RSA_E, &elen);
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_PUBLIC_KEY);
	tmpl_ulong(&t, CKA_KEY_TYPE, CKK_RSA);
	tmpl_bytes(&t, CKA_MODULUS, n_bytes, (CK_ULONG)nlen);
	tmpl_bytes(&t, CKA_PUBLIC_EXPONENT, e_bytes, (CK_ULONG)elen);
	tmpl_bool(&t, CKA_VERIFY, true);
	tmpl_str(&t, CKA_LABEL, label("rsa-pub"));
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_OK);
	assert_int_equal(attr_ulong(h, o, CKA_MODULUS_BITS), 2048);
	assert_false(attr_bool(h, o, CKA_LOCAL));

	fill_pattern(data, sizeof(data), 3);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &sig_len, data, sizeof(data)), 1);
	assert_int_equal(sig_len, 256);
	assert_rv(verify(h, &m, o, data, sizeof(data), sig, sig_len), CKR_OK);
	sig[10] ^= 0x40;
	assert_rv(verify(h, &m, o, data, sizeof(data), sig, sig_len),
		  CKR_SIGNATURE_INVALID);
	/* Without its modulus the key is incomplete. */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_PUBLIC_KEY);
	tmpl_ulong(&t, CKA_KEY_TYPE, CKK_RSA);
	tmpl_bytes(&t, CKA_PUBLIC_EXPONENT, e_bytes, (CK_ULONG)elen);
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_TEMPLATE_INCOMPLETE);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	free(n_bytes);
	free(e_bytes);
}

static void test_get_attribute_conventions(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[32], buf[64], idbuf[1], valbuf[32] = { 0 }, zero[32] = { 0 };
	CK_OBJECT_CLASS cls = 0;
	CK_OBJECT_HANDLE plain, sens, unext;
	CK_ATTRIBUTE a, mix[5];
	CK_RV rv;
	struct tmpl t;
	const char *lab = label("attrs");

	(void)state;
	fill_pattern(key, sizeof(key), 4);
	tmpl_init(&t);
	tmpl_str(&t, CKA_LABEL, lab);
	tmpl_str(&t, CKA_ID, "id-attrs");
	plain = create_secret(h, CKK_AES, key, sizeof(key), &t);
	tmpl_bool(&t, CKA_SENSITIVE, true);
	sens = create_secret(h, CKK_AES, key, sizeof(key), &t);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_EXTRACTABLE, false);
	unext = create_secret(h, CKK_AES, key, sizeof(key), &t);

	/* 3: NULL pValue gives the exact length. */
	a = (CK_ATTRIBUTE){ CKA_VALUE, NULL, 12345 };
	assert_rv(P11->C_GetAttributeValue(h, plain, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 32);
	/* 4: big enough: the value and its exact length. */
	a = (CK_ATTRIBUTE){ CKA_VALUE, buf, sizeof(buf) };
	assert_rv(P11->C_GetAttributeValue(h, plain, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 32);
	assert_memory_equal(buf, key, 32);
	a = (CK_ATTRIBUTE){ CKA_VALUE, buf, 32 };
	assert_rv(P11->C_GetAttributeValue(h, plain, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 32);
	/* 5: too small. */
	a = (CK_ATTRIBUTE){ CKA_VALUE, buf, 31 };
	assert_rv(P11->C_GetAttributeValue(h, plain, &a, 1), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* 1: sensitive, with or without a buffer. */
	a = (CK_ATTRIBUTE){ CKA_VALUE, buf, sizeof(buf) };
	assert_rv(P11->C_GetAttributeValue(h, sens, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	a = (CK_ATTRIBUTE){ CKA_VALUE, NULL, 0 };
	assert_rv(P11->C_GetAttributeValue(h, sens, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* Unextractable keys are protected the same way (Table 11, 7). */
	a = (CK_ATTRIBUTE){ CKA_VALUE, buf, sizeof(buf) };
	assert_rv(P11->C_GetAttributeValue(h, unext, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* 2: attributes the object does not have. */
	a = (CK_ATTRIBUTE){ CKA_MODULUS, buf, sizeof(buf) };
	assert_rv(P11->C_GetAttributeValue(h, plain, &a, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	a = (CK_ATTRIBUTE){ CKA_VENDOR_DEFINED | 0x1234, NULL, 0 };
	assert_rv(P11->C_GetAttributeValue(h, plain, &a, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);

	/* Mixed: every attribute is processed; any applicable error. */
	memset(buf, 0, sizeof(buf));
	mix[0] = (CK_ATTRIBUTE){ CKA_LABEL, buf, sizeof(buf) };
	mix[1] = (CK_ATTRIBUTE){ CKA_VALUE, valbuf, sizeof(valbuf) };
	mix[2] = (CK_ATTRIBUTE){ CKA_MODULUS, NULL, 0 };
	mix[3] = (CK_ATTRIBUTE){ CKA_ID, idbuf, sizeof(idbuf) };
	mix[4] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	rv = P11->C_GetAttributeValue(h, sens, mix, 5);
	if (rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
	    rv != CKR_BUFFER_TOO_SMALL)
		fail_msg("mixed template: %s", rv_name(rv));
	assert_int_equal(mix[0].ulValueLen, strlen(lab));
	assert_memory_equal(buf, lab, strlen(lab));
	assert_int_equal(mix[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(mix[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(mix[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(mix[4].ulValueLen, sizeof(CK_OBJECT_CLASS));
	assert_int_equal(cls, CKO_SECRET_KEY);
	/* The sensitive value did not leak into the caller's buffer. */
	assert_memory_equal(valbuf, zero, sizeof(zero));

	/* Length queries and values side by side, all fine: CKR_OK. */
	mix[0] = (CK_ATTRIBUTE){ CKA_LABEL, NULL, 0 };
	mix[1] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	mix[2] = (CK_ATTRIBUTE){ CKA_ID, NULL, 0 };
	assert_rv(P11->C_GetAttributeValue(h, plain, mix, 3), CKR_OK);
	assert_int_equal(mix[0].ulValueLen, strlen(lab));
	assert_int_equal(mix[2].ulValueLen, 8);
	/* Only one kind of problem: that one's code. */
	mix[0] = (CK_ATTRIBUTE){ CKA_LABEL, buf, sizeof(buf) };
	mix[1] = (CK_ATTRIBUTE){ CKA_ID, idbuf, sizeof(idbuf) };
	assert_rv(P11->C_GetAttributeValue(h, plain, mix, 2), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(mix[0].ulValueLen, strlen(lab));
	assert_int_equal(mix[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	mix[1] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, buf, sizeof(buf) };
	assert_rv(P11->C_GetAttributeValue(h, plain, mix, 2), CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(mix[0].ulValueLen, strlen(lab));
	assert_int_equal(mix[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_rv(P11->C_GetAttributeValue(h, CK_INVALID_HANDLE, mix, 1),
		  CKR_OBJECT_HANDLE_INVALID);
}

static CK_ULONG find_by(CK_SESSION_HANDLE h, CK_ATTRIBUTE_TYPE type,
			const void *v, CK_ULONG len)
{
	CK_ATTRIBUTE a = { type, (void *)v, len };

	return find(h, &a, 1, NULL, 0);
}

static void test_private_objects_invisible(void **state)
{
	CK_SESSION_HANDLE h = user_session(), pub;
	CK_OBJECT_HANDLE priv_tok, priv_sess, pub_tok, found;
	CK_BBOOL yes = CK_TRUE;
	CK_ULONG n;
	const char *lp = label("private"), *ls = label("private-sess");
	const char *lpub = label("public");

	(void)state;
	priv_tok = create_data(h, lp, true, true);
	priv_sess = create_data(h, ls, false, true);
	pub_tok = create_data(h, lpub, true, false);
	assert_int_equal(find_label(h, lp), 1);
	pub = open_ro();

	assert_rv(P11->C_Logout(h), CKR_OK);
	/* Invisible to searches, even ones asking for private objects. */
	assert_int_equal(find_label(h, lp), 0);
	assert_int_equal(find_label(pub, lp), 0);
	assert_int_equal(find_by(pub, CKA_PRIVATE, &yes, 1), 0);
	assert_int_equal(find_label(pub, lpub), 1);
	/* Handles to private objects are invalid after logout (5.6.10). */
	assert_rv(attr_try(h, priv_tok, CKA_LABEL, &n), CKR_OBJECT_HANDLE_INVALID);
	assert_rv(attr_try(h, priv_sess, CKA_LABEL, &n), CKR_OBJECT_HANDLE_INVALID);
	assert_rv(P11->C_DestroyObject(h, priv_tok), CKR_OBJECT_HANDLE_INVALID);
	assert_rv(attr_try(h, pub_tok, CKA_LABEL, &n), CKR_OK);

	login_user(h);
	/* The token object is back; private session objects were destroyed. */
	{
		CK_ATTRIBUTE a = { CKA_LABEL, (void *)lp, strlen(lp) };

		assert_int_equal(find(h, &a, 1, &found, 1), 1);
		assert_true(attr_bool(h, found, CKA_PRIVATE));
		assert_rv(P11->C_DestroyObject(h, found), CKR_OK);
	}
	assert_int_equal(find_label(h, ls), 0);
	assert_rv(P11->C_DestroyObject(h, pub_tok), CKR_OK);
	assert_int_equal(find_label(h, lpub), 0);
}

static void test_token_vs_session_objects(void **state)
{
	CK_SESSION_HANDLE a = user_session(), b = open_rw();
	CK_OBJECT_HANDLE s, t, found;
	CK_ULONG n;
	const char *ls = label("sess"), *lt = label("tok");

	(void)state;
	s = create_data(a, ls, false, false);
	t = create_data(a, lt, true, false);
	assert_true(attr_bool(a, t, CKA_TOKEN));
	/* Both are visible from the application's other session. */
	assert_int_equal(find_label(b, ls), 1);
	assert_int_equal(find_label(b, lt), 1);
	assert_rv(attr_try(b, s, CKA_LABEL, &n), CKR_OK);

	/* Session objects die with their session (5.6.2). */
	assert_rv(P11->C_CloseSession(a), CKR_OK);
	assert_rv(attr_try(b, s, CKA_LABEL, &n), CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(find_label(b, ls), 0);
	assert_int_equal(find_label(b, lt), 1);

	/* Token objects outlive the application. */
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	assert_int_equal(lib_up(NULL), 0);
	b = open_rw();
	{
		CK_ATTRIBUTE q = { CKA_LABEL, (void *)lt, strlen(lt) };

		assert_int_equal(find(b, &q, 1, &found, 1), 1);
	}
	assert_rv(P11->C_DestroyObject(b, found), CKR_OK);
	assert_int_equal(find_label(b, lt), 0);
}

static void test_policy_attributes(void **state)
{
	CK_SESSION_HANDLE h = open_rw();
	CK_OBJECT_HANDLE o, copy;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE lab = { CKA_LABEL, (void *)"new", 3 };
	CK_ATTRIBUTE cp = { CKA_COPYABLE, &yes, 1 };
	CK_ULONG n;
	struct tmpl t;
	uint8_t *v;

	(void)state;
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	tmpl_str(&t, CKA_LABEL, "fixed");
	tmpl_bool(&t, CKA_MODIFIABLE, false);
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_OK);
	assert_false(attr_bool(h, o, CKA_MODIFIABLE));
	assert_rv(P11->C_SetAttributeValue(h, o, &lab, 1), CKR_ACTION_PROHIBITED);
	v = attr_get(h, o, CKA_LABEL, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(v, "fixed", 5);
	free(v);

	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	tmpl_bool(&t, CKA_COPYABLE, false);
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_OK);
	assert_rv(P11->C_CopyObject(h, o, NULL, 0, &copy), CKR_ACTION_PROHIBITED);
	/* Once false, CKA_COPYABLE stays false (Table 17). */
	assert_rv(P11->C_SetAttributeValue(h, o, &cp, 1), CKR_ATTRIBUTE_READ_ONLY);
	assert_false(attr_bool(h, o, CKA_COPYABLE));

	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	tmpl_bool(&t, CKA_DESTROYABLE, false);
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_OK);
	assert_rv(P11->C_DestroyObject(h, o), CKR_ACTION_PROHIBITED);
	assert_rv(attr_try(h, o, CKA_CLASS, &n), CKR_OK);

	/* And the normal case: the label can change. */
	o = create_data(h, label("modifiable"), false, false);
	assert_rv(P11->C_SetAttributeValue(h, o, &lab, 1), CKR_OK);
	v = attr_get(h, o, CKA_LABEL, &n);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "new", 3);
	free(v);
}

static void set_bool(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
		     CK_ATTRIBUTE_TYPE type, bool v, CK_RV expect)
{
	CK_BBOOL b = v ? CK_TRUE : CK_FALSE;
	CK_ATTRIBUTE a = { type, &b, 1 };

	assert_rv(P11->C_SetAttributeValue(h, o, &a, 1), expect);
}

static void test_one_way_attributes(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[16];
	CK_OBJECT_HANDLE o;
	CK_ULONG n;
	struct tmpl t;

	(void)state;
	fill_pattern(key, sizeof(key), 5);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_SENSITIVE, false);
	tmpl_bool(&t, CKA_EXTRACTABLE, true);
	o = create_secret(h, CKK_AES, key, sizeof(key), &t);
	assert_rv(attr_try(h, o, CKA_VALUE, &n), CKR_OK);

	/* CKA_SENSITIVE: false -> true only (Table 28, footnote 11). */
	set_bool(h, o, CKA_SENSITIVE, true, CKR_OK);
	assert_true(attr_bool(h, o, CKA_SENSITIVE));
	assert_false(attr_bool(h, o, CKA_ALWAYS_SENSITIVE));
	assert_rv(attr_try(h, o, CKA_VALUE, &n), CKR_ATTRIBUTE_SENSITIVE);
	set_bool(h, o, CKA_SENSITIVE, false, CKR_ATTRIBUTE_READ_ONLY);
	assert_true(attr_bool(h, o, CKA_SENSITIVE));

	/* CKA_EXTRACTABLE: true -> false only (footnote 12). */
	set_bool(h, o, CKA_EXTRACTABLE, false, CKR_OK);
	assert_false(attr_bool(h, o, CKA_EXTRACTABLE));
	assert_false(attr_bool(h, o, CKA_NEVER_EXTRACTABLE));
	set_bool(h, o, CKA_EXTRACTABLE, true, CKR_ATTRIBUTE_READ_ONLY);
	assert_false(attr_bool(h, o, CKA_EXTRACTABLE));

	/* The token's own bookkeeping cannot be set (footnote 2). */
	set_bool(h, o, CKA_ALWAYS_SENSITIVE, true, CKR_ATTRIBUTE_READ_ONLY);
	set_bool(h, o, CKA_NEVER_EXTRACTABLE, true, CKR_ATTRIBUTE_READ_ONLY);
	set_bool(h, o, CKA_LOCAL, true, CKR_ATTRIBUTE_READ_ONLY);
	assert_false(attr_bool(h, o, CKA_LOCAL));
	{
		CK_OBJECT_CLASS c = CKO_DATA;
		CK_ATTRIBUTE a = { CKA_CLASS, &c, sizeof(c) };

		assert_rv(P11->C_SetAttributeValue(h, o, &a, 1), CKR_ATTRIBUTE_READ_ONLY);
	}
}

static void test_generated_key_attributes(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE k, pub, priv, copy;
	CK_ULONG n;
	uint8_t *v;
	struct tmpl t;

	(void)state;
	/* Born sensitive and unextractable. */
	tmpl_init(&t);
	tmpl_bool(&t, CKA_SENSITIVE, true);
	tmpl_bool(&t, CKA_EXTRACTABLE, false);
	k = gen_aes(h, 32, &t);
	assert_int_equal(attr_ulong(h, k, CKA_CLASS), CKO_SECRET_KEY);
	assert_int_equal(attr_ulong(h, k, CKA_KEY_TYPE), CKK_AES);
	assert_int_equal(attr_ulong(h, k, CKA_VALUE_LEN), 32);
	assert_true(attr_bool(h, k, CKA_LOCAL));
	assert_true(attr_bool(h, k, CKA_ALWAYS_SENSITIVE));
	assert_true(attr_bool(h, k, CKA_NEVER_EXTRACTABLE));
	assert_int_equal(attr_ulong(h, k, CKA_KEY_GEN_MECHANISM), CKM_AES_KEY_GEN);
	assert_rv(attr_try(h, k, CKA_VALUE, &n), CKR_ATTRIBUTE_SENSITIVE);
	/* A copy of a local key is local (Table 23), and keeps the flags. */
	assert_rv(P11->C_CopyObject(h, k, NULL, 0, &copy), CKR_OK);
	assert_true(attr_bool(h, copy, CKA_LOCAL));
	assert_true(attr_bool(h, copy, CKA_ALWAYS_SENSITIVE));
	assert_true(attr_bool(h, copy, CKA_NEVER_EXTRACTABLE));

	/* Born readable. */
	tmpl_init(&t);
	tmpl_bool(&t, CKA_SENSITIVE, false);
	tmpl_bool(&t, CKA_EXTRACTABLE, true);
	k = gen_aes(h, 16, &t);
	assert_true(attr_bool(h, k, CKA_LOCAL));
	assert_false(attr_bool(h, k, CKA_ALWAYS_SENSITIVE));
	assert_false(attr_bool(h, k, CKA_NEVER_EXTRACTABLE));
	v = attr_get(h, k, CKA_VALUE, &n);
	assert_int_equal(n, 16);
	free(v);
	/* Sensitive later: CKA_ALWAYS_SENSITIVE stays false. */
	set_bool(h, k, CKA_SENSITIVE, true, CKR_OK);
	assert_false(attr_bool(h, k, CKA_ALWAYS_SENSITIVE));

	/* Key pairs. */
	gen_rsa(h, 2048, &pub, &priv);
	assert_true(attr_bool(h, pub, CKA_LOCAL));
	assert_true(attr_bool(h, priv, CKA_LOCAL));
	assert_int_equal(attr_ulong(h, pub, CKA_KEY_GEN_MECHANISM),
			 CKM_RSA_PKCS_KEY_PAIR_GEN);
	assert_int_equal(attr_ulong(h, priv, CKA_KEY_GEN_MECHANISM),
			 CKM_RSA_PKCS_KEY_PAIR_GEN);
	assert_int_equal(attr_ulong(h, pub, CKA_CLASS), CKO_PUBLIC_KEY);
	assert_int_equal(attr_ulong(h, priv, CKA_CLASS), CKO_PRIVATE_KEY);
	assert_int_equal(attr_ulong(h, pub, CKA_KEY_TYPE), CKK_RSA);
	assert_int_equal(attr_ulong(h, pub, CKA_MODULUS_BITS), 2048);
	assert_int_equal(attr_len(h, pub, CKA_MODULUS), 256);
	assert_true(attr_bool(h, priv, CKA_SENSITIVE));
	assert_true(attr_bool(h, priv, CKA_ALWAYS_SENSITIVE));
	/* The private key keeps what is needed to rebuild the public one. */
	assert_int_equal(attr_len(h, priv, CKA_MODULUS), 256);
	assert_true(attr_len(h, priv, CKA_PUBLIC_EXPONENT) > 0);
	assert_true(attr_len(h, pub, CKA_UNIQUE_ID) > 0);
}

static void test_sensitive_private_keys(void **state)
{
	static const CK_ATTRIBUTE_TYPE rsa_secret[] = {
		CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1,
		CKA_EXPONENT_2, CKA_COEFFICIENT,
	};
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE pub, priv;
	CK_ULONG n;

	(void)state;
	gen_rsa(h, 2048, &pub, &priv);
	for (size_t i = 0; i < ARRAY_SIZE(rsa_secret); i++) {
		CK_RV rv = attr_try(h, priv, rsa_secret[i], &n);

		/* Sensitive parts: unavailable, whether stored or not. */
		if (rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID)
			fail_msg("attribute 0x%lx of a sensitive RSA key: %s",
				 rsa_secret[i], rv_name(rv));
		assert_int_equal(n, CK_UNAVAILABLE_INFORMATION);
	}
	/* The private exponent exists (4.9.1) so it must be SENSITIVE. */
	assert_rv(attr_try(h, priv, CKA_PRIVATE_EXPONENT, &n), CKR_ATTRIBUTE_SENSITIVE);

	gen_ec(h, OID_P256, sizeof(OID_P256), &pub, &priv);
	assert_rv(attr_try(h, priv, CKA_VALUE, &n), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(n, CK_UNAVAILABLE_INFORMATION);
	/* Public parts stay readable. */
	assert_true(attr_len(h, pub, CKA_EC_POINT) > 0);
	assert_true(attr_len(h, priv, CKA_EC_PARAMS) > 0);
}

static void test_unique_id(void **state)
{
	CK_SESSION_HANDLE h = open_rw();
	CK_OBJECT_HANDLE a, b, c, found[2];
	CK_ULONG la, lb, lc;
	uint8_t *ua, *ub, *uc;
	CK_ATTRIBUTE q;
	struct tmpl t;

	(void)state;
	a = create_data(h, label("uid-a"), false, false);
	b = create_data(h, label("uid-b"), false, false);
	assert_rv(P11->C_CopyObject(h, a, NULL, 0, &c), CKR_OK);
	ua = attr_get(h, a, CKA_UNIQUE_ID, &la);
	ub = attr_get(h, b, CKA_UNIQUE_ID, &lb);
	uc = attr_get(h, c, CKA_UNIQUE_ID, &lc);
	assert_true(la > 0 && lb > 0 && lc > 0);
	assert_false(la == lb && !memcmp(ua, ub, la));
	assert_false(la == lc && !memcmp(ua, uc, la));	/* copies get their own */

	/* Read-only, in templates of existing and of new objects (4.4). */
	q = (CK_ATTRIBUTE){ CKA_UNIQUE_ID, ub, lb };
	assert_rv(P11->C_SetAttributeValue(h, a, &q, 1), CKR_ATTRIBUTE_READ_ONLY);
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	tmpl_str(&t, CKA_UNIQUE_ID, "chosen-by-app");
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &b), CKR_ATTRIBUTE_READ_ONLY);
	tmpl_init(&t);
	tmpl_str(&t, CKA_UNIQUE_ID, "chosen-by-app");
	assert_rv(P11->C_CopyObject(h, a, t.a, t.n, &b), CKR_ATTRIBUTE_READ_ONLY);

	/* Searching by it finds exactly that object (5.7.7). */
	q = (CK_ATTRIBUTE){ CKA_UNIQUE_ID, uc, lc };
	assert_int_equal(find(h, &q, 1, found, 2), 1);
	assert_int_equal(found[0], c);
	free(ua);
	free(ub);
	free(uc);
}

static void test_find_objects(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_CLASS data = CKO_DATA, secret = CKO_SECRET_KEY;
	CK_OBJECT_HANDLE o[4], found[256], one;
	const char *app = label("find-app"), *l1 = label("find-1"), *l2 = label("find-2");
	CK_ULONG n, got, total;
	uint8_t key[16], *uid;
	struct tmpl t;
	CK_ATTRIBUTE q[2];

	(void)state;
	for (int i = 0; i < 3; i++) {
		tmpl_init(&t);
		tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
		tmpl_str(&t, CKA_LABEL, i == 0 ? l1 : l2);
		tmpl_str(&t, CKA_APPLICATION, app);
		assert_rv(P11->C_CreateObject(h, t.a, t.n, &o[i]), CKR_OK);
	}
	fill_pattern(key, sizeof(key), 6);
	tmpl_init(&t);
	tmpl_str(&t, CKA_ID, app);
	o[3] = create_secret(h, CKK_AES, key, sizeof(key), &t);

	assert_int_equal(find_label(h, l1), 1);
	assert_int_equal(find_label(h, l2), 2);
	q[0] = (CK_ATTRIBUTE){ CKA_CLASS, &data, sizeof(data) };
	q[1] = (CK_ATTRIBUTE){ CKA_APPLICATION, (void *)app, strlen(app) };
	assert_int_equal(find(h, q, 2, NULL, 0), 3);
	q[0] = (CK_ATTRIBUTE){ CKA_CLASS, &secret, sizeof(secret) };
	q[1] = (CK_ATTRIBUTE){ CKA_ID, (void *)app, strlen(app) };
	assert_int_equal(find(h, q, 2, found, 1), 1);
	assert_int_equal(found[0], o[3]);
	q[0] = (CK_ATTRIBUTE){ CKA_CLASS, &data, sizeof(data) };
	assert_int_equal(find(h, q, 2, NULL, 0), 0);	/* data objects have no ID */
	uid = attr_get(h, o[1], CKA_UNIQUE_ID, &n);
	q[0] = (CK_ATTRIBUTE){ CKA_UNIQUE_ID, uid, n };
	assert_int_equal(find(h, q, 1, found, 1), 1);
	assert_int_equal(found[0], o[1]);
	free(uid);
	/* A value matches byte for byte, not as a prefix. */
	q[0] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)l1, strlen(l1) - 1 };
	assert_int_equal(find(h, q, 1, NULL, 0), 0);

	/* Empty template: everything visible, ours included. */
	total = find(h, NULL, 0, found, ARRAY_SIZE(found));
	assert_true(total >= 4);
	for (int i = 0; i < 4; i++) {
		bool seen = false;

		for (CK_ULONG j = 0; j < total && j < ARRAY_SIZE(found); j++)
			seen |= found[j] == o[i];
		assert_true(seen);
	}
	/* One at a time gives the same number. */
	assert_rv(P11->C_FindObjectsInit(h, NULL, 0), CKR_OK);
	n = 0;
	do {
		got = 7;
		assert_rv(P11->C_FindObjects(h, &one, 1, &got), CKR_OK);
		assert_true(got <= 1);
		n += got;
	} while (got);
	assert_int_equal(n, total);
	/* Only one search at a time (5.7.7); C_FindObjects needs one. */
	assert_rv(P11->C_FindObjectsInit(h, NULL, 0), CKR_OPERATION_ACTIVE);
	assert_rv(P11->C_FindObjectsFinal(h), CKR_OK);
	assert_rv(P11->C_FindObjects(h, &one, 1, &got), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_FindObjectsFinal(h), CKR_OPERATION_NOT_INITIALIZED);
}

static void test_copy_object(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE o, c, k, kc;
	CK_ULONG n;
	uint8_t *v, key[16];
	struct tmpl t;
	CK_RV rv;

	(void)state;
	o = create_data(h, label("copy-src"), false, false);
	tmpl_init(&t);
	tmpl_str(&t, CKA_LABEL, label("copy-dst"));
	tmpl_bool(&t, CKA_TOKEN, true);
	assert_rv(P11->C_CopyObject(h, o, t.a, t.n, &c), CKR_OK);
	assert_true(c != o);
	assert_true(attr_bool(h, c, CKA_TOKEN));
	assert_false(attr_bool(h, o, CKA_TOKEN));
	v = attr_get(h, c, CKA_VALUE, &n);
	assert_int_equal(n, 9);
	assert_memory_equal(v, "some data", 9);
	free(v);
	assert_int_equal(find_label(h, label("copy-dst")), 1);
	assert_int_equal(find_label(h, label("copy-src")), 1);
	assert_rv(P11->C_DestroyObject(h, c), CKR_OK);

	/* Not every attribute may change on copy (4.1.3). */
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	rv = P11->C_CopyObject(h, o, t.a, t.n, &c);
	if (rv != CKR_ATTRIBUTE_READ_ONLY && rv != CKR_TEMPLATE_INCONSISTENT)
		fail_msg("copy changing CKA_CLASS: %s", rv_name(rv));

	/* Keys: sensitive on copy, never back; flags follow 5.7.2. */
	fill_pattern(key, sizeof(key), 7);
	k = create_secret(h, CKK_AES, key, sizeof(key), NULL);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_SENSITIVE, true);
	tmpl_bool(&t, CKA_EXTRACTABLE, false);
	assert_rv(P11->C_CopyObject(h, k, t.a, t.n, &kc), CKR_OK);
	assert_true(attr_bool(h, kc, CKA_SENSITIVE));
	assert_false(attr_bool(h, kc, CKA_ALWAYS_SENSITIVE));
	assert_false(attr_bool(h, kc, CKA_EXTRACTABLE));
	assert_false(attr_bool(h, kc, CKA_NEVER_EXTRACTABLE));
	assert_rv(attr_try(h, kc, CKA_VALUE, &n), CKR_ATTRIBUTE_SENSITIVE);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_SENSITIVE, false);
	assert_rv(P11->C_CopyObject(h, kc, t.a, t.n, &c), CKR_ATTRIBUTE_READ_ONLY);
	assert_rv(P11->C_CopyObject(h, CK_INVALID_HANDLE, NULL, 0, &c),
		  CKR_OBJECT_HANDLE_INVALID);
}

static void test_object_size_and_destroy(void **state)
{
	CK_SESSION_HANDLE h = open_rw();
	CK_OBJECT_HANDLE small, big;
	CK_ULONG s_small = 0, s_big = 0, n;
	uint8_t value[2000];
	struct tmpl t;

	(void)state;
	fill_pattern(value, sizeof(value), 8);
	small = create_data(h, label("size-small"), false, false);
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	tmpl_bytes(&t, CKA_VALUE, value, sizeof(value));
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &big), CKR_OK);
	assert_rv(P11->C_GetObjectSize(h, small, &s_small), CKR_OK);
	assert_rv(P11->C_GetObjectSize(h, big, &s_big), CKR_OK);
	assert_true(s_small > 0 && s_small != CK_UNAVAILABLE_INFORMATION);
	assert_true(s_big >= sizeof(value) && s_big != CK_UNAVAILABLE_INFORMATION);
	assert_true(s_big > s_small);

	assert_rv(P11->C_DestroyObject(h, big), CKR_OK);
	assert_rv(P11->C_GetObjectSize(h, big, &n), CKR_OBJECT_HANDLE_INVALID);
	assert_rv(attr_try(h, big, CKA_CLASS, &n), CKR_OBJECT_HANDLE_INVALID);
	assert_rv(P11->C_DestroyObject(h, big), CKR_OBJECT_HANDLE_INVALID);
	assert_rv(P11->C_DestroyObject(h, CK_INVALID_HANDLE), CKR_OBJECT_HANDLE_INVALID);
	assert_rv(P11->C_GetObjectSize(h, small, NULL), CKR_ARGUMENTS_BAD);
	assert_int_equal(find_label(h, label("size-small")), 1);
	assert_rv(P11->C_DestroyObject(h, small), CKR_OK);
	assert_int_equal(find_label(h, label("size-small")), 0);
}

static void test_set_attribute_rules(void **state)
{
	CK_SESSION_HANDLE rw = user_session(), ro = open_ro();
	CK_OBJECT_HANDLE tok, sess;
	CK_ATTRIBUTE lab = { CKA_LABEL, (void *)"relabelled", 10 };
	uint8_t mod[8] = { 1 };
	CK_ATTRIBUTE bad = { CKA_MODULUS, mod, sizeof(mod) };
	CK_RV rv;

	(void)state;
	tok = create_data(rw, label("set-tok"), true, false);
	sess = create_data(rw, label("set-sess"), false, false);
	/* Token objects change only in R/W sessions (5.7.6). */
	assert_rv(P11->C_SetAttributeValue(ro, tok, &lab, 1), CKR_SESSION_READ_ONLY);
	assert_rv(P11->C_SetAttributeValue(ro, sess, &lab, 1), CKR_OK);
	assert_rv(P11->C_SetAttributeValue(rw, tok, &lab, 1), CKR_OK);
	/* An attribute data objects do not have (4.1.1 case 1 or 5). */
	rv = P11->C_SetAttributeValue(rw, sess, &bad, 1);
	if (rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_TEMPLATE_INCONSISTENT)
		fail_msg("setting CKA_MODULUS on a data object: %s", rv_name(rv));
	/* Token objects are destroyed only in R/W sessions (5.7.3). */
	assert_rv(P11->C_DestroyObject(ro, tok), CKR_SESSION_READ_ONLY);
	assert_rv(P11->C_DestroyObject(rw, tok), CKR_OK);
}

const struct CMUnitTest objects_tests[] = {
	P11_TEST(test_create_data_object),
	P11_TEST(test_create_secret_key),
	P11_TEST(test_create_public_key),
	P11_TEST(test_get_attribute_conventions),
	P11_TEST(test_private_objects_invisible),
	P11_TEST(test_token_vs_session_objects),
	P11_TEST(test_policy_attributes),
	P11_TEST(test_one_way_attributes),
	P11_TEST(test_generated_key_attributes),
	P11_TEST(test_sensitive_private_keys),
	P11_TEST(test_unique_id),
	P11_TEST(test_find_objects),
	P11_TEST(test_copy_object),
	P11_TEST(test_object_size_and_destroy),
	P11_TEST(test_set_attribute_rules),
};
SUITE_COUNT(objects);
