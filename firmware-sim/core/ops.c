// SPDX-License-Identifier: MIT
/*
 * The operation commands: single- and multi-part operations and message
 * operations (key generation, wrapping, derivation and random numbers are
 * in keys.c).  The engine (mech.h) does the cryptography; this file
 * decides whether it may:
 * the key is visible to the session, the key's usage flag allows the
 * kind of operation, CKA_ALLOWED_MECHANISMS lists the mechanism, and a
 * session runs one operation of each kind at a time.
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

/* Reject a field value the codec cannot judge (an unknown kind). */
static void bad_value(struct fw_req *rq)
{
	if (rq->r->status == PHSM_ST_OK)
		rq->r->status = PHSM_ST_BAD_VALUE;
}

/*
 * What every handler here checks once it has read all its fields: the
 * request decoded, names an operation kind the command knows (@kind_ok),
 * and names a session of the calling application.  On false, *rv is the
 * answer (CKR_OK when the status already says what was wrong); on true
 * the caller puts the session back.
 */
static bool get_session(struct fw_req *rq, uint64_t sess, bool kind_ok,
			struct fw_session **s, CK_RV *rv)
{
	*rv = CKR_OK;
	if (!decoded(rq))
		return false;
	if (!kind_ok) {
		bad_value(rq);
		return false;
	}
	*rv = fw_session_get(rq->card, rq->app, sess, s);
	return *rv == CKR_OK;
}

/*
 * The session and the mechanism a command names, in that order of
 * checking; release both with fw_session_mech_put().
 */
CK_RV fw_session_mech_get(struct fw_req *rq, uint64_t sess, uint64_t mech,
			  struct phsm_reader *param, struct fw_session **s,
			  struct fw_mech *m)
{
	CK_RV rv = fw_session_get(rq->card, rq->app, sess, s);

	if (rv != CKR_OK)
		return rv;
	rv = fw_mech_parse(mech, param, m);
	if (rv != CKR_OK)
		fw_session_put(rq->card, *s);
	return rv;
}

void fw_session_mech_put(struct fw_req *rq, struct fw_session *s,
			 struct fw_mech *m)
{
	fw_mech_free(m);
	fw_session_put(rq->card, s);
}

static bool op_kind_ok(uint64_t kind)
{
	return kind >= PHSM_OPK_ENCRYPT && kind <= PHSM_OPK_VERIFY_RECOVER;
}

static bool msg_kind_ok(uint64_t kind)
{
	return kind == PHSM_OPK_ENCRYPT || kind == PHSM_OPK_DECRYPT ||
	       kind == PHSM_OPK_SIGN || kind == PHSM_OPK_VERIFY;
}

static CK_ATTRIBUTE_TYPE usage_flag(uint64_t kind)
{
	switch (kind) {
	case PHSM_OPK_ENCRYPT:
		return CKA_ENCRYPT;
	case PHSM_OPK_DECRYPT:
		return CKA_DECRYPT;
	case PHSM_OPK_SIGN:
		return CKA_SIGN;
	case PHSM_OPK_VERIFY:
		return CKA_VERIFY;
	case PHSM_OPK_SIGN_RECOVER:
		return CKA_SIGN_RECOVER;
	default:
		return CKA_VERIFY_RECOVER;
	}
}

static bool is_key_class(CK_OBJECT_CLASS cls)
{
	return cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY ||
	       cls == CKO_SECRET_KEY;
}

/* A visible key object; @invalid is the rv for anything else. */
CK_RV fw_key_object(struct fw_card *card, const struct fw_session *s,
		    uint64_t handle, CK_RV invalid, struct fw_obj **out)
{
	struct fw_obj *o;

	if (fw_obj_get(card, s, handle, &o) != CKR_OK)
		return invalid;
	if (!is_key_class(o->cls)) {
		fw_obj_put(card, o);
		return invalid;
	}
	*out = o;
	return CKR_OK;
}

