// tests/backend/backend_ops.c: every CPU op (except attention, see backend_attn.c) against a
// double-precision reference written here, independent of the kernels; each run for the
// scalar and AVX2 kernel sets and 1, 2, 3 threads (bit-identical across thread counts), with
// odd shapes (rows not a multiple of 8 or of the block size, one token, many tokens) and
// strided inputs (permuted/transposed views).
#include "backend/cpu/quant/quant.h"
#include "backend_test.h"

static struct rng rng;

// ---- get_rows ----------------------------------------------------------------------------------

static struct tensor *build_get_rows(struct graph *gr, struct tensor **in, const void *u)
{
    (void)u;
    return op_get_rows(gr, in[0], in[1]);
}

// Every table type; the types with a repacked layout also as a prepared weight (a token
// embedding that doubles as the output matrix: the AVX2 backend repacks it and get_rows reads
// the rows back out of its copy, which must give the plain path's values exactly).
static void test_get_rows(void)
{
    const uint32_t types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_Q8_0,
                              GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
    for (size_t ti = 0; ti < LLEM_ARRAY_LEN(types); ti++) {
        for (int prepared = 0; prepared < 2; prepared++) {
            const uint32_t type = types[ti];
            if (prepared && !cpu_repack_kind_of(type)) {
                continue;
            }
            const int64_t ne0 = tensor_type_blck(type) == 1 ? 37 : 2 * tensor_type_blck(type);
            const int64_t n_rows = prepared ? 16 : 11, n_ids = 7; // repacks take groups of 8
            float *x = bt_randn(&rng, (size_t)(ne0 * n_rows), 1.0f);
            float *deq = llem_malloc((size_t)(ne0 * n_rows) * sizeof(float));
            void *q = bt_quantize(type, x, (size_t)(ne0 * n_rows), ne0, deq);
            int32_t ids[7] = {3, 0, 10, 3, 5, 9, 1};
            if (prepared) {
                ids[2] = 15;
                ids[5] = 8;
            }
            double *ref = llem_malloc((size_t)(ne0 * n_ids) * sizeof(double));
            for (int64_t i = 0; i < n_ids; i++) {
                for (int64_t j = 0; j < ne0; j++) {
                    ref[i * ne0 + j] = deq[ids[i] * ne0 + j];
                }
            }
            struct bt_case c = {
                .name = prepared ? "get_rows repacked" : "get_rows",
                .n_in = 2,
                .in = {{type, {ne0, n_rows, 1, 1}, q}, {GGML_TYPE_I32, {n_ids, 1, 1, 1}, ids}},
                .build = build_get_rows,
                .expect = ref,
                .n_out = (size_t)(ne0 * n_ids),
                .prepare_in0 = prepared,
            };
            bt_check(&c);
            llem_free(x);
            llem_free(deq);
            llem_free(q);
            llem_free(ref);
        }
    }
}

// ---- add / mul with broadcasting, on strided inputs ----------------------------------------------

struct bin_user {
    bool mul;
    bool permute_a; // a is given as [ne1, ne0, ...] and transposed in the graph
};

static struct tensor *build_binary(struct graph *gr, struct tensor **in, const void *u)
{
    const struct bin_user *b = u;
    struct tensor *a = b->permute_a ? op_transpose(gr, in[0]) : in[0];
    return b->mul ? op_mul(gr, a, in[1]) : op_add(gr, a, in[1]);
}

