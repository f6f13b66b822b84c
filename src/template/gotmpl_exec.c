// template/gotmpl_exec.c: executes a parsed Go template (text/template's exec.go semantics
// under Option("missingkey=zero")): walking text/actions/if/range/with/template, pipelines with
// final arguments, variables and their scopes, field chains over maps and Ollama's structs, the
// builtin functions (short-circuit and/or, eq with several arguments, index, slice, printf...)
// and Ollama's json/currentDate/yesterdayDate/toTypeScriptType. Every run is bounded by the caps
// of struct gotmpl_limits. Entry point: gotmpl_exec (gotmpl_ollama.c builds the data).
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/limits.h"
#include "template/gotmpl_int.h"

enum { GX_OK = 0, GX_BREAK = 1000, GX_CONTINUE = 1001 };
// Nested C frames (control structures, parentheses, template calls) in one execution.
#define GX_MAX_NEST 1024u

struct gvar {
    const char *name;
    struct gval v;
};

struct gx {
    const struct gotmpl *t;
    struct gpool *pool;
    struct strbuf *out;
    struct llem_errbuf *eb;
    struct gotmpl_limits lim;
    uint64_t iters, steps;
    unsigned depth, nest;
    struct gvar *vars;
    size_t n_vars, cap_vars, var_base;
    const char *tmpl_name;
    struct strbuf tmp;
};

// Argument kinds of Go's function signatures, which decide how literals and nil convert.
enum { AK_VALUE, AK_ANY, AK_STRING };

void gotmpl_limits_default(struct gotmpl_limits *lim)
{
    memset(lim, 0, sizeof(*lim));
    lim->max_output_bytes = LLEM_TEMPLATE_MAX_OUTPUT_BYTES;
    lim->max_loop_iters = LLEM_TEMPLATE_MAX_LOOP_ITERS;
    lim->max_steps = LLEM_GOTMPL_MAX_STEPS;
    lim->max_memory_bytes = LLEM_GOTMPL_MAX_MEMORY_BYTES;
    lim->max_depth = LLEM_TEMPLATE_MAX_RECURSION;
}

static int xerr(struct gx *x, uint32_t pos, uint32_t end, const char *fmt, ...)
    LLEM_PRINTF(4, 5);
static int xerr(struct gx *x, uint32_t pos, uint32_t end, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line, col;
    gotmpl_line_col(x->t, pos, &line, &col);
    size_t n = end > pos && end <= x->t->src_len ? end - pos : 0;
    const char *ctx = x->t->src + (pos < x->t->src_len ? pos : 0);
    if (n > 20) {
        llem_errf(x->eb, LLEM_EINVAL, "template: %s:%d:%d: executing \"%s\" at <%.20s...>: %s",
                  x->tmpl_name, line, col, x->tmpl_name, ctx, msg);
    } else {
        llem_errf(x->eb, LLEM_EINVAL, "template: %s:%d:%d: executing \"%s\" at <%.*s>: %s",
                  x->tmpl_name, line, col, x->tmpl_name, (int)n, ctx, msg);
    }
    return LLEM_EINVAL;
}

static int xmem(struct gx *x)
{
    if (x->pool->over_cap) {
        return llem_errf(x->eb, LLEM_ELIMIT,
                         "template: execution used more than %zu bytes of memory",
                         x->lim.max_memory_bytes);
    }
    return llem_errf(x->eb, LLEM_ENOMEM, "template: out of memory");
}

static int xout(struct gx *x, enum llem_err e)
{
    if (e == LLEM_ELIMIT) {
        return llem_errf(x->eb, LLEM_ELIMIT, "template: output exceeds %zu bytes",
                         x->lim.max_output_bytes);
    }
    return e ? llem_errf(x->eb, e, "template: out of memory") : 0;
}

static int step(struct gx *x)
{
    if (++x->steps > x->lim.max_steps) {
        return llem_errf(x->eb, LLEM_ELIMIT, "template: execution exceeds %llu steps",
                         (unsigned long long)x->lim.max_steps);
    }
    return 0;
}

// Copies the scratch buffer into a pool string value.
static int tmp_to_value(struct gx *x, struct gval *out)
{
    char *s = gpool_strndup(x->pool, strbuf_cstr(&x->tmp), x->tmp.len);
    if (!s) return xmem(x);
    *out = gval_str(s, x->tmp.len);
    return 0;
}

static int tmp_err(struct gx *x, enum llem_err e)
{
    if (e == LLEM_ELIMIT) {
        return llem_errf(x->eb, LLEM_ELIMIT, "template: a value exceeds %zu bytes",
                         x->lim.max_output_bytes);
    }
    return llem_errf(x->eb, LLEM_ENOMEM, "template: out of memory");
}

