// template/jinja_builtins.c: jinja2's filters and tests as the chat templates use them
// (tojson as transformers defines it, selectattr/map/..., default, join, trim, ...) and the
// global functions of transformers' environment (range with the sandbox's cap, namespace,
// dict, raise_exception, strftime_now). Tables map names to functions; unknown names are
// reported by the parser (or at run time inside a conditional, as jinja2 does).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja_int.h"

// jinja2's sandbox refuses ranges longer than this (MAX_RANGE).
#define JINJA_MAX_RANGE 100000

typedef struct jv (*filter_fn)(struct jctx *cx, struct jv in, const struct jargs *a);
typedef bool (*test_fn)(struct jctx *cx, struct jv in, const struct jargs *a);

static const struct jv *arg(const struct jargs *a, size_t pos, const char *kw)
{
    return jargs_get(a, pos, kw);
}

static bool arg_bool(const struct jargs *a, size_t pos, const char *kw, bool def)
{
    const struct jv *v = arg(a, pos, kw);
    return v ? jv_truthy(*v) : def;
}

static struct jv in_str(struct jctx *cx, struct jv in)
{
    return jv_to_str(cx, in);
}

static _Noreturn void undefined_fail(struct jctx *cx, struct jv u)
{
    jx_fail(cx, LLEM_EINVAL, "UndefinedError: '%.*s' is undefined", (int)u.u.s.n,
            u.u.s.p ? u.u.s.p : "");
}

static struct jv list_like(struct jctx *cx, struct jv in)
{
    return jv_iter_list(cx, in);
}

// Item-first lookup along a dotted path ("function.name", "0"), as jinja2's attrgetter.
static struct jv attr_path(struct jctx *cx, struct jv item, struct jv path)
{
    if (path.t == JV_INT) {
        return jinja_getitem(cx, item, path);
    }
    if (path.t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: attribute must be a string");
    }
    const char *p = path.u.s.p;
    size_t n = path.u.s.n, st = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '.') {
            continue;
        }
        struct jv key = jv_str(p + st, i - st);
        bool digits = i > st;
        int64_t idx = 0;
        for (size_t k = st; k < i; k++) {
            if (p[k] < '0' || p[k] > '9' || idx > 100000000) {
                digits = false;
                break;
            }
            idx = idx * 10 + (p[k] - '0');
        }
        if (digits) {
            key = jv_int(idx);
        }
        item = jinja_getitem(cx, item, key);
        st = i + 1;
    }
    return item;
}

// ---- filters ---------------------------------------------------------------------------------
static struct jv f_tojson(struct jctx *cx, struct jv in, const struct jargs *a)
{
    struct json_opts o = {.item_sep = ", ", .key_sep = ": "};
    o.ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
    const struct jv *ind = arg(a, 1, "indent");
    char spaces[64];
    if (ind && ind->t != JV_NONE) {
        if (ind->t == JV_INT || ind->t == JV_BOOL) {
            int64_t k = ind->t == JV_BOOL ? ind->u.b : ind->u.i;
            if (k < 0) {
                k = 0;
            }
            if (k > 63) {
                jx_fail(cx, LLEM_ELIMIT, "tojson indent larger than 63");
            }
            memset(spaces, ' ', (size_t)k);
            spaces[k] = '\0';
            o.indent = spaces;
            o.indent_n = (size_t)k;
        } else if (ind->t == JV_STR) {
            o.indent = ind->u.s.p;
            o.indent_n = ind->u.s.n;
        } else {
            jx_fail(cx, LLEM_EINVAL, "TypeError: tojson indent must be an int or str");
        }
        o.item_sep = ",";
    }
    const struct jv *sep = arg(a, 2, "separators");
    if (sep && sep->t != JV_NONE) {
        if (sep->t != JV_LIST || sep->u.l->n != 2 || sep->u.l->v[0].t != JV_STR ||
            sep->u.l->v[1].t != JV_STR) {
            jx_fail(cx, LLEM_EINVAL, "TypeError: tojson separators must be two strings");
        }
        o.item_sep = jx_strndup(cx, sep->u.l->v[0].u.s.p, sep->u.l->v[0].u.s.n);
        o.key_sep = jx_strndup(cx, sep->u.l->v[1].u.s.p, sep->u.l->v[1].u.s.n);
    }
    o.sort_keys = arg_bool(a, 3, "sort_keys", false);
    struct jsb b = {0};
    jv_tojson_into(cx, &b, in, &o);
    return jv_sb(&b);
}

static struct jv f_length(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    switch (in.t) {
    case JV_UNDEF: return jv_int(0);
    case JV_STR: return jv_int((int64_t)jv_utf8_len(in.u.s.p, in.u.s.n));
    case JV_LIST: return jv_int((int64_t)in.u.l->n);
    case JV_DICT:
    case JV_NS: return jv_int((int64_t)in.u.d->n);
    default:
        jx_fail(cx, LLEM_EINVAL, "TypeError: object of type '%s' has no len()", jv_type_name(in));
    }
}

static struct jv f_trim(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return jinja_py_strip(cx, in_str(cx, in), arg(a, 0, "chars"), 3);
}

static struct jv f_string(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    return in_str(cx, in);
}

