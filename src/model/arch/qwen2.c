// model/arch/qwen2.c: Qwen2 / Qwen2.5: the llama block with biases on the Q/K/V projections,
// RoPE on halves (NeoX), embeddings usually tied to the output.
#include "model/layers.h"

static enum llem_err qwen2_bind(struct model *m, struct binder *b, struct llem_errbuf *eb)
{
    return layer_bind_llama_like(m, b, true, false, eb);
}

static struct tensor *qwen2_forward(struct graph *gr, const struct model *m,
                                    const struct ubatch *ub, struct kv_cache *kv,
                                    const struct kv_inputs *kvi, bool flash_attn)
{
    const struct attn_opts o = {.flash_attn = flash_attn};
    return layer_forward_llama_like(gr, m, ub, kv, kvi, &o);
}

const struct llem_arch arch_qwen2 = {
    .name = "qwen2",
    .rope = ROPE_NEOX,
    .flags = ARCH_TIED_EMBEDDINGS,
    .bind_tensors = qwen2_bind,
    .build_forward = qwen2_forward,
};
