// tests/backend/backend_graph.c: the caller's view of the engine core, as an architecture's
// forward uses it: weights in a zero-copy host buffer, a KV cache in its own buffer written
// with set_rows and read by flash attention, a graph rebuilt per step with graph_reset, planned
// and computed. Checks: decoding token by token gives bit-identically the last-position output
// of one batched prompt pass; after warm-up a step (reset, build, alloc, set inputs, compute)
// makes no heap allocation; per-op statistics count the executed nodes; an unbound leaf and a
// recording error are clean errors; a zeroed buffer reads as zeros.
#include "backend_test.h"

enum { EMBD = 32, HEADS = 4, HEADS_KV = 2, HD = 8, FF = 48, VOCAB = 50, CTX = 16 };

struct model {
    struct tensor tok_embd, attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
    struct tensor k_cache, v_cache; // [HD * HEADS_KV, CTX] F16
    struct backend_buffer *weights, *kv;
    float *host; // weight storage (what an mmapped GGUF would be)
};

static enum llem_err model_init(struct model *m, struct backend *be, struct rng *r,
                                struct llem_errbuf *eb)
{
    struct {
        struct tensor *t;
        const char *name;
        int64_t ne0, ne1;
    } w[] = {
        {&m->tok_embd, "token_embd", EMBD, VOCAB},
        {&m->attn_norm, "attn_norm", EMBD, 1},
        {&m->wq, "wq", EMBD, EMBD},
        {&m->wk, "wk", EMBD, HD * HEADS_KV},
        {&m->wv, "wv", EMBD, HD * HEADS_KV},
        {&m->wo, "wo", EMBD, EMBD},
        {&m->ffn_norm, "ffn_norm", EMBD, 1},
        {&m->w_gate, "w_gate", EMBD, FF},
        {&m->w_up, "w_up", EMBD, FF},
        {&m->w_down, "w_down", FF, EMBD},
    };
    size_t total = 0;
    for (size_t i = 0; i < LLEM_ARRAY_LEN(w); i++) {
        enum llem_err e = tensor_init(w[i].t, GGML_TYPE_F32, 2,
                                      (const int64_t[]){w[i].ne0, w[i].ne1}, w[i].name, eb);
        if (e) {
            return e;
        }
        w[i].t->flags = TENSOR_FLAG_WEIGHT;
        total += tensor_nbytes(w[i].t);
    }
    m->host = llem_aligned_alloc(64, total);
    for (size_t i = 0; i < total / sizeof(float); i++) {
        m->host[i] = (float)rng_gaussian(r) * 0.3f;
    }
    enum llem_err e = backend_buffer_from_host_ptr(be, m->host, total, &m->weights, eb);
    size_t off = 0;
    for (size_t i = 0; e == LLEM_OK && i < LLEM_ARRAY_LEN(w); i++) {
        e = backend_tensor_bind(w[i].t, m->weights, off, eb);
        off += tensor_nbytes(w[i].t);
    }
    if (e) {
        return e;
    }
    tensor_init(&m->k_cache, GGML_TYPE_F16, 2, (const int64_t[]){HD * HEADS_KV, CTX}, "k", eb);
    tensor_init(&m->v_cache, GGML_TYPE_F16, 2, (const int64_t[]){HD * HEADS_KV, CTX}, "v", eb);
    size_t kvb = tensor_nbytes(&m->k_cache);
    e = backend_buffer_alloc(be, 2 * kvb, BACKEND_BUFFER_KV, &m->kv, eb);
    if (!e) {
        backend_buffer_clear(m->kv, 0);
        e = backend_tensor_bind(&m->k_cache, m->kv, 0, eb);
    }
    if (!e) {
        e = backend_tensor_bind(&m->v_cache, m->kv, kvb, eb);
    }
    return e;
}

static void model_deinit(struct model *m)
{
    backend_buffer_free(m->weights);
    backend_buffer_free(m->kv);
    llem_aligned_free(m->host);
}

struct step {
    struct tensor *tokens, *pos, *cells, *mask, *out;
};