static struct jv f_default(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    const struct jv *d = arg(a, 0, "default_value");
    bool boolean = arg_bool(a, 1, "boolean", false);
    if (in.t == JV_UNDEF || (boolean && !jv_truthy(in))) {
        return d ? *d : jv_str("", 0);
    }
    return in;
}

static struct jv f_join(struct jctx *cx, struct jv in, const struct jargs *a)
{
    const struct jv *sep = arg(a, 0, "d");
    const struct jv *attr = arg(a, 1, "attribute");
    struct jv items = list_like(cx, in);
    struct jv s = sep ? in_str(cx, *sep) : jv_str("", 0);
    struct jsb b = {0};
    for (size_t i = 0; i < items.u.l->n; i++) {
        if (i) {
            jsb_put(cx, &b, s.u.s.p, s.u.s.n);
        }
        struct jv it = items.u.l->v[i];
        if (attr && attr->t != JV_NONE) {
            it = attr_path(cx, it, *attr);
        }
        jv_str_into(cx, &b, it);
    }
    return b.n ? jv_sb(&b) : jv_str("", 0);
}

static struct jv f_items(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    if (in.t == JV_UNDEF) {
        return jv_list_new(cx, 0);
    }
    if (in.t != JV_DICT) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: can only get item pairs from a mapping.");
    }
    struct jv out = jv_list_new(cx, in.u.d->n);
    for (size_t i = 0; i < in.u.d->n; i++) {
        struct jv pair = jv_list_new(cx, 2);
        pair.fl = JVF_TUPLE;
        jv_list_push(cx, &pair, in.u.d->k[i]);
        jv_list_push(cx, &pair, in.u.d->v[i]);
        jv_list_push(cx, &out, pair);
    }
    return out;
}

static struct jv f_list(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    struct jv items = list_like(cx, in);
    struct jv out = jv_list_new(cx, items.u.l->n);
    for (size_t i = 0; i < items.u.l->n; i++) {
        jv_list_push(cx, &out, items.u.l->v[i]);
    }
    return out;
}

// select / reject / selectattr / rejectattr: attr = with an attribute, keep = select.
static struct jv select_common(struct jctx *cx, struct jv in, const struct jargs *a, bool attr,
                               bool keep)
{
    struct jv items = list_like(cx, in);
    size_t first = attr ? 1 : 0;
    const struct jv *path = attr ? arg(a, 0, NULL) : NULL;
    if (attr && !path) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: missing parameter 'attr'");
    }
    const struct jv *test = arg(a, first, NULL);
    if (test && test->t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: test name must be a string");
    }
    const char *tname = test ? jx_strndup(cx, test->u.s.p, test->u.s.n) : NULL;
    if (tname && !jinja_test_exists(tname)) {
        jx_fail(cx, LLEM_EINVAL, "TemplateRuntimeError: No test named '%s'.", tname);
    }
    struct jargs ta = {0};
    if (a->n_pos > first + 1) {
        ta.pos = a->pos + first + 1;
        ta.n_pos = a->n_pos - first - 1;
    }
    struct jv out = jv_list_new(cx, items.u.l->n);
    out.fl = JVF_GEN;
    for (size_t i = 0; i < items.u.l->n; i++) {
        struct jv it = items.u.l->v[i];
        struct jv x = path ? attr_path(cx, it, *path) : it;
        bool r = tname ? jinja_apply_test(cx, tname, x, &ta) : jv_truthy(x);
        if (r == keep) {
            jv_list_push(cx, &out, it);
        }
    }
    return out;
}

static struct jv f_select(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return select_common(cx, in, a, false, true);
}

static struct jv f_reject(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return select_common(cx, in, a, false, false);
}

static struct jv f_selectattr(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return select_common(cx, in, a, true, true);
}

static struct jv f_rejectattr(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return select_common(cx, in, a, true, false);
}

static struct jv f_map(struct jctx *cx, struct jv in, const struct jargs *a)
{
    struct jv items = list_like(cx, in);
    struct jv out = jv_list_new(cx, items.u.l->n);
    out.fl = JVF_GEN;
    if (!jv_truthy(in)) { // jinja2 checks the arguments only for a truthy input
        return out;
    }
    const struct jv *attr = arg(a, SIZE_MAX, "attribute");
    if (attr) {
        const struct jv *def = arg(a, SIZE_MAX, "default");
        for (size_t i = 0; i < items.u.l->n; i++) {
            struct jv x = attr_path(cx, items.u.l->v[i], *attr);
            if (x.t == JV_UNDEF && def) {
                x = *def;
            }
            jv_list_push(cx, &out, x);
        }
        return out;
    }
    const struct jv *fname = arg(a, 0, NULL);
    if (!fname || fname->t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: map requires a filter name or attribute=");
    }
    const char *name = jx_strndup(cx, fname->u.s.p, fname->u.s.n);
    if (!jinja_filter_exists(name)) {
        jx_fail(cx, LLEM_EINVAL, "TemplateRuntimeError: No filter named '%s'.", name);
    }
    struct jargs fa = {.kw = a->kw, .kwv = a->kwv, .n_kw = a->n_kw};
    if (a->n_pos > 1) {
        fa.pos = a->pos + 1;
        fa.n_pos = a->n_pos - 1;
    }
    for (size_t i = 0; i < items.u.l->n; i++) {
        jv_list_push(cx, &out, jinja_apply_filter(cx, name, items.u.l->v[i], &fa));
    }
    return out;
}

