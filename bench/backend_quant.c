// bench/backend_quant.c: the quantized dot-product kernels (backend/cpu/quant/). Part 1: ns per
// row-dot and GB/s of weights per type at n = 2048 and 5632, scalar vs AVX2, with the rows
// streamed from a 64 MiB matrix (decode-like, memory-bound) and hot in L2 (compute-bound); the
// "deq" column is the generic fallback (dequantize the row to F32 + F32 dot) for comparison.
// Part 2: mul_mat through the CPU backend for a 2048x5632 weight, decode (M = 1) and prefill
// (M = 512). Every kernel is validated against the scalar reference before timing.
// With LLAMA_CPU_LIB=/path/libggml-cpu.so, part 1 also times llama.cpp's own vec_dot kernels
// (dlopen'ed, same block layouts) on the same hot rows, interleaved with ours.
// Part 3 (prefill kernels): one thread, a 16-row x 24-column block hot in cache (mul_mat's
// grid cell) computed with the kernel tiles vs one vec_dot per element, in thread CPU time (the
// machine is shared: CPU time does not count the time the thread waits for a core).
// Usage: bench_backend_quant [-t threads] [-f substr] [-s (skip part 1)] [-m (skip part 2)]
//        [-x (skip part 3)] [-p prefill_M]
#include <dlfcn.h>
#include <time.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "backend/cpu/cpu_int.h"
#include "backend/cpu/quant/quant.h"
#include "base/alloc.h"
#include "base/cpu.h"
#include "base/metrics.h"
#include "base/rng.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

typedef void (*dot_fn)(int n, float *s, const void *x, const void *y);
// ggml's vec_dot signature (strides and nrc unused for one row).
typedef void (*ggml_dot_fn)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                            size_t by, int nrc);

struct qk {
    uint32_t type;
    dot_fn ref, avx2;
};

static const struct qk kernels[] = {
    {GGML_TYPE_Q4_0, cpu_vec_dot_q4_0_q8_0_ref, cpu_vec_dot_q4_0_q8_0_avx2},
    {GGML_TYPE_Q8_0, cpu_vec_dot_q8_0_q8_0_ref, cpu_vec_dot_q8_0_q8_0_avx2},
    {GGML_TYPE_Q4_K, cpu_vec_dot_q4_K_q8_K_ref, cpu_vec_dot_q4_K_q8_K_avx2},
    {GGML_TYPE_Q6_K, cpu_vec_dot_q6_K_q8_K_ref, cpu_vec_dot_q6_K_q8_K_avx2},
    {GGML_TYPE_Q5_K, cpu_vec_dot_q5_K_q8_K_ref, cpu_vec_dot_q5_K_q8_K_avx2},
    {GGML_TYPE_F16, cpu_vec_dot_f16_ref, cpu_vec_dot_f16_avx2},
    {GGML_TYPE_Q4_1, cpu_vec_dot_q4_1_q8_1_ref, cpu_vec_dot_q4_1_q8_1_avx2},
    {GGML_TYPE_Q5_0, cpu_vec_dot_q5_0_q8_0_ref, cpu_vec_dot_q5_0_q8_0_avx2},
    {GGML_TYPE_Q5_1, cpu_vec_dot_q5_1_q8_1_ref, cpu_vec_dot_q5_1_q8_1_avx2},
    {GGML_TYPE_Q2_K, cpu_vec_dot_q2_K_q8_K_ref, cpu_vec_dot_q2_K_q8_K_avx2},
    {GGML_TYPE_Q3_K, cpu_vec_dot_q3_K_q8_K_ref, cpu_vec_dot_q3_K_q8_K_avx2},
    {GGML_TYPE_IQ4_NL, cpu_vec_dot_iq4_nl_q8_0_ref, cpu_vec_dot_iq4_nl_q8_0_avx2},
    {GGML_TYPE_IQ4_XS, cpu_vec_dot_iq4_xs_q8_K_ref, cpu_vec_dot_iq4_xs_q8_K_avx2},
    {GGML_TYPE_MXFP4, cpu_vec_dot_mxfp4_q8_0_ref, cpu_vec_dot_mxfp4_q8_0_avx2},
    {GGML_TYPE_BF16, cpu_vec_dot_bf16_ref, cpu_vec_dot_bf16_avx2},
};

