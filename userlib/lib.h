/* SPDX-License-Identifier: MIT */
/*
 * Internals of libphsm-pkcs11.so, shared by its source files.
 *
 * The library holds no key material and does no cryptography: every
 * C_ function checks its arguments, encodes one request of the phsm
 * protocol (uapi/phsm_proto.h), sends it to the card over a transport and
 * checks the answer before anything of it reaches the caller.
 */
#ifndef PHSM_LIB_H
#define PHSM_LIB_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <phsm/pkcs11.h>

#include "../uapi/phsm_proto.h"
#include "../uapi/codec/phsm_codec.h"

/* The one way a symbol leaves the library (the build hides the rest). */
#define PHSM_EXPORT __attribute__((visibility("default")))

/*
 * CK_ULONG attribute values travel as 8-byte little-endian numbers.  On
 * the hosts we build for the in-memory bytes already are exactly that, so
 * attribute values are copied as they are rather than converted.
 */
_Static_assert(sizeof(CK_ULONG) == 8, "CK_ULONG must be 64 bits");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "attribute values are passed through: host must be little-endian");

/* Slot IDs: card index * 16 + partition (stable across C_Initialize). */
#define LIB_PARTS_PER_CARD	16u
#define LIB_MAX_CARDS		256u

/*
 * Session handles as the application sees them: the card index in bits
 * 48-63, the connection's generation (how often the card was reconnected,
 * modulo 256) in bits 40-47, the card's own handle in bits 0-39.  No
 * table is needed to find a session's card, handles of a lost connection
 * stay invalid after a reconnect, and until then card 0's handles are the
 * card's own.
 */
#define LIB_HANDLE_CARD_SHIFT	48
#define LIB_HANDLE_GEN_SHIFT	40
#define LIB_HANDLE_GEN_MASK	0xffu
#define LIB_HANDLE_LOCAL_MASK	((1ull << LIB_HANDLE_GEN_SHIFT) - 1)

/* Largest data one request may carry (the rest of the message is fields). */
#define LIB_DATA_MAX		(PHSM_MSG_MAX - 65536u)

/* ---- locking (init.c) ------------------------------------------------ */

/*
 * A mutex of whichever kind C_Initialize settled on: a pthread mutex, or
 * one made by the application's CreateMutex callback.
 */
struct lib_mutex;

CK_RV lib_mutex_new(struct lib_mutex **out);
void lib_mutex_free(struct lib_mutex *m);
void lib_lock(struct lib_mutex *m);
void lib_unlock(struct lib_mutex *m);
/* False when the application supplied mutex callbacks without allowing
 * OS locking: the library must then not use pthread primitives. */
bool lib_os_locking(void);

/* ---- cards (card.c) -------------------------------------------------- */

struct phsm_transport;

/* What GET_CARD_INFO said, in host order; the strings are blank-padded. */
struct lib_card_info {
	uint8_t manufacturer[PHSM_MANUFACTURER_LEN];
	uint8_t model[PHSM_MODEL_LEN];
	uint8_t serial[PHSM_SERIAL_LEN];
	uint8_t hw_major, hw_minor, fw_major, fw_minor;
	unsigned int partitions;
};

/* One message-based operation's mechanism, kept to encode its parameters. */
struct lib_msg_mech {
	struct lib_msg_mech *next;
	CK_SESSION_HANDLE session;
	unsigned int kind;
	CK_MECHANISM_TYPE mechanism;
};

/*
 * The sessions this library opened on a card's connection, for the
 * digests it computes itself (digest.c): a small open-addressing table,
 * guarded by the card's lock and part of struct lib_card, so that it
 * needs no allocation and goes with the card.  A session missing from it
 * (table full, opened on an older connection) takes the card's path.
 */
#define LIB_SESS_BITS		7
#define LIB_SESS_SLOTS		(1u << LIB_SESS_BITS)

struct lib_sess {
	uint64_t local;			/* the card's handle; 0: free slot */
	CK_MECHANISM_TYPE mech;		/* of a pending digest */
	uint32_t epoch;			/* bumped by every digest state change */
	uint8_t part;
	uint8_t digest;			/* enum lib_digest_state (digest.c) */
};

struct lib_sessions {
	unsigned int generation;	/* of the connection the entries are of */
	unsigned int count;
	uint32_t closing;		/* C_CloseAllSessions calls, both ends */
	struct lib_sess slot[LIB_SESS_SLOTS];
};

struct lib_card;

