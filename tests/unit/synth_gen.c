// tests/unit/synth_gen.c: the synthetic-model generator. Generates `tiny` for every
// architecture into a temp folder, reopens it with the gguf reader and checks metadata,
// tensor names, shapes and types (against ../shared/models' reference files when present),
// the weight statistics of the recipe, the generated vocabularies' consistency, byte-identical
// output for the same seed at any thread count, and clean errors.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "check.h"
#include "gguf/gguf.h"
#include "synth/synth.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

static char tmpdir[256];

static const char *tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
    return buf;
}

static enum llem_err gen(const char *arch, const char *type, uint64_t seed, int threads,
                         const char *path, struct synth_result *res, struct llem_errbuf *eb)
{
    struct synth_opts o = {.preset = "tiny", .arch = arch, .type = type, .seed = seed,
                           .n_threads = threads, .gen_vocab = true};
    return synth_generate(&o, path, res, eb);
}

static struct gguf_file *open_file(const char *path)
{
    struct gguf_file *f = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(gguf_open(&f, path, NULL, &eb), &eb);
    return f;
}

static uint32_t get_u32(const struct gguf_file *f, const char *arch, const char *suffix)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v = 0;
    if (!gguf_get_u32(f, key, &v)) {
        fprintf(stderr, "missing key %s\n", key);
        check_failures++;
    }
    return v;
}

static const struct gguf_tensor_info *tensor(const struct gguf_file *f, const char *name)
{
    int64_t i = gguf_find_tensor(f, name);
    if (i < 0) {
        fprintf(stderr, "missing tensor %s\n", name);
        check_failures++;
        return NULL;
    }
    return gguf_tensor(f, i);
}

static void check_shape(const struct gguf_file *f, const char *name, int64_t ne0, int64_t ne1)
{
    const struct gguf_tensor_info *t = tensor(f, name);
    if (t) {
        CHECK_EQ_I64(t->ne[0], ne0);
        CHECK_EQ_I64(t->ne[1], ne1);
        CHECK_EQ_I64(t->n_dims, ne1 > 1 ? 2 : 1);
    }
}

// Tensor names and shapes (and types, when `types`) equal to a reference file's, in any order.
static void compare_with_reference(const struct gguf_file *f, const char *ref_name, bool types)
{
    const char *root = getenv("LLEM_SHARED");
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s", root ? root : "../shared", ref_name);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "note: %s absent, reference comparison skipped\n", path);
        return;
    }
    struct gguf_file *r = open_file(path);
    if (!r) {
        return;
    }
    CHECK_EQ_I64(gguf_n_tensors(f), gguf_n_tensors(r));
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const struct gguf_tensor_info *rt = gguf_tensor(r, i);
        const struct gguf_tensor_info *t = tensor(f, rt->name);
        if (!t) {
            continue;
        }
        CHECK_EQ_I64(t->n_dims, rt->n_dims);
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            // token_embd/output rows follow each file's own vocabulary size
            if (!(d == 1 && (strcmp(rt->name, "token_embd.weight") == 0 ||
                             strcmp(rt->name, "output.weight") == 0))) {
                CHECK_EQ_I64(t->ne[d], rt->ne[d]);
            }
        }
        if (types && t->type != rt->type) {
            fprintf(stderr, "%s: type %s, reference %s\n", rt->name, gguf_type_name(t->type),
                    gguf_type_name(rt->type));
            check_failures++;
        }
    }
    // every metadata key of the reference outside tokenizer.* / general.* exists here too
    for (int64_t i = 0; i < gguf_n_kv(r); i++) {
        const char *k = gguf_kv_key(r, i);
        if (strncmp(k, "tokenizer.", 10) != 0 && strncmp(k, "general.", 8) != 0 &&
            gguf_find_key(f, k) < 0) {
            fprintf(stderr, "%s: key %s missing\n", ref_name, k);
            check_failures++;
        }
    }
    gguf_close(r);
}

