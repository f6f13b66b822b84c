// tests/unit/gguf_sample.h: test helpers shared by the GGUF unit, robust and fuzz-seed code:
// a small but complete sample file built with the writer (every value type, nested arrays,
// several tensor types) and a raw byte builder for hand-crafted (broken) files.
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "gguf/gguf.h"

// Tensor payloads of the sample: deterministic bytes, shapes of several types.
#define SAMPLE_N_TENSORS 4
static uint8_t sample_payload[4][1024];

static inline void sample_fill(void)
{
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 1024; i++) {
            sample_payload[t][i] = (uint8_t)(i * 7 + t * 31 + (i >> 3));
        }
    }
}

// Builds the sample into writer w (does not write it). Returns 0 on success.
static inline int sample_build(struct gguf_writer *w)
{
    sample_fill();
    static const int32_t ints[5] = {1, -2, 3, -4, 5};
    static const char *const strs[3] = {"<s>", "</s>", "hello \xc3\xa9"};
    static const uint8_t u8s[3] = {1, 2, 3};
    static const char *const inner_strs[2] = {"a", "bc"};
    struct gguf_value inner[2] = {{.type = GGUF_VALUE_ARRAY}, {.type = GGUF_VALUE_ARRAY}};
    inner[0].arr.type = GGUF_VALUE_UINT8;
    inner[0].arr.n = 3;
    inner[0].arr.data = u8s;
    inner[1].arr.type = GGUF_VALUE_STRING;
    inner[1].arr.n = 2;
    inner[1].arr.data = inner_strs;
    struct gguf_value v;
    int bad = 0;
    bad |= gguf_writer_set_str(w, "general.architecture", "llama");
    bad |= gguf_writer_set_str(w, "general.name", "sample");
    bad |= gguf_writer_set_u32(w, "llama.block_count", 2);
    bad |= gguf_writer_set_u32(w, "llama.context_length", 128);
    bad |= gguf_writer_set_u32(w, "llama.embedding_length", 32);
    bad |= gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    bad |= gguf_writer_set_i32(w, "test.i32", -7);
    bad |= gguf_writer_set_u64(w, "test.u64", 1ull << 40);
    bad |= gguf_writer_set_bool(w, "test.bool", true);
    v = (struct gguf_value){.type = GGUF_VALUE_UINT8, .u64 = 200};
    bad |= gguf_writer_set_value(w, "test.u8", &v);
    v = (struct gguf_value){.type = GGUF_VALUE_INT8, .i64 = -100};
    bad |= gguf_writer_set_value(w, "test.i8", &v);
    v = (struct gguf_value){.type = GGUF_VALUE_UINT16, .u64 = 60000};
    bad |= gguf_writer_set_value(w, "test.u16", &v);
    v = (struct gguf_value){.type = GGUF_VALUE_INT16, .i64 = -30000};
    bad |= gguf_writer_set_value(w, "test.i16", &v);
    v = (struct gguf_value){.type = GGUF_VALUE_INT64, .i64 = -(1ll << 50)};
    bad |= gguf_writer_set_value(w, "test.i64", &v);
    v = (struct gguf_value){.type = GGUF_VALUE_FLOAT64, .f64 = 3.25};
    bad |= gguf_writer_set_value(w, "test.f64", &v);
    bad |= gguf_writer_set_arr(w, "test.arr_i32", GGUF_VALUE_INT32, ints, 5);
    bad |= gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, 3);
    bad |= gguf_writer_set_arr(w, "test.arr_nested", GGUF_VALUE_ARRAY, inner, 2);
    bad |= gguf_writer_set_arr(w, "test.arr_empty", GGUF_VALUE_FLOAT32, NULL, 0);
    static const int64_t ne_f32[2] = {8, 4};  // 128 B
    static const int64_t ne_f16[1] = {64};    // 128 B
    static const int64_t ne_q40[2] = {64, 3}; // 2 blocks * 18 * 3 = 108 B
    // 2 * 144 = 288 B, a multiple of 32: the file ends with tensor bytes, no padding, so
    // every strict prefix of it cuts real content (tests/robust relies on this)
    static const int64_t ne_q4k[2] = {256, 2};
    bad |=
        gguf_writer_add_tensor(w, "tok_embd.weight", GGML_TYPE_F32, 2, ne_f32, sample_payload[0]);
    bad |= gguf_writer_add_tensor(w, "norm.weight", GGML_TYPE_F16, 1, ne_f16, sample_payload[1]);
    bad |= gguf_writer_add_tensor(w, "blk.0.attn_q.weight", GGML_TYPE_Q4_0, 2, ne_q40,
                                  sample_payload[2]);
    bad |= gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", GGML_TYPE_Q4_K, 2, ne_q4k,
                                  sample_payload[3]);
    return bad;
}

// Unique scratch path in the working directory (the build dir under CTest).
static inline const char *sample_path(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "./gguf-test-%s-%ld.gguf", tag, (long)getpid());
    return buf;
}

// The sample file's bytes (malloc'd; caller frees), or NULL.
static inline uint8_t *sample_bytes(size_t *len)
{
    char path[256];
    sample_path(path, sizeof path, "sample");
    struct gguf_writer *w = gguf_writer_new();
    struct llem_errbuf eb = {0};
    uint8_t *out = NULL;
    if (w && sample_build(w) == 0 && gguf_writer_write(w, path, &eb) == LLEM_OK) {
        char *buf;
        if (fs_read_file(path, 1u << 20, &buf, len, &eb) == LLEM_OK) {
            out = malloc(*len ? *len : 1);
            if (out) {
                memcpy(out, buf, *len);
            }
            llem_free(buf);
        }
    }
    if (!out) {
        fprintf(stderr, "sample_bytes: %s\n", eb.msg);
    }
    gguf_writer_free(w);
    unlink(path);
    return out;
}

// ---- raw builder ----------------------------------------------------------------------------

struct rawb {
    uint8_t p[1 << 16];
    size_t n;
};

static inline void raw_bytes(struct rawb *b, const void *d, size_t n)
{
    if (b->n + n <= sizeof b->p) {
        memcpy(b->p + b->n, d, n);
        b->n += n;
    }
}
static void raw_u32(struct rawb *b, uint32_t v)
{
    raw_bytes(b, &v, 4);
}
static void raw_u64(struct rawb *b, uint64_t v)
{
    raw_bytes(b, &v, 8);
}
static inline void raw_str(struct rawb *b, const char *s)
{
    raw_u64(b, strlen(s));
    raw_bytes(b, s, strlen(s));
}
static inline void raw_pad(struct rawb *b, size_t align)
{
    while (b->n % align) {
        raw_bytes(b, "", 1);
    }
}
static inline void raw_header(struct rawb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b->n = 0;
    raw_bytes(b, "GGUF", 4);
    raw_u32(b, version);
    raw_u64(b, n_tensors);
    raw_u64(b, n_kv);
}
// A tensor info with up to 4 dims.
static inline void raw_tensor(struct rawb *b, const char *name, uint32_t n_dims, const int64_t *ne,
                              uint32_t type, uint64_t offset)
{
    raw_str(b, name);
    raw_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) {
        raw_bytes(b, &ne[d], 8);
    }
    raw_u32(b, type);
    raw_u64(b, offset);
}
