// template/gotmpl_value.c: values of the Go-template engine and how Go prints them: fmt's %v
// (and the printf verbs templates use), encoding/json's Marshal (HTML-escaped, sorted map
// keys, omitempty, shortest floats), strconv.Quote, plus the value pool and the conversion
// from cJSON that json.Unmarshal into interface{} would do. Byte-exact output matters: prompts
// are tokenized, so "1e+06" versus "1000000" changes what the model sees.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/limits.h"
#include "template/gotmpl_int.h"

// ---- pool ----------------------------------------------------------------------------------
struct gpool_block {
    struct gpool_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void gpool_init(struct gpool *p, size_t max_total)
{
    memset(p, 0, sizeof(*p));
    p->max_total = max_total;
}

void gpool_deinit(struct gpool *p)
{
    if (!p) return;
    struct gpool_block *b = p->head;
    while (b) {
        struct gpool_block *nx = b->next;
        llem_free(b);
        b = nx;
    }
    p->head = NULL;
    p->total = 0;
}

void *gpool_alloc(struct gpool *p, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    struct gpool_block *b = p->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        if (b && b->cap * 2 > cap && b->cap < (1u << 20)) cap = b->cap * 2;
        if (p->max_total && (p->total + cap > p->max_total)) {
            if (p->total + n > p->max_total) {
                p->over_cap = true;
                return NULL;
            }
            cap = n;
        }
        struct gpool_block *nb = llem_malloc(sizeof(*nb) + cap);
        if (!nb) {
            p->over_cap = false;
            return NULL;
        }
        nb->next = p->head;
        nb->used = 0;
        nb->cap = cap;
        p->head = nb;
        p->total += cap;
        b = nb;
    }
    void *r = b->data + b->used;
    b->used += n;
    memset(r, 0, n);
    return r;
}

char *gpool_strndup(struct gpool *p, const char *s, size_t n)
{
    if (n == SIZE_MAX) return NULL;
    char *r = gpool_alloc(p, n + 1);
    if (r) {
        if (n) memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

// ---- basics --------------------------------------------------------------------------------
const struct gtype gotmpl_t_string = {.name = "string", .kind = GK_STRING};

const char *gval_type_name(const struct gval *v)
{
    if (v->type) return v->type->name;
    switch (v->kind) {
    case GK_BOOL: return "bool";
    case GK_INT: return "int";
    case GK_FLOAT: return "float64";
    case GK_STRING: return "string";
    case GK_LIST: return "[]interface {}";
    case GK_MAP: return "map[string]interface {}";
    default: return "<nil>";
    }
}

bool gval_zero(struct gpool *p, const struct gtype *t, struct gval *out)
{
    memset(out, 0, sizeof(*out));
    if (!t) {
        out->kind = GK_NIL;
        return true;
    }
    out->kind = t->kind;
    out->type = t;
    if (t->kind == GK_STRUCT) {
        out->u.fields = gpool_alloc(p, (t->n_fields + 1) * sizeof(struct gval));
        if (!out->u.fields) return false;
        for (size_t k = 0; k < t->n_fields; k++) {
            if (!gval_zero(p, t->fields[k].type, &out->u.fields[k])) return false;
        }
    } else if (t->kind == GK_STRING) {
        out->u.s.p = "";
    }
    return true;
}

int64_t gval_len(const struct gval *v)
{
    switch (v->kind) {
    case GK_STRING: return (int64_t)v->u.s.n;
    case GK_LIST: return v->u.list ? (int64_t)v->u.list->n : 0;
    case GK_MAP: return v->u.map ? (int64_t)v->u.map->n : 0;
    default: return -1;
    }
}

bool gval_truth(const struct gval *v)
{
    switch (v->kind) {
    case GK_BOOL: return v->u.b;
    case GK_INT: return v->u.i != 0;
    case GK_FLOAT: return v->u.f != 0;
    case GK_STRING: case GK_LIST: case GK_MAP: return gval_len(v) > 0;
    case GK_STRUCT: return true;
    default: return false;
    }
}

long gmap_find(const struct gmap *m, const char *key, size_t klen)
{
    if (!m) return -1;
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        size_t ml = m->klens[mid];
        int c = memcmp(m->keys[mid], key, ml < klen ? ml : klen);
        if (c == 0) c = ml < klen ? -1 : ml > klen ? 1 : 0;
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

// ---- floats --------------------------------------------------------------------------------
// Shortest decimal digits that read back as f (|f| > 0, finite): digits[0..nd), value is
// 0.d1d2... * 10^dp.
static void shortest(double f, char *digits, int *nd, int *dp)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f || prec == 17) break;
    }
    // buf: [-]d.ddde[+-]xx
    const char *s = buf;
    if (*s == '-') s++;
    int n = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s >= '0' && *s <= '9') digits[n++] = *s;
    }
    int e = 0;
    if (*s == 'e') {
        s++;
        int sign = 1;
        if (*s == '-' || *s == '+') sign = *s++ == '-' ? -1 : 1;
        while (*s >= '0' && *s <= '9') e = e * 10 + (*s++ - '0');
        e *= sign;
    }
    while (n > 1 && digits[n - 1] == '0') n--;
    *nd = n;
    *dp = e + 1;
}

