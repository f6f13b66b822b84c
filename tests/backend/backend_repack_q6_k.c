// tests/backend/backend_repack_q6_k.c: Q6_K weights repacked in groups of 8 rows ("q6_Kx8").
// The AVX2 repack writes the scalar repack's bytes. The AVX2 kernel equals the scalar one bit
// for bit for every column count on quantized and raw-bit blocks; the scalar one equals the
// defining chain computed here from the unrepacked rows (bit for bit) and a double-precision
// dot of independently dequantized values (within a rigorous float rounding bound); through the
// backend, a repacked weight's mul_mat matches the plain path, and a column's result is the same
// alone (M = 1) as inside a batch (M = 8).
#include "backend/cpu/quant/quant.h"
#include "backend_test.h"
#include "base/cpu.h"

static struct rng rng;

static bool have_avx2(void)
{
    const struct cpu_features *f = cpu_features();
    return f->avx2 && f->fma && f->f16c && f->os_ymm;
}

// Random bytes for a whole Q6_K row (every code and scale, -128 included) with a random finite
// f16 d of any exponent short of overflow in the products.
static void raw_bits(struct block_q6_K *x, int nb)
{
    uint8_t *p = (uint8_t *)x;
    for (size_t i = 0; i < (size_t)nb * sizeof *x; i++) {
        p[i] = (uint8_t)rng_next_u32(&rng);
    }
    for (int b = 0; b < nb; b++) {
        const uint16_t sign = (uint16_t)((rng_next_u32(&rng) & 1) << 15);
        const uint16_t expo = (uint16_t)(rng_bounded(&rng, 24) << 10); // 2^-15 .. 2^8
        x[b].d = (uint16_t)(sign | expo | (rng_next_u32(&rng) & 0x3ff));
    }
}

