// bench/kvcache_cells.c: micro-benchmarks of the KV cache bookkeeping: start-forward of a
// decode step, mask build (small: 1 sequence, 32 cells; large: 16 sequences, 4096 cells),
// cell allocation for a 512-token batch, sequence-bitmap set/test and copy-prefix.
// Prints ns/op and allocations/op (after warm-up). Usage: bench_kvcache_cells [iterations]
// (LLEM_CPU_DISABLE=avx2 measures the portable mask expansion).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/alloc.h"
#include "kvcache/kv_cells.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void report(const char *name, double ns, uint64_t allocs, long iters)
{
    printf("%-44s %10.2f ns/op %6.2f allocs/op\n", name, ns / (double)iters,
           (double)allocs / (double)iters);
}

static void must(enum llem_err rc, const struct llem_errbuf *eb)
{
    if (rc != LLEM_OK) {
        fprintf(stderr, "bench: %s\n", eb->msg);
        exit(1);
    }
}

// A cache with n_seq sequences holding `per_seq` tokens each, interleaved like a running batch.
static void fill(struct kv_cells *c, int n_seq, int per_seq, int n_ctx, bool f16)
{
    struct llem_errbuf eb = {0};
    struct kv_cells_params p = {.kind = KV_CAUSAL, .n_seq_max = n_seq, .n_ctx_seq = n_ctx,
                                .n_batch_max = 512, .padding = 1, .mask_f16 = f16};
    must(kv_cells_init(c, &p, &eb), &eb);
    llem_pos pos[64];
    llem_seq seq[64];
    for (int t = 0; t < per_seq; t++) {
        for (int s = 0; s < n_seq; s++) {
            pos[s] = t;
            seq[s] = s;
        }
        must(kv_cells_start(c, n_seq, pos, seq, &eb), &eb);
    }
}

// Decode step: every sequence adds one token, then the tokens are removed again so the cache
// shape is the same at every iteration.
static void bench_step(const char *name, int n_seq, int per_seq, bool f16, long iters)
{
    struct kv_cells c;
    struct llem_errbuf eb = {0};
    fill(&c, n_seq, per_seq, per_seq + 8, f16);
    llem_pos pos[64];
    llem_seq seq[64];
    for (int s = 0; s < n_seq; s++) {
        pos[s] = per_seq;
        seq[s] = s;
    }
    for (int w = 0; w < 10; w++) { // warm-up: the mask scratch reaches its size
        must(kv_cells_start(&c, n_seq, pos, seq, &eb), &eb);
        for (int s = 0; s < n_seq; s++) {
            kv_cells_remove(&c, s, per_seq, -1, NULL, &eb);
        }
    }
    uint64_t a0 = llem_alloc_count();
    double t0 = now_ns(), t_remove = 0;
    for (long i = 0; i < iters; i++) {
        must(kv_cells_start(&c, n_seq, pos, seq, &eb), &eb);
        double r0 = now_ns();
        for (int s = 0; s < n_seq; s++) {
            kv_cells_remove(&c, s, per_seq, -1, NULL, &eb);
        }
        t_remove += now_ns() - r0;
    }
    double t = now_ns() - t0 - t_remove;
    report(name, t, llem_alloc_count() - a0, iters);
    kv_cells_deinit(&c);
}

static void bench_alloc512(long iters)
{
    struct kv_cells c;
    struct llem_errbuf eb = {0};
    struct kv_cells_params p = {.kind = KV_CAUSAL, .n_seq_max = 1, .n_ctx_seq = 4096,
                                .n_batch_max = 512, .padding = 1};
    must(kv_cells_init(&c, &p, &eb), &eb);
    llem_pos pos[512];
    llem_seq seq[512] = {0};
    for (int i = 0; i < 512; i++) {
        pos[i] = i;
    }
    must(kv_cells_start(&c, 512, pos, seq, &eb), &eb);
    kv_cells_clear(&c);
    uint64_t a0 = llem_alloc_count();
    double total = 0;
    for (long i = 0; i < iters; i++) {
        double t0 = now_ns();
        must(kv_cells_start(&c, 512, pos, seq, &eb), &eb);
        total += now_ns() - t0;
        kv_cells_clear(&c);
    }
    report("start-forward, 512-token prompt (alloc+mask)", total, llem_alloc_count() - a0, iters);
    kv_cells_deinit(&c);
}

