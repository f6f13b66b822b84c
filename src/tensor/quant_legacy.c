// tensor/quant_legacy.c: the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1:
// reference quantizers and dequantizers. The quantizers perform the same float operations in
// the same order as ggml's reference ones, so they produce byte-identical blocks (the golden
// test checks it); the dequantizers are bit-exact. Keep expressions as written: reordering or
// fusing (FMA) changes the last bit.
#include <float.h>
#include <math.h>
#include <string.h>

#include "tensor/fp16.h"
#include "tensor/types.h"

// Bit-exactness needs unfused a*b+c (clang fuses within expressions when FMA is enabled).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

// (int)v for v in [0, hi], saturating outside and mapping NaN to 0: the truncating casts
// of the reference algorithms, without undefined behaviour on garbage input.
static inline int trunc_sat(float v, int hi)
{
    if (!(v >= 0.0f)) {
        return 0;
    }
    if (v >= (float)hi) {
        return hi;
    }
    return (int)v;
}

// roundf(v) (half away from zero) as an int8 in [-127, 127]; NaN gives 0.
static inline int8_t round_i8(float v)
{
    if (!(v > -127.5f)) {
        return v != v ? 0 : -127;
    }
    if (v >= 127.5f) {
        return 127;
    }
    return (int8_t)roundf(v);
}

// ---- Q4_0 ----------------------------------------------------------------------------------

void tensor_quant_q4_0(const float *x, void *vy, int64_t n)
{
    struct block_q4_0 *y = vy;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK4_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        // the scale maps the extreme value to -8 so the full code range is used on one side
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_f32(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int q0 = trunc_sat(xb[j] * id + 8.5f, 15);
            const int q1 = trunc_sat(xb[j + QK4_0 / 2] * id + 8.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void tensor_dequant_q4_0(const void *vx, float *y, int64_t n)
{
    const struct block_q4_0 *x = vx;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int q0 = (x[i].qs[j] & 0x0f) - 8;
            const int q1 = (x[i].qs[j] >> 4) - 8;
            y[i * QK4_0 + j] = (float)q0 * d;
            y[i * QK4_0 + j + QK4_0 / 2] = (float)q1 * d;
        }
    }
}

// ---- Q4_1 ----------------------------------------------------------------------------------

static void block_min_max(const float *x, int n, float *min, float *max)
{
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) {
            lo = x[j];
        }
        if (x[j] > hi) {
            hi = x[j];
        }
    }
    *min = lo;
    *max = hi;
}

void tensor_quant_q4_1(const float *x, void *vy, int64_t n)
{
    struct block_q4_1 *y = vy;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK4_1;
        float min, max;
        block_min_max(xb, QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_f32(d);
        y[i].m = fp16_from_f32(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const int q0 = trunc_sat((xb[j] - min) * id + 0.5f, 15);
            const int q1 = trunc_sat((xb[j + QK4_1 / 2] - min) * id + 0.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void tensor_dequant_q4_1(const void *vx, float *y, int64_t n)
{
    const struct block_q4_1 *x = vx;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_f32(x[i].d);
        const float m = fp16_to_f32(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const int q0 = x[i].qs[j] & 0x0f;
            const int q1 = x[i].qs[j] >> 4;
            y[i * QK4_1 + j] = (float)q0 * d + m;
            y[i * QK4_1 + j + QK4_1 / 2] = (float)q1 * d + m;
        }
    }
}

// ---- Q5_0 ----------------------------------------------------------------------------------

void tensor_quant_q5_0(const float *x, void *vy, int64_t n)
{
    struct block_q5_0 *y = vy;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK5_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK5_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_f32(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int q0 = trunc_sat(xb[j] * id + 16.5f, 31);
            const int q1 = trunc_sat(xb[j + QK5_0 / 2] * id + 16.5f, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

void tensor_dequant_q5_0(const void *vx, float *y, int64_t n)
{
    const struct block_q5_0 *x = vx;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_f32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            const int q0 = ((x[i].qs[j] & 0x0f) | h0) - 16;
            const int q1 = ((x[i].qs[j] >> 4) | h1) - 16;
            y[i * QK5_0 + j] = (float)q0 * d;
            y[i * QK5_0 + j + QK5_0 / 2] = (float)q1 * d;
        }
    }
}

// ---- Q5_1 ----------------------------------------------------------------------------------

void tensor_quant_q5_1(const float *x, void *vy, int64_t n)
{
    struct block_q5_1 *y = vy;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK5_1;
        float min, max;
        block_min_max(xb, QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_f32(d);
        y[i].m = fp16_from_f32(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int q0 = trunc_sat((xb[j] - min) * id + 0.5f, 31);
            const int q1 = trunc_sat((xb[j + QK5_1 / 2] - min) * id + 0.5f, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

void tensor_dequant_q5_1(const void *vx, float *y, int64_t n)
{
    const struct block_q5_1 *x = vx;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_f32(x[i].d);
        const float m = fp16_to_f32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            const int q0 = (x[i].qs[j] & 0x0f) | h0;
            const int q1 = (x[i].qs[j] >> 4) | h1;
            y[i * QK5_1 + j] = (float)q0 * d + m;
            y[i * QK5_1 + j + QK5_1 / 2] = (float)q1 * d + m;
        }
    }
}

// ---- Q8_0 / Q8_1 ---------------------------------------------------------------------------

void tensor_quant_q8_0(const float *x, void *vy, int64_t n)
{
    struct block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) {
            amax = fmaxf(amax, fabsf(xb[j]));
        }
        const float d = amax / 127;
        // the inverse comes from the f32 scale, before it is rounded to f16 for storage
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_f32(d);
        for (int j = 0; j < QK8_0; j++) {
            y[i].qs[j] = round_i8(xb[j] * id);
        }
    }
}

void tensor_dequant_q8_0(const void *vx, float *y, int64_t n)
{
    const struct block_q8_0 *x = vx;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK8_0; j++) {
            y[i * QK8_0 + j] = (float)x[i].qs[j] * d;
        }
    }
}

void tensor_quant_q8_1(const float *x, void *vy, int64_t n)
{
    struct block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_1;
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) {
            amax = fmaxf(amax, fabsf(xb[j]));
        }
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_f32(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = round_i8(xb[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = fp16_from_f32((float)sum * d);
    }
}

void tensor_dequant_q8_1(const void *vx, float *y, int64_t n)
{
    const struct block_q8_1 *x = vx;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK8_1; j++) {
            y[i * QK8_1 + j] = (float)x[i].qs[j] * d;
        }
    }
}
