// tensor/quant_k.c: the 256-element "K-quant" super-block types Q2_K, Q3_K, Q4_K, Q5_K,
// Q6_K and the activation type Q8_K: dequantizers (bit-exact vs ggml) and the reference
// quantizers that llama-quantize runs without an importance matrix. Those search each
// sub-block's scale (and min) iteratively; to reproduce ggml's blocks byte for byte the
// searches below do the same float operations in the same order. Do not reorder arithmetic.
#include <math.h>
#include <string.h>

#include "tensor/fp16.h"
#include "tensor/types.h"

// Bit-exactness needs unfused a*b+c (clang fuses within expressions when FMA is enabled).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

// Scales below this are treated as an all-zero group.
#define GROUP_MAX_EPS 1e-15f

// Round to nearest, ties to even, for |f| <= 2^22: adding 1.5*2^23 puts the integer in the
// low mantissa bits. Garbage (inf/NaN) gives a garbage int but no undefined behaviour.
static inline int nearest_int(float f)
{
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

// Symmetric quantization of n values to [-nmax, nmax-1] (stored +nmax in L) with the scale
// chosen among 19 candidates to minimize the x^2-weighted squared error (`qw` overrides the
// weights). Returns the scale.
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = qw ? qw[i] : x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) {
            continue;
        }
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = qw ? qw[i] : x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + clampi(l, -nmax, nmax - 1));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Q3_K's group search: start from the max-based scale, then move single values to the level
// that improves the x^2-weighted fit (up to 5 passes). L gets values in [0, 2*nmax).
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int new_l = clampi(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) {
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        L[i] = (int8_t)(L[i] + nmax);
    }
    return sumlx / suml2;
}

// Asymmetric (scale, min) fit of n values to [0, nmax]: tries nstep+1 scales around the
// range-based one, solving the weighted least squares for scale and min at each, and keeps
// the best by weighted |error| (use_mad) or squared error. *the_min receives -min >= 0.
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) {
            min = x[i];
        }
        if (x[i] > max) {
            max = x[i];
        }
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) {
        min = 0;
    }
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_mad = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)clampi(l, 0, nmax);
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_mad += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float mad = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                mad += weights[i] * diff;
            }
            if (mad < best_mad) {
                memcpy(L, Laux, (size_t)n);
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// 6-bit scale j and min j of Q4_K/Q5_K's packed 12-byte scales.
static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

// Packs 2-bit values L[256] the K-quant way: byte l of each 32-byte chunk holds elements
// l, l+32, l+64, l+96 of a 128-element half.
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; l++) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
        }
    }
}

// ---- Q2_K ----------------------------------------------------------------------------------

void tensor_quant_q2_K(const float *x, void *vy, int64_t n)
{
    struct block_q2_K *y = vy;
    const int64_t nb = n / QK_K;
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.f;

    for (int64_t i = 0; i < nb; i++) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) {
                weights[l] = fabsf(x[16 * j + l]);
            }
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) {
                max_scale = scales[j];
            }
            if (mins[j] > max_min) {
                max_min = mins[j];
            }
        }
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            }
            y[i].d = fp16_from_f32(max_scale / q4scale);
        } else {
            memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = fp16_from_f32(0.f);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; j++) {
                int l = nearest_int(iscale * mins[j]);
                y[i].scales[j] = (uint8_t)(y[i].scales[j] | (l << 4));
            }
            y[i].dmin = fp16_from_f32(max_min / q4scale);
        } else {
            y[i].dmin = fp16_from_f32(0.f);
        }
        // requantize against the stored (rounded) scales so the codes fit what is decoded
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = fp16_to_f32(y[i].d) * (float)(y[i].scales[j] & 0xf);
            if (d == 0.0f) {
                continue;
            }
            const float dm = fp16_to_f32(y[i].dmin) * (float)(y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++) {
                L[16 * j + ii] = (uint8_t)clampi(nearest_int((x[16 * j + ii] + dm) / d), 0, 3);
            }
        }
        pack_2bit(L, y[i].qs);
        x += QK_K;
    }
}

void tensor_dequant_q2_K(const void *vx, float *y, int64_t n)
{
    const struct block_q2_K *x = vx;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_f32(x[i].d);
        const float min = fp16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int nn = 0; nn < QK_K; nn += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                for (int half = 0; half < 2; half++) {
                    uint8_t sc = x[i].scales[is++];
                    const float dl = d * (float)(sc & 0xf);
                    const float ml = min * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++) {
                        *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
                    }
                }
                shift += 2;
            }
            q += 32;
        }
    }
}

