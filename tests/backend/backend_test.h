// tests/backend/backend_test.h: shared harness for the backend op tests. run_case records a
// small graph (inputs from host arrays, a build callback), computes it on the CPU backend
// with a given kernel set and thread count, and returns the output as F32; check_case runs
// every (ISA, nth in 1..3) combination, compares each against a double-precision reference
// the test computed itself, requires bit-identical output across thread counts, and compares
// the SIMD kernels against the scalar reference.
#pragma once
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_int.h"
#include "backend/cpu/cpu.h"
#include "base/alloc.h"
#include "base/rng.h"
#include "check.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

#define BT_MAX_IN 6

struct bt_input {
    uint32_t type;
    int64_t ne[4];
    const void *data; // host bytes, contiguous, tensor_row_size(type, ne0) per row
};

typedef struct tensor *(*bt_build_fn)(struct graph *gr, struct tensor **in, const void *user);

struct bt_case {
    const char *name;
    int n_in;
    struct bt_input in[BT_MAX_IN];
    bt_build_fn build;
    const void *user;
    const double *expect;        // [n_out] reference (double), NULL: only cross-checks
    size_t n_out;                // F32 elements of the output
    double atol, rtol;           // vs expect: |got - ref| <= atol + rtol * |ref|
    double simd_atol, simd_rtol; // SIMD vs scalar
    bool prepare_in0;            // hand in[0] to backend_weight_prepare (repacked weights)
};

static inline size_t bt_bytes(const struct bt_input *in)
{
    return gguf_row_bytes(in->type, in->ne[0]) * (size_t)(in->ne[1] * in->ne[2] * in->ne[3]);
}

static struct backend *bt_backends[CPU_ISA_COUNT];

// generic_quant: mul_mat ignores the quantized vec_dot kernels (tests the generic path).
static inline void bt_init(bool generic_quant)
{
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        if (isa > (int)cpu_isa_best()) {
            continue;
        }
        struct backend_params p = {
            .n_threads = 3, .isa = cpu_isa_name((enum cpu_isa)isa), .generic_quant = generic_quant};
        struct llem_errbuf eb = {0};
        CHECK_OK(backend_new("cpu", &p, &bt_backends[isa], &eb), &eb);
    }
}

static inline void bt_fini(void)
{
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        backend_free(bt_backends[isa]);
        bt_backends[isa] = NULL;
    }
}

// Runs the case on backend be with nth threads; out receives n_out floats. False on error.
static inline bool bt_run(const struct bt_case *c, struct backend *be, int nth, float *out)
{
    struct llem_errbuf eb = {0};
    struct graph *gr = NULL;
    struct backend_galloc *ga = NULL;
    bool ok = false;
    struct tensor *in[BT_MAX_IN] = {0};
    cpu_backend_set_n_threads(be, nth);
    if (graph_new(&gr, &eb) != LLEM_OK || backend_galloc_new(be, &ga, &eb) != LLEM_OK) {
        goto done;
    }
    for (int i = 0; i < c->n_in; i++) {
        in[i] = graph_input(gr, "in", c->in[i].type, c->in[i].ne[0], c->in[i].ne[1], c->in[i].ne[2],
                            c->in[i].ne[3]);
    }
    struct tensor *y = c->build(gr, in, c->user);
    graph_set_output(gr, y);
    if (backend_galloc_alloc_graph(ga, gr, &eb) != LLEM_OK) {
        goto done;
    }
    for (int i = 0; i < c->n_in; i++) {
        backend_tensor_set(in[i], c->in[i].data, 0, bt_bytes(&c->in[i]));
    }
    size_t repacked = 0;
    if (c->prepare_in0 && backend_weight_prepare(be, in[0], &repacked, &eb) != LLEM_OK) {
        goto done;
    }
    if (backend_graph_compute(be, gr, &eb) != LLEM_OK) {
        goto done;
    }
    if (y->type != GGML_TYPE_F32 || (size_t)tensor_nelements(y) != c->n_out) {
        snprintf(eb.msg, sizeof eb.msg, "output is %s with %lld elements, expected F32 x %zu",
                 tensor_type_name(y->type), (long long)tensor_nelements(y), c->n_out);
        goto done;
    }
    if (tensor_is_contiguous(y)) {
        backend_tensor_get(y, out, 0, c->n_out * sizeof(float));
    } else {
        // A strided output (a view): read it element by element in logical order.
        size_t k = 0;
        for (int64_t i3 = 0; i3 < y->ne[3]; i3++)
            for (int64_t i2 = 0; i2 < y->ne[2]; i2++)
                for (int64_t i1 = 0; i1 < y->ne[1]; i1++)
                    for (int64_t i0 = 0; i0 < y->ne[0]; i0++) {
                        size_t off = (size_t)i0 * y->nb[0] + (size_t)i1 * y->nb[1] +
                                     (size_t)i2 * y->nb[2] + (size_t)i3 * y->nb[3];
                        struct tensor flat = *y;
                        backend_tensor_get(&flat, &out[k++], off, sizeof(float));
                    }
    }
    ok = true;
done:
    if (!ok) {
        fprintf(stderr, "%s: %s\n", c->name, eb.msg);
    }
    if (gr && c->prepare_in0 && in[0]) {
        backend_weight_release(be, in[0]);
    }
    backend_galloc_free(ga);
    graph_free(gr);
    return ok;
}

