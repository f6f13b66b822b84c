// template/jinja_lex.c: the Jinja lexer. Splits template source into data and tag tokens
// with jinja2's whitespace rules as transformers configures them (trim_blocks: the newline
// after a block or comment tag is dropped; lstrip_blocks: blanks before a block or comment tag
// at the start of a line are dropped; `-` markers strip all whitespace on their side; `+`
// keeps it), newlines normalized to \n and one trailing newline dropped.
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "template/jinja_int.h"

struct lexer {
    struct jctx *cx;
    const char *s;
    size_t n, pos;
    int line;
    size_t line_start; // offset of the current line's first byte
    struct jtoks *out;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

// Moves pos forward to `to`, counting lines.
static void advance(struct lexer *lx, size_t to)
{
    for (size_t i = lx->pos; i < to; i++) {
        if (lx->s[i] == '\n') {
            lx->line++;
            lx->line_start = i + 1;
        }
    }
    lx->pos = to;
}

static _Noreturn void lex_fail(struct lexer *lx, const char *msg)
{
    lx->cx->line = lx->line;
    lx->cx->col = (int)(lx->pos - lx->line_start) + 1;
    jx_fail(lx->cx, LLEM_EINVAL, "TemplateSyntaxError: %s", msg);
}

static struct jtok *emit(struct lexer *lx, int kind, const char *p, size_t n)
{
    struct jtoks *t = lx->out;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        struct jtok *nv = jx_alloc_array(lx->cx, cap, sizeof(struct jtok));
        if (t->n) {
            memcpy(nv, t->v, t->n * sizeof(struct jtok));
        }
        t->v = nv;
        t->cap = cap;
    }
    struct jtok *k = &t->v[t->n++];
    memset(k, 0, sizeof(*k));
    k->kind = (uint8_t)kind;
    k->line = lx->line;
    k->col = (int)(lx->pos - lx->line_start) + 1;
    k->p = p;
    k->n = n;
    return k;
}

// Decodes a string literal body s[0..n) with Python's escapes into the region.
static void lex_string(struct lexer *lx, const char *s, size_t n, struct jtok *tok)
{
    char *o = jx_alloc(lx->cx, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            o[k++] = s[i];
            continue;
        }
        char e = s[++i];
        switch (e) {
        case 'n': o[k++] = '\n'; break;
        case 't': o[k++] = '\t'; break;
        case 'r': o[k++] = '\r'; break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
            unsigned v = 0;
            size_t j = 0;
            while (j < 3 && i < n && s[i] >= '0' && s[i] <= '7') {
                v = v * 8 + (unsigned)(s[i] - '0');
                i++;
                j++;
            }
            i--;
            char u[4];
            int w = utf8_encode(v, u);
            memcpy(o + k, u, (size_t)w);
            k += (size_t)w;
            break;
        }
        case 'a': o[k++] = '\a'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'v': o[k++] = '\v'; break;
        case '\\': o[k++] = '\\'; break;
        case '\'': o[k++] = '\''; break;
        case '"': o[k++] = '"'; break;
        case '\n': break; // line continuation
        case 'x': case 'u': case 'U': {
            size_t w = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t v = 0;
            if (i + w >= n) {
                lex_fail(lx, "truncated \\x/\\u escape in a string literal");
            }
            for (size_t j = 1; j <= w; j++) {
                char h = s[i + j];
                int d = h >= '0' && h <= '9' ? h - '0'
                      : h >= 'a' && h <= 'f' ? h - 'a' + 10
                      : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (d < 0) {
                    lex_fail(lx, "bad \\x/\\u escape in a string literal");
                }
                v = v * 16 + (uint32_t)d;
            }
            i += w;
            char u[4];
            int m = utf8_encode(v, u);
            if (m == 0) {
                lex_fail(lx, "escape is not a valid code point");
            }
            memcpy(o + k, u, (size_t)m);
            k += (size_t)m;
            break;
        }
        default: // unknown escapes stay as written
            o[k++] = '\\';
            o[k++] = e;
            break;
        }
    }
    o[k] = '\0';
    tok->p = o;
    tok->n = k;
}

