// bench/tokenizer_encode.c: encoding throughput (MB/s, ns/token, allocations per call) on a
// long mixed text (English prose, code, numbers, non-Latin scripts, emoji) for each vocab in
// ../shared/testdata/tokenizer (or the files given as arguments). The output is validated
// first: the text must round-trip through the streaming decoder for lossless vocabs. Times are
// process CPU time (single-threaded), so a loaded machine disturbs them less than wall time.
// Usage: bench_tokenizer_encode [vocab.gguf...] | --load vocab.gguf... (load time only).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

static const char *const chunks[] = {
    "The quick brown fox jumps over the lazy dog. It's a well-known pangram, isn't it? ",
    "    for (int i = 0; i < n; i++) {\n        sum += x[i] * 3.14159;\n    }\n",
    "1234567890 2025-11-25 $1,299.99 0x7fff_ffff ",
    "Привет, мир! Γειά σου Κόσμε! 你好，世界。こんにちは 안녕하세요 ",
    "Emoji 🦙🚀✅ and   multiple   spaces\n\n\t\ttabs\r\n",
};

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

// Process CPU time: less disturbed than wall time on a shared machine.
static double cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

// --load mode: vocab load time alone (GGUF metadata parse + tok_vocab_load), best of `reps`.
static int bench_load(const char *path, int reps)
{
    double best_cpu = 1e30, best_wall = 1e30, best_tok = 1e30;
    uint64_t allocs = 0;
    for (int r = 0; r < reps; r++) {
        struct llem_errbuf eb = {0};
        struct gguf_file *f = NULL;
        struct gguf_open_opts opts = {.metadata_only = true};
        struct tok_vocab *v = NULL;
        double w0 = now_s(), c0 = cpu_s();
        if (gguf_open(&f, path, &opts, &eb)) {
            fprintf(stderr, "%s: %s\n", path, eb.msg);
            return 1;
        }
        double c1 = cpu_s();
        uint64_t a0 = llem_alloc_count();
        if (tok_vocab_load(&v, f, &eb)) {
            fprintf(stderr, "%s: %s\n", path, eb.msg);
            gguf_close(f);
            return 1;
        }
        double c2 = cpu_s(), w2 = now_s();
        allocs = llem_alloc_count() - a0;
        gguf_close(f);
        tok_vocab_free(v);
        best_cpu = c2 - c0 < best_cpu ? c2 - c0 : best_cpu;
        best_tok = c2 - c1 < best_tok ? c2 - c1 : best_tok;
        best_wall = w2 - w0 < best_wall ? w2 - w0 : best_wall;
    }
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    printf("%-32s load (best of %d): %7.1f ms CPU (tok_vocab_load %7.1f ms)  %7.1f ms wall  "
           "%llu allocs\n", name, reps, best_cpu * 1e3, best_tok * 1e3, best_wall * 1e3,
           (unsigned long long)allocs);
    return 0;
}

static void bench_file(const char *path, const char *text, size_t len)
{
    while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80) {
        len--; // cut at a character boundary so the round trip is exact
    }
    struct llem_errbuf eb = {0};
    struct gguf_file *f = NULL;
    struct gguf_open_opts opts = {.metadata_only = true};
    struct tok_vocab *v = NULL;
    double t0 = cpu_s();
    if (gguf_open(&f, path, &opts, &eb) || tok_vocab_load(&v, f, &eb)) {
        fprintf(stderr, "%s: %s\n", path, eb.msg);
        gguf_close(f);
        return;
    }
    double t_load = cpu_s() - t0;
    gguf_close(f);
    size_t cap = len + 16, n = 0;
    llem_token *ids = malloc(cap * sizeof *ids);
    if (tok_encode(v, text, len, false, false, ids, cap, &n, &eb)) {
        fprintf(stderr, "%s: encode: %s\n", path, eb.msg);
        exit(1);
    }
    // validate: lossless vocabs give the text back
    if (tok_vocab_model(v) != TOK_MODEL_WPM) {
        size_t pcap = tok_piece_max(v) + 8, total = 0;
        char *out = malloc(n * pcap + 8);
        struct tok_stream st;
        tok_stream_init(&st, v, false);
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            if (tok_stream_push(&st, ids[i], out + total, pcap, &k, &eb)) {
                exit(1);
            }
            total += k;
        }
        total += tok_stream_flush(&st, out + total, 8);
        if (total != len || memcmp(out, text, len) != 0) {
            fprintf(stderr, "%s: round trip failed\n", path);
            exit(1);
        }
        free(out);
    }
    int reps = 0;
    uint64_t a0 = llem_alloc_count();
    // process CPU time, not wall time: the figures hold on a busy machine
    double t1 = cpu_s(), el;
    do {
        tok_encode(v, text, len, false, false, ids, cap, &n, &eb);
        reps++;
        el = cpu_s() - t1;
    } while (el < 1.0 || reps < 2);
    double allocs = (double)(llem_alloc_count() - a0) / reps;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    printf("%-32s %5zu KiB  load %6.1f ms CPU  %7.2f MB/s  %6.1f ns/token  %7.1f tokens/KB  %8.1f allocs/op\n",
           name, len >> 10, t_load * 1e3, (double)len * reps / el / 1e6, el / reps / (double)n * 1e9,
           (double)n / ((double)len / 1024.0), allocs);
    free(ids);
    tok_vocab_free(v);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--load") == 0) {
        int rc = 0;
        for (int i = 2; i < argc; i++) {
            rc |= bench_load(argv[i], 5);
        }
        return rc;
    }
    size_t len = 0, target = 4u << 20; // 4 MiB
    char *text = malloc(target + 256);
    for (unsigned i = 0; len < target; i++) {
        const char *c = chunks[(i * 7 + i / 5) % (sizeof chunks / sizeof *chunks)];
        size_t n = strlen(c);
        memcpy(text + len, c, n);
        len += n;
    }
    printf("text: mixed prose/code/numbers/scripts/emoji; 64 KiB (a long prompt) and 4 MiB\n");
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            bench_file(argv[i], text, 64u << 10);
            bench_file(argv[i], text, len);
        }
    } else {
        const char *root = getenv("LLEM_SHARED") ? getenv("LLEM_SHARED") : "../shared";
        static const char *const files[] = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf",
                                            "ggml-vocab-gpt-2.gguf", "ggml-vocab-deepseek-coder.gguf",
                                            "ggml-vocab-bert-bge.gguf"};
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/testdata/tokenizer/%s", root, files[i]);
            bench_file(path, text, 64u << 10);
            bench_file(path, text, len);
        }
    }
    free(text);
    return 0;
}
