/* SPDX-License-Identifier: MIT */
/*
 * The firmware's crypto engine: mechanisms, keys and operations, all through
 * OpenSSL 3 EVP.  The engine knows nothing of sessions, objects, PINs or
 * policy; the card core (card.c and friends) decides *whether* an operation
 * is allowed (usage flags, CKA_ALLOWED_MECHANISMS, login state, sensitivity)
 * and the engine does it.
 *
 * Output convention, used by every function with (out, outlen):
 *   out == NULL        size query: *outlen = the length needed (may be an
 *                      upper bound for decryption), CKR_OK, nothing changes;
 *   *outlen too small  CKR_BUFFER_TOO_SMALL, *outlen = needed, nothing changes;
 *   otherwise          the output is written and *outlen set to its length.
 * The core ends an operation after any call that did not return
 * CKR_BUFFER_TOO_SMALL and was not a size query, as PKCS#11 requires.
 */
#ifndef PHSM_FW_MECH_H
#define PHSM_FW_MECH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <phsm/pkcs11.h>

#include "../../uapi/phsm_proto.h"
#include "../../uapi/codec/phsm_codec.h"
#include "attrs.h"

/* What C_GetMechanismList / C_GetMechanismInfo report. */
struct fw_mech_desc {
	CK_MECHANISM_TYPE type;
	CK_ULONG min_key;	/* bits for RSA/EC, bytes for AES/HMAC keys */
	CK_ULONG max_key;
	CK_FLAGS flags;		/* CKF_HW always set */
};

size_t fw_mech_count(void);
const struct fw_mech_desc *fw_mech_at(size_t i);
const struct fw_mech_desc *fw_mech_find(CK_MECHANISM_TYPE type);

/*
 * A mechanism with its decoded parameter.  fw_mech_parse() copies
 * everything it keeps out of the message, so the result outlives it.
 * The members after @type belong to the engine.
 */
struct fw_mech {
	CK_MECHANISM_TYPE type;
	uint8_t *buf;		/* one allocation holding the byte strings */
	const uint8_t *iv;
	size_t iv_len;
	CK_ULONG iv_bits;
	const uint8_t *aad;
	size_t aad_len;
	CK_ULONG tag_bits;
	CK_ULONG counter_bits;
	CK_ULONG hash_alg;	/* PSS, OAEP */
	CK_ULONG mgf;
	CK_ULONG salt_len;
	CK_ULONG source;	/* OAEP */
	const uint8_t *source_data;
	size_t source_len;
	CK_ULONG kdf;		/* ECDH1_DERIVE */
	const uint8_t *shared_data;
	size_t shared_len;
	const uint8_t *public_data;
	size_t public_len;
	bool has_eddsa_params;
	CK_ULONG ph_flag;
	const uint8_t *context;
	size_t context_len;
	CK_ULONG mac_len;	/* *_GENERAL */
};

/*
 * Decode a mechanism's parameter (uapi/phsm_proto.h lists the layouts).
 * CKR_MECHANISM_INVALID for a mechanism the card does not have,
 * CKR_MECHANISM_PARAM_INVALID for a parameter that is malformed or out of
 * range.  On success, release with fw_mech_free().
 */
CK_RV fw_mech_parse(CK_MECHANISM_TYPE type, struct phsm_reader *param,
		    struct fw_mech *out);
void fw_mech_free(struct fw_mech *m);

/*
 * A key in the engine's parsed form, built once from an object's attributes
 * and cached by the core on the object; reference counted, immutable, safe
 * to use from several threads at once.
 */
struct fw_key;

/*
 * Build a key from the attributes of a key object (CKA_CLASS, CKA_KEY_TYPE
 * and the material: CKA_VALUE, CKA_MODULUS..., CKA_EC_PARAMS/CKA_EC_POINT).
 * Also the validator for C_CreateObject of keys: CKR_TEMPLATE_INCOMPLETE
 * when material is missing, CKR_ATTRIBUTE_VALUE_INVALID when malformed,
 * CKR_CURVE_NOT_SUPPORTED for an unknown curve.
 */
CK_RV fw_key_load(const struct fw_attrs *obj, struct fw_key **out);
struct fw_key *fw_key_get(struct fw_key *k);
void fw_key_put(struct fw_key *k);
CK_KEY_TYPE fw_key_type(const struct fw_key *k);
CK_OBJECT_CLASS fw_key_class(const struct fw_key *k);
/* Size in the unit of fw_mech_desc.min_key (bits or bytes). */
CK_ULONG fw_key_size(const struct fw_key *k);

/*
 * Attributes the token computes for a key object it stores: for example
 * CKA_MODULUS_BITS of an RSA key, CKA_VALUE_LEN of a secret key,
 * CKA_PUBLIC_KEY_INFO.  Added to @obj where absent.
 */
CK_RV fw_key_derived_attrs(const struct fw_key *k, struct fw_attrs *obj);

/*
 * Key generation.  The templates are the caller's (already merged with the
 * token's defaults by the core); the engine reads what it needs
 * (CKA_VALUE_LEN, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS) and
 * returns only the generated material and the attributes derived from it
 * (CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE, CKA_MODULUS, ...) in the out lists.
 * Errors: CKR_TEMPLATE_INCOMPLETE, CKR_ATTRIBUTE_VALUE_INVALID,
 * CKR_KEY_SIZE_RANGE, CKR_CURVE_NOT_SUPPORTED, CKR_MECHANISM_INVALID.
 */
CK_RV fw_generate_key(const struct fw_mech *m, const struct fw_attrs *tmpl,
		      struct fw_attrs *key);
