// SPDX-License-Identifier: MIT
/*
 * Cloning blobs (Documentation/phsm/cloning.rst, "Blobs"): one object or
 * parameter sealed with AES-256-GCM for one clone session and direction,
 * and the way back from a blob's plaintext to a new object.
 *
 *   U64 magic, U64 version, U64 type, BYTES session_id, U64 direction,
 *   U64 seq, U64 object_type, U64 encoding, BYTES sealed
 *
 * The associated data is every byte before the header of "sealed"; the
 * nonce is direction (__le32) || seq (__le64).  Plaintext, encoding 1:
 * an object's attribute list as the store keeps it (one ATTRS field,
 * without CKA_UNIQUE_ID), or U64 param_id, BYTES value for a parameter.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <phsm/cryptoki_ca.h>

#include "clone.h"
#include "internal.h"

/* ---- making a blob ---------------------------------------------------- */

static CK_RV object_plain(struct fw_card *card, const struct fw_session *s,
			  uint64_t handle, uint8_t **pt, size_t *pt_len)
{
	struct fw_attrs a = { 0 };
	struct fw_obj *o;
	CK_RV rv = fw_obj_get(card, s, handle, &o);

	if (rv != CKR_OK)
		return rv;
	/* Published attributes never change: no lock to read them. */
	rv = fw_attrs_copy(&a, &o->attrs);
	fw_obj_put(card, o);
	if (rv != CKR_OK)
		return rv;
	/* The target gives the clone its own. */
	fw_attrs_remove(&a, CKA_UNIQUE_ID);
	if (!fw_attrs_serialize(&a, pt, pt_len))
		rv = CKR_HOST_MEMORY;
	fw_attrs_free(&a);
	return rv;
}

static CK_RV param_plain(struct fw_card *card, unsigned int part,
			 uint64_t id, uint8_t **pt, size_t *pt_len)
{
	struct phsm_writer w = { 0 };
	uint8_t smk[FW_HASH_LEN];

	if (id != PHSM_PARAM_SMK)
		return CKR_OBJECT_HANDLE_INVALID;
	pthread_mutex_lock(&card->lock);
	memcpy(smk, card->ext[part].smk, sizeof(smk));
	pthread_mutex_unlock(&card->lock);
	phsm_put_u64(&w, id);
	phsm_put_bytes(&w, smk, sizeof(smk));
	OPENSSL_cleanse(smk, sizeof(smk));
	if (w.failed) {
		phsm_writer_free(&w);
		return CKR_HOST_MEMORY;
	}
	*pt = w.data;
	*pt_len = w.len;
	return CKR_OK;
}

CK_RV fw_blob_plain(struct fw_card *card, const struct fw_session *s,
		    uint64_t object_type, uint64_t handle, uint8_t **pt,
		    size_t *pt_len)
{
	switch (object_type) {
	case CK_CRYPTOKI_ELEMENT:
		return object_plain(card, s, handle, pt, pt_len);
	case CK_PARAM_ELEMENT:
		return param_plain(card, s->part, handle, pt, pt_len);
	default:
		return CKR_OBJECT_TYPE_INVALID;
	}
}

size_t fw_blob_size(const struct fw_blob_ctx *c, size_t pt_len)
{
	/* magic, version, type, direction, seq, object_type, encoding */
	return 7 * FW_CLN_U64_FIELD + FW_CLN_FIELD_HDR + c->sid_len +
	       FW_CLN_FIELD_HDR + pt_len + FW_CLN_TAG_LEN;
}

static void blob_nonce(uint64_t direction, uint64_t seq, uint8_t nonce[12])
{
	fw_put_le32(nonce, (uint32_t)direction);
	fw_put_le64(nonce + 4, seq);
}

CK_RV fw_blob_seal(const struct fw_blob_ctx *c, uint64_t seq,
		   uint64_t object_type, const uint8_t *pt, size_t pt_len,
		   uint8_t *out)
{
	struct phsm_writer w = { 0 };
	size_t sealed_len = pt_len + FW_CLN_TAG_LEN, total;
	uint8_t nonce[12];
	CK_RV rv = CKR_OK;

	if (sealed_len > UINT32_MAX)
		return CKR_DATA_LEN_RANGE;
	fw_cln_put_head(&w, c->version, c->type);
	phsm_put_bytes(&w, c->sid, c->sid_len);
	phsm_put_u64(&w, c->direction);
	phsm_put_u64(&w, seq);
	phsm_put_u64(&w, object_type);
	phsm_put_u64(&w, c->encoding);
	total = w.len + FW_CLN_FIELD_HDR + sealed_len;
	if (w.failed || total != fw_blob_size(c, pt_len)) {
		phsm_writer_free(&w);
		return CKR_HOST_MEMORY;
	}
	memcpy(out, w.data, w.len);
	/* The header of "sealed", written by hand: its value is made here. */
	fw_cln_field_hdr(out + w.len, PHSM_FT_BYTES, (uint32_t)sealed_len);
	blob_nonce(c->direction, seq, nonce);
	if (!fw_gcm_seal(c->key, nonce, w.data, w.len, pt, pt_len,
			 out + w.len + FW_CLN_FIELD_HDR))
		rv = CKR_DEVICE_ERROR;
	phsm_writer_free(&w);
	return rv;
}