/* The policy every use of a key passes after the engine accepted it. */
CK_RV fw_key_usage_ok(const struct fw_obj *o, CK_ATTRIBUTE_TYPE usage,
		       CK_MECHANISM_TYPE mech)
{
	if (!fw_attrs_bool(&o->attrs, usage, false))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (!fw_mech_allowed(o, mech))
		return CKR_MECHANISM_INVALID;
	return CKR_OK;
}

/* Does the engine's answer end the operation?  (mech.h convention) */
static bool call_ends(CK_RV rv, bool query)
{
	if (rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && query))
		return false;
	/*
	 * A one-shot call after an update names the operation that is still
	 * active and leaves it so.  Every other failure ends the operation,
	 * CKR_FUNCTION_NOT_SUPPORTED for an update of a single-part mechanism
	 * included: clients (pkcs11-tool --test) start over with a new init.
	 */
	return rv != CKR_OPERATION_ACTIVE;
}

/*
 * Calls that fill a caller's buffer go through produce(): a size query
 * first (the engine changes nothing for it), then the real call into a
 * buffer of the caller's size, but never more than is needed.  That
 * buffer is the answer's BYTES field itself (reserved, then committed
 * with the length written): a 1 MiB ciphertext is written once, not
 * copied and wiped.  The writer wipes what it drops or frees.
 */
CK_RV fw_produce(struct fw_req *rq, uint64_t outcap, fw_produce_fn fn,
		 void *ctx, bool *query)
{
	size_t need = 0, len, cap, mark;
	uint8_t *buf;
	CK_RV rv = fn(ctx, NULL, &need);

	*query = outcap == PHSM_OUT_QUERY;
	if (rv != CKR_OK)
		return rv;
	if (*query) {
		phsm_put_bytes(rq->w, NULL, 0);
		phsm_put_u64(rq->w, need);
		return CKR_OK;
	}
	cap = outcap < need ? (size_t)outcap : need;
	if (cap > FW_OUT_MAX)
		return CKR_DEVICE_MEMORY;
	buf = phsm_put_bytes_reserve(rq->w, cap, &mark);
	if (!buf)
		return CKR_HOST_MEMORY;	/* the writer failed: NO_MEMORY */
	len = cap;
	rv = fn(ctx, buf, &len);
	if (rv == CKR_OK && len <= cap) {
		phsm_put_bytes_commit(rq->w, mark, len);
		phsm_put_u64(rq->w, len);
		return CKR_OK;
	}
	phsm_put_bytes_cancel(rq->w, mark);
	if (rv == CKR_OK)
		return CKR_GENERAL_ERROR;	/* an engine overran */
	if (rv == CKR_BUFFER_TOO_SMALL) {
		phsm_put_bytes(rq->w, NULL, 0);
		phsm_put_u64(rq->w, len);
		rq->fields_on_error = true;
	}
	return rv;
}

/* Answer of a call without output (verify, sign update...). */
static void no_output(struct fw_req *rq)
{
	phsm_put_bytes(rq->w, NULL, 0);
	phsm_put_u64(rq->w, 0);
}

/* ---- single- and multi-part operations -------------------------------- */

static void op_end(struct fw_session *s, uint64_t kind)
{
	fw_op_free(s->op[kind].op);
	memset(&s->op[kind], 0, sizeof(s->op[kind]));
}

