/* SPDX-License-Identifier: MIT */
/*
 * Transports: how a request reaches a card and its answer comes back.
 *
 * A transport is one application context on one card.  It carries whole
 * messages and matches answers to requests by tag, so several threads may
 * have requests in flight at once; it knows nothing of what the messages
 * mean.  Implementations:
 *
 *   transport_socket.c	a Unix stream socket to phsm-fw
 *   transport_shm.c	shared-memory rings to phsm-fw (uapi/phsm_shm.h),
 *			the socket kept as the application context
 *   transport_dev.c	/dev/phsmN through the ioctls of uapi/phsm_ioctl.h
 */
#ifndef PHSM_LIB_TRANSPORT_H
#define PHSM_LIB_TRANSPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <phsm/pkcs11.h>

#include "lib.h"		/* struct phsm_lease */

struct phsm_transport;

struct phsm_transport_ops {
	/*
	 * Send the request (a complete message; the transport writes its
	 * own tag into the header) and wait for the answer with that tag,
	 * returned in a malloc'ed buffer and framed (its header's length
	 * matches), but otherwise unchecked.  CKR_OK, CKR_HOST_MEMORY,
	 * CKR_DEVICE_REMOVED when the card went away (now or earlier) or
	 * CKR_DEVICE_ERROR when it sent something that cannot be framed.
	 */
	CK_RV (*call)(struct phsm_transport *t, uint8_t *req, size_t len,
		      uint8_t **resp, size_t *resp_len);
	/*
	 * Optional (NULL: never lends).  Lend a buffer for the request;
	 * false when none can be lent at once (never waits: the call may
	 * start another while it holds one), and the call uses ->call.
	 */
	bool (*lease)(struct phsm_transport *t, struct phsm_lease *l);
	/*
	 * Send the @len-byte request built in the lease (the transport
	 * writes the tag, also into *tag) and wait for its answer, left in
	 * the lease: *resp_len is checked to lie inside it, nothing else.
	 * The card may still write there, so each byte of it must be read
	 * once, into memory of our own, before it is relied upon.  Errors
	 * as ->call.
	 */
	CK_RV (*call_leased)(struct phsm_transport *t, struct phsm_lease *l,
			     size_t len, uint32_t *tag, const uint8_t **resp,
			     size_t *resp_len);
	/* Give the lease back, wiped of @written bytes and of the answer. */
	void (*unlease)(struct phsm_transport *t, struct phsm_lease *l,
			size_t written);
	/* True once the transport has failed for good. */
	bool (*dead)(struct phsm_transport *t);
	/* Orderly end: the card drops this application context. */
	void (*close)(struct phsm_transport *t);
	/*
	 * In a forked child: let go of the connection without sending
	 * anything and without touching locks another thread of the parent
	 * may have held.  The parent's connection stays intact.
	 */
	void (*abandon)(struct phsm_transport *t);
};

struct phsm_transport {
	const struct phsm_transport_ops *ops;
	atomic_uint refs;	/* owners: the card, and each call in flight */
};

/* transport_socket.c's helpers for the socket, shared with transport_shm.c */
int phsm_unix_connect(const char *path);	/* a CLOEXEC stream fd, or -1 */
bool phsm_read_full(int fd, uint8_t *p, size_t n);
void phsm_put_tag(uint8_t *msg, uint32_t tag);	/* into a message header */

/* Connect to phsm-fw's socket at @path. */
CK_RV phsm_socket_open(const char *path, struct phsm_transport **out);
/*
 * Connect to phsm-fw's socket at @path and attach a shared-memory channel;
 * CKR_FUNCTION_NOT_SUPPORTED when the daemon does not offer them (use
 * phsm_socket_open then), CKR_DEVICE_REMOVED when nobody answers.
 */
CK_RV phsm_shm_open(const char *path, struct phsm_transport **out);
/* Open the phsm driver's character device at @path (a new context). */
CK_RV phsm_dev_open(const char *path, struct phsm_transport **out);

static inline void phsm_transport_get(struct phsm_transport *t)
{
	atomic_fetch_add(&t->refs, 1);
}

static inline void phsm_transport_put(struct phsm_transport *t)
{
	if (atomic_fetch_sub(&t->refs, 1) == 1)
		t->ops->close(t);
}

#endif /* PHSM_LIB_TRANSPORT_H */
