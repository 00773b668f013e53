// SPDX-License-Identifier: MIT
/*
 * bench: operations per second of PKCS#11 modules side by side with raw
 * OpenSSL EVP in-process (issue 5; run by `make bench`).
 *
 *   bench --module PATH [--module PATH ...] [--openssl] [--seconds S]
 *	   [--rounds R] [--json FILE] [--pin PIN] [--so-pin PIN]
 *	   [--ops NAME,...]
 *
 * Every module is loaded with dlopen() and C_GetFunctionList.  The tool
 * uses the first token labelled "bench", or else initialises the first
 * uninitialised token (C_InitToken, C_InitPIN), logs in, makes each key
 * once (session objects of a session kept open) and then measures each
 * operation at 1 and 2 threads, one session per thread, same key.  A cell
 * runs for S seconds (default 2) of wall-clock time, CLOCK_MONOTONIC,
 * with the threads released together from a barrier; every operation's
 * latency is recorded too (p50/p99).  The time is split into R rounds
 * (default 4): each round measures every operation of every back-end for
 * S/R seconds, the back-ends one after the other for the same operation,
 * so that a machine that gets busier or quieter during the run shifts all
 * back-ends alike instead of skewing their ratios.
 *
 * The first module is the subject (phsm), the second the reference
 * (SoftHSMv2); the table shows subject/reference and subject/OpenSSL at
 * 2 threads and checks the targets.  Nothing here asserts a
 * timing: the exit status says only whether the tool could run.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <phsm/pkcs11.h>

#define MAX_BACKENDS	6
#define MAX_THREADS	2
#define LAT_CAP		(1u << 22)	/* latencies kept per thread */

enum op {
	OP_RSA, OP_EC, OP_ED, OP_GCM4K, OP_GCM1M, OP_SHA, OP_RAND, NOPS
};

static const struct opinfo {
	const char *key;	/* JSON name */
	const char *label;	/* table row */
	size_t len;		/* input bytes */
	CK_MECHANISM_TYPE mech;
} ops[NOPS] = {
	[OP_RSA]   = { "rsa2048_sign", "RSA-2048 sign", 32,
		       CKM_SHA256_RSA_PKCS },
	[OP_EC]    = { "p256_sign", "ECDSA P-256 sign", 32, CKM_ECDSA },
	[OP_ED]    = { "ed25519_sign", "Ed25519 sign", 32, CKM_EDDSA },
	[OP_GCM4K] = { "aes256gcm_4k", "AES-256-GCM 4 KiB", 4096,
		       CKM_AES_GCM },
	[OP_GCM1M] = { "aes256gcm_1m", "AES-256-GCM 1 MiB", 1u << 20,
		       CKM_AES_GCM },
	[OP_SHA]   = { "sha256_4k", "SHA-256 4 KiB", 4096, CKM_SHA256 },
	[OP_RAND]  = { "random32", "random 32 B", 32, 0 },
};

struct backend {
	const char *name;
	const char *path;	/* NULL: OpenSSL in-process */
	int skip;		/* its set-up failed */
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE setup;	/* keeps the session keys alive */
	CK_OBJECT_HANDLE key[NOPS];
	int have[NOPS];
	EVP_PKEY *pkey[NOPS];
	unsigned char aes[32];
};

struct result {
	int ok;			/* measured in every round, never failed */
	int failed;
	double ops_s, mb_s, p50_us, p99_us, secs;
	uint64_t n;
	uint32_t *lat;		/* all rounds' latencies, ns */
	size_t nlat;
};

struct cell;

struct worker {
	struct cell *c;
	pthread_t tid;
	unsigned idx;
	CK_SESSION_HANDLE s;
	EVP_MD_CTX *md;
	EVP_PKEY_CTX *pctx;
	EVP_CIPHER_CTX *cctx;
	const EVP_MD *sha;
	unsigned char *in, *out;
	size_t outcap;
	uint64_t n, ivctr;
	uint32_t *lat;
	size_t nlat;
	int failed;
	CK_RV rv;
};

struct cell {
	struct backend *b;
	enum op op;
	unsigned nthreads;
	double seconds;
	pthread_barrier_t bar;
	struct timespec start;
	struct worker w[MAX_THREADS];
};

static struct backend backends[MAX_BACKENDS];
static unsigned nbackends;
static struct result res[MAX_BACKENDS][NOPS][MAX_THREADS + 1];
static const char *user_pin = "12345678", *so_pin = "87654321";
static const char token_label[] = "bench";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- one operation ------------------------------------------------ */

static void gcm_iv(struct worker *w, unsigned char iv[12])
{
	uint64_t c = ++w->ivctr;

	memset(iv, 0, 12);
	iv[0] = (unsigned char)w->idx;
	memcpy(iv + 4, &c, sizeof(c));
}