static void test_binary(void)
{
    const int64_t ne[4] = {13, 5, 3, 2};
    const int64_t bshapes[][4] = {{13, 5, 3, 2}, {13, 1, 1, 1}, {13, 1, 3, 1}, {1, 5, 1, 2}};
    for (int mul = 0; mul < 2; mul++) {
        for (int perm = 0; perm < 2; perm++) {
            for (size_t bs = 0; bs < LLEM_ARRAY_LEN(bshapes); bs++) {
                const int64_t *be = bshapes[bs];
                size_t na = (size_t)(ne[0] * ne[1] * ne[2] * ne[3]);
                size_t nb = (size_t)(be[0] * be[1] * be[2] * be[3]);
                float *a = bt_randn(&rng, na, 1.0f), *b = bt_randn(&rng, nb, 1.0f);
                double *ref = llem_malloc(na * sizeof(double));
                for (int64_t i3 = 0; i3 < ne[3]; i3++)
                    for (int64_t i2 = 0; i2 < ne[2]; i2++)
                        for (int64_t i1 = 0; i1 < ne[1]; i1++)
                            for (int64_t i0 = 0; i0 < ne[0]; i0++) {
                                // a's storage is [ne1, ne0] when transposed in the graph.
                                size_t ia =
                                    perm ? (size_t)(((i3 * ne[2] + i2) * ne[0] + i0) * ne[1] + i1)
                                         : (size_t)(((i3 * ne[2] + i2) * ne[1] + i1) * ne[0] + i0);
                                size_t ib = (size_t)((((i3 % be[3]) * be[2] + i2 % be[2]) * be[1] +
                                                      i1 % be[1]) *
                                                         be[0] +
                                                     i0 % be[0]);
                                size_t io = (size_t)(((i3 * ne[2] + i2) * ne[1] + i1) * ne[0] + i0);
                                ref[io] = mul ? (double)a[ia] * (double)b[ib]
                                              : (double)a[ia] + (double)b[ib];
                            }
                struct bin_user u = {mul != 0, perm != 0};
                struct bt_case c = {
                    .name = mul ? "mul" : "add",
                    .n_in = 2,
                    .in = {{GGML_TYPE_F32,
                            {perm ? ne[1] : ne[0], perm ? ne[0] : ne[1], ne[2], ne[3]},
                            a},
                           {GGML_TYPE_F32, {be[0], be[1], be[2], be[3]}, b}},
                    .build = build_binary,
                    .user = &u,
                    .expect = ref,
                    .n_out = na,
                    .atol = 1e-6,
                    .rtol = 1e-6,
                };
                bt_check(&c);
                llem_free(a);
                llem_free(b);
                llem_free(ref);
            }
        }
    }
}

// ---- scale / silu / swiglu / rms_norm ----------------------------------------------------------

enum un_kind { UN_SCALE, UN_SILU, UN_SWIGLU, UN_RMS };

static struct tensor *build_unary(struct graph *gr, struct tensor **in, const void *u)
{
    switch (*(const enum un_kind *)u) {
    case UN_SCALE: return op_scale_bias(gr, in[0], 0.37f, -1.25f);
    case UN_SILU: return op_silu(gr, in[0]);
    case UN_SWIGLU: return op_swiglu(gr, in[0], in[1]);
    default: return op_rms_norm(gr, in[0], 1e-5f);
    }
}

static void test_unary(void)
{
    const int64_t widths[] = {1, 7, 33, 4097};
    for (int k = UN_SCALE; k <= UN_RMS; k++) {
        for (size_t wi = 0; wi < LLEM_ARRAY_LEN(widths); wi++) {
            const int64_t ne0 = widths[wi], ne1 = 5;
            size_t n = (size_t)(ne0 * ne1);
            float *a = bt_randn(&rng, n, 3.0f), *b = bt_randn(&rng, n, 1.0f);
            a[0] = -90.0f; // silu's exp underflow region
            if (n > 2) {
                a[1] = 40.0f;
            }
            double *ref = llem_malloc(n * sizeof(double));
            for (int64_t r = 0; r < ne1; r++) {
                double ss = 0.0;
                for (int64_t i = 0; i < ne0; i++) {
                    ss += (double)a[r * ne0 + i] * (double)a[r * ne0 + i];
                }
                double inv = 1.0 / sqrt(ss / (double)ne0 + 1e-5);
                for (int64_t i = 0; i < ne0; i++) {
                    double x = a[r * ne0 + i], s = x / (1.0 + exp(-x));
                    double *y = &ref[r * ne0 + i];
                    switch (k) {
                    case UN_SCALE: *y = x * 0.37 - 1.25; break;
                    case UN_SILU: *y = s; break;
                    case UN_SWIGLU: *y = s * (double)b[r * ne0 + i]; break;
                    default: *y = x * inv; break;
                    }
                }
            }
            enum un_kind kind = (enum un_kind)k;
            struct bt_case c = {
                .name = "unary",
                .n_in = k == UN_SWIGLU ? 2 : 1,
                .in = {{GGML_TYPE_F32, {ne0, ne1, 1, 1}, a}, {GGML_TYPE_F32, {ne0, ne1, 1, 1}, b}},
                .build = build_unary,
                .user = &kind,
                .expect = ref,
                .n_out = n,
                .atol = 1e-6,
                .rtol = 2e-6,
                .simd_atol = 1e-6,
                .simd_rtol = 2e-6,
            };
            bt_check(&c);
            llem_free(a);
            llem_free(b);
            llem_free(ref);
        }
    }
}

