/* SPDX-License-Identifier: MIT */
/*
 * phsmctl: the administrator's view of the phsm cards of a host.
 *
 *   list.c	the cards on the PCI bus (libpci) joined with the driver's
 *		sysfs attributes
 *   show.c	one card's partitions, asked of the card itself through
 *		/dev/phsmN or phsm-fw's socket
 *   out.c	plain text and JSON output
 */
#ifndef PHSMCTL_H
#define PHSMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
