// tests/unit/runner_basic.c: runner behaviour on stories260K (skipped without ../shared):
// prompt-prefix reuse (same output, only new tokens computed), forking a busy slot's prefix,
// stop strings and num_predict, cancellation freeing the slot's cells, EBUSY on a full queue,
// and bad submissions. Greedy sampling throughout, so every expectation is exact.
#include "unit/runner_test.h"

static struct rt_model g_m;

static struct runner *new_runner(int32_t n_parallel, int32_t max_queue)
{
    struct runner_params rp = runner_params_default();
    rp.n_ctx = 256;
    rp.n_parallel = n_parallel;
    rp.n_batch = 32;
    rp.max_queue = max_queue;
    struct runner *r = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(runner_new(g_m.m, g_m.v, &rp, &r, &eb), &eb);
    if (!r) {
        exit(1);
    }
    return r;
}

static int32_t tokenize(const char *text, llem_token *out, int32_t cap)
{
    size_t n = 0;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_encode(g_m.v, text, strlen(text), true, false, out, (size_t)cap, &n, &eb), &eb);
    return (int32_t)n;
}

static void test_prefix_reuse(void)
{
    static struct rt_result cold, warm, again;
    llem_token p[128];
    int32_t n = tokenize("Once upon a time, there was a little girl named Lily. She loved to "
                         "play outside in the park with her friends.", p, 128);
    int32_t n_base = n - 6; // the first request is the prompt without its last 6 tokens
    struct runner *r = new_runner(2, 8);
    struct runner_task_params tp = rt_greedy(p, n_base, 16);
    CHECK_OK(rt_run(r, &tp, &cold), &(struct llem_errbuf){0});
    CHECK_EQ_I64(cold.st.prompt_cached, 0);
    CHECK_EQ_I64(cold.st.prompt_eval_count, n_base);
    // Longer prompt with the same start: only the new tokens are computed...
    tp = rt_greedy(p, n, 16);
    CHECK_OK(rt_run(r, &tp, &warm), &(struct llem_errbuf){0});
    CHECK(warm.st.prompt_cached >= n_base);
    CHECK_EQ_I64(warm.st.prompt_eval_count + warm.st.prompt_cached, n);
    // ... and the output is the one a cold runner gives.
    struct runner *r2 = new_runner(2, 8);
    static struct rt_result fresh;
    CHECK_OK(rt_run(r2, &tp, &fresh), &(struct llem_errbuf){0});
    CHECK_EQ_I64(fresh.st.prompt_cached, 0);
    CHECK_EQ_STR(warm.text, fresh.text);
    CHECK_EQ_I64(warm.n_ctx, fresh.n_ctx);
    CHECK(!memcmp(warm.ctx, fresh.ctx, (size_t)fresh.n_ctx * sizeof(llem_token)));
    // The very same prompt again: all cached but the last token, recomputed for its logits.
    CHECK_OK(rt_run(r, &tp, &again), &(struct llem_errbuf){0});
    CHECK_EQ_I64(again.st.prompt_cached, n - 1);
    CHECK_EQ_I64(again.st.prompt_eval_count, 1);
    CHECK_EQ_STR(again.text, fresh.text);
    runner_free(r2);
    runner_free(r);
}

