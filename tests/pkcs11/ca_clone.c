// SPDX-License-Identifier: MIT
/*
 * The Luna CA_ extensions, part 3: key cloning (Documentation/phsm/
 * cloning.rst), through the library, between the two partitions of the
 * suite's card.  CA_MigrateKeys and CA_CloneObject, the CPv4 low-level
 * flow step by step (CA_Migration*, CA_Extract, CA_Insert), per-object
 * results, tampered, replayed, reflected and foreign blobs, batches split
 * into several requests and inserted by two threads, CPv3, the protocol
 * policies and the argument checks.  Blob headers are read here (their
 * format is fixed by cloning.rst) to check the sequence numbers.
 *
 * Every test starts from two freshly initialised tokens that hold the
 * same cloning domain (CA_AddKCV by each SO); the last test puts both
 * tokens back the way the suite's set-up left them.  Nothing here needs
 * a daemon option beyond the card's identity (phsm-fw --mfg), so the
 * same tests run in the VM through the driver.  When the library sees a
 * partition of a second card (the VM has two), CA_MigrateKeys runs across
 * the two cards too.
 */
#include "suite.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <phsm/cryptoki_ca.h>

#define KCV_A		"phsm suite cloning domain A"
#define KCV_B		"phsm suite cloning domain B"
#define MSG_CAP		8192	/* step messages, TWC, Part1, Part2 */
#define BLOB_CAP	16384	/* one blob */
#define RW		(CKF_SERIAL_SESSION | CKF_RW_SESSION)
#define MORE		CK_SESSION_NEGOTIATION_STATUS_MORE
#define DONE		CK_SESSION_NEGOTIATION_STATUS_DONE

static CK_PHSM_CA_FUNCTION_LIST *ca_list(void)
{
	CK_INTERFACE_PTR i = NULL;
	CK_VERSION v = { CK_PHSM_CA_VERSION_MAJOR, CK_PHSM_CA_VERSION_MINOR };

	assert_rv(S.get_interface((CK_UTF8CHAR_PTR)CK_PHSM_CA_INTERFACE_NAME,
				  &v, &i, 0), CKR_OK);
	assert_non_null(i);
	return i->pFunctionList;
}

#define CA (ca_list())

/* ---- return values with the vendor names ------------------------------- */

#define VR(x) { x, #x }
static const struct { CK_RV rv; const char *name; } ca_rv_names[] = {
	VR(CKR_CLONE_NOT_ATTEMPTED), VR(CKR_SESSION_NEGOTIATION_NO_PSK),
	VR(CKR_SESSION_NEGOTIATION_NO_ROOTS), VR(CKR_SESSION_NEGOTIATION_NO_ALGS),
	VR(CKR_SESSION_NEGOTIATION_EXPIRED), VR(CKR_SESSION_NEGOTIATION_INVALID),
	VR(CKR_SESSION_ID_INVALID), VR(CKR_SESSION_ID_EXISTS),
	VR(CKR_SESSION_ID_EXPIRED), VR(CKR_ATTESTATION_EXPIRED),
	VR(CKR_PROTOCOL_DISABLED), VR(CKR_OBJECT_TYPE_INVALID),
	VR(CKR_TIME_NOT_INITIALIZED),
	VR(CKR_SESSION_NEGOTIATION_NO_SESSION_DURATION),
	VR(CKR_SESSION_NEGOTIATION_NO_KDF), VR(CKR_SESSION_NEGOTIATION_NO_ENCODING),
	VR(CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT),
	VR(CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY),
	VR(CKR_DOMAIN_MANAGEMENT_NOT_ALLOWED), VR(CKR_DOMAIN_NO_PRIMARY),
	VR(CKR_SESSION_NEGOTIATION_NOT_STARTED),
};

static const char *ca_rv_name(CK_RV rv)
{
	for (size_t i = 0; i < ARRAY_SIZE(ca_rv_names); i++)
		if (ca_rv_names[i].rv == rv)
			return ca_rv_names[i].name;
	return rv_name(rv);
}

/* assert_rv with the CKR_ names of cryptoki_ca.h. */
#define assert_ca(expr, expected) \
	_assert_ca((expr), (expected), #expr, __FILE__, __LINE__)

static void _assert_ca(CK_RV got, CK_RV expected, const char *expr,
		       const char *file, int line)
{
	if (got == expected)
		return;
	print_error("%s returned %s (0x%lx), expected %s (0x%lx)\n", expr,
		    ca_rv_name(got), got, ca_rv_name(expected), expected);
	_fail(file, line);
}

/* One result of an array, with its index in the message. */
#define assert_res(arr, i, expected) \
	_assert_res((arr)[i], (expected), #arr, (i), __FILE__, __LINE__)

static void _assert_res(CK_RV got, CK_RV expected, const char *arr,
			size_t i, const char *file, int line)
{
	if (got == expected)
		return;
	print_error("%s[%zu] is %s (0x%lx), expected %s (0x%lx)\n", arr, i,
		    ca_rv_name(got), got, ca_rv_name(expected), expected);
	_fail(file, line);
}

/* ---- tokens, domains, sessions --------------------------------------- */

static void add_domain(CK_SLOT_ID slot, const char *so_pin, const char *kcv,
		       CK_BBOOL primary)
{
	CK_SESSION_HANDLE h = open_session(slot, RW);

	assert_rv(P11->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)so_pin,
			       strlen(so_pin)), CKR_OK);
	assert_ca(CA->CA_AddKCV(h, strlen(kcv), (CK_BYTE_PTR)kcv, 5,
				(CK_BYTE_PTR)(primary ? "suite" : "other"), primary),
		  CKR_OK);
	assert_rv(P11->C_Logout(h), CKR_OK);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
}

/* Both tokens fresh; each gets the domain given (NULL: none). */
static void fresh_pair(const char *kcv1, const char *kcv2)
{
	assert_rv(init_token_and_pin(S.slot, SO_PIN, SO_PIN_ALT, TOKEN_LABEL,
				     USER_PIN, NULL), CKR_OK);
	assert_rv(init_token_and_pin(S.slot2, SO2_PIN, NULL, "phsm-suite-2",
				     USER2_PIN, NULL), CKR_OK);
	if (kcv1)
		add_domain(S.slot, SO_PIN, kcv1, CK_TRUE);
	if (kcv2)
		add_domain(S.slot2, SO2_PIN, kcv2, CK_TRUE);
}

static int clone_up(void **state)
{
	if (lib_up(state))
		return -1;
	fresh_pair(KCV_A, KCV_A);
	return 0;
}

#define CLONE_TEST(fn) cmocka_unit_test_setup_teardown(fn, clone_up, lib_down)

/* A R/W session on slot 1 (u1) or slot 2 (u2) with the user logged in. */
static CK_SESSION_HANDLE u1(void)
{
	return user_session();
}

static CK_SESSION_HANDLE u2(void)
{
	CK_SESSION_HANDLE h = open_session(S.slot2, RW);

	assert_rv(P11->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)USER2_PIN,
			       strlen(USER2_PIN)), CKR_OK);
	return h;
}

/* Set a partition policy as its SO (nobody else logged in on the slot). */
static void set_policy(CK_SLOT_ID slot, const char *so_pin, CK_ULONG type,
		       CK_ULONG value)
{
	CK_SESSION_HANDLE h = open_session(slot, RW);

	assert_rv(P11->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)so_pin,
			       strlen(so_pin)), CKR_OK);
	assert_ca(CA->CA_SetContainerPolicy(h, CK_PHSM_CONTAINER_SELF, type,
					    value), CKR_OK);
	assert_rv(P11->C_Logout(h), CKR_OK);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
}

/* Every object the session sees. */
static CK_ULONG count_all(CK_SESSION_HANDLE h)
{
	return find(h, NULL, 0, NULL, 0);
}

/* ---- objects ----------------------------------------------------------- */

static CK_OBJECT_HANDLE mk_aes(CK_SESSION_HANDLE h, const char *label,
			       bool token, bool sensitive, bool extractable)
{
	struct tmpl t;

	tmpl_init(&t);
	tmpl_str(&t, CKA_LABEL, label);
	tmpl_str(&t, CKA_ID, "clone-id");
	tmpl_bool(&t, CKA_TOKEN, token);
	tmpl_bool(&t, CKA_SENSITIVE, sensitive);
	tmpl_bool(&t, CKA_EXTRACTABLE, extractable);
	tmpl_bool(&t, CKA_ENCRYPT, true);
	tmpl_bool(&t, CKA_DECRYPT, true);
	return gen_aes(h, 32, &t);
}

static void mk_rsa_token(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *pub,
			 CK_OBJECT_HANDLE *priv)
{
	static const uint8_t f4[] = { 0x01, 0x00, 0x01 };
	CK_MECHANISM m = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	struct tmpl pt, kt;

	tmpl_init(&pt);
	tmpl_ulong(&pt, CKA_MODULUS_BITS, 2048);
	tmpl_bytes(&pt, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
	tmpl_bool(&pt, CKA_TOKEN, true);
	tmpl_bool(&pt, CKA_VERIFY, true);
	tmpl_str(&pt, CKA_LABEL, "clone-rsa");
	tmpl_init(&kt);
	tmpl_bool(&kt, CKA_TOKEN, true);
	tmpl_bool(&kt, CKA_PRIVATE, true);
	tmpl_bool(&kt, CKA_SIGN, true);
	tmpl_bool(&kt, CKA_SENSITIVE, true);
	tmpl_bool(&kt, CKA_EXTRACTABLE, false);
	tmpl_str(&kt, CKA_LABEL, "clone-rsa");
	assert_rv(P11->C_GenerateKeyPair(h, &m, pt.a, pt.n, kt.a, kt.n, pub,
					 priv), CKR_OK);
}

static CK_OBJECT_HANDLE mk_data(CK_SESSION_HANDLE h, const char *label,
				bool token)
{
	return create_data(h, label, token, token);
}

/* A value of the attribute (NULL if not readable) and the read's rv. */
static uint8_t *read_attr(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
			  CK_ATTRIBUTE_TYPE type, CK_ULONG *len, CK_RV *rv)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	uint8_t *buf;

	*rv = P11->C_GetAttributeValue(h, o, &a, 1);
	*len = a.ulValueLen;
	if (*rv != CKR_OK)
		return NULL;
	buf = malloc(a.ulValueLen + 1);
	assert_non_null(buf);
	a.pValue = buf;
	*rv = P11->C_GetAttributeValue(h, o, &a, 1);
	assert_rv(*rv, CKR_OK);
	*len = a.ulValueLen;
	return buf;
}

/*
 * The clone has every attribute of the original with the same value, or
 * the same refusal (sensitive, not an attribute of the class), except
 * CKA_UNIQUE_ID, which is the target's own.
 */
static void assert_same_attrs(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE src,
			      CK_SESSION_HANDLE ht, CK_OBJECT_HANDLE dst)
{
	static const CK_ATTRIBUTE_TYPE types[] = {
		CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_APPLICATION,
		CKA_VALUE, CKA_OBJECT_ID, CKA_CERTIFICATE_TYPE, CKA_ISSUER,
		CKA_SERIAL_NUMBER, CKA_TRUSTED, CKA_CERTIFICATE_CATEGORY,
		CKA_CHECK_VALUE, CKA_KEY_TYPE, CKA_SUBJECT, CKA_ID,
		CKA_SENSITIVE, CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP,
		CKA_SIGN, CKA_SIGN_RECOVER, CKA_VERIFY, CKA_VERIFY_RECOVER,
		CKA_DERIVE, CKA_START_DATE, CKA_END_DATE, CKA_MODULUS,
		CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT,
		CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2,
		CKA_COEFFICIENT, CKA_PUBLIC_KEY_INFO, CKA_VALUE_LEN,
		CKA_EXTRACTABLE, CKA_LOCAL, CKA_NEVER_EXTRACTABLE,
		CKA_ALWAYS_SENSITIVE, CKA_KEY_GEN_MECHANISM, CKA_MODIFIABLE,
		CKA_COPYABLE, CKA_DESTROYABLE, CKA_EC_PARAMS, CKA_EC_POINT,
		CKA_ALWAYS_AUTHENTICATE, CKA_WRAP_WITH_TRUSTED,
		CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE,
		CKA_ALLOWED_MECHANISMS, CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
		CKA_HASH_OF_ISSUER_PUBLIC_KEY, CKA_NAME_HASH_ALGORITHM,
		CKA_URL, CKA_PROFILE_ID,
	};
	CK_ULONG ls, lt, readable = 0;
	CK_RV rs, rt;

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		uint8_t *vs = read_attr(hs, src, types[i], &ls, &rs);
		uint8_t *vt = read_attr(ht, dst, types[i], &lt, &rt);

		if (rs != rt)
			fail_msg("attribute 0x%lx: original %s, clone %s",
				 types[i], ca_rv_name(rs), ca_rv_name(rt));
		if (rs == CKR_OK) {
			readable++;
			if (ls != lt || memcmp(vs, vt, ls))
				fail_msg("attribute 0x%lx differs (%lu and %lu "
					 "bytes)", types[i], ls, lt);
		}
		free(vs);
		free(vt);
	}
	assert_true(readable >= 8);
	/* Its own unique ID. */
	assert_true(attr_len(ht, dst, CKA_UNIQUE_ID) > 0);
}

