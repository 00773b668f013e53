// SPDX-License-Identifier: MIT
/*
 * CPv4 key cloning on the card (Documentation/phsm/cloning.rst): the
 * record table, expiry and cleanup, the four negotiation steps, closing,
 * CA_Extract and CA_Insert.
 *
 * A record is one end of a negotiation or of an established clone
 * session, owned by a partition.  The table has its own lock (cl->lock),
 * held only to find, add, remove or re-key records and never across
 * cryptography.  Each record has a lock of its own that serialises the
 * steps of its negotiation (held across their cryptography) and guards
 * its sequence counter and replay set.  Order: session->lock, rec->lock,
 * then cl->lock or card->lock briefly; nothing is taken under cl->lock.
 * fw_clone_drop_partition() takes cl->lock alone, possibly under
 * store_lock (C_InitToken); nothing here takes store_lock under a record
 * or table lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <phsm/cryptoki_ca.h>

#include "clone.h"
#include "internal.h"

#define REC_MAX		256	/* records per card */
#define TOMB_MAX	1024	/* tombstones per card */
#define CLOCK_SLACK	3	/* seconds the two clocks may differ */
#define IN_HASH_LEN	32	/* SHA-256 of an input, for retries */
#define SEQ_STEP	4096	/* the replay set grows by this many bytes */

#define LBL		"phsm cpv4 v1 "	/* labels of signatures and keys */

enum rec_state {
	ST_I_SENT_M1 = 1,
	ST_R_SENT_M2,
	ST_I_SENT_M3,
	ST_ESTABLISHED,
};

/* A record's role is also the direction of the blobs it makes. */
enum { ROLE_I = 1, ROLE_R = 2 };

struct seqset {
	uint8_t *used;		/* inserted and committed */
	uint8_t *pending;	/* being inserted by some call */
	size_t bytes;
};

struct rec {
	struct rec *next;
	unsigned int refs;		/* cl->lock */
	bool dead;			/* out of the table; cl->lock */

	/* Written under rec->lock and cl->lock, read under either. */
	unsigned int part;
	int role;
	enum rec_state state;
	uint64_t expires;		/* card clock */
	uint8_t nonce_i[FW_CLN_NONCE_LEN];
	uint8_t sid[FW_CLN_SID_MAX];
	size_t sid_len;			/* 0 until the session has an ID */
	uint64_t start_sess;		/* I: the PKCS#11 session of Start */
	bool delivered;			/* I: m1 went out in full */
	uint8_t m1_hash[IN_HASH_LEN];	/* R: the m1 it answered */

	/* rec->lock */
	pthread_mutex_t lock;
	uint8_t in_hash[IN_HASH_LEN];	/* the input that made out */
	bool have_in;
	uint8_t *out;
	size_t out_len;
	uint64_t out_step, out_status;
	uint64_t version, suite, kdf, encoding, duration;
	uint64_t time_i, time_r;
	uint8_t *m1, *m2, *m3;		/* the transcript while negotiating */
	size_t m1_len, m2_len, m3_len;
	struct fw_eph *eph[3];		/* I: by suite, until m2 */
	uint8_t hs[FW_CLN_HASH_MAX];	/* R: until m3 */
	uint8_t k_m3[FW_CLN_KEY_LEN];	/* R: until m3 */
	uint8_t fk_r[FW_CLN_HASH_MAX];	/* I: until m4 */
	uint8_t k_send[FW_CLN_KEY_LEN];
	uint8_t k_recv[FW_CLN_KEY_LEN];
	uint64_t next_seq;
	struct seqset rx;
};

struct tomb {
	unsigned int part;
	bool by_nonce;
	size_t len;			/* 0: free */
	uint8_t key[FW_CLN_SID_MAX];
	uint64_t expires;
};

struct fw_clone {
	pthread_mutex_t lock;
	struct rec *recs;
	size_t nrecs;
	size_t tomb_next;		/* ring position of the next one */
	struct tomb tombs[TOMB_MAX];
};

/* ---- records ---------------------------------------------------------- */

static void rec_free(struct rec *r)
{
	for (size_t i = 0; i < 3; i++)
		fw_eph_free(r->eph[i]);
	if (r->out)
		OPENSSL_cleanse(r->out, r->out_len);
	free(r->out);
	free(r->m1);
	free(r->m2);
	free(r->m3);
	free(r->rx.used);
	free(r->rx.pending);
	pthread_mutex_destroy(&r->lock);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

static struct rec *rec_new(unsigned int part, int role)
{
	struct rec *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->refs = 1;		/* the creator's */
	r->dead = true;		/* until it is in the table */
	r->part = part;
	r->role = role;
	return r;
}

static void rec_put(struct fw_card *card, struct rec *r)
{
	bool last;

	pthread_mutex_lock(&card->clone->lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&card->clone->lock);
	if (last)
		rec_free(r);
}

static bool negotiating(const struct rec *r)
{
	return r->state != ST_ESTABLISHED;
}

static void tomb_add(struct fw_clone *cl, const struct rec *r, uint64_t until)
{
	struct tomb *t = &cl->tombs[cl->tomb_next];

	cl->tomb_next = (cl->tomb_next + 1) % TOMB_MAX;	/* oldest goes */
	memset(t, 0, sizeof(*t));
	t->part = r->part;
	t->by_nonce = r->sid_len == 0;
	t->len = t->by_nonce ? FW_CLN_NONCE_LEN : r->sid_len;
	memcpy(t->key, t->by_nonce ? r->nonce_i : r->sid, t->len);
	t->expires = until;
}

static bool tomb_find(struct fw_clone *cl, unsigned int part, bool by_nonce,
		      const uint8_t *key, size_t len, uint64_t now)
{
	for (size_t i = 0; i < TOMB_MAX; i++) {
		const struct tomb *t = &cl->tombs[i];

		if (t->len && t->len == len && t->part == part &&
		    t->by_nonce == by_nonce && t->expires >= now &&
		    !memcmp(t->key, key, len))
			return true;
	}
	return false;
}

/* Take @r out of the table (cl->lock held); a negotiation may leave a
 * tombstone.  The table's reference goes. */
static void rec_unlink(struct fw_card *card, struct rec *r, bool tomb)
{
	struct fw_clone *cl = card->clone;
	struct rec **pp;

	for (pp = &cl->recs; *pp; pp = &(*pp)->next) {
		if (*pp != r)
			continue;
		*pp = r->next;
		r->dead = true;
		cl->nrecs--;
		if (tomb && negotiating(r))
			tomb_add(cl, r, fw_clock(card) +
				 card->clone_cfg.negotiation_timeout);
		if (--r->refs == 0)
			rec_free(r);
		return;
	}
}

/* A failed negotiation step: the record goes, without a tombstone. */
static void rec_destroy(struct fw_card *card, struct rec *r)
{
	pthread_mutex_lock(&card->clone->lock);
	if (!r->dead)
		rec_unlink(card, r, false);
	pthread_mutex_unlock(&card->clone->lock);
}

static bool expired(const struct rec *r, uint64_t now)
{
	return now > r->expires;
}

/* Remove every expired record of the card, and old tombstones. */
static void sweep(struct fw_card *card)
{
	struct fw_clone *cl = card->clone;
	uint64_t now = fw_clock(card);
	struct rec *r, *next;

	pthread_mutex_lock(&cl->lock);
	for (r = cl->recs; r; r = next) {
		next = r->next;
		if (expired(r, now))
			rec_unlink(card, r, true);
	}
	for (size_t i = 0; i < TOMB_MAX; i++)
		if (cl->tombs[i].len && cl->tombs[i].expires < now)
			cl->tombs[i].len = 0;
	pthread_mutex_unlock(&cl->lock);
}

/* cl->lock held. */
static struct rec *find_locked(struct fw_clone *cl, unsigned int part,
			       bool by_nonce, const uint8_t *key, size_t len)
{
	for (struct rec *r = cl->recs; r; r = r->next) {
		if (r->part != part)
			continue;
		if (by_nonce && r->role == ROLE_I && len == FW_CLN_NONCE_LEN &&
		    !memcmp(r->nonce_i, key, len))
			return r;
		if (!by_nonce && r->sid_len && r->sid_len == len &&
		    !memcmp(r->sid, key, len))
			return r;
	}
	return NULL;
}

/*
 * The record a command names, referenced.  An expired one is reported
 * and removed; a tombstone is CKR_SESSION_NEGOTIATION_NOT_STARTED;
 * nothing at all is @none.
 */
static CK_RV rec_lookup(struct fw_card *card, unsigned int part,
			bool by_nonce, const uint8_t *key, size_t len,
			CK_RV none, struct rec **out)
{
	struct fw_clone *cl = card->clone;
	uint64_t now = fw_clock(card);
	struct rec *r;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&cl->lock);
	r = find_locked(cl, part, by_nonce, key, len);
	if (r && expired(r, now)) {
		rv = negotiating(r) ? CKR_SESSION_NEGOTIATION_EXPIRED
				    : CKR_SESSION_ID_EXPIRED;
		rec_unlink(card, r, true);
	} else if (r) {
		r->refs++;
		*out = r;
	} else if (tomb_find(cl, part, by_nonce, key, len, now)) {
		rv = CKR_SESSION_NEGOTIATION_NOT_STARTED;
	} else {
		rv = none;
	}
	pthread_mutex_unlock(&cl->lock);
	return rv;
}

/* Is this session ID taken on @part by another record or a tombstone? */
static bool sid_taken_locked(struct fw_card *card, const struct rec *self,
			     unsigned int part, const uint8_t *sid, size_t len)
{
	struct fw_clone *cl = card->clone;

	for (struct rec *r = cl->recs; r; r = r->next)
		if (r != self && r->part == part && r->sid_len == len &&
		    !memcmp(r->sid, sid, len))
			return true;
	return tomb_find(cl, part, false, sid, len, fw_clock(card));
}

/* Put a new record in the table (the table takes its own reference). */
static CK_RV rec_add(struct fw_card *card, struct rec *r)
{
	struct fw_clone *cl = card->clone;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&cl->lock);
	if (r->sid_len &&
	    sid_taken_locked(card, r, r->part, r->sid, r->sid_len))
		rv = CKR_SESSION_ID_EXISTS;
	else if (cl->nrecs >= REC_MAX)
		rv = CKR_DEVICE_MEMORY;
	if (rv == CKR_OK) {
		r->next = cl->recs;
		cl->recs = r;
		cl->nrecs++;
		r->dead = false;
		r->refs++;
	}
	pthread_mutex_unlock(&cl->lock);
	return rv;
}

/* Keep @out (taken over) as the record's answer to the input @in_hash. */
static void rec_set_out(struct rec *r, const uint8_t *in_hash, uint8_t *out,
			size_t out_len, uint64_t step, uint64_t status)
{
	if (r->out)
		OPENSSL_cleanse(r->out, r->out_len);
	free(r->out);
	r->out = out;
	r->out_len = out_len;
	r->out_step = step;
	r->out_status = status;
	r->have_in = in_hash != NULL;
	if (in_hash)
		memcpy(r->in_hash, in_hash, IN_HASH_LEN);
}

