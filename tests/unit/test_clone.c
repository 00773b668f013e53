// SPDX-License-Identifier: MIT
/*
 * CPv4 cloning at the firmware core level: two cards (struct fw_card) in
 * one process, provisioned from one manufacturer directory, exchange step
 * messages and blobs through fw_card_handle().  The test also reaches
 * inside the cards (clone.h, internal.h) to turn the test knobs of
 * card->clone_cfg, to read a partition's SMK, and to forge messages with
 * a genuine device identity (a finished MAC that does not match, a key
 * share off the curve), which no host could do.
 */
#include <ftw.h>
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

#include "firmware-sim/core/clone.h"
#include "uapi/codec/phsm_codec.h"
#include <phsm/cryptoki_ca.h>
#include <phsm/pkcs11.h>

#define SO_PIN		"so-pin-1"
#define USER_PIN	"user-pin-1"
#define Q		PHSM_OUT_QUERY
#define MORE		CK_SESSION_NEGOTIATION_STATUS_MORE
#define DONE		CK_SESSION_NEGOTIATION_STATUS_DONE

struct card_fx {
	char dir[320];
	struct fw_card *card;
	uint64_t app;
	uint64_t s[2];		/* a user session on each partition */
};

struct fx {
	char base[256];
	char mfg[300];
	struct card_fx a, b;
	struct fw_clone_cfg cfg_a, cfg_b;
};

struct answer {
	uint8_t *buf;
	struct phsm_msg m;
};

struct bytes {
	uint8_t p[8192];
	size_t n;
};

static const uint8_t aes_value[16] = "0123456789abcdef";
static const uint8_t aes_value_hash[32] = "0123456789abcdef0123456789abcdef";

/* ---- requests --------------------------------------------------------- */

static void begin(struct phsm_writer *w, uint16_t op)
{
	memset(w, 0, sizeof(*w));
	assert_true(phsm_msg_begin(w, op, 0, 0, 9));
}

static CK_RV send_req(struct card_fx *c, struct phsm_writer *w,
		      struct answer *a)
{
	size_t len = 0;

	assert_true(phsm_msg_finish(w, 0, 0));
	assert_int_equal(fw_card_handle(c->card, c->app, w->data, w->len,
					&a->buf, &len), 0);
	phsm_writer_free(w);
	assert_int_equal(phsm_msg_parse(a->buf, len, true, &a->m), PHSM_ST_OK);
	assert_int_equal(a->m.status, PHSM_ST_OK);
	return a->m.rv;
}

static CK_RV send_free(struct card_fx *c, struct phsm_writer *w)
{
	struct answer a;
	CK_RV rv = send_req(c, w, &a);

	free(a.buf);
	return rv;
}

static void get_bytes(struct phsm_reader *r, struct bytes *b)
{
	size_t n;
	const uint8_t *p = phsm_get_bytes(r, &n);

	assert_non_null(p);
	assert_true(n <= sizeof(b->p));
	memcpy(b->p, p, n);
	b->n = n;
}

/* ---- tokens ----------------------------------------------------------- */

static CK_RV login(struct card_fx *c, uint64_t s, CK_USER_TYPE who,
		   const char *pin)
{
	struct phsm_writer w;

	begin(&w, PHSM_OP_LOGIN);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, who);
	phsm_put_bytes(&w, pin, strlen(pin));
	phsm_put_bytes(&w, NULL, 0);
	return send_free(c, &w);
}

static void add_kcv(struct card_fx *c, uint64_t s, const char *kcv,
		    const char *label)
{
	struct phsm_writer w;

	begin(&w, PHSM_OP_CA_ADD_KCV);
	phsm_put_u64(&w, s);
	phsm_put_bytes(&w, kcv, strlen(kcv));
	phsm_put_bytes(&w, label, strlen(label));
	phsm_put_u64(&w, 1);
	assert_int_equal(send_free(c, &w), CKR_OK);
}

/* A fresh token on @part with the domain @kcv (NULL: none), and a user
 * session on it. */
static void token(struct card_fx *c, unsigned int part, const char *kcv)
{
	uint8_t label[32];
	struct phsm_writer w;
	struct answer a;

	memset(label, ' ', sizeof(label));
	begin(&w, PHSM_OP_INIT_TOKEN);
	phsm_put_u64(&w, part);
	phsm_put_bytes(&w, SO_PIN, strlen(SO_PIN));
	phsm_put_bytes(&w, label, sizeof(label));
	assert_int_equal(send_free(c, &w), CKR_OK);
	begin(&w, PHSM_OP_OPEN_SESSION);
	phsm_put_u64(&w, part);
	phsm_put_u64(&w, CKF_SERIAL_SESSION | CKF_RW_SESSION);
	assert_int_equal(send_req(c, &w, &a), CKR_OK);
	c->s[part] = phsm_get_u64(&a.m.payload);
	free(a.buf);
	assert_int_equal(login(c, c->s[part], CKU_SO, SO_PIN), CKR_OK);
	begin(&w, PHSM_OP_INIT_PIN);
	phsm_put_u64(&w, c->s[part]);
	phsm_put_bytes(&w, USER_PIN, strlen(USER_PIN));
	assert_int_equal(send_free(c, &w), CKR_OK);
	if (kcv)
		add_kcv(c, c->s[part], kcv, "dom");
	begin(&w, PHSM_OP_LOGOUT);
	phsm_put_u64(&w, c->s[part]);
	assert_int_equal(send_free(c, &w), CKR_OK);
	assert_int_equal(login(c, c->s[part], CKU_USER, USER_PIN), CKR_OK);
}

static uint64_t open_user_session(struct card_fx *c, unsigned int part)
{
	struct phsm_writer w;
	struct answer a;
	uint64_t s;

	begin(&w, PHSM_OP_OPEN_SESSION);
	phsm_put_u64(&w, part);
	phsm_put_u64(&w, CKF_SERIAL_SESSION | CKF_RW_SESSION);
	assert_int_equal(send_req(c, &w, &a), CKR_OK);
	s = phsm_get_u64(&a.m.payload);
	free(a.buf);
	return s;	/* the application's login covers it */
}

/* ---- objects ---------------------------------------------------------- */

static void put_ulong(struct phsm_writer *w, CK_ATTRIBUTE_TYPE t, CK_ULONG v)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	phsm_put_attr(w, t, PHSM_ATTR_F_VALUE, 8, le);
}

static void put_bool(struct phsm_writer *w, CK_ATTRIBUTE_TYPE t, bool v)
{
	uint8_t b = v;

	phsm_put_attr(w, t, PHSM_ATTR_F_VALUE, 1, &b);
}

static uint64_t create_aes(struct card_fx *c, uint64_t s, bool token_obj)
{
	struct phsm_writer w;
	struct answer a;
	size_t mark;
	uint64_t h;

	begin(&w, PHSM_OP_CREATE_OBJECT);
	phsm_put_u64(&w, s);
	mark = phsm_put_attrs_begin(&w);
	put_ulong(&w, CKA_CLASS, CKO_SECRET_KEY);
	put_ulong(&w, CKA_KEY_TYPE, CKK_AES);
	phsm_put_attr(&w, CKA_VALUE, PHSM_ATTR_F_VALUE, 16, aes_value);
	phsm_put_attr(&w, CKA_LABEL, PHSM_ATTR_F_VALUE, 4, "aes1");
	put_bool(&w, CKA_TOKEN, token_obj);
	put_bool(&w, CKA_SENSITIVE, true);
	put_bool(&w, CKA_EXTRACTABLE, false);
	phsm_put_attrs_end(&w, mark);
	assert_int_equal(send_req(c, &w, &a), CKR_OK);
	h = phsm_get_u64(&a.m.payload);
	free(a.buf);
	return h;
}

static uint64_t create_data(struct card_fx *c, uint64_t s)
{
	struct phsm_writer w;
	struct answer a;
	size_t mark;
	uint64_t h;

	begin(&w, PHSM_OP_CREATE_OBJECT);
	phsm_put_u64(&w, s);
	mark = phsm_put_attrs_begin(&w);
	put_ulong(&w, CKA_CLASS, CKO_DATA);
	phsm_put_attr(&w, CKA_VALUE, PHSM_ATTR_F_VALUE, 5, "hello");
	phsm_put_attr(&w, CKA_LABEL, PHSM_ATTR_F_VALUE, 5, "data1");
	put_bool(&w, CKA_PRIVATE, false);
	phsm_put_attrs_end(&w, mark);
	assert_int_equal(send_req(c, &w, &a), CKR_OK);
	h = phsm_get_u64(&a.m.payload);
	free(a.buf);
	return h;
}

