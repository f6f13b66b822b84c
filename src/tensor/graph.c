// tensor/graph.c: op recording. Every op_* checks its operands' shapes and types, then
// appends one tensor to the graph's pool (chunks that survive graph_reset, so a warm graph
// allocates nothing). Shape errors become the graph's sticky error and a placeholder result,
// so architecture code reads like math and checks once (graph_error) before planning.
#include "tensor/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

#define GRAPH_CHUNK 256 // tensors per pool chunk (~64 KiB)

struct graph {
    struct tensor **chunks; // [n_chunks] arrays of GRAPH_CHUNK tensors, kept across resets
    int n_chunks;
    int cap_chunks;
    int n;                  // tensors in use
    struct llem_errbuf err; // first recording error (code LLEM_OK if none)
    struct tensor dummy;    // returned by ops once the graph is in error
    struct backend_buffer *compute_buf;
    const struct plan *plan;
};

enum llem_err graph_new(struct graph **out, struct llem_errbuf *eb)
{
    *out = NULL;
    struct graph *gr = llem_calloc(1, sizeof *gr);
    if (!gr) {
        return llem_errf(eb, LLEM_ENOMEM, "graph: out of memory");
    }
    graph_reset(gr);
    *out = gr;
    return LLEM_OK;
}

void graph_free(struct graph *gr)
{
    if (!gr) {
        return;
    }
    for (int i = 0; i < gr->n_chunks; i++) {
        llem_free(gr->chunks[i]);
    }
    llem_free(gr->chunks);
    llem_free(gr);
}

static void dummy_init(struct tensor *t)
{
    memset(t, 0, sizeof *t);
    t->type = GGML_TYPE_F32;
    t->ne[0] = t->ne[1] = t->ne[2] = t->ne[3] = 1;
    t->nb[0] = t->nb[1] = t->nb[2] = t->nb[3] = sizeof(float);
    t->id = -1;
    memcpy(t->name, "(error)", 8);
}

void graph_reset(struct graph *gr)
{
    gr->n = 0;
    gr->err.code = LLEM_OK;
    gr->err.msg[0] = '\0';
    gr->compute_buf = NULL;
    gr->plan = NULL;
    dummy_init(&gr->dummy);
}

enum llem_err graph_error(const struct graph *gr, struct llem_errbuf *eb)
{
    if (gr->err.code != LLEM_OK && eb) {
        *eb = gr->err;
    }
    return gr->err.code;
}

int graph_n_tensors(const struct graph *gr)
{
    return gr->n;
}

struct tensor *graph_tensor(const struct graph *gr, int i)
{
    if (i < 0 || i >= gr->n) {
        return NULL;
    }
    return &gr->chunks[i / GRAPH_CHUNK][i % GRAPH_CHUNK];
}

void graph_bind_compute(struct graph *gr, struct backend_buffer *buf, const struct plan *plan)
{
    gr->compute_buf = buf;
    gr->plan = plan;
}

struct backend_buffer *graph_compute_buffer(const struct graph *gr)
{
    return gr->compute_buf;
}

const struct plan *graph_plan(const struct graph *gr)
{
    return gr->plan;
}

// ---- recording helpers ---------------------------------------------------------------------

LLEM_PRINTF(2, 3) static struct tensor *fail(struct graph *gr, const char *fmt, ...)
{
    if (gr->err.code == LLEM_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(gr->err.msg, sizeof gr->err.msg, fmt, ap);
        va_end(ap);
        gr->err.code = LLEM_EINVAL;
    }
    dummy_init(&gr->dummy);
    return &gr->dummy;
}

struct tensor *graph_fail(struct graph *gr, const char *msg)
{
    return fail(gr, "%s", msg);
}

static struct tensor *fail_nomem(struct graph *gr)
{
    bool first = gr->err.code == LLEM_OK;
    struct tensor *t = fail(gr, "graph: out of memory for tensor %d", gr->n);
    if (first) {
        gr->err.code = LLEM_ENOMEM;
    }
    return t;
}

