// backend/cpu/x86/rms_norm_avx2.c: AVX2 RMS norm over contiguous rows: squares in float, sum
// widened to double in 8 lanes (a fixed order), then one scale pass.
#include <math.h>

#include "backend/cpu/cpu_int.h"
#include "backend/cpu/x86/simd_avx2.h"

void cpu_rms_norm_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *x = d->src[0];
    if (x->nb[0] != sizeof(float)) {
        cpu_rms_norm_ref(c, ith, nth);
        return;
    }
    const int64_t ne0 = d->ne[0];
    const float eps = d->p.rms_norm.eps;
    int64_t r0, r1;
    cpu_split(tensor_nrows(d), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(d, r, &i1, &i2, &i3);
        const float *xr = (const float *)(const void *)cpu_row_c(c->src_data[0], x, i1, i2, i3);
        float *y = (float *)(void *)cpu_row(c->dst_data, d, i1, i2, i3);
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
        int64_t i = 0;
        for (; i + 8 <= ne0; i += 8) {
            __m256 v = _mm256_loadu_ps(xr + i);
            avx2_acc_pd(_mm256_mul_ps(v, v), &a0, &a1);
        }
        double sum = avx2_hsum_pd(_mm256_add_pd(a0, a1));
        for (; i < ne0; i++) {
            sum += (double)(xr[i] * xr[i]);
        }
        const float scale = 1.0f / sqrtf((float)(sum / (double)ne0) + eps);
        const __m256 sv = _mm256_set1_ps(scale);
        for (i = 0; i + 8 <= ne0; i += 8) {
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(xr + i), sv));
        }
        for (; i < ne0; i++) {
            y[i] = xr[i] * scale;
        }
    }
}
