// model/arch/qwen3.c: Qwen3 dense models: the llama block without biases but with a per-head
// RMSNorm of Q and K before RoPE (NeoX); head size from attention.key_length (128 for most
// sizes, independent of n_embd / n_head); tied embeddings on the small models.
#include "model/layers.h"

static enum llem_err qwen3_bind(struct model *m, struct binder *b, struct llem_errbuf *eb)
{
    return layer_bind_llama_like(m, b, false, true, eb);
}

static struct tensor *qwen3_forward(struct graph *gr, const struct model *m,
                                    const struct ubatch *ub, struct kv_cache *kv,
                                    const struct kv_inputs *kvi, bool flash_attn)
{
    const struct attn_opts o = {.qk_norm = true, .flash_attn = flash_attn};
    return layer_forward_llama_like(gr, m, ub, kv, kvi, &o);
}

const struct llem_arch arch_qwen3 = {
    .name = "qwen3",
    .rope = ROPE_NEOX,
    .flags = ARCH_TIED_EMBEDDINGS,
    .bind_tensors = qwen3_bind,
    .build_forward = qwen3_forward,
};
