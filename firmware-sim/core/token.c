// SPDX-License-Identifier: MIT
/*
 * Tokens (the card's partitions): C_GetTokenInfo, C_InitToken, C_InitPIN,
 * C_SetPIN, C_Login and C_Logout.
 *
 * PBKDF2 is slow on purpose, so it always runs without a lock; its result
 * is applied under store_lock to the record as it is by then.  Every
 * change to a PIN record, the retry counters included, is committed to
 * the store before the answer leaves the card: killing the card between
 * a wrong PIN and its answer does not give a guess back.
 */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "clone.h"
#include "internal.h"

#define MANUFACTURER	"phsm project"
#define MODEL		"phsm-sim"
#define HW_MAJOR	1
#define HW_MINOR	0
#define FW_MAJOR	0
#define FW_MINOR	1

static void pad_copy(uint8_t *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	memset(dst, ' ', len);
	memcpy(dst, src, n < len ? n : len);
}

static struct fw_pin *pin_of(struct fw_part_rec *r, CK_USER_TYPE who)
{
	return who == CKU_SO ? &r->so : &r->user;
}

/* Fill the fixed blocks every info answer shares. */
void fw_card_fill_info(struct fw_card *card, struct phsm_card_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	pad_copy(ci->manufacturer, sizeof(ci->manufacturer), MANUFACTURER);
	pad_copy(ci->model, sizeof(ci->model), MODEL);
	memcpy(ci->serial, card->serial, sizeof(ci->serial));
	ci->hw_major = HW_MAJOR;
	ci->hw_minor = HW_MINOR;
	ci->fw_major = FW_MAJOR;
	ci->fw_minor = FW_MINOR;
	fw_put_le32((uint8_t *)&ci->partitions, card->nparts);
	fw_put_le64((uint8_t *)&ci->time, fw_clock(card));
}

static void put_info_u64(__le64 *field, uint64_t v)
{
	fw_put_le64((uint8_t *)field, v);
}

/* Each token's serial: the card's twelve digits, '-' and the partition. */
static void token_serial(struct fw_card *card, unsigned int part,
			 uint8_t serial[PHSM_SERIAL_LEN])
{
	static const char hex[] = "0123456789ABCDEF";

	memcpy(serial, card->serial, PHSM_SERIAL_LEN);
	serial[12] = '-';
	serial[13] = (uint8_t)hex[part >> 4 & 15];
	serial[14] = (uint8_t)hex[part & 15];
	serial[15] = ' ';
}

CK_RV fw_token_info(struct fw_card *card, unsigned int part,
		    struct phsm_token_info *ti)
{
	struct fw_part_rec rec;
	size_t all, rw;
	CK_FLAGS flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_CLOCK_ON_TOKEN;
	struct tm tm;
	time_t now = (time_t)fw_clock(card);
	char utc[17];

	if (part >= card->nparts)
		return CKR_SLOT_ID_INVALID;
	pthread_mutex_lock(&card->lock);
	rec = card->part[part];
	fw_count_sessions(card, part, &all, &rw);
	pthread_mutex_unlock(&card->lock);

	if (rec.initialized)
		flags |= CKF_TOKEN_INITIALIZED;
	if (rec.user.set)
		flags |= CKF_USER_PIN_INITIALIZED;
	flags |= fw_pin_flags(&rec.so, true) | fw_pin_flags(&rec.user, false);

	memset(ti, 0, sizeof(*ti));
	memcpy(ti->label, rec.label, sizeof(ti->label));
	pad_copy(ti->manufacturer, sizeof(ti->manufacturer), MANUFACTURER);
	pad_copy(ti->model, sizeof(ti->model), MODEL);
	token_serial(card, part, ti->serial);
	put_info_u64(&ti->flags, flags);
	put_info_u64(&ti->max_session_count, FW_MAX_SESSIONS);
	put_info_u64(&ti->session_count, all);
	put_info_u64(&ti->max_rw_session_count, FW_MAX_SESSIONS);
	put_info_u64(&ti->rw_session_count, rw);
	put_info_u64(&ti->max_pin_len, FW_PIN_MAX);
	put_info_u64(&ti->min_pin_len, FW_PIN_MIN);
	put_info_u64(&ti->total_public_memory, CK_UNAVAILABLE_INFORMATION);
	put_info_u64(&ti->free_public_memory, CK_UNAVAILABLE_INFORMATION);
	put_info_u64(&ti->total_private_memory, CK_UNAVAILABLE_INFORMATION);
	put_info_u64(&ti->free_private_memory, CK_UNAVAILABLE_INFORMATION);
	ti->hw_major = HW_MAJOR;
	ti->hw_minor = HW_MINOR;
	ti->fw_major = FW_MAJOR;
	ti->fw_minor = FW_MINOR;
	gmtime_r(&now, &tm);
	strftime(utc, sizeof(utc), "%Y%m%d%H%M%S00", &tm);
	memcpy(ti->utc_time, utc, sizeof(ti->utc_time));
	OPENSSL_cleanse(&rec, sizeof(rec));
	return CKR_OK;
}

