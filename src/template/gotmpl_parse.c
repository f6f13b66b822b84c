// template/gotmpl_parse.c: parser for Go text/template (the Go 1.24 grammar: actions,
// pipelines, variables, if/else if/range/with/else with/define/template/block/break/continue),
// over the tokens of gotmpl_lex.c, following text/template/parse's rules and error wording so
// that a template Ollama accepts parses here and one it rejects fails with the same message.
// Also Ollama's post-processing of a parsed template (Vars, the appended {{ .Response }} and
// the cut tree of the per-turn path). Entry points: gotmpl_parse, gotmpl_free.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/limits.h"
#include "template/gotmpl_int.h"

const char *const gotmpl_func_names[GF_COUNT] = {
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js",
    "urlquery", "call", "eq", "ne", "lt", "le", "gt", "ge", "json", "currentDate",
    "yesterdayDate", "toTypeScriptType"};

// ---- parser --------------------------------------------------------------------------------
struct parser {
    struct gotmpl *t;
    struct gtok *toks;
    size_t n_toks, i;
    struct llem_errbuf *eb;
    const char **vars; // declared variable names in scope
    size_t n_vars, cap_vars;
    int range_depth;
    unsigned depth;
    bool failed;
    enum llem_err err;
};

// Growable array of pointers whose storage lives in the template pool (no frees on errors).
struct pvec {
    void **p;
    size_t n, cap;
};

static bool perr(struct parser *ps, uint32_t pos, const char *fmt, ...) LLEM_PRINTF(3, 4);
static bool perr(struct parser *ps, uint32_t pos, const char *fmt, ...)
{
    if (ps->failed) {
        return false;
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line, col;
    gotmpl_line_col(ps->t, pos, &line, &col);
    llem_errf(ps->eb, LLEM_EFORMAT, "template: :%d: %s", line, msg);
    ps->failed = true;
    ps->err = LLEM_EFORMAT;
    return false;
}

static bool pnomem(struct parser *ps)
{
    if (!ps->failed) {
        llem_errf(ps->eb, LLEM_ENOMEM, "template: out of memory while parsing");
        ps->failed = true;
        ps->err = LLEM_ENOMEM;
    }
    return false;
}

static void *palloc(struct parser *ps, size_t n)
{
    void *p = gpool_alloc(&ps->t->pool, n);
    if (!p) {
        pnomem(ps);
    }
    return p;
}

static bool pvec_push(struct parser *ps, struct pvec *v, void *x)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 4;
        void **np = palloc(ps, ncap * sizeof(void *));
        if (!np) {
            return false;
        }
        if (v->n) {
            memcpy(np, v->p, v->n * sizeof(void *));
        }
        v->p = np;
        v->cap = ncap;
    }
    v->p[v->n++] = x;
    return true;
}

static const struct gtok *peek(struct parser *ps)
{
    return &ps->toks[ps->i];
}
static const struct gtok *next(struct parser *ps)
{
    const struct gtok *t = &ps->toks[ps->i];
    if (t->type != T_EOF && t->type != T_ERROR) {
        ps->i++;
    }
    return t;
}
static const struct gtok *peek_nonspace(struct parser *ps)
{
    while (ps->toks[ps->i].type == T_SPACE) {
        ps->i++;
    }
    return &ps->toks[ps->i];
}
static const struct gtok *next_nonspace(struct parser *ps)
{
    peek_nonspace(ps);
    return next(ps);
}

// Describes a token as Go's item.String() does, for "unexpected X in Y".
static const char *tok_desc(struct parser *ps, const struct gtok *t, char *buf, size_t n)
{
    const char *s = ps->t->src + t->pos;
    switch (t->type) {
    case T_EOF:
        return "EOF";
    case T_ERROR:
        return t->msg;
    case T_BLOCK: case T_BREAK: case T_CONTINUE: case T_DEFINE: case T_ELSE: case T_END:
    case T_IF: case T_RANGE: case T_TEMPLATE: case T_WITH: case T_NIL:
        snprintf(buf, n, "<%.*s>", (int)t->len, s);
        return buf;
    default:
        if (t->len > 10) {
            snprintf(buf, n, "\"%.10s\"...", s);
        } else {
            snprintf(buf, n, "\"%.*s\"", (int)t->len, s);
        }
        return buf;
    }
}

static bool unexpected(struct parser *ps, const struct gtok *t, const char *context)
{
    char b[64];
    if (t->type == T_ERROR) {
        return perr(ps, t->pos, "%s", t->msg);
    }
    return perr(ps, t->pos, "unexpected %s in %s", tok_desc(ps, t, b, sizeof(b)), context);
}

static const char *pstrndup(struct parser *ps, const char *s, size_t n)
{
    char *p = gpool_strndup(&ps->t->pool, s, n);
    if (!p) {
        pnomem(ps);
    }
    return p;
}

