// SPDX-License-Identifier: MIT
/*
 * The PKCS#11 behaviour suite: module loading, token set-up, the shared
 * helpers of suite.h, and main().
 *
 *   pkcs11-suite MODULE.so [TEST-NAME-PATTERN]
 *
 * The module must find its token(s) by itself (libphsm-pkcs11.so reads
 * PHSM_FW_SOCKETS).  The suite reinitialises the token of the first slot,
 * so it can run any number of times against the same card.
 */
#include "suite.h"

#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

struct suite S;

_Static_assert(sizeof(USER_PIN) - 1 == 32, "the user PIN is a 32-byte one");

const uint8_t OID_P256[10] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
const uint8_t OID_P384[7] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
const uint8_t OID_P521[7] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
const uint8_t OID_ED25519[5] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

/* ---- return values ---------------------------------------------------- */

#define RV(x) { x, #x }
static const struct { CK_RV rv; const char *name; } rv_names[] = {
	RV(CKR_OK), RV(CKR_CANCEL), RV(CKR_HOST_MEMORY), RV(CKR_SLOT_ID_INVALID),
	RV(CKR_GENERAL_ERROR), RV(CKR_FUNCTION_FAILED), RV(CKR_ARGUMENTS_BAD),
	RV(CKR_NO_EVENT), RV(CKR_NEED_TO_CREATE_THREADS), RV(CKR_CANT_LOCK),
	RV(CKR_ATTRIBUTE_READ_ONLY), RV(CKR_ATTRIBUTE_SENSITIVE),
	RV(CKR_ATTRIBUTE_TYPE_INVALID), RV(CKR_ATTRIBUTE_VALUE_INVALID),
	RV(CKR_ACTION_PROHIBITED), RV(CKR_DATA_INVALID), RV(CKR_DATA_LEN_RANGE),
	RV(CKR_DEVICE_ERROR), RV(CKR_DEVICE_MEMORY), RV(CKR_DEVICE_REMOVED),
	RV(CKR_ENCRYPTED_DATA_INVALID), RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
	RV(CKR_AEAD_DECRYPT_FAILED), RV(CKR_FUNCTION_CANCELED),
	RV(CKR_FUNCTION_NOT_PARALLEL), RV(CKR_FUNCTION_NOT_SUPPORTED),
	RV(CKR_KEY_HANDLE_INVALID), RV(CKR_KEY_SIZE_RANGE),
	RV(CKR_KEY_TYPE_INCONSISTENT), RV(CKR_KEY_NOT_NEEDED), RV(CKR_KEY_CHANGED),
	RV(CKR_KEY_NEEDED), RV(CKR_KEY_INDIGESTIBLE),
	RV(CKR_KEY_FUNCTION_NOT_PERMITTED), RV(CKR_KEY_NOT_WRAPPABLE),
	RV(CKR_KEY_UNEXTRACTABLE), RV(CKR_MECHANISM_INVALID),
	RV(CKR_MECHANISM_PARAM_INVALID), RV(CKR_OBJECT_HANDLE_INVALID),
	RV(CKR_OPERATION_ACTIVE), RV(CKR_OPERATION_NOT_INITIALIZED),
	RV(CKR_PIN_INCORRECT), RV(CKR_PIN_INVALID), RV(CKR_PIN_LEN_RANGE),
	RV(CKR_PIN_EXPIRED), RV(CKR_PIN_LOCKED), RV(CKR_SESSION_CLOSED),
	RV(CKR_SESSION_COUNT), RV(CKR_SESSION_HANDLE_INVALID),
	RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED), RV(CKR_SESSION_READ_ONLY),
	RV(CKR_SESSION_EXISTS), RV(CKR_SESSION_READ_ONLY_EXISTS),
	RV(CKR_SESSION_READ_WRITE_SO_EXISTS), RV(CKR_SIGNATURE_INVALID),
	RV(CKR_SIGNATURE_LEN_RANGE), RV(CKR_TEMPLATE_INCOMPLETE),
	RV(CKR_TEMPLATE_INCONSISTENT), RV(CKR_TOKEN_NOT_PRESENT),
	RV(CKR_TOKEN_NOT_RECOGNIZED), RV(CKR_TOKEN_WRITE_PROTECTED),
	RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID), RV(CKR_UNWRAPPING_KEY_SIZE_RANGE),
	RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT), RV(CKR_USER_ALREADY_LOGGED_IN),
	RV(CKR_USER_NOT_LOGGED_IN), RV(CKR_USER_PIN_NOT_INITIALIZED),
	RV(CKR_USER_TYPE_INVALID), RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
	RV(CKR_USER_TOO_MANY_TYPES), RV(CKR_WRAPPED_KEY_INVALID),
	RV(CKR_WRAPPED_KEY_LEN_RANGE), RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
	RV(CKR_WRAPPING_KEY_SIZE_RANGE), RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
	RV(CKR_RANDOM_SEED_NOT_SUPPORTED), RV(CKR_RANDOM_NO_RNG),
	RV(CKR_DOMAIN_PARAMS_INVALID), RV(CKR_CURVE_NOT_SUPPORTED),
	RV(CKR_BUFFER_TOO_SMALL), RV(CKR_SAVED_STATE_INVALID),
	RV(CKR_INFORMATION_SENSITIVE), RV(CKR_STATE_UNSAVEABLE),
	RV(CKR_CRYPTOKI_NOT_INITIALIZED), RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	RV(CKR_MUTEX_BAD), RV(CKR_MUTEX_NOT_LOCKED), RV(CKR_PUBLIC_KEY_INVALID),
	RV(CKR_OPERATION_CANCEL_FAILED),
};

