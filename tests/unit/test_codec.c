// SPDX-License-Identifier: MIT
/*
 * Unit tests for the protocol codec (uapi/codec/phsm_codec.{h,c}).
 *
 * Round trips build messages with the writer and read them back; the
 * rejection tests hand-craft bytes, because the writer cannot produce
 * malformed input, and check that the reader reports the exact PHSM_ST_*
 * status the protocol assigns to each defect and that the error sticks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uapi/codec/phsm_codec.h"

#define HDR_LEN sizeof(struct phsm_msg_hdr)

/* Little-endian helpers for crafting bytes by hand. */
static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A field header at p: type, reserved, len. */
static size_t field(uint8_t *p, uint16_t type, uint16_t reserved, uint32_t len)
{
	put16(p, type);
	put16(p + 2, reserved);
	put32(p + 4, len);
	return sizeof(struct phsm_field);
}

/* A small request with one of each simple field type. */
static void build_request(struct phsm_writer *w)
{
	static const uint64_t arr[] = { 1, 2, 0xffffffffffffffffull };

	assert_true(phsm_msg_begin(w, PHSM_OP_OPEN_SESSION, 0, 0x1122334455667788ull, 77));
	phsm_put_u64(w, 5);
	phsm_put_bytes(w, "abc", 3);
	phsm_put_u64_array(w, arr, 3);
	assert_true(phsm_msg_finish(w, 0, 0));
}

/* ---- header ----------------------------------------------------------- */

static void test_header_round_trip(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_GET_TOKEN_INFO, PHSM_MSG_F_RESPONSE,
				   0xdeadbeefcafef00dull, 0xfffffffeu));
	phsm_put_u64(&w, 1);
	assert_true(phsm_msg_finish(&w, PHSM_ST_OK, 0x1b0));
	assert_int_equal(w.len, HDR_LEN + 16);
	assert_int_equal(get32(w.data + offsetof(struct phsm_msg_hdr, length)), w.len);
	assert_int_equal(phsm_msg_peek_length(w.data, w.len), w.len);

	assert_int_equal(phsm_msg_parse(w.data, w.len, true, &m), PHSM_ST_OK);
	assert_int_equal(m.opcode, PHSM_OP_GET_TOKEN_INFO);
	assert_int_equal(m.flags, PHSM_MSG_F_RESPONSE);
	assert_true(m.app_ctx == 0xdeadbeefcafef00dull);
	assert_int_equal(m.tag, 0xfffffffeu);
	assert_int_equal(m.status, PHSM_ST_OK);
	assert_int_equal(m.rv, 0x1b0);
	assert_int_equal(m.payload.left, 16);
	assert_int_equal(phsm_get_u64(&m.payload), 1);
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

static void test_empty_payload(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 1));
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(w.len, HDR_LEN);
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	assert_int_equal(m.payload.left, 0);
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

/* ---- fields ----------------------------------------------------------- */

static void test_u64_round_trip(void **state)
{
	static const uint64_t values[] = {
		0, 1, 0x80, 0xff, 0x100, 0x7fffffffffffffffull,
		0x8000000000000000ull, 0xffffffffffffffffull, 0x0102030405060708ull,
	};
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	size_t n = sizeof(values) / sizeof(values[0]);

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	for (size_t i = 0; i < n; i++)
		phsm_put_u64(&w, values[i]);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(w.len, HDR_LEN + n * 16);
	/* Wire layout of the last one: type 1, reserved 0, len 8, LE value. */
	{
		const uint8_t *f = w.data + w.len - 16;
		static const uint8_t expect[16] = {
			1, 0, 0, 0, 8, 0, 0, 0,
			8, 7, 6, 5, 4, 3, 2, 1,
		};

		assert_memory_equal(f, expect, 16);
	}
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	for (size_t i = 0; i < n; i++) {
		assert_true(phsm_next_is(&m.payload, PHSM_FT_U64));
		assert_true(phsm_get_u64(&m.payload) == values[i]);
	}
	assert_false(phsm_next_is(&m.payload, PHSM_FT_U64));
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

static void test_bytes_round_trip(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	uint8_t big[5000];
	const uint8_t *p;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_bytes(&w, "x", 1);
	phsm_put_bytes(&w, big, sizeof(big));
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);

	n = 99;
	p = phsm_get_bytes(&m.payload, &n);
	assert_non_null(p);		/* empty is not an error */
	assert_int_equal(n, 0);
	p = phsm_get_bytes(&m.payload, &n);
	assert_non_null(p);
	assert_int_equal(n, 1);
	assert_int_equal(p[0], 'x');
	p = phsm_get_bytes(&m.payload, &n);
	assert_non_null(p);
	assert_int_equal(n, sizeof(big));
	assert_memory_equal(p, big, sizeof(big));
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

static void test_u64_array_round_trip(void **state)
{
	static const uint64_t v[] = { 0x1080, 0x1041, 0, ~0ull, 42 };
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	const uint8_t *a;
	size_t count;

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_u64_array(&w, NULL, 0);
	phsm_put_u64_array(&w, v, 5);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);

	count = 7;
	a = phsm_get_u64_array(&m.payload, &count);
	assert_non_null(a);
	assert_int_equal(count, 0);
	a = phsm_get_u64_array(&m.payload, &count);
	assert_non_null(a);
	assert_int_equal(count, 5);
	for (size_t i = 0; i < 5; i++)
		assert_true(phsm_array_u64(a, i) == v[i]);
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

static void test_attrs_round_trip(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	struct phsm_reader list;
	struct phsm_attr_view a;
	uint8_t cls[8];
	uint32_t count;
	size_t mark;

	(void)state;
	put64(cls, 4);		/* CKO_SECRET_KEY as an 8-byte LE CK_ULONG */
	assert_true(phsm_msg_begin(&w, PHSM_OP_CREATE_OBJECT, 0, 0, 9));
	phsm_put_u64(&w, 3);
	mark = phsm_put_attrs_begin(&w);
	phsm_put_attr(&w, 0x0, PHSM_ATTR_F_VALUE, 8, cls);
	phsm_put_attr(&w, 0x3, PHSM_ATTR_F_VALUE, 5, "label");
	phsm_put_attr(&w, 0x102, PHSM_ATTR_F_VALUE, 0, NULL);	/* empty value */
	phsm_put_attr(&w, 0x11, PHSM_ATTR_F_QUERY, 0, NULL);
	phsm_put_attr(&w, 0x11, 0, 32, NULL);			/* buffer size */
	phsm_put_attr(&w, 0x11, PHSM_ATTR_F_LENGTH, 16, NULL);
	phsm_put_attr(&w, 0x11, PHSM_ATTR_F_UNAVAILABLE, 0, NULL);
	phsm_put_attrs_end(&w, mark);
	phsm_put_u64(&w, 1);	/* a field after the list */
	assert_true(phsm_msg_finish(&w, 0, 0));

	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	assert_int_equal(phsm_get_u64(&m.payload), 3);
	assert_true(phsm_next_is(&m.payload, PHSM_FT_ATTRS));
	assert_true(phsm_get_attrs(&m.payload, &list, &count));
	assert_int_equal(count, 7);

	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.type, 0);
	assert_int_equal(a.len, 8);
	assert_int_equal(a.flags, PHSM_ATTR_F_VALUE);
	assert_non_null(a.value);
	assert_memory_equal(a.value, cls, 8);

	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.type, 3);
	assert_int_equal(a.len, 5);
	assert_memory_equal(a.value, "label", 5);

	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.type, 0x102);
	assert_int_equal(a.len, 0);
	assert_int_equal(a.flags, PHSM_ATTR_F_VALUE);
	assert_non_null(a.value);

	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.flags, PHSM_ATTR_F_QUERY);
	assert_null(a.value);

	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.flags, 0);
	assert_int_equal(a.len, 32);	/* no value follows, len is a capacity */
	assert_null(a.value);

	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.flags, PHSM_ATTR_F_LENGTH);
	assert_int_equal(a.len, 16);
	assert_null(a.value);

	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.flags, PHSM_ATTR_F_UNAVAILABLE);
	assert_int_equal(a.len, 0);

	assert_true(phsm_reader_done(&list));
	assert_int_equal(phsm_get_u64(&m.payload), 1);
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

