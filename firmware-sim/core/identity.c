// SPDX-License-Identifier: MIT
/*
 * The card's identity for key cloning (Documentation/phsm/cloning.rst,
 * "Card identity"): the simulated manufacturer CA, provisioning of the
 * card's device key and certificate, chain checks of peer cards and the
 * device signatures of the cloning messages.
 *
 * The manufacturer directory stands in for an offline CA: root.key (EC
 * P-384, PKCS#8 PEM, 0600), root.pem (self-signed) and lock, the flock
 * target under which the root is created and device certificates are
 * signed, so cards provisioned in parallel never race.  A running card
 * never reads root.key: it keeps its device key (sealed in the store),
 * its certificate and the root certificate as its only trust anchor.
 *
 * The identity is immutable once the card is open, so it needs no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <phsm/cryptoki_ca.h>

#include "clone.h"

#define MFG_PATH_MAX	4096
#define SERIAL_BYTES	16
#define ROOT_YEARS	30
#define DEVICE_YEARS	20
/*
 * Certificates start a day before they are made: a peer whose clock is
 * a little behind (up to 3 s is allowed, a negative --clock-offset may
 * be more) must not find a fresh certificate "not yet valid".
 */
#define BACKDATE	(24 * 3600)
#define ROOT_CN		"phsm simulated manufacturer root"
#define DER_MAX		8192	/* a certificate in a chain */

struct fw_identity {
	unsigned int curve;		/* 256 or 384 */
	EVP_PKEY *key;			/* the device key */
	uint8_t *cert;			/* DER */
	size_t cert_len;
	uint8_t *root;			/* DER */
	size_t root_len;
	uint8_t root_id[FW_CLN_ROOT_ID_LEN];
	X509_STORE *anchors;		/* the root, nothing else */
};

static void errf(char *err, size_t len, const char *fmt, const char *a,
		 const char *b)
{
	if (err && len)
		snprintf(err, len, fmt, a, b);
}

/* ---- files of the manufacturer directory ------------------------------ */

static bool mfg_path(char *buf, const char *dir, const char *name)
{
	int n = snprintf(buf, MFG_PATH_MAX, "%s/%s", dir, name);

	return n > 0 && n < MFG_PATH_MAX;
}

