// template/jinja_methods.c: Python methods called on template values: str (split, strip,
// startswith, replace, format, ...), dict (get, items, keys, values) and list (index, count),
// with Python's semantics on code points. Methods that modify a list or dict raise the
// immutable sandbox's SecurityError, as in transformers' environment.
#include <string.h>

#include "base/utf8.h"
#include "template/jinja_int.h"

const struct jv *jargs_get(const struct jargs *a, size_t pos, const char *kw)
{
    if (pos < a->n_pos) {
        return &a->pos[pos];
    }
    if (kw) {
        for (size_t i = 0; i < a->n_kw; i++) {
            if (strcmp(a->kw[i], kw) == 0) {
                return &a->kwv[i];
            }
        }
    }
    return NULL;
}

static const char *const STR_METHODS[] = {
    "capitalize", "count", "endswith", "find", "format", "index", "isalnum", "isalpha",
    "isdigit", "islower", "isnumeric", "isspace", "isupper", "join", "lower", "lstrip",
    "replace", "rfind", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
    "swapcase", "title", "upper", "casefold",
};
static const char *const DICT_METHODS[] = {
    "get", "items", "keys", "values", "copy",
    "clear", "pop", "popitem", "setdefault", "update", // refused when called
};
static const char *const LIST_METHODS[] = {
    "index", "count", "copy",
    "append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort", // refused
};

static bool in_names(const char *const *names, size_t k, const char *name, size_t n)
{
    for (size_t i = 0; i < k; i++) {
        if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0) {
            return true;
        }
    }
    return false;
}

bool jinja_has_method(struct jv self, const char *name, size_t n)
{
    switch (self.t) {
    case JV_STR: return in_names(STR_METHODS, LLEM_ARRAY_LEN(STR_METHODS), name, n);
    case JV_DICT: return in_names(DICT_METHODS, LLEM_ARRAY_LEN(DICT_METHODS), name, n);
    case JV_LIST:
        return !(self.fl & JVF_GEN) && in_names(LIST_METHODS, LLEM_ARRAY_LEN(LIST_METHODS), name, n);
    default: return false;
    }
}

// ---- Python string helpers -------------------------------------------------------------------
// Python's str.isspace() code points (Unicode White_Space plus the ASCII separators).
static bool py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

// Decodes the code point at s[i] (an invalid byte counts as itself).
static int cp_at(const char *s, size_t n, size_t i, uint32_t *cp)
{
    int k = utf8_decode(s + i, n - i, cp);
    if (k == 0) {
        *cp = (unsigned char)s[i];
        k = 1;
    }
    return k;
}

// Length of the code point ending at s[end-1].
static size_t cp_back(const char *s, size_t end)
{
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80 && end - i < 4) {
        i--;
    }
    return end - i;
}

static bool in_set(uint32_t c, const struct jv *chars)
{
    if (!chars) {
        return py_space(c);
    }
    const char *s = chars->u.s.p;
    size_t n = chars->u.s.n;
    for (size_t i = 0; i < n;) {
        uint32_t d;
        i += (size_t)cp_at(s, n, i, &d);
        if (d == c) {
            return true;
        }
    }
    return false;
}

// Python's str.strip family: which = 1 left, 2 right, 3 both; chars NULL = whitespace.
struct jv jinja_py_strip(struct jctx *cx, struct jv s, const struct jv *chars, int which)
{
    if (chars && chars->t == JV_NONE) {
        chars = NULL;
    }
    if (chars && chars->t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: strip arg must be None or str");
    }
    const char *p = s.u.s.p;
    size_t a = 0, b = s.u.s.n;
    if (which & 1) {
        while (a < b) {
            uint32_t c;
            int k = cp_at(p, b, a, &c);
            if (!in_set(c, chars)) {
                break;
            }
            a += (size_t)k;
        }
    }
    if (which & 2) {
        while (b > a) {
            size_t k = cp_back(p, b);
            uint32_t c;
            cp_at(p, b, b - k, &c);
            if (!in_set(c, chars)) {
                break;
            }
            b -= k;
        }
    }
    return jv_str(p + a, b - a);
}

