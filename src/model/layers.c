// model/layers.c: shared blocks of the llama-style decoder (RMSNorm, GQA attention through the
// KV cache, SwiGLU FFN) and the tensor binding and forward pass llama/qwen2/qwen3 share.
#include "model/layers.h"

#include "gguf/gguf.h"

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
    struct tensor *out;
    if (o->flash_attn) {
        out = op_flash_attn_ext(gr, qp, kc, vc, kvi->mask, hp->f_attn_scale, NULL);
        out = op_reshape_2d(gr, out, hdv * hp->n_head, n_tokens); // [hdv, n_head, n_tokens]
    } else {
        // The reference path: scores [n_kv, n_tokens, n_head], softmax, then V^T x scores.
        struct tensor *kq = op_mul_mat(gr, kc, qp);
        kq = op_softmax_ext(gr, kq, kvi->mask, hp->f_attn_scale, NULL);
        struct tensor *vt = op_cont_type(gr, op_permute(gr, vc, 1, 0, 2, 3), GGML_TYPE_F32);
        struct tensor *kqv = op_mul_mat(gr, vt, kq);           // [hdv, n_tokens, n_head]
        kqv = op_cont(gr, op_permute(gr, kqv, 0, 2, 1, 3));    // [hdv, n_head, n_tokens]
        out = op_reshape_2d(gr, kqv, hdv * hp->n_head, n_tokens);
    }
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
    return op_mul_mat(gr, m->output, x); // [n_vocab, n_outputs]
}
