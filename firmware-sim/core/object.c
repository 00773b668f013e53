// SPDX-License-Identifier: MIT
/*
 * Objects: the attribute model of PKCS#11 v3.0 section 4 (which class has
 * which attribute, who may set it and when), the object table, and
 * C_CreateObject, C_CopyObject, C_DestroyObject, C_GetAttributeValue,
 * C_SetAttributeValue, C_GetObjectSize and C_FindObjectsInit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

/* Classes an attribute belongs to. */
#define C_DATA		(1u << 0)
#define C_CERT		(1u << 1)
#define C_PUB		(1u << 2)
#define C_PRIV		(1u << 3)
#define C_SECRET	(1u << 4)
#define C_KEY		(C_PUB | C_PRIV | C_SECRET)
#define C_ALL		(C_DATA | C_CERT | C_KEY)

/* Key families the material attributes belong to (0: any). */
#define K_RSA		(1u << 0)
#define K_EC		(1u << 1)	/* EC, Edwards and Montgomery curves */
#define K_SYM		(1u << 2)	/* every secret key type */

enum value_kind { V_BYTES, V_BOOL, V_ULONG, V_DATE, V_MECHS, V_TMPL };

/* Who may give the attribute a value, and when. */
#define F_RO		(1u << 0)	/* only the token sets it */
#define F_MOD		(1u << 1)	/* C_SetAttributeValue, and on copy */
#define F_COPY		(1u << 2)	/* may change on C_CopyObject */
#define F_SENS		(1u << 3)	/* hidden for sensitive/unextractable keys */
#define F_NOCREATE	(1u << 4)	/* not in a C_CreateObject template */
#define F_NOGEN		(1u << 5)	/* not in a key generation template */
#define F_NOUNWRAP	(1u << 6)	/* not in an unwrap or derive template */
#define F_SO_TRUE	(1u << 7)	/* only the SO may set it to CK_TRUE */
#define F_ONLY_TRUE	(1u << 8)	/* once CK_TRUE, stays CK_TRUE */
#define F_ONLY_FALSE	(1u << 9)	/* once CK_FALSE, stays CK_FALSE */

#define MATERIAL	(F_NOGEN | F_NOUNWRAP)

struct attr_info {
	CK_ATTRIBUTE_TYPE type;
	uint8_t classes;
	uint8_t keys;
	uint8_t kind;
	uint16_t flags;
};

