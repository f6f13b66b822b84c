// base/threadpool.h: a persistent pool of compute threads. threadpool_run runs fn(arg, ith,
// nth) on nth threads, the caller being ith 0, and returns when all are done; kernels split
// work deterministically by (ith, nth). Between runs workers spin briefly (pause instruction)
// and then sleep on a futex, so back-to-back runs start in well under a microsecond while an
// idle pool burns no CPU. Inside a run, threadpool_barrier separates ops of a graph.
#pragma once
#include <stdatomic.h>

#include "base/err.h"

typedef void (*threadpool_fn)(void *arg, int ith, int nth);

struct threadpool;

// The kind of work, for the default thread count.
enum tp_work {
    TP_WORK_COMPUTE, // bound by cores/memory bandwidth: one thread per physical core
    TP_WORK_IO,      // mostly waiting: twice the physical cores
};

// A pool that can run up to n_threads threads (n_threads - 1 workers plus the caller);
// n_threads is clamped to [1, LLEM_MAX_THREADS]. spin_iters: pause iterations a worker spins
// before sleeping (0 = default, 1 << 13). LLEM_ENOMEM / LLEM_EINTERNAL (thread creation).
enum llem_err threadpool_new(int n_threads, int spin_iters, struct threadpool **out);
// Stops and joins the workers. Must not be called while a run is in progress; pool may be NULL.
void threadpool_free(struct threadpool *pool);
int threadpool_size(const struct threadpool *pool);

// Runs fn on min(nth, size) threads (nth < 1 means all) and waits for all of them. The caller
// runs ith 0. Calls on one pool must not overlap: one owner thread (the runner) drives it, and
// fn must not call threadpool_run on the same pool.
void threadpool_run(struct threadpool *pool, threadpool_fn fn, void *arg, int nth);

// Inside fn: blocks until every one of the run's nth threads has called it (sense-reversing
// barrier). Spins with pause; yields the CPU after a long wait so an oversubscribed
// machine still progresses. Each call costs a few cache-line transfers (~100-200 ns on 2
// threads of one socket).
void threadpool_barrier(struct threadpool *pool);

// Futex helpers for waits inside a run (Linux): threadpool_wait_u32 sleeps while *addr == val
// (it may return early: re-check in a loop); threadpool_wake_u32 wakes every sleeper on addr.
void threadpool_wait_u32(_Atomic unsigned *addr, unsigned val);
void threadpool_wake_u32(_Atomic unsigned *addr);

// A standalone barrier for nth threads, usable outside a pool. Reusable immediately.
struct tp_barrier {
    // phase << 16 | arrivals, in one word and one cache line: an arrival and the release of
    // the waiters then cost one line transfer each. The phase is the reversing "sense".
    _Alignas(64) _Atomic unsigned state;
    int nth; // 1..65535
};
void tp_barrier_init(struct tp_barrier *b, int nth);
void tp_barrier_wait(struct tp_barrier *b);

// Thread count for a kind of work: physical cores (compute) or twice that (I/O), replaced by
// LLEM_NUM_THREADS when set to a valid integer, clamped to [1, LLEM_MAX_THREADS]. An invalid
// LLEM_NUM_THREADS is ignored with a warning.
int threadpool_default_threads(enum tp_work kind);
// `requested` > 0 (an explicit option) wins; otherwise threadpool_default_threads(kind).
int threadpool_resolve_threads(enum tp_work kind, int requested);