static double now_s(void)
{
    return (double)metrics_now_ns() * 1e-9;
}

// Real rows (quantized Gaussian data) repeated over the buffer: realistic code and scale
// patterns without quantizing 64 MiB with the slow K-quant reference quantizers.
static void fill_rows(struct rng *r, uint32_t type, int n, char *buf, size_t rows)
{
    const struct type_traits *tr = tensor_traits(type);
    const size_t rb = tensor_row_size(type, n);
    float *f = llem_malloc((size_t)n * sizeof(float));
    const size_t distinct = rows < 64 ? rows : 64;
    for (size_t i = 0; i < distinct; i++) {
        for (int k = 0; k < n; k++) {
            f[k] = (float)rng_gaussian(r);
        }
        tr->from_f32(f, buf + i * rb, n);
    }
    for (size_t i = distinct; i < rows; i++) {
        memcpy(buf + i * rb, buf + (i % distinct) * rb, rb);
    }
    llem_free(f);
}

// Seconds per pass of one vec_dot per row over `rows` rows (best of reps passes).
static double time_rows(dot_fn f, int n, const char *w, size_t rb, size_t rows, const void *y,
                        int reps, float *sink)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        float acc = 0;
        for (size_t i = 0; i < rows; i++) {
            float s;
            f(n, &s, w + i * rb, y);
            acc += s;
        }
        double dt = now_s() - t0;
        *sink += acc;
        best = dt < best ? dt : best;
    }
    return best;
}

static double time_rows_ggml(ggml_dot_fn f, int n, const char *w, size_t rb, size_t rows,
                             const void *y, int reps, float *sink)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        float acc = 0;
        for (size_t i = 0; i < rows; i++) {
            float s;
            f(n, &s, 0, w + i * rb, 0, y, 0, 1);
            acc += s;
        }
        double dt = now_s() - t0;
        *sink += acc;
        best = dt < best ? dt : best;
    }
    return best;
}

static ggml_dot_fn ggml_kernel(void *lib, uint32_t type)
{
    if (!lib) {
        return NULL;
    }
    char name[64];
    const struct type_traits *tr = tensor_traits(type);
    const struct type_traits *vt = tensor_traits(tr->vec_dot_type);
    char a[16], b[16];
    size_t i;
    for (i = 0; tr->name[i] && i + 1 < sizeof a; i++) {
        a[i] = tr->name[i] == 'K' ? 'K' : (char)(tr->name[i] >= 'A' && tr->name[i] <= 'Z' ? tr->name[i] + 32 : tr->name[i]);
    }
    a[i] = 0;
    for (i = 0; vt->name[i] && i + 1 < sizeof b; i++) {
        b[i] = vt->name[i] == 'K' ? 'K' : (char)(vt->name[i] >= 'A' && vt->name[i] <= 'Z' ? vt->name[i] + 32 : vt->name[i]);
    }
    b[i] = 0;
    if (type == GGML_TYPE_F16 || type == GGML_TYPE_BF16) {
        snprintf(name, sizeof name, "ggml_vec_dot_%s", a);
    } else {
        snprintf(name, sizeof name, "ggml_vec_dot_%s_%s", a, b);
    }
    void *sym = dlsym(lib, name);
    ggml_dot_fn f;
    memcpy(&f, &sym, sizeof f);
    return f;
}

// The generic fallback's work per row: dequantize to F32, F32 dot (AVX2 vector helper).
static double time_deq(uint32_t type, int n, const char *w, size_t rb, size_t rows,
                       const float *yf, int reps, float *sink)
{
    const struct type_traits *tr = tensor_traits(type);
    float *row = llem_aligned_alloc(64, (size_t)n * sizeof(float));
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        float acc = 0;
        for (size_t i = 0; i < rows; i++) {
            tr->to_f32(w + i * rb, row, n);
            acc += cpu_vec_avx2.dot_f32(n, row, yf);
        }
        double dt = now_s() - t0;
        *sink += acc;
        best = dt < best ? dt : best;
    }
    llem_free(row);
    return best;
}

