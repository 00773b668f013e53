// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The phsm character device on a live card: open and close, INFO,
 * synchronous and asynchronous submission, every class of bad input of
 * the ioctl ABI, many threads and processes at once, and the cleanup of
 * an application's sessions when its process dies.
 *
 * The card is $PHSM_DEV0 (/dev/phsm0); the cleanup test uses partition 1
 * of $PHSM_DEV1 (/dev/phsm1), which the PKCS#11 suite does not touch.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "../../kselftest_harness.h"
#include "phsm_lib.h"

#define SO_PIN		"phsm-selftest-so"
#define NTHREADS	8
#define NPROCS		4
#define PER_WORKER	200

/* The address of a page that is not mapped. */
static void *unmapped_page(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	munmap(p, pg);
	return p;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		if (*b++)
			return false;
	return true;
}

static bool all_byte(const void *p, size_t n, uint8_t v)
{
	const uint8_t *b = p;

	while (n--)
		if (*b++ != v)
			return false;
	return true;
}

/* A field of INFO as the C string sysfs shows (trailing blanks cut). */
static void blank_padded(char *out, const uint8_t *in, size_t n)
{
	memcpy(out, in, n);
	out[n] = 0;
	while (n > 0 && out[n - 1] == ' ')
		out[--n] = 0;
}

FIXTURE(dev) {
	int fd;
	struct phsm_ioctl_info info;
	uint8_t *resp;		/* max_msg bytes */
	struct tmsg nop;
};

FIXTURE_SETUP(dev)
{
	self->fd = phsm_open(phsm_dev0());
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", phsm_dev0(),
				      strerror(-self->fd));
	ASSERT_EQ(0, phsm_info(self->fd, &self->info));
	ASSERT_LE(4096, self->info.max_msg);
	ASSERT_GE(PHSM_MSG_MAX, self->info.max_msg);
	self->resp = malloc(self->info.max_msg);
	ASSERT_NE(NULL, self->resp);
	self->nop = msg_plain(PHSM_OP_NOP, 0x1234);
	ASSERT_NE(NULL, self->nop.p);
}

FIXTURE_TEARDOWN(dev)
{
	free(self->resp);
	tmsg_free(&self->nop);
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
}

TEST(open_close_many)
{
	int i, fd;

	for (i = 0; i < 200; i++) {
		fd = phsm_open(phsm_dev0());
		ASSERT_LE(0, fd) TH_LOG("open #%d: %s", i, strerror(-fd));
		ASSERT_EQ(0, close(fd));
	}
}

TEST(readonly_open)
{
	struct phsm_ioctl_info info;
	struct tmsg nop = msg_plain(PHSM_OP_NOP, 1);
	uint8_t resp[64];
	int fd = open(phsm_dev0(), O_RDONLY | O_CLOEXEC);

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, phsm_info(fd, &info));
	EXPECT_EQ(-EBADF, phsm_submit(fd, nop.p, nop.len, resp, sizeof(resp),
				      0, NULL));
	EXPECT_EQ(-EBADF, phsm_submit_async(fd, nop.p, nop.len, resp,
					    sizeof(resp), 0, 0, NULL));
	tmsg_free(&nop);
	EXPECT_EQ(0, close(fd));
}

