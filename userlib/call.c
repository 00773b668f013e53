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
 *
 * On the shared-memory transport a call builds its request in the
 * channel's data area, lent to it from call_begin() to call_end(), and
 * the card answers there.  The card may write there at any moment, so
 * the answer is copied out before it is parsed; only call_run_output()
 * leaves the output's bytes there, to be copied once, straight into the
 * caller's buffer, by a length taken from our copy.  Request and answer
 * are wiped, here and in the data area, when the call ends.
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
	if (conn->ops->lease && conn->ops->lease(conn, &c->lease)) {
		c->leased = true;
		phsm_writer_lend(&c->w, c->lease.buf, c->lease.cap);
	}
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

#define HDR_LEN		sizeof(struct phsm_msg_hdr)
#define FIELD_LEN	sizeof(struct phsm_field)
/* Fields after an output left in the lease (outlen, a parameter). */
#define OUT_TAIL_MAX	4096

static uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void le32_set(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t header_tag(const uint8_t *msg)
{
	return le32_at(msg + offsetof(struct phsm_msg_hdr, tag));
}

/*
 * An output answer in the lease, copied out but for the output: the
 * header, the BYTES field's header (its length 0 in our copy) and the
 * fields after it; the output's place and length go to c->out.  False if
 * the answer has not that shape: then it is copied out whole.
 */
static bool split_output(struct lib_call *c, const uint8_t *view, size_t n)
{
	const size_t head = HDR_LEN + FIELD_LEN;
	uint8_t fh[FIELD_LEN];
	size_t len, tail;
	uint8_t *p;

	if (n < head)
		return false;
	memcpy(fh, view + HDR_LEN, FIELD_LEN);
	len = le32_at(fh + 4);
	if (fh[0] != PHSM_FT_BYTES || fh[1] || fh[2] || fh[3] ||
	    len > n - head || n - head - len > OUT_TAIL_MAX)
		return false;
	tail = n - head - len;
	p = malloc(head + tail);
	if (!p)
		return false;
	memcpy(p, view, HDR_LEN);
	if (phsm_msg_peek_length(p, HDR_LEN) != n) {
		free(p);
		return false;	/* the whole copy's parse says what is wrong */
	}
	le32_set(p + offsetof(struct phsm_msg_hdr, length),
		 (uint32_t)(head + tail));
	memcpy(p + HDR_LEN, fh, 4);
	le32_set(p + HDR_LEN + 4, 0);
	memcpy(p + head, view + head + len, tail);
	c->resp = p;
	c->resp_len = head + tail;
	c->out = view + head;
	c->out_len = len;
	return true;
}

/* The exchange in the lease; the answer (or most of it) copied out. */
static CK_RV run_leased(struct lib_call *c, uint32_t *tag)
{
	const uint8_t *view;
	size_t n;
	CK_RV rv = c->conn->ops->call_leased(c->conn, &c->lease, c->w.len,
					     tag, &view, &n);

	if (rv != CKR_OK)
		return rv;
	if (c->out_direct && split_output(c, view, n))
		return CKR_OK;
	c->out_direct = false;
	c->resp = malloc(n);
	if (!c->resp)
		return CKR_HOST_MEMORY;
	memcpy(c->resp, view, n);
	c->resp_len = n;
	return CKR_OK;
}

CK_RV call_run(struct lib_call *c)
{
	struct phsm_msg m;
	uint32_t tag;
	CK_RV rv;

	if (!phsm_msg_finish(&c->w, 0, 0))
		return CKR_HOST_MEMORY;
	if (c->leased) {
		rv = run_leased(c, &tag);
	} else {
		rv = c->conn->ops->call(c->conn, c->w.data, c->w.len,
					&c->resp, &c->resp_len);
		tag = header_tag(c->w.data);
	}
	if (rv != CKR_OK)
		return rv;
	if (phsm_msg_parse(c->resp, c->resp_len, true, &m) != PHSM_ST_OK ||
	    m.opcode != c->opcode || m.tag != tag)
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
	if (c->leased)
		c->conn->ops->unlease(c->conn, &c->lease, c->w.len);
	phsm_writer_free(&c->w);
	phsm_wipe(c->resp, c->resp_len);
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
	if (p && c->out_direct) {
		p = c->out;		/* see split_output() */
		n = c->out_len;
	}
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

CK_RV call_run_output(struct lib_call *c, CK_BYTE_PTR buf, CK_ULONG_PTR len)
{
	c->out_direct = c->leased;
	return read_output(c, call_run(c), buf, len);
}