/* AES: encrypted by the original, decrypted by the clone. */
static void assert_aes_pair(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE src,
			    CK_SESSION_HANDLE ht, CK_OBJECT_HANDLE dst)
{
	uint8_t iv[16], pt[40], ct[64], back[64];
	CK_MECHANISM m = { CKM_AES_CBC_PAD, iv, sizeof(iv) };
	CK_ULONG n = sizeof(ct), nb = sizeof(back);

	fill_pattern(iv, sizeof(iv), 7);
	fill_pattern(pt, sizeof(pt), 8);
	assert_rv(P11->C_EncryptInit(hs, &m, src), CKR_OK);
	assert_rv(P11->C_Encrypt(hs, pt, sizeof(pt), ct, &n), CKR_OK);
	assert_rv(P11->C_DecryptInit(ht, &m, dst), CKR_OK);
	assert_rv(P11->C_Decrypt(ht, ct, n, back, &nb), CKR_OK);
	assert_int_equal(nb, sizeof(pt));
	assert_memory_equal(back, pt, sizeof(pt));
}

/* Signed by the clone on the target, verified by the original's pub. */
static void assert_sign_pair(CK_SESSION_HANDLE ht, CK_OBJECT_HANDLE priv_clone,
			     CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE pub,
			     CK_MECHANISM_TYPE mech)
{
	static const char msg[] = "signed by a clone";
	CK_MECHANISM m = { mech, NULL, 0 };
	uint8_t sig[1024];
	CK_ULONG n = sign(ht, &m, priv_clone, msg, sizeof(msg) - 1, sig,
			  sizeof(sig));

	assert_rv(verify(hs, &m, pub, msg, sizeof(msg) - 1, sig, n), CKR_OK);
	sig[0] ^= 1;
	assert_rv(verify(hs, &m, pub, msg, sizeof(msg) - 1, sig, n),
		  CKR_SIGNATURE_INVALID);
}

/* ---- the CPv4 low-level flow ----------------------------------------- */

/* One negotiation, seen from the application. */
struct neg {
	uint8_t m1[MSG_CAP], m2[MSG_CAP], m3[MSG_CAP], m4[MSG_CAP];
	CK_ULONG l1, l2, l3, l4;
	uint8_t sid[64];
	CK_ULONG sid_len;
};

static CK_RV start(CK_SESSION_HANDLE h, struct neg *n)
{
	CK_ULONG step = 99;
	CK_RV rv;

	n->l1 = sizeof(n->m1);
	rv = CA->CA_MigrationStartSessionNegotiation(h, 0, NULL, &step, &n->l1,
						     n->m1);
	if (rv == CKR_OK)
		assert_int_equal(step, 1);
	return rv;
}

/* Continue with (in, in_len); out gets the output, *status the status. */
static CK_RV cont(CK_SESSION_HANDLE h, CK_ULONG in_step, const uint8_t *in,
		  CK_ULONG in_len, struct neg *n, CK_ULONG *out_step,
		  uint8_t *out, CK_ULONG *out_len, CK_ULONG *status)
{
	uint8_t sid[64];
	CK_ULONG sid_len = sizeof(sid);
	CK_RV rv;

	*out_len = MSG_CAP;
	*out_step = 99;
	*status = 99;
	rv = CA->CA_MigrationContinueSessionNegotiation(h, in_step, in_len,
		(CK_BYTE_PTR)in, n->sid_len, n->sid_len ? n->sid : NULL,
		out_step, out_len, out, status, &sid_len, sid);
	if (rv != CKR_OK)
		return rv;
	assert_true(sid_len >= 1 && sid_len <= 64);
	if (n->sid_len) {
		assert_int_equal(sid_len, n->sid_len);
		assert_memory_equal(sid, n->sid, sid_len);
	}
	memcpy(n->sid, sid, sid_len);
	n->sid_len = sid_len;
	return rv;
}

/* One continue that must work and give (step, status). */
static void cont_ok(CK_SESSION_HANDLE h, CK_ULONG in_step, const uint8_t *in,
		    CK_ULONG in_len, struct neg *n, CK_ULONG want_step,
		    CK_ULONG want_status, uint8_t *out, CK_ULONG *out_len)
{
	CK_ULONG step, status;

	assert_ca(cont(h, in_step, in, in_len, n, &step, out, out_len, &status),
		  CKR_OK);
	assert_int_equal(step, want_step);
	assert_int_equal(status, want_status);
}

/*
 * A size query (both outputs NULL), then the call: the lengths announced
 * are those of the bytes that follow.
 */
static void cont_sized(CK_SESSION_HANDLE h, CK_ULONG in_step,
		       const uint8_t *in, CK_ULONG in_len, struct neg *n,
		       CK_ULONG want_step, CK_ULONG want_status, uint8_t *out,
		       CK_ULONG *out_len)
{
	CK_ULONG step = 99, status = 99, len = 0, sid_len = 0;

	assert_ca(CA->CA_MigrationContinueSessionNegotiation(h, in_step, in_len,
		(CK_BYTE_PTR)in, n->sid_len, n->sid_len ? n->sid : NULL, &step,
		&len, NULL, &status, &sid_len, NULL), CKR_OK);
	assert_int_equal(step, want_step);
	assert_int_equal(status, want_status);
	cont_ok(h, in_step, in, in_len, n, want_step, want_status, out,
		out_len);
	assert_int_equal(*out_len, len);
	assert_int_equal(n->sid_len, sid_len);
}

/*
 * Start on hi, continue on hr, hi, hr: n->m4 is the final output, to be
 * given to hi's first CA_Extract (or its step-4 Continue).
 */
static void negotiate(CK_SESSION_HANDLE hi, CK_SESSION_HANDLE hr,
		      struct neg *n)
{
	memset(n, 0, sizeof(*n));
	assert_ca(start(hi, n), CKR_OK);
	cont_sized(hr, 1, n->m1, n->l1, n, 2, MORE, n->m2, &n->l2);
	assert_int_equal(n->sid_len, 16);	/* the card's own IDs */
	cont_sized(hi, 2, n->m2, n->l2, n, 3, MORE, n->m3, &n->l3);
	cont_sized(hr, 3, n->m3, n->l3, n, 4, DONE, n->m4, &n->l4);
}

/* Step 4 through Continue on the initiator. */
static void finish_i(CK_SESSION_HANDLE hi, struct neg *n)
{
	uint8_t out[16];
	CK_ULONG step, status, len;

	assert_ca(cont(hi, 4, n->m4, n->l4, n, &step, out, &len, &status),
		  CKR_OK);
	assert_int_equal(step, 0);
	assert_int_equal(status, DONE);
	assert_int_equal(len, 0);
}

/* Blobs of one CA_Extract, owned by the test. */
struct blobs {
	CK_ULONG count;
	CK_ULONG types[16];
	CK_ULONG handles[16];
	CK_RV results[16];
	CK_ULONG lens[16];
	CK_BYTE_PTR ptrs[16];
	uint8_t *mem;
};

static void blobs_init(struct blobs *b, CK_ULONG count, const CK_ULONG *types,
		       const CK_OBJECT_HANDLE *handles)
{
	assert_true(count <= 16);
	memset(b, 0, sizeof(*b));
	b->count = count;
	b->mem = calloc(count, BLOB_CAP);
	assert_non_null(b->mem);
	for (CK_ULONG i = 0; i < count; i++) {
		b->types[i] = types ? types[i] : CK_CRYPTOKI_ELEMENT;
		b->handles[i] = handles[i];
		b->lens[i] = BLOB_CAP;
		b->ptrs[i] = b->mem + i * BLOB_CAP;
		b->results[i] = 0x5a5a;
	}
}

static void blobs_free(struct blobs *b)
{
	free(b->mem);
	b->mem = NULL;
}

/* CA_Extract of b's objects; with_input: n->m4 as the step-4 input. */
static CK_RV extract(CK_SESSION_HANDLE h, struct neg *n, bool with_input,
		     CK_ULONG flags, struct blobs *b)
{
	CK_CPV4_EXTRACT_PARAMS p = {
		.sessionIdLength = n->sid_len,
		.sessionId = n->sid,
		.inputLength = with_input ? n->l4 : 0,
		.input = with_input ? n->m4 : NULL,
		.extractionFlags = flags,
		.numberOfObjects = b->count,
		.objectType = b->types,
		.objectHandle = b->handles,
		.result = b->results,
		.keyBlobLength = b->lens,
		.keyBlob = b->ptrs,
	};
	CK_MECHANISM m = { CKM_CPV4_EXTRACT, &p, sizeof(p) };

	return CA->CA_Extract(h, &m);
}

/* CA_Insert of count blobs; handles get the new objects. */
static CK_RV insert(CK_SESSION_HANDLE h, const struct neg *n, CK_ULONG flags,
		    CK_ULONG count, CK_ULONG *storage, CK_ULONG *types,
		    CK_ULONG *lens, CK_BYTE_PTR *ptrs, CK_RV *results,
		    CK_ULONG *handles)
{
	CK_CPV4_INSERT_PARAMS p = {
		.sessionIdLength = n->sid_len,
		.sessionId = (CK_BYTE_PTR)n->sid,
		.insertionFlags = flags,
		.numberOfObjects = count,
		.storageType = storage,
		.objectType = types,
		.keyBlobLength = lens,
		.keyBlob = ptrs,
		.result = results,
		.objectHandle = handles,
	};
	CK_MECHANISM m = { CKM_CPV4_INSERT, &p, sizeof(p) };

	for (CK_ULONG i = 0; i < count; i++) {
		results[i] = 0x5a5a;
		handles[i] = CK_INVALID_HANDLE;
	}
	return CA->CA_Insert(h, &m);
}

/* Insert one blob as it is (storage as is); its result, *handle. */
static CK_RV insert_one(CK_SESSION_HANDLE h, const struct neg *n,
			CK_ULONG type, const uint8_t *blob, CK_ULONG len,
			CK_OBJECT_HANDLE *handle)
{
	CK_ULONG storage = PHSM_CLONE_STORAGE_AS_IS, lens = len, out;
	CK_BYTE_PTR ptr = (CK_BYTE_PTR)blob;
	CK_RV result;

	assert_ca(insert(h, n, 0, 1, &storage, &type, &lens, &ptr, &result,
			 &out), CKR_OK);
	if (handle)
		*handle = out;
	return result;
}

/*
 * The blob header (cloning.rst, Blobs): U64 magic, version, type, BYTES
 * session_id, U64 direction, U64 seq, ...  Each field is a 8-byte header
 * (u16 type, u16 reserved, u32 length, little-endian) and its value.
 */
static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The value of field @index of a field sequence: its offset and length. */
static size_t field_at(const uint8_t *m, CK_ULONG len, int index,
		       size_t *flen)
{
	size_t off = 0;

	for (int i = 0; i <= index; i++) {
		uint32_t n;

		assert_true(off + 8 <= len);
		n = (uint32_t)m[off + 4] | (uint32_t)m[off + 5] << 8 |
		    (uint32_t)m[off + 6] << 16 | (uint32_t)m[off + 7] << 24;
		assert_true(off + 8 + n <= len);
		if (i == index) {
			*flen = n;
			return off + 8;
		}
		off += 8 + n;
	}
	return 0;
}

static uint64_t blob_u64_field(const uint8_t *blob, CK_ULONG len, int index)
{
	size_t n, off = field_at(blob, len, index, &n);

	assert_int_equal(n, 8);
	return le64(blob + off);
}

#define BLOB_MAGIC	0
#define BLOB_TYPE	2
#define BLOB_DIRECTION	4
#define BLOB_SEQ	5
#define BLOB_OBJTYPE	6

/* ---- the interface ---------------------------------------------------- */

