// base/strbuf.h: a growable, always NUL-terminated string buffer with a hard cap, for output
// whose size depends on outside input (JSON responses, rendered templates, error messages).
// Past the cap an append fails with LLEM_ELIMIT instead of growing without bound. A failed
// append (ELIMIT or ENOMEM) leaves the content unchanged. Not thread-safe per instance.
#pragma once
#include <stdarg.h>
#include <stddef.h>

#include "base/err.h"

struct strbuf {
    char *data;       // NUL-terminated when non-NULL; NULL until the first append
    size_t len;       // bytes before the NUL
    size_t cap;       // bytes allocated (including the NUL)
    size_t max_len;   // hard cap on len
};

// Starts empty with a cap of max_len bytes of content (0 means SIZE_MAX - 1). Allocates
// nothing until the first append. Never fails.
void strbuf_init(struct strbuf *sb, size_t max_len);
void strbuf_deinit(struct strbuf *sb); // sb may be NULL
// The content, "" when nothing was appended (never NULL).
const char *strbuf_cstr(const struct strbuf *sb);
// Keeps the allocation, empties the content.
void strbuf_reset(struct strbuf *sb);
// Truncates to len bytes (len <= sb->len).
void strbuf_truncate(struct strbuf *sb, size_t len);
// Hands the heap string to the caller (free with llem_free) and leaves sb empty. Returns a
// heap "" if nothing was appended; NULL only when that allocation fails.
char *strbuf_take(struct strbuf *sb);

// Reserves room for `extra` more bytes: LLEM_ELIMIT past the cap, LLEM_ENOMEM.
enum llem_err strbuf_reserve(struct strbuf *sb, size_t extra);
enum llem_err strbuf_append(struct strbuf *sb, const char *s, size_t n);
enum llem_err strbuf_append_str(struct strbuf *sb, const char *s);
enum llem_err strbuf_append_char(struct strbuf *sb, char c);
enum llem_err strbuf_appendf(struct strbuf *sb, const char *fmt, ...) LLEM_PRINTF(2, 3);
enum llem_err strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap)
    LLEM_PRINTF(2, 0);
// Appends s[0..n) as the inside of a JSON string (no surrounding quotes): escapes '"', '\\'
// and control characters (\n \r \t \b \f, others \u00XX); non-ASCII UTF-8 passes through
// unescaped; invalid UTF-8 bytes become U+FFFD so the output is always valid JSON.
enum llem_err strbuf_append_json_escaped(struct strbuf *sb, const char *s, size_t n);
