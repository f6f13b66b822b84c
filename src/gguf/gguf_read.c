// gguf/gguf_read.c: the GGUF v2/v3 reader. Parses the header from a memory image (the mmap
// or a caller's buffer) or through buffered pread, validating every field against
// base/limits.h and the file size with overflow-checked arithmetic before anything is
// allocated from it; then checks tensor ranges (aligned, in the file, not overlapping).
// Entry points: gguf_open, gguf_open_memory, gguf_close and the getters of gguf.h.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/limits.h"
#include "gguf/gguf_int.h"

struct gguf_kv {
    const char *key; // first member: gguf_index reads it
    struct gguf_value v;
};

struct gguf_file {
    uint32_t version;
    uint64_t file_size;
    uint64_t alignment;
    uint64_t data_offset; // file offset of the data section
    int64_t n_kv;
    struct gguf_kv *kv;
    int64_t n_tensors;
    struct gguf_tensor_info *tensors;
    struct gguf_index kv_index, tensor_index;
    struct gguf_arena arena; // keys, strings, arrays, tensor names, the two arrays above
    struct fs_map map;       // whole-file map (default gguf_open)
    void *data_copy;         // the pread copy of the data section (no_mmap)
    const uint8_t *data;     // start of the data section, or NULL (metadata only)
};

// ---- byte source ----------------------------------------------------------------------------

#define SRC_BUF_BYTES (1u << 20)

// Sequential reads over either a memory image or a file descriptor (buffered pread). Every
// read is bounds-checked against the file size first, so a truncated file is one clean error.
struct src {
    const uint8_t *mem; // memory image of the whole file, or NULL
    int fd;
    uint64_t size; // file size
    uint64_t pos;  // absolute position of the next read
    uint8_t *buf;  // fd window [buf_off, buf_off + buf_len)
    uint64_t buf_off;
    size_t buf_len;
    struct llem_errbuf *eb;
};

static uint64_t src_left(const struct src *s)
{
    return s->size - s->pos;
}

static enum llem_err truncated(struct src *s, const char *what, uint64_t need)
{
    return llem_errf(s->eb, LLEM_EFORMAT,
                     "truncated: %s at offset %" PRIu64 " needs %" PRIu64 " bytes, %" PRIu64
                     " left in the file",
                     what, s->pos, need, src_left(s));
}

static enum llem_err src_read(struct src *s, void *dst, size_t n, const char *what)
{
    if (n > src_left(s)) {
        return truncated(s, what, n);
    }
    if (s->mem) {
        memcpy(dst, s->mem + s->pos, n);
        s->pos += n;
        return LLEM_OK;
    }
    uint8_t *d = dst;
    while (n > 0) {
        if (s->pos >= s->buf_off && s->pos < s->buf_off + s->buf_len) {
            size_t at = (size_t)(s->pos - s->buf_off);
            size_t k = LLEM_MIN(n, s->buf_len - at);
            memcpy(d, s->buf + at, k);
            d += k;
            n -= k;
            s->pos += k;
            continue;
        }
        if (n >= SRC_BUF_BYTES) { // a big block: straight into place
            enum llem_err rc = fs_pread_full(s->fd, d, n, s->pos, s->eb);
            if (rc == LLEM_OK) {
                s->pos += n;
            }
            return rc;
        }
        size_t len = (size_t)LLEM_MIN((uint64_t)SRC_BUF_BYTES, src_left(s));
        enum llem_err rc = fs_pread_full(s->fd, s->buf, len, s->pos, s->eb);
        if (rc != LLEM_OK) {
            s->buf_len = 0;
            return rc;
        }
        s->buf_off = s->pos;
        s->buf_len = len;
    }
    return LLEM_OK;
}

static enum llem_err src_u32(struct src *s, uint32_t *v, const char *what)
{
    return src_read(s, v, sizeof *v, what);
}

static enum llem_err src_u64(struct src *s, uint64_t *v, const char *what)
{
    return src_read(s, v, sizeof *v, what);
}

// ---- metadata -------------------------------------------------------------------------------

struct parser {
    struct src *s;
    struct gguf_file *f;
    struct llem_errbuf *eb;
    const char *key; // key being parsed, for messages ("#12" until the key itself is read)
    char key_num[32];
};

