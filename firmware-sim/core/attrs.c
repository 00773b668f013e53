// SPDX-License-Identifier: MIT
/* Attribute lists of the firmware. */
#include "attrs.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static void attr_wipe(struct fw_attr *at)
{
	if (at->value) {
		OPENSSL_cleanse(at->value, at->len);
		free(at->value);
	}
	at->value = NULL;
	at->len = 0;
}

void fw_attrs_free(struct fw_attrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		attr_wipe(&a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

const struct fw_attr *fw_attrs_find(const struct fw_attrs *a,
				    CK_ATTRIBUTE_TYPE type)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].type == type)
			return &a->v[i];
	return NULL;
}

bool fw_attrs_has(const struct fw_attrs *a, CK_ATTRIBUTE_TYPE type)
{
	return fw_attrs_find(a, type) != NULL;
}

CK_RV fw_attrs_set(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
		   const void *value, size_t len)
{
	struct fw_attr *at = (struct fw_attr *)fw_attrs_find(a, type);
	uint8_t *copy = NULL;

	if (len > UINT32_MAX)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	if (len) {
		copy = malloc(len);
		if (!copy)
			return CKR_HOST_MEMORY;
		memcpy(copy, value, len);
	}
	if (!at) {
		if (a->n == a->cap) {
			size_t cap = a->cap ? a->cap * 2 : 16;
			struct fw_attr *v = realloc(a->v, cap * sizeof(*v));

			if (!v) {
				free(copy);
				return CKR_HOST_MEMORY;
			}
			a->v = v;
			a->cap = cap;
		}
		at = &a->v[a->n++];
		at->type = type;
	} else {
		attr_wipe(at);
	}
	at->value = copy;
	at->len = (uint32_t)len;
	return CKR_OK;
}

CK_RV fw_attrs_set_ulong(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
			 CK_ULONG v)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)((uint64_t)v >> (8 * i));
	return fw_attrs_set(a, type, le, sizeof(le));
}

CK_RV fw_attrs_set_bool(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type, bool v)
{
	CK_BBOOL b = v ? CK_TRUE : CK_FALSE;

	return fw_attrs_set(a, type, &b, 1);
}

void fw_attrs_remove(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].type == type) {
			attr_wipe(&a->v[i]);
			a->v[i] = a->v[--a->n];
			return;
		}
	}
}

CK_RV fw_attrs_merge(struct fw_attrs *dst, const struct fw_attrs *src)
{
	for (size_t i = 0; i < src->n; i++) {
		CK_RV rv = fw_attrs_set(dst, src->v[i].type, src->v[i].value,
					src->v[i].len);
		if (rv != CKR_OK)
			return rv;
	}
	return CKR_OK;
}

CK_RV fw_attrs_copy(struct fw_attrs *dst, const struct fw_attrs *src)
{
	CK_RV rv;

	memset(dst, 0, sizeof(*dst));
	rv = fw_attrs_merge(dst, src);
	if (rv != CKR_OK)
		fw_attrs_free(dst);
	return rv;
}

CK_RV fw_attrs_get_ulong(const struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
			 CK_ULONG *v)
{
	const struct fw_attr *at = fw_attrs_find(a, type);
	uint64_t x = 0;

	if (!at)
		return CKR_TEMPLATE_INCOMPLETE;
	if (at->len != 8)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	for (int i = 7; i >= 0; i--)
		x = x << 8 | at->value[i];
	*v = (CK_ULONG)x;
	return CKR_OK;
}

CK_RV fw_attrs_get_bool(const struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
			bool *v)
{
	const struct fw_attr *at = fw_attrs_find(a, type);

	if (!at)
		return CKR_TEMPLATE_INCOMPLETE;
	if (at->len != 1 || at->value[0] > 1)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	*v = at->value[0] == CK_TRUE;
	return CKR_OK;
}

bool fw_attrs_bool(const struct fw_attrs *a, CK_ATTRIBUTE_TYPE type, bool def)
{
	bool v = def;

	return fw_attrs_get_bool(a, type, &v) == CKR_OK ? v : def;
}

CK_RV fw_attrs_from_wire(struct phsm_reader *list, uint32_t count,
			 struct fw_attrs *out)
{
	struct phsm_attr_view av;
	CK_RV rv = CKR_OK;

	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < count; i++) {
		if (!phsm_next_attr(list, &av))
			break;
		if (av.flags != PHSM_ATTR_F_VALUE) {
			list->status = PHSM_ST_BAD_VALUE;
			break;
		}
		if (fw_attrs_has(out, av.type)) {
			rv = CKR_TEMPLATE_INCONSISTENT;
			break;
		}
		rv = fw_attrs_set(out, av.type, av.value, av.len);
		if (rv != CKR_OK)
			break;
	}
	if (rv == CKR_OK && list->status == PHSM_ST_OK)
		phsm_reader_done(list);
	if (rv != CKR_OK || list->status != PHSM_ST_OK)
		fw_attrs_free(out);
	return rv;
}

void fw_attrs_to_wire(struct phsm_writer *w, const struct fw_attrs *a)
{
	size_t mark = phsm_put_attrs_begin(w);

	for (size_t i = 0; i < a->n; i++)
		phsm_put_attr(w, a->v[i].type, PHSM_ATTR_F_VALUE, a->v[i].len,
			      a->v[i].value);
	phsm_put_attrs_end(w, mark);
}

bool fw_attrs_serialize(const struct fw_attrs *a, uint8_t **out, size_t *len)
{
	struct phsm_writer w = { 0 };

	fw_attrs_to_wire(&w, a);
	if (w.failed) {
		phsm_writer_free(&w);
		return false;
	}
	*out = w.data;
	*len = w.len;
	return true;
}

bool fw_attrs_deserialize(const uint8_t *in, size_t len, struct fw_attrs *out)
{
	struct phsm_reader r, list;
	uint32_t count;

	memset(out, 0, sizeof(*out));
	phsm_reader_init(&r, in, len);
	if (!phsm_get_attrs(&r, &list, &count) || !phsm_reader_done(&r))
		return false;
	return fw_attrs_from_wire(&list, count, out) == CKR_OK &&
	       list.status == PHSM_ST_OK;
}
