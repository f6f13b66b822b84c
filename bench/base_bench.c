// bench/base_bench.c: micro-benchmarks of the base library: buffer pool get/put against
// direct llem_aligned_alloc/free and against a mutex-guarded free list (1 and 2 threads),
// metrics record cost, tp_barrier / threadpool_barrier cost on 2 threads, and threadpool_run
// dispatch cost. Prints ns/op and allocations/op (llem_alloc_count). Usage: bench_base_bench
// [scale], scale multiplies the iteration counts (default 1).
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/bufpool.h"
#include "base/metrics.h"
#include "base/threadpool.h"
#include "base/timeutil.h"

static long g_scale = 1;

// Each figure is the best of REPS trials: the build machine is shared and noisy, and the best
// trial is the one least disturbed by other processes.
enum { REPS = 5 };

static void report(const char *name, int threads, double ns_per_op, double allocs_per_op)
{
    printf("%-44s threads=%d %9.1f ns/op %8.3f allocs/op\n", name, threads, ns_per_op,
           allocs_per_op);
}

// ---- a mutex-guarded free list, the alternative the pool design was measured against ------

struct mutex_pool {
    pthread_mutex_t lock;
    void *items[64];
    int n;
};

static void *mutex_pool_get(struct mutex_pool *m, size_t size)
{
    pthread_mutex_lock(&m->lock);
    void *p = m->n ? m->items[--m->n] : NULL;
    pthread_mutex_unlock(&m->lock);
    return p ? p : llem_aligned_alloc(64, size);
}

static void mutex_pool_put(struct mutex_pool *m, void *p)
{
    pthread_mutex_lock(&m->lock);
    if (m->n < 64) {
        m->items[m->n++] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    llem_aligned_free(p);
}

// ---- buffer pool ---------------------------------------------------------------------------

enum pool_mode { MODE_POOL, MODE_DIRECT, MODE_MUTEX };

struct pool_job {
    enum pool_mode mode;
    struct bufpool *pool;
    struct mutex_pool *mp;
    size_t size;
    long iters;
    pthread_barrier_t *start;
    double ns;
    int errors;
};

static void *pool_loop(void *arg)
{
    struct pool_job *j = arg;
    pthread_barrier_wait(j->start);
    int64_t t0 = time_now_ns();
    for (long i = 0; i < j->iters; i++) {
        if (j->mode == MODE_POOL) {
            struct buf b = bufpool_get(j->pool, j->size);
            ((volatile char *)b.data)[0] = 1; // touch it, as a user would
            bufpool_put(j->pool, b);
        } else if (j->mode == MODE_MUTEX) {
            void *p = mutex_pool_get(j->mp, j->size);
            ((volatile char *)p)[0] = 1;
            mutex_pool_put(j->mp, p);
        } else {
            void *p = llem_aligned_alloc(64, j->size);
            ((volatile char *)p)[0] = 1;
            llem_aligned_free(p);
        }
    }
    j->ns = (double)(time_now_ns() - t0) / (double)j->iters;
    return NULL;
}

static void bench_pool(enum pool_mode mode, size_t size, int nthreads, const char *name)
{
    struct bufpool pool;
    struct mutex_pool mp = {.n = 0};
    pthread_mutex_init(&mp.lock, NULL);
    if (bufpool_init(&pool, NULL) != LLEM_OK) {
        fprintf(stderr, "bufpool_init failed\n");
        exit(1);
    }
    // Validate and warm up: one buffer per thread in the pool.
    struct buf warm[2];
    for (int i = 0; i < nthreads; i++) {
        warm[i] = bufpool_get(&pool, size);
        if (!warm[i].data || warm[i].cap < size) {
            fprintf(stderr, "bufpool_get returned a bad buffer\n");
            exit(1);
        }
    }
    for (int i = 0; i < nthreads; i++) {
        bufpool_put(&pool, warm[i]);
        mutex_pool_put(&mp, llem_aligned_alloc(64, size));
    }
    long iters = (mode == MODE_DIRECT && size >= (1 << 20) ? 40000 : 400000) * g_scale;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    struct pool_job jobs[2];
    pthread_t th[2];
    uint64_t a0 = llem_alloc_count();
    double best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        for (int i = 0; i < nthreads; i++) {
            jobs[i] = (struct pool_job){mode, &pool, &mp, size, iters, &start, 0, 0};
            if (i > 0) {
                pthread_create(&th[i], NULL, pool_loop, &jobs[i]);
            }
        }
        pool_loop(&jobs[0]);
        for (int i = 1; i < nthreads; i++) {
            pthread_join(th[i], NULL);
        }
        double ns = 0;
        for (int i = 0; i < nthreads; i++) {
            ns += jobs[i].ns;
        }
        best = ns / nthreads < best ? ns / nthreads : best;
    }
    uint64_t allocs = llem_alloc_count() - a0;
    report(name, nthreads, best, (double)allocs / (double)((long)REPS * iters * nthreads));
    pthread_barrier_destroy(&start);
    for (int i = 0; i < mp.n; i++) {
        llem_aligned_free(mp.items[i]);
    }
    pthread_mutex_destroy(&mp.lock);
    bufpool_deinit(&pool);
}

