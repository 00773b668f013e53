// SPDX-License-Identifier: MIT
/*
 * The function lists and interfaces: C_GetFunctionList (the 2.40 list),
 * C_GetInterfaceList and C_GetInterface ("PKCS 11" 3.0, the default, and
 * "PKCS 11" 2.40) and the vendor interface "phsm CA" with the Luna CA_
 * functions (phsm/cryptoki_ca.h).  None is CKF_INTERFACE_FORK_SAFE: a
 * forked child must call C_Initialize again.
 */
#include <string.h>

#include <phsm/cryptoki_ca.h>

#include "lib.h"

#define FN(name, args) .name = name,

static CK_FUNCTION_LIST_3_0 functions_3_0 = {
	.version = { 3, 0 },
	PHSM_PKCS11_FUNCTIONS_2_40(FN)
	PHSM_PKCS11_FUNCTIONS_3_0_ADDED(FN)
};

static CK_FUNCTION_LIST functions_2_40 = {
	.version = { 2, 40 },
	PHSM_PKCS11_FUNCTIONS_2_40(FN)
};

/* Every CA_ function of phsm/cryptoki_ca.h is implemented. */
static CK_PHSM_CA_FUNCTION_LIST functions_ca = {
	.version = { CK_PHSM_CA_VERSION_MAJOR, CK_PHSM_CA_VERSION_MINOR },
	CK_PHSM_CA_FUNCTIONS(FN)
};

#undef FN

static CK_UTF8CHAR pkcs11_name[] = "PKCS 11";
static CK_UTF8CHAR ca_name[] = CK_PHSM_CA_INTERFACE_NAME;

static CK_INTERFACE interfaces[] = {
	{ pkcs11_name, &functions_3_0, 0 },	/* the default: first */
	{ pkcs11_name, &functions_2_40, 0 },
	{ ca_name, &functions_ca, 0 },		/* Luna CA_ functions */
};

#define N_INTERFACES (sizeof(interfaces) / sizeof(interfaces[0]))

PHSM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (!ppFunctionList)
		return CKR_ARGUMENTS_BAD;
	*ppFunctionList = &functions_2_40;
	return CKR_OK;
}

PHSM_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList,
				     CK_ULONG_PTR pulCount)
{
	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	if (!pInterfacesList) {
		*pulCount = N_INTERFACES;
		return CKR_OK;
	}
	if (*pulCount < N_INTERFACES) {
		*pulCount = N_INTERFACES;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy(pInterfacesList, interfaces, sizeof(interfaces));
	*pulCount = N_INTERFACES;
	return CKR_OK;
}

static bool interface_matches(const CK_INTERFACE *i, const CK_UTF8CHAR *name,
			      const CK_VERSION *version, CK_FLAGS flags)
{
	const CK_VERSION *v = i->pFunctionList;	/* every list starts so */

	if (name && strcmp((const char *)name, (const char *)i->pInterfaceName))
		return false;
	if (version && (version->major != v->major || version->minor != v->minor))
		return false;
	return (i->flags & flags) == flags;
}

PHSM_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName,
				 CK_VERSION_PTR pVersion,
				 CK_INTERFACE_PTR_PTR ppInterface,
				 CK_FLAGS flags)
{
	if (!ppInterface)
		return CKR_ARGUMENTS_BAD;
	for (size_t i = 0; i < N_INTERFACES; i++) {
		if (interface_matches(&interfaces[i], pInterfaceName, pVersion,
				      flags)) {
			*ppInterface = &interfaces[i];
			return CKR_OK;
		}
	}
	/* The spec names no code for "no such interface"; this is the usual. */
	return CKR_ARGUMENTS_BAD;
}
