// SPDX-License-Identifier: MIT
/*
 * Digest operations at their edges (PKCS#11 v3.0 5.12).  phsm's library
 * computes single-part digests itself unless PHSM_DIGEST=card
 * (userlib/digest.c); tests/run.sh runs this group in both modes, and
 * every answer here must be the card's in both: the session checks,
 * the operation's lifetime, CKR_OPERATION_ACTIVE whichever side holds
 * the operation, and the hand-over to the card of a digest the library
 * holds when a call needs the card (update, C_DigestKey, dual updates).
 *
 * The names start with test_digest so that "test_digest*" selects them
 * together with crypto_sym.c's digest tests.
 */
#include "suite.h"

#include <pthread.h>
#include <string.h>

static const struct { CK_MECHANISM_TYPE m; const char *md; } mds[] = {
	{ CKM_SHA_1, "SHA1" }, { CKM_SHA224, "SHA224" },
	{ CKM_SHA256, "SHA256" }, { CKM_SHA384, "SHA384" },
	{ CKM_SHA512, "SHA512" }, { CKM_SHA3_224, "SHA3-224" },
	{ CKM_SHA3_256, "SHA3-256" }, { CKM_SHA3_384, "SHA3-384" },
	{ CKM_SHA3_512, "SHA3-512" },
};

static CK_MECHANISM sha256 = { CKM_SHA256, NULL, 0 };

static size_t want_digest(const char *md, const void *in, size_t len,
			  uint8_t *out)
{
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(in, len, out, &n,
				    EVP_get_digestbyname(md), NULL), 1);
	return n;
}

/* C_Digest of @len bytes, the digest active, must give OpenSSL's. */
static void check_digest(CK_SESSION_HANDLE h, const char *md,
			 const uint8_t *in, CK_ULONG len)
{
	uint8_t want[64], got[64];
	size_t wl = want_digest(md, in, len, want);
	CK_ULONG n = sizeof(got);

	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)in, len, got, &n), CKR_OK);
	assert_int_equal(n, wl);
	assert_memory_equal(got, want, wl);
}

/* The same after a C_DigestInit. */
static void check_oneshot(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE mech,
			  const char *md, const uint8_t *in, CK_ULONG len)
{
	CK_MECHANISM m = { mech, NULL, 0 };

	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	check_digest(h, md, in, len);
}

static void test_digest_results(void **state)
{
	static const CK_ULONG sizes[] = { 0, 1, 55, 64, 4096, 100000 };
	CK_SESSION_HANDLE h = open_ro();
	uint8_t *data = malloc(100000);

	(void)state;
	assert_non_null(data);
	fill_pattern(data, 100000, 40);
	for (size_t i = 0; i < ARRAY_SIZE(mds); i++)
		for (size_t j = 0; j < ARRAY_SIZE(sizes); j++)
			check_oneshot(h, mds[i].m, mds[i].md, data, sizes[j]);
	/* pParameter without a length is no parameter. */
	{
		CK_MECHANISM m = { CKM_SHA256, data, 0 };
		uint8_t want[32], got[32];
		CK_ULONG n = sizeof(got);

		want_digest("SHA256", "abc", 3, want);
		assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
		assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"abc", 3, got, &n), CKR_OK);
		assert_memory_equal(got, want, 32);
	}
	free(data);
}

/* Size query and too-small buffer keep the operation; the rest ends it. */
static void test_digest_output_rules(void **state)
{
	CK_SESSION_HANDLE h = open_ro();
	CK_MECHANISM m = { CKM_SHA384, NULL, 0 };
	uint8_t want[48], got[64];
	CK_ULONG n;

	(void)state;
	want_digest("SHA384", "xyz", 3, want);
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	n = 0;
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"xyz", 3, NULL, &n), CKR_OK);
	assert_int_equal(n, 48);
	n = 47;
	memset(got, 0xa5, sizeof(got));
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"xyz", 3, got, &n),
		  CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 48);
	assert_int_equal(got[0], 0xa5);
	/* Still active. */
	assert_rv(P11->C_DigestInit(h, &m), CKR_OPERATION_ACTIVE);
	n = 0;
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"xyz", 3, NULL, &n), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"xyz", 3, got, &n), CKR_OK);
	assert_int_equal(n, 48);
	assert_memory_equal(got, want, 48);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"xyz", 3, got, &n),
		  CKR_OPERATION_NOT_INITIALIZED);

	/* Refused arguments end the operation. */
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, NULL, 3, got, &n), CKR_ARGUMENTS_BAD);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"xyz", 3, got, &n),
		  CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"xyz", 3, got, NULL),
		  CKR_ARGUMENTS_BAD);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"xyz", 3, got, &n),
		  CKR_OPERATION_NOT_INITIALIZED);
	/* And a new one starts. */
	assert_rv(P11->C_DigestInit(h, &m), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"xyz", 3, got, &n), CKR_OK);
	assert_memory_equal(got, want, 48);
}

