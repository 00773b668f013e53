/* SPDX-License-Identifier: MIT */
/*
 * Private to the firmware core: key cloning (CPv4 and CPv3), as designed
 * in Documentation/phsm/cloning.rst.  Five files share this header:
 *
 *   identity.c     the manufacturer CA, the card's device identity, chain
 *                  checks and device signatures;
 *   clone_crypto.c ephemeral ECDH, hashes, HKDF, HMAC and AES-256-GCM for
 *                  the cloning messages (OpenSSL EVP underneath);
 *   clone.c        CPv4: the record table, expiry, negotiation, close,
 *                  CA_Extract and CA_Insert;
 *   clone_blob.c   the blob format, and turning an object into a blob's
 *                  plaintext and a plaintext into a new object;
 *   cpv3.c         the four CPv3 calls.
 */
#ifndef PHSM_FW_CLONE_H
#define PHSM_FW_CLONE_H

#include "internal.h"

/* Every message and blob starts with these (cloning.rst, encoding). */
#define FW_CLN_MAGIC		0x314e4c434d534850ull	/* "PHSMCLN1" */
#define FW_CLN_VERSION		1
enum fw_cln_type {
	FW_CLN_M1 = 1, FW_CLN_M2 = 2, FW_CLN_M3 = 3, FW_CLN_M4 = 4,
	FW_CLN_BLOB4 = 0x11,
	FW_CLN_TWC = 0x31, FW_CLN_PART1 = 0x32, FW_CLN_PART2 = 0x33,
	FW_CLN_BLOB3 = 0x34,
};

/* Negotiable values (cloning.rst, "What is negotiated"). */
enum { FW_CLN_SUITE_P256 = 1, FW_CLN_SUITE_P384 = 2 };
enum { FW_CLN_KDF_SHA256 = 1, FW_CLN_KDF_SHA384 = 2 };
enum { FW_CLN_ENC_ATTRS1 = 1 };
enum { FW_CLN_SIG_P256_SHA256 = 1, FW_CLN_SIG_P384_SHA384 = 2 };

#define FW_CLN_ROOT_ID_LEN	32
#define FW_CLN_NONCE_LEN	32
#define FW_CLN_SID_LEN		16	/* IDs the card picks */
#define FW_CLN_SID_MAX		64
#define FW_CLN_KEY_LEN		32	/* AES-256-GCM keys */
#define FW_CLN_TAG_LEN		16
#define FW_CLN_HASH_MAX		48
#define FW_CLN_POINT_MAX	97	/* uncompressed P-384 */
#define FW_CLN_PSK_LEN		32
#define FW_CLN_DOMAIN_ID_LEN	16
#define FW_CLN_FIELD_HDR	sizeof(struct phsm_field)
#define FW_CLN_U64_FIELD	(FW_CLN_FIELD_HDR + 8)

/* magic, version, type: the fields every message and blob starts with. */
static inline void fw_cln_put_head(struct phsm_writer *w, uint64_t version,
				   uint64_t type)
{
	phsm_put_u64(w, FW_CLN_MAGIC);
	phsm_put_u64(w, version);
	phsm_put_u64(w, type);
}

/* False when they do not decode or the magic is wrong. */
static inline bool fw_cln_get_head(struct phsm_reader *r, uint64_t *version,
				   uint64_t *type)
{
	uint64_t magic = phsm_get_u64(r);

	*version = phsm_get_u64(r);
	*type = phsm_get_u64(r);
	return r->status == PHSM_ST_OK && magic == FW_CLN_MAGIC;
}

/*
 * Start reading message @m: true when it begins with the header of a
 * version 1 message of @type (later versions change the fields).
 */
static inline bool fw_cln_open(struct phsm_reader *r, const uint8_t *m,
			       size_t len, uint64_t type)
{
	uint64_t version, t;

	phsm_reader_init(r, m, len);
	return fw_cln_get_head(r, &version, &t) && version == FW_CLN_VERSION &&
	       t == type;
}

/* A field header written by hand, for a value not made by a writer. */
static inline void fw_cln_field_hdr(uint8_t *p, uint16_t type, uint32_t len)
{
	fw_put_le32(p, type);	/* type, reserved 0 */
	fw_put_le32(p + 4, len);
}

