// SPDX-License-Identifier: MIT
/*
 * Unit tests of the cloning foundations in the firmware core
 * (Documentation/phsm/cloning.rst): the manufacturer CA, card identities
 * and chain checks (identity.c), the cloning cryptography with known
 * answers (clone_crypto.c), and the CPv3 exchange between two cards
 * driven through fw_card_handle().
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "firmware-sim/core/clone.h"
#include "uapi/codec/phsm_codec.h"
#include <phsm/cryptoki_ca.h>

/* ---- helpers ---------------------------------------------------------- */

struct fx {
	char base[64];		/* everything below lives here */
	char mfg[128];
	char mfg2[128];
	char dir_a[128];
	char dir_b[128];
};

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	struct stat sb;

	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!lstat(path, &sb) && S_ISDIR(sb.st_mode))
			remove_tree(path);
		else
			unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->base, sizeof(f->base), "/tmp/phsm-test-clone.XXXXXX");
	assert_non_null(mkdtemp(f->base));
	snprintf(f->mfg, sizeof(f->mfg), "%s/mfg", f->base);
	snprintf(f->mfg2, sizeof(f->mfg2), "%s/mfg2", f->base);
	snprintf(f->dir_a, sizeof(f->dir_a), "%s/a", f->base);
	snprintf(f->dir_b, sizeof(f->dir_b), "%s/b", f->base);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	remove_tree(f->base);
	free(f);
	return 0;
}

static struct fw_card *open_card(const char *dir, const char *mfg,
				 unsigned int curve)
{
	struct fw_card_config cfg = {
		.state_dir = dir,
		.partitions = 2,
		.pin_iterations = 1,
		.mfg_dir = mfg,
		.device_curve = curve,
	};
	struct fw_card *card = NULL;
	char err[256] = "";

	if (fw_card_open(&cfg, &card, err, sizeof(err)))
		print_error("fw_card_open: %s\n", err);
	assert_non_null(card);
	return card;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = malloc(65536);

	assert_non_null(fp);
	*len = fread(buf, 1, 65536, fp);
	fclose(fp);
	return buf;
}

/* A peer's view of a card: its chain field and a signature over data. */
struct signed_chain {
	struct phsm_writer chain;	/* one BYTES field */
	struct phsm_writer sig;		/* U64 sig_alg, BYTES sig */
	const uint8_t *chain_v;
	size_t chain_len;
	uint64_t alg;
	const uint8_t *sig_v;
	size_t sig_len;
};

static void make_signed(struct fw_card *card, const char *label,
			const uint8_t *data, size_t len, struct signed_chain *s)
{
	struct phsm_reader r;

	memset(s, 0, sizeof(*s));
	fw_id_put_chain(card, &s->chain);
	assert_false(s->chain.failed);
	assert_int_equal(fw_id_sign(card, label, data, len, &s->sig), CKR_OK);
	phsm_reader_init(&r, s->chain.data, s->chain.len);
	s->chain_v = phsm_get_bytes(&r, &s->chain_len);
	assert_true(phsm_reader_done(&r));
	phsm_reader_init(&r, s->sig.data, s->sig.len);
	s->alg = phsm_get_u64(&r);
	s->sig_v = phsm_get_bytes(&r, &s->sig_len);
	assert_true(phsm_reader_done(&r));
}

static void free_signed(struct signed_chain *s)
{
	phsm_writer_free(&s->chain);
	phsm_writer_free(&s->sig);
}

static CK_RV verify(struct fw_card *card, const struct signed_chain *s,
		    const char *label, const uint8_t *data, size_t len)
{
	return fw_id_verify_peer(card, s->chain_v, s->chain_len, s->alg,
				 s->sig_v, s->sig_len, label, NULL, 0, data,
				 len, CKR_SIGNATURE_INVALID);
}

/* ---- requests through fw_card_handle ---------------------------------- */

struct answer {
	uint8_t *buf;
	struct phsm_msg m;
};

static void begin(struct phsm_writer *w, uint16_t op)
{
	memset(w, 0, sizeof(*w));
	assert_true(phsm_msg_begin(w, op, 0, 0, 7));
}

static CK_RV send_req(struct fw_card *card, uint64_t app,
		      struct phsm_writer *w, struct answer *a)
{
	size_t len = 0;

	assert_true(phsm_msg_finish(w, 0, 0));
	assert_int_equal(fw_card_handle(card, app, w->data, w->len, &a->buf,
					&len), 0);
	phsm_writer_free(w);
	assert_int_equal(phsm_msg_parse(a->buf, len, true, &a->m), PHSM_ST_OK);
	assert_int_equal(a->m.status, PHSM_ST_OK);
	return a->m.rv;
}

static void answer_free(struct answer *a)
{
	free(a->buf);
	a->buf = NULL;
}

/* PHSM_OP_CLONE_IDENTITY: copies of the two DER certificates. */
static void get_identity(struct fw_card *card, uint8_t **cert, size_t *cert_len,
			 uint8_t **root, size_t *root_len)
{
	uint64_t app = fw_card_app_open(card);
	struct phsm_writer w;
	struct answer a;
	const uint8_t *p;

	begin(&w, PHSM_OP_CLONE_IDENTITY);
	assert_int_equal(send_req(card, app, &w, &a), CKR_OK);
	p = phsm_get_bytes(&a.m.payload, cert_len);
	*cert = malloc(*cert_len + 1);
	memcpy(*cert, p, *cert_len);
	p = phsm_get_bytes(&a.m.payload, root_len);
	*root = malloc(*root_len + 1);
	memcpy(*root, p, *root_len);
	assert_true(phsm_reader_done(&a.m.payload));
	answer_free(&a);
	fw_card_app_close(card, app);
}

/* ---- manufacturer and identity ---------------------------------------- */

