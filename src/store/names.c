// store/names.c: model names ("[host/][namespace/]model[:tag]") and blob digests. Validation is
// strict and positive (an allow-list of characters per part), because these strings become
// path components under the store root: a name that parses can never contain '/', '\\', NUL,
// ".." or a leading '.', so no name or digest can reach outside the store.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "store/store_int.h"

// Allowed characters: the first must be alphanumeric or '_' (so never '.', '-' or ':'), the
// rest may add the part's punctuation.
static bool part_ok(const char *p, size_t n, size_t max, const char *extra)
{
    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum || c == '_') {
            continue;
        }
        if (i == 0 || c == 0 || !strchr(extra, c)) {
            return false;
        }
    }
    // ".." inside a host or model ("a..b") is harmless as one component, but refuse it anyway:
    // no legitimate name needs it and it keeps the rule "no '..' anywhere" simple to audit.
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '.' && p[i + 1] == '.') {
            return false;
        }
    }
    return true;
}

static enum llem_err bad_part(struct llem_errbuf *eb, const char *s, const char *what,
                              const char *p, size_t n, size_t max)
{
    if (n > max) {
        return llem_errf(eb, LLEM_EINVAL, "invalid model name '%.64s%s': %s is %zu bytes (max %zu)",
                         s, strlen(s) > 64 ? "..." : "", what, n, max);
    }
    if (n == 0) {
        return llem_errf(eb, LLEM_EINVAL, "invalid model name '%.64s%s': empty %s", s,
                         strlen(s) > 64 ? "..." : "", what);
    }
    return llem_errf(eb, LLEM_EINVAL,
                     "invalid model name '%.64s%s': %s '%.*s' has a character "
                     "that is not allowed",
                     s, strlen(s) > 64 ? "..." : "", what, (int)(n > 64 ? 64 : n), p);
}

static void copy_part(char *dst, const char *p, size_t n)
{
    memcpy(dst, p, n);
    dst[n] = '\0';
}

enum llem_err store_name_parse(const char *s, struct store_name *out, struct llem_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (!s || !*s) {
        return llem_errf(eb, LLEM_EINVAL, "invalid model name: empty");
    }
    size_t len = strlen(s);
    if (len > STORE_HOST_MAX + STORE_NS_MAX + 2 * STORE_PART_MAX + 16) {
        return llem_errf(eb, LLEM_EINVAL, "invalid model name '%.64s...': too long (%zu bytes)", s,
                         len);
    }
    const char *p = s, *end = s + len;
    const char *sch = strstr(s, "://");
    if (sch) {
        if (strncasecmp(s, "http://", 7) == 0) {
            out->insecure_scheme = true;
        } else if (strncasecmp(s, "https://", 8) != 0) {
            return llem_errf(eb, LLEM_EINVAL, "invalid model name '%.64s': unknown scheme", s);
        }
        p = sch + 3;
    }
    if (memchr(p, '@', (size_t)(end - p))) {
        return llem_errf(eb, LLEM_EINVAL,
                         "invalid model name '%.64s': '@digest' is not "
                         "accepted here",
                         s);
    }
    // The tag is what follows the last ':' if that comes after the last '/' (a host port
    // "h:5000/m" is not a tag).
    const char *slash = NULL, *colon = NULL;
    for (const char *q = p; q < end; q++) {
        if (*q == '/') {
            slash = q;
        } else if (*q == ':') {
            colon = q;
        }
    }
    const char *tag = NULL, *path_end = end;
    if (colon && (!slash || colon > slash)) {
        tag = colon + 1;
        path_end = colon;
    }
    // Split the path into at most three '/'-separated parts.
    const char *parts[3];
    size_t lens[3];
    int np = 0;
    const char *q = p;
    while (1) {
        const char *e = memchr(q, '/', (size_t)(path_end - q));
        if (np == 3) {
            return llem_errf(eb, LLEM_EINVAL,
                             "invalid model name '%.64s': too many '/' parts "
                             "(want [host/][namespace/]model[:tag])",
                             s);
        }
        parts[np] = q;
        lens[np] = e ? (size_t)(e - q) : (size_t)(path_end - q);
        np++;
        if (!e) {
            break;
        }
        q = e + 1;
    }
    const char *host = STORE_DEFAULT_HOST, *ns = STORE_DEFAULT_NS;
    size_t host_n = strlen(host), ns_n = strlen(ns);
    const char *model = parts[np - 1];
    size_t model_n = lens[np - 1];
    if (np == 3) {
        host = parts[0], host_n = lens[0];
        ns = parts[1], ns_n = lens[1];
    } else if (np == 2) {
        ns = parts[0], ns_n = lens[0];
    }
    if (!part_ok(host, host_n, STORE_HOST_MAX, "-_.:")) {
        return bad_part(eb, s, "host", host, host_n, STORE_HOST_MAX);
    }
    if (!part_ok(ns, ns_n, STORE_NS_MAX, "-_")) {
        return bad_part(eb, s, "namespace", ns, ns_n, STORE_NS_MAX);
    }
    if (!part_ok(model, model_n, STORE_PART_MAX, "-_.")) {
        return bad_part(eb, s, "model", model, model_n, STORE_PART_MAX);
    }
    const char *tg = tag ? tag : STORE_DEFAULT_TAG;
    size_t tg_n = tag ? (size_t)(end - tag) : strlen(STORE_DEFAULT_TAG);
    if (!part_ok(tg, tg_n, STORE_PART_MAX, "-_.")) {
        return bad_part(eb, s, "tag", tg, tg_n, STORE_PART_MAX);
    }
    copy_part(out->host, host, host_n);
    copy_part(out->ns, ns, ns_n);
    copy_part(out->model, model, model_n);
    copy_part(out->tag, tg, tg_n);
    return LLEM_OK;
}

