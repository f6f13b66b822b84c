// base/align.h: alignment constants and overflow-checked rounding, plus the tensor memory
// estimator the planner and the scheduler use to size buffers before allocating anything.
// CPU buffers are 64-byte aligned (a cache line, and an AVX-512 register); device buffers
// 256-byte (CUDA's texture/transaction alignment). All functions are pure and thread-safe.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define LLEM_CPU_ALIGN 64
#define LLEM_DEVICE_ALIGN 256

static inline bool align_is_pow2(size_t a)
{
    return a != 0 && (a & (a - 1)) == 0;
}

// Rounds n up to a multiple of `align` (a power of two). False on overflow or a bad align;
// use this for anything derived from outside input.
static inline bool align_up_ok(size_t n, size_t align, size_t *out)
{
    size_t t;
    if (!align_is_pow2(align) || __builtin_add_overflow(n, align - 1, &t)) {
        return false;
    }
    *out = t & ~(align - 1);
    return true;
}

// Same for sizes we computed ourselves: an overflow or bad align is a bug (asserts).
size_t align_up(size_t n, size_t align);

static inline bool align_ptr_is(const void *p, size_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

// Bytes of one row of ne0 elements for a type stored in blocks of `block_elems` elements
// taking `block_bytes` bytes (F32: 1/4, Q4_0: 32/18). EINVAL if ne0 is not a multiple of
// block_elems or any argument is not positive; ELIMIT on overflow. eb may be NULL.
enum llem_err align_row_bytes(int64_t block_elems, size_t block_bytes, int64_t ne0,
                              size_t *out, struct llem_errbuf *eb);

// Bytes a contiguous tensor of shape ne[4] takes, rounded up to `align` (a power of two, e.g.
// LLEM_CPU_ALIGN), so consecutive tensors in one buffer stay aligned. Same errors; a 0 in
// ne[1..3] is EINVAL (dims are >= 1; unused trailing dims are 1).
enum llem_err align_tensor_bytes(int64_t block_elems, size_t block_bytes, const int64_t ne[4],
                                 size_t align, size_t *out, struct llem_errbuf *eb);