// ---- variables -----------------------------------------------------------------------------
static int push_var(struct gx *x, const char *name, struct gval v)
{
    if (x->n_vars == x->cap_vars) {
        size_t ncap = x->cap_vars ? x->cap_vars * 2 : 32;
        if (ncap > (1u << 20)) {
            return llem_errf(x->eb, LLEM_ELIMIT, "template: too many variables");
        }
        struct gvar *nv = llem_realloc(x->vars, ncap * sizeof(*nv));
        if (!nv) return llem_errf(x->eb, LLEM_ENOMEM, "template: out of memory");
        x->vars = nv;
        x->cap_vars = ncap;
    }
    x->vars[x->n_vars].name = name;
    x->vars[x->n_vars].v = v;
    x->n_vars++;
    return 0;
}

static struct gvar *find_var(struct gx *x, const char *name)
{
    for (size_t k = x->n_vars; k > x->var_base; k--) {
        if (strcmp(x->vars[k - 1].name, name) == 0) return &x->vars[k - 1];
    }
    return NULL;
}

// ---- evaluation ----------------------------------------------------------------------------
static int eval_pipeline(struct gx *x, const struct gval *dot, const struct gpipe *p,
                         struct gval *out);
static int eval_arg(struct gx *x, const struct gval *dot, const struct garg *a, int kind,
                    struct gval *out);
static int walk_list(struct gx *x, const struct gval *dot, const struct glist_node *l);

static bool is_nilish(const struct gval *v)
{
    return v->kind == GK_INVALID || v->kind == GK_NIL;
}

static int not_a_function(struct gx *x, const struct garg *first, size_t nargs, bool has_final)
{
    if (nargs > 1 || has_final) {
        return xerr(x, first->pos, first->end, "can't give argument to non-function %.*s",
                    (int)(first->end - first->pos), x->t->src + first->pos);
    }
    return 0;
}

static int eval_field(struct gx *x, const struct garg *node, const char *name,
                      const struct gval *recv, bool has_args, struct gval *out)
{
    if (recv->kind == GK_INVALID) {
        *out = gval_invalid();
        return 0;
    }
    if (recv->kind == GK_NIL) {
        return xerr(x, node->pos, node->end, "nil pointer evaluating %s.%s",
                    recv->type ? recv->type->name : "interface {}", name);
    }
    if (recv->kind == GK_STRUCT) {
        const struct gtype *t = recv->type;
        for (size_t k = 0; k < t->n_fields; k++) {
            if (strcmp(t->fields[k].name, name) == 0) {
                if (has_args) {
                    return xerr(x, node->pos, node->end,
                                "%s has arguments but cannot be invoked as function", name);
                }
                *out = recv->u.fields[k];
                return 0;
            }
        }
    } else if (recv->kind == GK_MAP) {
        if (has_args) {
            return xerr(x, node->pos, node->end, "%s is not a method but has arguments", name);
        }
        long i = gmap_find(recv->u.map, name, strlen(name));
        if (i >= 0) {
            *out = recv->u.map->vals[i];
            return 0;
        }
        if (!gval_zero(x->pool, recv->type ? recv->type->elem : NULL, out)) return xmem(x);
        return 0;
    }
    return xerr(x, node->pos, node->end, "can't evaluate field %s in type %s", name,
                gval_type_name(recv));
}

static int eval_field_chain(struct gx *x, const struct garg *node, const struct gval *recv,
                            const char *const *idents, size_t n, bool has_args,
                            struct gval *out)
{
    struct gval cur = *recv;
    for (size_t k = 0; k < n; k++) {
        struct gval nx;
        int rc = eval_field(x, node, idents[k], &cur, k + 1 == n && has_args, &nx);
        if (rc) return rc;
        cur = nx;
    }
    *out = cur;
    return 0;
}

static int eval_variable(struct gx *x, const struct garg *a, bool has_args, struct gval *out)
{
    struct gvar *v = find_var(x, a->u.field.idents[0]);
    if (!v) {
        return xerr(x, a->pos, a->end, "undefined variable: %s", a->u.field.idents[0]);
    }
    if (a->u.field.n == 1) {
        if (has_args) return not_a_function(x, a, 2, false);
        *out = v->v;
        return 0;
    }
    struct gval base = v->v;
    return eval_field_chain(x, a, &base, a->u.field.idents + 1, a->u.field.n - 1, has_args, out);
}

static int eval_chain(struct gx *x, const struct gval *dot, const struct garg *a, bool has_args,
                      struct gval *out)
{
    if (a->u.chain.node->type == GA_NIL) {
        return xerr(x, a->pos, a->end, "indirection through explicit nil in %.*s",
                    (int)(a->end - a->pos), x->t->src + a->pos);
    }
    struct gval base;
    int rc = eval_arg(x, dot, a->u.chain.node, AK_ANY, &base);
    if (rc) return rc;
    return eval_field_chain(x, a, &base, a->u.chain.idents, a->u.chain.n, has_args, out);
}

