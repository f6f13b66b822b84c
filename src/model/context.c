// model/context.c: the inference context: KV cache, graph, compute memory and output logits of
// one model, and decoding a batch (record the forward, plan, upload inputs, compute, read back
// the logits). Flash attention is chosen here (on by default where supported).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "model/layers.h"

struct model_ctx {
    struct model *m;
    struct model_ctx_params p;
    bool flash_attn;
    struct kv_cache kv;
    struct graph *gr;
    struct backend_galloc *ga;
    float *logits;           // [n_outputs][n_vocab] of the last decode ([n_embd] rows when
    bool out_embd;           // out_embd: an embeddings decode)
    size_t logits_cap;       // floats allocated (grows to the largest n_outputs seen)
    int32_t n_outputs;
    int32_t *out_ids;        // [n_batch] scratch: batch rows whose logits are wanted
};

struct model_ctx_params model_ctx_default_params(void)
{
    return (struct model_ctx_params){.n_ctx = 4096, .n_batch = 512, .n_seq_max = 1,
                                     .type_k = GGML_TYPE_F16, .type_v = GGML_TYPE_F16,
                                     .flash_attn = -1};
}

static struct kv_cache_params kv_params_for(const struct model *m, const struct model_ctx_params *p,
                                           bool flash_attn)
{
    const struct hparams *hp = &m->hp;
    return (struct kv_cache_params){
        .cells = {.kind = KV_CAUSAL, .n_seq_max = p->n_seq_max, .n_ctx_seq = p->n_ctx,
                  .n_batch_max = p->n_batch, .padding = 1, .mask_f16 = flash_attn},
        .n_layer = hp->n_layer,
        .n_embd_k = hp->head_dim * hp->n_head_kv,
        .n_embd_v = hp->head_dim_v * hp->n_head_kv,
        .type_k = p->type_k,
        .type_v = p->type_v,
        .v_trans = !flash_attn,
    };
}

size_t model_ctx_kv_bytes(const struct model *m, const struct model_ctx_params *p)
{
    struct kv_cache_params kp = kv_params_for(m, p, true);
    return kv_cache_bytes(&kp);
}

size_t model_mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) {
        return 0;
    }
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return (size_t)kb * 1024;
}

int32_t model_fit_n_ctx(const struct model *m, int32_t want, int32_t n_seq, size_t budget_bytes)
{
    const char *env = getenv("LLEM_CONTEXT_LENGTH");
    if (want <= 0 && env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v > 0 && v < (1L << 24)) {
            want = (int32_t)v;
        } else {
            log_warn("ignoring LLEM_CONTEXT_LENGTH='%s' (not a positive integer)", env);
        }
    }
    if (want <= 0) {
        want = 16384;
    }
    int32_t n_ctx = want;
    if (m->hp.n_ctx_train > 0 && n_ctx > m->hp.n_ctx_train) {
        log_info("context %d clamped to the model's trained context %d", n_ctx,
                 m->hp.n_ctx_train);
        n_ctx = m->hp.n_ctx_train;
    }
    if (budget_bytes == 0) {
        budget_bytes = model_mem_available() / 2;
    }
    struct model_ctx_params p = model_ctx_default_params();
    p.n_seq_max = n_seq > 0 ? n_seq : 1;
    for (;;) {
        p.n_ctx = n_ctx;
        size_t need = model_ctx_kv_bytes(m, &p);
        if (budget_bytes == 0 || need <= budget_bytes || n_ctx <= 256) {
            break;
        }
        int32_t lower = n_ctx / 2 < 256 ? 256 : n_ctx / 2;
        log_info("context %d needs %zu MiB of KV cache, more than the %zu MiB budget: using %d",
                 n_ctx, need >> 20, budget_bytes >> 20, lower);
        n_ctx = lower;
    }
    return n_ctx;
}

// Flash attention: on unless the model can't use it (K and V head sizes differ) or the user
// said no (LLEM_FLASH_ATTENTION=0, or the params).
static bool choose_flash_attn(const struct model *m, int requested)
{
    int want = requested;
    const char *env = getenv("LLEM_FLASH_ATTENTION");
    if (env && *env) {
        want = (strcmp(env, "0") == 0 || strcmp(env, "false") == 0) ? 0 : 1;
    }
    bool supported = m->hp.head_dim == m->hp.head_dim_v;
    bool on = want != 0 && supported;
    if (want == 1 && !supported) {
        log_warn("flash attention requested but not supported by this model (K/V head sizes "
                 "%d/%d); using the softmax path", m->hp.head_dim, m->hp.head_dim_v);
    }
    log_info("flash attention: %s (%s)", on ? "on" : "off",
             want == 0 ? "disabled by the user" : supported ? "supported" : "unsupported");
    return on;
}

