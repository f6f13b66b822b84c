// sampler/json_schema_regex.c: a JSON Schema `pattern` (ECMA-262 subset) -> a GBNF expression
// over the JSON-ENCODED string content: a pattern character '"' matches the two bytes \" in the
// output, a newline matches \n, and so on, so the decoded string matches the pattern. Supported:
// literals, escapes (\d \w \s \D \W \S \n \t \r \f \v \xHH \uHHHH and escaped punctuation),
// classes with ranges and negation, '.', groups ( ) (?: ) (?<name> ), alternation, quantifiers
// * + ? {m} {m,} {m,n} (lazy forms behave the same), and ^ / $ at the ends. An unanchored side
// is padded with "anything" (patterns search). Lookarounds, backreferences, \b, flags, Unicode
// property classes: LLEM_EUNSUPPORTED.
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "sampler/grammar_int.h"

#define RE_MAX_RANGES 512
#define RE_MAX_REPEAT 1000
#define RE_MAX_DEPTH 64

struct re {
    const char *p, *end;
    struct strbuf *o;
    struct llem_errbuf *eb;
    int depth;
};

struct rng_set {
    uint32_t lo[RE_MAX_RANGES], hi[RE_MAX_RANGES];
    int n;
};

static enum llem_err unsup(struct re *r, const char *what)
{
    return llem_errf(r->eb, LLEM_EUNSUPPORTED, "schema: pattern: %s is not supported", what);
}

static enum llem_err add_range(struct re *r, struct rng_set *s, uint32_t lo, uint32_t hi)
{
    if (s->n >= RE_MAX_RANGES) {
        return llem_errf(r->eb, LLEM_ELIMIT, "schema: pattern: character class too large");
    }
    s->lo[s->n] = lo;
    s->hi[s->n] = hi;
    s->n++;
    return LLEM_OK;
}

// Appends the escape-class ranges of \d \w \s (lower case letter) to s.
static enum llem_err add_shorthand(struct re *r, struct rng_set *s, char c)
{
    enum llem_err e = LLEM_OK;
    switch (c) {
    case 'd': return add_range(r, s, '0', '9');
    case 'w':
        if (!(e = add_range(r, s, '0', '9')) && !(e = add_range(r, s, 'a', 'z')) &&
            !(e = add_range(r, s, 'A', 'Z'))) {
            e = add_range(r, s, '_', '_');
        }
        return e;
    default: // 's'
        if (!(e = add_range(r, s, '\t', '\r'))) {
            e = add_range(r, s, ' ', ' ');
        }
        return e;
    }
}

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

