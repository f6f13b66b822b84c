// synth/synth_arch.c: the architectures and presets the generator knows. Adding an
// architecture = one tensor-list function and one row of `archs` (plus presets for its real
// model sizes). Tensor names, shapes and metadata keys follow llama.cpp (src/llama-arch.cpp,
// llama-model.cpp) and our reference files in ../shared/models; init recipes follow
// ../shared/models/README.md ("How they were made").
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "synth/synth_int.h"

// ---- tensor list ------------------------------------------------------------------------------

enum llem_err synth_list_add(struct synth_tensor_list *l, int layer, enum synth_init init,
                             float mean, float std, uint32_t n_dims, const int64_t *ne,
                             const char *fmt, ...)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct synth_tensor *v = llem_realloc(l->v, cap * sizeof *v);
        if (!v) {
            return LLEM_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    struct synth_tensor *t = &l->v[l->n];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof t->name || n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        return LLEM_EINVAL;
    }
    t->n_dims = n_dims;
    for (uint32_t i = 0; i < GGUF_MAX_DIMS; i++) {
        t->ne[i] = i < n_dims ? ne[i] : 1;
    }
    t->layer = layer;
    t->init = init;
    t->mean = mean;
    t->std = std;
    l->n++;
    return LLEM_OK;
}

void synth_list_deinit(struct synth_tensor_list *l)
{
    if (l) {
        llem_free(l->v);
        memset(l, 0, sizeof *l);
    }
}

// ---- dense decoder (llama, qwen2, qwen3 and most look-alikes) ---------------------------------

enum {
    DENSE_QKV_BIAS = 1u << 0, // attn_q/k/v.bias (qwen2)
    DENSE_QK_NORM = 1u << 1,  // per-head attn_q_norm / attn_k_norm (qwen3)
};

#define ADD(layer, init, mean, std, nd, ...)                                                \
    do {                                                                                    \
        enum llem_err e_ = synth_list_add(out, layer, init, mean, std, nd, __VA_ARGS__);    \
        if (e_) {                                                                           \
            return e_;                                                                      \
        }                                                                                   \
    } while (0)

// Linear weight [fan_in, fan_out]: N(0, gain / sqrt(fan_in)) keeps activations at unit scale.
static float lin_std(int64_t fan_in, float gain)
{
    return gain / sqrtf((float)fan_in);
}

