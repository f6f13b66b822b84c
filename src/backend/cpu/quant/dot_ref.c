// backend/cpu/quant/dot_ref.c: scalar reference dot products, one per weight type against its
// activation partner (Q8_0, Q8_1, Q8_K, F16, BF16). The math is ggml's: exact int32 sums of
// code products inside each block (or sub-block), the block's scales applied once per block,
// blocks summed in float in order. These are the oracles the SIMD kernels are tested against
// and the kernels the scalar ISA table runs.
#include <string.h>

#include "backend/cpu/quant/quant.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

void cpu_vec_dot_q4_0_q8_0_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK4_0 / 2];
        }
        sumf += (float)sumi * (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d));
    }
    *s = sumf;
}

void cpu_vec_dot_q4_1_q8_1_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_1 *x = vx;
    const struct block_q8_1 *y = vy;
    const int nb = n / QK8_1;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sumi += (x[i].qs[j] & 0x0f) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + QK4_1 / 2];
        }
        // y.s = d_y * sum(y.qs) carries the min term: sum(m * d_y * q_y)
        sumf += (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d)) * (float)sumi +
                fp16_to_f32(x[i].m) * fp16_to_f32(y[i].s);
    }
    *s = sumf;
}

static inline uint32_t load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v); // little-endian, as GGUF
    return v;
}

void cpu_vec_dot_q5_0_q8_0_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        const uint32_t qh = load_u32(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            sumi += (((x[i].qs[j] & 0x0f) | h0) - 16) * y[i].qs[j];
            sumi += (((x[i].qs[j] >> 4) | h1) - 16) * y[i].qs[j + QK5_0 / 2];
        }
        sumf += (float)sumi * (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d));
    }
    *s = sumf;
}

void cpu_vec_dot_q5_1_q8_1_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_1 *x = vx;
    const struct block_q8_1 *y = vy;
    const int nb = n / QK8_1;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        const uint32_t qh = load_u32(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            sumi += ((x[i].qs[j] & 0x0f) | h0) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) | h1) * y[i].qs[j + QK5_1 / 2];
        }
        sumf += (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d)) * (float)sumi +
                fp16_to_f32(x[i].m) * fp16_to_f32(y[i].s);
    }
    *s = sumf;
}

void cpu_vec_dot_q8_0_q8_0_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q8_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) {
            sumi += x[i].qs[j] * y[i].qs[j];
        }
        sumf += (float)sumi * (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d));
    }
    *s = sumf;
}

void cpu_vec_dot_iq4_nl_q8_0_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_iq4_nl *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK4_NL;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_NL / 2; j++) {
            sumi += tensor_kvalues_iq4nl[x[i].qs[j] & 0x0f] * y[i].qs[j];
            sumi += tensor_kvalues_iq4nl[x[i].qs[j] >> 4] * y[i].qs[j + QK4_NL / 2];
        }
        sumf += (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d)) * (float)sumi;
    }
    *s = sumf;
}

void cpu_vec_dot_mxfp4_q8_0_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_mxfp4 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK_MXFP4;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            sumi += tensor_kvalues_mxfp4[x[i].qs[j] & 0x0f] * y[i].qs[j];
            sumi += tensor_kvalues_mxfp4[x[i].qs[j] >> 4] * y[i].qs[j + QK_MXFP4 / 2];
        }
        sumf += (tensor_e8m0_to_f32_half(x[i].e) * fp16_to_f32(y[i].d)) * (float)sumi;
    }
    *s = sumf;
}

// ---- K-quants against Q8_K (one f32 scale per 256, bsums = sums of 16 codes) ----------------

void cpu_vec_dot_q2_K_q8_K_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q2_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        const uint8_t *sc = x[i].scales;
        int summs = 0; // the mins: sum over groups of (sc >> 4) * sum(q8)
        for (int j = 0; j < QK_K / 16; j++) {
            summs += y[i].bsums[j] * (sc[j] >> 4);
        }
        const uint8_t *q2 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0, is = 0;
        for (int k = 0; k < QK_K / 128; k++) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    int g = 0;
                    for (int l = 0; l < 16; l++) {
                        g += q8[l] * ((q2[l + 16 * half] >> shift) & 3);
                    }
                    isum += (sc[is++] & 0x0f) * g;
                    q8 += 16;
                }
            }
            q2 += 32;
        }
        const float dall = y[i].d * fp16_to_f32(x[i].d);
        const float dmin = y[i].d * fp16_to_f32(x[i].dmin);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

