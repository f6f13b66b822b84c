// kvcache/kvcache.h: the causal KV cache shared by up to 64 sequences: the cell bookkeeping
// of kv_cells.h plus, per layer, K and V tensors (one row of n_embd_k / n_embd_v elements per
// cell; V optionally transposed, see v_trans) in one backend buffer, and the graph glue a
// forward pass uses: the per-batch inputs (cell locations, mask), storing new K/V rows
// (op_set_rows) and views of the attended cells.
// Only the runner thread that owns the cache calls these.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "kvcache/kv_cells.h"

struct kv_cache_params {
    struct kv_cells_params cells;
    int32_t n_layer;
    int32_t n_embd_k; // K elements per cell per layer (head_dim_k * n_head_kv)
    int32_t n_embd_v; // V elements per cell per layer
    uint32_t type_k;  // GGML_TYPE_F16 (default), F32, Q8_0, Q4_0
    uint32_t type_v;
    // V stored transposed, [n_cells, n_embd_v] (F16/F32 only): without flash attention the
    // attention reads V^T x softmax, and a transposed cache is V^T already, so no per-step
    // copy of the whole V view. Flash attention reads V rows per cell and needs it false.
    bool v_trans;
};

struct kv_cache {
    struct kv_cells cells;
    struct kv_cache_params p;
    struct backend_buffer *buf;
    struct tensor *k; // [n_layer] tensors [n_embd_k, n_cells] of type_k
    struct tensor *v; // [n_layer] tensors [n_embd_v, n_cells] ([n_cells, n_embd_v]: v_trans)
    int64_t *v_locs;  // v_trans: [n_batch_max * n_embd_v] element index of each stored V value
};

// Bytes the cache of these parameters takes (for the memory planner): cells x layers x
// (row bytes of K + V).
size_t kv_cache_bytes(const struct kv_cache_params *p);

// Allocates the cells and one backend buffer for every layer's K and V, cleared to zero.
// LLEM_EINVAL (bad parameters, a K/V type without a row layout), LLEM_ENOMEM.
enum llem_err kv_cache_init(struct kv_cache *kv, struct backend *be,
                            const struct kv_cache_params *p, struct llem_errbuf *eb);
void kv_cache_deinit(struct kv_cache *kv);
void kv_cache_clear(struct kv_cache *kv); // frees every cell (the data stays, unreferenced)

// The graph inputs of one forward pass, created after kv_cells_start/reserve.
struct kv_inputs {
    struct tensor *locs;      // I32 [n_tokens]: the cell of each token
    struct tensor *v_locs;    // v_trans: I64 [n_embd_v * n_tokens]: where each V element goes
    struct tensor *mask_rows; // [mask_stride, n_tokens] (F16 or F32), filled from the cells
    struct tensor *mask;      // view [n_kv, n_tokens] of mask_rows for the attention op
    int32_t n_kv;             // cells in the view
    int32_t view_min;         // first cell of the view
};

void kv_cache_graph_inputs(struct kv_cache *kv, struct graph *gr, struct kv_inputs *in);
// After the graph is allocated: uploads the locations and the mask.
void kv_cache_set_inputs(const struct kv_cache *kv, struct kv_inputs *in);

// Stores layer il's new K (or V) rows, cur [n_embd_k, n_tokens] F32, at the batch's cells, and
// returns views [head_dim, n_kv, n_head_kv] of the attended cells that depend on the store.
// With v_trans the V view has the same shape but strides of a transposed tensor (nb[0] is a
// cell row), so permuting dims 0 and 1 gives contiguous rows of n_kv cells.
struct tensor *kv_cache_store_view_k(struct graph *gr, struct kv_cache *kv,
                                     const struct kv_inputs *in, int il, struct tensor *cur,
                                     int32_t head_dim, int32_t n_head_kv);
struct tensor *kv_cache_store_view_v(struct graph *gr, struct kv_cache *kv,
                                     const struct kv_inputs *in, int il, struct tensor *cur,
                                     int32_t head_dim, int32_t n_head_kv);
