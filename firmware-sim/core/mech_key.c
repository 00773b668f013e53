// SPDX-License-Identifier: MIT
/*
 * Keys: an object's attributes turned once into the form OpenSSL works
 * with (EVP_PKEY for key pairs, the raw value for secret keys), shared by
 * every operation that uses the object.
 */
#include "mech_impl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

/* ---- Curves ---- */

struct curve_desc {
	enum fw_curve id;
	const char *group;	/* OpenSSL name */
	size_t field_len;
	const uint8_t *oid;	/* DER, tag and length included */
	size_t oid_len;
	const char *names[3];	/* printable-string forms PKCS#11 3.0 allows */
};

static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
				    0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
				    0x22 };
static const uint8_t oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
				    0x23 };
static const uint8_t oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

static const struct curve_desc curves[] = {
	{ FW_CURVE_P256, "prime256v1", 32, oid_p256, sizeof(oid_p256),
	  { "prime256v1", "secp256r1", "P-256" } },
	{ FW_CURVE_P384, "secp384r1", 48, oid_p384, sizeof(oid_p384),
	  { "secp384r1", "P-384", NULL } },
	{ FW_CURVE_P521, "secp521r1", 66, oid_p521, sizeof(oid_p521),
	  { "secp521r1", "P-521", NULL } },
	{ FW_CURVE_ED25519, "ED25519", 32, oid_ed25519, sizeof(oid_ed25519),
	  { "edwards25519", NULL, NULL } },
};

#define NCURVES (sizeof(curves) / sizeof(curves[0]))

static const struct curve_desc *curve_desc(enum fw_curve c)
{
	for (size_t i = 0; i < NCURVES; i++)
		if (curves[i].id == c)
			return &curves[i];
	return NULL;
}

static bool name_is(const uint8_t *p, size_t len, const char *name)
{
	return name && strlen(name) == len && memcmp(p, name, len) == 0;
}

