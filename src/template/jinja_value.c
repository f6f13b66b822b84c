// template/jinja_value.c: the Jinja engine's values and their region allocator: Python
// semantics for equality, ordering, truthiness, str() and repr(), json.dumps as transformers'
// tojson uses it, and conversion of the JSON variables (cJSON) into values with key order and
// the int/float distinction kept.
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/utf8.h"
#include "template/jinja_int.h"

// ---- region allocator ------------------------------------------------------------------------
struct jchunk {
    struct jchunk *next;
    size_t cap, used;
    max_align_t data[];
};

#define JCHUNK_DEFAULT (64u << 10)

void jmem_init(struct jmem *m, size_t cap)
{
    m->head = NULL;
    m->total = 0;
    m->cap = cap;
}

void jmem_deinit(struct jmem *m)
{
    if (!m) {
        return;
    }
    struct jchunk *c = m->head;
    while (c) {
        struct jchunk *next = c->next;
        llem_free(c);
        c = next;
    }
    m->head = NULL;
    m->total = 0;
}

void *jx_alloc(struct jctx *cx, size_t n)
{
    struct jmem *m = cx->mem;
    n = (n + 15u) & ~(size_t)15u;
    if (n == 0) {
        n = 16;
    }
    struct jchunk *c = m->head;
    if (c && c->cap - c->used >= n) {
        void *p = (char *)c->data + c->used;
        c->used += n;
        return p;
    }
    size_t cap = n > JCHUNK_DEFAULT / 4 ? n : JCHUNK_DEFAULT;
    if (cap > m->cap || m->total + cap > m->cap) {
        jx_fail(cx, LLEM_ELIMIT, "template uses more than %zu MiB of memory", m->cap >> 20);
    }
    struct jchunk *nc = llem_malloc(sizeof(*nc) + cap);
    if (!nc) {
        jx_fail(cx, LLEM_ENOMEM, "out of memory");
    }
    nc->cap = cap;
    nc->used = n;
    m->total += cap;
    if (c && cap != JCHUNK_DEFAULT && c->cap - c->used > 1024) {
        // A big one-off block goes behind the current chunk so its free space stays usable.
        nc->next = c->next;
        c->next = nc;
    } else {
        nc->next = c;
        m->head = nc;
    }
    return nc->data;
}

void *jx_alloc_array(struct jctx *cx, size_t n, size_t size)
{
    size_t bytes;
    if (!size_mul_ok(n, size, &bytes)) {
        jx_fail(cx, LLEM_ELIMIT, "allocation too large");
    }
    return jx_alloc(cx, bytes);
}

