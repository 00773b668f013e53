// SPDX-License-Identifier: MIT
/*
 * Client side of the crash-safety test (tests/crash/crash.sh).
 *
 *   crash-client MODULE init SO_PIN USER_PIN
 *	initialise the first slot's token and its user PIN
 *   crash-client MODULE write USER_PIN ACKFILE PREFIX MAX
 *	create token data objects PREFIX-0, PREFIX-1, ... until the card
 *	stops answering (or MAX were made); each label is appended to
 *	ACKFILE and fsync'ed as soon as C_CreateObject returned CKR_OK, so
 *	the file lists exactly what the card promised to keep
 *   crash-client MODULE verify USER_PIN ACKFILE
 *	check that every object in ACKFILE is on the token, once, with the
 *	value it was created with
 *
 * The library is loaded with dlopen() as any PKCS#11 application would.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <phsm/pkcs11.h>

#define LABEL_MAX 64

static CK_FUNCTION_LIST_PTR p11;

static int load(const char *path)
{
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CK_RV rv;

	if (!h) {
		fprintf(stderr, "crash-client: %s\n", dlerror());
		return -1;
	}
	*(void **)&get = dlsym(h, "C_GetFunctionList");
	if (!get || get(&p11) != CKR_OK) {
		fprintf(stderr, "crash-client: no C_GetFunctionList\n");
		return -1;
	}
	rv = p11->C_Initialize(&args);
	if (rv != CKR_OK) {
		fprintf(stderr, "crash-client: C_Initialize: %#lx\n", rv);
		return -1;
	}
	return 0;
}

static int first_slot(CK_SLOT_ID *slot)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_RV rv = p11->C_GetSlotList(CK_FALSE, slots, &n);

	if (rv != CKR_OK || n == 0) {
		fprintf(stderr, "crash-client: C_GetSlotList: %#lx, %lu slots\n",
			rv, n);
		return -1;
	}
	*slot = slots[0];
	return 0;
}

/* A read/write session on the first slot, logged in as @user. */
static int open_logged_in(CK_USER_TYPE user, const char *pin,
			  CK_SESSION_HANDLE *sess)
{
	CK_SLOT_ID slot;
	CK_RV rv;

	if (first_slot(&slot))
		return -1;
	rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				NULL, NULL, sess);
	if (rv != CKR_OK) {
		fprintf(stderr, "crash-client: C_OpenSession: %#lx\n", rv);
		return -1;
	}
	rv = p11->C_Login(*sess, user, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	if (rv != CKR_OK) {
		fprintf(stderr, "crash-client: C_Login: %#lx\n", rv);
		return -1;
	}
	return 0;
}

static int init_token(const char *so_pin, const char *user_pin)
{
	CK_UTF8CHAR label[32];
	CK_SESSION_HANDLE sess;
	CK_SLOT_ID slot;
	CK_RV rv;

	if (first_slot(&slot))
		return 1;
	memset(label, ' ', sizeof(label));
	memcpy(label, "crash", 5);
	rv = p11->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin),
			      label);
	if (rv != CKR_OK) {
		fprintf(stderr, "crash-client: C_InitToken: %#lx\n", rv);
		return 1;
	}
	if (open_logged_in(CKU_SO, so_pin, &sess))
		return 1;
	rv = p11->C_InitPIN(sess, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
	if (rv != CKR_OK) {
		fprintf(stderr, "crash-client: C_InitPIN: %#lx\n", rv);
		return 1;
	}
	return 0;
}

/* The value an object is created with: derived from its label. */
static size_t object_value(const char *label, unsigned char *buf, size_t cap)
{
	size_t n = 0, len = strlen(label);

	while (n < cap && n < 200) {
		buf[n] = (unsigned char)(label[n % len] ^ (n & 0xff));
		n++;
	}
	return n;
}

static CK_RV create_object(CK_SESSION_HANDLE sess, const char *label)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	unsigned char value[256];
	size_t value_len = object_value(label, value, sizeof(value));
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_APPLICATION, (void *)"phsm-crash", 10 },
		{ CKA_VALUE, value, value_len },
	};
	CK_OBJECT_HANDLE obj;

	return p11->C_CreateObject(sess, tmpl, sizeof(tmpl) / sizeof(tmpl[0]),
				   &obj);
}