void store_name_full(const struct store_name *n, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
}

void store_name_display(const struct store_name *n, char *buf, size_t cap)
{
    if (strcasecmp(n->host, STORE_DEFAULT_HOST) != 0) {
        snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
    } else if (strcasecmp(n->ns, STORE_DEFAULT_NS) != 0) {
        snprintf(buf, cap, "%s/%s:%s", n->ns, n->model, n->tag);
    } else {
        snprintf(buf, cap, "%s:%s", n->model, n->tag);
    }
}

bool store_name_equal(const struct store_name *a, const struct store_name *b)
{
    return strcasecmp(a->host, b->host) == 0 && strcasecmp(a->ns, b->ns) == 0 &&
           strcasecmp(a->model, b->model) == 0 && strcasecmp(a->tag, b->tag) == 0;
}

// ---- digests ----------------------------------------------------------------------------------

static bool hex64(const char *h, bool lower_only)
{
    for (int i = 0; i < 64; i++) {
        char c = h[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                  (!lower_only && c >= 'A' && c <= 'F');
        if (!ok) {
            return false;
        }
    }
    return h[64] == '\0';
}

bool store_digest_valid(const char *d)
{
    return d && strncmp(d, "sha256:", 7) == 0 && strlen(d) == 71 && hex64(d + 7, true);
}

enum llem_err store_digest_normalize(const char *d, char out[STORE_DIGEST_BYTES],
                                     struct llem_errbuf *eb)
{
    out[0] = '\0';
    if (!d || (strncasecmp(d, "sha256:", 7) != 0 && strncasecmp(d, "sha256-", 7) != 0) ||
        strnlen(d, 72) != 71 || !hex64(d + 7, false)) {
        return llem_errf(eb, LLEM_EINVAL, "invalid digest '%.80s': want sha256:<64 hex digits>",
                         d ? d : "(null)");
    }
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 64; i++) {
        out[7 + i] = (char)tolower((unsigned char)d[7 + i]);
    }
    out[71] = '\0';
    return LLEM_OK;
}

void store_digest_to_file(const char *digest, char *buf)
{
    memcpy(buf, digest, 71);
    buf[6] = '-';
    buf[71] = '\0';
}

// ---- roots ------------------------------------------------------------------------------------

enum llem_err store_default_root(char *buf, size_t cap, struct llem_errbuf *eb)
{
    const char *env = getenv("LLEM_MODELS");
    int n;
    if (env && *env) {
        n = snprintf(buf, cap, "%s", env);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            return llem_errf(eb, LLEM_EINVAL, "neither LLEM_MODELS nor HOME is set");
        }
        n = snprintf(buf, cap, "%s/.llem/models", home);
    }
    if (n < 0 || (size_t)n >= cap) {
        return llem_errf(eb, LLEM_ELIMIT, "model store path too long");
    }
    return LLEM_OK;
}

bool store_ollama_root(char *buf, size_t cap)
{
    char tmp[STORE_PATH_MAX];
    const char *env = getenv("OLLAMA_MODELS");
    int n;
    if (env && *env) {
        n = snprintf(tmp, sizeof(tmp), "%s", env);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            return false;
        }
        n = snprintf(tmp, sizeof(tmp), "%s/.ollama/models", home);
    }
    struct stat st;
    if (n < 0 || (size_t)n >= sizeof(tmp) || (size_t)n >= cap || stat(tmp, &st) != 0 ||
        !S_ISDIR(st.st_mode)) {
        return false;
    }
    memcpy(buf, tmp, (size_t)n + 1);
    return true;
}
