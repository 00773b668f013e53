// SPDX-License-Identifier: MIT
/*
 * fw_card_handle(): check a request, find its handler in the opcode table,
 * answer.  Each handler first decodes all of its fields and ends with
 * phsm_reader_done(); only a request that decoded cleanly has any effect.
 * A codec error becomes a response with that PHSM_ST_* status and no
 * fields.
 */
#include <stdlib.h>
#include <string.h>

#include "clone.h"
#include "internal.h"

typedef CK_RV (*fw_handler)(struct fw_req *rq);

/* Read a template and finish the request; see fw_attrs_from_wire(). */
CK_RV fw_get_template(struct phsm_reader *r, struct fw_attrs *out)
{
	struct phsm_reader list;
	uint32_t count;
	CK_RV rv = CKR_OK;

	memset(out, 0, sizeof(*out));
	if (!phsm_get_attrs(r, &list, &count))
		return CKR_OK;
	rv = fw_attrs_from_wire(&list, count, out);
	if (list.status != PHSM_ST_OK && r->status == PHSM_ST_OK) {
		r->status = list.status;
		r->left = 0;
	}
	return rv;
}

/* A BYTES field that must be exactly @n long. */
static const uint8_t *get_fixed(struct phsm_reader *r, size_t n)
{
	size_t len;
	const uint8_t *p = phsm_get_bytes(r, &len);

	if (p && len != n && r->status == PHSM_ST_OK) {
		r->status = PHSM_ST_BAD_VALUE;
		r->left = 0;
		return NULL;
	}
	return p;
}

static bool decoded(struct fw_req *rq)
{
	return phsm_reader_done(rq->r);
}

/* Run @fn on a session of the calling application. */
#define WITH_SESSION(rq, handle, s, body)				\
	do {								\
		CK_RV rv_ = fw_session_get((rq)->card, (rq)->app,	\
					   (handle), &(s));		\
		if (rv_ != CKR_OK)					\
			return rv_;					\
		rv_ = (body);						\
		fw_session_put((rq)->card, (s));			\
		return rv_;						\
	} while (0)

/*
 * For the handlers whose last field is a template: read it and, if the
 * request decoded, take the session.  On false, *rv is the answer; the
 * caller frees the template either way and puts the session on true.
 */
static bool template_session(struct fw_req *rq, uint64_t sess,
			     struct fw_attrs *tmpl, struct fw_session **s,
			     CK_RV *rv)
{
	*rv = fw_get_template(rq->r, tmpl);
	if (!decoded(rq) || *rv != CKR_OK)
		return false;
	*rv = fw_session_get(rq->card, rq->app, sess, s);
	return *rv == CKR_OK;
}

/* ---- card and tokens -------------------------------------------------- */

static CK_RV h_get_card_info(struct fw_req *rq)
{
	struct phsm_card_info ci;

	if (!decoded(rq))
		return CKR_OK;
	fw_card_fill_info(rq->card, &ci);
	phsm_put_bytes(rq->w, &ci, sizeof(ci));
	return CKR_OK;
}

static CK_RV h_get_token_info(struct fw_req *rq)
{
	uint64_t part = phsm_get_u64(rq->r);
	struct phsm_token_info ti;
	CK_RV rv;

	if (!decoded(rq))
		return CKR_OK;
	rv = fw_token_info(rq->card, part < UINT32_MAX ? (unsigned int)part
						       : UINT32_MAX, &ti);
	if (rv == CKR_OK)
		phsm_put_bytes(rq->w, &ti, sizeof(ti));
	return rv;
}

static CK_RV h_get_mech_list(struct fw_req *rq)
{
	uint64_t part = phsm_get_u64(rq->r);
	size_t n = fw_mech_count();
	uint64_t *list;

	if (!decoded(rq))
		return CKR_OK;
	if (part >= rq->card->nparts)
		return CKR_SLOT_ID_INVALID;
	list = malloc((n ? n : 1) * sizeof(*list));
	if (!list)
		return CKR_HOST_MEMORY;
	for (size_t i = 0; i < n; i++)
		list[i] = fw_mech_at(i)->type;
	phsm_put_u64_array(rq->w, list, n);
	free(list);
	return CKR_OK;
}

