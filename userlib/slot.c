// SPDX-License-Identifier: MIT
/*
 * Slots and tokens.  Each partition of each card is one slot, with
 * slotID = card index * 16 + partition; its token is the partition.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"

/* Copy card text into a blank-padded field, control characters blanked. */
static void text_copy(CK_UTF8CHAR *dst, size_t size, const uint8_t *src,
		      size_t n)
{
	memset(dst, ' ', size);
	for (size_t i = 0; i < size && i < n; i++)
		dst[i] = (src[i] < 0x20 || src[i] == 0x7f) ? ' ' : src[i];
}

/* Length of a blank-padded field without its padding. */
static size_t text_len(const uint8_t *s, size_t n)
{
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\0'))
		n--;
	return n;
}

/* Slot IDs of the cards' partitions, in order; only present ones if asked. */
static CK_RV collect_slots(struct lib_state *s, bool present_only,
			   CK_SLOT_ID **out, size_t *n)
{
	CK_SLOT_ID *v = calloc(s->ncards * LIB_PARTS_PER_CARD + 1, sizeof(*v));

	*n = 0;
	if (!v)
		return CKR_HOST_MEMORY;
	for (size_t i = 0; i < s->ncards; i++) {
		struct lib_card *card = &s->cards[i];
		bool present = lib_card_present(card);
		unsigned int parts;

		lib_lock(card->lock);
		parts = card->known ? card->info.partitions : 0;
		lib_unlock(card->lock);
		if (present_only && !present)
			continue;
		for (unsigned int p = 0; p < parts; p++)
			v[(*n)++] = i * LIB_PARTS_PER_CARD + p;
	}
	*out = v;
	return CKR_OK;
}

PHSM_EXPORT CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
				CK_ULONG_PTR pulCount)
{
	struct lib_state *s = lib_state();
	CK_SLOT_ID *v;
	size_t n;
	CK_RV rv;

	if (!s)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	/* A size query is where the spec lets the slot list change. */
	if (!pSlotList)
		for (size_t i = 0; i < s->ncards; i++)
			lib_card_connect(&s->cards[i]);
	rv = collect_slots(s, tokenPresent, &v, &n);
	if (rv != CKR_OK)
		return rv;
	if (pSlotList && *pulCount < n)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (pSlotList)
		memcpy(pSlotList, v, n * sizeof(*v));
	*pulCount = n;
	free(v);
	return rv;
}

PHSM_EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	struct lib_state *s = lib_state();
	struct lib_card *card;
	struct lib_card_info info;
	unsigned int part;
	char desc[sizeof(pInfo->slotDescription) + 1];
	CK_RV rv;

	if (!s)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	rv = lib_slot_lookup(s, slotID, &card, &part);
	if (rv != CKR_OK)
		return rv;
	lib_lock(card->lock);
	info = card->info;
	lib_unlock(card->lock);

	memset(pInfo, 0, sizeof(*pInfo));
	snprintf(desc, sizeof(desc), "phsm card %.*s partition %u",
		 (int)text_len(info.serial, sizeof(info.serial)),
		 (const char *)info.serial, part);
	text_copy(pInfo->slotDescription, sizeof(pInfo->slotDescription),
		  (const uint8_t *)desc, strlen(desc));
	text_copy(pInfo->manufacturerID, sizeof(pInfo->manufacturerID),
		  info.manufacturer, sizeof(info.manufacturer));
	pInfo->flags = CKF_HW_SLOT;
	if (lib_card_present(card))
		pInfo->flags |= CKF_TOKEN_PRESENT;
	pInfo->hardwareVersion.major = info.hw_major;
	pInfo->hardwareVersion.minor = info.hw_minor;
	pInfo->firmwareVersion.major = info.fw_major;
	pInfo->firmwareVersion.minor = info.fw_minor;
	return CKR_OK;
}

static uint64_t le64_at(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));	/* little-endian host, see lib.h */
	return v;
}

static CK_ULONG token_ulong(const uint8_t *p, size_t off)
{
	return (CK_ULONG)le64_at(p, off);
}

#define TI(member) offsetof(struct phsm_token_info, member)