/* ---- reading a blob --------------------------------------------------- */

CK_RV fw_blob_parse(const uint8_t *blob, size_t len, struct fw_blob_hdr *h)
{
	struct phsm_reader r;
	bool head;

	memset(h, 0, sizeof(*h));
	phsm_reader_init(&r, blob, len);
	head = fw_cln_get_head(&r, &h->version, &h->type);
	h->sid = phsm_get_bytes(&r, &h->sid_len);
	h->direction = phsm_get_u64(&r);
	h->seq = phsm_get_u64(&r);
	h->object_type = phsm_get_u64(&r);
	h->encoding = phsm_get_u64(&r);
	h->aad_len = len - r.left;
	h->sealed = phsm_get_bytes(&r, &h->sealed_len);
	if (!phsm_reader_done(&r) || !head ||
	    h->sid_len < 1 || h->sid_len > FW_CLN_SID_MAX ||
	    (h->direction != 1 && h->direction != 2) || h->seq == 0 ||
	    h->sealed_len < FW_CLN_TAG_LEN)
		return CKR_DATA_INVALID;
	return CKR_OK;
}

CK_RV fw_blob_open(const uint8_t key[FW_CLN_KEY_LEN], const uint8_t *blob,
		   const struct fw_blob_hdr *h, uint8_t **pt, size_t *pt_len)
{
	size_t n = h->sealed_len - FW_CLN_TAG_LEN;
	uint8_t nonce[12], *buf = malloc(n ? n : 1);

	if (!buf)
		return CKR_HOST_MEMORY;
	blob_nonce(h->direction, h->seq, nonce);
	if (!fw_gcm_open(key, nonce, blob, h->aad_len, h->sealed,
			 h->sealed_len, buf)) {
		OPENSSL_cleanse(buf, n);
		free(buf);
		return CKR_ENCRYPTED_DATA_INVALID;
	}
	*pt = buf;
	*pt_len = n;
	return CKR_OK;
}

/* ---- from plaintext to object ----------------------------------------- */

static bool is_key(CK_OBJECT_CLASS cls)
{
	return cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY ||
	       cls == CKO_SECRET_KEY;
}

/*
 * The checks of a loaded object: a known class, only attributes of that
 * class with well-formed values.  fw_check_template() reports a wrong
 * type or value before a read-only attribute, so READ_ONLY means the
 * list is fine (a clone keeps the token-set attributes: CKA_LOCAL...).
 */
static CK_RV check_list(struct fw_card *card, const struct fw_session *s,
			const struct fw_attrs *a, CK_ULONG *cls)
{
	CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;
	CK_RV rv;

	if (fw_attrs_get_ulong(a, CKA_CLASS, cls) != CKR_OK)
		return CKR_DATA_INVALID;
	switch (*cls) {
	case CKO_DATA:
	case CKO_CERTIFICATE:
		break;
	case CKO_PUBLIC_KEY:
	case CKO_PRIVATE_KEY:
	case CKO_SECRET_KEY:
		if (fw_attrs_get_ulong(a, CKA_KEY_TYPE, &kt) != CKR_OK)
			return CKR_DATA_INVALID;
		break;
	default:
		return CKR_DATA_INVALID;
	}
	rv = fw_check_template(card, s, a, *cls, kt, FW_CREATE);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_READ_ONLY)
		return CKR_DATA_INVALID;
	return CKR_OK;
}

/* fw_obj_build()'s errors: local ones stay, the rest says "bad list". */
static CK_RV build_rv(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
	case CKR_SESSION_READ_ONLY:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_HOST_MEMORY:
	case CKR_DEVICE_MEMORY:
	case CKR_DEVICE_ERROR:
		return rv;
	default:
		return CKR_DATA_INVALID;
	}
}

static CK_RV build_object(struct fw_card *card, const struct fw_session *s,
			  uint64_t storage, const uint8_t *pt, size_t pt_len,
			  struct fw_obj **obj)
{
	struct fw_attrs a;
	CK_ULONG cls;
	CK_RV rv;

