// kvcache/kvcache.c: K/V storage in a backend buffer and the graph glue of the KV cache.
#include "kvcache/kvcache.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

#define KV_ALIGN 256 // device-friendly: each layer's tensor starts on a 256-byte boundary

static size_t align_up(size_t v)
{
    return (v + KV_ALIGN - 1) / KV_ALIGN * KV_ALIGN;
}

static bool kv_type_ok(uint32_t type)
{
    return type == GGML_TYPE_F16 || type == GGML_TYPE_F32 || type == GGML_TYPE_Q8_0 ||
           type == GGML_TYPE_Q4_0;
}

static size_t cells_for(const struct kv_cells_params *p)
{
    // Mirrors kv_cells_init's sizing without allocating (used by the memory planner).
    int64_t window = p->kind == KV_SWA ? p->window : INT32_MAX;
    int64_t memory = p->kind == KV_SWA ? (p->memory ? p->memory : window) : INT32_MAX;
    if (p->kind == KV_SWA && p->n_seq_max > 1 && memory < window + 1) {
        memory = window + 1;
    }
    if (memory >= p->n_ctx_seq) {
        memory = INT32_MAX;
    }
    int64_t n = memory == INT32_MAX ? (int64_t)p->n_seq_max * p->n_ctx_seq
                                    : (int64_t)p->n_seq_max * memory + p->n_batch_max;
    int64_t pad = p->padding > 0 ? p->padding : 1;
    return (size_t)((n + pad - 1) / pad * pad);
}

size_t kv_cache_bytes(const struct kv_cache_params *p)
{
    size_t n_cells = cells_for(&p->cells);
    size_t k = align_up(tensor_row_size(p->type_k, p->n_embd_k) * n_cells);
    size_t v = align_up(tensor_row_size(p->type_v, p->n_embd_v) * n_cells);
    return (size_t)p->n_layer * (k + v);
}

