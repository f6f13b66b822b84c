// backend/cpu/x86/softmax_avx2.c: AVX2 softmax with scale, F32/F16 mask and sinks over
// contiguous rows: one pass for logits and max, one for exp (vector expf) and a
// double-widened sum, one to normalise. Strided inputs run the reference.
#include <math.h>

#include "backend/cpu/cpu_int.h"
#include "backend/cpu/x86/simd_avx2.h"

void cpu_softmax_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *x = d->src[0], *m = d->src[1], *sk = d->src[2];
    if (x->nb[0] != sizeof(float)) {
        cpu_softmax_ref(c, ith, nth);
        return;
    }
    const int64_t ne0 = d->ne[0];
    const float scale = d->p.softmax.scale;
    const __m256 sv = _mm256_set1_ps(scale);
    const bool m16 = m && m->type == GGML_TYPE_F16;
    int64_t r0, r1;
    cpu_split(tensor_nrows(d), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(d, r, &i1, &i2, &i3);
        const float *xr = (const float *)(const void *)cpu_row_c(c->src_data[0], x, i1, i2, i3);
        const char *mr = m ? cpu_row_c(c->src_data[1], m, i1, i2 % m->ne[2], i3 % m->ne[3]) : NULL;
        float *y = (float *)(void *)cpu_row(c->dst_data, d, i1, i2, i3);
        __m256 mxv = _mm256_set1_ps(-INFINITY);
        int64_t i = 0;
        for (; i + 8 <= ne0; i += 8) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xr + i), sv);
            if (mr) {
                __m256 mv = m16 ? _mm256_cvtph_ps(
                                      _mm_loadu_si128((const __m128i *)(const void *)(mr + 2 * i)))
                                : _mm256_loadu_ps((const float *)(const void *)mr + i);
                v = _mm256_add_ps(v, mv);
            }
            _mm256_storeu_ps(y + i, v);
            mxv = _mm256_max_ps(mxv, v);
        }
        float mx = avx2_hmax(mxv);
        for (; i < ne0; i++) {
            float mvs = 0.0f;
            if (mr) {
                if (m16) {
                    uint16_t h;
                    __builtin_memcpy(&h, mr + 2 * i, 2);
                    mvs = fp16_to_f32(h);
                } else {
                    __builtin_memcpy(&mvs, mr + 4 * i, 4);
                }
            }
            y[i] = xr[i] * scale + mvs;
            mx = fmaxf(mx, y[i]);
        }
        float sink = -INFINITY;
        if (sk) {
            sink = ((const float *)(const void *)c->src_data[2])[i2];
            mx = fmaxf(mx, sink);
        }
        if (mx == -INFINITY) {
            for (i = 0; i < ne0; i++) {
                y[i] = 0.0f;
            }
            continue;
        }
        const __m256 mxb = _mm256_set1_ps(mx);
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
        for (i = 0; i + 8 <= ne0; i += 8) {
            __m256 e = avx2_exp(_mm256_sub_ps(_mm256_loadu_ps(y + i), mxb));
            _mm256_storeu_ps(y + i, e);
            avx2_acc_pd(e, &a0, &a1);
        }
        double sum = avx2_hsum_pd(_mm256_add_pd(a0, a1));
        for (; i < ne0; i++) {
            y[i] = expf(y[i] - mx);
            sum += (double)y[i];
        }
        if (sk) {
            sum += (double)expf(sink - mx);
        }
        const float inv = (float)(1.0 / sum);
        const __m256 iv = _mm256_set1_ps(inv);
        for (i = 0; i + 8 <= ne0; i += 8) {
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), iv));
        }
        for (; i < ne0; i++) {
            y[i] *= inv;
        }
    }
}