static enum llem_err fmt_e(struct strbuf *sb, bool neg, const char *d, int nd, int dp)
{
    char buf[48];
    size_t o = 0;
    if (neg) buf[o++] = '-';
    buf[o++] = d[0];
    if (nd > 1) {
        buf[o++] = '.';
        for (int k = 1; k < nd; k++) buf[o++] = d[k];
    }
    int e = dp - 1;
    buf[o++] = 'e';
    buf[o++] = e < 0 ? '-' : '+';
    if (e < 0) e = -e;
    char eb[8];
    int en = snprintf(eb, sizeof(eb), "%02d", e);
    memcpy(buf + o, eb, (size_t)en);
    o += (size_t)en;
    return strbuf_append(sb, buf, o);
}

static enum llem_err fmt_f(struct strbuf *sb, bool neg, const char *d, int nd, int dp)
{
    enum llem_err e = LLEM_OK;
    if (neg) e = strbuf_append_char(sb, '-');
    if (dp <= 0) {
        if (!e) e = strbuf_append(sb, "0.", 2);
        for (int k = 0; k < -dp && !e; k++) e = strbuf_append_char(sb, '0');
        if (!e) e = strbuf_append(sb, d, (size_t)nd);
        return e;
    }
    for (int k = 0; k < dp && !e; k++) e = strbuf_append_char(sb, k < nd ? d[k] : '0');
    if (nd > dp && !e) {
        e = strbuf_append_char(sb, '.');
        if (!e) e = strbuf_append(sb, d + dp, (size_t)(nd - dp));
    }
    return e;
}

static enum llem_err fmt_special(struct strbuf *sb, double f)
{
    if (isnan(f)) return strbuf_append_str(sb, "NaN");
    return strbuf_append_str(sb, f > 0 ? "+Inf" : "-Inf");
}

enum llem_err gotmpl_fmt_float_g(struct strbuf *sb, double f)
{
    if (isnan(f) || isinf(f)) return fmt_special(sb, f);
    if (f == 0) return strbuf_append_str(sb, signbit(f) ? "-0" : "0");
    char d[24];
    int nd, dp;
    shortest(f, d, &nd, &dp);
    // strconv.FormatFloat(f, 'g', -1, 64): with the shortest digits the switch to %e is
    // decided with precision 6, so 1e6 prints as "1e+06" (fmt's %v does the same).
    int exp = dp - 1;
    if (exp < -4 || exp >= 6) return fmt_e(sb, f < 0, d, nd, dp);
    return fmt_f(sb, f < 0, d, nd, dp);
}

enum llem_err gotmpl_fmt_float_json(struct strbuf *sb, double f)
{
    double a = fabs(f);
    if (f == 0) return strbuf_append_str(sb, signbit(f) ? "-0" : "0");
    char d[24];
    int nd, dp;
    shortest(f, d, &nd, &dp);
    if (a < 1e-6 || a >= 1e21) {
        size_t before = sb->len;
        enum llem_err e = fmt_e(sb, f < 0, d, nd, dp);
        // encoding/json cleans e-09 to e-9.
        if (!e && sb->len - before >= 4) {
            char *b = sb->data + sb->len;
            if (b[-4] == 'e' && b[-3] == '-' && b[-2] == '0') {
                b[-2] = b[-1];
                strbuf_truncate(sb, sb->len - 1);
            }
        }
        return e;
    }
    return fmt_f(sb, f < 0, d, nd, dp);
}

// ---- strconv.Quote -------------------------------------------------------------------------
static int decode_rune(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    int len;
    uint32_t v;
    if (c < 0x80) { *cp = c; return 1; }
    if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000) ||
        v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) {
        return 0;
    }
    *cp = v;
    return len;
}

enum llem_err gotmpl_quote(struct strbuf *sb, const char *s, size_t n)
{
    enum llem_err e = strbuf_append_char(sb, '"');
    const unsigned char *u = (const unsigned char *)s;
    char buf[16];
    for (size_t k = 0; k < n && !e;) {
        uint32_t cp;
        int len = decode_rune(u + k, n - k, &cp);
        if (len == 0) {
            snprintf(buf, sizeof(buf), "\\x%02x", u[k]);
            e = strbuf_append_str(sb, buf);
            k++;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            e = strbuf_append_char(sb, '\\');
            if (!e) e = strbuf_append_char(sb, (char)cp);
        } else if (cp >= 0x20 && cp < 0x7F) {
            e = strbuf_append_char(sb, (char)cp);
        } else if (cp >= 0xA0 && cp != 0xAD && cp != 0xFEFF && !(cp >= 0x2028 && cp <= 0x202E)) {
            e = strbuf_append(sb, s + k, (size_t)len); // printable (approximation of IsPrint)
        } else {
            const char *esc = NULL;
            switch (cp) {
            case '\a': esc = "\\a"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            case '\v': esc = "\\v"; break;
            default: break;
            }
            if (esc) {
                e = strbuf_append_str(sb, esc);
            } else {
                if (cp < 0x20 || cp == 0x7F) snprintf(buf, sizeof(buf), "\\x%02x", (unsigned)cp);
                else if (cp < 0x10000) snprintf(buf, sizeof(buf), "\\u%04x", (unsigned)cp);
                else snprintf(buf, sizeof(buf), "\\U%08x", (unsigned)cp);
                e = strbuf_append_str(sb, buf);
            }
        }
        k += (size_t)len;
    }
    return e ? e : strbuf_append_char(sb, '"');
}

