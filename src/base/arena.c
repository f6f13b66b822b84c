// base/arena.c: fixed-capacity bump allocator (see arena.h).
#include "base/arena.h"

#include <string.h>

#include "base/align.h"
#include "base/alloc.h"

enum llem_err arena_init(struct arena *a, size_t cap_bytes)
{
    memset(a, 0, sizeof(*a));
    size_t cap;
    if (cap_bytes == 0 || !align_up_ok(cap_bytes, LLEM_CPU_ALIGN, &cap)) {
        return LLEM_EINVAL;
    }
    a->base = llem_aligned_alloc(LLEM_CPU_ALIGN, cap);
    if (!a->base) {
        return LLEM_ENOMEM;
    }
    a->cap_bytes = cap_bytes;
    return LLEM_OK;
}

void arena_deinit(struct arena *a)
{
    if (!a) {
        return;
    }
    llem_aligned_free(a->base);
    memset(a, 0, sizeof(*a));
}

void *arena_alloc(struct arena *a, size_t size, size_t align)
{
    if (align == 0) {
        align = 16;
    }
    LLEM_ASSERT(align_is_pow2(align) && align <= 4096);
    if (!a->base) {
        return NULL;
    }
    // Align the address, not the offset: base is only 64-byte aligned.
    uintptr_t cur = (uintptr_t)a->base + a->used_bytes;
    uintptr_t start = (cur + (align - 1)) & ~(uintptr_t)(align - 1);
    size_t off = (size_t)(start - (uintptr_t)a->base);
    if (off > a->cap_bytes || size > a->cap_bytes - off) {
        return NULL;
    }
    a->used_bytes = off + size;
    if (a->used_bytes > a->high_water_bytes) {
        a->high_water_bytes = a->used_bytes;
    }
    return a->base + off;
}

void *arena_calloc(struct arena *a, size_t n, size_t size, size_t align)
{
    size_t total;
    if (!size_mul_ok(n, size, &total)) {
        return NULL;
    }
    void *p = arena_alloc(a, total, align);
    if (p) {
        memset(p, 0, total);
    }
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = arena_alloc(a, len + 1, 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

void arena_reset(struct arena *a)
{
    a->used_bytes = 0;
}

size_t arena_avail(const struct arena *a)
{
    return a->cap_bytes - a->used_bytes;
}