TEST_F(dev, info)
{
	struct phsm_ioctl_info *in = &self->info, fresh;
	char serial[PHSM_SERIAL_LEN + 1], attr[128];
	const char *name = phsm_name(phsm_dev0());
	long long depth;

	EXPECT_EQ(PHSM_ABI_VERSION, in->abi_version);
	EXPECT_TRUE(in->features & PHSM_FEAT_ASYNC);
	EXPECT_EQ(1, in->dev_version >> 16);
	EXPECT_LE(in->proto_min, PHSM_PROTO_VERSION);
	EXPECT_GE(in->proto_max, PHSM_PROTO_VERSION);
	EXPECT_LE(1, in->queue_depth);
	EXPECT_LE(1, in->max_async);
	EXPECT_LE(2, in->max_contexts);
	EXPECT_LE(1, in->partitions);
	EXPECT_EQ(0, in->reserved0);
	EXPECT_TRUE(all_zero(in->reserved1, sizeof(in->reserved1)));

	/* Everything is written: nothing of the caller's buffer shows. */
	memset(&fresh, 0xa5, sizeof(fresh));
	ASSERT_EQ(0, phsm_info(self->fd, &fresh));
	EXPECT_EQ(0, fresh.reserved0);
	EXPECT_TRUE(all_zero(fresh.reserved1, sizeof(fresh.reserved1)));
	EXPECT_EQ(0, memcmp(in, &fresh, sizeof(fresh)));

	/* sysfs says the same as the ioctl. */
	blank_padded(serial, in->serial, sizeof(in->serial));
	EXPECT_LT(0, strlen(serial));
	ASSERT_EQ(0, phsm_attr(name, "serial", attr, sizeof(attr)));
	EXPECT_STREQ(serial, attr);
	depth = phsm_attr_num(name, "queue_depth");
	EXPECT_EQ((long long)in->queue_depth, depth);
	ASSERT_EQ(0, phsm_attr(name, "firmware_version", attr, sizeof(attr)));
	EXPECT_NE(NULL, strchr(attr, '.')) TH_LOG("firmware_version '%s'", attr);
	ASSERT_EQ(0, phsm_attr(name, "state", attr, sizeof(attr)));
	EXPECT_STREQ("live", attr);
	EXPECT_LE(0, phsm_attr_num(name, "commands"));
	EXPECT_LE(0, phsm_attr_num(name, "errors"));
	EXPECT_LE(0, phsm_attr_num(name, "timeouts"));
}

TEST_F(dev, nop)
{
	const char *name = phsm_name(phsm_dev0());
	long long before = phsm_attr_num(name, "commands");
	struct phsm_msg m;
	uint32_t len = 0;

	memset(self->resp, 0xa5, self->info.max_msg);
	ASSERT_EQ(0, phsm_submit(self->fd, self->nop.p, self->nop.len,
				 self->resp, self->info.max_msg, 0, &len));
	ASSERT_EQ(PHSM_HDR_LEN, len);
	ASSERT_EQ(PHSM_ST_OK, phsm_check_resp(self->resp, len, PHSM_OP_NOP,
					      0x1234, &m));
	EXPECT_EQ(T_CKR_OK, m.rv);
	EXPECT_EQ(0, m.payload.left);
	/* Not one byte past the response is written. */
	EXPECT_TRUE(all_byte(self->resp + len, self->info.max_msg - len, 0xa5));
	/* The counter moved. */
	EXPECT_LT(before, phsm_attr_num(name, "commands"));
}

TEST_F(dev, card_info)
{
	struct tmsg req = msg_plain(PHSM_OP_GET_CARD_INFO, 77);
	struct phsm_card_info ci;
	struct phsm_msg m;
	const uint8_t *p;
	uint8_t *resp;
	size_t n = 0;

	ASSERT_EQ(0, phsm_call(self->fd, &req, 0, &resp, &m));
	tmsg_free(&req);
	EXPECT_EQ(T_CKR_OK, m.rv);
	p = phsm_get_bytes(&m.payload, &n);
	ASSERT_TRUE(phsm_reader_done(&m.payload));
	ASSERT_EQ(sizeof(ci), n);
	memcpy(&ci, p, sizeof(ci));
	free(resp);
	EXPECT_EQ(0, memcmp(ci.serial, self->info.serial, sizeof(ci.serial)));
	EXPECT_EQ(0, memcmp(ci.model, self->info.model, sizeof(ci.model)));
	EXPECT_EQ(self->info.partitions, le32toh(ci.partitions));
	EXPECT_EQ(self->info.fw_major, ci.fw_major);
	EXPECT_EQ(self->info.fw_minor, ci.fw_minor);
	EXPECT_EQ(self->info.hw_major, ci.hw_major);
	EXPECT_EQ(self->info.hw_minor, ci.hw_minor);
}