static void test_mfg_init_idempotent(void **state)
{
	struct fx *f = *state;
	char path[256], err[256] = "";
	uint8_t *k1, *k2, *c1, *c2;
	size_t kl1, kl2, cl1, cl2;
	struct stat sb;

	assert_int_equal(fw_mfg_init(f->mfg, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/root.key", f->mfg);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	k1 = read_file(path, &kl1);
	snprintf(path, sizeof(path), "%s/root.pem", f->mfg);
	c1 = read_file(path, &cl1);
	assert_int_equal(fw_mfg_init(f->mfg, err, sizeof(err)), 0);
	c2 = read_file(path, &cl2);
	snprintf(path, sizeof(path), "%s/root.key", f->mfg);
	k2 = read_file(path, &kl2);
	assert_int_equal(kl1, kl2);
	assert_memory_equal(k1, k2, kl1);
	assert_int_equal(cl1, cl2);
	assert_memory_equal(c1, c2, cl1);
	free(k1);
	free(k2);
	free(c1);
	free(c2);

	/* Not a directory we can make; a root.pem that is no certificate. */
	assert_int_equal(fw_mfg_init("/proc/phsm-no/such", err, sizeof(err)), -1);
	assert_int_equal(fw_mfg_init(f->mfg2, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/root.pem", f->mfg2);
	FILE *fp = fopen(path, "w");

	fputs("junk\n", fp);
	fclose(fp);
	assert_int_equal(fw_mfg_init(f->mfg2, err, sizeof(err)), -1);
}

static void test_two_cards_verify(void **state)
{
	struct fx *f = *state;
	static const uint8_t data[] = "some message prefix";
	struct fw_card *a, *b;
	struct signed_chain sa, sb;
	uint64_t algs[4];
	char err[256] = "";

	assert_int_equal(fw_mfg_init(f->mfg, err, sizeof(err)), 0);
	a = open_card(f->dir_a, f->mfg, 0);
	b = open_card(f->dir_b, f->mfg, 384);
	assert_int_equal(fw_id_ready(a), CKR_OK);
	assert_int_equal(fw_id_ready(b), CKR_OK);
	assert_int_equal(fw_id_sig_alg(a), FW_CLN_SIG_P256_SHA256);
	assert_int_equal(fw_id_sig_alg(b), FW_CLN_SIG_P384_SHA384);
	assert_int_equal(fw_id_sig_algs(algs, 4), 2);

	make_signed(a, "phsm test v1", data, sizeof(data), &sa);
	make_signed(b, "phsm test v1", data, sizeof(data), &sb);
	assert_int_equal(sa.sig_len, 64);
	assert_int_equal(sb.sig_len, 96);
	assert_int_equal(verify(b, &sa, "phsm test v1", data, sizeof(data)),
			 CKR_OK);
	assert_int_equal(verify(a, &sb, "phsm test v1", data, sizeof(data)),
			 CKR_OK);
	/* A card verifies itself too (same root). */
	assert_int_equal(verify(a, &sa, "phsm test v1", data, sizeof(data)),
			 CKR_OK);

	/* Other label, other data, altered signature: bad_sig. */
	assert_int_equal(verify(b, &sa, "phsm test v2", data, sizeof(data)),
			 CKR_SIGNATURE_INVALID);
	assert_int_equal(verify(b, &sa, "phsm test v1", data, sizeof(data) - 1),
			 CKR_SIGNATURE_INVALID);
	((uint8_t *)sa.sig_v)[10] ^= 1;
	assert_int_equal(verify(b, &sa, "phsm test v1", data, sizeof(data)),
			 CKR_SIGNATURE_INVALID);
	((uint8_t *)sa.sig_v)[10] ^= 1;
	/* A signature mechanism that does not fit the key, or is unknown. */
	sa.alg = FW_CLN_SIG_P384_SHA384;
	assert_int_equal(verify(b, &sa, "phsm test v1", data, sizeof(data)),
			 CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT);
	sa.alg = 7;
	assert_int_equal(verify(b, &sa, "phsm test v1", data, sizeof(data)),
			 CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT);
	sa.alg = FW_CLN_SIG_P256_SHA256;
	/* Truncated signature. */
	assert_int_equal(fw_id_verify_peer(b, sa.chain_v, sa.chain_len, sa.alg,
					   sa.sig_v, 63, "phsm test v1", NULL,
					   0, data, sizeof(data),
					   CKR_DATA_INVALID),
			 CKR_DATA_INVALID);
	/* What is signed may arrive in two parts: pre || data. */
	assert_int_equal(fw_id_verify_peer(b, sa.chain_v, sa.chain_len, sa.alg,
					   sa.sig_v, sa.sig_len, "phsm test v1",
					   data, 5, data + 5, sizeof(data) - 5,
					   CKR_DATA_INVALID),
			 CKR_OK);

	/* Every byte of the certificate altered in turn: never accepted. */
	for (size_t i = 8 + 32 + 8; i < sa.chain_len; i++) {
		uint8_t *p = (uint8_t *)sa.chain_v + i;
		CK_RV rv;

		*p ^= 0x20;
		rv = verify(b, &sa, "phsm test v1", data, sizeof(data));
		*p ^= 0x20;
		assert_true(rv == CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT ||
			    rv == CKR_SIGNATURE_INVALID);
	}
	/* The root ID altered: a root the card does not know. */
	((uint8_t *)sa.chain_v)[8] ^= 1;
	assert_int_equal(verify(b, &sa, "phsm test v1", data, sizeof(data)),
			 CKR_SESSION_NEGOTIATION_NO_ROOTS);
	((uint8_t *)sa.chain_v)[8] ^= 1;
	/* Garbage and empty chains. */
	assert_int_equal(fw_id_verify_peer(b, data, sizeof(data), sa.alg,
					   sa.sig_v, sa.sig_len, "x", NULL, 0,
					   data, 1, CKR_SIGNATURE_INVALID),
			 CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT);
	assert_int_equal(fw_id_verify_peer(b, NULL, 0, sa.alg, sa.sig_v,
					   sa.sig_len, "x", NULL, 0, data, 1,
					   CKR_SIGNATURE_INVALID),
			 CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT);

	/* Root IDs: each card trusts the other's root (the same one). */
	{
		struct phsm_writer w = { 0 };
		struct phsm_reader r;
		const uint8_t *ids;
		size_t n;

		fw_id_put_root_ids(a, &w);
		phsm_reader_init(&r, w.data, w.len);
		ids = phsm_get_bytes(&r, &n);
		assert_int_equal(n, 32);
		assert_true(fw_id_root_trusted_by(b, ids, n));
		assert_false(fw_id_root_trusted_by(b, ids, n - 1));
		assert_false(fw_id_root_trusted_by(b, NULL, 0));
		phsm_writer_free(&w);
	}
	free_signed(&sa);
	free_signed(&sb);
	fw_card_close(a);
	fw_card_close(b);
}

struct prov_job {
	const char *mfg;
	const char *dir;
	unsigned int curve;
	int rc;
	struct fw_card *card;
};

/* A manufacturer and a card made at once by several "factories". */
static void *provision_job(void *arg)
{
	struct prov_job *j = arg;
	struct fw_card_config cfg = {
		.state_dir = j->dir, .partitions = 1, .pin_iterations = 1,
		.mfg_dir = j->mfg, .device_curve = j->curve,
	};
	char err[256];

	j->rc = fw_mfg_init(j->mfg, err, sizeof(err)) ||
		fw_card_open(&cfg, &j->card, err, sizeof(err));
	return NULL;
}

static void test_parallel_provisioning(void **state)
{
	struct fx *f = *state;
	static const uint8_t data[] = "parallel";
	char dirs[4][160];
	struct prov_job jobs[4];
	pthread_t th[4];
	struct signed_chain sc;

	for (int i = 0; i < 4; i++) {
		snprintf(dirs[i], sizeof(dirs[i]), "%s/p%d", f->base, i);
		jobs[i] = (struct prov_job){ .mfg = f->mfg, .dir = dirs[i],
					     .curve = i % 2 ? 384 : 256 };
		assert_int_equal(pthread_create(&th[i], NULL, provision_job,
						&jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].rc, 0);
	}
	/* One root for all: each card verifies every other. */
	for (int i = 0; i < 4; i++) {
		make_signed(jobs[i].card, "p", data, sizeof(data), &sc);
		for (int k = 0; k < 4; k++)
			assert_int_equal(verify(jobs[k].card, &sc, "p", data,
						sizeof(data)), CKR_OK);
		free_signed(&sc);
	}
	for (int i = 0; i < 4; i++)
		fw_card_close(jobs[i].card);
}

static void test_other_manufacturer(void **state)
{
	struct fx *f = *state;
	static const uint8_t data[] = "m1";
	struct fw_card *a, *b, *c;
	struct signed_chain sa, sb;
	struct phsm_writer w = { 0 };
	struct phsm_reader r;
	const uint8_t *ids;
	char err[256] = "", dir_c[160];
	size_t n;

	assert_int_equal(fw_mfg_init(f->mfg, err, sizeof(err)), 0);
	assert_int_equal(fw_mfg_init(f->mfg2, err, sizeof(err)), 0);
	a = open_card(f->dir_a, f->mfg, 0);
	b = open_card(f->dir_b, f->mfg2, 0);
	make_signed(a, "l", data, sizeof(data), &sa);
	make_signed(b, "l", data, sizeof(data), &sb);
	assert_int_equal(verify(b, &sa, "l", data, sizeof(data)),
			 CKR_SESSION_NEGOTIATION_NO_ROOTS);
	assert_int_equal(verify(a, &sb, "l", data, sizeof(data)),
			 CKR_SESSION_NEGOTIATION_NO_ROOTS);
	fw_id_put_root_ids(a, &w);
	phsm_reader_init(&r, w.data, w.len);
	ids = phsm_get_bytes(&r, &n);
	assert_false(fw_id_root_trusted_by(b, ids, n));
	phsm_writer_free(&w);

	/* A card with no identity at all. */
	snprintf(dir_c, sizeof(dir_c), "%s/c", f->base);
	c = open_card(dir_c, NULL, 0);
	assert_int_equal(fw_id_ready(c), CKR_SESSION_NEGOTIATION_NO_ROOTS);
	assert_int_equal(verify(c, &sa, "l", data, sizeof(data)),
			 CKR_SESSION_NEGOTIATION_NO_ROOTS);
	assert_int_equal(fw_id_sign(c, "l", data, 1, &w),
			 CKR_SESSION_NEGOTIATION_NO_ROOTS);
	phsm_writer_free(&w);
	free_signed(&sa);
	free_signed(&sb);
	fw_card_close(a);
	fw_card_close(b);
	fw_card_close(c);
}

/* Check cert against root with the OpenSSL API and with openssl verify. */
static void check_cert_by_root(const char *base, const char *mfg,
			       const uint8_t *der, size_t len)
{
	const uint8_t *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len), *root;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	char path[256], cmd[768];
	FILE *fp;

	assert_non_null(cert);
	snprintf(path, sizeof(path), "%s/root.pem", mfg);
	fp = fopen(path, "r");
	assert_non_null(fp);
	root = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(root);
	assert_int_equal(X509_STORE_add_cert(st, root), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, cert, NULL), 1);
	assert_int_equal(X509_verify_cert(ctx), 1);

	snprintf(path, sizeof(path), "%s/device.pem", base);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, cert), 1);
	fclose(fp);
	snprintf(cmd, sizeof(cmd),
		 "openssl verify -CAfile %s/root.pem %s >/dev/null 2>&1",
		 mfg, path);
	assert_int_equal(system(cmd), 0);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(root);
	X509_free(cert);
}