static struct jv f_safe(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    struct jv s = in_str(cx, in);
    s.fl |= JVF_MARKUP;
    return s;
}

static struct jv f_escape(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    if (in.t == JV_STR && (in.fl & JVF_MARKUP)) {
        return in;
    }
    struct jv s = in_str(cx, in);
    struct jv amp = jinja_py_replace(cx, s, jv_cstr("&"), jv_cstr("&amp;"), -1);
    amp = jinja_py_replace(cx, amp, jv_cstr("<"), jv_cstr("&lt;"), -1);
    amp = jinja_py_replace(cx, amp, jv_cstr(">"), jv_cstr("&gt;"), -1);
    amp = jinja_py_replace(cx, amp, jv_cstr("\""), jv_cstr("&#34;"), -1);
    amp = jinja_py_replace(cx, amp, jv_cstr("'"), jv_cstr("&#39;"), -1);
    amp.fl |= JVF_MARKUP;
    return amp;
}

// Sort key: the attribute (if any), lower-cased when not case-sensitive.
static struct jv sort_key(struct jctx *cx, struct jv it, const struct jv *attr, bool cs)
{
    if (attr && attr->t != JV_NONE) {
        it = attr_path(cx, it, *attr);
    }
    if (!cs && it.t == JV_STR) {
        it = jinja_py_case(cx, it, 'l');
    }
    return it;
}

// Stable merge sort of v[0..n) by keys k (parallel arrays).
static void msort(struct jctx *cx, struct jv *v, struct jv *k, size_t n, bool reverse)
{
    if (n < 2) {
        return;
    }
    size_t h = n / 2;
    msort(cx, v, k, h, reverse);
    msort(cx, v + h, k + h, n - h, reverse);
    struct jv *tv = jx_alloc_array(cx, n, sizeof(struct jv));
    struct jv *tk = jx_alloc_array(cx, n, sizeof(struct jv));
    size_t i = 0, j = h, o = 0;
    while (i < h && j < n) {
        int c = jv_cmp(cx, k[j], k[i]);
        bool take_right = reverse ? c > 0 : c < 0;
        if (take_right) {
            tv[o] = v[j];
            tk[o++] = k[j++];
        } else {
            tv[o] = v[i];
            tk[o++] = k[i++];
        }
    }
    while (i < h) {
        tv[o] = v[i];
        tk[o++] = k[i++];
    }
    while (j < n) {
        tv[o] = v[j];
        tk[o++] = k[j++];
    }
    memcpy(v, tv, n * sizeof(struct jv));
    memcpy(k, tk, n * sizeof(struct jv));
}

static struct jv sorted(struct jctx *cx, struct jv items, const struct jv *attr, bool cs,
                        bool reverse)
{
    size_t n = items.u.l->n;
    struct jv out = jv_list_new(cx, n);
    struct jv *keys = jx_alloc_array(cx, n ? n : 1, sizeof(struct jv));
    for (size_t i = 0; i < n; i++) {
        jv_list_push(cx, &out, items.u.l->v[i]);
        keys[i] = sort_key(cx, items.u.l->v[i], attr, cs);
    }
    msort(cx, out.u.l->v, keys, n, reverse);
    return out;
}

static struct jv f_sort(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return sorted(cx, list_like(cx, in), arg(a, 2, "attribute"),
                  arg_bool(a, 1, "case_sensitive", false), arg_bool(a, 0, "reverse", false));
}

static struct jv f_dictsort(struct jctx *cx, struct jv in, const struct jargs *a)
{
    if (in.t != JV_DICT) {
        if (in.t == JV_UNDEF) {
            undefined_fail(cx, in);
        }
        jx_fail(cx, LLEM_EINVAL, "TypeError: dictsort requires a mapping");
    }
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const struct jv *by = arg(a, 1, "by");
    bool by_value = by && by->t == JV_STR && by->u.s.n == 5 && memcmp(by->u.s.p, "value", 5) == 0;
    struct jv pairs = f_items(cx, in, a);
    struct jv idx = jv_int(by_value ? 1 : 0);
    return sorted(cx, pairs, &idx, cs, arg_bool(a, 2, "reverse", false));
}

static struct jv f_unique(struct jctx *cx, struct jv in, const struct jargs *a)
{
    struct jv items = list_like(cx, in);
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const struct jv *attr = arg(a, 1, "attribute");
    struct jv out = jv_list_new(cx, items.u.l->n);
    struct jv seen = jv_list_new(cx, items.u.l->n);
    out.fl = JVF_GEN;
    for (size_t i = 0; i < items.u.l->n; i++) {
        struct jv k = sort_key(cx, items.u.l->v[i], attr, cs);
        bool dup = false;
        for (size_t j = 0; j < seen.u.l->n && !dup; j++) {
            dup = jv_eq(seen.u.l->v[j], k);
        }
        if (!dup) {
            jv_list_push(cx, &seen, k);
            jv_list_push(cx, &out, items.u.l->v[i]);
        }
    }
    return out;
}