static void check_arch(const char *arch, int64_t n_tensors)
{
    char path[512], ref[64];
    struct synth_result res;
    struct llem_errbuf eb = {0};
    snprintf(ref, sizeof ref, "%s-tiny.gguf", arch);
    CHECK_OK(gen(arch, "F16", 1, 2, tmp_path(path, sizeof path, ref), &res, &eb), &eb);
    struct gguf_file *f = open_file(path);
    if (!f) {
        return;
    }
    CHECK_EQ_STR(gguf_get_str(f, "general.architecture"), arch);
    CHECK_EQ_I64(get_u32(f, "general", "file_type"), 1);
    CHECK_EQ_I64(get_u32(f, "general", "quantization_version"), 2);
    CHECK_EQ_I64(get_u32(f, arch, "context_length"), 4096);
    CHECK_EQ_I64(get_u32(f, arch, "embedding_length"), 256);
    CHECK_EQ_I64(get_u32(f, arch, "block_count"), 4);
    CHECK_EQ_I64(get_u32(f, arch, "feed_forward_length"), 512);
    CHECK_EQ_I64(get_u32(f, arch, "attention.head_count"), 8);
    CHECK_EQ_I64(get_u32(f, arch, "attention.head_count_kv"), 2);
    char key[128];
    float eps = 0, theta = 0;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    CHECK(gguf_get_f32(f, key, &eps));
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    CHECK(gguf_get_f32(f, key, &theta));
    bool llama = strcmp(arch, "llama") == 0;
    CHECK_NEAR(eps, llama ? 1e-5 : 1e-6, 1e-9);
    CHECK_NEAR(theta, llama ? 10000.0 : 1e6, 1e-3);

    uint64_t n_tok = 0;
    CHECK(gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &n_tok) != NULL);
    CHECK_EQ_I64(n_tok, res.n_vocab);
    CHECK_EQ_STR(gguf_get_str(f, "tokenizer.ggml.model"), llama ? "llama" : "gpt2");
    CHECK_EQ_I64(gguf_n_tensors(f), n_tensors);
    CHECK_EQ_I64(res.n_tensors, n_tensors);

    int64_t V = (int64_t)n_tok;
    check_shape(f, "token_embd.weight", 256, V);
    check_shape(f, "output_norm.weight", 256, 1);
    check_shape(f, "blk.3.attn_q.weight", 256, 256);
    check_shape(f, "blk.3.attn_k.weight", 256, 64);
    check_shape(f, "blk.3.attn_v.weight", 256, 64);
    check_shape(f, "blk.3.attn_output.weight", 256, 256);
    check_shape(f, "blk.3.ffn_gate.weight", 256, 512);
    check_shape(f, "blk.3.ffn_up.weight", 256, 512);
    check_shape(f, "blk.3.ffn_down.weight", 512, 256);
    CHECK((gguf_find_tensor(f, "output.weight") >= 0) == llama); // qwen: tied
    if (strcmp(arch, "qwen2") == 0) {
        check_shape(f, "blk.0.attn_q.bias", 256, 1);
        check_shape(f, "blk.0.attn_k.bias", 64, 1);
        check_shape(f, "blk.0.attn_v.bias", 64, 1);
    }
    if (strcmp(arch, "qwen3") == 0) {
        check_shape(f, "blk.0.attn_q_norm.weight", 32, 1);
        check_shape(f, "blk.0.attn_k_norm.weight", 32, 1);
        CHECK_EQ_I64(get_u32(f, arch, "attention.key_length"), 32);
        CHECK_EQ_I64(get_u32(f, arch, "attention.value_length"), 32);
    }
    if (llama) {
        CHECK_EQ_I64(get_u32(f, arch, "rope.dimension_count"), 32);
        CHECK_EQ_I64(get_u32(f, arch, "vocab_size"), V);
    }
    // F16 file: 2-D weights F16, 1-D F32
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor_info *t = gguf_tensor(f, i);
        CHECK_EQ_I64(t->type, t->n_dims == 1 ? GGML_TYPE_F32 : GGML_TYPE_F16);
    }
    snprintf(ref, sizeof ref, "%s-tiny-F16.gguf", arch);
    compare_with_reference(f, ref, true);
    gguf_close(f);
    unlink(path);
}

static void test_llama(void)
{
    check_arch("llama", 3 + 9 * 4);
}

static void test_qwen2(void)
{
    check_arch("qwen2", 2 + 12 * 4);
}

static void test_qwen3(void)
{
    check_arch("qwen3", 2 + 11 * 4);
}