/* ---- identity.c -------------------------------------------------------- */

/*
 * The card's identity, loaded (or provisioned) by fw_card_open() from
 * struct fw_card_config, kept in card->identity, freed by fw_card_close().
 */
int fw_identity_open(struct fw_card *card, const struct fw_card_config *cfg,
		     char *err, size_t err_len);
void fw_identity_close(struct fw_card *card);	/* also before open */

/* The card clock: time() plus the configured offset. */
uint64_t fw_clock(const struct fw_card *card);

/* CKR_OK, or CKR_SESSION_NEGOTIATION_NO_ROOTS when the card has none. */
CK_RV fw_id_ready(const struct fw_card *card);
/* The signature mechanism of our device key (FW_CLN_SIG_*). */
uint64_t fw_id_sig_alg(const struct fw_card *card);
/* Signature mechanisms this card can verify, as offered in m1. */
size_t fw_id_sig_algs(uint64_t *out, size_t max);
/* Append a BYTES field: our trusted root IDs, concatenated. */
void fw_id_put_root_ids(const struct fw_card *card, struct phsm_writer *w);
/* Is our root among the peer's root IDs (32 bytes each)? */
bool fw_id_root_trusted_by(const struct fw_card *card, const uint8_t *ids,
			   size_t len);
/* Append a BYTES field: our chain (nested BYTES root_id, BYTES cert). */
void fw_id_put_chain(const struct fw_card *card, struct phsm_writer *w);
/*
 * Append U64 sig_alg, BYTES sig: our device key's ECDSA (raw r || s) over
 * label || H(data), H the hash of our signature mechanism.
 */
CK_RV fw_id_sign(const struct fw_card *card, const char *label,
		 const uint8_t *data, size_t len, struct phsm_writer *w);
/*
 * Sign the message being written in @w: append U64 sig_alg, BYTES sig
 * over label || H(pre || everything before the header of the sig field),
 * the sig_alg field included (cloning.rst, "prefix"); @pre (may be
 * empty) is what the signature covers before the message (m2: m1).
 */
CK_RV fw_id_sign_msg(const struct fw_card *card, const char *label,
		     const uint8_t *pre, size_t pre_len, struct phsm_writer *w);
/*
 * Check a peer: its chain (the BYTES chain field's value), the signature
 * mechanism and the signature over label || H(pre || data), in the order
 * of cloning.rst "What is verified".  Returns CKR_OK, NO_ROOTS,
 * NO_CHAIN_ATT, or bad_sig when only the signature fails.
 */
CK_RV fw_id_verify_peer(const struct fw_card *card, const uint8_t *chain,
			size_t chain_len, uint64_t sig_alg, const uint8_t *sig,
			size_t sig_len, const char *label, const uint8_t *pre,
			size_t pre_len, const uint8_t *data, size_t len,
			CK_RV bad_sig);
/* PHSM_OP_CLONE_IDENTITY */
CK_RV fw_h_clone_identity(struct fw_req *rq);

/* ---- clone_crypto.c ---------------------------------------------------- */

struct fw_eph;	/* an ephemeral ECDH key pair */

/* A new key on the suite's curve; its public point (uncompressed SEC1). */
CK_RV fw_eph_new(uint64_t suite, struct fw_eph **out, uint8_t *pub,
		 size_t *pub_len);
void fw_eph_free(struct fw_eph *e);
/*
 * Z = the x-coordinate of ECDH with the peer's point; a point of the
 * wrong length, off the curve or at infinity is
 * CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY.
 */
CK_RV fw_eph_derive(struct fw_eph *e, const uint8_t *peer, size_t peer_len,
		    uint8_t *z, size_t *z_len);
/* Is this a valid point of the suite's curve? */
bool fw_eph_point_ok(uint64_t suite, const uint8_t *pt, size_t len);

/* The hash of a KDF (FW_CLN_KDF_*): its length, 0 if unknown. */
size_t fw_kdf_len(uint64_t kdf);
/* H(parts[0] || ... || parts[n-1]) with the KDF's hash. */
bool fw_kdf_hash(uint64_t kdf, const uint8_t *const *parts,
		 const size_t *lens, size_t n, uint8_t *out);
