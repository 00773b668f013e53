// SPDX-License-Identifier: MIT
/*
 * phsmctl identity: the card's cloning identity (PHSM_OP_CLONE_IDENTITY),
 * its device certificate and the manufacturer root it trusts, shown with
 * their names, validity and SHA-256 fingerprints, and as PEM so that
 * `openssl verify -CAfile root.pem device.pem` can check them.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <phsm/pkcs11.h>

#include "phsmctl.h"

/* One certificate, decoded for printing. */
struct cert_view {
	X509 *x;
	char subject[256];
	char issuer[256];
	char not_before[64];
	char not_after[64];
	char sha256[2 * EVP_MAX_MD_SIZE + 1];
	char *pem;		/* malloc'ed */
};

static void name_of(const X509_NAME *n, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int k = 0;

	out[0] = '\0';
	if (b && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0)
		k = BIO_read(b, out, (int)len - 1);
	out[k > 0 ? k : 0] = '\0';
	BIO_free(b);
}

static void time_of(const ASN1_TIME *t, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int k = 0;

	if (b && ASN1_TIME_print(b, t))
		k = BIO_read(b, out, (int)len - 1);
	out[k > 0 ? k : 0] = '\0';
	BIO_free(b);
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b && PEM_write_bio_X509(b, x)) {
		n = BIO_get_mem_data(b, &data);
		out = n > 0 ? malloc((size_t)n + 1) : NULL;
		if (out) {
			memcpy(out, data, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

static bool cert_decode(const uint8_t *der, size_t len, struct cert_view *v)
{
	const unsigned char *p = der;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	memset(v, 0, sizeof(*v));
	v->x = d2i_X509(NULL, &p, (long)len);
	if (!v->x || p != der + len ||
	    !X509_digest(v->x, EVP_sha256(), md, &mdlen))
		return false;
	name_of(X509_get_subject_name(v->x), v->subject, sizeof(v->subject));
	name_of(X509_get_issuer_name(v->x), v->issuer, sizeof(v->issuer));
	time_of(X509_get0_notBefore(v->x), v->not_before, sizeof(v->not_before));
	time_of(X509_get0_notAfter(v->x), v->not_after, sizeof(v->not_after));
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(v->sha256 + 2 * i, 3, "%02x", md[i]);
	v->pem = pem_of(v->x);
	return v->pem != NULL;
}

static void cert_free(struct cert_view *v)
{
	X509_free(v->x);
	free(v->pem);
}

static void print_plain(const char *what, const struct cert_view *v)
{
	printf("%s certificate\n", what);
	printf("  %-11s %s\n", "subject", v->subject);
	printf("  %-11s %s\n", "issuer", v->issuer);
	printf("  %-11s %s\n", "not before", v->not_before);
	printf("  %-11s %s\n", "not after", v->not_after);
	printf("  %-11s %s\n", "sha256", v->sha256);
	fputs(v->pem, stdout);
}

static void print_json(struct json *j, const char *key,
		       const struct cert_view *v)
{
	json_begin(j, key, '{');
	json_str(j, "subject", v->subject);
	json_str(j, "issuer", v->issuer);
	json_str(j, "not_before", v->not_before);
	json_str(j, "not_after", v->not_after);
	json_str(j, "sha256", v->sha256);
	json_str(j, "pem", v->pem);
	json_end(j, '}');
}

int cmd_identity(const struct options *o, const char *card)
{
	struct cert_view dev = { 0 }, root = { 0 };
	const uint8_t *d, *r;
	size_t dlen, rlen;
	struct answer a = { 0 };
	struct conn c;
	struct json j;
	int rc = EXIT_FAIL;

	if (conn_open(&c, o, card) ||
	    conn_request(&c, PHSM_OP_CLONE_IDENTITY, NULL, &a))
		goto out;
	d = phsm_get_bytes(&a.r, &dlen);
	r = phsm_get_bytes(&a.r, &rlen);
	if (!d || !r || !phsm_reader_done(&a.r) || !dlen != !rlen ||
	    (dlen && (!cert_decode(d, dlen, &dev) ||
		      !cert_decode(r, rlen, &root)))) {
		err_msg("%s: malformed answer to opcode 0x%04x", c.name,
			PHSM_OP_CLONE_IDENTITY);
		goto out;
	}
	if (o->json) {
		json_init(&j, stdout);
		json_begin(&j, NULL, '{');
		json_str(&j, c.dev ? "device" : "socket", c.name);
		json_bool(&j, "provisioned", dlen != 0);
		if (dlen) {
			print_json(&j, "device_certificate", &dev);
			print_json(&j, "root_certificate", &root);
		}
		json_end(&j, '}');
		json_finish(&j);
	} else if (!dlen) {
		printf("card %s has no cloning identity (start phsm-fw with --mfg)\n",
		       c.name);
	} else {
		printf("card %s\n", c.name);
		print_plain("device", &dev);
		print_plain("root", &root);
	}
	rc = EXIT_OK;
out:
	cert_free(&dev);
	cert_free(&root);
	free(a.buf);
	conn_close(&c);
	return rc;
}
