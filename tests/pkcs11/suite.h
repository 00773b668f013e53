/* SPDX-License-Identifier: MIT */
/*
 * The PKCS#11 behaviour suite: shared state and helpers.
 *
 * The suite loads a PKCS#11 module with dlopen() (argv[1]) and checks what
 * the PKCS#11 v3.0 base specification requires of it.  Each topic file
 * (general.c, slots.c, sessions.c, objects.c, crypto_*.c, keys.c,
 * threads.c, args.c, digest.c, and ca_domains.c, ca_cluster.c, ca_clone.c for the
 * Luna CA_ extensions) exports a table of cmocka tests; suite.c runs them
 * all as one group, so cmocka prints one summary.
 *
 * Every test starts with the library initialised (CKF_OS_LOCKING_OK) and
 * no session open, and finalises it at the end; tests about C_Initialize
 * itself run without that fixture.  The token of the first slot is
 * (re)initialised once, before the tests, with the PINs below.
 */
#ifndef PHSM_SUITE_H
#define PHSM_SUITE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include <phsm/pkcs11.h>

#define SO_PIN		"12345678"
#define SO_PIN_ALT	"87654321"	/* the SO PIN while C_SetPIN tests run */
/* A 32-byte user PIN, as real clients (e.g. generated PINs) use. */
#define USER_PIN	"0123456789abcdefghijklmnopqrstuv"
#define TOKEN_LABEL	"phsm-suite"

/* PINs of the second partition, where lockout is tested. */
#define SO2_PIN		"so-pin-2"
#define USER2_PIN	"2222"

/* PKCS#11 3.0 (5.11.2); missing from some headers. */
#ifndef CKR_AEAD_DECRYPT_FAILED
#define CKR_AEAD_DECRYPT_FAILED 0x00000042UL
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* What the suite knows about the module and the token. */
struct suite {
	void *dl;
	CK_FUNCTION_LIST_3_0_PTR f;	/* the 3.0 interface */
	CK_FUNCTION_LIST_PTR f2;	/* from C_GetFunctionList */
	CK_C_GetFunctionList get_function_list;
	CK_C_GetInterfaceList get_interface_list;
	CK_C_GetInterface get_interface;
	CK_SLOT_ID slot;		/* first slot: the suite's token */
	CK_SLOT_ID slot2;		/* second slot: lockout tests */
	/* Token info of the first slot at three moments of the setup. */
	CK_TOKEN_INFO before_init;
	CK_TOKEN_INFO after_init_token;
	CK_TOKEN_INFO after_init_pin;
};

extern struct suite S;

/* Shorthand for the 3.0 function list. */
#define P11 (S.f)