// ---- mul_mat -------------------------------------------------------------------------------------

static bool mm_generic; // the backends were created with generic_quant
static bool mm_repack;  // weights go through backend_weight_prepare (Q4_0 in groups of 8)

struct mm_user {
    bool x_transposed; // x stored as [M, K] and transposed + made contiguous in the graph
};

static struct tensor *build_mul_mat(struct graph *gr, struct tensor **in, const void *u)
{
    const struct mm_user *m = u;
    struct tensor *x = m->x_transposed ? op_cont(gr, op_transpose(gr, in[1])) : in[1];
    return op_mul_mat(gr, in[0], x);
}

static void mul_mat_case(uint32_t wt, int64_t K, int64_t N, int64_t M, int64_t w2, int64_t x2,
                         bool xt)
{
    size_t nw = (size_t)(K * N * w2), nx = (size_t)(K * M * x2);
    float *w = bt_randn(&rng, nw, 1.0f), *x = bt_randn(&rng, nx, 1.0f);
    float *wd = llem_malloc(nw * sizeof(float));
    void *wq = bt_quantize(wt, w, nw, K, wd);
    float *xs = x;
    if (xt) { // storage [M, K] per batch: xs[b][m][k] -> given as ne {M, K}
        xs = llem_malloc(nx * sizeof(float));
        for (int64_t b = 0; b < x2; b++)
            for (int64_t m = 0; m < M; m++)
                for (int64_t k = 0; k < K; k++) {
                    xs[(b * K + k) * M + m] = x[(b * M + m) * K + k];
                }
    }
    // With a vec_dot kernel the activations are first rounded to the partner type: the
    // reference uses those rounded values, so the check stays as tight as for F32.
    float *xr = x;
    const struct type_traits *tr = tensor_traits(wt);
    const bool vec_dot = !mm_generic && wt != GGML_TYPE_F32 && wt != GGML_TYPE_F16 &&
                         cpu_vec_dot_table(CPU_ISA_SCALAR)[wt].vec_dot;
    if (vec_dot) {
        xr = llem_malloc(nx * sizeof(float));
        void *xq = bt_quantize(tr->vec_dot_type, x, nx, K, xr);
        llem_free(xq);
    }
    size_t no = (size_t)(N * M * x2);
    double *ref = llem_malloc(no * sizeof(double));
    double max_abs = 0.0, abs_sum = 0.0;
    for (int64_t b = 0; b < x2; b++) {
        int64_t bw = b / (x2 / w2);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0.0, sa = 0.0;
                for (int64_t k = 0; k < K; k++) {
                    double t = (double)wd[(bw * N + n) * K + k] * (double)xr[(b * M + m) * K + k];
                    s += t;
                    sa += fabs(t);
                }
                abs_sum = fmax(abs_sum, sa);
                ref[(b * M + m) * N + n] = s;
                max_abs = fmax(max_abs, fabs(s));
            }
    }
    // F32 sums of K products: error grows like sqrt(K) * eps * |terms|. Quantized weights are
    // exact here (the reference uses the dequantized values), so one tolerance fits all.
    double tol = 4e-6 * sqrt((double)K) * (1.0 + max_abs);
    // Q8_1 partners carry d * sum(q) as F16 (ggml's layout): ~1e-3 of the absolute dot.
    if (vec_dot && tr->vec_dot_type == GGML_TYPE_Q8_1) {
        tol = 2e-4 * abs_sum;
    }
    struct mm_user u = {xt};
    char name[64];
    snprintf(name, sizeof name, "mul_mat %s K=%lld N=%lld M=%lld%s", tensor_type_name(wt),
             (long long)K, (long long)N, (long long)M,
             mm_generic ? " generic" : mm_repack ? " repacked" : "");
    struct bt_case c = {
        .name = name,
        .n_in = 2,
        .in = {{wt, {K, N, w2, 1}, wq}, {GGML_TYPE_F32, {xt ? M : K, xt ? K : M, x2, 1}, xs}},
        .build = build_mul_mat,
        .user = &u,
        .expect = ref,
        .n_out = no,
        .atol = tol,
        .rtol = 0,
        .simd_atol = tol,
        .simd_rtol = 0,
        .prepare_in0 = mm_repack,
    };
    bt_check(&c);
    if (xs != x) {
        llem_free(xs);
    }
    if (xr != x) {
        llem_free(xr);
    }
    llem_free(w);
    llem_free(x);
    llem_free(wd);
    llem_free(wq);
    llem_free(ref);
}