/* Whatever the caller puts in app_ctx, the driver sets the file's own. */
TEST_F(dev, app_ctx_is_the_files)
{
	struct phsm_msg_hdr *h = (struct phsm_msg_hdr *)self->nop.p;
	struct phsm_msg m;
	uint32_t len = 0;

	h->app_ctx = htole64(0xdeadbeefcafef00dULL);
	ASSERT_EQ(0, phsm_submit(self->fd, self->nop.p, self->nop.len,
				 self->resp, self->info.max_msg, 0, &len));
	ASSERT_EQ(PHSM_ST_OK, phsm_check_resp(self->resp, len, PHSM_OP_NOP,
					      0x1234, &m));
	/* And the caller's buffer is not written. */
	EXPECT_EQ(0xdeadbeefcafef00dULL, le64toh(h->app_ctx));
}

/* The driver passes malformed messages to the card, which answers them. */
TEST_F(dev, malformed_message_is_answered)
{
	struct phsm_msg_hdr h;
	uint8_t req[64];
	uint32_t len = 0;

	/* Bad magic. */
	memcpy(req, self->nop.p, PHSM_HDR_LEN);
	((struct phsm_msg_hdr *)req)->magic = htole32(0x12345678);
	ASSERT_EQ(0, phsm_submit(self->fd, req, PHSM_HDR_LEN, self->resp,
				 self->info.max_msg, 0, &len));
	ASSERT_LE(PHSM_HDR_LEN, len);
	memcpy(&h, self->resp, sizeof(h));
	EXPECT_EQ(PHSM_ST_BAD_MAGIC, le32toh(h.status));

	/* Header length disagrees with the bytes given. */
	memset(req, 0, sizeof(req));
	memcpy(req, self->nop.p, PHSM_HDR_LEN);
	ASSERT_EQ(0, phsm_submit(self->fd, req, 48, self->resp,
				 self->info.max_msg, 0, &len));
	ASSERT_LE(PHSM_HDR_LEN, len);
	memcpy(&h, self->resp, sizeof(h));
	EXPECT_EQ(PHSM_ST_BAD_LENGTH, le32toh(h.status));

	/* Unknown opcode. */
	memcpy(req, self->nop.p, PHSM_HDR_LEN);
	((struct phsm_msg_hdr *)req)->opcode = htole16(0x7fff);
	ASSERT_EQ(0, phsm_submit(self->fd, req, PHSM_HDR_LEN, self->resp,
				 self->info.max_msg, 0, &len));
	memcpy(&h, self->resp, sizeof(h));
	EXPECT_EQ(PHSM_ST_BAD_OPCODE, le32toh(h.status));
}

