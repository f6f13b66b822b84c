// backend/cpu/quant/x86/dot_k_avx2.c: AVX2+FMA dot products of the 256-element super-block
// types (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) against Q8_K activations, and the Q8_K
// activation quantizer (byte-identical to tensor/quant_k.c's). Per super-block the code
// products are summed exactly in int32 lanes with the sub-block scales folded in by madd,
// then scaled once by d_x * d_y into one float accumulator; the min terms of Q2_K/Q4_K/Q5_K
// come from Q8_K's bsums.
#include <string.h>

#include "backend/cpu/quant/quant.h"
#include "backend/cpu/quant/x86/quant_avx2.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

// Byte pattern that broadcasts int16 lane k of a 128-bit vector to all 8 lanes.
static inline __m128i bcast16_pat(int k)
{
    return _mm_set1_epi16((short)((2 * k) | ((2 * k + 1) << 8)));
}

// A 256-bit int16 vector: lanes 0..7 = s[a], lanes 8..15 = s[b], s a 128-bit int16 vector.
static inline __m256i scale_pair(__m128i s, int a, int b)
{
    return _mm256_set_m128i(_mm_shuffle_epi8(s, bcast16_pat(b)),
                            _mm_shuffle_epi8(s, bcast16_pat(a)));
}

// Q2_K: codes 0..3 unsigned; scales (sc & 15) per 16; mins (sc >> 4) against bsums.
void cpu_vec_dot_q2_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q2_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const float dall = y[i].d * qa_f16(x[i].d);
        const float dmin = -y[i].d * qa_f16(x[i].dmin);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(const void *)x[i].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
        const __m256i prodm = _mm256_madd_epi16(mins, qa_load(y[i].bsums));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prodm), accm);
        const __m128i scl = _mm_and_si128(sc8, m4);
        const __m128i s16[2] = {_mm_cvtepu8_epi16(scl), _mm_cvtepu8_epi16(_mm_srli_si128(scl, 8))};
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int k = 0; k < 2; k++) {
            const __m256i bits = qa_load(x[i].qs + 32 * k);
            #pragma GCC unroll 8
            for (int j = 0; j < 4; j++) {
                const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                const __m256i p16 = _mm256_maddubs_epi16(q2, qa_load(q8));
                const __m256i sc = scale_pair(s16[k], 2 * j, 2 * j + 1);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, p16));
                q8 += 32;
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = qa_hsum_ps(acc) + qa_hsum_ps(accm);
}

// Q3_K: codes (2 low bits) - 4 * (hmask bit clear), in -4..3; 16 signed 6-bit scales.
void cpu_vec_dot_q3_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q3_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        int8_t sc[16];
        #pragma GCC unroll 8
        for (int j = 0; j < 16; j++) {
            int lo = j < 8 ? x[i].scales[j] & 0x0f : x[i].scales[j - 8] >> 4;
            int hi = (x[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            sc[j] = (int8_t)((lo | (hi << 4)) - 32);
        }
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(const void *)sc);
        const __m128i s16[2] = {_mm_cvtepi8_epi16(sc8), _mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8))};
        const __m256i hbits = qa_load(x[i].hmask);
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int k = 0; k < 2; k++) {
            const __m256i bits = qa_load(x[i].qs + 32 * k);
            #pragma GCC unroll 8
            for (int j = 0; j < 4; j++) {
                const __m256i q3l = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                const __m256i hb = _mm256_set1_epi8((char)(1u << (4 * k + j)));
                const __m256i clear =
                    _mm256_cmpeq_epi8(_mm256_and_si256(hbits, hb), _mm256_setzero_si256());
                const __m256i q3h = _mm256_and_si256(clear, four);
                const __m256i q = qa_load(q8);
                // (l - h) * q8 as two unsigned maddubs: 2*4*127 fits int16
                const __m256i p16 =
                    _mm256_sub_epi16(_mm256_maddubs_epi16(q3l, q), _mm256_maddubs_epi16(q3h, q));
                const __m256i scv = scale_pair(s16[k], 2 * j, 2 * j + 1);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scv, p16));
                q8 += 32;
            }
        }
        const float d = qa_f16(x[i].d) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = qa_hsum_ps(acc);
}

