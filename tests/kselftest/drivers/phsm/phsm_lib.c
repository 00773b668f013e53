// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Helpers shared by the phsm selftests; see phsm_lib.h.
 */
#include "phsm_lib.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <time.h>
#include <unistd.h>

#define SYSFS_CLASS	"/sys/class/phsm"
#define PARAM_TIMEOUT	"/sys/module/phsm/parameters/timeout_ms"

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

const char *phsm_dev0(void)
{
	return env_or("PHSM_DEV0", "/dev/phsm0");
}

const char *phsm_dev1(void)
{
	return env_or("PHSM_DEV1", "/dev/phsm1");
}

const char *phsm_card1(void)
{
	return env_or("PHSM_CARD1", "card1");
}

int phsm_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static struct tmsg finish(struct phsm_writer *w)
{
	struct tmsg m = { NULL, 0 };

	if (phsm_msg_finish(w, 0, 0)) {
		m.p = w->data;
		m.len = (uint32_t)w->len;
	} else {
		phsm_writer_free(w);
	}
	return m;
}

struct tmsg msg_plain(uint16_t opcode, uint32_t tag)
{
	struct phsm_writer w = { 0 };

	phsm_msg_begin(&w, opcode, 0, 0, tag);
	return finish(&w);
}

struct tmsg msg_token_info(uint32_t tag, uint64_t part)
{
	struct phsm_writer w = { 0 };

	phsm_msg_begin(&w, PHSM_OP_GET_TOKEN_INFO, 0, 0, tag);
	phsm_put_u64(&w, part);
	return finish(&w);
}

struct tmsg msg_open_session(uint32_t tag, uint64_t part, uint64_t flags)
{
	struct phsm_writer w = { 0 };

	phsm_msg_begin(&w, PHSM_OP_OPEN_SESSION, 0, 0, tag);
	phsm_put_u64(&w, part);
	phsm_put_u64(&w, flags);
	return finish(&w);
}

struct tmsg msg_init_token(uint32_t tag, uint64_t part, const char *so_pin,
			   const char *label)
{
	struct phsm_writer w = { 0 };
	char padded[PHSM_LABEL_LEN];
	size_t n = strlen(label);

	memset(padded, ' ', sizeof(padded));
	memcpy(padded, label, n < sizeof(padded) ? n : sizeof(padded));
	phsm_msg_begin(&w, PHSM_OP_INIT_TOKEN, 0, 0, tag);
	phsm_put_u64(&w, part);
	phsm_put_bytes(&w, so_pin, strlen(so_pin));
	phsm_put_bytes(&w, padded, sizeof(padded));
	return finish(&w);
}

struct tmsg msg_session_info(uint32_t tag, uint64_t session)
{
	struct phsm_writer w = { 0 };

	phsm_msg_begin(&w, PHSM_OP_GET_SESSION_INFO, 0, 0, tag);
	phsm_put_u64(&w, session);
	return finish(&w);
}

void tmsg_free(struct tmsg *m)
{
	free(m->p);
	m->p = NULL;
	m->len = 0;
}

int phsm_submit(int fd, const void *req, uint32_t req_len, void *resp,
		uint32_t resp_cap, uint32_t timeout_ms, uint32_t *resp_len)
{
	struct phsm_ioctl_submit s = {
		.req_ptr = (uintptr_t)req,
		.resp_ptr = (uintptr_t)resp,
		.req_len = req_len,
		.resp_cap = resp_cap,
		.timeout_ms = timeout_ms,
	};
	int ret = ioctl(fd, PHSM_IOCTL_SUBMIT, &s) ? -errno : 0;

	if (resp_len)
		*resp_len = s.resp_len;
	return ret;
}

int phsm_submit_async(int fd, const void *req, uint32_t req_len, void *resp,
		      uint32_t resp_cap, uint64_t user_data, uint32_t timeout_ms,
		      uint64_t *id)
{
	struct phsm_ioctl_submit_async a = {
		.req_ptr = (uintptr_t)req,
		.resp_ptr = (uintptr_t)resp,
		.user_data = user_data,
		.req_len = req_len,
		.resp_cap = resp_cap,
		.timeout_ms = timeout_ms,
	};
	int ret = ioctl(fd, PHSM_IOCTL_SUBMIT_ASYNC, &a) ? -errno : 0;

	if (id)
		*id = a.id;
	return ret;
}

