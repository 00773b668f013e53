/* SPDX-License-Identifier: MIT */
/*
 * Attribute lists inside the firmware: an object is a list of attributes,
 * templates arriving from the host are parsed into one, and key generation
 * returns its key material as one.  Values are owned copies; CK_ULONG
 * values are stored as 8-byte little-endian, as on the wire.
 */
#ifndef PHSM_FW_ATTRS_H
#define PHSM_FW_ATTRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <phsm/pkcs11.h>

#include "../../uapi/codec/phsm_codec.h"

struct fw_attr {
	CK_ATTRIBUTE_TYPE type;
	uint32_t len;
	uint8_t *value;		/* len bytes, NULL when len is 0 */
};

struct fw_attrs {
	size_t n;
	size_t cap;
	struct fw_attr *v;
};

void fw_attrs_free(struct fw_attrs *a);	/* wipes values, leaves a empty */
CK_RV fw_attrs_copy(struct fw_attrs *dst, const struct fw_attrs *src);

/* Parse a wire template (every entry must carry a value).  A type given
 * twice is CKR_TEMPLATE_INCONSISTENT; a malformed list sets r->status. */
CK_RV fw_attrs_from_wire(struct phsm_reader *list, uint32_t count,
			 struct fw_attrs *out);
/* Append the list as a template (every entry with its value). */
void fw_attrs_to_wire(struct phsm_writer *w, const struct fw_attrs *a);

const struct fw_attr *fw_attrs_find(const struct fw_attrs *a,
				    CK_ATTRIBUTE_TYPE type);
bool fw_attrs_has(const struct fw_attrs *a, CK_ATTRIBUTE_TYPE type);
/* Replace or add; CKR_HOST_MEMORY on allocation failure. */
CK_RV fw_attrs_set(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
		   const void *value, size_t len);
CK_RV fw_attrs_set_ulong(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
			 CK_ULONG v);
CK_RV fw_attrs_set_bool(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type, bool v);
void fw_attrs_remove(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type);
/* Merge: every attribute of src replaces or joins dst. */
CK_RV fw_attrs_merge(struct fw_attrs *dst, const struct fw_attrs *src);

/*
 * Typed reads.  Return CKR_OK with the value, CKR_TEMPLATE_INCOMPLETE when
 * absent (the value is then left as it was, so callers may preset a
 * default), or CKR_ATTRIBUTE_VALUE_INVALID when present with the wrong
 * length (a CK_BBOOL must be 1 byte holding 0 or 1).
 */
CK_RV fw_attrs_get_ulong(const struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
			 CK_ULONG *v);
CK_RV fw_attrs_get_bool(const struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
			bool *v);
/* The flag's value, or def when absent or malformed. */
bool fw_attrs_bool(const struct fw_attrs *a, CK_ATTRIBUTE_TYPE type, bool def);

/* Serialise a whole list for the store, and back (false on bad input). */
bool fw_attrs_serialize(const struct fw_attrs *a, uint8_t **out, size_t *len);
bool fw_attrs_deserialize(const uint8_t *in, size_t len, struct fw_attrs *out);

#endif /* PHSM_FW_ATTRS_H */
