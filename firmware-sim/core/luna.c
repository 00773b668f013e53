// SPDX-License-Identifier: MIT
/*
 * The Luna CA_ extensions the card implements itself: cloning domains
 * (CA_AddKCV and friends), partition policies (CA_SetContainerPolicy) and
 * cluster slots (original labels, per-partition locks held by
 * application contexts).  Documentation/phsm/luna.rst describes the
 * rules; phsm_proto.h the messages (0x0100 - 0x01ff).
 *
 * A domain's secret is derived from the KCV the SO types and never
 * leaves the card; it is stored sealed with the partition's Luna record
 * (struct fw_part_ext).  Changes follow the card's usual order: the
 * store_lock for the whole change, a copy of the record under card->lock,
 * the commit, then the new record published under card->lock.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <phsm/cryptoki_ca.h>

#include "clone.h"
#include "internal.h"

const uint64_t fw_policy_types[FW_NPOLICIES] = {
	CK_PHSM_POLICY_EXTENDED_DOMAIN_MGMT,
	CK_PHSM_POLICY_CPV3_DISABLED,
	CK_PHSM_POLICY_CPV4_DISABLED,
};

enum { POL_EXT_DOMAINS = 0 };

enum { LOCK_FREE = 0, LOCK_MINE = 1, LOCK_OTHER = 2 };

static int policy_index(uint64_t type)
{
	for (int i = 0; i < FW_NPOLICIES; i++)
		if (fw_policy_types[i] == type)
			return i;
	return -1;
}

/* ---- loading ---------------------------------------------------------- */

