/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * phsm command protocol: the messages a host sends to the card firmware
 * and the firmware's answers.  The same bytes travel over a Unix socket to
 * phsm-fw, through /dev/phsmN ioctls and over the card's DMA rings.
 *
 * All integers are little-endian.  A message is a fixed header followed by
 * a payload of typed fields, each with its own length, so a decoder can
 * check every read against the bytes it actually has.  The firmware answers
 * every request with a response carrying the same opcode and tag.
 *
 * Documentation/phsm/protocol.rst describes the format in prose.
 */
#ifndef _UAPI_PHSM_PROTO_H
#define _UAPI_PHSM_PROTO_H

#include <linux/types.h>

#define PHSM_PROTO_MAGIC	0x4d534850	/* "PHSM" */
#define PHSM_PROTO_VERSION	1

/* Largest message in either direction, header included. */
#define PHSM_MSG_MAX		(16u << 20)

/* Message header flags. */
#define PHSM_MSG_F_RESPONSE	0x1u	/* set by the firmware on answers */

/**
 * struct phsm_msg_hdr - header of every request and response
 * @magic:	%PHSM_PROTO_MAGIC
 * @version:	%PHSM_PROTO_VERSION
 * @opcode:	one of the PHSM_OP_* values
 * @length:	size of the whole message in bytes, this header included
 * @flags:	PHSM_MSG_F_* bits; no others may be set
 * @app_ctx:	application context the message belongs to.  A transport that
 *		multiplexes applications (the driver, the QEMU device) sets it;
 *		phsm-fw replaces it by the connection's own context on a plain
 *		socket connection
 * @tag:	chosen by the sender of a request, echoed in its response
 * @status:	response: PHSM_ST_* (is the message well-formed?);
 *		request: must be zero
 * @rv:		response: the CK_RV of the operation, meaningful only when
 *		@status is %PHSM_ST_OK; request: must be zero
 * @reserved:	must be zero
 */
struct phsm_msg_hdr {
	__le32 magic;
	__le16 version;
	__le16 opcode;
	__le32 length;
	__le32 flags;
	__le64 app_ctx;
	__le32 tag;
	__le32 status;
	__le32 rv;
	__le32 reserved;
};

/*
 * Protocol status: why a message could not be processed at all.  The
 * operation's own result is the CK_RV in @rv.
 */
enum phsm_status {
	PHSM_ST_OK		= 0,
	PHSM_ST_BAD_MAGIC	= 1,	/* magic is not PHSM_PROTO_MAGIC */
	PHSM_ST_BAD_VERSION	= 2,	/* version not supported */
	PHSM_ST_BAD_LENGTH	= 3,	/* header length disagrees with the bytes, or too large */
	PHSM_ST_BAD_HEADER	= 4,	/* unknown flag, non-zero status/rv/reserved in a request */
	PHSM_ST_BAD_OPCODE	= 5,	/* opcode unknown */
	PHSM_ST_BAD_FIELD	= 6,	/* wrong field type, or non-zero field reserved bits */
	PHSM_ST_TRUNCATED	= 7,	/* a field or a value runs past the end of the payload */
	PHSM_ST_BAD_VALUE	= 8,	/* a field's value is malformed (bad length, bad count) */
	PHSM_ST_TRAILING	= 9,	/* bytes left over after the last field */
	PHSM_ST_NO_MEMORY	= 10,	/* the card could not allocate for this message */
	PHSM_ST_BAD_CONTEXT	= 11,	/* app_ctx not valid on this transport */
};

/* Field types.  Each field is a struct phsm_field followed by @len bytes. */
enum phsm_field_type {
	PHSM_FT_U64		= 1,	/* len 8: an unsigned 64-bit integer */
	PHSM_FT_BYTES		= 2,	/* len >= 0: an octet string */
	PHSM_FT_U64_ARRAY	= 3,	/* len multiple of 8: an array of __le64 */
	PHSM_FT_ATTRS		= 4,	/* an attribute list, below */
	PHSM_FT_MECH		= 5,	/* a mechanism, below */
};

