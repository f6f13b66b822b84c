// backend/cpu/vec_dot_table.c: the dispatch table from weight type to quantized dot-product
// kernel (backend/cpu/quant/) per ISA: {vec_dot, activation quantizer, 4x3 tile}. mul_mat
// converts each activation row once to the type's partner (traits->vec_dot_type) with the
// quantizer (NULL: the partner's reference from_f32) and calls the tile for prompts (M >= 2;
// each tile element equals vec_dot bit for bit) and vec_dot per element otherwise. A type
// without a row here goes through the generic path (dequantize weight rows with to_f32, dot in
// F32), so every type with traits works. F32/F16 weights never come here (mul_mat tiles them directly).
// A vec_dot must give the same result for the same inputs: outputs may not depend on nth.
// Rows are {vec_dot, activation quantizer, optional 4x3 tile} (struct cpu_vec_dot_entry).
#include "backend/cpu/cpu_int.h"
#include "backend/cpu/quant/quant.h"

_Static_assert(QUANT_TILE_MAX_COLS == CPU_TILE_MAX_COLS, "tile column limits differ");

static const struct cpu_vec_dot_entry table_ref[GGML_TYPE_COUNT] = {
    [GGML_TYPE_BF16] = {cpu_vec_dot_bf16_ref, NULL},
    [GGML_TYPE_Q4_0] = {cpu_vec_dot_q4_0_q8_0_ref, NULL},
    [GGML_TYPE_Q4_1] = {cpu_vec_dot_q4_1_q8_1_ref, NULL},
    [GGML_TYPE_Q5_0] = {cpu_vec_dot_q5_0_q8_0_ref, NULL},
    [GGML_TYPE_Q5_1] = {cpu_vec_dot_q5_1_q8_1_ref, NULL},
    [GGML_TYPE_Q8_0] = {cpu_vec_dot_q8_0_q8_0_ref, NULL},
    [GGML_TYPE_IQ4_NL] = {cpu_vec_dot_iq4_nl_q8_0_ref, NULL},
    [GGML_TYPE_MXFP4] = {cpu_vec_dot_mxfp4_q8_0_ref, NULL},
    [GGML_TYPE_Q2_K] = {cpu_vec_dot_q2_K_q8_K_ref, NULL},
    [GGML_TYPE_Q3_K] = {cpu_vec_dot_q3_K_q8_K_ref, NULL},
    [GGML_TYPE_Q4_K] = {cpu_vec_dot_q4_K_q8_K_ref, NULL},
    [GGML_TYPE_Q5_K] = {cpu_vec_dot_q5_K_q8_K_ref, NULL},
    [GGML_TYPE_Q6_K] = {cpu_vec_dot_q6_K_q8_K_ref, NULL},
    [GGML_TYPE_IQ4_XS] = {cpu_vec_dot_iq4_xs_q8_K_ref, NULL},
};

static const struct cpu_vec_dot_entry table_avx2[GGML_TYPE_COUNT] = {
    [GGML_TYPE_BF16] = {cpu_vec_dot_bf16_avx2, NULL},
    [GGML_TYPE_Q4_0] = {cpu_vec_dot_q4_0_q8_0_avx2, cpu_quant_q8_0_avx2,
                        cpu_vec_dot_tile_q4_0_q8_0_avx2},
    [GGML_TYPE_Q4_1] = {cpu_vec_dot_q4_1_q8_1_avx2, cpu_quant_q8_1_avx2},
    [GGML_TYPE_Q5_0] = {cpu_vec_dot_q5_0_q8_0_avx2, cpu_quant_q8_0_avx2},
    [GGML_TYPE_Q5_1] = {cpu_vec_dot_q5_1_q8_1_avx2, cpu_quant_q8_1_avx2},
    [GGML_TYPE_Q8_0] = {cpu_vec_dot_q8_0_q8_0_avx2, cpu_quant_q8_0_avx2,
                        cpu_vec_dot_tile_q8_0_q8_0_avx2},
    [GGML_TYPE_IQ4_NL] = {cpu_vec_dot_iq4_nl_q8_0_avx2, cpu_quant_q8_0_avx2},
    [GGML_TYPE_MXFP4] = {cpu_vec_dot_mxfp4_q8_0_avx2, cpu_quant_q8_0_avx2},
    [GGML_TYPE_Q2_K] = {cpu_vec_dot_q2_K_q8_K_avx2, cpu_quant_q8_K_avx2},
    [GGML_TYPE_Q3_K] = {cpu_vec_dot_q3_K_q8_K_avx2, cpu_quant_q8_K_avx2},
    [GGML_TYPE_Q4_K] = {cpu_vec_dot_q4_K_q8_K_avx2, cpu_quant_q8_K_avx2,
                        cpu_vec_dot_tile_q4_K_q8_K_avx2},
    [GGML_TYPE_Q5_K] = {cpu_vec_dot_q5_K_q8_K_avx2, cpu_quant_q8_K_avx2,
                        cpu_vec_dot_tile_q5_K_q8_K_avx2},
    [GGML_TYPE_Q6_K] = {cpu_vec_dot_q6_K_q8_K_avx2, cpu_quant_q8_K_avx2,
                        cpu_vec_dot_tile_q6_K_q8_K_avx2},
    [GGML_TYPE_IQ4_XS] = {cpu_vec_dot_iq4_xs_q8_K_avx2, cpu_quant_q8_K_avx2},
};

const struct cpu_vec_dot_entry *cpu_vec_dot_table(enum cpu_isa isa)
{
    return isa == CPU_ISA_AVX2 ? table_avx2 : table_ref;
}
