// tests/backend/backend_quant.c: the quantized dot-product kernels (backend/cpu/quant/). For
// every weight type: the scalar reference vec_dot against a double-precision dot of the
// dequantized blocks (exact integer math: only float rounding may differ), against the
// unquantized F32 dot (the quantization error budget), and every AVX2 kernel against the
// reference on random, extreme-scale, all-zero and raw-bit blocks at 1, odd and many blocks;
// the AVX2 activation quantizers must produce the reference quantizers' bytes exactly; every
// 4x3 prefill tile in the dispatch table must equal its vec_dot bit for bit.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_int.h"
#include "backend/cpu/quant/quant.h"
#include "base/alloc.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "check.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

typedef void (*dot_fn)(int n, float *s, const void *x, const void *y);

struct qcase {
    uint32_t type;
    dot_fn ref, avx2;
    double budget; // |ref - f32 dot| <= budget * |x|_2 |y|_2 for Gaussian data
};

static const struct qcase cases[] = {
    {GGML_TYPE_Q4_0, cpu_vec_dot_q4_0_q8_0_ref, cpu_vec_dot_q4_0_q8_0_avx2, 0.12},
    {GGML_TYPE_Q4_1, cpu_vec_dot_q4_1_q8_1_ref, cpu_vec_dot_q4_1_q8_1_avx2, 0.10},
    {GGML_TYPE_Q5_0, cpu_vec_dot_q5_0_q8_0_ref, cpu_vec_dot_q5_0_q8_0_avx2, 0.06},
    {GGML_TYPE_Q5_1, cpu_vec_dot_q5_1_q8_1_ref, cpu_vec_dot_q5_1_q8_1_avx2, 0.05},
    {GGML_TYPE_Q8_0, cpu_vec_dot_q8_0_q8_0_ref, cpu_vec_dot_q8_0_q8_0_avx2, 0.02},
    {GGML_TYPE_Q2_K, cpu_vec_dot_q2_K_q8_K_ref, cpu_vec_dot_q2_K_q8_K_avx2, 0.40},
    {GGML_TYPE_Q3_K, cpu_vec_dot_q3_K_q8_K_ref, cpu_vec_dot_q3_K_q8_K_avx2, 0.20},
    {GGML_TYPE_Q4_K, cpu_vec_dot_q4_K_q8_K_ref, cpu_vec_dot_q4_K_q8_K_avx2, 0.10},
    {GGML_TYPE_Q5_K, cpu_vec_dot_q5_K_q8_K_ref, cpu_vec_dot_q5_K_q8_K_avx2, 0.05},
    {GGML_TYPE_Q6_K, cpu_vec_dot_q6_K_q8_K_ref, cpu_vec_dot_q6_K_q8_K_avx2, 0.03},
    {GGML_TYPE_IQ4_NL, cpu_vec_dot_iq4_nl_q8_0_ref, cpu_vec_dot_iq4_nl_q8_0_avx2, 0.10},
    {GGML_TYPE_IQ4_XS, cpu_vec_dot_iq4_xs_q8_K_ref, cpu_vec_dot_iq4_xs_q8_K_avx2, 0.10},
    {GGML_TYPE_MXFP4, cpu_vec_dot_mxfp4_q8_0_ref, cpu_vec_dot_mxfp4_q8_0_avx2, 0.20},
    {GGML_TYPE_F16, cpu_vec_dot_f16_ref, cpu_vec_dot_f16_avx2, 1e-3},
    {GGML_TYPE_BF16, cpu_vec_dot_bf16_ref, cpu_vec_dot_bf16_avx2, 1e-2},
};

static bool have_avx2(void)
{
    const struct cpu_features *f = cpu_features();
    return f->avx2 && f->fma && f->f16c && f->os_ymm;
}

// Gaussian values with a per-32 scale that varies over `spread` decades (outliers included).
static void fill(struct rng *r, float *x, int n, double mag, double spread)
{
    for (int i = 0; i < n; i += 32) {
        double s = mag * pow(10.0, spread * (rng_uniform_f64(r) - 0.5));
        for (int j = i; j < i + 32 && j < n; j++) {
            x[j] = (float)(s * (rng_uniform_f64(r) * 2 - 1) * (rng_uniform_f64(r) < 0.02 ? 8 : 1));
        }
    }
}