static void mul_mat_cases(void)
{
    const int64_t Ms[] = {1, 2, 4, 7, 30};
    for (size_t mi = 0; mi < LLEM_ARRAY_LEN(Ms); mi++) {
        mul_mat_case(GGML_TYPE_F32, 37, 19, Ms[mi], 1, 1, false);
        mul_mat_case(GGML_TYPE_F16, 67, 18, Ms[mi], 1, 1, false);
        mul_mat_case(GGML_TYPE_Q8_0, 96, 17, Ms[mi], 1, 1, false);
        mul_mat_case(GGML_TYPE_Q4_0, 64, 5, Ms[mi], 1, 1, false);
        mul_mat_case(GGML_TYPE_Q4_K, 256, 9, Ms[mi], 1, 1, false);
    }
    const uint32_t more[] = {GGML_TYPE_Q4_1,   GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q2_K,
                             GGML_TYPE_Q3_K,   GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_IQ4_NL,
                             GGML_TYPE_IQ4_XS, GGML_TYPE_BF16};
    for (size_t i = 0; i < LLEM_ARRAY_LEN(more); i++) {
        mul_mat_case(more[i], 512, 7, 5, 1, 1, false);
    }
    mul_mat_case(GGML_TYPE_F32, 24, 33, 50, 2, 4, false); // batch broadcast (GQA-style)
    mul_mat_case(GGML_TYPE_Q8_0, 64, 9, 6, 1, 2, false);
    mul_mat_case(GGML_TYPE_F16, 40, 7, 9, 1, 3, true); // transposed activations
    mul_mat_case(GGML_TYPE_F32, 1, 1, 1, 1, 1, false);
}

static void test_mul_mat(void)
{
    mul_mat_cases();
}

// Q4_0 weights repacked in groups of 8 rows (AVX2 backend; the scalar one keeps the plain
// path, so bt_check compares the two): 1 to 30 columns, 1 to 3 groups, 1 to 4 blocks a row,
// with and without a batch dimension on the activations.
static void test_mul_mat_repacked(void)
{
    mm_repack = true;
    const int64_t Ms[] = {1, 2, 3, 4, 5, 7, 30};
    for (size_t mi = 0; mi < LLEM_ARRAY_LEN(Ms); mi++) {
        mul_mat_case(GGML_TYPE_Q4_0, 64, 16, Ms[mi], 1, 1, false);
        mul_mat_case(GGML_TYPE_Q4_0, 128, 24, Ms[mi], 1, 1, false);
        mul_mat_case(GGML_TYPE_Q4_0, 32, 8, Ms[mi], 1, 2, false);
    }
    mul_mat_case(GGML_TYPE_Q4_0, 96, 40, 6, 1, 1, true);
    mm_repack = false;
    // The AVX2 backend really repacks such a weight, and only such a one.
    struct backend *be = bt_backends[CPU_ISA_AVX2];
    if (be) {
        struct llem_errbuf eb = {0};
        struct tensor t;
        int64_t ne[2] = {64, 16};
        CHECK_OK(tensor_init(&t, GGML_TYPE_Q4_0, 2, ne, "w", &eb), &eb);
        struct backend_buffer *buf = NULL;
        CHECK_OK(backend_buffer_alloc(be, tensor_nbytes(&t), BACKEND_BUFFER_WEIGHTS, &buf, &eb),
                 &eb);
        CHECK_OK(backend_tensor_bind(&t, buf, 0, &eb), &eb);
        size_t bytes = 0;
        CHECK_OK(backend_weight_prepare(be, &t, &bytes, &eb), &eb);
        CHECK(bytes >= tensor_nbytes(&t) && t.extra != NULL);
        backend_weight_release(be, &t);
        CHECK(t.extra == NULL);
        struct tensor odd;
        int64_t ne_odd[2] = {64, 12}; // rows not a multiple of 8: stays plain
        CHECK_OK(tensor_init(&odd, GGML_TYPE_Q4_0, 2, ne_odd, "w", &eb), &eb);
        CHECK_OK(backend_tensor_bind(&odd, buf, 0, &eb), &eb);
        CHECK_OK(backend_weight_prepare(be, &odd, &bytes, &eb), &eb);
        CHECK(bytes == 0 && odd.extra == NULL);
        backend_buffer_free(buf);
    }
}

// The same cases through the generic path (dequantized weight rows, F32 dots).
static void test_mul_mat_generic(void)
{
    bt_fini();
    bt_init(true);
    mm_generic = true;
    mul_mat_cases();
    mm_generic = false;
    bt_fini();
    bt_init(false);
}

