// SPDX-License-Identifier: MIT
/*
 * The card's mechanism table and the decoding of mechanism parameters.
 * Parameters are checked here as far as they can be without a key; the
 * checks that need the key (PSS salt length against the modulus, ...)
 * happen when an operation starts.
 */
#include "mech_impl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define SV		(CKF_SIGN | CKF_VERIFY)
#define ED		(CKF_ENCRYPT | CKF_DECRYPT)
#define WU		(CKF_WRAP | CKF_UNWRAP)
#define EC_CAPS		(CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)
#define ED_CAPS		(CKF_EC_NAMEDCURVE | CKF_EC_CURVENAME)
#define GCM_FLAGS	(ED | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | \
			 CKF_MULTI_MESSAGE)

#define RSA_MIN 2048
#define RSA_MAX 4096
#define EC_MIN 256
#define EC_MAX 521
#define AES_MIN 16
#define AES_MAX 32
#define SECRET_MIN 1
#define SECRET_MAX 512

#define M(t, lo, hi, fl, fam, lay, ...) \
	{ .desc = { (t), (lo), (hi), CKF_HW | (fl) }, .family = (fam), \
	  .layout = (lay), __VA_ARGS__ }

static const struct fw_mech_info table[] = {
	/* RSA */
	M(CKM_RSA_PKCS_KEY_PAIR_GEN, RSA_MIN, RSA_MAX, CKF_GENERATE_KEY_PAIR,
	  FW_FAM_KEYGEN, FW_P_NONE),
	M(CKM_RSA_PKCS, RSA_MIN, RSA_MAX,
	  ED | SV | CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER | WU,
	  FW_FAM_RSA, FW_P_NONE, .variant = FW_V_PKCS1),
	M(CKM_RSA_PKCS_PSS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA, FW_P_PSS,
	  .variant = FW_V_PSS),
	M(CKM_RSA_PKCS_OAEP, RSA_MIN, RSA_MAX, ED | WU, FW_FAM_RSA, FW_P_OAEP,
	  .variant = FW_V_OAEP),
	M(CKM_SHA1_RSA_PKCS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH, FW_P_NONE,
	  .hash = FW_H_SHA1, .variant = FW_V_PKCS1),
	M(CKM_SHA224_RSA_PKCS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH, FW_P_NONE,
	  .hash = FW_H_SHA224, .variant = FW_V_PKCS1),
	M(CKM_SHA256_RSA_PKCS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH, FW_P_NONE,
	  .hash = FW_H_SHA256, .variant = FW_V_PKCS1),
	M(CKM_SHA384_RSA_PKCS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH, FW_P_NONE,
	  .hash = FW_H_SHA384, .variant = FW_V_PKCS1),
	M(CKM_SHA512_RSA_PKCS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH, FW_P_NONE,
	  .hash = FW_H_SHA512, .variant = FW_V_PKCS1),
	M(CKM_SHA1_RSA_PKCS_PSS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH, FW_P_PSS,
	  .hash = FW_H_SHA1, .variant = FW_V_PSS),
	M(CKM_SHA224_RSA_PKCS_PSS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH,
	  FW_P_PSS, .hash = FW_H_SHA224, .variant = FW_V_PSS),
	M(CKM_SHA256_RSA_PKCS_PSS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH,
	  FW_P_PSS, .hash = FW_H_SHA256, .variant = FW_V_PSS),
	M(CKM_SHA384_RSA_PKCS_PSS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH,
	  FW_P_PSS, .hash = FW_H_SHA384, .variant = FW_V_PSS),
	M(CKM_SHA512_RSA_PKCS_PSS, RSA_MIN, RSA_MAX, SV, FW_FAM_RSA_HASH,
	  FW_P_PSS, .hash = FW_H_SHA512, .variant = FW_V_PSS),

	/* EC (Weierstrass curves P-256, P-384, P-521) */
	M(CKM_EC_KEY_PAIR_GEN, EC_MIN, EC_MAX, CKF_GENERATE_KEY_PAIR | EC_CAPS,
	  FW_FAM_KEYGEN, FW_P_NONE),
	M(CKM_ECDSA, EC_MIN, EC_MAX, SV | EC_CAPS, FW_FAM_ECDSA, FW_P_NONE),
	M(CKM_ECDSA_SHA1, EC_MIN, EC_MAX, SV | EC_CAPS, FW_FAM_ECDSA_HASH,
	  FW_P_NONE, .hash = FW_H_SHA1),
	M(CKM_ECDSA_SHA224, EC_MIN, EC_MAX, SV | EC_CAPS, FW_FAM_ECDSA_HASH,
	  FW_P_NONE, .hash = FW_H_SHA224),
	M(CKM_ECDSA_SHA256, EC_MIN, EC_MAX, SV | EC_CAPS, FW_FAM_ECDSA_HASH,
	  FW_P_NONE, .hash = FW_H_SHA256),
	M(CKM_ECDSA_SHA384, EC_MIN, EC_MAX, SV | EC_CAPS, FW_FAM_ECDSA_HASH,
	  FW_P_NONE, .hash = FW_H_SHA384),
	M(CKM_ECDSA_SHA512, EC_MIN, EC_MAX, SV | EC_CAPS, FW_FAM_ECDSA_HASH,
	  FW_P_NONE, .hash = FW_H_SHA512),
	M(CKM_ECDH1_DERIVE, EC_MIN, EC_MAX, CKF_DERIVE | EC_CAPS, FW_FAM_ECDH,
	  FW_P_ECDH),

	/* Ed25519 */
	M(CKM_EC_EDWARDS_KEY_PAIR_GEN, 255, 255,
	  CKF_GENERATE_KEY_PAIR | ED_CAPS, FW_FAM_KEYGEN, FW_P_NONE),
	M(CKM_EDDSA, 255, 255, SV | ED_CAPS, FW_FAM_EDDSA, FW_P_EDDSA),

	/* AES */
	M(CKM_AES_KEY_GEN, AES_MIN, AES_MAX, CKF_GENERATE, FW_FAM_KEYGEN,
	  FW_P_NONE),
	M(CKM_AES_ECB, AES_MIN, AES_MAX, ED, FW_FAM_AES, FW_P_NONE,
	  .aes_mode = FW_AES_ECB),
	M(CKM_AES_CBC, AES_MIN, AES_MAX, ED, FW_FAM_AES, FW_P_IV16,
	  .aes_mode = FW_AES_CBC),
	M(CKM_AES_CBC_PAD, AES_MIN, AES_MAX, ED, FW_FAM_AES, FW_P_IV16,
	  .aes_mode = FW_AES_CBC, .variant = FW_V_CBC_PAD),
	M(CKM_AES_CTR, AES_MIN, AES_MAX, ED, FW_FAM_AES, FW_P_CTR,
	  .aes_mode = FW_AES_CTR),
	M(CKM_AES_GCM, AES_MIN, AES_MAX, GCM_FLAGS, FW_FAM_AES, FW_P_GCM,
	  .aes_mode = FW_AES_GCM),
	M(CKM_AES_KEY_WRAP, AES_MIN, AES_MAX, ED | WU, FW_FAM_AES_WRAP,
	  FW_P_WRAP, .aes_mode = FW_AES_WRAP),
	/* RFC 5649 under both names: clients written for SoftHSM use
	 * CKM_AES_KEY_WRAP_PAD for it, PKCS#11 3.0 calls it KWP. */
	M(CKM_AES_KEY_WRAP_PAD, AES_MIN, AES_MAX, ED | WU, FW_FAM_AES_WRAP,
	  FW_P_WRAP, .aes_mode = FW_AES_WRAP_PAD, .variant = FW_V_KWP),
	M(CKM_AES_KEY_WRAP_KWP, AES_MIN, AES_MAX, ED | WU, FW_FAM_AES_WRAP,
	  FW_P_WRAP, .aes_mode = FW_AES_WRAP_PAD, .variant = FW_V_KWP),
	M(CKM_AES_CMAC, AES_MIN, AES_MAX, SV, FW_FAM_CMAC, FW_P_NONE),
	M(CKM_AES_CMAC_GENERAL, AES_MIN, AES_MAX, SV, FW_FAM_CMAC,
	  FW_P_MAC_LEN, .general = true),

	/* Digests */
	M(CKM_SHA_1, 0, 0, CKF_DIGEST, FW_FAM_DIGEST, FW_P_NONE,
	  .hash = FW_H_SHA1),
	M(CKM_SHA224, 0, 0, CKF_DIGEST, FW_FAM_DIGEST, FW_P_NONE,
	  .hash = FW_H_SHA224),
	M(CKM_SHA256, 0, 0, CKF_DIGEST, FW_FAM_DIGEST, FW_P_NONE,
	  .hash = FW_H_SHA256),
	M(CKM_SHA384, 0, 0, CKF_DIGEST, FW_FAM_DIGEST, FW_P_NONE,
	  .hash = FW_H_SHA384),
	M(CKM_SHA512, 0, 0, CKF_DIGEST, FW_FAM_DIGEST, FW_P_NONE,
	  .hash = FW_H_SHA512),
	M(CKM_SHA3_224, 0, 0, CKF_DIGEST, FW_FAM_DIGEST, FW_P_NONE,
	  .hash = FW_H_SHA3_224),
	M(CKM_SHA3_256, 0, 0, CKF_DIGEST, FW_FAM_DIGEST, FW_P_NONE,
	  .hash = FW_H_SHA3_256),
	M(CKM_SHA3_384, 0, 0, CKF_DIGEST, FW_FAM_DIGEST, FW_P_NONE,
	  .hash = FW_H_SHA3_384),
	M(CKM_SHA3_512, 0, 0, CKF_DIGEST, FW_FAM_DIGEST, FW_P_NONE,
	  .hash = FW_H_SHA3_512),

	/* HMAC */
#define HMAC_PAIR(name, h) \
	M(name, SECRET_MIN, SECRET_MAX, SV, FW_FAM_HMAC, FW_P_NONE, .hash = (h)), \
	M(name##_GENERAL, SECRET_MIN, SECRET_MAX, SV, FW_FAM_HMAC, \
	  FW_P_MAC_LEN, .hash = (h), .general = true)
	HMAC_PAIR(CKM_SHA_1_HMAC, FW_H_SHA1),
	HMAC_PAIR(CKM_SHA224_HMAC, FW_H_SHA224),
	HMAC_PAIR(CKM_SHA256_HMAC, FW_H_SHA256),
	HMAC_PAIR(CKM_SHA384_HMAC, FW_H_SHA384),
	HMAC_PAIR(CKM_SHA512_HMAC, FW_H_SHA512),
	HMAC_PAIR(CKM_SHA3_224_HMAC, FW_H_SHA3_224),
	HMAC_PAIR(CKM_SHA3_256_HMAC, FW_H_SHA3_256),
	HMAC_PAIR(CKM_SHA3_384_HMAC, FW_H_SHA3_384),
	HMAC_PAIR(CKM_SHA3_512_HMAC, FW_H_SHA3_512),
#undef HMAC_PAIR

	M(CKM_GENERIC_SECRET_KEY_GEN, SECRET_MIN, SECRET_MAX, CKF_GENERATE,
	  FW_FAM_KEYGEN, FW_P_NONE),
};