/* One attribute's value; CKR_OK or the call's rv. */
static CK_RV get_attr(struct card_fx *c, uint64_t s, uint64_t h,
		      CK_ATTRIBUTE_TYPE type, struct bytes *out)
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
	phsm_put_attr(&w, type, 0, 1024, NULL);
	phsm_put_attrs_end(&w, mark);
	rv = send_req(c, &w, &a);
	out->n = 0;
	if (rv == CKR_OK) {
		assert_true(phsm_get_attrs(&a.m.payload, &list, &count));
		assert_true(phsm_next_attr(&list, &av));
		assert_true(av.flags & PHSM_ATTR_F_VALUE);
		memcpy(out->p, av.value, av.len);
		out->n = av.len;
	}
	free(a.buf);
	return rv;
}

static size_t count_objects(struct card_fx *c, uint64_t s)
{
	struct phsm_writer w;
	struct answer a;
	size_t mark, n;

	begin(&w, PHSM_OP_FIND_INIT);
	phsm_put_u64(&w, s);
	mark = phsm_put_attrs_begin(&w);
	phsm_put_attrs_end(&w, mark);
	assert_int_equal(send_free(c, &w), CKR_OK);
	begin(&w, PHSM_OP_FIND);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, 100000);
	assert_int_equal(send_req(c, &w, &a), CKR_OK);
	assert_non_null(phsm_get_u64_array(&a.m.payload, &n));
	free(a.buf);
	begin(&w, PHSM_OP_FIND_FINAL);
	phsm_put_u64(&w, s);
	assert_int_equal(send_free(c, &w), CKR_OK);
	return n;
}

/* AES-ECB of one block with key @h, encrypting or decrypting. */
static void aes_block(struct card_fx *c, uint64_t s, uint64_t h, bool enc,
		      const uint8_t in[16], uint8_t out[16])
{
	uint64_t kind = enc ? PHSM_OPK_ENCRYPT : PHSM_OPK_DECRYPT;
	struct phsm_writer w;
	struct answer a;
	size_t mark;
	struct bytes b;

	begin(&w, PHSM_OP_OP_INIT);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, kind);
	mark = phsm_put_mech_begin(&w, CKM_AES_ECB);
	phsm_put_mech_end(&w, mark);
	phsm_put_u64(&w, h);
	assert_int_equal(send_free(c, &w), CKR_OK);
	begin(&w, PHSM_OP_OP_ONESHOT);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, kind);
	phsm_put_bytes(&w, in, 16);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, 16);
	assert_int_equal(send_req(c, &w, &a), CKR_OK);
	get_bytes(&a.m.payload, &b);
	assert_int_equal(b.n, 16);
	memcpy(out, b.p, 16);
	free(a.buf);
}

/* One-shot sign (sig out) or verify (sig in) with CKM_ECDSA. */
static CK_RV ecdsa(struct card_fx *c, uint64_t s, uint64_t h, bool sign,
		   const uint8_t hash[32], struct bytes *sig)
{
	uint64_t kind = sign ? PHSM_OPK_SIGN : PHSM_OPK_VERIFY;
	struct phsm_writer w;
	struct answer a;
	size_t mark;
	CK_RV rv;

	begin(&w, PHSM_OP_OP_INIT);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, kind);
	mark = phsm_put_mech_begin(&w, CKM_ECDSA);
	phsm_put_mech_end(&w, mark);
	phsm_put_u64(&w, h);
	assert_int_equal(send_free(c, &w), CKR_OK);
	begin(&w, PHSM_OP_OP_ONESHOT);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, kind);
	phsm_put_bytes(&w, hash, 32);
	phsm_put_bytes(&w, sign ? NULL : sig->p, sign ? 0 : sig->n);
	phsm_put_u64(&w, sign ? sizeof(sig->p) : 0);
	rv = send_req(c, &w, &a);
	if (rv == CKR_OK && sign)
		get_bytes(&a.m.payload, sig);
	free(a.buf);
	return rv;
}

/* ---- negotiation ------------------------------------------------------ */

static CK_RV start(struct card_fx *c, uint64_t s, uint64_t outcap,
		   struct bytes *m1, uint64_t *len)
{
	struct phsm_writer w;
	struct answer a;
	CK_RV rv;

	begin(&w, PHSM_OP_MIGRATION_START);
	phsm_put_u64(&w, s);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, outcap);
	rv = send_req(c, &w, &a);
	m1->n = 0;
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		assert_int_equal(phsm_get_u64(&a.m.payload), 1);
		get_bytes(&a.m.payload, m1);
		*len = phsm_get_u64(&a.m.payload);
		assert_true(phsm_reader_done(&a.m.payload));
	}
	free(a.buf);
	return rv;
}

struct cont {
	uint64_t step, status, out_len, sid_len;
	struct bytes out, sid;
};

static CK_RV cont(struct card_fx *c, uint64_t s, uint64_t step,
		  const struct bytes *in, const uint8_t *sid, size_t sid_len,
		  uint64_t outcap, uint64_t sidcap, struct cont *o)
{
	struct phsm_writer w;
	struct answer a;
	CK_RV rv;

	begin(&w, PHSM_OP_MIGRATION_CONTINUE);
	phsm_put_u64(&w, s);
	phsm_put_u64(&w, step);
	phsm_put_bytes(&w, in->p, in->n);
	phsm_put_bytes(&w, sid, sid_len);
	phsm_put_u64(&w, outcap);
	phsm_put_u64(&w, sidcap);
	rv = send_req(c, &w, &a);
	memset(o, 0, sizeof(*o));
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		o->step = phsm_get_u64(&a.m.payload);
		get_bytes(&a.m.payload, &o->out);
		o->out_len = phsm_get_u64(&a.m.payload);
		o->status = phsm_get_u64(&a.m.payload);
		get_bytes(&a.m.payload, &o->sid);
		o->sid_len = phsm_get_u64(&a.m.payload);
		assert_true(phsm_reader_done(&a.m.payload));
	} else {
		assert_int_equal(a.m.payload.left, 0);
	}
	free(a.buf);
	return rv;
}

static CK_RV cont_full(struct card_fx *c, uint64_t s, uint64_t step,
		       const struct bytes *in, const struct bytes *sid,
		       struct cont *o)
{
	return cont(c, s, step, in, sid ? sid->p : NULL, sid ? sid->n : 0,
		    sizeof(o->out.p), sizeof(o->sid.p), o);
}

static CK_RV close_sid(struct card_fx *c, uint64_t s, const struct bytes *sid)
{
	struct phsm_writer w;

	begin(&w, PHSM_OP_MIGRATION_CLOSE);
	phsm_put_u64(&w, s);
	phsm_put_bytes(&w, sid->p, sid->n);
	return send_free(c, &w);
}

struct neg {
	struct bytes sid, m1, m2, m3, m4;
};

/* The whole negotiation up to m4 (not yet given to I). */
static void negotiate(struct card_fx *ci, uint64_t si, struct card_fx *cr,
		      uint64_t sr, struct neg *n)
{
	struct cont o;
	uint64_t len;

	assert_int_equal(start(ci, si, sizeof(n->m1.p), &n->m1, &len), CKR_OK);
	assert_int_equal(len, n->m1.n);
	assert_int_equal(cont_full(cr, sr, 1, &n->m1, NULL, &o), CKR_OK);
	assert_int_equal(o.step, 2);
	assert_int_equal(o.status, MORE);
	n->m2 = o.out;
	n->sid = o.sid;
	assert_int_equal(cont_full(ci, si, 2, &n->m2, &n->sid, &o), CKR_OK);
	assert_int_equal(o.step, 3);
	assert_int_equal(o.status, MORE);
	assert_memory_equal(o.sid.p, n->sid.p, n->sid.n);
	n->m3 = o.out;
	assert_int_equal(cont_full(cr, sr, 3, &n->m3, &n->sid, &o), CKR_OK);
	assert_int_equal(o.step, 4);
	assert_int_equal(o.status, DONE);
	n->m4 = o.out;
}

/* Negotiated and finished on I with a step-4 Continue. */
static void establish(struct card_fx *ci, uint64_t si, struct card_fx *cr,
		      uint64_t sr, struct neg *n)
{
	struct cont o;

	negotiate(ci, si, cr, sr, n);
	assert_int_equal(cont_full(ci, si, 4, &n->m4, &n->sid, &o), CKR_OK);
	assert_int_equal(o.step, 0);
	assert_int_equal(o.status, DONE);
	assert_int_equal(o.out_len, 0);
}

/* ---- extract and insert ----------------------------------------------- */

#define MAXN	8

struct xres {
	uint64_t results[MAXN], lens[MAXN];
	uint8_t blobs[32768];
	size_t blobs_len;
};