void cpu_vec_dot_q3_K_q8_K_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q3_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        int scales[16];
        for (int j = 0; j < 16; j++) {
            int lo = j < 8 ? x[i].scales[j] & 0x0f : x[i].scales[j - 8] >> 4;
            int hi = (x[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            scales[j] = (lo | (hi << 4)) - 32;
        }
        const uint8_t *q3 = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        const int8_t *q8 = y[i].qs;
        unsigned m = 1;
        int isum = 0, is = 0;
        for (int k = 0; k < QK_K / 128; k++) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    int g = 0;
                    for (int l = 0; l < 16; l++) {
                        const int b = l + 16 * half;
                        const int v = ((q3[b] >> shift) & 3) - ((hm[b] & m) ? 0 : 4);
                        g += q8[l] * v;
                    }
                    isum += scales[is++] * g;
                    q8 += 16;
                }
                m <<= 1;
            }
            q3 += 32;
        }
        sumf += (fp16_to_f32(x[i].d) * y[i].d) * (float)isum;
    }
    *s = sumf;
}

// The 8 6-bit scales and mins of Q4_K/Q5_K's packed 12 bytes.
static void unpack_scales_mins(const uint8_t *q, uint8_t sc[8], uint8_t mn[8])
{
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = q[j] & 63;
            mn[j] = q[j + 4] & 63;
        } else {
            sc[j] = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
            mn[j] = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
        }
    }
}

void cpu_vec_dot_q4_K_q8_K_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        uint8_t sc[8], mn[8];
        unpack_scales_mins(x[i].scales, sc, mn);
        int summs = 0;
        for (int j = 0; j < 8; j++) {
            summs += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0;
        for (int j = 0; j < QK_K / 64; j++) {
            int g0 = 0, g1 = 0;
            for (int l = 0; l < 32; l++) {
                g0 += (q4[l] & 0x0f) * q8[l];
                g1 += (q4[l] >> 4) * q8[l + 32];
            }
            isum += sc[2 * j] * g0 + sc[2 * j + 1] * g1;
            q4 += 32;
            q8 += 64;
        }
        const float d = fp16_to_f32(x[i].d) * y[i].d;
        const float dmin = fp16_to_f32(x[i].dmin) * y[i].d;
        sumf += d * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

void cpu_vec_dot_q5_K_q8_K_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        uint8_t sc[8], mn[8];
        unpack_scales_mins(x[i].scales, sc, mn);
        int summs = 0;
        for (int j = 0; j < 8; j++) {
            summs += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        const uint8_t *q5 = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int isum = 0;
        for (int j = 0; j < QK_K / 64; j++) {
            int g0 = 0, g1 = 0;
            for (int l = 0; l < 32; l++) {
                const int h0 = ((qh[l] >> (2 * j)) & 1) << 4;
                const int h1 = ((qh[l] >> (2 * j + 1)) & 1) << 4;
                g0 += ((q5[l] & 0x0f) | h0) * q8[l];
                g1 += ((q5[l] >> 4) | h1) * q8[l + 32];
            }
            isum += sc[2 * j] * g0 + sc[2 * j + 1] * g1;
            q5 += 32;
            q8 += 64;
        }
        const float d = fp16_to_f32(x[i].d) * y[i].d;
        const float dmin = fp16_to_f32(x[i].dmin) * y[i].d;
        sumf += d * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

void cpu_vec_dot_q6_K_q8_K_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q6_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        int isum = 0;
        for (int k = 0; k < QK_K / 128; k++) {
            // four 32-element runs per 128: codes c = (nibble | 2 high bits << 4) - 32
            for (int r = 0; r < 4; r++) {
                for (int half = 0; half < 2; half++) {
                    int g = 0;
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        const uint8_t qlb = ql[l + (r & 1) * 32];
                        const int nib = r < 2 ? (qlb & 0x0f) : (qlb >> 4);
                        const int c = (nib | (((qh[l] >> (2 * r)) & 3) << 4)) - 32;
                        g += c * q8[32 * r + l];
                    }
                    isum += sc[2 * r + half] * g;
                }
            }
            ql += 64;
            qh += 32;
            sc += 8;
            q8 += 128;
        }
        sumf += (fp16_to_f32(x[i].d) * y[i].d) * (float)isum;
    }
    *s = sumf;
}

void cpu_vec_dot_iq4_xs_q8_K_ref(int n, float *s, const void *vx, const void *vy)
{
    const struct block_iq4_xs *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        const uint8_t *qs = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0x0f) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            int g = 0;
            for (int j = 0; j < 16; j++) {
                g += tensor_kvalues_iq4nl[qs[j] & 0x0f] * q8[j];
                g += tensor_kvalues_iq4nl[qs[j] >> 4] * q8[j + 16];
            }
            isum += (ls - 32) * g;
            qs += 16;
            q8 += 32;
        }
        sumf += (fp16_to_f32(x[i].d) * y[i].d) * (float)isum;
    }
    *s = sumf;
}

// ---- F16 / BF16 ----------------------------------------------------------------------------

void cpu_vec_dot_f16_ref(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        sum += (double)(fp16_to_f32(x[i]) * fp16_to_f32(y[i]));
    }
    *s = (float)sum;
}

void cpu_vec_dot_bf16_ref(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        sum += (double)(bf16_to_f32(x[i]) * bf16_to_f32(y[i]));
    }
    *s = (float)sum;
}
