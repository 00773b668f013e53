// SPDX-License-Identifier: MIT
/*
 * phsmctl show: one card and its partitions, as the card itself reports
 * them (GET_CARD_INFO, then GET_TOKEN_INFO and CA_GET_POLICIES for each
 * partition).  The
 * requests go through /dev/phsmN (PHSM_IOCTL_SUBMIT) or, with --socket,
 * straight to a phsm-fw daemon, one at a time.  Like the library, this
 * opens its own application context and checks every answer: framing,
 * response flag, opcode, tag, status and each field.
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

#include "../../uapi/codec/phsm_codec.h"
#include "../../uapi/phsm_ioctl.h"
#include "phsmctl.h"

#define HDR_LEN sizeof(struct phsm_msg_hdr)
#define MAX_PARTS 16
#define MAX_POLICIES 16

/* A partition's policies (CA_SetContainerPolicy): numbers and values. */
struct policies {
	size_t n;
	uint64_t type[MAX_POLICIES];
	uint64_t value[MAX_POLICIES];
};

struct conn {
	int fd;
	bool dev;
	const char *name;	/* for messages */
	uint32_t max_msg;	/* device: from PHSM_IOCTL_INFO */
	uint32_t tag;
	struct phsm_ioctl_info info;
};

/* What one answer gave: the buffer and a reader over its payload. */
struct answer {
	uint8_t *buf;
	struct phsm_reader r;
};

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
static int request(struct conn *c, uint16_t opcode, const uint64_t *part,
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
static int request_struct(struct conn *c, uint16_t opcode,
			  const uint64_t *part, void *out, size_t size)
{
	struct answer a;
	const uint8_t *p;
	size_t n;

	if (request(c, opcode, part, &a))
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

static int request_policies(struct conn *c, uint64_t part, struct policies *pol)
{
	struct answer a;
	const uint8_t *t, *v;
	size_t nt, nv;

	if (request(c, PHSM_OP_CA_GET_POLICIES, &part, &a))
		return -1;
	t = phsm_get_u64_array(&a.r, &nt);
	v = phsm_get_u64_array(&a.r, &nv);
	if (!t || !v || nt != nv || nt > MAX_POLICIES ||
	    !phsm_reader_done(&a.r)) {
		err_msg("%s: malformed answer to opcode 0x%04x", c->name,
			PHSM_OP_CA_GET_POLICIES);
		free(a.buf);
		return -1;
	}
	pol->n = nt;
	for (size_t i = 0; i < nt; i++) {
		pol->type[i] = phsm_array_u64(t, i);
		pol->value[i] = phsm_array_u64(v, i);
	}
	free(a.buf);
	return 0;
}

/* ---- output ----------------------------------------------------------- */

/* Names of the policies phsm knows (Documentation/phsm/luna.rst). */
static const char *policy_name(uint64_t type)
{
	switch (type) {
	case 44:
		return "extended-domain-management";
	case 0x1003:
		return "cpv3-disabled";
	case 0x1004:
		return "cpv4-disabled";
	default:
		return "unknown";
	}
}

static const struct {
	CK_FLAGS flag;
	const char *name;
} token_flags[] = {
	{ CKF_TOKEN_INITIALIZED, "TOKEN_INITIALIZED" },
	{ CKF_USER_PIN_INITIALIZED, "USER_PIN_INITIALIZED" },
	{ CKF_LOGIN_REQUIRED, "LOGIN_REQUIRED" },
	{ CKF_RNG, "RNG" },
	{ CKF_WRITE_PROTECTED, "WRITE_PROTECTED" },
	{ CKF_CLOCK_ON_TOKEN, "CLOCK_ON_TOKEN" },
	{ CKF_RESTORE_KEY_NOT_NEEDED, "RESTORE_KEY_NOT_NEEDED" },
	{ CKF_PROTECTED_AUTHENTICATION_PATH, "PROTECTED_AUTHENTICATION_PATH" },
	{ CKF_DUAL_CRYPTO_OPERATIONS, "DUAL_CRYPTO_OPERATIONS" },
	{ CKF_SECONDARY_AUTHENTICATION, "SECONDARY_AUTHENTICATION" },
	{ CKF_USER_PIN_COUNT_LOW, "USER_PIN_COUNT_LOW" },
	{ CKF_USER_PIN_FINAL_TRY, "USER_PIN_FINAL_TRY" },
	{ CKF_USER_PIN_LOCKED, "USER_PIN_LOCKED" },
	{ CKF_USER_PIN_TO_BE_CHANGED, "USER_PIN_TO_BE_CHANGED" },
	{ CKF_SO_PIN_COUNT_LOW, "SO_PIN_COUNT_LOW" },
	{ CKF_SO_PIN_FINAL_TRY, "SO_PIN_FINAL_TRY" },
	{ CKF_SO_PIN_LOCKED, "SO_PIN_LOCKED" },
	{ CKF_SO_PIN_TO_BE_CHANGED, "SO_PIN_TO_BE_CHANGED" },
	{ CKF_ERROR_STATE, "ERROR_STATE" },
};
#define NFLAGS (sizeof(token_flags) / sizeof(token_flags[0]))

static uint64_t le64(const __le64 *v)
{
	const uint8_t *p = (const uint8_t *)v;
	uint64_t x = 0;

	for (int i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	return x;
}

static uint32_t le32(const __le32 *v)
{
	const uint8_t *p = (const uint8_t *)v;

	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A count of the token info; a maximum of 0 is CK_EFFECTIVELY_INFINITE. */
static void plain_count(uint64_t v, bool max)
{
	if (v == (uint64_t)CK_UNAVAILABLE_INFORMATION)
		printf("unavailable");
	else if (max && v == (uint64_t)CK_EFFECTIVELY_INFINITE)
		printf("unlimited");
	else
		printf("%llu", (unsigned long long)v);
}

static void plain_field(const char *name, const uint8_t *s, size_t n)
{
	printf("  %-14s %.*s\n", name, (int)field_len(s, n), (const char *)s);
}

static void print_plain(const struct conn *c, const struct phsm_card_info *ci,
			const struct phsm_token_info *ti,
			const struct policies *pol, unsigned int nparts)
{
	printf("card %s\n", c->name);
	plain_field("manufacturer", ci->manufacturer, sizeof(ci->manufacturer));
	plain_field("model", ci->model, sizeof(ci->model));
	plain_field("serial", ci->serial, sizeof(ci->serial));
	printf("  %-14s %u.%u\n", "hardware", ci->hw_major, ci->hw_minor);
	printf("  %-14s %u.%u\n", "firmware", ci->fw_major, ci->fw_minor);
	printf("  %-14s %u\n", "partitions", nparts);
	if (c->dev) {
		printf("  %-14s %u (features 0x%x)\n", "driver ABI",
		       c->info.abi_version, c->info.features);
		printf("  %-14s %u\n", "queue depth", c->info.queue_depth);
		printf("  %-14s %u bytes\n", "max message", c->info.max_msg);
		printf("  %-14s %u\n", "max contexts", c->info.max_contexts);
	}
	for (unsigned int p = 0; p < nparts; p++) {
		const struct phsm_token_info *t = &ti[p];
		uint64_t flags = le64(&t->flags);

		printf("partition %u\n", p);
		if (flags & CKF_TOKEN_INITIALIZED)
			plain_field("label", t->label, sizeof(t->label));
		else
			printf("  %-14s -\n", "label");
		printf("  %-14s %s\n", "initialised",
		       flags & CKF_TOKEN_INITIALIZED ? "yes" : "no");
		printf("  %-14s", "flags");
		for (size_t i = 0; i < NFLAGS; i++)
			if (flags & token_flags[i].flag)
				printf(" %s", token_flags[i].name);
		printf("\n  %-14s ", "sessions");
		plain_count(le64(&t->session_count), false);
		printf(" of ");
		plain_count(le64(&t->max_session_count), true);
		printf(", read/write ");
		plain_count(le64(&t->rw_session_count), false);
		printf("\n  %-14s", "policies");
		for (size_t i = 0; i < pol[p].n; i++)
			printf(" %llu(%s)=%llu",
			       (unsigned long long)pol[p].type[i],
			       policy_name(pol[p].type[i]),
			       (unsigned long long)pol[p].value[i]);
		printf("\n");
	}
}

static void json_count(struct json *j, const char *key, uint64_t v)
{
	if (v == (uint64_t)CK_UNAVAILABLE_INFORMATION)
		json_null(j, key);
	else
		json_uint(j, key, v);
}

static void print_json(const struct conn *c, const struct phsm_card_info *ci,
		       const struct phsm_token_info *ti,
		       const struct policies *pol, unsigned int nparts)
{
	struct json j;

	json_init(&j, stdout);
	json_begin(&j, NULL, '{');
	json_str(&j, c->dev ? "device" : "socket", c->name);
	json_field(&j, "manufacturer", ci->manufacturer, sizeof(ci->manufacturer));
	json_field(&j, "model", ci->model, sizeof(ci->model));
	json_field(&j, "serial", ci->serial, sizeof(ci->serial));
	json_uint(&j, "hw_major", ci->hw_major);
	json_uint(&j, "hw_minor", ci->hw_minor);
	json_uint(&j, "fw_major", ci->fw_major);
	json_uint(&j, "fw_minor", ci->fw_minor);
	if (c->dev) {
		json_begin(&j, "driver", '{');
		json_uint(&j, "abi_version", c->info.abi_version);
		json_uint(&j, "features", c->info.features);
		json_uint(&j, "queue_depth", c->info.queue_depth);
		json_uint(&j, "max_msg", c->info.max_msg);
		json_uint(&j, "max_async", c->info.max_async);
		json_uint(&j, "max_contexts", c->info.max_contexts);
		json_end(&j, '}');
	}
	json_begin(&j, "partitions", '[');
	for (unsigned int p = 0; p < nparts; p++) {
		const struct phsm_token_info *t = &ti[p];
		uint64_t flags = le64(&t->flags);

		json_begin(&j, NULL, '{');
		json_uint(&j, "index", p);
		if (flags & CKF_TOKEN_INITIALIZED)
			json_field(&j, "label", t->label, sizeof(t->label));
		else
			json_null(&j, "label");
		json_bool(&j, "initialized", flags & CKF_TOKEN_INITIALIZED);
		json_uint(&j, "flags", flags);
		json_begin(&j, "flag_names", '[');
		for (size_t i = 0; i < NFLAGS; i++)
			if (flags & token_flags[i].flag)
				json_str(&j, NULL, token_flags[i].name);
		json_end(&j, ']');
		json_count(&j, "sessions", le64(&t->session_count));
		json_count(&j, "rw_sessions", le64(&t->rw_session_count));
		json_count(&j, "max_sessions", le64(&t->max_session_count));
		json_begin(&j, "policies", '[');
		for (size_t i = 0; i < pol[p].n; i++) {
			json_begin(&j, NULL, '{');
			json_uint(&j, "number", pol[p].type[i]);
			json_str(&j, "name", policy_name(pol[p].type[i]));
			json_uint(&j, "value", pol[p].value[i]);
			json_end(&j, '}');
		}
		json_end(&j, ']');
		json_end(&j, '}');
	}
	json_end(&j, ']');
	json_end(&j, '}');
	json_finish(&j);
}

/* ---- the command ------------------------------------------------------ */

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

int cmd_show(const struct options *o, const char *card)
{
	struct conn c = { .fd = -1 };
	struct phsm_card_info ci;
	struct phsm_token_info ti[MAX_PARTS];
	struct policies pol[MAX_PARTS];
	char path[4096];
	unsigned int nparts;
	int rc = EXIT_FAIL;

	if (o->socket) {
		c.name = o->socket;
		if (open_socket(&c, o->socket))
			goto out;
	} else {
		if (device_path(o, card, path, sizeof(path)))
			goto out;
		c.name = path;
		if (open_device(&c, path))
			goto out;
	}
	if (request_struct(&c, PHSM_OP_GET_CARD_INFO, NULL, &ci, sizeof(ci)))
		goto out;
	nparts = le32(&ci.partitions);
	if (nparts > MAX_PARTS) {
		err_msg("%s: the card claims %u partitions", c.name, nparts);
		goto out;
	}
	for (unsigned int p = 0; p < nparts; p++) {
		uint64_t part = p;

		if (request_struct(&c, PHSM_OP_GET_TOKEN_INFO, &part, &ti[p],
				   sizeof(ti[p])) ||
		    request_policies(&c, part, &pol[p]))
			goto out;
	}
	if (o->json)
		print_json(&c, &ci, ti, pol, nparts);
	else
		print_plain(&c, &ci, ti, pol, nparts);
	rc = EXIT_OK;
out:
	if (c.fd >= 0)
		close(c.fd);
	return rc;
}
