// SPDX-License-Identifier: MIT
/* Encoder and decoder for the phsm command protocol. */
#include "phsm_codec.h"

#include <stdlib.h>
#include <string.h>

#define HDR_LEN sizeof(struct phsm_msg_hdr)
#define FIELD_LEN sizeof(struct phsm_field)

static void le16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32_put(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t le16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64_get(const uint8_t *p)
{
	return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}

void phsm_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

/* Reserve n bytes at the end of the message; NULL once the writer failed. */
static uint8_t *reserve(struct phsm_writer *w, size_t n)
{
	if (w->failed)
		return NULL;
	if (n > PHSM_MSG_MAX - w->len) {
		w->failed = true;
		return NULL;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		uint8_t *d;

		if (w->lent) {
			w->failed = true;
			return NULL;
		}
		while (cap < w->len + n)
			cap *= 2;
		/* Not realloc(): the old buffer may hold secrets, wipe it. */
		d = malloc(cap);
		if (!d) {
			w->failed = true;
			return NULL;
		}
		if (w->len)
			memcpy(d, w->data, w->len);
		phsm_wipe(w->data, w->len);
		free(w->data);
		w->data = d;
		w->cap = cap;
	}
	w->len += n;
	return w->data + w->len - n;
}

bool phsm_msg_begin(struct phsm_writer *w, uint16_t opcode, uint32_t flags,
		    uint64_t app_ctx, uint32_t tag)
{
	uint8_t *h;

	/* A writer used again: the last message must not outlive it. */
	if (w->data && w->len)
		phsm_wipe(w->data, w->len);
	w->len = 0;
	w->failed = false;
	h = reserve(w, HDR_LEN);
	if (!h)
		return false;
	memset(h, 0, HDR_LEN);
	le32_put(h + offsetof(struct phsm_msg_hdr, magic), PHSM_PROTO_MAGIC);
	le16_put(h + offsetof(struct phsm_msg_hdr, version), PHSM_PROTO_VERSION);
	le16_put(h + offsetof(struct phsm_msg_hdr, opcode), opcode);
	le32_put(h + offsetof(struct phsm_msg_hdr, flags), flags);
	le64_put(h + offsetof(struct phsm_msg_hdr, app_ctx), app_ctx);
	le32_put(h + offsetof(struct phsm_msg_hdr, tag), tag);
	return true;
}

bool phsm_msg_finish(struct phsm_writer *w, uint32_t status, uint32_t rv)
{
	if (w->failed || w->len < HDR_LEN)
		return false;
	le32_put(w->data + offsetof(struct phsm_msg_hdr, length), (uint32_t)w->len);
	le32_put(w->data + offsetof(struct phsm_msg_hdr, status), status);
	le32_put(w->data + offsetof(struct phsm_msg_hdr, rv), rv);
	return true;
}

void phsm_msg_truncate(struct phsm_writer *w)
{
	if (w->len > HDR_LEN) {
		phsm_wipe(w->data + HDR_LEN, w->len - HDR_LEN);
		w->len = HDR_LEN;
	}
}

void phsm_writer_lend(struct phsm_writer *w, uint8_t *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->data = buf;
	w->cap = cap;
	w->lent = true;
}

void phsm_writer_free(struct phsm_writer *w)
{
	if (!w->lent) {
		phsm_wipe(w->data, w->len);
		free(w->data);
	}
	memset(w, 0, sizeof(*w));
}

static uint8_t *put_field(struct phsm_writer *w, uint16_t type, size_t len)
{
	uint8_t *f;

	if (len > UINT32_MAX) {
		w->failed = true;
		return NULL;
	}
	f = reserve(w, FIELD_LEN + len);
	if (!f)
		return NULL;
	le16_put(f, type);
	le16_put(f + 2, 0);
	le32_put(f + 4, (uint32_t)len);
	return f + FIELD_LEN;
}

void phsm_put_u64(struct phsm_writer *w, uint64_t v)
{
	uint8_t *p = put_field(w, PHSM_FT_U64, 8);

	if (p)
		le64_put(p, v);
}

/* A NULL source with a length is the caller's error: fail, never read it. */
static bool null_source(struct phsm_writer *w, const void *p, size_t n)
{
	if (p || !n)
		return false;
	w->failed = true;
	return true;
}

void phsm_put_bytes(struct phsm_writer *w, const void *p, size_t n)
{
	uint8_t *d = null_source(w, p, n) ? NULL : put_field(w, PHSM_FT_BYTES, n);

	if (d && n)
		memcpy(d, p, n);
}

uint8_t *phsm_put_bytes_reserve(struct phsm_writer *w, size_t cap,
				size_t *mark)
{
	*mark = w->len;
	return put_field(w, PHSM_FT_BYTES, cap);
}

void phsm_put_bytes_commit(struct phsm_writer *w, size_t mark, size_t len)
{
	size_t end;

	if (w->failed)
		return;
	if (mark > w->len || w->len - mark < FIELD_LEN ||
	    len > w->len - mark - FIELD_LEN) {
		w->failed = true;	/* more than was reserved */
		return;
	}
	end = mark + FIELD_LEN + len;
	/* The room not used may hold a mechanism's scratch: wipe it. */
	phsm_wipe(w->data + end, w->len - end);
	w->len = end;
	le32_put(w->data + mark + 4, (uint32_t)len);
}

void phsm_put_bytes_cancel(struct phsm_writer *w, size_t mark)
{
	if (mark >= w->len)
		return;
	phsm_wipe(w->data + mark, w->len - mark);
	w->len = mark;
}

void phsm_put_u64_array(struct phsm_writer *w, const uint64_t *v, size_t n)
{
	uint8_t *d = n > SIZE_MAX / 8 || null_source(w, v, n) ? NULL :
		     put_field(w, PHSM_FT_U64_ARRAY, n * 8);

	for (size_t i = 0; d && i < n; i++)
		le64_put(d + 8 * i, v[i]);
}

/*
 * Open-ended fields (attribute lists, mechanisms) are written with length
 * 0 and patched at the end; the mark is the field header's offset.
 */
static size_t open_field(struct phsm_writer *w, uint16_t type, size_t fixed)
{
	size_t mark = w->len;
	uint8_t *p = put_field(w, type, fixed);

	if (p)
		memset(p, 0, fixed);
	return mark;
}

static void close_field(struct phsm_writer *w, size_t mark)
{
	size_t len = w->len - mark - FIELD_LEN;

	if (w->failed)
		return;
	if (len > UINT32_MAX) {
		w->failed = true;
		return;
	}
	le32_put(w->data + mark + 4, (uint32_t)len);
}

size_t phsm_put_attrs_begin(struct phsm_writer *w)
{
	w->attrs = 0;
	return open_field(w, PHSM_FT_ATTRS, 8);
}

void phsm_put_attr(struct phsm_writer *w, uint64_t type, uint32_t flags,
		   uint32_t len, const void *value)
{
	size_t n = (flags & PHSM_ATTR_F_VALUE) ? len : 0;
	uint8_t *a = null_source(w, value, n) ? NULL :
		     reserve(w, sizeof(struct phsm_attr) + n);

	if (!a)
		return;
	le64_put(a, type);
	le32_put(a + 8, len);
	le32_put(a + 12, flags);
	if (n)
		memcpy(a + sizeof(struct phsm_attr), value, n);
	w->attrs++;
}

/* Counted as they were put: the buffer may be shared, never read it back. */
void phsm_put_attrs_end(struct phsm_writer *w, size_t mark)
{
	if (w->failed)
		return;
	le32_put(w->data + mark + FIELD_LEN, w->attrs);
	close_field(w, mark);
}

size_t phsm_put_mech_begin(struct phsm_writer *w, uint64_t mechanism)
{
	size_t mark = open_field(w, PHSM_FT_MECH, sizeof(struct phsm_mech));

	if (!w->failed)
		le64_put(w->data + mark + FIELD_LEN, mechanism);
	return mark;
}

void phsm_put_mech_end(struct phsm_writer *w, size_t mark)
{
	size_t param = w->len - mark - FIELD_LEN - sizeof(struct phsm_mech);

	if (w->failed)
		return;
	le32_put(w->data + mark + FIELD_LEN + 8, (uint32_t)param);
	close_field(w, mark);
}

uint32_t phsm_msg_peek_length(const void *hdr, size_t len)
{
	const uint8_t *h = hdr;
	uint32_t n;

	if (len < HDR_LEN || le32_get(h) != PHSM_PROTO_MAGIC)
		return 0;
	n = le32_get(h + offsetof(struct phsm_msg_hdr, length));
	if (n < HDR_LEN || n > PHSM_MSG_MAX)
		return 0;
	return n;
}

uint32_t phsm_msg_parse(const void *buf, size_t len, bool response,
			struct phsm_msg *m)
{
	const uint8_t *h = buf;
	uint32_t allowed = response ? PHSM_MSG_F_RESPONSE : 0;

	memset(m, 0, sizeof(*m));
	if (len < HDR_LEN)
		return PHSM_ST_BAD_LENGTH;
	m->opcode = le16_get(h + offsetof(struct phsm_msg_hdr, opcode));
	m->tag = le32_get(h + offsetof(struct phsm_msg_hdr, tag));
	m->app_ctx = le64_get(h + offsetof(struct phsm_msg_hdr, app_ctx));
	m->flags = le32_get(h + offsetof(struct phsm_msg_hdr, flags));
	m->status = le32_get(h + offsetof(struct phsm_msg_hdr, status));
	m->rv = le32_get(h + offsetof(struct phsm_msg_hdr, rv));
	if (le32_get(h) != PHSM_PROTO_MAGIC)
		return PHSM_ST_BAD_MAGIC;
	if (le16_get(h + offsetof(struct phsm_msg_hdr, version)) != PHSM_PROTO_VERSION)
		return PHSM_ST_BAD_VERSION;
	if (len > PHSM_MSG_MAX ||
	    le32_get(h + offsetof(struct phsm_msg_hdr, length)) != len)
		return PHSM_ST_BAD_LENGTH;
	if (m->flags & ~allowed || (response && !(m->flags & PHSM_MSG_F_RESPONSE)))
		return PHSM_ST_BAD_HEADER;
	if (le32_get(h + offsetof(struct phsm_msg_hdr, reserved)))
		return PHSM_ST_BAD_HEADER;
	if (!response && (m->status || m->rv))
		return PHSM_ST_BAD_HEADER;
	phsm_reader_init(&m->payload, h + HDR_LEN, len - HDR_LEN);
	return PHSM_ST_OK;
}

void phsm_reader_init(struct phsm_reader *r, const void *p, size_t n)
{
	r->p = p;
	r->left = n;
	r->status = PHSM_ST_OK;
}

static void fail(struct phsm_reader *r, uint32_t status)
{
	if (r->status == PHSM_ST_OK)
		r->status = status;
	r->left = 0;
}

/* Consume one field of the given type; returns its value bytes or NULL. */
static const uint8_t *get_field(struct phsm_reader *r, uint16_t type,
				size_t *len)
{
	const uint8_t *v;
	uint32_t n;

	*len = 0;
	if (r->status != PHSM_ST_OK)
		return NULL;
	if (r->left < FIELD_LEN) {
		fail(r, PHSM_ST_TRUNCATED);
		return NULL;
	}
	if (le16_get(r->p) != type || le16_get(r->p + 2) != 0) {
		fail(r, PHSM_ST_BAD_FIELD);
		return NULL;
	}
	n = le32_get(r->p + 4);
	if (n > r->left - FIELD_LEN) {
		fail(r, PHSM_ST_TRUNCATED);
		return NULL;
	}
	v = r->p + FIELD_LEN;
	r->p += FIELD_LEN + n;
	r->left -= FIELD_LEN + n;
	*len = n;
	return v;
}

uint64_t phsm_get_u64(struct phsm_reader *r)
{
	size_t n;
	const uint8_t *v = get_field(r, PHSM_FT_U64, &n);

	if (!v)
		return 0;
	if (n != 8) {
		fail(r, PHSM_ST_BAD_VALUE);
		return 0;
	}
	return le64_get(v);
}

const uint8_t *phsm_get_bytes(struct phsm_reader *r, size_t *n)
{
	/* NULL only on error: an empty field yields a valid pointer. */
	return get_field(r, PHSM_FT_BYTES, n);
}

const uint8_t *phsm_get_u64_array(struct phsm_reader *r, size_t *count)
{
	size_t n;
	const uint8_t *v = get_field(r, PHSM_FT_U64_ARRAY, &n);

	*count = 0;
	if (r->status != PHSM_ST_OK)
		return NULL;
	if (n % 8) {
		fail(r, PHSM_ST_BAD_VALUE);
		return NULL;
	}
	*count = n / 8;
	return v;
}

uint64_t phsm_array_u64(const uint8_t *array, size_t i)
{
	return le64_get(array + 8 * i);
}

bool phsm_get_attrs(struct phsm_reader *r, struct phsm_reader *list,
		    uint32_t *count)
{
	size_t n;
	const uint8_t *v = get_field(r, PHSM_FT_ATTRS, &n);

	*count = 0;
	phsm_reader_init(list, NULL, 0);
	if (r->status != PHSM_ST_OK)
		return false;
	if (n < 8 || le32_get(v + 4) != 0) {
		fail(r, PHSM_ST_BAD_VALUE);
		return false;
	}
	*count = le32_get(v);
	if (*count > PHSM_ATTRS_MAX ||
	    *count > (n - 8) / sizeof(struct phsm_attr)) {
		*count = 0;
		fail(r, PHSM_ST_BAD_VALUE);
		return false;
	}
	phsm_reader_init(list, v + 8, n - 8);
	return true;
}

bool phsm_next_attr(struct phsm_reader *list, struct phsm_attr_view *a)
{
	const size_t entry = sizeof(struct phsm_attr);
	uint32_t len, flags;
	size_t n;

	memset(a, 0, sizeof(*a));
	if (list->status != PHSM_ST_OK)
		return false;
	if (list->left < entry) {
		fail(list, PHSM_ST_TRUNCATED);
		return false;
	}
	/* Check before filling *a, so that a failed read yields zeroes. */
	len = le32_get(list->p + 8);
	flags = le32_get(list->p + 12);
	if (flags & ~(PHSM_ATTR_F_VALUE | PHSM_ATTR_F_QUERY |
		      PHSM_ATTR_F_LENGTH | PHSM_ATTR_F_UNAVAILABLE)) {
		fail(list, PHSM_ST_BAD_VALUE);
		return false;
	}
	n = (flags & PHSM_ATTR_F_VALUE) ? len : 0;
	if (n > list->left - entry) {
		fail(list, PHSM_ST_TRUNCATED);
		return false;
	}
	a->type = le64_get(list->p);
	a->len = len;
	a->flags = flags;
	if (flags & PHSM_ATTR_F_VALUE)
		a->value = list->p + entry;
	list->p += entry + n;
	list->left -= entry + n;
	return true;
}

bool phsm_get_mech(struct phsm_reader *r, uint64_t *mechanism,
		   struct phsm_reader *param)
{
	const size_t fixed = sizeof(struct phsm_mech);
	size_t n;
	const uint8_t *v = get_field(r, PHSM_FT_MECH, &n);

	*mechanism = 0;
	phsm_reader_init(param, NULL, 0);
	if (r->status != PHSM_ST_OK)
		return false;
	if (n < fixed || le32_get(v + 8) != n - fixed || le32_get(v + 12)) {
		fail(r, PHSM_ST_BAD_VALUE);
		return false;
	}
	*mechanism = le64_get(v);
	phsm_reader_init(param, v + fixed, n - fixed);
	return true;
}

bool phsm_reader_done(struct phsm_reader *r)
{
	if (r->status == PHSM_ST_OK && r->left)
		fail(r, PHSM_ST_TRAILING);
	return r->status == PHSM_ST_OK;
}

bool phsm_next_is(const struct phsm_reader *r, uint16_t type)
{
	return r->status == PHSM_ST_OK && r->left >= FIELD_LEN &&
	       le16_get(r->p) == type;
}

const char *phsm_status_name(uint32_t status)
{
	static const char *const names[] = {
		[PHSM_ST_OK] = "ok",
		[PHSM_ST_BAD_MAGIC] = "bad magic",
		[PHSM_ST_BAD_VERSION] = "unsupported version",
		[PHSM_ST_BAD_LENGTH] = "bad length",
		[PHSM_ST_BAD_HEADER] = "bad header",
		[PHSM_ST_BAD_OPCODE] = "unknown opcode",
		[PHSM_ST_BAD_FIELD] = "unexpected field type",
		[PHSM_ST_TRUNCATED] = "truncated field",
		[PHSM_ST_BAD_VALUE] = "malformed field value",
		[PHSM_ST_TRAILING] = "trailing bytes",
		[PHSM_ST_NO_MEMORY] = "out of memory",
		[PHSM_ST_BAD_CONTEXT] = "bad application context",
	};

	if (status < sizeof(names) / sizeof(names[0]) && names[status])
		return names[status];
	return "unknown status";
}
