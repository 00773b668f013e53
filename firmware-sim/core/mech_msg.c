// SPDX-License-Identifier: MIT
/*
 * Message-based encryption (PKCS#11 3.0 C_MessageEncryptInit ...) with
 * AES-GCM: one key, many messages, each with its own IV, associated data
 * and tag carried in a per-message parameter.  The card can generate IVs
 * (CKG_GENERATE_COUNTER / _RANDOM) so that they never repeat under a key
 * in this context.
 */
#include "mech_impl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* Callers may pass NULL for empty inputs; OpenSSL and memcpy want a
 * pointer. */
static const uint8_t empty[1];

#define NONNULL(p) ((p) ? (p) : empty)

struct fw_msg {
	enum phsm_op_kind kind;
	struct fw_key *key;
	EVP_CIPHER_CTX *ctx;
	bool active;			/* a multi-part message is open */
	size_t tag_len;
	uint8_t tag[FW_GCM_TAG_MAX];	/* decrypt: tag given at begin */
	bool have_tag;
	uint8_t iv[FW_GCM_IV_MAX];	/* IV of the current message */
	size_t iv_len;
	bool iv_generated;
	uint8_t *buf;			/* decrypt: ciphertext held until the end */
	size_t len;
	size_t cap;
	struct {			/* CKG_GENERATE_COUNTER */
		bool started;
		size_t iv_len;
		CK_ULONG fixed_bits;
		uint8_t fixed[FW_GCM_IV_MAX];
		uint8_t iv[FW_GCM_IV_MAX];
		uint64_t used;
	} ctr;
};

CK_RV fw_msg_new(enum phsm_op_kind kind, const struct fw_mech *m,
		 struct fw_key *key, struct fw_msg **out)
{
	const struct fw_mech_info *mi = fw_mech_info(m->type);
	struct fw_msg *msg;

	*out = NULL;
	if (!mi || m->type != CKM_AES_GCM ||
	    (kind != PHSM_OPK_ENCRYPT && kind != PHSM_OPK_DECRYPT))
		return CKR_MECHANISM_INVALID;
	if (!key || key->cls != CKO_SECRET_KEY || key->type != CKK_AES)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (fw_check_key_size(mi, key, CKR_KEY_SIZE_RANGE) != CKR_OK)
		return CKR_KEY_SIZE_RANGE;
	msg = calloc(1, sizeof(*msg));
	if (!msg)
		return CKR_HOST_MEMORY;
	msg->ctx = EVP_CIPHER_CTX_new();
	if (!msg->ctx) {
		free(msg);
		return CKR_HOST_MEMORY;
	}
	msg->kind = kind;
	msg->key = fw_key_get(key);
	*out = msg;
	return CKR_OK;
}

static void msg_reset(struct fw_msg *msg)
{
	fw_free_secret(msg->buf, msg->cap);
	msg->buf = NULL;
	msg->len = msg->cap = 0;
	msg->active = false;
	msg->have_tag = false;
}

void fw_msg_free(struct fw_msg *msg)
{
	if (!msg)
		return;
	msg_reset(msg);
	EVP_CIPHER_CTX_free(msg->ctx);
	fw_key_put(msg->key);
	OPENSSL_cleanse(msg, sizeof(*msg));
	free(msg);
}

/* Per-message parameter errors are argument errors of C_EncryptMessage. */
CK_RV fw_msg_param_parse(const struct fw_msg *msg, const uint8_t *param,
			 size_t len, struct fw_msg_param *out)
{
	struct phsm_reader r;

	(void)msg;
	memset(out, 0, sizeof(*out));
	phsm_reader_init(&r, param, len);
	out->iv = phsm_get_bytes(&r, &out->iv_len);
	out->iv_fixed_bits = phsm_get_u64(&r);
	out->iv_generator = phsm_get_u64(&r);
	out->tag = phsm_get_bytes(&r, &out->tag_len);
	out->tag_bits = phsm_get_u64(&r);
	if (!phsm_reader_done(&r))
		return CKR_ARGUMENTS_BAD;
	if (out->iv_len < 1 || out->iv_len > FW_GCM_IV_MAX ||
	    out->iv_fixed_bits > 8 * (CK_ULONG)out->iv_len ||
	    out->iv_generator > CKG_GENERATE_RANDOM ||
	    out->tag_bits < 8 || out->tag_bits > 128 || out->tag_bits % 8 ||
	    (out->tag_len && out->tag_len != out->tag_bits / 8))
		return CKR_ARGUMENTS_BAD;
	return CKR_OK;
}