static CK_RV h_get_mech_info(struct fw_req *rq)
{
	uint64_t part = phsm_get_u64(rq->r);
	uint64_t mech = phsm_get_u64(rq->r);
	const struct fw_mech_desc *d;

	if (!decoded(rq))
		return CKR_OK;
	if (part >= rq->card->nparts)
		return CKR_SLOT_ID_INVALID;
	d = fw_mech_find(mech);
	if (!d)
		return CKR_MECHANISM_INVALID;
	phsm_put_u64(rq->w, d->min_key);
	phsm_put_u64(rq->w, d->max_key);
	phsm_put_u64(rq->w, d->flags);
	return CKR_OK;
}

static CK_RV h_init_token(struct fw_req *rq)
{
	uint64_t part = phsm_get_u64(rq->r);
	size_t pin_len;
	const uint8_t *pin = phsm_get_bytes(rq->r, &pin_len);
	const uint8_t *label = get_fixed(rq->r, PHSM_LABEL_LEN);

	if (!decoded(rq))
		return CKR_OK;
	if (part >= rq->card->nparts)
		return CKR_SLOT_ID_INVALID;
	return fw_init_token(rq->card, (unsigned int)part, pin, pin_len, label);
}

static CK_RV h_init_pin(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	size_t len;
	const uint8_t *pin = phsm_get_bytes(rq->r, &len);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, fw_init_pin(rq->card, s, pin, len));
}

static CK_RV h_set_pin(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	size_t old_len, new_len;
	const uint8_t *old = phsm_get_bytes(rq->r, &old_len);
	const uint8_t *pin = phsm_get_bytes(rq->r, &new_len);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s,
		     fw_set_pin(rq->card, s, old, old_len, pin, new_len));
}

/* ---- sessions --------------------------------------------------------- */

static CK_RV h_open_session(struct fw_req *rq)
{
	uint64_t part = phsm_get_u64(rq->r);
	uint64_t flags = phsm_get_u64(rq->r);
	uint64_t handle;
	CK_RV rv;

	if (!decoded(rq))
		return CKR_OK;
	if (part >= rq->card->nparts)
		return CKR_SLOT_ID_INVALID;
	rv = fw_open_session(rq->card, rq->app, (unsigned int)part, flags,
			     &handle);
	if (rv == CKR_OK)
		phsm_put_u64(rq->w, handle);
	return rv;
}

static CK_RV h_close_session(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, fw_close_session(rq->card, s));
}

static CK_RV h_close_all_sessions(struct fw_req *rq)
{
	uint64_t part = phsm_get_u64(rq->r);

	if (!decoded(rq))
		return CKR_OK;
	if (part >= rq->card->nparts)
		return CKR_SLOT_ID_INVALID;
	fw_close_sessions(rq->card, rq->app, (unsigned int)part, false);
	return CKR_OK;
}

static CK_RV session_info(struct fw_req *rq, struct fw_session *s)
{
	phsm_put_u64(rq->w, s->part);
	phsm_put_u64(rq->w, fw_session_state(rq->card, s));
	phsm_put_u64(rq->w, s->flags);
	phsm_put_u64(rq->w, 0);
	return CKR_OK;
}

static CK_RV h_get_session_info(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, session_info(rq, s));
}

/*
 * C_LoginUser: the card has no named users, so any user name names a
 * user that does not exist: CKR_USER_TYPE_INVALID, without counting a
 * PIN try.
 */
static CK_RV h_login(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t type = phsm_get_u64(rq->r);
	size_t pin_len, user_len;
	const uint8_t *pin = phsm_get_bytes(rq->r, &pin_len);
	struct fw_session *s;

	phsm_get_bytes(rq->r, &user_len);
	if (!decoded(rq))
		return CKR_OK;
	if (user_len)
		return CKR_USER_TYPE_INVALID;
	WITH_SESSION(rq, sess, s, fw_login(rq->card, s, type, pin, pin_len));
}

