// SPDX-License-Identifier: MIT
/*
 * Output helpers: error messages and a small streaming JSON writer.  The
 * strings come from the card and from sysfs, so every byte that is not
 * printable ASCII is escaped.
 */
#include <stdarg.h>
#include <string.h>

#include "phsmctl.h"

void err_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("phsmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool fmt(char *buf, size_t n, const char *f, ...)
{
	va_list ap;
	int k;

	va_start(ap, f);
	k = vsnprintf(buf, n, f, ap);
	va_end(ap);
	return k >= 0 && (size_t)k < n;
}

size_t field_len(const uint8_t *s, size_t n)
{
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\0'))
		n--;
	return n;
}

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

static void put_escaped(FILE *f, const uint8_t *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Comma, indentation and key before a value. */
static void prefix(struct json *j, const char *key)
{
	if (j->need_comma[j->depth])
		fputc(',', j->f);
	if (j->depth)
		fprintf(j->f, "\n%*s", 2 * j->depth, "");
	j->need_comma[j->depth] = true;
	if (key) {
		put_escaped(j->f, (const uint8_t *)key, strlen(key));
		fputs(": ", j->f);
	}
}

void json_begin(struct json *j, const char *key, char open)
{
	prefix(j, key);
	fputc(open, j->f);
	if (j->depth + 1 < (int)(sizeof(j->need_comma) / sizeof(j->need_comma[0])))
		j->depth++;
	j->need_comma[j->depth] = false;
}

void json_end(struct json *j, char close)
{
	bool empty = !j->need_comma[j->depth];

	if (j->depth)
		j->depth--;
	if (!empty)
		fprintf(j->f, "\n%*s", 2 * j->depth, "");
	fputc(close, j->f);
}

void json_str(struct json *j, const char *key, const char *s)
{
	prefix(j, key);
	put_escaped(j->f, (const uint8_t *)s, strlen(s));
}

void json_field(struct json *j, const char *key, const uint8_t *s, size_t n)
{
	prefix(j, key);
	put_escaped(j->f, s, field_len(s, n));
}

void json_uint(struct json *j, const char *key, unsigned long long v)
{
	prefix(j, key);
	fprintf(j->f, "%llu", v);
}

void json_bool(struct json *j, const char *key, bool v)
{
	prefix(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
	prefix(j, key);
	fputs("null", j->f);
}

void json_finish(struct json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}