char *jx_strndup(struct jctx *cx, const char *s, size_t n)
{
    char *p = jx_alloc(cx, n + 1);
    if (n) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

// ---- string builder --------------------------------------------------------------------------
static void jsb_grow(struct jctx *cx, struct jsb *b, size_t extra)
{
    if (extra > cx->out_cap || b->n > cx->out_cap - extra) {
        jx_fail(cx, LLEM_ELIMIT, "string longer than %zu bytes", cx->out_cap);
    }
    size_t need = b->n + extra + 1;
    if (need <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < need) {
        cap *= 2;
    }
    char *p = jx_alloc(cx, cap);
    if (b->n) {
        memcpy(p, b->p, b->n);
    }
    b->p = p;
    b->cap = cap;
}

void jsb_put(struct jctx *cx, struct jsb *b, const char *s, size_t n)
{
    if (n == 0) {
        return;
    }
    jsb_grow(cx, b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void jsb_putc(struct jctx *cx, struct jsb *b, char c)
{
    jsb_put(cx, b, &c, 1);
}

void jsb_puts(struct jctx *cx, struct jsb *b, const char *s)
{
    jsb_put(cx, b, s, strlen(s));
}

void jsb_printf(struct jctx *cx, struct jsb *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (k > 0) {
        jsb_put(cx, b, tmp, (size_t)k < sizeof(tmp) ? (size_t)k : sizeof(tmp) - 1);
    }
}

// ---- constructors ----------------------------------------------------------------------------
struct jv jv_undef(const char *name)
{
    struct jv v = {.t = JV_UNDEF};
    v.u.s.p = name;
    v.u.s.n = name ? strlen(name) : 0;
    return v;
}

struct jv jv_none(void)
{
    return (struct jv){.t = JV_NONE};
}

struct jv jv_bool(bool b)
{
    struct jv v = {.t = JV_BOOL};
    v.u.b = b;
    return v;
}

struct jv jv_int(int64_t i)
{
    struct jv v = {.t = JV_INT};
    v.u.i = i;
    return v;
}

struct jv jv_float(double f)
{
    struct jv v = {.t = JV_FLOAT};
    v.u.f = f;
    return v;
}

struct jv jv_str(const char *p, size_t n)
{
    struct jv v = {.t = JV_STR};
    v.u.s.p = n ? p : "";
    v.u.s.n = n;
    return v;
}

struct jv jv_cstr(const char *p)
{
    return jv_str(p, strlen(p));
}

struct jv jv_sb(struct jsb *b)
{
    return jv_str(b->p, b->n);
}

struct jv jv_list_new(struct jctx *cx, size_t cap)
{
    struct jv v = {.t = JV_LIST};
    v.u.l = jx_alloc(cx, sizeof(struct jlist));
    v.u.l->n = 0;
    v.u.l->cap = cap;
    v.u.l->v = cap ? jx_alloc_array(cx, cap, sizeof(struct jv)) : NULL;
    return v;
}

void jv_list_push(struct jctx *cx, struct jv *list, struct jv item)
{
    struct jlist *l = list->u.l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct jv *nv = jx_alloc_array(cx, cap, sizeof(struct jv));
        if (l->n) {
            memcpy(nv, l->v, l->n * sizeof(struct jv));
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = item;
}

struct jv jv_dict_new(struct jctx *cx, size_t cap)
{
    struct jv v = {.t = JV_DICT};
    v.u.d = jx_alloc(cx, sizeof(struct jdict));
    v.u.d->n = 0;
    v.u.d->cap = cap;
    v.u.d->k = cap ? jx_alloc_array(cx, cap, sizeof(struct jv)) : NULL;
    v.u.d->v = cap ? jx_alloc_array(cx, cap, sizeof(struct jv)) : NULL;
    return v;
}

static bool key_eq(struct jv a, struct jv b)
{
    if (a.t == JV_STR && b.t == JV_STR) {
        return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    }
    return jv_eq(a, b);
}

void jv_dict_set(struct jctx *cx, struct jv *dict, struct jv key, struct jv val)
{
    struct jdict *d = dict->u.d;
    for (size_t i = 0; i < d->n; i++) {
        if (key_eq(d->k[i], key)) {
            d->v[i] = val;
            return;
        }
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        struct jv *nk = jx_alloc_array(cx, cap, sizeof(struct jv));
        struct jv *nv = jx_alloc_array(cx, cap, sizeof(struct jv));
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(struct jv));
            memcpy(nv, d->v, d->n * sizeof(struct jv));
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n] = val;
    d->n++;
}

const struct jv *jv_dict_get(const struct jv *dict, struct jv key)
{
    const struct jdict *d = dict->u.d;
    for (size_t i = 0; i < d->n; i++) {
        if (key_eq(d->k[i], key)) {
            return &d->v[i];
        }
    }
    return NULL;
}

const struct jv *jv_dict_gets(const struct jv *dict, const char *key, size_t n)
{
    return jv_dict_get(dict, jv_str(key, n));
}

// ---- predicates ------------------------------------------------------------------------------
bool jv_is_str(struct jv v)
{
    return v.t == JV_STR;
}

bool jv_is_num(struct jv v)
{
    return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
}

bool jv_truthy(struct jv v)
{
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return (v.fl & JVF_GEN) || v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

static double num_f(struct jv v)
{
    return v.t == JV_FLOAT ? v.u.f : v.t == JV_BOOL ? (v.u.b ? 1.0 : 0.0) : (double)v.u.i;
}

static int64_t num_i(struct jv v)
{
    return v.t == JV_BOOL ? (int64_t)v.u.b : v.u.i;
}

bool jv_eq(struct jv a, struct jv b)
{
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t == JV_FLOAT || b.t == JV_FLOAT) {
            return num_f(a) == num_f(b);
        }
        return num_i(a) == num_i(b);
    }
    if (a.t != b.t) {
        return false;
    }
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case JV_LIST:
        if ((a.fl & (JVF_TUPLE | JVF_GEN)) != (b.fl & (JVF_TUPLE | JVF_GEN))) {
            return false;
        }
        if (a.fl & JVF_GEN) {
            return a.u.l == b.u.l;
        }
        if (a.u.l->n != b.u.l->n) {
            return false;
        }
        for (size_t i = 0; i < a.u.l->n; i++) {
            if (!jv_eq(a.u.l->v[i], b.u.l->v[i])) {
                return false;
            }
        }
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) {
            return false;
        }
        for (size_t i = 0; i < a.u.d->n; i++) {
            const struct jv *o = jv_dict_get(&b, a.u.d->k[i]);
            if (!o || !jv_eq(a.u.d->v[i], *o)) {
                return false;
            }
        }
        return true;
    case JV_NS: return a.u.d == b.u.d;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_BUILTIN: return a.u.builtin == b.u.builtin;
    case JV_METHOD: return a.u.meth == b.u.meth;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

const char *jv_type_name(struct jv v)
{
    switch (v.t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return (v.fl & JVF_GEN) ? "generator" : (v.fl & JVF_TUPLE) ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_MACRO: return "Macro";
    case JV_BUILTIN: return "function";
    case JV_METHOD: return "builtin_function_or_method";
    case JV_LOOP: return "LoopContext";
    default: return "object";
    }
}

int jv_cmp(struct jctx *cx, struct jv a, struct jv b)
{
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t == JV_FLOAT || b.t == JV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        int64_t x = num_i(a), y = num_i(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = LLEM_MIN(a.u.s.n, b.u.s.n);
        int c = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        if (c) {
            return c < 0 ? -1 : 1;
        }
        return a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n ? 1 : 0;
    }
    if (a.t == JV_LIST && b.t == JV_LIST && !((a.fl | b.fl) & JVF_GEN) &&
        (a.fl & JVF_TUPLE) == (b.fl & JVF_TUPLE)) {
        size_t n = LLEM_MIN(a.u.l->n, b.u.l->n);
        for (size_t i = 0; i < n; i++) {
            if (!jv_eq(a.u.l->v[i], b.u.l->v[i])) {
                return jv_cmp(cx, a.u.l->v[i], b.u.l->v[i]);
            }
        }
        return a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n ? 1 : 0;
    }
    if (a.t == JV_UNDEF || b.t == JV_UNDEF) {
        jx_fail(cx, LLEM_EINVAL, "UndefinedError: '%.*s' is undefined",
                (int)(a.t == JV_UNDEF ? a.u.s.n : b.u.s.n),
                a.t == JV_UNDEF ? (a.u.s.p ? a.u.s.p : "") : (b.u.s.p ? b.u.s.p : ""));
    }
    jx_fail(cx, LLEM_EINVAL, "TypeError: '<' not supported between instances of '%s' and '%s'",
            jv_type_name(a), jv_type_name(b));
}

// ---- str() and repr() ------------------------------------------------------------------------
// Decimal exponent after 'e' (sign and digits, produced by printf: always well formed).
static int atoi_exp(const char *p)
{
    int sign = 1, v = 0;
    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        p++;
    }
    return sign * v;
}

void jv_float_repr(double f, char buf[32])
{
    if (isnan(f)) {
        snprintf(buf, 32, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, 32, f < 0 ? "-inf" : "inf");
        return;
    }
    // Shortest digits that round-trip, as Python's repr does.
    char digits[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(digits, sizeof(digits), "%.*e", prec - 1, f);
        if (strtod(digits, NULL) == f) {
            break;
        }
    }
    // digits is "[-]d.ddde[+-]XX": split mantissa digits and exponent.
    const char *p = digits;
    bool negative = false;
    if (*p == '-') {
        negative = true;
        p++;
    }
    char mant[24];
    size_t nm = 0;
    while (*p && *p != 'e') {
        if (*p != '.' && nm < sizeof(mant) - 1) {
            mant[nm++] = *p;
        }
        p++;
    }
    mant[nm] = '\0';
    int exp10 = *p == 'e' ? atoi_exp(p + 1) : 0;
    while (nm > 1 && mant[nm - 1] == '0') {
        mant[--nm] = '\0';
    }
    char *o = buf;
    char *end = buf + 31;
    if (negative) {
        *o++ = '-';
    }
    if (exp10 < -4 || exp10 >= 16) {
        *o++ = mant[0];
        if (nm > 1) {
            *o++ = '.';
            for (size_t i = 1; i < nm && o < end - 6; i++) {
                *o++ = mant[i];
            }
        }
        snprintf(o, (size_t)(end - o) + 1, "e%c%02d", exp10 < 0 ? '-' : '+',
                 exp10 < 0 ? -exp10 : exp10);
        return;
    }
    if (exp10 < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -exp10 - 1; i++) {
            *o++ = '0';
        }
        for (size_t i = 0; i < nm && o < end; i++) {
            *o++ = mant[i];
        }
        *o = '\0';
        return;
    }
    // exp10 in [0, 15]: integer part has exp10 + 1 digits.
    for (int i = 0; i <= exp10; i++) {
        *o++ = (size_t)i < nm ? mant[i] : '0';
    }
    *o++ = '.';
    if ((size_t)exp10 + 1 < nm) {
        for (size_t i = (size_t)exp10 + 1; i < nm && o < end; i++) {
            *o++ = mant[i];
        }
    } else {
        *o++ = '0';
    }
    *o = '\0';
}

