// tests/unit/tensor_graph.c: tensor descriptors and op recording: strides from tensor_init,
// byte spans, contiguity, views/reshape/permute/transpose strides and offsets, shape errors
// becoming the graph's sticky error (never a crash), and graph_reset keeping capacity so a
// rebuilt forward allocates nothing.
#include "base/alloc.h"
#include "check.h"
#include "tensor/graph.h"

static void test_init_strides(void)
{
    struct llem_errbuf eb = {0};
    struct tensor t;
    CHECK_OK(tensor_init(&t, GGML_TYPE_F32, 3, (const int64_t[]){5, 4, 3}, "x", &eb), &eb);
    CHECK_EQ_I64(t.nb[0], 4);
    CHECK_EQ_I64(t.nb[1], 20);
    CHECK_EQ_I64(t.nb[2], 80);
    CHECK_EQ_I64(t.nb[3], 240);
    CHECK_EQ_I64(t.ne[3], 1);
    CHECK_EQ_I64(tensor_nbytes(&t), 240);
    CHECK(tensor_is_contiguous(&t));
    CHECK_EQ_STR(t.name, "x");
    CHECK_OK(tensor_init(&t, GGML_TYPE_Q4_0, 2, (const int64_t[]){64, 3}, NULL, &eb), &eb);
    CHECK_EQ_I64(t.nb[0], 18);
    CHECK_EQ_I64(t.nb[1], 36);
    CHECK_EQ_I64(tensor_nbytes(&t), 108);
    CHECK_OK(tensor_init(&t, GGML_TYPE_I32, 1, (const int64_t[]){7}, NULL, &eb), &eb);
    CHECK_EQ_I64(tensor_nbytes(&t), 28);
    // Bad shapes from a file are errors, not asserts.
    CHECK_EQ_I64(tensor_init(&t, GGML_TYPE_Q4_0, 1, (const int64_t[]){33}, "q", &eb), LLEM_EINVAL);
    CHECK_EQ_I64(tensor_init(&t, GGML_TYPE_F32, 2, (const int64_t[]){3, 0}, "z", &eb), LLEM_EINVAL);
    CHECK_EQ_I64(tensor_init(&t, 999, 1, (const int64_t[]){3}, "u", &eb), LLEM_EINVAL);
    CHECK_EQ_I64(
        tensor_init(&t, GGML_TYPE_F32, 4, (const int64_t[]){INT64_MAX / 2, 4, 1, 1}, "big", &eb),
        LLEM_ELIMIT);
}

static void test_views(void)
{
    struct llem_errbuf eb = {0};
    struct graph *gr = NULL;
    CHECK_OK(graph_new(&gr, &eb), &eb);
    struct tensor *x = graph_input(gr, "x", GGML_TYPE_F32, 8, 6, 4, 1);
    // transpose: dims 0/1 swap, strides too; the span is unchanged.
    struct tensor *t = op_transpose(gr, x);
    CHECK_EQ_I64(t->ne[0], 6);
    CHECK_EQ_I64(t->ne[1], 8);
    CHECK_EQ_I64(t->nb[0], 32);
    CHECK_EQ_I64(t->nb[1], 4);
    CHECK(!tensor_is_contiguous(t));
    CHECK(tensor_is_permuted(t));
    CHECK_EQ_I64(tensor_nbytes(t), tensor_nbytes(x));
    CHECK(t->view_src == x);
    // permute(2, 0, 1, 3): source dim i goes to output dim a_i.
    struct tensor *p = op_permute(gr, x, 2, 0, 1, 3);
    CHECK_EQ_I64(p->ne[0], 6);
    CHECK_EQ_I64(p->ne[1], 4);
    CHECK_EQ_I64(p->ne[2], 8);
    CHECK_EQ_I64(p->nb[2], 4);
    CHECK_EQ_I64(p->nb[0], 32);
    CHECK_EQ_I64(p->nb[1], 192);
    // A view of a view points at the root, offsets add up.
    struct tensor *v1 = op_view_2d(gr, x, 8, 3, x->nb[1], x->nb[1] * 2);
    struct tensor *v2 = op_view_1d(gr, v1, 4, 4 * sizeof(float));
    CHECK(v2->view_src == x);
    CHECK_EQ_I64(v2->view_offs, x->nb[1] * 2 + 16);
    CHECK(tensor_storage_root(v2) == x);
    // reshape keeps the bytes, recomputes strides.
    struct tensor *r = op_reshape_2d(gr, x, 48, 4);
    CHECK_EQ_I64(r->nb[1], 192);
    CHECK(tensor_is_contiguous(r));
    CHECK_EQ_I64(graph_error(gr, &eb), LLEM_OK);
    // Errors: a view past the end, a reshape of a strided view, bad shapes for an op.
    struct tensor *bad = op_view_1d(gr, x, 8, tensor_nbytes(x) - 4);
    CHECK_EQ_I64(graph_error(gr, &eb), LLEM_EINVAL);
    CHECK(strstr(eb.msg, "outside") != NULL);
    CHECK(bad != NULL);
    // Further ops on the placeholder do not crash and keep the first error.
    struct tensor *more = op_add(gr, bad, op_rms_norm(gr, bad, 1e-5f));
    CHECK(more != NULL);
    CHECK(strstr(eb.msg, "outside") != NULL);
    graph_reset(gr);
    CHECK_EQ_I64(graph_error(gr, NULL), LLEM_OK);
    x = graph_input(gr, "x", GGML_TYPE_F32, 8, 6, 1, 1);
    op_reshape_2d(gr, op_transpose(gr, x), 48, 1);
    CHECK_EQ_I64(graph_error(gr, &eb), LLEM_EINVAL);
    graph_reset(gr);
    struct tensor *a = graph_input(gr, "a", GGML_TYPE_F32, 8, 6, 1, 1);
    struct tensor *b = graph_input(gr, "b", GGML_TYPE_F32, 7, 1, 1, 1);
    op_add(gr, a, b);
    CHECK_EQ_I64(graph_error(gr, &eb), LLEM_EINVAL);
    CHECK(strstr(eb.msg, "broadcast") != NULL);
    graph_reset(gr);
    struct tensor *w = graph_input(gr, "w", GGML_TYPE_F32, 16, 4, 1, 1);
    struct tensor *xx = graph_input(gr, "x", GGML_TYPE_F32, 15, 2, 1, 1);
    op_mul_mat(gr, w, xx);
    CHECK_EQ_I64(graph_error(gr, &eb), LLEM_EINVAL);
    graph_free(gr);
}

