// SPDX-License-Identifier: MIT
/*
 * The card's persistent state: an SQLite database in the state directory.
 *
 * Why SQLite: every change the card acknowledges must survive a SIGKILL
 * or a power cut at any instant.  SQLite's transactions (WAL journal,
 * synchronous=FULL) give exactly that for a few lines of SQL, where a
 * hand-written file format would need its own journal and recovery code.
 *
 * Token objects are stored sealed: their serialised attribute list is
 * encrypted with AES-256-GCM under the card master key, with the object's
 * handle and partition as associated data, so a blob can neither be read
 * nor moved to another handle.  The master key lives in DIR/master.key
 * (mode 0600); a real card keeps it in its secure element.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "internal.h"

#define MASTER_KEY_LEN	32
#define NONCE_LEN	12
#define TAG_LEN		16
#define SEAL_VERSION	1
#define SCHEMA_VERSION	1
#define PATH_LEN	4096
#define DIR_MAX		(PATH_LEN - 64)	/* room for our file names */

struct fw_store {
	sqlite3 *db;
	int lock_fd;
	uint8_t key[MASTER_KEY_LEN];
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta ("
	"  name TEXT PRIMARY KEY, value BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS partitions ("
	"  idx INTEGER PRIMARY KEY, initialized INTEGER NOT NULL,"
	"  label BLOB NOT NULL,"
	"  so_set INTEGER NOT NULL, so_iter INTEGER NOT NULL,"
	"  so_fails INTEGER NOT NULL, so_salt BLOB NOT NULL,"
	"  so_hash BLOB NOT NULL,"
	"  user_set INTEGER NOT NULL, user_iter INTEGER NOT NULL,"
	"  user_fails INTEGER NOT NULL, user_salt BLOB NOT NULL,"
	"  user_hash BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS objects ("
	"  handle INTEGER PRIMARY KEY, partition INTEGER NOT NULL,"
	"  blob BLOB NOT NULL);"
	/* Luna extensions of a partition (struct fw_part_ext), sealed. */
	"CREATE TABLE IF NOT EXISTS partext ("
	"  idx INTEGER PRIMARY KEY, blob BLOB NOT NULL);"
	/* The card's device identity (cloning.rst); the key sealed. */
	"CREATE TABLE IF NOT EXISTS identity ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1), curve INTEGER,"
	"  key BLOB, cert BLOB, root BLOB);";

static void set_err(char *err, size_t len, const char *fmt, const char *a,
		    const char *b)
{
	snprintf(err, len, fmt, a, b);
}

/* ---- master key and sealing ------------------------------------------- */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		ssize_t n = write(fd, buf + put, len - put);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		put += (size_t)n;
	}
	return 0;
}

/* Write a fresh key to a temporary file and rename it into place, so a
 * crash never leaves a half-written key behind. */