struct bufs {
    float *xf, *yf, *xd, *yd;
    void *xq, *yq;
};

static double dot_d(const float *a, const float *b, int n, double *sumabs)
{
    double s = 0, sa = 0;
    for (int i = 0; i < n; i++) {
        s += (double)a[i] * (double)b[i];
        sa += fabs((double)a[i] * (double)b[i]);
    }
    if (sumabs) {
        *sumabs = sa;
    }
    return s;
}

// Replaces blocks of xq by random bits with sane scales (every code pattern reachable).
static void randomize_bits(struct rng *r, uint32_t type, void *xq, int n)
{
    const struct type_traits *tr = tensor_traits(type);
    const int nb = (int)(n / tr->blck);
    uint8_t *p = xq;
    for (size_t i = 0; i < (size_t)nb * tr->type_size; i++) {
        p[i] = (uint8_t)rng_next_u32(r);
    }
    for (int b = 0; b < nb; b++) {
        uint8_t *blk = p + (size_t)b * tr->type_size;
        const uint16_t h1 = fp16_from_f32((float)(0.001 + rng_uniform_f64(r) * 0.01));
        const uint16_t h2 = fp16_from_f32((float)(rng_uniform_f64(r) * 0.01));
        switch (type) {
        case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0: case GGML_TYPE_Q8_0: case GGML_TYPE_IQ4_NL:
        case GGML_TYPE_IQ4_XS:
            memcpy(blk, &h1, 2);
            break;
        case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K:
            memcpy(blk, &h1, 2);
            memcpy(blk + 2, &h2, 2);
            break;
        case GGML_TYPE_Q2_K:
            memcpy(blk + 80, &h1, 2);
            memcpy(blk + 82, &h2, 2);
            break;
        case GGML_TYPE_Q3_K: memcpy(blk + 108, &h1, 2); break;
        case GGML_TYPE_Q6_K: memcpy(blk + 208, &h1, 2); break;
        case GGML_TYPE_MXFP4: blk[0] = (uint8_t)(110 + rng_bounded(r, 20)); break;
        default: break;
        }
    }
    if (type == GGML_TYPE_F16 || type == GGML_TYPE_BF16) {
        uint16_t *h = xq;
        for (int i = 0; i < n; i++) {
            float v = (float)(rng_uniform_f64(r) * 2 - 1);
            h[i] = type == GGML_TYPE_F16 ? fp16_from_f32(v) : bf16_from_f32(v);
        }
    }
}

enum data_kind { DATA_GAUSS, DATA_HUGE, DATA_TINY, DATA_ZERO, DATA_BITS, DATA_KIND_COUNT };

static void run_case(const struct qcase *c, int n, enum data_kind kind, struct rng *r,
                     struct bufs *b, bool avx2)
{
    const struct type_traits *tr = tensor_traits(c->type);
    const struct type_traits *vt = tensor_traits(tr->vec_dot_type);
    double mag = kind == DATA_HUGE ? 3e3 : kind == DATA_TINY ? 1e-5 : 1.0;
    if (c->type == GGML_TYPE_F16 && kind == DATA_HUGE) {
        mag = 100; // products must stay finite in half precision
    }
    fill(r, b->xf, n, mag, kind == DATA_GAUSS ? 2.0 : 0.5);
    fill(r, b->yf, n, 1.0, 1.0);
    if (kind == DATA_ZERO) {
        memset(b->xf, 0, (size_t)n * sizeof(float));
    }
    tr->from_f32(b->xf, b->xq, n);
    if (kind == DATA_BITS) {
        randomize_bits(r, c->type, b->xq, n);
    }
    vt->from_f32(b->yf, b->yq, n);
    tr->to_f32(b->xq, b->xd, n);
    vt->to_f32(b->yq, b->yd, n);