static struct jv minmax(struct jctx *cx, struct jv in, const struct jargs *a, int sign)
{
    struct jv items = list_like(cx, in);
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const struct jv *attr = arg(a, 1, "attribute");
    if (items.u.l->n == 0) {
        return jv_undef("min/max of an empty sequence");
    }
    size_t best = 0;
    struct jv bk = sort_key(cx, items.u.l->v[0], attr, cs);
    for (size_t i = 1; i < items.u.l->n; i++) {
        struct jv k = sort_key(cx, items.u.l->v[i], attr, cs);
        if (jv_cmp(cx, k, bk) * sign < 0) {
            best = i;
            bk = k;
        }
    }
    return items.u.l->v[best];
}

static struct jv f_min(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return minmax(cx, in, a, 1);
}

static struct jv f_max(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return minmax(cx, in, a, -1);
}

static struct jv f_first(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    struct jv items = list_like(cx, in);
    return items.u.l->n ? items.u.l->v[0] : jv_undef("first of an empty sequence");
}

static struct jv f_last(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    struct jv items = list_like(cx, in);
    return items.u.l->n ? items.u.l->v[items.u.l->n - 1] : jv_undef("last of an empty sequence");
}

static struct jv f_reverse(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    struct jv items = list_like(cx, in);
    if (in.t == JV_STR) {
        struct jsb b = {0};
        for (size_t i = items.u.l->n; i > 0; i--) {
            jv_str_into(cx, &b, items.u.l->v[i - 1]);
        }
        return b.n ? jv_sb(&b) : jv_str("", 0);
    }
    struct jv out = jv_list_new(cx, items.u.l->n);
    out.fl = JVF_GEN;
    for (size_t i = items.u.l->n; i > 0; i--) {
        jv_list_push(cx, &out, items.u.l->v[i - 1]);
    }
    return out;
}

static struct jv f_upper(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    return jinja_py_case(cx, in_str(cx, in), 'u');
}

static struct jv f_lower(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    return jinja_py_case(cx, in_str(cx, in), 'l');
}

static struct jv f_capitalize(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    return jinja_py_case(cx, in_str(cx, in), 'c');
}

// jinja2's title: words start after '-', whitespace and opening brackets.
static struct jv f_title(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    struct jv s = in_str(cx, in);
    char *o = jx_alloc(cx, s.u.s.n + 1);
    bool start = true;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        bool sep = c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
                   c == '\v' || c == '(' || c == '{' || c == '[' || c == '<';
        if (sep) {
            o[i] = c;
            start = true;
        } else {
            o[i] = start ? (c >= 'a' && c <= 'z' ? (char)(c - 32) : c)
                         : (c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
            start = false;
        }
    }
    o[s.u.s.n] = '\0';
    return jv_str(o, s.u.s.n);
}

static struct jv f_replace(struct jctx *cx, struct jv in, const struct jargs *a)
{
    const struct jv *old = arg(a, 0, "old"), *new_ = arg(a, 1, "new"), *cnt = arg(a, 2, "count");
    if (!old || !new_) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: replace needs two arguments");
    }
    int64_t count = cnt && cnt->t == JV_INT ? cnt->u.i : -1;
    return jinja_py_replace(cx, in_str(cx, in), in_str(cx, *old), in_str(cx, *new_), count);
}

static struct jv f_indent(struct jctx *cx, struct jv in, const struct jargs *a)
{
    const struct jv *w = arg(a, 0, "width");
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    struct jv ind;
    if (!w) {
        ind = jv_str("    ", 4);
    } else if (w->t == JV_STR) {
        ind = *w;
    } else if (w->t == JV_INT) {
        int64_t k = w->u.i < 0 ? 0 : w->u.i;
        if (k > 1024) {
            jx_fail(cx, LLEM_ELIMIT, "indent width larger than 1024");
        }
        char *p = jx_alloc(cx, (size_t)k + 1);
        memset(p, ' ', (size_t)k);
        ind = jv_str(p, (size_t)k);
    } else {
        jx_fail(cx, LLEM_EINVAL, "TypeError: indent width must be an int or str");
    }
    struct jv s = in_str(cx, in);
    struct jsb b = {0};
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, st = 0, line = 0;
    // Lines as str.splitlines() of s + "\n" gives them (no trailing empty line).
    while (st < n) {
        size_t e = st;
        while (e < n && p[e] != '\n' && p[e] != '\r') {
            e++;
        }
        size_t next = e < n ? e + ((p[e] == '\r' && e + 1 < n && p[e + 1] == '\n') ? 2 : 1) : n;
        if (line > 0) {
            jsb_putc(cx, &b, '\n');
        }
        bool empty = e == st;
        if ((line > 0 || first) && (blank || !empty)) {
            jsb_put(cx, &b, ind.u.s.p, ind.u.s.n);
        }
        jsb_put(cx, &b, p + st, e - st);
        line++;
        st = next;
    }
    if (line == 0 && first) {
        jsb_put(cx, &b, ind.u.s.p, ind.u.s.n);
    }
    return b.n ? jv_sb(&b) : jv_str("", 0);
}

