// backend/cpu/ops/unary.c: reference elementwise ops: scale (x*s + b), silu (x * sigmoid(x))
// and swiglu (silu(a) * b). Inputs may be strided views; rows are split across threads.
#include <math.h>

#include "backend/cpu/cpu_int.h"

enum unary_kind { U_SCALE, U_SILU, U_SWIGLU };

static float silu(float x)
{
    return x / (1.0f + expf(-x));
}

static void unary_ref(const struct cpu_op_ctx *c, int ith, int nth, enum unary_kind k)
{
    const struct tensor *d = c->dst, *a = d->src[0], *b = d->src[1];
    const int64_t ne0 = d->ne[0];
    const float s = d->p.scale.s, bias = d->p.scale.b;
    int64_t r0, r1;
    cpu_split(tensor_nrows(d), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(d, r, &i1, &i2, &i3);
        const char *ar = cpu_row_c(c->src_data[0], a, i1, i2, i3);
        float *y = (float *)(void *)cpu_row(c->dst_data, d, i1, i2, i3);
        if (k == U_SCALE) {
            for (int64_t i = 0; i < ne0; i++) {
                y[i] = cpu_f32_at(ar, a, i) * s + bias;
            }
        } else if (k == U_SILU) {
            for (int64_t i = 0; i < ne0; i++) {
                y[i] = silu(cpu_f32_at(ar, a, i));
            }
        } else {
            const char *br = cpu_row_c(c->src_data[1], b, i1, i2, i3);
            for (int64_t i = 0; i < ne0; i++) {
                y[i] = silu(cpu_f32_at(ar, a, i)) * cpu_f32_at(br, b, i);
            }
        }
    }
}

void cpu_scale_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    unary_ref(c, ith, nth, U_SCALE);
}

void cpu_silu_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    unary_ref(c, ith, nth, U_SILU);
}

void cpu_swiglu_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    unary_ref(c, ith, nth, U_SWIGLU);
}