/**
 * struct phsm_field - header of one payload field
 * @type:	PHSM_FT_*
 * @reserved:	must be zero
 * @len:	number of value bytes that follow
 */
struct phsm_field {
	__le16 type;
	__le16 reserved;
	__le32 len;
};

/*
 * PHSM_FT_ATTRS value: a __le32 count, a __le32 reserved (zero), then
 * @count entries of struct phsm_attr, each followed by @len value bytes when
 * PHSM_ATTR_F_VALUE is set.  Values are raw PKCS#11 attribute values; a
 * CK_ULONG value (CKA_CLASS, CKA_VALUE_LEN, ...) is 8 bytes little-endian,
 * an array of them (CKA_ALLOWED_MECHANISMS) 8 bytes per element, and an
 * attribute array (CKA_WRAP_TEMPLATE, ...) is itself a whole PHSM_FT_ATTRS
 * field.  Lengths are in these wire units.
 *
 * In a template (create, generate, find, set): every entry has a value.
 * In a C_GetAttributeValue query: no entry has a value; @len is the
 * caller's buffer size, or PHSM_ATTR_F_QUERY says the caller passed NULL.
 * Its answer has the query's entries in the same order, each with
 * PHSM_ATTR_F_VALUE and the value; or PHSM_ATTR_F_LENGTH
 * with the exact length and no value (size query); or
 * PHSM_ATTR_F_UNAVAILABLE (sensitive, invalid or too small) with @len 0.
 */
#define PHSM_ATTR_F_VALUE	0x1u
#define PHSM_ATTR_F_QUERY	0x2u
#define PHSM_ATTR_F_LENGTH	0x4u
#define PHSM_ATTR_F_UNAVAILABLE	0x8u

#define PHSM_ATTRS_MAX		256	/* entries in one list */

struct phsm_attr {
	__le64 type;
	__le32 len;
	__le32 flags;
};

/*
 * PHSM_FT_MECH value: struct phsm_mech, then @param_len bytes of parameter.
 * The parameter is not the C structure but a sequence of fields in the
 * same encoding as a payload, one layout per mechanism:
 *
 *   no parameter (ECB, digests, ECDSA, RSA_PKCS, HMAC, CMAC, keygen):  none
 *   AES_CBC, AES_CBC_PAD:             BYTES iv (16)
 *   AES_CTR:                          U64 counter_bits, BYTES cb (16)
 *   AES_GCM:                          BYTES iv, U64 iv_bits, BYTES aad,
 *                                     U64 tag_bits
 *   AES_KEY_WRAP, AES_KEY_WRAP_PAD:   none, or BYTES iv
 *   RSA_PKCS_PSS and SHAx_RSA_PKCS_PSS:
 *                                     U64 hash_alg, U64 mgf, U64 salt_len
 *   RSA_PKCS_OAEP:                    U64 hash_alg, U64 mgf, U64 source,
 *                                     BYTES source_data
 *   ECDH1_DERIVE:                     U64 kdf, BYTES shared_data,
 *                                     BYTES public_data
 *   EDDSA:                            none, or U64 ph_flag, BYTES context
 *   *_HMAC_GENERAL, AES_CMAC_GENERAL: U64 mac_len
 *
 * Message-based AES_GCM (PHSM_OP_MSG_*) carries per-message parameters
 * as BYTES fields in the request, see below.
 */
struct phsm_mech {
	__le64 mechanism;
	__le32 param_len;
	__le32 reserved;
};

/* Operation kinds for the PHSM_OP_OP_* and PHSM_OP_MSG_* commands. */
enum phsm_op_kind {
	PHSM_OPK_ENCRYPT	= 1,
	PHSM_OPK_DECRYPT	= 2,
	PHSM_OPK_DIGEST		= 3,
	PHSM_OPK_SIGN		= 4,
	PHSM_OPK_VERIFY		= 5,
	PHSM_OPK_SIGN_RECOVER	= 6,
	PHSM_OPK_VERIFY_RECOVER	= 7,
};

