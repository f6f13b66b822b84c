// template/gotmpl_lex.c: the Go text/template lexer: text, {{ }} actions with trim markers
// ("{{- " and " -}}"), comments, and the tokens inside actions (fields, variables, strings,
// numbers, keywords), with text/template/parse's rules for what may end a word and its error
// wording. The whole source is tokenized up front; gotmpl_parse.c consumes the array.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "template/gotmpl_int.h"

// ---- tokens --------------------------------------------------------------------------------


struct lexer {
    const char *s;
    size_t n, pos;
    struct gtok *toks;
    size_t n_toks, cap_toks;
    bool failed_alloc;
    char *errmsg;
    size_t errmsg_size;
};

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
static bool is_alnum(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80; // any non-ASCII byte: Go accepts Unicode letters and digits
}

static bool lex_emit(struct lexer *l, int type, size_t pos, size_t len)
{
    if (l->n_toks == l->cap_toks) {
        size_t ncap = l->cap_toks ? l->cap_toks * 2 : 256;
        struct gtok *nt = llem_realloc(l->toks, ncap * sizeof(*nt));
        if (!nt) {
            l->failed_alloc = true;
            return false;
        }
        l->toks = nt;
        l->cap_toks = ncap;
    }
    struct gtok *t = &l->toks[l->n_toks++];
    t->type = (uint8_t)type;
    t->pos = (uint32_t)pos;
    t->len = (uint32_t)len;
    t->msg = NULL;
    return true;
}

static bool lex_error(struct lexer *l, size_t pos, const char *fmt, ...) LLEM_PRINTF(3, 4);
static bool lex_error(struct lexer *l, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->errmsg, l->errmsg_size, fmt, ap);
    va_end(ap);
    if (lex_emit(l, T_ERROR, pos, 0)) {
        l->toks[l->n_toks - 1].msg = l->errmsg;
    }
    return false;
}

static int peekc(const struct lexer *l, size_t off)
{
    return l->pos + off < l->n ? (unsigned char)l->s[l->pos + off] : -1;
}

static bool starts(const struct lexer *l, size_t at, const char *p)
{
    size_t k = strlen(p);
    return at + k <= l->n && memcmp(l->s + at, p, k) == 0;
}

// At a right delimiter: returns 0 (no), 1 ("}}"), 2 (" -}}").
static int at_right_delim(const struct lexer *l, size_t at)
{
    if (at + 2 <= l->n && is_space((unsigned char)l->s[at]) && l->s[at + 1] == '-' &&
        starts(l, at + 2, "}}")) {
        return 2;
    }
    return starts(l, at, "}}") ? 1 : 0;
}

static bool at_terminator(const struct lexer *l)
{
    int c = peekc(l, 0);
    if (c < 0 || is_space(c)) {
        return true;
    }
    switch (c) {
    case '.': case ',': case '|': case ':': case ')': case '(':
        return true;
    default:
        return starts(l, l->pos, "}}");
    }
}

static const char *describe_char(int c, char *buf, size_t n)
{
    if (c >= 0x20 && c < 0x7f) {
        snprintf(buf, n, "U+%04X '%c'", c, c);
    } else {
        snprintf(buf, n, "U+%04X", (unsigned)c);
    }
    return buf;
}

static const struct { const char *w; int t; } keywords[] = {
    {"block", T_BLOCK}, {"break", T_BREAK}, {"continue", T_CONTINUE}, {"define", T_DEFINE},
    {"else", T_ELSE}, {"end", T_END}, {"if", T_IF}, {"range", T_RANGE}, {"nil", T_NIL},
    {"template", T_TEMPLATE}, {"with", T_WITH}, {"true", T_BOOL}, {"false", T_BOOL},
};

