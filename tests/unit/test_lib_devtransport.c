// SPDX-License-Identifier: MIT
/*
 * Unit tests for the library's /dev/phsmN transport (userlib/
 * transport_dev.c) and the discovery of device nodes (userlib/config.c).
 *
 * The test links the library's objects with ioctl() and close() wrapped
 * (-Wl,--wrap=ioctl,--wrap=close): the wrappers are a fake phsm driver
 * that follows Documentation/phsm/ioctl.rst and passes each request to a
 * real firmware core (libphsmfw.a), one application context per open
 * file.  The "device nodes" are symlinks named phsmN in a temporary
 * directory (PHSM_DEV_DIR) to /dev/null, /dev/zero and /dev/full: three
 * character devices with different numbers, so the fake tells the cards
 * apart by st_rdev.  Everything else is the library as applications use
 * it, through its C_ functions.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "firmware-sim/core/card.h"
#include "uapi/codec/phsm_codec.h"
#include "uapi/phsm_ioctl.h"
#include <phsm/pkcs11.h>

#define SO_PIN		"so-pin-1"
#define FAKE_CARDS	3
#define FAKE_FDS	1024
#define HDR_LEN		sizeof(struct phsm_msg_hdr)

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);
int __real_close(int fd);
int __wrap_close(int fd);

/* ---- the fake driver --------------------------------------------------- */

struct fake_file {
	bool open;
	pid_t owner;		/* the process whose last close ends it */
	int card;
	uint64_t app;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const char *targets[FAKE_CARDS];
	dev_t rdev[FAKE_CARDS];
	struct fw_card *fw[FAKE_CARDS];
	struct fake_file files[FAKE_FDS];
	int open_files;

	/* What the library did. */
	unsigned int submits;
	unsigned int bad_submits;	/* broke a rule of ioctl.rst */
	int last_card;
	unsigned int inflight, max_inflight;

	/* What the fake does. */
	struct phsm_ioctl_info info;
	unsigned int hold;		/* keep submits until this many wait */
	int fail_errno;			/* the next SUBMIT fails with it */
	int fail_info_errno;		/* every INFO fails with it */
	int mangle;			/* the next answer is broken: */
#define MANGLE_TAG	1		/* another tag */
#define MANGLE_LEN	2		/* header length disagrees */
#define MANGLE_CAP	3		/* resp_len beyond resp_cap */
} fake = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.targets = { "/dev/null", "/dev/zero", "/dev/full" },
};

static int card_of_fd(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode))
		return -1;
	for (int i = 0; i < FAKE_CARDS; i++)
		if (fake.fw[i] && fake.rdev[i] == st.st_rdev)
			return i;
	return -1;
}

/* The file of @fd, made on its first use (the driver's open). */
static struct fake_file *file_of_fd(int fd)
{
	struct fake_file *f;
	int card;

	if (fd < 0 || fd >= FAKE_FDS)
		return NULL;
	f = &fake.files[fd];
	if (f->open)
		return f;
	card = card_of_fd(fd);
	if (card < 0)
		return NULL;
	f->open = true;
	f->owner = getpid();
	f->card = card;
	f->app = fw_card_app_open(fake.fw[card]);
	fake.open_files++;
	return f;
}

int __wrap_close(int fd)
{
	pthread_mutex_lock(&fake.lock);
	if (fd >= 0 && fd < FAKE_FDS && fake.files[fd].open) {
		struct fake_file *f = &fake.files[fd];

		/* In a forked child the parent still holds the file. */
		if (f->owner == getpid()) {
			fw_card_app_close(fake.fw[f->card], f->app);
			fake.open_files--;
		}
		memset(f, 0, sizeof(*f));
	}
	pthread_mutex_unlock(&fake.lock);
	return __real_close(fd);
}

static int fake_info(struct phsm_ioctl_info *out)
{
	if (fake.fail_info_errno)
		return fake.fail_info_errno;
	*out = fake.info;
	return 0;
}

static bool submit_valid(const struct phsm_ioctl_submit *s)
{
	return s->req_len >= HDR_LEN && s->resp_cap >= HDR_LEN &&
	       !s->flags && !s->reserved0 && !s->reserved1[0] &&
	       !s->reserved1[1] && s->req_ptr && s->resp_ptr;
}

/*
 * Wait (at most 5 s) until fake.hold submits are in the driver at once;
 * the one that completes the count releases them all.
 */