static enum llem_err oom(struct parser *p)
{
    return llem_errf(p->eb, LLEM_ENOMEM, "out of memory reading key '%s'", p->key);
}

// Reads a GGUF string (u64 length + bytes) into the arena, NUL-terminated. `nul_ok`: whether
// an embedded NUL is acceptable (values yes; keys and names no: they'd alias other names).
static enum llem_err read_string(struct parser *p, const char **out, uint64_t max, bool nul_ok,
                                 const char *what)
{
    uint64_t len;
    enum llem_err rc = src_u64(p->s, &len, what);
    if (rc != LLEM_OK) {
        return rc;
    }
    if (len > max) {
        return llem_errf(p->eb, LLEM_ELIMIT,
                         "%s '%s': string of %" PRIu64 " bytes exceeds the limit of %" PRIu64, what,
                         p->key, len, max);
    }
    if (len > src_left(p->s)) {
        return truncated(p->s, what, len);
    }
    char *str = gguf_arena_alloc(&p->f->arena, (size_t)len + 1, 1);
    if (!str) {
        return oom(p);
    }
    rc = src_read(p->s, str, (size_t)len, what);
    if (rc != LLEM_OK) {
        return rc;
    }
    str[len] = '\0';
    if (!nul_ok && strlen(str) != len) {
        return llem_errf(p->eb, LLEM_EFORMAT, "%s '%s': contains a NUL byte", what, str);
    }
    *out = str;
    return LLEM_OK;
}

// Smallest number of bytes one element of type t takes on disk (bounds counts by file size).
static uint64_t min_disk_bytes(enum gguf_value_type t)
{
    if (t == GGUF_VALUE_STRING) {
        return 8;
    }
    if (t == GGUF_VALUE_ARRAY) {
        return 12;
    }
    return gguf_value_type_size(t);
}

static enum llem_err read_value(struct parser *p, enum gguf_value_type type, struct gguf_value *out,
                                unsigned depth);

static enum llem_err read_array(struct parser *p, struct gguf_value *out, unsigned depth)
{
    uint32_t et;
    uint64_t n;
    enum llem_err rc = src_u32(p->s, &et, "array type");
    if (rc == LLEM_OK) {
        rc = src_u64(p->s, &n, "array length");
    }
    if (rc != LLEM_OK) {
        return rc;
    }
    if (et >= GGUF_VALUE_COUNT) {
        return llem_errf(p->eb, LLEM_EFORMAT, "key '%s': unknown array element type %" PRIu32,
                         p->key, et);
    }
    if (et == GGUF_VALUE_ARRAY && depth + 1 >= LLEM_GGUF_MAX_ARRAY_DEPTH) {
        return llem_errf(p->eb, LLEM_ELIMIT, "key '%s': arrays nested deeper than %u", p->key,
                         LLEM_GGUF_MAX_ARRAY_DEPTH);
    }
    if (n > LLEM_GGUF_MAX_ARRAY_ELEMS) {
        return llem_errf(p->eb, LLEM_ELIMIT,
                         "key '%s': array of %" PRIu64 " elements exceeds the limit of %u", p->key,
                         n, LLEM_GGUF_MAX_ARRAY_ELEMS);
    }
    // n <= 2^24 and min_disk_bytes <= 12: no overflow. Refusing here keeps a tiny hostile
    // file from making us allocate for elements that cannot be in it.
    if (n * min_disk_bytes((enum gguf_value_type)et) > src_left(p->s)) {
        return llem_errf(p->eb, LLEM_EFORMAT,
                         "key '%s': array of %" PRIu64
                         " %s elements does not fit in the rest of the file",
                         p->key, n, gguf_value_type_name((enum gguf_value_type)et));
    }
    out->type = GGUF_VALUE_ARRAY;
    out->arr.type = (enum gguf_value_type)et;
    out->arr.n = n;
    out->arr.data = NULL;
    if (n == 0) {
        return LLEM_OK;
    }
    size_t esz = gguf_value_type_size((enum gguf_value_type)et);
    if (esz) { // fixed-size elements: one copy, already in native layout (little-endian host)
        uint8_t *d = gguf_arena_alloc(&p->f->arena, (size_t)n * esz, 8);
        if (!d) {
            return oom(p);
        }
        rc = src_read(p->s, d, (size_t)n * esz, "array data");
        if (rc != LLEM_OK) {
            return rc;
        }
        if (et == GGUF_VALUE_BOOL) {
            for (uint64_t i = 0; i < n; i++) {
                if (d[i] > 1) {
                    return llem_errf(p->eb, LLEM_EFORMAT,
                                     "key '%s': element %" PRIu64 " is bool %u (must be 0 or 1)",
                                     p->key, i, d[i]);
                }
            }
        }
        out->arr.data = d;
        return LLEM_OK;
    }
    if (et == GGUF_VALUE_STRING) {
        const char **strs = gguf_arena_alloc(&p->f->arena, (size_t)n * sizeof *strs, 8);
        if (!strs) {
            return oom(p);
        }
        for (uint64_t i = 0; i < n; i++) {
            rc = read_string(p, &strs[i], LLEM_GGUF_MAX_STRING_BYTES, true, "array string");
            if (rc != LLEM_OK) {
                return rc;
            }
        }
        out->arr.data = strs;
        return LLEM_OK;
    }
    struct gguf_value *vals = gguf_arena_alloc(&p->f->arena, (size_t)n * sizeof *vals, 8);
    if (!vals) {
        return oom(p);
    }
    for (uint64_t i = 0; i < n; i++) {
        rc = read_value(p, GGUF_VALUE_ARRAY, &vals[i], depth + 1);
        if (rc != LLEM_OK) {
            return rc;
        }
    }
    out->arr.data = vals;
    return LLEM_OK;
}

