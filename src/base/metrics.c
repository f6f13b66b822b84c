// base/metrics.c: sharded lock-free metrics registry (see metrics.h). Each recording thread
// owns one shard, so a record is a few plain loads and stores to memory no other thread
// writes; readers and the thread-exit fold take the registry lock.
#include "base/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct timer_cell {
    _Atomic uint64_t count;
    _Atomic uint64_t total_ns;
    _Atomic uint64_t max_ns;
    _Atomic uint64_t hist[METRICS_HIST_BUCKETS];
};

struct shard {
    _Alignas(64) _Atomic uint64_t counters[METRICS_MAX_COUNTERS];
    struct timer_cell timers[METRICS_MAX_TIMERS];
    bool exclusive; // one writer: plain load+store; else atomic add (the overflow shard)
    bool in_use;    // claimed by a live thread (under g_lock)
};

struct desc {
    enum metric_kind kind;
    int id;
    char name[METRICS_MAX_NAME];
    char help[METRICS_MAX_HELP];
};

#define MAX_DESCS (METRICS_MAX_COUNTERS + METRICS_MAX_GAUGES + METRICS_MAX_TIMERS)

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct desc g_descs[MAX_DESCS];
static size_t g_ndescs;
static int g_nkind[3];
static struct shard g_shards[METRICS_MAX_SHARDS]; // zero pages until a thread touches one
static struct shard g_overflow;                   // shared; also receives exited threads' sums
static _Alignas(64) _Atomic int64_t g_gauges[METRICS_MAX_GAUGES];
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static _Thread_local struct shard *tl_shard;

static const int kind_max[3] = {METRICS_MAX_COUNTERS, METRICS_MAX_GAUGES, METRICS_MAX_TIMERS};

// ---- recording -------------------------------------------------------------------------------

static inline void cell_add(_Atomic uint64_t *p, uint64_t v, bool excl)
{
    if (excl) {
        atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
                              memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(p, v, memory_order_relaxed);
    }
}

