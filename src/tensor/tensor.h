// tensor/tensor.h: the tensor descriptor every layer above shares (shape ne[], byte strides
// nb[], type, the op that produces it) and the op vocabulary with typed parameters.
// Storage is (backend buffer, offset): only the backend that owns the buffer may turn that
// into an address, so a device backend keeps its own memory. Entry points: tensor_init and the
// shape helpers below; binding to storage is backend_tensor_bind; recording ops is graph.h.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "gguf/gguf.h"    // enum ggml_type: tensor types are GGML type ids
#include "tensor/types.h" // traits per type; tensor_row_size

#define TENSOR_MAX_DIMS 4
#define TENSOR_MAX_SRC  6
#define TENSOR_NAME_MAX 64 // bytes including NUL; GGUF names are <= 64 bytes (longer: cut)

// ---- op vocabulary ---------------------------------------------------------------------------
// clang-format off
// X(NAME, "name", view): `view` ops compute nothing (they only restate strides of src[0]).
#define TENSOR_OP_LIST(X)                                                                  \
    X(NONE, "none", 0)             /* a leaf: weight, input, KV cache */                   \
    X(VIEW, "view", 1)             /* src0 seen through other ne/nb/offset */              \
    X(RESHAPE, "reshape", 1)                                                               \
    X(PERMUTE, "permute", 1)                                                               \
    X(TRANSPOSE, "transpose", 1)                                                           \
    X(GET_ROWS, "get_rows", 0)     /* rows of src0 (any type) at I32 src1 -> F32 */        \
    X(ADD, "add", 0)               /* src0 + src1 (src1 broadcast) */                      \
    X(MUL, "mul", 0)               /* src0 * src1 (src1 broadcast) */                      \
    X(SCALE, "scale", 0)           /* src0 * s + b */                                      \
    X(RMS_NORM, "rms_norm", 0)     /* x / sqrt(mean(x^2) + eps) per row */                 \
    X(MUL_MAT, "mul_mat", 0)       /* src0 [K,N] (any type) x src1 [K,M] F32 -> [N,M] */   \
    X(ROPE, "rope", 0)             /* rotary embedding, normal or neox, YaRN */            \
    X(SOFTMAX, "softmax", 0)       /* softmax(x*scale + mask) per row, optional sinks */   \
    X(SILU, "silu", 0)                                                                     \
    X(SWIGLU, "swiglu", 0)         /* silu(src0) * src1 */                                 \
    X(CPY, "cpy", 0)               /* src0 converted into src1 (a view of src1) */         \
    X(CONT, "cont", 0)             /* src0 made contiguous (optionally another type) */    \
    X(SET_ROWS, "set_rows", 0)     /* rows of src0 into src2 at src1 indices (view) */     \
    X(FLASH_ATTN, "flash_attn", 0) /* softmax(q k^T * scale + mask) v, online softmax */
// clang-format on

enum tensor_op {
#define X(name, str, view) OP_##name,
    TENSOR_OP_LIST(X)
#undef X
        OP_COUNT
};

const char *tensor_op_name(enum tensor_op op); // "mul_mat"; "?" if out of range
bool tensor_op_is_view(enum tensor_op op);     // VIEW, RESHAPE, PERMUTE, TRANSPOSE

enum rope_mode {
    ROPE_NORMAL = 0, // rotate adjacent pairs (x[2i], x[2i+1]): llama
    ROPE_NEOX = 2,   // rotate halves (x[i], x[i + n_rot/2]): qwen2, qwen3, gpt-neox (GGML id 2)
};

// Typed parameters, one struct per op that has any; stored in the union in struct tensor.
struct op_scale_params {
    float s; // y = x * s + b
    float b;
};
struct op_rms_norm_params {
    float eps;
};
struct op_rope_params {
    int32_t n_rot;      // leading dims of each head that rotate (<= head size, even)
    int32_t mode;       // enum rope_mode
    int32_t n_ctx_orig; // YaRN: the context length the model was trained with
    float freq_base;    // theta base, e.g. 10000 or 500000
    float freq_scale;   // 1 / linear scaling factor (1 = none)
    float ext_factor;   // YaRN extrapolation mix (0 = plain linear interpolation)
    float attn_factor;  // YaRN magnitude scale (1 = none)
    float beta_fast;    // YaRN ramp bounds, in rotations (llama.cpp defaults 32 / 1)
    float beta_slow;
};
struct op_softmax_params {
    float scale; // applied to x before the mask is added
};
struct op_flash_attn_params {
    float scale; // applied to q.k before the mask is added
};
struct op_view_params { // VIEW/PERMUTE: what was asked, for debugging and CUDA capture
    size_t offs;        // bytes into src0's storage (VIEW)
    int32_t axes[4];    // PERMUTE: source dim i goes to output dim axes[i]
};
struct op_cont_params {
    uint32_t type; // CONT: output type (src0's type unless a conversion was asked)
};

