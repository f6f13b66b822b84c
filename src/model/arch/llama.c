// model/arch/llama.c: Llama 2/3.x and look-alikes (Mistral, TinyLlama, SmolLM, llama2.c's
// stories models): RMSNorm, RoPE on adjacent pairs (llama3 frequency factors through
// rope_freqs.weight), grouped-query attention, SwiGLU FFN; output tied to the embeddings when
// output.weight is absent (Llama 3.2 1B/3B).
#include "model/layers.h"

static enum llem_err llama_bind(struct model *m, struct binder *b, struct llem_errbuf *eb)
{
    return layer_bind_llama_like(m, b, false, false, eb);
}

static struct tensor *llama_forward(struct graph *gr, const struct model *m,
                                    const struct ubatch *ub, struct kv_cache *kv,
                                    const struct kv_inputs *kvi, bool flash_attn)
{
    const struct attn_opts o = {.flash_attn = flash_attn};
    return layer_forward_llama_like(gr, m, ub, kv, kvi, &o);
}

const struct llem_arch arch_llama = {
    .name = "llama",
    .rope = ROPE_NORMAL,
    .flags = ARCH_TIED_EMBEDDINGS,
    .bind_tensors = llama_bind,
    .build_forward = llama_forward,
};
