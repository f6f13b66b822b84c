// backend/cpu/cpu_backend.c: the CPU backend's vtable: host buffers (64-byte aligned, or
// wrapped host memory for mmapped weights), tensor copies, and the graph executor. The
// executor runs the whole graph in one thread-pool region; threads take fixed-size chunks of
// each node from a shared counter and wait only for the previous node's chunks to complete
// (see "executor" below). Per-op time is recorded (barrier schedule) by thread 0 around nodes.
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_int.h"
#include "backend/cpu/quant/quant.h"
#include "base/alloc.h"
#include "base/align.h"
#include "base/cpu.h"
#include "base/sha256.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/threadpool.h"

struct cpu_ctx {
    enum cpu_isa isa;
    int n_threads;
    bool generic_quant; // backend_params.generic_quant
    struct threadpool *pool;
    const struct cpu_kernel *kernels;
    int metric_op[OP_COUNT]; // timer ids "llem_op_seconds{op=...}" (-1 if unregistered)
    bool barrier_exec;       // LLEM_CPU_EXEC=barrier: the barrier schedule (A/B, debugging)
    bool repack;             // weight_prepare repacks: AVX2 kernels, no generic_quant, and not
                             // LLEM_CPU_REPACK=0 (A/B)
    bool hugepages;          // big buffers and repacked weights in 2 MiB pages (llem_huge_alloc)
                             // unless LLEM_HUGEPAGES=0 (A/B)
    uint64_t layouts[CPU_REPACK_KINDS]; // layout_fingerprint of each repack kind (0: unknown)
    // Per-graph tables, rebuilt each compute, grown only for a larger graph (a warm decode
    // allocates nothing): one context per executing node, up to two phases per node.
    struct cpu_op_ctx *node_ctx;
    struct exec_step *steps;
    int cap; // nodes node_ctx has room for (steps: 2 * cap)
};

static struct cpu_ctx *ctx_of(const struct backend *be)
{
    return be->ctx;
}

const char *cpu_isa_name(enum cpu_isa isa)
{
    switch (isa) {
    case CPU_ISA_SCALAR: return "scalar";
    case CPU_ISA_AVX2: return "avx2";
    default: return "?";
    }
}

enum cpu_isa cpu_isa_best(void)
{
    const struct cpu_features *f = cpu_features();
    if (f->avx2 && f->fma && f->f16c && f->os_ymm) {
        return CPU_ISA_AVX2;
    }
    return CPU_ISA_SCALAR;
}

// A/B switches: on unless the variable is "0".
static bool env_off(const char *name)
{
    const char *v = getenv(name);
    return v && strcmp(v, "0") == 0;
}

// ---- buffers -----------------------------------------------------------------------------------
//
// Blocks of 4 MiB and more (weights copies, the KV cache, the compute arena) come from
// llem_huge_alloc: decode streams them every token, and with 4 KiB pages that stream takes a
// TLB miss every 4 KiB and the hardware prefetcher stops at each page boundary. The rule
// depends only on the size and the context's flag, so free() recomputes it.

enum { CPU_HUGE_MIN = 4u << 20 };

static bool cpu_use_huge(const struct cpu_ctx *cx, size_t size)
{
    return cx->hugepages && size >= CPU_HUGE_MIN;
}

static void *cpu_big_alloc(const struct cpu_ctx *cx, size_t size)
{
    return cpu_use_huge(cx, size) ? llem_huge_alloc(size) : llem_aligned_alloc(LLEM_CPU_ALIGN, size);
}

static void cpu_big_free(const struct cpu_ctx *cx, void *p, size_t size)
{
    if (cpu_use_huge(cx, size)) {
        llem_huge_free(p, size);
    } else {
        llem_aligned_free(p);
    }
}

