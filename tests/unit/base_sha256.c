// tests/unit/base_sha256.c: SHA-256 against the FIPS 180-2 / NIST vectors, streaming equals
// one-shot for every split point, hex formatting and parsing.
#include <string.h>

#include "base/sha256.h"
#include "check.h"

static void hex_of(const void *data, size_t n, char out[SHA256_HEX_BYTES])
{
    uint8_t d[SHA256_BYTES];
    CHECK_EQ_I64(sha256_oneshot(data, n, d), LLEM_OK);
    sha256_hex(d, out);
}

static void test_vectors(void)
{
    char hex[SHA256_HEX_BYTES];
    hex_of("", 0, hex);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *s448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(s448, strlen(s448), hex);
    CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // One million 'a', streamed in uneven chunks.
    struct sha256 s;
    CHECK_EQ_I64(sha256_init(&s), LLEM_OK);
    char chunk[997];
    memset(chunk, 'a', sizeof(chunk));
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
        CHECK_EQ_I64(sha256_update(&s, chunk, n), LLEM_OK);
        left -= n;
    }
    uint8_t d[SHA256_BYTES];
    CHECK_EQ_I64(sha256_final(&s, d), LLEM_OK);
    sha256_deinit(&s);
    sha256_hex(d, hex);
    CHECK_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    sha256_deinit(NULL);
}

static void test_stream_splits(void)
{
    uint8_t data[300];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 31 + 7);
    }
    uint8_t want[SHA256_BYTES];
    CHECK_EQ_I64(sha256_oneshot(data, sizeof(data), want), LLEM_OK);
    int mismatches = 0;
    for (size_t cut = 0; cut <= sizeof(data); cut++) {
        struct sha256 s;
        uint8_t got[SHA256_BYTES];
        sha256_init(&s);
        sha256_update(&s, data, cut);
        sha256_update(&s, data + cut, sizeof(data) - cut);
        sha256_final(&s, got);
        sha256_deinit(&s);
        mismatches += memcmp(got, want, SHA256_BYTES) != 0;
    }
    CHECK_EQ_I64(mismatches, 0);
}

static void test_hex_parse(void)
{
    const char *h = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015ad";
    uint8_t d[SHA256_BYTES];
    CHECK_EQ_I64(sha256_from_hex(h, d), LLEM_OK);
    char back[SHA256_HEX_BYTES];
    sha256_hex(d, back);
    CHECK_EQ_STR(back, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_EQ_I64(sha256_from_hex("abc", d), LLEM_EINVAL);
    CHECK_EQ_I64(sha256_from_hex("ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                                 d), LLEM_EINVAL);
    CHECK_EQ_I64(sha256_from_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
                                 d), LLEM_EINVAL);
}

int main(void)
{
    RUN_TEST(test_vectors);
    RUN_TEST(test_stream_splits);
    RUN_TEST(test_hex_parse);
    return TEST_EXIT();
}