// A column's result must not depend on the other columns of the batch (batched decoding of
// many sequences must equal decoding each alone): M = 1 (vec_dot per element) vs every column
// inside M = 8 (4x3 tiles, a 2-column edge tile, rows 12..13 through a repeated-row edge tile).
static void test_mul_mat_batch_invariant(void)
{
    const uint32_t types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_Q8_0, GGML_TYPE_Q4_0,
                              GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};
    enum { K = 256, N = 14, M = 8 };
    for (size_t ti = 0; ti < LLEM_ARRAY_LEN(types); ti++) {
        float *w = bt_randn(&rng, (size_t)(K * N), 1.0f),
              *x = bt_randn(&rng, (size_t)(K * M), 1.0f);
        float *wd = llem_malloc((size_t)(K * N) * sizeof(float));
        void *wq = bt_quantize(types[ti], w, (size_t)(K * N), K, wd);
        struct mm_user u = {false};
        char name[64];
        snprintf(name, sizeof name, "mm batch %s", tensor_type_name(types[ti]));
        struct bt_case all = {
            .name = name,
            .n_in = 2,
            .in = {{types[ti], {K, N, 1, 1}, wq}, {GGML_TYPE_F32, {K, M, 1, 1}, x}},
            .build = build_mul_mat,
            .user = &u,
            .n_out = (size_t)(N * M)};
        bt_check_columns_alone(&all, x, K, N, M);
        llem_free(w);
        llem_free(x);
        llem_free(wd);
        llem_free(wq);
    }
    // Repacked Q4_0 (16 rows: 2 groups): M = 8 runs as 4 + 4 columns, M = 1 as one.
    enum { NR = 16 };
    float *w = bt_randn(&rng, (size_t)(K * NR), 1.0f), *x = bt_randn(&rng, (size_t)(K * M), 1.0f);
    float *wd = llem_malloc((size_t)(K * NR) * sizeof(float));
    void *wq = bt_quantize(GGML_TYPE_Q4_0, w, (size_t)(K * NR), K, wd);
    struct mm_user u = {false};
    struct bt_case all = {.name = "mm batch repacked",
                          .n_in = 2,
                          .in = {{GGML_TYPE_Q4_0, {K, NR, 1, 1}, wq}, {GGML_TYPE_F32, {K, M, 1, 1}, x}},
                          .build = build_mul_mat,
                          .user = &u,
                          .n_out = (size_t)(NR * M),
                          .prepare_in0 = true};
    bt_check_columns_alone(&all, x, K, NR, M);
    llem_free(w);
    llem_free(x);
    llem_free(wd);
    llem_free(wq);
}

// ---- rope ---------------------------------------------------------------------------------------

struct rope_user {
    struct op_rope_params p;
    bool with_ff;
};

static struct tensor *build_rope(struct graph *gr, struct tensor **in, const void *u)
{
    const struct rope_user *r = u;
    return op_rope(gr, in[0], in[1], r->with_ff ? in[2] : NULL, &r->p);
}

// YaRN written out in double from its definition (the ramp over pair index between the dims
// where beta_fast / beta_slow rotations fit in the original context).
static double ref_corr_dim(int n_rot, int n_ctx, double beta, double base)
{
    return n_rot * log(n_ctx / (beta * 2.0 * M_PI)) / (2.0 * log(base));
}

