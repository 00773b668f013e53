// SPDX-License-Identifier: MIT
/*
 * phsmctl's connection to one card: /dev/phsmN (PHSM_IOCTL_SUBMIT) or,
 * with --socket, a phsm-fw daemon, one request at a time.  Like the
 * library, this opens its own application context and checks every
 * answer: framing, response flag, opcode, tag and status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <phsm/pkcs11.h>

#include "phsmctl.h"

#define HDR_LEN sizeof(struct phsm_msg_hdr)

/* ---- transports ------------------------------------------------------- */

static int open_socket(struct conn *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path)) {
		err_msg("%s: socket path too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err_msg("%s: cannot connect: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static const char *open_hint(int err)
{
	switch (err) {
	case ENOENT:
		return "no such card";
	case EACCES:
		return "permission denied (is the user in group phsm?)";
	case EBUSY:
		return "the card holds as many application contexts as it can";
	default:
		return strerror(err);
	}
}

static int open_device(struct conn *c, const char *path)
{
	struct stat st;

	c->dev = true;
	c->fd = open(path, O_RDWR | O_CLOEXEC);
	if (c->fd < 0) {
		err_msg("%s: %s", path, open_hint(errno));
		return -1;
	}
	if (fstat(c->fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
	    ioctl(c->fd, PHSM_IOCTL_INFO, &c->info) < 0) {
		err_msg("%s: not a phsm card", path);
		return -1;
	}
	if (c->info.max_msg < HDR_LEN || c->info.proto_min > PHSM_PROTO_VERSION ||
	    c->info.proto_max < PHSM_PROTO_VERSION) {
		err_msg("%s: the card speaks protocol %u..%u, not %u", path,
			c->info.proto_min, c->info.proto_max, PHSM_PROTO_VERSION);
		return -1;
	}
	c->max_msg = c->info.max_msg < PHSM_MSG_MAX ? c->info.max_msg : PHSM_MSG_MAX;
	return 0;
}

static bool io_full(int fd, uint8_t *p, size_t n, bool out)
{
	while (n) {
		ssize_t k = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* One request and its answer over the socket; NULL on failure. */
static uint8_t *socket_exchange(struct conn *c, uint8_t *req, size_t len,
				size_t *resp_len)
{
	uint8_t hdr[HDR_LEN], *buf;
	uint32_t n;

	if (!io_full(c->fd, req, len, true) ||
	    !io_full(c->fd, hdr, sizeof(hdr), false)) {
		err_msg("%s: connection lost", c->name);
		return NULL;
	}
	n = phsm_msg_peek_length(hdr, sizeof(hdr));
	buf = n ? malloc(n) : NULL;
	if (!buf) {
		err_msg("%s: answer cannot be framed", c->name);
		return NULL;
	}
	memcpy(buf, hdr, HDR_LEN);
	if (!io_full(c->fd, buf + HDR_LEN, n - HDR_LEN, false)) {
		err_msg("%s: connection lost", c->name);
		free(buf);
		return NULL;
	}
	*resp_len = n;
	return buf;
}

static const char *submit_error(int err)
{
	switch (err) {
	case ENODEV:
		return "the card has been removed";
	case ESTALE:
		return "the card was reset; run again";
	case ETIMEDOUT:
		return "the card did not answer in time";
	default:
		return strerror(err);
	}
}

static uint8_t *device_exchange(struct conn *c, uint8_t *req, size_t len,
				size_t *resp_len)
{
	struct phsm_ioctl_submit s;
	uint8_t *buf = malloc(c->max_msg);
	int rc;

	if (!buf) {
		err_msg("out of memory");
		return NULL;
	}
	do {
		memset(&s, 0, sizeof(s));
		s.req_ptr = (uintptr_t)req;
		s.req_len = (uint32_t)len;
		s.resp_ptr = (uintptr_t)buf;
		s.resp_cap = c->max_msg;
		rc = ioctl(c->fd, PHSM_IOCTL_SUBMIT, &s);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		err_msg("%s: %s", c->name, submit_error(errno));
		free(buf);
		return NULL;
	}
	if (s.resp_len > c->max_msg) {
		err_msg("%s: the driver returned a bad length", c->name);
		free(buf);
		return NULL;
	}
	*resp_len = s.resp_len;
	return buf;
}

/*
 * Send a request of @opcode with an optional partition argument; on
 * success the answer's payload is in @a.  Returns 0, or -1 after a
 * message.
 */
int conn_request(struct conn *c, uint16_t opcode, const uint64_t *part,
		   struct answer *a)
{
	struct phsm_writer w = { 0 };
	struct phsm_msg m;
	size_t len = 0;
	uint8_t *resp;
	uint32_t st;

	a->buf = NULL;
	c->tag++;
	if (!phsm_msg_begin(&w, opcode, 0, 0, c->tag)) {
		err_msg("out of memory");
		return -1;
	}
	if (part)
		phsm_put_u64(&w, *part);
	if (!phsm_msg_finish(&w, 0, 0)) {
		phsm_writer_free(&w);
		err_msg("out of memory");
		return -1;
	}
	resp = c->dev ? device_exchange(c, w.data, w.len, &len) :
			socket_exchange(c, w.data, w.len, &len);
	phsm_writer_free(&w);
	if (!resp)
		return -1;
	st = phsm_msg_parse(resp, len, true, &m);
	if (st != PHSM_ST_OK || m.opcode != opcode || m.tag != c->tag) {
		err_msg("%s: malformed answer (%s)", c->name,
			st != PHSM_ST_OK ? phsm_status_name(st) : "not ours");
		free(resp);
		return -1;
	}
	if (m.status != PHSM_ST_OK || m.rv != CKR_OK) {
		err_msg("%s: the card refused: status %s, rv 0x%x", c->name,
			phsm_status_name(m.status), m.rv);
		free(resp);
		return -1;
	}
	a->buf = resp;
	a->r = m.payload;
	return 0;
}

/* A fixed-size structure as the only field of an answer. */
int conn_request_struct(struct conn *c, uint16_t opcode,
			  const uint64_t *part, void *out, size_t size)
{
	struct answer a;
	const uint8_t *p;
	size_t n;

	if (conn_request(c, opcode, part, &a))
		return -1;
	p = phsm_get_bytes(&a.r, &n);
	if (!p || n != size || !phsm_reader_done(&a.r)) {
		err_msg("%s: malformed answer to opcode 0x%04x", c->name, opcode);
		free(a.buf);
		return -1;
	}
	memcpy(out, p, size);
	free(a.buf);
	return 0;
}

/* "N" names /dev/phsmN (under o->dev_dir); anything with a '/' a path. */
static int device_path(const struct options *o, const char *card, char *out,
		       size_t n)
{
	char *end;
	unsigned long num;

	if (strchr(card, '/')) {
		snprintf(out, n, "%s", card);
		return 0;
	}
	errno = 0;
	num = strtoul(card, &end, 10);
	if (!*card || *end || errno || num > 0xfffff || card[0] == '-') {
		err_msg("%s: not a card number", card);
		return -1;
	}
	snprintf(out, n, "%s/phsm%lu", o->dev_dir, num);
	return 0;
}

int conn_open(struct conn *c, const struct options *o, const char *card)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (o->socket) {
		c->name = o->socket;
		return open_socket(c, o->socket);
	}
	if (device_path(o, card, c->path, sizeof(c->path)))
		return -1;
	c->name = c->path;
	return open_device(c, c->path);
}

void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
