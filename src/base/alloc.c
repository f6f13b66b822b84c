// base/alloc.c: counting, fault-injecting wrappers over the C allocator.
#include "base/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static atomic_uint_fast64_t alloc_count;
static atomic_uint_fast64_t fail_at;      // absolute allocation number that fails; 0 = off
static atomic_int fail_sticky;
static atomic_int fail_fired;

// True when this allocation must fail (injected). One atomic add on the normal path.
static int alloc_tick(void)
{
    uint64_t n = atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1;
    uint64_t k = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (k == 0 || n < k) {
        return 0;
    }
    if (n == k || atomic_load_explicit(&fail_sticky, memory_order_relaxed)) {
        atomic_store(&fail_fired, 1);
        return 1;
    }
    return 0;
}

void *llem_malloc(size_t size)
{
    return alloc_tick() ? NULL : malloc(size ? size : 1);
}

void *llem_calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        return NULL;
    }
    return alloc_tick() ? NULL : calloc(1, total ? total : 1);
}

void *llem_realloc(void *p, size_t size)
{
    return alloc_tick() ? NULL : realloc(p, size ? size : 1);
}

void *llem_aligned_alloc(size_t align, size_t size)
{
    if (alloc_tick()) {
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : 1) != 0) {
        return NULL;
    }
    return p;
}

enum { HUGE_PAGE = 2u << 20 };

static size_t page_round(size_t size, int *ok)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    size_t r = (size + page - 1) & ~(page - 1);
    *ok = size > 0 && r >= size && r <= SIZE_MAX - HUGE_PAGE;
    return r;
}

void *llem_huge_alloc(size_t size)
{
    int ok;
    size_t len = page_round(size, &ok);
    if (!ok || alloc_tick()) {
        return NULL;
    }
    // Map 2 MiB more than needed, then unmap the unaligned head and the tail, so the block
    // starts on a huge-page boundary (a partial last 2 MiB stays in small pages: no waste).
    char *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (raw == MAP_FAILED) {
        return NULL;
    }
    uintptr_t start = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    char *p = (char *)start;
    size_t head = (size_t)(p - raw), tail = HUGE_PAGE - head;
    if (head > 0) {
        munmap(raw, head);
    }
    if (tail > 0) {
        munmap(p + len, tail);
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(p, len, MADV_HUGEPAGE); // a hint: without THP the pages stay small
#endif
    return p;
}

void llem_huge_free(void *p, size_t size)
{
    int ok;
    size_t len = page_round(size, &ok);
    if (p && ok) {
        munmap(p, len);
    }
}

void llem_free(void *p)
{
    free(p);
}

void llem_aligned_free(void *p)
{
    free(p);
}

char *llem_strdup(const char *s)
{
    return llem_strndup(s, strlen(s));
}

char *llem_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = llem_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

uint64_t llem_alloc_count(void)
{
    return atomic_load_explicit(&alloc_count, memory_order_relaxed);
}

void llem_alloc_fail_at(uint64_t k, int sticky)
{
    atomic_store(&fail_fired, 0);
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_at, k ? llem_alloc_count() + k : 0);
}

int llem_alloc_fail_fired(void)
{
    return atomic_load(&fail_fired);
}
