// SPDX-License-Identifier: MIT
/*
 * General-purpose functions (base spec 5.4): C_Initialize, C_Finalize,
 * C_GetInfo, C_GetFunctionList, C_GetInterfaceList, C_GetInterface.
 * These tests manage initialisation themselves.
 */
#include "suite.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Every function pointer of a list must be set, stubs included (5.1.6). */
#define CHECK_FN(name, args) assert_non_null(fl->name);

static void check_list_240(const CK_FUNCTION_LIST *fl)
{
	PHSM_PKCS11_FUNCTIONS_2_40(CHECK_FN)
}

static void check_list_30(const CK_FUNCTION_LIST_3_0 *fl)
{
	PHSM_PKCS11_FUNCTIONS_2_40(CHECK_FN)
	PHSM_PKCS11_FUNCTIONS_3_0_ADDED(CHECK_FN)
}

/* Blank-padded, never NUL-terminated: the CK_INFO / CK_TOKEN_INFO rule. */
static void assert_padded(const CK_UTF8CHAR *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_true(s[i] != 0);
}

static void test_calls_before_initialize(void **state)
{
	CK_INFO info;
	CK_ULONG n = 0;
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO si;
	CK_FUNCTION_LIST_PTR fl = NULL;

	(void)state;
	assert_rv(P11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_rv(P11->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_rv(P11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h),
		  CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_rv(P11->C_GetSessionInfo(1, &si), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_rv(P11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	/* The three functions allowed before C_Initialize (5.4.3). */
	assert_rv(S.get_function_list(&fl), CKR_OK);
	assert_non_null(fl);
	assert_rv(S.get_interface_list(NULL, &n), CKR_OK);
	assert_true(n >= 2);
}

static void test_initialize_twice(void **state)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_INFO info;

	(void)state;
	assert_rv(P11->C_Initialize(NULL), CKR_OK);
	assert_rv(P11->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_rv(P11->C_Initialize(&args), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_rv(P11->C_GetInfo(&info), CKR_OK);
	/* C_Finalize with pReserved set is refused and changes nothing. */
	assert_rv(P11->C_Finalize(&args), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetInfo(&info), CKR_OK);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	assert_rv(P11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_rv(P11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	/* And the library can be initialised again. */
	assert_rv(P11->C_Initialize(&args), CKR_OK);
	assert_rv(P11->C_GetInfo(&info), CKR_OK);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
}

static CK_RV dummy_create(CK_VOID_PTR_PTR m)
{
	*m = NULL;
	return CKR_OK;
}

static CK_RV dummy_op(CK_VOID_PTR m)
{
	(void)m;
	return CKR_OK;
}

static void test_initialize_bad_args(void **state)
{
	CK_C_INITIALIZE_ARGS args;
	CK_INFO info;
	int dummy;

	(void)state;
	/* pReserved must be NULL (5.4.1). */
	memset(&args, 0, sizeof(args));
	args.pReserved = &dummy;
	assert_rv(P11->C_Initialize(&args), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	args.flags = CKF_OS_LOCKING_OK;
	assert_rv(P11->C_Initialize(&args), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);

	/* Some but not all mutex callbacks: every one of the 14 mixes. */
	for (unsigned int mask = 1; mask < 15; mask++) {
		memset(&args, 0, sizeof(args));
		args.CreateMutex = (mask & 1) ? dummy_create : NULL;
		args.DestroyMutex = (mask & 2) ? dummy_op : NULL;
		args.LockMutex = (mask & 4) ? dummy_op : NULL;
		args.UnlockMutex = (mask & 8) ? dummy_op : NULL;
		assert_rv(P11->C_Initialize(&args), CKR_ARGUMENTS_BAD);
		args.flags = CKF_OS_LOCKING_OK;
		assert_rv(P11->C_Initialize(&args), CKR_ARGUMENTS_BAD);
		assert_rv(P11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	}
}

static void test_initialize_locking_variants(void **state)
{
	static const CK_FLAGS variants[] = {
		0, CKF_OS_LOCKING_OK,
	};
	CK_C_INITIALIZE_ARGS args;
	CK_SESSION_HANDLE h;
	CK_RV rv;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(variants); i++) {
		memset(&args, 0, sizeof(args));
		args.flags = variants[i];
		assert_rv(P11->C_Initialize(&args), CKR_OK);
		h = open_ro();
		assert_rv(P11->C_CloseSession(h), CKR_OK);
		assert_rv(P11->C_Finalize(NULL), CKR_OK);
	}
	/* No threads of its own: the library may refuse (5.4.1), or work. */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
	rv = P11->C_Initialize(&args);
	if (rv == CKR_NEED_TO_CREATE_THREADS)
		return;
	assert_rv(rv, CKR_OK);
	h = open_ro();
	assert_rv(P11->C_CloseSession(h), CKR_OK);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
}

/*
 * Application mutex callbacks that count what the library does with
 * them.  Each mutex is a real pthread mutex, so the library is actually
 * protected by them, and we check that it locks only what it created and
 * never unlocks what it does not hold.
 */
struct app_mutex {
	pthread_mutex_t m;
	unsigned int magic;
	int held;
};

#define APP_MUTEX_MAGIC 0x6d757478u

static struct {
	pthread_mutex_t lock;
	long created, destroyed, locked, unlocked, misuse;
} counts = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void count(long *what)
{
	pthread_mutex_lock(&counts.lock);
	(*what)++;
	pthread_mutex_unlock(&counts.lock);
}

static CK_RV app_create(CK_VOID_PTR_PTR out)
{
	struct app_mutex *m = calloc(1, sizeof(*m));

	if (!out || !m) {
		free(m);
		count(&counts.misuse);
		return CKR_HOST_MEMORY;
	}
	pthread_mutex_init(&m->m, NULL);
	m->magic = APP_MUTEX_MAGIC;
	*out = m;
	count(&counts.created);
	return CKR_OK;
}

static CK_RV app_destroy(CK_VOID_PTR p)
{
	struct app_mutex *m = p;

	if (!m || m->magic != APP_MUTEX_MAGIC) {
		count(&counts.misuse);
		return CKR_MUTEX_BAD;
	}
	if (m->held)
		count(&counts.misuse);
	m->magic = 0;
	pthread_mutex_destroy(&m->m);
	free(m);
	count(&counts.destroyed);
	return CKR_OK;
}

static CK_RV app_lock(CK_VOID_PTR p)
{
	struct app_mutex *m = p;

	if (!m || m->magic != APP_MUTEX_MAGIC) {
		count(&counts.misuse);
		return CKR_MUTEX_BAD;
	}
	pthread_mutex_lock(&m->m);
	m->held++;
	count(&counts.locked);
	return CKR_OK;
}

static CK_RV app_unlock(CK_VOID_PTR p)
{
	struct app_mutex *m = p;

	if (!m || m->magic != APP_MUTEX_MAGIC) {
		count(&counts.misuse);
		return CKR_MUTEX_BAD;
	}
	if (!m->held) {
		count(&counts.misuse);
		return CKR_MUTEX_NOT_LOCKED;
	}
	m->held--;
	pthread_mutex_unlock(&m->m);
	count(&counts.unlocked);
	return CKR_OK;
}

static void *random_loop(void *arg)
{
	CK_SESSION_HANDLE h = *(CK_SESSION_HANDLE *)arg;
	uint8_t buf[64];
	long bad = 0;

	for (int i = 0; i < 50; i++)
		if (P11->C_GenerateRandom(h, buf, sizeof(buf)) != CKR_OK)
			bad++;
	return (void *)bad;
}

static void test_app_mutex_callbacks(void **state)
{
	CK_C_INITIALIZE_ARGS args = {
		.CreateMutex = app_create, .DestroyMutex = app_destroy,
		.LockMutex = app_lock, .UnlockMutex = app_unlock,
	};
	CK_SESSION_HANDLE h[2];
	pthread_t t[2];
	void *bad;

	(void)state;
	memset((char *)&counts + sizeof(counts.lock), 0,
	       sizeof(counts) - sizeof(counts.lock));
	/* Case 3 of 5.4.1: no OS locking, the library must use ours. */
	assert_rv(P11->C_Initialize(&args), CKR_OK);
	h[0] = open_ro();
	h[1] = open_ro();
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, random_loop, &h[i]), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_int_equal((long)bad, 0);
	}
	assert_rv(P11->C_CloseSession(h[0]), CKR_OK);
	assert_rv(P11->C_CloseSession(h[1]), CKR_OK);

	pthread_mutex_lock(&counts.lock);
	assert_true(counts.created >= 1);
	assert_true(counts.locked >= 1);
	/* No call returned holding a lock. */
	assert_int_equal(counts.locked, counts.unlocked);
	pthread_mutex_unlock(&counts.lock);

	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	pthread_mutex_lock(&counts.lock);
	assert_int_equal(counts.destroyed, counts.created);
	assert_int_equal(counts.misuse, 0);
	pthread_mutex_unlock(&counts.lock);

	/* Case 4: callbacks and OS locking both allowed. */
	args.flags = CKF_OS_LOCKING_OK;
	assert_rv(P11->C_Initialize(&args), CKR_OK);
	h[0] = open_ro();
	assert_rv(P11->C_CloseSession(h[0]), CKR_OK);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	pthread_mutex_lock(&counts.lock);
	assert_int_equal(counts.destroyed, counts.created);
	assert_int_equal(counts.misuse, 0);
	pthread_mutex_unlock(&counts.lock);
}

static void test_get_info(void **state)
{
	CK_INFO info;

	(void)state;
	memset(&info, 0, sizeof(info));
	assert_rv(P11->C_GetInfo(&info), CKR_OK);
	assert_int_equal(info.cryptokiVersion.major, 3);
	assert_int_equal(info.cryptokiVersion.minor, 0);
	assert_int_equal(info.flags, 0);	/* reserved (3.1) */
	assert_padded(info.manufacturerID, sizeof(info.manufacturerID));
	assert_padded(info.libraryDescription, sizeof(info.libraryDescription));
	assert_true(info.manufacturerID[0] != ' ');
	assert_rv(P11->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
}

static CK_INTERFACE *find_iface(CK_INTERFACE *list, CK_ULONG n, int major,
				int minor)
{
	for (CK_ULONG i = 0; i < n; i++) {
		CK_VERSION *v = list[i].pFunctionList;

		if (!strcmp((char *)list[i].pInterfaceName, "PKCS 11") &&
		    v->major == major && v->minor == minor)
			return &list[i];
	}
	return NULL;
}

static void test_interface_list(void **state)
{
	CK_INTERFACE list[16];
	CK_ULONG n = 0, count;
	CK_INTERFACE *i30, *i240;

	(void)state;
	/* Before C_Initialize, as 5.4.4 allows. */
	assert_rv(S.get_interface_list(NULL, &n), CKR_OK);
	assert_true(n >= 2 && n <= ARRAY_SIZE(list));
	count = n - 1;
	assert_rv(S.get_interface_list(list, &count), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(count, n);
	count = 0;
	assert_rv(S.get_interface_list(list, &count), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(count, n);
	count = ARRAY_SIZE(list);
	assert_rv(S.get_interface_list(list, &count), CKR_OK);
	assert_int_equal(count, n);
	assert_rv(S.get_interface_list(list, NULL), CKR_ARGUMENTS_BAD);

	i30 = find_iface(list, n, 3, 0);
	i240 = find_iface(list, n, 2, 40);
	assert_non_null(i30);
	assert_non_null(i240);
	check_list_30(i30->pFunctionList);
	check_list_240(i240->pFunctionList);
	/* The project's library does not claim fork safety (see library.rst). */
	assert_false(i30->flags & CKF_INTERFACE_FORK_SAFE);
	assert_false(i240->flags & CKF_INTERFACE_FORK_SAFE);
	/* The same list is offered through the function list. */
	count = ARRAY_SIZE(list);
	assert_rv(P11->C_GetInterfaceList(list, &count), CKR_OK);
	assert_int_equal(count, n);
}

static void test_get_interface(void **state)
{
	CK_INTERFACE_PTR i = NULL;
	CK_VERSION v30 = { 3, 0 }, v240 = { 2, 40 }, v99 = { 9, 9 };
	CK_VERSION *v;
	CK_FUNCTION_LIST_3_0 *fl;

	(void)state;
	/* Default: the 3.0 interface. */
	assert_rv(S.get_interface(NULL, NULL, &i, 0), CKR_OK);
	assert_non_null(i);
	assert_string_equal((char *)i->pInterfaceName, "PKCS 11");
	v = i->pFunctionList;
	assert_int_equal(v->major, 3);
	assert_int_equal(v->minor, 0);
	fl = i->pFunctionList;
	check_list_30(fl);

	i = NULL;
	assert_rv(S.get_interface((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &i, 0), CKR_OK);
	assert_non_null(i);
	assert_string_equal((char *)i->pInterfaceName, "PKCS 11");

	i = NULL;
	assert_rv(S.get_interface((CK_UTF8CHAR_PTR)"PKCS 11", &v30, &i, 0), CKR_OK);
	v = i->pFunctionList;
	assert_int_equal(v->major, 3);
	assert_int_equal(v->minor, 0);

	i = NULL;
	assert_rv(S.get_interface((CK_UTF8CHAR_PTR)"PKCS 11", &v240, &i, 0), CKR_OK);
	v = i->pFunctionList;
	assert_int_equal(v->major, 2);
	assert_int_equal(v->minor, 40);
	check_list_240(i->pFunctionList);

	/* No such interface: name, version or flags that nothing matches. */
	assert_rv(S.get_interface((CK_UTF8CHAR_PTR)"Vendor NoSuchThing", NULL, &i, 0),
		  CKR_ARGUMENTS_BAD);
	assert_rv(S.get_interface((CK_UTF8CHAR_PTR)"PKCS 11", &v99, &i, 0),
		  CKR_ARGUMENTS_BAD);
	assert_rv(S.get_interface((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &i,
				  CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD);
	assert_rv(S.get_interface(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
	/* Also through the 3.0 list, after initialisation. */
	assert_rv(P11->C_Initialize(NULL), CKR_OK);
	i = NULL;
	assert_rv(P11->C_GetInterface((CK_UTF8CHAR_PTR)"PKCS 11", &v30, &i, 0), CKR_OK);
	assert_ptr_equal(i->pFunctionList, P11);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
}

static void test_get_function_list(void **state)
{
	CK_FUNCTION_LIST_PTR fl = NULL, fl2 = NULL;

	(void)state;
	assert_rv(S.get_function_list(&fl), CKR_OK);
	assert_non_null(fl);
	/* The 2.40 list (the library's choice for the legacy entry point). */
	assert_int_equal(fl->version.major, 2);
	assert_int_equal(fl->version.minor, 40);
	check_list_240(fl);
	assert_rv(fl->C_GetFunctionList(&fl2), CKR_OK);
	assert_ptr_equal(fl, fl2);
	assert_rv(S.get_function_list(NULL), CKR_ARGUMENTS_BAD);
	/* The 2.40 list drives the library like the 3.0 one. */
	assert_rv(fl->C_Initialize(NULL), CKR_OK);
	assert_rv(P11->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_rv(fl->C_Finalize(NULL), CKR_OK);
}

const struct CMUnitTest general_tests[] = {
	cmocka_unit_test_teardown(test_calls_before_initialize, lib_down),
	cmocka_unit_test_teardown(test_initialize_twice, lib_down),
	cmocka_unit_test_teardown(test_initialize_bad_args, lib_down),
	cmocka_unit_test_teardown(test_initialize_locking_variants, lib_down),
	cmocka_unit_test_teardown(test_app_mutex_callbacks, lib_down),
	P11_TEST(test_get_info),
	cmocka_unit_test_teardown(test_interface_list, lib_down),
	cmocka_unit_test_teardown(test_get_interface, lib_down),
	cmocka_unit_test_teardown(test_get_function_list, lib_down),
};
SUITE_COUNT(general);
