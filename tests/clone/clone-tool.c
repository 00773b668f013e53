// SPDX-License-Identifier: MIT
/*
 * The client of tests/clone/clone.sh: one cloning step per invocation, so
 * that two processes which each see only one card (PHSM_FW_SOCKETS set
 * to one socket each) can clone by passing step messages, session IDs
 * and blobs through files, as two hosts would.
 *
 *   clone-tool MODULE COMMAND ARGS...
 *
 *   init SLOT KCV|-            initialise the token (PINs below), and give
 *                              it the cloning domain KCV ("-": none)
 *   policy SLOT TYPE VALUE     set a partition policy (as the SO)
 *   mkkey SLOT LABEL...        an AES-256 token key per label (sensitive,
 *                              not extractable)
 *   count SLOT LABEL           how many objects have that label
 *   migrate SRC DST FLAGS LABEL...
 *                              CA_MigrateKeys of the keys with those
 *                              labels; each clone must decrypt what its
 *                              original encrypted
 *   cloneobj SRC DST LABEL     CA_CloneObject of one key, checked the same way
 *   start SLOT OUT             CA_MigrationStartSessionNegotiation -> OUT
 *   continue SLOT STEP IN OUT SIDFILE
 *                              CA_MigrationContinueSessionNegotiation; the
 *                              session ID is read from SIDFILE when it
 *                              exists and is written back
 *   extract SLOT SIDFILE IN|- DIR LABEL...
 *                              CA_Extract (IN: the step-4 input, "-": none)
 *                              of the keys, blobs to DIR/LABEL.blob
 *   insert SLOT SIDFILE FLAGS BLOB...
 *                              CA_Insert of the blob files in one call
 *   insert-acked SLOT SIDFILE ACKFILE BLOB...
 *                              one CA_Insert per blob; after each CKR_OK
 *                              the blob's label is appended to ACKFILE and
 *                              fsync'ed
 *   verify-acked SLOT ACKFILE  every label of ACKFILE names exactly one
 *                              object
 *   close SLOT SIDFILE         CA_MigrationCloseSession
 *   encrypt SLOT LABEL OUT     a fixed text, AES-CBC-PAD, to OUT
 *   decrypt SLOT LABEL IN      must give the fixed text back
 *   attrs SLOT LABEL           every readable attribute but CKA_UNIQUE_ID,
 *                              as lines "type=hex" (to diff two cards)
 *
 * Output: a line per object, then "rv=CKR_NAME": the call's rv, or the
 * first per-object failure.  Exit status 0 when that is CKR_OK, 1
 * otherwise, 2 for a usage or set-up error.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <phsm/cryptoki_ca.h>

#define SO_PIN		"clone-so-pin"
#define USER_PIN	"clone-user-pin"
#define MSG_CAP		65536
#define MAX_OBJS	2048
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static CK_FUNCTION_LIST_PTR p11;
static CK_PHSM_CA_FUNCTION_LIST *ca;

#define R(x) { x, #x }
static const struct { CK_RV rv; const char *name; } rv_names[] = {
	R(CKR_OK), R(CKR_HOST_MEMORY), R(CKR_SLOT_ID_INVALID),
	R(CKR_GENERAL_ERROR), R(CKR_FUNCTION_FAILED), R(CKR_ARGUMENTS_BAD),
	R(CKR_ATTRIBUTE_SENSITIVE), R(CKR_ATTRIBUTE_TYPE_INVALID),
	R(CKR_DATA_INVALID), R(CKR_DEVICE_ERROR), R(CKR_DEVICE_MEMORY),
	R(CKR_DEVICE_REMOVED), R(CKR_ENCRYPTED_DATA_INVALID),
	R(CKR_FUNCTION_NOT_SUPPORTED), R(CKR_MECHANISM_INVALID),
	R(CKR_MECHANISM_PARAM_INVALID), R(CKR_OBJECT_HANDLE_INVALID),
	R(CKR_OPERATION_NOT_INITIALIZED), R(CKR_PIN_INCORRECT),
	R(CKR_SESSION_HANDLE_INVALID), R(CKR_SESSION_READ_ONLY),
	R(CKR_SESSION_EXISTS), R(CKR_TOKEN_NOT_PRESENT),
	R(CKR_USER_NOT_LOGGED_IN), R(CKR_USER_ALREADY_LOGGED_IN),
	R(CKR_BUFFER_TOO_SMALL), R(CKR_CRYPTOKI_NOT_INITIALIZED),
	R(CKR_CLONE_NOT_ATTEMPTED), R(CKR_SESSION_NEGOTIATION_NO_PSK),
	R(CKR_SESSION_NEGOTIATION_NO_ROOTS), R(CKR_SESSION_NEGOTIATION_NO_ALGS),
	R(CKR_SESSION_NEGOTIATION_EXPIRED), R(CKR_SESSION_NEGOTIATION_INVALID),
	R(CKR_SESSION_ID_INVALID), R(CKR_SESSION_ID_EXISTS),
	R(CKR_SESSION_ID_EXPIRED), R(CKR_ATTESTATION_EXPIRED),
	R(CKR_PROTOCOL_DISABLED), R(CKR_OBJECT_TYPE_INVALID),
	R(CKR_TIME_NOT_INITIALIZED),
	R(CKR_SESSION_NEGOTIATION_NO_SESSION_DURATION),
	R(CKR_SESSION_NEGOTIATION_NO_KDF), R(CKR_SESSION_NEGOTIATION_NO_ENCODING),
	R(CKR_SESSION_NEGOTIATION_NO_CHAIN_ATT),
	R(CKR_SESSION_NEGOTIATION_NO_EPHERMAL_KEY),
	R(CKR_SESSION_NEGOTIATION_NOT_STARTED),
};

static const char *rv_name(CK_RV rv)
{
	static char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(rv_names); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	snprintf(buf, sizeof(buf), "0x%lx", rv);
	return buf;
}

/* The last line, and the exit status. */
static int done(CK_RV rv)
{
	printf("rv=%s\n", rv_name(rv));
	return rv == CKR_OK ? 0 : 1;
}