enum llem_err model_ctx_new(struct model *m, const struct model_ctx_params *params,
                            struct model_ctx **out, struct llem_errbuf *eb)
{
    *out = NULL;
    struct model_ctx_params p = *params;
    if (p.n_ctx < 1 || p.n_batch < 1 || p.n_seq_max < 1 || p.n_seq_max > KV_MAX_SEQ) {
        return llem_errf(eb, LLEM_EINVAL, "bad context parameters (n_ctx %d, n_batch %d, %d "
                         "sequences; at most %d)", p.n_ctx, p.n_batch, p.n_seq_max, KV_MAX_SEQ);
    }
    if (p.n_batch > p.n_ctx * p.n_seq_max) {
        p.n_batch = p.n_ctx * p.n_seq_max;
    }
    struct model_ctx *c = llem_calloc(1, sizeof *c);
    if (!c) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    c->m = m;
    c->flash_attn = choose_flash_attn(m, p.flash_attn);
    bool quant_kv = (p.type_k != GGML_TYPE_F16 && p.type_k != GGML_TYPE_F32) ||
                    (p.type_v != GGML_TYPE_F16 && p.type_v != GGML_TYPE_F32);
    if (quant_kv && !c->flash_attn) {
        log_warn("quantized KV cache (%s/%s) needs flash attention: using f16",
                 tensor_type_name(p.type_k), tensor_type_name(p.type_v));
        p.type_k = p.type_v = GGML_TYPE_F16;
    }
    c->p = p;
    struct kv_cache_params kp = kv_params_for(m, &p, c->flash_attn);
    enum llem_err rc = kv_cache_init(&c->kv, m->be, &kp, eb);
    if (rc == LLEM_OK) {
        rc = graph_new(&c->gr, eb);
    }
    if (rc == LLEM_OK) {
        rc = backend_galloc_new(m->be, &c->ga, eb);
    }
    c->out_ids = llem_malloc((size_t)p.n_batch * sizeof *c->out_ids);
    if (rc == LLEM_OK && !c->out_ids) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    if (rc != LLEM_OK) {
        model_ctx_free(c);
        return rc;
    }
    *out = c;
    return LLEM_OK;
}

void model_ctx_free(struct model_ctx *c)
{
    if (!c) {
        return;
    }
    kv_cache_deinit(&c->kv);
    graph_free(c->gr);
    backend_galloc_free(c->ga);
    llem_free(c->logits);
    llem_free(c->out_ids);
    llem_free(c);
}

const struct model_ctx_params *model_ctx_params(const struct model_ctx *c)
{
    return &c->p;
}

bool model_ctx_flash_attn(const struct model_ctx *c)
{
    return c->flash_attn;
}

const struct model *model_ctx_model(const struct model_ctx *c)
{
    return c->m;
}

struct kv_cache *model_ctx_kv(struct model_ctx *c)
{
    return &c->kv;
}

static enum llem_err check_batch(const struct model_ctx *c, const struct ubatch *ub,
                                 struct llem_errbuf *eb)
{
    if (ub->n_tokens < 1 || ub->n_tokens > c->p.n_batch) {
        return llem_errf(eb, LLEM_EINVAL, "batch of %d tokens (1..%d allowed)", ub->n_tokens,
                         c->p.n_batch);
    }
    for (int32_t i = 0; i < ub->n_tokens; i++) {
        if (ub->tokens[i] < 0 || ub->tokens[i] >= c->m->hp.n_vocab) {
            return llem_errf(eb, LLEM_EINVAL, "token id %d is outside the vocabulary (%d)",
                             ub->tokens[i], c->m->hp.n_vocab);
        }
        if (ub->pos[i] < 0 || ub->pos[i] >= (1 << 30)) {
            return llem_errf(eb, LLEM_EINVAL, "position %d is out of range", ub->pos[i]);
        }
    }
    return LLEM_OK;
}

static enum llem_err ensure_logits(struct model_ctx *c, int32_t n_outputs, int32_t row,
                                   struct llem_errbuf *eb)
{
    size_t need = (size_t)n_outputs * (size_t)row;
    if (need <= c->logits_cap) {
        return LLEM_OK;
    }
    float *l = llem_malloc(need * sizeof *l);
    if (!l) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory for %d rows of logits", n_outputs);
    }
    llem_free(c->logits);
    c->logits = l;
    c->logits_cap = need;
    return LLEM_OK;
}

