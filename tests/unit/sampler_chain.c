// tests/unit/sampler_chain.c: the sampling chain (greedy, top-k/p, min-p, typical, penalties,
// seeds, filters) and stop-sequence scanning.
#include "check.h"
#include "sampler/sampler.h"

static struct sampler *make(struct sampler_params p, int n_vocab)
{
    struct sampler *s = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(sampler_new(&s, &p, n_vocab, 128, &eb), &eb);
    return s;
}

static int32_t draw(struct sampler *s, const float *logits)
{
    int32_t t = -1;
    struct llem_errbuf eb = {0};
    CHECK_OK(sampler_sample(s, logits, &t, &eb), &eb);
    return t;
}

static void test_greedy(void)
{
    struct sampler_params p = sampler_params_default();
    p.temperature = 0;
    struct sampler *s = make(p, 5);
    float logits[5] = {1, 3, 3, -2, 0};
    CHECK_EQ_I64(draw(s, logits), 1); // lowest id on ties
    sampler_accept(s, 1);
    sampler_accept(s, 1);
    CHECK_EQ_I64(draw(s, logits), 1); // greedy ignores penalties
    sampler_free(s);
}

static void test_seed_reproducible(void)
{
    struct sampler_params p = sampler_params_default();
    p.seed = 42;
    p.top_k = 0;
    p.top_p = 1;
    p.repeat_penalty = 1;
    float logits[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    struct sampler *a = make(p, 8), *b = make(p, 8);
    p.seed = 43;
    struct sampler *c = make(p, 8);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 64; i++) {
        int32_t x = draw(a, logits), y = draw(b, logits), z = draw(c, logits);
        same_ab &= x == y;
        same_ac &= x == z;
    }
    CHECK(same_ab);
    CHECK(!same_ac);
    sampler_free(a);
    sampler_free(b);
    sampler_free(c);
}

static void test_distribution(void)
{
    struct sampler_params p = sampler_params_default();
    p.seed = 7;
    p.top_k = 0;
    p.top_p = 1;
    p.temperature = 1;
    p.repeat_penalty = 1;
    struct sampler *s = make(p, 3);
    float logits[3] = {logf(0.5f), logf(0.25f), logf(0.25f)};
    int counts[3] = {0};
    for (int i = 0; i < 20000; i++) {
        counts[draw(s, logits)]++;
    }
    CHECK_NEAR(counts[0] / 20000.0, 0.5, 0.02);
    CHECK_NEAR(counts[1] / 20000.0, 0.25, 0.02);
    sampler_free(s);
    // temperature 0.5 sharpens: p ~ (0.5^2, 0.25^2, 0.25^2) normalised = (2/3, 1/6, 1/6)
    p.temperature = 0.5f;
    s = make(p, 3);
    counts[0] = counts[1] = counts[2] = 0;
    for (int i = 0; i < 20000; i++) {
        counts[draw(s, logits)]++;
    }
    CHECK_NEAR(counts[0] / 20000.0, 2.0 / 3.0, 0.02);
    sampler_free(s);
}

static void test_truncation(void)
{
    struct sampler_params p = sampler_params_default();
    p.seed = 1;
    p.temperature = 1;
    p.repeat_penalty = 1;
    float logits[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    int seen[4];
    // top_p 0.7: {0.5, 0.3} reach 0.8 >= 0.7
    p.top_k = 0;
    p.top_p = 0.7f;
    struct sampler *s = make(p, 4);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 2000; i++) {
        seen[draw(s, logits)]++;
    }
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    sampler_free(s);
    // top_k 1 is greedy
    p.top_p = 1;
    p.top_k = 1;
    s = make(p, 4);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ_I64(draw(s, logits), 0);
    }
    sampler_free(s);
    // min_p 0.2: keep p >= 0.1 -> ids 0, 1, 2
    p.top_k = 0;
    p.min_p = 0.2f;
    s = make(p, 4);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 4000; i++) {
        seen[draw(s, logits)]++;
    }
    CHECK(seen[2] > 0 && seen[3] == 0);
    sampler_free(s);
    // typical_p 0.25 keeps the token closest to the entropy first
    p.min_p = 0;
    p.typical_p = 0.25f;
    s = make(p, 4);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 2000; i++) {
        seen[draw(s, logits)]++;
    }
    // entropy ~1.14 nats; surprises: 0.69, 1.20, 1.90, 3.00 -> id 1 is the most typical
    CHECK(seen[1] == 2000);
    sampler_free(s);
}

