// tensor/mixture.c: whole-model quantization targets ("Q4_K_M", "Q8_0", ...) and the rule
// that picks each tensor's type under a target, following llama.cpp's llama-quantize without
// an importance matrix (llama_tensor_get_type) so our files match its choices tensor for
// tensor. The table of rules is in docs/internals/quant.md; keep both in step.
#include <string.h>
#include <strings.h>

#include "tensor/types.h"

// LLAMA_FTYPE_* values of llama.cpp's include/llama.h (general.file_type).
enum {
    FTYPE_ALL_F32 = 0,
    FTYPE_F16 = 1,
    FTYPE_Q4_0 = 2,
    FTYPE_Q4_1 = 3,
    FTYPE_Q8_0 = 7,
    FTYPE_Q5_0 = 8,
    FTYPE_Q5_1 = 9,
    FTYPE_Q2_K = 10,
    FTYPE_Q3_K_M = 12,
    FTYPE_Q4_K_S = 14,
    FTYPE_Q4_K_M = 15,
    FTYPE_Q5_K_S = 16,
    FTYPE_Q5_K_M = 17,
    FTYPE_Q6_K = 18,
    FTYPE_IQ4_NL = 25,
    FTYPE_IQ4_XS = 30,
    FTYPE_BF16 = 32,
};

static const struct tensor_mixture mixtures[] = {
    {"Q4_0", FTYPE_Q4_0, GGML_TYPE_Q4_0},       {"Q4_1", FTYPE_Q4_1, GGML_TYPE_Q4_1},
    {"Q5_0", FTYPE_Q5_0, GGML_TYPE_Q5_0},       {"Q5_1", FTYPE_Q5_1, GGML_TYPE_Q5_1},
    {"Q8_0", FTYPE_Q8_0, GGML_TYPE_Q8_0},       {"Q2_K", FTYPE_Q2_K, GGML_TYPE_Q2_K},
    {"Q3_K_M", FTYPE_Q3_K_M, GGML_TYPE_Q3_K},   {"Q4_K_S", FTYPE_Q4_K_S, GGML_TYPE_Q4_K},
    {"Q4_K_M", FTYPE_Q4_K_M, GGML_TYPE_Q4_K},   {"Q5_K_S", FTYPE_Q5_K_S, GGML_TYPE_Q5_K},
    {"Q5_K_M", FTYPE_Q5_K_M, GGML_TYPE_Q5_K},   {"Q6_K", FTYPE_Q6_K, GGML_TYPE_Q6_K},
    {"IQ4_NL", FTYPE_IQ4_NL, GGML_TYPE_IQ4_NL}, {"IQ4_XS", FTYPE_IQ4_XS, GGML_TYPE_IQ4_XS},
    {"F16", FTYPE_F16, GGML_TYPE_F16},          {"BF16", FTYPE_BF16, GGML_TYPE_BF16},
    {"F32", FTYPE_ALL_F32, GGML_TYPE_F32},
};

// llama-quantize's short spellings of the medium mixes.
static const struct {
    const char *alias, *name;
} aliases[] = {{"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}};

const struct tensor_mixture *tensor_mixture_list(size_t *n)
{
    *n = sizeof mixtures / sizeof mixtures[0];
    return mixtures;
}

const struct tensor_mixture *tensor_mixture_find(const char *target)
{
    if (!target) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcasecmp(target, aliases[i].alias) == 0) {
            target = aliases[i].name;
        }
    }
    for (size_t i = 0; i < sizeof mixtures / sizeof mixtures[0]; i++) {
        if (strcasecmp(target, mixtures[i].name) == 0) {
            return &mixtures[i];
        }
    }
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool has(const char *s, const char *part)
{
    return strstr(s, part) != NULL;
}

// Which tensors are quantized at all: 2-D+ weights, except norms, MoE gating, position and
// token-type tables and a few small architecture-specific weights.
static bool quantizable(const char *name, int n_dims)
{
    static const char *const never[] = {
        "_norm.weight",         "ffn_gate_inp.weight",       "ssm_conv1d.weight",
        "time_mix_first.weight", "time_mix_w1.weight",       "time_mix_w2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
    };
    if (!ends_with(name, "weight") || n_dims < 2) {
        return false;
    }
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        if (has(name, never[i])) {
            return false;
        }
    }
    return strcmp(name, "position_embd.weight") != 0 && strcmp(name, "token_types.weight") != 0;
}

// llama.cpp's "use_more_bits": the first and last eighth of the layers and every third one
// between them get more bits.
static bool use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int64_t blck(uint32_t type)
{
    const struct type_traits *t = tensor_traits(type);
    return t ? t->blck : 1;
}

