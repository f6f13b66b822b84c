// base/sha256.c: SHA-256 over libcrypto EVP (see sha256.h).
#include "base/sha256.h"

#include <openssl/evp.h>
#include <string.h>

enum llem_err sha256_init(struct sha256 *s)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    s->ctx = c;
    if (!c) {
        return LLEM_ENOMEM;
    }
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        return LLEM_EINTERNAL;
    }
    return LLEM_OK;
}

enum llem_err sha256_update(struct sha256 *s, const void *data, size_t n)
{
    if (n == 0) {
        return LLEM_OK;
    }
    return EVP_DigestUpdate(s->ctx, data, n) == 1 ? LLEM_OK : LLEM_EINTERNAL;
}

enum llem_err sha256_final(struct sha256 *s, uint8_t out[SHA256_BYTES])
{
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(s->ctx, out, &len) != 1 || len != SHA256_BYTES) {
        return LLEM_EINTERNAL;
    }
    return LLEM_OK;
}

void sha256_deinit(struct sha256 *s)
{
    if (!s) {
        return;
    }
    EVP_MD_CTX_free(s->ctx); // accepts NULL
    s->ctx = NULL;
}

enum llem_err sha256_oneshot(const void *data, size_t n, uint8_t out[SHA256_BYTES])
{
    unsigned int len = 0;
    if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1 || len != SHA256_BYTES) {
        return LLEM_EINTERNAL;
    }
    return LLEM_OK;
}

void sha256_hex(const uint8_t d[SHA256_BYTES], char out[SHA256_HEX_BYTES])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_BYTES; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

enum llem_err sha256_from_hex(const char *hex, uint8_t out[SHA256_BYTES])
{
    if (strnlen(hex, 65) != 64) {
        return LLEM_EINVAL;
    }
    for (int i = 0; i < SHA256_BYTES; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return LLEM_EINVAL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return LLEM_OK;
}
