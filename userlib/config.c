// SPDX-License-Identifier: MIT
/*
 * Which cards the library talks to, in this order of precedence:
 *
 *   PHSM_FW_SOCKETS=path1,path2,...	each socket is one phsm-fw card
 *   /dev/phsmN				the driver's cards, by number N
 *   PHSM_CONF (default /etc/phsm.conf)	lines "socket = /path"
 *
 * The position of a card in the list is its card index, which fixes its
 * slot IDs.  A missing configuration file means no cards, not an error.
 * PHSM_DEV_DIR names another directory than /dev to look for the device
 * nodes in (for containers and tests).
 *
 * PHSM_DIGEST=card sends single-part digests to the card too; by default
 * the library computes them itself (digest.c).
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib.h"

#define DEFAULT_CONF "/etc/phsm.conf"

/* Set before C_Initialize publishes the state, read only after. */
static bool digest_on_card;

bool lib_config_digest_local(void)
{
	return !digest_on_card;
}

struct path_list {
	char **v;
	size_t n;
	bool failed;
};

static void list_add(struct path_list *l, const char *s, size_t len)
{
	char **v;
	char *p;

	if (l->failed || len == 0)
		return;
	if (l->n >= LIB_MAX_CARDS)
		return;		/* slot IDs cannot name more cards */
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	p = strndup(s, len);
	if (!v || !p) {
		if (v)
			l->v = v;
		free(p);
		l->failed = true;
		return;
	}
	l->v = v;
	l->v[l->n++] = p;
}

static void parse_socket_list(struct path_list *l, const char *s)
{
	while (*s) {
		size_t len = strcspn(s, ",");

		list_add(l, s, len);
		s += len;
		if (*s == ',')
			s++;
	}
}

/* Trim blanks at both ends, in place. */
static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/*
 * "socket = /path" lines; '#' starts a comment.  Lines with other keys
 * are ignored so that newer files still work with this library.
 */
static void parse_conf_line(struct path_list *l, char *line)
{
	char *eq, *key, *val;

	line[strcspn(line, "#\r\n")] = '\0';
	eq = strchr(line, '=');
	if (!eq)
		return;
	*eq = '\0';
	key = trim(line);
	val = trim(eq + 1);
	if (strcmp(key, "socket") == 0)
		list_add(l, val, strlen(val));
}

static void parse_conf_file(struct path_list *l, const char *file)
{
	FILE *f = fopen(file, "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) >= 0)
		parse_conf_line(l, line);
	free(line);
	fclose(f);
}

/* N of a name "phsmN" (decimal, no leading zero), or -1. */
static long device_number(const char *name)
{
	const char *p = name + 4;
	char *end;
	long n;

	if (strncmp(name, "phsm", 4) != 0 || !isdigit((unsigned char)*p) ||
	    (p[0] == '0' && p[1] != '\0'))
		return -1;
	n = strtol(p, &end, 10);
	if (*end != '\0' || n < 0 || n > 0xfffff)
		return -1;
	return n;
}

struct dev_entry {
	long number;
	char *path;
};

static int dev_entry_cmp(const void *a, const void *b)
{
	const struct dev_entry *x = a, *y = b;

	return (x->number > y->number) - (x->number < y->number);
}

/* The character devices "phsmN" of @dir, by ascending N. */
static void find_devices(struct path_list *l, const char *dir)
{
	struct dev_entry *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)) != NULL && !l->failed) {
		long num = device_number(de->d_name);
		struct stat st;
		char *path;

		if (num < 0)
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			l->failed = true;
			break;
		}
		/* stat, not lstat: udev may add symlinks to the nodes. */
		if (stat(path, &st) < 0 || !S_ISCHR(st.st_mode)) {
			free(path);
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			struct dev_entry *nv = realloc(v, ncap * sizeof(*v));

			if (!nv) {
				free(path);
				l->failed = true;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[n].number = num;
		v[n++].path = path;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), dev_entry_cmp);
	for (size_t i = 0; i < n; i++) {
		list_add(l, v[i].path, strlen(v[i].path));
		free(v[i].path);
	}
	free(v);
}

CK_RV lib_config_cards(char ***paths, size_t *n)
{
	struct path_list l = { 0 };
	const char *sockets = getenv("PHSM_FW_SOCKETS");
	const char *conf = getenv("PHSM_CONF");
	const char *dev_dir = getenv("PHSM_DEV_DIR");
	const char *digest = getenv("PHSM_DIGEST");

	digest_on_card = digest && !strcmp(digest, "card");

	if (sockets) {
		parse_socket_list(&l, sockets);
	} else {
		find_devices(&l, dev_dir && *dev_dir ? dev_dir : "/dev");
		if (!l.n && !l.failed)
			parse_conf_file(&l, conf && *conf ? conf : DEFAULT_CONF);
	}
	if (l.failed) {
		lib_config_free(l.v, l.n);
		return CKR_HOST_MEMORY;
	}
	*paths = l.v;
	*n = l.n;
	return CKR_OK;
}

void lib_config_free(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}
