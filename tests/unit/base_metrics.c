// tests/unit/base_metrics.c: registration rules, exact totals from many concurrent threads
// (more than METRICS_MAX_SHARDS alive at once, so the shared overflow shard is exercised, and
// threads that exit so their shards are folded), timer histogram buckets, Prometheus text.
#include <pthread.h>
#include <string.h>

#include "base/metrics.h"
#include "check.h"

static void test_register(void)
{
    int a, b, c;
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "llem_test_bytes_total", "bytes", &a), LLEM_OK);
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "llem_test_bytes_total", "again", &b), LLEM_OK);
    CHECK_EQ_I64(a, b);
    CHECK_EQ_I64(metrics_register(METRIC_TIMER, "llem_test_bytes_total", "", &c), LLEM_EEXIST);
    CHECK_EQ_I64(c, -1);
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "9bad", "", &c), LLEM_EINVAL);
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "", "", &c), LLEM_EINVAL);
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "has space", "", &c), LLEM_EINVAL);
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "x{a=\"1\"", "", &c), LLEM_EINVAL);
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "x{a=\"\n\"}", "", &c), LLEM_EINVAL);
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "llem_ops_total{op=\"add\"}", "ops", &c),
                 LLEM_OK);
    CHECK(c >= 0 && c != a);
    metrics_counter_add(-1, 5); // ignored, no crash
    metrics_timer_record(-1, 5);
    metrics_gauge_set(-1, 5);
    metrics_counter_add(1 << 20, 5);
    CHECK_EQ_I64(metrics_counter_get(-1), 0);
    struct metric_info mi;
    CHECK(metrics_info(0, &mi));
    CHECK_EQ_STR(mi.name, "llem_test_bytes_total");
    CHECK(!metrics_info(metrics_count(), &mi));
}

enum { N_THREADS = METRICS_MAX_SHARDS + 6, N_ITERS = 20000 };

struct mt_ctx {
    int counter, timer, gauge;
    pthread_barrier_t alive; // every thread records while all are alive
};

static void *mt_worker(void *p)
{
    struct mt_ctx *c = p;
    pthread_barrier_wait(&c->alive);
    for (int i = 0; i < N_ITERS; i++) {
        metrics_counter_add(c->counter, 3);
        metrics_timer_record(c->timer, (uint64_t)(i % 1000) + 1);
        metrics_gauge_add(c->gauge, 1);
    }
    pthread_barrier_wait(&c->alive);
    return NULL;
}

static void test_threads(void)
{
    struct mt_ctx c;
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "llem_test_mt_total", "", &c.counter), LLEM_OK);
    CHECK_EQ_I64(metrics_register(METRIC_TIMER, "llem_test_mt_seconds", "", &c.timer), LLEM_OK);
    CHECK_EQ_I64(metrics_register(METRIC_GAUGE, "llem_test_mt_gauge", "", &c.gauge), LLEM_OK);
    pthread_barrier_init(&c.alive, NULL, N_THREADS);
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(pthread_create(&th[i], NULL, mt_worker, &c) == 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&c.alive);
    // The main thread records too (its shard stays live).
    metrics_counter_add(c.counter, 1);
    CHECK_EQ_I64(metrics_counter_get(c.counter), 3ull * N_THREADS * N_ITERS + 1);
    CHECK_EQ_I64(metrics_gauge_get(c.gauge), (int64_t)N_THREADS * N_ITERS);
    struct timer_stats t;
    metrics_timer_get(c.timer, &t);
    CHECK_EQ_I64(t.count, (uint64_t)N_THREADS * N_ITERS);
    CHECK_EQ_I64(t.total_ns, (uint64_t)N_THREADS * (N_ITERS / 1000) * 500500);
    CHECK_EQ_I64(t.max_ns, 1000);
    uint64_t hsum = 0;
    for (int b = 0; b < METRICS_HIST_BUCKETS; b++) {
        hsum += t.hist[b];
    }
    CHECK_EQ_I64(hsum, t.count);
    CHECK_EQ_I64(t.hist[1], (uint64_t)N_THREADS * (N_ITERS / 1000)); // value 1
}

// Every private shard held by a parked thread; two more threads then hammer the shared
// overflow shard, where lost updates would show if its adds were not atomic.
struct overflow_ctx {
    int counter;
    pthread_barrier_t claimed, release;
};

static void *park_worker(void *p)
{
    struct overflow_ctx *c = p;
    metrics_counter_add(c->counter, 1); // claims a shard
    pthread_barrier_wait(&c->claimed);
    pthread_barrier_wait(&c->release);
    return NULL;
}

static void *hammer_worker(void *p)
{
    struct overflow_ctx *c = p;
    pthread_barrier_wait(&c->claimed);
    for (int i = 0; i < 3000000; i++) {
        metrics_counter_add(c->counter, 1);
    }
    pthread_barrier_wait(&c->release);
    return NULL;
}

static void test_overflow_shard(void)
{
    struct overflow_ctx c;
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "llem_test_ovf_total", "", &c.counter), LLEM_OK);
    metrics_counter_add(c.counter, 0); // the main thread holds one shard already
    enum { PARK = METRICS_MAX_SHARDS - 1, ALL = PARK + 2 };
    pthread_barrier_init(&c.claimed, NULL, ALL);
    pthread_barrier_init(&c.release, NULL, ALL);
    pthread_t th[ALL];
    for (int i = 0; i < ALL; i++) {
        CHECK(pthread_create(&th[i], NULL, i < PARK ? park_worker : hammer_worker, &c) == 0);
    }
    for (int i = 0; i < ALL; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&c.claimed);
    pthread_barrier_destroy(&c.release);
    CHECK_EQ_I64(metrics_counter_get(c.counter), PARK + 2 * 3000000);
}

