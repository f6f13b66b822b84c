// backend/cpu/x86/rope_avx2.c: AVX2 rotary embedding over contiguous head rows. The angle
// table comes from cpu_rope_cache (shared with the reference, so both rotate by the same
// cos/sin); normal mode rotates 4 adjacent pairs per vector with fmaddsub, NeoX 8 pairs per
// pair of vectors from a cos[]/sin[] split of the table.
#include "backend/cpu/cpu_int.h"
#include "backend/cpu/x86/simd_avx2.h"

void cpu_rope_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *x = d->src[0];
    if (x->nb[0] != sizeof(float)) {
        cpu_rope_ref(c, ith, nth);
        return;
    }
    const struct op_rope_params *p = &d->p.rope;
    const int64_t ne0 = d->ne[0], n_head = d->ne[1], n_tok = d->ne[2];
    const int32_t *pos = (const int32_t *)(const void *)c->src_data[1];
    const float *ff = d->src[2] ? (const float *)(const void *)c->src_data[2] : NULL;
    const size_t stride = cpu_rope_cache_stride(p->n_rot);
    float *cache = (float *)(void *)(c->work + (size_t)ith * 2 * stride);
    float *cs = (float *)(void *)((char *)cache + stride); // NeoX: cos[n_rot/2], sin[n_rot/2]
    const int64_t n_rot = p->n_rot, half = n_rot / 2;
    float *sn = cs + half;
    const bool neox = p->mode == ROPE_NEOX;
    int64_t r0, r1;
    cpu_split(n_head * n_tok, ith, nth, &r0, &r1);
    int64_t cached_tok = -1;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t h = r % n_head, t = r / n_head;
        if (t != cached_tok) {
            cpu_rope_cache(p, (float)pos[t], ff, cache);
            if (neox) {
                for (int64_t i = 0; i < half; i++) {
                    cs[i] = cache[2 * i];
                    sn[i] = cache[2 * i + 1];
                }
            }
            cached_tok = t;
        }
        const float *xr = (const float *)(const void *)cpu_row_c(c->src_data[0], x, h, t, 0);
        float *y = (float *)(void *)cpu_row(c->dst_data, d, h, t, 0);
        int64_t i = 0;
        if (!neox) {
            for (; i + 8 <= n_rot; i += 8) {
                const __m256 xv = _mm256_loadu_ps(xr + i);
                const __m256 cc = _mm256_loadu_ps(cache + i);
                const __m256 cv = _mm256_moveldup_ps(cc), sv = _mm256_movehdup_ps(cc);
                const __m256 xs = _mm256_permute_ps(xv, 0xB1); // swap each pair
                _mm256_storeu_ps(y + i, _mm256_fmaddsub_ps(xv, cv, _mm256_mul_ps(xs, sv)));
            }
            for (; i < n_rot; i += 2) {
                const float x0 = xr[i], x1 = xr[i + 1];
                y[i] = x0 * cache[i] - x1 * cache[i + 1];
                y[i + 1] = x0 * cache[i + 1] + x1 * cache[i];
            }
        } else {
            for (; i + 8 <= half; i += 8) {
                const __m256 x0 = _mm256_loadu_ps(xr + i), x1 = _mm256_loadu_ps(xr + i + half);
                const __m256 cv = _mm256_loadu_ps(cs + i), sv = _mm256_loadu_ps(sn + i);
                _mm256_storeu_ps(y + i, _mm256_fmsub_ps(x0, cv, _mm256_mul_ps(x1, sv)));
                _mm256_storeu_ps(y + i + half, _mm256_fmadd_ps(x0, sv, _mm256_mul_ps(x1, cv)));
            }
            for (; i < half; i++) {
                const float x0 = xr[i], x1 = xr[i + half];
                y[i] = x0 * cs[i] - x1 * sn[i];
                y[i + half] = x0 * sn[i] + x1 * cs[i];
            }
        }
        for (i = n_rot; i < ne0; i++) {
            y[i] = xr[i];
        }
    }
}
