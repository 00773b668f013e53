/* SPDX-License-Identifier: MIT */
/*
 * phsm/cryptoki_ca.h - the Luna-style CA_ extensions of libphsm-pkcs11.so.
 *
 * Names, parameter orders, structures and numeric values follow the Luna
 * documents (cloning CPv4 rev2, CPv3, cluster extensions), so that Luna
 * applications compile against this header unchanged.  Where the documents
 * have typing slips (CK_ULONG_PTR for a length, CK_BYTE for a buffer) the
 * declarations use CK_ULONG for lengths and CK_BYTE_PTR for buffers.
 *
 * The functions are reached two ways: as exported symbols of the library,
 * and through C_GetInterface("phsm CA", ...), whose function list is
 * CK_PHSM_CA_FUNCTION_LIST below.  Cloning (CA_MigrateKeys,
 * CA_Migration*, CA_Extract, CA_Insert, CA_CloneObject, CA_CloneAs*) is
 * described in Documentation/phsm/cloning.rst, domains, policies and
 * cluster slots in Documentation/phsm/luna.rst.
 *
 * CK_CPV4_EXTRACT_PARAMS and CK_CPV4_INSERT_PARAMS: sessionIdLength is the
 * length of the session ID and sessionId points to its bytes (the
 * documents' "CK_ULONG_PTR sessionIdLength; CK_BYTE sessionId" is one of
 * their typing slips).
 */
#ifndef PHSM_CRYPTOKI_CA_H
#define PHSM_CRYPTOKI_CA_H

#include <phsm/pkcs11.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- mechanisms, flags, element types ------------------------------- */

#define CKM_CPV4_EXTRACT		0x80000208UL
#define CKM_CPV4_INSERT			0x80000209UL

/* extraction/insertion/migration flags */
#define CKF_CONTINUE_ON_ERR		0x00000001UL

/* object types (objectType, ulObjectType, hType) */
#define CK_CRYPTOKI_ELEMENT		0x00000000UL
#define CK_PARAM_ELEMENT		0x00000001UL

/* phsm's values of CK_CPV4_INSERT_PARAMS.storageType[i] */
#define PHSM_CLONE_STORAGE_AS_IS	0UL	/* keep the clone's CKA_TOKEN */
#define PHSM_CLONE_STORAGE_TOKEN	1UL	/* make it a token object */
#define PHSM_CLONE_STORAGE_SESSION	2UL	/* make it a session object */

/* phsm's parameter objects (CK_PARAM_ELEMENT handles) */
#define PHSM_PARAM_SMK			1UL	/* the partition's SMK */

/* status of CA_MigrationContinueSessionNegotiation */
#define CK_SESSION_NEGOTIATION_STATUS_MORE	1UL
#define CK_SESSION_NEGOTIATION_STATUS_DONE	2UL

/* CA_GetKCVLabels: bit of ulFlags[i] set on the primary domain */
#define CKF_KCV_PRIMARY			0x00000001UL

/* ---- partition policies (CA_SetContainerPolicy) ---------------------- */

/* Luna partition policy 44: "Allow Extended Domain Management" (0 or 1). */
#define CK_PHSM_POLICY_EXTENDED_DOMAIN_MGMT	44UL
/* phsm's own: 1 disables the CPv3 cloning protocol on the partition. */
#define CK_PHSM_POLICY_CPV3_DISABLED		0x1003UL
/* phsm's own: 1 disables the CPv4 cloning protocol on the partition. */
#define CK_PHSM_POLICY_CPV4_DISABLED		0x1004UL
/* ulContainerNumber meaning "the partition of hSession / slotID" */
#define CK_PHSM_CONTAINER_SELF			(~(CK_ULONG)0)

/* ---- return values --------------------------------------------------- */