/* An output capacity of PHSM_OUT_QUERY means the caller's buffer was NULL. */
#define PHSM_OUT_QUERY		(~(__u64)0)

/*
 * Opcodes.  Each line gives the request's fields, then "->" and the
 * response's fields, all in order.  "sess" is a session handle, "part" a
 * partition index (0 .. partitions-1), "outcap" the caller's output buffer
 * size or PHSM_OUT_QUERY.  A response whose rv is not CKR_OK carries no
 * fields, except where "on error" says otherwise.
 *
 * Outputs: "BYTES out, U64 outlen" is the answer to every call that fills
 * a caller's buffer.  On CKR_OK, out holds the data (empty for a size
 * query) and outlen its length (the needed length for a query).  On
 * CKR_BUFFER_TOO_SMALL, out is empty and outlen the needed length (these
 * two fields, and param_out where the opcode has it, are present "on
 * error" for that rv).  Updates that produce no output (digest, sign,
 * verify) answer an empty out and outlen 0.
 *
 * Handles (sessions, objects) are non-zero and below 2^48, so a host
 * library may use the upper bits to tell cards apart.
 */
enum phsm_opcode {
	/* Card and partitions (the library's slots and tokens) */
	PHSM_OP_GET_CARD_INFO		= 0x0001, /* -> BYTES struct phsm_card_info */
	PHSM_OP_GET_TOKEN_INFO		= 0x0002, /* U64 part -> BYTES struct phsm_token_info */
	PHSM_OP_GET_MECH_LIST		= 0x0003, /* U64 part -> U64_ARRAY mechanisms */
	PHSM_OP_GET_MECH_INFO		= 0x0004, /* U64 part, U64 mech -> U64 min, U64 max, U64 flags */
	PHSM_OP_INIT_TOKEN		= 0x0010, /* U64 part, BYTES so_pin, BYTES label(32) */
	PHSM_OP_INIT_PIN		= 0x0011, /* U64 sess, BYTES pin */
	PHSM_OP_SET_PIN			= 0x0012, /* U64 sess, BYTES old, BYTES new */

	/* Sessions */
	PHSM_OP_OPEN_SESSION		= 0x0020, /* U64 part, U64 flags -> U64 sess */
	PHSM_OP_CLOSE_SESSION		= 0x0021, /* U64 sess */
	PHSM_OP_CLOSE_ALL_SESSIONS	= 0x0022, /* U64 part: this application's only */
	PHSM_OP_GET_SESSION_INFO	= 0x0023, /* U64 sess -> U64 part, U64 state, U64 flags, U64 device_error */
	PHSM_OP_LOGIN			= 0x0024, /* U64 sess, U64 user_type, BYTES pin, BYTES username */
	PHSM_OP_LOGOUT			= 0x0025, /* U64 sess */
	PHSM_OP_SESSION_CANCEL		= 0x0026, /* U64 sess, U64 flags (CKF_*: which operations) */

	/* Objects */
	PHSM_OP_CREATE_OBJECT		= 0x0030, /* U64 sess, ATTRS tmpl -> U64 obj */
	PHSM_OP_COPY_OBJECT		= 0x0031, /* U64 sess, U64 obj, ATTRS tmpl -> U64 obj */
	PHSM_OP_DESTROY_OBJECT		= 0x0032, /* U64 sess, U64 obj */
	PHSM_OP_GET_OBJECT_SIZE		= 0x0033, /* U64 sess, U64 obj -> U64 size */
	PHSM_OP_GET_ATTRIBUTE_VALUE	= 0x0034, /* U64 sess, U64 obj, ATTRS query -> ATTRS answer
						   * (answer present on CKR_OK, CKR_ATTRIBUTE_SENSITIVE,
						   * CKR_ATTRIBUTE_TYPE_INVALID, CKR_BUFFER_TOO_SMALL) */
	PHSM_OP_SET_ATTRIBUTE_VALUE	= 0x0035, /* U64 sess, U64 obj, ATTRS tmpl */
	PHSM_OP_FIND_INIT		= 0x0036, /* U64 sess, ATTRS tmpl (empty: all) */
	PHSM_OP_FIND			= 0x0037, /* U64 sess, U64 max -> U64_ARRAY objs */
	PHSM_OP_FIND_FINAL		= 0x0038, /* U64 sess */