static void test_restart_keeps_identity(void **state)
{
	struct fx *f = *state;
	uint8_t *c1, *r1, *c2, *r2;
	size_t cl1, rl1, cl2, rl2;
	struct fw_card *a;
	char err[256] = "";

	assert_int_equal(fw_mfg_init(f->mfg, err, sizeof(err)), 0);
	assert_int_equal(fw_mfg_init(f->mfg2, err, sizeof(err)), 0);
	a = open_card(f->dir_a, f->mfg, 384);
	get_identity(a, &c1, &cl1, &r1, &rl1);
	assert_true(cl1 > 100 && rl1 > 100);
	check_cert_by_root(f->base, f->mfg, c1, cl1);
	fw_card_close(a);

	/* Without --mfg, and with another manufacturer: the same identity. */
	a = open_card(f->dir_a, NULL, 0);
	get_identity(a, &c2, &cl2, &r2, &rl2);
	assert_int_equal(cl1, cl2);
	assert_memory_equal(c1, c2, cl1);
	assert_int_equal(rl1, rl2);
	assert_memory_equal(r1, r2, rl1);
	assert_int_equal(fw_id_sig_alg(a), FW_CLN_SIG_P384_SHA384);
	fw_card_close(a);
	free(c2);
	free(r2);
	a = open_card(f->dir_a, f->mfg2, 256);
	get_identity(a, &c2, &cl2, &r2, &rl2);
	assert_memory_equal(c1, c2, cl1);
	assert_int_equal(fw_id_sig_alg(a), FW_CLN_SIG_P384_SHA384);
	fw_card_close(a);
	free(c1);
	free(r1);
	free(c2);
	free(r2);

	/* Unprovisioned card: both empty.  A missing MFG: no card. */
	{
		struct fw_card_config cfg = {
			.state_dir = f->dir_b, .partitions = 1,
			.pin_iterations = 1, .mfg_dir = "/nonexistent/mfg",
		};
		struct fw_card *b = NULL;

		assert_int_equal(fw_card_open(&cfg, &b, err, sizeof(err)), -1);
		b = open_card(f->dir_b, NULL, 0);
		get_identity(b, &c1, &cl1, &r1, &rl1);
		assert_int_equal(cl1, 0);
		assert_int_equal(rl1, 0);
		free(c1);
		free(r1);
		fw_card_close(b);
		cfg.mfg_dir = f->mfg;
		cfg.device_curve = 521;
		assert_int_equal(fw_card_open(&cfg, &b, err, sizeof(err)), -1);
	}
}

/* ---- cryptography ----------------------------------------------------- */