// Q4_K_M and Q4_0 pick the same per-tensor types as llama-quantize did for the references.
static void test_mixtures(void)
{
    static const struct {
        const char *arch, *type, *ref;
    } cases[] = {
        {"llama", "Q4_K_M", "llama-tiny-Q4_K_M.gguf"},
        {"llama", "Q4_0", "llama-tiny-Q4_0.gguf"},
        {"llama", "Q8_0", "llama-tiny-Q8_0.gguf"},
        {"qwen2", "Q4_K_M", "qwen2-tiny-Q4_K_M.gguf"},
        {"qwen3", "Q4_0", "qwen3-tiny-Q4_0.gguf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        struct llem_errbuf eb = {0};
        CHECK_OK(gen(cases[i].arch, cases[i].type, 7, 2, tmp_path(path, sizeof path, "mix.gguf"),
                     NULL, &eb),
                 &eb);
        struct gguf_file *f = open_file(path);
        if (!f) {
            continue;
        }
        compare_with_reference(f, cases[i].ref, true);
        gguf_close(f);
        unlink(path);
    }
}

static void moments(const float *x, int64_t n, double *mean, double *std)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)x[i];
    }
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) {
        s2 += ((double)x[i] - *mean) * ((double)x[i] - *mean);
    }
    *std = sqrt(s2 / (double)n);
}

// The recipe of ../shared/models/README.md, read back from an F32 file.
static void test_weight_statistics(void)
{
    char path[512];
    struct llem_errbuf eb = {0};
    CHECK_OK(gen("qwen3", "F32", 3, 3, tmp_path(path, sizeof path, "f32.gguf"), NULL, &eb), &eb);
    struct gguf_file *f = open_file(path);
    if (!f) {
        return;
    }
    static const struct {
        const char *name;
        double mean, std;
    } want[] = {
        {"blk.1.attn_q.weight", 0, 1.5 / 16},  {"blk.1.attn_k.weight", 0, 1.5 / 16},
        {"blk.1.attn_v.weight", 0, 1.0 / 16},  {"blk.1.ffn_down.weight", 0, 1.0 / sqrt(512)},
        {"blk.1.attn_norm.weight", 1, 0.1},    {"blk.1.attn_q_norm.weight", 1.5, 0.2},
        {"output_norm.weight", 5.2, 0.3},      {"token_embd.weight", 0, 0.06},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t ti = gguf_find_tensor(f, want[i].name);
        CHECK(ti >= 0);
        if (ti < 0) {
            continue;
        }
        const struct gguf_tensor_info *t = gguf_tensor(f, ti);
        CHECK_EQ_I64(t->type, GGML_TYPE_F32);
        const float *x = gguf_tensor_data(f, ti);
        int64_t n = t->ne[0] * t->ne[1];
        double m, s;
        moments(x, n, &m, &s);
        // sampling error of a few thousand draws, and of 32 for the per-head norms
        double tol = n < 100 ? 0.35 : 0.06;
        CHECK_NEAR(m, want[i].mean, tol * want[i].std + 0.02 * fabs(want[i].mean));
        CHECK_NEAR(s / want[i].std, 1.0, tol);
    }
    gguf_close(f);
    unlink(path);
}

static bool read_file(const char *path, unsigned char **buf, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        return false;
    }
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    *buf = llem_malloc(len > 0 ? (size_t)len : 1);
    *n = *buf ? fread(*buf, 1, (size_t)len, fp) : 0;
    fclose(fp);
    return *buf && *n == (size_t)len;
}

static bool same_bytes(const char *a, const char *b)
{
    unsigned char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool ok = read_file(a, &x, &nx) && read_file(b, &y, &ny) && nx == ny &&
              memcmp(x, y, nx) == 0;
    llem_free(x);
    llem_free(y);
    return ok;
}

static void test_determinism(void)
{
    char a[512], b[512], c[512];
    struct llem_errbuf eb = {0};
    tmp_path(a, sizeof a, "d1.gguf");
    tmp_path(b, sizeof b, "d3.gguf");
    tmp_path(c, sizeof c, "dseed.gguf");
    CHECK_OK(gen("qwen2", "Q8_0", 42, 1, a, NULL, &eb), &eb);
    CHECK_OK(gen("qwen2", "Q8_0", 42, 3, b, NULL, &eb), &eb);
    CHECK_OK(gen("qwen2", "Q8_0", 43, 3, c, NULL, &eb), &eb);
    CHECK(same_bytes(a, b));
    CHECK(!same_bytes(a, c));
    unlink(a);
    unlink(b);
    unlink(c);
}