int phsm_info(int fd, struct phsm_ioctl_info *info)
{
	return ioctl(fd, PHSM_IOCTL_INFO, info) ? -errno : 0;
}

uint32_t phsm_check_resp(const void *resp, uint32_t len, uint16_t opcode,
			 uint32_t tag, struct phsm_msg *m)
{
	uint32_t st = phsm_msg_parse(resp, len, true, m);

	if (st != PHSM_ST_OK)
		return st;
	if (!(m->flags & PHSM_MSG_F_RESPONSE) || m->opcode != opcode ||
	    m->tag != tag)
		return PHSM_ST_BAD_HEADER;
	return m->status;
}

static uint32_t max_msg_of(int fd)
{
	struct phsm_ioctl_info info;

	if (phsm_info(fd, &info) || info.max_msg < PHSM_HDR_LEN)
		return 1u << 16;
	return info.max_msg;
}

int phsm_call(int fd, const struct tmsg *req, uint32_t timeout_ms,
	      uint8_t **resp, struct phsm_msg *m)
{
	struct phsm_msg_hdr h;
	uint32_t cap = max_msg_of(fd), len = 0, tag;
	uint16_t opcode;
	uint8_t *buf;
	int ret;

	*resp = NULL;
	if (!req->p)
		return -ENOMEM;
	memcpy(&h, req->p, sizeof(h));
	opcode = le16toh(h.opcode);
	tag = le32toh(h.tag);
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	ret = phsm_submit(fd, req->p, req->len, buf, cap, timeout_ms, &len);
	if (ret) {
		free(buf);
		return ret;
	}
	if (len > cap || phsm_check_resp(buf, len, opcode, tag, m) != PHSM_ST_OK) {
		free(buf);
		return -EPROTO;
	}
	*resp = buf;
	return 0;
}

int phsm_nop(int fd, uint32_t tag, uint32_t timeout_ms)
{
	struct tmsg req = msg_plain(PHSM_OP_NOP, tag);
	struct phsm_msg m;
	uint8_t *resp;
	int ret;

	ret = phsm_call(fd, &req, timeout_ms, &resp, &m);
	tmsg_free(&req);
	if (ret)
		return ret;
	if (m.rv != T_CKR_OK || m.payload.left != 0)
		ret = -EPROTO;
	free(resp);
	return ret;
}

int phsm_token_info(int fd, uint64_t part, struct phsm_token_info *ti)
{
	struct tmsg req = msg_token_info(0x70c0, part);
	struct phsm_msg m;
	const uint8_t *p;
	uint8_t *resp;
	size_t n = 0;
	int ret;

	ret = phsm_call(fd, &req, 0, &resp, &m);
	tmsg_free(&req);
	if (ret)
		return ret;
	if (m.rv != T_CKR_OK) {
		free(resp);
		return -EBADMSG;
	}
	p = phsm_get_bytes(&m.payload, &n);
	if (!phsm_reader_done(&m.payload) || n != sizeof(*ti))
		ret = -EPROTO;
	else
		memcpy(ti, p, sizeof(*ti));
	free(resp);
	return ret;
}

int phsm_init_token(int fd, uint64_t part, const char *so_pin,
		    const char *label)
{
	struct tmsg req = msg_init_token(0x1717, part, so_pin, label);
	struct phsm_msg m;
	uint8_t *resp;
	int ret;

	ret = phsm_call(fd, &req, 60000, &resp, &m);
	tmsg_free(&req);
	if (ret)
		return ret;
	ret = (int)m.rv;	/* 0, or the CK_RV: positive */
	free(resp);
	return ret;
}

int phsm_open_session(int fd, uint64_t part, uint64_t *session)
{
	struct tmsg req = msg_open_session(0x2020, part, T_CKF_SERIAL_SESSION);
	struct phsm_msg m;
	uint8_t *resp;
	int ret;

	ret = phsm_call(fd, &req, 0, &resp, &m);
	tmsg_free(&req);
	if (ret)
		return ret;
	if (m.rv != T_CKR_OK)
		ret = (int)m.rv;
	else
		*session = phsm_get_u64(&m.payload);
	if (!ret && !phsm_reader_done(&m.payload))
		ret = -EPROTO;
	free(resp);
	return ret;
}