// True for code points Python's str.isprintable() rejects beyond ASCII controls (an
// approximation of the Unicode categories Cc, Cf, Zl, Zp, Zs-except-space).
static bool cp_unprintable(uint32_t c)
{
    return (c >= 0x80 && c <= 0xa0) || c == 0xad || c == 0x1680 || (c >= 0x2000 && c <= 0x200f) ||
           (c >= 0x2028 && c <= 0x202f) || (c >= 0x205f && c <= 0x2064) || c == 0x3000 ||
           c == 0xfeff || (c >= 0xd800 && c <= 0xdfff);
}

static void repr_str(struct jctx *cx, struct jsb *b, const char *s, size_t n)
{
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jsb_putc(cx, b, q);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == (unsigned char)q || c == '\\') {
            jsb_putc(cx, b, '\\');
            jsb_putc(cx, b, (char)c);
            i++;
        } else if (c == '\n') {
            jsb_puts(cx, b, "\\n");
            i++;
        } else if (c == '\r') {
            jsb_puts(cx, b, "\\r");
            i++;
        } else if (c == '\t') {
            jsb_puts(cx, b, "\\t");
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            jsb_printf(cx, b, "\\x%02x", c);
            i++;
        } else if (c < 0x80) {
            jsb_putc(cx, b, (char)c);
            i++;
        } else {
            uint32_t cp;
            int k = utf8_decode(s + i, n - i, &cp);
            if (k == 0) {
                jsb_printf(cx, b, "\\udc%02x", c); // Python's surrogateescape look
                i++;
                continue;
            }
            if (cp_unprintable(cp)) {
                if (cp <= 0xff) {
                    jsb_printf(cx, b, "\\x%02x", (unsigned)cp);
                } else {
                    jsb_printf(cx, b, "\\u%04x", (unsigned)cp);
                }
            } else {
                jsb_put(cx, b, s + i, (size_t)k);
            }
            i += (size_t)k;
        }
    }
    jsb_putc(cx, b, q);
}