// True when the graph already failed or t is the placeholder (so one error does not cascade).
static bool bad(const struct graph *gr, const struct tensor *t)
{
    return gr->err.code != LLEM_OK || t == NULL || t == &gr->dummy;
}

static struct tensor *pool_take(struct graph *gr)
{
    int c = gr->n / GRAPH_CHUNK;
    if (c >= gr->n_chunks) {
        if (gr->n_chunks == gr->cap_chunks) {
            int cap = gr->cap_chunks ? gr->cap_chunks * 2 : 8;
            struct tensor **nc = llem_realloc(gr->chunks, (size_t)cap * sizeof *nc);
            if (!nc) {
                return NULL;
            }
            gr->chunks = nc;
            gr->cap_chunks = cap;
        }
        struct tensor *chunk = llem_malloc(GRAPH_CHUNK * sizeof *chunk);
        if (!chunk) {
            return NULL;
        }
        gr->chunks[gr->n_chunks++] = chunk;
    }
    struct tensor *t = &gr->chunks[c][gr->n % GRAPH_CHUNK];
    memset(t, 0, sizeof *t);
    t->id = gr->n++;
    return t;
}

// A new tensor of `type` and shape ne (contiguous strides), produced by op from srcs.
static struct tensor *new_tensor(struct graph *gr, uint32_t type, const int64_t ne[4],
                                 enum tensor_op op, const char *name)
{
    int64_t blck = tensor_type_blck(type);
    size_t tsize = tensor_type_size(type);
    if (blck <= 0 || tsize == 0) {
        return fail(gr, "%s: unsupported type %u", tensor_op_name(op), type);
    }
    if (ne[0] % blck != 0) {
        return fail(gr, "%s: ne[0] %lld not a multiple of the %s block", tensor_op_name(op),
                    (long long)ne[0], tensor_type_name(type));
    }
    size_t nb[4];
    nb[0] = tsize;
    nb[1] = tsize * (size_t)(ne[0] / blck);
    for (int i = 0; i < 4; i++) {
        if (ne[i] < 1) {
            return fail(gr, "%s: dim %d is %lld", tensor_op_name(op), i, (long long)ne[i]);
        }
        if (i >= 2 && !size_mul_ok(nb[i - 1], (size_t)ne[i - 1], &nb[i])) {
            return fail(gr, "%s: size overflows", tensor_op_name(op));
        }
    }
    size_t total;
    if (!size_mul_ok(nb[3], (size_t)ne[3], &total)) {
        return fail(gr, "%s: size overflows", tensor_op_name(op));
    }
    struct tensor *t = pool_take(gr);
    if (!t) {
        return fail_nomem(gr);
    }
    t->type = type;
    for (int i = 0; i < 4; i++) {
        t->ne[i] = ne[i];
        t->nb[i] = nb[i];
    }
    t->op = op;
    tensor_set_name(t, name ? name : tensor_op_name(op));
    return t;
}

// A tensor aliasing x's storage with the given shape/strides at byte offset offs into x.
static struct tensor *new_view(struct graph *gr, struct tensor *x, enum tensor_op op,
                               const int64_t ne[4], const size_t nb[4], size_t offs)
{
    const struct tensor *root = tensor_storage_root(x);
    struct tensor probe = *x;
    for (int i = 0; i < 4; i++) {
        probe.ne[i] = ne[i];
        probe.nb[i] = nb[i];
    }
    size_t base = x->view_offs + offs;
    size_t end;
    if (ne[0] % LLEM_MAX(tensor_type_blck(x->type), 1) != 0 ||
        !size_add_ok(base, tensor_nbytes(&probe), &end) || end > tensor_nbytes(root)) {
        return fail(gr, "%s of '%s': view [%zu, +%zu) outside its %zu bytes", tensor_op_name(op),
                    x->name, base, tensor_nbytes(&probe), tensor_nbytes(root));
    }
    struct tensor *t = pool_take(gr);
    if (!t) {
        return fail_nomem(gr);
    }
    t->type = x->type;
    for (int i = 0; i < 4; i++) {
        t->ne[i] = ne[i];
        t->nb[i] = nb[i];
    }
    t->op = op;
    t->src[0] = x;
    t->view_src = (struct tensor *)root;
    t->view_offs = base;
    t->p.view.offs = offs;
    tensor_set_name(t, x->name);
    return t;
}