static int create_master_key(const char *dir, const char *path, uint8_t *key,
			     char *err, size_t err_len)
{
	char tmp[PATH_LEN + 8];
	int fd;

	if (RAND_priv_bytes(key, MASTER_KEY_LEN) != 1) {
		set_err(err, err_len, "%s%s", "cannot draw a master key", "");
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		set_err(err, err_len, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write_full(fd, key, MASTER_KEY_LEN) || fsync(fd)) {
		set_err(err, err_len, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) || fsync_dir(dir)) {
		set_err(err, err_len, "cannot install %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Read DIR/master.key, or make one when the store is new.  A store that
 * already holds sealed data and has lost its key is refused: a new key
 * would only hide the loss.
 */
static int load_master_key(const char *dir, uint8_t *key, bool may_create,
			   char *err, size_t err_len)
{
	char path[PATH_LEN];
	struct stat sb;
	int fd;

	snprintf(path, sizeof(path), "%s/master.key", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && may_create)
		return create_master_key(dir, path, key, err, err_len);
	if (fd < 0 && errno == ENOENT) {
		set_err(err, err_len, "%s is missing; the store in %s cannot be"
			" read without it", path, dir);
		return -1;
	}
	if (fd < 0) {
		set_err(err, err_len, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) ||
	    sb.st_size != MASTER_KEY_LEN || read_full(fd, key, MASTER_KEY_LEN)) {
		set_err(err, err_len, "%s: not a %s-byte master key", path, "32");
		close(fd);
		return -1;
	}
	if (sb.st_mode & 077)
		fw_log("warning: %s is readable by others (mode %o)", path,
		       (unsigned int)(sb.st_mode & 0777));
	close(fd);
	return 0;
}

static void make_aad(uint8_t aad[16], uint64_t handle, uint32_t part)
{
	memcpy(aad, "phsm", 4);
	fw_put_le64(aad + 4, handle);
	fw_put_le32(aad + 12, part);
}

/* version || nonce || ciphertext || tag */
static bool seal(const struct fw_store *st, const uint8_t aad[16],
		 const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t *b;
	int n = 0, fin = 0;
	bool ok = false;

	if (len > INT32_MAX)
		return false;
	b = malloc(1 + NONCE_LEN + len + TAG_LEN);
	ctx = EVP_CIPHER_CTX_new();
	if (!b || !ctx)
		goto out;
	b[0] = SEAL_VERSION;
	if (RAND_bytes(b + 1, NONCE_LEN) != 1 ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, st->key, b + 1) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, aad, 16) != 1 ||
	    EVP_EncryptUpdate(ctx, b + 1 + NONCE_LEN, &n, in, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, b + 1 + NONCE_LEN + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
				b + 1 + NONCE_LEN + len) != 1)
		goto out;
	*out = b;
	*out_len = 1 + NONCE_LEN + len + TAG_LEN;
	b = NULL;
	ok = true;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(b);
	return ok;
}

static bool unseal(const struct fw_store *st, const uint8_t aad[16],
		   const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx = NULL;
	size_t clen;
	uint8_t *p = NULL;
	int n = 0, fin = 0;
	bool ok = false;

	if (len < 1 + NONCE_LEN + TAG_LEN || in[0] != SEAL_VERSION ||
	    len > INT32_MAX)
		return false;
	clen = len - 1 - NONCE_LEN - TAG_LEN;
	p = malloc(clen ? clen : 1);
	ctx = EVP_CIPHER_CTX_new();
	if (!p || !ctx)
		goto out;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, st->key, in + 1) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, 16) != 1 ||
	    EVP_DecryptUpdate(ctx, p, &n, in + 1 + NONCE_LEN, (int)clen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
				(void *)(in + len - TAG_LEN)) != 1 ||
	    EVP_DecryptFinal_ex(ctx, p + n, &fin) != 1)
		goto out;
	*out = p;
	*out_len = clen;
	p = NULL;
	ok = true;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (p) {
		OPENSSL_cleanse(p, clen);
		free(p);
	}
	return ok;
}

/* ---- SQL helpers ------------------------------------------------------ */

static int exec(struct fw_store *st, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		fw_log("store: %s: %s", sql, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
	}
	return rc;
}

static CK_RV rv_of(int rc)
{
	switch (rc) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return CKR_OK;
	case SQLITE_FULL:
	case SQLITE_NOMEM:
		return CKR_DEVICE_MEMORY;
	default:
		return CKR_DEVICE_ERROR;
	}
}

static int begin(struct fw_store *st)
{
	return exec(st, "BEGIN IMMEDIATE");
}

/* Commit, or roll back when an earlier step failed. */
static CK_RV finish(struct fw_store *st, int rc)
{
	if (rc == SQLITE_OK || rc == SQLITE_DONE) {
		rc = exec(st, "COMMIT");
		if (rc == SQLITE_OK)
			return CKR_OK;
	}
	exec(st, "ROLLBACK");
	return rv_of(rc) == CKR_OK ? CKR_DEVICE_ERROR : rv_of(rc);
}

static int prepare(struct fw_store *st, const char *sql, sqlite3_stmt **stmt)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL);

	if (rc != SQLITE_OK)
		fw_log("store: cannot prepare \"%s\": %s", sql,
		       sqlite3_errmsg(st->db));
	return rc;
}