TEST_F(dev, unknown_ioctl)
{
	struct { uint8_t b[200]; } big;
	struct phsm_ioctl_submit s;

	memset(&big, 0, sizeof(big));
	memset(&s, 0, sizeof(s));
	EXPECT_EQ(-1, ioctl(self->fd, _IO(PHSM_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IOWR(PHSM_IOC_MAGIC, 0x03, big), &big));
	EXPECT_EQ(ENOTTY, errno);
	/* A known number with another size ... */
	EXPECT_EQ(-1, ioctl(self->fd, _IOR(PHSM_IOC_MAGIC, 0x00, big), &big));
	EXPECT_EQ(ENOTTY, errno);
	/* ... or another direction. */
	EXPECT_EQ(-1, ioctl(self->fd, _IOW(PHSM_IOC_MAGIC, 0x01,
					   struct phsm_ioctl_submit), &s));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO(PHSM_IOC_MAGIC, 0x01)));
	EXPECT_EQ(ENOTTY, errno);
	/* Another magic. */
	EXPECT_EQ(-1, ioctl(self->fd, _IOWR(PHSM_IOC_MAGIC + 1, 0x01,
					    struct phsm_ioctl_submit), &s));
	EXPECT_EQ(ENOTTY, errno);
	/* A tty ioctl on a device that is not a tty. */
	EXPECT_EQ(-1, ioctl(self->fd, TCGETS, &big));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(dev, reserved_fields_and_flags)
{
	struct phsm_ioctl_submit s, base = {
		.req_ptr = (uintptr_t)self->nop.p,
		.resp_ptr = (uintptr_t)self->resp,
		.req_len = self->nop.len,
		.resp_cap = self->info.max_msg,
	};
	struct phsm_ioctl_submit_async a, abase = {
		.req_ptr = (uintptr_t)self->nop.p,
		.resp_ptr = (uintptr_t)self->resp,
		.req_len = self->nop.len,
		.resp_cap = self->info.max_msg,
	};
	struct phsm_completion c;
	int i;

	/* The baseline works. */
	s = base;
	ASSERT_EQ(0, ioctl(self->fd, PHSM_IOCTL_SUBMIT, &s));

	s = base;
	s.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT, &s));
	EXPECT_EQ(EINVAL, errno);
	s = base;
	s.flags = 0x80000000u;
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT, &s));
	EXPECT_EQ(EINVAL, errno);
	s = base;
	s.reserved0 = 1;
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT, &s));
	EXPECT_EQ(EINVAL, errno);
	for (i = 0; i < 2; i++) {
		s = base;
		s.reserved1[i] = 1ULL << 63;
		EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT, &s));
		EXPECT_EQ(EINVAL, errno);
	}

	a = abase;
	a.flags = 2;
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT_ASYNC, &a));
	EXPECT_EQ(EINVAL, errno);
	for (i = 0; i < 2; i++) {
		a = abase;
		a.reserved[i] = 1;
		EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT_ASYNC, &a));
		EXPECT_EQ(EINVAL, errno);
	}
	/* None of the refused ones produced a completion. */
	EXPECT_EQ(0, fcntl(self->fd, F_SETFL, O_NONBLOCK));
	EXPECT_EQ(-1, read(self->fd, &c, sizeof(c)));
	EXPECT_EQ(EAGAIN, errno);
}

TEST_F(dev, bad_pointers)
{
	void *hole = unmapped_page();
	/* Not a user address at all. */
	void *kernel = (void *)(uintptr_t)0xffff888000000000ULL;
	struct phsm_ioctl_submit s;
	struct phsm_ioctl_submit_async a;
	struct phsm_completion c;
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	uint32_t len;

	ASSERT_NE(NULL, hole);
	/* The argument itself. */
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_INFO, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_INFO, hole));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT, hole));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT, kernel));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT_ASYNC, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	/* The structure straddling the end of a mapping. */
	memset(&s, 0, sizeof(s));
	EXPECT_EQ(-1, ioctl(self->fd, PHSM_IOCTL_SUBMIT,
			    (uint8_t *)hole - sizeof(s) / 2));
	EXPECT_EQ(EFAULT, errno);

	/* Pointers inside it. */
	EXPECT_EQ(-EFAULT, phsm_submit(self->fd, hole, self->nop.len,
				       self->resp, self->info.max_msg, 0, &len));
	EXPECT_EQ(-EFAULT, phsm_submit(self->fd, kernel, self->nop.len,
				       self->resp, self->info.max_msg, 0, &len));
	EXPECT_EQ(-EFAULT, phsm_submit(self->fd, NULL, self->nop.len,
				       self->resp, self->info.max_msg, 0, &len));
	EXPECT_EQ(-EFAULT, phsm_submit(self->fd, self->nop.p, self->nop.len,
				       hole, self->info.max_msg, 0, &len));
	EXPECT_EQ(-EFAULT, phsm_submit(self->fd, self->nop.p, self->nop.len,
				       kernel, self->info.max_msg, 0, &len));
	EXPECT_EQ(-EFAULT, phsm_submit_async(self->fd, hole, self->nop.len,
					     self->resp, self->info.max_msg,
					     0, 0, NULL));

	/*
	 * A bad response pointer of an async command shows when its
	 * completion is read: -EFAULT in the record.
	 */
	memset(&a, 0, sizeof(a));
	ASSERT_EQ(0, phsm_submit_async(self->fd, self->nop.p, self->nop.len,
				       hole, 4096, 42, 0, NULL));
	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	ASSERT_EQ(sizeof(c), read(self->fd, &c, sizeof(c)));
	EXPECT_EQ(42, c.user_data);
	EXPECT_EQ(-EFAULT, c.error);

	/* A bad read buffer: EFAULT, and the record stays queued. */
	ASSERT_EQ(0, phsm_submit_async(self->fd, self->nop.p, self->nop.len,
				       self->resp, self->info.max_msg, 43, 0,
				       NULL));
	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	EXPECT_EQ(-1, read(self->fd, hole, sizeof(c)));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(sizeof(c), read(self->fd, &c, sizeof(c)));
	EXPECT_EQ(43, c.user_data);
	EXPECT_EQ(0, c.error);
	EXPECT_EQ(PHSM_HDR_LEN, c.resp_len);
}