#define CKR_CLONE_NOT_ATTEMPTED				(CKR_VENDOR_DEFINED + 0x107UL)
#define CKR_SESSION_NEGOTIATION_NO_PSK			(CKR_VENDOR_DEFINED + 0x108UL)
#define CKR_SESSION_NEGOTIATION_NO_ROOTS		(CKR_VENDOR_DEFINED + 0x109UL)
#define CKR_SESSION_NEGOTIATION_NO_ALGS			(CKR_VENDOR_DEFINED + 0x10AUL)
#define CKR_SESSION_NEGOTIATION_EXPIRED			(CKR_VENDOR_DEFINED + 0x10BUL)
#define CKR_SESSION_NEGOTIATION_INVALID			(CKR_VENDOR_DEFINED + 0x10CUL)
#define CKR_SESSION_ID_INVALID				(CKR_VENDOR_DEFINED + 0x10DUL)
#define CKR_SESSION_ID_EXISTS				(CKR_VENDOR_DEFINED + 0x10EUL)
#define CKR_SESSION_ID_EXPIRED				(CKR_VENDOR_DEFINED + 0x10FUL)
#define CKR_ATTESTATION_EXPIRED				(CKR_VENDOR_DEFINED + 0x110UL)
#define CKR_PROTOCOL_DISABLED				(CKR_VENDOR_DEFINED + 0x111UL)
#define CKR_OBJECT_TYPE_INVALID				(CKR_VENDOR_DEFINED + 0x112UL)
#define CKR_TIME_NOT_INITIALIZED			(CKR_VENDOR_DEFINED + 0x115UL)
#define CKR_SESSION_NEGOTIATION_NO_SESSION_DURATION	(CKR_VENDOR_DEFINED + 0x116UL)
#define CKR_SESSION_NEGOTIATION_NO_KDF			(CKR_VENDOR_DEFINED + 0x118UL)
#define CKR_SESSION_NEGOTIATION_NO_ENCODING		(CKR_VENDOR_DEFINED + 0x119UL)
#define CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT		(CKR_VENDOR_DEFINED + 0x11AUL)
/* The documents' spelling, and the corrected one (same value). */
#define CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY		(CKR_VENDOR_DEFINED + 0x11BUL)
#define CKR_SESSION_NEGOTIATION_NO_EPHEMERAL_KEY	CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY
#define CKR_DOMAIN_MANAGEMENT_NOT_ALLOWED		(CKR_VENDOR_DEFINED + 0x11CUL)
#define CKR_DOMAIN_LABEL_INVALID			(CKR_VENDOR_DEFINED + 0x11DUL)
#define CKR_DOMAIN_LABEL_ALREADY_EXISTS			(CKR_VENDOR_DEFINED + 0x11EUL)
#define CKR_DOMAIN_MAX_REACHED				(CKR_VENDOR_DEFINED + 0x11FUL)
#define CKR_DOMAIN_NO_PRIMARY				(CKR_VENDOR_DEFINED + 0x120UL)
#define CKR_DOMAIN_EXTRA_PRIMARY			(CKR_VENDOR_DEFINED + 0x121UL)
#define CKR_SESSION_NEGOTIATION_NOT_STARTED		(CKR_VENDOR_DEFINED + 0x123UL)

/* ---- structures ------------------------------------------------------ */

typedef CK_RV *CK_RV_PTR;
typedef CK_BYTE_PTR *CK_BYTE_PTR_PTR;

/* CA_MigrateKeys: one entry per object to clone. */
typedef struct CK_OBJECT_MIGRATION_DATA {
	CK_ULONG objectType;		/* CK_CRYPTOKI_ELEMENT, CK_PARAM_ELEMENT */
	CK_OBJECT_HANDLE sourceHandle;
	CK_OBJECT_HANDLE targetHandle;	/* out */
	CK_RV rv;			/* out; CKR_CLONE_NOT_ATTEMPTED at first */
} CK_OBJECT_MIGRATION_DATA;
typedef CK_OBJECT_MIGRATION_DATA *CK_OBJECT_MIGRATION_DATA_PTR;

/* Parameter of CKM_CPV4_EXTRACT (CA_Extract). */
typedef struct CK_CPV4_EXTRACT_PARAMS {
	CK_ULONG sessionIdLength;
	CK_BYTE_PTR sessionId;
	CK_ULONG inputLength;
	CK_BYTE_PTR input;
	CK_ULONG extractionFlags;
	CK_ULONG numberOfObjects;
	CK_ULONG_PTR objectType;
	CK_ULONG_PTR objectHandle;
	CK_RV_PTR result;
	CK_ULONG_PTR keyBlobLength;
	CK_BYTE_PTR_PTR keyBlob;
} CK_CPV4_EXTRACT_PARAMS;
typedef CK_CPV4_EXTRACT_PARAMS *CK_CPV4_EXTRACT_PARAMS_PTR;