static void test_clone_interface(void **state)
{
	CK_PHSM_CA_FUNCTION_LIST *l = ca_list();

	(void)state;
	/* Listed and exported, the same function. */
#define SAME(fn) do { \
		assert_non_null(l->fn); \
		assert_ptr_equal(l->fn, dlsym(S.dl, #fn)); \
	} while (0)
	SAME(CA_MigrateKeys);
	SAME(CA_MigrationStartSessionNegotiation);
	SAME(CA_MigrationContinueSessionNegotiation);
	SAME(CA_MigrationCloseSession);
	SAME(CA_Extract);
	SAME(CA_Insert);
	SAME(CA_CloneObject);
	SAME(CA_CloneAsSourceInit);
	SAME(CA_CloneAsTargetInit);
	SAME(CA_CloneAsSource);
	SAME(CA_CloneAsTarget);
#undef SAME
	/* The numbers of issue 4. */
	assert_int_equal(CKM_CPV4_INSERT, 0x80000209UL);
	assert_int_equal(CKF_CONTINUE_ON_ERR, 1);
	assert_int_equal(CK_PARAM_ELEMENT, 1);
	assert_int_equal(CKR_CLONE_NOT_ATTEMPTED, 0x80000107UL);
	assert_int_equal(CKR_SESSION_NEGOTIATION_NO_PSK, 0x80000108UL);
	assert_int_equal(CKR_SESSION_NEGOTIATION_INVALID, 0x8000010CUL);
	assert_int_equal(CKR_SESSION_ID_EXPIRED, 0x8000010FUL);
	assert_int_equal(CKR_PROTOCOL_DISABLED, 0x80000111UL);
	assert_int_equal(CKR_OBJECT_TYPE_INVALID, 0x80000112UL);
	assert_int_equal(CKR_TIME_NOT_INITIALIZED, 0x80000115UL);
	assert_int_equal(CKR_SESSION_NEGOTIATION_NO_EPHEMERAL_KEY, 0x8000011BUL);
}

/* ---- CA_MigrateKeys --------------------------------------------------- */

static void test_migrate_kinds(void **state)
{
	CK_SESSION_HANDLE h1, h2;
	CK_OBJECT_HANDLE aes_tok, aes_sess, rsa_pub, rsa_priv, ec_pub, ec_priv;
	CK_OBJECT_HANDLE ed_pub, ed_priv, data_tok, data_sess, hmac;
	CK_OBJECT_MIGRATION_DATA md[12];
	CK_OBJECT_HANDLE src[12];
	uint8_t secret[32];
	struct tmpl ht;
	CK_ULONG before;
	size_t n = 0, bad;

	(void)state;
	h1 = u1();
	h2 = u2();
	aes_tok = mk_aes(h1, "clone-aes-token", true, true, false);
	aes_sess = mk_aes(h1, "clone-aes-session", false, false, true);
	mk_rsa_token(h1, &rsa_pub, &rsa_priv);
	gen_ec(h1, OID_P256, sizeof(OID_P256), &ec_pub, &ec_priv);
	gen_ed25519(h1, OID_ED25519, sizeof(OID_ED25519), &ed_pub, &ed_priv);
	data_tok = mk_data(h1, "clone-data-token", true);
	data_sess = mk_data(h1, "clone-data-session", false);
	fill_pattern(secret, sizeof(secret), 11);
	tmpl_init(&ht);
	tmpl_bool(&ht, CKA_TOKEN, true);
	tmpl_bool(&ht, CKA_SIGN, true);
	tmpl_bool(&ht, CKA_VERIFY, true);
	tmpl_str(&ht, CKA_LABEL, "clone-hmac");
	hmac = create_secret(h1, CKK_GENERIC_SECRET, secret, sizeof(secret), &ht);
	src[n++] = aes_tok;
	src[n++] = aes_sess;
	src[n++] = rsa_pub;
	src[n++] = rsa_priv;
	src[n++] = ec_pub;
	src[n++] = ec_priv;
	src[n++] = ed_pub;
	src[n++] = ed_priv;
	src[n++] = data_tok;
	src[n++] = data_sess;
	src[n++] = hmac;
	for (size_t i = 0; i < n; i++)
		md[i] = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, src[i],
						    0x77, 0x5a5a };
	/* The partition's SMK travels as a parameter object. */
	md[n] = (CK_OBJECT_MIGRATION_DATA){ CK_PARAM_ELEMENT, PHSM_PARAM_SMK,
					    0x77, 0x5a5a };
	before = count_all(h2);
	assert_ca(CA->CA_MigrateKeys(h1, h2, CKF_CONTINUE_ON_ERR, n + 1, md),
		  CKR_OK);
	bad = 0;
	for (size_t i = 0; i <= n; i++)
		if (md[i].rv != CKR_OK) {
			print_error("object %zu: %s\n", i, ca_rv_name(md[i].rv));
			bad++;
		}
	assert_int_equal(bad, 0);
	assert_int_equal(md[n].targetHandle, PHSM_PARAM_SMK);
	assert_int_equal(count_all(h2), before + n);

	for (size_t i = 0; i < n; i++) {
		assert_true(md[i].targetHandle != CK_INVALID_HANDLE);
		assert_same_attrs(h1, src[i], h2, md[i].targetHandle);
	}
	/* Sensitive and not extractable stays so. */
	assert_true(attr_bool(h2, md[0].targetHandle, CKA_SENSITIVE));
	assert_false(attr_bool(h2, md[0].targetHandle, CKA_EXTRACTABLE));
	assert_true(attr_bool(h2, md[0].targetHandle, CKA_TOKEN));
	assert_false(attr_bool(h2, md[1].targetHandle, CKA_TOKEN));
	assert_true(attr_bool(h2, md[3].targetHandle, CKA_SENSITIVE));
	/* The clones work like the originals. */
	assert_aes_pair(h1, aes_tok, h2, md[0].targetHandle);
	assert_aes_pair(h2, md[1].targetHandle, h1, aes_sess);
	assert_sign_pair(h2, md[3].targetHandle, h1, rsa_pub,
			 CKM_SHA256_RSA_PKCS);
	assert_sign_pair(h2, md[5].targetHandle, h1, ec_pub, CKM_ECDSA_SHA256);
	assert_sign_pair(h2, md[7].targetHandle, h1, ed_pub, CKM_EDDSA);
	assert_sign_pair(h1, rsa_priv, h2, md[2].targetHandle,
			 CKM_SHA256_RSA_PKCS);
	assert_sign_pair(h2, md[10].targetHandle, h1, hmac, CKM_SHA256_HMAC);
	/* The session clones belong to the target's PKCS#11 session. */
	assert_rv(P11->C_CloseSession(h2), CKR_OK);
	h2 = u2();
	assert_int_equal(find_label(h2, "clone-aes-session"), 0);
	assert_int_equal(find_label(h2, "clone-aes-token"), 1);
	assert_int_equal(find_label(h2, "clone-data-token"), 1);
	/* And the other way. */
	{
		CK_OBJECT_MIGRATION_DATA back = { CK_CRYPTOKI_ELEMENT, 0, 0, 0 };
		CK_OBJECT_HANDLE t2;
		CK_ATTRIBUTE q = { CKA_LABEL, "clone-data-token", 16 };

		assert_int_equal(find(h2, &q, 1, &t2, 1), 1);
		back.sourceHandle = t2;
		assert_ca(CA->CA_MigrateKeys(h2, h1, 0, 1, &back), CKR_OK);
		assert_ca(back.rv, CKR_OK);
		assert_same_attrs(h2, t2, h1, back.targetHandle);
		assert_int_equal(find_label(h1, "clone-data-token"), 2);
	}
}

static void test_migrate_results(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2();
	CK_OBJECT_HANDLE a = mk_aes(h1, "mr-a", true, true, false);
	CK_OBJECT_HANDLE b = mk_aes(h1, "mr-b", false, true, false);
	CK_OBJECT_MIGRATION_DATA md[3];

	(void)state;
	/* A bad handle in the middle, without CKF_CONTINUE_ON_ERR. */
	md[0] = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, a, 0, 0 };
	md[1] = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, 0xdead0, 0, 0 };
	md[2] = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, b, 0, 0 };
	assert_ca(CA->CA_MigrateKeys(h1, h2, 0, 3, md), CKR_OK);
	assert_ca(md[0].rv, CKR_OK);
	assert_ca(md[1].rv, CKR_OBJECT_HANDLE_INVALID);
	assert_ca(md[2].rv, CKR_CLONE_NOT_ATTEMPTED);
	assert_int_equal(md[2].targetHandle, CK_INVALID_HANDLE);
	assert_int_equal(find_label(h2, "mr-a"), 1);
	assert_int_equal(find_label(h2, "mr-b"), 0);
	/* With it: every object tried. */
	md[0].objectType = 9;	/* no such element type */
	assert_ca(CA->CA_MigrateKeys(h1, h2, CKF_CONTINUE_ON_ERR, 3, md), CKR_OK);
	assert_ca(md[0].rv, CKR_OBJECT_TYPE_INVALID);
	assert_ca(md[1].rv, CKR_OBJECT_HANDLE_INVALID);
	assert_ca(md[2].rv, CKR_OK);
	assert_int_equal(find_label(h2, "mr-b"), 1);
	assert_aes_pair(h1, b, h2, md[2].targetHandle);
}

static void test_migrate_args(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2(), h1b, pub2;
	CK_OBJECT_HANDLE a = mk_aes(h1, "ma-a", true, true, false);
	CK_OBJECT_MIGRATION_DATA md = { CK_CRYPTOKI_ELEMENT, a, 0x77, 0x5a5a };

	(void)state;
	assert_ca(CA->CA_MigrateKeys(h1, h2, 0, 0, &md), CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_MigrateKeys(h1, h2, 0, 1, NULL), CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_MigrateKeys(h1, h2, 2, 1, &md), CKR_ARGUMENTS_BAD);
	h1b = open_session(S.slot, RW);
	assert_ca(CA->CA_MigrateKeys(h1, h1b, 0, 1, &md), CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_MigrateKeys(h1, h2 + 1000, 0, 1, &md),
		  CKR_SESSION_HANDLE_INVALID);
	assert_ca(CA->CA_MigrateKeys(0, h2, 0, 1, &md),
		  CKR_SESSION_HANDLE_INVALID);
	assert_int_equal(find_label(h2, "ma-a"), 0);
	/* The target not logged in: a core error, nothing attempted. */
	assert_rv(P11->C_Logout(h2), CKR_OK);
	pub2 = h2;
	md.rv = 0x5a5a;
	assert_ca(CA->CA_MigrateKeys(h1, pub2, 0, 1, &md), CKR_USER_NOT_LOGGED_IN);
	assert_ca(md.rv, CKR_CLONE_NOT_ATTEMPTED);
	assert_int_equal(md.targetHandle, CK_INVALID_HANDLE);
	/* Nor the source. */
	assert_rv(P11->C_Login(h2, CKU_USER, (CK_UTF8CHAR_PTR)USER2_PIN,
			       strlen(USER2_PIN)), CKR_OK);
	assert_rv(P11->C_Logout(h1), CKR_OK);
	md.rv = 0x5a5a;
	assert_ca(CA->CA_MigrateKeys(h1, h2, 0, 1, &md), CKR_USER_NOT_LOGGED_IN);
	assert_ca(md.rv, CKR_CLONE_NOT_ATTEMPTED);
	/* Before C_Initialize. */
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	assert_ca(CA->CA_MigrateKeys(h1, h2, 0, 1, &md),
		  CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* No domain in common, or none at all: NO_PSK, nothing attempted. */
static void test_migrate_domains(void **state)
{
	CK_SESSION_HANDLE h1, h2;
	CK_OBJECT_HANDLE a;
	CK_OBJECT_MIGRATION_DATA md;

	(void)state;
	fresh_pair(KCV_A, KCV_B);
	h1 = u1();
	h2 = u2();
	a = mk_aes(h1, "md-a", true, true, false);
	md = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, a, 0x77, 0x5a5a };
	assert_ca(CA->CA_MigrateKeys(h1, h2, 0, 1, &md),
		  CKR_SESSION_NEGOTIATION_NO_PSK);
	assert_ca(md.rv, CKR_CLONE_NOT_ATTEMPTED);
	assert_int_equal(find_label(h2, "md-a"), 0);
	/* CA_CloneObject too (CPv3: the primary domains differ). */
	{
		CK_OBJECT_HANDLE c = 0x77;

		assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, a, &c),
			  CKR_SESSION_NEGOTIATION_NO_PSK);
	}
	P11->C_CloseSession(h1);
	P11->C_CloseSession(h2);

	/* The target has no domain. */
	fresh_pair(KCV_A, NULL);
	h1 = u1();
	h2 = u2();
	a = mk_aes(h1, "md-a", true, true, false);
	md = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, a, 0x77, 0x5a5a };
	assert_ca(CA->CA_MigrateKeys(h1, h2, 0, 1, &md),
		  CKR_SESSION_NEGOTIATION_NO_PSK);
	assert_ca(md.rv, CKR_CLONE_NOT_ATTEMPTED);
	P11->C_CloseSession(h1);
	P11->C_CloseSession(h2);

	/*
	 * The common domain is not the source's primary one: CPv4 finds it,
	 * CPv3 (primary domains only) does not.
	 */
	fresh_pair(KCV_B, KCV_A);
	set_policy(S.slot, SO_PIN, CK_PHSM_POLICY_EXTENDED_DOMAIN_MGMT, 1);
	add_domain(S.slot, SO_PIN, KCV_A, CK_FALSE);
	h1 = u1();
	h2 = u2();
	a = mk_aes(h1, "md-a", true, true, false);
	md = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, a, 0x77, 0x5a5a };
	assert_ca(CA->CA_MigrateKeys(h1, h2, 0, 1, &md), CKR_OK);
	assert_ca(md.rv, CKR_OK);
	assert_aes_pair(h1, a, h2, md.targetHandle);
	{
		CK_OBJECT_HANDLE c = 0x77;

		assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, a, &c),
			  CKR_SESSION_NEGOTIATION_NO_PSK);
	}
}

/* ---- CPv4 step by step ------------------------------------------------ */