static struct jv f_int(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    const struct jv *d = arg(a, 0, "default");
    struct jv def = d ? *d : jv_int(0);
    switch (in.t) {
    case JV_INT: return in;
    case JV_BOOL: return jv_int(in.u.b);
    case JV_FLOAT:
        if (!isfinite(in.u.f) || fabs(in.u.f) >= 9.2e18) {
            return def;
        }
        return jv_int((int64_t)in.u.f);
    case JV_STR: {
        char tmp[64];
        struct jv t = jinja_py_strip(cx, in, NULL, 3);
        if (t.u.s.n == 0 || t.u.s.n >= sizeof(tmp)) {
            return def;
        }
        size_t k = 0;
        for (size_t i = 0; i < t.u.s.n; i++) {
            if (t.u.s.p[i] != '_') {
                tmp[k++] = t.u.s.p[i];
            }
        }
        tmp[k] = '\0';
        char *end;
        long long v = strtoll(tmp, &end, 10);
        if (*end == '\0') {
            return jv_int(v);
        }
        double f = strtod(tmp, &end);
        if (*end == '\0' && isfinite(f) && fabs(f) < 9.2e18) {
            return jv_int((int64_t)f);
        }
        return def;
    }
    default: return def;
    }
}

static struct jv f_float(struct jctx *cx, struct jv in, const struct jargs *a)
{
    const struct jv *d = arg(a, 0, "default");
    struct jv def = d ? *d : jv_float(0.0);
    switch (in.t) {
    case JV_INT: return jv_float((double)in.u.i);
    case JV_BOOL: return jv_float(in.u.b ? 1.0 : 0.0);
    case JV_FLOAT: return in;
    case JV_STR: {
        struct jv t = jinja_py_strip(cx, in, NULL, 3);
        char tmp[64];
        if (t.u.s.n == 0 || t.u.s.n >= sizeof(tmp)) {
            return def;
        }
        memcpy(tmp, t.u.s.p, t.u.s.n);
        tmp[t.u.s.n] = '\0';
        char *end;
        double f = strtod(tmp, &end);
        return *end == '\0' ? jv_float(f) : def;
    }
    default: return def;
    }
}

static struct jv f_abs(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    if (in.t == JV_INT) {
        if (in.u.i == INT64_MIN) {
            jx_fail(cx, LLEM_ELIMIT, "integer overflow");
        }
        return jv_int(in.u.i < 0 ? -in.u.i : in.u.i);
    }
    if (in.t == JV_FLOAT) {
        return jv_float(fabs(in.u.f));
    }
    if (in.t == JV_BOOL) {
        return jv_int(in.u.b);
    }
    jx_fail(cx, LLEM_EINVAL, "TypeError: bad operand type for abs(): '%s'", jv_type_name(in));
}

static struct jv f_round(struct jctx *cx, struct jv in, const struct jargs *a)
{
    if (!jv_is_num(in)) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: round needs a number");
    }
    const struct jv *pr = arg(a, 0, "precision");
    int64_t p = pr && pr->t == JV_INT ? pr->u.i : 0;
    if (p < -300 || p > 300) {
        p = p < 0 ? -300 : 300;
    }
    const struct jv *mv = arg(a, 1, "method");
    double x = in.t == JV_FLOAT ? in.u.f : in.t == JV_BOOL ? (in.u.b ? 1.0 : 0.0) : (double)in.u.i;
    double m = pow(10.0, (double)p);
    double y = x * m;
    if (mv && mv->t == JV_STR && mv->u.s.n == 4 && memcmp(mv->u.s.p, "ceil", 4) == 0) {
        y = ceil(y);
    } else if (mv && mv->t == JV_STR && mv->u.s.n == 5 && memcmp(mv->u.s.p, "floor", 5) == 0) {
        y = floor(y);
    } else {
        y = nearbyint(y);
    }
    return jv_float(y / m);
}

static struct jv f_sum(struct jctx *cx, struct jv in, const struct jargs *a)
{
    struct jv items = list_like(cx, in);
    const struct jv *attr = arg(a, 0, "attribute");
    const struct jv *st = arg(a, 1, "start");
    struct jv acc = st ? *st : jv_int(0);
    for (size_t i = 0; i < items.u.l->n; i++) {
        struct jv x = items.u.l->v[i];
        if (attr && attr->t != JV_NONE) {
            x = attr_path(cx, x, *attr);
        }
        if (!jv_is_num(acc) || !jv_is_num(x)) {
            jx_fail(cx, LLEM_EINVAL, "TypeError: sum of non-numbers");
        }
        if (acc.t == JV_FLOAT || x.t == JV_FLOAT) {
            double u = acc.t == JV_FLOAT ? acc.u.f : (double)(acc.t == JV_BOOL ? acc.u.b : acc.u.i);
            double v = x.t == JV_FLOAT ? x.u.f : (double)(x.t == JV_BOOL ? x.u.b : x.u.i);
            acc = jv_float(u + v);
        } else {
            int64_t r;
            if (__builtin_add_overflow(acc.t == JV_BOOL ? acc.u.b : acc.u.i,
                                       x.t == JV_BOOL ? x.u.b : x.u.i, &r)) {
                jx_fail(cx, LLEM_ELIMIT, "integer overflow");
            }
            acc = jv_int(r);
        }
    }
    return acc;
}

static struct jv f_wordcount(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    struct jv s = in_str(cx, in);
    int64_t n = 0;
    bool inw = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        bool w = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || (unsigned char)c >= 0x80;
        if (w && !inw) {
            n++;
        }
        inw = w;
    }
    return jv_int(n);
}

