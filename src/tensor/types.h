// tensor/types.h: every tensor element type llem knows, as data: block layouts (byte-exact
// GGUF/GGML structs with _Static_assert sizes), a traits table indexed by the GGML type id
// (enum ggml_type in gguf/gguf.h) with dequantizers (bit-exact vs ggml) and reference
// quantizers, and the whole-model "mixture" recipes used by `llem quantize`.
// Entry points: tensor_traits, tensor_quantize_rows, tensor_mixture_type. See
// docs/internals/quant.md. All functions are pure and thread-safe.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define QK4_NL 32
#define QK_MXFP4 32
#define K_SCALE_SIZE 12

// ---- block layouts (fp16 fields are raw IEEE half bits; see tensor/fp16.h) -----------------

struct block_q4_0 { // 4.5 bits/weight: x = (q - 8) * d
    uint16_t d;
    uint8_t qs[QK4_0 / 2]; // element j in low nibble of qs[j], element j+16 in the high nibble
};
struct block_q4_1 { // x = q * d + m
    uint16_t d;
    uint16_t m;
    uint8_t qs[QK4_1 / 2];
};
struct block_q5_0 { // x = (q - 16) * d, 5th bits in qh (bit j = element j)
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
struct block_q5_1 { // x = q * d + m
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
struct block_q8_0 { // x = q * d
    uint16_t d;
    int8_t qs[QK8_0];
};
struct block_q8_1 { // activation partner of Q4_1/Q5_1: s = d * sum(qs)
    uint16_t d;
    uint16_t s;
    int8_t qs[QK8_1];
};
struct block_q2_K { // 16 groups of 16: x = d*(sc&15)*q - dmin*(sc>>4), q in 0..3
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    uint16_t d;
    uint16_t dmin;
};
struct block_q3_K { // 16 groups of 16, 6-bit signed scales, q in -4..3 (high bit in hmask)
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
};
struct block_q4_K { // 8 groups of 32, 6-bit scale and min per group packed in scales[12]
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
struct block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
struct block_q6_K { // 16 groups of 16, int8 scales: x = d * sc * (q - 32)
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
};
struct block_q8_K { // activation partner of the K-quants; f32 scale, sums of 16 for mins
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};
struct block_iq4_nl { // non-linear 4-bit: x = d * tensor_kvalues_iq4nl[q]
    uint16_t d;
    uint8_t qs[QK4_NL / 2];
};
struct block_iq4_xs { // 8 groups of 32 with 6-bit scales (ls - 32), IQ4_NL values
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
};
struct block_mxfp4 { // OCP MX FP4 (E2M1) with an E8M0 shared exponent; ggml stores half scale
    uint8_t e;
    uint8_t qs[QK_MXFP4 / 2];
};

_Static_assert(sizeof(struct block_q4_0) == 18, "block_q4_0 layout");
_Static_assert(sizeof(struct block_q4_1) == 20, "block_q4_1 layout");
_Static_assert(sizeof(struct block_q5_0) == 22, "block_q5_0 layout");
_Static_assert(sizeof(struct block_q5_1) == 24, "block_q5_1 layout");
_Static_assert(sizeof(struct block_q8_0) == 34, "block_q8_0 layout");
_Static_assert(sizeof(struct block_q8_1) == 36, "block_q8_1 layout");
_Static_assert(sizeof(struct block_q2_K) == 84, "block_q2_K layout");
_Static_assert(sizeof(struct block_q3_K) == 110, "block_q3_K layout");
_Static_assert(sizeof(struct block_q4_K) == 144, "block_q4_K layout");
_Static_assert(sizeof(struct block_q5_K) == 176, "block_q5_K layout");
_Static_assert(sizeof(struct block_q6_K) == 210, "block_q6_K layout");
_Static_assert(sizeof(struct block_q8_K) == 292, "block_q8_K layout");
_Static_assert(sizeof(struct block_iq4_nl) == 18, "block_iq4_nl layout");
_Static_assert(sizeof(struct block_iq4_xs) == 136, "block_iq4_xs layout");
_Static_assert(sizeof(struct block_mxfp4) == 17, "block_mxfp4 layout");

// The 16 IQ4_NL / IQ4_XS code values and the 16 MXFP4 (E2M1, doubled) code values.
extern const int8_t tensor_kvalues_iq4nl[16];
extern const int8_t tensor_kvalues_mxfp4[16];

// MXFP4's E8M0 exponent as ggml uses it: 2^(e - 127) / 2 (the E2M1 table is stored doubled).
static inline float tensor_e8m0_to_f32_half(uint8_t e)
{
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    __builtin_memcpy(&f, &bits, sizeof f);
    return f;
}

// ---- traits -------------------------------------------------------------------------------

typedef void (*tensor_to_f32_fn)(const void *x, float *y, int64_t n);
typedef void (*tensor_from_f32_fn)(const float *x, void *y, int64_t n);

struct type_traits {
    const char *name;           // "Q4_K", as gguf_type_name
    int64_t blck;               // elements per block
    size_t type_size;           // bytes per block
    bool is_quant;              // block-quantized (not F32/F16/BF16)
    tensor_to_f32_fn to_f32;    // n % blck == 0; bit-exact vs ggml's to_float
    tensor_from_f32_fn from_f32; // reference quantizer (what llama-quantize runs without
                                 // imatrix); NULL if none
    uint32_t vec_dot_type;      // type the activations are converted to for dot products
};

// Traits of a GGML type id; NULL if the id is unknown or not supported by llem.
const struct type_traits *tensor_traits(uint32_t type);

// Bytes of a row of n elements of `type`; 0 if unsupported or n % blck != 0.
size_t tensor_row_size(uint32_t type, int64_t n);

// Quantizes nrows rows of n_per_row floats from src into dst (rows packed back to back) with
// the type's reference quantizer; returns the bytes written, or 0 when the type has no
// quantizer or n_per_row is not a multiple of its block size. imatrix ([n_per_row] importance
// weights, may be NULL) is used by IQ4_NL and IQ4_XS only; the other types ignore it (TODO #2).
// Thread-safe: callers split rows across threads (see cli/quantize.c).
size_t tensor_quantize_rows(uint32_t type, const float *src, void *dst, int64_t nrows,
                            int64_t n_per_row, const float *imatrix);

// ---- per-type kernels (n elements, n a multiple of the block size) -------------------------

void tensor_f32_to_f16_row(const float *x, void *y, int64_t n);   // round to nearest even
void tensor_f32_to_bf16_row(const float *x, void *y, int64_t n);  // round to nearest even

void tensor_quant_q4_0(const float *x, void *y, int64_t n);
void tensor_quant_q4_1(const float *x, void *y, int64_t n);
void tensor_quant_q5_0(const float *x, void *y, int64_t n);
void tensor_quant_q5_1(const float *x, void *y, int64_t n);
void tensor_quant_q8_0(const float *x, void *y, int64_t n);
void tensor_quant_q8_1(const float *x, void *y, int64_t n);
void tensor_dequant_q4_0(const void *x, float *y, int64_t n);
void tensor_dequant_q4_1(const void *x, float *y, int64_t n);
void tensor_dequant_q5_0(const void *x, float *y, int64_t n);
void tensor_dequant_q5_1(const void *x, float *y, int64_t n);
void tensor_dequant_q8_0(const void *x, float *y, int64_t n);
void tensor_dequant_q8_1(const void *x, float *y, int64_t n);

void tensor_quant_q2_K(const float *x, void *y, int64_t n);
void tensor_quant_q3_K(const float *x, void *y, int64_t n);
void tensor_quant_q4_K(const float *x, void *y, int64_t n);
void tensor_quant_q5_K(const float *x, void *y, int64_t n);
void tensor_quant_q6_K(const float *x, void *y, int64_t n);
void tensor_quant_q8_K(const float *x, void *y, int64_t n);
void tensor_dequant_q2_K(const void *x, float *y, int64_t n);
void tensor_dequant_q3_K(const void *x, float *y, int64_t n);
void tensor_dequant_q4_K(const void *x, float *y, int64_t n);
void tensor_dequant_q5_K(const void *x, float *y, int64_t n);
void tensor_dequant_q6_K(const void *x, float *y, int64_t n);
void tensor_dequant_q8_K(const void *x, float *y, int64_t n);

// IQ4: `qw` are optional importance weights for the n elements (NULL: x^2 weighting).
void tensor_quant_iq4_nl_w(const float *x, void *y, int64_t n, const float *qw);
void tensor_quant_iq4_xs_w(const float *x, void *y, int64_t n, const float *qw);
void tensor_quant_iq4_nl(const float *x, void *y, int64_t n);
void tensor_quant_iq4_xs(const float *x, void *y, int64_t n);
void tensor_dequant_iq4_nl(const void *x, float *y, int64_t n);
void tensor_dequant_iq4_xs(const void *x, float *y, int64_t n);

void tensor_quant_mxfp4(const float *x, void *y, int64_t n);
void tensor_dequant_mxfp4(const void *x, float *y, int64_t n);

// ---- mixtures (tensor/mixture.c) ----------------------------------------------------------

// A whole-model target such as "Q4_K_M": the default tensor type and llama.cpp's file type
// number (general.file_type, LLAMA_FTYPE_*). Names are matched case-insensitively.
struct tensor_mixture {
    const char *name;   // canonical spelling, "Q4_K_M"
    uint32_t ftype;     // LLAMA_FTYPE_MOSTLY_* value
    uint32_t base_type; // enum ggml_type used for most weights
};
const struct tensor_mixture *tensor_mixture_find(const char *target); // NULL if unknown
// The list of targets, for help texts; *n receives the count.
const struct tensor_mixture *tensor_mixture_list(size_t *n);

// The type a tensor gets under `target`, following llama-quantize without an imatrix:
// which tensors are quantized at all (2-D+ weights, not norms / gating / position tables),
// output.weight (and a tied token_embd) as Q6_K, more bits for attn_v / ffn_down in chosen
// layers, and fallbacks when ne[0] is not a multiple of the block size. `layer` is the
// block index (-1 for tensors outside blocks), `n_gqa` = n_head / n_head_kv (1 if unknown),
// `has_output` whether the model has a separate output.weight, `src_type` the tensor's type
// now (returned unchanged for tensors that are not quantized). Returns src_type for an unknown
// target.
uint32_t tensor_mixture_type(const char *target, const char *tensor_name, const int64_t *ne,
                             int n_dims, int layer, int n_layer, int n_gqa, bool has_output,
                             uint32_t src_type);