static struct jv str_split(struct jctx *cx, struct jv s, const struct jv *sep, int64_t maxsplit,
                           bool from_right)
{
    struct jv out = jv_list_new(cx, 4);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (!sep || sep->t == JV_NONE) {
        // Runs of whitespace separate; empty strings are dropped.
        if (!from_right) {
            size_t i = 0;
            int64_t splits = 0;
            for (;;) {
                uint32_t c;
                while (i < n) {
                    int k = cp_at(p, n, i, &c);
                    if (!py_space(c)) {
                        break;
                    }
                    i += (size_t)k;
                }
                if (i >= n) {
                    break;
                }
                if (maxsplit >= 0 && splits >= maxsplit) {
                    struct jv rest = jinja_py_strip(cx, jv_str(p + i, n - i), NULL, 2);
                    jv_list_push(cx, &out, rest);
                    break;
                }
                size_t st = i;
                while (i < n) {
                    int k = cp_at(p, n, i, &c);
                    if (py_space(c)) {
                        break;
                    }
                    i += (size_t)k;
                }
                jv_list_push(cx, &out, jv_str(p + st, i - st));
                splits++;
            }
            return out;
        }
        // rsplit() without sep: split from the right, then reverse.
        struct jv rev = jv_list_new(cx, 4);
        size_t e = n;
        int64_t splits = 0;
        for (;;) {
            while (e > 0) {
                size_t k = cp_back(p, e);
                uint32_t c;
                cp_at(p, e, e - k, &c);
                if (!py_space(c)) {
                    break;
                }
                e -= k;
            }
            if (e == 0) {
                break;
            }
            if (maxsplit >= 0 && splits >= maxsplit) {
                jv_list_push(cx, &rev, jinja_py_strip(cx, jv_str(p, e), NULL, 1));
                break;
            }
            size_t en = e;
            while (e > 0) {
                size_t k = cp_back(p, e);
                uint32_t c;
                cp_at(p, e, e - k, &c);
                if (py_space(c)) {
                    break;
                }
                e -= k;
            }
            jv_list_push(cx, &rev, jv_str(p + e, en - e));
            splits++;
        }
        for (size_t i = rev.u.l->n; i > 0; i--) {
            jv_list_push(cx, &out, rev.u.l->v[i - 1]);
        }
        return out;
    }
    if (sep->t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: must be str or None, not %s", jv_type_name(*sep));
    }
    const char *q = sep->u.s.p;
    size_t m = sep->u.s.n;
    if (m == 0) {
        jx_fail(cx, LLEM_EINVAL, "ValueError: empty separator");
    }
    if (!from_right) {
        size_t st = 0;
        int64_t splits = 0;
        while (maxsplit < 0 || splits < maxsplit) {
            const char *f = st <= n ? memmem(p + st, n - st, q, m) : NULL;
            if (!f) {
                break;
            }
            size_t at = (size_t)(f - p);
            jv_list_push(cx, &out, jv_str(p + st, at - st));
            st = at + m;
            splits++;
        }
        jv_list_push(cx, &out, jv_str(p + st, n - st));
        return out;
    }
    struct jv rev = jv_list_new(cx, 4);
    size_t e = n;
    int64_t splits = 0;
    while (maxsplit < 0 || splits < maxsplit) {
        size_t at = SIZE_MAX;
        for (size_t i = e >= m ? e - m + 1 : 0; i > 0; i--) {
            if (memcmp(p + i - 1, q, m) == 0) {
                at = i - 1;
                break;
            }
        }
        if (at == SIZE_MAX) {
            break;
        }
        jv_list_push(cx, &rev, jv_str(p + at + m, e - at - m));
        e = at;
        splits++;
    }
    jv_list_push(cx, &rev, jv_str(p, e));
    for (size_t i = rev.u.l->n; i > 0; i--) {
        jv_list_push(cx, &out, rev.u.l->v[i - 1]);
    }
    return out;
}

