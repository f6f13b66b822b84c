// tests/unit/sched_basic.c: the scheduler on the shared tiny models (skipped without
// ../shared): load on demand and reuse, a smaller num_ctx reusing the loaded model and a larger
// one reloading it (waiting for the current user), keep_alive 0 and expiry, the loaded-model
// cap evicting the least recently used idle model, the memory budget (evict idle, then refuse),
// the waiting-queue bound, environment parsing, and a generation through a lease.
#include <pthread.h>
#include <unistd.h>

#include "sched/sched.h"
#include "unit/runner_test.h"

static char g_a[1024], g_b[1024], g_c[1024];

static struct sched *new_sched(struct sched_params p)
{
    struct sched *s = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(sched_new(&p, &s, &eb), &eb);
    if (!s) {
        exit(1);
    }
    return s;
}

static struct sched_params small_params(void)
{
    struct sched_params p = sched_params_default();
    p.num_parallel = 2;
    p.num_ctx = 256;
    p.n_batch = 64;
    p.n_threads = 1;
    return p;
}

static enum llem_err acquire(struct sched *s, const char *model, int32_t num_ctx,
                             struct sched_lease *l)
{
    struct sched_request rq = {.model = model, .num_ctx = num_ctx};
    struct llem_errbuf eb = {0};
    enum llem_err rc = sched_acquire(s, &rq, l, &eb);
    if (rc != LLEM_OK) {
        fprintf(stderr, "acquire %s: %s\n", model, eb.msg);
    }
    return rc;
}

static void test_load_reuse_generate(void)
{
    struct sched *s = new_sched(small_params());
    struct sched_lease l1, l2;
    CHECK_OK(acquire(s, g_a, 0, &l1), &(struct llem_errbuf){0});
    CHECK(l1.load_ns > 0);
    CHECK_EQ_I64(l1.n_ctx, 256);
    CHECK_OK(acquire(s, g_a, 0, &l2), &(struct llem_errbuf){0});
    CHECK(l2.runner == l1.runner);
    CHECK_EQ_I64(l2.load_ns, 0);
    struct sched_model_info mi[4];
    CHECK_EQ_I64(sched_list(s, mi, 4), 1);
    CHECK_EQ_STR(mi[0].name, g_a);
    CHECK_EQ_I64(mi[0].refs, 2);
    CHECK_EQ_I64(mi[0].context_length, 256);
    CHECK_EQ_STR(mi[0].processor, "100% CPU");
    CHECK(mi[0].size >= mi[0].weight_bytes + mi[0].kv_bytes && mi[0].kv_bytes > 0);
    CHECK(mi[0].expires_at_unix_ns > 0);
    // generate through the lease
    llem_token p[8];
    size_t n = 0;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_encode(l1.vocab, "Once upon", 9, true, false, p, 8, &n, &eb), &eb);
    struct runner_task_params tp = rt_greedy(p, (int32_t)n, 8);
    static struct rt_result res;
    CHECK_OK(rt_run(l1.runner, &tp, &res), &eb);
    CHECK_EQ_I64(res.st.eval_count, 8);
    sched_release(s, &l1);
    sched_release(s, &l2);
    CHECK_EQ_I64(sched_list(s, mi, 4), 1); // kept for keep_alive (5m)
    CHECK_EQ_I64(mi[0].refs, 0);
    struct sched_stats st;
    sched_stats(s, &st);
    CHECK_EQ_I64(st.loads, 1);
    CHECK_EQ_I64(st.n_loaded, 1);
    CHECK_EQ_I64(acquire(s, "/nonexistent/model.gguf", 0, &l1), LLEM_ENOTFOUND);
    CHECK_EQ_I64(sched_unload(s, g_b, &eb), LLEM_ENOTFOUND);
    CHECK_OK(sched_unload(s, g_a, &eb), &eb);
    CHECK_EQ_I64(sched_list(s, mi, 4), 0);
    sched_free(s);
}

struct bg_acquire {
    struct sched *s;
    const char *model;
    int32_t num_ctx;
    struct sched_lease l;
    enum llem_err rc;
};

static void *bg_main(void *arg)
{
    struct bg_acquire *b = arg;
    b->rc = acquire(b->s, b->model, b->num_ctx, &b->l);
    return NULL;
}

static void wait_waiting(struct sched *s, int32_t n)
{
    struct sched_stats st;
    for (int i = 0; i < 10000; i++) { // up to 10 s: the waiter only has to reach its wait
        sched_stats(s, &st);
        if (st.n_waiting == n) {
            return;
        }
        usleep(1000);
    }
    CHECK_EQ_I64(st.n_waiting, n);
}

