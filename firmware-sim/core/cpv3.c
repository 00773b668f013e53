// SPDX-License-Identifier: MIT
/*
 * CPv3 cloning (Documentation/phsm/cloning.rst, "CPv3"): one object per
 * exchange of four calls, kept per PKCS#11 session (s->cpv3, under the
 * session lock):
 *
 *   CA_CloneAsSourceInit   source: TWC = its chain and a fresh P-384
 *                          ephemeral key, signed by its device key
 *   CA_CloneAsTargetInit   target: checks TWC, answers Part1 = its chain,
 *                          ephemeral key, signature, and confirm_t, the
 *                          proof that it holds the primary domain
 *   CA_CloneAsSource       source: checks Part1 and confirm_t (the domain
 *                          rule), answers Part2 = confirm_s and the
 *                          object's blob
 *   CA_CloneAsTarget       target: checks Part2, creates the object
 *
 * Nothing is negotiated: suite 2 (ECDH P-384), HKDF-SHA384, encoding 1.
 * With TH the SHA-384 hash, "prefix" the bytes of a message before the
 * named field, and all HKDF calls with SHA-384:
 *
 *   Z        = ECDH(eph_s, eph_t), x-coordinate
 *   TH1      = TH(TWC || prefix of confirm_t)
 *   HS       = HKDF-Extract(TH1, Z)
 *   MS       = HKDF-Extract(HKDF-Expand(HS, "phsm cpv3 v1 derived", 48),
 *                           psk of the primary domain)
 *   fk_t     = HKDF-Expand(MS, "phsm cpv3 v1 finished t", 48)
 *   fk_s     = HKDF-Expand(MS, "phsm cpv3 v1 finished s", 48)
 *   confirm_t = HMAC(fk_t, TH1)
 *   confirm_s = HMAC(fk_s, TH(TWC || Part1 || prefix of confirm_s))
 *   k_s2t    = HKDF-Expand(MS, "phsm cpv3 v1 blob" || TH(TWC || Part1), 32)
 *   session_id = the first 16 bytes of TH(TWC || Part1)
 *
 * Device signatures cover label || H(prefix of the signature field), the
 * prefix including the U64 sig_alg field; Part1's also covers the TWC it
 * answers.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <phsm/cryptoki_ca.h>

#include "clone.h"
#include "internal.h"

#define KDF		FW_CLN_KDF_SHA384
#define HLEN		48		/* SHA-384 */
#define SUITE		FW_CLN_SUITE_P384
#define LBL		"phsm cpv3 v1 "

/* The source side of an exchange: after CA_CloneAsSourceInit. */
struct cpv3_src {
	uint64_t created;	/* card clock */
	uint64_t replicate;
	bool delivered;		/* TWC handed out: a new Init starts over */
	struct fw_eph *eph;
	uint8_t *twc;
	size_t twc_len;
};

/* The target side: after CA_CloneAsTargetInit. */
struct cpv3_tgt {
	uint64_t created;
	uint64_t replicate;
	uint8_t *twc;		/* the input, for repeated calls */
	size_t twc_len;
	uint8_t *part1;		/* the output */
	size_t part1_len;
	uint8_t dom_id[FW_CLN_DOMAIN_ID_LEN];	/* the domain it proved */
	uint8_t fk_s[HLEN];
	uint8_t k_s2t[FW_CLN_KEY_LEN];
	uint8_t sid[FW_CLN_SID_LEN];
};

struct fw_cpv3 {
	struct cpv3_src *src;
	struct cpv3_tgt *tgt;
};

/* Keys of one exchange, wiped after use. */
struct cpv3_keys {
	uint8_t ms[HLEN];
	uint8_t fk_t[HLEN];
	uint8_t fk_s[HLEN];
	uint8_t k_s2t[FW_CLN_KEY_LEN];
	uint8_t sid[FW_CLN_SID_LEN];
};

/* ---- state ------------------------------------------------------------ */

static void src_free(struct cpv3_src *x)
{
	if (!x)
		return;
	fw_eph_free(x->eph);
	free(x->twc);
	free(x);
}

static void tgt_free(struct cpv3_tgt *x)
{
	if (!x)
		return;
	free(x->twc);
	free(x->part1);
	OPENSSL_cleanse(x, sizeof(*x));
	free(x);
}

void fw_cpv3_session_free(struct fw_session *s)
{
	if (!s->cpv3)
		return;
	src_free(s->cpv3->src);
	tgt_free(s->cpv3->tgt);
	free(s->cpv3);
	s->cpv3 = NULL;
}