static bool affix_match(struct jctx *cx, struct jv s, struct jv x, bool suffix)
{
    if (x.t == JV_LIST && (x.fl & JVF_TUPLE)) {
        for (size_t i = 0; i < x.u.l->n; i++) {
            if (affix_match(cx, s, x.u.l->v[i], suffix)) {
                return true;
            }
        }
        return false;
    }
    if (x.t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: %s first arg must be str or a tuple of str, not %s",
                suffix ? "endswith" : "startswith", jv_type_name(x));
    }
    if (x.u.s.n > s.u.s.n) {
        return false;
    }
    const char *at = suffix ? s.u.s.p + s.u.s.n - x.u.s.n : s.u.s.p;
    return x.u.s.n == 0 || memcmp(at, x.u.s.p, x.u.s.n) == 0;
}

struct jv jinja_py_replace(struct jctx *cx, struct jv s, struct jv old, struct jv new_,
                           int64_t count)
{
    if (old.t != JV_STR || new_.t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: replace() arguments must be str");
    }
    struct jsb b = {0};
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, st = 0;
    int64_t done = 0;
    if (old.u.s.n == 0) { // inserts `new` before every code point and at the end
        size_t i = 0;
        while (i <= n && (count < 0 || done < count)) {
            jsb_put(cx, &b, new_.u.s.p, new_.u.s.n);
            done++;
            if (i == n) {
                i++;
                break;
            }
            uint32_t c;
            size_t k = (size_t)cp_at(p, n, i, &c);
            jsb_put(cx, &b, p + i, k);
            i += k;
        }
        if (i < n) {
            jsb_put(cx, &b, p + i, n - i);
        }
        return b.n ? jv_sb(&b) : jv_str("", 0);
    }
    while (count < 0 || done < count) {
        const char *f = memmem(p + st, n - st, old.u.s.p, old.u.s.n);
        if (!f) {
            break;
        }
        size_t at = (size_t)(f - p);
        jsb_put(cx, &b, p + st, at - st);
        jsb_put(cx, &b, new_.u.s.p, new_.u.s.n);
        st = at + old.u.s.n;
        done++;
    }
    if (done == 0) {
        return s;
    }
    jsb_put(cx, &b, p + st, n - st);
    return b.n ? jv_sb(&b) : jv_str("", 0);
}

// ASCII case mapping (the templates change case of ASCII keywords only).
static char to_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || ((unsigned char)c >= 0x80);
}

// mode: 'u' upper, 'l' lower, 't' Python title(), 'c' capitalize, 's' swapcase.
struct jv jinja_py_case(struct jctx *cx, struct jv s, char mode)
{
    char *o = jx_alloc(cx, s.u.s.n + 1);
    bool prev_alpha = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        switch (mode) {
        case 'u': o[i] = to_upper(c); break;
        case 'l': o[i] = to_lower(c); break;
        case 't': o[i] = prev_alpha ? to_lower(c) : to_upper(c); break;
        case 'c': o[i] = i == 0 ? to_upper(c) : to_lower(c); break;
        default: o[i] = c >= 'a' && c <= 'z' ? to_upper(c) : to_lower(c); break;
        }
        prev_alpha = is_alpha(c);
    }
    o[s.u.s.n] = '\0';
    struct jv r = jv_str(o, s.u.s.n);
    return r;
}