static int bench_kernels(const char *filter, bool avx2)
{
    const size_t big = 64u << 20, hot = 192u << 10;
    char *w = llem_aligned_alloc(64, big);
    float *yf = llem_aligned_alloc(64, 5632 * sizeof(float));
    void *yq = llem_aligned_alloc(64, 5632 * 4);
    struct rng r;
    rng_seed(&r, 7);
    float sink = 0;
    int rc = 0;
    const char *libpath = getenv("LLAMA_CPU_LIB");
    void *lib = libpath ? dlopen(libpath, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (libpath && !lib) {
        fprintf(stderr, "dlopen %s: %s\n", libpath, dlerror());
    }
    if (lib) {
        // fills ggml's f16 lookup table, which its kernels read when built without F16C
        void *sym = dlsym(lib, "ggml_cpu_init");
        void (*init)(void) = NULL;
        memcpy(&init, &sym, sizeof init);
        if (init) {
            init();
        }
    }
    printf("%-7s %5s | %9s %9s %9s | %9s %9s %9s | %7s %7s %7s\n", "type", "n", "ref ns", "deq ns",
           "avx2 ns", "avx2 hot", "ggml hot", "ns/blk", "ref GB/s", "deq", "avx2");
    for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) {
        const struct qk *k = &kernels[ki];
        const struct type_traits *tr = tensor_traits(k->type);
        if (filter && !strstr(tr->name, filter)) {
            continue;
        }
        static const int ns[] = {2048, 5632};
        for (int ni = 0; ni < 2; ni++) {
            const int n = ns[ni];
            const size_t rb = tensor_row_size(k->type, n);
            if (rb == 0) {
                continue; // 5632 is not a multiple of 256 for the K-quants? (it is: 22 blocks)
            }
            const size_t rows = big / rb, hrows = hot / rb;
            fill_rows(&r, k->type, n, w, rows);
            for (int i = 0; i < n; i++) {
                yf[i] = (float)rng_gaussian(&r);
            }
            const struct type_traits *vt = tensor_traits(tr->vec_dot_type);
            vt->from_f32(yf, yq, n);
            // validate
            float a = 0, b = 0;
            k->ref(n, &a, w, yq);
            if (avx2) {
                k->avx2(n, &b, w, yq);
                if (!(fabsf(a - b) <= 1e-4f * (1.0f + fabsf(a)))) {
                    fprintf(stderr, "%s n=%d: avx2 %g != ref %g\n", tr->name, n, (double)b, (double)a);
                    rc = 1;
                    continue;
                }
            }
            const size_t srows = rows / 8; // the scalar kernels are slow: an eighth of the rows
            double t_ref = time_rows(k->ref, n, w, rb, srows, yq, 1, &sink) / (double)srows;
            double t_deq = 0, t_avx = 0, t_hot = 1e30, t_ggml = 1e30;
            ggml_dot_fn gf = ggml_kernel(lib, k->type);
            if (gf) {
                float c = 0;
                gf(n, &c, 0, w, 0, yq, 0, 1);
                if (!(fabsf(a - c) <= 1e-3f * (1.0f + fabsf(a)))) {
                    fprintf(stderr, "%s n=%d: ggml %g != ref %g\n", tr->name, n, (double)c, (double)a);
                    gf = NULL;
                }
            }
            if (avx2) {
                t_deq = time_deq(k->type, n, w, rb, rows, yf, 2, &sink) / (double)rows;
                t_avx = time_rows(k->avx2, n, w, rb, rows, yq, 3, &sink) / (double)rows;
                for (int rep = 0; rep < 5; rep++) { // interleaved: the machine is shared
                    double t = time_rows(k->avx2, n, w, rb, hrows, yq, 40, &sink) / (double)hrows;
                    t_hot = t < t_hot ? t : t_hot;
                    if (gf) {
                        t = time_rows_ggml(gf, n, w, rb, hrows, yq, 40, &sink) / (double)hrows;
                        t_ggml = t < t_ggml ? t : t_ggml;
                    }
                }
            }
            const double nblk = (double)n / (double)tr->blck;
            printf("%-7s %5d | %9.0f %9.0f %9.0f | %9.0f %9.0f %9.2f | %7.2f %7.2f %7.2f\n",
                   tr->name, n, t_ref * 1e9, t_deq * 1e9, t_avx * 1e9, avx2 ? t_hot * 1e9 : 0.0,
                   gf ? t_ggml * 1e9 : 0.0,
                   avx2 ? t_hot * 1e9 / nblk : 0.0, (double)rb / t_ref * 1e-9,
                   t_deq > 0 ? (double)rb / t_deq * 1e-9 : 0.0,
                   t_avx > 0 ? (double)rb / t_avx * 1e-9 : 0.0);
            fflush(stdout);
        }
    }
    if (sink == 12345.678f) {
        printf("(sink)\n");
    }
    llem_free(w);
    llem_free(yf);
    llem_free(yq);
    if (lib) {
        dlclose(lib);
    }
    return rc;
}

