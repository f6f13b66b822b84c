// tests/unit/base_arena.c: the bump arena: alignment, exhaustion returns NULL without
// growing, reset is O(1) and keeps the high-water mark, strdup copies.
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "check.h"

static void test_alloc_align_and_full(void)
{
    struct arena a;
    CHECK_EQ_I64(arena_init(&a, 1000), LLEM_OK);
    CHECK(((uintptr_t)a.base & 63) == 0);
    char *p = arena_alloc(&a, 3, 1);
    CHECK(p != NULL);
    void *q = arena_alloc(&a, 8, 64);
    CHECK(q != NULL && ((uintptr_t)q & 63) == 0);
    CHECK((char *)q >= p + 3);
    void *r = arena_alloc(&a, 10, 0); // default 16
    CHECK(r != NULL && ((uintptr_t)r & 15) == 0);
    size_t used = a.used_bytes;
    CHECK(arena_alloc(&a, 1000, 1) == NULL); // does not fit: NULL, arena unchanged
    CHECK_EQ_I64(a.used_bytes, used);
    CHECK(arena_alloc(&a, SIZE_MAX, 1) == NULL); // no overflow in the bounds check
    CHECK(arena_alloc(&a, SIZE_MAX - 8, 64) == NULL);
    void *last = arena_alloc(&a, 1000 - used, 1); // exactly fills
    CHECK(last != NULL);
    CHECK_EQ_I64(a.used_bytes, 1000);
    CHECK_EQ_I64(arena_avail(&a), 0);
    CHECK(arena_alloc(&a, 1, 1) == NULL);
    CHECK_EQ_I64(a.cap_bytes, 1000); // never grows
    CHECK_EQ_I64(a.high_water_bytes, 1000);
    arena_reset(&a);
    CHECK_EQ_I64(a.used_bytes, 0);
    CHECK_EQ_I64(a.high_water_bytes, 1000);
    CHECK(arena_alloc(&a, 1, 1) == a.base); // storage reused from the start
    arena_deinit(&a);
    arena_deinit(&a); // idempotent
    arena_deinit(NULL);
}

static void test_strdup_calloc(void)
{
    struct arena a;
    CHECK_EQ_I64(arena_init(&a, 64), LLEM_OK);
    char *s = arena_strdup(&a, "hello");
    CHECK_EQ_STR(s, "hello");
    char *t = arena_strndup(&a, "abcdef", 3);
    CHECK_EQ_STR(t, "abc");
    unsigned char *z = arena_calloc(&a, 4, 4, 4);
    CHECK(z != NULL);
    for (int i = 0; z && i < 16; i++) {
        CHECK_EQ_I64(z[i], 0);
    }
    CHECK(arena_calloc(&a, SIZE_MAX, 2, 1) == NULL); // n*size overflow
    CHECK(arena_strdup(&a, "this string is far too long to fit in what is left of it") == NULL);
    CHECK_EQ_STR(s, "hello"); // earlier data untouched
    arena_deinit(&a);
}

static void test_init_failure(void)
{
    struct arena a;
    llem_alloc_fail_at(1, 0);
    CHECK_EQ_I64(arena_init(&a, 128), LLEM_ENOMEM);
    llem_alloc_fail_at(0, 0);
    CHECK(arena_alloc(&a, 1, 1) == NULL);
    arena_deinit(&a);
    CHECK_EQ_I64(arena_init(&a, 0), LLEM_EINVAL);
    arena_deinit(&a);
}

int main(void)
{
    RUN_TEST(test_alloc_align_and_full);
    RUN_TEST(test_strdup_calloc);
    RUN_TEST(test_init_failure);
    return TEST_EXIT();
}