static CK_RV op_start(struct fw_card *card, struct fw_session *s,
		      uint64_t kind, const struct fw_mech *m, uint64_t keyh)
{
	struct fw_op_slot *slot = &s->op[kind];
	struct fw_key *key = NULL;
	struct fw_obj *o = NULL;
	struct fw_op *op = NULL;
	CK_RV rv;

	if (slot->op)
		return CKR_OPERATION_ACTIVE;
	if (kind == PHSM_OPK_DIGEST) {
		if (keyh)
			return CKR_ARGUMENTS_BAD;
		rv = fw_op_new(kind, m, NULL, &op);
	} else {
		rv = fw_key_object(card, s, keyh, CKR_KEY_HANDLE_INVALID, &o);
		if (rv == CKR_OK)
			rv = fw_obj_key(card, o, &key);
		if (rv == CKR_OK)
			rv = fw_op_new(kind, m, key, &op);
		if (rv == CKR_OK)
			rv = fw_key_usage_ok(o, usage_flag(kind), m->type);
	}
	if (rv == CKR_OK) {
		slot->op = op;
		slot->started = false;
		slot->authed = false;
		slot->need_auth = o && fw_attrs_bool(&o->attrs,
						     CKA_ALWAYS_AUTHENTICATE,
						     false);
		op = NULL;
	}
	fw_op_free(op);
	if (key)
		fw_key_put(key);
	fw_obj_put(card, o);
	return rv;
}

typedef CK_RV (*start_fn)(struct fw_card *card, struct fw_session *s,
			  uint64_t kind, const struct fw_mech *m,
			  uint64_t keyh);

/* OP_INIT and MSG_INIT: the same fields, a different kind of operation. */
static CK_RV init_request(struct fw_req *rq, bool (*kind_ok)(uint64_t),
			  start_fn start)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t kind = phsm_get_u64(rq->r);
	struct phsm_reader param;
	uint64_t mech;
	uint64_t key;
	struct fw_session *s;
	struct fw_mech m;
	CK_RV rv;

	phsm_get_mech(rq->r, &mech, &param);
	key = phsm_get_u64(rq->r);
	if (!decoded(rq))
		return CKR_OK;
	if (!kind_ok(kind)) {
		bad_value(rq);
		return CKR_OK;
	}
	rv = fw_session_mech_get(rq, sess, mech, &param, &s, &m);
	if (rv == CKR_OK) {
		rv = start(rq->card, s, kind, &m, key);
		fw_session_mech_put(rq, s, &m);
	}
	return rv;
}

CK_RV fw_h_op_init(struct fw_req *rq)
{
	return init_request(rq, op_kind_ok, op_start);
}

/* The active operation of @kind, if it may be used now. */
static CK_RV op_active(struct fw_session *s, uint64_t kind,
		       struct fw_op_slot **out)
{
	struct fw_op_slot *slot = &s->op[kind];

	if (!slot->op)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (slot->need_auth && !slot->authed) {
		op_end(s, kind);
		return CKR_USER_NOT_LOGGED_IN;
	}
	*out = slot;
	return CKR_OK;
}

struct op_call {
	struct fw_op *op;
	const uint8_t *in;
	size_t in_len;
	const uint8_t *sig;
	size_t sig_len;
};

static CK_RV call_oneshot(void *ctx, uint8_t *out, size_t *out_len)
{
	struct op_call *c = ctx;

	return fw_op_oneshot(c->op, c->in, c->in_len, c->sig, c->sig_len,
			     out, out_len);
}

static CK_RV call_update(void *ctx, uint8_t *out, size_t *out_len)
{
	struct op_call *c = ctx;

	return fw_op_update(c->op, c->in, c->in_len, out, out_len);
}

static CK_RV call_final(void *ctx, uint8_t *out, size_t *out_len)
{
	struct op_call *c = ctx;

	return fw_op_final(c->op, c->sig, c->sig_len, out, out_len);
}

/* Run a one-shot, update or final call and end the operation as needed. */
static CK_RV op_call(struct fw_req *rq, struct fw_session *s, uint64_t kind,
		     fw_produce_fn fn, struct op_call *c, bool has_output,
		     uint64_t outcap)
{
	struct fw_op_slot *slot;
	bool query = false;
	size_t none = 0;
	CK_RV rv = op_active(s, kind, &slot);

	if (rv != CKR_OK)
		return rv;
	c->op = slot->op;
	if (has_output) {
		rv = fw_produce(rq, outcap, fn, c, &query);
	} else {
		rv = fn(c, NULL, &none);
		if (rv == CKR_OK)
			no_output(rq);
	}
	if (fn == call_update && rv == CKR_OK && !query)
		slot->started = true;
	if (fn != call_update ? call_ends(rv, query)
			      : rv != CKR_OK && call_ends(rv, query))
		op_end(s, kind);
	return rv;
}