TEST_F(dev, lengths)
{
	uint8_t *big;
	uint32_t len;

	/* Shorter than a header. */
	EXPECT_EQ(-EINVAL, phsm_submit(self->fd, self->nop.p, 0, self->resp,
				       self->info.max_msg, 0, &len));
	EXPECT_EQ(-EINVAL, phsm_submit(self->fd, self->nop.p, PHSM_HDR_LEN - 1,
				       self->resp, self->info.max_msg, 0, &len));
	EXPECT_EQ(-EINVAL, phsm_submit(self->fd, self->nop.p, self->nop.len,
				       self->resp, 0, 0, &len));
	EXPECT_EQ(-EINVAL, phsm_submit(self->fd, self->nop.p, self->nop.len,
				       self->resp, PHSM_HDR_LEN - 1, 0, &len));
	EXPECT_EQ(-EINVAL, phsm_submit_async(self->fd, self->nop.p, 0,
					     self->resp, self->info.max_msg,
					     0, 0, NULL));
	EXPECT_EQ(-EINVAL, phsm_submit_async(self->fd, self->nop.p,
					     self->nop.len, self->resp, 16,
					     0, 0, NULL));

	/* Longer than the card takes: refused before anything is read. */
	EXPECT_EQ(-E2BIG, phsm_submit(self->fd, self->nop.p,
				      self->info.max_msg + 1, self->resp,
				      self->info.max_msg, 0, &len));
	EXPECT_EQ(-E2BIG, phsm_submit(self->fd, self->nop.p, UINT32_MAX,
				      self->resp, self->info.max_msg, 0, &len));
	EXPECT_EQ(-E2BIG, phsm_submit_async(self->fd, self->nop.p, UINT32_MAX,
					    self->resp, self->info.max_msg,
					    0, 0, NULL));

	/* Exactly a header is the smallest request and response. */
	EXPECT_EQ(0, phsm_submit(self->fd, self->nop.p, PHSM_HDR_LEN,
				 self->resp, PHSM_HDR_LEN, 0, &len));
	EXPECT_EQ(PHSM_HDR_LEN, len);

	/* A response capacity above max_msg is allowed. */
	big = malloc((size_t)self->info.max_msg * 2);
	ASSERT_NE(NULL, big);
	EXPECT_EQ(0, phsm_submit(self->fd, self->nop.p, self->nop.len, big,
				 self->info.max_msg * 2, 0, &len));
	EXPECT_EQ(PHSM_HDR_LEN, len);
	free(big);

	/* A request of max_msg bytes goes through (the card judges it). */
	big = calloc(1, self->info.max_msg);
	ASSERT_NE(NULL, big);
	memcpy(big, self->nop.p, PHSM_HDR_LEN);
	EXPECT_EQ(0, phsm_submit(self->fd, big, self->info.max_msg, self->resp,
				 self->info.max_msg, 0, &len));
	EXPECT_LE(PHSM_HDR_LEN, len);
	free(big);
}

