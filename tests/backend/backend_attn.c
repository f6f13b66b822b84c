// tests/backend/backend_attn.c: flash attention against (1) a double-precision attention
// written here and (2) the plain path built from ops (mul_mat, softmax_ext, mul_mat), on random
// shapes with causal masks (including fully masked rows), GQA broadcast, sinks, and F32, F16
// and Q8_0 K/V. Every run: scalar and AVX2 kernels, 1-3 threads, bit-identical across threads.
#include "backend_test.h"

static struct rng rng;

struct fa_user {
    int64_t D, Dv, n_kv, n_q, n_head, n_head_kv;
    uint32_t kv_type;
    bool mask, sinks, plain; // plain: build the reference path from separate ops
    float scale;
    bool interleaved; // every third query row is another sequence's: it sees odd cells only
};

// in: q [D, n_q, n_head], k [D, n_kv, n_head_kv], v [Dv, n_kv, n_head_kv], mask, sinks.
static struct tensor *build_attn(struct graph *gr, struct tensor **in, const void *u)
{
    const struct fa_user *f = u;
    struct tensor *mask = f->mask ? in[3] : NULL, *sinks = f->sinks ? in[4] : NULL;
    if (!f->plain) {
        return op_flash_attn_ext(gr, in[0], in[1], in[2], mask, f->scale, sinks);
    }
    struct tensor *kq = op_mul_mat(gr, in[1], in[0]); // [n_kv, n_q, n_head]
    kq = op_softmax_ext(gr, kq, mask, f->scale, sinks);
    struct tensor *vt = op_cont(gr, op_transpose(gr, in[2])); // [n_kv, Dv, n_head_kv]
    struct tensor *kqv = op_mul_mat(gr, vt, kq);              // [Dv, n_q, n_head]
    return op_cont(gr, op_permute(gr, kqv, 0, 2, 1, 3));      // [Dv, n_head, n_q]
}