static const int64_t *shape_of(const struct tensor *t)
{
    return t->ne;
}

static bool is_f32(const struct tensor *t)
{
    return t->type == GGML_TYPE_F32;
}

// ---- leaves ------------------------------------------------------------------------------------

struct tensor *graph_input(struct graph *gr, const char *name, uint32_t type, int64_t ne0,
                           int64_t ne1, int64_t ne2, int64_t ne3)
{
    if (gr->err.code != LLEM_OK) {
        return &gr->dummy;
    }
    const int64_t ne[4] = {ne0, ne1, ne2, ne3};
    struct tensor *t = new_tensor(gr, type, ne, OP_NONE, name);
    if (t != &gr->dummy) {
        t->flags |= TENSOR_FLAG_INPUT;
    }
    return t;
}

void graph_set_output(struct graph *gr, struct tensor *t)
{
    if (!bad(gr, t)) {
        t->flags |= TENSOR_FLAG_OUTPUT;
    }
}

// ---- ops -----------------------------------------------------------------------------------------

struct tensor *op_get_rows(struct graph *gr, struct tensor *table, struct tensor *ids)
{
    if (bad(gr, table) || bad(gr, ids)) {
        return &gr->dummy;
    }
    const struct type_traits *tr = tensor_traits(table->type);
    if (!tr || !tr->to_f32 || ids->type != GGML_TYPE_I32) {
        return fail(gr, "get_rows: table '%s' type %s / ids type %s unsupported", table->name,
                    tensor_type_name(table->type), tensor_type_name(ids->type));
    }
    if (ids->ne[3] != 1 || ids->ne[1] != table->ne[2] || ids->ne[2] != table->ne[3] ||
        table->nb[0] != tr->type_size) {
        return fail(gr, "get_rows: ids [%lld,%lld,%lld] do not match table '%s'",
                    (long long)ids->ne[0], (long long)ids->ne[1], (long long)ids->ne[2],
                    table->name);
    }
    const int64_t ne[4] = {table->ne[0], ids->ne[0], ids->ne[1], ids->ne[2]};
    struct tensor *t = new_tensor(gr, GGML_TYPE_F32, ne, OP_GET_ROWS, NULL);
    t->src[0] = table;
    t->src[1] = ids;
    return t;
}

static struct tensor *binary(struct graph *gr, enum tensor_op op, struct tensor *a,
                             struct tensor *b)
{
    if (bad(gr, a) || bad(gr, b)) {
        return &gr->dummy;
    }
    if (!is_f32(a) || !is_f32(b)) {
        return fail(gr, "%s: '%s' and '%s' must be F32", tensor_op_name(op), a->name, b->name);
    }
    if (!tensor_can_repeat(b, a)) {
        return fail(gr, "%s: '%s' [%lld,%lld,%lld,%lld] does not broadcast to '%s'",
                    tensor_op_name(op), b->name, (long long)b->ne[0], (long long)b->ne[1],
                    (long long)b->ne[2], (long long)b->ne[3], a->name);
    }
    struct tensor *t = new_tensor(gr, GGML_TYPE_F32, shape_of(a), op, NULL);
    t->src[0] = a;
    t->src[1] = b;
    return t;
}

struct tensor *op_add(struct graph *gr, struct tensor *a, struct tensor *b)
{
    return binary(gr, OP_ADD, a, b);
}

struct tensor *op_mul(struct graph *gr, struct tensor *a, struct tensor *b)
{
    return binary(gr, OP_MUL, a, b);
}

static struct tensor *unary(struct graph *gr, enum tensor_op op, struct tensor *x)
{
    if (bad(gr, x)) {
        return &gr->dummy;
    }
    if (!is_f32(x)) {
        return fail(gr, "%s: '%s' must be F32", tensor_op_name(op), x->name);
    }
    struct tensor *t = new_tensor(gr, GGML_TYPE_F32, shape_of(x), op, NULL);
    t->src[0] = x;
    return t;
}