// Batch invariance: on every kernel set, each of the M activation columns of `all` (in[1] is
// x, M columns of K floats; the output N x M) computed alone (M = 1, nth 1..3) must equal its
// column inside the batch bit for bit.
static inline void bt_check_columns_alone(const struct bt_case *all, const float *x, int64_t K,
                                          int64_t N, int64_t M)
{
    float *ya = llem_malloc((size_t)(N * M) * sizeof(float));
    float *y1 = llem_malloc((size_t)N * sizeof(float));
    for (int isa = 0; ya && y1 && isa < CPU_ISA_COUNT; isa++) {
        if (!bt_backends[isa]) {
            continue;
        }
        CHECK(bt_run(all, bt_backends[isa], 2, ya));
        for (int64_t col = 0; col < M; col++) {
            struct bt_case one = *all;
            one.in[1].ne[1] = 1;
            one.in[1].data = x + col * K;
            one.n_out = (size_t)N;
            CHECK(bt_run(&one, bt_backends[isa], 1 + (int)(col % 3), y1));
            if (memcmp(ya + col * N, y1, (size_t)N * sizeof(float)) != 0) {
                fprintf(stderr, "%s (isa %d): column %lld differs from M=1\n", all->name, isa,
                        (long long)col);
                check_failures++;
            }
        }
    }
    llem_free(ya);
    llem_free(y1);
}

static inline bool bt_close(double got, double ref, double atol, double rtol)
{
    if (isnan(ref)) {
        return isnan(got);
    }
    return fabs(got - ref) <= atol + rtol * fabs(ref);
}

// Runs every kernel set and nth = 1, 2, 3; returns the number of failed checks it added.
static inline void bt_check(const struct bt_case *c)
{
    float *res[CPU_ISA_COUNT][4] = {{0}};
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        if (!bt_backends[isa]) {
            continue;
        }
        for (int nth = 1; nth <= 3; nth++) {
            res[isa][nth] = llem_calloc(c->n_out ? c->n_out : 1, sizeof(float));
            if (!bt_run(c, bt_backends[isa], nth, res[isa][nth])) {
                CHECK(!"bt_run failed");
                continue;
            }
            // Against the test's own reference.
            if (c->expect) {
                int bad = 0;
                for (size_t i = 0; i < c->n_out; i++) {
                    if (!bt_close(res[isa][nth][i], c->expect[i], c->atol, c->rtol)) {
                        if (bad++ < 3) {
                            fprintf(stderr, "%s [%s nth=%d] y[%zu] = %.9g, reference %.9g\n",
                                    c->name, cpu_isa_name((enum cpu_isa)isa), nth, i,
                                    (double)res[isa][nth][i], c->expect[i]);
                        }
                    }
                }
                CHECK(bad == 0);
            }
            // Bit-identical for every thread count.
            if (nth > 1 && memcmp(res[isa][nth], res[isa][1], c->n_out * sizeof(float)) != 0) {
                fprintf(stderr, "%s [%s]: nth=%d differs from nth=1\n", c->name,
                        cpu_isa_name((enum cpu_isa)isa), nth);
                CHECK(!"thread count changed the result");
            }
        }
    }
    // SIMD vs the scalar reference.
    for (int isa = 1; isa < CPU_ISA_COUNT; isa++) {
        if (!res[isa][1] || !res[0][1]) {
            continue;
        }
        int bad = 0;
        for (size_t i = 0; i < c->n_out; i++) {
            if (!bt_close(res[isa][1][i], res[0][1][i], c->simd_atol, c->simd_rtol)) {
                if (bad++ < 3) {
                    fprintf(stderr, "%s: %s y[%zu] = %.9g, scalar %.9g\n", c->name,
                            cpu_isa_name((enum cpu_isa)isa), i, (double)res[isa][1][i],
                            (double)res[0][1][i]);
                }
            }
        }
        CHECK(bad == 0);
    }
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        for (int nth = 0; nth < 4; nth++) {
            llem_free(res[isa][nth]);
        }
    }
}

// ---- data helpers ----------------------------------------------------------------------------

static inline float *bt_randn(struct rng *r, size_t n, float scale)
{
    float *x = llem_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)rng_gaussian(r) * scale;
    }
    return x;
}

// Quantizes n floats (rows of ne0) to `type` (new buffer) and returns the dequantized values
// in deq (caller's n floats), so references use exactly what the kernel sees.
static inline void *bt_quantize(uint32_t type, const float *x, size_t n, int64_t ne0, float *deq)
{
    const struct type_traits *tr = tensor_traits(type);
    size_t rows = n / (size_t)ne0, rb = tensor_row_size(type, ne0);
    unsigned char *q = llem_malloc(rb * rows);
    for (size_t r = 0; r < rows; r++) {
        tr->from_f32(x + r * (size_t)ne0, q + r * rb, ne0);
        tr->to_f32(q + r * rb, deq + r * (size_t)ne0, ne0);
    }
    return q;
}
