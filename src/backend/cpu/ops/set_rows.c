// backend/cpu/ops/set_rows.c: scatter: row i of src is converted to dst's type and written
// to row idx[i] of dst (the KV cache stores a batch's K/V in its cells this way). Threads
// split the source rows; indices must be distinct (KV cells are), or two threads could
// write the same row. An index outside dst is skipped (kernels cannot fail; the KV cache
// validates its cells before recording the op).
#include <string.h>

#include "backend/cpu/cpu_int.h"

void cpu_set_rows_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *s = d->src[0], *ix = d->src[1];
    const int64_t ne0 = s->ne[0];
    float *tmp = (float *)(void *)(c->work + (size_t)ith * cpu_row_scratch_stride(ne0));
    int64_t r0, r1;
    cpu_split(tensor_nrows(s), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(s, r, &i1, &i2, &i3);
        const char *ip = c->src_data[1] + i1 * (int64_t)ix->nb[0] +
                         (i2 % ix->ne[1]) * (int64_t)ix->nb[1] +
                         (i3 % ix->ne[2]) * (int64_t)ix->nb[2];
        int64_t row;
        if (ix->type == GGML_TYPE_I64) {
            memcpy(&row, ip, 8);
        } else {
            int32_t r32;
            memcpy(&r32, ip, 4);
            row = r32;
        }
        if (row < 0 || row >= d->ne[1]) {
            continue;
        }
        const char *sr = cpu_row_c(c->src_data[0], s, i1, i2, i3);
        char *dr = cpu_row(c->dst_data, d, row, i2, i3);
        if (s->type == d->type) {
            memcpy(dr, sr, gguf_row_bytes(d->type, ne0));
            continue;
        }
        const float *x = (const float *)(const void *)sr;
        if (s->nb[0] != sizeof(float)) {
            for (int64_t i = 0; i < ne0; i++) {
                tmp[i] = cpu_f32_at(sr, s, i);
            }
            x = tmp;
        }
        cpu_row_from_f32(d->type, x, dr, ne0);
    }
}

void cpu_set_rows_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    cpu_set_rows_ref(c, ith, nth);
}
