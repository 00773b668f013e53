/* SPDX-License-Identifier: MIT */
/*
 * Encoder and decoder for the phsm command protocol (uapi/phsm_proto.h),
 * shared by the library, the firmware and the tests so that the format has
 * one implementation.  Userspace only.
 *
 * The writer grows its buffer as needed; an allocation failure is sticky
 * and reported by phsm_msg_finish().  The reader never reads outside the
 * bytes it was given: the first error is sticky in reader.status (a
 * PHSM_ST_* value), every later read fails and returns zeroes, so a decoder
 * may read all its fields and check the status once.
 */
#ifndef PHSM_CODEC_H
#define PHSM_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../phsm_proto.h"

struct phsm_writer {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;		/* out of memory, or message too large */
	bool lent;		/* data is the caller's: never grown or freed */
	uint32_t attrs;		/* entries of the open attribute list */
};

/*
 * Write into @cap bytes the caller lends (a transport's shared memory),
 * before phsm_msg_begin().  The writer never reads back what it wrote, so
 * another process may scribble on the buffer meanwhile; a message that
 * does not fit fails the writer.  phsm_writer_free() leaves the buffer to
 * its owner, who wipes it.
 */
void phsm_writer_lend(struct phsm_writer *w, uint8_t *buf, size_t cap);

/* Start a message: writes the header with length 0 (fixed by finish). */
bool phsm_msg_begin(struct phsm_writer *w, uint16_t opcode, uint32_t flags,
		    uint64_t app_ctx, uint32_t tag);
/* Fill in length, status and rv; false if the writer failed. */
bool phsm_msg_finish(struct phsm_writer *w, uint32_t status, uint32_t rv);
void phsm_writer_free(struct phsm_writer *w);
/*
 * Drop the payload written so far, keeping the header (for error answers).
 * The bytes dropped are wiped, as are a writer's bytes when it grows or
 * is freed: messages carry PINs, plaintext and key values.
 */
void phsm_msg_truncate(struct phsm_writer *w);
/* Zero @n bytes at @p (may be NULL when @n is 0); never optimised away. */
void phsm_wipe(void *p, size_t n);

void phsm_put_u64(struct phsm_writer *w, uint64_t v);
void phsm_put_bytes(struct phsm_writer *w, const void *p, size_t n);
void phsm_put_u64_array(struct phsm_writer *w, const uint64_t *v, size_t n);
/*
 * A BYTES field whose length is known only once its producer ran: reserve
 * room for @cap bytes and write at most that many at the pointer returned
 * (NULL once the writer failed), then commit the length written, or
 * cancel; nothing else may be put in between.  @mark is the field's place.
 * Saves producing into a buffer of one's own and copying it in.
 */
uint8_t *phsm_put_bytes_reserve(struct phsm_writer *w, size_t cap,
				size_t *mark);
void phsm_put_bytes_commit(struct phsm_writer *w, size_t mark, size_t len);
/* Drop the reserved field, wiping whatever was written into it. */
void phsm_put_bytes_cancel(struct phsm_writer *w, size_t mark);

/* Attribute list: begin, any number of attr, end.  Lists do not nest. */
size_t phsm_put_attrs_begin(struct phsm_writer *w);
void phsm_put_attr(struct phsm_writer *w, uint64_t type, uint32_t flags,
		   uint32_t len, const void *value);
void phsm_put_attrs_end(struct phsm_writer *w, size_t mark);

/* Mechanism: begin, the parameter's fields (put_u64/put_bytes), end. */
size_t phsm_put_mech_begin(struct phsm_writer *w, uint64_t mechanism);
void phsm_put_mech_end(struct phsm_writer *w, size_t mark);

struct phsm_reader {
	const uint8_t *p;
	size_t left;
	uint32_t status;	/* PHSM_ST_OK until the first error */
};

/* Host-order copy of a checked header. */
struct phsm_msg {
	uint16_t opcode;
	uint32_t flags;
	uint64_t app_ctx;
	uint32_t tag;
	uint32_t status;
	uint32_t rv;
	struct phsm_reader payload;
};

/*
 * Check a whole message of @len bytes: magic, version, length, flags and
 * that the fields a request must leave zero are zero.  Returns a PHSM_ST_*
 * value; on PHSM_ST_OK, @m describes the message and its payload.  When the
 * header is readable but wrong, @m still gets opcode and tag so an error
 * answer can be addressed.
 */
uint32_t phsm_msg_parse(const void *buf, size_t len, bool response,
			struct phsm_msg *m);
/* Length announced by a header's first bytes (for stream framing); 0 if bad. */
uint32_t phsm_msg_peek_length(const void *hdr, size_t len);

void phsm_reader_init(struct phsm_reader *r, const void *p, size_t n);
uint64_t phsm_get_u64(struct phsm_reader *r);
/* Points into the message; *n is set to its length. */
const uint8_t *phsm_get_bytes(struct phsm_reader *r, size_t *n);
/* A U64_ARRAY; the elements are read with phsm_array_u64(). */
const uint8_t *phsm_get_u64_array(struct phsm_reader *r, size_t *count);
uint64_t phsm_array_u64(const uint8_t *array, size_t i);

/* An attribute list; entries are then read with phsm_next_attr(). */
bool phsm_get_attrs(struct phsm_reader *r, struct phsm_reader *list,
		    uint32_t *count);
struct phsm_attr_view {
	uint64_t type;
	uint32_t len;
	uint32_t flags;
	const uint8_t *value;	/* NULL unless PHSM_ATTR_F_VALUE */
};
bool phsm_next_attr(struct phsm_reader *list, struct phsm_attr_view *a);

/* A mechanism; its parameter fields are then read from *param. */
bool phsm_get_mech(struct phsm_reader *r, uint64_t *mechanism,
		   struct phsm_reader *param);

/* True when nothing is left and no error happened; else sets TRAILING. */
bool phsm_reader_done(struct phsm_reader *r);
/* True if the next field (if any) has this type. */
bool phsm_next_is(const struct phsm_reader *r, uint16_t type);

const char *phsm_status_name(uint32_t status);

#endif /* PHSM_CODEC_H */