static bool in_list(const char *const *v, uint64_t n, const char *s, size_t len)
{
    for (uint64_t i = 0; i < n; i++) {
        if (strlen(v[i]) == len && memcmp(v[i], s, len) == 0) {
            return true;
        }
    }
    return false;
}

// Every merge joins two tokens into a token; SPM has all 256 byte-fallback tokens.
static void test_generated_vocab(void)
{
    char path[512];
    struct llem_errbuf eb = {0};
    CHECK_OK(gen("qwen2", "F16", 1, 1, tmp_path(path, sizeof path, "v.gguf"), NULL, &eb), &eb);
    struct gguf_file *f = open_file(path);
    if (f) {
        uint64_t nt = 0, nm = 0;
        const char *const *tok = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &nt);
        const char *const *mer = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_VALUE_STRING, &nm);
        CHECK(tok && mer && nm >= 100 && nt >= 256 + nm / 2);
        for (uint64_t i = 0; tok && mer && i < nm; i++) {
            const char *sp = strchr(mer[i], ' ');
            CHECK(sp != NULL);
            if (!sp) {
                continue;
            }
            char joined[256];
            snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - mer[i]), mer[i], sp + 1);
            CHECK(in_list(tok, nt, mer[i], (size_t)(sp - mer[i])));
            CHECK(in_list(tok, nt, sp + 1, strlen(sp + 1)));
            CHECK(in_list(tok, nt, joined, strlen(joined)));
        }
        uint32_t eos = 0;
        CHECK(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &eos));
        CHECK(tok && eos < nt && strcmp(tok[eos], "<|im_end|>") == 0);
        gguf_close(f);
    }
    unlink(path);
    CHECK_OK(gen("llama", "F16", 1, 1, path, NULL, &eb), &eb);
    f = open_file(path);
    if (f) {
        uint64_t nt = 0, ns = 0, ny = 0;
        const char *const *tok = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &nt);
        CHECK(gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_VALUE_FLOAT32, &ns) != NULL);
        const int32_t *ty = gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_VALUE_INT32, &ny);
        CHECK(nt > 300 && ns == nt && ny == nt);
        CHECK(tok && strcmp(tok[3], "<0x00>") == 0 && strcmp(tok[258], "<0xFF>") == 0);
        CHECK(ty && ty[0] == 2 && ty[1] == 3 && ty[3] == 6 && ty[259] == 1);
        gguf_close(f);
    }
    unlink(path);
}

// A vocabulary file replaces the generated one and sets n_vocab (warned); --ctx applies.
static void test_vocab_file(void)
{
    const char *root = getenv("LLEM_SHARED");
    char vocab[512], path[512];
    snprintf(vocab, sizeof vocab, "%s/testdata/tokenizer/ggml-vocab-llama-spm.gguf",
             root ? root : "../shared");
    if (access(vocab, R_OK) != 0) {
        fprintf(stderr, "note: %s absent, vocabulary file test skipped\n", vocab);
        return;
    }
    struct synth_opts o = {.preset = "tiny", .arch = "llama", .type = "Q8_0", .seed = 5,
                           .vocab_path = vocab, .n_ctx = 777, .n_threads = 2};
    struct synth_result res;
    struct llem_errbuf eb = {0};
    CHECK_OK(synth_generate(&o, tmp_path(path, sizeof path, "vf.gguf"), &res, &eb), &eb);
    CHECK_EQ_I64(res.n_vocab, 32000);
    struct gguf_file *f = open_file(path);
    if (f) {
        check_shape(f, "token_embd.weight", 256, 32000);
        CHECK_EQ_I64(get_u32(f, "llama", "context_length"), 777);
        CHECK_EQ_I64(get_u32(f, "llama", "vocab_size"), 32000);
        CHECK_EQ_I64(get_u32(f, "general", "file_type"), 7);
        bool add_bos = false;
        CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos) && add_bos);
        CHECK(gguf_find_key(f, "llama.feed_forward_length") >= 0);
        gguf_close(f);
    }
    unlink(path);
}

