// SPDX-License-Identifier: MIT
/*
 * phsmctl show: one card and its partitions, as the card itself reports
 * them (GET_CARD_INFO, then GET_TOKEN_INFO and CA_GET_POLICIES for each
 * partition), each field of each answer checked.
 */
#include <stdlib.h>
#include <string.h>

#include <phsm/pkcs11.h>

#include "phsmctl.h"

#define MAX_PARTS 16
#define MAX_POLICIES 16

/* A partition's policies (CA_SetContainerPolicy): numbers and values. */
struct policies {
	size_t n;
	uint64_t type[MAX_POLICIES];
	uint64_t value[MAX_POLICIES];
};

static int request_policies(struct conn *c, uint64_t part, struct policies *pol)
{
	struct answer a;
	const uint8_t *t, *v;
	size_t nt, nv;

	if (conn_request(c, PHSM_OP_CA_GET_POLICIES, &part, &a))
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

int cmd_show(const struct options *o, const char *card)
{
	struct conn c;
	struct phsm_card_info ci;
	struct phsm_token_info ti[MAX_PARTS];
	struct policies pol[MAX_PARTS];
	unsigned int nparts;
	int rc = EXIT_FAIL;

	if (conn_open(&c, o, card))
		goto out;
	if (conn_request_struct(&c, PHSM_OP_GET_CARD_INFO, NULL, &ci,
				sizeof(ci)))
		goto out;
	nparts = le32(&ci.partitions);
	if (nparts > MAX_PARTS) {
		err_msg("%s: the card claims %u partitions", c.name, nparts);
		goto out;
	}
	for (unsigned int p = 0; p < nparts; p++) {
		uint64_t part = p;

		if (conn_request_struct(&c, PHSM_OP_GET_TOKEN_INFO, &part,
					&ti[p], sizeof(ti[p])) ||
		    request_policies(&c, part, &pol[p]))
			goto out;
	}
	if (o->json)
		print_json(&c, &ci, ti, pol, nparts);
	else
		print_plain(&c, &ci, ti, pol, nparts);
	rc = EXIT_OK;
out:
	conn_close(&c);
	return rc;
}