static enum llem_err read_value(struct parser *p, enum gguf_value_type type, struct gguf_value *out,
                                unsigned depth)
{
    memset(out, 0, sizeof *out);
    out->type = type;
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
    size_t sz = gguf_value_type_size(type);
    if (sz) {
        enum llem_err rc = src_read(p->s, &raw, sz, "value");
        if (rc != LLEM_OK) {
            return rc;
        }
    }
    switch (type) {
    case GGUF_VALUE_UINT8: out->u64 = raw.u8; break;
    case GGUF_VALUE_INT8: out->i64 = raw.i8; break;
    case GGUF_VALUE_UINT16: out->u64 = raw.u16; break;
    case GGUF_VALUE_INT16: out->i64 = raw.i16; break;
    case GGUF_VALUE_UINT32: out->u64 = raw.u32; break;
    case GGUF_VALUE_INT32: out->i64 = raw.i32; break;
    case GGUF_VALUE_FLOAT32: out->f64 = (double)raw.f32; break;
    case GGUF_VALUE_UINT64: out->u64 = raw.u64; break;
    case GGUF_VALUE_INT64: out->i64 = raw.i64; break;
    case GGUF_VALUE_FLOAT64: out->f64 = raw.f64; break;
    case GGUF_VALUE_BOOL:
        if (raw.u8 > 1) {
            return llem_errf(p->eb, LLEM_EFORMAT, "key '%s': bool value %u (must be 0 or 1)",
                             p->key, raw.u8);
        }
        out->b = raw.u8 != 0;
        break;
    case GGUF_VALUE_STRING:
        return read_string(p, &out->str, LLEM_GGUF_MAX_STRING_BYTES, true, "string value");
    case GGUF_VALUE_ARRAY: return read_array(p, out, depth);
    case GGUF_VALUE_COUNT:
    default:
        return llem_errf(p->eb, LLEM_EFORMAT, "key '%s': unknown value type %u", p->key,
                         (unsigned)type);
    }
    return LLEM_OK;
}