/* ---- IV generation ---- */

/* Bits of IV byte i that belong to the caller's fixed field. */
static uint8_t fixed_mask(size_t i, CK_ULONG fixed_bits)
{
	if ((i + 1) * 8 <= fixed_bits)
		return 0xff;
	if (i * 8 >= fixed_bits)
		return 0;
	return (uint8_t)(0xff << (8 - (fixed_bits - i * 8)));
}

static void merge_fixed(uint8_t *iv, const uint8_t *fixed, size_t len,
			CK_ULONG fixed_bits)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t fm = fixed_mask(i, fixed_bits);

		iv[i] = (uint8_t)((fixed[i] & fm) | (iv[i] & ~fm));
	}
}

/* Add one to the IV's free (trailing) bits, leaving the fixed ones. */
static void counter_increment(uint8_t *iv, size_t len, CK_ULONG fixed_bits)
{
	for (size_t i = len; i-- > 0;) {
		uint8_t fm = fixed_mask(i, fixed_bits), fr = (uint8_t)~fm;

		if (!fr)
			return;
		if ((iv[i] & fr) != fr) {
			iv[i] = (uint8_t)((iv[i] & fm) | ((iv[i] & fr) + 1));
			return;
		}
		iv[i] &= fm;
	}
}

static bool same_fixed(const struct fw_msg *msg, const struct fw_msg_param *p)
{
	uint8_t a[FW_GCM_IV_MAX] = { 0 }, b[FW_GCM_IV_MAX] = { 0 };

	if (msg->ctr.iv_len != p->iv_len ||
	    msg->ctr.fixed_bits != p->iv_fixed_bits)
		return false;
	merge_fixed(a, msg->ctr.fixed, p->iv_len, p->iv_fixed_bits);
	merge_fixed(b, p->iv, p->iv_len, p->iv_fixed_bits);
	return memcmp(a, b, p->iv_len) == 0;
}

/*
 * The counter starts at a random value so that two contexts sharing a key
 * and a fixed field are unlikely to overlap; it refuses to run past all
 * values of its field.
 */
static CK_RV counter_iv(struct fw_msg *msg, const struct fw_msg_param *p)
{
	CK_ULONG free_bits = 8 * (CK_ULONG)p->iv_len - p->iv_fixed_bits;

	if (!free_bits)
		return CKR_ARGUMENTS_BAD;
	if (!msg->ctr.started || !same_fixed(msg, p)) {
		if (RAND_bytes(msg->ctr.iv, (int)p->iv_len) != 1)
			return CKR_DEVICE_ERROR;
		memcpy(msg->ctr.fixed, p->iv, p->iv_len);
		merge_fixed(msg->ctr.iv, p->iv, p->iv_len, p->iv_fixed_bits);
		msg->ctr.iv_len = p->iv_len;
		msg->ctr.fixed_bits = p->iv_fixed_bits;
		msg->ctr.used = 0;
		msg->ctr.started = true;
	} else {
		if (free_bits < 64 &&
		    msg->ctr.used >= ((uint64_t)1 << free_bits))
			return CKR_FUNCTION_FAILED;	/* IV space used up */
		counter_increment(msg->ctr.iv, p->iv_len, p->iv_fixed_bits);
	}
	msg->ctr.used++;
	memcpy(msg->iv, msg->ctr.iv, p->iv_len);
	return CKR_OK;
}

/* The IV of a new message: the caller's, or one the card makes. */
static CK_RV message_iv(struct fw_msg *msg, const struct fw_msg_param *p)
{
	CK_RV rv = CKR_OK;

	msg->iv_len = p->iv_len;
	msg->iv_generated = msg->kind == PHSM_OPK_ENCRYPT &&
			    p->iv_generator != CKG_NO_GENERATE;
	if (!msg->iv_generated) {
		memcpy(msg->iv, p->iv, p->iv_len);
		return CKR_OK;
	}
	/* A generated IV goes back to the caller through param_out. */
	if (p->iv_len > sizeof(((struct fw_msg_param_out *)0)->iv))
		return CKR_ARGUMENTS_BAD;
	if (p->iv_generator == CKG_GENERATE_RANDOM) {
		if (RAND_bytes(msg->iv, (int)p->iv_len) != 1)
			return CKR_DEVICE_ERROR;
		merge_fixed(msg->iv, p->iv, p->iv_len, p->iv_fixed_bits);
	} else {
		rv = counter_iv(msg, p);
	}
	return rv;
}