	if (storage > PHSM_CLONE_STORAGE_SESSION)
		return CKR_ARGUMENTS_BAD;
	if (!fw_attrs_deserialize(pt, pt_len, &a))
		return CKR_DATA_INVALID;
	/*
	 * The token derives a private key's CKA_PUBLIC_KEY_INFO from the
	 * key itself (no template may give it): fw_obj_build() makes it
	 * again, from the same key, so the clone has the same value.
	 */
	if (fw_attrs_get_ulong(&a, CKA_CLASS, &cls) == CKR_OK &&
	    cls == CKO_PRIVATE_KEY)
		fw_attrs_remove(&a, CKA_PUBLIC_KEY_INFO);
	rv = check_list(card, s, &a, &cls);
	/* A session or token object as asked; CKA_TOKEN must be there. */
	if (rv == CKR_OK && !fw_attrs_has(&a, CKA_TOKEN))
		rv = CKR_DATA_INVALID;
	if (rv == CKR_OK && storage != PHSM_CLONE_STORAGE_AS_IS)
		rv = fw_attrs_set_bool(&a, CKA_TOKEN,
				       storage == PHSM_CLONE_STORAGE_TOKEN);
	fw_attrs_remove(&a, CKA_UNIQUE_ID);
	if (rv == CKR_OK && fw_attrs_bool(&a, CKA_TOKEN, false) &&
	    !(s->flags & CKF_RW_SESSION))
		rv = CKR_SESSION_READ_ONLY;
	if (rv == CKR_OK && is_key(cls))
		rv = fw_key_defaults(&a, cls);
	if (rv == CKR_OK)
		rv = build_rv(fw_obj_build(card, s, cls, &a, obj));
	fw_attrs_free(&a);
	return rv;
}

static CK_RV build_param(uint64_t storage, const uint8_t *pt, size_t pt_len,
			 uint64_t *param_id, uint8_t param[FW_HASH_LEN])
{
	struct phsm_reader r;
	const uint8_t *v;
	size_t len;
	uint64_t id;

	if (storage != PHSM_CLONE_STORAGE_AS_IS)
		return CKR_ARGUMENTS_BAD;
	phsm_reader_init(&r, pt, pt_len);
	id = phsm_get_u64(&r);
	v = phsm_get_bytes(&r, &len);
	if (!phsm_reader_done(&r) || id != PHSM_PARAM_SMK || len != FW_HASH_LEN)
		return CKR_DATA_INVALID;
	*param_id = id;
	memcpy(param, v, FW_HASH_LEN);
	return CKR_OK;
}

CK_RV fw_blob_build(struct fw_card *card, const struct fw_session *s,
		    uint64_t object_type, uint64_t storage, const uint8_t *pt,
		    size_t pt_len, struct fw_obj **obj, uint64_t *param_id,
		    uint8_t param[FW_HASH_LEN])
{
	*obj = NULL;
	switch (object_type) {
	case CK_CRYPTOKI_ELEMENT:
		return build_object(card, s, storage, pt, pt_len, obj);
	case CK_PARAM_ELEMENT:
		return build_param(storage, pt, pt_len, param_id, param);
	default:
		return CKR_OBJECT_TYPE_INVALID;
	}
}

/* ---- publishing ------------------------------------------------------- */

struct param_set {
	const uint64_t *ids;
	uint8_t (*values)[FW_HASH_LEN];
	size_t n;
};

/* The parameters into the partition's Luna record: the SMK for now. */
static void set_params(struct fw_part_ext *e, void *ctx)
{
	const struct param_set *p = ctx;

	/* PHSM_PARAM_SMK is the only one; the last of a batch wins. */
	for (size_t i = 0; i < p->n; i++)
		if (p->ids[i] == PHSM_PARAM_SMK)
			memcpy(e->smk, p->values[i], sizeof(e->smk));
}

/* Objects and parameters in one store commit (fw_obj_publish_ext()). */
CK_RV fw_blob_publish(struct fw_card *card, unsigned int part,
		      struct fw_obj **objs, size_t nobjs,
		      const uint64_t *param_ids, uint8_t (*params)[FW_HASH_LEN],
		      size_t nparams)
{
	struct param_set p = { param_ids, params, nparams };

	if (part >= card->nparts)
		return CKR_GENERAL_ERROR;
	if (!nobjs && !nparams)
		return CKR_OK;
	return fw_obj_publish_ext(card, objs, nobjs, part,
				  nparams ? set_params : NULL, &p);
}