CK_RV fw_curve_from_params(const uint8_t *p, size_t len, enum fw_curve *c)
{
	*c = FW_CURVE_NONE;
	if (len < 2 || p[1] != len - 2 || p[1] > 127) {
		/* explicit parameters are a long SEQUENCE: not supported */
		if (len >= 2 && p[0] == 0x30)
			return CKR_CURVE_NOT_SUPPORTED;
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	for (size_t i = 0; i < NCURVES; i++) {
		const struct curve_desc *d = &curves[i];

		if (p[0] == 0x06 && len == d->oid_len &&
		    memcmp(p, d->oid, len) == 0) {
			*c = d->id;
			return CKR_OK;
		}
		for (int n = 0; p[0] == 0x13 && n < 3; n++) {
			if (name_is(p + 2, len - 2, d->names[n])) {
				*c = d->id;
				return CKR_OK;
			}
		}
	}
	/* A well-formed OID, name, explicit SEQUENCE or implicitlyCA NULL
	 * for a curve we do not have. */
	if (p[0] == 0x06 || p[0] == 0x13 || p[0] == 0x30 || p[0] == 0x05)
		return CKR_CURVE_NOT_SUPPORTED;
	return CKR_ATTRIBUTE_VALUE_INVALID;
}

const char *fw_curve_group(enum fw_curve c)
{
	const struct curve_desc *d = curve_desc(c);

	return d ? d->group : NULL;
}

size_t fw_curve_field_len(enum fw_curve c)
{
	const struct curve_desc *d = curve_desc(c);

	return d ? d->field_len : 0;
}

const uint8_t *fw_curve_oid(enum fw_curve c, size_t *len)
{
	const struct curve_desc *d = curve_desc(c);

	*len = d ? d->oid_len : 0;
	return d ? d->oid : NULL;
}

/* ---- EC points ---- */

/* Length of a DER OCTET STRING header at p; 0 when there is none. */
static size_t octet_string_header(const uint8_t *p, size_t len,
				  size_t *content)
{
	if (len < 2 || p[0] != 0x04)
		return 0;
	if (p[1] < 0x80) {
		*content = p[1];
		return *content == len - 2 ? 2 : 0;
	}
	if (p[1] == 0x81 && len >= 3 && p[2] >= 0x80) {
		*content = p[2];
		return *content == len - 3 ? 3 : 0;
	}
	return 0;
}

bool fw_ec_point_unwrap(enum fw_curve c, const uint8_t *p, size_t len,
			const uint8_t **pt, size_t *pt_len)
{
	size_t flen = fw_curve_field_len(c), content = 0, hdr;

	if (!flen)
		return false;
	if (c == FW_CURVE_ED25519) {
		hdr = len == 32 ? 0 : octet_string_header(p, len, &content);
		if (len != 32 && (!hdr || content != 32))
			return false;
		*pt = p + hdr;
		*pt_len = 32;
		return true;
	}
	/* A raw point and a DER-wrapped one never have the same length. */
	if ((len == 1 + 2 * flen && p[0] == 0x04) ||
	    (len == 1 + flen && (p[0] == 0x02 || p[0] == 0x03))) {
		*pt = p;
		*pt_len = len;
		return true;
	}
	hdr = octet_string_header(p, len, &content);
	if (!hdr || content < 1)
		return false;
	p += hdr;
	if ((content == 1 + 2 * flen && p[0] == 0x04) ||
	    (content == 1 + flen && (p[0] == 0x02 || p[0] == 0x03))) {
		*pt = p;
		*pt_len = content;
		return true;
	}
	return false;
}

static EVP_PKEY *pkey_fromdata(const char *alg, int selection,
			       OSSL_PARAM *params)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
	EVP_PKEY *pkey = NULL;

	if (ctx && EVP_PKEY_fromdata_init(ctx) > 0)
		if (EVP_PKEY_fromdata(ctx, &pkey, selection, params) <= 0)
			pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

CK_RV fw_ec_public_from_point(enum fw_curve c, const uint8_t *p, size_t len,
			      EVP_PKEY **out)
{
	const uint8_t *pt;
	size_t pt_len;
	OSSL_PARAM params[3];

	*out = NULL;
	if (!fw_ec_point_unwrap(c, p, len, &pt, &pt_len))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	if (c == FW_CURVE_ED25519) {
		*out = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL,
						      pt, pt_len);
		return *out ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(
		OSSL_PKEY_PARAM_GROUP_NAME, (char *)fw_curve_group(c), 0);
	params[1] = OSSL_PARAM_construct_octet_string(
		OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, pt_len);
	params[2] = OSSL_PARAM_construct_end();
	/* Decoding the point checks that it lies on the curve. */
	*out = pkey_fromdata("EC", EVP_PKEY_PUBLIC_KEY, params);
	return *out ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID;
}

/* ---- Reference counting and accessors ---- */

static struct fw_key *key_alloc(CK_OBJECT_CLASS cls, CK_KEY_TYPE type)
{
	struct fw_key *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	atomic_init(&k->refs, 1);
	k->cls = cls;
	k->type = type;
	return k;
}

struct fw_key *fw_key_get(struct fw_key *k)
{
	if (k)
		atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
	return k;
}

void fw_key_put(struct fw_key *k)
{
	if (!k || atomic_fetch_sub_explicit(&k->refs, 1,
					    memory_order_acq_rel) != 1)
		return;
	EVP_PKEY_CTX_free(atomic_load(&k->ecdsa_ctx[0]));
	EVP_PKEY_CTX_free(atomic_load(&k->ecdsa_ctx[1]));
	EVP_PKEY_free(k->pkey);
	fw_free_secret(k->secret, k->secret_len);
	free(k);
}

CK_KEY_TYPE fw_key_type(const struct fw_key *k)
{
	return k->type;
}

CK_OBJECT_CLASS fw_key_class(const struct fw_key *k)
{
	return k->cls;
}

CK_ULONG fw_key_size(const struct fw_key *k)
{
	return k->size;
}

bool fw_key_type_is_hmac(CK_KEY_TYPE t)
{
	switch (t) {
	case CKK_SHA_1_HMAC:
	case CKK_SHA224_HMAC:
	case CKK_SHA256_HMAC:
	case CKK_SHA384_HMAC:
	case CKK_SHA512_HMAC:
	case CKK_SHA3_224_HMAC:
	case CKK_SHA3_256_HMAC:
	case CKK_SHA3_384_HMAC:
	case CKK_SHA3_512_HMAC:
		return true;
	default:
		return false;
	}
}

CK_RV fw_key_from_pkey(EVP_PKEY *pkey, CK_OBJECT_CLASS cls, CK_KEY_TYPE type,
		       enum fw_curve curve, struct fw_key **out)
{
	struct fw_key *k = key_alloc(cls, type);

	if (!k) {
		EVP_PKEY_free(pkey);
		return CKR_HOST_MEMORY;
	}
	k->pkey = pkey;
	k->curve = curve;
	k->size = (CK_ULONG)EVP_PKEY_get_bits(pkey);
	if (curve == FW_CURVE_ED25519)
		k->size = 255;
	else if (curve != FW_CURVE_NONE)
		k->order_len = (k->size + 7) / 8;
	*out = k;
	return CKR_OK;
}

/* ---- Loading from attributes ---- */

static const struct fw_attr *need(const struct fw_attrs *a,
				  CK_ATTRIBUTE_TYPE t, CK_RV *rv)
{
	const struct fw_attr *at = fw_attrs_find(a, t);

	if (!at || !at->len) {
		if (*rv == CKR_OK)
			*rv = at ? CKR_ATTRIBUTE_VALUE_INVALID :
				   CKR_TEMPLATE_INCOMPLETE;
		return NULL;
	}
	return at;
}

static BIGNUM *attr_bn(const struct fw_attr *at)
{
	return at ? BN_bin2bn(at->value, (int)at->len, NULL) : NULL;
}

static CK_RV load_secret(const struct fw_attrs *obj, CK_KEY_TYPE type,
			 struct fw_key **out)
{
	CK_RV rv = CKR_OK;
	const struct fw_attr *v = need(obj, CKA_VALUE, &rv);
	CK_ULONG vlen;
	struct fw_key *k;

	if (!v)
		return rv;
	if (type == CKK_AES && v->len != 16 && v->len != 24 && v->len != 32)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	if (type != CKK_AES && type != CKK_GENERIC_SECRET &&
	    !fw_key_type_is_hmac(type))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	rv = fw_attrs_get_ulong(obj, CKA_VALUE_LEN, &vlen);
	if (rv == CKR_ATTRIBUTE_VALUE_INVALID || (rv == CKR_OK && vlen != v->len))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	k = key_alloc(CKO_SECRET_KEY, type);
	if (!k)
		return CKR_HOST_MEMORY;
	k->secret = malloc(v->len);
	if (!k->secret) {
		free(k);
		return CKR_HOST_MEMORY;
	}
	memcpy(k->secret, v->value, v->len);
	k->secret_len = v->len;
	k->size = v->len;
	*out = k;
	return CKR_OK;
}

/* p * q == n: cheap protection against mismatched CRT parts, which would
 * make every signature wrong (and leak the factors in doing so). */
static bool rsa_factors_match(const BIGNUM *n, const BIGNUM *p,
			      const BIGNUM *q)
{
	BN_CTX *bctx = BN_CTX_new();
	BIGNUM *pq = BN_new();
	bool ok = bctx && pq && BN_mul(pq, p, q, bctx) && BN_cmp(pq, n) == 0;

	BN_free(pq);
	BN_CTX_free(bctx);
	return ok;
}

static const CK_ATTRIBUTE_TYPE rsa_crt_attrs[5] = {
	CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2,
	CKA_COEFFICIENT,
};

static const char *const rsa_crt_params[5] = {
	OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
	OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
	OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
};

static CK_RV rsa_check_public(const BIGNUM *n, const BIGNUM *e)
{
	int bits = BN_num_bits(n);

	if (bits < 512 || bits > FW_RSA_PARSE_MAX_BITS || !BN_is_odd(n) ||
	    !BN_is_odd(e) || BN_is_one(e) || BN_cmp(e, n) >= 0)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	return CKR_OK;
}

static CK_RV load_rsa(const struct fw_attrs *obj, CK_OBJECT_CLASS cls,
		      struct fw_key **out)
{
	CK_RV rv = CKR_OK;
	const struct fw_attr *an = need(obj, CKA_MODULUS, &rv);
	/* OpenSSL cannot use a private key without its public exponent. */
	const struct fw_attr *ae = need(obj, CKA_PUBLIC_EXPONENT, &rv);
	const struct fw_attr *ad = cls == CKO_PRIVATE_KEY ?
				   need(obj, CKA_PRIVATE_EXPONENT, &rv) : NULL;
	BIGNUM *n = NULL, *e = NULL, *d = NULL, *crt[5] = { 0 };
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *pkey = NULL;
	int ncrt = 0;

	if (rv != CKR_OK)
		return rv;
	rv = CKR_HOST_MEMORY;
	n = attr_bn(an);
	e = attr_bn(ae);
	bld = OSSL_PARAM_BLD_new();
	if (!n || !e || !bld)
		goto out;
	rv = rsa_check_public(n, e);
	if (rv != CKR_OK)
		goto out;
	rv = CKR_HOST_MEMORY;
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		goto out;
	if (ad) {
		d = BN_secure_new();
		if (!d || !BN_bin2bn(ad->value, (int)ad->len, d))
			goto out;
		if (BN_is_zero(d) || BN_cmp(d, n) >= 0) {
			rv = CKR_ATTRIBUTE_VALUE_INVALID;
			goto out;
		}
		if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d))
			goto out;
		/* The CRT parts are used only when all five are present. */
		for (int i = 0; i < 5; i++)
			ncrt += fw_attrs_has(obj, rsa_crt_attrs[i]);
		for (int i = 0; ncrt == 5 && i < 5; i++) {
			const struct fw_attr *at = fw_attrs_find(obj,
							 rsa_crt_attrs[i]);

			crt[i] = BN_secure_new();
			if (!crt[i] ||
			    !BN_bin2bn(at->value, (int)at->len, crt[i]) ||
			    !OSSL_PARAM_BLD_push_BN(bld, rsa_crt_params[i],
						    crt[i]))
				goto out;
		}
		if (ncrt == 5 && !rsa_factors_match(n, crt[0], crt[1])) {
			rv = CKR_ATTRIBUTE_VALUE_INVALID;
			goto out;
		}
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	if (!params)
		goto out;
	pkey = pkey_fromdata("RSA", ad ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
			     params);
	rv = pkey ? fw_key_from_pkey(pkey, cls, CKK_RSA, FW_CURVE_NONE, out) :
		    CKR_ATTRIBUTE_VALUE_INVALID;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	BN_clear_free(d);
	for (int i = 0; i < 5; i++)
		BN_clear_free(crt[i]);
	return rv;
}

