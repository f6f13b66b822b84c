// base/strbuf.c: capped growable string (see strbuf.h).
#include "base/strbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/utf8.h"

static char empty_str[1];

void strbuf_init(struct strbuf *sb, size_t max_len)
{
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
    sb->max_len = max_len ? max_len : SIZE_MAX - 1;
}

void strbuf_deinit(struct strbuf *sb)
{
    if (!sb) {
        return;
    }
    llem_free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

const char *strbuf_cstr(const struct strbuf *sb)
{
    return sb->data ? sb->data : empty_str;
}

void strbuf_reset(struct strbuf *sb)
{
    strbuf_truncate(sb, 0);
}

void strbuf_truncate(struct strbuf *sb, size_t len)
{
    LLEM_ASSERT(len <= sb->len);
    sb->len = len;
    if (sb->data) {
        sb->data[len] = '\0';
    }
}

char *strbuf_take(struct strbuf *sb)
{
    char *d = sb->data ? sb->data : llem_strdup("");
    sb->data = NULL;
    sb->len = sb->cap = 0;
    return d;
}

enum llem_err strbuf_reserve(struct strbuf *sb, size_t extra)
{
    if (extra > sb->max_len - sb->len) {
        return LLEM_ELIMIT;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap) {
        return LLEM_OK;
    }
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    // Do not reserve far beyond the cap: the last doubling may overshoot it.
    if (cap > sb->max_len + 1) {
        cap = sb->max_len + 1;
    }
    char *d = llem_realloc(sb->data, cap);
    if (!d) {
        return LLEM_ENOMEM;
    }
    if (!sb->data) {
        d[0] = '\0';
    }
    sb->data = d;
    sb->cap = cap;
    return LLEM_OK;
}

enum llem_err strbuf_append(struct strbuf *sb, const char *s, size_t n)
{
    enum llem_err e = strbuf_reserve(sb, n);
    if (e != LLEM_OK) {
        return e;
    }
    if (n) {
        memcpy(sb->data + sb->len, s, n);
    }
    sb->len += n;
    sb->data[sb->len] = '\0';
    return LLEM_OK;
}

enum llem_err strbuf_append_str(struct strbuf *sb, const char *s)
{
    return strbuf_append(sb, s, strlen(s));
}

enum llem_err strbuf_append_char(struct strbuf *sb, char c)
{
    return strbuf_append(sb, &c, 1);
}

enum llem_err strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return LLEM_EINVAL;
    }
    if ((size_t)n < sizeof(small)) {
        return strbuf_append(sb, small, (size_t)n);
    }
    enum llem_err e = strbuf_reserve(sb, (size_t)n);
    if (e != LLEM_OK) {
        return e;
    }
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
    return LLEM_OK;
}

enum llem_err strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum llem_err e = strbuf_vappendf(sb, fmt, ap);
    va_end(ap);
    return e;
}

enum llem_err strbuf_append_json_escaped(struct strbuf *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start_len = sb->len;
    size_t i = 0;
    enum llem_err e = LLEM_OK;
    while (i < n && e == LLEM_OK) {
        // Copy the longest run that needs no escaping in one append.
        size_t j = i;
        while (j < n) {
            uint8_t c = (uint8_t)s[j];
            if (c < 0x20 || c == '"' || c == '\\') {
                break;
            }
            if (c < 0x80) {
                j++;
                continue;
            }
            uint32_t cp;
            int len = utf8_decode(s + j, n - j, &cp);
            if (len == 0) {
                break;
            }
            j += (size_t)len;
        }
        if (j > i) {
            e = strbuf_append(sb, s + i, j - i);
            i = j;
            continue;
        }
        uint8_t c = (uint8_t)s[i];
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            if (c < 0x20) {
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            } else { // an invalid UTF-8 byte: U+FFFD, one per bad byte
                memcpy(esc, "\xEF\xBF\xBD", 3);
                elen = 3;
            }
            break;
        }
        e = strbuf_append(sb, esc, elen);
        i++;
    }
    if (e != LLEM_OK) {
        strbuf_truncate(sb, start_len); // all or nothing
    }
    return e;
}