static void attn_case(const struct fa_user *f0)
{
    struct fa_user f = *f0;
    const size_t nq = (size_t)(f.D * f.n_q * f.n_head);
    const size_t nk = (size_t)(f.D * f.n_kv * f.n_head_kv);
    const size_t nv = (size_t)(f.Dv * f.n_kv * f.n_head_kv);
    float *q = bt_randn(&rng, nq, 1.0f), *k = bt_randn(&rng, nk, 1.0f);
    float *v = bt_randn(&rng, nv, 1.0f);
    float *kd = llem_malloc(nk * sizeof(float)), *vd = llem_malloc(nv * sizeof(float));
    void *kq = bt_quantize(f.kv_type, k, nk, f.D, kd);
    void *vq = bt_quantize(f.kv_type, v, nv, f.Dv, vd);
    const int64_t n_qpad = f.n_q; // the mask may be taller than n_q; here it is exact
    uint16_t *mask = llem_malloc((size_t)(f.n_kv * n_qpad) * sizeof(uint16_t));
    for (int64_t i = 0; i < n_qpad; i++)
        for (int64_t j = 0; j < f.n_kv; j++) {
            // Causal over the last n_q cells; query 2 sees nothing when there are >= 4.
            bool vis = j <= f.n_kv - f.n_q + i && !(f.n_q >= 4 && i == 2);
            vis = vis && !(f.interleaved && i % 3 == 1 && j % 2 == 0);
            mask[i * f.n_kv + j] = fp16_from_f32(vis ? -0.1f * (float)(j % 3) : -INFINITY);
        }
    float sinks[16];
    for (int h = 0; h < 16; h++) {
        sinks[h] = (float)rng_gaussian(&rng);
    }
    const size_t n_out = (size_t)(f.Dv * f.n_head * f.n_q);
    double *ref = llem_malloc(n_out * sizeof(double));
    double *s = llem_malloc((size_t)f.n_kv * sizeof(double));
    const int64_t rep = f.n_head / f.n_head_kv;
    for (int64_t h = 0; h < f.n_head; h++)
        for (int64_t i = 0; i < f.n_q; i++) {
            const float *qr = q + (h * f.n_q + i) * f.D;
            const int64_t hk = h / rep;
            double mx = f.sinks ? (double)sinks[h] : -(double)INFINITY;
            for (int64_t j = 0; j < f.n_kv; j++) {
                double m = f.mask ? (double)fp16_to_f32(mask[i * f.n_kv + j]) : 0.0;
                double dot = 0.0;
                for (int64_t d = 0; d < f.D; d++) {
                    dot += (double)qr[d] * (double)kd[(hk * f.n_kv + j) * f.D + d];
                }
                s[j] = dot * (double)f.scale + m;
                mx = fmax(mx, s[j]);
            }
            double sum = f.sinks ? exp((double)sinks[h] - mx) : 0.0;
            for (int64_t j = 0; j < f.n_kv; j++) {
                s[j] = isinf(s[j]) ? 0.0 : exp(s[j] - mx);
                sum += s[j];
            }
            double *y = ref + (i * f.n_head + h) * f.Dv;
            for (int64_t d = 0; d < f.Dv; d++) {
                double a = 0.0;
                for (int64_t j = 0; j < f.n_kv; j++) {
                    a += s[j] * (double)vd[(hk * f.n_kv + j) * f.Dv + d];
                }
                y[d] = sum > 0.0 ? a / sum : 0.0;
            }
        }
    struct bt_case c = {
        .name = "flash_attn",
        .n_in = 5,
        .in = {{GGML_TYPE_F32, {f.D, f.n_q, f.n_head, 1}, q},
               {f.kv_type, {f.D, f.n_kv, f.n_head_kv, 1}, kq},
               {f.kv_type, {f.Dv, f.n_kv, f.n_head_kv, 1}, vq},
               {GGML_TYPE_F16, {f.n_kv, n_qpad, 1, 1}, mask},
               {GGML_TYPE_F32, {f.n_head, 1, 1, 1}, sinks}},
        .build = build_attn,
        .user = &f,
        .expect = ref,
        .n_out = n_out,
        .atol = 2e-5,
        .rtol = 2e-5,
        .simd_atol = 2e-5,
        .simd_rtol = 2e-5,
    };
    bt_check(&c);
    // The plain path (F32/F16 only: mul_mat over a transposed Q8_0 V has no row layout).
    if (f.kv_type == GGML_TYPE_F32 || f.kv_type == GGML_TYPE_F16) {
        float *flash = llem_malloc(n_out * sizeof(float)),
              *plain = llem_malloc(n_out * sizeof(float));
        f.plain = false;
        CHECK(bt_run(&c, bt_backends[cpu_isa_best()], 2, flash));
        f.plain = true;
        CHECK(bt_run(&c, bt_backends[cpu_isa_best()], 2, plain));
        int bad = 0;
        for (size_t i = 0; i < n_out; i++) {
            if (!bt_close(flash[i], plain[i], 2e-5, 2e-5) && bad++ < 3) {
                fprintf(stderr, "flash y[%zu] = %.9g, plain %.9g\n", i, (double)flash[i],
                        (double)plain[i]);
            }
        }
        CHECK(bad == 0);
        f.plain = false;
        llem_free(flash);
        llem_free(plain);
    }
    llem_free(q);
    llem_free(k);
    llem_free(v);
    llem_free(kd);
    llem_free(vd);
    llem_free(kq);
    llem_free(vq);
    llem_free(mask);
    llem_free(ref);
    llem_free(s);
}

static void test_flash_fixed(void)
{
    // decode (1 query), prompt tiles (several queries), GQA 4:1, MQA, sinks, odd sizes
    const struct fa_user cases[] = {
        {64, 64, 37, 1, 4, 4, GGML_TYPE_F16, true, false, false, 0.125f, false},
        {64, 64, 37, 9, 8, 2, GGML_TYPE_F16, true, true, false, 0.125f, false},
        {32, 32, 64, 13, 4, 1, GGML_TYPE_F32, true, false, false, 0.17f, false},
        {40, 24, 5, 5, 6, 3, GGML_TYPE_F32, false, true, false, 0.2f, false},
        {64, 64, 70, 4, 4, 2, GGML_TYPE_Q8_0, true, true, false, 0.125f, false},
        {32, 32, 1, 1, 2, 1, GGML_TYPE_F16, true, true, false, 1.0f, false},
    };
    for (size_t i = 0; i < LLEM_ARRAY_LEN(cases); i++) {
        attn_case(&cases[i]);
    }
}