// str.format with {} / {0} / {name} fields and {{ }} escapes; format specs are not supported.
static struct jv str_format(struct jctx *cx, struct jv s, const struct jargs *a)
{
    struct jsb b = {0};
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, auto_idx = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '}') {
            if (i + 1 >= n || p[i + 1] != '}') {
                jx_fail(cx, LLEM_EINVAL, "ValueError: Single '}' encountered in format string");
            }
            i++;
            jsb_putc(cx, &b, '}');
            continue;
        }
        if (c != '{') {
            jsb_putc(cx, &b, c);
            continue;
        }
        if (i + 1 < n && p[i + 1] == '{') {
            jsb_putc(cx, &b, '{');
            i++;
            continue;
        }
        const char *e = memchr(p + i, '}', n - i);
        if (!e) {
            jx_fail(cx, LLEM_EINVAL, "ValueError: Single '{' encountered in format string");
        }
        const char *f = p + i + 1;
        size_t fl = (size_t)(e - f);
        const char *colon = memchr(f, ':', fl);
        const char *bang = memchr(f, '!', fl);
        size_t name_len = colon ? (size_t)(colon - f) : fl;
        if (bang && (size_t)(bang - f) < name_len) {
            name_len = (size_t)(bang - f);
        }
        const struct jv *v = NULL;
        if (name_len == 0) {
            v = auto_idx < a->n_pos ? &a->pos[auto_idx] : NULL;
            auto_idx++;
        } else if (f[0] >= '0' && f[0] <= '9') {
            size_t idx = 0;
            for (size_t k = 0; k < name_len && f[k] >= '0' && f[k] <= '9'; k++) {
                idx = idx * 10 + (size_t)(f[k] - '0');
                if (idx > 1000000) {
                    break;
                }
            }
            v = idx < a->n_pos ? &a->pos[idx] : NULL;
        } else {
            for (size_t k = 0; k < a->n_kw; k++) {
                if (strlen(a->kw[k]) == name_len && memcmp(a->kw[k], f, name_len) == 0) {
                    v = &a->kwv[k];
                }
            }
        }
        if (!v) {
            jx_fail(cx, LLEM_EINVAL, "IndexError: Replacement index out of range for format");
        }
        if (bang && bang + 1 < e && bang[1] == 'r') {
            jv_repr_into(cx, &b, *v);
        } else {
            jv_str_into(cx, &b, *v);
        }
        i = (size_t)(e - p);
    }
    return b.n ? jv_sb(&b) : jv_str("", 0);
}

static int64_t int_arg(struct jctx *cx, const struct jv *v, int64_t def)
{
    if (!v || v->t == JV_NONE) {
        return def;
    }
    if (v->t != JV_INT && v->t != JV_BOOL) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: an integer is required, not %s", jv_type_name(*v));
    }
    return v->t == JV_BOOL ? v->u.b : v->u.i;
}

static const struct jv *need(struct jctx *cx, const struct jargs *a, size_t pos, const char *kw,
                             const char *method)
{
    const struct jv *v = jargs_get(a, pos, kw);
    if (!v) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: %s() missing a required argument", method);
    }
    return v;
}

static const struct jv *need_str(struct jctx *cx, const struct jargs *a, size_t pos,
                                 const char *method)
{
    const struct jv *v = need(cx, a, pos, NULL, method);
    if (v->t != JV_STR) {
        jx_fail(cx, LLEM_EINVAL, "TypeError: %s() argument must be str, not %s", method,
                jv_type_name(*v));
    }
    return v;
}