// ---- metrics -------------------------------------------------------------------------------

struct metrics_job {
    int counter, timer;
    long iters;
    pthread_barrier_t *start;
    double ns_counter, ns_timer;
};

static void *metrics_loop(void *arg)
{
    struct metrics_job *j = arg;
    pthread_barrier_wait(j->start);
    int64_t t0 = time_now_ns();
    for (long i = 0; i < j->iters; i++) {
        metrics_counter_add(j->counter, (uint64_t)i);
    }
    int64_t t1 = time_now_ns();
    for (long i = 0; i < j->iters; i++) {
        metrics_timer_record(j->timer, (uint64_t)i & 0xFFFFF);
    }
    int64_t t2 = time_now_ns();
    j->ns_counter = (double)(t1 - t0) / (double)j->iters;
    j->ns_timer = (double)(t2 - t1) / (double)j->iters;
    return NULL;
}

static void bench_metrics(int nthreads)
{
    int counter, timer;
    metrics_register(METRIC_COUNTER, "bench_counter_total", "bench", &counter);
    metrics_register(METRIC_TIMER, "bench_seconds", "bench", &timer);
    metrics_counter_add(counter, 1); // claims this thread's shard (validated below)
    long iters = 2000000 * g_scale;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    struct metrics_job jobs[2];
    pthread_t th;
    uint64_t a0 = llem_alloc_count();
    double best_c = 1e30, best_t = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        uint64_t before = metrics_counter_get(counter);
        for (int i = 0; i < nthreads; i++) {
            jobs[i] = (struct metrics_job){counter, timer, iters, &start, 0, 0};
        }
        if (nthreads == 2) {
            pthread_create(&th, NULL, metrics_loop, &jobs[1]);
        }
        metrics_loop(&jobs[0]);
        if (nthreads == 2) {
            pthread_join(th, NULL);
        }
        uint64_t want = before + (uint64_t)nthreads * ((uint64_t)iters * (uint64_t)(iters - 1) / 2);
        if (metrics_counter_get(counter) != want) {
            fprintf(stderr, "metrics: counter total is wrong\n");
            exit(1);
        }
        double nc = 0, nt = 0;
        for (int i = 0; i < nthreads; i++) {
            nc += jobs[i].ns_counter;
            nt += jobs[i].ns_timer;
        }
        best_c = nc / nthreads < best_c ? nc / nthreads : best_c;
        best_t = nt / nthreads < best_t ? nt / nthreads : best_t;
    }
    uint64_t allocs = llem_alloc_count() - a0;
    double per = (double)allocs / (double)(REPS * 2 * iters * nthreads);
    report("metrics_counter_add", nthreads, best_c, per);
    report("metrics_timer_record", nthreads, best_t, per);
    pthread_barrier_destroy(&start);
    int64_t t0 = time_now_ns();
    long n = 1000000 * g_scale;
    for (long i = 0; i < n; i++) {
        metrics_timer_since(timer, metrics_now_ns());
    }
    if (nthreads == 1) {
        report("metrics_now_ns + metrics_timer_since", 1,
               (double)(time_now_ns() - t0) / (double)n, 0);
    }
}

