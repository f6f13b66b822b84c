// template/jinja_eval.c: the tree-walking evaluator. Statements write into a string builder;
// expressions produce values with jinja2's semantics: scoping (a for-loop iteration and a
// macro call get their own scope; `if` does not), the `loop` variable, macros with defaults
// and `caller`, attribute-then-item lookup, Python operators, and the sandbox's caps on loop
// iterations, recursion and output size (errors unwind, see jinja_int.h).
#include <math.h>
#include <string.h>

#include "template/jinja_int.h"

enum exec_rc { EX_NORMAL, EX_BREAK, EX_CONTINUE };

#define AT(n) (cx->line = (n)->line, cx->col = (n)->col)

static struct jv eval(struct jctx *cx, const struct jnode *n, struct jscope *sc);
static int exec_node(struct jctx *cx, const struct jnode *n, struct jscope *sc, struct jsb *out);

// ---- scopes ----------------------------------------------------------------------------------
struct jscope *jscope_new(struct jctx *cx, struct jscope *parent)
{
    struct jscope *s = jx_alloc(cx, sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->parent = parent;
    return s;
}

void jscope_set(struct jctx *cx, struct jscope *s, const char *name, struct jv v)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0) {
            s->vals[i] = v;
            return;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        const char **nn = jx_alloc_array(cx, cap, sizeof(*nn));
        struct jv *nv = jx_alloc_array(cx, cap, sizeof(*nv));
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof(*nn));
            memcpy(nv, s->vals, s->n * sizeof(*nv));
        }
        s->names = nn;
        s->vals = nv;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n] = v;
    s->n++;
}

static struct jv *scope_find(struct jscope *sc, const char *name)
{
    for (struct jscope *s = sc; s; s = s->parent) {
        for (size_t i = 0; i < s->n; i++) {
            if (strcmp(s->names[i], name) == 0) {
                return &s->vals[i];
            }
        }
    }
    return NULL;
}

static void enter(struct jctx *cx)
{
    if (++cx->depth > JINJA_MAX_EVAL_DEPTH) {
        jx_fail(cx, LLEM_ELIMIT, "template recursion deeper than %d", JINJA_MAX_EVAL_DEPTH);
    }
}

static _Noreturn void undefined_error(struct jctx *cx, struct jv u)
{
    if (u.u.s.p && u.u.s.n) {
        jx_fail(cx, LLEM_EINVAL, "UndefinedError: '%.*s' is undefined", (int)u.u.s.n, u.u.s.p);
    }
    jx_fail(cx, LLEM_EINVAL, "UndefinedError: value is undefined");
}

// ---- lookup ----------------------------------------------------------------------------------
static struct jv loop_attr(struct jctx *cx, struct jv lv, const char *name, size_t n)
{
    const struct jloop *lp = lv.u.loop;
#define IS(s) (n == sizeof(s) - 1 && memcmp(name, s, n) == 0)
    if (IS("index")) return jv_int((int64_t)lp->i + 1);
    if (IS("index0")) return jv_int((int64_t)lp->i);
    if (IS("revindex")) return jv_int((int64_t)(lp->n - lp->i));
    if (IS("revindex0")) return jv_int((int64_t)(lp->n - lp->i - 1));
    if (IS("first")) return jv_bool(lp->i == 0);
    if (IS("last")) return jv_bool(lp->i + 1 == lp->n);
    if (IS("length")) return jv_int((int64_t)lp->n);
    if (IS("depth")) return jv_int((int64_t)lp->depth0 + 1);
    if (IS("depth0")) return jv_int((int64_t)lp->depth0);
    if (IS("previtem")) return lp->i > 0 ? lp->items[lp->i - 1] : jv_undef("previtem");
    if (IS("nextitem")) return lp->i + 1 < lp->n ? lp->items[lp->i + 1] : jv_undef("nextitem");
    if (IS("cycle")) {
        struct jmethod *m = jx_alloc(cx, sizeof(*m));
        m->self = lv;
        m->name = "cycle";
        struct jv v = {.t = JV_METHOD};
        v.u.meth = m;
        return v;
    }
#undef IS
    return jv_undef(jx_strndup(cx, name, n));
}

static struct jv bound_method(struct jctx *cx, struct jv self, const char *name, size_t n)
{
    struct jmethod *m = jx_alloc(cx, sizeof(*m));
    m->self = self;
    m->name = jx_strndup(cx, name, n);
    struct jv v = {.t = JV_METHOD};
    v.u.meth = m;
    return v;
}