static void rope_case(int mode, int64_t hd, int n_rot, double ext, float fscale, bool ff)
{
    const int64_t nh = 3, nt = 5;
    size_t n = (size_t)(hd * nh * nt);
    float *x = bt_randn(&rng, n, 1.0f);
    int32_t pos[5] = {0, 1, 7, 100, 4000};
    float fac[64];
    for (int i = 0; i < 64; i++) {
        fac[i] = 1.0f + 0.25f * (float)(i % 5);
    }
    struct rope_user u = {
        .p = {.n_rot = n_rot,
              .mode = mode,
              .n_ctx_orig = 4096,
              .freq_base = 10000.0f,
              .freq_scale = fscale,
              .ext_factor = (float)ext,
              .attn_factor = 1.0f,
              .beta_fast = 32.0f,
              .beta_slow = 1.0f},
        .with_ff = ff,
    };
    double lo = floor(ref_corr_dim(n_rot, 4096, 32.0, 10000.0));
    double hi = ceil(ref_corr_dim(n_rot, 4096, 1.0, 10000.0));
    lo = fmax(0.0, lo);
    hi = fmin(n_rot - 1, hi);
    double *ref = llem_malloc(n * sizeof(double));
    for (int64_t t = 0; t < nt; t++)
        for (int64_t h = 0; h < nh; h++) {
            const float *xr = x + (t * nh + h) * hd;
            double *y = ref + (t * nh + h) * hd;
            for (int64_t i = 0; i < hd; i++) {
                y[i] = xr[i];
            }
            for (int i = 0; i < n_rot / 2; i++) {
                double extrap =
                    pos[t] * pow(10000.0, -2.0 * i / n_rot) / (ff ? (double)fac[i] : 1.0);
                double interp = (double)fscale * extrap, th = interp, ms = 1.0;
                if (ext != 0.0) {
                    double yv = (i - lo) / fmax(0.001, hi - lo);
                    double mix = (1.0 - fmin(1.0, fmax(0.0, yv))) * ext;
                    th = interp * (1 - mix) + extrap * mix;
                    ms *= 1.0 + 0.1 * log(1.0 / (double)fscale);
                }
                int64_t a = mode == ROPE_NEOX ? i : 2 * i,
                        b = mode == ROPE_NEOX ? i + n_rot / 2 : 2 * i + 1;
                y[a] = ((double)xr[a] * cos(th) - (double)xr[b] * sin(th)) * ms;
                y[b] = ((double)xr[a] * sin(th) + (double)xr[b] * cos(th)) * ms;
            }
        }
    // Angles up to 4000 rad in float (as llama.cpp computes them): ~4000 * 2^-24 rad of error.
    struct bt_case c = {
        .name = "rope",
        .n_in = 3,
        .in = {{GGML_TYPE_F32, {hd, nh, nt, 1}, x},
               {GGML_TYPE_I32, {nt, 1, 1, 1}, pos},
               {GGML_TYPE_F32, {64, 1, 1, 1}, fac}},
        .build = build_rope,
        .user = &u,
        .expect = ref,
        .n_out = n,
        .atol = 3e-3,
        .rtol = 0,
        .simd_atol = 2e-6,
        .simd_rtol = 2e-6,
    };
    bt_check(&c);
    llem_free(x);
    llem_free(ref);
}

static void test_rope(void)
{
    for (int mode = 0; mode <= ROPE_NEOX; mode += ROPE_NEOX) {
        rope_case(mode, 64, 64, 0.0, 1.0f, false);
        rope_case(mode, 80, 48, 0.0, 1.0f, true);   // partial rotation, freq factors
        rope_case(mode, 36, 36, 1.0, 0.25f, false); // YaRN
        rope_case(mode, 10, 6, 0.5, 0.5f, true);    // odd sizes
    }
}

// ---- softmax -------------------------------------------------------------------------------------

struct sm_user {
    bool mask, sinks;
    float scale;
};

static struct tensor *build_softmax(struct graph *gr, struct tensor **in, const void *u)
{
    const struct sm_user *s = u;
    return op_softmax_ext(gr, in[0], s->mask ? in[1] : NULL, s->scale, s->sinks ? in[2] : NULL);
}