static int p11_op(struct worker *w)
{
	struct backend *b = w->c->b;
	CK_FUNCTION_LIST_PTR f = b->f;
	enum op op = w->c->op;
	CK_ULONG len = ops[op].len, outlen = w->outcap;
	CK_MECHANISM m = { ops[op].mech, NULL, 0 };
	CK_GCM_PARAMS gcm;
	unsigned char iv[12];
	CK_RV rv;

	switch (op) {
	case OP_RSA:
	case OP_EC:
	case OP_ED:
		rv = f->C_SignInit(w->s, &m, b->key[op]);
		if (rv == CKR_OK)
			rv = f->C_Sign(w->s, w->in, len, w->out, &outlen);
		break;
	case OP_GCM4K:
	case OP_GCM1M:
		gcm_iv(w, iv);
		gcm = (CK_GCM_PARAMS){ iv, sizeof(iv), 96, NULL, 0, 128 };
		m.pParameter = &gcm;
		m.ulParameterLen = sizeof(gcm);
		rv = f->C_EncryptInit(w->s, &m, b->key[op]);
		if (rv == CKR_OK)
			rv = f->C_Encrypt(w->s, w->in, len, w->out, &outlen);
		break;
	case OP_SHA:
		rv = f->C_DigestInit(w->s, &m);
		if (rv == CKR_OK)
			rv = f->C_Digest(w->s, w->in, len, w->out, &outlen);
		break;
	case OP_RAND:
		rv = f->C_GenerateRandom(w->s, w->out, len);
		break;
	default:
		rv = CKR_GENERAL_ERROR;
	}
	w->rv = rv;
	return rv == CKR_OK ? 0 : -1;
}

static int ossl_op(struct worker *w)
{
	struct backend *b = w->c->b;
	enum op op = w->c->op;
	size_t len = ops[op].len, outlen = w->outcap;
	unsigned char iv[12];
	unsigned int mdlen;
	int l1, l2;

	switch (op) {
	case OP_RSA:
		return EVP_DigestSignInit(w->md, NULL, w->sha, NULL,
					  b->pkey[op]) == 1 &&
		       EVP_DigestSign(w->md, w->out, &outlen, w->in,
				      len) == 1 ? 0 : -1;
	case OP_ED:
		return EVP_DigestSignInit(w->md, NULL, NULL, NULL,
					  b->pkey[op]) == 1 &&
		       EVP_DigestSign(w->md, w->out, &outlen, w->in,
				      len) == 1 ? 0 : -1;
	case OP_EC:
		return EVP_PKEY_sign(w->pctx, w->out, &outlen, w->in,
				     len) == 1 ? 0 : -1;
	case OP_GCM4K:
	case OP_GCM1M:
		gcm_iv(w, iv);
		return EVP_EncryptInit_ex(w->cctx, NULL, NULL, NULL, iv) == 1 &&
		       EVP_EncryptUpdate(w->cctx, w->out, &l1, w->in,
					 (int)len) == 1 &&
		       EVP_EncryptFinal_ex(w->cctx, w->out + l1, &l2) == 1 &&
		       EVP_CIPHER_CTX_ctrl(w->cctx, EVP_CTRL_GCM_GET_TAG, 16,
					   w->out + len) == 1 ? 0 : -1;
	case OP_SHA:
		return EVP_DigestInit_ex(w->md, w->sha, NULL) == 1 &&
		       EVP_DigestUpdate(w->md, w->in, len) == 1 &&
		       EVP_DigestFinal_ex(w->md, w->out, &mdlen) == 1 ? 0 : -1;
	case OP_RAND:
		return RAND_bytes(w->out, (int)len) == 1 ? 0 : -1;
	default:
		return -1;
	}
}

/* ---- a cell: one back-end, one operation, N threads ---------------- */

static int worker_setup(struct worker *w)
{
	struct backend *b = w->c->b;
	enum op op = w->c->op;
	CK_RV rv;

	w->outcap = ops[op].len + 1024;
	w->in = malloc(ops[op].len);
	w->out = malloc(w->outcap);
	w->lat = malloc(LAT_CAP * sizeof(*w->lat));
	if (!w->in || !w->out || !w->lat)
		return -1;
	memset(w->in, 0x5a, ops[op].len);
	if (b->path) {
		rv = b->f->C_OpenSession(b->slot, CKF_SERIAL_SESSION, NULL,
					 NULL, &w->s);
		if (rv != CKR_OK) {
			fprintf(stderr, "bench: %s: C_OpenSession: %#lx\n",
				b->name, rv);
			return -1;
		}
		return 0;
	}
	w->md = EVP_MD_CTX_new();
	w->sha = EVP_sha256();
	if (!w->md)
		return -1;
	if (op == OP_EC) {
		w->pctx = EVP_PKEY_CTX_new(b->pkey[op], NULL);
		if (!w->pctx || EVP_PKEY_sign_init(w->pctx) != 1)
			return -1;
	}
	if (op == OP_GCM4K || op == OP_GCM1M) {
		w->cctx = EVP_CIPHER_CTX_new();
		if (!w->cctx ||
		    EVP_EncryptInit_ex(w->cctx, EVP_aes_256_gcm(), NULL,
				       b->aes, NULL) != 1)
			return -1;
	}
	return 0;
}

