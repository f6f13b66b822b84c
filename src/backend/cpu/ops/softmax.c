// backend/cpu/ops/softmax.c: y = softmax(x * scale + mask) over each row, with an optional
// per-head sink logit (it joins the max and the denominator but has no output). The sum of
// exponentials accumulates in double in index order. A row whose every entry is masked
// (-inf) yields zeros rather than NaN.
#include <math.h>

#include "backend/cpu/cpu_int.h"

// Mask value m[i] of a row of an F32 or F16 mask.
static inline float mask_at(const struct tensor *m, const char *row, int64_t i)
{
    if (m->type == GGML_TYPE_F16) {
        uint16_t h;
        __builtin_memcpy(&h, row + 2 * i, 2);
        return fp16_to_f32(h);
    }
    float v;
    __builtin_memcpy(&v, row + 4 * i, 4);
    return v;
}

void cpu_softmax_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *x = d->src[0], *m = d->src[1], *sk = d->src[2];
    const int64_t ne0 = d->ne[0];
    const float scale = d->p.softmax.scale;
    int64_t r0, r1;
    cpu_split(tensor_nrows(d), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(d, r, &i1, &i2, &i3);
        const char *xr = cpu_row_c(c->src_data[0], x, i1, i2, i3);
        const char *mr = m ? cpu_row_c(c->src_data[1], m, i1, i2 % m->ne[2], i3 % m->ne[3]) : NULL;
        float *y = (float *)(void *)cpu_row(c->dst_data, d, i1, i2, i3);
        float mx = -INFINITY;
        for (int64_t i = 0; i < ne0; i++) {
            float v = cpu_f32_at(xr, x, i) * scale + (mr ? mask_at(m, mr, i) : 0.0f);
            y[i] = v;
            mx = fmaxf(mx, v);
        }
        float sink = -INFINITY;
        if (sk) {
            sink = ((const float *)(const void *)c->src_data[2])[i2];
            mx = fmaxf(mx, sink);
        }
        if (mx == -INFINITY) {
            for (int64_t i = 0; i < ne0; i++) {
                y[i] = 0.0f;
            }
            continue;
        }
        double sum = 0.0;
        for (int64_t i = 0; i < ne0; i++) {
            float e = expf(y[i] - mx);
            y[i] = e;
            sum += (double)e;
        }
        if (sk) {
            sum += (double)expf(sink - mx);
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < ne0; i++) {
            y[i] *= inv;
        }
    }
}
