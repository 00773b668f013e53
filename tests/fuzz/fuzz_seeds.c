// SPDX-License-Identifier: MIT
/*
 * Write the seed corpus of the fuzz-decoder target: well-formed requests
 * made with the protocol codec, alone and in the sequences a real client
 * sends (initialise a token, log in, make keys, use them).  Generated at
 * run time so that no binary files live in the repository.
 *
 * Usage: fuzz-seeds DIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <phsm/cryptoki_ca.h>

#include "uapi/codec/phsm_codec.h"

/*
 * The first handles a fresh card hands out (the fuzz target runs every
 * input on a fresh card): sessions and objects share one counter, so after
 * the first session (1) the first object made is 2, a pair is 2 and 3.
 */
#define SESS	1
#define KEY	2
#define PUB	2
#define PRIV	3

static const char so_pin[] = "87654321";
static const char user_pin[] = "12345678";

/* One seed file: a stream of requests. */
struct seed {
	uint8_t *data;
	size_t len;
	unsigned int tag;
	int failed;
};

static void append(struct seed *s, struct phsm_writer *w)
{
	uint8_t *d;

	if (!phsm_msg_finish(w, 0, 0)) {
		s->failed = 1;
		goto out;
	}
	d = realloc(s->data, s->len + w->len);
	if (!d) {
		s->failed = 1;
		goto out;
	}
	memcpy(d + s->len, w->data, w->len);
	s->data = d;
	s->len += w->len;
out:
	phsm_writer_free(w);
}

static void begin(struct seed *s, struct phsm_writer *w, uint16_t op)
{
	memset(w, 0, sizeof(*w));
	phsm_msg_begin(w, op, 0, 0, ++s->tag);
}

static void attr_ulong(struct phsm_writer *w, uint64_t type, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	phsm_put_attr(w, type, PHSM_ATTR_F_VALUE, 8, b);
}

static void attr_bool(struct phsm_writer *w, uint64_t type, int v)
{
	uint8_t b = v ? CK_TRUE : CK_FALSE;

	phsm_put_attr(w, type, PHSM_ATTR_F_VALUE, 1, &b);
}

static void attr_str(struct phsm_writer *w, uint64_t type, const char *v)
{
	phsm_put_attr(w, type, PHSM_ATTR_F_VALUE, (uint32_t)strlen(v), v);
}

static void req_part(struct seed *s, uint16_t op, uint64_t part)
{
	struct phsm_writer w;

	begin(s, &w, op);
	phsm_put_u64(&w, part);
	append(s, &w);
}

static void req_card_info(struct seed *s)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_GET_CARD_INFO);
	append(s, &w);
}

static void req_mech_info(struct seed *s, uint64_t mech)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_GET_MECH_INFO);
	phsm_put_u64(&w, 0);
	phsm_put_u64(&w, mech);
	append(s, &w);
}

static void req_init_token(struct seed *s)
{
	struct phsm_writer w;
	char label[PHSM_LABEL_LEN];

	memset(label, ' ', sizeof(label));
	memcpy(label, "fuzz", 4);
	begin(s, &w, PHSM_OP_INIT_TOKEN);
	phsm_put_u64(&w, 0);
	phsm_put_bytes(&w, so_pin, strlen(so_pin));
	phsm_put_bytes(&w, label, sizeof(label));
	append(s, &w);
}

static void req_open_session(struct seed *s)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_OPEN_SESSION);
	phsm_put_u64(&w, 0);
	phsm_put_u64(&w, CKF_SERIAL_SESSION | CKF_RW_SESSION);
	append(s, &w);
}

static void req_sess(struct seed *s, uint16_t op)
{
	struct phsm_writer w;

	begin(s, &w, op);
	phsm_put_u64(&w, SESS);
	append(s, &w);
}

static void req_login(struct seed *s, uint64_t user, const char *pin)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_LOGIN);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, user);
	phsm_put_bytes(&w, pin, strlen(pin));
	phsm_put_bytes(&w, NULL, 0);
	append(s, &w);
}