// ---- Q3_K ----------------------------------------------------------------------------------

void tensor_quant_q3_K(const float *x, void *vy, int64_t n)
{
    struct block_q3_K *y = vy;
    const int64_t nb = n / QK_K;
    int8_t L[QK_K];
    float scales[QK_K / 16];

    for (int64_t i = 0; i < nb; i++) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale != 0.0f) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                int l = clampi((int8_t)nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8) {
                    y[i].scales[j] = (uint8_t)(l & 0xf);
                } else {
                    y[i].scales[j - 8] = (uint8_t)(y[i].scales[j - 8] | ((l & 0xf) << 4));
                }
                l >>= 4;
                y[i].scales[j % 4 + 8] = (uint8_t)(y[i].scales[j % 4 + 8] | (l << (2 * (j / 4))));
            }
            y[i].d = fp16_from_f32(1 / iscale);
        } else {
            y[i].d = fp16_from_f32(0.f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sc = j < 8 ? y[i].scales[j] & 0xf : y[i].scales[j - 8] >> 4;
            sc = (sc | (((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
            float d = fp16_to_f32(y[i].d) * (float)sc;
            if (d == 0.0f) {
                continue;
            }
            for (int ii = 0; ii < 16; ii++) {
                int l = clampi(nearest_int(x[16 * j + ii] / d), -4, 3);
                L[16 * j + ii] = (int8_t)(l + 4);
            }
        }
        // high bit of element j goes to bit (j / 32) of hmask[j % 32]
        memset(y[i].hmask, 0, QK_K / 8);
        uint8_t Lu[QK_K];
        for (int j = 0; j < QK_K; j++) {
            int l = L[j];
            if (l > 3) {
                y[i].hmask[j % (QK_K / 8)] = (uint8_t)(y[i].hmask[j % (QK_K / 8)] | (1u << (j / (QK_K / 8))));
                l -= 4;
            }
            Lu[j] = (uint8_t)l;
        }
        pack_2bit(Lu, y[i].qs);
        x += QK_K;
    }
}

void tensor_dequant_q3_K(const void *vx, float *y, int64_t n)
{
    const struct block_q3_K *x = vx;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d_all = fp16_to_f32(x[i].d);
        // unpack the 16 6-bit scales: low nibbles in bytes 0..7, top 2 bits in bytes 8..11
        int scales[16];
        for (int j = 0; j < 16; j++) {
            int lo = j < 8 ? x[i].scales[j] & 0xf : x[i].scales[j - 8] >> 4;
            int hi = (x[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            scales[j] = (lo | (hi << 4)) - 32;
        }
        const uint8_t *q = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int nn = 0; nn < QK_K; nn += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                for (int half = 0; half < 2; half++) {
                    const float dl = d_all * (float)scales[is++];
                    for (int l = 0; l < 16; l++) {
                        int v = ((q[l + 16 * half] >> shift) & 3) - ((hm[l + 16 * half] & m) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
                shift += 2;
                m = (uint8_t)(m << 1);
            }
            q += 32;
        }
    }
}

// ---- Q4_K / Q5_K ---------------------------------------------------------------------------

// Shared first half of Q4_K/Q5_K: fits a (scale, min) per 32-group, stores the 6-bit packed
// scales and the super-block d/dmin, then requantizes every group against the stored values
// into L (0..nmax).
static void quant_k_scales_mins(const float *x, int nmax, float rmin, float rdelta, int nstep,
                                uint16_t *d_out, uint16_t *dmin_out, uint8_t *packed, uint8_t *L)
{
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) {
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        }
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) {
            weights[l] = av_x + fabsf(x[32 * j + l]);
        }
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                     rmin, rdelta, nstep, false);
        if (scales[j] > max_scale) {
            max_scale = scales[j];
        }
        if (mins[j] > max_min) {
            max_min = mins[j];
        }
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (uint8_t)((ls & 0xf) | ((lm & 0xf) << 4));
            packed[j - 4] = (uint8_t)(packed[j - 4] | ((ls >> 4) << 6));
            packed[j - 0] = (uint8_t)(packed[j - 0] | ((lm >> 4) << 6));
        }
    }
    *d_out = fp16_from_f32(max_scale / 63.f);
    *dmin_out = fp16_from_f32(max_min / 63.f);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, packed, &sc, &m);
        const float d = fp16_to_f32(*d_out) * (float)sc;
        if (d == 0.0f) {
            continue;
        }
        const float dm = fp16_to_f32(*dmin_out) * (float)m;
        for (int ii = 0; ii < 32; ii++) {
            L[32 * j + ii] = (uint8_t)clampi(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
        }
    }
}