static void unhex(const char *s, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned int v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void test_hkdf_rfc5869(void **state)
{
	uint8_t ikm[22], salt[13], info[10], prk[32], okm[42], want[42];

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	assert_true(fw_hkdf_extract(FW_CLN_KDF_SHA256, salt, sizeof(salt), ikm,
				    sizeof(ikm), prk));
	unhex("077709362c2e32df0ddc3f0dc47bba63"
	      "90b6c73bb50f9c3122ec844ad7c2b3e5", want, 32);
	assert_memory_equal(prk, want, 32);
	assert_true(fw_hkdf_expand(FW_CLN_KDF_SHA256, prk, info, sizeof(info),
				   okm, sizeof(okm)));
	unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	      "34007208d5b887185865", want, 42);
	assert_memory_equal(okm, want, 42);
	/* Unknown KDF, too much output. */
	assert_false(fw_hkdf_extract(3, salt, 1, ikm, 1, prk));
	assert_false(fw_hkdf_expand(FW_CLN_KDF_SHA256, prk, info, 1, okm, 0));
	assert_int_equal(fw_kdf_len(FW_CLN_KDF_SHA256), 32);
	assert_int_equal(fw_kdf_len(FW_CLN_KDF_SHA384), 48);
	assert_int_equal(fw_kdf_len(0), 0);
}

static void test_hash_hmac(void **state)
{
	static const char key[] = "Jefe", msg[] = "what do ya want for nothing?";
	const uint8_t *parts[2] = { (const uint8_t *)"a", (const uint8_t *)"bc" };
	size_t lens[2] = { 1, 2 };
	uint8_t out[48], want[48];

	(void)state;
	/* RFC 4231, test case 2. */
	assert_true(fw_hmac(FW_CLN_KDF_SHA256, (const uint8_t *)key, 4,
			    (const uint8_t *)msg, strlen(msg), out));
	unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	      want, 32);
	assert_memory_equal(out, want, 32);
	assert_true(fw_hmac(FW_CLN_KDF_SHA384, (const uint8_t *)key, 4,
			    (const uint8_t *)msg, strlen(msg), out));
	unhex("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
	      "8e2240ca5e69e2c78b3239ecfab21649", want, 48);
	assert_memory_equal(out, want, 48);
	/* SHA-256("abc") over two parts. */
	assert_true(fw_kdf_hash(FW_CLN_KDF_SHA256, parts, lens, 2, out));
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	      want, 32);
	assert_memory_equal(out, want, 32);
	assert_false(fw_kdf_hash(9, parts, lens, 2, out));
}

static void test_gcm(void **state)
{
	uint8_t key[32] = { 0 }, nonce[12] = { 0 }, pt[16] = { 0 };
	uint8_t ct[16 + 16], back[16], want[32];

	(void)state;
	/* The GCM specification, test cases 13 and 14 (AES-256). */
	assert_true(fw_gcm_seal(key, nonce, NULL, 0, NULL, 0, ct));
	unhex("530f8afbc74536b9a963b4f1c4cb738b", want, 16);
	assert_memory_equal(ct, want, 16);
	assert_true(fw_gcm_open(key, nonce, NULL, 0, ct, 16, back));
	assert_true(fw_gcm_seal(key, nonce, NULL, 0, pt, 16, ct));
	unhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
	      want, 32);
	assert_memory_equal(ct, want, 32);
	assert_true(fw_gcm_open(key, nonce, NULL, 0, ct, 32, back));
	assert_memory_equal(back, pt, 16);

	/* With associated data; any change is refused. */
	assert_true(fw_gcm_seal(key, nonce, (const uint8_t *)"hdr", 3, pt, 16,
				ct));
	assert_true(fw_gcm_open(key, nonce, (const uint8_t *)"hdr", 3, ct, 32,
				back));
	assert_false(fw_gcm_open(key, nonce, (const uint8_t *)"hdR", 3, ct, 32,
				 back));
	for (size_t i = 0; i < sizeof(ct); i++) {
		ct[i] ^= 0x80;
		assert_false(fw_gcm_open(key, nonce, (const uint8_t *)"hdr", 3,
					 ct, 32, back));
		ct[i] ^= 0x80;
	}
	nonce[11] = 1;
	assert_false(fw_gcm_open(key, nonce, (const uint8_t *)"hdr", 3, ct, 32,
				 back));
	assert_false(fw_gcm_open(key, nonce, NULL, 0, ct, 15, back));
}

static void ecdh_pair(uint64_t suite, size_t plen, size_t zlen)
{
	struct fw_eph *a, *b;
	uint8_t pa[FW_CLN_POINT_MAX], pb[FW_CLN_POINT_MAX];
	uint8_t za[FW_CLN_HASH_MAX], zb[FW_CLN_HASH_MAX];
	size_t la = 0, lb = 0, lza = 0, lzb = 0;

	assert_int_equal(fw_eph_new(suite, &a, pa, &la), CKR_OK);
	assert_int_equal(fw_eph_new(suite, &b, pb, &lb), CKR_OK);
	assert_int_equal(la, plen);
	assert_int_equal(pa[0], 4);
	assert_true(fw_eph_point_ok(suite, pb, lb));
	assert_int_equal(fw_eph_derive(a, pb, lb, za, &lza), CKR_OK);
	assert_int_equal(fw_eph_derive(b, pa, la, zb, &lzb), CKR_OK);
	assert_int_equal(lza, zlen);
	assert_int_equal(lzb, zlen);
	assert_memory_equal(za, zb, zlen);

	/* Bad points: length, infinity, compressed, off the curve. */
	assert_int_equal(fw_eph_derive(a, pb, lb - 1, za, &lza),
			 CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY);
	assert_int_equal(fw_eph_derive(a, (const uint8_t *)"\0", 1, za, &lza),
			 CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY);
	assert_int_equal(fw_eph_derive(a, NULL, 0, za, &lza),
			 CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY);
	pb[0] = 2;
	assert_int_equal(fw_eph_derive(a, pb, lb, za, &lza),
			 CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY);
	assert_int_equal(fw_eph_derive(a, pb, 1 + (lb - 1) / 2, za, &lza),
			 CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY);
	pb[0] = 4;
	pb[lb - 1] ^= 1;
	assert_false(fw_eph_point_ok(suite, pb, lb));
	assert_int_equal(fw_eph_derive(a, pb, lb, za, &lza),
			 CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY);
	pb[lb - 1] ^= 1;
	memset(pb + 1, 0, lb - 1);
	assert_int_equal(fw_eph_derive(a, pb, lb, za, &lza),
			 CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY);
	fw_eph_free(a);
	fw_eph_free(b);
}