static enum llem_err dense_tensors(const struct synth_shape *s, struct synth_tensor_list *out,
                                   unsigned flags)
{
    const struct synth_hparams *hp = &s->hp;
    const int64_t E = hp->n_embd, V = hp->n_vocab, F = hp->n_ff;
    const int64_t Q = (int64_t)s->head_dim * hp->n_head;     // query width
    const int64_t KV = (int64_t)s->head_dim * hp->n_head_kv; // key/value width
    const int64_t HD = s->head_dim;
    const float e = sqrtf((float)E);

    // Untied: token_embd N(0, 1), output N(0, 5/sqrt(n_embd)) (logit std ~5). Tied: small
    // embeddings (0.96/sqrt(n_embd), so the current token does not dominate its own logits)
    // and the logit scale comes from output_norm N(5.2, 0.3).
    float embd_std = hp->tied ? 0.96f / e : 1.0f;
    ADD(-1, SYNTH_INIT_NORMAL, 0.0f, embd_std, 2, (int64_t[]){E, V}, "token_embd.weight");
    if (hp->rope_llama3_factor > 0.0f) {
        ADD(-1, SYNTH_INIT_ROPE_FREQS, 0.0f, 0.0f, 1, (int64_t[]){HD / 2}, "rope_freqs.weight");
    }
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        int l = (int)il;
        ADD(l, SYNTH_INIT_NORMAL, 1.0f, 0.1f, 1, (int64_t[]){E}, "blk.%d.attn_norm.weight", l);
        ADD(l, SYNTH_INIT_NORMAL, 0.0f, lin_std(E, 1.5f), 2, (int64_t[]){E, Q},
            "blk.%d.attn_q.weight", l);
        if (flags & DENSE_QKV_BIAS) {
            ADD(l, SYNTH_INIT_NORMAL, 0.0f, 0.5f, 1, (int64_t[]){Q}, "blk.%d.attn_q.bias", l);
        }
        ADD(l, SYNTH_INIT_NORMAL, 0.0f, lin_std(E, 1.5f), 2, (int64_t[]){E, KV},
            "blk.%d.attn_k.weight", l);
        if (flags & DENSE_QKV_BIAS) {
            ADD(l, SYNTH_INIT_NORMAL, 0.0f, 0.5f, 1, (int64_t[]){KV}, "blk.%d.attn_k.bias", l);
        }
        ADD(l, SYNTH_INIT_NORMAL, 0.0f, lin_std(E, 1.0f), 2, (int64_t[]){E, KV},
            "blk.%d.attn_v.weight", l);
        if (flags & DENSE_QKV_BIAS) {
            ADD(l, SYNTH_INIT_NORMAL, 0.0f, 0.2f, 1, (int64_t[]){KV}, "blk.%d.attn_v.bias", l);
        }
        if (flags & DENSE_QK_NORM) {
            ADD(l, SYNTH_INIT_NORMAL, 1.5f, 0.2f, 1, (int64_t[]){HD}, "blk.%d.attn_q_norm.weight",
                l);
            ADD(l, SYNTH_INIT_NORMAL, 1.0f, 0.2f, 1, (int64_t[]){HD}, "blk.%d.attn_k_norm.weight",
                l);
        }
        ADD(l, SYNTH_INIT_NORMAL, 0.0f, lin_std(Q, 1.0f), 2, (int64_t[]){Q, E},
            "blk.%d.attn_output.weight", l);
        ADD(l, SYNTH_INIT_NORMAL, 1.0f, 0.1f, 1, (int64_t[]){E}, "blk.%d.ffn_norm.weight", l);
        ADD(l, SYNTH_INIT_NORMAL, 0.0f, lin_std(E, 1.0f), 2, (int64_t[]){E, F},
            "blk.%d.ffn_gate.weight", l);
        ADD(l, SYNTH_INIT_NORMAL, 0.0f, lin_std(E, 1.0f), 2, (int64_t[]){E, F},
            "blk.%d.ffn_up.weight", l);
        ADD(l, SYNTH_INIT_NORMAL, 0.0f, lin_std(F, 1.0f), 2, (int64_t[]){F, E},
            "blk.%d.ffn_down.weight", l);
    }
    if (hp->tied) {
        ADD(-1, SYNTH_INIT_NORMAL, 5.2f, 0.3f, 1, (int64_t[]){E}, "output_norm.weight");
    } else {
        ADD(-1, SYNTH_INIT_NORMAL, 1.0f, 0.1f, 1, (int64_t[]){E}, "output_norm.weight");
        ADD(-1, SYNTH_INIT_NORMAL, 0.0f, 5.0f / e, 2, (int64_t[]){E, V}, "output.weight");
    }
    return LLEM_OK;
}

#undef ADD

static enum llem_err llama_tensors(const struct synth_shape *s, struct synth_tensor_list *out)
{
    return dense_tensors(s, out, 0);
}

static enum llem_err qwen2_tensors(const struct synth_shape *s, struct synth_tensor_list *out)
{
    return dense_tensors(s, out, DENSE_QKV_BIAS);
}

static enum llem_err qwen3_tensors(const struct synth_shape *s, struct synth_tensor_list *out)
{
    return dense_tensors(s, out, DENSE_QK_NORM);
}

// ---- the tables -------------------------------------------------------------------------------

// kv_flags mirror llama.cpp's converter: llama writes rope.dimension_count and vocab_size;
// qwen2 neither; qwen3 key_length/value_length (head_dim is not n_embd / n_head there).
static const struct synth_arch archs[] = {
    {"llama", SYNTH_VOCAB_SPM, 10000.0f, 1e-5f, false, SYNTH_KV_ROPE_DIM | SYNTH_KV_VOCAB_SIZE,
     llama_tensors},
    {"qwen2", SYNTH_VOCAB_BPE_QWEN, 1e6f, 1e-6f, true, 0, qwen2_tensors},
    {"qwen3", SYNTH_VOCAB_BPE_QWEN, 1e6f, 1e-6f, true, SYNTH_KV_KV_LENGTH, qwen3_tensors},
};

