// gguf/gguf_write.c: the GGUF v3 writer. Metadata values are deep-copied into the writer;
// tensor data is borrowed and streamed straight to the file after the header, each tensor
// padded to the alignment (32, or general.alignment when set) as llama.cpp expects: tensors
// are laid out in the order added, offsets increasing, every one (the last too) padded.
// The file appears atomically (base/fs.h fs_atomic) or not at all.
#include <inttypes.h>
#include <string.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/limits.h"
#include "gguf/gguf_int.h"

// llama.cpp refuses names of GGML_MAX_NAME (64) bytes or more; stay loadable there.
#define WRITER_MAX_NAME_BYTES 63u

struct wkv {
    char *key; // first member: gguf_index reads it
    struct gguf_value v;
    struct gguf_arena mem; // the value's strings and arrays
};

struct wtensor {
    char *name; // first member: gguf_index reads it
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t n_bytes;
    const void *data; // borrowed
};

struct gguf_writer {
    struct wkv *kv;
    size_t n_kv, cap_kv;
    struct wtensor *t;
    size_t n_t, cap_t;
    struct gguf_index kv_ix, t_ix;
};

struct gguf_writer *gguf_writer_new(void)
{
    return llem_calloc(1, sizeof(struct gguf_writer));
}

static void wkv_clear(struct wkv *kv)
{
    llem_free(kv->key);
    gguf_arena_free(&kv->mem);
}

void gguf_writer_free(struct gguf_writer *w)
{
    if (!w) {
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        wkv_clear(&w->kv[i]);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        llem_free(w->t[i].name);
    }
    llem_free(w->kv);
    llem_free(w->t);
    gguf_index_deinit(&w->kv_ix);
    gguf_index_deinit(&w->t_ix);
    llem_free(w);
}

// Makes room for one more entry in an array + index pair, rebuilding the index when it would
// pass half full. Nothing changes on failure.
static enum llem_err grow(void **arr, size_t *cap, size_t n, size_t elem, struct gguf_index *ix)
{
    if (n < *cap) {
        return LLEM_OK;
    }
    size_t ncap = *cap ? *cap * 2 : 16;
    void *na = llem_realloc(*arr, ncap * elem);
    if (!na) {
        return LLEM_ENOMEM;
    }
    *arr = na;
    struct gguf_index nix;
    if (gguf_index_init(&nix, ncap) != LLEM_OK) {
        return LLEM_ENOMEM; // the bigger array is kept; cap stays, so the next call retries
    }
    for (size_t i = 0; i < n; i++) {
        gguf_index_insert(&nix, na, elem, (uint32_t)i);
    }
    gguf_index_deinit(ix);
    *ix = nix;
    *cap = ncap;
    return LLEM_OK;
}

// ---- metadata -------------------------------------------------------------------------------

// Deep copy of v into arena `mem`. EINVAL for a malformed value (bad type, depth, NULL data).
static enum llem_err copy_value(struct gguf_arena *mem, struct gguf_value *dst,
                                const struct gguf_value *src, unsigned depth)
{
    *dst = *src;
    if ((unsigned)src->type >= GGUF_VALUE_COUNT) {
        return LLEM_EINVAL;
    }
    if (src->type == GGUF_VALUE_STRING) {
        if (!src->str || strlen(src->str) > LLEM_GGUF_MAX_STRING_BYTES) {
            return LLEM_EINVAL;
        }
        dst->str = gguf_arena_strndup(mem, src->str, strlen(src->str));
        return dst->str ? LLEM_OK : LLEM_ENOMEM;
    }
    if (src->type != GGUF_VALUE_ARRAY) {
        return LLEM_OK;
    }
    enum gguf_value_type et = src->arr.type;
    uint64_t n = src->arr.n;
    if ((unsigned)et >= GGUF_VALUE_COUNT || n > LLEM_GGUF_MAX_ARRAY_ELEMS ||
        (n > 0 && !src->arr.data) ||
        (et == GGUF_VALUE_ARRAY && depth + 1 >= LLEM_GGUF_MAX_ARRAY_DEPTH)) {
        return LLEM_EINVAL;
    }
    dst->arr.data = NULL;
    if (n == 0) {
        return LLEM_OK;
    }
    size_t esz = gguf_value_type_size(et);
    if (esz) {
        void *d = gguf_arena_alloc(mem, (size_t)n * esz, 8);
        if (!d) {
            return LLEM_ENOMEM;
        }
        memcpy(d, src->arr.data, (size_t)n * esz);
        if (et == GGUF_VALUE_BOOL) {
            uint8_t *b = d;
            for (uint64_t i = 0; i < n; i++) {
                b[i] = b[i] != 0; // the format's bool is 0 or 1
            }
        }
        dst->arr.data = d;
        return LLEM_OK;
    }
    if (et == GGUF_VALUE_STRING) {
        const char *const *ss = src->arr.data;
        const char **ds = gguf_arena_alloc(mem, (size_t)n * sizeof *ds, 8);
        if (!ds) {
            return LLEM_ENOMEM;
        }
        for (uint64_t i = 0; i < n; i++) {
            if (!ss[i] || strlen(ss[i]) > LLEM_GGUF_MAX_STRING_BYTES) {
                return LLEM_EINVAL;
            }
            ds[i] = gguf_arena_strndup(mem, ss[i], strlen(ss[i]));
            if (!ds[i]) {
                return LLEM_ENOMEM;
            }
        }
        dst->arr.data = ds;
        return LLEM_OK;
    }
    const struct gguf_value *sv = src->arr.data;
    struct gguf_value *dv = gguf_arena_alloc(mem, (size_t)n * sizeof *dv, 8);
    if (!dv) {
        return LLEM_ENOMEM;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (sv[i].type != GGUF_VALUE_ARRAY) {
            return LLEM_EINVAL; // elements of an array of arrays are arrays
        }
        enum llem_err rc = copy_value(mem, &dv[i], &sv[i], depth + 1);
        if (rc != LLEM_OK) {
            return rc;
        }
    }
    dst->arr.data = dv;
    return LLEM_OK;
}

