// SPDX-License-Identifier: MIT
/*
 * Which cards the library talks to, in this order of precedence:
 *
 *   PHSM_FW_SOCKETS=path1,path2,...	each socket is one phsm-fw card
 *   /dev/phsm*				the driver's cards (next issue)
 *   PHSM_CONF (default /etc/phsm.conf)	lines "socket = /path"
 *
 * The position of a card in the list is its card index, which fixes its
 * slot IDs.  A missing configuration file means no cards, not an error.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"

#define DEFAULT_CONF "/etc/phsm.conf"

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

/*
 * The char-device transport is the next step; until then no /dev/phsmN
 * card is listed and the configuration file is consulted.
 */
static void find_devices(struct path_list *l)
{
	(void)l;
}

CK_RV lib_config_cards(char ***paths, size_t *n)
{
	struct path_list l = { 0 };
	const char *sockets = getenv("PHSM_FW_SOCKETS");
	const char *conf = getenv("PHSM_CONF");

	if (sockets) {
		parse_socket_list(&l, sockets);
	} else {
		find_devices(&l);
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
