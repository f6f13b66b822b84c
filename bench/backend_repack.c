// bench/backend_repack.c: the gemm kernels of weights repacked in groups of 8 rows (every kind
// of cpu_repack_kind_at, backend/cpu/quant/quant.h) against the weight type's AVX2 vec_dot on
// one thread: ns per group of 8 rows per 256 elements and GB/s of weight bytes, for nc = 1
// (decode) and nc = 4 (prompt) against vec_dot x 8 rows (x 4 columns), with the rows streamed
// from a buffer larger than L3 (DRAM-bound, as decode) and hot in L2 (compute-bound). Times are
// thread CPU time and methods alternate inside each repetition (the machine is shared); the
// best repetition counts. Every kernel is checked against vec_dot first. Also the load-time
// repack itself, scalar against AVX2, in GB/s of source rows.
// Usage: bench_backend_repack [-k K] [-m MiB] [-r reps] [-f substring of the kind's name]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu_int.h"
#include "backend/cpu/quant/quant.h"
#include "base/alloc.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "tensor/types.h"

#define HOT_BYTES (192 << 10) // under L2, both copies' working sets timed apart
#define HOT_NS 20000000.0     // a hot measurement repeats passes for at least this long

struct kset {
    const struct cpu_repack_kind *kind;
    cpu_vec_dot_fn vd;
    int K;
    size_t rb, gb;          // plain row bytes, group bytes
    const char *plain, *packed;
    const void *ys[REPACK_MAX_COLS];
    const int16_t *aux[REPACK_MAX_COLS];
};

static float g_sink;

static int64_t thread_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// Nanoseconds for one pass of vec_dot over `rows` rows x nc columns.
static double pass_vd(const struct kset *k, size_t rows, int nc)
{
    const int64_t t0 = thread_ns();
    float acc = 0;
    for (size_t i = 0; i < rows; i++) {
        for (int c = 0; c < nc; c++) {
            float s;
            k->vd(k->K, &s, k->plain + i * k->rb, k->ys[c]);
            acc += s;
        }
    }
    g_sink += acc;
    return (double)(thread_ns() - t0);
}

// Nanoseconds for one pass of the kind's AVX2 gemm over rows / 8 groups x nc columns.
static double pass_gemm(const struct kset *k, size_t rows, int nc)
{
    const int64_t t0 = thread_ns();
    float acc = 0;
    for (size_t g = 0; g < rows / REPACK_ROWS; g++) {
        float out[REPACK_ROWS * REPACK_MAX_COLS];
        k->kind->gemm_avx2(k->K, k->packed + g * k->gb, k->ys, k->aux, nc, out);
        acc += out[0];
    }
    g_sink += acc;
    return (double)(thread_ns() - t0);
}

// Best ns per pass over `rows` rows; hot: passes repeated for HOT_NS and averaged.
static double timed(const struct kset *k, size_t rows, int nc, bool gemm, bool hot)
{
    if (!hot) {
        return gemm ? pass_gemm(k, rows, nc) : pass_vd(k, rows, nc);
    }
    double total = 0;
    int n = 0;
    (void)(gemm ? pass_gemm(k, rows, nc) : pass_vd(k, rows, nc)); // warm the caches
    while (total < HOT_NS) {
        total += gemm ? pass_gemm(k, rows, nc) : pass_vd(k, rows, nc);
        n++;
    }
    return total / n;
}

// Real rows (quantized Gaussian data) repeated over the buffer: realistic codes and scales
// without quantizing hundreds of MiB with the slow reference quantizers.
static void fill_rows(struct rng *r, uint32_t type, int K, char *buf, size_t rows)
{
    const struct type_traits *tr = tensor_traits(type);
    const size_t rb = tensor_row_size(type, K);
    float *f = llem_malloc((size_t)K * sizeof(float));
    const size_t distinct = rows < 64 ? rows : 64;
    for (size_t i = 0; i < distinct; i++) {
        for (int j = 0; j < K; j++) {
            f[j] = (float)rng_gaussian(r);
        }
        tr->from_f32(f, buf + i * rb, K);
    }
    for (size_t i = distinct; i < rows; i++) {
        memcpy(buf + i * rb, buf + (i % distinct) * rb, rb);
    }
    llem_free(f);
}

