// backend/cpu/x86/flash_attn_avx2.c: the AVX2 inner loops of flash attention's decode driver
// (ops/flash_attn.c): one K row dotted against a GQA group's query rows, a V row added into
// their accumulators, the block's exp-and-sum (vector expf), F16 -> F32 rows with F16C. Each
// loop's order is fixed by the lengths alone, so results never depend on the thread count.
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/cpu_int.h"
#include "backend/cpu/x86/simd_avx2.h"

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Two rows at a time share the K loads; each row's sum has dot_f32's order (8 lanes, fixed
// lane sum, scalar tail).
static void scores_avx2(int64_t D, const float *k, const float *const *q, int64_t nr, float *out)
{
    int64_t r = 0;
    for (; r + 2 <= nr; r += 2) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        const float *q0 = q[r], *q1 = q[r + 1];
        int64_t i = 0;
        for (; i + 8 <= D; i += 8) {
            const __m256 kv = _mm256_loadu_ps(k + i);
            a0 = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q0 + i), a0);
            a1 = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q1 + i), a1);
        }
        float s0 = hsum8(a0), s1 = hsum8(a1);
        for (; i < D; i++) {
            s0 += k[i] * q0[i];
            s1 += k[i] * q1[i];
        }
        out[r] = s0;
        out[r + 1] = s1;
    }
    for (; r < nr; r++) {
        __m256 a0 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 8 <= D; i += 8) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(k + i), _mm256_loadu_ps(q[r] + i), a0);
        }
        float s0 = hsum8(a0);
        for (; i < D; i++) {
            s0 += k[i] * q[r][i];
        }
        out[r] = s0;
    }
}

static void accum_avx2(int64_t Dv, const float *v, const float *p, int64_t ps, float *const *acc,
                       int64_t nr)
{
    for (int64_t r = 0; r < nr; r++) {
        const float w = p[r * ps];
        if (w == 0.0f) {
            continue;
        }
        const __m256 wv = _mm256_set1_ps(w);
        float *a = acc[r];
        int64_t i = 0;
        for (; i + 8 <= Dv; i += 8) {
            _mm256_storeu_ps(a + i, _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + i),
                                                    _mm256_loadu_ps(a + i)));
        }
        for (; i < Dv; i++) {
            a[i] += w * v[i];
        }
    }
}

// Dv in slices of 32 floats (4 registers), each slice walking all nc rows: acc stays in
// registers. Per element the chain is acc = fma(p_i, v_i, acc) over i, as in accum_avx2.
#define ACCUM_ROWS(NAME, VT, LOAD)                                                              \
    static void NAME(int64_t Dv, const VT *const *v, const float *p, int64_t nc, float *acc)    \
    {                                                                                           \
        int64_t e = 0;                                                                          \
        for (; e + 32 <= Dv; e += 32) {                                                         \
            __m256 a0 = _mm256_loadu_ps(acc + e), a1 = _mm256_loadu_ps(acc + e + 8);            \
            __m256 a2 = _mm256_loadu_ps(acc + e + 16), a3 = _mm256_loadu_ps(acc + e + 24);      \
            for (int64_t i = 0; i < nc; i++) {                                                  \
                if (p[i] == 0.0f) {                                                             \
                    continue;                                                                   \
                }                                                                               \
                const __m256 w = _mm256_set1_ps(p[i]);                                          \
                const VT *r = v[i] + e;                                                         \
                a0 = _mm256_fmadd_ps(w, LOAD(r), a0);                                           \
                a1 = _mm256_fmadd_ps(w, LOAD(r + 8), a1);                                       \
                a2 = _mm256_fmadd_ps(w, LOAD(r + 16), a2);                                      \
                a3 = _mm256_fmadd_ps(w, LOAD(r + 24), a3);                                      \
            }                                                                                   \
            _mm256_storeu_ps(acc + e, a0);                                                      \
            _mm256_storeu_ps(acc + e + 8, a1);                                                  \
            _mm256_storeu_ps(acc + e + 16, a2);                                                 \
            _mm256_storeu_ps(acc + e + 24, a3);                                                 \
        }                                                                                       \
        for (; e + 8 <= Dv; e += 8) {                                                           \
            __m256 a0 = _mm256_loadu_ps(acc + e);                                               \
            for (int64_t i = 0; i < nc; i++) {                                                  \
                if (p[i] != 0.0f) {                                                             \
                    a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[i]), LOAD(v[i] + e), a0);             \
                }                                                                               \
            }                                                                                   \
            _mm256_storeu_ps(acc + e, a0);                                                      \
        }                                                                                       \
        for (; e < Dv; e++) {                                                                   \
            float a = acc[e];                                                                   \
            for (int64_t i = 0; i < nc; i++) {                                                  \
                if (p[i] != 0.0f) {                                                             \
                    a += p[i] * SCALAR_##VT(v[i][e]);                                           \
                }                                                                               \
            }                                                                                   \
            acc[e] = a;                                                                         \
        }                                                                                       \
    }