/* PHSM_DIGEST, read at C_Initialize (config.c): false for "card". */
bool lib_config_digest_local(void);

/* C_OpenSession takes a ticket before it asks the card, and the session
 * enters the table only if no C_CloseAllSessions ran in between. */
uint32_t lib_sess_ticket(struct lib_card *card);
void lib_sess_add(struct lib_card *card, unsigned int generation,
		  uint64_t local, unsigned int part, uint32_t ticket);
void lib_sess_forget(struct lib_card *card, uint64_t local);
/* Before and after C_CloseAllSessions is sent. */
void lib_sess_close_all(struct lib_card *card, unsigned int part);

/*
 * Digests: C_DigestInit and C_Digest are answered here when the session
 * is known and the mechanism is one OpenSSL computes (the _local calls
 * return true then, with the answer in *rv).  Every other call that
 * touches the digest takes a mark first: lib_digest_begin() hands back a
 * pending digest's mechanism for the caller to send to the card first
 * (LIB_DG_USE), also when the caller sends a C_DigestInit of its own
 * (LIB_DG_INIT); LIB_DG_CANCEL only marks.  lib_digest_ended() records
 * that the operation ended, unless the state changed since the mark.
 */
enum lib_dg_use { LIB_DG_USE, LIB_DG_INIT, LIB_DG_CANCEL };

struct lib_dg_mark {
	struct lib_card *card;
	unsigned int generation;
	uint64_t local;
	uint32_t epoch;
	bool valid;
};

bool lib_digest_init_local(CK_SESSION_HANDLE h, const CK_MECHANISM *m,
			   CK_RV *rv);
bool lib_digest_oneshot_local(CK_SESSION_HANDLE h, const CK_BYTE *in,
			      CK_ULONG in_len, CK_BYTE_PTR out,
			      CK_ULONG_PTR out_len, CK_RV *rv);
bool lib_digest_begin(CK_SESSION_HANDLE h, enum lib_dg_use use,
		      struct lib_dg_mark *mark, CK_MECHANISM_TYPE *pending);
void lib_digest_ended(const struct lib_dg_mark *mark);

struct lib_card {
	unsigned int index;
	char *path;			/* socket or device path */
	struct lib_mutex *lock;		/* guards everything below */
	struct phsm_transport *conn;	/* NULL until connected */
	unsigned int generation;	/* of conn: connections made before it */
	bool known;			/* info is valid (it was reached once) */
	struct lib_card_info info;
	struct lib_msg_mech *msg_mechs;
	struct lib_sessions sessions;	/* digest.c */
};

struct lib_state {
	size_t ncards;
	struct lib_card *cards;
};

/* The initialised library, or NULL (CKR_CRYPTOKI_NOT_INITIALIZED). */
struct lib_state *lib_state(void);