struct jv jinja_getattr(struct jctx *cx, struct jv obj, const char *name, size_t n)
{
    if (obj.t == JV_UNDEF) {
        undefined_error(cx, obj);
    }
    if (n > 0 && name[0] == '_') { // the sandbox hides private and dunder attributes
        return jv_undef(jx_strndup(cx, name, n));
    }
    switch (obj.t) {
    case JV_DICT: {
        if (jinja_has_method(obj, name, n)) {
            return bound_method(cx, obj, name, n);
        }
        const struct jv *v = jv_dict_gets(&obj, name, n);
        return v ? *v : jv_undef(jx_strndup(cx, name, n));
    }
    case JV_NS: {
        const struct jv *v = jv_dict_gets(&obj, name, n);
        return v ? *v : jv_undef(jx_strndup(cx, name, n));
    }
    case JV_LOOP: return loop_attr(cx, obj, name, n);
    case JV_STR:
    case JV_LIST:
        if (jinja_has_method(obj, name, n)) {
            return bound_method(cx, obj, name, n);
        }
        return jv_undef(jx_strndup(cx, name, n));
    default: return jv_undef(jx_strndup(cx, name, n));
    }
}

// Python index normalization: -1 is the last; false when out of range.
static bool norm_index(int64_t i, size_t len, size_t *out)
{
    if (i < 0) {
        i += (int64_t)len;
    }
    if (i < 0 || (uint64_t)i >= len) {
        return false;
    }
    *out = (size_t)i;
    return true;
}

struct jv jinja_getitem(struct jctx *cx, struct jv obj, struct jv key)
{
    if (obj.t == JV_UNDEF) {
        undefined_error(cx, obj);
    }
    switch (obj.t) {
    case JV_DICT: {
        const struct jv *v = jv_dict_get(&obj, key);
        if (v) {
            return *v;
        }
        break;
    }
    case JV_LIST:
        if (key.t == JV_INT || key.t == JV_BOOL) {
            size_t i;
            if (norm_index(key.t == JV_BOOL ? key.u.b : key.u.i, obj.u.l->n, &i)) {
                return obj.u.l->v[i];
            }
            return jv_undef(NULL);
        }
        break;
    case JV_STR:
        if (key.t == JV_INT || key.t == JV_BOOL) {
            size_t len = jv_utf8_len(obj.u.s.p, obj.u.s.n), i;
            if (norm_index(key.t == JV_BOOL ? key.u.b : key.u.i, len, &i)) {
                size_t a = jv_utf8_off(obj.u.s.p, obj.u.s.n, i);
                size_t b = jv_utf8_off(obj.u.s.p, obj.u.s.n, i + 1);
                return jv_str(obj.u.s.p + a, b - a);
            }
            return jv_undef(NULL);
        }
        break;
    default: break;
    }
    if (key.t == JV_STR) {
        return jinja_getattr(cx, obj, key.u.s.p, key.u.s.n);
    }
    return jv_undef(NULL);
}

// Python slice indices for a sequence of length len.
static void slice_indices(struct jctx *cx, struct jv start, struct jv stop, struct jv step,
                          size_t len, int64_t *st, int64_t *sp, int64_t *stp)
{
    int64_t L = (int64_t)len;
    int64_t k = 1;
    if (step.t != JV_NONE) {
        if (step.t != JV_INT) {
            jx_fail(cx, LLEM_EINVAL, "TypeError: slice indices must be integers or None");
        }
        k = step.u.i;
        if (k == 0) {
            jx_fail(cx, LLEM_EINVAL, "ValueError: slice step cannot be zero");
        }
    }
    int64_t lo = k < 0 ? -1 : 0, hi = k < 0 ? L - 1 : L;
    int64_t a = k < 0 ? hi : lo, b = k < 0 ? lo : hi;
    struct jv in[2] = {start, stop};
    int64_t *outp[2] = {&a, &b};
    for (int j = 0; j < 2; j++) {
        if (in[j].t == JV_NONE) {
            continue;
        }
        if (in[j].t != JV_INT && in[j].t != JV_BOOL) {
            jx_fail(cx, LLEM_EINVAL, "TypeError: slice indices must be integers or None");
        }
        int64_t x = in[j].t == JV_BOOL ? in[j].u.b : in[j].u.i;
        if (x < 0) {
            x = x < -L ? lo : x + L;
            if (x < lo) {
                x = lo;
            }
        } else if (x > hi) {
            x = hi;
        }
        *outp[j] = x;
    }
    *st = a;
    *sp = b;
    *stp = k;
}