static void token_info_from_wire(const uint8_t *p, CK_TOKEN_INFO *t)
{
	memset(t, 0, sizeof(*t));
	text_copy(t->label, sizeof(t->label), p + TI(label), PHSM_LABEL_LEN);
	text_copy(t->manufacturerID, sizeof(t->manufacturerID),
		  p + TI(manufacturer), PHSM_MANUFACTURER_LEN);
	text_copy(t->model, sizeof(t->model), p + TI(model), PHSM_MODEL_LEN);
	text_copy(t->serialNumber, sizeof(t->serialNumber), p + TI(serial),
		  PHSM_SERIAL_LEN);
	t->flags = token_ulong(p, TI(flags));
	t->ulMaxSessionCount = token_ulong(p, TI(max_session_count));
	t->ulSessionCount = token_ulong(p, TI(session_count));
	t->ulMaxRwSessionCount = token_ulong(p, TI(max_rw_session_count));
	t->ulRwSessionCount = token_ulong(p, TI(rw_session_count));
	t->ulMaxPinLen = token_ulong(p, TI(max_pin_len));
	t->ulMinPinLen = token_ulong(p, TI(min_pin_len));
	t->ulTotalPublicMemory = token_ulong(p, TI(total_public_memory));
	t->ulFreePublicMemory = token_ulong(p, TI(free_public_memory));
	t->ulTotalPrivateMemory = token_ulong(p, TI(total_private_memory));
	t->ulFreePrivateMemory = token_ulong(p, TI(free_private_memory));
	t->hardwareVersion.major = p[TI(hw_major)];
	t->hardwareVersion.minor = p[TI(hw_minor)];
	t->firmwareVersion.major = p[TI(fw_major)];
	t->firmwareVersion.minor = p[TI(fw_minor)];
	text_copy(t->utcTime, sizeof(t->utcTime), p + TI(utc_time),
		  sizeof(t->utcTime));
}

PHSM_EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	struct lib_call c;
	const uint8_t *p;
	size_t n;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	rv = call_slot(&c, slotID, PHSM_OP_GET_TOKEN_INFO, NULL);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK) {
		p = phsm_get_bytes(&c.r, &n);
		if (call_done(&c) && n == sizeof(struct phsm_token_info))
			token_info_from_wire(p, pInfo);
		else
			rv = CKR_DEVICE_ERROR;
	}
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot,
				     CK_VOID_PTR pReserved)
{
	CK_RV rv = need_init();

	(void)flags;
	(void)pSlot;
	(void)pReserved;
	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

PHSM_EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID slotID,
				     CK_MECHANISM_TYPE_PTR pMechanismList,
				     CK_ULONG_PTR pulCount)
{
	struct lib_call c;
	const uint8_t *v;
	size_t n;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	rv = call_slot(&c, slotID, PHSM_OP_GET_MECH_LIST, NULL);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK) {
		v = phsm_get_u64_array(&c.r, &n);
		if (!call_done(&c))
			rv = CKR_DEVICE_ERROR;
		else if (pMechanismList && *pulCount < n)
			rv = CKR_BUFFER_TOO_SMALL;
		for (size_t i = 0; rv == CKR_OK && pMechanismList && i < n; i++)
			pMechanismList[i] = phsm_array_u64(v, i);
		if (rv != CKR_DEVICE_ERROR)
			*pulCount = n;
	}
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
				     CK_MECHANISM_INFO_PTR pInfo)
{
	struct lib_call c;
	uint64_t min, max, flags;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	rv = call_slot(&c, slotID, PHSM_OP_GET_MECH_INFO, NULL);
	phsm_put_u64(&c.w, type);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK) {
		min = phsm_get_u64(&c.r);
		max = phsm_get_u64(&c.r);
		flags = phsm_get_u64(&c.r);
		if (call_done(&c)) {
			pInfo->ulMinKeySize = min;
			pInfo->ulMaxKeySize = max;
			pInfo->flags = flags;
		}
	}
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin,
			      CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	/* A NULL PIN asks for a protected path, which we do not have. */
	if (!pPin || !pLabel)
		return CKR_ARGUMENTS_BAD;
	rv = call_slot(&c, slotID, PHSM_OP_INIT_TOKEN, NULL);
	if (rv == CKR_OK)
		rv = put_buffer(&c.w, pPin, ulPinLen);
	phsm_put_bytes(&c.w, pLabel, PHSM_LABEL_LEN);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin,
			    CK_ULONG ulPinLen)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_INIT_PIN);

	if (rv == CKR_OK && !pPin)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = put_buffer(&c.w, pPin, ulPinLen);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin,
			   CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin,
			   CK_ULONG ulNewLen)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_SET_PIN);

	if (rv == CKR_OK && (!pOldPin || !pNewPin))
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = put_buffer(&c.w, pOldPin, ulOldLen);
	if (rv == CKR_OK)
		rv = put_buffer(&c.w, pNewPin, ulNewLen);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}