static bool cached(const struct rec *r, const uint8_t *in_hash)
{
	return r->have_in && !CRYPTO_memcmp(r->in_hash, in_hash, IN_HASH_LEN);
}

/* ---- setup ------------------------------------------------------------ */

int fw_clone_init(struct fw_card *card, char *err, size_t err_len)
{
	card->clone = calloc(1, sizeof(*card->clone));
	if (!card->clone) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	pthread_mutex_init(&card->clone->lock, NULL);
	return 0;
}

void fw_clone_fini(struct fw_card *card)
{
	struct fw_clone *cl = card->clone;

	if (!cl)
		return;
	while (cl->recs) {
		struct rec *r = cl->recs;

		cl->recs = r->next;
		rec_free(r);
	}
	pthread_mutex_destroy(&cl->lock);
	OPENSSL_cleanse(cl, sizeof(*cl));
	free(cl);
	card->clone = NULL;
}

void fw_clone_drop_partition(struct fw_card *card, unsigned int part)
{
	struct fw_clone *cl = card->clone;
	struct rec *r, *next;

	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	for (r = cl->recs; r; r = next) {
		next = r->next;
		if (r->part == part)
			rec_unlink(card, r, false);
	}
	for (size_t i = 0; i < TOMB_MAX; i++)
		if (cl->tombs[i].part == part)
			cl->tombs[i].len = 0;
	pthread_mutex_unlock(&cl->lock);
}

/* ---- helpers ---------------------------------------------------------- */

static bool policy_set(struct fw_card *card, unsigned int part,
		       uint64_t type)
{
	bool on = false;

	pthread_mutex_lock(&card->lock);
	for (int i = 0; i < FW_NPOLICIES; i++)
		if (fw_policy_types[i] == type)
			on = card->ext[part].policy[i] != 0;
	pthread_mutex_unlock(&card->lock);
	return on;
}

CK_RV fw_clone_session(struct fw_req *rq, uint64_t sess, uint64_t disabled_by,
		       struct fw_session **out)
{
	struct fw_session *s;
	CK_RV rv = fw_session_get(rq->card, rq->app, sess, &s);

	if (rv != CKR_OK)
		return rv;
	if (fw_login_of(rq->card, rq->app, s->part) != CKU_USER)
		rv = CKR_USER_NOT_LOGGED_IN;
	else if (disabled_by && policy_set(rq->card, s->part, disabled_by))
		rv = CKR_PROTOCOL_DISABLED;
	if (rv != CKR_OK) {
		fw_session_put(rq->card, s);
		return rv;
	}
	*out = s;
	return CKR_OK;
}

CK_RV fw_clone_put_out(struct fw_req *rq, uint64_t outcap, const uint8_t *p,
		       size_t len, bool *delivered)
{
	*delivered = false;
	if (len > FW_OUT_MAX)
		return CKR_DEVICE_MEMORY;
	if (outcap == PHSM_OUT_QUERY || outcap < len) {
		phsm_put_bytes(rq->w, NULL, 0);
		phsm_put_u64(rq->w, len);
		if (outcap == PHSM_OUT_QUERY)
			return CKR_OK;
		rq->fields_on_error = true;
		return CKR_BUFFER_TOO_SMALL;
	}
	phsm_put_bytes(rq->w, p, len);
	phsm_put_u64(rq->w, len);
	*delivered = true;
	return CKR_OK;
}

static bool input_hash(const uint8_t *in, size_t len, uint8_t out[IN_HASH_LEN])
{
	const uint8_t *parts[1] = { in };
	size_t lens[1] = { len };

	return fw_kdf_hash(FW_CLN_KDF_SHA256, parts, lens, 1, out);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

/* The writer's bytes, taken over; NULL when it failed. */
static uint8_t *writer_take(struct phsm_writer *w, size_t *len)
{
	uint8_t *d = w->data;

	if (w->failed) {
		phsm_writer_free(w);
		return NULL;
	}
	*len = w->len;
	memset(w, 0, sizeof(*w));
	return d;
}

/* ---- what is negotiated ----------------------------------------------- */

static const uint64_t suite_pref[] = { FW_CLN_SUITE_P384, FW_CLN_SUITE_P256 };
static const uint64_t kdf_pref[] = { FW_CLN_KDF_SHA384, FW_CLN_KDF_SHA256 };
static const uint64_t enc_pref[] = { FW_CLN_ENC_ATTRS1 };
static const uint64_t dur_std[] = { 300, 900, 1800, 3600 };

#define N(a)	(sizeof(a) / sizeof((a)[0]))
#define LIST_MAX	32

static bool in_list(const uint64_t *l, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] == v)
			return true;
	return false;
}

/* Do we support @v?  A knob mask of 0 means every known value. */
static bool supports(unsigned int mask, const uint64_t *pref, size_t n,
		     uint64_t v)
{
	return in_list(pref, n, v) && (!mask || (v < 32 && (mask >> v) & 1));
}

/*
 * Our offer: the known values the knob allows, preferred first, then
 * the unknown values it names (tests offer what a peer cannot take).
 */
static size_t offer(unsigned int mask, const uint64_t *pref, size_t n,
		    uint64_t *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (supports(mask, pref, n, pref[i]))
			out[k++] = pref[i];
	for (uint64_t v = 0; v < 32; v++)
		if (((mask >> v) & 1) && !in_list(pref, n, v))
			out[k++] = v;
	return k;
}

/* Durations we accept: the standard ones up to our lifetime, and it. */
static size_t durations(const struct fw_card *card, uint64_t *out)
{
	uint64_t life = card->clone_cfg.session_lifetime;
	size_t k = 0;

	for (size_t i = 0; i < N(dur_std); i++)
		if (dur_std[i] < life)
			out[k++] = dur_std[i];
	out[k++] = life;
	return k;
}

static bool arr_has(const uint8_t *arr, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		if (phsm_array_u64(arr, i) == v)
			return true;
	return false;
}

/* The first of the peer's offers we support; 0 if none. */
static uint64_t choose(unsigned int mask, const uint64_t *pref, size_t n,
		       const uint8_t *arr, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		uint64_t v = phsm_array_u64(arr, i);

		if (supports(mask, pref, n, v))
			return v;
	}
	return 0;
}

/* ---- domains ---------------------------------------------------------- */

struct dom_keys {
	size_t n;
	uint8_t id[FW_DOMAINS_MAX][FW_CLN_DOMAIN_ID_LEN];
	uint8_t psk[FW_DOMAINS_MAX][FW_CLN_PSK_LEN];
};

/* The partition's domains, primary first, then in the order added. */
static CK_RV domain_keys(struct fw_card *card, unsigned int part,
			 struct dom_keys *dk)
{
	struct fw_domain d[FW_DOMAINS_MAX];
	size_t n = 0;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&card->lock);
	for (int pass = 0; pass < 2; pass++)
		for (unsigned int i = 0; i < card->ext[part].ndomains; i++)
			if (card->ext[part].dom[i].primary == (pass == 0))
				d[n++] = card->ext[part].dom[i];
	pthread_mutex_unlock(&card->lock);
	dk->n = n;
	for (size_t i = 0; i < n && rv == CKR_OK; i++)
		if (!fw_domain_keys(&d[i], dk->id[i], dk->psk[i]))
			rv = CKR_DEVICE_ERROR;
	OPENSSL_cleanse(d, sizeof(d));
	return rv;
}

static bool has_domain(struct fw_card *card, unsigned int part)
{
	bool any;

	pthread_mutex_lock(&card->lock);
	any = card->ext[part].ndomains > 0;
	pthread_mutex_unlock(&card->lock);
	return any;
}

/* ---- message parsing -------------------------------------------------- */

struct m1v {
	const uint8_t *nonce;
	size_t nonce_len;
	uint64_t time;
	const uint8_t *suites, *kdfs, *encs, *durs, *sigs;
	size_t nsuites, nkdfs, nencs, ndurs, nsigs;
	const uint8_t *root_ids, *shares, *chain, *sig;
	size_t root_ids_len, shares_len, chain_len, sig_len;
	size_t sig_prefix;
	uint64_t sig_alg;
};

static bool parse_m1(const uint8_t *m, size_t len, struct m1v *v)
{
	struct phsm_reader r;

	memset(v, 0, sizeof(*v));
	if (!fw_cln_open(&r, m, len, FW_CLN_M1))
		return false;
	v->nonce = phsm_get_bytes(&r, &v->nonce_len);
	v->time = phsm_get_u64(&r);
	v->suites = phsm_get_u64_array(&r, &v->nsuites);
	v->kdfs = phsm_get_u64_array(&r, &v->nkdfs);
	v->encs = phsm_get_u64_array(&r, &v->nencs);
	v->durs = phsm_get_u64_array(&r, &v->ndurs);
	v->sigs = phsm_get_u64_array(&r, &v->nsigs);
	v->root_ids = phsm_get_bytes(&r, &v->root_ids_len);
	v->shares = phsm_get_bytes(&r, &v->shares_len);
	v->chain = phsm_get_bytes(&r, &v->chain_len);
	v->sig_alg = phsm_get_u64(&r);
	v->sig_prefix = len - r.left;
	v->sig = phsm_get_bytes(&r, &v->sig_len);
	return phsm_reader_done(&r) && v->nonce_len == FW_CLN_NONCE_LEN &&
	       v->root_ids_len % FW_CLN_ROOT_ID_LEN == 0;
}

/* I's key share for @suite in m1; false when m1's list is malformed. */
static bool find_share(const struct m1v *v, uint64_t suite,
		       const uint8_t **pt, size_t *pt_len)
{
	struct phsm_reader r;

	*pt = NULL;
	*pt_len = 0;
	phsm_reader_init(&r, v->shares, v->shares_len);
	while (r.left && r.status == PHSM_ST_OK) {
		uint64_t s = phsm_get_u64(&r);
		size_t n;
		const uint8_t *p = phsm_get_bytes(&r, &n);

		if (r.status == PHSM_ST_OK && s == suite && !*pt) {
			*pt = p;
			*pt_len = n;
		}
	}
	return r.status == PHSM_ST_OK;
}

struct m2v {
	const uint8_t *sid, *nonce_i, *nonce_r, *eph, *chain, *sig, *ext;
	size_t sid_len, nonce_i_len, nonce_r_len, eph_len, chain_len, sig_len,
	       ext_len;
	uint64_t time, suite, kdf, encoding, duration, sig_alg;
	size_t sig_prefix, ext_prefix;
};

static bool parse_m2(const uint8_t *m, size_t len, struct m2v *v)
{
	struct phsm_reader r;

	memset(v, 0, sizeof(*v));
	if (!fw_cln_open(&r, m, len, FW_CLN_M2))
		return false;
	v->sid = phsm_get_bytes(&r, &v->sid_len);
	v->nonce_i = phsm_get_bytes(&r, &v->nonce_i_len);
	v->nonce_r = phsm_get_bytes(&r, &v->nonce_r_len);
	v->time = phsm_get_u64(&r);
	v->suite = phsm_get_u64(&r);
	v->kdf = phsm_get_u64(&r);
	v->encoding = phsm_get_u64(&r);
	v->duration = phsm_get_u64(&r);
	v->eph = phsm_get_bytes(&r, &v->eph_len);
	v->chain = phsm_get_bytes(&r, &v->chain_len);
	v->sig_alg = phsm_get_u64(&r);
	v->sig_prefix = len - r.left;
	v->sig = phsm_get_bytes(&r, &v->sig_len);
	v->ext_prefix = len - r.left;
	v->ext = phsm_get_bytes(&r, &v->ext_len);
	return phsm_reader_done(&r) && v->sid_len >= 1 &&
	       v->sid_len <= FW_CLN_SID_MAX &&
	       v->nonce_i_len == FW_CLN_NONCE_LEN &&
	       v->nonce_r_len == FW_CLN_NONCE_LEN &&
	       v->ext_len >= FW_CLN_TAG_LEN;
}