static void worker_free(struct worker *w)
{
	struct backend *b = w->c->b;

	if (b->path && w->s)
		b->f->C_CloseSession(w->s);
	EVP_MD_CTX_free(w->md);
	EVP_PKEY_CTX_free(w->pctx);
	EVP_CIPHER_CTX_free(w->cctx);
	free(w->in);
	free(w->out);
	free(w->lat);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct cell *c = w->c;
	int (*fn)(struct worker *) = c->b->path ? p11_op : ossl_op;
	uint64_t t0, t1, end;

	pthread_barrier_wait(&c->bar);
	t0 = now_ns();
	end = t0 + (uint64_t)(c->seconds * 1e9);
	do {
		if (fn(w)) {
			w->failed = 1;
			break;
		}
		t1 = now_ns();
		if (w->nlat < LAT_CAP)
			w->lat[w->nlat++] = (uint32_t)(t1 - t0 > UINT32_MAX ?
						       UINT32_MAX : t1 - t0);
		w->n++;
		t0 = t1;
	} while (t1 < end);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Latencies of @n more operations into @r's list; false without memory. */
static int add_latencies(struct result *r, const uint32_t *lat, size_t n)
{
	uint32_t *p;

	if (!n)
		return 1;
	p = realloc(r->lat, (r->nlat + n) * sizeof(*p));
	if (!p)
		return 0;
	memcpy(p + r->nlat, lat, n * sizeof(*p));
	r->lat = p;
	r->nlat += n;
	return 1;
}

/* One round of a cell: @seconds more of it, added to its result. */
static void run_cell(struct backend *b, unsigned bi, enum op op,
		     unsigned nthreads, double seconds)
{
	struct cell *c = calloc(1, sizeof(*c));
	struct result *r = &res[bi][op][nthreads];
	double t0, t1;
	unsigned i;
	int bad = 0;

	if (!c) {
		r->failed = 1;
		return;
	}
	c->b = b;
	c->op = op;
	c->nthreads = nthreads;
	c->seconds = seconds;
	pthread_barrier_init(&c->bar, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		c->w[i].c = c;
		c->w[i].idx = i;
		if (worker_setup(&c->w[i]))
			bad = 1;
	}
	if (bad) {
		fprintf(stderr, "bench: %s %s: setup failed\n", b->name,
			ops[op].label);
		r->failed = 1;
		nthreads = 0;
	}
	for (i = 0; i < nthreads; i++)
		pthread_create(&c->w[i].tid, NULL, worker_run, &c->w[i]);
	if (nthreads) {
		pthread_barrier_wait(&c->bar);
		t0 = now_s();
		for (i = 0; i < nthreads; i++)
			pthread_join(c->w[i].tid, NULL);
		t1 = now_s();
		r->secs += t1 - t0;
		for (i = 0; i < nthreads; i++) {
			r->n += c->w[i].n;
			if (!add_latencies(r, c->w[i].lat, c->w[i].nlat))
				r->failed = 1;
			if (c->w[i].failed) {
				r->failed = 1;
				fprintf(stderr, "bench: %s %s: failed "
					"(CK_RV %#lx)\n", b->name,
					ops[op].label, c->w[i].rv);
			}
		}
	}
	for (i = 0; i < c->nthreads; i++)
		worker_free(&c->w[i]);
	pthread_barrier_destroy(&c->bar);
	free(c);
}

/* After the last round: rates and percentiles of a cell. */
static void finish_cell(enum op op, struct result *r)
{
	if (!r->failed && r->nlat && r->secs > 0) {
		qsort(r->lat, r->nlat, sizeof(*r->lat), cmp_u32);
		r->p50_us = r->lat[r->nlat / 2] / 1e3;
		r->p99_us = r->lat[r->nlat * 99 / 100] / 1e3;
		r->ops_s = (double)r->n / r->secs;
		r->mb_s = r->ops_s * (double)ops[op].len / 1e6;
		r->ok = 1;
	}
	free(r->lat);
	r->lat = NULL;
}

/* ---- PKCS#11 set-up ------------------------------------------------ */

static int find_token(struct backend *b, int *initialised)
{
	CK_SLOT_ID slots[128];
	CK_ULONG n = 128, i;
	CK_TOKEN_INFO ti;
	CK_RV rv = b->f->C_GetSlotList(CK_TRUE, slots, &n);
	int fresh = -1;

	if (rv != CKR_OK) {
		fprintf(stderr, "bench: %s: C_GetSlotList: %#lx\n", b->name,
			rv);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (b->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
			if (fresh < 0)
				fresh = (int)i;
			continue;
		}
		if (!memcmp(ti.label, token_label, sizeof(token_label) - 1) &&
		    ti.label[sizeof(token_label) - 1] == ' ') {
			b->slot = slots[i];
			*initialised = 1;
			return 0;
		}
	}
	if (fresh < 0) {
		fprintf(stderr, "bench: %s: no token \"%s\" and no "
			"uninitialised token\n", b->name, token_label);
		return -1;
	}
	b->slot = slots[fresh];
	*initialised = 0;
	return 0;
}

static int init_token(struct backend *b)
{
	CK_UTF8CHAR label[32];
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int init;

	if (find_token(b, &init))
		return -1;
	if (init)
		return 0;
	memset(label, ' ', sizeof(label));
	memcpy(label, token_label, sizeof(token_label) - 1);
	fprintf(stderr, "bench: %s: initialising token in slot %lu\n",
		b->name, b->slot);
	rv = b->f->C_InitToken(b->slot, (CK_UTF8CHAR_PTR)so_pin,
			       strlen(so_pin), label);
	if (rv != CKR_OK) {
		fprintf(stderr, "bench: %s: C_InitToken: %#lx\n", b->name, rv);
		return -1;
	}
	/* SoftHSMv2 gives an initialised token a new slot: look again. */
	if (find_token(b, &init) || !init)
		return -1;
	rv = b->f->C_OpenSession(b->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				 NULL, NULL, &s);
	if (rv == CKR_OK) {
		rv = b->f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin,
				   strlen(so_pin));
		if (rv == CKR_OK) {
			rv = b->f->C_InitPIN(s, (CK_UTF8CHAR_PTR)user_pin,
					     strlen(user_pin));
			b->f->C_Logout(s);
		}
		b->f->C_CloseSession(s);
	}
	if (rv != CKR_OK) {
		fprintf(stderr, "bench: %s: SO login/C_InitPIN: %#lx\n",
			b->name, rv);
		return -1;
	}
	return 0;
}

