// cli/engine.c: backend + model + tokenizer opening and batched prompt decoding for the
// file-level verbs.
#include "cli/engine.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu.h"
#include "base/alloc.h"

double cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int cli_engine_open(struct cli_engine *e, const char *verb, const char *path, int n_threads,
                    bool want_vocab)
{
    memset(e, 0, sizeof *e);
    struct llem_errbuf eb = {0};
    double t0 = cli_now_ms();
    struct backend_params bp = {.n_threads = n_threads};
    if (backend_new("cpu", &bp, &e->be, &eb) != LLEM_OK) {
        fprintf(stderr, "llem %s: %s\n", verb, eb.msg);
        return 1;
    }
    char prepared[4096];
    const struct model_params mp = {
        .prepared_dir = model_default_prepared_dir(prepared, sizeof prepared) ? prepared : NULL};
    if (model_load(path, &mp, e->be, &e->model, &eb) != LLEM_OK) {
        fprintf(stderr, "llem %s: %s\n", verb, eb.msg);
        cli_engine_close(e);
        return 1;
    }
    if (want_vocab) {
        if (tok_vocab_load(&e->vocab, e->model->gguf, &eb) != LLEM_OK) {
            fprintf(stderr, "llem %s: %s: %s\n", verb, path, eb.msg);
            cli_engine_close(e);
            return 1;
        }
        if (tok_n_vocab(e->vocab) != e->model->hp.n_vocab) {
            fprintf(stderr, "llem %s: %s: tokenizer has %d tokens but the model %d\n", verb,
                    path, tok_n_vocab(e->vocab), e->model->hp.n_vocab);
            cli_engine_close(e);
            return 1;
        }
    }
    e->load_ms = cli_now_ms() - t0;
    return 0;
}

int cli_vocab_open(const char *verb, const char *path, struct tok_vocab **out)
{
    struct llem_errbuf eb = {0};
    struct gguf_file *f = NULL;
    struct gguf_open_opts opts = {.metadata_only = true};
    if (gguf_open(&f, path, &opts, &eb) != LLEM_OK) {
        fprintf(stderr, "llem %s: %s\n", verb, eb.msg);
        return 1;
    }
    enum llem_err e = tok_vocab_load(out, f, &eb);
    gguf_close(f);
    if (e != LLEM_OK) {
        fprintf(stderr, "llem %s: %s: %s\n", verb, path, eb.msg);
        return 1;
    }
    return 0;
}

void cli_engine_close(struct cli_engine *e)
{
    tok_vocab_free(e->vocab);
    model_free(e->model);
    backend_free(e->be);
    memset(e, 0, sizeof *e);
}

enum llem_err cli_decode_tokens(struct model_ctx *ctx, const llem_token *tokens, int32_t n,
                                llem_pos pos0, llem_seq seq, bool all_logits, float *out_logits,
                                struct llem_errbuf *eb)
{
    const int32_t n_batch = model_ctx_params(ctx)->n_batch;
    llem_pos *pos = llem_malloc((size_t)n_batch * sizeof *pos);
    llem_seq *seqs = llem_malloc((size_t)n_batch * sizeof *seqs);
    int8_t *out = llem_malloc((size_t)n_batch);
    enum llem_err rc = LLEM_OK;
    if (!pos || !seqs || !out) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    for (int32_t done = 0; rc == LLEM_OK && done < n; done += n_batch) {
        int32_t m = LLEM_MIN(n_batch, n - done);
        for (int32_t i = 0; i < m; i++) {
            pos[i] = pos0 + done + i;
            seqs[i] = seq;
            out[i] = all_logits || done + i == n - 1;
        }
        struct ubatch ub = {.n_tokens = m, .tokens = tokens + done, .pos = pos, .seq = seqs,
                            .output = out};
        rc = model_ctx_decode(ctx, &ub, eb);
        if (rc == LLEM_OK && all_logits && out_logits) {
            for (int32_t i = 0; i < m; i++) {
                const float *row = model_ctx_logits(ctx, i);
                size_t nv = (size_t)model_ctx_model(ctx)->hp.n_vocab;
                memcpy(out_logits + (size_t)(done + i) * nv, row, nv * sizeof(float));
            }
        }
    }
    llem_free(pos);
    llem_free(seqs);
    llem_free(out);
    return rc;
}