static CK_RV h_logout(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, fw_logout(rq->card, s));
}

static CK_RV cancel(struct fw_session *s, uint64_t flags)
{
	static const struct {
		CK_FLAGS flag;
		enum phsm_op_kind kind;
		bool msg;
	} map[] = {
		{ CKF_ENCRYPT, PHSM_OPK_ENCRYPT, false },
		{ CKF_DECRYPT, PHSM_OPK_DECRYPT, false },
		{ CKF_DIGEST, PHSM_OPK_DIGEST, false },
		{ CKF_SIGN, PHSM_OPK_SIGN, false },
		{ CKF_VERIFY, PHSM_OPK_VERIFY, false },
		{ CKF_SIGN_RECOVER, PHSM_OPK_SIGN_RECOVER, false },
		{ CKF_VERIFY_RECOVER, PHSM_OPK_VERIFY_RECOVER, false },
		{ CKF_MESSAGE_ENCRYPT, PHSM_OPK_ENCRYPT, true },
		{ CKF_MESSAGE_DECRYPT, PHSM_OPK_DECRYPT, true },
		{ CKF_MESSAGE_SIGN, PHSM_OPK_SIGN, true },
		{ CKF_MESSAGE_VERIFY, PHSM_OPK_VERIFY, true },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (!(flags & map[i].flag))
			continue;
		if (map[i].msg) {
			fw_msg_free(s->msg[map[i].kind].msg);
			memset(&s->msg[map[i].kind], 0, sizeof(s->msg[0]));
		} else {
			fw_op_free(s->op[map[i].kind].op);
			memset(&s->op[map[i].kind], 0, sizeof(s->op[0]));
		}
	}
	if (flags & CKF_FIND_OBJECTS)
		fw_find_clear(s);
	return CKR_OK;
}

static CK_RV h_session_cancel(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t flags = phsm_get_u64(rq->r);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, cancel(s, flags));
}

/* ---- objects ---------------------------------------------------------- */

static CK_RV create_object(struct fw_req *rq, struct fw_session *s,
			   struct fw_attrs *tmpl)
{
	uint64_t handle;
	CK_RV rv = fw_create_object(rq->card, s, tmpl, &handle);

	if (rv == CKR_OK)
		phsm_put_u64(rq->w, handle);
	return rv;
}

static CK_RV h_create_object(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct fw_attrs tmpl;
	struct fw_session *s;
	CK_RV rv;

	if (template_session(rq, sess, &tmpl, &s, &rv)) {
		rv = create_object(rq, s, &tmpl);
		fw_session_put(rq->card, s);
	}
	fw_attrs_free(&tmpl);
	return rv;
}

static CK_RV copy_object(struct fw_req *rq, struct fw_session *s,
			 uint64_t obj, const struct fw_attrs *tmpl)
{
	uint64_t handle;
	CK_RV rv = fw_copy_object(rq->card, s, obj, tmpl, &handle);

	if (rv == CKR_OK)
		phsm_put_u64(rq->w, handle);
	return rv;
}

static CK_RV h_copy_object(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t obj = phsm_get_u64(rq->r);
	struct fw_attrs tmpl;
	struct fw_session *s;
	CK_RV rv;

	if (template_session(rq, sess, &tmpl, &s, &rv)) {
		rv = copy_object(rq, s, obj, &tmpl);
		fw_session_put(rq->card, s);
	}
	fw_attrs_free(&tmpl);
	return rv;
}

static CK_RV h_destroy_object(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t obj = phsm_get_u64(rq->r);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, fw_destroy_object(rq->card, s, obj));
}

static CK_RV object_size(struct fw_req *rq, struct fw_session *s,
			 uint64_t obj)
{
	uint64_t size;
	CK_RV rv = fw_object_size(rq->card, s, obj, &size);

	if (rv == CKR_OK)
		phsm_put_u64(rq->w, size);
	return rv;
}

