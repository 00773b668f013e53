// SPDX-License-Identifier: MIT
/*
 * Key management commands: C_GenerateKey, C_GenerateKeyPair, C_WrapKey,
 * C_UnwrapKey, C_DeriveKey, and the random number generator.
 *
 * Every command that makes a key follows the same path: check the
 * caller's template for the class and key type (fw_check_template),
 * add the token's defaults, let the engine produce the material, set the
 * attributes only the token may set (CKA_LOCAL, CKA_KEY_GEN_MECHANISM,
 * CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE), then build and publish.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "internal.h"

static bool decoded(struct fw_req *rq)
{
	return phsm_reader_done(rq->r);
}

/* Does the mechanism exist and can it do @flag? */
static CK_RV mech_can(CK_MECHANISM_TYPE type, CK_FLAGS flag)
{
	const struct fw_mech_desc *d = fw_mech_find(type);

	return d && (d->flags & flag) ? CKR_OK : CKR_MECHANISM_INVALID;
}

/* The key type a generation mechanism makes, or ~0 if we do not know. */
static CK_KEY_TYPE keytype_of_mech(CK_MECHANISM_TYPE type)
{
	switch (type) {
	case CKM_AES_KEY_GEN:
		return CKK_AES;
	case CKM_GENERIC_SECRET_KEY_GEN:
		return CKK_GENERIC_SECRET;
	case CKM_RSA_PKCS_KEY_PAIR_GEN:
		return CKK_RSA;
	case CKM_EC_KEY_PAIR_GEN:
		return CKK_EC;
	case CKM_EC_EDWARDS_KEY_PAIR_GEN:
		return CKK_EC_EDWARDS;
	case CKM_EC_MONTGOMERY_KEY_PAIR_GEN:
		return CKK_EC_MONTGOMERY;
	default:
		return CK_UNAVAILABLE_INFORMATION;
	}
}

/*
 * The class and key type a template asks for: a class other than @cls,
 * or a key type other than @want (when known), is inconsistent (5.18).
 */
static CK_RV template_class(const struct fw_attrs *tmpl, CK_OBJECT_CLASS cls,
			    CK_KEY_TYPE want, CK_KEY_TYPE *kt)
{
	CK_ULONG v;
	CK_RV rv = fw_attrs_get_ulong(tmpl, CKA_CLASS, &v);

	if (rv == CKR_ATTRIBUTE_VALUE_INVALID)
		return rv;
	if (rv == CKR_OK && v != cls)
		return CKR_TEMPLATE_INCONSISTENT;
	*kt = want;
	rv = fw_attrs_get_ulong(tmpl, CKA_KEY_TYPE, &v);
	if (rv == CKR_ATTRIBUTE_VALUE_INVALID)
		return rv;
	if (rv == CKR_OK) {
		if (want != CK_UNAVAILABLE_INFORMATION && v != want)
			return CKR_TEMPLATE_INCONSISTENT;
		*kt = v;
	}
	return CKR_OK;
}

/* The caller's template with the token's defaults, for the engine. */
static CK_RV with_defaults(const struct fw_attrs *tmpl, CK_OBJECT_CLASS cls,
			   struct fw_attrs *out)
{
	CK_RV rv = fw_attrs_copy(out, tmpl);

	if (rv == CKR_OK)
		rv = fw_key_defaults(out, cls);
	if (rv == CKR_OK)
		rv = fw_attrs_set_ulong(out, CKA_CLASS, cls);
	if (rv != CKR_OK)
		fw_attrs_free(out);
	return rv;
}

/* Add the engine's material; its class and type must be the template's. */
static CK_RV add_material(struct fw_attrs *a, const struct fw_attrs *material)
{
	CK_ULONG want, got;

	if (fw_attrs_get_ulong(a, CKA_KEY_TYPE, &want) == CKR_OK &&
	    fw_attrs_get_ulong(material, CKA_KEY_TYPE, &got) == CKR_OK &&
	    want != got)
		return CKR_TEMPLATE_INCONSISTENT;
	return fw_attrs_merge(a, material);
}