/* Open and flock MFG/lock; the fd, or -1. */
static int mfg_lock(const char *dir, char *err, size_t err_len)
{
	char path[MFG_PATH_MAX];
	int fd;

	if (!mfg_path(path, dir, "lock")) {
		errf(err, err_len, "%s%s", "manufacturer directory path too long", "");
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		errf(err, err_len, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX)) {
		if (errno != EINTR) {
			errf(err, err_len, "cannot lock %s: %s", path,
			     strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

static void mfg_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* releases the flock */
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write name in dir through a temporary file, so it is whole or absent. */
static int write_file(const char *dir, const char *name, const void *data,
		      size_t len, mode_t mode, char *err, size_t err_len)
{
	char path[MFG_PATH_MAX], tmp[MFG_PATH_MAX];
	int fd, dfd;

	if (!mfg_path(path, dir, name) || !mfg_path(tmp, dir, "tmp.new")) {
		errf(err, err_len, "%s%s", "manufacturer directory path too long", "");
		return -1;
	}
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 || write_all(fd, data, len) || fsync(fd)) {
		errf(err, err_len, "cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path)) {
		errf(err, err_len, "cannot install %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static BIO *mfg_open(const char *dir, const char *name, char *err,
		     size_t err_len)
{
	char path[MFG_PATH_MAX];
	BIO *b;

	if (!mfg_path(path, dir, name)) {
		errf(err, err_len, "%s%s", "manufacturer directory path too long", "");
		return NULL;
	}
	b = BIO_new_file(path, "r");
	if (!b)
		errf(err, err_len, "cannot read %s: %s", path,
		     errno ? strerror(errno) : "error");
	ERR_clear_error();
	return b;
}

static X509 *mfg_read_root(const char *dir, char *err, size_t err_len)
{
	BIO *b = mfg_open(dir, "root.pem", err, err_len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	if (b && !x)
		errf(err, err_len, "%s/root.pem: %s", dir, "not a certificate");
	BIO_free(b);
	ERR_clear_error();
	return x;
}

static EVP_PKEY *mfg_read_key(const char *dir, char *err, size_t err_len)
{
	BIO *b = mfg_open(dir, "root.key", err, err_len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	if (b && !k)
		errf(err, err_len, "%s/root.key: %s", dir, "not a private key");
	BIO_free(b);
	ERR_clear_error();
	return k;
}

/* ---- certificates ----------------------------------------------------- */

/* A random positive 16-byte serial number. */
static bool set_serial(X509 *x)
{
	uint8_t rnd[SERIAL_BYTES];
	BIGNUM *bn;
	bool ok;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return false;
	rnd[0] = (rnd[0] & 0x7f) | 0x40;	/* positive, full length */
	bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	return ok;
}

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	bool ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	ok = ext && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/*
 * A certificate for key, named name, issued by issuer (NULL: itself)
 * with issuer_key, valid from now - BACKDATE for years, ECDSA-SHA384.
 */
static X509 *make_cert(EVP_PKEY *key, X509_NAME *name, X509 *issuer,
		       EVP_PKEY *issuer_key, time_t now, int years, bool ca)
{
	time_t from = now - BACKDATE;
	long days = (long)years * 365 + years / 4 + 1;
	X509 *x = X509_new();
	bool ok;

	if (!x)
		return NULL;
	ok = X509_set_version(x, X509_VERSION_3) && set_serial(x) &&
	     X509_set_subject_name(x, name) &&
	     X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
					    : name) &&
	     X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &from) &&
	     X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &from) &&
	     X509_set_pubkey(x, key);
	if (ok && ca)
		ok = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
		     add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
		     add_ext(x, x, NID_subject_key_identifier, "hash") &&
		     add_ext(x, x, NID_authority_key_identifier, "keyid:always");
	else if (ok)
		ok = add_ext(x, issuer, NID_basic_constraints,
			     "critical,CA:FALSE") &&
		     add_ext(x, issuer, NID_key_usage,
			     "critical,digitalSignature") &&
		     add_ext(x, issuer, NID_subject_key_identifier, "hash") &&
		     add_ext(x, issuer, NID_authority_key_identifier,
			     "keyid:always");
	ok = ok && X509_sign(x, issuer_key, EVP_sha384()) > 0;
	ERR_clear_error();
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* PEM bytes of a key (PKCS#8) or certificate, from a memory BIO. */
static int write_pem(const char *dir, const char *name, EVP_PKEY *key,
		     X509 *cert, mode_t mode, char *err, size_t err_len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;
	int rc = -1;

	if (b && (key ? PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0,
						       NULL, NULL)
		      : PEM_write_bio_X509(b, cert)) &&
	    (len = BIO_get_mem_data(b, &data)) > 0)
		rc = write_file(dir, name, data, (size_t)len, mode, err, err_len);
	else
		errf(err, err_len, "cannot encode %s/%s", dir, name);
	if (data)
		OPENSSL_cleanse(data, (size_t)BIO_pending(b));
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

static int mfg_create(const char *dir, char *err, size_t err_len)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	X509_NAME *name = X509_NAME_new();
	X509 *root = NULL;
	int rc = -1;

	if (key && name &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)ROOT_CN, -1, -1, 0))
		root = make_cert(key, name, NULL, key, time(NULL), ROOT_YEARS,
				 true);
	if (!root)
		errf(err, err_len, "%s%s", "cannot make the manufacturer root", "");
	/* The key first: root.pem present means the root is complete. */
	else if (!write_pem(dir, "root.key", key, NULL, 0600, err, err_len) &&
		 !write_pem(dir, "root.pem", NULL, root, 0644, err, err_len))
		rc = 0;
	X509_free(root);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}

int fw_mfg_init(const char *dir, char *err, size_t err_len)
{
	char path[MFG_PATH_MAX];
	X509 *root;
	int fd, rc = 0;

	if (!dir || !*dir || !mfg_path(path, dir, "root.pem")) {
		errf(err, err_len, "%s%s", "bad manufacturer directory name", "");
		return -1;
	}
	if (mkdir(dir, 0755) && errno != EEXIST) {
		errf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	fd = mfg_lock(dir, err, err_len);
	if (fd < 0)
		return -1;
	if (access(path, F_OK) == 0) {
		/* Never replaced; but it must be one. */
		root = mfg_read_root(dir, err, err_len);
		rc = root ? 0 : -1;
		X509_free(root);
	} else if (errno == ENOENT) {
		rc = mfg_create(dir, err, err_len);
	} else {
		errf(err, err_len, "cannot read %s: %s", path, strerror(errno));
		rc = -1;
	}
	mfg_unlock(fd);
	return rc;
}

/* ---- the card's identity ---------------------------------------------- */

static bool der_of_cert(X509 *x, uint8_t **out, size_t *len)
{
	int n = i2d_X509(x, NULL);
	uint8_t *p;

	*out = NULL;
	if (n <= 0 || !(*out = malloc((size_t)n)))
		return false;
	p = *out;
	*len = (size_t)i2d_X509(x, &p);
	return *len == (size_t)n;
}

/* SHA-256 of the DER SubjectPublicKeyInfo: the root ID. */
static bool root_id_of(X509 *root, uint8_t id[FW_CLN_ROOT_ID_LEN])
{
	uint8_t *der = NULL;
	unsigned int n = 0;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(root), &der);
	bool ok = len > 0 &&
		  EVP_Digest(der, (size_t)len, id, &n, EVP_sha256(), NULL) &&
		  n == FW_CLN_ROOT_ID_LEN;

	OPENSSL_free(der);
	return ok;
}

/* The curve of an EC key: 256, 384, or 0 for anything else. */
static unsigned int ec_curve(EVP_PKEY *k)
{
	char name[64];
	int nid;

	if (!k || !EVP_PKEY_is_a(k, "EC") ||
	    !EVP_PKEY_get_group_name(k, name, sizeof(name), NULL))
		return 0;
	nid = OBJ_sn2nid(name);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(name);
	return nid == NID_X9_62_prime256v1 ? 256 :
	       nid == NID_secp384r1 ? 384 : 0;
}

static void identity_free(struct fw_identity *id)
{
	if (!id)
		return;
	EVP_PKEY_free(id->key);
	free(id->cert);
	free(id->root);
	X509_STORE_free(id->anchors);
	free(id);
}

/* The identity a store record describes, checked for consistency. */
static struct fw_identity *identity_from_rec(const struct fw_id_rec *rec)
{
	struct fw_identity *id = calloc(1, sizeof(*id));
	const uint8_t *p;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	X509 *cert = NULL, *root = NULL;
	bool ok = false;

	if (!id)
		return NULL;
	p = rec->key;
	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)rec->key_len);
	if (p8)
		id->key = EVP_PKCS82PKEY(p8);
	p = rec->cert;
	cert = d2i_X509(NULL, &p, (long)rec->cert_len);
	p = rec->root;
	root = d2i_X509(NULL, &p, (long)rec->root_len);
	id->curve = rec->curve;
	id->cert = malloc(rec->cert_len);
	id->root = malloc(rec->root_len);
	id->anchors = X509_STORE_new();
	if (id->key && cert && root && id->cert && id->root && id->anchors &&
	    ec_curve(id->key) == rec->curve &&
	    X509_check_private_key(cert, id->key) == 1 &&
	    root_id_of(root, id->root_id) &&
	    X509_STORE_add_cert(id->anchors, root) == 1) {
		memcpy(id->cert, rec->cert, rec->cert_len);
		id->cert_len = rec->cert_len;
		memcpy(id->root, rec->root, rec->root_len);
		id->root_len = rec->root_len;
		ok = true;
	}
	PKCS8_PRIV_KEY_INFO_free(p8);
	X509_free(cert);
	X509_free(root);
	ERR_clear_error();
	if (!ok) {
		identity_free(id);
		return NULL;
	}
	return id;
}

/* "phsm card <serial>" and the serial itself, without the padding. */
static X509_NAME *device_name(const struct fw_card *card)
{
	char serial[PHSM_SERIAL_LEN + 1], cn[PHSM_SERIAL_LEN + 16];
	X509_NAME *name = X509_NAME_new();
	size_t n = PHSM_SERIAL_LEN;

	while (n && card->serial[n - 1] == ' ')
		n--;
	memcpy(serial, card->serial, n);
	serial[n] = '\0';
	snprintf(cn, sizeof(cn), "phsm card %s", serial);
	if (!name || !n ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_ASC,
					(const unsigned char *)serial, -1, -1,
					0)) {
		X509_NAME_free(name);
		return NULL;
	}
	return name;
}

/* Have the root in mfg sign a certificate for key; under MFG/lock. */
static X509 *mfg_certify(const struct fw_card *card, const char *mfg,
			 EVP_PKEY *key, X509 **root_out, char *err,
			 size_t err_len)
{
	X509_NAME *name = device_name(card);
	EVP_PKEY *root_key = NULL;
	X509 *root = NULL, *cert = NULL;
	int fd = -1;

	if (!name)
		errf(err, err_len, "%s%s", "cannot name the device certificate", "");
	else
		fd = mfg_lock(mfg, err, err_len);
	if (fd >= 0) {
		root = mfg_read_root(mfg, err, err_len);
		root_key = root ? mfg_read_key(mfg, err, err_len) : NULL;
	}
	if (root_key && X509_check_private_key(root, root_key) != 1)
		errf(err, err_len, "%s: root.key does not match root.pem", mfg, "");
	else if (root_key)
		cert = make_cert(key, name, root, root_key,
				 (time_t)fw_clock(card), DEVICE_YEARS, false);
	if (root_key && !cert)
		errf(err, err_len, "%s: cannot sign the device certificate", mfg, "");
	mfg_unlock(fd);
	EVP_PKEY_free(root_key);
	X509_NAME_free(name);
	ERR_clear_error();
	if (cert)
		*root_out = root;
	else
		X509_free(root);
	return cert;
}

static bool pkcs8_der(EVP_PKEY *key, uint8_t **out, size_t *len)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
	int n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : 0;
	uint8_t *p;

	*out = NULL;
	if (n > 0 && (*out = malloc((size_t)n))) {
		p = *out;
		*len = (size_t)i2d_PKCS8_PRIV_KEY_INFO(p8, &p);
	}
	PKCS8_PRIV_KEY_INFO_free(p8);
	return *out && *len == (size_t)n;
}