union op_params {
    struct op_scale_params scale;
    struct op_rms_norm_params rms_norm;
    struct op_rope_params rope;
    struct op_softmax_params softmax;
    struct op_flash_attn_params flash_attn;
    struct op_view_params view;
    struct op_cont_params cont;
};

// ---- the tensor ------------------------------------------------------------------------------

enum tensor_flag {
    TENSOR_FLAG_INPUT = 1u << 0,  // data set by the caller before compute (backend_tensor_set)
    TENSOR_FLAG_OUTPUT = 1u << 1, // read after compute: the planner never reuses its memory
    TENSOR_FLAG_WEIGHT = 1u << 2, // read-only model parameter, bound to a weight buffer
};

struct backend_buffer; // backend/backend.h; opaque here on purpose

struct tensor {
    uint32_t type;               // enum ggml_type
    uint32_t flags;              // enum tensor_flag bits
    int64_t ne[TENSOR_MAX_DIMS]; // elements per dim; unused trailing dims are 1
    size_t nb[TENSOR_MAX_DIMS];  // bytes between consecutive indices of each dim; nb[0] is
                                 // the block size in bytes (ggml convention), nb[1] the row
    enum tensor_op op;
    union op_params p;                  // typed by op (p.rope for OP_ROPE, ...)
    struct tensor *src[TENSOR_MAX_SRC]; // inputs of op; NULL past the last one (or optional)
    struct tensor *view_src;            // view ops: the tensor whose storage this aliases
    size_t view_offs;                   // bytes into view_src's storage
    struct backend_buffer *buf;         // storage; NULL until bound (planner or caller)
    size_t offs;                        // bytes into buf; meaningful only to buf's backend
    void *extra;                        // backend-private per-tensor data (repacked weights)
    int32_t id;                         // index in its graph (-1 outside any graph)
    char name[TENSOR_NAME_MAX];
};

// Fills *t as a contiguous tensor of `type` with n_dims (1..4) dims ne[0..n_dims-1] (the rest
// 1), no storage, op NONE. EINVAL for an unknown type, a dim < 1, or ne[0] not a multiple of
// the type's block; ELIMIT if the byte size overflows. Shapes from files are safe to pass.
// On error *t is zeroed with id -1. name may be NULL.
enum llem_err tensor_init(struct tensor *t, uint32_t type, int n_dims, const int64_t *ne,
                          const char *name, struct llem_errbuf *eb);

void tensor_set_name(struct tensor *t, const char *name); // truncates to TENSOR_NAME_MAX-1

// ---- shape helpers (pure; t must be initialised) ---------------------------------------------

int64_t tensor_nelements(const struct tensor *t);
int64_t tensor_nrows(const struct tensor *t); // ne[1] * ne[2] * ne[3]
// Bytes spanned by t's strides: the storage a view needs from its base (0 if any ne is 0).
size_t tensor_nbytes(const struct tensor *t);
int64_t tensor_type_blck(uint32_t type); // elements per block (1 for F32/F16/I32)
size_t tensor_type_size(uint32_t type);  // bytes per block (0 if unknown)
const char *tensor_type_name(uint32_t type);
bool tensor_is_contiguous(const struct tensor *t); // dense rows in dim order, no gaps
bool tensor_is_permuted(const struct tensor *t);   // strides not increasing with dim
bool tensor_same_shape(const struct tensor *a, const struct tensor *b);
// True if b broadcasts to a: every a->ne[i] is a multiple of b->ne[i].
bool tensor_can_repeat(const struct tensor *b, const struct tensor *a);
// The tensor that owns t's storage (follows view_src to the root); t itself if not a view.
const struct tensor *tensor_storage_root(const struct tensor *t);