static struct fw_cpv3 *cpv3_of(struct fw_session *s)
{
	if (!s->cpv3)
		s->cpv3 = calloc(1, sizeof(*s->cpv3));
	return s->cpv3;
}

static void drop_src(struct fw_session *s)
{
	if (s->cpv3) {
		src_free(s->cpv3->src);
		s->cpv3->src = NULL;
	}
}

static void drop_tgt(struct fw_session *s)
{
	if (s->cpv3) {
		tgt_free(s->cpv3->tgt);
		s->cpv3->tgt = NULL;
	}
}

static bool expired(const struct fw_card *card, uint64_t created)
{
	uint64_t now = fw_clock(card);

	return now < created ||
	       now - created > card->clone_cfg.negotiation_timeout;
}

static void keys_wipe(struct cpv3_keys *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

/* ---- checks shared by the four calls ---------------------------------- */

/*
 * The session (locked), its user logged in, CPv3 allowed on its
 * partition, then the arguments (@args_ok); the session's exchanges.
 */
static CK_RV cpv3_begin(struct fw_req *rq, uint64_t sess, bool args_ok,
			struct fw_session **s, struct fw_cpv3 **c)
{
	CK_RV rv = fw_clone_session(rq, sess, CK_PHSM_POLICY_CPV3_DISABLED, s);

	if (rv != CKR_OK)
		return rv;
	if (!args_ok)
		rv = CKR_ARGUMENTS_BAD;
	else if (!(*c = cpv3_of(*s)))
		rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK)
		fw_session_put(rq->card, *s);
	return rv;
}

/* The primary domain's ID and psk: the domain rule of [V3]. */
static CK_RV primary_domain(struct fw_card *card, unsigned int part,
			    uint8_t id[FW_CLN_DOMAIN_ID_LEN],
			    uint8_t psk[FW_CLN_PSK_LEN])
{
	struct fw_domain d;
	unsigned int n, primaries = 0;
	bool ok;

	pthread_mutex_lock(&card->lock);
	n = card->ext[part].ndomains;
	for (unsigned int i = 0; i < n && i < FW_DOMAINS_MAX; i++) {
		if (card->ext[part].dom[i].primary) {
			if (!primaries)
				d = card->ext[part].dom[i];
			primaries++;
		}
	}
	pthread_mutex_unlock(&card->lock);
	if (!n)
		return CKR_SESSION_NEGOTIATION_NO_PSK;
	if (!primaries)
		return CKR_DOMAIN_NO_PRIMARY;
	if (primaries > 1) {
		OPENSSL_cleanse(&d, sizeof(d));
		return CKR_DOMAIN_EXTRA_PRIMARY;
	}
	ok = fw_domain_keys(&d, id, psk);
	OPENSSL_cleanse(&d, sizeof(d));
	return ok ? CKR_OK : CKR_DEVICE_ERROR;
}

/* ---- messages ------------------------------------------------------------ */

struct twc_view {
	const uint8_t *nonce;
	size_t nonce_len;
	uint64_t replicate;
	const uint8_t *eph;
	size_t eph_len;
	const uint8_t *chain;
	size_t chain_len;
	uint64_t sig_alg;
	const uint8_t *sig;
	size_t sig_len;
	size_t signed_len;	/* the bytes before the sig field */
};

struct part1_view {
	const uint8_t *twc_hash;
	size_t twc_hash_len;
	struct twc_view t;	/* the fields Part1 shares with TWC */
	const uint8_t *confirm;
	size_t confirm_len;
	size_t confirm_off;	/* the bytes before the confirm_t field */
};

struct part2_view {
	const uint8_t *sid;
	size_t sid_len;
	const uint8_t *confirm;
	size_t confirm_len;
	size_t confirm_off;
	const uint8_t *blob;
	size_t blob_len;
};

/* nonce, replicate, eph, chain, sig_alg, sig: TWC's body, Part1's too. */
static void get_signed_body(struct phsm_reader *r, size_t total,
			    struct twc_view *v)
{
	v->nonce = phsm_get_bytes(r, &v->nonce_len);
	v->replicate = phsm_get_u64(r);
	v->eph = phsm_get_bytes(r, &v->eph_len);
	v->chain = phsm_get_bytes(r, &v->chain_len);
	v->sig_alg = phsm_get_u64(r);
	v->signed_len = total - r->left;
	v->sig = phsm_get_bytes(r, &v->sig_len);
}

