// tensor/quant_mxfp4.c: MXFP4 (OCP microscaling FP4): 32 E2M1 values sharing one E8M0
// exponent. ggml stores the E2M1 code values doubled (tensor_kvalues_mxfp4) and decodes the
// exponent to half its value, so x = kvalues[q] * 2^(e-127) / 2. The quantizer picks
// e = floor(log2(amax)) - 2 (E2M1's largest value 6 has exponent 2) and the nearest code per
// value, as ggml's reference quantizer does (ties keep the lower index).
#include <math.h>

#include "tensor/types.h"

// Bit-exactness needs unfused a*b+c (clang fuses within expressions when FMA is enabled).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

const int8_t tensor_kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static inline int best_index_mxfp4(float x, float d)
{
    int best = 0;
    float best_err = fabsf((float)tensor_kvalues_mxfp4[0] * d - x);
    for (int i = 1; i < 16; i++) {
        float err = fabsf((float)tensor_kvalues_mxfp4[i] * d - x);
        if (err < best_err) {
            best = i;
            best_err = err;
        }
    }
    return best;
}

void tensor_quant_mxfp4(const float *x, void *vy, int64_t n)
{
    struct block_mxfp4 *y = vy;
    const int64_t nb = n / QK_MXFP4;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK_MXFP4;
        float amax = 0.0f;
        for (int j = 0; j < QK_MXFP4; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
            }
        }
        uint8_t e = 0;
        if (amax > 0.0f) {
            float ef = floorf(log2f(amax)) - 2 + 127;
            // saturate instead of the undefined out-of-range cast (inf input, tiny amax)
            e = ef <= 0.0f ? 0 : ef >= 255.0f ? 255 : (uint8_t)ef;
        }
        const float d = tensor_e8m0_to_f32_half(e);
        y[i].e = e;
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            const int q0 = best_index_mxfp4(xb[j], d);
            const int q1 = best_index_mxfp4(xb[j + QK_MXFP4 / 2], d);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void tensor_dequant_mxfp4(const void *vx, float *y, int64_t n)
{
    const struct block_mxfp4 *x = vx;
    const int64_t nb = n / QK_MXFP4;
    for (int64_t i = 0; i < nb; i++) {
        const float d = tensor_e8m0_to_f32_half(x[i].e);
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            y[i * QK_MXFP4 + j] = (float)tensor_kvalues_mxfp4[x[i].qs[j] & 0x0f] * d;
            y[i * QK_MXFP4 + j + QK_MXFP4 / 2] = (float)tensor_kvalues_mxfp4[x[i].qs[j] >> 4] * d;
        }
    }
}