// One layer, llama-style, written as an architecture file would: n tokens at positions
// p0..p0+n-1 attend to cache cells 0..p0+n-1.
static void forward(struct graph *gr, struct model *m, int n, int p0, struct step *s)
{
    const int n_kv = p0 + n;
    s->tokens = graph_input(gr, "tokens", GGML_TYPE_I32, n, 1, 1, 1);
    s->pos = graph_input(gr, "pos", GGML_TYPE_I32, n, 1, 1, 1);
    s->cells = graph_input(gr, "cells", GGML_TYPE_I64, n, 1, 1, 1);
    s->mask = graph_input(gr, "mask", GGML_TYPE_F16, n_kv, n, 1, 1);
    struct tensor *x = op_get_rows(gr, &m->tok_embd, s->tokens); // [EMBD, n]
    struct tensor *h = op_mul(gr, op_rms_norm(gr, x, 1e-5f), &m->attn_norm);
    struct op_rope_params rp = {.n_rot = HD,
                                .mode = ROPE_NORMAL,
                                .n_ctx_orig = CTX,
                                .freq_base = 10000.0f,
                                .freq_scale = 1.0f,
                                .attn_factor = 1.0f,
                                .beta_fast = 32.0f,
                                .beta_slow = 1.0f};
    struct tensor *q =
        op_rope(gr, op_reshape_3d(gr, op_mul_mat(gr, &m->wq, h), HD, HEADS, n), s->pos, NULL, &rp);
    struct tensor *k = op_rope(gr, op_reshape_3d(gr, op_mul_mat(gr, &m->wk, h), HD, HEADS_KV, n),
                               s->pos, NULL, &rp);
    struct tensor *v = op_mul_mat(gr, &m->wv, h); // [HD*HEADS_KV, n]
    op_set_rows(gr, &m->k_cache, op_reshape_2d(gr, k, HD * HEADS_KV, n), s->cells);
    op_set_rows(gr, &m->v_cache, v, s->cells);
    // Views of the cache cells in use, heads split: [HD, n_kv, HEADS_KV].
    struct tensor *kv_k =
        op_view_3d(gr, &m->k_cache, HD, n_kv, HEADS_KV, m->k_cache.nb[1], (size_t)HD * 2, 0);
    struct tensor *kv_v =
        op_view_3d(gr, &m->v_cache, HD, n_kv, HEADS_KV, m->v_cache.nb[1], (size_t)HD * 2, 0);
    struct tensor *a = op_flash_attn_ext(gr, op_permute(gr, q, 0, 2, 1, 3), kv_k, kv_v, s->mask,
                                         1.0f / sqrtf((float)HD), NULL); // [HD, HEADS, n]
    a = op_mul_mat(gr, &m->wo, op_reshape_2d(gr, a, EMBD, n));
    x = op_add(gr, x, a);
    h = op_mul(gr, op_rms_norm(gr, x, 1e-5f), &m->ffn_norm);
    h = op_swiglu(gr, op_mul_mat(gr, &m->w_gate, h), op_mul_mat(gr, &m->w_up, h));
    x = op_add(gr, x, op_mul_mat(gr, &m->w_down, h));
    s->out = op_rms_norm(gr, x, 1e-5f);
    graph_set_output(gr, s->out);
}

static void set_inputs(const struct step *s, const int32_t *toks, int n, int p0, uint16_t *mask_buf,
                       int32_t *pos_buf, int64_t *cell_buf)
{
    const int n_kv = p0 + n;
    for (int i = 0; i < n; i++) {
        pos_buf[i] = p0 + i;
        cell_buf[i] = p0 + i;
        for (int j = 0; j < n_kv; j++) {
            mask_buf[i * n_kv + j] = fp16_from_f32(j <= p0 + i ? 0.0f : -INFINITY);
        }
    }
    backend_tensor_set(s->tokens, toks, 0, (size_t)n * sizeof(int32_t));
    backend_tensor_set(s->pos, pos_buf, 0, (size_t)n * sizeof(int32_t));
    backend_tensor_set(s->cells, cell_buf, 0, (size_t)n * sizeof(int64_t));
    backend_tensor_set(s->mask, mask_buf, 0, (size_t)(n * n_kv) * sizeof(uint16_t));
}