// ---- encoding/json -------------------------------------------------------------------------
static enum llem_err json_string(struct strbuf *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    enum llem_err e = strbuf_append_char(sb, '"');
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0;
    for (size_t k = 0; k < n && !e;) {
        unsigned char c = u[k];
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                k++;
                continue;
            }
            e = strbuf_append(sb, s + start, k - start);
            char esc[8] = {'\\', 0};
            size_t el = 2;
            switch (c) {
            case '"': case '\\': esc[1] = (char)c; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
            }
            if (!e) e = strbuf_append(sb, esc, el);
            k++;
            start = k;
            continue;
        }
        uint32_t cp;
        int len = decode_rune(u + k, n - k, &cp);
        if (len == 0) {
            e = strbuf_append(sb, s + start, k - start);
            if (!e) e = strbuf_append_str(sb, "\\ufffd");
            k++;
            start = k;
            continue;
        }
        if (cp == 0x2028 || cp == 0x2029) {
            e = strbuf_append(sb, s + start, k - start);
            if (!e) e = strbuf_append_str(sb, cp == 0x2028 ? "\\u2028" : "\\u2029");
            k += (size_t)len;
            start = k;
            continue;
        }
        k += (size_t)len;
    }
    if (!e) e = strbuf_append(sb, s + start, n - start);
    return e ? e : strbuf_append_char(sb, '"');
}

static bool json_empty(const struct gval *v)
{
    switch (v->kind) {
    case GK_INVALID: case GK_NIL: return true;
    case GK_BOOL: return !v->u.b;
    case GK_INT: return v->u.i == 0;
    case GK_FLOAT: return v->u.f == 0;
    case GK_STRING: case GK_LIST: case GK_MAP: return gval_len(v) == 0;
    default: return false;
    }
}

static enum llem_err json_value(struct strbuf *sb, const struct gval *v, bool *ok, int depth)
{
    char buf[32];
    if (depth > (int)LLEM_JSON_MAX_DEPTH * 2) {
        *ok = false;
        return LLEM_OK;
    }
    switch (v->kind) {
    case GK_BOOL:
        return strbuf_append_str(sb, v->u.b ? "true" : "false");
    case GK_INT:
        snprintf(buf, sizeof(buf), "%lld", (long long)v->u.i);
        return strbuf_append_str(sb, buf);
    case GK_FLOAT:
        if (isnan(v->u.f) || isinf(v->u.f)) {
            *ok = false;
            return LLEM_OK;
        }
        return gotmpl_fmt_float_json(sb, v->u.f);
    case GK_STRING:
        return json_string(sb, v->u.s.p, v->u.s.n);
    case GK_LIST: {
        const struct glist *l = v->u.list;
        if (v->type && v->type->marshal_proptype && l && l->n == 1) {
            return json_value(sb, &l->items[0], ok, depth + 1);
        }
        if (!l) return strbuf_append_str(sb, "null");
        enum llem_err e = strbuf_append_char(sb, '[');
        for (size_t k = 0; k < l->n && !e && *ok; k++) {
            if (k) e = strbuf_append_char(sb, ',');
            if (!e) e = json_value(sb, &l->items[k], ok, depth + 1);
        }
        return e ? e : strbuf_append_char(sb, ']');
    }
    case GK_MAP: {
        const struct gmap *m = v->u.map;
        if (!m) return strbuf_append_str(sb, "null");
        enum llem_err e = strbuf_append_char(sb, '{');
        for (size_t k = 0; k < m->n && !e && *ok; k++) {
            if (k) e = strbuf_append_char(sb, ',');
            if (!e) e = json_string(sb, m->keys[k], m->klens[k]);
            if (!e) e = strbuf_append_char(sb, ':');
            if (!e) e = json_value(sb, &m->vals[k], ok, depth + 1);
        }
        return e ? e : strbuf_append_char(sb, '}');
    }
    case GK_STRUCT: {
        const struct gtype *t = v->type;
        enum llem_err e = strbuf_append_char(sb, '{');
        bool first = true;
        for (size_t k = 0; t && k < t->n_fields && !e && *ok; k++) {
            const struct gfield *f = &t->fields[k];
            if (f->omitempty && json_empty(&v->u.fields[k])) continue;
            if (!first) e = strbuf_append_char(sb, ',');
            first = false;
            if (!e) e = json_string(sb, f->json, strlen(f->json));
            if (!e) e = strbuf_append_char(sb, ':');
            if (!e) e = json_value(sb, &v->u.fields[k], ok, depth + 1);
        }
        return e ? e : strbuf_append_char(sb, '}');
    }
    default:
        return strbuf_append_str(sb, "null");
    }
}

