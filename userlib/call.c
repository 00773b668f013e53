// SPDX-License-Identifier: MIT
/*
 * The one path every request takes: find the card from the slot or
 * session, start the message, send it, and check the answer's header
 * (framing, response flag, opcode, tag, protocol status) before handing
 * back the card's CK_RV and a reader over the answer's fields.
 *
 * Nothing in an answer is trusted: a malformed answer, one with fields
 * left over or missing, or one whose lengths disagree with the caller's
 * buffers is CKR_DEVICE_ERROR.
 */
#include <stdlib.h>
#include <string.h>

#include "lib.h"
#include "transport.h"

CK_RV call_begin(struct lib_call *c, struct lib_card *card,
		 struct phsm_transport *conn, uint16_t opcode)
{
	memset(c, 0, sizeof(*c));
	c->w.failed = true;	/* puts are no-ops until the message begins */
	c->card = card;
	c->conn = conn;
	c->opcode = opcode;
	if (!conn)
		return CKR_DEVICE_REMOVED;
	if (!phsm_msg_begin(&c->w, opcode, 0, 0, 0))
		return CKR_HOST_MEMORY;
	return CKR_OK;
}

CK_RV call_card(struct lib_call *c, struct lib_card *card, uint16_t opcode)
{
	unsigned int gen;
	struct phsm_transport *conn = lib_card_conn(card, &gen);
	CK_RV rv = call_begin(c, card, conn, opcode);

	c->generation = gen;
	return rv;
}

CK_RV call_slot(struct lib_call *c, CK_SLOT_ID slot, uint16_t opcode,
		unsigned int *part)
{
	struct lib_state *s = lib_state();
	struct lib_card *card;
	unsigned int p;
	CK_RV rv;

	memset(c, 0, sizeof(*c));
	c->w.failed = true;
	if (!s)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = lib_slot_lookup(s, slot, &card, &p);
	if (rv != CKR_OK)
		return rv;
	rv = call_card(c, card, opcode);
	if (rv == CKR_OK)
		phsm_put_u64(&c->w, p);
	if (part)
		*part = p;
	return rv;
}

CK_RV call_session(struct lib_call *c, CK_SESSION_HANDLE h, uint16_t opcode)
{
	struct lib_state *s = lib_state();
	uint64_t index = (uint64_t)h >> LIB_HANDLE_CARD_SHIFT;
	uint64_t gen = ((uint64_t)h >> LIB_HANDLE_GEN_SHIFT) & LIB_HANDLE_GEN_MASK;
	uint64_t local = (uint64_t)h & LIB_HANDLE_LOCAL_MASK;
	struct lib_card *card;
	CK_RV rv;

	memset(c, 0, sizeof(*c));
	c->w.failed = true;
	if (!s)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (index >= s->ncards || local == 0)
		return CKR_SESSION_HANDLE_INVALID;
	card = &s->cards[index];
	rv = call_card(c, card, opcode);
	if (rv == CKR_DEVICE_REMOVED && !c->conn)
		rv = CKR_SESSION_HANDLE_INVALID;	/* never reached: no sessions */
	else if (rv == CKR_OK && gen != c->generation)
		rv = CKR_SESSION_HANDLE_INVALID;	/* of a lost connection */
	if (rv == CKR_OK)
		phsm_put_u64(&c->w, local);
	c->session = h;
	return rv;
}

static uint32_t header_tag(const uint8_t *msg)
{
	const uint8_t *p = msg + offsetof(struct phsm_msg_hdr, tag);

	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

CK_RV call_run(struct lib_call *c)
{
	struct phsm_msg m;
	CK_RV rv;

	if (!phsm_msg_finish(&c->w, 0, 0))
		return CKR_HOST_MEMORY;
	rv = c->conn->ops->call(c->conn, c->w.data, c->w.len, &c->resp,
				&c->resp_len);
	if (rv != CKR_OK)
		return rv;
	if (phsm_msg_parse(c->resp, c->resp_len, true, &m) != PHSM_ST_OK ||
	    m.opcode != c->opcode || m.tag != header_tag(c->w.data))
		return CKR_DEVICE_ERROR;
	/* The card could not take our request apart. */
	if (m.status == PHSM_ST_NO_MEMORY)
		return CKR_DEVICE_MEMORY;
	if (m.status != PHSM_ST_OK)
		return CKR_DEVICE_ERROR;
	c->r = m.payload;
	c->answered = true;
	return (CK_RV)m.rv;
}

bool call_done(struct lib_call *c)
{
	return c->answered && phsm_reader_done(&c->r);
}

CK_RV call_end(struct lib_call *c, CK_RV rv)
{
	if (c->answered && !phsm_reader_done(&c->r))
		rv = CKR_DEVICE_ERROR;
	phsm_writer_free(&c->w);
	free(c->resp);
	if (c->conn)
		phsm_transport_put(c->conn);
	memset(c, 0, sizeof(*c));
	return rv;
}

CK_RV call_session_simple(CK_SESSION_HANDLE h, uint16_t opcode)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, h, opcode);

	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

CK_RV call_session_u64(CK_SESSION_HANDLE h, uint16_t opcode, uint64_t arg)
{
	struct lib_call c;
	CK_RV rv = call_session(&c, h, opcode);

	phsm_put_u64(&c.w, arg);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

uint64_t out_capacity(const void *buf, const CK_ULONG *len)
{
	return buf ? (uint64_t)*len : PHSM_OUT_QUERY;
}

/* Answer "U64 handle" into *out, once the whole answer checked out. */
CK_RV read_handle(struct lib_call *c, CK_RV rv, CK_OBJECT_HANDLE *out)
{
	uint64_t h;

	if (rv != CKR_OK)
		return rv;
	h = phsm_get_u64(&c->r);
	if (!call_done(c) || h == CK_INVALID_HANDLE)
		return CKR_DEVICE_ERROR;
	*out = h;
	return CKR_OK;
}

/*
 * "BYTES out, U64 outlen": present on CKR_OK and CKR_BUFFER_TOO_SMALL.
 * The card applies PKCS#11 5.2; we check that it did, against the
 * caller's buffer, before copying anything.
 */
CK_RV read_output(struct lib_call *c, CK_RV rv, CK_BYTE_PTR buf,
		  CK_ULONG_PTR len)
{
	const uint8_t *p;
	uint64_t outlen;
	size_t n;

	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		return rv;
	p = phsm_get_bytes(&c->r, &n);
	outlen = phsm_get_u64(&c->r);
	if (!p || c->r.status != PHSM_ST_OK)
		return CKR_DEVICE_ERROR;
	if (rv == CKR_BUFFER_TOO_SMALL) {
		if (!buf || n || outlen <= *len)
			return CKR_DEVICE_ERROR;
		*len = outlen;
		return rv;
	}
	if (!buf) {
		if (n)
			return CKR_DEVICE_ERROR;
		*len = outlen;
		return CKR_OK;
	}
	if (n != outlen || outlen > *len)
		return CKR_DEVICE_ERROR;
	if (n)
		memcpy(buf, p, n);
	*len = n;
	return CKR_OK;
}
