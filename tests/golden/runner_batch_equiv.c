// tests/golden/runner_batch_equiv.c: issue 4's batching acceptance. Greedy output of N
// sequences decoded together by the runner (N = 1, 4, 16, 64, all admitted in the same step,
// prompts of different lengths so prompt chunks and decode tokens share batches of 64 tokens)
// is token-for-token the output of each prompt decoded alone on a private one-sequence
// context. Models: stories260K and the synthetic llama-tiny-Q8_0 and qwen3-tiny-F16.
#include "unit/runner_test.h"

enum { N_MAX = 64, N_GEN = 24, P_MAX = 48 };

static void equiv_model(const char *rel)
{
    struct rt_model o;
    rt_open(&o, rel);
    llem_token(*prompts)[P_MAX] = llem_calloc(N_MAX, sizeof *prompts);
    int32_t n_prompt[N_MAX];
    llem_token(*ref)[N_GEN] = llem_calloc(N_MAX, sizeof *ref);
    int32_t n_ref[N_MAX];
    struct rt_result *res = llem_calloc(N_MAX, sizeof *res);
    CHECK(prompts && ref && res);
    // Reference: each prompt alone.
    for (int i = 0; i < N_MAX; i++) {
        n_prompt[i] = rt_prompt(&o, i, 3 + (i * 7) % (P_MAX - 3), prompts[i]);
        n_ref[i] = rt_reference(&o, 128, prompts[i], n_prompt[i], N_GEN, false, ref[i]);
        CHECK(n_ref[i] >= 0);
    }
    struct runner_params rp = runner_params_default();
    rp.n_ctx = 128;
    rp.n_parallel = N_MAX;
    rp.n_batch = 64;
    struct runner *r;
    struct llem_errbuf eb = {0};
    CHECK_OK(runner_new(o.m, o.v, &rp, &r, &eb), &eb);
    static const int ns[] = {1, 4, 16, 64};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int n = ns[k];
        struct runner_task *t[N_MAX];
        runner_hold(r, true);
        for (int i = 0; i < n; i++) {
            // Offset the prompt set per round so no prompt is fully cached from a prior round.
            int p = (i + (int)k * 5) % N_MAX;
            struct runner_task_params tp = rt_greedy(prompts[p], n_prompt[p], N_GEN);
            CHECK_OK(runner_submit(r, &tp, &t[i], &eb), &eb);
        }
        runner_hold(r, false);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            int p = (i + (int)k * 5) % N_MAX;
            rt_collect(t[i], &res[i]);
            runner_task_release(t[i]);
            CHECK_EQ_I64(res[i].kind, RUNNER_EV_DONE);
            int32_t got = res[i].n_ctx - n_prompt[p];
            bool same = got == n_ref[p] &&
                        !memcmp(res[i].ctx + n_prompt[p], ref[p], (size_t)got * sizeof(llem_token));
            if (!same && bad++ < 3) {
                fprintf(stderr, "%s N=%d seq %d (prompt %d, %d tokens): %d tokens vs %d alone\n",
                        rel, n, i, p, n_prompt[p], got, n_ref[p]);
            }
        }
        CHECK_EQ_I64(bad, 0);
        struct runner_status st;
        runner_status(r, &st);
        fprintf(stderr, "%s N=%d: identical %d/%d, peak %d sequences in one step\n", rel, n,
                n - bad, n, st.peak_step_seqs);
        CHECK(st.peak_step_seqs >= LLEM_MIN(n, 4)); // they really shared steps
    }
    runner_free(r);
    llem_free(prompts);
    llem_free(ref);
    llem_free(res);
    rt_close(&o);
}

static void test_stories(void) { equiv_model("models/stories260K.gguf"); }
static void test_llama_q8(void) { equiv_model("models/llama-tiny-Q8_0.gguf"); }
static void test_qwen3_f16(void) { equiv_model("models/qwen3-tiny-F16.gguf"); }

int main(void)
{
    RUN_TEST(test_stories);
    RUN_TEST(test_llama_q8);
    RUN_TEST(test_qwen3_f16);
    return TEST_EXIT();
}
