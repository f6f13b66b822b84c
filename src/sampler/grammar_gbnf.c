// sampler/grammar_gbnf.c: compiles GBNF text (llama.cpp's dialect) into struct grammar_rules.
// Groups and repetitions become generated rules (x* is right-recursive, x{m,n} a chain of
// optional rules), character classes over code points become byte sequences (UTF-8 split into
// byte ranges, surrogates excluded). Then checks: every rule defined, no left recursion (the
// stack-based runtime would loop), the root can finish; and computes the fewest bytes needed to
// finish from every element (grammar_min_remaining, "finish" mode).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "sampler/grammar_int.h"

#define MINLEN_INF (INT32_MAX / 4)

struct gb_rule {
    char *name;
    int32_t *e; // alternatives, each ended by GRAMMAR_END
    int32_t n, cap;
    bool defined;
};

struct gb {
    struct gb_rule *rules;
    int32_t n_rules, cap_rules;
    uint8_t (*sets)[32];
    int32_t n_sets, cap_sets;
    int32_t single[256]; // set index of each one-byte set, -1 until made
    int64_t n_elems;
    const char *p, *end;
    int depth;
    struct llem_errbuf *eb;
};

// ---- builder -------------------------------------------------------------------------------

static enum llem_err gb_oom(struct gb *g)
{
    return llem_errf(g->eb, LLEM_ENOMEM, "grammar: out of memory");
}

static enum llem_err gb_push(struct gb *g, int32_t rid, int32_t e)
{
    struct gb_rule *r = &g->rules[rid];
    if (++g->n_elems > GRAMMAR_MAX_ELEMS) {
        return llem_errf(g->eb, LLEM_ELIMIT, "grammar: more than %d elements", GRAMMAR_MAX_ELEMS);
    }
    if (r->n == r->cap) {
        int32_t nc = r->cap ? r->cap * 2 : 8;
        int32_t *ne = llem_realloc(r->e, (size_t)nc * sizeof *ne);
        if (!ne) {
            return gb_oom(g);
        }
        r->e = ne;
        r->cap = nc;
    }
    r->e[r->n++] = e;
    return LLEM_OK;
}

// Index of the rule called name[0..n); created (undefined) when new. Named rules are few, so
// a linear search is fine; generated rules are created with gb_new_rule and never looked up.
static enum llem_err gb_new_rule(struct gb *g, const char *name, size_t n, int32_t *out)
{
    if (g->n_rules >= GRAMMAR_MAX_RULES) {
        return llem_errf(g->eb, LLEM_ELIMIT, "grammar: more than %d rules", GRAMMAR_MAX_RULES);
    }
    if (g->n_rules == g->cap_rules) {
        int32_t nc = g->cap_rules ? g->cap_rules * 2 : 64;
        struct gb_rule *nr = llem_realloc(g->rules, (size_t)nc * sizeof *nr);
        if (!nr) {
            return gb_oom(g);
        }
        g->rules = nr;
        g->cap_rules = nc;
    }
    struct gb_rule *r = &g->rules[g->n_rules];
    memset(r, 0, sizeof *r);
    r->name = llem_strndup(name, n);
    if (!r->name) {
        return gb_oom(g);
    }
    *out = g->n_rules++;
    return LLEM_OK;
}

static enum llem_err gb_named(struct gb *g, const char *name, size_t n, int32_t *out)
{
    for (int32_t i = 0; i < g->n_rules; i++) {
        if (strlen(g->rules[i].name) == n && memcmp(g->rules[i].name, name, n) == 0) {
            *out = i;
            return LLEM_OK;
        }
    }
    return gb_new_rule(g, name, n, out);
}

static enum llem_err gb_gen_rule(struct gb *g, int32_t parent, int32_t *out)
{
    char name[96];
    int k = snprintf(name, sizeof name, "%.60s-%d", g->rules[parent].name, g->n_rules);
    enum llem_err e = gb_new_rule(g, name, (size_t)(k < 0 ? 0 : k), out);
    if (e == LLEM_OK) {
        g->rules[*out].defined = true;
    }
    return e;
}