static bool final_has_output(uint64_t kind)
{
	return kind != PHSM_OPK_VERIFY;
}

static bool update_has_output(uint64_t kind)
{
	return kind == PHSM_OPK_ENCRYPT || kind == PHSM_OPK_DECRYPT;
}

/* OP_ONESHOT, OP_UPDATE, OP_FINAL once their fields are read into @c. */
static CK_RV op_request(struct fw_req *rq, uint64_t sess, uint64_t kind,
			fw_produce_fn fn, struct op_call *c, uint64_t outcap)
{
	bool has_output = fn == call_update ? update_has_output(kind)
					    : final_has_output(kind);
	struct fw_session *s;
	CK_RV rv;

	if (!get_session(rq, sess, op_kind_ok(kind), &s, &rv))
		return rv;
	rv = op_call(rq, s, kind, fn, c, has_output, outcap);
	fw_session_put(rq->card, s);
	return rv;
}

CK_RV fw_h_op_oneshot(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t kind = phsm_get_u64(rq->r);
	struct op_call c = { 0 };
	uint64_t outcap;

	c.in = phsm_get_bytes(rq->r, &c.in_len);
	c.sig = phsm_get_bytes(rq->r, &c.sig_len);
	outcap = phsm_get_u64(rq->r);
	return op_request(rq, sess, kind, call_oneshot, &c, outcap);
}

CK_RV fw_h_op_update(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t kind = phsm_get_u64(rq->r);
	struct op_call c = { 0 };
	uint64_t outcap;

	c.in = phsm_get_bytes(rq->r, &c.in_len);
	outcap = phsm_get_u64(rq->r);
	return op_request(rq, sess, kind, call_update, &c, outcap);
}

CK_RV fw_h_op_final(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t kind = phsm_get_u64(rq->r);
	struct op_call c = { 0 };
	uint64_t outcap;

	c.sig = phsm_get_bytes(rq->r, &c.sig_len);
	outcap = phsm_get_u64(rq->r);
	return op_request(rq, sess, kind, call_final, &c, outcap);
}

static CK_RV digest_key(struct fw_card *card, struct fw_session *s,
			uint64_t keyh)
{
	struct fw_op_slot *slot = &s->op[PHSM_OPK_DIGEST];
	struct fw_key *key = NULL;
	struct fw_obj *o;
	CK_RV rv;

	if (!slot->op)
		return CKR_OPERATION_NOT_INITIALIZED;
	rv = fw_key_object(card, s, keyh, CKR_KEY_HANDLE_INVALID, &o);
	if (rv == CKR_OK) {
		rv = fw_obj_key(card, o, &key);
		if (rv == CKR_OK)
			rv = fw_op_digest_key(slot->op, key);
		if (key)
			fw_key_put(key);
		fw_obj_put(card, o);
	}
	if (rv == CKR_OK)
		slot->started = true;
	else
		op_end(s, PHSM_OPK_DIGEST);
	return rv;
}

CK_RV fw_h_digest_key(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t key = phsm_get_u64(rq->r);
	struct fw_session *s;
	CK_RV rv;

	if (!get_session(rq, sess, true, &s, &rv))
		return rv;
	rv = digest_key(rq->card, s, key);
	fw_session_put(rq->card, s);
	return rv;
}

/* ---- message-based operations ----------------------------------------- */