static CK_RV extract(struct card_fx *c, uint64_t s, const struct bytes *sid,
		     const struct bytes *in, uint64_t flags, size_t n,
		     const uint64_t *types, const uint64_t *handles,
		     const uint64_t *caps, struct xres *x)
{
	struct phsm_writer w;
	struct answer a;
	size_t mark, k;
	const uint8_t *arr, *p;
	CK_RV rv;

	begin(&w, PHSM_OP_EXTRACT);
	phsm_put_u64(&w, s);
	mark = phsm_put_mech_begin(&w, CKM_CPV4_EXTRACT);
	phsm_put_bytes(&w, sid->p, sid->n);
	phsm_put_bytes(&w, in ? in->p : NULL, in ? in->n : 0);
	phsm_put_u64(&w, flags);
	phsm_put_u64_array(&w, types, n);
	phsm_put_u64_array(&w, handles, n);
	phsm_put_u64_array(&w, caps, n);
	phsm_put_mech_end(&w, mark);
	rv = send_req(c, &w, &a);
	memset(x, 0, sizeof(*x));
	if (rv == CKR_OK) {
		arr = phsm_get_u64_array(&a.m.payload, &k);
		assert_int_equal(k, n);
		for (size_t i = 0; i < n; i++)
			x->results[i] = phsm_array_u64(arr, i);
		arr = phsm_get_u64_array(&a.m.payload, &k);
		assert_int_equal(k, n);
		for (size_t i = 0; i < n; i++)
			x->lens[i] = phsm_array_u64(arr, i);
		p = phsm_get_bytes(&a.m.payload, &x->blobs_len);
		assert_true(x->blobs_len <= sizeof(x->blobs));
		memcpy(x->blobs, p, x->blobs_len);
		assert_true(phsm_reader_done(&a.m.payload));
	}
	free(a.buf);
	return rv;
}

static CK_RV insert(struct card_fx *c, uint64_t s, const struct bytes *sid,
		    uint64_t flags, size_t n, const uint64_t *storage,
		    const uint64_t *types, const uint64_t *lens,
		    const uint8_t *blobs, size_t blobs_len, uint64_t *results,
		    uint64_t *handles)
{
	struct phsm_writer w;
	struct answer a;
	size_t mark, k;
	const uint8_t *arr;
	CK_RV rv;

	begin(&w, PHSM_OP_INSERT);
	phsm_put_u64(&w, s);
	mark = phsm_put_mech_begin(&w, CKM_CPV4_INSERT);
	phsm_put_bytes(&w, sid->p, sid->n);
	phsm_put_u64(&w, flags);
	phsm_put_u64_array(&w, storage, n);
	phsm_put_u64_array(&w, types, n);
	phsm_put_u64_array(&w, lens, n);
	phsm_put_bytes(&w, blobs, blobs_len);
	phsm_put_mech_end(&w, mark);
	rv = send_req(c, &w, &a);
	if (rv == CKR_OK) {
		arr = phsm_get_u64_array(&a.m.payload, &k);
		assert_int_equal(k, n);
		for (size_t i = 0; i < n; i++)
			results[i] = phsm_array_u64(arr, i);
		arr = phsm_get_u64_array(&a.m.payload, &k);
		assert_int_equal(k, n);
		for (size_t i = 0; i < n; i++)
			handles[i] = phsm_array_u64(arr, i);
		assert_true(phsm_reader_done(&a.m.payload));
	}
	free(a.buf);
	return rv;
}

/* Insert one blob; its result (the call must succeed). */
static CK_RV insert1(struct card_fx *c, uint64_t s, const struct bytes *sid,
		     uint64_t type, const uint8_t *blob, size_t len,
		     uint64_t *handle)
{
	uint64_t storage = 0, l = len, result = 0, h = 0;

	assert_int_equal(insert(c, s, sid, 0, 1, &storage, &type, &l, blob, len,
				&result, &h), CKR_OK);
	if (handle)
		*handle = h;
	return result;
}

/* ---- fixture ---------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void card_open(struct fx *f, struct card_fx *c, const char *name,
		      unsigned int curve)
{
	struct fw_card_config cfg = {
		.partitions = 2,
		.pin_iterations = 1,
		.mfg_dir = f->mfg,
		.device_curve = curve,
	};
	char err[256] = "";

	snprintf(c->dir, sizeof(c->dir), "%s/%s", f->base, name);
	cfg.state_dir = c->dir;
	assert_int_equal(fw_card_open(&cfg, &c->card, err, sizeof(err)), 0);
	c->app = fw_card_app_open(c->card);
	assert_true(c->app != 0);
}

static int group_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256] = "";

	snprintf(f->base, sizeof(f->base), "/tmp/phsm-test-clone.XXXXXX");
	assert_non_null(mkdtemp(f->base));
	snprintf(f->mfg, sizeof(f->mfg), "%s/mfg", f->base);
	assert_int_equal(fw_mfg_init(f->mfg, err, sizeof(err)), 0);
	card_open(f, &f->a, "a", 256);
	card_open(f, &f->b, "b", 384);
	token(&f->a, 0, "domain-one");
	token(&f->a, 1, "domain-two");
	token(&f->b, 0, "domain-one");
	token(&f->b, 1, NULL);
	f->cfg_a = f->a.card->clone_cfg;
	f->cfg_b = f->b.card->clone_cfg;
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fx *f = *state;

	fw_card_app_close(f->a.card, f->a.app);
	fw_card_close(f->a.card);
	fw_card_app_close(f->b.card, f->b.app);
	fw_card_close(f->b.card);
	nftw(f->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Each test starts from the cards' own settings. */
static int test_setup(void **state)
{
	struct fx *f = *state;

	f->a.card->clone_cfg = f->cfg_a;
	f->b.card->clone_cfg = f->cfg_b;
	return 0;
}

/* A key pair; the private key is sensitive and unextractable. */
static void create_pair(struct card_fx *c, uint64_t s, CK_MECHANISM_TYPE mech,
			const uint8_t *params, size_t params_len, uint64_t *pub,
			uint64_t *priv)
{
	struct phsm_writer w;
	struct answer a;
	size_t mark;

	begin(&w, PHSM_OP_GENERATE_KEY_PAIR);
	phsm_put_u64(&w, s);
	mark = phsm_put_mech_begin(&w, mech);
	phsm_put_mech_end(&w, mark);
	mark = phsm_put_attrs_begin(&w);
	if (mech == CKM_RSA_PKCS_KEY_PAIR_GEN)
		put_ulong(&w, CKA_MODULUS_BITS, 2048);
	else
		phsm_put_attr(&w, CKA_EC_PARAMS, PHSM_ATTR_F_VALUE,
			      (uint32_t)params_len, params);
	put_bool(&w, CKA_TOKEN, true);
	phsm_put_attrs_end(&w, mark);
	mark = phsm_put_attrs_begin(&w);
	put_bool(&w, CKA_TOKEN, true);
	put_bool(&w, CKA_SENSITIVE, true);
	put_bool(&w, CKA_EXTRACTABLE, false);
	phsm_put_attr(&w, CKA_ID, PHSM_ATTR_F_VALUE, 2, "id");
	phsm_put_attrs_end(&w, mark);
	assert_int_equal(send_req(c, &w, &a), CKR_OK);
	*pub = phsm_get_u64(&a.m.payload);
	*priv = phsm_get_u64(&a.m.payload);
	free(a.buf);
}

/* ---- tests: negotiation ----------------------------------------------- */