// The gemm of the first groups against vec_dot: relative difference to the largest |dot|.
static double validate(const struct kset *k, size_t rows)
{
    double maxd = 0, maxv = 0;
    for (size_t g = 0; g < rows / REPACK_ROWS && g < 4; g++) {
        float out[REPACK_ROWS * REPACK_MAX_COLS];
        k->kind->gemm_avx2(k->K, k->packed + g * k->gb, k->ys, k->aux, REPACK_MAX_COLS, out);
        for (int c = 0; c < REPACK_MAX_COLS; c++) {
            for (int r = 0; r < REPACK_ROWS; r++) {
                float s;
                k->vd(k->K, &s, k->plain + (g * REPACK_ROWS + (size_t)r) * k->rb, k->ys[c]);
                maxd = fmax(maxd, fabs((double)out[REPACK_ROWS * c + r] - (double)s));
                maxv = fmax(maxv, fabs((double)s));
            }
        }
    }
    return maxd / (maxv > 0 ? maxv : 1);
}

// The load-time copy: the kind's scalar repack against its AVX2 one over the whole stream
// (destination already faulted in: the copy alone, not the kernel zeroing new pages), GB/s of
// source bytes. The AVX2 copy must write the scalar copy's bytes.
static int bench_repack(const struct cpu_repack_kind *kind, int K, const char *plain, size_t rb,
                        size_t rows, char *packed, int reps)
{
    if (!kind->repack_avx2) {
        printf("%s: repack scalar only\n", kind->name);
        return 0;
    }
    const size_t bytes = rows / REPACK_ROWS * kind->group_bytes(K);
    char *fast = llem_aligned_alloc(64, bytes);
    if (!fast) {
        fprintf(stderr, "%s: out of memory\n", kind->name);
        return 1;
    }
    double best[2] = {INFINITY, INFINITY};
    for (int rep = 0; rep < reps; rep++) {
        for (int avx2 = 0; avx2 < 2; avx2++) {
            const int64_t t0 = thread_ns();
            (avx2 ? kind->repack_avx2 : kind->repack)(plain, rb, K, (int64_t)rows,
                                                      avx2 ? fast : packed);
            best[avx2] = fmin(best[avx2], (double)(thread_ns() - t0));
        }
    }
    const bool same = memcmp(packed, fast, bytes) == 0;
    llem_aligned_free(fast);
    printf("%s repack of %zu MiB: scalar %.2f GB/s | AVX2 %.2f GB/s | x%.2f%s\n", kind->name,
           rows * rb >> 20, (double)(rows * rb) / best[0], (double)(rows * rb) / best[1],
           best[0] / best[1], same ? "" : "  DIFFERENT BYTES");
    return same ? 0 : 1;
}