static bool parse_twc(const uint8_t *m, size_t len, struct twc_view *v)
{
	struct phsm_reader r;

	memset(v, 0, sizeof(*v));
	if (!fw_cln_open(&r, m, len, FW_CLN_TWC))
		return false;
	get_signed_body(&r, len, v);
	return phsm_reader_done(&r) && v->nonce_len == FW_CLN_NONCE_LEN &&
	       v->replicate <= 1;
}

static bool parse_part1(const uint8_t *m, size_t len, struct part1_view *v)
{
	struct phsm_reader r;

	memset(v, 0, sizeof(*v));
	if (!fw_cln_open(&r, m, len, FW_CLN_PART1))
		return false;
	v->twc_hash = phsm_get_bytes(&r, &v->twc_hash_len);
	get_signed_body(&r, len, &v->t);
	v->confirm_off = len - r.left;
	v->confirm = phsm_get_bytes(&r, &v->confirm_len);
	return phsm_reader_done(&r) && v->twc_hash_len == HLEN &&
	       v->t.nonce_len == FW_CLN_NONCE_LEN && v->confirm_len == HLEN;
}

static bool parse_part2(const uint8_t *m, size_t len, struct part2_view *v)
{
	struct phsm_reader r;

	memset(v, 0, sizeof(*v));
	if (!fw_cln_open(&r, m, len, FW_CLN_PART2))
		return false;
	v->sid = phsm_get_bytes(&r, &v->sid_len);
	v->confirm_off = len - r.left;
	v->confirm = phsm_get_bytes(&r, &v->confirm_len);
	v->blob = phsm_get_bytes(&r, &v->blob_len);
	return phsm_reader_done(&r) && v->sid_len == FW_CLN_SID_LEN &&
	       v->confirm_len == HLEN;
}

/* Verify a peer's signature over label || H(pre || m[0..signed_len)). */
static CK_RV verify_msg(const struct fw_card *card, const struct twc_view *v,
			const char *label, const uint8_t *pre, size_t pre_len,
			const uint8_t *m)
{
	return fw_id_verify_peer(card, v->chain, v->chain_len, v->sig_alg,
				 v->sig, v->sig_len, label, pre, pre_len, m,
				 v->signed_len, CKR_DATA_INVALID);
}

/* ---- keys --------------------------------------------------------------- */

/* TH(a || b) with CPv3's hash. */
static bool th(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
	       uint8_t out[HLEN])
{
	return fw_th(KDF, a, alen, b, blen, NULL, 0, NULL, 0, out);
}

/* MS and the finished keys from the ECDH, TH1 and the domain's psk. */
static CK_RV derive(struct fw_eph *eph, const uint8_t *peer, size_t peer_len,
		    const uint8_t th1[HLEN], const uint8_t psk[FW_CLN_PSK_LEN],
		    struct cpv3_keys *k)
{
	uint8_t z[FW_CLN_HASH_MAX], hs[HLEN];
	size_t z_len = 0;
	CK_RV rv = fw_eph_derive(eph, peer, peer_len, z, &z_len);
	bool ok;

	if (rv != CKR_OK)
		return rv;
	ok = fw_hkdf_extract(KDF, th1, HLEN, z, z_len, hs) &&
	     fw_cln_master(KDF, hs, psk, LBL "derived", LBL "finished t",
			   LBL "finished s", k->ms, k->fk_t, k->fk_s);
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(hs, sizeof(hs));
	return ok ? CKR_OK : CKR_DEVICE_ERROR;
}

/* k_s2t and the session ID, from the whole of TWC and Part1. */
static bool blob_keys(struct cpv3_keys *k, const uint8_t *twc, size_t twc_len,
		      const uint8_t *part1, size_t part1_len)
{
	uint8_t thb[HLEN];

	if (!th(twc, twc_len, part1, part1_len, thb))
		return false;
	memcpy(k->sid, thb, FW_CLN_SID_LEN);
	return fw_hkdf_label(KDF, k->ms, LBL "blob", thb, HLEN, k->k_s2t,
			     FW_CLN_KEY_LEN);
}

/* ---- CA_CloneAsSourceInit ----------------------------------------------- */