static void test_num_ctx(void)
{
    struct sched_params p = small_params();
    p.max_queue = 1;
    struct sched *s = new_sched(p);
    struct sched_lease l;
    CHECK_OK(acquire(s, g_b, 512, &l), &(struct llem_errbuf){0});
    CHECK_EQ_I64(l.n_ctx, 512);
    struct runner *first = l.runner;
    sched_release(s, &l);
    // smaller: reused as is
    CHECK_OK(acquire(s, g_b, 256, &l), &(struct llem_errbuf){0});
    CHECK(l.runner == first);
    CHECK_EQ_I64(l.n_ctx, 512);
    CHECK_EQ_I64(l.load_ns, 0);
    // larger while in use: the other request waits for the release, then reloads
    struct bg_acquire bg = {.s = s, .model = g_b, .num_ctx = 1024};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, bg_main, &bg) == 0);
    wait_waiting(s, 1);
    // the waiting queue (max_queue 1) is full now
    struct sched_lease l3;
    CHECK_EQ_I64(acquire(s, g_a, 0, &l3), LLEM_EBUSY);
    sched_release(s, &l);
    pthread_join(th, NULL);
    CHECK_OK(bg.rc, &(struct llem_errbuf){0});
    CHECK_EQ_I64(bg.l.n_ctx, 1024);
    CHECK(bg.l.load_ns > 0);
    struct sched_stats st;
    sched_stats(s, &st);
    CHECK_EQ_I64(st.loads, 2);
    CHECK_EQ_I64(st.unloads, 1);
    CHECK_EQ_I64(st.refused_busy, 1);
    sched_release(s, &bg.l);
    sched_free(s);
}

static void test_keep_alive(void)
{
    struct sched *s = new_sched(small_params());
    struct sched_request rq = {.model = g_a, .has_keep_alive = true, .keep_alive_ns = 0};
    struct sched_lease l;
    struct llem_errbuf eb = {0};
    CHECK_OK(sched_acquire(s, &rq, &l, &eb), &eb);
    sched_release(s, &l);
    CHECK_EQ_I64(sched_list(s, NULL, 0), 0); // keep_alive 0: gone when the request ends
    rq.keep_alive_ns = -1;
    CHECK_OK(sched_acquire(s, &rq, &l, &eb), &eb);
    sched_release(s, &l);
    struct sched_model_info mi;
    CHECK_EQ_I64(sched_list(s, &mi, 1), 1); // negative: forever
    CHECK_EQ_I64(mi.expires_at_unix_ns, 0);
    rq.keep_alive_ns = 20 * 1000000LL; // 20 ms: the reaper unloads it
    CHECK_OK(sched_acquire(s, &rq, &l, &eb), &eb);
    sched_release(s, &l);
    int i = 0;
    while (sched_list(s, NULL, 0) != 0 && i++ < 1000) {
        usleep(10000);
    }
    CHECK_EQ_I64(sched_list(s, NULL, 0), 0);
    sched_free(s);
}

static void test_max_loaded(void)
{
    struct sched_params p = small_params();
    p.max_loaded = 2;
    struct sched *s = new_sched(p);
    struct sched_lease la, lb, lc;
    CHECK_OK(acquire(s, g_a, 0, &la), &(struct llem_errbuf){0});
    CHECK_OK(acquire(s, g_b, 0, &lb), &(struct llem_errbuf){0});
    sched_release(s, &la);
    // C: A is the idle one, so A goes (B is still in use)
    CHECK_OK(acquire(s, g_c, 0, &lc), &(struct llem_errbuf){0});
    struct sched_model_info mi[4];
    CHECK_EQ_I64(sched_list(s, mi, 4), 2);
    CHECK_EQ_STR(mi[0].name, g_c); // most recently used first
    CHECK_EQ_STR(mi[1].name, g_b);
    struct sched_stats st;
    sched_stats(s, &st);
    CHECK_EQ_I64(st.evictions, 1);
    sched_release(s, &lb);
    sched_release(s, &lc);
    sched_free(s);
}