static void softmax_case(int64_t n_kv, int64_t n_q, int64_t n_head, uint32_t mtype, bool sinks)
{
    size_t n = (size_t)(n_kv * n_q * n_head);
    float *x = bt_randn(&rng, n, 2.0f);
    float *mf = llem_malloc((size_t)(n_kv * n_q) * sizeof(float));
    uint16_t *mh = llem_malloc((size_t)(n_kv * n_q) * sizeof(uint16_t));
    for (int64_t q = 0; q < n_q; q++)
        for (int64_t k = 0; k < n_kv; k++) {
            // causal-like, plus one fully masked row when there are several
            float v = (k > q + n_kv - n_q || (n_q > 2 && q == 1)) ? -INFINITY
                                                                  : (float)((k * 7 + q) % 5) * 0.1f;
            mh[q * n_kv + k] = fp16_from_f32(v);
            // The reference sees what the kernel sees: the F16 mask's rounded values.
            mf[q * n_kv + k] = mtype == GGML_TYPE_F16 ? fp16_to_f32(mh[q * n_kv + k]) : v;
        }
    float sk[8] = {0.5f, -1.0f, 3.0f, 0.0f, 1.0f, -2.0f, 2.0f, 0.25f};
    const float scale = 0.125f;
    double *ref = llem_malloc(n * sizeof(double));
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t q = 0; q < n_q; q++) {
            const float *xr = x + (h * n_q + q) * n_kv;
            double *y = ref + (h * n_q + q) * n_kv;
            const double NEG_INF = -(double)INFINITY;
            double mx = sinks ? (double)sk[h] : NEG_INF;
            for (int64_t k = 0; k < n_kv; k++) {
                y[k] = (double)xr[k] * (double)scale +
                       (mtype != GGML_TYPE_COUNT ? (double)mf[q * n_kv + k] : 0.0);
                mx = fmax(mx, y[k]);
            }
            double s = sinks ? exp((double)sk[h] - mx) : 0.0;
            for (int64_t k = 0; k < n_kv; k++) {
                s += y[k] == NEG_INF ? 0.0 : exp(y[k] - mx);
            }
            for (int64_t k = 0; k < n_kv; k++) {
                y[k] = (mx == NEG_INF || y[k] == NEG_INF) ? 0.0 : exp(y[k] - mx) / s;
            }
        }
    struct sm_user u = {mtype != GGML_TYPE_COUNT, sinks, scale};
    struct bt_case c = {
        .name = "softmax",
        .n_in = 3,
        .in = {{GGML_TYPE_F32, {n_kv, n_q, n_head, 1}, x},
               {mtype == GGML_TYPE_F16 ? GGML_TYPE_F16 : GGML_TYPE_F32,
                {n_kv, n_q, 1, 1},
                mtype == GGML_TYPE_F16 ? (const void *)mh : (const void *)mf},
               {GGML_TYPE_F32, {n_head, 1, 1, 1}, sk}},
        .build = build_softmax,
        .user = &u,
        .expect = ref,
        .n_out = n,
        .atol = 1e-7,
        .rtol = 2e-6,
        .simd_atol = 1e-7,
        .simd_rtol = 2e-6,
    };
    bt_check(&c);
    llem_free(x);
    llem_free(mf);
    llem_free(mh);
    llem_free(ref);
}

static void test_softmax(void)
{
    softmax_case(1, 1, 1, GGML_TYPE_COUNT, false);
    softmax_case(37, 5, 3, GGML_TYPE_F32, false);
    softmax_case(37, 5, 3, GGML_TYPE_F16, true);
    softmax_case(300, 1, 8, GGML_TYPE_F16, true);
    softmax_case(16, 16, 2, GGML_TYPE_COUNT, true);
}

// ---- cpy / cont / set_rows -----------------------------------------------------------------------

struct cp_user {
    uint32_t type;
    int kind; // 0 cont_type, 1 cont of a permuted view, 2 set_rows, 3 cpy into a view + read
};

static struct tensor *build_copy(struct graph *gr, struct tensor **in, const void *u)
{
    const struct cp_user *c = u;
    switch (c->kind) {
    case 0: return op_cont_type(gr, op_cont_type(gr, in[0], c->type), GGML_TYPE_F32);
    case 1: return op_cont(gr, op_permute(gr, in[0], 2, 0, 1, 3));
    case 2: {
        // dst (type) starts as a conversion of in[0]; rows of in[1] land at in[2] indices.
        struct tensor *dst = op_cont_type(gr, in[0], c->type);
        struct tensor *w = op_set_rows(gr, dst, in[1], in[2]);
        return op_cont_type(gr, w, GGML_TYPE_F32);
    }
    default: {
        struct tensor *dst = op_cont(gr, in[0]);
        struct tensor *v = op_view_2d(gr, dst, dst->ne[0], 2, dst->nb[1], dst->nb[1]);
        op_cpy(gr, in[1], v);
        // Recording order is execution order: this read of dst runs after the copy.
        return op_cont(gr, op_view_2d(gr, dst, dst->ne[0], 4, dst->nb[1], 0));
    }
    }
}