// Unpacks Q4_K/Q5_K's 12 scale bytes into 8 scales (bytes 0..7) and 8 mins (bytes 8..15).
static inline __m128i unpack_k4_scales(const uint8_t *scales)
{
    uint32_t u[4];
    memcpy(u, scales, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    const uint32_t mins_lo = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    u[2] = mins_lo;
    u[0] &= k1;
    return _mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]);
}

// The min term of Q4_K/Q5_K: 4 int32 lanes summing mins[g] * sum(q8 of group g of 32).
static inline __m128i k4_mins_dot(__m128i sm8, const int16_t *bsums)
{
    const __m128i mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm8, 8));
    const __m256i bs = qa_load(bsums);
    const __m128i q8s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    return _mm_madd_epi16(mins16, q8s);
}

void cpu_vec_dot_q4_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int i = 0; i < nb; i++) {
        qa_prefetch_span(&x[i], sizeof x[i]);
        const float d = y[i].d * qa_f16(x[i].d);
        const float dmin = -y[i].d * qa_f16(x[i].dmin);
        const __m128i sm8 = unpack_k4_scales(x[i].scales);
        const __m128i prodm = k4_mins_dot(sm8, y[i].bsums);
        accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prodm), accm);
        const __m128i sc16 = _mm_cvtepu8_epi16(sm8);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int j = 0; j < QK_K / 64; j++) {
            const __m256i sl = _mm256_broadcastsi128_si256(_mm_shuffle_epi8(sc16, bcast16_pat(2 * j)));
            const __m256i sh =
                _mm256_broadcastsi128_si256(_mm_shuffle_epi8(sc16, bcast16_pat(2 * j + 1)));
            const __m256i bits = qa_load(q4);
            const __m256i ql = _mm256_and_si256(bits, m4);
            const __m256i qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            // 2 * 15 * 127 fits int16; scale <= 63 keeps the int32 sums far from overflow
            const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(ql, qa_load(q8)));
            const __m256i ph = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(qh, qa_load(q8 + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
            q4 += 32;
            q8 += 64;
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = qa_hsum_ps(acc) + qa_hsum_ps128(accm);
}

void cpu_vec_dot_q5_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const float d = y[i].d * qa_f16(x[i].d);
        const float dmin = -y[i].d * qa_f16(x[i].dmin);
        const __m128i sm8 = unpack_k4_scales(x[i].scales);
        const __m128i prodm = k4_mins_dot(sm8, y[i].bsums);
        accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prodm), accm);
        const __m128i sc16 = _mm_cvtepu8_epi16(sm8);
        const uint8_t *q5 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i hb = qa_load(x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int j = 0; j < QK_K / 64; j++) {
            const __m256i sl = _mm256_broadcastsi128_si256(_mm_shuffle_epi8(sc16, bcast16_pat(2 * j)));
            const __m256i sh =
                _mm256_broadcastsi128_si256(_mm_shuffle_epi8(sc16, bcast16_pat(2 * j + 1)));
            const __m256i bits = qa_load(q5);
            // bit 2j of qh is the 5th bit of the low nibbles, bit 2j+1 of the high ones; hb is
            // shifted right by 2 per step so both sit at bits 0 and 1 (shifts stay in-byte
            // where it matters: bit 0/1 of each byte only ever comes from the same byte)
            const __m256i hl = _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4);
            const __m256i hh = _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4);
            const __m256i ql = _mm256_or_si256(_mm256_and_si256(bits, m4), hl);
            const __m256i qh = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), hh);
            const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(ql, qa_load(q8)));
            const __m256i ph = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(qh, qa_load(q8 + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
            hb = _mm256_srli_epi16(hb, 2);
            q5 += 32;
            q8 += 64;
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = qa_hsum_ps(acc) + qa_hsum_ps128(accm);
}

// Q6_K: codes (nibble | 2 high bits << 4) in 0..63, minus 32 via maddubs(32, q8).
void cpu_vec_dot_q6_K_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q6_K *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m2 = _mm256_set1_epi8(3);
    const __m256i m32 = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        qa_prefetch_span(&x[i], sizeof x[i]);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int k = 0; k < QK_K / 128; k++) {
            const __m128i sc16 =
                _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(x[i].scales + 8 * k)));
            const __m256i b1 = qa_load(ql);
            const __m256i b2 = qa_load(ql + 32);
            const __m256i bh = qa_load(qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(b1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(bh, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(b2, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 6), m2), 4));
            #pragma GCC unroll 8
            for (int r = 0; r < 4; r++) {
                const __m256i q8v = qa_load(q8 + 32 * r);
                // 2 * 63 * 127 fits int16; so does the difference with 2 * 32 * 127
                const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q[r], q8v),
                                                     _mm256_maddubs_epi16(m32, q8v));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_pair(sc16, 2 * r, 2 * r + 1), p16));
            }
            ql += 64;
            qh += 32;
            q8 += 128;
        }
        const float d = qa_f16(x[i].d) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = qa_hsum_ps(acc);
}

