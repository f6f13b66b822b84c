// tests/golden/model_embed.c: model_ctx_embed on the shared tiny models: every vector is finite
// and of unit norm; the same tokens give the same vector whether decoded as one batch or in
// chunks of 7, with 1 or 2 threads, in another sequence, and after other work in the cache;
// different texts give different vectors; the sequence's cells are freed afterwards and an
// embeddings decode leaves no logits. Skips (77) when ../shared/models is absent.
#include <math.h>

#include "backend/backend.h"
#include "base/alloc.h"
#include "check.h"
#include "model/model.h"

// Same-text tolerance: chunked decodes attend over differently padded views, so rows may
// differ by float rounding only.
#define EMBED_TOL 1e-5

static int32_t make_tokens(int32_t n_vocab, int seed, int32_t n, llem_token *out)
{
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(seed + 1);
    for (int32_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (llem_token)(8 + (x >> 33) % (uint64_t)(n_vocab - 8));
    }
    return n;
}

static double max_diff(const float *a, const float *b, int32_t n)
{
    double m = 0;
    for (int32_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        m = d > m ? d : m;
    }
    return m;
}

static void check_unit(const float *v, int32_t n)
{
    double ss = 0;
    for (int32_t i = 0; i < n; i++) {
        CHECK(isfinite(v[i]));
        ss += (double)v[i] * (double)v[i];
    }
    CHECK_NEAR(sqrt(ss), 1.0, 1e-5);
}

struct setup {
    struct backend *be;
    struct model *m;
    struct model_ctx *ctx;
};

static void open_ctx(struct setup *s, const char *path, int threads, int32_t n_batch)
{
    struct llem_errbuf eb = {0};
    struct backend_params bp = {.n_threads = threads};
    CHECK_OK(backend_new("cpu", &bp, &s->be, &eb), &eb);
    CHECK_OK(model_load(path, NULL, s->be, &s->m, &eb), &eb);
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = 128;
    cp.n_batch = n_batch;
    cp.n_seq_max = 2;
    CHECK_OK(model_ctx_new(s->m, &cp, &s->ctx, &eb), &eb);
}

static void close_ctx(struct setup *s)
{
    model_ctx_free(s->ctx);
    model_free(s->m);
    backend_free(s->be);
}

static void check_model(const char *shared, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s", shared, name);
    struct llem_errbuf eb = {0};
    struct setup one, chunk;
    open_ctx(&one, path, 1, 64);
    open_ctx(&chunk, path, 2, 7);
    const int32_t n_embd = one.m->hp.n_embd, nv = one.m->hp.n_vocab;
    llem_token a[40], b[40];
    make_tokens(nv, 1, 40, a);
    make_tokens(nv, 2, 40, b);
    float *ea = llem_malloc((size_t)n_embd * sizeof(float));
    float *ea2 = llem_malloc((size_t)n_embd * sizeof(float));
    float *ea3 = llem_malloc((size_t)n_embd * sizeof(float));
    float *eb_ = llem_malloc((size_t)n_embd * sizeof(float));
    CHECK(ea && ea2 && ea3 && eb_);

    CHECK_OK(model_ctx_embed(one.ctx, 0, a, 40, ea, &eb), &eb);
    check_unit(ea, n_embd);
    CHECK_EQ_I64(model_ctx_kv(one.ctx)->cells.n_used, 0);
    CHECK(model_ctx_logits(one.ctx, 0) == NULL);
    CHECK(model_ctx_embeddings(one.ctx, 0) != NULL);

    // Chunks of 7 tokens, 2 threads, the other sequence.
    CHECK_OK(model_ctx_embed(chunk.ctx, 1, a, 40, ea2, &eb), &eb);
    check_unit(ea2, n_embd);
    double d_chunk = max_diff(ea, ea2, n_embd);
    CHECK(d_chunk <= EMBED_TOL);

    // Another text differs; the first again, after other cache traffic, is unchanged.
    CHECK_OK(model_ctx_embed(one.ctx, 0, b, 40, eb_, &eb), &eb);
    check_unit(eb_, n_embd);
    double d_other = max_diff(ea, eb_, n_embd);
    CHECK(d_other > 1e-3);
    llem_pos pos[5] = {0, 1, 2, 3, 4};
    llem_seq seq[5] = {1, 1, 1, 1, 1};
    struct ubatch ub = {.n_tokens = 5, .tokens = b, .pos = pos, .seq = seq};
    CHECK_OK(model_ctx_decode(one.ctx, &ub, &eb), &eb); // seq 1 holds cells meanwhile
    CHECK(model_ctx_logits(one.ctx, 0) != NULL);
    CHECK(model_ctx_embeddings(one.ctx, 0) == NULL);
    CHECK_OK(model_ctx_embed(one.ctx, 0, a, 40, ea3, &eb), &eb);
    double d_again = max_diff(ea, ea3, n_embd);
    CHECK(d_again <= EMBED_TOL);
    CHECK_EQ_I64(model_ctx_kv(one.ctx)->cells.n_used, 5); // seq 1's cells untouched

    // A single token and bad arguments.
    CHECK_OK(model_ctx_embed(one.ctx, 0, a, 1, ea3, &eb), &eb);
    check_unit(ea3, n_embd);
    CHECK(model_ctx_embed(one.ctx, 0, a, 0, ea3, &eb) == LLEM_EINVAL);
    CHECK(model_ctx_embed(one.ctx, 0, a, 129, ea3, &eb) == LLEM_EINVAL);
    CHECK(model_ctx_embed(one.ctx, 2, a, 4, ea3, &eb) == LLEM_EINVAL);
    llem_token bad[2] = {a[0], nv};
    CHECK(model_ctx_embed(one.ctx, 0, bad, 2, ea3, &eb) == LLEM_EINVAL);
    CHECK_EQ_I64(model_ctx_kv(one.ctx)->cells.n_used, 5);

    printf("%-24s n_embd %d: chunked/threads diff %.2e, again %.2e, other text %.3f\n", name,
           n_embd, d_chunk, d_again, d_other);
    llem_free(ea);
    llem_free(ea2);
    llem_free(ea3);
    llem_free(eb_);
    close_ctx(&one);
    close_ctx(&chunk);
}

int main(void)
{
    char probe[1024];
    test_shared_path(probe, sizeof probe, "models/llama-tiny-F16.gguf"); // skips when absent
    const char *shared = getenv("LLEM_SHARED") ? getenv("LLEM_SHARED") : "../shared";
    check_model(shared, "llama-tiny-F16.gguf");
    check_model(shared, "qwen3-tiny-Q4_K_M.gguf");
    check_model(shared, "qwen2-tiny-Q8_0.gguf");
    return TEST_EXIT();
}
