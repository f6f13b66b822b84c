// base/timeutil.c: monotonic clock and Go-style duration parsing (see timeutil.h).
#include "base/timeutil.h"

#include <string.h>
#include <time.h>

#include "base/limits.h"

int64_t time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct unit {
    const char *name;
    uint64_t ns;
};

// Longest names first so "ms" is not read as "m" followed by "s".
static const struct unit units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xC2\xB5s", 1000}, // U+00B5 micro sign
    {"\xCE\xBCs", 1000}, // U+03BC Greek mu
    {"ms", 1000000},
    {"s", 1000000000ull},
    {"m", 60ull * 1000000000ull},
    {"h", 3600ull * 1000000000ull},
};

// Reads digits [.digits] at *p: integer part into *ip, fraction as (*fv / *fscale). Returns
// false if there is no digit at all, ELIMIT-worthy overflow sets *ovf.
static bool read_number(const char **p, uint64_t *ip, uint64_t *fv, uint64_t *fscale, bool *ovf)
{
    const char *s = *p;
    uint64_t v = 0;
    bool any = false;
    while (*s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10) {
            *ovf = true;
        } else {
            v = v * 10 + (uint64_t)(*s - '0');
        }
        s++;
        any = true;
    }
    *ip = v;
    *fv = 0;
    *fscale = 1;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (*fscale <= UINT64_MAX / 100) { // extra digits beyond ~1e-18 are dropped
                *fv = *fv * 10 + (uint64_t)(*s - '0');
                *fscale *= 10;
            }
            s++;
            any = true;
        }
    }
    *p = s;
    return any;
}

// v * unit + frac * unit / scale into *acc, false on overflow of 2^63.
static bool add_term(uint64_t *acc, uint64_t v, uint64_t fv, uint64_t fscale, uint64_t unit)
{
    uint64_t t;
    if (__builtin_mul_overflow(v, unit, &t)) {
        return false;
    }
    // Fraction: fv / fscale < 1, times unit (<= 3.6e12); do it in 128 bits for exactness.
    unsigned __int128 f = (unsigned __int128)fv * unit / fscale;
    if (__builtin_add_overflow(t, (uint64_t)f, &t) || __builtin_add_overflow(*acc, t, acc)) {
        return false;
    }
    return *acc <= (uint64_t)INT64_MAX + 1; // the magnitude of INT64_MIN is allowed
}

enum llem_err time_parse_duration(const char *s, int64_t *out_ns, struct llem_errbuf *eb)
{
    if (strnlen(s, LLEM_DURATION_MAX_BYTES + 1) > LLEM_DURATION_MAX_BYTES) {
        return llem_errf(eb, LLEM_ELIMIT, "duration longer than %u bytes",
                         LLEM_DURATION_MAX_BYTES);
    }
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    if (*p == '\0') {
        return llem_errf(eb, LLEM_EINVAL, "invalid duration \"%s\"", s);
    }
    uint64_t acc = 0;
    int terms = 0;
    while (*p) {
        uint64_t v, fv, fscale;
        bool ovf = false;
        if (!read_number(&p, &v, &fv, &fscale, &ovf)) {
            return llem_errf(eb, LLEM_EINVAL, "invalid duration \"%s\"", s);
        }
        if (ovf) {
            return llem_errf(eb, LLEM_ELIMIT, "duration \"%s\" out of range", s);
        }
        const struct unit *u = NULL;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].name);
            if (strncmp(p, units[i].name, n) == 0 && (!u || n > strlen(u->name))) {
                u = &units[i];
            }
        }
        if (!u) {
            if (*p == '\0' && terms == 0) { // bare number: seconds (Ollama's convention)
                u = &units[5];
            } else {
                return llem_errf(eb, LLEM_EINVAL, "invalid duration \"%s\": %s", s,
                                 *p ? "unknown unit" : "missing unit");
            }
        } else {
            p += strlen(u->name);
        }
        if (!add_term(&acc, v, fv, fscale, u->ns)) {
            return llem_errf(eb, LLEM_ELIMIT, "duration \"%s\" out of range", s);
        }
        terms++;
    }
    if (!neg && acc > (uint64_t)INT64_MAX) {
        return llem_errf(eb, LLEM_ELIMIT, "duration \"%s\" out of range", s);
    }
    *out_ns = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return LLEM_OK;
}
