// SPDX-License-Identifier: MIT
/*
 * Threads and fork.  Several threads with their own sessions sign and
 * verify at once; one session is used from two threads; after fork() the
 * child sees an uninitialised library until it calls C_Initialize, cannot
 * use the parent's handles, and the parent's session survives the child.
 *
 * cmocka's assertions must not run outside the test's own thread or
 * process, so workers count failures and report them back.
 */
#include "suite.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * A forked child that exits without C_Finalize leaves the library's
 * memory behind by design; LeakSanitizer (make SAN=1) need not say so.
 */
static volatile int exiting_child;

__attribute__((visibility("default"))) int __lsan_is_turned_off(void);
__attribute__((visibility("default"))) int __lsan_is_turned_off(void)
{
	return exiting_child;
}

#define THREADS 4
#define ROUNDS 25

struct worker {
	pthread_t t;
	int id;
	CK_OBJECT_HANDLE pub, priv, mac;
	CK_SESSION_HANDLE shared;	/* for the shared-session test */
	int ops, failures;
	CK_RV first_rv;
	const char *first_what;
};

static void note(struct worker *w, const char *what, CK_RV rv, CK_RV want)
{
	if (rv == want) {
		w->ops++;
		return;
	}
	if (!w->failures++) {
		w->first_rv = rv;
		w->first_what = what;
	}
}