void cpu_vec_dot_iq4_xs_q8_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_iq4_xs *x = vx;
    const struct block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m128i table = _mm_loadu_si128((const __m128i *)(const void *)tensor_kvalues_iq4nl);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const uint8_t *qs = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0x0f) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const __m256i v = qa_lut32(qs, table);
            const __m256i q8v = qa_load(q8);
            // |code| <= 127 and |q8| <= 127: maddubs pairs fit int16
            const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(q8v, v));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, _mm256_set1_epi16((short)(ls - 32))));
            qs += 16;
            q8 += 32;
        }
        const float d = qa_f16(x[i].d) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = qa_hsum_ps(acc);
}

// ---- 4 x nc tiles (prefill) ---------------------------------------------------------------
// Per super-block each of the 4 weight rows is unpacked once into 8 chunks of 32 unsigned
// codes and 8 int16 scale vectors (on the stack, L1), then dotted against all nc activation
// rows. The int32 sums per super-block are exact and integer addition is associative, so they
// equal the single dot's; the float steps (d * sumi, dmin * mins, the hsums) are the same
// operations in the same order, so s[r][c] is bit for bit vec_dot(x[r], y[c]).

enum ktile_type { KT_Q4_K, KT_Q5_K, KT_Q6_K };

// Unpacks super-block i of row vx: code[t] (chunk t = elements 32t..32t+31, unsigned; Q6_K
// 0..63, the -32 is applied on the activation side), sc[t] (the int16 scale of each maddubs
// pair), *mins16 (Q4_K/Q5_K), *dx and *dminx. Strides let the caller interleave 4 rows.
static inline __attribute__((always_inline)) void
ktile_unpack(enum ktile_type kt, const void *vx, int i, __m256i *code, __m256i *sc, int stride,
             __m128i *mins16, float *dx, float *dminx)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    if (kt == KT_Q6_K) {
        const struct block_q6_K *x = (const struct block_q6_K *)vx + i;
        const __m256i m2 = _mm256_set1_epi8(3);
        #pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            const __m128i sc16 = _mm_cvtepi8_epi16(
                _mm_loadl_epi64((const __m128i *)(const void *)(x->scales + 8 * k)));
            const __m256i b1 = qa_load(x->ql + 64 * k);
            const __m256i b2 = qa_load(x->ql + 64 * k + 32);
            const __m256i bh = qa_load(x->qh + 32 * k);
            const int t = 4 * k;
            const __m256i h0 = _mm256_and_si256(bh, m2);
            const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(bh, 2), m2);
            const __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(bh, 4), m2);
            const __m256i h3 = _mm256_and_si256(_mm256_srli_epi16(bh, 6), m2);
            code[(t + 0) * stride] =
                _mm256_or_si256(_mm256_and_si256(b1, m4), _mm256_slli_epi16(h0, 4));
            code[(t + 1) * stride] =
                _mm256_or_si256(_mm256_and_si256(b2, m4), _mm256_slli_epi16(h1, 4));
            code[(t + 2) * stride] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(b1, 4), m4), _mm256_slli_epi16(h2, 4));
            code[(t + 3) * stride] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(b2, 4), m4), _mm256_slli_epi16(h3, 4));
            #pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                sc[(t + r) * stride] = scale_pair(sc16, 2 * r, 2 * r + 1);
            }
        }
        *dx = qa_f16(x->d);
        return;
    }
    const uint8_t *qs, *scales;
    uint16_t d, dmin;
    __m256i hb = _mm256_setzero_si256();
    if (kt == KT_Q4_K) {
        const struct block_q4_K *x = (const struct block_q4_K *)vx + i;
        qs = x->qs, scales = x->scales, d = x->d, dmin = x->dmin;
    } else {
        const struct block_q5_K *x = (const struct block_q5_K *)vx + i;
        qs = x->qs, scales = x->scales, d = x->d, dmin = x->dmin;
        hb = qa_load(x->qh);
    }
    const __m128i sm8 = unpack_k4_scales(scales);
    *mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm8, 8));
    const __m128i sc16 = _mm_cvtepu8_epi16(sm8);
    const __m256i b4 = _mm256_set1_epi8(0x10);
    #pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m128i s_lo = _mm_shuffle_epi8(sc16, bcast16_pat(2 * j));
        const __m128i s_hi = _mm_shuffle_epi8(sc16, bcast16_pat(2 * j + 1));
        sc[(2 * j) * stride] = _mm256_broadcastsi128_si256(s_lo);
        sc[(2 * j + 1) * stride] = _mm256_broadcastsi128_si256(s_hi);
        const __m256i bits = qa_load(qs + 32 * j);
        __m256i ql = _mm256_and_si256(bits, m4);
        __m256i qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
        if (kt == KT_Q5_K) {
            ql = _mm256_or_si256(ql, _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4));
            qh = _mm256_or_si256(qh, _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4));
            hb = _mm256_srli_epi16(hb, 2);
        }
        code[(2 * j) * stride] = ql;
        code[(2 * j + 1) * stride] = qh;
    }
    *dx = qa_f16(d);
    *dminx = qa_f16(dmin);
}

