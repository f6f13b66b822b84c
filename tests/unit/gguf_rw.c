// tests/unit/gguf_rw.c: GGUF writer -> reader round trips (every value type, nested arrays,
// tensors of several types, alignment), the type tables, the three open modes, writer
// argument checks, targeted malformed files (each refused with a message naming the culprit),
// and every real GGUF in ../shared (skipped visibly when absent).
#include <dirent.h>

#include "check.h"
#include "unit/gguf_sample.h"

static void test_type_table(void)
{
    static const struct {
        uint32_t t;
        int64_t blck;
        size_t bytes;
    } want[] = {
        {GGML_TYPE_F32, 1, 4},        {GGML_TYPE_F16, 1, 2},        {GGML_TYPE_Q4_0, 32, 18},
        {GGML_TYPE_Q4_1, 32, 20},     {GGML_TYPE_Q5_0, 32, 22},     {GGML_TYPE_Q5_1, 32, 24},
        {GGML_TYPE_Q8_0, 32, 34},     {GGML_TYPE_Q8_1, 32, 36},     {GGML_TYPE_Q2_K, 256, 84},
        {GGML_TYPE_Q3_K, 256, 110},   {GGML_TYPE_Q4_K, 256, 144},   {GGML_TYPE_Q5_K, 256, 176},
        {GGML_TYPE_Q6_K, 256, 210},   {GGML_TYPE_Q8_K, 256, 292},   {GGML_TYPE_IQ2_XXS, 256, 66},
        {GGML_TYPE_IQ2_XS, 256, 74},  {GGML_TYPE_IQ3_XXS, 256, 98}, {GGML_TYPE_IQ1_S, 256, 50},
        {GGML_TYPE_IQ4_NL, 32, 18},   {GGML_TYPE_IQ3_S, 256, 110},  {GGML_TYPE_IQ2_S, 256, 82},
        {GGML_TYPE_IQ4_XS, 256, 136}, {GGML_TYPE_I8, 1, 1},         {GGML_TYPE_I16, 1, 2},
        {GGML_TYPE_I32, 1, 4},        {GGML_TYPE_I64, 1, 8},        {GGML_TYPE_F64, 1, 8},
        {GGML_TYPE_IQ1_M, 256, 56},   {GGML_TYPE_BF16, 1, 2},       {GGML_TYPE_TQ1_0, 256, 54},
        {GGML_TYPE_TQ2_0, 256, 66},   {GGML_TYPE_MXFP4, 32, 17},
    };
    int known = 0;
    for (uint32_t t = 0; t < 64; t++) {
        known += gguf_type_geometry(t, NULL, NULL);
    }
    CHECK_EQ_I64(known, (int64_t)(sizeof want / sizeof want[0]));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t blck = 0;
        size_t bytes = 0;
        CHECK(gguf_type_geometry(want[i].t, &blck, &bytes));
        CHECK_EQ_I64(blck, want[i].blck);
        CHECK_EQ_I64(bytes, want[i].bytes);
        CHECK_EQ_I64(gguf_type_from_name(gguf_type_name(want[i].t)), want[i].t);
        CHECK_EQ_I64(gguf_row_bytes(want[i].t, want[i].blck * 3), want[i].bytes * 3);
    }
    static const uint32_t retired[] = {4, 5, 31, 32, 33, 36, 37, 38, 40, 1000};
    for (size_t i = 0; i < sizeof retired / sizeof retired[0]; i++) {
        CHECK(!gguf_type_geometry(retired[i], NULL, NULL));
        CHECK_EQ_STR(gguf_type_name(retired[i]), "?");
    }
    CHECK_EQ_I64(gguf_type_from_name("q4_k"), GGML_TYPE_Q4_K);
    CHECK_EQ_I64(gguf_type_from_name("nope"), -1);
    CHECK_EQ_I64(gguf_row_bytes(GGML_TYPE_Q4_0, 33), 0);
    CHECK_EQ_I64(gguf_row_bytes(GGML_TYPE_Q4_0, 0), 0);
    CHECK_EQ_I64(gguf_row_bytes(GGML_TYPE_Q4_0, -32), 0);
    CHECK_EQ_I64(gguf_row_bytes(GGML_TYPE_I64, INT64_MAX), 0); // overflow
}

