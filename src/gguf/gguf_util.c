// gguf/gguf_util.c: the chunked arena and the string index of gguf_int.h, and the metadata
// value-type table. Shared by the reader and the writer; nothing here sees file bytes.
#include <string.h>

#include "base/alloc.h"
#include "gguf/gguf_int.h"

// ---- arena ----------------------------------------------------------------------------------

struct gguf_arena_chunk {
    struct gguf_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define ARENA_CHUNK_BYTES (64u << 10)

void *gguf_arena_alloc(struct gguf_arena *a, size_t size, size_t align)
{
    struct gguf_arena_chunk *c = a->head;
    if (c) {
        size_t at = (c->used + (align - 1)) & ~(align - 1);
        if (at <= c->cap && size <= c->cap - at) {
            c->used = at + size;
            return c->data + at;
        }
    }
    // Big requests get a chunk of their own, placed behind the current one so that the
    // current chunk's free tail stays usable for the small requests that follow.
    size_t cap = size > ARENA_CHUNK_BYTES / 4 ? size : ARENA_CHUNK_BYTES;
    size_t total;
    if (!size_add_ok(sizeof(struct gguf_arena_chunk), cap, &total)) {
        return NULL;
    }
    struct gguf_arena_chunk *n = llem_malloc(total);
    if (!n) {
        return NULL;
    }
    n->cap = cap;
    n->used = size;
    if (c && cap == size) {
        n->next = c->next;
        c->next = n;
    } else {
        n->next = c;
        a->head = n;
    }
    return n->data;
}

char *gguf_arena_strndup(struct gguf_arena *a, const char *s, size_t n)
{
    char *d = gguf_arena_alloc(a, n + 1, 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

void gguf_arena_free(struct gguf_arena *a)
{
    if (!a) {
        return;
    }
    struct gguf_arena_chunk *c = a->head;
    while (c) {
        struct gguf_arena_chunk *next = c->next;
        llem_free(c);
        c = next;
    }
    a->head = NULL;
}

// ---- string index ---------------------------------------------------------------------------

static uint64_t hash_str(const char *s) // FNV-1a
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static const char *name_at(const void *base, size_t stride, uint32_t i)
{
    const char *const *p =
        (const char *const *)(const void *)((const char *)base + (size_t)i * stride);
    return *p;
}

enum llem_err gguf_index_init(struct gguf_index *ix, size_t max_entries)
{
    size_t cap = 8;
    while (cap < max_entries * 2) {
        cap *= 2;
    }
    ix->slot = llem_calloc(cap, sizeof *ix->slot);
    ix->mask = cap - 1;
    return ix->slot ? LLEM_OK : LLEM_ENOMEM;
}

void gguf_index_deinit(struct gguf_index *ix)
{
    if (ix) {
        llem_free(ix->slot);
        ix->slot = NULL;
        ix->mask = 0;
    }
}

int64_t gguf_index_find(const struct gguf_index *ix, const void *base, size_t stride,
                        const char *name)
{
    if (!ix->slot) {
        return -1;
    }
    for (size_t h = hash_str(name) & ix->mask;; h = (h + 1) & ix->mask) {
        uint32_t s = ix->slot[h];
        if (s == 0) {
            return -1;
        }
        if (strcmp(name_at(base, stride, s - 1), name) == 0) {
            return (int64_t)(s - 1);
        }
    }
}

void gguf_index_insert(struct gguf_index *ix, const void *base, size_t stride, uint32_t i)
{
    size_t h = hash_str(name_at(base, stride, i)) & ix->mask;
    while (ix->slot[h] != 0) {
        h = (h + 1) & ix->mask;
    }
    ix->slot[h] = i + 1;
}

// ---- value types ----------------------------------------------------------------------------

size_t gguf_value_type_size(enum gguf_value_type t)
{
    switch (t) {
    case GGUF_VALUE_UINT8:
    case GGUF_VALUE_INT8:
    case GGUF_VALUE_BOOL: return 1;
    case GGUF_VALUE_UINT16:
    case GGUF_VALUE_INT16: return 2;
    case GGUF_VALUE_UINT32:
    case GGUF_VALUE_INT32:
    case GGUF_VALUE_FLOAT32: return 4;
    case GGUF_VALUE_UINT64:
    case GGUF_VALUE_INT64:
    case GGUF_VALUE_FLOAT64: return 8;
    case GGUF_VALUE_STRING:
    case GGUF_VALUE_ARRAY:
    case GGUF_VALUE_COUNT: break;
    }
    return 0;
}

const char *gguf_value_type_name(enum gguf_value_type t)
{
    static const char *const names[GGUF_VALUE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64",
    };
    return (unsigned)t < GGUF_VALUE_COUNT ? names[t] : "?";
}