static void test_negotiate(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	struct neg n;
	struct cont o, o2;
	struct bytes m1, m1b;
	uint64_t len;

	/* Both directions: each device curve signs as I and as R. */
	establish(A, A->s[0], B, B->s[0], &n);
	assert_int_equal(n.sid.n, FW_CLN_SID_LEN);
	assert_int_equal(close_sid(A, A->s[0], &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, B->s[0], &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, B->s[0], &n.sid), CKR_SESSION_ID_INVALID);
	establish(B, B->s[0], A, A->s[0], &n);
	assert_int_equal(close_sid(A, A->s[0], &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, B->s[0], &n.sid), CKR_OK);

	/* Size queries return the length of the bytes that follow. */
	assert_int_equal(start(A, A->s[0], Q, &m1, &len), CKR_OK);
	assert_int_equal(m1.n, 0);
	assert_int_equal(start(A, A->s[0], 10, &m1, &len), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(start(A, A->s[0], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(m1.n, len);
	/* Delivered: the next Start is a new negotiation. */
	assert_int_equal(start(A, A->s[0], sizeof(m1b.p), &m1b, &len), CKR_OK);
	assert_true(m1b.n != m1.n || memcmp(m1b.p, m1.p, m1.n));

	/* R's step 1 with an application-chosen ID, queried first. */
	assert_int_equal(cont(B, B->s[0], 1, &m1, (const uint8_t *)"my-id", 5,
			      Q, Q, &o), CKR_OK);
	assert_int_equal(o.step, 2);
	assert_int_equal(o.status, MORE);
	assert_int_equal(o.sid_len, 5);
	assert_int_equal(o.out.n, 0);
	assert_int_equal(cont(B, B->s[0], 1, &m1, (const uint8_t *)"my-id", 5,
			      Q, 10, &o2), CKR_ARGUMENTS_BAD);
	assert_int_equal(cont(B, B->s[0], 1, &m1, (const uint8_t *)"my-id", 5,
			      16, 16, &o2), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(o2.out_len, o.out_len);
	assert_int_equal(cont(B, B->s[0], 1, &m1, (const uint8_t *)"my-id", 5,
			      sizeof(o.out.p), sizeof(o.sid.p), &o), CKR_OK);
	assert_int_equal(o.out.n, o2.out_len);
	assert_memory_equal(o.sid.p, "my-id", 5);
	n.m2 = o.out;
	n.sid = o.sid;
	/* The same m1 again: the same m2. */
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o2), CKR_OK);
	assert_int_equal(o2.out.n, n.m2.n);
	assert_memory_equal(o2.out.p, n.m2.p, n.m2.n);
	/* That ID is taken now, also for another m1. */
	assert_int_equal(cont_full(B, B->s[0], 1, &m1b, &n.sid, &o2),
			 CKR_SESSION_ID_EXISTS);
	/* Wrong step numbers. */
	assert_int_equal(cont_full(A, A->s[0], 3, &n.m2, &n.sid, &o2),
			 CKR_SESSION_NEGOTIATION_INVALID);
	assert_int_equal(cont_full(A, A->s[0], 2, &n.m2, &n.sid, &o), CKR_OK);
	n.m3 = o.out;
	assert_int_equal(cont_full(A, A->s[0], 2, &n.m2, &n.sid, &o2), CKR_OK);
	assert_memory_equal(o2.out.p, n.m3.p, n.m3.n);
	assert_int_equal(cont_full(B, B->s[0], 3, &n.m3, &n.sid, &o), CKR_OK);
	n.m4 = o.out;
	/* m1 replayed after R moved on. */
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o2),
			 CKR_SESSION_ID_EXISTS);
	/* Step 4 on R, which never takes one. */
	assert_int_equal(cont_full(B, B->s[0], 4, &n.m4, &n.sid, &o2),
			 CKR_SESSION_NEGOTIATION_INVALID);
	assert_int_equal(cont_full(A, A->s[0], 4, &n.m4, &n.sid, &o), CKR_OK);
	assert_int_equal(cont_full(A, A->s[0], 4, &n.m4, &n.sid, &o), CKR_OK);
	assert_int_equal(o.status, DONE);
	assert_int_equal(close_sid(A, A->s[0], &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, B->s[0], &n.sid), CKR_OK);

	/* An unknown session ID. */
	assert_int_equal(cont_full(B, B->s[0], 3, &n.m3, &n.sid, &o2),
			 CKR_SESSION_NEGOTIATION_INVALID);
	/* Arguments. */
	m1b.n = 0;
	assert_int_equal(cont_full(B, B->s[0], 1, &m1b, NULL, &o2),
			 CKR_ARGUMENTS_BAD);
}