static enum llem_err read_kvs(struct parser *p)
{
    struct gguf_file *f = p->f;
    for (int64_t i = 0; i < f->n_kv; i++) {
        struct gguf_kv *kv = &f->kv[i];
        snprintf(p->key_num, sizeof p->key_num, "#%" PRId64, i);
        p->key = p->key_num;
        enum llem_err rc = read_string(p, &kv->key, LLEM_GGUF_MAX_STRING_BYTES, false, "key");
        if (rc != LLEM_OK) {
            return rc;
        }
        p->key = kv->key;
        if (gguf_index_find(&f->kv_index, f->kv, sizeof *f->kv, kv->key) >= 0) {
            return llem_errf(p->eb, LLEM_EFORMAT, "duplicate key '%s'", kv->key);
        }
        gguf_index_insert(&f->kv_index, f->kv, sizeof *f->kv, (uint32_t)i);
        uint32_t type;
        rc = src_u32(p->s, &type, "value type");
        if (rc != LLEM_OK) {
            return rc;
        }
        if (type >= GGUF_VALUE_COUNT) {
            return llem_errf(p->eb, LLEM_EFORMAT, "key '%s': unknown value type %" PRIu32, kv->key,
                             type);
        }
        rc = read_value(p, (enum gguf_value_type)type, &kv->v, 0);
        if (rc != LLEM_OK) {
            return rc;
        }
    }
    return LLEM_OK;
}

// ---- tensors --------------------------------------------------------------------------------

static enum llem_err read_tensor_info(struct parser *p, int64_t i)
{
    struct gguf_file *f = p->f;
    struct gguf_tensor_info *t = &f->tensors[i];
    struct llem_errbuf *eb = p->eb;
    snprintf(p->key_num, sizeof p->key_num, "#%" PRId64, i);
    p->key = p->key_num;
    enum llem_err rc = read_string(p, &t->name, LLEM_GGUF_MAX_NAME_BYTES, false, "tensor name");
    if (rc != LLEM_OK) {
        return rc;
    }
    const char *name = t->name;
    if (!*name) {
        return llem_errf(eb, LLEM_EFORMAT, "tensor #%" PRId64 ": empty name", i);
    }
    if (gguf_index_find(&f->tensor_index, f->tensors, sizeof *f->tensors, name) >= 0) {
        return llem_errf(eb, LLEM_EFORMAT, "duplicate tensor name '%s'", name);
    }
    gguf_index_insert(&f->tensor_index, f->tensors, sizeof *f->tensors, (uint32_t)i);
    rc = src_u32(p->s, &t->n_dims, "tensor n_dims");
    if (rc != LLEM_OK) {
        return rc;
    }
    if (t->n_dims < 1 || t->n_dims > LLEM_GGUF_MAX_DIMS || t->n_dims > GGUF_MAX_DIMS) {
        return llem_errf(eb, LLEM_EFORMAT, "tensor '%s': %" PRIu32 " dimensions (must be 1..%d)",
                         name, t->n_dims, GGUF_MAX_DIMS);
    }
    uint64_t n_elem = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims) {
            continue;
        }
        rc = src_read(p->s, &t->ne[d], sizeof t->ne[d], "tensor dimension");
        if (rc != LLEM_OK) {
            return rc;
        }
        if (t->ne[d] <= 0) {
            return llem_errf(eb, LLEM_EFORMAT,
                             "tensor '%s': dimension %" PRIu32 " is %" PRId64 " (must be positive)",
                             name, d, t->ne[d]);
        }
        if (!u64_mul_ok(n_elem, (uint64_t)t->ne[d], &n_elem) ||
            n_elem > LLEM_GGUF_MAX_TENSOR_ELEMS) {
            return llem_errf(eb, LLEM_ELIMIT,
                             "tensor '%s': element count exceeds the limit of "
                             "2^50",
                             name);
        }
    }
    rc = src_u32(p->s, &t->type, "tensor type");
    if (rc == LLEM_OK) {
        rc = src_u64(p->s, &t->offset, "tensor offset");
    }
    if (rc != LLEM_OK) {
        return rc;
    }
    int64_t blck;
    size_t bbytes;
    if (!gguf_type_geometry(t->type, &blck, &bbytes)) {
        return llem_errf(eb, LLEM_EFORMAT, "tensor '%s': unknown or retired type id %" PRIu32, name,
                         t->type);
    }
    if (t->ne[0] % blck != 0) {
        return llem_errf(eb, LLEM_EFORMAT,
                         "tensor '%s': row of %" PRId64 " elements is not a "
                         "multiple of the %s block size %" PRId64,
                         name, t->ne[0], gguf_type_name(t->type), blck);
    }
    // n_elem <= 2^50 and bytes/blck <= 8: the product cannot overflow 64 bits.
    t->n_bytes = n_elem / (uint64_t)blck * bbytes;
    if (t->offset % f->alignment != 0) {
        return llem_errf(eb, LLEM_EFORMAT,
                         "tensor '%s': offset %" PRIu64 " is not a multiple "
                         "of the alignment %" PRIu64,
                         name, t->offset, f->alignment);
    }
    return LLEM_OK;
}