struct m34v {
	const uint8_t *sid, *last;	/* last: ext_i (m3), finished_r (m4) */
	size_t sid_len, last_len;
	uint64_t time;			/* m3 */
	size_t last_prefix;
};

static bool parse_m34(const uint8_t *m, size_t len, uint64_t want,
		      struct m34v *v)
{
	struct phsm_reader r;

	memset(v, 0, sizeof(*v));
	if (!fw_cln_open(&r, m, len, want))
		return false;
	v->sid = phsm_get_bytes(&r, &v->sid_len);
	if (want == FW_CLN_M3)
		v->time = phsm_get_u64(&r);
	v->last_prefix = len - r.left;
	v->last = phsm_get_bytes(&r, &v->last_len);
	return phsm_reader_done(&r);
}

static bool same_sid(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	return al == bl && !memcmp(a, b, al);
}

/* ---- peer checks ------------------------------------------------------ */

/*
 * A peer's identity in the order of "What is verified": our own
 * identity, the roots, the mechanisms, the chain, the signature.
 * @peer_sigs (m1 only): the mechanisms the peer can verify.
 */
static CK_RV check_peer(struct fw_card *card, const uint8_t *root_ids,
			size_t root_ids_len, const uint8_t *peer_sigs,
			size_t npeer_sigs, const uint8_t *chain,
			size_t chain_len, uint64_t sig_alg, const uint8_t *sig,
			size_t sig_len, const char *label, const uint8_t *pre,
			size_t pre_len, const uint8_t *data, size_t len)
{
	CK_RV rv = fw_id_ready(card);

	if (rv != CKR_OK)
		return rv;
	if (root_ids && !fw_id_root_trusted_by(card, root_ids, root_ids_len))
		return CKR_SESSION_NEGOTIATION_NO_ROOTS;
	rv = fw_id_verify_peer(card, chain, chain_len, sig_alg, sig, sig_len,
			       label, pre, pre_len, data, len,
			       CKR_SESSION_NEGOTIATION_INVALID);
	if (rv == CKR_SESSION_NEGOTIATION_NO_ROOTS)
		return rv;
	if (peer_sigs && !arr_has(peer_sigs, npeer_sigs, fw_id_sig_alg(card)))
		return CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT;
	return rv;
}

/* ---- sealed fields (ext_r, ext_i) ------------------------------------- */

/* Each of k_m2 and k_m3 seals exactly one message: a zero nonce is safe. */
static const uint8_t zero_nonce[12];

/*
 * Append BYTES: the bytes of @in sealed under @key, with the message so
 * far as associated data.  @in is wiped and freed.
 */
static CK_RV put_sealed(struct phsm_writer *w, const uint8_t key[FW_CLN_KEY_LEN],
			struct phsm_writer *in)
{
	uint8_t *ct = NULL;
	CK_RV rv = CKR_HOST_MEMORY;

	if (!in->failed && !w->failed)
		ct = malloc(in->len + FW_CLN_TAG_LEN);
	if (ct && !fw_gcm_seal(key, zero_nonce, w->data, w->len, in->data,
			       in->len, ct))
		rv = CKR_DEVICE_ERROR;
	else if (ct)
		rv = CKR_OK;
	if (rv == CKR_OK)
		phsm_put_bytes(w, ct, in->len + FW_CLN_TAG_LEN);
	free(ct);
	if (in->data)
		OPENSSL_cleanse(in->data, in->len);
	phsm_writer_free(in);
	return rv;
}

/*
 * Open a field made by put_sealed(): @prefix bytes of @msg are its
 * associated data.  The plaintext is malloc'ed; the caller wipes it.
 */
static CK_RV open_sealed(const uint8_t key[FW_CLN_KEY_LEN], const uint8_t *msg,
			 size_t prefix, const uint8_t *ct, size_t ct_len,
			 uint8_t **pt, size_t *pt_len)
{
	if (ct_len < FW_CLN_TAG_LEN)
		return CKR_SESSION_NEGOTIATION_INVALID;
	*pt_len = ct_len - FW_CLN_TAG_LEN;
	*pt = malloc(*pt_len ? *pt_len : 1);
	if (!*pt)
		return CKR_HOST_MEMORY;
	if (!fw_gcm_open(key, zero_nonce, msg, prefix, ct, ct_len, *pt)) {
		free(*pt);
		*pt = NULL;
		return CKR_SESSION_NEGOTIATION_INVALID;
	}
	return CKR_OK;
}

/* ---- Start (I): m1 ---------------------------------------------------- */

static CK_RV make_m1(struct fw_card *card, struct rec *r)
{
	const struct fw_clone_cfg *cfg = &card->clone_cfg;
	struct phsm_writer w = { 0 }, shares = { 0 };
	uint64_t suites[LIST_MAX + 2], kdfs[LIST_MAX + 2], encs[LIST_MAX + 1];
	uint64_t durs[N(dur_std) + 1], sigs[8];
	size_t ns = offer(cfg->suites, suite_pref, N(suite_pref), suites);
	size_t nk = offer(cfg->kdfs, kdf_pref, N(kdf_pref), kdfs);
	size_t ne = offer(cfg->encodings, enc_pref, N(enc_pref), encs);
	size_t nd = durations(card, durs);
	size_t ng = fw_id_sig_algs(sigs, N(sigs));
	CK_RV rv = CKR_OK;

	if (RAND_bytes(r->nonce_i, sizeof(r->nonce_i)) != 1)
		return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < ns && rv == CKR_OK; i++) {
		uint8_t pub[FW_CLN_POINT_MAX];
		size_t pub_len = sizeof(pub);

		if (!in_list(suite_pref, N(suite_pref), suites[i]))
			continue;	/* an unknown value: no key */
		rv = fw_eph_new(suites[i], &r->eph[suites[i]], pub, &pub_len);
		phsm_put_u64(&shares, suites[i]);
		phsm_put_bytes(&shares, pub, pub_len);
	}
	r->time_i = fw_clock(card);
	fw_cln_put_head(&w, FW_CLN_VERSION, FW_CLN_M1);
	phsm_put_bytes(&w, r->nonce_i, sizeof(r->nonce_i));
	phsm_put_u64(&w, r->time_i);
	phsm_put_u64_array(&w, suites, ns);
	phsm_put_u64_array(&w, kdfs, nk);
	phsm_put_u64_array(&w, encs, ne);
	phsm_put_u64_array(&w, durs, nd);
	phsm_put_u64_array(&w, sigs, ng);
	fw_id_put_root_ids(card, &w);
	phsm_put_bytes(&w, shares.data, shares.len);
	fw_id_put_chain(card, &w);
	if (rv == CKR_OK && (w.failed || shares.failed))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = fw_id_sign_msg(card, LBL "m1", NULL, 0, &w);
	if (rv == CKR_OK) {
		r->m1 = writer_take(&w, &r->m1_len);
		if (!r->m1)
			rv = CKR_HOST_MEMORY;
	}
	phsm_writer_free(&w);
	phsm_writer_free(&shares);
	return rv;
}

/* The undelivered m1 of this PKCS#11 session, referenced. */
static struct rec *pending_start(struct fw_card *card,
				 const struct fw_session *s)
{
	struct fw_clone *cl = card->clone;
	uint64_t now = fw_clock(card);
	struct rec *found = NULL;

	pthread_mutex_lock(&cl->lock);
	for (struct rec *r = cl->recs; r && !found; r = r->next) {
		if (r->part == s->part && r->role == ROLE_I &&
		    r->state == ST_I_SENT_M1 && r->start_sess == s->handle &&
		    !r->delivered && !expired(r, now)) {
			r->refs++;
			found = r;
		}
	}
	pthread_mutex_unlock(&cl->lock);
	return found;
}

static CK_RV start(struct fw_card *card, const struct fw_session *s,
		   struct rec **out)
{
	struct rec *r;
	CK_RV rv = fw_id_ready(card);

	if (rv != CKR_OK)
		return rv;
	if (!has_domain(card, s->part))
		return CKR_SESSION_NEGOTIATION_NO_PSK;
	*out = pending_start(card, s);
	if (*out)
		return CKR_OK;
	r = rec_new(s->part, ROLE_I);
	if (!r)
		return CKR_HOST_MEMORY;
	r->state = ST_I_SENT_M1;
	r->start_sess = s->handle;
	rv = make_m1(card, r);
	if (rv == CKR_OK) {
		r->expires = r->time_i + card->clone_cfg.negotiation_timeout;
		r->out = dup_bytes(r->m1, r->m1_len);
		r->out_len = r->m1_len;
		r->out_step = 1;
		rv = r->out ? rec_add(card, r) : CKR_HOST_MEMORY;
	}
	if (rv != CKR_OK) {
		rec_put(card, r);
		return rv;
	}
	*out = r;
	return CKR_OK;
}

CK_RV fw_h_migration_start(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	size_t in_len;
	uint64_t outcap;
	struct fw_session *s;
	struct rec *r = NULL;
	bool delivered;
	CK_RV rv;

	phsm_get_bytes(rq->r, &in_len);
	outcap = phsm_get_u64(rq->r);
	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = fw_clone_session(rq, sess, CK_PHSM_POLICY_CPV4_DISABLED, &s);
	if (rv != CKR_OK)
		goto out;
	rv = in_len ? CKR_ARGUMENTS_BAD : start(rq->card, s, &r);
	fw_session_put(rq->card, s);
	if (rv != CKR_OK)
		goto out;
	pthread_mutex_lock(&r->lock);
	phsm_put_u64(rq->w, 1);
	rv = fw_clone_put_out(rq, outcap, r->out, r->out_len, &delivered);
	if (delivered) {
		pthread_mutex_lock(&rq->card->clone->lock);
		r->delivered = true;
		pthread_mutex_unlock(&rq->card->clone->lock);
	}
	pthread_mutex_unlock(&r->lock);
	rec_put(rq->card, r);
out:
	sweep(rq->card);
	return rv;
}

/* ---- Continue: the steps ------------------------------------------- */

/* What a Continue step (or Extract's step 4) is given. */
struct step_in {
	const uint8_t *in, *sid;
	size_t in_len, sid_len;
	const uint8_t *hash;		/* of in: retries get the same output */
};

typedef CK_RV (*locked_fn)(struct fw_card *card, struct rec *r,
			   const struct step_in *a, const void *v);

/*
 * Run a step on the record it names (@r, referenced by rec_lookup())
 * under the record's lock; the very input that made the current output
 * gets it again.  The reference goes to *out, or is dropped on failure.
 */
