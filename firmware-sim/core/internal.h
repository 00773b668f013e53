/* SPDX-License-Identifier: MIT */
/*
 * Private to the firmware core: the card's tables and the helpers its
 * files share.  Nothing here crosses the card.h boundary.
 *
 * Locking (Documentation/phsm/firmware.rst has the long version):
 *
 *   session->lock   held for one command on that session;
 *   card->store_lock   serialises every change that must reach the store
 *                  (token objects, partition records, the handle counter);
 *   card->lock      the tables (applications, sessions, objects, partition
 *                  records in memory); held briefly, never across crypto,
 *                  PBKDF2 or a store commit.
 *
 * Order: session->lock, then store_lock, then card->lock.  A thread that
 * holds card->lock takes no other lock.
 */
#ifndef PHSM_FW_INTERNAL_H
#define PHSM_FW_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <phsm/pkcs11.h>

#include "attrs.h"
#include "card.h"
#include "mech.h"

#define FW_MAX_PARTITIONS	16
#define FW_PIN_MIN		4
#define FW_PIN_MAX		64
#define FW_PIN_TRIES		10	/* wrong PINs before the PIN locks */
#define FW_SALT_LEN		16
#define FW_HASH_LEN		32
#define FW_PIN_ITERATIONS	100000
#define FW_MAX_SESSIONS		4096	/* per card, all applications */
#define FW_MAX_OBJECTS		(1u << 20)	/* per card, token + session */
#define FW_RANDOM_MAX		(1u << 20)	/* C_GenerateRandom, C_SeedRandom */
#define FW_OUT_MAX		(PHSM_MSG_MAX - 4096)	/* room in a response */
#define FW_BUCKETS		1024
#define FW_HANDLE_STEP		65536	/* handles reserved per store write */
#define FW_NOBODY		(~(CK_USER_TYPE)0)	/* login state: public */
#define FW_OPK_MAX		8	/* phsm_op_kind values are 1..7 */

void fw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A PIN as the card keeps it: never the PIN itself. */
struct fw_pin {
	bool set;
	uint32_t iterations;
	uint32_t fails;		/* wrong tries since the last good one */
	uint8_t salt[FW_SALT_LEN];
	uint8_t hash[FW_HASH_LEN];
};

/* Luna extensions (luna.c): cloning domains, policies, cluster labels. */
#define FW_DOMAINS_MAX		3	/* cloning domains per partition */
#define FW_DOMAIN_LABEL_MAX	32
#define FW_KCV_MAX		256	/* bytes of a typed KCV */
#define FW_CLUSTER_ID_MAX	24	/* "phsm-<cluster>-<p>" fits in 32 */
#define FW_NPOLICIES		3

struct fw_domain {
	uint8_t label_len;		/* 0: a domain without a label */
	uint8_t label[FW_DOMAIN_LABEL_MAX];
	bool primary;
	uint8_t secret[FW_HASH_LEN];	/* derived from the KCV; never leaves */
};

/*
 * The Luna record of a partition, stored sealed beside its fw_part_rec.
 * The cluster ID and original label are fixed when the partition is
 * first created; C_InitToken resets the domains and policies.
 */
struct fw_part_ext {
	uint8_t cluster_len;
	uint8_t cluster[FW_CLUSTER_ID_MAX];
	uint8_t orig_label[PHSM_LABEL_LEN];
	unsigned int ndomains;
	struct fw_domain dom[FW_DOMAINS_MAX];
	uint64_t policy[FW_NPOLICIES];	/* values, in fw_policy_types order */
	uint8_t smk[FW_HASH_LEN];	/* PHSM_PARAM_SMK: made at random, cloneable */
};

/* The persistent record of one partition (one PKCS#11 token). */
struct fw_part_rec {
	bool initialized;
	uint8_t label[PHSM_LABEL_LEN];
	struct fw_pin so;
	struct fw_pin user;
};

/*
 * An object.  Its attributes never change once it is in the table:
 * C_SetAttributeValue publishes a new fw_obj under the same handle, so a
 * thread that holds a reference always sees one consistent version.
 */