enum llem_err model_ctx_decode(struct model_ctx *c, const struct ubatch *ub_in,
                               struct llem_errbuf *eb)
{
    enum llem_err rc = check_batch(c, ub_in, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct ubatch ub = *ub_in;
    int32_t n_out = 0;
    for (int32_t i = 0; i < ub.n_tokens; i++) {
        if (!ub.output || ub.output[i]) {
            c->out_ids[n_out++] = i;
        }
    }
    if (n_out == 0) { // nothing wanted: still compute the last row (cheap, keeps shapes simple)
        c->out_ids[n_out++] = ub.n_tokens - 1;
    }
    const int32_t row = ub.embeddings ? c->m->hp.n_embd : c->m->hp.n_vocab;
    if ((rc = ensure_logits(c, n_out, row, eb)) != LLEM_OK) {
        return rc;
    }
    rc = kv_cells_start(&c->kv.cells, ub.n_tokens, ub.pos, ub.seq, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    graph_reset(c->gr);
    ub.inp_tokens = graph_input(c->gr, "inp_tokens", GGML_TYPE_I32, ub.n_tokens, 1, 1, 1);
    ub.inp_pos = graph_input(c->gr, "inp_pos", GGML_TYPE_I32, ub.n_tokens, 1, 1, 1);
    ub.inp_out_ids = n_out < ub.n_tokens
                         ? graph_input(c->gr, "inp_out_ids", GGML_TYPE_I32, n_out, 1, 1, 1)
                         : NULL;
    ub.n_outputs = n_out;
    struct kv_inputs kvi;
    kv_cache_graph_inputs(&c->kv, c->gr, &kvi);
    struct tensor *logits = c->m->arch->build_forward(c->gr, c->m, &ub, &c->kv, &kvi,
                                                      c->flash_attn);
    graph_set_output(c->gr, logits);
    if ((rc = graph_error(c->gr, eb)) != LLEM_OK ||
        (rc = backend_galloc_alloc_graph(c->ga, c->gr, eb)) != LLEM_OK) {
        kv_cells_rollback(&c->kv.cells, ub.seq);
        return rc;
    }
    backend_tensor_set(ub.inp_tokens, ub.tokens, 0, (size_t)ub.n_tokens * sizeof(int32_t));
    backend_tensor_set(ub.inp_pos, ub.pos, 0, (size_t)ub.n_tokens * sizeof(int32_t));
    if (ub.inp_out_ids) {
        backend_tensor_set(ub.inp_out_ids, c->out_ids, 0, (size_t)n_out * sizeof(int32_t));
    }
    kv_cache_set_inputs(&c->kv, &kvi);
    if ((rc = backend_graph_compute(c->m->be, c->gr, eb)) != LLEM_OK) {
        kv_cells_rollback(&c->kv.cells, ub.seq);
        return rc;
    }
    backend_tensor_get(logits, c->logits, 0, (size_t)n_out * (size_t)row * sizeof(float));
    c->n_outputs = n_out;
    c->out_embd = ub.embeddings;
    return LLEM_OK;
}

const float *model_ctx_logits(const struct model_ctx *c, int32_t i)
{
    if (i < 0 || i >= c->n_outputs || c->out_embd) {
        return NULL;
    }
    return c->logits + (size_t)i * (size_t)c->m->hp.n_vocab;
}

const float *model_ctx_embeddings(const struct model_ctx *c, int32_t i)
{
    if (i < 0 || i >= c->n_outputs || !c->out_embd) {
        return NULL;
    }
    return c->logits + (size_t)i * (size_t)c->m->hp.n_embd;
}

// Mean pooling in double (the sum does not depend on how the rows were chunked beyond float
// rounding of each row), then L2 normalisation as Ollama's /api/embed returns.
enum llem_err model_ctx_embed(struct model_ctx *c, llem_seq seq, const llem_token *tokens,
                              int32_t n, float *out, struct llem_errbuf *eb)
{
    const int32_t n_embd = c->m->hp.n_embd;
    if (n < 1 || n > c->p.n_ctx || seq < 0 || seq >= c->p.n_seq_max) {
        return llem_errf(eb, LLEM_EINVAL, "embedding of %d tokens in sequence %d (1..%d tokens, "
                         "sequences 0..%d)", n, seq, c->p.n_ctx, c->p.n_seq_max - 1);
    }
    const int32_t nb = c->p.n_batch;
    double *acc = llem_calloc((size_t)n_embd, sizeof *acc);
    llem_pos *pos = llem_malloc((size_t)nb * sizeof *pos);
    llem_seq *sq = llem_malloc((size_t)nb * sizeof *sq);
    enum llem_err rc = LLEM_OK;
    if (!acc || !pos || !sq) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    if (rc == LLEM_OK) {
        rc = model_ctx_seq_remove(c, seq, 0, -1, eb);
    }
    for (int32_t at = 0; rc == LLEM_OK && at < n; at += nb) {
        const int32_t k = n - at < nb ? n - at : nb;
        for (int32_t j = 0; j < k; j++) {
            pos[j] = at + j;
            sq[j] = seq;
        }
        struct ubatch ub = {.n_tokens = k, .tokens = tokens + at, .pos = pos, .seq = sq,
                            .output = NULL, .embeddings = true};
        rc = model_ctx_decode(c, &ub, eb);
        for (int32_t j = 0; rc == LLEM_OK && j < k; j++) {
            const float *e = model_ctx_embeddings(c, j);
            for (int32_t d = 0; d < n_embd; d++) {
                acc[d] += (double)e[d];
            }
        }
    }
    if (rc == LLEM_OK) {
        double ss = 0;
        for (int32_t d = 0; d < n_embd; d++) {
            acc[d] /= n;
            ss += acc[d] * acc[d];
        }
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (int32_t d = 0; d < n_embd; d++) {
            out[d] = (float)(acc[d] * inv);
        }
    }
    model_ctx_seq_remove(c, seq, 0, -1, NULL); // nothing stays behind, success or not
    llem_free(acc);
    llem_free(pos);
    llem_free(sq);
    return rc;
}

// Re-applies RoPE by each moved cell's position delta to the stored keys of every layer.
static enum llem_err rope_shift(struct model_ctx *c, const struct kv_shift *sh,
                                struct llem_errbuf *eb)
{
    const struct hparams *hp = &c->m->hp;
    int32_t *delta = llem_malloc((size_t)sh->n_cells * sizeof *delta);
    if (!delta) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    kv_cells_shift_deltas(&c->kv.cells, sh, delta);
    graph_reset(c->gr);
    struct tensor *pos = graph_input(c->gr, "shift_pos", GGML_TYPE_I32, sh->n_cells, 1, 1, 1);
    const struct op_rope_params rp = layer_rope_params(c->m);
    for (int il = 0; il < hp->n_layer; il++) {
        struct tensor *k = &c->kv.k[il];
        const size_t head = tensor_row_size(k->type, hp->head_dim);
        struct tensor *view = op_view_3d(c->gr, k, hp->head_dim, hp->n_head_kv, sh->n_cells,
                                         head, k->nb[1], (size_t)sh->first_cell * k->nb[1]);
        struct tensor *f = op_cont_type(c->gr, view, GGML_TYPE_F32);
        struct tensor *r = op_rope(c->gr, f, pos, c->m->rope_freqs, &rp);
        graph_set_output(c->gr, op_cpy(c->gr, r, view));
    }
    enum llem_err rc;
    if ((rc = graph_error(c->gr, eb)) == LLEM_OK &&
        (rc = backend_galloc_alloc_graph(c->ga, c->gr, eb)) == LLEM_OK) {
        backend_tensor_set(pos, delta, 0, (size_t)sh->n_cells * sizeof *delta);
        rc = backend_graph_compute(c->m->be, c->gr, eb);
    }
    llem_free(delta);
    return rc;
}

enum llem_err model_ctx_seq_remove(struct model_ctx *c, llem_seq seq, llem_pos begin,
                                   llem_pos end, struct llem_errbuf *eb)
{
    struct kv_shift sh;
    enum llem_err rc = kv_cells_remove(&c->kv.cells, seq, begin, end, &sh, eb);
    if (rc != LLEM_OK || sh.n_cells == 0) {
        return rc;
    }
    return rope_shift(c, &sh, eb);
}

void model_ctx_seq_copy_prefix(struct model_ctx *c, llem_seq src, llem_seq dst, llem_pos len)
{
    kv_cells_copy_prefix(&c->kv.cells, src, dst, len);
}

void model_ctx_clear(struct model_ctx *c)
{
    kv_cache_clear(&c->kv);
}