// Checks the sample's contents in an open file.
static void check_sample(const struct gguf_file *f, bool with_data)
{
    CHECK_EQ_I64(gguf_version(f), 3);
    CHECK_EQ_I64(gguf_alignment(f), 32);
    CHECK_EQ_I64(gguf_data_offset(f) % 32, 0);
    CHECK_EQ_I64(gguf_n_kv(f), 19);
    CHECK_EQ_STR(gguf_kv_key(f, 0), "general.architecture");
    CHECK_EQ_STR(gguf_get_str(f, "general.architecture"), "llama");
    uint32_t u32 = 0;
    int64_t i64 = 0;
    float f32 = 0;
    bool b = false;
    CHECK(gguf_get_u32(f, "llama.block_count", &u32) && u32 == 2);
    CHECK(gguf_get_u32(f, "test.u8", &u32) && u32 == 200);
    CHECK(gguf_get_u32(f, "test.u16", &u32) && u32 == 60000);
    CHECK(!gguf_get_u32(f, "test.i32", &u32)); // -7 does not fit
    CHECK(!gguf_get_u32(f, "test.u64", &u32)); // 2^40 does not fit
    CHECK(!gguf_get_u32(f, "general.name", &u32));
    CHECK(!gguf_get_u32(f, "missing", &u32));
    CHECK(gguf_get_i64(f, "test.i32", &i64) && i64 == -7);
    CHECK(gguf_get_i64(f, "test.i8", &i64) && i64 == -100);
    CHECK(gguf_get_i64(f, "test.i16", &i64) && i64 == -30000);
    CHECK(gguf_get_i64(f, "test.i64", &i64) && i64 == -(1ll << 50));
    CHECK(gguf_get_i64(f, "test.u64", &i64) && i64 == (1ll << 40));
    CHECK(gguf_get_f32(f, "llama.rope.freq_base", &f32) && f32 == 10000.0f);
    CHECK(gguf_get_f32(f, "test.f64", &f32) && f32 == 3.25f);
    CHECK(gguf_get_bool(f, "test.bool", &b) && b);
    CHECK(!gguf_get_bool(f, "test.u8", &b));
    const struct gguf_value *v = gguf_get(f, "test.f64");
    CHECK(v && v->type == GGUF_VALUE_FLOAT64 && v->f64 == 3.25);
    v = gguf_get(f, "test.i16");
    CHECK(v && v->type == GGUF_VALUE_INT16);
    uint64_t n = 0;
    const int32_t *ints = gguf_get_arr(f, "test.arr_i32", GGUF_VALUE_INT32, &n);
    CHECK(ints && n == 5 && ints[0] == 1 && ints[1] == -2 && ints[4] == 5);
    CHECK(!gguf_get_arr(f, "test.arr_i32", GGUF_VALUE_UINT32, &n));
    const char *const *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &n);
    CHECK(toks && n == 3);
    if (toks && n == 3) {
        CHECK_EQ_STR(toks[0], "<s>");
        CHECK_EQ_STR(toks[2], "hello \xc3\xa9");
    }
    const struct gguf_value *nested = gguf_get_arr(f, "test.arr_nested", GGUF_VALUE_ARRAY, &n);
    CHECK(nested && n == 2);
    if (nested && n == 2) {
        CHECK(nested[0].type == GGUF_VALUE_ARRAY && nested[0].arr.type == GGUF_VALUE_UINT8 &&
              nested[0].arr.n == 3 && ((const uint8_t *)nested[0].arr.data)[2] == 3);
        CHECK(nested[1].arr.type == GGUF_VALUE_STRING && nested[1].arr.n == 2);
        if (nested[1].arr.n == 2) {
            CHECK_EQ_STR(((const char *const *)nested[1].arr.data)[1], "bc");
        }
    }
    CHECK(gguf_get_arr(f, "test.arr_empty", GGUF_VALUE_FLOAT32, &n) && n == 0);

    CHECK_EQ_I64(gguf_n_tensors(f), SAMPLE_N_TENSORS);
    static const char *const names[] = {"tok_embd.weight", "norm.weight", "blk.0.attn_q.weight",
                                        "blk.0.ffn_up.weight"};
    static const uint64_t bytes[] = {128, 128, 108, 288};
    for (int i = 0; i < SAMPLE_N_TENSORS; i++) {
        const struct gguf_tensor_info *t = gguf_tensor(f, i);
        CHECK_EQ_STR(t->name, names[i]);
        CHECK_EQ_I64(gguf_find_tensor(f, names[i]), i);
        CHECK_EQ_I64(t->n_bytes, bytes[i]);
        CHECK_EQ_I64(t->offset % 32, 0);
        const void *d = gguf_tensor_data(f, i);
        if (with_data) {
            CHECK(d && memcmp(d, sample_payload[i], (size_t)bytes[i]) == 0);
        } else {
            CHECK(d == NULL);
        }
    }
    const struct gguf_tensor_info *t = gguf_tensor(f, 2);
    CHECK(t->type == GGML_TYPE_Q4_0 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 3 &&
          t->ne[2] == 1 && t->ne[3] == 1);
    CHECK_EQ_I64(gguf_find_tensor(f, "nope"), -1);
    CHECK_EQ_I64(gguf_find_key(f, "nope"), -1);
    CHECK(gguf_tensor(f, 99) == NULL && gguf_tensor(f, -1) == NULL);
}