static inline CK_RV need_init(void)
{
	return lib_state() ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* Card list from the configuration (config.c); paths are malloc'ed. */
CK_RV lib_config_cards(char ***paths, size_t *n);
void lib_config_free(char **paths, size_t n);

CK_RV lib_card_setup(struct lib_card *card, unsigned int index,
		     const char *path);
void lib_card_teardown(struct lib_card *card);
/* Connect a card that has no live connection; false if it stays away. */
bool lib_card_connect(struct lib_card *card);
/* The card's connection with a reference held, or NULL if there is none;
 * *gen is its generation. */
struct phsm_transport *lib_card_conn(struct lib_card *card, unsigned int *gen);
/* After fork(), in the child: forget the connections without a word. */
void lib_card_abandon(struct lib_card *card);
bool lib_card_present(struct lib_card *card);
/* The card and partition of a slot ID; CKR_SLOT_ID_INVALID if unknown. */
CK_RV lib_slot_lookup(struct lib_state *s, CK_SLOT_ID slot,
		      struct lib_card **card, unsigned int *part);

void lib_msg_mech_set(struct lib_card *card, CK_SESSION_HANDLE h,
		      unsigned int kind, CK_MECHANISM_TYPE mech);
bool lib_msg_mech_get(struct lib_card *card, CK_SESSION_HANDLE h,
		      unsigned int kind, CK_MECHANISM_TYPE *mech);
void lib_msg_mech_forget(struct lib_card *card, CK_SESSION_HANDLE h);

/* ---- requests (call.c) ----------------------------------------------- */

/*
 * One request and its answer.  Begin with call_slot/call_card/
 * call_session (which check initialisation and the handle and write the
 * request's first field), add fields with the codec's put functions,
 * call_run() to send it and get the card's CK_RV, read the answer's
 * fields from ->r, and always finish with call_end().
 */
/*
 * A buffer in memory shared with the card, lent to one call from its
 * start to its end (transport.h; transport_shm.c: a channel's data area),
 * so that the request is built where the card reads it and an output is
 * copied from where the card wrote it straight to the caller.
 */
struct phsm_lease {
	uint8_t *buf;
	size_t cap;
	size_t used;		/* bytes of request or answer, to wipe */
	unsigned int index;	/* the transport's */
};

struct lib_call {
	struct lib_card *card;
	struct phsm_transport *conn;
	struct phsm_writer w;
	uint16_t opcode;
	bool answered;
	uint8_t *resp;			/* our copy of the answer, or a part */
	size_t resp_len;
	struct phsm_reader r;		/* the answer's payload */
	CK_SESSION_HANDLE session;	/* the application's handle */
	unsigned int generation;	/* of conn */
	bool leased;			/* w is built in lease */
	struct phsm_lease lease;
	/* call_run_output(): the output's bytes, left in the lease */
	const uint8_t *out;
	size_t out_len;
	bool out_direct;
};

/* Takes over a reference to @conn (which may be NULL: card not reached). */
CK_RV call_begin(struct lib_call *c, struct lib_card *card,
		 struct phsm_transport *conn, uint16_t opcode);
CK_RV call_card(struct lib_call *c, struct lib_card *card, uint16_t opcode);
CK_RV call_slot(struct lib_call *c, CK_SLOT_ID slot, uint16_t opcode,
		unsigned int *part);
CK_RV call_session(struct lib_call *c, CK_SESSION_HANDLE h, uint16_t opcode);
CK_RV call_run(struct lib_call *c);
/* True if the whole answer was read and well-formed. */
bool call_done(struct lib_call *c);
/* Frees the call; a malformed or partly read answer is CKR_DEVICE_ERROR. */
CK_RV call_end(struct lib_call *c, CK_RV rv);

/* Send a request that has only the first field, answer without fields. */
CK_RV call_session_simple(CK_SESSION_HANDLE h, uint16_t opcode);
/* The same with one U64 field after the session (an object, kind, flags). */
CK_RV call_session_u64(CK_SESSION_HANDLE h, uint16_t opcode, uint64_t arg);

/* Output convention of PKCS#11 5.2 ("BYTES out, U64 outlen" answers). */
uint64_t out_capacity(const void *buf, const CK_ULONG *len);
CK_RV read_output(struct lib_call *c, CK_RV rv, CK_BYTE_PTR buf,
		  CK_ULONG_PTR len);
/*
 * call_run() and read_output() in one, for an answer that is only that:
 * on the shared-memory transport the output is copied once, from the
 * card's memory straight into @buf, instead of twice.
 */
CK_RV call_run_output(struct lib_call *c, CK_BYTE_PTR buf, CK_ULONG_PTR len);
/* "U64 handle" answers of the commands that make an object or key. */
CK_RV read_handle(struct lib_call *c, CK_RV rv, CK_OBJECT_HANDLE *out);

/* The application's session handle for a card's handle, 0 if it has none. */
CK_SESSION_HANDLE lib_session_handle(const struct lib_card *card,
				     unsigned int generation, uint64_t local);

/* ---- marshalling (marshal.c) ----------------------------------------- */

/* Template with values (create, generate, find, set, copy, unwrap). */
CK_RV put_template(struct phsm_writer *w, const CK_ATTRIBUTE *t, CK_ULONG n);
/* Mechanism with its parameter in the encoding phsm_proto.h lists.  With
 * @message, a parameter-less AES_GCM is allowed (message-based init). */
CK_RV put_mechanism(struct phsm_writer *w, const CK_MECHANISM *m,
		    bool message);
/* Data buffer argument check: NULL only with length 0, not too big. */
CK_RV check_data(const void *p, CK_ULONG len);
/* A byte string the caller gives (PIN, seed...): NULL only when empty. */
CK_RV put_buffer(struct phsm_writer *w, const void *p, CK_ULONG len);

/* ---- crypto helpers shared by crypto.c and dual.c ------------------- */

CK_RV op_update(CK_SESSION_HANDLE h, unsigned int kind, CK_BYTE_PTR in,
		CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
/* Best effort: end the session's operation of @kind after a bad call. */
void op_abort(CK_SESSION_HANDLE h, unsigned int kind);

#endif /* PHSM_LIB_H */
