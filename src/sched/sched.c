// sched/sched.c: loaded models (one backend + model + vocab + runner each), reference counts,
// keep_alive expiry on a reaper thread, the loaded-model cap and the memory fit with idle-first
// eviction. One mutex guards the entry list; loading, unloading and the memory-heavy parts run
// outside it (an entry being loaded is marked `loading`, and at most one load runs at a time).
#include "sched/sched.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/timeutil.h"

struct sched_entry {
    char *name, *path;
    struct backend *be;
    struct model *model;
    struct tok_vocab *vocab;
    struct runner *runner;
    int32_t n_ctx;
    int32_t asked_ctx;      // the context asked for at load (fitting may have lowered n_ctx)
    uint64_t weight_bytes, kv_bytes, compute_bytes;
    int32_t refs;
    int64_t keep_alive_ns;  // the latest request's
    int64_t expires_ns;     // monotonic deadline while idle; INT64_MAX: none
    bool loading;           // placeholder while its load runs
    bool unload_when_idle;
    uint64_t last_used;
    struct sched_entry *next;
};

struct sched {
    struct sched_params p;
    pthread_mutex_t mu;
    pthread_cond_t cv;      // an entry changed state (loaded, idle, unloaded)
    pthread_cond_t reap_cv; // CLOCK_MONOTONIC: wakes the reaper
    pthread_t reaper;
    bool reaper_started, stop;
    struct sched_entry *head;
    bool loading;
    int32_t n_waiting;
    uint64_t use_clock;
    struct sched_stats st;
};

struct sched_params sched_params_default(void)
{
    return (struct sched_params){.max_loaded = 3, .keep_alive_ns = SCHED_KEEP_ALIVE_DEFAULT_NS,
                                 .num_parallel = 4, .max_queue = 512, .n_batch = 512,
                                 .flash_attn = -1};
}

static enum llem_err env_int(const char *name, int64_t lo, int64_t hi, int64_t *out,
                             struct llem_errbuf *eb)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        return LLEM_OK;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi) {
        return llem_errf(eb, LLEM_EINVAL, "%s='%s': expected an integer in %lld..%lld", name,
                         v, (long long)lo, (long long)hi);
    }
    *out = x;
    return LLEM_OK;
}

enum llem_err sched_params_from_env(struct sched_params *p, struct llem_errbuf *eb)
{
    *p = sched_params_default();
    int64_t v;
    enum llem_err rc;
    const char *ka = getenv("LLEM_KEEP_ALIVE");
    if (ka && *ka) {
        struct llem_errbuf e2 = {0};
        if (time_parse_duration(ka, &v, &e2) != LLEM_OK) {
            return llem_errf(eb, LLEM_EINVAL, "LLEM_KEEP_ALIVE='%s': %s", ka, e2.msg);
        }
        p->keep_alive_ns = v;
    }
    v = 0;
    if ((rc = env_int("LLEM_MAX_LOADED_MODELS", 0, 1024, &v, eb)) != LLEM_OK) {
        return rc;
    }
    p->max_loaded = v > 0 ? (int32_t)v : 3; // 0: automatic, 3 per device (CPU: 3)
    v = 0;
    if ((rc = env_int("LLEM_NUM_PARALLEL", 0, KV_MAX_SEQ, &v, eb)) != LLEM_OK) {
        return rc;
    }
    p->num_parallel = v > 0 ? (int32_t)v : 4;
    v = 0;
    if ((rc = env_int("LLEM_MAX_QUEUE", 0, 1 << 20, &v, eb)) != LLEM_OK) {
        return rc;
    }
    p->max_queue = v > 0 ? (int32_t)v : 512;
    return LLEM_OK;
}

// ---- entries -----------------------------------------------------------------------------------

static void entry_free(struct sched_entry *e)
{
    if (!e) {
        return;
    }
    runner_free(e->runner);
    tok_vocab_free(e->vocab);
    model_free(e->model);
    backend_free(e->be);
    llem_free(e->name);
    llem_free(e->path);
    llem_free(e);
}

static uint64_t entry_size(const struct sched_entry *e)
{
    return e->weight_bytes + e->kv_bytes + e->compute_bytes;
}

static void unlink_entry(struct sched *s, struct sched_entry *e)
{
    for (struct sched_entry **pp = &s->head; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            e->next = NULL;
            return;
        }
    }
}

static struct sched_entry *find_entry(struct sched *s, const char *path)
{
    for (struct sched_entry *e = s->head; e; e = e->next) {
        if (!strcmp(e->path, path)) {
            return e;
        }
    }
    return NULL;
}