static void *sign_verify_loop(void *arg)
{
	struct worker *w = arg;
	CK_MECHANISM ec = { CKM_ECDSA_SHA256, NULL, 0 };
	CK_MECHANISM hm = { CKM_SHA256_HMAC, NULL, 0 };
	CK_SESSION_HANDLE h;
	uint8_t msg[64], sig[64];
	CK_ULONG n;
	CK_RV rv;

	rv = P11->C_OpenSession(S.slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
	note(w, "C_OpenSession", rv, CKR_OK);
	if (rv != CKR_OK)
		return NULL;
	for (int i = 0; i < ROUNDS; i++) {
		CK_MECHANISM *m = (i % 2) ? &hm : &ec;
		CK_OBJECT_HANDLE sk = (i % 2) ? w->mac : w->priv;
		CK_OBJECT_HANDLE vk = (i % 2) ? w->mac : w->pub;

		fill_pattern(msg, sizeof(msg), (unsigned int)(w->id * 1000 + i));
		note(w, "C_SignInit", P11->C_SignInit(h, m, sk), CKR_OK);
		n = sizeof(sig);
		note(w, "C_Sign", P11->C_Sign(h, msg, sizeof(msg), sig, &n), CKR_OK);
		note(w, "C_VerifyInit", P11->C_VerifyInit(h, m, vk), CKR_OK);
		note(w, "C_Verify", P11->C_Verify(h, msg, sizeof(msg), sig, n), CKR_OK);
		/* Another thread's message must not verify with this signature. */
		msg[0] ^= 1;
		note(w, "C_VerifyInit", P11->C_VerifyInit(h, m, vk), CKR_OK);
		note(w, "C_Verify(bad)", P11->C_Verify(h, msg, sizeof(msg), sig, n),
		     CKR_SIGNATURE_INVALID);
	}
	note(w, "C_CloseSession", P11->C_CloseSession(h), CKR_OK);
	return NULL;
}

static void report(struct worker *w, int n)
{
	for (int i = 0; i < n; i++)
		if (w[i].failures)
			fail_msg("thread %d: %d failure(s), first %s: %s", i, w[i].failures,
				 w[i].first_what, rv_name(w[i].first_rv));
}

static void test_threads_sign_verify(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	struct worker w[THREADS];
	CK_OBJECT_HANDLE pub, priv, mac;
	uint8_t key[32];
	struct tmpl t;

	(void)state;
	/* Session objects of this application, used from every session. */
	gen_ec(h, OID_P256, sizeof(OID_P256), &pub, &priv);
	fill_pattern(key, sizeof(key), 70);
	tmpl_init(&t);
	tmpl_bool(&t, CKA_SIGN, true);
	tmpl_bool(&t, CKA_VERIFY, true);
	mac = create_secret(h, CKK_GENERIC_SECRET, key, sizeof(key), &t);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < THREADS; i++) {
		w[i].id = i;
		w[i].pub = pub;
		w[i].priv = priv;
		w[i].mac = mac;
		assert_int_equal(pthread_create(&w[i].t, NULL, sign_verify_loop, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(w[i].t, NULL), 0);
	report(w, THREADS);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(w[i].ops, 2 + ROUNDS * 6);
}

/* Calls that keep no per-session state, from two threads at once. */
static void *stateless_loop(void *arg)
{
	struct worker *w = arg;
	uint8_t buf[32];
	char label[16];
	CK_ATTRIBUTE a = { CKA_LABEL, label, sizeof(label) };
	CK_SESSION_INFO si;

	for (int i = 0; i < 100; i++) {
		note(w, "C_GenerateRandom", P11->C_GenerateRandom(w->shared, buf,
								   sizeof(buf)), CKR_OK);
		a.ulValueLen = sizeof(label);
		note(w, "C_GetAttributeValue",
		     P11->C_GetAttributeValue(w->shared, w->mac, &a, 1), CKR_OK);
		if (a.ulValueLen != 6 || memcmp(label, "shared", 6))
			note(w, "label content", CKR_GENERAL_ERROR, CKR_OK);
		note(w, "C_GetSessionInfo", P11->C_GetSessionInfo(w->shared, &si), CKR_OK);
		if (si.state != CKS_RW_USER_FUNCTIONS)
			note(w, "session state", CKR_GENERAL_ERROR, CKR_OK);
	}
	return NULL;
}

static void *digest_start(void *arg)
{
	struct worker *w = arg;
	CK_MECHANISM m = { CKM_SHA256, NULL, 0 };

	note(w, "C_DigestInit", P11->C_DigestInit(w->shared, &m), CKR_OK);
	note(w, "C_DigestUpdate", P11->C_DigestUpdate(w->shared, (CK_BYTE_PTR)"hello ", 6),
	     CKR_OK);
	return NULL;
}

static void test_session_from_two_threads(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	struct worker w[2];
	uint8_t got[32], want[32];
	CK_ULONG n = sizeof(got);
	CK_OBJECT_HANDLE o;
	struct tmpl t;

	(void)state;
	tmpl_init(&t);
	tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	tmpl_str(&t, CKA_LABEL, "shared");
	assert_rv(P11->C_CreateObject(h, t.a, t.n, &o), CKR_OK);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < 2; i++) {
		w[i].shared = h;
		w[i].mac = o;
		assert_int_equal(pthread_create(&w[i].t, NULL, stateless_loop, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(w[i].t, NULL), 0);
	report(w, 2);
	assert_int_equal(w[0].ops, 300);
	assert_int_equal(w[1].ops, 300);

	/* An operation begun in one thread and finished in another. */
	memset(w, 0, sizeof(w));
	w[0].shared = h;
	assert_int_equal(pthread_create(&w[0].t, NULL, digest_start, &w[0]), 0);
	assert_int_equal(pthread_join(w[0].t, NULL), 0);
	report(w, 1);
	assert_rv(P11->C_DigestUpdate(h, (CK_BYTE_PTR)"world", 5), CKR_OK);
	assert_rv(P11->C_DigestFinal(h, got, &n), CKR_OK);
	assert_int_equal(EVP_Digest("hello world", 11, want, NULL, EVP_sha256(), NULL), 1);
	assert_int_equal(n, 32);
	assert_memory_equal(got, want, 32);
}

/* Exit codes of the forked child, one per broken expectation. */
enum {
	CHILD_OK, CHILD_INFO_WORKS, CHILD_SESSION_WORKS, CHILD_INIT_FAILS,
	CHILD_PARENT_SESSION_VALID, CHILD_OPEN_FAILS, CHILD_LOGIN_SHARED,
	CHILD_RANDOM_FAILS, CHILD_PARENT_OBJECT_VISIBLE, CHILD_LOGIN_FAILS,
	CHILD_SIGN_FAILS, CHILD_FINALIZE_FAILS,
};

static const char *const child_errors[] = {
	"ok", "C_GetInfo worked before C_Initialize",
	"the parent's session answered before C_Initialize",
	"C_Initialize failed", "the parent's session handle was valid",
	"C_OpenSession failed", "the parent's login state leaked into the child",
	"C_GenerateRandom failed", "the parent's session object was visible",
	"C_Login failed", "sign/verify failed", "C_Finalize failed",
};

static int child_main(CK_SESSION_HANDLE parent, CK_OBJECT_HANDLE parent_key)
{
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO si;
	CK_INFO info;
	CK_MECHANISM m = { CKM_SHA256_HMAC, NULL, 0 };
	uint8_t buf[32], key[32], msg[32];
	CK_ATTRIBUTE a = { CKA_CLASS, buf, sizeof(buf) };
	CK_OBJECT_HANDLE k;
	CK_ULONG n = sizeof(buf);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_VALUE, key, sizeof(key) }, { CKA_SIGN, &yes, 1 },
		{ CKA_VERIFY, &yes, 1 },
	};

	if (P11->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED)
		return CHILD_INFO_WORKS;
	if (P11->C_GetSessionInfo(parent, &si) != CKR_CRYPTOKI_NOT_INITIALIZED)
		return CHILD_SESSION_WORKS;
	if (P11->C_Initialize(NULL) != CKR_OK)
		return CHILD_INIT_FAILS;
	/* The child is another application: the parent's handles mean nothing. */
	if (P11->C_GetSessionInfo(parent, &si) != CKR_SESSION_HANDLE_INVALID)
		return CHILD_PARENT_SESSION_VALID;
	if (P11->C_OpenSession(S.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
			       &h) != CKR_OK)
		return CHILD_OPEN_FAILS;
	if (P11->C_GetSessionInfo(h, &si) != CKR_OK || si.state != CKS_RW_PUBLIC_SESSION)
		return CHILD_LOGIN_SHARED;
	if (P11->C_GenerateRandom(h, buf, sizeof(buf)) != CKR_OK)
		return CHILD_RANDOM_FAILS;
	if (P11->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)) != CKR_OK)
		return CHILD_LOGIN_FAILS;
	if (P11->C_GetAttributeValue(h, parent_key, &a, 1) != CKR_OBJECT_HANDLE_INVALID)
		return CHILD_PARENT_OBJECT_VISIBLE;
	fill_pattern(key, sizeof(key), 71);
	memset(msg, 0x42, sizeof(msg));
	if (P11->C_CreateObject(h, tmpl, ARRAY_SIZE(tmpl), &k) != CKR_OK ||
	    P11->C_SignInit(h, &m, k) != CKR_OK ||
	    P11->C_Sign(h, msg, sizeof(msg), buf, &n) != CKR_OK || n != 32 ||
	    P11->C_VerifyInit(h, &m, k) != CKR_OK ||
	    P11->C_Verify(h, msg, sizeof(msg), buf, n) != CKR_OK)
		return CHILD_SIGN_FAILS;
	if (P11->C_Finalize(NULL) != CKR_OK)
		return CHILD_FINALIZE_FAILS;
	return CHILD_OK;
}

