// backend/cpu/quant/x86/dot_f16_avx2.c: AVX2+FMA+F16C dot products of F16 x F16 and
// BF16 x BF16 rows (the vec_dot entries of those weight types). 32 elements per step in four
// float accumulators, combined pairwise, then the n % 32 tail in scalar order: fixed for a
// given n, so results never depend on how mul_mat splits work.
#include "backend/cpu/quant/quant.h"
#include "backend/cpu/quant/x86/quant_avx2.h"
#include "tensor/fp16.h"

static inline __m256 ld_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static inline __m256 ld_bf16(const uint16_t *p)
{
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

#define DOT16_BODY(LD)                                                                         \
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                \
    int i = 0;                                                                                 \
    for (; i + 32 <= n; i += 32) {                                                             \
        a0 = _mm256_fmadd_ps(LD(x + i), LD(y + i), a0);                                        \
        a1 = _mm256_fmadd_ps(LD(x + i + 8), LD(y + i + 8), a1);                                \
        a2 = _mm256_fmadd_ps(LD(x + i + 16), LD(y + i + 16), a2);                              \
        a3 = _mm256_fmadd_ps(LD(x + i + 24), LD(y + i + 24), a3);                              \
    }                                                                                          \
    float sum = qa_hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));

void cpu_vec_dot_f16_avx2(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    DOT16_BODY(ld_f16)
    for (; i < n; i++) {
        sum += fp16_to_f32(x[i]) * fp16_to_f32(y[i]);
    }
    *s = sum;
}

void cpu_vec_dot_bf16_avx2(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    DOT16_BODY(ld_bf16)
    for (; i < n; i++) {
        sum += bf16_to_f32(x[i]) * bf16_to_f32(y[i]);
    }
    *s = sum;
}