static CK_RV msg_start(struct fw_card *card, struct fw_session *s,
		       uint64_t kind, const struct fw_mech *m, uint64_t keyh)
{
	struct fw_msg_slot *slot = &s->msg[kind];
	struct fw_key *key = NULL;
	struct fw_msg *msg = NULL;
	struct fw_obj *o;
	CK_RV rv;

	if (slot->msg)
		return CKR_OPERATION_ACTIVE;
	rv = fw_key_object(card, s, keyh, CKR_KEY_HANDLE_INVALID, &o);
	if (rv != CKR_OK)
		return rv;
	rv = fw_obj_key(card, o, &key);
	if (rv == CKR_OK)
		rv = fw_msg_new(kind, m, key, &msg);
	if (rv == CKR_OK)
		rv = fw_key_usage_ok(o, usage_flag(kind), m->type);
	if (rv == CKR_OK) {
		slot->msg = msg;
		slot->in_message = false;
		msg = NULL;
	}
	fw_msg_free(msg);
	if (key)
		fw_key_put(key);
	fw_obj_put(card, o);
	return rv;
}

CK_RV fw_h_msg_init(struct fw_req *rq)
{
	return init_request(rq, msg_kind_ok, msg_start);
}

struct msg_call {
	struct fw_msg *msg;
	struct fw_msg_param p;
	const uint8_t *assoc;
	size_t assoc_len;
	const uint8_t *in;
	size_t in_len;
	CK_FLAGS flags;
	struct fw_msg_param_out po;
};

static CK_RV call_msg_oneshot(void *ctx, uint8_t *out, size_t *out_len)
{
	struct msg_call *c = ctx;

	return fw_msg_oneshot(c->msg, &c->p, c->assoc, c->assoc_len, c->in,
			      c->in_len, out, out_len, &c->po);
}

static CK_RV call_msg_next(void *ctx, uint8_t *out, size_t *out_len)
{
	struct msg_call *c = ctx;

	return fw_msg_next(c->msg, &c->p, c->in, c->in_len, c->flags, out,
			   out_len, &c->po);
}

/* param_out: what the card wrote into the caller's parameter, encoded
 * like the parameter (AES-GCM: BYTES iv, BYTES tag). */
static void put_param_out(struct fw_req *rq, const struct fw_msg_param_out *po)
{
	struct phsm_writer sub = { 0 };

	phsm_put_bytes(&sub, po->iv, po->iv_len <= sizeof(po->iv) ?
		       po->iv_len : 0);
	phsm_put_bytes(&sub, po->tag, po->tag_len <= sizeof(po->tag) ?
		       po->tag_len : 0);
	if (sub.failed)
		rq->w->failed = true;
	else
		phsm_put_bytes(rq->w, sub.data, sub.len);
	phsm_writer_free(&sub);
}

static CK_RV msg_call(struct fw_req *rq, struct fw_session *s, uint64_t kind,
		      fw_produce_fn fn, struct msg_call *c, const uint8_t *param,
		      size_t param_len, uint64_t outcap, bool *query)
{
	struct fw_msg_slot *slot = &s->msg[kind];
	CK_RV rv;

	*query = false;
	if (!slot->msg)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (fn == call_msg_oneshot && slot->in_message)
		return CKR_OPERATION_ACTIVE;
	if (fn == call_msg_next && !slot->in_message)
		return CKR_OPERATION_NOT_INITIALIZED;
	c->msg = slot->msg;
	rv = fw_msg_param_parse(slot->msg, param, param_len, &c->p);
	if (rv != CKR_OK)
		return rv;
	rv = fw_produce(rq, outcap, fn, c, query);
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
		put_param_out(rq, &c->po);
	return rv;
}