static CK_RV h_get_object_size(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t obj = phsm_get_u64(rq->r);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, object_size(rq, s, obj));
}

/* A query names attributes and buffer sizes, and carries no values. */
static void check_query(struct phsm_reader *r, struct phsm_reader list,
			uint32_t count)
{
	struct phsm_attr_view a;

	for (uint32_t i = 0; i < count; i++) {
		if (!phsm_next_attr(&list, &a))
			break;
		if (a.flags & ~PHSM_ATTR_F_QUERY)
			list.status = PHSM_ST_BAD_VALUE;
	}
	if (list.status == PHSM_ST_OK)
		phsm_reader_done(&list);
	if (list.status != PHSM_ST_OK && r->status == PHSM_ST_OK) {
		r->status = list.status;
		r->left = 0;
	}
}

static CK_RV get_attributes(struct fw_req *rq, struct fw_session *s,
			    uint64_t obj, struct phsm_reader *list,
			    uint32_t count)
{
	CK_RV rv = fw_get_attributes(rq->card, s, obj, list, count, rq->w);

	rq->fields_on_error = rv == CKR_ATTRIBUTE_SENSITIVE ||
			      rv == CKR_ATTRIBUTE_TYPE_INVALID ||
			      rv == CKR_BUFFER_TOO_SMALL;
	return rv;
}

static CK_RV h_get_attribute_value(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t obj = phsm_get_u64(rq->r);
	struct phsm_reader list;
	uint32_t count;
	struct fw_session *s;

	if (phsm_get_attrs(rq->r, &list, &count))
		check_query(rq->r, list, count);
	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, get_attributes(rq, s, obj, &list, count));
}

static CK_RV h_set_attribute_value(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t obj = phsm_get_u64(rq->r);
	struct fw_attrs tmpl;
	struct fw_session *s;
	CK_RV rv;

	if (template_session(rq, sess, &tmpl, &s, &rv)) {
		rv = fw_set_attributes(rq->card, s, obj, &tmpl);
		fw_session_put(rq->card, s);
	}
	fw_attrs_free(&tmpl);
	return rv;
}

static CK_RV h_find_init(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct fw_attrs tmpl;
	struct fw_session *s;
	CK_RV rv;

	if (template_session(rq, sess, &tmpl, &s, &rv)) {
		rv = fw_find_init(rq->card, s, &tmpl);
		fw_session_put(rq->card, s);
	}
	fw_attrs_free(&tmpl);
	return rv;
}

/* Hand out the next handles of the search that still name objects. */
static CK_RV find_next(struct fw_req *rq, struct fw_session *s, uint64_t max)
{
	struct fw_card *card = rq->card;
	uint64_t *out;
	size_t n = 0;

	if (!s->find_active)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (max > s->nfound - s->found_pos)
		max = s->nfound - s->found_pos;
	out = malloc((max ? max : 1) * sizeof(*out));
	if (!out)
		return CKR_HOST_MEMORY;
	while (n < max && s->found_pos < s->nfound) {
		uint64_t h = s->found[s->found_pos++];
		struct fw_obj *o;

		if (fw_obj_get(card, s, h, &o) != CKR_OK)
			continue;	/* destroyed since the search began */
		fw_obj_put(card, o);
		out[n++] = h;
	}
	phsm_put_u64_array(rq->w, out, n);
	free(out);
	return CKR_OK;
}

static CK_RV h_find(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	uint64_t max = phsm_get_u64(rq->r);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, find_next(rq, s, max));
}

static CK_RV find_final(struct fw_session *s)
{
	if (!s->find_active)
		return CKR_OPERATION_NOT_INITIALIZED;
	fw_find_clear(s);
	return CKR_OK;
}

static CK_RV h_find_final(struct fw_req *rq)
{
	uint64_t sess = phsm_get_u64(rq->r);
	struct fw_session *s;

	if (!decoded(rq))
		return CKR_OK;
	WITH_SESSION(rq, sess, s, find_final(s));
}