TEST_F(dev, response_too_small)
{
	struct tmsg req = msg_plain(PHSM_OP_GET_CARD_INFO, 5);
	uint8_t small[PHSM_HDR_LEN + 8];
	uint32_t len = 0;
	struct phsm_msg m;

	memset(small, 0x5a, sizeof(small));
	EXPECT_EQ(-EMSGSIZE, phsm_submit(self->fd, req.p, req.len, small,
					 sizeof(small), 0, &len));
	/* The size it needed, and nothing written. */
	EXPECT_LT(sizeof(small), len);
	EXPECT_TRUE(all_byte(small, sizeof(small), 0x5a));
	/* With that size it fits. */
	ASSERT_EQ(0, phsm_submit(self->fd, req.p, req.len, self->resp, len,
				 0, &len));
	EXPECT_EQ(PHSM_ST_OK, phsm_check_resp(self->resp, len,
					      PHSM_OP_GET_CARD_INFO, 5, &m));
	tmsg_free(&req);
}

TEST_F(dev, read_write_misuse)
{
	struct phsm_completion c[2];
	char small[16];

	EXPECT_EQ(-1, write(self->fd, self->nop.p, self->nop.len));
	EXPECT_EQ(EINVAL, errno);
	/* Smaller than one record. */
	EXPECT_EQ(-1, read(self->fd, small, sizeof(small)));
	EXPECT_EQ(EINVAL, errno);
	/* Nothing pending: a non-blocking read says so. */
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, O_NONBLOCK));
	EXPECT_EQ(-1, read(self->fd, c, sizeof(c)));
	EXPECT_EQ(EAGAIN, errno);
}

/* One thread, many commands in flight, completions by poll and read. */
TEST_F_TIMEOUT(dev, async_many_in_flight, 120)
{
	unsigned int n = self->info.max_async < 64 ? self->info.max_async : 64;
	struct tmsg req[64];
	uint8_t (*resp)[64] = calloc(n, 64);
	bool seen[64] = { false };
	uint64_t ids[64];
	struct phsm_completion c[8];
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN | POLLOUT };
	unsigned int i, got = 0;
	ssize_t r;

	ASSERT_NE(NULL, resp);
	ASSERT_LE(1, n);
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLOUT, pfd.revents & (POLLIN | POLLOUT));
	for (i = 0; i < n; i++) {
		req[i] = msg_plain(PHSM_OP_NOP, 0x5000 + i);
		ASSERT_NE(NULL, req[i].p);
		ASSERT_EQ(0, phsm_submit_async(self->fd, req[i].p, req[i].len,
					       resp[i], 64, i, 0, &ids[i]));
		/* The request buffer may be reused at once. */
		memset(req[i].p, 0xee, req[i].len);
	}
	for (i = 1; i < n; i++)
		EXPECT_NE(ids[0], ids[i]);
	while (got < n) {
		pfd.events = POLLIN;
		ASSERT_EQ(1, poll(&pfd, 1, 20000)) TH_LOG("%u of %u", got, n);
		ASSERT_TRUE(pfd.revents & POLLIN);
		r = read(self->fd, c, sizeof(c));
		ASSERT_LT(0, r);
		ASSERT_EQ(0, r % sizeof(c[0]));
		for (i = 0; i < r / sizeof(c[0]); i++) {
			uint64_t k = c[i].user_data;
			struct phsm_msg m;

			ASSERT_GT(n, k);
			ASSERT_FALSE(seen[k]);
			seen[k] = true;
			got++;
			EXPECT_EQ(ids[k], c[i].id);
			EXPECT_EQ(0, c[i].error);
			EXPECT_EQ(0, c[i].reserved);
			ASSERT_EQ(PHSM_HDR_LEN, c[i].resp_len);
			EXPECT_EQ(PHSM_ST_OK,
				  phsm_check_resp(resp[k], c[i].resp_len,
						  PHSM_OP_NOP, 0x5000 + k, &m));
		}
	}
	/* Everything read: nothing more, and a non-blocking read says so. */
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, O_NONBLOCK));
	EXPECT_EQ(-1, read(self->fd, c, sizeof(c)));
	EXPECT_EQ(EAGAIN, errno);
	for (i = 0; i < n; i++)
		tmsg_free(&req[i]);
	free(resp);
}