static void test_memory_budget(void)
{
    // sizes of A and B as the planner estimates them
    struct sched *s = new_sched(small_params());
    struct sched_lease la, lb;
    struct sched_model_info mi[2];
    CHECK_OK(acquire(s, g_a, 0, &la), &(struct llem_errbuf){0});
    CHECK_OK(acquire(s, g_b, 0, &lb), &(struct llem_errbuf){0});
    CHECK_EQ_I64(sched_list(s, mi, 2), 2);
    uint64_t size_b = mi[0].size, size_a = mi[1].size;
    sched_release(s, &la);
    sched_release(s, &lb);
    sched_free(s);

    struct sched_params p = small_params();
    p.mem_budget = size_a + size_b - 1; // not both
    s = new_sched(p);
    CHECK_OK(acquire(s, g_a, 0, &la), &(struct llem_errbuf){0});
    sched_release(s, &la);
    CHECK_OK(acquire(s, g_b, 0, &lb), &(struct llem_errbuf){0}); // evicts idle A
    CHECK_EQ_I64(sched_list(s, mi, 2), 1);
    CHECK_EQ_STR(mi[0].name, g_b);
    // A again while B is busy: nothing idle to evict -> refused with a clear message
    struct sched_request rq = {.model = g_a};
    struct llem_errbuf eb = {0};
    CHECK_EQ_I64(sched_acquire(s, &rq, &la, &eb), LLEM_ENOMEM);
    CHECK(strstr(eb.msg, "MiB") && strstr(eb.msg, "available"));
    fprintf(stderr, "refusal: %s\n", eb.msg);
    CHECK_EQ_I64(sched_list(s, mi, 2), 1); // B untouched
    struct sched_stats st;
    sched_stats(s, &st);
    CHECK_EQ_I64(st.evictions, 1);
    CHECK_EQ_I64(st.refused_mem, 1);
    sched_release(s, &lb);
    sched_free(s);
}

static void test_env(void)
{
    struct sched_params p;
    struct llem_errbuf eb = {0};
    setenv("LLEM_KEEP_ALIVE", "10m", 1);
    setenv("LLEM_NUM_PARALLEL", "8", 1);
    setenv("LLEM_MAX_QUEUE", "3", 1);
    setenv("LLEM_MAX_LOADED_MODELS", "0", 1);
    CHECK_OK(sched_params_from_env(&p, &eb), &eb);
    CHECK_EQ_I64(p.keep_alive_ns, 600LL * 1000000000LL);
    CHECK_EQ_I64(p.num_parallel, 8);
    CHECK_EQ_I64(p.max_queue, 3);
    CHECK_EQ_I64(p.max_loaded, 3);
    setenv("LLEM_KEEP_ALIVE", "-1", 1);
    CHECK_OK(sched_params_from_env(&p, &eb), &eb);
    CHECK(p.keep_alive_ns < 0);
    setenv("LLEM_KEEP_ALIVE", "300", 1);
    CHECK_OK(sched_params_from_env(&p, &eb), &eb);
    CHECK_EQ_I64(p.keep_alive_ns, 300LL * 1000000000LL);
    setenv("LLEM_KEEP_ALIVE", "5 minutes", 1);
    CHECK_EQ_I64(sched_params_from_env(&p, &eb), LLEM_EINVAL);
    CHECK(strstr(eb.msg, "LLEM_KEEP_ALIVE") != NULL);
    unsetenv("LLEM_KEEP_ALIVE");
    setenv("LLEM_NUM_PARALLEL", "65", 1);
    CHECK_EQ_I64(sched_params_from_env(&p, &eb), LLEM_EINVAL);
    setenv("LLEM_NUM_PARALLEL", "4x", 1);
    CHECK_EQ_I64(sched_params_from_env(&p, &eb), LLEM_EINVAL);
    unsetenv("LLEM_NUM_PARALLEL");
    unsetenv("LLEM_MAX_QUEUE");
    unsetenv("LLEM_MAX_LOADED_MODELS");
    CHECK_OK(sched_params_from_env(&p, &eb), &eb);
    CHECK_EQ_I64(p.num_parallel, 4);
    CHECK_EQ_I64(p.max_queue, 512);
    CHECK_EQ_I64(p.keep_alive_ns, SCHED_KEEP_ALIVE_DEFAULT_NS);
}

int main(void)
{
    test_shared_path(g_a, sizeof g_a, "models/stories260K.gguf");
    test_shared_path(g_b, sizeof g_b, "models/llama-tiny-Q8_0.gguf");
    test_shared_path(g_c, sizeof g_c, "models/qwen3-tiny-F16.gguf");
    RUN_TEST(test_load_reuse_generate);
    RUN_TEST(test_num_ctx);
    RUN_TEST(test_keep_alive);
    RUN_TEST(test_max_loaded);
    RUN_TEST(test_memory_budget);
    RUN_TEST(test_env);
    return TEST_EXIT();
}