static struct jv do_slice(struct jctx *cx, struct jv obj, struct jv start, struct jv stop,
                          struct jv step)
{
    if (obj.t == JV_UNDEF) {
        undefined_error(cx, obj);
    }
    if (obj.t == JV_LIST && !(obj.fl & JVF_GEN)) {
        int64_t a, b, k;
        slice_indices(cx, start, stop, step, obj.u.l->n, &a, &b, &k);
        struct jv r = jv_list_new(cx, 0);
        r.fl = obj.fl & JVF_TUPLE;
        for (int64_t i = a; k > 0 ? i < b : i > b; i += k) {
            jv_list_push(cx, &r, obj.u.l->v[i]);
        }
        return r;
    }
    if (obj.t == JV_STR) {
        const char *s = obj.u.s.p;
        size_t n = obj.u.s.n;
        size_t len = jv_utf8_len(s, n);
        int64_t a, b, k;
        slice_indices(cx, start, stop, step, len, &a, &b, &k);
        if (k == 1) {
            if (b <= a) {
                return jv_str("", 0);
            }
            size_t x = jv_utf8_off(s, n, (size_t)a), y = jv_utf8_off(s, n, (size_t)b);
            return jv_str(s + x, y - x);
        }
        struct jsb sb = {0};
        bool ascii = len == n;
        for (int64_t i = a; k > 0 ? i < b : i > b; i += k) {
            if (ascii) {
                jsb_putc(cx, &sb, s[i]);
            } else {
                size_t x = jv_utf8_off(s, n, (size_t)i), y = jv_utf8_off(s, n, (size_t)i + 1);
                jsb_put(cx, &sb, s + x, y - x);
            }
        }
        return jv_sb(&sb);
    }
    jx_fail(cx, LLEM_EINVAL, "TypeError: '%s' object is not subscriptable", jv_type_name(obj));
}

// ---- operators -------------------------------------------------------------------------------
static double as_f(struct jv v)
{
    return v.t == JV_FLOAT ? v.u.f : v.t == JV_BOOL ? (v.u.b ? 1.0 : 0.0) : (double)v.u.i;
}

static int64_t as_i(struct jv v)
{
    return v.t == JV_BOOL ? (int64_t)v.u.b : v.u.i;
}

static const char *op_sym(int op)
{
    static const char *const syms[] = {"+", "-", "*", "/", "//", "%", "**", "~"};
    return op >= 0 && op < (int)LLEM_ARRAY_LEN(syms) ? syms[op] : "?";
}

static _Noreturn void op_type_error(struct jctx *cx, int op, struct jv a, struct jv b)
{
    if (a.t == JV_UNDEF) {
        undefined_error(cx, a);
    }
    if (b.t == JV_UNDEF) {
        undefined_error(cx, b);
    }
    if (op == OP_ADD && a.t == JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: can only concatenate str (not \"%s\") to str",
                jv_type_name(b));
    }
    jx_fail(cx, LLEM_EINVAL, "TypeError: unsupported operand type(s) for %s: '%s' and '%s'",
            op_sym(op), jv_type_name(a), jv_type_name(b));
}

// Markup's escape: what `Markup + str` does to the plain side.
static void html_escape_into(struct jctx *cx, struct jsb *b, struct jv s)
{
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        switch (c) {
        case '&': jsb_puts(cx, b, "&amp;"); break;
        case '<': jsb_puts(cx, b, "&lt;"); break;
        case '>': jsb_puts(cx, b, "&gt;"); break;
        case '"': jsb_puts(cx, b, "&#34;"); break;
        case '\'': jsb_puts(cx, b, "&#39;"); break;
        default: jsb_putc(cx, b, c); break;
        }
    }
}

static struct jv repeat_seq(struct jctx *cx, struct jv seq, int64_t times)
{
    if (times < 0) {
        times = 0;
    }
    if (seq.t == JV_STR) {
        if (seq.u.s.n && (uint64_t)times > cx->out_cap / seq.u.s.n) {
            jx_fail(cx, LLEM_ELIMIT, "string longer than %zu bytes", cx->out_cap);
        }
        struct jsb b = {0};
        for (int64_t i = 0; i < times; i++) {
            jsb_put(cx, &b, seq.u.s.p, seq.u.s.n);
        }
        return b.n ? jv_sb(&b) : jv_str("", 0);
    }
    size_t n = seq.u.l->n;
    if (n && (uint64_t)times > LLEM_TEMPLATE_MAX_LOOP_ITERS / n) {
        jx_fail(cx, LLEM_ELIMIT, "list longer than %u items", LLEM_TEMPLATE_MAX_LOOP_ITERS);
    }
    struct jv r = jv_list_new(cx, n * (size_t)times);
    r.fl = seq.fl & JVF_TUPLE;
    for (int64_t i = 0; i < times; i++) {
        for (size_t j = 0; j < n; j++) {
            jv_list_push(cx, &r, seq.u.l->v[j]);
        }
    }
    return r;
}

