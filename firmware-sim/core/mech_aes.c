// SPDX-License-Identifier: MIT
/*
 * AES: ECB, CBC, CBC_PAD, CTR and GCM through EVP_CIPHER, and the key wrap
 * algorithms used as plain encryption.
 *
 * The block modes do their own buffering of partial blocks and only hand
 * whole blocks to OpenSSL (with its padding off).  That way the engine
 * knows the exact output length of every call before making it, which the
 * PKCS#11 output convention needs: a call whose buffer is too small must
 * leave the operation exactly as it was.
 */
#include "mech_impl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>

#define BLK FW_AES_BLOCK
#define GCM_STD_IV 12

static bool encrypting(const struct fw_op *op)
{
	return op->kind == PHSM_OPK_ENCRYPT;
}

/* CKR_DATA_LEN_RANGE or its decryption twin. */
static CK_RV len_range(const struct fw_op *op)
{
	return encrypting(op) ? CKR_DATA_LEN_RANGE :
				CKR_ENCRYPTED_DATA_LEN_RANGE;
}

static const EVP_CIPHER *op_cipher(const struct fw_op *op)
{
	return fw_aes_cipher(op->mi->aes_mode, op->key->secret_len);
}

/* Key a GCM context with an IV of any length OpenSSL accepts. */
static bool gcm_start(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *c,
		      const uint8_t *key, const uint8_t *iv, size_t iv_len,
		      bool enc, const uint8_t *aad, size_t aad_len)
{
	OSSL_PARAM p[2];
	int outl;

	p[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN,
					   &iv_len);
	p[1] = OSSL_PARAM_construct_end();
	if (!EVP_CipherInit_ex2(ctx, c, NULL, NULL, enc,
				iv_len == GCM_STD_IV ? NULL : p) ||
	    !EVP_CipherInit_ex2(ctx, NULL, key, iv, enc, NULL))
		return false;
	return !aad_len || EVP_CipherUpdate(ctx, NULL, &outl, aad,
					    (int)aad_len);
}

bool fw_gcm_start(EVP_CIPHER_CTX *ctx, const struct fw_key *k,
		  const uint8_t *iv, size_t iv_len, bool enc,
		  const uint8_t *aad, size_t aad_len)
{
	return gcm_start(ctx, fw_aes_cipher(FW_AES_GCM, k->secret_len),
			 k->secret, iv, iv_len, enc, aad, aad_len);
}