/* Run a statement that returns no rows; finalises it. */
static int step_done(struct fw_store *st, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE)
		fw_log("store: %s", sqlite3_errmsg(st->db));
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int meta_put(struct fw_store *st, const char *name, const void *v,
		    size_t len)
{
	sqlite3_stmt *stmt;
	int rc = prepare(st, "INSERT OR REPLACE INTO meta (name, value) "
			 "VALUES (?1, ?2)", &stmt);

	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 2, v, (int)len, SQLITE_TRANSIENT);
	return step_done(st, stmt);
}

/* Copies a meta value of exactly len bytes; 1 if absent, -1 on error. */
static int meta_get(struct fw_store *st, const char *name, void *v, size_t len)
{
	sqlite3_stmt *stmt;
	int rc = prepare(st, "SELECT value FROM meta WHERE name = ?1", &stmt);
	int ret = -1;

	if (rc != SQLITE_OK)
		return -1;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = 1;
	} else if (rc == SQLITE_ROW &&
		   (size_t)sqlite3_column_bytes(stmt, 0) == len) {
		memcpy(v, sqlite3_column_blob(stmt, 0), len);
		ret = 0;
	}
	sqlite3_finalize(stmt);
	return ret;
}

/* ---- opening ---------------------------------------------------------- */

static int make_serial(struct fw_store *st);

static const uint8_t key_check_text[] = "phsm master key check";

/*
 * The store remembers a value sealed under the master key, so that a
 * state directory paired with the wrong master.key is refused at start
 * instead of reporting every object as corrupt.
 */
static int check_master_key(struct fw_store *st, char *err, size_t err_len)
{
	uint8_t aad[16], blob[1 + NONCE_LEN + sizeof(key_check_text) + TAG_LEN];
	uint8_t *sealed = NULL, *plain = NULL;
	size_t sealed_len = 0, plain_len = 0;
	int got;
	bool ok;

	make_aad(aad, 0, UINT32_MAX);
	got = meta_get(st, "key_check", blob, sizeof(blob));
	if (got < 0) {
		set_err(err, err_len, "%s%s", "store: malformed key check", "");
		return -1;
	}
	if (got == 1) {
		if (!seal(st, aad, key_check_text, sizeof(key_check_text),
			  &sealed, &sealed_len) ||
		    meta_put(st, "key_check", sealed, sealed_len) != SQLITE_OK) {
			free(sealed);
			set_err(err, err_len, "%s%s", "store: cannot record key check", "");
			return -1;
		}
		free(sealed);
		return 0;
	}
	ok = unseal(st, aad, blob, sizeof(blob), &plain, &plain_len) &&
	     plain_len == sizeof(key_check_text) &&
	     !memcmp(plain, key_check_text, plain_len);
	free(plain);
	if (!ok) {
		set_err(err, err_len, "%s%s",
			"master.key does not belong to this state directory", "");
		return -1;
	}
	return 0;
}

static int lock_dir(const char *dir, int *fd_out, char *err, size_t err_len)
{
	char path[PATH_LEN];
	int fd;

	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		set_err(err, err_len, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		set_err(err, err_len, "%s is in use by another phsm-fw (%s)",
			dir, strerror(errno));
		close(fd);
		return -1;
	}
	*fd_out = fd;
	return 0;
}

