// SPDX-License-Identifier: MIT
/*
 * Unit tests for the firmware core through card.h: real request messages
 * go into fw_card_handle(), the answers are decoded and checked.  Covers
 * decoding errors, tokens and PINs, the object model, the store (restart,
 * handles never reused, a corrupt blob skipped) and object lifetimes.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "firmware-sim/core/card.h"
#include "uapi/codec/phsm_codec.h"
#include <phsm/pkcs11.h>

#define SO_PIN		"so-pin-1"
#define USER_PIN	"user-pin-1"

struct fx {
	char dir[256];
	struct fw_card *card;
	uint64_t app;
};

/* An answer: header fields and the payload, owned. */
struct answer {
	uint8_t *buf;
	struct phsm_msg m;
};

static void answer_free(struct answer *a)
{
	free(a->buf);
	a->buf = NULL;
}

static void open_card(struct fx *f)
{
	struct fw_card_config cfg = {
		.state_dir = f->dir,
		.partitions = 2,
		.pin_iterations = 1,
	};
	char err[256] = "";

	assert_int_equal(fw_card_open(&cfg, &f->card, err, sizeof(err)), 0);
	f->app = fw_card_app_open(f->card);
	assert_true(f->app != 0);
}

static void close_card(struct fx *f)
{
	fw_card_app_close(f->card, f->app);
	fw_card_close(f->card);
	f->card = NULL;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/phsm-test-card.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	open_card(f);
	*state = f;
	return 0;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->card)
		close_card(f);
	remove_dir(f->dir);
	free(f);
	return 0;
}

/* Send the request in w (begun with begin()) and parse the answer. */
static void send_req(struct fx *f, struct phsm_writer *w, struct answer *a)
{
	size_t len = 0;

	assert_true(phsm_msg_finish(w, 0, 0));
	assert_int_equal(fw_card_handle(f->card, f->app, w->data, w->len,
					&a->buf, &len), 0);
	phsm_writer_free(w);
	assert_int_equal(phsm_msg_parse(a->buf, len, true, &a->m), PHSM_ST_OK);
}

static void begin(struct phsm_writer *w, uint16_t op)
{
	memset(w, 0, sizeof(*w));
	assert_true(phsm_msg_begin(w, op, 0, 0, 7));
}

/* Answer's rv, requiring a well-formed request. */
static CK_RV rv_of(struct answer *a)
{
	assert_int_equal(a->m.status, PHSM_ST_OK);
	assert_int_equal(a->m.tag, 7);
	return a->m.rv;
}

/* A request with only U64 fields; returns rv, first U64 answer in *out. */
static CK_RV call_u64(struct fx *f, uint16_t op, int n, const uint64_t *v,
		      uint64_t *out)
{
	struct phsm_writer w;
	struct answer a;
	CK_RV rv;

	begin(&w, op);
	for (int i = 0; i < n; i++)
		phsm_put_u64(&w, v[i]);
	send_req(f, &w, &a);
	rv = rv_of(&a);
	if (rv == CKR_OK && out)
		*out = phsm_get_u64(&a.m.payload);
	answer_free(&a);
	return rv;
}

static CK_RV init_token(struct fx *f, uint64_t part, const char *pin)
{
	uint8_t label[32];
	struct phsm_writer w;
	struct answer a;
	CK_RV rv;

	memset(label, ' ', sizeof(label));
	memcpy(label, "unit", 4);
	begin(&w, PHSM_OP_INIT_TOKEN);
	phsm_put_u64(&w, part);
	phsm_put_bytes(&w, pin, strlen(pin));
	phsm_put_bytes(&w, label, sizeof(label));
	send_req(f, &w, &a);
	rv = rv_of(&a);
	answer_free(&a);
	return rv;
}

static uint64_t open_session(struct fx *f, uint64_t part, bool rw)
{
	uint64_t v[2] = { part, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0) };
	uint64_t s = 0;

	assert_int_equal(call_u64(f, PHSM_OP_OPEN_SESSION, 2, v, &s), CKR_OK);
	return s;
}

static CK_RV login(struct fx *f, uint64_t s, CK_USER_TYPE who,
		   const char *pin)
{
	struct phsm_writer w;
	struct answer a;
	CK_RV rv;

	begin(&w, PHSM_OP_LOGIN);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, who);
	phsm_put_bytes(&w, pin, strlen(pin));
	phsm_put_bytes(&w, NULL, 0);
	send_req(f, &w, &a);
	rv = rv_of(&a);
	answer_free(&a);
	return rv;
}