// The 256 codes q (0..63) of a Q6_K block, ggml's dequantization order written out: per half
// of 128, l in 0..31 gives elements l, l + 32, l + 64, l + 96.
static void codes_of(const struct block_q6_K *x, int q[QK_K])
{
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = x->ql + 64 * h, *qh = x->qh + 32 * h;
        for (int l = 0; l < 32; l++) {
            q[128 * h + l] = (ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4;
            q[128 * h + l + 32] = (ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4;
            q[128 * h + l + 64] = (ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4;
            q[128 * h + l + 96] = (ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4;
        }
    }
}

static void gemm_kernel_case(int K, bool raw)
{
    const int nb = K / QK_K;
    const size_t xrb = tensor_row_size(GGML_TYPE_Q6_K, K), yrb = tensor_row_size(GGML_TYPE_Q8_K, K);
    const size_t gb = cpu_q6_Kx8_group_bytes(K);
    float *f = llem_malloc((size_t)K * sizeof(float));
    char *xq = llem_malloc(16 * xrb), *yq = llem_malloc(4 * yrb);
    char *packed = llem_aligned_alloc(64, 2 * gb);
    for (int k = 0; k < 16; k++) {
        for (int i = 0; i < K; i++) { // per-16 magnitudes over 3 decades
            f[i] = (float)(rng_gaussian(&rng) * pow(10.0, (double)((i / 16 + k) % 7) * 0.5 - 1.5));
        }
        tensor_traits(GGML_TYPE_Q6_K)->from_f32(f, xq + (size_t)k * xrb, K);
        if (raw) {
            raw_bits((struct block_q6_K *)(void *)(xq + (size_t)k * xrb), nb);
        }
    }
    const void *ys[4];
    for (int c = 0; c < 4; c++) {
        for (int i = 0; i < K; i++) {
            f[i] = (float)rng_gaussian(&rng) * (c == 3 && i % 97 == 0 ? 50.0f : 1.0f);
        }
        tensor_traits(GGML_TYPE_Q8_K)->from_f32(f, yq + (size_t)c * yrb, K);
        ys[c] = yq + (size_t)c * yrb;
    }
    memset(packed, 0xa5, 2 * gb);
    cpu_q6_Kx8_repack(xq, xrb, K, 16, packed);
    if (have_avx2()) { // the load-time repack writes the same bytes
        char *fast = llem_aligned_alloc(64, 2 * gb);
        memset(fast, 0x5a, 2 * gb);
        cpu_q6_Kx8_repack_avx2(xq, xrb, K, 16, fast);
        if (memcmp(packed, fast, 2 * gb) != 0) {
            fprintf(stderr, "q6_Kx8 K=%d%s: AVX2 repack != scalar repack\n", K, raw ? " raw" : "");
            check_failures++;
        }
        llem_aligned_free(fast);
    }
    int bad_bits = 0, bad_def = 0, bad_tol = 0;
    for (int g = 0; g < 2; g++) {
        const char *grp = packed + (size_t)g * gb;
        for (int nc = 1; nc <= 4; nc++) {
            float ref[32], simd[32];
            cpu_gemm_q6_Kx8_q8_K_ref(K, grp, ys, NULL, nc, ref);
            if (have_avx2()) {
                cpu_gemm_q6_Kx8_q8_K_avx2(K, grp, ys, NULL, nc, simd);
                if (memcmp(ref, simd, (size_t)nc * 8 * sizeof(float)) != 0) {
                    if (bad_bits++ < 3) {
                        fprintf(stderr, "q6_Kx8 K=%d raw=%d nc=%d: AVX2 != scalar\n", K, raw, nc);
                    }
                }
            }
            for (int c = 0; c < nc; c++) {
                const struct block_q8_K *y = ys[c];
                for (int row = 0; row < 8; row++) {
                    const struct block_q6_K *x = (const void *)(xq + (size_t)(g * 8 + row) * xrb);
                    float acc = 0;
                    double exact = 0, terms = 0;
                    for (int b = 0; b < nb; b++) {
                        int q[QK_K];
                        codes_of(&x[b], q);
                        int isum = 0;
                        double term = 0;
                        for (int j = 0; j < 16; j++) {
                            int sub = 0;
                            for (int k = 16 * j; k < 16 * j + 16; k++) {
                                sub += (q[k] - 32) * y[b].qs[k];
                                term += (double)fp16_to_f32(x[b].d) * x[b].scales[j] * (q[k] - 32) *
                                        ((double)y[b].d * y[b].qs[k]);
                            }
                            isum += x[b].scales[j] * sub;
                        }
                        acc = fmaf((float)isum, fp16_to_f32(x[b].d) * y[b].d, acc);
                        exact += term;
                        terms += fabs(term);
                    }
                    const float got = ref[8 * c + row];
                    if (memcmp(&acc, &got, sizeof acc) != 0) {
                        if (bad_def++ < 3) {
                            fprintf(stderr,
                                    "q6_Kx8 K=%d raw=%d nc=%d [%d][%d]: %.9g, defined %.9g\n", K,
                                    raw, nc, c, row, (double)got, (double)acc);
                        }
                    }
                    // each super-block: cvt, d_w * d_y and the fma round once (2^-24 relative
                    // of the term); the running sum's roundings add up to nb of them
                    const double tol = (nb + 3) * ldexp(terms, -24) + 1e-30;
                    if (!(fabs((double)got - exact) <= tol)) {
                        if (bad_tol++ < 3) {
                            fprintf(stderr,
                                    "q6_Kx8 K=%d raw=%d [%d][%d]: %.9g vs exact %.9g (tol %g)\n", K,
                                    raw, c, row, (double)got, exact, tol);
                        }
                    }
                }
            }
        }
    }
    CHECK(bad_bits == 0);
    CHECK(bad_def == 0);
    CHECK(bad_tol == 0);
    // the header's padding zeroed, so the copy is deterministic
    for (int g = 0; g < 2; g++) {
        for (size_t i = (size_t)nb * 16; i < Q6_KX8_HEAD_BYTES(nb); i++) {
            CHECK(packed[(size_t)g * gb + i] == 0);
        }
    }
    llem_free(f);
    llem_free(xq);
    llem_free(yq);
    llem_aligned_free(packed);
}

static void test_gemm_kernels(void)
{
    const struct cpu_repack_kind *kind = cpu_repack_kind_of(GGML_TYPE_Q6_K);
    CHECK(kind != NULL);
    if (kind) {
        CHECK_EQ_STR(kind->name, "q6_Kx8");
        CHECK(kind->repack == cpu_q6_Kx8_repack && kind->gemm_ref == cpu_gemm_q6_Kx8_q8_K_ref &&
              kind->gemm_avx2 == cpu_gemm_q6_Kx8_q8_K_avx2 && kind->aux == NULL);
        CHECK(kind->group_bytes == cpu_q6_Kx8_group_bytes);
    }
    CHECK_EQ_I64(cpu_q6_Kx8_group_bytes(2048), 8 * 8 * 210); // as small as the plain rows
    const int sizes[] = {256, 512, 2048, 5632};
    for (size_t i = 0; i < LLEM_ARRAY_LEN(sizes); i++) {
        for (int raw = 0; raw < 2; raw++) {
            gemm_kernel_case(sizes[i], raw);
        }
    }
}

// ---- through the backend ------------------------------------------------------------------

static struct tensor *build_mul_mat(struct graph *gr, struct tensor **in, const void *u)
{
    (void)u;
    return op_mul_mat(gr, in[0], in[1]);
}

// mul_mat of a Q6_K weight [K, N] handed to backend_weight_prepare (the AVX2 backend repacks
// it, the scalar one keeps the plain path: bt_check compares them) vs a double reference.
static void mul_mat_case(int64_t K, int64_t N, int64_t M, int64_t x2)
{
    const size_t nw = (size_t)(K * N), nx = (size_t)(K * M * x2);
    float *w = bt_randn(&rng, nw, 1.0f), *x = bt_randn(&rng, nx, 1.0f);
    float *wd = llem_malloc(nw * sizeof(float)), *xr = llem_malloc(nx * sizeof(float));
    void *wq = bt_quantize(GGML_TYPE_Q6_K, w, nw, K, wd);
    void *xq = bt_quantize(GGML_TYPE_Q8_K, x, nx, K, xr); // what the kernels see
    const size_t no = (size_t)(N * M * x2);
    double *ref = llem_malloc(no * sizeof(double));
    double max_abs = 0.0;
    for (int64_t m = 0; m < M * x2; m++) {
        for (int64_t n = 0; n < N; n++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++) {
                s += (double)wd[n * K + k] * (double)xr[m * K + k];
            }
            ref[m * N + n] = s;
            max_abs = fmax(max_abs, fabs(s));
        }
    }
    const double tol = 4e-6 * sqrt((double)K) * (1.0 + max_abs);
    char name[80];
    snprintf(name, sizeof name, "mul_mat Q6_K repacked K=%lld N=%lld M=%lld x2=%lld", (long long)K,
             (long long)N, (long long)M, (long long)x2);
    struct bt_case c = {
        .name = name,
        .n_in = 2,
        .in = {{GGML_TYPE_Q6_K, {K, N, 1, 1}, wq}, {GGML_TYPE_F32, {K, M, x2, 1}, x}},
        .build = build_mul_mat,
        .expect = ref,
        .n_out = no,
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
    llem_free(xq);
    llem_free(ref);
}

static void test_mul_mat_repacked(void)
{
    const int64_t Ms[] = {1, 2, 3, 4, 5, 7, 30};
    for (size_t mi = 0; mi < LLEM_ARRAY_LEN(Ms); mi++) {
        mul_mat_case(256, 16, Ms[mi], 1);
        mul_mat_case(512, 24, Ms[mi], 1);
    }
    mul_mat_case(2048, 40, 6, 1);
    mul_mat_case(256, 8, 3, 2); // a batch dimension on the activations
    // The AVX2 backend really repacks a Q6_K weight with rows a multiple of 8, only such a one.
    struct backend *be = bt_backends[CPU_ISA_AVX2];
    if (be) {
        struct llem_errbuf eb = {0};
        struct tensor t, odd;
        const int64_t ne[2] = {512, 16}, ne_odd[2] = {512, 12};
        CHECK_OK(tensor_init(&t, GGML_TYPE_Q6_K, 2, ne, "w", &eb), &eb);
        struct backend_buffer *buf = NULL;
        CHECK_OK(backend_buffer_alloc(be, tensor_nbytes(&t), BACKEND_BUFFER_WEIGHTS, &buf, &eb),
                 &eb);
        CHECK_OK(backend_tensor_bind(&t, buf, 0, &eb), &eb);
        size_t bytes = 0;
        CHECK_OK(backend_weight_prepare(be, &t, &bytes, &eb), &eb);
        CHECK(bytes == 2 * cpu_q6_Kx8_group_bytes(512) && t.extra != NULL);
        backend_weight_release(be, &t);
        CHECK(t.extra == NULL);
        CHECK_OK(tensor_init(&odd, GGML_TYPE_Q6_K, 2, ne_odd, "w", &eb), &eb);
        CHECK_OK(backend_tensor_bind(&odd, buf, 0, &eb), &eb);
        CHECK_OK(backend_weight_prepare(be, &odd, &bytes, &eb), &eb);
        CHECK(bytes == 0 && odd.extra == NULL);
        backend_buffer_free(buf);
    }
}

// M = 8 columns run as 4 + 4 through the kernel, M = 1 as one: the results must be the same bits.
static void test_batch_invariant(void)
{
    enum { K = 512, N = 24, M = 8 };
    float *w = bt_randn(&rng, (size_t)(K * N), 1.0f), *x = bt_randn(&rng, (size_t)(K * M), 1.0f);
    float *wd = llem_malloc((size_t)(K * N) * sizeof(float));
    void *wq = bt_quantize(GGML_TYPE_Q6_K, w, (size_t)(K * N), K, wd);
    struct bt_case all = {
        .name = "mm batch Q6_K repacked",
        .n_in = 2,
        .in = {{GGML_TYPE_Q6_K, {K, N, 1, 1}, wq}, {GGML_TYPE_F32, {K, M, 1, 1}, x}},
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
    rng_seed(&rng, 6206);
    bt_init(false);
    RUN_TEST(test_gemm_kernels);
    RUN_TEST(test_mul_mat_repacked);
    RUN_TEST(test_batch_invariant);
    bt_fini();
    return TEST_EXIT();
}