struct span {
    uint64_t begin, end;
    uint32_t idx;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

// Every tensor's bytes inside the file and no two tensors sharing a byte. Returns the end of
// the last tensor's data relative to the data section in *data_end.
static enum llem_err check_ranges(struct gguf_file *f, uint64_t *data_end, struct llem_errbuf *eb)
{
    *data_end = 0;
    if (f->n_tensors == 0) {
        return LLEM_OK;
    }
    struct span *sp = llem_malloc((size_t)f->n_tensors * sizeof *sp);
    if (!sp) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory checking tensor ranges");
    }
    enum llem_err rc = LLEM_OK;
    for (int64_t i = 0; i < f->n_tensors && rc == LLEM_OK; i++) {
        const struct gguf_tensor_info *t = &f->tensors[i];
        uint64_t begin, end;
        if (!u64_add_ok(f->data_offset, t->offset, &begin) ||
            !u64_add_ok(begin, t->n_bytes, &end) || end > f->file_size) {
            rc = llem_errf(eb, LLEM_EFORMAT,
                           "tensor '%s': data at offset %" PRIu64 " (+%" PRIu64
                           " bytes) lies outside the file (%" PRIu64 " bytes)",
                           t->name, t->offset, t->n_bytes, f->file_size);
            break;
        }
        sp[i] = (struct span){t->offset, t->offset + t->n_bytes, (uint32_t)i};
        *data_end = LLEM_MAX(*data_end, t->offset + t->n_bytes);
    }
    if (rc == LLEM_OK) {
        qsort(sp, (size_t)f->n_tensors, sizeof *sp, span_cmp);
        for (int64_t i = 1; i < f->n_tensors; i++) {
            if (sp[i].begin < sp[i - 1].end) {
                rc = llem_errf(eb, LLEM_EFORMAT, "tensors '%s' and '%s' overlap in the file",
                               f->tensors[sp[i - 1].idx].name, f->tensors[sp[i].idx].name);
                break;
            }
        }
    }
    llem_free(sp);
    return rc;
}

// ---- header ---------------------------------------------------------------------------------

