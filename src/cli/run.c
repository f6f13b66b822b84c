// cli/run.c: `llem run FILE.gguf [PROMPT]`: raw completion of a prompt (argument or stdin)
// with a GGUF file, streamed to stdout; sampling options with Ollama's defaults, context shift
// when the context fills, and `--verbose` statistics in Ollama's words on stderr.
// `llem run MODEL ...` (anything that is not a GGUF file, see cli_is_model_file) goes to the
// server's chat instead: cli/repl.c.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/engine.h"
#include "sampler/sampler.h"

#define RUN_MAX_STOPS 16

struct run_opts {
    const char *path;
    const char *prompt;
    struct sampler_params sp;
    int64_t num_predict;  // -1: until end of generation or 10 x num_ctx
    int64_t num_ctx;      // 0: default (16384, fitted)
    int64_t num_keep;     // tokens kept on a context shift
    int64_t threads;
    int64_t batch;
    bool verbose;
    bool truncate;        // a too-long prompt keeps its start and end instead of failing
    bool ignore_eos;
    int flash_attn;
    const char *stops[RUN_MAX_STOPS];
    int n_stops;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: llem run FILE.gguf [PROMPT] [options]\n"
            "       llem run MODEL [PROMPT] [flags]   (chat through the server: see below)\n"
            "Completes PROMPT (or standard input) with the model, streaming to stdout.\n"
            "  --temperature F    sampling temperature (0.8; 0 = greedy)\n"
            "  --top-k N          (40)      --top-p F   (0.9)    --min-p F (0)\n"
            "  --typical-p F      (1)       --repeat-penalty F (1.1) --repeat-last-n N (64)\n"
            "  --presence-penalty F --frequency-penalty F          --seed N (-1 = random)\n"
            "  --num-predict N    tokens to generate (-1 = until the end of text)\n"
            "  --num-ctx N        context length (default 16384, fitted to model and memory)\n"
            "  --num-keep N       prompt tokens kept when the context shifts (4)\n"
            "  --stop TEXT        stop sequence (repeatable)\n"
            "  --threads N        CPU threads (default: physical cores)\n"
            "  --batch N          prompt batch size (512)\n"
            "  --flash-attn on|off  (default on where supported)\n"
            "  --truncate         cut a prompt longer than the context instead of failing\n"
            "  --ignore-eos       keep generating past the end-of-text token\n"
            "  --verbose          timings and token rates on stderr\n\n"
            "llem run MODEL [PROMPT] [--format json] [--think[=V]] [--hidethinking]\n"
            "    [--keepalive D] [--nowordwrap] [--verbose] [--insecure]: see 'llem run MODEL "
            "--help'.\n");
}

// The first positional argument (skipping the values of flags that take one), or NULL.
static const char *first_positional(int argc, char **argv)
{
    static const char *const takes[] = {
        "--temperature", "--top-k", "--top-p", "--min-p", "--typical-p", "--repeat-penalty",
        "--repeat-last-n", "--presence-penalty", "--frequency-penalty", "--seed",
        "--num-predict", "--num-ctx", "--num-keep", "--threads", "--batch", "--stop",
        "--flash-attn", "--format", "--keepalive"};
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' || !argv[i][1]) {
            return argv[i];
        }
        for (size_t k = 0; k < sizeof takes / sizeof takes[0]; k++) {
            if (!strcmp(argv[i], takes[k])) {
                i++;
                break;
            }
        }
    }
    return NULL;
}

static bool parse_f(const char *s, float *out)
{
    double v;
    if (!cli_parse_f64(s, &v)) {
        return false;
    }
    *out = (float)v;
    return true;
}

