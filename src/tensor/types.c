// tensor/types.c: the traits table (one row per supported GGML type id), the float formats
// F32/F16/BF16, and tensor_quantize_rows, the row-wise quantization entry point used by
// `llem quantize` and tests. The block kernels live in quant_legacy.c, quant_k.c,
// quant_iq.c and quant_mxfp4.c.
#include <string.h>

#include "tensor/fp16.h"
#include "tensor/types.h"

// ---- float formats -------------------------------------------------------------------------

static void f32_to_f32(const void *x, float *y, int64_t n)
{
    memcpy(y, x, (size_t)n * sizeof(float));
}

static void f32_from_f32(const float *x, void *y, int64_t n)
{
    memcpy(y, x, (size_t)n * sizeof(float));
}

static void f16_row_to_f32(const void *vx, float *y, int64_t n)
{
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i++) {
        y[i] = fp16_to_f32(x[i]);
    }
}

void tensor_f32_to_f16_row(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) {
        y[i] = fp16_from_f32(x[i]);
    }
}

static void bf16_row_to_f32(const void *vx, float *y, int64_t n)
{
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i++) {
        y[i] = bf16_to_f32(x[i]);
    }
}

void tensor_f32_to_bf16_row(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) {
        y[i] = bf16_from_f32(x[i]);
    }
}

// ---- the table ------------------------------------------------------------------------------

#define QT(id, nm, bl, blk_t, to, from, dot)                                                   \
    [id] = {.name = nm, .blck = bl, .type_size = sizeof(blk_t), .is_quant = true,              \
            .to_f32 = to, .from_f32 = from, .vec_dot_type = dot}

static const struct type_traits traits[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {.name = "F32", .blck = 1, .type_size = 4, .is_quant = false,
                       .to_f32 = f32_to_f32, .from_f32 = f32_from_f32,
                       .vec_dot_type = GGML_TYPE_F32},
    [GGML_TYPE_F16] = {.name = "F16", .blck = 1, .type_size = 2, .is_quant = false,
                       .to_f32 = f16_row_to_f32, .from_f32 = tensor_f32_to_f16_row,
                       .vec_dot_type = GGML_TYPE_F16},
    [GGML_TYPE_BF16] = {.name = "BF16", .blck = 1, .type_size = 2, .is_quant = false,
                        .to_f32 = bf16_row_to_f32, .from_f32 = tensor_f32_to_bf16_row,
                        .vec_dot_type = GGML_TYPE_BF16},
    QT(GGML_TYPE_Q4_0, "Q4_0", QK4_0, struct block_q4_0, tensor_dequant_q4_0, tensor_quant_q4_0,
       GGML_TYPE_Q8_0),
    QT(GGML_TYPE_Q4_1, "Q4_1", QK4_1, struct block_q4_1, tensor_dequant_q4_1, tensor_quant_q4_1,
       GGML_TYPE_Q8_1),
    QT(GGML_TYPE_Q5_0, "Q5_0", QK5_0, struct block_q5_0, tensor_dequant_q5_0, tensor_quant_q5_0,
       GGML_TYPE_Q8_0),
    QT(GGML_TYPE_Q5_1, "Q5_1", QK5_1, struct block_q5_1, tensor_dequant_q5_1, tensor_quant_q5_1,
       GGML_TYPE_Q8_1),
    QT(GGML_TYPE_Q8_0, "Q8_0", QK8_0, struct block_q8_0, tensor_dequant_q8_0, tensor_quant_q8_0,
       GGML_TYPE_Q8_0),
    QT(GGML_TYPE_Q8_1, "Q8_1", QK8_1, struct block_q8_1, tensor_dequant_q8_1, tensor_quant_q8_1,
       GGML_TYPE_Q8_1),
    QT(GGML_TYPE_Q2_K, "Q2_K", QK_K, struct block_q2_K, tensor_dequant_q2_K, tensor_quant_q2_K,
       GGML_TYPE_Q8_K),
    QT(GGML_TYPE_Q3_K, "Q3_K", QK_K, struct block_q3_K, tensor_dequant_q3_K, tensor_quant_q3_K,
       GGML_TYPE_Q8_K),
    QT(GGML_TYPE_Q4_K, "Q4_K", QK_K, struct block_q4_K, tensor_dequant_q4_K, tensor_quant_q4_K,
       GGML_TYPE_Q8_K),
    QT(GGML_TYPE_Q5_K, "Q5_K", QK_K, struct block_q5_K, tensor_dequant_q5_K, tensor_quant_q5_K,
       GGML_TYPE_Q8_K),
    QT(GGML_TYPE_Q6_K, "Q6_K", QK_K, struct block_q6_K, tensor_dequant_q6_K, tensor_quant_q6_K,
       GGML_TYPE_Q8_K),
    QT(GGML_TYPE_Q8_K, "Q8_K", QK_K, struct block_q8_K, tensor_dequant_q8_K, tensor_quant_q8_K,
       GGML_TYPE_Q8_K),
    QT(GGML_TYPE_IQ4_NL, "IQ4_NL", QK4_NL, struct block_iq4_nl, tensor_dequant_iq4_nl,
       tensor_quant_iq4_nl, GGML_TYPE_Q8_0),
    QT(GGML_TYPE_IQ4_XS, "IQ4_XS", QK_K, struct block_iq4_xs, tensor_dequant_iq4_xs,
       tensor_quant_iq4_xs, GGML_TYPE_Q8_K),
    QT(GGML_TYPE_MXFP4, "MXFP4", QK_MXFP4, struct block_mxfp4, tensor_dequant_mxfp4,
       tensor_quant_mxfp4, GGML_TYPE_Q8_0),
};

const struct type_traits *tensor_traits(uint32_t type)
{
    if (type >= GGML_TYPE_COUNT || traits[type].name == NULL) {
        return NULL;
    }
    return &traits[type];
}

size_t tensor_row_size(uint32_t type, int64_t n)
{
    const struct type_traits *t = tensor_traits(type);
    if (!t || n < 0 || n % t->blck != 0) {
        return 0;
    }
    return (size_t)(n / t->blck) * t->type_size;
}

size_t tensor_quantize_rows(uint32_t type, const float *src, void *dst, int64_t nrows,
                            int64_t n_per_row, const float *imatrix)
{
    const struct type_traits *t = tensor_traits(type);
    if (!t || !t->from_f32 || nrows < 0 || n_per_row <= 0 || n_per_row % t->blck != 0) {
        return 0;
    }
    const size_t row_size = (size_t)(n_per_row / t->blck) * t->type_size;
    char *out = dst;
    for (int64_t r = 0; r < nrows; r++) {
        const float *x = src + r * n_per_row;
        if (imatrix && type == GGML_TYPE_IQ4_NL) {
            tensor_quant_iq4_nl_w(x, out, n_per_row, imatrix);
        } else if (imatrix && type == GGML_TYPE_IQ4_XS) {
            tensor_quant_iq4_xs_w(x, out, n_per_row, imatrix);
        } else {
            t->from_f32(x, out, n_per_row);
        }
        out += row_size;
    }
    return (size_t)nrows * row_size;
}