static int has_mech(struct backend *b, CK_MECHANISM_TYPE m)
{
	CK_MECHANISM_INFO mi;

	return b->f->C_GetMechanismInfo(b->slot, m, &mi) == CKR_OK;
}

static CK_RV gen_pair(struct backend *b, CK_MECHANISM_TYPE mt,
		      CK_ATTRIBUTE *pub, CK_ULONG npub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = { mt, NULL, 0 };
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ATTRIBUTE pt[8], pv[] = {
		{ CKA_TOKEN, &f, sizeof(f) },
		{ CKA_PRIVATE, &t, sizeof(t) },
		{ CKA_SENSITIVE, &t, sizeof(t) },
		{ CKA_SIGN, &t, sizeof(t) },
	};
	CK_OBJECT_HANDLE pubh;
	CK_ULONG i;

	pt[0] = (CK_ATTRIBUTE){ CKA_TOKEN, &f, sizeof(f) };
	pt[1] = (CK_ATTRIBUTE){ CKA_VERIFY, &t, sizeof(t) };
	for (i = 0; i < npub && i < 6; i++)
		pt[2 + i] = pub[i];
	return b->f->C_GenerateKeyPair(b->setup, &m, pt, 2 + i, pv,
				       sizeof(pv) / sizeof(pv[0]), &pubh,
				       priv);
}

