// sampler/sampler.c: the sampling chain (penalties, top-k, typical, top-p, min-p, temperature,
// draw) over a reused candidate array, and stop-sequence scanning.
#include "sampler/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/rng.h"

struct cand {
    int32_t id;
    float logit;
    float p;
};

struct sampler {
    struct sampler_params p;
    int32_t n_vocab;
    struct rng rng;
    sampler_filter_fn filter;
    void *filter_user;
    // repetition window: ring buffer of the last hist_cap tokens
    int32_t *hist;
    int32_t hist_cap, hist_n, hist_head;
    // scratch, sized once
    struct cand *cand;    // [n_vocab]
    float *work;          // [n_vocab] logits after penalties/filter (only when needed)
    uint64_t *pen_bits;   // [n_vocab / 64] tokens with a penalty this step
    int32_t *pen_ids;     // [hist_cap] distinct penalized tokens
    float *pen_logit;     // [hist_cap] their penalized logits
    int32_t n_pen;
};

struct sampler_params sampler_params_default(void)
{
    return (struct sampler_params){.temperature = 0.8f, .top_k = 40, .top_p = 0.9f,
                                   .min_p = 0.0f, .typical_p = 1.0f, .repeat_penalty = 1.1f,
                                   .repeat_last_n = 64, .presence_penalty = 0.0f,
                                   .frequency_penalty = 0.0f, .seed = -1};
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&seed, sizeof seed, 1, f) != 1) {
            seed = 0;
        }
        fclose(f);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return seed ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
}