static void req_init_pin(struct seed *s)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_INIT_PIN);
	phsm_put_u64(&w, SESS);
	phsm_put_bytes(&w, user_pin, strlen(user_pin));
	append(s, &w);
}

static void req_set_pin(struct seed *s)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_SET_PIN);
	phsm_put_u64(&w, SESS);
	phsm_put_bytes(&w, user_pin, strlen(user_pin));
	phsm_put_bytes(&w, user_pin, strlen(user_pin));
	append(s, &w);
}

static void req_gen_aes(struct seed *s)
{
	struct phsm_writer w;
	size_t m;

	begin(s, &w, PHSM_OP_GENERATE_KEY);
	phsm_put_u64(&w, SESS);
	m = phsm_put_mech_begin(&w, CKM_AES_KEY_GEN);
	phsm_put_mech_end(&w, m);
	m = phsm_put_attrs_begin(&w);
	attr_ulong(&w, CKA_VALUE_LEN, 32);
	attr_bool(&w, CKA_TOKEN, 1);
	attr_bool(&w, CKA_ENCRYPT, 1);
	attr_bool(&w, CKA_DECRYPT, 1);
	attr_str(&w, CKA_LABEL, "aes");
	phsm_put_attrs_end(&w, m);
	append(s, &w);
}

static void req_gen_pair(struct seed *s, int rsa)
{
	/* DER of the OID prime256v1 */
	static const uint8_t p256[] = {
		0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
	};
	struct phsm_writer w;
	size_t m;

	begin(s, &w, PHSM_OP_GENERATE_KEY_PAIR);
	phsm_put_u64(&w, SESS);
	m = phsm_put_mech_begin(&w, rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN :
					   CKM_EC_KEY_PAIR_GEN);
	phsm_put_mech_end(&w, m);
	m = phsm_put_attrs_begin(&w);
	if (rsa)
		attr_ulong(&w, CKA_MODULUS_BITS, 2048);
	else
		phsm_put_attr(&w, CKA_EC_PARAMS, PHSM_ATTR_F_VALUE,
			      sizeof(p256), p256);
	attr_bool(&w, CKA_VERIFY, 1);
	attr_str(&w, CKA_LABEL, "pair");
	phsm_put_attrs_end(&w, m);
	m = phsm_put_attrs_begin(&w);
	attr_bool(&w, CKA_SIGN, 1);
	attr_bool(&w, CKA_SENSITIVE, 1);
	attr_bool(&w, CKA_PRIVATE, 1);
	attr_str(&w, CKA_LABEL, "pair");
	phsm_put_attrs_end(&w, m);
	append(s, &w);
}

static void req_op_init(struct seed *s, uint64_t kind, uint64_t mech,
			uint64_t key, int gcm)
{
	static const uint8_t iv[16] = { 1, 2, 3 };
	struct phsm_writer w;
	size_t m;

	begin(s, &w, PHSM_OP_OP_INIT);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, kind);
	m = phsm_put_mech_begin(&w, mech);
	if (gcm) {
		phsm_put_bytes(&w, iv, 12);
		phsm_put_u64(&w, 96);
		phsm_put_bytes(&w, "aad", 3);
		phsm_put_u64(&w, 128);
	} else if (mech == CKM_AES_CBC_PAD) {
		phsm_put_bytes(&w, iv, 16);
	}
	phsm_put_mech_end(&w, m);
	phsm_put_u64(&w, key);
	append(s, &w);
}

static void req_oneshot(struct seed *s, uint64_t kind, uint64_t outcap)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_OP_ONESHOT);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, kind);
	phsm_put_bytes(&w, "the quick brown fox", 19);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, outcap);
	append(s, &w);
}

static void req_update_final(struct seed *s, uint64_t kind)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_OP_UPDATE);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, kind);
	phsm_put_bytes(&w, "0123456789abcdef0123", 20);
	phsm_put_u64(&w, 64);
	append(s, &w);
	begin(s, &w, PHSM_OP_OP_FINAL);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, kind);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, 64);
	append(s, &w);
}

