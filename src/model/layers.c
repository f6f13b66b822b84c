// model/layers.c: shared blocks of the llama-style decoder (RMSNorm, GQA attention through the
// KV cache, SwiGLU FFN) and the tensor binding and forward pass llama/qwen2/qwen3 share.
#include "model/layers.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

// ---- attention -------------------------------------------------------------------------------

static atomic_int attn_mode = -1;

enum attn_validate layer_attn_validate_mode(void)
{
    int m = atomic_load_explicit(&attn_mode, memory_order_relaxed);
    if (m < 0) {
        const char *env = getenv("LLEM_ATTN_VALIDATE");
        m = ATTN_VALIDATE_ALWAYS;
        if (env && strcmp(env, "once") == 0) {
            m = ATTN_VALIDATE_ONCE;
        } else if (env && strcmp(env, "never") == 0) {
            m = ATTN_VALIDATE_NEVER;
        }
        atomic_store(&attn_mode, m);
    }
    return (enum attn_validate)m;
}

void layer_attn_set_validate_mode(enum attn_validate mode)
{
    atomic_store(&attn_mode, (int)mode);
}

// Shape signatures already validated in `once` mode: a small lock-free set of hashes.
#define ATTN_SEEN_SLOTS 64
static _Atomic uint64_t attn_seen[ATTN_SEEN_SLOTS];

static bool attn_seen_check_and_add(uint64_t sig)
{
    sig |= 1; // 0 marks an empty slot
    for (unsigned i = 0; i < ATTN_SEEN_SLOTS; i++) {
        unsigned slot = (unsigned)(sig + i) % ATTN_SEEN_SLOTS;
        uint64_t cur = atomic_load_explicit(&attn_seen[slot], memory_order_relaxed);
        if (cur == sig) {
            return true;
        }
        if (cur == 0) {
            uint64_t expect = 0;
            atomic_compare_exchange_strong(&attn_seen[slot], &expect, sig);
            return false;
        }
    }
    return false; // table full: keep validating
}

// The checks upstream's attention panics on, as errors. Returns NULL when fine.
static const char *attn_check(const struct tensor *q, const struct tensor *k,
                              const struct tensor *v, const struct tensor *mask,
                              const struct tensor *sinks, const struct tensor *vmla, char *buf,
                              size_t cap)
{
    if (q->ne[0] != k->ne[0]) {
        snprintf(buf, cap, "attention: query head size %lld != key head size %lld",
                 (long long)q->ne[0], (long long)k->ne[0]);
    } else if (k->ne[2] != v->ne[2] || k->ne[1] != v->ne[1]) {
        snprintf(buf, cap, "attention: keys [%lld cells, %lld heads] and values [%lld, %lld] "
                 "differ", (long long)k->ne[1], (long long)k->ne[2], (long long)v->ne[1],
                 (long long)v->ne[2]);
    } else if (k->ne[2] < 1 || q->ne[2] % k->ne[2] != 0) {
        snprintf(buf, cap, "attention: %lld query heads are not a multiple of %lld KV heads",
                 (long long)q->ne[2], (long long)k->ne[2]);
    } else if (mask && (mask->ne[0] != k->ne[1] || mask->ne[1] < q->ne[1])) {
        snprintf(buf, cap, "attention: mask [%lld, %lld] does not cover %lld cells x %lld "
                 "queries", (long long)mask->ne[0], (long long)mask->ne[1],
                 (long long)k->ne[1], (long long)q->ne[1]);
    } else if (sinks && sinks->ne[0] != q->ne[2]) {
        snprintf(buf, cap, "attention: %lld sinks for %lld heads", (long long)sinks->ne[0],
                 (long long)q->ne[2]);
    } else if (vmla && (vmla->ne[0] != v->ne[0] || vmla->ne[2] != q->ne[2])) {
        snprintf(buf, cap, "attention: MLA projection [%lld, %lld, %lld] does not match values "
                 "of size %lld and %lld heads", (long long)vmla->ne[0], (long long)vmla->ne[1],
                 (long long)vmla->ne[2], (long long)v->ne[0], (long long)q->ne[2]);
    } else {
        return NULL;
    }
    return buf;
}