static struct jv f_attr(struct jctx *cx, struct jv in, const struct jargs *a)
{
    const struct jv *name = arg(a, 0, "name");
    if (!name || name->t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: attr needs a name");
    }
    return jinja_getattr(cx, in, name->u.s.p, name->u.s.n);
}

static struct jv f_center(struct jctx *cx, struct jv in, const struct jargs *a)
{
    const struct jv *w = arg(a, 0, "width");
    int64_t width = w && w->t == JV_INT ? w->u.i : 80;
    struct jv s = in_str(cx, in);
    int64_t len = (int64_t)jv_utf8_len(s.u.s.p, s.u.s.n);
    if (width <= len) {
        return s;
    }
    if (width > 4096) {
        jx_fail(cx, LLEM_ELIMIT, "center width larger than 4096");
    }
    int64_t pad = width - len, left = pad / 2 + (pad & width & 1);
    struct jsb b = {0};
    for (int64_t i = 0; i < left; i++) {
        jsb_putc(cx, &b, ' ');
    }
    jsb_put(cx, &b, s.u.s.p, s.u.s.n);
    for (int64_t i = 0; i < pad - left; i++) {
        jsb_putc(cx, &b, ' ');
    }
    return jv_sb(&b);
}

static const struct {
    const char *name;
    filter_fn fn;
} FILTERS[] = {
    {"abs", f_abs},         {"attr", f_attr},       {"capitalize", f_capitalize},
    {"center", f_center},   {"count", f_length},    {"d", f_default},
    {"default", f_default}, {"dictsort", f_dictsort}, {"e", f_escape},
    {"escape", f_escape},   {"first", f_first},     {"float", f_float},
    {"int", f_int},         {"items", f_items},     {"join", f_join},
    {"last", f_last},       {"length", f_length},   {"list", f_list},
    {"lower", f_lower},     {"map", f_map},         {"max", f_max},
    {"min", f_min},         {"reject", f_reject},   {"rejectattr", f_rejectattr},
    {"replace", f_replace}, {"reverse", f_reverse}, {"round", f_round},
    {"safe", f_safe},       {"select", f_select},   {"selectattr", f_selectattr},
    {"sort", f_sort},       {"string", f_string},   {"sum", f_sum},
    {"title", f_title},     {"tojson", f_tojson},   {"trim", f_trim},
    {"unique", f_unique},   {"upper", f_upper},     {"wordcount", f_wordcount},
    {"indent", f_indent},
};