static void test_round_trip(void)
{
    char path[256];
    sample_path(path, sizeof path, "rt");
    struct gguf_writer *w = gguf_writer_new();
    struct llem_errbuf eb = {0};
    CHECK(w && sample_build(w) == 0);
    CHECK_OK(gguf_writer_write(w, path, &eb), &eb);
    gguf_writer_free(w);
    uint64_t size = 0;
    CHECK_OK(fs_file_size(path, &size, &eb), &eb);
    CHECK_EQ_I64(size % 32, 0); // last tensor padded too (llama.cpp reads the padded size)

    const struct gguf_open_opts modes[3] = {{0}, {.no_mmap = true}, {.metadata_only = true}};
    for (int m = 0; m < 3; m++) {
        struct gguf_file *f = NULL;
        CHECK_OK(gguf_open(&f, path, &modes[m], &eb), &eb);
        if (f) {
            CHECK_EQ_I64(gguf_file_size(f), size);
            check_sample(f, m != 2);
        }
        gguf_close(f);
    }
    char *buf;
    size_t len;
    CHECK_OK(fs_read_file(path, 1u << 20, &buf, &len, &eb), &eb);
    struct gguf_file *f = NULL;
    CHECK_OK(gguf_open_memory(&f, buf, len, &eb), &eb);
    if (f) {
        check_sample(f, true);
        // copy every key into a new writer: the result has identical metadata bytes
        char path2[256];
        sample_path(path2, sizeof path2, "copy");
        struct gguf_writer *w2 = gguf_writer_new();
        CHECK_OK(gguf_writer_copy_kv(w2, f, NULL), &eb);
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
            const struct gguf_tensor_info *t = gguf_tensor(f, i);
            CHECK_OK(gguf_writer_add_tensor(w2, t->name, t->type, t->n_dims, t->ne,
                                            gguf_tensor_data(f, i)),
                     &eb);
        }
        CHECK_OK(gguf_writer_write(w2, path2, &eb), &eb);
        gguf_writer_free(w2);
        char *buf2;
        size_t len2;
        CHECK_OK(fs_read_file(path2, 1u << 20, &buf2, &len2, &eb), &eb);
        CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
        llem_free(buf2);
        unlink(path2);
    }
    gguf_close(f);
    llem_free(buf);
    unlink(path);
}

static void test_alignment(void)
{
    char path[256];
    sample_path(path, sizeof path, "align");
    struct llem_errbuf eb = {0};
    struct gguf_writer *w = gguf_writer_new();
    CHECK(sample_build(w) == 0);
    CHECK_OK(gguf_writer_set_u32(w, "general.alignment", 64), &eb);
    CHECK_OK(gguf_writer_write(w, path, &eb), &eb);
    struct gguf_file *f = NULL;
    CHECK_OK(gguf_open(&f, path, NULL, &eb), &eb);
    if (f) {
        CHECK_EQ_I64(gguf_alignment(f), 64);
        CHECK_EQ_I64(gguf_data_offset(f) % 64, 0);
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
            CHECK_EQ_I64(gguf_tensor(f, i)->offset % 64, 0);
            CHECK(memcmp(gguf_tensor_data(f, i), sample_payload[i],
                         (size_t)gguf_tensor(f, i)->n_bytes) == 0);
        }
    }
    gguf_close(f);
    unlink(path);
    // not a power of two: refused, and nothing is left at the path
    CHECK_OK(gguf_writer_set_u32(w, "general.alignment", 48), &eb);
    CHECK_EQ_I64(gguf_writer_write(w, path, &eb), LLEM_EINVAL);
    CHECK(access(path, F_OK) != 0);
    gguf_writer_free(w);
}