#undef M

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

size_t fw_mech_count(void)
{
	return TABLE_LEN;
}

const struct fw_mech_desc *fw_mech_at(size_t i)
{
	return i < TABLE_LEN ? &table[i].desc : NULL;
}

const struct fw_mech_info *fw_mech_info(CK_MECHANISM_TYPE type)
{
	for (size_t i = 0; i < TABLE_LEN; i++)
		if (table[i].desc.type == type)
			return &table[i];
	return NULL;
}

const struct fw_mech_desc *fw_mech_find(CK_MECHANISM_TYPE type)
{
	const struct fw_mech_info *mi = fw_mech_info(type);

	return mi ? &mi->desc : NULL;
}

/*
 * Byte strings of a parameter point into the request while parsing; at the
 * end they are copied into one allocation so the result outlives it.
 */
#define MAX_STRINGS 3

struct parse_ctx {
	struct phsm_reader *r;
	struct fw_mech *m;
	int n;
	struct {
		const uint8_t *src;
		size_t len;
		const uint8_t **dst;
	} s[MAX_STRINGS];
};

static uint64_t get_u64(struct parse_ctx *pc)
{
	return phsm_get_u64(pc->r);
}

static void get_bytes(struct parse_ctx *pc, const uint8_t **dst,
		      size_t *len)
{
	const uint8_t *p = phsm_get_bytes(pc->r, len);

	/* dst NULL: a field the engine checks but does not keep. */
	if (!p || !dst || pc->n == MAX_STRINGS)
		return;
	pc->s[pc->n].src = p;
	pc->s[pc->n].len = *len;
	pc->s[pc->n].dst = dst;
	pc->n++;
}