CK_RV fw_generate_key_pair(const struct fw_mech *m,
			   const struct fw_attrs *pub_tmpl,
			   const struct fw_attrs *priv_tmpl,
			   struct fw_attrs *pub, struct fw_attrs *priv);

/*
 * Operations: one per session and kind, owned by the core.  fw_op_new()
 * checks that key and mechanism fit (CKR_KEY_TYPE_INCONSISTENT,
 * CKR_KEY_SIZE_RANGE, CKR_MECHANISM_INVALID for a mechanism that cannot do
 * this kind, CKR_MECHANISM_PARAM_INVALID).  @key is NULL for digests; the
 * operation takes its own reference.
 *
 * For VERIFY, @sig carries the signature and the result is CKR_OK or
 * CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE; no output.
 */
struct fw_op;

CK_RV fw_op_new(enum phsm_op_kind kind, const struct fw_mech *m,
		struct fw_key *key, struct fw_op **out);
void fw_op_free(struct fw_op *op);
/* False for mechanisms that are single-part only (CKM_ECDSA, CKM_RSA_PKCS
 * sign, CKM_EDDSA, RSA encryption...): the core then answers update/final
 * with CKR_FUNCTION_NOT_SUPPORTED, which like any error ends the operation
 * (PKCS#11 5.13.3; pkcs11-tool --test relies on it). */
bool fw_op_multipart(const struct fw_op *op);
CK_RV fw_op_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
		    const uint8_t *sig, size_t sig_len,
		    uint8_t *out, size_t *out_len);
CK_RV fw_op_update(struct fw_op *op, const uint8_t *in, size_t in_len,
		   uint8_t *out, size_t *out_len);
/* Digest a secret key's value into a digest operation (C_DigestKey):
 * CKR_KEY_INDIGESTIBLE for keys that are not secret keys. */
CK_RV fw_op_digest_key(struct fw_op *op, const struct fw_key *key);
CK_RV fw_op_final(struct fw_op *op, const uint8_t *sig, size_t sig_len,
		  uint8_t *out, size_t *out_len);

/*
 * Message-based operations (PKCS#11 3.0 C_MessageEncryptInit ...): AES_GCM
 * for ENCRYPT/DECRYPT.  The per-message parameter arrives decoded.
 */
struct fw_msg_param {
	const uint8_t *iv;	/* GCM: input IV, or its fixed part */
	size_t iv_len;
	CK_ULONG iv_fixed_bits;
	CK_ULONG iv_generator;	/* CKG_* */
	const uint8_t *tag;	/* decrypt: the tag to check */
	size_t tag_len;
	CK_ULONG tag_bits;
};

/* What the card writes back into the caller's parameter. */
struct fw_msg_param_out {
	uint8_t iv[64];
	size_t iv_len;		/* 0: unchanged */
	uint8_t tag[16];
	size_t tag_len;		/* 0: unchanged */
};

struct fw_msg;

CK_RV fw_msg_new(enum phsm_op_kind kind, const struct fw_mech *m,
		 struct fw_key *key, struct fw_msg **out);
void fw_msg_free(struct fw_msg *msg);
/* Decode PHSM_OP_MSG_* "param" bytes into a fw_msg_param (pointers into it). */
CK_RV fw_msg_param_parse(const struct fw_msg *msg, const uint8_t *param,
			 size_t len, struct fw_msg_param *out);
CK_RV fw_msg_oneshot(struct fw_msg *msg, const struct fw_msg_param *p,
		     const uint8_t *assoc, size_t assoc_len,
		     const uint8_t *in, size_t in_len,
		     uint8_t *out, size_t *out_len,
		     struct fw_msg_param_out *po);
CK_RV fw_msg_begin(struct fw_msg *msg, const struct fw_msg_param *p,
		   const uint8_t *assoc, size_t assoc_len);
CK_RV fw_msg_next(struct fw_msg *msg, const struct fw_msg_param *p,
		  const uint8_t *in, size_t in_len, CK_FLAGS flags,
		  uint8_t *out, size_t *out_len, struct fw_msg_param_out *po);

/*
 * Wrapping.  @key is the key to wrap with its object's attributes (a secret
 * key's CKA_VALUE is wrapped as is; a private key as PKCS#8 DER).
 * Unwrap returns the material attributes of the new key of the class and
 * type the caller's template names (the core checks the template).
 * Errors: CKR_WRAPPING_KEY_TYPE_INCONSISTENT, CKR_KEY_NOT_WRAPPABLE,
 * CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, CKR_WRAPPED_KEY_INVALID,
 * CKR_WRAPPED_KEY_LEN_RANGE.
 */
CK_RV fw_wrap(const struct fw_mech *m, struct fw_key *wrapping,
	      const struct fw_key *key, const struct fw_attrs *key_obj,
	      uint8_t *out, size_t *out_len);
CK_RV fw_unwrap(const struct fw_mech *m, struct fw_key *unwrapping,
		const uint8_t *wrapped, size_t wrapped_len,
		CK_OBJECT_CLASS cls, CK_KEY_TYPE type,
		const struct fw_attrs *tmpl, struct fw_attrs *key);

/*
 * Derivation (CKM_ECDH1_DERIVE): returns the new secret key's material
 * (CKA_VALUE, sized by the template's CKA_VALUE_LEN or the key type).
 */
CK_RV fw_derive(const struct fw_mech *m, struct fw_key *base,
		const struct fw_attrs *tmpl, struct fw_attrs *key);

#endif /* PHSM_FW_MECH_H */
