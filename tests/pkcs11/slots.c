// SPDX-License-Identifier: MIT
/*
 * Slot and token management (base spec 5.5): slot list conventions,
 * slot and token information, mechanism list and information.
 */
#include "suite.h"

#include <stdio.h>
#include <string.h>

static void assert_padded(const CK_UTF8CHAR *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_true(s[i] >= 0x20);	/* blank padded, no NUL */
}

static void test_slot_list(void **state)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 0, count;

	(void)state;
	for (int present = 0; present <= 1; present++) {
		/* 5.5.1: NULL list -> the count, CKR_OK whatever *pulCount was. */
		n = 12345;
		assert_rv(P11->C_GetSlotList((CK_BBOOL)present, NULL, &n), CKR_OK);
		assert_true(n >= 2 && n <= ARRAY_SIZE(slots));
		/* Too small: CKR_BUFFER_TOO_SMALL and the count. */
		count = n - 1;
		assert_rv(P11->C_GetSlotList((CK_BBOOL)present, slots, &count),
			  CKR_BUFFER_TOO_SMALL);
		assert_int_equal(count, n);
		count = 0;
		assert_rv(P11->C_GetSlotList((CK_BBOOL)present, slots, &count),
			  CKR_BUFFER_TOO_SMALL);
		assert_int_equal(count, n);
		/* Large enough: the list, and the count it holds. */
		count = ARRAY_SIZE(slots);
		assert_rv(P11->C_GetSlotList((CK_BBOOL)present, slots, &count), CKR_OK);
		assert_int_equal(count, n);
	}
	/* Slot IDs are card * 16 + partition, so the first card's first two
	 * partitions are consecutive IDs on a 16-boundary. */
	assert_int_equal(slots[0] % 16, 0);
	assert_int_equal(slots[1], slots[0] + 1);
	assert_int_equal(slots[0], S.slot);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_SLOT_INFO si;

		memset(&si, 0, sizeof(si));
		assert_rv(P11->C_GetSlotInfo(slots[i], &si), CKR_OK);
		assert_true(si.flags & CKF_TOKEN_PRESENT);
		assert_padded(si.slotDescription, sizeof(si.slotDescription));
		assert_padded(si.manufacturerID, sizeof(si.manufacturerID));
	}
	assert_rv(P11->C_GetSlotList(CK_FALSE, NULL, NULL), CKR_ARGUMENTS_BAD);
}

static void test_invalid_slot(void **state)
{
	static const CK_SLOT_ID bad[] = { 15, 0x7fff, 0xffffffffUL, (CK_SLOT_ID)-1 };
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_MECHANISM_INFO mi;
	CK_ULONG n;
	CK_SESSION_HANDLE h;
	CK_UTF8CHAR label[32];

	(void)state;
	pad_label(label, "nope");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		/* 15: partition 15 of the first card, which has only 2 */
		CK_SLOT_ID s = bad[i] == 15 ? S.slot + 15 : bad[i];

		assert_rv(P11->C_GetSlotInfo(s, &si), CKR_SLOT_ID_INVALID);
		assert_rv(P11->C_GetTokenInfo(s, &ti), CKR_SLOT_ID_INVALID);
		assert_rv(P11->C_GetMechanismList(s, NULL, &n), CKR_SLOT_ID_INVALID);
		assert_rv(P11->C_GetMechanismInfo(s, CKM_SHA256, &mi),
			  CKR_SLOT_ID_INVALID);
		assert_rv(P11->C_OpenSession(s, CKF_SERIAL_SESSION, NULL, NULL, &h),
			  CKR_SLOT_ID_INVALID);
		assert_rv(P11->C_CloseAllSessions(s), CKR_SLOT_ID_INVALID);
		assert_rv(P11->C_InitToken(s, (CK_UTF8CHAR_PTR)SO_PIN,
					   strlen(SO_PIN), label), CKR_SLOT_ID_INVALID);
	}
}