static void req_create_data(struct seed *s)
{
	struct phsm_writer w;
	size_t m;

	begin(s, &w, PHSM_OP_CREATE_OBJECT);
	phsm_put_u64(&w, SESS);
	m = phsm_put_attrs_begin(&w);
	attr_ulong(&w, CKA_CLASS, CKO_DATA);
	attr_bool(&w, CKA_TOKEN, 1);
	attr_str(&w, CKA_LABEL, "data");
	attr_str(&w, CKA_VALUE, "some bytes");
	phsm_put_attrs_end(&w, m);
	append(s, &w);
}

static void req_find(struct seed *s)
{
	struct phsm_writer w;
	size_t m;

	begin(s, &w, PHSM_OP_FIND_INIT);
	phsm_put_u64(&w, SESS);
	m = phsm_put_attrs_begin(&w);
	attr_str(&w, CKA_LABEL, "data");
	phsm_put_attrs_end(&w, m);
	append(s, &w);
	begin(s, &w, PHSM_OP_FIND);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, 16);
	append(s, &w);
	req_sess(s, PHSM_OP_FIND_FINAL);
}

static void req_get_attrs(struct seed *s, uint64_t obj)
{
	struct phsm_writer w;
	size_t m;

	begin(s, &w, PHSM_OP_GET_ATTRIBUTE_VALUE);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, obj);
	m = phsm_put_attrs_begin(&w);
	phsm_put_attr(&w, CKA_CLASS, 0, 8, NULL);
	phsm_put_attr(&w, CKA_LABEL, PHSM_ATTR_F_QUERY, 0, NULL);
	phsm_put_attr(&w, CKA_VALUE, 0, 4, NULL);
	phsm_put_attrs_end(&w, m);
	append(s, &w);
}

static void req_set_attrs(struct seed *s, uint64_t obj)
{
	struct phsm_writer w;
	size_t m;

	begin(s, &w, PHSM_OP_SET_ATTRIBUTE_VALUE);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, obj);
	m = phsm_put_attrs_begin(&w);
	attr_str(&w, CKA_LABEL, "renamed");
	phsm_put_attrs_end(&w, m);
	append(s, &w);
}

static void req_obj(struct seed *s, uint16_t op, uint64_t obj)
{
	struct phsm_writer w;

	begin(s, &w, op);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, obj);
	append(s, &w);
}

static void req_random(struct seed *s)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_SEED_RANDOM);
	phsm_put_u64(&w, SESS);
	phsm_put_bytes(&w, "seed", 4);
	append(s, &w);
	begin(s, &w, PHSM_OP_GENERATE_RANDOM);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, 32);
	append(s, &w);
}

static void req_wrap(struct seed *s)
{
	struct phsm_writer w;
	size_t m;

	begin(s, &w, PHSM_OP_WRAP_KEY);
	phsm_put_u64(&w, SESS);
	m = phsm_put_mech_begin(&w, CKM_AES_KEY_WRAP);
	phsm_put_mech_end(&w, m);
	phsm_put_u64(&w, KEY);
	phsm_put_u64(&w, KEY);
	phsm_put_u64(&w, PHSM_OUT_QUERY);
	append(s, &w);
}

static void req_msg_gcm(struct seed *s)
{
	static const uint8_t iv[12] = { 9 };
	struct phsm_writer w, p;
	size_t m;

	begin(s, &w, PHSM_OP_MSG_INIT);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, PHSM_OPK_ENCRYPT);
	m = phsm_put_mech_begin(&w, CKM_AES_GCM);
	phsm_put_mech_end(&w, m);
	phsm_put_u64(&w, KEY);
	append(s, &w);

	/* The per-message parameter is itself a field sequence. */
	memset(&p, 0, sizeof(p));
	phsm_msg_begin(&p, 0, 0, 0, 0);
	phsm_put_bytes(&p, iv, sizeof(iv));
	phsm_put_u64(&p, 0);
	phsm_put_u64(&p, 0);
	phsm_put_bytes(&p, NULL, 0);
	phsm_put_u64(&p, 128);
	begin(s, &w, PHSM_OP_MSG_ONESHOT);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, PHSM_OPK_ENCRYPT);
	if (!p.failed)
		phsm_put_bytes(&w, p.data + sizeof(struct phsm_msg_hdr),
			       p.len - sizeof(struct phsm_msg_hdr));
	phsm_writer_free(&p);
	phsm_put_bytes(&w, "assoc", 5);
	phsm_put_bytes(&w, "plaintext", 9);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, 64);
	append(s, &w);
	begin(s, &w, PHSM_OP_MSG_FINAL);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, PHSM_OPK_ENCRYPT);
	append(s, &w);
}