    float s_ref = NAN;
    c->ref(n, &s_ref, b->xq, b->yq);
    double sumabs;
    const double exact = dot_d(b->xd, b->yd, n, &sumabs);
    // The integer parts are exact; what is left is float rounding of per-block scale products
    // and sums (a few ulp of the absolute sum), plus Q8_1's f16-rounded s = d * sum(q) for the
    // min terms of Q4_1/Q5_1 (2^-11 of |m| * sum |q d|).
    double tol = 1e-5 * sumabs + 1e-30;
    if (c->type == GGML_TYPE_Q4_1 || c->type == GGML_TYPE_Q5_1) {
        tol += 1e-3 * sumabs;
    }
    if (fabs((double)s_ref - exact) > tol) {
        fprintf(stderr, "%s n=%d kind=%d: ref %.9g vs dequantized dot %.9g (tol %.3g)\n",
                tr->name, n, (int)kind, (double)s_ref, exact, tol);
        check_failures++;
    }
    if (kind == DATA_ZERO) {
        CHECK(s_ref == 0.0f);
    }
    if (kind == DATA_GAUSS) {
        // against the unquantized vectors: the quantization error of both sides
        double nx = sqrt(dot_d(b->xf, b->xf, n, NULL)), ny = sqrt(dot_d(b->yf, b->yf, n, NULL));
        const double truth = dot_d(b->xf, b->yf, n, NULL);
        if (!(fabs((double)s_ref - truth) <= c->budget * nx * ny)) {
            fprintf(stderr, "%s n=%d: ref %.9g vs f32 dot %.9g exceeds budget %.3g x %.3g\n",
                    tr->name, n, (double)s_ref, truth, c->budget, nx * ny);
            check_failures++;
        }
    }
    if (avx2) {
        float s_simd = NAN;
        c->avx2(n, &s_simd, b->xq, b->yq);
        // same integers, different float summation order: a few ulp of the absolute sum
        const double tol2 = 2e-6 * sumabs + 1e-30 +
                            ((c->type == GGML_TYPE_Q4_1 || c->type == GGML_TYPE_Q5_1)
                                 ? 1e-6 * fabs((double)s_ref) : 0);
        if (!(fabs((double)s_simd - (double)s_ref) <= tol2)) {
            fprintf(stderr, "%s n=%d kind=%d: avx2 %.9g vs ref %.9g (tol %.3g)\n", tr->name, n,
                    (int)kind, (double)s_simd, (double)s_ref, tol2);
            check_failures++;
        }
    }
}

static void test_vec_dot(void)
{
    const bool avx2 = have_avx2();
    if (!avx2) {
        fprintf(stderr, "note: no AVX2/FMA/F16C here, only the scalar references are tested\n");
    }
    static const int ns[] = {256, 768, 2048, 5632, 1280};
    const int nmax = 5632;
    struct bufs b;
    b.xf = llem_malloc(nmax * sizeof(float));
    b.yf = llem_malloc(nmax * sizeof(float));
    b.xd = llem_malloc(nmax * sizeof(float));
    b.yd = llem_malloc(nmax * sizeof(float));
    b.xq = llem_malloc(nmax * 4);
    b.yq = llem_malloc(nmax * 4);
    struct rng r;
    rng_seed(&r, 1234);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const struct qcase *c = &cases[ci];
        const int64_t blck = tensor_traits(c->type)->blck;
        const int64_t pblck = tensor_traits(tensor_traits(c->type)->vec_dot_type)->blck;
        const int64_t unit = blck > pblck ? blck : pblck;
        // 1 block, 3 blocks (odd: unrolled kernels' tails), and the model sizes
        int sizes[8] = {(int)unit, (int)(3 * unit), 0, 0, 0, 0, 0, 0};
        int nsz = 2;
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            if (ns[k] % unit == 0) {
                sizes[nsz++] = ns[k];
            }
        }
        if (c->type == GGML_TYPE_F16 || c->type == GGML_TYPE_BF16) {
            sizes[nsz++] = 37; // not a multiple of the SIMD width
        }
        for (int si = 0; si < nsz; si++) {
            for (int kind = 0; kind < DATA_KIND_COUNT; kind++) {
                for (int rep = 0; rep < 3; rep++) {
                    run_case(c, sizes[si], (enum data_kind)kind, &r, &b, avx2);
                }
            }
        }
    }
    llem_free(b.xf);
    llem_free(b.yf);
    llem_free(b.xd);
    llem_free(b.yd);
    llem_free(b.xq);
    llem_free(b.yq);
}