static const char *const OPS[] = {
    "//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "<", ">", "=", "(", ")",
    "[", "]", "{", "}", ",", ".", ":", "|",
};

// Lexes the inside of a {{ }} or {% %} tag starting at lx->pos up to and including its
// closer; returns the whitespace-control sign of the closer ('-' or 0).
static char lex_tag(struct lexer *lx, bool block)
{
    const char close0 = block ? '%' : '}';
    int balance = 0;
    for (;;) {
        while (lx->pos < lx->n && is_space(lx->s[lx->pos])) {
            advance(lx, lx->pos + 1);
        }
        if (lx->pos >= lx->n) {
            lex_fail(lx, block ? "unexpected end of template: missing '%}'"
                               : "unexpected end of template: missing '}}'");
        }
        const char *p = lx->s + lx->pos;
        size_t left = lx->n - lx->pos;
        if (balance == 0) {
            if (left >= 3 && p[0] == '-' && p[1] == close0 && p[2] == '}') {
                emit(lx, block ? TK_BLOCK_END : TK_VAR_END, p, 3);
                advance(lx, lx->pos + 3);
                return '-';
            }
            if (left >= 2 && p[0] == close0 && p[1] == '}') {
                emit(lx, block ? TK_BLOCK_END : TK_VAR_END, p, 2);
                advance(lx, lx->pos + 2);
                return 0;
            }
        }
        char c = p[0];
        if (c == '\'' || c == '"') {
            size_t i = 1;
            while (i < left && p[i] != c) {
                i += p[i] == '\\' ? 2 : 1;
            }
            if (i >= left) {
                lex_fail(lx, "unterminated string literal");
            }
            struct jtok *t = emit(lx, TK_STRING, NULL, 0);
            lex_string(lx, p + 1, i - 1, t);
            advance(lx, lx->pos + i + 1);
            continue;
        }
        bool after_dot = lx->pos > 0 && lx->s[lx->pos - 1] == '.';
        if (is_digit(c)) {
            size_t i = 0;
            while (i < left && (is_digit(p[i]) || (p[i] == '_' && i + 1 < left && is_digit(p[i + 1])))) {
                i++;
            }
            bool is_float = false;
            if (!after_dot && i + 1 < left && p[i] == '.' && is_digit(p[i + 1])) {
                is_float = true;
                i++;
                while (i < left && (is_digit(p[i]) || (p[i] == '_' && i + 1 < left && is_digit(p[i + 1])))) {
                    i++;
                }
            }
            if (!after_dot && i < left && (p[i] == 'e' || p[i] == 'E')) {
                size_t j = i + 1;
                if (j < left && (p[j] == '+' || p[j] == '-')) {
                    j++;
                }
                if (j < left && is_digit(p[j])) {
                    is_float = true;
                    while (j < left && is_digit(p[j])) {
                        j++;
                    }
                    i = j;
                }
            }
            char tmp[64];
            size_t k = 0;
            for (size_t j = 0; j < i && k < sizeof(tmp) - 1; j++) {
                if (p[j] != '_') {
                    tmp[k++] = p[j];
                }
            }
            tmp[k] = '\0';
            struct jtok *t = emit(lx, is_float ? TK_FLOAT : TK_INT, p, i);
            if (is_float) {
                t->f = strtod(tmp, NULL);
            } else {
                char *end;
                unsigned long long v = strtoull(tmp, &end, 10);
                if (i >= sizeof(tmp) - 1 || v > (unsigned long long)INT64_MAX) {
                    lex_fail(lx, "integer literal too large");
                }
                t->i = (int64_t)v;
            }
            advance(lx, lx->pos + i);
            continue;
        }
        if (is_ident_start(c)) {
            size_t i = 1;
            while (i < left && (is_ident_start(p[i]) || is_digit(p[i]))) {
                i++;
            }
            emit(lx, TK_NAME, p, i);
            advance(lx, lx->pos + i);
            continue;
        }
        size_t oplen = 0;
        for (size_t k = 0; k < LLEM_ARRAY_LEN(OPS); k++) {
            size_t m = strlen(OPS[k]);
            if (m <= left && memcmp(p, OPS[k], m) == 0) {
                oplen = m;
                break;
            }
        }
        if (oplen == 0) {
            lex_fail(lx, "unexpected character in a tag");
        }
        if (c == '(' || c == '[' || c == '{') {
            balance++;
        } else if (c == ')' || c == ']' || c == '}') {
            if (balance == 0) {
                lex_fail(lx, "unexpected closing bracket");
            }
            balance--;
        }
        emit(lx, TK_OP, p, oplen);
        advance(lx, lx->pos + oplen);
    }
}

