// backend/cpu/quant/x86/dot_legacy_avx2.c: AVX2+FMA dot products of the 32-element block types
// (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4) against Q8_0/Q8_1 activations, and the
// Q8_0/Q8_1 activation quantizers (byte-identical to tensor/quant_legacy.c's). Each block's
// integer dot is exact in 8 int32 lanes; lanes are scaled by the block's d_x * d_y and summed
// in one float accumulator in block order, reduced in a fixed order at the end. Q4_0/Q8_0 also
// have 4x3 tiles (prefill) that reproduce the single dot bit for bit.
#include "backend/cpu/quant/quant.h"
#include "backend/cpu/quant/x86/quant_avx2.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

static inline __m256 scale_of(uint16_t dx, uint16_t dy)
{
    return _mm256_set1_ps(qa_f16(dx) * qa_f16(dy));
}

// Codes (q - 8) in -8..7 times int8 activations: |products| fit maddubs' int16 pairs. One
// float accumulator, blocks in order: the 4x3 tile below repeats exactly this per element.
void cpu_vec_dot_q4_0_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const __m256i q = _mm256_sub_epi8(qa_nibbles32(x[i].qs), off);
        const __m256i p = qa_dot_i8(q, qa_load(y[i].qs));
        acc = _mm256_fmadd_ps(scale_of(x[i].d, y[i].d), _mm256_cvtepi32_ps(p), acc);
    }
    *s = qa_hsum_ps(acc);
}

// 4 weight rows x 3 activation rows, each block's nibbles unpacked once for all 3 columns.
// The int32 lanes equal qa_dot_i8(q - 8, y)'s: maddubs(q, y) - maddubs(8, y) gives the same
// int16 pair sums (|q y| pairs <= 3810, no saturation), so every s[r][c] is bit for bit
// cpu_vec_dot_q4_0_q8_0_avx2(x[r], y[c]) (same scale product, same fma chain, same hsum).
static void tile4x3_q4_0(int n, const void *const vx[4], const void *const vy[3], float s[4][3])
{
    const struct block_q4_0 *x[4] = {vx[0], vx[1], vx[2], vx[3]};
    const struct block_q8_0 *y[3] = {vy[0], vy[1], vy[2]};
    const int nb = n / QK8_0;
    const __m256i ones = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
    __m256 acc[4][3];
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 3; c++) {
            acc[r][c] = _mm256_setzero_ps();
        }
    }
    for (int i = 0; i < nb; i++) {
        __m256i yv[3], y8[3];
        __m256 dy[3];
        for (int c = 0; c < 3; c++) {
            yv[c] = qa_load(y[c][i].qs);
            y8[c] = _mm256_maddubs_epi16(eight, yv[c]);
            dy[c] = _mm256_set1_ps(qa_f16(y[c][i].d));
        }
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m256i q = qa_nibbles32(x[r][i].qs);
            const __m256 dx = _mm256_set1_ps(qa_f16(x[r][i].d));
            #pragma GCC unroll 3
            for (int c = 0; c < 3; c++) {
                const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, yv[c]), y8[c]);
                const __m256i p = _mm256_madd_epi16(p16, ones);
                acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy[c]), _mm256_cvtepi32_ps(p),
                                            acc[r][c]);
            }
        }
    }
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 3; c++) {
            s[r][c] = qa_hsum_ps(acc[r][c]);
        }
    }
}

// Unsigned codes 0..15 (maddubs' unsigned side); the min term m * s_y is summed apart.
void cpu_vec_dot_q4_1_q8_1_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_1 *x = vx;
    const struct block_q8_1 *y = vy;
    const int nb = n / QK8_1;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int i = 0; i < nb; i++) {
        const __m256i p = qa_dot_u8(qa_nibbles32(x[i].qs), qa_load(y[i].qs));
        acc = _mm256_fmadd_ps(scale_of(x[i].d, y[i].d), _mm256_cvtepi32_ps(p), acc);
        summs += qa_f16(x[i].m) * qa_f16(y[i].s);
    }
    *s = qa_hsum_ps(acc) + summs;
}