static void test_attrs_empty(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	struct phsm_reader list;
	uint32_t count = 5;
	size_t mark;

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_FIND_INIT, 0, 0, 0));
	mark = phsm_put_attrs_begin(&w);
	phsm_put_attrs_end(&w, mark);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(w.len, HDR_LEN + 8 + 8);
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	assert_true(phsm_get_attrs(&m.payload, &list, &count));
	assert_int_equal(count, 0);
	assert_true(phsm_reader_done(&list));
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

static void test_mech_round_trip(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	struct phsm_reader param;
	uint64_t mech;
	uint8_t iv[12];
	const uint8_t *p;
	size_t n, mark;

	(void)state;
	memset(iv, 0xa5, sizeof(iv));
	assert_true(phsm_msg_begin(&w, PHSM_OP_OP_INIT, 0, 0, 0));
	/* No parameter. */
	mark = phsm_put_mech_begin(&w, 0x250);	/* CKM_SHA256 */
	phsm_put_mech_end(&w, mark);
	/* GCM: BYTES iv, U64 iv_bits, BYTES aad, U64 tag_bits. */
	mark = phsm_put_mech_begin(&w, 0x1087);	/* CKM_AES_GCM */
	phsm_put_bytes(&w, iv, sizeof(iv));
	phsm_put_u64(&w, 96);
	phsm_put_bytes(&w, "aad", 3);
	phsm_put_u64(&w, 128);
	phsm_put_mech_end(&w, mark);
	phsm_put_u64(&w, 7);
	assert_true(phsm_msg_finish(&w, 0, 0));

	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	assert_true(phsm_next_is(&m.payload, PHSM_FT_MECH));
	assert_true(phsm_get_mech(&m.payload, &mech, &param));
	assert_int_equal(mech, 0x250);
	assert_int_equal(param.left, 0);
	assert_true(phsm_reader_done(&param));

	assert_true(phsm_get_mech(&m.payload, &mech, &param));
	assert_int_equal(mech, 0x1087);
	p = phsm_get_bytes(&param, &n);
	assert_int_equal(n, sizeof(iv));
	assert_memory_equal(p, iv, sizeof(iv));
	assert_int_equal(phsm_get_u64(&param), 96);
	p = phsm_get_bytes(&param, &n);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "aad", 3);
	assert_int_equal(phsm_get_u64(&param), 128);
	assert_true(phsm_reader_done(&param));

	assert_int_equal(phsm_get_u64(&m.payload), 7);
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

/* The writer reuses its buffer for the next message. */
static void test_writer_reuse_and_truncate(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;

	(void)state;
	build_request(&w);
	assert_true(w.len > HDR_LEN);
	phsm_msg_truncate(&w);
	assert_int_equal(w.len, HDR_LEN);
	assert_true(phsm_msg_finish(&w, PHSM_ST_BAD_FIELD, 0));
	/* As an answer it keeps opcode and tag and carries the status. */
	put32(w.data + offsetof(struct phsm_msg_hdr, flags), PHSM_MSG_F_RESPONSE);
	assert_int_equal(phsm_msg_parse(w.data, w.len, true, &m), PHSM_ST_OK);
	assert_int_equal(m.opcode, PHSM_OP_OPEN_SESSION);
	assert_int_equal(m.tag, 77);
	assert_int_equal(m.status, PHSM_ST_BAD_FIELD);
	assert_int_equal(m.payload.left, 0);

	build_request(&w);
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	assert_int_equal(phsm_get_u64(&m.payload), 5);
	phsm_writer_free(&w);
	assert_null(w.data);
	assert_int_equal(w.len, 0);
}

/* A message larger than PHSM_MSG_MAX fails, and the failure sticks. */
static void test_writer_sticky_failure(void **state)
{
	struct phsm_writer w = { 0 };
	size_t big = PHSM_MSG_MAX;
	uint8_t *huge = calloc(1, big);

	(void)state;
	assert_non_null(huge);
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_bytes(&w, huge, big);	/* header + field header + MAX > MAX */
	assert_true(w.failed);
	phsm_put_u64(&w, 1);
	assert_true(w.failed);
	assert_int_equal(w.len, HDR_LEN);
	assert_false(phsm_msg_finish(&w, 0, 0));

	/* Just fitting is fine: MAX - header - field header bytes. */
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	assert_false(w.failed);
	phsm_put_bytes(&w, huge, big - HDR_LEN - sizeof(struct phsm_field));
	assert_false(w.failed);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(w.len, PHSM_MSG_MAX);
	assert_int_equal(phsm_msg_peek_length(w.data, w.len), PHSM_MSG_MAX);
	phsm_writer_free(&w);
	free(huge);
}

/* A NULL source with a length fails the writer instead of being read. */
static void test_writer_null_source(void **state)
{
	struct phsm_writer w = { 0 };
	size_t mark;

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_bytes(&w, NULL, 0);		/* empty: fine */
	phsm_put_u64_array(&w, NULL, 0);
	mark = phsm_put_attrs_begin(&w);
	phsm_put_attr(&w, 1, PHSM_ATTR_F_QUERY, 64, NULL);	/* no value: fine */
	phsm_put_attr(&w, 2, PHSM_ATTR_F_VALUE, 0, NULL);
	phsm_put_attrs_end(&w, mark);
	assert_false(w.failed);
	assert_true(phsm_msg_finish(&w, 0, 0));

	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_bytes(&w, NULL, 5);
	assert_true(w.failed);
	assert_false(phsm_msg_finish(&w, 0, 0));
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_u64_array(&w, NULL, 2);
	assert_false(phsm_msg_finish(&w, 0, 0));
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	mark = phsm_put_attrs_begin(&w);
	phsm_put_attr(&w, 3, PHSM_ATTR_F_VALUE, 4, NULL);
	phsm_put_attrs_end(&w, mark);
	assert_false(phsm_msg_finish(&w, 0, 0));
	phsm_writer_free(&w);
}

/* ---- reserved BYTES fields, lent buffers, wiping ----------------------- */