/* (Re)key the operation's context at the start of its data. */
static CK_RV key_ctx(struct fw_op *op)
{
	struct fw_aes_state *s = &op->aes;
	bool ok;

	if (op->mi->aes_mode == FW_AES_GCM) {
		ok = gcm_start(s->ctx, op_cipher(op), op->key->secret,
			       s->gcm_iv, s->gcm_iv_len, encrypting(op),
			       s->aad, s->aad_len);
	} else {
		ok = EVP_CipherInit_ex2(s->ctx, op_cipher(op), op->key->secret,
					op->mi->aes_mode == FW_AES_ECB ?
					NULL : s->iv, encrypting(op), NULL) &&
		     EVP_CIPHER_CTX_set_padding(s->ctx, 0);
	}
	s->ready = ok;
	return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

static bool run(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in,
		size_t len)
{
	int outl = 0;

	/* OpenSSL takes int lengths; messages are far below INT_MAX. */
	if (!len)
		return true;
	return len <= INT32_MAX && EVP_CipherUpdate(ctx, out, &outl, in,
						    (int)len) &&
	       (size_t)outl == len;
}

/* ---- ECB, CBC, CBC_PAD ---- */

static bool pad_decrypting(const struct fw_op *op)
{
	return op->mi->variant == FW_V_CBC_PAD && !encrypting(op);
}

/*
 * Bytes an update releases.  Decryption with padding keeps the last whole
 * block back: only C_DecryptFinal knows whether it holds padding.
 */
static size_t block_update_len(const struct fw_op *op, size_t in_len)
{
	size_t total = op->aes.pend_len + in_len;

	if (pad_decrypting(op))
		return total ? (total - 1) / BLK * BLK : 0;
	return total / BLK * BLK;
}

static CK_RV block_update(struct fw_op *op, const uint8_t *in, size_t in_len,
			  uint8_t *out, size_t *out_len)
{
	struct fw_aes_state *s = &op->aes;
	size_t need, done = 0, bulk;
	CK_RV rv;

	if (in_len > SIZE_MAX - BLK)
		return len_range(op);
	need = block_update_len(op, in_len);
	if (fw_out_check(out, out_len, need, &rv))
		return rv;
	if (!s->ready && (rv = key_ctx(op)) != CKR_OK)
		return rv;
	if (need && s->pend_len) {
		size_t take = BLK - s->pend_len;

		memcpy(s->pend + s->pend_len, in, take);
		in += take;
		in_len -= take;
		if (!run(s->ctx, out, s->pend, BLK))
			return CKR_FUNCTION_FAILED;
		s->pend_len = 0;
		done = BLK;
	}
	bulk = need - done;
	if (!run(s->ctx, out + done, in, bulk))
		return CKR_FUNCTION_FAILED;
	memcpy(s->pend + s->pend_len, in + bulk, in_len - bulk);
	s->pend_len += in_len - bulk;
	*out_len = need;
	return CKR_OK;
}

/*
 * Length of the data in a decrypted last block, or -1 when its PKCS#7
 * padding is malformed.  The check does not branch on the padding bytes.
 */
static int unpadded_len(const uint8_t blk[BLK])
{
	unsigned int pad = blk[BLK - 1], bad = 0;

	/* lt(a, b) is 1 when a < b, for a, b < 2^31 */
#define lt(a, b) ((unsigned int)((a) - (b)) >> 31)
	bad |= lt(pad, 1u) | lt((unsigned int)BLK, pad);
	for (unsigned int i = 0; i < BLK; i++) {
		unsigned int in_pad = 0u - lt(BLK - 1 - i, pad);

		bad |= (blk[i] ^ pad) & in_pad;
	}
#undef lt
	return bad ? -1 : (int)(BLK - pad);
}

static CK_RV unpad_final(struct fw_op *op, uint8_t *out, size_t *out_len)
{
	struct fw_aes_state *s = &op->aes;
	EVP_CIPHER_CTX *tmp;
	uint8_t blk[BLK];
	bool ok;
	int n;
	CK_RV rv;

	if (s->pend_len != BLK)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	/* Decrypt on a copy of the context so that a size query or a short
	 * buffer leaves the operation untouched. */
	tmp = EVP_CIPHER_CTX_new();
	ok = tmp && EVP_CIPHER_CTX_copy(tmp, s->ctx) &&
	     run(tmp, blk, s->pend, BLK);
	EVP_CIPHER_CTX_free(tmp);
	if (!ok)
		return CKR_FUNCTION_FAILED;
	n = unpadded_len(blk);
	rv = n < 0 ? CKR_ENCRYPTED_DATA_INVALID :
		     fw_out_copy(blk, (size_t)n, out, out_len);
	OPENSSL_cleanse(blk, sizeof(blk));
	return rv;
}

static CK_RV block_final(struct fw_op *op, const uint8_t *sig, size_t sig_len,
			 uint8_t *out, size_t *out_len)
{
	struct fw_aes_state *s = &op->aes;
	uint8_t blk[BLK];
	CK_RV rv;

	(void)sig;
	(void)sig_len;
	if (pad_decrypting(op)) {
		if (!s->ready)
			return CKR_ENCRYPTED_DATA_LEN_RANGE;
		return unpad_final(op, out, out_len);
	}
	if (op->mi->variant != FW_V_CBC_PAD) {
		if (s->pend_len)
			return len_range(op);
		return fw_out_copy(NULL, 0, out, out_len);
	}
	if (fw_out_check(out, out_len, BLK, &rv))
		return rv;
	if (!s->ready && (rv = key_ctx(op)) != CKR_OK)
		return rv;
	memcpy(blk, s->pend, s->pend_len);
	memset(blk + s->pend_len, (int)(BLK - s->pend_len), BLK - s->pend_len);
	if (!run(s->ctx, out, blk, BLK))
		return CKR_FUNCTION_FAILED;
	OPENSSL_cleanse(blk, sizeof(blk));
	*out_len = BLK;
	return CKR_OK;
}

/* C_Decrypt with CBC_PAD: the exact length is known after decryption. */
static CK_RV unpad_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			   uint8_t *out, size_t *out_len)
{
	uint8_t *dst, *tmp = NULL;
	int n;
	CK_RV rv;

	if (in_len == 0 || in_len % BLK)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	if (!out) {
		*out_len = in_len;	/* an upper bound */
		return CKR_OK;
	}
	/* A buffer shorter than the input may still be long enough. */
	dst = *out_len >= in_len ? out : (tmp = malloc(in_len));
	if (!dst)
		return CKR_HOST_MEMORY;
	rv = key_ctx(op);
	if (rv == CKR_OK && !run(op->aes.ctx, dst, in, in_len))
		rv = CKR_FUNCTION_FAILED;
	n = rv == CKR_OK ? unpadded_len(dst + in_len - BLK) : 0;
	if (rv == CKR_OK && n < 0) {
		OPENSSL_cleanse(dst, in_len);
		rv = CKR_ENCRYPTED_DATA_INVALID;
	}
	if (rv == CKR_OK && tmp)
		rv = fw_out_copy(tmp, in_len - BLK + (size_t)n, out, out_len);
	else if (rv == CKR_OK)
		*out_len = in_len - BLK + (size_t)n;
	fw_free_secret(tmp, in_len);
	return rv;
}