// (nibble | h << 4) - 16: where h is clear the byte is nibble | 0xf0 (nibble - 16 as int8).
void cpu_vec_dot_q5_0_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    const __m256i hi = _mm256_set1_epi8((char)0xf0);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const __m256i h = _mm256_andnot_si256(qa_bits32(x[i].qh), hi);
        const __m256i q = _mm256_or_si256(qa_nibbles32(x[i].qs), h);
        const __m256i p = qa_dot_i8(q, qa_load(y[i].qs));
        acc = _mm256_fmadd_ps(scale_of(x[i].d, y[i].d), _mm256_cvtepi32_ps(p), acc);
    }
    *s = qa_hsum_ps(acc);
}

void cpu_vec_dot_q5_1_q8_1_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_1 *x = vx;
    const struct block_q8_1 *y = vy;
    const int nb = n / QK8_1;
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int i = 0; i < nb; i++) {
        const __m256i h = _mm256_and_si256(qa_bits32(x[i].qh), b4);
        const __m256i q = _mm256_or_si256(qa_nibbles32(x[i].qs), h); // 0..31
        const __m256i p = qa_dot_u8(q, qa_load(y[i].qs));
        acc = _mm256_fmadd_ps(scale_of(x[i].d, y[i].d), _mm256_cvtepi32_ps(p), acc);
        summs += qa_f16(x[i].m) * qa_f16(y[i].s);
    }
    *s = qa_hsum_ps(acc) + summs;
}

void cpu_vec_dot_q8_0_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q8_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        qa_prefetch_span(&x[i], 1); // blocks are 34 bytes: one line per block covers them
        const __m256i p = qa_dot_i8(qa_load(x[i].qs), qa_load(y[i].qs));
        acc = _mm256_fmadd_ps(scale_of(x[i].d, y[i].d), _mm256_cvtepi32_ps(p), acc);
    }
    *s = qa_hsum_ps(acc);
}

// As the Q4_0 tile: |x| computed once per weight block, the sign moved onto each column.
static void tile4x3_q8_0(int n, const void *const vx[4], const void *const vy[3], float s[4][3])
{
    const struct block_q8_0 *x[4] = {vx[0], vx[1], vx[2], vx[3]};
    const struct block_q8_0 *y[3] = {vy[0], vy[1], vy[2]};
    const int nb = n / QK8_0;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4][3];
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 3; c++) {
            acc[r][c] = _mm256_setzero_ps();
        }
    }
    for (int i = 0; i < nb; i++) {
        __m256i yv[3];
        __m256 dy[3];
        for (int c = 0; c < 3; c++) {
            yv[c] = qa_load(y[c][i].qs);
            dy[c] = _mm256_set1_ps(qa_f16(y[c][i].d));
        }
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m256i q = qa_load(x[r][i].qs);
            const __m256i aq = _mm256_sign_epi8(q, q);
            const __m256 dx = _mm256_set1_ps(qa_f16(x[r][i].d));
            #pragma GCC unroll 3
            for (int c = 0; c < 3; c++) {
                const __m256i p16 = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(yv[c], q));
                const __m256i p = _mm256_madd_epi16(p16, ones);
                acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy[c]), _mm256_cvtepi32_ps(p),
                                            acc[r][c]);
            }
        }
    }
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 3; c++) {
            s[r][c] = qa_hsum_ps(acc[r][c]);
        }
    }
}

// The 4 x nc entry points: 4x3 register tiles, the last one padded by repeating a column.
typedef void (*tile4x3_fn)(int n, const void *const vx[4], const void *const vy[3],
                           float s[4][3]);

static inline void tile_cols(tile4x3_fn f, int n, const void *const x[4], const void *const *y,
                             int nc, float *s)
{
    for (int c0 = 0; c0 < nc; c0 += 3) {
        const int k = nc - c0 < 3 ? nc - c0 : 3;
        const void *ys[3] = {y[c0], y[c0 + (k > 1 ? 1 : 0)], y[c0 + (k > 2 ? 2 : k - 1)]};
        float t[4][3];
        f(n, x, ys, t);
        for (int r = 0; r < 4; r++) {
            for (int q = 0; q < k; q++) {
                s[r * nc + c0 + q] = t[r][q];
            }
        }
    }
}

