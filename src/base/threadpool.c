// base/threadpool.c: persistent spin-then-futex thread pool and counter barrier (see
// threadpool.h). A run is published through one 32-bit futex word, `job`, holding a sequence
// number and nth; workers acquire it, so fn/arg written before it are visible. The caller
// waits on `pending` (workers still inside fn), spinning first and then sleeping on it too.
#include "base/threadpool.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "base/limits.h"
#include "base/log.h"

#define JOB_NTH_BITS 7 // nth <= 64 fits; the rest of the word is a sequence number
#define JOB_NTH_MASK ((1u << JOB_NTH_BITS) - 1)
#define DEFAULT_SPIN (1 << 13) // ~0.2 ms on Zen 3 (pause ~65 cycles), ~0.5 ms on Skylake-X
#define BARRIER_SPIN_BEFORE_YIELD (1 << 12)

struct worker {
    struct threadpool *pool;
    int ith;
    pthread_t thread;
};

struct threadpool {
    _Alignas(64) _Atomic unsigned job;     // seq << JOB_NTH_BITS | nth (futex word)
    _Alignas(64) _Atomic unsigned pending; // workers of this run not yet done (futex word)
    _Atomic int caller_sleeping;
    _Alignas(64) _Atomic int n_sleeping;   // workers asleep on `job`
    threadpool_fn fn;                      // the run's function and argument, published by
    void *arg;                             // the release on `job`
    bool stop;
    struct tp_barrier barrier;
    int size;
    int spin_iters;
    int n_workers;                         // started successfully
    struct worker *workers;                // size - 1 entries
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

static void futex_wait(_Atomic unsigned *addr, unsigned val)
{
    // EAGAIN (value changed) and EINTR simply return: every caller re-checks in a loop.
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic unsigned *addr, int n)
{
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void threadpool_wait_u32(_Atomic unsigned *addr, unsigned val)
{
    futex_wait(addr, val);
}

void threadpool_wake_u32(_Atomic unsigned *addr)
{
    futex_wake(addr, INT_MAX);
}

// ---- barrier ---------------------------------------------------------------------------------

#define BARRIER_COUNT_MASK 0xFFFFu
#define BARRIER_PHASE_ONE 0x10000u

void tp_barrier_init(struct tp_barrier *b, int nth)
{
    atomic_store(&b->state, 0);
    b->nth = nth < 1 ? 1 : nth > (int)BARRIER_COUNT_MASK ? (int)BARRIER_COUNT_MASK : nth;
}

void tp_barrier_wait(struct tp_barrier *b)
{
    unsigned nth = (unsigned)b->nth;
    if (nth <= 1) {
        return;
    }
    // acq_rel: the last arrival acquires every earlier arrival's writes (the adds form one
    // release sequence) and publishes them, with its own, through the phase store.
    unsigned old = atomic_fetch_add_explicit(&b->state, 1, memory_order_acq_rel);
    if ((old & BARRIER_COUNT_MASK) == nth - 1) {
        // Everyone has arrived, so nobody else writes the word until it changes phase.
        unsigned next = (old & ~BARRIER_COUNT_MASK) + BARRIER_PHASE_ONE;
        atomic_store_explicit(&b->state, next, memory_order_release);
        return;
    }
    unsigned phase = old & ~BARRIER_COUNT_MASK;
    int spins = 0;
    while ((atomic_load_explicit(&b->state, memory_order_acquire) & ~BARRIER_COUNT_MASK) ==
           phase) {
        if (spins < BARRIER_SPIN_BEFORE_YIELD) {
            spins++;
            cpu_relax();
        } else {
            sched_yield(); // oversubscribed: let the late thread run
        }
    }
}

void threadpool_barrier(struct threadpool *pool)
{
    tp_barrier_wait(&pool->barrier);
}

// ---- workers ---------------------------------------------------------------------------------

static unsigned wait_new_job(struct threadpool *pool, unsigned seen)
{
    for (int i = 0; i < pool->spin_iters; i++) {
        unsigned j = atomic_load_explicit(&pool->job, memory_order_acquire);
        if (j != seen) {
            return j;
        }
        cpu_relax();
    }
    for (;;) {
        unsigned j = atomic_load_explicit(&pool->job, memory_order_acquire);
        if (j != seen) {
            return j;
        }
        // seq_cst pairs with the publisher's (store job; load n_sleeping): either it sees us
        // sleeping and wakes us, or we see its new job here / in the futex value check.
        atomic_fetch_add(&pool->n_sleeping, 1);
        if (atomic_load(&pool->job) == seen) {
            futex_wait(&pool->job, seen);
        }
        atomic_fetch_sub(&pool->n_sleeping, 1);
    }
}

static void *worker_main(void *p)
{
    struct worker *w = p;
    struct threadpool *pool = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned job = wait_new_job(pool, seen);
        seen = job;
        if (pool->stop) {
            break;
        }
        int nth = (int)(job & JOB_NTH_MASK);
        if (w->ith >= nth) {
            continue; // not part of this run; fn/arg may already belong to the next one
        }
        pool->fn(pool->arg, w->ith, nth);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_sleeping)) {
            futex_wake(&pool->pending, 1);
        }
    }
    return NULL;
}