/* The token's flags through C_InitToken and C_InitPIN (group set-up). */
static void test_token_info_init_flags(void **state)
{
	CK_TOKEN_INFO ti;
	CK_UTF8CHAR label[32];

	(void)state;
	if (!(S.before_init.flags & CKF_TOKEN_INITIALIZED)) {
		/* A fresh card: nothing is set up yet. */
		assert_false(S.before_init.flags & CKF_USER_PIN_INITIALIZED);
	} else {
		print_message("      (token was initialised by an earlier run)\n");
	}
	/* After C_InitToken: initialised, and the user PIN is gone (5.5.4). */
	assert_true(S.after_init_token.flags & CKF_TOKEN_INITIALIZED);
	assert_false(S.after_init_token.flags & CKF_USER_PIN_INITIALIZED);
	/* After C_InitPIN. */
	assert_true(S.after_init_pin.flags & CKF_TOKEN_INITIALIZED);
	assert_true(S.after_init_pin.flags & CKF_USER_PIN_INITIALIZED);
	assert_false(S.after_init_pin.flags & CKF_USER_PIN_LOCKED);

	memset(&ti, 0, sizeof(ti));
	assert_rv(P11->C_GetTokenInfo(S.slot, &ti), CKR_OK);
	pad_label(label, TOKEN_LABEL);
	assert_memory_equal(ti.label, label, 32);
	assert_true(ti.flags & CKF_TOKEN_INITIALIZED);
	assert_true(ti.flags & CKF_USER_PIN_INITIALIZED);
	assert_true(ti.flags & CKF_RNG);
	assert_false(ti.flags & CKF_WRITE_PROTECTED);
	/* PINs are passed through the API: no protected path. */
	assert_false(ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH);
	assert_int_equal(ti.ulMinPinLen, 4);
	assert_int_equal(ti.ulMaxPinLen, 64);
	assert_padded(ti.manufacturerID, sizeof(ti.manufacturerID));
	assert_padded(ti.model, sizeof(ti.model));
	assert_padded(ti.serialNumber, sizeof(ti.serialNumber));
	assert_true(ti.serialNumber[0] != ' ');
	assert_rv(P11->C_GetTokenInfo(S.slot, NULL), CKR_ARGUMENTS_BAD);
}

struct mech_expect {
	CK_MECHANISM_TYPE type;
	const char *name;
	CK_FLAGS need;		/* flags that must be set (CKF_HW implied) */
	CK_FLAGS never;		/* flags that must not be */
	CK_ULONG min, max;	/* key sizes, 0/0: not checked */
};

#define CRYPT (CKF_ENCRYPT | CKF_DECRYPT)
#define SIGVER (CKF_SIGN | CKF_VERIFY)
#define WRAPS (CKF_WRAP | CKF_UNWRAP)
#define ECF (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)
#define NOT_KEYGEN (CKF_GENERATE | CKF_GENERATE_KEY_PAIR)
#define NOT_OPS (CRYPT | SIGVER | CKF_DIGEST | WRAPS | CKF_DERIVE)
#define M(x) x, #x