// Returns 0 on success, 1 on a bad option (message printed), -1 for --help.
static int parse_args(int argc, char **argv, struct run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->sp = sampler_params_default();
    o->num_predict = -1;
    o->num_keep = 4;
    o->batch = 512;
    o->flash_attn = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;
        int64_t n;
        if (cli_is_help(a)) {
            return -1;
        } else if (!strcmp(a, "--temperature") && v) {
            ok = parse_f(v, &o->sp.temperature);
        } else if (!strcmp(a, "--top-k") && v) {
            ok = cli_parse_i64(v, -1, 1 << 24, &n) && ((o->sp.top_k = (int32_t)n), true);
        } else if (!strcmp(a, "--top-p") && v) {
            ok = parse_f(v, &o->sp.top_p);
        } else if (!strcmp(a, "--min-p") && v) {
            ok = parse_f(v, &o->sp.min_p);
        } else if (!strcmp(a, "--typical-p") && v) {
            ok = parse_f(v, &o->sp.typical_p);
        } else if (!strcmp(a, "--repeat-penalty") && v) {
            ok = parse_f(v, &o->sp.repeat_penalty);
        } else if (!strcmp(a, "--repeat-last-n") && v) {
            ok = cli_parse_i64(v, -1, 1 << 24, &n) && ((o->sp.repeat_last_n = (int32_t)n), true);
        } else if (!strcmp(a, "--presence-penalty") && v) {
            ok = parse_f(v, &o->sp.presence_penalty);
        } else if (!strcmp(a, "--frequency-penalty") && v) {
            ok = parse_f(v, &o->sp.frequency_penalty);
        } else if (!strcmp(a, "--seed") && v) {
            ok = cli_parse_i64(v, -1, INT64_MAX, &o->sp.seed);
        } else if (!strcmp(a, "--num-predict") && v) {
            ok = cli_parse_i64(v, -2, 1 << 30, &o->num_predict);
        } else if (!strcmp(a, "--num-ctx") && v) {
            ok = cli_parse_i64(v, 1, 1 << 24, &o->num_ctx);
        } else if (!strcmp(a, "--num-keep") && v) {
            ok = cli_parse_i64(v, 0, 1 << 24, &o->num_keep);
        } else if (!strcmp(a, "--threads") && v) {
            ok = cli_parse_i64(v, 0, 512, &o->threads);
        } else if (!strcmp(a, "--batch") && v) {
            ok = cli_parse_i64(v, 1, 1 << 16, &o->batch);
        } else if (!strcmp(a, "--stop") && v) {
            ok = o->n_stops < RUN_MAX_STOPS && *v;
            if (ok) {
                o->stops[o->n_stops++] = v;
            }
        } else if (!strcmp(a, "--flash-attn") && v) {
            ok = !strcmp(v, "on") || !strcmp(v, "off");
            o->flash_attn = !strcmp(v, "on");
        } else {
            takes = false;
            if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
                o->verbose = true;
            } else if (!strcmp(a, "--truncate")) {
                o->truncate = true;
            } else if (!strcmp(a, "--ignore-eos")) {
                o->ignore_eos = true;
            } else if (a[0] == '-' && a[1]) {
                cli_fail("run", "unknown option or missing value: '%s' (see llem run --help)", a);
                return 1;
            } else if (!o->path) {
                o->path = a;
            } else if (!o->prompt) {
                o->prompt = a;
            } else {
                cli_fail("run", "unexpected argument '%s' (quote the prompt)", a);
                return 1;
            }
        }
        if (!ok) {
            cli_fail("run", "bad value '%s' for %s", v, a);
            return 1;
        }
        i += takes;
    }
    if (!o->path) {
        cli_fail("run", "missing MODEL or FILE.gguf (try 'llem run --help')");
        return 1;
    }
    return 0;
}

// Reads all of standard input (the prompt when none is given).
static char *read_stdin(void)
{
    size_t cap = 4096, len = 0;
    char *buf = llem_malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, stdin);
        len += got;
        if (got == 0) {
            break;
        }
        if (len + 1 >= cap) {
            char *bigger = cap < (64u << 20) ? llem_realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                llem_free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf) {
        buf[len] = '\0';
    }
    return buf;
}

struct gen_state {
    struct model_ctx *ctx;
    struct tok_vocab *vocab;
    struct sampler *smp;
    llem_token *tokens; // everything in the context (for context shifts): [n_ctx]
    int32_t n_past;
    char *pending;      // generated text not yet printed (stop-string hold-back)
    size_t n_pending, cap_pending;
};

// Emits pending text up to the stop-string hold-back; returns true if a stop string matched.
static bool flush_pending(struct gen_state *g, const struct run_opts *o, bool final)
{
    size_t emit = g->n_pending;
    bool stop = sampler_stop_scan(o->stops, o->n_stops, g->pending, g->n_pending, &emit);
    if (final && !stop) {
        emit = g->n_pending;
    }
    fwrite(g->pending, 1, emit, stdout);
    fflush(stdout);
    memmove(g->pending, g->pending + emit, g->n_pending - emit);
    g->n_pending -= emit;
    return stop;
}

static bool append_pending(struct gen_state *g, const char *s, size_t n)
{
    if (g->n_pending + n > g->cap_pending) {
        size_t cap = (g->n_pending + n) * 2 + 64;
        char *p = llem_realloc(g->pending, cap);
        if (!p) {
            return false;
        }
        g->pending = p;
        g->cap_pending = cap;
    }
    memcpy(g->pending + g->n_pending, s, n);
    g->n_pending += n;
    return true;
}

