// backend/cpu/x86/binary_avx2.c: AVX2 add and mul (same row split as the reference). Fast
// paths for contiguous rows with src1 a full row or a single broadcast value; any other
// layout runs the reference kernel.
#include <immintrin.h>

#include "backend/cpu/cpu_int.h"

static void binary_avx2(const struct cpu_op_ctx *c, int ith, int nth, bool is_mul)
{
    const struct tensor *d = c->dst, *a = d->src[0], *b = d->src[1];
    const int64_t ne0 = d->ne[0];
    if (a->nb[0] != sizeof(float) || b->nb[0] != sizeof(float) ||
        (b->ne[0] != ne0 && b->ne[0] != 1)) {
        if (is_mul) {
            cpu_mul_ref(c, ith, nth);
        } else {
            cpu_add_ref(c, ith, nth);
        }
        return;
    }
    int64_t r0, r1;
    cpu_split(tensor_nrows(d), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(d, r, &i1, &i2, &i3);
        const float *x = (const float *)(const void *)cpu_row_c(c->src_data[0], a, i1, i2, i3);
        const float *y = (const float *)(const void *)cpu_row_c(c->src_data[1], b, i1 % b->ne[1],
                                                                i2 % b->ne[2], i3 % b->ne[3]);
        float *z = (float *)(void *)cpu_row(c->dst_data, d, i1, i2, i3);
        int64_t i = 0;
        if (b->ne[0] == 1) {
            const __m256 yv = _mm256_set1_ps(y[0]);
            for (; i + 8 <= ne0; i += 8) {
                __m256 xv = _mm256_loadu_ps(x + i);
                _mm256_storeu_ps(z + i, is_mul ? _mm256_mul_ps(xv, yv) : _mm256_add_ps(xv, yv));
            }
            for (; i < ne0; i++) {
                z[i] = is_mul ? x[i] * y[0] : x[i] + y[0];
            }
            continue;
        }
        for (; i + 8 <= ne0; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i), yv = _mm256_loadu_ps(y + i);
            _mm256_storeu_ps(z + i, is_mul ? _mm256_mul_ps(xv, yv) : _mm256_add_ps(xv, yv));
        }
        for (; i < ne0; i++) {
            z[i] = is_mul ? x[i] * y[i] : x[i] + y[i];
        }
    }
}

void cpu_add_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    binary_avx2(c, ith, nth, false);
}

void cpu_mul_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    binary_avx2(c, ith, nth, true);
}