const char *rv_name(CK_RV rv)
{
	for (size_t i = 0; i < ARRAY_SIZE(rv_names); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	return "(unknown CKR)";
}

void _assert_rv(CK_RV got, CK_RV expected, const char *expr,
		const char *file, int line)
{
	if (got == expected)
		return;
	print_error("%s returned %s (0x%lx), expected %s (0x%lx)\n", expr,
		    rv_name(got), got, rv_name(expected), expected);
	_fail(file, line);
}

/* ---- fixtures --------------------------------------------------------- */

int lib_up(void **state)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_RV rv;

	(void)state;
	rv = P11->C_Initialize(&args);
	if (rv != CKR_OK) {
		print_error("C_Initialize: %s\n", rv_name(rv));
		return -1;
	}
	return 0;
}

int lib_down(void **state)
{
	(void)state;
	/* The test may have finalised already; that is fine. */
	P11->C_Finalize(NULL);
	return 0;
}

/* ---- sessions --------------------------------------------------------- */

CK_SESSION_HANDLE open_session(CK_SLOT_ID slot, CK_FLAGS flags)
{
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;

	assert_rv(P11->C_OpenSession(slot, flags, NULL, NULL, &h), CKR_OK);
	assert_true(h != CK_INVALID_HANDLE);
	return h;
}

CK_SESSION_HANDLE open_rw(void)
{
	return open_session(S.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
}

CK_SESSION_HANDLE open_ro(void)
{
	return open_session(S.slot, CKF_SERIAL_SESSION);
}

void login_user(CK_SESSION_HANDLE h)
{
	assert_rv(P11->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN,
			       strlen(USER_PIN)), CKR_OK);
}

CK_SESSION_HANDLE user_session(void)
{
	CK_SESSION_HANDLE h = open_rw();

	login_user(h);
	return h;
}

CK_STATE session_state(CK_SESSION_HANDLE h)
{
	CK_SESSION_INFO info;

	memset(&info, 0xa5, sizeof(info));
	assert_rv(P11->C_GetSessionInfo(h, &info), CKR_OK);
	return info.state;
}

/* ---- templates -------------------------------------------------------- */

void tmpl_init(struct tmpl *t)
{
	memset(t, 0, sizeof(*t));
}

static CK_ATTRIBUTE *tmpl_next(struct tmpl *t)
{
	assert_true(t->n < TMPL_MAX);
	return &t->a[t->n++];
}

