// tests/golden/runner_batch_equiv.c: issue 4's batching acceptance. Greedy output of N
// sequences decoded together by the runner (N = 1, 4, 16, 64, all admitted in the same step,
// prompts of different lengths so prompt chunks and decode tokens share batches of 64 tokens)
// is token-for-token the output of each prompt decoded alone on a private one-sequence
// context. Models: stories260K and the synthetic llama-tiny-Q8_0 and qwen3-tiny-F16. Also the
// softmax path's transposed V cache with several sequences in a batch.
#include <math.h>

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

// Without flash attention the V cache is stored transposed (kv_cache_params.v_trans), each
// batch scattering its V elements to their cells. Four sequences' prompts interleaved in one
// batch, then a decode token each: every row's logits match flash attention's (the two paths
// sum in different orders, so within a tolerance; and the softmax path is not batch-invariant
// bit for bit, which is why the equivalence above runs on flash attention).
// The flash run keeps the n output rows of the last decode in want; the softmax run compares
// its rows with them, widening *max_diff and (when given) *max_abs, the reference's magnitude.
static void keep_or_compare(const struct model_ctx *c, int n, int32_t n_vocab, float *want,
                            bool keep, double *max_diff, double *max_abs)
{
    for (int r = 0; r < n; r++) {
        const float *l = model_ctx_logits(c, r);
        float *w = want + (size_t)r * (size_t)n_vocab;
        for (int32_t j = 0; l && j < n_vocab; j++) {
            if (keep) {
                w[j] = l[j];
                continue;
            }
            *max_diff = fmax(*max_diff, fabs((double)l[j] - (double)w[j]));
            if (max_abs) {
                *max_abs = fmax(*max_abs, fabs((double)w[j]));
            }
        }
    }
}

static void test_no_flash_transposed_v(void)
{
    enum { NS = 4, PL = 11, NT = NS * PL };
    struct rt_model o;
    rt_open(&o, "models/stories260K.gguf");
    llem_token prompt[NS][P_MAX], tok[NT];
    llem_pos pos[NT];
    llem_seq seq[NT];
    for (int s = 0; s < NS; s++) {
        CHECK_EQ_I64(rt_prompt(&o, s, PL, prompt[s]), PL);
    }
    for (int i = 0; i < NT; i++) { // token i: sequence i % NS at position i / NS
        seq[i] = i % NS;
        pos[i] = i / NS;
        tok[i] = prompt[i % NS][i / NS];
    }
    const int32_t n_vocab = tok_n_vocab(o.v);
    // Rows 0..NT-1: the prompt batch; NT..NT+NS-1: the decode tokens.
    float *want = llem_malloc((size_t)(NT + NS) * (size_t)n_vocab * sizeof(float));
    CHECK(want != NULL);
    double max_diff = 0, max_abs = 0;
    for (int fa = 1; fa >= 0; fa--) {
        struct model_ctx_params cp = model_ctx_default_params();
        cp.n_ctx = 32;
        cp.n_batch = NT;
        cp.n_seq_max = NS;
        cp.flash_attn = fa;
        struct model_ctx *c;
        struct llem_errbuf eb = {0};
        CHECK_OK(model_ctx_new(o.m, &cp, &c, &eb), &eb);
        CHECK_EQ_I64(model_ctx_kv(c)->p.v_trans, !fa);
        struct ubatch ub = {.n_tokens = NT, .tokens = tok, .pos = pos, .seq = seq};
        CHECK_OK(model_ctx_decode(c, &ub, &eb), &eb);
        keep_or_compare(c, NT, n_vocab, want, fa, &max_diff, &max_abs);
        // Then one token per sequence at position PL.
        llem_token t2[NS];
        llem_pos p2[NS];
        llem_seq s2[NS];
        for (int s = 0; s < NS; s++) {
            t2[s] = prompt[(s + 1) % NS][1];
            p2[s] = PL;
            s2[s] = s;
        }
        struct ubatch ub2 = {.n_tokens = NS, .tokens = t2, .pos = p2, .seq = s2};
        CHECK_OK(model_ctx_decode(c, &ub2, &eb), &eb);
        keep_or_compare(c, NS, n_vocab, want + (size_t)NT * (size_t)n_vocab, fa, &max_diff, NULL);
        model_ctx_free(c);
    }
    fprintf(stderr, "stories260K, 4 sequences: softmax path (transposed V) vs flash attention: "
            "max |logit diff| %.3g (max |logit| %.3g)\n", max_diff, max_abs);
    // 2.5e-4 of the largest logit here, as before V was transposed (flash attention's vector
    // exp); a V element at a wrong cell moves logits by whole units.
    CHECK(max_abs > 1.0);
    CHECK(max_diff <= 1e-3 * max_abs);
    llem_free(want);
    rt_close(&o);
}

int main(void)
{
    RUN_TEST(test_stories);
    RUN_TEST(test_llama_q8);
    RUN_TEST(test_qwen3_f16);
    RUN_TEST(test_no_flash_transposed_v);
    return TEST_EXIT();
}