/* ---- cloning (Documentation/phsm/cloning.rst) ------------------------
 *
 * The fuzzed card has no identity, so the cards' own step messages cannot
 * be part of a seed; these are made-up messages of the right shape (the
 * common prefix, then plausible fields), for the decoders to chew on.
 */

#define CLN_MAGIC	0x314e4c434d534850ull

static const uint8_t sid16[16] = "fuzz-session-id";

/* A field sequence, outside any message. */
static void cln_prefix(struct phsm_writer *w, uint64_t type)
{
	memset(w, 0, sizeof(*w));
	phsm_put_u64(w, CLN_MAGIC);
	phsm_put_u64(w, 1);
	phsm_put_u64(w, type);
}

/* A chain: root ID and a few bytes where the certificate would be. */
static void cln_chain(struct phsm_writer *w)
{
	static const uint8_t root[32] = { 0xaa }, cert[64] = { 0x30, 0x3e };
	struct phsm_writer c = { 0 };

	phsm_put_bytes(&c, root, sizeof(root));
	phsm_put_bytes(&c, cert, sizeof(cert));
	phsm_put_bytes(w, c.data, c.len);
	phsm_writer_free(&c);
}

static void cln_m1(struct phsm_writer *w)
{
	static const uint64_t suites[] = { 2, 1 }, kdfs[] = { 2, 1 },
		encodings[] = { 1 }, durations[] = { 300, 900, 1800, 3600 },
		sig_algs[] = { 1, 2 };
	static const uint8_t nonce[32] = { 1 }, root[32] = { 0xaa },
		point[97] = { 4 }, sig[64] = { 5 };
	struct phsm_writer ks = { 0 };

	cln_prefix(w, 1);
	phsm_put_bytes(w, nonce, sizeof(nonce));
	phsm_put_u64(w, 1700000000);
	phsm_put_u64_array(w, suites, 2);
	phsm_put_u64_array(w, kdfs, 2);
	phsm_put_u64_array(w, encodings, 1);
	phsm_put_u64_array(w, durations, 4);
	phsm_put_u64_array(w, sig_algs, 2);
	phsm_put_bytes(w, root, sizeof(root));
	phsm_put_u64(&ks, 2);
	phsm_put_bytes(&ks, point, 97);
	phsm_put_u64(&ks, 1);
	phsm_put_bytes(&ks, point, 65);
	phsm_put_bytes(w, ks.data, ks.len);
	phsm_writer_free(&ks);
	cln_chain(w);
	phsm_put_u64(w, 1);
	phsm_put_bytes(w, sig, sizeof(sig));
}

static void cln_m2(struct phsm_writer *w)
{
	static const uint8_t nonce[32] = { 1 }, point[97] = { 4 },
		sig[64] = { 5 }, ext[48] = { 6 };

	cln_prefix(w, 2);
	phsm_put_bytes(w, sid16, sizeof(sid16));
	phsm_put_bytes(w, nonce, sizeof(nonce));
	phsm_put_bytes(w, nonce, sizeof(nonce));
	phsm_put_u64(w, 1700000001);
	phsm_put_u64(w, 2);
	phsm_put_u64(w, 2);
	phsm_put_u64(w, 1);
	phsm_put_u64(w, 3600);
	phsm_put_bytes(w, point, sizeof(point));
	cln_chain(w);
	phsm_put_u64(w, 1);
	phsm_put_bytes(w, sig, sizeof(sig));
	phsm_put_bytes(w, ext, sizeof(ext));
}