static CK_RV block_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			   const uint8_t *sig, size_t sig_len,
			   uint8_t *out, size_t *out_len)
{
	bool pad = op->mi->variant == FW_V_CBC_PAD;
	size_t need, n, tail;
	CK_RV rv;

	(void)sig;
	(void)sig_len;
	if (pad_decrypting(op))
		return unpad_oneshot(op, in, in_len, out, out_len);
	if ((!pad && in_len % BLK) || in_len > SIZE_MAX - BLK)
		return len_range(op);
	need = pad ? (in_len / BLK + 1) * BLK : in_len;
	if (fw_out_check(out, out_len, need, &rv))
		return rv;
	op->aes.pend_len = 0;
	rv = key_ctx(op);
	n = *out_len;
	if (rv == CKR_OK)
		rv = block_update(op, in, in_len, out, &n);
	if (rv == CKR_OK && pad) {
		tail = *out_len - n;
		rv = block_final(op, NULL, 0, out + n, &tail);
		n += tail;
	}
	if (rv == CKR_OK)
		*out_len = n;
	return rv;
}

static const struct fw_op_class block_ops = {
	.oneshot = block_oneshot,
	.update = block_update,
	.final = block_final,
};

/* ---- CTR ---- */

/*
 * Blocks the counter can count before its ulCounterBits low bits wrap
 * (saturated at 2^64 - 1).  Refusing to go further keeps OpenSSL's 128-bit
 * increment equal to the mechanism's, which increments only those bits.
 */
static uint64_t ctr_blocks_left(const uint8_t cb[BLK], CK_ULONG bits)
{
	uint64_t low = 0;

	for (int i = 8; i < BLK; i++)
		low = low << 8 | cb[i];
	if (bits < 64) {
		uint64_t size = (uint64_t)1 << bits;

		return size - (low & (size - 1));
	}
	for (CK_ULONG b = 64; b < bits; b++)
		if (!(cb[BLK - 1 - b / 8] >> (b % 8) & 1))
			return UINT64_MAX;
	return low ? 0 - low : UINT64_MAX;
}

static bool ctr_room(const struct fw_op *op, uint64_t done, size_t in_len)
{
	uint64_t total = done + in_len;

	if (total < done)
		return false;
	return total / BLK + (total % BLK != 0) <= op->aes.ctr_blocks;
}

static CK_RV ctr_update(struct fw_op *op, const uint8_t *in, size_t in_len,
			uint8_t *out, size_t *out_len)
{
	struct fw_aes_state *s = &op->aes;
	CK_RV rv;

	if (!ctr_room(op, s->done, in_len))
		return len_range(op);
	if (fw_out_check(out, out_len, in_len, &rv))
		return rv;
	if (!s->ready && (rv = key_ctx(op)) != CKR_OK)
		return rv;
	if (!run(s->ctx, out, in, in_len))
		return CKR_FUNCTION_FAILED;
	s->done += in_len;
	*out_len = in_len;
	return CKR_OK;
}