/*
 * The public point of an EC private key.  OpenSSL 3.0 does not derive it
 * when a key is imported from its scalar alone, and EVP has no call for
 * it, so this uses the (not deprecated) EC_POINT arithmetic.
 */
static bool ec_public_point(enum fw_curve c, const BIGNUM *d,
			    uint8_t *pub, size_t *pub_len)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name_ex(NULL, NULL,
		OBJ_sn2nid(fw_curve_group(c)));
	EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
	size_t n = 0;

	/* The scalar must lie in [1, order - 1]. */
	if (pt && !BN_is_zero(d) && BN_cmp(d, EC_GROUP_get0_order(g)) < 0 &&
	    EC_POINT_mul(g, pt, d, NULL, NULL, NULL))
		n = EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED,
				       pub, *pub_len, NULL);
	*pub_len = n;
	EC_POINT_free(pt);
	EC_GROUP_free(g);
	return n > 0;
}

static CK_RV load_ec_private(const struct fw_attr *v, enum fw_curve c,
			     struct fw_key **out)
{
	uint8_t pub[1 + 2 * 66];
	size_t pub_len = sizeof(pub);
	BIGNUM *d = BN_secure_new();
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY *pkey;
	CK_RV rv = CKR_HOST_MEMORY;

	if (!d || !bld || !BN_bin2bn(v->value, (int)v->len, d))
		goto out;
	rv = CKR_ATTRIBUTE_VALUE_INVALID;
	if (!ec_public_point(c, d, pub, &pub_len))
		goto out;
	rv = CKR_HOST_MEMORY;
	if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     fw_curve_group(c), 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
					      pub, pub_len))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	if (!params)
		goto out;
	pkey = pkey_fromdata("EC", EVP_PKEY_KEYPAIR, params);
	rv = pkey ? fw_key_from_pkey(pkey, CKO_PRIVATE_KEY, CKK_EC, c, out) :
		    CKR_ATTRIBUTE_VALUE_INVALID;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(d);
	return rv;
}