static void check_depth(struct jctx *cx)
{
    if (++cx->depth > JINJA_MAX_EVAL_DEPTH) {
        jx_fail(cx, LLEM_ELIMIT, "value nested too deeply");
    }
}

static void repr_or_str(struct jctx *cx, struct jsb *b, struct jv v, bool repr)
{
    char tmp[32];
    switch (v.t) {
    case JV_UNDEF:
        if (repr) {
            jsb_puts(cx, b, "Undefined");
        }
        return;
    case JV_NONE: jsb_puts(cx, b, "None"); return;
    case JV_BOOL: jsb_puts(cx, b, v.u.b ? "True" : "False"); return;
    case JV_INT: jsb_printf(cx, b, "%lld", (long long)v.u.i); return;
    case JV_FLOAT: jv_float_repr(v.u.f, tmp); jsb_puts(cx, b, tmp); return;
    case JV_STR:
        if (!repr) {
            jsb_put(cx, b, v.u.s.p, v.u.s.n);
        } else {
            if (v.fl & JVF_MARKUP) {
                jsb_puts(cx, b, "Markup(");
            }
            repr_str(cx, b, v.u.s.p, v.u.s.n);
            if (v.fl & JVF_MARKUP) {
                jsb_putc(cx, b, ')');
            }
        }
        return;
    case JV_LIST: {
        if (v.fl & JVF_GEN) {
            jsb_puts(cx, b, "<generator object>");
            return;
        }
        bool tuple = v.fl & JVF_TUPLE;
        check_depth(cx);
        jsb_putc(cx, b, tuple ? '(' : '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) {
                jsb_puts(cx, b, ", ");
            }
            repr_or_str(cx, b, v.u.l->v[i], true);
        }
        if (tuple && v.u.l->n == 1) {
            jsb_putc(cx, b, ',');
        }
        jsb_putc(cx, b, tuple ? ')' : ']');
        cx->depth--;
        return;
    }
    case JV_NS:
    case JV_DICT:
        check_depth(cx);
        if (v.t == JV_NS) {
            jsb_puts(cx, b, "<Namespace ");
        }
        jsb_putc(cx, b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) {
                jsb_puts(cx, b, ", ");
            }
            repr_or_str(cx, b, v.u.d->k[i], true);
            jsb_puts(cx, b, ": ");
            repr_or_str(cx, b, v.u.d->v[i], true);
        }
        jsb_putc(cx, b, '}');
        if (v.t == JV_NS) {
            jsb_putc(cx, b, '>');
        }
        cx->depth--;
        return;
    case JV_MACRO: jsb_puts(cx, b, "<Macro>"); return;
    case JV_BUILTIN: jsb_printf(cx, b, "<function %s>", jinja_builtin_name(v.u.builtin)); return;
    case JV_METHOD: jsb_printf(cx, b, "<built-in method %s>", v.u.meth->name); return;
    case JV_LOOP: jsb_puts(cx, b, "<LoopContext>"); return;
    default: return;
    }
}

