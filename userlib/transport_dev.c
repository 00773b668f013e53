// SPDX-License-Identifier: MIT
/*
 * The character-device transport: /dev/phsmN of the phsm driver
 * (uapi/phsm_ioctl.h, Documentation/phsm/ioctl.rst).  One open file is
 * one application context on the card; the driver closes the context
 * when the file's last descriptor goes.
 *
 * Every request is one synchronous PHSM_IOCTL_SUBMIT.  The driver lets
 * several threads submit on one file at once and hands each its own
 * answer, so the library's threads each wait in their own ioctl and this
 * transport needs no lock and no pthread primitive: it behaves the same
 * whether or not the application allows OS locking.  (The asynchronous
 * interface serves one thread with many commands in flight; the library
 * has one command per calling thread.)
 *
 * The response buffer is as large as the driver's max_msg, so EMSGSIZE
 * never happens: it would mean that the card executed the request and its
 * answer was lost.
 *
 * Errors of the driver, as the library reports them:
 *   ENODEV	CKR_DEVICE_REMOVED, for good: the card is gone
 *   ESTALE	CKR_DEVICE_ERROR, for good: a controller reset dropped the
 *		context with its sessions; a new transport is a new context
 *   ETIMEDOUT, EIO, EMSGSIZE
 *		CKR_DEVICE_ERROR for this request; the next may work
 *   ENOMEM	CKR_HOST_MEMORY
 *   E2BIG	CKR_DEVICE_MEMORY (checked before the call: the request is
 *		larger than the card's max_msg)
 *   anything else (EINVAL, EFAULT, ENOTTY, EBADF): CKR_DEVICE_ERROR, for
 *		good, since the file is not a phsm device we can talk to
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../uapi/phsm_ioctl.h"
#include "lib.h"
#include "transport.h"

#define HDR_LEN sizeof(struct phsm_msg_hdr)
/* The device interface promises at least this much (device.rst). */
#define DEV_MIN_MSG 4096u

struct dev_conn {
	struct phsm_transport base;
	int fd;
	uint32_t max_msg;		/* of requests and responses */
	atomic_uint next_tag;
	_Atomic CK_RV failed;		/* CKR_OK while the context lives */
};

static void put_tag(uint8_t *msg, uint32_t tag)
{
	uint8_t *p = msg + offsetof(struct phsm_msg_hdr, tag);

	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(tag >> (8 * i));
}

