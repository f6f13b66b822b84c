// backend/cpu/cpu_int.h: private to backend/cpu. The kernel contract (struct cpu_op_ctx and
// `void cpu_<op>(const struct cpu_op_ctx *, int ith, int nth)`), the per-ISA kernel tables,
// the vector helpers the kernels share, and the work-size rules the planner asks for.
// Kernels never lock, allocate or log; they split work by (ith, nth) so that every output
// element is computed by exactly one thread in an order that does not depend on nth.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

// Host address of t's data. Valid only for tensors bound to CPU buffers (this backend).
static inline void *cpu_data(const struct tensor *t)
{
    return (char *)t->buf->base + t->offs;
}

// Everything a kernel reads: the node, resolved data pointers, its scratch area.
struct cpu_op_ctx {
    const struct tensor *dst;
    char *dst_data;
    const char *src_data[TENSOR_MAX_SRC]; // NULL where dst->src[i] is NULL
    char *work;                           // planner-provided scratch (work_bytes), may be NULL
    size_t work_bytes;
    int n_threads;      // the nth the node runs with (work is sized for it)
    bool generic_quant; // mul_mat: ignore vec_dot kernels (generic path)
};

typedef void (*cpu_kernel_fn)(const struct cpu_op_ctx *c, int ith, int nth);

// A node runs as: prep on every thread, barrier, run on every thread, barrier. prep (may be
// NULL) is where a kernel fills shared scratch (e.g. quantized activations) that run reads.
struct cpu_kernel {
    cpu_kernel_fn prep;
    cpu_kernel_fn run;
};

// The kernel table for an ISA, indexed by enum tensor_op (view ops have run == NULL).
const struct cpu_kernel *cpu_kernels(enum cpu_isa isa);
// Scratch bytes node t needs when run with n_threads threads.
size_t cpu_work_size(const struct tensor *t, int n_threads);
// How many chunks the executor cuts node t's run phase (prep: its prep phase) into: the kernel
// is called as (ith = chunk, nth = chunks). Fixed by t's op, types and shape (never by the
// thread count); 0 when the phase does nothing. Per-ith scratch is sized for it.
int cpu_n_chunks(const struct tensor *t, bool prep);
// Whether the CPU kernels handle t (op, types, layout).
bool cpu_supports(const struct tensor *t);

// Contiguous range [*i0, *i1) of n items for thread ith of nth (fixed by n, ith, nth).
static inline void cpu_split(int64_t n, int ith, int nth, int64_t *i0, int64_t *i1)
{
    int64_t per = (n + nth - 1) / nth;
    int64_t a = per * ith;
    int64_t b = a + per;
    *i0 = a < n ? a : n;
    *i1 = b < n ? b : n;
}

// ---- row addressing (rows are ne[0]-runs; i1..i3 the outer indices) -------------------------

static inline const char *cpu_row_c(const char *base, const struct tensor *t, int64_t i1,
                                    int64_t i2, int64_t i3)
{
    return base + i1 * (int64_t)t->nb[1] + i2 * (int64_t)t->nb[2] + i3 * (int64_t)t->nb[3];
}
static inline char *cpu_row(char *base, const struct tensor *t, int64_t i1, int64_t i2, int64_t i3)
{
    return base + i1 * (int64_t)t->nb[1] + i2 * (int64_t)t->nb[2] + i3 * (int64_t)t->nb[3];
}
// Splits a flat row index r of t into (i1, i2, i3).
static inline void cpu_row_index(const struct tensor *t, int64_t r, int64_t *i1, int64_t *i2,
                                 int64_t *i3)
{
    *i1 = r % t->ne[1];
    r /= t->ne[1];
    *i2 = r % t->ne[2];
    *i3 = r / t->ne[2];
}
// Reads element i of a row of an F32 tensor whose nb[0] may not be 4 (transposed views).
static inline float cpu_f32_at(const char *row, const struct tensor *t, int64_t i)
{
    float v;
    __builtin_memcpy(&v, row + i * (int64_t)t->nb[0], sizeof v);
    return v;
}

// ---- quantized dot products (hook for backend/cpu/quant/) -----------------------------------

// s = dot(x, y) over n elements: x a row of the weight type, y the activations already
// converted to that type's vec_dot partner (traits->vec_dot_type).
typedef void (*cpu_vec_dot_fn)(int n, float *s, const void *x, const void *y);
// Converts an F32 activation row to the partner type (NULL: the partner's traits->from_f32).
typedef void (*cpu_from_f32_fn)(const float *x, void *y, int64_t n);

