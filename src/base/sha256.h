// base/sha256.h: SHA-256 through libcrypto's EVP interface (SHA-NI/AVX2 paths for free),
// streaming for blobs being downloaded or written and one-shot for small buffers. Digests
// name Ollama's blobs ("sha256:<64 hex>"). A struct sha256 is owned by one thread at a time;
// the one-shot functions are thread-safe.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define SHA256_BYTES 32
#define SHA256_HEX_BYTES 65 // 64 hex digits + NUL

struct sha256 {
    void *ctx; // EVP_MD_CTX *, opaque here so callers need no OpenSSL headers
};

// LLEM_ENOMEM (or LLEM_EINTERNAL if libcrypto refuses SHA-256); s is then safe to deinit.
enum llem_err sha256_init(struct sha256 *s);
enum llem_err sha256_update(struct sha256 *s, const void *data, size_t n);
// Writes the digest; the context may then be reused after another sha256_init only.
enum llem_err sha256_final(struct sha256 *s, uint8_t out[SHA256_BYTES]);
void sha256_deinit(struct sha256 *s); // s may be NULL or never initialized-but-zeroed

enum llem_err sha256_oneshot(const void *data, size_t n, uint8_t out[SHA256_BYTES]);
// Lower-case hex of a digest, NUL-terminated.
void sha256_hex(const uint8_t digest[SHA256_BYTES], char out[SHA256_HEX_BYTES]);
// Parses 64 hex digits (either case) into a digest; LLEM_EINVAL for anything else.
enum llem_err sha256_from_hex(const char *hex, uint8_t out[SHA256_BYTES]);
