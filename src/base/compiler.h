// base/compiler.h: attributes, the invariant assertion and overflow-checked size arithmetic.
// LLEM_ASSERT guards our own invariants only; anything from a file, socket, argv or env is
// validated and returned as an error instead (DESIGN.md §4).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LLEM_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))
#define LLEM_UNUSED(x) ((void)(x))
#define LLEM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define LLEM_LIKELY(x) __builtin_expect(!!(x), 1)
#define LLEM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LLEM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LLEM_MAX(a, b) ((a) > (b) ? (a) : (b))

_Noreturn void llem_assert_fail(const char *file, int line, const char *expr);

#define LLEM_ASSERT(cond)                                                                  \
    do {                                                                                   \
        if (LLEM_UNLIKELY(!(cond))) {                                                      \
            llem_assert_fail(__FILE__, __LINE__, #cond);                                   \
        }                                                                                  \
    } while (0)

// Checked arithmetic for sizes derived from outside input: false on overflow.
static inline bool size_mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool size_add_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline bool u64_mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool u64_add_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