struct fw_obj {
	uint64_t handle;
	unsigned int part;
	bool token;		/* CKA_TOKEN */
	bool priv;		/* CKA_PRIVATE */
	CK_OBJECT_CLASS cls;
	uint64_t session;	/* session objects: the creating session */
	uint64_t app;		/* session objects: its application */
	unsigned int refs;	/* card->lock */
	bool live;		/* in the table; card->lock */
	struct fw_attrs attrs;
	struct fw_key *key;	/* parsed key, built on first use; card->lock */
	struct fw_obj *next;	/* hash chain */
};

/* One active single- or multi-part operation of a session. */
struct fw_op_slot {
	struct fw_op *op;
	bool started;		/* an update happened: no one-shot call now */
	bool need_auth;		/* key has CKA_ALWAYS_AUTHENTICATE */
	bool authed;		/* CKU_CONTEXT_SPECIFIC login done */
};

/* One active message-based operation of a session. */
struct fw_msg_slot {
	struct fw_msg *msg;
	bool in_message;	/* between MSG_BEGIN and the last MSG_NEXT */
};

struct fw_session {
	uint64_t handle;
	uint64_t app;
	unsigned int part;
	CK_FLAGS flags;		/* CKF_SERIAL_SESSION | CKF_RW_SESSION */
	unsigned int refs;	/* card->lock */
	bool live;		/* card->lock */
	pthread_mutex_t lock;	/* everything below */
	struct fw_op_slot op[FW_OPK_MAX];
	struct fw_msg_slot msg[FW_OPK_MAX];
	struct fw_cpv3 *cpv3;	/* CPv3 exchanges of this session (cpv3.c) */
	bool find_active;
	uint64_t *found;
	size_t nfound;
	size_t found_pos;
	struct fw_session *next;	/* hash chain */
};

struct fw_app {
	uint64_t id;
	CK_USER_TYPE login[FW_MAX_PARTITIONS];	/* FW_NOBODY, CKU_SO, CKU_USER */
	struct fw_app *next;
};

struct fw_store;
struct fw_identity;
struct fw_clone;

/* Cloning settings of struct fw_card_config, defaults applied. */
struct fw_clone_cfg {
	uint64_t negotiation_timeout;	/* seconds */
	uint64_t session_lifetime;	/* seconds */
	int64_t clock_offset;		/* seconds */
	unsigned int suites;		/* bit (1 << value) per offered value */
	unsigned int kdfs;
	unsigned int encodings;
};

struct fw_card {
	pthread_mutex_t lock;
	pthread_mutex_t store_lock;
	struct fw_store *store;
	int lock_fd;			/* flock on the state directory */
	unsigned int nparts;
	uint32_t pin_iterations;
	uint8_t serial[PHSM_SERIAL_LEN];
	struct fw_part_rec part[FW_MAX_PARTITIONS];
	struct fw_part_ext ext[FW_MAX_PARTITIONS];	/* store_lock + lock */
	uint64_t slot_lock[FW_MAX_PARTITIONS];	/* cluster lock: owner app */
	bool part_busy[FW_MAX_PARTITIONS];	/* C_InitToken in progress */
	uint64_t next_handle;		/* sessions and objects share it */
	uint64_t handle_limit;		/* persisted: handles below are used */
	uint64_t next_app;
	struct fw_app *apps;
	size_t nsessions;
	size_t nobjects;
	struct fw_session *sessions[FW_BUCKETS];
	struct fw_obj *objects[FW_BUCKETS];
	struct fw_clone_cfg clone_cfg;
	struct fw_identity *identity;	/* identity.c; NULL: none */
	struct fw_clone *clone;		/* clone.c: CPv4 records */
};

/* A request being handled. */
struct fw_req {
	struct fw_card *card;
	uint64_t app;
	struct phsm_reader *r;
	struct phsm_writer *w;
	bool fields_on_error;	/* the answer carries fields despite rv */
};

/* store.c */
int fw_store_open(const char *dir, struct fw_store **out, char *err,
		  size_t err_len);
void fw_store_close(struct fw_store *st);
int fw_store_load_meta(struct fw_store *st, uint8_t serial[PHSM_SERIAL_LEN],
		       uint64_t *handle_limit);
