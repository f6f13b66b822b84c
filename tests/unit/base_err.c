// tests/unit/base_err.c: error names/messages and errbuf formatting; allocation injection.
#include "check.h"
#include "base/alloc.h"
#include "base/err.h"

static void test_names(void)
{
    CHECK_EQ_STR(llem_err_name(LLEM_OK), "OK");
    CHECK_EQ_STR(llem_err_name(LLEM_EFORMAT), "EFORMAT");
    CHECK_EQ_STR(llem_err_name((enum llem_err)9999), "?");
    CHECK_EQ_STR(llem_err_str(LLEM_ENOMEM), "out of memory");
}

static void test_errf(void)
{
    struct llem_errbuf eb = {0};
    CHECK_EQ_I64(llem_errf(&eb, LLEM_EINVAL, "bad %s %d", "thing", 7), LLEM_EINVAL);
    CHECK_EQ_STR(eb.msg, "bad thing 7");
    CHECK_EQ_I64(eb.code, LLEM_EINVAL);
    llem_err_prefix(&eb, "file.gguf");
    CHECK_EQ_STR(eb.msg, "file.gguf: bad thing 7");
    CHECK_EQ_I64(llem_errf(NULL, LLEM_EIO, "x"), LLEM_EIO);
}

static void test_alloc_injection(void)
{
    llem_alloc_fail_at(2, 0);
    void *a = llem_malloc(8);
    void *b = llem_malloc(8);
    void *c = llem_malloc(8);
    CHECK(a != NULL);
    CHECK(b == NULL);
    CHECK(c != NULL);
    CHECK(llem_alloc_fail_fired());
    llem_alloc_fail_at(1, 1);
    void *d = llem_malloc(8), *e = llem_calloc(2, 8);
    CHECK(d == NULL && e == NULL);
    llem_alloc_fail_at(0, 0);
    CHECK(!llem_alloc_fail_fired());
    CHECK(llem_calloc(SIZE_MAX, 2) == NULL);
    llem_free(a);
    llem_free(c);
    llem_free(NULL);
}

int main(void)
{
    RUN_TEST(test_names);
    RUN_TEST(test_errf);
    RUN_TEST(test_alloc_injection);
    return TEST_EXIT();
}