// Reads one (possibly escaped) character; *shorthand gets 'd','w','s' (or upper case) for a
// class escape instead of a character.
static enum llem_err read_cp(struct re *r, uint32_t *cp, char *shorthand)
{
    *shorthand = 0;
    unsigned char c = (unsigned char)*r->p++;
    if (c == '\\') {
        if (r->p >= r->end) {
            return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern ends with a backslash");
        }
        char x = *r->p++;
        int nhex = 0;
        switch (x) {
        case 'd': case 'w': case 's': case 'D': case 'W': case 'S': *shorthand = x; return LLEM_OK;
        case 'n': *cp = '\n'; return LLEM_OK;
        case 't': *cp = '\t'; return LLEM_OK;
        case 'r': *cp = '\r'; return LLEM_OK;
        case 'f': *cp = '\f'; return LLEM_OK;
        case 'v': *cp = '\v'; return LLEM_OK;
        case '0': *cp = 0; return LLEM_OK;
        case 'x': nhex = 2; break;
        case 'u': nhex = 4; break;
        case 'b': case 'B': return unsup(r, "a word boundary (\\b)");
        case 'p': case 'P': return unsup(r, "a Unicode property class (\\p)");
        case 'k': return unsup(r, "a backreference");
        case 'c': return unsup(r, "a control escape (\\c)");
        default:
            if (x >= '1' && x <= '9') {
                return unsup(r, "a backreference");
            }
            if ((x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z')) {
                return unsup(r, "this escape");
            }
            *cp = (unsigned char)x;
            return LLEM_OK;
        }
        uint32_t v = 0;
        for (int i = 0; i < nhex; i++) {
            int h = r->p < r->end ? hexv(*r->p) : -1;
            if (h < 0) {
                return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: bad hex escape");
            }
            v = v * 16 + (uint32_t)h;
            r->p++;
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
        return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: invalid UTF-8");
    }
    uint32_t v = c & (0x3Fu >> n);
    for (int i = 0; i < n; i++) {
        if (r->p >= r->end || ((unsigned char)*r->p & 0xC0) != 0x80) {
            return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: invalid UTF-8");
        }
        v = (v << 6) | ((unsigned char)*r->p++ & 0x3F);
    }
    *cp = v;
    return LLEM_OK;
}

static bool set_has(const struct rng_set *s, uint32_t c)
{
    for (int i = 0; i < s->n; i++) {
        if (c >= s->lo[i] && c <= s->hi[i]) {
            return true;
        }
    }
    return false;
}

static enum llem_err put_class_cp(struct strbuf *o, uint32_t c)
{
    if (c >= 0x30 && c < 0x7F && c != '\\' && c != ']' && c != '^' && c != '-' && c != '"') {
        return strbuf_append_char(o, (char)c);
    }
    return c <= 0xFFFF ? strbuf_appendf(o, "\\u%04X", (unsigned)c)
                       : strbuf_appendf(o, "\\U%08X", (unsigned)c);
}

// Emits a class over code points (negated: its complement) as JSON-encoded alternatives: the
// plain characters as one GBNF class, and '"', '\' and the control characters that have short
// JSON escapes as their escapes (other control characters are left out: a subset).
static enum llem_err emit_set(struct re *r, struct rng_set *s, bool negate)
{
    struct rng_set pos = {.n = 0};
    enum llem_err e;
    if (negate) { // complement: sort-free scan over boundaries
        uint32_t next = 0;
        for (;;) {
            // smallest range starting at or after `next` that covers or follows it
            bool moved = true;
            while (moved) {
                moved = false;
                for (int i = 0; i < s->n; i++) {
                    if (s->lo[i] <= next && s->hi[i] >= next) {
                        next = s->hi[i] + 1;
                        moved = true;
                    }
                }
            }
            if (next > 0x10FFFF) {
                break;
            }
            uint32_t stop = 0x10FFFF;
            for (int i = 0; i < s->n; i++) {
                if (s->lo[i] > next && s->lo[i] - 1 < stop) {
                    stop = s->lo[i] - 1;
                }
            }
            if ((e = add_range(r, &pos, next, stop))) {
                return e;
            }
            if (stop == 0x10FFFF) {
                break;
            }
            next = stop + 1;
        }
        s = &pos;
    }
    struct strbuf *o = r->o;
    bool any = false;
    if ((e = strbuf_append_str(o, "("))) {
        return e;
    }
    // plain part: ranges minus controls, '"' and '\'
    struct strbuf cls;
    strbuf_init(&cls, 0);
    for (int i = 0; i < s->n; i++) {
        uint32_t lo = s->lo[i] < 0x20 ? 0x20 : s->lo[i], hi = s->hi[i];
        while (lo <= hi) { // cut out 0x22 and 0x5C
            uint32_t cut = lo <= 0x22 && hi >= 0x22 ? 0x22 : lo <= 0x5C && hi >= 0x5C ? 0x5C : 0;
            uint32_t end = cut ? cut - 1 : hi;
            if (end >= lo && end != UINT32_MAX) {
                if ((e = put_class_cp(&cls, lo)) ||
                    (end > lo && ((e = strbuf_append_char(&cls, '-')) ||
                                  (e = put_class_cp(&cls, end))))) {
                    strbuf_deinit(&cls);
                    return e;
                }
            }
            if (!cut || cut == hi) {
                break;
            }
            lo = cut + 1;
        }
    }
    if (cls.len) {
        e = strbuf_appendf(o, " [%s]", strbuf_cstr(&cls));
        any = true;
    }
    strbuf_deinit(&cls);
    static const struct {
        uint32_t c;
        const char *gbnf;
    } esc[] = {{'"', "\"\\\\\\\"\""}, {'\\', "\"\\\\\\\\\""}, {'\n', "\"\\\\n\""},
               {'\t', "\"\\\\t\""},   {'\r', "\"\\\\r\""},    {'\b', "\"\\\\b\""},
               {'\f', "\"\\\\f\""}};
    for (size_t i = 0; i < sizeof esc / sizeof esc[0] && !e; i++) {
        if (set_has(s, esc[i].c)) {
            e = strbuf_appendf(o, "%s %s", any ? " |" : "", esc[i].gbnf);
            any = true;
        }
    }
    if (e) {
        return e;
    }
    if (!any) {
        return llem_errf(r->eb, LLEM_EUNSUPPORTED,
                         "schema: pattern: a character class that matches nothing printable");
    }
    return strbuf_append_str(o, " )");
}

static enum llem_err emit_char(struct re *r, uint32_t c)
{
    struct rng_set s = {.n = 0};
    enum llem_err e = add_range(r, &s, c, c);
    return e ? e : emit_set(r, &s, false);
}

static enum llem_err parse_class(struct re *r)
{
    r->p++; // [
    bool negate = false;
    if (r->p < r->end && *r->p == '^') {
        negate = true;
        r->p++;
    }
    struct rng_set s = {.n = 0};
    enum llem_err e;
    bool first = true;
    for (;;) {
        if (r->p >= r->end) {
            return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: unterminated class");
        }
        if (*r->p == ']' && !first) {
            r->p++;
            break;
        }
        first = false;
        uint32_t lo, hi;
        char sh;
        if ((e = read_cp(r, &lo, &sh))) {
            return e;
        }
        if (sh) {
            if (sh >= 'A' && sh <= 'Z') {
                return unsup(r, "a negated shorthand (\\D \\W \\S) inside a class");
            }
            if ((e = add_shorthand(r, &s, sh))) {
                return e;
            }
            continue;
        }
        hi = lo;
        if (r->p + 1 < r->end && *r->p == '-' && r->p[1] != ']') {
            r->p++;
            if ((e = read_cp(r, &hi, &sh))) {
                return e;
            }
            if (sh || hi < lo) {
                return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: bad class range");
            }
        }
        if ((e = add_range(r, &s, lo, hi))) {
            return e;
        }
    }
    return emit_set(r, &s, negate);
}

static enum llem_err parse_alt(struct re *r, int *n_branches);

static enum llem_err parse_int(struct re *r, int *v)
{
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') {
        return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: bad {m,n}");
    }
    *v = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        *v = *v * 10 + (*r->p++ - '0');
        if (*v > RE_MAX_REPEAT) {
            return llem_errf(r->eb, LLEM_EUNSUPPORTED, "schema: pattern: repetition over %d",
                             RE_MAX_REPEAT);
        }
    }
    return LLEM_OK;
}

