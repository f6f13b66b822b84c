// tests/unit/base_threadpool.c: every (ith, nth) runs exactly once per run, runs with fewer
// threads than the pool, many back-to-back runs (spin path) and runs after sleeping (futex
// path), the in-region barrier orders phases, the standalone barrier, thread-count helpers.
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/limits.h"
#include "base/threadpool.h"
#include "check.h"

enum { MAXT = 8 };

struct hits {
    _Atomic int count[MAXT];
    _Atomic int bad_nth;
    int expect_nth;
};

static void count_fn(void *arg, int ith, int nth)
{
    struct hits *h = arg;
    if (nth != h->expect_nth || ith < 0 || ith >= nth) {
        atomic_fetch_add(&h->bad_nth, 1);
        return;
    }
    atomic_fetch_add(&h->count[ith], 1);
}

static void test_run_counts(void)
{
    struct threadpool *pool;
    CHECK_EQ_I64(threadpool_new(4, 0, &pool), LLEM_OK);
    CHECK_EQ_I64(threadpool_size(pool), 4);
    for (int nth = 1; nth <= 5; nth++) { // 5 clamps to 4
        struct hits h;
        memset(&h, 0, sizeof(h));
        h.expect_nth = nth > 4 ? 4 : nth;
        const int runs = 2000;
        for (int r = 0; r < runs; r++) {
            threadpool_run(pool, count_fn, &h, nth);
        }
        CHECK_EQ_I64(atomic_load(&h.bad_nth), 0);
        for (int i = 0; i < MAXT; i++) {
            CHECK_EQ_I64(atomic_load(&h.count[i]), i < h.expect_nth ? runs : 0);
        }
    }
    struct hits h;
    memset(&h, 0, sizeof(h));
    h.expect_nth = 4;
    threadpool_run(pool, count_fn, &h, 0); // 0 = all
    CHECK_EQ_I64(atomic_load(&h.count[3]), 1);
    threadpool_free(pool);
    threadpool_free(NULL);
}

static void test_sleep_wake(void)
{
    struct threadpool *pool;
    CHECK_EQ_I64(threadpool_new(3, 10, &pool), LLEM_OK); // tiny spin: workers sleep quickly
    struct hits h;
    memset(&h, 0, sizeof(h));
    h.expect_nth = 3;
    for (int r = 0; r < 20; r++) {
        usleep(2000); // workers are asleep on the futex by now
        threadpool_run(pool, count_fn, &h, 3);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_I64(atomic_load(&h.count[i]), 20);
    }
    threadpool_free(pool);
}

// Each phase: every thread writes its slot, barrier, every thread checks all slots of the
// phase; a missing or broken barrier shows up as a mismatch.
struct phased {
    struct threadpool *pool;
    int slots[MAXT];
    _Atomic int errors;
    int phases;
};

static void phase_fn(void *arg, int ith, int nth)
{
    struct phased *p = arg;
    for (int ph = 1; ph <= p->phases; ph++) {
        p->slots[ith] = ph;
        threadpool_barrier(p->pool);
        for (int i = 0; i < nth; i++) {
            if (p->slots[i] != ph) {
                atomic_fetch_add(&p->errors, 1);
            }
        }
        threadpool_barrier(p->pool);
    }
}

static void test_barrier_in_run(void)
{
    struct phased p;
    memset(&p, 0, sizeof(p));
    CHECK_EQ_I64(threadpool_new(4, 0, &p.pool), LLEM_OK);
    p.phases = 500;
    for (int nth = 1; nth <= 4; nth++) {
        memset(p.slots, 0, sizeof(p.slots));
        threadpool_run(p.pool, phase_fn, &p, nth);
    }
    CHECK_EQ_I64(atomic_load(&p.errors), 0);
    threadpool_free(p.pool);
}

struct standalone {
    struct tp_barrier b;
    int slots[3];
    int errors[3];
};

static void *standalone_worker(void *arg)
{
    struct standalone *s = arg;
    static _Atomic int next_id;
    int id = atomic_fetch_add(&next_id, 1);
    for (int ph = 1; ph <= 300; ph++) {
        s->slots[id] = ph;
        tp_barrier_wait(&s->b);
        for (int i = 0; i < 3; i++) {
            s->errors[id] += s->slots[i] != ph;
        }
        tp_barrier_wait(&s->b);
    }
    return NULL;
}

static void test_standalone_barrier(void)
{
    static struct standalone s;
    tp_barrier_init(&s.b, 3);
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        pthread_create(&th[i], NULL, standalone_worker, &s);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
    }
    CHECK_EQ_I64(s.errors[0] + s.errors[1] + s.errors[2], 0);
    struct tp_barrier one;
    tp_barrier_init(&one, 0); // clamps to 1: never blocks
    tp_barrier_wait(&one);
}

static void test_thread_counts(void)
{
    unsetenv("LLEM_NUM_THREADS");
    int c = threadpool_default_threads(TP_WORK_COMPUTE);
    int io = threadpool_default_threads(TP_WORK_IO);
    CHECK(c >= 1 && c <= LLEM_MAX_THREADS);
    CHECK_EQ_I64(io, c * 2 > LLEM_MAX_THREADS ? LLEM_MAX_THREADS : c * 2);
    setenv("LLEM_NUM_THREADS", "3", 1);
    CHECK_EQ_I64(threadpool_default_threads(TP_WORK_COMPUTE), 3);
    CHECK_EQ_I64(threadpool_default_threads(TP_WORK_IO), 3);
    CHECK_EQ_I64(threadpool_resolve_threads(TP_WORK_COMPUTE, 5), 5); // explicit wins
    setenv("LLEM_NUM_THREADS", "1000", 1);
    CHECK_EQ_I64(threadpool_default_threads(TP_WORK_COMPUTE), LLEM_MAX_THREADS);
    setenv("LLEM_NUM_THREADS", "3x", 1);
    CHECK_EQ_I64(threadpool_default_threads(TP_WORK_COMPUTE), c); // invalid: ignored
    setenv("LLEM_NUM_THREADS", "-2", 1);
    CHECK_EQ_I64(threadpool_default_threads(TP_WORK_COMPUTE), c);
    setenv("LLEM_NUM_THREADS", "99999999999999999999999", 1);
    CHECK_EQ_I64(threadpool_default_threads(TP_WORK_COMPUTE), c);
    unsetenv("LLEM_NUM_THREADS");
    CHECK_EQ_I64(threadpool_resolve_threads(TP_WORK_COMPUTE, 100), LLEM_MAX_THREADS);
    CHECK_EQ_I64(threadpool_resolve_threads(TP_WORK_COMPUTE, 0), c);
    struct threadpool *pool;
    CHECK_EQ_I64(threadpool_new(0, 0, &pool), LLEM_OK); // clamps to 1: no workers
    CHECK_EQ_I64(threadpool_size(pool), 1);
    threadpool_free(pool);
}

int main(void)
{
    RUN_TEST(test_run_counts);
    RUN_TEST(test_sleep_wake);
    RUN_TEST(test_barrier_in_run);
    RUN_TEST(test_standalone_barrier);
    RUN_TEST(test_thread_counts);
    return TEST_EXIT();
}