static void test_ecdh(void **state)
{
	struct fw_eph *e = NULL;
	uint8_t p256[FW_CLN_POINT_MAX], p384[FW_CLN_POINT_MAX];
	uint8_t z[FW_CLN_HASH_MAX];
	size_t l256 = 0, l384 = 0, lz = 0;

	(void)state;
	ecdh_pair(FW_CLN_SUITE_P256, 65, 32);
	ecdh_pair(FW_CLN_SUITE_P384, 97, 48);
	/* A point of the other curve. */
	assert_int_equal(fw_eph_new(FW_CLN_SUITE_P384, &e, p384, &l384), CKR_OK);
	fw_eph_free(e);
	assert_int_equal(fw_eph_new(FW_CLN_SUITE_P256, &e, p256, &l256), CKR_OK);
	assert_false(fw_eph_point_ok(FW_CLN_SUITE_P256, p384, l384));
	assert_false(fw_eph_point_ok(FW_CLN_SUITE_P384, p256, l256));
	assert_int_equal(fw_eph_derive(e, p384, l384, z, &lz),
			 CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY);
	fw_eph_free(e);
	fw_eph_free(NULL);
	assert_int_not_equal(fw_eph_new(3, &e, p256, &l256), CKR_OK);
	assert_null(e);
	assert_false(fw_eph_point_ok(3, p256, l256));
}

static void test_domain_keys(void **state)
{
	struct fw_domain d1 = { 0 }, d2 = { 0 };
	uint8_t id1[16], psk1[32], id2[16], psk2[32], prk[32], want[32];

	(void)state;
	memset(d1.secret, 0x11, sizeof(d1.secret));
	memset(d2.secret, 0x11, sizeof(d2.secret));
	memcpy(d2.label, "other label", 11);	/* labels do not matter */
	d2.label_len = 11;
	d2.primary = true;
	assert_true(fw_domain_keys(&d1, id1, psk1));
	assert_true(fw_domain_keys(&d2, id2, psk2));
	assert_memory_equal(id1, id2, 16);
	assert_memory_equal(psk1, psk2, 32);
	/* As cloning.rst defines them. */
	assert_true(fw_hkdf_extract(FW_CLN_KDF_SHA256,
				    (const uint8_t *)"phsm domain v1", 14,
				    d1.secret, 32, prk));
	assert_true(fw_hkdf_expand(FW_CLN_KDF_SHA256, prk,
				   (const uint8_t *)"id", 2, want, 16));
	assert_memory_equal(id1, want, 16);
	assert_true(fw_hkdf_expand(FW_CLN_KDF_SHA256, prk,
				   (const uint8_t *)"psk", 3, want, 32));
	assert_memory_equal(psk1, want, 32);
	assert_memory_not_equal(id1, psk1, 16);
	d2.secret[31] ^= 1;
	assert_true(fw_domain_keys(&d2, id2, psk2));
	assert_memory_not_equal(id1, id2, 16);
	assert_memory_not_equal(psk1, psk2, 32);
}

/* ---- CPv3 between two cards ------------------------------------------- */

#define SO_PIN		"so-pin-1"
#define USER_PIN	"user-pin-1"
#define BIG		8192

/* One partition of a card, with an R/W session whose user is logged in. */
struct party {
	struct fw_card *card;
	uint64_t app;
	uint64_t sess;
};

static CK_RV simple(struct party *p, struct phsm_writer *w, uint64_t *out)
{
	struct answer a;
	CK_RV rv = send_req(p->card, p->app, w, &a);

	if (rv == CKR_OK && out)
		*out = phsm_get_u64(&a.m.payload);
	answer_free(&a);
	return rv;
}

static CK_RV login_as(struct party *p, CK_USER_TYPE who, const char *pin)
{
	struct phsm_writer w;

	begin(&w, PHSM_OP_LOGIN);
	phsm_put_u64(&w, p->sess);
	phsm_put_u64(&w, who);
	phsm_put_bytes(&w, pin, strlen(pin));
	phsm_put_bytes(&w, NULL, 0);
	return simple(p, &w, NULL);
}

static CK_RV logout(struct party *p)
{
	struct phsm_writer w;

	begin(&w, PHSM_OP_LOGOUT);
	phsm_put_u64(&w, p->sess);
	return simple(p, &w, NULL);
}

static CK_RV set_policy(struct party *p, uint64_t type, uint64_t value)
{
	struct phsm_writer w;
	CK_RV rv;

	assert_int_equal(logout(p), CKR_OK);
	assert_int_equal(login_as(p, CKU_SO, SO_PIN), CKR_OK);
	begin(&w, PHSM_OP_CA_SET_POLICY);
	phsm_put_u64(&w, p->sess);
	phsm_put_u64(&w, ~(uint64_t)0);
	phsm_put_u64(&w, type);
	phsm_put_u64(&w, value);
	rv = simple(p, &w, NULL);
	assert_int_equal(logout(p), CKR_OK);
	assert_int_equal(login_as(p, CKU_USER, USER_PIN), CKR_OK);
	return rv;
}

/* Token 0 initialised, user PIN set, the domain kcv added by the SO. */
static void party_open(struct party *p, const char *dir, const char *mfg,
		       const char *kcv)
{
	uint8_t label[32];
	struct phsm_writer w;

	p->card = open_card(dir, mfg, 0);
	p->app = fw_card_app_open(p->card);
	memset(label, ' ', sizeof(label));
	begin(&w, PHSM_OP_INIT_TOKEN);
	phsm_put_u64(&w, 0);
	phsm_put_bytes(&w, SO_PIN, strlen(SO_PIN));
	phsm_put_bytes(&w, label, sizeof(label));
	assert_int_equal(simple(p, &w, NULL), CKR_OK);
	begin(&w, PHSM_OP_OPEN_SESSION);
	phsm_put_u64(&w, 0);
	phsm_put_u64(&w, CKF_SERIAL_SESSION | CKF_RW_SESSION);
	assert_int_equal(simple(p, &w, &p->sess), CKR_OK);
	assert_int_equal(login_as(p, CKU_SO, SO_PIN), CKR_OK);
	begin(&w, PHSM_OP_INIT_PIN);
	phsm_put_u64(&w, p->sess);
	phsm_put_bytes(&w, USER_PIN, strlen(USER_PIN));
	assert_int_equal(simple(p, &w, NULL), CKR_OK);
	if (kcv) {
		begin(&w, PHSM_OP_CA_ADD_KCV);
		phsm_put_u64(&w, p->sess);
		phsm_put_bytes(&w, kcv, strlen(kcv));
		phsm_put_bytes(&w, "dom", 3);
		phsm_put_u64(&w, 1);
		assert_int_equal(simple(p, &w, NULL), CKR_OK);
	}
	assert_int_equal(logout(p), CKR_OK);
	assert_int_equal(login_as(p, CKU_USER, USER_PIN), CKR_OK);
}

static void party_close(struct party *p)
{
	fw_card_app_close(p->card, p->app);
	fw_card_close(p->card);
}