// Per-tensor adjustments of a quantized base type (the body of llama_tensor_get_type for the
// targets we offer).
static uint32_t adjust(uint32_t ftype, uint32_t t, const char *name, const int64_t *ne, int il,
                       int n_layer, int n_gqa, bool has_output)
{
    if (strcmp(name, "output.weight") == 0 ||
        (!has_output && strcmp(name, "token_embd.weight") == 0)) {
        if (ne[0] % blck(t) != 0) {
            t = GGML_TYPE_Q8_0;
        } else if (t != GGML_TYPE_Q8_0) {
            t = GGML_TYPE_Q6_K;
        }
    } else if (strcmp(name, "token_embd.weight") == 0) {
        // stays at the base type for every target offered here
    } else if (has(name, "attn_v.weight")) {
        if (ftype == FTYPE_Q2_K) {
            t = n_gqa >= 4 ? GGML_TYPE_Q4_K : GGML_TYPE_Q3_K;
        } else if (ftype == FTYPE_Q3_K_M) {
            t = il < 2 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
        } else if ((ftype == FTYPE_IQ4_NL || ftype == FTYPE_IQ4_XS) && n_gqa >= 4) {
            t = GGML_TYPE_Q5_K;
        } else if ((ftype == FTYPE_Q4_K_M || ftype == FTYPE_Q5_K_M) && use_more_bits(il, n_layer)) {
            t = GGML_TYPE_Q6_K;
        } else if (ftype == FTYPE_Q4_K_S && il < 4) {
            t = GGML_TYPE_Q5_K;
        }
    } else if (has(name, "ffn_down")) {
        if (ftype == FTYPE_Q2_K) {
            t = GGML_TYPE_Q3_K;
        } else if (ftype == FTYPE_Q3_K_M) {
            t = il < n_layer / 16 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
        } else if (ftype == FTYPE_Q4_K_M) {
            if (use_more_bits(il, n_layer)) {
                t = GGML_TYPE_Q6_K;
            }
        } else if (il < n_layer / 8 && (ftype == FTYPE_IQ4_NL || ftype == FTYPE_IQ4_XS)) {
            t = GGML_TYPE_Q5_K;
        } else if (ftype == FTYPE_Q5_K_M && use_more_bits(il, n_layer)) {
            t = GGML_TYPE_Q6_K;
        } else if (ftype == FTYPE_Q4_K_S && il < n_layer / 8) {
            t = GGML_TYPE_Q5_K;
        }
    } else if (has(name, "attn_output.weight")) {
        if (ftype == FTYPE_Q2_K) {
            t = GGML_TYPE_Q3_K;
        } else if (ftype == FTYPE_Q3_K_M) {
            t = GGML_TYPE_Q4_K;
        }
    } else if (has(name, "attn_qkv.weight")) {
        if (ftype == FTYPE_Q3_K_M) {
            t = GGML_TYPE_Q4_K;
        } else if (ftype == FTYPE_Q4_K_M) {
            t = GGML_TYPE_Q5_K;
        } else if (ftype == FTYPE_Q5_K_M) {
            t = GGML_TYPE_Q6_K;
        }
    }

    // rows that do not split into whole blocks fall back to a type with smaller blocks
    if (ne[0] % blck(t) != 0) {
        switch (t) {
        case GGML_TYPE_Q2_K:
        case GGML_TYPE_Q3_K:
        case GGML_TYPE_IQ4_XS:
            t = GGML_TYPE_IQ4_NL;
            break;
        case GGML_TYPE_Q4_K:
            t = GGML_TYPE_Q5_0;
            break;
        case GGML_TYPE_Q5_K:
            t = GGML_TYPE_Q5_1;
            break;
        case GGML_TYPE_Q6_K:
            t = GGML_TYPE_Q8_0;
            break;
        default:
            t = GGML_TYPE_F16;
            break;
        }
        if (ne[0] % blck(t) != 0) {
            t = GGML_TYPE_F16;
        }
    }
    return t;
}

uint32_t tensor_mixture_type(const char *target, const char *tensor_name, const int64_t *ne,
                             int n_dims, int layer, int n_layer, int n_gqa, bool has_output,
                             uint32_t src_type)
{
    const struct tensor_mixture *mix = tensor_mixture_find(target);
    if (!mix || !tensor_name || !ne || !quantizable(tensor_name, n_dims)) {
        return src_type;
    }
    const struct type_traits *bt = tensor_traits(mix->base_type);
    if (!bt || !bt->is_quant) {
        return mix->base_type; // F32 / F16 / BF16 targets convert every quantizable weight
    }
    int il = layer < 0 ? 0 : layer;
    int nl = n_layer < 1 ? 1 : n_layer;
    return adjust(mix->ftype, mix->base_type, tensor_name, ne, il, nl, n_gqa, has_output);
}
