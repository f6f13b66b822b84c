// bench/model_attn_validate.c: what the attention shape validation costs per call, for each
// mode (always / once / never): records layer_attention into a reused graph many times and
// reports ns per call (recording included; the difference between modes is the validation).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/alloc.h"
#include "model/layers.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    struct graph *gr = NULL;
    struct llem_errbuf eb = {0};
    if (graph_new(&gr, &eb) != LLEM_OK) {
        fprintf(stderr, "%s\n", eb.msg);
        return 1;
    }
    static const char *const names[] = {"always", "once", "never"};
    for (int mode = 0; mode < 3; mode++) {
        layer_attn_set_validate_mode((enum attn_validate)mode);
        double best = 1e30;
        uint64_t allocs = 0;
        for (int rep = 0; rep < 5; rep++) {
            uint64_t a0 = llem_alloc_count();
            double t0 = now_ns();
            for (long i = 0; i < iters; i++) {
                graph_reset(gr);
                struct tensor *q = graph_input(gr, "q", GGML_TYPE_F32, 64, 1, 32, 1);
                struct tensor *k = graph_input(gr, "k", GGML_TYPE_F16, 64, 512, 4, 1);
                struct tensor *v = graph_input(gr, "v", GGML_TYPE_F16, 64, 512, 4, 1);
                struct tensor *m = graph_input(gr, "m", GGML_TYPE_F16, 512, 1, 1, 1);
                layer_attention(gr, q, k, v, m, 0.125f, NULL, NULL, true);
            }
            double ns = (now_ns() - t0) / (double)iters;
            best = ns < best ? ns : best;
            allocs = llem_alloc_count() - a0;
        }
        printf("attention record, validate=%-6s %8.1f ns/call  %.3f allocs/call\n", names[mode],
               best, (double)allocs / (double)iters);
    }
    graph_free(gr);
    return 0;
}