/* max_async commands unread: the next one is refused with EAGAIN. */
TEST_F_TIMEOUT(dev, async_limit, 120)
{
	unsigned int n = self->info.max_async, i, got = 0;
	uint8_t (*resp)[64];
	struct phsm_completion c[16];
	struct pollfd pfd = { .fd = self->fd, .events = POLLOUT };
	ssize_t r;

	if (n > 4096)
		SKIP(return, "max_async %u is too large to fill", n);
	resp = calloc(n + 1, 64);
	ASSERT_NE(NULL, resp);
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, phsm_submit_async(self->fd, self->nop.p,
					       self->nop.len, resp[i], 64, i,
					       0, NULL)) TH_LOG("#%u", i);
	EXPECT_EQ(-EAGAIN, phsm_submit_async(self->fd, self->nop.p,
					     self->nop.len, resp[n], 64, n, 0,
					     NULL));
	EXPECT_EQ(0, poll(&pfd, 1, 0)) TH_LOG("POLLOUT with the queue full");
	while (got < n) {
		r = read(self->fd, c, sizeof(c));
		ASSERT_LT(0, r);
		for (i = 0; i < r / sizeof(c[0]); i++)
			EXPECT_EQ(0, c[i].error);
		got += r / sizeof(c[0]);
	}
	EXPECT_EQ(n, got);
	EXPECT_EQ(0, phsm_nop(self->fd, 9, 0));
	free(resp);
}

/* Closing with commands in flight and completions unread is clean. */
TEST_F(dev, close_with_commands_in_flight)
{
	unsigned int n = self->info.max_async < 32 ? self->info.max_async : 32;
	uint8_t (*resp)[64] = calloc(n, 64);
	unsigned int i;
	int fd2;

	ASSERT_NE(NULL, resp);
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, phsm_submit_async(self->fd, self->nop.p,
					       self->nop.len, resp[i], 64, i,
					       0, NULL));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	/* The memory is ours again: nothing is written into it later. */
	memset(resp, 0x77, (size_t)n * 64);
	fd2 = phsm_open(phsm_dev0());
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, phsm_nop(fd2, 1, 0));
	EXPECT_EQ(0, close(fd2));
	EXPECT_TRUE(all_byte(resp, (size_t)n * 64, 0x77));
	free(resp);
}

struct worker {
	int fd;			/* shared fd, or -1: open an own one */
	unsigned int id;
	int ret;		/* 0, or the first failure (-errno, -EPROTO) */
};

static void *nop_worker(void *arg)
{
	struct worker *w = arg;
	int fd = w->fd >= 0 ? w->fd : phsm_open(phsm_dev0());
	unsigned int i;

	w->ret = fd < 0 ? fd : 0;
	for (i = 0; fd >= 0 && i < PER_WORKER && !w->ret; i++)
		w->ret = phsm_nop(fd, (w->id << 16) | i, 0);
	if (w->fd < 0 && fd >= 0)
		close(fd);
	return NULL;
}

static void run_threads(struct __test_metadata *_metadata, int shared_fd)
{
	pthread_t t[NTHREADS];
	struct worker w[NTHREADS];
	unsigned int i;

	for (i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .fd = shared_fd, .id = i + 1 };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, nop_worker, &w[i]));
	}
	for (i = 0; i < NTHREADS; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, w[i].ret) TH_LOG("thread %u: %s", i,
					      strerror(-w[i].ret));
	}
}