static CK_RV ctr_final(struct fw_op *op, const uint8_t *sig, size_t sig_len,
		       uint8_t *out, size_t *out_len)
{
	(void)op;
	(void)sig;
	(void)sig_len;
	return fw_out_copy(NULL, 0, out, out_len);
}

static CK_RV ctr_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			 const uint8_t *sig, size_t sig_len,
			 uint8_t *out, size_t *out_len)
{
	CK_RV rv;

	(void)sig;
	(void)sig_len;
	if (!ctr_room(op, 0, in_len))
		return len_range(op);
	if (fw_out_check(out, out_len, in_len, &rv))
		return rv;
	op->aes.done = 0;
	rv = key_ctx(op);
	return rv == CKR_OK ? ctr_update(op, in, in_len, out, out_len) : rv;
}

static const struct fw_op_class ctr_ops = {
	.oneshot = ctr_oneshot,
	.update = ctr_update,
	.final = ctr_final,
};

/* ---- GCM ---- */

/* Decrypt ct and check the tag that follows it; out gets ct_len bytes
 * (wiped again when the tag is wrong). */
static CK_RV gcm_open(struct fw_op *op, const uint8_t *ct, size_t ct_len,
		      const uint8_t *tag, uint8_t *out)
{
	struct fw_aes_state *s = &op->aes;
	int outl = 0;
	CK_RV rv = key_ctx(op);

	if (rv != CKR_OK)
		return rv;
	if (!run(s->ctx, out, ct, ct_len) ||
	    !EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_SET_TAG,
				 (int)s->tag_len, (void *)tag))
		return CKR_FUNCTION_FAILED;
	if (EVP_CipherFinal_ex(s->ctx, out + ct_len, &outl) <= 0) {
		OPENSSL_cleanse(out, ct_len);
		return CKR_ENCRYPTED_DATA_INVALID;
	}
	return CKR_OK;
}

static CK_RV gcm_tag(struct fw_op *op, uint8_t *tag)
{
	int outl = 0;
	uint8_t none[BLK];

	if (EVP_CipherFinal_ex(op->aes.ctx, none, &outl) <= 0 ||
	    !EVP_CIPHER_CTX_ctrl(op->aes.ctx, EVP_CTRL_AEAD_GET_TAG,
				 (int)op->aes.tag_len, tag))
		return CKR_FUNCTION_FAILED;
	return CKR_OK;
}

/* Keep ciphertext until the final call; the buffer never moves without
 * the old copy being wiped. */
static CK_RV gcm_buffer(struct fw_aes_state *s, const uint8_t *in,
			size_t in_len)
{
	size_t cap = s->gcm_cap ? s->gcm_cap : 256;
	uint8_t *nb;

	if (in_len > FW_GCM_BUFFER_MAX - s->gcm_len)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	if (s->gcm_len + in_len > s->gcm_cap) {
		while (cap < s->gcm_len + in_len)
			cap *= 2;
		nb = malloc(cap);
		if (!nb)
			return CKR_DEVICE_MEMORY;
		if (s->gcm_len)
			memcpy(nb, s->gcm_buf, s->gcm_len);
		fw_free_secret(s->gcm_buf, s->gcm_cap);
		s->gcm_buf = nb;
		s->gcm_cap = cap;
	}
	if (in_len)
		memcpy(s->gcm_buf + s->gcm_len, in, in_len);
	s->gcm_len += in_len;
	return CKR_OK;
}

static CK_RV gcm_update(struct fw_op *op, const uint8_t *in, size_t in_len,
			uint8_t *out, size_t *out_len)
{
	struct fw_aes_state *s = &op->aes;
	CK_RV rv;

	if (!encrypting(op)) {
		/* Nothing is released before the tag has been checked. */
		if (!out) {
			*out_len = 0;
			return CKR_OK;
		}
		rv = gcm_buffer(s, in, in_len);
		if (rv == CKR_OK)
			*out_len = 0;
		return rv;
	}
	if (fw_out_check(out, out_len, in_len, &rv))
		return rv;
	if (!s->ready && (rv = key_ctx(op)) != CKR_OK)
		return rv;
	if (!run(s->ctx, out, in, in_len))
		return CKR_FUNCTION_FAILED;
	*out_len = in_len;
	return CKR_OK;
}