static void skip_ws_after(struct lexer *lx, char sign, bool trim_newline)
{
    if (sign == '-') {
        size_t i = lx->pos;
        while (i < lx->n && is_space(lx->s[i])) {
            i++;
        }
        advance(lx, i);
    } else if (trim_newline && lx->pos < lx->n && lx->s[lx->pos] == '\n') {
        advance(lx, lx->pos + 1);
    }
}

// Finds "{%[-+]? endraw [-+]?%}" from `from`: start of the tag and end after it.
static bool find_endraw(const struct lexer *lx, size_t from, size_t *st, size_t *en, char *lsign,
                        char *rsign)
{
    for (size_t i = from; i + 1 < lx->n; i++) {
        if (lx->s[i] != '{' || lx->s[i + 1] != '%') {
            continue;
        }
        size_t j = i + 2;
        char ls = 0;
        if (j < lx->n && (lx->s[j] == '-' || lx->s[j] == '+')) {
            ls = lx->s[j++];
        }
        while (j < lx->n && is_space(lx->s[j])) {
            j++;
        }
        if (j + 6 > lx->n || memcmp(lx->s + j, "endraw", 6) != 0) {
            continue;
        }
        j += 6;
        while (j < lx->n && is_space(lx->s[j])) {
            j++;
        }
        char rs = 0;
        if (j < lx->n && lx->s[j] == '-') {
            rs = '-';
            j++;
        }
        if (j + 1 < lx->n && lx->s[j] == '%' && lx->s[j + 1] == '}') {
            *st = i;
            *en = j + 2;
            *lsign = ls;
            *rsign = rs;
            return true;
        }
    }
    return false;
}

// If the block tag at lx->pos (just after "{%" and its sign) is `raw`, consumes through
// {% endraw %} and emits the raw text; returns true.
static bool lex_raw(struct lexer *lx)
{
    size_t j = lx->pos;
    while (j < lx->n && is_space(lx->s[j])) {
        j++;
    }
    if (j + 3 > lx->n || memcmp(lx->s + j, "raw", 3) != 0) {
        return false;
    }
    j += 3;
    while (j < lx->n && is_space(lx->s[j])) {
        j++;
    }
    char sign = 0;
    if (j < lx->n && lx->s[j] == '-') {
        sign = '-';
        j++;
    }
    if (j + 1 >= lx->n || lx->s[j] != '%' || lx->s[j + 1] != '}') {
        return false;
    }
    advance(lx, j + 2);
    skip_ws_after(lx, sign, true);
    size_t st, en;
    char ls, rs;
    if (!find_endraw(lx, lx->pos, &st, &en, &ls, &rs)) {
        lex_fail(lx, "missing {% endraw %}");
    }
    size_t tn = st - lx->pos;
    if (ls == '-') {
        while (tn > 0 && is_space(lx->s[lx->pos + tn - 1])) {
            tn--;
        }
    }
    if (tn) {
        emit(lx, TK_DATA, lx->s + lx->pos, tn);
    }
    advance(lx, en);
    skip_ws_after(lx, rs, true);
    return true;
}

