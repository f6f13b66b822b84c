// tests/backend/model_attention.c: the attention entry point (model/layers.h layer_attention):
// flash attention agrees with the plain softmax reference on random shapes with GQA, causal
// and sliding-window masks, sinks and an MLA value projection; both agree with a naive
// double-precision oracle; and shape validation (always / once / never) refuses mismatches.
#include "backend/cpu/cpu.h"
#include "base/rng.h"
#include "check.h"
#include "model/layers.h"

struct shape {
    int D, Dv, n_q, n_kv, n_head, n_head_kv, window; // window 0: causal only
    bool sinks, mla;
    int Dv_out;
};

// out[h][t][:] = sum_j softmax_j(q.k * scale + mask (+ sink)) v_j (then the MLA projection).
static void oracle(const struct shape *s, const float *q, const float *k, const float *v,
                   const float *mask, const float *sinks, const float *vmla, float scale,
                   double *out)
{
    const int group = s->n_head / s->n_head_kv, dv_out = s->mla ? s->Dv_out : s->Dv;
    double *lat = calloc((size_t)s->Dv, sizeof *lat);
    double *w = calloc((size_t)s->n_kv, sizeof *w);
    for (int h = 0; h < s->n_head; h++) {
        int hk = h / group;
        for (int t = 0; t < s->n_q; t++) {
            double mx = -INFINITY;
            for (int j = 0; j < s->n_kv; j++) {
                double dot = 0;
                for (int d = 0; d < s->D; d++) {
                    dot += (double)q[((size_t)h * s->n_q + t) * s->D + d] *
                           (double)k[((size_t)hk * s->n_kv + j) * s->D + d];
                }
                w[j] = dot * (double)scale + (double)mask[(size_t)t * s->n_kv + j];
                mx = w[j] > mx ? w[j] : mx;
            }
            if (s->sinks && (double)sinks[h] > mx) {
                mx = (double)sinks[h];
            }
            double sum = s->sinks ? exp((double)sinks[h] - mx) : 0;
            for (int j = 0; j < s->n_kv; j++) {
                w[j] = exp(w[j] - mx);
                sum += w[j];
            }
            for (int d = 0; d < s->Dv; d++) {
                double acc = 0;
                for (int j = 0; j < s->n_kv; j++) {
                    acc += w[j] * (double)v[((size_t)hk * s->n_kv + j) * s->Dv + d];
                }
                lat[d] = acc / sum;
            }
            for (int e = 0; e < dv_out; e++) {
                double val = lat[e];
                if (s->mla) {
                    val = 0;
                    for (int d = 0; d < s->Dv; d++) {
                        val += lat[d] * (double)vmla[((size_t)h * s->Dv_out + e) * s->Dv + d];
                    }
                }
                out[((size_t)t * s->n_head + h) * dv_out + e] = val;
            }
        }
    }
    free(lat);
    free(w);
}

static void fill(struct rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)rng_gaussian(r) * scale;
    }
}

