// SPDX-License-Identifier: MIT
/*
 * The Unix-socket transport to phsm-fw.  One connection is one
 * application context on the card.
 *
 * Several threads may have requests in flight on the connection: each
 * sends its request with its own tag under the write lock, then waits for
 * its answer.  Whichever waiting thread finds nobody reading becomes the
 * reader: it reads one message, hands it to the thread whose tag it
 * carries and wakes everyone, then goes on waiting (and perhaps reading)
 * for its own.  No thread is ever created.
 *
 * When the application supplied its own mutex callbacks and forbade OS
 * locking, pthread primitives are off limits; requests then go one at a
 * time under one of the application's mutexes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib.h"
#include "transport.h"

#define HDR_LEN sizeof(struct phsm_msg_hdr)

struct sock_waiter {
	struct sock_waiter *next;
	uint32_t tag;
	bool done;
	uint8_t *resp;
	size_t len;
};

struct sock_conn {
	struct phsm_transport base;
	int fd;
	bool serial;		/* application mutexes only: one exchange at a time */
	struct lib_mutex *xlock;	/* serial mode: the exchange lock */
	pthread_mutex_t lock;	/* threaded mode: guards the fields below */
	pthread_mutex_t wlock;	/* threaded mode: one writer at a time */
	pthread_cond_t cond;	/* a message was read, or the connection failed */
	bool reading;
	uint32_t next_tag;
	struct sock_waiter *waiters;
	_Atomic CK_RV failed;	/* CKR_OK while the connection works */
};

void phsm_put_tag(uint8_t *msg, uint32_t tag)
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