enum llem_err gval_json(struct strbuf *sb, const struct gval *v, bool *ok)
{
    *ok = true;
    size_t before = sb->len;
    enum llem_err e = json_value(sb, v, ok, 0);
    if (!e && !*ok) strbuf_truncate(sb, before);
    return e;
}

// ---- fmt -----------------------------------------------------------------------------------
static bool applies_stringer(const struct gval *v, int depth)
{
    if (!v->type || v->kind == GK_INVALID || v->kind == GK_NIL) return false;
    return v->type->stringer == GS_JSON_VAL || v->type->stringer == GS_PROPTYPE ||
           (v->type->stringer == GS_JSON_PTR && depth == 0);
}

// The String() result of a value with a Stringer.
static enum llem_err stringer_text(struct strbuf *sb, const struct gval *v)
{
    if (v->type->stringer == GS_PROPTYPE) {
        const struct glist *l = v->u.list;
        if (!l || l->n == 0) return LLEM_OK;
        if (l->n == 1) return strbuf_append(sb, l->items[0].u.s.p, l->items[0].u.s.n);
        enum llem_err e = strbuf_append_char(sb, '[');
        for (size_t k = 0; k < l->n && !e; k++) {
            if (k) e = strbuf_append_char(sb, ' ');
            if (!e) e = strbuf_append(sb, l->items[k].u.s.p, l->items[k].u.s.n);
        }
        return e ? e : strbuf_append_char(sb, ']');
    }
    bool ok;
    return gval_json(sb, v, &ok); // Ollama ignores the error: "" on failure
}

static enum llem_err fmt_verb(struct strbuf *sb, const struct gval *v, char verb, int depth);

static enum llem_err bad_verb(struct strbuf *sb, const struct gval *v, char verb)
{
    enum llem_err e = strbuf_append(sb, "%!", 2);
    if (!e) e = strbuf_append_char(sb, verb);
    if (!e) e = strbuf_append_char(sb, '(');
    if (v->kind == GK_INVALID || v->kind == GK_NIL) {
        if (!e) e = strbuf_append_str(sb, "<nil>");
    } else {
        if (!e) e = strbuf_append_str(sb, gval_type_name(v));
        if (!e) e = strbuf_append_char(sb, '=');
        if (!e) e = fmt_verb(sb, v, 'v', 1);
    }
    return e ? e : strbuf_append_char(sb, ')');
}

static enum llem_err fmt_verb(struct strbuf *sb, const struct gval *v, char verb, int depth)
{
    char buf[64];
    if (depth > (int)LLEM_JSON_MAX_DEPTH * 2) return strbuf_append_str(sb, "...");
    if ((verb == 'v' || verb == 's' || verb == 'q') && applies_stringer(v, depth)) {
        if (verb != 'q') return stringer_text(sb, v);
        struct strbuf tmp;
        strbuf_init(&tmp, sb->max_len);
        enum llem_err e = stringer_text(&tmp, v);
        if (!e) e = gotmpl_quote(sb, strbuf_cstr(&tmp), tmp.len);
        strbuf_deinit(&tmp);
        return e;
    }
    switch (v->kind) {
    case GK_INVALID:
    case GK_NIL:
        if (verb == 'v') return strbuf_append_str(sb, "<nil>");
        return bad_verb(sb, v, verb);
    case GK_BOOL:
        if (verb == 'v' || verb == 't') return strbuf_append_str(sb, v->u.b ? "true" : "false");
        return bad_verb(sb, v, verb);
    case GK_INT:
        switch (verb) {
        case 'v': case 'd': snprintf(buf, sizeof(buf), "%lld", (long long)v->u.i); break;
        case 'x': case 'X': case 'o': case 'b': case 'c': case 'q': case 'U':
            return bad_verb(sb, v, verb); // handled with flags in sprintf
        default: return bad_verb(sb, v, verb);
        }
        return strbuf_append_str(sb, buf);
    case GK_FLOAT:
        if (verb == 'v') return gotmpl_fmt_float_g(sb, v->u.f);
        return bad_verb(sb, v, verb);
    case GK_STRING:
        if (verb == 'v' || verb == 's') return strbuf_append(sb, v->u.s.p, v->u.s.n);
        if (verb == 'q') return gotmpl_quote(sb, v->u.s.p, v->u.s.n);
        return bad_verb(sb, v, verb);
    case GK_LIST: {
        const struct glist *l = v->u.list;
        enum llem_err e = strbuf_append_char(sb, '[');
        for (size_t k = 0; l && k < l->n && !e; k++) {
            if (k) e = strbuf_append_char(sb, ' ');
            if (!e) e = fmt_verb(sb, &l->items[k], verb, depth + 1);
        }
        return e ? e : strbuf_append_char(sb, ']');
    }
    case GK_MAP: {
        const struct gmap *m = v->u.map;
        enum llem_err e = strbuf_append(sb, "map[", 4);
        for (size_t k = 0; m && k < m->n && !e; k++) {
            if (k) e = strbuf_append_char(sb, ' ');
            struct gval key = gval_str(m->keys[k], m->klens[k]);
            if (!e) e = fmt_verb(sb, &key, verb, depth + 1);
            if (!e) e = strbuf_append_char(sb, ':');
            if (!e) e = fmt_verb(sb, &m->vals[k], verb, depth + 1);
        }
        return e ? e : strbuf_append_char(sb, ']');
    }
    case GK_STRUCT: {
        enum llem_err e = LLEM_OK;
        if (v->type->ptr && depth > 0) e = strbuf_append_char(sb, '&');
        if (!e) e = strbuf_append_char(sb, '{');
        for (size_t k = 0; k < v->type->n_fields && !e; k++) {
            if (k) e = strbuf_append_char(sb, ' ');
            if (!e) e = fmt_verb(sb, &v->u.fields[k], verb, depth + 1);
        }
        return e ? e : strbuf_append_char(sb, '}');
    }
    default:
        return bad_verb(sb, v, verb);
    }
}