// Runs layer_attention on the CPU backend; returns the graph's status.
static enum llem_err run(struct backend *be, const struct shape *s, const float *q,
                         const float *k, const float *v, const float *mask, const float *sinks,
                         const float *vmla, float scale, bool fa, float *out,
                         struct llem_errbuf *eb)
{
    struct graph *gr = NULL;
    struct backend_galloc *ga = NULL;
    enum llem_err rc = graph_new(&gr, eb);
    if (rc == LLEM_OK) {
        rc = backend_galloc_new(be, &ga, eb);
    }
    if (rc != LLEM_OK) {
        graph_free(gr);
        return rc;
    }
    struct tensor *tq = graph_input(gr, "q", GGML_TYPE_F32, s->D, s->n_q, s->n_head, 1);
    struct tensor *tk = graph_input(gr, "k", GGML_TYPE_F32, s->D, s->n_kv, s->n_head_kv, 1);
    struct tensor *tv = graph_input(gr, "v", GGML_TYPE_F32, s->Dv, s->n_kv, s->n_head_kv, 1);
    struct tensor *tm = graph_input(gr, "mask", GGML_TYPE_F32, s->n_kv, s->n_q, 1, 1);
    struct tensor *ts = s->sinks ? graph_input(gr, "sinks", GGML_TYPE_F32, s->n_head, 1, 1, 1)
                                 : NULL;
    struct tensor *tl = s->mla ? graph_input(gr, "vmla", GGML_TYPE_F32, s->Dv, s->Dv_out,
                                             s->n_head, 1)
                               : NULL;
    struct tensor *o = layer_attention(gr, tq, tk, tv, tm, scale, ts, tl, fa);
    graph_set_output(gr, o);
    if ((rc = graph_error(gr, eb)) == LLEM_OK && (rc = backend_galloc_alloc_graph(ga, gr, eb)) == LLEM_OK) {
        backend_tensor_set(tq, q, 0, sizeof(float) * (size_t)s->D * s->n_q * s->n_head);
        backend_tensor_set(tk, k, 0, sizeof(float) * (size_t)s->D * s->n_kv * s->n_head_kv);
        backend_tensor_set(tv, v, 0, sizeof(float) * (size_t)s->Dv * s->n_kv * s->n_head_kv);
        backend_tensor_set(tm, mask, 0, sizeof(float) * (size_t)s->n_kv * s->n_q);
        if (ts) {
            backend_tensor_set(ts, sinks, 0, sizeof(float) * (size_t)s->n_head);
        }
        if (tl) {
            backend_tensor_set(tl, vmla, 0, sizeof(float) * (size_t)s->Dv * s->Dv_out * s->n_head);
        }
        if ((rc = backend_graph_compute(be, gr, eb)) == LLEM_OK) {
            backend_tensor_get(o, out, 0, tensor_nbytes(o));
        }
    }
    backend_galloc_free(ga);
    graph_free(gr);
    return rc;
}

static void check_shape(struct backend *be, const struct shape *s, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    const int dv_out = s->mla ? s->Dv_out : s->Dv;
    size_t nq = (size_t)s->D * s->n_q * s->n_head, nk = (size_t)s->D * s->n_kv * s->n_head_kv,
           nv = (size_t)s->Dv * s->n_kv * s->n_head_kv, no = (size_t)dv_out * s->n_head * s->n_q;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nv * 4);
    float *mask = malloc((size_t)s->n_kv * s->n_q * 4), sinks[64];
    float *vmla = malloc((size_t)s->Dv * (s->Dv_out + 1) * s->n_head * 4);
    float *o_fa = malloc(no * 4), *o_ref = malloc(no * 4);
    double *o_oracle = malloc(no * sizeof(double));
    fill(&r, q, nq, 1.0f);
    fill(&r, k, nk, 1.0f);
    fill(&r, v, nv, 1.0f);
    fill(&r, sinks, 64, 1.0f);
    fill(&r, vmla, (size_t)s->Dv * (s->Dv_out + 1) * s->n_head, 0.3f);
    // Queries are the last n_q positions of the n_kv cells: causal, optionally windowed.
    for (int t = 0; t < s->n_q; t++) {
        int p = s->n_kv - s->n_q + t;
        for (int j = 0; j < s->n_kv; j++) {
            bool vis = j <= p && (s->window == 0 || j > p - s->window);
            mask[(size_t)t * s->n_kv + j] = vis ? 0.0f : -INFINITY;
        }
    }
    const float scale = 1.0f / sqrtf((float)s->D);
    struct llem_errbuf eb = {0};
    CHECK_OK(run(be, s, q, k, v, mask, sinks, vmla, scale, true, o_fa, &eb), &eb);
    CHECK_OK(run(be, s, q, k, v, mask, sinks, vmla, scale, false, o_ref, &eb), &eb);
    oracle(s, q, k, v, mask, sinks, vmla, scale, o_oracle);
    double max_fa = 0, max_ref = 0;
    for (size_t i = 0; i < no; i++) {
        max_fa = fmax(max_fa, fabs((double)o_fa[i] - o_oracle[i]));
        max_ref = fmax(max_ref, fabs((double)o_ref[i] - o_oracle[i]));
    }
    fprintf(stderr, "  D %d Dv %d q %d kv %d heads %d/%d window %d sinks %d mla %d: "
            "flash max err %.2e, reference max err %.2e\n", s->D, s->Dv, s->n_q, s->n_kv,
            s->n_head, s->n_head_kv, s->window, s->sinks, s->mla, max_fa, max_ref);
    CHECK(max_fa < 1e-4);
    CHECK(max_ref < 1e-4);
    free(q);
    free(k);
    free(v);
    free(mask);
    free(vmla);
    free(o_fa);
    free(o_ref);
    free(o_oracle);
}