// AVX2 quantizers: the reference's bytes exactly, including round-half cases, all-zero
// blocks, and Q8_K's sign of the first largest-magnitude element.
static void test_quantizers(void)
{
    if (!have_avx2()) {
        fprintf(stderr, "note: no AVX2, quantizer equality not tested\n");
        return;
    }
    const int n = 2048;
    float *x = llem_malloc(n * sizeof(float));
    uint8_t *a = llem_malloc(n * 2), *b = llem_malloc(n * 2);
    struct rng r;
    rng_seed(&r, 99);
    for (int rep = 0; rep < 40; rep++) {
        const int mode = rep % 4;
        for (int i = 0; i < n; i++) {
            switch (mode) {
            case 0: x[i] = (float)((rng_uniform_f64(&r) * 2 - 1) * pow(10.0, (double)(rep % 7) - 3)); break;
            case 1: x[i] = (float)((int)rng_bounded(&r, 255) - 127) * 0.5f; break;       // ties
            case 2: x[i] = (i / 32) % 3 == 0 ? 0.0f : (float)((int)rng_bounded(&r, 9) - 4); break;
            default: x[i] = (float)((int)rng_bounded(&r, 5) - 2) * (i % 2 ? -1.f : 1.f); break;
            }
        }
        tensor_quant_q8_0(x, a, n);
        cpu_quant_q8_0_avx2(x, b, n);
        CHECK(memcmp(a, b, tensor_row_size(GGML_TYPE_Q8_0, n)) == 0);
        tensor_quant_q8_1(x, a, n);
        cpu_quant_q8_1_avx2(x, b, n);
        CHECK(memcmp(a, b, tensor_row_size(GGML_TYPE_Q8_1, n)) == 0);
        tensor_quant_q8_K(x, a, n);
        cpu_quant_q8_K_avx2(x, b, n);
        CHECK(memcmp(a, b, tensor_row_size(GGML_TYPE_Q8_K, n)) == 0);
    }
    llem_free(x);
    llem_free(a);
    llem_free(b);
}


