// tests/unit/runner_test.h: helpers the runner tests share: opening a shared GGUF (backend,
// model, vocab), a plain single-sequence greedy reference loop on model_ctx (independent of
// the runner), and collecting a runner task's events into a string.
#pragma once
#include <string.h>

#include "backend/backend.h"
#include "base/alloc.h"
#include "check.h"
#include "runner/runner.h"

struct rt_model {
    struct backend *be;
    struct model *m;
    struct tok_vocab *v;
};

// Opens models/<rel> from ../shared; skips the test when it is absent.
static inline void rt_open(struct rt_model *o, const char *rel)
{
    char path[1024];
    test_shared_path(path, sizeof path, rel);
    struct llem_errbuf eb = {0};
    struct backend_params bp = {.n_threads = 1};
    memset(o, 0, sizeof *o);
    if (backend_new("cpu", &bp, &o->be, &eb) != LLEM_OK ||
        model_load(path, NULL, o->be, &o->m, &eb) != LLEM_OK ||
        tok_vocab_load(&o->v, o->m->gguf, &eb) != LLEM_OK) {
        fprintf(stderr, "cannot open %s: %s\n", path, eb.msg);
        exit(1);
    }
}

static inline void rt_close(struct rt_model *o)
{
    tok_vocab_free(o->v);
    model_free(o->m);
    backend_free(o->be);
}

// Deterministic prompt i: BOS then n tokens from a seeded generator over "ordinary" ids.
static inline int32_t rt_prompt(const struct rt_model *o, int i, int n, llem_token *out)
{
    int32_t k = 0;
    llem_token bos = tok_bos(o->v);
    if (bos >= 0) {
        out[k++] = bos;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    int32_t nv = tok_n_vocab(o->v);
    while (k < n) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        llem_token t = (llem_token)((x >> 33) % (uint64_t)nv);
        if (tok_attr(o->v, t) & (TOK_ATTR_CONTROL | TOK_ATTR_EOG | TOK_ATTR_UNKNOWN |
                                 TOK_ATTR_UNUSED)) {
            continue;
        }
        out[k++] = t;
    }
    return k;
}

// A sampler filter that forbids end-of-generation tokens (user = the vocab).
static inline bool rt_no_eog(void *user, float *logits, const int32_t *ids, int32_t n)
{
    const struct tok_vocab *v = user;
    if (!ids) {
        n = tok_n_vocab(v);
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t id = ids ? ids[i] : i;
        if (tok_is_eog(v, id)) {
            logits[id] = -INFINITY;
        }
    }
    return true;
}

static inline struct runner_task_params rt_greedy(const llem_token *prompt, int32_t n,
                                                  int32_t num_predict)
{
    struct runner_task_params tp = {.prompt = prompt, .n_prompt = n, .num_predict = num_predict,
                                    .num_keep = 4, .want_context = true};
    tp.sampling = sampler_params_default();
    tp.sampling.temperature = 0;
    return tp;
}

// The outcome of one task.
struct rt_result {
    char text[8192];
    size_t len;
    enum runner_event_kind kind;
    enum llem_err err;
    const char *reason;
    struct runner_stats st;
    llem_token ctx[4096];
    int32_t n_ctx;
};

// Reads a task's events until DONE/ERROR (waits forever: the runner never stalls).
static inline void rt_collect(struct runner_task *t, struct rt_result *res)
{
    memset(res, 0, sizeof *res);
    struct runner_event ev;
    while (runner_task_next(t, &ev, -1)) {
        if (ev.kind == RUNNER_EV_PIECE) {
            size_t n = LLEM_MIN(ev.len, sizeof res->text - 1 - res->len);
            memcpy(res->text + res->len, ev.text, n);
            res->len += n;
        } else {
            res->kind = ev.kind;
            res->err = ev.error.code;
            res->reason = ev.done_reason;
            res->st = ev.stats;
            res->n_ctx = LLEM_MIN(ev.n_context, 4096);
            if (ev.context) {
                memcpy(res->ctx, ev.context, (size_t)res->n_ctx * sizeof *res->ctx);
            }
        }
        runner_event_clear(&ev);
    }
    res->text[res->len] = '\0';
}

// Submits and collects one task.
static inline enum llem_err rt_run(struct runner *r, const struct runner_task_params *tp,
                                   struct rt_result *res)
{
    struct runner_task *t;
    struct llem_errbuf eb = {0};
    enum llem_err rc = runner_submit(r, tp, &t, &eb);
    if (rc != LLEM_OK) {
        fprintf(stderr, "submit: %s\n", eb.msg);
        return rc;
    }
    rt_collect(t, res);
    runner_task_release(t);
    return LLEM_OK;
}

static inline int32_t rt_argmax(const float *l, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) {
        if (l[i] > l[best]) {
            best = i;
        }
    }
    return best;
}

// Greedy reference on a private one-sequence context: decodes the prompt, then generates up
// to n_gen tokens (stopping at end of generation unless no_eog), written to out. Returns the
// count, or -1 on error.
static inline int32_t rt_reference(const struct rt_model *o, int32_t n_ctx, const llem_token *p,
                                   int32_t n, int32_t n_gen, bool no_eog, llem_token *out)
{
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = 64;
    struct model_ctx *c;
    struct llem_errbuf eb = {0};
    if (model_ctx_new(o->m, &cp, &c, &eb) != LLEM_OK) {
        fprintf(stderr, "reference: %s\n", eb.msg);
        return -1;
    }
    llem_pos pos[64];
    llem_seq seq[64] = {0};
    int8_t outf[64];
    int32_t k = 0, nv = o->m->hp.n_vocab;
    for (int32_t done = 0; done < n; done += 64) {
        int32_t m = LLEM_MIN(64, n - done);
        for (int32_t i = 0; i < m; i++) {
            pos[i] = done + i;
            outf[i] = done + i == n - 1;
        }
        struct ubatch ub = {.n_tokens = m, .tokens = p + done, .pos = pos, .seq = seq,
                            .output = outf};
        if (model_ctx_decode(c, &ub, &eb) != LLEM_OK) {
            goto fail;
        }
    }
    for (llem_pos at = n; k < n_gen; at++) {
        float *l = (float *)model_ctx_logits(c, 0);
        if (no_eog) {
            rt_no_eog(o->v, l, NULL, 0);
        }
        llem_token t = rt_argmax(l, nv);
        if (tok_is_eog(o->v, t)) {
            break;
        }
        out[k++] = t;
        if (k == n_gen) {
            break;
        }
        int8_t one = 1;
        struct ubatch ub = {.n_tokens = 1, .tokens = &t, .pos = &at, .seq = seq, .output = &one};
        if (model_ctx_decode(c, &ub, &eb) != LLEM_OK) {
            goto fail;
        }
    }
    model_ctx_free(c);
    return k;
fail:
    fprintf(stderr, "reference decode: %s\n", eb.msg);
    model_ctx_free(c);
    return -1;
}