static void test_cpv4_steps(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2();
	CK_OBJECT_HANDLE k = mk_aes(h1, "st-k", true, true, false);
	CK_OBJECT_HANDLE d = mk_data(h1, "st-d", true);
	CK_OBJECT_HANDLE objs[2] = { k, d }, made[2];
	struct neg n;
	uint8_t again[MSG_CAP];
	CK_ULONG step, status, len, len2, sid_len, qlens[2];
	CK_ULONG storage[2] = { 0, 0 }, types[2] = { 0, 0 };
	CK_RV results[2];
	struct blobs b;

	(void)state;
	memset(&n, 0, sizeof(n));
	/* Start: size query, too small, then the bytes. */
	len = 0;
	step = 99;
	assert_ca(CA->CA_MigrationStartSessionNegotiation(h1, 0, NULL, &step,
							  &len, NULL), CKR_OK);
	assert_int_equal(step, 1);
	assert_true(len > 0 && len <= MSG_CAP);
	len2 = len - 1;
	assert_ca(CA->CA_MigrationStartSessionNegotiation(h1, 0, NULL, &step,
							  &len2, n.m1),
		  CKR_BUFFER_TOO_SMALL);
	assert_int_equal(len2, len);
	n.l1 = len;
	assert_ca(CA->CA_MigrationStartSessionNegotiation(h1, 0, NULL, &step,
							  &n.l1, n.m1), CKR_OK);
	assert_int_equal(step, 1);
	assert_int_equal(n.l1, len);

	/* R, step 1: both outputs queried together, then the bytes. */
	len = 0;
	sid_len = 0;
	step = status = 99;
	assert_ca(CA->CA_MigrationContinueSessionNegotiation(h2, 1, n.l1, n.m1,
		0, NULL, &step, &len, NULL, &status, &sid_len, NULL), CKR_OK);
	assert_int_equal(step, 2);
	assert_int_equal(status, MORE);
	assert_int_equal(sid_len, 16);
	assert_true(len > 0 && len <= MSG_CAP);
	cont_ok(h2, 1, n.m1, n.l1, &n, 2, MORE, n.m2, &n.l2);
	assert_int_equal(n.l2, len);
	/* The same m1 again, before m3: the same m2. */
	{
		struct neg n2 = n;

		n2.sid_len = 0;
		cont_ok(h2, 1, n.m1, n.l1, &n2, 2, MORE, again, &len);
		assert_int_equal(len, n.l2);
		assert_memory_equal(again, n.m2, len);
		assert_int_equal(n2.sid_len, n.sid_len);
		assert_memory_equal(n2.sid, n.sid, n.sid_len);
	}

	/* I, step 2: a wrong inputStep changes nothing. */
	assert_ca(cont(h1, 3, n.m2, n.l2, &n, &step, n.m3, &n.l3, &status),
		  CKR_SESSION_NEGOTIATION_INVALID);
	cont_ok(h1, 2, n.m2, n.l2, &n, 3, MORE, n.m3, &n.l3);
	/* Repeated: the same m3. */
	cont_ok(h1, 2, n.m2, n.l2, &n, 3, MORE, again, &len);
	assert_int_equal(len, n.l3);
	assert_memory_equal(again, n.m3, len);

	/* R, step 3: DONE. */
	cont_ok(h2, 3, n.m3, n.l3, &n, 4, DONE, n.m4, &n.l4);
	cont_ok(h2, 3, n.m3, n.l3, &n, 4, DONE, again, &len);
	assert_int_equal(len, n.l4);
	assert_memory_equal(again, n.m4, len);
	/* m1 again after the record moved on. */
	{
		struct neg n2 = n;

		n2.sid_len = 0;
		assert_ca(cont(h2, 1, n.m1, n.l1, &n2, &step, again, &len,
			       &status), CKR_SESSION_ID_EXISTS);
	}

	/* I's first CA_Extract takes m4; a size query first. */
	blobs_init(&b, 2, NULL, objs);
	b.ptrs[0] = b.ptrs[1] = NULL;
	b.lens[0] = b.lens[1] = 0;
	assert_ca(extract(h1, &n, true, 0, &b), CKR_OK);
	assert_res(b.results, 0, CKR_OK);
	assert_res(b.results, 1, CKR_OK);
	assert_true(b.lens[0] > 160 && b.lens[1] > 160);
	qlens[0] = b.lens[0];
	qlens[1] = b.lens[1];
	/* The same m4 again is ignored by an established session. */
	b.ptrs[0] = b.mem;
	b.ptrs[1] = b.mem + BLOB_CAP;
	b.lens[0] = b.lens[1] = BLOB_CAP;
	assert_ca(extract(h1, &n, true, 0, &b), CKR_OK);
	assert_res(b.results, 0, CKR_OK);
	assert_res(b.results, 1, CKR_OK);
	assert_int_equal(b.lens[0], qlens[0]);
	assert_int_equal(b.lens[1], qlens[1]);
	/* The size query used no sequence number. */
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_MAGIC),
			 0x314e4c434d534850ull);
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_TYPE), 0x11);
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_DIRECTION), 1);
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_SEQ), 1);
	assert_int_equal(blob_u64_field(b.ptrs[1], b.lens[1], BLOB_SEQ), 2);
	assert_int_equal(blob_u64_field(b.ptrs[1], b.lens[1], BLOB_OBJTYPE),
			 CK_CRYPTOKI_ELEMENT);

	/* R inserts. */
	assert_ca(insert(h2, &n, 0, 2, storage, types, b.lens, b.ptrs, results,
			 made), CKR_OK);
	assert_res(results, 0, CKR_OK);
	assert_res(results, 1, CKR_OK);
	assert_same_attrs(h1, k, h2, made[0]);
	assert_same_attrs(h1, d, h2, made[1]);
	assert_aes_pair(h1, k, h2, made[0]);

	/* Close on both sides; then the ID is gone. */
	assert_ca(CA->CA_MigrationCloseSession(h1, n.sid_len, n.sid), CKR_OK);
	assert_ca(CA->CA_MigrationCloseSession(h1, n.sid_len, n.sid),
		  CKR_SESSION_ID_INVALID);
	b.ptrs[0] = b.mem;
	b.ptrs[1] = b.mem + BLOB_CAP;
	b.lens[0] = b.lens[1] = BLOB_CAP;
	assert_ca(extract(h1, &n, false, 0, &b), CKR_SESSION_ID_INVALID);
	assert_res(b.results, 0, CKR_CLONE_NOT_ATTEMPTED);
	assert_res(b.results, 1, CKR_CLONE_NOT_ATTEMPTED);
	assert_ca(CA->CA_MigrationCloseSession(h2, n.sid_len, n.sid), CKR_OK);
	assert_ca(insert(h2, &n, 0, 2, storage, types, b.lens, b.ptrs, results,
			 made), CKR_SESSION_ID_INVALID);
	assert_res(results, 0, CKR_CLONE_NOT_ATTEMPTED);
	assert_res(results, 1, CKR_CLONE_NOT_ATTEMPTED);
	blobs_free(&b);
}

/*
 * The initiator is the target: m4 goes back to it through a step-4
 * Continue; the responder extracts without input.  The application picks
 * the session ID.
 */
static void test_cpv4_initiator_target(void **state)
{
	static const char my_sid[] = "phsm-suite-chosen-session-id";
	CK_SESSION_HANDLE h1 = u1(), h2 = u2();
	CK_OBJECT_HANDLE k = mk_aes(h1, "it-k", true, true, false), made;
	struct neg n;
	struct blobs b;
	uint8_t out[MSG_CAP];
	CK_ULONG step, status, len;

	(void)state;
	memset(&n, 0, sizeof(n));
	assert_ca(start(h2, &n), CKR_OK);
	memcpy(n.sid, my_sid, sizeof(my_sid) - 1);
	n.sid_len = sizeof(my_sid) - 1;
	cont_ok(h1, 1, n.m1, n.l1, &n, 2, MORE, n.m2, &n.l2);
	assert_int_equal(n.sid_len, sizeof(my_sid) - 1);
	/* I may leave the session ID out on its first call. */
	{
		struct neg n2 = n;

		n2.sid_len = 0;
		cont_ok(h2, 2, n.m2, n.l2, &n2, 3, MORE, n.m3, &n.l3);
		assert_int_equal(n2.sid_len, n.sid_len);
		assert_memory_equal(n2.sid, my_sid, n.sid_len);
	}
	cont_ok(h1, 3, n.m3, n.l3, &n, 4, DONE, n.m4, &n.l4);
	/* Before step 4 the initiator has no session to insert with. */
	blobs_init(&b, 1, NULL, &k);
	finish_i(h2, &n);
	/* The same m4 again: still DONE. */
	finish_i(h2, &n);
	assert_ca(extract(h1, &n, false, 0, &b), CKR_OK);
	assert_res(b.results, 0, CKR_OK);
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_DIRECTION), 2);
	assert_ca(insert_one(h2, &n, CK_CRYPTOKI_ELEMENT, b.ptrs[0], b.lens[0],
			     &made), CKR_OK);
	assert_aes_pair(h1, k, h2, made);
	/* Step 4 on the responder, which never takes one. */
	assert_ca(cont(h1, 4, n.m4, n.l4, &n, &step, out, &len, &status),
		  CKR_SESSION_NEGOTIATION_INVALID);
	blobs_free(&b);

	/* The chosen ID is taken on both partitions now. */
	{
		struct neg n2;

		memset(&n2, 0, sizeof(n2));
		assert_ca(start(h2, &n2), CKR_OK);
		memcpy(n2.sid, my_sid, sizeof(my_sid) - 1);
		n2.sid_len = sizeof(my_sid) - 1;
		assert_ca(cont(h1, 1, n2.m1, n2.l1, &n2, &step, n2.m2, &n2.l2,
			       &status), CKR_SESSION_ID_EXISTS);
	}
}

/* Both ends on one partition: the ID R made exists already at I. */
static void test_cpv4_same_partition(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h1b = open_session(S.slot, RW);
	struct neg n;
	CK_ULONG step, status;

	(void)state;
	memset(&n, 0, sizeof(n));
	assert_ca(start(h1, &n), CKR_OK);
	cont_ok(h1b, 1, n.m1, n.l1, &n, 2, MORE, n.m2, &n.l2);
	assert_ca(cont(h1, 2, n.m2, n.l2, &n, &step, n.m3, &n.l3, &status),
		  CKR_SESSION_ID_EXISTS);
}

static void flip_last(uint8_t *m, CK_ULONG len)
{
	m[len - 1] ^= 0x01;
}

static void test_cpv4_tampered_steps(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2();
	CK_OBJECT_HANDLE k = mk_aes(h1, "ts-k", true, true, false);
	uint8_t junk[300];
	struct neg n;
	struct blobs b;
	CK_ULONG step, status;

	(void)state;
	fill_pattern(junk, sizeof(junk), 3);
	/* Garbage as m1. */
	memset(&n, 0, sizeof(n));
	assert_ca(cont(h2, 1, junk, sizeof(junk), &n, &step, n.m2, &n.l2,
		       &status), CKR_SESSION_NEGOTIATION_INVALID);

	/*
	 * m1: the device certificate altered (the last byte of chain_i,
	 * field 12: the certificate's signature) is NO_CHAIN_ATT; sig_i
	 * (field 14, the last) altered is _INVALID.
	 */
	memset(&n, 0, sizeof(n));
	assert_ca(start(h1, &n), CKR_OK);
	{
		size_t len, off = field_at(n.m1, n.l1, 12, &len);

		assert_true(len > 100);
		n.m1[off + len - 1] ^= 0x01;
		assert_ca(cont(h2, 1, n.m1, n.l1, &n, &step, n.m2, &n.l2,
			       &status), CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT);
		n.m1[off + len - 1] ^= 0x01;
		off = field_at(n.m1, n.l1, 14, &len);
		assert_int_equal(off + len, n.l1);
		n.m1[off + 5] ^= 0x01;
		assert_ca(cont(h2, 1, n.m1, n.l1, &n, &step, n.m2, &n.l2,
			       &status), CKR_SESSION_NEGOTIATION_INVALID);
		n.m1[off + 5] ^= 0x01;
		/* Intact, it still works. */
		cont_ok(h2, 1, n.m1, n.l1, &n, 2, MORE, n.m2, &n.l2);
	}

	/* m2 altered (its sealed part): I refuses it and drops the record. */
	memset(&n, 0, sizeof(n));
	assert_ca(start(h1, &n), CKR_OK);
	cont_ok(h2, 1, n.m1, n.l1, &n, 2, MORE, n.m2, &n.l2);
	/* Garbage as m2 names no negotiation: the record stays. */
	assert_ca(cont(h1, 2, junk, sizeof(junk), &n, &step, n.m3, &n.l3,
		       &status), CKR_SESSION_NEGOTIATION_INVALID);
	flip_last(n.m2, n.l2);
	assert_ca(cont(h1, 2, n.m2, n.l2, &n, &step, n.m3, &n.l3, &status),
		  CKR_SESSION_NEGOTIATION_INVALID);
	flip_last(n.m2, n.l2);
	assert_ca(cont(h1, 2, n.m2, n.l2, &n, &step, n.m3, &n.l3, &status),
		  CKR_SESSION_NEGOTIATION_INVALID);

	/* m3 altered. */
	memset(&n, 0, sizeof(n));
	assert_ca(start(h1, &n), CKR_OK);
	cont_ok(h2, 1, n.m1, n.l1, &n, 2, MORE, n.m2, &n.l2);
	cont_ok(h1, 2, n.m2, n.l2, &n, 3, MORE, n.m3, &n.l3);
	flip_last(n.m3, n.l3);
	assert_ca(cont(h2, 3, n.m3, n.l3, &n, &step, n.m4, &n.l4, &status),
		  CKR_SESSION_NEGOTIATION_INVALID);

	/* m4 altered, at I's first CA_Extract: nothing attempted. */
	blobs_init(&b, 1, NULL, &k);
	negotiate(h1, h2, &n);
	flip_last(n.m4, n.l4);
	assert_ca(extract(h1, &n, true, 0, &b), CKR_SESSION_NEGOTIATION_INVALID);
	assert_res(b.results, 0, CKR_CLONE_NOT_ATTEMPTED);

	/* CA_Extract on I before step 4. */
	negotiate(h1, h2, &n);
	b.lens[0] = BLOB_CAP;
	assert_ca(extract(h1, &n, false, 0, &b), CKR_SESSION_NEGOTIATION_INVALID);
	assert_res(b.results, 0, CKR_CLONE_NOT_ATTEMPTED);

	/* An unknown session ID. */
	memset(n.sid, 0xab, 16);
	n.sid_len = 16;
	b.lens[0] = BLOB_CAP;
	assert_ca(extract(h1, &n, false, 0, &b), CKR_SESSION_ID_INVALID);
	assert_res(b.results, 0, CKR_CLONE_NOT_ATTEMPTED);
	assert_ca(cont(h2, 3, n.m3, n.l3, &n, &step, n.m4, &n.l4, &status),
		  CKR_SESSION_NEGOTIATION_INVALID);
	assert_ca(CA->CA_MigrationCloseSession(h1, n.sid_len, n.sid),
		  CKR_SESSION_ID_INVALID);
	blobs_free(&b);
}