static enum llem_err gb_set(struct gb *g, const uint8_t set[32], int32_t *out)
{
    int nbits = 0, only = -1;
    for (int b = 0; b < 256; b++) {
        if (grammar_set_has(set, (uint8_t)b)) {
            nbits++;
            only = b;
        }
    }
    if (nbits == 1 && g->single[only] >= 0) {
        *out = g->single[only];
        return LLEM_OK;
    }
    for (int32_t i = 0; i < g->n_sets; i++) {
        if (memcmp(g->sets[i], set, 32) == 0) {
            *out = i;
            return LLEM_OK;
        }
    }
    if (g->n_sets == g->cap_sets) {
        int32_t nc = g->cap_sets ? g->cap_sets * 2 : 64;
        uint8_t(*ns)[32] = llem_realloc(g->sets, (size_t)nc * 32);
        if (!ns) {
            return gb_oom(g);
        }
        g->sets = ns;
        g->cap_sets = nc;
    }
    memcpy(g->sets[g->n_sets], set, 32);
    if (nbits == 1) {
        g->single[only] = g->n_sets;
    }
    *out = g->n_sets++;
    return LLEM_OK;
}

static enum llem_err gb_push_range(struct gb *g, int32_t rid, uint8_t lo, uint8_t hi)
{
    uint8_t set[32] = {0};
    for (int b = lo; b <= hi; b++) {
        set[b >> 3] |= (uint8_t)(1u << (b & 7));
    }
    int32_t s;
    enum llem_err e = gb_set(g, set, &s);
    return e ? e : gb_push(g, rid, s);
}

// ---- lexing --------------------------------------------------------------------------------