static enum llem_err read_header(struct gguf_file *f, struct src *s, struct llem_errbuf *eb)
{
    uint8_t magic[4];
    enum llem_err rc = src_read(s, magic, 4, "magic");
    if (rc != LLEM_OK) {
        return llem_errf(eb, LLEM_EFORMAT, "not a GGUF file (%" PRIu64 " bytes)", s->size);
    }
    if (memcmp(magic, "GGUF", 4) != 0) {
        return llem_errf(eb, LLEM_EFORMAT, "not a GGUF file (magic %02x %02x %02x %02x)", magic[0],
                         magic[1], magic[2], magic[3]);
    }
    rc = src_u32(s, &f->version, "version");
    if (rc != LLEM_OK) {
        return rc;
    }
    uint32_t swapped = __builtin_bswap32(f->version);
    if (f->version != 2 && f->version != 3) {
        if (swapped >= 1 && swapped <= 3) {
            return llem_errf(eb, LLEM_EFORMAT,
                             "big-endian GGUF v%" PRIu32 " is not supported "
                             "(llem reads little-endian files)",
                             swapped);
        }
        if (f->version == 1) {
            return llem_errf(eb, LLEM_EFORMAT, "GGUF v1 is not supported (re-convert the model)");
        }
        return llem_errf(eb, LLEM_EFORMAT, "unsupported GGUF version %" PRIu32, f->version);
    }
    uint64_t n_tensors, n_kv;
    rc = src_u64(s, &n_tensors, "tensor count");
    if (rc == LLEM_OK) {
        rc = src_u64(s, &n_kv, "metadata count");
    }
    if (rc != LLEM_OK) {
        return rc;
    }
    if (n_tensors > LLEM_GGUF_MAX_TENSORS) {
        return llem_errf(eb, LLEM_ELIMIT, "%" PRIu64 " tensors exceed the limit of %u", n_tensors,
                         LLEM_GGUF_MAX_TENSORS);
    }
    if (n_kv > LLEM_GGUF_MAX_KV) {
        return llem_errf(eb, LLEM_ELIMIT, "%" PRIu64 " metadata pairs exceed the limit of %u", n_kv,
                         LLEM_GGUF_MAX_KV);
    }
    // Smallest possible pair: key length + type + 1-byte value; tensor info: name length +
    // n_dims + one dim + type + offset. Both counts are < 2^17: no overflow.
    if (n_kv * 13 + n_tensors * 32 > src_left(s)) {
        return llem_errf(eb, LLEM_EFORMAT,
                         "%" PRIu64 " metadata pairs and %" PRIu64
                         " tensors cannot fit in the rest of the file (%" PRIu64 " bytes)",
                         n_kv, n_tensors, src_left(s));
    }
    f->n_kv = (int64_t)n_kv;
    f->n_tensors = (int64_t)n_tensors;
    f->kv = gguf_arena_alloc(&f->arena, (size_t)n_kv * sizeof *f->kv + 1, 8);
    f->tensors = gguf_arena_alloc(&f->arena, (size_t)n_tensors * sizeof *f->tensors + 1, 8);
    if (!f->kv || !f->tensors || gguf_index_init(&f->kv_index, (size_t)n_kv) != LLEM_OK ||
        gguf_index_init(&f->tensor_index, (size_t)n_tensors) != LLEM_OK) {
        return llem_errf(eb, LLEM_ENOMEM,
                         "out of memory for %" PRIu64 " keys and %" PRIu64 " tensors", n_kv,
                         n_tensors);
    }
    memset(f->kv, 0, (size_t)n_kv * sizeof *f->kv);
    memset(f->tensors, 0, (size_t)n_tensors * sizeof *f->tensors);

    struct parser p = {.s = s, .f = f, .eb = eb, .key = "?"};
    rc = read_kvs(&p);
    if (rc != LLEM_OK) {
        return rc;
    }
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct gguf_value *al = gguf_get(f, "general.alignment");
    if (al) {
        if (al->type != GGUF_VALUE_UINT32) {
            return llem_errf(eb, LLEM_EFORMAT, "key 'general.alignment': type %s (must be u32)",
                             gguf_value_type_name(al->type));
        }
        if (al->u64 == 0 || (al->u64 & (al->u64 - 1)) != 0) {
            return llem_errf(eb, LLEM_EFORMAT,
                             "key 'general.alignment': %" PRIu64 " is not a power of two", al->u64);
        }
        if (al->u64 > LLEM_GGUF_MAX_ALIGNMENT) {
            return llem_errf(eb, LLEM_ELIMIT,
                             "key 'general.alignment': %" PRIu64 " exceeds the limit of %u",
                             al->u64, LLEM_GGUF_MAX_ALIGNMENT);
        }
        f->alignment = al->u64;
    }
    for (int64_t i = 0; i < f->n_tensors; i++) {
        rc = read_tensor_info(&p, i);
        if (rc != LLEM_OK) {
            return rc;
        }
    }
    // s->pos <= file size < 2^63 and alignment <= 2^20: no overflow.
    f->data_offset = (s->pos + f->alignment - 1) & ~(f->alignment - 1);
    return LLEM_OK;
}

// ---- open / close ---------------------------------------------------------------------------

static struct gguf_file *file_new(void)
{
    struct gguf_file *f = llem_calloc(1, sizeof *f);
    if (f) {
        f->map.fd = -1;
    }
    return f;
}

void gguf_close(struct gguf_file *f)
{
    if (!f) {
        return;
    }
    gguf_index_deinit(&f->kv_index);
    gguf_index_deinit(&f->tensor_index);
    gguf_arena_free(&f->arena);
    fs_map_close(&f->map);
    llem_aligned_free(f->data_copy);
    llem_free(f);
}

