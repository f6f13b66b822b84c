// bench/runner_step.c: aggregate decode throughput of the runner's continuous batching with 1, 4
// and 16 parallel streams (greedy, end-of-text forbidden so every stream generates n_gen
// tokens), plus runner-thread allocations per step while generating (nobody reads the
// channels during the measurement, so only the runner allocates).
// Usage: bench_runner_step MODEL.gguf [n_gen=64] [threads=0 (physical cores)] [n_ctx=512]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/alloc.h"
#include "base/timeutil.h"
#include "runner/runner.h"

static bool no_eog(void *user, float *logits, const int32_t *ids, int32_t n)
{
    const struct tok_vocab *v = user;
    if (!ids) {
        n = tok_n_vocab(v);
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t id = ids ? ids[i] : i;
        if (tok_is_eog(v, id)) {
            logits[id] = -INFINITY;
        }
    }
    return true;
}

static long arg_long(int argc, char **argv, int i, long def)
{
    if (argc <= i) {
        return def;
    }
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v < 0) {
        fprintf(stderr, "bad argument '%s'\n", argv[i]);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [n_gen=64] [threads=0] [n_ctx=512]\n", argv[0]);
        return 2;
    }
    int32_t n_gen = (int32_t)arg_long(argc, argv, 2, 64);
    int n_threads = (int)arg_long(argc, argv, 3, 0);
    int32_t n_ctx = (int32_t)arg_long(argc, argv, 4, 512);
    struct llem_errbuf eb = {0};
    struct backend *be;
    struct model *m;
    struct tok_vocab *v;
    struct backend_params bp = {.n_threads = n_threads};
    if (backend_new("cpu", &bp, &be, &eb) != LLEM_OK ||
        model_load(argv[1], NULL, be, &m, &eb) != LLEM_OK ||
        tok_vocab_load(&v, m->gguf, &eb) != LLEM_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], eb.msg);
        return 1;
    }
    printf("model %s, %d tokens per stream, n_ctx %d per slot\n", argv[1], n_gen, n_ctx);
    printf("%8s %12s %14s %10s %14s\n", "streams", "tokens", "agg tok/s", "steps",
           "allocs/step");
    static const int32_t ns[] = {1, 4, 16};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int32_t n = ns[k];
        struct runner_params rp = runner_params_default();
        rp.n_ctx = n_ctx;
        rp.n_parallel = n;
        struct runner *r;
        if (runner_new(m, v, &rp, &r, &eb) != LLEM_OK) {
            fprintf(stderr, "%s\n", eb.msg);
            return 1;
        }
        struct runner_task *t[16];
        llem_token prompt[8];
        // Warm-up: one short round so buffers have grown.
        for (int round = 0; round < 2; round++) {
            runner_hold(r, true);
            for (int32_t i = 0; i < n; i++) {
                int32_t np = 0;
                if (tok_bos(v) >= 0) {
                    prompt[np++] = tok_bos(v);
                }
                for (int32_t j = 0; j < 4; j++) {
                    prompt[np++] = (llem_token)((i * 131 + j * 17 + 7 + round) % tok_n_vocab(v));
                }
                struct runner_task_params tp = {.prompt = prompt, .n_prompt = np,
                                                .num_predict = round ? n_gen : 4, .num_keep = 4,
                                                .filter = no_eog, .filter_user = v};
                tp.sampling = sampler_params_default();
                tp.sampling.temperature = 0;
                if (runner_submit(r, &tp, &t[i], &eb) != LLEM_OK) {
                    fprintf(stderr, "%s\n", eb.msg);
                    return 1;
                }
            }
            struct runner_status st0, st;
            runner_status(r, &st0);
            uint64_t a0 = llem_alloc_count();
            int64_t t0 = time_now_ns();
            runner_hold(r, false);
            do { // no reader until every stream is done
                usleep(200);
                runner_status(r, &st);
            } while (st.n_busy > 0 || st.n_queued > 0);
            int64_t dt = time_now_ns() - t0;
            uint64_t allocs = llem_alloc_count() - a0;
            for (int32_t i = 0; i < n; i++) {
                struct runner_event ev;
                while (runner_task_next(t[i], &ev, -1)) {
                    runner_event_clear(&ev);
                }
                runner_task_release(t[i]);
            }
            if (round) {
                uint64_t steps = st.steps - st0.steps;
                printf("%8d %12lld %14.1f %10llu %14.3f\n", n, (long long)n * n_gen,
                       (double)n * n_gen * 1e9 / (double)dt, (unsigned long long)steps,
                       steps ? (double)allocs / (double)steps : 0.0);
            }
        }
        runner_free(r);
    }
    tok_vocab_free(v);
    model_free(m);
    backend_free(be);
    return 0;
}