// Sequence-bitmap test as the cache uses it: one sequence's membership over every cell of a
// 4096-cell cache (what a mask row or a walk over a sequence's cells asks), the sequence
// changing per sweep and the hits summed so nothing can be hoisted or dropped; ns per cell.
// The second line is the older form: cell i & 4095, sequence i & 15, one test per iteration
// with a loop-carried sum. Set writes the per-cell sets directly (the cache is dropped after).
static void bench_bitmap(long iters)
{
    struct kv_cells c;
    fill(&c, 16, 256, 256, false);
    volatile long sink = 0;
    const long sweeps = iters / 4096 + 1;
    uint64_t a0 = llem_alloc_count();
    double t0 = now_ns();
    long hits = 0;
    for (long k = 0; k < sweeps; k++) {
        const llem_seq s = (llem_seq)(k & 15);
        for (int32_t cell = 0; cell < 4096; cell++) {
            hits += kv_cell_has_seq(&c, cell, s);
        }
    }
    double t = now_ns() - t0;
    sink = hits;
    report("bitmap test: 1 seq over 4096 cells, per cell", t, llem_alloc_count() - a0,
           sweeps * 4096);
    // The same question asked the way the mask builder and the sequence walks ask it: the
    // sequence's own bitmap (seq_bits), 64 cells per word and a popcount. ns per cell.
    a0 = llem_alloc_count();
    t0 = now_ns();
    hits = 0;
    for (long k = 0; k < sweeps; k++) {
        const uint64_t *row = c.seq_bits + (size_t)(k & 15) * (size_t)c.seq_words;
        for (int32_t w = 0; w < 4096 / 64; w++) {
            hits += __builtin_popcountll(row[w]);
        }
    }
    t = now_ns() - t0;
    sink = hits;
    report("bitmap test: 1 seq over 4096 cells, 64 per word", t, llem_alloc_count() - a0,
           sweeps * 4096);
    a0 = llem_alloc_count();
    t0 = now_ns();
    int h = 0;
    for (long i = 0; i < iters; i++) {
        h += kv_cell_has_seq(&c, (int32_t)(i & 4095), (llem_seq)(i & 15));
    }
    t = now_ns() - t0;
    sink = h;
    (void)sink;
    report("bitmap test: cell i&4095, seq i&15, chained", t, llem_alloc_count() - a0, iters);
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        c.seqs[i & 4095] |= 1ull << (i & 15);
    }
    report("sequence bitmap set", now_ns() - t0, 0, iters);
    kv_cells_deinit(&c);
}

// Copy-prefix of 16 of src's 32 cells into dst; the first line repeats the same copy (dst
// already shares those cells), the second alternates 16 and 24 so every call moves 8 cells.
static void bench_copy_prefix(long iters)
{
    struct kv_cells c;
    fill(&c, 2, 32, 64, false);
    uint64_t a0 = llem_alloc_count();
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        kv_cells_copy_prefix(&c, 0, 1, 16);
    }
    report("copy-prefix (16 of 32 cells)", now_ns() - t0, llem_alloc_count() - a0, iters);
    a0 = llem_alloc_count();
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        kv_cells_copy_prefix(&c, 0, 1, (i & 1) ? 24 : 16);
    }
    report("copy-prefix (alternating 16 / 24 of 32)", now_ns() - t0, llem_alloc_count() - a0,
           iters);
    kv_cells_deinit(&c);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    if (iters < 1) {
        iters = 1;
    }
    bench_step("start-forward, decode 1 seq / 32 cells (f32)", 1, 32, false, iters);
    bench_step("mask small: 1 seq, 32 cells (f16)", 1, 32, true, iters);
    bench_step("mask large: 16 seqs, 4096 cells (f32)", 16, 256, false, iters / 20);
    bench_step("mask large: 16 seqs, 4096 cells (f16)", 16, 256, true, iters / 20);
    bench_alloc512(iters / 200);
    bench_bitmap(iters * 50);
    bench_copy_prefix(iters);
    return 0;
}