bool jinja_filter_exists(const char *name)
{
    for (size_t i = 0; i < LLEM_ARRAY_LEN(FILTERS); i++) {
        if (strcmp(FILTERS[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

struct jv jinja_apply_filter(struct jctx *cx, const char *name, struct jv in,
                             const struct jargs *a)
{
    for (size_t i = 0; i < LLEM_ARRAY_LEN(FILTERS); i++) {
        if (strcmp(FILTERS[i].name, name) == 0) {
            // Filters that look inside their input fail on undefined like jinja2's do;
            // string-like ones see '' (str(Undefined)).
            return FILTERS[i].fn(cx, in, a);
        }
    }
    jx_fail(cx, LLEM_EINVAL, "TemplateAssertionError: No filter named '%s'.", name);
}

// ---- tests -----------------------------------------------------------------------------------
static const struct jv *targ(struct jctx *cx, const struct jargs *a, const char *test)
{
    const struct jv *v = arg(a, 0, NULL);
    if (!v) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: test '%s' needs an argument", test);
    }
    return v;
}

static bool t_defined(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t != JV_UNDEF;
}
static bool t_undefined(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return !t_defined(cx, in, a);
}
static bool t_none(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_NONE;
}
static bool t_string(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_STR;
}
static bool t_mapping(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_DICT;
}
static bool t_iterable(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_STR || in.t == JV_LIST || in.t == JV_DICT || in.t == JV_UNDEF;
}
static bool t_sequence(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_STR || (in.t == JV_LIST && !(in.fl & JVF_GEN)) || in.t == JV_DICT ||
           in.t == JV_UNDEF;
}
static bool t_number(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return jv_is_num(in);
}
static bool t_integer(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_INT;
}
static bool t_float(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_FLOAT;
}
static bool t_boolean(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_BOOL;
}
static bool t_true(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_BOOL && in.u.b;
}
static bool t_false(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_BOOL && !in.u.b;
}
static bool t_callable(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_MACRO || in.t == JV_BUILTIN || in.t == JV_METHOD;
}
static bool t_eq(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return jv_eq(in, *targ(cx, a, "eq"));
}
static bool t_ne(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return !jv_eq(in, *targ(cx, a, "ne"));
}
static bool t_lt(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return jv_cmp(cx, in, *targ(cx, a, "lt")) < 0;
}
static bool t_le(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return jv_cmp(cx, in, *targ(cx, a, "le")) <= 0;
}
static bool t_gt(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return jv_cmp(cx, in, *targ(cx, a, "gt")) > 0;
}
static bool t_ge(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return jv_cmp(cx, in, *targ(cx, a, "ge")) >= 0;
}
static bool t_in(struct jctx *cx, struct jv in, const struct jargs *a)
{
    const struct jv *seq = targ(cx, a, "in");
    if (seq->t == JV_STR) {
        if (in.t != JV_STR) {
            jx_fail(cx, LLEM_EINVAL, "TypeError: 'in <string>' requires string as left operand");
        }
        return in.u.s.n == 0 || memmem(seq->u.s.p, seq->u.s.n, in.u.s.p, in.u.s.n) != NULL;
    }
    if (seq->t == JV_DICT) {
        return jv_dict_get(seq, in) != NULL;
    }
    struct jv items = jv_iter_list(cx, *seq);
    for (size_t i = 0; i < items.u.l->n; i++) {
        if (jv_eq(items.u.l->v[i], in)) {
            return true;
        }
    }
    return false;
}
static bool t_odd(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    if (in.t != JV_INT && in.t != JV_BOOL) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: odd/even need an integer");
    }
    return ((in.t == JV_BOOL ? in.u.b : in.u.i) & 1) != 0;
}
static bool t_even(struct jctx *cx, struct jv in, const struct jargs *a)
{
    return !t_odd(cx, in, a);
}
static bool t_divisibleby(struct jctx *cx, struct jv in, const struct jargs *a)
{
    const struct jv *d = targ(cx, a, "divisibleby");
    if (in.t != JV_INT || d->t != JV_INT || d->u.i == 0) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: divisibleby needs non-zero integers");
    }
    if (d->u.i == -1) {
        return true;
    }
    return in.u.i % d->u.i == 0;
}
static bool t_lower(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    struct jv s = jv_to_str(cx, in);
    bool cased = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        if (s.u.s.p[i] >= 'A' && s.u.s.p[i] <= 'Z') {
            return false;
        }
        cased |= s.u.s.p[i] >= 'a' && s.u.s.p[i] <= 'z';
    }
    return cased;
}
static bool t_upper(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    struct jv s = jv_to_str(cx, in);
    bool cased = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        if (s.u.s.p[i] >= 'a' && s.u.s.p[i] <= 'z') {
            return false;
        }
        cased |= s.u.s.p[i] >= 'A' && s.u.s.p[i] <= 'Z';
    }
    return cased;
}
static bool t_sameas(struct jctx *cx, struct jv in, const struct jargs *a)
{
    const struct jv *o = targ(cx, a, "sameas");
    if (in.t != o->t) {
        return false;
    }
    switch (in.t) {
    case JV_NONE:
    case JV_UNDEF: return true;
    case JV_BOOL: return in.u.b == o->u.b;
    case JV_STR: return in.u.s.p == o->u.s.p && in.u.s.n == o->u.s.n;
    case JV_LIST: return in.u.l == o->u.l;
    case JV_DICT:
    case JV_NS: return in.u.d == o->u.d;
    default: return jv_eq(in, *o);
    }
}
static bool t_escaped(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(cx);
    LLEM_UNUSED(a);
    return in.t == JV_STR && (in.fl & JVF_MARKUP);
}
static bool t_filter(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    return in.t == JV_STR && jinja_filter_exists(jx_strndup(cx, in.u.s.p, in.u.s.n));
}
static bool t_test(struct jctx *cx, struct jv in, const struct jargs *a)
{
    LLEM_UNUSED(a);
    return in.t == JV_STR && jinja_test_exists(jx_strndup(cx, in.u.s.p, in.u.s.n));
}

static const struct {
    const char *name;
    test_fn fn;
} TESTS[] = {
    {"defined", t_defined},   {"undefined", t_undefined}, {"none", t_none},
    {"string", t_string},     {"mapping", t_mapping},     {"iterable", t_iterable},
    {"sequence", t_sequence}, {"number", t_number},       {"integer", t_integer},
    {"float", t_float},       {"boolean", t_boolean},     {"true", t_true},
    {"false", t_false},       {"callable", t_callable},   {"eq", t_eq},
    {"equalto", t_eq},        {"==", t_eq},               {"ne", t_ne},
    {"!=", t_ne},             {"lt", t_lt},               {"lessthan", t_lt},
    {"<", t_lt},              {"le", t_le},               {"<=", t_le},
    {"gt", t_gt},             {"greaterthan", t_gt},      {">", t_gt},
    {"ge", t_ge},             {">=", t_ge},               {"in", t_in},
    {"odd", t_odd},           {"even", t_even},           {"divisibleby", t_divisibleby},
    {"lower", t_lower},       {"upper", t_upper},         {"sameas", t_sameas},
    {"escaped", t_escaped},   {"filter", t_filter},       {"test", t_test},
};