static void test_decode_matches_prompt(void)
{
    struct llem_errbuf eb = {0};
    struct rng r;
    rng_seed(&r, 5);
    struct backend *be = NULL;
    struct backend_params bp = {.n_threads = 2, .stats = true};
    CHECK_OK(backend_new("cpu", &bp, &be, &eb), &eb);
    struct model m;
    CHECK_OK(model_init(&m, be, &r, &eb), &eb);
    struct graph *gr = NULL;
    struct backend_galloc *ga = NULL;
    CHECK_OK(graph_new(&gr, &eb), &eb);
    CHECK_OK(backend_galloc_new(be, &ga, &eb), &eb);
    const int32_t toks[8] = {3, 17, 42, 0, 9, 9, 31, 49};
    const int n = 8;
    uint16_t mask_buf[CTX * CTX];
    int32_t pos_buf[CTX];
    int64_t cell_buf[CTX];
    float prompt_out[EMBD], step_out[EMBD];
    struct step s;
    // Reserve with the largest graph (the prompt) so later steps never grow the buffer.
    forward(gr, &m, n, 0, &s);
    CHECK_OK(backend_galloc_reserve(ga, gr, &eb), &eb);
    size_t reserved = backend_galloc_buffer_size(ga);
    // 1) The whole prompt at once.
    CHECK_OK(backend_galloc_alloc_graph(ga, gr, &eb), &eb);
    set_inputs(&s, toks, n, 0, mask_buf, pos_buf, cell_buf);
    CHECK_OK(backend_graph_compute(be, gr, &eb), &eb);
    backend_tensor_get(s.out, prompt_out, (size_t)(n - 1) * EMBD * sizeof(float),
                       sizeof prompt_out);
    CHECK(be->stats[OP_MUL_MAT].count == 7);
    CHECK(be->stats[OP_FLASH_ATTN].count == 1);
    CHECK(be->stats[OP_SET_ROWS].count == 2);
    // 2) Token by token through the KV cache, counting allocations after the first step.
    backend_buffer_clear(m.kv, 0);
    uint64_t allocs = 0;
    for (int p = 0; p < n; p++) {
        uint64_t a0 = llem_alloc_count();
        graph_reset(gr);
        forward(gr, &m, 1, p, &s);
        CHECK_OK(backend_galloc_alloc_graph(ga, gr, &eb), &eb);
        set_inputs(&s, toks + p, 1, p, mask_buf, pos_buf, cell_buf);
        CHECK_OK(backend_graph_compute(be, gr, &eb), &eb);
        if (p > 0) {
            allocs += llem_alloc_count() - a0;
        }
    }
    CHECK_EQ_I64(allocs, 0);
    CHECK_EQ_I64(backend_galloc_buffer_size(ga), reserved);
    backend_tensor_get(s.out, step_out, 0, sizeof step_out);
    // Bit-identical: every kernel computes a row the same way whatever else is in the batch.
    for (int i = 0; i < EMBD; i++) {
        CHECK_NEAR(step_out[i], prompt_out[i], 0);
    }
    // Errors: an unbound leaf; a graph with a recording error.
    graph_reset(gr);
    struct tensor loose;
    CHECK_OK(tensor_init(&loose, GGML_TYPE_F32, 1, (const int64_t[]){EMBD}, "loose", &eb), &eb);
    graph_set_output(gr, op_silu(gr, &loose));
    CHECK_EQ_I64(backend_galloc_alloc_graph(ga, gr, &eb), LLEM_EINVAL);
    CHECK(strstr(eb.msg, "loose") != NULL);
    graph_reset(gr);
    op_mul_mat(gr, &m.wq, &m.w_down);
    CHECK_EQ_I64(backend_galloc_alloc_graph(ga, gr, &eb), LLEM_EINVAL);
    CHECK_EQ_I64(backend_graph_compute(be, gr, &eb), LLEM_EINVAL);
    backend_galloc_free(ga);
    graph_free(gr);
    model_deinit(&m);
    backend_free(be);
}

static void test_registry(void)
{
    struct llem_errbuf eb = {0};
    struct backend *be = NULL;
    CHECK(backend_reg_count() >= 1);
    CHECK_EQ_STR(backend_reg_get(0)->name, "cpu");
    CHECK(backend_reg_get(99) == NULL);
    CHECK_EQ_I64(backend_new("nope", NULL, &be, &eb), LLEM_ENOTFOUND);
    struct backend_params p = {.isa = "sse9"};
    CHECK_EQ_I64(backend_new("cpu", &p, &be, &eb), LLEM_EINVAL);
    CHECK_OK(backend_new("cpu", NULL, &be, &eb), &eb);
    CHECK_EQ_STR(backend_name(be), "cpu");
    backend_free(be);
    backend_free(NULL);
    backend_buffer_free(NULL);
    backend_galloc_free(NULL);
}

// Every byte of a zeroed buffer reads 0, whether its memory is fresh pages (left untouched)
// or a heap block a freed buffer of the same size had filled (cleared).
static void test_buffer_alloc_zeroed(void)
{
    struct llem_errbuf eb = {0};
    struct backend *be = NULL;
    CHECK_OK(backend_new("cpu", NULL, &be, &eb), &eb);
    const size_t sizes[] = {4096, 3 * 4096 + 100, 6u << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct backend_buffer *b = NULL;
        CHECK_OK(backend_buffer_alloc(be, sizes[k], BACKEND_BUFFER_KV, &b, &eb), &eb);
        backend_buffer_clear(b, 0xA5);
        backend_buffer_free(b);
        CHECK_OK(backend_buffer_alloc_zeroed(be, sizes[k], BACKEND_BUFFER_KV, &b, &eb), &eb);
        const unsigned char *p = b->base;
        size_t nonzero = 0;
        for (size_t i = 0; i < sizes[k]; i++) {
            nonzero += p[i] != 0;
        }
        CHECK_EQ_I64((int64_t)nonzero, 0);
        backend_buffer_free(b);
    }
    backend_free(be);
}

int main(void)
{
    RUN_TEST(test_decode_matches_prompt);
    RUN_TEST(test_registry);
    RUN_TEST(test_buffer_alloc_zeroed);
    return TEST_EXIT();
}