static int open_db(struct fw_store *st, const char *dir, char *err,
		   size_t err_len)
{
	char path[PATH_LEN];
	int rc;

	snprintf(path, sizeof(path), "%s/phsm.db", dir);
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		set_err(err, err_len, "cannot open %s: %s", path,
			st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		return -1;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (exec(st, "PRAGMA journal_mode=WAL") != SQLITE_OK ||
	    exec(st, "PRAGMA synchronous=FULL") != SQLITE_OK) {
		set_err(err, err_len, "cannot set up %s: %s", path,
			sqlite3_errmsg(st->db));
		return -1;
	}
	return 0;
}

int fw_store_open(const char *dir, struct fw_store **out, char *err,
		  size_t err_len)
{
	struct fw_store *st;
	uint8_t ver[8], probe[1 + NONCE_LEN + sizeof(key_check_text) + TAG_LEN];
	int got;

	if (strlen(dir) > DIR_MAX) {
		set_err(err, err_len, "%s%s", "state directory path too long", "");
		return -1;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		set_err(err, err_len, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		set_err(err, err_len, "%s%s", "out of memory", "");
		return -1;
	}
	st->lock_fd = -1;
	if (lock_dir(dir, &st->lock_fd, err, err_len) ||
	    open_db(st, dir, err, err_len))
		goto fail;
	/* Schema and first-start values in one transaction: one commit. */
	if (begin(st) != SQLITE_OK || exec(st, schema) != SQLITE_OK) {
		set_err(err, err_len, "%s: cannot set up the store: %s", dir,
			sqlite3_errmsg(st->db));
		goto fail;
	}
	got = meta_get(st, "key_check", probe, sizeof(probe));
	if (load_master_key(dir, st->key, got == 1, err, err_len))
		goto rollback;
	got = meta_get(st, "version", ver, sizeof(ver));
	if (got == 1) {
		fw_put_le64(ver, SCHEMA_VERSION);
		if (meta_put(st, "version", ver, sizeof(ver)) != SQLITE_OK)
			got = -1;
	} else if (got == 0 && fw_get_le64(ver) != SCHEMA_VERSION) {
		set_err(err, err_len, "%s: unknown store version", dir, "");
		goto rollback;
	}
	if (got < 0 || make_serial(st)) {
		set_err(err, err_len, "%s: cannot read the store's identity", dir, "");
		goto rollback;
	}
	if (check_master_key(st, err, err_len))
		goto rollback;
	if (finish(st, SQLITE_OK) != CKR_OK) {
		set_err(err, err_len, "%s: cannot commit the store set-up", dir, "");
		goto fail;
	}
	*out = st;
	return 0;
rollback:
	exec(st, "ROLLBACK");
fail:
	fw_store_close(st);
	return -1;
}

void fw_store_close(struct fw_store *st)
{
	if (!st)
		return;
	if (st->db)
		sqlite3_close(st->db);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	OPENSSL_cleanse(st->key, sizeof(st->key));
	free(st);
}

/* ---- loading ---------------------------------------------------------- */

/* First start: a random serial, 12 hex digits, blank padded. */
static int make_serial(struct fw_store *st)
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t serial[PHSM_SERIAL_LEN], rnd[6];
	int got = meta_get(st, "serial", serial, sizeof(serial));

	if (got != 1)
		return got;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	memset(serial, ' ', sizeof(serial));
	for (int i = 0; i < 6; i++) {
		serial[2 * i] = (uint8_t)hex[rnd[i] >> 4];
		serial[2 * i + 1] = (uint8_t)hex[rnd[i] & 15];
	}
	return meta_put(st, "serial", serial, sizeof(serial)) == SQLITE_OK ? 0 : -1;
}

int fw_store_load_meta(struct fw_store *st, uint8_t serial[PHSM_SERIAL_LEN],
		       uint64_t *handle_limit)
{
	uint8_t le[8];
	int got = meta_get(st, "serial", serial, PHSM_SERIAL_LEN);

	if (got != 0)
		return -1;
	got = meta_get(st, "handle_limit", le, sizeof(le));
	if (got < 0)
		return -1;
	*handle_limit = got == 1 ? 1 : fw_get_le64(le);
	return 0;
}

static void column_copy(sqlite3_stmt *stmt, int col, void *dst, size_t len)
{
	if ((size_t)sqlite3_column_bytes(stmt, col) == len)
		memcpy(dst, sqlite3_column_blob(stmt, col), len);
}

static void read_pin(sqlite3_stmt *stmt, int col, struct fw_pin *p)
{
	p->set = sqlite3_column_int(stmt, col) != 0;
	p->iterations = (uint32_t)sqlite3_column_int64(stmt, col + 1);
	p->fails = (uint32_t)sqlite3_column_int64(stmt, col + 2);
	column_copy(stmt, col + 3, p->salt, sizeof(p->salt));
	column_copy(stmt, col + 4, p->hash, sizeof(p->hash));
	if (p->set && p->iterations == 0) {
		fw_log("store: PIN record without iterations, treating as unset");
		p->set = false;
	}
}

int fw_store_load_partitions(struct fw_store *st, struct fw_part_rec *recs,
			     unsigned int n)
{
	sqlite3_stmt *stmt;
	int rc = prepare(st, "SELECT idx, initialized, label, so_set, so_iter,"
			 " so_fails, so_salt, so_hash, user_set, user_iter,"
			 " user_fails, user_salt, user_hash FROM partitions",
			 &stmt);

	if (rc != SQLITE_OK)
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		memset(&recs[i], 0, sizeof(recs[i]));
		memset(recs[i].label, ' ', sizeof(recs[i].label));
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		sqlite3_int64 idx = sqlite3_column_int64(stmt, 0);
		struct fw_part_rec *r;

		if (idx < 0 || idx >= n)
			continue;	/* a partition this start does not serve */
		r = &recs[idx];
		r->initialized = sqlite3_column_int(stmt, 1) != 0;
		column_copy(stmt, 2, r->label, sizeof(r->label));
		read_pin(stmt, 3, &r->so);
		read_pin(stmt, 8, &r->user);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

int fw_store_load_objects(struct fw_store *st, unsigned int nparts,
			  fw_store_obj_fn fn, void *ctx)
{
	sqlite3_stmt *stmt;
	int rc = prepare(st, "SELECT handle, partition, blob FROM objects "
			 "ORDER BY handle", &stmt);

	if (rc != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		sqlite3_int64 handle = sqlite3_column_int64(stmt, 0);
		sqlite3_int64 part = sqlite3_column_int64(stmt, 1);
		const uint8_t *blob = sqlite3_column_blob(stmt, 2);
		size_t len = (size_t)sqlite3_column_bytes(stmt, 2);
		struct fw_attrs attrs;
		uint8_t aad[16], *plain = NULL;
		size_t plain_len = 0;
		bool ok;

		if (part < 0 || part >= nparts || handle <= 0)
			continue;
		make_aad(aad, (uint64_t)handle, (uint32_t)part);
		ok = blob && unseal(st, aad, blob, len, &plain, &plain_len) &&
		     fw_attrs_deserialize(plain, plain_len, &attrs);
		if (plain) {
			OPENSSL_cleanse(plain, plain_len);
			free(plain);
		}
		if (!ok) {
			fw_log("store: object %lld of partition %lld is corrupt, skipped",
			       (long long)handle, (long long)part);
			continue;
		}
		if (fn(ctx, (uint64_t)handle, (unsigned int)part, &attrs))
			fw_log("store: object %lld of partition %lld is not valid, skipped",
			       (long long)handle, (long long)part);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- writing ---------------------------------------------------------- */

static void bind_pin(sqlite3_stmt *stmt, int col, const struct fw_pin *p)
{
	sqlite3_bind_int(stmt, col, p->set);
	sqlite3_bind_int64(stmt, col + 1, p->iterations);
	sqlite3_bind_int64(stmt, col + 2, p->fails);
	sqlite3_bind_blob(stmt, col + 3, p->salt, sizeof(p->salt), SQLITE_STATIC);
	sqlite3_bind_blob(stmt, col + 4, p->hash, sizeof(p->hash), SQLITE_STATIC);
}

static int put_partition(struct fw_store *st, unsigned int idx,
			 const struct fw_part_rec *rec)
{
	sqlite3_stmt *stmt;
	int rc = prepare(st, "INSERT OR REPLACE INTO partitions (idx,"
			 " initialized, label, so_set, so_iter, so_fails,"
			 " so_salt, so_hash, user_set, user_iter, user_fails,"
			 " user_salt, user_hash) VALUES (?1, ?2, ?3, ?4, ?5,"
			 " ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", &stmt);

	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(stmt, 1, idx);
	sqlite3_bind_int(stmt, 2, rec->initialized);
	sqlite3_bind_blob(stmt, 3, rec->label, sizeof(rec->label), SQLITE_STATIC);
	bind_pin(stmt, 4, &rec->so);
	bind_pin(stmt, 9, &rec->user);
	return step_done(st, stmt);
}

CK_RV fw_store_put_partition(struct fw_store *st, unsigned int idx,
			     const struct fw_part_rec *rec)
{
	int rc = begin(st);

	if (rc == SQLITE_OK)
		rc = put_partition(st, idx, rec);
	return finish(st, rc);
}

static int put_object(struct fw_store *st, const struct fw_obj *o)
{
	sqlite3_stmt *stmt;
	uint8_t aad[16], *plain = NULL, *sealed = NULL;
	size_t plain_len = 0, sealed_len = 0;
	int rc;

	make_aad(aad, o->handle, o->part);
	if (!fw_attrs_serialize(&o->attrs, &plain, &plain_len))
		return SQLITE_NOMEM;
	if (!seal(st, aad, plain, plain_len, &sealed, &sealed_len)) {
		OPENSSL_cleanse(plain, plain_len);
		free(plain);
		return SQLITE_NOMEM;
	}
	OPENSSL_cleanse(plain, plain_len);
	free(plain);
	rc = prepare(st, "INSERT OR REPLACE INTO objects (handle, partition,"
		     " blob) VALUES (?1, ?2, ?3)", &stmt);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)o->handle);
		sqlite3_bind_int64(stmt, 2, o->part);
		sqlite3_bind_blob(stmt, 3, sealed, (int)sealed_len, SQLITE_STATIC);
		rc = step_done(st, stmt);
	}
	free(sealed);
	return rc;
}

CK_RV fw_store_put_objects(struct fw_store *st, size_t n,
			   struct fw_obj *const *objs)
{
	return fw_store_put_objects_ext(st, n, objs, 0, NULL);
}

CK_RV fw_store_delete_object(struct fw_store *st, uint64_t handle)
{
	sqlite3_stmt *stmt;
	int rc = begin(st);

	if (rc == SQLITE_OK)
		rc = prepare(st, "DELETE FROM objects WHERE handle = ?1", &stmt);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)handle);
		rc = step_done(st, stmt);
	}
	return finish(st, rc);
}