static enum llem_err parse_seq(struct re *r)
{
    enum llem_err e;
    bool empty = true;
    while (r->p < r->end && *r->p != '|' && *r->p != ')') {
        char c = *r->p;
        if ((e = strbuf_append_char(r->o, ' '))) {
            return e;
        }
        if (c == '(') {
            r->p++;
            if (r->p < r->end && *r->p == '?') {
                if (r->end - r->p >= 2 && r->p[1] == ':') {
                    r->p += 2;
                } else if (r->end - r->p >= 3 && r->p[1] == '<' && r->p[2] != '=' &&
                           r->p[2] != '!') {
                    const char *q = memchr(r->p, '>', (size_t)(r->end - r->p));
                    if (!q) {
                        return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: bad group name");
                    }
                    r->p = q + 1;
                } else if (r->end - r->p >= 2 && (r->p[1] == '=' || r->p[1] == '!' ||
                                                  r->p[1] == '<')) {
                    return unsup(r, "a lookaround");
                } else {
                    return unsup(r, "this group syntax (flags, atomic groups)");
                }
            }
            if (++r->depth > RE_MAX_DEPTH) {
                return llem_errf(r->eb, LLEM_ELIMIT, "schema: pattern nested too deeply");
            }
            int nb;
            if ((e = strbuf_append_str(r->o, "(")) || (e = parse_alt(r, &nb))) {
                return e;
            }
            r->depth--;
            if (r->p >= r->end || *r->p != ')') {
                return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: missing ')'");
            }
            r->p++;
            if ((e = strbuf_append_str(r->o, " )"))) {
                return e;
            }
        } else if (c == '[') {
            if ((e = parse_class(r))) {
                return e;
            }
        } else if (c == '.') {
            r->p++;
            if ((e = strbuf_append_str(r->o, "pchar"))) {
                return e;
            }
        } else if (c == '^' || c == '$') {
            return unsup(r, "an anchor (^ or $) inside the pattern");
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: quantifier without an item");
        } else {
            uint32_t cp;
            char sh;
            if ((e = read_cp(r, &cp, &sh))) {
                return e;
            }
            if (sh) {
                struct rng_set s = {.n = 0};
                char lower = (char)(sh | 0x20);
                if ((e = add_shorthand(r, &s, lower)) ||
                    (e = emit_set(r, &s, sh != lower))) {
                    return e;
                }
            } else if ((e = emit_char(r, cp))) {
                return e;
            }
        }
        empty = false;
        // quantifier
        if (r->p < r->end && (*r->p == '*' || *r->p == '+' || *r->p == '?' || *r->p == '{')) {
            char q = *r->p++;
            if (q == '{') {
                int mn, mx;
                if ((e = parse_int(r, &mn))) {
                    return e;
                }
                mx = mn;
                if (r->p < r->end && *r->p == ',') {
                    r->p++;
                    mx = -1;
                    if (r->p < r->end && *r->p != '}' && (e = parse_int(r, &mx))) {
                        return e;
                    }
                }
                if (r->p >= r->end || *r->p != '}' || (mx >= 0 && mx < mn)) {
                    return llem_errf(r->eb, LLEM_EINVAL, "schema: pattern: bad {m,n}");
                }
                r->p++;
                e = mx < 0 ? strbuf_appendf(r->o, "{%d,}", mn)
                           : strbuf_appendf(r->o, "{%d,%d}", mn, mx);
            } else {
                e = strbuf_append_char(r->o, q);
            }
            if (e) {
                return e;
            }
            if (r->p < r->end && *r->p == '?') {
                r->p++; // lazy: same language
            } else if (r->p < r->end && *r->p == '+') {
                return unsup(r, "a possessive quantifier");
            }
        }
    }
    return empty ? strbuf_append_str(r->o, " \"\"") : LLEM_OK;
}