static enum llem_err cpu_buffer_alloc(struct backend *be, size_t size, struct backend_buffer *b,
                                      struct llem_errbuf *eb)
{
    size_t sz;
    if (!align_up_ok(size, LLEM_CPU_ALIGN, &sz)) {
        return llem_errf(eb, LLEM_ENOMEM, "cpu: buffer of %zu bytes is too large", size);
    }
    b->base = cpu_big_alloc(ctx_of(be), sz);
    if (!b->base) {
        return llem_errf(eb, LLEM_ENOMEM, "cpu: out of memory for a %zu-byte buffer", size);
    }
    b->size = size;
    b->owned = true;
    b->zero_filled = cpu_use_huge(ctx_of(be), sz); // a new anonymous mapping (llem_huge_alloc)
    return LLEM_OK;
}

static void cpu_buffer_free(struct backend_buffer *b)
{
    size_t sz;
    if (b->owned && align_up_ok(b->size, LLEM_CPU_ALIGN, &sz)) { // the size alloc asked for
        cpu_big_free(ctx_of(b->be), b->base, sz);
    }
    b->base = NULL;
}

static void cpu_buffer_clear(struct backend_buffer *b, uint8_t value)
{
    memset(b->base, value, b->size);
}

static enum llem_err cpu_buffer_from_host_ptr(struct backend *be, void *ptr, size_t size,
                                              struct backend_buffer *b, struct llem_errbuf *eb)
{
    LLEM_UNUSED(be);
    if (!ptr || size == 0) {
        return llem_errf(eb, LLEM_EINVAL, "cpu: empty host buffer");
    }
    b->base = ptr;
    b->size = size;
    b->owned = false;
    return LLEM_OK;
}

static void cpu_tensor_set(struct tensor *t, const void *data, size_t offset, size_t size)
{
    memcpy((char *)cpu_data(t) + offset, data, size);
}

static void cpu_tensor_get(const struct tensor *t, void *data, size_t offset, size_t size)
{
    memcpy(data, (const char *)cpu_data(t) + offset, size);
}

static bool cpu_be_supports_op(const struct backend *be, const struct tensor *t)
{
    LLEM_UNUSED(be);
    return cpu_supports(t);
}

// ---- executor ----------------------------------------------------------------------------------
//
// Two schedules share the node contexts built here:
// - chunked (default): each node phase (mul_mat's prep, then run) is cut into a number of
//   chunks fixed by its shape (cpu_n_chunks); chunk i of n runs the kernel as (ith = i,
//   nth = n). Threads take chunks from one atomic counter that numbers the chunks of the whole
//   graph, and a phase may start once the completed-chunk counter has reached its first chunk
//   number (every earlier phase is done). So a thread waits for work to finish, never for the
//   other threads to arrive: a thread the OS preempted between chunks holds nobody up, and
//   whoever is running picks up its share. Kernels are nth-invariant, so results equal the
//   barrier schedule's bit for bit.
// - barrier (stats on, or LLEM_CPU_EXEC=barrier): every thread runs every node as
//   (ith, nth) = (thread, threads), with a barrier after each phase; thread 0 times nodes.

static bool executes(const struct tensor *t)
{
    return t->op != OP_NONE && !tensor_op_is_view(t->op);
}

// One phase of one node: its kernel, its context and its chunk numbers [base, end).
struct exec_step {
    cpu_kernel_fn fn;
    int n_chunks;
    unsigned base, end;
    const struct cpu_op_ctx *c;
};

struct exec {
    struct backend *be;
    struct cpu_ctx *cx;
    struct graph *gr;
    int n_nodes;
    int n_steps;
    unsigned total; // chunks in the graph
    _Alignas(64) _Atomic unsigned next; // next chunk number to take
    _Alignas(64) _Atomic unsigned done; // chunks completed (futex word)
    _Atomic int sleepers;               // threads asleep on done
};

#define EXEC_SPIN 2048 // pause iterations (~40 us on Zen 3) before sleeping

static void node_ctx(struct cpu_ctx *cx, const struct plan *plan, char *compute_base,
                     const struct tensor *t, struct cpu_op_ctx *c)
{
    c->dst = t;
    c->dst_data = cpu_data(t);
    for (int k = 0; k < TENSOR_MAX_SRC; k++) {
        c->src_data[k] = t->src[k] ? cpu_data(t->src[k]) : NULL;
    }
    c->work = NULL;
    c->work_bytes = 0;
    if (plan && t->id >= 0 && t->id < plan->n && plan->work_offs[t->id] != PLAN_NO_OFFSET) {
        c->work = compute_base + plan->work_offs[t->id];
        c->work_bytes = plan->work_bytes[t->id];
    }
    c->n_threads = cx->n_threads;
    c->generic_quant = cx->generic_quant;
}