/* ---- Luna extension records ------------------------------------------ */

#define EXT_VERSION	2	/* 2 added the SMK; 1 is still read */
#define EXT_DOM_LEN	(1 + FW_DOMAIN_LABEL_MAX + 1 + FW_HASH_LEN)
#define EXT_LEN_V1	(1 + 1 + FW_CLUSTER_ID_MAX + PHSM_LABEL_LEN + 1 + \
			 FW_DOMAINS_MAX * EXT_DOM_LEN + FW_NPOLICIES * 8)
#define EXT_LEN		(EXT_LEN_V1 + FW_HASH_LEN)

static void ext_serialize(const struct fw_part_ext *e, uint8_t *b)
{
	uint8_t *p = b;

	*p++ = EXT_VERSION;
	*p++ = e->cluster_len;
	memcpy(p, e->cluster, FW_CLUSTER_ID_MAX);
	p += FW_CLUSTER_ID_MAX;
	memcpy(p, e->orig_label, PHSM_LABEL_LEN);
	p += PHSM_LABEL_LEN;
	*p++ = (uint8_t)e->ndomains;
	for (int i = 0; i < FW_DOMAINS_MAX; i++) {
		*p++ = e->dom[i].label_len;
		memcpy(p, e->dom[i].label, FW_DOMAIN_LABEL_MAX);
		p += FW_DOMAIN_LABEL_MAX;
		*p++ = e->dom[i].primary;
		memcpy(p, e->dom[i].secret, FW_HASH_LEN);
		p += FW_HASH_LEN;
	}
	for (int i = 0; i < FW_NPOLICIES; i++, p += 8)
		fw_put_le64(p, e->policy[i]);
	memcpy(p, e->smk, FW_HASH_LEN);
}

