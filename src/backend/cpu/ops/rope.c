// backend/cpu/ops/rope.c: rotary position embedding, normal (adjacent pairs) and NeoX
// (halves), with frequency factors and YaRN, following the math of llama.cpp's CPU rope:
// theta_i = pos * base^(-2i/n_rot) (by repeated multiplication, as there), YaRN's ramp between
// interpolated and extrapolated angles and its magnitude correction. Dims past n_rot are
// copied. Threads split the (head, token) rows; each computes a token's angle table once
// into its slice of the scratch.
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_int.h"

static float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base)
{
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2.0f * (float)M_PI)) /
           (2.0f * logf(base));
}

static void yarn_corr_dims(const struct op_rope_params *p, float dims[2])
{
    float start = floorf(yarn_corr_dim(p->n_rot, p->n_ctx_orig, p->beta_fast, p->freq_base));
    float end = ceilf(yarn_corr_dim(p->n_rot, p->n_ctx_orig, p->beta_slow, p->freq_base));
    dims[0] = start > 0.0f ? start : 0.0f;
    dims[1] = end < (float)(p->n_rot - 1) ? end : (float)(p->n_rot - 1);
}

static float yarn_ramp(float low, float high, int64_t i0)
{
    const float y = ((float)(i0 / 2) - low) / fmaxf(0.001f, high - low);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

void cpu_rope_cache(const struct op_rope_params *p, float pos, const float *freq_factors,
                    float *cache)
{
    float dims[2];
    yarn_corr_dims(p, dims);
    const float theta_scale = powf(p->freq_base, -2.0f / (float)p->n_rot);
    float theta = pos;
    for (int64_t i0 = 0; i0 < p->n_rot; i0 += 2) {
        const float ff = freq_factors ? freq_factors[i0 / 2] : 1.0f;
        const float extrap = theta / ff;
        const float interp = p->freq_scale * extrap;
        float th = interp, mscale = p->attn_factor;
        if (p->ext_factor != 0.0f) {
            const float mix = yarn_ramp(dims[0], dims[1], i0) * p->ext_factor;
            th = interp * (1.0f - mix) + extrap * mix;
            mscale *= 1.0f + 0.1f * logf(1.0f / p->freq_scale);
        }
        cache[i0] = cosf(th) * mscale;
        cache[i0 + 1] = sinf(th) * mscale;
        theta *= theta_scale;
    }
}

void cpu_rope_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *x = d->src[0];
    const struct op_rope_params *p = &d->p.rope;
    const int64_t ne0 = d->ne[0], n_head = d->ne[1], n_tok = d->ne[2];
    const int32_t *pos = (const int32_t *)(const void *)c->src_data[1];
    const float *ff = d->src[2] ? (const float *)(const void *)c->src_data[2] : NULL;
    float *cache = (float *)(void *)(c->work + (size_t)ith * 2 * cpu_rope_cache_stride(p->n_rot));
    const int n_rot = p->n_rot;
    const bool neox = p->mode == ROPE_NEOX;
    int64_t r0, r1;
    cpu_split(n_head * n_tok, ith, nth, &r0, &r1);
    int64_t cached_tok = -1;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t h = r % n_head, t = r / n_head;
        if (t != cached_tok) {
            cpu_rope_cache(p, (float)pos[t], ff, cache);
            cached_tok = t;
        }
        const char *xr = cpu_row_c(c->src_data[0], x, h, t, 0);
        float *y = (float *)(void *)cpu_row(c->dst_data, d, h, t, 0);
        const int64_t half = neox ? n_rot / 2 : 1;
        for (int64_t i0 = 0; i0 < n_rot; i0 += 2) {
            const float cs = cache[i0], sn = cache[i0 + 1];
            const int64_t a = neox ? i0 / 2 : i0, b = a + half;
            const float x0 = cpu_f32_at(xr, x, a), x1 = cpu_f32_at(xr, x, b);
            y[a] = x0 * cs - x1 * sn;
            y[b] = x0 * sn + x1 * cs;
        }
        for (int64_t i = n_rot; i < ne0; i++) {
            y[i] = cpu_f32_at(xr, x, i);
        }
    }
}
