// cli/tokenize.c: `llem tokenize FILE.gguf [--special] [--no-bos]`: reads all of stdin (exact
// bytes, trailing newline included) and prints the token ids on one line, space-separated.
// A user tool and the hook the tokenizer golden tests drive.
#include "cli/cli.h"
#include "cli/engine.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#define TOKENIZE_MAX_INPUT (1ull << 30) // 1 GiB of text is far beyond any context window

static void usage(FILE *out)
{
    fprintf(out, "Usage: llem tokenize FILE.gguf [--special] [--no-bos]\n\n"
                 "Reads text on stdin and prints its token ids, space-separated, on one line.\n"
                 "  --special   recognize special tokens (\"<|im_start|>\") in the text\n"
                 "  --no-bos    do not add the BOS/EOS tokens the model asks for\n");
}

// Reads all of `in` into a heap buffer (llem_free). Returns false on error or past the cap.
bool cli_read_all(FILE *in, char **buf, size_t *len, size_t cap);
bool cli_read_all(FILE *in, char **buf, size_t *len, size_t cap)
{
    size_t n = 0, size = 1 << 16;
    char *b = llem_malloc(size);
    while (b) {
        size_t got = fread(b + n, 1, size - n, in);
        n += got;
        if (got == 0) {
            break;
        }
        if (n == size) {
            if (size >= cap) {
                llem_free(b);
                return false;
            }
            char *nb = llem_realloc(b, size * 2);
            if (!nb) {
                break;
            }
            b = nb;
            size *= 2;
        }
    }
    if (!b || ferror(in)) {
        llem_free(b);
        return false;
    }
    *buf = b;
    *len = n;
    return true;
}

int cli_tokenize(int argc, char **argv)
{
    const char *path = NULL;
    bool special = false, add_special = true;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--special") == 0) {
            special = true;
        } else if (strcmp(argv[i], "--no-bos") == 0) {
            add_special = false;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_fail("tokenize", "unknown option '%s' (try --help)", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_fail("tokenize", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!path) {
        usage(stderr);
        return 1;
    }
    struct llem_errbuf eb = {0};
    struct tok_vocab *v = NULL;
    if (cli_vocab_open("tokenize", path, &v) != 0) {
        return 1;
    }
    char *text = NULL;
    size_t len = 0;
    if (!cli_read_all(stdin, &text, &len, TOKENIZE_MAX_INPUT)) {
        tok_vocab_free(v);
        return cli_fail("tokenize", "cannot read stdin (or more than 1 GiB)");
    }
    size_t n = 0, cap = len + 16;
    llem_token *ids = llem_malloc(cap * sizeof *ids);
    enum llem_err e = ids ? tok_encode(v, text, len, add_special, special, ids, cap, &n, &eb) : LLEM_ENOMEM;
    if (e == LLEM_ELIMIT && n > cap) { // more tokens than bytes: only with added specials
        llem_free(ids);
        cap = n;
        ids = llem_malloc(cap * sizeof *ids);
        e = ids ? tok_encode(v, text, len, add_special, special, ids, cap, &n, &eb) : LLEM_ENOMEM;
    }
    int rc = 0;
    if (e) {
        rc = cli_fail("tokenize", "%s", e == LLEM_ENOMEM ? "out of memory" : eb.msg);
    } else {
        for (size_t i = 0; i < n; i++) {
            printf(i ? " %d" : "%d", ids[i]);
        }
        printf("\n");
        if (fflush(stdout) != 0) {
            rc = cli_fail("tokenize", "cannot write stdout");
        }
    }
    llem_free(ids);
    llem_free(text);
    tok_vocab_free(v);
    return rc;
}
