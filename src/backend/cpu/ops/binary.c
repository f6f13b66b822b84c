// backend/cpu/ops/binary.c: reference add and mul with broadcasting of src1 over src0
// (a bias row, a norm weight, a per-head factor). Rows of dst are split across threads; every
// element is computed once, so the result is independent of the thread count.
#include "backend/cpu/cpu_int.h"

static void binary_ref(const struct cpu_op_ctx *c, int ith, int nth, bool is_mul)
{
    const struct tensor *d = c->dst, *a = d->src[0], *b = d->src[1];
    const int64_t ne0 = d->ne[0];
    int64_t r0, r1;
    cpu_split(tensor_nrows(d), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(d, r, &i1, &i2, &i3);
        const char *ar = cpu_row_c(c->src_data[0], a, i1, i2, i3);
        const char *br = cpu_row_c(c->src_data[1], b, i1 % b->ne[1], i2 % b->ne[2], i3 % b->ne[3]);
        float *y = (float *)(void *)cpu_row(c->dst_data, d, i1, i2, i3);
        for (int64_t i = 0; i < ne0; i++) {
            float x0 = cpu_f32_at(ar, a, i), x1 = cpu_f32_at(br, b, i % b->ne[0]);
            y[i] = is_mul ? x0 * x1 : x0 + x1;
        }
    }
}

void cpu_add_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    binary_ref(c, ith, nth, false);
}

void cpu_mul_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    binary_ref(c, ith, nth, true);
}
