// tests/fuzz/fuzz_gguf_reader.c: libFuzzer target for the GGUF reader: gguf_open_memory on the
// input, then every key, value (nested arrays included), typed getter and tensor byte is
// visited, so sanitizers see any out-of-bounds pointer the reader might hand out.
// Corpus: tests/fuzz/corpus/reader/ (replayed by every CI run via replay_main.c).
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gguf/gguf.h"

static size_t elem_size(enum gguf_value_type t)
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
    default: return 8;
    }
}

static uint64_t visit_value(const struct gguf_value *v, int depth)
{
    uint64_t sum = (uint64_t)v->type;
    if (v->type == GGUF_VALUE_STRING) {
        return sum + strlen(v->str);
    }
    if (v->type != GGUF_VALUE_ARRAY || depth > 8) {
        return sum + v->u64;
    }
    if (v->arr.type == GGUF_VALUE_STRING) {
        const char *const *s = v->arr.data;
        for (uint64_t i = 0; i < v->arr.n; i++) {
            sum += strlen(s[i]);
        }
    } else if (v->arr.type == GGUF_VALUE_ARRAY) {
        const struct gguf_value *e = v->arr.data;
        for (uint64_t i = 0; i < v->arr.n; i++) {
            sum += visit_value(&e[i], depth + 1);
        }
    } else if (v->arr.n > 0) {
        const uint8_t *b = v->arr.data; // first and last byte of the element storage
        size_t bytes = (size_t)v->arr.n * elem_size(v->arr.type);
        sum += b[0] + b[bytes - 1];
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gguf_file *f = NULL;
    struct llem_errbuf eb;
    if (gguf_open_memory(&f, data, size, &eb) != LLEM_OK) {
        return 0;
    }
    volatile uint64_t sum = 0;
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_kv_key(f, i);
        sum += strlen(key) + visit_value(gguf_kv_value(f, i), 0);
        if (gguf_find_key(f, key) != i) {
            __builtin_trap(); // keys are unique and findable
        }
        uint32_t u32;
        int64_t i64;
        float f32;
        bool b;
        uint64_t n;
        sum += gguf_get_u32(f, key, &u32) + gguf_get_i64(f, key, &i64) +
               gguf_get_f32(f, key, &f32) + gguf_get_bool(f, key, &b) +
               (gguf_get_str(f, key) != NULL) +
               (gguf_get_arr(f, key, GGUF_VALUE_STRING, &n) != NULL);
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor_info *t = gguf_tensor(f, i);
        const uint8_t *d = gguf_tensor_data(f, i);
        if (gguf_find_tensor(f, t->name) != i || !d || t->n_bytes == 0 ||
            t->offset % gguf_alignment(f) != 0) {
            __builtin_trap();
        }
        sum += d[0] + d[t->n_bytes - 1] + t->type;
    }
    (void)sum;
    gguf_close(f);
    return 0;
}
