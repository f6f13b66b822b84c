// backend/backend.c: the backend-independent glue: the registry of compiled-in backends,
// buffer and tensor-data calls that dispatch through the owning backend's vtable, and the
// graph allocator (plan, size the compute buffer once, bind every tensor of the graph).
#include "backend/backend.h"

#include <string.h>

#include "base/alloc.h"
#include "base/align.h"
#include "base/log.h"
#include "backend/cpu/cpu.h"

// ---- registry --------------------------------------------------------------------------------

static const struct backend_reg *const regs[] = {
    &cpu_backend_reg,
};

int backend_reg_count(void)
{
    return (int)LLEM_ARRAY_LEN(regs);
}

const struct backend_reg *backend_reg_get(int i)
{
    return i >= 0 && i < backend_reg_count() ? regs[i] : NULL;
}

const struct backend_reg *backend_reg_find(const char *name)
{
    for (int i = 0; i < backend_reg_count(); i++) {
        if (strcmp(regs[i]->name, name) == 0) {
            return regs[i];
        }
    }
    return NULL;
}

enum llem_err backend_new(const char *name, const struct backend_params *p, struct backend **out,
                          struct llem_errbuf *eb)
{
    *out = NULL;
    const struct backend_reg *r = backend_reg_find(name);
    if (!r) {
        return llem_errf(eb, LLEM_ENOTFOUND, "backend '%s' is not compiled in", name);
    }
    struct backend_params def = {0};
    return r->create(p ? p : &def, out, eb);
}

void backend_free(struct backend *be)
{
    if (be) {
        be->ops->release(be);
    }
}

const char *backend_name(const struct backend *be)
{
    return be->ops->name;
}

bool backend_supports_op(const struct backend *be, const struct tensor *t)
{
    return be->ops->supports_op(be, t);
}

void backend_set_stats(struct backend *be, bool on)
{
    be->stats_enabled = on;
}

void backend_reset_stats(struct backend *be)
{
    memset(be->stats, 0, sizeof be->stats);
}

// ---- buffers -----------------------------------------------------------------------------------

enum llem_err backend_buffer_alloc(struct backend *be, size_t size, enum backend_buffer_usage usage,
                                   struct backend_buffer **out, struct llem_errbuf *eb)
{
    *out = NULL;
    struct backend_buffer *b = llem_calloc(1, sizeof *b);
    if (!b) {
        return llem_errf(eb, LLEM_ENOMEM, "%s: out of memory for a buffer", be->ops->name);
    }
    b->be = be;
    b->usage = usage;
    b->owned = true;
    enum llem_err err = be->ops->buffer_alloc(be, size ? size : 1, b, eb);
    if (err != LLEM_OK) {
        llem_free(b);
        return err;
    }
    *out = b;
    return LLEM_OK;
}

enum llem_err backend_buffer_alloc_zeroed(struct backend *be, size_t size,
                                          enum backend_buffer_usage usage,
                                          struct backend_buffer **out, struct llem_errbuf *eb)
{
    enum llem_err err = backend_buffer_alloc(be, size, usage, out, eb);
    if (err == LLEM_OK && !(*out)->zero_filled) {
        backend_buffer_clear(*out, 0);
    }
    return err;
}

enum llem_err backend_buffer_from_host_ptr(struct backend *be, void *ptr, size_t size,
                                           struct backend_buffer **out, struct llem_errbuf *eb)
{
    *out = NULL;
    if (!be->ops->buffer_from_host_ptr) {
        return llem_errf(eb, LLEM_EUNSUPPORTED, "%s: cannot use host memory in place",
                         be->ops->name);
    }
    struct backend_buffer *b = llem_calloc(1, sizeof *b);
    if (!b) {
        return llem_errf(eb, LLEM_ENOMEM, "%s: out of memory for a buffer", be->ops->name);
    }
    b->be = be;
    b->usage = BACKEND_BUFFER_WEIGHTS;
    enum llem_err err = be->ops->buffer_from_host_ptr(be, ptr, size, b, eb);
    if (err != LLEM_OK) {
        llem_free(b);
        return err;
    }
    *out = b;
    return LLEM_OK;
}

enum llem_err backend_weight_prepare(struct backend *be, struct tensor *t, size_t *bytes,
                                     struct llem_errbuf *eb)
{
    *bytes = 0;
    if (!be->ops->weight_prepare || t->extra) {
        return LLEM_OK;
    }
    return be->ops->weight_prepare(be, t, bytes, eb);
}

size_t backend_weight_plan(struct backend *be, const struct tensor *t, uint64_t *layout)
{
    *layout = 0;
    const struct backend_ops *o = be->ops;
    if (!o->weight_plan || !o->weight_adopt || !o->weight_prepared) {
        return 0;
    }
    return o->weight_plan(be, t, layout);
}

enum llem_err backend_weight_adopt(struct backend *be, struct tensor *t, const void *data,
                                   size_t bytes, struct llem_errbuf *eb)
{
    uint64_t layout;
    if (t->extra || bytes == 0 || backend_weight_plan(be, t, &layout) != bytes) {
        return llem_errf(eb, LLEM_EINVAL, "%s: tensor '%s' cannot adopt %zu prepared bytes",
                         be->ops->name, t->name, bytes);
    }
    return be->ops->weight_adopt(be, t, data, bytes, eb);
}

const void *backend_weight_prepared(const struct backend *be, const struct tensor *t,
                                    size_t *bytes)
{
    *bytes = 0;
    if (!t->extra || !be->ops->weight_prepared) {
        return NULL;
    }
    return be->ops->weight_prepared(t, bytes);
}

void backend_weight_release(struct backend *be, struct tensor *t)
{
    if (be && t && t->extra && be->ops->weight_release) {
        be->ops->weight_release(be, t);
    }
}