static void make_keys(struct backend *b)
{
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
					0x3d, 0x03, 0x01, 0x07 };
	static const CK_BYTE ed_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	static const CK_BYTE ed_name[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a',
					   'r', 'd', 's', '2', '5', '5', '1',
					   '9' };
	CK_ULONG bits = 2048, aeslen = 32;
	CK_BYTE e[] = { 1, 0, 1 };
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ATTRIBUTE rsa[] = {
		{ CKA_MODULUS_BITS, &bits, sizeof(bits) },
		{ CKA_PUBLIC_EXPONENT, e, sizeof(e) },
	};
	CK_ATTRIBUTE ec[] = { { CKA_EC_PARAMS, (void *)p256, sizeof(p256) } };
	CK_ATTRIBUTE ed[] = { { CKA_EC_PARAMS, (void *)ed_oid,
				sizeof(ed_oid) } };
	CK_ATTRIBUTE aes[] = {
		{ CKA_TOKEN, &f, sizeof(f) },
		{ CKA_SENSITIVE, &t, sizeof(t) },
		{ CKA_ENCRYPT, &t, sizeof(t) },
		{ CKA_VALUE_LEN, &aeslen, sizeof(aeslen) },
	};
	CK_MECHANISM aesgen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_RV rv;
	double t0;
	int i;

	for (i = 0; i < NOPS; i++)
		b->have[i] = i == OP_RAND || has_mech(b, ops[i].mech);
	t0 = now_s();
	if (b->have[OP_RSA]) {
		rv = gen_pair(b, CKM_RSA_PKCS_KEY_PAIR_GEN, rsa, 2,
			      &b->key[OP_RSA]);
		if (rv != CKR_OK) {
			fprintf(stderr, "bench: %s: RSA key: %#lx\n", b->name,
				rv);
			b->have[OP_RSA] = 0;
		}
	}
	if (b->have[OP_EC]) {
		rv = gen_pair(b, CKM_EC_KEY_PAIR_GEN, ec, 1, &b->key[OP_EC]);
		if (rv != CKR_OK) {
			fprintf(stderr, "bench: %s: P-256 key: %#lx\n",
				b->name, rv);
			b->have[OP_EC] = 0;
		}
	}
	if (b->have[OP_ED]) {
		rv = gen_pair(b, CKM_EC_EDWARDS_KEY_PAIR_GEN, ed, 1,
			      &b->key[OP_ED]);
		if (rv != CKR_OK) {
			ed[0].pValue = (void *)ed_name;
			ed[0].ulValueLen = sizeof(ed_name);
			rv = gen_pair(b, CKM_EC_EDWARDS_KEY_PAIR_GEN, ed, 1,
				      &b->key[OP_ED]);
		}
		if (rv != CKR_OK) {
			fprintf(stderr, "bench: %s: Ed25519 key: %#lx\n",
				b->name, rv);
			b->have[OP_ED] = 0;
		}
	}
	rv = b->f->C_GenerateKey(b->setup, &aesgen, aes,
				 sizeof(aes) / sizeof(aes[0]),
				 &b->key[OP_GCM4K]);
	if (rv != CKR_OK) {
		fprintf(stderr, "bench: %s: AES key: %#lx\n", b->name, rv);
		b->have[OP_GCM4K] = b->have[OP_GCM1M] = 0;
	}
	b->key[OP_GCM1M] = b->key[OP_GCM4K];
	fprintf(stderr, "bench: %s: keys made in %.2f s\n", b->name,
		now_s() - t0);
}

static int setup_module(struct backend *b)
{
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	void *h = dlopen(b->path, RTLD_NOW | RTLD_LOCAL);
	CK_RV rv;

	if (!h) {
		fprintf(stderr, "bench: %s\n", dlerror());
		return -1;
	}
	*(void **)&get = dlsym(h, "C_GetFunctionList");
	if (!get || get(&b->f) != CKR_OK) {
		fprintf(stderr, "bench: %s: no C_GetFunctionList\n", b->path);
		return -1;
	}
	rv = b->f->C_Initialize(&args);
	if (rv != CKR_OK) {
		fprintf(stderr, "bench: %s: C_Initialize: %#lx\n", b->name, rv);
		return -1;
	}
	if (init_token(b))
		return -1;
	rv = b->f->C_OpenSession(b->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				 NULL, NULL, &b->setup);
	if (rv == CKR_OK)
		rv = b->f->C_Login(b->setup, CKU_USER,
				   (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		fprintf(stderr, "bench: %s: session/C_Login: %#lx\n", b->name,
			rv);
		return -1;
	}
	make_keys(b);
	return 0;
}

static void teardown_module(struct backend *b)
{
	if (!b->f)
		return;
	b->f->C_Logout(b->setup);
	b->f->C_CloseSession(b->setup);
	b->f->C_Finalize(NULL);
}

static int setup_openssl(struct backend *b)
{
	int i;

	b->pkey[OP_RSA] = EVP_RSA_gen(2048);
	b->pkey[OP_EC] = EVP_EC_gen("P-256");
	b->pkey[OP_ED] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!b->pkey[OP_RSA] || !b->pkey[OP_EC] || !b->pkey[OP_ED] ||
	    RAND_bytes(b->aes, sizeof(b->aes)) != 1) {
		ERR_print_errors_fp(stderr);
		return -1;
	}
	for (i = 0; i < NOPS; i++)
		b->have[i] = 1;
	return 0;
}