void jv_str_into(struct jctx *cx, struct jsb *b, struct jv v)
{
    repr_or_str(cx, b, v, false);
}

void jv_repr_into(struct jctx *cx, struct jsb *b, struct jv v)
{
    repr_or_str(cx, b, v, true);
}

struct jv jv_to_str(struct jctx *cx, struct jv v)
{
    if (v.t == JV_STR) {
        return v;
    }
    if (v.t == JV_UNDEF) {
        return jv_str("", 0);
    }
    struct jsb b = {0};
    jv_str_into(cx, &b, v);
    return jv_sb(&b);
}

// ---- json.dumps ------------------------------------------------------------------------------
static void json_str(struct jctx *cx, struct jsb *b, const char *s, size_t n, bool ascii)
{
    jsb_putc(cx, b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': jsb_puts(cx, b, "\\\""); i++; continue;
        case '\\': jsb_puts(cx, b, "\\\\"); i++; continue;
        case '\n': jsb_puts(cx, b, "\\n"); i++; continue;
        case '\r': jsb_puts(cx, b, "\\r"); i++; continue;
        case '\t': jsb_puts(cx, b, "\\t"); i++; continue;
        case '\b': jsb_puts(cx, b, "\\b"); i++; continue;
        case '\f': jsb_puts(cx, b, "\\f"); i++; continue;
        default: break;
        }
        if (c < 0x20 || (ascii && c == 0x7f)) {
            jsb_printf(cx, b, "\\u%04x", c);
            i++;
            continue;
        }
        if (c < 0x80 || !ascii) {
            // Copy the run of ordinary bytes at once.
            size_t j = i + 1;
            while (j < n && (unsigned char)s[j] >= 0x20 && s[j] != '"' && s[j] != '\\' &&
                   (!ascii || (unsigned char)s[j] < 0x7f)) {
                j++;
            }
            jsb_put(cx, b, s + i, j - i);
            i = j;
            continue;
        }
        uint32_t cp;
        int k = utf8_decode(s + i, n - i, &cp);
        if (k == 0) {
            cp = 0xfffd;
            k = 1;
        }
        if (cp >= 0x10000) {
            uint32_t x = cp - 0x10000;
            jsb_printf(cx, b, "\\u%04x\\u%04x", (unsigned)(0xd800 + (x >> 10)),
                       (unsigned)(0xdc00 + (x & 0x3ff)));
        } else {
            jsb_printf(cx, b, "\\u%04x", (unsigned)cp);
        }
        i += (size_t)k;
    }
    jsb_putc(cx, b, '"');
}

