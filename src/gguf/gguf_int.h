// gguf/gguf_int.h: private helpers shared by the GGUF reader and writer: a chunked bump arena
// (all strings and arrays of one open file live in it, so open does few allocations and close
// is one walk), and an open-addressing string index (key / tensor-name lookup and duplicate
// detection in O(1), so a hostile file with 65k keys cannot make open quadratic).
// Limits on file contents live in base/limits.h (LLEM_GGUF_*).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "gguf/gguf.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf/: the reader and writer copy little-endian fields directly; port before use"
#endif

// ---- arena ----------------------------------------------------------------------------------

struct gguf_arena_chunk;
struct gguf_arena {
    struct gguf_arena_chunk *head; // newest chunk first
};

// size bytes aligned to `align` (power of two <= 16). NULL when out of memory.
void *gguf_arena_alloc(struct gguf_arena *a, size_t size, size_t align);
char *gguf_arena_strndup(struct gguf_arena *a, const char *s, size_t n); // always terminates
void gguf_arena_free(struct gguf_arena *a);                              // a may be zeroed

// ---- string index ---------------------------------------------------------------------------

// Maps a name to an entry index in a caller's array whose elements start with a
// `const char *` name (struct gguf_tensor_info, the reader's and writer's kv records), so one
// index type serves keys and tensors. Capacity is fixed at init (>= 2x entries).
struct gguf_index {
    uint32_t *slot; // entry index + 1; 0 = empty
    size_t mask;    // capacity - 1
};

enum llem_err gguf_index_init(struct gguf_index *ix, size_t max_entries); // LLEM_ENOMEM
void gguf_index_deinit(struct gguf_index *ix);
// Entry index holding `name`, or -1. `base`/`stride` describe the caller's array.
int64_t gguf_index_find(const struct gguf_index *ix, const void *base, size_t stride,
                        const char *name);
// Adds entry i (whose name must not be present yet). The index must have room (init size).
void gguf_index_insert(struct gguf_index *ix, const void *base, size_t stride, uint32_t i);

// Size in bytes of one element of a fixed-size metadata type; 0 for STRING/ARRAY/unknown.
size_t gguf_value_type_size(enum gguf_value_type t);
