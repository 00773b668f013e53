// SPDX-License-Identifier: MIT
/*
 * The Luna CA_ extensions, part 1: the vendor interface "phsm CA", cloning
 * domains (CA_AddKCV, CA_ChangeKCVLabel, CA_DeleteKCV, CA_GetKCVLabels)
 * and partition policies (CA_SetContainerPolicy, CA_GetContainerPolicy).
 * Every test works on the second partition and starts by re-initialising
 * it, which also shows that C_InitToken wipes domains and policies.
 *
 * CKR_DOMAIN_NO_PRIMARY and CKR_DOMAIN_EXTRA_PRIMARY cannot be produced
 * through the API (the card keeps exactly one primary), so no test here
 * provokes them.
 */
#include "suite.h"

#include <dlfcn.h>
#include <string.h>

#include <phsm/cryptoki_ca.h>

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

/* A fresh second token: no domains, default policies. */
static void fresh_slot2(void)
{
	assert_rv(init_token_and_pin(S.slot2, SO2_PIN, NULL, "phsm-suite-2",
				     USER2_PIN, NULL), CKR_OK);
}

static CK_SESSION_HANDLE so2_session(void)
{
	CK_SESSION_HANDLE h = open_session(S.slot2, CKF_SERIAL_SESSION |
					   CKF_RW_SESSION);

	assert_rv(P11->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)SO2_PIN,
			       strlen(SO2_PIN)), CKR_OK);
	return h;
}

static CK_RV add(CK_SESSION_HANDLE h, const char *kcv, const char *label,
		 CK_BBOOL primary)
{
	return CA->CA_AddKCV(h, strlen(kcv), (CK_BYTE_PTR)kcv, strlen(label),
			     (CK_BYTE_PTR)label, primary);
}

static CK_ULONG label_count(CK_SLOT_ID slot)
{
	CK_ULONG n = 0;

	assert_rv(CA->CA_GetKCVLabels(slot, &n, NULL, NULL, NULL), CKR_OK);
	return n;
}

/* Check the domains: labels in order, and which one is primary. */
static void expect_labels(CK_SLOT_ID slot, const char *const *labels,
			  CK_ULONG n, CK_ULONG primary)
{
	CK_BYTE buf[3][32];
	CK_BYTE_PTR ptrs[3] = { buf[0], buf[1], buf[2] };
	CK_ULONG flags[3], lens[3], count = 3;

	assert_rv(CA->CA_GetKCVLabels(slot, &count, flags, lens, ptrs), CKR_OK);
	assert_int_equal(count, n);
	for (CK_ULONG i = 0; i < n; i++) {
		assert_int_equal(lens[i], strlen(labels[i]));
		assert_memory_equal(buf[i], labels[i], lens[i]);
		assert_int_equal(flags[i], i == primary ? CKF_KCV_PRIMARY : 0);
	}
}

static CK_ULONG policy(CK_SLOT_ID slot, CK_ULONG type)
{
	CK_ULONG v = 99;

	assert_rv(CA->CA_GetContainerPolicy(slot, CK_PHSM_CONTAINER_SELF, type,
					    &v), CKR_OK);
	return v;
}

/* ---- the interface ---------------------------------------------------- */