static CK_RV load_ec(const struct fw_attrs *obj, CK_OBJECT_CLASS cls,
		     CK_KEY_TYPE type, struct fw_key **out)
{
	CK_RV rv = CKR_OK;
	const struct fw_attr *ap = need(obj, CKA_EC_PARAMS, &rv);
	const struct fw_attr *av = need(obj, cls == CKO_PUBLIC_KEY ?
					CKA_EC_POINT : CKA_VALUE, &rv);
	enum fw_curve c;
	EVP_PKEY *pkey = NULL;

	if (rv != CKR_OK)
		return rv;
	rv = fw_curve_from_params(ap->value, ap->len, &c);
	if (rv != CKR_OK)
		return rv;
	if ((type == CKK_EC_EDWARDS) != (c == FW_CURVE_ED25519))
		return CKR_CURVE_NOT_SUPPORTED;
	if (cls == CKO_PUBLIC_KEY) {
		rv = fw_ec_public_from_point(c, av->value, av->len, &pkey);
		if (rv != CKR_OK)
			return rv;
		return fw_key_from_pkey(pkey, cls, type, c, out);
	}
	if (type == CKK_EC)
		return load_ec_private(av, c, out);
	if (av->len != 32)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL,
					       av->value, av->len);
	if (!pkey)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	return fw_key_from_pkey(pkey, cls, type, c, out);
}