static void skip_space(struct gb *g, bool newline_ok)
{
    while (g->p < g->end) {
        char c = *g->p;
        if (c == ' ' || c == '\t' || c == '\r' || (newline_ok && c == '\n')) {
            g->p++;
        } else if (c == '#') {
            while (g->p < g->end && *g->p != '\n') {
                g->p++;
            }
        } else {
            break;
        }
    }
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Reads one code point of a literal or class (escapes, or raw UTF-8 from the source).
static enum llem_err read_char(struct gb *g, uint32_t *cp)
{
    if (g->p >= g->end) {
        return llem_errf(g->eb, LLEM_EINVAL, "grammar: unexpected end of input");
    }
    unsigned char c = (unsigned char)*g->p++;
    if (c == '\\') {
        if (g->p >= g->end) {
            return llem_errf(g->eb, LLEM_EINVAL, "grammar: dangling backslash");
        }
        char x = *g->p++;
        int nhex = 0;
        switch (x) {
        case 'n': *cp = '\n'; return LLEM_OK;
        case 'r': *cp = '\r'; return LLEM_OK;
        case 't': *cp = '\t'; return LLEM_OK;
        case 'x': nhex = 2; break;
        case 'u': nhex = 4; break;
        case 'U': nhex = 8; break;
        default: *cp = (unsigned char)x; return LLEM_OK; // \\ \" \[ \] \- ...
        }
        uint32_t v = 0;
        for (int i = 0; i < nhex; i++) {
            int h = g->p < g->end ? hexval(*g->p) : -1;
            if (h < 0) {
                return llem_errf(g->eb, LLEM_EINVAL, "grammar: bad \\%c escape", x);
            }
            v = v * 16 + (uint32_t)h;
            g->p++;
        }
        if (v > 0x10FFFF) {
            return llem_errf(g->eb, LLEM_EINVAL, "grammar: code point out of range");
        }
        *cp = v;
        return LLEM_OK;
    }
    if (c < 0x80) {
        *cp = c;
        return LLEM_OK;
    }
    int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
    if (n < 0) {
        return llem_errf(g->eb, LLEM_EINVAL, "grammar: invalid UTF-8 in source");
    }
    uint32_t v = c & (0x3Fu >> n);
    for (int i = 0; i < n; i++) {
        if (g->p >= g->end || ((unsigned char)*g->p & 0xC0) != 0x80) {
            return llem_errf(g->eb, LLEM_EINVAL, "grammar: invalid UTF-8 in source");
        }
        v = (v << 6) | ((unsigned char)*g->p++ & 0x3F);
    }
    *cp = v;
    return LLEM_OK;
}

static int utf8_put(uint32_t c, uint8_t *b)
{
    if (c < 0x80) {
        b[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        b[0] = (uint8_t)(0xC0 | (c >> 6));
        b[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (c >> 12));
        b[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    b[0] = (uint8_t)(0xF0 | (c >> 18));
    b[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    b[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    b[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

// ---- character classes ---------------------------------------------------------------------

struct cp_range {
    uint32_t lo, hi;
};

static int range_cmp(const void *a, const void *b)
{
    const struct cp_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

// Adds alternatives to rule rid matching the UTF-8 encodings of [lo, hi] (non-ASCII part),
// split so that each alternative is a sequence of byte ranges.
static enum llem_err utf8_split(struct gb *g, int32_t rid, uint32_t lo, uint32_t hi)
{
    enum llem_err e;
    if (lo > hi) {
        return LLEM_OK;
    }
    if (lo <= 0xDFFF && hi >= 0xD800) {
        if (lo < 0xD800 && (e = utf8_split(g, rid, lo, 0xD7FF))) {
            return e;
        }
        return hi > 0xDFFF ? utf8_split(g, rid, 0xE000, hi) : LLEM_OK;
    }
    static const uint32_t lim[3] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++) {
        if (lo <= lim[i] && hi > lim[i]) {
            if ((e = utf8_split(g, rid, lo, lim[i]))) {
                return e;
            }
            return utf8_split(g, rid, lim[i] + 1, hi);
        }
    }
    uint8_t a[4], b[4];
    int n = utf8_put(lo, a);
    utf8_put(hi, b);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0) {
                if ((e = utf8_split(g, rid, lo, lo | m))) {
                    return e;
                }
                return utf8_split(g, rid, (lo | m) + 1, hi);
            }
            if ((hi & m) != m) {
                if ((e = utf8_split(g, rid, lo, (hi & ~m) - 1))) {
                    return e;
                }
                return utf8_split(g, rid, hi & ~m, hi);
            }
        }
    }
    for (int k = 0; k < n; k++) {
        if ((e = gb_push_range(g, rid, a[k], b[k]))) {
            return e;
        }
    }
    return gb_push(g, rid, GRAMMAR_END);
}

// Appends to rule `into` one element matching any code point in ranges[0..n) (negated: any
// code point outside them): a byte-set terminal when only ASCII matches, else a reference to a
// generated rule of byte sequences.
static enum llem_err emit_class(struct gb *g, int32_t into, struct cp_range *r, int32_t n,
                                bool negate)
{
    qsort(r, (size_t)n, sizeof *r, range_cmp);
    int32_t m = 0; // merge
    for (int32_t i = 0; i < n; i++) {
        if (m > 0 && r[i].lo <= r[m - 1].hi + 1) {
            if (r[i].hi > r[m - 1].hi) {
                r[m - 1].hi = r[i].hi;
            }
        } else {
            r[m++] = r[i];
        }
    }
    // The matching set as ranges: the complement when negated (written into a second list).
    struct cp_range *pos = r;
    int32_t npos = m;
    struct cp_range *tmp = NULL;
    if (negate) {
        tmp = llem_malloc((size_t)(m + 1) * sizeof *tmp);
        if (!tmp) {
            return gb_oom(g);
        }
        npos = 0;
        uint32_t next = 0;
        for (int32_t i = 0; i < m; i++) {
            if (r[i].lo > next) {
                tmp[npos++] = (struct cp_range){next, r[i].lo - 1};
            }
            next = r[i].hi + 1;
        }
        if (next <= 0x10FFFF) {
            tmp[npos++] = (struct cp_range){next, 0x10FFFF};
        }
        pos = tmp;
    }
    uint8_t ascii[32] = {0};
    bool any_ascii = false, any_high = false;
    for (int32_t i = 0; i < npos; i++) {
        for (uint32_t c = pos[i].lo; c <= pos[i].hi && c < 0x80; c++) {
            ascii[c >> 3] |= (uint8_t)(1u << (c & 7));
            any_ascii = true;
        }
        if (pos[i].hi >= 0x80) {
            any_high = true;
        }
    }
    enum llem_err e = LLEM_OK;
    if (!any_ascii && !any_high) {
        e = llem_errf(g->eb, LLEM_EINVAL, "grammar: character class matches nothing");
    } else if (!any_high) {
        int32_t s;
        if (!(e = gb_set(g, ascii, &s))) {
            e = gb_push(g, into, s);
        }
    } else {
        int32_t cr, s;
        if (!(e = gb_gen_rule(g, into, &cr))) {
            if (any_ascii && !(e = gb_set(g, ascii, &s)) && !(e = gb_push(g, cr, s))) {
                e = gb_push(g, cr, GRAMMAR_END);
            }
            for (int32_t i = 0; !e && i < npos; i++) {
                if (pos[i].hi >= 0x80) {
                    e = utf8_split(g, cr, pos[i].lo < 0x80 ? 0x80 : pos[i].lo, pos[i].hi);
                }
            }
            if (!e) {
                e = gb_push(g, into, GRAMMAR_REF(cr));
            }
        }
    }
    llem_free(tmp);
    return e;
}

static enum llem_err parse_class(struct gb *g, int32_t rid)
{
    g->p++; // [
    bool negate = false;
    if (g->p < g->end && *g->p == '^') {
        negate = true;
        g->p++;
    }
    struct cp_range *r = NULL;
    int32_t n = 0, cap = 0;
    enum llem_err e = LLEM_OK;
    while (!e) {
        if (g->p >= g->end) {
            e = llem_errf(g->eb, LLEM_EINVAL, "grammar: unterminated character class");
            break;
        }
        if (*g->p == ']') {
            g->p++;
            break;
        }
        uint32_t lo, hi;
        if ((e = read_char(g, &lo))) {
            break;
        }
        hi = lo;
        if (g->p + 1 < g->end && *g->p == '-' && g->p[1] != ']') {
            g->p++;
            if ((e = read_char(g, &hi))) {
                break;
            }
            if (hi < lo) {
                e = llem_errf(g->eb, LLEM_EINVAL, "grammar: reversed range in class");
                break;
            }
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if (cap > 65536) {
                e = llem_errf(g->eb, LLEM_ELIMIT, "grammar: character class too long");
                break;
            }
            struct cp_range *nr = llem_realloc(r, (size_t)cap * sizeof *nr);
            if (!nr) {
                e = gb_oom(g);
                break;
            }
            r = nr;
        }
        r[n++] = (struct cp_range){lo, hi};
    }
    if (!e) {
        e = (n == 0 && !negate) ? llem_errf(g->eb, LLEM_EINVAL, "grammar: empty character class")
                                : emit_class(g, rid, r, n, negate);
    }
    llem_free(r);
    return e;
}

// ---- expressions ---------------------------------------------------------------------------

static enum llem_err parse_alternates(struct gb *g, int32_t rid, bool nested);

static enum llem_err parse_int(struct gb *g, int64_t *v)
{
    if (g->p >= g->end || *g->p < '0' || *g->p > '9') {
        return llem_errf(g->eb, LLEM_EINVAL, "grammar: expected a number in {}");
    }
    *v = 0;
    while (g->p < g->end && *g->p >= '0' && *g->p <= '9') {
        *v = *v * 10 + (*g->p++ - '0');
        if (*v > GRAMMAR_MAX_REPEAT) {
            return llem_errf(g->eb, LLEM_ELIMIT, "grammar: repetition over %d",
                             GRAMMAR_MAX_REPEAT);
        }
    }
    return LLEM_OK;
}

// Replaces the item rules[rid].e[start..n) by its repetition {min, max} (max < 0: unbounded).
static enum llem_err repeat_item(struct gb *g, int32_t rid, int32_t start, int64_t min,
                                 int64_t max)
{
    enum llem_err e;
    int32_t len = g->rules[rid].n - start, x;
    if (len == 1) {
        x = g->rules[rid].e[start];
    } else {
        int32_t sub;
        if ((e = gb_gen_rule(g, rid, &sub))) {
            return e;
        }
        for (int32_t i = 0; i < len; i++) {
            if ((e = gb_push(g, sub, g->rules[rid].e[start + i]))) {
                return e;
            }
        }
        if ((e = gb_push(g, sub, GRAMMAR_END))) {
            return e;
        }
        x = GRAMMAR_REF(sub);
    }
    g->rules[rid].n = start;
    for (int64_t i = 0; i < min; i++) {
        if ((e = gb_push(g, rid, x))) {
            return e;
        }
    }
    if (max < 0) { // r ::= x r | (empty)
        int32_t r;
        if ((e = gb_gen_rule(g, rid, &r)) || (e = gb_push(g, r, x)) ||
            (e = gb_push(g, r, GRAMMAR_REF(r))) || (e = gb_push(g, r, GRAMMAR_END)) ||
            (e = gb_push(g, r, GRAMMAR_END))) {
            return e;
        }
        return gb_push(g, rid, GRAMMAR_REF(r));
    }
    int32_t prev = -1; // r_k ::= x r_{k-1} | (empty)
    for (int64_t k = 0; k < max - min; k++) {
        int32_t r;
        if ((e = gb_gen_rule(g, rid, &r)) || (e = gb_push(g, r, x))) {
            return e;
        }
        if (prev >= 0 && (e = gb_push(g, r, GRAMMAR_REF(prev)))) {
            return e;
        }
        if ((e = gb_push(g, r, GRAMMAR_END)) || (e = gb_push(g, r, GRAMMAR_END))) {
            return e;
        }
        prev = r;
    }
    return prev >= 0 ? gb_push(g, rid, GRAMMAR_REF(prev)) : LLEM_OK;
}

static enum llem_err parse_sequence(struct gb *g, int32_t rid, bool nested)
{
    enum llem_err e = LLEM_OK;
    int32_t last = -1;
    while (g->p < g->end && !e) {
        char c = *g->p;
        int32_t here = g->rules[rid].n;
        if (c == '"') {
            g->p++;
            last = here;
            while (!e) {
                if (g->p >= g->end) {
                    return llem_errf(g->eb, LLEM_EINVAL, "grammar: unterminated literal");
                }
                if (*g->p == '"') {
                    g->p++;
                    break;
                }
                uint32_t cp;
                uint8_t b[4];
                if ((e = read_char(g, &cp))) {
                    return e;
                }
                int nb = utf8_put(cp, b);
                for (int i = 0; i < nb && !e; i++) {
                    e = gb_push_range(g, rid, b[i], b[i]);
                }
            }
            if (g->rules[rid].n == here) {
                last = -1; // "" matches the empty string
            }
        } else if (c == '[') {
            last = here;
            e = parse_class(g, rid);
        } else if (c == '.') {
            g->p++;
            last = here;
            struct cp_range none = {0, 0};
            e = emit_class(g, rid, &none, 0, true); // any code point
        } else if (c == '(') {
            g->p++;
            int32_t sub;
            if (++g->depth > 200) {
                return llem_errf(g->eb, LLEM_ELIMIT, "grammar: groups nested too deeply");
            }
            if ((e = gb_gen_rule(g, rid, &sub))) {
                return e;
            }
            skip_space(g, true);
            if ((e = parse_alternates(g, sub, true))) {
                return e;
            }
            g->depth--;
            if (g->p >= g->end || *g->p != ')') {
                return llem_errf(g->eb, LLEM_EINVAL, "grammar: expected ')'");
            }
            g->p++;
            last = here;
            e = gb_push(g, rid, GRAMMAR_REF(sub));
        } else if (is_name_char(c)) {
            const char *s = g->p;
            while (g->p < g->end && is_name_char(*g->p)) {
                g->p++;
            }
            int32_t ref;
            if ((e = gb_named(g, s, (size_t)(g->p - s), &ref))) {
                return e;
            }
            last = here;
            e = gb_push(g, rid, GRAMMAR_REF(ref));
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last < 0) {
                return llem_errf(g->eb, LLEM_EINVAL, "grammar: '%c' without an item", c);
            }
            g->p++;
            int64_t min = 0, max = -1;
            if (c == '+') {
                min = 1;
            } else if (c == '?') {
                max = 1;
            } else if (c == '{') {
                skip_space(g, nested);
                if ((e = parse_int(g, &min))) {
                    return e;
                }
                skip_space(g, nested);
                max = min;
                if (g->p < g->end && *g->p == ',') {
                    g->p++;
                    skip_space(g, nested);
                    max = -1;
                    if (g->p < g->end && *g->p != '}' && (e = parse_int(g, &max))) {
                        return e;
                    }
                    skip_space(g, nested);
                }
                if (g->p >= g->end || *g->p != '}') {
                    return llem_errf(g->eb, LLEM_EINVAL, "grammar: expected '}'");
                }
                g->p++;
                if (max >= 0 && max < min) {
                    return llem_errf(g->eb, LLEM_EINVAL, "grammar: {m,n} with n < m");
                }
            }
            e = repeat_item(g, rid, last, min, max);
            last = -1;
        } else {
            break;
        }
        skip_space(g, nested);
    }
    return e ? e : gb_push(g, rid, GRAMMAR_END);
}

static enum llem_err parse_alternates(struct gb *g, int32_t rid, bool nested)
{
    enum llem_err e = parse_sequence(g, rid, nested);
    while (!e && g->p < g->end && *g->p == '|') {
        g->p++;
        skip_space(g, true);
        e = parse_sequence(g, rid, nested);
    }
    return e;
}

// ---- analysis ------------------------------------------------------------------------------

static int32_t sat_add(int32_t a, int32_t b)
{
    int64_t s = (int64_t)a + b;
    return s >= MINLEN_INF ? MINLEN_INF : (int32_t)s;
}

// Fewest bytes each rule can match (MINLEN_INF: never finishes), by iterating to a fixed point.
static void compute_minlen(struct grammar_rules *r, int32_t *minlen)
{
    for (int32_t i = 0; i < r->n_rules; i++) {
        minlen[i] = MINLEN_INF;
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int32_t ri = r->n_rules - 1; ri >= 0; ri--) {
            for (int32_t a = r->rule_alt[ri]; a < r->rule_alt[ri + 1]; a++) {
                int32_t len = 0;
                for (int32_t p = r->alts[a]; r->elems[p] != GRAMMAR_END; p++) {
                    int32_t el = r->elems[p];
                    len = sat_add(len, GRAMMAR_IS_REF(el) ? minlen[GRAMMAR_REF_RULE(el)] : 1);
                }
                if (len < minlen[ri]) {
                    minlen[ri] = len;
                    changed = true;
                }
            }
        }
    }
}

// A rule that can call itself before consuming a byte would make the runtime loop: reject it.
// Iterative DFS over "rule A may start with rule B".
static enum llem_err check_left_recursion(const struct grammar_rules *r, const int32_t *minlen,
                                          struct llem_errbuf *eb)
{
    enum llem_err e = LLEM_OK;
    uint8_t *color = llem_calloc((size_t)r->n_rules, 1);
    int32_t *stk_rule = llem_malloc((size_t)r->n_rules * sizeof *stk_rule);
    int32_t *stk_pos = llem_malloc((size_t)r->n_rules * sizeof *stk_pos); // next element index
    if (!color || !stk_rule || !stk_pos) {
        e = llem_errf(eb, LLEM_ENOMEM, "grammar: out of memory");
        goto out;
    }
    for (int32_t s = 0; s < r->n_rules && !e; s++) {
        if (color[s]) {
            continue;
        }
        int32_t sp = 0;
        stk_rule[sp] = s;
        stk_pos[sp] = r->alts[r->rule_alt[s]];
        color[s] = 1;
        sp++;
        while (sp > 0) {
            int32_t ri = stk_rule[sp - 1];
            int32_t p = stk_pos[sp - 1];
            int32_t last = r->rule_alt[ri + 1] - 1;
            int32_t end_pos = last >= r->rule_alt[ri] ? r->alts[last] : p;
            // Walk this rule's elements (alternatives are contiguous) from p; within one
            // alternative, stop after the first element that cannot be empty.
            int32_t child = -1;
            while (p < r->n_elems) {
                int32_t el = r->elems[p];
                if (el == GRAMMAR_END) {
                    if (p >= end_pos) {
                        break;
                    }
                    p++;
                    continue;
                }
                // is this element in a nullable prefix of its alternative?
                int32_t q = p - 1;
                bool prefix = true;
                while (q >= 0 && r->elems[q] != GRAMMAR_END) {
                    int32_t pe = r->elems[q];
                    if (!GRAMMAR_IS_REF(pe) || minlen[GRAMMAR_REF_RULE(pe)] != 0) {
                        prefix = false;
                        break;
                    }
                    q--;
                }
                p++;
                if (prefix && GRAMMAR_IS_REF(el)) {
                    child = GRAMMAR_REF_RULE(el);
                    break;
                }
            }
            stk_pos[sp - 1] = p;
            if (child < 0) {
                color[ri] = 2;
                sp--;
            } else if (color[child] == 1) {
                e = llem_errf(eb, LLEM_EINVAL, "grammar: rule '%s' is left-recursive",
                              r->names[child]);
                break;
            } else if (color[child] == 0) {
                color[child] = 1;
                stk_rule[sp] = child;
                stk_pos[sp] = r->alts[r->rule_alt[child]];
                sp++;
            }
        }
    }
out:
    llem_free(color);
    llem_free(stk_rule);
    llem_free(stk_pos);
    return e;
}

// ---- entry points --------------------------------------------------------------------------

void grammar_rules_free(struct grammar_rules *r)
{
    if (!r) {
        return;
    }
    if (r->names) {
        for (int32_t i = 0; i < r->n_rules; i++) {
            llem_free(r->names[i]);
        }
    }
    llem_free(r->names);
    llem_free(r->rule_alt);
    llem_free(r->alts);
    llem_free(r->elems);
    llem_free(r->sets);
    llem_free(r->min_suffix);
    llem_free(r);
}

static void gb_deinit(struct gb *g)
{
    for (int32_t i = 0; i < g->n_rules; i++) {
        llem_free(g->rules[i].name);
        llem_free(g->rules[i].e);
    }
    llem_free(g->rules);
    llem_free(g->sets);
}

// Flattens the builder into rules (takes the names), then analyses.
static enum llem_err gb_finish(struct gb *g, int32_t root, struct grammar_rules **out)
{
    struct llem_errbuf *eb = g->eb;
    for (int32_t i = 0; i < g->n_rules; i++) {
        if (!g->rules[i].defined) {
            return llem_errf(eb, LLEM_EINVAL, "grammar: rule '%s' is not defined",
                             g->rules[i].name);
        }
    }
    struct grammar_rules *r = llem_calloc(1, sizeof *r);
    if (!r) {
        return gb_oom(g);
    }
    int64_t n_alts = 0;
    for (int32_t i = 0; i < g->n_rules; i++) {
        for (int32_t k = 0; k < g->rules[i].n; k++) {
            n_alts += g->rules[i].e[k] == GRAMMAR_END;
        }
    }
    r->n_rules = g->n_rules;
    r->root = root;
    r->n_elems = (int32_t)g->n_elems;
    r->n_alts = (int32_t)n_alts;
    r->rule_alt = llem_malloc((size_t)(r->n_rules + 1) * sizeof *r->rule_alt);
    r->alts = llem_malloc((size_t)(n_alts + 1) * sizeof *r->alts);
    r->elems = llem_malloc((size_t)(r->n_elems + 1) * sizeof *r->elems);
    r->min_suffix = llem_malloc((size_t)(r->n_elems + 1) * sizeof *r->min_suffix);
    r->names = llem_calloc((size_t)r->n_rules, sizeof *r->names);
    r->sets = llem_malloc((size_t)(g->n_sets + 1) * 32);
    int32_t *minlen = llem_malloc((size_t)r->n_rules * sizeof *minlen);
    enum llem_err e = LLEM_OK;
    if (!r->rule_alt || !r->alts || !r->elems || !r->min_suffix || !r->names || !r->sets ||
        !minlen) {
        e = gb_oom(g);
        goto fail;
    }
    memcpy(r->sets, g->sets, (size_t)g->n_sets * 32);
    r->n_sets = g->n_sets;
    int32_t ne = 0, na = 0;
    for (int32_t i = 0; i < g->n_rules; i++) {
        r->names[i] = g->rules[i].name;
        g->rules[i].name = NULL;
        r->rule_alt[i] = na;
        bool start = true;
        for (int32_t k = 0; k < g->rules[i].n; k++) {
            if (start) {
                r->alts[na++] = ne;
            }
            r->elems[ne++] = g->rules[i].e[k];
            start = g->rules[i].e[k] == GRAMMAR_END;
        }
    }
    r->rule_alt[r->n_rules] = na;
    compute_minlen(r, minlen);
    if (minlen[root] >= MINLEN_INF) {
        e = llem_errf(eb, LLEM_EINVAL, "grammar: rule '%s' can never finish", r->names[root]);
        goto fail;
    }
    for (int32_t a = 0; a < r->n_alts; a++) {
        int32_t p = r->alts[a], q = p;
        while (r->elems[q] != GRAMMAR_END) {
            q++;
        }
        r->min_suffix[q] = 0;
        for (int32_t k = q - 1; k >= p; k--) {
            int32_t el = r->elems[k];
            r->min_suffix[k] =
                sat_add(r->min_suffix[k + 1], GRAMMAR_IS_REF(el) ? minlen[GRAMMAR_REF_RULE(el)] : 1);
        }
    }
    if ((e = check_left_recursion(r, minlen, eb))) {
        goto fail;
    }
    llem_free(minlen);
    *out = r;
    return LLEM_OK;
fail:
    llem_free(minlen);
    grammar_rules_free(r);
    return e;
}

enum llem_err grammar_rules_gbnf(struct grammar_rules **out, const char *src, size_t len,
                                 const char *root, struct llem_errbuf *eb)
{
    *out = NULL;
    if (len > GRAMMAR_MAX_SRC) {
        return llem_errf(eb, LLEM_ELIMIT, "grammar: source over %u bytes", GRAMMAR_MAX_SRC);
    }
    struct gb g = {.p = src, .end = src + len, .eb = eb};
    memset(g.single, 0xff, sizeof g.single);
    enum llem_err e = LLEM_OK;
    const char *root_name = root ? root : "root";
    int32_t root_id = -1;
    if ((e = gb_named(&g, root_name, strlen(root_name), &root_id))) {
        goto done;
    }
    for (;;) {
        skip_space(&g, true);
        if (g.p >= g.end) {
            break;
        }
        const char *s = g.p;
        while (g.p < g.end && is_name_char(*g.p)) {
            g.p++;
        }
        if (g.p == s) {
            e = llem_errf(eb, LLEM_EINVAL, "grammar: expected a rule name at offset %td",
                          s - src);
            goto done;
        }
        int32_t rid;
        if ((e = gb_named(&g, s, (size_t)(g.p - s), &rid))) {
            goto done;
        }
        if (g.rules[rid].defined) {
            e = llem_errf(eb, LLEM_EINVAL, "grammar: rule '%s' defined twice", g.rules[rid].name);
            goto done;
        }
        g.rules[rid].defined = true;
        skip_space(&g, false);
        if (g.end - g.p < 3 || memcmp(g.p, "::=", 3) != 0) {
            e = llem_errf(eb, LLEM_EINVAL, "grammar: expected '::=' after '%s'", g.rules[rid].name);
            goto done;
        }
        g.p += 3;
        skip_space(&g, true);
        if ((e = parse_alternates(&g, rid, false))) {
            goto done;
        }
        if (g.p < g.end && *g.p != '\n') {
            e = llem_errf(eb, LLEM_EINVAL, "grammar: unexpected '%c' at offset %td", *g.p,
                          g.p - src);
            goto done;
        }
    }
    e = gb_finish(&g, root_id, out);
done:
    gb_deinit(&g);
    return e;
}

enum llem_err grammar_rules_clone(const struct grammar_rules *r, struct grammar_rules **out,
                                  struct llem_errbuf *eb)
{
    struct grammar_rules *c = llem_calloc(1, sizeof *c);
    if (!c) {
        return llem_errf(eb, LLEM_ENOMEM, "grammar: out of memory");
    }
    *c = *r;
    c->names = NULL; // not needed at run time
    c->rule_alt = llem_malloc((size_t)(r->n_rules + 1) * sizeof *c->rule_alt);
    c->alts = llem_malloc((size_t)(r->n_alts + 1) * sizeof *c->alts);
    c->elems = llem_malloc((size_t)(r->n_elems + 1) * sizeof *c->elems);
    c->min_suffix = llem_malloc((size_t)(r->n_elems + 1) * sizeof *c->min_suffix);
    c->sets = llem_malloc((size_t)(r->n_sets + 1) * 32);
    if (!c->rule_alt || !c->alts || !c->elems || !c->min_suffix || !c->sets) {
        grammar_rules_free(c);
        return llem_errf(eb, LLEM_ENOMEM, "grammar: out of memory");
    }
    memcpy(c->rule_alt, r->rule_alt, (size_t)(r->n_rules + 1) * sizeof *c->rule_alt);
    memcpy(c->alts, r->alts, (size_t)r->n_alts * sizeof *c->alts);
    memcpy(c->elems, r->elems, (size_t)r->n_elems * sizeof *c->elems);
    memcpy(c->min_suffix, r->min_suffix, (size_t)r->n_elems * sizeof *c->min_suffix);
    memcpy(c->sets, r->sets, (size_t)r->n_sets * 32);
    *out = c;
    return LLEM_OK;
}

static enum llem_err print_set(const uint8_t *set, struct strbuf *out)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        n += grammar_set_has(set, (uint8_t)b);
    }
    enum llem_err e = strbuf_append_char(out, n == 1 ? '"' : '[');
    for (int b = 0; b < 256 && !e; b++) {
        if (!grammar_set_has(set, (uint8_t)b)) {
            continue;
        }
        int hi = b;
        while (hi + 1 < 256 && grammar_set_has(set, (uint8_t)(hi + 1))) {
            hi++;
        }
        for (int k = 0; k < 2 && !e; k++) {
            int c = k == 0 ? b : hi;
            if (k == 1 && hi == b) {
                break;
            }
            if (k == 1 && (e = strbuf_append_char(out, '-'))) {
                break;
            }
            if (c >= 0x20 && c < 0x7F && !strchr("\"\\[]-^", c)) {
                e = strbuf_append_char(out, (char)c);
            } else {
                e = strbuf_appendf(out, "\\x%02X", c);
            }
        }
        b = hi;
    }
    return e ? e : strbuf_append_char(out, n == 1 ? '"' : ']');
}

enum llem_err grammar_rules_print(const struct grammar_rules *r, struct strbuf *out)
{
    enum llem_err e = LLEM_OK;
    for (int32_t i = 0; i < r->n_rules && !e; i++) {
        e = strbuf_appendf(out, "%s ::=", r->names ? r->names[i] : "r");
        for (int32_t a = r->rule_alt[i]; a < r->rule_alt[i + 1] && !e; a++) {
            if (a > r->rule_alt[i]) {
                e = strbuf_append_str(out, " |");
            }
            for (int32_t p = r->alts[a]; !e && r->elems[p] != GRAMMAR_END; p++) {
                int32_t el = r->elems[p];
                if ((e = strbuf_append_char(out, ' '))) {
                    break;
                }
                if (GRAMMAR_IS_REF(el)) {
                    e = r->names ? strbuf_append_str(out, r->names[GRAMMAR_REF_RULE(el)])
                                 : strbuf_appendf(out, "r%d", GRAMMAR_REF_RULE(el));
                } else {
                    e = print_set(r->sets[el], out);
                }
            }
        }
        if (!e) {
            e = strbuf_append_char(out, '\n');
        }
    }
    return e;
}