/* ---- CA_Extract / CA_Insert per object -------------------------------- */

/* An established session between h1 (I, source) and h2 (R, target). */
static void established(CK_SESSION_HANDLE h1, CK_SESSION_HANDLE h2,
			struct neg *n)
{
	negotiate(h1, h2, n);
	finish_i(h1, n);
}

static void test_extract_results(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2();
	CK_OBJECT_HANDLE k1 = mk_aes(h1, "er-1", true, true, false);
	CK_OBJECT_HANDLE k2 = mk_aes(h1, "er-2", false, false, true);
	CK_OBJECT_HANDLE three[3] = { k1, 0xdead0, k2 };
	CK_ULONG types3[3] = { 0, 0, 0 };
	CK_ULONG ptypes[2] = { CK_PARAM_ELEMENT, CK_PARAM_ELEMENT };
	CK_OBJECT_HANDLE params[2] = { PHSM_PARAM_SMK, 99 };
	CK_ULONG need;
	struct neg n;
	struct blobs b;

	(void)state;
	established(h1, h2, &n);

	/* A bad handle in the middle. */
	blobs_init(&b, 3, types3, three);
	assert_ca(extract(h1, &n, false, 0, &b), CKR_OK);
	assert_res(b.results, 0, CKR_OK);
	assert_res(b.results, 1, CKR_OBJECT_HANDLE_INVALID);
	assert_res(b.results, 2, CKR_CLONE_NOT_ATTEMPTED);
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_SEQ), 1);
	blobs_free(&b);
	blobs_init(&b, 3, types3, three);
	assert_ca(extract(h1, &n, false, CKF_CONTINUE_ON_ERR, &b), CKR_OK);
	assert_res(b.results, 0, CKR_OK);
	assert_res(b.results, 1, CKR_OBJECT_HANDLE_INVALID);
	assert_res(b.results, 2, CKR_OK);
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_SEQ), 2);
	assert_int_equal(blob_u64_field(b.ptrs[2], b.lens[2], BLOB_SEQ), 3);
	blobs_free(&b);

	/* An unknown element type. */
	types3[1] = 7;
	three[1] = k1;
	blobs_init(&b, 3, types3, three);
	assert_ca(extract(h1, &n, false, CKF_CONTINUE_ON_ERR, &b), CKR_OK);
	assert_res(b.results, 0, CKR_OK);
	assert_res(b.results, 1, CKR_OBJECT_TYPE_INVALID);
	assert_res(b.results, 2, CKR_OK);
	blobs_free(&b);

	/* Parameters: the SMK, and an id that is none. */
	blobs_init(&b, 2, ptypes, params);
	assert_ca(extract(h1, &n, false, CKF_CONTINUE_ON_ERR, &b), CKR_OK);
	assert_res(b.results, 0, CKR_OK);
	assert_res(b.results, 1, CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_OBJTYPE),
			 CK_PARAM_ELEMENT);
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_SEQ), 6);
	blobs_free(&b);

	/* Size query, then one buffer too short: exact sizes, no seq used. */
	types3[1] = 0;
	three[1] = k2;
	blobs_init(&b, 3, types3, three);
	for (int i = 0; i < 3; i++) {
		b.ptrs[i] = NULL;
		b.lens[i] = 0;
	}
	assert_ca(extract(h1, &n, false, 0, &b), CKR_OK);
	for (int i = 0; i < 3; i++)
		assert_res(b.results, i, CKR_OK);
	need = b.lens[1];
	for (int i = 0; i < 3; i++)
		b.ptrs[i] = b.mem + i * BLOB_CAP;
	b.lens[0] = BLOB_CAP;
	b.lens[1] = need - 1;
	b.lens[2] = BLOB_CAP;
	assert_ca(extract(h1, &n, false, CKF_CONTINUE_ON_ERR, &b), CKR_OK);
	assert_res(b.results, 0, CKR_OK);
	assert_res(b.results, 1, CKR_BUFFER_TOO_SMALL);
	assert_res(b.results, 2, CKR_OK);
	assert_int_equal(b.lens[1], need);
	assert_int_equal(blob_u64_field(b.ptrs[0], b.lens[0], BLOB_SEQ), 7);
	assert_int_equal(blob_u64_field(b.ptrs[2], b.lens[2], BLOB_SEQ), 8);
	blobs_free(&b);
}

static void test_insert_results(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2(), ro2;
	CK_OBJECT_HANDLE k1 = mk_aes(h1, "ir-1", true, true, false);
	CK_OBJECT_HANDLE k2 = mk_aes(h1, "ir-2", false, false, true);
	CK_OBJECT_HANDLE objs[6] = { k1, k2, k1, k2, k1, k2 }, made[3], h;
	CK_ULONG storage[3] = { 0, 0, 0 }, types[3] = { 0, 0, 0 }, lens[3];
	CK_BYTE_PTR ptrs[3];
	CK_RV results[3];
	CK_ULONG before;
	struct neg n;
	struct blobs b;

	(void)state;
	established(h1, h2, &n);
	blobs_init(&b, 6, NULL, objs);
	assert_ca(extract(h1, &n, false, 0, &b), CKR_OK);
	for (int i = 0; i < 6; i++)
		assert_res(b.results, i, CKR_OK);

	/* [good, tampered, good] with CKF_CONTINUE_ON_ERR. */
	before = count_all(h2);
	b.ptrs[1][b.lens[1] - 1] ^= 0x80;
	for (int i = 0; i < 3; i++) {
		ptrs[i] = b.ptrs[i];
		lens[i] = b.lens[i];
	}
	assert_ca(insert(h2, &n, CKF_CONTINUE_ON_ERR, 3, storage, types, lens,
			 ptrs, results, made), CKR_OK);
	assert_res(results, 0, CKR_OK);
	assert_res(results, 1, CKR_ENCRYPTED_DATA_INVALID);
	assert_res(results, 2, CKR_OK);
	assert_int_equal(made[1], CK_INVALID_HANDLE);
	assert_int_equal(count_all(h2), before + 2);
	/* Without it: the third is not attempted, and can come later. */
	for (int i = 0; i < 3; i++) {
		ptrs[i] = b.ptrs[3 + i];
		lens[i] = b.lens[3 + i];
	}
	ptrs[1] = b.ptrs[1];
	lens[1] = b.lens[1];
	assert_ca(insert(h2, &n, 0, 3, storage, types, lens, ptrs, results,
			 made), CKR_OK);
	assert_res(results, 0, CKR_OK);
	assert_res(results, 1, CKR_ENCRYPTED_DATA_INVALID);
	assert_res(results, 2, CKR_CLONE_NOT_ATTEMPTED);
	assert_int_equal(count_all(h2), before + 3);
	assert_ca(insert_one(h2, &n, 0, b.ptrs[5], b.lens[5], &h), CKR_OK);
	assert_int_equal(count_all(h2), before + 4);
	/* The repaired blob is fine (nothing was used up by its failure). */
	b.ptrs[1][b.lens[1] - 1] ^= 0x80;
	assert_ca(insert_one(h2, &n, 0, b.ptrs[1], b.lens[1], &h), CKR_OK);
	assert_aes_pair(h1, k2, h2, h);
	before = count_all(h2);

	/* Replay. */
	assert_ca(insert_one(h2, &n, 0, b.ptrs[0], b.lens[0], &h),
		  CKR_DATA_INVALID);
	/* Reflected to its maker. */
	blobs_free(&b);
	blobs_init(&b, 2, NULL, objs);
	assert_ca(extract(h1, &n, false, 0, &b), CKR_OK);
	assert_ca(insert_one(h1, &n, 0, b.ptrs[0], b.lens[0], &h),
		  CKR_DATA_INVALID);
	/* Declared as a parameter. */
	assert_ca(insert_one(h2, &n, CK_PARAM_ELEMENT, b.ptrs[0], b.lens[0], &h),
		  CKR_OBJECT_TYPE_INVALID);
	/* A storage type that is none. */
	storage[0] = 3;
	lens[0] = b.lens[0];
	ptrs[0] = b.ptrs[0];
	assert_ca(insert(h2, &n, 0, 1, storage, types, lens, ptrs, results,
			 made), CKR_OK);
	assert_res(results, 0, CKR_ARGUMENTS_BAD);
	assert_int_equal(count_all(h2), before);
	/* A token object through a read-only session. */
	ro2 = open_session(S.slot2, CKF_SERIAL_SESSION);
	assert_ca(insert_one(ro2, &n, 0, b.ptrs[0], b.lens[0], &h),
		  CKR_SESSION_READ_ONLY);
	assert_int_equal(count_all(h2), before);
	/* Storage types: the token key as a session object, and back. */
	storage[0] = PHSM_CLONE_STORAGE_SESSION;
	storage[1] = PHSM_CLONE_STORAGE_TOKEN;
	assert_ca(insert(h2, &n, 0, 2, storage, types, b.lens, b.ptrs, results,
			 made), CKR_OK);
	assert_res(results, 0, CKR_OK);
	assert_res(results, 1, CKR_OK);
	assert_false(attr_bool(h2, made[0], CKA_TOKEN));
	assert_true(attr_bool(h2, made[1], CKA_TOKEN));
	assert_true(attr_bool(h2, made[0], CKA_SENSITIVE));
	blobs_free(&b);

	/* A blob of another session is foreign. */
	{
		struct neg n2;
		CK_OBJECT_HANDLE one = k1;

		established(h1, h2, &n2);
		blobs_init(&b, 1, NULL, &one);
		assert_ca(extract(h1, &n2, false, 0, &b), CKR_OK);
		before = count_all(h2);
		assert_ca(insert_one(h2, &n, 0, b.ptrs[0], b.lens[0], &h),
			  CKR_DATA_INVALID);
		assert_int_equal(count_all(h2), before);
		assert_ca(insert_one(h2, &n2, 0, b.ptrs[0], b.lens[0], &h),
			  CKR_OK);
		blobs_free(&b);
	}
}

/* Every byte of a blob altered in turn: refused, nothing created. */
static void test_insert_tampered_bytes(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2();
	CK_OBJECT_HANDLE d = mk_data(h1, "tb-d", true), h;
	CK_ULONG before;
	struct neg n;
	struct blobs b;
	CK_RV r;

	(void)state;
	established(h1, h2, &n);
	blobs_init(&b, 1, NULL, &d);
	assert_ca(extract(h1, &n, false, 0, &b), CKR_OK);
	before = count_all(h2);
	for (CK_ULONG i = 0; i < b.lens[0]; i++) {
		b.ptrs[0][i] ^= 0x5a;
		r = insert_one(h2, &n, 0, b.ptrs[0], b.lens[0], &h);
		if (r != CKR_DATA_INVALID && r != CKR_ENCRYPTED_DATA_INVALID &&
		    r != CKR_OBJECT_TYPE_INVALID)
			fail_msg("blob byte %lu of %lu altered: %s", i,
				 b.lens[0], ca_rv_name(r));
		b.ptrs[0][i] ^= 0x5a;
	}
	assert_int_equal(count_all(h2), before);
	assert_int_equal(find_label(h2, "tb-d"), 0);
	/* Cut short, or one byte longer. */
	assert_ca(insert_one(h2, &n, 0, b.ptrs[0], b.lens[0] - 1, &h),
		  CKR_DATA_INVALID);
	assert_ca(insert_one(h2, &n, 0, b.ptrs[0], b.lens[0] + 1, &h),
		  CKR_DATA_INVALID);
	assert_ca(insert_one(h2, &n, 0, b.ptrs[0], b.lens[0], &h), CKR_OK);
	assert_same_attrs(h1, d, h2, h);
	assert_int_equal(count_all(h2), before + 1);
	blobs_free(&b);
}

/* ---- batches ---------------------------------------------------------- */

#define BATCH	2500	/* more than two requests' worth (1024 each) */

/* One CA_Insert of a slice of blobs, run by a thread. */
struct ins_job {
	CK_PHSM_CA_FUNCTION_LIST *ca;
	CK_SESSION_HANDLE h;
	CK_CPV4_INSERT_PARAMS p;
	CK_RV rv;
	pthread_t t;
};

static void *ins_thread(void *arg)
{
	struct ins_job *j = arg;
	CK_MECHANISM m = { CKM_CPV4_INSERT, &j->p, sizeof(j->p) };

	j->rv = j->ca->CA_Insert(j->h, &m);
	return NULL;
}

static void ins_job_init(struct ins_job *j, CK_SESSION_HANDLE h,
			 struct neg *n, CK_ULONG first, CK_ULONG count,
			 CK_ULONG *zeros, CK_ULONG *lens, CK_BYTE_PTR *ptrs,
			 CK_RV *results, CK_ULONG *handles)
{
	j->ca = ca_list();
	j->h = h;
	j->p = (CK_CPV4_INSERT_PARAMS){ n->sid_len, n->sid, 0, count, zeros,
					zeros, lens + first, ptrs + first,
					results + first, handles + first };
	j->rv = 0x5a5a;
}