static void test_digest_mechanisms(void **state)
{
	CK_SESSION_HANDLE h = open_ro();
	uint8_t param[4] = { 0 }, got[32];
	CK_MECHANISM with_param = { CKM_SHA256, param, sizeof(param) };
	CK_MECHANISM null_param = { CKM_SHA256, NULL, 4 };
	CK_MECHANISM md5 = { CKM_MD5, NULL, 0 };
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 };
	CK_MECHANISM hmac = { CKM_SHA256_HMAC, NULL, 0 };
	CK_ULONG n;

	(void)state;
	assert_rv(P11->C_DigestInit(h, NULL), CKR_OK);	/* nothing to end */
	assert_rv(P11->C_DigestInit(h, &with_param), CKR_MECHANISM_PARAM_INVALID);
	assert_rv(P11->C_DigestInit(h, &null_param), CKR_MECHANISM_PARAM_INVALID);
	assert_rv(P11->C_DigestInit(h, &md5), CKR_MECHANISM_INVALID);
	assert_rv(P11->C_DigestInit(h, &ecb), CKR_MECHANISM_INVALID);
	assert_rv(P11->C_DigestInit(h, &hmac), CKR_MECHANISM_INVALID);
	/* None of that started anything. */
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"a", 1, got, &n),
		  CKR_OPERATION_NOT_INITIALIZED);

	/* With a digest active, the card checks the mechanism first, then
	 * whether one is active; the active one stays. */
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestInit(h, &with_param), CKR_MECHANISM_PARAM_INVALID);
	assert_rv(P11->C_DigestInit(h, &md5), CKR_MECHANISM_INVALID);
	assert_rv(P11->C_DigestInit(h, &ecb), CKR_OPERATION_ACTIVE);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OPERATION_ACTIVE);
	check_digest(h, "SHA256", (const uint8_t *)"abc", 3);
	/* The hand-over left nothing behind. */
	check_oneshot(h, CKM_SHA256, "SHA256", (const uint8_t *)"abc", 3);
}

static void test_digest_sessions(void **state)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_SESSION_HANDLE h = open_ro(), h2;
	uint8_t got[32];
	CK_ULONG n = sizeof(got);

	(void)state;
	assert_rv(P11->C_DigestInit(CK_INVALID_HANDLE, &sha256),
		  CKR_SESSION_HANDLE_INVALID);
	assert_rv(P11->C_DigestInit(h + 1000, &sha256),
		  CKR_SESSION_HANDLE_INVALID);
	assert_rv(P11->C_Digest(h + 1000, (CK_BYTE_PTR)"a", 1, got, &n),
		  CKR_SESSION_HANDLE_INVALID);

	/* A closed session, with and without a digest active. */
	assert_rv(P11->C_CloseSession(h), CKR_OK);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_SESSION_HANDLE_INVALID);
	h = open_ro();
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_CloseSession(h), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"a", 1, got, &n),
		  CKR_SESSION_HANDLE_INVALID);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_SESSION_HANDLE_INVALID);

	/* C_CloseAllSessions, and a session of the other slot survives. */
	h = open_ro();
	h2 = open_session(S.slot2, CKF_SERIAL_SESSION);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestInit(h2, &sha256), CKR_OK);
	assert_rv(P11->C_CloseAllSessions(S.slot), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"a", 1, got, &n),
		  CKR_SESSION_HANDLE_INVALID);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_SESSION_HANDLE_INVALID);
	check_digest(h2, "SHA256", (const uint8_t *)"a", 1);
	check_oneshot(h2, CKM_SHA256, "SHA256", (const uint8_t *)"b", 1);

	/* Handles of before C_Finalize are nothing after C_Initialize. */
	h = open_ro();
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_CRYPTOKI_NOT_INITIALIZED);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"a", 1, got, &n),
		  CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_rv(P11->C_Initialize(&args), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"a", 1, got, &n),
		  CKR_SESSION_HANDLE_INVALID);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_SESSION_HANDLE_INVALID);
}