// mul_mat through the backend: w [K, N] of `type`, x [K, M] F32.
static int bench_mul_mat(struct backend *be, uint32_t type, int64_t K, int64_t N, int64_t M,
                         int reps)
{
    struct llem_errbuf eb = {0};
    struct graph *gr = NULL;
    struct backend_galloc *ga = NULL;
    float *xf = NULL, *out = NULL, *row = NULL;
    char *wq = NULL;
    int rc = 1;
    struct rng r;
    rng_seed(&r, 3);
    if (graph_new(&gr, &eb) || backend_galloc_new(be, &ga, &eb)) {
        goto done;
    }
    struct tensor *w = graph_input(gr, "w", type, K, N, 1, 1);
    struct tensor *x = graph_input(gr, "x", GGML_TYPE_F32, K, M, 1, 1);
    struct tensor *y = op_mul_mat(gr, w, x);
    graph_set_output(gr, y);
    if (backend_galloc_alloc_graph(ga, gr, &eb)) {
        goto done;
    }
    const size_t rb = tensor_row_size(type, K);
    wq = llem_malloc(rb * (size_t)N);
    fill_rows(&r, type, (int)K, wq, (size_t)N);
    backend_tensor_set(w, wq, 0, rb * (size_t)N);
    xf = llem_malloc((size_t)(K * M) * sizeof(float));
    for (int64_t i = 0; i < K * M; i++) {
        xf[i] = (float)rng_gaussian(&r);
    }
    backend_tensor_set(x, xf, 0, (size_t)(K * M) * sizeof(float));
    if (backend_graph_compute(be, gr, &eb)) {
        goto done;
    }
    out = llem_malloc((size_t)(N * M) * sizeof(float));
    backend_tensor_get(y, out, 0, (size_t)(N * M) * sizeof(float));
    // validate a sample against an F64 dot of the dequantized weights and F32 activations
    row = llem_malloc((size_t)K * sizeof(float));
    for (int s = 0; s < 8; s++) {
        int64_t n = (int64_t)rng_bounded(&r, (uint64_t)N), m = (int64_t)rng_bounded(&r, (uint64_t)M);
        tensor_traits(type)->to_f32(wq + (size_t)n * rb, row, K);
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < K; k++) {
            ref += (double)row[k] * (double)xf[m * K + k];
            mag += fabs((double)row[k] * (double)xf[m * K + k]);
        }
        if (fabs((double)out[m * N + n] - ref) > 2e-2 * mag + 1e-6) {
            fprintf(stderr, "mul_mat %s: output check failed at (%lld, %lld): %g vs %g\n",
                    tensor_traits(type)->name, (long long)n, (long long)m,
                    (double)out[m * N + n], ref);
            goto done;
        }
    }
    uint64_t a0 = llem_alloc_count();
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        backend_graph_compute(be, gr, &eb);
        double dt = now_s() - t0;
        best = dt < best ? dt : best;
    }
    double allocs = (double)(llem_alloc_count() - a0) / reps;
    printf("mul_mat %-6s %lldx%lld M=%-4lld %11.0f ns/op %7.2f GB/s(w) %7.1f GFLOP/s %6.1f tok/s-equiv %4.1f allocs/op\n",
           tensor_traits(type)->name, (long long)K, (long long)N, (long long)M, best * 1e9,
           (double)(rb * (size_t)N) / best * 1e-9, 2.0 * (double)(K * N * M) / best * 1e-9,
           (double)M / best, allocs);
    fflush(stdout);
    rc = 0;