#define FLD_LEN sizeof(struct phsm_field)
#define GUARD 32

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* Commit with len < cap, == cap and 0; the fields after it read back. */
static void test_bytes_reserve_commit(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	const uint8_t *p;
	uint8_t *d;
	size_t n, mark, mark2;

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_u64(&w, 1);
	d = phsm_put_bytes_reserve(&w, 10, &mark);
	assert_non_null(d);
	assert_int_equal(mark, HDR_LEN + 16);
	assert_ptr_equal(d, w.data + mark + FLD_LEN);
	memcpy(d, "0123456789", 10);
	phsm_put_bytes_commit(&w, mark, 6);		/* less than reserved */
	assert_int_equal(w.len, mark + FLD_LEN + 6);
	assert_true(all_bytes(w.data + w.len, 4, 0));	/* unused room wiped */
	phsm_put_u64(&w, 2);
	d = phsm_put_bytes_reserve(&w, 4, &mark);
	assert_non_null(d);
	memcpy(d, "wxyz", 4);
	phsm_put_bytes_commit(&w, mark, 4);		/* all of it */
	d = phsm_put_bytes_reserve(&w, 5, &mark2);
	assert_non_null(d);
	assert_int_equal(mark2, mark + FLD_LEN + 4);
	memset(d, 0x77, 5);
	phsm_put_bytes_commit(&w, mark2, 0);		/* nothing */
	assert_int_equal(w.len, mark2 + FLD_LEN);
	assert_true(all_bytes(w.data + w.len, 5, 0));
	phsm_put_u64(&w, 3);
	assert_false(w.failed);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(w.len, HDR_LEN + 16 + (FLD_LEN + 6) + 16 +
			 (FLD_LEN + 4) + FLD_LEN + 16);

	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	assert_int_equal(phsm_get_u64(&m.payload), 1);
	p = phsm_get_bytes(&m.payload, &n);
	assert_non_null(p);
	assert_int_equal(n, 6);
	assert_memory_equal(p, "012345", 6);
	assert_int_equal(phsm_get_u64(&m.payload), 2);
	p = phsm_get_bytes(&m.payload, &n);
	assert_non_null(p);
	assert_int_equal(n, 4);
	assert_memory_equal(p, "wxyz", 4);
	n = 99;
	p = phsm_get_bytes(&m.payload, &n);
	assert_non_null(p);
	assert_int_equal(n, 0);
	assert_int_equal(phsm_get_u64(&m.payload), 3);
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

/* A reserve that makes the writer grow: the pointer is into the new buffer. */
static void test_bytes_reserve_grows(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	uint8_t src[3000];
	const uint8_t *p;
	uint8_t *d;
	size_t n, mark;

	(void)state;
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 13 + 1);
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_bytes(&w, "head", 4);
	d = phsm_put_bytes_reserve(&w, sizeof(src), &mark);
	assert_non_null(d);
	assert_true(w.cap >= w.len);
	assert_ptr_equal(d, w.data + mark + FLD_LEN);
	memcpy(d, src, sizeof(src));
	phsm_put_bytes_commit(&w, mark, sizeof(src) - 1);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	p = phsm_get_bytes(&m.payload, &n);
	assert_int_equal(n, 4);
	assert_memory_equal(p, "head", 4);	/* copied over on growth */
	p = phsm_get_bytes(&m.payload, &n);
	assert_int_equal(n, sizeof(src) - 1);
	assert_memory_equal(p, src, sizeof(src) - 1);
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

/* Committing more than was reserved fails the writer. */
static void test_bytes_commit_over_reserve(void **state)
{
	struct phsm_writer w = { 0 };
	size_t mark, len;
	uint8_t *d;

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	d = phsm_put_bytes_reserve(&w, 8, &mark);
	assert_non_null(d);
	memset(d, 1, 8);
	len = w.len;
	phsm_put_bytes_commit(&w, mark, 9);
	assert_true(w.failed);
	assert_int_equal(w.len, len);
	assert_false(phsm_msg_finish(&w, 0, 0));
	phsm_writer_free(&w);
}

/* Cancel leaves the message as if nothing was reserved, the room wiped. */
static void test_bytes_reserve_cancel(void **state)
{
	struct phsm_writer w = { 0 }, ref = { 0 };
	size_t mark, end;
	uint8_t *d;

	(void)state;
	assert_true(phsm_msg_begin(&ref, PHSM_OP_NOP, 0, 5, 6));
	phsm_put_u64(&ref, 1);
	phsm_put_u64(&ref, 2);
	assert_true(phsm_msg_finish(&ref, 0, 0));

	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 5, 6));
	phsm_put_u64(&w, 1);
	d = phsm_put_bytes_reserve(&w, 40, &mark);
	assert_non_null(d);
	memset(d, 0x5a, 40);
	end = w.len;
	assert_int_equal(end, mark + FLD_LEN + 40);
	phsm_put_bytes_cancel(&w, mark);
	assert_int_equal(w.len, mark);
	/* Field header and value both zeroed in the buffer. */
	assert_true(all_bytes(w.data + mark, end - mark, 0));
	phsm_put_u64(&w, 2);
	assert_false(w.failed);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(w.len, ref.len);
	assert_memory_equal(w.data, ref.data, ref.len);

	/* Cancel as the last thing: the message ends where it was. */
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 5, 6));
	phsm_put_u64(&w, 1);
	phsm_put_u64(&w, 2);
	d = phsm_put_bytes_reserve(&w, 0, &mark);
	assert_non_null(d);
	phsm_put_bytes_cancel(&w, mark);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(w.len, ref.len);
	assert_memory_equal(w.data, ref.data, ref.len);
	phsm_writer_free(&w);
	phsm_writer_free(&ref);
}

/* Reserve on a failed writer gives NULL; commit and cancel change nothing. */
static void test_bytes_reserve_failed_writer(void **state)
{
	struct phsm_writer w = { 0 };
	size_t mark, len;

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_u64(&w, 1);
	phsm_put_bytes(&w, NULL, 3);		/* fails the writer */
	assert_true(w.failed);
	len = w.len;
	assert_null(phsm_put_bytes_reserve(&w, 4, &mark));
	assert_int_equal(w.len, len);
	phsm_put_bytes_commit(&w, mark, 0);
	assert_int_equal(w.len, len);
	phsm_put_bytes_cancel(&w, mark);
	assert_int_equal(w.len, len);
	assert_true(w.failed);
	assert_false(phsm_msg_finish(&w, 0, 0));

	/* Too large a reservation fails the writer itself. */
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	assert_null(phsm_put_bytes_reserve(&w, PHSM_MSG_MAX, &mark));
	assert_true(w.failed);
	assert_int_equal(w.len, HDR_LEN);
	phsm_put_bytes_cancel(&w, mark);
	assert_true(w.failed);
	assert_false(phsm_msg_finish(&w, 0, 0));
	phsm_writer_free(&w);
}

/*
 * A lent writer builds in the caller's buffer, never grows it (a message
 * that does not fit fails the writer, nothing is written past the buffer)
 * and never frees it: buf is on the stack, so free() would abort (ASan
 * reports it as a bad free).
 */
