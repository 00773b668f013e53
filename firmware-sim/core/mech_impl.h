/* SPDX-License-Identifier: MIT */
/*
 * Private interface between the files of the crypto engine (mech*.c).
 * Nothing outside firmware-sim/core/mech*.c includes this.
 */
#ifndef PHSM_FW_MECH_IMPL_H
#define PHSM_FW_MECH_IMPL_H

#include <stdatomic.h>

#include <openssl/evp.h>

#include "mech.h"

/* C_DecryptMessage's answer to a tag that does not verify (PKCS#11 3.0,
 * 5.11.2); userlib/include/phsm/pkcs11.h does not define it (yet). */
#ifdef CKR_AEAD_DECRYPT_FAILED
#define FW_AEAD_DECRYPT_FAILED CKR_AEAD_DECRYPT_FAILED
#else
#define FW_AEAD_DECRYPT_FAILED 0x00000042UL
#endif

#define FW_AES_BLOCK	16
#define FW_MAX_MD	64	/* largest digest we produce (SHA-512) */
#define FW_GCM_IV_MAX	128	/* what OpenSSL's GCM accepts */
#define FW_GCM_TAG_MAX	16
/* Multi-part GCM decryption holds the whole message until the tag is
 * checked; this bounds the memory one session can pin that way. */
#define FW_GCM_BUFFER_MAX (64u << 20)
/* Largest RSA modulus the engine will parse at all (operations are
 * limited to the mechanism table's range). */
#define FW_RSA_PARSE_MAX_BITS 16384

/* ---- Cached algorithm implementations (mech_alg.c) ---- */

enum fw_hash {
	FW_H_NONE = 0,
	FW_H_SHA1,
	FW_H_SHA224,
	FW_H_SHA256,
	FW_H_SHA384,
	FW_H_SHA512,
	FW_H_SHA3_224,
	FW_H_SHA3_256,
	FW_H_SHA3_384,
	FW_H_SHA3_512,
	FW_H_COUNT
};

enum fw_aes_mode {
	FW_AES_ECB,
	FW_AES_CBC,
	FW_AES_CTR,
	FW_AES_GCM,
	FW_AES_WRAP,
	FW_AES_WRAP_PAD,
	FW_AES_MODE_COUNT
};

/* NULL when the provider does not have the algorithm. */
const EVP_MD *fw_md(enum fw_hash h);
size_t fw_md_size(enum fw_hash h);
const char *fw_md_name(enum fw_hash h);
const EVP_CIPHER *fw_aes_cipher(enum fw_aes_mode mode, size_t key_len);
EVP_MAC *fw_mac_hmac(void);
EVP_MAC *fw_mac_cmac(void);
EVP_KDF *fw_kdf_x963(void);

/* PKCS#11 identifiers of hashes in mechanism parameters. */
enum fw_hash fw_hash_from_mech(CK_MECHANISM_TYPE t);	/* CKM_SHA256... */
enum fw_hash fw_hash_from_mgf(CK_ULONG mgf);		/* CKG_MGF1_* */
enum fw_hash fw_hash_from_kdf(CK_ULONG kdf);		/* CKD_*_KDF */

/* ---- Output convention (mech.h) ---- */

/*
 * Decide what a call producing @need bytes does with the caller's buffer.
 * Returns true when the call is over (size query or buffer too small) with
 * *rv set; false when the caller should go on and write @need bytes.
 */
bool fw_out_check(uint8_t *out, size_t *out_len, size_t need, CK_RV *rv);
/* Deliver @n bytes computed in @tmp (exact length only known afterwards). */
CK_RV fw_out_copy(const uint8_t *tmp, size_t n, uint8_t *out, size_t *out_len);

/* ---- Mechanism table (mech.c) ---- */

enum fw_family {
	FW_FAM_KEYGEN,		/* generate (pair), no operations */
	FW_FAM_DIGEST,
	FW_FAM_HMAC,
	FW_FAM_CMAC,
	FW_FAM_AES,		/* ECB, CBC, CBC_PAD, CTR, GCM */
	FW_FAM_AES_WRAP,	/* RFC 3394 / RFC 5649 */
	FW_FAM_RSA,		/* raw PKCS#1 v1.5, PSS, OAEP */
	FW_FAM_RSA_HASH,	/* SHAx_RSA_PKCS, SHAx_RSA_PKCS_PSS */
	FW_FAM_ECDSA,
	FW_FAM_ECDSA_HASH,
	FW_FAM_EDDSA,
	FW_FAM_ECDH,
};