static CK_RV pin_call(struct fx *f, uint16_t op, uint64_t s, const char *a1,
		      const char *a2)
{
	struct phsm_writer w;
	struct answer a;
	CK_RV rv;

	begin(&w, op);
	phsm_put_u64(&w, s);
	phsm_put_bytes(&w, a1, strlen(a1));
	if (a2)
		phsm_put_bytes(&w, a2, strlen(a2));
	send_req(f, &w, &a);
	rv = rv_of(&a);
	answer_free(&a);
	return rv;
}

/* Initialised token 0 with a user PIN; returns an R/W user session. */
static uint64_t user_session(struct fx *f)
{
	uint64_t s;

	assert_int_equal(init_token(f, 0, SO_PIN), CKR_OK);
	s = open_session(f, 0, true);
	assert_int_equal(login(f, s, CKU_SO, SO_PIN), CKR_OK);
	assert_int_equal(pin_call(f, PHSM_OP_INIT_PIN, s, USER_PIN, NULL), CKR_OK);
	assert_int_equal(call_u64(f, PHSM_OP_LOGOUT, 1, &s, NULL), CKR_OK);
	assert_int_equal(login(f, s, CKU_USER, USER_PIN), CKR_OK);
	return s;
}

/* Template helpers. */
struct tmpl {
	struct phsm_writer *w;
	size_t mark;
};

static void t_begin(struct tmpl *t, struct phsm_writer *w)
{
	t->w = w;
	t->mark = phsm_put_attrs_begin(w);
}

static void t_ulong(struct tmpl *t, CK_ATTRIBUTE_TYPE type, uint64_t v)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	phsm_put_attr(t->w, type, PHSM_ATTR_F_VALUE, 8, le);
}

static void t_bool(struct tmpl *t, CK_ATTRIBUTE_TYPE type, bool v)
{
	uint8_t b = v;

	phsm_put_attr(t->w, type, PHSM_ATTR_F_VALUE, 1, &b);
}

static void t_bytes(struct tmpl *t, CK_ATTRIBUTE_TYPE type, const void *v,
		    size_t n)
{
	phsm_put_attr(t->w, type, PHSM_ATTR_F_VALUE, (uint32_t)n, v);
}

static void t_end(struct tmpl *t)
{
	phsm_put_attrs_end(t->w, t->mark);
}

static const uint8_t aes_value[16] = "0123456789abcdef";

/* Create a secret AES key; extra template attributes through @more. */
static CK_RV create_aes(struct fx *f, uint64_t s, bool token, bool sensitive,
			uint64_t *h)
{
	struct phsm_writer w;
	struct answer a;
	struct tmpl t;
	CK_RV rv;

	begin(&w, PHSM_OP_CREATE_OBJECT);
	phsm_put_u64(&w, s);
	t_begin(&t, &w);
	t_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	t_ulong(&t, CKA_KEY_TYPE, CKK_AES);
	t_bytes(&t, CKA_VALUE, aes_value, sizeof(aes_value));
	t_bool(&t, CKA_TOKEN, token);
	t_bool(&t, CKA_SENSITIVE, sensitive);
	t_end(&t);
	send_req(f, &w, &a);
	rv = rv_of(&a);
	if (rv == CKR_OK)
		*h = phsm_get_u64(&a.m.payload);
	answer_free(&a);
	return rv;
}

/* ---- tests ------------------------------------------------------------ */