static void test_writer_lend(void **state)
{
	uint8_t buf[HDR_LEN + 64 + GUARD];
	const size_t cap = HDR_LEN + 64;
	struct phsm_writer w;
	struct phsm_msg m;
	const uint8_t *p;
	size_t n;

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	phsm_writer_lend(&w, buf, cap);
	assert_true(w.lent);
	assert_ptr_equal(w.data, buf);
	assert_int_equal(w.cap, cap);
	assert_int_equal(w.len, 0);
	assert_false(w.failed);
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 42));
	phsm_put_bytes(&w, "0123456789012345678901234567890123456789", 40);
	phsm_put_u64(&w, 9);			/* exactly fills the buffer */
	assert_false(w.failed);
	assert_int_equal(w.len, cap);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(phsm_msg_parse(buf, cap, false, &m), PHSM_ST_OK);
	assert_int_equal(m.tag, 42);
	p = phsm_get_bytes(&m.payload, &n);
	assert_int_equal(n, 40);
	assert_memory_equal(p, "0123456789", 10);
	assert_int_equal(phsm_get_u64(&m.payload), 9);
	assert_true(phsm_reader_done(&m.payload));

	phsm_put_bytes(&w, NULL, 0);		/* one field too many */
	assert_true(w.failed);
	assert_int_equal(w.len, cap);
	assert_ptr_equal(w.data, buf);		/* not grown */
	assert_int_equal(w.cap, cap);
	assert_true(all_bytes(buf + cap, GUARD, 0xee));
	assert_false(phsm_msg_finish(&w, 0, 0));

	/* A new message resets the failure; overflowing the payload fails. */
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	assert_false(w.failed);
	phsm_put_u64_array(&w, (const uint64_t[8]){ 0 }, 8);	/* 72 > 64 */
	assert_true(w.failed);
	assert_int_equal(w.len, HDR_LEN);
	assert_true(all_bytes(buf + cap, GUARD, 0xee));

	phsm_writer_free(&w);			/* must not free(buf) */
	assert_null(w.data);
	assert_int_equal(w.len, 0);
	assert_int_equal(w.cap, 0);
	assert_false(w.lent);
	assert_true(all_bytes(buf + cap, GUARD, 0xee));

	/* No room for a header: begin fails and nothing is allocated. */
	phsm_writer_lend(&w, buf, HDR_LEN - 1);
	assert_false(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	assert_true(w.failed);
	assert_ptr_equal(w.data, buf);
	phsm_writer_lend(&w, NULL, 0);
	assert_false(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	assert_null(w.data);
	phsm_writer_free(&w);
}

/* Reserving beyond a lent buffer fails without writing past it. */
static void test_bytes_reserve_lent(void **state)
{
	uint8_t buf[HDR_LEN + 32 + GUARD];
	const size_t cap = HDR_LEN + 32;
	struct phsm_writer w;
	struct phsm_msg m;
	const uint8_t *p;
	uint8_t *d;
	size_t n, mark;

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	phsm_writer_lend(&w, buf, cap);
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	assert_null(phsm_put_bytes_reserve(&w, 32 - FLD_LEN + 1, &mark));
	assert_true(w.failed);
	assert_int_equal(w.len, HDR_LEN);
	/* Not even the field header was written. */
	assert_true(all_bytes(buf + HDR_LEN, sizeof(buf) - HDR_LEN, 0xee));
	phsm_put_bytes_cancel(&w, mark);
	assert_false(phsm_msg_finish(&w, 0, 0));

	/* Exactly the room left: fits, commit less, the rest wiped. */
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	d = phsm_put_bytes_reserve(&w, 32 - FLD_LEN, &mark);
	assert_ptr_equal(d, buf + HDR_LEN + FLD_LEN);
	memset(d, 0xab, 32 - FLD_LEN);
	phsm_put_bytes_commit(&w, mark, 10);
	assert_false(w.failed);
	assert_true(all_bytes(buf + HDR_LEN + FLD_LEN + 10, 32 - FLD_LEN - 10, 0));
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(phsm_msg_parse(buf, w.len, false, &m), PHSM_ST_OK);
	p = phsm_get_bytes(&m.payload, &n);
	assert_int_equal(n, 10);
	assert_true(all_bytes(p, 10, 0xab));
	assert_true(phsm_reader_done(&m.payload));
	assert_true(all_bytes(buf + cap, GUARD, 0xee));

	/* Full again, then cancel: the reserved room is zeroed in buf. */
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	d = phsm_put_bytes_reserve(&w, 32 - FLD_LEN, &mark);
	assert_non_null(d);
	memset(d, 0xcd, 32 - FLD_LEN);
	phsm_put_bytes_cancel(&w, mark);
	assert_int_equal(w.len, HDR_LEN);
	assert_true(all_bytes(buf + HDR_LEN, 32, 0));
	assert_true(all_bytes(buf + cap, GUARD, 0xee));
	/* A zero-length reservation still needs room for its field header. */
	phsm_put_u64(&w, 1);
	phsm_put_u64(&w, 2);
	assert_false(w.failed);
	assert_null(phsm_put_bytes_reserve(&w, 0, &mark));
	assert_true(w.failed);
	assert_true(all_bytes(buf + cap, GUARD, 0xee));
	phsm_writer_free(&w);
}

/*
 * Attribute lists after a reserve/commit or cancel; the count is kept as
 * entries are put, so a lent buffer scribbled on meanwhile (shared memory)
 * still gets the right count, and each list counts from zero.
 */
static void test_attrs_after_reserve(void **state)
{
	uint8_t buf[512];
	struct phsm_writer w;
	struct phsm_msg m;
	struct phsm_reader list;
	struct phsm_attr_view a;
	const uint8_t *p;
	uint32_t count;
	uint8_t *d;
	size_t n, mark, amark;

	(void)state;
	phsm_writer_lend(&w, buf, sizeof(buf));
	assert_true(phsm_msg_begin(&w, PHSM_OP_CREATE_OBJECT, 0, 0, 0));
	d = phsm_put_bytes_reserve(&w, 16, &mark);
	assert_non_null(d);
	memcpy(d, "hello, world....", 16);
	phsm_put_bytes_commit(&w, mark, 5);
	amark = phsm_put_attrs_begin(&w);
	memset(buf + amark + FLD_LEN, 0xff, 4);	/* count scribbled on */
	phsm_put_attr(&w, 0x3, PHSM_ATTR_F_VALUE, 5, "label");
	phsm_put_attr(&w, 0x11, PHSM_ATTR_F_QUERY, 0, NULL);
	memset(buf + amark + FLD_LEN, 0x01, 4);
	phsm_put_attr(&w, 0x100, PHSM_ATTR_F_VALUE, 1, "x");
	phsm_put_attrs_end(&w, amark);
	d = phsm_put_bytes_reserve(&w, 8, &mark);
	assert_non_null(d);
	memset(d, 0x99, 8);
	phsm_put_bytes_cancel(&w, mark);
	amark = phsm_put_attrs_begin(&w);
	phsm_put_attr(&w, 0x2, PHSM_ATTR_F_VALUE, 1, "y");
	phsm_put_attrs_end(&w, amark);
	amark = phsm_put_attrs_begin(&w);
	phsm_put_attrs_end(&w, amark);
	assert_false(w.failed);
	assert_true(phsm_msg_finish(&w, 0, 0));

	assert_int_equal(phsm_msg_parse(buf, w.len, false, &m), PHSM_ST_OK);
	p = phsm_get_bytes(&m.payload, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(p, "hello", 5);
	assert_true(phsm_get_attrs(&m.payload, &list, &count));
	assert_int_equal(count, 3);
	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.type, 0x3);
	assert_memory_equal(a.value, "label", 5);
	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.type, 0x11);
	assert_int_equal(a.flags, PHSM_ATTR_F_QUERY);
	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.type, 0x100);
	assert_memory_equal(a.value, "x", 1);
	assert_true(phsm_reader_done(&list));
	assert_true(phsm_get_attrs(&m.payload, &list, &count));
	assert_int_equal(count, 1);
	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.type, 0x2);
	assert_true(phsm_reader_done(&list));
	assert_true(phsm_get_attrs(&m.payload, &list, &count));
	assert_int_equal(count, 0);
	assert_true(phsm_reader_done(&list));
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

/*
 * Wiping where the test can see it: truncate zeroes the dropped payload in
 * the writer's buffer; phsm_writer_free() of a lent writer resets the
 * writer and leaves the buffer to its owner (the header's contract: the
 * owner wipes it), so it must not touch bytes past what was used.
 */