static const uint8_t key_value[32] = "0123456789abcdef0123456789abcdef";

static uint64_t make_key(struct party *p)
{
	struct phsm_writer w;
	uint8_t le[8], t = 1, f = 0;
	uint64_t h = 0;
	size_t mark;

	begin(&w, PHSM_OP_CREATE_OBJECT);
	phsm_put_u64(&w, p->sess);
	mark = phsm_put_attrs_begin(&w);
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(CKO_SECRET_KEY >> (8 * i));
	phsm_put_attr(&w, CKA_CLASS, PHSM_ATTR_F_VALUE, 8, le);
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(CKK_AES >> (8 * i));
	phsm_put_attr(&w, CKA_KEY_TYPE, PHSM_ATTR_F_VALUE, 8, le);
	phsm_put_attr(&w, CKA_VALUE, PHSM_ATTR_F_VALUE, 32, key_value);
	phsm_put_attr(&w, CKA_LABEL, PHSM_ATTR_F_VALUE, 5, "clone");
	phsm_put_attr(&w, CKA_TOKEN, PHSM_ATTR_F_VALUE, 1, &t);
	phsm_put_attr(&w, CKA_SENSITIVE, PHSM_ATTR_F_VALUE, 1, &f);
	phsm_put_attrs_end(&w, mark);
	assert_int_equal(simple(p, &w, &h), CKR_OK);
	return h;
}

/* The key's CKA_VALUE and CKA_LABEL are those of make_key(). */
static void check_key(struct party *p, uint64_t h)
{
	struct phsm_writer w;
	struct answer a;
	struct phsm_reader list;
	struct phsm_attr_view av;
	uint32_t count;
	size_t mark;

	begin(&w, PHSM_OP_GET_ATTRIBUTE_VALUE);
	phsm_put_u64(&w, p->sess);
	phsm_put_u64(&w, h);
	mark = phsm_put_attrs_begin(&w);
	phsm_put_attr(&w, CKA_VALUE, 0, 256, NULL);
	phsm_put_attr(&w, CKA_LABEL, 0, 256, NULL);
	phsm_put_attrs_end(&w, mark);
	assert_int_equal(send_req(p->card, p->app, &w, &a), CKR_OK);
	assert_true(phsm_get_attrs(&a.m.payload, &list, &count));
	assert_int_equal(count, 2);
	assert_true(phsm_next_attr(&list, &av));
	assert_int_equal(av.len, 32);
	assert_memory_equal(av.value, key_value, 32);
	assert_true(phsm_next_attr(&list, &av));
	assert_int_equal(av.len, 5);
	assert_memory_equal(av.value, "clone", 5);
	answer_free(&a);
}

/* A call answering BYTES out, U64 outlen; out copied to *buf. */
static CK_RV out_call(struct party *p, struct phsm_writer *w, uint8_t **buf,
		      size_t *len, uint64_t *outlen)
{
	struct answer a;
	const uint8_t *o;
	CK_RV rv = send_req(p->card, p->app, w, &a);

	*buf = NULL;
	*len = 0;
	*outlen = 0;
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		o = phsm_get_bytes(&a.m.payload, len);
		*outlen = phsm_get_u64(&a.m.payload);
		assert_true(phsm_reader_done(&a.m.payload));
		*buf = malloc(*len + 1);
		memcpy(*buf, o, *len);
	} else {
		assert_int_equal(a.m.payload.left, 0);
	}
	answer_free(&a);
	return rv;
}

static CK_RV source_init(struct party *p, uint64_t rep, uint64_t cap,
			 uint8_t **twc, size_t *len, uint64_t *outlen)
{
	struct phsm_writer w;

	begin(&w, PHSM_OP_CLONE_SOURCE_INIT);
	phsm_put_u64(&w, p->sess);
	phsm_put_bytes(&w, NULL, 0);
	phsm_put_u64(&w, rep);
	phsm_put_u64(&w, cap);
	return out_call(p, &w, twc, len, outlen);
}

static CK_RV target_init(struct party *p, const uint8_t *twc, size_t twc_len,
			 size_t kev_len, uint64_t rep, uint64_t cap,
			 uint8_t **p1, size_t *len, uint64_t *outlen)
{
	struct phsm_writer w;

	begin(&w, PHSM_OP_CLONE_TARGET_INIT);
	phsm_put_u64(&w, p->sess);
	phsm_put_bytes(&w, twc, twc_len);
	phsm_put_bytes(&w, "kev", kev_len);
	phsm_put_u64(&w, rep);
	phsm_put_u64(&w, cap);
	return out_call(p, &w, p1, len, outlen);
}

static CK_RV as_source(struct party *p, uint64_t type, uint64_t obj,
		       const uint8_t *p1, size_t p1_len, uint64_t rep,
		       uint64_t cap, uint8_t **p2, size_t *len,
		       uint64_t *outlen)
{
	struct phsm_writer w;

	begin(&w, PHSM_OP_CLONE_AS_SOURCE);
	phsm_put_u64(&w, p->sess);
	phsm_put_u64(&w, type);
	phsm_put_u64(&w, obj);
	phsm_put_bytes(&w, p1, p1_len);
	phsm_put_u64(&w, rep);
	phsm_put_u64(&w, cap);
	return out_call(p, &w, p2, len, outlen);
}

static CK_RV as_target(struct party *p, size_t kev_len, const uint8_t *p2,
		       size_t p2_len, uint64_t type, uint64_t obj,
		       uint64_t rep, uint64_t *h)
{
	struct phsm_writer w;

	begin(&w, PHSM_OP_CLONE_AS_TARGET);
	phsm_put_u64(&w, p->sess);
	phsm_put_bytes(&w, "kev", kev_len);
	phsm_put_bytes(&w, p2, p2_len);
	phsm_put_u64(&w, type);
	phsm_put_u64(&w, obj);
	phsm_put_u64(&w, rep);
	return simple(p, &w, h);
}

/* The messages of one exchange from src to dst, without checks. */
struct exchange {
	uint8_t *twc, *p1, *p2;
	size_t twc_len, p1_len, p2_len;
};

static void exchange_free(struct exchange *x)
{
	free(x->twc);
	free(x->p1);
	free(x->p2);
	memset(x, 0, sizeof(*x));
}

static void first_half(struct party *src, struct party *dst,
		       struct exchange *x)
{
	uint64_t n;

	assert_int_equal(source_init(src, 0, BIG, &x->twc, &x->twc_len, &n),
			 CKR_OK);
	assert_int_equal(target_init(dst, x->twc, x->twc_len, 0, 0, BIG, &x->p1,
				     &x->p1_len, &n), CKR_OK);
}