static void hold_submits(void)
{
	struct timespec until;

	if (!fake.hold)
		return;
	if (fake.inflight >= fake.hold) {
		fake.hold = 0;
		pthread_cond_broadcast(&fake.cond);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	while (fake.hold &&
	       pthread_cond_timedwait(&fake.cond, &fake.lock, &until) == 0)
		;
}

static void mangle_answer(uint8_t *resp, size_t *len, uint32_t *resp_len)
{
	struct phsm_msg_hdr *h = (struct phsm_msg_hdr *)resp;

	switch (fake.mangle) {
	case MANGLE_TAG:
		h->tag ^= 0x5a5a;
		break;
	case MANGLE_LEN:
		h->length = (uint32_t)*len + 8;
		break;
	case MANGLE_CAP:
		*resp_len = fake.info.max_msg + 1;
		break;
	}
	fake.mangle = 0;
}

/* PHSM_IOCTL_SUBMIT: called and returns with fake.lock held. */
static int fake_submit(struct fake_file *f, struct phsm_ioctl_submit *s)
{
	uint8_t *req, *resp = NULL;
	size_t len = 0;
	uint32_t resp_len;
	int rc = 0;

	fake.submits++;
	fake.last_card = f->card;
	if (!submit_valid(s)) {
		fake.bad_submits++;
		return EINVAL;
	}
	if (s->req_len > fake.info.max_msg)
		return E2BIG;
	if (fake.fail_errno) {
		rc = fake.fail_errno;
		fake.fail_errno = 0;
		return rc;
	}
	req = malloc(s->req_len);
	assert_non_null(req);
	memcpy(req, (void *)(uintptr_t)s->req_ptr, s->req_len);
	/* The driver sets the file's context; the rest passes unchanged. */
	((struct phsm_msg_hdr *)req)->app_ctx = f->app;

	fake.inflight++;
	if (fake.inflight > fake.max_inflight)
		fake.max_inflight = fake.inflight;
	hold_submits();
	pthread_mutex_unlock(&fake.lock);
	assert_int_equal(fw_card_handle(fake.fw[f->card], f->app, req,
					s->req_len, &resp, &len), 0);
	pthread_mutex_lock(&fake.lock);
	fake.inflight--;
	free(req);

	resp_len = (uint32_t)len;
	mangle_answer(resp, &len, &resp_len);
	if (len > s->resp_cap) {
		s->resp_len = (uint32_t)len;
		rc = EMSGSIZE;
	} else {
		memcpy((void *)(uintptr_t)s->resp_ptr, resp, len);
		s->resp_len = resp_len;
	}
	free(resp);
	return rc;
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	struct fake_file *f;
	va_list ap;
	void *arg;
	int rc;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);

	pthread_mutex_lock(&fake.lock);
	f = file_of_fd(fd);
	if (!f) {
		pthread_mutex_unlock(&fake.lock);
		return __real_ioctl(fd, req, arg);
	}
	if (req == PHSM_IOCTL_INFO)
		rc = fake_info(arg);
	else if (req == PHSM_IOCTL_SUBMIT)
		rc = fake_submit(f, arg);
	else
		rc = ENOTTY;
	pthread_mutex_unlock(&fake.lock);
	if (rc) {
		errno = rc;
		return -1;
	}
	return 0;
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	char dir[64];
	char dev[80];
};

static void link_node(struct fx *x, const char *name, const char *target)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", x->dev, name);
	assert_int_equal(symlink(target, path), 0);
}

static void default_info(void)
{
	memset(&fake.info, 0, sizeof(fake.info));
	fake.info.abi_version = PHSM_ABI_VERSION;
	fake.info.proto_min = PHSM_PROTO_VERSION;
	fake.info.proto_max = PHSM_PROTO_VERSION;
	fake.info.max_msg = 1u << 20;
	fake.info.queue_depth = 32;
	fake.info.max_contexts = 64;
	fake.info.partitions = 2;
}

/*
 * Three cards whose nodes are numbered out of directory order: phsm1
 * (/dev/null), phsm2 (/dev/zero), phsm10 (/dev/full), plus names that are
 * not card nodes.
 */