/* ---- report -------------------------------------------------------- */

static int find_backend(int openssl)
{
	unsigned i, modules = 0;

	for (i = 0; i < nbackends; i++) {
		if (openssl && !backends[i].path)
			return (int)i;
		if (!openssl && backends[i].path && ++modules == 2)
			return (int)i;
	}
	return -1;
}

/* The targets, 2 threads: subject's value against a reference. */
struct target {
	enum op op;
	const char *text;
	int ref_openssl;	/* against OpenSSL, else the second module */
	double factor;
	int best_threads;	/* reference at its best thread count */
	int mb;			/* compare MB/s */
};

static const struct target targets[] = {
	{ OP_RSA, ">= 0.85x OpenSSL", 1, 0.85, 0, 0 },
	{ OP_EC, ">= 2x SoftHSMv2", 0, 2.0, 0, 0 },
	{ OP_ED, ">= 3x SoftHSMv2", 0, 3.0, 0, 0 },
	{ OP_GCM4K, ">= 2x SoftHSMv2 best", 0, 2.0, 1, 0 },
	{ OP_GCM1M, ">= 0.5x OpenSSL MB/s", 1, 0.5, 0, 1 },
	{ OP_SHA, ">= 1x SoftHSMv2", 0, 1.0, 0, 0 },
};

static const struct target *target_of(enum op op)
{
	size_t i;

	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		if (targets[i].op == op)
			return &targets[i];
	return NULL;
}

/* -1 n/a, 0 not met, 1 met; *req gets the required value. */
static int target_met(enum op op, double *val, double *req)
{
	const struct target *t = target_of(op);
	int ref = -1;
	struct result *s = &res[0][op][2], *r1, *r2;
	double rv;

	if (!backends[0].path)
		return -1;
	if (op == OP_RAND) {	/* round trip p50 <= 10 us */
		if (!s->ok)
			return -1;
		*val = s->p50_us;
		*req = 10.0;
		return s->p50_us <= 10.0;
	}
	if (!t)
		return -1;
	ref = find_backend(t->ref_openssl);
	if (ref < 0 || !s->ok)
		return -1;
	r1 = &res[ref][op][1];
	r2 = &res[ref][op][2];
	if (!r2->ok)
		return -1;
	rv = t->mb ? r2->mb_s : r2->ops_s;
	if (t->best_threads && r1->ok && r1->ops_s > rv)
		rv = r1->ops_s;
	*val = t->mb ? s->mb_s : s->ops_s;
	*req = rv * t->factor;
	return *val >= *req;
}

static void fmt(char *buf, size_t n, double v)
{
	if (v >= 100)
		snprintf(buf, n, "%.0f", v);
	else if (v >= 10)
		snprintf(buf, n, "%.1f", v);
	else
		snprintf(buf, n, "%.2f", v);
}

enum rowkind { ROW_OPS, ROW_MB, ROW_P50, ROW_P99 };

static double row_value(const struct result *r, enum rowkind k)
{
	switch (k) {
	case ROW_MB: return r->mb_s;
	case ROW_P50: return r->p50_us;
	case ROW_P99: return r->p99_us;
	default: return r->ops_s;
	}
}

static void print_row(enum op op, enum rowkind k, const char *label)
{
	char buf[32];
	unsigned bi, t;
	int ref, met;
	double val, req;
	const struct target *tg = target_of(op);

	printf("%-24s", label);
	for (bi = 0; bi < nbackends; bi++)
		for (t = 1; t <= 2; t++) {
			const struct result *r = &res[bi][op][t];

			if (r->ok)
				fmt(buf, sizeof(buf), row_value(r, k));
			else
				snprintf(buf, sizeof(buf), "n/a");
			printf(" %12s", buf);
		}
	for (ref = 1; ref < (int)nbackends; ref++) {
		const struct result *s = &res[0][op][2], *r = &res[ref][op][2];

		if (k == ROW_P99 || k == ROW_P50 || !s->ok || !r->ok ||
		    row_value(r, k) == 0)
			snprintf(buf, sizeof(buf), "-");
		else
			snprintf(buf, sizeof(buf), "%.2f",
				 row_value(s, k) / row_value(r, k));
		printf(" %10s", buf);
	}
	if ((k == ROW_OPS && tg && !tg->mb) || (k == ROW_MB && tg && tg->mb)) {
		met = target_met(op, &val, &req);
		printf("  %-22s %s", tg->text,
		       met < 0 ? "n/a" : met ? "MET" : "NOT MET");
	} else if (op == OP_RAND && k == ROW_P50) {
		met = target_met(op, &val, &req);
		printf("  %-22s %s", "p50 <= 10 us",
		       met < 0 ? "n/a" : met ? "MET" : "NOT MET");
	}
	printf("\n");
}