static void test_buckets(void)
{
    CHECK_EQ_I64(metrics_hist_bucket(0), 0);
    CHECK_EQ_I64(metrics_hist_bucket(1), 1);
    CHECK_EQ_I64(metrics_hist_bucket(2), 2);
    CHECK_EQ_I64(metrics_hist_bucket(3), 2);
    CHECK_EQ_I64(metrics_hist_bucket(4), 3);
    CHECK_EQ_I64(metrics_hist_bucket(1023), 10);
    CHECK_EQ_I64(metrics_hist_bucket(1024), 11);
    CHECK_EQ_I64(metrics_hist_bucket(UINT64_MAX), METRICS_HIST_BUCKETS - 1);
    int id;
    CHECK_EQ_I64(metrics_register(METRIC_TIMER, "llem_test_b_seconds", "", &id), LLEM_OK);
    metrics_timer_record(id, 1000);
    metrics_timer_record(id, 3000);
    int64_t t0 = metrics_now_ns();
    int64_t t1 = metrics_timer_since(id, t0);
    CHECK(t1 >= t0);
    metrics_timer_since(id, t1 + 1000000000); // a start in the future records 0
    struct timer_stats t;
    metrics_timer_get(id, &t);
    CHECK_EQ_I64(t.count, 4);
    // 1000 ns -> bucket 10, 3000 -> 12, the future start -> 0, and t1 - t0 wherever it falls
    // (a preempted test thread can make it microseconds)
    uint64_t want[METRICS_HIST_BUCKETS] = {0};
    want[10]++;
    want[12]++;
    want[0]++;
    want[metrics_hist_bucket((uint64_t)(t1 - t0))]++;
    for (int b = 0; b < METRICS_HIST_BUCKETS; b++) {
        CHECK_EQ_I64(t.hist[b], want[b]);
    }
    CHECK(t.max_ns >= 3000);
}

static void test_prometheus(void)
{
    int c1, c2, g, tm;
    metrics_register(METRIC_COUNTER, "llem_p_ops_total{op=\"add\"}", "tensor ops\nrun", &c1);
    metrics_register(METRIC_GAUGE, "llem_p_loaded", "loaded models", &g);
    metrics_register(METRIC_COUNTER, "llem_p_ops_total{op=\"mul\"}", "tensor ops", &c2);
    metrics_register(METRIC_TIMER, "llem_p_op_seconds{op=\"mul\"}", "op time", &tm);
    metrics_counter_add(c1, 2);
    metrics_counter_add(c2, 5);
    metrics_gauge_set(g, -3);
    metrics_timer_record(tm, 1500);       // bucket 11: counted from le=2^12 ns on
    metrics_timer_record(tm, 2000000000); // 2 s
    static char buf[1 << 16];
    size_t n = 0;
    CHECK_EQ_I64(metrics_write_prometheus(buf, sizeof(buf), &n), LLEM_OK);
    CHECK_EQ_I64(strlen(buf), n);
    CHECK(strstr(buf, "# HELP llem_p_ops_total tensor ops run\n# TYPE llem_p_ops_total counter\n"
                      "llem_p_ops_total{op=\"add\"} 2\nllem_p_ops_total{op=\"mul\"} 5\n"));
    CHECK(strstr(buf, "# TYPE llem_p_loaded gauge\nllem_p_loaded -3\n"));
    CHECK(strstr(buf, "# TYPE llem_p_op_seconds histogram\n"));
    CHECK(strstr(buf, "llem_p_op_seconds_bucket{op=\"mul\",le=\"1.024e-06\"} 0\n"));
    CHECK(strstr(buf, "llem_p_op_seconds_bucket{op=\"mul\",le=\"4.096e-06\"} 1\n"));
    CHECK(strstr(buf, "llem_p_op_seconds_bucket{op=\"mul\",le=\"+Inf\"} 2\n"));
    CHECK(strstr(buf, "llem_p_op_seconds_sum{op=\"mul\"} 2.000001500\n"));
    CHECK(strstr(buf, "llem_p_op_seconds_count{op=\"mul\"} 2\n"));
    CHECK(strstr(buf, "llem_p_op_seconds_max_seconds{op=\"mul\"} 2.000000000\n"));
    // One TYPE line per base name.
    const char *first = strstr(buf, "# TYPE llem_p_ops_total");
    CHECK(first && !strstr(first + 1, "# TYPE llem_p_ops_total"));
    // Too small: ELIMIT with the size needed, and a NUL-terminated prefix.
    char small[64];
    size_t need = 0;
    CHECK_EQ_I64(metrics_write_prometheus(small, sizeof(small), &need), LLEM_ELIMIT);
    CHECK_EQ_I64(need, n);
    CHECK(strlen(small) < sizeof(small));
}

static void test_full_table(void)
{
    enum llem_err last = LLEM_OK;
    int id = 0;
    for (int i = 0; i <= METRICS_MAX_GAUGES && last == LLEM_OK; i++) {
        char name[32];
        snprintf(name, sizeof(name), "llem_fill_%d", i);
        last = metrics_register(METRIC_GAUGE, name, "", &id);
    }
    CHECK_EQ_I64(last, LLEM_ELIMIT);
    CHECK_EQ_I64(id, -1);
    metrics_reset_values();
    int c;
    CHECK_EQ_I64(metrics_register(METRIC_COUNTER, "llem_test_mt_total", "", &c), LLEM_OK);
    CHECK_EQ_I64(metrics_counter_get(c), 0);
}

int main(void)
{
    RUN_TEST(test_register);
    RUN_TEST(test_threads);
    RUN_TEST(test_overflow_shard);
    RUN_TEST(test_buckets);
    RUN_TEST(test_prometheus);
    RUN_TEST(test_full_table);
    return TEST_EXIT();
}