static void json_newline(struct jctx *cx, struct jsb *b, const struct json_opts *o, int level)
{
    jsb_putc(cx, b, '\n');
    for (int i = 0; i < level; i++) {
        jsb_put(cx, b, o->indent, o->indent_n);
    }
}

static void json_key(struct jctx *cx, struct jsb *b, struct jv k, const struct json_opts *o)
{
    char tmp[32];
    switch (k.t) {
    case JV_STR: json_str(cx, b, k.u.s.p, k.u.s.n, o->ensure_ascii); return;
    case JV_INT: jsb_printf(cx, b, "\"%lld\"", (long long)k.u.i); return;
    case JV_BOOL: jsb_puts(cx, b, k.u.b ? "\"true\"" : "\"false\""); return;
    case JV_NONE: jsb_puts(cx, b, "\"null\""); return;
    case JV_FLOAT:
        jv_float_repr(k.u.f, tmp);
        jsb_printf(cx, b, "\"%s\"", tmp);
        return;
    default:
        jx_fail(cx, LLEM_EINVAL, "TypeError: keys must be str, int, float, bool or None, not %s",
                jv_type_name(k));
    }
}

static int key_order_cmp(struct jctx *cx, const struct jv *keys, size_t a, size_t b)
{
    return jv_cmp(cx, keys[a], keys[b]);
}