void tmpl_bool(struct tmpl *t, CK_ATTRIBUTE_TYPE type, bool v)
{
	CK_ATTRIBUTE *a = tmpl_next(t);

	t->b[t->n - 1] = v ? CK_TRUE : CK_FALSE;
	a->type = type;
	a->pValue = &t->b[t->n - 1];
	a->ulValueLen = sizeof(CK_BBOOL);
}

void tmpl_ulong(struct tmpl *t, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	CK_ATTRIBUTE *a = tmpl_next(t);

	t->ul[t->n - 1] = v;
	a->type = type;
	a->pValue = &t->ul[t->n - 1];
	a->ulValueLen = sizeof(CK_ULONG);
}

void tmpl_bytes(struct tmpl *t, CK_ATTRIBUTE_TYPE type, const void *p,
		CK_ULONG len)
{
	CK_ATTRIBUTE *a = tmpl_next(t);

	a->type = type;
	a->pValue = (void *)p;
	a->ulValueLen = len;
}

void tmpl_str(struct tmpl *t, CK_ATTRIBUTE_TYPE type, const char *s)
{
	tmpl_bytes(t, type, s, strlen(s));
}

/* Append another template's attributes (their values stay in *src). */
static void tmpl_append(struct tmpl *t, const struct tmpl *src)
{
	for (CK_ULONG i = 0; src && i < src->n; i++)
		*tmpl_next(t) = src->a[i];
}

/* ---- attributes ------------------------------------------------------- */

CK_ULONG attr_len(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
		  CK_ATTRIBUTE_TYPE type)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };

	assert_rv(P11->C_GetAttributeValue(h, o, &a, 1), CKR_OK);
	assert_true(a.ulValueLen != CK_UNAVAILABLE_INFORMATION);
	return a.ulValueLen;
}

uint8_t *attr_get(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
		  CK_ATTRIBUTE_TYPE type, CK_ULONG *len)
{
	CK_ULONG n = attr_len(h, o, type);
	CK_ATTRIBUTE a = { type, NULL, n };
	uint8_t *buf = malloc(n + 1);

	assert_non_null(buf);
	a.pValue = buf;
	assert_rv(P11->C_GetAttributeValue(h, o, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, n);
	*len = n;
	return buf;
}

bool attr_bool(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
	       CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = 0xee;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };

	assert_rv(P11->C_GetAttributeValue(h, o, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, sizeof(CK_BBOOL));
	assert_true(v == CK_TRUE || v == CK_FALSE);
	return v == CK_TRUE;
}

CK_ULONG attr_ulong(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
		    CK_ATTRIBUTE_TYPE type)
{
	CK_ULONG v = 0x5a5a5a5a;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };

	assert_rv(P11->C_GetAttributeValue(h, o, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, sizeof(CK_ULONG));
	return v;
}

CK_RV attr_try(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
	       CK_ATTRIBUTE_TYPE type, CK_ULONG *len)
{
	uint8_t buf[4096];
	CK_ATTRIBUTE a = { type, buf, sizeof(buf) };
	CK_RV rv = P11->C_GetAttributeValue(h, o, &a, 1);

	*len = a.ulValueLen;
	return rv;
}

/* ---- objects ---------------------------------------------------------- */

CK_OBJECT_HANDLE create_secret(CK_SESSION_HANDLE h, CK_KEY_TYPE type,
			       const void *value, CK_ULONG len,
			       const struct tmpl *extra)
{
	struct tmpl t;
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;

	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	tmpl_ulong(&t, CKA_KEY_TYPE, type);
	tmpl_bytes(&t, CKA_VALUE, value, len);
	tmpl_append(&t, extra);
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_OK);
	assert_true(o != CK_INVALID_HANDLE);
	return o;
}