static uint32_t get_tag(const uint8_t *msg)
{
	const uint8_t *p = msg + offsetof(struct phsm_msg_hdr, tag);

	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The first lasting failure sticks: every later call fails at once. */
static void conn_fail(struct dev_conn *c, CK_RV rv)
{
	CK_RV ok = CKR_OK;

	atomic_compare_exchange_strong(&c->failed, &ok, rv);
}

/* One PHSM_IOCTL_SUBMIT; 0 or an errno. */
static int dev_submit(int fd, const uint8_t *req, size_t len, uint8_t *resp,
		      uint32_t cap, uint32_t *resp_len)
{
	struct phsm_ioctl_submit s;

	for (;;) {
		memset(&s, 0, sizeof(s));
		s.req_ptr = (uintptr_t)req;
		s.req_len = (uint32_t)len;
		s.resp_ptr = (uintptr_t)resp;
		s.resp_cap = cap;
		s.timeout_ms = 0;	/* the driver's timeout_ms parameter */
		if (ioctl(fd, PHSM_IOCTL_SUBMIT, &s) == 0)
			break;
		/* EINTR comes only before the request was sent. */
		if (errno != EINTR)
			return errno;
	}
	*resp_len = s.resp_len;
	return 0;
}

static CK_RV errno_rv(struct dev_conn *c, int err)
{
	switch (err) {
	case ENODEV:
		conn_fail(c, CKR_DEVICE_REMOVED);
		return CKR_DEVICE_REMOVED;
	case ETIMEDOUT:
	case EIO:
	case EMSGSIZE:
		return CKR_DEVICE_ERROR;
	case ENOMEM:
		return CKR_HOST_MEMORY;
	case E2BIG:
		return CKR_DEVICE_MEMORY;
	default:	/* ESTALE, and what a phsm file never says */
		conn_fail(c, CKR_DEVICE_ERROR);
		return CKR_DEVICE_ERROR;
	}
}

/* The driver's answer must be one whole message with our tag. */
static bool answer_ok(const uint8_t *resp, uint32_t len, uint32_t cap,
		      uint32_t tag)
{
	return len >= HDR_LEN && len <= cap &&
	       phsm_msg_peek_length(resp, len) == len && get_tag(resp) == tag;
}

static CK_RV dev_call(struct phsm_transport *t, uint8_t *req, size_t len,
		      uint8_t **resp, size_t *resp_len)
{
	struct dev_conn *c = (struct dev_conn *)t;
	uint32_t tag, n = 0;
	uint8_t *buf, *small;
	CK_RV rv;
	int err;

	*resp = NULL;
	*resp_len = 0;
	if (len < HDR_LEN)
		return CKR_GENERAL_ERROR;
	rv = atomic_load(&c->failed);
	if (rv != CKR_OK)
		return rv;
	if (len > c->max_msg)
		return CKR_DEVICE_MEMORY;
	buf = malloc(c->max_msg);
	if (!buf)
		return CKR_HOST_MEMORY;
	tag = atomic_fetch_add(&c->next_tag, 1) + 1;
	put_tag(req, tag);
	err = dev_submit(c->fd, req, len, buf, c->max_msg, &n);
	if (err) {
		free(buf);
		return errno_rv(c, err);
	}
	if (!answer_ok(buf, n, c->max_msg, tag)) {
		phsm_wipe(buf, n < c->max_msg ? n : c->max_msg);
		free(buf);
		return CKR_DEVICE_ERROR;
	}
	/* Give back what the buffer of max_msg bytes does not need. */
	small = realloc(buf, n);
	*resp = small ? small : buf;
	*resp_len = n;
	return CKR_OK;
}

static bool dev_dead(struct phsm_transport *t)
{
	struct dev_conn *c = (struct dev_conn *)t;

	return atomic_load(&c->failed) != CKR_OK;
}

static void dev_close(struct phsm_transport *t)
{
	struct dev_conn *c = (struct dev_conn *)t;

	/* The last close of the file makes the driver drop the context. */
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static void dev_abandon(struct phsm_transport *t)
{
	struct dev_conn *c = (struct dev_conn *)t;

	/*
	 * The child's descriptor shares the parent's open file: closing it
	 * is not the file's last close, so the parent's context lives on.
	 */
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	atomic_store(&c->failed, CKR_DEVICE_REMOVED);
}

static const struct phsm_transport_ops dev_ops = {
	.call = dev_call,
	.dead = dev_dead,
	.close = dev_close,
	.abandon = dev_abandon,
};

/* What the library needs of the driver and the card behind it. */
static bool info_usable(const struct phsm_ioctl_info *info)
{
	return info->abi_version >= 1 &&
	       info->proto_min <= PHSM_PROTO_VERSION &&
	       info->proto_max >= PHSM_PROTO_VERSION &&
	       info->max_msg >= DEV_MIN_MSG;
}

static CK_RV open_rv(int err)
{
	switch (err) {
	case ENOMEM:
		return CKR_HOST_MEMORY;
	case EBUSY:	/* the card holds as many contexts as it can */
	case EIO:
		return CKR_DEVICE_ERROR;
	default:	/* ENOENT, ENODEV, ENXIO, EACCES: no card for us */
		return CKR_DEVICE_REMOVED;
	}
}

CK_RV phsm_dev_open(const char *path, struct phsm_transport **out)
{
	struct phsm_ioctl_info info;
	struct dev_conn *c;
	struct stat st;
	int fd;

	do {
		fd = open(path, O_RDWR | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return open_rv(errno);
	memset(&info, 0, sizeof(info));
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
	    ioctl(fd, PHSM_IOCTL_INFO, &info) < 0 || !info_usable(&info)) {
		close(fd);
		return CKR_DEVICE_ERROR;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return CKR_HOST_MEMORY;
	}
	c->base.ops = &dev_ops;
	atomic_init(&c->base.refs, 1);
	atomic_init(&c->failed, CKR_OK);
	atomic_init(&c->next_tag, 0);
	c->fd = fd;
	/* No protocol message is larger than PHSM_MSG_MAX. */
	c->max_msg = info.max_msg < PHSM_MSG_MAX ? info.max_msg : PHSM_MSG_MAX;
	*out = &c->base;
	return CKR_OK;
}