/*
 * Change a partition record: @change edits a copy under store_lock, the
 * copy is committed, and only then becomes the card's.  @change may
 * refuse with an rv, which is returned untouched.
 */
typedef CK_RV (*rec_change_fn)(struct fw_part_rec *rec, const void *arg);

static CK_RV change_record(struct fw_card *card, unsigned int part,
			   rec_change_fn change, const void *arg)
{
	struct fw_part_rec rec;
	CK_RV rv;

	pthread_mutex_lock(&card->store_lock);
	pthread_mutex_lock(&card->lock);
	rec = card->part[part];
	pthread_mutex_unlock(&card->lock);
	rv = change(&rec, arg);
	if (rv == CKR_OK && !memcmp(&rec, &card->part[part], sizeof(rec))) {
		/* Nothing changed (a good PIN with no failures to forget). */
	} else if (rv == CKR_OK) {
		rv = fw_store_put_partition(card->store, part, &rec);
	}
	if (rv == CKR_OK) {
		pthread_mutex_lock(&card->lock);
		card->part[part] = rec;
		pthread_mutex_unlock(&card->lock);
	}
	pthread_mutex_unlock(&card->store_lock);
	OPENSSL_cleanse(&rec, sizeof(rec));
	return rv;
}

struct try_result {
	CK_USER_TYPE who;
	const uint8_t *salt;	/* the record the PIN was checked against */
	bool good;
	bool locked;		/* locked by this very try */
};

static CK_RV count_try(struct fw_part_rec *rec, const void *arg)
{
	struct try_result *t = (struct try_result *)arg;
	struct fw_pin *p = pin_of(rec, t->who);

	/* The PIN changed while PBKDF2 ran: this try says nothing. */
	if (!p->set || memcmp(p->salt, t->salt, FW_SALT_LEN))
		return CKR_FUNCTION_CANCELED;
	if (fw_pin_locked(p))
		return CKR_PIN_LOCKED;
	if (t->good) {
		if (p->fails == 0)
			return CKR_OK;
		p->fails = 0;
	} else {
		p->fails++;
		t->locked = fw_pin_locked(p);
	}
	return CKR_OK;
}

/*
 * Check @pin against the SO or user PIN of @part, counting the try.
 * On CKR_OK, @salt_out (if given) receives the salt of the record that
 * matched, so that a change can make sure it replaces that very PIN.
 */
static CK_RV verify_pin(struct fw_card *card, unsigned int part,
			CK_USER_TYPE who, const uint8_t *pin, size_t len,
			uint8_t *salt_out)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		struct fw_pin snap;
		uint8_t hash[FW_HASH_LEN];
		struct try_result t = { .who = who, .salt = snap.salt };
		CK_RV rv;

		pthread_mutex_lock(&card->lock);
		snap = *pin_of(&card->part[part], who);
		pthread_mutex_unlock(&card->lock);
		if (!snap.set)
			return who == CKU_USER ? CKR_USER_PIN_NOT_INITIALIZED
					       : CKR_PIN_INCORRECT;
		if (fw_pin_locked(&snap))
			return CKR_PIN_LOCKED;
		if (fw_pin_len_ok(len)) {
			rv = fw_pin_derive(pin, len, snap.salt, snap.iterations,
					   hash);
			if (rv != CKR_OK)
				return rv;
			t.good = fw_pin_equal(&snap, hash);
			OPENSSL_cleanse(hash, sizeof(hash));
		}
		rv = change_record(card, part, count_try, &t);
		if (rv == CKR_FUNCTION_CANCELED)
			continue;
		if (rv == CKR_OK && salt_out)
			memcpy(salt_out, snap.salt, FW_SALT_LEN);
		OPENSSL_cleanse(&snap, sizeof(snap));
		if (rv != CKR_OK)
			return rv;
		if (t.good)
			return CKR_OK;
		return t.locked ? CKR_PIN_LOCKED : CKR_PIN_INCORRECT;
	}
	return CKR_FUNCTION_FAILED;
}

/* ---- C_InitToken ------------------------------------------------------ */

static bool obj_of_part(const struct fw_obj *o, const void *arg)
{
	return o->part == *(const unsigned int *)arg;
}