static void test_stop_and_num_predict(void)
{
    static struct rt_result full, stopped, shortr;
    llem_token p[64];
    int32_t n = tokenize("Once upon a time", p, 64);
    struct runner *r = new_runner(1, 4);
    struct runner_task_params tp = rt_greedy(p, n, 40);
    CHECK_OK(rt_run(r, &tp, &full), &(struct llem_errbuf){0});
    CHECK_EQ_I64(full.kind, RUNNER_EV_DONE);
    CHECK(full.len > 30);
    // A stop string taken from the middle of the text: output ends right before it.
    char stop[8];
    memcpy(stop, full.text + 20, 5);
    stop[5] = '\0';
    const char *stops[] = {"never-there", stop};
    tp.stops = stops;
    tp.n_stops = 2;
    CHECK_OK(rt_run(r, &tp, &stopped), &(struct llem_errbuf){0});
    const char *at = strstr(full.text, stop);
    CHECK(at != NULL);
    CHECK_EQ_I64(stopped.len, at - full.text);
    CHECK(!strncmp(stopped.text, full.text, stopped.len));
    CHECK_EQ_STR(stopped.reason, "stop");
    // num_predict: exactly that many tokens, reason "length", a prefix of the full text.
    tp = rt_greedy(p, n, 5);
    CHECK_OK(rt_run(r, &tp, &shortr), &(struct llem_errbuf){0});
    CHECK_EQ_I64(shortr.st.eval_count, 5);
    CHECK_EQ_STR(shortr.reason, "length");
    CHECK(!strncmp(shortr.text, full.text, shortr.len));
    CHECK_EQ_I64(shortr.n_ctx, n + 5);
    CHECK(!memcmp(shortr.ctx, full.ctx, (size_t)(n + 5) * sizeof(llem_token)));
    runner_free(r);
}

// A long-running task A (end-of-text forbidden) keeps its slot busy; B shares A's prompt
// prefix and is forked from A's cells; cancelling A frees its cells but not B's.
static void test_fork_and_cancel(void)
{
    static struct rt_result a_res, b_res, b_cold;
    llem_token pa[64], pb[64];
    int32_t na = tokenize("Once upon a time, there was a big red dog. The dog", pa, 64);
    memcpy(pb, pa, (size_t)na * sizeof *pb);
    int32_t nb = na + tokenize(" liked to run", pb + na, 64 - na) - 1;
    memmove(pb + na, pb + na + 1, (size_t)(nb - na) * sizeof *pb); // drop the second BOS
    struct runner *r = new_runner(2, 4);
    struct llem_errbuf eb = {0};
    struct runner_task_params tp = rt_greedy(pa, na, 1000000);
    tp.filter = rt_no_eog;
    tp.filter_user = g_m.v;
    tp.want_context = false;
    struct runner_task *a;
    CHECK_OK(runner_submit(r, &tp, &a, &eb), &eb);
    struct runner_event ev;
    CHECK(runner_task_next(a, &ev, -1)); // A's prompt is in the cache once it produced text
    CHECK_EQ_I64(ev.kind, RUNNER_EV_PIECE);
    runner_event_clear(&ev);
    struct runner_task_params tb = rt_greedy(pb, nb, 12);
    tb.filter = rt_no_eog;
    tb.filter_user = g_m.v;
    CHECK_OK(rt_run(r, &tb, &b_res), &eb);
    struct runner_status st;
    runner_status(r, &st);
    CHECK_EQ_I64(st.prefix_forks, 1);
    CHECK(b_res.st.prompt_cached >= na);
    CHECK_EQ_I64(st.n_busy, 1); // A still runs
    runner_task_cancel(a);
    rt_collect(a, &a_res);
    runner_task_release(a);
    CHECK_EQ_I64(a_res.kind, RUNNER_EV_ERROR);
    CHECK_EQ_I64(a_res.err, LLEM_ECANCELED);
    runner_status(r, &st);
    CHECK_EQ_I64(st.n_busy, 0);
    // Only B's cells remain: its prompt and the generated tokens that were fed back (all but
    // the last).
    CHECK_EQ_I64(st.kv_cells_used, nb + 12 - 1);
    // B forked from a busy slot gives what it gives alone.
    struct runner *r2 = new_runner(1, 4);
    CHECK_OK(rt_run(r2, &tb, &b_cold), &eb);
    CHECK_EQ_STR(b_res.text, b_cold.text);
    runner_free(r2);
    runner_free(r);
}

