// backend/cpu/x86/vec_avx2.c: AVX2 + FMA + F16C vector helpers: dot products (one 8-lane
// accumulator per output, fixed lane reduction, scalar tail) and the register-blocked 4x3 /
// 4x1 tiles mul_mat uses; axpy and scale for attention. Compiled with -mavx2 -mfma -mf16c;
// called only when cpu_isa_best() says the CPU has them.
#include <immintrin.h>

#include "backend/cpu/cpu_int.h"

// Fixed-order horizontal sum: (lo128 + hi128), then the two halves, then the last pair.
static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 load_h(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static float dot_f32(int64_t n, const float *x, const float *y)
{
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc);
    }
    float s = hsum(acc);
    for (; i < n; i++) {
        s += x[i] * y[i];
    }
    return s;
}

static float dot_f16_f32(int64_t n, const uint16_t *x, const float *y)
{
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc = _mm256_fmadd_ps(load_h(x + i), _mm256_loadu_ps(y + i), acc);
    }
    float s = hsum(acc);
    for (; i < n; i++) {
        s += fp16_to_f32(x[i]) * y[i];
    }
    return s;
}

// The tails repeat dot_f32's scalar loop so a tile element equals dot_f32 bit for bit.
#define TILE4x3(NAME, WT, LOADW, CVT)                                                           \
    static void NAME(int64_t n, const WT *const w[4], const float *const x[3], float out[4][3]) \
    {                                                                                           \
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00;           \
        __m256 a12 = a00, a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;     \
        int64_t i = 0;                                                                          \
        for (; i + 8 <= n; i += 8) {                                                            \
            __m256 x0 = _mm256_loadu_ps(x[0] + i), x1 = _mm256_loadu_ps(x[1] + i);              \
            __m256 x2 = _mm256_loadu_ps(x[2] + i);                                              \
            __m256 w0 = LOADW(w[0] + i);                                                        \
            a00 = _mm256_fmadd_ps(w0, x0, a00);                                                 \
            a01 = _mm256_fmadd_ps(w0, x1, a01);                                                 \
            a02 = _mm256_fmadd_ps(w0, x2, a02);                                                 \
            __m256 w1 = LOADW(w[1] + i);                                                        \
            a10 = _mm256_fmadd_ps(w1, x0, a10);                                                 \
            a11 = _mm256_fmadd_ps(w1, x1, a11);                                                 \
            a12 = _mm256_fmadd_ps(w1, x2, a12);                                                 \
            __m256 w2 = LOADW(w[2] + i);                                                        \
            a20 = _mm256_fmadd_ps(w2, x0, a20);                                                 \
            a21 = _mm256_fmadd_ps(w2, x1, a21);                                                 \
            a22 = _mm256_fmadd_ps(w2, x2, a22);                                                 \
            __m256 w3 = LOADW(w[3] + i);                                                        \
            a30 = _mm256_fmadd_ps(w3, x0, a30);                                                 \
            a31 = _mm256_fmadd_ps(w3, x1, a31);                                                 \
            a32 = _mm256_fmadd_ps(w3, x2, a32);                                                 \
        }                                                                                       \
        const __m256 acc[4][3] = {                                                              \
            {a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};                \
        for (int r = 0; r < 4; r++) {                                                           \
            for (int c = 0; c < 3; c++) {                                                       \
                float s = hsum(acc[r][c]);                                                      \
                for (int64_t k = i; k < n; k++) {                                               \
                    s += CVT(w[r][k]) * x[c][k];                                                \
                }                                                                               \
                out[r][c] = s;                                                                  \
            }                                                                                   \
        }                                                                                       \
    }

#define TILE4x1(NAME, WT, LOADW, CVT)                                               \
    static void NAME(int64_t n, const WT *const w[4], const float *x, float out[4]) \
    {                                                                               \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                 \
        int64_t i = 0;                                                              \
        for (; i + 8 <= n; i += 8) {                                                \
            if ((i * sizeof(WT)) % 64 == 0) { /* decode streams weights: prefetch */ \
                for (int r = 0; r < 4; r++) {                                       \
                    _mm_prefetch((const char *)(w[r] + i) + 1024, _MM_HINT_T0);     \
                }                                                                   \
            }                                                                       \
            __m256 xv = _mm256_loadu_ps(x + i);                                     \
            a0 = _mm256_fmadd_ps(LOADW(w[0] + i), xv, a0);                          \
            a1 = _mm256_fmadd_ps(LOADW(w[1] + i), xv, a1);                          \
            a2 = _mm256_fmadd_ps(LOADW(w[2] + i), xv, a2);                          \
            a3 = _mm256_fmadd_ps(LOADW(w[3] + i), xv, a3);                          \
        }                                                                           \
        const __m256 acc[4] = {a0, a1, a2, a3};                                     \
        for (int r = 0; r < 4; r++) {                                               \
            float s = hsum(acc[r]);                                                 \
            for (int64_t k = i; k < n; k++) {                                       \
                s += CVT(w[r][k]) * x[k];                                           \
            }                                                                       \
            out[r] = s;                                                             \
        }                                                                           \
    }

#define ID(v) (v)
TILE4x3(tile4x3_f32, float, _mm256_loadu_ps, ID) TILE4x3(tile4x3_f16, uint16_t, load_h, fp16_to_f32)
    TILE4x1(tile4x1_f32, float, _mm256_loadu_ps, ID)
        TILE4x1(tile4x1_f16, uint16_t, load_h, fp16_to_f32)

            static void axpy_f32(int64_t n, float a, const float *x, float *y)
{
    __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) {
        y[i] += a * x[i];
    }
}

static void axpy_f16(int64_t n, float a, const uint16_t *x, float *y)
{
    __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, load_h(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) {
        y[i] += a * fp16_to_f32(x[i]);
    }
}

static void scale_f32(int64_t n, float s, float *y)
{
    __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_mul_ps(sv, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) {
        y[i] *= s;
    }
}

const struct cpu_vec cpu_vec_avx2 = {
    .dot_f32 = dot_f32,
    .dot_f16_f32 = dot_f16_f32,
    .tile4x3_f32 = tile4x3_f32,
    .tile4x3_f16 = tile4x3_f16,
    .tile4x1_f32 = tile4x1_f32,
    .tile4x1_f16 = tile4x1_f16,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .scale_f32 = scale_f32,
};
