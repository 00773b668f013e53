/* SPDX-License-Identifier: MIT */
/*
 * phsmctl: the administrator's view of the phsm cards of a host.
 *
 *   list.c	the cards on the PCI bus (libpci) joined with the driver's
 *		sysfs attributes
 *   show.c	one card's partitions, asked of the card itself
 *   identity.c	the card's cloning identity (device and root certificates)
 *   conn.c	the connection to one card: /dev/phsmN or phsm-fw's socket
 *   out.c	plain text and JSON output
 */
#ifndef PHSMCTL_H
#define PHSMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../uapi/codec/phsm_codec.h"
#include "../../uapi/phsm_ioctl.h"

/* Exit statuses. */
#define EXIT_OK		0
#define EXIT_FAIL	1	/* the card is unknown, unreachable or failed */
#define EXIT_USAGE	2

struct options {
	bool json;
	const char *socket;	/* show: phsm-fw's socket instead of a device */
	const char *sysfs;	/* root of sysfs, "/sys" unless --sysfs */
	const char *dev_dir;	/* where the phsmN nodes are, "/dev" */
};

int cmd_list(const struct options *o);
int cmd_show(const struct options *o, const char *card);
int cmd_identity(const struct options *o, const char *card);

/* conn.c: one card, through /dev/phsmN or phsm-fw's socket. */
struct conn {
	int fd;
	bool dev;
	const char *name;	/* for messages */
	char path[4096];	/* the device node */
	uint32_t max_msg;	/* device: from PHSM_IOCTL_INFO */
	uint32_t tag;
	struct phsm_ioctl_info info;
};

/* What one answer gave: the buffer and a reader over its payload. */
struct answer {
	uint8_t *buf;
	struct phsm_reader r;
};

/* Open card "N" (/dev/phsmN, or a path), or o->socket when set. */
int conn_open(struct conn *c, const struct options *o, const char *card);
void conn_close(struct conn *c);
/*
 * Send a request of @opcode with an optional partition argument; on
 * success the answer's payload is in @a (free a->buf).  Returns 0, or -1
 * after a message.
 */
int conn_request(struct conn *c, uint16_t opcode, const uint64_t *part,
		 struct answer *a);
/* A fixed-size structure as the only field of an answer. */
int conn_request_struct(struct conn *c, uint16_t opcode,
			const uint64_t *part, void *out, size_t size);

/* snprintf that says whether everything fit (paths, sysfs values). */
bool fmt(char *buf, size_t n, const char *f, ...)
	__attribute__((format(printf, 3, 4)));

/* Errors go to stderr with the program's name. */
void err_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * JSON writer: values are written with a key inside objects (key
 * non-NULL) and without one inside arrays; commas are handled here.
 */
struct json {
	FILE *f;
	int depth;
	bool need_comma[16];
};

void json_init(struct json *j, FILE *f);
void json_begin(struct json *j, const char *key, char open);	/* '{' or '[' */
void json_end(struct json *j, char close);
void json_str(struct json *j, const char *key, const char *s);
/* A blank-padded field of @n bytes, without the padding. */
void json_field(struct json *j, const char *key, const uint8_t *s, size_t n);
void json_uint(struct json *j, const char *key, unsigned long long v);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);
void json_finish(struct json *j);

/* Length of a blank-padded field without its trailing blanks. */
size_t field_len(const uint8_t *s, size_t n);

#endif /* PHSMCTL_H */
