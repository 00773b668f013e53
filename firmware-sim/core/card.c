// SPDX-License-Identifier: MIT
/*
 * The card: opening it on its state directory, the handle allocator,
 * application contexts and the session table.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "clone.h"
#include "internal.h"

void fw_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("phsm-fw: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- opening and closing ---------------------------------------------- */

static void card_free(struct fw_card *card)
{
	for (size_t b = 0; b < FW_BUCKETS; b++) {
		while (card->objects[b]) {
			struct fw_obj *o = card->objects[b];

			card->objects[b] = o->next;
			o->live = false;
			o->refs = 1;
			fw_obj_put(card, o);
		}
	}
	while (card->apps) {
		struct fw_app *a = card->apps;

		card->apps = a->next;
		free(a);
	}
	fw_clone_fini(card);
	fw_identity_close(card);
	fw_store_close(card->store);
	pthread_mutex_destroy(&card->lock);
	pthread_mutex_destroy(&card->store_lock);
	OPENSSL_cleanse(card->part, sizeof(card->part));
	OPENSSL_cleanse(card->ext, sizeof(card->ext));
	free(card);
}

static int load_state(struct fw_card *card, char *err, size_t err_len)
{
	if (fw_store_load_meta(card->store, card->serial, &card->handle_limit) ||
	    fw_store_load_partitions(card->store, card->part, card->nparts)) {
		snprintf(err, err_len, "cannot read the card state");
		return -1;
	}
	card->next_handle = card->handle_limit;
	if (fw_store_load_objects(card->store, card->nparts,
				  fw_obj_insert_loaded, card)) {
		snprintf(err, err_len, "cannot read the token objects");
		return -1;
	}
	/* Handles of loaded objects lie below the limit; be sure anyway. */
	for (size_t b = 0; b < FW_BUCKETS; b++)
		for (struct fw_obj *o = card->objects[b]; o; o = o->next)
			if (o->handle >= card->next_handle)
				card->next_handle = o->handle + 1;
	if (card->handle_limit < card->next_handle)
		card->handle_limit = card->next_handle;
	return 0;
}

int fw_card_open(const struct fw_card_config *cfg, struct fw_card **out,
		 char *err, size_t err_len)
{
	struct fw_card *card;

	if (!cfg || !cfg->state_dir || !*cfg->state_dir) {
		snprintf(err, err_len, "no state directory");
		return -1;
	}
	if (cfg->partitions < 1 || cfg->partitions > FW_MAX_PARTITIONS) {
		snprintf(err, err_len, "partitions must be 1..%d",
			 FW_MAX_PARTITIONS);
		return -1;
	}
	if (cfg->pin_iterations > 100000000) {
		snprintf(err, err_len, "PIN iterations out of range");
		return -1;
	}
	card = calloc(1, sizeof(*card));
	if (!card) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	pthread_mutex_init(&card->lock, NULL);
	pthread_mutex_init(&card->store_lock, NULL);
	card->nparts = cfg->partitions;
	card->pin_iterations = cfg->pin_iterations ? cfg->pin_iterations
						   : FW_PIN_ITERATIONS;
	card->next_app = 1;
	card->clone_cfg = (struct fw_clone_cfg){
		.negotiation_timeout = cfg->clone_negotiation_timeout ?
				       cfg->clone_negotiation_timeout : 600,
		.session_lifetime = cfg->clone_session_lifetime ?
				    cfg->clone_session_lifetime : 3600,
		.clock_offset = cfg->clock_offset,
		.suites = cfg->clone_suites,
		.kdfs = cfg->clone_kdfs,
		.encodings = cfg->clone_encodings,
	};
	if (fw_store_open(cfg->state_dir, &card->store, err, err_len) ||
	    load_state(card, err, err_len) ||
	    fw_ext_load(card, cfg->cluster_id, err, err_len) ||
	    fw_identity_open(card, cfg, err, err_len) ||
	    fw_clone_init(card, err, err_len)) {
		card_free(card);
		return -1;
	}
	*out = card;
	return 0;
}

