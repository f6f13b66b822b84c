// tests/golden/tokenizer_vectors.c: every .inp/.out pair in ../shared/testdata/tokenizer
// (llama.cpp's test-tokenizer-0 vectors: cases separated by "\n__ggml_vocab_test__\n", no
// BOS/EOS, special tokens not parsed) must encode exactly, and decode back to the input for
// the lossless tokenizers (all but WordPiece). Prints a pass count per vocab file.
#include <dirent.h>
#include <stdlib.h>

#include "check.h"
#include "base/alloc.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Decodes ids with the streaming decoder, one token at a time.
static char *detok(const struct tok_vocab *v, const llem_token *ids, size_t n, size_t *len)
{
    size_t cap = tok_piece_max(v) + 8, total = 0;
    char *out = malloc(n * cap + 8), *buf = malloc(cap);
    struct tok_stream st;
    tok_stream_init(&st, v, false);
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        struct llem_errbuf eb = {0};
        CHECK_OK(tok_stream_push(&st, ids[i], buf, cap, &k, &eb), &eb);
        memcpy(out + total, buf, k);
        total += k;
    }
    total += tok_stream_flush(&st, out + total, 8);
    free(buf);
    *len = total;
    return out;
}

// Returns the number of cases that failed; prints per-case details for failures.
static int run_vocab(const char *dir, const char *name, int *n_cases, int *n_rt_fail)
{
    char path[1024], inp_path[1100], out_path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(inp_path, sizeof inp_path, "%s.inp", path);
    snprintf(out_path, sizeof out_path, "%s.out", path);
    size_t inp_len = 0, out_len = 0;
    char *inp = read_file(inp_path, &inp_len), *exp = read_file(out_path, &out_len);
    struct llem_errbuf eb = {0};
    struct gguf_file *f = NULL;
    struct gguf_open_opts opts = {.metadata_only = true};
    struct tok_vocab *v = NULL;
    int fails = 0, cases = 0;
    *n_rt_fail = 0;
    if (!inp || !exp || gguf_open(&f, path, &opts, &eb) || tok_vocab_load(&v, f, &eb)) {
        fprintf(stderr, "%s: cannot load (%s)\n", name, eb.msg);
        CHECK(0);
        gguf_close(f);
        free(inp);
        free(exp);
        *n_cases = 0;
        return 1;
    }
    gguf_close(f);
    bool lossless = tok_vocab_model(v) != TOK_MODEL_WPM;
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    size_t pos = 0;
    char *line = exp;
    while (pos < inp_len && line && *line) {
        char *m = strstr(inp + pos, sep);
        size_t clen = m ? (size_t)(m - (inp + pos)) : inp_len - pos;
        const char *text = inp + pos;
        pos += clen + (m ? sep_len : 0);
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = 0;
        }
        // expected ids
        llem_token want[4096];
        size_t n_want = 0;
        for (char *p = line; *p;) {
            char *end;
            long id = strtol(p, &end, 10);
            if (end == p) {
                p++;
                continue;
            }
            want[n_want++] = (llem_token)id;
            p = end;
        }
        line = nl ? nl + 1 : NULL;
        cases++;
        llem_token got[4096];
        size_t n_got = 0;
        enum llem_err e = tok_encode(v, text, clen, false, false, got, 4096, &n_got, &eb);
        bool ok = e == LLEM_OK && n_got == n_want &&
                  memcmp(got, want, n_got * sizeof *got) == 0;
        if (!ok) {
            fails++;
            fprintf(stderr, "%s: case %d '%.*s'\n  want:", name, cases, (int)clen, text);
            for (size_t i = 0; i < n_want; i++) {
                fprintf(stderr, " %d", want[i]);
            }
            fprintf(stderr, "\n  got: ");
            for (size_t i = 0; i < n_got && i < 4096; i++) {
                fprintf(stderr, " %d", got[i]);
            }
            fprintf(stderr, "\n");
            continue;
        }
        if (lossless) {
            size_t dlen;
            char *d = detok(v, got, n_got, &dlen);
            if (dlen != clen || memcmp(d, text, clen) != 0) {
                (*n_rt_fail)++;
                fprintf(stderr, "%s: case %d round trip '%.*s' -> '%.*s'\n", name, cases,
                        (int)clen, text, (int)dlen, d);
            }
            free(d);
        }
    }
    if (!lossless) {
        *n_rt_fail = -1; // WordPiece lowercases and drops spaces: no round trip
    }
    tok_vocab_free(v);
    free(inp);
    free(exp);
    *n_cases = cases;
    return fails;
}

int main(void)
{
    char dir[1024];
    test_shared_path(dir, sizeof dir, "testdata/tokenizer/README.md");
    *strrchr(dir, '/') = 0;
    DIR *d = opendir(dir);
    if (!d) {
        TEST_SKIP("%s not found", dir);
    }
    char *names[64];
    int n_names = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n_names < 64) {
        size_t n = strlen(de->d_name);
        if (n > 5 && strcmp(de->d_name + n - 5, ".gguf") == 0) {
            names[n_names++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n_names, sizeof *names, cmp_str);
    CHECK(n_names > 0);
    for (int i = 0; i < n_names; i++) {
        int cases = 0, rt_fail = 0;
        int fails = run_vocab(dir, names[i], &cases, &rt_fail);
        printf("%-34s %3d/%3d encode", names[i], cases - fails, cases);
        if (rt_fail >= 0) {
            printf("  %3d/%3d round-trip", cases - fails - rt_fail, cases - fails);
        } else {
            printf("  round-trip n/a (lossy)");
        }
        printf("\n");
        CHECK_EQ_I64(fails, 0);
        CHECK(rt_fail <= 0);
        free(names[i]);
    }
    return TEST_EXIT();
}
