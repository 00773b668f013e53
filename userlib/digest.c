// SPDX-License-Identifier: MIT
/*
 * Digests computed in the library.  A digest without a key involves no
 * secret, so, like the client libraries of network HSMs, the library
 * hashes single-part digests itself with OpenSSL instead of making two
 * round trips to the card: C_DigestInit records a *pending* digest for the
 * session, and C_Digest computes it here.  Anything else that touches
 * the digest (C_DigestUpdate, C_DigestKey, C_DigestFinal, the dual-function
 * updates) first sends the pending C_DigestInit to the card and then
 * goes on there, so multi-part digests and C_DigestKey work as before.
 * PHSM_DIGEST=card turns all of this off.
 *
 * The answers must be the card's.  So the library answers only what it
 * knows for sure: a session it opened on the live connection, with no
 * digest on the card, and a mechanism the card supports as a plain
 * digest.  Everything else goes to the card.  Per session:
 *
 *   IDLE     the card has no digest operation in this session;
 *   PENDING  neither has the card, the library has one (its mechanism);
 *   CARD     the card may have one: digest calls go to the card.
 *
 * A session becomes IDLE when it opens, when the library's digest ends,
 * and when a call tells that the card's ended (C_Digest or C_DigestFinal
 * with CKR_OK, CKR_OPERATION_NOT_INITIALIZED, C_SessionCancel).  Every
 * change bumps the session's epoch, and a call that learns from the card
 * that its operation ended changes the state only if the epoch is the
 * one it saw before it asked: another thread may have started a new
 * operation in between.
 */
#include <stdatomic.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib.h"
#include "transport.h"

enum lib_digest_state { DG_IDLE, DG_PENDING, DG_CARD };

/* Fill the table up to three quarters; later sessions take the card path. */
#define SESS_MAX	(LIB_SESS_SLOTS * 3 / 4)
#define SESS_MASK	(LIB_SESS_SLOTS - 1)

/* ---- the session table (under the card's lock) ------------------------ */

static size_t sess_home(uint64_t local)
{
	return (size_t)((local * 0x9e3779b97f4a7c15ull) >>
			(64 - LIB_SESS_BITS));
}

static void sess_clear(struct lib_sessions *t)
{
	memset(t->slot, 0, sizeof(t->slot));
	t->count = 0;
}

/*
 * The table of the card's live connection, emptied when the connection
 * changed since its entries were made; NULL when there is none.
 */
static struct lib_sessions *sess_table(struct lib_card *card)
{
	struct lib_sessions *t = &card->sessions;

	if (!card->conn || card->conn->ops->dead(card->conn))
		return NULL;
	if (t->generation != card->generation) {
		sess_clear(t);
		t->generation = card->generation;
	}
	return t;
}

static struct lib_sess *sess_find(struct lib_sessions *t, uint64_t local)
{
	size_t i = sess_home(local);

	for (size_t n = 0; n < LIB_SESS_SLOTS; n++, i = (i + 1) & SESS_MASK) {
		if (t->slot[i].local == local)
			return &t->slot[i];
		if (!t->slot[i].local)
			break;
	}
	return NULL;
}

static void sess_insert(struct lib_sessions *t, const struct lib_sess *e)
{
	size_t i = sess_home(e->local);

	while (t->slot[i].local && t->slot[i].local != e->local)
		i = (i + 1) & SESS_MASK;
	if (!t->slot[i].local)
		t->count++;
	t->slot[i] = *e;
}

/* Linear probing without tombstones: move later entries of the cluster
 * back into the hole where their probe sequence passes it. */