static CK_RV run_step(struct fw_card *card, struct rec *r, locked_fn fn,
		      const struct step_in *a, const void *v,
		      struct rec **out)
{
	CK_RV rv;

	pthread_mutex_lock(&r->lock);
	rv = cached(r, a->hash) ? CKR_OK : fn(card, r, a, v);
	pthread_mutex_unlock(&r->lock);
	if (rv != CKR_OK) {
		rec_put(card, r);
		return rv;
	}
	*out = r;
	return CKR_OK;
}

/*
 * Move @r to @state (rec->lock held), from when an established session
 * expires; false if the record was dropped meanwhile.
 */
static bool advance(struct fw_card *card, struct rec *r, enum rec_state state)
{
	bool ok;

	pthread_mutex_lock(&card->clone->lock);
	ok = !r->dead;
	if (ok) {
		r->state = state;
		if (state == ST_ESTABLISHED)
			r->expires = fw_clock(card) + r->duration;
	}
	pthread_mutex_unlock(&card->clone->lock);
	return ok;
}

/* A step failed for a protocol reason: the record goes with its output. */
static CK_RV step_failed(struct fw_card *card, struct rec *r, uint8_t *out,
			 CK_RV rv)
{
	free(out);
	rec_destroy(card, r);
	return rv;
}

/* ---- Continue, step 1 (R): m1 -> m2 ----------------------------------- */

/* R's answer to this very m1 again, or the m1 replayed. */
static CK_RV step1_seen(struct fw_card *card, unsigned int part,
			const uint8_t *in_hash, const uint8_t *sid,
			size_t sid_len, struct rec **out)
{
	struct fw_clone *cl = card->clone;
	uint64_t now = fw_clock(card);
	CK_RV rv = CKR_OK;

	*out = NULL;
	pthread_mutex_lock(&cl->lock);
	for (struct rec *r = cl->recs; r; r = r->next) {
		if (r->part != part || r->role != ROLE_R || expired(r, now) ||
		    memcmp(r->m1_hash, in_hash, IN_HASH_LEN))
			continue;
		if (r->state == ST_R_SENT_M2 &&
		    (!sid_len || same_sid(sid, sid_len, r->sid, r->sid_len))) {
			r->refs++;
			*out = r;
		} else {
			rv = CKR_SESSION_ID_EXISTS;
		}
		break;
	}
	if (rv == CKR_OK && !*out && sid_len &&
	    sid_taken_locked(card, NULL, part, sid, sid_len))
		rv = CKR_SESSION_ID_EXISTS;
	pthread_mutex_unlock(&cl->lock);
	return rv;
}

static CK_RV step1_check(struct fw_card *card, const struct m1v *v,
			 const uint8_t *m1, struct rec *r)
{
	const struct fw_clone_cfg *cfg = &card->clone_cfg;
	uint64_t own_durs[N(dur_std) + 1], now = fw_clock(card);
	size_t nd = durations(card, own_durs);
	CK_RV rv;

	rv = check_peer(card, v->root_ids, v->root_ids_len, v->sigs, v->nsigs,
			v->chain, v->chain_len, v->sig_alg, v->sig, v->sig_len,
			LBL "m1", NULL, 0, m1, v->sig_prefix);
	if (rv != CKR_OK)
		return rv;
	if (v->time > now + CLOCK_SLACK)
		return CKR_TIME_NOT_INITIALIZED;
	if (now > v->time && now - v->time > cfg->negotiation_timeout)
		return CKR_ATTESTATION_EXPIRED;
	r->suite = choose(cfg->suites, suite_pref, N(suite_pref), v->suites,
			  v->nsuites);
	if (!r->suite)
		return CKR_SESSION_NEGOTIATION_NO_ALGS;
	r->kdf = choose(cfg->kdfs, kdf_pref, N(kdf_pref), v->kdfs, v->nkdfs);
	if (!r->kdf)
		return CKR_SESSION_NEGOTIATION_NO_KDF;
	r->encoding = choose(cfg->encodings, enc_pref, N(enc_pref), v->encs,
			     v->nencs);
	if (!r->encoding)
		return CKR_SESSION_NEGOTIATION_NO_ENCODING;
	r->duration = 0;
	for (size_t i = 0; i < v->ndurs; i++) {
		uint64_t d = phsm_array_u64(v->durs, i);

		if (in_list(own_durs, nd, d) && d > r->duration)
			r->duration = d;
	}
	if (!r->duration)
		return CKR_SESSION_NEGOTIATION_NO_SESSION_DURATION;
	r->time_i = v->time;
	return CKR_OK;
}

/* HS from Z and TH(m1 || prefix of ext_r); k_m2 and k_m3 from HS. */
static bool hs_keys(uint64_t kdf, const uint8_t *z, size_t z_len,
		    const uint8_t *m1, size_t m1_len, const uint8_t *m2p,
		    size_t m2p_len, uint8_t *hs, uint8_t k_m2[FW_CLN_KEY_LEN],
		    uint8_t k_m3[FW_CLN_KEY_LEN])
{
	uint8_t salt[FW_CLN_HASH_MAX];
	size_t l = fw_kdf_len(kdf);

	return l && fw_th(kdf, m1, m1_len, m2p, m2p_len, NULL, 0, NULL, 0, salt) &&
	       fw_hkdf_extract(kdf, salt, l, z, z_len, hs) &&
	       fw_hkdf_label(kdf, hs, LBL "m2", NULL, 0, k_m2,
			     FW_CLN_KEY_LEN) &&
	       fw_hkdf_label(kdf, hs, LBL "m3", NULL, 0, k_m3, FW_CLN_KEY_LEN);
}

/* MS and the finished keys, from HS and the chosen domain's psk. */
static bool ms_keys(uint64_t kdf, const uint8_t *hs,
		    const uint8_t psk[FW_CLN_PSK_LEN], uint8_t *ms,
		    uint8_t *fk_i, uint8_t *fk_r)
{
	return fw_cln_master(kdf, hs, psk, LBL "derived", LBL "finished i",
			     LBL "finished r", ms, fk_i, fk_r);
}

/* The nested domain ID list of ext_r, sealed under k_m2. */
static CK_RV put_ext_r(struct phsm_writer *w, const struct dom_keys *dk,
		       const uint8_t k_m2[FW_CLN_KEY_LEN])
{
	uint8_t ids[FW_DOMAINS_MAX * FW_CLN_DOMAIN_ID_LEN];
	struct phsm_writer in = { 0 };

	for (size_t i = 0; i < dk->n; i++)
		memcpy(ids + i * FW_CLN_DOMAIN_ID_LEN, dk->id[i],
		       FW_CLN_DOMAIN_ID_LEN);
	phsm_put_bytes(&in, ids, dk->n * FW_CLN_DOMAIN_ID_LEN);
	OPENSSL_cleanse(ids, sizeof(ids));
	return put_sealed(w, k_m2, &in);
}

static CK_RV make_m2(struct fw_card *card, struct rec *r, const struct m1v *v,
		     const struct dom_keys *dk)
{
	uint8_t pub[FW_CLN_POINT_MAX], z[FW_CLN_HASH_MAX], nonce_r[32];
	uint8_t k_m2[FW_CLN_KEY_LEN];
	size_t pub_len = sizeof(pub), z_len = sizeof(z), share_len;
	const uint8_t *share;
	struct phsm_writer w = { 0 };
	struct fw_eph *eph = NULL;
	CK_RV rv;

	if (!find_share(v, r->suite, &share, &share_len) || !share ||
	    !fw_eph_point_ok(r->suite, share, share_len))
		return CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY;
	if (!dk->n)
		return CKR_SESSION_NEGOTIATION_NO_PSK;
	rv = fw_eph_new(r->suite, &eph, pub, &pub_len);
	if (rv == CKR_OK)
		rv = fw_eph_derive(eph, share, share_len, z, &z_len);
	fw_eph_free(eph);
	if (rv == CKR_OK && RAND_bytes(nonce_r, sizeof(nonce_r)) != 1)
		rv = CKR_DEVICE_ERROR;
	if (rv != CKR_OK)
		goto out;
	r->time_r = fw_clock(card);
	fw_cln_put_head(&w, r->version, FW_CLN_M2);
	phsm_put_bytes(&w, r->sid, r->sid_len);
	phsm_put_bytes(&w, v->nonce, v->nonce_len);
	phsm_put_bytes(&w, nonce_r, sizeof(nonce_r));
	phsm_put_u64(&w, r->time_r);
	phsm_put_u64(&w, r->suite);
	phsm_put_u64(&w, r->kdf);
	phsm_put_u64(&w, r->encoding);
	phsm_put_u64(&w, r->duration);
	phsm_put_bytes(&w, pub, pub_len);
	fw_id_put_chain(card, &w);
	/* sig_r covers m1 whole and our prefix. */
	rv = fw_id_sign_msg(card, LBL "m2", r->m1, r->m1_len, &w);
	if (rv == CKR_OK && !hs_keys(r->kdf, z, z_len, r->m1, r->m1_len,
				     w.data, w.len, r->hs, k_m2, r->k_m3))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK)
		rv = put_ext_r(&w, dk, k_m2);
	if (rv == CKR_OK) {
		r->m2 = writer_take(&w, &r->m2_len);
		if (!r->m2)
			rv = CKR_HOST_MEMORY;
	}
out:
	phsm_writer_free(&w);
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(k_m2, sizeof(k_m2));
	return rv;
}

static CK_RV step1(struct fw_card *card, const struct fw_session *s,
		   const struct step_in *a, struct rec **out)
{
	struct dom_keys dk = { 0 };
	struct m1v v;
	struct rec *r;
	CK_RV rv;

	if (!parse_m1(a->in, a->in_len, &v))
		return CKR_SESSION_NEGOTIATION_INVALID;
	rv = step1_seen(card, s->part, a->hash, a->sid, a->sid_len, out);
	if (rv != CKR_OK || *out)
		return rv;
	r = rec_new(s->part, ROLE_R);
	if (!r)
		return CKR_HOST_MEMORY;
	r->state = ST_R_SENT_M2;
	r->version = FW_CLN_VERSION;
	memcpy(r->nonce_i, v.nonce, FW_CLN_NONCE_LEN);
	memcpy(r->m1_hash, a->hash, IN_HASH_LEN);
	r->sid_len = a->sid_len ? a->sid_len : FW_CLN_SID_LEN;
	if (a->sid_len)
		memcpy(r->sid, a->sid, a->sid_len);
	else if (RAND_bytes(r->sid, FW_CLN_SID_LEN) != 1)
		rv = CKR_DEVICE_ERROR;
	r->m1 = dup_bytes(a->in, a->in_len);
	r->m1_len = a->in_len;
	if (rv == CKR_OK && !r->m1)
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = step1_check(card, &v, a->in, r);
	if (rv == CKR_OK)
		rv = domain_keys(card, s->part, &dk);
	if (rv == CKR_OK)
		rv = make_m2(card, r, &v, &dk);
	OPENSSL_cleanse(&dk, sizeof(dk));
	if (rv == CKR_OK) {
		uint8_t *m2 = dup_bytes(r->m2, r->m2_len);

		r->expires = fw_clock(card) +
			     card->clone_cfg.negotiation_timeout;
		rv = m2 ? CKR_OK : CKR_HOST_MEMORY;
		if (m2)
			rec_set_out(r, a->hash, m2, r->m2_len, 2,
				    CK_SESSION_NEGOTIATION_STATUS_MORE);
	}
	if (rv == CKR_OK)
		rv = rec_add(card, r);
	if (rv != CKR_OK) {
		rec_put(card, r);
		return rv;
	}
	*out = r;
	return CKR_OK;
}