static void test_writer_wipes(void **state)
{
	uint8_t buf[HDR_LEN + 64 + GUARD];
	struct phsm_writer w = { 0 };
	size_t len;

	(void)state;
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_bytes(&w, "secret-pin", 10);
	phsm_put_u64(&w, 0x1122334455667788ull);
	len = w.len;
	phsm_msg_truncate(&w);
	assert_int_equal(w.len, HDR_LEN);
	assert_true(all_bytes(w.data + HDR_LEN, len - HDR_LEN, 0));
	phsm_writer_free(&w);
	assert_null(w.data);

	memset(buf, 0xee, sizeof(buf));
	phsm_writer_lend(&w, buf, HDR_LEN + 64);
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_bytes(&w, "secret-pin", 10);
	len = w.len;
	phsm_msg_truncate(&w);
	assert_true(all_bytes(buf + HDR_LEN, len - HDR_LEN, 0));
	assert_true(all_bytes(buf + len, sizeof(buf) - len, 0xee));
	phsm_writer_free(&w);
	assert_null(w.data);
	assert_false(w.lent);
	assert_true(all_bytes(buf + len, sizeof(buf) - len, 0xee));
}

/* A message begun again on a used writer leaves nothing of the last one. */
static void test_writer_begin_again_wipes(void **state)
{
	uint8_t buf[HDR_LEN + 64];
	struct phsm_writer w = { 0 };

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	phsm_writer_lend(&w, buf, sizeof(buf));
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	phsm_put_bytes(&w, "SECRETKEYVALUE", 14);
	assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(w.len, HDR_LEN);
	assert_true(all_bytes(buf + HDR_LEN, FLD_LEN + 14, 0));
	phsm_writer_free(&w);
}

/* ---- header rejection ------------------------------------------------- */

/* A valid request of HDR_LEN + 16 bytes (one U64) to corrupt. */
static size_t valid_request(uint8_t *buf)
{
	struct phsm_writer w = { 0 };
	size_t n;

	assert_true(phsm_msg_begin(&w, PHSM_OP_GET_TOKEN_INFO, 0, 0, 1234));
	phsm_put_u64(&w, 0);
	assert_true(phsm_msg_finish(&w, 0, 0));
	n = w.len;
	memcpy(buf, w.data, n);
	phsm_writer_free(&w);
	return n;
}

static uint32_t parse_req(const uint8_t *buf, size_t len)
{
	struct phsm_msg m;

	return phsm_msg_parse(buf, len, false, &m);
}

static void test_reject_bad_magic(void **state)
{
	uint8_t buf[64];
	size_t n = valid_request(buf);
	struct phsm_msg m;

	(void)state;
	buf[0] ^= 1;
	assert_int_equal(phsm_msg_parse(buf, n, false, &m), PHSM_ST_BAD_MAGIC);
	/* opcode and tag are still reported for the error answer */
	assert_int_equal(m.opcode, PHSM_OP_GET_TOKEN_INFO);
	assert_int_equal(m.tag, 1234);
	assert_int_equal(phsm_msg_peek_length(buf, n), 0);
}

static void test_reject_bad_version(void **state)
{
	uint8_t buf[64];
	size_t n = valid_request(buf);

	(void)state;
	put16(buf + offsetof(struct phsm_msg_hdr, version), 2);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_VERSION);
	put16(buf + offsetof(struct phsm_msg_hdr, version), 0);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_VERSION);
}

static void test_reject_bad_length(void **state)
{
	uint8_t buf[64];
	size_t n = valid_request(buf);

	(void)state;
	/* header says more than we have */
	put32(buf + offsetof(struct phsm_msg_hdr, length), (uint32_t)n + 1);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_LENGTH);
	/* header says less than we have */
	put32(buf + offsetof(struct phsm_msg_hdr, length), (uint32_t)n - 1);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_LENGTH);
	/* fewer bytes than a header */
	put32(buf + offsetof(struct phsm_msg_hdr, length), (uint32_t)n);
	assert_int_equal(parse_req(buf, HDR_LEN - 1), PHSM_ST_BAD_LENGTH);
	assert_int_equal(parse_req(buf, 0), PHSM_ST_BAD_LENGTH);
	/* framing: a header announcing too little or too much */
	put32(buf + offsetof(struct phsm_msg_hdr, length), HDR_LEN - 1);
	assert_int_equal(phsm_msg_peek_length(buf, HDR_LEN), 0);
	put32(buf + offsetof(struct phsm_msg_hdr, length), PHSM_MSG_MAX + 1);
	assert_int_equal(phsm_msg_peek_length(buf, HDR_LEN), 0);
	put32(buf + offsetof(struct phsm_msg_hdr, length), PHSM_MSG_MAX);
	assert_int_equal(phsm_msg_peek_length(buf, HDR_LEN), PHSM_MSG_MAX);
	assert_int_equal(phsm_msg_peek_length(buf, HDR_LEN - 1), 0);
}

static void test_reject_unknown_flags(void **state)
{
	uint8_t buf[64];
	size_t n = valid_request(buf);
	struct phsm_msg m;

	(void)state;
	put32(buf + offsetof(struct phsm_msg_hdr, flags), 0x2);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_HEADER);
	put32(buf + offsetof(struct phsm_msg_hdr, flags), 0x80000000u);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_HEADER);
	/* a request may not claim to be a response ... */
	put32(buf + offsetof(struct phsm_msg_hdr, flags), PHSM_MSG_F_RESPONSE);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_HEADER);
	/* ... a response must, and nothing else */
	assert_int_equal(phsm_msg_parse(buf, n, true, &m), PHSM_ST_OK);
	put32(buf + offsetof(struct phsm_msg_hdr, flags), 0);
	assert_int_equal(phsm_msg_parse(buf, n, true, &m), PHSM_ST_BAD_HEADER);
	put32(buf + offsetof(struct phsm_msg_hdr, flags), PHSM_MSG_F_RESPONSE | 0x4);
	assert_int_equal(phsm_msg_parse(buf, n, true, &m), PHSM_ST_BAD_HEADER);
}

static void test_reject_nonzero_reserved_status_rv(void **state)
{
	uint8_t buf[64];
	size_t n = valid_request(buf);
	struct phsm_msg m;

	(void)state;
	put32(buf + offsetof(struct phsm_msg_hdr, reserved), 1);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_HEADER);
	put32(buf + offsetof(struct phsm_msg_hdr, reserved), 0);

	put32(buf + offsetof(struct phsm_msg_hdr, status), PHSM_ST_TRUNCATED);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_HEADER);
	put32(buf + offsetof(struct phsm_msg_hdr, status), 0);

	put32(buf + offsetof(struct phsm_msg_hdr, rv), 5);
	assert_int_equal(parse_req(buf, n), PHSM_ST_BAD_HEADER);

	/* In a response, status and rv are meaningful, reserved is not. */
	put32(buf + offsetof(struct phsm_msg_hdr, flags), PHSM_MSG_F_RESPONSE);
	put32(buf + offsetof(struct phsm_msg_hdr, status), PHSM_ST_BAD_VALUE);
	assert_int_equal(phsm_msg_parse(buf, n, true, &m), PHSM_ST_OK);
	assert_int_equal(m.status, PHSM_ST_BAD_VALUE);
	assert_int_equal(m.rv, 5);
	put32(buf + offsetof(struct phsm_msg_hdr, reserved), 0x100);
	assert_int_equal(phsm_msg_parse(buf, n, true, &m), PHSM_ST_BAD_HEADER);
}