#define LOAD_F16(r) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(r)))
#define SCALAR_uint16_t(x) _cvtsh_ss(x)
#define SCALAR_float(x) (x)
ACCUM_ROWS(accum_rows_f16_avx2, uint16_t, LOAD_F16)
ACCUM_ROWS(accum_rows_f32_avx2, float, _mm256_loadu_ps)

static float exp_sum_avx2(int64_t n, float *s, float m)
{
    const __m256 mv = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        // exp(-inf - m) underflows to 0 in avx2_exp.
        const __m256 e = avx2_exp(_mm256_sub_ps(_mm256_loadu_ps(s + i), mv));
        _mm256_storeu_ps(s + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum8(acc);
    for (; i < n; i++) {
        s[i] = s[i] == -INFINITY ? 0.0f : expf(s[i] - m);
        sum += s[i];
    }
    return sum;
}

static void f16_row_avx2(int64_t n, const uint16_t *x, float *y)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(x + i))));
    }
    for (; i < n; i++) {
        y[i] = _cvtsh_ss(x[i]);
    }
}

static int64_t skip_f16_avx2(int64_t n, const uint16_t *row, int64_t j, int64_t *k)
{
    const __m256i ninf = _mm256_set1_epi16((short)0xFC00);
    for (; j + 16 <= n; j += 16) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(row + j));
        const unsigned masked = (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi16(x, ninf));
        const int64_t vis = 16 - __builtin_popcount(masked) / 2;
        if (vis > *k) {
            break;
        }
        *k -= vis;
    }
    return j;
}