static struct jv arith(struct jctx *cx, int op, struct jv a, struct jv b)
{
    if (op == OP_CONCAT) {
        struct jsb sb = {0};
        jv_str_into(cx, &sb, a);
        jv_str_into(cx, &sb, b);
        return sb.n ? jv_sb(&sb) : jv_str("", 0);
    }
    if (op == OP_ADD && a.t == JV_STR && b.t == JV_STR) {
        struct jsb sb = {0};
        bool am = a.fl & JVF_MARKUP, bm = b.fl & JVF_MARKUP;
        if (am == bm) {
            jsb_put(cx, &sb, a.u.s.p, a.u.s.n);
            jsb_put(cx, &sb, b.u.s.p, b.u.s.n);
        } else if (am) {
            jsb_put(cx, &sb, a.u.s.p, a.u.s.n);
            html_escape_into(cx, &sb, b);
        } else {
            html_escape_into(cx, &sb, a);
            jsb_put(cx, &sb, b.u.s.p, b.u.s.n);
        }
        struct jv r = sb.n ? jv_sb(&sb) : jv_str("", 0);
        r.fl = (am || bm) ? JVF_MARKUP : 0;
        return r;
    }
    if (op == OP_ADD && a.t == JV_LIST && b.t == JV_LIST && !((a.fl | b.fl) & JVF_GEN) &&
        (a.fl & JVF_TUPLE) == (b.fl & JVF_TUPLE)) {
        struct jv r = jv_list_new(cx, a.u.l->n + b.u.l->n);
        r.fl = a.fl & JVF_TUPLE;
        for (size_t i = 0; i < a.u.l->n; i++) {
            jv_list_push(cx, &r, a.u.l->v[i]);
        }
        for (size_t i = 0; i < b.u.l->n; i++) {
            jv_list_push(cx, &r, b.u.l->v[i]);
        }
        return r;
    }
    if (op == OP_MUL) {
        if ((a.t == JV_STR || (a.t == JV_LIST && !(a.fl & JVF_GEN))) &&
            (b.t == JV_INT || b.t == JV_BOOL)) {
            return repeat_seq(cx, a, as_i(b));
        }
        if ((b.t == JV_STR || (b.t == JV_LIST && !(b.fl & JVF_GEN))) &&
            (a.t == JV_INT || a.t == JV_BOOL)) {
            return repeat_seq(cx, b, as_i(a));
        }
    }
    if (!jv_is_num(a) || !jv_is_num(b)) {
        op_type_error(cx, op, a, b);
    }
    bool fl = a.t == JV_FLOAT || b.t == JV_FLOAT;
    if (op == OP_DIV) {
        double y = as_f(b);
        if (y == 0.0) {
            jx_fail(cx, LLEM_EINVAL, "ZeroDivisionError: division by zero");
        }
        return jv_float(as_f(a) / y);
    }
    if (fl) {
        double x = as_f(a), y = as_f(b);
        switch (op) {
        case OP_ADD: return jv_float(x + y);
        case OP_SUB: return jv_float(x - y);
        case OP_MUL: return jv_float(x * y);
        case OP_POW: return jv_float(pow(x, y));
        case OP_FLOORDIV:
        case OP_MOD: {
            if (y == 0.0) {
                jx_fail(cx, LLEM_EINVAL, "ZeroDivisionError: float modulo");
            }
            double m = fmod(x, y);
            if (m != 0.0 && ((m < 0) != (y < 0))) {
                m += y;
            }
            return op == OP_MOD ? jv_float(m) : jv_float(floor((x - m) / y + 0.5));
        }
        default: break;
        }
    }
    int64_t x = as_i(a), y = as_i(b), r = 0;
    bool ovf = false;
    switch (op) {
    case OP_ADD: ovf = __builtin_add_overflow(x, y, &r); break;
    case OP_SUB: ovf = __builtin_sub_overflow(x, y, &r); break;
    case OP_MUL: ovf = __builtin_mul_overflow(x, y, &r); break;
    case OP_FLOORDIV:
    case OP_MOD: {
        if (y == 0) {
            jx_fail(cx, LLEM_EINVAL, "ZeroDivisionError: integer division or modulo by zero");
        }
        if (x == INT64_MIN && y == -1) {
            ovf = true;
            break;
        }
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
            m += y;
            q -= 1;
        }
        r = op == OP_MOD ? m : q;
        break;
    }
    case OP_POW: {
        if (y < 0) {
            return jv_float(pow((double)x, (double)y));
        }
        r = 1;
        for (int64_t i = 0; i < y && !ovf; i++) {
            ovf = __builtin_mul_overflow(r, x, &r);
            if (r == 0 || r == 1) {
                break;
            }
        }
        break;
    }
    default: break;
    }
    if (ovf) {
        jx_fail(cx, LLEM_ELIMIT, "integer overflow");
    }
    return jv_int(r);
}

static bool contains(struct jctx *cx, struct jv item, struct jv seq)
{
    switch (seq.t) {
    case JV_UNDEF: return false;
    case JV_STR:
        if (item.t != JV_STR) {
            jx_fail(cx, LLEM_EINVAL,
                    "TypeError: 'in <string>' requires string as left operand, not %s",
                    jv_type_name(item));
        }
        if (item.u.s.n == 0) {
            return true;
        }
        return memmem(seq.u.s.p, seq.u.s.n, item.u.s.p, item.u.s.n) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < seq.u.l->n; i++) {
            if (jv_eq(seq.u.l->v[i], item)) {
                return true;
            }
        }
        return false;
    case JV_DICT: return jv_dict_get(&seq, item) != NULL;
    default:
        jx_fail(cx, LLEM_EINVAL, "TypeError: argument of type '%s' is not iterable",
                jv_type_name(seq));
    }
}