static struct jv str_method(struct jctx *cx, struct jv s, const char *m, const struct jargs *a)
{
#define M(x) (strcmp(m, x) == 0)
    if (M("split") || M("rsplit")) {
        return str_split(cx, s, jargs_get(a, 0, "sep"), int_arg(cx, jargs_get(a, 1, "maxsplit"), -1),
                         M("rsplit"));
    }
    if (M("strip") || M("lstrip") || M("rstrip")) {
        return jinja_py_strip(cx, s, jargs_get(a, 0, "chars"), M("strip") ? 3 : M("lstrip") ? 1 : 2);
    }
    if (M("startswith") || M("endswith")) {
        const struct jv *x = need(cx, a, 0, NULL, m);
        struct jv sub = s;
        const struct jv *st = jargs_get(a, 1, NULL);
        if (st && st->t == JV_INT) {
            size_t len = jv_utf8_len(s.u.s.p, s.u.s.n);
            int64_t k = st->u.i < 0 ? st->u.i + (int64_t)len : st->u.i;
            if (k < 0) {
                k = 0;
            }
            if ((size_t)k > len) {
                return jv_bool(false);
            }
            size_t off = jv_utf8_off(s.u.s.p, s.u.s.n, (size_t)k);
            sub = jv_str(s.u.s.p + off, s.u.s.n - off);
        }
        return jv_bool(affix_match(cx, sub, *x, M("endswith")));
    }
    if (M("replace")) {
        return jinja_py_replace(cx, s, *need(cx, a, 0, NULL, m), *need(cx, a, 1, NULL, m),
                                int_arg(cx, jargs_get(a, 2, "count"), -1));
    }
    if (M("upper")) return jinja_py_case(cx, s, 'u');
    if (M("lower") || M("casefold")) return jinja_py_case(cx, s, 'l');
    if (M("title")) return jinja_py_case(cx, s, 't');
    if (M("capitalize")) return jinja_py_case(cx, s, 'c');
    if (M("swapcase")) return jinja_py_case(cx, s, 's');
    if (M("format")) return str_format(cx, s, a);
    if (M("join")) {
        struct jv items = jv_iter_list(cx, *need(cx, a, 0, NULL, m));
        struct jsb b = {0};
        for (size_t i = 0; i < items.u.l->n; i++) {
            struct jv it = items.u.l->v[i];
            if (it.t != JV_STR) {
                jx_fail(cx, LLEM_EINVAL, "TypeError: sequence item %zu: expected str instance, "
                        "%s found", i, jv_type_name(it));
            }
            if (i) {
                jsb_put(cx, &b, s.u.s.p, s.u.s.n);
            }
            jsb_put(cx, &b, it.u.s.p, it.u.s.n);
        }
        return b.n ? jv_sb(&b) : jv_str("", 0);
    }
    if (M("find") || M("rfind") || M("index") || M("count")) {
        const struct jv *x = need_str(cx, a, 0, m);
        const char *p = s.u.s.p;
        size_t n = s.u.s.n, k = x->u.s.n;
        if (M("count")) {
            if (k == 0) {
                return jv_int((int64_t)jv_utf8_len(p, n) + 1);
            }
            int64_t c = 0;
            for (const char *f = p; (f = memmem(f, n - (size_t)(f - p), x->u.s.p, k)); f += k) {
                c++;
            }
            return jv_int(c);
        }
        size_t at = SIZE_MAX;
        if (M("rfind")) {
            for (size_t i = n >= k ? n - k + 1 : 0; i > 0; i--) {
                if (memcmp(p + i - 1, x->u.s.p, k) == 0) {
                    at = i - 1;
                    break;
                }
            }
        } else {
            const char *f = k ? memmem(p, n, x->u.s.p, k) : p;
            at = f ? (size_t)(f - p) : SIZE_MAX;
        }
        if (at == SIZE_MAX) {
            if (M("index")) {
                jx_fail(cx, LLEM_EINVAL, "ValueError: substring not found");
            }
            return jv_int(-1);
        }
        return jv_int((int64_t)jv_utf8_len(p, at));
    }
    if (M("splitlines")) {
        struct jv out = jv_list_new(cx, 4);
        bool keep = jv_truthy(jargs_get(a, 0, "keepends") ? *jargs_get(a, 0, "keepends") : jv_bool(false));
        const char *p = s.u.s.p;
        size_t n = s.u.s.n, st = 0, i = 0;
        while (i < n) {
            if (p[i] == '\n' || p[i] == '\r') {
                size_t e = i + ((p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') ? 2 : 1);
                jv_list_push(cx, &out, jv_str(p + st, (keep ? e : i) - st));
                st = i = e;
            } else {
                i++;
            }
        }
        if (st < n) {
            jv_list_push(cx, &out, jv_str(p + st, n - st));
        }
        return out;
    }
    // is* predicates over ASCII classes.
    if (s.u.s.n == 0) {
        return jv_bool(false);
    }
    bool all = true, any_cased = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        bool lo = c >= 'a' && c <= 'z', up = c >= 'A' && c <= 'Z', dg = c >= '0' && c <= '9';
        any_cased |= lo || up;
        if (M("isalnum")) all &= lo || up || dg;
        else if (M("isalpha")) all &= lo || up;
        else if (M("isdigit") || M("isnumeric")) all &= dg;
        else if (M("isspace")) all &= c == ' ' || (c >= '\t' && c <= '\r');
        else if (M("islower")) all &= !up;
        else if (M("isupper")) all &= !lo;
    }
    if (M("islower") || M("isupper")) {
        all &= any_cased;
    }
    return jv_bool(all);
#undef M
}

static _Noreturn void security_error(struct jctx *cx, struct jv self, const char *m)
{
    jx_fail(cx, LLEM_EINVAL, "SecurityError: access to attribute '%s' of '%s' object is unsafe.",
            m, jv_type_name(self));
}

struct jv jinja_call_method(struct jctx *cx, const struct jmethod *meth, const struct jargs *a)
{
    struct jv self = meth->self;
    const char *m = meth->name;
    if (self.t == JV_STR) {
        return str_method(cx, self, m, a);
    }
    if (self.t == JV_LOOP) { // loop.cycle(a, b, ...)
        if (a->n_pos == 0) {
            jx_fail(cx, LLEM_EINVAL, "TypeError: no items for cycling given");
        }
        return a->pos[self.u.loop->i % a->n_pos];
    }
    if (self.t == JV_DICT) {
        const struct jdict *d = self.u.d;
        if (strcmp(m, "get") == 0) {
            const struct jv *k = need(cx, a, 0, NULL, m);
            const struct jv *v = jv_dict_get(&self, *k);
            if (v) {
                return *v;
            }
            const struct jv *def = jargs_get(a, 1, NULL);
            return def ? *def : jv_none();
        }
        if (strcmp(m, "items") == 0 || strcmp(m, "keys") == 0 || strcmp(m, "values") == 0) {
            struct jv out = jv_list_new(cx, d->n);
            for (size_t i = 0; i < d->n; i++) {
                if (m[0] == 'i') {
                    struct jv pair = jv_list_new(cx, 2);
                    pair.fl = JVF_TUPLE;
                    jv_list_push(cx, &pair, d->k[i]);
                    jv_list_push(cx, &pair, d->v[i]);
                    jv_list_push(cx, &out, pair);
                } else {
                    jv_list_push(cx, &out, m[0] == 'k' ? d->k[i] : d->v[i]);
                }
            }
            return out;
        }
        if (strcmp(m, "copy") == 0) {
            return self;
        }
        security_error(cx, self, m);
    }
    if (self.t == JV_LIST) {
        if (strcmp(m, "copy") == 0) {
            return self;
        }
        if (strcmp(m, "index") == 0 || strcmp(m, "count") == 0) {
            const struct jv *x = need(cx, a, 0, NULL, m);
            int64_t c = 0;
            for (size_t i = 0; i < self.u.l->n; i++) {
                if (jv_eq(self.u.l->v[i], *x)) {
                    if (m[0] == 'i') {
                        return jv_int((int64_t)i);
                    }
                    c++;
                }
            }
            if (m[0] == 'i') {
                jx_fail(cx, LLEM_EINVAL, "ValueError: value is not in list");
            }
            return jv_int(c);
        }
        security_error(cx, self, m);
    }
    jx_fail(cx, LLEM_EINVAL, "TypeError: '%s' has no method '%s'", jv_type_name(self), m);
}
