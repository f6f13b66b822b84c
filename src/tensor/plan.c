// tensor/plan.c: the memory planner. One pass computes, for every tensor that needs memory
// (inputs and op results that are not views), the last node that reads it (through any view);
// a second pass walks the nodes in order, placing each result best-fit in a free list (or in
// place of a source dying at this node, for elementwise/row-wise ops), placing the node's
// scratch, then releasing what died. Pure arithmetic: nothing is allocated for the buffer.
#include "tensor/plan.h"

#include <string.h>

#include "base/alloc.h"

struct plan_block {
    size_t offs;
    size_t size;
};

enum { ST_NONE = 0, ST_LIVE = 1, ST_DONE = 2 };

// The in-progress allocator: sorted free ranges below `end`.
struct fit {
    struct plan *p;
    int n_free;
    size_t end;  // high-water mark of the buffer
    size_t peak; // max end seen
};

void plan_init(struct plan *p)
{
    memset(p, 0, sizeof *p);
}

void plan_deinit(struct plan *p)
{
    if (!p) {
        return;
    }
    llem_free(p->offs);
    llem_free(p->work_offs);
    llem_free(p->work_bytes);
    llem_free(p->inplace);
    llem_free(p->last_use);
    llem_free(p->state);
    llem_free(p->free_blocks);
    memset(p, 0, sizeof *p);
}

static bool grow_arrays(struct plan *p, int n)
{
    if (n <= p->cap) {
        return true;
    }
    int cap = p->cap ? p->cap : 256;
    while (cap < n) {
        cap *= 2;
    }
    void *a = llem_realloc(p->offs, (size_t)cap * sizeof *p->offs);
    if (!a) {
        return false;
    }
    p->offs = a;
    if (!(a = llem_realloc(p->work_offs, (size_t)cap * sizeof *p->work_offs))) {
        return false;
    }
    p->work_offs = a;
    if (!(a = llem_realloc(p->work_bytes, (size_t)cap * sizeof *p->work_bytes))) {
        return false;
    }
    p->work_bytes = a;
    if (!(a = llem_realloc(p->inplace, (size_t)cap * sizeof *p->inplace))) {
        return false;
    }
    p->inplace = a;
    if (!(a = llem_realloc(p->last_use, (size_t)cap * sizeof *p->last_use))) {
        return false;
    }
    p->last_use = a;
    if (!(a = llem_realloc(p->state, (size_t)cap * sizeof *p->state))) {
        return false;
    }
    p->state = a;
    // A free range lies between two placed tensors, so at most n + 1 of them exist.
    if (!(a = llem_realloc(p->free_blocks, ((size_t)cap + 1) * sizeof *p->free_blocks))) {
        return false;
    }
    p->free_blocks = a;
    p->free_cap = cap + 1;
    p->cap = cap;
    return true;
}

// ---- best-fit allocator over [0, end) ------------------------------------------------------

static size_t fit_alloc(struct fit *f, size_t size)
{
    struct plan_block *fb = f->p->free_blocks;
    int best = -1;
    for (int i = 0; i < f->n_free; i++) {
        if (fb[i].size >= size && (best < 0 || fb[i].size < fb[best].size)) {
            best = i;
        }
    }
    if (best >= 0) {
        size_t offs = fb[best].offs;
        fb[best].offs += size;
        fb[best].size -= size;
        if (fb[best].size == 0) {
            memmove(&fb[best], &fb[best + 1], (size_t)(f->n_free - best - 1) * sizeof *fb);
            f->n_free--;
        }
        return offs;
    }
    // No hole fits: grow the buffer, starting inside a free range that touches the end.
    size_t offs = f->end;
    if (f->n_free > 0 && fb[f->n_free - 1].offs + fb[f->n_free - 1].size == f->end) {
        offs = fb[f->n_free - 1].offs;
        f->n_free--;
    }
    f->end = offs + size;
    if (f->end > f->peak) {
        f->peak = f->end;
    }
    return offs;
}