int fw_store_load_partitions(struct fw_store *st, struct fw_part_rec *recs,
			     unsigned int n);
typedef int (*fw_store_obj_fn)(void *ctx, uint64_t handle, unsigned int part,
			       struct fw_attrs *attrs);
int fw_store_load_objects(struct fw_store *st, unsigned int nparts,
			  fw_store_obj_fn fn, void *ctx);
CK_RV fw_store_put_partition(struct fw_store *st, unsigned int idx,
			     const struct fw_part_rec *rec);
CK_RV fw_store_put_objects(struct fw_store *st, size_t n,
			   struct fw_obj *const *objs);
/* Token objects and partition @idx's Luna record, in one commit. */
CK_RV fw_store_put_objects_ext(struct fw_store *st, size_t n,
			       struct fw_obj *const *objs, unsigned int idx,
			       const struct fw_part_ext *ext);
CK_RV fw_store_delete_object(struct fw_store *st, uint64_t handle);
CK_RV fw_store_init_partition(struct fw_store *st, unsigned int idx,
			      const struct fw_part_rec *rec,
			      const struct fw_part_ext *ext);
/* 0 loaded, 1 absent, -1 error or corrupt. */
int fw_store_load_ext(struct fw_store *st, unsigned int idx,
		      struct fw_part_ext *ext);
CK_RV fw_store_put_ext(struct fw_store *st, unsigned int idx,
		       const struct fw_part_ext *ext);
CK_RV fw_store_set_handle_limit(struct fw_store *st, uint64_t limit);
/* The card's device identity (identity.c): the key is PKCS#8 DER. */
struct fw_id_rec {
	unsigned int curve;		/* 256 or 384 */
	uint8_t *key;
	size_t key_len;
	uint8_t *cert;			/* DER */
	size_t cert_len;
	uint8_t *root;			/* DER, the trust anchor */
	size_t root_len;
};
/* 0 loaded (free with fw_id_rec_free), 1 absent, -1 error or corrupt. */
int fw_store_load_identity(struct fw_store *st, struct fw_id_rec *rec);
CK_RV fw_store_put_identity(struct fw_store *st, const struct fw_id_rec *rec);
void fw_id_rec_free(struct fw_id_rec *rec);	/* wipes the key */

/* pin.c */
bool fw_pin_len_ok(size_t len);
CK_RV fw_pin_derive(const uint8_t *pin, size_t len, const uint8_t *salt,
		    uint32_t iterations, uint8_t out[FW_HASH_LEN]);
CK_RV fw_pin_make(struct fw_pin *p, const uint8_t *pin, size_t len,
		  uint32_t iterations);
bool fw_pin_equal(const struct fw_pin *p, const uint8_t hash[FW_HASH_LEN]);
bool fw_pin_locked(const struct fw_pin *p);
CK_FLAGS fw_pin_flags(const struct fw_pin *p, bool so);

/* card.c: tables */
CK_RV fw_alloc_handle(struct fw_card *card, uint64_t *out);
struct fw_app *fw_app_find(struct fw_card *card, uint64_t id);
CK_STATE fw_session_state(struct fw_card *card, const struct fw_session *s);
CK_USER_TYPE fw_login_of(struct fw_card *card, uint64_t app, unsigned int part);
CK_RV fw_session_get(struct fw_card *card, uint64_t app, uint64_t handle,
		     struct fw_session **out);
void fw_session_put(struct fw_card *card, struct fw_session *s);
bool fw_session_live_locked(struct fw_card *card, uint64_t handle);
void fw_session_reset_ops(struct fw_session *s);
void fw_close_sessions(struct fw_card *card, uint64_t app, unsigned int part,
		       bool all_parts);
CK_RV fw_open_session(struct fw_card *card, uint64_t app, unsigned int part,
		      CK_FLAGS flags, uint64_t *out);
CK_RV fw_close_session(struct fw_card *card, struct fw_session *s);
void fw_count_sessions(struct fw_card *card, unsigned int part, size_t *all,
		       size_t *rw);
bool fw_app_has_ro_session(struct fw_card *card, uint64_t app,
			   unsigned int part);