static void report_iv(const struct fw_msg *msg, struct fw_msg_param_out *po)
{
	if (po && msg->iv_generated) {
		memcpy(po->iv, msg->iv, msg->iv_len);
		po->iv_len = msg->iv_len;
	}
}

static void po_clear(struct fw_msg_param_out *po)
{
	if (po) {
		po->iv_len = 0;
		po->tag_len = 0;
	}
}

/* ---- Messages ---- */

static CK_RV start(struct fw_msg *msg, const struct fw_msg_param *p,
		   const uint8_t *assoc, size_t assoc_len)
{
	CK_RV rv = message_iv(msg, p);

	if (rv != CKR_OK)
		return rv;
	msg->tag_len = p->tag_bits / 8;
	if (assoc_len > INT32_MAX)
		return CKR_ARGUMENTS_BAD;
	if (!fw_gcm_start(msg->ctx, msg->key, msg->iv, msg->iv_len,
			  msg->kind == PHSM_OPK_ENCRYPT, assoc, assoc_len))
		return CKR_FUNCTION_FAILED;
	return CKR_OK;
}

static bool run(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in,
		size_t len)
{
	int outl = 0;

	if (!len)
		return true;
	return len <= INT32_MAX &&
	       EVP_CipherUpdate(ctx, out, &outl, in, (int)len) &&
	       (size_t)outl == len;
}

static CK_RV seal_tag(struct fw_msg *msg, struct fw_msg_param_out *po)
{
	uint8_t none[FW_AES_BLOCK];
	int outl = 0;

	if (EVP_CipherFinal_ex(msg->ctx, none, &outl) <= 0 ||
	    !EVP_CIPHER_CTX_ctrl(msg->ctx, EVP_CTRL_AEAD_GET_TAG,
				 (int)msg->tag_len, po ? po->tag : none))
		return CKR_FUNCTION_FAILED;
	if (po)
		po->tag_len = msg->tag_len;
	return CKR_OK;
}

/* Check the tag; on failure the plaintext already written is wiped. */
static CK_RV open_tag(struct fw_msg *msg, const uint8_t *tag, uint8_t *out,
		      size_t out_len)
{
	uint8_t none[FW_AES_BLOCK];
	int outl = 0;

	if (!EVP_CIPHER_CTX_ctrl(msg->ctx, EVP_CTRL_AEAD_SET_TAG,
				 (int)msg->tag_len, (void *)tag))
		return CKR_FUNCTION_FAILED;
	if (EVP_CipherFinal_ex(msg->ctx, none, &outl) <= 0) {
		OPENSSL_cleanse(out, out_len);
		return FW_AEAD_DECRYPT_FAILED;
	}
	return CKR_OK;
}

CK_RV fw_msg_oneshot(struct fw_msg *msg, const struct fw_msg_param *p,
		     const uint8_t *assoc, size_t assoc_len,
		     const uint8_t *in, size_t in_len,
		     uint8_t *out, size_t *out_len,
		     struct fw_msg_param_out *po)
{
	bool enc = msg->kind == PHSM_OPK_ENCRYPT;
	CK_RV rv;

	po_clear(po);
	if ((!in && in_len) || (!assoc && assoc_len))
		return CKR_ARGUMENTS_BAD;
	in = NONNULL(in);
	assoc = NONNULL(assoc);
	if (!enc && p->tag_len != p->tag_bits / 8)
		return CKR_ARGUMENTS_BAD;
	/* Size checks come first: a query must not use up an IV. */
	if (fw_out_check(out, out_len, in_len, &rv))
		return rv;
	msg_reset(msg);
	rv = start(msg, p, assoc, assoc_len);
	if (rv != CKR_OK)
		return rv;
	if (!run(msg->ctx, out, in, in_len))
		return CKR_FUNCTION_FAILED;
	rv = enc ? seal_tag(msg, po) : open_tag(msg, p->tag, out, in_len);
	if (rv != CKR_OK)
		return rv;
	report_iv(msg, po);
	*out_len = in_len;
	return CKR_OK;
}

