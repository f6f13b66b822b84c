// base/err.c: names and messages of the error values, and errbuf formatting.
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const err_names[] = {
#define X(name, msg) #name,
    LLEM_ERR_LIST(X)
#undef X
};

static const char *const err_msgs[] = {
#define X(name, msg) msg,
    LLEM_ERR_LIST(X)
#undef X
};

const char *llem_err_name(enum llem_err e)
{
    return (unsigned)e < LLEM_ARRAY_LEN(err_names) ? err_names[e] : "?";
}

const char *llem_err_str(enum llem_err e)
{
    return (unsigned)e < LLEM_ARRAY_LEN(err_msgs) ? err_msgs[e] : "unknown error";
}

const char *llem_version(void)
{
    return LLEM_VERSION;
}

enum llem_err llem_errf(struct llem_errbuf *eb, enum llem_err code, const char *fmt, ...)
{
    if (eb) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
        va_end(ap);
        eb->code = code;
    }
    return code;
}

enum llem_err llem_err_prefix(struct llem_errbuf *eb, const char *prefix)
{
    if (!eb) {
        return LLEM_EINTERNAL;
    }
    char tmp[sizeof eb->msg];
    size_t n = strlen(prefix);
    if (n > sizeof tmp - 3) {
        n = sizeof tmp - 3;
    }
    memcpy(tmp, prefix, n);
    tmp[n] = ':';
    tmp[n + 1] = ' ';
    size_t rest = strnlen(eb->msg, sizeof eb->msg);
    if (rest > sizeof tmp - n - 3) {
        rest = sizeof tmp - n - 3;
    }
    memcpy(tmp + n + 2, eb->msg, rest);
    tmp[n + 2 + rest] = '\0';
    memcpy(eb->msg, tmp, sizeof tmp);
    return eb->code;
}

void llem_assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "llem: assertion failed at %s:%d: %s\n", file, line, expr);
    abort();
}