CK_OBJECT_HANDLE create_data(CK_SESSION_HANDLE h, const char *label,
			     bool token, bool private_obj)
{
	struct tmpl t;
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;

	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	tmpl_str(&t, CKA_LABEL, label);
	tmpl_str(&t, CKA_APPLICATION, "phsm suite");
	tmpl_str(&t, CKA_VALUE, "some data");
	tmpl_bool(&t, CKA_TOKEN, token);
	tmpl_bool(&t, CKA_PRIVATE, private_obj);
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_OK);
	assert_true(o != CK_INVALID_HANDLE);
	return o;
}

CK_OBJECT_HANDLE gen_aes(CK_SESSION_HANDLE h, CK_ULONG len,
			 const struct tmpl *extra)
{
	CK_MECHANISM m = { CKM_AES_KEY_GEN, NULL, 0 };
	struct tmpl t;
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;

	tmpl_init(&t);
	tmpl_ulong(&t, CKA_VALUE_LEN, len);
	tmpl_append(&t, extra);
	assert_rv(P11->C_GenerateKey(h, &m, t.a, t.n, &o), CKR_OK);
	assert_true(o != CK_INVALID_HANDLE);
	return o;
}

void gen_rsa(CK_SESSION_HANDLE h, CK_ULONG bits, CK_OBJECT_HANDLE *pub,
	     CK_OBJECT_HANDLE *priv)
{
	static const uint8_t f4[] = { 0x01, 0x00, 0x01 };
	CK_MECHANISM m = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	struct tmpl pt, kt;

	tmpl_init(&pt);
	tmpl_ulong(&pt, CKA_MODULUS_BITS, bits);
	tmpl_bytes(&pt, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
	tmpl_bool(&pt, CKA_VERIFY, true);
	tmpl_bool(&pt, CKA_ENCRYPT, true);
	tmpl_bool(&pt, CKA_WRAP, true);
	tmpl_init(&kt);
	tmpl_bool(&kt, CKA_SIGN, true);
	tmpl_bool(&kt, CKA_DECRYPT, true);
	tmpl_bool(&kt, CKA_UNWRAP, true);
	tmpl_bool(&kt, CKA_SENSITIVE, true);
	*pub = *priv = CK_INVALID_HANDLE;
	assert_rv(P11->C_GenerateKeyPair(h, &m, pt.a, pt.n, kt.a, kt.n, pub, priv),
		  CKR_OK);
	assert_true(*pub != CK_INVALID_HANDLE && *priv != CK_INVALID_HANDLE);
	assert_true(*pub != *priv);
}

static void gen_pair(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE mech,
		     const uint8_t *params, size_t params_len,
		     CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = { mech, NULL, 0 };
	struct tmpl pt, kt;

	tmpl_init(&pt);
	tmpl_bytes(&pt, CKA_EC_PARAMS, params, params_len);
	tmpl_bool(&pt, CKA_VERIFY, true);
	tmpl_init(&kt);
	tmpl_bool(&kt, CKA_SIGN, true);
	tmpl_bool(&kt, CKA_DERIVE, true);
	tmpl_bool(&kt, CKA_SENSITIVE, true);
	*pub = *priv = CK_INVALID_HANDLE;
	assert_rv(P11->C_GenerateKeyPair(h, &m, pt.a, pt.n, kt.a, kt.n, pub, priv),
		  CKR_OK);
	assert_true(*pub != CK_INVALID_HANDLE && *priv != CK_INVALID_HANDLE);
}

void gen_ec(CK_SESSION_HANDLE h, const uint8_t *params, size_t params_len,
	    CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	gen_pair(h, CKM_EC_KEY_PAIR_GEN, params, params_len, pub, priv);
}

void gen_ed25519(CK_SESSION_HANDLE h, const uint8_t *params,
		 size_t params_len, CK_OBJECT_HANDLE *pub,
		 CK_OBJECT_HANDLE *priv)
{
	gen_pair(h, CKM_EC_EDWARDS_KEY_PAIR_GEN, params, params_len, pub, priv);
}

CK_ULONG find(CK_SESSION_HANDLE h, CK_ATTRIBUTE *t, CK_ULONG n,
	      CK_OBJECT_HANDLE *out, CK_ULONG max)
{
	CK_OBJECT_HANDLE buf[64];
	CK_ULONG total = 0, got;

	assert_rv(P11->C_FindObjectsInit(h, t, n), CKR_OK);
	do {
		got = 0xdead;
		assert_rv(P11->C_FindObjects(h, buf, ARRAY_SIZE(buf), &got), CKR_OK);
		assert_true(got <= ARRAY_SIZE(buf));
		for (CK_ULONG i = 0; i < got; i++, total++)
			if (out && total < max)
				out[total] = buf[i];
	} while (got);
	assert_rv(P11->C_FindObjectsFinal(h), CKR_OK);
	return total;
}

CK_ULONG find_label(CK_SESSION_HANDLE h, const char *label)
{
	CK_ATTRIBUTE t = { CKA_LABEL, (void *)label, strlen(label) };

	return find(h, &t, 1, NULL, 0);
}

/* ---- OpenSSL views of token keys -------------------------------------- */

EVP_PKEY *rsa_pub_to_evp(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub)
{
	CK_ULONG nlen, elen;
	uint8_t *n = attr_get(h, pub, CKA_MODULUS, &nlen);
	uint8_t *e = attr_get(h, pub, CKA_PUBLIC_EXPONENT, &elen);
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pkey = NULL;

	assert_non_null(bn);
	assert_non_null(be);
	assert_non_null(bld);
	assert_non_null(ctx);
	assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn));
	assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be));
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return pkey;
}

