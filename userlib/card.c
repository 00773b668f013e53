// SPDX-License-Identifier: MIT
/*
 * Cards: one connection (application context) per card, the card's
 * identity from GET_CARD_INFO, and the mapping of slot IDs onto cards and
 * partitions.
 *
 * A card that cannot be reached keeps the slots it had (if it was ever
 * reached), shown without a token; C_GetSlotList with a NULL list tries
 * to reconnect such cards.  A new connection is a new application
 * context: the sessions of the old one are gone.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib.h"
#include "transport.h"

CK_RV lib_card_setup(struct lib_card *card, unsigned int index,
		     const char *path)
{
	CK_RV rv;

	memset(card, 0, sizeof(*card));
	card->index = index;
	card->path = strdup(path);
	if (!card->path)
		return CKR_HOST_MEMORY;
	rv = lib_mutex_new(&card->lock);
	if (rv != CKR_OK) {
		free(card->path);
		card->path = NULL;
	}
	return rv;
}

static void msg_mechs_free(struct lib_card *card)
{
	while (card->msg_mechs) {
		struct lib_msg_mech *m = card->msg_mechs;

		card->msg_mechs = m->next;
		free(m);
	}
}

void lib_card_teardown(struct lib_card *card)
{
	if (card->conn)
		phsm_transport_put(card->conn);
	msg_mechs_free(card);
	lib_mutex_free(card->lock);
	free(card->path);
	memset(card, 0, sizeof(*card));
}

void lib_card_abandon(struct lib_card *card)
{
	if (card->conn)
		card->conn->ops->abandon(card->conn);
}

/* Decode GET_CARD_INFO's struct phsm_card_info. */
static bool parse_card_info(const uint8_t *p, size_t n,
			    struct lib_card_info *info)
{
	const struct phsm_card_info *ci = (const void *)p;
	uint32_t parts;

	if (!p || n != sizeof(struct phsm_card_info))
		return false;
	memcpy(info->manufacturer, p + offsetof(struct phsm_card_info, manufacturer),
	       sizeof(info->manufacturer));
	memcpy(info->model, p + offsetof(struct phsm_card_info, model),
	       sizeof(info->model));
	memcpy(info->serial, p + offsetof(struct phsm_card_info, serial),
	       sizeof(info->serial));
	info->hw_major = ci->hw_major;
	info->hw_minor = ci->hw_minor;
	info->fw_major = ci->fw_major;
	info->fw_minor = ci->fw_minor;
	memcpy(&parts, p + offsetof(struct phsm_card_info, partitions),
	       sizeof(parts));
	/* Little-endian host (lib.h); more than 16 cannot have slot IDs. */
	if (parts > LIB_PARTS_PER_CARD)
		return false;
	info->partitions = parts;
	return true;
}

static bool query_card_info(struct lib_card *card, struct phsm_transport *t,
			    struct lib_card_info *info)
{
	struct lib_call c;
	const uint8_t *p;
	size_t n;
	bool ok = false;
	CK_RV rv;

	/* Not through card->conn: the connection is not published yet. */
	phsm_transport_get(t);
	rv = call_begin(&c, card, t, PHSM_OP_GET_CARD_INFO);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK) {
		p = phsm_get_bytes(&c.r, &n);
		ok = call_done(&c) && parse_card_info(p, n, info);
	}
	call_end(&c, rv);
	return ok;
}

/*
 * A character device is a driver's card; anything else is phsm-fw's
 * socket, used through shared memory when the daemon offers it.
 * PHSM_TRANSPORT=socket keeps to the socket, =shm refuses to fall back.
 */
static CK_RV open_transport(const char *path, struct phsm_transport **t)
{
	const char *mode = getenv("PHSM_TRANSPORT");
	struct stat st;
	CK_RV rv;

	if (stat(path, &st) == 0 && S_ISCHR(st.st_mode))
		return phsm_dev_open(path, t);
	if (mode && !strcmp(mode, "socket"))
		return phsm_socket_open(path, t);
	rv = phsm_shm_open(path, t);
	if (rv != CKR_FUNCTION_NOT_SUPPORTED || (mode && !strcmp(mode, "shm")))
		return rv;
	return phsm_socket_open(path, t);
}

