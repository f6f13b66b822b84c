// tests/unit/tensor_graph_plan.c: the memory planner on recorded graphs (no backend needed):
// no two tensors that are alive at the same node share bytes (except a node writing in place
// of the source it consumes last), scratch areas never overlap a live tensor, outputs are never
// reused, views take no memory, offsets are aligned, and the peak is below one buffer per
// tensor. A transformer-like block (norms, matmuls, rope, attention, residuals) and random
// DAGs are checked.
#include "base/alloc.h"
#include "base/rng.h"
#include "check.h"
#include "tensor/plan.h"

#define ALIGN 64

static size_t work_fn(const struct tensor *t, void *user)
{
    (void)user;
    return t->op == OP_MUL_MAT ? 1000 : 0; // scratch for some nodes
}

static size_t span(const struct tensor *t)
{
    return (tensor_nbytes(t) + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

// Birth: creation index (inputs: -1). Death: the plan's last use.
static void check_plan(const struct graph *gr, const struct plan *p)
{
    const int n = graph_n_tensors(gr);
    CHECK_EQ_I64(p->n, n);
    if (p->n != n) {
        return;
    }
    for (int i = 0; i < n; i++) {
        const struct tensor *a = graph_tensor(gr, i);
        size_t oa = p->offs[i];
        if (a->view_src || (a->op == OP_NONE && !(a->flags & TENSOR_FLAG_INPUT))) {
            CHECK(oa == PLAN_NO_OFFSET); // views and external leaves take no memory
            continue;
        }
        CHECK(oa != PLAN_NO_OFFSET);
        CHECK(oa % ALIGN == 0);
        CHECK(oa + span(a) <= p->peak_bytes);
        const int a0 = a->op == OP_NONE ? -1 : i, a1 = p->last_use[i];
        if (a->flags & TENSOR_FLAG_OUTPUT) {
            CHECK(a1 == n);
        }
        for (int j = i + 1; j < n; j++) {
            const struct tensor *b = graph_tensor(gr, j);
            size_t ob = p->offs[j];
            if (ob == PLAN_NO_OFFSET) {
                continue;
            }
            const int b0 = b->op == OP_NONE ? -1 : j, b1 = p->last_use[j];
            bool live_together = a0 <= b1 && b0 <= a1;
            bool share = oa < ob + span(b) && ob < oa + span(a);
            // In-place chains: b took over a's bytes at the node where a died.
            int k = j;
            bool chained = false;
            while (k >= 0 && p->inplace[k] >= 0) {
                if (p->inplace[k] == i) {
                    chained = true;
                }
                k = p->inplace[k];
            }
            if (live_together && share && !(chained && a1 == b0)) {
                fprintf(stderr, "overlap: '%s' [%d,%d] @%zu+%zu and '%s' [%d,%d] @%zu+%zu\n",
                        a->name, a0, a1, oa, span(a), b->name, b0, b1, ob, span(b));
                CHECK(!"live tensors overlap");
                return;
            }
        }
    }
    // Scratch of node i against every tensor alive at i.
    for (int i = 0; i < n; i++) {
        if (p->work_offs[i] == PLAN_NO_OFFSET) {
            continue;
        }
        for (int j = 0; j < n; j++) {
            const struct tensor *b = graph_tensor(gr, j);
            if (p->offs[j] == PLAN_NO_OFFSET) {
                continue;
            }
            const int b0 = b->op == OP_NONE ? -1 : j, b1 = p->last_use[j];
            if (b0 <= i && i <= b1 && p->work_offs[i] < p->offs[j] + span(b) &&
                p->offs[j] < p->work_offs[i] + p->work_bytes[i]) {
                CHECK(!"scratch overlaps a live tensor");
                return;
            }
        }
    }
    CHECK(p->peak_bytes < p->naive_bytes);
}

// A llama-like layer stack with weights bound outside the planner (buf set to a dummy).
static void build_layers(struct graph *gr, struct tensor *weights, int n_layer, int n_tok)
{
    const int64_t n_embd = 64, n_head = 4, hd = 16;
    struct tensor *ids = graph_input(gr, "ids", GGML_TYPE_I32, n_tok, 1, 1, 1);
    struct tensor *pos = graph_input(gr, "pos", GGML_TYPE_I32, n_tok, 1, 1, 1);
    struct tensor *x = op_get_rows(gr, &weights[0], ids);
    for (int il = 0; il < n_layer; il++) {
        struct tensor *h = op_mul(gr, op_rms_norm(gr, x, 1e-5f), &weights[1]);
        struct tensor *q = op_reshape_3d(gr, op_mul_mat(gr, &weights[2], h), hd, n_head, n_tok);
        struct tensor *k = op_reshape_3d(gr, op_mul_mat(gr, &weights[2], h), hd, n_head, n_tok);
        struct tensor *v = op_reshape_3d(gr, op_mul_mat(gr, &weights[2], h), hd, n_head, n_tok);
        struct op_rope_params rp = {.n_rot = (int32_t)hd,
                                    .mode = ROPE_NEOX,
                                    .freq_base = 1e4f,
                                    .freq_scale = 1,
                                    .attn_factor = 1,
                                    .n_ctx_orig = 512};
        q = op_rope(gr, q, pos, NULL, &rp);
        k = op_rope(gr, k, pos, NULL, &rp);
        struct tensor *a = op_flash_attn_ext(
            gr, op_permute(gr, q, 0, 2, 1, 3), op_cont(gr, op_permute(gr, k, 0, 2, 1, 3)),
            op_cont(gr, op_permute(gr, v, 0, 2, 1, 3)), NULL, 0.25f, NULL);
        a = op_reshape_2d(gr, a, n_embd, n_tok);
        x = op_add(gr, x, op_mul_mat(gr, &weights[2], a));
        h = op_mul(gr, op_rms_norm(gr, x, 1e-5f), &weights[1]);
        struct tensor *g =
            op_swiglu(gr, op_mul_mat(gr, &weights[3], h), op_mul_mat(gr, &weights[3], h));
        x = op_add(gr, x, op_mul_mat(gr, &weights[4], g));
    }
    struct tensor *out = op_rms_norm(gr, x, 1e-5f);
    graph_set_output(gr, out);
}

static void test_layers(void)
{
    struct llem_errbuf eb = {0};
    struct tensor w[5];
    const int64_t shapes[5][2] = {{64, 100}, {64, 1}, {64, 64}, {64, 96}, {96, 64}};
    static char fake_buffer; // the planner only checks that weights have storage
    for (int i = 0; i < 5; i++) {
        CHECK_OK(tensor_init(&w[i], GGML_TYPE_F32, 2, shapes[i], "w", &eb), &eb);
        w[i].buf = (struct backend_buffer *)(void *)&fake_buffer;
        w[i].flags = TENSOR_FLAG_WEIGHT;
    }
    struct graph *gr = NULL;
    CHECK_OK(graph_new(&gr, &eb), &eb);
    struct plan p;
    plan_init(&p);
    for (int n_tok = 1; n_tok <= 33; n_tok += 16) {
        graph_reset(gr);
        build_layers(gr, w, 4, n_tok);
        CHECK_OK(graph_error(gr, &eb), &eb);
        CHECK_OK(plan_build(&p, gr, ALIGN, work_fn, NULL, &eb), &eb);
        check_plan(gr, &p);
        int n_inplace = 0;
        for (int i = 0; i < p.n; i++) {
            n_inplace += p.inplace[i] >= 0;
        }
        CHECK(n_inplace > 0);
        fprintf(stderr, "  n_tok %d: %d tensors, peak %zu bytes, naive %zu, %d in place\n", n_tok,
                p.n, p.peak_bytes, p.naive_bytes, n_inplace);
    }
    // Re-planning the same graph allocates nothing.
    uint64_t before = llem_alloc_count();
    CHECK_OK(plan_build(&p, gr, ALIGN, work_fn, NULL, &eb), &eb);
    CHECK_EQ_I64(llem_alloc_count() - before, 0);
    // A leaf without storage that is not an input is an error, not a crash.
    graph_reset(gr);
    struct tensor *in = graph_input(gr, "in", GGML_TYPE_F32, 8, 1, 1, 1);
    graph_set_output(gr, op_add(gr, in, op_scale(gr, in, 2.0f)));
    CHECK_OK(plan_build(&p, gr, ALIGN, NULL, NULL, &eb), &eb);
    check_plan(gr, &p);
    plan_deinit(&p);
    graph_free(gr);
}

// Random DAGs of elementwise ops, views and matmuls over a few inputs.
static void test_random(void)
{
    struct llem_errbuf eb = {0};
    struct rng r;
    rng_seed(&r, 7);
    struct graph *gr = NULL;
    CHECK_OK(graph_new(&gr, &eb), &eb);
    struct plan p;
    plan_init(&p);
    for (int it = 0; it < 50; it++) {
        graph_reset(gr);
        struct tensor *pool[256];
        int np = 0;
        const int64_t d = 8 + (int64_t)rng_bounded(&r, 4) * 8;
        for (int i = 0; i < 3; i++) {
            pool[np++] = graph_input(gr, "in", GGML_TYPE_F32, d, d, 1, 1);
        }
        for (int i = 0; i < 120 && np < 256; i++) {
            struct tensor *a = pool[np - 1 - (int)rng_bounded(&r, (uint64_t)LLEM_MIN(np, 6))];
            struct tensor *b = pool[rng_bounded(&r, (uint64_t)np)];
            struct tensor *y;
            switch (rng_bounded(&r, 7)) {
            case 0: y = op_add(gr, a, b); break;
            case 1: y = op_mul(gr, a, a); break;
            case 2: y = op_silu(gr, a); break;
            case 3: y = op_mul_mat(gr, a, b); break;
            case 4: y = op_cont(gr, op_transpose(gr, a)); break;
            case 5: y = op_add(gr, op_transpose(gr, a), b); break;
            default: { // views of halves: the root must outlive both
                struct tensor *top = op_view_2d(gr, a, d, d / 2, a->nb[1], 0);
                struct tensor *bot =
                    op_view_2d(gr, a, d, d / 2, a->nb[1], a->nb[1] * (size_t)(d / 2));
                y = op_add(gr, bot, op_rms_norm(gr, top, 1e-5f));
                y = op_mul_mat(gr, b, y); // [d, d/2]
                break;
            }
            }
            if (y->ne[0] == d && y->ne[1] == d) {
                pool[np++] = y;
            }
            if (rng_bounded(&r, 10) == 0) {
                graph_set_output(gr, y);
            }
        }
        graph_set_output(gr, pool[np - 1]);
        CHECK_OK(graph_error(gr, &eb), &eb);
        CHECK_OK(plan_build(&p, gr, ALIGN, work_fn, NULL, &eb), &eb);
        check_plan(gr, &p);
    }
    plan_deinit(&p);
    graph_free(gr);
}

int main(void)
{
    RUN_TEST(test_layers);
    RUN_TEST(test_random);
    return TEST_EXIT();
}
