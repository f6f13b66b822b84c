// backend/cpu/vec_dot_table.c: the hook for quantized dot-product kernels (backend/cpu/quant/).
// One row per weight type and ISA: {vec_dot, activation quantizer}. mul_mat converts each
// activation row once to the type's vec_dot partner (traits->vec_dot_type) and calls vec_dot
// per output element. A NULL row means mul_mat dequantizes weight rows with to_f32 and dots
// in F32, so every type works before its kernel exists. vec_dot must be exact-order
// deterministic (same result for the same inputs): mul_mat's output must not depend on nth.
// F16 weights take mul_mat's own F32-activation tiles; their entries here serve other callers.
#include "backend/cpu/cpu_int.h"
#include "backend/cpu/quant/quant.h"

static const struct cpu_vec_dot_entry table_ref[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {NULL, NULL},
    [GGML_TYPE_F16] = {cpu_vec_dot_f16_ref, NULL},
    [GGML_TYPE_BF16] = {cpu_vec_dot_bf16_ref, NULL},
    [GGML_TYPE_Q4_0] = {cpu_vec_dot_q4_0_q8_0_ref, NULL},
    [GGML_TYPE_Q4_1] = {cpu_vec_dot_q4_1_q8_1_ref, NULL},
    [GGML_TYPE_Q5_0] = {cpu_vec_dot_q5_0_q8_0_ref, NULL},
    [GGML_TYPE_Q5_1] = {cpu_vec_dot_q5_1_q8_1_ref, NULL},
    [GGML_TYPE_Q8_0] = {cpu_vec_dot_q8_0_q8_0_ref, NULL},
    [GGML_TYPE_Q2_K] = {cpu_vec_dot_q2_K_q8_K_ref, NULL},
    [GGML_TYPE_Q3_K] = {cpu_vec_dot_q3_K_q8_K_ref, NULL},
    [GGML_TYPE_Q4_K] = {cpu_vec_dot_q4_K_q8_K_ref, NULL},
    [GGML_TYPE_Q5_K] = {cpu_vec_dot_q5_K_q8_K_ref, NULL},
    [GGML_TYPE_Q6_K] = {cpu_vec_dot_q6_K_q8_K_ref, NULL},
    [GGML_TYPE_IQ4_NL] = {cpu_vec_dot_iq4_nl_q8_0_ref, NULL},
    [GGML_TYPE_IQ4_XS] = {cpu_vec_dot_iq4_xs_q8_K_ref, NULL},
    [GGML_TYPE_MXFP4] = {cpu_vec_dot_mxfp4_q8_0_ref, NULL},
};

static const struct cpu_vec_dot_entry table_avx2[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {NULL, NULL},
    [GGML_TYPE_F16] = {cpu_vec_dot_f16_avx2, NULL},
    [GGML_TYPE_BF16] = {cpu_vec_dot_bf16_avx2, NULL},
    [GGML_TYPE_Q4_0] = {cpu_vec_dot_q4_0_q8_0_avx2, cpu_quant_q8_0_avx2},
    [GGML_TYPE_Q4_1] = {cpu_vec_dot_q4_1_q8_1_avx2, cpu_quant_q8_1_avx2},
    [GGML_TYPE_Q5_0] = {cpu_vec_dot_q5_0_q8_0_avx2, cpu_quant_q8_0_avx2},
    [GGML_TYPE_Q5_1] = {cpu_vec_dot_q5_1_q8_1_avx2, cpu_quant_q8_1_avx2},
    [GGML_TYPE_Q8_0] = {cpu_vec_dot_q8_0_q8_0_avx2, cpu_quant_q8_0_avx2},
    [GGML_TYPE_Q2_K] = {cpu_vec_dot_q2_K_q8_K_avx2, cpu_quant_q8_K_avx2},
    [GGML_TYPE_Q3_K] = {cpu_vec_dot_q3_K_q8_K_avx2, cpu_quant_q8_K_avx2},
    [GGML_TYPE_Q4_K] = {cpu_vec_dot_q4_K_q8_K_avx2, cpu_quant_q8_K_avx2},
    [GGML_TYPE_Q5_K] = {cpu_vec_dot_q5_K_q8_K_avx2, cpu_quant_q8_K_avx2},
    [GGML_TYPE_Q6_K] = {cpu_vec_dot_q6_K_q8_K_avx2, cpu_quant_q8_K_avx2},
    [GGML_TYPE_IQ4_NL] = {cpu_vec_dot_iq4_nl_q8_0_avx2, cpu_quant_q8_0_avx2},
    [GGML_TYPE_IQ4_XS] = {cpu_vec_dot_iq4_xs_q8_K_avx2, cpu_quant_q8_K_avx2},
    [GGML_TYPE_MXFP4] = {cpu_vec_dot_mxfp4_q8_0_avx2, cpu_quant_q8_0_avx2},
};

const struct cpu_vec_dot_entry *cpu_vec_dot_table(enum cpu_isa isa)
{
    return isa == CPU_ISA_AVX2 ? table_avx2 : table_ref;
}
