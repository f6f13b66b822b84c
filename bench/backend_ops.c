// bench/backend_ops.c: CPU op throughput: mul_mat F32/F16 (and Q8_0/Q4_0 through the generic
// path) for decode (M = 1) and prefill (M = 512) at 2048x2048 and 5632x2048, rms_norm,
// softmax and rope at model-like sizes. Each case validates a sample of outputs against a
// double-precision computation before timing, then reports ns/op, GFLOP/s or GB/s, and
// allocations per op. Usage: bench_backend_ops [-t threads] [-i scalar|avx2] [-r reps] [-f substr]
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
#include "tensor/types.h"

struct bench {
    struct backend *be;
    int reps;
    const char *filter;
};

enum bop { B_MM, B_RMS, B_SOFTMAX, B_ROPE };

struct bcase {
    const char *name;
    enum bop op;
    uint32_t wtype;
    int64_t K, N, M; // mul_mat: w [K, N], x [K, M]; others: rows of K, M rows (N heads)
};

static double now_s(void)
{
    return (double)metrics_now_ns() * 1e-9;
}

static void fill(struct rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)rng_gaussian(r);
    }
}

static int run_case(struct bench *b, const struct bcase *c)
{
    if (b->filter && !strstr(c->name, b->filter)) {
        return 0;
    }
    struct llem_errbuf eb = {0};
    struct graph *gr = NULL;
    struct backend_galloc *ga = NULL;
    struct rng r;
    rng_seed(&r, 42);
    int rc = 1;
    float *wf = NULL, *xf = NULL, *out = NULL;
    void *wq = NULL;
    if (graph_new(&gr, &eb) || backend_galloc_new(b->be, &ga, &eb)) {
        goto done;
    }
    struct tensor *w = NULL, *x = NULL, *y = NULL, *pos = NULL;
    double flops = 0, bytes = 0;
    switch (c->op) {
    case B_MM:
        w = graph_input(gr, "w", c->wtype, c->K, c->N, 1, 1);
        x = graph_input(gr, "x", GGML_TYPE_F32, c->K, c->M, 1, 1);
        y = op_mul_mat(gr, w, x);
        flops = 2.0 * (double)c->K * (double)c->N * (double)c->M;
        bytes = (double)tensor_row_size(c->wtype, c->K) * (double)c->N;
        break;
    case B_RMS:
        x = graph_input(gr, "x", GGML_TYPE_F32, c->K, c->M, 1, 1);
        y = op_rms_norm(gr, x, 1e-5f);
        bytes = 2.0 * 4.0 * (double)c->K * (double)c->M;
        break;
    case B_SOFTMAX:
        x = graph_input(gr, "x", GGML_TYPE_F32, c->K, c->M, c->N, 1);
        y = op_softmax_ext(gr, x, NULL, 0.125f, NULL);
        bytes = 2.0 * 4.0 * (double)c->K * (double)c->M * (double)c->N;
        break;
    case B_ROPE: {
        x = graph_input(gr, "x", GGML_TYPE_F32, c->K, c->N, c->M, 1);
        pos = graph_input(gr, "pos", GGML_TYPE_I32, c->M, 1, 1, 1);
        struct op_rope_params p = {.n_rot = (int32_t)c->K,
                                   .mode = ROPE_NEOX,
                                   .n_ctx_orig = 4096,
                                   .freq_base = 10000.0f,
                                   .freq_scale = 1.0f,
                                   .attn_factor = 1.0f,
                                   .beta_fast = 32.0f,
                                   .beta_slow = 1.0f};
        y = op_rope(gr, x, pos, NULL, &p);
        bytes = 2.0 * 4.0 * (double)c->K * (double)c->N * (double)c->M;
        break;
    }
    }
    graph_set_output(gr, y);
    if (backend_galloc_alloc_graph(ga, gr, &eb)) {
        goto done;
    }
    size_t nx = (size_t)tensor_nelements(x);
    xf = llem_malloc(nx * sizeof(float));
    fill(&r, xf, nx);
    backend_tensor_set(x, xf, 0, nx * sizeof(float));
    if (pos) {
        int32_t *pp = llem_malloc((size_t)c->M * sizeof(int32_t));
        for (int64_t i = 0; i < c->M; i++) {
            pp[i] = (int32_t)(i * 3);
        }
        backend_tensor_set(pos, pp, 0, (size_t)c->M * sizeof(int32_t));
        llem_free(pp);
    }
    if (w) {
        size_t nw = (size_t)tensor_nelements(w);
        wf = llem_malloc(nw * sizeof(float));
        fill(&r, wf, nw);
        size_t rb = tensor_row_size(c->wtype, c->K);
        wq = llem_malloc(rb * (size_t)c->N);
        const struct type_traits *tr = tensor_traits(c->wtype);
        for (int64_t n = 0; n < c->N; n++) {
            tr->from_f32(wf + n * c->K, (char *)wq + (size_t)n * rb, c->K);
            tr->to_f32((char *)wq + (size_t)n * rb, wf + n * c->K, c->K); // what the kernel sees
        }
        backend_tensor_set(w, wq, 0, rb * (size_t)c->N);
    }
    if (backend_graph_compute(b->be, gr, &eb)) {
        goto done;
    }
    // Validate a sample before timing.
    size_t ny = (size_t)tensor_nelements(y);
    out = llem_malloc(ny * sizeof(float));
    backend_tensor_get(y, out, 0, ny * sizeof(float));
    int bad = 0;
    for (int s = 0; s < 16; s++) {
        if (c->op == B_MM) {
            int64_t n = (int64_t)rng_bounded(&r, (uint64_t)c->N),
                    m = (int64_t)rng_bounded(&r, (uint64_t)c->M);
            double ref = 0;
            for (int64_t k = 0; k < c->K; k++) {
                ref += (double)wf[n * c->K + k] * (double)xf[m * c->K + k];
            }
            // Quantized weights dot against activations rounded to the partner type.
            double tol = tensor_traits(c->wtype)->is_quant ? 1e-2 * sqrt((double)c->K) : 1e-3;
            bad += fabs((double)out[m * c->N + n] - ref) > tol * (1.0 + fabs(ref));
        } else if (c->op == B_RMS) {
            int64_t m = (int64_t)rng_bounded(&r, (uint64_t)c->M);
            double ss = 0;
            for (int64_t k = 0; k < c->K; k++) {
                ss += (double)xf[m * c->K + k] * (double)xf[m * c->K + k];
            }
            double ref = (double)xf[m * c->K] / sqrt(ss / (double)c->K + 1e-5);
            bad += fabs((double)out[m * c->K] - ref) > 1e-5;
        } else if (c->op == B_SOFTMAX) {
            int64_t row = (int64_t)rng_bounded(&r, (uint64_t)(c->M * c->N));
            double sum = 0;
            for (int64_t k = 0; k < c->K; k++) {
                sum += (double)out[row * c->K + k];
            }
            bad += fabs(sum - 1.0) > 1e-4;
        } else {
            // position 0 of the first token is the identity
            bad += out[0] != xf[0];
        }
    }
    if (bad) {
        fprintf(stderr, "%s: output check failed (%d of 16)\n", c->name, bad);
        goto done;
    }
    uint64_t a0 = llem_alloc_count();
    double t0 = now_s();
    int reps = c->op == B_MM && c->M > 1 ? LLEM_MAX(1, b->reps / 10) : b->reps;
    for (int i = 0; i < reps; i++) {
        backend_graph_compute(b->be, gr, &eb);
    }
    double dt = (now_s() - t0) / reps;
    double allocs = (double)(llem_alloc_count() - a0) / reps;
    if (flops > 0) {
        fprintf(stdout, "%-28s %12.0f ns/op %8.1f GFLOP/s %7.1f GB/s(w) %5.1f allocs/op\n", c->name,
                dt * 1e9, flops / dt * 1e-9, bytes / dt * 1e-9, allocs);
    } else {
        fprintf(stdout, "%-28s %12.0f ns/op %8s         %7.1f GB/s    %5.1f allocs/op\n", c->name,
                dt * 1e9, "", bytes / dt * 1e-9, allocs);
    }
    rc = 0;
done:
    if (rc && eb.msg[0]) {
        fprintf(stderr, "%s: %s\n", c->name, eb.msg);
    }
    llem_free(wf);
    llem_free(xf);
    llem_free(wq);
    llem_free(out);
    backend_galloc_free(ga);
    graph_free(gr);
    return rc;
}

