// SPDX-License-Identifier: MIT
/*
 * Algorithm implementations fetched once from the default provider, and
 * small helpers every mechanism uses.  Fetching is comparatively slow
 * (a locked lookup in the provider store), so operations use these cached
 * objects instead of fetching by name each time.
 */
#include "mech_impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/kdf.h>

static const char *const md_names[FW_H_COUNT] = {
	[FW_H_SHA1] = "SHA1",
	[FW_H_SHA224] = "SHA224",
	[FW_H_SHA256] = "SHA256",
	[FW_H_SHA384] = "SHA384",
	[FW_H_SHA512] = "SHA512",
	[FW_H_SHA3_224] = "SHA3-224",
	[FW_H_SHA3_256] = "SHA3-256",
	[FW_H_SHA3_384] = "SHA3-384",
	[FW_H_SHA3_512] = "SHA3-512",
};

static const char *const aes_names[FW_AES_MODE_COUNT][3] = {
	[FW_AES_ECB] = { "AES-128-ECB", "AES-192-ECB", "AES-256-ECB" },
	[FW_AES_CBC] = { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC" },
	[FW_AES_CTR] = { "AES-128-CTR", "AES-192-CTR", "AES-256-CTR" },
	[FW_AES_GCM] = { "AES-128-GCM", "AES-192-GCM", "AES-256-GCM" },
	[FW_AES_WRAP] = { "AES-128-WRAP", "AES-192-WRAP", "AES-256-WRAP" },
	[FW_AES_WRAP_PAD] = { "AES-128-WRAP-PAD", "AES-192-WRAP-PAD",
			      "AES-256-WRAP-PAD" },
};

static struct {
	EVP_MD *md[FW_H_COUNT];
	size_t md_size[FW_H_COUNT];
	EVP_CIPHER *aes[FW_AES_MODE_COUNT][3];
	EVP_MAC *hmac;
	EVP_MAC *cmac;
	EVP_KDF *x963;
} algs;

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_fetch(void)
{
	for (int h = FW_H_SHA1; h < FW_H_COUNT; h++) {
		algs.md[h] = EVP_MD_fetch(NULL, md_names[h], NULL);
		if (algs.md[h])
			algs.md_size[h] = (size_t)EVP_MD_get_size(algs.md[h]);
	}
	for (int m = 0; m < FW_AES_MODE_COUNT; m++)
		for (int k = 0; k < 3; k++)
			algs.aes[m][k] = EVP_CIPHER_fetch(NULL, aes_names[m][k],
							  NULL);
	algs.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	algs.cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);
	algs.x963 = EVP_KDF_fetch(NULL, "X963KDF", NULL);
}

static void algs_init(void)
{
	pthread_once(&algs_once, algs_fetch);
}

const EVP_MD *fw_md(enum fw_hash h)
{
	if (h <= FW_H_NONE || h >= FW_H_COUNT)
		return NULL;
	algs_init();
	return algs.md[h];
}

size_t fw_md_size(enum fw_hash h)
{
	return fw_md(h) ? algs.md_size[h] : 0;
}

const char *fw_md_name(enum fw_hash h)
{
	if (h <= FW_H_NONE || h >= FW_H_COUNT)
		return NULL;
	return md_names[h];
}

const EVP_CIPHER *fw_aes_cipher(enum fw_aes_mode mode, size_t key_len)
{
	int k;

	switch (key_len) {
	case 16: k = 0; break;
	case 24: k = 1; break;
	case 32: k = 2; break;
	default: return NULL;
	}
	if ((int)mode < 0 || mode >= FW_AES_MODE_COUNT)
		return NULL;
	algs_init();
	return algs.aes[mode][k];
}

EVP_MAC *fw_mac_hmac(void)
{
	algs_init();
	return algs.hmac;
}

EVP_MAC *fw_mac_cmac(void)
{
	algs_init();
	return algs.cmac;
}

EVP_KDF *fw_kdf_x963(void)
{
	algs_init();
	return algs.x963;
}

enum fw_hash fw_hash_from_mech(CK_MECHANISM_TYPE t)
{
	switch (t) {
	case CKM_SHA_1: return FW_H_SHA1;
	case CKM_SHA224: return FW_H_SHA224;
	case CKM_SHA256: return FW_H_SHA256;
	case CKM_SHA384: return FW_H_SHA384;
	case CKM_SHA512: return FW_H_SHA512;
	case CKM_SHA3_224: return FW_H_SHA3_224;
	case CKM_SHA3_256: return FW_H_SHA3_256;
	case CKM_SHA3_384: return FW_H_SHA3_384;
	case CKM_SHA3_512: return FW_H_SHA3_512;
	default: return FW_H_NONE;
	}
}

enum fw_hash fw_hash_from_mgf(CK_ULONG mgf)
{
	switch (mgf) {
	case CKG_MGF1_SHA1: return FW_H_SHA1;
	case CKG_MGF1_SHA224: return FW_H_SHA224;
	case CKG_MGF1_SHA256: return FW_H_SHA256;
	case CKG_MGF1_SHA384: return FW_H_SHA384;
	case CKG_MGF1_SHA512: return FW_H_SHA512;
	case CKG_MGF1_SHA3_224: return FW_H_SHA3_224;
	case CKG_MGF1_SHA3_256: return FW_H_SHA3_256;
	case CKG_MGF1_SHA3_384: return FW_H_SHA3_384;
	case CKG_MGF1_SHA3_512: return FW_H_SHA3_512;
	default: return FW_H_NONE;
	}
}

enum fw_hash fw_hash_from_kdf(CK_ULONG kdf)
{
	switch (kdf) {
	case CKD_SHA1_KDF: return FW_H_SHA1;
	case CKD_SHA224_KDF: return FW_H_SHA224;
	case CKD_SHA256_KDF: return FW_H_SHA256;
	case CKD_SHA384_KDF: return FW_H_SHA384;
	case CKD_SHA512_KDF: return FW_H_SHA512;
	case CKD_SHA3_224_KDF: return FW_H_SHA3_224;
	case CKD_SHA3_256_KDF: return FW_H_SHA3_256;
	case CKD_SHA3_384_KDF: return FW_H_SHA3_384;
	case CKD_SHA3_512_KDF: return FW_H_SHA3_512;
	default: return FW_H_NONE;
	}
}

bool fw_out_check(uint8_t *out, size_t *out_len, size_t need, CK_RV *rv)
{
	if (!out) {
		*out_len = need;
		*rv = CKR_OK;
		return true;
	}
	if (*out_len < need) {
		*out_len = need;
		*rv = CKR_BUFFER_TOO_SMALL;
		return true;
	}
	return false;
}

CK_RV fw_out_copy(const uint8_t *tmp, size_t n, uint8_t *out, size_t *out_len)
{
	CK_RV rv;

	if (fw_out_check(out, out_len, n, &rv))
		return rv;
	if (n)
		memcpy(out, tmp, n);
	*out_len = n;
	return CKR_OK;
}

void fw_free_secret(void *p, size_t len)
{
	if (p) {
		OPENSSL_cleanse(p, len);
		free(p);
	}
}