static int bench_kind(const struct cpu_repack_kind *kind, int K, size_t mib, int reps)
{
    const uint32_t type = kind->type;
    const struct type_traits *tr = tensor_traits(type);
    const struct cpu_vec_dot_entry *e = &cpu_vec_dot_table(CPU_ISA_AVX2)[type];
    if (!e->vec_dot || K % tr->blck != 0) {
        printf("%s: no AVX2 vec_dot or K %% block != 0, skipped\n", kind->name);
        return 0;
    }
    struct kset k = {.kind = kind, .vd = e->vec_dot, .K = K, .rb = tensor_row_size(type, K),
                     .gb = kind->group_bytes(K)};
    const size_t rows = ((mib << 20) / k.rb) & ~(size_t)(REPACK_ROWS - 1);
    size_t hot_rows = (HOT_BYTES / k.rb) & ~(size_t)(REPACK_ROWS - 1);
    hot_rows = hot_rows ? hot_rows : REPACK_ROWS;
    char *plain = llem_aligned_alloc(64, rows * k.rb);
    char *packed = llem_aligned_alloc(64, rows / REPACK_ROWS * k.gb);
    const uint32_t vdt = tr->vec_dot_type;
    const size_t yb = tensor_row_size(vdt, K);
    char *y = llem_aligned_alloc(64, REPACK_MAX_COLS * yb);
    const size_t n_aux = kind->aux ? (size_t)(K / kind->aux_per) : 1;
    int16_t *aux = llem_malloc(REPACK_MAX_COLS * n_aux * sizeof(int16_t));
    float *f = llem_malloc((size_t)K * sizeof(float));
    if (!plain || !packed || !y || !aux || !f || rows == 0) {
        fprintf(stderr, "%s: out of memory\n", kind->name);
        return 1;
    }
    struct rng r;
    rng_seed(&r, 99);
    fill_rows(&r, type, K, plain, rows);
    kind->repack(plain, k.rb, K, (int64_t)rows, packed);
    for (int c = 0; c < REPACK_MAX_COLS; c++) {
        for (int j = 0; j < K; j++) {
            f[j] = (float)rng_gaussian(&r);
        }
        void *yc = y + (size_t)c * yb;
        if (e->from_f32) {
            e->from_f32(f, yc, K);
        } else {
            tensor_traits(vdt)->from_f32(f, yc, K);
        }
        k.ys[c] = yc;
        k.aux[c] = kind->aux ? aux + (size_t)c * n_aux : NULL;
        if (kind->aux) {
            kind->aux(yc, K, aux + (size_t)c * n_aux);
        }
    }
    k.plain = plain;
    k.packed = packed;
    if (bench_repack(kind, K, plain, k.rb, rows, packed, reps) != 0) {
        return 1;
    }
    const double rel = validate(&k, rows);
    printf("%s (%s) K=%d: group %zu B vs 8 rows %zu B; gemm vs vec_dot max rel diff %.2g\n",
           kind->name, tr->name, K, k.gb, 8 * k.rb, rel);
    if (!(rel < 1e-4)) {
        fprintf(stderr, "%s: gemm disagrees with vec_dot\n", kind->name);
        return 1;
    }
    // [hot][nc == 4][gemm]: best ns per pass
    double best[2][2][2];
    for (int i = 0; i < 8; i++) {
        best[i >> 2][(i >> 1) & 1][i & 1] = INFINITY;
    }
    const uint64_t a0 = llem_alloc_count();
    for (int rep = 0; rep < reps; rep++) {
        for (int i = 0; i < 8; i++) {
            const int hot = i >> 2, c4 = (i >> 1) & 1, gemm = i & 1;
            const double t = timed(&k, hot ? hot_rows : rows, c4 ? 4 : 1, gemm, hot);
            best[hot][c4][gemm] = fmin(best[hot][c4][gemm], t);
        }
    }
    const double allocs = (double)(llem_alloc_count() - a0);
    for (int hot = 0; hot < 2; hot++) {
        const size_t n = hot ? hot_rows : rows;
        const double units = (double)(n / REPACK_ROWS) * (K / 256.0); // 8-row groups x 256
        printf("  %-6s (%zu KiB plain)\n", hot ? "hot" : "stream", n * k.rb >> 10);
        for (int c4 = 0; c4 < 2; c4++) {
            const double tv = best[hot][c4][0], tg = best[hot][c4][1];
            printf("    nc=%d  vec_dot x 8 rows%s %7.1f ns  %5.2f GB/s | gemm %7.1f ns  %5.2f GB/s"
                   " | x%.2f  %.0f allocs/op\n",
                   c4 ? 4 : 1, c4 ? " x 4" : "    ", tv / units, (double)(n * k.rb) / tv,
                   tg / units, (double)(n / REPACK_ROWS * k.gb) / tg, tv / tg, allocs);
        }
    }
    llem_aligned_free(plain);
    llem_aligned_free(packed);
    llem_aligned_free(y);
    llem_free(aux);
    llem_free(f);
    return 0;
}

int main(int argc, char **argv)
{
    int K = 2048, reps = 3;
    size_t mib = 256;
    const char *filter = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-k") == 0) {
            K = (int)strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "-m") == 0) {
            mib = (size_t)strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "-r") == 0) {
            reps = (int)strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "-f") == 0) {
            filter = argv[i + 1];
        }
    }
    const struct cpu_features *cf = cpu_features();
    if (!(cf->avx2 && cf->fma && cf->f16c && cf->os_ymm)) {
        printf("no AVX2/FMA/F16C: nothing to measure\n");
        return 0;
    }
    if (K <= 0 || K % 256 != 0 || mib == 0 || reps <= 0) {
        fprintf(stderr, "usage: bench_backend_repack [-k K (multiple of 256)] [-m MiB] [-r reps] "
                        "[-f kind]\n");
        return 2;
    }
    printf("ns per 8-row group per 256 elements, one thread; stream = %zu MiB of rows\n", mib);
    int rc = 0;
    for (int i = 0; cpu_repack_kind_at(i); i++) {
        const struct cpu_repack_kind *kind = cpu_repack_kind_at(i);
        if (!filter || strstr(kind->name, filter)) {
            rc |= bench_kind(kind, K, mib, reps);
        }
    }
    printf("(sink %g)\n", (double)g_sink);
    return rc;
}