static bool compare(struct jctx *cx, int op, struct jv a, struct jv b)
{
    switch (op) {
    case OP_EQ: return jv_eq(a, b);
    case OP_NE: return !jv_eq(a, b);
    case OP_IN: return contains(cx, a, b);
    case OP_NOTIN: return !contains(cx, a, b);
    default: break;
    }
    int c = jv_cmp(cx, a, b);
    if ((a.t == JV_FLOAT && isnan(a.u.f)) || (b.t == JV_FLOAT && isnan(b.u.f))) {
        return false;
    }
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}

// ---- calls -----------------------------------------------------------------------------------
static int exec_body(struct jctx *cx, const struct jnode *body, struct jscope *sc,
                     struct jsb *out);

static struct jv call_macro(struct jctx *cx, const struct jmacro *m, const struct jargs *a,
                            struct jv caller)
{
    if (cx->macro_depth >= (int)LLEM_TEMPLATE_MAX_RECURSION) {
        jx_fail(cx, LLEM_ELIMIT, "macro calls nested deeper than %u",
                LLEM_TEMPLATE_MAX_RECURSION);
    }
    const struct jnode *def = m->def;
    struct jscope *fs = jscope_new(cx, m->closure);
    size_t np = def->n_kw;
    for (size_t i = 0; i < np; i++) {
        const char *pname = def->kw[i];
        struct jv v;
        const struct jv *kv = NULL;
        for (size_t k = 0; k < a->n_kw; k++) {
            if (strcmp(a->kw[k], pname) == 0) {
                kv = &a->kwv[k];
            }
        }
        if (i < a->n_pos) {
            v = a->pos[i];
        } else if (kv) {
            v = *kv;
        } else if (def->l2.v[i]) {
            v = eval(cx, def->l2.v[i], fs);
        } else {
            v = jv_undef(pname);
        }
        jscope_set(cx, fs, pname, v);
    }
    struct jv varargs = jv_list_new(cx, 0);
    varargs.fl = JVF_TUPLE;
    for (size_t i = np; i < a->n_pos; i++) {
        jv_list_push(cx, &varargs, a->pos[i]);
    }
    struct jv kwargs = jv_dict_new(cx, 0);
    for (size_t k = 0; k < a->n_kw; k++) {
        bool is_param = false;
        for (size_t i = 0; i < np; i++) {
            is_param |= strcmp(def->kw[i], a->kw[k]) == 0;
        }
        if (!is_param) {
            jv_dict_set(cx, &kwargs, jv_cstr(a->kw[k]), a->kwv[k]);
        }
    }
    jscope_set(cx, fs, "varargs", varargs);
    jscope_set(cx, fs, "kwargs", kwargs);
    if (caller.t == JV_MACRO) {
        jscope_set(cx, fs, "caller", caller);
    }
    struct jsb buf = {0};
    cx->macro_depth++;
    exec_body(cx, def->d, fs, &buf);
    cx->macro_depth--;
    return buf.n ? jv_sb(&buf) : jv_str("", 0);
}

struct jv jinja_call_value(struct jctx *cx, struct jv fn, const struct jargs *a)
{
    switch (fn.t) {
    case JV_MACRO: return call_macro(cx, fn.u.m, a, fn.u.m->caller);
    case JV_BUILTIN: return jinja_call_builtin(cx, fn.u.builtin, a);
    case JV_METHOD: return jinja_call_method(cx, fn.u.meth, a);
    case JV_UNDEF: undefined_error(cx, fn);
    default:
        jx_fail(cx, LLEM_EINVAL, "TypeError: '%s' object is not callable", jv_type_name(fn));
    }
}

// Evaluates the arguments of an N_CALL / N_FILTER / N_TEST node.
static void eval_args(struct jctx *cx, const struct jnode *n, struct jscope *sc,
                      struct jargs *a)
{
    struct jv *pos = n->l1.n ? jx_alloc_array(cx, n->l1.n, sizeof(struct jv)) : NULL;
    struct jv *kwv = n->l2.n ? jx_alloc_array(cx, n->l2.n, sizeof(struct jv)) : NULL;
    for (uint32_t i = 0; i < n->l1.n; i++) {
        pos[i] = eval(cx, n->l1.v[i], sc);
    }
    for (uint32_t i = 0; i < n->l2.n; i++) {
        kwv[i] = eval(cx, n->l2.v[i], sc);
    }
    a->pos = pos;
    a->n_pos = n->l1.n;
    a->kw = n->kw;
    a->kwv = kwv;
    a->n_kw = n->l2.n;
}