/* ---- payload rejection ------------------------------------------------ */

static void test_reject_wrong_field_type(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	struct phsm_reader list, param;
	const uint8_t *p;
	uint64_t mech;
	uint32_t count;
	size_t n;

	(void)state;
	build_request(&w);	/* U64, BYTES, U64_ARRAY */
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	p = phsm_get_bytes(&m.payload, &n);	/* a U64 is next */
	assert_null(p);
	assert_int_equal(n, 0);
	assert_int_equal(m.payload.status, PHSM_ST_BAD_FIELD);

	phsm_reader_init(&m.payload, w.data + HDR_LEN, w.len - HDR_LEN);
	assert_int_equal(phsm_get_u64(&m.payload), 5);
	assert_int_equal(phsm_get_u64(&m.payload), 0);	/* BYTES is next */
	assert_int_equal(m.payload.status, PHSM_ST_BAD_FIELD);

	phsm_reader_init(&m.payload, w.data + HDR_LEN, w.len - HDR_LEN);
	assert_false(phsm_get_attrs(&m.payload, &list, &count));
	assert_int_equal(count, 0);
	assert_int_equal(m.payload.status, PHSM_ST_BAD_FIELD);

	phsm_reader_init(&m.payload, w.data + HDR_LEN, w.len - HDR_LEN);
	assert_false(phsm_get_mech(&m.payload, &mech, &param));
	assert_int_equal(mech, 0);
	assert_int_equal(m.payload.status, PHSM_ST_BAD_FIELD);

	phsm_reader_init(&m.payload, w.data + HDR_LEN, w.len - HDR_LEN);
	(void)phsm_get_u64(&m.payload);
	(void)phsm_get_bytes(&m.payload, &n);
	assert_non_null(phsm_get_u64_array(&m.payload, &n));
	assert_int_equal(n, 3);
	assert_true(phsm_reader_done(&m.payload));
	phsm_writer_free(&w);
}

static void test_reject_unknown_field_type_and_reserved(void **state)
{
	uint8_t buf[32] = { 0 };
	struct phsm_reader r;
	size_t n;

	(void)state;
	/* A field type the protocol does not define. */
	field(buf, 9, 0, 8);
	phsm_reader_init(&r, buf, 16);
	assert_int_equal(phsm_get_u64(&r), 0);
	assert_int_equal(r.status, PHSM_ST_BAD_FIELD);
	/* phsm_next_is() never matches an unknown type */
	phsm_reader_init(&r, buf, 16);
	assert_false(phsm_next_is(&r, PHSM_FT_U64));

	/* A field header whose reserved half-word is set. */
	field(buf, PHSM_FT_BYTES, 1, 0);
	phsm_reader_init(&r, buf, 8);
	assert_null(phsm_get_bytes(&r, &n));
	assert_int_equal(r.status, PHSM_ST_BAD_FIELD);
}

static void test_reject_truncated_field(void **state)
{
	uint8_t buf[32] = { 0 };
	struct phsm_reader r;
	size_t n;

	(void)state;
	/* Fewer bytes than a field header. */
	field(buf, PHSM_FT_U64, 0, 8);
	phsm_reader_init(&r, buf, 7);
	assert_int_equal(phsm_get_u64(&r), 0);
	assert_int_equal(r.status, PHSM_ST_TRUNCATED);

	/* Asking for a field when none is left. */
	phsm_reader_init(&r, buf, 0);
	assert_null(phsm_get_bytes(&r, &n));
	assert_int_equal(r.status, PHSM_ST_TRUNCATED);

	/* A header and part of the value. */
	put64(buf + 8, 0x1122334455667788ull);
	phsm_reader_init(&r, buf, 15);
	assert_int_equal(phsm_get_u64(&r), 0);
	assert_int_equal(r.status, PHSM_ST_TRUNCATED);
}

static void test_reject_field_past_end(void **state)
{
	uint8_t buf[32] = { 0 };
	struct phsm_reader r;
	size_t n;

	(void)state;
	field(buf, PHSM_FT_BYTES, 0, 9);
	phsm_reader_init(&r, buf, 16);	/* 8 value bytes, field claims 9 */
	assert_null(phsm_get_bytes(&r, &n));
	assert_int_equal(n, 0);
	assert_int_equal(r.status, PHSM_ST_TRUNCATED);

	/* A length that would wrap a 32-bit sum. */
	field(buf, PHSM_FT_BYTES, 0, 0xfffffffcu);
	phsm_reader_init(&r, buf, 16);
	assert_null(phsm_get_bytes(&r, &n));
	assert_int_equal(r.status, PHSM_ST_TRUNCATED);

	/* Also through a whole message: the payload ends inside a field. */
	{
		struct phsm_writer w = { 0 };
		struct phsm_msg m;

		assert_true(phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, 0));
		phsm_put_bytes(&w, "hello", 5);
		assert_true(phsm_msg_finish(&w, 0, 0));
		put32(w.data + HDR_LEN + 4, 6);
		assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
		assert_null(phsm_get_bytes(&m.payload, &n));
		assert_int_equal(m.payload.status, PHSM_ST_TRUNCATED);
		phsm_writer_free(&w);
	}
}

static void test_reject_bad_u64_len(void **state)
{
	uint8_t buf[32] = { 0 };
	struct phsm_reader r;

	(void)state;
	field(buf, PHSM_FT_U64, 0, 4);
	phsm_reader_init(&r, buf, 12);
	assert_int_equal(phsm_get_u64(&r), 0);
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);

	field(buf, PHSM_FT_U64, 0, 16);
	phsm_reader_init(&r, buf, 24);
	assert_int_equal(phsm_get_u64(&r), 0);
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);
}

static void test_reject_bad_u64_array_len(void **state)
{
	uint8_t buf[32] = { 0 };
	struct phsm_reader r;
	size_t count = 3;

	(void)state;
	field(buf, PHSM_FT_U64_ARRAY, 0, 12);
	phsm_reader_init(&r, buf, 20);
	assert_null(phsm_get_u64_array(&r, &count));
	assert_int_equal(count, 0);
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);
}

/* An ATTRS field of @count entries, each 16 bytes, built by hand. */
static size_t attrs_field(uint8_t *buf, uint32_t count, uint32_t reserved,
			  size_t entry_bytes)
{
	size_t off = field(buf, PHSM_FT_ATTRS, 0, (uint32_t)(8 + entry_bytes));

	put32(buf + off, count);
	put32(buf + off + 4, reserved);
	return off + 8;
}

static void entry(uint8_t *p, uint64_t type, uint32_t len, uint32_t flags)
{
	put64(p, type);
	put32(p + 8, len);
	put32(p + 12, flags);
}

static void test_reject_attr_count_too_large(void **state)
{
	uint8_t buf[128] = { 0 };
	struct phsm_reader r, list;
	uint32_t count = 9;
	size_t off;

	(void)state;
	/* Three entries claimed, bytes for two. */
	off = attrs_field(buf, 3, 0, 32);
	entry(buf + off, 1, 0, PHSM_ATTR_F_QUERY);
	entry(buf + off + 16, 2, 0, PHSM_ATTR_F_QUERY);
	phsm_reader_init(&r, buf, off + 32);
	assert_false(phsm_get_attrs(&r, &list, &count));
	assert_int_equal(count, 0);
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);

	/* A count that would overflow any multiplication. */
	off = attrs_field(buf, 0xffffffffu, 0, 32);
	phsm_reader_init(&r, buf, off + 32);
	assert_false(phsm_get_attrs(&r, &list, &count));
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);
}