static int append_ack(int fd, const char *label)
{
	char line[LABEL_MAX + 2];
	int n = snprintf(line, sizeof(line), "%s\n", label);

	if (write(fd, line, (size_t)n) != n || fsync(fd)) {
		perror("crash-client: ack file");
		return -1;
	}
	return 0;
}

static int write_objects(const char *pin, const char *ackfile,
			 const char *prefix, long max)
{
	CK_SESSION_HANDLE sess;
	char label[LABEL_MAX];
	long i;
	int fd;
	CK_RV rv = CKR_OK;

	fd = open(ackfile, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) {
		perror(ackfile);
		return 1;
	}
	if (open_logged_in(CKU_USER, pin, &sess)) {
		close(fd);
		return 1;
	}
	for (i = 0; i < max; i++) {
		snprintf(label, sizeof(label), "%s-%ld", prefix, i);
		rv = create_object(sess, label);
		if (rv != CKR_OK)
			break;
		if (append_ack(fd, label)) {
			close(fd);
			return 1;
		}
	}
	close(fd);
	/* The card going away is how a write round normally ends. */
	printf("crash-client: %ld objects acknowledged, last rv %#lx\n", i, rv);
	return 0;
}

/* 0 when exactly one object has the label and the expected value. */
static int check_object(CK_SESSION_HANDLE sess, const char *label)
{
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_OBJECT_HANDLE objs[2];
	CK_ULONG n = 0;
	unsigned char want[256], got[256];
	size_t want_len = object_value(label, want, sizeof(want));
	CK_ATTRIBUTE value = { CKA_VALUE, got, sizeof(got) };
	CK_RV rv;

	rv = p11->C_FindObjectsInit(sess, tmpl, 1);
	if (rv == CKR_OK)
		rv = p11->C_FindObjects(sess, objs, 2, &n);
	p11->C_FindObjectsFinal(sess);
	if (rv != CKR_OK) {
		printf("%s: find failed: %#lx\n", label, rv);
		return -1;
	}
	if (n != 1) {
		printf("%s: %s\n", label, n ? "found twice" : "missing");
		return -1;
	}
	rv = p11->C_GetAttributeValue(sess, objs[0], &value, 1);
	if (rv != CKR_OK || value.ulValueLen != want_len ||
	    memcmp(got, want, want_len)) {
		printf("%s: value differs (rv %#lx)\n", label, rv);
		return -1;
	}
	return 0;
}

static int verify_objects(const char *pin, const char *ackfile)
{
	CK_SESSION_HANDLE sess;
	char line[LABEL_MAX + 2];
	long total = 0, bad = 0;
	FILE *f = fopen(ackfile, "r");

	if (!f) {
		perror(ackfile);
		return 1;
	}
	if (open_logged_in(CKU_USER, pin, &sess)) {
		fclose(f);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		total++;
		if (check_object(sess, line))
			bad++;
	}
	fclose(f);
	printf("crash-client: %ld acknowledged objects checked, %ld bad\n",
	       total, bad);
	return bad ? 1 : 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: crash-client MODULE init SO_PIN USER_PIN\n"
		"       crash-client MODULE write USER_PIN ACKFILE PREFIX MAX\n"
		"       crash-client MODULE verify USER_PIN ACKFILE\n");
	return 2;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 3)
		return usage();
	if (load(argv[1]))
		return 1;
	if (!strcmp(argv[2], "init") && argc == 5)
		rc = init_token(argv[3], argv[4]);
	else if (!strcmp(argv[2], "write") && argc == 7)
		rc = write_objects(argv[3], argv[4], argv[5],
				   strtol(argv[6], NULL, 10));
	else if (!strcmp(argv[2], "verify") && argc == 5)
		rc = verify_objects(argv[3], argv[4]);
	else
		return usage();
	/* After a crash round the card is gone; finalize anyway. */
	p11->C_Finalize(NULL);
	return rc;
}
