// cli/eval.c: `llem eval FILE.gguf --tokens "ID ID ..." --logits-out OUT.bin`: runs the tokens
// through the model and writes the float32 logits of every position, [n_tokens][n_vocab]
// row-major (the hook for reference checks against llama.cpp).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "cli/cli.h"
#include "cli/engine.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: llem eval FILE.gguf --tokens \"ID ID ...\" --logits-out OUT.bin\n"
                 "  [--threads N] [--batch N] [--flash-attn on|off]\n"
                 "Writes float32 logits of every position, [n_tokens][n_vocab] row-major.\n");
}

// Parses whitespace-separated token ids; returns the count or -1 on a malformed id.
static int32_t parse_tokens(const char *s, llem_token **out)
{
    size_t cap = strlen(s) / 2 + 2;
    llem_token *t = llem_malloc(cap * sizeof *t);
    int32_t n = 0;
    if (!t) {
        return -1;
    }
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == ',') {
            s++;
        }
        if (!*s) {
            break;
        }
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX) {
            llem_free(t);
            return -1;
        }
        t[n++] = (llem_token)v;
        s = end;
    }
    *out = t;
    return n;
}

int cli_eval(int argc, char **argv)
{
    const char *path = NULL, *tokens_arg = NULL, *out_path = NULL;
    int64_t threads = 0, batch = 512;
    int fa = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tokens") && i + 1 < argc) {
            tokens_arg = argv[++i];
        } else if (!strcmp(a, "--logits-out") && i + 1 < argc) {
            out_path = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!cli_parse_i64(argv[++i], 0, 512, &threads)) {
                return cli_fail("eval", "bad --threads '%s'", argv[i]);
            }
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            if (!cli_parse_i64(argv[++i], 1, 1 << 16, &batch)) {
                return cli_fail("eval", "bad --batch '%s'", argv[i]);
            }
        } else if (!strcmp(a, "--flash-attn") && i + 1 < argc) {
            const char *v = argv[++i];
            fa = !strcmp(v, "on") || !strcmp(v, "1") ? 1 : !strcmp(v, "off") || !strcmp(v, "0") ? 0 : -2;
            if (fa == -2) {
                return cli_fail("eval", "--flash-attn takes on or off");
            }
        } else if (a[0] == '-') {
            return cli_fail("eval", "unknown option '%s' (see llem eval --help)", a);
        } else if (!path) {
            path = a;
        } else {
            return cli_fail("eval", "unexpected argument '%s'", a);
        }
    }
    if (!path || !tokens_arg || !out_path) {
        usage(stderr);
        return 1;
    }
    llem_token *tokens = NULL;
    int32_t n = parse_tokens(tokens_arg, &tokens);
    if (n <= 0) {
        llem_free(tokens);
        return cli_fail("eval", "--tokens needs one or more non-negative integer ids");
    }
    struct cli_engine e;
    if (cli_engine_open(&e, "eval", path, (int)threads, false) != 0) {
        llem_free(tokens);
        return 1;
    }
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = LLEM_MAX(n, 16);
    cp.n_batch = (int32_t)batch;
    cp.flash_attn = fa;
    struct model_ctx *ctx = NULL;
    struct llem_errbuf eb = {0};
    int status = 1;
    size_t nv = (size_t)e.model->hp.n_vocab;
    float *logits = llem_malloc((size_t)n * nv * sizeof *logits);
    if (!logits) {
        cli_fail("eval", "out of memory for %d x %zu logits", n, nv);
    } else if (model_ctx_new(e.model, &cp, &ctx, &eb) != LLEM_OK ||
               cli_decode_tokens(ctx, tokens, n, 0, 0, true, logits, &eb) != LLEM_OK) {
        cli_fail("eval", "%s", eb.msg);
    } else if (fs_write_atomic(out_path, logits, (size_t)n * nv * sizeof *logits, &eb) !=
               LLEM_OK) {
        cli_fail("eval", "%s", eb.msg);
    } else {
        status = 0;
    }
    model_ctx_free(ctx);
    llem_free(logits);
    llem_free(tokens);
    cli_engine_close(&e);
    return status;
}