enum fw_param_layout {
	FW_P_NONE,
	FW_P_IV16,
	FW_P_CTR,
	FW_P_GCM,
	FW_P_WRAP,
	FW_P_PSS,
	FW_P_OAEP,
	FW_P_ECDH,
	FW_P_EDDSA,
	FW_P_MAC_LEN,
};

/* Variants inside a family. */
enum fw_variant {
	FW_V_NONE,
	FW_V_PKCS1,		/* RSA PKCS#1 v1.5 */
	FW_V_PSS,
	FW_V_OAEP,
	FW_V_CBC_PAD,
	FW_V_KWP,
};

struct fw_mech_info {
	struct fw_mech_desc desc;
	enum fw_family family;
	enum fw_param_layout layout;
	enum fw_hash hash;
	enum fw_aes_mode aes_mode;
	enum fw_variant variant;
	bool general;		/* *_GENERAL: parameter gives the MAC length */
};

const struct fw_mech_info *fw_mech_info(CK_MECHANISM_TYPE type);

/* ---- Keys (mech_key.c) ---- */

enum fw_curve {
	FW_CURVE_NONE,
	FW_CURVE_P256,
	FW_CURVE_P384,
	FW_CURVE_P521,
	FW_CURVE_ED25519,
};

struct fw_key {
	atomic_uint refs;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE type;
	CK_ULONG size;		/* bits (RSA, EC) or bytes (secret keys) */
	EVP_PKEY *pkey;		/* asymmetric keys */
	enum fw_curve curve;	/* EC and Edwards keys */
	size_t order_len;	/* EC: bytes of the group order (r, s width) */
	uint8_t *secret;	/* secret keys: CKA_VALUE */
	size_t secret_len;
	/* ECDSA: contexts initialised once to sign / verify, copied per use */
	_Atomic(EVP_PKEY_CTX *) ecdsa_ctx[2];
};

/* Curve of a CKA_EC_PARAMS value: CKR_OK, CKR_CURVE_NOT_SUPPORTED or
 * CKR_ATTRIBUTE_VALUE_INVALID. */
CK_RV fw_curve_from_params(const uint8_t *p, size_t len, enum fw_curve *c);
const char *fw_curve_group(enum fw_curve c);	/* OpenSSL group name */
size_t fw_curve_field_len(enum fw_curve c);	/* coordinate bytes */
/* The DER OID of a curve, as CKA_EC_PARAMS. */
const uint8_t *fw_curve_oid(enum fw_curve c, size_t *len);

/* An EC public key from a point (raw or DER OCTET STRING). */
CK_RV fw_ec_public_from_point(enum fw_curve c, const uint8_t *p, size_t len,
			      EVP_PKEY **out);
/* Strip a DER OCTET STRING around an EC point when there is one. */
bool fw_ec_point_unwrap(enum fw_curve c, const uint8_t *p, size_t len,
			const uint8_t **pt, size_t *pt_len);

/* A key wrapped around an EVP_PKEY (takes the reference). */
CK_RV fw_key_from_pkey(EVP_PKEY *pkey, CK_OBJECT_CLASS cls, CK_KEY_TYPE type,
		       enum fw_curve curve, struct fw_key **out);
bool fw_key_type_is_hmac(CK_KEY_TYPE t);
/* Material attributes of a private key, as key generation returns them. */
CK_RV fw_private_attrs(const struct fw_key *k, struct fw_attrs *out);
CK_RV fw_public_attrs(const struct fw_key *k, struct fw_attrs *out);
/* A new secret key's attributes (class, type, value and derived ones);
 * out is freed on failure. */
CK_RV fw_secret_attrs(CK_KEY_TYPE type, const uint8_t *value, size_t len,
		      struct fw_attrs *out);
/* Type and length of a secret key to derive or unwrap, from its template:
 * @avail is the length the mechanism produces by default (0: none). */
CK_RV fw_secret_template(const struct fw_attrs *tmpl, size_t avail,
			 CK_KEY_TYPE *type, size_t *len);

/* ---- Operations ---- */

