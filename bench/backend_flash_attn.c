// bench/backend_flash_attn.c: flash attention for one decode step (or, with -q, a prompt ubatch
// of causal rows ending at the last cell) at tinyllama's shapes (head size 64, 32 query heads
// over 4 KV heads, F16 K/V and mask) at 512, 4096 and 16384 filled cells: ns per op, GB/s of
// K/V read once, allocations per op. The last row's output is checked against a double-
// precision attention on a few heads before timing.
// Usage: bench_backend_flash_attn [-t threads] [-r reps] [-n n_kv] [-q query_rows]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "base/alloc.h"
#include "base/metrics.h"
#include "base/rng.h"
#include "tensor/fp16.h"

#define D 64
#define NH 32
#define NHKV 4

static int run(struct backend *be, int64_t n_kv, int64_t n_q, int reps)
{
    struct llem_errbuf eb = {0};
    struct graph *gr = NULL;
    struct backend_galloc *ga = NULL;
    struct rng r;
    rng_seed(&r, 7);
    int rc = 1;
    const size_t nqe = (size_t)(D * NH * n_q);
    float *q = llem_malloc(nqe * sizeof(float)), *y = llem_malloc(nqe * sizeof(float));
    uint16_t *k = llem_malloc((size_t)(D * NHKV * n_kv) * 2), *v = llem_malloc((size_t)(D * NHKV * n_kv) * 2);
    uint16_t *m = llem_calloc((size_t)(n_kv * n_q), 2);
    if (!q || !y || !k || !v || !m || graph_new(&gr, &eb) || backend_galloc_new(be, &ga, &eb)) {
        goto done;
    }
    for (size_t i = 0; i < nqe; i++) {
        q[i] = (float)rng_gaussian(&r) * 0.5f;
    }
    for (int64_t i = 0; i < n_q; i++) { // causal: row i sees the cells up to n_kv - n_q + i
        for (int64_t j = n_kv - n_q + i + 1; j < n_kv; j++) {
            m[i * n_kv + j] = 0xFC00u; // -inf
        }
    }
    for (int64_t i = 0; i < D * NHKV * n_kv; i++) {
        k[i] = fp16_from_f32((float)rng_gaussian(&r) * 0.5f);
        v[i] = fp16_from_f32((float)rng_gaussian(&r));
    }
    // K/V as a cache stores them: [D * NHKV, n_kv] rows, viewed [D, n_kv, NHKV].
    struct tensor *tq = graph_input(gr, "q", GGML_TYPE_F32, D, n_q, NH, 1);
    struct tensor *tk = graph_input(gr, "k", GGML_TYPE_F16, D * NHKV, n_kv, 1, 1);
    struct tensor *tv = graph_input(gr, "v", GGML_TYPE_F16, D * NHKV, n_kv, 1, 1);
    struct tensor *tm = graph_input(gr, "m", GGML_TYPE_F16, n_kv, n_q, 1, 1);
    struct tensor *kv_k = op_view_3d(gr, tk, D, n_kv, NHKV, tk->nb[1], D * 2, 0);
    struct tensor *kv_v = op_view_3d(gr, tv, D, n_kv, NHKV, tv->nb[1], D * 2, 0);
    struct tensor *out = op_flash_attn_ext(gr, tq, kv_k, kv_v, tm, 0.125f, NULL);
    graph_set_output(gr, out);
    if (graph_error(gr, &eb) || backend_galloc_alloc_graph(ga, gr, &eb)) {
        goto done;
    }
    backend_tensor_set(tq, q, 0, nqe * sizeof(float));
    backend_tensor_set(tk, k, 0, (size_t)(D * NHKV * n_kv) * 2);
    backend_tensor_set(tv, v, 0, (size_t)(D * NHKV * n_kv) * 2);
    backend_tensor_set(tm, m, 0, (size_t)(n_kv * n_q) * 2);
    if (backend_graph_compute(be, gr, &eb)) {
        goto done;
    }
    backend_tensor_get(out, y, 0, nqe * sizeof(float));
    for (int h = 0; h < NH; h += 9) { // validate a few heads of the last row in double precision
        const int hk = h / (NH / NHKV);
        const float *qr = q + (h * n_q + n_q - 1) * D, *yr = y + ((n_q - 1) * NH + h) * D;
        double mx = -INFINITY, sum = 0, acc[D] = {0};
        for (int64_t j = 0; j < n_kv; j++) {
            double s = 0;
            for (int i = 0; i < D; i++) {
                s += (double)qr[i] * (double)fp16_to_f32(k[j * D * NHKV + hk * D + i]);
            }
            mx = fmax(mx, s * 0.125);
        }
        for (int64_t j = 0; j < n_kv; j++) {
            double s = 0;
            for (int i = 0; i < D; i++) {
                s += (double)qr[i] * (double)fp16_to_f32(k[j * D * NHKV + hk * D + i]);
            }
            double p = exp(s * 0.125 - mx);
            sum += p;
            for (int i = 0; i < D; i++) {
                acc[i] += p * (double)fp16_to_f32(v[j * D * NHKV + hk * D + i]);
            }
        }
        for (int i = 0; i < D; i++) {
            if (fabs(acc[i] / sum - (double)yr[i]) > 1e-4) {
                fprintf(stderr, "n_kv %lld: head %d [%d] = %g, want %g\n", (long long)n_kv, h, i,
                        (double)yr[i], acc[i] / sum);
                goto done;
            }
        }
    }
    double best = 1e30;
    uint64_t a0 = llem_alloc_count();
    for (int i = 0; i < reps; i++) {
        int64_t t0 = metrics_now_ns();
        if (backend_graph_compute(be, gr, &eb)) {
            goto done;
        }
        double ns = (double)(metrics_now_ns() - t0);
        best = ns < best ? ns : best;
    }
    double allocs = (double)(llem_alloc_count() - a0) / reps;
    double bytes = 2.0 * 2.0 * D * NHKV * (double)n_kv;
    printf("flash_attn %s n_q=%-4lld n_kv=%-6lld threads=%d  %12.0f ns/op  %9.0f ns/row  %6.2f GB/s"
           "  %.1f allocs/op\n",
           n_q == 1 ? "decode" : "prompt", (long long)n_q, (long long)n_kv,
           cpu_backend_n_threads(be), best, best / (double)n_q, bytes / best, allocs);
    rc = 0;
done:
    if (rc) {
        fprintf(stderr, "error: %s\n", eb.msg);
    }
    graph_free(gr);
    backend_galloc_free(ga);
    llem_free(q);
    llem_free(y);
    llem_free(k);
    llem_free(v);
    llem_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 20;
    int64_t only = 0, n_q = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t")) {
            threads = (int)strtol(argv[i + 1], NULL, 10);
        } else if (!strcmp(argv[i], "-r")) {
            reps = (int)strtol(argv[i + 1], NULL, 10);
        } else if (!strcmp(argv[i], "-n")) {
            only = strtoll(argv[i + 1], NULL, 10);
        } else if (!strcmp(argv[i], "-q")) {
            n_q = strtoll(argv[i + 1], NULL, 10);
        }
    }
    struct llem_errbuf eb = {0};
    struct backend *be = NULL;
    struct backend_params bp = {.n_threads = threads};
    if (backend_new("cpu", &bp, &be, &eb) != LLEM_OK) {
        fprintf(stderr, "%s\n", eb.msg);
        return 1;
    }
    int rc = 0;
    const int64_t sizes[] = {512, 4096, 16384};
    for (int i = 0; i < 3; i++) {
        if (!only || only == sizes[i]) {
            rc |= run(be, sizes[i], n_q < 1 ? 1 : n_q > sizes[i] ? sizes[i] : n_q,
                      reps < 1 ? 1 : reps);
        }
    }
    backend_free(be);
    return rc;
}