bool lib_card_connect(struct lib_card *card)
{
	struct phsm_transport *t, *old;
	struct lib_card_info info;

	lib_lock(card->lock);
	t = card->conn;
	if (t && !t->ops->dead(t)) {
		lib_unlock(card->lock);
		return true;
	}
	lib_unlock(card->lock);

	if (open_transport(card->path, &t) != CKR_OK)
		return false;
	if (!query_card_info(card, t, &info)) {
		phsm_transport_put(t);
		return false;
	}
	lib_lock(card->lock);
	old = card->conn;
	if (old)
		card->generation = (card->generation + 1) & LIB_HANDLE_GEN_MASK;
	card->conn = t;
	card->info = info;
	card->known = true;
	msg_mechs_free(card);
	lib_unlock(card->lock);
	if (old)
		phsm_transport_put(old);
	return true;
}

struct phsm_transport *lib_card_conn(struct lib_card *card, unsigned int *gen)
{
	struct phsm_transport *t;

	lib_lock(card->lock);
	t = card->conn;
	*gen = card->generation;
	if (t)
		phsm_transport_get(t);
	lib_unlock(card->lock);
	return t;
}

bool lib_card_present(struct lib_card *card)
{
	unsigned int gen;
	struct phsm_transport *t = lib_card_conn(card, &gen);
	bool present = t && !t->ops->dead(t);

	if (t)
		phsm_transport_put(t);
	return present;
}

CK_RV lib_slot_lookup(struct lib_state *s, CK_SLOT_ID slot,
		      struct lib_card **card, unsigned int *part)
{
	CK_SLOT_ID index = slot / LIB_PARTS_PER_CARD;
	unsigned int p = (unsigned int)(slot % LIB_PARTS_PER_CARD);
	struct lib_card *c;
	bool ok;

	if (index >= s->ncards)
		return CKR_SLOT_ID_INVALID;
	c = &s->cards[index];
	lib_lock(c->lock);
	ok = c->known && p < c->info.partitions;
	lib_unlock(c->lock);
	if (!ok)
		return CKR_SLOT_ID_INVALID;
	*card = c;
	*part = p;
	return CKR_OK;
}

CK_SESSION_HANDLE lib_session_handle(const struct lib_card *card,
				     unsigned int generation, uint64_t local)
{
	if (local == 0 || local > LIB_HANDLE_LOCAL_MASK)
		return CK_INVALID_HANDLE;
	return (CK_SESSION_HANDLE)card->index << LIB_HANDLE_CARD_SHIFT |
	       (CK_SESSION_HANDLE)generation << LIB_HANDLE_GEN_SHIFT | local;
}

/*
 * Message-based operations: the per-message parameter's encoding depends
 * on the mechanism given to C_Message*Init, so it is remembered here.
 */
static struct lib_msg_mech *msg_mech_find(struct lib_card *card,
					  CK_SESSION_HANDLE h,
					  unsigned int kind)
{
	struct lib_msg_mech *m;

	for (m = card->msg_mechs; m; m = m->next)
		if (m->session == h && m->kind == kind)
			return m;
	return NULL;
}

void lib_msg_mech_set(struct lib_card *card, CK_SESSION_HANDLE h,
		      unsigned int kind, CK_MECHANISM_TYPE mech)
{
	struct lib_msg_mech *m;

	lib_lock(card->lock);
	m = msg_mech_find(card, h, kind);
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (m) {
			m->session = h;
			m->kind = kind;
			m->next = card->msg_mechs;
			card->msg_mechs = m;
		}
	}
	/* Without memory the parameter is sent as for an unknown mechanism. */
	if (m)
		m->mechanism = mech;
	lib_unlock(card->lock);
}

bool lib_msg_mech_get(struct lib_card *card, CK_SESSION_HANDLE h,
		      unsigned int kind, CK_MECHANISM_TYPE *mech)
{
	struct lib_msg_mech *m;

	lib_lock(card->lock);
	m = msg_mech_find(card, h, kind);
	if (m)
		*mech = m->mechanism;
	lib_unlock(card->lock);
	return m != NULL;
}

void lib_msg_mech_forget(struct lib_card *card, CK_SESSION_HANDLE h)
{
	struct lib_msg_mech **pp;

	lib_lock(card->lock);
	pp = &card->msg_mechs;
	while (*pp) {
		struct lib_msg_mech *m = *pp;

		if (m->session == h) {
			*pp = m->next;
			free(m);
		} else {
			pp = &m->next;
		}
	}
	lib_unlock(card->lock);
}