/* The attributes only the token sets, for a key made by @how. */
static CK_RV set_origin(struct fw_attrs *a, CK_OBJECT_CLASS cls, bool local,
			CK_MECHANISM_TYPE gen_mech, bool always_sensitive,
			bool never_extractable)
{
	CK_RV rv = fw_attrs_set_bool(a, CKA_LOCAL, local);

	if (rv == CKR_OK)
		rv = fw_attrs_set_ulong(a, CKA_KEY_GEN_MECHANISM, gen_mech);
	if (rv == CKR_OK && cls != CKO_PUBLIC_KEY)
		rv = fw_attrs_set_bool(a, CKA_ALWAYS_SENSITIVE, always_sensitive);
	if (rv == CKR_OK && cls != CKO_PUBLIC_KEY)
		rv = fw_attrs_set_bool(a, CKA_NEVER_EXTRACTABLE,
				       never_extractable);
	return rv;
}

/* Generated keys: sensitive and unextractable since birth, if so born. */
static CK_RV set_generated(struct fw_attrs *a, CK_OBJECT_CLASS cls,
			   CK_MECHANISM_TYPE mech)
{
	return set_origin(a, cls, true, mech,
			  fw_attrs_bool(a, CKA_SENSITIVE, false),
			  !fw_attrs_bool(a, CKA_EXTRACTABLE, true));
}