struct tensor *op_scale_bias(struct graph *gr, struct tensor *x, float s, float b)
{
    struct tensor *t = unary(gr, OP_SCALE, x);
    t->p.scale.s = s;
    t->p.scale.b = b;
    return t;
}

struct tensor *op_scale(struct graph *gr, struct tensor *x, float s)
{
    return op_scale_bias(gr, x, s, 0.0f);
}

struct tensor *op_rms_norm(struct graph *gr, struct tensor *x, float eps)
{
    struct tensor *t = unary(gr, OP_RMS_NORM, x);
    t->p.rms_norm.eps = eps;
    return t;
}

struct tensor *op_silu(struct graph *gr, struct tensor *x)
{
    return unary(gr, OP_SILU, x);
}

struct tensor *op_swiglu(struct graph *gr, struct tensor *a, struct tensor *b)
{
    if (bad(gr, a) || bad(gr, b)) {
        return &gr->dummy;
    }
    if (!tensor_same_shape(a, b)) {
        return fail(gr, "swiglu: '%s' and '%s' differ in shape", a->name, b->name);
    }
    struct tensor *t = unary(gr, OP_SWIGLU, a);
    if (!is_f32(b)) {
        return fail(gr, "swiglu: '%s' must be F32", b->name);
    }
    t->src[1] = b;
    return t;
}

struct tensor *op_mul_mat(struct graph *gr, struct tensor *w, struct tensor *x)
{
    if (bad(gr, w) || bad(gr, x)) {
        return &gr->dummy;
    }
    const struct type_traits *tr = tensor_traits(w->type);
    if (!tr || !tr->to_f32 || !is_f32(x)) {
        return fail(gr, "mul_mat: '%s' (%s) x '%s' (%s) unsupported", w->name,
                    tensor_type_name(w->type), x->name, tensor_type_name(x->type));
    }
    if (w->ne[0] != x->ne[0] || x->ne[2] % w->ne[2] != 0 || x->ne[3] % w->ne[3] != 0) {
        return fail(gr, "mul_mat: '%s' [%lld,%lld,%lld,%lld] x '%s' [%lld,%lld,%lld,%lld]", w->name,
                    (long long)w->ne[0], (long long)w->ne[1], (long long)w->ne[2],
                    (long long)w->ne[3], x->name, (long long)x->ne[0], (long long)x->ne[1],
                    (long long)x->ne[2], (long long)x->ne[3]);
    }
    if (w->nb[0] != tr->type_size || x->nb[0] != sizeof(float)) {
        return fail(gr, "mul_mat: rows of '%s' / '%s' must be contiguous (op_cont first)", w->name,
                    x->name);
    }
    const int64_t ne[4] = {w->ne[1], x->ne[1], x->ne[2], x->ne[3]};
    struct tensor *t = new_tensor(gr, GGML_TYPE_F32, ne, OP_MUL_MAT, NULL);
    t->src[0] = w;
    t->src[1] = x;
    return t;
}

struct tensor *op_rope(struct graph *gr, struct tensor *x, struct tensor *pos,
                       struct tensor *freq_factors, const struct op_rope_params *p)
{
    if (bad(gr, x) || bad(gr, pos) || (freq_factors && bad(gr, freq_factors))) {
        return &gr->dummy;
    }
    if (!is_f32(x) || pos->type != GGML_TYPE_I32 || pos->ne[0] != x->ne[2] || x->ne[3] != 1) {
        return fail(gr, "rope: '%s' [.., n_tokens %lld] with positions '%s' [%lld] (I32)", x->name,
                    (long long)x->ne[2], pos->name, (long long)pos->ne[0]);
    }
    if (p->n_rot <= 0 || p->n_rot % 2 != 0 || p->n_rot > x->ne[0] ||
        (p->mode != ROPE_NORMAL && p->mode != ROPE_NEOX)) {
        return fail(gr, "rope: n_rot %d / mode %d invalid for head size %lld", p->n_rot, p->mode,
                    (long long)x->ne[0]);
    }
    if (freq_factors && (!is_f32(freq_factors) || freq_factors->ne[0] < p->n_rot / 2)) {
        return fail(gr, "rope: freq_factors '%s' must be F32 [>= %d]", freq_factors->name,
                    p->n_rot / 2);
    }
    struct tensor *t = unary(gr, OP_ROPE, x);
    t->src[1] = pos;
    t->src[2] = freq_factors;
    t->p.rope = *p;
    return t;
}