/* ---- Continue, step 2 (I): m2 -> m3 ----------------------------------- */

static CK_RV step2_choices(struct fw_card *card, struct rec *r,
			   const struct m2v *v)
{
	const struct fw_clone_cfg *cfg = &card->clone_cfg;
	struct m1v o;

	if (!parse_m1(r->m1, r->m1_len, &o))
		return CKR_GENERAL_ERROR;	/* our own m1 */
	if (!arr_has(o.suites, o.nsuites, v->suite) ||
	    !supports(cfg->suites, suite_pref, N(suite_pref), v->suite))
		return CKR_SESSION_NEGOTIATION_NO_ALGS;
	if (!arr_has(o.kdfs, o.nkdfs, v->kdf) ||
	    !supports(cfg->kdfs, kdf_pref, N(kdf_pref), v->kdf))
		return CKR_SESSION_NEGOTIATION_NO_KDF;
	if (!arr_has(o.encs, o.nencs, v->encoding) ||
	    !supports(cfg->encodings, enc_pref, N(enc_pref), v->encoding))
		return CKR_SESSION_NEGOTIATION_NO_ENCODING;
	if (!arr_has(o.durs, o.ndurs, v->duration))
		return CKR_SESSION_NEGOTIATION_NO_SESSION_DURATION;
	r->suite = v->suite;
	r->kdf = v->kdf;
	r->encoding = v->encoding;
	r->duration = v->duration;
	r->time_r = v->time;
	r->version = FW_CLN_VERSION;
	return CKR_OK;
}

/* Open ext_r and pick our first domain whose ID R holds. */
static CK_RV step2_domain(struct fw_card *card, struct rec *r,
			  const struct m2v *v,
			  const uint8_t k_m2[FW_CLN_KEY_LEN],
			  uint8_t id[FW_CLN_DOMAIN_ID_LEN],
			  uint8_t psk[FW_CLN_PSK_LEN])
{
	struct dom_keys dk = { 0 };
	struct phsm_reader rd;
	const uint8_t *ids;
	size_t pt_len = 0, n = 0;
	uint8_t *pt = NULL;
	CK_RV rv = open_sealed(k_m2, r->m2, v->ext_prefix, v->ext, v->ext_len,
			       &pt, &pt_len);

	if (rv != CKR_OK)
		return rv;
	phsm_reader_init(&rd, pt, pt_len);
	ids = phsm_get_bytes(&rd, &n);
	if (!phsm_reader_done(&rd) || n % FW_CLN_DOMAIN_ID_LEN)
		rv = CKR_SESSION_NEGOTIATION_INVALID;
	else if (domain_keys(card, r->part, &dk) != CKR_OK)
		rv = CKR_DEVICE_ERROR;
	else
		rv = CKR_SESSION_NEGOTIATION_NO_PSK;
	for (size_t i = 0; rv == CKR_SESSION_NEGOTIATION_NO_PSK && i < dk.n;
	     i++) {
		for (size_t j = 0; j < n; j += FW_CLN_DOMAIN_ID_LEN) {
			if (CRYPTO_memcmp(ids + j, dk.id[i],
					  FW_CLN_DOMAIN_ID_LEN))
				continue;
			memcpy(id, dk.id[i], FW_CLN_DOMAIN_ID_LEN);
			memcpy(psk, dk.psk[i], FW_CLN_PSK_LEN);
			rv = CKR_OK;
			break;
		}
	}
	OPENSSL_cleanse(&dk, sizeof(dk));
	OPENSSL_cleanse(pt, pt_len);
	free(pt);
	return rv;
}

/*
 * A finished MAC: HMAC(fk, TH(m1 || m2 || m3 || tail)) with the KDF's
 * hash; @m3 is NULL for finished_i, whose tail is m3's own prefix.
 */
static bool finished_mac(const struct rec *r, const uint8_t *fk,
			 const uint8_t *m3, size_t m3_len, const uint8_t *tail,
			 size_t tail_len, uint8_t *mac)
{
	uint8_t hash[FW_CLN_HASH_MAX];
	size_t l = fw_kdf_len(r->kdf);

	return fw_th(r->kdf, r->m1, r->m1_len, r->m2, r->m2_len, m3, m3_len,
		     tail, tail_len, hash) &&
	       fw_hmac(r->kdf, fk, l, hash, l, mac);
}

/* The blob keys from MS and TH(m1 || m2 || m3). */
static bool blob_keys(struct rec *r, const uint8_t *ms)
{
	uint8_t thf[FW_CLN_HASH_MAX], i2r[FW_CLN_KEY_LEN], r2i[FW_CLN_KEY_LEN];
	size_t l = fw_kdf_len(r->kdf);
	bool ok;

	ok = fw_th(r->kdf, r->m1, r->m1_len, r->m2, r->m2_len, r->m3,
		   r->m3_len, NULL, 0, thf) &&
	     fw_hkdf_label(r->kdf, ms, LBL "blob i2r", thf, l, i2r,
			   sizeof(i2r)) &&
	     fw_hkdf_label(r->kdf, ms, LBL "blob r2i", thf, l, r2i,
			   sizeof(r2i));
	if (ok) {
		bool i = r->role == ROLE_I;

		memcpy(r->k_send, i ? i2r : r2i, FW_CLN_KEY_LEN);
		memcpy(r->k_recv, i ? r2i : i2r, FW_CLN_KEY_LEN);
		r->next_seq = 1;
	}
	OPENSSL_cleanse(i2r, sizeof(i2r));
	OPENSSL_cleanse(r2i, sizeof(r2i));
	return ok;
}

static CK_RV make_m3(struct fw_card *card, struct rec *r,
		     const uint8_t id[FW_CLN_DOMAIN_ID_LEN],
		     const uint8_t *fk_i, const uint8_t k_m3[FW_CLN_KEY_LEN])
{
	uint8_t fin[FW_CLN_HASH_MAX];
	struct phsm_writer w = { 0 }, in = { 0 };
	CK_RV rv = CKR_HOST_MEMORY;

	fw_cln_put_head(&w, r->version, FW_CLN_M3);
	phsm_put_bytes(&w, r->sid, r->sid_len);
	phsm_put_u64(&w, fw_clock(card));
	if (!w.failed) {
		rv = finished_mac(r, fk_i, NULL, 0, w.data, w.len, fin) ?
		     CKR_OK : CKR_DEVICE_ERROR;
	}
	if (rv == CKR_OK) {
		phsm_put_bytes(&in, id, FW_CLN_DOMAIN_ID_LEN);
		phsm_put_bytes(&in, fin, fw_kdf_len(r->kdf));
		rv = put_sealed(&w, k_m3, &in);
	}
	if (rv == CKR_OK) {
		r->m3 = writer_take(&w, &r->m3_len);
		rv = r->m3 ? CKR_OK : CKR_HOST_MEMORY;
	}
	phsm_writer_free(&in);
	phsm_writer_free(&w);
	OPENSSL_cleanse(fin, sizeof(fin));
	return rv;
}

/* Everything of step 2 after R's identity and choices were accepted. */
static CK_RV step2_keys(struct fw_card *card, struct rec *r,
			const struct m2v *v)
{
	uint8_t z[FW_CLN_HASH_MAX], k_m2[FW_CLN_KEY_LEN], k_m3[FW_CLN_KEY_LEN];
	uint8_t hs[FW_CLN_HASH_MAX], ms[FW_CLN_HASH_MAX];
	uint8_t fk_i[FW_CLN_HASH_MAX], id[FW_CLN_DOMAIN_ID_LEN];
	uint8_t psk[FW_CLN_PSK_LEN];
	size_t z_len = sizeof(z);
	CK_RV rv;

	if (r->suite >= 3 || !r->eph[r->suite])
		return CKR_SESSION_NEGOTIATION_NO_ALGS;
	rv = fw_eph_derive(r->eph[r->suite], v->eph, v->eph_len, z, &z_len);
	if (rv != CKR_OK)
		return rv;
	if (!hs_keys(r->kdf, z, z_len, r->m1, r->m1_len, r->m2, v->ext_prefix,
		     hs, k_m2, k_m3))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK)
		rv = step2_domain(card, r, v, k_m2, id, psk);
	if (rv == CKR_OK && !ms_keys(r->kdf, hs, psk, ms, fk_i, r->fk_r))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK)
		rv = make_m3(card, r, id, fk_i, k_m3);
	if (rv == CKR_OK && !blob_keys(r, ms))
		rv = CKR_DEVICE_ERROR;
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(k_m2, sizeof(k_m2));
	OPENSSL_cleanse(k_m3, sizeof(k_m3));
	OPENSSL_cleanse(hs, sizeof(hs));
	OPENSSL_cleanse(ms, sizeof(ms));
	OPENSSL_cleanse(fk_i, sizeof(fk_i));
	OPENSSL_cleanse(psk, sizeof(psk));
	return rv;
}

/* Steps 2 to 4 on a record that exists; rec->lock held. */
static CK_RV step2_run(struct fw_card *card, struct rec *r, const uint8_t *in,
		       size_t in_len, const struct m2v *v)
{
	uint64_t now = fw_clock(card);
	CK_RV rv = CKR_OK;

	/* Claim the session ID on our partition now: it names us from here. */
	pthread_mutex_lock(&card->clone->lock);
	if (sid_taken_locked(card, r, r->part, v->sid, v->sid_len)) {
		rv = CKR_SESSION_ID_EXISTS;
	} else {
		memcpy(r->sid, v->sid, v->sid_len);
		r->sid_len = v->sid_len;
	}
	pthread_mutex_unlock(&card->clone->lock);
	if (rv != CKR_OK)
		return rv;
	free(r->m2);
	r->m2 = dup_bytes(in, in_len);
	r->m2_len = in_len;
	if (!r->m2)
		return CKR_HOST_MEMORY;
	/* sig_r covers m1 whole and m2's prefix. */
	rv = check_peer(card, NULL, 0, NULL, 0, v->chain, v->chain_len,
			v->sig_alg, v->sig, v->sig_len, LBL "m2", r->m1,
			r->m1_len, in, v->sig_prefix);
	if (rv != CKR_OK)
		return rv;
	if (v->time + CLOCK_SLACK < r->time_i || v->time > now + CLOCK_SLACK)
		return CKR_TIME_NOT_INITIALIZED;
	rv = step2_choices(card, r, v);
	if (rv != CKR_OK)
		return rv;
	return step2_keys(card, r, v);
}

static void drop_ephs(struct rec *r)
{
	for (size_t i = 0; i < 3; i++) {
		fw_eph_free(r->eph[i]);
		r->eph[i] = NULL;
	}
}