static bool copy_strings(struct parse_ctx *pc)
{
	size_t total = 0, off = 0;

	for (int i = 0; i < pc->n; i++)
		total += pc->s[i].len;
	if (!total) {
		for (int i = 0; i < pc->n; i++)
			*pc->s[i].dst = NULL;
		return true;
	}
	pc->m->buf = malloc(total);
	if (!pc->m->buf)
		return false;
	for (int i = 0; i < pc->n; i++) {
		memcpy(pc->m->buf + off, pc->s[i].src, pc->s[i].len);
		*pc->s[i].dst = pc->s[i].len ? pc->m->buf + off : NULL;
		off += pc->s[i].len;
	}
	return true;
}

static bool tag_bits_ok(CK_ULONG bits)
{
	/* OpenSSL's GCM produces and checks 1..16 byte tags; a 0-bit tag
	 * would authenticate nothing and is refused. */
	return bits >= 8 && bits <= 128 && bits % 8 == 0;
}

/*
 * AES_GCM: CK_GCM_PARAMS for C_EncryptInit/C_DecryptInit.  For the
 * message-based API the per-message parameter carries IV and tag, so
 * C_MessageEncryptInit may send no parameter or a CK_GCM_MESSAGE_PARAMS
 * layout; either leaves iv_len 0, which only fw_msg_new() accepts.
 */