/* ---- housekeeping ----------------------------------------------------- */

static CK_RV h_app_close(struct fw_req *rq)
{
	if (!decoded(rq))
		return CKR_OK;
	fw_close_sessions(rq->card, rq->app, 0, true);
	fw_ext_release_locks(rq->card, rq->app);
	return CKR_OK;
}

static CK_RV h_nop(struct fw_req *rq)
{
	decoded(rq);
	return CKR_OK;
}

static const struct {
	uint16_t opcode;
	fw_handler fn;
} handlers[] = {
	{ PHSM_OP_GET_CARD_INFO, h_get_card_info },
	{ PHSM_OP_GET_TOKEN_INFO, h_get_token_info },
	{ PHSM_OP_GET_MECH_LIST, h_get_mech_list },
	{ PHSM_OP_GET_MECH_INFO, h_get_mech_info },
	{ PHSM_OP_INIT_TOKEN, h_init_token },
	{ PHSM_OP_INIT_PIN, h_init_pin },
	{ PHSM_OP_SET_PIN, h_set_pin },
	{ PHSM_OP_OPEN_SESSION, h_open_session },
	{ PHSM_OP_CLOSE_SESSION, h_close_session },
	{ PHSM_OP_CLOSE_ALL_SESSIONS, h_close_all_sessions },
	{ PHSM_OP_GET_SESSION_INFO, h_get_session_info },
	{ PHSM_OP_LOGIN, h_login },
	{ PHSM_OP_LOGOUT, h_logout },
	{ PHSM_OP_SESSION_CANCEL, h_session_cancel },
	{ PHSM_OP_CREATE_OBJECT, h_create_object },
	{ PHSM_OP_COPY_OBJECT, h_copy_object },
	{ PHSM_OP_DESTROY_OBJECT, h_destroy_object },
	{ PHSM_OP_GET_OBJECT_SIZE, h_get_object_size },
	{ PHSM_OP_GET_ATTRIBUTE_VALUE, h_get_attribute_value },
	{ PHSM_OP_SET_ATTRIBUTE_VALUE, h_set_attribute_value },
	{ PHSM_OP_FIND_INIT, h_find_init },
	{ PHSM_OP_FIND, h_find },
	{ PHSM_OP_FIND_FINAL, h_find_final },
	{ PHSM_OP_OP_INIT, fw_h_op_init },
	{ PHSM_OP_OP_ONESHOT, fw_h_op_oneshot },
	{ PHSM_OP_OP_UPDATE, fw_h_op_update },
	{ PHSM_OP_OP_FINAL, fw_h_op_final },
	{ PHSM_OP_DIGEST_KEY, fw_h_digest_key },
	{ PHSM_OP_MSG_INIT, fw_h_msg_init },
	{ PHSM_OP_MSG_ONESHOT, fw_h_msg_oneshot },
	{ PHSM_OP_MSG_BEGIN, fw_h_msg_begin },
	{ PHSM_OP_MSG_NEXT, fw_h_msg_next },
	{ PHSM_OP_MSG_FINAL, fw_h_msg_final },
	{ PHSM_OP_GENERATE_KEY, fw_h_generate_key },
	{ PHSM_OP_GENERATE_KEY_PAIR, fw_h_generate_key_pair },
	{ PHSM_OP_WRAP_KEY, fw_h_wrap_key },
	{ PHSM_OP_UNWRAP_KEY, fw_h_unwrap_key },
	{ PHSM_OP_DERIVE_KEY, fw_h_derive_key },
	{ PHSM_OP_SEED_RANDOM, fw_h_seed_random },
	{ PHSM_OP_GENERATE_RANDOM, fw_h_generate_random },
	{ PHSM_OP_APP_CLOSE, h_app_close },
	{ PHSM_OP_NOP, h_nop },
	{ PHSM_OP_CA_ADD_KCV, fw_h_ca_add_kcv },
	{ PHSM_OP_CA_CHANGE_KCV_LABEL, fw_h_ca_change_kcv_label },
	{ PHSM_OP_CA_DELETE_KCV, fw_h_ca_delete_kcv },
	{ PHSM_OP_CA_GET_KCV_LABELS, fw_h_ca_get_kcv_labels },
	{ PHSM_OP_CA_SET_POLICY, fw_h_ca_set_policy },
	{ PHSM_OP_CA_GET_POLICIES, fw_h_ca_get_policies },
	{ PHSM_OP_CA_CLUSTER_INFO, fw_h_ca_cluster_info },
	{ PHSM_OP_CA_CLAIM_UNASSIGNED, fw_h_ca_claim_unassigned },
	{ PHSM_OP_CA_LOCK_SLOT, fw_h_ca_lock_slot },
	{ PHSM_OP_CA_UNLOCK_SLOT, fw_h_ca_unlock_slot },
	{ PHSM_OP_CLONE_IDENTITY, fw_h_clone_identity },
	{ PHSM_OP_MIGRATION_START, fw_h_migration_start },
	{ PHSM_OP_MIGRATION_CONTINUE, fw_h_migration_continue },
	{ PHSM_OP_MIGRATION_CLOSE, fw_h_migration_close },
	{ PHSM_OP_EXTRACT, fw_h_extract },
	{ PHSM_OP_INSERT, fw_h_insert },
	{ PHSM_OP_CLONE_SOURCE_INIT, fw_h_clone_source_init },
	{ PHSM_OP_CLONE_TARGET_INIT, fw_h_clone_target_init },
	{ PHSM_OP_CLONE_AS_SOURCE, fw_h_clone_as_source },
	{ PHSM_OP_CLONE_AS_TARGET, fw_h_clone_as_target },
};