static CK_RV step2_locked(struct fw_card *card, struct rec *r,
			  const struct step_in *a, const void *arg)
{
	const struct m2v *v = arg;
	uint8_t *m3 = NULL;
	CK_RV rv;

	if (r->state != ST_I_SENT_M1 ||
	    (a->sid_len && !same_sid(a->sid, a->sid_len, v->sid, v->sid_len)))
		return CKR_SESSION_NEGOTIATION_INVALID;
	rv = step2_run(card, r, a->in, a->in_len, v);
	drop_ephs(r);
	if (rv == CKR_OK && !(m3 = dup_bytes(r->m3, r->m3_len)))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK && !advance(card, r, ST_I_SENT_M3))
		rv = CKR_SESSION_NEGOTIATION_INVALID;	/* dropped meanwhile */
	if (rv != CKR_OK)
		return step_failed(card, r, m3, rv);
	rec_set_out(r, a->hash, m3, r->m3_len, 3,
		    CK_SESSION_NEGOTIATION_STATUS_MORE);
	return CKR_OK;
}

static CK_RV step2(struct fw_card *card, const struct fw_session *s,
		   const struct step_in *a, struct rec **out)
{
	struct m2v v;
	struct rec *r;
	CK_RV rv;

	if (!parse_m2(a->in, a->in_len, &v))
		return CKR_SESSION_NEGOTIATION_INVALID;
	rv = rec_lookup(card, s->part, true, v.nonce_i, v.nonce_i_len,
			CKR_SESSION_NEGOTIATION_INVALID, &r);
	if (rv != CKR_OK)
		return rv;
	return run_step(card, r, step2_locked, a, &v, out);
}

/* ---- Continue, step 3 (R): m3 -> m4 ----------------------------------- */

/* Open ext_i, find its domain, check finished_i; derive what follows. */
static CK_RV step3_keys(struct fw_card *card, struct rec *r,
			const struct m34v *v, uint8_t *ms, uint8_t *fk_r)
{
	uint8_t fin[FW_CLN_HASH_MAX], fk_i[FW_CLN_HASH_MAX], *pt = NULL;
	size_t l = fw_kdf_len(r->kdf), pt_len = 0, id_len = 0, fin_len = 0;
	const uint8_t *id, *fin_i;
	struct dom_keys dk = { 0 };
	struct phsm_reader rd;
	CK_RV rv = open_sealed(r->k_m3, r->m3, v->last_prefix, v->last,
			       v->last_len, &pt, &pt_len);

	if (rv != CKR_OK)
		return rv;
	phsm_reader_init(&rd, pt, pt_len);
	id = phsm_get_bytes(&rd, &id_len);
	fin_i = phsm_get_bytes(&rd, &fin_len);
	if (!phsm_reader_done(&rd) || id_len != FW_CLN_DOMAIN_ID_LEN)
		rv = CKR_SESSION_NEGOTIATION_INVALID;
	else if (domain_keys(card, r->part, &dk) != CKR_OK)
		rv = CKR_DEVICE_ERROR;
	else
		rv = CKR_SESSION_NEGOTIATION_NO_PSK;
	for (size_t i = 0; rv == CKR_SESSION_NEGOTIATION_NO_PSK && i < dk.n;
	     i++) {
		if (CRYPTO_memcmp(id, dk.id[i], FW_CLN_DOMAIN_ID_LEN))
			continue;
		if (!ms_keys(r->kdf, r->hs, dk.psk[i], ms, fk_i, fk_r) ||
		    !finished_mac(r, fk_i, NULL, 0, r->m3, v->last_prefix, fin))
			rv = CKR_DEVICE_ERROR;
		else if (fin_len == l && !CRYPTO_memcmp(fin, fin_i, l))
			rv = CKR_OK;
		break;	/* a matching ID with a wrong MAC: no PSK */
	}
	OPENSSL_cleanse(&dk, sizeof(dk));
	OPENSSL_cleanse(fk_i, sizeof(fk_i));
	OPENSSL_cleanse(pt, pt_len);
	free(pt);
	return rv;
}

static CK_RV make_m4(struct rec *r, const uint8_t *fk_r, uint8_t **m4,
		     size_t *m4_len)
{
	uint8_t fin[FW_CLN_HASH_MAX];
	struct phsm_writer w = { 0 };
	CK_RV rv = CKR_HOST_MEMORY;

	fw_cln_put_head(&w, r->version, FW_CLN_M4);
	phsm_put_bytes(&w, r->sid, r->sid_len);
	if (!w.failed && !finished_mac(r, fk_r, r->m3, r->m3_len, w.data, w.len,
				       fin))
		rv = CKR_DEVICE_ERROR;
	else if (!w.failed) {
		phsm_put_bytes(&w, fin, fw_kdf_len(r->kdf));
		*m4 = writer_take(&w, m4_len);
		rv = *m4 ? CKR_OK : CKR_HOST_MEMORY;
	}
	phsm_writer_free(&w);
	return rv;
}

static CK_RV step3_run(struct fw_card *card, struct rec *r, const uint8_t *in,
		       size_t in_len, const struct m34v *v, uint8_t **m4,
		       size_t *m4_len)
{
	uint8_t ms[FW_CLN_HASH_MAX], fk_r[FW_CLN_HASH_MAX];
	uint64_t now = fw_clock(card);
	CK_RV rv;

	if (v->time + CLOCK_SLACK < r->time_r || v->time > now + CLOCK_SLACK)
		return CKR_TIME_NOT_INITIALIZED;
	free(r->m3);
	r->m3 = dup_bytes(in, in_len);
	r->m3_len = in_len;
	if (!r->m3)
		return CKR_HOST_MEMORY;
	rv = step3_keys(card, r, v, ms, fk_r);
	if (rv == CKR_OK)
		rv = make_m4(r, fk_r, m4, m4_len);
	if (rv == CKR_OK && !blob_keys(r, ms))
		rv = CKR_DEVICE_ERROR;
	OPENSSL_cleanse(ms, sizeof(ms));
	OPENSSL_cleanse(fk_r, sizeof(fk_r));
	return rv;
}

/* The transcript and the step keys are no longer needed. */
static void forget_negotiation(struct rec *r)
{
	free(r->m1);
	free(r->m2);
	free(r->m3);
	r->m1 = r->m2 = r->m3 = NULL;
	r->m1_len = r->m2_len = r->m3_len = 0;
	OPENSSL_cleanse(r->hs, sizeof(r->hs));
	OPENSSL_cleanse(r->k_m3, sizeof(r->k_m3));
	OPENSSL_cleanse(r->fk_r, sizeof(r->fk_r));
	drop_ephs(r);
}

static CK_RV step3_locked(struct fw_card *card, struct rec *r,
			  const struct step_in *a, const void *unused)
{
	uint8_t *m4 = NULL;
	size_t m4_len = 0;
	struct m34v v;
	CK_RV rv;

	(void)unused;
	if (r->role != ROLE_R || r->state != ST_R_SENT_M2 ||
	    !parse_m34(a->in, a->in_len, FW_CLN_M3, &v) ||
	    !same_sid(v.sid, v.sid_len, r->sid, r->sid_len))
		return CKR_SESSION_NEGOTIATION_INVALID;
	rv = step3_run(card, r, a->in, a->in_len, &v, &m4, &m4_len);
	if (rv == CKR_OK && !advance(card, r, ST_ESTABLISHED))
		rv = CKR_SESSION_NEGOTIATION_INVALID;
	if (rv != CKR_OK)
		return step_failed(card, r, m4, rv);
	forget_negotiation(r);
	rec_set_out(r, a->hash, m4, m4_len, 4,
		    CK_SESSION_NEGOTIATION_STATUS_DONE);
	return CKR_OK;
}

/* Steps 3 and 4 name their record by the session ID. */
static CK_RV by_sid(struct fw_card *card, const struct fw_session *s,
		    const struct step_in *a, locked_fn fn, struct rec **out)
{
	struct rec *r;
	CK_RV rv;

	if (!a->sid_len)
		return CKR_ARGUMENTS_BAD;
	rv = rec_lookup(card, s->part, false, a->sid, a->sid_len,
			CKR_SESSION_NEGOTIATION_INVALID, &r);
	if (rv != CKR_OK)
		return rv;
	return run_step(card, r, fn, a, NULL, out);
}

static CK_RV step3(struct fw_card *card, const struct fw_session *s,
		   const struct step_in *a, struct rec **out)
{
	return by_sid(card, s, a, step3_locked, out);
}

/* ---- step 4 (I): m4 --------------------------------------------------- */

/* m4 on I's record (rec->lock held): Continue step 4 or Extract's input. */
static CK_RV step4_locked(struct fw_card *card, struct rec *r,
			  const struct step_in *a, const void *unused)
{
	uint8_t fin[FW_CLN_HASH_MAX];
	size_t l = fw_kdf_len(r->kdf);
	struct m34v v;

	(void)unused;
	if (r->role != ROLE_I)
		return CKR_SESSION_NEGOTIATION_INVALID;
	if (r->state == ST_ESTABLISHED)
		return cached(r, a->hash) ? CKR_OK
					  : CKR_SESSION_NEGOTIATION_INVALID;
	if (r->state != ST_I_SENT_M3 ||
	    !parse_m34(a->in, a->in_len, FW_CLN_M4, &v) ||
	    !same_sid(v.sid, v.sid_len, r->sid, r->sid_len))
		return CKR_SESSION_NEGOTIATION_INVALID;
	if (!finished_mac(r, r->fk_r, r->m3, r->m3_len, a->in, v.last_prefix,
			  fin) || v.last_len != l ||
	    CRYPTO_memcmp(fin, v.last, l) || !advance(card, r, ST_ESTABLISHED))
		return step_failed(card, r, NULL,
				   CKR_SESSION_NEGOTIATION_INVALID);
	forget_negotiation(r);
	rec_set_out(r, a->hash, NULL, 0, 0, CK_SESSION_NEGOTIATION_STATUS_DONE);
	return CKR_OK;
}

static CK_RV step4(struct fw_card *card, const struct fw_session *s,
		   const struct step_in *a, struct rec **out)
{
	return by_sid(card, s, a, step4_locked, out);
}

/* ---- Continue --------------------------------------------------------- */

/* The record's current answer, with the session ID. */
static CK_RV put_continue(struct fw_req *rq, struct rec *r, uint64_t outcap,
			  uint64_t sidcap)
{
	bool query = outcap == PHSM_OUT_QUERY;
	bool fits;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&r->lock);
	fits = !query && outcap >= r->out_len && sidcap >= r->sid_len;
	if (!query && !fits) {
		rv = CKR_BUFFER_TOO_SMALL;
		rq->fields_on_error = true;
	}
	phsm_put_u64(rq->w, r->out_step);
	phsm_put_bytes(rq->w, fits ? r->out : NULL, fits ? r->out_len : 0);
	phsm_put_u64(rq->w, r->out_len);
	phsm_put_u64(rq->w, r->out_status);
	phsm_put_bytes(rq->w, fits ? r->sid : NULL, fits ? r->sid_len : 0);
	phsm_put_u64(rq->w, r->sid_len);
	pthread_mutex_unlock(&r->lock);
	return rv;
}