// Super-block outer, columns inner: the 4 rows' unpacked super-block (2 KiB on the stack) is
// reused by all nc columns; the float accumulators live in memory (one fma per super-block).
static inline __attribute__((always_inline)) void ktile(enum ktile_type kt, int n,
                                                        const void *const vx[4],
                                                        const void *const *vy, int nc, float *s)
{
    const int nb = n / QK_K;
    const __m256i m32 = _mm256_set1_epi8(32);
    __m256 acc[QUANT_TILE_MAX_COLS][4];
    __m128 accm[QUANT_TILE_MAX_COLS][4];
    for (int c = 0; c < nc; c++) {
        for (int r = 0; r < 4; r++) {
            acc[c][r] = _mm256_setzero_ps();
            accm[c][r] = _mm_setzero_ps();
        }
    }
    __m256i code[8][4], sc[8][4];
    __m128i mins16[4];
    float dx[4], dminx[4];
    for (int i = 0; i < nb; i++) {
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            ktile_unpack(kt, vx[r], i, &code[0][r], &sc[0][r], 4, &mins16[r], &dx[r],
                         &dminx[r]);
        }
        for (int c = 0; c < nc; c++) {
            const struct block_q8_K *y = (const struct block_q8_K *)vy[c] + i;
            const int8_t *q8 = y->qs;
            __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
            #pragma GCC unroll 1
            for (int t = 0; t < 8; t++) {
                const __m256i yv = qa_load(q8 + 32 * t);
                __m256i p0 = _mm256_maddubs_epi16(code[t][0], yv);
                __m256i p1 = _mm256_maddubs_epi16(code[t][1], yv);
                __m256i p2 = _mm256_maddubs_epi16(code[t][2], yv);
                __m256i p3 = _mm256_maddubs_epi16(code[t][3], yv);
                if (kt == KT_Q6_K) {
                    const __m256i y32 = _mm256_maddubs_epi16(m32, yv);
                    p0 = _mm256_sub_epi16(p0, y32);
                    p1 = _mm256_sub_epi16(p1, y32);
                    p2 = _mm256_sub_epi16(p2, y32);
                    p3 = _mm256_sub_epi16(p3, y32);
                }
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(sc[t][0], p0));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(sc[t][1], p1));
                s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(sc[t][2], p2));
                s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(sc[t][3], p3));
            }
            const __m256i sumi[4] = {s0, s1, s2, s3};
            if (kt == KT_Q6_K) {
                #pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    const float d = dx[r] * y->d;
                    acc[c][r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[r]),
                                                acc[c][r]);
                }
            } else {
                const __m256i bs = qa_load(y->bsums);
                const __m128i q8s =
                    _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                #pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    const float d = y->d * dx[r];
                    const float dmin = -y->d * dminx[r];
                    const __m128i prodm = _mm_madd_epi16(mins16[r], q8s);
                    accm[c][r] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prodm),
                                              accm[c][r]);
                    acc[c][r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[r]),
                                                acc[c][r]);
                }
            }
        }
    }
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < nc; c++) {
            s[r * nc + c] = kt == KT_Q6_K ? qa_hsum_ps(acc[c][r])
                                          : qa_hsum_ps(acc[c][r]) + qa_hsum_ps128(accm[c][r]);
        }
    }
}

