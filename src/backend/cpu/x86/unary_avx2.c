// backend/cpu/x86/unary_avx2.c: AVX2 scale, silu and swiglu over contiguous rows (strided
// inputs run the reference). silu uses the vector expf of simd_avx2.h.
#include <math.h>

#include "backend/cpu/cpu_int.h"
#include "backend/cpu/x86/simd_avx2.h"

enum unary_kind { U_SCALE, U_SILU, U_SWIGLU };

static float silu1(float x)
{
    return x / (1.0f + expf(-x));
}

static void unary_avx2(const struct cpu_op_ctx *c, int ith, int nth, enum unary_kind k)
{
    const struct tensor *d = c->dst, *a = d->src[0], *b = d->src[1];
    const int64_t ne0 = d->ne[0];
    if (a->nb[0] != sizeof(float) || (b && b->nb[0] != sizeof(float))) {
        if (k == U_SCALE) {
            cpu_scale_ref(c, ith, nth);
        } else if (k == U_SILU) {
            cpu_silu_ref(c, ith, nth);
        } else {
            cpu_swiglu_ref(c, ith, nth);
        }
        return;
    }
    const float s = d->p.scale.s, bias = d->p.scale.b;
    const __m256 sv = _mm256_set1_ps(s), bv = _mm256_set1_ps(bias);
    int64_t r0, r1;
    cpu_split(tensor_nrows(d), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(d, r, &i1, &i2, &i3);
        const float *x = (const float *)(const void *)cpu_row_c(c->src_data[0], a, i1, i2, i3);
        const float *g =
            b ? (const float *)(const void *)cpu_row_c(c->src_data[1], b, i1, i2, i3) : NULL;
        float *y = (float *)(void *)cpu_row(c->dst_data, d, i1, i2, i3);
        int64_t i = 0;
        switch (k) {
        case U_SCALE:
            for (; i + 8 <= ne0; i += 8) {
                _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), sv, bv));
            }
            for (; i < ne0; i++) {
                y[i] = x[i] * s + bias;
            }
            break;
        case U_SILU:
            for (; i + 8 <= ne0; i += 8) {
                _mm256_storeu_ps(y + i, avx2_silu(_mm256_loadu_ps(x + i)));
            }
            for (; i < ne0; i++) {
                y[i] = silu1(x[i]);
            }
            break;
        case U_SWIGLU:
            for (; i + 8 <= ne0; i += 8) {
                _mm256_storeu_ps(y + i, _mm256_mul_ps(avx2_silu(_mm256_loadu_ps(x + i)),
                                                      _mm256_loadu_ps(g + i)));
            }
            for (; i < ne0; i++) {
                y[i] = silu1(x[i]) * g[i];
            }
            break;
        }
    }
}

void cpu_scale_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    unary_avx2(c, ith, nth, U_SCALE);
}

void cpu_silu_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    unary_avx2(c, ith, nth, U_SILU);
}

void cpu_swiglu_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    unary_avx2(c, ith, nth, U_SWIGLU);
}