static CK_RV make_twc(struct fw_card *card, uint64_t replicate,
		      struct cpv3_src **out)
{
	struct cpv3_src *x = calloc(1, sizeof(*x));
	struct phsm_writer w = { 0 };
	uint8_t nonce[FW_CLN_NONCE_LEN], pub[FW_CLN_POINT_MAX];
	size_t pub_len = 0;
	CK_RV rv;

	if (!x)
		return CKR_HOST_MEMORY;
	rv = fw_eph_new(SUITE, &x->eph, pub, &pub_len);
	if (rv == CKR_OK && RAND_bytes(nonce, sizeof(nonce)) != 1)
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK) {
		fw_cln_put_head(&w, FW_CLN_VERSION, FW_CLN_TWC);
		phsm_put_bytes(&w, nonce, sizeof(nonce));
		phsm_put_u64(&w, replicate);
		phsm_put_bytes(&w, pub, pub_len);
		fw_id_put_chain(card, &w);
		rv = fw_id_sign_msg(card, LBL "twc", NULL, 0, &w);
	}
	if (rv == CKR_OK && w.failed)
		rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK) {
		phsm_writer_free(&w);
		src_free(x);
		return rv;
	}
	x->twc = w.data;
	x->twc_len = w.len;
	x->replicate = replicate;
	x->created = fw_clock(card);
	*out = x;
	return CKR_OK;
}

CK_RV fw_h_clone_source_init(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r), replicate, outcap;
	struct fw_session *s;
	struct fw_cpv3 *c;
	struct cpv3_src *x;
	size_t in_len;
	bool delivered;
	CK_RV rv;

	phsm_get_bytes(rq->r, &in_len);
	replicate = phsm_get_u64(rq->r);
	outcap = phsm_get_u64(rq->r);
	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = cpv3_begin(rq, sess, !in_len && replicate <= 1, &s, &c);
	if (rv != CKR_OK)
		return rv;
	rv = fw_id_ready(rq->card);
	if (rv != CKR_OK)
		goto out;
	/* A TWC not yet handed out is handed out again (size queries). */
	x = c->src;
	if (!x || x->delivered || x->replicate != replicate ||
	    expired(rq->card, x->created)) {
		rv = make_twc(rq->card, replicate, &x);
		if (rv != CKR_OK)
			goto out;
		src_free(c->src);
		c->src = x;
	}
	rv = fw_clone_put_out(rq, outcap, x->twc, x->twc_len, &delivered);
	if (delivered)
		x->delivered = true;
out:
	fw_session_put(rq->card, s);
	return rv;
}

/* ---- CA_CloneAsTargetInit ----------------------------------------------- */

static CK_RV make_part1(struct fw_card *card, unsigned int part,
			const uint8_t *twc, size_t twc_len,
			const struct twc_view *v, struct cpv3_tgt **out)
{
	struct cpv3_tgt *x = calloc(1, sizeof(*x));
	struct phsm_writer w = { 0 };
	uint8_t nonce[FW_CLN_NONCE_LEN], pub[FW_CLN_POINT_MAX], psk[32];
	uint8_t twc_hash[HLEN], th1[HLEN], confirm[HLEN];
	struct fw_eph *eph = NULL;
	struct cpv3_keys k;
	size_t pub_len = 0;
	CK_RV rv;

	memset(&k, 0, sizeof(k));
	if (!x)
		return CKR_HOST_MEMORY;
	rv = primary_domain(card, part, x->dom_id, psk);
	if (rv == CKR_OK)
		rv = fw_eph_new(SUITE, &eph, pub, &pub_len);
	if (rv == CKR_OK && (RAND_bytes(nonce, sizeof(nonce)) != 1 ||
			     !th(twc, twc_len, NULL, 0, twc_hash)))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK) {
		fw_cln_put_head(&w, FW_CLN_VERSION, FW_CLN_PART1);
		phsm_put_bytes(&w, twc_hash, sizeof(twc_hash));
		phsm_put_bytes(&w, nonce, sizeof(nonce));
		phsm_put_u64(&w, v->replicate);
		phsm_put_bytes(&w, pub, pub_len);
		fw_id_put_chain(card, &w);
		rv = fw_id_sign_msg(card, LBL "part1", twc, twc_len, &w);
	}
	if (rv == CKR_OK && (w.failed || !th(twc, twc_len, w.data, w.len, th1)))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = derive(eph, v->eph, v->eph_len, th1, psk, &k);
	if (rv == CKR_OK && !fw_hmac(KDF, k.fk_t, HLEN, th1, HLEN, confirm))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK) {
		phsm_put_bytes(&w, confirm, sizeof(confirm));
		if (w.failed || !blob_keys(&k, twc, twc_len, w.data, w.len))
			rv = CKR_HOST_MEMORY;
	}
	if (rv == CKR_OK) {
		x->twc = malloc(twc_len);
		if (!x->twc)
			rv = CKR_HOST_MEMORY;
	}
	fw_eph_free(eph);
	OPENSSL_cleanse(psk, sizeof(psk));
	if (rv != CKR_OK) {
		keys_wipe(&k);
		phsm_writer_free(&w);
		tgt_free(x);
		return rv;
	}
	memcpy(x->twc, twc, twc_len);
	x->twc_len = twc_len;
	x->part1 = w.data;
	x->part1_len = w.len;
	memcpy(x->fk_s, k.fk_s, HLEN);
	memcpy(x->k_s2t, k.k_s2t, FW_CLN_KEY_LEN);
	memcpy(x->sid, k.sid, FW_CLN_SID_LEN);
	x->replicate = v->replicate;
	x->created = fw_clock(card);
	keys_wipe(&k);
	*out = x;
	return CKR_OK;
}