enum llem_err kv_cache_init(struct kv_cache *kv, struct backend *be,
                            const struct kv_cache_params *p, struct llem_errbuf *eb)
{
    memset(kv, 0, sizeof *kv);
    if (p->n_layer < 1 || p->n_embd_k < 1 || p->n_embd_v < 1 || !kv_type_ok(p->type_k) ||
        !kv_type_ok(p->type_v) || p->n_embd_k % tensor_type_blck(p->type_k) != 0 ||
        p->n_embd_v % tensor_type_blck(p->type_v) != 0 ||
        (p->v_trans && p->type_v != GGML_TYPE_F16 && p->type_v != GGML_TYPE_F32)) {
        return llem_errf(eb, LLEM_EINVAL, "kv cache: bad layout (%d layers, K %d x %s, V %d x %s)",
                         p->n_layer, p->n_embd_k, tensor_type_name(p->type_k), p->n_embd_v,
                         tensor_type_name(p->type_v));
    }
    enum llem_err rc = kv_cells_init(&kv->cells, &p->cells, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    kv->p = *p;
    kv->k = llem_calloc((size_t)p->n_layer, sizeof *kv->k);
    kv->v = llem_calloc((size_t)p->n_layer, sizeof *kv->v);
    if (p->v_trans) {
        kv->v_locs = llem_malloc((size_t)p->cells.n_batch_max * (size_t)p->n_embd_v *
                                 sizeof *kv->v_locs);
    }
    if (!kv->k || !kv->v || (p->v_trans && !kv->v_locs)) {
        kv_cache_deinit(kv);
        return llem_errf(eb, LLEM_ENOMEM, "kv cache: out of memory");
    }
    const int64_t n_cells = kv->cells.n_cells;
    size_t total = kv_cache_bytes(p);
    rc = backend_buffer_alloc_zeroed(be, total, BACKEND_BUFFER_KV, &kv->buf, eb);
    if (rc != LLEM_OK) {
        kv_cache_deinit(kv);
        return rc;
    }
    size_t offs = 0;
    for (int il = 0; il < p->n_layer; il++) {
        char name[TENSOR_NAME_MAX];
        snprintf(name, sizeof name, "cache_k_l%d", il);
        const int64_t ne_k[2] = {p->n_embd_k, n_cells};
        const int64_t ne_v[2] = {p->v_trans ? n_cells : p->n_embd_v,
                                 p->v_trans ? p->n_embd_v : n_cells};
        if ((rc = tensor_init(&kv->k[il], p->type_k, 2, ne_k, name, eb)) != LLEM_OK ||
            (rc = backend_tensor_bind(&kv->k[il], kv->buf, offs, eb)) != LLEM_OK) {
            kv_cache_deinit(kv);
            return rc;
        }
        offs += align_up(tensor_nbytes(&kv->k[il]));
        snprintf(name, sizeof name, "cache_v_l%d", il);
        if ((rc = tensor_init(&kv->v[il], p->type_v, 2, ne_v, name, eb)) != LLEM_OK ||
            (rc = backend_tensor_bind(&kv->v[il], kv->buf, offs, eb)) != LLEM_OK) {
            kv_cache_deinit(kv);
            return rc;
        }
        offs += align_up(tensor_nbytes(&kv->v[il]));
    }
    return LLEM_OK;
}

void kv_cache_deinit(struct kv_cache *kv)
{
    if (!kv) {
        return;
    }
    kv_cells_deinit(&kv->cells);
    backend_buffer_free(kv->buf);
    llem_free(kv->k);
    llem_free(kv->v);
    llem_free(kv->v_locs);
    memset(kv, 0, sizeof *kv);
}

void kv_cache_clear(struct kv_cache *kv)
{
    kv_cells_clear(&kv->cells);
}

void kv_cache_graph_inputs(struct kv_cache *kv, struct graph *gr, struct kv_inputs *in)
{
    const struct kv_cells *c = &kv->cells;
    const uint32_t mask_type = c->p.mask_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    const size_t elem = c->p.mask_f16 ? 2 : 4;
    in->n_kv = c->view_len;
    in->view_min = c->view_min;
    in->locs = graph_input(gr, "kv_locs", GGML_TYPE_I32, c->n_tokens, 1, 1, 1);
    in->v_locs = kv->p.v_trans ? graph_input(gr, "kv_v_locs", GGML_TYPE_I64,
                                             (int64_t)kv->p.n_embd_v * c->n_tokens, 1, 1, 1)
                               : NULL;
    in->mask_rows = graph_input(gr, "kq_mask", mask_type, c->mask_stride, c->n_tokens, 1, 1);
    in->mask = op_view_2d(gr, in->mask_rows, c->view_len, c->n_tokens,
                          (size_t)c->mask_stride * elem, 0);
}

void kv_cache_set_inputs(const struct kv_cache *kv, struct kv_inputs *in)
{
    const struct kv_cells *c = &kv->cells;
    const size_t elem = c->p.mask_f16 ? 2 : 4;
    backend_tensor_set(in->locs, c->locs, 0, (size_t)c->n_tokens * sizeof(int32_t));
    if (in->v_locs) {
        // Element (cell, d) of a transposed V is at d * n_cells + cell.
        const int64_t n_embd_v = kv->p.n_embd_v, n_cells = c->n_cells;
        for (int32_t t = 0; t < c->n_tokens; t++) {
            for (int64_t d = 0; d < n_embd_v; d++) {
                kv->v_locs[t * n_embd_v + d] = d * n_cells + c->locs[t];
            }
        }
        backend_tensor_set(in->v_locs, kv->v_locs, 0,
                           (size_t)(n_embd_v * c->n_tokens) * sizeof(int64_t));
    }
    backend_tensor_set(in->mask_rows, c->mask, 0,
                       (size_t)c->mask_stride * (size_t)c->n_tokens * elem);
}

static struct tensor *store_view(struct graph *gr, struct tensor *cache,
                                 const struct kv_inputs *in, struct tensor *cur, int32_t head_dim,
                                 int32_t n_head_kv)
{
    struct tensor *stored = op_set_rows(gr, cache, cur, in->locs);
    const size_t row = cache->nb[1];
    const size_t head = tensor_row_size(cache->type, head_dim);
    return op_view_3d(gr, stored, head_dim, in->n_kv, n_head_kv, row, head,
                      (size_t)in->view_min * row);
}

struct tensor *kv_cache_store_view_k(struct graph *gr, struct kv_cache *kv,
                                     const struct kv_inputs *in, int il, struct tensor *cur,
                                     int32_t head_dim, int32_t n_head_kv)
{
    return store_view(gr, &kv->k[il], in, cur, head_dim, n_head_kv);
}

struct tensor *kv_cache_store_view_v(struct graph *gr, struct kv_cache *kv,
                                     const struct kv_inputs *in, int il, struct tensor *cur,
                                     int32_t head_dim, int32_t n_head_kv)
{
    if (!kv->p.v_trans) {
        return store_view(gr, &kv->v[il], in, cur, head_dim, n_head_kv);
    }
    // One-element rows: the cache as [1, n_cells * n_embd_v], the batch as [1, n_embd_v *
    // n_tokens], and v_locs placing each element.
    struct tensor *cache = &kv->v[il];
    const int64_t n_cells = cache->ne[0], n_embd_v = cache->ne[1];
    const size_t es = cache->nb[0];
    struct tensor *flat = op_view_2d(gr, cache, 1, n_cells * n_embd_v, es, 0);
    struct tensor *vals = op_reshape_2d(gr, cur, 1, n_embd_v * cur->ne[1]);
    struct tensor *stored = op_set_rows(gr, flat, vals, in->v_locs);
    const size_t row = (size_t)n_cells * es; // one V element over all cells
    struct tensor *vt = op_view_3d(gr, stored, in->n_kv, head_dim, n_head_kv, row,
                                   row * (size_t)head_dim, (size_t)in->view_min * es);
    return op_permute(gr, vt, 1, 0, 2, 3);
}