static void test_penalties(void)
{
    struct sampler_params p = sampler_params_default();
    p.top_k = 1;
    p.temperature = 1;
    float logits[3] = {2.0f, 1.9f, -1.0f};
    struct sampler *s = make(p, 3);
    CHECK_EQ_I64(draw(s, logits), 0);
    sampler_accept(s, 0);
    CHECK_EQ_I64(draw(s, logits), 1); // 2.0 / 1.1 = 1.82 < 1.9
    sampler_free(s);
    p.repeat_penalty = 1;
    p.presence_penalty = 0.05f;
    p.frequency_penalty = 0.03f;
    s = make(p, 3);
    sampler_accept(s, 0);
    CHECK_EQ_I64(draw(s, logits), 0); // 2.0 - 0.08 = 1.92 > 1.9
    sampler_accept(s, 0);
    CHECK_EQ_I64(draw(s, logits), 1); // 2.0 - 0.11 = 1.89 < 1.9
    sampler_free(s);
    // the window forgets: repeat_last_n 1
    p.presence_penalty = p.frequency_penalty = 0;
    p.repeat_penalty = 1.1f;
    p.repeat_last_n = 1;
    s = make(p, 3);
    sampler_accept(s, 0);
    sampler_accept(s, 2);
    CHECK_EQ_I64(draw(s, logits), 0);
    sampler_free(s);
}

static bool ban_zero(void *user, float *logits, const int32_t *ids, int32_t n)
{
    (void)user;
    (void)ids;
    (void)n;
    logits[0] = -INFINITY;
    return true;
}

static bool ban_all(void *user, float *logits, const int32_t *ids, int32_t n)
{
    (void)user;
    (void)ids;
    for (int32_t i = 0; i < n; i++) {
        logits[i] = -INFINITY;
    }
    return true;
}

static void test_filter(void)
{
    struct sampler_params p = sampler_params_default();
    p.temperature = 0;
    struct sampler *s = make(p, 3);
    float logits[3] = {5, 1, 2};
    sampler_set_filter(s, ban_zero, NULL);
    CHECK_EQ_I64(draw(s, logits), 2);
    sampler_set_filter(s, ban_all, NULL);
    int32_t t;
    struct llem_errbuf eb = {0};
    CHECK_EQ_I64(sampler_sample(s, logits, &t, &eb), LLEM_EINVAL);
    sampler_free(s);
}

static void test_invalid(void)
{
    struct sampler_params p = sampler_params_default();
    struct sampler *s = NULL;
    struct llem_errbuf eb = {0};
    p.top_p = -1;
    CHECK_EQ_I64(sampler_new(&s, &p, 10, 10, &eb), LLEM_EINVAL);
    p = sampler_params_default();
    p.temperature = NAN;
    CHECK_EQ_I64(sampler_new(&s, &p, 10, 10, &eb), LLEM_EINVAL);
    p = sampler_params_default();
    CHECK_EQ_I64(sampler_new(&s, &p, 0, 10, &eb), LLEM_EINVAL);
    CHECK(s == NULL);
}

static void test_stop_scan(void)
{
    const char *stops[] = {"world", "\n\n"};
    size_t emit;
    const char *t1 = "hello wor";
    CHECK(!sampler_stop_scan(stops, 2, t1, strlen(t1), &emit));
    CHECK_EQ_I64(emit, 6);
    const char *t2 = "hello world!";
    CHECK(sampler_stop_scan(stops, 2, t2, strlen(t2), &emit));
    CHECK_EQ_I64(emit, 6);
    const char *t3 = "line\n";
    CHECK(!sampler_stop_scan(stops, 2, t3, strlen(t3), &emit));
    CHECK_EQ_I64(emit, 4);
    const char *t4 = "a\n\nb world";
    CHECK(sampler_stop_scan(stops, 2, t4, strlen(t4), &emit));
    CHECK_EQ_I64(emit, 1); // the earliest stop wins
    const char *t5 = "nothing here";
    CHECK(!sampler_stop_scan(stops, 2, t5, strlen(t5), &emit));
    CHECK_EQ_I64(emit, strlen(t5));
    CHECK(!sampler_stop_scan(NULL, 0, t5, strlen(t5), &emit));
}

int main(void)
{
    RUN_TEST(test_greedy);
    RUN_TEST(test_seed_reproducible);
    RUN_TEST(test_distribution);
    RUN_TEST(test_truncation);
    RUN_TEST(test_penalties);
    RUN_TEST(test_filter);
    RUN_TEST(test_invalid);
    RUN_TEST(test_stop_scan);
    return TEST_EXIT();
}