// Lane r of the result is the sum of a[r]'s 8 lanes: three rounds of pairwise adds for all
// eight at once instead of eight separate horizontal sums.
static inline __m256 hsum8x8(const __m256 a[8])
{
    const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    // u0 = [a0 a1 a2 a3 | a0 a1 a2 a3] partial sums of the low and high 128-bit halves
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// A block for up to 8 GQA heads with F16 K/V (contract in cpu_int.h). The 8 heads are the 8
// lanes: a K row is converted once and dotted against all 8 queries (their partial sums
// reduced together by hsum8x8), so the scores of a cell form one vector; max, exp and sum run
// on those vectors; the values are accumulated 4 heads x 16 elements at a time, 8 registers
// that stay put while the block's cells stream by. Heads beyond nr repeat query 0 and are
// dropped. Per cell this is ~2x fewer instructions than the row-by-row loops, and no
// dependent horizontal sum sits on the critical path.
static void block_f16_avx2(int64_t D, int64_t Dv, const uint16_t *const *k,
                           const uint16_t *const *v, const float *mv, int64_t nc,
                           const float *const *q, int64_t nr, float scale, float *sc,
                           float *const *acc)
{
    const float *qq[8];
    for (int r = 0; r < 8; r++) {
        qq[r] = q[r < nr ? r : 0];
    }
    const __m256 vscale = _mm256_set1_ps(scale);
    __m256 mx = _mm256_set1_ps(-INFINITY);
    const float *q0 = qq[0], *q1 = qq[1], *q2 = qq[2], *q3 = qq[3], *q4 = qq[4], *q5 = qq[5],
                *q6 = qq[6], *q7 = qq[7];
    for (int64_t i = 0; i < nc; i++) {
        // written out: GCC keeps an array of 8 accumulators on the stack
        __m256 a[8] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps(), _mm256_setzero_ps()};
        const uint16_t *kr = k[i];
        for (int64_t d = 0; d < D; d += 8) {
            const __m256 kv = LOAD_F16(kr + d);
            a[0] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q0 + d), a[0]);
            a[1] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q1 + d), a[1]);
            a[2] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q2 + d), a[2]);
            a[3] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q3 + d), a[3]);
            a[4] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q4 + d), a[4]);
            a[5] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q5 + d), a[5]);
            a[6] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q6 + d), a[6]);
            a[7] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q7 + d), a[7]);
        }
        const __m256 s = _mm256_fmadd_ps(hsum8x8(a), vscale, _mm256_set1_ps(mv[i]));
        _mm256_storeu_ps(sc + 8 * i, s);
        mx = _mm256_max_ps(mx, s);
    }
    // A head whose scores are all -inf keeps max -inf (an empty state); exp then sees
    // -inf - 0 and gives 0 rather than NaN.
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    const __m256 m = _mm256_blendv_ps(mx, _mm256_setzero_ps(), _mm256_cmp_ps(mx, ninf, _CMP_EQ_OQ));
    __m256 sum = _mm256_setzero_ps();
    for (int64_t i = 0; i < nc; i++) {
        const __m256 p = avx2_exp(_mm256_sub_ps(_mm256_loadu_ps(sc + 8 * i), m));
        _mm256_storeu_ps(sc + 8 * i, p);
        sum = _mm256_add_ps(sum, p);
    }
    for (int64_t r0 = 0; r0 < nr; r0 += 4) {
        for (int64_t e = 0; e < Dv; e += 16) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
                   a6 = a0, a7 = a0;
            const float *p = sc + r0;
            for (int64_t i = 0; i < nc; i++, p += 8) {
                const __m256 v0 = LOAD_F16(v[i] + e), v1 = LOAD_F16(v[i] + e + 8);
                const __m256 w0 = _mm256_broadcast_ss(p), w1 = _mm256_broadcast_ss(p + 1);
                const __m256 w2 = _mm256_broadcast_ss(p + 2), w3 = _mm256_broadcast_ss(p + 3);
                a0 = _mm256_fmadd_ps(w0, v0, a0);
                a1 = _mm256_fmadd_ps(w0, v1, a1);
                a2 = _mm256_fmadd_ps(w1, v0, a2);
                a3 = _mm256_fmadd_ps(w1, v1, a3);
                a4 = _mm256_fmadd_ps(w2, v0, a4);
                a5 = _mm256_fmadd_ps(w2, v1, a5);
                a6 = _mm256_fmadd_ps(w3, v0, a6);
                a7 = _mm256_fmadd_ps(w3, v1, a7);
            }
            const __m256 out[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
            for (int h = 0; h < 4 && r0 + h < nr; h++) {
                _mm256_storeu_ps(acc[r0 + h] + e, out[2 * h]);
                _mm256_storeu_ps(acc[r0 + h] + e + 8, out[2 * h + 1]);
            }
        }
    }
    float mxs[8], sums[8];
    _mm256_storeu_ps(mxs, mx);
    _mm256_storeu_ps(sums, sum);
    for (int64_t r = 0; r < nr; r++) {
        acc[r][-2] = mxs[r];
        acc[r][-1] = sums[r];
    }
}

const struct cpu_fa_helpers cpu_fa_avx2 = {
    .block_f16 = block_f16_avx2,
    .scores = scores_avx2,
    .accum = accum_avx2,
    .accum_rows_f16 = accum_rows_f16_avx2,
    .accum_rows_f32 = accum_rows_f32_avx2,
    .exp_sum = exp_sum_avx2,
    .f16_row = f16_row_avx2,
    .skip_f16 = skip_f16_avx2,
};