static void test_writer_errors(void)
{
    struct gguf_writer *w = gguf_writer_new();
    struct llem_errbuf eb = {0};
    static const uint8_t data[4096];
    int64_t ne[4] = {32, 2, 1, 1};
    CHECK_EQ_I64(gguf_writer_add_tensor(w, "a", GGML_TYPE_Q4_0, 2, ne, data), LLEM_OK);
    CHECK_EQ_I64(gguf_writer_add_tensor(w, "a", GGML_TYPE_Q4_0, 2, ne, data), LLEM_EINVAL);
    CHECK_EQ_I64(gguf_writer_add_tensor(w, "b", 4, 2, ne, data), LLEM_EINVAL);
    CHECK_EQ_I64(gguf_writer_add_tensor(w, "b", GGML_TYPE_Q4_0, 5, ne, data), LLEM_EINVAL);
    CHECK_EQ_I64(gguf_writer_add_tensor(w, "", GGML_TYPE_F32, 1, ne, data), LLEM_EINVAL);
    int64_t bad[2] = {33, 1};
    CHECK_EQ_I64(gguf_writer_add_tensor(w, "b", GGML_TYPE_Q4_0, 2, bad, data), LLEM_EINVAL);
    int64_t zero[2] = {32, 0};
    CHECK_EQ_I64(gguf_writer_add_tensor(w, "b", GGML_TYPE_F32, 2, zero, data), LLEM_EINVAL);
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    CHECK_EQ_I64(gguf_writer_add_tensor(w, longname, GGML_TYPE_F32, 1, ne, data), LLEM_EINVAL);
    longname[63] = '\0';
    CHECK_EQ_I64(gguf_writer_add_tensor(w, longname, GGML_TYPE_F32, 1, ne, data), LLEM_OK);
    CHECK_EQ_I64(gguf_writer_add_tensor(w, "nodata", GGML_TYPE_F32, 1, ne, NULL), LLEM_OK);
    CHECK_EQ_I64(gguf_writer_set_str(w, "", "x"), LLEM_EINVAL);
    CHECK_EQ_I64(gguf_writer_set_str(w, "k", NULL), LLEM_EINVAL);
    CHECK_EQ_I64(gguf_writer_set_arr(w, "k", GGUF_VALUE_UINT8, NULL, 3), LLEM_EINVAL);
    // arrays nest up to LLEM_GGUF_MAX_ARRAY_DEPTH (4) levels, in the writer as in the reader
    static const uint8_t one = 1;
    struct gguf_value lv[5];
    lv[0] = (struct gguf_value){.type = GGUF_VALUE_ARRAY};
    lv[0].arr.type = GGUF_VALUE_UINT8;
    lv[0].arr.n = 1;
    lv[0].arr.data = &one;
    for (int i = 1; i < 5; i++) {
        lv[i] = (struct gguf_value){.type = GGUF_VALUE_ARRAY};
        lv[i].arr.type = GGUF_VALUE_ARRAY;
        lv[i].arr.n = 1;
        lv[i].arr.data = &lv[i - 1];
    }
    CHECK_EQ_I64(gguf_writer_set_value(w, "deep4", &lv[3]), LLEM_OK);
    CHECK_EQ_I64(gguf_writer_set_value(w, "deep5", &lv[4]), LLEM_EINVAL);
    CHECK_EQ_I64(gguf_writer_set_u32(w, "k", 1), LLEM_OK);
    CHECK_EQ_I64(gguf_writer_set_str(w, "k", "replaced"), LLEM_OK);
    char path[256];
    sample_path(path, sizeof path, "werr");
    CHECK_EQ_I64(gguf_writer_write(w, path, &eb), LLEM_EINVAL); // 'nodata' has no data
    CHECK(strstr(eb.msg, "nodata") != NULL);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ_I64(gguf_writer_set_tensor_data(w, "nodata", data), LLEM_OK);
    CHECK_EQ_I64(gguf_writer_set_tensor_data(w, "missing", data), LLEM_ENOTFOUND);
    CHECK_OK(gguf_writer_write(w, path, &eb), &eb);
    struct gguf_file *f = NULL;
    CHECK_OK(gguf_open(&f, path, NULL, &eb), &eb);
    if (f) {
        CHECK_EQ_I64(gguf_n_kv(f), 2);
        const struct gguf_value *d = gguf_get(f, "deep4");
        for (int i = 0; i < 3 && d; i++) {
            CHECK(d->type == GGUF_VALUE_ARRAY && d->arr.type == GGUF_VALUE_ARRAY && d->arr.n == 1);
            d = d->arr.data;
        }
        CHECK(d && d->arr.type == GGUF_VALUE_UINT8 && *(const uint8_t *)d->arr.data == 1);
        CHECK_EQ_STR(gguf_get_str(f, "k"), "replaced");
        CHECK_EQ_I64(gguf_n_tensors(f), 3);
    }
    gguf_close(f);
    unlink(path);
    gguf_writer_free(w);
    gguf_writer_free(NULL);
    gguf_close(NULL);
}