enum llem_err gguf_writer_set_value(struct gguf_writer *w, const char *key,
                                    const struct gguf_value *v)
{
    if (!w || !key || !*key || !v || strlen(key) > LLEM_GGUF_MAX_STRING_BYTES) {
        return LLEM_EINVAL;
    }
    struct wkv nkv = {0};
    enum llem_err rc = copy_value(&nkv.mem, &nkv.v, v, 0);
    if (rc != LLEM_OK) {
        gguf_arena_free(&nkv.mem);
        return rc;
    }
    int64_t at = gguf_index_find(&w->kv_ix, w->kv, sizeof *w->kv, key);
    if (at >= 0) { // replace in place, keeping the key's position
        nkv.key = w->kv[at].key;
        w->kv[at].key = NULL;
        wkv_clear(&w->kv[at]);
        w->kv[at] = nkv;
        return LLEM_OK;
    }
    nkv.key = llem_strdup(key);
    if (!nkv.key ||
        grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv, &w->kv_ix) != LLEM_OK) {
        wkv_clear(&nkv);
        return LLEM_ENOMEM;
    }
    w->kv[w->n_kv] = nkv;
    gguf_index_insert(&w->kv_ix, w->kv, sizeof *w->kv, (uint32_t)w->n_kv);
    w->n_kv++;
    return LLEM_OK;
}

enum llem_err gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
    struct gguf_value x = {.type = GGUF_VALUE_UINT32, .u64 = v};
    return gguf_writer_set_value(w, key, &x);
}

enum llem_err gguf_writer_set_i32(struct gguf_writer *w, const char *key, int32_t v)
{
    struct gguf_value x = {.type = GGUF_VALUE_INT32, .i64 = v};
    return gguf_writer_set_value(w, key, &x);
}

enum llem_err gguf_writer_set_u64(struct gguf_writer *w, const char *key, uint64_t v)
{
    struct gguf_value x = {.type = GGUF_VALUE_UINT64, .u64 = v};
    return gguf_writer_set_value(w, key, &x);
}

enum llem_err gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v)
{
    struct gguf_value x = {.type = GGUF_VALUE_FLOAT32, .f64 = (double)v};
    return gguf_writer_set_value(w, key, &x);
}

enum llem_err gguf_writer_set_bool(struct gguf_writer *w, const char *key, bool v)
{
    struct gguf_value x = {.type = GGUF_VALUE_BOOL, .b = v};
    return gguf_writer_set_value(w, key, &x);
}

enum llem_err gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *v)
{
    struct gguf_value x = {.type = GGUF_VALUE_STRING, .str = v};
    return gguf_writer_set_value(w, key, &x);
}

enum llem_err gguf_writer_set_arr(struct gguf_writer *w, const char *key,
                                  enum gguf_value_type elem_type, const void *data, uint64_t n)
{
    struct gguf_value x = {.type = GGUF_VALUE_ARRAY};
    x.arr.type = elem_type;
    x.arr.n = n;
    x.arr.data = data;
    return gguf_writer_set_value(w, key, &x);
}