static void test_malformed(void **state)
{
	struct fx *f = *state;
	struct phsm_writer w;
	struct answer a;
	uint8_t junk[40] = { 1, 2, 3 };
	uint8_t *resp;
	size_t len;

	/* Unknown opcode */
	begin(&w, 0x7777);
	send_req(f, &w, &a);
	assert_int_equal(a.m.status, PHSM_ST_BAD_OPCODE);
	answer_free(&a);
	/* Trailing field on NOP */
	begin(&w, PHSM_OP_NOP);
	phsm_put_u64(&w, 1);
	send_req(f, &w, &a);
	assert_int_equal(a.m.status, PHSM_ST_TRAILING);
	answer_free(&a);
	/* Wrong field type */
	begin(&w, PHSM_OP_GET_TOKEN_INFO);
	phsm_put_bytes(&w, "x", 1);
	send_req(f, &w, &a);
	assert_int_equal(a.m.status, PHSM_ST_BAD_FIELD);
	answer_free(&a);
	/* Label of the wrong length: no side effect */
	begin(&w, PHSM_OP_INIT_TOKEN);
	phsm_put_u64(&w, 0);
	phsm_put_bytes(&w, SO_PIN, strlen(SO_PIN));
	phsm_put_bytes(&w, "short", 5);
	send_req(f, &w, &a);
	assert_int_equal(a.m.status, PHSM_ST_BAD_VALUE);
	assert_int_equal(a.m.payload.left, 0);
	answer_free(&a);
	assert_int_equal(init_token(f, 0, "12"), CKR_PIN_LEN_RANGE);
	/* Garbage header: still an answer */
	assert_int_equal(fw_card_handle(f->card, f->app, junk, sizeof(junk),
					&resp, &len), 0);
	assert_true(len >= sizeof(struct phsm_msg_hdr));
	free(resp);
	/* Unknown application context */
	begin(&w, PHSM_OP_NOP);
	assert_true(phsm_msg_finish(&w, 0, 0));
	assert_int_equal(fw_card_handle(f->card, 999999, w.data, w.len,
					&resp, &len), 0);
	phsm_writer_free(&w);
	assert_int_equal(phsm_msg_parse(resp, len, true, &a.m), PHSM_ST_OK);
	assert_int_equal(a.m.status, PHSM_ST_BAD_CONTEXT);
	free(resp);
}