// Least recently used idle loaded entry, or NULL.
static struct sched_entry *lru_idle(struct sched *s, const struct sched_entry *except)
{
    struct sched_entry *best = NULL;
    for (struct sched_entry *e = s->head; e; e = e->next) {
        if (e != except && !e->loading && e->refs == 0 && (!best || e->last_used < best->last_used)) {
            best = e;
        }
    }
    return best;
}

// Unloads e (unlinked by the caller) outside the lock.
static void unload_unlocked(struct sched *s, struct sched_entry *e, const char *why)
{
    pthread_mutex_unlock(&s->mu);
    log_info("unloading %s (%s)", e->name, why);
    entry_free(e);
    pthread_mutex_lock(&s->mu);
    s->st.unloads++;
    pthread_cond_broadcast(&s->cv);
}

static void *reaper_main(void *arg)
{
    struct sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int64_t now = time_now_ns(), next = INT64_MAX;
        struct sched_entry *expired = NULL;
        for (struct sched_entry *e = s->head; e; e = e->next) {
            if (e->loading || e->refs > 0 || e->expires_ns == INT64_MAX) {
                continue;
            }
            if (e->expires_ns <= now) {
                expired = e;
                break;
            }
            next = LLEM_MIN(next, e->expires_ns);
        }
        if (expired) {
            unlink_entry(s, expired);
            unload_unlocked(s, expired, "keep_alive expired");
            continue;
        }
        if (next == INT64_MAX) {
            pthread_cond_wait(&s->reap_cv, &s->mu);
        } else {
            struct timespec ts = {.tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL};
            pthread_cond_timedwait(&s->reap_cv, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

enum llem_err sched_new(const struct sched_params *p, struct sched **out, struct llem_errbuf *eb)
{
    *out = NULL;
    if (p->max_loaded < 1 || p->num_parallel < 1 || p->num_parallel > KV_MAX_SEQ ||
        p->max_queue < 0 || p->n_batch < 0 || p->num_ctx < 0) {
        return llem_errf(eb, LLEM_EINVAL, "sched: bad parameters (max_loaded %d, num_parallel %d "
                         "(1..%d), max_queue %d)", p->max_loaded, p->num_parallel, KV_MAX_SEQ,
                         p->max_queue);
    }
    struct sched *s = llem_calloc(1, sizeof *s);
    if (!s) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    s->p = *p;
    if (s->p.n_batch == 0) {
        s->p.n_batch = 512;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->reap_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        sched_free(s);
        return llem_errf(eb, LLEM_ENOMEM, "sched: cannot start the keep-alive thread");
    }
    s->reaper_started = true;
    *out = s;
    return LLEM_OK;
}

void sched_free(struct sched *s)
{
    if (!s) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_cond_broadcast(&s->reap_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->reaper_started) {
        pthread_join(s->reaper, NULL);
    }
    while (s->head) {
        struct sched_entry *e = s->head;
        s->head = e->next;
        if (e->refs > 0) {
            log_warn("sched_free: %s still has %d lease(s)", e->name, e->refs);
        }
        entry_free(e);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->reap_cv);
    llem_free(s);
}

// ---- loading ------------------------------------------------------------------------------------

static enum llem_err resolve(struct sched *s, const char *name, char *path, size_t cap,
                             struct llem_errbuf *eb)
{
    if (!name || !*name) {
        return llem_errf(eb, LLEM_EINVAL, "no model given");
    }
    if (s->p.resolve) {
        return s->p.resolve(s->p.resolve_user, name, path, cap, eb);
    }
    size_t n = strlen(name);
    if (n >= cap) {
        return llem_errf(eb, LLEM_EINVAL, "model path too long (%zu bytes)", n);
    }
    if (access(name, R_OK) != 0) {
        return llem_errf(eb, LLEM_ENOTFOUND, "model '%s' not found", name);
    }
    memcpy(path, name, n + 1);
    return LLEM_OK;
}

static int32_t want_ctx(const struct sched *s, const struct model *m, int32_t req)
{
    int32_t want = req > 0 ? req : s->p.num_ctx;
    size_t budget = s->p.mem_budget ? s->p.mem_budget / 2 : 0;
    return model_fit_n_ctx(m, want, s->p.num_parallel, budget);
}

// Bytes the compute buffers of one decode step may take (a rough upper estimate: activations
// of n_batch tokens through the widest layer, plus logits for the outputs).
static uint64_t compute_estimate(const struct model *m, int32_t n_batch)
{
    const struct hparams *hp = &m->hp;
    uint64_t per_tok = (uint64_t)hp->n_embd * 8 + (uint64_t)hp->n_ff * 3 +
                       (uint64_t)hp->n_head * (uint64_t)hp->head_dim * 4 + (uint64_t)hp->n_vocab;
    return per_tok * (uint64_t)n_batch * sizeof(float);
}

// Loads the model behind placeholder e (not under the lock); fills everything but the runner.
static enum llem_err load_model(struct sched *s, struct sched_entry *e, int32_t req_ctx,
                                struct llem_errbuf *eb)
{
    // Per-op compute time for /metrics (llem_op_seconds) costs a barrier after every node, so
    // it is opt-in: LLEM_OP_METRICS=1.
    const char *op_metrics = getenv("LLEM_OP_METRICS");
    struct backend_params bp = {.n_threads = s->p.n_threads,
                                .stats = op_metrics && strcmp(op_metrics, "1") == 0};
    enum llem_err rc = backend_new("cpu", &bp, &e->be, eb);
    if (rc == LLEM_OK) {
        char prepared[4096];
        const struct model_params mp = {
            .prepared_dir = model_default_prepared_dir(prepared, sizeof prepared) ? prepared : NULL};
        rc = model_load(e->path, &mp, e->be, &e->model, eb);
    }
    if (rc == LLEM_OK) {
        rc = tok_vocab_load(&e->vocab, e->model->gguf, eb);
        if (rc != LLEM_OK) {
            llem_err_prefix(eb, e->path);
        }
    }
    if (rc == LLEM_OK && tok_n_vocab(e->vocab) != e->model->hp.n_vocab) {
        rc = llem_errf(eb, LLEM_EFORMAT, "%s: tokenizer has %d tokens but the model %d", e->path,
                       tok_n_vocab(e->vocab), e->model->hp.n_vocab);
    }
    if (rc != LLEM_OK) {
        return rc;
    }
    e->n_ctx = want_ctx(s, e->model, req_ctx);
    e->asked_ctx = req_ctx > 0 && e->model->hp.n_ctx_train > 0
                       ? LLEM_MIN(req_ctx, e->model->hp.n_ctx_train) : req_ctx;
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = e->n_ctx;
    cp.n_seq_max = s->p.num_parallel;
    cp.n_batch = s->p.n_batch;
    e->weight_bytes = e->model->weight_bytes;
    e->kv_bytes = model_ctx_kv_bytes(e->model, &cp);
    e->compute_bytes = compute_estimate(e->model, s->p.n_batch);
    return LLEM_OK;
}

// Under the lock: makes room for `need` bytes by evicting idle models (collected in *evicted,
// unlinked). False when even that is not enough; *avail_out tells what would be available.
static bool fit_memory(struct sched *s, struct sched_entry *self, uint64_t need,
                       struct sched_entry **evicted, uint64_t *avail_out)
{
    for (;;) {
        uint64_t avail;
        if (s->p.mem_budget) {
            uint64_t used = 0;
            for (struct sched_entry *e = s->head; e; e = e->next) {
                used += e == self ? 0 : entry_size(e);
            }
            avail = used < s->p.mem_budget ? s->p.mem_budget - used : 0;
        } else {
            size_t sys = model_mem_available();
            if (sys == 0) {
                *avail_out = UINT64_MAX;
                return true; // unknown: let the allocation decide
            }
            avail = sys;
            for (struct sched_entry *e = *evicted; e; e = e->next) {
                avail += entry_size(e); // will be freed before the new one allocates
            }
        }
        *avail_out = avail;
        if (need <= avail) {
            return true;
        }
        struct sched_entry *v = lru_idle(s, self);
        if (!v) {
            return false;
        }
        unlink_entry(s, v);
        v->next = *evicted;
        *evicted = v;
        s->st.evictions++;
        log_info("evicting idle %s to fit a new model", v->name);
    }
}

static void fill_lease(struct sched_entry *e, struct sched_lease *l, int64_t load_ns)
{
    *l = (struct sched_lease){.runner = e->runner, .vocab = e->vocab, .model = e->model,
                              .name = e->name, .path = e->path, .n_ctx = e->n_ctx,
                              .load_ns = load_ns, .entry_ = e};
}

static void take_ref(struct sched *s, struct sched_entry *e, const struct sched_request *req)
{
    e->refs++;
    e->keep_alive_ns = req->has_keep_alive ? req->keep_alive_ns : s->p.keep_alive_ns;
    e->expires_ns = INT64_MAX;
    e->last_used = ++s->use_clock;
}

// Runs a load for placeholder e (linked, loading) with the lock held on entry and exit.
static enum llem_err do_load(struct sched *s, struct sched_entry *e,
                             const struct sched_request *req, struct llem_errbuf *eb)
{
    pthread_mutex_unlock(&s->mu);
    enum llem_err rc = load_model(s, e, req->num_ctx, eb);
    pthread_mutex_lock(&s->mu);
    struct sched_entry *evicted = NULL;
    if (rc == LLEM_OK) {
        uint64_t need = entry_size(e), avail = 0;
        if (!fit_memory(s, e, need, &evicted, &avail)) {
            s->st.refused_mem++;
            rc = llem_errf(eb, LLEM_ENOMEM, "model '%s' needs %.1f MiB (weights %.1f, KV cache "
                           "%.1f for %d x %d tokens, compute %.1f) but only %.1f MiB are "
                           "available; unload a model or lower num_ctx", e->name,
                           (double)need / 1048576.0, (double)e->weight_bytes / 1048576.0,
                           (double)e->kv_bytes / 1048576.0, s->p.num_parallel, e->n_ctx,
                           (double)e->compute_bytes / 1048576.0, (double)avail / 1048576.0);
        }
    }
    pthread_mutex_unlock(&s->mu);
    while (evicted) {
        struct sched_entry *v = evicted;
        evicted = v->next;
        log_info("unloading %s (evicted)", v->name);
        entry_free(v);
    }
    if (rc == LLEM_OK) {
        struct runner_params rp = runner_params_default();
        rp.n_ctx = e->n_ctx;
        rp.n_parallel = s->p.num_parallel;
        rp.n_batch = s->p.n_batch;
        rp.max_queue = s->p.max_queue;
        rp.flash_attn = s->p.flash_attn;
        rc = runner_new(e->model, e->vocab, &rp, &e->runner, eb);
    }
    pthread_mutex_lock(&s->mu);
    s->loading = false;
    e->loading = false;
    if (rc != LLEM_OK) {
        unlink_entry(s, e);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        entry_free(e);
        pthread_mutex_lock(&s->mu);
        return rc;
    }
    s->st.loads++;
    log_info("loaded %s: context %d x %d slots, %.1f MiB", e->name, e->n_ctx, s->p.num_parallel,
             (double)entry_size(e) / 1048576.0);
    pthread_cond_broadcast(&s->cv);
    return LLEM_OK;
}

static int32_t count_loaded(const struct sched *s)
{
    int32_t n = 0;
    for (const struct sched_entry *e = s->head; e; e = e->next) {
        n++;
    }
    return n;
}

enum llem_err sched_acquire(struct sched *s, const struct sched_request *req,
                            struct sched_lease *out, struct llem_errbuf *eb)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    enum llem_err rc = resolve(s, req->model, path, sizeof path, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    if (req->num_ctx < 0) {
        return llem_errf(eb, LLEM_EINVAL, "num_ctx %d is negative", req->num_ctx);
    }
    pthread_mutex_lock(&s->mu);
    if (s->n_waiting >= s->p.max_queue) {
        s->st.refused_busy++;
        pthread_mutex_unlock(&s->mu);
        return llem_errf(eb, LLEM_EBUSY, "server busy: %d requests waiting for a model",
                         s->n_waiting);
    }
    s->n_waiting++;
    for (;;) {
        if (s->stop) {
            rc = llem_errf(eb, LLEM_ECANCELED, "the scheduler is shutting down");
            break;
        }
        struct sched_entry *e = find_entry(s, path);
        if (e && e->loading) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        if (e) {
            int32_t want = req->num_ctx;
            if (want > 0 && e->model->hp.n_ctx_train > 0) {
                want = LLEM_MIN(want, e->model->hp.n_ctx_train);
            }
            // A smaller (or default) context reuses the model, no reload; so does the context
            // it was loaded for, even if memory fitting lowered it.
            if (want <= LLEM_MAX(e->n_ctx, e->asked_ctx)) {
                take_ref(s, e, req);
                fill_lease(e, out, 0);
                rc = LLEM_OK;
                break;
            }
            if (e->refs > 0) { // a larger context: reload once the current users are done
                pthread_cond_wait(&s->cv, &s->mu);
                continue;
            }
            unlink_entry(s, e);
            unload_unlocked(s, e, "reloading with a larger context");
            continue;
        }
        if (s->loading) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        if (count_loaded(s) >= s->p.max_loaded) {
            struct sched_entry *v = lru_idle(s, NULL);
            if (!v) { // all busy: wait until one is released (as Ollama does)
                pthread_cond_wait(&s->cv, &s->mu);
                continue;
            }
            unlink_entry(s, v);
            s->st.evictions++;
            unload_unlocked(s, v, "LLEM_MAX_LOADED_MODELS reached");
            continue;
        }
        e = llem_calloc(1, sizeof *e);
        if (e) {
            e->name = llem_strdup(req->model);
            e->path = llem_strdup(path);
        }
        if (!e || !e->name || !e->path) {
            entry_free(e);
            rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
            break;
        }
        e->loading = true;
        e->expires_ns = INT64_MAX;
        e->next = s->head;
        s->head = e;
        s->loading = true;
        int64_t t0 = time_now_ns();
        rc = do_load(s, e, req, eb);
        if (rc == LLEM_OK) {
            take_ref(s, e, req);
            fill_lease(e, out, time_now_ns() - t0);
        }
        break;
    }
    s->n_waiting--;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void sched_release(struct sched *s, struct sched_lease *lease)
{
    struct sched_entry *e = lease ? lease->entry_ : NULL;
    if (!e) {
        return;
    }
    memset(lease, 0, sizeof *lease);
    pthread_mutex_lock(&s->mu);
    if (--e->refs == 0) {
        if (e->unload_when_idle || e->keep_alive_ns == 0) {
            unlink_entry(s, e);
            unload_unlocked(s, e, "keep_alive 0");
        } else if (e->keep_alive_ns > 0) {
            int64_t now = time_now_ns();
            e->expires_ns = e->keep_alive_ns > INT64_MAX - now ? INT64_MAX - 1
                                                                : now + e->keep_alive_ns;
            pthread_cond_broadcast(&s->reap_cv);
        }
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

enum llem_err sched_unload(struct sched *s, const char *model, struct llem_errbuf *eb)
{
    char path[4096];
    enum llem_err rc = resolve(s, model, path, sizeof path, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    struct sched_entry *e = find_entry(s, path);
    if (!e || e->loading) {
        pthread_mutex_unlock(&s->mu);
        return llem_errf(eb, LLEM_ENOTFOUND, "model '%s' is not loaded", model);
    }
    if (e->refs == 0) {
        unlink_entry(s, e);
        unload_unlocked(s, e, "unload requested");
    } else {
        e->unload_when_idle = true;
    }
    pthread_mutex_unlock(&s->mu);
    return LLEM_OK;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    n = n < cap - 1 ? n : cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int32_t sched_list(struct sched *s, struct sched_model_info *out, int32_t cap)
{
    pthread_mutex_lock(&s->mu);
    int32_t n = 0;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t wall_ns = (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec;
    int64_t now = time_now_ns();
    // most recently used first: repeated selection (the list is short)
    uint64_t below = UINT64_MAX;
    for (;;) {
        struct sched_entry *pick = NULL;
        for (struct sched_entry *e = s->head; e; e = e->next) {
            if (!e->loading && e->last_used < below && (!pick || e->last_used > pick->last_used)) {
                pick = e;
            }
        }
        if (!pick) {
            break;
        }
        below = pick->last_used;
        if (n < cap && out) {
            struct sched_model_info *mi = &out[n];
            memset(mi, 0, sizeof *mi);
            copy_str(mi->name, sizeof mi->name, pick->name);
            copy_str(mi->path, sizeof mi->path, pick->path);
            mi->size = entry_size(pick);
            mi->weight_bytes = pick->weight_bytes;
            mi->kv_bytes = pick->kv_bytes;
            mi->context_length = pick->n_ctx;
            mi->n_parallel = s->p.num_parallel;
            mi->refs = pick->refs;
            mi->processor = "100% CPU";
            if (pick->keep_alive_ns < 0) {
                mi->expires_at_unix_ns = 0;
            } else if (pick->refs > 0 || pick->expires_ns == INT64_MAX) {
                mi->expires_at_unix_ns = wall_ns + pick->keep_alive_ns;
            } else {
                mi->expires_at_unix_ns = wall_ns + (pick->expires_ns - now);
            }
            runner_status(pick->runner, &mi->status);
        }
        n++;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

void sched_stats(struct sched *s, struct sched_stats *st)
{
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    st->n_loaded = 0;
    for (struct sched_entry *e = s->head; e; e = e->next) {
        st->n_loaded += !e->loading;
    }
    st->n_waiting = s->n_waiting;
    pthread_mutex_unlock(&s->mu);
}