void jinja_lex(struct jctx *cx, const char *src, size_t n, struct jtoks *out)
{
    // Normalize \r\n and \r to \n, drop one trailing newline (keep_trailing_newline=False).
    char *s = jx_alloc(cx, n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[m++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') {
                i++;
            }
        } else {
            s[m++] = src[i];
        }
    }
    if (m > 0 && s[m - 1] == '\n') {
        m--;
    }
    s[m] = '\0';

    struct lexer lx = {.cx = cx, .s = s, .n = m, .pos = 0, .line = 1, .line_start = 0, .out = out};
    bool line_starting = true;
    while (lx.pos < lx.n) {
        // Next tag opener.
        size_t k = lx.pos;
        char tag = 0;
        while (k + 1 < lx.n) {
            if (lx.s[k] == '{' && (lx.s[k + 1] == '{' || lx.s[k + 1] == '%' || lx.s[k + 1] == '#')) {
                tag = lx.s[k + 1];
                break;
            }
            k++;
        }
        if (!tag) {
            emit(&lx, TK_DATA, lx.s + lx.pos, lx.n - lx.pos);
            break;
        }
        char sign = k + 2 < lx.n && (lx.s[k + 2] == '-' || lx.s[k + 2] == '+') ? lx.s[k + 2] : 0;
        size_t tn = k - lx.pos; // data before the tag
        const char *text = lx.s + lx.pos;
        if (sign == '-') {
            while (tn > 0 && is_space(text[tn - 1])) {
                tn--;
            }
        } else if (sign != '+' && tag != '{') {
            size_t l = tn;
            while (l > 0 && text[l - 1] != '\n') {
                l--;
            }
            if (l > 0 || line_starting) {
                size_t q = l;
                while (q < tn && (text[q] == ' ' || text[q] == '\t' || text[q] == '\f' ||
                                  text[q] == '\v' || text[q] == '\r')) {
                    q++;
                }
                if (q == tn) {
                    tn = l;
                }
            }
        }
        if (tn) {
            emit(&lx, TK_DATA, text, tn);
        }
        advance(&lx, k);
        size_t open_len = 2 + (sign ? 1 : 0);
        if (tag == '#') {
            const char *e = NULL;
            for (size_t i = k + open_len; i + 1 < lx.n; i++) {
                if (lx.s[i] == '#' && lx.s[i + 1] == '}') {
                    e = lx.s + i;
                    break;
                }
            }
            if (!e) {
                lex_fail(&lx, "missing end of comment tag");
            }
            size_t e_off = (size_t)(e - lx.s);
            char rsign = e_off > k + open_len && lx.s[e_off - 1] == '-' ? '-' : 0;
            advance(&lx, e_off + 2);
            skip_ws_after(&lx, rsign, true);
            line_starting = lx.pos > 0 && lx.s[lx.pos - 1] == '\n';
            continue;
        }
        if (tag == '%') {
            size_t save = lx.pos;
            advance(&lx, k + open_len);
            if (lex_raw(&lx)) {
                line_starting = lx.pos > 0 && lx.s[lx.pos - 1] == '\n';
                continue;
            }
            lx.pos = save; // no newline between: nothing to undo for line counting
            emit(&lx, TK_BLOCK_BEGIN, lx.s + k, open_len);
            advance(&lx, k + open_len);
            char rsign = lex_tag(&lx, true);
            skip_ws_after(&lx, rsign, true);
        } else {
            emit(&lx, TK_VAR_BEGIN, lx.s + k, open_len);
            advance(&lx, k + open_len);
            char rsign = lex_tag(&lx, false);
            skip_ws_after(&lx, rsign, false);
        }
        line_starting = lx.pos > 0 && lx.s[lx.pos - 1] == '\n';
    }
    lx.pos = lx.n;
    emit(&lx, TK_EOF, NULL, 0);
}