static void sess_remove(struct lib_sessions *t, struct lib_sess *e)
{
	size_t i = (size_t)(e - t->slot), j = i, k;

	t->count--;
	for (;;) {
		t->slot[i].local = 0;
		for (;;) {
			j = (j + 1) & SESS_MASK;
			if (!t->slot[j].local)
				return;
			k = sess_home(t->slot[j].local);
			/* Stays if its home lies cyclically in (i, j]. */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		t->slot[i] = t->slot[j];
		i = j;
	}
}

uint32_t lib_sess_ticket(struct lib_card *card)
{
	uint32_t ticket;

	lib_lock(card->lock);
	ticket = card->sessions.closing;
	lib_unlock(card->lock);
	return ticket;
}

void lib_sess_add(struct lib_card *card, unsigned int generation,
		  uint64_t local, unsigned int part, uint32_t ticket)
{
	struct lib_sess e = { .local = local, .part = (uint8_t)part,
			      .digest = DG_IDLE };
	struct lib_sessions *t;

	if (!lib_config_digest_local() || !local)
		return;
	lib_lock(card->lock);
	t = sess_table(card);
	/* Not if a C_CloseAllSessions may have closed it meanwhile. */
	if (t && generation == card->generation && t->closing == ticket &&
	    t->count < SESS_MAX)
		sess_insert(t, &e);
	lib_unlock(card->lock);
}

void lib_sess_forget(struct lib_card *card, uint64_t local)
{
	struct lib_sess *e;

	lib_lock(card->lock);
	e = local ? sess_find(&card->sessions, local) : NULL;
	if (e)
		sess_remove(&card->sessions, e);
	lib_unlock(card->lock);
}

void lib_sess_close_all(struct lib_card *card, unsigned int part)
{
	struct lib_sessions *t = &card->sessions;
	struct lib_sess keep[SESS_MAX];
	size_t n = 0;

	lib_lock(card->lock);
	t->closing++;
	for (size_t i = 0; i < LIB_SESS_SLOTS; i++)
		if (t->slot[i].local && t->slot[i].part != part && n < SESS_MAX)
			keep[n++] = t->slot[i];
	sess_clear(t);
	for (size_t i = 0; i < n; i++)
		sess_insert(t, &keep[i]);
	lib_unlock(card->lock);
}

/*
 * The entry of the application's session handle @h, with its card's
 * lock held; NULL (and no lock) if the library does not know it.
 */
static struct lib_sess *sess_get(CK_SESSION_HANDLE h, struct lib_card **out)
{
	struct lib_state *s = lib_state();
	uint64_t index = (uint64_t)h >> LIB_HANDLE_CARD_SHIFT;
	uint64_t gen = ((uint64_t)h >> LIB_HANDLE_GEN_SHIFT) & LIB_HANDLE_GEN_MASK;
	uint64_t local = (uint64_t)h & LIB_HANDLE_LOCAL_MASK;
	struct lib_sessions *t;
	struct lib_card *card;
	struct lib_sess *e = NULL;

	if (!s || index >= s->ncards || !local)
		return NULL;
	card = &s->cards[index];
	lib_lock(card->lock);
	t = sess_table(card);
	if (t && gen == card->generation)
		e = sess_find(t, local);
	if (!e) {
		lib_unlock(card->lock);
		return NULL;
	}
	*out = card;
	return e;
}

static void sess_set(struct lib_sess *e, enum lib_digest_state st)
{
	e->digest = (uint8_t)st;
	e->epoch++;
}

/* ---- the digests ------------------------------------------------------ */

enum { MD_SHA1, MD_SHA224, MD_SHA256, MD_SHA384, MD_SHA512, MD_SHA3_224,
       MD_SHA3_256, MD_SHA3_384, MD_SHA3_512, MD_COUNT };

/* The card's digest mechanisms (firmware-sim/core/mech.c), no others. */
static int md_index(CK_MECHANISM_TYPE mech)
{
	switch (mech) {
	case CKM_SHA_1:		return MD_SHA1;
	case CKM_SHA224:	return MD_SHA224;
	case CKM_SHA256:	return MD_SHA256;
	case CKM_SHA384:	return MD_SHA384;
	case CKM_SHA512:	return MD_SHA512;
	case CKM_SHA3_224:	return MD_SHA3_224;
	case CKM_SHA3_256:	return MD_SHA3_256;
	case CKM_SHA3_384:	return MD_SHA3_384;
	case CKM_SHA3_512:	return MD_SHA3_512;
	default:		return -1;
	}
}

static const char *const md_names[MD_COUNT] = {
	[MD_SHA1] = "SHA1", [MD_SHA224] = "SHA2-224",
	[MD_SHA256] = "SHA2-256", [MD_SHA384] = "SHA2-384",
	[MD_SHA512] = "SHA2-512", [MD_SHA3_224] = "SHA3-224",
	[MD_SHA3_256] = "SHA3-256", [MD_SHA3_384] = "SHA3-384",
	[MD_SHA3_512] = "SHA3-512",
};

/*
 * Fetched once: OpenSSL 3 would otherwise look the algorithm up in its
 * provider tables at every digest.  Kept for the life of the process;
 * NULL (the provider lacks it) means the card computes that digest.
 */
static _Atomic(EVP_MD *) md_cache[MD_COUNT];

static EVP_MD *md_of(CK_MECHANISM_TYPE mech)
{
	int i = md_index(mech);
	EVP_MD *md, *expected = NULL;

	if (i < 0)
		return NULL;
	md = atomic_load(&md_cache[i]);
	if (md)
		return md;
	md = EVP_MD_fetch(NULL, md_names[i], NULL);
	if (!md)
		return NULL;
	if (!atomic_compare_exchange_strong(&md_cache[i], &expected, md)) {
		EVP_MD_free(md);	/* another thread was first */
		md = expected;
	}
	return md;
}

bool lib_digest_init_local(CK_SESSION_HANDLE h, const CK_MECHANISM *m,
			   CK_RV *rv)
{
	struct lib_card *card;
	struct lib_sess *e;

	/* A NULL mechanism cancels: C_SessionCancel's path. */
	if (!lib_config_digest_local() || !m || !md_of(m->mechanism))
		return false;
	e = sess_get(h, &card);
	if (!e)
		return false;
	if (e->digest == DG_CARD) {
		lib_unlock(card->lock);
		return false;
	}
	/* As put_mechanism() refuses them, before the card's checks. */
	if (m->ulParameterLen)
		*rv = CKR_MECHANISM_PARAM_INVALID;
	else if (e->digest == DG_PENDING)
		*rv = CKR_OPERATION_ACTIVE;
	else
		*rv = CKR_OK;
	if (*rv == CKR_OK) {
		e->mech = m->mechanism;
		sess_set(e, DG_PENDING);
	}
	lib_unlock(card->lock);
	return true;
}

/*
 * C_Digest of a pending digest, with the card's rules (PKCS#11 5.2 and
 * 5.12.2): a size query and CKR_BUFFER_TOO_SMALL keep the operation, any
 * other outcome ends it; arguments the library refuses end it too, as
 * crypto.c's refuse() ends the card's.
 */
bool lib_digest_oneshot_local(CK_SESSION_HANDLE h, const CK_BYTE *in,
			      CK_ULONG in_len, CK_BYTE_PTR out,
			      CK_ULONG_PTR out_len, CK_RV *rv)
{
	struct lib_card *card;
	struct lib_sess *e;
	const EVP_MD *md;
	unsigned int n = 0;
	CK_ULONG size;

	if (!lib_config_digest_local())
		return false;
	e = sess_get(h, &card);
	if (!e)
		return false;
	if (e->digest != DG_PENDING) {
		lib_unlock(card->lock);
		return false;
	}
	md = md_of(e->mech);	/* fetched by C_DigestInit already */
	*rv = check_data(in, in_len);
	if (*rv == CKR_OK && !out_len)
		*rv = CKR_ARGUMENTS_BAD;
	if (*rv == CKR_OK && !md)
		*rv = CKR_GENERAL_ERROR;
	if (*rv != CKR_OK) {
		sess_set(e, DG_IDLE);
		lib_unlock(card->lock);
		return true;
	}
	size = (CK_ULONG)EVP_MD_get_size(md);
	if (!out || *out_len < size) {
		*rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
		*out_len = size;
		lib_unlock(card->lock);
		return true;
	}
	sess_set(e, DG_IDLE);
	lib_unlock(card->lock);
	if (!EVP_Digest(in, in_len, out, &n, md, NULL) || n != size) {
		*rv = CKR_FUNCTION_FAILED;
		return true;
	}
	*out_len = n;
	*rv = CKR_OK;
	return true;
}

bool lib_digest_begin(CK_SESSION_HANDLE h, enum lib_dg_use use,
		      struct lib_dg_mark *mark, CK_MECHANISM_TYPE *pending)
{
	struct lib_card *card;
	struct lib_sess *e;
	bool flush;

	memset(mark, 0, sizeof(*mark));
	if (!lib_config_digest_local())
		return false;
	e = sess_get(h, &card);
	if (!e)
		return false;
	flush = use != LIB_DG_CANCEL && e->digest == DG_PENDING;
	if (flush)
		*pending = e->mech;
	/* From here on the card has, or may have, the operation. */
	if (flush || use == LIB_DG_INIT)
		sess_set(e, DG_CARD);
	mark->card = card;
	mark->generation = card->generation;
	mark->local = e->local;
	mark->epoch = e->epoch;
	mark->valid = true;
	lib_unlock(card->lock);
	return flush;
}

void lib_digest_ended(const struct lib_dg_mark *mark)
{
	struct lib_sessions *t;
	struct lib_sess *e = NULL;

	if (!mark->valid)
		return;
	lib_lock(mark->card->lock);
	t = sess_table(mark->card);
	if (t && t->generation == mark->generation)
		e = sess_find(t, mark->local);
	if (e && e->epoch == mark->epoch && e->digest != DG_IDLE)
		sess_set(e, DG_IDLE);
	lib_unlock(mark->card->lock);
}