static void test_token_and_pins(void **state)
{
	struct fx *f = *state;
	uint64_t v[2] = { 0, CKF_SERIAL_SESSION | CKF_RW_SESSION };
	uint64_t s, ro;

	/* Uninitialised token: no sessions */
	assert_int_equal(call_u64(f, PHSM_OP_OPEN_SESSION, 2, v, NULL),
			 CKR_TOKEN_NOT_RECOGNIZED);
	v[1] = CKF_RW_SESSION;
	assert_int_equal(call_u64(f, PHSM_OP_OPEN_SESSION, 2, v, NULL),
			 CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	s = user_session(f);
	assert_int_equal(login(f, s, CKU_USER, USER_PIN),
			 CKR_USER_ALREADY_LOGGED_IN);
	assert_int_equal(login(f, s, CKU_SO, SO_PIN),
			 CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
	assert_int_equal(init_token(f, 0, SO_PIN), CKR_SESSION_EXISTS);
	assert_int_equal(call_u64(f, PHSM_OP_LOGOUT, 1, &s, NULL), CKR_OK);
	ro = open_session(f, 0, false);
	assert_int_equal(login(f, s, CKU_SO, SO_PIN),
			 CKR_SESSION_READ_ONLY_EXISTS);
	assert_int_equal(pin_call(f, PHSM_OP_SET_PIN, ro, USER_PIN, "new-pin-2"),
			 CKR_SESSION_READ_ONLY);
	assert_int_equal(pin_call(f, PHSM_OP_SET_PIN, s, USER_PIN, "new-pin-2"),
			 CKR_OK);
	for (int i = 0; i < 9; i++)
		assert_int_equal(login(f, s, CKU_USER, "wrong-pin"),
				 CKR_PIN_INCORRECT);
	assert_int_equal(login(f, s, CKU_USER, "wrong-pin"), CKR_PIN_LOCKED);
	assert_int_equal(login(f, s, CKU_USER, "new-pin-2"), CKR_PIN_LOCKED);
	/* The lock survives a restart. */
	close_card(f);
	open_card(f);
	s = open_session(f, 0, true);
	assert_int_equal(login(f, s, CKU_USER, "new-pin-2"), CKR_PIN_LOCKED);
	/* The SO unlocks by setting a new user PIN. */
	assert_int_equal(login(f, s, CKU_SO, SO_PIN), CKR_OK);
	assert_int_equal(pin_call(f, PHSM_OP_INIT_PIN, s, USER_PIN, NULL), CKR_OK);
	assert_int_equal(call_u64(f, PHSM_OP_LOGOUT, 1, &s, NULL), CKR_OK);
	assert_int_equal(login(f, s, CKU_USER, USER_PIN), CKR_OK);
}

/* Query attributes; every entry's flags and length come back in order. */
static CK_RV get_attrs(struct fx *f, uint64_t s, uint64_t h, int n,
		       const CK_ATTRIBUTE_TYPE *types, uint32_t *flags,
		       uint32_t *lens)
{
	struct phsm_writer w;
	struct phsm_reader list;
	struct phsm_attr_view av;
	struct answer a;
	uint32_t count;
	size_t mark;
	CK_RV rv;

	begin(&w, PHSM_OP_GET_ATTRIBUTE_VALUE);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, h);
	mark = phsm_put_attrs_begin(&w);
	for (int i = 0; i < n; i++)
		phsm_put_attr(&w, types[i], 0, 256, NULL);
	phsm_put_attrs_end(&w, mark);
	send_req(f, &w, &a);
	rv = rv_of(&a);
	if (phsm_get_attrs(&a.m.payload, &list, &count)) {
		assert_int_equal(count, n);
		for (int i = 0; i < n; i++) {
			assert_true(phsm_next_attr(&list, &av));
			assert_int_equal(av.type, types[i]);
			flags[i] = av.flags;
			lens[i] = av.len;
		}
	}
	answer_free(&a);
	return rv;
}

static void test_objects(void **state)
{
	struct fx *f = *state;
	uint64_t s = user_session(f), k, ro, v[3];
	const CK_ATTRIBUTE_TYPE types[] = { CKA_VALUE, CKA_LABEL, CKA_MODULUS,
					    CKA_UNIQUE_ID };
	uint32_t flags[4], lens[4];
	struct phsm_writer w;
	struct answer a;
	struct tmpl t;

	assert_int_equal(create_aes(f, s, false, true, &k), CKR_OK);
	assert_int_equal(get_attrs(f, s, k, 4, types, flags, lens),
			 CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(flags[0], PHSM_ATTR_F_UNAVAILABLE);
	assert_int_equal(flags[1], PHSM_ATTR_F_VALUE);
	assert_int_equal(lens[1], 0);
	assert_int_equal(flags[2], PHSM_ATTR_F_UNAVAILABLE);
	assert_int_equal(flags[3], PHSM_ATTR_F_VALUE);

	/* CKA_SENSITIVE only goes one way. */
	begin(&w, PHSM_OP_SET_ATTRIBUTE_VALUE);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, k);
	t_begin(&t, &w);
	t_bool(&t, CKA_SENSITIVE, false);
	t_end(&t);
	send_req(f, &w, &a);
	assert_int_equal(rv_of(&a), CKR_ATTRIBUTE_READ_ONLY);
	answer_free(&a);

	/* Read-only attributes and foreign ones. */
	begin(&w, PHSM_OP_CREATE_OBJECT);
	phsm_put_u64(&w, s);
	t_begin(&t, &w);
	t_ulong(&t, CKA_CLASS, CKO_DATA);
	t_bool(&t, CKA_LOCAL, true);
	t_end(&t);
	send_req(f, &w, &a);
	assert_int_equal(rv_of(&a), CKR_ATTRIBUTE_TYPE_INVALID);
	answer_free(&a);

	/* Token objects need an R/W session. */
	ro = open_session(f, 0, false);
	assert_int_equal(create_aes(f, ro, true, false, &k), CKR_SESSION_READ_ONLY);

	/* Private objects are invisible once logged out. */
	assert_int_equal(create_aes(f, s, true, false, &k), CKR_OK);
	v[0] = s;
	v[1] = k;
	assert_int_equal(call_u64(f, PHSM_OP_GET_OBJECT_SIZE, 2, v, NULL), CKR_OK);
	assert_int_equal(call_u64(f, PHSM_OP_LOGOUT, 1, &s, NULL), CKR_OK);
	assert_int_equal(call_u64(f, PHSM_OP_GET_OBJECT_SIZE, 2, v, NULL),
			 CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(create_aes(f, s, false, false, &k),
			 CKR_USER_NOT_LOGGED_IN);
}

/* Count the objects a session can find. */
static size_t count_objects(struct fx *f, uint64_t s)
{
	struct phsm_writer w;
	struct answer a;
	struct tmpl t;
	size_t n = 0;
	uint64_t v[2] = { s, 1000 };

	begin(&w, PHSM_OP_FIND_INIT);
	phsm_put_u64(&w, s);
	t_begin(&t, &w);
	t_end(&t);
	send_req(f, &w, &a);
	assert_int_equal(rv_of(&a), CKR_OK);
	answer_free(&a);
	begin(&w, PHSM_OP_FIND);
	phsm_put_u64(&w, v[0]);
	phsm_put_u64(&w, v[1]);
	send_req(f, &w, &a);
	assert_int_equal(rv_of(&a), CKR_OK);
	assert_non_null(phsm_get_u64_array(&a.m.payload, &n));
	answer_free(&a);
	assert_int_equal(call_u64(f, PHSM_OP_FIND_FINAL, 1, &s, NULL), CKR_OK);
	return n;
}

/* Overwrite the first stored object's blob with garbage. */
static void corrupt_first_blob(const char *dir)
{
	char path[512];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/phsm.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE objects SET blob = x'0102'"
				      " WHERE handle = (SELECT MIN(handle)"
				      " FROM objects)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
}

static void test_store(void **state)
{
	struct fx *f = *state;
	uint64_t s = user_session(f), k1, k2, k3, snew;

	assert_int_equal(create_aes(f, s, true, true, &k1), CKR_OK);
	assert_int_equal(create_aes(f, s, true, false, &k2), CKR_OK);
	assert_int_equal(create_aes(f, s, false, false, &k3), CKR_OK);
	assert_int_equal(count_objects(f, s), 3);

	close_card(f);
	open_card(f);
	snew = open_session(f, 0, true);
	/* Handles are never reused, not even after a restart. */
	assert_true(snew > k3);
	assert_int_equal(login(f, snew, CKU_USER, USER_PIN), CKR_OK);
	assert_int_equal(count_objects(f, snew), 2);	/* session key gone */

	close_card(f);
	corrupt_first_blob(f->dir);
	open_card(f);	/* reported and skipped, not fatal */
	snew = open_session(f, 0, true);
	assert_int_equal(login(f, snew, CKU_USER, USER_PIN), CKR_OK);
	assert_int_equal(count_objects(f, snew), 1);

	/* C_InitToken wipes the token. */
	close_card(f);
	open_card(f);
	assert_int_equal(init_token(f, 0, "bad-so-pin"), CKR_PIN_INCORRECT);
	assert_int_equal(init_token(f, 0, SO_PIN), CKR_OK);
	snew = open_session(f, 0, true);
	assert_int_equal(login(f, snew, CKU_USER, USER_PIN),
			 CKR_USER_PIN_NOT_INITIALIZED);
	assert_int_equal(count_objects(f, snew), 0);
}

/* An operation keeps its key alive after C_DestroyObject. */
static void test_destroy_during_operation(void **state)
{
	struct fx *f = *state;
	uint64_t s = user_session(f), k, v[2];
	struct phsm_writer w;
	struct answer a;
	size_t mark;
	uint8_t block[16] = { 0 };

	assert_int_equal(create_aes(f, s, false, false, &k), CKR_OK);
	begin(&w, PHSM_OP_OP_INIT);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, PHSM_OPK_ENCRYPT);
	mark = phsm_put_mech_begin(&w, CKM_AES_ECB);
	phsm_put_mech_end(&w, mark);
	phsm_put_u64(&w, k);
	send_req(f, &w, &a);
	assert_int_equal(rv_of(&a), CKR_OK);
	answer_free(&a);

	v[0] = s;
	v[1] = k;
	assert_int_equal(call_u64(f, PHSM_OP_DESTROY_OBJECT, 2, v, NULL), CKR_OK);

	begin(&w, PHSM_OP_OP_ONESHOT);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, PHSM_OPK_ENCRYPT);
	phsm_put_bytes(&w, block, sizeof(block));
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, 64);
	send_req(f, &w, &a);
	assert_int_equal(rv_of(&a), CKR_OK);
	answer_free(&a);
}

