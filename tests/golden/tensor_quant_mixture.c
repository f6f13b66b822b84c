// tests/golden/tensor_quant_mixture.c: the mixture recipes against llama-quantize's choices.
// For each quantized model in ../shared/models (made by llama-quantize without imatrix) the
// type tensor_mixture_type picks for every tensor of the F16 original must equal the type in
// llama.cpp's file (output/token_embd as Q6_K, attn_v/ffn_down bumps, 1-D tensors kept).
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "gguf/gguf.h"
#include "tensor/types.h"

static int layer_of(const char *name)
{
    int l = -1;
    if (strncmp(name, "blk.", 4) == 0 && sscanf(name + 4, "%d.", &l) != 1) {
        l = -1;
    }
    return l;
}

static void check_pair(const char *model, const char *target)
{
    char p_src[1024], p_ref[1024], rel[256];
    snprintf(rel, sizeof rel, "models/%s-tiny-F16.gguf", model);
    test_shared_path(p_src, sizeof p_src, rel);
    snprintf(rel, sizeof rel, "models/%s-tiny-%s.gguf", model, target);
    test_shared_path(p_ref, sizeof p_ref, rel);
    struct llem_errbuf eb = {0};
    struct gguf_file *src = NULL, *ref = NULL;
    struct gguf_open_opts o = {.metadata_only = true};
    CHECK_OK(gguf_open(&src, p_src, &o, &eb), &eb);
    CHECK_OK(gguf_open(&ref, p_ref, &o, &eb), &eb);
    if (!src || !ref) {
        gguf_close(src);
        gguf_close(ref);
        return;
    }
    char key[128];
    uint32_t n_layer = 0, nh = 0, nkv = 0;
    snprintf(key, sizeof key, "%s.block_count", model);
    CHECK(gguf_get_u32(src, key, &n_layer));
    snprintf(key, sizeof key, "%s.attention.head_count", model);
    CHECK(gguf_get_u32(src, key, &nh));
    snprintf(key, sizeof key, "%s.attention.head_count_kv", model);
    CHECK(gguf_get_u32(src, key, &nkv));
    const int n_gqa = nkv ? (int)(nh / nkv) : 1;
    const bool has_output = gguf_find_tensor(src, "output.weight") >= 0;
    int bad = 0, n = 0;
    for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
        const struct gguf_tensor_info *ti = gguf_tensor(src, i);
        int64_t j = gguf_find_tensor(ref, ti->name);
        CHECK(j >= 0);
        if (j < 0) {
            continue;
        }
        uint32_t want = gguf_tensor(ref, j)->type;
        uint32_t got = tensor_mixture_type(target, ti->name, ti->ne, (int)ti->n_dims,
                                           layer_of(ti->name), (int)n_layer, n_gqa, has_output,
                                           ti->type);
        n++;
        if (got != want) {
            fprintf(stderr, "%s %s %s: llem %s, llama.cpp %s\n", model, target, ti->name,
                    gguf_type_name(got), gguf_type_name(want));
            bad++;
        }
    }
    CHECK_EQ_I64(bad, 0);
    uint32_t ftype = 0;
    CHECK(gguf_get_u32(ref, "general.file_type", &ftype));
    const struct tensor_mixture *mix = tensor_mixture_find(target);
    CHECK(mix != NULL && mix->ftype == ftype);
    fprintf(stderr, "%-6s %-7s %d tensors, %d differ\n", model, target, n, bad);
    gguf_close(src);
    gguf_close(ref);
}

int main(void)
{
    check_pair("llama", "Q4_0");
    check_pair("llama", "Q4_K_M");
    check_pair("llama", "Q6_K");
    check_pair("llama", "Q8_0");
    check_pair("qwen2", "Q4_K_M");
    check_pair("qwen2", "Q8_0");
    check_pair("qwen3", "Q4_0");
    check_pair("qwen3", "Q4_K_M");
    return TEST_EXIT();
}