static bool parse_gcm(struct parse_ctx *pc)
{
	struct fw_mech *m = pc->m;
	struct phsm_reader look;
	size_t iv_len, tag_len;

	if (!pc->r->left)
		return true;
	/* The third field tells the two layouts apart. */
	look = *pc->r;
	phsm_get_bytes(&look, &iv_len);
	phsm_get_u64(&look);
	if (phsm_next_is(&look, PHSM_FT_U64)) {
		/* CK_GCM_MESSAGE_PARAMS: iv, fixed bits, generator, tag, bits */
		CK_ULONG fixed, gen;

		get_bytes(pc, NULL, &iv_len);
		fixed = get_u64(pc);
		gen = get_u64(pc);
		get_bytes(pc, NULL, &tag_len);
		m->tag_bits = get_u64(pc);
		return fixed <= 8 * (CK_ULONG)iv_len &&
		       gen <= CKG_GENERATE_RANDOM && tag_bits_ok(m->tag_bits);
	}
	get_bytes(pc, &m->iv, &m->iv_len);
	m->iv_bits = get_u64(pc);
	get_bytes(pc, &m->aad, &m->aad_len);
	m->tag_bits = get_u64(pc);
	/* ulIvBits is advisory in 3.0; only a contradiction is an error. */
	return m->iv_len >= 1 && m->iv_len <= FW_GCM_IV_MAX &&
	       m->iv_bits <= 8 * (CK_ULONG)m->iv_len &&
	       tag_bits_ok(m->tag_bits);
}