/* Reserve the partition for re-initialisation: no session may exist. */
static CK_RV claim_partition(struct fw_card *card, unsigned int part,
			     bool was_initialized)
{
	size_t all, rw;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&card->lock);
	fw_count_sessions(card, part, &all, &rw);
	if (all)
		rv = CKR_SESSION_EXISTS;
	else if (card->part_busy[part])
		rv = CKR_FUNCTION_FAILED;
	else if (card->part[part].initialized != was_initialized)
		rv = CKR_PIN_INCORRECT;	/* initialised meanwhile by someone else */
	else
		card->part_busy[part] = true;
	pthread_mutex_unlock(&card->lock);
	return rv;
}

CK_RV fw_init_token(struct fw_card *card, unsigned int part,
		    const uint8_t *pin, size_t pin_len, const uint8_t *label)
{
	struct fw_part_rec rec = { .initialized = true };
	struct fw_part_ext ext = { 0 };
	size_t all, rw;
	bool initialized;
	CK_RV rv;

	if (part >= card->nparts)
		return CKR_SLOT_ID_INVALID;
	pthread_mutex_lock(&card->lock);
	initialized = card->part[part].initialized;
	fw_count_sessions(card, part, &all, &rw);
	pthread_mutex_unlock(&card->lock);
	if (all)
		return CKR_SESSION_EXISTS;
	if (initialized) {
		rv = verify_pin(card, part, CKU_SO, pin, pin_len, NULL);
		if (rv != CKR_OK)
			return rv;
	} else if (!fw_pin_len_ok(pin_len)) {
		return CKR_PIN_LEN_RANGE;
	}
	memcpy(rec.label, label, sizeof(rec.label));
	rv = fw_pin_make(&rec.so, pin, pin_len, card->pin_iterations);
	if (rv != CKR_OK)
		return rv;

	pthread_mutex_lock(&card->store_lock);
	rv = claim_partition(card, part, initialized);
	if (rv == CKR_OK) {
		/* The cloning domains and policies go with the old token. */
		pthread_mutex_lock(&card->lock);
		ext = card->ext[part];
		pthread_mutex_unlock(&card->lock);
		fw_ext_reset(&ext);
		rv = fw_store_init_partition(card->store, part, &rec, &ext);
		pthread_mutex_lock(&card->lock);
		if (rv == CKR_OK) {
			card->part[part] = rec;
			card->ext[part] = ext;
			fw_objects_drop(card, obj_of_part, &part);
			for (struct fw_app *a = card->apps; a; a = a->next)
				a->login[part] = FW_NOBODY;
		}
		card->part_busy[part] = false;
		pthread_mutex_unlock(&card->lock);
		if (rv == CKR_OK)
			fw_clone_drop_partition(card, part);
	}
	pthread_mutex_unlock(&card->store_lock);
	OPENSSL_cleanse(&rec, sizeof(rec));
	OPENSSL_cleanse(&ext, sizeof(ext));
	return rv;
}

/* ---- C_InitPIN, C_SetPIN ---------------------------------------------- */

struct pin_change {
	CK_USER_TYPE who;
	const struct fw_pin *pin;
	const uint8_t *old_salt;	/* NULL: no check (C_InitPIN) */
};

static CK_RV replace_pin(struct fw_part_rec *rec, const void *arg)
{
	const struct pin_change *c = arg;
	struct fw_pin *p = pin_of(rec, c->who);

	if (!rec->initialized)
		return CKR_TOKEN_NOT_RECOGNIZED;
	if (c->old_salt && (!p->set || memcmp(p->salt, c->old_salt, FW_SALT_LEN)))
		return CKR_PIN_INCORRECT;	/* changed by someone else meanwhile */
	*p = *c->pin;
	return CKR_OK;
}

CK_RV fw_init_pin(struct fw_card *card, struct fw_session *s,
		  const uint8_t *pin, size_t len)
{
	struct fw_pin np;
	struct pin_change c = { .who = CKU_USER, .pin = &np };
	CK_RV rv;

	if (fw_session_state(card, s) != CKS_RW_SO_FUNCTIONS)
		return CKR_USER_NOT_LOGGED_IN;
	if (!fw_pin_len_ok(len))
		return CKR_PIN_LEN_RANGE;
	rv = fw_pin_make(&np, pin, len, card->pin_iterations);
	if (rv == CKR_OK)
		rv = change_record(card, s->part, replace_pin, &c);
	OPENSSL_cleanse(&np, sizeof(np));
	return rv;
}