	/* Single- and multi-part operations, one set for every kind */
	PHSM_OP_OP_INIT			= 0x0040, /* U64 sess, U64 kind, MECH, U64 key (0 for digest) */
	PHSM_OP_OP_ONESHOT		= 0x0041, /* U64 sess, U64 kind, BYTES in, BYTES sig, U64 outcap
						   * -> BYTES out, U64 outlen.  sig: the signature for
						   * VERIFY, else empty. */
	PHSM_OP_OP_UPDATE		= 0x0042, /* U64 sess, U64 kind, BYTES in, U64 outcap -> BYTES out, U64 outlen */
	PHSM_OP_OP_FINAL		= 0x0043, /* U64 sess, U64 kind, BYTES sig, U64 outcap -> BYTES out, U64 outlen */
	PHSM_OP_DIGEST_KEY		= 0x0044, /* U64 sess, U64 key */

	/*
	 * Message-based operations (kinds ENCRYPT, DECRYPT, SIGN, VERIFY).
	 * param: the per-message parameter in the mechanism's encoding; for
	 * AES_GCM: BYTES iv, U64 iv_fixed_bits, U64 iv_generator,
	 * BYTES tag, U64 tag_bits.  param_out gives back what the card
	 * wrote into the caller's parameter (AES_GCM: BYTES iv, BYTES tag).
	 */
	PHSM_OP_MSG_INIT		= 0x0050, /* U64 sess, U64 kind, MECH, U64 key */
	PHSM_OP_MSG_ONESHOT		= 0x0051, /* U64 sess, U64 kind, BYTES param, BYTES assoc, BYTES in,
						   * BYTES sig, U64 outcap -> BYTES out, U64 outlen, BYTES param_out */
	PHSM_OP_MSG_BEGIN		= 0x0052, /* U64 sess, U64 kind, BYTES param, BYTES assoc */
	PHSM_OP_MSG_NEXT		= 0x0053, /* U64 sess, U64 kind, BYTES param, BYTES in, U64 flags,
						   * BYTES sig, U64 outcap -> BYTES out, U64 outlen, BYTES param_out */
	PHSM_OP_MSG_FINAL		= 0x0054, /* U64 sess, U64 kind */

	/* Keys */
	PHSM_OP_GENERATE_KEY		= 0x0060, /* U64 sess, MECH, ATTRS -> U64 key */
	PHSM_OP_GENERATE_KEY_PAIR	= 0x0061, /* U64 sess, MECH, ATTRS pub, ATTRS priv -> U64 pub, U64 priv */
	PHSM_OP_WRAP_KEY		= 0x0062, /* U64 sess, MECH, U64 wrapping, U64 key, U64 outcap -> BYTES out, U64 outlen */
	PHSM_OP_UNWRAP_KEY		= 0x0063, /* U64 sess, MECH, U64 unwrapping, BYTES wrapped, ATTRS -> U64 key */
	PHSM_OP_DERIVE_KEY		= 0x0064, /* U64 sess, MECH, U64 base, ATTRS -> U64 key */

	/* Random numbers */
	PHSM_OP_SEED_RANDOM		= 0x0070, /* U64 sess, BYTES seed */
	PHSM_OP_GENERATE_RANDOM		= 0x0071, /* U64 sess, U64 len -> BYTES random */

	/*
	 * Transport housekeeping.  On a plain connection the connection is
	 * the application.  A bridge connection (phsm-fw --bridge, used by
	 * the QEMU device) multiplexes applications: header.app_ctx names
	 * one, APP_OPEN must come before its first command (else
	 * PHSM_ST_BAD_CONTEXT), and closing the connection closes them all.
	 * APP_OPEN on a plain connection is PHSM_ST_BAD_CONTEXT.
	 */
	PHSM_OP_APP_CLOSE		= 0x0080, /* -: drop everything of header.app_ctx */
	PHSM_OP_NOP			= 0x0081, /* -: does nothing (round-trip measurement) */
	PHSM_OP_APP_OPEN		= 0x0082, /* -: bridge only: open header.app_ctx */
	/* 0x0083: PHSM_OP_SHM_ATTACH, the daemon's transport (phsm_shm.h) */