/* token.c: token, PINs, login */
void fw_card_fill_info(struct fw_card *card, struct phsm_card_info *ci);
CK_RV fw_token_info(struct fw_card *card, unsigned int part,
		    struct phsm_token_info *ti);
CK_RV fw_init_token(struct fw_card *card, unsigned int part,
		    const uint8_t *pin, size_t pin_len, const uint8_t *label);
CK_RV fw_init_pin(struct fw_card *card, struct fw_session *s,
		  const uint8_t *pin, size_t len);
CK_RV fw_set_pin(struct fw_card *card, struct fw_session *s,
		 const uint8_t *old, size_t old_len,
		 const uint8_t *new_pin, size_t new_len);
CK_RV fw_login(struct fw_card *card, struct fw_session *s, CK_USER_TYPE type,
	       const uint8_t *pin, size_t len);
CK_RV fw_logout(struct fw_card *card, struct fw_session *s);

/* object.c */
void fw_obj_put(struct fw_card *card, struct fw_obj *o);
CK_RV fw_obj_get(struct fw_card *card, const struct fw_session *s,
		 uint64_t handle, struct fw_obj **out);
CK_RV fw_obj_key(struct fw_card *card, struct fw_obj *o, struct fw_key **out);
bool fw_obj_visible(struct fw_card *card, const struct fw_session *s,
		    const struct fw_obj *o);
int fw_obj_insert_loaded(void *ctx, uint64_t handle, unsigned int part,
			 struct fw_attrs *attrs);
void fw_objects_drop(struct fw_card *card, bool (*match)(const struct fw_obj *,
							 const void *),
		     const void *arg);
bool fw_obj_is_session_of(const struct fw_obj *o, const void *session);
bool fw_obj_matches(const struct fw_obj *o, const struct fw_attrs *tmpl);

enum fw_create_how {
	FW_CREATE,	/* C_CreateObject */
	FW_GENERATE,	/* C_GenerateKey(Pair) */
	FW_UNWRAP,	/* C_UnwrapKey */
	FW_DERIVE,	/* C_DeriveKey */
};
CK_RV fw_check_template(struct fw_card *card, const struct fw_session *s,
			const struct fw_attrs *tmpl, CK_OBJECT_CLASS cls,
			CK_KEY_TYPE ktype, enum fw_create_how how);
CK_RV fw_obj_build(struct fw_card *card, const struct fw_session *s,
		   CK_OBJECT_CLASS cls, struct fw_attrs *attrs,
		   struct fw_obj **out);
CK_RV fw_obj_publish(struct fw_card *card, struct fw_obj **objs, size_t n);
/*
 * fw_obj_publish(), and in the same store commit the Luna record of
 * @part as @edit changes it (@edit NULL: nothing), e.g. the parameters
 * a clone batch brings along: all of it, or nothing.
 */
typedef void (*fw_ext_edit_fn)(struct fw_part_ext *e, void *ctx);
CK_RV fw_obj_publish_ext(struct fw_card *card, struct fw_obj **objs, size_t n,
			 unsigned int part, fw_ext_edit_fn edit, void *ctx);
CK_RV fw_create_object(struct fw_card *card, struct fw_session *s,
		       struct fw_attrs *tmpl, uint64_t *handle);
CK_RV fw_copy_object(struct fw_card *card, struct fw_session *s,
		     uint64_t handle, const struct fw_attrs *tmpl,
		     uint64_t *out);
CK_RV fw_destroy_object(struct fw_card *card, struct fw_session *s,
			uint64_t handle);
CK_RV fw_set_attributes(struct fw_card *card, struct fw_session *s,
			uint64_t handle, const struct fw_attrs *tmpl);
CK_RV fw_get_attributes(struct fw_card *card, struct fw_session *s,
			uint64_t handle, struct phsm_reader *query,
			uint32_t count, struct phsm_writer *w);
CK_RV fw_object_size(struct fw_card *card, struct fw_session *s,
		     uint64_t handle, uint64_t *size);
CK_RV fw_find_init(struct fw_card *card, struct fw_session *s,
		   const struct fw_attrs *tmpl);
