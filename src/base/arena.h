// base/arena.h: a fixed-capacity bump arena for objects that die together (a model's
// metadata, one request's scratch). The capacity is reserved once at arena_init; arena_alloc
// never grows it and returns NULL when full, so the caller decides (usually LLEM_ENOMEM).
// Not thread-safe: one owner at a time. Nothing is freed individually; arena_reset is O(1).
#pragma once
#include <stddef.h>

#include "base/err.h"

struct arena {
    unsigned char *base;     // cap_bytes of storage, LLEM_CPU_ALIGN aligned
    size_t cap_bytes;
    size_t used_bytes;       // bump offset, including alignment padding
    size_t high_water_bytes; // largest used_bytes since init (survives reset): sizing hint
};

// Reserves cap_bytes (> 0). LLEM_ENOMEM if that fails (a is then zeroed; deinit is safe).
enum llem_err arena_init(struct arena *a, size_t cap_bytes);
// Releases the storage; a may be NULL or zeroed. Pointers from the arena die here.
void arena_deinit(struct arena *a);
// size bytes aligned to `align` (power of two <= 4096; 0 means 16; anything else is a bug and
// asserts). NULL when the rest of the capacity does not fit it; the arena is then unchanged.
// A size-0 request returns a pointer that must not be dereferenced (may equal the next one).
void *arena_alloc(struct arena *a, size_t size, size_t align);
// Like arena_alloc, zero-filled.
void *arena_calloc(struct arena *a, size_t n, size_t size, size_t align);
// Copy of s (NUL-terminated) in the arena, or NULL when full. arena_strndup copies at most n
// bytes and always terminates.
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
// Forgets every allocation (O(1)); the storage is kept for reuse.
void arena_reset(struct arena *a);
// Remaining bytes (ignoring alignment of the next request).
size_t arena_avail(const struct arena *a);