done:
    if (rc && eb.msg[0]) {
        fprintf(stderr, "mul_mat: %s\n", eb.msg);
    }
    llem_free(row);
    llem_free(xf);
    llem_free(out);
    llem_free(wq);
    backend_galloc_free(ga);
    graph_free(gr);
    return rc;
}


static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum { TB_R = 16, TB_C = 24 };

// One 16x24 block as mul_mat computes it: F16 4x3 register tiles, quantized 4 x 24 kernel tiles,
// or per-element dots; returns a checksum.
static float tile_block(const struct cpu_vec_dot_entry *e, const struct cpu_vec *v, uint32_t type,
                        int n, const char *w, size_t wrb, const char *y, size_t yrb, bool tiles,
                        float *out)
{
    const void *ys[TB_C];
    for (int m = 0; m < TB_C; m++) {
        ys[m] = y + (size_t)m * yrb;
    }
    for (int r = 0; r < TB_R; r += 4) {
        const void *ws[4] = {w + (size_t)r * wrb, w + (size_t)(r + 1) * wrb,
                             w + (size_t)(r + 2) * wrb, w + (size_t)(r + 3) * wrb};
        float s[4 * TB_C];
        if (type == GGML_TYPE_F16 && tiles) {
            for (int m = 0; m < TB_C; m += 3) {
                float t[4][3];
                v->tile4x3_f16(n, (const uint16_t *const *)ws, (const float *const *)(ys + m), t);
                for (int i = 0; i < 4; i++) {
                    for (int q = 0; q < 3; q++) {
                        s[i * TB_C + m + q] = t[i][q];
                    }
                }
            }
        } else if (tiles) {
            e->tile(n, ws, ys, TB_C, s);
        } else {
            for (int i = 0; i < 4; i++) {
                for (int q = 0; q < TB_C; q++) {
                    if (type == GGML_TYPE_F16) {
                        s[i * TB_C + q] = v->dot_f16_f32(n, ws[i], ys[q]);
                    } else {
                        e->vec_dot(n, &s[i * TB_C + q], ws[i], ys[q]);
                    }
                }
            }
        }
        for (int i = 0; i < 4; i++) {
            for (int q = 0; q < TB_C; q++) {
                out[q * TB_R + r + i] = s[i * TB_C + q];
            }
        }
    }
    float sum = 0;
    for (int i = 0; i < TB_R * TB_C; i++) {
        sum += out[i];
    }
    return sum;
}