/* Multi-part on top of C_DigestInit: the card's rules throughout. */
static void test_digest_multipart(void **state)
{
	CK_SESSION_HANDLE h = open_ro();
	uint8_t want[32], got[32];
	CK_ULONG n;

	(void)state;
	want_digest("SHA256", "abcdef", 6, want);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"abc", 3), CKR_OK);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OPERATION_ACTIVE);
	/* C_Digest cannot end a multi-part operation; it stays. */
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"x", 1, got, &n),
		  CKR_OPERATION_ACTIVE);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"def", 3), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
	assert_int_equal(n, 32);
	assert_memory_equal(got, want, 32);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"a", 1),
		  CKR_OPERATION_NOT_INITIALIZED);
	/* And single-part again afterwards. */
	check_oneshot(h, CKM_SHA256, "SHA256", (const uint8_t *)"abcdef", 6);

	/* C_DigestFinal with nothing before it: the empty message. */
	want_digest("SHA256", "", 0, want);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	n = 0;
	assert_rv(P11->C_DigestFinal(h, NULL, &n), CKR_OK);
	assert_int_equal(n, 32);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
	assert_memory_equal(got, want, 32);

	/* A refused update ends it. */
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestUpdate(h, NULL, 3), CKR_ARGUMENTS_BAD);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OPERATION_NOT_INITIALIZED);
	check_oneshot(h, CKM_SHA256, "SHA256", (const uint8_t *)"", 0);
}

static void test_digest_cancel(void **state)
{
	CK_SESSION_HANDLE h = open_ro();
	uint8_t got[32];
	CK_ULONG n;

	(void)state;
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_SessionCancel(h, CKF_ENCRYPT | CKF_SIGN), CKR_OK);
	check_digest(h, "SHA256", NULL, 0);		/* still there */

	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_SessionCancel(h, CKF_DIGEST), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"a", 1, got, &n),
		  CKR_OPERATION_NOT_INITIALIZED);

	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestInit(h, NULL), CKR_OK);		/* 5.12.1 */
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"a", 1, got, &n),
		  CKR_OPERATION_NOT_INITIALIZED);

	/* The same once the card holds it. */
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"a", 1), CKR_OK);
	assert_rv(P11->C_SessionCancel(h, CKF_DIGEST), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OPERATION_NOT_INITIALIZED);
	check_oneshot(h, CKM_SHA256, "SHA256", (const uint8_t *)"a", 1);

	assert_rv(P11->C_SessionCancel(h + 1000, CKF_DIGEST),
		  CKR_SESSION_HANDLE_INVALID);
}

/* C_DigestKey needs the card: a digest the library holds moves there. */
static void test_digest_key_hand_over(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	uint8_t key[32], msg[32 + 4], want[32], got[32];
	CK_OBJECT_HANDLE k, pub = CK_INVALID_HANDLE, priv;
	CK_ULONG n;

	(void)state;
	fill_pattern(key, sizeof(key), 41);
	k = create_secret(h, CKK_GENERIC_SECRET, key, sizeof(key), NULL);
	memcpy(msg, key, 32);
	memcpy(msg + 32, "tail", 4);

	want_digest("SHA256", key, 32, want);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestKey(h, k), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
	assert_memory_equal(got, want, 32);

	want_digest("SHA256", msg, sizeof(msg), want);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestKey(h, k), CKR_OK);
	/* After C_DigestKey, C_Digest cannot end it. */
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"x", 1, got, &n),
		  CKR_OPERATION_ACTIVE);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"tail", 4), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
	assert_memory_equal(got, want, 32);

	/* The card's refusals, with the card's word on the operation. */
	assert_rv(P11->C_DigestKey(h, k), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestKey(h, CK_INVALID_HANDLE), CKR_KEY_HANDLE_INVALID);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OPERATION_NOT_INITIALIZED);
	gen_ec(h, OID_P256, sizeof(OID_P256), &pub, &priv);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	assert_rv(P11->C_DigestKey(h, pub), CKR_KEY_INDIGESTIBLE);
	/* phsm's card ends the operation on that; the library agrees. */
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, (CK_BYTE_PTR)"x", 1, got, &n),
		  CKR_OPERATION_NOT_INITIALIZED);
	check_oneshot(h, CKM_SHA256, "SHA256", (const uint8_t *)"ok", 2);
}