static fw_handler find_handler(uint16_t opcode)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].opcode == opcode)
			return handlers[i].fn;
	return NULL;
}

static bool app_known(struct fw_card *card, uint64_t app)
{
	bool known;

	pthread_mutex_lock(&card->lock);
	known = fw_app_find(card, app) != NULL;
	pthread_mutex_unlock(&card->lock);
	return known;
}

/* Decide status and rv of a well-formed request and write its fields. */
static void run(struct fw_card *card, uint64_t app, struct phsm_msg *m,
		struct phsm_writer *w, uint32_t *status, CK_RV *rv)
{
	struct fw_req rq = { .card = card, .app = app, .r = &m->payload,
			     .w = w };
	fw_handler fn = find_handler(m->opcode);

	*rv = CKR_OK;
	if (!fn) {
		*status = PHSM_ST_BAD_OPCODE;
		return;
	}
	if (!app_known(card, app)) {
		*status = PHSM_ST_BAD_CONTEXT;
		return;
	}
	*rv = fn(&rq);
	*status = m->payload.status;
	if (*status != PHSM_ST_OK) {
		*rv = CKR_OK;
		phsm_msg_truncate(w);
	} else if (*rv != CKR_OK && !rq.fields_on_error) {
		phsm_msg_truncate(w);
	}
}

int fw_card_handle(struct fw_card *card, uint64_t app, const uint8_t *req,
		   size_t len, uint8_t **resp, size_t *resp_len)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	uint32_t status = phsm_msg_parse(req, len, false, &m);
	CK_RV rv = CKR_OK;

	phsm_msg_begin(&w, m.opcode, PHSM_MSG_F_RESPONSE, m.app_ctx, m.tag);
	if (status == PHSM_ST_OK)
		run(card, app, &m, &w, &status, &rv);
	if (!phsm_msg_finish(&w, status, (uint32_t)rv)) {
		/* No room for the answer: say so in a bare header. */
		if (!phsm_msg_begin(&w, m.opcode, PHSM_MSG_F_RESPONSE,
				    m.app_ctx, m.tag) ||
		    !phsm_msg_finish(&w, PHSM_ST_NO_MEMORY, 0)) {
			phsm_writer_free(&w);
			return -1;
		}
	}
	*resp = w.data;
	*resp_len = w.len;
	return 0;
}