bool fw_hkdf_extract(uint64_t kdf, const uint8_t *salt, size_t salt_len,
		     const uint8_t *ikm, size_t ikm_len, uint8_t *prk);
bool fw_hkdf_expand(uint64_t kdf, const uint8_t *prk, const uint8_t *info,
		    size_t info_len, uint8_t *out, size_t out_len);
/* HKDF-Expand with info = label || ctx (ctx may be empty). */
bool fw_hkdf_label(uint64_t kdf, const uint8_t *prk, const char *label,
		   const uint8_t *ctx, size_t ctx_len, uint8_t *out,
		   size_t out_len);
/* The transcript hash TH(a || b || c || d); unused parts are NULL. */
bool fw_th(uint64_t kdf, const uint8_t *a, size_t al, const uint8_t *b,
	   size_t bl, const uint8_t *c, size_t cl, const uint8_t *d, size_t dl,
	   uint8_t *out);
/*
 * The part of the key schedule CPv4 and CPv3 share (cloning.rst, "Key
 * schedule"): MS = HKDF-Extract(HKDF-Expand(HS, derived, L), psk) and
 * the finished keys HKDF-Expand(MS, fin_a / fin_b, L), L the KDF's length.
 */
bool fw_cln_master(uint64_t kdf, const uint8_t *hs,
		   const uint8_t psk[FW_CLN_PSK_LEN], const char *derived,
		   const char *fin_a, const char *fin_b, uint8_t *ms,
		   uint8_t *fk_a, uint8_t *fk_b);
bool fw_hmac(uint64_t kdf, const uint8_t *key, size_t key_len,
	     const uint8_t *data, size_t len, uint8_t *out);
/* AES-256-GCM with a 16-byte tag appended; open is false on a bad tag. */
bool fw_gcm_seal(const uint8_t key[FW_CLN_KEY_LEN], const uint8_t nonce[12],
		 const uint8_t *aad, size_t aad_len, const uint8_t *in,
		 size_t len, uint8_t *out);
bool fw_gcm_open(const uint8_t key[FW_CLN_KEY_LEN], const uint8_t nonce[12],
		 const uint8_t *aad, size_t aad_len, const uint8_t *in,
		 size_t len, uint8_t *out);
/* A domain's ID and psk, from its stored secret (cloning.rst, PSKs). */
bool fw_domain_keys(const struct fw_domain *d,
		    uint8_t id[FW_CLN_DOMAIN_ID_LEN],
		    uint8_t psk[FW_CLN_PSK_LEN]);

/* ---- clone_blob.c ------------------------------------------------------ */

/* What one blob is sealed for: a session, a direction, a key. */
struct fw_blob_ctx {
	uint64_t version;
	uint64_t type;		/* FW_CLN_BLOB4 or FW_CLN_BLOB3 */
	const uint8_t *sid;
	size_t sid_len;
	uint64_t direction;	/* 1: made by I (CPv3: the source), 2: by R */
	uint64_t encoding;	/* FW_CLN_ENC_ATTRS1 */
	uint8_t key[FW_CLN_KEY_LEN];
};

/* A blob's header, parsed and checked for form only. */
struct fw_blob_hdr {
	uint64_t version;
	uint64_t type;
	const uint8_t *sid;
	size_t sid_len;
	uint64_t direction;
	uint64_t seq;
	uint64_t object_type;
	uint64_t encoding;
	const uint8_t *sealed;	/* ciphertext || tag */
	size_t sealed_len;
	size_t aad_len;		/* bytes of the blob before "sealed" */
};

/*
 * The plaintext of an object (CK_CRYPTOKI_ELEMENT, a handle visible to
 * the session) or a parameter (CK_PARAM_ELEMENT, a PHSM_PARAM_* id):
 * CKR_OBJECT_TYPE_INVALID, CKR_OBJECT_HANDLE_INVALID.  malloc'ed;
 * the caller wipes and frees it.
 */
CK_RV fw_blob_plain(struct fw_card *card, const struct fw_session *s,
		    uint64_t object_type, uint64_t handle, uint8_t **pt,
		    size_t *pt_len);