static void die(const char *what, CK_RV rv)
{
	fprintf(stderr, "clone-tool: %s: %s\n", what, rv_name(rv));
	exit(2);
}

static int load(const char *path)
{
	CK_C_GetFunctionList get;
	CK_C_GetInterface get_if;
	CK_INTERFACE_PTR iface = NULL;
	CK_VERSION v = { CK_PHSM_CA_VERSION_MAJOR, CK_PHSM_CA_VERSION_MINOR };
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CK_RV rv;

	if (!h) {
		fprintf(stderr, "clone-tool: %s\n", dlerror());
		return -1;
	}
	*(void **)&get = dlsym(h, "C_GetFunctionList");
	*(void **)&get_if = dlsym(h, "C_GetInterface");
	if (!get || !get_if || get(&p11) != CKR_OK) {
		fprintf(stderr, "clone-tool: no C_GetFunctionList/C_GetInterface\n");
		return -1;
	}
	rv = get_if((CK_UTF8CHAR_PTR)CK_PHSM_CA_INTERFACE_NAME, &v, &iface, 0);
	if (rv != CKR_OK || !iface) {
		fprintf(stderr, "clone-tool: no \"%s\" interface: %s\n",
			CK_PHSM_CA_INTERFACE_NAME, rv_name(rv));
		return -1;
	}
	ca = iface->pFunctionList;
	rv = p11->C_Initialize(&args);
	if (rv != CKR_OK) {
		fprintf(stderr, "clone-tool: C_Initialize: %s\n", rv_name(rv));
		return -1;
	}
	return 0;
}

static CK_SLOT_ID slot_arg(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (!*s || *end) {
		fprintf(stderr, "clone-tool: bad slot %s\n", s);
		exit(2);
	}
	return v;
}