void fw_card_close(struct fw_card *card)
{
	if (!card)
		return;
	while (card->apps)
		fw_card_app_close(card, card->apps->id);
	card_free(card);
}

/* ---- handles ---------------------------------------------------------- */

/*
 * Sessions and objects draw their handles from one counter that never
 * goes back, not even across restarts: the store records a limit, and
 * handles below it are used.  Moving the limit costs a commit, so it
 * moves FW_HANDLE_STEP at a time.
 */
CK_RV fw_alloc_handle(struct fw_card *card, uint64_t *out)
{
	uint64_t limit;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&card->lock);
	if (card->next_handle < card->handle_limit) {
		*out = card->next_handle++;
		pthread_mutex_unlock(&card->lock);
		return CKR_OK;
	}
	pthread_mutex_unlock(&card->lock);

	pthread_mutex_lock(&card->store_lock);
	pthread_mutex_lock(&card->lock);
	limit = card->handle_limit;
	if (card->next_handle >= limit) {
		limit = card->next_handle + FW_HANDLE_STEP;
		pthread_mutex_unlock(&card->lock);
		rv = fw_store_set_handle_limit(card->store, limit);
		pthread_mutex_lock(&card->lock);
		if (rv == CKR_OK)
			card->handle_limit = limit;
	}
	if (rv == CKR_OK)
		*out = card->next_handle++;
	pthread_mutex_unlock(&card->lock);
	pthread_mutex_unlock(&card->store_lock);
	return rv;
}

/* ---- applications ----------------------------------------------------- */