static const struct synth_preset presets[] = {
    {"tiny", NULL, NULL, NULL, SYNTH_VOCAB_DEFAULT, true,
     {.n_embd = 256, .n_layer = 4, .n_head = 8, .n_head_kv = 2, .n_ff = 512, .n_ctx = 4096}},
    {"tinyllama-1.1b", "llama", "TinyLlama 1.1B (synthetic)", "ggml-vocab-llama-spm.gguf",
     SYNTH_VOCAB_SPM, false,
     {.n_embd = 2048, .n_layer = 22, .n_head = 32, .n_head_kv = 4, .n_ff = 5632,
      .n_vocab = 32000, .n_ctx = 2048, .rope_theta = 10000.0f, .norm_eps = 1e-5f}},
    {"llama3.2-1b", "llama", "Llama 3.2 1B (synthetic)", "ggml-vocab-llama-bpe.gguf",
     SYNTH_VOCAB_BPE_LLAMA3, false,
     {.n_embd = 2048, .n_layer = 16, .n_head = 32, .n_head_kv = 8, .n_ff = 8192,
      .n_vocab = 128256, .n_ctx = 131072, .rope_theta = 500000.0f, .norm_eps = 1e-5f,
      .tied = true, .rope_llama3_factor = 32.0f, .rope_llama3_low = 1.0f,
      .rope_llama3_high = 4.0f, .rope_llama3_orig_ctx = 8192}},
    {"qwen2.5-0.5b", "qwen2", "Qwen2.5 0.5B (synthetic)", NULL, SYNTH_VOCAB_BPE_QWEN, false,
     {.n_embd = 896, .n_layer = 24, .n_head = 14, .n_head_kv = 2, .n_ff = 4864,
      .n_vocab = 151936, .n_ctx = 32768, .rope_theta = 1e6f, .norm_eps = 1e-6f,
      .tied = true}},
    {"qwen3-0.6b", "qwen3", "Qwen3 0.6B (synthetic)", NULL, SYNTH_VOCAB_BPE_QWEN, false,
     {.n_embd = 1024, .n_layer = 28, .n_head = 16, .n_head_kv = 8, .head_dim = 128,
      .n_ff = 3072, .n_vocab = 151936, .n_ctx = 40960, .rope_theta = 1e6f, .norm_eps = 1e-6f,
      .tied = true}},
};

const struct synth_arch *synth_arch_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof archs / sizeof archs[0]; i++) {
        if (strcmp(archs[i].name, name) == 0) {
            return &archs[i];
        }
    }
    return NULL;
}

bool synth_arch_known(const char *arch)
{
    return synth_arch_find(arch) != NULL;
}

const char *synth_arch_name(size_t i)
{
    return i < sizeof archs / sizeof archs[0] ? archs[i].name : NULL;
}

const struct synth_preset *synth_preset_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            return &presets[i];
        }
    }
    return NULL;
}

const struct synth_preset *synth_preset_list(size_t *n)
{
    *n = sizeof presets / sizeof presets[0];
    return presets;
}

// ---- metadata -----------------------------------------------------------------------------------

#define KV(call)                                                                            \
    do {                                                                                    \
        enum llem_err e_ = (call);                                                          \
        if (e_) {                                                                           \
            return e_;                                                                      \
        }                                                                                   \
    } while (0)

enum llem_err synth_arch_write_kv(const struct synth_arch *a, const struct synth_shape *s,
                                  struct gguf_writer *w)
{
    const struct synth_hparams *hp = &s->hp;
    char key[96];
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, a->name), key)
    KV(gguf_writer_set_u32(w, KEY("context_length"), hp->n_ctx));
    KV(gguf_writer_set_u32(w, KEY("embedding_length"), hp->n_embd));
    KV(gguf_writer_set_u32(w, KEY("block_count"), hp->n_layer));
    KV(gguf_writer_set_u32(w, KEY("feed_forward_length"), hp->n_ff));
    KV(gguf_writer_set_u32(w, KEY("attention.head_count"), hp->n_head));
    KV(gguf_writer_set_u32(w, KEY("attention.head_count_kv"), hp->n_head_kv));
    KV(gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), hp->norm_eps));
    KV(gguf_writer_set_f32(w, KEY("rope.freq_base"), hp->rope_theta));
    // A head_dim other than n_embd / n_head must be stated, whatever the converter does.
    bool kv_len = (a->kv_flags & SYNTH_KV_KV_LENGTH) || s->head_dim * hp->n_head != hp->n_embd;
    if (kv_len) {
        KV(gguf_writer_set_u32(w, KEY("attention.key_length"), s->head_dim));
        KV(gguf_writer_set_u32(w, KEY("attention.value_length"), s->head_dim));
    }
    if (a->kv_flags & SYNTH_KV_ROPE_DIM) {
        KV(gguf_writer_set_u32(w, KEY("rope.dimension_count"), s->head_dim));
    }
    if (a->kv_flags & SYNTH_KV_VOCAB_SIZE) {
        KV(gguf_writer_set_u32(w, KEY("vocab_size"), hp->n_vocab));
    }
#undef KEY
    return LLEM_OK;
}
