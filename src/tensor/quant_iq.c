// tensor/quant_iq.c: the non-linear 4-bit types IQ4_NL (32-element blocks, one f16 scale) and
// IQ4_XS (256-element super-blocks, 6-bit sub-scales), both over the same 16 code values.
// The quantizer is ggml's un-weighted search (weights x^2, or importance weights when given):
// 15 candidate scales per 32-group, a least-squares refit, then requantization.
// Same float operations in the same order as ggml, so the blocks match byte for byte.
#include <math.h>
#include <string.h>

#include "tensor/fp16.h"
#include "tensor/types.h"

// Bit-exactness needs unfused a*b+c (clang fuses within expressions when FMA is enabled).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define GROUP_MAX_EPS 1e-15f
#define IQ4_NTRY 7 // candidate scales on each side of the max-based one

const int8_t tensor_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                         1,    13,   25,  38,  53,  69,  89,  113};

static inline int nearest_int(float f)
{
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

// Index of the code value nearest to x (ties go to the lower one), by bisection.
static inline int best_index(const int8_t *val, float x)
{
    if (x <= val[0]) {
        return 0;
    }
    if (x >= val[15]) {
        return 15;
    }
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        int mav = (ml + mu) / 2;
        if (x < val[mav]) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// Quantizes one super-block of `sbs` elements (32 for IQ4_NL, 256 for IQ4_XS) in 32-groups.
// For IQ4_XS the group scales are stored as 6-bit multiples of the super-block scale.
static void iq4_superblock(int sbs, const float *x, uint16_t *dh, uint8_t *q4,
                           uint16_t *scales_h, uint8_t *scales_l, const float *qw)
{
    const int8_t *values = tensor_kvalues_iq4nl;
    const int ntry = IQ4_NTRY;
    float scales[QK_K / 32];
    float weight[32];
    uint8_t L[QK_K];

    float sigma2 = 0;
    for (int j = 0; j < sbs; j++) {
        sigma2 += x[j] * x[j];
    }
    sigma2 *= 2.f / (float)sbs;

    memset(q4, 0, (size_t)sbs / 2);
    memset(L, 0, sizeof L);
    *dh = fp16_from_f32(0.f);

    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < sbs / 32; ib++) {
        const float *xb = x + ib * 32;
        uint8_t *Lb = L + ib * 32;
        for (int j = 0; j < 32; j++) {
            weight[j] = qw ? qw[ib * 32 + j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
        }
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            scales[ib] = 0;
            continue;
        }
        float d = -max / (float)values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            int l = best_index(values, id * xb[j]);
            Lb[j] = (uint8_t)l;
            float q = values[l];
            float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumqx / sumq2;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; itry++) {
            id = (float)(itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                int l = best_index(values, id * xb[j]);
                float q = values[l];
                float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        float abs_d = fabsf(d);
        if (abs_d > amax_scale) {
            amax_scale = abs_d;
            max_scale = d;
        }
    }

    if (sbs > 32) {
        *scales_h = 0;
        float d = -max_scale / 32;
        *dh = fp16_from_f32(d);
        float id = d != 0.0f ? 1 / d : 0.f;
        for (int ib = 0; ib < sbs / 32; ib++) {
            int l = nearest_int(id * scales[ib]);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            float dl = d * (float)l;
            float idl = dl != 0.0f ? 1 / dl : 0.f;
            uint8_t *Lb = L + ib * 32;
            const float *xb = x + ib * 32;
            for (int j = 0; j < 32; j++) {
                Lb[j] = (uint8_t)best_index(values, idl * xb[j]);
            }
            l += 32;
            uint8_t l_l = (uint8_t)(l & 0xf);
            uint8_t l_h = (uint8_t)(l >> 4);
            if (ib % 2 == 0) {
                scales_l[ib / 2] = l_l;
            } else {
                scales_l[ib / 2] = (uint8_t)(scales_l[ib / 2] | (l_l << 4));
            }
            *scales_h = (uint16_t)(*scales_h | (l_h << 2 * (ib % 8)));
        }
    } else {
        *dh = fp16_from_f32(scales[0]);
        // requantize with the f32 scale (as ggml does), not the rounded f16 one
        float id = scales[0] != 0.0f ? 1 / scales[0] : 0;
        for (int j = 0; j < sbs; j++) {
            L[j] = (uint8_t)best_index(values, id * x[j]);
        }
    }
    for (int i = 0; i < sbs / 32; i++) {
        for (int j = 0; j < 16; j++) {
            q4[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
        }
    }
}

void tensor_quant_iq4_nl_w(const float *x, void *vy, int64_t n, const float *qw)
{
    struct block_iq4_nl *y = vy;
    const int64_t nb = n / QK4_NL;
    for (int64_t i = 0; i < nb; i++) {
        iq4_superblock(QK4_NL, x + i * QK4_NL, &y[i].d, y[i].qs, NULL, NULL,
                       qw ? qw + i * QK4_NL : NULL);
    }
}

void tensor_quant_iq4_xs_w(const float *x, void *vy, int64_t n, const float *qw)
{
    struct block_iq4_xs *y = vy;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        iq4_superblock(QK_K, x + i * QK_K, &y[i].d, y[i].qs, &y[i].scales_h, y[i].scales_l,
                       qw ? qw + i * QK_K : NULL);
    }
}

void tensor_quant_iq4_nl(const float *x, void *y, int64_t n)
{
    tensor_quant_iq4_nl_w(x, y, n, NULL);
}

void tensor_quant_iq4_xs(const float *x, void *y, int64_t n)
{
    tensor_quant_iq4_xs_w(x, y, n, NULL);
}

void tensor_dequant_iq4_nl(const void *vx, float *y, int64_t n)
{
    const struct block_iq4_nl *x = vx;
    const int64_t nb = n / QK4_NL;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j] = d * (float)tensor_kvalues_iq4nl[x[i].qs[j] & 0xf];
            y[j + QK4_NL / 2] = d * (float)tensor_kvalues_iq4nl[x[i].qs[j] >> 4];
        }
        y += QK4_NL;
    }
}

void tensor_dequant_iq4_xs(const void *vx, float *y, int64_t n)
{
    const struct block_iq4_xs *x = vx;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *qs = x[i].qs;
        const float d = fp16_to_f32(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)tensor_kvalues_iq4nl[qs[j] & 0xf];
                y[j + 16] = dl * (float)tensor_kvalues_iq4nl[qs[j] >> 4];
            }
            y += 32;
            qs += 16;
        }
    }
}