static CK_SESSION_HANDLE open_rw(CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE h;
	CK_RV rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				      NULL, NULL, &h);

	if (rv != CKR_OK)
		die("C_OpenSession", rv);
	return h;
}

/* A R/W session with the user logged in. */
static CK_SESSION_HANDLE user_session(CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE h = open_rw(slot);
	CK_RV rv = p11->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN,
				strlen(USER_PIN));

	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		die("C_Login", rv);
	return h;
}

static CK_SESSION_HANDLE so_session(CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE h = open_rw(slot);
	CK_RV rv = p11->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN,
				strlen(SO_PIN));

	if (rv != CKR_OK)
		die("C_Login(SO)", rv);
	return h;
}

static CK_ULONG find_label(CK_SESSION_HANDLE h, const char *label,
			   CK_OBJECT_HANDLE *out, CK_ULONG max)
{
	CK_ATTRIBUTE t = { CKA_LABEL, (void *)label, strlen(label) };
	CK_OBJECT_HANDLE buf[64];
	CK_ULONG n, total = 0;
	CK_RV rv = p11->C_FindObjectsInit(h, &t, 1);

	if (rv != CKR_OK)
		die("C_FindObjectsInit", rv);
	do {
		rv = p11->C_FindObjects(h, buf, ARRAY_SIZE(buf), &n);
		if (rv != CKR_OK)
			die("C_FindObjects", rv);
		for (CK_ULONG i = 0; i < n; i++, total++)
			if (total < max)
				out[total] = buf[i];
	} while (n);
	p11->C_FindObjectsFinal(h);
	return total;
}

/* The one object with this label. */
static CK_OBJECT_HANDLE by_label(CK_SESSION_HANDLE h, const char *label)
{
	CK_OBJECT_HANDLE o;
	CK_ULONG n = find_label(h, label, &o, 1);

	if (n != 1) {
		fprintf(stderr, "clone-tool: %lu objects labelled %s\n", n, label);
		exit(2);
	}
	return o;
}

/* ---- files ------------------------------------------------------------ */

static uint8_t *read_file(const char *path, CK_ULONG *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(MSG_CAP);
	size_t n;

	if (!f || !buf) {
		fprintf(stderr, "clone-tool: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	n = fread(buf, 1, MSG_CAP, f);
	fclose(f);
	*len = n;
	return buf;
}

static void write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "clone-tool: %s: %s\n", path, strerror(errno));
		exit(2);
	}
}

/* The session ID of SIDFILE; none if the file does not exist. */
static CK_ULONG read_sid(const char *path, uint8_t *sid)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return 0;
	n = fread(sid, 1, 64, f);
	fclose(f);
	return n;
}

/* ---- the fixed text, encrypted and decrypted -------------------------- */

static const char text[] = "cloned keys decrypt what their originals encrypt";
static CK_BYTE iv[16] = "phsm clone iv 1";

static CK_RV text_encrypt(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k, uint8_t *ct,
		     CK_ULONG *len)
{
	CK_MECHANISM m = { CKM_AES_CBC_PAD, iv, sizeof(iv) };
	CK_RV rv = p11->C_EncryptInit(h, &m, k);

	if (rv == CKR_OK)
		rv = p11->C_Encrypt(h, (CK_BYTE_PTR)text, sizeof(text), ct, len);
	return rv;
}

static CK_RV text_decrypt(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k,
			   uint8_t *ct, CK_ULONG len)
{
	CK_MECHANISM m = { CKM_AES_CBC_PAD, iv, sizeof(iv) };
	uint8_t pt[256];
	CK_ULONG n = sizeof(pt);
	CK_RV rv = p11->C_DecryptInit(h, &m, k);

	if (rv == CKR_OK)
		rv = p11->C_Decrypt(h, ct, len, pt, &n);
	if (rv == CKR_OK && (n != sizeof(text) || memcmp(pt, text, n)))
		rv = CKR_DATA_INVALID;
	return rv;
}

