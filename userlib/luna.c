// SPDX-License-Identifier: MIT
/*
 * The Luna CA_ extensions of phsm/cryptoki_ca.h that this library
 * implements: cloning domains, partition policies and cluster slots.  As
 * for the C_ functions, every argument is checked before a request is
 * built, and every answer is checked before anything of it reaches the
 * caller.  The cloning functions (CA_MigrateKeys, CA_Migration*,
 * CA_Extract, CA_Insert, CA_CloneObject, CA_CloneAs*) are in clone.c.
 */
#include <stdlib.h>
#include <string.h>

#include <phsm/cryptoki_ca.h>

#include "lib.h"

#define DOMAINS_MAX		3
#define DOMAIN_LABEL_MAX	32
#define CLUSTER_ID_MAX		64	/* longer: no card has such a cluster */
#define POLICIES_MAX		64
#define LOCK_STATE_MAX		2

/* ---- cloning domains -------------------------------------------------- */

/* A domain label argument: NULL exactly when its length is 0. */
static CK_RV check_label(const void *p, CK_ULONG len)
{
	if (!p != !len)
		return CKR_ARGUMENTS_BAD;
	return check_data(p, len) == CKR_OK ? CKR_OK : CKR_ARGUMENTS_BAD;
}

PHSM_EXPORT CK_RV CA_AddKCV(CK_SESSION_HANDLE hSession, CK_ULONG ulKCVLength,
			    CK_BYTE_PTR pKCV, CK_ULONG ulLabelLength,
			    CK_BYTE_PTR pLabel, CK_BBOOL bMakePrimary)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	/* A PED KCV is NULL and 0; the label cannot be NULL. */
	if (!pKCV != !ulKCVLength || !pLabel ||
	    check_data(pKCV, ulKCVLength) != CKR_OK ||
	    check_data(pLabel, ulLabelLength) != CKR_OK ||
	    (bMakePrimary != CK_TRUE && bMakePrimary != CK_FALSE))
		return CKR_ARGUMENTS_BAD;
	rv = call_session(&c, hSession, PHSM_OP_CA_ADD_KCV);
	phsm_put_bytes(&c.w, pKCV, ulKCVLength);
	phsm_put_bytes(&c.w, pLabel, ulLabelLength);
	phsm_put_u64(&c.w, bMakePrimary == CK_TRUE);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV CA_ChangeKCVLabel(CK_SESSION_HANDLE hSession,
				    CK_ULONG ulOldLabelLength,
				    CK_BYTE_PTR pOldLabel,
				    CK_ULONG ulNewLabelLength,
				    CK_BYTE_PTR pNewLabel)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (check_label(pOldLabel, ulOldLabelLength) != CKR_OK || !pNewLabel ||
	    check_data(pNewLabel, ulNewLabelLength) != CKR_OK)
		return CKR_ARGUMENTS_BAD;
	rv = call_session(&c, hSession, PHSM_OP_CA_CHANGE_KCV_LABEL);
	phsm_put_bytes(&c.w, pOldLabel, ulOldLabelLength);
	phsm_put_bytes(&c.w, pNewLabel, ulNewLabelLength);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV CA_DeleteKCV(CK_SESSION_HANDLE hSession,
			       CK_ULONG ulLabelLength, CK_BYTE_PTR pLabel)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (check_label(pLabel, ulLabelLength) != CKR_OK)
		return CKR_ARGUMENTS_BAD;
	rv = call_session(&c, hSession, PHSM_OP_CA_DELETE_KCV);
	phsm_put_bytes(&c.w, pLabel, ulLabelLength);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

struct kcv_labels {
	size_t n;
	CK_ULONG flags[DOMAINS_MAX];
	CK_ULONG lens[DOMAINS_MAX];
	const uint8_t *labels;
};

/* The answer of GET_KCV_LABELS, checked through and through. */
static bool read_kcv_labels(struct lib_call *c, struct kcv_labels *k)
{
	size_t nf, nl, total, sum = 0, primaries = 0;
	const uint8_t *f = phsm_get_u64_array(&c->r, &nf);
	const uint8_t *l = phsm_get_u64_array(&c->r, &nl);

	k->labels = phsm_get_bytes(&c->r, &total);
	if (!call_done(c) || !f || !l || !k->labels || nf != nl ||
	    nf > DOMAINS_MAX)
		return false;
	k->n = nf;
	for (size_t i = 0; i < nf; i++) {
		uint64_t flags = phsm_array_u64(f, i);
		uint64_t len = phsm_array_u64(l, i);

		if ((flags & ~(uint64_t)CKF_KCV_PRIMARY) || len < 1 ||
		    len > DOMAIN_LABEL_MAX)
			return false;
		primaries += flags != 0;
		sum += len;
		k->flags[i] = flags;
		k->lens[i] = len;
	}
	return sum == total && (nf == 0 || primaries == 1);
}