typedef CK_RV (*step_fn)(struct fw_card *card, const struct fw_session *s,
			 const struct step_in *a, struct rec **out);

/* The step named by the caller must be the message's type. */
static step_fn step_of(uint64_t in_step, const uint8_t *in, size_t in_len)
{
	static const step_fn steps[] = { step1, step2, step3, step4 };
	struct phsm_reader r;
	uint64_t version, type;

	phsm_reader_init(&r, in, in_len);
	if (!fw_cln_get_head(&r, &version, &type) || type != in_step ||
	    in_step < 1 || in_step > 4)
		return NULL;
	return steps[in_step - 1];
}

CK_RV fw_h_migration_continue(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t in_step = phsm_get_u64(rq->r);
	size_t in_len, sid_len;
	const uint8_t *in = phsm_get_bytes(rq->r, &in_len);
	const uint8_t *sid = phsm_get_bytes(rq->r, &sid_len);
	uint64_t outcap = phsm_get_u64(rq->r);
	uint64_t sidcap = phsm_get_u64(rq->r);
	uint8_t in_hash[IN_HASH_LEN];
	struct step_in a = { .in = in, .in_len = in_len, .sid = sid,
			     .sid_len = sid_len, .hash = in_hash };
	struct fw_session *s;
	struct rec *r = NULL;
	step_fn fn;
	CK_RV rv;

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = fw_clone_session(rq, sess, CK_PHSM_POLICY_CPV4_DISABLED, &s);
	if (rv != CKR_OK)
		goto out;
	if (!in_len || sid_len > FW_CLN_SID_MAX ||
	    (outcap == PHSM_OUT_QUERY) != (sidcap == PHSM_OUT_QUERY))
		rv = CKR_ARGUMENTS_BAD;
	else if (!(fn = step_of(in_step, in, in_len)))
		rv = CKR_SESSION_NEGOTIATION_INVALID;
	else if (!input_hash(in, in_len, in_hash))
		rv = CKR_DEVICE_ERROR;
	else
		rv = fn(rq->card, s, &a, &r);
	fw_session_put(rq->card, s);
	if (rv == CKR_OK) {
		rv = put_continue(rq, r, outcap, sidcap);
		rec_put(rq->card, r);
	}
out:
	sweep(rq->card);
	return rv;
}

/* ---- Close ------------------------------------------------------------ */

CK_RV fw_h_migration_close(struct fw_req *rq)
{
	struct fw_clone *cl = rq->card->clone;
	uint64_t sess = phsm_get_u64(rq->r);
	size_t sid_len;
	const uint8_t *sid = phsm_get_bytes(rq->r, &sid_len);
	struct fw_session *s;
	struct rec *r;
	CK_RV rv;

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	/* Closing works whatever the policy says: state can always go. */
	rv = fw_clone_session(rq, sess, 0, &s);
	if (rv != CKR_OK)
		goto out;
	if (!sid_len || sid_len > FW_CLN_SID_MAX) {
		rv = CKR_ARGUMENTS_BAD;
	} else {
		pthread_mutex_lock(&cl->lock);
		r = find_locked(cl, s->part, false, sid, sid_len);
		if (r)
			rec_unlink(rq->card, r, false);
		else
			rv = CKR_SESSION_ID_INVALID;
		pthread_mutex_unlock(&cl->lock);
	}
	fw_session_put(rq->card, s);
out:
	sweep(rq->card);
	return rv;
}

/* ---- Extract and Insert: common --------------------------------------- */

/* A clone session as one call uses it, copied out of its record. */
struct use {
	struct rec *r;
	struct fw_blob_ctx ctx;		/* key: ours to send */
	uint8_t k_recv[FW_CLN_KEY_LEN];
	int role;
};

static void use_end(struct fw_card *card, struct use *u)
{
	OPENSSL_cleanse(&u->ctx.key, sizeof(u->ctx.key));
	OPENSSL_cleanse(u->k_recv, sizeof(u->k_recv));
	if (u->r)
		rec_put(card, u->r);
	u->r = NULL;
}

/*
 * The established session @sid of the partition, after step 4 when
 * @in is given (Extract on I).
 */
static CK_RV use_session(struct fw_card *card, unsigned int part,
			 const uint8_t *sid, size_t sid_len, const uint8_t *in,
			 size_t in_len, struct use *u)
{
	uint8_t in_hash[IN_HASH_LEN];
	struct step_in a = { .in = in, .in_len = in_len, .hash = in_hash };
	struct rec *r;
	CK_RV rv;

	memset(u, 0, sizeof(*u));
	rv = rec_lookup(card, part, false, sid, sid_len, CKR_SESSION_ID_INVALID,
			&r);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&r->lock);
	if (in_len && !input_hash(in, in_len, in_hash))
		rv = CKR_DEVICE_ERROR;
	else if (in_len)
		rv = step4_locked(card, r, &a, NULL);
	else if (r->state != ST_ESTABLISHED)
		rv = CKR_SESSION_NEGOTIATION_INVALID;
	if (rv == CKR_OK) {
		u->r = r;
		u->role = r->role;
		u->ctx.version = r->version;
		u->ctx.type = FW_CLN_BLOB4;
		u->ctx.sid = r->sid;	/* fixed once established */
		u->ctx.sid_len = r->sid_len;
		u->ctx.direction = (uint64_t)r->role;
		u->ctx.encoding = r->encoding;
		memcpy(u->ctx.key, r->k_send, FW_CLN_KEY_LEN);
		memcpy(u->k_recv, r->k_recv, FW_CLN_KEY_LEN);
	}
	pthread_mutex_unlock(&r->lock);
	if (rv != CKR_OK)
		rec_put(card, r);
	return rv;
}

static bool counts_ok(size_t n, size_t a, size_t b, size_t c)
{
	return n >= 1 && n <= PHSM_CLONE_BATCH_MAX && a == n && b == n &&
	       c == n;
}

static void fill_not_attempted(uint64_t *results, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		results[i] = CKR_CLONE_NOT_ATTEMPTED;
}

/* The parameter's session ID and flags, as both mechanisms have them. */
static bool sid_flags_ok(size_t sid_len, uint64_t flags)
{
	return sid_len && sid_len <= FW_CLN_SID_MAX &&
	       !(flags & ~(uint64_t)CKF_CONTINUE_ON_ERR);
}

typedef CK_RV (*blob_fn)(struct fw_req *rq, const struct fw_session *s,
			 struct phsm_reader *param);

/* CA_Extract and CA_Insert: the common checks, the mechanism, then @fn. */
static CK_RV blob_call(struct fw_req *rq, CK_MECHANISM_TYPE want, blob_fn fn)
{
	uint64_t sess = phsm_get_u64(rq->r), mech;
	struct phsm_reader param;
	struct fw_session *s;
	CK_RV rv;

	phsm_get_mech(rq->r, &mech, &param);
	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = fw_clone_session(rq, sess, CK_PHSM_POLICY_CPV4_DISABLED, &s);
	if (rv == CKR_OK) {
		rv = mech == want ? fn(rq, s, &param) : CKR_MECHANISM_INVALID;
		fw_session_put(rq->card, s);
	}
	sweep(rq->card);
	return rv;
}

/* ---- Extract ---------------------------------------------------------- */

struct xparam {
	const uint8_t *sid, *in, *types, *handles, *caps;
	size_t sid_len, in_len, n;
	uint64_t flags;
	bool query;
};

static CK_RV get_xparam(struct phsm_reader *p, struct xparam *x)
{
	size_t nt, nh, nc;
	uint64_t sum = 0;
	size_t queries = 0;

	memset(x, 0, sizeof(*x));
	x->sid = phsm_get_bytes(p, &x->sid_len);
	x->in = phsm_get_bytes(p, &x->in_len);
	x->flags = phsm_get_u64(p);
	x->types = phsm_get_u64_array(p, &nt);
	x->handles = phsm_get_u64_array(p, &nh);
	x->caps = phsm_get_u64_array(p, &nc);
	x->n = nt;
	if (!phsm_reader_done(p) || !sid_flags_ok(x->sid_len, x->flags) ||
	    !counts_ok(nt, nt, nh, nc))
		return CKR_MECHANISM_PARAM_INVALID;
	for (size_t i = 0; i < x->n; i++) {
		uint64_t cap = phsm_array_u64(x->caps, i);

		if (cap == PHSM_OUT_QUERY) {
			queries++;
			continue;
		}
		if (cap > PHSM_CLONE_BATCH_BYTES)
			return CKR_MECHANISM_PARAM_INVALID;
		sum += cap;
	}
	x->query = queries == x->n;
	if ((queries && !x->query) || sum > PHSM_CLONE_BATCH_BYTES)
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

static CK_RV take_seq(struct rec *r, uint64_t *seq)
{
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&r->lock);
	if (r->next_seq == UINT64_MAX)
		rv = CKR_DEVICE_MEMORY;
	else
		*seq = r->next_seq++;
	pthread_mutex_unlock(&r->lock);
	return rv;
}

struct xout {
	uint8_t *buf;
	size_t len, cap;
};

/* One object: its result; the blob appended to @o. */
static CK_RV extract_one(struct fw_card *card, const struct fw_session *s,
			 struct use *u, const struct xparam *x, size_t i,
			 struct xout *o, uint64_t *len)
{
	uint64_t cap = phsm_array_u64(x->caps, i), seq = 0;
	uint8_t *pt = NULL;
	size_t pt_len = 0, size;
	CK_RV rv;

	rv = fw_blob_plain(card, s, phsm_array_u64(x->types, i),
			   phsm_array_u64(x->handles, i), &pt, &pt_len);
	if (rv != CKR_OK)
		return rv;
	size = fw_blob_size(&u->ctx, pt_len);
	*len = size;
	if (x->query)
		goto out;
	if (cap < size) {
		rv = CKR_BUFFER_TOO_SMALL;
		goto out;
	}
	if (o->cap - o->len < size) {
		size_t ncap = o->len + size + (o->len + size) / 2;
		uint8_t *nb = realloc(o->buf, ncap);

		if (!nb) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		o->buf = nb;
		o->cap = ncap;
	}
	rv = take_seq(u->r, &seq);
	if (rv == CKR_OK)
		rv = fw_blob_seal(&u->ctx, seq, phsm_array_u64(x->types, i), pt,
				  pt_len, o->buf + o->len);
	if (rv == CKR_OK)
		o->len += size;
out:
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		*len = 0;
	OPENSSL_cleanse(pt, pt_len);
	free(pt);
	return rv;
}

static void extract_all(struct fw_req *rq, const struct fw_session *s,
			struct use *u, const struct xparam *x)
{
	uint64_t *results = calloc(x->n, sizeof(*results));
	uint64_t *lens = calloc(x->n, sizeof(*lens));
	struct xout o = { 0 };