/* Generate the device key, have it certified, store it all. */
static int provision(struct fw_card *card, const struct fw_card_config *cfg,
		     struct fw_id_rec *rec, char *err, size_t err_len)
{
	unsigned int curve = cfg->device_curve ? cfg->device_curve : 256;
	EVP_PKEY *key;
	X509 *cert, *root = NULL;
	bool ok;

	if (curve != 256 && curve != 384) {
		errf(err, err_len, "%s%s", "device curve: 256 or 384", "");
		return -1;
	}
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
				curve == 384 ? "P-384" : "P-256");
	if (!key) {
		errf(err, err_len, "%s%s", "cannot generate the device key", "");
		return -1;
	}
	cert = mfg_certify(card, cfg->mfg_dir, key, &root, err, err_len);
	rec->curve = curve;
	ok = cert && pkcs8_der(key, &rec->key, &rec->key_len) &&
	     der_of_cert(cert, &rec->cert, &rec->cert_len) &&
	     der_of_cert(root, &rec->root, &rec->root_len);
	if (cert && !ok)
		errf(err, err_len, "%s%s", "cannot encode the identity", "");
	if (ok && fw_store_put_identity(card->store, rec) != CKR_OK) {
		errf(err, err_len, "%s%s", "cannot store the identity", "");
		ok = false;
	}
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_free(root);
	ERR_clear_error();
	return ok ? 0 : -1;
}