void fw_find_clear(struct fw_session *s);
CK_RV fw_key_defaults(struct fw_attrs *a, CK_OBJECT_CLASS cls);
bool fw_attr_is_sensitive(CK_ATTRIBUTE_TYPE type);
bool fw_tmpl_conflicts(const struct fw_attrs *a, const struct fw_attrs *b);
bool fw_mech_allowed(const struct fw_obj *key, CK_MECHANISM_TYPE mech);

/* dispatch.c */
CK_RV fw_get_template(struct phsm_reader *r, struct fw_attrs *out);

/* ops.c: the request handlers that use the engine */
typedef CK_RV (*fw_produce_fn)(void *ctx, uint8_t *out, size_t *out_len);
CK_RV fw_produce(struct fw_req *rq, uint64_t outcap, fw_produce_fn fn,
		 void *ctx, bool *query);
CK_RV fw_key_object(struct fw_card *card, const struct fw_session *s,
		    uint64_t handle, CK_RV invalid, struct fw_obj **out);
CK_RV fw_key_usage_ok(const struct fw_obj *o, CK_ATTRIBUTE_TYPE usage,
		      CK_MECHANISM_TYPE mech);
CK_RV fw_session_mech_get(struct fw_req *rq, uint64_t sess, uint64_t mech,
			  struct phsm_reader *param, struct fw_session **s,
			  struct fw_mech *m);
void fw_session_mech_put(struct fw_req *rq, struct fw_session *s,
			 struct fw_mech *m);
CK_RV fw_h_op_init(struct fw_req *rq);
CK_RV fw_h_op_oneshot(struct fw_req *rq);
CK_RV fw_h_op_update(struct fw_req *rq);
CK_RV fw_h_op_final(struct fw_req *rq);
CK_RV fw_h_digest_key(struct fw_req *rq);
CK_RV fw_h_msg_init(struct fw_req *rq);
CK_RV fw_h_msg_oneshot(struct fw_req *rq);
CK_RV fw_h_msg_begin(struct fw_req *rq);
CK_RV fw_h_msg_next(struct fw_req *rq);
CK_RV fw_h_msg_final(struct fw_req *rq);

/* luna.c: the CA_ extensions */
extern const uint64_t fw_policy_types[FW_NPOLICIES];
int fw_ext_load(struct fw_card *card, const char *cluster_id, char *err,
		size_t err_len);
void fw_ext_reset(struct fw_part_ext *ext);
void fw_ext_release_locks(struct fw_card *card, uint64_t app);
CK_RV fw_h_ca_add_kcv(struct fw_req *rq);
CK_RV fw_h_ca_change_kcv_label(struct fw_req *rq);
CK_RV fw_h_ca_delete_kcv(struct fw_req *rq);
CK_RV fw_h_ca_get_kcv_labels(struct fw_req *rq);
CK_RV fw_h_ca_set_policy(struct fw_req *rq);
CK_RV fw_h_ca_get_policies(struct fw_req *rq);
CK_RV fw_h_ca_cluster_info(struct fw_req *rq);
CK_RV fw_h_ca_claim_unassigned(struct fw_req *rq);
CK_RV fw_h_ca_lock_slot(struct fw_req *rq);
CK_RV fw_h_ca_unlock_slot(struct fw_req *rq);

/* keys.c: key generation, wrapping, derivation, random numbers */
CK_RV fw_h_generate_key(struct fw_req *rq);
CK_RV fw_h_generate_key_pair(struct fw_req *rq);
CK_RV fw_h_wrap_key(struct fw_req *rq);
CK_RV fw_h_unwrap_key(struct fw_req *rq);
CK_RV fw_h_derive_key(struct fw_req *rq);
CK_RV fw_h_seed_random(struct fw_req *rq);
CK_RV fw_h_generate_random(struct fw_req *rq);

static inline size_t fw_bucket(uint64_t handle)
{
	return (size_t)(handle * 0x9E3779B97F4A7C15ull >> 54) % FW_BUCKETS;
}

/* Little-endian helpers for the fixed-layout info blocks. */
static inline void fw_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void fw_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t fw_get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif /* PHSM_FW_INTERNAL_H */