enum llem_err sampler_new(struct sampler **out, const struct sampler_params *p, int32_t n_vocab,
                          int32_t n_ctx, struct llem_errbuf *eb)
{
    *out = NULL;
    if (n_vocab < 1 || !(p->temperature == p->temperature) || !(p->top_p >= 0) ||
        !(p->min_p >= 0 && p->min_p <= 1) || !(p->typical_p > 0) || !(p->repeat_penalty > 0) ||
        p->repeat_last_n < -1 || !isfinite(p->presence_penalty) ||
        !isfinite(p->frequency_penalty)) {
        return llem_errf(eb, LLEM_EINVAL,
                         "sampler: invalid options (temperature %g, top_p %g, min_p %g, "
                         "typical_p %g, repeat_penalty %g, repeat_last_n %d)",
                         (double)p->temperature, (double)p->top_p, (double)p->min_p,
                         (double)p->typical_p, (double)p->repeat_penalty, p->repeat_last_n);
    }
    struct sampler *s = llem_calloc(1, sizeof *s);
    if (!s) {
        return llem_errf(eb, LLEM_ENOMEM, "sampler: out of memory");
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    s->hist_cap = p->repeat_last_n < 0 ? LLEM_MAX(n_ctx, 1) : p->repeat_last_n;
    s->cand = llem_malloc((size_t)n_vocab * sizeof *s->cand);
    s->work = llem_malloc((size_t)n_vocab * sizeof *s->work);
    s->pen_bits = llem_calloc(((size_t)n_vocab + 63) / 64, sizeof *s->pen_bits);
    size_t hc = (size_t)LLEM_MAX(s->hist_cap, 1);
    s->hist = llem_malloc(hc * sizeof *s->hist);
    s->pen_ids = llem_malloc(hc * sizeof *s->pen_ids);
    s->pen_logit = llem_malloc(hc * sizeof *s->pen_logit);
    if (!s->cand || !s->work || !s->pen_bits || !s->hist || !s->pen_ids || !s->pen_logit) {
        sampler_free(s);
        return llem_errf(eb, LLEM_ENOMEM, "sampler: out of memory for %d tokens", n_vocab);
    }
    rng_seed(&s->rng, p->seed >= 0 ? (uint64_t)p->seed : random_seed());
    *out = s;
    return LLEM_OK;
}

void sampler_free(struct sampler *s)
{
    if (!s) {
        return;
    }
    llem_free(s->cand);
    llem_free(s->work);
    llem_free(s->pen_bits);
    llem_free(s->hist);
    llem_free(s->pen_ids);
    llem_free(s->pen_logit);
    llem_free(s);
}

void sampler_set_filter(struct sampler *s, sampler_filter_fn fn, void *user)
{
    s->filter = fn;
    s->filter_user = user;
}

void sampler_accept(struct sampler *s, int32_t token)
{
    if (s->hist_cap == 0) {
        return;
    }
    s->hist[s->hist_head] = token;
    s->hist_head = (s->hist_head + 1) % s->hist_cap;
    if (s->hist_n < s->hist_cap) {
        s->hist_n++;
    }
}

void sampler_reset(struct sampler *s)
{
    s->hist_n = 0;
    s->hist_head = 0;
}

// ---- penalties -----------------------------------------------------------------------------

static bool penalties_active(const struct sampler *s)
{
    return s->hist_n > 0 && (s->p.repeat_penalty != 1.0f || s->p.presence_penalty != 0.0f ||
                             s->p.frequency_penalty != 0.0f);
}

// Computes the penalized logit of every distinct token in the window (llama.cpp's rule: a
// positive logit is divided by repeat_penalty, a negative one multiplied; then
// - count * frequency_penalty - presence_penalty).
static void penalties_prepare(struct sampler *s, const float *logits)
{
    s->n_pen = 0;
    for (int32_t k = 0; k < s->hist_n; k++) {
        int32_t id = s->hist[k];
        if (id < 0 || id >= s->n_vocab) {
            continue;
        }
        uint64_t bit = 1ull << (id & 63);
        if (s->pen_bits[id >> 6] & bit) {
            continue;
        }
        s->pen_bits[id >> 6] |= bit;
        int32_t count = 0;
        for (int32_t m = 0; m < s->hist_n; m++) {
            count += s->hist[m] == id;
        }
        float l = logits[id];
        l = l > 0 ? l / s->p.repeat_penalty : l * s->p.repeat_penalty;
        l -= (float)count * s->p.frequency_penalty + s->p.presence_penalty;
        s->pen_ids[s->n_pen] = id;
        s->pen_logit[s->n_pen] = l;
        s->n_pen++;
    }
}

static void penalties_clear(struct sampler *s)
{
    for (int32_t k = 0; k < s->n_pen; k++) {
        s->pen_bits[s->pen_ids[k] >> 6] = 0;
    }
    s->n_pen = 0;
}

// ---- truncation ----------------------------------------------------------------------------

static int cand_cmp_desc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->logit != y->logit) {
        return x->logit > y->logit ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

static bool cand_better(const struct cand *a, const struct cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

// Keeps the k best of n candidates (a min-heap of size k), sorted best first. Returns k.
static int32_t top_k_select(struct cand *c, int32_t n, int32_t k)
{
    if (k >= n) {
        qsort(c, (size_t)n, sizeof *c, cand_cmp_desc);
        return n;
    }
    // heap in c[0..k): c[0] is the worst kept candidate
    for (int32_t i = 0; i < k; i++) {
        int32_t j = i;
        while (j > 0 && cand_better(&c[(j - 1) / 2], &c[j])) {
            struct cand t = c[j];
            c[j] = c[(j - 1) / 2];
            c[(j - 1) / 2] = t;
            j = (j - 1) / 2;
        }
    }
    for (int32_t i = k; i < n; i++) {
        if (!cand_better(&c[i], &c[0])) {
            continue;
        }
        c[0] = c[i];
        int32_t j = 0;
        for (;;) {
            int32_t l = 2 * j + 1, r = l + 1, m = j;
            if (l < k && cand_better(&c[m], &c[l])) {
                m = l;
            }
            if (r < k && cand_better(&c[m], &c[r])) {
                m = r;
            }
            if (m == j) {
                break;
            }
            struct cand t = c[j];
            c[j] = c[m];
            c[m] = t;
            j = m;
        }
    }
    qsort(c, (size_t)k, sizeof *c, cand_cmp_desc);
    return k;
}

// Softmax of the candidates' logits (divided by temp) into p. Candidates need not be sorted.
static void softmax(struct cand *c, int32_t n, float temp)
{
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        max = c[i].logit > max ? c[i].logit : max;
    }
    double sum = 0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = expf((c[i].logit - max) / temp);
        sum += (double)c[i].p;
    }
    for (int32_t i = 0; i < n; i++) {
        c[i].p = (float)((double)c[i].p / sum);
    }
}

static int32_t top_p_cut(struct cand *c, int32_t n, float top_p)
{
    softmax(c, n, 1.0f);
    double cum = 0;
    for (int32_t i = 0; i < n; i++) {
        cum += (double)c[i].p;
        if (cum >= (double)top_p) {
            return i + 1;
        }
    }
    return n;
}

static int32_t min_p_cut(struct cand *c, int32_t n, float min_p)
{
    // sorted best first: p_max = c[0]; keep while logit >= logit_max + log(min_p)
    float threshold = c[0].logit + logf(min_p);
    int32_t k = 1;
    while (k < n && c[k].logit >= threshold) {
        k++;
    }
    return k;
}