/* Strip the DER OCTET STRING around an EC point, insisting on its form. */
static uint8_t *der_octets(const uint8_t *v, size_t len, size_t *out_len)
{
	size_t hdr, n;
	uint8_t *out;

	assert_true(len >= 2);
	assert_int_equal(v[0], 0x04);
	if (v[1] < 0x80) {
		n = v[1];
		hdr = 2;
	} else if (v[1] == 0x81) {
		assert_true(len >= 3);
		n = v[2];
		hdr = 3;
	} else {
		fail_msg("EC point: unexpected DER length form 0x%02x", v[1]);
		return NULL;
	}
	assert_int_equal(hdr + n, len);
	out = malloc(n);
	assert_non_null(out);
	memcpy(out, v + hdr, n);
	*out_len = n;
	return out;
}

uint8_t *ec_point_raw(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub, size_t *len)
{
	CK_ULONG n;
	uint8_t *der = attr_get(h, pub, CKA_EC_POINT, &n);
	uint8_t *raw = der_octets(der, n, len);

	free(der);
	return raw;
}

EVP_PKEY *ec_pub_to_evp(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub,
			const char *group)
{
	size_t n;
	uint8_t *point = ec_point_raw(h, pub, &n);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pkey = NULL;

	assert_int_equal(point[0], 0x04);	/* uncompressed */
	assert_non_null(bld);
	assert_non_null(ctx);
	assert_true(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
						    group, 0));
	assert_true(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
						     point, n));
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	free(point);
	return pkey;
}

EVP_PKEY *ed25519_pub_to_evp(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub)
{
	size_t n;
	uint8_t *raw = ec_point_raw(h, pub, &n);
	EVP_PKEY *pkey;

	assert_int_equal(n, 32);
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, n);
	assert_non_null(pkey);
	free(raw);
	return pkey;
}

/* ---- mechanisms ------------------------------------------------------- */

bool mech_supported(CK_SLOT_ID slot, CK_MECHANISM_TYPE m)
{
	CK_MECHANISM_INFO info;

	return P11->C_GetMechanismInfo(slot, m, &info) == CKR_OK;
}

CK_ULONG sign(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE key,
	      const void *data, CK_ULONG len, uint8_t *sig, CK_ULONG cap)
{
	CK_ULONG n = cap;

	assert_rv(P11->C_SignInit(h, m, key), CKR_OK);
	assert_rv(P11->C_Sign(h, (CK_BYTE_PTR)data, len, sig, &n), CKR_OK);
	assert_true(n > 0 && n <= cap);
	return n;
}