/* The clone decrypts what the original encrypted. */
static CK_RV check_pair(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE src,
			CK_SESSION_HANDLE ht, CK_OBJECT_HANDLE dst)
{
	uint8_t ct[256];
	CK_ULONG n = sizeof(ct);
	CK_RV rv = text_encrypt(hs, src, ct, &n);

	return rv == CKR_OK ? text_decrypt(ht, dst, ct, n) : rv;
}

/* ---- commands --------------------------------------------------------- */

static int cmd_init(CK_SLOT_ID slot, const char *kcv)
{
	CK_UTF8CHAR label[32];
	CK_SESSION_HANDLE h;
	CK_RV rv;
	char name[32];

	memset(label, ' ', sizeof(label));
	snprintf(name, sizeof(name), "clone-%lu", slot);
	memcpy(label, name, strlen(name));
	/* The sessions of an earlier process may close a moment late. */
	for (int i = 0; i < 40; i++) {
		rv = p11->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN,
				      strlen(SO_PIN), label);
		if (rv != CKR_SESSION_EXISTS)
			break;
		usleep(50 * 1000);
	}
	if (rv != CKR_OK)
		die("C_InitToken", rv);
	h = so_session(slot);
	rv = p11->C_InitPIN(h, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN));
	if (rv != CKR_OK)
		die("C_InitPIN", rv);
	if (strcmp(kcv, "-"))
		rv = ca->CA_AddKCV(h, strlen(kcv), (CK_BYTE_PTR)kcv, 6,
				   (CK_BYTE_PTR)"domain", CK_TRUE);
	return done(rv);
}

static int cmd_policy(CK_SLOT_ID slot, const char *type, const char *value)
{
	CK_SESSION_HANDLE h = so_session(slot);

	return done(ca->CA_SetContainerPolicy(h, CK_PHSM_CONTAINER_SELF,
					      strtoul(type, NULL, 0),
					      strtoul(value, NULL, 0)));
}

static int cmd_mkkey(CK_SLOT_ID slot, int n, char **labels)
{
	CK_SESSION_HANDLE h = user_session(slot);
	CK_MECHANISM m = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ULONG len = 32;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

	for (int i = 0; i < n; i++) {
		CK_ATTRIBUTE t[] = {
			{ CKA_LABEL, labels[i], strlen(labels[i]) },
			{ CKA_VALUE_LEN, &len, sizeof(len) },
			{ CKA_TOKEN, &yes, 1 },
			{ CKA_SENSITIVE, &yes, 1 },
			{ CKA_EXTRACTABLE, &no, 1 },
			{ CKA_ENCRYPT, &yes, 1 },
			{ CKA_DECRYPT, &yes, 1 },
		};
		CK_OBJECT_HANDLE o;
		CK_RV rv = p11->C_GenerateKey(h, &m, t, ARRAY_SIZE(t), &o);

		if (rv != CKR_OK)
			return done(rv);
	}
	return done(CKR_OK);
}

static int cmd_count(CK_SLOT_ID slot, const char *label)
{
	CK_SESSION_HANDLE h = user_session(slot);

	printf("count=%lu\n", find_label(h, label, NULL, 0));
	return done(CKR_OK);
}

