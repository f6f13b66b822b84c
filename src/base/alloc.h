// base/alloc.h: the only way llem allocates heap memory. Every call is counted (metrics,
// "allocations per op" in benchmarks), and tests can make the k-th allocation fail to prove
// that every failure path returns LLEM_ENOMEM without leaking (SQLite/curl torture style).
// Thread-safe. llem_free(NULL) is a no-op.
#pragma once
#include <stddef.h>
#include <stdint.h>

void *llem_malloc(size_t size);
void *llem_calloc(size_t n, size_t size);           // NULL on n*size overflow too
void *llem_realloc(void *p, size_t size);           // on failure p is untouched
void *llem_aligned_alloc(size_t align, size_t size); // align: power of two >= sizeof(void*)
void llem_free(void *p);
void llem_aligned_free(void *p);
char *llem_strdup(const char *s);

// Large, long-lived blocks (repacked weights, KV cache) mapped straight from the kernel,
// 2 MiB-aligned and marked MADV_HUGEPAGE: a stream over them then misses the TLB once per
// 2 MiB instead of once per 4 KiB page, where the kernel's transparent huge pages are in
// "madvise" or "always" mode (elsewhere the hint is ignored and they are ordinary pages).
// Zero-filled. Counted and fault-injectable like every allocation. Free with the same size.
void *llem_huge_alloc(size_t size);
void llem_huge_free(void *p, size_t size);
char *llem_strndup(const char *s, size_t n);

// Number of allocations (successful or injected failures) since start; for tests/benchmarks.
uint64_t llem_alloc_count(void);

// Fault injection for tests: the k-th allocation from now (1-based) and, if `sticky`, every
// one after it returns NULL; k = 0 turns injection off. Returns whether the armed failure fired
// since the last call (so a loop can stop once a run no longer reaches allocation k).
void llem_alloc_fail_at(uint64_t k, int sticky);
int llem_alloc_fail_fired(void);