CK_RV fw_msg_begin(struct fw_msg *msg, const struct fw_msg_param *p,
		   const uint8_t *assoc, size_t assoc_len)
{
	CK_RV rv;

	if (!assoc && assoc_len)
		return CKR_ARGUMENTS_BAD;
	assoc = NONNULL(assoc);
	/* The core decides whether a message may start; one it abandoned
	 * (after a malformed parameter, say) is dropped here. */
	msg_reset(msg);
	rv = start(msg, p, assoc, assoc_len);
	if (rv != CKR_OK)
		return rv;
	/* The tag may come now or with the last part. */
	msg->have_tag = msg->kind == PHSM_OPK_DECRYPT && p->tag_len;
	if (msg->have_tag)
		memcpy(msg->tag, p->tag, p->tag_len);
	msg->active = true;
	return CKR_OK;
}

static CK_RV hold(struct fw_msg *msg, const uint8_t *in, size_t in_len)
{
	size_t cap = msg->cap ? msg->cap : 256;
	uint8_t *nb;

	if (in_len > FW_GCM_BUFFER_MAX - msg->len)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	if (msg->len + in_len > msg->cap) {
		while (cap < msg->len + in_len)
			cap *= 2;
		nb = malloc(cap);
		if (!nb)
			return CKR_DEVICE_MEMORY;
		if (msg->len)
			memcpy(nb, msg->buf, msg->len);
		fw_free_secret(msg->buf, msg->cap);
		msg->buf = nb;
		msg->cap = cap;
	}
	if (in_len)
		memcpy(msg->buf + msg->len, in, in_len);
	msg->len += in_len;
	return CKR_OK;
}

static CK_RV next_encrypt(struct fw_msg *msg, const uint8_t *in,
			  size_t in_len, bool end, uint8_t *out,
			  size_t *out_len, struct fw_msg_param_out *po)
{
	CK_RV rv;

	if (fw_out_check(out, out_len, in_len, &rv))
		return rv;
	if (!run(msg->ctx, out, in, in_len))
		return CKR_FUNCTION_FAILED;
	if (end && (rv = seal_tag(msg, po)) != CKR_OK)
		return rv;
	report_iv(msg, po);
	*out_len = in_len;
	return CKR_OK;
}

static CK_RV next_decrypt(struct fw_msg *msg, const struct fw_msg_param *p,
			  const uint8_t *in, size_t in_len, bool end,
			  uint8_t *out, size_t *out_len)
{
	const uint8_t *tag = msg->tag;
	size_t need;
	CK_RV rv;

	if (!end) {
		/* Nothing is released before the tag has been checked. */
		if (out && (rv = hold(msg, in, in_len)) != CKR_OK)
			return rv;
		*out_len = 0;
		return CKR_OK;
	}
	if (in_len > FW_GCM_BUFFER_MAX - msg->len)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	need = msg->len + in_len;
	if (fw_out_check(out, out_len, need, &rv))
		return rv;
	if (p && p->tag_len == msg->tag_len)
		tag = p->tag;
	else if (!msg->have_tag)
		return CKR_ARGUMENTS_BAD;
	if (!run(msg->ctx, out, msg->buf, msg->len) ||
	    !run(msg->ctx, out + msg->len, in, in_len))
		return CKR_FUNCTION_FAILED;
	rv = open_tag(msg, tag, out, need);
	if (rv == CKR_OK)
		*out_len = need;
	return rv;
}

CK_RV fw_msg_next(struct fw_msg *msg, const struct fw_msg_param *p,
		  const uint8_t *in, size_t in_len, CK_FLAGS flags,
		  uint8_t *out, size_t *out_len, struct fw_msg_param_out *po)
{
	bool end = flags & CKF_END_OF_MESSAGE;
	CK_RV rv;

	po_clear(po);
	if (!msg->active)
		return CKR_OPERATION_NOT_INITIALIZED;
	in = NONNULL(in);
	if (flags & ~CKF_END_OF_MESSAGE || (in == empty && in_len))
		rv = CKR_ARGUMENTS_BAD;
	else if (msg->kind == PHSM_OPK_ENCRYPT)
		rv = next_encrypt(msg, in, in_len, end, out, out_len, po);
	else
		rv = next_decrypt(msg, p, in, in_len, end, out, out_len);
	/* A size query or a short buffer leaves the message open; an
	 * error or the last part closes it. */
	if (rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && !out))
		return rv;
	if (rv != CKR_OK || end)
		msg_reset(msg);
	return rv;
}