static void test_negotiate_errors(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	struct fw_clone_cfg *ca = &A->card->clone_cfg, *cb = &B->card->clone_cfg;
	uint64_t s2 = open_user_session(A, 0), len;
	struct bytes m1;
	struct cont o;
	struct neg n;

	/* No domain: Start.  Different domains: I's step 2. */
	assert_int_equal(start(B, B->s[1], Q, &m1, &len),
			 CKR_SESSION_NEGOTIATION_NO_PSK);
	assert_int_equal(start(A, A->s[1], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o), CKR_OK);
	assert_int_equal(cont_full(A, A->s[1], 2, &o.out, &o.sid, &o),
			 CKR_SESSION_NEGOTIATION_NO_PSK);
	/* Both ends on one partition: the ID exists at I. */
	assert_int_equal(start(A, A->s[0], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(cont_full(A, s2, 1, &m1, NULL, &o), CKR_OK);
	assert_int_equal(cont_full(A, A->s[0], 2, &o.out, &o.sid, &o),
			 CKR_SESSION_ID_EXISTS);

	/* Nothing in common. */
	ca->suites = 1u << FW_CLN_SUITE_P256;
	cb->suites = 1u << FW_CLN_SUITE_P384;
	assert_int_equal(start(A, A->s[0], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o),
			 CKR_SESSION_NEGOTIATION_NO_ALGS);
	*ca = f->cfg_a;
	*cb = f->cfg_b;
	ca->kdfs = 1u << FW_CLN_KDF_SHA256;
	cb->kdfs = 1u << FW_CLN_KDF_SHA384;
	assert_int_equal(start(A, A->s[0], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o),
			 CKR_SESSION_NEGOTIATION_NO_KDF);
	*ca = f->cfg_a;
	*cb = f->cfg_b;
	ca->encodings = 1u << 2;	/* a value B does not know */
	assert_int_equal(start(A, A->s[0], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o),
			 CKR_SESSION_NEGOTIATION_NO_ENCODING);
	*ca = f->cfg_a;
	ca->session_lifetime = 5;
	assert_int_equal(start(A, A->s[0], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o),
			 CKR_SESSION_NEGOTIATION_NO_SESSION_DURATION);
	*ca = f->cfg_a;

	/* Suites and KDFs chosen by I's preference among both knobs. */
	ca->suites = (1u << FW_CLN_SUITE_P256) | (1u << FW_CLN_SUITE_P384);
	cb->suites = 1u << FW_CLN_SUITE_P256;
	establish(A, A->s[0], B, B->s[0], &n);
	assert_int_equal(close_sid(A, A->s[0], &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, B->s[0], &n.sid), CKR_OK);
	*cb = f->cfg_b;

	/* Clocks: B ahead by 10 s is caught by I; I ahead by 10 s by R. */
	cb->clock_offset = 10;
	assert_int_equal(start(A, A->s[0], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o), CKR_OK);
	assert_int_equal(cont_full(A, A->s[0], 2, &o.out, &o.sid, &o),
			 CKR_TIME_NOT_INITIALIZED);
	assert_int_equal(start(B, B->s[0], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(cont_full(A, A->s[0], 1, &m1, NULL, &o),
			 CKR_TIME_NOT_INITIALIZED);
	/* 2 s are within the slack. */
	cb->clock_offset = 2;
	establish(A, A->s[0], B, B->s[0], &n);
	*cb = f->cfg_b;

	/* Start takes no input. */
	{
		struct phsm_writer w;

		begin(&w, PHSM_OP_MIGRATION_START);
		phsm_put_u64(&w, s2);
		phsm_put_bytes(&w, "x", 1);
		phsm_put_u64(&w, Q);
		assert_int_equal(send_free(A, &w), CKR_ARGUMENTS_BAD);
	}
	assert_int_equal(close_sid(A, A->s[0], &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, B->s[0], &n.sid), CKR_OK);
}

/* ---- tests: blobs ----------------------------------------------------- */

static void test_extract_insert(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint64_t sa = A->s[0], sb = B->s[0];
	uint64_t aes = create_aes(A, sa, true), data = create_data(A, sa);
	uint64_t types[4] = { 0, 0, CK_PARAM_ELEMENT, 0 };
	uint64_t handles[4] = { aes, data, PHSM_PARAM_SMK, 12345 };
	uint64_t caps[4] = { Q, Q, Q, Q }, storage[3] = { 0, 0, 0 };
	uint64_t results[3], newh[3], lens[3];
	uint8_t ct[16], pt[16];
	struct bytes v1, v2;
	struct xres x;
	struct neg n;
	size_t before = count_objects(B, sb);

	establish(A, sa, B, sb, &n);
	/* Size query: exact sizes, 160 bytes plus the plaintext. */
	assert_int_equal(extract(A, sa, &n.sid, NULL, CKF_CONTINUE_ON_ERR, 4,
				 types, handles, caps, &x), CKR_OK);
	assert_int_equal(x.results[0], CKR_OK);
	assert_int_equal(x.results[1], CKR_OK);
	assert_int_equal(x.results[2], CKR_OK);
	assert_int_equal(x.results[3], CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(x.blobs_len, 0);
	/* Mixed NULL buffers. */
	caps[0] = 4096;
	assert_int_equal(extract(A, sa, &n.sid, NULL, 0, 4, types, handles,
				 caps, &x), CKR_MECHANISM_PARAM_INVALID);
	/* A short buffer for the second, without CONTINUE_ON_ERR. */
	caps[1] = 10;
	caps[2] = caps[3] = 4096;
	assert_int_equal(extract(A, sa, &n.sid, NULL, 0, 4, types, handles,
				 caps, &x), CKR_OK);
	assert_int_equal(x.results[0], CKR_OK);
	assert_int_equal(x.results[1], CKR_BUFFER_TOO_SMALL);
	assert_int_equal(x.results[2], CKR_CLONE_NOT_ATTEMPTED);
	assert_int_equal(x.results[3], CKR_CLONE_NOT_ATTEMPTED);
	assert_true(x.lens[1] > 10);
	caps[1] = 4096;
	assert_int_equal(extract(A, sa, &n.sid, NULL, 0, 3, types, handles,
				 caps, &x), CKR_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(x.results[i], CKR_OK);
		lens[i] = x.lens[i];
	}
	assert_int_equal(x.blobs_len, lens[0] + lens[1] + lens[2]);

	assert_int_equal(insert(B, sb, &n.sid, 0, 3, storage, types, lens,
				x.blobs, x.blobs_len, results, newh), CKR_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(results[i], CKR_OK);
	assert_int_equal(newh[2], PHSM_PARAM_SMK);
	assert_int_equal(count_objects(B, sb), before + 2);
	assert_memory_equal(B->card->ext[0].smk, A->card->ext[0].smk,
			    FW_HASH_LEN);

	/* The clone is the same key, still sensitive and unextractable. */
	aes_block(A, sa, aes, true, aes_value, ct);
	aes_block(B, sb, newh[0], false, ct, pt);
	assert_memory_equal(pt, aes_value, 16);
	assert_int_equal(get_attr(B, sb, newh[0], CKA_VALUE, &v1),
			 CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(get_attr(B, sb, newh[0], CKA_EXTRACTABLE, &v1), CKR_OK);
	assert_int_equal(v1.p[0], CK_FALSE);
	assert_int_equal(get_attr(B, sb, newh[0], CKA_TOKEN, &v1), CKR_OK);
	assert_int_equal(v1.p[0], CK_TRUE);
	assert_int_equal(get_attr(B, sb, newh[0], CKA_LABEL, &v1), CKR_OK);
	assert_memory_equal(v1.p, "aes1", 4);
	assert_int_equal(get_attr(A, sa, aes, CKA_UNIQUE_ID, &v1), CKR_OK);
	assert_int_equal(get_attr(B, sb, newh[0], CKA_UNIQUE_ID, &v2), CKR_OK);
	assert_true(v1.n != v2.n || memcmp(v1.p, v2.p, v1.n));
	assert_int_equal(get_attr(B, sb, newh[1], CKA_VALUE, &v1), CKR_OK);
	assert_memory_equal(v1.p, "hello", 5);

	/* Replay of a blob already inserted. */
	assert_int_equal(insert1(B, sb, &n.sid, 0, x.blobs, lens[0], NULL),
			 CKR_DATA_INVALID);
	/* Reflected to its maker. */
	assert_int_equal(insert1(A, sa, &n.sid, 0, x.blobs, lens[0], NULL),
			 CKR_DATA_INVALID);
	/* Forced storage: a session object. */
	{
		uint64_t st = PHSM_CLONE_STORAGE_SESSION, t = 0, one = 0;

		caps[0] = 4096;
		assert_int_equal(extract(A, sa, &n.sid, NULL, 0, 1, types,
					 handles, caps, &x), CKR_OK);
		one = x.lens[0];
		assert_int_equal(insert(B, sb, &n.sid, 0, 1, &st, &t, &one,
					x.blobs, one, results, newh), CKR_OK);
		assert_int_equal(results[0], CKR_OK);
		assert_int_equal(get_attr(B, sb, newh[0], CKA_TOKEN, &v1),
				 CKR_OK);
		assert_int_equal(v1.p[0], CK_FALSE);
	}
	/* Closed: gone. */
	assert_int_equal(close_sid(A, sa, &n.sid), CKR_OK);
	assert_int_equal(extract(A, sa, &n.sid, NULL, 0, 1, types, handles,
				 caps, &x), CKR_SESSION_ID_INVALID);
	assert_int_equal(close_sid(B, sb, &n.sid), CKR_OK);
}

/* Objects and the SMK of one request are one commit: all or nothing. */
static void test_batch_one_commit(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint64_t sa = A->s[0], sb = B->s[0], aes = create_aes(A, sa, true);
	uint64_t types[2] = { 0, CK_PARAM_ELEMENT };
	uint64_t handles[2] = { aes, PHSM_PARAM_SMK }, caps[2] = { 4096, 4096 };
	uint64_t storage[2] = { 0, 0 }, results[2], newh[2];
	uint8_t smk[FW_HASH_LEN];
	size_t before = count_objects(B, sb), nobjects;
	struct xres x;
	struct neg n;

	memset(A->card->ext[0].smk, 0x33, FW_HASH_LEN);
	memcpy(smk, B->card->ext[0].smk, sizeof(smk));
	assert_memory_not_equal(smk, A->card->ext[0].smk, FW_HASH_LEN);
	establish(A, sa, B, sb, &n);
	assert_int_equal(extract(A, sa, &n.sid, NULL, 0, 2, types, handles,
				 caps, &x), CKR_OK);
	/* The card is full: the commit fails for the object and the SMK. */
	nobjects = B->card->nobjects;
	B->card->nobjects = FW_MAX_OBJECTS;
	assert_int_equal(insert(B, sb, &n.sid, CKF_CONTINUE_ON_ERR, 2, storage,
				types, x.lens, x.blobs, x.blobs_len, results,
				newh), CKR_OK);
	B->card->nobjects = nobjects;
	assert_int_equal(results[0], CKR_DEVICE_MEMORY);
	assert_int_equal(results[1], CKR_DEVICE_MEMORY);
	assert_memory_equal(B->card->ext[0].smk, smk, FW_HASH_LEN);
	assert_int_equal(count_objects(B, sb), before);
	/* Nothing was used up: the same blobs go in now, both. */
	assert_int_equal(insert(B, sb, &n.sid, 0, 2, storage, types, x.lens,
				x.blobs, x.blobs_len, results, newh), CKR_OK);
	assert_int_equal(results[0], CKR_OK);
	assert_int_equal(results[1], CKR_OK);
	assert_memory_equal(B->card->ext[0].smk, A->card->ext[0].smk,
			    FW_HASH_LEN);
	assert_int_equal(count_objects(B, sb), before + 1);
	assert_int_equal(close_sid(A, sa, &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, sb, &n.sid), CKR_OK);
}

static void test_tampered_foreign(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint64_t sa = A->s[0], sb = B->s[0];
	uint64_t aes = create_aes(A, sa, false);
	uint64_t type = 0, cap = 4096, h;
	uint8_t blob[4096];
	struct neg n1, n2;
	struct xres x;
	size_t len, before;

	establish(A, sa, B, sb, &n1);
	establish(A, sa, B, sb, &n2);
	assert_int_equal(extract(A, sa, &n1.sid, NULL, 0, 1, &type, &aes, &cap,
				 &x), CKR_OK);
	len = x.lens[0];
	memcpy(blob, x.blobs, len);
	before = count_objects(B, sb);

	/* Every byte flipped in turn: refused, nothing created. */
	for (size_t i = 0; i < len; i++) {
		blob[i] ^= 0x01;
		assert_int_not_equal(insert1(B, sb, &n1.sid, 0, blob, len, NULL),
				     CKR_OK);
		blob[i] ^= 0x01;
	}
	assert_int_equal(count_objects(B, sb), before);
	/* Truncated, wrong object type. */
	assert_int_equal(insert1(B, sb, &n1.sid, 0, blob, len - 1, NULL),
			 CKR_DATA_INVALID);
	assert_int_equal(insert1(B, sb, &n1.sid, CK_PARAM_ELEMENT, blob, len,
				 NULL), CKR_OBJECT_TYPE_INVALID);
	/* Foreign: a blob of another session. */
	assert_int_equal(insert1(B, sb, &n2.sid, 0, blob, len, NULL),
			 CKR_DATA_INVALID);
	assert_int_equal(count_objects(B, sb), before);
	/* The genuine blob, once. */
	assert_int_equal(insert1(B, sb, &n1.sid, 0, blob, len, &h), CKR_OK);
	assert_int_equal(insert1(B, sb, &n1.sid, 0, blob, len, NULL),
			 CKR_DATA_INVALID);
	assert_int_equal(count_objects(B, sb), before + 1);

	/* B as the source: the other direction. */
	cap = 4096;
	assert_int_equal(extract(B, sb, &n2.sid, NULL, 0, 1, &type, &h, &cap,
				 &x), CKR_OK);
	assert_int_equal(insert1(A, sa, &n2.sid, 0, x.blobs, x.lens[0], NULL),
			 CKR_OK);
	for (int i = 0; i < 2; i++) {
		struct neg *n = i ? &n2 : &n1;

		assert_int_equal(close_sid(A, sa, &n->sid), CKR_OK);
		assert_int_equal(close_sid(B, sb, &n->sid), CKR_OK);
	}
}

static void test_step4_by_extract(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint64_t sa = A->s[0], sb = B->s[0];
	uint64_t aes = create_aes(A, sa, false), type = 0, cap = 4096;
	uint64_t results[1], h[1];
	struct bytes bad;
	struct neg n;
	struct xres x;

	negotiate(A, sa, B, sb, &n);
	/* Before step 4, and R extracting early. */
	assert_int_equal(extract(A, sa, &n.sid, NULL, 0, 1, &type, &aes, &cap,
				 &x), CKR_SESSION_NEGOTIATION_INVALID);
	/* An altered m4: _INVALID, and the negotiation is gone. */
	bad = n.m4;
	bad.p[bad.n - 1] ^= 1;
	assert_int_equal(extract(A, sa, &n.sid, &bad, 0, 1, &type, &aes, &cap,
				 &x), CKR_SESSION_NEGOTIATION_INVALID);
	assert_int_equal(extract(A, sa, &n.sid, &n.m4, 0, 1, &type, &aes, &cap,
				 &x), CKR_SESSION_ID_INVALID);
	assert_int_equal(close_sid(B, sb, &n.sid), CKR_OK);

	/* The first Extract completes the negotiation. */
	negotiate(A, sa, B, sb, &n);
	assert_int_equal(extract(A, sa, &n.sid, &n.m4, 0, 1, &type, &aes, &cap,
				 &x), CKR_OK);
	assert_int_equal(x.results[0], CKR_OK);
	assert_int_equal(extract(A, sa, &n.sid, &n.m4, 0, 1, &type, &aes, &cap,
				 &x), CKR_OK);
	assert_int_equal(insert(B, sb, &n.sid, 0, 1, (uint64_t[]){ 0 }, &type,
				x.lens, x.blobs, x.lens[0], results, h), CKR_OK);
	assert_int_equal(results[0], CKR_OK);
	assert_int_equal(close_sid(A, sa, &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, sb, &n.sid), CKR_OK);
}

/* Every key pair kind the card makes, both halves. */
static void test_key_pairs(void **state)
{
	static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
					0x3d, 0x03, 0x01, 0x07 };
	static const uint8_t p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
					0x22 };
	static const uint8_t ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint64_t sa = A->s[0], sb = B->s[0];
	uint64_t types[8] = { 0 }, handles[8], caps[8], storage[8] = { 0 };
	uint64_t results[8], newh[8];
	struct bytes v1, v2;
	struct neg n;
	struct xres x;

	create_pair(A, sa, CKM_EC_KEY_PAIR_GEN, p256, sizeof(p256), &handles[0],
		    &handles[1]);
	create_pair(A, sa, CKM_EC_KEY_PAIR_GEN, p384, sizeof(p384), &handles[2],
		    &handles[3]);
	create_pair(A, sa, CKM_EC_EDWARDS_KEY_PAIR_GEN, ed25519,
		    sizeof(ed25519), &handles[4], &handles[5]);
	create_pair(A, sa, CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0, &handles[6],
		    &handles[7]);
	for (int i = 0; i < 8; i++)
		caps[i] = 4096;
	establish(A, sa, B, sb, &n);
	assert_int_equal(extract(A, sa, &n.sid, NULL, 0, 8, types, handles,
				 caps, &x), CKR_OK);
	for (int i = 0; i < 8; i++)
		assert_int_equal(x.results[i], CKR_OK);
	assert_int_equal(insert(B, sb, &n.sid, CKF_CONTINUE_ON_ERR, 8, storage,
				types, x.lens, x.blobs, x.blobs_len, results,
				newh), CKR_OK);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(results[i], CKR_OK);
		assert_int_equal(get_attr(A, sa, handles[i], CKA_ID, &v1),
				 CKR_OK);
		assert_int_equal(get_attr(B, sb, newh[i], CKA_ID, &v2), CKR_OK);
		assert_int_equal(v1.n, v2.n);
		assert_int_equal(get_attr(B, sb, newh[i], CKA_CLASS, &v2),
				 CKR_OK);
		assert_int_equal(v2.p[0], i % 2 ? CKO_PRIVATE_KEY
						: CKO_PUBLIC_KEY);
	}
	/* The cloned private key signs for the original public key. */
	assert_int_equal(ecdsa(B, sb, newh[1], true, aes_value_hash, &v2),
			 CKR_OK);
	assert_int_equal(ecdsa(A, sa, handles[0], false, aes_value_hash, &v2),
			 CKR_OK);
	assert_int_equal(ecdsa(B, sb, newh[3], true, aes_value_hash, &v2),
			 CKR_OK);
	assert_int_equal(ecdsa(A, sa, handles[2], false, aes_value_hash, &v2),
			 CKR_OK);
	assert_int_equal(get_attr(B, sb, newh[1], CKA_VALUE, &v2),
			 CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(get_attr(B, sb, newh[1], CKA_NEVER_EXTRACTABLE, &v2),
			 CKR_OK);
	assert_int_equal(v2.p[0], CK_TRUE);
	assert_int_equal(close_sid(A, sa, &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, sb, &n.sid), CKR_OK);
}

/* ---- tests: forged messages ------------------------------------------- */

/* m1 made by the test with A's device identity and its own key share. */
static void forge_m1(struct fw_card *card, struct fw_eph **eph, bool bad_point,
		     struct bytes *m1)
{
	uint64_t one = 1, durs[4] = { 300, 900, 1800, 3600 }, sigs[8];
	struct phsm_writer w = { 0 }, shares = { 0 };
	uint8_t pub[FW_CLN_POINT_MAX], nonce[32] = { 7 };
	size_t pub_len, ns = fw_id_sig_algs(sigs, 8);

	assert_int_equal(fw_eph_new(FW_CLN_SUITE_P256, eph, pub, &pub_len),
			 CKR_OK);
	if (bad_point)
		pub[pub_len - 1] ^= 0x55;	/* off the curve */
	nonce[1] = (uint8_t)rand();
	phsm_put_u64(&shares, FW_CLN_SUITE_P256);
	phsm_put_bytes(&shares, pub, pub_len);
	phsm_put_u64(&w, FW_CLN_MAGIC);
	phsm_put_u64(&w, 1);
	phsm_put_u64(&w, FW_CLN_M1);
	phsm_put_bytes(&w, nonce, sizeof(nonce));
	phsm_put_u64(&w, fw_clock(card));
	phsm_put_u64_array(&w, &one, 1);
	phsm_put_u64_array(&w, &one, 1);
	phsm_put_u64_array(&w, &one, 1);
	phsm_put_u64_array(&w, durs, 4);
	phsm_put_u64_array(&w, sigs, ns);
	fw_id_put_root_ids(card, &w);
	phsm_put_bytes(&w, shares.data, shares.len);
	fw_id_put_chain(card, &w);
	/* Signed: everything before the signature field, sig_alg included. */
	assert_int_equal(fw_id_sign_msg(card, "phsm cpv4 v1 m1", NULL, 0, &w),
			 CKR_OK);
	assert_false(w.failed);
	memcpy(m1->p, w.data, w.len);
	m1->n = w.len;
	phsm_writer_free(&w);
	phsm_writer_free(&shares);
}

static void test_forged(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint8_t z[FW_CLN_HASH_MAX], salt[32], hs[32], k_m2[32], k_m3[32];
	uint8_t ids[64], fin[32] = { 1 }, zero[12] = { 0 }, ct[256];
	struct phsm_writer w = { 0 }, in = { 0 };
	struct phsm_reader r;
	const uint8_t *eph_r = NULL, *ext = NULL, *p;
	size_t z_len, eph_len = 0, ext_len = 0, ext_prefix = 0, n;
	struct fw_eph *eph;
	struct bytes m1, m3, sid;
	struct cont o;

	/* A key share off the curve, in an m1 signed by a genuine card. */
	forge_m1(A->card, &eph, true, &m1);
	fw_eph_free(eph);
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o),
			 CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY);
	/* A genuine one; then m3 with R's domain ID and a wrong MAC. */
	forge_m1(A->card, &eph, false, &m1);
	assert_int_equal(cont_full(B, B->s[0], 1, &m1, NULL, &o), CKR_OK);
	phsm_reader_init(&r, o.out.p, o.out.n);
	for (int i = 0; i < 15; i++) {		/* up to eph_r */
		if (i == 3 || i == 4 || i == 5)
			phsm_get_bytes(&r, &n);
		else if (i == 11)
			eph_r = phsm_get_bytes(&r, &eph_len);
		else if (i == 12)
			phsm_get_bytes(&r, &n);		/* chain */
		else if (i == 14)
			phsm_get_bytes(&r, &n);		/* sig */
		else
			phsm_get_u64(&r);
	}
	ext_prefix = o.out.n - r.left;
	ext = phsm_get_bytes(&r, &ext_len);
	assert_true(phsm_reader_done(&r));
	assert_int_equal(fw_eph_derive(eph, eph_r, eph_len, z, &z_len), CKR_OK);
	fw_eph_free(eph);
	{
		const uint8_t *parts[2] = { m1.p, o.out.p };
		size_t lens[2] = { m1.n, ext_prefix };

		assert_true(fw_kdf_hash(FW_CLN_KDF_SHA256, parts, lens, 2, salt));
	}
	assert_true(fw_hkdf_extract(FW_CLN_KDF_SHA256, salt, 32, z, z_len, hs));
	assert_true(fw_hkdf_expand(FW_CLN_KDF_SHA256, hs,
				   (const uint8_t *)"phsm cpv4 v1 m2", 15, k_m2,
				   32));
	assert_true(fw_hkdf_expand(FW_CLN_KDF_SHA256, hs,
				   (const uint8_t *)"phsm cpv4 v1 m3", 15, k_m3,
				   32));
	assert_true(ext_len - 16 <= sizeof(ct));
	assert_true(fw_gcm_open(k_m2, zero, o.out.p, ext_prefix, ext, ext_len,
				ct));
	phsm_reader_init(&r, ct, ext_len - 16);
	p = phsm_get_bytes(&r, &n);
	assert_true(phsm_reader_done(&r));
	assert_int_equal(n, FW_CLN_DOMAIN_ID_LEN);	/* B has one domain */
	memcpy(ids, p, n);

	phsm_put_u64(&w, FW_CLN_MAGIC);
	phsm_put_u64(&w, 1);
	phsm_put_u64(&w, FW_CLN_M3);
	phsm_put_bytes(&w, o.sid.p, o.sid.n);
	phsm_put_u64(&w, fw_clock(A->card));
	phsm_put_bytes(&in, ids, FW_CLN_DOMAIN_ID_LEN);
	phsm_put_bytes(&in, fin, sizeof(fin));
	assert_true(fw_gcm_seal(k_m3, zero, w.data, w.len, in.data, in.len, ct));
	phsm_put_bytes(&w, ct, in.len + 16);
	memcpy(m3.p, w.data, w.len);
	m3.n = w.len;
	phsm_writer_free(&w);
	phsm_writer_free(&in);
	sid = o.sid;
	assert_int_equal(cont_full(B, B->s[0], 3, &m3, &sid, &o),
			 CKR_SESSION_NEGOTIATION_NO_PSK);
	/* The failed negotiation is gone. */
	assert_int_equal(cont_full(B, B->s[0], 3, &m3, &sid, &o),
			 CKR_SESSION_NEGOTIATION_INVALID);
}

/* ---- tests: robustness ------------------------------------------------ */

/*
 * Mutation @k of @in at byte @i: a bit flipped, the byte set to 0xff
 * (lengths and counts at their largest), or the message cut short there.
 */
static bool mutate(const struct bytes *in, size_t i, int k, struct bytes *out)
{
	if (i >= in->n || (k == 1 && in->p[i] == 0xff))
		return false;
	*out = *in;
	if (k == 0)
		out->p[i] ^= 0x80;
	else if (k == 1)
		out->p[i] = 0xff;
	else
		out->n = i;
	return true;
}

/* Forget every record of partition 0 on both cards. */
static void drop_all(struct fx *f)
{
	fw_clone_drop_partition(f->a.card, 0);
	fw_clone_drop_partition(f->b.card, 0);
}

/* Every message altered at its receiver is refused; nothing crashes. */
static void test_mutated_messages(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint64_t sa = A->s[0], sb = B->s[0], len;
	uint64_t aes = create_aes(A, sa, false), type = 0, cap = 4096;
	struct bytes bad, m1;
	size_t before = count_objects(B, sb);
	struct cont o;
	struct xres x;
	struct neg n;

	negotiate(A, sa, B, sb, &n);
	for (size_t i = 0; i < n.m1.n; i += 3)
		for (int k = 0; k < 3; k++)
			if (mutate(&n.m1, i, k, &bad))
				assert_int_not_equal(cont_full(B, sb, 1, &bad,
							       NULL, &o), CKR_OK);
	drop_all(f);
	/* m2, m3 and m4, each on a negotiation of its own. */
	for (size_t i = 0; i < n.m2.n; i += 7) {
		for (int k = 0; k < 3; k++) {
			assert_int_equal(start(A, sa, sizeof(m1.p), &m1, &len),
					 CKR_OK);
			assert_int_equal(cont_full(B, sb, 1, &m1, NULL, &o),
					 CKR_OK);
			if (mutate(&o.out, i, k, &bad))
				assert_int_not_equal(cont_full(A, sa, 2, &bad,
							       NULL, &o), CKR_OK);
			drop_all(f);
		}
	}
	for (int m = 3; m <= 4; m++) {
		for (size_t i = 0; i < 200; i += 3) {
			for (int k = 0; k < 3; k++) {
				negotiate(A, sa, B, sb, &n);
				if (mutate(m == 3 ? &n.m3 : &n.m4, i, k, &bad))
					assert_int_not_equal(
						cont_full(m == 3 ? B : A,
							  m == 3 ? sb : sa, m,
							  &bad, &n.sid, &o),
						CKR_OK);
				drop_all(f);
			}
		}
	}
	/* A blob: altered, set to 0xff, cut short. */
	establish(A, sa, B, sb, &n);
	assert_int_equal(extract(A, sa, &n.sid, NULL, 0, 1, &type, &aes, &cap,
				 &x), CKR_OK);
	memcpy(m1.p, x.blobs, x.lens[0]);
	m1.n = x.lens[0];
	for (size_t i = 0; i < m1.n; i++)
		for (int k = 1; k < 3; k++)
			if (mutate(&m1, i, k, &bad))
				assert_int_not_equal(insert1(B, sb, &n.sid, 0,
							     bad.p, bad.n, NULL),
						     CKR_OK);
	assert_int_equal(count_objects(B, sb), before);
	assert_int_equal(insert1(B, sb, &n.sid, 0, m1.p, m1.n, NULL), CKR_OK);
	drop_all(f);
}

/* ---- tests: time ------------------------------------------------------ */

static void test_expiry(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint64_t sa = A->s[0], sb = B->s[0], s2 = open_user_session(A, 0);
	uint64_t aes = create_aes(A, sa, false), type = 0, cap = 4096, len;
	struct bytes m1_old, m2_1, m2_2, sid1, sid2;
	struct neg est;
	struct cont o;
	struct xres x;

	A->card->clone_cfg.negotiation_timeout = 2;
	B->card->clone_cfg.negotiation_timeout = 2;
	A->card->clone_cfg.session_lifetime = 2;
	B->card->clone_cfg.session_lifetime = 2;
	/* An established session (duration 2), two negotiations at I's
	 * step 2, an m1 to be answered late. */
	establish(A, sa, B, sb, &est);
	assert_int_equal(start(A, sa, sizeof(m1_old.p), &m1_old, &len), CKR_OK);
	assert_int_equal(cont_full(B, sb, 1, &m1_old, NULL, &o), CKR_OK);
	m2_1 = o.out;
	sid1 = o.sid;
	assert_int_equal(start(A, s2, sizeof(m1_old.p), &m1_old, &len), CKR_OK);
	assert_int_equal(cont_full(B, sb, 1, &m1_old, NULL, &o), CKR_OK);
	m2_2 = o.out;
	sid2 = o.sid;
	assert_int_equal(start(A, sa, sizeof(m1_old.p), &m1_old, &len), CKR_OK);
	sleep(3);

	assert_int_equal(cont_full(A, sa, 2, &m2_1, &sid1, &o),
			 CKR_SESSION_NEGOTIATION_EXPIRED);
	assert_int_equal(cont_full(A, sa, 2, &m2_1, &sid1, &o),
			 CKR_SESSION_NEGOTIATION_NOT_STARTED);
	/* Cleaned up by the call before: no EXPIRED first. */
	assert_int_equal(cont_full(A, s2, 2, &m2_2, &sid2, &o),
			 CKR_SESSION_NEGOTIATION_NOT_STARTED);
	/* The established session, on B (nothing swept there yet). */
	assert_int_equal(extract(B, sb, &est.sid, NULL, 0, 1, &type, &aes, &cap,
				 &x), CKR_SESSION_ID_EXPIRED);
	assert_int_equal(extract(B, sb, &est.sid, NULL, 0, 1, &type, &aes, &cap,
				 &x), CKR_SESSION_ID_INVALID);
	/* R's negotiation records went with that call. */
	{
		struct phsm_writer w = { 0 };
		struct bytes m3;

		phsm_put_u64(&w, FW_CLN_MAGIC);
		phsm_put_u64(&w, 1);
		phsm_put_u64(&w, FW_CLN_M3);
		memcpy(m3.p, w.data, w.len);
		m3.n = w.len;
		phsm_writer_free(&w);
		assert_int_equal(cont_full(B, sb, 3, &m3, &sid1, &o),
				 CKR_SESSION_NEGOTIATION_NOT_STARTED);
	}
	/* An attestation older than the negotiation timeout. */
	assert_int_equal(cont_full(B, sb, 1, &m1_old, NULL, &o),
			 CKR_ATTESTATION_EXPIRED);
}

static void test_policy(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint64_t sa = A->s[0], sb = B->s[0], len;
	struct phsm_writer w;
	struct bytes m1;
	struct neg n;

	establish(A, sa, B, sb, &n);
	/* CPv4 disabled on B's partition 0 (the value set directly). */
	for (int i = 0; i < FW_NPOLICIES; i++)
		if (fw_policy_types[i] == CK_PHSM_POLICY_CPV4_DISABLED)
			B->card->ext[0].policy[i] = 1;
	assert_int_equal(start(B, sb, Q, &m1, &len), CKR_PROTOCOL_DISABLED);
	/* Close still works. */
	assert_int_equal(close_sid(B, sb, &n.sid), CKR_OK);
	for (int i = 0; i < FW_NPOLICIES; i++)
		if (fw_policy_types[i] == CK_PHSM_POLICY_CPV4_DISABLED)
			B->card->ext[0].policy[i] = 0;
	assert_int_equal(close_sid(A, sa, &n.sid), CKR_OK);
	/* Not logged in as the user. */
	begin(&w, PHSM_OP_LOGOUT);
	phsm_put_u64(&w, A->s[1]);
	assert_int_equal(send_free(A, &w), CKR_OK);
	assert_int_equal(start(A, A->s[1], Q, &m1, &len), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(login(A, A->s[1], CKU_USER, USER_PIN), CKR_OK);
}

/* ---- tests: threads, restart ------------------------------------------ */

struct racer {
	struct card_fx *c;
	uint64_t s;
	const struct bytes *sid;
	const struct xres *x;
	size_t n;
	CK_RV results[MAXN];
};

/* Insert every blob of x, one per request; no asserts in a thread. */
static void *race(void *arg)
{
	struct racer *t = arg;
	size_t off = 0;

	for (size_t i = 0; i < t->n; i++) {
		uint64_t zero = 0, len = t->x->lens[i];
		struct phsm_writer w = { 0 };
		struct phsm_msg m;
		uint8_t *resp = NULL;
		size_t resp_len = 0, k, mark;
		const uint8_t *arr;

		t->results[i] = CKR_GENERAL_ERROR;
		phsm_msg_begin(&w, PHSM_OP_INSERT, 0, 0, 1);
		phsm_put_u64(&w, t->s);
		mark = phsm_put_mech_begin(&w, CKM_CPV4_INSERT);
		phsm_put_bytes(&w, t->sid->p, t->sid->n);
		phsm_put_u64(&w, 0);
		phsm_put_u64_array(&w, &zero, 1);
		phsm_put_u64_array(&w, &zero, 1);
		phsm_put_u64_array(&w, &len, 1);
		phsm_put_bytes(&w, t->x->blobs + off, len);
		phsm_put_mech_end(&w, mark);
		off += len;
		if (phsm_msg_finish(&w, 0, 0) &&
		    !fw_card_handle(t->c->card, t->c->app, w.data, w.len, &resp,
				    &resp_len) &&
		    phsm_msg_parse(resp, resp_len, true, &m) == PHSM_ST_OK &&
		    m.rv == CKR_OK &&
		    (arr = phsm_get_u64_array(&m.payload, &k)) && k == 1)
			t->results[i] = phsm_array_u64(arr, 0);
		phsm_writer_free(&w);
		free(resp);
	}
	return NULL;
}

static void test_concurrent_insert(void **state)
{
	struct fx *f = *state;
	struct card_fx *A = &f->a, *B = &f->b;
	uint64_t sa = A->s[0], aes = create_aes(A, sa, false);
	uint64_t types[MAXN] = { 0 }, handles[MAXN], caps[MAXN];
	struct racer t[2];
	pthread_t th[2];
	struct neg n;
	struct xres x;

	for (int i = 0; i < MAXN; i++) {
		handles[i] = aes;
		caps[i] = 2048;
	}
	establish(A, sa, B, B->s[0], &n);
	assert_int_equal(extract(A, sa, &n.sid, NULL, 0, MAXN, types, handles,
				 caps, &x), CKR_OK);
	for (int i = 0; i < 2; i++) {
		t[i] = (struct racer){ .c = B, .s = open_user_session(B, 0),
				       .sid = &n.sid, .x = &x, .n = MAXN };
		assert_int_equal(pthread_create(&th[i], NULL, race, &t[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	/* Each blob went in exactly once. */
	for (int i = 0; i < MAXN; i++) {
		assert_true(t[0].results[i] == CKR_OK ||
			    t[0].results[i] == CKR_DATA_INVALID);
		assert_true(t[1].results[i] == CKR_OK ||
			    t[1].results[i] == CKR_DATA_INVALID);
		assert_int_not_equal(t[0].results[i], t[1].results[i]);
	}
	assert_int_equal(close_sid(A, sa, &n.sid), CKR_OK);
	assert_int_equal(close_sid(B, B->s[0], &n.sid), CKR_OK);
}

/* The SMK survives a restart and changes with C_InitToken. */
static void test_smk(void **state)
{
	struct fx *f = *state;
	struct card_fx c = { 0 };
	uint8_t smk[FW_HASH_LEN], zero[FW_HASH_LEN] = { 0 };

	card_open(f, &c, "c", 256);
	memcpy(smk, c.card->ext[1].smk, sizeof(smk));
	assert_memory_not_equal(smk, zero, sizeof(smk));
	assert_memory_not_equal(smk, c.card->ext[0].smk, sizeof(smk));
	fw_card_close(c.card);
	card_open(f, &c, "c", 256);
	assert_memory_equal(smk, c.card->ext[1].smk, sizeof(smk));
	token(&c, 1, NULL);
	assert_memory_not_equal(smk, c.card->ext[1].smk, sizeof(smk));
	memcpy(smk, c.card->ext[1].smk, sizeof(smk));
	fw_card_close(c.card);
	card_open(f, &c, "c", 256);
	assert_memory_equal(smk, c.card->ext[1].smk, sizeof(smk));
	fw_card_close(c.card);
}

/* No identity; an identity from another manufacturer. */
static void test_roots(void **state)
{
	struct fx *f = *state;
	struct fw_card_config cfg = { .partitions = 1, .pin_iterations = 1 };
	char mfg2[320], err[256] = "";
	struct card_fx d = { 0 }, e = { 0 };
	struct bytes m1;
	struct cont o;
	uint64_t len;

	snprintf(d.dir, sizeof(d.dir), "%s/d", f->base);
	cfg.state_dir = d.dir;
	assert_int_equal(fw_card_open(&cfg, &d.card, err, sizeof(err)), 0);
	d.app = fw_card_app_open(d.card);
	token(&d, 0, "domain-one");
	assert_int_equal(start(&d, d.s[0], Q, &m1, &len),
			 CKR_SESSION_NEGOTIATION_NO_ROOTS);
	assert_int_equal(start(&f->a, f->a.s[0], sizeof(m1.p), &m1, &len),
			 CKR_OK);
	assert_int_equal(cont_full(&d, d.s[0], 1, &m1, NULL, &o),
			 CKR_SESSION_NEGOTIATION_NO_ROOTS);
	fw_card_close(d.card);

	snprintf(mfg2, sizeof(mfg2), "%s/mfg2", f->base);
	assert_int_equal(fw_mfg_init(mfg2, err, sizeof(err)), 0);
	snprintf(e.dir, sizeof(e.dir), "%s/e", f->base);
	cfg.state_dir = e.dir;
	cfg.mfg_dir = mfg2;
	assert_int_equal(fw_card_open(&cfg, &e.card, err, sizeof(err)), 0);
	e.app = fw_card_app_open(e.card);
	token(&e, 0, "domain-one");
	assert_int_equal(cont_full(&e, e.s[0], 1, &m1, NULL, &o),
			 CKR_SESSION_NEGOTIATION_NO_ROOTS);
	assert_int_equal(start(&e, e.s[0], sizeof(m1.p), &m1, &len), CKR_OK);
	assert_int_equal(cont_full(&f->b, f->b.s[0], 1, &m1, NULL, &o),
			 CKR_SESSION_NEGOTIATION_NO_ROOTS);
	fw_card_close(e.card);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_negotiate, test_setup),
		cmocka_unit_test_setup(test_negotiate_errors, test_setup),
		cmocka_unit_test_setup(test_extract_insert, test_setup),
		cmocka_unit_test_setup(test_tampered_foreign, test_setup),
		cmocka_unit_test_setup(test_batch_one_commit, test_setup),
		cmocka_unit_test_setup(test_key_pairs, test_setup),
		cmocka_unit_test_setup(test_step4_by_extract, test_setup),
		cmocka_unit_test_setup(test_forged, test_setup),
		cmocka_unit_test_setup(test_mutated_messages, test_setup),
		cmocka_unit_test_setup(test_policy, test_setup),
		cmocka_unit_test_setup(test_concurrent_insert, test_setup),
		cmocka_unit_test_setup(test_smk, test_setup),
		cmocka_unit_test_setup(test_roots, test_setup),
		cmocka_unit_test_setup(test_expiry, test_setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