static void test_ca_interface(void **state)
{
	CK_PHSM_CA_FUNCTION_LIST *l = ca_list();
	CK_INTERFACE list[16];
	CK_ULONG n = ARRAY_SIZE(list);
	bool listed = false;

	(void)state;
	assert_int_equal(l->version.major, 1);
	assert_int_equal(l->version.minor, 0);
	/* Every function: in the list and exported, the same function. */
#define CHECK_CA_ENTRY(name, args)					\
	assert_non_null(l->name);					\
	assert_ptr_equal(l->name, dlsym(S.dl, #name));
	CK_PHSM_CA_FUNCTIONS(CHECK_CA_ENTRY)
#undef CHECK_CA_ENTRY
	/* Offered in the interface list too. */
	assert_rv(S.get_interface_list(list, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++)
		if (!strcmp((char *)list[i].pInterfaceName,
			    CK_PHSM_CA_INTERFACE_NAME))
			listed = list[i].pFunctionList == l;
	assert_true(listed);
	/* The numbers Luna applications are compiled with. */
	assert_int_equal(CKR_DOMAIN_MANAGEMENT_NOT_ALLOWED, 0x8000011CUL);
	assert_int_equal(CKR_SESSION_NEGOTIATION_NOT_STARTED, 0x80000123UL);
	assert_int_equal(CKM_CPV4_EXTRACT, 0x80000208UL);
}

/* ---- cloning domains -------------------------------------------------- */

static void test_kcv_fresh_token(void **state)
{
	CK_SESSION_HANDLE h;

	(void)state;
	fresh_slot2();
	h = so2_session();
	assert_int_equal(label_count(S.slot2), 0);
	assert_int_equal(policy(S.slot2, CK_PHSM_POLICY_EXTENDED_DOMAIN_MGMT), 0);
	assert_int_equal(policy(S.slot2, CK_PHSM_POLICY_CPV3_DISABLED), 0);
	assert_int_equal(policy(S.slot2, CK_PHSM_POLICY_CPV4_DISABLED), 0);
	P11->C_CloseSession(h);
}

static void test_kcv_lifecycle(void **state)
{
	static const char *const one[] = { "dom-a" };
	static const char *const two[] = { "dom-a", "dom-b" };
	static const char *const three[] = { "dom-a", "dom-b", "dom-c" };
	static const char *const renamed[] = { "dom-x", "dom-b", "dom-c" };
	static const char *const left[] = { "dom-x", "dom-c" };
	CK_BYTE buf[3][32];
	CK_BYTE_PTR ptrs[3] = { buf[0], buf[1], buf[2] };
	CK_ULONG flags[3], lens[3], count;
	CK_SESSION_HANDLE h;

	(void)state;
	fresh_slot2();
	h = so2_session();
	/* The first domain is the primary one, whatever bMakePrimary says. */
	assert_rv(add(h, "secret one", "dom-a", CK_FALSE), CKR_OK);
	expect_labels(S.slot2, one, 1, 0);
	/* Policy 44 off: no second domain, no delete. */
	assert_rv(add(h, "secret two", "dom-b", CK_FALSE),
		  CKR_DOMAIN_MANAGEMENT_NOT_ALLOWED);
	assert_rv(CA->CA_DeleteKCV(h, 5, (CK_BYTE_PTR)"dom-a"),
		  CKR_DOMAIN_MANAGEMENT_NOT_ALLOWED);
	/* Policy 44 on. */
	assert_rv(CA->CA_SetContainerPolicy(h, CK_PHSM_CONTAINER_SELF,
					    CK_PHSM_POLICY_EXTENDED_DOMAIN_MGMT,
					    1), CKR_OK);
	assert_rv(add(h, "secret two", "dom-b", CK_TRUE), CKR_OK);
	expect_labels(S.slot2, two, 2, 1);
	assert_rv(add(h, "other secret", "dom-b", CK_FALSE),
		  CKR_DOMAIN_LABEL_ALREADY_EXISTS);
	assert_rv(add(h, "secret three", "dom-c", CK_FALSE), CKR_OK);
	expect_labels(S.slot2, three, 3, 1);
	assert_rv(add(h, "secret four", "dom-d", CK_FALSE),
		  CKR_DOMAIN_MAX_REACHED);
	assert_rv(add(h, "secret four", "dom-a", CK_FALSE),
		  CKR_DOMAIN_LABEL_ALREADY_EXISTS);

	/* Count, too small, fill. */
	count = 0;
	assert_rv(CA->CA_GetKCVLabels(S.slot2, &count, NULL, NULL, NULL), CKR_OK);
	assert_int_equal(count, 3);
	count = 2;
	assert_rv(CA->CA_GetKCVLabels(S.slot2, &count, flags, lens, ptrs),
		  CKR_BUFFER_TOO_SMALL);
	assert_int_equal(count, 3);

	/* Relabel. */
	assert_rv(CA->CA_ChangeKCVLabel(h, 5, (CK_BYTE_PTR)"dom-a", 5,
					(CK_BYTE_PTR)"dom-x"), CKR_OK);
	expect_labels(S.slot2, renamed, 3, 1);
	assert_rv(CA->CA_ChangeKCVLabel(h, 5, (CK_BYTE_PTR)"dom-q", 5,
					(CK_BYTE_PTR)"dom-y"),
		  CKR_DOMAIN_LABEL_INVALID);
	assert_rv(CA->CA_ChangeKCVLabel(h, 0, NULL, 5, (CK_BYTE_PTR)"dom-y"),
		  CKR_DOMAIN_LABEL_INVALID);	/* no unlabelled domain */
	assert_rv(CA->CA_ChangeKCVLabel(h, 5, (CK_BYTE_PTR)"dom-x", 5,
					(CK_BYTE_PTR)"dom-c"),
		  CKR_DOMAIN_LABEL_ALREADY_EXISTS);
	assert_rv(CA->CA_ChangeKCVLabel(h, 5, (CK_BYTE_PTR)"dom-x", 0,
					(CK_BYTE_PTR)"dom-c"),
		  CKR_DOMAIN_LABEL_INVALID);	/* new label too short */
	assert_rv(CA->CA_ChangeKCVLabel(h, 5, (CK_BYTE_PTR)"dom-x", 33,
					(CK_BYTE_PTR)"0123456789abcdef0123456789abcdefX"),
		  CKR_DOMAIN_LABEL_INVALID);	/* too long */
	expect_labels(S.slot2, renamed, 3, 1);

	/* Delete: the primary one; the oldest left becomes primary. */
	assert_rv(CA->CA_DeleteKCV(h, 5, (CK_BYTE_PTR)"dom-b"), CKR_OK);
	expect_labels(S.slot2, left, 2, 0);
	assert_rv(CA->CA_DeleteKCV(h, 5, (CK_BYTE_PTR)"dom-b"),
		  CKR_DOMAIN_LABEL_INVALID);
	assert_rv(CA->CA_DeleteKCV(h, 0, NULL), CKR_DOMAIN_LABEL_INVALID);

	/* Kept across C_Finalize / C_Initialize (in the card's store). */
	P11->C_CloseSession(h);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	assert_int_equal(lib_up(NULL), 0);
	h = so2_session();
	expect_labels(S.slot2, left, 2, 0);
	P11->C_CloseSession(h);

	/* C_InitToken wipes domains and policies. */
	fresh_slot2();
	h = so2_session();
	assert_int_equal(label_count(S.slot2), 0);
	assert_int_equal(policy(S.slot2, CK_PHSM_POLICY_EXTENDED_DOMAIN_MGMT), 0);
	P11->C_CloseSession(h);
}

static void test_kcv_label_rules(void **state)
{
	static const char l32[] = "0123456789abcdef0123456789abcdef";
	CK_BYTE nul_label[4] = { 'a', 0, 'b', 0 };
	CK_BYTE buf[3][32];
	CK_BYTE_PTR ptrs[3] = { buf[0], buf[1], buf[2] };
	CK_ULONG flags[3], lens[3], count = 3;
	CK_SESSION_HANDLE h;

	(void)state;
	fresh_slot2();
	h = so2_session();
	assert_rv(CA->CA_SetContainerPolicy(h, CK_PHSM_CONTAINER_SELF,
					    CK_PHSM_POLICY_EXTENDED_DOMAIN_MGMT,
					    1), CKR_OK);
	/* 1 to 32 bytes, not NUL-terminated (a NUL is just a byte). */
	assert_rv(CA->CA_AddKCV(h, 3, (CK_BYTE_PTR)"kcv", 0,
				(CK_BYTE_PTR)"x", CK_FALSE),
		  CKR_DOMAIN_LABEL_INVALID);
	assert_rv(CA->CA_AddKCV(h, 3, (CK_BYTE_PTR)"kcv", 33,
				(CK_BYTE_PTR)"0123456789abcdef0123456789abcdefX",
				CK_FALSE), CKR_DOMAIN_LABEL_INVALID);
	assert_rv(CA->CA_AddKCV(h, 3, (CK_BYTE_PTR)"kcv", 32,
				(CK_BYTE_PTR)l32, CK_FALSE), CKR_OK);
	assert_rv(CA->CA_AddKCV(h, 3, (CK_BYTE_PTR)"kcv", sizeof(nul_label),
				nul_label, CK_FALSE), CKR_OK);
	/* Same bytes but one shorter: another label. */
	assert_rv(CA->CA_AddKCV(h, 3, (CK_BYTE_PTR)"kcv", 31,
				(CK_BYTE_PTR)l32, CK_FALSE), CKR_OK);
	assert_rv(CA->CA_GetKCVLabels(S.slot2, &count, flags, lens, ptrs), CKR_OK);
	assert_int_equal(count, 3);
	assert_int_equal(lens[0], 32);
	assert_memory_equal(buf[0], l32, 32);
	assert_int_equal(lens[1], 4);
	assert_memory_equal(buf[1], nul_label, 4);
	assert_int_equal(lens[2], 31);
	assert_rv(CA->CA_DeleteKCV(h, 4, nul_label), CKR_OK);
	/* A PED domain (NULL, 0) on this password card: not allowed. */
	assert_rv(CA->CA_AddKCV(h, 0, NULL, 3, (CK_BYTE_PTR)"ped", CK_FALSE),
		  CKR_DOMAIN_MANAGEMENT_NOT_ALLOWED);
	/* Arguments. */
	assert_rv(CA->CA_AddKCV(h, 3, (CK_BYTE_PTR)"kcv", 3, NULL, CK_FALSE),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_AddKCV(h, 3, NULL, 3, (CK_BYTE_PTR)"abc", CK_FALSE),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_AddKCV(h, 0, (CK_BYTE_PTR)"kcv", 3, (CK_BYTE_PTR)"abc",
				CK_FALSE), CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_AddKCV(h, 3, (CK_BYTE_PTR)"kcv", 3, (CK_BYTE_PTR)"abc",
				2), CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_ChangeKCVLabel(h, 3, NULL, 3, (CK_BYTE_PTR)"abc"),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_ChangeKCVLabel(h, 0, (CK_BYTE_PTR)"abc", 3,
					(CK_BYTE_PTR)"abc"), CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_ChangeKCVLabel(h, 32, (CK_BYTE_PTR)l32, 3, NULL),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_DeleteKCV(h, 3, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_DeleteKCV(h, 0, (CK_BYTE_PTR)"abc"), CKR_ARGUMENTS_BAD);
	P11->C_CloseSession(h);
}

static void test_kcv_roles(void **state)
{
	CK_BYTE buf[3][32];
	CK_BYTE_PTR ptrs[3] = { buf[0], buf[1], buf[2] };
	CK_ULONG flags[3], lens[3], count;
	CK_SESSION_HANDLE so, pub, user;

	(void)state;
	fresh_slot2();
	/* Nobody logged in: no domain functions, not even the labels. */
	pub = open_session(S.slot2, CKF_SERIAL_SESSION | CKF_RW_SESSION);
	assert_rv(add(pub, "kcv", "abc", CK_FALSE), CKR_USER_NOT_LOGGED_IN);
	count = 0;
	assert_rv(CA->CA_GetKCVLabels(S.slot2, &count, NULL, NULL, NULL),
		  CKR_USER_NOT_LOGGED_IN);
	/* The user may read the labels but not manage domains. */
	assert_rv(P11->C_Login(pub, CKU_USER, (CK_UTF8CHAR_PTR)USER2_PIN,
			       strlen(USER2_PIN)), CKR_OK);
	user = pub;
	assert_rv(add(user, "kcv", "abc", CK_FALSE), CKR_USER_NOT_LOGGED_IN);
	assert_rv(CA->CA_ChangeKCVLabel(user, 3, (CK_BYTE_PTR)"abc", 3,
					(CK_BYTE_PTR)"def"), CKR_USER_NOT_LOGGED_IN);
	assert_rv(CA->CA_DeleteKCV(user, 3, (CK_BYTE_PTR)"abc"),
		  CKR_USER_NOT_LOGGED_IN);
	assert_rv(CA->CA_SetContainerPolicy(user, CK_PHSM_CONTAINER_SELF,
					    CK_PHSM_POLICY_EXTENDED_DOMAIN_MGMT,
					    1), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(label_count(S.slot2), 0);
	assert_rv(P11->C_Logout(user), CKR_OK);
	P11->C_CloseSession(user);
	so = so2_session();
	assert_rv(add(so, "kcv", "abc", CK_FALSE), CKR_OK);
	assert_int_equal(label_count(S.slot2), 1);
	/* Session and slot arguments. */
	assert_rv(add(0, "kcv", "abc", CK_FALSE), CKR_SESSION_HANDLE_INVALID);
	assert_rv(CA->CA_DeleteKCV(so + 77, 3, (CK_BYTE_PTR)"abc"),
		  CKR_SESSION_HANDLE_INVALID);
	count = 0;
	assert_rv(CA->CA_GetKCVLabels(999, &count, NULL, NULL, NULL),
		  CKR_SLOT_ID_INVALID);
	assert_rv(CA->CA_GetKCVLabels(S.slot2, NULL, NULL, NULL, NULL),
		  CKR_ARGUMENTS_BAD);
	count = 3;
	assert_rv(CA->CA_GetKCVLabels(S.slot2, &count, NULL, lens, ptrs),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_GetKCVLabels(S.slot2, &count, flags, NULL, ptrs),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_GetKCVLabels(S.slot2, &count, flags, lens, NULL),
		  CKR_ARGUMENTS_BAD);
	ptrs[0] = NULL;
	assert_rv(CA->CA_GetKCVLabels(S.slot2, &count, flags, lens, ptrs),
		  CKR_ARGUMENTS_BAD);
	P11->C_CloseSession(so);
	/* Before C_Initialize. */
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	count = 0;
	assert_rv(CA->CA_GetKCVLabels(S.slot2, &count, NULL, NULL, NULL),
		  CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_rv(add(so, "kcv", "abc", CK_FALSE), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* ---- policies --------------------------------------------------------- */

static void test_container_policy(void **state)
{
	CK_ULONG v = 0;
	CK_SESSION_HANDLE h;

	(void)state;
	fresh_slot2();
	h = so2_session();
	assert_rv(CA->CA_SetContainerPolicy(h, CK_PHSM_CONTAINER_SELF,
					    CK_PHSM_POLICY_CPV3_DISABLED, 1),
		  CKR_OK);
	assert_int_equal(policy(S.slot2, CK_PHSM_POLICY_CPV3_DISABLED), 1);
	assert_int_equal(policy(S.slot2, CK_PHSM_POLICY_CPV4_DISABLED), 0);
	/* The container may be named by its number on the card too. */
	assert_rv(CA->CA_SetContainerPolicy(h, S.slot2 % 16,
					    CK_PHSM_POLICY_CPV4_DISABLED, 1),
		  CKR_OK);
	assert_rv(CA->CA_GetContainerPolicy(S.slot2, S.slot2 % 16,
					    CK_PHSM_POLICY_CPV4_DISABLED, &v),
		  CKR_OK);
	assert_int_equal(v, 1);
	assert_rv(CA->CA_SetContainerPolicy(h, CK_PHSM_CONTAINER_SELF,
					    CK_PHSM_POLICY_CPV4_DISABLED, 0),
		  CKR_OK);
	assert_int_equal(policy(S.slot2, CK_PHSM_POLICY_CPV4_DISABLED), 0);
	/* Another container, unknown policy, bad value. */
	assert_rv(CA->CA_SetContainerPolicy(h, (S.slot2 % 16) + 1,
					    CK_PHSM_POLICY_CPV4_DISABLED, 1),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_SetContainerPolicy(h, CK_PHSM_CONTAINER_SELF, 12345, 1),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_SetContainerPolicy(h, CK_PHSM_CONTAINER_SELF,
					    CK_PHSM_POLICY_CPV4_DISABLED, 2),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_SetContainerPolicy(0, CK_PHSM_CONTAINER_SELF,
					    CK_PHSM_POLICY_CPV4_DISABLED, 1),
		  CKR_SESSION_HANDLE_INVALID);
	/* Reading: any application, no login needed. */
	assert_rv(P11->C_Logout(h), CKR_OK);
	assert_int_equal(policy(S.slot2, CK_PHSM_POLICY_CPV3_DISABLED), 1);
	assert_rv(CA->CA_GetContainerPolicy(S.slot2, CK_PHSM_CONTAINER_SELF,
					    CK_PHSM_POLICY_CPV3_DISABLED, NULL),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_GetContainerPolicy(S.slot2, CK_PHSM_CONTAINER_SELF,
					    12345, &v), CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_GetContainerPolicy(S.slot2, (S.slot2 % 16) + 1,
					    CK_PHSM_POLICY_CPV3_DISABLED, &v),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_GetContainerPolicy(999, CK_PHSM_CONTAINER_SELF,
					    CK_PHSM_POLICY_CPV3_DISABLED, &v),
		  CKR_SLOT_ID_INVALID);
	P11->C_CloseSession(h);
	fresh_slot2();
	assert_int_equal(policy(S.slot2, CK_PHSM_POLICY_CPV3_DISABLED), 0);
}

const struct CMUnitTest ca_domains_tests[] = {
	P11_TEST(test_ca_interface),
	P11_TEST(test_kcv_fresh_token),
	P11_TEST(test_kcv_lifecycle),
	P11_TEST(test_kcv_label_rules),
	P11_TEST(test_kcv_roles),
	P11_TEST(test_container_policy),
};
SUITE_COUNT(ca_domains);