struct tensor *layer_attention(struct graph *gr, struct tensor *q, struct tensor *k,
                               struct tensor *v, struct tensor *mask, float scale,
                               struct tensor *sinks, struct tensor *vmla, bool flash_attn)
{
    enum attn_validate mode = layer_attn_validate_mode();
    if (mode != ATTN_VALIDATE_NEVER) {
        uint64_t sig = (uint64_t)q->ne[0] * 0x9E3779B97F4A7C15ull ^
                       (uint64_t)v->ne[0] * 0xC2B2AE3D27D4EB4Full ^
                       (uint64_t)q->ne[2] * 0x165667B19E3779F9ull ^
                       (uint64_t)k->ne[2] * 0x27D4EB2F165667C5ull ^
                       (uint64_t)(sinks != NULL) << 1 ^ (uint64_t)(vmla ? vmla->ne[1] : 0) << 7;
        // `once` skips shapes already seen; cell and query counts vary per batch, so they are
        // checked by the ops themselves.
        if (mode == ATTN_VALIDATE_ALWAYS || !attn_seen_check_and_add(sig)) {
            char msg[200];
            const char *err = attn_check(q, k, v, mask, sinks, vmla, msg, sizeof msg);
            if (err) {
                return graph_fail(gr, err);
            }
        }
    }
    const int64_t n_q = q->ne[1], n_head = q->ne[2];
    struct tensor *out; // [Dv, n_head, n_q]
    if (flash_attn) {
        out = op_flash_attn_ext(gr, q, k, v, mask, scale, sinks);
    } else {
        // The reference path: scores [n_kv, n_q, n_head], softmax, then V^T x scores.
        struct tensor *kq = op_mul_mat(gr, k, q);
        kq = op_softmax_ext(gr, kq, mask, scale, sinks);
        // A transposed V cache (kv_cache_params.v_trans) is V^T already; otherwise V^T is
        // gathered into a contiguous F32 copy first.
        struct tensor *vt = op_permute(gr, v, 1, 0, 2, 3);
        if (vt->nb[0] != tensor_type_size(vt->type)) {
            vt = op_cont_type(gr, vt, GGML_TYPE_F32);
        }
        struct tensor *kqv = op_mul_mat(gr, vt, kq);          // [Dv, n_q, n_head]
        out = op_cont(gr, op_permute(gr, kqv, 0, 2, 1, 3));   // [Dv, n_head, n_q]
    }
    if (vmla) {
        // Latent -> per-head values: [Dv, n_q, n_head] x vmla [Dv, Dv_out, n_head].
        struct tensor *lat = op_cont(gr, op_permute(gr, out, 0, 2, 1, 3));
        struct tensor *up = op_mul_mat(gr, vmla, lat);        // [Dv_out, n_q, n_head]
        out = op_cont(gr, op_permute(gr, up, 0, 2, 1, 3));    // [Dv_out, n_head, n_q]
    }
    return op_reshape_2d(gr, out, out->ne[0] * n_head, n_q);
}


struct tensor *layer_norm_rms(struct graph *gr, struct tensor *x, struct tensor *w, float eps)
{
    return op_mul(gr, op_rms_norm(gr, x, eps), w);
}

struct op_rope_params layer_rope_params(const struct model *m)
{
    const struct hparams *hp = &m->hp;
    return (struct op_rope_params){
        .n_rot = hp->n_rot,
        .mode = m->arch->rope,
        .n_ctx_orig = hp->rope_n_ctx_orig,
        .freq_base = hp->rope_freq_base,
        .freq_scale = hp->rope_freq_scale,
        .ext_factor = hp->yarn_ext_factor,
        .attn_factor = hp->yarn_attn_factor,
        .beta_fast = hp->yarn_beta_fast,
        .beta_slow = hp->yarn_beta_slow,
    };
}

static struct tensor *proj(struct graph *gr, struct tensor *w, struct tensor *b, struct tensor *x)
{
    struct tensor *y = op_mul_mat(gr, w, x);
    return b ? op_add(gr, y, b) : y;
}