enum llem_err gguf_writer_set_arr_str(struct gguf_writer *w, const char *key,
                                      const char *const *strs, uint64_t n)
{
    return gguf_writer_set_arr(w, key, GGUF_VALUE_STRING, strs, n);
}

enum llem_err gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_file *src,
                                  const char *key)
{
    if (!w || !src) {
        return LLEM_EINVAL;
    }
    if (key) {
        const struct gguf_value *v = gguf_get(src, key);
        return v ? gguf_writer_set_value(w, key, v) : LLEM_ENOTFOUND;
    }
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        enum llem_err rc = gguf_writer_set_value(w, gguf_kv_key(src, i), gguf_kv_value(src, i));
        if (rc != LLEM_OK) {
            return rc;
        }
    }
    return LLEM_OK;
}

// ---- tensors --------------------------------------------------------------------------------

enum llem_err gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t type,
                                     uint32_t n_dims, const int64_t *ne, const void *data)
{
    if (!w || !name || !*name || strlen(name) > WRITER_MAX_NAME_BYTES || !ne || n_dims < 1 ||
        n_dims > GGUF_MAX_DIMS || w->n_t >= LLEM_GGUF_MAX_TENSORS) {
        return LLEM_EINVAL;
    }
    struct wtensor t = {.type = type, .n_dims = n_dims, .data = data};
    uint64_t n_elem = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] <= 0 || !u64_mul_ok(n_elem, (uint64_t)t.ne[d], &n_elem) ||
            n_elem > LLEM_GGUF_MAX_TENSOR_ELEMS) {
            return LLEM_EINVAL;
        }
    }
    size_t row = gguf_row_bytes(type, t.ne[0]);
    if (row == 0 || !u64_mul_ok(row, n_elem / (uint64_t)t.ne[0], &t.n_bytes)) {
        return LLEM_EINVAL; // unknown type or a row that is not whole blocks
    }
    if (gguf_index_find(&w->t_ix, w->t, sizeof *w->t, name) >= 0) {
        return LLEM_EINVAL;
    }
    t.name = llem_strdup(name);
    if (!t.name || grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t, &w->t_ix) != LLEM_OK) {
        llem_free(t.name);
        return LLEM_ENOMEM;
    }
    w->t[w->n_t] = t;
    gguf_index_insert(&w->t_ix, w->t, sizeof *w->t, (uint32_t)w->n_t);
    w->n_t++;
    return LLEM_OK;
}

enum llem_err gguf_writer_set_tensor_data(struct gguf_writer *w, const char *name, const void *data)
{
    int64_t i = w && name ? gguf_index_find(&w->t_ix, w->t, sizeof *w->t, name) : -1;
    if (i < 0) {
        return w && name ? LLEM_ENOTFOUND : LLEM_EINVAL;
    }
    w->t[i].data = data;
    return LLEM_OK;
}

// ---- serialization --------------------------------------------------------------------------

// A growable byte buffer for the header (metadata + tensor infos), written in one go.
struct hbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

