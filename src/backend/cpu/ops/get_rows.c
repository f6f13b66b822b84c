// backend/cpu/ops/get_rows.c: dst[:, i, b2, b3] = to_f32(table[:, ids[i, b2, b3], b2, b3]),
// for any table type (token embeddings, quantized or not). Rows are split across threads.
// An id outside the table yields a zero row: ids come from our tokenizer and KV code, and a
// kernel has no way to return an error.
#include <string.h>

#include "backend/cpu/cpu_int.h"

void cpu_get_rows_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *tab = d->src[0], *ids = d->src[1];
    const int64_t n_rows = tensor_nrows(d), ne0 = d->ne[0];
    int64_t r0, r1;
    cpu_split(n_rows, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(d, r, &i1, &i2, &i3);
        int32_t id;
        memcpy(&id,
               c->src_data[1] + i1 * (int64_t)ids->nb[0] + i2 * (int64_t)ids->nb[1] +
                   i3 * (int64_t)ids->nb[2],
               sizeof id);
        float *y = (float *)(void *)cpu_row(c->dst_data, d, i1, i2, i3);
        if (id < 0 || id >= tab->ne[1]) {
            memset(y, 0, (size_t)ne0 * sizeof(float));
            continue;
        }
        cpu_row_to_f32(tab->type, cpu_row_c(c->src_data[0], tab, id, i2, i3), y, ne0);
    }
}

void cpu_get_rows_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    // The work is the type's to_f32 (the types' own code); nothing to vectorise here.
    cpu_get_rows_ref(c, ith, nth);
}
