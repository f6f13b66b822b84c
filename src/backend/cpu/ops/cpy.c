// backend/cpu/ops/cpy.c: copy with type conversion, for op_cpy (into another tensor's storage,
// e.g. a KV cache slice) and op_cont (into a fresh contiguous tensor). Same-type copies move
// bytes (quantized blocks are never re-quantized); otherwise each row goes through an F32
// row in the thread's scratch: gather (to_f32 or strided reads), then scatter (from_f32 or
// strided writes). Tensors of equal element count but different shapes are copied in flat
// element order (unblocked types only; graph.c refuses the rest).
#include <string.h>

#include "backend/cpu/cpu_int.h"

// Reads element i of a row of an unblocked tensor as F32.
static float elem_get(const struct tensor *t, const char *row, int64_t i)
{
    const char *p = row + i * (int64_t)t->nb[0];
    switch (t->type) {
    case GGML_TYPE_F32: {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    case GGML_TYPE_F16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return fp16_to_f32(h);
    }
    case GGML_TYPE_BF16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return bf16_to_f32(h);
    }
    default: return 0.0f;
    }
}

static void elem_set(const struct tensor *t, char *row, int64_t i, float v)
{
    char *p = row + i * (int64_t)t->nb[0];
    switch (t->type) {
    case GGML_TYPE_F32: memcpy(p, &v, 4); break;
    case GGML_TYPE_F16: {
        uint16_t h = fp16_from_f32(v);
        memcpy(p, &h, 2);
        break;
    }
    case GGML_TYPE_BF16: {
        uint16_t h = bf16_from_f32(v);
        memcpy(p, &h, 2);
        break;
    }
    default: break;
    }
}

static bool unblocked(uint32_t type)
{
    return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16;
}

// Row i of src into row i of dst (same ne0), converting through F32 scratch when needed.
static void copy_row(const struct tensor *s, const char *sr, const struct tensor *d, char *dr,
                     float *tmp)
{
    const int64_t ne0 = d->ne[0];
    const size_t ts = tensor_type_size(s->type);
    if (s->type == d->type) {
        if (s->nb[0] == ts && d->nb[0] == ts) {
            memcpy(dr, sr, gguf_row_bytes(s->type, ne0));
        } else {
            for (int64_t i = 0; i < ne0; i++) {
                memcpy(dr + i * (int64_t)d->nb[0], sr + i * (int64_t)s->nb[0], ts);
            }
        }
        return;
    }
    if (unblocked(s->type) && unblocked(d->type)) {
        for (int64_t i = 0; i < ne0; i++) {
            elem_set(d, dr, i, elem_get(s, sr, i));
        }
        return;
    }
    // A blocked type on one side: its rows are contiguous blocks.
    if (s->nb[0] == ts) {
        cpu_row_to_f32(s->type, sr, tmp, ne0);
    } else {
        for (int64_t i = 0; i < ne0; i++) {
            tmp[i] = elem_get(s, sr, i);
        }
    }
    if (d->nb[0] == tensor_type_size(d->type) && !unblocked(d->type)) {
        cpu_row_from_f32(d->type, tmp, dr, ne0);
    } else {
        for (int64_t i = 0; i < ne0; i++) {
            elem_set(d, dr, i, tmp[i]);
        }
    }
}

void cpu_cpy_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    const struct tensor *d = c->dst, *s = d->src[0];
    float *tmp = (float *)(void *)(c->work + (size_t)ith * cpu_row_scratch_stride(d->ne[0]));
    if (tensor_same_shape(s, d)) {
        int64_t r0, r1;
        cpu_split(tensor_nrows(d), ith, nth, &r0, &r1);
        for (int64_t r = r0; r < r1; r++) {
            int64_t i1, i2, i3;
            cpu_row_index(d, r, &i1, &i2, &i3);
            copy_row(s, cpu_row_c(c->src_data[0], s, i1, i2, i3), d,
                     cpu_row(c->dst_data, d, i1, i2, i3), tmp);
        }
        return;
    }
    // Different shapes, same element count: flat order, element by element.
    int64_t e0, e1;
    cpu_split(tensor_nelements(d), ith, nth, &e0, &e1);
    for (int64_t e = e0; e < e1; e++) {
        int64_t se = e, de = e, si[4], di[4];
        for (int k = 0; k < 4; k++) {
            si[k] = se % s->ne[k];
            se /= s->ne[k];
            di[k] = de % d->ne[k];
            de /= d->ne[k];
        }
        const char *sp = c->src_data[0] + si[1] * (int64_t)s->nb[1] + si[2] * (int64_t)s->nb[2] +
                         si[3] * (int64_t)s->nb[3];
        char *dp = c->dst_data + di[1] * (int64_t)d->nb[1] + di[2] * (int64_t)d->nb[2] +
                   di[3] * (int64_t)d->nb[3];
        elem_set(d, dp, di[0], elem_get(s, sp, si[0]));
    }
}

void cpu_cpy_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    // Copies are bandwidth-bound; the conversions are the types' own code.
    cpu_cpy_ref(c, ith, nth);
}