/*
 * Thousands of objects in one CA_Extract (the library splits it into
 * requests), inserted in reverse order, and by two threads at once
 * through one clone session.
 */
static void test_batches(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2(), h2b = open_session(S.slot2, RW);
	CK_ULONG *types = calloc(BATCH, sizeof(CK_ULONG));
	CK_ULONG *handles = calloc(BATCH, sizeof(CK_ULONG));
	CK_ULONG *lens = calloc(BATCH, sizeof(CK_ULONG));
	CK_ULONG *made = calloc(BATCH, sizeof(CK_ULONG));
	CK_RV *results = calloc(BATCH, sizeof(CK_RV));
	CK_BYTE_PTR *ptrs = calloc(BATCH, sizeof(CK_BYTE_PTR));
	CK_BYTE_PTR *rev = calloc(BATCH, sizeof(CK_BYTE_PTR));
	CK_ULONG *rlens = calloc(BATCH, sizeof(CK_ULONG));
	uint8_t *mem;
	size_t total = 0;
	struct ins_job jobs[2];
	CK_OBJECT_HANDLE one;
	struct neg n;
	CK_CPV4_EXTRACT_PARAMS xp;
	CK_MECHANISM m = { CKM_CPV4_EXTRACT, &xp, sizeof(xp) };

	(void)state;
	assert_true(types && handles && lens && made && results && ptrs &&
		    rev && rlens);
	for (CK_ULONG i = 0; i < BATCH; i++)
		handles[i] = mk_data(h1, "batch", false);
	established(h1, h2, &n);
	xp = (CK_CPV4_EXTRACT_PARAMS){ n.sid_len, n.sid, 0, NULL, 0, BATCH,
				       types, handles, results, lens, ptrs };
	/* The sizes, then the blobs, each in one call. */
	assert_ca(CA->CA_Extract(h1, &m), CKR_OK);
	for (CK_ULONG i = 0; i < BATCH; i++) {
		assert_res(results, i, CKR_OK);
		total += lens[i];
	}
	mem = malloc(total);
	assert_non_null(mem);
	total = 0;
	for (CK_ULONG i = 0; i < BATCH; i++) {
		ptrs[i] = mem + total;
		total += lens[i];
	}
	assert_ca(CA->CA_Extract(h1, &m), CKR_OK);
	for (CK_ULONG i = 0; i < BATCH; i++) {
		assert_res(results, i, CKR_OK);
		/* In order, one sequence number each, across the requests. */
		if (blob_u64_field(ptrs[i], lens[i], BLOB_SEQ) != i + 1)
			fail_msg("blob %lu has sequence number %lu", i,
				 (unsigned long)blob_u64_field(ptrs[i], lens[i],
							       BLOB_SEQ));
	}

	/* The first 1000 in reverse order, in one call. */
	for (CK_ULONG i = 0; i < 1000; i++) {
		rev[i] = ptrs[999 - i];
		rlens[i] = lens[999 - i];
	}
	assert_ca(insert(h2, &n, 0, 1000, types, types, rlens, rev, results,
			 made), CKR_OK);
	for (CK_ULONG i = 0; i < 1000; i++)
		assert_res(results, i, CKR_OK);
	/* The rest from two threads at once, on two PKCS#11 sessions. */
	ins_job_init(&jobs[0], h2, &n, 1000, 750, types, lens, ptrs, results,
		     made);
	ins_job_init(&jobs[1], h2b, &n, 1750, BATCH - 1750, types, lens, ptrs,
		     results, made);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&jobs[i].t, NULL, ins_thread,
						&jobs[i]), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(jobs[i].t, NULL), 0);
		assert_ca(jobs[i].rv, CKR_OK);
	}
	for (CK_ULONG i = 1000; i < BATCH; i++)
		assert_res(results, i, CKR_OK);
	assert_int_equal(find_label(h2, "batch"), BATCH);
	one = made[BATCH - 1];
	assert_same_attrs(h1, handles[BATCH - 1], h2, one);
	/* All used up now. */
	assert_ca(insert(h2, &n, CKF_CONTINUE_ON_ERR, 10, types, types, lens,
			 ptrs, results, made), CKR_OK);
	for (CK_ULONG i = 0; i < 10; i++)
		assert_res(results, i, CKR_DATA_INVALID);
	assert_int_equal(find_label(h2, "batch"), BATCH);
	free(mem);
	free(types);
	free(handles);
	free(lens);
	free(made);
	free(results);
	free(ptrs);
	free(rev);
	free(rlens);
}

/* Re-initialising the token drops its clone sessions. */
static void test_cpv4_init_token_drops(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2();
	CK_OBJECT_HANDLE k = mk_aes(h1, "id-k", true, true, false);
	struct neg n;
	struct blobs b;

	(void)state;
	established(h1, h2, &n);
	blobs_init(&b, 1, NULL, &k);
	assert_ca(extract(h1, &n, false, 0, &b), CKR_OK);
	P11->C_CloseSession(h2);
	assert_rv(init_token_and_pin(S.slot2, SO2_PIN, NULL, "phsm-suite-2",
				     USER2_PIN, NULL), CKR_OK);
	add_domain(S.slot2, SO2_PIN, KCV_A, CK_TRUE);
	h2 = u2();
	{
		CK_ULONG storage = 0, type = 0, out;
		CK_RV r;

		assert_ca(insert(h2, &n, 0, 1, &storage, &type, b.lens, b.ptrs,
				 &r, &out), CKR_SESSION_ID_INVALID);
		assert_res(&r, 0, CKR_CLONE_NOT_ATTEMPTED);
	}
	assert_int_equal(find_label(h2, "id-k"), 0);
	blobs_free(&b);
}

/* ---- arguments and logins of the low-level calls ---------------------- */

static void test_cpv4_args(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2(), pub, so;
	CK_OBJECT_HANDLE k = mk_aes(h1, "ca-k", true, true, false);
	uint8_t out[MSG_CAP], sid[64], in[4] = { 1, 2, 3, 4 };
	CK_ULONG step, status, len, sid_len, one = 1, zero = 0;
	CK_ULONG lens[2], types[2] = { 0, 0 }, handles[2] = { k, k };
	CK_ULONG storage[2] = { 0, 0 };
	CK_BYTE_PTR ptrs[2];
	CK_RV results[2];
	CK_CPV4_EXTRACT_PARAMS xp;
	CK_CPV4_INSERT_PARAMS ip;
	CK_MECHANISM m;
	struct neg n;

	(void)state;
	/* Start. */
	len = sizeof(out);
	assert_ca(CA->CA_MigrationStartSessionNegotiation(h1, 0, NULL, NULL,
							  &len, out),
		  CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_MigrationStartSessionNegotiation(h1, 0, NULL, &step,
							  NULL, out),
		  CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_MigrationStartSessionNegotiation(h1, 4, NULL, &step,
							  &len, out),
		  CKR_ARGUMENTS_BAD);
	/* The input is reserved: the card wants none. */
	assert_ca(CA->CA_MigrationStartSessionNegotiation(h1, 4, in, &step,
							  &len, out),
		  CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_MigrationStartSessionNegotiation(0, 0, NULL, &step,
							  &len, out),
		  CKR_SESSION_HANDLE_INVALID);

	/* Continue. */
	memset(&n, 0, sizeof(n));
	assert_ca(start(h1, &n), CKR_OK);
	len = sizeof(out);
	sid_len = sizeof(sid);
#define CONT(h, st, il, ip_, sl, sp, os, ol, o, stp, sol, so_) \
	CA->CA_MigrationContinueSessionNegotiation(h, st, il, ip_, sl, sp, os, \
						   ol, o, stp, sol, so_)
	assert_ca(CONT(h2, 1, 0, n.m1, 0, NULL, &step, &len, out, &status,
		       &sid_len, sid), CKR_ARGUMENTS_BAD);
	assert_ca(CONT(h2, 1, n.l1, NULL, 0, NULL, &step, &len, out, &status,
		       &sid_len, sid), CKR_ARGUMENTS_BAD);
	assert_ca(CONT(h2, 1, n.l1, n.m1, 4, NULL, &step, &len, out, &status,
		       &sid_len, sid), CKR_ARGUMENTS_BAD);
	assert_ca(CONT(h2, 1, n.l1, n.m1, 0, NULL, NULL, &len, out, &status,
		       &sid_len, sid), CKR_ARGUMENTS_BAD);
	assert_ca(CONT(h2, 1, n.l1, n.m1, 0, NULL, &step, NULL, out, &status,
		       &sid_len, sid), CKR_ARGUMENTS_BAD);
	assert_ca(CONT(h2, 1, n.l1, n.m1, 0, NULL, &step, &len, out, NULL,
		       &sid_len, sid), CKR_ARGUMENTS_BAD);
	assert_ca(CONT(h2, 1, n.l1, n.m1, 0, NULL, &step, &len, out, &status,
		       NULL, sid), CKR_ARGUMENTS_BAD);
	/* Half a size query. */
	assert_ca(CONT(h2, 1, n.l1, n.m1, 0, NULL, &step, &len, NULL, &status,
		       &sid_len, sid), CKR_ARGUMENTS_BAD);
	assert_ca(CONT(h2, 1, n.l1, n.m1, 0, NULL, &step, &len, out, &status,
		       &sid_len, NULL), CKR_ARGUMENTS_BAD);
	/* The session ID buffer too small: both lengths set. */
	sid_len = 4;
	len = sizeof(out);
	assert_ca(CONT(h2, 1, n.l1, n.m1, 0, NULL, &step, &len, out, &status,
		       &sid_len, sid), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(sid_len, 16);
	assert_true(len > 0 && len <= sizeof(out));
	/* Still works after all that. */
	cont_ok(h2, 1, n.m1, n.l1, &n, 2, MORE, n.m2, &n.l2);
	/* Step 3 needs the session ID. */
	cont_ok(h1, 2, n.m2, n.l2, &n, 3, MORE, n.m3, &n.l3);
	len = sizeof(out);
	sid_len = sizeof(sid);
	assert_ca(CONT(h2, 3, n.l3, n.m3, 0, NULL, &step, &len, out, &status,
		       &sid_len, sid), CKR_ARGUMENTS_BAD);
#undef CONT
	cont_ok(h2, 3, n.m3, n.l3, &n, 4, DONE, n.m4, &n.l4);
	finish_i(h1, &n);

	/* CA_Extract's mechanism and parameter. */
	lens[0] = lens[1] = 0;
	ptrs[0] = ptrs[1] = NULL;
	xp = (CK_CPV4_EXTRACT_PARAMS){ n.sid_len, n.sid, 0, NULL, 0, 2, types,
				       handles, results, lens, ptrs };
	m = (CK_MECHANISM){ CKM_CPV4_EXTRACT, &xp, sizeof(xp) };
	assert_ca(CA->CA_Extract(h1, &m), CKR_OK);
	assert_ca(CA->CA_Extract(h1, NULL), CKR_ARGUMENTS_BAD);
	m.mechanism = CKM_CPV4_INSERT;
	assert_ca(CA->CA_Extract(h1, &m), CKR_MECHANISM_INVALID);
	m.mechanism = CKM_AES_CBC;
	assert_ca(CA->CA_Extract(h1, &m), CKR_MECHANISM_INVALID);
	m.mechanism = CKM_CPV4_EXTRACT;
	m.ulParameterLen = sizeof(xp) - 1;
	assert_ca(CA->CA_Extract(h1, &m), CKR_MECHANISM_PARAM_INVALID);
	m.ulParameterLen = sizeof(xp);
	m.pParameter = NULL;
	assert_ca(CA->CA_Extract(h1, &m), CKR_MECHANISM_PARAM_INVALID);
	m.pParameter = &xp;
#define XP_BAD(field, value) do { \
		CK_CPV4_EXTRACT_PARAMS keep = xp; \
		xp.field = value; \
		assert_ca(CA->CA_Extract(h1, &m), CKR_MECHANISM_PARAM_INVALID); \
		xp = keep; \
	} while (0)
	XP_BAD(sessionIdLength, 0);
	XP_BAD(sessionId, NULL);
	XP_BAD(numberOfObjects, 0);
	XP_BAD(objectType, NULL);
	XP_BAD(objectHandle, NULL);
	XP_BAD(result, NULL);
	XP_BAD(keyBlobLength, NULL);
	XP_BAD(keyBlob, NULL);
	XP_BAD(extractionFlags, 2);
	XP_BAD(inputLength, 8);
#undef XP_BAD
	/* Mixed NULL and non-NULL blob buffers. */
	ptrs[0] = out;
	lens[0] = sizeof(out);
	assert_ca(CA->CA_Extract(h1, &m), CKR_MECHANISM_PARAM_INVALID);
	ptrs[0] = NULL;
	lens[0] = 0;

	/* CA_Insert's. */
	ip = (CK_CPV4_INSERT_PARAMS){ n.sid_len, n.sid, 0, 1, storage, types,
				      &one, ptrs, results, handles };
	ptrs[0] = out;
	m = (CK_MECHANISM){ CKM_CPV4_INSERT, &ip, sizeof(ip) };
	assert_ca(CA->CA_Insert(h2, NULL), CKR_ARGUMENTS_BAD);
	m.mechanism = CKM_CPV4_EXTRACT;
	assert_ca(CA->CA_Insert(h2, &m), CKR_MECHANISM_INVALID);
	m.mechanism = CKM_CPV4_INSERT;
	m.ulParameterLen = sizeof(ip) + 1;
	assert_ca(CA->CA_Insert(h2, &m), CKR_MECHANISM_PARAM_INVALID);
	m.ulParameterLen = sizeof(ip);
#define IP_BAD(field, value) do { \
		CK_CPV4_INSERT_PARAMS keep = ip; \
		ip.field = value; \
		assert_ca(CA->CA_Insert(h2, &m), CKR_MECHANISM_PARAM_INVALID); \
		ip = keep; \
	} while (0)
	IP_BAD(sessionIdLength, 0);
	IP_BAD(sessionId, NULL);
	IP_BAD(numberOfObjects, 0);
	IP_BAD(storageType, NULL);
	IP_BAD(objectType, NULL);
	IP_BAD(keyBlobLength, NULL);
	IP_BAD(keyBlob, NULL);
	IP_BAD(result, NULL);
	IP_BAD(objectHandle, NULL);
	IP_BAD(insertionFlags, 4);
	IP_BAD(keyBlobLength, &zero);