void cpu_vec_dot_tile_q4_0_q8_0_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s)
{
    tile_cols(tile4x3_q4_0, n, x, y, nc, s);
}

void cpu_vec_dot_tile_q8_0_q8_0_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s)
{
    tile_cols(tile4x3_q8_0, n, x, y, nc, s);
}

void cpu_vec_dot_iq4_nl_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_iq4_nl *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK4_NL;
    const __m128i table = _mm_loadu_si128((const __m128i *)(const void *)tensor_kvalues_iq4nl);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const __m256i p = qa_dot_i8(qa_lut32(x[i].qs, table), qa_load(y[i].qs));
        acc = _mm256_fmadd_ps(scale_of(x[i].d, y[i].d), _mm256_cvtepi32_ps(p), acc);
    }
    *s = qa_hsum_ps(acc);
}

void cpu_vec_dot_mxfp4_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_mxfp4 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK_MXFP4;
    const __m128i table = _mm_loadu_si128((const __m128i *)(const void *)tensor_kvalues_mxfp4);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const __m256i p = qa_dot_i8(qa_lut32(x[i].qs, table), qa_load(y[i].qs));
        const float d = tensor_e8m0_to_f32_half(x[i].e) * qa_f16(y[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(p), acc);
    }
    *s = qa_hsum_ps(acc);
}

// ---- activation quantizers -----------------------------------------------------------------

// roundf (half away from zero) of v, clamped to [-127, 127], as int32 lanes. Adding
// copysign(0.49999997, v) then truncating is exact roundf for |v| < 2^23.
static inline __m256i round_away_i32(__m256 v)
{
    const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
    const __m256 half = _mm256_or_ps(_mm256_set1_ps(0.49999997f), sign);
    __m256 r = _mm256_round_ps(_mm256_add_ps(v, half), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    return _mm256_cvttps_epi32(r);
}

// Packs 4 x 8 int32 lanes (elements 0..31 in order) into 32 int8.
static inline __m256i pack_i8(__m256i a, __m256i b, __m256i c, __m256i d)
{
    const __m256i ab = _mm256_packs_epi32(a, b);
    const __m256i cd = _mm256_packs_epi32(c, d);
    const __m256i v = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// One 32-float block: the f16 scale, the 32 codes and (*sum_out) their sum; returns the f32
// scale before rounding (Q8_1's s is computed from it, as the reference does).
static inline float quant_block32(const float *xb, uint16_t *d_out, int8_t *qs, int *sum_out)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v[4];
    __m256 mx = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(xb + 8 * k);
        mx = _mm256_max_ps(mx, _mm256_and_ps(v[k], absmask));
    }
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(mx, 1), _mm256_castps256_ps128(mx));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *d_out = fp16_from_f32(d);
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) {
        q[k] = round_away_i32(_mm256_mul_ps(v[k], vid));
    }
    _mm256_storeu_si256((__m256i *)(void *)qs, pack_i8(q[0], q[1], q[2], q[3]));
    __m256i sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_extracti128_si256(sum, 1), _mm256_castsi256_si128(sum));
    s4 = _mm_hadd_epi32(s4, s4);
    s4 = _mm_hadd_epi32(s4, s4);
    *sum_out = _mm_cvtsi128_si32(s4);
    return d;
}

void cpu_quant_q8_0_avx2(const float *x, void *vy, int64_t n)
{
    struct block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sum;
        (void)quant_block32(x + i * QK8_0, &y[i].d, y[i].qs, &sum);
    }
}

void cpu_quant_q8_1_avx2(const float *x, void *vy, int64_t n)
{
    struct block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sum;
        const float d = quant_block32(x + i * QK8_1, &y[i].d, y[i].qs, &sum);
        y[i].s = fp16_from_f32((float)sum * d);
    }
}