static void parent_still_works(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub,
			       CK_OBJECT_HANDLE priv)
{
	CK_MECHANISM m = { CKM_ECDSA_SHA256, NULL, 0 };
	uint8_t sig[64];

	assert_int_equal(session_state(h), CKS_RW_USER_FUNCTIONS);
	assert_int_equal(sign(h, &m, priv, "after fork", 10, sig, sizeof(sig)), 64);
	assert_rv(verify(h, &m, pub, "after fork", 10, sig, 64), CKR_OK);
}

static void test_fork(void **state)
{
	CK_SESSION_HANDLE h = user_session();
	CK_OBJECT_HANDLE pub, priv;
	int status = -1;
	pid_t pid;

	(void)state;
	gen_ec(h, OID_P256, sizeof(OID_P256), &pub, &priv);
	parent_still_works(h, pub, priv);

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_main(h, priv));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != CHILD_OK) {
		int code = WEXITSTATUS(status);

		fail_msg("child: %s", code < (int)ARRAY_SIZE(child_errors) ?
			 child_errors[code] : "unexpected exit code");
	}
	parent_still_works(h, pub, priv);

	/* A child that just exits, running exit handlers, without C_Finalize. */
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		exiting_child = 1;
		exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	parent_still_works(h, pub, priv);
}

const struct CMUnitTest threads_tests[] = {
	P11_TEST(test_threads_sign_verify),
	P11_TEST(test_session_from_two_threads),
	P11_TEST(test_fork),
};
SUITE_COUNT(threads);