static enum llem_err parse_alt(struct re *r, int *n_branches)
{
    *n_branches = 1;
    enum llem_err e = parse_seq(r);
    while (!e && r->p < r->end && *r->p == '|') {
        r->p++;
        (*n_branches)++;
        if (!(e = strbuf_append_str(r->o, " |"))) {
            e = parse_seq(r);
        }
    }
    return e;
}

enum llem_err json_regex_to_gbnf(const char *re, size_t len, struct strbuf *out,
                                 struct llem_errbuf *eb)
{
    bool a_start = len > 0 && re[0] == '^';
    bool a_end = false;
    if (len > (size_t)a_start && re[len - 1] == '$') {
        size_t bs = 0; // an escaped \$ is a literal
        for (size_t i = len - 1; i > 0 && re[i - 1] == '\\'; i--) {
            bs++;
        }
        a_end = bs % 2 == 0;
    }
    struct re r = {.p = re + a_start, .end = re + len - a_end, .o = out, .eb = eb};
    enum llem_err e = LLEM_OK;
    if (!a_start) {
        e = strbuf_append_str(out, "pchar* ");
    }
    int nb = 0;
    if (!e) {
        e = strbuf_append_str(out, "(");
    }
    if (!e) {
        e = parse_alt(&r, &nb);
    }
    if (!e && r.p < r.end) {
        e = llem_errf(eb, LLEM_EINVAL, "schema: pattern: unbalanced ')'");
    }
    if (!e && nb > 1 && (a_start || a_end)) {
        e = unsup(&r, "an anchor on one side of a top-level alternation");
    }
    if (!e) {
        e = strbuf_append_str(out, " )");
    }
    if (!e && !a_end) {
        e = strbuf_append_str(out, " pchar*");
    }
    if (e == LLEM_ENOMEM || e == LLEM_ELIMIT) {
        if (eb->code != e) {
            llem_errf(eb, e, "schema: pattern: out of memory");
        }
    }
    return e;
}