/* An identity exists: a different --mfg is reported and ignored. */
static void check_same_mfg(const struct fw_identity *id, const char *mfg)
{
	char err[256] = "";
	X509 *root = mfg_read_root(mfg, err, sizeof(err));
	uint8_t *der = NULL;
	size_t len = 0;

	if (!root)
		fw_log("--mfg %s ignored, the card has its identity (%s)", mfg,
		       err);
	else if (!der_of_cert(root, &der, &len) || len != id->root_len ||
		 memcmp(der, id->root, len))
		fw_log("--mfg %s ignored: the card was provisioned by another"
		       " manufacturer root", mfg);
	free(der);
	X509_free(root);
}

int fw_identity_open(struct fw_card *card, const struct fw_card_config *cfg,
		     char *err, size_t err_len)
{
	struct fw_id_rec rec;
	int got = fw_store_load_identity(card->store, &rec);

	card->identity = NULL;
	if (got < 0) {
		errf(err, err_len, "%s%s", "store: the card identity is corrupt", "");
		return -1;
	}
	if (got == 1 && !cfg->mfg_dir)
		return 0;	/* runs, but cannot clone */
	if (got == 1 && provision(card, cfg, &rec, err, err_len)) {
		fw_id_rec_free(&rec);
		return -1;
	}
	card->identity = identity_from_rec(&rec);
	fw_id_rec_free(&rec);
	if (!card->identity) {
		errf(err, err_len, "%s%s", "the card identity is not valid", "");
		return -1;
	}
	if (got == 0 && cfg->mfg_dir)
		check_same_mfg(card->identity, cfg->mfg_dir);
	return 0;
}