static const struct attr_info attr_table[] = {
	/* Common to every storage object (4.2, 4.4) */
	{ CKA_CLASS, C_ALL, 0, V_ULONG, 0 },
	{ CKA_TOKEN, C_ALL, 0, V_BOOL, F_COPY },
	{ CKA_PRIVATE, C_ALL, 0, V_BOOL, F_COPY },
	{ CKA_MODIFIABLE, C_ALL, 0, V_BOOL, F_COPY },
	{ CKA_COPYABLE, C_ALL, 0, V_BOOL, F_MOD | F_ONLY_FALSE },
	{ CKA_DESTROYABLE, C_ALL, 0, V_BOOL, F_COPY },
	{ CKA_LABEL, C_ALL, 0, V_BYTES, F_MOD },
	{ CKA_UNIQUE_ID, C_ALL, 0, V_BYTES, F_RO },
	/* Data objects (4.5) */
	{ CKA_APPLICATION, C_DATA, 0, V_BYTES, 0 },
	{ CKA_OBJECT_ID, C_DATA, 0, V_BYTES, 0 },
	{ CKA_VALUE, C_DATA, 0, V_BYTES, 0 },
	/* X.509 certificates (4.6) */
	{ CKA_CERTIFICATE_TYPE, C_CERT, 0, V_ULONG, 0 },
	{ CKA_TRUSTED, C_CERT, 0, V_BOOL, F_SO_TRUE },
	{ CKA_CERTIFICATE_CATEGORY, C_CERT, 0, V_ULONG, 0 },
	{ CKA_CHECK_VALUE, C_CERT, 0, V_BYTES, 0 },
	{ CKA_START_DATE, C_CERT, 0, V_DATE, 0 },
	{ CKA_END_DATE, C_CERT, 0, V_DATE, 0 },
	{ CKA_PUBLIC_KEY_INFO, C_CERT, 0, V_BYTES, 0 },
	{ CKA_SUBJECT, C_CERT, 0, V_BYTES, 0 },
	{ CKA_ID, C_CERT, 0, V_BYTES, F_MOD },
	{ CKA_ISSUER, C_CERT, 0, V_BYTES, F_MOD },
	{ CKA_SERIAL_NUMBER, C_CERT, 0, V_BYTES, F_MOD },
	{ CKA_VALUE, C_CERT, 0, V_BYTES, 0 },
	{ CKA_URL, C_CERT, 0, V_BYTES, 0 },
	{ CKA_HASH_OF_SUBJECT_PUBLIC_KEY, C_CERT, 0, V_BYTES, 0 },
	{ CKA_HASH_OF_ISSUER_PUBLIC_KEY, C_CERT, 0, V_BYTES, 0 },
	{ CKA_JAVA_MIDP_SECURITY_DOMAIN, C_CERT, 0, V_ULONG, 0 },
	{ CKA_NAME_HASH_ALGORITHM, C_CERT, 0, V_ULONG, 0 },
	/* Every key (4.7) */
	{ CKA_KEY_TYPE, C_KEY, 0, V_ULONG, 0 },
	{ CKA_ID, C_KEY, 0, V_BYTES, F_MOD },
	{ CKA_START_DATE, C_KEY, 0, V_DATE, F_MOD },
	{ CKA_END_DATE, C_KEY, 0, V_DATE, F_MOD },
	{ CKA_DERIVE, C_KEY, 0, V_BOOL, F_MOD },
	{ CKA_LOCAL, C_KEY, 0, V_BOOL, F_RO },
	{ CKA_KEY_GEN_MECHANISM, C_KEY, 0, V_ULONG, F_RO },
	{ CKA_ALLOWED_MECHANISMS, C_KEY, 0, V_MECHS, 0 },
	{ CKA_DERIVE_TEMPLATE, C_PRIV | C_SECRET, 0, V_TMPL, 0 },
	/* Public keys (4.8) */
	{ CKA_SUBJECT, C_PUB | C_PRIV, 0, V_BYTES, F_MOD },
	{ CKA_ENCRYPT, C_PUB | C_SECRET, 0, V_BOOL, F_MOD },
	{ CKA_VERIFY, C_PUB | C_SECRET, 0, V_BOOL, F_MOD },
	{ CKA_VERIFY_RECOVER, C_PUB, 0, V_BOOL, F_MOD },
	{ CKA_WRAP, C_PUB | C_SECRET, 0, V_BOOL, F_MOD },
	{ CKA_TRUSTED, C_PUB | C_SECRET, 0, V_BOOL, F_MOD | F_SO_TRUE },
	{ CKA_WRAP_TEMPLATE, C_PUB | C_SECRET, 0, V_TMPL, 0 },
	{ CKA_PUBLIC_KEY_INFO, C_PUB, 0, V_BYTES, F_NOGEN },
	/* Private keys (4.9) and secret keys (4.10) */
	{ CKA_SENSITIVE, C_PRIV | C_SECRET, 0, V_BOOL, F_MOD | F_ONLY_TRUE },
	{ CKA_DECRYPT, C_PRIV | C_SECRET, 0, V_BOOL, F_MOD },
	{ CKA_SIGN, C_PRIV | C_SECRET, 0, V_BOOL, F_MOD },
	{ CKA_SIGN_RECOVER, C_PRIV, 0, V_BOOL, F_MOD },
	{ CKA_UNWRAP, C_PRIV | C_SECRET, 0, V_BOOL, F_MOD },
	{ CKA_EXTRACTABLE, C_PRIV | C_SECRET, 0, V_BOOL, F_MOD | F_ONLY_FALSE },
	{ CKA_ALWAYS_SENSITIVE, C_PRIV | C_SECRET, 0, V_BOOL, F_RO },
	{ CKA_NEVER_EXTRACTABLE, C_PRIV | C_SECRET, 0, V_BOOL, F_RO },
	{ CKA_WRAP_WITH_TRUSTED, C_PRIV | C_SECRET, 0, V_BOOL, F_MOD | F_ONLY_TRUE },
	{ CKA_UNWRAP_TEMPLATE, C_PRIV | C_SECRET, 0, V_TMPL, 0 },
	{ CKA_ALWAYS_AUTHENTICATE, C_PRIV, 0, V_BOOL, 0 },
	{ CKA_CHECK_VALUE, C_SECRET, 0, V_BYTES, 0 },
	/* Key material and its parameters, per key family */
	{ CKA_MODULUS, C_PUB | C_PRIV, K_RSA, V_BYTES, MATERIAL },
	{ CKA_MODULUS_BITS, C_PUB, K_RSA, V_ULONG, F_NOCREATE | F_NOUNWRAP },
	{ CKA_PUBLIC_EXPONENT, C_PUB, K_RSA, V_BYTES, F_NOUNWRAP },
	{ CKA_PUBLIC_EXPONENT, C_PRIV, K_RSA, V_BYTES, MATERIAL },
	{ CKA_PRIVATE_EXPONENT, C_PRIV, K_RSA, V_BYTES, MATERIAL | F_SENS },
	{ CKA_PRIME_1, C_PRIV, K_RSA, V_BYTES, MATERIAL | F_SENS },
	{ CKA_PRIME_2, C_PRIV, K_RSA, V_BYTES, MATERIAL | F_SENS },
	{ CKA_EXPONENT_1, C_PRIV, K_RSA, V_BYTES, MATERIAL | F_SENS },
	{ CKA_EXPONENT_2, C_PRIV, K_RSA, V_BYTES, MATERIAL | F_SENS },
	{ CKA_COEFFICIENT, C_PRIV, K_RSA, V_BYTES, MATERIAL | F_SENS },
	{ CKA_EC_PARAMS, C_PUB, K_EC, V_BYTES, F_NOUNWRAP },
	{ CKA_EC_POINT, C_PUB, K_EC, V_BYTES, MATERIAL },
	{ CKA_EC_PARAMS, C_PRIV, K_EC, V_BYTES, MATERIAL },
	{ CKA_VALUE, C_PRIV, K_EC, V_BYTES, MATERIAL | F_SENS },
	{ CKA_VALUE, C_SECRET, K_SYM, V_BYTES, MATERIAL | F_SENS },
	{ CKA_VALUE_LEN, C_SECRET, K_SYM, V_ULONG, 0 },
};

static unsigned int class_bit(CK_OBJECT_CLASS cls)
{
	switch (cls) {
	case CKO_DATA:
		return C_DATA;
	case CKO_CERTIFICATE:
		return C_CERT;
	case CKO_PUBLIC_KEY:
		return C_PUB;
	case CKO_PRIVATE_KEY:
		return C_PRIV;
	case CKO_SECRET_KEY:
		return C_SECRET;
	default:
		return 0;
	}
}

static unsigned int key_bit(CK_OBJECT_CLASS cls, CK_KEY_TYPE kt)
{
	if (cls == CKO_SECRET_KEY)
		return K_SYM;
	if (kt == CKK_RSA)
		return K_RSA;
	if (kt == CKK_EC || kt == CKK_EC_EDWARDS || kt == CKK_EC_MONTGOMERY)
		return K_EC;
	return 0;
}

static const struct attr_info *attr_lookup(CK_ATTRIBUTE_TYPE type,
					   CK_OBJECT_CLASS cls, CK_KEY_TYPE kt)
{
	unsigned int c = class_bit(cls), k = key_bit(cls, kt);

	for (size_t i = 0; i < sizeof(attr_table) / sizeof(attr_table[0]); i++) {
		const struct attr_info *ai = &attr_table[i];

		if (ai->type == type && (ai->classes & c) &&
		    (!ai->keys || (ai->keys & k)))
			return ai;
	}
	return NULL;
}

