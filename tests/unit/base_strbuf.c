// tests/unit/base_strbuf.c: growth, the hard cap (LLEM_ELIMIT, content unchanged), appendf
// above the small-buffer size, JSON escaping, allocation failure.
#include <string.h>

#include "base/alloc.h"
#include "base/strbuf.h"
#include "check.h"

static void test_append_cap(void)
{
    struct strbuf sb;
    strbuf_init(&sb, 10);
    CHECK_EQ_STR(strbuf_cstr(&sb), "");
    CHECK_EQ_I64(strbuf_append_str(&sb, "hello"), LLEM_OK);
    CHECK_EQ_I64(strbuf_append_char(&sb, ' '), LLEM_OK);
    CHECK_EQ_I64(strbuf_append_str(&sb, "world"), LLEM_ELIMIT); // 11 > 10
    CHECK_EQ_STR(strbuf_cstr(&sb), "hello ");
    CHECK_EQ_I64(strbuf_appendf(&sb, "%d", 1234), LLEM_OK);
    CHECK_EQ_STR(strbuf_cstr(&sb), "hello 1234");
    CHECK_EQ_I64(sb.len, 10);
    CHECK_EQ_I64(strbuf_append(&sb, "", 0), LLEM_OK);
    CHECK_EQ_I64(strbuf_append_char(&sb, 'x'), LLEM_ELIMIT);
    CHECK(sb.cap <= 11);
    strbuf_truncate(&sb, 5);
    CHECK_EQ_STR(strbuf_cstr(&sb), "hello");
    char *s = strbuf_take(&sb);
    CHECK_EQ_STR(s, "hello");
    llem_free(s);
    CHECK_EQ_STR(strbuf_cstr(&sb), "");
    strbuf_deinit(&sb);
    strbuf_deinit(NULL);
}

static void test_appendf_long(void)
{
    struct strbuf sb;
    strbuf_init(&sb, 0);
    char big[1000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_EQ_I64(strbuf_appendf(&sb, "<%s>%d", big, 7), LLEM_OK);
    CHECK_EQ_I64(sb.len, 1002);
    CHECK(sb.data[0] == '<' && sb.data[1000] == '>' && sb.data[1001] == '7' && !sb.data[1002]);
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ_I64(strbuf_append_char(&sb, 'b'), LLEM_OK);
    }
    CHECK_EQ_I64(sb.len, 2002);
    CHECK_EQ_I64(strlen(strbuf_cstr(&sb)), 2002);
    strbuf_reset(&sb);
    CHECK_EQ_STR(strbuf_cstr(&sb), "");
    strbuf_deinit(&sb);
}

static void test_json_escape(void)
{
    struct strbuf sb;
    strbuf_init(&sb, 0);
    const char in[] = "a\"b\\c\n\r\t\b\f\x01\x1f caf\xC3\xA9 \xF0\x9F\x98\x80 \xFF\xE2\x82!";
    CHECK_EQ_I64(strbuf_append_json_escaped(&sb, in, sizeof(in) - 1), LLEM_OK);
    CHECK_EQ_STR(strbuf_cstr(&sb), "a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f caf\xC3\xA9 "
                                   "\xF0\x9F\x98\x80 \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD!");
    strbuf_reset(&sb);
    CHECK_EQ_I64(strbuf_append_json_escaped(&sb, "x\0y", 3), LLEM_OK);
    CHECK_EQ_STR(strbuf_cstr(&sb), "x\\u0000y");
    strbuf_deinit(&sb);
    // All or nothing at the cap.
    strbuf_init(&sb, 8);
    CHECK_EQ_I64(strbuf_append_str(&sb, "ab"), LLEM_OK);
    CHECK_EQ_I64(strbuf_append_json_escaped(&sb, "cd\n\n\n", 5), LLEM_ELIMIT);
    CHECK_EQ_STR(strbuf_cstr(&sb), "ab");
    strbuf_deinit(&sb);
}

static void test_enomem(void)
{
    struct strbuf sb;
    strbuf_init(&sb, 0);
    llem_alloc_fail_at(1, 1);
    CHECK_EQ_I64(strbuf_append_str(&sb, "x"), LLEM_ENOMEM);
    llem_alloc_fail_at(0, 0);
    CHECK_EQ_STR(strbuf_cstr(&sb), "");
    CHECK_EQ_I64(strbuf_append_str(&sb, "x"), LLEM_OK);
    char big[200];
    memset(big, 'z', sizeof(big));
    llem_alloc_fail_at(1, 1);
    CHECK_EQ_I64(strbuf_append(&sb, big, sizeof(big)), LLEM_ENOMEM);
    llem_alloc_fail_at(0, 0);
    CHECK_EQ_STR(strbuf_cstr(&sb), "x");
    strbuf_deinit(&sb);
}

int main(void)
{
    RUN_TEST(test_append_cap);
    RUN_TEST(test_appendf_long);
    RUN_TEST(test_json_escape);
    RUN_TEST(test_enomem);
    return TEST_EXIT();
}