static void cln_m3_m4(struct phsm_writer *w, uint64_t type)
{
	static const uint8_t ext[80] = { 7 };

	cln_prefix(w, type);
	phsm_put_bytes(w, sid16, sizeof(sid16));
	if (type == 3)
		phsm_put_u64(w, 1700000002);
	phsm_put_bytes(w, ext, type == 3 ? sizeof(ext) : 48);
}

static void cln_blob(struct phsm_writer *w, uint64_t type)
{
	static const uint8_t sealed[80] = { 8 };

	cln_prefix(w, type);
	phsm_put_bytes(w, sid16, sizeof(sid16));
	phsm_put_u64(w, 1);
	phsm_put_u64(w, 1);
	phsm_put_u64(w, CK_CRYPTOKI_ELEMENT);
	phsm_put_u64(w, 1);
	phsm_put_bytes(w, sealed, sizeof(sealed));
}

static void req_clone_identity(struct seed *s)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_CLONE_IDENTITY);
	append(s, &w);
}

static void req_migration_start(struct seed *s, uint64_t outcap)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_MIGRATION_START);
	phsm_put_u64(&w, SESS);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, outcap);
	append(s, &w);
}

static void req_migration_continue(struct seed *s, uint64_t step,
				   const struct phsm_writer *msg, int with_sid)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_MIGRATION_CONTINUE);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, step);
	phsm_put_bytes(&w, msg->data, msg->len);
	phsm_put_bytes(&w, sid16, with_sid ? sizeof(sid16) : 0);
	phsm_put_u64(&w, 8192);
	phsm_put_u64(&w, 64);
	append(s, &w);
}

static void req_migration_close(struct seed *s)
{
	struct phsm_writer w;

	begin(s, &w, PHSM_OP_MIGRATION_CLOSE);
	phsm_put_u64(&w, SESS);
	phsm_put_bytes(&w, sid16, sizeof(sid16));
	append(s, &w);
}

static void req_extract(struct seed *s, uint64_t cap)
{
	const uint64_t types[] = { CK_CRYPTOKI_ELEMENT, CK_PARAM_ELEMENT },
		handles[] = { KEY, PHSM_PARAM_SMK }, caps[] = { cap, cap };
	struct phsm_writer w;
	size_t m;

	begin(s, &w, PHSM_OP_EXTRACT);
	phsm_put_u64(&w, SESS);
	m = phsm_put_mech_begin(&w, CKM_CPV4_EXTRACT);
	phsm_put_bytes(&w, sid16, sizeof(sid16));
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, CKF_CONTINUE_ON_ERR);
	phsm_put_u64_array(&w, types, 2);
	phsm_put_u64_array(&w, handles, 2);
	phsm_put_u64_array(&w, caps, 2);
	phsm_put_mech_end(&w, m);
	append(s, &w);
}

static void req_insert(struct seed *s)
{
	const uint64_t zero[2] = { 0, 0 };
	struct phsm_writer w, blob;
	uint64_t lens[2];
	size_t m;

	cln_blob(&blob, 0x11);
	lens[0] = lens[1] = blob.len;
	begin(s, &w, PHSM_OP_INSERT);
	phsm_put_u64(&w, SESS);
	m = phsm_put_mech_begin(&w, CKM_CPV4_INSERT);
	phsm_put_bytes(&w, sid16, sizeof(sid16));
	phsm_put_u64(&w, CKF_CONTINUE_ON_ERR);
	phsm_put_u64_array(&w, zero, 2);
	phsm_put_u64_array(&w, zero, 2);
	phsm_put_u64_array(&w, lens, 2);
	/* The same blob twice, in one BYTES. */
	{
		uint8_t *two = malloc(2 * blob.len);

		if (two) {
			memcpy(two, blob.data, blob.len);
			memcpy(two + blob.len, blob.data, blob.len);
			phsm_put_bytes(&w, two, 2 * blob.len);
			free(two);
		} else {
			s->failed = 1;
		}
	}
	phsm_writer_free(&blob);
	phsm_put_mech_end(&w, m);
	append(s, &w);
}