static void put(struct hbuf *b, const void *data, size_t n)
{
    if (b->oom || n == 0) {
        return;
    }
    if (n > b->cap - b->len) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap - b->len < n) {
            if (ncap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            ncap *= 2;
        }
        uint8_t *np = llem_realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u32(struct hbuf *b, uint32_t v)
{
    put(b, &v, 4);
}
static void put_u64(struct hbuf *b, uint64_t v)
{
    put(b, &v, 8);
}

static void put_str(struct hbuf *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

static void put_value(struct hbuf *b, const struct gguf_value *v)
{
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } raw;
    switch (v->type) {
    case GGUF_VALUE_UINT8: raw.u8 = (uint8_t)v->u64; break;
    case GGUF_VALUE_INT8: raw.i8 = (int8_t)v->i64; break;
    case GGUF_VALUE_UINT16: raw.u16 = (uint16_t)v->u64; break;
    case GGUF_VALUE_INT16: raw.i16 = (int16_t)v->i64; break;
    case GGUF_VALUE_UINT32: raw.u32 = (uint32_t)v->u64; break;
    case GGUF_VALUE_INT32: raw.i32 = (int32_t)v->i64; break;
    case GGUF_VALUE_FLOAT32: raw.f32 = (float)v->f64; break;
    case GGUF_VALUE_UINT64: raw.u64 = v->u64; break;
    case GGUF_VALUE_INT64: raw.i64 = v->i64; break;
    case GGUF_VALUE_FLOAT64: raw.f64 = v->f64; break;
    case GGUF_VALUE_BOOL: raw.u8 = v->b ? 1 : 0; break;
    case GGUF_VALUE_STRING: put_str(b, v->str); return;
    case GGUF_VALUE_ARRAY: {
        put_u32(b, (uint32_t)v->arr.type);
        put_u64(b, v->arr.n);
        size_t esz = gguf_value_type_size(v->arr.type);
        if (esz) {
            put(b, v->arr.data, (size_t)v->arr.n * esz);
        } else if (v->arr.type == GGUF_VALUE_STRING) {
            const char *const *s = v->arr.data;
            for (uint64_t i = 0; i < v->arr.n; i++) {
                put_str(b, s[i]);
            }
        } else {
            const struct gguf_value *e = v->arr.data;
            for (uint64_t i = 0; i < v->arr.n; i++) {
                put_value(b, &e[i]); // element type ARRAY: no per-element type tag
            }
        }
        return;
    }
    case GGUF_VALUE_COUNT:
    default: return; // copy_value refused these
    }
    put(b, &raw, gguf_value_type_size(v->type));
}

static const uint8_t zeros[256];

static enum llem_err write_pad(struct fs_atomic *a, uint64_t n, struct llem_errbuf *eb)
{
    while (n > 0) {
        size_t k = (size_t)LLEM_MIN(n, (uint64_t)sizeof zeros);
        enum llem_err rc = fs_atomic_write(a, zeros, k, eb);
        if (rc != LLEM_OK) {
            return rc;
        }
        n -= k;
    }
    return LLEM_OK;
}

static uint64_t pad_to(uint64_t n, uint64_t align)
{
    return (align - n % align) % align;
}

enum llem_err gguf_writer_write(struct gguf_writer *w, const char *path, struct llem_errbuf *eb)
{
    if (!w || !path) {
        return llem_errf(eb, LLEM_EINVAL, "gguf write: no writer or path");
    }
    uint64_t align = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = gguf_index_find(&w->kv_ix, w->kv, sizeof *w->kv, "general.alignment");
    if (ai >= 0) {
        const struct gguf_value *v = &w->kv[ai].v;
        if (v->type != GGUF_VALUE_UINT32 || v->u64 == 0 || (v->u64 & (v->u64 - 1)) != 0 ||
            v->u64 > LLEM_GGUF_MAX_ALIGNMENT) {
            return llem_errf(eb, LLEM_EINVAL,
                             "%s: general.alignment must be a u32 power of two"
                             " <= %u",
                             path, LLEM_GGUF_MAX_ALIGNMENT);
        }
        align = v->u64;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        if (!w->t[i].data) {
            return llem_errf(eb, LLEM_EINVAL, "%s: tensor '%s' has no data", path, w->t[i].name);
        }
    }
    struct hbuf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, w->n_t);
    put_u64(&b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&b, w->kv[i].key);
        put_u32(&b, (uint32_t)w->kv[i].v.type);
        put_value(&b, &w->kv[i].v);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        put_str(&b, t->name);
        put_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) {
            put(&b, &t->ne[d], 8);
        }
        put_u32(&b, t->type);
        put_u64(&b, off);
        if (!u64_add_ok(off, t->n_bytes + pad_to(t->n_bytes, align), &off)) {
            llem_free(b.p);
            return llem_errf(eb, LLEM_EINVAL, "%s: tensor data exceeds 2^64 bytes", path);
        }
    }
    if (b.oom) {
        llem_free(b.p);
        return llem_errf(eb, LLEM_ENOMEM, "%s: out of memory building the header", path);
    }
    struct fs_atomic a;
    enum llem_err rc = fs_atomic_open(&a, path, eb);
    if (rc == LLEM_OK) {
        rc = fs_atomic_write(&a, b.p, b.len, eb);
    }
    if (rc == LLEM_OK) {
        rc = write_pad(&a, pad_to(b.len, align), eb);
    }
    for (size_t i = 0; i < w->n_t && rc == LLEM_OK; i++) {
        rc = fs_atomic_write(&a, w->t[i].data, (size_t)w->t[i].n_bytes, eb);
        if (rc == LLEM_OK) {
            rc = write_pad(&a, pad_to(w->t[i].n_bytes, align), eb);
        }
    }
    llem_free(b.p);
    if (rc == LLEM_OK) {
        rc = fs_atomic_commit(&a, eb);
    }
    // fs_atomic_write/commit abort (remove the temp file) themselves on failure.
    return rc;
}