static int ideal_constant(struct gx *x, const struct garg *a, struct gval *out)
{
    if (a->u.num.ideal_float) {
        out->kind = GK_FLOAT;
        out->type = NULL;
        out->u.f = a->u.num.f;
        return 0;
    }
    if (a->u.num.is_int) {
        *out = gval_int(a->u.num.i);
        return 0;
    }
    return xerr(x, a->pos, a->end, "%.*s overflows int", (int)(a->end - a->pos),
                x->t->src + a->pos);
}

static int eval_function(struct gx *x, const struct gval *dot, const struct garg *fn,
                         struct garg *const *args, size_t nargs, bool has_final,
                         const struct gval *final, struct gval *out);

static int eval_arg(struct gx *x, const struct gval *dot, const struct garg *a, int kind,
                    struct gval *out)
{
    int rc = 0;
    struct gval v = gval_invalid();
    switch (a->type) {
    case GA_DOT: v = *dot; break;
    case GA_NIL:
        if (kind == AK_STRING) {
            return xerr(x, a->pos, a->end, "cannot assign nil to string");
        }
        v.kind = GK_NIL;
        *out = v;
        return 0;
    case GA_FIELD: rc = eval_field_chain(x, a, dot, a->u.field.idents, a->u.field.n, false, &v);
        break;
    case GA_VAR: rc = eval_variable(x, a, false, &v); break;
    case GA_PIPE: rc = eval_pipeline(x, dot, a->u.pipe, &v); break;
    case GA_FUNC: rc = eval_function(x, dot, a, NULL, 0, false, NULL, &v); break;
    case GA_CHAIN: rc = eval_chain(x, dot, a, false, &v); break;
    case GA_BOOL:
        if (kind == AK_STRING) return xerr(x, a->pos, a->end, "expected string; found %s",
                                           a->u.b ? "true" : "false");
        *out = gval_bool(a->u.b);
        return 0;
    case GA_NUMBER:
        if (kind == AK_STRING) return xerr(x, a->pos, a->end, "expected string; found %.*s",
                                           (int)(a->end - a->pos), x->t->src + a->pos);
        return ideal_constant(x, a, out);
    case GA_STRING:
        *out = gval_str(a->u.str.p, a->u.str.n);
        return 0;
    default:
        return xerr(x, a->pos, a->end, "can't handle argument");
    }
    if (rc) return rc;
    if (kind == AK_STRING && v.kind != GK_STRING) {
        if (v.kind == GK_INVALID) {
            return xerr(x, a->pos, a->end, "invalid value; expected string");
        }
        return xerr(x, a->pos, a->end, "wrong type for value; expected string; got %s",
                    gval_type_name(&v));
    }
    if (kind == AK_ANY && v.kind == GK_INVALID) {
        v.kind = GK_NIL; // an untyped nil interface{}
    }
    *out = v;
    return 0;
}

// Go's basicKind for comparisons: 1 bool, 2 int, 3 float, 4 string, 0 other/invalid.
static int basic_kind(const struct gval *v)
{
    switch (v->kind) {
    case GK_BOOL: return 1;
    case GK_INT: return 2;
    case GK_FLOAT: return 3;
    case GK_STRING: return 4;
    default: return 0;
    }
}

static bool nil_like(const struct gval *v)
{
    return is_nilish(v) || (v->kind == GK_LIST && !v->u.list) || (v->kind == GK_MAP && !v->u.map);
}

// eq: 1 true, 0 false, <0 error text in *why.
static int cmp_eq(const struct gval *a, const struct gval *b, const char **why)
{
    int k1 = basic_kind(a), k2 = basic_kind(b);
    if (k1 != k2) {
        if (!is_nilish(a) && !is_nilish(b) && (k1 || k2)) {
            *why = "incompatible types for comparison";
            return -1;
        }
        if (k1 && k2) return 0;
        if (!k1 && !k2) goto other;
        return 0;
    }
    switch (k1) {
    case 1: return a->u.b == b->u.b;
    case 2: return a->u.i == b->u.i;
    case 3: return a->u.f == b->u.f;
    case 4: return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
    default: break;
    }
other:
    if (nil_like(a) || nil_like(b)) return nil_like(a) == nil_like(b);
    if (a->kind == GK_STRUCT && b->kind == GK_STRUCT && a->type == b->type && a->type->ptr) {
        return a->u.fields == b->u.fields;
    }
    *why = "non-comparable type";
    return -1;
}

static int cmp_lt(const struct gval *a, const struct gval *b, const char **why)
{
    int k1 = basic_kind(a), k2 = basic_kind(b);
    if (!k1 || !k2) {
        *why = "invalid type for comparison";
        return -1;
    }
    if (k1 != k2) {
        *why = "incompatible types for comparison";
        return -1;
    }
    switch (k1) {
    case 2: return a->u.i < b->u.i;
    case 3: return a->u.f < b->u.f;
    case 4: {
        size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = memcmp(a->u.s.p, b->u.s.p, n);
        return c < 0 || (c == 0 && a->u.s.n < b->u.s.n);
    }
    default:
        *why = "invalid type for comparison";
        return -1;
    }
}