static void print_table(double seconds, unsigned rounds)
{
	unsigned bi;
	int i;
	char hdr[64];

	printf("\nops/s unless noted; %.1f s per cell in %u rounds; ratios at "
	       "2 threads; targets: issue 5, 2 threads\n\n", seconds, rounds);
	printf("%-24s", "operation");
	for (bi = 0; bi < nbackends; bi++) {
		snprintf(hdr, sizeof(hdr), "%.9s 1t", backends[bi].name);
		printf(" %12s", hdr);
		snprintf(hdr, sizeof(hdr), "%.9s 2t", backends[bi].name);
		printf(" %12s", hdr);
	}
	for (bi = 1; bi < nbackends; bi++) {
		snprintf(hdr, sizeof(hdr), "/%.9s", backends[bi].name);
		printf(" %10s", hdr);
	}
	printf("  %-22s %s\n", "target", "status");
	for (i = 0; i < NOPS; i++) {
		char label[48];

		if (i == OP_GCM4K || i == OP_GCM1M) {
			snprintf(label, sizeof(label), "%s", ops[i].label);
			print_row(i, ROW_OPS, label);
			snprintf(label, sizeof(label), "%s MB/s", ops[i].label);
			print_row(i, ROW_MB, label);
		} else if (i == OP_RAND) {
			print_row(i, ROW_OPS, ops[i].label);
			print_row(i, ROW_P50, "random 32 B p50 us");
			print_row(i, ROW_P99, "random 32 B p99 us");
		} else {
			print_row(i, ROW_OPS, ops[i].label);
		}
	}
	printf("\n");
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

static int write_json(const char *path, double seconds, unsigned rounds)
{
	FILE *f = fopen(path, "w");
	unsigned bi, t;
	int i, first = 1, met;
	double val, req;
	time_t now = time(NULL);
	char date[32];

	if (!f) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "{\n  \"date\": \"%s\",\n  \"seconds_per_cell\": %.3f,\n"
		"  \"rounds\": %u,\n  \"openssl\": ", date, seconds, rounds);
	json_str(f, OPENSSL_VERSION_TEXT);
	/* phsm's transport: PHSM_TRANSPORT as given, unset: "default" (shm). */
	fprintf(f, ",\n  \"phsm_transport\": ");
	json_str(f, getenv("PHSM_TRANSPORT") ? getenv("PHSM_TRANSPORT") :
		 "default");
	fprintf(f, ",\n  \"backends\": [");
	for (bi = 0; bi < nbackends; bi++) {
		fprintf(f, "%s\n    {\"name\": ", bi ? "," : "");
		json_str(f, backends[bi].name);
		fprintf(f, ", \"module\": ");
		if (backends[bi].path)
			json_str(f, backends[bi].path);
		else
			fprintf(f, "null");
		fprintf(f, "}");
	}
	fprintf(f, "\n  ],\n  \"results\": [");
	for (bi = 0; bi < nbackends; bi++)
		for (i = 0; i < NOPS; i++)
			for (t = 1; t <= 2; t++) {
				struct result *r = &res[bi][i][t];

				fprintf(f, "%s\n    {\"backend\": ",
					first ? "" : ",");
				first = 0;
				json_str(f, backends[bi].name);
				fprintf(f, ", \"op\": \"%s\", \"threads\": %u, "
					"\"bytes\": %zu, ", ops[i].key, t,
					ops[i].len);
				if (!r->ok) {
					fprintf(f, "\"status\": \"n/a\"}");
					continue;
				}
				fprintf(f, "\"status\": \"ok\", \"ops\": %llu, "
					"\"seconds\": %.4f, \"ops_per_s\": "
					"%.1f, \"mb_per_s\": %.2f, "
					"\"p50_us\": %.3f, \"p99_us\": %.3f}",
					(unsigned long long)r->n, r->secs,
					r->ops_s, r->mb_s, r->p50_us,
					r->p99_us);
			}
	fprintf(f, "\n  ],\n  \"targets\": [");
	first = 1;
	for (i = 0; i < NOPS; i++) {
		const struct target *tg = target_of(i);

		if (!tg && i != OP_RAND)
			continue;
		met = target_met(i, &val, &req);
		fprintf(f, "%s\n    {\"op\": \"%s\", \"target\": ",
			first ? "" : ",", ops[i].key);
		first = 0;
		json_str(f, tg ? tg->text : "p50 <= 10 us");
		if (met < 0)
			fprintf(f, ", \"status\": \"n/a\"}");
		else
			fprintf(f, ", \"value\": %.3f, \"required\": %.3f, "
				"\"status\": \"%s\"}", val, req,
				met ? "MET" : "NOT MET");
	}
	fprintf(f, "\n  ]\n}\n");
	if (fclose(f)) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- main ---------------------------------------------------------- */

static const char *name_of(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (strstr(base, "softhsm"))
		return "SoftHSMv2";
	if (strstr(base, "phsm"))
		return "phsm";
	return base;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench --module PATH [--module PATH ...] "
		"[--openssl] [--seconds S] [--rounds R]\n"
		"             [--json FILE] [--pin PIN] [--so-pin PIN] "
		"[--ops NAME,...]\n"
		"  --rounds: the seconds of each cell split into R rounds "
		"(default 4)\n"
		"  --ops: only these rows, by JSON name (rsa2048_sign,\n"
		"         p256_sign, ed25519_sign, aes256gcm_4k,\n"
		"         aes256gcm_1m, sha256_4k, random32); default all\n");
	exit(2);
}