void fw_identity_close(struct fw_card *card)
{
	identity_free(card->identity);
	card->identity = NULL;
}

uint64_t fw_clock(const struct fw_card *card)
{
	int64_t now = (int64_t)time(NULL) + card->clone_cfg.clock_offset;

	return now < 0 ? 0 : (uint64_t)now;
}

/* ---- what the messages carry ------------------------------------------ */

CK_RV fw_id_ready(const struct fw_card *card)
{
	return card->identity ? CKR_OK : CKR_SESSION_NEGOTIATION_NO_ROOTS;
}

uint64_t fw_id_sig_alg(const struct fw_card *card)
{
	if (!card->identity)
		return 0;
	return card->identity->curve == 384 ? FW_CLN_SIG_P384_SHA384
					    : FW_CLN_SIG_P256_SHA256;
}

size_t fw_id_sig_algs(uint64_t *out, size_t max)
{
	static const uint64_t algs[] = {
		FW_CLN_SIG_P256_SHA256, FW_CLN_SIG_P384_SHA384,
	};
	size_t n = 0;

	for (; n < max && n < sizeof(algs) / sizeof(algs[0]); n++)
		out[n] = algs[n];
	return n;
}

void fw_id_put_root_ids(const struct fw_card *card, struct phsm_writer *w)
{
	const struct fw_identity *id = card->identity;

	phsm_put_bytes(w, id ? id->root_id : NULL, id ? FW_CLN_ROOT_ID_LEN : 0);
}

bool fw_id_root_trusted_by(const struct fw_card *card, const uint8_t *ids,
			   size_t len)
{
	const struct fw_identity *id = card->identity;

	if (!id || !ids || len % FW_CLN_ROOT_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i += FW_CLN_ROOT_ID_LEN)
		if (!CRYPTO_memcmp(ids + i, id->root_id, FW_CLN_ROOT_ID_LEN))
			return true;
	return false;
}