static int index_arg(const struct gval *idx, int64_t cap, int64_t *out, char *why, size_t wn)
{
    if (idx->kind == GK_INT) {
        if (idx->u.i < 0 || idx->u.i > cap) {
            snprintf(why, wn, "index out of range: %lld", (long long)idx->u.i);
            return -1;
        }
        *out = idx->u.i;
        return 0;
    }
    if (is_nilish(idx)) {
        snprintf(why, wn, "cannot index slice/array with nil");
    } else {
        snprintf(why, wn, "cannot index slice/array with type %s", gval_type_name(idx));
    }
    return -1;
}

static void url_escape(struct strbuf *sb, const char *s, size_t n, enum llem_err *e)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t k = 0; k < n && !*e; k++) {
        unsigned char c = (unsigned char)s[k];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *e = strbuf_append_char(sb, (char)c);
        } else if (c == ' ') {
            *e = strbuf_append_char(sb, '+');
        } else {
            char b[3] = {'%', hx[c >> 4], hx[c & 15]};
            *e = strbuf_append(sb, b, 3);
        }
    }
}

static void html_escape(struct strbuf *sb, const char *s, size_t n, enum llem_err *e)
{
    for (size_t k = 0; k < n && !*e; k++) {
        switch (s[k]) {
        case '"': *e = strbuf_append_str(sb, "&#34;"); break;
        case '\'': *e = strbuf_append_str(sb, "&#39;"); break;
        case '&': *e = strbuf_append_str(sb, "&amp;"); break;
        case '<': *e = strbuf_append_str(sb, "&lt;"); break;
        case '>': *e = strbuf_append_str(sb, "&gt;"); break;
        case '\0': *e = strbuf_append_str(sb, "\xEF\xBF\xBD"); break;
        default: *e = strbuf_append_char(sb, s[k]);
        }
    }
}

static void js_escape(struct strbuf *sb, const char *s, size_t n, enum llem_err *e)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t k = 0; k < n && !*e; k++) {
        unsigned char c = (unsigned char)s[k];
        switch (c) {
        case '\\': *e = strbuf_append_str(sb, "\\\\"); break;
        case '\'': *e = strbuf_append_str(sb, "\\'"); break;
        case '"': *e = strbuf_append_str(sb, "\\\""); break;
        case '<': *e = strbuf_append_str(sb, "\\u003C"); break;
        case '>': *e = strbuf_append_str(sb, "\\u003E"); break;
        case '&': *e = strbuf_append_str(sb, "\\u0026"); break;
        case '=': *e = strbuf_append_str(sb, "\\u003D"); break;
        default:
            if (c < ' ') {
                char b[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]};
                *e = strbuf_append(sb, b, 6);
            } else {
                *e = strbuf_append_char(sb, (char)c);
            }
        }
    }
}

static int date_value(struct gx *x, int days_back, struct gval *out)
{
    time_t now = x->lim.now_unix ? (time_t)x->lim.now_unix : time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm)) {
        memset(&tm, 0, sizeof(tm));
    }
    if (days_back) {
        tm.tm_mday -= days_back;
        tm.tm_isdst = -1;
        time_t t2 = mktime(&tm);
        if (!localtime_r(&t2, &tm)) memset(&tm, 0, sizeof(tm));
    }
    char buf[32];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    char *s = gpool_strndup(x->pool, buf, strlen(buf));
    if (!s) return xmem(x);
    *out = gval_str(s, strlen(s));
    return 0;
}

static int call_err(struct gx *x, const struct garg *fn, const char *why)
{
    return xerr(x, fn->pos, fn->end, "error calling %s: %s", gotmpl_func_names[fn->u.func], why);
}