static int cmd_migrate(CK_SLOT_ID src, CK_SLOT_ID dst, CK_ULONG flags, int n,
		       char **labels)
{
	CK_SESSION_HANDLE hs = user_session(src), ht = user_session(dst);
	CK_OBJECT_MIGRATION_DATA *md = calloc(n, sizeof(*md));
	CK_RV rv, first = CKR_OK;

	if (!md)
		die("calloc", CKR_HOST_MEMORY);
	for (int i = 0; i < n; i++)
		md[i] = (CK_OBJECT_MIGRATION_DATA){
			CK_CRYPTOKI_ELEMENT, by_label(hs, labels[i]), 0x77, 0x5a5a
		};
	rv = ca->CA_MigrateKeys(hs, ht, flags, n, md);
	for (int i = 0; i < n; i++) {
		CK_RV r = md[i].rv;

		if (rv == CKR_OK && r == CKR_OK)
			r = check_pair(hs, md[i].sourceHandle, ht,
				       md[i].targetHandle);
		printf("%s rv=%s\n", labels[i], rv_name(r));
		if (first == CKR_OK)
			first = r;
		if (rv != CKR_OK && md[i].rv != CKR_CLONE_NOT_ATTEMPTED) {
			printf("%s: %s after a failed call\n", labels[i],
			       rv_name(md[i].rv));
			first = CKR_GENERAL_ERROR;
		}
	}
	free(md);
	return done(rv != CKR_OK ? rv : first);
}

static int cmd_cloneobj(CK_SLOT_ID src, CK_SLOT_ID dst, const char *label)
{
	CK_SESSION_HANDLE hs = user_session(src), ht = user_session(dst);
	CK_OBJECT_HANDLE o = by_label(hs, label), c = CK_INVALID_HANDLE;
	CK_RV rv = ca->CA_CloneObject(ht, hs, CK_CRYPTOKI_ELEMENT, o, &c);

	if (rv == CKR_OK)
		rv = check_pair(hs, o, ht, c);
	return done(rv);
}

static int cmd_start(CK_SLOT_ID slot, const char *out)
{
	CK_SESSION_HANDLE h = user_session(slot);
	uint8_t *buf = malloc(MSG_CAP);
	CK_ULONG step = 0, len = MSG_CAP;
	CK_RV rv;

	rv = ca->CA_MigrationStartSessionNegotiation(h, 0, NULL, &step, &len,
						     buf);
	if (rv == CKR_OK) {
		write_file(out, buf, len);
		printf("step=%lu len=%lu\n", step, len);
	}
	free(buf);
	return done(rv);
}

static int cmd_continue(CK_SLOT_ID slot, const char *step_s, const char *in,
			const char *out, const char *sidfile)
{
	CK_SESSION_HANDLE h = user_session(slot);
	uint8_t sid_in[64], sid_out[64], *buf = malloc(MSG_CAP), *input;
	CK_ULONG in_len, sid_in_len = read_sid(sidfile, sid_in);
	CK_ULONG out_step = 99, len = MSG_CAP, status = 99;
	CK_ULONG sid_len = sizeof(sid_out);
	CK_RV rv;

	input = read_file(in, &in_len);
	rv = ca->CA_MigrationContinueSessionNegotiation(h,
		strtoul(step_s, NULL, 0), in_len, input, sid_in_len,
		sid_in_len ? sid_in : NULL, &out_step, &len, buf, &status,
		&sid_len, sid_out);
	if (rv == CKR_OK) {
		write_file(out, buf, len);
		write_file(sidfile, sid_out, sid_len);
		printf("step=%lu status=%lu len=%lu sid_len=%lu\n", out_step,
		       status, len, sid_len);
	}
	free(buf);
	free(input);
	return done(rv);
}

