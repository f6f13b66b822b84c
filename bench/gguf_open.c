// bench/gguf_open.c: GGUF open time for a large model, warm and cold page cache (cold: the
// file's pages are dropped with posix_fadvise(DONTNEED) before each run). Usage:
//   bench_gguf_open [FILE.gguf]
// Without a file it writes a ~1 GB model (32k-token vocabulary, 96 F16 matrices) with the
// writer beside the executable (build/<dir>/bench-gguf-1g.gguf, kept for later runs).
// Prints ns/op and allocations/op.
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "gguf/gguf.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int make_model(const char *path)
{
    enum { N_VOCAB = 32000, N_LAYER = 32, NE0 = 2048, NE1 = 2560 };
    struct gguf_writer *w = gguf_writer_new();
    static char tok_store[N_VOCAB][16];
    static const char *toks[N_VOCAB];
    static float scores[N_VOCAB];
    static int32_t types[N_VOCAB];
    for (int i = 0; i < N_VOCAB; i++) {
        snprintf(tok_store[i], sizeof tok_store[i], "tok%d", i);
        toks[i] = tok_store[i];
        scores[i] = -(float)i;
        types[i] = 1;
    }
    size_t bytes = (size_t)NE0 * NE1 * 2;
    uint16_t *data = llem_malloc(bytes);
    if (!w || !data) {
        return 1;
    }
    for (size_t i = 0; i < bytes / 2; i++) {
        data[i] = (uint16_t)(0x3c00 ^ (i & 0x3ff)); // finite F16 values
    }
    int bad = 0;
    bad |= gguf_writer_set_str(w, "general.architecture", "llama");
    bad |= gguf_writer_set_str(w, "general.name", "bench 1 GB");
    bad |= gguf_writer_set_u32(w, "llama.block_count", N_LAYER);
    bad |= gguf_writer_set_u32(w, "llama.embedding_length", NE0);
    bad |= gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    bad |= gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, N_VOCAB);
    bad |= gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VALUE_FLOAT32, scores, N_VOCAB);
    bad |= gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VALUE_INT32, types, N_VOCAB);
    static const char *const mats[3] = {"ffn_up", "ffn_gate", "ffn_down"};
    for (int l = 0; l < N_LAYER; l++) {
        for (int m = 0; m < 3; m++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, mats[m]);
            int64_t ne[2] = {NE0, NE1};
            bad |= gguf_writer_add_tensor(w, name, GGML_TYPE_F16, 2, ne, data);
        }
    }
    struct llem_errbuf eb = {0};
    if (bad || gguf_writer_write(w, path, &eb) != LLEM_OK) {
        fprintf(stderr, "bench: cannot write %s: %s\n", path, eb.msg);
        bad = 1;
    }
    gguf_writer_free(w);
    llem_free(data);
    return bad;
}

static void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

// One timed open (+ optional touch of every tensor page); returns ns, adds allocations.
static double one_open(const char *path, const struct gguf_open_opts *o, int touch,
                       uint64_t *allocs)
{
    struct gguf_file *f = NULL;
    struct llem_errbuf eb = {0};
    uint64_t a0 = llem_alloc_count();
    double t0 = now_ns();
    if (gguf_open(&f, path, o, &eb) != LLEM_OK) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        exit(1);
    }
    volatile uint64_t sum = 0;
    if (touch) {
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
            const uint8_t *d = gguf_tensor_data(f, i);
            for (uint64_t k = 0; k < gguf_tensor(f, i)->n_bytes; k += 4096) {
                sum += d[k];
            }
        }
    }
    double dt = now_ns() - t0;
    *allocs += llem_alloc_count() - a0;
    gguf_close(f);
    return dt;
}

static void run(const char *label, const char *path, struct gguf_open_opts o, int touch, int cold,
                int reps)
{
    double total = 0, best = 1e30;
    uint64_t allocs = 0;
    if (!cold) { // warm means warm: one untimed run first pulls the pages in
        uint64_t ignored = 0;
        one_open(path, &o, touch, &ignored);
    }
    for (int r = 0; r < reps; r++) {
        if (cold) {
            drop_cache(path);
        }
        double dt = one_open(path, &o, touch, &allocs);
        total += dt;
        best = dt < best ? dt : best;
    }
    printf("%-34s %-5s %12.0f ns/op (best %12.0f)  %6.1f allocs/op  (%d runs)\n", label,
           cold ? "cold" : "warm", total / reps, best, (double)allocs / reps, reps);
}

int main(int argc, char **argv)
{
    // Default: beside the executable (the build folder), never in the source tree.
    char def[4096];
    const char *slash = strrchr(argv[0], '/');
    snprintf(def, sizeof def, "%.*sbench-gguf-1g.gguf", slash ? (int)(slash - argv[0] + 1) : 0,
             argv[0]);
    const char *path = argc > 1 ? argv[1] : def;
    uint64_t size = 0;
    struct llem_errbuf eb = {0};
    if (argc <= 1 && fs_file_size(path, &size, &eb) != LLEM_OK) {
        printf("writing %s (~1 GB) ...\n", path);
        double t0 = now_ns();
        if (make_model(path) != 0) {
            return 1;
        }
        fs_file_size(path, &size, &eb);
        printf("written in %.2f s (%.0f MB/s, incl. fsync)\n", (now_ns() - t0) / 1e9,
               (double)size / 1e6 / ((now_ns() - t0) / 1e9));
    } else if (fs_file_size(path, &size, &eb) != LLEM_OK) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        return 1;
    }
    struct gguf_file *f = NULL;
    if (gguf_open(&f, path, NULL, &eb) != LLEM_OK) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        return 1;
    }
    printf("%s: %.2f GB, %" PRId64 " keys, %" PRId64 " tensors, header %" PRIu64 " bytes\n", path,
           (double)size / 1e9, gguf_n_kv(f), gguf_n_tensors(f), gguf_data_offset(f));
    gguf_close(f);
    const struct gguf_open_opts mmap_o = {0}, meta_o = {.metadata_only = true},
                                pread_o = {.no_mmap = true};
    run("gguf_open (mmap)", path, mmap_o, 0, 0, 50);
    run("gguf_open (metadata_only)", path, meta_o, 0, 0, 50);
    run("gguf_open (mmap)", path, mmap_o, 0, 1, 5);
    run("gguf_open (metadata_only)", path, meta_o, 0, 1, 5);
    run("gguf_open (mmap) + touch all pages", path, mmap_o, 1, 0, 3);
    run("gguf_open (mmap) + touch all pages", path, mmap_o, 1, 1, 2);
    run("gguf_open (no_mmap: pread all)", path, pread_o, 0, 0, 3);
    run("gguf_open (no_mmap: pread all)", path, pread_o, 0, 1, 2);
    return 0;
}