struct worker_arg {
	struct fx *f;
	uint64_t app;
	CK_RV rv;
};

/* Sessions of several applications at once (run under ASan/TSan). */
static void *worker(void *p)
{
	struct worker_arg *wa = p;
	struct fx local = *wa->f;
	uint64_t v[2] = { 0, CKF_SERIAL_SESSION | CKF_RW_SESSION }, s, k;

	local.app = wa->app;
	wa->rv = CKR_OK;
	for (int i = 0; i < 50 && wa->rv == CKR_OK; i++) {
		wa->rv = call_u64(&local, PHSM_OP_OPEN_SESSION, 2, v, &s);
		if (wa->rv == CKR_OK && i == 0)
			login(&local, s, CKU_USER, USER_PIN);
		if (wa->rv == CKR_OK)
			wa->rv = create_aes(&local, s, i % 5 == 0, false, &k);
		if (wa->rv == CKR_OK && i % 2)
			wa->rv = call_u64(&local, PHSM_OP_CLOSE_SESSION, 1, &s,
					  NULL);
	}
	fw_card_app_close(wa->f->card, wa->app);
	return NULL;
}

static void test_threads(void **state)
{
	struct fx *f = *state;
	struct worker_arg args[4];
	pthread_t t[4];
	uint64_t s = user_session(f);

	(void)s;
	for (int i = 0; i < 4; i++) {
		args[i].f = f;
		args[i].app = fw_card_app_open(f->card);
		assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].rv, CKR_OK);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_and_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_during_operation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