int main(int argc, char **argv)
{
    struct backend_params p = {.n_threads = 1, .isa = NULL};
    struct bench b = {.reps = 50};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-t") == 0) {
            p.n_threads = (int)strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "-i") == 0) {
            p.isa = argv[i + 1];
        } else if (strcmp(argv[i], "-r") == 0) {
            b.reps = (int)strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "-f") == 0) {
            b.filter = argv[i + 1];
        }
    }
    struct llem_errbuf eb = {0};
    if (backend_new("cpu", &p, &b.be, &eb)) {
        fprintf(stderr, "%s\n", eb.msg);
        return 1;
    }
    fprintf(stdout, "cpu backend: %d threads, %s kernels\n", cpu_backend_n_threads(b.be),
            cpu_isa_name(cpu_backend_isa(b.be)));
    const struct bcase cases[] = {
        {"mul_mat f32 2048x2048 M=1", B_MM, GGML_TYPE_F32, 2048, 2048, 1},
        {"mul_mat f16 2048x2048 M=1", B_MM, GGML_TYPE_F16, 2048, 2048, 1},
        {"mul_mat f32 5632x2048 M=1", B_MM, GGML_TYPE_F32, 2048, 5632, 1},
        {"mul_mat f16 5632x2048 M=1", B_MM, GGML_TYPE_F16, 2048, 5632, 1},
        {"mul_mat q8_0 2048x2048 M=1", B_MM, GGML_TYPE_Q8_0, 2048, 2048, 1},
        {"mul_mat q4_0 2048x2048 M=1", B_MM, GGML_TYPE_Q4_0, 2048, 2048, 1},
        {"mul_mat f32 2048x2048 M=512", B_MM, GGML_TYPE_F32, 2048, 2048, 512},
        {"mul_mat f16 2048x2048 M=512", B_MM, GGML_TYPE_F16, 2048, 2048, 512},
        {"mul_mat f32 5632x2048 M=512", B_MM, GGML_TYPE_F32, 2048, 5632, 512},
        {"mul_mat f16 5632x2048 M=512", B_MM, GGML_TYPE_F16, 2048, 5632, 512},
        {"mul_mat q8_0 2048x2048 M=512", B_MM, GGML_TYPE_Q8_0, 2048, 2048, 512},
        {"mul_mat q4_0 2048x2048 M=512", B_MM, GGML_TYPE_Q4_0, 2048, 2048, 512},
        {"rms_norm 2048 x 1", B_RMS, 0, 2048, 1, 1},
        {"rms_norm 2048 x 512", B_RMS, 0, 2048, 1, 512},
        {"softmax 4096 x 32 heads", B_SOFTMAX, 0, 4096, 32, 1},
        {"softmax 512 x 512 x 32", B_SOFTMAX, 0, 512, 32, 512},
        {"rope 64 x 32 heads x 1", B_ROPE, 0, 64, 32, 1},
        {"rope 64 x 32 heads x 512", B_ROPE, 0, 64, 32, 512},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc |= run_case(&b, &cases[i]);
    }
    backend_free(b.be);
    return rc;
}