static CK_RV gcm_final(struct fw_op *op, const uint8_t *sig, size_t sig_len,
		       uint8_t *out, size_t *out_len)
{
	struct fw_aes_state *s = &op->aes;
	size_t n;
	CK_RV rv;

	(void)sig;
	(void)sig_len;
	if (!encrypting(op)) {
		if (s->gcm_len < s->tag_len)
			return CKR_ENCRYPTED_DATA_LEN_RANGE;
		n = s->gcm_len - s->tag_len;
		if (fw_out_check(out, out_len, n, &rv))
			return rv;
		rv = gcm_open(op, s->gcm_buf, n, s->gcm_buf + n, out);
		if (rv == CKR_OK)
			*out_len = n;
		return rv;
	}
	if (fw_out_check(out, out_len, s->tag_len, &rv))
		return rv;
	if (!s->ready && (rv = key_ctx(op)) != CKR_OK)
		return rv;
	rv = gcm_tag(op, out);
	if (rv == CKR_OK)
		*out_len = s->tag_len;
	return rv;
}

static CK_RV gcm_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			 const uint8_t *sig, size_t sig_len,
			 uint8_t *out, size_t *out_len)
{
	struct fw_aes_state *s = &op->aes;
	size_t need;
	CK_RV rv;

	(void)sig;
	(void)sig_len;
	if (!encrypting(op)) {
		if (in_len < s->tag_len)
			return CKR_ENCRYPTED_DATA_LEN_RANGE;
		need = in_len - s->tag_len;
		if (fw_out_check(out, out_len, need, &rv))
			return rv;
		rv = gcm_open(op, in, need, in + need, out);
		if (rv == CKR_OK)
			*out_len = need;
		return rv;
	}
	if (in_len > SIZE_MAX - s->tag_len)
		return CKR_DATA_LEN_RANGE;
	need = in_len + s->tag_len;
	if (fw_out_check(out, out_len, need, &rv))
		return rv;
	rv = key_ctx(op);
	if (rv != CKR_OK)
		return rv;
	if (!run(s->ctx, out, in, in_len))
		return CKR_FUNCTION_FAILED;
	rv = gcm_tag(op, out + in_len);
	if (rv == CKR_OK)
		*out_len = need;
	return rv;
}

static const struct fw_op_class gcm_ops = {
	.oneshot = gcm_oneshot,
	.update = gcm_update,
	.final = gcm_final,
};

/* ---- Setup ---- */

static CK_RV aes_check_key(const struct fw_op *op)
{
	const struct fw_key *k = op->key;

	if (k->cls != CKO_SECRET_KEY || k->type != CKK_AES)
		return CKR_KEY_TYPE_INCONSISTENT;
	return fw_check_key_size(op->mi, k, CKR_KEY_SIZE_RANGE);
}

static CK_RV gcm_setup(struct fw_op *op, const struct fw_mech *m)
{
	struct fw_aes_state *s = &op->aes;

	/* iv_len 0: a parameter only C_MessageEncryptInit may use */
	if (m->iv_len < 1 || m->iv_len > FW_GCM_IV_MAX)
		return CKR_MECHANISM_PARAM_INVALID;
	memcpy(s->gcm_iv, m->iv, m->iv_len);
	s->gcm_iv_len = m->iv_len;
	s->tag_len = m->tag_bits / 8;
	if (m->aad_len) {
		s->aad = malloc(m->aad_len);
		if (!s->aad)
			return CKR_HOST_MEMORY;
		memcpy(s->aad, m->aad, m->aad_len);
		s->aad_len = m->aad_len;
	}
	op->ops = &gcm_ops;
	return CKR_OK;
}