/* --ops: a comma-separated list of JSON names; 1 per chosen row. */
static int parse_ops(const char *list, int chosen[NOPS])
{
	const char *p = list;

	memset(chosen, 0, NOPS * sizeof(chosen[0]));
	while (*p) {
		size_t n = strcspn(p, ",");
		int i;

		for (i = 0; i < NOPS; i++)
			if (strlen(ops[i].key) == n &&
			    !strncmp(ops[i].key, p, n))
				break;
		if (i == NOPS)
			return -1;
		chosen[i] = 1;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *json = NULL;
	double seconds = 2.0, t0;
	int openssl = 0, i, failed = 0;
	int chosen[NOPS];
	unsigned bi, t, round, rounds = 4;

	for (i = 0; i < NOPS; i++)
		chosen[i] = 1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--openssl")) {
			openssl = 1;
		} else if (i + 1 >= argc) {
			usage();
		} else if (!strcmp(a, "--module")) {
			if (nbackends >= MAX_BACKENDS - 1)
				usage();
			backends[nbackends].path = argv[++i];
			backends[nbackends].name = name_of(argv[i]);
			nbackends++;
		} else if (!strcmp(a, "--seconds")) {
			seconds = strtod(argv[++i], NULL);
			if (!(seconds > 0 && seconds < 3600))
				usage();
		} else if (!strcmp(a, "--rounds")) {
			rounds = (unsigned)strtoul(argv[++i], NULL, 10);
			if (rounds < 1 || rounds > 100)
				usage();
		} else if (!strcmp(a, "--json")) {
			json = argv[++i];
		} else if (!strcmp(a, "--pin")) {
			user_pin = argv[++i];
		} else if (!strcmp(a, "--so-pin")) {
			so_pin = argv[++i];
		} else if (!strcmp(a, "--ops")) {
			if (parse_ops(argv[++i], chosen))
				usage();
		} else {
			usage();
		}
	}
	if (openssl) {
		backends[nbackends].name = "OpenSSL";
		nbackends++;
	}
	if (!nbackends)
		usage();

	for (bi = 0; bi < nbackends; bi++) {
		struct backend *b = &backends[bi];

		if (b->path ? setup_module(b) : setup_openssl(b)) {
			fprintf(stderr, "bench: %s: skipped\n", b->name);
			b->skip = 1;
			failed = 1;
			continue;
		}
		for (i = 0; i < NOPS; i++)
			if (chosen[i] && !b->have[i])
				fprintf(stderr, "bench: %s: %s: n/a (mechanism "
					"not offered)\n", b->name, ops[i].label);
	}
	for (round = 0; round < rounds; round++) {
		t0 = now_s();
		for (i = 0; i < NOPS; i++)
			for (t = 1; chosen[i] && t <= MAX_THREADS; t++)
				for (bi = 0; bi < nbackends; bi++)
					if (!backends[bi].skip &&
					    backends[bi].have[i])
						run_cell(&backends[bi], bi, i,
							 t, seconds / rounds);
		fprintf(stderr, "bench: round %u of %u done in %.1f s\n",
			round + 1, rounds, now_s() - t0);
	}
	for (bi = 0; bi < nbackends; bi++)
		for (i = 0; i < NOPS; i++)
			for (t = 1; t <= MAX_THREADS; t++)
				finish_cell(i, &res[bi][i][t]);
	print_table(seconds, rounds);
	if (json && write_json(json, seconds, rounds))
		failed = 1;
	for (bi = 0; bi < nbackends; bi++) {
		if (backends[bi].path) {
			teardown_module(&backends[bi]);
		} else {
			for (i = 0; i < NOPS; i++)
				EVP_PKEY_free(backends[bi].pkey[i]);
		}
	}
	fflush(stdout);
	return failed;
}