static bool cluster_id_ok(const char *id, size_t len)
{
	if (len < 1 || len > FW_CLUSTER_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* A new SMK (cloning.rst, ParamObjects): a new token gets a new one. */
static void new_smk(struct fw_part_ext *ext)
{
	if (RAND_bytes(ext->smk, sizeof(ext->smk)) != 1)
		fw_log("no random bytes for a partition's SMK");
}

void fw_ext_reset(struct fw_part_ext *ext)
{
	OPENSSL_cleanse(ext->dom, sizeof(ext->dom));
	ext->ndomains = 0;
	memset(ext->policy, 0, sizeof(ext->policy));
	new_smk(ext);
}

/* A partition seen for the first time: its cluster and original label. */
static void ext_create(struct fw_part_ext *e, const char *cluster, size_t len,
		       unsigned int part)
{
	char label[PHSM_LABEL_LEN + 1];
	int n;

	memset(e, 0, sizeof(*e));
	new_smk(e);
	e->cluster_len = (uint8_t)len;
	memcpy(e->cluster, cluster, len);
	n = snprintf(label, sizeof(label), "phsm-%.*s-%u", (int)len, cluster,
		     part);
	memset(e->orig_label, ' ', sizeof(e->orig_label));
	memcpy(e->orig_label, label, n > PHSM_LABEL_LEN ? PHSM_LABEL_LEN
							: (size_t)n);
}

int fw_ext_load(struct fw_card *card, const char *cluster_id, char *err,
		size_t err_len)
{
	char id[FW_CLUSTER_ID_MAX + 1];
	size_t len;

	if (cluster_id) {
		len = strlen(cluster_id);
		if (!cluster_id_ok(cluster_id, len)) {
			snprintf(err, err_len, "cluster ID: 1..%d of A-Z a-z 0-9 . _ -",
				 FW_CLUSTER_ID_MAX);
			return -1;
		}
		memcpy(id, cluster_id, len);
	} else {
		/* The serial: 12 hex digits, blank-padded. */
		for (len = 0; len < PHSM_SERIAL_LEN && len < FW_CLUSTER_ID_MAX &&
			      card->serial[len] != ' '; len++)
			id[len] = (char)card->serial[len];
		if (!cluster_id_ok(id, len)) {
			snprintf(err, err_len, "the card serial is no cluster ID");
			return -1;
		}
	}
	for (unsigned int p = 0; p < card->nparts; p++) {
		int got = fw_store_load_ext(card->store, p, &card->ext[p]);

		if (got == 0)
			continue;
		if (got < 0)
			fw_log("store: Luna record of partition %u is corrupt, "
			       "recreated without domains", p);
		ext_create(&card->ext[p], id, len, p);
		if (fw_store_put_ext(card->store, p, &card->ext[p]) != CKR_OK) {
			snprintf(err, err_len, "cannot write the card state");
			return -1;
		}
	}
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

/* The partition of a session of the caller whose SO is logged in. */
static CK_RV so_session(struct fw_req *rq, uint64_t sess, unsigned int *part)
{
	struct fw_session *s;
	CK_USER_TYPE who;
	CK_RV rv = fw_session_get(rq->card, rq->app, sess, &s);

	if (rv != CKR_OK)
		return rv;
	*part = s->part;
	who = fw_login_of(rq->card, rq->app, s->part);
	fw_session_put(rq->card, s);
	return who == CKU_SO ? CKR_OK : CKR_USER_NOT_LOGGED_IN;
}

typedef CK_RV (*ext_change_fn)(struct fw_part_ext *e, const void *arg);

/* Change a partition's record: decide on a copy, commit, publish. */
static CK_RV change_ext(struct fw_card *card, unsigned int part,
			ext_change_fn fn, const void *arg)
{
	struct fw_part_ext e;
	CK_RV rv;

	pthread_mutex_lock(&card->store_lock);
	pthread_mutex_lock(&card->lock);
	e = card->ext[part];
	pthread_mutex_unlock(&card->lock);
	rv = fn(&e, arg);
	if (rv == CKR_OK)
		rv = fw_store_put_ext(card->store, part, &e);
	if (rv == CKR_OK) {
		pthread_mutex_lock(&card->lock);
		card->ext[part] = e;
		pthread_mutex_unlock(&card->lock);
	}
	pthread_mutex_unlock(&card->store_lock);
	OPENSSL_cleanse(&e, sizeof(e));
	return rv;
}

static int find_domain(const struct fw_part_ext *e, const uint8_t *label,
		       size_t len)
{
	for (unsigned int i = 0; i < e->ndomains; i++)
		if (e->dom[i].label_len == len &&
		    (!len || !memcmp(e->dom[i].label, label, len)))
			return (int)i;
	return -1;
}

static bool label_ok(size_t len)
{
	return len >= 1 && len <= FW_DOMAIN_LABEL_MAX;
}

/* The domain secret: SHA-256 over a fixed prefix and the KCV. */
static bool derive_secret(const uint8_t *kcv, size_t len,
			  uint8_t out[FW_HASH_LEN])
{
	static const char prefix[] = "phsm cloning domain v1";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	bool ok;

	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, prefix, sizeof(prefix)) == 1 &&
	     EVP_DigestUpdate(ctx, kcv, len) == 1 &&
	     EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == FW_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* ---- cloning domains -------------------------------------------------- */

struct add_arg {
	const uint8_t *kcv;
	size_t kcv_len;
	const uint8_t *label;
	size_t label_len;
	bool primary;
};

static CK_RV do_add(struct fw_part_ext *e, const void *arg)
{
	const struct add_arg *a = arg;
	struct fw_domain *d;

	if (e->ndomains >= 1 && !e->policy[POL_EXT_DOMAINS])
		return CKR_DOMAIN_MANAGEMENT_NOT_ALLOWED;
	if (find_domain(e, a->label, a->label_len) >= 0)
		return CKR_DOMAIN_LABEL_ALREADY_EXISTS;
	if (e->ndomains >= FW_DOMAINS_MAX)
		return CKR_DOMAIN_MAX_REACHED;
	d = &e->dom[e->ndomains];
	memset(d, 0, sizeof(*d));
	if (!derive_secret(a->kcv, a->kcv_len, d->secret))
		return CKR_DEVICE_ERROR;
	d->label_len = (uint8_t)a->label_len;
	memcpy(d->label, a->label, a->label_len);
	/* There is always exactly one primary: the first domain is it. */
	d->primary = a->primary || e->ndomains == 0;
	if (d->primary)
		for (unsigned int i = 0; i < e->ndomains; i++)
			e->dom[i].primary = false;
	e->ndomains++;
	return CKR_OK;
}

CK_RV fw_h_ca_add_kcv(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct add_arg a;
	uint64_t primary;
	unsigned int part;
	CK_RV rv;

	a.kcv = phsm_get_bytes(rq->r, &a.kcv_len);
	a.label = phsm_get_bytes(rq->r, &a.label_len);
	primary = phsm_get_u64(rq->r);
	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = so_session(rq, sess, &part);
	if (rv != CKR_OK)
		return rv;
	if (primary > 1 || a.kcv_len > FW_KCV_MAX)
		return CKR_ARGUMENTS_BAD;
	if (!label_ok(a.label_len))
		return CKR_DOMAIN_LABEL_INVALID;
	/* No KCV: a PED domain, which a password card cannot take. */
	if (!a.kcv_len)
		return CKR_DOMAIN_MANAGEMENT_NOT_ALLOWED;
	a.primary = primary == 1;
	return change_ext(rq->card, part, do_add, &a);
}

struct relabel_arg {
	const uint8_t *old;
	size_t old_len;
	const uint8_t *new_label;
	size_t new_len;
};

static CK_RV do_relabel(struct fw_part_ext *e, const void *arg)
{
	const struct relabel_arg *a = arg;
	int i = find_domain(e, a->old, a->old_len);

	if (i < 0)
		return CKR_DOMAIN_LABEL_INVALID;
	if (find_domain(e, a->new_label, a->new_len) >= 0)
		return CKR_DOMAIN_LABEL_ALREADY_EXISTS;
	memset(e->dom[i].label, 0, sizeof(e->dom[i].label));
	memcpy(e->dom[i].label, a->new_label, a->new_len);
	e->dom[i].label_len = (uint8_t)a->new_len;
	return CKR_OK;
}

CK_RV fw_h_ca_change_kcv_label(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct relabel_arg a;
	unsigned int part;
	CK_RV rv;

	a.old = phsm_get_bytes(rq->r, &a.old_len);
	a.new_label = phsm_get_bytes(rq->r, &a.new_len);
	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = so_session(rq, sess, &part);
	if (rv != CKR_OK)
		return rv;
	if (!label_ok(a.new_len) || a.old_len > FW_DOMAIN_LABEL_MAX)
		return CKR_DOMAIN_LABEL_INVALID;
	return change_ext(rq->card, part, do_relabel, &a);
}

struct delete_arg {
	const uint8_t *label;
	size_t len;
};

static CK_RV do_delete(struct fw_part_ext *e, const void *arg)
{
	const struct delete_arg *a = arg;
	int i;
	bool was_primary;

	if (!e->policy[POL_EXT_DOMAINS])
		return CKR_DOMAIN_MANAGEMENT_NOT_ALLOWED;
	i = find_domain(e, a->label, a->len);
	if (i < 0)
		return CKR_DOMAIN_LABEL_INVALID;
	was_primary = e->dom[i].primary;
	memmove(&e->dom[i], &e->dom[i + 1],
		(e->ndomains - (unsigned int)i - 1) * sizeof(e->dom[0]));
	e->ndomains--;
	OPENSSL_cleanse(&e->dom[e->ndomains], sizeof(e->dom[0]));
	/* The oldest remaining domain becomes the primary one. */
	if (was_primary && e->ndomains)
		e->dom[0].primary = true;
	return CKR_OK;
}

CK_RV fw_h_ca_delete_kcv(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct delete_arg a;
	unsigned int part;
	CK_RV rv;

	a.label = phsm_get_bytes(rq->r, &a.len);
	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = so_session(rq, sess, &part);
	if (rv == CKR_OK)
		rv = change_ext(rq->card, part, do_delete, &a);
	/* Clone state keyed by the old domain goes with it. */
	if (rv == CKR_OK)
		fw_clone_drop_partition(rq->card, part);
	return rv;
}

CK_RV fw_h_ca_get_kcv_labels(struct fw_req *rq)
{
	struct fw_card *card = rq->card;
	uint64_t part = phsm_get_u64(rq->r);
	uint64_t flags[FW_DOMAINS_MAX], lens[FW_DOMAINS_MAX];
	uint8_t labels[FW_DOMAINS_MAX * FW_DOMAIN_LABEL_MAX];
	size_t n, total = 0, primaries = 0;

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	if (part >= card->nparts)
		return CKR_SLOT_ID_INVALID;
	if (fw_login_of(card, rq->app, (unsigned int)part) == FW_NOBODY)
		return CKR_USER_NOT_LOGGED_IN;
	pthread_mutex_lock(&card->lock);
	n = card->ext[part].ndomains;
	for (size_t i = 0; i < n; i++) {
		const struct fw_domain *d = &card->ext[part].dom[i];

		flags[i] = d->primary ? CKF_KCV_PRIMARY : 0;
		primaries += d->primary;
		lens[i] = d->label_len;
		memcpy(labels + total, d->label, d->label_len);
		total += d->label_len;
	}
	pthread_mutex_unlock(&card->lock);
	/* Cannot happen through the API; a damaged record could. */
	if (n && !primaries)
		return CKR_DOMAIN_NO_PRIMARY;
	if (primaries > 1)
		return CKR_DOMAIN_EXTRA_PRIMARY;
	phsm_put_u64_array(rq->w, flags, n);
	phsm_put_u64_array(rq->w, lens, n);
	phsm_put_bytes(rq->w, labels, total);
	return CKR_OK;
}

/* ---- partition policies ----------------------------------------------- */

struct policy_arg {
	int index;
	uint64_t value;
};

static CK_RV do_policy(struct fw_part_ext *e, const void *arg)
{
	const struct policy_arg *a = arg;

	e->policy[a->index] = a->value;
	return CKR_OK;
}

CK_RV fw_h_ca_set_policy(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t container = phsm_get_u64(rq->r);
	uint64_t type = phsm_get_u64(rq->r);
	struct policy_arg a = { .value = phsm_get_u64(rq->r) };
	unsigned int part;
	CK_RV rv;

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	rv = so_session(rq, sess, &part);
	if (rv != CKR_OK)
		return rv;
	a.index = policy_index(type);
	if ((container != ~(uint64_t)0 && container != part) || a.index < 0 ||
	    a.value > 1)
		return CKR_ARGUMENTS_BAD;
	rv = change_ext(rq->card, part, do_policy, &a);
	/* A protocol switched off loses its state. */
	if (rv == CKR_OK && a.value && type != CK_PHSM_POLICY_EXTENDED_DOMAIN_MGMT)
		fw_clone_drop_partition(rq->card, part);
	return rv;
}

CK_RV fw_h_ca_get_policies(struct fw_req *rq)
{
	struct fw_card *card = rq->card;
	uint64_t part = phsm_get_u64(rq->r);
	uint64_t values[FW_NPOLICIES];

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	if (part >= card->nparts)
		return CKR_SLOT_ID_INVALID;
	pthread_mutex_lock(&card->lock);
	memcpy(values, card->ext[part].policy, sizeof(values));
	pthread_mutex_unlock(&card->lock);
	phsm_put_u64_array(rq->w, fw_policy_types, FW_NPOLICIES);
	phsm_put_u64_array(rq->w, values, FW_NPOLICIES);
	return CKR_OK;
}

/* ---- cluster slots ---------------------------------------------------- */

/* card->lock held.  An uninitialised token still has its original label. */
static const uint8_t *current_label(struct fw_card *card, unsigned int p)
{
	return card->part[p].initialized ? card->part[p].label
					 : card->ext[p].orig_label;
}

void fw_ext_release_locks(struct fw_card *card, uint64_t app)
{
	pthread_mutex_lock(&card->lock);
	for (unsigned int p = 0; p < card->nparts; p++)
		if (card->slot_lock[p] == app)
			card->slot_lock[p] = 0;
	pthread_mutex_unlock(&card->lock);
}

CK_RV fw_h_ca_cluster_info(struct fw_req *rq)
{
	struct fw_card *card = rq->card;
	uint8_t cur[FW_MAX_PARTITIONS * PHSM_LABEL_LEN];
	uint8_t orig[FW_MAX_PARTITIONS * PHSM_LABEL_LEN];
	uint64_t locks[FW_MAX_PARTITIONS];
	unsigned int n = card->nparts;

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	pthread_mutex_lock(&card->lock);
	for (unsigned int p = 0; p < n; p++) {
		memcpy(cur + p * PHSM_LABEL_LEN, current_label(card, p),
		       PHSM_LABEL_LEN);
		memcpy(orig + p * PHSM_LABEL_LEN, card->ext[p].orig_label,
		       PHSM_LABEL_LEN);
		locks[p] = !card->slot_lock[p] ? LOCK_FREE :
			   card->slot_lock[p] == rq->app ? LOCK_MINE : LOCK_OTHER;
	}
	pthread_mutex_unlock(&card->lock);
	phsm_put_bytes(rq->w, cur, n * PHSM_LABEL_LEN);
	phsm_put_bytes(rq->w, orig, n * PHSM_LABEL_LEN);
	phsm_put_u64_array(rq->w, locks, n);
	return CKR_OK;
}

CK_RV fw_h_ca_claim_unassigned(struct fw_req *rq)
{
	struct fw_card *card = rq->card;
	size_t len;
	const uint8_t *id = phsm_get_bytes(rq->r, &len);
	uint8_t label[PHSM_LABEL_LEN];
	unsigned int p;

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	pthread_mutex_lock(&card->lock);
	for (p = 0; p < card->nparts; p++) {
		const struct fw_part_ext *e = &card->ext[p];

		if (e->cluster_len == len && !memcmp(e->cluster, id, len) &&
		    !memcmp(current_label(card, p), e->orig_label,
			    PHSM_LABEL_LEN) &&
		    !card->slot_lock[p]) {
			card->slot_lock[p] = rq->app;
			memcpy(label, e->orig_label, sizeof(label));
			break;
		}
	}
	pthread_mutex_unlock(&card->lock);
	if (p == card->nparts)
		return CKR_FUNCTION_FAILED;	/* no unassigned token here */
	phsm_put_u64(rq->w, p);
	phsm_put_bytes(rq->w, label, sizeof(label));
	return CKR_OK;
}

static CK_RV slot_lock(struct fw_req *rq, bool lock)
{
	struct fw_card *card = rq->card;
	uint64_t part = phsm_get_u64(rq->r);
	CK_RV rv = CKR_OK;

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	if (part >= card->nparts)
		return CKR_SLOT_ID_INVALID;
	pthread_mutex_lock(&card->lock);
	if (card->slot_lock[part] && card->slot_lock[part] != rq->app)
		rv = CKR_FUNCTION_FAILED;	/* another application has it */
	else
		card->slot_lock[part] = lock ? rq->app : 0;
	pthread_mutex_unlock(&card->lock);
	return rv;
}

CK_RV fw_h_ca_lock_slot(struct fw_req *rq)
{
	return slot_lock(rq, true);
}

CK_RV fw_h_ca_unlock_slot(struct fw_req *rq)
{
	return slot_lock(rq, false);
}