static bool mask_ok(const struct tensor *m, int64_t n_kv, int64_t n_q, int64_t n_head, int64_t b3)
{
    return (m->type == GGML_TYPE_F32 || m->type == GGML_TYPE_F16) && m->ne[0] == n_kv &&
           m->ne[1] >= n_q && n_head % m->ne[2] == 0 && b3 % m->ne[3] == 0 &&
           m->nb[0] == tensor_type_size(m->type);
}

struct tensor *op_softmax_ext(struct graph *gr, struct tensor *x, struct tensor *mask, float scale,
                              struct tensor *sinks)
{
    if (bad(gr, x) || (mask && bad(gr, mask)) || (sinks && bad(gr, sinks))) {
        return &gr->dummy;
    }
    if (mask && !mask_ok(mask, x->ne[0], x->ne[1], x->ne[2], x->ne[3])) {
        return fail(gr, "softmax: mask '%s' does not fit '%s'", mask->name, x->name);
    }
    if (sinks && (!is_f32(sinks) || sinks->ne[0] != x->ne[2])) {
        return fail(gr, "softmax: sinks '%s' must be F32 [n_head %lld]", sinks->name,
                    (long long)x->ne[2]);
    }
    struct tensor *t = unary(gr, OP_SOFTMAX, x);
    t->src[1] = mask;
    t->src[2] = sinks;
    t->p.softmax.scale = scale;
    return t;
}

static bool convertible(uint32_t from, uint32_t to)
{
    if (from == to) {
        return tensor_traits(from) != NULL;
    }
    const struct type_traits *tf = tensor_traits(from), *tt = tensor_traits(to);
    if (!tf || !tt || !tf->to_f32) {
        return false;
    }
    return to == GGML_TYPE_F32 ||
           ((from == GGML_TYPE_F32 || from == GGML_TYPE_F16) && tt->from_f32 != NULL);
}

struct tensor *op_cpy(struct graph *gr, struct tensor *src, struct tensor *dst)
{
    if (bad(gr, src) || bad(gr, dst)) {
        return &gr->dummy;
    }
    if (tensor_nelements(src) != tensor_nelements(dst) || !convertible(src->type, dst->type) ||
        (src->type != dst->type && dst->ne[0] != src->ne[0])) {
        return fail(gr, "cpy: '%s' (%s) -> '%s' (%s) unsupported", src->name,
                    tensor_type_name(src->type), dst->name, tensor_type_name(dst->type));
    }
    struct tensor *t = new_view(gr, dst, OP_CPY, dst->ne, dst->nb, 0);
    t->src[0] = src;
    t->src[1] = dst;
    return t;
}

struct tensor *op_cont_type(struct graph *gr, struct tensor *x, uint32_t type)
{
    if (bad(gr, x)) {
        return &gr->dummy;
    }
    if (!convertible(x->type, type)) {
        return fail(gr, "cont: '%s' %s -> %s unsupported", x->name, tensor_type_name(x->type),
                    tensor_type_name(type));
    }
    struct tensor *t = new_tensor(gr, type, shape_of(x), OP_CONT, NULL);
    t->src[0] = x;
    t->p.cont.type = type;
    return t;
}

struct tensor *op_cont(struct graph *gr, struct tensor *x)
{
    return op_cont_type(gr, x, x ? x->type : GGML_TYPE_F32);
}