static void req_cpv3(struct seed *s)
{
	static const uint8_t nonce[32] = { 9 }, point[97] = { 4 },
		sig[96] = { 5 }, hash[48] = { 3 }, confirm[48] = { 2 };
	struct phsm_writer w, msg, blob;

	begin(s, &w, PHSM_OP_CLONE_SOURCE_INIT);
	phsm_put_u64(&w, SESS);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, 0);
	phsm_put_u64(&w, PHSM_OUT_QUERY);
	append(s, &w);

	/* TWC */
	cln_prefix(&msg, 0x31);
	phsm_put_bytes(&msg, nonce, sizeof(nonce));
	phsm_put_u64(&msg, 0);
	phsm_put_bytes(&msg, point, sizeof(point));
	cln_chain(&msg);
	phsm_put_u64(&msg, 2);
	phsm_put_bytes(&msg, sig, sizeof(sig));
	begin(s, &w, PHSM_OP_CLONE_TARGET_INIT);
	phsm_put_u64(&w, SESS);
	phsm_put_bytes(&w, msg.data, msg.len);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, 0);
	phsm_put_u64(&w, 8192);
	append(s, &w);
	phsm_writer_free(&msg);

	/* Part1 */
	cln_prefix(&msg, 0x32);
	phsm_put_bytes(&msg, hash, sizeof(hash));
	phsm_put_bytes(&msg, nonce, sizeof(nonce));
	phsm_put_u64(&msg, 0);
	phsm_put_bytes(&msg, point, sizeof(point));
	cln_chain(&msg);
	phsm_put_u64(&msg, 2);
	phsm_put_bytes(&msg, sig, sizeof(sig));
	phsm_put_bytes(&msg, confirm, sizeof(confirm));
	begin(s, &w, PHSM_OP_CLONE_AS_SOURCE);
	phsm_put_u64(&w, SESS);
	phsm_put_u64(&w, CK_CRYPTOKI_ELEMENT);
	phsm_put_u64(&w, KEY);
	phsm_put_bytes(&w, msg.data, msg.len);
	phsm_put_u64(&w, 0);
	phsm_put_u64(&w, 8192);
	append(s, &w);
	phsm_writer_free(&msg);

	/* Part2 */
	cln_prefix(&msg, 0x33);
	phsm_put_bytes(&msg, sid16, sizeof(sid16));
	phsm_put_bytes(&msg, confirm, sizeof(confirm));
	cln_blob(&blob, 0x34);
	phsm_put_bytes(&msg, blob.data, blob.len);
	phsm_writer_free(&blob);
	begin(s, &w, PHSM_OP_CLONE_AS_TARGET);
	phsm_put_u64(&w, SESS);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_bytes(&w, msg.data, msg.len);
	phsm_put_u64(&w, CK_CRYPTOKI_ELEMENT);
	phsm_put_u64(&w, 0);
	phsm_put_u64(&w, 0);
	append(s, &w);
	phsm_writer_free(&msg);
}