bool fw_attr_is_sensitive(CK_ATTRIBUTE_TYPE type)
{
	switch (type) {
	case CKA_VALUE:
	case CKA_PRIVATE_EXPONENT:
	case CKA_PRIME_1:
	case CKA_PRIME_2:
	case CKA_EXPONENT_1:
	case CKA_EXPONENT_2:
	case CKA_COEFFICIENT:
		return true;
	default:
		return false;
	}
}

static bool value_ok(const struct attr_info *ai, const struct fw_attr *at)
{
	switch (ai->kind) {
	case V_BOOL:
		return at->len == 1 && at->value[0] <= 1;
	case V_ULONG:
		return at->len == 8;
	case V_DATE:
		if (at->len == 0)
			return true;
		if (at->len != 8)
			return false;
		for (int i = 0; i < 8; i++)
			if (at->value[i] < '0' || at->value[i] > '9')
				return false;
		return true;
	case V_MECHS:
		return at->len % 8 == 0;
	case V_TMPL: {
		struct fw_attrs nested;

		if (!fw_attrs_deserialize(at->value, at->len, &nested))
			return false;
		fw_attrs_free(&nested);
		return true;
	}
	default:
		return true;
	}
}

static bool value_true(const struct fw_attr *at)
{
	return at && at->len == 1 && at->value[0] == CK_TRUE;
}

/* ---- the object table ------------------------------------------------- */

static void obj_free(struct fw_obj *o)
{
	fw_attrs_free(&o->attrs);
	if (o->key)
		fw_key_put(o->key);
	free(o);
}

void fw_obj_put(struct fw_card *card, struct fw_obj *o)
{
	bool last;

	if (!o)
		return;
	pthread_mutex_lock(&card->lock);
	last = --o->refs == 0;
	pthread_mutex_unlock(&card->lock);
	if (last)
		obj_free(o);
}

static struct fw_obj *obj_lookup(struct fw_card *card, uint64_t handle)
{
	for (struct fw_obj *o = card->objects[fw_bucket(handle)]; o; o = o->next)
		if (o->handle == handle)
			return o;
	return NULL;
}

static void obj_link(struct fw_card *card, struct fw_obj *o)
{
	size_t b = fw_bucket(o->handle);

	o->next = card->objects[b];
	card->objects[b] = o;
	o->live = true;
	o->refs++;
	card->nobjects++;
}

/* Take @o out of the table and drop the table's reference. */
static void obj_unlink(struct fw_card *card, struct fw_obj *o)
{
	struct fw_obj **pp = &card->objects[fw_bucket(o->handle)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			o->live = false;
			card->nobjects--;
			if (--o->refs == 0)
				obj_free(o);
			return;
		}
	}
}

/* Caller holds card->lock. */
bool fw_obj_visible(struct fw_card *card, const struct fw_session *s,
		    const struct fw_obj *o)
{
	struct fw_app *a;

	if (o->part != s->part)
		return false;
	if (!o->token && o->app != s->app)
		return false;
	if (!o->priv)
		return true;
	a = fw_app_find(card, s->app);
	return a && a->login[s->part] == CKU_USER;
}

CK_RV fw_obj_get(struct fw_card *card, const struct fw_session *s,
		 uint64_t handle, struct fw_obj **out)
{
	struct fw_obj *o;

	pthread_mutex_lock(&card->lock);
	o = obj_lookup(card, handle);
	if (!o || !fw_obj_visible(card, s, o)) {
		pthread_mutex_unlock(&card->lock);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	o->refs++;
	pthread_mutex_unlock(&card->lock);
	*out = o;
	return CKR_OK;
}

/* The object's parsed key, built once and cached on the object. */
CK_RV fw_obj_key(struct fw_card *card, struct fw_obj *o, struct fw_key **out)
{
	struct fw_key *k = NULL;
	CK_RV rv;

	pthread_mutex_lock(&card->lock);
	if (o->key)
		k = fw_key_get(o->key);
	pthread_mutex_unlock(&card->lock);
	if (k) {
		*out = k;
		return CKR_OK;
	}
	/* The attributes of a published object never change: no lock. */
	rv = fw_key_load(&o->attrs, &k);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&card->lock);
	if (!o->key)
		o->key = fw_key_get(k);
	pthread_mutex_unlock(&card->lock);
	*out = k;
	return CKR_OK;
}

/* Remove every object @match selects.  Caller holds card->lock. */
void fw_objects_drop(struct fw_card *card,
		     bool (*match)(const struct fw_obj *, const void *),
		     const void *arg)
{
	for (size_t b = 0; b < FW_BUCKETS; b++) {
		struct fw_obj *o = card->objects[b], *next;

		for (; o; o = next) {
			next = o->next;
			if (match(o, arg))
				obj_unlink(card, o);
		}
	}
}

static struct fw_obj *obj_new(uint64_t handle, unsigned int part,
			      struct fw_attrs *attrs)
{
	struct fw_obj *o = calloc(1, sizeof(*o));
	CK_ULONG cls = CKO_DATA;

	if (!o)
		return NULL;
	o->handle = handle;
	o->part = part;
	o->refs = 1;		/* the creator's */
	o->attrs = *attrs;
	memset(attrs, 0, sizeof(*attrs));
	fw_attrs_get_ulong(&o->attrs, CKA_CLASS, &cls);
	o->cls = cls;
	o->token = fw_attrs_bool(&o->attrs, CKA_TOKEN, false);
	o->priv = fw_attrs_bool(&o->attrs, CKA_PRIVATE, true);
	return o;
}

int fw_obj_insert_loaded(void *ctx, uint64_t handle, unsigned int part,
			 struct fw_attrs *attrs)
{
	struct fw_card *card = ctx;
	struct fw_obj *o;
	CK_ULONG cls;

