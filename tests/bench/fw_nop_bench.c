// SPDX-License-Identifier: MIT
/*
 * The firmware's share of the device path (issue 5, `make vm-bench`):
 * PHSM_OP_NOP round trips to `phsm-fw --bridge SOCK` straight from the
 * host, speaking the bridge protocol as the QEMU device does (one
 * application context opened with PHSM_OP_APP_OPEN, then NOPs in it), at
 * depth 1 (one request at a time) and depth D (D requests pipelined).
 * Compared with the guest's numbers (tests/bench/vm_nop_bench.c) it
 * separates phsm-fw and its socket from the device model and the driver.
 *
 *   fw_nop_bench SOCK [SECONDS [DEPTH]]
 *
 * Prints "phsm-bench: fw depth=N cmds=... cmds_per_s=... us_per_cmd=..."
 * lines; exit status 0 when every answer was right.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "uapi/phsm_proto.h"
#include "uapi/codec/phsm_codec.h"

#define APP_CTX		1
#define MAX_DEPTH	1024

struct conn {
	int fd;
	uint8_t buf[1 << 16];
	size_t have;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_msg(struct conn *c, uint16_t opcode, uint32_t tag)
{
	struct phsm_writer w = { 0 };
	size_t off = 0;
	ssize_t k;
	int ret = 0;

	phsm_msg_begin(&w, opcode, 0, APP_CTX, tag);
	if (!phsm_msg_finish(&w, 0, 0)) {
		phsm_writer_free(&w);
		return -ENOMEM;
	}
	while (off < w.len) {
		k = send(c->fd, w.data + off, w.len - off, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		off += (size_t)k;
	}
	phsm_writer_free(&w);
	return ret;
}

/* The next answer: 0 with its opcode, tag and status checked by caller. */
static int recv_msg(struct conn *c, struct phsm_msg *m)
{
	uint32_t len;
	ssize_t k;

	for (;;) {
		len = c->have >= sizeof(struct phsm_msg_hdr) ?
		      phsm_msg_peek_length(c->buf, c->have) : 0;
		if (c->have >= sizeof(struct phsm_msg_hdr) &&
		    (len < sizeof(struct phsm_msg_hdr) || len > sizeof(c->buf)))
			return -EPROTO;
		if (len && c->have >= len)
			break;
		k = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, 0);
		if (k == 0)
			return -ECONNRESET;
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->have += (size_t)k;
	}
	if (phsm_msg_parse(c->buf, len, true, m) != PHSM_ST_OK)
		return -EPROTO;
	/* m->payload points into buf: only the header fields are used. */
	memmove(c->buf, c->buf + len, c->have - len);
	c->have -= len;
	return 0;
}

static int expect(struct conn *c, uint16_t opcode)
{
	struct phsm_msg m;
	int ret = recv_msg(c, &m);

	if (ret)
		return ret;
	if (!(m.flags & PHSM_MSG_F_RESPONSE) || m.opcode != opcode ||
	    m.status != PHSM_ST_OK || m.rv != 0) {
		fprintf(stderr, "fw_nop_bench: answer op %#x status %u rv %#x\n",
			m.opcode, m.status, m.rv);
		return -EPROTO;
	}
	return 0;
}

static void report(unsigned int depth, unsigned long long n, double t)
{
	printf("phsm-bench: fw depth=%u cmds=%llu seconds=%.3f cmds_per_s=%.0f "
	       "us_per_cmd=%.2f\n", depth, n, t, (double)n / t,
	       t * 1e6 / (double)n);
	fflush(stdout);
}

static int run(struct conn *c, unsigned int depth, double seconds, bool print)
{
	unsigned long long sent = 0, n = 0;
	double t0 = now_s(), t1 = t0, end = t0 + seconds;
	int ret = 0;

	while (sent < depth && !ret)
		ret = send_msg(c, PHSM_OP_NOP, (uint32_t)sent++);
	while (!ret && n < sent) {
		ret = expect(c, PHSM_OP_NOP);
		if (ret)
			break;
		n++;
		t1 = now_s();
		if (t1 < end)
			ret = send_msg(c, PHSM_OP_NOP, (uint32_t)sent++);
	}
	if (ret) {
		fprintf(stderr, "fw_nop_bench: depth %u: %s\n", depth,
			strerror(-ret));
		return ret;
	}
	if (print)
		report(depth, n, t1 - t0);
	return 0;
}

int main(int argc, char **argv)
{
	static struct conn c;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double seconds = argc > 2 ? strtod(argv[2], NULL) : 3.0;
	long depth = argc > 3 ? strtol(argv[3], NULL, 10) : 32;
	int ret;

	if (argc < 2 || argc > 4 || strlen(argv[1]) >= sizeof(sa.sun_path) ||
	    !(seconds > 0 && seconds < 3600) || depth < 2 || depth > MAX_DEPTH) {
		fprintf(stderr, "usage: fw_nop_bench SOCK [SECONDS [DEPTH]]\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror(argv[1]);
		return 1;
	}
	ret = send_msg(&c, PHSM_OP_APP_OPEN, 0);
	if (!ret)
		ret = expect(&c, PHSM_OP_APP_OPEN);
	if (!ret)
		ret = run(&c, 1, 0.2, false);	/* warm-up */
	if (!ret)
		ret = run(&c, 1, seconds, true);
	if (!ret)
		ret = run(&c, (unsigned int)depth, seconds, true);
	close(c.fd);
	return ret ? 1 : 0;
}