// Lexes one action body (after the left delimiter and its trim marker). Returns false on error
// (an error token was emitted). *trim_next is set when the action ends with " -}}".
static bool lex_action(struct lexer *l, bool *trim_next)
{
    int paren = 0;
    char cb[32];
    for (;;) {
        int rd = at_right_delim(l, l->pos);
        if (rd) {
            if (paren) {
                return lex_error(l, l->pos, "unclosed left paren");
            }
            size_t start = l->pos;
            l->pos += rd == 2 ? 4 : 2;
            *trim_next = rd == 2;
            return lex_emit(l, T_RDELIM, start, l->pos - start);
        }
        int c = peekc(l, 0);
        size_t start = l->pos;
        if (c < 0) {
            return lex_error(l, start, "unclosed action");
        }
        if (is_space(c)) {
            size_t k = 0;
            while (is_space(peekc(l, k))) {
                k++;
            }
            // A trim-marked right delimiter starts with the last space.
            if (at_right_delim(l, l->pos + k - 1) == 2) {
                k--;
            }
            l->pos += k;
            if (k && !lex_emit(l, T_SPACE, start, k)) {
                return false;
            }
            continue;
        }
        switch (c) {
        case '=':
            l->pos++;
            if (!lex_emit(l, T_ASSIGN, start, 1)) return false;
            continue;
        case ':':
            if (peekc(l, 1) != '=') {
                return lex_error(l, start, "expected :=");
            }
            l->pos += 2;
            if (!lex_emit(l, T_DECLARE, start, 2)) return false;
            continue;
        case '|':
            l->pos++;
            if (!lex_emit(l, T_PIPE, start, 1)) return false;
            continue;
        case '(':
            l->pos++;
            paren++;
            if (!lex_emit(l, T_LPAREN, start, 1)) return false;
            continue;
        case ')':
            l->pos++;
            if (--paren < 0) {
                return lex_error(l, start, "unexpected right paren");
            }
            if (!lex_emit(l, T_RPAREN, start, 1)) return false;
            continue;
        case '"':
        case '\'': {
            int q = c;
            l->pos++;
            for (;;) {
                int d = peekc(l, 0);
                if (d == '\\') {
                    l->pos++;
                    d = peekc(l, 0);
                    if (d >= 0 && d != '\n') {
                        l->pos++;
                        continue;
                    }
                }
                if (d < 0 || d == '\n') {
                    return lex_error(l, start, q == '"' ? "unterminated quoted string"
                                                        : "unterminated character constant");
                }
                l->pos++;
                if (d == q) {
                    break;
                }
            }
            if (!lex_emit(l, q == '"' ? T_STRING : T_CHAR, start, l->pos - start)) return false;
            continue;
        }
        case '`': {
            const char *e = memchr(l->s + l->pos + 1, '`', l->n - l->pos - 1);
            if (!e) {
                return lex_error(l, start, "unterminated raw quoted string");
            }
            l->pos = (size_t)(e - l->s) + 1;
            if (!lex_emit(l, T_RAWSTRING, start, l->pos - start)) return false;
            continue;
        }
        case '$':
        case '.': {
            int d = peekc(l, 1);
            if (c == '.' && d >= '0' && d <= '9') {
                break; // a number such as .5
            }
            l->pos++;
            if (at_terminator(l)) {
                if (!lex_emit(l, c == '$' ? T_VAR : T_DOT, start, 1)) return false;
                continue;
            }
            while (l->pos < l->n && is_alnum((unsigned char)l->s[l->pos])) {
                l->pos++;
            }
            if (!at_terminator(l)) {
                return lex_error(l, l->pos, "bad character %s",
                                 describe_char(peekc(l, 0), cb, sizeof(cb)));
            }
            if (!lex_emit(l, c == '$' ? T_VAR : T_FIELD, start, l->pos - start)) return false;
            continue;
        }
        default:
            break;
        }
        if (c == '.' || c == '+' || c == '-' || (c >= '0' && c <= '9')) {
            // Go's scanNumber: sign, base prefix, digits, fraction, exponent, 'i'.
            if (c == '+' || c == '-') {
                l->pos++;
            }
            const char *digits = "0123456789_";
            if (peekc(l, 0) == '0' && l->pos + 1 < l->n) {
                int x = peekc(l, 1) | 0x20;
                if (x == 'x') {
                    l->pos += 2;
                    digits = "0123456789abcdefABCDEF_";
                } else if (x == 'o') {
                    l->pos += 2;
                    digits = "01234567_";
                } else if (x == 'b') {
                    l->pos += 2;
                    digits = "01_";
                }
            }
            size_t nd = 0;
            while (peekc(l, 0) > 0 && strchr(digits, peekc(l, 0))) {
                l->pos++;
                nd++;
            }
            if (peekc(l, 0) == '.') {
                l->pos++;
                while (peekc(l, 0) > 0 && strchr(digits, peekc(l, 0))) {
                    l->pos++;
                    nd++;
                }
            }
            if (nd && digits[1] == '1' && digits[2] == '2' && strlen(digits) == 11 &&
                (peekc(l, 0) | 0x20) == 'e') {
                l->pos++;
                if (peekc(l, 0) == '+' || peekc(l, 0) == '-') l->pos++;
                while (peekc(l, 0) >= '0' && peekc(l, 0) <= '9') l->pos++;
            } else if (nd && strlen(digits) == 23 && (peekc(l, 0) | 0x20) == 'p') {
                l->pos++;
                if (peekc(l, 0) == '+' || peekc(l, 0) == '-') l->pos++;
                while (peekc(l, 0) >= '0' && peekc(l, 0) <= '9') l->pos++;
            }
            if (peekc(l, 0) == 'i') {
                l->pos++;
            }
            if (!nd || (l->pos < l->n && is_alnum((unsigned char)l->s[l->pos]))) {
                if (l->pos < l->n) l->pos++;
                return lex_error(l, start, "bad number syntax: \"%.*s\"", (int)(l->pos - start),
                                 l->s + start);
            }
            if (!lex_emit(l, T_NUMBER, start, l->pos - start)) return false;
            continue;
        }
        if (is_alnum(c)) {
            while (l->pos < l->n && is_alnum((unsigned char)l->s[l->pos])) {
                l->pos++;
            }
            if (!at_terminator(l)) {
                return lex_error(l, l->pos, "bad character %s",
                                 describe_char(peekc(l, 0), cb, sizeof(cb)));
            }
            int type = T_IDENT;
            size_t wl = l->pos - start;
            for (size_t k = 0; k < LLEM_ARRAY_LEN(keywords); k++) {
                if (strlen(keywords[k].w) == wl && memcmp(keywords[k].w, l->s + start, wl) == 0) {
                    type = keywords[k].t;
                }
            }
            if (!lex_emit(l, type, start, wl)) return false;
            continue;
        }
        if (c < 0x7f && c > 0x20) {
            l->pos++;
            if (!lex_emit(l, T_OTHERCHAR, start, 1)) return false;
            continue;
        }
        return lex_error(l, start, "unrecognized character in action: %s",
                         describe_char(c, cb, sizeof(cb)));
    }
}

