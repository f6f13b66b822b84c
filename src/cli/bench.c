// cli/bench.c: `llem bench`: prompt processing (pp) and text generation (tg) throughput in
// llama-bench's terms, printed as a markdown table with mean +- stddev over repetitions.
// --parallel N measures aggregate decode of N sequences decoded together; --ctx D measures
// at D tokens of filled context (llama-bench -d). Output is validated (finite logits) before
// anything is timed.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/rng.h"
#include "cli/cli.h"
#include "backend/cpu/cpu.h"
#include "cli/engine.h"

struct bench_opts {
    const char *path;
    int64_t n_prompt, n_gen, threads, reps, parallel, depth, batch;
    int flash_attn;
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: llem bench -m FILE.gguf [-p 512] [-n 128] [-t THREADS] [-r 3]\n"
                 "                  [--parallel N] [--ctx DEPTH] [--batch 512] [--flash-attn on|off]\n"
                 "  -p N         prompt tokens for the pp test (0 = skip)\n"
                 "  -n N         generated tokens for the tg test (0 = skip)\n"
                 "  --parallel N aggregate decode of N sequences at once (tg test)\n"
                 "  --ctx D      run the tests after D tokens of context (like llama-bench -d)\n");
}

static double mean_of(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        s += v[i];
    }
    return s / n;
}

static double stddev_of(const double *v, int n)
{
    if (n < 2) {
        return 0;
    }
    double m = mean_of(v, n), s = 0;
    for (int i = 0; i < n; i++) {
        s += (v[i] - m) * (v[i] - m);
    }
    return sqrt(s / (n - 1));
}

static bool logits_finite(const struct model_ctx *ctx, int32_t rows)
{
    const int32_t n_vocab = model_ctx_model(ctx)->hp.n_vocab;
    for (int32_t r = 0; r < rows; r++) {
        const float *l = model_ctx_logits(ctx, r);
        if (!l) {
            return false;
        }
        for (int32_t i = 0; i < n_vocab; i++) {
            if (!isfinite(l[i])) {
                return false;
            }
        }
    }
    return true;
}

// Fills the context of every sequence with `depth` tokens (not timed).
static enum llem_err fill_depth(struct model_ctx *ctx, const llem_token *toks, int32_t depth,
                                int32_t n_seq, struct llem_errbuf *eb)
{
    for (llem_seq s = 0; s < n_seq && depth > 0; s++) {
        enum llem_err rc = cli_decode_tokens(ctx, toks, depth, 0, s, false, NULL, eb);
        if (rc != LLEM_OK) {
            return rc;
        }
    }
    return LLEM_OK;
}