static void test_reject_attr_count_over_max(void **state)
{
	size_t bytes = (PHSM_ATTRS_MAX + 1) * sizeof(struct phsm_attr);
	uint8_t *buf = calloc(1, 16 + bytes);
	struct phsm_reader r, list;
	uint32_t count;
	size_t off;

	(void)state;
	assert_non_null(buf);
	off = attrs_field(buf, PHSM_ATTRS_MAX + 1, 0, bytes);
	for (size_t i = 0; i <= PHSM_ATTRS_MAX; i++)
		entry(buf + off + 16 * i, i, 0, PHSM_ATTR_F_QUERY);
	phsm_reader_init(&r, buf, off + bytes);
	assert_false(phsm_get_attrs(&r, &list, &count));
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);

	/* Exactly the maximum is accepted. */
	off = attrs_field(buf, PHSM_ATTRS_MAX, 0, bytes - 16);
	phsm_reader_init(&r, buf, off + bytes - 16);
	assert_true(phsm_get_attrs(&r, &list, &count));
	assert_int_equal(count, PHSM_ATTRS_MAX);
	free(buf);
}

static void test_reject_attrs_bad_header(void **state)
{
	uint8_t buf[64] = { 0 };
	struct phsm_reader r, list;
	uint32_t count;
	size_t off;

	(void)state;
	/* Non-zero reserved word of the list. */
	off = attrs_field(buf, 0, 1, 0);
	phsm_reader_init(&r, buf, off);
	assert_false(phsm_get_attrs(&r, &list, &count));
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);

	/* A list too short to hold count and reserved. */
	field(buf, PHSM_FT_ATTRS, 0, 4);
	phsm_reader_init(&r, buf, 12);
	assert_false(phsm_get_attrs(&r, &list, &count));
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);
}

static void test_reject_attr_unknown_flags(void **state)
{
	uint8_t buf[64] = { 0 };
	struct phsm_reader r, list;
	struct phsm_attr_view a;
	uint32_t count;
	size_t off;

	(void)state;
	off = attrs_field(buf, 1, 0, 16);
	entry(buf + off, 0x11, 0, 0x10);
	phsm_reader_init(&r, buf, off + 16);
	assert_true(phsm_get_attrs(&r, &list, &count));
	assert_int_equal(count, 1);
	assert_false(phsm_next_attr(&list, &a));
	assert_int_equal(list.status, PHSM_ST_BAD_VALUE);
	assert_int_equal(a.type, 0);
	assert_null(a.value);
}

static void test_reject_attr_value_past_end(void **state)
{
	uint8_t buf[64] = { 0 };
	struct phsm_reader r, list;
	struct phsm_attr_view a;
	uint32_t count;
	size_t off;

	(void)state;
	/* One entry announcing 9 value bytes with 8 present. */
	off = attrs_field(buf, 1, 0, 16 + 8);
	entry(buf + off, 0x11, 9, PHSM_ATTR_F_VALUE);
	phsm_reader_init(&r, buf, off + 24);
	assert_true(phsm_get_attrs(&r, &list, &count));
	assert_false(phsm_next_attr(&list, &a));
	assert_int_equal(list.status, PHSM_ST_TRUNCATED);

	/* Two entries fit by count, but the first one's value eats the second. */
	off = attrs_field(buf, 2, 0, 32);
	entry(buf + off, 0x3, 8, PHSM_ATTR_F_VALUE);
	phsm_reader_init(&r, buf, off + 32);
	assert_true(phsm_get_attrs(&r, &list, &count));
	assert_int_equal(count, 2);
	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.len, 8);
	assert_false(phsm_next_attr(&list, &a));
	assert_int_equal(list.status, PHSM_ST_TRUNCATED);

	/* A huge len without F_VALUE is a capacity, not a value: fine. */
	off = attrs_field(buf, 1, 0, 16);
	entry(buf + off, 0x11, 0xffffffffu, 0);
	phsm_reader_init(&r, buf, off + 16);
	assert_true(phsm_get_attrs(&r, &list, &count));
	assert_true(phsm_next_attr(&list, &a));
	assert_int_equal(a.len, 0xffffffffu);
	assert_true(phsm_reader_done(&list));
}

static void test_reject_attr_list_trailing(void **state)
{
	uint8_t buf[64] = { 0 };
	struct phsm_reader r, list;
	struct phsm_attr_view a;
	uint32_t count;
	size_t off;

	(void)state;
	off = attrs_field(buf, 1, 0, 16 + 4);
	entry(buf + off, 0x11, 0, PHSM_ATTR_F_QUERY);
	phsm_reader_init(&r, buf, off + 20);
	assert_true(phsm_get_attrs(&r, &list, &count));
	assert_true(phsm_next_attr(&list, &a));
	assert_false(phsm_reader_done(&list));
	assert_int_equal(list.status, PHSM_ST_TRAILING);
}

/* A MECH field by hand: mechanism, param_len, reserved, then body. */
static size_t mech_field(uint8_t *buf, uint64_t mech, uint32_t param_len,
			 uint32_t reserved, size_t body)
{
	size_t off = field(buf, PHSM_FT_MECH, 0, (uint32_t)(16 + body));

	put64(buf + off, mech);
	put32(buf + off + 8, param_len);
	put32(buf + off + 12, reserved);
	return off + 16;
}

static void test_reject_mech_param_len(void **state)
{
	uint8_t buf[64] = { 0 };
	struct phsm_reader r, param;
	uint64_t mech = 5;
	size_t off;

	(void)state;
	/* param_len larger than what the field holds */
	off = mech_field(buf, 0x1082, 17, 0, 16);
	field(buf + off, PHSM_FT_BYTES, 0, 8);
	phsm_reader_init(&r, buf, off + 16);
	assert_false(phsm_get_mech(&r, &mech, &param));
	assert_int_equal(mech, 0);
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);

	/* ... and smaller */
	off = mech_field(buf, 0x1082, 15, 0, 16);
	phsm_reader_init(&r, buf, off + 16);
	assert_false(phsm_get_mech(&r, &mech, &param));
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);

	/* non-zero reserved */
	off = mech_field(buf, 0x1082, 0, 1, 0);
	phsm_reader_init(&r, buf, off);
	assert_false(phsm_get_mech(&r, &mech, &param));
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);

	/* a field too short for struct phsm_mech */
	field(buf, PHSM_FT_MECH, 0, 8);
	phsm_reader_init(&r, buf, 16);
	assert_false(phsm_get_mech(&r, &mech, &param));
	assert_int_equal(r.status, PHSM_ST_BAD_VALUE);

	/* consistent: accepted, and the parameter is its own reader */
	off = mech_field(buf, 0x1082, 24, 0, 24);
	field(buf + off, PHSM_FT_BYTES, 0, 16);
	phsm_reader_init(&r, buf, off + 24);
	assert_true(phsm_get_mech(&r, &mech, &param));
	assert_int_equal(mech, 0x1082);
	assert_int_equal(param.left, 24);
	assert_true(phsm_reader_done(&r));
}