// Every tile in the dispatch tables: s[r][c] == vec_dot(x[r], y[c]) bit for bit (mul_mat's
// outputs then do not depend on the tile grid, the batch composition or the thread count),
// for real and raw-bit weight blocks, 1 and odd block counts, and repeated row pointers (the
// edges of mul_mat's grid).
static void test_vec_dot_tile(void)
{
    const int nmax = 5632;
    float *f = llem_malloc(nmax * sizeof(float));
    char *xq = llem_malloc(7 * (size_t)nmax * 4);
    char *yq = llem_malloc(5 * (size_t)nmax * 4);
    struct rng r;
    rng_seed(&r, 4242);
    int n_tiles = 0;
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        if (isa == CPU_ISA_AVX2 && !have_avx2()) {
            continue;
        }
        const struct cpu_vec_dot_entry *tab = cpu_vec_dot_table((enum cpu_isa)isa);
        for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++) {
            const struct cpu_vec_dot_entry *e = &tab[t];
            if (!e->tile) {
                continue;
            }
            n_tiles++;
            const struct type_traits *tr = tensor_traits(t);
            const struct type_traits *vt = tensor_traits(tr->vec_dot_type);
            const int unit = (int)(tr->blck > vt->blck ? tr->blck : vt->blck);
            const int sizes[] = {unit, 3 * unit, 2048, 5632};
            for (size_t si = 0; si < LLEM_ARRAY_LEN(sizes); si++) {
                const int n = sizes[si];
                if (n % unit != 0 || n > nmax) {
                    continue;
                }
                const size_t xrb = tensor_row_size(t, n);
                const size_t yrb = tensor_row_size(tr->vec_dot_type, n);
                for (int rep = 0; rep < 4; rep++) {
                    for (int k = 0; k < 7; k++) {
                        fill(&r, f, n, 1.0, 2.0);
                        tr->from_f32(f, xq + (size_t)k * xrb, n);
                        if (rep % 2) {
                            randomize_bits(&r, t, xq + (size_t)k * xrb, n);
                        }
                    }
                    for (int c = 0; c < 5; c++) {
                        fill(&r, f, n, 1.0, 1.0);
                        if (e->from_f32) {
                            e->from_f32(f, yq + (size_t)c * yrb, n);
                        } else {
                            vt->from_f32(f, yq + (size_t)c * yrb, n);
                        }
                    }
                    // distinct rows and columns, then repeated pointers as the grid edges use;
                    // nc from 2 to the maximum (the last 4x3 register group padded or not)
                    const int pick[2][4] = {{0, 1, 2, 3}, {4, 5, 5, 5}};
                    const int ncs[] = {2, 3, 7, CPU_TILE_MAX_COLS};
                    for (int pt = 0; pt < 2; pt++) {
                        const int nc = ncs[(rep + pt) % 4];
                        const void *xs[4], *ys[CPU_TILE_MAX_COLS];
                        for (int k = 0; k < 4; k++) {
                            xs[k] = xq + (size_t)pick[pt][k] * xrb;
                        }
                        for (int c = 0; c < nc; c++) {
                            ys[c] = yq + (size_t)((c * 3 + pt) % 5) * yrb;
                        }
                        float s[4 * CPU_TILE_MAX_COLS];
                        e->tile(n, xs, ys, nc, s);
                        for (int k = 0; k < 4; k++) {
                            for (int c = 0; c < nc; c++) {
                                float v = NAN;
                                e->vec_dot(n, &v, xs[k], ys[c]);
                                if (memcmp(&v, &s[k * nc + c], sizeof v) != 0) {
                                    fprintf(stderr,
                                            "%s tile (isa %d) n=%d nc=%d [%d][%d]: %.9g vs "
                                            "vec_dot %.9g\n",
                                            tr->name, isa, n, nc, k, c, (double)s[k * nc + c],
                                            (double)v);
                                    check_failures++;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if (have_avx2()) {
        CHECK(n_tiles >= 5); // Q4_0, Q8_0, Q4_K, Q5_K, Q6_K at least
    }
    llem_free(f);
    llem_free(xq);
    llem_free(yq);
}

// Q4_0 repacked in groups of 8 rows: the AVX2 kernel equals the scalar one bit for bit for
// every column count (raw-bit blocks included: every code and any f16 scale), and the scalar
// one equals the plain definition (ggml's block math with a fused multiply-add per block)
// computed here from the unrepacked rows.
static void test_repack_q4_0(void)
{
    const int sizes[] = {32, 96, 224, 2048}; // 224: a full unit of 4 blocks, then 3
    struct rng r;
    rng_seed(&r, 777);
    const struct type_traits *tr = tensor_traits(GGML_TYPE_Q4_0);
    for (size_t si = 0; si < LLEM_ARRAY_LEN(sizes); si++) {
        const int n = sizes[si], nb = n / 32;
        const size_t xrb = tensor_row_size(GGML_TYPE_Q4_0, n), yrb = tensor_row_size(GGML_TYPE_Q8_0, n);
        float *f = llem_malloc((size_t)n * sizeof(float));
        char *xq = llem_malloc(16 * xrb), *yq = llem_malloc(4 * yrb);
        char *packed = llem_aligned_alloc(64, 2 * cpu_q4_0x8_group_bytes(n));
        int16_t *sums = llem_malloc(4 * (size_t)nb * sizeof(int16_t));
        for (int rep = 0; rep < 4; rep++) {
            for (int k = 0; k < 16; k++) {
                fill(&r, f, n, 1.0, 2.0);
                tr->from_f32(f, xq + (size_t)k * xrb, n);
                if (rep % 2) {
                    randomize_bits(&r, GGML_TYPE_Q4_0, xq + (size_t)k * xrb, n);
                }
            }
            const void *ys[4];
            const int16_t *ss[4];
            for (int c = 0; c < 4; c++) {
                fill(&r, f, n, 1.0, 1.0);
                tensor_traits(GGML_TYPE_Q8_0)->from_f32(f, yq + (size_t)c * yrb, n);
                ys[c] = yq + (size_t)c * yrb;
                cpu_q8_0_block_sums(ys[c], n, sums + c * nb);
                ss[c] = sums + c * nb;
            }
            CHECK(cpu_repack_kind_of(GGML_TYPE_Q4_0)->repack == cpu_q4_0x8_repack);
            cpu_q4_0x8_repack(xq, xrb, n, 16, packed);
            for (int g = 0; g < 2; g++) {
                const char *grp = packed + (size_t)g * cpu_q4_0x8_group_bytes(n);
                for (int nc = 1; nc <= 4; nc++) {
                    float ref[32], simd[32];
                    cpu_gemm_q4_0x8_q8_0_ref(n, grp, ys, ss, nc, ref);
                    if (have_avx2()) {
                        cpu_gemm_q4_0x8_q8_0_avx2(n, grp, ys, ss, nc, simd);
                        CHECK(memcmp(ref, simd, (size_t)nc * 8 * sizeof(float)) == 0);
                    }
                    for (int c = 0; c < nc; c++) {
                        for (int row = 0; row < 8; row++) {
                            const struct block_q4_0 *x =
                                (const void *)(xq + (size_t)(g * 8 + row) * xrb);
                            const struct block_q8_0 *y = ys[c];
                            float acc = 0;
                            for (int b = 0; b < nb; b++) {
                                int isum = 0;
                                for (int j = 0; j < 16; j++) {
                                    isum += ((x[b].qs[j] & 15) - 8) * y[b].qs[j];
                                    isum += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
                                }
                                acc = fmaf((float)isum, fp16_to_f32(x[b].d) * fp16_to_f32(y[b].d),
                                           acc);
                            }
                            if (memcmp(&acc, &ref[8 * c + row], sizeof acc) != 0 &&
                                !(isnan(acc) && isnan(ref[8 * c + row]))) {
                                fprintf(stderr, "q4_0x8 n=%d nc=%d [%d][%d]: %.9g vs %.9g\n", n,
                                        nc, c, row, (double)ref[8 * c + row], (double)acc);
                                check_failures++;
                            }
                        }
                    }
                }
            }
        }
        llem_free(f);
        llem_free(xq);
        llem_free(yq);
        llem_aligned_free(packed);
        llem_free(sums);
    }
}

// Every repacked kind, on rows of random bytes (every bit pattern a block can hold): each
// block of each row comes back from the copy byte for byte (unpack_block is the inverse that
// get_rows of a repacked embedding relies on), and the AVX2 repack, where a kind has one,
// writes the scalar repack's bytes.
static void test_repack_roundtrip(void)
{
    struct rng r;
    rng_seed(&r, 4242);
    for (int i = 0; cpu_repack_kind_at(i); i++) {
        const struct cpu_repack_kind *kind = cpu_repack_kind_at(i);
        const int64_t blck = tensor_type_blck(kind->type);
        const int64_t n_blocks[] = {3, 8, 33, 88}; // odd counts: the AVX2 copies go 2 at a time
        for (size_t ki = 0; ki < LLEM_ARRAY_LEN(n_blocks); ki++) {
            const int64_t nb = n_blocks[ki], K = nb * blck;
            const size_t rb = tensor_row_size(kind->type, K), bb = rb / (size_t)nb;
            const size_t gb = kind->group_bytes(K);
            unsigned char *rows = llem_malloc(16 * rb);
            unsigned char *packed = llem_aligned_alloc(64, 2 * gb), *fast = llem_aligned_alloc(64, 2 * gb);
            for (size_t j = 0; j < 16 * rb; j++) {
                rows[j] = (unsigned char)rng_next_u32(&r);
            }
            memset(packed, 0xa5, 2 * gb);
            kind->repack(rows, rb, K, 16, packed);
            int bad = 0;
            for (int row = 0; row < 16; row++) {
                for (int64_t b = 0; b < nb; b++) {
                    unsigned char block[256];
                    kind->unpack_block(packed + (size_t)(row / 8) * gb, K, row % 8, b, block);
                    bad += memcmp(block, rows + (size_t)row * rb + (size_t)b * bb, bb) != 0;
                }
            }
            if (bad) {
                fprintf(stderr, "%s K=%lld: %d blocks differ after repack + unpack\n", kind->name,
                        (long long)K, bad);
                check_failures++;
            }
            if (kind->repack_avx2 && have_avx2()) {
                memset(fast, 0x5a, 2 * gb);
                kind->repack_avx2(rows, rb, K, 16, fast);
                CHECK(memcmp(packed, fast, 2 * gb) == 0);
            }
            llem_free(rows);
            llem_aligned_free(packed);
            llem_aligned_free(fast);
        }
    }
}

int main(void)
{
    RUN_TEST(test_vec_dot);
    RUN_TEST(test_quantizers);
    RUN_TEST(test_vec_dot_tile);
    RUN_TEST(test_repack_q4_0);
    RUN_TEST(test_repack_roundtrip);
    return TEST_EXIT();
}