PHSM_EXPORT CK_RV CA_GetKCVLabels(CK_SLOT_ID slotID,
				  CK_ULONG_PTR ulNumberOfLabels,
				  CK_ULONG_PTR ulFlags,
				  CK_ULONG_PTR ulLabelLengths,
				  CK_BYTE_PTR *pLabels)
{
	struct lib_call c;
	struct kcv_labels k;
	size_t off = 0;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!ulNumberOfLabels ||
	    (*ulNumberOfLabels && (!ulFlags || !ulLabelLengths || !pLabels)))
		return CKR_ARGUMENTS_BAD;
	rv = call_slot(&c, slotID, PHSM_OP_CA_GET_KCV_LABELS, NULL);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK && !read_kcv_labels(&c, &k))
		rv = CKR_DEVICE_ERROR;
	if (rv != CKR_OK)
		return call_end(&c, rv);
	if (*ulNumberOfLabels == 0) {
		*ulNumberOfLabels = k.n;
		return call_end(&c, CKR_OK);
	}
	if (*ulNumberOfLabels < k.n) {
		*ulNumberOfLabels = k.n;
		return call_end(&c, CKR_BUFFER_TOO_SMALL);
	}
	for (size_t i = 0; i < k.n; i++)
		if (!pLabels[i])
			return call_end(&c, CKR_ARGUMENTS_BAD);
	for (size_t i = 0; i < k.n; i++) {
		ulFlags[i] = k.flags[i];
		ulLabelLengths[i] = k.lens[i];
		memcpy(pLabels[i], k.labels + off, k.lens[i]);
		off += k.lens[i];
	}
	*ulNumberOfLabels = k.n;
	return call_end(&c, CKR_OK);
}

/* ---- partition policies ----------------------------------------------- */

PHSM_EXPORT CK_RV CA_SetContainerPolicy(CK_SESSION_HANDLE hSession,
					CK_ULONG ulContainerNumber,
					CK_ULONG ulPolicyType,
					CK_ULONG ulPolicyValue)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	rv = call_session(&c, hSession, PHSM_OP_CA_SET_POLICY);
	phsm_put_u64(&c.w, ulContainerNumber);
	phsm_put_u64(&c.w, ulPolicyType);
	phsm_put_u64(&c.w, ulPolicyValue);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV CA_GetContainerPolicy(CK_SLOT_ID slotID,
					CK_ULONG ulContainerNumber,
					CK_ULONG ulPolicyType,
					CK_ULONG_PTR pulPolicyValue)
{
	struct lib_call c;
	const uint8_t *types, *values;
	size_t nt, nv, found = 0;
	unsigned int part;
	uint64_t value = 0;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!pulPolicyValue)
		return CKR_ARGUMENTS_BAD;
	rv = call_slot(&c, slotID, PHSM_OP_CA_GET_POLICIES, &part);
	if (rv == CKR_OK && ulContainerNumber != CK_PHSM_CONTAINER_SELF &&
	    ulContainerNumber != part)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv != CKR_OK)
		return call_end(&c, rv);
	types = phsm_get_u64_array(&c.r, &nt);
	values = phsm_get_u64_array(&c.r, &nv);
	if (!call_done(&c) || !types || !values || nt != nv ||
	    nt > POLICIES_MAX)
		return call_end(&c, CKR_DEVICE_ERROR);
	for (size_t i = 0; i < nt; i++) {
		if (phsm_array_u64(types, i) == ulPolicyType) {
			value = phsm_array_u64(values, i);
			found++;
		}
	}
	if (found > 1)
		return call_end(&c, CKR_DEVICE_ERROR);
	if (!found)
		return call_end(&c, CKR_ARGUMENTS_BAD);	/* no such policy */
	*pulPolicyValue = value;
	return call_end(&c, CKR_OK);
}

/* ---- cluster slots ---------------------------------------------------- */

/* The card's partition count if known, else the most a card may have. */
static unsigned int card_parts(struct lib_card *card)
{
	unsigned int n = LIB_PARTS_PER_CARD;

	lib_lock(card->lock);
	if (card->known)
		n = card->info.partitions;
	lib_unlock(card->lock);
	return n;
}

/*
 * Append the slots of one card whose current label is @label.  A card
 * that cannot be reached has no slots; an answer that does not check out
 * is CKR_DEVICE_ERROR.
 */