/* Check a TWC: its form, the replicate flag, the source card, its key. */
static CK_RV check_twc(const struct fw_card *card, const uint8_t *twc,
		       size_t len, uint64_t replicate, struct twc_view *v)
{
	CK_RV rv = fw_id_ready(card);

	if (rv != CKR_OK)
		return rv;
	if (!parse_twc(twc, len, v))
		return CKR_DATA_INVALID;
	if (v->replicate != replicate)
		return CKR_ARGUMENTS_BAD;
	rv = verify_msg(card, v, LBL "twc", NULL, 0, twc);
	if (rv == CKR_OK && !fw_eph_point_ok(SUITE, v->eph, v->eph_len))
		rv = CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY;
	return rv;
}

static bool same_twc(const struct cpv3_tgt *x, const uint8_t *twc,
		     size_t len, uint64_t replicate)
{
	return x && x->twc_len == len && !memcmp(x->twc, twc, len) &&
	       x->replicate == replicate;
}

CK_RV fw_h_clone_target_init(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r), replicate, outcap;
	size_t twc_len, kev_len;
	const uint8_t *twc = phsm_get_bytes(rq->r, &twc_len);
	struct fw_session *s;
	struct twc_view v;
	struct fw_cpv3 *c;
	struct cpv3_tgt *x;
	bool delivered;
	CK_RV rv;

	phsm_get_bytes(rq->r, &kev_len);
	replicate = phsm_get_u64(rq->r);
	outcap = phsm_get_u64(rq->r);
	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = cpv3_begin(rq, sess, !kev_len && twc_len && replicate <= 1, &s,
			&c);
	if (rv != CKR_OK)
		return rv;
	x = c->tgt;
	/* The same TWC again gets the same Part1 (size queries, retries). */
	if (!same_twc(x, twc, twc_len, replicate) ||
	    expired(rq->card, x->created)) {
		rv = check_twc(rq->card, twc, twc_len, replicate, &v);
		if (rv == CKR_OK)
			rv = make_part1(rq->card, s->part, twc, twc_len, &v, &x);
		if (rv != CKR_OK)
			goto out;
		tgt_free(c->tgt);
		c->tgt = x;
	}
	rv = fw_clone_put_out(rq, outcap, x->part1, x->part1_len, &delivered);
out:
	fw_session_put(rq->card, s);
	return rv;
}

/* ---- CA_CloneAsSource --------------------------------------------------- */