/* MSG_ONESHOT and MSG_NEXT once their fields are read into @c. */
static CK_RV msg_request(struct fw_req *rq, uint64_t sess, uint64_t kind,
			 fw_produce_fn fn, struct msg_call *c,
			 const uint8_t *param, size_t param_len,
			 uint64_t outcap)
{
	struct fw_session *s;
	bool query, ends;
	CK_RV rv;

	if (!get_session(rq, sess, msg_kind_ok(kind), &s, &rv))
		return rv;
	rv = msg_call(rq, s, kind, fn, c, param, param_len, outcap, &query);
	if (fn == call_msg_next) {
		/* The last part ends the message unless it was only
		 * measured; an earlier part ends it only by failing. */
		if (c->flags & CKF_END_OF_MESSAGE)
			ends = call_ends(rv, query);
		else
			ends = rv != CKR_OK && call_ends(rv, query);
		if (ends && rv != CKR_OPERATION_NOT_INITIALIZED)
			s->msg[kind].in_message = false;
	}
	fw_session_put(rq->card, s);
	return rv;
}

CK_RV fw_h_msg_oneshot(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t kind = phsm_get_u64(rq->r);
	struct msg_call c = { 0 };
	size_t param_len, sig_len;
	const uint8_t *param = phsm_get_bytes(rq->r, &param_len);
	uint64_t outcap;

	c.assoc = phsm_get_bytes(rq->r, &c.assoc_len);
	c.in = phsm_get_bytes(rq->r, &c.in_len);
	phsm_get_bytes(rq->r, &sig_len);
	outcap = phsm_get_u64(rq->r);
	return msg_request(rq, sess, kind, call_msg_oneshot, &c, param,
			   param_len, outcap);
}

static CK_RV msg_begin(struct fw_session *s, uint64_t kind,
		       const uint8_t *param, size_t param_len,
		       const uint8_t *assoc, size_t assoc_len)
{
	struct fw_msg_slot *slot = &s->msg[kind];
	struct fw_msg_param p;
	CK_RV rv;

	if (!slot->msg)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (slot->in_message)
		return CKR_OPERATION_ACTIVE;
	rv = fw_msg_param_parse(slot->msg, param, param_len, &p);
	if (rv == CKR_OK)
		rv = fw_msg_begin(slot->msg, &p, assoc, assoc_len);
	if (rv == CKR_OK)
		slot->in_message = true;
	return rv;
}

CK_RV fw_h_msg_begin(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t kind = phsm_get_u64(rq->r);
	size_t param_len, assoc_len;
	const uint8_t *param = phsm_get_bytes(rq->r, &param_len);
	const uint8_t *assoc = phsm_get_bytes(rq->r, &assoc_len);
	struct fw_session *s;
	CK_RV rv;

	if (!get_session(rq, sess, msg_kind_ok(kind), &s, &rv))
		return rv;
	rv = msg_begin(s, kind, param, param_len, assoc, assoc_len);
	fw_session_put(rq->card, s);
	return rv;
}

CK_RV fw_h_msg_next(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t kind = phsm_get_u64(rq->r);
	struct msg_call c = { 0 };
	size_t param_len, sig_len;
	const uint8_t *param = phsm_get_bytes(rq->r, &param_len);
	uint64_t outcap;

	c.in = phsm_get_bytes(rq->r, &c.in_len);
	c.flags = phsm_get_u64(rq->r);
	phsm_get_bytes(rq->r, &sig_len);
	outcap = phsm_get_u64(rq->r);
	return msg_request(rq, sess, kind, call_msg_next, &c, param,
			   param_len, outcap);
}

static CK_RV msg_final(struct fw_session *s, uint64_t kind)
{
	if (!s->msg[kind].msg)
		return CKR_OPERATION_NOT_INITIALIZED;
	fw_msg_free(s->msg[kind].msg);
	memset(&s->msg[kind], 0, sizeof(s->msg[kind]));
	return CKR_OK;
}

CK_RV fw_h_msg_final(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t kind = phsm_get_u64(rq->r);
	struct fw_session *s;
	CK_RV rv;

	if (!get_session(rq, sess, msg_kind_ok(kind), &s, &rv))
		return rv;
	rv = msg_final(s, kind);
	fw_session_put(rq->card, s);
	return rv;
}