CK_RV fw_aes_op_init(struct fw_op *op, const struct fw_mech *m)
{
	struct fw_aes_state *s = &op->aes;
	CK_RV rv = aes_check_key(op);

	if (rv != CKR_OK)
		return rv;
	if (!op_cipher(op))
		return CKR_MECHANISM_INVALID;
	s->ctx = EVP_CIPHER_CTX_new();
	if (!s->ctx)
		return CKR_HOST_MEMORY;
	switch (op->mi->aes_mode) {
	case FW_AES_GCM:
		return gcm_setup(op, m);
	case FW_AES_CTR:
		memcpy(s->iv, m->iv, BLK);
		s->ctr_blocks = ctr_blocks_left(m->iv, m->counter_bits);
		op->ops = &ctr_ops;
		return CKR_OK;
	case FW_AES_CBC:
		memcpy(s->iv, m->iv, BLK);
		op->ops = &block_ops;
		return CKR_OK;
	case FW_AES_ECB:
		op->ops = &block_ops;
		return CKR_OK;
	default:
		return CKR_MECHANISM_INVALID;
	}
}

/* ---- Key wrap algorithms ---- */

static size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

CK_RV fw_aes_kw(const struct fw_key *k, bool pad, bool enc,
		const struct fw_mech *m, const uint8_t *in, size_t in_len,
		uint8_t *out, size_t *out_len)
{
	const EVP_CIPHER *c = fw_aes_cipher(pad ? FW_AES_WRAP_PAD : FW_AES_WRAP,
					    k->secret_len);
	EVP_CIPHER_CTX *ctx;
	uint8_t *tmp = NULL;
	size_t need;
	int outl = 0;
	bool ok;
	CK_RV rv;

	if (!c)
		return CKR_MECHANISM_INVALID;
	if (in_len > INT32_MAX - 16)
		return enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
	if (enc) {
		if (pad ? in_len < 1 : in_len < 16 || in_len % 8)
			return CKR_DATA_LEN_RANGE;
		need = round8(in_len) + 8;
	} else {
		if (in_len < (pad ? 16u : 24u) || in_len % 8)
			return CKR_ENCRYPTED_DATA_LEN_RANGE;
		need = in_len - 8;	/* exact for KW, a bound for KWP */
	}
	if (!out || (enc && *out_len < need)) {
		fw_out_check(out, out_len, need, &rv);
		return rv;
	}
	/* Unwrapping goes through a buffer: KWP's exact length is known
	 * only once the padding has been checked. */
	if (!enc && !(tmp = malloc(in_len)))
		return CKR_HOST_MEMORY;
	ctx = EVP_CIPHER_CTX_new();
	ok = ctx && EVP_CipherInit_ex2(ctx, c, k->secret,
				       m && m->iv_len ? m->iv : NULL, enc,
				       NULL) &&
	     EVP_CipherUpdate(ctx, enc ? out : tmp, &outl, in, (int)in_len) &&
	     outl >= 0 && (size_t)outl <= need;
	EVP_CIPHER_CTX_free(ctx);
	if (enc) {
		rv = ok ? CKR_OK : CKR_FUNCTION_FAILED;
		if (ok)
			*out_len = (size_t)outl;
	} else {
		rv = ok ? fw_out_copy(tmp, (size_t)outl, out, out_len) :
			  CKR_ENCRYPTED_DATA_INVALID;
		fw_free_secret(tmp, in_len);
	}
	return rv;
}

static CK_RV wrap_oneshot(struct fw_op *op, const uint8_t *in, size_t in_len,
			  const uint8_t *sig, size_t sig_len,
			  uint8_t *out, size_t *out_len)
{
	struct fw_mech m = { .iv = op->aes.iv, .iv_len = op->aes.iv_len };

	(void)sig;
	(void)sig_len;
	return fw_aes_kw(op->key, op->mi->variant == FW_V_KWP, encrypting(op),
			 &m, in, in_len, out, out_len);
}

static const struct fw_op_class wrap_ops = {
	.oneshot = wrap_oneshot,
};

CK_RV fw_aes_wrap_op_init(struct fw_op *op, const struct fw_mech *m)
{
	CK_RV rv = aes_check_key(op);

	if (rv != CKR_OK)
		return rv;
	/* An alternative initial value (8 or 4 bytes), or none. */
	if (m->iv_len)
		memcpy(op->aes.iv, m->iv, m->iv_len);
	op->aes.iv_len = m->iv_len;
	op->ops = &wrap_ops;
	return CKR_OK;
}