uint64_t phsm_session_rv(int fd, uint64_t session)
{
	struct tmsg req = msg_session_info(0x3030, session);
	struct phsm_msg m;
	uint8_t *resp;
	uint64_t rv;

	if (phsm_call(fd, &req, 0, &resp, &m)) {
		tmsg_free(&req);
		return ~0ULL;
	}
	tmsg_free(&req);
	rv = m.rv;
	free(resp);
	return rv;
}

const char *phsm_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

int phsm_attr(const char *name, const char *attr, char *buf, size_t size)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), SYSFS_CLASS "/%s/%s", name, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	return 0;
}

long long phsm_attr_num(const char *name, const char *attr)
{
	char buf[64], *end;
	long long v;

	if (phsm_attr(name, attr, buf, sizeof(buf)))
		return -1;
	errno = 0;
	v = strtoll(buf, &end, 0);
	if (errno || end == buf || *end || v < 0)
		return -1;
	return v;
}

int phsm_pci_addr(const char *name, char *buf, size_t size)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), SYSFS_CLASS "/%s/device", name);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	snprintf(buf, size, "%s", phsm_name(target));
	return 0;
}

int phsm_name_of_pci(const char *addr, char *name, size_t size)
{
	char pci[64];
	struct dirent *d;
	DIR *dir = opendir(SYSFS_CLASS);
	int ret = -ENOENT;

	if (!dir)
		return -ENOENT;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		if (phsm_pci_addr(d->d_name, pci, sizeof(pci)) == 0 &&
		    strcmp(pci, addr) == 0) {
			snprintf(name, size, "%s", d->d_name);
			ret = 0;
			break;
		}
	}
	closedir(dir);
	return ret;
}

long long phsm_param_timeout(void)
{
	char buf[32];
	ssize_t n;
	int fd = open(PARAM_TIMEOUT, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtoll(buf, NULL, 10);
}

int phsm_set_param_timeout(long long ms)
{
	char buf[32];
	int fd = open(PARAM_TIMEOUT, O_WRONLY | O_CLOEXEC);
	int len, ret = 0;

	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%lld\n", ms);
	if (write(fd, buf, len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

bool phsm_host_available(void)
{
	return getenv("PHSM_VM_HOST") != NULL;
}

void phsm_host(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* Its own line, in one write, past any buffering of stdout. */
	fflush(stdout);
	if (dprintf(STDOUT_FILENO, "\nPHSM-VM: host %.*s", n, line) < 0)
		perror("phsm_host");
}

uint64_t phsm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void phsm_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * How the kernel reports its own bugs.  "WARNING:" alone is not one: boot
 * messages about CPU vulnerabilities use the word.
 */
static const char *const bug_marks[] = {
	"BUG:", "WARNING: CPU:", "------------[ cut here ]", "Oops:",
	"general protection fault", "Call Trace:", "Kernel panic",
	"kernel BUG at", "UBSAN:", "KASAN:", "refcount_t:",
	"list_add corruption", "list_del corruption", "INFO: task",
	"rcu: INFO:", "self-detected stall",
};

char *phsm_kernel_bugs(int *err)
{
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *log, *line, *save = NULL, *out = NULL;
	size_t out_len = 0;
	int n;

	*err = 0;
	if (size <= 0) {
		*err = size < 0 ? -errno : -EIO;
		return NULL;
	}
	log = malloc((size_t)size + 1);
	if (!log) {
		*err = -ENOMEM;
		return NULL;
	}
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, size);
	if (n < 0) {
		*err = -errno;
		free(log);
		return NULL;
	}
	log[n] = 0;
	for (line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t i, len = strlen(line);
		char *grown;

		for (i = 0; i < sizeof(bug_marks) / sizeof(bug_marks[0]); i++)
			if (strstr(line, bug_marks[i]))
				break;
		if (i == sizeof(bug_marks) / sizeof(bug_marks[0]))
			continue;
		grown = realloc(out, out_len + len + 2);
		if (!grown)
			break;
		out = grown;
		memcpy(out + out_len, line, len);
		out_len += len;
		out[out_len++] = '\n';
		out[out_len] = 0;
	}
	free(log);
	return out;
}