struct fw_app *fw_app_find(struct fw_card *card, uint64_t id)
{
	for (struct fw_app *a = card->apps; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

uint64_t fw_card_app_open(struct fw_card *card)
{
	struct fw_app *a = calloc(1, sizeof(*a));

	if (!a)
		return 0;
	for (int i = 0; i < FW_MAX_PARTITIONS; i++)
		a->login[i] = FW_NOBODY;
	pthread_mutex_lock(&card->lock);
	a->id = card->next_app++;
	a->next = card->apps;
	card->apps = a;
	pthread_mutex_unlock(&card->lock);
	return a->id;
}

void fw_card_app_close(struct fw_card *card, uint64_t app)
{
	struct fw_app **pp;

	fw_close_sessions(card, app, 0, true);
	fw_ext_release_locks(card, app);
	pthread_mutex_lock(&card->lock);
	for (pp = &card->apps; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == app) {
			struct fw_app *a = *pp;

			*pp = a->next;
			free(a);
			break;
		}
	}
	pthread_mutex_unlock(&card->lock);
}

CK_USER_TYPE fw_login_of(struct fw_card *card, uint64_t app, unsigned int part)
{
	struct fw_app *a;
	CK_USER_TYPE u = FW_NOBODY;

	pthread_mutex_lock(&card->lock);
	a = fw_app_find(card, app);
	if (a && part < FW_MAX_PARTITIONS)
		u = a->login[part];
	pthread_mutex_unlock(&card->lock);
	return u;
}

CK_STATE fw_session_state(struct fw_card *card, const struct fw_session *s)
{
	CK_USER_TYPE u = fw_login_of(card, s->app, s->part);
	bool rw = s->flags & CKF_RW_SESSION;

	if (u == CKU_SO)
		return CKS_RW_SO_FUNCTIONS;
	if (u == CKU_USER)
		return rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
	return rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
}

/* ---- sessions --------------------------------------------------------- */

static struct fw_session *session_lookup(struct fw_card *card, uint64_t h)
{
	for (struct fw_session *s = card->sessions[fw_bucket(h)]; s; s = s->next)
		if (s->handle == h)
			return s;
	return NULL;
}

void fw_find_clear(struct fw_session *s)
{
	free(s->found);
	s->found = NULL;
	s->nfound = s->found_pos = 0;
	s->find_active = false;
}

void fw_session_reset_ops(struct fw_session *s)
{
	for (int k = 0; k < FW_OPK_MAX; k++) {
		fw_op_free(s->op[k].op);
		memset(&s->op[k], 0, sizeof(s->op[k]));
		fw_msg_free(s->msg[k].msg);
		memset(&s->msg[k], 0, sizeof(s->msg[k]));
	}
	fw_find_clear(s);
}

static void session_free(struct fw_session *s)
{
	fw_session_reset_ops(s);
	fw_cpv3_session_free(s);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void session_unref(struct fw_card *card, struct fw_session *s)
{
	bool last;

	pthread_mutex_lock(&card->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&card->lock);
	if (last)
		session_free(s);
}

/*
 * Look a session up for a command: it must belong to the calling
 * application.  Returns it referenced and locked for the command.
 */
CK_RV fw_session_get(struct fw_card *card, uint64_t app, uint64_t handle,
		     struct fw_session **out)
{
	struct fw_session *s;
	bool live;

	pthread_mutex_lock(&card->lock);
	s = session_lookup(card, handle);
	if (!s || s->app != app || !s->live) {
		pthread_mutex_unlock(&card->lock);
		return CKR_SESSION_HANDLE_INVALID;
	}
	s->refs++;
	pthread_mutex_unlock(&card->lock);

	pthread_mutex_lock(&s->lock);
	pthread_mutex_lock(&card->lock);
	live = s->live;
	pthread_mutex_unlock(&card->lock);
	if (!live) {
		/* Closed by another thread while we waited for it. */
		fw_session_put(card, s);
		return CKR_SESSION_CLOSED;
	}
	*out = s;
	return CKR_OK;
}

/* Is @handle an open session?  Caller holds card->lock. */
bool fw_session_live_locked(struct fw_card *card, uint64_t handle)
{
	struct fw_session *s = session_lookup(card, handle);

	return s && s->live;
}

void fw_session_put(struct fw_card *card, struct fw_session *s)
{
	pthread_mutex_unlock(&s->lock);
	session_unref(card, s);
}

static bool app_has_sessions(struct fw_card *card, uint64_t app,
			     unsigned int part)
{
	for (size_t b = 0; b < FW_BUCKETS; b++)
		for (struct fw_session *s = card->sessions[b]; s; s = s->next)
			if (s->app == app && s->part == part)
				return true;
	return false;
}

CK_RV fw_open_session(struct fw_card *card, uint64_t app, unsigned int part,
		      CK_FLAGS flags, uint64_t *out)
{
	struct fw_session *s;
	struct fw_app *a;
	uint64_t handle;
	CK_RV rv;

	if (part >= card->nparts)
		return CKR_SLOT_ID_INVALID;
	if (!(flags & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	if (flags & ~(CK_FLAGS)(CKF_SERIAL_SESSION | CKF_RW_SESSION))
		return CKR_ARGUMENTS_BAD;
	rv = fw_alloc_handle(card, &handle);
	if (rv != CKR_OK)
		return rv;
	s = calloc(1, sizeof(*s));
	if (!s)
		return CKR_HOST_MEMORY;
	pthread_mutex_init(&s->lock, NULL);
	s->handle = handle;
	s->app = app;
	s->part = part;
	s->flags = flags;
	s->refs = 1;		/* the table's */
	s->live = true;

	pthread_mutex_lock(&card->lock);
	a = fw_app_find(card, app);
	if (!card->part[part].initialized || card->part_busy[part])
		rv = CKR_TOKEN_NOT_RECOGNIZED;
	else if (card->nsessions >= FW_MAX_SESSIONS)
		rv = CKR_SESSION_COUNT;
	else if (!a)
		rv = CKR_GENERAL_ERROR;
	else if (a->login[part] == CKU_SO && !(flags & CKF_RW_SESSION))
		rv = CKR_SESSION_READ_WRITE_SO_EXISTS;
	if (rv == CKR_OK) {
		size_t b = fw_bucket(handle);

		s->next = card->sessions[b];
		card->sessions[b] = s;
		card->nsessions++;
	}
	pthread_mutex_unlock(&card->lock);
	if (rv != CKR_OK) {
		session_free(s);
		return rv;
	}
	*out = handle;
	return CKR_OK;
}

static bool obj_of_sessions(const struct fw_obj *o, const void *arg)
{
	const struct fw_session *const *list = arg;

	if (o->token)
		return false;
	for (size_t i = 0; list[i]; i++)
		if (o->session == list[i]->handle)
			return true;
	return false;
}

/*
 * Close sessions of @app: the one on @part, or on every partition.  Their
 * session objects go, and the application's login on a partition ends
 * with its last session there.
 */
void fw_close_sessions(struct fw_card *card, uint64_t app, unsigned int part,
		       bool all_parts)
{
	struct fw_session **list = NULL;
	size_t n = 0, cap = 0;
	struct fw_app *a;

	pthread_mutex_lock(&card->lock);
	for (size_t b = 0; b < FW_BUCKETS; b++) {
		struct fw_session **pp = &card->sessions[b];

		while (*pp) {
			struct fw_session *s = *pp;

			if (s->app != app || (!all_parts && s->part != part)) {
				pp = &s->next;
				continue;
			}
			if (n + 2 > cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct fw_session **nl =
					realloc(list, ncap * sizeof(*nl));

				if (!nl)
					break;	/* the rest stays open */
				list = nl;
				cap = ncap;
			}
			*pp = s->next;
			s->live = false;
			card->nsessions--;
			list[n++] = s;
			list[n] = NULL;
		}
	}
	if (n)
		fw_objects_drop(card, obj_of_sessions, list);
	a = fw_app_find(card, app);
	for (unsigned int p = 0; a && p < card->nparts; p++)
		if (!app_has_sessions(card, app, p))
			a->login[p] = FW_NOBODY;
	pthread_mutex_unlock(&card->lock);
	for (size_t i = 0; i < n; i++)
		session_unref(card, list[i]);
	free(list);
}

/* Close one session; the caller holds its lock and a reference. */
CK_RV fw_close_session(struct fw_card *card, struct fw_session *s)
{
	struct fw_session *list[2] = { s, NULL };
	struct fw_session **pp;
	struct fw_app *a;
	bool found = false;

	pthread_mutex_lock(&card->lock);
	for (pp = &card->sessions[fw_bucket(s->handle)]; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			found = true;
			break;
		}
	}
	if (!found) {
		pthread_mutex_unlock(&card->lock);
		return CKR_SESSION_CLOSED;
	}
	s->live = false;
	card->nsessions--;
	fw_objects_drop(card, obj_of_sessions, list);
	a = fw_app_find(card, s->app);
	if (a && !app_has_sessions(card, s->app, s->part))
		a->login[s->part] = FW_NOBODY;
	s->refs--;	/* the table's; the caller still holds one */
	pthread_mutex_unlock(&card->lock);
	return CKR_OK;
}

/* Sessions on a partition, from every application (for C_GetTokenInfo
 * and C_InitToken).  Caller holds card->lock. */
void fw_count_sessions(struct fw_card *card, unsigned int part, size_t *all,
		       size_t *rw)
{
	*all = *rw = 0;
	for (size_t b = 0; b < FW_BUCKETS; b++) {
		for (struct fw_session *s = card->sessions[b]; s; s = s->next) {
			if (s->part != part)
				continue;
			(*all)++;
			if (s->flags & CKF_RW_SESSION)
				(*rw)++;
		}
	}
}

/* Does @app have a read-only session on @part?  Caller holds card->lock. */
bool fw_app_has_ro_session(struct fw_card *card, uint64_t app,
			   unsigned int part)
{
	for (size_t b = 0; b < FW_BUCKETS; b++)
		for (struct fw_session *s = card->sessions[b]; s; s = s->next)
			if (s->app == app && s->part == part &&
			    !(s->flags & CKF_RW_SESSION))
				return true;
	return false;
}