/* Parameter of CKM_CPV4_INSERT (CA_Insert). */
typedef struct CK_CPV4_INSERT_PARAMS {
	CK_ULONG sessionIdLength;
	CK_BYTE_PTR sessionId;
	CK_ULONG insertionFlags;
	CK_ULONG numberOfObjects;
	CK_ULONG_PTR storageType;
	CK_ULONG_PTR objectType;
	CK_ULONG_PTR keyBlobLength;
	CK_BYTE_PTR_PTR keyBlob;
	CK_RV_PTR result;
	CK_ULONG_PTR objectHandle;
} CK_CPV4_INSERT_PARAMS;
typedef CK_CPV4_INSERT_PARAMS *CK_CPV4_INSERT_PARAMS_PTR;

/* CA_GetUnassignedSlot's answer. */
typedef struct CK_UNASSIGNED_SLOT_INFO {
	CK_SLOT_ID slotID;
	CK_UTF8CHAR label[32];		/* blank padded, not NUL-terminated */
} CK_UNASSIGNED_SLOT_INFO;
typedef CK_UNASSIGNED_SLOT_INFO *CK_UNASSIGNED_SLOT_INFO_PTR;

/* ---- functions ------------------------------------------------------- */

/*
 * X(name, return, (parameters)) for every CA_ function, in the order of
 * CK_PHSM_CA_FUNCTION_LIST.
 */