#undef IP_BAD
	ptrs[0] = NULL;
	assert_ca(CA->CA_Insert(h2, &m), CKR_MECHANISM_PARAM_INVALID);

	/* Close. */
	assert_ca(CA->CA_MigrationCloseSession(h1, 0, n.sid), CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_MigrationCloseSession(h1, n.sid_len, NULL),
		  CKR_ARGUMENTS_BAD);

	/* Logins: nobody, or the SO, is not enough. */
	assert_rv(P11->C_Logout(h1), CKR_OK);
	pub = h1;
	len = sizeof(out);
	assert_ca(CA->CA_MigrationStartSessionNegotiation(pub, 0, NULL, &step,
							  &len, out),
		  CKR_USER_NOT_LOGGED_IN);
	xp = (CK_CPV4_EXTRACT_PARAMS){ n.sid_len, n.sid, 0, NULL, 0, 1, types,
				       handles, results, lens, ptrs };
	m = (CK_MECHANISM){ CKM_CPV4_EXTRACT, &xp, sizeof(xp) };
	results[0] = 0x5a5a;
	assert_ca(CA->CA_Extract(pub, &m), CKR_USER_NOT_LOGGED_IN);
	assert_res(results, 0, CKR_CLONE_NOT_ATTEMPTED);
	assert_ca(CA->CA_MigrationCloseSession(pub, n.sid_len, n.sid),
		  CKR_USER_NOT_LOGGED_IN);
	so = pub;
	assert_rv(P11->C_Login(so, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN,
			       strlen(SO_PIN)), CKR_OK);
	assert_ca(CA->CA_MigrationStartSessionNegotiation(so, 0, NULL, &step,
							  &len, out),
		  CKR_USER_NOT_LOGGED_IN);
	assert_ca(CA->CA_MigrationCloseSession(so, n.sid_len, n.sid),
		  CKR_USER_NOT_LOGGED_IN);
}

/* ---- CPv3 ------------------------------------------------------------- */

static void test_cpv3_flow(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2(), h1b;
	CK_OBJECT_HANDLE k = mk_aes(h1, "v3-k", true, true, false), c;
	uint8_t twc[MSG_CAP], p1[MSG_CAP], p2[MSG_CAP];
	CK_ULONG twc_len, p1_len, p2_len, q, before;

	(void)state;
	/* 1: the source's TWC (size query, too small, the bytes). */
	q = 0;
	assert_ca(CA->CA_CloneAsSourceInit(h1, NULL, 0, NULL, &q, CK_FALSE),
		  CKR_OK);
	assert_true(q > 0 && q <= MSG_CAP);
	twc_len = q - 1;
	assert_ca(CA->CA_CloneAsSourceInit(h1, NULL, 0, twc, &twc_len, CK_FALSE),
		  CKR_BUFFER_TOO_SMALL);
	assert_int_equal(twc_len, q);
	twc_len = sizeof(twc);
	assert_ca(CA->CA_CloneAsSourceInit(h1, NULL, 0, twc, &twc_len, CK_FALSE),
		  CKR_OK);
	assert_int_equal(twc_len, q);
	/* 2: the target's Part1. */
	q = 0;
	assert_ca(CA->CA_CloneAsTargetInit(h2, twc, twc_len, NULL, 0, CK_FALSE,
					   NULL, &q), CKR_OK);
	assert_true(q > 0 && q <= MSG_CAP);
	p1_len = sizeof(p1);
	assert_ca(CA->CA_CloneAsTargetInit(h2, twc, twc_len, NULL, 0, CK_FALSE,
					   p1, &p1_len), CKR_OK);
	assert_int_equal(p1_len, q);
	/* 3: the source's Part2, with the object. */
	q = 0;
	assert_ca(CA->CA_CloneAsSource(h1, CK_CRYPTOKI_ELEMENT, k, p1, p1_len,
				       CK_FALSE, NULL, &q), CKR_OK);
	assert_true(q > 0 && q <= MSG_CAP);
	p2_len = sizeof(p2);
	assert_ca(CA->CA_CloneAsSource(h1, CK_CRYPTOKI_ELEMENT, k, p1, p1_len,
				       CK_FALSE, p2, &p2_len), CKR_OK);
	assert_int_equal(p2_len, q);
	/* 4: the target makes the clone. */
	before = count_all(h2);
	c = CK_INVALID_HANDLE;
	assert_ca(CA->CA_CloneAsTarget(h2, NULL, 0, p2, p2_len,
				       CK_CRYPTOKI_ELEMENT, 0, CK_FALSE, &c),
		  CKR_OK);
	assert_true(c != CK_INVALID_HANDLE);
	assert_int_equal(count_all(h2), before + 1);
	assert_same_attrs(h1, k, h2, c);
	assert_aes_pair(h1, k, h2, c);
	/* Part2 is accepted once. */
	assert_ca(CA->CA_CloneAsTarget(h2, NULL, 0, p2, p2_len,
				       CK_CRYPTOKI_ELEMENT, 0, CK_FALSE, &c),
		  CKR_OPERATION_NOT_INITIALIZED);
	/* And Part1 was used up by Part2. */
	p2_len = sizeof(p2);
	assert_ca(CA->CA_CloneAsSource(h1, CK_CRYPTOKI_ELEMENT, k, p1, p1_len,
				       CK_FALSE, p2, &p2_len),
		  CKR_OPERATION_NOT_INITIALIZED);
	/* State is per PKCS#11 session. */
	h1b = open_session(S.slot, RW);
	p2_len = sizeof(p2);
	assert_ca(CA->CA_CloneAsSource(h1b, CK_CRYPTOKI_ELEMENT, k, p1, p1_len,
				       CK_FALSE, p2, &p2_len),
		  CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(count_all(h2), before + 1);
}

/* A whole CPv3 exchange of one object; returns the first failure. */
static CK_RV cpv3_once(CK_SESSION_HANDLE hs, CK_SESSION_HANDLE ht,
		       CK_ULONG type, CK_OBJECT_HANDLE obj, uint8_t *p2,
		       CK_ULONG *p2_len)
{
	uint8_t twc[MSG_CAP], p1[MSG_CAP];
	CK_ULONG twc_len = sizeof(twc), p1_len = sizeof(p1);
	CK_RV rv;

	rv = CA->CA_CloneAsSourceInit(hs, NULL, 0, twc, &twc_len, CK_FALSE);
	if (rv == CKR_OK)
		rv = CA->CA_CloneAsTargetInit(ht, twc, twc_len, NULL, 0,
					      CK_FALSE, p1, &p1_len);
	*p2_len = MSG_CAP;
	if (rv == CKR_OK)
		rv = CA->CA_CloneAsSource(hs, type, obj, p1, p1_len, CK_FALSE,
					  p2, p2_len);
	return rv;
}

static void test_cpv3_errors(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2();
	CK_OBJECT_HANDLE k = mk_aes(h1, "v3e-k", true, true, false), c;
	uint8_t twc[MSG_CAP], p1[MSG_CAP], p2[MSG_CAP], kev[4] = { 1 };
	CK_ULONG twc_len, p1_len = sizeof(p1), p2_len = sizeof(p2), before;

	(void)state;
	memset(p1, 0, sizeof(p1));
	memset(p2, 0, sizeof(p2));
	/* NULL pointers. */
	assert_ca(CA->CA_CloneAsTargetInit(h2, NULL, 100, NULL, 0, CK_FALSE, p1,
					   &p1_len), CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_CloneAsTargetInit(h2, p1, 100, NULL, 0, CK_FALSE, p1,
					   NULL), CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_CloneAsSource(h1, CK_CRYPTOKI_ELEMENT, k, NULL, 100,
				       CK_FALSE, p2, &p2_len), CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_CloneAsSource(h1, CK_CRYPTOKI_ELEMENT, k, p1, 100,
				       CK_FALSE, p2, NULL), CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_CloneAsTarget(h2, NULL, 0, NULL, 100,
				       CK_CRYPTOKI_ELEMENT, 0, CK_FALSE, &c),
		  CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_CloneAsTarget(h2, NULL, 0, p2, 100,
				       CK_CRYPTOKI_ELEMENT, 0, CK_FALSE, NULL),
		  CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_CloneAsSourceInit(0, NULL, 0, NULL, &p1_len, CK_FALSE),
		  CKR_SESSION_HANDLE_INVALID);
	/* Without init. */
	p2_len = sizeof(p2);
	assert_ca(CA->CA_CloneAsSource(h1, CK_CRYPTOKI_ELEMENT, k, p1, 100,
				       CK_FALSE, p2, &p2_len),
		  CKR_OPERATION_NOT_INITIALIZED);
	assert_ca(CA->CA_CloneAsTarget(h2, NULL, 0, p2, 100, CK_CRYPTOKI_ELEMENT,
				       0, CK_FALSE, &c),
		  CKR_OPERATION_NOT_INITIALIZED);
	/* pInParameter and KEV must be empty. */
	twc_len = sizeof(twc);
	assert_ca(CA->CA_CloneAsSourceInit(h1, kev, sizeof(kev), twc, &twc_len,
					   CK_FALSE), CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_CloneAsSourceInit(h1, NULL, 0, twc, NULL, CK_FALSE),
		  CKR_ARGUMENTS_BAD);
	twc_len = sizeof(twc);
	assert_ca(CA->CA_CloneAsSourceInit(h1, NULL, 0, twc, &twc_len, CK_FALSE),
		  CKR_OK);
	p1_len = sizeof(p1);
	assert_ca(CA->CA_CloneAsTargetInit(h2, twc, twc_len, kev, sizeof(kev),
					   CK_FALSE, p1, &p1_len),
		  CKR_ARGUMENTS_BAD);
	/* bReplicate must be the same in every call. */
	p1_len = sizeof(p1);
	assert_ca(CA->CA_CloneAsTargetInit(h2, twc, twc_len, NULL, 0, CK_TRUE,
					   p1, &p1_len), CKR_ARGUMENTS_BAD);
	p1_len = sizeof(p1);
	assert_ca(CA->CA_CloneAsTargetInit(h2, twc, twc_len, NULL, 0, CK_FALSE,
					   p1, &p1_len), CKR_OK);
	p2_len = sizeof(p2);
	assert_ca(CA->CA_CloneAsSource(h1, CK_CRYPTOKI_ELEMENT, k, p1, p1_len,
				       CK_TRUE, p2, &p2_len), CKR_ARGUMENTS_BAD);
	/* A handle that is none, an element type that is none. */
	p2_len = sizeof(p2);
	assert_ca(cpv3_once(h1, h2, 7, k, p2, &p2_len), CKR_OBJECT_TYPE_INVALID);
	p2_len = sizeof(p2);
	assert_ca(cpv3_once(h1, h2, CK_CRYPTOKI_ELEMENT, 0xdead0, p2, &p2_len),
		  CKR_OBJECT_HANDLE_INVALID);
	/* A tampered Part2: refused, and it consumed the exchange. */
	before = count_all(h2);
	assert_ca(cpv3_once(h1, h2, CK_CRYPTOKI_ELEMENT, k, p2, &p2_len), CKR_OK);
	p2[p2_len - 1] ^= 1;
	assert_ca(CA->CA_CloneAsTarget(h2, NULL, 0, p2, p2_len,
				       CK_CRYPTOKI_ELEMENT, 0, CK_FALSE, &c),
		  CKR_ENCRYPTED_DATA_INVALID);
	p2[p2_len - 1] ^= 1;
	assert_ca(CA->CA_CloneAsTarget(h2, NULL, 0, p2, p2_len,
				       CK_CRYPTOKI_ELEMENT, 0, CK_FALSE, &c),
		  CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(count_all(h2), before);
	/* KEV at the last step. */
	assert_ca(cpv3_once(h1, h2, CK_CRYPTOKI_ELEMENT, k, p2, &p2_len), CKR_OK);
	assert_ca(CA->CA_CloneAsTarget(h2, kev, sizeof(kev), p2, p2_len,
				       CK_CRYPTOKI_ELEMENT, 0, CK_FALSE, &c),
		  CKR_ARGUMENTS_BAD);
	/* The SMK as a parameter object. */
	assert_ca(cpv3_once(h1, h2, CK_PARAM_ELEMENT, PHSM_PARAM_SMK, p2,
			    &p2_len), CKR_OK);
	c = 0x77;
	assert_ca(CA->CA_CloneAsTarget(h2, NULL, 0, p2, p2_len, CK_PARAM_ELEMENT,
				       PHSM_PARAM_SMK, CK_FALSE, &c), CKR_OK);
	assert_int_equal(count_all(h2), before);
	/* Not logged in. */
	assert_rv(P11->C_Logout(h1), CKR_OK);
	twc_len = sizeof(twc);
	assert_ca(CA->CA_CloneAsSourceInit(h1, NULL, 0, twc, &twc_len, CK_FALSE),
		  CKR_USER_NOT_LOGGED_IN);
	assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, k, &c),
		  CKR_USER_NOT_LOGGED_IN);
}