static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	char err[256] = "";
	struct stat st;
	int fd;

	assert_non_null(x);
	strcpy(x->dir, "/tmp/phsm-devt.XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->dev, sizeof(x->dev), "%s/dev", x->dir);
	assert_int_equal(mkdir(x->dev, 0700), 0);
	for (int i = 0; i < FAKE_CARDS; i++) {
		char sdir[128];
		struct fw_card_config cfg = {
			.state_dir = sdir,
			.partitions = 2,
			.pin_iterations = 1,
		};

		snprintf(sdir, sizeof(sdir), "%s/card%d", x->dir, i);
		assert_int_equal(fw_card_open(&cfg, &fake.fw[i], err,
					      sizeof(err)), 0);
		assert_int_equal(stat(fake.targets[i], &st), 0);
		fake.rdev[i] = st.st_rdev;
	}
	link_node(x, "phsm10", fake.targets[2]);
	link_node(x, "phsm2", fake.targets[1]);
	link_node(x, "phsm1", fake.targets[0]);
	link_node(x, "phsm01", fake.targets[0]);	/* leading zero */
	link_node(x, "phsmctl", fake.targets[0]);
	link_node(x, "phsm", fake.targets[0]);
	fd = open(x->dev, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	/* A regular file is not a device node. */
	assert_int_equal(close(openat(fd, "phsm3", O_CREAT | O_WRONLY, 0600)), 0);
	close(fd);

	default_info();
	fake.submits = fake.bad_submits = 0;
	fake.inflight = fake.max_inflight = fake.hold = 0;
	fake.fail_errno = fake.fail_info_errno = fake.mangle = 0;
	fake.last_card = -1;
	setenv("PHSM_DEV_DIR", x->dev, 1);
	unsetenv("PHSM_FW_SOCKETS");
	setenv("PHSM_CONF", "/nonexistent/phsm.conf", 1);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	char cmd[128];

	C_Finalize(NULL);
	for (int i = 0; i < FAKE_CARDS; i++) {
		fw_card_close(fake.fw[i]);
		fake.fw[i] = NULL;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
	assert_int_equal(system(cmd), 0);
	free(x);
	return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static CK_ULONG slot_count(void)
{
	CK_ULONG n = 0;

	assert_int_equal(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	return n;
}

static void init_token(CK_SLOT_ID slot)
{
	CK_UTF8CHAR label[32];

	memset(label, ' ', sizeof(label));
	memcpy(label, "devt", 4);
	assert_int_equal(C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN,
				     strlen(SO_PIN), label), CKR_OK);
}

static CK_SESSION_HANDLE open_session(CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;

	assert_int_equal(C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
				       &h), CKR_OK);
	return h;
}

static CK_RV random_bytes(CK_SESSION_HANDLE h)
{
	CK_BYTE buf[32];

	return C_GenerateRandom(h, buf, sizeof(buf));
}

static bool token_present(CK_SLOT_ID slot)
{
	CK_SLOT_INFO si;

	assert_int_equal(C_GetSlotInfo(slot, &si), CKR_OK);
	return si.flags & CKF_TOKEN_PRESENT;
}

/* ---- discovery ------------------------------------------------------------ */

/* phsm1, phsm2, phsm10 are cards 0, 1, 2; nothing else is a card. */
static void test_nodes_in_numeric_order(void **state)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	static const CK_SLOT_ID want[] = { 0, 1, 16, 17, 32, 33 };

	(void)state;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	assert_int_equal(fake.open_files, 3);
	assert_int_equal(C_GetSlotList(CK_FALSE, slots, &n), CKR_OK);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(slots[i], want[i]);
	for (int card = 0; card < FAKE_CARDS; card++) {
		init_token((CK_SLOT_ID)card * 16);
		assert_int_equal(fake.last_card, card);
	}
	assert_int_equal(fake.bad_submits, 0);
}

/* PHSM_FW_SOCKETS, even empty, wins over the device nodes. */
static void test_sockets_take_precedence(void **state)
{
	(void)state;
	setenv("PHSM_FW_SOCKETS", "", 1);
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	assert_int_equal(slot_count(), 0);
	assert_int_equal(fake.open_files, 0);
	unsetenv("PHSM_FW_SOCKETS");
}

/* A driver the library cannot use: the card has no slots, no context stays. */
static void check_unusable(void)
{
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	assert_int_equal(slot_count(), 0);
	assert_int_equal(C_Finalize(NULL), CKR_OK);
	assert_int_equal(fake.open_files, 0);
	default_info();
}

static void test_unusable_driver(void **state)
{
	(void)state;
	fake.info.proto_min = PHSM_PROTO_VERSION + 1;
	fake.info.proto_max = PHSM_PROTO_VERSION + 1;
	check_unusable();
	fake.info.max_msg = 1024;
	check_unusable();
	fake.info.abi_version = 0;
	check_unusable();
	fake.fail_info_errno = ENOTTY;
	check_unusable();
	fake.fail_info_errno = 0;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	assert_int_equal(slot_count(), 6);
}

/* ---- requests --------------------------------------------------------------- */

/* Requests reach the card; the file is O_RDWR | O_CLOEXEC; no rule broken. */
static void test_round_trip(void **state)
{
	CK_SESSION_HANDLE h;
	CK_TOKEN_INFO ti;
	int fd, checked = 0;

	(void)state;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	init_token(1);
	h = open_session(1);
	assert_int_equal(random_bytes(h), CKR_OK);
	assert_int_equal(C_GetTokenInfo(1, &ti), CKR_OK);
	assert_int_equal(ti.ulSessionCount, 1);
	assert_memory_equal(ti.label, "devt", 4);
	assert_int_equal(C_CloseSession(h), CKR_OK);
	assert_int_equal(fake.bad_submits, 0);
	for (fd = 0; fd < FAKE_FDS; fd++) {
		if (!fake.files[fd].open)
			continue;
		assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		checked++;
	}
	assert_int_equal(checked, 3);
	/* C_Finalize closes the files: the contexts end on the cards. */
	assert_int_equal(C_Finalize(NULL), CKR_OK);
	assert_int_equal(fake.open_files, 0);
}

struct worker {
	CK_SESSION_HANDLE h;
	CK_RV rv;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	w->rv = random_bytes(w->h);
	return NULL;
}

/* Four threads on one card are in the driver at the same time. */
static void test_threads_in_flight(void **state)
{
	struct worker w[4];
	pthread_t t[4];

	(void)state;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	init_token(0);
	for (int i = 0; i < 4; i++)
		w[i].h = open_session(0);
	fake.max_inflight = 0;
	fake.hold = 4;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rv, CKR_OK);
	}
	assert_int_equal(fake.max_inflight, 4);
}

