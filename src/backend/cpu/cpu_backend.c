// backend/cpu/cpu_backend.c: the CPU backend's vtable: host buffers (64-byte aligned, or
// wrapped host memory for mmapped weights), tensor copies, and the graph executor. The
// executor runs the whole graph in one thread-pool region: every thread walks the nodes,
// runs the node's kernel for its (ith, nth) share, and meets the others at a barrier before
// the next node. Per-op time is recorded by thread 0 around nodes, never inside kernels.
#include <stdio.h>
#include <string.h>

#include "backend/cpu/cpu_int.h"
#include "base/alloc.h"
#include "base/align.h"
#include "base/cpu.h"
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

// ---- buffers -----------------------------------------------------------------------------------

static enum llem_err cpu_buffer_alloc(struct backend *be, size_t size, struct backend_buffer *b,
                                      struct llem_errbuf *eb)
{
    size_t sz;
    if (!align_up_ok(size, LLEM_CPU_ALIGN, &sz)) {
        return llem_errf(eb, LLEM_ENOMEM, "cpu: buffer of %zu bytes is too large", size);
    }
    b->base = llem_aligned_alloc(LLEM_CPU_ALIGN, sz);
    if (!b->base) {
        return llem_errf(eb, LLEM_ENOMEM, "cpu: out of memory for a %zu-byte buffer", size);
    }
    b->size = size;
    b->owned = true;
    LLEM_UNUSED(be);
    return LLEM_OK;
}

static void cpu_buffer_free(struct backend_buffer *b)
{
    if (b->owned) {
        llem_aligned_free(b->base);
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

static size_t cpu_be_work_size(const struct backend *be, const struct tensor *t)
{
    return cpu_work_size(t, ctx_of(be)->n_threads);
}

static bool cpu_be_supports_op(const struct backend *be, const struct tensor *t)
{
    LLEM_UNUSED(be);
    return cpu_supports(t);
}

// ---- executor ----------------------------------------------------------------------------------

static bool executes(const struct tensor *t)
{
    return t->op != OP_NONE && !tensor_op_is_view(t->op);
}

struct exec {
    struct backend *be;
    struct cpu_ctx *cx;
    struct graph *gr;
    const struct plan *plan;
    char *compute_base; // host address of the compute buffer (scratch areas live there)
};

static void node_ctx(const struct exec *ex, const struct tensor *t, struct cpu_op_ctx *c)
{
    c->dst = t;
    c->dst_data = cpu_data(t);
    for (int k = 0; k < TENSOR_MAX_SRC; k++) {
        c->src_data[k] = t->src[k] ? cpu_data(t->src[k]) : NULL;
    }
    c->work = NULL;
    c->work_bytes = 0;
    if (ex->plan && t->id >= 0 && t->id < ex->plan->n &&
        ex->plan->work_offs[t->id] != PLAN_NO_OFFSET) {
        c->work = ex->compute_base + ex->plan->work_offs[t->id];
        c->work_bytes = ex->plan->work_bytes[t->id];
    }
    c->n_threads = ex->cx->n_threads;
    c->generic_quant = ex->cx->generic_quant;
}

// One thread's walk over the graph. Every thread sees the same node sequence, so the barriers
// pair up; kernels only touch their (ith, nth) share of each node.
static void exec_thread(void *arg, int ith, int nth)
{
    const struct exec *ex = arg;
    const struct cpu_kernel *kt = ex->cx->kernels;
    const bool stats = ex->be->stats_enabled;
    const int n = graph_n_tensors(ex->gr);
    int64_t t0 = (stats && ith == 0) ? metrics_now_ns() : 0;
    for (int i = 0; i < n; i++) {
        const struct tensor *t = graph_tensor(ex->gr, i);
        if (!executes(t)) {
            continue;
        }
        const struct cpu_kernel *k = &kt[t->op];
        struct cpu_op_ctx c;
        node_ctx(ex, t, &c);
        if (k->prep) {
            k->prep(&c, ith, nth);
            threadpool_barrier(ex->cx->pool);
        }
        k->run(&c, ith, nth);
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

static enum llem_err cpu_graph_compute(struct backend *be, struct graph *gr, struct llem_errbuf *eb)
{
    struct cpu_ctx *cx = ctx_of(be);
    const int n = graph_n_tensors(gr);
    // Check everything a kernel will dereference before any thread starts.
    for (int i = 0; i < n; i++) {
        const struct tensor *t = graph_tensor(gr, i);
        if (!executes(t)) {
            continue;
        }
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
        size_t need = cpu_work_size(t, cx->n_threads);
        const struct plan *pl = graph_plan(gr);
        if (need && (!pl || t->id >= pl->n || pl->work_bytes[t->id] < need)) {
            return llem_errf(eb, LLEM_EINVAL,
                             "cpu: node '%s' has no scratch planned for %d threads (re-alloc)",
                             t->name, cx->n_threads);
        }
    }
    struct backend_buffer *cb = graph_compute_buffer(gr);
    struct exec ex = {
        .be = be,
        .cx = cx,
        .gr = gr,
        .plan = graph_plan(gr),
        .compute_base = cb ? cb->base : NULL,
    };
    threadpool_run(cx->pool, exec_thread, &ex, cx->n_threads);
    return LLEM_OK;
}

static void cpu_release(struct backend *be)
{
    struct cpu_ctx *cx = ctx_of(be);
    threadpool_free(cx->pool);
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
