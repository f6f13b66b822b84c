// tests/unit/base_align.c: align_up overflow checks and the tensor memory estimator
// (F32 and a Q4_0-like block geometry), plus the limits header compiling standalone.
#include <stdint.h>

#include "base/align.h"
#include "base/limits.h"
#include "check.h"

static void test_align_up(void)
{
    size_t out = 0;
    CHECK(align_up_ok(0, 64, &out) && out == 0);
    CHECK(align_up_ok(1, 64, &out) && out == 64);
    CHECK(align_up_ok(64, 64, &out) && out == 64);
    CHECK(align_up_ok(65, 256, &out) && out == 256);
    CHECK(!align_up_ok(SIZE_MAX, 64, &out));
    CHECK(!align_up_ok(SIZE_MAX - 62, 64, &out));
    CHECK(align_up_ok(SIZE_MAX - 63, 64, &out) && out == SIZE_MAX - 63);
    CHECK(!align_up_ok(10, 48, &out)); // not a power of two
    CHECK(!align_up_ok(10, 0, &out));
    CHECK_EQ_I64(align_up(100, LLEM_CPU_ALIGN), 128);
    CHECK_EQ_I64(align_up(300, LLEM_DEVICE_ALIGN), 512);
    int x;
    CHECK(align_ptr_is((void *)(uintptr_t)256, 256));
    CHECK(!align_ptr_is((void *)((uintptr_t)&x | 1), 2));
}

static void test_tensor_bytes(void)
{
    struct llem_errbuf eb = {0};
    size_t out = 0;
    int64_t ne[4] = {4096, 32, 1, 1};
    CHECK_OK(align_tensor_bytes(1, 4, ne, LLEM_CPU_ALIGN, &out, &eb), &eb); // f32
    CHECK_EQ_I64(out, 4096 * 32 * 4);
    CHECK_OK(align_tensor_bytes(32, 18, ne, LLEM_CPU_ALIGN, &out, &eb), &eb); // q4_0
    CHECK_EQ_I64(out, 4096 / 32 * 18 * 32); // 73728, already a multiple of 64
    int64_t ne2[4] = {32, 3, 1, 1};
    CHECK_OK(align_tensor_bytes(32, 18, ne2, LLEM_CPU_ALIGN, &out, &eb), &eb);
    CHECK_EQ_I64(out, 64); // 54 rounded up
    CHECK_OK(align_tensor_bytes(32, 18, ne2, LLEM_DEVICE_ALIGN, &out, &eb), &eb);
    CHECK_EQ_I64(out, 256);
    size_t row = 0;
    CHECK_OK(align_row_bytes(256, 144, 4096, &row, &eb), &eb); // q4_K
    CHECK_EQ_I64(row, 16 * 144);

    int64_t bad_row[4] = {33, 1, 1, 1};
    CHECK_EQ_I64(align_tensor_bytes(32, 18, bad_row, 64, &out, &eb), LLEM_EINVAL);
    int64_t zero[4] = {32, 0, 1, 1};
    CHECK_EQ_I64(align_tensor_bytes(32, 18, zero, 64, &out, &eb), LLEM_EINVAL);
    int64_t neg[4] = {-32, 1, 1, 1};
    CHECK_EQ_I64(align_tensor_bytes(32, 18, neg, 64, &out, &eb), LLEM_EINVAL);
    int64_t huge[4] = {INT64_MAX / 32 * 32, 1 << 20, 1 << 20, 1 << 20};
    CHECK_EQ_I64(align_tensor_bytes(32, 18, huge, 64, &out, &eb), LLEM_ELIMIT);
    CHECK(eb.msg[0] != '\0');
    int64_t big[4] = {1 << 30, 1 << 30, 1 << 30, 1};
    CHECK_EQ_I64(align_tensor_bytes(1, 4, big, 64, &out, &eb), LLEM_ELIMIT);
    CHECK_EQ_I64(align_tensor_bytes(1, 4, ne, 100, &out, &eb), LLEM_EINVAL);
    CHECK_EQ_I64(align_tensor_bytes(0, 4, ne, 64, &out, NULL), LLEM_EINVAL);
}

static void test_limits_sane(void)
{
    CHECK(LLEM_GGUF_MAX_DIMS == 4);
    CHECK(LLEM_GGUF_MAX_STRING_BYTES == 1u << 20);
    CHECK(LLEM_HTTP_MAX_BODY_BYTES_DEFAULT == 64ull << 20);
    CHECK(LLEM_MAX_THREADS >= 1);
}

int main(void)
{
    RUN_TEST(test_align_up);
    RUN_TEST(test_tensor_bytes);
    RUN_TEST(test_limits_sane);
    return TEST_EXIT();
}