static bool write_full(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		/* MSG_NOSIGNAL: a dead daemon must not kill the application. */
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

bool phsm_read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = recv(fd, p, n, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* Read one framed message.  Any failure leaves the stream unusable. */
static CK_RV read_msg(int fd, uint8_t **out, size_t *out_len)
{
	uint8_t hdr[HDR_LEN];
	uint32_t len;
	uint8_t *buf;

	if (!phsm_read_full(fd, hdr, sizeof(hdr)))
		return CKR_DEVICE_REMOVED;
	len = phsm_msg_peek_length(hdr, sizeof(hdr));
	if (!len)
		return CKR_DEVICE_ERROR;	/* cannot be framed */
	buf = malloc(len);
	if (!buf)
		return CKR_DEVICE_ERROR;	/* the stream cannot be resynchronised */
	memcpy(buf, hdr, HDR_LEN);
	if (!phsm_read_full(fd, buf + HDR_LEN, len - HDR_LEN)) {
		phsm_wipe(buf, len);	/* part of an answer is still secret */
		free(buf);
		return CKR_DEVICE_REMOVED;
	}
	*out = buf;
	*out_len = len;
	return CKR_OK;
}

/* The first failure sticks: every later call fails at once. */
static void conn_fail(struct sock_conn *c, CK_RV rv)
{
	CK_RV ok = CKR_OK;

	atomic_compare_exchange_strong(&c->failed, &ok, rv);
}

static uint32_t new_tag(struct sock_conn *c)
{
	for (;;) {
		uint32_t tag = ++c->next_tag;
		struct sock_waiter *w;

		for (w = c->waiters; w && w->tag != tag; w = w->next)
			;
		if (!w)
			return tag;
	}
}

/* Give a message that was read to the thread waiting for its tag. */
static void deliver(struct sock_conn *c, uint8_t *msg, size_t len)
{
	uint32_t tag = get_tag(msg);
	struct sock_waiter *w;

	for (w = c->waiters; w; w = w->next) {
		if (w->tag == tag && !w->done) {
			w->done = true;
			w->resp = msg;
			w->len = len;
			return;
		}
	}
	/* An answer nobody asked for: the stream cannot be trusted. */
	phsm_wipe(msg, len);
	free(msg);
	conn_fail(c, CKR_DEVICE_ERROR);
}

static void unlink_waiter(struct sock_conn *c, struct sock_waiter *me)
{
	struct sock_waiter **pp;

	for (pp = &c->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == me) {
			*pp = me->next;
			return;
		}
	}
}

/* Wait for our answer, taking turns at reading.  Called with c->lock. */
static void wait_answer(struct sock_conn *c, struct sock_waiter *me)
{
	while (!me->done && atomic_load(&c->failed) == CKR_OK) {
		uint8_t *msg = NULL;
		size_t len = 0;
		CK_RV rv;

		if (c->reading) {
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		c->reading = true;
		pthread_mutex_unlock(&c->lock);
		rv = read_msg(c->fd, &msg, &len);
		pthread_mutex_lock(&c->lock);
		c->reading = false;
		if (rv == CKR_OK)
			deliver(c, msg, len);
		else
			conn_fail(c, rv);
		pthread_cond_broadcast(&c->cond);
	}
}

static CK_RV threaded_call(struct sock_conn *c, uint8_t *req, size_t len,
			   uint8_t **resp, size_t *resp_len)
{
	struct sock_waiter me = { 0 };
	bool sent;
	CK_RV rv;

	pthread_mutex_lock(&c->lock);
	rv = atomic_load(&c->failed);
	if (rv != CKR_OK) {
		pthread_mutex_unlock(&c->lock);
		return rv;
	}
	me.tag = new_tag(c);
	me.next = c->waiters;
	c->waiters = &me;
	pthread_mutex_unlock(&c->lock);

	phsm_put_tag(req, me.tag);
	pthread_mutex_lock(&c->wlock);
	sent = write_full(c->fd, req, len);
	pthread_mutex_unlock(&c->wlock);

	pthread_mutex_lock(&c->lock);
	if (!sent) {
		/* A partial write leaves the stream unusable for everyone. */
		conn_fail(c, CKR_DEVICE_REMOVED);
		pthread_cond_broadcast(&c->cond);
	}
	wait_answer(c, &me);
	unlink_waiter(c, &me);
	rv = me.done ? CKR_OK : atomic_load(&c->failed);
	pthread_mutex_unlock(&c->lock);

	*resp = me.resp;
	*resp_len = me.len;
	return rv;
}

static CK_RV serial_call(struct sock_conn *c, uint8_t *req, size_t len,
			 uint8_t **resp, size_t *resp_len)
{
	uint32_t tag;
	CK_RV rv;

	lib_lock(c->xlock);
	rv = atomic_load(&c->failed);
	if (rv != CKR_OK)
		goto out;
	tag = ++c->next_tag;
	phsm_put_tag(req, tag);
	if (!write_full(c->fd, req, len)) {
		rv = CKR_DEVICE_REMOVED;
		conn_fail(c, rv);
		goto out;
	}
	rv = read_msg(c->fd, resp, resp_len);
	if (rv == CKR_OK && get_tag(*resp) != tag) {
		/* Nothing else is in flight: any other tag is a broken card. */
		phsm_wipe(*resp, *resp_len);
		free(*resp);
		*resp = NULL;
		rv = CKR_DEVICE_ERROR;
	}
	if (rv != CKR_OK)
		conn_fail(c, rv);
out:
	lib_unlock(c->xlock);
	return rv;
}

static CK_RV sock_call(struct phsm_transport *t, uint8_t *req, size_t len,
		       uint8_t **resp, size_t *resp_len)
{
	struct sock_conn *c = (struct sock_conn *)t;

	*resp = NULL;
	*resp_len = 0;
	if (len < HDR_LEN)
		return CKR_GENERAL_ERROR;
	if (c->serial)
		return serial_call(c, req, len, resp, resp_len);
	return threaded_call(c, req, len, resp, resp_len);
}

static bool sock_dead(struct phsm_transport *t)
{
	struct sock_conn *c = (struct sock_conn *)t;

	return atomic_load(&c->failed) != CKR_OK;
}

static void sock_close(struct phsm_transport *t)
{
	struct sock_conn *c = (struct sock_conn *)t;

	/* Closing is enough: phsm-fw drops the context with the connection. */
	if (c->fd >= 0)
		close(c->fd);
	if (c->serial) {
		lib_mutex_free(c->xlock);
	} else {
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->wlock);
		pthread_mutex_destroy(&c->lock);
	}
	free(c);
}

static void sock_abandon(struct phsm_transport *t)
{
	struct sock_conn *c = (struct sock_conn *)t;

	/*
	 * close() of our copy of the descriptor sends nothing and leaves
	 * the parent's connection open.  The memory and its locks are left
	 * alone: another parent thread may have held them at fork time.
	 */
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	atomic_store(&c->failed, CKR_DEVICE_REMOVED);
}

static const struct phsm_transport_ops sock_ops = {
	.call = sock_call,
	.dead = sock_dead,
	.close = sock_close,
	.abandon = sock_abandon,
};

int phsm_unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	/* CLOEXEC: a program the application runs must not inherit it. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static CK_RV sock_init_locks(struct sock_conn *c)
{
	if (c->serial)
		return lib_mutex_new(&c->xlock);
	if (pthread_mutex_init(&c->lock, NULL))
		return CKR_HOST_MEMORY;
	if (pthread_mutex_init(&c->wlock, NULL)) {
		pthread_mutex_destroy(&c->lock);
		return CKR_HOST_MEMORY;
	}
	if (pthread_cond_init(&c->cond, NULL)) {
		pthread_mutex_destroy(&c->wlock);
		pthread_mutex_destroy(&c->lock);
		return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

CK_RV phsm_socket_open(const char *path, struct phsm_transport **out)
{
	struct sock_conn *c = calloc(1, sizeof(*c));
	CK_RV rv;

	if (!c)
		return CKR_HOST_MEMORY;
	c->base.ops = &sock_ops;
	atomic_init(&c->base.refs, 1);
	atomic_init(&c->failed, CKR_OK);
	c->serial = !lib_os_locking();
	rv = sock_init_locks(c);
	if (rv != CKR_OK) {
		free(c);
		return rv;
	}
	c->fd = phsm_unix_connect(path);
	if (c->fd < 0) {
		sock_close(&c->base);
		return CKR_DEVICE_REMOVED;
	}
	*out = &c->base;
	return CKR_OK;
}