static inline void exec_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Waits until `target` chunks are complete (every phase before the caller's is done): spins
// for about the length of a chunk, then sleeps on the counter. On a machine with more runnable
// threads than cores, the thread holding the last chunk may have been preempted; spinning
// then would only burn this thread's share of the CPU (and delay that thread further).
static void wait_done(struct exec *ex, unsigned target)
{
    for (int spins = 0; spins < EXEC_SPIN; spins++) {
        if (atomic_load_explicit(&ex->done, memory_order_acquire) >= target) {
            return;
        }
        exec_relax();
    }
    for (;;) {
        unsigned v = atomic_load_explicit(&ex->done, memory_order_acquire);
        if (v >= target) {
            return;
        }
        // seq_cst pairs with the completer's (add done; load sleepers): either it sees us
        // and wakes us, or the futex sees the new count and returns at once.
        atomic_fetch_add(&ex->sleepers, 1);
        if (atomic_load(&ex->done) == v) {
            threadpool_wait_u32(&ex->done, v);
        }
        atomic_fetch_sub(&ex->sleepers, 1);
    }
}

static void exec_chunked(void *arg, int ith, int nth)
{
    struct exec *ex = arg;
    const struct exec_step *st = ex->cx->steps;
    int s = 0;
    LLEM_UNUSED(ith);
    LLEM_UNUSED(nth);
    for (;;) {
        const unsigned g = atomic_fetch_add_explicit(&ex->next, 1, memory_order_relaxed);
        if (g >= ex->total) {
            return;
        }
        while (st[s].end <= g) {
            s++;
        }
        wait_done(ex, st[s].base);
        st[s].fn(st[s].c, (int)(g - st[s].base), st[s].n_chunks);
        // Release: the chunk's writes are visible to whoever sees the count cover it.
        atomic_fetch_add_explicit(&ex->done, 1, memory_order_seq_cst);
        if (atomic_load(&ex->sleepers) > 0) {
            threadpool_wake_u32(&ex->done);
        }
    }
}

// One thread's walk over the graph in the barrier schedule. Every thread sees the same node
// sequence, so the barriers pair up; kernels only touch their (ith, nth) share of each node.
static void exec_barrier(void *arg, int ith, int nth)
{
    const struct exec *ex = arg;
    const struct cpu_kernel *kt = ex->cx->kernels;
    const bool stats = ex->be->stats_enabled;
    int64_t t0 = (stats && ith == 0) ? metrics_now_ns() : 0;
    for (int i = 0; i < ex->n_nodes; i++) {
        const struct cpu_op_ctx *c = &ex->cx->node_ctx[i];
        const struct tensor *t = c->dst;
        const struct cpu_kernel *k = &kt[t->op];
        if (k->prep) {
            k->prep(c, ith, nth);
            threadpool_barrier(ex->cx->pool);
        }
        k->run(c, ith, nth);
        threadpool_barrier(ex->cx->pool);
        if (stats && ith == 0) {
            int64_t t1 = metrics_now_ns();
            ex->be->stats[t->op].count++;
            ex->be->stats[t->op].ns += (uint64_t)(t1 - t0);
            metrics_timer_record(ex->cx->metric_op[t->op], (uint64_t)(t1 - t0));
            t0 = t1;
        }
    }
}

// Scratch a node needs: enough for either schedule (per-thread areas are indexed by ith, which
// is a chunk number in the chunked one).
static size_t node_work_size(const struct cpu_ctx *cx, const struct tensor *t)
{
    int n = cx->n_threads;
    int a = cpu_n_chunks(t, false), b = cpu_n_chunks(t, true);
    n = LLEM_MAX(n, LLEM_MAX(a, b));
    return cpu_work_size(t, n);
}

static size_t cpu_be_work_size(const struct backend *be, const struct tensor *t)
{
    return node_work_size(ctx_of(be), t);
}

// Grows the per-graph tables (only when a graph has more nodes than any before it).
static enum llem_err reserve_tables(struct cpu_ctx *cx, int n_nodes, struct llem_errbuf *eb)
{
    if (n_nodes <= cx->cap) {
        return LLEM_OK;
    }
    int cap = LLEM_MAX(n_nodes, 2 * cx->cap);
    struct cpu_op_ctx *nc = llem_malloc((size_t)cap * sizeof *nc);
    struct exec_step *ns = llem_malloc((size_t)cap * 2 * sizeof *ns);
    if (!nc || !ns) {
        llem_free(nc);
        llem_free(ns);
        return llem_errf(eb, LLEM_ENOMEM, "cpu: out of memory for a %d-node graph", n_nodes);
    }
    llem_free(cx->node_ctx);
    llem_free(cx->steps);
    cx->node_ctx = nc;
    cx->steps = ns;
    cx->cap = cap;
    return LLEM_OK;
}

static enum llem_err cpu_graph_compute(struct backend *be, struct graph *gr, struct llem_errbuf *eb)
{
    struct cpu_ctx *cx = ctx_of(be);
    const int n = graph_n_tensors(gr);
    const struct plan *pl = graph_plan(gr);
    // Check everything a kernel will dereference before any thread starts.
    int n_nodes = 0;
    for (int i = 0; i < n; i++) {
        const struct tensor *t = graph_tensor(gr, i);
        if (!executes(t)) {
            continue;
        }
        n_nodes++;
        if (!t->buf || !cx->kernels[t->op].run) {
            return llem_errf(eb, LLEM_EINVAL, "cpu: node '%s' (%s) is %s", t->name,
                             tensor_op_name(t->op), t->buf ? "unsupported" : "not allocated");
        }
        for (int k = 0; k < TENSOR_MAX_SRC; k++) {
            if (t->src[k] && !t->src[k]->buf) {
                return llem_errf(eb, LLEM_EINVAL, "cpu: '%s' reads unbound '%s'", t->name,
                                 t->src[k]->name);
            }
        }
        if (!cpu_supports(t)) {
            return llem_errf(eb, LLEM_EUNSUPPORTED, "cpu: %s of '%s' unsupported",
                             tensor_op_name(t->op), t->name);
        }
        size_t need = node_work_size(cx, t);
        if (need && (!pl || t->id >= pl->n || pl->work_bytes[t->id] < need)) {
            return llem_errf(eb, LLEM_EINVAL,
                             "cpu: node '%s' has no scratch planned for %d threads (re-alloc)",
                             t->name, cx->n_threads);
        }
    }
    enum llem_err rc = reserve_tables(cx, n_nodes, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct backend_buffer *cb = graph_compute_buffer(gr);
    struct exec ex = {.be = be, .cx = cx, .gr = gr, .n_nodes = n_nodes};
    unsigned chunk = 0;
    int nn = 0, ns = 0;
    for (int i = 0; i < n; i++) {
        const struct tensor *t = graph_tensor(gr, i);
        if (!executes(t)) {
            continue;
        }
        struct cpu_op_ctx *c = &cx->node_ctx[nn++];
        node_ctx(cx, pl, cb ? cb->base : NULL, t, c);
        const struct cpu_kernel *k = &cx->kernels[t->op];
        for (int ph = 0; ph < 2; ph++) {
            cpu_kernel_fn fn = ph == 0 ? k->prep : k->run;
            int nc = cpu_n_chunks(t, ph == 0);
            if (!fn || nc < 1) {
                continue;
            }
            cx->steps[ns++] = (struct exec_step){.fn = fn, .n_chunks = nc, .base = chunk,
                                                 .end = chunk + (unsigned)nc, .c = c};
            chunk += (unsigned)nc; // <= 2 * 32 per node: no overflow for any real graph
        }
    }
    ex.n_steps = ns;
    ex.total = chunk;
    atomic_init(&ex.next, 0);
    atomic_init(&ex.done, 0);
    atomic_init(&ex.sleepers, 0);
    const bool barrier = be->stats_enabled || cx->barrier_exec;
    threadpool_run(cx->pool, barrier ? exec_barrier : exec_chunked, &ex, cx->n_threads);
    return LLEM_OK;
}

// ---- weight repacking ----------------------------------------------------------------------
//
// Matrices of a type with a repacked kind (quant.h: Q4_0), 2-D with rows a multiple of 8, get
// a copy in groups of 8 rows for the AVX2 kernels: decode reads 8 rows per 32-byte load and
// prompts reuse each unpacked block for 4 columns. Only with the AVX2 kernel set (the scalar set stays the
// plain reference path) and unless LLEM_CPU_REPACK=0 (A/B measurements).

struct repack_job {
    void (*repack)(const void *src, size_t src_row_stride, int64_t K, int64_t n_rows, void *dst);
    const char *src;
    size_t row_stride;
    int64_t K, n_groups;
    char *dst;
    size_t group_bytes;
};

static void repack_worker(void *arg, int ith, int nth)
{
    const struct repack_job *j = arg;
    int64_t g0, g1;
    cpu_split(j->n_groups, ith, nth, &g0, &g1);
    if (g1 > g0) {
        j->repack(j->src + (size_t)g0 * 8 * j->row_stride, j->row_stride, j->K,
                          (g1 - g0) * 8, j->dst + (size_t)g0 * j->group_bytes);
    }
}

// The repacked layout weight_prepare gives t, or NULL when t is read as it is.
static const struct cpu_repack_kind *prepare_kind(const struct cpu_ctx *cx, const struct tensor *t)
{
    const struct cpu_repack_kind *kind = cpu_repack_kind_of(t->type);
    if (!kind || !cx->repack ||
        t->ne[2] != 1 || t->ne[3] != 1 || t->ne[1] % REPACK_ROWS != 0 ||
        !tensor_is_contiguous(t) || !t->buf || t->ne[0] > INT32_MAX ||
        t->ne[0] % tensor_type_blck(t->type) != 0) {
        return NULL;
    }
    return kind;
}

// Bytes of t's repacked copy (0 when it has none or the size overflows).
static size_t prepared_bytes(const struct cpu_repack_kind *kind, const struct tensor *t)
{
    size_t total;
    if (!size_mul_ok(kind->group_bytes(t->ne[0]), (size_t)(t->ne[1] / REPACK_ROWS), &total)) {
        return 0;
    }
    return total;
}

// Bump when the meaning of repacked bytes changes in a way the fingerprint below cannot see.
enum { CPU_PREPARED_FORMAT = 1 };

// A fingerprint of a kind's layout: its name and the bytes its reference repack writes for a
// fixed 8-row input. A change to any layout changes it, so copies kept on disk by an older
// build are never read as the new layout.
static uint64_t layout_fingerprint(const struct cpu_repack_kind *kind)
{
    enum { K = 512 }; // a whole number of blocks for every kind (32 and 256 elements)
    const size_t row = tensor_row_size(kind->type, K), group = kind->group_bytes(K);
    unsigned char *src = llem_malloc(REPACK_ROWS * row), *dst = llem_aligned_alloc(64, group);
    uint64_t fp = 0;
    struct sha256 h;
    if (src && dst && sha256_init(&h) == LLEM_OK) {
        for (size_t i = 0; i < REPACK_ROWS * row; i++) {
            src[i] = (unsigned char)(i * 131u + 7u);
        }
        kind->repack(src, row, K, REPACK_ROWS, dst);
        const uint32_t format = CPU_PREPARED_FORMAT;
        uint8_t digest[SHA256_BYTES];
        if (sha256_update(&h, &format, sizeof format) == LLEM_OK &&
            sha256_update(&h, kind->name, strlen(kind->name)) == LLEM_OK &&
            sha256_update(&h, dst, group) == LLEM_OK && sha256_final(&h, digest) == LLEM_OK) {
            memcpy(&fp, digest, sizeof fp);
        }
        sha256_deinit(&h);
    }
    llem_free(src);
    llem_aligned_free(dst);
    return fp;
}

static size_t cpu_weight_plan(struct backend *be, const struct tensor *t, uint64_t *layout)
{
    const struct cpu_ctx *cx = ctx_of(be);
    const struct cpu_repack_kind *kind = prepare_kind(cx, t);
    for (int i = 0; kind && i < CPU_REPACK_KINDS; i++) {
        if (cpu_repack_kind_at(i) == kind) {
            *layout = cx->layouts[i];
            return *layout ? prepared_bytes(kind, t) : 0;
        }
    }
    return 0;
}

static enum llem_err cpu_weight_adopt(struct backend *be, struct tensor *t, const void *data,
                                      size_t bytes, struct llem_errbuf *eb)
{
    const struct cpu_repack_kind *kind = prepare_kind(ctx_of(be), t);
    if (!kind || (uintptr_t)data % LLEM_CPU_ALIGN != 0) { // the kernels load aligned groups
        return llem_errf(eb, LLEM_EINVAL, "cpu: '%s' cannot adopt prepared bytes at %p", t->name,
                         data);
    }
    struct cpu_repacked *r = llem_calloc(1, sizeof *r);
    if (!r) {
        return llem_errf(eb, LLEM_ENOMEM, "cpu: out of memory");
    }
    *r = (struct cpu_repacked){.kind = kind, .data = (void *)(uintptr_t)data,
                               .group_bytes = kind->group_bytes(t->ne[0]), .bytes = bytes,
                               .borrowed = true};
    t->extra = r;
    return LLEM_OK;
}

static const void *cpu_weight_prepared(const struct tensor *t, size_t *bytes)
{
    const struct cpu_repacked *r = cpu_repacked_of(t);
    *bytes = r->bytes;
    return r->data;
}

static enum llem_err cpu_weight_prepare(struct backend *be, struct tensor *t, size_t *bytes,
                                        struct llem_errbuf *eb)
{
    struct cpu_ctx *cx = ctx_of(be);
    *bytes = 0;
    const struct cpu_repack_kind *kind = prepare_kind(cx, t);
    if (!kind) {
        return LLEM_OK;
    }
    // repacking runs only with the AVX2 kernel set, so the kind's AVX2 copy applies
    struct repack_job j = {.repack = kind->repack_avx2 ? kind->repack_avx2 : kind->repack,
                           .src = cpu_data(t), .row_stride = t->nb[1],
                           .K = t->ne[0], .n_groups = t->ne[1] / REPACK_ROWS,
                           .group_bytes = kind->group_bytes(t->ne[0])};
    struct cpu_repacked *r = llem_calloc(1, sizeof *r);
    size_t total = prepared_bytes(kind, t);
    if (r && total > 0) {
        r->data = cpu_big_alloc(cx, total);
    }
    if (!r || !r->data) {
        llem_free(r);
        return llem_errf(eb, LLEM_ENOMEM, "cpu: out of memory repacking '%s' (%zu bytes)",
                         t->name, total);
    }
    j.dst = r->data;
    threadpool_run(cx->pool, repack_worker, &j, cx->n_threads);
    r->kind = kind;
    r->group_bytes = j.group_bytes;
    r->bytes = total;
    t->extra = r;
    *bytes = total;
    return LLEM_OK;
}

static void cpu_weight_release(struct backend *be, struct tensor *t)
{
    struct cpu_repacked *r = t->extra;
    if (r) {
        if (!r->borrowed) {
            cpu_big_free(ctx_of(be), r->data, r->bytes);
        }
        llem_free(r);
        t->extra = NULL;
    }
}

static void cpu_release(struct backend *be)
{
    struct cpu_ctx *cx = ctx_of(be);
    threadpool_free(cx->pool);
    llem_free(cx->node_ctx);
    llem_free(cx->steps);
    llem_free(cx);
    llem_free(be);
}

static const struct backend_ops cpu_ops = {
    .name = "cpu",
    .supports_op = cpu_be_supports_op,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_clear = cpu_buffer_clear,
    .buffer_from_host_ptr = cpu_buffer_from_host_ptr,
    .tensor_set = cpu_tensor_set,
    .tensor_get = cpu_tensor_get,
    .work_size = cpu_be_work_size,
    .graph_compute = cpu_graph_compute,
    .synchronize = NULL, // graph_compute returns when done
    .weight_prepare = cpu_weight_prepare,
    .weight_release = cpu_weight_release,
    .weight_plan = cpu_weight_plan,
    .weight_adopt = cpu_weight_adopt,
    .weight_prepared = cpu_weight_prepared,
    .release = cpu_release,
};

// ---- creation ----------------------------------------------------------------------------------

static void register_metrics(struct cpu_ctx *cx)
{
    for (int op = 0; op < OP_COUNT; op++) {
        cx->metric_op[op] = -1;
        if (op == OP_NONE || tensor_op_is_view((enum tensor_op)op)) {
            continue;
        }
        char name[METRICS_MAX_NAME];
        snprintf(name, sizeof name, "llem_op_seconds{backend=\"cpu\",op=\"%s\"}",
                 tensor_op_name((enum tensor_op)op));
        // A full metrics table only loses the metric; the backend still works.
        (void)metrics_register(METRIC_TIMER, name, "Time per graph node, by op kind",
                               &cx->metric_op[op]);
    }
}

enum llem_err cpu_backend_new(const struct backend_params *p, struct backend **out,
                              struct llem_errbuf *eb)
{
    *out = NULL;
    enum cpu_isa best = cpu_isa_best(), isa = best;
    if (p->isa && strcmp(p->isa, "auto") != 0) {
        if (strcmp(p->isa, "scalar") == 0) {
            isa = CPU_ISA_SCALAR;
        } else if (strcmp(p->isa, "avx2") == 0) {
            isa = CPU_ISA_AVX2;
        } else {
            return llem_errf(eb, LLEM_EINVAL, "cpu: unknown kernel set '%s'", p->isa);
        }
        if (isa > best) {
            return llem_errf(eb, LLEM_EUNSUPPORTED, "cpu: this CPU lacks %s", p->isa);
        }
    }
    struct backend *be = llem_calloc(1, sizeof *be);
    struct cpu_ctx *cx = llem_calloc(1, sizeof *cx);
    if (!be || !cx) {
        llem_free(be);
        llem_free(cx);
        return llem_errf(eb, LLEM_ENOMEM, "cpu: out of memory");
    }
    cx->isa = isa;
    cx->kernels = cpu_kernels(isa);
    cx->generic_quant = p->generic_quant;
    const char *ex = getenv("LLEM_CPU_EXEC");
    cx->barrier_exec = ex && strcmp(ex, "barrier") == 0;
    cx->repack = isa == CPU_ISA_AVX2 && !p->generic_quant && !env_off("LLEM_CPU_REPACK");
    cx->hugepages = !env_off("LLEM_HUGEPAGES");
    for (int i = 0; cx->repack && i < CPU_REPACK_KINDS; i++) {
        cx->layouts[i] = layout_fingerprint(cpu_repack_kind_at(i));
    }
    cx->n_threads = threadpool_resolve_threads(TP_WORK_COMPUTE, p->n_threads);
    enum llem_err err = threadpool_new(cx->n_threads, 0, &cx->pool);
    if (err != LLEM_OK) {
        llem_free(be);
        llem_free(cx);
        return llem_errf(eb, err, "cpu: cannot start %d threads", cx->n_threads);
    }
    cx->n_threads = threadpool_size(cx->pool);
    register_metrics(cx);
    be->ops = &cpu_ops;
    be->ctx = cx;
    be->stats_enabled = p->stats;
    log_debug("cpu backend: %d threads, %s kernels", cx->n_threads, cpu_isa_name(isa));
    *out = be;
    return LLEM_OK;
}

int cpu_backend_n_threads(const struct backend *be)
{
    return ctx_of(be)->n_threads;
}

enum cpu_isa cpu_backend_isa(const struct backend *be)
{
    return ctx_of(be)->isa;
}

void cpu_backend_set_n_threads(struct backend *be, int n_threads)
{
    struct cpu_ctx *cx = ctx_of(be);
    if (n_threads < 1) {
        n_threads = 1;
    }
    int size = threadpool_size(cx->pool);
    cx->n_threads = n_threads < size ? n_threads : size;
}

const struct backend_reg cpu_backend_reg = {
    .name = "cpu",
    .create = cpu_backend_new,
};