/* Pre-check what fw_obj_build() would refuse, before costly key work. */
static CK_RV access_ok(struct fw_card *card, const struct fw_session *s,
		       const struct fw_attrs *a)
{
	if (fw_attrs_bool(a, CKA_TOKEN, false) &&
	    !(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	if (fw_attrs_bool(a, CKA_PRIVATE, true) &&
	    fw_login_of(card, s->app, s->part) != CKU_USER)
		return CKR_USER_NOT_LOGGED_IN;
	return CKR_OK;
}

/* Build and publish one key; its handle goes into the answer. */
static CK_RV make_key(struct fw_req *rq, struct fw_session *s,
		      CK_OBJECT_CLASS cls, struct fw_attrs *attrs)
{
	struct fw_obj *o;
	CK_RV rv = fw_obj_build(rq->card, s, cls, attrs, &o);
	uint64_t handle;

	if (rv != CKR_OK)
		return rv;
	handle = o->handle;
	rv = fw_obj_publish(rq->card, &o, 1);
	if (rv == CKR_OK)
		phsm_put_u64(rq->w, handle);
	return rv;
}

/* ---- C_GenerateKey ---------------------------------------------------- */

static CK_RV generate_key(struct fw_req *rq, struct fw_session *s,
			  const struct fw_mech *m, const struct fw_attrs *tmpl)
{
	struct fw_attrs attrs, material = { 0 };
	CK_KEY_TYPE kt;
	CK_RV rv = mech_can(m->type, CKF_GENERATE);

	if (rv == CKR_OK)
		rv = template_class(tmpl, CKO_SECRET_KEY,
				    keytype_of_mech(m->type), &kt);
	if (rv == CKR_OK)
		rv = fw_check_template(rq->card, s, tmpl, CKO_SECRET_KEY, kt,
				       FW_GENERATE);
	if (rv != CKR_OK)
		return rv;
	rv = with_defaults(tmpl, CKO_SECRET_KEY, &attrs);
	if (rv != CKR_OK)
		return rv;
	rv = access_ok(rq->card, s, &attrs);
	if (rv == CKR_OK)
		rv = fw_generate_key(m, &attrs, &material);
	if (rv == CKR_OK)
		rv = add_material(&attrs, &material);
	if (rv == CKR_OK)
		rv = set_generated(&attrs, CKO_SECRET_KEY, m->type);
	if (rv == CKR_OK)
		rv = make_key(rq, s, CKO_SECRET_KEY, &attrs);
	fw_attrs_free(&material);
	fw_attrs_free(&attrs);
	return rv;
}

CK_RV fw_h_generate_key(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct phsm_reader param;
	struct fw_attrs tmpl;
	struct fw_session *s;
	struct fw_mech m;
	uint64_t mech;
	CK_RV rv;

	phsm_get_mech(rq->r, &mech, &param);
	rv = fw_get_template(rq->r, &tmpl);
	if (!decoded(rq) || rv != CKR_OK)
		goto out;
	rv = fw_session_mech_get(rq, sess, mech, &param, &s, &m);
	if (rv == CKR_OK) {
		rv = generate_key(rq, s, &m, &tmpl);
		fw_session_mech_put(rq, s, &m);
	}
out:
	fw_attrs_free(&tmpl);
	return rv;
}

/* ---- C_GenerateKeyPair ------------------------------------------------ */

struct pair {
	struct fw_attrs pub, priv;		/* template + defaults */
	struct fw_attrs pub_mat, priv_mat;	/* from the engine */
	struct fw_obj *objs[2];
};

static void pair_free(struct pair *p)
{
	fw_attrs_free(&p->pub);
	fw_attrs_free(&p->priv);
	fw_attrs_free(&p->pub_mat);
	fw_attrs_free(&p->priv_mat);
}

static CK_RV pair_templates(struct fw_req *rq, struct fw_session *s,
			    const struct fw_mech *m,
			    const struct fw_attrs *pub_t,
			    const struct fw_attrs *priv_t, struct pair *p)
{
	CK_KEY_TYPE want = keytype_of_mech(m->type), kt_pub, kt_priv;
	CK_RV rv = mech_can(m->type, CKF_GENERATE_KEY_PAIR);

	if (rv == CKR_OK)
		rv = template_class(pub_t, CKO_PUBLIC_KEY, want, &kt_pub);
	if (rv == CKR_OK)
		rv = template_class(priv_t, CKO_PRIVATE_KEY, want, &kt_priv);
	if (rv == CKR_OK && kt_pub != kt_priv)
		rv = CKR_TEMPLATE_INCONSISTENT;
	if (rv == CKR_OK)
		rv = fw_check_template(rq->card, s, pub_t, CKO_PUBLIC_KEY,
				       kt_pub, FW_GENERATE);
	if (rv == CKR_OK)
		rv = fw_check_template(rq->card, s, priv_t, CKO_PRIVATE_KEY,
				       kt_priv, FW_GENERATE);
	if (rv == CKR_OK)
		rv = with_defaults(pub_t, CKO_PUBLIC_KEY, &p->pub);
	if (rv == CKR_OK)
		rv = with_defaults(priv_t, CKO_PRIVATE_KEY, &p->priv);
	if (rv == CKR_OK)
		rv = access_ok(rq->card, s, &p->pub);
	if (rv == CKR_OK)
		rv = access_ok(rq->card, s, &p->priv);
	return rv;
}

static CK_RV generate_pair(struct fw_req *rq, struct fw_session *s,
			   const struct fw_mech *m,
			   const struct fw_attrs *pub_t,
			   const struct fw_attrs *priv_t)
{
	struct pair p = { 0 };
	uint64_t hpub, hpriv;
	CK_RV rv = pair_templates(rq, s, m, pub_t, priv_t, &p);

	if (rv == CKR_OK)
		rv = fw_generate_key_pair(m, &p.pub, &p.priv, &p.pub_mat,
					  &p.priv_mat);
	if (rv == CKR_OK)
		rv = add_material(&p.pub, &p.pub_mat);
	if (rv == CKR_OK)
		rv = add_material(&p.priv, &p.priv_mat);
	if (rv == CKR_OK)
		rv = set_generated(&p.pub, CKO_PUBLIC_KEY, m->type);
	if (rv == CKR_OK)
		rv = set_generated(&p.priv, CKO_PRIVATE_KEY, m->type);
	if (rv == CKR_OK)
		rv = fw_obj_build(rq->card, s, CKO_PUBLIC_KEY, &p.pub, &p.objs[0]);
	if (rv == CKR_OK) {
		rv = fw_obj_build(rq->card, s, CKO_PRIVATE_KEY, &p.priv,
				  &p.objs[1]);
		if (rv != CKR_OK)
			fw_obj_put(rq->card, p.objs[0]);
	}
	if (rv == CKR_OK) {
		hpub = p.objs[0]->handle;
		hpriv = p.objs[1]->handle;
		/* Both keys or neither (5.18). */
		rv = fw_obj_publish(rq->card, p.objs, 2);
	}
	if (rv == CKR_OK) {
		phsm_put_u64(rq->w, hpub);
		phsm_put_u64(rq->w, hpriv);
	}
	pair_free(&p);
	return rv;
}

CK_RV fw_h_generate_key_pair(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct phsm_reader param;
	struct fw_attrs pub, priv = { 0 };
	struct fw_session *s;
	struct fw_mech m;
	uint64_t mech;
	CK_RV rv, rv2;

	phsm_get_mech(rq->r, &mech, &param);
	rv = fw_get_template(rq->r, &pub);
	rv2 = fw_get_template(rq->r, &priv);
	if (rv == CKR_OK)
		rv = rv2;
	if (!decoded(rq) || rv != CKR_OK)
		goto out;
	rv = fw_session_mech_get(rq, sess, mech, &param, &s, &m);
	if (rv == CKR_OK) {
		rv = generate_pair(rq, s, &m, &pub, &priv);
		fw_session_mech_put(rq, s, &m);
	}
out:
	fw_attrs_free(&pub);
	fw_attrs_free(&priv);
	return rv;
}

/* ---- C_WrapKey -------------------------------------------------------- */

/* A key's CKA_WRAP_TEMPLATE (or other nested template), if it has one. */
static CK_RV nested_template(const struct fw_obj *o, CK_ATTRIBUTE_TYPE type,
			     struct fw_attrs *out, bool *present)
{
	const struct fw_attr *a = fw_attrs_find(&o->attrs, type);

	memset(out, 0, sizeof(*out));
	*present = a && a->len;
	if (!*present)
		return CKR_OK;
	return fw_attrs_deserialize(a->value, a->len, out) ? CKR_OK
							    : CKR_GENERAL_ERROR;
}

/* May @target be wrapped with @wrapping (5.18 C_WrapKey, 4.10)? */
static CK_RV wrap_allowed(const struct fw_obj *wrapping,
			  const struct fw_obj *target, CK_MECHANISM_TYPE mech)
{
	struct fw_attrs wt;
	bool has_wt;
	CK_RV rv = fw_key_usage_ok(wrapping, CKA_WRAP, mech);

	if (rv != CKR_OK)
		return rv;
	if (target->cls != CKO_SECRET_KEY && target->cls != CKO_PRIVATE_KEY)
		return CKR_KEY_NOT_WRAPPABLE;
	if (!fw_attrs_bool(&target->attrs, CKA_EXTRACTABLE, false))
		return CKR_KEY_UNEXTRACTABLE;
	if (fw_attrs_bool(&target->attrs, CKA_WRAP_WITH_TRUSTED, false) &&
	    !fw_attrs_bool(&wrapping->attrs, CKA_TRUSTED, false))
		return CKR_KEY_NOT_WRAPPABLE;
	rv = nested_template(wrapping, CKA_WRAP_TEMPLATE, &wt, &has_wt);
	if (rv == CKR_OK && has_wt && !fw_obj_matches(target, &wt))
		rv = CKR_KEY_HANDLE_INVALID;
	fw_attrs_free(&wt);
	return rv;
}

struct wrap_call {
	const struct fw_mech *m;
	struct fw_key *wrapping;
	struct fw_key *key;
	const struct fw_attrs *key_obj;
};

static CK_RV call_wrap(void *ctx, uint8_t *out, size_t *out_len)
{
	struct wrap_call *c = ctx;

	return fw_wrap(c->m, c->wrapping, c->key, c->key_obj, out, out_len);
}

static CK_RV wrap_key(struct fw_req *rq, struct fw_session *s,
		      const struct fw_mech *m, uint64_t wh, uint64_t kh,
		      uint64_t outcap)
{
	struct fw_obj *wo = NULL, *ko = NULL;
	struct wrap_call c = { .m = m };
	bool query;
	CK_RV rv = mech_can(m->type, CKF_WRAP);

	if (rv == CKR_OK)
		rv = fw_key_object(rq->card, s, wh,
				   CKR_WRAPPING_KEY_HANDLE_INVALID, &wo);
	if (rv == CKR_OK)
		rv = fw_key_object(rq->card, s, kh, CKR_KEY_HANDLE_INVALID, &ko);
	if (rv == CKR_OK)
		rv = wrap_allowed(wo, ko, m->type);
	if (rv == CKR_OK)
		rv = fw_obj_key(rq->card, wo, &c.wrapping);
	if (rv == CKR_OK)
		rv = fw_obj_key(rq->card, ko, &c.key);
	if (rv == CKR_OK) {
		c.key_obj = &ko->attrs;
		rv = fw_produce(rq, outcap, call_wrap, &c, &query);
	}
	if (c.wrapping)
		fw_key_put(c.wrapping);
	if (c.key)
		fw_key_put(c.key);
	fw_obj_put(rq->card, wo);
	fw_obj_put(rq->card, ko);
	return rv;
}

CK_RV fw_h_wrap_key(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct phsm_reader param;
	struct fw_session *s;
	struct fw_mech m;
	uint64_t mech, wrapping, key, outcap;
	CK_RV rv;

	phsm_get_mech(rq->r, &mech, &param);
	wrapping = phsm_get_u64(rq->r);
	key = phsm_get_u64(rq->r);
	outcap = phsm_get_u64(rq->r);
	if (!decoded(rq))
		return CKR_OK;
	rv = fw_session_mech_get(rq, sess, mech, &param, &s, &m);
	if (rv == CKR_OK) {
		rv = wrap_key(rq, s, &m, wrapping, key, outcap);
		fw_session_mech_put(rq, s, &m);
	}
	return rv;
}

/* ---- C_UnwrapKey, C_DeriveKey ----------------------------------------- */

/*
 * The template of a key made from another key: the base key's
 * CKA_UNWRAP_TEMPLATE or CKA_DERIVE_TEMPLATE first, the caller's after
 * it; the two may not disagree (5.18).
 */
static CK_RV applied_template(const struct fw_obj *base,
			      CK_ATTRIBUTE_TYPE type,
			      const struct fw_attrs *tmpl,
			      struct fw_attrs *out)
{
	bool present;
	CK_RV rv = nested_template(base, type, out, &present);

	if (rv != CKR_OK)
		return rv;
	if (present && fw_tmpl_conflicts(out, tmpl))
		rv = CKR_TEMPLATE_INCONSISTENT;
	if (rv == CKR_OK)
		rv = fw_attrs_merge(out, tmpl);
	if (rv != CKR_OK)
		fw_attrs_free(out);
	return rv;
}

/* Class and key type of an unwrapped or derived key's template. */
static CK_RV made_key_class(const struct fw_attrs *t, bool unwrap,
			    CK_OBJECT_CLASS *cls, CK_KEY_TYPE *kt)
{
	CK_ULONG v;
	CK_RV rv = fw_attrs_get_ulong(t, CKA_CLASS, &v);

	if (rv == CKR_TEMPLATE_INCOMPLETE && !unwrap) {
		v = CKO_SECRET_KEY;
		rv = CKR_OK;
	}
	if (rv != CKR_OK)
		return rv;
	if (v != CKO_SECRET_KEY && (!unwrap || v != CKO_PRIVATE_KEY))
		return CKR_TEMPLATE_INCONSISTENT;
	*cls = v;
	rv = fw_attrs_get_ulong(t, CKA_KEY_TYPE, &v);
	if (rv == CKR_TEMPLATE_INCOMPLETE && !unwrap) {
		v = CKK_GENERIC_SECRET;
		rv = CKR_OK;
	}
	*kt = v;
	return rv;
}

/* Template checks and defaults shared by unwrap and derive. */
static CK_RV made_key_attrs(struct fw_req *rq, struct fw_session *s,
			    const struct fw_attrs *t, enum fw_create_how how,
			    CK_OBJECT_CLASS *cls, struct fw_attrs *out)
{
	CK_KEY_TYPE kt;
	CK_RV rv = made_key_class(t, how == FW_UNWRAP, cls, &kt);

	if (rv == CKR_OK)
		rv = fw_check_template(rq->card, s, t, *cls, kt, how);
	if (rv == CKR_OK)
		rv = with_defaults(t, *cls, out);
	if (rv == CKR_OK && (rv = fw_attrs_set_ulong(out, CKA_KEY_TYPE, kt)))
		fw_attrs_free(out);
	if (rv == CKR_OK && (rv = access_ok(rq->card, s, out)))
		fw_attrs_free(out);
	return rv;
}

static CK_RV unwrap_key(struct fw_req *rq, struct fw_session *s,
			const struct fw_mech *m, uint64_t uh,
			const uint8_t *wrapped, size_t wrapped_len,
			const struct fw_attrs *tmpl)
{
	struct fw_attrs t = { 0 }, attrs = { 0 }, material = { 0 };
	struct fw_key *ukey = NULL;
	struct fw_obj *uo = NULL;
	CK_OBJECT_CLASS cls;
	CK_RV rv = mech_can(m->type, CKF_UNWRAP);

	if (rv == CKR_OK)
		rv = fw_key_object(rq->card, s, uh,
				   CKR_UNWRAPPING_KEY_HANDLE_INVALID, &uo);
	if (rv == CKR_OK)
		rv = fw_key_usage_ok(uo, CKA_UNWRAP, m->type);
	if (rv == CKR_OK)
		rv = applied_template(uo, CKA_UNWRAP_TEMPLATE, tmpl, &t);
	if (rv == CKR_OK)
		rv = made_key_attrs(rq, s, &t, FW_UNWRAP, &cls, &attrs);
	if (rv == CKR_OK)
		rv = fw_obj_key(rq->card, uo, &ukey);
	if (rv == CKR_OK) {
		CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;

		fw_attrs_get_ulong(&attrs, CKA_KEY_TYPE, &kt);
		rv = fw_unwrap(m, ukey, wrapped, wrapped_len, cls, kt, &attrs,
			       &material);
	}
	if (rv == CKR_OK)
		rv = add_material(&attrs, &material);
	/* Unwrapped keys were outside the card: never "always" anything. */
	if (rv == CKR_OK)
		rv = set_origin(&attrs, cls, false, CK_UNAVAILABLE_INFORMATION,
				false, false);
	if (rv == CKR_OK)
		rv = make_key(rq, s, cls, &attrs);
	if (ukey)
		fw_key_put(ukey);
	fw_obj_put(rq->card, uo);
	fw_attrs_free(&t);
	fw_attrs_free(&attrs);
	fw_attrs_free(&material);
	return rv;
}

CK_RV fw_h_unwrap_key(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct phsm_reader param;
	struct fw_attrs tmpl = { 0 };
	struct fw_session *s;
	struct fw_mech m;
	uint64_t mech, unwrapping;
	const uint8_t *wrapped;
	size_t wrapped_len;
	CK_RV rv;

	phsm_get_mech(rq->r, &mech, &param);
	unwrapping = phsm_get_u64(rq->r);
	wrapped = phsm_get_bytes(rq->r, &wrapped_len);
	rv = fw_get_template(rq->r, &tmpl);
	if (!decoded(rq) || rv != CKR_OK)
		goto out;
	rv = fw_session_mech_get(rq, sess, mech, &param, &s, &m);
	if (rv == CKR_OK) {
		rv = unwrap_key(rq, s, &m, unwrapping, wrapped, wrapped_len,
				&tmpl);
		fw_session_mech_put(rq, s, &m);
	}
out:
	fw_attrs_free(&tmpl);
	return rv;
}

static CK_RV derive_key(struct fw_req *rq, struct fw_session *s,
			const struct fw_mech *m, uint64_t bh,
			const struct fw_attrs *tmpl)
{
	struct fw_attrs t = { 0 }, attrs = { 0 }, material = { 0 };
	struct fw_key *bkey = NULL;
	struct fw_obj *bo = NULL;
	CK_OBJECT_CLASS cls;
	CK_RV rv = mech_can(m->type, CKF_DERIVE);

	if (rv == CKR_OK)
		rv = fw_key_object(rq->card, s, bh, CKR_KEY_HANDLE_INVALID, &bo);
	if (rv == CKR_OK)
		rv = fw_key_usage_ok(bo, CKA_DERIVE, m->type);
	if (rv == CKR_OK)
		rv = applied_template(bo, CKA_DERIVE_TEMPLATE, tmpl, &t);
	if (rv == CKR_OK)
		rv = made_key_attrs(rq, s, &t, FW_DERIVE, &cls, &attrs);
	if (rv == CKR_OK)
		rv = fw_obj_key(rq->card, bo, &bkey);
	if (rv == CKR_OK)
		rv = fw_derive(m, bkey, &attrs, &material);
	if (rv == CKR_OK)
		rv = add_material(&attrs, &material);
	/* A derived key is as protected as its base and itself together. */
	if (rv == CKR_OK)
		rv = set_origin(&attrs, cls, false, CK_UNAVAILABLE_INFORMATION,
				fw_attrs_bool(&bo->attrs, CKA_ALWAYS_SENSITIVE,
					      false) &&
				fw_attrs_bool(&attrs, CKA_SENSITIVE, false),
				fw_attrs_bool(&bo->attrs, CKA_NEVER_EXTRACTABLE,
					      false) &&
				!fw_attrs_bool(&attrs, CKA_EXTRACTABLE, true));
	if (rv == CKR_OK)
		rv = make_key(rq, s, cls, &attrs);
	if (bkey)
		fw_key_put(bkey);
	fw_obj_put(rq->card, bo);
	fw_attrs_free(&t);
	fw_attrs_free(&attrs);
	fw_attrs_free(&material);
	return rv;
}

CK_RV fw_h_derive_key(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct phsm_reader param;
	struct fw_attrs tmpl = { 0 };
	struct fw_session *s;
	struct fw_mech m;
	uint64_t mech, base;
	CK_RV rv;

	phsm_get_mech(rq->r, &mech, &param);
	base = phsm_get_u64(rq->r);
	rv = fw_get_template(rq->r, &tmpl);
	if (!decoded(rq) || rv != CKR_OK)
		goto out;
	rv = fw_session_mech_get(rq, sess, mech, &param, &s, &m);
	if (rv == CKR_OK) {
		rv = derive_key(rq, s, &m, base, &tmpl);
		fw_session_mech_put(rq, s, &m);
	}
out:
	fw_attrs_free(&tmpl);
	return rv;
}

/* ---- random numbers --------------------------------------------------- */

/* The generator is the card's: the session only has to be the caller's. */
static CK_RV check_session(struct fw_req *rq, uint64_t sess)
{
	struct fw_session *s;
	CK_RV rv = fw_session_get(rq->card, rq->app, sess, &s);

	if (rv == CKR_OK)
		fw_session_put(rq->card, s);
	return rv;
}

CK_RV fw_h_seed_random(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	size_t len;
	const uint8_t *seed = phsm_get_bytes(rq->r, &len);
	CK_RV rv;

	if (!decoded(rq))
		return CKR_OK;
	rv = check_session(rq, sess);
	if (rv != CKR_OK)
		return rv;
	if (len > FW_RANDOM_MAX)
		return CKR_ARGUMENTS_BAD;
	/* Mixed in, credited with no entropy: a seed cannot weaken it. */
	if (len)
		RAND_add(seed, (int)len, 0.0);
	return CKR_OK;
}

CK_RV fw_h_generate_random(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t len = phsm_get_u64(rq->r);
	uint8_t *buf;
	CK_RV rv;

	if (!decoded(rq))
		return CKR_OK;
	rv = check_session(rq, sess);
	if (rv != CKR_OK)
		return rv;
	if (len > FW_RANDOM_MAX)
		return CKR_ARGUMENTS_BAD;
	buf = malloc(len ? len : 1);
	if (!buf)
		return CKR_HOST_MEMORY;
	if (RAND_bytes(buf, (int)len) == 1)
		phsm_put_bytes(rq->w, buf, len);
	else
		rv = CKR_DEVICE_ERROR;
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rv;
}