struct tensor *op_set_rows(struct graph *gr, struct tensor *dst, struct tensor *src,
                           struct tensor *idx)
{
    if (bad(gr, dst) || bad(gr, src) || bad(gr, idx)) {
        return &gr->dummy;
    }
    if ((src->type != GGML_TYPE_F32 && src->type != dst->type) ||
        !convertible(src->type, dst->type) ||
        (idx->type != GGML_TYPE_I32 && idx->type != GGML_TYPE_I64)) {
        return fail(gr, "set_rows: '%s' (%s) into '%s' (%s) at '%s' (%s) unsupported", src->name,
                    tensor_type_name(src->type), dst->name, tensor_type_name(dst->type), idx->name,
                    tensor_type_name(idx->type));
    }
    if (src->ne[0] != dst->ne[0] || src->ne[2] != dst->ne[2] || src->ne[3] != dst->ne[3] ||
        idx->ne[0] != src->ne[1] || src->ne[2] % idx->ne[1] != 0 || src->ne[3] % idx->ne[2] != 0 ||
        idx->ne[3] != 1) {
        return fail(gr, "set_rows: shapes of '%s', '%s', '%s' do not match", dst->name, src->name,
                    idx->name);
    }
    struct tensor *t = new_view(gr, dst, OP_SET_ROWS, dst->ne, dst->nb, 0);
    t->src[0] = src;
    t->src[1] = idx;
    t->src[2] = dst;
    return t;
}

struct tensor *op_flash_attn_ext(struct graph *gr, struct tensor *q, struct tensor *k,
                                 struct tensor *v, struct tensor *mask, float scale,
                                 struct tensor *sinks)
{
    if (bad(gr, q) || bad(gr, k) || bad(gr, v) || (mask && bad(gr, mask)) ||
        (sinks && bad(gr, sinks))) {
        return &gr->dummy;
    }
    const struct type_traits *tk = tensor_traits(k->type), *tv = tensor_traits(v->type);
    if (!is_f32(q) || !tk || !tk->to_f32 || !tv || !tv->to_f32 || q->nb[0] != sizeof(float) ||
        k->nb[0] != tk->type_size || v->nb[0] != tv->type_size) {
        return fail(gr, "flash_attn: types q %s k %s v %s (or layout) unsupported",
                    tensor_type_name(q->type), tensor_type_name(k->type),
                    tensor_type_name(v->type));
    }
    if (q->ne[0] != k->ne[0] || k->ne[1] != v->ne[1] || k->ne[2] != v->ne[2] ||
        q->ne[2] % k->ne[2] != 0 || k->ne[3] != v->ne[3] || q->ne[3] % k->ne[3] != 0) {
        return fail(gr,
                    "flash_attn: q '%s' [%lld,%lld,%lld] k '%s' [%lld,%lld,%lld] v '%s' "
                    "[%lld,%lld,%lld] do not match",
                    q->name, (long long)q->ne[0], (long long)q->ne[1], (long long)q->ne[2], k->name,
                    (long long)k->ne[0], (long long)k->ne[1], (long long)k->ne[2], v->name,
                    (long long)v->ne[0], (long long)v->ne[1], (long long)v->ne[2]);
    }
    if (mask && !mask_ok(mask, k->ne[1], q->ne[1], q->ne[2], q->ne[3])) {
        return fail(gr, "flash_attn: mask '%s' does not fit [n_kv %lld, n_q %lld]", mask->name,
                    (long long)k->ne[1], (long long)q->ne[1]);
    }
    if (sinks && (!is_f32(sinks) || sinks->ne[0] != q->ne[2])) {
        return fail(gr, "flash_attn: sinks '%s' must be F32 [n_head %lld]", sinks->name,
                    (long long)q->ne[2]);
    }
    const int64_t ne[4] = {v->ne[0], q->ne[2], q->ne[1], q->ne[3]};
    struct tensor *t = new_tensor(gr, GGML_TYPE_F32, ne, OP_FLASH_ATTN, NULL);
    t->src[0] = q;
    t->src[1] = k;
    t->src[2] = v;
    t->src[3] = mask;
    t->src[4] = sinks;
    t->p.flash_attn.scale = scale;
    return t;
}

// ---- views ---------------------------------------------------------------------------------------

