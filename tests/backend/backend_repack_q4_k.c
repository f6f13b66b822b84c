// tests/backend/backend_repack_q4_k.c: Q4_K weights repacked in groups of 8 rows ("q4_Kx8",
// backend/cpu/quant/repack_q4_k.c). (1) The AVX2 repack writes the scalar repack's bytes and
// the AVX2 gemm equals the scalar one bit for bit for nc = 1..4 on quantized, raw-bit and extreme blocks (codes 15, scales 63, y = +-127: the int16
// bounds); (2) the scalar gemm matches a double-precision dot of the dequantized rows within the
// float rounding bound; (3) mul_mat through the backend with a prepared (repacked) weight
// matches the reference and the scalar backend's plain path, and columns of M = 8 equal M = 1.
#include "backend/cpu/quant/quant.h"
#include "backend_test.h"
#include "base/cpu.h"

static struct rng rng;

static bool have_avx2(void)
{
    const struct cpu_features *f = cpu_features();
    return f->avx2 && f->fma && f->f16c && f->os_ymm;
}

enum xdata { X_GAUSS, X_BITS, X_MAX, X_COUNT };
static const char *const xdata_name[X_COUNT] = {"gauss", "bits", "max"};

// n_rows rows of K elements of Q4_K, xrb bytes apart.
static void make_rows(enum xdata kind, int K, int n_rows, char *xq, size_t xrb)
{
    const int nsb = K / QK_K;
    float *f = llem_malloc((size_t)K * sizeof(float));
    for (int row = 0; row < n_rows; row++) {
        struct block_q4_K *b = (void *)(xq + (size_t)row * xrb);
        if (kind == X_GAUSS) {
            // per-32 magnitudes over 2 decades and offsets, so scales and mins both vary
            for (int i = 0; i < K; i += 32) {
                const double mag = pow(10.0, 2 * rng_uniform_f64(&rng) - 1);
                const double off = mag * (rng_uniform_f64(&rng) - 0.3);
                for (int j = i; j < i + 32; j++) {
                    f[j] = (float)(off + mag * rng_gaussian(&rng));
                }
            }
            tensor_traits(GGML_TYPE_Q4_K)->from_f32(f, b, K);
            continue;
        }
        for (int i = 0; i < nsb; i++) {
            uint8_t *p = (uint8_t *)&b[i];
            for (size_t k = 0; k < sizeof b[i]; k++) {
                p[k] = kind == X_MAX ? 0xff : (uint8_t)rng_next_u32(&rng);
            }
            b[i].d = fp16_from_f32((float)(0.001 + 0.01 * rng_uniform_f64(&rng)));
            b[i].dmin = fp16_from_f32((float)(0.01 * rng_uniform_f64(&rng)));
        }
    }
    llem_free(f);
}

// Column c as Q8_K: quantized Gaussian data, or (extreme) every code +127 / -127.
static void make_col(bool extreme, int K, int c, struct block_q8_K *y)
{
    if (!extreme) {
        float *f = llem_malloc((size_t)K * sizeof(float));
        for (int i = 0; i < K; i++) {
            f[i] = (float)rng_gaussian(&rng) * (i % 64 < 8 ? 4.0f : 1.0f);
        }
        tensor_traits(GGML_TYPE_Q8_K)->from_f32(f, y, K);
        llem_free(f);
        return;
    }
    const int8_t v = c % 2 ? -127 : 127;
    for (int i = 0; i < K / QK_K; i++) {
        y[i].d = 0.5f + 0.25f * (float)c;
        memset(y[i].qs, (uint8_t)v, sizeof y[i].qs);
        for (int j = 0; j < QK_K / 16; j++) {
            y[i].bsums[j] = (int16_t)(16 * v);
        }
    }
}

