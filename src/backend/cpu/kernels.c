// backend/cpu/kernels.c: the per-ISA kernel tables (built once from designated initialisers:
// greppable, no macro renaming), the scratch sizes the planner reserves per node, what the
// CPU supports, and row conversions through the type traits.
#include <string.h>

#include "backend/cpu/cpu_int.h"

static const struct cpu_kernel kernels_ref[OP_COUNT] = {
    [OP_GET_ROWS] = {NULL, cpu_get_rows_ref},
    [OP_ADD] = {NULL, cpu_add_ref},
    [OP_MUL] = {NULL, cpu_mul_ref},
    [OP_SCALE] = {NULL, cpu_scale_ref},
    [OP_RMS_NORM] = {NULL, cpu_rms_norm_ref},
    [OP_MUL_MAT] = {cpu_mul_mat_prep_ref, cpu_mul_mat_ref},
    [OP_ROPE] = {NULL, cpu_rope_ref},
    [OP_SOFTMAX] = {NULL, cpu_softmax_ref},
    [OP_SILU] = {NULL, cpu_silu_ref},
    [OP_SWIGLU] = {NULL, cpu_swiglu_ref},
    [OP_CPY] = {NULL, cpu_cpy_ref},
    [OP_CONT] = {NULL, cpu_cpy_ref},
    [OP_SET_ROWS] = {NULL, cpu_set_rows_ref},
    [OP_FLASH_ATTN] = {cpu_flash_attn_prep_ref, cpu_flash_attn_ref},
};

static const struct cpu_kernel kernels_avx2[OP_COUNT] = {
    [OP_GET_ROWS] = {NULL, cpu_get_rows_avx2},
    [OP_ADD] = {NULL, cpu_add_avx2},
    [OP_MUL] = {NULL, cpu_mul_avx2},
    [OP_SCALE] = {NULL, cpu_scale_avx2},
    [OP_RMS_NORM] = {NULL, cpu_rms_norm_avx2},
    [OP_MUL_MAT] = {cpu_mul_mat_prep_avx2, cpu_mul_mat_avx2},
    [OP_ROPE] = {NULL, cpu_rope_avx2},
    [OP_SOFTMAX] = {NULL, cpu_softmax_avx2},
    [OP_SILU] = {NULL, cpu_silu_avx2},
    [OP_SWIGLU] = {NULL, cpu_swiglu_avx2},
    [OP_CPY] = {NULL, cpu_cpy_avx2},
    [OP_CONT] = {NULL, cpu_cpy_avx2},
    [OP_SET_ROWS] = {NULL, cpu_set_rows_avx2},
    [OP_FLASH_ATTN] = {cpu_flash_attn_prep_avx2, cpu_flash_attn_avx2},
};

const struct cpu_kernel *cpu_kernels(enum cpu_isa isa)
{
    return isa == CPU_ISA_AVX2 ? kernels_avx2 : kernels_ref;
}

size_t cpu_work_size(const struct tensor *t, int n_threads)
{
    switch (t->op) {
    case OP_MUL_MAT: return cpu_mul_mat_work_size(t, n_threads);
    case OP_FLASH_ATTN: return cpu_flash_attn_work_size(t, n_threads);
    // The angle table, plus (AVX2, NeoX) the same split into cos[] and sin[].
    case OP_ROPE: return (size_t)n_threads * 2 * cpu_rope_cache_stride(t->p.rope.n_rot);
    case OP_CPY:
    case OP_CONT: return (size_t)n_threads * cpu_row_scratch_stride(t->ne[0]);
    case OP_SET_ROWS: return (size_t)n_threads * cpu_row_scratch_stride(t->src[0]->ne[0]);
    default: return 0;
    }
}

// Chunking: a chunk should be worth far more than the ~100 ns a thread spends taking it and
// reporting it done, and there should be enough of them that a thread the OS preempts for a
// while leaves little behind. Cost is estimated in bytes touched.
#define CHUNK_BYTES (32 * 1024)
#define MAX_CHUNKS 32

static int chunks_for_bytes(int64_t bytes)
{
    int64_t n = bytes / CHUNK_BYTES;
    return n < 1 ? 1 : n > MAX_CHUNKS ? MAX_CHUNKS : (int)n;
}

int cpu_n_chunks(const struct tensor *t, bool prep)
{
    const struct tensor *s0 = t->src[0], *s1 = t->src[1];
    switch (t->op) {
    case OP_MUL_MAT:
        if (prep) {
            return chunks_for_bytes((int64_t)tensor_nbytes(s1));
        } else {
            // Weight bytes, with a prompt's columns adding compute on the same bytes.
            const int64_t wb = (int64_t)tensor_row_size(s0->type, s0->ne[0]) * s0->ne[1] *
                               s0->ne[2] * s0->ne[3];
            const int64_t cols = tensor_nrows(s1);
            return chunks_for_bytes(wb + wb / 4 * (cols - 1));
        }
    case OP_FLASH_ATTN: return cpu_flash_attn_chunks(t, prep);
    default:
        if (prep) {
            return 0;
        }
        return chunks_for_bytes((int64_t)tensor_nbytes(t) + (s0 ? (int64_t)tensor_nbytes(s0) : 0));
    }
}

static bool f32_rows(const struct tensor *t)
{
    return t->type == GGML_TYPE_F32;
}

bool cpu_supports(const struct tensor *t)
{
    if (t->op == OP_NONE || tensor_op_is_view(t->op)) {
        return true;
    }
    if ((unsigned)t->op >= OP_COUNT || !kernels_ref[t->op].run) {
        return false;
    }
    const struct tensor *s0 = t->src[0];
    switch (t->op) {
    case OP_GET_ROWS:
    case OP_MUL_MAT: {
        const struct type_traits *tr = tensor_traits(s0->type);
        return tr && tr->to_f32;
    }
    case OP_CPY:
    case OP_CONT:
    case OP_SET_ROWS: return tensor_traits(s0->type) && tensor_traits(t->type);
    // The heads of a GQA group share one mask row, so the mask is broadcast over heads.
    case OP_FLASH_ATTN: return f32_rows(s0) && (!t->src[3] || t->src[3]->ne[2] == 1);
    default: return f32_rows(t);
    }
}

void cpu_row_to_f32(uint32_t type, const void *x, float *y, int64_t n)
{
    if (type == GGML_TYPE_F32) {
        memcpy(y, x, (size_t)n * sizeof(float));
        return;
    }
    if (type == GGML_TYPE_F16) {
        const uint16_t *h = x;
        for (int64_t i = 0; i < n; i++) {
            y[i] = fp16_to_f32(h[i]);
        }
        return;
    }
    tensor_traits(type)->to_f32(x, y, n);
}

void cpu_row_from_f32(uint32_t type, const float *x, void *y, int64_t n)
{
    if (type == GGML_TYPE_F32) {
        memcpy(y, x, (size_t)n * sizeof(float));
        return;
    }
    if (type == GGML_TYPE_F16) {
        uint16_t *h = y;
        for (int64_t i = 0; i < n; i++) {
            h[i] = fp16_from_f32(x[i]);
        }
        return;
    }
    tensor_traits(type)->from_f32(x, y, n);
}