static int eval_function(struct gx *x, const struct gval *dot, const struct garg *fn,
                         struct garg *const *args, size_t nargs, bool has_final,
                         const struct gval *final, struct gval *out)
{
    int f = fn->u.func;
    const char *name = gotmpl_func_names[f];
    size_t numin = nargs + (has_final ? 1 : 0);
    // Fixed parameter counts (-1: variadic with `min` fixed ones).
    int fixed = 0, min = 0;
    switch (f) {
    case GF_NOT: case GF_LEN: case GF_JSON: case GF_TOTSTYPE: fixed = 1; break;
    case GF_NE: case GF_LT: case GF_LE: case GF_GT: case GF_GE: fixed = 2; break;
    case GF_AND: case GF_OR: case GF_INDEX: case GF_SLICE: case GF_CALL: case GF_EQ:
    case GF_PRINTF:
        fixed = -1;
        min = 1;
        break;
    default: fixed = -1; min = 0; break;
    }
    if (fixed >= 0 && numin != (size_t)fixed) {
        return xerr(x, fn->pos, fn->end, "wrong number of args for %s: want %d got %zu", name,
                    fixed, numin);
    }
    if (fixed < 0 && numin < (size_t)min) {
        return xerr(x, fn->pos, fn->end, "wrong number of args for %s: want at least %d got %zu",
                    name, min, nargs);
    }
    if (f == GF_AND || f == GF_OR) {
        struct gval v = gval_invalid();
        for (size_t k = 0; k < nargs; k++) {
            int rc = eval_arg(x, dot, args[k], AK_VALUE, &v);
            if (rc) return rc;
            if (gval_truth(&v) == (f == GF_OR)) {
                *out = v;
                return 0;
            }
        }
        if (has_final) v = *final;
        *out = v;
        return 0;
    }
    struct gval small[8];
    struct gval *av = small;
    if (numin > LLEM_ARRAY_LEN(small)) {
        av = gpool_alloc(x->pool, numin * sizeof(*av));
        if (!av) return xmem(x);
    }
    for (size_t k = 0; k < nargs; k++) {
        int kind = AK_VALUE;
        if (f == GF_PRINT || f == GF_PRINTLN || f == GF_HTML || f == GF_JS ||
            f == GF_URLQUERY || f == GF_JSON || f == GF_TOTSTYPE || (f == GF_PRINTF && k > 0)) {
            kind = AK_ANY;
        } else if ((f == GF_PRINTF && k == 0) || f == GF_CURRENTDATE || f == GF_YESTERDAYDATE) {
            kind = AK_STRING;
        }
        int rc = eval_arg(x, dot, args[k], kind, &av[k]);
        if (rc) return rc;
    }
    if (has_final) {
        struct gval fv = *final;
        bool want_string = (f == GF_PRINTF && nargs == 0) || f == GF_CURRENTDATE ||
                           f == GF_YESTERDAYDATE;
        if (want_string && fv.kind != GK_STRING) {
            return xerr(x, fn->pos, fn->end, "wrong type for value; expected string; got %s",
                        gval_type_name(&fv));
        }
        if (fv.kind == GK_INVALID && f != GF_EQ && f != GF_NE && f != GF_LT && f != GF_LE &&
            f != GF_GT && f != GF_GE && f != GF_NOT && f != GF_LEN && f != GF_INDEX &&
            f != GF_SLICE) {
            fv.kind = GK_NIL;
        }
        av[nargs] = fv;
    }
    char why[96];
    const char *w = NULL;
    strbuf_reset(&x->tmp);
    enum llem_err e = LLEM_OK;
    switch (f) {
    case GF_NOT:
        *out = gval_bool(!gval_truth(&av[0]));
        return 0;
    case GF_LEN: {
        int64_t n = gval_len(&av[0]);
        if (is_nilish(&av[0])) return call_err(x, fn, "len of nil pointer");
        if (n < 0) {
            snprintf(why, sizeof(why), "len of type %s", gval_type_name(&av[0]));
            return call_err(x, fn, why);
        }
        *out = gval_int(n);
        return 0;
    }
    case GF_INDEX: {
        struct gval item = av[0];
        if (is_nilish(&item)) return call_err(x, fn, "index of untyped nil");
        for (size_t k = 1; k < numin; k++) {
            const struct gval *ix = &av[k];
            if (is_nilish(&item)) return call_err(x, fn, "index of nil pointer");
            if (item.kind == GK_LIST || item.kind == GK_STRING) {
                int64_t len = gval_len(&item), i;
                if (index_arg(ix, len, &i, why, sizeof(why))) return call_err(x, fn, why);
                if (i >= len) {
                    snprintf(why, sizeof(why), "index out of range: %lld", (long long)i);
                    return call_err(x, fn, why);
                }
                if (item.kind == GK_STRING) {
                    item = gval_int((unsigned char)item.u.s.p[i]);
                } else {
                    item = item.u.list->items[i];
                }
            } else if (item.kind == GK_MAP) {
                if (ix->kind != GK_STRING) {
                    if (is_nilish(ix)) snprintf(why, sizeof(why), "value is nil; should be of type string");
                    else snprintf(why, sizeof(why), "value has type %s; should be string", gval_type_name(ix));
                    return call_err(x, fn, why);
                }
                long i = gmap_find(item.u.map, ix->u.s.p, ix->u.s.n);
                if (i >= 0) {
                    item = item.u.map->vals[i];
                } else if (!gval_zero(x->pool, item.type ? item.type->elem : NULL, &item)) {
                    return xmem(x);
                }
            } else {
                snprintf(why, sizeof(why), "can't index item of type %s", gval_type_name(&item));
                return call_err(x, fn, why);
            }
        }
        *out = item;
        return 0;
    }
    case GF_SLICE: {
        struct gval item = av[0];
        size_t ni = numin - 1;
        if (is_nilish(&item)) return call_err(x, fn, "slice of untyped nil");
        if (ni > 3) {
            snprintf(why, sizeof(why), "too many slice indexes: %zu", ni);
            return call_err(x, fn, why);
        }
        if (item.kind == GK_STRING && ni == 3) return call_err(x, fn, "cannot 3-index slice a string");
        if (item.kind != GK_STRING && item.kind != GK_LIST) {
            snprintf(why, sizeof(why), "can't slice item of type %s", gval_type_name(&item));
            return call_err(x, fn, why);
        }
        int64_t len = gval_len(&item);
        int64_t idx[3] = {0, len, len};
        for (size_t k = 0; k < ni; k++) {
            if (index_arg(&av[k + 1], len, &idx[k], why, sizeof(why))) return call_err(x, fn, why);
        }
        if (idx[0] > idx[1] || (ni == 3 && idx[1] > idx[2])) {
            snprintf(why, sizeof(why), "invalid slice index: %lld > %lld",
                     (long long)(idx[0] > idx[1] ? idx[0] : idx[1]),
                     (long long)(idx[0] > idx[1] ? idx[1] : idx[2]));
            return call_err(x, fn, why);
        }
        if (item.kind == GK_STRING) {
            item.u.s.p += idx[0];
            item.u.s.n = (size_t)(idx[1] - idx[0]);
        } else if (item.u.list) {
            struct glist *l = gpool_alloc(x->pool, sizeof(*l));
            if (!l) return xmem(x);
            l->items = item.u.list->items + idx[0];
            l->n = (size_t)(idx[1] - idx[0]);
            item.u.list = l;
        }
        *out = item;
        return 0;
    }
    case GF_PRINT: case GF_PRINTLN:
        e = gval_sprint(&x->tmp, av, numin, f == GF_PRINTLN);
        break;
    case GF_PRINTF:
        e = gval_sprintf(&x->tmp, av[0].u.s.p, av[0].u.s.n, av + 1, numin - 1);
        break;
    case GF_HTML: case GF_JS: case GF_URLQUERY: {
        struct strbuf s;
        strbuf_init(&s, x->tmp.max_len);
        const char *p;
        size_t n;
        if (numin == 1 && av[0].kind == GK_STRING) {
            p = av[0].u.s.p;
            n = av[0].u.s.n;
        } else {
            e = gval_sprint(&s, av, numin, false);
            p = strbuf_cstr(&s);
            n = s.len;
        }
        if (!e) {
            if (f == GF_HTML) html_escape(&x->tmp, p, n, &e);
            else if (f == GF_JS) js_escape(&x->tmp, p, n, &e);
            else url_escape(&x->tmp, p, n, &e);
        }
        strbuf_deinit(&s);
        break;
    }
    case GF_CALL:
        if (is_nilish(&av[0])) return call_err(x, fn, "call of nil");
        snprintf(why, sizeof(why), "non-function of type %s", gval_type_name(&av[0]));
        return call_err(x, fn, why);
    case GF_EQ: {
        if (numin < 2) return call_err(x, fn, "missing argument for comparison");
        const struct gval *a0 = &av[0];
        for (size_t k = 1; k < numin; k++) {
            int r = cmp_eq(a0, &av[k], &w);
            if (r < 0) return call_err(x, fn, w);
            if (r) {
                *out = gval_bool(true);
                return 0;
            }
        }
        *out = gval_bool(false);
        return 0;
    }
    case GF_NE: {
        int r = cmp_eq(&av[0], &av[1], &w);
        if (r < 0) return call_err(x, fn, w);
        *out = gval_bool(!r);
        return 0;
    }
    case GF_LT: case GF_LE: case GF_GT: case GF_GE: {
        int lt = cmp_lt(&av[0], &av[1], &w);
        if (lt < 0) return call_err(x, fn, w);
        int eq = 0;
        if (f == GF_LE || f == GF_GT) {
            eq = cmp_eq(&av[0], &av[1], &w);
            if (eq < 0) return call_err(x, fn, w);
        }
        bool r = f == GF_LT ? lt : f == GF_LE ? (lt || eq) : f == GF_GT ? !(lt || eq) : !lt;
        *out = gval_bool(r);
        return 0;
    }
    case GF_JSON: {
        bool ok;
        e = gval_json(&x->tmp, &av[0], &ok);
        break;
    }
    case GF_CURRENTDATE:
        return date_value(x, 0, out);
    case GF_YESTERDAYDATE:
        return date_value(x, 1, out);
    case GF_TOTSTYPE:
        e = gotmpl_ts_type(&x->tmp, &av[0]);
        break;
    default:
        return xerr(x, fn->pos, fn->end, "%s is not a defined function", name);
    }
    if (e) return tmp_err(x, e);
    return tmp_to_value(x, out);
}

