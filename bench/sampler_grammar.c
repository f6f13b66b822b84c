// bench/sampler_grammar.c: decode speed with and without a JSON-schema grammar on a real model
// (default build/models/tinyllama-1.1b-Q4_0.gguf; argv[1] overrides, argv[2] = tokens). Three
// runs of the same length from the same prompt: no grammar, grammar via grammar_sample (sample,
// then check; mask only on rejection) and grammar via the full-vocabulary filter every step.
// Reports tokens/s, the grammar's own ns/token and allocations/token, and the cost in percent.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "base/alloc.h"
#include "model/model.h"
#include "sampler/grammar.h"
#include "sampler/sampler.h"
#include "tokenizer/tokenizer.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static size_t piece_fn(void *user, int32_t id, char *buf, size_t cap, bool *eog)
{
    const struct tok_vocab *v = user;
    *eog = tok_is_eog(v, id);
    return tok_piece(v, id, false, buf, cap);
}

static const char SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":"
    "\"integer\",\"minimum\":0,\"maximum\":150},\"tags\":{\"type\":\"array\",\"items\":{\"type\":"
    "\"string\"}},\"bio\":{\"type\":\"string\"}},\"required\":[\"name\",\"age\",\"tags\",\"bio\"]}";

// mode 0: no grammar, 1: grammar_sample, 2: full filter each step
static int run(struct model *m, struct tok_vocab *v, struct grammar *g, int mode, int n_tok,
               const llem_token *prompt, int n_prompt, double *tok_s, double *gram_ns,
               double *allocs, char *text, size_t text_cap)
{
    struct llem_errbuf eb = {0};
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 64;
    struct model_ctx *ctx = NULL;
    struct sampler *smp = NULL;
    struct sampler_params sp = sampler_params_default();
    sp.seed = 1234;
    if (model_ctx_new(m, &cp, &ctx, &eb) || sampler_new(&smp, &sp, m->hp.n_vocab, 512, &eb)) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        return 1;
    }
    llem_pos pos[64];
    llem_seq seq[64] = {0};
    int8_t out[64] = {0};
    for (int i = 0; i < n_prompt; i++) {
        pos[i] = i;
    }
    out[n_prompt - 1] = 1;
    struct ubatch ub = {.n_tokens = n_prompt, .tokens = prompt, .pos = pos, .seq = seq, .output = out};
    if (model_ctx_decode(ctx, &ub, &eb)) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        return 1;
    }
    if (g) {
        grammar_reset(g);
    }
    double t_gram = 0, t0 = now_ns();
    uint64_t a_gram = 0;
    size_t used = 0;
    int n = 0;
    for (; n < n_tok; n++) {
        const float *logits = model_ctx_logits(ctx, 0);
        llem_token tok;
        enum llem_err e;
        double tg = now_ns();
        uint64_t a0 = llem_alloc_count();
        if (mode == 1) {
            grammar_set_finish(g, n_tok - n <= grammar_min_remaining(g) + 4);
            e = grammar_sample(g, smp, logits, &tok, &eb);
        } else if (mode == 2) {
            grammar_set_finish(g, n_tok - n <= grammar_min_remaining(g) + 4);
            sampler_set_filter(smp, grammar_filter, g);
            e = sampler_sample(smp, logits, &tok, &eb);
            if (!e) {
                e = grammar_accept(g, tok, &eb);
            }
        } else {
            e = sampler_sample(smp, logits, &tok, &eb);
        }
        if (mode) {
            t_gram += now_ns() - tg;
            a_gram += llem_alloc_count() - a0;
        }
        if (e) {
            fprintf(stderr, "bench: %s\n", eb.msg);
            return 1;
        }
        if (tok_is_eog(v, tok)) {
            break;
        }
        size_t k = tok_piece(v, tok, false, text + used, text_cap - used - 1);
        used += k < text_cap - used - 1 ? k : 0;
        llem_pos p = n_prompt + n;
        int8_t o = 1;
        struct ubatch u1 = {.n_tokens = 1, .tokens = &tok, .pos = &p, .seq = seq, .output = &o};
        if (model_ctx_decode(ctx, &u1, &eb)) {
            fprintf(stderr, "bench: %s\n", eb.msg);
            return 1;
        }
    }
    text[used] = 0;
    double dt = now_ns() - t0;
    *tok_s = n > 0 ? n / (dt / 1e9) : 0;
    *gram_ns = n > 0 ? t_gram / n : 0;
    *allocs = n > 0 ? (double)a_gram / n : 0;
    if (mode == 0) { // sampling alone, for reference
        *gram_ns = 0;
    }
    sampler_free(smp);
    model_ctx_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "build/models/tinyllama-1.1b-Q4_0.gguf";
    int n_tok = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 48;
    struct llem_errbuf eb = {0};
    struct backend *be = NULL;
    struct model *m = NULL;
    struct tok_vocab *v = NULL;
    struct grammar_vocab *gv = NULL;
    struct grammar_rules *r = NULL;
    struct grammar *g = NULL;
    struct backend_params bp = {.n_threads = 0};
    if (backend_new("cpu", &bp, &be, &eb) || model_load(path, NULL, be, &m, &eb) ||
        tok_vocab_load(&v, m->gguf, &eb)) {
        fprintf(stderr, "bench: %s: %s\n", path, eb.msg);
        return 1;
    }
    double t0 = now_ns();
    if (grammar_vocab_new(&gv, tok_n_vocab(v), piece_fn, v, &eb)) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        return 1;
    }
    double t_trie = now_ns() - t0;
    t0 = now_ns();
    if (grammar_rules_schema(&r, SCHEMA, strlen(SCHEMA), &eb) || grammar_new(&g, r, gv, &eb)) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        return 1;
    }
    double t_comp = now_ns() - t0;
    printf("model %s, n_vocab %d: trie %.1f ms, schema compile %.2f ms\n", path, tok_n_vocab(v),
           t_trie / 1e6, t_comp / 1e6);
    const char *text = "Describe a person as JSON:";
    llem_token prompt[64];
    size_t n_prompt = 0;
    if (tok_encode(v, text, strlen(text), true, false, prompt, 64, &n_prompt, &eb)) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        return 1;
    }
    static const char *names[3] = {"no grammar", "grammar_sample", "full filter"};
    double base = 0;
    static char out[1 << 16];
    for (int mode = 0; mode < 3; mode++) {
        double ts, gns, al;
        if (run(m, v, mode ? g : NULL, mode, n_tok, prompt, (int)n_prompt, &ts, &gns, &al, out,
                sizeof out)) {
            return 1;
        }
        if (mode == 0) {
            base = ts;
        }
        printf("%-15s tg%d: %7.2f tok/s (%+.1f%%)  grammar %9.0f ns/token (%.2f%% of a token's "
               "time)  %.1f allocs/token\n",
               names[mode], n_tok, ts, base > 0 ? (ts / base - 1) * 100 : 0, gns,
               ts > 0 ? gns * ts / 1e7 : 0, al);
        if (mode) {
            printf("  output: %.200s\n", out);
        }
    }
    grammar_free(g);
    grammar_rules_free(r);
    grammar_vocab_free(gv);
    tok_vocab_free(v);
    model_free(m);
    backend_free(be);
    return 0;
}