static void test_queue_full(void)
{
    llem_token p[16];
    int32_t n = tokenize("Once", p, 16);
    struct runner *r = new_runner(1, 2);
    struct llem_errbuf eb = {0};
    struct runner_task *t[4] = {0};
    struct runner_task_params tp = rt_greedy(p, n, 3);
    runner_hold(r, true);
    // one slot + a queue of two: the fourth is refused
    for (int i = 0; i < 3; i++) {
        CHECK_OK(runner_submit(r, &tp, &t[i], &eb), &eb);
    }
    CHECK_EQ_I64(runner_submit(r, &tp, &t[3], &eb), LLEM_EBUSY);
    CHECK(t[3] == NULL);
    struct runner_status st;
    runner_status(r, &st);
    CHECK_EQ_I64(st.n_queued, 3);
    runner_task_cancel(t[1]); // a queued task can be cancelled too
    runner_hold(r, false);
    static struct rt_result res[3];
    for (int i = 0; i < 3; i++) {
        rt_collect(t[i], &res[i]);
        runner_task_release(t[i]);
    }
    CHECK_EQ_I64(res[0].kind, RUNNER_EV_DONE);
    CHECK_EQ_I64(res[1].kind, RUNNER_EV_ERROR);
    CHECK_EQ_I64(res[1].err, LLEM_ECANCELED);
    CHECK_EQ_I64(res[2].kind, RUNNER_EV_DONE);
    CHECK_EQ_STR(res[0].text, res[2].text);
    runner_free(r);
}

static void test_bad_submit(void)
{
    struct runner *r = new_runner(1, 1);
    struct llem_errbuf eb = {0};
    struct runner_task *t;
    llem_token p[300] = {1};
    struct runner_task_params tp = rt_greedy(p, 0, 3);
    CHECK_EQ_I64(runner_submit(r, &tp, &t, &eb), LLEM_EINVAL); // empty
    tp.n_prompt = 300;
    CHECK_EQ_I64(runner_submit(r, &tp, &t, &eb), LLEM_EINVAL); // longer than n_ctx 256
    p[0] = -5;
    tp.n_prompt = 1;
    CHECK_EQ_I64(runner_submit(r, &tp, &t, &eb), LLEM_EINVAL); // bad token
    p[0] = 1;
    tp.sampling.top_p = -1;
    CHECK_EQ_I64(runner_submit(r, &tp, &t, &eb), LLEM_EINVAL); // bad sampling
    struct runner_params rp = runner_params_default();
    rp.n_parallel = 65;
    struct runner *bad;
    CHECK_EQ_I64(runner_new(g_m.m, g_m.v, &rp, &bad, &eb), LLEM_EINVAL);
    runner_free(r);
}

// Tasks still queued or running when the runner goes end with ECANCELED.
static void test_free_with_tasks(void)
{
    llem_token p[16];
    int32_t n = tokenize("Once", p, 16);
    struct runner *r = new_runner(1, 4);
    struct llem_errbuf eb = {0};
    struct runner_task_params tp = rt_greedy(p, n, 1000000);
    tp.filter = rt_no_eog;
    tp.filter_user = g_m.v;
    struct runner_task *t[2];
    CHECK_OK(runner_submit(r, &tp, &t[0], &eb), &eb);
    CHECK_OK(runner_submit(r, &tp, &t[1], &eb), &eb);
    runner_free(r);
    static struct rt_result res;
    for (int i = 0; i < 2; i++) {
        rt_collect(t[i], &res);
        CHECK_EQ_I64(res.kind, RUNNER_EV_ERROR);
        CHECK_EQ_I64(res.err, LLEM_ECANCELED);
        runner_task_release(t[i]);
    }
}

int main(void)
{
    rt_open(&g_m, "models/stories260K.gguf");
    RUN_TEST(test_prefix_reuse);
    RUN_TEST(test_stop_and_num_predict);
    RUN_TEST(test_fork_and_cancel);
    RUN_TEST(test_queue_full);
    RUN_TEST(test_bad_submit);
    RUN_TEST(test_free_with_tasks);
    rt_close(&g_m);
    return TEST_EXIT();
}