/* The same with the application's mutexes only (no OS locking). */
static CK_RV app_create(CK_VOID_PTR_PTR m)
{
	*m = malloc(1);
	return *m ? CKR_OK : CKR_HOST_MEMORY;
}

static CK_RV app_destroy(CK_VOID_PTR m)
{
	free(m);
	return CKR_OK;
}

static CK_RV app_nop(CK_VOID_PTR m)
{
	(void)m;
	return CKR_OK;
}

static void test_app_mutexes(void **state)
{
	CK_C_INITIALIZE_ARGS args = {
		.CreateMutex = app_create,
		.DestroyMutex = app_destroy,
		.LockMutex = app_nop,
		.UnlockMutex = app_nop,
	};
	CK_SESSION_HANDLE h;

	(void)state;
	assert_int_equal(C_Initialize(&args), CKR_OK);
	assert_int_equal(slot_count(), 6);
	init_token(16);
	h = open_session(16);
	assert_int_equal(random_bytes(h), CKR_OK);
}

/* The request is larger than the driver's max_msg: never sent. */
static void test_request_too_large(void **state)
{
	static CK_BYTE seed[8192];
	CK_SESSION_HANDLE h;
	unsigned int before;

	(void)state;
	fake.info.max_msg = 4096;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	init_token(0);
	h = open_session(0);
	before = fake.submits;
	assert_int_equal(C_SeedRandom(h, seed, sizeof(seed)), CKR_DEVICE_MEMORY);
	assert_int_equal(fake.submits, before);
	assert_int_equal(C_SeedRandom(h, seed, 100), CKR_OK);
}

/* ---- errors of the driver --------------------------------------------- */

/* Errors that fail one request: the next one works. */
static void test_errors_of_one_request(void **state)
{
	static const struct {
		int err;
		CK_RV rv;
	} cases[] = {
		{ ETIMEDOUT, CKR_DEVICE_ERROR },
		{ EIO, CKR_DEVICE_ERROR },
		{ EMSGSIZE, CKR_DEVICE_ERROR },
		{ ENOMEM, CKR_HOST_MEMORY },
	};
	CK_SESSION_HANDLE h;

	(void)state;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	init_token(0);
	h = open_session(0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake.fail_errno = cases[i].err;
		assert_int_equal(random_bytes(h), cases[i].rv);
		assert_int_equal(random_bytes(h), CKR_OK);
		assert_true(token_present(0));
	}
}