struct tensor *layer_attn(struct graph *gr, const struct model *m, const struct layer *L,
                          struct tensor *x, const struct ubatch *ub, struct kv_cache *kv,
                          const struct kv_inputs *kvi, int il, const struct attn_opts *o)
{
    const struct hparams *hp = &m->hp;
    const int64_t n_tokens = ub->n_tokens, hd = hp->head_dim, hdv = hp->head_dim_v;
    struct tensor *q = proj(gr, L->wq, L->bq, x); // [hd * n_head, n_tokens]
    struct tensor *k = proj(gr, L->wk, L->bk, x); // [hd * n_head_kv, n_tokens]
    struct tensor *v = proj(gr, L->wv, L->bv, x); // [hdv * n_head_kv, n_tokens]
    q = op_reshape_3d(gr, q, hd, hp->n_head, n_tokens);
    k = op_reshape_3d(gr, k, hd, hp->n_head_kv, n_tokens);
    if (o->qk_norm) {
        q = layer_norm_rms(gr, q, L->q_norm, hp->norm_eps);
        k = layer_norm_rms(gr, k, L->k_norm, hp->norm_eps);
    }
    const struct op_rope_params rp = layer_rope_params(m);
    q = op_rope(gr, q, ub->inp_pos, m->rope_freqs, &rp);
    k = op_rope(gr, k, ub->inp_pos, m->rope_freqs, &rp);

    // Store this batch's K/V rows and view every attended cell: [hd, n_kv, n_head_kv].
    struct tensor *kc = kv_cache_store_view_k(gr, kv, kvi, il,
                                              op_reshape_2d(gr, k, hd * hp->n_head_kv, n_tokens),
                                              (int32_t)hd, hp->n_head_kv);
    struct tensor *vc = kv_cache_store_view_v(gr, kv, kvi, il, v, (int32_t)hdv, hp->n_head_kv);
    struct tensor *qp = op_permute(gr, q, 0, 2, 1, 3); // [hd, n_tokens, n_head]
    struct tensor *out = layer_attention(gr, qp, kc, vc, kvi->mask, hp->f_attn_scale, NULL, NULL,
                                         o->flash_attn);
    return op_mul_mat(gr, L->wo, out);
}

struct tensor *layer_ffn_swiglu(struct graph *gr, const struct layer *L, struct tensor *x)
{
    struct tensor *g = op_mul_mat(gr, L->ffn_gate, x);
    struct tensor *u = op_mul_mat(gr, L->ffn_up, x);
    return op_mul_mat(gr, L->ffn_down, op_swiglu(gr, g, u));
}