static int eval_command(struct gx *x, const struct gval *dot, const struct gcmd *cmd,
                        bool has_final, const struct gval *final, struct gval *out)
{
    int rc = step(x);
    if (rc) return rc;
    const struct garg *first = cmd->args[0];
    bool has_args = cmd->n_args > 1 || has_final;
    switch (first->type) {
    case GA_FIELD:
        return eval_field_chain(x, first, dot, first->u.field.idents, first->u.field.n, has_args,
                                out);
    case GA_CHAIN:
        return eval_chain(x, dot, first, has_args, out);
    case GA_FUNC:
        return eval_function(x, dot, first, cmd->args + 1, cmd->n_args - 1, has_final, final, out);
    case GA_PIPE:
        rc = not_a_function(x, first, cmd->n_args, has_final);
        return rc ? rc : eval_pipeline(x, dot, first->u.pipe, out);
    case GA_VAR:
        return eval_variable(x, first, has_args, out);
    default:
        break;
    }
    rc = not_a_function(x, first, cmd->n_args, has_final);
    if (rc) return rc;
    switch (first->type) {
    case GA_BOOL: *out = gval_bool(first->u.b); return 0;
    case GA_DOT: *out = *dot; return 0;
    case GA_NIL: return xerr(x, first->pos, first->end, "nil is not a command");
    case GA_NUMBER: return ideal_constant(x, first, out);
    case GA_STRING: *out = gval_str(first->u.str.p, first->u.str.n); return 0;
    default: return xerr(x, first->pos, first->end, "can't evaluate command");
    }
}