int cli_run(int argc, char **argv)
{
    const char *target = first_positional(argc, argv);
    if (target && !cli_is_model_file(target)) {
        return cli_run_model(argc, argv);
    }
    struct run_opts o;
    int pr = parse_args(argc, argv, &o);
    if (pr != 0) {
        if (pr < 0) {
            usage(stdout);
        }
        return pr < 0 ? 0 : 1;
    }
    char *stdin_prompt = NULL;
    if (!o.prompt) {
        if (isatty(STDIN_FILENO)) {
            return cli_fail("run", "no prompt: give one as an argument or on standard input");
        }
        stdin_prompt = read_stdin();
        if (!stdin_prompt) {
            return cli_fail("run", "cannot read the prompt from standard input");
        }
        o.prompt = stdin_prompt;
    }
    int status = 1;
    struct cli_engine e;
    struct gen_state g = {0};
    struct llem_errbuf eb = {0};
    double t_start = cli_now_ms();
    if (cli_engine_open(&e, "run", o.path, (int)o.threads, true) != 0) {
        llem_free(stdin_prompt);
        return 1;
    }
    g.vocab = e.vocab;
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = model_fit_n_ctx(e.model, (int32_t)o.num_ctx, 1, 0);
    cp.n_batch = (int32_t)o.batch;
    cp.flash_attn = o.flash_attn;
    size_t n_prompt = 0;
    // Tokenize: BOS/EOS as the model's metadata asks; special-token text stays plain text.
    llem_token *prompt = NULL;
    enum llem_err rc = tok_encode(e.vocab, o.prompt, strlen(o.prompt), true, false, NULL, 0,
                                  &n_prompt, &eb);
    if (rc == LLEM_ELIMIT || rc == LLEM_OK) {
        prompt = llem_malloc((n_prompt + 1) * sizeof *prompt);
        rc = prompt ? tok_encode(e.vocab, o.prompt, strlen(o.prompt), true, false, prompt,
                                 n_prompt + 1, &n_prompt, &eb)
                    : llem_errf(&eb, LLEM_ENOMEM, "out of memory");
    }
    if (rc != LLEM_OK) {
        cli_fail("run", "cannot tokenize the prompt: %s", eb.msg);
        goto out;
    }
    if (n_prompt == 0) {
        cli_fail("run", "the prompt is empty and the model adds no BOS token");
        goto out;
    }
    if ((int64_t)n_prompt >= cp.n_ctx) {
        if (!o.truncate) {
            cli_fail("run", "the prompt has %zu tokens, more than the context of %d (use "
                     "--num-ctx to enlarge it or --truncate to cut the prompt)", n_prompt,
                     cp.n_ctx);
            goto out;
        }
        // Keep num_keep tokens from the start and the most recent ones after them.
        size_t keep = (size_t)LLEM_MIN(o.num_keep, (int64_t)cp.n_ctx / 2);
        size_t tail = (size_t)cp.n_ctx / 2 - keep;
        memmove(prompt + keep, prompt + n_prompt - tail, tail * sizeof *prompt);
        fprintf(stderr, "llem run: prompt truncated from %zu to %zu tokens\n", n_prompt,
                keep + tail);
        n_prompt = keep + tail;
    }
    if (model_ctx_new(e.model, &cp, &g.ctx, &eb) != LLEM_OK ||
        sampler_new(&g.smp, &o.sp, e.model->hp.n_vocab, cp.n_ctx, &eb) != LLEM_OK) {
        cli_fail("run", "%s", eb.msg);
        goto out;
    }
    g.tokens = llem_malloc((size_t)cp.n_ctx * sizeof *g.tokens);
    char *piece = llem_malloc(tok_piece_max(e.vocab) + 8);
    if (!g.tokens || !piece) {
        llem_free(piece);
        cli_fail("run", "out of memory");
        goto out;
    }
    memcpy(g.tokens, prompt, n_prompt * sizeof *prompt);
    for (size_t i = 0; i < n_prompt; i++) {
        sampler_accept(g.smp, prompt[i]);
    }
    double t_prompt = cli_now_ms();
    if (cli_decode_tokens(g.ctx, prompt, (int32_t)n_prompt, 0, 0, false, NULL, &eb) != LLEM_OK) {
        llem_free(piece);
        cli_fail("run", "%s", eb.msg);
        goto out;
    }
    g.n_past = (int32_t)n_prompt;
    double t_gen = cli_now_ms();
    int64_t limit = o.num_predict < 0 ? 10 * (int64_t)cp.n_ctx : o.num_predict;
    int64_t n_gen = 0;
    struct tok_stream ts;
    tok_stream_init(&ts, e.vocab, false);
    ts.strip_space = false; // a continuation keeps its leading space
    const float *logits = model_ctx_logits(g.ctx, 0);
    bool stopped = false;
    status = 0;
    while (n_gen < limit && !stopped) {
        llem_token next;
        if (sampler_sample(g.smp, logits, &next, &eb) != LLEM_OK) {
            status = cli_fail("run", "%s", eb.msg);
            break;
        }
        if (!o.ignore_eos && tok_is_eog(e.vocab, next)) {
            break;
        }
        sampler_accept(g.smp, next);
        n_gen++;
        size_t n_out = 0;
        if (tok_stream_push(&ts, next, piece, tok_piece_max(e.vocab) + 8, &n_out, &eb) !=
                LLEM_OK ||
            !append_pending(&g, piece, n_out)) {
            status = cli_fail("run", "cannot decode token %d", next);
            break;
        }
        if (flush_pending(&g, &o, false)) {
            stopped = true;
            break;
        }
        if (n_gen >= limit) {
            break;
        }
        if (g.n_past >= cp.n_ctx) {
            // Context shift: keep num_keep tokens, drop half of the rest, slide the positions.
            int32_t keep = (int32_t)LLEM_MIN(o.num_keep, (int64_t)g.n_past - 1);
            int32_t discard = (g.n_past - keep) / 2;
            if (model_ctx_seq_remove(g.ctx, 0, keep, keep + discard, &eb) != LLEM_OK) {
                status = cli_fail("run", "context shift failed: %s", eb.msg);
                break;
            }
            memmove(g.tokens + keep, g.tokens + keep + discard,
                    (size_t)(g.n_past - keep - discard) * sizeof *g.tokens);
            g.n_past -= discard;
        }
        g.tokens[g.n_past] = next;
        llem_pos pos = g.n_past;
        llem_seq seq = 0;
        struct ubatch ub = {.n_tokens = 1, .tokens = &next, .pos = &pos, .seq = &seq};
        if (model_ctx_decode(g.ctx, &ub, &eb) != LLEM_OK) {
            status = cli_fail("run", "%s", eb.msg);
            break;
        }
        g.n_past++;
        logits = model_ctx_logits(g.ctx, 0);
    }
    if (!stopped) {
        size_t n_out = tok_stream_flush(&ts, piece, tok_piece_max(e.vocab) + 8);
        append_pending(&g, piece, n_out);
        flush_pending(&g, &o, true);
    }
    llem_free(piece);
    if (status == 0 && isatty(STDOUT_FILENO)) {
        fputc('\n', stdout);
    }
    double t_end = cli_now_ms();
    if (o.verbose) {
        const struct hparams *hp = &e.model->hp;
        const struct kv_cache_params *kp = &model_ctx_kv(g.ctx)->p;
        size_t per_token = (size_t)hp->n_layer * (tensor_row_size(kp->type_k, kp->n_embd_k) +
                                                  tensor_row_size(kp->type_v, kp->n_embd_v));
        double prompt_ms = t_gen - t_prompt, eval_ms = t_end - t_gen;
        fprintf(stderr, "\ntotal duration:       %.3fms\n", t_end - t_start);
        fprintf(stderr, "load duration:        %.3fms\n", e.load_ms);
        fprintf(stderr, "prompt eval count:    %zu token(s)\n", n_prompt);
        fprintf(stderr, "prompt eval duration: %.3fms\n", prompt_ms);
        fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n",
                prompt_ms > 0 ? (double)n_prompt * 1000.0 / prompt_ms : 0.0);
        fprintf(stderr, "eval count:           %lld token(s)\n", (long long)n_gen);
        fprintf(stderr, "eval duration:        %.3fms\n", eval_ms);
        fprintf(stderr, "eval rate:            %.2f tokens/s\n",
                eval_ms > 0 ? (double)n_gen * 1000.0 / eval_ms : 0.0);
        fprintf(stderr, "context:              %d tokens, flash attention %s\n", cp.n_ctx,
                model_ctx_flash_attn(g.ctx) ? "on" : "off");
        fprintf(stderr, "kv cache:             %zu bytes/token (2 x %d layers x %d kv heads x "
                "%d head dim x %s), %.1f MiB for %d tokens\n", per_token, hp->n_layer,
                hp->n_head_kv, hp->head_dim, tensor_type_name(kp->type_k),
                (double)per_token * cp.n_ctx / 1048576.0, cp.n_ctx);
    }
out:
    llem_free(g.pending);
    llem_free(g.tokens);
    sampler_free(g.smp);
    model_ctx_free(g.ctx);
    llem_free(prompt);
    cli_engine_close(&e);
    llem_free(stdin_prompt);
    return status;
}
