// server/json.c: request JSON with the checks cJSON does not do: the whole body must be valid
// UTF-8 and nest at most LLEM_JSON_MAX_DEPTH deep (checked before parsing, so cJSON's
// recursion is bounded), and typed field getters that reject wrong types and out-of-range
// numbers (cJSON keeps numbers as doubles and saturates valueint) with messages naming the
// field. Also the time formats of responses.
#include <math.h>
#include <string.h>
#include <time.h>

#include "base/limits.h"
#include "base/timeutil.h"
#include "base/utf8.h"
#include "server/server_int.h"

// Bracket depth outside strings; false when deeper than the cap.
static bool depth_ok(const char *s, size_t n)
{
    unsigned depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > LLEM_JSON_MAX_DEPTH) {
                return false;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return true;
}

cJSON *json_parse_body(struct http_req *r, enum MHD_Result *res)
{
    const char *txt = strbuf_cstr(&r->body);
    size_t n = r->body.len;
    size_t bad = 0;
    if (n == 0) {
        *res = http_reply_error(r, 400, "missing request body");
        return NULL;
    }
    if (!utf8_valid(txt, n, &bad)) {
        *res = http_reply_error(r, 400, "invalid UTF-8 in the request body at byte %zu", bad);
        return NULL;
    }
    if (!depth_ok(txt, n)) {
        *res = http_reply_error(r, 400, "request JSON nests deeper than %u levels",
                                LLEM_JSON_MAX_DEPTH);
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(txt, n, &end, false);
    if (j && end) { // only whitespace may follow the value
        while (end < txt + n && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) {
            end++;
        }
        if (end != txt + n) {
            cJSON_Delete(j);
            j = NULL;
        }
    }
    if (!j) {
        size_t off = end && end >= txt ? (size_t)(end - txt) : 0;
        *res = http_reply_error(r, 400, "invalid JSON in the request body near byte %zu", off);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *res = http_reply_error(r, 400, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) {
        return "string";
    }
    if (cJSON_IsNumber(v)) {
        return "number";
    }
    if (cJSON_IsBool(v)) {
        return "bool";
    }
    if (cJSON_IsArray(v)) {
        return "array";
    }
    if (cJSON_IsObject(v)) {
        return "object";
    }
    return "null";
}

static const cJSON *field(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

enum llem_err json_get_str(const cJSON *o, const char *key, const char **out,
                           struct llem_errbuf *eb)
{
    const cJSON *v = field(o, key);
    if (!v) {
        return LLEM_OK;
    }
    if (!cJSON_IsString(v)) {
        return llem_errf(eb, LLEM_EINVAL, "field \"%s\": expected a string, got %s", key,
                         type_name(v));
    }
    *out = v->valuestring;
    return LLEM_OK;
}

enum llem_err json_get_bool(const cJSON *o, const char *key, bool *out, bool *present,
                            struct llem_errbuf *eb)
{
    const cJSON *v = field(o, key);
    if (!v) {
        return LLEM_OK;
    }
    if (!cJSON_IsBool(v)) {
        return llem_errf(eb, LLEM_EINVAL, "field \"%s\": expected a bool, got %s", key,
                         type_name(v));
    }
    *out = cJSON_IsTrue(v);
    if (present) {
        *present = true;
    }
    return LLEM_OK;
}

enum llem_err json_get_i64(const cJSON *o, const char *key, int64_t min, int64_t max,
                           int64_t *out, bool *present, struct llem_errbuf *eb)
{
    const cJSON *v = field(o, key);
    if (!v) {
        return LLEM_OK;
    }
    if (!cJSON_IsNumber(v)) {
        return llem_errf(eb, LLEM_EINVAL, "field \"%s\": expected an integer, got %s", key,
                         type_name(v));
    }
    double d = v->valuedouble;
    // 2^53: beyond it a double no longer holds every integer the client may have meant.
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0) {
        return llem_errf(eb, LLEM_EINVAL, "field \"%s\": %g is not an integer in range", key, d);
    }
    int64_t iv = (int64_t)d;
    if (iv < min || iv > max) {
        return llem_errf(eb, LLEM_EINVAL, "field \"%s\": %lld is out of range [%lld, %lld]",
                         key, (long long)iv, (long long)min, (long long)max);
    }
    *out = iv;
    if (present) {
        *present = true;
    }
    return LLEM_OK;
}

enum llem_err json_get_f32(const cJSON *o, const char *key, float *out, bool *present,
                           struct llem_errbuf *eb)
{
    const cJSON *v = field(o, key);
    if (!v) {
        return LLEM_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e30) {
        return llem_errf(eb, LLEM_EINVAL, "field \"%s\": expected a number, got %s", key,
                         type_name(v));
    }
    *out = (float)v->valuedouble;
    if (present) {
        *present = true;
    }
    return LLEM_OK;
}

enum llem_err json_get_duration(const cJSON *o, const char *key, int64_t *ns, bool *present,
                                struct llem_errbuf *eb)
{
    const cJSON *v = field(o, key);
    if (!v) {
        return LLEM_OK;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d)) {
            return llem_errf(eb, LLEM_EINVAL, "field \"%s\": not a finite number", key);
        }
        if (d < 0) {
            *ns = -1;
        } else if (d > 9.2e9) {
            *ns = INT64_MAX / 2; // ~146 years: forever in practice
        } else {
            *ns = (int64_t)(d * 1e9);
        }
    } else if (cJSON_IsString(v)) {
        struct llem_errbuf e2 = {0};
        if (time_parse_duration(v->valuestring, ns, &e2) != LLEM_OK) {
            return llem_errf(eb, LLEM_EINVAL, "field \"%s\": bad duration '%.60s': %s", key,
                             v->valuestring, e2.msg);
        }
        if (*ns < 0) {
            *ns = -1;
        }
    } else {
        return llem_errf(eb, LLEM_EINVAL,
                         "field \"%s\": expected a duration string or seconds, got %s", key,
                         type_name(v));
    }
    if (present) {
        *present = true;
    }
    return LLEM_OK;
}

enum llem_err json_kv_str(struct strbuf *sb, bool comma, const char *key, const char *v, size_t n)
{
    enum llem_err e = strbuf_appendf(sb, "%s\"%s\":\"", comma ? "," : "", key);
    if (e == LLEM_OK) {
        e = strbuf_append_json_escaped(sb, v, n);
    }
    if (e == LLEM_OK) {
        e = strbuf_append_char(sb, '"');
    }
    return e;
}

int64_t json_now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void json_time_rfc3339(int64_t unix_ns, char *buf, size_t cap)
{
    time_t sec = (time_t)(unix_ns / 1000000000LL);
    long nsec = (long)(unix_ns % 1000000000LL);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nsec);
}