#define CK_PHSM_CA_FUNCTIONS(X)						\
	/* CPv4 top-level and low-level cloning */			\
	X(CA_MigrateKeys, (CK_SESSION_HANDLE sourceSession,		\
		CK_SESSION_HANDLE targetSession, CK_ULONG migrationFlags, \
		CK_ULONG numberOfObjects,				\
		CK_OBJECT_MIGRATION_DATA_PTR migrationData))		\
	X(CA_MigrationStartSessionNegotiation, (CK_SESSION_HANDLE hSession, \
		CK_ULONG inputLength, CK_BYTE_PTR input, CK_ULONG_PTR step, \
		CK_ULONG_PTR outputLength, CK_BYTE_PTR output))		\
	X(CA_MigrationContinueSessionNegotiation, (CK_SESSION_HANDLE hSession, \
		CK_ULONG inputStep, CK_ULONG inputLength, CK_BYTE_PTR input, \
		CK_ULONG sessionUidInputLen, CK_BYTE_PTR sessionUidInput, \
		CK_ULONG_PTR outputStep, CK_ULONG_PTR outputLength,	\
		CK_BYTE_PTR output, CK_ULONG_PTR status,		\
		CK_ULONG_PTR sessionUidOutputLen, CK_BYTE_PTR sessionUidOutput)) \
	X(CA_MigrationCloseSession, (CK_SESSION_HANDLE hSession,	\
		CK_ULONG sessionUidLen, CK_BYTE_PTR sessionUid))	\
	X(CA_Extract, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)) \
	X(CA_Insert, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)) \
	/* CPv3 cloning */						\
	X(CA_CloneObject, (CK_SESSION_HANDLE hTargetSession,		\
		CK_SESSION_HANDLE hSourceSession, CK_ULONG ulObjectType, \
		CK_OBJECT_HANDLE hObjectHandle,				\
		CK_OBJECT_HANDLE_PTR phClonedObject))			\
	X(CA_CloneAsSourceInit, (CK_SESSION_HANDLE hSession,		\
		CK_BYTE_PTR pInParameter, CK_ULONG ulInParameterSize,	\
		CK_BYTE_PTR pOutParameter, CK_ULONG_PTR pulOutParameterSize, \
		CK_BBOOL bReplicate))					\
	X(CA_CloneAsTargetInit, (CK_SESSION_HANDLE hSession,		\
		CK_BYTE_PTR pTWC, CK_ULONG ulTWCSize, CK_BYTE_PTR pKEV,	\
		CK_ULONG ulKEVSize, CK_BBOOL bReplicate, CK_BYTE_PTR pPart1, \
		CK_ULONG_PTR pulPart1Size))				\
	X(CA_CloneAsSource, (CK_SESSION_HANDLE hSession, CK_ULONG hType, \
		CK_ULONG hHandle, CK_BYTE_PTR pPart1, CK_ULONG ulPart1Size, \
		CK_BBOOL bReplicate, CK_BYTE_PTR pPart2,		\
		CK_ULONG_PTR pulPart2Size))				\
	X(CA_CloneAsTarget, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pKEV, \
		CK_ULONG ulKEVSize, CK_BYTE_PTR pPart2, CK_ULONG ulPart2Size, \
		CK_ULONG hType, CK_ULONG hHandle, CK_BBOOL bReplicate,	\
		CK_OBJECT_HANDLE_PTR phClonedHandle))			\
	/* cloning domains */						\
	X(CA_AddKCV, (CK_SESSION_HANDLE hSession, CK_ULONG ulKCVLength, \
		CK_BYTE_PTR pKCV, CK_ULONG ulLabelLength, CK_BYTE_PTR pLabel, \
		CK_BBOOL bMakePrimary))					\
	X(CA_ChangeKCVLabel, (CK_SESSION_HANDLE hSession,		\
		CK_ULONG ulOldLabelLength, CK_BYTE_PTR pOldLabel,	\
		CK_ULONG ulNewLabelLength, CK_BYTE_PTR pNewLabel))	\
	X(CA_DeleteKCV, (CK_SESSION_HANDLE hSession, CK_ULONG ulLabelLength, \
		CK_BYTE_PTR pLabel))					\
	X(CA_GetKCVLabels, (CK_SLOT_ID slotID, CK_ULONG_PTR ulNumberOfLabels, \
		CK_ULONG_PTR ulFlags, CK_ULONG_PTR ulLabelLengths,	\
		CK_BYTE_PTR *pLabels))					\
	/* cluster slots */						\
	X(CA_GetSlotId, (CK_UTF8CHAR label[32], CK_SLOT_ID_PTR pSlotId,	\
		CK_ULONG_PTR pulCount))					\
	X(CA_GetUnassignedSlot, (const CK_CHAR_PTR clusterID,		\
		CK_UNASSIGNED_SLOT_INFO_PTR pUnassignedSlot))		\
	X(CA_LockClusteredSlot, (CK_SLOT_ID slotID))			\
	X(CA_UnlockClusteredSlot, (CK_SLOT_ID slotID))			\
	/* partition policies */					\
	X(CA_SetContainerPolicy, (CK_SESSION_HANDLE hSession,		\
		CK_ULONG ulContainerNumber, CK_ULONG ulPolicyType,	\
		CK_ULONG ulPolicyValue))				\
	X(CA_GetContainerPolicy, (CK_SLOT_ID slotID,			\
		CK_ULONG ulContainerNumber, CK_ULONG ulPolicyType,	\
		CK_ULONG_PTR pulPolicyValue))

#define CK_PHSM_CA_DECLARE_(name, args) \
	CK_RV name args; \
	typedef CK_RV (*CK_##name) args;
CK_PHSM_CA_FUNCTIONS(CK_PHSM_CA_DECLARE_)
#undef CK_PHSM_CA_DECLARE_

/*
 * The function list of the vendor interface: C_GetInterface with the
 * name "phsm CA" (CK_PHSM_CA_INTERFACE_NAME) returns a CK_INTERFACE whose
 * pFunctionList points to this structure, version 1.0.  Every entry is
 * set.
 */
#define CK_PHSM_CA_INTERFACE_NAME	"phsm CA"
#define CK_PHSM_CA_VERSION_MAJOR	1
#define CK_PHSM_CA_VERSION_MINOR	0

#define CK_PHSM_CA_MEMBER_(name, args) CK_##name name;
typedef struct CK_PHSM_CA_FUNCTION_LIST {
	CK_VERSION version;
	CK_PHSM_CA_FUNCTIONS(CK_PHSM_CA_MEMBER_)
} CK_PHSM_CA_FUNCTION_LIST;
#undef CK_PHSM_CA_MEMBER_
typedef CK_PHSM_CA_FUNCTION_LIST *CK_PHSM_CA_FUNCTION_LIST_PTR;

#ifdef __cplusplus
}
#endif

#endif /* PHSM_CRYPTOKI_CA_H */