static void test_flash_random(void)
{
    static const int64_t Ds[] = {32, 64, 96};
    static const uint32_t types[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q8_0,
                                     GGML_TYPE_Q4_0};
    for (int it = 0; it < 16; it++) {
        struct fa_user f = {0};
        f.D = Ds[rng_bounded(&rng, 3)];
        f.Dv = f.D;
        f.n_head_kv = 1 + (int64_t)rng_bounded(&rng, 3);
        f.n_head = f.n_head_kv * (1 + (int64_t)rng_bounded(&rng, 4));
        f.n_q = 1 + (int64_t)rng_bounded(&rng, 12);
        f.n_kv = f.n_q + (int64_t)rng_bounded(&rng, 90);
        f.kv_type = types[rng_bounded(&rng, 4)];
        f.mask = rng_bounded(&rng, 4) != 0;
        f.sinks = rng_bounded(&rng, 2) != 0;
        f.scale = 1.0f / sqrtf((float)f.D);
        attn_case(&f);
    }
}

// The AVX2 block kernel for F16 K/V (GQA groups of >= 4 heads: lanes = heads, 8 at a time):
// groups of 4, 5 (a padded lane group), 8 and 12 (two lane groups), decode and prompt rows,
// contexts over one and several 256-cell blocks, D 64 and 128, with and without sinks.
static void test_flash_f16_gqa_blocks(void)
{
    static const int64_t reps[] = {4, 5, 8, 12};
    for (size_t r = 0; r < LLEM_ARRAY_LEN(reps); r++) {
        for (int variant = 0; variant < 4; variant++) {
            struct fa_user f = {0};
            f.D = f.Dv = variant & 1 ? 128 : 64;
            f.n_head_kv = reps[r] == 12 ? 1 : 2;
            f.n_head = f.n_head_kv * reps[r];
            f.n_q = variant & 2 ? 6 : 1;
            f.n_kv = variant < 2 ? 200 + f.n_q : 560 + f.n_q;
            f.kv_type = GGML_TYPE_F16;
            f.mask = true;
            f.sinks = (variant + (int)r) % 2 == 0;
            f.scale = 1.0f / sqrtf((float)f.D);
            attn_case(&f);
        }
    }
}

// Prompts are run in tiles of 16 query rows that walk their blocks together: several tiles and
// a partial one, rows of two sequences mixed in a tile (their blocks cover different cells),
// rows that finish passes apart, GQA groups on the block kernel and on the generic path.
static void test_flash_prompt_tiles(void)
{
    static const int64_t n_qs[] = {16, 17, 40};
    for (size_t i = 0; i < LLEM_ARRAY_LEN(n_qs); i++) {
        for (int variant = 0; variant < 3; variant++) {
            struct fa_user f = {0};
            f.D = f.Dv = 64;
            f.n_head_kv = 2;
            f.n_head = f.n_head_kv * (variant == 1 ? 2 : 4);
            f.n_q = n_qs[i];
            f.n_kv = (variant == 0 ? 300 : 600) + f.n_q;
            f.kv_type = variant == 2 ? GGML_TYPE_F32 : GGML_TYPE_F16;
            f.mask = true;
            f.sinks = variant == 1;
            f.interleaved = variant != 0;
            f.scale = 0.125f;
            attn_case(&f);
        }
    }
}

int main(void)
{
    rng_seed(&rng, 99);
    bt_init(false);
    RUN_TEST(test_flash_fixed);
    RUN_TEST(test_flash_random);
    RUN_TEST(test_flash_f16_gqa_blocks);
    RUN_TEST(test_flash_prompt_tiles);
    bt_fini();
    return TEST_EXIT();
}