struct fw_op_class {
	CK_RV (*oneshot)(struct fw_op *op, const uint8_t *in, size_t in_len,
			 const uint8_t *sig, size_t sig_len,
			 uint8_t *out, size_t *out_len);
	/* NULL for single-part mechanisms. */
	CK_RV (*update)(struct fw_op *op, const uint8_t *in, size_t in_len,
			uint8_t *out, size_t *out_len);
	CK_RV (*final)(struct fw_op *op, const uint8_t *sig, size_t sig_len,
		       uint8_t *out, size_t *out_len);
	void (*release)(struct fw_op *op);
};

struct fw_aes_state {
	EVP_CIPHER_CTX *ctx;
	bool ready;			/* ctx keyed for this operation */
	uint8_t iv[FW_AES_BLOCK];
	size_t iv_len;			/* key wrap: 0 for the default IV */
	uint8_t pend[FW_AES_BLOCK];	/* block-mode bytes not yet processed */
	size_t pend_len;
	uint64_t ctr_blocks;		/* CTR: blocks left before the counter wraps */
	uint64_t done;			/* bytes processed so far */
	uint8_t *gcm_buf;		/* GCM decryption: ciphertext || tag */
	size_t gcm_len;
	size_t gcm_cap;
	size_t tag_len;
	uint8_t *aad;			/* GCM: copy of the mechanism's AAD */
	size_t aad_len;
	uint8_t gcm_iv[FW_GCM_IV_MAX];
	size_t gcm_iv_len;
};

struct fw_op {
	const struct fw_op_class *ops;
	enum phsm_op_kind kind;
	const struct fw_mech_info *mi;
	struct fw_key *key;
	bool started;			/* an update has been accepted */
	size_t mac_len;			/* MACs: output length */
	size_t sig_len;			/* RSA, ECDSA, EdDSA: signature bytes */
	size_t max_in;			/* RSA: largest input */
	EVP_MD_CTX *mdctx;		/* digests, hash-and-sign, EdDSA */
	EVP_PKEY_CTX *pctx;		/* raw RSA, ECDSA */
	EVP_MAC_CTX *macctx;		/* HMAC, CMAC */
	struct fw_aes_state aes;
	struct fw_mech_copy {		/* what the op keeps of its mechanism */
		CK_ULONG counter_bits;
		enum fw_hash hash;
		enum fw_hash mgf;
		CK_ULONG salt_len;
		uint8_t *label;
		size_t label_len;
	} p;
};

CK_RV fw_digest_op_init(struct fw_op *op, const struct fw_mech *m);
CK_RV fw_mac_op_init(struct fw_op *op, const struct fw_mech *m);
CK_RV fw_aes_op_init(struct fw_op *op, const struct fw_mech *m);
CK_RV fw_aes_wrap_op_init(struct fw_op *op, const struct fw_mech *m);
CK_RV fw_rsa_op_init(struct fw_op *op, const struct fw_mech *m);
CK_RV fw_ec_op_init(struct fw_op *op, const struct fw_mech *m);

/* Key checks shared by operations, wrapping and derivation. */
CK_RV fw_check_key_size(const struct fw_mech_info *mi, const struct fw_key *k,
			CK_RV range_rv);

/* RSA padding settings on a key context (shared with wrapping). */
CK_RV fw_rsa_set_padding(EVP_PKEY_CTX *pctx, const struct fw_mech_info *mi,
			 const struct fw_mech *m);
/* Largest input RSA encryption with this padding accepts. */
size_t fw_rsa_max_input(const struct fw_key *k, const struct fw_mech_info *mi,
			const struct fw_mech *m);
CK_RV fw_rsa_check_oaep(const struct fw_mech *m);

/* AES key wrap of arbitrary bytes (RFC 3394 / 5649). */
CK_RV fw_aes_kw(const struct fw_key *k, bool pad, bool enc,
		const struct fw_mech *m, const uint8_t *in, size_t in_len,
		uint8_t *out, size_t *out_len);

/* Key a GCM context for one message (shared with mech_msg.c). */
bool fw_gcm_start(EVP_CIPHER_CTX *ctx, const struct fw_key *k,
		  const uint8_t *iv, size_t iv_len, bool enc,
		  const uint8_t *aad, size_t aad_len);

/* Wipe and free. */
void fw_free_secret(void *p, size_t len);

#endif /* PHSM_FW_MECH_IMPL_H */
