// model/layers.h: building blocks shared by the architecture files: RMSNorm with weight,
// grouped-query attention through the KV cache (flash or plain softmax path), SwiGLU FFN, and
// the llama-style tensor binding used by llama/qwen2/qwen3.
#pragma once
#include "model/model.h"

struct attn_opts {
    bool qk_norm;     // per-head RMSNorm of Q and K before RoPE (qwen3)
    bool flash_attn;
};

// ---- the attention entry point ------------------------------------------------------------

// How much layer_attention checks its shapes (LLEM_ATTN_VALIDATE=always|once|never; default
// always): `once` checks the first call of each shape signature, `never` trusts the caller.
enum attn_validate { ATTN_VALIDATE_ALWAYS, ATTN_VALIDATE_ONCE, ATTN_VALIDATE_NEVER };
enum attn_validate layer_attn_validate_mode(void);
void layer_attn_set_validate_mode(enum attn_validate mode); // tests and benchmarks

// softmax(q k^T * scale + mask) v for q [D, n_q, n_head], k [D, n_kv, n_head_kv] and
// v [Dv, n_kv, n_head_kv] (GQA: n_head a multiple of n_head_kv), mask [n_kv, >= n_q] or NULL,
// optional per-head sink logits (F32 [n_head], gpt-oss) and optional MLA value up-projection
// vmla ([Dv, Dv_out, n_head], deepseek2: the output is in latent space until multiplied).
// Flash attention (tiled, online softmax) or the plain softmax reference path.
// -> [Dv_out * n_head, n_q]. A shape mismatch is a graph error (the decode fails cleanly).
struct tensor *layer_attention(struct graph *gr, struct tensor *q, struct tensor *k,
                               struct tensor *v, struct tensor *mask, float scale,
                               struct tensor *sinks, struct tensor *vmla, bool flash_attn);

struct tensor *layer_norm_rms(struct graph *gr, struct tensor *x, struct tensor *w, float eps);

// Self-attention of block il over x [n_embd, n_tokens]: projections (+ biases), optional Q/K
// norms, RoPE, store K/V in the cache, attend to the batch's view -> [n_embd, n_tokens] after
// the output projection.
struct tensor *layer_attn(struct graph *gr, const struct model *m, const struct layer *L,
                          struct tensor *x, const struct ubatch *ub, struct kv_cache *kv,
                          const struct kv_inputs *kvi, int il, const struct attn_opts *o);

// down(silu(gate(x)) * up(x)).
struct tensor *layer_ffn_swiglu(struct graph *gr, const struct layer *L, struct tensor *x);

// The RoPE parameters of the model (mode from the architecture).
struct op_rope_params layer_rope_params(const struct model *m);

// Binds token_embd, output_norm, output (tied when absent and the arch allows it),
// rope_freqs, and per block attn_norm, attn_q/k/v/output, ffn_norm, ffn_gate/up/down; plus
// biases (attn_q/k/v.bias) when `biases`, and attn_q_norm/attn_k_norm when `qk_norm`.
enum llem_err layer_bind_llama_like(struct model *m, struct binder *b, bool biases, bool qk_norm,
                                    struct llem_errbuf *eb);

// The llama-style forward: embeddings, n_layer blocks (attention + SwiGLU FFN, pre-norm,
// residuals), final norm, logits of the output rows (the normed hidden states [n_embd,
// n_outputs] instead when ub->embeddings).
struct tensor *layer_forward_llama_like(struct graph *gr, const struct model *m,
                                        const struct ubatch *ub, struct kv_cache *kv,
                                        const struct kv_inputs *kvi, const struct attn_opts *o);