static void fit_free(struct fit *f, size_t offs, size_t size)
{
    struct plan_block *fb = f->p->free_blocks;
    int i = 0;
    while (i < f->n_free && fb[i].offs < offs) {
        i++;
    }
    // Merge with the neighbours where they touch.
    bool left = i > 0 && fb[i - 1].offs + fb[i - 1].size == offs;
    bool right = i < f->n_free && offs + size == fb[i].offs;
    if (left && right) {
        fb[i - 1].size += size + fb[i].size;
        memmove(&fb[i], &fb[i + 1], (size_t)(f->n_free - i - 1) * sizeof *fb);
        f->n_free--;
    } else if (left) {
        fb[i - 1].size += size;
    } else if (right) {
        fb[i].offs = offs;
        fb[i].size += size;
    } else {
        memmove(&fb[i + 1], &fb[i], (size_t)(f->n_free - i) * sizeof *fb);
        fb[i].offs = offs;
        fb[i].size = size;
        f->n_free++;
    }
    // A free range at the top lowers the high-water mark (the peak keeps the maximum).
    if (f->n_free > 0 && fb[f->n_free - 1].offs + fb[f->n_free - 1].size == f->end) {
        f->end = fb[f->n_free - 1].offs;
        f->n_free--;
    }
}

// ---- the planner ---------------------------------------------------------------------------

// Whether t belongs to gr (ids of tensors from another graph may collide with ours).
static bool is_ours(const struct graph *gr, const struct tensor *t, int n)
{
    return t->id >= 0 && t->id < n && graph_tensor(gr, t->id) == t;
}

static bool needs_memory(const struct tensor *t)
{
    return t->buf == NULL && t->view_src == NULL &&
           (t->op != OP_NONE || (t->flags & TENSOR_FLAG_INPUT));
}

// Ops whose kernel reads each element (or each row, for rms_norm/softmax/rope) before writing
// the same position of the result, so the result may overwrite a source of the same layout.
static bool op_inplace_ok(enum tensor_op op)
{
    switch (op) {
    case OP_ADD:
    case OP_MUL:
    case OP_SCALE:
    case OP_SILU:
    case OP_SWIGLU:
    case OP_RMS_NORM:
    case OP_SOFTMAX:
    case OP_ROPE: return true;
    default: return false;
    }
}

static size_t aligned_bytes(const struct tensor *t, size_t align)
{
    size_t n = tensor_nbytes(t);
    return (n + align - 1) & ~(align - 1);
}

// The source of node t whose storage t can take over, or NULL.
static const struct tensor *inplace_source(const struct plan *p, const struct graph *gr,
                                           const struct tensor *t, int i)
{
    if (!op_inplace_ok(t->op)) {
        return NULL;
    }
    int n_cand = (t->op == OP_ADD || t->op == OP_MUL || t->op == OP_SWIGLU) ? 2 : 1;
    for (int c = 0; c < n_cand; c++) {
        const struct tensor *s = t->src[c];
        if (!s || !is_ours(gr, s, graph_n_tensors(gr)) || s->view_src ||
            p->state[s->id] != ST_LIVE || p->last_use[s->id] != i ||
            (s->flags & TENSOR_FLAG_OUTPUT) || s->type != t->type || !tensor_same_shape(s, t) ||
            !tensor_is_contiguous(s)) {
            continue;
        }
        // Another operand aliasing s through a view could be read after being overwritten.
        bool aliased = false;
        for (int k = 0; k < TENSOR_MAX_SRC; k++) {
            const struct tensor *o = t->src[k];
            if (o && o != s && tensor_storage_root(o) == s) {
                aliased = true;
            }
        }
        if (!aliased) {
            return s;
        }
    }
    return NULL;
}

static void release(struct fit *f, const struct tensor *t, size_t align)
{
    struct plan *p = f->p;
    if (t->id < 0 || p->state[t->id] != ST_LIVE || (t->flags & TENSOR_FLAG_OUTPUT)) {
        return;
    }
    p->state[t->id] = ST_DONE;
    fit_free(f, p->offs[t->id], aligned_bytes(t, align));
}