enum llem_err gval_fmt_v(struct strbuf *sb, const struct gval *v, int depth)
{
    return fmt_verb(sb, v, 'v', depth);
}

enum llem_err gval_sprint(struct strbuf *sb, const struct gval *args, size_t n, bool ln)
{
    enum llem_err e = LLEM_OK;
    bool prev_string = false;
    for (size_t k = 0; k < n && !e; k++) {
        bool is_string = args[k].kind == GK_STRING;
        if (k > 0 && (ln || (!is_string && !prev_string))) e = strbuf_append_char(sb, ' ');
        // fmt.Sprint(x) of a pointer to a struct prints "&{...}" (depth 1 gives that form).
        int depth = args[k].kind == GK_STRUCT && args[k].type->ptr ? 1 : 0;
        if (!e && depth && applies_stringer(&args[k], 0)) depth = 0;
        if (!e) e = fmt_verb(sb, &args[k], 'v', depth);
        prev_string = is_string;
    }
    if (ln && !e) e = strbuf_append_char(sb, '\n');
    return e;
}

// Pads s (appended at sb[from..]) to width with spaces or zeros, as fmt does.
static enum llem_err pad_field(struct strbuf *sb, size_t from, long width, bool minus, bool zero)
{
    size_t len = sb->len - from;
    // width counts runes
    size_t runes = 0;
    for (size_t k = from; k < sb->len; k++) {
        if (((unsigned char)sb->data[k] & 0xC0) != 0x80) runes++;
    }
    (void)len;
    if (width <= 0 || runes >= (size_t)width) return LLEM_OK;
    size_t padn = (size_t)width - runes;
    if (padn > (1u << 20)) return LLEM_ELIMIT;
    if (minus) {
        for (size_t k = 0; k < padn; k++) {
            enum llem_err e = strbuf_append_char(sb, ' ');
            if (e) return e;
        }
        return LLEM_OK;
    }
    enum llem_err e = strbuf_reserve(sb, padn);
    if (e) return e;
    size_t at = from;
    if (zero && at < sb->len && (sb->data[at] == '-' || sb->data[at] == '+')) at++;
    memmove(sb->data + at + padn, sb->data + at, sb->len - at);
    memset(sb->data + at, zero ? '0' : ' ', padn);
    sb->len += padn;
    sb->data[sb->len] = '\0';
    return LLEM_OK;
}

// The C format strings below are assembled from a fixed set of flags ("+ #"), integers and one
// conversion letter chosen by a switch, never from template text.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static enum llem_err fmt_int_c(struct strbuf *sb, const char *flags, long width, long prec,
                               char verb, long long v)
{
    if (prec > 100) prec = 100; // bounded buffer; Go would zero-pad further
    char spec[32], buf[160];
    char conv = verb == 'd' ? 'd' : verb == 'o' ? 'o' : verb == 'x' ? 'x' : 'X';
    if (verb == 'b') {
        // binary: no C conversion; build by hand
        unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        char tmp[70];
        int n = 0;
        do { tmp[n++] = (char)('0' + (u & 1)); u >>= 1; } while (u);
        size_t o = 0;
        if (v < 0) buf[o++] = '-';
        while (n) buf[o++] = tmp[--n];
        return strbuf_append(sb, buf, o);
    }
    if (conv != 'd') {
        // Go prints negative hex/octal with a sign: -0x1f style, not two's complement.
        unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        if (prec >= 0) snprintf(spec, sizeof(spec), "%%%s.%ldll%c", flags, prec, conv);
        else snprintf(spec, sizeof(spec), "%%%sll%c", flags, conv);
        size_t o = 0;
        if (v < 0) buf[o++] = '-';
        snprintf(buf + o, sizeof(buf) - o, spec, u);
        (void)width;
        return strbuf_append_str(sb, buf);
    }
    if (prec >= 0) snprintf(spec, sizeof(spec), "%%%s.%ldlld", flags, prec);
    else snprintf(spec, sizeof(spec), "%%%slld", flags);
    snprintf(buf, sizeof(buf), spec, v);
    return strbuf_append_str(sb, buf);
}