CK_RV verify(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE key,
	     const void *data, CK_ULONG len, const uint8_t *sig,
	     CK_ULONG sig_len)
{
	assert_rv(P11->C_VerifyInit(h, m, key), CKR_OK);
	return P11->C_Verify(h, (CK_BYTE_PTR)data, len, (CK_BYTE_PTR)sig, sig_len);
}

/* ---- misc ------------------------------------------------------------- */

void fill_pattern(uint8_t *p, size_t n, unsigned int seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

void pad_label(CK_UTF8CHAR out[32], const char *s)
{
	size_t n = strlen(s);

	memset(out, ' ', 32);
	memcpy(out, s, n < 32 ? n : 32);
}

static CK_RV init_token_once(CK_SLOT_ID slot, const char *so_pin,
			     const CK_UTF8CHAR label[32])
{
	CK_RV rv;

	/*
	 * The sessions of the previous test's application are dropped when
	 * its connection closes, which the card may finish a moment after
	 * C_Finalize returned: give it a little time.
	 */
	for (int i = 0; i < 40; i++) {
		rv = P11->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin,
				      strlen(so_pin), (CK_UTF8CHAR_PTR)label);
		if (rv != CKR_SESSION_EXISTS)
			break;
		usleep(50 * 1000);
	}
	return rv;
}

CK_RV init_token_and_pin(CK_SLOT_ID slot, const char *so_pin,
			 const char *so_pin_alt, const char *label,
			 const char *user_pin, CK_TOKEN_INFO *after_token)
{
	CK_UTF8CHAR lab[32];
	CK_SESSION_HANDLE h;
	const char *used = so_pin;
	CK_RV rv;

	pad_label(lab, label);
	rv = init_token_once(slot, so_pin, lab);
	if (rv == CKR_PIN_INCORRECT && so_pin_alt) {
		/* An earlier run stopped while the SO PIN was changed. */
		used = so_pin_alt;
		rv = init_token_once(slot, so_pin_alt, lab);
	}
	if (rv != CKR_OK) {
		print_error("C_InitToken(slot %lu): %s\n", slot, rv_name(rv));
		return rv;
	}
	if (after_token) {
		rv = P11->C_GetTokenInfo(slot, after_token);
		if (rv != CKR_OK)
			return rv;
	}
	rv = P11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				NULL, &h);
	if (rv != CKR_OK)
		return rv;
	rv = P11->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)used, strlen(used));
	if (rv == CKR_OK && used != so_pin)
		rv = P11->C_SetPIN(h, (CK_UTF8CHAR_PTR)used, strlen(used),
				   (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
	if (rv == CKR_OK)
		rv = P11->C_InitPIN(h, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
	if (rv == CKR_OK)
		rv = P11->C_Logout(h);
	P11->C_CloseSession(h);
	if (rv != CKR_OK)
		print_error("token set-up (slot %lu): %s\n", slot, rv_name(rv));
	return rv;
}

/* ---- set-up and main -------------------------------------------------- */

static int load_module(const char *path)
{
	CK_INTERFACE_PTR iface = NULL;
	CK_VERSION v30 = { 3, 0 };
	CK_RV rv;

	S.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!S.dl) {
		fprintf(stderr, "pkcs11-suite: %s\n", dlerror());
		return -1;
	}
	S.get_function_list = (CK_C_GetFunctionList)dlsym(S.dl, "C_GetFunctionList");
	S.get_interface_list = (CK_C_GetInterfaceList)dlsym(S.dl, "C_GetInterfaceList");
	S.get_interface = (CK_C_GetInterface)dlsym(S.dl, "C_GetInterface");
	if (!S.get_function_list || !S.get_interface || !S.get_interface_list) {
		fprintf(stderr, "pkcs11-suite: %s lacks C_GetFunctionList, "
			"C_GetInterfaceList or C_GetInterface\n", path);
		return -1;
	}
	rv = S.get_function_list(&S.f2);
	if (rv != CKR_OK || !S.f2) {
		fprintf(stderr, "pkcs11-suite: C_GetFunctionList: %s\n", rv_name(rv));
		return -1;
	}
	rv = S.get_interface((CK_UTF8CHAR_PTR)"PKCS 11", &v30, &iface, 0);
	if (rv != CKR_OK || !iface || !iface->pFunctionList) {
		fprintf(stderr, "pkcs11-suite: C_GetInterface(PKCS 11, 3.0): %s\n",
			rv_name(rv));
		return -1;
	}
	S.f = iface->pFunctionList;
	return 0;
}

/* Find the slots and put the first token into a known state. */
static int group_setup(void **state)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = ARRAY_SIZE(slots);
	CK_RV rv;
	int ret = -1;

	(void)state;
	if (lib_up(NULL))
		return -1;
	rv = P11->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK || n < 2) {
		print_error("C_GetSlotList: %s, %lu slot(s); the suite needs a card "
			    "with 2 partitions (is PHSM_FW_SOCKETS set?)\n",
			    rv_name(rv), rv == CKR_OK ? n : 0);
		goto out;
	}
	S.slot = slots[0];
	S.slot2 = slots[1];
	rv = P11->C_GetTokenInfo(S.slot, &S.before_init);
	if (rv != CKR_OK) {
		print_error("C_GetTokenInfo: %s\n", rv_name(rv));
		goto out;
	}
	rv = init_token_and_pin(S.slot, SO_PIN, SO_PIN_ALT, TOKEN_LABEL, USER_PIN,
				&S.after_init_token);
	if (rv != CKR_OK)
		goto out;
	rv = P11->C_GetTokenInfo(S.slot, &S.after_init_pin);
	if (rv != CKR_OK) {
		print_error("C_GetTokenInfo: %s\n", rv_name(rv));
		goto out;
	}
	/* The second partition is used too (lockout tests reinitialise it). */
	if (init_token_and_pin(S.slot2, SO2_PIN, NULL, "phsm-suite-2", USER2_PIN,
			       NULL) != CKR_OK)
		goto out;
	ret = 0;