TEST_F_TIMEOUT(dev, threads_one_fd, 300)
{
	long long before = phsm_attr_num(phsm_name(phsm_dev0()), "commands");

	run_threads(_metadata, self->fd);
	EXPECT_LE(before + NTHREADS * PER_WORKER,
		  phsm_attr_num(phsm_name(phsm_dev0()), "commands"));
}

TEST_F_TIMEOUT(dev, threads_own_fds, 300)
{
	run_threads(_metadata, -1);
}

TEST_F_TIMEOUT(dev, processes, 300)
{
	pid_t pid[NPROCS];
	int i, status;

	for (i = 0; i < NPROCS; i++) {
		pid[i] = fork();
		ASSERT_LE(0, pid[i]);
		if (pid[i] == 0) {
			struct worker w = { .fd = -1, .id = 0x100 + i };
			struct worker shared = { .id = 0x200 + i };

			nop_worker(&w);
			/* The fixture's fd, inherited: the same context. */
			shared.fd = self->fd;
			nop_worker(&shared);
			_exit(w.ret || shared.ret ? 1 : 0);
		}
	}
	for (i = 0; i < NPROCS; i++) {
		ASSERT_EQ(pid[i], waitpid(pid[i], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			TH_LOG("child %d: status %#x", i, status);
	}
}

/*
 * A process opens a session on partition 1 of the second card and is
 * killed; its session is gone with it: the token's session count is
 * back to 0 and the token can be initialised again (which a session
 * would prevent with CKR_SESSION_EXISTS).
 */
TEST_F_TIMEOUT(dev, app_cleanup_on_kill, 120)
{
	struct phsm_token_info ti;
	uint64_t session = 0;
	int fd, p[2], status, i, ret;
	pid_t child;

	fd = phsm_open(phsm_dev1());
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", phsm_dev1(), strerror(-fd));
	ret = phsm_init_token(fd, 1, SO_PIN, "selftest cleanup");
	ASSERT_EQ(0, ret) TH_LOG("INIT_TOKEN: %d", ret);
	ASSERT_EQ(0, phsm_token_info(fd, 1, &ti));
	ASSERT_TRUE(le64toh(ti.flags) & T_CKF_TOKEN_INITIALIZED);
	ASSERT_EQ(0, le64toh(ti.session_count));

	ASSERT_EQ(0, pipe(p));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		int cfd = phsm_open(phsm_dev1());
		uint64_t s = 0;

		close(p[0]);
		if (cfd < 0 || phsm_open_session(cfd, 1, &s))
			s = 0;
		if (write(p[1], &s, sizeof(s)) != sizeof(s))
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	ASSERT_EQ(sizeof(session), read(p[0], &session, sizeof(session)));
	close(p[0]);
	ASSERT_NE(0, session) TH_LOG("the child could not open a session");

	/* The child's session is counted, and is not ours to use. */
	ASSERT_EQ(0, phsm_token_info(fd, 1, &ti));
	EXPECT_EQ(1, le64toh(ti.session_count));
	EXPECT_EQ(T_CKR_SESSION_HANDLE_INVALID, phsm_session_rv(fd, session));

	ASSERT_EQ(0, kill(child, SIGKILL));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));

	/* The driver closes the context as the file is released. */
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(0, phsm_token_info(fd, 1, &ti));
		if (le64toh(ti.session_count) == 0)
			break;
		phsm_sleep_ms(100);
	}
	EXPECT_EQ(0, le64toh(ti.session_count));
	EXPECT_EQ(0, phsm_init_token(fd, 1, SO_PIN, "selftest cleanup 2"));
	EXPECT_EQ(T_CKR_SESSION_HANDLE_INVALID, phsm_session_rv(fd, session));
	EXPECT_EQ(0, close(fd));
}

TEST_HARNESS_MAIN