static int eval_pipeline(struct gx *x, const struct gval *dot, const struct gpipe *p,
                         struct gval *out)
{
    if (++x->nest > GX_MAX_NEST) {
        return llem_errf(x->eb, LLEM_ELIMIT, "template: nesting exceeds %u levels", GX_MAX_NEST);
    }
    struct gval v = gval_invalid();
    bool has = false;
    for (size_t c = 0; c < p->n_cmds; c++) {
        struct gval nv;
        int rc = eval_command(x, dot, &p->cmds[c], has, &v, &nv);
        if (rc) return rc;
        if (nv.kind == GK_NIL) nv = gval_invalid(); // dig into interface{}: nil is no value
        v = nv;
        has = true;
    }
    for (size_t k = 0; k < p->n_decl; k++) {
        if (p->is_assign) {
            struct gvar *var = find_var(x, p->decl[k]);
            if (!var) {
                return xerr(x, p->pos, p->end, "undefined variable: %s", p->decl[k]);
            }
            var->v = v;
        } else {
            int rc = push_var(x, p->decl[k], v);
            if (rc) return rc;
        }
    }
    x->nest--;
    *out = v;
    return 0;
}

// ---- walking -------------------------------------------------------------------------------
static int print_value(struct gx *x, const struct gval *v)
{
    enum llem_err e;
    if (is_nilish(v)) {
        e = strbuf_append_str(x->out, "<no value>");
    } else {
        e = gval_fmt_v(x->out, v, 0);
    }
    return xout(x, e);
}

static int walk_range(struct gx *x, const struct gval *dot, const struct gnode *n)
{
    size_t outer = x->n_vars;
    struct gval val;
    const struct gpipe *p = n->u.br.pipe;
    int rc = eval_pipeline(x, dot, p, &val);
    if (rc) return rc;
    size_t mark = x->n_vars;
    size_t count = 0;
    if (val.kind == GK_LIST || val.kind == GK_MAP || val.kind == GK_INT) {
        if (val.kind == GK_INT && p->n_decl > 1) {
            return xerr(x, p->pos, p->end, "can't use %lld to iterate over more than one variable",
                        (long long)val.u.i);
        }
        count = val.kind == GK_INT ? (val.u.i > 0 ? (size_t)val.u.i : 0) : (size_t)gval_len(&val);
    } else if (!is_nilish(&val)) {
        strbuf_reset(&x->tmp);
        gval_fmt_v(&x->tmp, &val, 0);
        return xerr(x, p->pos, p->end, "range can't iterate over %s", strbuf_cstr(&x->tmp));
    }
    for (size_t i = 0; i < count; i++) {
        if (++x->iters > x->lim.max_loop_iters) {
            return llem_errf(x->eb, LLEM_ELIMIT, "template: range loops exceed %llu iterations",
                             (unsigned long long)x->lim.max_loop_iters);
        }
        struct gval index, elem;
        if (val.kind == GK_LIST) {
            index = gval_int((int64_t)i);
            elem = val.u.list->items[i];
        } else if (val.kind == GK_MAP) {
            index = gval_str(val.u.map->keys[i], val.u.map->klens[i]);
            elem = val.u.map->vals[i];
        } else {
            index = elem = gval_int((int64_t)i);
        }
        if (p->n_decl > 0) {
            if (p->is_assign) {
                struct gvar *v0 = find_var(x, p->decl[0]);
                if (!v0) return xerr(x, p->pos, p->end, "undefined variable: %s", p->decl[0]);
                v0->v = p->n_decl > 1 ? index : elem;
                if (p->n_decl > 1) {
                    struct gvar *v1 = find_var(x, p->decl[1]);
                    if (!v1) return xerr(x, p->pos, p->end, "undefined variable: %s", p->decl[1]);
                    v1->v = elem;
                }
            } else {
                x->vars[mark - 1].v = elem;
                if (p->n_decl > 1) x->vars[mark - 2].v = index;
            }
        }
        rc = walk_list(x, &elem, &n->u.br.list);
        x->n_vars = mark;
        if (rc == GX_BREAK) break;
        if (rc == GX_CONTINUE) continue;
        if (rc) return rc;
    }
    if (count == 0 && n->u.br.has_else) {
        rc = walk_list(x, dot, &n->u.br.else_list);
        if (rc) return rc;
    }
    x->n_vars = outer;
    return 0;
}