/* Assert a CK_RV, printing both values by name on failure. */
#define assert_rv(expr, expected) \
	_assert_rv((expr), (expected), #expr, __FILE__, __LINE__)
void _assert_rv(CK_RV got, CK_RV expected, const char *expr,
		const char *file, int line);
const char *rv_name(CK_RV rv);

/* Fixtures (per test): initialise / finalise the library. */
int lib_up(void **state);
int lib_down(void **state);

/* A test with the library fixture. */
#define P11_TEST(fn) cmocka_unit_test_setup_teardown(fn, lib_up, lib_down)

/* Sessions on the suite's token. */
CK_SESSION_HANDLE open_session(CK_SLOT_ID slot, CK_FLAGS flags);
CK_SESSION_HANDLE open_rw(void);
CK_SESSION_HANDLE open_ro(void);
/* R/W session with the normal user logged in. */
CK_SESSION_HANDLE user_session(void);
void login_user(CK_SESSION_HANDLE h);
CK_STATE session_state(CK_SESSION_HANDLE h);

/*
 * Templates: a builder with room for the values it points to, so that a
 * template can be put together in a few lines.
 */
#define TMPL_MAX 40
struct tmpl {
	CK_ATTRIBUTE a[TMPL_MAX];
	CK_ULONG n;
	CK_ULONG ul[TMPL_MAX];
	CK_BBOOL b[TMPL_MAX];
};

void tmpl_init(struct tmpl *t);
void tmpl_bool(struct tmpl *t, CK_ATTRIBUTE_TYPE type, bool v);
void tmpl_ulong(struct tmpl *t, CK_ATTRIBUTE_TYPE type, CK_ULONG v);
void tmpl_bytes(struct tmpl *t, CK_ATTRIBUTE_TYPE type, const void *p,
		CK_ULONG len);
void tmpl_str(struct tmpl *t, CK_ATTRIBUTE_TYPE type, const char *s);

/* Attribute reads that must succeed. */
CK_ULONG attr_len(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
		  CK_ATTRIBUTE_TYPE type);
/* Reads into a malloc'ed buffer; returns it and sets *len. */
uint8_t *attr_get(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
		  CK_ATTRIBUTE_TYPE type, CK_ULONG *len);
bool attr_bool(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
	       CK_ATTRIBUTE_TYPE type);
CK_ULONG attr_ulong(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
		    CK_ATTRIBUTE_TYPE type);
/* The rv of a one-attribute read into a fixed buffer. */
CK_RV attr_try(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
	       CK_ATTRIBUTE_TYPE type, CK_ULONG *len);

/* Objects the tests need again and again. */
CK_OBJECT_HANDLE create_secret(CK_SESSION_HANDLE h, CK_KEY_TYPE type,
			       const void *value, CK_ULONG len,
			       const struct tmpl *extra);
CK_OBJECT_HANDLE create_data(CK_SESSION_HANDLE h, const char *label,
			     bool token, bool private_obj);
CK_OBJECT_HANDLE gen_aes(CK_SESSION_HANDLE h, CK_ULONG len,
			 const struct tmpl *extra);
void gen_rsa(CK_SESSION_HANDLE h, CK_ULONG bits, CK_OBJECT_HANDLE *pub,
	     CK_OBJECT_HANDLE *priv);
void gen_ec(CK_SESSION_HANDLE h, const uint8_t *params, size_t params_len,
	    CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv);
void gen_ed25519(CK_SESSION_HANDLE h, const uint8_t *params,
		 size_t params_len, CK_OBJECT_HANDLE *pub,
		 CK_OBJECT_HANDLE *priv);
/* Find objects matching a template; returns how many, fills out[max]. */
CK_ULONG find(CK_SESSION_HANDLE h, CK_ATTRIBUTE *t, CK_ULONG n,
	      CK_OBJECT_HANDLE *out, CK_ULONG max);
CK_ULONG find_label(CK_SESSION_HANDLE h, const char *label);

/* DER OIDs of the curves, as CKA_EC_PARAMS. */
extern const uint8_t OID_P256[10], OID_P384[7], OID_P521[7], OID_ED25519[5];

/* Public keys as OpenSSL sees them, built from token attributes. */
EVP_PKEY *rsa_pub_to_evp(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub);
EVP_PKEY *ec_pub_to_evp(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub,
			const char *group);
EVP_PKEY *ed25519_pub_to_evp(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub);
/* The raw uncompressed point inside a CKA_EC_POINT (DER OCTET STRING). */
uint8_t *ec_point_raw(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub, size_t *len);

/* Mechanism helpers. */
bool mech_supported(CK_SLOT_ID slot, CK_MECHANISM_TYPE m);
/* Sign data with a one-shot C_Sign; returns the length. */
CK_ULONG sign(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE key,
	      const void *data, CK_ULONG len, uint8_t *sig, CK_ULONG cap);
CK_RV verify(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE key,
	     const void *data, CK_ULONG len, const uint8_t *sig,
	     CK_ULONG sig_len);

void fill_pattern(uint8_t *p, size_t n, unsigned int seed);
void pad_label(CK_UTF8CHAR out[32], const char *s);
/* Initialise a token with a given SO PIN (tries an alternative on
 * CKR_PIN_INCORRECT), set its user PIN.  Returns the rv of the last step;
 * *after_token (if not NULL) gets the token info right after C_InitToken. */
CK_RV init_token_and_pin(CK_SLOT_ID slot, const char *so_pin,
			 const char *so_pin_alt, const char *label,
			 const char *user_pin, CK_TOKEN_INFO *after_token);

/* The test tables of the topic files. */
#define SUITE_TABLE(name) \
	extern const struct CMUnitTest name##_tests[]; \
	extern const size_t name##_count
SUITE_TABLE(general);
SUITE_TABLE(slots);
SUITE_TABLE(sessions);
SUITE_TABLE(objects);
SUITE_TABLE(crypto_sym);
SUITE_TABLE(crypto_asym);
SUITE_TABLE(keys);
SUITE_TABLE(threads);
SUITE_TABLE(args);
SUITE_TABLE(ca_domains);
SUITE_TABLE(ca_cluster);
SUITE_TABLE(ca_clone);
SUITE_TABLE(digest);

#define SUITE_COUNT(name) \
	const size_t name##_count = ARRAY_SIZE(name##_tests)

#endif /* PHSM_SUITE_H */