	/*
	 * 0x0100 - 0x01ff: Luna CA_ extensions (cloning, domains, clusters).
	 * Labels of domains are 1..32 bytes, not padded; token labels are
	 * 32 bytes, blank-padded.  An empty "old"/"label" names a domain
	 * without a label.  Policies are pairs of CK_PHSM_POLICY_* number and
	 * value (phsm/cryptoki_ca.h); container is ~0 or the partition index.
	 * lock states: 0 free, 1 held by this application, 2 by another.
	 */
	PHSM_OP_CA_ADD_KCV		= 0x0100, /* U64 sess, BYTES kcv, BYTES label, U64 primary (0/1) */
	PHSM_OP_CA_CHANGE_KCV_LABEL	= 0x0101, /* U64 sess, BYTES old, BYTES new */
	PHSM_OP_CA_DELETE_KCV		= 0x0102, /* U64 sess, BYTES label */
	PHSM_OP_CA_GET_KCV_LABELS	= 0x0103, /* U64 part -> U64_ARRAY flags, U64_ARRAY lengths,
						   * BYTES labels (concatenated; at most 3) */
	PHSM_OP_CA_SET_POLICY		= 0x0110, /* U64 sess, U64 container, U64 type, U64 value */
	PHSM_OP_CA_GET_POLICIES		= 0x0111, /* U64 part -> U64_ARRAY types, U64_ARRAY values */
	PHSM_OP_CA_CLUSTER_INFO		= 0x0120, /* -> BYTES current labels (32 per partition),
						   * BYTES original labels (same), U64_ARRAY lock states */
	PHSM_OP_CA_CLAIM_UNASSIGNED	= 0x0121, /* BYTES cluster_id -> U64 part, BYTES label(32) */
	PHSM_OP_CA_LOCK_SLOT		= 0x0122, /* U64 part */
	PHSM_OP_CA_UNLOCK_SLOT		= 0x0123, /* U64 part */

	/*
	 * Key cloning (Documentation/phsm/cloning.rst).  Step messages, TWC,
	 * Part1, Part2 and blobs are opaque bytes made and checked by the
	 * card.  "sid" is a clone session ID (1..64 bytes), "sidcap" the
	 * caller's buffer for it.  EXTRACT and INSERT carry a mechanism
	 * (CKM_CPV4_EXTRACT / CKM_CPV4_INSERT) whose parameter holds the
	 * object arrays; per-object failures come back in "results" with
	 * rv CKR_OK.
	 */
	PHSM_OP_CLONE_IDENTITY		= 0x0130, /* -> BYTES device_cert, BYTES root_cert (DER;
						   * both empty: not provisioned) */
	PHSM_OP_MIGRATION_START		= 0x0131, /* U64 sess, BYTES input, U64 outcap
						   * -> U64 step, BYTES out, U64 outlen */
	PHSM_OP_MIGRATION_CONTINUE	= 0x0132, /* U64 sess, U64 in_step, BYTES in, BYTES sid_in,
						   * U64 outcap, U64 sidcap -> U64 out_step, BYTES out,
						   * U64 outlen, U64 status, BYTES sid, U64 sidlen
						   * (all six also on CKR_BUFFER_TOO_SMALL) */
	PHSM_OP_MIGRATION_CLOSE		= 0x0133, /* U64 sess, BYTES sid */
	PHSM_OP_EXTRACT			= 0x0134, /* U64 sess, MECH -> U64_ARRAY results,
						   * U64_ARRAY lens, BYTES blobs (concatenated) */
	PHSM_OP_INSERT			= 0x0135, /* U64 sess, MECH -> U64_ARRAY results,
						   * U64_ARRAY handles */
	PHSM_OP_CLONE_SOURCE_INIT	= 0x0136, /* U64 sess, BYTES in, U64 replicate, U64 outcap
						   * -> BYTES twc, U64 outlen */
	PHSM_OP_CLONE_TARGET_INIT	= 0x0137, /* U64 sess, BYTES twc, BYTES kev, U64 replicate,
						   * U64 outcap -> BYTES part1, U64 outlen */
	PHSM_OP_CLONE_AS_SOURCE		= 0x0138, /* U64 sess, U64 type, U64 obj, BYTES part1,
						   * U64 replicate, U64 outcap -> BYTES part2, U64 outlen */
	PHSM_OP_CLONE_AS_TARGET		= 0x0139, /* U64 sess, BYTES kev, BYTES part2, U64 type,
						   * U64 obj, U64 replicate -> U64 obj */
};