// The scales and mins of a block_q4_K, written out from the format (ggml's get_scale_min_k4).
static void scale_min(const struct block_q4_K *b, int j, int *sc, int *mn)
{
    const uint8_t *q = b->scales;
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// A bound on the float rounding of the gemm's result: the sum of the magnitudes of the two
// terms of every sub-block (the scale part and the min part cancel, so |x * y| is no bound).
static double rounding_scale(const struct block_q4_K *x, const struct block_q8_K *y, int K)
{
    double B = 0;
    for (int i = 0; i < K / QK_K; i++) {
        const double d = fp16_to_f32(x[i].d), dmin = fp16_to_f32(x[i].dmin);
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            scale_min(&x[i], j, &sc, &mn);
            for (int l = 0; l < 32; l++) {
                const int e = 32 * j + l;
                const int q = (x[i].qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15;
                B += (d * sc * q + dmin * mn) * fabs((double)y[i].d * y[i].qs[e]);
            }
        }
    }
    return B;
}

// (1) + (2): 16 rows (2 groups) per K, 4 columns, every data kind.
static void test_gemm(void)
{
    const int sizes[] = {256, 512, 2048, 5632};
    const struct type_traits *tr = tensor_traits(GGML_TYPE_Q4_K);
    const struct type_traits *vt = tensor_traits(GGML_TYPE_Q8_K);
    int compared = 0;
    for (size_t si = 0; si < LLEM_ARRAY_LEN(sizes); si++) {
        const int K = sizes[si], nsb = K / QK_K;
        const size_t xrb = tensor_row_size(GGML_TYPE_Q4_K, K),
                     yrb = tensor_row_size(GGML_TYPE_Q8_K, K);
        const size_t group = cpu_q4_Kx8_group_bytes(K);
        CHECK(group % 64 == 0 && group >= 8 * xrb);
        char *xq = llem_malloc(16 * xrb), *yq = llem_malloc(4 * yrb);
        char *packed = llem_aligned_alloc(64, 2 * group), *fast = llem_aligned_alloc(64, 2 * group);
        float *xd = llem_malloc((size_t)K * sizeof(float)),
              *yd = llem_malloc((size_t)K * sizeof(float));
        for (int xk = 0; xk < X_COUNT; xk++) {
            for (int rep = 0; rep < 2; rep++) {
                const bool extreme = xk == X_MAX && rep == 1;
                make_rows((enum xdata)xk, K, 16, xq, xrb);
                const void *ys[4];
                for (int c = 0; c < 4; c++) {
                    make_col(extreme, K, c, (void *)(yq + (size_t)c * yrb));
                    ys[c] = yq + (size_t)c * yrb;
                }
                memset(packed, 0xa5, 2 * group);
                cpu_q4_Kx8_repack(xq, xrb, K, 16, packed);
                if (have_avx2()) { // the load-time repack writes the same bytes
                    memset(fast, 0x5a, 2 * group);
                    cpu_q4_Kx8_repack_avx2(xq, xrb, K, 16, fast);
                    if (memcmp(packed, fast, 2 * group) != 0) {
                        fprintf(stderr, "q4_Kx8 K=%d %s: AVX2 repack != scalar repack\n", K,
                                xdata_name[xk]);
                        check_failures++;
                    }
                }
                for (int g = 0; g < 2; g++) {
                    const char *grp = packed + (size_t)g * group;
                    float ref4[32];
                    cpu_gemm_q4_Kx8_q8_K_ref(K, grp, ys, NULL, 4, ref4);
                    for (int nc = 1; nc <= 4; nc++) {
                        float ref[32], simd[32];
                        cpu_gemm_q4_Kx8_q8_K_ref(K, grp, ys, NULL, nc, ref);
                        // a column's result does not depend on how many columns came with it
                        CHECK(memcmp(ref, ref4, (size_t)nc * 8 * sizeof(float)) == 0);
                        if (have_avx2()) {
                            cpu_gemm_q4_Kx8_q8_K_avx2(K, grp, ys, NULL, nc, simd);
                            if (memcmp(ref, simd, (size_t)nc * 8 * sizeof(float)) != 0) {
                                fprintf(stderr, "q4_Kx8 K=%d %s%s g=%d nc=%d: AVX2 != scalar\n", K,
                                        xdata_name[xk], extreme ? " extreme" : "", g, nc);
                                check_failures++;
                            }
                            compared++;
                        }
                    }
                    for (int row = 0; row < 8; row++) {
                        const void *x = xq + (size_t)(g * 8 + row) * xrb;
                        tr->to_f32(x, xd, K);
                        for (int c = 0; c < 4; c++) {
                            vt->to_f32(ys[c], yd, K);
                            double dot = 0;
                            for (int k = 0; k < K; k++) {
                                dot += (double)xd[k] * (double)yd[k];
                            }
                            const double tol =
                                (2.0 * nsb + 8) * 0x1p-24 * rounding_scale(x, ys[c], K) + 1e-30;
                            if (!(fabs((double)ref4[8 * c + row] - dot) <= tol)) {
                                fprintf(stderr,
                                        "q4_Kx8 K=%d %s row %d col %d: %.9g vs %.9g (tol %g)\n", K,
                                        xdata_name[xk], g * 8 + row, c, (double)ref4[8 * c + row],
                                        dot, tol);
                                check_failures++;
                            }
                        }
                    }
                }
            }
        }
        llem_free(xq);
        llem_free(yq);
        llem_aligned_free(packed);
        llem_aligned_free(fast);
        llem_free(xd);
        llem_free(yd);
    }
    if (have_avx2()) {
        CHECK(compared == 4 * X_COUNT * 2 * 2 * 4);
    }
}

// ---- (3) through the backend ----------------------------------------------------------------

static struct tensor *build_mul_mat(struct graph *gr, struct tensor **in, const void *u)
{
    (void)u;
    return op_mul_mat(gr, in[0], in[1]);
}

// Weight [K, N] Q4_K (prepared: the AVX2 backend repacks it, the scalar one keeps the plain
// vec_dot path) times M activation columns, against a double dot of the dequantized weight and
// the Q8_K-rounded activations.
static void mul_mat_case(int64_t K, int64_t N, int64_t M)
{
    const size_t nw = (size_t)(K * N), nx = (size_t)(K * M);
    float *w = bt_randn(&rng, nw, 1.0f), *x = bt_randn(&rng, nx, 1.0f);
    float *wd = llem_malloc(nw * sizeof(float)), *xr = llem_malloc(nx * sizeof(float));
    void *wq = bt_quantize(GGML_TYPE_Q4_K, w, nw, K, wd);
    llem_free(bt_quantize(GGML_TYPE_Q8_K, x, nx, K, xr));
    double *ref = llem_malloc((size_t)(N * M) * sizeof(double));
    double max_abs = 0;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                s += (double)wd[n * K + k] * (double)xr[m * K + k];
            }
            ref[m * N + n] = s;
            max_abs = fmax(max_abs, fabs(s));
        }
    }
    const double tol = 4e-6 * sqrt((double)K) * (1.0 + max_abs);
    char name[64];
    snprintf(name, sizeof name, "mul_mat q4_Kx8 K=%lld N=%lld M=%lld", (long long)K, (long long)N,
             (long long)M);
    struct bt_case c = {
        .name = name,
        .n_in = 2,
        .in = {{GGML_TYPE_Q4_K, {K, N, 1, 1}, wq}, {GGML_TYPE_F32, {K, M, 1, 1}, x}},
        .build = build_mul_mat,
        .expect = ref,
        .n_out = (size_t)(N * M),
        .atol = tol,
        .simd_atol = tol,
        .prepare_in0 = true,
    };
    bt_check(&c);
    llem_free(w);
    llem_free(x);
    llem_free(wd);
    llem_free(xr);
    llem_free(wq);
    llem_free(ref);
}