/* The mechanisms phsm implements, with what each must advertise. */
static const struct mech_expect expected[] = {
	{ M(CKM_RSA_PKCS_KEY_PAIR_GEN), CKF_GENERATE_KEY_PAIR, NOT_OPS, 2048, 4096 },
	{ M(CKM_RSA_PKCS), CRYPT | SIGVER | WRAPS, NOT_KEYGEN, 2048, 4096 },
	{ M(CKM_RSA_PKCS_PSS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_RSA_PKCS_OAEP), CRYPT | WRAPS, NOT_KEYGEN | SIGVER, 2048, 4096 },
	{ M(CKM_SHA1_RSA_PKCS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_SHA224_RSA_PKCS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_SHA256_RSA_PKCS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_SHA384_RSA_PKCS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_SHA512_RSA_PKCS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_SHA1_RSA_PKCS_PSS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_SHA224_RSA_PKCS_PSS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_SHA256_RSA_PKCS_PSS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_SHA384_RSA_PKCS_PSS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_SHA512_RSA_PKCS_PSS), SIGVER, NOT_KEYGEN | CRYPT, 2048, 4096 },
	{ M(CKM_EC_KEY_PAIR_GEN), CKF_GENERATE_KEY_PAIR | ECF, NOT_OPS, 256, 521 },
	{ M(CKM_ECDSA), SIGVER | ECF, NOT_KEYGEN | CRYPT, 256, 521 },
	{ M(CKM_ECDSA_SHA1), SIGVER | ECF, NOT_KEYGEN | CRYPT, 256, 521 },
	{ M(CKM_ECDSA_SHA224), SIGVER | ECF, NOT_KEYGEN | CRYPT, 256, 521 },
	{ M(CKM_ECDSA_SHA256), SIGVER | ECF, NOT_KEYGEN | CRYPT, 256, 521 },
	{ M(CKM_ECDSA_SHA384), SIGVER | ECF, NOT_KEYGEN | CRYPT, 256, 521 },
	{ M(CKM_ECDSA_SHA512), SIGVER | ECF, NOT_KEYGEN | CRYPT, 256, 521 },
	{ M(CKM_ECDH1_DERIVE), CKF_DERIVE | ECF, NOT_KEYGEN | CRYPT | SIGVER, 256, 521 },
	{ M(CKM_EC_EDWARDS_KEY_PAIR_GEN), CKF_GENERATE_KEY_PAIR, NOT_OPS, 0, 0 },
	{ M(CKM_EDDSA), SIGVER, NOT_KEYGEN | CRYPT, 0, 0 },
	{ M(CKM_AES_KEY_GEN), CKF_GENERATE, NOT_OPS | CKF_GENERATE_KEY_PAIR, 16, 32 },
	{ M(CKM_AES_ECB), CRYPT, NOT_KEYGEN | SIGVER, 16, 32 },
	{ M(CKM_AES_CBC), CRYPT, NOT_KEYGEN | SIGVER, 16, 32 },
	{ M(CKM_AES_CBC_PAD), CRYPT, NOT_KEYGEN | SIGVER, 16, 32 },
	{ M(CKM_AES_CTR), CRYPT, NOT_KEYGEN | SIGVER, 16, 32 },
	{ M(CKM_AES_GCM), CRYPT | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT,
	  NOT_KEYGEN | SIGVER, 16, 32 },
	{ M(CKM_AES_KEY_WRAP), WRAPS, NOT_KEYGEN | SIGVER, 16, 32 },
	{ M(CKM_AES_KEY_WRAP_PAD), WRAPS, NOT_KEYGEN | SIGVER, 16, 32 },
	{ M(CKM_AES_CMAC), SIGVER, NOT_KEYGEN | CRYPT, 16, 32 },
	{ M(CKM_SHA_1), CKF_DIGEST, NOT_KEYGEN | CRYPT | SIGVER | WRAPS, 0, 0 },
	{ M(CKM_SHA224), CKF_DIGEST, NOT_KEYGEN | CRYPT | SIGVER | WRAPS, 0, 0 },
	{ M(CKM_SHA256), CKF_DIGEST, NOT_KEYGEN | CRYPT | SIGVER | WRAPS, 0, 0 },
	{ M(CKM_SHA384), CKF_DIGEST, NOT_KEYGEN | CRYPT | SIGVER | WRAPS, 0, 0 },
	{ M(CKM_SHA512), CKF_DIGEST, NOT_KEYGEN | CRYPT | SIGVER | WRAPS, 0, 0 },
	{ M(CKM_SHA3_224), CKF_DIGEST, NOT_KEYGEN | CRYPT | SIGVER | WRAPS, 0, 0 },
	{ M(CKM_SHA3_256), CKF_DIGEST, NOT_KEYGEN | CRYPT | SIGVER | WRAPS, 0, 0 },
	{ M(CKM_SHA3_384), CKF_DIGEST, NOT_KEYGEN | CRYPT | SIGVER | WRAPS, 0, 0 },
	{ M(CKM_SHA3_512), CKF_DIGEST, NOT_KEYGEN | CRYPT | SIGVER | WRAPS, 0, 0 },
	{ M(CKM_SHA_1_HMAC), SIGVER, NOT_KEYGEN | CRYPT | CKF_DIGEST, 0, 0 },
	{ M(CKM_SHA224_HMAC), SIGVER, NOT_KEYGEN | CRYPT | CKF_DIGEST, 0, 0 },
	{ M(CKM_SHA256_HMAC), SIGVER, NOT_KEYGEN | CRYPT | CKF_DIGEST, 0, 0 },
	{ M(CKM_SHA384_HMAC), SIGVER, NOT_KEYGEN | CRYPT | CKF_DIGEST, 0, 0 },
	{ M(CKM_SHA512_HMAC), SIGVER, NOT_KEYGEN | CRYPT | CKF_DIGEST, 0, 0 },
	{ M(CKM_SHA3_224_HMAC), SIGVER, NOT_KEYGEN | CRYPT | CKF_DIGEST, 0, 0 },
	{ M(CKM_SHA3_256_HMAC), SIGVER, NOT_KEYGEN | CRYPT | CKF_DIGEST, 0, 0 },
	{ M(CKM_SHA3_384_HMAC), SIGVER, NOT_KEYGEN | CRYPT | CKF_DIGEST, 0, 0 },
	{ M(CKM_SHA3_512_HMAC), SIGVER, NOT_KEYGEN | CRYPT | CKF_DIGEST, 0, 0 },
	{ M(CKM_GENERIC_SECRET_KEY_GEN), CKF_GENERATE, NOT_OPS | CKF_GENERATE_KEY_PAIR,
	  0, 0 },
};