/* The dual-function updates feed the digest on the card. */
static void test_digest_dual(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 };
	uint8_t key[16], data[32], enc[32], enc2[32], want[32], got[32];
	CK_ULONG n, m;
	CK_OBJECT_HANDLE k;
	struct tmpl t;

	(void)state;
	fill_pattern(key, sizeof(key), 42);
	fill_pattern(data, sizeof(data), 43);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_ENCRYPT, true);
	tmpl_bool(&t, CKA_DECRYPT, true);
	k = create_secret(h, CKK_AES, key, sizeof(key), &t);
	want_digest("SHA256", data, sizeof(data), want);

	assert_rv(P11->C_EncryptInit(h, &ecb, k), CKR_OK);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	n = sizeof(enc);
	assert_rv(P11->C_DigestEncryptUpdate(h, data, sizeof(data), enc, &n),
		  CKR_OK);
	assert_int_equal(n, sizeof(data));
	m = 0;
	assert_rv(P11->C_EncryptFinal(h, NULL, &m), CKR_OK);
	m = sizeof(enc2);
	assert_rv(P11->C_EncryptFinal(h, enc2, &m), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
	assert_memory_equal(got, want, 32);

	/* Decrypt and digest the plaintext. */
	assert_rv(P11->C_DecryptInit(h, &ecb, k), CKR_OK);
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_DecryptDigestUpdate(h, enc, sizeof(enc), enc2, &n),
		  CKR_OK);
	assert_memory_equal(enc2, data, sizeof(data));
	m = sizeof(got);
	assert_rv(P11->C_DecryptFinal(h, got, &m), CKR_OK);
	n = sizeof(got);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
	assert_memory_equal(got, want, 32);

	/* Without the encryption the digest is untouched. */
	assert_rv(P11->C_DigestInit(h, &sha256), CKR_OK);
	n = sizeof(enc);
	assert_rv(P11->C_DigestEncryptUpdate(h, data, sizeof(data), enc, &n),
		  CKR_OPERATION_NOT_INITIALIZED);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, data, sizeof(data), got, &n), CKR_OK);
	assert_memory_equal(got, want, 32);
	n = sizeof(got);
	assert_rv(P11->C_Digest(h, data, 1, got, &n),
		  CKR_OPERATION_NOT_INITIALIZED);
}

/* Threads on sessions of their own, and one session shared in turns. */
#define DG_THREADS	4
#define DG_ROUNDS	300

struct dg_worker {
	pthread_t t;
	CK_SESSION_HANDLE h;
	unsigned int seed;
	int bad;
};

static void *dg_loop(void *arg)
{
	struct dg_worker *w = arg;
	uint8_t data[300], want[32], got[32];
	unsigned int n = 0;
	CK_ULONG len;

	for (int i = 0; i < DG_ROUNDS && !w->bad; i++) {
		size_t dl = (w->seed + (unsigned int)i) % sizeof(data);

		fill_pattern(data, sizeof(data), w->seed + (unsigned int)i);
		EVP_Digest(data, dl, want, &n, EVP_sha256(), NULL);
		len = sizeof(got);
		if (P11->C_DigestInit(w->h, &sha256) != CKR_OK ||
		    (i % 3 == 0 &&
		     P11->C_DigestUpdate(w->h, data, dl) != CKR_OK) ||
		    (i % 3 == 0 ?
		     P11->C_DigestFinal(w->h, got, &len) :
		     P11->C_Digest(w->h, data, dl, got, &len)) != CKR_OK ||
		    len != 32 || memcmp(got, want, 32))
			w->bad = i + 1;
	}
	return NULL;
}

static void test_digest_threads(void **state)
{
	struct dg_worker w[DG_THREADS];

	(void)state;
	for (int i = 0; i < DG_THREADS; i++) {
		w[i].h = open_ro();
		w[i].seed = 100u + (unsigned int)i;
		w[i].bad = 0;
		assert_int_equal(pthread_create(&w[i].t, NULL, dg_loop, &w[i]), 0);
	}
	for (int i = 0; i < DG_THREADS; i++) {
		assert_int_equal(pthread_join(w[i].t, NULL), 0);
		assert_int_equal(w[i].bad, 0);
	}
}

/* More sessions than the library keeps track of work all the same. */
static void test_digest_many_sessions(void **state)
{
	enum { N = 200 };
	CK_SESSION_HANDLE *h = calloc(N, sizeof(*h));

	(void)state;
	assert_non_null(h);
	for (int i = 0; i < N; i++) {
		h[i] = open_ro();
		assert_rv(P11->C_DigestInit(h[i], &sha256), CKR_OK);
	}
	for (int i = 0; i < N; i++) {
		assert_rv(P11->C_DigestInit(h[i], &sha256), CKR_OPERATION_ACTIVE);
		check_digest(h[i], "SHA256", (const uint8_t *)"m", 1);
	}
	for (int i = 0; i < N; i += 2)
		assert_rv(P11->C_CloseSession(h[i]), CKR_OK);
	for (int i = 0; i < N; i++) {
		CK_RV rv = P11->C_DigestInit(h[i], &sha256);

		assert_rv(rv, i % 2 ? CKR_OK : CKR_SESSION_HANDLE_INVALID);
	}
	assert_rv(P11->C_CloseAllSessions(S.slot), CKR_OK);
	free(h);
}

const struct CMUnitTest digest_tests[] = {
	P11_TEST(test_digest_results),
	P11_TEST(test_digest_output_rules),
	P11_TEST(test_digest_mechanisms),
	P11_TEST(test_digest_sessions),
	P11_TEST(test_digest_multipart),
	P11_TEST(test_digest_cancel),
	P11_TEST(test_digest_key_hand_over),
	P11_TEST(test_digest_dual),
	P11_TEST(test_digest_threads),
	P11_TEST(test_digest_many_sessions),
};
SUITE_COUNT(digest);