static int bench_tiles(const char *filter)
{
    const int n = 2048;
    const struct cpu_vec_dot_entry *tab = cpu_vec_dot_table(CPU_ISA_AVX2);
    const struct cpu_vec *v = cpu_vec(CPU_ISA_AVX2);
    char *w = llem_aligned_alloc(64, (size_t)TB_R * n * 4);
    char *y = llem_aligned_alloc(64, (size_t)TB_C * n * 4);
    float *yf = llem_malloc((size_t)TB_C * n * sizeof(float));
    float out_t[TB_R * TB_C], out_d[TB_R * TB_C];
    struct rng r;
    rng_seed(&r, 11);
    int rc = 0;
    printf("prefill tiles, 1 thread, %dx%d block hot, n=%d, thread CPU time\n", TB_R, TB_C, n);
    printf("%-7s | %10s %10s | %8s %8s | %6s\n", "type", "dot ns/el", "tile ns/el", "dot GOP/s",
           "tile GOP/s", "speedup");
    for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++) {
        const struct cpu_vec_dot_entry *e = &tab[t];
        if (!(e->tile || t == GGML_TYPE_F16) || (filter && !strstr(tensor_traits(t)->name, filter))) {
            continue;
        }
        const uint32_t yt = t == GGML_TYPE_F16 ? GGML_TYPE_F32 : tensor_traits(t)->vec_dot_type;
        const size_t wrb = tensor_row_size(t, n), yrb = tensor_row_size(yt, n);
        fill_rows(&r, t, n, w, TB_R);
        for (int i = 0; i < TB_C * n; i++) {
            yf[i] = (float)rng_gaussian(&r);
        }
        for (int c = 0; c < TB_C; c++) {
            if (t == GGML_TYPE_F16) {
                memcpy(y + (size_t)c * yrb, yf + (size_t)c * n, yrb);
            } else if (e->from_f32) {
                e->from_f32(yf + (size_t)c * n, y + (size_t)c * yrb, n);
            } else {
                tensor_traits(yt)->from_f32(yf + (size_t)c * n, y + (size_t)c * yrb, n);
            }
        }
        tile_block(e, v, t, n, w, wrb, y, yrb, true, out_t);
        tile_block(e, v, t, n, w, wrb, y, yrb, false, out_d);
        if (memcmp(out_t, out_d, sizeof out_t) != 0) {
            fprintf(stderr, "%s: tile != vec_dot\n", tensor_traits(t)->name);
            rc = 1;
        }
        double best[2] = {1e30, 1e30};
        float sink = 0;
        for (int rep = 0; rep < 7; rep++) { // interleaved
            for (int k = 0; k < 2; k++) {
                double t0 = thread_cpu_s();
                for (int it = 0; it < 8; it++) {
                    sink += tile_block(e, v, t, n, w, wrb, y, yrb, k == 1, k ? out_t : out_d);
                }
                double dt = (thread_cpu_s() - t0) / 8 / (TB_R * TB_C);
                best[k] = dt < best[k] ? dt : best[k];
            }
        }
        printf("%-7s | %10.1f %10.1f | %8.1f %8.1f | %5.2fx%s\n", tensor_traits(t)->name,
               best[0] * 1e9, best[1] * 1e9, 2.0 * n / best[0] * 1e-9, 2.0 * n / best[1] * 1e-9,
               best[0] / best[1], sink == 1234.5f ? " " : "");
        fflush(stdout);
    }
    llem_free(w);
    llem_free(y);
    llem_free(yf);
    return rc;
}

int main(int argc, char **argv)
{
    int threads = 2;
    const char *filter = NULL, *isa = NULL;
    bool kern = true, mm = true, tiles = true;
    int prefill_m = 512;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            threads = (int)strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
            filter = argv[++i];
        } else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
            isa = argv[++i];
        } else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
            prefill_m = (int)strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-s") == 0) {
            kern = false;
        } else if (strcmp(argv[i], "-m") == 0) {
            mm = false;
        } else if (strcmp(argv[i], "-x") == 0) {
            tiles = false;
        }
    }
    const struct cpu_features *f = cpu_features();
    const bool avx2 = f->avx2 && f->fma && f->f16c && f->os_ymm;
    int rc = 0;
    if (kern) {
        rc |= bench_kernels(filter, avx2);
    }
    if (tiles && avx2) {
        rc |= bench_tiles(filter);
    }
    if (mm) {
        struct backend_params p = {.n_threads = threads, .isa = isa};
        struct backend *be = NULL;
        struct llem_errbuf eb = {0};
        if (backend_new("cpu", &p, &be, &eb)) {
            fprintf(stderr, "%s\n", eb.msg);
            return 1;
        }
        printf("cpu backend: %d threads, %s kernels\n", cpu_backend_n_threads(be),
               cpu_isa_name(cpu_backend_isa(be)));
        static const uint32_t types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K,
                                         GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_F16};
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            if (filter && !strstr(tensor_traits(types[i])->name, filter)) {
                continue;
            }
            rc |= bench_mul_mat(be, types[i], 2048, 5632, 1, 30);
            if (prefill_m > 1) {
                rc |= bench_mul_mat(be, types[i], 2048, 5632, prefill_m, 2);
            }
        }
        backend_free(be);
    }
    return rc;
}