static void test_copy(void)
{
    const int64_t ne0 = 64, ne1 = 6;
    size_t n = (size_t)(ne0 * ne1);
    float *x = bt_randn(&rng, n, 1.0f), *y = bt_randn(&rng, n, 1.0f);
    double *ref = llem_malloc(n * sizeof(double));
    float *deq = llem_malloc(n * sizeof(float));
    const uint32_t types[] = {GGML_TYPE_F16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0};
    for (size_t ti = 0; ti < LLEM_ARRAY_LEN(types); ti++) {
        void *q = bt_quantize(types[ti], x, n, ne0, deq);
        for (size_t i = 0; i < n; i++) {
            ref[i] = deq[i];
        }
        struct cp_user u = {types[ti], 0};
        struct bt_case c = {
            .name = "cont_type",
            .n_in = 1,
            .in = {{GGML_TYPE_F32, {ne0, ne1, 1, 1}, x}},
            .build = build_copy,
            .user = &u,
            .expect = ref,
            .n_out = n,
        };
        bt_check(&c);
        llem_free(q);
        // set_rows: rows 0..2 of y land at rows {4, 0, 5}; the others keep x.
        int32_t idx32[3] = {4, 0, 5};
        int64_t idx64[3] = {4, 0, 5};
        float *mix = llem_malloc(n * sizeof(float));
        memcpy(mix, x, n * sizeof(float));
        for (int r = 0; r < 3; r++) {
            memcpy(mix + idx32[r] * ne0, y + r * ne0, (size_t)ne0 * sizeof(float));
        }
        q = bt_quantize(types[ti], mix, n, ne0, deq);
        for (size_t i = 0; i < n; i++) {
            ref[i] = deq[i];
        }
        for (int wide = 0; wide < 2; wide++) {
            struct cp_user us = {types[ti], 2};
            struct bt_case cs = {
                .name = "set_rows",
                .n_in = 3,
                .in = {{GGML_TYPE_F32, {ne0, ne1, 1, 1}, x},
                       {GGML_TYPE_F32, {ne0, 3, 1, 1}, y},
                       {wide ? GGML_TYPE_I64 : GGML_TYPE_I32,
                        {3, 1, 1, 1},
                        wide ? (const void *)idx64 : (const void *)idx32}},
                .build = build_copy,
                .user = &us,
                .expect = ref,
                .n_out = n,
            };
            bt_check(&cs);
        }
        llem_free(q);
        llem_free(mix);
    }
    // Permuted view made contiguous: x as [4, 8, 12] -> permute(2,0,1) -> [8, 12, 4].
    {
        const int64_t a = 4, b = 8, cc = 12;
        float *z = bt_randn(&rng, (size_t)(a * b * cc), 1.0f);
        double *r2 = llem_malloc((size_t)(a * b * cc) * sizeof(double));
        for (int64_t i2 = 0; i2 < cc; i2++)
            for (int64_t i1 = 0; i1 < b; i1++)
                for (int64_t i0 = 0; i0 < a; i0++) {
                    // source (i0, i1, i2) -> output dims (i1, i2, i0)
                    r2[(i0 * cc + i2) * b + i1] = z[(i2 * b + i1) * a + i0];
                }
        struct cp_user u = {GGML_TYPE_F32, 1};
        struct bt_case c = {
            .name = "cont_permute",
            .n_in = 1,
            .in = {{GGML_TYPE_F32, {a, b, cc, 1}, z}},
            .build = build_copy,
            .user = &u,
            .expect = r2,
            .n_out = (size_t)(a * b * cc),
        };
        bt_check(&c);
        llem_free(z);
        llem_free(r2);
    }
    // cpy of 2 rows into rows 1..2 of a copy of x, read back rows 0..3.
    {
        double r3[64 * 4];
        for (int64_t r = 0; r < 4; r++)
            for (int64_t i = 0; i < ne0; i++) {
                r3[r * ne0 + i] = (r == 1 || r == 2) ? y[(r - 1) * ne0 + i] : x[r * ne0 + i];
            }
        struct cp_user u = {GGML_TYPE_F32, 3};
        struct bt_case c = {
            .name = "cpy_view",
            .n_in = 2,
            .in = {{GGML_TYPE_F32, {ne0, ne1, 1, 1}, x}, {GGML_TYPE_F32, {ne0, 2, 1, 1}, y}},
            .build = build_copy,
            .user = &u,
            .expect = r3,
            .n_out = (size_t)(ne0 * 4),
        };
        bt_check(&c);
    }
    llem_free(x);
    llem_free(y);
    llem_free(ref);
    llem_free(deq);
}

int main(void)
{
    rng_seed(&rng, 1234);
    bt_init(false);
    RUN_TEST(test_get_rows);
    RUN_TEST(test_binary);
    RUN_TEST(test_unary);
    RUN_TEST(test_mul_mat);
    RUN_TEST(test_mul_mat_generic);
    RUN_TEST(test_mul_mat_repacked);
    RUN_TEST(test_mul_mat_batch_invariant);
    RUN_TEST(test_rope);
    RUN_TEST(test_softmax);
    RUN_TEST(test_copy);
    bt_fini();
    return TEST_EXIT();
}