// Applies a filter chain whose innermost input is NULL to `in`.
static struct jv eval_filter_chain(struct jctx *cx, const struct jnode *f, struct jv in,
                                   struct jscope *sc)
{
    enter(cx);
    struct jv x = f->a ? eval_filter_chain(cx, f->a, in, sc) : in;
    struct jargs a;
    eval_args(cx, f, sc, &a);
    AT(f);
    if (f->soft) {
        jx_fail(cx, LLEM_EINVAL, "TemplateAssertionError: No filter named '%s'.", f->name);
    }
    struct jv r = jinja_apply_filter(cx, f->name, x, &a);
    cx->depth--;
    return r;
}

// ---- expressions -----------------------------------------------------------------------------
static struct jv eval_inner(struct jctx *cx, const struct jnode *n, struct jscope *sc)
{
    switch (n->kind) {
    case N_CONST: return n->cval;
    case N_NAME: {
        struct jv *v = scope_find(sc, n->name);
        if (v) {
            return *v;
        }
        int id = jinja_builtin_id(n->name);
        if (id >= 0) {
            struct jv b = {.t = JV_BUILTIN};
            b.u.builtin = id;
            return b;
        }
        return jv_undef(n->name);
    }
    case N_LIST:
    case N_TUPLE: {
        struct jv l = jv_list_new(cx, n->l1.n);
        if (n->kind == N_TUPLE) {
            l.fl = JVF_TUPLE;
        }
        for (uint32_t i = 0; i < n->l1.n; i++) {
            jv_list_push(cx, &l, eval(cx, n->l1.v[i], sc));
        }
        return l;
    }
    case N_DICT: {
        struct jv d = jv_dict_new(cx, n->l1.n);
        for (uint32_t i = 0; i < n->l1.n; i++) {
            struct jv k = eval(cx, n->l1.v[i], sc);
            struct jv v = eval(cx, n->l2.v[i], sc);
            if (k.t == JV_LIST && !(k.fl & JVF_TUPLE)) {
                AT(n);
                jx_fail(cx, LLEM_EINVAL, "TypeError: unhashable type: 'list'");
            }
            jv_dict_set(cx, &d, k, v);
        }
        return d;
    }
    case N_ATTR: {
        struct jv o = eval(cx, n->a, sc);
        AT(n);
        return jinja_getattr(cx, o, n->name, strlen(n->name));
    }
    case N_ITEM: {
        struct jv o = eval(cx, n->a, sc);
        struct jv k = eval(cx, n->b, sc);
        AT(n);
        return jinja_getitem(cx, o, k);
    }
    case N_SLICE: {
        struct jv o = eval(cx, n->a, sc);
        struct jv a = n->b ? eval(cx, n->b, sc) : jv_none();
        struct jv b = n->c ? eval(cx, n->c, sc) : jv_none();
        struct jv c = n->d ? eval(cx, n->d, sc) : jv_none();
        AT(n);
        return do_slice(cx, o, a, b, c);
    }
    case N_CALL: {
        struct jv fn = eval(cx, n->a, sc);
        struct jargs a;
        eval_args(cx, n, sc, &a);
        AT(n);
        return jinja_call_value(cx, fn, &a);
    }
    case N_FILTER: {
        struct jv in = eval(cx, n->a, sc);
        struct jargs a;
        eval_args(cx, n, sc, &a);
        AT(n);
        if (n->soft) {
            jx_fail(cx, LLEM_EINVAL, "TemplateAssertionError: No filter named '%s'.", n->name);
        }
        return jinja_apply_filter(cx, n->name, in, &a);
    }
    case N_TEST: {
        struct jv in = eval(cx, n->a, sc);
        struct jargs a;
        eval_args(cx, n, sc, &a);
        AT(n);
        if (n->soft) {
            jx_fail(cx, LLEM_EINVAL, "TemplateAssertionError: No test named '%s'.", n->name);
        }
        bool r = jinja_apply_test(cx, n->name, in, &a);
        return jv_bool(n->neg ? !r : r);
    }
    case N_BINOP: {
        struct jv a = eval(cx, n->a, sc);
        struct jv b = eval(cx, n->b, sc);
        AT(n);
        return arith(cx, n->op, a, b);
    }
    case N_AND: {
        struct jv a = eval(cx, n->a, sc);
        return jv_truthy(a) ? eval(cx, n->b, sc) : a;
    }
    case N_OR: {
        struct jv a = eval(cx, n->a, sc);
        return jv_truthy(a) ? a : eval(cx, n->b, sc);
    }
    case N_NOT: return jv_bool(!jv_truthy(eval(cx, n->a, sc)));
    case N_NEG:
    case N_POS: {
        struct jv a = eval(cx, n->a, sc);
        AT(n);
        if (a.t == JV_UNDEF) {
            undefined_error(cx, a);
        }
        if (!jv_is_num(a)) {
            jx_fail(cx, LLEM_EINVAL, "TypeError: bad operand type for unary %s: '%s'",
                    n->kind == N_NEG ? "-" : "+", jv_type_name(a));
        }
        if (n->kind == N_POS) {
            return a.t == JV_BOOL ? jv_int(a.u.b) : a;
        }
        if (a.t == JV_FLOAT) {
            return jv_float(-a.u.f);
        }
        int64_t x = as_i(a);
        if (x == INT64_MIN) {
            jx_fail(cx, LLEM_ELIMIT, "integer overflow");
        }
        return jv_int(-x);
    }
    case N_COMPARE: {
        struct jv left = eval(cx, n->a, sc);
        for (uint32_t i = 0; i < n->l1.n; i++) {
            struct jv right = eval(cx, n->l1.v[i], sc);
            AT(n);
            if (!compare(cx, (unsigned char)n->cval.u.s.p[i], left, right)) {
                return jv_bool(false);
            }
            left = right;
        }
        return jv_bool(true);
    }
    case N_COND:
        if (jv_truthy(eval(cx, n->b, sc))) {
            return eval(cx, n->a, sc);
        }
        return n->c ? eval(cx, n->c, sc) : jv_undef(NULL);
    default:
        AT(n);
        jx_fail(cx, LLEM_EINTERNAL, "statement used as an expression");
    }
}