/*
 * Mechanism parameters of the cloning mechanisms, as field sequences:
 *   CKM_CPV4_EXTRACT: BYTES sid, BYTES input, U64 flags, U64_ARRAY types,
 *                     U64_ARRAY handles, U64_ARRAY caps (all PHSM_OUT_QUERY:
 *                     a size query; otherwise none may be)
 *   CKM_CPV4_INSERT:  BYTES sid, U64 flags, U64_ARRAY storage,
 *                     U64_ARRAY types, U64_ARRAY lens, BYTES blobs
 * The arrays of one parameter have the same count, 1 .. PHSM_CLONE_BATCH_MAX,
 * and the lengths add up to the blobs field.
 */
#define PHSM_CLONE_BATCH_MAX	1024
#define PHSM_CLONE_BATCH_BYTES	(15u << 20)

/* Field sizes of the fixed-layout info blocks (space-padded, not NUL-terminated). */
#define PHSM_LABEL_LEN		32
#define PHSM_MANUFACTURER_LEN	32
#define PHSM_MODEL_LEN		16
#define PHSM_SERIAL_LEN		16

/**
 * struct phsm_card_info - answer to %PHSM_OP_GET_CARD_INFO
 * @manufacturer:	blank-padded
 * @model:		blank-padded
 * @serial:		blank-padded, unique per card
 * @hw_major:		hardware version
 * @hw_minor:		hardware version
 * @fw_major:		firmware version
 * @fw_minor:		firmware version
 * @partitions:		number of partitions (tokens) on this card
 * @reserved:		zero
 * @time:		card clock, seconds since the Unix epoch, UTC
 */
struct phsm_card_info {
	__u8 manufacturer[PHSM_MANUFACTURER_LEN];
	__u8 model[PHSM_MODEL_LEN];
	__u8 serial[PHSM_SERIAL_LEN];
	__u8 hw_major;
	__u8 hw_minor;
	__u8 fw_major;
	__u8 fw_minor;
	__le32 partitions;
	__le64 reserved;
	__le64 time;
};

/**
 * struct phsm_token_info - answer to %PHSM_OP_GET_TOKEN_INFO; the
 * members are those of CK_TOKEN_INFO, with CK_ULONGs as __le64
 */
struct phsm_token_info {
	__u8 label[PHSM_LABEL_LEN];
	__u8 manufacturer[PHSM_MANUFACTURER_LEN];
	__u8 model[PHSM_MODEL_LEN];
	__u8 serial[PHSM_SERIAL_LEN];
	__le64 flags;
	__le64 max_session_count;
	__le64 session_count;
	__le64 max_rw_session_count;
	__le64 rw_session_count;
	__le64 max_pin_len;
	__le64 min_pin_len;
	__le64 total_public_memory;
	__le64 free_public_memory;
	__le64 total_private_memory;
	__le64 free_private_memory;
	__u8 hw_major;
	__u8 hw_minor;
	__u8 fw_major;
	__u8 fw_minor;
	__u8 utc_time[16];
	__u8 reserved[4];
};

#endif /* _UAPI_PHSM_PROTO_H */