CK_RV fw_key_load(const struct fw_attrs *obj, struct fw_key **out)
{
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE type;
	CK_RV rv;

	*out = NULL;
	rv = fw_attrs_get_ulong(obj, CKA_CLASS, &cls);
	if (rv == CKR_OK)
		rv = fw_attrs_get_ulong(obj, CKA_KEY_TYPE, &type);
	if (rv != CKR_OK)
		return rv;
	switch (cls) {
	case CKO_SECRET_KEY:
		return load_secret(obj, type, out);
	case CKO_PUBLIC_KEY:
	case CKO_PRIVATE_KEY:
		if (type == CKK_RSA)
			return load_rsa(obj, cls, out);
		if (type == CKK_EC || type == CKK_EC_EDWARDS)
			return load_ec(obj, cls, type, out);
		return CKR_ATTRIBUTE_VALUE_INVALID;
	default:
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
}

/* ---- Attributes computed from a key ---- */

static CK_RV set_bn(struct fw_attrs *a, CK_ATTRIBUTE_TYPE t,
		    const EVP_PKEY *pkey, const char *name, size_t pad)
{
	BIGNUM *bn = NULL;
	uint8_t *buf;
	size_t len;
	CK_RV rv;

	if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
		return CKR_OK;	/* absent: nothing to report */
	len = pad ? pad : (size_t)BN_num_bytes(bn);
	buf = OPENSSL_secure_malloc(len ? len : 1);
	if (!buf) {
		BN_clear_free(bn);
		return CKR_HOST_MEMORY;
	}
	if (pad ? BN_bn2binpad(bn, buf, (int)len) < 0 : BN_bn2bin(bn, buf) < 0)
		rv = CKR_GENERAL_ERROR;
	else
		rv = fw_attrs_set(a, t, buf, len);
	OPENSSL_secure_clear_free(buf, len ? len : 1);
	BN_clear_free(bn);
	return rv;
}

static CK_RV set_der_octet_string(struct fw_attrs *a, CK_ATTRIBUTE_TYPE t,
				  const uint8_t *v, size_t len)
{
	uint8_t buf[4 + 1 + 2 * 66];
	size_t hdr = len < 0x80 ? 2 : 3;

	if (len > 255 || hdr + len > sizeof(buf))
		return CKR_GENERAL_ERROR;
	buf[0] = 0x04;
	if (hdr == 2) {
		buf[1] = (uint8_t)len;
	} else {
		buf[1] = 0x81;
		buf[2] = (uint8_t)len;
	}
	memcpy(buf + hdr, v, len);
	return fw_attrs_set(a, t, buf, hdr + len);
}

static CK_RV set_ec_point(const struct fw_key *k, struct fw_attrs *a)
{
	uint8_t pt[1 + 2 * 66];
	size_t len = 0;

	if (k->curve == FW_CURVE_ED25519) {
		len = 32;
		if (!EVP_PKEY_get_raw_public_key(k->pkey, pt, &len))
			return CKR_GENERAL_ERROR;
	} else if (!EVP_PKEY_get_octet_string_param(k->pkey,
						    OSSL_PKEY_PARAM_PUB_KEY,
						    pt, sizeof(pt), &len)) {
		return CKR_GENERAL_ERROR;
	}
	return set_der_octet_string(a, CKA_EC_POINT, pt, len);
}

static CK_RV set_ec_value(const struct fw_key *k, struct fw_attrs *a)
{
	uint8_t d[32];
	size_t len = sizeof(d);
	CK_RV rv;

	if (k->curve != FW_CURVE_ED25519)
		return set_bn(a, CKA_VALUE, k->pkey, OSSL_PKEY_PARAM_PRIV_KEY,
			      k->order_len);
	if (!EVP_PKEY_get_raw_private_key(k->pkey, d, &len))
		return CKR_GENERAL_ERROR;
	rv = fw_attrs_set(a, CKA_VALUE, d, len);
	OPENSSL_cleanse(d, sizeof(d));
	return rv;
}

static CK_RV set_class_type(const struct fw_key *k, struct fw_attrs *a)
{
	CK_RV rv = fw_attrs_set_ulong(a, CKA_CLASS, k->cls);

	return rv == CKR_OK ? fw_attrs_set_ulong(a, CKA_KEY_TYPE, k->type) : rv;
}

static CK_RV set_ec_params(const struct fw_key *k, struct fw_attrs *a)
{
	size_t len;
	const uint8_t *oid = fw_curve_oid(k->curve, &len);

	return fw_attrs_set(a, CKA_EC_PARAMS, oid, len);
}

CK_RV fw_public_attrs(const struct fw_key *k, struct fw_attrs *out)
{
	CK_RV rv = set_class_type(k, out);

	if (rv != CKR_OK)
		return rv;
	if (k->type == CKK_RSA) {
		rv = set_bn(out, CKA_MODULUS, k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		if (rv == CKR_OK)
			rv = set_bn(out, CKA_PUBLIC_EXPONENT, k->pkey,
				    OSSL_PKEY_PARAM_RSA_E, 0);
		if (rv == CKR_OK)
			rv = fw_attrs_set_ulong(out, CKA_MODULUS_BITS, k->size);
		return rv;
	}
	rv = set_ec_params(k, out);
	return rv == CKR_OK ? set_ec_point(k, out) : rv;
}

static const struct {
	CK_ATTRIBUTE_TYPE attr;
	const char *param;
} rsa_priv_parts[] = {
	{ CKA_MODULUS, OSSL_PKEY_PARAM_RSA_N },
	{ CKA_PUBLIC_EXPONENT, OSSL_PKEY_PARAM_RSA_E },
	{ CKA_PRIVATE_EXPONENT, OSSL_PKEY_PARAM_RSA_D },
	{ CKA_PRIME_1, OSSL_PKEY_PARAM_RSA_FACTOR1 },
	{ CKA_PRIME_2, OSSL_PKEY_PARAM_RSA_FACTOR2 },
	{ CKA_EXPONENT_1, OSSL_PKEY_PARAM_RSA_EXPONENT1 },
	{ CKA_EXPONENT_2, OSSL_PKEY_PARAM_RSA_EXPONENT2 },
	{ CKA_COEFFICIENT, OSSL_PKEY_PARAM_RSA_COEFFICIENT1 },
};

CK_RV fw_private_attrs(const struct fw_key *k, struct fw_attrs *out)
{
	CK_RV rv = set_class_type(k, out);

	if (k->type == CKK_RSA) {
		for (size_t i = 0; rv == CKR_OK &&
		     i < sizeof(rsa_priv_parts) / sizeof(rsa_priv_parts[0]); i++)
			rv = set_bn(out, rsa_priv_parts[i].attr, k->pkey,
				    rsa_priv_parts[i].param, 0);
		return rv;
	}
	if (rv == CKR_OK)
		rv = set_ec_params(k, out);
	return rv == CKR_OK ? set_ec_value(k, out) : rv;
}

static CK_RV set_spki(const struct fw_key *k, struct fw_attrs *a)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(k->pkey, &der);
	CK_RV rv;

	if (len <= 0)
		return CKR_OK;	/* no public part known: leave it out */
	rv = fw_attrs_set(a, CKA_PUBLIC_KEY_INFO, der, (size_t)len);
	OPENSSL_free(der);
	return rv;
}

/*
 * CKA_CHECK_VALUE: for AES the first three bytes of the encryption of a
 * zero block, for other secret keys the first three bytes of the SHA-1 of
 * the value (PKCS#11 3.0, secret key objects).
 */
static CK_RV set_check_value(const struct fw_key *k, struct fw_attrs *a)
{
	uint8_t buf[FW_MAX_MD] = { 0 }, zero[FW_AES_BLOCK] = { 0 };
	unsigned int mdlen = 0;
	int outl = 0;
	bool ok;

	if (k->type == CKK_AES) {
		EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

		ok = ctx && EVP_EncryptInit_ex2(ctx,
				fw_aes_cipher(FW_AES_ECB, k->secret_len),
				k->secret, NULL, NULL) &&
		     EVP_EncryptUpdate(ctx, buf, &outl, zero, sizeof(zero));
		EVP_CIPHER_CTX_free(ctx);
	} else {
		ok = EVP_Digest(k->secret, k->secret_len, buf, &mdlen,
				fw_md(FW_H_SHA1), NULL);
	}
	return ok ? fw_attrs_set(a, CKA_CHECK_VALUE, buf, 3) : CKR_GENERAL_ERROR;
}

CK_RV fw_key_derived_attrs(const struct fw_key *k, struct fw_attrs *obj)
{
	struct fw_attrs add = { 0 };
	CK_RV rv = CKR_OK;

	if (k->cls == CKO_SECRET_KEY) {
		rv = fw_attrs_set_ulong(&add, CKA_VALUE_LEN, k->secret_len);
		if (rv == CKR_OK)
			rv = set_check_value(k, &add);
	} else {
		if (k->type == CKK_RSA && k->cls == CKO_PUBLIC_KEY)
			rv = fw_attrs_set_ulong(&add, CKA_MODULUS_BITS, k->size);
		if (rv == CKR_OK)
			rv = set_spki(k, &add);
	}
	for (size_t i = 0; rv == CKR_OK && i < add.n; i++)
		if (!fw_attrs_has(obj, add.v[i].type))
			rv = fw_attrs_set(obj, add.v[i].type, add.v[i].value,
					  add.v[i].len);
	fw_attrs_free(&add);
	return rv;
}