// Tokenizes the whole source. Returns false on allocation failure only; lexical errors end the
// stream with a T_ERROR token.
static bool lex_all(struct lexer *l)
{
    bool trim_next = false;
    while (l->pos < l->n) {
        const char *d = NULL;
        for (size_t k = l->pos; k + 1 < l->n; k++) {
            if (l->s[k] == '{' && l->s[k + 1] == '{') {
                d = l->s + k;
                break;
            }
        }
        size_t text_end = d ? (size_t)(d - l->s) : l->n;
        size_t ts = l->pos, te = text_end;
        if (trim_next) {
            while (ts < te && is_space((unsigned char)l->s[ts])) ts++;
        }
        trim_next = false;
        bool left_trim = d && text_end + 3 < l->n && d[2] == '-' &&
                         is_space((unsigned char)d[3]);
        if (left_trim) {
            while (te > ts && is_space((unsigned char)l->s[te - 1])) te--;
        }
        if (te > ts && !lex_emit(l, T_TEXT, ts, te - ts)) {
            return false;
        }
        if (!d) {
            l->pos = l->n;
            break;
        }
        size_t after = text_end + 2 + (left_trim ? 2 : 0);
        l->pos = after;
        if (starts(l, after, "/*")) {
            const char *e = NULL;
            for (size_t k = after + 2; k + 1 < l->n; k++) {
                if (l->s[k] == '*' && l->s[k + 1] == '/') {
                    e = l->s + k;
                    break;
                }
            }
            if (!e) {
                lex_error(l, text_end, "unclosed comment");
                return !l->failed_alloc;
            }
            size_t ce = (size_t)(e - l->s) + 2;
            int rd = at_right_delim(l, ce);
            if (!rd) {
                lex_error(l, text_end, "comment ends before closing delimiter");
                return !l->failed_alloc;
            }
            l->pos = ce + (rd == 2 ? 4 : 2);
            trim_next = rd == 2;
            continue;
        }
        if (!lex_emit(l, T_LDELIM, text_end, after - text_end)) {
            return false;
        }
        if (!lex_action(l, &trim_next)) {
            return !l->failed_alloc;
        }
    }
    return lex_emit(l, T_EOF, l->n, 0);
}

bool gotmpl_lex(const char *src, size_t n, struct gtok **toks, size_t *n_toks, char *errbuf,
                size_t errbuf_size)
{
    struct lexer l = {.s = src, .n = n, .errmsg = errbuf, .errmsg_size = errbuf_size};
    bool ok = lex_all(&l) && !l.failed_alloc;
    if (!ok) {
        llem_free(l.toks);
        *toks = NULL;
        *n_toks = 0;
        return false;
    }
    *toks = l.toks;
    *n_toks = l.n_toks;
    return true;
}