bool jinja_test_exists(const char *name)
{
    for (size_t i = 0; i < LLEM_ARRAY_LEN(TESTS); i++) {
        if (strcmp(TESTS[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

bool jinja_apply_test(struct jctx *cx, const char *name, struct jv in, const struct jargs *a)
{
    for (size_t i = 0; i < LLEM_ARRAY_LEN(TESTS); i++) {
        if (strcmp(TESTS[i].name, name) == 0) {
            return TESTS[i].fn(cx, in, a);
        }
    }
    jx_fail(cx, LLEM_EINVAL, "TemplateAssertionError: No test named '%s'.", name);
}

// ---- global functions ------------------------------------------------------------------------
enum { G_RANGE, G_NAMESPACE, G_DICT, G_RAISE, G_STRFTIME, G_COUNT };
static const char *const GLOBALS[G_COUNT] = {"range", "namespace", "dict", "raise_exception",
                                              "strftime_now"};

int jinja_builtin_id(const char *name)
{
    for (int i = 0; i < G_COUNT; i++) {
        if (strcmp(GLOBALS[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

const char *jinja_builtin_name(int id)
{
    return id >= 0 && id < G_COUNT ? GLOBALS[id] : "?";
}

static int64_t range_arg(struct jctx *cx, const struct jv *v)
{
    if (v->t == JV_INT) {
        return v->u.i;
    }
    if (v->t == JV_BOOL) {
        return v->u.b;
    }
    jx_fail(cx, LLEM_EINVAL, "TypeError: '%s' object cannot be interpreted as an integer",
            jv_type_name(*v));
}

static struct jv g_range(struct jctx *cx, const struct jargs *a)
{
    int64_t start = 0, stop, step = 1;
    if (a->n_pos == 1) {
        stop = range_arg(cx, &a->pos[0]);
    } else if (a->n_pos == 2 || a->n_pos == 3) {
        start = range_arg(cx, &a->pos[0]);
        stop = range_arg(cx, &a->pos[1]);
        if (a->n_pos == 3) {
            step = range_arg(cx, &a->pos[2]);
        }
    } else {
        jx_fail(cx, LLEM_EINVAL, "TypeError: range expected 1 to 3 arguments");
    }
    if (step == 0) {
        jx_fail(cx, LLEM_EINVAL, "ValueError: range() arg 3 must not be zero");
    }
    // Length without overflow: computed in double first, then exactly.
    double len_d = step > 0 ? ((double)stop - (double)start) / (double)step
                            : ((double)start - (double)stop) / -(double)step;
    if (len_d > JINJA_MAX_RANGE) {
        jx_fail(cx, LLEM_ELIMIT, "OverflowError: Range too big. The sandbox blocks ranges larger "
                                 "than MAX_RANGE (%d).", JINJA_MAX_RANGE);
    }
    struct jv out = jv_list_new(cx, len_d > 0 ? (size_t)ceil(len_d) : 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
        jv_list_push(cx, &out, jv_int(i));
        if (__builtin_add_overflow(i, step, &i)) {
            break;
        }
    }
    return out;
}

static struct jv g_namespace(struct jctx *cx, const struct jargs *a, bool ns)
{
    struct jv d = jv_dict_new(cx, a->n_kw);
    for (size_t i = 0; i < a->n_pos; i++) {
        struct jv p = a->pos[i];
        if (p.t == JV_DICT || p.t == JV_NS) {
            for (size_t k = 0; k < p.u.d->n; k++) {
                jv_dict_set(cx, &d, p.u.d->k[k], p.u.d->v[k]);
            }
        } else if (p.t == JV_LIST) {
            for (size_t k = 0; k < p.u.l->n; k++) {
                struct jv pair = p.u.l->v[k];
                if (pair.t != JV_LIST || pair.u.l->n != 2) {
                    jx_fail(cx, LLEM_EINVAL, "ValueError: dictionary update sequence element "
                                             "has the wrong length");
                }
                jv_dict_set(cx, &d, pair.u.l->v[0], pair.u.l->v[1]);
            }
        } else {
            jx_fail(cx, LLEM_EINVAL, "TypeError: '%s' object is not iterable", jv_type_name(p));
        }
    }
    for (size_t i = 0; i < a->n_kw; i++) {
        jv_dict_set(cx, &d, jv_cstr(a->kw[i]), a->kwv[i]);
    }
    if (ns) {
        d.t = JV_NS;
    }
    return d;
}

static struct jv g_strftime(struct jctx *cx, const struct jargs *a)
{
    const struct jv *f = arg(a, 0, NULL);
    if (!f || f->t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: strftime_now needs a format string");
    }
    if (f->u.s.n > 256) {
        jx_fail(cx, LLEM_ELIMIT, "strftime_now format longer than 256 bytes");
    }
    char fmt[260], buf[1024];
    memcpy(fmt, f->u.s.p, f->u.s.n);
    fmt[f->u.s.n] = '\0';
    if (memchr(f->u.s.p, '\0', f->u.s.n)) {
        jx_fail(cx, LLEM_EINVAL, "ValueError: embedded null character");
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    // The format is the template's (data, not code): strftime only reads cx->now with it.
    size_t n = strftime(buf, sizeof(buf), fmt, &cx->now);
#pragma GCC diagnostic pop
    return jv_str(jx_strndup(cx, buf, n), n);
}

struct jv jinja_call_builtin(struct jctx *cx, int id, const struct jargs *a)
{
    switch (id) {
    case G_RANGE: return g_range(cx, a);
    case G_NAMESPACE: return g_namespace(cx, a, true);
    case G_DICT: return g_namespace(cx, a, false);
    case G_RAISE: {
        const struct jv *m = arg(a, 0, NULL);
        struct jv s = m ? jv_to_str(cx, *m) : jv_str("", 0);
        cx->line = 0; // the template's own message stands alone
        jx_fail(cx, LLEM_EINVAL, "TemplateError: %.*s", (int)LLEM_MIN(s.u.s.n, 200u), s.u.s.p);
    }
    case G_STRFTIME: return g_strftime(cx, a);
    default: jx_fail(cx, LLEM_EINTERNAL, "unknown builtin");
    }
}