static struct backend *make_backend(void)
{
    struct backend *be = NULL;
    struct llem_errbuf eb = {0};
    struct backend_params bp = {.n_threads = 2};
    CHECK_OK(backend_new("cpu", &bp, &be, &eb), &eb);
    return be;
}

static void test_flash_vs_reference(void)
{
    struct backend *be = make_backend();
    const struct shape shapes[] = {
        {.D = 32, .Dv = 32, .n_q = 1, .n_kv = 17, .n_head = 4, .n_head_kv = 4},
        {.D = 64, .Dv = 64, .n_q = 7, .n_kv = 300, .n_head = 8, .n_head_kv = 2},
        {.D = 40, .Dv = 40, .n_q = 33, .n_kv = 33, .n_head = 6, .n_head_kv = 3, .window = 8},
        {.D = 32, .Dv = 32, .n_q = 5, .n_kv = 129, .n_head = 4, .n_head_kv = 1, .sinks = true},
        {.D = 16, .Dv = 16, .n_q = 3, .n_kv = 40, .n_head = 4, .n_head_kv = 2, .window = 4,
         .sinks = true},
        {.D = 32, .Dv = 32, .n_q = 4, .n_kv = 50, .n_head = 4, .n_head_kv = 1, .mla = true,
         .Dv_out = 24},
        {.D = 128, .Dv = 128, .n_q = 1, .n_kv = 1000, .n_head = 8, .n_head_kv = 8},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        check_shape(be, &shapes[i], 100 + i);
    }
    backend_free(be);
}

static void test_validation_modes(void)
{
    struct backend *be = make_backend();
    struct shape s = {.D = 16, .Dv = 16, .n_q = 2, .n_kv = 8, .n_head = 3, .n_head_kv = 2};
    float buf[4096] = {0}, out[4096];
    struct llem_errbuf eb = {0};
    layer_attn_set_validate_mode(ATTN_VALIDATE_ALWAYS);
    // 3 query heads over 2 KV heads: refused with a clear error, not a crash.
    CHECK_EQ_I64(run(be, &s, buf, buf, buf, buf, buf, buf, 1.0f, true, out, &eb), LLEM_EINVAL);
    CHECK(strstr(eb.msg, "multiple") != NULL);
    layer_attn_set_validate_mode(ATTN_VALIDATE_ONCE);
    CHECK_EQ_I64(run(be, &s, buf, buf, buf, buf, buf, buf, 1.0f, true, out, &eb), LLEM_EINVAL);
    // a valid shape passes in every mode
    s.n_head = 4;
    for (int m = ATTN_VALIDATE_ALWAYS; m <= ATTN_VALIDATE_NEVER; m++) {
        layer_attn_set_validate_mode((enum attn_validate)m);
        CHECK_OK(run(be, &s, buf, buf, buf, buf, buf, buf, 1.0f, true, out, &eb), &eb);
    }
    layer_attn_set_validate_mode(ATTN_VALIDATE_ALWAYS);
    backend_free(be);
}

int main(void)
{
    RUN_TEST(test_flash_vs_reference);
    RUN_TEST(test_validation_modes);
    return TEST_EXIT();
}