static inline void cell_max(_Atomic uint64_t *p, uint64_t v, bool excl)
{
    uint64_t cur = atomic_load_explicit(p, memory_order_relaxed);
    if (excl) {
        if (v > cur) {
            atomic_store_explicit(p, v, memory_order_relaxed);
        }
        return;
    }
    while (v > cur &&
           !atomic_compare_exchange_weak_explicit(p, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static void fold_shard(struct shard *s)
{
    for (int i = 0; i < METRICS_MAX_COUNTERS; i++) {
        uint64_t v = atomic_load_explicit(&s->counters[i], memory_order_relaxed);
        if (v) {
            cell_add(&g_overflow.counters[i], v, false);
        }
    }
    for (int i = 0; i < METRICS_MAX_TIMERS; i++) {
        struct timer_cell *c = &s->timers[i], *o = &g_overflow.timers[i];
        if (!atomic_load_explicit(&c->count, memory_order_relaxed)) {
            continue;
        }
        cell_add(&o->count, atomic_load_explicit(&c->count, memory_order_relaxed), false);
        cell_add(&o->total_ns, atomic_load_explicit(&c->total_ns, memory_order_relaxed), false);
        cell_max(&o->max_ns, atomic_load_explicit(&c->max_ns, memory_order_relaxed), false);
        for (int b = 0; b < METRICS_HIST_BUCKETS; b++) {
            cell_add(&o->hist[b], atomic_load_explicit(&c->hist[b], memory_order_relaxed),
                     false);
        }
    }
}

static void zero_shard(struct shard *s)
{
    for (int i = 0; i < METRICS_MAX_COUNTERS; i++) {
        atomic_store_explicit(&s->counters[i], 0, memory_order_relaxed);
    }
    for (int i = 0; i < METRICS_MAX_TIMERS; i++) {
        struct timer_cell *c = &s->timers[i];
        atomic_store_explicit(&c->count, 0, memory_order_relaxed);
        atomic_store_explicit(&c->total_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&c->max_ns, 0, memory_order_relaxed);
        for (int b = 0; b < METRICS_HIST_BUCKETS; b++) {
            atomic_store_explicit(&c->hist[b], 0, memory_order_relaxed);
        }
    }
}

// Thread exit: the shard's sums move to the overflow shard and the shard is freed for reuse.
static void shard_release(void *p)
{
    struct shard *s = p;
    pthread_mutex_lock(&g_lock);
    fold_shard(s);
    zero_shard(s);
    s->in_use = false;
    pthread_mutex_unlock(&g_lock);
    tl_shard = &g_overflow; // late records from other TLS destructors stay counted
}

static void key_init(void)
{
    g_overflow.exclusive = false;
    if (pthread_key_create(&g_key, shard_release) != 0) {
        g_key = (pthread_key_t)-1;
    }
}

static struct shard *shard_claim(void)
{
    pthread_once(&g_key_once, key_init);
    struct shard *s = &g_overflow;
    pthread_mutex_lock(&g_lock);
    if (g_key != (pthread_key_t)-1) {
        for (int i = 0; i < METRICS_MAX_SHARDS; i++) {
            if (!g_shards[i].in_use) {
                if (pthread_setspecific(g_key, &g_shards[i]) == 0) {
                    g_shards[i].in_use = true;
                    g_shards[i].exclusive = true;
                    s = &g_shards[i];
                }
                break;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    tl_shard = s;
    return s;
}

static inline struct shard *my_shard(void)
{
    struct shard *s = tl_shard;
    return LLEM_LIKELY(s != NULL) ? s : shard_claim();
}

void metrics_counter_add(int id, uint64_t v)
{
    if (LLEM_UNLIKELY((unsigned)id >= METRICS_MAX_COUNTERS)) {
        return;
    }
    struct shard *s = my_shard();
    cell_add(&s->counters[id], v, s->exclusive);
}

int metrics_hist_bucket(uint64_t ns)
{
    int b = ns ? 64 - __builtin_clzll(ns) : 0;
    return b < METRICS_HIST_BUCKETS ? b : METRICS_HIST_BUCKETS - 1;
}

void metrics_timer_record(int id, uint64_t ns)
{
    if (LLEM_UNLIKELY((unsigned)id >= METRICS_MAX_TIMERS)) {
        return;
    }
    struct shard *s = my_shard();
    struct timer_cell *c = &s->timers[id];
    bool ex = s->exclusive;
    cell_add(&c->count, 1, ex);
    cell_add(&c->total_ns, ns, ex);
    cell_max(&c->max_ns, ns, ex);
    cell_add(&c->hist[metrics_hist_bucket(ns)], 1, ex);
}

void metrics_gauge_set(int id, int64_t v)
{
    if ((unsigned)id < METRICS_MAX_GAUGES) {
        atomic_store_explicit(&g_gauges[id], v, memory_order_relaxed);
    }
}

void metrics_gauge_add(int id, int64_t v)
{
    if ((unsigned)id < METRICS_MAX_GAUGES) {
        atomic_fetch_add_explicit(&g_gauges[id], v, memory_order_relaxed);
    }
}

int64_t metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t metrics_timer_since(int id, int64_t t0_ns)
{
    int64_t now = metrics_now_ns();
    metrics_timer_record(id, now > t0_ns ? (uint64_t)(now - t0_ns) : 0);
    return now;
}

// ---- reading ---------------------------------------------------------------------------------

// Calls under g_lock: every claimed shard plus the overflow shard.
static uint64_t counter_sum_locked(int id)
{
    uint64_t v = atomic_load_explicit(&g_overflow.counters[id], memory_order_relaxed);
    for (int i = 0; i < METRICS_MAX_SHARDS; i++) {
        if (g_shards[i].in_use) {
            v += atomic_load_explicit(&g_shards[i].counters[id], memory_order_relaxed);
        }
    }
    return v;
}

static void timer_add_cell(struct timer_stats *t, struct timer_cell *c)
{
    t->count += atomic_load_explicit(&c->count, memory_order_relaxed);
    t->total_ns += atomic_load_explicit(&c->total_ns, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&c->max_ns, memory_order_relaxed);
    t->max_ns = m > t->max_ns ? m : t->max_ns;
    for (int b = 0; b < METRICS_HIST_BUCKETS; b++) {
        t->hist[b] += atomic_load_explicit(&c->hist[b], memory_order_relaxed);
    }
}

static void timer_sum_locked(int id, struct timer_stats *out)
{
    memset(out, 0, sizeof(*out));
    timer_add_cell(out, &g_overflow.timers[id]);
    for (int i = 0; i < METRICS_MAX_SHARDS; i++) {
        if (g_shards[i].in_use) {
            timer_add_cell(out, &g_shards[i].timers[id]);
        }
    }
}

uint64_t metrics_counter_get(int id)
{
    if ((unsigned)id >= METRICS_MAX_COUNTERS) {
        return 0;
    }
    pthread_mutex_lock(&g_lock);
    uint64_t v = counter_sum_locked(id);
    pthread_mutex_unlock(&g_lock);
    return v;
}

int64_t metrics_gauge_get(int id)
{
    if ((unsigned)id >= METRICS_MAX_GAUGES) {
        return 0;
    }
    return atomic_load_explicit(&g_gauges[id], memory_order_relaxed);
}

void metrics_timer_get(int id, struct timer_stats *out)
{
    memset(out, 0, sizeof(*out));
    if ((unsigned)id >= METRICS_MAX_TIMERS) {
        return;
    }
    pthread_mutex_lock(&g_lock);
    timer_sum_locked(id, out);
    pthread_mutex_unlock(&g_lock);
}

void metrics_reset_values(void)
{
    pthread_mutex_lock(&g_lock);
    zero_shard(&g_overflow);
    for (int i = 0; i < METRICS_MAX_SHARDS; i++) {
        if (g_shards[i].in_use) {
            zero_shard(&g_shards[i]);
        }
    }
    for (int i = 0; i < METRICS_MAX_GAUGES; i++) {
        atomic_store_explicit(&g_gauges[i], 0, memory_order_relaxed);
    }
    pthread_mutex_unlock(&g_lock);
}

// ---- registration ----------------------------------------------------------------------------

static bool is_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

// Prometheus metric name, optionally followed by one {labels} group of printable characters.
static bool valid_name(const char *name)
{
    size_t n = strnlen(name, METRICS_MAX_NAME);
    if (n == 0 || n >= METRICS_MAX_NAME) {
        return false;
    }
    size_t i = 0;
    while (i < n && is_name_char(name[i], i == 0)) {
        i++;
    }
    if (i == 0) {
        return false;
    }
    if (i == n) {
        return true;
    }
    if (name[i] != '{' || name[n - 1] != '}') {
        return false;
    }
    for (size_t j = i + 1; j + 1 < n; j++) {
        if (name[j] < 0x20 || name[j] > 0x7E || name[j] == '{' || name[j] == '}') {
            return false;
        }
    }
    return true;
}

enum llem_err metrics_register(enum metric_kind kind, const char *name, const char *help,
                               int *id)
{
    *id = -1;
    if ((unsigned)kind > METRIC_TIMER || !name || !valid_name(name)) {
        return LLEM_EINVAL;
    }
    enum llem_err e = LLEM_OK;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_ndescs; i++) {
        if (strcmp(g_descs[i].name, name) == 0) {
            if (g_descs[i].kind == kind) {
                *id = g_descs[i].id;
            } else {
                e = LLEM_EEXIST;
            }
            pthread_mutex_unlock(&g_lock);
            return e;
        }
    }
    if (g_nkind[kind] >= kind_max[kind]) {
        e = LLEM_ELIMIT;
    } else {
        struct desc *d = &g_descs[g_ndescs++];
        d->kind = kind;
        d->id = g_nkind[kind]++;
        snprintf(d->name, sizeof(d->name), "%s", name);
        snprintf(d->help, sizeof(d->help), "%s", help ? help : "");
        for (char *p = d->help; *p; p++) { // one line; Prometheus escapes \ and \n only
            if (*p == '\n' || *p == '\r' || *p == '\\') {
                *p = ' ';
            }
        }
        *id = d->id;
    }
    pthread_mutex_unlock(&g_lock);
    return e;
}

size_t metrics_count(void)
{
    pthread_mutex_lock(&g_lock);
    size_t n = g_ndescs;
    pthread_mutex_unlock(&g_lock);
    return n;
}

bool metrics_info(size_t i, struct metric_info *out)
{
    pthread_mutex_lock(&g_lock);
    bool ok = i < g_ndescs;
    if (ok) {
        // Descriptors are never modified after registration, so the strings stay valid.
        out->kind = g_descs[i].kind;
        out->id = g_descs[i].id;
        out->name = g_descs[i].name;
        out->help = g_descs[i].help;
    }
    pthread_mutex_unlock(&g_lock);
    return ok;
}

// ---- Prometheus export -----------------------------------------------------------------------

struct writer {
    char *buf;
    size_t size;
    size_t pos; // bytes the full output needs so far (may exceed size)
};

static void LLEM_PRINTF(2, 3) wr(struct writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = w->pos < w->size ? w->size - w->pos : 0;
    int n = vsnprintf(room ? w->buf + w->pos : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) {
        w->pos += (size_t)n;
    }
}

static size_t base_len(const char *name)
{
    const char *b = strchr(name, '{');
    return b ? (size_t)(b - name) : strlen(name);
}

// name with `suffix` inserted before the labels, and `extra` added to them ("le=\"1\"").
static void wr_series(struct writer *w, const char *name, const char *suffix, const char *extra)
{
    size_t bl = base_len(name);
    const char *labels = name + bl; // "" or "{...}"
    if (!extra) {
        wr(w, "%.*s%s%s", (int)bl, name, suffix, labels);
    } else if (*labels) {
        wr(w, "%.*s%s%.*s,%s}", (int)bl, name, suffix, (int)(strlen(labels) - 1), labels, extra);
    } else {
        wr(w, "%.*s%s{%s}", (int)bl, name, suffix, extra);
    }
}

static void write_metric(struct writer *w, const struct desc *d)
{
    if (d->kind == METRIC_COUNTER) {
        wr_series(w, d->name, "", NULL);
        wr(w, " %llu\n", (unsigned long long)counter_sum_locked(d->id));
        return;
    }
    if (d->kind == METRIC_GAUGE) {
        wr_series(w, d->name, "", NULL);
        wr(w, " %lld\n", (long long)atomic_load(&g_gauges[d->id]));
        return;
    }
    struct timer_stats t;
    timer_sum_locked(d->id, &t);
    uint64_t cum = 0;
    int b = 0;
    for (int le = 10; le <= 38; le += 2) {
        for (; b <= le && b < METRICS_HIST_BUCKETS; b++) {
            cum += t.hist[b];
        }
        char extra[48];
        snprintf(extra, sizeof(extra), "le=\"%.9g\"", (double)(1ull << le) * 1e-9);
        wr_series(w, d->name, "_bucket", extra);
        wr(w, " %llu\n", (unsigned long long)cum);
    }
    wr_series(w, d->name, "_bucket", "le=\"+Inf\"");
    wr(w, " %llu\n", (unsigned long long)t.count);
    wr_series(w, d->name, "_sum", NULL);
    wr(w, " %.9f\n", (double)t.total_ns * 1e-9);
    wr_series(w, d->name, "_count", NULL);
    wr(w, " %llu\n", (unsigned long long)t.count);
}

enum llem_err metrics_write_prometheus(char *buf, size_t size, size_t *written)
{
    static const char *const type_name[3] = {"counter", "gauge", "histogram"};
    struct writer w = {buf, size, 0};
    bool done[MAX_DESCS] = {false};
    if (size) {
        buf[0] = '\0';
    }
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_ndescs; i++) {
        if (done[i]) {
            continue;
        }
        const struct desc *d = &g_descs[i];
        size_t bl = base_len(d->name);
        wr(&w, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)bl, d->name, d->help, (int)bl, d->name,
           type_name[d->kind]);
        for (size_t j = i; j < g_ndescs; j++) { // every series of this base name, together
            const struct desc *e = &g_descs[j];
            if (!done[j] && e->kind == d->kind && base_len(e->name) == bl &&
                memcmp(e->name, d->name, bl) == 0) {
                write_metric(&w, e);
                done[j] = true;
            }
        }
        if (d->kind == METRIC_TIMER) {
            wr(&w, "# TYPE %.*s_max_seconds gauge\n", (int)bl, d->name);
            for (size_t j = i; j < g_ndescs; j++) {
                const struct desc *e = &g_descs[j];
                if (e->kind == METRIC_TIMER && base_len(e->name) == bl &&
                    memcmp(e->name, d->name, bl) == 0) {
                    struct timer_stats t;
                    timer_sum_locked(e->id, &t);
                    wr_series(&w, e->name, "_max_seconds", NULL);
                    wr(&w, " %.9f\n", (double)t.max_ns * 1e-9);
                }
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    *written = w.pos;
    if (w.pos >= size) {
        return LLEM_ELIMIT;
    }
    return LLEM_OK;
}