static void json_value(struct jctx *cx, struct jsb *b, struct jv v, const struct json_opts *o,
                       int level)
{
    char tmp[32];
    switch (v.t) {
    case JV_NONE: jsb_puts(cx, b, "null"); return;
    case JV_BOOL: jsb_puts(cx, b, v.u.b ? "true" : "false"); return;
    case JV_INT: jsb_printf(cx, b, "%lld", (long long)v.u.i); return;
    case JV_FLOAT:
        if (isnan(v.u.f)) {
            jsb_puts(cx, b, "NaN");
        } else if (isinf(v.u.f)) {
            jsb_puts(cx, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        } else {
            jv_float_repr(v.u.f, tmp);
            jsb_puts(cx, b, tmp);
        }
        return;
    case JV_STR: json_str(cx, b, v.u.s.p, v.u.s.n, o->ensure_ascii); return;
    case JV_LIST: {
        if (v.fl & JVF_GEN) {
            jx_fail(cx, LLEM_EINVAL, "TypeError: Object of type generator is not JSON serializable");
        }
        if (v.u.l->n == 0) {
            jsb_puts(cx, b, "[]");
            return;
        }
        check_depth(cx);
        jsb_putc(cx, b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) {
                jsb_puts(cx, b, o->item_sep);
            }
            if (o->indent) {
                json_newline(cx, b, o, level + 1);
            }
            json_value(cx, b, v.u.l->v[i], o, level + 1);
        }
        if (o->indent) {
            json_newline(cx, b, o, level);
        }
        jsb_putc(cx, b, ']');
        cx->depth--;
        return;
    }
    case JV_DICT: {
        const struct jdict *d = v.u.d;
        if (d->n == 0) {
            jsb_puts(cx, b, "{}");
            return;
        }
        check_depth(cx);
        size_t *order = jx_alloc_array(cx, d->n, sizeof(size_t));
        for (size_t i = 0; i < d->n; i++) {
            order[i] = i;
        }
        if (o->sort_keys) { // insertion sort: stable, dicts are small
            for (size_t i = 1; i < d->n; i++) {
                size_t x = order[i], j = i;
                while (j > 0 && key_order_cmp(cx, d->k, order[j - 1], x) > 0) {
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = x;
            }
        }
        jsb_putc(cx, b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) {
                jsb_puts(cx, b, o->item_sep);
            }
            if (o->indent) {
                json_newline(cx, b, o, level + 1);
            }
            json_key(cx, b, d->k[order[i]], o);
            jsb_puts(cx, b, o->key_sep);
            json_value(cx, b, d->v[order[i]], o, level + 1);
        }
        if (o->indent) {
            json_newline(cx, b, o, level);
        }
        jsb_putc(cx, b, '}');
        cx->depth--;
        return;
    }
    case JV_UNDEF:
        jx_fail(cx, LLEM_EINVAL, "UndefinedError: '%.*s' is undefined", (int)v.u.s.n,
                v.u.s.p ? v.u.s.p : "");
    default:
        jx_fail(cx, LLEM_EINVAL, "TypeError: Object of type %s is not JSON serializable",
                jv_type_name(v));
    }
}

void jv_tojson_into(struct jctx *cx, struct jsb *b, struct jv v, const struct json_opts *o)
{
    json_value(cx, b, v, o, 0);
}

// ---- JSON variables --------------------------------------------------------------------------
// cJSON keeps numbers as doubles; Python's json keeps "1" an int and "1.0" a float. The number
// literals are therefore read again from the text, in document order, which is also the order
// in which the conversion below visits cJSON's items.
struct numscan {
    const char *s;
    size_t n, pos;
};

// Next number literal in the JSON text: its span. False at the end.
static bool numscan_next(struct numscan *ns, const char **p, size_t *len)
{
    while (ns->pos < ns->n) {
        char c = ns->s[ns->pos];
        if (c == '"') {
            ns->pos++;
            while (ns->pos < ns->n && ns->s[ns->pos] != '"') {
                ns->pos += ns->s[ns->pos] == '\\' ? 2 : 1;
            }
            ns->pos++;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t st = ns->pos;
            while (ns->pos < ns->n && strchr("+-0123456789.eE", ns->s[ns->pos]) &&
                   ns->s[ns->pos] != '\0') {
                ns->pos++;
            }
            *p = ns->s + st;
            *len = ns->pos - st;
            return true;
        }
        ns->pos++;
    }
    return false;
}