static void test_mechanism_list(void **state)
{
	CK_MECHANISM_TYPE list[256];
	CK_ULONG n = 0, count;
	int missing = 0;

	(void)state;
	assert_rv(P11->C_GetMechanismList(S.slot, NULL, &n), CKR_OK);
	assert_true(n >= ARRAY_SIZE(expected) && n <= ARRAY_SIZE(list));
	count = n - 1;
	assert_rv(P11->C_GetMechanismList(S.slot, list, &count), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(count, n);
	count = ARRAY_SIZE(list);
	assert_rv(P11->C_GetMechanismList(S.slot, list, &count), CKR_OK);
	assert_int_equal(count, n);
	assert_rv(P11->C_GetMechanismList(S.slot, list, NULL), CKR_ARGUMENTS_BAD);

	for (size_t i = 0; i < ARRAY_SIZE(expected); i++) {
		bool found = false;

		for (CK_ULONG j = 0; j < n; j++)
			found |= list[j] == expected[i].type;
		if (!found) {
			print_error("mechanism list lacks %s\n", expected[i].name);
			missing++;
		}
	}
	assert_int_equal(missing, 0);
	/* Every listed mechanism has info, in hardware; no duplicates. */
	for (CK_ULONG j = 0; j < n; j++) {
		CK_MECHANISM_INFO mi;

		assert_rv(P11->C_GetMechanismInfo(S.slot, list[j], &mi), CKR_OK);
		assert_true(mi.flags & CKF_HW);
		for (CK_ULONG k = j + 1; k < n; k++)
			assert_true(list[j] != list[k]);
	}
	/* Both partitions offer the same mechanisms. */
	count = 0;
	assert_rv(P11->C_GetMechanismList(S.slot2, NULL, &count), CKR_OK);
	assert_int_equal(count, n);
}

static void test_mechanism_info(void **state)
{
	CK_MECHANISM_INFO mi;
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(expected); i++) {
		const struct mech_expect *e = &expected[i];

		memset(&mi, 0xa5, sizeof(mi));
		assert_rv(P11->C_GetMechanismInfo(S.slot, e->type, &mi), CKR_OK);
		if ((mi.flags & (e->need | CKF_HW)) != (e->need | CKF_HW)) {
			print_error("%s: flags 0x%lx lack 0x%lx\n", e->name, mi.flags,
				    (e->need | CKF_HW) & ~mi.flags);
			bad++;
		}
		if (mi.flags & e->never) {
			print_error("%s: flags 0x%lx claim 0x%lx\n", e->name, mi.flags,
				    mi.flags & e->never);
			bad++;
		}
		if (e->max && (mi.ulMinKeySize != e->min || mi.ulMaxKeySize != e->max)) {
			print_error("%s: key sizes %lu..%lu, expected %lu..%lu\n", e->name,
				    mi.ulMinKeySize, mi.ulMaxKeySize, e->min, e->max);
			bad++;
		}
		if (!e->max && mi.ulMinKeySize > mi.ulMaxKeySize) {
			print_error("%s: key sizes %lu..%lu\n", e->name,
				    mi.ulMinKeySize, mi.ulMaxKeySize);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
	assert_rv(P11->C_GetMechanismInfo(S.slot, 0x7ffffff0UL, &mi),
		  CKR_MECHANISM_INVALID);
	assert_rv(P11->C_GetMechanismInfo(S.slot, CKM_MD5, &mi), CKR_MECHANISM_INVALID);
	assert_rv(P11->C_GetMechanismInfo(S.slot, CKM_SHA256, NULL), CKR_ARGUMENTS_BAD);
}

const struct CMUnitTest slots_tests[] = {
	P11_TEST(test_slot_list),
	P11_TEST(test_invalid_slot),
	P11_TEST(test_token_info_init_flags),
	P11_TEST(test_mechanism_list),
	P11_TEST(test_mechanism_info),
};
SUITE_COUNT(slots);