/* *upgraded: a version 1 record, given a new SMK, to be written back. */
static bool ext_deserialize(const uint8_t *b, size_t len,
			    struct fw_part_ext *e, bool *upgraded)
{
	const uint8_t *p = b;

	memset(e, 0, sizeof(*e));
	*upgraded = len == EXT_LEN_V1 && *p == 1;
	if (!*upgraded && (len != EXT_LEN || *p != EXT_VERSION))
		return false;
	p++;
	e->cluster_len = *p++;
	memcpy(e->cluster, p, FW_CLUSTER_ID_MAX);
	p += FW_CLUSTER_ID_MAX;
	memcpy(e->orig_label, p, PHSM_LABEL_LEN);
	p += PHSM_LABEL_LEN;
	e->ndomains = *p++;
	if (e->cluster_len > FW_CLUSTER_ID_MAX || e->ndomains > FW_DOMAINS_MAX)
		return false;
	for (int i = 0; i < FW_DOMAINS_MAX; i++) {
		e->dom[i].label_len = *p++;
		memcpy(e->dom[i].label, p, FW_DOMAIN_LABEL_MAX);
		p += FW_DOMAIN_LABEL_MAX;
		e->dom[i].primary = *p++ != 0;
		memcpy(e->dom[i].secret, p, FW_HASH_LEN);
		p += FW_HASH_LEN;
		if (e->dom[i].label_len > FW_DOMAIN_LABEL_MAX)
			return false;
	}
	for (int i = 0; i < FW_NPOLICIES; i++, p += 8)
		e->policy[i] = fw_get_le64(p);
	if (*upgraded)
		return RAND_bytes(e->smk, FW_HASH_LEN) == 1;
	memcpy(e->smk, p, FW_HASH_LEN);
	return true;
}