#pragma GCC diagnostic pop

static enum llem_err fmt_float_c(struct strbuf *sb, const char *cflags, long prec, char conv,
                                 double f)
{
    char spec[32], buf[720]; // %f of DBL_MAX (309 digits) with precision <= 300
    snprintf(spec, sizeof(spec), "%%%s.%ld%c", cflags, prec, conv);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    int n = snprintf(buf, sizeof(buf), spec, f);
#pragma GCC diagnostic pop
    if (n < 0) return LLEM_EINVAL;
    if ((size_t)n >= sizeof(buf)) return LLEM_ELIMIT; // %f of 1e300 with a large precision
    return strbuf_append(sb, buf, (size_t)n);
}

static enum llem_err fmt_one(struct strbuf *sb, const struct gval *v, char verb,
                             const char *cflags, bool plus, bool sharp, long width, long prec)
{
    char buf[400];
    if (verb == 'T') return strbuf_append_str(sb, gval_type_name(v));
    if (v->kind == GK_INT) {
        switch (verb) {
        case 'd': case 'x': case 'X': case 'o': case 'b':
            return fmt_int_c(sb, cflags, width, prec, verb, (long long)v->u.i);
        case 'c': case 'q': {
            char u8[4];
            uint32_t cp = v->u.i < 0 || v->u.i > 0x10FFFF ? 0xFFFD : (uint32_t)v->u.i;
            int n;
            if (cp < 0x80) { u8[0] = (char)cp; n = 1; }
            else if (cp < 0x800) { u8[0] = (char)(0xC0 | (cp >> 6)); u8[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
            else if (cp < 0x10000) { u8[0] = (char)(0xE0 | (cp >> 12)); u8[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); u8[2] = (char)(0x80 | (cp & 0x3F)); n = 3; }
            else { u8[0] = (char)(0xF0 | (cp >> 18)); u8[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); u8[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u8[3] = (char)(0x80 | (cp & 0x3F)); n = 4; }
            if (verb == 'c') return strbuf_append(sb, u8, (size_t)n);
            // %q of a rune: single-quoted
            struct strbuf tmp;
            strbuf_init(&tmp, 64);
            enum llem_err e = gotmpl_quote(&tmp, u8, (size_t)n);
            if (!e) {
                const char *q = strbuf_cstr(&tmp);
                e = strbuf_append_char(sb, '\'');
                if (!e) e = strbuf_append(sb, q + 1, tmp.len - 2);
                if (!e) e = strbuf_append_char(sb, '\'');
            }
            strbuf_deinit(&tmp);
            return e;
        }
        case 'U':
            snprintf(buf, sizeof(buf), "U+%04llX", (unsigned long long)v->u.i);
            return strbuf_append_str(sb, buf);
        default: break;
        }
    }
    if (v->kind == GK_FLOAT) {
        switch (verb) {
        case 'e': case 'E': case 'f': case 'F': case 'g': case 'G': {
            if (isnan(v->u.f) || isinf(v->u.f)) {
                if (plus && !isnan(v->u.f)) return strbuf_append_str(sb, v->u.f > 0 ? "+Inf" : "-Inf");
                return fmt_special(sb, v->u.f);
            }
            if ((verb == 'g' || verb == 'G') && prec < 0) {
                size_t from = sb->len;
                if (plus && v->u.f >= 0) {
                    enum llem_err e = strbuf_append_char(sb, '+');
                    if (e) return e;
                }
                enum llem_err e = gotmpl_fmt_float_g(sb, v->u.f);
                if (!e && verb == 'G') {
                    for (size_t k = from; k < sb->len; k++) {
                        if (sb->data[k] == 'e') sb->data[k] = 'E';
                    }
                }
                return e;
            }
            if (prec > 300) prec = 300;
            return fmt_float_c(sb, cflags, prec < 0 ? 6 : prec, verb == 'F' ? 'f' : verb,
                               v->u.f);
        }
        default: break;
        }
    }
    if (v->kind == GK_STRING && (verb == 'x' || verb == 'X')) {
        const char *hx = verb == 'x' ? "0123456789abcdef" : "0123456789ABCDEF";
        enum llem_err e = LLEM_OK;
        for (size_t k = 0; k < v->u.s.n && !e; k++) {
            unsigned char c = (unsigned char)v->u.s.p[k];
            char two[2] = {hx[c >> 4], hx[c & 15]};
            e = strbuf_append(sb, two, 2);
        }
        return e;
    }
    if (v->kind == GK_STRING && (verb == 's' || verb == 'v') && prec >= 0) {
        size_t k = 0, runes = 0;
        while (k < v->u.s.n && runes < (size_t)prec) {
            k++;
            while (k < v->u.s.n && ((unsigned char)v->u.s.p[k] & 0xC0) == 0x80) k++;
            runes++;
        }
        return strbuf_append(sb, v->u.s.p, k);
    }
    if (v->kind == GK_STRING && verb == 'q' && sharp) {
        bool raw_ok = memchr(v->u.s.p, '`', v->u.s.n) == NULL;
        for (size_t k = 0; raw_ok && k < v->u.s.n; k++) {
            unsigned char c = (unsigned char)v->u.s.p[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f) raw_ok = false;
        }
        if (raw_ok) {
            enum llem_err e = strbuf_append_char(sb, '`');
            if (!e) e = strbuf_append(sb, v->u.s.p, v->u.s.n);
            return e ? e : strbuf_append_char(sb, '`');
        }
    }
    if (verb == 'v' && sharp && v->kind == GK_STRING) {
        return gotmpl_quote(sb, v->u.s.p, v->u.s.n);
    }
    if (verb == 'v' && plus && v->kind == GK_INT) {
        snprintf(buf, sizeof(buf), "%+lld", (long long)v->u.i);
        return strbuf_append_str(sb, buf);
    }
    return fmt_verb(sb, v, verb, 0);
}

enum llem_err gval_sprintf(struct strbuf *sb, const char *fmt, size_t n, const struct gval *args,
                           size_t nargs)
{
    size_t argi = 0;
    enum llem_err e = LLEM_OK;
    for (size_t i = 0; i < n && !e;) {
        size_t lit = i;
        while (i < n && fmt[i] != '%') i++;
        if (i > lit) e = strbuf_append(sb, fmt + lit, i - lit);
        if (e || i >= n) break;
        i++; // '%'
        bool minus = false, plus = false, sharp = false, zero = false, space = false;
        for (; i < n; i++) {
            char c = fmt[i];
            if (c == '-') minus = true;
            else if (c == '+') plus = true;
            else if (c == '#') sharp = true;
            else if (c == '0') zero = !minus;
            else if (c == ' ') space = true;
            else break;
        }
        long width = -1, prec = -1;
        if (i < n && fmt[i] == '*') {
            i++;
            if (argi < nargs && args[argi].kind == GK_INT) {
                width = (long)(args[argi].u.i > 1000000 ? 1000000 : args[argi].u.i);
                if (width < 0) { minus = true; width = -width; }
            } else {
                e = strbuf_append_str(sb, "%!(BADWIDTH)");
            }
            argi++;
        } else {
            while (i < n && fmt[i] >= '0' && fmt[i] <= '9') {
                width = (width < 0 ? 0 : width) * 10 + (fmt[i++] - '0');
                if (width > 1000000) width = 1000000;
            }
        }
        if (i < n && fmt[i] == '.') {
            i++;
            if (i < n && fmt[i] == '*') {
                i++;
                if (argi < nargs && args[argi].kind == GK_INT && args[argi].u.i >= 0) {
                    prec = (long)(args[argi].u.i > 1000000 ? 1000000 : args[argi].u.i);
                } else {
                    e = strbuf_append_str(sb, "%!(BADPREC)");
                }
                argi++;
            } else {
                prec = 0;
                while (i < n && fmt[i] >= '0' && fmt[i] <= '9') {
                    prec = prec * 10 + (fmt[i++] - '0');
                    if (prec > 1000000) prec = 1000000;
                }
            }
        }
        if (e) break;
        if (i >= n) {
            e = strbuf_append_str(sb, "%!(NOVERB)");
            break;
        }
        // one verb (a UTF-8 sequence counts as one)
        size_t vs = i++;
        while (i < n && ((unsigned char)fmt[i] & 0xC0) == 0x80) i++;
        char verb = fmt[vs];
        if (verb == '%') {
            e = strbuf_append_char(sb, '%');
            continue;
        }
        if (argi >= nargs) {
            e = strbuf_append(sb, "%!", 2);
            if (!e) e = strbuf_append(sb, fmt + vs, i - vs);
            if (!e) e = strbuf_append_str(sb, "(MISSING)");
            continue;
        }
        if (i - vs > 1) {
            struct gval bad = args[argi++];
            e = strbuf_append(sb, "%!", 2);
            if (!e) e = strbuf_append(sb, fmt + vs, i - vs);
            if (!e) e = strbuf_append_char(sb, '(');
            if (!e) e = strbuf_append_str(sb, gval_type_name(&bad));
            if (!e) e = strbuf_append_char(sb, '=');
            if (!e) e = fmt_verb(sb, &bad, 'v', 0);
            if (!e) e = strbuf_append_char(sb, ')');
            continue;
        }
        char cflags[8];
        size_t cf = 0;
        if (plus) cflags[cf++] = '+';
        if (space && !plus) cflags[cf++] = ' ';
        if (sharp) cflags[cf++] = '#';
        cflags[cf] = '\0';
        size_t from = sb->len;
        const struct gval *a = &args[argi++];
        e = fmt_one(sb, a, verb, cflags, plus, sharp, width, prec);
        if (!e && width > 0) {
            bool zpad = zero && !minus && a->kind != GK_STRING;
            e = pad_field(sb, from, width, minus, zpad);
        }
    }
    if (!e && argi < nargs) {
        e = strbuf_append_str(sb, "%!(EXTRA ");
        for (size_t k = argi; k < nargs && !e; k++) {
            if (k > argi) e = strbuf_append_str(sb, ", ");
            if (!e && (args[k].kind == GK_INVALID || args[k].kind == GK_NIL)) {
                e = strbuf_append_str(sb, "<nil>");
                continue;
            }
            if (!e) e = strbuf_append_str(sb, gval_type_name(&args[k]));
            if (!e) e = strbuf_append_char(sb, '=');
            if (!e) e = fmt_verb(sb, &args[k], 'v', 0);
        }
        if (!e) e = strbuf_append_char(sb, ')');
    }
    return e;
}

// ---- JSON input (json.Unmarshal into interface{}) -----------------------------------------
static int cmp_keys(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c) return c;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

enum llem_err gval_from_json(struct gpool *p, const cJSON *j, struct gval *out, int depth)
{
    memset(out, 0, sizeof(*out));
    if (depth > (int)LLEM_JSON_MAX_DEPTH) return LLEM_ELIMIT;
    if (!j || cJSON_IsNull(j)) {
        out->kind = GK_NIL;
        return LLEM_OK;
    }
    if (cJSON_IsBool(j)) {
        *out = gval_bool(cJSON_IsTrue(j));
        return LLEM_OK;
    }
    if (cJSON_IsNumber(j)) {
        out->kind = GK_FLOAT;
        out->u.f = j->valuedouble;
        return LLEM_OK;
    }
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        *out = gval_str(s, strlen(s));
        return LLEM_OK;
    }
    if (cJSON_IsArray(j)) {
        size_t n = (size_t)cJSON_GetArraySize(j);
        struct glist *l = gpool_alloc(p, sizeof(*l));
        if (!l) return LLEM_ENOMEM;
        l->items = gpool_alloc(p, (n + 1) * sizeof(struct gval));
        if (!l->items) return LLEM_ENOMEM;
        const cJSON *c;
        cJSON_ArrayForEach(c, j) {
            enum llem_err e = gval_from_json(p, c, &l->items[l->n++], depth + 1);
            if (e) return e;
        }
        out->kind = GK_LIST;
        out->u.list = l;
        return LLEM_OK;
    }
    if (cJSON_IsObject(j)) {
        size_t n = (size_t)cJSON_GetArraySize(j);
        struct gmap *m = gpool_alloc(p, sizeof(*m));
        if (!m) return LLEM_ENOMEM;
        m->keys = gpool_alloc(p, (n + 1) * sizeof(char *));
        m->klens = gpool_alloc(p, (n + 1) * sizeof(size_t));
        m->vals = gpool_alloc(p, (n + 1) * sizeof(struct gval));
        if (!m->keys || !m->klens || !m->vals) return LLEM_ENOMEM;
        const cJSON *c;
        cJSON_ArrayForEach(c, j) {
            const char *k = c->string ? c->string : "";
            size_t kl = strlen(k);
            struct gval v;
            enum llem_err e = gval_from_json(p, c, &v, depth + 1);
            if (e) return e;
            // insertion into the sorted arrays; a duplicate key keeps the last value
            size_t lo = 0, hi = m->n;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (cmp_keys(m->keys[mid], m->klens[mid], k, kl) < 0) lo = mid + 1;
                else hi = mid;
            }
            if (lo < m->n && cmp_keys(m->keys[lo], m->klens[lo], k, kl) == 0) {
                m->vals[lo] = v;
                continue;
            }
            memmove(m->keys + lo + 1, m->keys + lo, (m->n - lo) * sizeof(char *));
            memmove(m->klens + lo + 1, m->klens + lo, (m->n - lo) * sizeof(size_t));
            memmove(m->vals + lo + 1, m->vals + lo, (m->n - lo) * sizeof(struct gval));
            m->keys[lo] = k;
            m->klens[lo] = kl;
            m->vals[lo] = v;
            m->n++;
        }
        out->kind = GK_MAP;
        out->u.map = m;
        return LLEM_OK;
    }
    out->kind = GK_NIL;
    return LLEM_OK;
}