/* EINTR comes before the request is sent: the library repeats it. */
static void test_eintr_repeated(void **state)
{
	CK_SESSION_HANDLE h;
	unsigned int before;

	(void)state;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	init_token(0);
	h = open_session(0);
	before = fake.submits;
	fake.fail_errno = EINTR;
	assert_int_equal(random_bytes(h), CKR_OK);
	assert_int_equal(fake.submits, before + 2);
}

/* ENODEV: the card is gone for good, no further ioctl is made. */
static void test_removed(void **state)
{
	CK_SESSION_HANDLE h;
	unsigned int before;

	(void)state;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	init_token(0);
	h = open_session(0);
	fake.fail_errno = ENODEV;
	assert_int_equal(random_bytes(h), CKR_DEVICE_REMOVED);
	before = fake.submits;
	assert_int_equal(random_bytes(h), CKR_DEVICE_REMOVED);
	assert_int_equal(fake.submits, before);
	assert_false(token_present(0));
	assert_true(token_present(16));
}

/*
 * ESTALE: a reset dropped the context.  Requests fail until C_GetSlotList
 * with a NULL list opens the device again; the new context does not know
 * the old sessions, and their handles stay invalid.
 */
static void test_context_lost_to_reset(void **state)
{
	CK_SESSION_HANDLE h, h2;
	unsigned int before;

	(void)state;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	init_token(0);
	h = open_session(0);
	fake.fail_errno = ESTALE;
	assert_int_equal(random_bytes(h), CKR_DEVICE_ERROR);
	before = fake.submits;
	assert_int_equal(random_bytes(h), CKR_DEVICE_ERROR);
	assert_int_equal(fake.submits, before);
	assert_false(token_present(0));

	assert_int_equal(slot_count(), 6);	/* reconnects */
	assert_true(token_present(0));
	assert_int_equal(fake.open_files, 3);	/* the old file was closed */
	assert_int_equal(random_bytes(h), CKR_SESSION_HANDLE_INVALID);
	h2 = open_session(0);
	assert_int_equal(random_bytes(h2), CKR_OK);
}

/* An answer that is not the one asked for fails that request only. */
static void test_bad_answers(void **state)
{
	CK_SESSION_HANDLE h;

	(void)state;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	init_token(0);
	h = open_session(0);
	for (int m = MANGLE_TAG; m <= MANGLE_CAP; m++) {
		fake.mangle = m;
		assert_int_equal(random_bytes(h), CKR_DEVICE_ERROR);
		assert_int_equal(random_bytes(h), CKR_OK);
	}
}

/* ---- fork ----------------------------------------------------------------------- */

/* What the child checks; its exit status is the first that failed. */
static int child_checks(const int *fds, int nfds)
{
	CK_ULONG n = 0;
	unsigned int before = fake.submits;

	if (C_GetSlotList(CK_FALSE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED)
		return 10;
	for (int i = 0; i < nfds; i++)
		if (fcntl(fds[i], F_GETFD) != -1 || errno != EBADF)
			return 11;	/* the parent's file is still open here */
	if (fake.submits != before)
		return 12;
	if (C_Initialize(NULL) != CKR_OK)
		return 13;
	if (C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK || n != 6)
		return 14;
	if (C_Finalize(NULL) != CKR_OK)
		return 15;
	return 0;
}

/*
 * The child of a fork() closes its copies of the parent's files without
 * sending anything and starts uninitialised; the parent's context, with
 * its sessions, is not touched.
 */
static void test_fork(void **state)
{
	CK_SESSION_HANDLE h;
	int fds[FAKE_CARDS], nfds = 0, status;
	pid_t pid;

	(void)state;
	assert_int_equal(C_Initialize(NULL), CKR_OK);
	init_token(0);
	h = open_session(0);
	for (int fd = 0; fd < FAKE_FDS; fd++)
		if (fake.files[fd].open)
			fds[nfds++] = fd;
	assert_int_equal(nfds, 3);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_checks(fds, nfds));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(random_bytes(h), CKR_OK);
	assert_int_equal(fake.open_files, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nodes_in_numeric_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sockets_take_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_driver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_app_mutexes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_of_one_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eintr_repeated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_context_lost_to_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