static enum llem_err parse(struct gguf_file *f, struct src *s, uint64_t *data_end,
                           struct llem_errbuf *eb)
{
    f->file_size = s->size;
    enum llem_err rc = read_header(f, s, eb);
    if (rc == LLEM_OK) {
        rc = check_ranges(f, data_end, eb);
    }
    return rc;
}

enum llem_err gguf_open_memory(struct gguf_file **out, const void *data, size_t size,
                               struct llem_errbuf *eb)
{
    *out = NULL;
    struct gguf_file *f = file_new();
    if (!f) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    struct src s = {.mem = data, .fd = -1, .size = size, .eb = eb};
    uint64_t data_end;
    enum llem_err rc =
        data || size == 0 ? parse(f, &s, &data_end, eb) : llem_errf(eb, LLEM_EINVAL, "NULL buffer");
    if (rc != LLEM_OK) {
        gguf_close(f);
        return rc;
    }
    f->data = f->n_tensors > 0 ? (const uint8_t *)data + f->data_offset : NULL;
    *out = f;
    return LLEM_OK;
}

enum llem_err gguf_open(struct gguf_file **out, const char *path, const struct gguf_open_opts *opts,
                        struct llem_errbuf *eb)
{
    *out = NULL;
    struct gguf_open_opts o = opts ? *opts : (struct gguf_open_opts){0};
    struct gguf_file *f = file_new();
    if (!f) {
        return llem_errf(eb, LLEM_ENOMEM, "%s: out of memory", path);
    }
    struct src s = {.fd = -1, .eb = eb};
    enum llem_err rc;
    bool use_map = !o.no_mmap && !o.metadata_only;
    if (use_map) {
        rc = fs_map_open(&f->map, path, eb);
        s.mem = f->map.addr;
        s.size = f->map.size;
        if (rc == LLEM_OK && s.size == 0) {
            s.mem = (const uint8_t *)""; // an empty file: parse reports it as too short
        }
    } else {
        rc = fs_open_read(path, &f->map.fd, &s.size, eb);
        s.fd = f->map.fd;
        if (rc == LLEM_OK) {
            s.buf = llem_malloc(SRC_BUF_BYTES);
            if (!s.buf) {
                rc = llem_errf(eb, LLEM_ENOMEM, "%s: out of memory", path);
            }
        }
    }
    uint64_t data_end = 0;
    if (rc == LLEM_OK) {
        // The header is read once, front to back: tell the kernel (the weights are not).
        fs_map_advise(&f->map, 0, 1u << 20, FS_ADVICE_WILLNEED);
        rc = parse(f, &s, &data_end, eb);
        if (rc != LLEM_OK) {
            llem_err_prefix(eb, path);
        }
    }
    llem_free(s.buf);
    if (rc == LLEM_OK && f->n_tensors > 0 && !o.metadata_only) {
        if (use_map) {
            f->data = (const uint8_t *)f->map.addr + f->data_offset;
        } else {
            void *copy;
            rc = fs_read_range(f->map.fd, f->data_offset, (size_t)data_end, 64, &copy, eb);
            if (rc == LLEM_OK) {
                f->data_copy = copy;
                f->data = copy;
            } else {
                llem_err_prefix(eb, path);
            }
        }
    }
    if (rc == LLEM_OK && !use_map) {
        close(f->map.fd); // everything needed has been read
        f->map.fd = -1;
    }
    if (rc != LLEM_OK) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return LLEM_OK;
}

// ---- getters --------------------------------------------------------------------------------

uint32_t gguf_version(const struct gguf_file *f)
{
    return f->version;
}
uint64_t gguf_file_size(const struct gguf_file *f)
{
    return f->file_size;
}
uint64_t gguf_alignment(const struct gguf_file *f)
{
    return f->alignment;
}
uint64_t gguf_data_offset(const struct gguf_file *f)
{
    return f->data_offset;
}
int64_t gguf_n_kv(const struct gguf_file *f)
{
    return f->n_kv;
}
int64_t gguf_n_tensors(const struct gguf_file *f)
{
    return f->n_tensors;
}

const char *gguf_kv_key(const struct gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_kv ? f->kv[i].key : NULL;
}