	if (fw_attrs_get_ulong(attrs, CKA_CLASS, &cls) != CKR_OK ||
	    !class_bit(cls) || !fw_attrs_bool(attrs, CKA_TOKEN, false)) {
		fw_attrs_free(attrs);
		return -1;
	}
	o = obj_new(handle, part, attrs);
	if (!o) {
		fw_attrs_free(attrs);
		return -1;
	}
	pthread_mutex_lock(&card->lock);
	if (obj_lookup(card, handle)) {
		pthread_mutex_unlock(&card->lock);
		obj_free(o);
		return -1;
	}
	o->refs = 0;		/* the table's will be the only one */
	obj_link(card, o);
	pthread_mutex_unlock(&card->lock);
	return 0;
}

/* ---- templates -------------------------------------------------------- */

static CK_RV check_access(struct fw_card *card, const struct fw_session *s,
			  bool token, bool priv)
{
	if (token && !(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	if (priv && fw_login_of(card, s->app, s->part) != CKU_USER)
		return CKR_USER_NOT_LOGGED_IN;
	return CKR_OK;
}

/*
 * Check a template for a new object of @cls/@ktype made by @how: every
 * attribute must belong to the class (CKR_ATTRIBUTE_TYPE_INVALID), have a
 * well-formed value (CKR_ATTRIBUTE_VALUE_INVALID) and be one the
 * application may give here (CKR_ATTRIBUTE_READ_ONLY).
 */
CK_RV fw_check_template(struct fw_card *card, const struct fw_session *s,
			const struct fw_attrs *tmpl, CK_OBJECT_CLASS cls,
			CK_KEY_TYPE ktype, enum fw_create_how how)
{
	CK_RV type_rv = CKR_OK, value_rv = CKR_OK, ro_rv = CKR_OK;

	for (size_t i = 0; i < tmpl->n; i++) {
		const struct fw_attr *at = &tmpl->v[i];
		const struct attr_info *ai = attr_lookup(at->type, cls, ktype);
		uint16_t f;

		if (!ai) {
			type_rv = CKR_ATTRIBUTE_TYPE_INVALID;
			continue;
		}
		if (!value_ok(ai, at)) {
			value_rv = CKR_ATTRIBUTE_VALUE_INVALID;
			continue;
		}
		f = ai->flags;
		if ((f & F_RO) ||
		    (how == FW_CREATE && (f & F_NOCREATE)) ||
		    (how == FW_GENERATE && (f & F_NOGEN)) ||
		    ((how == FW_UNWRAP || how == FW_DERIVE) && (f & F_NOUNWRAP)) ||
		    ((f & F_SO_TRUE) && value_true(at) &&
		     fw_login_of(card, s->app, s->part) != CKU_SO))
			ro_rv = CKR_ATTRIBUTE_READ_ONLY;
	}
	if (type_rv != CKR_OK)
		return type_rv;
	if (value_rv != CKR_OK)
		return value_rv;
	return ro_rv;
}

static CK_RV set_default(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
			 const void *v, size_t len)
{
	return fw_attrs_has(a, type) ? CKR_OK : fw_attrs_set(a, type, v, len);
}

static CK_RV default_bool(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type, bool v)
{
	CK_BBOOL b = v;

	return set_default(a, type, &b, 1);
}

static CK_RV default_ulong(struct fw_attrs *a, CK_ATTRIBUTE_TYPE type,
			   CK_ULONG v)
{
	return fw_attrs_has(a, type) ? CKR_OK : fw_attrs_set_ulong(a, type, v);
}

static CK_RV storage_defaults(struct fw_attrs *a, CK_OBJECT_CLASS cls)
{
	bool secret = cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY;
	CK_RV rv = CKR_OK;

	rv |= default_bool(a, CKA_TOKEN, false);
	rv |= default_bool(a, CKA_PRIVATE, secret);
	rv |= default_bool(a, CKA_MODIFIABLE, true);
	rv |= default_bool(a, CKA_COPYABLE, true);
	rv |= default_bool(a, CKA_DESTROYABLE, true);
	rv |= set_default(a, CKA_LABEL, NULL, 0);
	return rv ? CKR_HOST_MEMORY : CKR_OK;
}

static CK_RV data_defaults(struct fw_attrs *a)
{
	CK_RV rv = CKR_OK;

	rv |= set_default(a, CKA_APPLICATION, NULL, 0);
	rv |= set_default(a, CKA_OBJECT_ID, NULL, 0);
	rv |= set_default(a, CKA_VALUE, NULL, 0);
	return rv ? CKR_HOST_MEMORY : CKR_OK;
}

static CK_RV cert_defaults(struct fw_attrs *a)
{
	static const CK_ATTRIBUTE_TYPE empty[] = {
		CKA_CHECK_VALUE, CKA_START_DATE, CKA_END_DATE,
		CKA_PUBLIC_KEY_INFO, CKA_ID, CKA_ISSUER, CKA_SERIAL_NUMBER,
		CKA_URL, CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
		CKA_HASH_OF_ISSUER_PUBLIC_KEY,
	};
	CK_RV rv = CKR_OK;

	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++)
		rv |= set_default(a, empty[i], NULL, 0);
	rv |= default_bool(a, CKA_TRUSTED, false);
	rv |= default_ulong(a, CKA_CERTIFICATE_CATEGORY,
			    CK_CERTIFICATE_CATEGORY_UNSPECIFIED);
	rv |= default_ulong(a, CKA_JAVA_MIDP_SECURITY_DOMAIN,
			    CK_SECURITY_DOMAIN_UNSPECIFIED);
	rv |= default_ulong(a, CKA_NAME_HASH_ALGORITHM, CKM_SHA_1);
	return rv ? CKR_HOST_MEMORY : CKR_OK;
}

/* Defaults of every key class; usage flags default to CK_TRUE. */
CK_RV fw_key_defaults(struct fw_attrs *a, CK_OBJECT_CLASS cls)
{
	CK_RV rv = storage_defaults(a, cls);

	rv |= set_default(a, CKA_ID, NULL, 0);
	rv |= set_default(a, CKA_START_DATE, NULL, 0);
	rv |= set_default(a, CKA_END_DATE, NULL, 0);
	rv |= default_bool(a, CKA_DERIVE, false);
	rv |= default_bool(a, CKA_LOCAL, false);
	rv |= default_ulong(a, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION);
	rv |= set_default(a, CKA_ALLOWED_MECHANISMS, NULL, 0);
	if (cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY)
		rv |= set_default(a, CKA_SUBJECT, NULL, 0);
	if (cls == CKO_PUBLIC_KEY || cls == CKO_SECRET_KEY) {
		rv |= default_bool(a, CKA_ENCRYPT, true);
		rv |= default_bool(a, CKA_VERIFY, true);
		rv |= default_bool(a, CKA_WRAP, true);
		rv |= default_bool(a, CKA_TRUSTED, false);
	}
	if (cls == CKO_PUBLIC_KEY)
		rv |= default_bool(a, CKA_VERIFY_RECOVER, true);
	if (cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY) {
		rv |= default_bool(a, CKA_SENSITIVE, false);
		rv |= default_bool(a, CKA_DECRYPT, true);
		rv |= default_bool(a, CKA_SIGN, true);
		rv |= default_bool(a, CKA_UNWRAP, true);
		rv |= default_bool(a, CKA_EXTRACTABLE, true);
		rv |= default_bool(a, CKA_WRAP_WITH_TRUSTED, false);
		rv |= default_bool(a, CKA_ALWAYS_SENSITIVE, false);
		rv |= default_bool(a, CKA_NEVER_EXTRACTABLE, false);
	}
	if (cls == CKO_PRIVATE_KEY) {
		rv |= default_bool(a, CKA_SIGN_RECOVER, true);
		rv |= default_bool(a, CKA_ALWAYS_AUTHENTICATE, false);
	}
	return rv ? CKR_HOST_MEMORY : CKR_OK;
}

/* Rules that tie attributes of one object together. */
static CK_RV check_consistency(const struct fw_attrs *a)
{
	if (fw_attrs_bool(a, CKA_ALWAYS_AUTHENTICATE, false) &&
	    !fw_attrs_bool(a, CKA_PRIVATE, true))
		return CKR_TEMPLATE_INCONSISTENT;
	return CKR_OK;
}

/* Compare a key's CKA_CHECK_VALUE from the template with the engine's. */
static CK_RV settle_check_value(struct fw_attrs *a, const struct fw_attr *given)
{
	const struct fw_attr *computed = fw_attrs_find(a, CKA_CHECK_VALUE);

	if (!given)
		return CKR_OK;
	if (given->len == 0) {
		/* An empty value asks the token not to publish one. */
		fw_attrs_remove(a, CKA_CHECK_VALUE);
		return fw_attrs_set(a, CKA_CHECK_VALUE, NULL, 0);
	}
	if (computed && (computed->len != given->len ||
			 memcmp(computed->value, given->value, given->len)))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	return computed ? CKR_OK : fw_attrs_set(a, CKA_CHECK_VALUE, NULL, 0);
}

/*
 * Turn complete attributes into an unpublished object: a handle, a
 * CKA_UNIQUE_ID, and for keys the parsed key (which validates the
 * material) and the attributes the token derives from it.
 */
CK_RV fw_obj_build(struct fw_card *card, const struct fw_session *s,
		   CK_OBJECT_CLASS cls, struct fw_attrs *attrs,
		   struct fw_obj **out)
{
	struct fw_attr given = { 0 };
	bool had_cv = false;
	struct fw_key *key = NULL;
	struct fw_obj *o;
	uint64_t handle;
	char uid[32];
	CK_RV rv;

	rv = check_consistency(attrs);
	if (rv == CKR_OK)
		rv = check_access(card, s, fw_attrs_bool(attrs, CKA_TOKEN, false),
				  fw_attrs_bool(attrs, CKA_PRIVATE, true));
	if (rv != CKR_OK)
		return rv;
	if (cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY ||
	    cls == CKO_SECRET_KEY) {
		const struct fw_attr *cv = fw_attrs_find(attrs, CKA_CHECK_VALUE);

		if (cv) {
			had_cv = true;
			given = *cv;
			given.value = NULL;
			if (cv->len && !(given.value = malloc(cv->len)))
				return CKR_HOST_MEMORY;
			if (cv->len)
				memcpy(given.value, cv->value, cv->len);
			fw_attrs_remove(attrs, CKA_CHECK_VALUE);
		}
		rv = fw_key_load(attrs, &key);
		if (rv == CKR_OK)
			rv = fw_key_derived_attrs(key, attrs);
		if (rv == CKR_OK && cls == CKO_SECRET_KEY)
			rv = settle_check_value(attrs, had_cv ? &given : NULL);
		free(given.value);
		if (rv != CKR_OK) {
			if (key)
				fw_key_put(key);
			return rv;
		}
	}
	rv = fw_alloc_handle(card, &handle);
	if (rv == CKR_OK) {
		snprintf(uid, sizeof(uid), "%llu", (unsigned long long)handle);
		rv = fw_attrs_set(attrs, CKA_UNIQUE_ID, uid, strlen(uid));
	}
	o = rv == CKR_OK ? obj_new(handle, s->part, attrs) : NULL;
	if (!o) {
		if (key)
			fw_key_put(key);
		return rv == CKR_OK ? CKR_HOST_MEMORY : rv;
	}
	o->key = key;
	if (!o->token) {
		o->session = s->handle;
		o->app = s->app;
	}
	*out = o;
	return CKR_OK;
}

/*
 * Make new objects visible, all or none: token objects are committed to
 * the store (in one transaction) before any of them enters the table.
 * On failure the objects are freed.
 */
CK_RV fw_obj_publish(struct fw_card *card, struct fw_obj **objs, size_t n)
{
	return fw_obj_publish_ext(card, objs, n, 0, NULL, NULL);
}

CK_RV fw_obj_publish_ext(struct fw_card *card, struct fw_obj **objs, size_t n,
			 unsigned int part, fw_ext_edit_fn edit, void *ctx)
{
	struct fw_part_ext e = { 0 };
	bool token = edit != NULL;	/* the Luna record is in the store */
	CK_RV rv = CKR_OK;

	for (size_t i = 0; i < n; i++)
		token |= objs[i]->token;
	if (token)
		pthread_mutex_lock(&card->store_lock);
	pthread_mutex_lock(&card->lock);
	if (card->nobjects + n > FW_MAX_OBJECTS)
		rv = CKR_DEVICE_MEMORY;
	if (edit)
		e = card->ext[part];
	pthread_mutex_unlock(&card->lock);
	if (edit)
		edit(&e, ctx);
	if (rv == CKR_OK && token)
		rv = fw_store_put_objects_ext(card->store, n, objs, part,
					      edit ? &e : NULL);
	if (rv == CKR_OK) {
		pthread_mutex_lock(&card->lock);
		if (edit)	/* committed: memory follows the store */
			card->ext[part] = e;
		/* A session closed by another thread meanwhile takes its
		 * session objects with it: do not add orphans. */
		for (size_t i = 0; i < n; i++)
			if (!objs[i]->token &&
			    !fw_session_live_locked(card, objs[i]->session))
				rv = CKR_SESSION_CLOSED;
		for (size_t i = 0; rv == CKR_OK && i < n; i++)
			obj_link(card, objs[i]);
		pthread_mutex_unlock(&card->lock);
	}
	if (token)
		pthread_mutex_unlock(&card->store_lock);
	OPENSSL_cleanse(&e, sizeof(e));
	for (size_t i = 0; i < n; i++) {
		if (rv == CKR_OK)
			fw_obj_put(card, objs[i]);	/* the builder's reference */
		else
			obj_free(objs[i]);
	}
	return rv;
}

/* ---- C_CreateObject --------------------------------------------------- */

static CK_RV cert_complete(const struct fw_attrs *a)
{
	CK_ULONG type;
	const struct fw_attr *value, *url;
	CK_RV rv = fw_attrs_get_ulong(a, CKA_CERTIFICATE_TYPE, &type);

	if (rv != CKR_OK)
		return rv;
	if (type != CKC_X_509)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	value = fw_attrs_find(a, CKA_VALUE);
	url = fw_attrs_find(a, CKA_URL);
	if (!fw_attrs_has(a, CKA_SUBJECT) || !value)
		return CKR_TEMPLATE_INCOMPLETE;
	if (value->len == 0 && (!url || url->len == 0))
		return CKR_TEMPLATE_INCOMPLETE;
	return CKR_OK;
}

static CK_RV secret_value_len_ok(const struct fw_attrs *a)
{
	const struct fw_attr *v = fw_attrs_find(a, CKA_VALUE);
	CK_ULONG len;

	if (fw_attrs_get_ulong(a, CKA_VALUE_LEN, &len) != CKR_OK || !v)
		return CKR_OK;
	return len == v->len ? CKR_OK : CKR_TEMPLATE_INCONSISTENT;
}

CK_RV fw_create_object(struct fw_card *card, struct fw_session *s,
		       struct fw_attrs *tmpl, uint64_t *handle)
{
	CK_ULONG cls, kt = CK_UNAVAILABLE_INFORMATION;
	struct fw_obj *o;
	CK_RV rv;

	rv = fw_attrs_get_ulong(tmpl, CKA_CLASS, &cls);
	if (rv != CKR_OK)
		return rv;
	if (!class_bit(cls))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	if (class_bit(cls) & C_KEY) {
		rv = fw_attrs_get_ulong(tmpl, CKA_KEY_TYPE, &kt);
		if (rv != CKR_OK)
			return rv;
	}
	rv = fw_check_template(card, s, tmpl, cls, kt, FW_CREATE);
	if (rv != CKR_OK)
		return rv;
	switch (cls) {
	case CKO_DATA:
		rv = storage_defaults(tmpl, cls);
		if (rv == CKR_OK)
			rv = data_defaults(tmpl);
		break;
	case CKO_CERTIFICATE:
		rv = cert_complete(tmpl);
		if (rv == CKR_OK)
			rv = storage_defaults(tmpl, cls);
		if (rv == CKR_OK)
			rv = cert_defaults(tmpl);
		break;
	default:
		rv = cls == CKO_SECRET_KEY ? secret_value_len_ok(tmpl) : CKR_OK;
		if (rv == CKR_OK)
			rv = fw_key_defaults(tmpl, cls);
		break;
	}
	if (rv == CKR_OK)
		rv = fw_obj_build(card, s, cls, tmpl, &o);
	if (rv != CKR_OK)
		return rv;
	*handle = o->handle;
	return fw_obj_publish(card, &o, 1);
}

/* ---- C_CopyObject, C_SetAttributeValue -------------------------------- */

/*
 * May @at replace the object's current value?  On copy, the four special
 * attributes may change too (4.1.3).
 */
static CK_RV change_allowed(struct fw_card *card, const struct fw_session *s,
			    const struct fw_obj *o, const struct fw_attr *at,
			    bool copy)
{
	CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;
	const struct attr_info *ai;
	const struct fw_attr *cur = fw_attrs_find(&o->attrs, at->type);

	fw_attrs_get_ulong(&o->attrs, CKA_KEY_TYPE, &kt);
	ai = attr_lookup(at->type, o->cls, kt);
	if (!ai)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	if (!value_ok(ai, at))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	/* An empty CKA_CHECK_VALUE withdraws a key's check value (4.10). */
	if (at->type == CKA_CHECK_VALUE && o->cls == CKO_SECRET_KEY &&
	    at->len == 0)
		return CKR_OK;
	if (!(ai->flags & F_MOD) && !(copy && (ai->flags & F_COPY)))
		return CKR_ATTRIBUTE_READ_ONLY;
	if ((ai->flags & F_ONLY_TRUE) && value_true(cur) && !value_true(at))
		return CKR_ATTRIBUTE_READ_ONLY;
	if ((ai->flags & F_ONLY_FALSE) && cur && !value_true(cur) &&
	    value_true(at))
		return CKR_ATTRIBUTE_READ_ONLY;
	if ((ai->flags & F_SO_TRUE) && value_true(at) &&
	    fw_login_of(card, s->app, s->part) != CKU_SO)
		return CKR_ATTRIBUTE_READ_ONLY;
	return CKR_OK;
}

static CK_RV changes_allowed(struct fw_card *card, const struct fw_session *s,
			     const struct fw_obj *o,
			     const struct fw_attrs *tmpl, bool copy)
{
	CK_RV worst = CKR_OK;

	for (size_t i = 0; i < tmpl->n; i++) {
		CK_RV rv = change_allowed(card, s, o, &tmpl->v[i], copy);

		/* Report a type error before a value error before the rest. */
		if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
			return rv;
		if (rv != CKR_OK && worst != CKR_ATTRIBUTE_VALUE_INVALID)
			worst = rv;
	}
	return worst;
}

/* The object's attributes with @tmpl applied. */
static CK_RV merged_attrs(const struct fw_obj *o, const struct fw_attrs *tmpl,
			  struct fw_attrs *out)
{
	CK_RV rv = fw_attrs_copy(out, &o->attrs);

	if (rv == CKR_OK)
		rv = fw_attrs_merge(out, tmpl);
	if (rv != CKR_OK)
		fw_attrs_free(out);
	return rv;
}

CK_RV fw_copy_object(struct fw_card *card, struct fw_session *s,
		     uint64_t handle, const struct fw_attrs *tmpl,
		     uint64_t *out)
{
	struct fw_attrs attrs;
	struct fw_obj *o, *n;
	CK_RV rv = fw_obj_get(card, s, handle, &o);

	if (rv != CKR_OK)
		return rv;
	if (!fw_attrs_bool(&o->attrs, CKA_COPYABLE, true))
		rv = CKR_ACTION_PROHIBITED;
	if (rv == CKR_OK)
		rv = changes_allowed(card, s, o, tmpl, true);
	if (rv == CKR_OK)
		rv = merged_attrs(o, tmpl, &attrs);
	if (rv != CKR_OK) {
		fw_obj_put(card, o);
		return rv;
	}
	fw_attrs_remove(&attrs, CKA_UNIQUE_ID);
	rv = fw_obj_build(card, s, o->cls, &attrs, &n);
	fw_attrs_free(&attrs);
	fw_obj_put(card, o);
	if (rv != CKR_OK)
		return rv;
	*out = n->handle;
	return fw_obj_publish(card, &n, 1);
}

/*
 * Replace @old by @new under the same handle, committing token objects
 * first.  Fails with CKR_FUNCTION_CANCELED if @old is no longer the
 * current version (another thread changed or destroyed it).
 */
static CK_RV obj_replace(struct fw_card *card, struct fw_obj *old,
			 struct fw_obj *new)
{
	bool current;
	CK_RV rv = CKR_OK;

	if (old->token)
		pthread_mutex_lock(&card->store_lock);
	pthread_mutex_lock(&card->lock);
	current = old->live;
	pthread_mutex_unlock(&card->lock);
	if (!current)
		rv = CKR_FUNCTION_CANCELED;
	if (rv == CKR_OK && old->token)
		rv = fw_store_put_objects(card->store, 1, &new);
	if (rv == CKR_OK) {
		pthread_mutex_lock(&card->lock);
		if (old->key && !new->key)
			new->key = fw_key_get(old->key);
		obj_unlink(card, old);
		obj_link(card, new);
		pthread_mutex_unlock(&card->lock);
	}
	if (old->token)
		pthread_mutex_unlock(&card->store_lock);
	return rv;
}

static CK_RV set_once(struct fw_card *card, struct fw_session *s,
		      uint64_t handle, const struct fw_attrs *tmpl)
{
	struct fw_attrs attrs;
	struct fw_obj *o, *n;
	CK_RV rv = fw_obj_get(card, s, handle, &o);

	if (rv != CKR_OK)
		return rv;
	if (o->token && !(s->flags & CKF_RW_SESSION))
		rv = CKR_SESSION_READ_ONLY;
	else if (!fw_attrs_bool(&o->attrs, CKA_MODIFIABLE, true) ||
		 (o->cls == CKO_CERTIFICATE &&
		  fw_attrs_bool(&o->attrs, CKA_TRUSTED, false)))
		rv = CKR_ACTION_PROHIBITED;
	if (rv == CKR_OK)
		rv = changes_allowed(card, s, o, tmpl, false);
	if (rv == CKR_OK)
		rv = merged_attrs(o, tmpl, &attrs);
	if (rv == CKR_OK) {
		n = obj_new(o->handle, o->part, &attrs);
		if (!n) {
			fw_attrs_free(&attrs);
			rv = CKR_HOST_MEMORY;
		}
	}
	if (rv == CKR_OK) {
		n->session = o->session;
		n->app = o->app;
		n->refs = 0;
		rv = obj_replace(card, o, n);
		if (rv != CKR_OK)
			obj_free(n);
	}
	fw_obj_put(card, o);
	return rv;
}

CK_RV fw_set_attributes(struct fw_card *card, struct fw_session *s,
			uint64_t handle, const struct fw_attrs *tmpl)
{
	CK_RV rv;
	int tries = 0;

	do
		rv = set_once(card, s, handle, tmpl);
	while (rv == CKR_FUNCTION_CANCELED && ++tries < 8);
	return rv == CKR_FUNCTION_CANCELED ? CKR_OBJECT_HANDLE_INVALID : rv;
}

/* ---- C_DestroyObject -------------------------------------------------- */

static void drop_handle(struct fw_card *card, uint64_t handle)
{
	struct fw_obj *cur;

	pthread_mutex_lock(&card->lock);
	cur = obj_lookup(card, handle);
	if (cur)
		obj_unlink(card, cur);
	pthread_mutex_unlock(&card->lock);
}

CK_RV fw_destroy_object(struct fw_card *card, struct fw_session *s,
			uint64_t handle)
{
	struct fw_obj *o;
	CK_RV rv = fw_obj_get(card, s, handle, &o);

	if (rv != CKR_OK)
		return rv;
	if (o->token && !(s->flags & CKF_RW_SESSION))
		rv = CKR_SESSION_READ_ONLY;
	else if (!fw_attrs_bool(&o->attrs, CKA_DESTROYABLE, true))
		rv = CKR_ACTION_PROHIBITED;
	if (rv == CKR_OK && o->token) {
		pthread_mutex_lock(&card->store_lock);
		rv = fw_store_delete_object(card->store, handle);
		if (rv == CKR_OK)
			drop_handle(card, handle);
		pthread_mutex_unlock(&card->store_lock);
	} else if (rv == CKR_OK) {
		drop_handle(card, handle);
	}
	fw_obj_put(card, o);
	return rv;
}

/* ---- C_GetAttributeValue, C_GetObjectSize ----------------------------- */

static bool hidden(const struct fw_obj *o, CK_ATTRIBUTE_TYPE type)
{
	if (o->cls != CKO_PRIVATE_KEY && o->cls != CKO_SECRET_KEY)
		return false;
	if (!fw_attr_is_sensitive(type))
		return false;
	return fw_attrs_bool(&o->attrs, CKA_SENSITIVE, true) ||
	       !fw_attrs_bool(&o->attrs, CKA_EXTRACTABLE, false);
}

/*
 * Answer a query per 5.7.5: every entry is processed; the rv says the
 * worst thing that happened, sensitivity first, then unknown attributes,
 * then short buffers.
 */
CK_RV fw_get_attributes(struct fw_card *card, struct fw_session *s,
			uint64_t handle, struct phsm_reader *query,
			uint32_t count, struct phsm_writer *w)
{
	bool sens = false, invalid = false, small = false;
	struct phsm_attr_view q;
	struct fw_obj *o;
	size_t mark;
	CK_RV rv = fw_obj_get(card, s, handle, &o);

	if (rv != CKR_OK)
		return rv;
	mark = phsm_put_attrs_begin(w);
	for (uint32_t i = 0; i < count && phsm_next_attr(query, &q); i++) {
		const struct fw_attr *at = fw_attrs_find(&o->attrs, q.type);

		if (at && hidden(o, q.type)) {
			sens = true;
			phsm_put_attr(w, q.type, PHSM_ATTR_F_UNAVAILABLE, 0, NULL);
		} else if (!at) {
			invalid = true;
			phsm_put_attr(w, q.type, PHSM_ATTR_F_UNAVAILABLE, 0, NULL);
		} else if (q.flags & PHSM_ATTR_F_QUERY) {
			phsm_put_attr(w, q.type, PHSM_ATTR_F_LENGTH, at->len, NULL);
		} else if (q.len >= at->len) {
			phsm_put_attr(w, q.type, PHSM_ATTR_F_VALUE, at->len,
				      at->value);
		} else {
			small = true;
			phsm_put_attr(w, q.type, PHSM_ATTR_F_UNAVAILABLE, 0, NULL);
		}
	}
	phsm_put_attrs_end(w, mark);
	fw_obj_put(card, o);
	if (sens)
		return CKR_ATTRIBUTE_SENSITIVE;
	if (invalid)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	return small ? CKR_BUFFER_TOO_SMALL : CKR_OK;
}

CK_RV fw_object_size(struct fw_card *card, struct fw_session *s,
		     uint64_t handle, uint64_t *size)
{
	struct fw_obj *o;
	CK_RV rv = fw_obj_get(card, s, handle, &o);

	if (rv != CKR_OK)
		return rv;
	*size = 0;
	for (size_t i = 0; i < o->attrs.n; i++)
		*size += sizeof(struct phsm_attr) + o->attrs.v[i].len;
	fw_obj_put(card, o);
	return CKR_OK;
}

/* ---- searching -------------------------------------------------------- */

bool fw_obj_matches(const struct fw_obj *o, const struct fw_attrs *tmpl)
{
	for (size_t i = 0; i < tmpl->n; i++) {
		const struct fw_attr *want = &tmpl->v[i];
		const struct fw_attr *have = fw_attrs_find(&o->attrs, want->type);

		if (!have || have->len != want->len ||
		    (want->len && memcmp(have->value, want->value, want->len)))
			return false;
	}
	return true;
}

static int cmp_handle(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

CK_RV fw_find_init(struct fw_card *card, struct fw_session *s,
		   const struct fw_attrs *tmpl)
{
	uint64_t *found = NULL;
	size_t n = 0, cap;
	CK_RV rv = CKR_OK;

	if (s->find_active)
		return CKR_OPERATION_ACTIVE;
	pthread_mutex_lock(&card->lock);
	cap = card->nobjects;
	found = malloc((cap ? cap : 1) * sizeof(*found));
	if (!found) {
		rv = CKR_HOST_MEMORY;
	} else {
		for (size_t b = 0; b < FW_BUCKETS; b++)
			for (struct fw_obj *o = card->objects[b]; o; o = o->next)
				if (n < cap && fw_obj_visible(card, s, o) &&
				    fw_obj_matches(o, tmpl))
					found[n++] = o->handle;
	}
	pthread_mutex_unlock(&card->lock);
	if (rv != CKR_OK)
		return rv;
	qsort(found, n, sizeof(*found), cmp_handle);
	s->found = found;
	s->nfound = n;
	s->found_pos = 0;
	s->find_active = true;
	return CKR_OK;
}

/* ---- helpers for the key functions ------------------------------------ */

/* Do two templates give the same attribute different values? */
bool fw_tmpl_conflicts(const struct fw_attrs *a, const struct fw_attrs *b)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct fw_attr *x = &a->v[i];
		const struct fw_attr *y = fw_attrs_find(b, x->type);

		if (y && (x->len != y->len ||
			  (x->len && memcmp(x->value, y->value, x->len))))
			return true;
	}
	return false;
}

/* CKA_ALLOWED_MECHANISMS: absent or empty allows every mechanism. */
bool fw_mech_allowed(const struct fw_obj *key, CK_MECHANISM_TYPE mech)
{
	const struct fw_attr *a = fw_attrs_find(&key->attrs,
						CKA_ALLOWED_MECHANISMS);

	if (!a || a->len == 0)
		return true;
	for (size_t i = 0; i + 8 <= a->len; i += 8)
		if (fw_get_le64(a->value + i) == mech)
			return true;
	return false;
}