/* Check Part1 against our TWC; the keys of the exchange. */
static CK_RV check_part1(struct fw_card *card, unsigned int part,
			 const struct cpv3_src *x, const uint8_t *p1,
			 size_t len, struct cpv3_keys *k)
{
	uint8_t twc_hash[HLEN], th1[HLEN], confirm[HLEN], psk[32], id[16];
	struct part1_view v;
	CK_RV rv;

	if (!parse_part1(p1, len, &v))
		return CKR_DATA_INVALID;
	/* It answers our TWC, with our replicate flag. */
	if (!th(x->twc, x->twc_len, NULL, 0, twc_hash))
		return CKR_DEVICE_ERROR;
	if (CRYPTO_memcmp(twc_hash, v.twc_hash, HLEN) ||
	    v.t.replicate != x->replicate)
		return CKR_DATA_INVALID;
	rv = verify_msg(card, &v.t, LBL "part1", x->twc, x->twc_len, p1);
	if (rv != CKR_OK)
		return rv;
	if (!fw_eph_point_ok(SUITE, v.t.eph, v.t.eph_len))
		return CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY;
	/* The domain rule: confirm_t proves the target's primary domain. */
	rv = primary_domain(card, part, id, psk);
	if (rv == CKR_OK && !th(x->twc, x->twc_len, p1, v.confirm_off, th1))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK)
		rv = derive(x->eph, v.t.eph, v.t.eph_len, th1, psk, k);
	if (rv == CKR_OK && !fw_hmac(KDF, k->fk_t, HLEN, th1, HLEN, confirm))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK && CRYPTO_memcmp(confirm, v.confirm, HLEN))
		rv = CKR_SESSION_NEGOTIATION_NO_PSK;
	if (rv == CKR_OK && !blob_keys(k, x->twc, x->twc_len, p1, len))
		rv = CKR_DEVICE_ERROR;
	OPENSSL_cleanse(psk, sizeof(psk));
	return rv;
}

struct part2_in {
	const struct cpv3_src *x;
	const uint8_t *p1;
	size_t p1_len;
	const struct cpv3_keys *k;
	uint64_t type;
	const uint8_t *pt;	/* the object's plaintext */
	size_t pt_len;
};

static void blob_ctx(struct fw_blob_ctx *b, const uint8_t *sid,
		     const uint8_t key[FW_CLN_KEY_LEN])
{
	memset(b, 0, sizeof(*b));
	b->version = FW_CLN_VERSION;
	b->type = FW_CLN_BLOB3;
	b->sid = sid;
	b->sid_len = FW_CLN_SID_LEN;
	b->direction = 1;
	b->encoding = FW_CLN_ENC_ATTRS1;
	memcpy(b->key, key, FW_CLN_KEY_LEN);
}

static size_t part2_size(const struct fw_blob_ctx *b, size_t pt_len)
{
	return 3 * FW_CLN_U64_FIELD + FW_CLN_FIELD_HDR + FW_CLN_SID_LEN +
	       FW_CLN_FIELD_HDR + HLEN + FW_CLN_FIELD_HDR +
	       fw_blob_size(b, pt_len);
}

/* confirm_s = HMAC(fk_s, TH(TWC || Part1 || prefix of confirm_s)). */
static bool confirm_s(const uint8_t *fk_s, const uint8_t *twc, size_t twc_len,
		      const uint8_t *p1, size_t p1_len, const uint8_t *pre,
		      size_t pre_len, uint8_t out[HLEN])
{
	uint8_t thc[HLEN];

	return fw_th(KDF, twc, twc_len, p1, p1_len, pre, pre_len, NULL, 0,
		     thc) &&
	       fw_hmac(KDF, fk_s, HLEN, thc, HLEN, out);
}

/* Part2: header, session_id, confirm_s, the blob (seq 1). */
static CK_RV make_part2(const struct part2_in *in, struct fw_blob_ctx *b,
			struct phsm_writer *w)
{
	size_t blen = fw_blob_size(b, in->pt_len);
	uint8_t confirm[HLEN], *blob;
	CK_RV rv;

	fw_cln_put_head(w, FW_CLN_VERSION, FW_CLN_PART2);
	phsm_put_bytes(w, in->k->sid, FW_CLN_SID_LEN);
	if (w->failed)
		return CKR_HOST_MEMORY;
	if (!confirm_s(in->k->fk_s, in->x->twc, in->x->twc_len, in->p1,
		       in->p1_len, w->data, w->len, confirm))
		return CKR_DEVICE_ERROR;
	phsm_put_bytes(w, confirm, sizeof(confirm));
	blob = malloc(blen);
	if (!blob)
		return CKR_HOST_MEMORY;
	rv = fw_blob_seal(b, 1, in->type, in->pt, in->pt_len, blob);
	if (rv == CKR_OK)
		phsm_put_bytes(w, blob, blen);
	free(blob);
	if (rv == CKR_OK && w->failed)
		rv = CKR_HOST_MEMORY;
	return rv;
}