// Opens a raw image and checks the error code and that the message contains `needle`.
static void expect_refused(const struct rawb *b, enum llem_err code, const char *needle)
{
    struct gguf_file *f = NULL;
    struct llem_errbuf eb = {0};
    enum llem_err rc = gguf_open_memory(&f, b->p, b->n, &eb);
    if (rc != code || !strstr(eb.msg, needle)) {
        fprintf(stderr, "  expected %s containing '%s', got %s: %s\n", llem_err_name(code), needle,
                llem_err_name(rc), eb.msg);
    }
    CHECK_EQ_I64(rc, code);
    CHECK(strstr(eb.msg, needle) != NULL);
    CHECK(f == NULL);
    gguf_close(f);
}

static void test_malformed(void)
{
    static struct rawb b;
    const int64_t ne1[1] = {32}, ne4[4] = {32, 1, 1, 1}, ne5[5] = {32, 1, 1, 1, 1};
    // a valid two-tensor file first, to prove the builder is right
    raw_header(&b, 3, 2, 1);
    raw_str(&b, "general.architecture");
    raw_u32(&b, GGUF_VALUE_STRING);
    raw_str(&b, "llama");
    raw_tensor(&b, "a", 1, ne1, GGML_TYPE_F32, 0);
    raw_tensor(&b, "b", 4, ne4, GGML_TYPE_F32, 128);
    raw_pad(&b, 32);
    for (int i = 0; i < 256; i++) {
        raw_bytes(&b, "\x01", 1);
    }
    struct gguf_file *f = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(gguf_open_memory(&f, b.p, b.n, &eb), &eb);
    gguf_close(f);

    raw_header(&b, 3, 0, 0);
    memcpy(b.p, "GGML", 4);
    expect_refused(&b, LLEM_EFORMAT, "not a GGUF file");
    raw_header(&b, 0x03000000, 0, 0);
    expect_refused(&b, LLEM_EFORMAT, "big-endian");
    raw_header(&b, 1, 0, 0);
    expect_refused(&b, LLEM_EFORMAT, "v1");
    raw_header(&b, 4, 0, 0);
    expect_refused(&b, LLEM_EFORMAT, "version 4");
    raw_header(&b, 3, 1u << 20, 0);
    expect_refused(&b, LLEM_ELIMIT, "tensors exceed");
    raw_header(&b, 3, 0, UINT64_MAX);
    expect_refused(&b, LLEM_ELIMIT, "metadata pairs exceed");
    raw_header(&b, 3, 0, 1000);
    expect_refused(&b, LLEM_EFORMAT, "cannot fit");

    // duplicate key
    raw_header(&b, 3, 0, 2);
    for (int i = 0; i < 2; i++) {
        raw_str(&b, "dup.key");
        raw_u32(&b, GGUF_VALUE_UINT8);
        raw_bytes(&b, "\x01", 1);
    }
    expect_refused(&b, LLEM_EFORMAT, "duplicate key 'dup.key'");
    // unknown value type, bad bool, huge string, huge array, deep nesting, key with NUL
    raw_header(&b, 3, 0, 1);
    raw_str(&b, "k.type");
    raw_u32(&b, 13);
    raw_u64(&b, 0);
    expect_refused(&b, LLEM_EFORMAT, "k.type");
    raw_header(&b, 3, 0, 1);
    raw_str(&b, "k.bool");
    raw_u32(&b, GGUF_VALUE_BOOL);
    raw_bytes(&b, "\x02", 1);
    raw_u64(&b, 0);
    expect_refused(&b, LLEM_EFORMAT, "k.bool");
    raw_header(&b, 3, 0, 1);
    raw_str(&b, "k.str");
    raw_u32(&b, GGUF_VALUE_STRING);
    raw_u64(&b, UINT64_MAX);
    expect_refused(&b, LLEM_ELIMIT, "k.str");
    raw_header(&b, 3, 0, 1);
    raw_str(&b, "k.arr");
    raw_u32(&b, GGUF_VALUE_ARRAY);
    raw_u32(&b, GGUF_VALUE_UINT64);
    raw_u64(&b, 1u << 23);
    expect_refused(&b, LLEM_EFORMAT, "k.arr");
    raw_header(&b, 3, 0, 1);
    raw_str(&b, "k.arr");
    raw_u32(&b, GGUF_VALUE_ARRAY);
    raw_u32(&b, GGUF_VALUE_UINT8);
    raw_u64(&b, UINT64_MAX / 2);
    expect_refused(&b, LLEM_ELIMIT, "k.arr");
    raw_header(&b, 3, 0, 1);
    raw_str(&b, "k.deep");
    raw_u32(&b, GGUF_VALUE_ARRAY);
    for (int i = 0; i < 8; i++) {
        raw_u32(&b, GGUF_VALUE_ARRAY);
        raw_u64(&b, 1);
    }
    expect_refused(&b, LLEM_ELIMIT, "k.deep");
    raw_header(&b, 3, 0, 1);
    raw_u64(&b, 3);
    raw_bytes(&b, "a\0b", 3);
    raw_u32(&b, GGUF_VALUE_UINT8);
    raw_bytes(&b, "\x01", 1);
    expect_refused(&b, LLEM_EFORMAT, "NUL");
    // general.alignment: wrong type, not a power of two
    raw_header(&b, 3, 0, 1);
    raw_str(&b, "general.alignment");
    raw_u32(&b, GGUF_VALUE_UINT64);
    raw_u64(&b, 32);
    expect_refused(&b, LLEM_EFORMAT, "general.alignment");
    raw_header(&b, 3, 0, 1);
    raw_str(&b, "general.alignment");
    raw_u32(&b, GGUF_VALUE_UINT32);
    raw_u32(&b, 48);
    expect_refused(&b, LLEM_EFORMAT, "power of two");

    // tensor infos: each case is a one-tensor (or two-tensor) file followed by 512 data bytes
    struct {
        const char *name, *name2;
        uint32_t n_dims;
        const int64_t *ne;
        uint32_t type;
        uint64_t off, off2;
        enum llem_err code;
        const char *needle;
    } cases[] = {
        {"t.dims", NULL, 5, ne5, GGML_TYPE_F32, 0, 0, LLEM_EFORMAT, "'t.dims': 5 dimensions"},
        {"t.dims0", NULL, 0, ne1, GGML_TYPE_F32, 0, 0, LLEM_EFORMAT, "'t.dims0'"},
        {"t.zero", NULL, 2, (const int64_t[]){32, 0}, GGML_TYPE_F32, 0, 0, LLEM_EFORMAT,
         "'t.zero': dimension 1 is 0"},
        {"t.neg", NULL, 1, (const int64_t[]){-32}, GGML_TYPE_F32, 0, 0, LLEM_EFORMAT, "'t.neg'"},
        {"t.big", NULL, 4, (const int64_t[]){1 << 20, 1 << 20, 1 << 20, 1 << 20}, GGML_TYPE_F32, 0,
         0, LLEM_ELIMIT, "'t.big'"},
        {"t.ovf", NULL, 2, (const int64_t[]){INT64_MAX, INT64_MAX}, GGML_TYPE_F32, 0, 0,
         LLEM_ELIMIT, "'t.ovf'"},
        {"t.type", NULL, 1, ne1, 4, 0, 0, LLEM_EFORMAT, "'t.type': unknown or retired type id 4"},
        {"t.type2", NULL, 1, ne1, 0xffffffffu, 0, 0, LLEM_EFORMAT, "'t.type2'"},
        {"t.blk", NULL, 1, (const int64_t[]){48}, GGML_TYPE_Q4_0, 0, 0, LLEM_EFORMAT,
         "'t.blk': row of 48"},
        {"t.align", NULL, 1, ne1, GGML_TYPE_F32, 4, 0, LLEM_EFORMAT, "'t.align': offset 4"},
        {"t.out", NULL, 1, ne1, GGML_TYPE_F32, 512, 0, LLEM_EFORMAT, "'t.out'"},
        {"t.wrap", NULL, 1, ne1, GGML_TYPE_F32, UINT64_MAX - 31, 0, LLEM_EFORMAT, "'t.wrap'"},
        {"t.a", "t.a", 1, ne1, GGML_TYPE_F32, 0, 128, LLEM_EFORMAT, "duplicate tensor name 't.a'"},
        {"t.x", "t.y", 1, ne1, GGML_TYPE_F32, 64, 32, LLEM_EFORMAT, "'t.y' and 't.x' overlap"},
        {"", NULL, 1, ne1, GGML_TYPE_F32, 0, 0, LLEM_EFORMAT, "empty name"},
        {"0123456789012345678901234567890123456789012345678901234567890123456789", NULL, 1, ne1,
         GGML_TYPE_F32, 0, 0, LLEM_ELIMIT, "tensor name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raw_header(&b, 2, cases[i].name2 ? 2 : 1, 0);
        raw_tensor(&b, cases[i].name, cases[i].n_dims, cases[i].ne, cases[i].type, cases[i].off);
        if (cases[i].name2) {
            raw_tensor(&b, cases[i].name2, 1, ne1, GGML_TYPE_F32, cases[i].off2);
        }
        raw_pad(&b, 32);
        for (int k = 0; k < 512; k++) {
            raw_bytes(&b, "", 1);
        }
        expect_refused(&b, cases[i].code, cases[i].needle);
    }
}

static void test_open_errors(void)
{
    struct gguf_file *f = NULL;
    struct llem_errbuf eb = {0};
    CHECK_EQ_I64(gguf_open(&f, "/nonexistent/x.gguf", NULL, &eb), LLEM_EIO);
    CHECK(strstr(eb.msg, "/nonexistent/x.gguf") != NULL);
    CHECK_EQ_I64(gguf_open(&f, ".", NULL, &eb), LLEM_EIO); // a folder
    char path[256];
    sample_path(path, sizeof path, "empty");
    struct llem_errbuf eb2 = {0};
    CHECK_OK(fs_write_atomic(path, "", 0, &eb2), &eb2);
    const struct gguf_open_opts modes[2] = {{0}, {.no_mmap = true}};
    for (int m = 0; m < 2; m++) {
        CHECK_EQ_I64(gguf_open(&f, path, &modes[m], &eb), LLEM_EFORMAT);
        CHECK(f == NULL);
    }
    unlink(path);
}

// Every GGUF in a ../shared folder opens, has an architecture and in-file tensor data.
static int check_folder(const char *rel)
{
    const char *root = getenv("LLEM_SHARED") ? getenv("LLEM_SHARED") : "../shared";
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "skip  %s (absent)\n", dir);
        return 0;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct gguf_file *f = NULL;
        struct llem_errbuf eb = {0};
        CHECK_OK(gguf_open(&f, path, NULL, &eb), &eb);
        if (f) {
            CHECK(gguf_n_tensors(f) > 0);
            uint64_t sum = 0;
            for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
                const struct gguf_tensor_info *t = gguf_tensor(f, i);
                CHECK(gguf_tensor_data(f, i) != NULL);
                CHECK(gguf_data_offset(f) + t->offset + t->n_bytes <= gguf_file_size(f));
                sum += t->n_bytes;
            }
            fprintf(stderr, "      %s: v%u, %lld keys, %lld tensors, %llu data bytes, arch %s\n",
                    e->d_name, gguf_version(f), (long long)gguf_n_kv(f),
                    (long long)gguf_n_tensors(f), (unsigned long long)sum,
                    gguf_get_str(f, "general.architecture")
                        ? gguf_get_str(f, "general.architecture")
                        : "(none)");
        }
        gguf_close(f);
        n++;
    }
    closedir(d);
    return n;
}

static void test_shared_files(void)
{
    int n = check_folder("models") + check_folder("testdata/quant");
    if (n == 0) {
        fprintf(stderr, "skip  test_shared_files: no GGUF files in ../shared\n");
    }
}

int main(void)
{
    RUN_TEST(test_type_table);
    RUN_TEST(test_round_trip);
    RUN_TEST(test_alignment);
    RUN_TEST(test_writer_errors);
    RUN_TEST(test_malformed);
    RUN_TEST(test_open_errors);
    RUN_TEST(test_shared_files);
    return TEST_EXIT();
}