static int cmd_extract(CK_SLOT_ID slot, const char *sidfile, const char *in,
		       const char *dir, int n, char **labels)
{
	CK_SESSION_HANDLE h = user_session(slot);
	uint8_t sid[64], *input = NULL;
	CK_ULONG in_len = 0, sid_len = read_sid(sidfile, sid);
	CK_ULONG *types = calloc(n, sizeof(CK_ULONG));
	CK_ULONG *handles = calloc(n, sizeof(CK_ULONG));
	CK_ULONG *lens = calloc(n, sizeof(CK_ULONG));
	CK_RV *results = calloc(n, sizeof(CK_RV)), rv, first = CKR_OK;
	CK_BYTE_PTR *blobs = calloc(n, sizeof(CK_BYTE_PTR));
	CK_CPV4_EXTRACT_PARAMS p;
	CK_MECHANISM m = { CKM_CPV4_EXTRACT, &p, sizeof(p) };

	if (!types || !handles || !lens || !results || !blobs)
		die("calloc", CKR_HOST_MEMORY);
	if (strcmp(in, "-"))
		input = read_file(in, &in_len);
	for (int i = 0; i < n; i++)
		handles[i] = by_label(h, labels[i]);
	p = (CK_CPV4_EXTRACT_PARAMS){ sid_len, sid, in_len, input, 0, n, types,
				      handles, results, lens, blobs };
	/* The sizes first, then the blobs. */
	rv = ca->CA_Extract(h, &m);
	for (int i = 0; rv == CKR_OK && i < n; i++) {
		blobs[i] = malloc(lens[i] ? lens[i] : 1);
		if (!blobs[i])
			die("malloc", CKR_HOST_MEMORY);
	}
	if (rv == CKR_OK)
		rv = ca->CA_Extract(h, &m);
	for (int i = 0; i < n; i++) {
		char path[4096];

		printf("%s result=%s len=%lu\n", labels[i], rv_name(results[i]),
		       lens[i]);
		if (rv == CKR_OK && results[i] == CKR_OK) {
			snprintf(path, sizeof(path), "%s/%s.blob", dir, labels[i]);
			write_file(path, blobs[i], lens[i]);
		} else if (first == CKR_OK) {
			first = results[i];
		}
		free(blobs[i]);
	}
	free(types);
	free(handles);
	free(lens);
	free(results);
	free(blobs);
	free(input);
	return done(rv != CKR_OK ? rv : first);
}

/* CA_Insert of blobs[0..n-1] (files) in one call. */
static CK_RV insert_files(CK_SESSION_HANDLE h, uint8_t *sid, CK_ULONG sid_len,
			  CK_ULONG flags, int n, char **files, CK_RV *first)
{
	CK_ULONG *storage = calloc(n, sizeof(CK_ULONG));
	CK_ULONG *types = calloc(n, sizeof(CK_ULONG));
	CK_ULONG *lens = calloc(n, sizeof(CK_ULONG));
	CK_ULONG *handles = calloc(n, sizeof(CK_ULONG));
	CK_RV *results = calloc(n, sizeof(CK_RV)), rv;
	CK_BYTE_PTR *blobs = calloc(n, sizeof(CK_BYTE_PTR));
	CK_CPV4_INSERT_PARAMS p;
	CK_MECHANISM m = { CKM_CPV4_INSERT, &p, sizeof(p) };

	if (!storage || !types || !lens || !handles || !results || !blobs)
		die("calloc", CKR_HOST_MEMORY);
	for (int i = 0; i < n; i++)
		blobs[i] = read_file(files[i], &lens[i]);
	p = (CK_CPV4_INSERT_PARAMS){ sid_len, sid, flags, n, storage, types,
				     lens, blobs, results, handles };
	rv = ca->CA_Insert(h, &m);
	*first = CKR_OK;
	for (int i = 0; i < n; i++) {
		printf("%s result=%s\n", files[i], rv_name(results[i]));
		if (rv != CKR_OK && results[i] != CKR_CLONE_NOT_ATTEMPTED) {
			printf("%s: %s after a failed call\n", files[i],
			       rv_name(results[i]));
			*first = CKR_GENERAL_ERROR;
		}
		if (*first == CKR_OK && results[i] != CKR_OK)
			*first = results[i];
		free(blobs[i]);
	}
	free(storage);
	free(types);
	free(lens);
	free(handles);
	free(results);
	free(blobs);
	return rv;
}

static int cmd_insert(CK_SLOT_ID slot, const char *sidfile, const char *flags,
		      int n, char **files)
{
	CK_SESSION_HANDLE h = user_session(slot);
	uint8_t sid[64];
	CK_ULONG sid_len = read_sid(sidfile, sid);
	CK_RV first, rv = insert_files(h, sid, sid_len, strtoul(flags, NULL, 0),
				       n, files, &first);

	return done(rv != CKR_OK ? rv : first);
}