static int walk(struct gx *x, const struct gval *dot, const struct gnode *n)
{
    int rc = step(x);
    if (rc) return rc;
    switch (n->type) {
    case GN_TEXT:
        return xout(x, strbuf_append(x->out, n->u.text.p, n->u.text.n));
    case GN_ACTION: {
        struct gval v;
        rc = eval_pipeline(x, dot, n->u.pipe, &v);
        if (rc) return rc;
        return n->u.pipe->n_decl ? 0 : print_value(x, &v);
    }
    case GN_BREAK:
        return GX_BREAK;
    case GN_CONTINUE:
        return GX_CONTINUE;
    case GN_IF:
    case GN_WITH: {
        size_t mark = x->n_vars;
        struct gval v;
        rc = eval_pipeline(x, dot, n->u.br.pipe, &v);
        if (rc) return rc;
        if (gval_truth(&v)) {
            rc = walk_list(x, n->type == GN_WITH ? &v : dot, &n->u.br.list);
        } else if (n->u.br.has_else) {
            rc = walk_list(x, dot, &n->u.br.else_list);
        }
        x->n_vars = mark;
        return rc;
    }
    case GN_RANGE: {
        if (++x->nest > GX_MAX_NEST) {
            return llem_errf(x->eb, LLEM_ELIMIT, "template: nesting exceeds %u levels",
                             GX_MAX_NEST);
        }
        rc = walk_range(x, dot, n);
        x->nest--;
        return rc;
    }
    case GN_TEMPLATE: {
        const struct glist_node *body = gotmpl_lookup(x->t, n->u.tmpl.name);
        if (!body) {
            return xerr(x, n->pos, n->pos, "template \"%s\" not defined", n->u.tmpl.name);
        }
        if (x->depth >= x->lim.max_depth) {
            return llem_errf(x->eb, LLEM_ELIMIT,
                             "template: exceeded maximum template depth (%u)", x->lim.max_depth);
        }
        struct gval nd = gval_invalid();
        if (n->u.tmpl.pipe) {
            rc = eval_pipeline(x, dot, n->u.tmpl.pipe, &nd);
            if (rc) return rc;
        }
        size_t saved_base = x->var_base, saved_n = x->n_vars;
        const char *saved_name = x->tmpl_name;
        x->var_base = x->n_vars;
        rc = push_var(x, "$", nd);
        if (rc) return rc;
        x->depth++;
        x->tmpl_name = n->u.tmpl.name;
        rc = walk_list(x, &nd, body);
        x->depth--;
        x->tmpl_name = saved_name;
        x->var_base = saved_base;
        x->n_vars = saved_n;
        return rc;
    }
    default:
        return xerr(x, n->pos, n->pos, "unknown node");
    }
}

static int walk_list(struct gx *x, const struct gval *dot, const struct glist_node *l)
{
    if (++x->nest > GX_MAX_NEST) {
        return llem_errf(x->eb, LLEM_ELIMIT, "template: nesting exceeds %u levels", GX_MAX_NEST);
    }
    for (size_t k = 0; k < l->n; k++) {
        int rc = walk(x, dot, l->items[k]);
        if (rc) {
            x->nest--;
            return rc;
        }
    }
    x->nest--;
    return 0;
}

enum llem_err gotmpl_exec(const struct gotmpl *t, const struct glist_node *root,
                          const struct gval *data, struct gpool *pool,
                          const struct gotmpl_limits *lim, struct strbuf *out,
                          struct llem_errbuf *eb)
{
    struct gx x = {.t = t, .pool = pool, .out = out, .eb = eb, .tmpl_name = ""};
    if (lim) {
        x.lim = *lim;
    } else {
        gotmpl_limits_default(&x.lim);
    }
    size_t saved_max = out->max_len;
    size_t room = out->max_len ? out->max_len : SIZE_MAX - 1;
    if (out->len < room && room - out->len > x.lim.max_output_bytes) {
        out->max_len = out->len + x.lim.max_output_bytes;
    }
    strbuf_init(&x.tmp, x.lim.max_output_bytes);
    int rc = push_var(&x, "$", *data);
    if (!rc) rc = walk_list(&x, data, root ? root : &t->root);
    out->max_len = saved_max;
    strbuf_deinit(&x.tmp);
    llem_free(x.vars);
    if (rc == GX_BREAK || rc == GX_CONTINUE) {
        return llem_errf(eb, LLEM_EINTERNAL, "template: break/continue outside range");
    }
    return (enum llem_err)rc;
}
