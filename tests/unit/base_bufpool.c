// tests/unit/base_bufpool.c: tier selection, alignment, zero allocations after warm-up, the
// retention cap, large requests, allocation failure, and a multi-threaded get/put stress that
// checks no buffer is ever handed to two threads at once.
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/bufpool.h"
#include "check.h"

static void test_tiers(void)
{
    struct bufpool p;
    CHECK_EQ_I64(bufpool_init(&p, NULL), LLEM_OK);
    const size_t sizes[] = {0, 1, 128 << 10, (128 << 10) + 1, 512 << 10, 1 << 20, (1 << 20) + 1,
                            4 << 20};
    const int tiers[] = {0, 0, 0, 1, 1, 2, 3, 3};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct buf b = bufpool_get(&p, sizes[i]);
        CHECK(b.data != NULL);
        CHECK_EQ_I64(b.tier, tiers[i]);
        CHECK_EQ_I64(b.cap, bufpool_tier_size(tiers[i]));
        CHECK(((uintptr_t)b.data & (BUFPOOL_ALIGN - 1)) == 0);
        memset(b.data, 0xAB, b.cap); // the whole capacity is usable (ASan checks)
        bufpool_put(&p, b);
    }
    struct buf big = bufpool_get(&p, (4 << 20) + 1);
    CHECK(big.data != NULL && big.tier == -1 && big.cap == (4u << 20) + 1);
    CHECK(((uintptr_t)big.data & (BUFPOOL_ALIGN - 1)) == 0);
    bufpool_put(&p, big);
    struct bufpool_stats st;
    bufpool_get_stats(&p, &st);
    CHECK_EQ_I64(st.large_allocs, 1);
    CHECK_EQ_I64(st.tier[0].misses, 1); // 0, 1 and 128K reuse one buffer
    CHECK_EQ_I64(st.tier[0].hits, 2);
    CHECK_EQ_I64(st.tier[3].bytes_retained, 4 << 20);
    struct buf none = {NULL, 0, -1, -1};
    bufpool_put(&p, none); // ignored
    bufpool_deinit(&p);
    bufpool_deinit(NULL);
}

static void test_zero_alloc_after_warmup(void)
{
    struct bufpool p;
    CHECK_EQ_I64(bufpool_init(&p, NULL), LLEM_OK);
    struct buf held[8];
    for (int i = 0; i < 8; i++) { // warm-up: 8 buffers of each of two tiers
        held[i] = bufpool_get(&p, i % 2 ? 200000 : 1000);
    }
    for (int i = 0; i < 8; i++) {
        bufpool_put(&p, held[i]);
    }
    uint64_t before = llem_alloc_count();
    for (int round = 0; round < 1000; round++) {
        for (int i = 0; i < 8; i++) {
            held[i] = bufpool_get(&p, i % 2 ? 200000 : 1000);
        }
        for (int i = 7; i >= 0; i--) {
            bufpool_put(&p, held[i]);
        }
    }
    CHECK_EQ_I64(llem_alloc_count() - before, 0);
    // Distinct buffers while held at once.
    for (int i = 0; i < 8; i++) {
        held[i] = bufpool_get(&p, 1000);
    }
    int dup = 0;
    for (int i = 0; i < 8; i++) {
        for (int j = i + 1; j < 8; j++) {
            dup += held[i].data == held[j].data;
        }
    }
    CHECK_EQ_I64(dup, 0);
    for (int i = 0; i < 8; i++) {
        bufpool_put(&p, held[i]);
    }
    bufpool_deinit(&p);
}