static void test_mul_mat(void)
{
    const struct cpu_repack_kind *kind = cpu_repack_kind_of(GGML_TYPE_Q4_K);
    CHECK(kind != NULL);
    if (!kind) {
        return;
    }
    CHECK_EQ_STR(kind->name, "q4_Kx8");
    CHECK(kind->repack == cpu_q4_Kx8_repack && kind->aux == NULL);
    const int64_t Ms[] = {1, 2, 3, 4, 5, 7, 9};
    for (size_t mi = 0; mi < LLEM_ARRAY_LEN(Ms); mi++) {
        mul_mat_case(256, 16, Ms[mi]);
        mul_mat_case(768, 8, Ms[mi]);
    }
    mul_mat_case(2048, 24, 6);
    // The AVX2 backend really repacks a Q4_K weight whose rows are a multiple of 8.
    struct backend *be = bt_backends[CPU_ISA_AVX2];
    if (be) {
        struct llem_errbuf eb = {0};
        struct tensor t;
        int64_t ne[2] = {512, 16};
        CHECK_OK(tensor_init(&t, GGML_TYPE_Q4_K, 2, ne, "w", &eb), &eb);
        struct backend_buffer *buf = NULL;
        CHECK_OK(backend_buffer_alloc(be, tensor_nbytes(&t), BACKEND_BUFFER_WEIGHTS, &buf, &eb),
                 &eb);
        CHECK_OK(backend_tensor_bind(&t, buf, 0, &eb), &eb);
        size_t bytes = 0;
        CHECK_OK(backend_weight_prepare(be, &t, &bytes, &eb), &eb);
        CHECK(bytes == 2 * cpu_q4_Kx8_group_bytes(512) && t.extra != NULL);
        if (t.extra) {
            CHECK(((struct cpu_repacked *)t.extra)->kind == kind);
        }
        backend_weight_release(be, &t);
        backend_buffer_free(buf);
    }
}

// Every column of an M = 8 product (two calls of 4 columns) equals that column alone (M = 1).
static void test_batch_invariant(void)
{
    enum { K = 512, N = 24, M = 8 };
    float *w = bt_randn(&rng, (size_t)(K * N), 1.0f), *x = bt_randn(&rng, (size_t)(K * M), 1.0f);
    float *wd = llem_malloc((size_t)(K * N) * sizeof(float));
    void *wq = bt_quantize(GGML_TYPE_Q4_K, w, (size_t)(K * N), K, wd);
    struct bt_case all = {
        .name = "q4_Kx8 batch",
        .n_in = 2,
        .in = {{GGML_TYPE_Q4_K, {K, N, 1, 1}, wq}, {GGML_TYPE_F32, {K, M, 1, 1}, x}},
        .build = build_mul_mat,
        .n_out = (size_t)(N * M),
        .prepare_in0 = true};
    bt_check_columns_alone(&all, x, K, N, M);
    llem_free(w);
    llem_free(x);
    llem_free(wd);
    llem_free(wq);
}

int main(void)
{
    rng_seed(&rng, 4242);
    bt_init(false);
    RUN_TEST(test_gemm);
    RUN_TEST(test_mul_mat);
    RUN_TEST(test_batch_invariant);
    bt_fini();
    return TEST_EXIT();
}