// One pp measurement: n_prompt tokens in batches, after `depth` tokens. Returns tokens/s.
static enum llem_err run_pp(struct model_ctx *ctx, const llem_token *toks, const struct bench_opts *o,
                            double *tps, struct llem_errbuf *eb)
{
    model_ctx_clear(ctx);
    enum llem_err rc = fill_depth(ctx, toks, (int32_t)o->depth, 1, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    double t0 = cli_now_ms();
    rc = cli_decode_tokens(ctx, toks + o->depth, (int32_t)o->n_prompt, (llem_pos)o->depth, 0,
                           false, NULL, eb);
    double ms = cli_now_ms() - t0;
    if (rc == LLEM_OK && !logits_finite(ctx, 1)) {
        return llem_errf(eb, LLEM_EINTERNAL, "non-finite logits: the output is invalid");
    }
    *tps = (double)o->n_prompt * 1000.0 / ms;
    return rc;
}

// One tg measurement: n_gen steps of one token per sequence (N sequences per batch).
static enum llem_err run_tg(struct model_ctx *ctx, const llem_token *toks, const struct bench_opts *o,
                            double *tps, struct llem_errbuf *eb)
{
    const int32_t n_seq = (int32_t)o->parallel;
    model_ctx_clear(ctx);
    enum llem_err rc = fill_depth(ctx, toks, (int32_t)o->depth, n_seq, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    llem_token tok[64];
    llem_pos pos[64];
    llem_seq seq[64];
    for (int32_t s = 0; s < n_seq; s++) {
        tok[s] = toks[s];
        seq[s] = s;
    }
    double t0 = cli_now_ms();
    for (int64_t k = 0; k < o->n_gen; k++) {
        for (int32_t s = 0; s < n_seq; s++) {
            pos[s] = (llem_pos)(o->depth + k);
            tok[s] = toks[(k * 7 + s) % 1024];
        }
        struct ubatch ub = {.n_tokens = n_seq, .tokens = tok, .pos = pos, .seq = seq};
        if ((rc = model_ctx_decode(ctx, &ub, eb)) != LLEM_OK) {
            return rc;
        }
        if (k == 0 && !logits_finite(ctx, n_seq)) {
            return llem_errf(eb, LLEM_EINTERNAL, "non-finite logits: the output is invalid");
        }
    }
    double ms = cli_now_ms() - t0;
    *tps = (double)(o->n_gen * n_seq) * 1000.0 / ms;
    return LLEM_OK;
}

static int parse(int argc, char **argv, struct bench_opts *o)
{
    *o = (struct bench_opts){.n_prompt = 512, .n_gen = 128, .reps = 3, .parallel = 1,
                             .batch = 512, .flash_attn = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = v != NULL;
        if (cli_is_help(a)) {
            return -1;
        } else if (!strcmp(a, "-m") && v) {
            o->path = v;
        } else if (!strcmp(a, "-p") && v) {
            ok = cli_parse_i64(v, 0, 1 << 20, &o->n_prompt);
        } else if (!strcmp(a, "-n") && v) {
            ok = cli_parse_i64(v, 0, 1 << 20, &o->n_gen);
        } else if (!strcmp(a, "-t") && v) {
            ok = cli_parse_i64(v, 0, 512, &o->threads);
        } else if (!strcmp(a, "-r") && v) {
            ok = cli_parse_i64(v, 1, 1000, &o->reps);
        } else if (!strcmp(a, "--parallel") && v) {
            ok = cli_parse_i64(v, 1, 64, &o->parallel);
        } else if ((!strcmp(a, "--ctx") || !strcmp(a, "-d")) && v) {
            ok = cli_parse_i64(v, 0, 1 << 22, &o->depth);
        } else if (!strcmp(a, "--batch") && v) {
            ok = cli_parse_i64(v, 1, 1 << 16, &o->batch);
        } else if (!strcmp(a, "--flash-attn") && v) {
            ok = !strcmp(v, "on") || !strcmp(v, "off");
            o->flash_attn = !strcmp(v, "on");
        } else {
            cli_fail("bench", "unknown option or missing value: '%s' (see llem bench --help)", a);
            return 1;
        }
        if (!ok) {
            cli_fail("bench", "bad value '%s' for %s", v ? v : "", a);
            return 1;
        }
        i++;
    }
    if (!o->path) {
        usage(stderr);
        return 1;
    }
    return 0;
}

int cli_bench(int argc, char **argv)
{
    struct bench_opts o;
    int pr = parse(argc, argv, &o);
    if (pr != 0) {
        if (pr < 0) {
            usage(stdout);
        }
        return pr < 0 ? 0 : 1;
    }
    struct cli_engine e;
    if (cli_engine_open(&e, "bench", o.path, (int)o.threads, false) != 0) {
        return 1;
    }
    const struct model *m = e.model;
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = (int32_t)(o.depth + LLEM_MAX(o.n_prompt, o.n_gen) + 8);
    cp.n_seq_max = (int32_t)o.parallel;
    cp.n_batch = (int32_t)LLEM_MAX(o.batch, o.parallel);
    cp.flash_attn = o.flash_attn;
    struct model_ctx *ctx = NULL;
    struct llem_errbuf eb = {0};
    // Random tokens, as llama-bench uses: the speed does not depend on the text.
    size_t n_toks = (size_t)(o.depth + o.n_prompt + 1024);
    llem_token *toks = llem_malloc(n_toks * sizeof *toks);
    double *samples = llem_malloc((size_t)o.reps * sizeof *samples);
    int status = 1;
    if (!toks || !samples) {
        cli_fail("bench", "out of memory");
        goto out;
    }
    struct rng rng;
    rng_seed(&rng, 1234);
    for (size_t i = 0; i < n_toks; i++) {
        toks[i] = (llem_token)rng_bounded(&rng, (uint64_t)m->hp.n_vocab);
    }
    if (model_ctx_new(e.model, &cp, &ctx, &eb) != LLEM_OK) {
        cli_fail("bench", "%s", eb.msg);
        goto out;
    }
    char desc[96];
    snprintf(desc, sizeof desc, "%s %.2fB", m->arch->name, (double)m->n_params / 1e9);
    printf("| model | size | params | backend | threads | fa | test | t/s |\n");
    printf("| --- | ---: | ---: | --- | ---: | -: | --- | ---: |\n");
    int threads = cpu_backend_n_threads(e.be);
    status = 0;
    for (int test = 0; test < 2 && status == 0; test++) {
        int64_t n = test == 0 ? o.n_prompt : o.n_gen;
        if (n == 0) {
            continue;
        }
        double warm;
        // Warm-up run (pages in the weights, sizes the buffers), then the timed repetitions.
        // With a filled context the untimed fill of each run does that already, and a second
        // 16384-token fill would double a run that takes minutes.
        enum llem_err rc = LLEM_OK;
        if (o.depth == 0) {
            rc = test == 0 ? run_pp(ctx, toks, &o, &warm, &eb) : run_tg(ctx, toks, &o, &warm, &eb);
        }
        for (int64_t r = 0; rc == LLEM_OK && r < o.reps; r++) {
            rc = test == 0 ? run_pp(ctx, toks, &o, &samples[r], &eb)
                           : run_tg(ctx, toks, &o, &samples[r], &eb);
        }
        if (rc != LLEM_OK) {
            status = cli_fail("bench", "%s", eb.msg);
            break;
        }
        char name[64];
        int len = snprintf(name, sizeof name, "%s%lld", test == 0 ? "pp" : "tg", (long long)n);
        if (o.parallel > 1 && test == 1) {
            len += snprintf(name + len, sizeof name - (size_t)len, " x%lld", (long long)o.parallel);
        }
        if (o.depth > 0) {
            snprintf(name + len, sizeof name - (size_t)len, " @ d%lld", (long long)o.depth);
        }
        printf("| %s | %.2f MiB | %.2f B | CPU | %d | %d | %s | %.2f ± %.2f |\n", desc,
               (double)m->weight_bytes / 1048576.0, (double)m->n_params / 1e9, threads,
               model_ctx_flash_attn(ctx) ? 1 : 0, name, mean_of(samples, (int)o.reps),
               stddev_of(samples, (int)o.reps));
        fflush(stdout);
    }
out:
    model_ctx_free(ctx);
    llem_free(toks);
    llem_free(samples);
    cli_engine_close(&e);
    return status;
}