static void test_reject_mech_param_malformed(void **state)
{
	uint8_t buf[64] = { 0 };
	struct phsm_reader r, param;
	uint64_t mech;
	size_t off, n;

	(void)state;
	/* The parameter's own field runs past the parameter's end. */
	off = mech_field(buf, 0x1082, 16, 0, 16);
	field(buf + off, PHSM_FT_BYTES, 0, 9);
	phsm_reader_init(&r, buf, off + 16);
	assert_true(phsm_get_mech(&r, &mech, &param));
	assert_null(phsm_get_bytes(&param, &n));
	assert_int_equal(param.status, PHSM_ST_TRUNCATED);
	/* The outer reader is unaffected. */
	assert_true(phsm_reader_done(&r));
}

static void test_reject_trailing(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;

	(void)state;
	build_request(&w);
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	assert_int_equal(phsm_get_u64(&m.payload), 5);
	assert_false(phsm_reader_done(&m.payload));
	assert_int_equal(m.payload.status, PHSM_ST_TRAILING);

	/* A stray byte after the last field. */
	{
		uint8_t buf[64];
		size_t n = valid_request(buf);

		buf[n] = 0;
		put32(buf + offsetof(struct phsm_msg_hdr, length), (uint32_t)n + 1);
		assert_int_equal(phsm_msg_parse(buf, n + 1, false, &m), PHSM_ST_OK);
		assert_int_equal(phsm_get_u64(&m.payload), 0);
		assert_int_equal(m.payload.status, PHSM_ST_OK);
		assert_false(phsm_next_is(&m.payload, PHSM_FT_U64));
		assert_false(phsm_reader_done(&m.payload));
		assert_int_equal(m.payload.status, PHSM_ST_TRAILING);
	}
	phsm_writer_free(&w);
}

/* ---- stickiness ------------------------------------------------------- */

static void test_errors_are_sticky(void **state)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	struct phsm_reader list, param;
	const uint8_t *p;
	uint64_t mech = 1;
	uint32_t count = 1;
	size_t n = 1;

	(void)state;
	build_request(&w);	/* U64, BYTES, U64_ARRAY */
	assert_int_equal(phsm_msg_parse(w.data, w.len, false, &m), PHSM_ST_OK);
	/* First error: wrong type. */
	assert_null(phsm_get_u64_array(&m.payload, &n));
	assert_int_equal(m.payload.status, PHSM_ST_BAD_FIELD);
	assert_int_equal(m.payload.left, 0);
	/* Every later read fails, returns zeroes and keeps the first status,
	 * even reads whose field would have been right. */
	assert_int_equal(phsm_get_u64(&m.payload), 0);
	p = phsm_get_bytes(&m.payload, &n);
	assert_null(p);
	assert_int_equal(n, 0);
	assert_false(phsm_get_attrs(&m.payload, &list, &count));
	assert_int_equal(count, 0);
	assert_false(phsm_get_mech(&m.payload, &mech, &param));
	assert_int_equal(mech, 0);
	assert_false(phsm_next_is(&m.payload, PHSM_FT_U64));
	assert_false(phsm_reader_done(&m.payload));
	assert_int_equal(m.payload.status, PHSM_ST_BAD_FIELD);

	/* Same for a TRUNCATED first error followed by a would-be TRAILING. */
	phsm_reader_init(&m.payload, w.data + HDR_LEN, 5);
	assert_int_equal(phsm_get_u64(&m.payload), 0);
	assert_int_equal(m.payload.status, PHSM_ST_TRUNCATED);
	assert_false(phsm_reader_done(&m.payload));
	assert_int_equal(m.payload.status, PHSM_ST_TRUNCATED);
	phsm_writer_free(&w);
}

static void test_attr_errors_are_sticky(void **state)
{
	uint8_t buf[64] = { 0 };
	struct phsm_reader r, list;
	struct phsm_attr_view a;
	uint32_t count;
	size_t off;

	(void)state;
	off = attrs_field(buf, 2, 0, 32);
	entry(buf + off, 0x11, 0, 0x40);		/* bad flags */
	entry(buf + off + 16, 0x12, 0, PHSM_ATTR_F_QUERY);	/* fine */
	phsm_reader_init(&r, buf, off + 32);
	assert_true(phsm_get_attrs(&r, &list, &count));
	assert_false(phsm_next_attr(&list, &a));
	assert_false(phsm_next_attr(&list, &a));
	assert_int_equal(a.type, 0);
	assert_int_equal(list.status, PHSM_ST_BAD_VALUE);
	assert_false(phsm_reader_done(&list));
	assert_int_equal(list.status, PHSM_ST_BAD_VALUE);
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(phsm_status_name(PHSM_ST_OK), "ok");
	for (uint32_t s = PHSM_ST_OK; s <= PHSM_ST_BAD_CONTEXT; s++) {
		assert_non_null(phsm_status_name(s));
		assert_string_not_equal(phsm_status_name(s), "unknown status");
	}
	assert_string_equal(phsm_status_name(PHSM_ST_BAD_CONTEXT + 1), "unknown status");
	assert_string_equal(phsm_status_name(0xffffffffu), "unknown status");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_empty_payload),
		cmocka_unit_test(test_u64_round_trip),
		cmocka_unit_test(test_bytes_round_trip),
		cmocka_unit_test(test_u64_array_round_trip),
		cmocka_unit_test(test_attrs_round_trip),
		cmocka_unit_test(test_attrs_empty),
		cmocka_unit_test(test_mech_round_trip),
		cmocka_unit_test(test_writer_reuse_and_truncate),
		cmocka_unit_test(test_writer_sticky_failure),
		cmocka_unit_test(test_writer_null_source),
		cmocka_unit_test(test_bytes_reserve_commit),
		cmocka_unit_test(test_bytes_reserve_grows),
		cmocka_unit_test(test_bytes_commit_over_reserve),
		cmocka_unit_test(test_bytes_reserve_cancel),
		cmocka_unit_test(test_bytes_reserve_failed_writer),
		cmocka_unit_test(test_writer_lend),
		cmocka_unit_test(test_bytes_reserve_lent),
		cmocka_unit_test(test_attrs_after_reserve),
		cmocka_unit_test(test_writer_wipes),
		cmocka_unit_test(test_writer_begin_again_wipes),
		cmocka_unit_test(test_reject_bad_magic),
		cmocka_unit_test(test_reject_bad_version),
		cmocka_unit_test(test_reject_bad_length),
		cmocka_unit_test(test_reject_unknown_flags),
		cmocka_unit_test(test_reject_nonzero_reserved_status_rv),
		cmocka_unit_test(test_reject_wrong_field_type),
		cmocka_unit_test(test_reject_unknown_field_type_and_reserved),
		cmocka_unit_test(test_reject_truncated_field),
		cmocka_unit_test(test_reject_field_past_end),
		cmocka_unit_test(test_reject_bad_u64_len),
		cmocka_unit_test(test_reject_bad_u64_array_len),
		cmocka_unit_test(test_reject_attr_count_too_large),
		cmocka_unit_test(test_reject_attr_count_over_max),
		cmocka_unit_test(test_reject_attrs_bad_header),
		cmocka_unit_test(test_reject_attr_unknown_flags),
		cmocka_unit_test(test_reject_attr_value_past_end),
		cmocka_unit_test(test_reject_attr_list_trailing),
		cmocka_unit_test(test_reject_mech_param_len),
		cmocka_unit_test(test_reject_mech_param_malformed),
		cmocka_unit_test(test_reject_trailing),
		cmocka_unit_test(test_errors_are_sticky),
		cmocka_unit_test(test_attr_errors_are_sticky),
		cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