static int cand_cmp_p_asc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->p != y->p) {
        return x->p < y->p ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

// Locally typical sampling: keep the tokens whose surprise (-log p) is closest to the entropy,
// until their probability mass reaches typical_p. The shift is sorted through the p slot, and
// p is then recomputed from the logits (the softmax does not depend on the order).
static int32_t typical_cut(struct cand *c, int32_t n, float typical_p)
{
    softmax(c, n, 1.0f);
    double entropy = 0;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].p > 0) {
            entropy -= (double)c[i].p * log((double)c[i].p);
        }
    }
    for (int32_t i = 0; i < n; i++) {
        c[i].p = (float)fabs(-log((double)c[i].p) - entropy);
    }
    qsort(c, (size_t)n, sizeof *c, cand_cmp_p_asc);
    softmax(c, n, 1.0f);
    double cum = 0;
    int32_t k = n;
    for (int32_t i = 0; i < n; i++) {
        cum += (double)c[i].p;
        if (cum >= (double)typical_p) {
            k = i + 1;
            break;
        }
    }
    qsort(c, (size_t)k, sizeof *c, cand_cmp_desc);
    return k;
}

// ---- sampling ------------------------------------------------------------------------------

enum llem_err sampler_sample(struct sampler *s, const float *logits, int32_t *token,
                             struct llem_errbuf *eb)
{
    const int32_t n_vocab = s->n_vocab;
    const bool greedy = !(s->p.temperature > 0);
    const bool penalize = !greedy && penalties_active(s);
    const float *src = logits;
    if (penalize || s->filter) {
        memcpy(s->work, logits, (size_t)n_vocab * sizeof *s->work);
        if (penalize) {
            penalties_prepare(s, logits);
            for (int32_t k = 0; k < s->n_pen; k++) {
                s->work[s->pen_ids[k]] = s->pen_logit[k];
            }
            penalties_clear(s);
        }
        if (s->filter && !s->filter(s->filter_user, s->work, NULL, n_vocab)) {
            return llem_errf(eb, LLEM_EINTERNAL, "sampler: token filter failed");
        }
        src = s->work;
    }
    if (greedy) {
        int32_t best = -1;
        float best_v = -INFINITY;
        for (int32_t i = 0; i < n_vocab; i++) {
            if (src[i] > best_v) {
                best_v = src[i];
                best = i;
            }
        }
        if (best < 0) {
            return llem_errf(eb, LLEM_EINVAL, "sampler: no token is possible");
        }
        *token = best;
        return LLEM_OK;
    }
    int32_t n = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (src[i] > -INFINITY) {
            s->cand[n++] = (struct cand){.id = i, .logit = src[i]};
        }
    }
    if (n == 0) {
        return llem_errf(eb, LLEM_EINVAL, "sampler: no token is possible");
    }
    const bool need_sorted = s->p.top_p < 1.0f || s->p.min_p > 0.0f || s->p.typical_p < 1.0f;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        n = top_k_select(s->cand, n, s->p.top_k);
    } else if (need_sorted) {
        qsort(s->cand, (size_t)n, sizeof *s->cand, cand_cmp_desc);
    }
    if (s->p.typical_p < 1.0f) {
        n = typical_cut(s->cand, n, s->p.typical_p);
    }
    if (s->p.top_p < 1.0f) {
        n = top_p_cut(s->cand, n, s->p.top_p);
    }
    if (s->p.min_p > 0.0f) {
        n = min_p_cut(s->cand, n, s->p.min_p);
    }
    softmax(s->cand, n, s->p.temperature);
    double r = rng_uniform_f64(&s->rng), cum = 0;
    int32_t pick = n - 1;
    for (int32_t i = 0; i < n; i++) {
        cum += (double)s->cand[i].p;
        if (r < cum) {
            pick = i;
            break;
        }
    }
    *token = s->cand[pick].id;
    return LLEM_OK;
}

// ---- stop sequences ------------------------------------------------------------------------

bool sampler_stop_scan(const char *const *stops, int32_t n_stops, const char *text, size_t len,
                       size_t *emit)
{
    size_t first = len;
    bool found = false;
    size_t hold_from = len;
    for (int32_t k = 0; k < n_stops; k++) {
        const char *stop = stops[k];
        size_t sl = strlen(stop);
        if (sl == 0) {
            continue;
        }
        for (size_t i = 0; i + sl <= len; i++) { // a full occurrence
            if (memcmp(text + i, stop, sl) == 0) {
                if (i < first) {
                    first = i;
                }
                found = true;
                break;
            }
        }
        // a suffix of text that is a prefix of the stop string must wait for more text
        size_t max_part = LLEM_MIN(sl - 1, len);
        for (size_t part = max_part; part > 0; part--) {
            if (memcmp(text + len - part, stop, part) == 0) {
                if (len - part < hold_from) {
                    hold_from = len - part;
                }
                break;
            }
        }
    }
    *emit = found ? first : hold_from;
    return found;
}