/* The label of a blob file: its name without directory and ".blob". */
static void blob_label(const char *file, char *out, size_t cap)
{
	const char *base = strrchr(file, '/');
	size_t n;

	base = base ? base + 1 : file;
	n = strlen(base);
	if (n > 5 && !strcmp(base + n - 5, ".blob"))
		n -= 5;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, base, n);
	out[n] = 0;
}

static int cmd_insert_acked(CK_SLOT_ID slot, const char *sidfile,
			    const char *ackfile, int n, char **files)
{
	CK_SESSION_HANDLE h = user_session(slot);
	uint8_t sid[64];
	CK_ULONG sid_len = read_sid(sidfile, sid);
	int fd = open(ackfile, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (fd < 0) {
		fprintf(stderr, "clone-tool: %s: %s\n", ackfile, strerror(errno));
		return 2;
	}
	for (int i = 0; i < n; i++) {
		char line[256];
		CK_RV first, rv = insert_files(h, sid, sid_len, 0, 1, files + i,
					       &first);
		size_t len;

		if (rv == CKR_OK)
			rv = first;
		if (rv != CKR_OK) {
			close(fd);
			return done(rv);
		}
		blob_label(files[i], line, sizeof(line) - 1);
		len = strlen(line);
		line[len++] = '\n';
		if (write(fd, line, len) != (ssize_t)len || fsync(fd)) {
			fprintf(stderr, "clone-tool: %s: %s\n", ackfile,
				strerror(errno));
			return 2;
		}
	}
	close(fd);
	return done(CKR_OK);
}

static int cmd_verify_acked(CK_SLOT_ID slot, const char *ackfile)
{
	CK_SESSION_HANDLE h = user_session(slot);
	FILE *f = fopen(ackfile, "r");
	char line[256];
	CK_RV rv = CKR_OK;
	unsigned long n = 0;

	if (!f) {
		fprintf(stderr, "clone-tool: %s: %s\n", ackfile, strerror(errno));
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		CK_ULONG count;

		line[strcspn(line, "\n")] = 0;
		count = find_label(h, line, NULL, 0);
		if (count != 1) {
			printf("%s: %lu objects\n", line, count);
			rv = CKR_OBJECT_HANDLE_INVALID;
		}
		n++;
	}
	fclose(f);
	printf("acknowledged=%lu\n", n);
	return done(rv);
}

static int cmd_close(CK_SLOT_ID slot, const char *sidfile)
{
	CK_SESSION_HANDLE h = user_session(slot);
	uint8_t sid[64];
	CK_ULONG sid_len = read_sid(sidfile, sid);

	return done(ca->CA_MigrationCloseSession(h, sid_len, sid));
}

static int cmd_encrypt(CK_SLOT_ID slot, const char *label, const char *out)
{
	CK_SESSION_HANDLE h = user_session(slot);
	uint8_t ct[256];
	CK_ULONG n = sizeof(ct);
	CK_RV rv = text_encrypt(h, by_label(h, label), ct, &n);

	if (rv == CKR_OK)
		write_file(out, ct, n);
	return done(rv);
}

static int cmd_decrypt(CK_SLOT_ID slot, const char *label, const char *in)
{
	CK_SESSION_HANDLE h = user_session(slot);
	CK_ULONG n;
	uint8_t *ct = read_file(in, &n);
	CK_RV rv = text_decrypt(h, by_label(h, label), ct, n);

	free(ct);
	return done(rv);
}

static int cmd_attrs(CK_SLOT_ID slot, const char *label)
{
	CK_SESSION_HANDLE h = user_session(slot);
	CK_OBJECT_HANDLE o = by_label(h, label);

	/* Every attribute number up to the 3.0 ones, and the vendor's. */
	for (CK_ATTRIBUTE_TYPE t = 0; t < 0x1300; t++) {
		CK_ATTRIBUTE a = { t, NULL, 0 };
		uint8_t *v;
		CK_RV rv;

		if (t == CKA_UNIQUE_ID)
			continue;
		rv = p11->C_GetAttributeValue(h, o, &a, 1);
		if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
			continue;
		if (rv != CKR_OK) {
			printf("%#lx=%s\n", t, rv_name(rv));
			continue;
		}
		v = malloc(a.ulValueLen + 1);
		if (!v)
			die("malloc", CKR_HOST_MEMORY);
		a.pValue = v;
		rv = p11->C_GetAttributeValue(h, o, &a, 1);
		if (rv != CKR_OK)
			die("C_GetAttributeValue", rv);
		printf("%#lx=", t);
		for (CK_ULONG i = 0; i < a.ulValueLen; i++)
			printf("%02x", v[i]);
		printf("\n");
		free(v);
	}
	return done(CKR_OK);
}

static int usage(void)
{
	fprintf(stderr, "usage: clone-tool MODULE COMMAND ARGS... "
		"(see tests/clone/clone-tool.c)\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 4)
		return usage();
	if (load(argv[1]))
		return 2;
	cmd = argv[2];
	argv += 3;
	argc -= 3;
	/* argv[0] is the slot from here on. */
	if (!strcmp(cmd, "init") && argc == 2)
		return cmd_init(slot_arg(argv[0]), argv[1]);
	if (!strcmp(cmd, "policy") && argc == 3)
		return cmd_policy(slot_arg(argv[0]), argv[1], argv[2]);
	if (!strcmp(cmd, "mkkey") && argc >= 2)
		return cmd_mkkey(slot_arg(argv[0]), argc - 1, argv + 1);
	if (!strcmp(cmd, "count") && argc == 2)
		return cmd_count(slot_arg(argv[0]), argv[1]);
	if (!strcmp(cmd, "migrate") && argc >= 4 && argc - 3 <= MAX_OBJS)
		return cmd_migrate(slot_arg(argv[0]), slot_arg(argv[1]),
				   strtoul(argv[2], NULL, 0), argc - 3, argv + 3);
	if (!strcmp(cmd, "cloneobj") && argc == 3)
		return cmd_cloneobj(slot_arg(argv[0]), slot_arg(argv[1]), argv[2]);
	if (!strcmp(cmd, "start") && argc == 2)
		return cmd_start(slot_arg(argv[0]), argv[1]);
	if (!strcmp(cmd, "continue") && argc == 5)
		return cmd_continue(slot_arg(argv[0]), argv[1], argv[2], argv[3],
				    argv[4]);
	if (!strcmp(cmd, "extract") && argc >= 5 && argc - 4 <= MAX_OBJS)
		return cmd_extract(slot_arg(argv[0]), argv[1], argv[2], argv[3],
				   argc - 4, argv + 4);
	if (!strcmp(cmd, "insert") && argc >= 4 && argc - 3 <= MAX_OBJS)
		return cmd_insert(slot_arg(argv[0]), argv[1], argv[2], argc - 3,
				  argv + 3);
	if (!strcmp(cmd, "insert-acked") && argc >= 4)
		return cmd_insert_acked(slot_arg(argv[0]), argv[1], argv[2],
					argc - 3, argv + 3);
	if (!strcmp(cmd, "verify-acked") && argc == 2)
		return cmd_verify_acked(slot_arg(argv[0]), argv[1]);
	if (!strcmp(cmd, "close") && argc == 2)
		return cmd_close(slot_arg(argv[0]), argv[1]);
	if (!strcmp(cmd, "encrypt") && argc == 3)
		return cmd_encrypt(slot_arg(argv[0]), argv[1], argv[2]);
	if (!strcmp(cmd, "decrypt") && argc == 3)
		return cmd_decrypt(slot_arg(argv[0]), argv[1], argv[2]);
	if (!strcmp(cmd, "attrs") && argc == 2)
		return cmd_attrs(slot_arg(argv[0]), argv[1]);
	return usage();
}