// ---- thread pool ---------------------------------------------------------------------------

struct barrier_job {
    struct threadpool *pool;
    long iters;
    _Atomic long sum;
};

static void barrier_fn(void *arg, int ith, int nth)
{
    struct barrier_job *j = arg;
    (void)nth;
    for (long i = 0; i < j->iters; i++) {
        threadpool_barrier(j->pool);
    }
    atomic_fetch_add(&j->sum, ith + 1);
}

static void noop_fn(void *arg, int ith, int nth)
{
    (void)nth;
    atomic_fetch_add((_Atomic long *)arg, ith + 1);
}

static void bench_threadpool(void)
{
    struct threadpool *pool;
    if (threadpool_new(2, 0, &pool) != LLEM_OK) {
        fprintf(stderr, "threadpool_new failed\n");
        exit(1);
    }
    struct barrier_job bj = {pool, 1000, 0};
    threadpool_run(pool, barrier_fn, &bj, 2); // warm-up and validation
    if (atomic_load(&bj.sum) != 3) {
        fprintf(stderr, "threadpool: barrier run did not reach both threads\n");
        exit(1);
    }
    bj.iters = 200000 * g_scale;
    uint64_t a0 = llem_alloc_count();
    double best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        int64_t t0 = time_now_ns();
        threadpool_run(pool, barrier_fn, &bj, 2);
        double ns = (double)(time_now_ns() - t0) / (double)bj.iters;
        best = ns < best ? ns : best;
    }
    report("threadpool_barrier", 2, best,
           (double)(llem_alloc_count() - a0) / (double)(REPS * bj.iters));

    _Atomic long sum = 0;
    long runs = 40000 * g_scale;
    a0 = llem_alloc_count();
    best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        int64_t t0 = time_now_ns();
        for (long i = 0; i < runs; i++) {
            threadpool_run(pool, noop_fn, &sum, 2);
        }
        double ns = (double)(time_now_ns() - t0) / (double)runs;
        best = ns < best ? ns : best;
    }
    if (atomic_load(&sum) != 3 * runs * REPS) {
        fprintf(stderr, "threadpool: dispatch lost runs\n");
        exit(1);
    }
    report("threadpool_run dispatch (empty fn, back-to-back)", 2, best,
           (double)(llem_alloc_count() - a0) / (double)(REPS * runs));
    threadpool_free(pool);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        g_scale = strtol(argv[1], NULL, 10);
        if (g_scale < 1 || g_scale > 1000) {
            fprintf(stderr, "usage: %s [scale 1..1000]\n", argv[0]);
            return 2;
        }
    }
    for (int t = 1; t <= 2; t++) {
        bench_pool(MODE_POOL, 128 << 10, t, "bufpool get/put 128 KiB");
        bench_pool(MODE_MUTEX, 128 << 10, t, "mutex free list get/put 128 KiB");
        bench_pool(MODE_DIRECT, 128 << 10, t, "llem_aligned_alloc/free 128 KiB");
        bench_pool(MODE_POOL, 4 << 20, t, "bufpool get/put 4 MiB");
        bench_pool(MODE_DIRECT, 4 << 20, t, "llem_aligned_alloc/free 4 MiB");
    }
    bench_metrics(1);
    bench_metrics(2);
    bench_threadpool();
    return 0;
}