static CK_RV answer_part2(struct fw_req *rq, struct part2_in *in,
			  uint64_t outcap, bool *delivered)
{
	struct phsm_writer w = { 0 };
	struct fw_blob_ctx b;
	size_t need;
	CK_RV rv;

	blob_ctx(&b, in->k->sid, in->k->k_s2t);
	need = part2_size(&b, in->pt_len);
	*delivered = false;
	/* Size queries and short buffers learn the size; nothing is sealed. */
	if (outcap == PHSM_OUT_QUERY || outcap < need) {
		rv = fw_clone_put_out(rq, outcap, NULL, need, delivered);
	} else {
		rv = make_part2(in, &b, &w);
		if (rv == CKR_OK && w.len != need)
			rv = CKR_GENERAL_ERROR;
		if (rv == CKR_OK)
			rv = fw_clone_put_out(rq, outcap, w.data, w.len, delivered);
	}
	OPENSSL_cleanse(&b, sizeof(b));
	if (w.data)
		OPENSSL_cleanse(w.data, w.len);
	phsm_writer_free(&w);
	return rv;
}

CK_RV fw_h_clone_as_source(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t type = phsm_get_u64(rq->r);
	uint64_t obj = phsm_get_u64(rq->r);
	size_t p1_len;
	const uint8_t *p1 = phsm_get_bytes(rq->r, &p1_len);
	uint64_t replicate = phsm_get_u64(rq->r);
	uint64_t outcap = phsm_get_u64(rq->r);
	struct part2_in in = { .p1 = p1, .p1_len = p1_len, .type = type };
	struct fw_session *s;
	struct fw_cpv3 *c;
	struct cpv3_src *x;
	struct cpv3_keys k = { 0 };
	uint8_t *pt = NULL;
	bool delivered = false;
	CK_RV rv;

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = cpv3_begin(rq, sess, p1_len && replicate <= 1, &s, &c);
	if (rv != CKR_OK)
		return rv;
	x = c->src;
	if (x && expired(rq->card, x->created)) {
		drop_src(s);
		x = NULL;
	}
	if (!x)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else if (replicate != x->replicate)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = check_part1(rq->card, s->part, x, p1, p1_len, &k);
	/* Then the object. */
	if (rv == CKR_OK && type != CK_CRYPTOKI_ELEMENT &&
	    type != CK_PARAM_ELEMENT)
		rv = CKR_OBJECT_TYPE_INVALID;
	if (rv == CKR_OK)
		rv = fw_blob_plain(rq->card, s, type, obj, &pt, &in.pt_len);
	if (rv == CKR_OK) {
		in.x = x;
		in.k = &k;
		in.pt = pt;
		rv = answer_part2(rq, &in, outcap, &delivered);
	}
	/* Part2 handed out: this exchange is over ([V3]: one per object). */
	if (delivered)
		drop_src(s);
	if (pt) {
		OPENSSL_cleanse(pt, in.pt_len);
		free(pt);
	}
	keys_wipe(&k);
	fw_session_put(rq->card, s);
	return rv;
}

/* ---- CA_CloneAsTarget --------------------------------------------------- */

/* Part2 of our exchange, with a valid confirm_s; the blob's header. */
static CK_RV check_part2(const struct cpv3_tgt *x, const uint8_t *p2,
			 size_t len, struct part2_view *v,
			 struct fw_blob_hdr *h, bool *auth_failed)
{
	uint8_t confirm[HLEN];

	*auth_failed = false;
	if (!parse_part2(p2, len, v) ||
	    CRYPTO_memcmp(v->sid, x->sid, FW_CLN_SID_LEN))
		return CKR_DATA_INVALID;
	if (!confirm_s(x->fk_s, x->twc, x->twc_len, x->part1, x->part1_len, p2,
		       v->confirm_off, confirm))
		return CKR_DEVICE_ERROR;
	if (CRYPTO_memcmp(confirm, v->confirm, HLEN)) {
		*auth_failed = true;
		return CKR_DATA_INVALID;
	}
	if (fw_blob_parse(v->blob, v->blob_len, h) != CKR_OK ||
	    h->version != FW_CLN_VERSION || h->type != FW_CLN_BLOB3 ||
	    h->encoding != FW_CLN_ENC_ATTRS1 || h->direction != 1 ||
	    h->seq != 1 || h->sid_len != FW_CLN_SID_LEN ||
	    CRYPTO_memcmp(h->sid, x->sid, FW_CLN_SID_LEN))
		return CKR_DATA_INVALID;
	if (h->object_type != CK_CRYPTOKI_ELEMENT &&
	    h->object_type != CK_PARAM_ELEMENT)
		return CKR_OBJECT_TYPE_INVALID;
	return CKR_OK;
}