static CK_RV card_slots_with_label(struct lib_card *card,
				   const CK_UTF8CHAR *label, CK_SLOT_ID *out,
				   size_t *n)
{
	struct lib_call c;
	const uint8_t *cur, *orig, *locks;
	size_t cur_len, orig_len, nlocks, parts;
	CK_RV rv = call_card(&c, card, PHSM_OP_CA_CLUSTER_INFO);

	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv != CKR_OK) {
		/* Not reachable: no slots.  Any error the card gives: odd. */
		bool answered = c.answered;

		call_end(&c, rv);
		return answered ? CKR_DEVICE_ERROR : CKR_OK;
	}
	cur = phsm_get_bytes(&c.r, &cur_len);
	orig = phsm_get_bytes(&c.r, &orig_len);
	locks = phsm_get_u64_array(&c.r, &nlocks);
	parts = nlocks;
	if (!call_done(&c) || !cur || !orig || !locks ||
	    cur_len != parts * PHSM_LABEL_LEN || orig_len != cur_len ||
	    parts > LIB_PARTS_PER_CARD || parts > card_parts(card))
		return call_end(&c, CKR_DEVICE_ERROR);
	for (size_t p = 0; p < parts; p++) {
		if (phsm_array_u64(locks, p) > LOCK_STATE_MAX)
			return call_end(&c, CKR_DEVICE_ERROR);
		if (!memcmp(cur + p * PHSM_LABEL_LEN, label, PHSM_LABEL_LEN))
			out[(*n)++] = (CK_SLOT_ID)card->index *
				      LIB_PARTS_PER_CARD + p;
	}
	return call_end(&c, CKR_OK);
}

PHSM_EXPORT CK_RV CA_GetSlotId(CK_UTF8CHAR label[32], CK_SLOT_ID_PTR pSlotId,
			       CK_ULONG_PTR pulCount)
{
	struct lib_state *s = lib_state();
	CK_SLOT_ID *found;
	size_t n = 0;
	CK_RV rv = CKR_OK;

	if (!s)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!label || !pulCount)
		return CKR_ARGUMENTS_BAD;
	found = calloc(s->ncards * LIB_PARTS_PER_CARD + 1, sizeof(*found));
	if (!found)
		return CKR_HOST_MEMORY;
	for (size_t i = 0; i < s->ncards && rv == CKR_OK; i++)
		rv = card_slots_with_label(&s->cards[i], label, found, &n);
	if (rv == CKR_OK && pSlotId && *pulCount < n)
		rv = CKR_BUFFER_TOO_SMALL;
	if (rv == CKR_OK && pSlotId)
		memcpy(pSlotId, found, n * sizeof(*found));
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
		*pulCount = n;
	free(found);
	return rv;
}

PHSM_EXPORT CK_RV CA_GetUnassignedSlot(const CK_CHAR_PTR clusterID,
				       CK_UNASSIGNED_SLOT_INFO_PTR pUnassignedSlot)
{
	struct lib_state *s = lib_state();
	size_t len;

	if (!s)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!clusterID || !pUnassignedSlot)
		return CKR_ARGUMENTS_BAD;
	len = strnlen((const char *)clusterID, CLUSTER_ID_MAX + 1);
	if (!len || len > CLUSTER_ID_MAX)
		return CKR_ARGUMENTS_BAD;
	for (size_t i = 0; i < s->ncards; i++) {
		struct lib_card *card = &s->cards[i];
		struct lib_call c;
		const uint8_t *label;
		size_t label_len;
		uint64_t part;
		CK_RV rv = call_card(&c, card, PHSM_OP_CA_CLAIM_UNASSIGNED);

		phsm_put_bytes(&c.w, clusterID, len);
		if (rv == CKR_OK)
			rv = call_run(&c);
		if (rv != CKR_OK) {
			/* Not here (FUNCTION_FAILED) or not reachable: next. */
			if (c.answered && rv != CKR_FUNCTION_FAILED)
				return call_end(&c, rv);
			call_end(&c, rv);
			continue;
		}
		part = phsm_get_u64(&c.r);
		label = phsm_get_bytes(&c.r, &label_len);
		if (!call_done(&c) || !label || label_len != PHSM_LABEL_LEN ||
		    part >= card_parts(card))
			return call_end(&c, CKR_DEVICE_ERROR);
		pUnassignedSlot->slotID = (CK_SLOT_ID)card->index *
					  LIB_PARTS_PER_CARD + part;
		memcpy(pUnassignedSlot->label, label, PHSM_LABEL_LEN);
		return call_end(&c, CKR_OK);
	}
	return CKR_FUNCTION_FAILED;	/* no unassigned token anywhere */
}

static CK_RV slot_lock(CK_SLOT_ID slotID, uint16_t opcode)
{
	struct lib_call c;
	CK_RV rv = call_slot(&c, slotID, opcode, NULL);

	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV CA_LockClusteredSlot(CK_SLOT_ID slotID)
{
	return slot_lock(slotID, PHSM_OP_CA_LOCK_SLOT);
}

PHSM_EXPORT CK_RV CA_UnlockClusteredSlot(CK_SLOT_ID slotID)
{
	return slot_lock(slotID, PHSM_OP_CA_UNLOCK_SLOT);
}
