// backend/cpu/ops/rms_norm.c: y = x / sqrt(mean(x^2) + eps), row by row. The sum of squares
// accumulates in double in index order (as llama.cpp's CPU backend does), so long rows stay
// exact and the result does not depend on how rows are split across threads.
#include <math.h>

#include "backend/cpu/cpu_int.h"

void cpu_rms_norm_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *x = d->src[0];
    const int64_t ne0 = d->ne[0];
    const float eps = d->p.rms_norm.eps;
    int64_t r0, r1;
    cpu_split(tensor_nrows(d), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(d, r, &i1, &i2, &i3);
        const char *xr = cpu_row_c(c->src_data[0], x, i1, i2, i3);
        float *y = (float *)(void *)cpu_row(c->dst_data, d, i1, i2, i3);
        double sum = 0.0;
        for (int64_t i = 0; i < ne0; i++) {
            float v = cpu_f32_at(xr, x, i);
            sum += (double)(v * v);
        }
        const float mean = (float)(sum / (double)ne0);
        const float scale = 1.0f / sqrtf(mean + eps);
        for (int64_t i = 0; i < ne0; i++) {
            y[i] = cpu_f32_at(xr, x, i) * scale;
        }
    }
}