void fw_id_put_chain(const struct fw_card *card, struct phsm_writer *w)
{
	const struct fw_identity *id = card->identity;
	struct phsm_writer in = { 0 };

	if (!id) {
		phsm_put_bytes(w, NULL, 0);
		return;
	}
	phsm_put_bytes(&in, id->root_id, FW_CLN_ROOT_ID_LEN);
	phsm_put_bytes(&in, id->cert, id->cert_len);
	if (in.failed)
		w->failed = true;	/* the caller sees it at the end */
	else
		phsm_put_bytes(w, in.data, in.len);
	phsm_writer_free(&in);
}

/* ---- signatures ------------------------------------------------------- */

static const char *sig_md(uint64_t sig_alg)
{
	return sig_alg == FW_CLN_SIG_P256_SHA256 ? "SHA256" :
	       sig_alg == FW_CLN_SIG_P384_SHA384 ? "SHA384" : NULL;
}

/* Bytes of r and of s in a raw signature of sig_alg. */
static size_t sig_half(uint64_t sig_alg)
{
	return sig_alg == FW_CLN_SIG_P256_SHA256 ? 32 :
	       sig_alg == FW_CLN_SIG_P384_SHA384 ? 48 : 0;
}

/* The hash of a signature mechanism, as a KDF hash (clone_crypto.c). */
static uint64_t sig_kdf(uint64_t sig_alg)
{
	return sig_alg == FW_CLN_SIG_P256_SHA256 ? FW_CLN_KDF_SHA256 :
	       sig_alg == FW_CLN_SIG_P384_SHA384 ? FW_CLN_KDF_SHA384 : 0;
}

/*
 * label || H(pre || data): what a device signature covers (before the
 * signature's own hash).  pre may be empty.
 */
static bool signed_msg(uint64_t sig_alg, const char *label,
		       const uint8_t *pre, size_t pre_len, const uint8_t *data,
		       size_t len, uint8_t *msg, size_t *msg_len)
{
	const uint8_t *parts[2] = { pre, data };
	size_t lens[2] = { pre_len, len }, l = strlen(label);
	uint64_t kdf = sig_kdf(sig_alg);

	if (l > 64 || !kdf || !fw_kdf_hash(kdf, parts, lens, 2, msg + l))
		return false;
	memcpy(msg, label, l);
	*msg_len = l + fw_kdf_len(kdf);
	return true;
}

/* Append U64 sig_alg, BYTES sig over label || H(pre || data). */
static CK_RV sign_parts(const struct fw_card *card, const char *label,
			const uint8_t *pre, size_t pre_len,
			const uint8_t *data, size_t len,
			struct phsm_writer *w)
{
	const struct fw_identity *id = card->identity;
	uint64_t alg = fw_id_sig_alg(card);
	size_t half = sig_half(alg), der_len = 0, msg_len = 0;
	uint8_t msg[64 + FW_CLN_HASH_MAX], der[160], raw[96];
	const uint8_t *p = der;
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (!id)
		return CKR_SESSION_NEGOTIATION_NO_ROOTS;
	if (!signed_msg(alg, label, pre, pre_len, data, len, msg, &msg_len))
		return CKR_DEVICE_ERROR;
	der_len = sizeof(der);
	ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestSignInit_ex(ctx, NULL, sig_md(alg), NULL, NULL,
					 id->key, NULL) == 1 &&
	    EVP_DigestSign(ctx, der, &der_len, msg, msg_len) == 1 &&
	    (sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len))) {
		ECDSA_SIG_get0(sig, &r, &s);
		if (BN_bn2binpad(r, raw, (int)half) == (int)half &&
		    BN_bn2binpad(s, raw + half, (int)half) == (int)half) {
			phsm_put_u64(w, alg);
			phsm_put_bytes(w, raw, 2 * half);
			rv = CKR_OK;
		}
	}
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rv;
}