static void test_cpv3(void **state)
{
	struct fx *f = *state;
	struct party a, b, c, d;
	struct exchange x = { 0 };
	uint8_t *buf, *buf2;
	size_t len, len2;
	uint64_t n, n2, key, h = 0;
	char err[256] = "", dir_c[160], dir_d[160];

	assert_int_equal(fw_mfg_init(f->mfg, err, sizeof(err)), 0);
	assert_int_equal(fw_mfg_init(f->mfg2, err, sizeof(err)), 0);
	snprintf(dir_c, sizeof(dir_c), "%s/c", f->base);
	snprintf(dir_d, sizeof(dir_d), "%s/d", f->base);
	party_open(&a, f->dir_a, f->mfg, "shared domain secret");
	party_open(&b, f->dir_b, f->mfg, "shared domain secret");
	party_open(&c, dir_c, f->mfg, "another domain");
	party_open(&d, dir_d, f->mfg2, "shared domain secret");
	key = make_key(&a);

	/* Step 1, with a size query and a short buffer: the same TWC. */
	assert_int_equal(source_init(&a, 0, PHSM_OUT_QUERY, &buf, &len, &n),
			 CKR_OK);
	assert_int_equal(len, 0);
	free(buf);
	assert_int_equal(source_init(&a, 0, 10, &buf, &len, &n2),
			 CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n2, n);
	free(buf);
	assert_int_equal(source_init(&a, 0, BIG, &x.twc, &x.twc_len, &n2),
			 CKR_OK);
	assert_int_equal(x.twc_len, n);
	assert_true(n < BIG);

	/* Step 2: KEV and replicate checked; a query, then the same Part1. */
	assert_int_equal(target_init(&b, x.twc, x.twc_len, 3, 0, BIG, &buf,
				     &len, &n), CKR_ARGUMENTS_BAD);
	assert_int_equal(target_init(&b, x.twc, x.twc_len, 0, 1, BIG, &buf,
				     &len, &n), CKR_ARGUMENTS_BAD);
	assert_int_equal(target_init(&b, x.twc, x.twc_len, 0, 0, PHSM_OUT_QUERY,
				     &buf, &len, &n), CKR_OK);
	free(buf);
	assert_int_equal(target_init(&b, x.twc, x.twc_len, 0, 0, BIG, &x.p1,
				     &x.p1_len, &n2), CKR_OK);
	assert_int_equal(x.p1_len, n);
	assert_int_equal(target_init(&b, x.twc, x.twc_len, 0, 0, BIG, &buf,
				     &len, &n2), CKR_OK);
	assert_int_equal(len, x.p1_len);
	assert_memory_equal(buf, x.p1, len);
	free(buf);

	/* Step 3: errors first, then query, short buffer, the real one. */
	assert_int_equal(as_source(&a, 5, key, x.p1, x.p1_len, 0, BIG, &buf,
				   &len, &n), CKR_OBJECT_TYPE_INVALID);
	assert_int_equal(as_source(&a, 0, 999999, x.p1, x.p1_len, 0, BIG, &buf,
				   &len, &n), CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 1, BIG, &buf,
				   &len, &n), CKR_ARGUMENTS_BAD);
	x.p1[x.p1_len - 1] ^= 1;	/* confirm_t */
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, BIG, &buf,
				   &len, &n), CKR_SESSION_NEGOTIATION_NO_PSK);
	x.p1[x.p1_len - 1] ^= 1;
	x.p1[3 * 16 + 8 + 5] ^= 1;	/* twc_hash */
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, BIG, &buf,
				   &len, &n), CKR_DATA_INVALID);
	x.p1[3 * 16 + 8 + 5] ^= 1;
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0,
				   PHSM_OUT_QUERY, &buf, &len, &n), CKR_OK);
	free(buf);
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, 20, &buf,
				   &len, &n2), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, n2);
	free(buf);
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, BIG, &x.p2,
				   &x.p2_len, &n2), CKR_OK);
	assert_int_equal(x.p2_len, n);
	/* Consumed: [V3] repeats the whole exchange for each object. */
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, BIG, &buf,
				   &len, &n), CKR_OPERATION_NOT_INITIALIZED);

	/* Step 4: the object, once. */
	assert_int_equal(as_target(&b, 3, x.p2, x.p2_len, 0, 0, 0, &h),
			 CKR_ARGUMENTS_BAD);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 1, &h),
			 CKR_ARGUMENTS_BAD);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 1, 0, 0, &h),
			 CKR_OBJECT_TYPE_INVALID);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len - 1, 0, 0, 0, &h),
			 CKR_DATA_INVALID);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 0, &h), CKR_OK);
	assert_true(h != 0);
	check_key(&b, h);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 0, &h),
			 CKR_OPERATION_NOT_INITIALIZED);
	exchange_free(&x);

	/* A tampered blob: refused, and the exchange is spent. */
	first_half(&a, &b, &x);
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, BIG, &x.p2,
				   &x.p2_len, &n), CKR_OK);
	x.p2[x.p2_len - 3] ^= 1;
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 0, &h),
			 CKR_ENCRYPTED_DATA_INVALID);
	x.p2[x.p2_len - 3] ^= 1;
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 0, &h),
			 CKR_OPERATION_NOT_INITIALIZED);
	exchange_free(&x);

	/* A tampered confirm_s. */
	first_half(&a, &b, &x);
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, BIG, &x.p2,
				   &x.p2_len, &n), CKR_OK);
	x.p2[3 * 16 + 8 + 16 + 8 + 1] ^= 1;
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 0, &h),
			 CKR_DATA_INVALID);
	exchange_free(&x);

	/* Another domain: the source refuses Part1 (the domain rule). */
	first_half(&a, &c, &x);
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, BIG, &buf,
				   &len, &n), CKR_SESSION_NEGOTIATION_NO_PSK);
	exchange_free(&x);

	/* Another manufacturer: NO_ROOTS both ways. */
	assert_int_equal(source_init(&a, 0, BIG, &x.twc, &x.twc_len, &n),
			 CKR_OK);
	assert_int_equal(target_init(&d, x.twc, x.twc_len, 0, 0, BIG, &buf,
				     &len, &n), CKR_SESSION_NEGOTIATION_NO_ROOTS);
	/* A TWC altered: its signature, its certificate, its form. */
	x.twc[x.twc_len - 1] ^= 1;
	assert_int_equal(target_init(&b, x.twc, x.twc_len, 0, 0, BIG, &buf,
				     &len, &n), CKR_DATA_INVALID);
	x.twc[x.twc_len - 1] ^= 1;
	x.twc[x.twc_len - 200] ^= 1;
	assert_int_equal(target_init(&b, x.twc, x.twc_len, 0, 0, BIG, &buf,
				     &len, &n),
			 CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT);
	x.twc[x.twc_len - 200] ^= 1;
	assert_int_equal(target_init(&b, x.twc, x.twc_len - 1, 0, 0, BIG, &buf,
				     &len, &n), CKR_DATA_INVALID);
	assert_int_equal(target_init(&b, x.twc, 0, 0, 0, BIG, &buf, &len, &n),
			 CKR_ARGUMENTS_BAD);
	/* A Part1 answering another TWC. */
	assert_int_equal(target_init(&b, x.twc, x.twc_len, 0, 0, BIG, &x.p1,
				     &x.p1_len, &n), CKR_OK);
	assert_int_equal(source_init(&a, 0, BIG, &buf2, &len2, &n), CKR_OK);
	free(buf2);
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, BIG, &buf,
				   &len, &n), CKR_DATA_INVALID);
	exchange_free(&x);

	/* No state, no login, the policy. */
	assert_int_equal(as_target(&a, 0, key_value, 32, 0, 0, 0, &h),
			 CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(as_target(&c, 0, key_value, 32, 0, 0, 0, &h),
			 CKR_DATA_INVALID);
	assert_int_equal(logout(&b), CKR_OK);
	assert_int_equal(source_init(&b, 0, BIG, &buf, &len, &n),
			 CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(login_as(&b, CKU_USER, USER_PIN), CKR_OK);
	assert_int_equal(set_policy(&b, CK_PHSM_POLICY_CPV3_DISABLED, 1), CKR_OK);
	assert_int_equal(source_init(&b, 0, BIG, &buf, &len, &n),
			 CKR_PROTOCOL_DISABLED);
	assert_int_equal(as_target(&b, 0, key_value, 32, 0, 0, 0, &h),
			 CKR_PROTOCOL_DISABLED);
	assert_int_equal(set_policy(&b, CK_PHSM_POLICY_CPV3_DISABLED, 0), CKR_OK);

	/* Finally the other way round, B to A, with bReplicate set. */
	assert_int_equal(source_init(&a, 1, BIG, &x.twc, &x.twc_len, &n), CKR_OK);
	assert_int_equal(target_init(&b, x.twc, x.twc_len, 0, 1, BIG, &x.p1,
				     &x.p1_len, &n), CKR_OK);
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 1, BIG, &x.p2,
				   &x.p2_len, &n), CKR_OK);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 0, &h),
			 CKR_ARGUMENTS_BAD);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 1, &h), CKR_OK);
	check_key(&b, h);
	exchange_free(&x);

	/* Every truncation of every message is refused, and kills nothing. */
	first_half(&a, &b, &x);
	for (size_t l = 1; l < x.twc_len; l++)
		assert_int_equal(target_init(&c, x.twc, l, 0, 0, BIG, &buf,
					     &len, &n), CKR_DATA_INVALID);
	for (size_t l = 1; l < x.p1_len; l++)
		assert_int_equal(as_source(&a, 0, key, x.p1, l, 0, BIG, &buf,
					   &len, &n), CKR_DATA_INVALID);
	assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0, BIG, &x.p2,
				   &x.p2_len, &n), CKR_OK);
	for (size_t l = 1; l < x.p2_len; l++)
		assert_int_equal(as_target(&b, 0, x.p2, l, 0, 0, 0, &h),
				 CKR_DATA_INVALID);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 0, &h), CKR_OK);
	check_key(&b, h);
	exchange_free(&x);

	/* The SMK parameter: hHandle is its param_id on both sides. */
	memset(b.card->ext[0].smk, 0x5a, FW_HASH_LEN);
	first_half(&a, &b, &x);
	assert_int_equal(as_source(&a, 1, 7, x.p1, x.p1_len, 0, BIG, &buf,
				   &len, &n), CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(as_source(&a, 1, PHSM_PARAM_SMK, x.p1, x.p1_len, 0,
				   BIG, &x.p2, &x.p2_len, &n), CKR_OK);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 0, 0, 0, &h),
			 CKR_OBJECT_TYPE_INVALID);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 1, 2, 0, &h),
			 CKR_OBJECT_TYPE_INVALID);
	assert_int_equal(as_target(&b, 0, x.p2, x.p2_len, 1, PHSM_PARAM_SMK, 0,
				   &h), CKR_OK);
	assert_int_equal(h, PHSM_PARAM_SMK);
	assert_memory_equal(a.card->ext[0].smk, b.card->ext[0].smk,
			    FW_HASH_LEN);
	exchange_free(&x);

	/* Bytes altered (a bit flipped, or set to 0xff): each refused. */
	first_half(&a, &b, &x);
	for (size_t i = 0; i < x.twc_len; i += 2) {
		for (int k = 0; k < 2; k++) {
			uint8_t old = x.twc[i];

			x.twc[i] = k ? 0xff : old ^ 0x80;
			if (x.twc[i] != old)
				assert_int_not_equal(target_init(&c, x.twc,
						     x.twc_len, 0, 0, BIG, &buf,
						     &len, &n), CKR_OK);
			free(buf);
			x.twc[i] = old;
		}
	}
	for (size_t i = 0; i < x.p1_len; i += 2) {
		for (int k = 0; k < 2; k++) {
			uint8_t old = x.p1[i];

			x.p1[i] = k ? 0xff : old ^ 0x80;
			if (x.p1[i] != old)
				assert_int_not_equal(as_source(&a, 0, key, x.p1,
						     x.p1_len, 0, BIG, &buf,
						     &len, &n), CKR_OK);
			free(buf);
			x.p1[i] = old;
		}
	}
	exchange_free(&x);
	/* Part2: an exchange for each, as a refused Part2 may spend it. */
	for (size_t i = 0; i < 400; i += 5) {
		for (int k = 0; k < 2; k++) {
			first_half(&a, &b, &x);
			assert_int_equal(as_source(&a, 0, key, x.p1, x.p1_len, 0,
						   BIG, &x.p2, &x.p2_len, &n),
					 CKR_OK);
			if (i < x.p2_len && x.p2[i] != 0xff) {
				x.p2[i] = k ? 0xff : x.p2[i] ^ 0x80;
				assert_int_not_equal(as_target(&b, 0, x.p2,
						     x.p2_len, 0, 0, 0, &h),
						     CKR_OK);
			}
			exchange_free(&x);
		}
	}

	party_close(&a);
	party_close(&b);
	party_close(&c);
	party_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mfg_init_idempotent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_two_cards_verify, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_parallel_provisioning,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_manufacturer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_identity,
						setup, teardown),
		cmocka_unit_test(test_hkdf_rfc5869),
		cmocka_unit_test(test_hash_hmac),
		cmocka_unit_test(test_gcm),
		cmocka_unit_test(test_ecdh),
		cmocka_unit_test(test_domain_keys),
		cmocka_unit_test_setup_teardown(test_cpv3, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