static bool push_var(struct parser *ps, const char *name)
{
    if (ps->n_vars == ps->cap_vars) {
        size_t ncap = ps->cap_vars ? ps->cap_vars * 2 : 16;
        const char **nv = palloc(ps, ncap * sizeof(*nv));
        if (!nv) {
            return false;
        }
        if (ps->n_vars) {
            memcpy(nv, ps->vars, ps->n_vars * sizeof(*nv));
        }
        ps->vars = nv;
        ps->cap_vars = ncap;
    }
    ps->vars[ps->n_vars++] = name;
    return true;
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// strconv.Unquote for "..." and '...' (raw strings drop their carriage returns). Returns the
// decoded bytes in the pool; for a char constant *rune_out gets the code point.
static bool unquote(struct parser *ps, const struct gtok *t, const char **out, size_t *out_n,
                    int64_t *rune_out)
{
    const char *s = ps->t->src + t->pos;
    size_t n = t->len;
    char *buf = palloc(ps, n + 1);
    if (!buf) {
        return false;
    }
    size_t o = 0;
    if (t->type == T_RAWSTRING) {
        for (size_t k = 1; k + 1 < n; k++) {
            if (s[k] != '\r') buf[o++] = s[k];
        }
        *out = buf;
        *out_n = o;
        return true;
    }
    char q = s[0];
    for (size_t k = 1; k + 1 < n;) {
        unsigned char c = (unsigned char)s[k];
        if (c == (unsigned char)q && q == '\'') {
            return perr(ps, t->pos, "invalid syntax");
        }
        if (c != '\\') {
            buf[o++] = (char)c;
            k++;
            continue;
        }
        if (k + 2 > n - 1) {
            return perr(ps, t->pos, "invalid syntax");
        }
        char e = s[k + 1];
        k += 2;
        uint32_t cp = 0;
        int hexn = 0;
        switch (e) {
        case 'a': buf[o++] = '\a'; continue;
        case 'b': buf[o++] = '\b'; continue;
        case 'f': buf[o++] = '\f'; continue;
        case 'n': buf[o++] = '\n'; continue;
        case 'r': buf[o++] = '\r'; continue;
        case 't': buf[o++] = '\t'; continue;
        case 'v': buf[o++] = '\v'; continue;
        case '\\': buf[o++] = '\\'; continue;
        case '"':
        case '\'':
            if (e != q) {
                return perr(ps, t->pos, "invalid syntax");
            }
            buf[o++] = e;
            continue;
        case 'x': hexn = 2; break;
        case 'u': hexn = 4; break;
        case 'U': hexn = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                if (k + 1 >= n || s[k] < '0' || s[k] > '7' || s[k + 1] < '0' || s[k + 1] > '7') {
                    return perr(ps, t->pos, "invalid syntax");
                }
                unsigned v = (unsigned)(e - '0') * 64 + (unsigned)(s[k] - '0') * 8 +
                             (unsigned)(s[k + 1] - '0');
                if (v > 255) {
                    return perr(ps, t->pos, "invalid syntax");
                }
                buf[o++] = (char)v;
                k += 2;
                continue;
            }
            return perr(ps, t->pos, "invalid syntax");
        }
        for (int h = 0; h < hexn; h++) {
            int hv = k < n - 1 ? hexval((unsigned char)s[k]) : -1;
            if (hv < 0) {
                return perr(ps, t->pos, "invalid syntax");
            }
            cp = cp * 16 + (uint32_t)hv;
            k++;
        }
        if (hexn == 2) {
            buf[o++] = (char)cp;
            continue;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
            return perr(ps, t->pos, "invalid syntax");
        }
        // UTF-8 encode (at most 4 bytes; the escape took at least 6 source bytes).
        if (cp < 0x80) {
            buf[o++] = (char)cp;
        } else if (cp < 0x800) {
            buf[o++] = (char)(0xC0 | (cp >> 6));
            buf[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            buf[o++] = (char)(0xE0 | (cp >> 12));
            buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            buf[o++] = (char)(0xF0 | (cp >> 18));
            buf[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    buf[o] = '\0';
    if (q == '\'') {
        // Exactly one character (one code point).
        uint32_t cp = 0;
        size_t need = 0;
        unsigned char c0 = (unsigned char)buf[0];
        if (o == 0) {
            return perr(ps, t->pos, "invalid syntax");
        }
        if (c0 < 0x80) { cp = c0; need = 1; }
        else if ((c0 & 0xE0) == 0xC0) { cp = c0 & 0x1F; need = 2; }
        else if ((c0 & 0xF0) == 0xE0) { cp = c0 & 0x0F; need = 3; }
        else { cp = c0 & 0x07; need = 4; }
        if (o != need) {
            // \x escapes in a char constant give a byte value.
            if (o == 1) {
                cp = c0;
            } else {
                return perr(ps, t->pos, "invalid syntax");
            }
        } else {
            for (size_t k = 1; k < need; k++) {
                cp = (cp << 6) | ((unsigned char)buf[k] & 0x3F);
            }
        }
        *rune_out = cp;
    }
    *out = buf;
    *out_n = o;
    return true;
}

// Integer parse with Go's base prefixes and underscores; false on syntax or overflow.
static bool parse_go_int(const char *s, size_t n, int64_t *out, bool *overflow)
{
    size_t k = 0;
    bool neg = false;
    *overflow = false;
    if (k < n && (s[k] == '+' || s[k] == '-')) {
        neg = s[k] == '-';
        k++;
    }
    unsigned base = 10;
    if (k + 1 < n && s[k] == '0') {
        int x = s[k + 1] | 0x20;
        if (x == 'x') { base = 16; k += 2; }
        else if (x == 'o') { base = 8; k += 2; }
        else if (x == 'b') { base = 2; k += 2; }
        else { base = 8; k += 1; }
    }
    if (k >= n && base != 8) {
        return false;
    }
    uint64_t v = 0;
    bool any = base == 8 && k > 0 && s[k - 1] == '0';
    char prev = '0';
    for (; k < n; k++) {
        char c = s[k];
        if (c == '_') {
            if (prev == '_') return false;
            prev = c;
            continue;
        }
        int d = hexval((unsigned char)c);
        if (d < 0 || (unsigned)d >= base) {
            return false;
        }
        if (v > (UINT64_MAX - (uint64_t)d) / base) {
            *overflow = true;
            return false;
        }
        v = v * base + (uint64_t)d;
        any = true;
        prev = c;
    }
    if (!any || prev == '_') {
        return false;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) {
        *overflow = true;
        return false;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static struct garg *new_arg(struct parser *ps, int type, uint32_t pos, uint32_t end)
{
    struct garg *a = palloc(ps, sizeof(*a));
    if (a) {
        a->type = (uint8_t)type;
        a->pos = pos;
        a->end = end;
    }
    return a;
}

static struct garg *new_number(struct parser *ps, const struct gtok *t)
{
    struct garg *a = new_arg(ps, GA_NUMBER, t->pos, t->pos + t->len);
    if (!a) {
        return NULL;
    }
    const char *s = ps->t->src + t->pos;
    size_t n = t->len;
    if (t->type == T_CHAR) {
        const char *dummy = NULL;
        size_t dn = 0;
        int64_t r = 0;
        if (!unquote(ps, t, &dummy, &dn, &r)) {
            return NULL;
        }
        a->u.num.is_int = a->u.num.is_float = true;
        a->u.num.i = r;
        a->u.num.f = (double)r;
        return a;
    }
    if (n && s[n - 1] == 'i') {
        perr(ps, t->pos, "complex numbers are not supported: \"%.*s\"", (int)n, s);
        return NULL;
    }
    bool overflow;
    int64_t iv;
    bool has_fexp = memchr(s, '.', n) || ((n < 2 || (s[1] | 0x20) != 'x') &&
                                          (memchr(s, 'e', n) || memchr(s, 'E', n))) ||
                    memchr(s, 'p', n) || memchr(s, 'P', n);
    if (parse_go_int(s, n, &iv, &overflow)) {
        a->u.num.is_int = a->u.num.is_float = true;
        a->u.num.i = iv;
        a->u.num.f = (double)iv;
        return a;
    }
    char buf[128];
    size_t o = 0;
    for (size_t k = 0; k < n && o + 1 < sizeof(buf); k++) {
        if (s[k] != '_') buf[o++] = s[k];
    }
    buf[o] = '\0';
    char *end = NULL;
    errno = 0;
    double f = strtod(buf, &end);
    (void)overflow;
    if (o == 0 || end != buf + o || isnan(f) || isinf(f)) {
        perr(ps, t->pos, "illegal number syntax: \"%.*s\"", (int)n, s);
        return NULL;
    }
    if (!has_fexp) {
        // Parsed as a float but written as an integer: too large for int64 (Go's words).
        perr(ps, t->pos, "integer overflow: \"%.*s\"", (int)n, s);
        return NULL;
    }
    a->u.num.is_float = true;
    a->u.num.f = f;
    a->u.num.ideal_float = true;
    if (f >= -9.2233720368547758e18 && f < 9.2233720368547758e18 && (double)(int64_t)f == f) {
        a->u.num.is_int = true;
        a->u.num.i = (int64_t)f;
    }
    return a;
}

static struct gpipe *parse_pipeline(struct parser *ps, const char *context, int end_type);

static struct garg *parse_term(struct parser *ps)
{
    const struct gtok *t = next_nonspace(ps);
    uint32_t pos = t->pos, end = t->pos + t->len;
    switch (t->type) {
    case T_IDENT: {
        for (int f = 0; f < GF_COUNT; f++) {
            if (strlen(gotmpl_func_names[f]) == t->len &&
                memcmp(gotmpl_func_names[f], ps->t->src + t->pos, t->len) == 0) {
                struct garg *a = new_arg(ps, GA_FUNC, pos, end);
                if (a) a->u.func = f;
                return a;
            }
        }
        perr(ps, t->pos, "function \"%.*s\" not defined", (int)t->len, ps->t->src + t->pos);
        return NULL;
    }
    case T_DOT:
        return new_arg(ps, GA_DOT, pos, end);
    case T_NIL:
        return new_arg(ps, GA_NIL, pos, end);
    case T_VAR: {
        const char *name = pstrndup(ps, ps->t->src + t->pos, t->len);
        if (!name) return NULL;
        bool found = false;
        for (size_t k = 0; k < ps->n_vars; k++) {
            if (strcmp(ps->vars[k], name) == 0) found = true;
        }
        if (!found) {
            perr(ps, t->pos, "undefined variable \"%s\"", name);
            return NULL;
        }
        struct garg *a = new_arg(ps, GA_VAR, pos, end);
        const char **ids = palloc(ps, sizeof(*ids));
        if (!a || !ids) return NULL;
        ids[0] = name;
        a->u.field.idents = ids;
        a->u.field.n = 1;
        return a;
    }
    case T_FIELD: {
        struct garg *a = new_arg(ps, GA_FIELD, pos, end);
        const char **ids = palloc(ps, sizeof(*ids));
        const char *name = pstrndup(ps, ps->t->src + t->pos + 1, t->len - 1);
        if (!a || !ids || !name) return NULL;
        ids[0] = name;
        a->u.field.idents = ids;
        a->u.field.n = 1;
        return a;
    }
    case T_BOOL: {
        struct garg *a = new_arg(ps, GA_BOOL, pos, end);
        if (a) a->u.b = ps->t->src[t->pos] == 't';
        return a;
    }
    case T_CHAR:
    case T_NUMBER:
        return new_number(ps, t);
    case T_LPAREN: {
        if (++ps->depth > LLEM_MAX_RECURSION_DEPTH) {
            perr(ps, t->pos, "max expression depth exceeded");
            return NULL;
        }
        struct gpipe *p = parse_pipeline(ps, "parenthesized pipeline", T_RPAREN);
        ps->depth--;
        if (!p) return NULL;
        struct garg *a = new_arg(ps, GA_PIPE, pos, ps->toks[ps->i - 1].pos + 1);
        if (a) a->u.pipe = p;
        return a;
    }
    case T_STRING:
    case T_RAWSTRING: {
        struct garg *a = new_arg(ps, GA_STRING, pos, end);
        int64_t dummy = 0;
        if (!a || !unquote(ps, t, &a->u.str.p, &a->u.str.n, &dummy)) return NULL;
        return a;
    }
    default:
        ps->i = (size_t)(t - ps->toks); // back up: not a term
        return NULL;
    }
}

static struct garg *parse_operand(struct parser *ps)
{
    struct garg *node = parse_term(ps);
    if (!node || peek(ps)->type != T_FIELD) {
        return node;
    }
    struct pvec ids = {0};
    uint32_t end = node->end;
    if (node->type == GA_FIELD || node->type == GA_VAR) {
        if (!pvec_push(ps, &ids, (void *)node->u.field.idents[0])) return NULL;
    }
    while (peek(ps)->type == T_FIELD) {
        const struct gtok *t = next(ps);
        const char *name = pstrndup(ps, ps->t->src + t->pos + 1, t->len - 1);
        if (!name || !pvec_push(ps, &ids, (void *)name)) return NULL;
        end = t->pos + t->len;
    }
    switch (node->type) {
    case GA_FIELD:
    case GA_VAR:
        node->u.field.idents = (const char **)ids.p;
        node->u.field.n = ids.n;
        node->end = end;
        return node;
    case GA_BOOL: case GA_STRING: case GA_NUMBER: case GA_NIL: case GA_DOT:
        perr(ps, node->pos, "unexpected . after term \"%.*s\"", (int)(node->end - node->pos),
             ps->t->src + node->pos);
        return NULL;
    default: {
        struct garg *c = new_arg(ps, GA_CHAIN, node->pos, end);
        if (!c) return NULL;
        c->u.chain.node = node;
        c->u.chain.idents = (const char **)ids.p;
        c->u.chain.n = ids.n;
        return c;
    }
    }
}

static bool parse_command(struct parser *ps, struct gcmd *cmd)
{
    struct pvec args = {0};
    for (;;) {
        peek_nonspace(ps);
        struct garg *op = parse_operand(ps);
        if (ps->failed) return false;
        if (op && !pvec_push(ps, &args, op)) return false;
        const struct gtok *t = next(ps);
        if (t->type == T_SPACE) {
            continue;
        }
        if (t->type == T_RDELIM || t->type == T_RPAREN) {
            ps->i--;
        } else if (t->type != T_PIPE) {
            return unexpected(ps, t, "operand");
        }
        break;
    }
    if (args.n == 0) {
        return perr(ps, peek(ps)->pos, "empty command");
    }
    cmd->args = (struct garg **)args.p;
    cmd->n_args = args.n;
    return true;
}

// Go's Tree.pipeline: optional declarations, then commands up to end_type.
static struct gpipe *parse_pipeline(struct parser *ps, const char *context, int end_type)
{
    struct gpipe *p = palloc(ps, sizeof(*p));
    if (!p) return NULL;
    p->pos = peek_nonspace(ps)->pos;
    struct pvec decl = {0};
    bool is_range = strcmp(context, "range") == 0;
decls:
    if (peek_nonspace(ps)->type == T_VAR) {
        size_t save = ps->i;
        const struct gtok *v = next(ps);
        const struct gtok *n = peek_nonspace(ps);
        if (n->type == T_ASSIGN || n->type == T_DECLARE) {
            p->is_assign = n->type == T_ASSIGN;
            next(ps);
            const char *name = pstrndup(ps, ps->t->src + v->pos, v->len);
            if (!name || !pvec_push(ps, &decl, (void *)name) || !push_var(ps, name)) return NULL;
        } else if (n->type == T_OTHERCHAR && ps->t->src[n->pos] == ',') {
            next(ps);
            const char *name = pstrndup(ps, ps->t->src + v->pos, v->len);
            if (!name || !pvec_push(ps, &decl, (void *)name) || !push_var(ps, name)) return NULL;
            if (is_range && decl.n < 2) {
                int nt = peek_nonspace(ps)->type;
                if (nt == T_VAR || nt == T_RDELIM || nt == T_RPAREN) {
                    goto decls;
                }
                perr(ps, peek(ps)->pos, "range can only initialize variables");
                return NULL;
            }
            perr(ps, v->pos, "too many declarations in %s", context);
            return NULL;
        } else {
            ps->i = save;
        }
    }
    p->decl = (const char **)decl.p;
    p->n_decl = decl.n;
    struct gcmd *cmds = NULL;
    size_t ncmds = 0, capcmds = 0;
    for (;;) {
        const struct gtok *t = next_nonspace(ps);
        if (t->type == end_type) {
            if (ncmds == 0) {
                perr(ps, t->pos, "missing value for %s", context);
                return NULL;
            }
            for (size_t k = 1; k < ncmds; k++) {
                int at = cmds[k].args[0]->type;
                if (at == GA_BOOL || at == GA_DOT || at == GA_NIL || at == GA_NUMBER ||
                    at == GA_STRING) {
                    perr(ps, cmds[k].args[0]->pos, "non executable command in pipeline stage %zu",
                         k + 1);
                    return NULL;
                }
            }
            p->cmds = cmds;
            p->n_cmds = ncmds;
            p->end = t->pos;
            return p;
        }
        switch (t->type) {
        case T_BOOL: case T_CHAR: case T_DOT: case T_FIELD: case T_IDENT: case T_NUMBER:
        case T_NIL: case T_RAWSTRING: case T_STRING: case T_VAR: case T_LPAREN: {
            ps->i--;
            if (ncmds == capcmds) {
                size_t nc = capcmds ? capcmds * 2 : 2;
                struct gcmd *n2 = palloc(ps, nc * sizeof(*n2));
                if (!n2) return NULL;
                if (ncmds) memcpy(n2, cmds, ncmds * sizeof(*n2));
                cmds = n2;
                capcmds = nc;
            }
            if (!parse_command(ps, &cmds[ncmds])) return NULL;
            ncmds++;
            break;
        }
        default:
            unexpected(ps, t, context);
            return NULL;
        }
    }
}

static struct gnode *new_node(struct parser *ps, int type, uint32_t pos)
{
    struct gnode *n = palloc(ps, sizeof(*n));
    if (n) {
        n->type = (uint8_t)type;
        n->pos = pos;
    }
    return n;
}

// Sentinel node types returned by text_or_action for {{end}} and {{else}}.
enum { GN_END_ = 100, GN_ELSE_ = 101 };

static struct gnode *parse_text_or_action(struct parser *ps);

// Go's itemList: nodes until {{end}} or {{else}}; *term gets that node.
static bool parse_item_list(struct parser *ps, struct glist_node *out, struct gnode **term)
{
    struct pvec items = {0};
    while (peek_nonspace(ps)->type != T_EOF) {
        if (peek(ps)->type == T_ERROR) {
            return unexpected(ps, peek(ps), "input");
        }
        struct gnode *n = parse_text_or_action(ps);
        if (!n) return false;
        if (n->type == GN_END_ || n->type == GN_ELSE_) {
            out->items = (struct gnode **)items.p;
            out->n = items.n;
            *term = n;
            return true;
        }
        if (!pvec_push(ps, &items, n)) return false;
    }
    return perr(ps, peek(ps)->pos, "unexpected EOF");
}

static struct gnode *parse_control(struct parser *ps, int type, const char *context,
                                   uint32_t pos)
{
    size_t vars_mark = ps->n_vars;
    if (++ps->depth > LLEM_MAX_RECURSION_DEPTH) {
        perr(ps, pos, "max nesting depth exceeded");
        return NULL;
    }
    struct gnode *n = new_node(ps, type, pos);
    if (!n) return NULL;
    n->u.br.pipe = parse_pipeline(ps, context, T_RDELIM);
    if (!n->u.br.pipe) return NULL;
    if (type != GN_RANGE && n->u.br.pipe->n_decl > 1) {
        perr(ps, pos, "too many declarations in %s", context);
        return NULL;
    }
    if (type == GN_RANGE) ps->range_depth++;
    struct gnode *term = NULL;
    if (!parse_item_list(ps, &n->u.br.list, &term)) return NULL;
    if (type == GN_RANGE) ps->range_depth--;
    if (term->type == GN_ELSE_) {
        n->u.br.has_else = true;
        int pk = peek(ps)->type;
        if ((type == GN_IF && pk == T_IF) || (type == GN_WITH && pk == T_WITH)) {
            const struct gtok *kw = next(ps);
            struct gnode *inner = parse_control(ps, type, context, kw->pos);
            if (!inner) return NULL;
            struct gnode **one = palloc(ps, sizeof(*one));
            if (!one) return NULL;
            one[0] = inner;
            n->u.br.else_list.items = one;
            n->u.br.else_list.n = 1;
        } else {
            if (!parse_item_list(ps, &n->u.br.else_list, &term)) return NULL;
            if (term->type != GN_END_) {
                perr(ps, term->pos, "expected end; found {{else}}");
                return NULL;
            }
        }
    }
    ps->n_vars = vars_mark;
    ps->depth--;
    return n;
}

static bool add_define(struct parser *ps, const char *name, struct glist_node root,
                       uint32_t pos);

static bool template_name(struct parser *ps, const struct gtok *t, const char *context,
                          const char **name)
{
    if (t->type != T_STRING && t->type != T_RAWSTRING) {
        return unexpected(ps, t, context);
    }
    const char *s = NULL;
    size_t n = 0;
    int64_t dummy = 0;
    if (!unquote(ps, t, &s, &n, &dummy)) return false;
    *name = s;
    return true;
}

static struct gnode *parse_action(struct parser *ps)
{
    const struct gtok *t = next_nonspace(ps);
    uint32_t pos = t->pos;
    switch (t->type) {
    case T_IF:
        return parse_control(ps, GN_IF, "if", pos);
    case T_RANGE:
        return parse_control(ps, GN_RANGE, "range", pos);
    case T_WITH:
        return parse_control(ps, GN_WITH, "with", pos);
    case T_END:
    case T_ELSE: {
        bool is_else = t->type == T_ELSE;
        if (is_else) {
            int pk = peek_nonspace(ps)->type;
            if (pk == T_IF || pk == T_WITH) {
                return new_node(ps, GN_ELSE_, pos); // "else if": the keyword stays pending
            }
        }
        const struct gtok *r = next_nonspace(ps);
        if (r->type != T_RDELIM) {
            unexpected(ps, r, is_else ? "else" : "end");
            return NULL;
        }
        return new_node(ps, is_else ? GN_ELSE_ : GN_END_, pos);
    }
    case T_BREAK:
    case T_CONTINUE: {
        bool brk = t->type == T_BREAK;
        const struct gtok *r = next_nonspace(ps);
        if (r->type != T_RDELIM) {
            unexpected(ps, r, brk ? "{{break}}" : "{{continue}}");
            return NULL;
        }
        if (ps->range_depth == 0) {
            perr(ps, pos, "%s outside {{range}}", brk ? "{{break}}" : "{{continue}}");
            return NULL;
        }
        return new_node(ps, brk ? GN_BREAK : GN_CONTINUE, pos);
    }
    case T_TEMPLATE: {
        struct gnode *n = new_node(ps, GN_TEMPLATE, pos);
        if (!n || !template_name(ps, next_nonspace(ps), "template clause", &n->u.tmpl.name)) {
            return NULL;
        }
        const struct gtok *r = next_nonspace(ps);
        if (r->type != T_RDELIM) {
            ps->i = (size_t)(r - ps->toks);
            n->u.tmpl.pipe = parse_pipeline(ps, "template clause", T_RDELIM);
            if (!n->u.tmpl.pipe) return NULL;
        }
        return n;
    }
    case T_BLOCK: {
        struct gnode *n = new_node(ps, GN_TEMPLATE, pos);
        if (!n || !template_name(ps, next_nonspace(ps), "block clause", &n->u.tmpl.name)) {
            return NULL;
        }
        n->u.tmpl.pipe = parse_pipeline(ps, "block clause", T_RDELIM);
        if (!n->u.tmpl.pipe) return NULL;
        // The body is a new template with its own variable scope.
        const char **saved_vars = ps->vars;
        size_t saved_n = ps->n_vars, saved_cap = ps->cap_vars;
        int saved_range = ps->range_depth;
        ps->vars = NULL;
        ps->n_vars = ps->cap_vars = 0;
        ps->range_depth = 0;
        if (!push_var(ps, "$")) return NULL;
        struct glist_node body = {0};
        struct gnode *term = NULL;
        if (++ps->depth > LLEM_MAX_RECURSION_DEPTH) {
            perr(ps, pos, "max nesting depth exceeded");
            return NULL;
        }
        if (!parse_item_list(ps, &body, &term)) return NULL;
        ps->depth--;
        if (term->type != GN_END_) {
            perr(ps, term->pos, "unexpected {{else}} in block clause");
            return NULL;
        }
        ps->vars = saved_vars;
        ps->n_vars = saved_n;
        ps->cap_vars = saved_cap;
        ps->range_depth = saved_range;
        if (!add_define(ps, n->u.tmpl.name, body, pos)) return NULL;
        return n;
    }
    default:
        break;
    }
    ps->i = (size_t)(t - ps->toks);
    struct gnode *n = new_node(ps, GN_ACTION, peek(ps)->pos);
    if (!n) return NULL;
    n->u.pipe = parse_pipeline(ps, "command", T_RDELIM);
    return n->u.pipe ? n : NULL;
}

static struct gnode *parse_text_or_action(struct parser *ps)
{
    const struct gtok *t = next_nonspace(ps);
    switch (t->type) {
    case T_TEXT: {
        struct gnode *n = new_node(ps, GN_TEXT, t->pos);
        if (n) {
            n->u.text.p = ps->t->src + t->pos;
            n->u.text.n = t->len;
        }
        return n;
    }
    case T_LDELIM:
        return parse_action(ps);
    default:
        unexpected(ps, t, "input");
        return NULL;
    }
}

static bool list_is_empty(const struct glist_node *l)
{
    for (size_t k = 0; k < l->n; k++) {
        const struct gnode *n = l->items[k];
        if (n->type != GN_TEXT) return false;
        for (size_t c = 0; c < n->u.text.n; c++) {
            if (!is_space((unsigned char)n->u.text.p[c])) return false;
        }
    }
    return true;
}

static bool add_define(struct parser *ps, const char *name, struct glist_node root, uint32_t pos)
{
    struct gotmpl *t = ps->t;
    for (size_t k = 0; k < t->n_defs; k++) {
        if (strcmp(t->defs[k].name, name) == 0) {
            if (list_is_empty(&t->defs[k].root)) {
                t->defs[k].root = root;
                return true;
            }
            if (!list_is_empty(&root)) {
                return perr(ps, pos, "template: multiple definition of template \"%s\"", name);
            }
            return true;
        }
    }
    struct gdefine *nd = palloc(ps, (t->n_defs + 1) * sizeof(*nd));
    if (!nd) return false;
    if (t->n_defs) memcpy(nd, t->defs, t->n_defs * sizeof(*nd));
    nd[t->n_defs].name = name;
    nd[t->n_defs].root = root;
    t->defs = nd;
    t->n_defs++;
    return true;
}

static bool parse_define(struct parser *ps, uint32_t pos)
{
    const struct gtok *t = next_nonspace(ps);
    const char *name = NULL;
    if (!template_name(ps, t, "define clause", &name)) return false;
    const struct gtok *r = next_nonspace(ps);
    if (r->type != T_RDELIM) return unexpected(ps, r, "define clause");
    ps->vars = NULL; // a new tree: fresh variable scope (the caller restores the old one)
    ps->n_vars = ps->cap_vars = 0;
    ps->range_depth = 0;
    if (!push_var(ps, "$")) return false;
    struct glist_node body = {0};
    struct gnode *term = NULL;
    if (!parse_item_list(ps, &body, &term)) return false;
    if (term->type != GN_END_) {
        return perr(ps, term->pos, "unexpected {{else}} in define clause");
    }
    return add_define(ps, name, body, pos);
}

static bool parse_top(struct parser *ps)
{
    struct pvec items = {0};
    if (!push_var(ps, "$")) return false;
    while (peek(ps)->type != T_EOF) {
        if (peek(ps)->type == T_LDELIM) {
            size_t save = ps->i;
            const struct gtok *d = next(ps);
            if (next_nonspace(ps)->type == T_DEFINE) {
                const char **saved_vars = ps->vars;
                size_t saved_n = ps->n_vars, saved_cap = ps->cap_vars;
                if (!parse_define(ps, d->pos)) return false;
                ps->vars = saved_vars;
                ps->n_vars = saved_n;
                ps->cap_vars = saved_cap;
                continue;
            }
            ps->i = save;
        }
        if (peek(ps)->type == T_ERROR) {
            return unexpected(ps, peek(ps), "input");
        }
        struct gnode *n = parse_text_or_action(ps);
        if (!n) return false;
        if (n->type == GN_END_ || n->type == GN_ELSE_) {
            return perr(ps, n->pos, "unexpected {{%s}}", n->type == GN_END_ ? "end" : "else");
        }
        if (!pvec_push(ps, &items, n)) return false;
    }
    ps->t->root.items = (struct gnode **)items.p;
    ps->t->root.n = items.n;
    return true;
}

// ---- Ollama's post-processing (template.Parse, Vars, deleteNode) -------------------------
static bool add_var(struct parser *ps, const char *name)
{
    struct gotmpl *t = ps->t;
    size_t n = strlen(name);
    for (size_t k = 0; k < t->n_vars; k++) {
        if (strlen(t->vars[k]) == n && strncasecmp(t->vars[k], name, n) == 0) return true;
    }
    char *low = gpool_strndup(&t->pool, name, n);
    const char **nv = palloc(ps, (t->n_vars + 1) * sizeof(*nv));
    if (!low || !nv) return pnomem(ps);
    for (size_t k = 0; k < n; k++) {
        if (low[k] >= 'A' && low[k] <= 'Z') low[k] = (char)(low[k] + 32);
    }
    if (t->n_vars) memcpy(nv, t->vars, t->n_vars * sizeof(*nv));
    nv[t->n_vars] = low;
    t->vars = nv;
    t->n_vars++;
    return true;
}

static bool vars_pipe(struct parser *ps, const struct gpipe *p);

static bool vars_arg(struct parser *ps, const struct garg *a)
{
    switch (a->type) {
    case GA_FIELD:
    case GA_VAR:
        for (size_t k = 0; k < a->u.field.n; k++) {
            if (!add_var(ps, a->u.field.idents[k])) return false;
        }
        return true;
    case GA_PIPE:
        return vars_pipe(ps, a->u.pipe);
    default:
        return true; // Ollama's Identifiers ignores chains, functions and literals
    }
}

static bool vars_pipe(struct parser *ps, const struct gpipe *p)
{
    for (size_t c = 0; c < p->n_cmds; c++) {
        for (size_t k = 0; k < p->cmds[c].n_args; k++) {
            if (!vars_arg(ps, p->cmds[c].args[k])) return false;
        }
    }
    return true;
}

static bool vars_list(struct parser *ps, const struct glist_node *l)
{
    for (size_t k = 0; k < l->n; k++) {
        const struct gnode *n = l->items[k];
        switch (n->type) {
        case GN_ACTION:
            if (!vars_pipe(ps, n->u.pipe)) return false;
            break;
        case GN_TEMPLATE:
            if (!n->u.tmpl.pipe) {
                ps->t->undefined_template = true;
            } else if (!vars_pipe(ps, n->u.tmpl.pipe)) {
                return false;
            }
            break;
        case GN_IF: case GN_RANGE: case GN_WITH:
            if (!vars_pipe(ps, n->u.br.pipe) || !vars_list(ps, &n->u.br.list) ||
                !vars_list(ps, &n->u.br.else_list)) {
                return false;
            }
            break;
        default:
            break;
        }
    }
    return true;
}

static bool arg_is_response(const struct garg *a)
{
    if (a->type != GA_FIELD) return false;
    for (size_t k = 0; k < a->u.field.n; k++) {
        if (strcmp(a->u.field.idents[k], "Response") == 0) return true;
    }
    return false;
}

// Ollama's deleteNode with the "cut after .Response" predicate: every node visited after the
// first field node naming Response is dropped. Builds a copy; the original stays intact.
static bool cut_list(struct parser *ps, const struct glist_node *in, struct glist_node *out,
                     bool *cut);

static struct gpipe *cut_pipe(struct parser *ps, const struct gpipe *in, bool *cut)
{
    if (*cut) return NULL;
    struct gpipe *p = palloc(ps, sizeof(*p));
    struct gcmd *cmds = palloc(ps, (in->n_cmds + 1) * sizeof(*cmds));
    if (!p || !cmds) return NULL;
    *p = *in;
    size_t nc = 0;
    for (size_t c = 0; c < in->n_cmds; c++) {
        struct garg **args = palloc(ps, (in->cmds[c].n_args + 1) * sizeof(*args));
        if (!args) return NULL;
        size_t na = 0;
        for (size_t k = 0; k < in->cmds[c].n_args; k++) {
            const struct garg *a = in->cmds[c].args[k];
            if (*cut) continue;
            if (a->type == GA_PIPE) {
                struct gpipe *inner = cut_pipe(ps, a->u.pipe, cut);
                if (ps->failed) return NULL;
                if (!inner) continue;
                struct garg *na2 = new_arg(ps, GA_PIPE, a->pos, a->end);
                if (!na2) return NULL;
                na2->u.pipe = inner;
                args[na++] = na2;
                continue;
            }
            if (arg_is_response(a)) *cut = true;
            args[na++] = (struct garg *)a;
        }
        if (na == 0) return NULL;
        cmds[nc].args = args;
        cmds[nc].n_args = na;
        nc++;
    }
    if (nc == 0) return NULL;
    p->cmds = cmds;
    p->n_cmds = nc;
    return p;
}

static bool cut_list(struct parser *ps, const struct glist_node *in, struct glist_node *out,
                     bool *cut)
{
    out->items = NULL;
    out->n = 0;
    if (*cut) return true; // a list visited after the cut is deleted (Ollama would panic)
    struct gnode **items = palloc(ps, (in->n + 1) * sizeof(*items));
    if (!items) return false;
    size_t n = 0;
    for (size_t k = 0; k < in->n; k++) {
        const struct gnode *src = in->items[k];
        if (*cut) break;
        struct gnode *c = new_node(ps, src->type, src->pos);
        if (!c) return false;
        *c = *src;
        switch (src->type) {
        case GN_ACTION:
            c->u.pipe = cut_pipe(ps, src->u.pipe, cut);
            if (ps->failed) return false;
            if (!c->u.pipe) continue;
            break;
        case GN_IF: case GN_RANGE: case GN_WITH:
            // The branch pipeline is not visited by Ollama's walk, only the lists.
            if (!cut_list(ps, &src->u.br.list, &c->u.br.list, cut) ||
                !cut_list(ps, &src->u.br.else_list, &c->u.br.else_list, cut)) {
                return false;
            }
            break;
        default:
            break;
        }
        items[n++] = c;
    }
    out->items = items;
    out->n = n;
    return true;
}

static bool ollama_post(struct parser *ps)
{
    struct gotmpl *t = ps->t;
    if (!vars_list(ps, &t->root)) return false;
    for (size_t k = 0; k < t->n_defs; k++) {
        if (!vars_list(ps, &t->defs[k].root)) return false;
    }
    if (t->undefined_template) {
        // Ollama's Vars() rejects {{template "x"}} without a pipeline, in these words.
        llem_errf(ps->eb, LLEM_EFORMAT, "undefined template specified");
        ps->failed = true;
        ps->err = LLEM_EFORMAT;
        return false;
    }
    t->root_resp = t->root;
    if (!gotmpl_uses(t, "messages") && !gotmpl_uses(t, "response")) {
        // Ollama appends {{ .Response }} to such templates.
        struct gnode **items = palloc(ps, (t->root.n + 1) * sizeof(*items));
        struct gnode *n = new_node(ps, GN_ACTION, (uint32_t)t->src_len);
        struct gpipe *p = palloc(ps, sizeof(*p));
        struct gcmd *cmd = palloc(ps, sizeof(*cmd));
        struct garg **args = palloc(ps, sizeof(*args));
        struct garg *a = new_arg(ps, GA_FIELD, (uint32_t)t->src_len, (uint32_t)t->src_len);
        const char **ids = palloc(ps, sizeof(*ids));
        if (!items || !n || !p || !cmd || !args || !a || !ids) return false;
        ids[0] = "Response";
        a->u.field.idents = ids;
        a->u.field.n = 1;
        args[0] = a;
        cmd->args = args;
        cmd->n_args = 1;
        p->cmds = cmd;
        p->n_cmds = 1;
        p->pos = p->end = (uint32_t)t->src_len;
        n->u.pipe = p;
        if (t->root.n) memcpy(items, t->root.items, t->root.n * sizeof(*items));
        items[t->root.n] = n;
        t->root_resp.items = items;
        t->root_resp.n = t->root.n + 1;
    }
    bool cut = false;
    return cut_list(ps, &t->root_resp, &t->root_cut, &cut);
}

// ---- public --------------------------------------------------------------------------------
void gotmpl_line_col(const struct gotmpl *t, uint32_t pos, int *line, int *col)
{
    int ln = 1;
    size_t ls = 0;
    for (size_t k = 0; k < pos && k < t->src_len; k++) {
        if (t->src[k] == '\n') {
            ln++;
            ls = k + 1;
        }
    }
    *line = ln;
    *col = (int)(pos >= ls ? pos - ls : 0);
}

const struct glist_node *gotmpl_lookup(const struct gotmpl *t, const char *name)
{
    for (size_t k = 0; k < t->n_defs; k++) {
        if (strcmp(t->defs[k].name, name) == 0) return &t->defs[k].root;
    }
    return NULL;
}

bool gotmpl_uses(const struct gotmpl *t, const char *name)
{
    size_t n = strlen(name);
    for (size_t k = 0; t && k < t->n_vars; k++) {
        if (strlen(t->vars[k]) == n && strncasecmp(t->vars[k], name, n) == 0) return true;
    }
    return false;
}

enum llem_err gotmpl_parse(struct gotmpl **out, const char *src, size_t len,
                           struct llem_errbuf *eb)
{
    *out = NULL;
    if (!src && len) {
        return llem_errf(eb, LLEM_EINVAL, "template: NULL source");
    }
    if (len > LLEM_GGUF_MAX_STRING_BYTES * 16u || len >= UINT32_MAX / 2) {
        return llem_errf(eb, LLEM_ELIMIT, "template: source of %zu bytes is too large", len);
    }
    struct gotmpl *t = llem_calloc(1, sizeof(*t));
    if (!t) {
        return llem_errf(eb, LLEM_ENOMEM, "template: out of memory");
    }
    gpool_init(&t->pool, 0);
    t->src = gpool_strndup(&t->pool, src ? src : "", len);
    t->src_len = len;
    if (!t->src) {
        gotmpl_free(t);
        return llem_errf(eb, LLEM_ENOMEM, "template: out of memory");
    }
    struct gtok *toks = NULL;
    size_t n_toks = 0;
    char lexmsg[128];
    if (!gotmpl_lex(t->src, len, &toks, &n_toks, lexmsg, sizeof(lexmsg))) {
        gotmpl_free(t);
        return llem_errf(eb, LLEM_ENOMEM, "template: out of memory");
    }
    struct parser ps = {.t = t, .toks = toks, .n_toks = n_toks, .eb = eb};
    bool ok = parse_top(&ps) && ollama_post(&ps);
    llem_free(toks);
    if (!ok || ps.failed) {
        enum llem_err e = ps.failed ? ps.err : LLEM_ENOMEM;
        if (!ps.failed) llem_errf(eb, e, "template: out of memory");
        gotmpl_free(t);
        return e;
    }
    *out = t;
    return LLEM_OK;
}

void gotmpl_free(struct gotmpl *t)
{
    if (!t) return;
    gpool_deinit(&t->pool);
    llem_free(t);
}