/* The exact size of a blob of pt_len bytes of plaintext. */
size_t fw_blob_size(const struct fw_blob_ctx *c, size_t pt_len);
/* Seal into out (fw_blob_size() bytes). */
CK_RV fw_blob_seal(const struct fw_blob_ctx *c, uint64_t seq,
		   uint64_t object_type, const uint8_t *pt, size_t pt_len,
		   uint8_t *out);
/* Parse: CKR_DATA_INVALID when it is not a well-formed blob. */
CK_RV fw_blob_parse(const uint8_t *blob, size_t len, struct fw_blob_hdr *h);
/* Authenticate and decrypt: CKR_ENCRYPTED_DATA_INVALID on a bad tag. */
CK_RV fw_blob_open(const uint8_t key[FW_CLN_KEY_LEN], const uint8_t *blob,
		   const struct fw_blob_hdr *h, uint8_t **pt, size_t *pt_len);
/*
 * Build what a plaintext describes, not yet published:
 * CK_CRYPTOKI_ELEMENT -> a new object for session s (storage is a
 * PHSM_CLONE_STORAGE_* value), CK_PARAM_ELEMENT -> *param_id and the
 * value in param (32 bytes).  CKR_DATA_INVALID if the plaintext is no
 * valid object; CKR_SESSION_READ_ONLY etc. as for object creation.
 */
CK_RV fw_blob_build(struct fw_card *card, const struct fw_session *s,
		    uint64_t object_type, uint64_t storage, const uint8_t *pt,
		    size_t pt_len, struct fw_obj **obj, uint64_t *param_id,
		    uint8_t param[FW_HASH_LEN]);
/*
 * Publish built objects and parameters of one partition in one store
 * commit: all or none (the objects are freed on failure).
 */
CK_RV fw_blob_publish(struct fw_card *card, unsigned int part,
		      struct fw_obj **objs, size_t nobjs,
		      const uint64_t *param_ids, uint8_t (*params)[FW_HASH_LEN],
		      size_t nparams);

/* ---- clone.c (CPv4) ---------------------------------------------------- */

/*
 * The checks every cloning command starts with: the session (returned
 * locked), the user logged in on its partition, and the partition policy
 * @disabled_by (a CK_PHSM_POLICY_*_DISABLED; 0: none) not set.
 */
CK_RV fw_clone_session(struct fw_req *rq, uint64_t sess, uint64_t disabled_by,
		       struct fw_session **out);
/*
 * BYTES out, U64 outlen for an output computed before (protocol.rst,
 * "Output buffers"); *delivered when the bytes went out whole.
 */
CK_RV fw_clone_put_out(struct fw_req *rq, uint64_t outcap, const uint8_t *p,
		       size_t len, bool *delivered);

/* In fw_card_open() after the identity, and in card_free(). */
int fw_clone_init(struct fw_card *card, char *err, size_t err_len);
void fw_clone_fini(struct fw_card *card);	/* also before init */
/*
 * Drop a partition's CPv4 records (domain deleted, C_InitToken, a
 * protocol disabled).  Takes the record table's own lock; called with
 * store_lock possibly held, never with card->lock.
 */
void fw_clone_drop_partition(struct fw_card *card, unsigned int part);

CK_RV fw_h_migration_start(struct fw_req *rq);
CK_RV fw_h_migration_continue(struct fw_req *rq);
CK_RV fw_h_migration_close(struct fw_req *rq);
CK_RV fw_h_extract(struct fw_req *rq);
CK_RV fw_h_insert(struct fw_req *rq);

/* ---- cpv3.c ------------------------------------------------------------ */

CK_RV fw_h_clone_source_init(struct fw_req *rq);
CK_RV fw_h_clone_target_init(struct fw_req *rq);
CK_RV fw_h_clone_as_source(struct fw_req *rq);
CK_RV fw_h_clone_as_target(struct fw_req *rq);
/* A PKCS#11 session goes: free its CPv3 exchanges (s->cpv3). */
void fw_cpv3_session_free(struct fw_session *s);

#endif /* PHSM_FW_CLONE_H */