CK_RV fw_id_sign(const struct fw_card *card, const char *label,
		 const uint8_t *data, size_t len, struct phsm_writer *w)
{
	return sign_parts(card, label, NULL, 0, data, len, w);
}

CK_RV fw_id_sign_msg(const struct fw_card *card, const char *label,
		     const uint8_t *pre, size_t pre_len, struct phsm_writer *w)
{
	uint8_t *msg;
	size_t len;
	CK_RV rv;

	if (w->failed)
		return CKR_HOST_MEMORY;
	/* The message so far and the U64 sig_alg field sign_parts() adds. */
	len = w->len + FW_CLN_U64_FIELD;
	msg = malloc(len);
	if (!msg)
		return CKR_HOST_MEMORY;
	memcpy(msg, w->data, w->len);
	fw_cln_field_hdr(msg + w->len, PHSM_FT_U64, 8);
	fw_put_le64(msg + w->len + FW_CLN_FIELD_HDR, fw_id_sig_alg(card));
	rv = sign_parts(card, label, pre, pre_len, msg, len, w);
	free(msg);
	return rv;
}

/*
 * Verify a raw r || s signature of sig_alg by key over
 * label || H(pre || data).
 */
static bool verify_sig(EVP_PKEY *key, uint64_t sig_alg, const uint8_t *raw,
		       size_t raw_len, const char *label, const uint8_t *pre,
		       size_t pre_len, const uint8_t *data, size_t len)
{
	size_t half = sig_half(sig_alg), msg_len = 0;
	uint8_t msg[64 + FW_CLN_HASH_MAX], *der = NULL;
	ECDSA_SIG *sig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	EVP_MD_CTX *ctx = NULL;
	int der_len = 0;
	bool ok = false;

	if (!half || !raw || raw_len != 2 * half ||
	    !signed_msg(sig_alg, label, pre, pre_len, data, len, msg, &msg_len))
		return false;
	sig = ECDSA_SIG_new();
	r = BN_bin2bn(raw, (int)half, NULL);
	s = BN_bin2bn(raw + half, (int)half, NULL);
	if (sig && r && s && ECDSA_SIG_set0(sig, r, s)) {
		r = s = NULL;	/* sig owns them */
		der_len = i2d_ECDSA_SIG(sig, &der);
	}
	ctx = EVP_MD_CTX_new();
	if (der_len > 0 && ctx &&
	    EVP_DigestVerifyInit_ex(ctx, NULL, sig_md(sig_alg), NULL, NULL, key,
				    NULL) == 1)
		ok = EVP_DigestVerify(ctx, der, (size_t)der_len, msg,
				      msg_len) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	ERR_clear_error();
	return ok;
}

/* ---- peer chains ------------------------------------------------------ */

struct peer_chain {
	const uint8_t *root_id;
	size_t root_id_len;
	X509 *leaf;
	STACK_OF(X509) *untrusted;	/* the intermediate, if any */
};

static void chain_free(struct peer_chain *c)
{
	X509_free(c->leaf);
	sk_X509_pop_free(c->untrusted, X509_free);
}