CK_RV fw_set_pin(struct fw_card *card, struct fw_session *s,
		 const uint8_t *old, size_t old_len,
		 const uint8_t *new_pin, size_t new_len)
{
	CK_USER_TYPE who = fw_login_of(card, s->app, s->part) == CKU_SO ?
			   CKU_SO : CKU_USER;
	uint8_t salt[FW_SALT_LEN];
	struct fw_pin np;
	struct pin_change c = { .who = who, .pin = &np, .old_salt = salt };
	CK_RV rv;

	if (!(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	if (!fw_pin_len_ok(new_len))
		return CKR_PIN_LEN_RANGE;
	rv = verify_pin(card, s->part, who, old, old_len, salt);
	if (rv != CKR_OK)
		return rv;
	rv = fw_pin_make(&np, new_pin, new_len, card->pin_iterations);
	if (rv == CKR_OK)
		rv = change_record(card, s->part, replace_pin, &c);
	OPENSSL_cleanse(&np, sizeof(np));
	return rv;
}

/* ---- C_Login, C_Logout ------------------------------------------------ */

static bool private_obj_of_app(const struct fw_obj *o, const void *arg)
{
	const struct fw_session *s = arg;

	return !o->token && o->priv && o->app == s->app && o->part == s->part;
}

/* End the application's login on the session's partition (card->lock). */
static void logout_locked(struct fw_card *card, const struct fw_session *s)
{
	struct fw_app *a = fw_app_find(card, s->app);

	if (a)
		a->login[s->part] = FW_NOBODY;
	fw_objects_drop(card, private_obj_of_app, s);
}

/* CKU_CONTEXT_SPECIFIC: authorise the active operation's key once. */
static CK_RV login_context(struct fw_card *card, struct fw_session *s,
			   const uint8_t *pin, size_t len)
{
	struct fw_op_slot *slot = NULL;
	CK_RV rv;

	for (int k = 0; k < FW_OPK_MAX; k++)
		if (s->op[k].op && s->op[k].need_auth)
			slot = &s->op[k];
	if (!slot)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (fw_login_of(card, s->app, s->part) != CKU_USER)
		return CKR_USER_NOT_LOGGED_IN;
	rv = verify_pin(card, s->part, CKU_USER, pin, len, NULL);
	if (rv == CKR_OK) {
		slot->authed = true;
	} else if (rv == CKR_PIN_LOCKED) {
		pthread_mutex_lock(&card->lock);
		logout_locked(card, s);
		pthread_mutex_unlock(&card->lock);
	}
	return rv;
}

/* Can @app log @type in on @part now?  Caller holds card->lock. */
static CK_RV login_allowed(struct fw_card *card, const struct fw_session *s,
			   CK_USER_TYPE type)
{
	struct fw_app *a = fw_app_find(card, s->app);

	if (!a)
		return CKR_GENERAL_ERROR;
	if (a->login[s->part] == type)
		return CKR_USER_ALREADY_LOGGED_IN;
	if (a->login[s->part] != FW_NOBODY)
		return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	if (type == CKU_SO && fw_app_has_ro_session(card, s->app, s->part))
		return CKR_SESSION_READ_ONLY_EXISTS;
	return CKR_OK;
}

CK_RV fw_login(struct fw_card *card, struct fw_session *s, CK_USER_TYPE type,
	       const uint8_t *pin, size_t len)
{
	CK_RV rv;

	if (type == CKU_CONTEXT_SPECIFIC)
		return login_context(card, s, pin, len);
	if (type != CKU_SO && type != CKU_USER)
		return CKR_USER_TYPE_INVALID;
	pthread_mutex_lock(&card->lock);
	rv = login_allowed(card, s, type);
	pthread_mutex_unlock(&card->lock);
	if (rv != CKR_OK)
		return rv;
	rv = verify_pin(card, s->part, type, pin, len, NULL);
	if (rv != CKR_OK)
		return rv;
	/* Another thread of the application may have logged in meanwhile,
	 * or closed this session. */
	pthread_mutex_lock(&card->lock);
	rv = s->live ? login_allowed(card, s, type) : CKR_SESSION_CLOSED;
	if (rv == CKR_OK)
		fw_app_find(card, s->app)->login[s->part] = type;
	pthread_mutex_unlock(&card->lock);
	return rv;
}

CK_RV fw_logout(struct fw_card *card, struct fw_session *s)
{
	struct fw_app *a;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&card->lock);
	a = fw_app_find(card, s->app);
	if (!a || a->login[s->part] == FW_NOBODY)
		rv = CKR_USER_NOT_LOGGED_IN;
	else
		logout_locked(card, s);
	pthread_mutex_unlock(&card->lock);
	return rv;
}
