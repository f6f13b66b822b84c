// tests/golden/runner_embed.c: embedding tasks in the runner. Embeddings submitted together
// with greedy generations (all admitted in the same step) equal model_ctx_embed on a private
// context, and the generations are unchanged by them; each DONE carries n_embd floats and the
// prompt size as prompt_eval_count; every slot is free afterwards and the embeddings left no
// KV cells behind; a prompt longer than the context is refused at submit.
#include "unit/runner_test.h"

enum { N_EMB = 6, N_GEN_TASKS = 2, N_GEN = 16, P_MAX = 48 };

static void embed_model(const char *rel)
{
    struct rt_model o;
    rt_open(&o, rel);
    const int32_t n_embd = o.m->hp.n_embd;
    llem_token prompts[N_EMB + N_GEN_TASKS][P_MAX];
    int32_t n_prompt[N_EMB + N_GEN_TASKS];
    float *ref = llem_malloc((size_t)N_EMB * (size_t)n_embd * sizeof *ref);
    CHECK(ref != NULL);
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = 128;
    cp.n_batch = 16;
    struct model_ctx *c;
    struct llem_errbuf eb = {0};
    CHECK_OK(model_ctx_new(o.m, &cp, &c, &eb), &eb);
    for (int i = 0; i < N_EMB + N_GEN_TASKS; i++) {
        n_prompt[i] = rt_prompt(&o, 100 + i, 2 + (i * 11) % (P_MAX - 2), prompts[i]);
        if (i < N_EMB) {
            CHECK_OK(model_ctx_embed(c, 0, prompts[i], n_prompt[i], ref + (size_t)i * n_embd, &eb),
                     &eb);
        }
    }
    model_ctx_free(c);
    llem_token gen_ref[N_GEN_TASKS][N_GEN];
    int32_t n_gen_ref[N_GEN_TASKS];
    for (int i = 0; i < N_GEN_TASKS; i++) {
        n_gen_ref[i] = rt_reference(&o, 128, prompts[N_EMB + i], n_prompt[N_EMB + i], N_GEN, false,
                                    gen_ref[i]);
    }

    struct runner_params rp = runner_params_default();
    rp.n_ctx = 128;
    rp.n_parallel = 4; // fewer slots than tasks: embeddings wait for and reuse slots
    rp.n_batch = 32;
    struct runner *r;
    CHECK_OK(runner_new(o.m, o.v, &rp, &r, &eb), &eb);
    struct runner_task *t[N_EMB + N_GEN_TASKS];
    runner_hold(r, true);
    for (int i = 0; i < N_EMB + N_GEN_TASKS; i++) {
        // Interleave: generation tasks first and in the middle.
        int k = i == 0 ? N_EMB : i == 3 ? N_EMB + 1 : i < 3 ? i - 1 : i - 2;
        struct runner_task_params tp = rt_greedy(prompts[k], n_prompt[k], N_GEN);
        tp.embed = k < N_EMB;
        CHECK_OK(runner_submit(r, &tp, &t[k], &eb), &eb);
    }
    runner_hold(r, false);
    int bad = 0;
    for (int k = 0; k < N_EMB; k++) {
        struct runner_event ev;
        bool got_done = false;
        while (runner_task_next(t[k], &ev, -1)) {
            CHECK_EQ_I64(ev.kind, RUNNER_EV_DONE);
            if (ev.kind == RUNNER_EV_DONE) {
                got_done = true;
                CHECK_EQ_I64(ev.n_embd, n_embd);
                CHECK_EQ_I64(ev.stats.prompt_eval_count, n_prompt[k]);
                CHECK(ev.embedding != NULL);
                if (ev.embedding && memcmp(ev.embedding, ref + (size_t)k * n_embd,
                                           (size_t)n_embd * sizeof(float))) {
                    bad++;
                }
            }
            runner_event_clear(&ev);
        }
        CHECK(got_done);
        runner_task_release(t[k]);
    }
    CHECK_EQ_I64(bad, 0);
    for (int i = 0; i < N_GEN_TASKS; i++) {
        struct rt_result *res = llem_calloc(1, sizeof *res);
        CHECK(res != NULL);
        rt_collect(t[N_EMB + i], res);
        runner_task_release(t[N_EMB + i]);
        CHECK_EQ_I64(res->kind, RUNNER_EV_DONE);
        int32_t got = res->n_ctx - n_prompt[N_EMB + i];
        CHECK_EQ_I64(got, n_gen_ref[i]);
        CHECK(got == n_gen_ref[i] && !memcmp(res->ctx + n_prompt[N_EMB + i], gen_ref[i],
                                             (size_t)got * sizeof(llem_token)));
        llem_free(res);
    }
    struct runner_status st;
    runner_status(r, &st);
    CHECK_EQ_I64(st.n_busy, 0);
    CHECK_EQ_I64(st.n_queued, 0);
    // Only the generations' cached prompts + outputs stay (prefix reuse); no embedding cells.
    int32_t gen_cells = 0;
    for (int i = 0; i < N_GEN_TASKS; i++) {
        gen_cells += n_prompt[N_EMB + i] + n_gen_ref[i] - 1;
    }
    CHECK(st.kv_cells_used <= gen_cells);

    // Too long for the context.
    llem_token *long_p = llem_calloc(200, sizeof *long_p);
    CHECK(long_p != NULL);
    struct runner_task_params tp = {.prompt = long_p, .n_prompt = 200, .embed = true};
    struct runner_task *tl = NULL;
    CHECK(runner_submit(r, &tp, &tl, &eb) == LLEM_EINVAL);
    llem_free(long_p);

    fprintf(stderr, "%s: %d embeddings identical to model_ctx_embed, %d generations unchanged\n",
            rel, N_EMB - bad, N_GEN_TASKS);
    runner_free(r);
    llem_free(ref);
    rt_close(&o);
}

static void test_stories(void)
{
    embed_model("models/stories260K.gguf");
}
static void test_qwen3_q4(void)
{
    embed_model("models/qwen3-tiny-Q4_K_M.gguf");
}

int main(void)
{
    RUN_TEST(test_stories);
    RUN_TEST(test_qwen3_q4);
    return TEST_EXIT();
}