// Publishes a job word (after fn/arg/stop are set) and wakes sleepers if any.
static void publish(struct threadpool *pool, int nth)
{
    unsigned seq = (atomic_load_explicit(&pool->job, memory_order_relaxed) >> JOB_NTH_BITS) + 1;
    unsigned job = seq << JOB_NTH_BITS | (unsigned)nth;
    if (job == 0) { // never reuse the initial value workers start from
        job = 1u << JOB_NTH_BITS | (unsigned)nth;
    }
    atomic_store(&pool->job, job);
    if (atomic_load(&pool->n_sleeping) > 0) {
        futex_wake(&pool->job, INT_MAX);
    }
}

static void stop_workers(struct threadpool *pool)
{
    pool->stop = true;
    publish(pool, 1);
    for (int i = 0; i < pool->n_workers; i++) {
        pthread_join(pool->workers[i].thread, NULL);
    }
    pool->n_workers = 0;
}

enum llem_err threadpool_new(int n_threads, int spin_iters, struct threadpool **out)
{
    *out = NULL;
    if (n_threads < 1) {
        n_threads = 1;
    }
    if (n_threads > LLEM_MAX_THREADS) {
        n_threads = LLEM_MAX_THREADS;
    }
    struct threadpool *pool = llem_aligned_alloc(64, sizeof(*pool));
    if (!pool) {
        return LLEM_ENOMEM;
    }
    memset(pool, 0, sizeof(*pool));
    pool->size = n_threads;
    pool->spin_iters = spin_iters > 0 ? spin_iters : DEFAULT_SPIN;
    tp_barrier_init(&pool->barrier, 1);
    if (n_threads > 1) {
        pool->workers = llem_calloc((size_t)n_threads - 1, sizeof(struct worker));
        if (!pool->workers) {
            llem_aligned_free(pool);
            return LLEM_ENOMEM;
        }
    }
    for (int i = 0; i < n_threads - 1; i++) {
        struct worker *w = &pool->workers[i];
        w->pool = pool;
        w->ith = i + 1;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            log_warn("thread pool: cannot start thread %d of %d: %s", i + 1, n_threads,
                     strerror(rc));
            stop_workers(pool);
            llem_free(pool->workers);
            llem_aligned_free(pool);
            return rc == EAGAIN ? LLEM_ENOMEM : LLEM_EINTERNAL;
        }
        pool->n_workers++;
        char name[24]; // <= 11 used: pthread names are capped at 16 bytes
        snprintf(name, sizeof(name), "llem-tp-%d", i + 1);
        pthread_setname_np(w->thread, name);
    }
    *out = pool;
    return LLEM_OK;
}

void threadpool_free(struct threadpool *pool)
{
    if (!pool) {
        return;
    }
    stop_workers(pool);
    llem_free(pool->workers);
    llem_aligned_free(pool);
}

int threadpool_size(const struct threadpool *pool)
{
    return pool->size;
}

void threadpool_run(struct threadpool *pool, threadpool_fn fn, void *arg, int nth)
{
    if (nth < 1 || nth > pool->size) {
        nth = pool->size;
    }
    if (nth == 1) {
        pool->barrier.nth = 1;
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    pool->barrier.nth = nth;
    atomic_store_explicit(&pool->pending, (unsigned)nth - 1, memory_order_relaxed);
    publish(pool, nth);
    fn(arg, 0, nth);
    // Wait for the workers: spin first (they usually finish together), then sleep.
    for (int i = 0; i < pool->spin_iters; i++) {
        if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0) {
            return;
        }
        cpu_relax();
    }
    atomic_store(&pool->caller_sleeping, 1);
    unsigned v;
    while ((v = atomic_load(&pool->pending)) != 0) {
        futex_wait(&pool->pending, v);
    }
    atomic_store(&pool->caller_sleeping, 0);
}

// ---- thread counts ---------------------------------------------------------------------------

static int clamp_threads(long n)
{
    return n < 1 ? 1 : n > LLEM_MAX_THREADS ? LLEM_MAX_THREADS : (int)n;
}

int threadpool_default_threads(enum tp_work kind)
{
    const char *env = getenv("LLEM_NUM_THREADS");
    if (env && *env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (errno == 0 && *end == '\0' && v > 0) {
            return clamp_threads(v);
        }
        log_warn("LLEM_NUM_THREADS=\"%.32s\" is not a positive integer; ignored", env);
    }
    long cores = cpu_physical_cores();
    return clamp_threads(kind == TP_WORK_IO ? 2 * cores : cores);
}

int threadpool_resolve_threads(enum tp_work kind, int requested)
{
    return requested > 0 ? clamp_threads(requested) : threadpool_default_threads(kind);
}