enum llem_err plan_build(struct plan *p, const struct graph *gr, size_t align, plan_work_fn work,
                         void *work_user, struct llem_errbuf *eb)
{
    p->n = 0;
    p->peak_bytes = 0;
    p->naive_bytes = 0;
    enum llem_err err = graph_error(gr, eb);
    if (err != LLEM_OK) {
        return err;
    }
    if (align == 0 || (align & (align - 1)) != 0) {
        return llem_errf(eb, LLEM_EINVAL, "plan: alignment %zu is not a power of two", align);
    }
    const int n = graph_n_tensors(gr);
    if (!grow_arrays(p, n)) {
        return llem_errf(eb, LLEM_ENOMEM, "plan: out of memory for %d tensors", n);
    }
    // Pass 1: lifetimes. Reading a view is reading its root's storage.
    for (int i = 0; i < n; i++) {
        const struct tensor *t = graph_tensor(gr, i);
        p->offs[i] = PLAN_NO_OFFSET;
        p->work_offs[i] = PLAN_NO_OFFSET;
        p->work_bytes[i] = 0;
        p->inplace[i] = -1;
        p->state[i] = ST_NONE;
        p->last_use[i] = i;
        if (t->op == OP_NONE && !t->buf && !(t->flags & TENSOR_FLAG_INPUT)) {
            return llem_errf(eb, LLEM_EINVAL, "plan: leaf '%s' has no storage and is not an input",
                             t->name);
        }
        for (int k = 0; k < TENSOR_MAX_SRC; k++) {
            if (t->src[k]) {
                const struct tensor *r = tensor_storage_root(t->src[k]);
                bool ours = is_ours(gr, r, n);
                if (!ours && !r->buf) {
                    return llem_errf(eb, LLEM_EINVAL, "plan: '%s' reads '%s', which has no storage",
                                     t->name, r->name);
                }
                if (ours && p->last_use[r->id] < i) {
                    p->last_use[r->id] = i;
                }
            }
        }
        if (t->view_src) {
            const struct tensor *r = tensor_storage_root(t);
            if (is_ours(gr, r, n)) {
                if (p->last_use[r->id] < i) {
                    p->last_use[r->id] = i;
                }
                if (t->flags & TENSOR_FLAG_OUTPUT) {
                    p->last_use[r->id] = n; // an output view keeps its root alive to the end
                }
            }
        }
        if (t->flags & TENSOR_FLAG_OUTPUT) {
            p->last_use[i] = n;
        }
    }
    struct fit f = {.p = p};
    // Inputs are written before compute starts, so they are placed before any node runs.
    for (int i = 0; i < n; i++) {
        const struct tensor *t = graph_tensor(gr, i);
        if (t->op == OP_NONE && needs_memory(t)) {
            size_t sz = aligned_bytes(t, align);
            p->offs[i] = fit_alloc(&f, sz);
            p->state[i] = ST_LIVE;
            p->naive_bytes += sz;
        }
    }
    // Pass 2: place results and scratch in execution order, releasing what dies.
    for (int i = 0; i < n; i++) {
        const struct tensor *t = graph_tensor(gr, i);
        if (t->op == OP_NONE) {
            continue;
        }
        if (needs_memory(t)) {
            size_t sz = aligned_bytes(t, align);
            p->naive_bytes += sz;
            const struct tensor *s = inplace_source(p, gr, t, i);
            if (s) {
                p->offs[i] = p->offs[s->id];
                p->inplace[i] = s->id;
                p->state[s->id] = ST_DONE; // its storage now belongs to t
            } else {
                p->offs[i] = fit_alloc(&f, sz);
            }
            p->state[i] = ST_LIVE;
        }
        size_t wb = (work && !tensor_op_is_view(t->op)) ? work(t, work_user) : 0;
        if (wb > 0) {
            wb = (wb + align - 1) & ~(align - 1);
            p->work_offs[i] = fit_alloc(&f, wb);
            p->work_bytes[i] = wb;
            p->naive_bytes += wb;
            fit_free(&f, p->work_offs[i], wb);
        }
        // Release the sources (through views) whose last reader is this node, and the result
        // itself if nothing reads it.
        for (int k = 0; k < TENSOR_MAX_SRC; k++) {
            if (t->src[k]) {
                const struct tensor *r = tensor_storage_root(t->src[k]);
                if (is_ours(gr, r, n) && p->last_use[r->id] == i) {
                    release(&f, r, align);
                }
            }
        }
        if (t->view_src) {
            const struct tensor *r = tensor_storage_root(t);
            if (is_ours(gr, r, n) && p->last_use[r->id] == i) {
                release(&f, r, align);
            }
        } else if (p->last_use[i] == i) {
            release(&f, t, align);
        }
    }
    p->n = n;
    p->peak_bytes = f.peak;
    return LLEM_OK;
}

size_t plan_offset(const struct plan *p, const struct tensor *t)
{
    if (t->id < 0 || t->id >= p->n) {
        return PLAN_NO_OFFSET;
    }
    return p->offs[t->id];
}