static struct jv from_cjson(struct jctx *cx, const cJSON *j, struct numscan *ns, int depth)
{
    if (depth > (int)LLEM_JSON_MAX_DEPTH) {
        jx_fail(cx, LLEM_ELIMIT, "variables nested deeper than %u", LLEM_JSON_MAX_DEPTH);
    }
    if (cJSON_IsNull(j)) {
        return jv_none();
    }
    if (cJSON_IsBool(j)) {
        return jv_bool(cJSON_IsTrue(j));
    }
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        return jv_str(jx_strndup(cx, s, strlen(s)), strlen(s));
    }
    if (cJSON_IsNumber(j)) {
        const char *p;
        size_t n;
        if (numscan_next(ns, &p, &n)) {
            bool is_float = memchr(p, '.', n) || memchr(p, 'e', n) || memchr(p, 'E', n);
            if (!is_float) {
                char tmp[32];
                if (n < sizeof(tmp)) {
                    memcpy(tmp, p, n);
                    tmp[n] = '\0';
                    char *end;
                    errno = 0;
                    long long v = strtoll(tmp, &end, 10);
                    if (*end == '\0' && errno != ERANGE) {
                        return jv_int(v);
                    }
                }
            }
        }
        return jv_float(j->valuedouble);
    }
    if (cJSON_IsArray(j)) {
        struct jv l = jv_list_new(cx, (size_t)cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next) {
            jv_list_push(cx, &l, from_cjson(cx, c, ns, depth + 1));
        }
        return l;
    }
    if (cJSON_IsObject(j)) {
        struct jv d = jv_dict_new(cx, (size_t)cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next) {
            const char *k = c->string ? c->string : "";
            struct jv key = jv_str(jx_strndup(cx, k, strlen(k)), strlen(k));
            jv_dict_set(cx, &d, key, from_cjson(cx, c, ns, depth + 1));
        }
        return d;
    }
    return jv_none();
}

struct jv jv_from_json(struct jctx *cx, const char *json, size_t n)
{
    if (!json || n == 0) {
        return jv_dict_new(cx, 0);
    }
    cJSON *root = cJSON_ParseWithLength(json, n);
    if (!root) {
        jx_fail(cx, LLEM_EINVAL, "variables are not valid JSON");
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        jx_fail(cx, LLEM_EINVAL, "variables must be a JSON object");
    }
    // The conversion may unwind (memory cap); cJSON's tree is not in the region, so convert
    // under a nested handler that frees it first.
    struct numscan ns = {json, n, 0};
    jmp_buf saved;
    memcpy(saved, cx->jb, sizeof(jmp_buf));
    struct jv v;
    if (setjmp(cx->jb) != 0) {
        memcpy(cx->jb, saved, sizeof(jmp_buf));
        cJSON_Delete(root);
        longjmp(cx->jb, 1);
    }
    v = from_cjson(cx, root, &ns, 0);
    memcpy(cx->jb, saved, sizeof(jmp_buf));
    cJSON_Delete(root);
    return v;
}

// ---- iteration and UTF-8 ---------------------------------------------------------------------
size_t jv_utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            k++;
        }
    }
    return k;
}

size_t jv_utf8_off(const char *s, size_t n, size_t ci)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (k == ci) {
                return i;
            }
            k++;
        }
    }
    return n;
}

struct jv jv_iter_list(struct jctx *cx, struct jv v)
{
    switch (v.t) {
    case JV_UNDEF: return jv_list_new(cx, 0);
    case JV_LIST: return v;
    case JV_DICT: {
        struct jv l = jv_list_new(cx, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) {
            jv_list_push(cx, &l, v.u.d->k[i]);
        }
        return l;
    }
    case JV_STR: {
        struct jv l = jv_list_new(cx, v.u.s.n);
        size_t i = 0;
        while (i < v.u.s.n) {
            size_t j = i + 1;
            while (j < v.u.s.n && ((unsigned char)v.u.s.p[j] & 0xc0) == 0x80) {
                j++;
            }
            jv_list_push(cx, &l, jv_str(v.u.s.p + i, j - i));
            i = j;
        }
        return l;
    }
    default:
        jx_fail(cx, LLEM_EINVAL, "TypeError: '%s' object is not iterable", jv_type_name(v));
    }
}