void tensor_quant_q4_K(const float *x, void *vy, int64_t n)
{
    struct block_q4_K *y = vy;
    const int64_t nb = n / QK_K;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++) {
        memset(y[i].scales, 0, K_SCALE_SIZE);
        quant_k_scales_mins(x, 15, -1.f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64) {
            for (int l = 0; l < 32; l++) {
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            }
            q += 32;
        }
        x += QK_K;
    }
}

void tensor_dequant_q4_K(const void *vx, float *y, int64_t n)
{
    const struct block_q4_K *x = vx;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = fp16_to_f32(x[i].d);
        const float min = fp16_to_f32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = min * (float)m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = min * (float)m;
            for (int l = 0; l < 32; l++) {
                *y++ = d1 * (float)(q[l] & 0xf) - m1;
            }
            for (int l = 0; l < 32; l++) {
                *y++ = d2 * (float)(q[l] >> 4) - m2;
            }
            q += 32;
            is += 2;
        }
    }
}

void tensor_quant_q5_K(const float *x, void *vy, int64_t n)
{
    struct block_q5_K *y = vy;
    const int64_t nb = n / QK_K;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++) {
        memset(y[i].scales, 0, K_SCALE_SIZE);
        quant_k_scales_mins(x, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *qh = y[i].qh;
        uint8_t *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int nn = 0; nn < QK_K; nn += 64) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[nn + j];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                int l2 = L[nn + j + 32];
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
            ql += 32;
        }
        x += QK_K;
    }
}

void tensor_dequant_q5_K(const void *vx, float *y, int64_t n)
{
    const struct block_q5_K *x = vx;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const float d = fp16_to_f32(x[i].d);
        const float min = fp16_to_f32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = min * (float)m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = min * (float)m;
            for (int l = 0; l < 32; l++) {
                *y++ = d1 * (float)((ql[l] & 0xf) + (qh[l] & u1 ? 16 : 0)) - m1;
            }
            for (int l = 0; l < 32; l++) {
                *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            }
            ql += 32;
            is += 2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

// ---- Q6_K ----------------------------------------------------------------------------------

void tensor_quant_q6_K(const float *x, void *vy, int64_t n)
{
    struct block_q6_K *y = vy;
    const int64_t nb = n / QK_K;
    int8_t L[QK_K];
    float scales[QK_K / 16];

    for (int64_t i = 0; i < nb; i++) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, NULL);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            y[i].d = fp16_from_f32(0.f);
            x += QK_K;
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = fp16_from_f32(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++) {
            int s = nearest_int(iscale * scales[ib]);
            y[i].scales[ib] = (int8_t)(s < 127 ? s : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            float d = fp16_to_f32(y[i].d) * (float)y[i].scales[j];
            if (d == 0.0f) {
                continue;
            }
            for (int ii = 0; ii < 16; ii++) {
                int l = clampi(nearest_int(x[16 * j + ii] / d), -32, 31);
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l + 0] & 0xf;
                const uint8_t q2 = L[j + l + 32] & 0xf;
                const uint8_t q3 = L[j + l + 64] & 0xf;
                const uint8_t q4 = L[j + l + 96] & 0xf;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
        x += QK_K;
    }
}

void tensor_dequant_q6_K(const void *vx, float *y, int64_t n)
{
    const struct block_q6_K *x = vx;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int nn = 0; nn < QK_K; nn += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                const int q1 = ((ql[l + 0] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                // (d * sc) * q, in this order, as ggml
                y[l + 0] = d * (float)sc[is + 0] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

// ---- Q8_K (activations) --------------------------------------------------------------------

void tensor_quant_q8_K(const float *x, void *vy, int64_t n)
{
    struct block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            y[i].d = 0;
            memset(y[i].qs, 0, QK_K);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            x += QK_K;
            continue;
        }
        // -127 (not -128) keeps every code in [-127, 127], which the SIMD dot kernels rely on
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) {
                sum += y[i].qs[j * 16 + ii];
            }
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
        x += QK_K;
    }
}

void tensor_dequant_q8_K(const void *vx, float *y, int64_t n)
{
    const struct block_q8_K *x = vx;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        for (int j = 0; j < QK_K; j++) {
            *y++ = x[i].d * (float)x[i].qs[j];
        }
    }
}
