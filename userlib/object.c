// SPDX-License-Identifier: MIT
/*
 * Object management.  Object handles are the card's own: they are only
 * meaningful together with a session, which names the card.
 */
#include <string.h>

#include "lib.h"

PHSM_EXPORT CK_RV C_CreateObject(CK_SESSION_HANDLE hSession,
				 CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
				 CK_OBJECT_HANDLE_PTR phObject)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_CREATE_OBJECT);

	if (rv == CKR_OK && (!phObject || !pTemplate))
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = put_template(&c.w, pTemplate, ulCount);
	if (rv == CKR_OK)
		rv = read_handle(&c, call_run(&c), phObject);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_CopyObject(CK_SESSION_HANDLE hSession,
			       CK_OBJECT_HANDLE hObject,
			       CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
			       CK_OBJECT_HANDLE_PTR phNewObject)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_COPY_OBJECT);

	if (rv == CKR_OK && !phNewObject)
		rv = CKR_ARGUMENTS_BAD;
	phsm_put_u64(&c.w, hObject);
	if (rv == CKR_OK)
		rv = put_template(&c.w, pTemplate, ulCount);
	if (rv == CKR_OK)
		rv = read_handle(&c, call_run(&c), phNewObject);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession,
				  CK_OBJECT_HANDLE hObject)
{
	return call_session_u64(hSession, PHSM_OP_DESTROY_OBJECT, hObject);
}

PHSM_EXPORT CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession,
				  CK_OBJECT_HANDLE hObject,
				  CK_ULONG_PTR pulSize)
{
	struct lib_call c;
	uint64_t size;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_GET_OBJECT_SIZE);

	if (rv == CKR_OK && !pulSize)
		rv = CKR_ARGUMENTS_BAD;
	phsm_put_u64(&c.w, hObject);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK) {
		size = phsm_get_u64(&c.r);
		if (call_done(&c))
			*pulSize = size;
	}
	return call_end(&c, rv);
}

/* Array-of-attribute values hold pointers: they cannot cross the wire. */
static bool attr_nested(CK_ATTRIBUTE_TYPE type)
{
	return (type & CKF_ARRAY_ATTRIBUTE) && type != CKA_ALLOWED_MECHANISMS;
}

static void put_query(struct phsm_writer *w, const CK_ATTRIBUTE *t,
		      CK_ULONG n)
{
	size_t mark = phsm_put_attrs_begin(w);

	for (CK_ULONG i = 0; i < n; i++) {
		if (t[i].pValue)
			phsm_put_attr(w, t[i].type, 0,
				      t[i].ulValueLen > UINT32_MAX ?
				      UINT32_MAX : (uint32_t)t[i].ulValueLen,
				      NULL);
		else
			phsm_put_attr(w, t[i].type, PHSM_ATTR_F_QUERY, 0, NULL);
	}
	phsm_put_attrs_end(w, mark);
}

/* Is this answer entry a possible answer to this template entry? */
static bool answer_fits(const struct phsm_attr_view *a, const CK_ATTRIBUTE *t)
{
	if (a->type != t->type)
		return false;
	switch (a->flags) {
	case PHSM_ATTR_F_VALUE:
		return t->pValue && a->len <= t->ulValueLen;
	case PHSM_ATTR_F_LENGTH:
		return true;
	case PHSM_ATTR_F_UNAVAILABLE:
		return a->len == 0;
	default:
		return false;
	}
}

static void apply_answer(const struct phsm_attr_view *a, CK_ATTRIBUTE *t)
{
	if (a->flags == PHSM_ATTR_F_VALUE) {
		if (a->len)
			memcpy(t->pValue, a->value, a->len);
		t->ulValueLen = a->len;
	} else if (a->flags == PHSM_ATTR_F_LENGTH) {
		t->ulValueLen = a->len;
	} else {
		t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
	}
}

/*
 * The answer: one entry per template entry, in order.  Checked whole
 * before the caller's template is touched.
 */
static CK_RV read_attr_answer(struct lib_call *c, CK_RV rv, CK_ATTRIBUTE *t,
			      CK_ULONG n)
{
	struct phsm_reader list, check;
	struct phsm_attr_view a;
	uint32_t count;

	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE &&
	    rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL)
		return rv;
	if (!phsm_get_attrs(&c->r, &list, &count) || !call_done(c) ||
	    count != n)
		return CKR_DEVICE_ERROR;
	check = list;
	for (CK_ULONG i = 0; i < n; i++)
		if (!phsm_next_attr(&check, &a) || !answer_fits(&a, &t[i]))
			return CKR_DEVICE_ERROR;
	if (!phsm_reader_done(&check))
		return CKR_DEVICE_ERROR;
	for (CK_ULONG i = 0; i < n; i++) {
		phsm_next_attr(&list, &a);
		if (attr_nested(t[i].type)) {
			t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (rv == CKR_OK)
				rv = CKR_ATTRIBUTE_TYPE_INVALID;
			continue;
		}
		apply_answer(&a, &t[i]);
	}
	return rv;
}

PHSM_EXPORT CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession,
				      CK_OBJECT_HANDLE hObject,
				      CK_ATTRIBUTE_PTR pTemplate,
				      CK_ULONG ulCount)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_GET_ATTRIBUTE_VALUE);

	if (rv == CKR_OK && ((!pTemplate && ulCount) || ulCount > PHSM_ATTRS_MAX))
		rv = CKR_ARGUMENTS_BAD;
	phsm_put_u64(&c.w, hObject);
	if (rv == CKR_OK) {
		put_query(&c.w, pTemplate, ulCount);
		rv = read_attr_answer(&c, call_run(&c), pTemplate, ulCount);
	}
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession,
				      CK_OBJECT_HANDLE hObject,
				      CK_ATTRIBUTE_PTR pTemplate,
				      CK_ULONG ulCount)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_SET_ATTRIBUTE_VALUE);

	if (rv == CKR_OK && !pTemplate)
		rv = CKR_ARGUMENTS_BAD;
	phsm_put_u64(&c.w, hObject);
	if (rv == CKR_OK)
		rv = put_template(&c.w, pTemplate, ulCount);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession,
				    CK_ATTRIBUTE_PTR pTemplate,
				    CK_ULONG ulCount)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_FIND_INIT);

	if (rv == CKR_OK)
		rv = put_template(&c.w, pTemplate, ulCount);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_FindObjects(CK_SESSION_HANDLE hSession,
				CK_OBJECT_HANDLE_PTR phObject,
				CK_ULONG ulMaxObjectCount,
				CK_ULONG_PTR pulObjectCount)
{
	struct lib_call c;
	const uint8_t *v;
	size_t n;
	CK_RV rv = call_session(&c, hSession, PHSM_OP_FIND);

	if (rv == CKR_OK && (!phObject || !pulObjectCount))
		rv = CKR_ARGUMENTS_BAD;
	phsm_put_u64(&c.w, ulMaxObjectCount);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK) {
		v = phsm_get_u64_array(&c.r, &n);
		if (!call_done(&c) || n > ulMaxObjectCount)
			return call_end(&c, CKR_DEVICE_ERROR);
		for (size_t i = 0; i < n; i++)
			phObject[i] = phsm_array_u64(v, i);
		*pulObjectCount = n;
	}
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	return call_session_simple(hSession, PHSM_OP_FIND_FINAL);
}
