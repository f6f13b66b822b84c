// cli/detokenize.c: `llem detokenize FILE.gguf [--special]`: reads token ids (whitespace
// separated) on stdin and prints their text exactly (no newline added), through the same
// streaming decoder the runner uses.
#include "cli/cli.h"
#include "cli/engine.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"


static void usage(FILE *out)
{
    fprintf(out, "Usage: llem detokenize FILE.gguf [--special]\n\n"
                 "Reads token ids (whitespace separated) on stdin and prints their text.\n"
                 "  --special   render control tokens (\"<s>\", \"<|im_end|>\") as text\n");
}

int cli_detokenize(int argc, char **argv)
{
    const char *path = NULL;
    bool special = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--special") == 0) {
            special = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_fail("detokenize", "unknown option '%s' (try --help)", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_fail("detokenize", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!path) {
        usage(stderr);
        return 1;
    }
    struct llem_errbuf eb = {0};
    struct tok_vocab *v = NULL;
    if (cli_vocab_open("detokenize", path, &v) != 0) {
        return 1;
    }
    char *in = NULL;
    size_t len = 0;
    if (!cli_read_all(stdin, &in, &len, 1u << 30)) {
        tok_vocab_free(v);
        return cli_fail("detokenize", "cannot read stdin (or more than 1 GiB)");
    }
    size_t cap = tok_piece_max(v) + 8;
    char *out = llem_malloc(cap);
    struct tok_stream st;
    tok_stream_init(&st, v, special);
    int rc = out ? 0 : cli_fail("detokenize", "out of memory");
    for (size_t i = 0; i < len && rc == 0;) {
        if (isspace((unsigned char)in[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && !isspace((unsigned char)in[j])) {
            j++;
        }
        char word[32];
        int64_t id = 0;
        if (j - i >= sizeof word) {
            rc = cli_fail("detokenize", "bad token id '%.20s...'", in + i);
            break;
        }
        memcpy(word, in + i, j - i);
        word[j - i] = 0;
        if (!cli_parse_i64(word, 0, tok_n_vocab(v) - 1, &id)) {
            rc = cli_fail("detokenize", "bad token id '%s' (n_vocab %d)", word, tok_n_vocab(v));
            break;
        }
        size_t n = 0;
        if (tok_stream_push(&st, (llem_token)id, out, cap, &n, &eb)) {
            rc = cli_fail("detokenize", "%s", eb.msg);
            break;
        }
        fwrite(out, 1, n, stdout);
        i = j;
    }
    if (rc == 0) {
        size_t n = tok_stream_flush(&st, out, cap);
        fwrite(out, 1, n, stdout);
        if (fflush(stdout) != 0) {
            rc = cli_fail("detokenize", "cannot write stdout");
        }
    }
    llem_free(out);
    llem_free(in);
    tok_vocab_free(v);
    return rc;
}