static struct jv eval(struct jctx *cx, const struct jnode *n, struct jscope *sc)
{
    enter(cx);
    AT(n);
    struct jv v = eval_inner(cx, n, sc);
    cx->depth--;
    return v;
}

// ---- statements ------------------------------------------------------------------------------
static void assign(struct jctx *cx, const struct jnode *target, struct jv v, struct jscope *sc)
{
    if (target->kind == N_NAME) {
        jscope_set(cx, sc, target->name, v);
        return;
    }
    if (target->kind == N_ATTR) { // {% set ns.attr = v %}
        struct jv *ns = scope_find(sc, target->a->name);
        AT(target);
        if (!ns || ns->t != JV_NS) {
            jx_fail(cx, LLEM_EINVAL, "TemplateRuntimeError: cannot assign attribute on "
                                     "non-namespace object");
        }
        jv_dict_set(cx, ns, jv_cstr(target->name), v);
        return;
    }
    // Tuple unpacking.
    AT(target);
    struct jv items = v;
    if (v.t != JV_LIST) {
        items = jv_iter_list(cx, v);
    }
    if (items.u.l->n != target->l1.n) {
        jx_fail(cx, LLEM_EINVAL, "ValueError: %s values to unpack (expected %u, got %zu)",
                items.u.l->n < target->l1.n ? "not enough" : "too many", target->l1.n,
                items.u.l->n);
    }
    for (uint32_t i = 0; i < target->l1.n; i++) {
        jscope_set(cx, sc, target->l1.v[i]->name, items.u.l->v[i]);
    }
}

static void count_iter(struct jctx *cx)
{
    if (++cx->iters > LLEM_TEMPLATE_MAX_LOOP_ITERS) {
        jx_fail(cx, LLEM_ELIMIT, "more than %u loop iterations", LLEM_TEMPLATE_MAX_LOOP_ITERS);
    }
}

static void exec_for(struct jctx *cx, const struct jnode *n, struct jscope *sc, struct jsb *out,
                     unsigned depth0)
{
    struct jv src = eval(cx, n->b, sc);
    AT(n);
    if (src.t == JV_NONE || (src.t != JV_LIST && src.t != JV_DICT && src.t != JV_STR &&
                             src.t != JV_UNDEF)) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: '%s' object is not iterable", jv_type_name(src));
    }
    struct jv items = jv_iter_list(cx, src);
    if (n->c) {
        struct jv kept = jv_list_new(cx, items.u.l->n);
        struct jscope *fs = jscope_new(cx, sc);
        for (size_t i = 0; i < items.u.l->n; i++) {
            count_iter(cx);
            fs->n = 0;
            assign(cx, n->a, items.u.l->v[i], fs);
            if (jv_truthy(eval(cx, n->c, fs))) {
                jv_list_push(cx, &kept, items.u.l->v[i]);
            }
        }
        items = kept;
    }
    struct jloop *lp = jx_alloc(cx, sizeof(*lp));
    lp->items = items.u.l->v;
    lp->n = items.u.l->n;
    lp->depth0 = depth0;
    struct jv lv = {.t = JV_LOOP};
    lv.u.loop = lp;
    // One scope serves every iteration, emptied each time: names set in an iteration do not
    // survive into the next (jinja2 re-initializes them), and a long loop allocates nothing.
    struct jscope *fs = jscope_new(cx, sc);
    for (size_t i = 0; i < lp->n; i++) {
        count_iter(cx);
        lp->i = i;
        fs->n = 0;
        assign(cx, n->a, lp->items[i], fs);
        jscope_set(cx, fs, "loop", lv);
        if (exec_body(cx, n->d, fs, out) == EX_BREAK) {
            break;
        }
    }
    if (lp->n == 0 && n->e) {
        exec_body(cx, n->e, sc, out);
    }
}

