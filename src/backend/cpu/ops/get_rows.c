// backend/cpu/ops/get_rows.c: dst[:, i, b2, b3] = to_f32(table[:, ids[i, b2, b3], b2, b3]),
// for any table type (token embeddings, quantized or not). Rows are split across threads. A
// table the backend repacked is read from its copy. An id outside the table yields a zero row:
// ids come from our tokenizer and KV code, and a kernel has no way to return an error.
#include <string.h>

#include "backend/cpu/cpu_int.h"
#include "backend/cpu/quant/quant.h"

// Row `id` of a table the backend repacked (a token embedding that doubles as the output
// matrix): each block restored to its original bytes, then the type's own to_f32. The file
// pages of the table are dropped after the repack and never come back for a lookup.
static void repacked_row(const struct cpu_repacked *packed, const struct tensor *tab, int32_t id,
                         float *y)
{
    const int64_t K = tab->ne[0], blck = tensor_type_blck(tab->type);
    const char *group = (const char *)packed->data + (size_t)(id / REPACK_ROWS) * packed->group_bytes;
    _Alignas(64) unsigned char block[256]; // the largest repacked block (Q6_K) is 210 bytes
    for (int64_t b = 0; b < K / blck; b++) {
        packed->kind->unpack_block(group, K, id % REPACK_ROWS, b, block);
        cpu_row_to_f32(tab->type, block, y + b * blck, blck);
    }
}

void cpu_get_rows_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *tab = d->src[0], *ids = d->src[1];
    const struct cpu_repacked *packed = cpu_repacked_of(tab);
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
        if (packed && packed->kind->unpack_block) {
            repacked_row(packed, tab, id, y);
        } else {
            cpu_row_to_f32(tab->type, cpu_row_c(c->src_data[0], tab, id, i2, i3), y, ne0);
        }
    }
}

void cpu_get_rows_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    // The work is the type's to_f32 (the types' own code); nothing to vectorise here.
    cpu_get_rows_ref(c, ith, nth);
}