out:
	lib_down(NULL);
	return ret;
}

static void on_timeout(int sig)
{
	static const char msg[] = "pkcs11-suite: timed out (a call hangs?)\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(124);
	_exit(124);
}

int main(int argc, char **argv)
{
	static const struct { const struct CMUnitTest *t; const size_t *n; } tables[] = {
		{ general_tests, &general_count },
		{ slots_tests, &slots_count },
		{ sessions_tests, &sessions_count },
		{ objects_tests, &objects_count },
		{ crypto_sym_tests, &crypto_sym_count },
		{ crypto_asym_tests, &crypto_asym_count },
		{ keys_tests, &keys_count },
		{ threads_tests, &threads_count },
		{ args_tests, &args_count },
		{ ca_domains_tests, &ca_domains_count },
		{ ca_cluster_tests, &ca_cluster_count },
		{ ca_clone_tests, &ca_clone_count },
		{ digest_tests, &digest_count },
	};
	struct CMUnitTest *all;
	size_t total = 0, k = 0;
	const char *timeout = getenv("PHSM_SUITE_TIMEOUT");
	int ret;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s MODULE.so [TEST-NAME-PATTERN]\n", argv[0]);
		return 2;
	}
	if (load_module(argv[1]))
		return 1;
	/* A hanging call must not hang the whole run. */
	signal(SIGALRM, on_timeout);
	alarm(timeout ? (unsigned int)atoi(timeout) : 600);

	for (size_t i = 0; i < ARRAY_SIZE(tables); i++)
		total += *tables[i].n;
	all = calloc(total, sizeof(*all));
	if (!all)
		return 1;
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++)
		for (size_t j = 0; j < *tables[i].n; j++)
			all[k++] = tables[i].t[j];
	if (argc == 3)
		cmocka_set_test_filter(argv[2]);
	ret = _cmocka_run_group_tests("pkcs11", all, total, group_setup, NULL);
	free(all);
	return ret;
}