static int exec_body(struct jctx *cx, const struct jnode *body, struct jscope *sc,
                     struct jsb *out)
{
    if (body->kind != N_BODY) {
        return exec_node(cx, body, sc, out);
    }
    for (uint32_t i = 0; i < body->l1.n; i++) {
        int rc = exec_node(cx, body->l1.v[i], sc, out);
        if (rc != EX_NORMAL) {
            return rc;
        }
    }
    return EX_NORMAL;
}

static int exec_inner(struct jctx *cx, const struct jnode *n, struct jscope *sc, struct jsb *out)
{
    switch (n->kind) {
    case N_DATA: jsb_put(cx, out, n->cval.u.s.p, n->cval.u.s.n); return EX_NORMAL;
    case N_OUTPUT: {
        struct jv v = eval(cx, n->a, sc);
        AT(n);
        jv_str_into(cx, out, v);
        return EX_NORMAL;
    }
    case N_BODY: return exec_body(cx, n, sc, out);
    case N_IF:
        for (const struct jnode *c = n; c;) {
            if (jv_truthy(eval(cx, c->a, sc))) {
                return exec_body(cx, c->b, sc, out);
            }
            if (c->c && c->c->kind == N_IF) {
                c = c->c;
                continue;
            }
            return c->c ? exec_body(cx, c->c, sc, out) : EX_NORMAL;
        }
        return EX_NORMAL;
    case N_FOR: exec_for(cx, n, sc, out, 0); return EX_NORMAL; // depth > 1: recursive only
    case N_SET: assign(cx, n->a, eval(cx, n->b, sc), sc); return EX_NORMAL;
    case N_SETBLOCK: {
        struct jsb buf = {0};
        exec_body(cx, n->d, sc, &buf);
        struct jv v = buf.n ? jv_sb(&buf) : jv_str("", 0);
        if (n->c) {
            v = eval_filter_chain(cx, n->c, v, sc);
        }
        assign(cx, n->a, v, sc);
        return EX_NORMAL;
    }
    case N_MACRO: {
        struct jmacro *m = jx_alloc(cx, sizeof(*m));
        m->def = n;
        m->closure = sc;
        m->caller = jv_none();
        struct jv v = {.t = JV_MACRO};
        v.u.m = m;
        jscope_set(cx, sc, n->name, v);
        return EX_NORMAL;
    }
    case N_CALLBLOCK: {
        struct jmacro *cm = jx_alloc(cx, sizeof(*cm));
        cm->def = n;
        cm->closure = sc;
        cm->caller = jv_none();
        struct jv caller = {.t = JV_MACRO};
        caller.u.m = cm;
        struct jv fn = eval(cx, n->a->a, sc);
        struct jargs a;
        eval_args(cx, n->a, sc, &a);
        AT(n);
        struct jv r;
        if (fn.t == JV_MACRO) {
            r = call_macro(cx, fn.u.m, &a, caller);
        } else {
            r = jinja_call_value(cx, fn, &a);
        }
        jv_str_into(cx, out, r);
        return EX_NORMAL;
    }
    case N_FILTERBLOCK: {
        struct jsb buf = {0};
        exec_body(cx, n->d, sc, &buf);
        struct jv v = buf.n ? jv_sb(&buf) : jv_str("", 0);
        v = eval_filter_chain(cx, n->a, v, sc);
        jv_str_into(cx, out, v);
        return EX_NORMAL;
    }
    case N_WITH: {
        struct jscope *ws = jscope_new(cx, sc);
        for (uint32_t i = 0; i < n->n_kw; i++) {
            jscope_set(cx, ws, n->kw[i], eval(cx, n->l2.v[i], sc));
        }
        return exec_body(cx, n->d, ws, out);
    }
    case N_BREAK: return EX_BREAK;
    case N_CONTINUE: return EX_CONTINUE;
    default:
        AT(n);
        jx_fail(cx, LLEM_EINTERNAL, "expression used as a statement");
    }
}

static int exec_node(struct jctx *cx, const struct jnode *n, struct jscope *sc, struct jsb *out)
{
    enter(cx);
    AT(n);
    int rc = exec_inner(cx, n, sc, out);
    cx->depth--;
    return rc;
}

void jinja_exec_root(struct jctx *cx, const struct jnode *root, struct jscope *sc,
                     struct jsb *out)
{
    exec_body(cx, root, sc, out);
}