static X509 *parse_cert(const uint8_t *der, size_t len)
{
	const uint8_t *p = der;
	X509 *x;

	if (!der || !len || len > DER_MAX)
		return NULL;
	x = d2i_X509(NULL, &p, (long)len);
	/* Exactly one certificate, nothing after it. */
	if (x && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* Decode the chain field: BYTES root_id, BYTES cert, [BYTES intermediate]. */
static bool chain_parse(const uint8_t *chain, size_t len, struct peer_chain *c)
{
	struct phsm_reader r;
	const uint8_t *der;
	size_t der_len;
	X509 *inter;

	memset(c, 0, sizeof(*c));
	phsm_reader_init(&r, chain, len);
	c->root_id = phsm_get_bytes(&r, &c->root_id_len);
	der = phsm_get_bytes(&r, &der_len);
	if (r.status != PHSM_ST_OK)
		return false;
	c->leaf = parse_cert(der, der_len);
	if (!c->leaf)
		return false;
	c->untrusted = sk_X509_new_null();
	if (!c->untrusted)
		return false;
	if (r.left) {
		der = phsm_get_bytes(&r, &der_len);
		inter = r.status == PHSM_ST_OK ? parse_cert(der, der_len) : NULL;
		if (!inter)
			return false;
		if (!sk_X509_push(c->untrusted, inter)) {
			X509_free(inter);
			return false;
		}
	}
	return phsm_reader_done(&r);
}

static bool cert_sig_ok(X509 *x)
{
	int nid = X509_get_signature_nid(x);

	return nid == NID_ecdsa_with_SHA256 || nid == NID_ecdsa_with_SHA384;
}

/* X509_verify_cert against our anchors only, at the card's clock. */
static bool chain_verifies(const struct fw_card *card, struct peer_chain *c)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *vp;
	bool ok = false;

	if (ctx && X509_STORE_CTX_init(ctx, card->identity->anchors, c->leaf,
				       c->untrusted) == 1) {
		vp = X509_STORE_CTX_get0_param(ctx);
		X509_VERIFY_PARAM_set_time(vp, (time_t)fw_clock(card));
		X509_VERIFY_PARAM_set_depth(vp, 1);	/* one intermediate */
		X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_X509_STRICT);
		ok = X509_verify_cert(ctx) == 1;
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* The leaf: not a CA, for signatures, a P-256 or P-384 key. */
static unsigned int leaf_curve(X509 *leaf)
{
	if (X509_check_ca(leaf) != 0 ||
	    !(X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) ||
	    !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
		return 0;
	return ec_curve(X509_get0_pubkey(leaf));
}

CK_RV fw_id_verify_peer(const struct fw_card *card, const uint8_t *chain,
			size_t chain_len, uint64_t sig_alg, const uint8_t *sig,
			size_t sig_len, const char *label, const uint8_t *pre,
			size_t pre_len, const uint8_t *data, size_t len,
			CK_RV bad_sig)
{
	const struct fw_identity *id = card->identity;
	struct peer_chain c;
	unsigned int curve;
	CK_RV rv = CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT;
	bool parsed;

	if (!id)
		return CKR_SESSION_NEGOTIATION_NO_ROOTS;
	parsed = chain_parse(chain, chain_len, &c);
	if (c.root_id && (c.root_id_len != FW_CLN_ROOT_ID_LEN ||
			  CRYPTO_memcmp(c.root_id, id->root_id,
					FW_CLN_ROOT_ID_LEN))) {
		rv = CKR_SESSION_NEGOTIATION_NO_ROOTS;
		goto out;
	}
	if (!parsed || !sig_md(sig_alg) || !cert_sig_ok(c.leaf))
		goto out;
	for (int i = 0; i < sk_X509_num(c.untrusted); i++)
		if (!cert_sig_ok(sk_X509_value(c.untrusted, i)))
			goto out;
	curve = leaf_curve(c.leaf);
	if (!curve || sig_half(sig_alg) * 8 != curve ||
	    !chain_verifies(card, &c))
		goto out;
	rv = verify_sig(X509_get0_pubkey(c.leaf), sig_alg, sig, sig_len, label,
			pre, pre_len, data, len) ? CKR_OK : bad_sig;
out:
	chain_free(&c);
	ERR_clear_error();
	return rv;
}

/* ---- PHSM_OP_CLONE_IDENTITY ------------------------------------------- */

CK_RV fw_h_clone_identity(struct fw_req *rq)
{
	const struct fw_identity *id = rq->card->identity;

	if (!phsm_reader_done(rq->r))
		return CKR_OK;
	phsm_put_bytes(rq->w, id ? id->cert : NULL, id ? id->cert_len : 0);
	phsm_put_bytes(rq->w, id ? id->root : NULL, id ? id->root_len : 0);
	return CKR_OK;
}