const struct gguf_value *gguf_kv_value(const struct gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_kv ? &f->kv[i].v : NULL;
}

int64_t gguf_find_key(const struct gguf_file *f, const char *key)
{
    return key ? gguf_index_find(&f->kv_index, f->kv, sizeof *f->kv, key) : -1;
}

const struct gguf_value *gguf_get(const struct gguf_file *f, const char *key)
{
    return gguf_kv_value(f, gguf_find_key(f, key));
}

static bool is_unsigned(enum gguf_value_type t)
{
    return t == GGUF_VALUE_UINT8 || t == GGUF_VALUE_UINT16 || t == GGUF_VALUE_UINT32 ||
           t == GGUF_VALUE_UINT64;
}

static bool is_signed(enum gguf_value_type t)
{
    return t == GGUF_VALUE_INT8 || t == GGUF_VALUE_INT16 || t == GGUF_VALUE_INT32 ||
           t == GGUF_VALUE_INT64;
}

bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out)
{
    const struct gguf_value *v = gguf_get(f, key);
    if (v && is_unsigned(v->type) && v->u64 <= UINT32_MAX) {
        *out = (uint32_t)v->u64;
        return true;
    }
    if (v && is_signed(v->type) && v->i64 >= 0 && v->i64 <= (int64_t)UINT32_MAX) {
        *out = (uint32_t)v->i64;
        return true;
    }
    return false;
}

bool gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out)
{
    const struct gguf_value *v = gguf_get(f, key);
    if (v && is_signed(v->type)) {
        *out = v->i64;
        return true;
    }
    if (v && is_unsigned(v->type) && v->u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)v->u64;
        return true;
    }
    return false;
}

bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out)
{
    const struct gguf_value *v = gguf_get(f, key);
    if (!v) {
        return false;
    }
    if (v->type == GGUF_VALUE_FLOAT32 || v->type == GGUF_VALUE_FLOAT64) {
        *out = (float)v->f64;
        return true;
    }
    // Integers only when a float holds them exactly (|v| <= 2^24).
    if (is_unsigned(v->type) && v->u64 <= (1u << 24)) {
        *out = (float)v->u64;
        return true;
    }
    if (is_signed(v->type) && v->i64 >= -(1 << 24) && v->i64 <= (1 << 24)) {
        *out = (float)v->i64;
        return true;
    }
    return false;
}

bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out)
{
    const struct gguf_value *v = gguf_get(f, key);
    if (v && v->type == GGUF_VALUE_BOOL) {
        *out = v->b;
        return true;
    }
    return false;
}

const char *gguf_get_str(const struct gguf_file *f, const char *key)
{
    const struct gguf_value *v = gguf_get(f, key);
    return v && v->type == GGUF_VALUE_STRING ? v->str : NULL;
}

const void *gguf_get_arr(const struct gguf_file *f, const char *key, enum gguf_value_type elem_type,
                         uint64_t *n)
{
    const struct gguf_value *v = gguf_get(f, key);
    if (!v || v->type != GGUF_VALUE_ARRAY || v->arr.type != elem_type) {
        return NULL;
    }
    if (n) {
        *n = v->arr.n;
    }
    // An empty array has no storage; return a non-NULL pointer so "present" stays visible.
    return v->arr.data ? v->arr.data : (const void *)v;
}

const struct gguf_tensor_info *gguf_tensor(const struct gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

int64_t gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    return name ? gguf_index_find(&f->tensor_index, f->tensors, sizeof *f->tensors, name) : -1;
}

void gguf_tensor_advise(const struct gguf_file *f, int64_t i, enum fs_advice advice)
{
    if (!f->map.addr || i < 0 || i >= f->n_tensors) {
        return;
    }
    uint64_t off = (uint64_t)(f->data - (const unsigned char *)f->map.addr) + f->tensors[i].offset;
    fs_map_advise(&f->map, off, f->tensors[i].n_bytes, advice);
}

const void *gguf_tensor_data(const struct gguf_file *f, int64_t i)
{
    if (!f->data || i < 0 || i >= f->n_tensors) {
        return NULL;
    }
    return f->data + f->tensors[i].offset;
}