/* Sealed like objects, with handle 0 (no object has it) in the AAD. */
static int put_ext(struct fw_store *st, unsigned int idx,
		   const struct fw_part_ext *ext)
{
	uint8_t aad[16], plain[EXT_LEN], *sealed = NULL;
	size_t sealed_len = 0;
	sqlite3_stmt *stmt;
	int rc;

	make_aad(aad, 0, idx);
	ext_serialize(ext, plain);
	if (!seal(st, aad, plain, sizeof(plain), &sealed, &sealed_len)) {
		OPENSSL_cleanse(plain, sizeof(plain));
		return SQLITE_NOMEM;
	}
	OPENSSL_cleanse(plain, sizeof(plain));
	rc = prepare(st, "INSERT OR REPLACE INTO partext (idx, blob)"
		     " VALUES (?1, ?2)", &stmt);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, idx);
		sqlite3_bind_blob(stmt, 2, sealed, (int)sealed_len, SQLITE_STATIC);
		rc = step_done(st, stmt);
	}
	free(sealed);
	return rc;
}

CK_RV fw_store_put_objects_ext(struct fw_store *st, size_t n,
			       struct fw_obj *const *objs, unsigned int idx,
			       const struct fw_part_ext *ext)
{
	int rc = begin(st);

	for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
		if (objs[i]->token)
			rc = put_object(st, objs[i]);
	if (rc == SQLITE_OK && ext)
		rc = put_ext(st, idx, ext);
	return finish(st, rc);
}

CK_RV fw_store_put_ext(struct fw_store *st, unsigned int idx,
		       const struct fw_part_ext *ext)
{
	int rc = begin(st);

	if (rc == SQLITE_OK)
		rc = put_ext(st, idx, ext);
	return finish(st, rc);
}

int fw_store_load_ext(struct fw_store *st, unsigned int idx,
		      struct fw_part_ext *ext)
{
	sqlite3_stmt *stmt;
	uint8_t aad[16], *plain = NULL;
	size_t plain_len = 0;
	int rc = prepare(st, "SELECT blob FROM partext WHERE idx = ?1", &stmt);
	int ret = -1;
	bool upgraded = false;

	if (rc != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(stmt, 1, idx);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = 1;
	} else if (rc == SQLITE_ROW) {
		const uint8_t *blob = sqlite3_column_blob(stmt, 0);
		size_t len = (size_t)sqlite3_column_bytes(stmt, 0);

		make_aad(aad, 0, idx);
		if (blob && unseal(st, aad, blob, len, &plain, &plain_len) &&
		    ext_deserialize(plain, plain_len, ext, &upgraded))
			ret = 0;
		if (plain) {
			OPENSSL_cleanse(plain, plain_len);
			free(plain);
		}
	}
	sqlite3_finalize(stmt);
	/* Keep the SMK an old record just got. */
	if (ret == 0 && upgraded && fw_store_put_ext(st, idx, ext) != CKR_OK)
		fw_log("store: cannot upgrade the Luna record of partition %u",
		       idx);
	return ret;
}