// (optional) A prefill tile: s[r * nc + c] = dot(x[r], y[c]) for 4 weight rows and nc converted
// activation rows, 2 <= nc <= CPU_TILE_MAX_COLS (pointers may repeat). Each weight block is
// unpacked once for all nc columns. Each element must equal vec_dot(n, x[r], y[c]) bit for bit,
// so a sequence's output never depends on which other sequences share its batch.
#define CPU_TILE_MAX_COLS 24
typedef void (*cpu_vec_dot_tile_fn)(int n, const void *const x[4], const void *const *y, int nc,
                                    float *s);

struct cpu_vec_dot_entry {
    cpu_vec_dot_fn vec_dot;   // NULL: mul_mat dequantizes weight rows and dots in F32
    cpu_from_f32_fn from_f32; // activation quantizer (NULL: traits of vec_dot_type)
    cpu_vec_dot_tile_fn tile; // (optional) 4 x nc tile for prompts; NULL: vec_dot per element
};

// The dispatch table for an ISA, indexed by weight type (GGML_TYPE_COUNT entries). Defined in
// backend/cpu/vec_dot_table.c, which the quant-kernel code fills; an all-NULL row means "use
// the generic fallback", so every type with to_f32 works before its kernel exists.
const struct cpu_vec_dot_entry *cpu_vec_dot_table(enum cpu_isa isa);

// ---- repacked weights (cpu_backend.c weight_prepare; read by mul_mat) -----------------------

// A weight tensor's data in a layout the kernels read faster, made at load time and kept in
// t->extra (backend-private). t's own bytes stay valid (other ops, e.g. get_rows, read them).
struct cpu_repack_kind; // backend/cpu/quant/quant.h
struct cpu_repacked {
    const struct cpu_repack_kind *kind;
    void *data;         // 64-byte aligned, groups of 8 rows: owned, or adopted (borrowed)
    size_t group_bytes; // bytes of one group
    size_t bytes;       // total
    bool borrowed;      // weight_adopt's: the caller's memory (a prepared-weights file)
};

static inline const struct cpu_repacked *cpu_repacked_of(const struct tensor *t)
{
    return (const struct cpu_repacked *)t->extra;
}

// ---- vector helpers (ops/vec.c scalar, x86/vec_avx2.c) ---------------------------------------
// Every dot product of one ISA accumulates in the same order (8 float lanes over k, a fixed
// pairwise lane sum, then the k % 8 tail), whether computed alone or inside a tile, so the
// tiling of mul_mat (which depends on shapes, never on the thread count) cannot change a bit.

struct cpu_vec {
    float (*dot_f32)(int64_t n, const float *x, const float *y);
    float (*dot_f16_f32)(int64_t n, const uint16_t *x, const float *y);
    // out[r][c] = dot(w[r], x[c]) for a 4 x 3 tile and a 4 x 1 column (pointers may repeat).
    void (*tile4x3_f32)(int64_t n, const float *const w[4], const float *const x[3],
                        float out[4][3]);
    void (*tile4x3_f16)(int64_t n, const uint16_t *const w[4], const float *const x[3],
                        float out[4][3]);
    void (*tile4x1_f32)(int64_t n, const float *const w[4], const float *x, float out[4]);
    void (*tile4x1_f16)(int64_t n, const uint16_t *const w[4], const float *x, float out[4]);
    void (*axpy_f32)(int64_t n, float a, const float *x, float *y);    // y += a * x
    void (*axpy_f16)(int64_t n, float a, const uint16_t *x, float *y); // y += a * x
    void (*scale_f32)(int64_t n, float s, float *y);                   // y *= s
};
const struct cpu_vec *cpu_vec(enum cpu_isa isa);
extern const struct cpu_vec cpu_vec_ref;
extern const struct cpu_vec cpu_vec_avx2;

// ---- kernels (ops/<op>.c reference, x86/<op>_avx2.c variants) --------------------------------

#define CPU_DECLARE_KERNEL(name)                                         \
    void cpu_##name##_ref(const struct cpu_op_ctx *c, int ith, int nth); \
    void cpu_##name##_avx2(const struct cpu_op_ctx *c, int ith, int nth);