// --chat-template sets tokenizer.chat_template; without it there is none.
static void test_chat_template(void)
{
    char path[512];
    struct llem_errbuf eb = {0};
    struct synth_opts o = {.preset = "tiny", .arch = "qwen3", .type = "Q8_0", .gen_vocab = true,
                           .chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"};
    CHECK_OK(synth_generate(&o, tmp_path(path, sizeof path, "ct.gguf"), NULL, &eb), &eb);
    struct gguf_file *f = open_file(path);
    if (f) {
        CHECK_EQ_STR(gguf_get_str(f, "tokenizer.chat_template"), o.chat_template);
        gguf_close(f);
    }
    o.chat_template = NULL;
    CHECK_OK(synth_generate(&o, path, NULL, &eb), &eb);
    f = open_file(path);
    if (f) {
        CHECK(gguf_find_key(f, "tokenizer.chat_template") < 0);
        gguf_close(f);
    }
    unlink(path);
}

static void test_errors(void)
{
    char path[512];
    struct llem_errbuf eb = {0};
    tmp_path(path, sizeof path, "err.gguf");
    struct synth_opts o = {.preset = "nope"};
    CHECK_EQ_I64(synth_generate(&o, path, NULL, &eb), LLEM_EINVAL);
    CHECK(strstr(eb.msg, "nope") != NULL);
    o = (struct synth_opts){.preset = "tinyllama-1.1b", .arch = "qwen2"};
    CHECK_EQ_I64(synth_generate(&o, path, NULL, &eb), LLEM_EINVAL);
    o = (struct synth_opts){.preset = "tiny", .arch = "gpt-j"};
    CHECK_EQ_I64(synth_generate(&o, path, NULL, &eb), LLEM_EINVAL);
    o = (struct synth_opts){.preset = "tiny", .type = "Q9_9"};
    CHECK_EQ_I64(synth_generate(&o, path, NULL, &eb), LLEM_EINVAL);
    o = (struct synth_opts){.preset = "tiny", .vocab_path = "/nonexistent/v.gguf"};
    CHECK(synth_generate(&o, path, NULL, &eb) != LLEM_OK);
    CHECK(access(path, F_OK) != 0); // nothing written on error
    o = (struct synth_opts){.preset = "tiny", .gen_vocab = true};
    CHECK_EQ_I64(synth_generate(&o, "/nonexistent-dir/x.gguf", NULL, &eb), LLEM_EIO);
    CHECK(synth_preset_find("llama3.2-1b") && synth_preset_find("qwen3-0.6b"));
    CHECK(synth_arch_known("qwen3") && !synth_arch_known("qwen4"));
}

// Every allocation failure gives LLEM_ENOMEM (or the writer's error) and no leak (ASan).
static void test_alloc_failures(void)
{
    char path[512];
    tmp_path(path, sizeof path, "oom.gguf");
    int failures = 0;
    for (uint64_t k = 1; k < 1000000; k += (k < 48 ? 1 : k / 6)) { // every early site, then a sweep
        struct synth_opts o = {.preset = "tiny", .arch = "qwen3", .type = "F16", .n_threads = 2,
                               .gen_vocab = true};
        struct llem_errbuf eb = {0};
        llem_alloc_fail_at(k, 0);
        enum llem_err e = synth_generate(&o, path, NULL, &eb);
        int fired = llem_alloc_fail_fired();
        llem_alloc_fail_at(0, 0);
        if (!fired) {
            CHECK_OK(e, &eb);
            break;
        }
        if (e == LLEM_OK) {
            continue; // a failure some caller may absorb (none expected, but allowed)
        }
        failures++;
        CHECK_EQ_I64(e, LLEM_ENOMEM);
        CHECK(access(path, F_OK) != 0);
    }
    CHECK(failures > 10);
    unlink(path);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/llem-synth-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN_TEST(test_llama);
    RUN_TEST(test_qwen2);
    RUN_TEST(test_qwen3);
    RUN_TEST(test_mixtures);
    RUN_TEST(test_weight_statistics);
    RUN_TEST(test_determinism);
    RUN_TEST(test_generated_vocab);
    RUN_TEST(test_vocab_file);
    RUN_TEST(test_chat_template);
    RUN_TEST(test_errors);
    RUN_TEST(test_alloc_failures);
    rmdir(tmpdir);
    return TEST_EXIT();
}