	if (!results || !lens) {
		free(results);
		free(lens);
		rq->w->failed = true;	/* answered PHSM_ST_NO_MEMORY */
		return;
	}
	fill_not_attempted(results, 0, x->n);
	for (size_t i = 0; i < x->n; i++) {
		results[i] = extract_one(rq->card, s, u, x, i, &o, &lens[i]);
		if (results[i] != CKR_OK && !(x->flags & CKF_CONTINUE_ON_ERR))
			break;
	}
	phsm_put_u64_array(rq->w, results, x->n);
	phsm_put_u64_array(rq->w, lens, x->n);
	phsm_put_bytes(rq->w, o.buf, o.len);
	free(results);
	free(lens);
	if (o.buf)
		OPENSSL_cleanse(o.buf, o.len);
	free(o.buf);
}

static CK_RV extract(struct fw_req *rq, const struct fw_session *s,
		     struct phsm_reader *param)
{
	struct xparam x;
	struct use u;
	CK_RV rv = get_xparam(param, &x);

	if (rv == CKR_OK)
		rv = use_session(rq->card, s->part, x.sid, x.sid_len, x.in,
				 x.in_len, &u);
	if (rv == CKR_OK) {
		extract_all(rq, s, &u, &x);
		use_end(rq->card, &u);
	}
	return rv;
}

CK_RV fw_h_extract(struct fw_req *rq)
{
	return blob_call(rq, CKM_CPV4_EXTRACT, extract);
}

/* ---- Insert ----------------------------------------------------------- */

struct iparam {
	const uint8_t *sid, *storage, *types, *lens, *blobs;
	size_t sid_len, n, blobs_len;
	uint64_t flags;
};

static CK_RV get_iparam(struct phsm_reader *p, struct iparam *x)
{
	size_t ns, nt, nl;
	uint64_t sum = 0;

	memset(x, 0, sizeof(*x));
	x->sid = phsm_get_bytes(p, &x->sid_len);
	x->flags = phsm_get_u64(p);
	x->storage = phsm_get_u64_array(p, &ns);
	x->types = phsm_get_u64_array(p, &nt);
	x->lens = phsm_get_u64_array(p, &nl);
	x->blobs = phsm_get_bytes(p, &x->blobs_len);
	x->n = ns;
	if (!phsm_reader_done(p) || !sid_flags_ok(x->sid_len, x->flags) ||
	    !counts_ok(ns, ns, nt, nl) || x->blobs_len > PHSM_CLONE_BATCH_BYTES)
		return CKR_MECHANISM_PARAM_INVALID;
	for (size_t i = 0; i < x->n; i++) {
		uint64_t l = phsm_array_u64(x->lens, i);

		if (l > PHSM_CLONE_BATCH_BYTES)
			return CKR_MECHANISM_PARAM_INVALID;
		sum += l;
	}
	return sum == x->blobs_len ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
}

static bool seq_bit(const uint8_t *set, size_t bytes, uint64_t seq)
{
	return seq / 8 < bytes && (set[seq / 8] >> (seq % 8)) & 1;
}

/* Is @seq inserted or being inserted?  rec->lock held. */
static bool seq_seen(const struct seqset *q, uint64_t seq)
{
	return seq_bit(q->used, q->bytes, seq) ||
	       seq_bit(q->pending, q->bytes, seq);
}

/* Claim @seq for an insertion: DATA_INVALID when it is taken. */
static CK_RV seq_claim(struct rec *r, uint64_t seq)
{
	struct seqset *q = &r->rx;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&r->lock);
	if (seq_seen(q, seq)) {
		rv = CKR_DATA_INVALID;
	} else if (seq / 8 >= q->bytes) {
		size_t nb = (seq / 8 / SEQ_STEP + 1) * SEQ_STEP;
		uint8_t *u = seq / 8 / SEQ_STEP < SIZE_MAX / SEQ_STEP - 1 ?
			     realloc(q->used, nb) : NULL;
		uint8_t *p = u ? realloc(q->pending, nb) : NULL;

		if (u)
			q->used = u;
		if (p)
			q->pending = p;
		if (!u || !p) {
			rv = CKR_DEVICE_MEMORY;
		} else {
			memset(u + q->bytes, 0, nb - q->bytes);
			memset(p + q->bytes, 0, nb - q->bytes);
			q->bytes = nb;
		}
	}
	if (rv == CKR_OK)
		q->pending[seq / 8] |= (uint8_t)(1u << (seq % 8));
	pthread_mutex_unlock(&r->lock);
	return rv;
}

/* The insertion of @seq is over: used when @done, else free again. */
static void seq_release(struct rec *r, uint64_t seq, bool done)
{
	struct seqset *q = &r->rx;
	uint8_t bit = (uint8_t)(1u << (seq % 8));

	pthread_mutex_lock(&r->lock);
	q->pending[seq / 8] &= (uint8_t)~bit;
	if (done)
		q->used[seq / 8] |= bit;
	pthread_mutex_unlock(&r->lock);
}

/* What one request has built, waiting for the commit. */
struct ibatch {
	size_t n;		/* objects of the request */
	uint64_t *results, *handles;
	uint64_t *seqs;		/* seqs[i]: 0 unless i was built */
	struct fw_obj **objs;
	size_t nobjs;
	uint64_t *param_ids;
	uint8_t (*params)[FW_HASH_LEN];
	size_t nparams;
};

static void ibatch_free(struct ibatch *b)
{
	free(b->results);
	free(b->handles);
	free(b->seqs);
	free(b->objs);
	free(b->param_ids);
	if (b->params)
		OPENSSL_cleanse(b->params, b->n * sizeof(*b->params));
	free(b->params);
}

static bool ibatch_alloc(struct ibatch *b, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->n = n;
	b->results = calloc(n, sizeof(*b->results));
	b->handles = calloc(n, sizeof(*b->handles));
	b->seqs = calloc(n, sizeof(*b->seqs));
	b->objs = calloc(n, sizeof(*b->objs));
	b->param_ids = calloc(n, sizeof(*b->param_ids));
	b->params = calloc(n, sizeof(*b->params));
	return b->results && b->handles && b->seqs && b->objs &&
	       b->param_ids && b->params;
}

/* Checks 1 to 6 of "Inserting": the blob is ours to take. */
static CK_RV blob_check(struct use *u, const uint8_t *blob, size_t len,
			uint64_t type, struct fw_blob_hdr *h)
{
	CK_RV rv = fw_blob_parse(blob, len, h);
	bool seen;

	if (rv != CKR_OK)
		return rv;
	if (h->version != u->ctx.version || h->type != FW_CLN_BLOB4 ||
	    h->encoding != u->ctx.encoding)
		return CKR_DATA_INVALID;
	if ((h->object_type != CK_CRYPTOKI_ELEMENT &&
	     h->object_type != CK_PARAM_ELEMENT) || h->object_type != type)
		return CKR_OBJECT_TYPE_INVALID;
	if (!same_sid(h->sid, h->sid_len, u->ctx.sid, u->ctx.sid_len))
		return CKR_DATA_INVALID;	/* foreign */
	if (h->direction == (uint64_t)u->role)
		return CKR_DATA_INVALID;	/* reflected */
	pthread_mutex_lock(&u->r->lock);
	seen = seq_seen(&u->r->rx, h->seq);
	pthread_mutex_unlock(&u->r->lock);
	return seen ? CKR_DATA_INVALID : CKR_OK;	/* replayed */
}

static CK_RV insert_one(struct fw_card *card, const struct fw_session *s,
			struct use *u, const struct iparam *x, size_t i,
			size_t off, struct ibatch *b)
{
	uint64_t storage = phsm_array_u64(x->storage, i);
	uint64_t type = phsm_array_u64(x->types, i);
	const uint8_t *blob = x->blobs + off;
	size_t len = phsm_array_u64(x->lens, i), pt_len = 0;
	struct fw_blob_hdr h;
	struct fw_obj *obj = NULL;
	uint8_t *pt = NULL;
	CK_RV rv;

	if (storage > PHSM_CLONE_STORAGE_SESSION ||
	    (type == CK_PARAM_ELEMENT && storage != PHSM_CLONE_STORAGE_AS_IS))
		return CKR_ARGUMENTS_BAD;
	rv = blob_check(u, blob, len, type, &h);
	if (rv == CKR_OK)
		rv = fw_blob_open(u->k_recv, blob, &h, &pt, &pt_len);
	if (rv != CKR_OK)
		return rv;
	rv = seq_claim(u->r, h.seq);
	if (rv == CKR_OK) {
		b->seqs[i] = h.seq;
		rv = fw_blob_build(card, s, type, storage, pt, pt_len, &obj,
				   &b->param_ids[b->nparams],
				   b->params[b->nparams]);
	}
	OPENSSL_cleanse(pt, pt_len);
	free(pt);
	if (rv != CKR_OK)
		return rv;
	if (type == CK_PARAM_ELEMENT) {
		b->handles[i] = b->param_ids[b->nparams++];
	} else {
		b->handles[i] = obj->handle;
		b->objs[b->nobjs++] = obj;
	}
	return CKR_OK;
}

/*
 * Commit what was built, objects and parameters together; a failed
 * commit fails each of them, and their sequence numbers stay unused.
 */
static void insert_commit(struct fw_card *card, unsigned int part,
			  struct use *u, struct ibatch *b)
{
	CK_RV rv = fw_blob_publish(card, part, b->objs, b->nobjs, b->param_ids,
				   b->params, b->nparams);

	for (size_t i = 0; i < b->n; i++) {
		if (!b->seqs[i])
			continue;
		if (rv != CKR_OK) {
			b->results[i] = rv;
			b->handles[i] = 0;
		}
		seq_release(u->r, b->seqs[i], rv == CKR_OK);
	}
}

static void insert_all(struct fw_req *rq, const struct fw_session *s,
		       struct use *u, const struct iparam *x)
{
	struct ibatch b;
	size_t off = 0;

	if (!ibatch_alloc(&b, x->n)) {
		ibatch_free(&b);
		rq->w->failed = true;	/* answered PHSM_ST_NO_MEMORY */
		return;
	}
	fill_not_attempted(b.results, 0, x->n);
	for (size_t i = 0; i < x->n; i++) {
		b.results[i] = insert_one(rq->card, s, u, x, i, off, &b);
		off += phsm_array_u64(x->lens, i);
		if (b.results[i] != CKR_OK) {
			if (b.seqs[i])
				seq_release(u->r, b.seqs[i], false);
			b.seqs[i] = 0;
			if (!(x->flags & CKF_CONTINUE_ON_ERR))
				break;
		}
	}
	insert_commit(rq->card, s->part, u, &b);
	phsm_put_u64_array(rq->w, b.results, x->n);
	phsm_put_u64_array(rq->w, b.handles, x->n);
	ibatch_free(&b);
}

static CK_RV insert(struct fw_req *rq, const struct fw_session *s,
		    struct phsm_reader *param)
{
	struct iparam x;
	struct use u;
	CK_RV rv = get_iparam(param, &x);

	if (rv == CKR_OK)
		rv = use_session(rq->card, s->part, x.sid, x.sid_len, NULL, 0,
				 &u);
	if (rv == CKR_OK) {
		insert_all(rq, s, &u, &x);
		use_end(rq->card, &u);
	}
	return rv;
}

CK_RV fw_h_insert(struct fw_req *rq)
{
	return blob_call(rq, CKM_CPV4_INSERT, insert);
}