CPU_DECLARE_KERNEL(get_rows)
CPU_DECLARE_KERNEL(add)
CPU_DECLARE_KERNEL(mul)
CPU_DECLARE_KERNEL(scale)
CPU_DECLARE_KERNEL(rms_norm)
CPU_DECLARE_KERNEL(mul_mat)
CPU_DECLARE_KERNEL(rope)
CPU_DECLARE_KERNEL(softmax)
CPU_DECLARE_KERNEL(silu)
CPU_DECLARE_KERNEL(swiglu)
CPU_DECLARE_KERNEL(cpy)
CPU_DECLARE_KERNEL(set_rows)
CPU_DECLARE_KERNEL(flash_attn)
void cpu_mul_mat_prep_ref(const struct cpu_op_ctx *c, int ith, int nth);
void cpu_mul_mat_prep_avx2(const struct cpu_op_ctx *c, int ith, int nth);
size_t cpu_mul_mat_work_size(const struct tensor *t, int n_threads);
size_t cpu_flash_attn_work_size(const struct tensor *t, int n_threads);
// Flash attention: chunks of its prep (decode: KV blocks) and run phases (see cpu_n_chunks).
int cpu_flash_attn_chunks(const struct tensor *t, bool prep);
void cpu_flash_attn_prep_ref(const struct cpu_op_ctx *c, int ith, int nth);
void cpu_flash_attn_prep_avx2(const struct cpu_op_ctx *c, int ith, int nth);

// Flash attention's decode inner loops (ops/flash_attn.c scalar, x86/flash_attn_avx2.c).
struct cpu_fa_helpers {
    // out[r] = dot(k, q[r]) for r < nr, each in dot_f32's order for the ISA.
    void (*scores)(int64_t D, const float *k, const float *const *q, int64_t nr, float *out);
    // acc[r] += p[r * ps] * v for r < nr, skipping rows whose p is 0.
    void (*accum)(int64_t Dv, const float *v, const float *p, int64_t ps, float *const *acc,
                  int64_t nr);
    // acc += sum over i < nc, in order, of p[i] * v[i] (rows F16 or F32), skipping p[i] == 0;
    // each element's sum is the same fused multiply-add chain as accum's.
    void (*accum_rows_f16)(int64_t Dv, const uint16_t *const *v, const float *p, int64_t nc,
                           float *acc);
    void (*accum_rows_f32)(int64_t Dv, const float *const *v, const float *p, int64_t nc,
                           float *acc);
    // s[i] = exp(s[i] - m) (0 for -inf) in place; returns their sum in a fixed order.
    float (*exp_sum)(int64_t n, float *s, float m);
    // Optional (NULL: the loops above): a whole block for F16 K and V rows, D % 8 == 0,
    // Dv % 16 == 0, 1 <= nr <= 8 heads of a GQA group, nc >= 1 cells. Per head r, with
    // s_i = dot(k_i, q_r) * scale + mv[i]: acc[r][-2] = max_i s_i, acc[r][-1] = sum_i
    // exp(s_i - max), acc[r][0..Dv) = sum_i exp(s_i - max) * v_i, in orders fixed by the
    // lengths. sc: 8 * nc floats of scratch.
    void (*block_f16)(int64_t D, int64_t Dv, const uint16_t *const *k, const uint16_t *const *v,
                      const float *mv, int64_t nc, const float *const *q, int64_t nr, float scale,
                      float *sc, float *const *acc);
    void (*f16_row)(int64_t n, const uint16_t *x, float *y); // F16 -> F32
    // F16 mask row: from cell j, skips whole runs of cells holding at most *k visible (not
    // -inf) cells, subtracting them from *k; returns where it stopped (a scan finishes it).
    int64_t (*skip_f16)(int64_t n, const uint16_t *row, int64_t j, int64_t *k);
};
extern const struct cpu_fa_helpers cpu_fa_ref;
extern const struct cpu_fa_helpers cpu_fa_avx2;

// Bytes of one thread's rope angle table (n_rot floats, cache-line padded).
static inline size_t cpu_rope_cache_stride(int n_rot)
{
    return ((size_t)n_rot * sizeof(float) + 63) & ~(size_t)63;
}
// Bytes of one thread's F32 row scratch of n floats (cpy/set_rows conversions).
static inline size_t cpu_row_scratch_stride(int64_t n)
{
    return ((size_t)n * sizeof(float) + 63) & ~(size_t)63;
}

// Shared by reference and SIMD kernels: the YaRN-corrected rotation angles for one position.
// cache[2*i] = cos, cache[2*i+1] = sin for pair i < n_rot/2, already multiplied by the magnitude.
void cpu_rope_cache(const struct op_rope_params *p, float pos, const float *freq_factors,
                    float *cache);

// Element conversion for rows of any supported type into F32 (to_f32) and back.
void cpu_row_to_f32(uint32_t type, const void *x, float *y, int64_t n);
void cpu_row_from_f32(uint32_t type, const float *x, void *y, int64_t n);