void cpu_vec_dot_tile_q4_K_q8_K_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s)
{
    ktile(KT_Q4_K, n, x, y, nc, s);
}

void cpu_vec_dot_tile_q5_K_q8_K_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s)
{
    ktile(KT_Q5_K, n, x, y, nc, s);
}

void cpu_vec_dot_tile_q6_K_q8_K_avx2(int n, const void *const x[4], const void *const *y, int nc,
                                     float *s)
{
    ktile(KT_Q6_K, n, x, y, nc, s);
}

// ---- Q8_K activation quantizer -------------------------------------------------------------

void cpu_quant_q8_K_avx2(const float *x, void *vy, int64_t n)
{
    struct block_q8_K *y = vy;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 mx = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) {
            mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
        }
        __m128 m = _mm_max_ps(_mm256_extractf128_ps(mx, 1), _mm256_castps256_ps128(mx));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float amax = _mm_cvtss_f32(m);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        // the reference keeps the first element of largest magnitude, with its sign
        const __m256 va = _mm256_set1_ps(amax);
        float max = amax;
        for (int j = 0; j < QK_K; j += 8) {
            const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + j), absmask);
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(a, va, _CMP_EQ_OQ));
            if (hit) {
                max = x[j + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                // round half to even, as the reference's magic-number rounding
                __m256 v = _mm256_round_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8 * k)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[k] = _mm256_cvtps_epi32(_mm256_min_ps(v, _mm256_set1_ps(127.0f)));
            }
            const __m256i ab = _mm256_packs_epi32(q[0], q[1]);
            const __m256i cd = _mm256_packs_epi32(q[2], q[3]);
            const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd),
                                                          _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(void *)(y[i].qs + j), p);
        }
        // bsums: sums of 16 codes (maddubs by ones gives pair sums, madd quads; then hadd)
        const __m256i ones8 = _mm256_set1_epi8(1);
        for (int j = 0; j < QK_K; j += 64) {
            const __m256i a = _mm256_maddubs_epi16(ones8, qa_load(y[i].qs + j));
            const __m256i b = _mm256_maddubs_epi16(ones8, qa_load(y[i].qs + j + 32));
            const __m256i a4 = _mm256_madd_epi16(a, _mm256_set1_epi16(1)); // sums of 4
            const __m256i b4 = _mm256_madd_epi16(b, _mm256_set1_epi16(1));
            // hadd per lane: [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, a6+a7, b4+b5, b6+b7] sums of 8
            const __m256i h8 = _mm256_hadd_epi32(a4, b4);
            const __m256i h16 = _mm256_hadd_epi32(h8, h8); // [A0, B0, A0, B0 | A1, B1, ...]
            // lane0: A0 = elems 0..15 of a, B0 = elems 0..15 of b; lane1: elems 16..31
            int32_t t[8];
            _mm256_storeu_si256((__m256i *)(void *)t, h16);
            y[i].bsums[j / 16 + 0] = (int16_t)t[0];
            y[i].bsums[j / 16 + 1] = (int16_t)t[4];
            y[i].bsums[j / 16 + 2] = (int16_t)t[1];
            y[i].bsums[j / 16 + 3] = (int16_t)t[5];
        }
        y[i].d = 1 / iscale;
    }
}
