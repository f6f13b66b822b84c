// tests/golden/model_logits.c: logits of every reference prompt in ../shared/testdata/reference
// against llama.cpp's, with the tolerances its README derives from llama.cpp's own noise floor:
//   - F32/F16 models (all references): NMSE <= 1e-5 and 100 % top-1 on rows whose reference
//     margin is >= 0.05;
//   - quantized models, whose activations we quantize like ggml (all references): NMSE <= 1e-2
//     and 100 % top-1 on rows with margin >= 1.0;
// plus greedy continuations identical up to the first low-margin step. Prints one line per
// file (NMSE, top-1, llama.cpp's own chunked-vs-batch figures). Skips when ../shared is absent.
// LLEM_GOLDEN_FILTER=substring limits the files (debugging).
#include <dirent.h>
#include <math.h>

#include "backend/cpu/cpu.h"
#include "base/alloc.h"
#include "check.h"
#include "model/model.h"

struct cmp {
    double nmse;
    double top1;         // all rows
    int rows_checked;    // rows with margin >= threshold
    int rows_bad;        // of those, argmax differs
};

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (x[i] > x[best]) {
            best = i;
        }
    }
    return best;
}

static double margin(const float *x, int n)
{
    float a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (x[i] > a) {
            b = a;
            a = x[i];
        } else if (x[i] > b) {
            b = x[i];
        }
    }
    return (double)a - (double)b;
}