static void test_clone_object(void **state)
{
	CK_SESSION_HANDLE h1 = u1(), h2 = u2();
	CK_OBJECT_HANDLE k = mk_aes(h1, "co-k", true, true, false), c;
	CK_OBJECT_HANDLE pub, priv;

	(void)state;
	c = CK_INVALID_HANDLE;
	/* Note the order: the target's session first. */
	assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, k, &c), CKR_OK);
	assert_true(c != CK_INVALID_HANDLE);
	assert_same_attrs(h1, k, h2, c);
	assert_aes_pair(h1, k, h2, c);
	gen_ec(h1, OID_P384, sizeof(OID_P384), &pub, &priv);
	assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, priv, &c),
		  CKR_OK);
	assert_same_attrs(h1, priv, h2, c);
	assert_sign_pair(h2, c, h1, pub, CKM_ECDSA_SHA256);
	assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, k, NULL),
		  CKR_ARGUMENTS_BAD);
	assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, 0xdead0, &c),
		  CKR_OBJECT_HANDLE_INVALID);
	assert_ca(CA->CA_CloneObject(h2, 0, CK_CRYPTOKI_ELEMENT, k, &c),
		  CKR_SESSION_HANDLE_INVALID);
}

/* ---- the protocol policies -------------------------------------------- */

static CK_RV migrate_one(CK_SESSION_HANDLE hs, CK_SESSION_HANDLE ht,
			 CK_OBJECT_HANDLE o, CK_OBJECT_MIGRATION_DATA *md)
{
	*md = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, o, 0x77, 0x5a5a };
	return CA->CA_MigrateKeys(hs, ht, 0, 1, md);
}

/* CPv4 disabled on one side: CA_MigrateKeys goes over CPv3. */
static void test_policy_cpv4_off(void **state)
{
	CK_SESSION_HANDLE h1, h2;
	CK_OBJECT_HANDLE k;
	CK_OBJECT_MIGRATION_DATA md;
	struct neg n;
	struct blobs b;
	CK_ULONG step, status;

	(void)state;
	set_policy(S.slot2, SO2_PIN, CK_PHSM_POLICY_CPV4_DISABLED, 1);
	h1 = u1();
	h2 = u2();
	k = mk_aes(h1, "p4-k", true, true, false);
	assert_ca(migrate_one(h1, h2, k, &md), CKR_OK);
	assert_ca(md.rv, CKR_OK);
	assert_aes_pair(h1, k, h2, md.targetHandle);
	assert_ca(migrate_one(h2, h1, md.targetHandle, &md), CKR_OK);
	assert_ca(md.rv, CKR_OK);
	/* Each low-level CPv4 call on that partition is refused. */
	memset(&n, 0, sizeof(n));
	assert_ca(start(h2, &n), CKR_PROTOCOL_DISABLED);
	assert_ca(start(h1, &n), CKR_OK);
	assert_ca(cont(h2, 1, n.m1, n.l1, &n, &step, n.m2, &n.l2, &status),
		  CKR_PROTOCOL_DISABLED);
	memset(n.sid, 1, 16);
	n.sid_len = 16;
	blobs_init(&b, 1, NULL, &k);
	assert_ca(extract(h2, &n, false, 0, &b), CKR_PROTOCOL_DISABLED);
	assert_res(b.results, 0, CKR_CLONE_NOT_ATTEMPTED);
	{
		CK_ULONG storage = 0, type = 0, len = 200, out;
		CK_BYTE_PTR ptr = b.mem;
		CK_RV r;

		assert_ca(insert(h2, &n, 0, 1, &storage, &type, &len, &ptr, &r,
				 &out), CKR_PROTOCOL_DISABLED);
		assert_res(&r, 0, CKR_CLONE_NOT_ATTEMPTED);
	}
	/* Close still works, to clean up: here, nothing to close. */
	assert_ca(CA->CA_MigrationCloseSession(h2, n.sid_len, n.sid),
		  CKR_SESSION_ID_INVALID);
	blobs_free(&b);
	/* CA_CloneObject is CPv3 anyway. */
	assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, k,
				     &md.targetHandle), CKR_OK);
}

/* CPv3 disabled on one side: CA_CloneObject goes over CPv4. */
static void test_policy_cpv3_off(void **state)
{
	CK_SESSION_HANDLE h1, h2;
	CK_OBJECT_HANDLE k, c = CK_INVALID_HANDLE;
	CK_OBJECT_MIGRATION_DATA md;
	uint8_t twc[MSG_CAP], p1[MSG_CAP], p2[MSG_CAP];
	CK_ULONG len;

	(void)state;
	memset(p1, 0, sizeof(p1));
	memset(p2, 0, sizeof(p2));
	set_policy(S.slot, SO_PIN, CK_PHSM_POLICY_CPV3_DISABLED, 1);
	h1 = u1();
	h2 = u2();
	k = mk_aes(h1, "p3-k", true, true, false);
	assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, k, &c), CKR_OK);
	assert_aes_pair(h1, k, h2, c);
	assert_ca(migrate_one(h1, h2, k, &md), CKR_OK);
	assert_ca(md.rv, CKR_OK);
	/* Each low-level CPv3 call on that partition is refused. */
	len = sizeof(twc);
	assert_ca(CA->CA_CloneAsSourceInit(h1, NULL, 0, twc, &len, CK_FALSE),
		  CKR_PROTOCOL_DISABLED);
	len = sizeof(twc);
	assert_ca(CA->CA_CloneAsSourceInit(h2, NULL, 0, twc, &len, CK_FALSE),
		  CKR_OK);
	len = sizeof(p1);
	assert_ca(CA->CA_CloneAsTargetInit(h1, twc, sizeof(twc) / 8, NULL, 0,
					   CK_FALSE, p1, &len),
		  CKR_PROTOCOL_DISABLED);
	len = sizeof(p2);
	assert_ca(CA->CA_CloneAsSource(h1, CK_CRYPTOKI_ELEMENT, k, p1, 100,
				       CK_FALSE, p2, &len),
		  CKR_PROTOCOL_DISABLED);
	assert_ca(CA->CA_CloneAsTarget(h1, NULL, 0, p2, 100, CK_CRYPTOKI_ELEMENT,
				       0, CK_FALSE, &c), CKR_PROTOCOL_DISABLED);
}

/* Both protocols off (on either side): nothing attempted. */
static void test_policy_both_off(void **state)
{
	CK_SESSION_HANDLE h1, h2;
	CK_OBJECT_HANDLE k, c = 0x77;
	CK_OBJECT_MIGRATION_DATA md[2];

	(void)state;
	set_policy(S.slot, SO_PIN, CK_PHSM_POLICY_CPV3_DISABLED, 1);
	set_policy(S.slot2, SO2_PIN, CK_PHSM_POLICY_CPV4_DISABLED, 1);
	h1 = u1();
	h2 = u2();
	k = mk_aes(h1, "pb-k", true, true, false);
	md[0] = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, k, 0x77, 0x5a5a };
	md[1] = md[0];
	assert_ca(CA->CA_MigrateKeys(h1, h2, CKF_CONTINUE_ON_ERR, 2, md),
		  CKR_PROTOCOL_DISABLED);
	assert_ca(md[0].rv, CKR_CLONE_NOT_ATTEMPTED);
	assert_ca(md[1].rv, CKR_CLONE_NOT_ATTEMPTED);
	assert_int_equal(md[0].targetHandle, CK_INVALID_HANDLE);
	assert_ca(CA->CA_MigrateKeys(h2, h1, 0, 1, md), CKR_PROTOCOL_DISABLED);
	assert_ca(CA->CA_CloneObject(h2, h1, CK_CRYPTOKI_ELEMENT, k, &c),
		  CKR_PROTOCOL_DISABLED);
	assert_int_equal(find_label(h2, "pb-k"), 0);
}

/* ---- two cards -------------------------------------------------------- */

/*
 * When the library sees a partition of another card (the VM has two
 * cards), CA_MigrateKeys runs between the suite's token and that one;
 * otherwise the test is skipped (tests/clone/clone.sh covers two cards).
 */
static void test_migrate_cross_card(void **state)
{
	CK_SLOT_ID slots[64], other = (CK_SLOT_ID)-1;
	CK_ULONG count = ARRAY_SIZE(slots);
	CK_UTF8CHAR mine[32];
	CK_SESSION_HANDLE h1, hx;
	CK_OBJECT_HANDLE k, pub, priv;
	CK_OBJECT_MIGRATION_DATA md[3];

	(void)state;
	assert_rv(P11->C_GetSlotList(CK_TRUE, slots, &count), CKR_OK);
	/*
	 * The last partition of another card that is free (not initialised)
	 * or ours from an earlier run, never a card's first partition: in
	 * the VM the kselftests that run after the suite initialise card
	 * 1's first partition with a PIN of their own, and its second one
	 * is theirs too (run-vm.sh gives card 1 a third one for us).
	 */
	pad_label(mine, "phsm-clone-x");
	for (CK_ULONG i = 0; i < count && i < ARRAY_SIZE(slots); i++) {
		CK_TOKEN_INFO ti;

		if (slots[i] / 16 == S.slot / 16 || slots[i] % 16 == 0 ||
		    P11->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED) ||
		    !memcmp(ti.label, mine, sizeof(mine)))
			other = slots[i];
	}
	if (other == (CK_SLOT_ID)-1) {
		skip();
		return;
	}
	assert_rv(init_token_and_pin(other, "so-pin-x", NULL, "phsm-clone-x",
				     "user-pin-x", NULL), CKR_OK);
	add_domain(other, "so-pin-x", KCV_A, CK_TRUE);
	h1 = u1();
	hx = open_session(other, RW);
	assert_rv(P11->C_Login(hx, CKU_USER, (CK_UTF8CHAR_PTR)"user-pin-x", 10),
		  CKR_OK);
	k = mk_aes(h1, "cc-k", true, true, false);
	gen_ec(h1, OID_P256, sizeof(OID_P256), &pub, &priv);
	md[0] = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, k, 0x77, 0x5a5a };
	md[1] = (CK_OBJECT_MIGRATION_DATA){ CK_CRYPTOKI_ELEMENT, priv, 0, 0 };
	md[2] = (CK_OBJECT_MIGRATION_DATA){ CK_PARAM_ELEMENT, PHSM_PARAM_SMK, 0, 0 };
	assert_ca(CA->CA_MigrateKeys(h1, hx, 0, 3, md), CKR_OK);
	assert_ca(md[0].rv, CKR_OK);
	assert_ca(md[1].rv, CKR_OK);
	assert_ca(md[2].rv, CKR_OK);
	assert_same_attrs(h1, k, hx, md[0].targetHandle);
	assert_same_attrs(h1, priv, hx, md[1].targetHandle);
	assert_aes_pair(h1, k, hx, md[0].targetHandle);
	assert_sign_pair(hx, md[1].targetHandle, h1, pub, CKM_ECDSA_SHA256);
	/* And back. */
	assert_ca(migrate_one(hx, h1, md[0].targetHandle, &md[0]), CKR_OK);
	assert_ca(md[0].rv, CKR_OK);
	assert_int_equal(find_label(h1, "cc-k"), 2);
	/* CA_CloneObject across the cards. */
	assert_ca(CA->CA_CloneObject(hx, h1, CK_CRYPTOKI_ELEMENT, k,
				     &md[0].targetHandle), CKR_OK);
	assert_aes_pair(h1, k, hx, md[0].targetHandle);
}

/* Last: both tokens as the suite's set-up left them (no domain). */
static void test_clone_restore(void **state)
{
	(void)state;
	fresh_pair(NULL, NULL);
}

const struct CMUnitTest ca_clone_tests[] = {
	P11_TEST(test_clone_interface),
	CLONE_TEST(test_migrate_kinds),
	CLONE_TEST(test_migrate_results),
	CLONE_TEST(test_migrate_args),
	CLONE_TEST(test_migrate_domains),
	CLONE_TEST(test_cpv4_steps),
	CLONE_TEST(test_cpv4_initiator_target),
	CLONE_TEST(test_cpv4_same_partition),
	CLONE_TEST(test_cpv4_tampered_steps),
	CLONE_TEST(test_extract_results),
	CLONE_TEST(test_insert_results),
	CLONE_TEST(test_insert_tampered_bytes),
	CLONE_TEST(test_batches),
	CLONE_TEST(test_cpv4_init_token_drops),
	CLONE_TEST(test_cpv4_args),
	CLONE_TEST(test_cpv3_flow),
	CLONE_TEST(test_cpv3_errors),
	CLONE_TEST(test_clone_object),
	CLONE_TEST(test_policy_cpv4_off),
	CLONE_TEST(test_policy_cpv3_off),
	CLONE_TEST(test_policy_both_off),
	CLONE_TEST(test_migrate_cross_card),
	P11_TEST(test_clone_restore),
};
SUITE_COUNT(ca_clone);