static bool parse_layout(const struct fw_mech_info *mi, struct parse_ctx *pc)
{
	struct fw_mech *m = pc->m;

	switch (mi->layout) {
	case FW_P_NONE:
		return true;
	case FW_P_IV16:
		get_bytes(pc, &m->iv, &m->iv_len);
		return m->iv_len == FW_AES_BLOCK;
	case FW_P_CTR:
		m->counter_bits = get_u64(pc);
		get_bytes(pc, &m->iv, &m->iv_len);
		return m->iv_len == FW_AES_BLOCK && m->counter_bits >= 1 &&
		       m->counter_bits <= 128;
	case FW_P_GCM:
		return parse_gcm(pc);
	case FW_P_WRAP:
		if (!pc->r->left)
			return true;
		get_bytes(pc, &m->iv, &m->iv_len);
		return m->iv_len == (mi->variant == FW_V_KWP ? 4u : 8u);
	case FW_P_PSS:
		m->hash_alg = get_u64(pc);
		m->mgf = get_u64(pc);
		m->salt_len = get_u64(pc);
		if (mi->hash && fw_hash_from_mech(m->hash_alg) != mi->hash)
			return false;
		return fw_hash_from_mech(m->hash_alg) &&
		       fw_hash_from_mgf(m->mgf) && m->salt_len <= 4096;
	case FW_P_OAEP:
		m->hash_alg = get_u64(pc);
		m->mgf = get_u64(pc);
		m->source = get_u64(pc);
		get_bytes(pc, &m->source_data, &m->source_len);
		return fw_rsa_check_oaep(m) == CKR_OK;
	case FW_P_ECDH:
		m->kdf = get_u64(pc);
		get_bytes(pc, &m->shared_data, &m->shared_len);
		get_bytes(pc, &m->public_data, &m->public_len);
		if (m->kdf == CKD_NULL && m->shared_len)
			return false;
		return (m->kdf == CKD_NULL || fw_hash_from_kdf(m->kdf)) &&
		       m->public_len > 0;
	case FW_P_EDDSA:
		if (!pc->r->left)
			return true;
		m->has_eddsa_params = true;
		m->ph_flag = get_u64(pc);
		get_bytes(pc, &m->context, &m->context_len);
		return m->ph_flag <= 1 && m->context_len <= 255;
	case FW_P_MAC_LEN:
		m->mac_len = get_u64(pc);
		return m->mac_len >= 1 &&
		       m->mac_len <= (mi->family == FW_FAM_CMAC ?
				      FW_AES_BLOCK : fw_md_size(mi->hash));
	}
	return false;
}

CK_RV fw_mech_parse(CK_MECHANISM_TYPE type, struct phsm_reader *param,
		    struct fw_mech *out)
{
	const struct fw_mech_info *mi = fw_mech_info(type);
	struct parse_ctx pc = { .r = param, .m = out };
	bool ok;

	memset(out, 0, sizeof(*out));
	out->type = type;
	if (!mi)
		return CKR_MECHANISM_INVALID;
	ok = parse_layout(mi, &pc);
	if (!phsm_reader_done(param) || !ok) {
		fw_mech_free(out);
		out->type = type;
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if (!copy_strings(&pc)) {
		fw_mech_free(out);
		return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

void fw_mech_free(struct fw_mech *m)
{
	size_t n = m->iv_len + m->aad_len + m->source_len + m->shared_len +
		   m->public_len + m->context_len;

	/* The buffer may hold a KDF's shared data; wipe it like the rest. */
	if (m->buf)
		OPENSSL_cleanse(m->buf, n);
	free(m->buf);
	memset(m, 0, sizeof(*m));
}