CK_RV fw_store_init_partition(struct fw_store *st, unsigned int idx,
			      const struct fw_part_rec *rec,
			      const struct fw_part_ext *ext)
{
	sqlite3_stmt *stmt;
	int rc = begin(st);

	if (rc == SQLITE_OK)
		rc = prepare(st, "DELETE FROM objects WHERE partition = ?1", &stmt);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, idx);
		rc = step_done(st, stmt);
	}
	if (rc == SQLITE_OK)
		rc = put_partition(st, idx, rec);
	if (rc == SQLITE_OK)
		rc = put_ext(st, idx, ext);
	return finish(st, rc);
}

/* ---- the card identity ----------------------------------------------- */

/* The device key is sealed like objects, with its own associated data. */
static const uint8_t identity_aad[16] = "phsm identity v1";

static bool column_dup(sqlite3_stmt *stmt, int col, uint8_t **out,
		       size_t *len)
{
	const void *p = sqlite3_column_blob(stmt, col);
	int n = sqlite3_column_bytes(stmt, col);

	*out = NULL;
	*len = 0;
	if (!p || n <= 0)
		return false;
	*out = malloc((size_t)n);
	if (!*out)
		return false;
	memcpy(*out, p, (size_t)n);
	*len = (size_t)n;
	return true;
}

void fw_id_rec_free(struct fw_id_rec *rec)
{
	if (rec->key)
		OPENSSL_cleanse(rec->key, rec->key_len);
	free(rec->key);
	free(rec->cert);
	free(rec->root);
	memset(rec, 0, sizeof(*rec));
}

int fw_store_load_identity(struct fw_store *st, struct fw_id_rec *rec)
{
	sqlite3_stmt *stmt;
	int rc = prepare(st, "SELECT curve, key, cert, root FROM identity"
			 " WHERE id = 1", &stmt);
	int ret = -1;

	memset(rec, 0, sizeof(*rec));
	if (rc != SQLITE_OK)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = 1;
	} else if (rc == SQLITE_ROW) {
		const uint8_t *blob = sqlite3_column_blob(stmt, 1);
		size_t len = (size_t)sqlite3_column_bytes(stmt, 1);
		sqlite3_int64 curve = sqlite3_column_int64(stmt, 0);

		rec->curve = curve == 256 || curve == 384 ? (unsigned int)curve : 0;
		if (rec->curve && blob &&
		    unseal(st, identity_aad, blob, len, &rec->key, &rec->key_len) &&
		    column_dup(stmt, 2, &rec->cert, &rec->cert_len) &&
		    column_dup(stmt, 3, &rec->root, &rec->root_len))
			ret = 0;
	}
	sqlite3_finalize(stmt);
	if (ret != 0)
		fw_id_rec_free(rec);
	return ret;
}

CK_RV fw_store_put_identity(struct fw_store *st, const struct fw_id_rec *rec)
{
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	sqlite3_stmt *stmt;
	int rc;

	if (!seal(st, identity_aad, rec->key, rec->key_len, &sealed,
		  &sealed_len))
		return CKR_DEVICE_MEMORY;
	rc = begin(st);
	if (rc == SQLITE_OK)
		rc = prepare(st, "INSERT INTO identity (id, curve, key, cert,"
			     " root) VALUES (1, ?1, ?2, ?3, ?4)", &stmt);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, rec->curve);
		sqlite3_bind_blob(stmt, 2, sealed, (int)sealed_len, SQLITE_STATIC);
		sqlite3_bind_blob(stmt, 3, rec->cert, (int)rec->cert_len,
				  SQLITE_STATIC);
		sqlite3_bind_blob(stmt, 4, rec->root, (int)rec->root_len,
				  SQLITE_STATIC);
		rc = step_done(st, stmt);
	}
	free(sealed);
	return finish(st, rc);
}

CK_RV fw_store_set_handle_limit(struct fw_store *st, uint64_t limit)
{
	uint8_t le[8];
	int rc = begin(st);

	fw_put_le64(le, limit);
	if (rc == SQLITE_OK)
		rc = meta_put(st, "handle_limit", le, sizeof(le));
	return finish(st, rc);
}