static int write_seed(const char *dir, const char *name, struct seed *s)
{
	char path[4096];
	FILE *f;
	int ok;

	if (s->failed) {
		fprintf(stderr, "fuzz-seeds: %s: encoding failed\n", name);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "fuzz-seeds: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ok = fwrite(s->data, 1, s->len, f) == s->len;
	ok = fclose(f) == 0 && ok;
	free(s->data);
	memset(s, 0, sizeof(*s));
	return ok ? 0 : -1;
}

/* The session set-up most sequences start with. */
static void logged_in(struct seed *s)
{
	req_init_token(s);
	req_open_session(s);
	req_login(s, CKU_SO, so_pin);
	req_init_pin(s);
	req_sess(s, PHSM_OP_LOGOUT);
	req_login(s, CKU_USER, user_pin);
}

int main(int argc, char **argv)
{
	struct seed s = { 0 };
	const char *dir;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];

	req_card_info(&s);
	rc |= write_seed(dir, "card-info", &s);
	req_part(&s, PHSM_OP_GET_TOKEN_INFO, 0);
	rc |= write_seed(dir, "token-info", &s);
	req_part(&s, PHSM_OP_GET_MECH_LIST, 1);
	req_mech_info(&s, CKM_AES_GCM);
	rc |= write_seed(dir, "mechs", &s);
	req_init_token(&s);
	rc |= write_seed(dir, "init-token", &s);
	req_init_token(&s);
	req_open_session(&s);
	req_sess(&s, PHSM_OP_GET_SESSION_INFO);
	req_part(&s, PHSM_OP_CLOSE_ALL_SESSIONS, 0);
	rc |= write_seed(dir, "sessions", &s);

	logged_in(&s);
	req_set_pin(&s);
	req_random(&s);
	rc |= write_seed(dir, "login", &s);

	logged_in(&s);
	req_gen_aes(&s);
	req_op_init(&s, PHSM_OPK_ENCRYPT, CKM_AES_GCM, KEY, 1);
	req_oneshot(&s, PHSM_OPK_ENCRYPT, 64);
	req_op_init(&s, PHSM_OPK_ENCRYPT, CKM_AES_CBC_PAD, KEY, 0);
	req_update_final(&s, PHSM_OPK_ENCRYPT);
	req_wrap(&s);
	rc |= write_seed(dir, "aes", &s);

	logged_in(&s);
	req_gen_aes(&s);
	req_msg_gcm(&s);
	rc |= write_seed(dir, "msg-gcm", &s);

	logged_in(&s);
	req_gen_pair(&s, 0);
	req_op_init(&s, PHSM_OPK_SIGN, CKM_ECDSA, PRIV, 0);
	req_oneshot(&s, PHSM_OPK_SIGN, PHSM_OUT_QUERY);
	req_op_init(&s, PHSM_OPK_DIGEST, CKM_SHA256, 0, 0);
	req_update_final(&s, PHSM_OPK_DIGEST);
	rc |= write_seed(dir, "ec", &s);

	logged_in(&s);
	req_gen_pair(&s, 1);
	req_op_init(&s, PHSM_OPK_SIGN, CKM_SHA256_RSA_PKCS, PRIV, 0);
	req_oneshot(&s, PHSM_OPK_SIGN, 512);
	rc |= write_seed(dir, "rsa", &s);

	logged_in(&s);
	req_create_data(&s);
	req_find(&s);
	req_get_attrs(&s, KEY);
	req_set_attrs(&s, KEY);
	req_obj(&s, PHSM_OP_GET_OBJECT_SIZE, KEY);
	req_obj(&s, PHSM_OP_DESTROY_OBJECT, KEY);
	req_sess(&s, PHSM_OP_CLOSE_SESSION);
	rc |= write_seed(dir, "objects", &s);

	req_clone_identity(&s);
	rc |= write_seed(dir, "clone-identity", &s);

	logged_in(&s);
	req_migration_start(&s, PHSM_OUT_QUERY);
	req_migration_start(&s, 8192);
	{
		struct phsm_writer m;

		cln_m1(&m);
		req_migration_continue(&s, 1, &m, 0);
		phsm_writer_free(&m);
		cln_m2(&m);
		req_migration_continue(&s, 2, &m, 1);
		phsm_writer_free(&m);
		cln_m3_m4(&m, 3);
		req_migration_continue(&s, 3, &m, 1);
		phsm_writer_free(&m);
		cln_m3_m4(&m, 4);
		req_migration_continue(&s, 4, &m, 1);
		phsm_writer_free(&m);
	}
	req_migration_close(&s);
	rc |= write_seed(dir, "clone-negotiation", &s);

	logged_in(&s);
	req_gen_aes(&s);
	req_extract(&s, PHSM_OUT_QUERY);
	req_extract(&s, 4096);
	req_insert(&s);
	rc |= write_seed(dir, "clone-blobs", &s);

	logged_in(&s);
	req_gen_aes(&s);
	req_cpv3(&s);
	rc |= write_seed(dir, "clone-cpv3", &s);

	return rc ? 1 : 0;
}