enum llem_err layer_bind_llama_like(struct model *m, struct binder *b, bool biases, bool qk_norm,
                                    struct llem_errbuf *eb)
{
    struct hparams *hp = &m->hp;
    // The vocabulary size comes from the embedding table itself (checked against the
    // tokenizer when both exist).
    int64_t idx = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (idx < 0) {
        return llem_errf(eb, LLEM_EFORMAT, "missing tensor 'token_embd.weight'");
    }
    const struct gguf_tensor_info *te = gguf_tensor(m->gguf, idx);
    if (te->n_dims != 2 || te->ne[1] < 1 || te->ne[1] > (1 << 24)) {
        return llem_errf(eb, LLEM_EFORMAT, "tensor 'token_embd.weight' has a bad shape");
    }
    hp->n_vocab = (int32_t)te->ne[1];
    uint64_t n_tok = 0;
    if (gguf_get_arr(m->gguf, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &n_tok) &&
        n_tok != (uint64_t)hp->n_vocab) {
        return llem_errf(eb, LLEM_EFORMAT, "vocabulary has %llu tokens, token_embd has %d rows",
                         (unsigned long long)n_tok, hp->n_vocab);
    }
    const int64_t E = hp->n_embd, V = hp->n_vocab, F = hp->n_ff, HD = hp->head_dim;
    const int64_t NQ = HD * hp->n_head, NK = HD * hp->n_head_kv,
                  NV = (int64_t)hp->head_dim_v * hp->n_head_kv,
                  NO = (int64_t)hp->head_dim_v * hp->n_head;
    m->tok_embd = binder_get(b, "token_embd.weight", -1, 2, (int64_t[]){E, V}, false);
    m->output_norm = binder_get(b, "output_norm.weight", -1, 1, (int64_t[]){E}, false);
    bool tied = (m->arch->flags & ARCH_TIED_EMBEDDINGS) != 0;
    m->output = binder_get(b, "output.weight", -1, 2, (int64_t[]){E, V}, true);
    if (!m->output && binder_status(b, NULL) == LLEM_OK) {
        // llama.cpp ties the output to the embeddings whenever output.weight is absent.
        (void)tied;
        m->output = m->tok_embd;
    }
    m->rope_freqs = binder_get(b, "rope_freqs.weight", -1, 1, (int64_t[]){hp->n_rot / 2}, true);
    for (int il = 0; il < hp->n_layer; il++) {
        struct layer *L = &m->layers[il];
        L->attn_norm = binder_get(b, "blk.%d.attn_norm.weight", il, 1, (int64_t[]){E}, false);
        L->wq = binder_get(b, "blk.%d.attn_q.weight", il, 2, (int64_t[]){E, NQ}, false);
        L->wk = binder_get(b, "blk.%d.attn_k.weight", il, 2, (int64_t[]){E, NK}, false);
        L->wv = binder_get(b, "blk.%d.attn_v.weight", il, 2, (int64_t[]){E, NV}, false);
        L->wo = binder_get(b, "blk.%d.attn_output.weight", il, 2, (int64_t[]){NO, E}, false);
        if (biases) {
            L->bq = binder_get(b, "blk.%d.attn_q.bias", il, 1, (int64_t[]){NQ}, false);
            L->bk = binder_get(b, "blk.%d.attn_k.bias", il, 1, (int64_t[]){NK}, false);
            L->bv = binder_get(b, "blk.%d.attn_v.bias", il, 1, (int64_t[]){NV}, false);
        }
        if (qk_norm) {
            L->q_norm = binder_get(b, "blk.%d.attn_q_norm.weight", il, 1, (int64_t[]){HD}, false);
            L->k_norm = binder_get(b, "blk.%d.attn_k_norm.weight", il, 1, (int64_t[]){HD}, false);
        }
        L->ffn_norm = binder_get(b, "blk.%d.ffn_norm.weight", il, 1, (int64_t[]){E}, false);
        L->ffn_gate = binder_get(b, "blk.%d.ffn_gate.weight", il, 2, (int64_t[]){E, F}, false);
        L->ffn_up = binder_get(b, "blk.%d.ffn_up.weight", il, 2, (int64_t[]){E, F}, false);
        L->ffn_down = binder_get(b, "blk.%d.ffn_down.weight", il, 2, (int64_t[]){F, E}, false);
    }
    return binder_status(b, eb);
}

struct tensor *layer_forward_llama_like(struct graph *gr, const struct model *m,
                                        const struct ubatch *ub, struct kv_cache *kv,
                                        const struct kv_inputs *kvi, const struct attn_opts *o)
{
    const struct hparams *hp = &m->hp;
    struct tensor *x = op_get_rows(gr, m->tok_embd, ub->inp_tokens); // [n_embd, n_tokens]
    for (int il = 0; il < hp->n_layer; il++) {
        const struct layer *L = &m->layers[il];
        struct tensor *h = layer_norm_rms(gr, x, L->attn_norm, hp->norm_eps);
        h = layer_attn(gr, m, L, h, ub, kv, kvi, il, o);
        if (il == hp->n_layer - 1 && ub->inp_out_ids) {
            // Only the rows whose logits are wanted go through the last FFN and the head.
            h = op_get_rows(gr, h, ub->inp_out_ids);
            x = op_get_rows(gr, x, ub->inp_out_ids);
        }
        x = op_add(gr, x, h); // residual
        h = layer_norm_rms(gr, x, L->ffn_norm, hp->norm_eps);
        x = op_add(gr, x, layer_ffn_swiglu(gr, L, h)); // residual
    }
    x = layer_norm_rms(gr, x, m->output_norm, hp->norm_eps);
    if (ub->embeddings) {
        return x; // [n_embd, n_outputs]: pooled by model_ctx_embed
    }
    return op_mul_mat(gr, m->output, x); // [n_vocab, n_outputs]
}