struct tensor *op_view_4d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1, int64_t ne2,
                          int64_t ne3, size_t nb1, size_t nb2, size_t nb3, size_t offs)
{
    if (bad(gr, x)) {
        return &gr->dummy;
    }
    const int64_t ne[4] = {ne0, ne1, ne2, ne3};
    for (int i = 0; i < 4; i++) {
        if (ne[i] < 1) {
            return fail(gr, "view of '%s': dim %d is %lld", x->name, i, (long long)ne[i]);
        }
    }
    const size_t nb[4] = {x->nb[0], nb1, nb2, nb3};
    return new_view(gr, x, OP_VIEW, ne, nb, offs);
}

struct tensor *op_view_3d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1, int64_t ne2,
                          size_t nb1, size_t nb2, size_t offs)
{
    return op_view_4d(gr, x, ne0, ne1, ne2, 1, nb1, nb2, nb2 * (size_t)ne2, offs);
}

struct tensor *op_view_2d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1, size_t nb1,
                          size_t offs)
{
    return op_view_4d(gr, x, ne0, ne1, 1, 1, nb1, nb1 * (size_t)ne1, nb1 * (size_t)ne1, offs);
}

struct tensor *op_view_1d(struct graph *gr, struct tensor *x, int64_t ne0, size_t offs)
{
    if (bad(gr, x)) {
        return &gr->dummy;
    }
    size_t row = gguf_row_bytes(x->type, ne0);
    return op_view_4d(gr, x, ne0, 1, 1, 1, row, row, row, offs);
}

struct tensor *op_reshape_4d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1,
                             int64_t ne2, int64_t ne3)
{
    if (bad(gr, x)) {
        return &gr->dummy;
    }
    if (!tensor_is_contiguous(x) || ne0 < 1 || ne1 < 1 || ne2 < 1 || ne3 < 1 ||
        ne0 * ne1 * ne2 * ne3 != tensor_nelements(x) ||
        ne0 % LLEM_MAX(tensor_type_blck(x->type), 1) != 0) {
        return fail(gr, "reshape of '%s' to [%lld,%lld,%lld,%lld]: not contiguous or size differs",
                    x->name, (long long)ne0, (long long)ne1, (long long)ne2, (long long)ne3);
    }
    const int64_t ne[4] = {ne0, ne1, ne2, ne3};
    size_t nb[4];
    nb[0] = x->nb[0];
    nb[1] = gguf_row_bytes(x->type, ne0);
    nb[2] = nb[1] * (size_t)ne1;
    nb[3] = nb[2] * (size_t)ne2;
    return new_view(gr, x, OP_RESHAPE, ne, nb, 0);
}

struct tensor *op_reshape_3d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1,
                             int64_t ne2)
{
    return op_reshape_4d(gr, x, ne0, ne1, ne2, 1);
}

struct tensor *op_reshape_2d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1)
{
    return op_reshape_4d(gr, x, ne0, ne1, 1, 1);
}

struct tensor *op_permute(struct graph *gr, struct tensor *x, int a0, int a1, int a2, int a3)
{
    if (bad(gr, x)) {
        return &gr->dummy;
    }
    const int ax[4] = {a0, a1, a2, a3};
    unsigned seen = 0;
    for (int i = 0; i < 4; i++) {
        if (ax[i] < 0 || ax[i] > 3 || (seen & (1u << ax[i]))) {
            return fail(gr, "permute of '%s': (%d,%d,%d,%d) is not a permutation", x->name, a0, a1,
                        a2, a3);
        }
        seen |= 1u << ax[i];
    }
    if (tensor_type_blck(x->type) != 1 && ax[0] != 0) {
        return fail(gr, "permute of '%s': a blocked type keeps dim 0 in place", x->name);
    }
    int64_t ne[4];
    size_t nb[4];
    for (int i = 0; i < 4; i++) {
        ne[ax[i]] = x->ne[i];
        nb[ax[i]] = x->nb[i];
    }
    struct tensor *t = new_view(gr, x, OP_PERMUTE, ne, nb, 0);
    for (int i = 0; i < 4; i++) {
        t->p.view.axes[i] = ax[i];
    }
    return t;
}

struct tensor *op_transpose(struct graph *gr, struct tensor *x)
{
    struct tensor *t = op_permute(gr, x, 1, 0, 2, 3);
    if (t != &gr->dummy) {
        t->op = OP_TRANSPOSE;
    }
    return t;
}
