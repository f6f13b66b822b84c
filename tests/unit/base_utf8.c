// tests/unit/base_utf8.c: strict validation (overlongs, surrogates, > U+10FFFF), sequence
// lengths, the incomplete-tail count used by streaming detokenization, and an exhaustive
// encode/decode round trip over every scalar value.
#include <string.h>

#include "base/utf8.h"
#include "check.h"

static bool valid(const char *s)
{
    return utf8_valid(s, strlen(s), NULL);
}

static void test_valid(void)
{
    CHECK(valid(""));
    CHECK(valid("plain ascii"));
    CHECK(valid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80")); // é € 😀
    CHECK(valid("\xF4\x8F\xBF\xBF"));                        // U+10FFFF
    CHECK(!valid("\xC0\xAF"));                               // overlong '/'
    CHECK(!valid("\xE0\x80\xAF"));                           // overlong 3-byte
    CHECK(!valid("\xF0\x80\x80\xAF"));                       // overlong 4-byte
    CHECK(!valid("\xED\xA0\x80"));                           // surrogate U+D800
    CHECK(!valid("\xF4\x90\x80\x80"));                       // U+110000
    CHECK(!valid("\xF8\x88\x80\x80\x80"));                   // 5-byte form
    CHECK(!valid("\x80"));                                   // lone continuation
    CHECK(!valid("\xC3"));                                   // truncated
    CHECK(!valid("\xE2\x82"));
    CHECK(!valid("\xC3\x28"));                               // bad continuation
    size_t off = 99;
    CHECK(!utf8_valid("ab\xE2\x82\xAC\xFFz", 7, &off));
    CHECK_EQ_I64(off, 5);
    CHECK(utf8_valid("a\0b", 3, NULL)); // NUL is a valid code point
}

static void test_seq_len(void)
{
    CHECK_EQ_I64(utf8_seq_len('a'), 1);
    CHECK_EQ_I64(utf8_seq_len(0x80), 0);
    CHECK_EQ_I64(utf8_seq_len(0xBF), 0);
    CHECK_EQ_I64(utf8_seq_len(0xC0), 0);
    CHECK_EQ_I64(utf8_seq_len(0xC1), 0);
    CHECK_EQ_I64(utf8_seq_len(0xC2), 2);
    CHECK_EQ_I64(utf8_seq_len(0xE2), 3);
    CHECK_EQ_I64(utf8_seq_len(0xF0), 4);
    CHECK_EQ_I64(utf8_seq_len(0xF4), 4);
    CHECK_EQ_I64(utf8_seq_len(0xF5), 0);
    CHECK_EQ_I64(utf8_seq_len(0xFF), 0);
}

static void test_incomplete_tail(void)
{
    const char *euro = "x\xE2\x82\xAC"; // x€
    CHECK_EQ_I64(utf8_incomplete_tail(euro, 4), 0);
    CHECK_EQ_I64(utf8_incomplete_tail(euro, 3), 2);
    CHECK_EQ_I64(utf8_incomplete_tail(euro, 2), 1);
    CHECK_EQ_I64(utf8_incomplete_tail(euro, 1), 0);
    CHECK_EQ_I64(utf8_incomplete_tail(euro, 0), 0);
    const char *emoji = "\xF0\x9F\x98\x80";
    for (size_t k = 1; k < 4; k++) {
        CHECK_EQ_I64(utf8_incomplete_tail(emoji, k), k);
    }
    CHECK_EQ_I64(utf8_incomplete_tail(emoji, 4), 0);
    // Never completable: not held back.
    CHECK_EQ_I64(utf8_incomplete_tail("a\xFF", 2), 0);
    CHECK_EQ_I64(utf8_incomplete_tail("a\xED\xA0", 3), 0); // would be a surrogate
    CHECK_EQ_I64(utf8_incomplete_tail("a\xC3\x28", 3), 0);
    CHECK_EQ_I64(utf8_incomplete_tail("\x80\x80\x80", 3), 0);
    CHECK_EQ_I64(utf8_incomplete_tail("\xE2\x82\xAC\x80", 4), 0);
}

static void test_roundtrip_all(void)
{
    int bad = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        char buf[4];
        int n = utf8_encode(cp, buf);
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        if (surrogate) {
            bad += n != 0;
            continue;
        }
        uint32_t back = 0;
        int m = utf8_decode(buf, (size_t)n, &back);
        bad += (n < 1 || m != n || back != cp || !utf8_valid(buf, (size_t)n, NULL) ||
                utf8_seq_len((uint8_t)buf[0]) != n);
        if (n > 1) { // every strict prefix is incomplete
            bad += utf8_incomplete_tail(buf, (size_t)n - 1) != (size_t)n - 1;
        }
    }
    CHECK_EQ_I64(bad, 0);
    char buf[4];
    CHECK_EQ_I64(utf8_encode(0x110000, buf), 0);
    uint32_t cp = 0;
    CHECK_EQ_I64(utf8_decode("\xE2\x82", 2, &cp), 0);
    CHECK_EQ_I64(cp, 0xFFFD);
    CHECK_EQ_I64(utf8_decode("", 0, &cp), 0);
}

int main(void)
{
    RUN_TEST(test_valid);
    RUN_TEST(test_seq_len);
    RUN_TEST(test_incomplete_tail);
    RUN_TEST(test_roundtrip_all);
    return TEST_EXIT();
}