static void test_op_shapes(void)
{
    struct llem_errbuf eb = {0};
    struct graph *gr = NULL;
    CHECK_OK(graph_new(&gr, &eb), &eb);
    struct tensor *emb = graph_input(gr, "emb", GGML_TYPE_Q8_0, 64, 100, 1, 1);
    struct tensor *ids = graph_input(gr, "ids", GGML_TYPE_I32, 5, 1, 1, 1);
    struct tensor *x = op_get_rows(gr, emb, ids);
    CHECK_EQ_I64(x->type, GGML_TYPE_F32);
    CHECK_EQ_I64(x->ne[0], 64);
    CHECK_EQ_I64(x->ne[1], 5);
    struct tensor *w = graph_input(gr, "w", GGML_TYPE_F16, 64, 32, 1, 1);
    struct tensor *y = op_mul_mat(gr, w, x);
    CHECK_EQ_I64(y->ne[0], 32);
    CHECK_EQ_I64(y->ne[1], 5);
    struct tensor *q = op_reshape_3d(gr, y, 8, 4, 5);
    struct tensor *k = graph_input(gr, "k", GGML_TYPE_F16, 8, 20, 2, 1);
    struct tensor *o = op_flash_attn_ext(gr, op_permute(gr, q, 0, 2, 1, 3), k, k, NULL, 0.3f, NULL);
    CHECK_EQ_I64(o->ne[0], 8);
    CHECK_EQ_I64(o->ne[1], 4); // heads
    CHECK_EQ_I64(o->ne[2], 5); // queries
    struct tensor *cache = graph_input(gr, "kv", GGML_TYPE_F16, 64, 50, 1, 1);
    struct tensor *cells = graph_input(gr, "cells", GGML_TYPE_I64, 5, 1, 1, 1);
    struct tensor *sr = op_set_rows(gr, cache, x, cells);
    CHECK(sr->view_src == cache);
    CHECK_EQ_I64(sr->op, OP_SET_ROWS);
    CHECK_EQ_I64(graph_error(gr, &eb), LLEM_OK);
    CHECK_EQ_STR(tensor_op_name(OP_FLASH_ATTN), "flash_attn");
    CHECK(tensor_op_is_view(OP_PERMUTE));
    CHECK(!tensor_op_is_view(OP_CPY));
    graph_free(gr);
}

// Rebuilding the same graph after graph_reset allocates nothing.
static void build_chain(struct graph *gr, int n)
{
    struct tensor *x = graph_input(gr, "x", GGML_TYPE_F32, 16, 2, 1, 1);
    for (int i = 0; i < n; i++) {
        x = op_silu(gr, op_scale(gr, x, 0.5f));
    }
    graph_set_output(gr, x);
}

static void test_reset_no_alloc(void)
{
    struct llem_errbuf eb = {0};
    struct graph *gr = NULL;
    CHECK_OK(graph_new(&gr, &eb), &eb);
    build_chain(gr, 700); // > 1 chunk of tensors
    CHECK_EQ_I64(graph_n_tensors(gr), 1401);
    graph_reset(gr);
    uint64_t before = llem_alloc_count();
    build_chain(gr, 700);
    CHECK_EQ_I64(llem_alloc_count() - before, 0);
    CHECK(graph_tensor(gr, 1400)->id == 1400);
    CHECK(graph_tensor(gr, 1401) == NULL);
    graph_free(gr);
    graph_free(NULL);
}

static void test_alloc_failure(void)
{
    // Every allocation failure while recording becomes ENOMEM on the graph, never a crash.
    for (uint64_t k = 1; k < 8; k++) {
        struct llem_errbuf eb = {0};
        struct graph *gr = NULL;
        llem_alloc_fail_at(k, 0);
        enum llem_err e = graph_new(&gr, &eb);
        if (e == LLEM_OK) {
            build_chain(gr, 300);
            e = graph_error(gr, &eb);
        }
        int fired = llem_alloc_fail_fired();
        llem_alloc_fail_at(0, 0);
        CHECK(!fired || e == LLEM_ENOMEM);
        graph_free(gr);
    }
}

int main(void)
{
    RUN_TEST(test_init_strides);
    RUN_TEST(test_views);
    RUN_TEST(test_op_shapes);
    RUN_TEST(test_reset_no_alloc);
    RUN_TEST(test_alloc_failure);
    return TEST_EXIT();
}