void backend_buffer_free(struct backend_buffer *b)
{
    if (!b) {
        return;
    }
    b->be->ops->buffer_free(b);
    llem_free(b);
}

void backend_buffer_clear(struct backend_buffer *b, uint8_t value)
{
    b->be->ops->buffer_clear(b, value);
}

enum llem_err backend_tensor_bind(struct tensor *t, struct backend_buffer *buf, size_t offs,
                                  struct llem_errbuf *eb)
{
    if (t->view_src) {
        return llem_errf(eb, LLEM_EINVAL, "tensor '%s': a view cannot be bound", t->name);
    }
    size_t end;
    if (!buf || !size_add_ok(offs, tensor_nbytes(t), &end) || end > buf->size) {
        return llem_errf(eb, LLEM_EINVAL, "tensor '%s': [%zu, +%zu) outside its buffer", t->name,
                         offs, tensor_nbytes(t));
    }
    t->buf = buf;
    t->offs = offs;
    return LLEM_OK;
}

// ---- tensor data -------------------------------------------------------------------------------

static void check_range(const struct tensor *t, size_t offset, size_t size)
{
    size_t end;
    LLEM_ASSERT(t->buf != NULL);
    LLEM_ASSERT(size_add_ok(offset, size, &end) && end <= tensor_nbytes(t));
}

void backend_tensor_set(struct tensor *t, const void *data, size_t offset, size_t size)
{
    check_range(t, offset, size);
    if (size) {
        t->buf->be->ops->tensor_set(t, data, offset, size);
    }
}

void backend_tensor_get(const struct tensor *t, void *data, size_t offset, size_t size)
{
    check_range(t, offset, size);
    if (size) {
        t->buf->be->ops->tensor_get(t, data, offset, size);
    }
}

// ---- graph allocator ---------------------------------------------------------------------------

struct backend_galloc {
    struct backend *be;
    struct backend_buffer *buf; // compute buffer; grows only when a plan's peak exceeds it
    struct plan plan;
};

enum llem_err backend_galloc_new(struct backend *be, struct backend_galloc **out,
                                 struct llem_errbuf *eb)
{
    *out = NULL;
    struct backend_galloc *ga = llem_calloc(1, sizeof *ga);
    if (!ga) {
        return llem_errf(eb, LLEM_ENOMEM, "galloc: out of memory");
    }
    ga->be = be;
    plan_init(&ga->plan);
    *out = ga;
    return LLEM_OK;
}

void backend_galloc_free(struct backend_galloc *ga)
{
    if (!ga) {
        return;
    }
    backend_buffer_free(ga->buf);
    plan_deinit(&ga->plan);
    llem_free(ga);
}

static size_t galloc_work(const struct tensor *t, void *user)
{
    const struct backend *be = user;
    return be->ops->work_size ? be->ops->work_size(be, t) : 0;
}

static enum llem_err galloc_plan(struct backend_galloc *ga, const struct graph *gr,
                                 struct llem_errbuf *eb)
{
    enum llem_err err = plan_build(&ga->plan, gr, LLEM_CPU_ALIGN, galloc_work, ga->be, eb);
    if (err != LLEM_OK) {
        return err;
    }
    size_t need = plan_peak_bytes(&ga->plan);
    if (ga->buf && ga->buf->size >= need) {
        return LLEM_OK;
    }
    if (ga->buf) {
        log_debug("%s: compute buffer grows %zu -> %zu bytes", ga->be->ops->name, ga->buf->size,
                  need);
    }
    backend_buffer_free(ga->buf);
    ga->buf = NULL;
    return backend_buffer_alloc(ga->be, need, BACKEND_BUFFER_COMPUTE, &ga->buf, eb);
}

enum llem_err backend_galloc_reserve(struct backend_galloc *ga, const struct graph *gr,
                                     struct llem_errbuf *eb)
{
    return galloc_plan(ga, gr, eb);
}

enum llem_err backend_galloc_alloc_graph(struct backend_galloc *ga, struct graph *gr,
                                         struct llem_errbuf *eb)
{
    enum llem_err err = galloc_plan(ga, gr, eb);
    if (err != LLEM_OK) {
        return err;
    }
    const int n = graph_n_tensors(gr);
    for (int i = 0; i < n; i++) {
        struct tensor *t = graph_tensor(gr, i);
        size_t offs = plan_offset(&ga->plan, t);
        if (offs != PLAN_NO_OFFSET) {
            t->buf = ga->buf;
            t->offs = offs;
        } else if (t->view_src) {
            // Views are created after their root, so the root is bound by now.
            const struct tensor *r = t->view_src;
            if (!r->buf) {
                return llem_errf(eb, LLEM_EINVAL, "galloc: view '%s' of unbound '%s'", t->name,
                                 r->name);
            }
            t->buf = r->buf;
            t->offs = r->offs + t->view_offs;
        }
    }
    graph_bind_compute(gr, ga->buf, &ga->plan);
    return LLEM_OK;
}

size_t backend_galloc_buffer_size(const struct backend_galloc *ga)
{
    return ga->buf ? ga->buf->size : 0;
}

const struct plan *backend_galloc_plan(const struct backend_galloc *ga)
{
    return &ga->plan;
}

enum llem_err backend_graph_compute(struct backend *be, struct graph *gr, struct llem_errbuf *eb)
{
    enum llem_err err = graph_error(gr, eb);
    if (err != LLEM_OK) {
        return err;
    }
    err = be->ops->graph_compute(be, gr, eb);
    if (err == LLEM_OK && be->ops->synchronize) {
        be->ops->synchronize(be);
    }
    return err;
}