static struct cmp compare(const float *y, const float *r, int rows, int n_vocab, double min_margin)
{
    struct cmp c = {0};
    double num = 0, den = 0;
    int top1 = 0;
    for (int t = 0; t < rows; t++) {
        const float *yr = y + (size_t)t * n_vocab, *rr = r + (size_t)t * n_vocab;
        double mean = 0;
        for (int j = 0; j < n_vocab; j++) {
            mean += (double)rr[j];
        }
        mean /= n_vocab;
        for (int j = 0; j < n_vocab; j++) {
            double d = (double)yr[j] - (double)rr[j], e = (double)rr[j] - mean;
            num += d * d;
            den += e * e;
        }
        bool same = argmax(yr, n_vocab) == argmax(rr, n_vocab);
        top1 += same;
        if (margin(rr, n_vocab) >= min_margin) {
            c.rows_checked++;
            c.rows_bad += !same;
        }
    }
    c.nmse = den > 0 ? num / den : num;
    c.top1 = (double)top1 / rows;
    return c;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static float ref_f32(const struct gguf_file *f, const char *key)
{
    float v = NAN;
    gguf_get_f32(f, key, &v);
    return v;
}

// Decodes `tokens` in one batch (all logits) and greedily 32 more tokens; compares with the
// reference. Returns false when a check failed.
static void check_file(const char *shared, const char *name, struct backend *be)
{
    char path[1024], model_path[1024];
    snprintf(path, sizeof path, "%s/testdata/reference/%s", shared, name);
    struct llem_errbuf eb = {0};
    struct gguf_file *ref = NULL;
    CHECK_OK(gguf_open(&ref, path, NULL, &eb), &eb);
    if (!ref) {
        return;
    }
    const char *kind = gguf_get_str(ref, "ref.kind");
    const char *model_name = gguf_get_str(ref, "ref.model");
    uint64_t n_tok = 0;
    const int32_t *tokens = gguf_get_arr(ref, "ref.tokens", GGUF_VALUE_INT32, &n_tok);
    int64_t li = gguf_find_tensor(ref, "logits");
    if (!kind || strcmp(kind, "random-prompt") != 0 || !model_name || !tokens || li < 0) {
        gguf_close(ref); // text-prompt files are checked by the run golden test
        return;
    }
    snprintf(model_path, sizeof model_path, "%s/models/%s", shared, model_name);
    struct model *m = NULL;
    CHECK_OK(model_load(model_path, NULL, be, &m, &eb), &eb);
    if (!m) {
        gguf_close(ref);
        return;
    }
    const int n_vocab = m->hp.n_vocab;
    // Our CPU kernels multiply quantized weights by Q8-quantized activations, as ggml does, so
    // quantized models belong to the `.fa0`/`.fa1` class (their `.deqf32` references are
    // checked with the same tolerance); F16/F32 weights use F32 activations: exact class.
    const bool exact_class = strstr(model_name, "F16") || strstr(model_name, "F32") ||
                             strstr(model_name, "stories");
    const double max_nmse = exact_class ? 1e-5 : 1e-2;
    const double min_margin = exact_class ? 0.05 : 1.0;
    const struct gguf_tensor_info *ti = gguf_tensor(ref, li);
    const float *ref_logits = gguf_tensor_data(ref, li);
    CHECK_EQ_I64(ti->ne[0], n_vocab);
    CHECK_EQ_I64(ti->ne[1], (int64_t)n_tok);

    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = 128;
    uint32_t fa = 0;
    gguf_get_u32(ref, "ref.flash_attn", &fa);
    struct model_ctx *ctx = NULL;
    CHECK_OK(model_ctx_new(m, &cp, &ctx, &eb), &eb);
    float *logits = llem_malloc(n_tok * (size_t)n_vocab * sizeof(float));
    int8_t out[128];
    llem_pos pos[128];
    llem_seq seq[128] = {0};
    for (uint64_t i = 0; i < n_tok; i++) {
        out[i] = 1;
        pos[i] = (llem_pos)i;
    }
    struct ubatch ub = {.n_tokens = (int32_t)n_tok, .tokens = tokens, .pos = pos, .seq = seq,
                        .output = out};
    if (ctx && logits && n_tok <= 64) {
        CHECK_OK(model_ctx_decode(ctx, &ub, &eb), &eb);
        for (uint64_t i = 0; i < n_tok; i++) {
            const float *row = model_ctx_logits(ctx, (int32_t)i);
            if (row) {
                memcpy(logits + i * (size_t)n_vocab, row, (size_t)n_vocab * sizeof(float));
            }
        }
        struct cmp c = compare(logits, ref_logits, (int)n_tok, n_vocab, min_margin);
        // Greedy: g0 from the last prompt row, then each token decoded alone.
        uint64_t n_greedy = 0;
        const int32_t *greedy = gguf_get_arr(ref, "ref.greedy", GGUF_VALUE_INT32, &n_greedy);
        int64_t gi = gguf_find_tensor(ref, "greedy_logits");
        const float *gl = gi >= 0 ? gguf_tensor_data(ref, gi) : NULL;
        int greedy_ok = 0, greedy_checked = 0;
        llem_token next = argmax(logits + (n_tok - 1) * (size_t)n_vocab, n_vocab);
        for (uint64_t k = 0; greedy && gl && k < n_greedy; k++) {
            if (margin(gl + k * (size_t)n_vocab, n_vocab) < min_margin) {
                break; // past a near-tie the sequences may legitimately differ
            }
            greedy_checked++;
            if (next != greedy[k]) {
                fprintf(stderr, "  %s: greedy step %llu: %d, reference %d\n", name,
                        (unsigned long long)k, next, greedy[k]);
                CHECK(next == greedy[k]);
                break;
            }
            greedy_ok++;
            llem_pos p = (llem_pos)(n_tok + k);
            struct ubatch one = {.n_tokens = 1, .tokens = &next, .pos = &p, .seq = seq};
            CHECK_OK(model_ctx_decode(ctx, &one, &eb), &eb);
            const float *row = model_ctx_logits(ctx, 0);
            if (!row) {
                break;
            }
            next = argmax(row, n_vocab);
        }
        printf("%-40s %-6s NMSE %.2e (max %.0e)  top-1 %.3f  bad rows %d/%d (margin>=%.2f)  "
               "greedy %d/%d  | llama.cpp chunk7 NMSE %.1e top-1 %.2f\n",
               name, exact_class ? "exact" : "quant", c.nmse, max_nmse, c.top1, c.rows_bad,
               c.rows_checked, min_margin, greedy_ok, greedy_checked,
               (double)ref_f32(ref, "ref.chunk_nmse"), (double)ref_f32(ref, "ref.chunk_top1"));
        CHECK(c.nmse <= max_nmse);
        CHECK_EQ_I64(c.rows_bad, 0);
    }
    llem_free(logits);
    model_ctx_free(ctx);
    model_free(m);
    gguf_close(ref);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    char buf[1024];
    test_shared_path(buf, sizeof buf, "testdata/reference/README.md");
    const char *shared = getenv("LLEM_SHARED") ? getenv("LLEM_SHARED") : "../shared";
    const char *filter = getenv("LLEM_GOLDEN_FILTER");
    snprintf(buf, sizeof buf, "%s/testdata/reference", shared);
    DIR *d = opendir(buf);
    CHECK(d != NULL);
    if (!d) {
        return TEST_EXIT();
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        if (ends_with(e->d_name, ".ref.gguf") && (!filter || strstr(e->d_name, filter))) {
            names[n++] = llem_strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, name_cmp);
    struct backend *be = NULL;
    struct llem_errbuf eb = {0};
    struct backend_params bp = {.n_threads = 2};
    CHECK_OK(backend_new("cpu", &bp, &be, &eb), &eb);
    for (int i = 0; i < n && be; i++) {
        check_file(shared, names[i], be);
        llem_free(names[i]);
    }
    backend_free(be);
    return TEST_EXIT();
}