/* Is the domain the target proved in Part1 still its primary one? */
static bool domain_kept(struct fw_card *card, unsigned int part,
			const struct cpv3_tgt *x)
{
	uint8_t id[FW_CLN_DOMAIN_ID_LEN], psk[FW_CLN_PSK_LEN];
	bool ok = primary_domain(card, part, id, psk) == CKR_OK &&
		  !CRYPTO_memcmp(id, x->dom_id, sizeof(id));

	OPENSSL_cleanse(psk, sizeof(psk));
	return ok;
}

/* Create what the blob holds; *consumed when the exchange is spent. */
static CK_RV insert_blob(struct fw_card *card, struct fw_session *s,
			 const struct cpv3_tgt *x, const uint8_t *blob,
			 const struct fw_blob_hdr *h, uint64_t handle,
			 uint64_t *out, bool *consumed)
{
	uint8_t *pt = NULL, param[FW_HASH_LEN];
	uint64_t param_id = 0;
	struct fw_obj *o = NULL;
	size_t pt_len = 0;
	CK_RV rv = fw_blob_open(x->k_s2t, blob, h, &pt, &pt_len);

	/* A blob that does not authenticate spends the exchange. */
	*consumed = rv == CKR_ENCRYPTED_DATA_INVALID;
	if (rv != CKR_OK)
		return rv;
	*consumed = true;	/* created, or an invalid plaintext */
	rv = fw_blob_build(card, s, h->object_type, PHSM_CLONE_STORAGE_AS_IS,
			   pt, pt_len, &o, &param_id, param);
	OPENSSL_cleanse(pt, pt_len);
	free(pt);
	if (rv == CKR_OK && h->object_type == CK_PARAM_ELEMENT &&
	    param_id != handle)
		rv = CKR_OBJECT_TYPE_INVALID;
	if (rv == CKR_OK && o) {
		*out = o->handle;	/* o may go with the publishing */
		rv = fw_blob_publish(card, s->part, &o, 1, NULL, NULL, 0);
		o = NULL;
	} else if (rv == CKR_OK) {
		*out = param_id;
		rv = fw_blob_publish(card, s->part, NULL, 0, &param_id, &param,
				     1);
	}
	if (o)
		fw_obj_put(card, o);
	OPENSSL_cleanse(param, sizeof(param));
	/* A local failure (read-only session, memory, the wrong param_id
	 * given) may be retried; an invalid plaintext may not. */
	if (rv != CKR_OK && rv != CKR_DATA_INVALID)
		*consumed = false;
	return rv;
}

CK_RV fw_h_clone_as_target(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r), type, obj, replicate;
	size_t kev_len, p2_len;
	const uint8_t *p2;
	struct fw_session *s;
	struct fw_cpv3 *c;
	struct cpv3_tgt *x;
	struct part2_view v;
	struct fw_blob_hdr h;
	uint64_t handle = 0;
	bool spent = false;
	CK_RV rv;

	phsm_get_bytes(rq->r, &kev_len);
	p2 = phsm_get_bytes(rq->r, &p2_len);
	type = phsm_get_u64(rq->r);
	obj = phsm_get_u64(rq->r);
	replicate = phsm_get_u64(rq->r);
	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = cpv3_begin(rq, sess, !kev_len && p2_len && replicate <= 1, &s, &c);
	if (rv != CKR_OK)
		return rv;
	x = c->tgt;
	/* Expired, or its domain deleted or replaced meanwhile: gone. */
	if (x && (expired(rq->card, x->created) ||
		  !domain_kept(rq->card, s->part, x))) {
		drop_tgt(s);
		x = NULL;
	}
	if (!x)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else if (replicate != x->replicate)
		rv = CKR_ARGUMENTS_BAD;
	else if (type != CK_CRYPTOKI_ELEMENT && type != CK_PARAM_ELEMENT)
		rv = CKR_OBJECT_TYPE_INVALID;
	else
		rv = check_part2(x, p2, p2_len, &v, &h, &spent);
	if (rv == CKR_OK && h.object_type != type)
		rv = CKR_OBJECT_TYPE_INVALID;
	if (rv == CKR_OK)
		rv = insert_blob(rq->card, s, x, v.blob, &h, obj, &handle,
				 &spent);
	if (spent)
		drop_tgt(s);
	if (rv == CKR_OK)
		phsm_put_u64(rq->w, handle);
	fw_session_put(rq->card, s);
	return rv;
}