static void test_cap(void)
{
    struct bufpool_config cfg = {{2 * (128 << 10), 1, 0, 0}}; // tier 0: 2 buffers; tier 1: none
    struct bufpool p;
    CHECK_EQ_I64(bufpool_init(&p, &cfg), LLEM_OK);
    struct buf b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = bufpool_get(&p, 100);
        CHECK(b[i].data != NULL && b[i].tier == 0);
    }
    CHECK(b[0].slot >= 0 && b[1].slot >= 0 && b[2].slot == -1); // the third is not retained
    for (int i = 0; i < 3; i++) {
        bufpool_put(&p, b[i]);
    }
    struct bufpool_stats st;
    bufpool_get_stats(&p, &st);
    CHECK_EQ_I64(st.tier[0].bytes_retained, 2 * (128 << 10));
    CHECK_EQ_I64(st.tier[0].misses, 3);
    struct buf c = bufpool_get(&p, 300000); // tier 1 retains nothing: allocated and freed
    CHECK(c.data != NULL && c.tier == 1 && c.slot == -1);
    bufpool_put(&p, c);
    bufpool_get_stats(&p, &st);
    CHECK_EQ_I64(st.tier[1].bytes_retained, 0);
    bufpool_deinit(&p);
}

static void test_enomem(void)
{
    struct bufpool p;
    for (uint64_t k = 1; k < 10; k++) { // every init allocation failing is clean
        llem_alloc_fail_at(k, 0);
        enum llem_err e = bufpool_init(&p, NULL);
        int fired = llem_alloc_fail_fired();
        llem_alloc_fail_at(0, 0);
        CHECK_EQ_I64(e, fired ? LLEM_ENOMEM : LLEM_OK);
        bufpool_deinit(&p);
        if (!fired) {
            break;
        }
    }
    CHECK_EQ_I64(bufpool_init(&p, NULL), LLEM_OK);
    llem_alloc_fail_at(1, 0);
    struct buf b = bufpool_get(&p, 10);
    llem_alloc_fail_at(0, 0);
    CHECK(b.data == NULL);
    bufpool_put(&p, b);
    b = bufpool_get(&p, 10);
    CHECK(b.data != NULL);
    bufpool_put(&p, b);
    bufpool_deinit(&p);
}

enum { MT_THREADS = 4, MT_ITERS = 20000 };

struct mt_ctx {
    struct bufpool *p;
    int id;
    int errors;
};

static void *mt_worker(void *arg)
{
    struct mt_ctx *c = arg;
    for (int i = 0; i < MT_ITERS; i++) {
        size_t size = (i % 3 == 0) ? 600000 : 1000;
        struct buf b = bufpool_get(c->p, size);
        if (!b.data) {
            c->errors++;
            continue;
        }
        // Stamp the buffer with our id and check nobody else wrote it while we held it.
        uint64_t *w = b.data;
        uint64_t stamp = (uint64_t)c->id << 32 | (uint32_t)i;
        w[0] = stamp;
        w[b.cap / 8 - 1] = stamp;
        for (volatile int k = 0; k < 20; k++) {
        }
        c->errors += w[0] != stamp || w[b.cap / 8 - 1] != stamp;
        bufpool_put(c->p, b);
    }
    return NULL;
}

static void test_threads(void)
{
    struct bufpool_config cfg = {{4 * (128 << 10), 0, 2 << 20, 0}}; // small: hit the cap too
    struct bufpool p;
    CHECK_EQ_I64(bufpool_init(&p, &cfg), LLEM_OK);
    pthread_t th[MT_THREADS];
    struct mt_ctx ctx[MT_THREADS];
    for (int i = 0; i < MT_THREADS; i++) {
        ctx[i] = (struct mt_ctx){&p, i + 1, 0};
        CHECK(pthread_create(&th[i], NULL, mt_worker, &ctx[i]) == 0);
    }
    int errors = 0;
    for (int i = 0; i < MT_THREADS; i++) {
        pthread_join(th[i], NULL);
        errors += ctx[i].errors;
    }
    CHECK_EQ_I64(errors, 0);
    struct bufpool_stats st;
    bufpool_get_stats(&p, &st);
    uint64_t gets = st.tier[0].hits + st.tier[0].misses + st.tier[2].hits + st.tier[2].misses;
    CHECK_EQ_I64(gets, (uint64_t)MT_THREADS * MT_ITERS);
    CHECK(st.tier[0].slots_used <= 4 && st.tier[2].slots_used <= 2);
    bufpool_deinit(&p);
}

int main(void)
{
    RUN_TEST(test_tiers);
    RUN_TEST(test_zero_alloc_after_warmup);
    RUN_TEST(test_cap);
    RUN_TEST(test_enomem);
    RUN_TEST(test_threads);
    return TEST_EXIT();
}
