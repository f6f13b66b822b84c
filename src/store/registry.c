// store/registry.c: pull and push over the OCI distribution protocol Ollama's registry speaks,
// with libcurl: manifests and blobs by digest, chunked (PATCH) or monolithic (PUT) uploads,
// Bearer-token challenges, resumable downloads (blobs/sha256-<hex>-partial + Range), every
// digest verified before a blob gets its name, and the manifest written last. Also the URL
// scheme of Hugging Face names (hf.co/{user}/{repo}[:{quant}]).
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "store/store_int.h"

#define REG_UA             "llem/0.1 (linux)"
#define REG_SMALL_BODY_MAX (4u << 20)    // manifests, tokens, error bodies
#define REG_CHUNK_DEFAULT  (32ull << 20) // upload chunk; smaller blobs go up in one PUT
#define REG_RETRIES        2             // extra attempts after a transport error mid-blob
#define REG_PROGRESS_STEP  (1u << 20)    // bytes between progress reports

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

// ---- URLs -----------------------------------------------------------------------------------

static bool is_hf_host(const char *h)
{
    return strcasecmp(h, "hf.co") == 0 || strcasecmp(h, "huggingface.co") == 0;
}

// The registry base ("scheme://host[:port]", no trailing '/') for a name. Heap string.
static enum llem_err base_url(const struct store_name *n, const struct store_registry_opts *o,
                              char **out, struct llem_errbuf *eb)
{
    *out = NULL;
    const char *env = getenv("LLEM_REGISTRY");
    const char *b = o && o->base_url && *o->base_url ? o->base_url : env && *env ? env : NULL;
    bool insecure = o && o->insecure;
    char buf[STORE_HOST_MAX + 32];
    if (!b) {
        const char *host = is_hf_host(n->host) ? "hf.co" : n->host;
        // As Ollama: --insecure means plain HTTP to the name's own host (local registries).
        snprintf(buf, sizeof(buf), "%s://%s", n->insecure_scheme || insecure ? "http" : "https",
                 host);
        b = buf;
    }
    if (strncasecmp(b, "https://", 8) != 0 && strncasecmp(b, "http://", 7) != 0) {
        return llem_errf(eb, LLEM_EINVAL,
                         "registry URL '%.200s' must start with http:// or "
                         "https://",
                         b);
    }
    if (strncasecmp(b, "http://", 7) == 0 && !insecure) {
        return llem_errf(eb, LLEM_EINVAL, "registry '%.200s' is plain HTTP: use --insecure", b);
    }
    size_t len = strlen(b);
    while (len > 0 && b[len - 1] == '/') {
        len--;
    }
    *out = llem_strndup(b, len);
    return *out ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "out of memory");
}

static char *url_join(const char *base, const struct store_name *n, const char *kind,
                      const char *ref)
{
    size_t len = strlen(base) + strlen(n->ns) + strlen(n->model) + strlen(kind) +
                 (ref ? strlen(ref) : 0) + 16;
    char *u = llem_malloc(len);
    if (u) {
        snprintf(u, len, "%s/v2/%s/%s/%s%s%s", base, n->ns, n->model, kind, ref ? "/" : "",
                 ref ? ref : "");
    }
    return u;
}

enum llem_err store_registry_manifest_url(const char *name, const struct store_registry_opts *o,
                                          char **url, struct llem_errbuf *eb)
{
    *url = NULL;
    struct store_name n;
    enum llem_err rc = store_name_parse(name, &n, eb);
    char *base = NULL;
    if (rc == LLEM_OK) {
        rc = base_url(&n, o, &base, eb);
    }
    if (rc != LLEM_OK) {
        return rc;
    }
    *url = url_join(base, &n, "manifests", n.tag);
    llem_free(base);
    return *url ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "out of memory");
}

// Hugging Face repo/user/file segment: [A-Za-z0-9_][A-Za-z0-9_.+-]*, no "..", <= 96 bytes.
static bool hf_seg_ok(const char *s, size_t n)
{
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.' || c == '+';
        if (!ok || (c == '.' && i + 1 < n && s[i + 1] == '.')) {
            return false;
        }
    }
    return true;
}

enum llem_err store_hf_file_url(const char *user, const char *repo, const char *file,
                                const char *revision, char **url, struct llem_errbuf *eb)
{
    *url = NULL;
    if (!user || !hf_seg_ok(user, strlen(user)) || !repo || !hf_seg_ok(repo, strlen(repo))) {
        return llem_errf(eb, LLEM_EINVAL, "invalid Hugging Face repository '%.100s/%.100s'",
                         user ? user : "", repo ? repo : "");
    }
    const char *rev = revision ? revision : "main";
    if (!hf_seg_ok(rev, strlen(rev))) {
        return llem_errf(eb, LLEM_EINVAL, "invalid revision '%.100s'", rev);
    }
    size_t fl = file ? strlen(file) : 0;
    if (fl < 6 || fl > 512 || strcasecmp(file + fl - 5, ".gguf") != 0) {
        return llem_errf(eb, LLEM_EINVAL, "invalid file '%.100s': want a path ending in .gguf",
                         file ? file : "");
    }
    for (const char *p = file; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!hf_seg_ok(p, n)) {
            return llem_errf(eb, LLEM_EINVAL, "invalid file '%.100s'", file);
        }
        p += n + (e ? 1 : 0);
        if (e && !*p) {
            return llem_errf(eb, LLEM_EINVAL, "invalid file '%.100s'", file);
        }
    }
    size_t len = strlen(user) + strlen(repo) + strlen(rev) + fl + 64;
    *url = llem_malloc(len);
    if (!*url) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    snprintf(*url, len, "https://huggingface.co/%s/%s/resolve/%s/%s", user, repo, rev, file);
    return LLEM_OK;
}

char *store_url_resolve(const char *base, const char *location)
{
    if (strncasecmp(location, "http://", 7) == 0 || strncasecmp(location, "https://", 8) == 0) {
        return llem_strdup(location);
    }
    if (location[0] != '/') {
        return NULL; // relative-path references are not used by registries
    }
    const char *sch = strstr(base, "://");
    if (!sch) {
        return NULL;
    }
    const char *host_end = strchr(sch + 3, '/');
    size_t hl = host_end ? (size_t)(host_end - base) : strlen(base);
    size_t len = hl + strlen(location) + 1;
    char *u = llem_malloc(len);
    if (u) {
        snprintf(u, len, "%.*s%s", (int)hl, base, location);
    }
    return u;
}

// ---- auth challenge -------------------------------------------------------------------------

void store_auth_deinit(struct store_auth_challenge *c)
{
    if (!c) {
        return;
    }
    llem_free(c->realm);
    llem_free(c->service);
    llem_free(c->scope);
    memset(c, 0, sizeof(*c));
}

// Parses `Bearer realm="...",service="...",scope="..."` (quoted or bare values).
enum llem_err store_auth_parse(const char *h, struct store_auth_challenge *c)
{
    memset(c, 0, sizeof(*c));
    while (*h == ' ') {
        h++;
    }
    size_t sl = strcspn(h, " ");
    if (sl == 0 || sl >= sizeof(c->scheme)) {
        return LLEM_EFORMAT;
    }
    memcpy(c->scheme, h, sl);
    c->scheme[sl] = '\0';
    const char *p = h + sl;
    while (*p) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (!*p) {
            break;
        }
        const char *eq = strchr(p, '=');
        if (!eq) {
            store_auth_deinit(c);
            return LLEM_EFORMAT;
        }
        size_t kl = (size_t)(eq - p);
        const char *v = eq + 1;
        size_t vl;
        const char *next;
        if (*v == '"') {
            v++;
            const char *q = strchr(v, '"');
            if (!q) {
                store_auth_deinit(c);
                return LLEM_EFORMAT;
            }
            vl = (size_t)(q - v);
            next = q + 1;
        } else {
            vl = strcspn(v, ",");
            next = v + vl;
        }
        char **slot = NULL;
        if (kl == 5 && strncasecmp(p, "realm", 5) == 0) {
            slot = &c->realm;
        } else if (kl == 7 && strncasecmp(p, "service", 7) == 0) {
            slot = &c->service;
        } else if (kl == 5 && strncasecmp(p, "scope", 5) == 0) {
            slot = &c->scope;
        }
        if (slot) {
            llem_free(*slot);
            *slot = llem_strndup(v, vl);
            if (!*slot) {
                store_auth_deinit(c);
                return LLEM_ENOMEM;
            }
        }
        p = next;
    }
    return LLEM_OK;
}

// ---- HTTP -----------------------------------------------------------------------------------

struct reg {
    struct store *s;
    const struct store_registry_opts *o;
    CURL *curl;
    char *base;
    char *token; // Bearer token once obtained
    char *basic; // "user:password" from LLEM_REGISTRY_AUTH, or NULL
};

struct body { // request body: memory or a file range; replayable (auth retry)
    const char *mem;
    int fd;
    uint64_t off, len, pos;
};

struct sink { // response body of a 2xx: memory (capped) or a file at an offset
    struct strbuf *sb;
    int fd;
    uint64_t off, written, limit; // file: bytes allowed in total (off + written <= limit)
    bool restart;                 // a 200 answered our Range request: start the file over
    struct reg *r;
    const char *digest;
    uint64_t total, last_report;
    bool canceled, overflow;
    enum llem_err io_err;
};

struct resp {
    long status;
    char location[2048];
    char www_auth[1024];
    char content_range[128];
    struct strbuf err; // body of a non-2xx answer (capped), for messages
};

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) { // a new response (redirect, 100)
        r->location[0] = r->www_auth[0] = r->content_range[0] = '\0';
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon) {
        return len;
    }
    size_t kl = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vl = len - kl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t')) {
        v++, vl--;
    }
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) {
        vl--;
    }
    char *dst = NULL;
    size_t cap = 0;
    if (kl == 8 && strncasecmp(buf, "Location", 8) == 0) {
        dst = r->location, cap = sizeof(r->location);
    } else if (kl == 16 && strncasecmp(buf, "WWW-Authenticate", 16) == 0) {
        dst = r->www_auth, cap = sizeof(r->www_auth);
    } else if (kl == 13 && strncasecmp(buf, "Content-Range", 13) == 0) {
        dst = r->content_range, cap = sizeof(r->content_range);
    }
    if (dst && vl < cap) {
        memcpy(dst, v, vl);
        dst[vl] = '\0';
    }
    return len;
}

static bool sink_report(struct sink *k, bool force)
{
    if (!k->r || !k->r->o || !k->r->o->progress || !k->digest) {
        return true;
    }
    uint64_t done = k->off + k->written;
    if (!force && done - k->last_report < REG_PROGRESS_STEP && done != k->total) {
        return true;
    }
    k->last_report = done;
    char st[64];
    snprintf(st, sizeof(st), "pulling %.12s", k->digest + 7);
    struct store_progress p = {st, k->digest, k->total, done};
    return k->r->o->progress(k->r->o->progress_ctx, &p);
}

struct wctx {
    struct sink *sink;
    struct resp *resp;
    CURL *curl;
};

static size_t on_write(char *buf, size_t size, size_t n, void *ud)
{
    struct wctx *w = ud;
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code >= 300 || !w->sink) {
        // Error bodies are only for messages: keep what fits, drop the rest.
        size_t room = w->resp->err.max_len - w->resp->err.len;
        strbuf_append(&w->resp->err, buf, len < room ? len : room);
        return len;
    }
    struct sink *k = w->sink;
    if (k->sb) {
        if (strbuf_append(k->sb, buf, len) != LLEM_OK) {
            k->overflow = true;
            return 0;
        }
        return len;
    }
    if (k->restart || (code == 200 && k->off > 0 && k->written == 0)) {
        // The server ignored Range: start the file over.
        if (ftruncate(k->fd, 0) != 0) {
            k->io_err = LLEM_EIO;
            return 0;
        }
        k->off = 0;
        k->restart = false;
    }
    if (k->off + k->written + len > k->limit) {
        k->overflow = true; // more bytes than the manifest says: stop now
        return 0;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t wr = pwrite(k->fd, buf + done, len - done, (off_t)(k->off + k->written + done));
        if (wr < 0 && errno == EINTR) {
            continue;
        }
        if (wr <= 0) {
            k->io_err = LLEM_EIO;
            return 0;
        }
        done += (size_t)wr;
    }
    k->written += len;
    if (!sink_report(k, false)) {
        k->canceled = true;
        return 0;
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t want = size * n;
    uint64_t left = b->len - b->pos;
    if (want > left) {
        want = (size_t)left;
    }
    if (want == 0) {
        return 0;
    }
    if (b->mem) {
        memcpy(buf, b->mem + b->pos, want);
    } else {
        ssize_t rd;
        do {
            rd = pread(b->fd, buf, want, (off_t)(b->off + b->pos));
        } while (rd < 0 && errno == EINTR);
        if (rd <= 0) {
            return CURL_READFUNC_ABORT;
        }
        want = (size_t)rd;
    }
    b->pos += want;
    return want;
}

// The registry's error text: errors[0].message of its JSON body, if any.
static void err_detail(const struct resp *rs, char *out, size_t cap)
{
    out[0] = '\0';
    cJSON *j = rs->err.len ? cJSON_ParseWithLength(rs->err.data, rs->err.len) : NULL;
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors");
    const cJSON *e0 = cJSON_IsArray(errs) ? cJSON_GetArrayItem(errs, 0) : NULL;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e0, "message");
    if (cJSON_IsString(msg)) {
        snprintf(out, cap, ": %.200s", msg->valuestring);
    }
    cJSON_Delete(j);
}

static enum llem_err fetch_token(struct reg *r, const char *challenge, struct llem_errbuf *eb);

// One request with one retry after an auth challenge. Transport errors are LLEM_EIO (or
// ECANCELED); HTTP statuses are left to the caller in rs->status.
static enum llem_err http_do(struct reg *r, const char *method, const char *url,
                             const char *const *hdrs, struct body *body, struct sink *sink,
                             struct resp *rs, struct llem_errbuf *eb)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        CURL *c = r->curl;
        curl_easy_reset(c);
        rs->status = 0;
        rs->location[0] = rs->www_auth[0] = rs->content_range[0] = '\0';
        strbuf_reset(&rs->err);
        struct curl_slist *hl = NULL, *t;
        char auth[4096];
        bool ok = true;
        for (size_t i = 0; hdrs && hdrs[i]; i++) {
            ok = ok && (t = curl_slist_append(hl, hdrs[i])) != NULL && (hl = t);
        }
        if (r->token) {
            snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->token);
            ok = ok && (t = curl_slist_append(hl, auth)) != NULL && (hl = t);
        }
        ok = ok && (t = curl_slist_append(hl, "Expect:")) != NULL && (hl = t);
        if (!ok) {
            curl_slist_free_all(hl);
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        struct wctx wc = {sink, rs, c};
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_USERAGENT, REG_UA);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, rs);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &wc);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); // stalled: < 1 B/s for 60 s
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, r->o && r->o->insecure ? "http,https" : "https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR,
                         r->o && r->o->insecure ? "http,https" : "https");
        if (r->o && r->o->insecure) {
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (strcmp(method, "GET") == 0) {
            curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); // blobs may redirect to a CDN
            curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        } else if (strcmp(method, "HEAD") == 0) {
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
            curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
            curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        } else {
            if (body) {
                body->pos = 0;
            }
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            static struct body empty;
            empty = (struct body){.fd = -1};
            curl_easy_setopt(c, CURLOPT_READDATA, body ? body : &empty);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(body ? body->len : 0));
        }
        CURLcode cc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
        curl_slist_free_all(hl);
        if (sink && sink->canceled) {
            return llem_errf(eb, LLEM_ECANCELED, "canceled");
        }
        if (sink && sink->overflow) {
            return llem_errf(eb, LLEM_EFORMAT,
                             "%s %s: the registry sent more bytes than "
                             "expected",
                             method, url);
        }
        if (sink && sink->io_err) {
            return llem_errf(eb, LLEM_EIO, "%s: writing the download failed", url);
        }
        if (cc != CURLE_OK) {
            return llem_errf(eb, LLEM_EIO, "%s %s: %s", method, url, curl_easy_strerror(cc));
        }
        if (rs->status == 401 && attempt == 0 && rs->www_auth[0]) {
            enum llem_err rc = fetch_token(r, rs->www_auth, eb);
            if (rc != LLEM_OK) {
                return rc;
            }
            if (sink && sink->sb) {
                strbuf_reset(sink->sb);
            }
            continue;
        }
        break;
    }
    return LLEM_OK;
}

static char *escape(CURL *c, const char *s)
{
    char *e = curl_easy_escape(c, s, 0);
    char *out = e ? llem_strdup(e) : NULL;
    curl_free(e);
    return out;
}

// Answers a WWW-Authenticate challenge: Bearer -> GET realm?service=&scope= (with Basic
// credentials from LLEM_REGISTRY_AUTH when set) -> {"token"|"access_token"}; Basic -> the
// credentials themselves (sent as a Basic header through the token slot's neighbour).
static enum llem_err fetch_token(struct reg *r, const char *challenge, struct llem_errbuf *eb)
{
    struct store_auth_challenge ch;
    if (store_auth_parse(challenge, &ch) != LLEM_OK) {
        return llem_errf(eb, LLEM_EIO, "registry sent a malformed auth challenge");
    }
    if (strcasecmp(ch.scheme, "Bearer") != 0 || !ch.realm) {
        store_auth_deinit(&ch);
        return llem_errf(eb, LLEM_EIO,
                         "registry requires '%s' authentication, which llem does "
                         "not support (only Bearer tokens)",
                         challenge);
    }
    if (strncasecmp(ch.realm, "https://", 8) != 0 &&
        !(r->o && r->o->insecure && strncasecmp(ch.realm, "http://", 7) == 0)) {
        store_auth_deinit(&ch);
        return llem_errf(eb, LLEM_EIO, "auth realm is not https (use --insecure to allow)");
    }
    char *svc = ch.service ? escape(r->curl, ch.service) : NULL;
    char *scp = ch.scope ? escape(r->curl, ch.scope) : NULL;
    struct strbuf ub;
    strbuf_init(&ub, 16384);
    enum llem_err rc = (ch.service && !svc) || (ch.scope && !scp) ? LLEM_ENOMEM : LLEM_OK;
    if (rc == LLEM_OK) {
        rc = strbuf_appendf(&ub, "%s%c", ch.realm, strchr(ch.realm, '?') ? '&' : '?');
    }
    if (rc == LLEM_OK && svc) {
        rc = strbuf_appendf(&ub, "service=%s&", svc);
    }
    if (rc == LLEM_OK && scp) {
        rc = strbuf_appendf(&ub, "scope=%s&", scp);
    }
    if (rc == LLEM_OK) {
        rc = strbuf_appendf(&ub, "ts=%lld", (long long)time(NULL));
    }
    llem_free(svc);
    llem_free(scp);
    store_auth_deinit(&ch);
    char *url = rc == LLEM_OK ? strbuf_take(&ub) : NULL;
    strbuf_deinit(&ub);
    if (!url) {
        return llem_errf(eb, rc == LLEM_ELIMIT ? LLEM_EIO : LLEM_ENOMEM,
                         "cannot build the auth token URL");
    }
    struct strbuf sb;
    strbuf_init(&sb, REG_SMALL_BODY_MAX);
    struct sink k = {.sb = &sb, .fd = -1};
    struct resp rs = {0};
    strbuf_init(&rs.err, 4096);
    llem_free(r->token);
    r->token = NULL;
    CURL *c = r->curl;
    curl_easy_reset(c);
    struct wctx wc = {&k, &rs, c};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, REG_UA);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &wc);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    if (r->o && r->o->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (r->basic) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, r->basic);
    }
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK || code != 200) {
        rc = llem_errf(eb, LLEM_EIO, "auth token request failed (%s)",
                       cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP error");
        if (cc == CURLE_OK) {
            llem_errf(eb, LLEM_EIO, "auth token request to %.200s: HTTP %ld", url, code);
        }
    } else {
        cJSON *j = cJSON_ParseWithLength(sb.data ? sb.data : "", sb.len);
        const cJSON *tk = cJSON_GetObjectItemCaseSensitive(j, "token");
        if (!cJSON_IsString(tk)) {
            tk = cJSON_GetObjectItemCaseSensitive(j, "access_token");
        }
        if (cJSON_IsString(tk) && strlen(tk->valuestring) < 3500) {
            r->token = llem_strdup(tk->valuestring);
            rc = r->token ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "out of memory");
        } else {
            rc = llem_errf(eb, LLEM_EIO, "auth token response has no token");
        }
        cJSON_Delete(j);
    }
    llem_free(url);
    strbuf_deinit(&sb);
    strbuf_deinit(&rs.err);
    return rc;
}

static enum llem_err status_err(const struct resp *rs, const char *what, const char *url,
                                struct llem_errbuf *eb)
{
    char d[256];
    err_detail(rs, d, sizeof(d));
    return llem_errf(eb, rs->status == 404 ? LLEM_ENOTFOUND : LLEM_EIO, "%s %s: HTTP %ld%s", what,
                     url, rs->status, d);
}

static enum llem_err reg_open(struct reg *r, struct store *s, const struct store_name *n,
                              const struct store_registry_opts *o, struct llem_errbuf *eb)
{
    memset(r, 0, sizeof(*r));
    r->s = s;
    r->o = o;
    pthread_once(&curl_once, curl_init_once);
    enum llem_err rc = base_url(n, o, &r->base, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    if (strncasecmp(r->base, "http://", 7) == 0 && !(o && o->insecure)) {
        return llem_errf(eb, LLEM_EINVAL, "plain-HTTP registry needs --insecure");
    }
    const char *auth = getenv("LLEM_REGISTRY_AUTH");
    if (auth && *auth && !(r->basic = llem_strdup(auth))) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    r->curl = curl_easy_init();
    return r->curl ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "cannot start libcurl");
}

static void reg_close(struct reg *r)
{
    if (r->curl) {
        curl_easy_cleanup(r->curl);
    }
    llem_free(r->base);
    llem_free(r->token);
    if (r->basic) {
        memset(r->basic, 0, strlen(r->basic));
        llem_free(r->basic);
    }
}

static bool report(struct reg *r, const char *status, const char *digest, uint64_t total,
                   uint64_t done)
{
    if (!r->o || !r->o->progress) {
        return true;
    }
    struct store_progress p = {status, digest, total, done};
    return r->o->progress(r->o->progress_ctx, &p);
}

// ---- pull ---------------------------------------------------------------------------------

static enum llem_err fsync_dir_of(const char *path)
{
    char dir[STORE_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *sl = strrchr(dir, '/');
    if (sl) {
        *sl = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return LLEM_EIO;
    }
    int r = fsync(fd);
    close(fd);
    return r == 0 ? LLEM_OK : LLEM_EIO;
}

// Downloads one blob into blobs/sha256-<hex>-partial (resuming what is there), verifies size
// and digest, then renames it to its name. A mismatch deletes the partial file.
static enum llem_err pull_blob(struct reg *r, const struct store_name *n,
                               const struct store_layer *l, struct llem_errbuf *eb)
{
    char *final = store_blob_path_in(r->s->root, l->digest);
    size_t pl = final ? strlen(final) + 16 : 0;
    char *partial = final ? llem_malloc(pl) : NULL;
    char *url = url_join(r->base, n, "blobs", l->digest);
    char st[64];
    snprintf(st, sizeof(st), "pulling %.12s", l->digest + 7);
    enum llem_err rc = LLEM_OK;
    if (!final || !partial || !url) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(partial, pl, "%s-partial", final);
    struct stat sst;
    if (stat(final, &sst) == 0 && S_ISREG(sst.st_mode) && (uint64_t)sst.st_size == l->size) {
        report(r, st, l->digest, l->size, l->size);
        goto out;
    }
    for (int attempt = 0; attempt <= REG_RETRIES; attempt++) {
        int fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            rc = llem_errf(eb, LLEM_EIO, "%s: %s", partial, strerror(errno));
            goto out;
        }
        struct stat fst;
        uint64_t have = fstat(fd, &fst) == 0 ? (uint64_t)fst.st_size : 0;
        if (have > l->size && ftruncate(fd, 0) == 0) {
            have = 0;
        }
        struct sink k = {
            .fd = fd, .off = have, .limit = l->size, .r = r, .digest = l->digest, .total = l->size};
        if (!report(r, st, l->digest, l->size, have)) {
            close(fd);
            rc = llem_errf(eb, LLEM_ECANCELED, "canceled");
            goto out;
        }
        rc = LLEM_OK;
        if (have < l->size) {
            char range[64];
            snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)have);
            const char *hdrs[] = {have > 0 ? range : NULL, NULL};
            struct resp rs = {0};
            strbuf_init(&rs.err, 4096);
            rc = http_do(r, "GET", url, hdrs, NULL, &k, &rs, eb);
            if (rc == LLEM_OK && rs.status == 416) {
                // Our partial file is not a prefix the server knows: start over next attempt.
                if (ftruncate(fd, 0) != 0) {
                    log_warn("store: cannot truncate %s", partial);
                }
                rc = llem_errf(eb, LLEM_EIO, "GET %s: range not satisfiable", url);
            } else if (rc == LLEM_OK && rs.status != 200 && rs.status != 206) {
                rc = status_err(&rs, "GET", url, eb);
                strbuf_deinit(&rs.err);
                close(fd);
                goto out; // an HTTP error is an answer: retrying will not change it
            } else if (rc == LLEM_OK && rs.status == 206 && have > 0) {
                unsigned long long a = 0;
                if (sscanf(rs.content_range, "bytes %llu-", &a) != 1 || a != have) {
                    rc = llem_errf(eb, LLEM_EFORMAT, "GET %s: unexpected Content-Range '%s'", url,
                                   rs.content_range);
                }
            }
            strbuf_deinit(&rs.err);
        }
        if (rc == LLEM_OK && fsync(fd) != 0) {
            rc = llem_errf(eb, LLEM_EIO, "%s: fsync: %s", partial, strerror(errno));
        }
        close(fd);
        if (rc == LLEM_OK || rc == LLEM_ECANCELED || rc == LLEM_EFORMAT || rc == LLEM_ENOMEM) {
            break;
        }
        if (attempt < REG_RETRIES) {
            log_warn("store: %s; retrying (%d/%d)", eb ? eb->msg : "download failed", attempt + 1,
                     REG_RETRIES);
            struct timespec ts = {0, 500000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (rc != LLEM_OK) {
        goto out; // the partial file stays for a later resume (EFORMAT aside)
    }
    report(r, "verifying sha256 digest", l->digest, l->size, l->size);
    char got[STORE_DIGEST_BYTES];
    uint64_t size = 0;
    rc = store_hash_file(partial, got, &size, eb);
    if (rc == LLEM_OK && (size != l->size || strcmp(got, l->digest) != 0)) {
        unlink(partial);
        rc = llem_errf(eb, LLEM_EFORMAT,
                       "digest mismatch: blob %s from the registry has %s "
                       "(%llu bytes, expected %llu); nothing was stored",
                       l->digest, got, (unsigned long long)size, (unsigned long long)l->size);
    }
    if (rc == LLEM_OK) {
        if (rename(partial, final) != 0) {
            rc = llem_errf(eb, LLEM_EIO, "rename %s: %s", partial, strerror(errno));
        } else if (fsync_dir_of(final) != LLEM_OK) {
            rc = llem_errf(eb, LLEM_EIO, "fsync of %s's folder failed", final);
        }
    }
out:
    if (rc == LLEM_EFORMAT && partial) {
        unlink(partial); // bytes that cannot be right are not worth resuming
    }
    llem_free(final);
    llem_free(partial);
    llem_free(url);
    return rc;
}

static enum llem_err hold_all(struct store *s, const struct store_manifest *m, size_t *held)
{
    *held = 0;
    for (size_t i = 0; i <= m->n_layers; i++) {
        const char *d = i < m->n_layers ? m->layers[i].digest : m->config.digest;
        if (store_pending_add(s, d) != LLEM_OK) {
            return LLEM_ENOMEM;
        }
        (*held)++;
    }
    return LLEM_OK;
}

static void release_all(struct store *s, const struct store_manifest *m, size_t held)
{
    for (size_t i = 0; i < held; i++) {
        store_pending_remove(s, i < m->n_layers ? m->layers[i].digest : m->config.digest);
    }
}

enum llem_err store_pull(struct store *s, const char *name, const struct store_registry_opts *o,
                         struct llem_errbuf *eb)
{
    struct store_name n;
    enum llem_err rc = store_name_parse(name, &n, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct reg r;
    rc = reg_open(&r, s, &n, o, eb);
    if (rc != LLEM_OK) {
        reg_close(&r);
        return rc;
    }
    struct store_manifest m = {0};
    struct strbuf body;
    strbuf_init(&body, STORE_MANIFEST_MAX_BYTES);
    size_t held = 0;
    char *url = url_join(r.base, &n, "manifests", n.tag);
    if (!url) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
        goto out;
    }
    if (!report(&r, "pulling manifest", NULL, 0, 0)) {
        rc = llem_errf(eb, LLEM_ECANCELED, "canceled");
        goto out;
    }
    static const char *const accept[] = {
        "Accept: " STORE_MT_MANIFEST ", application/vnd.oci.image.manifest.v1+json", NULL};
    struct sink k = {.sb = &body, .fd = -1};
    struct resp rs = {0};
    strbuf_init(&rs.err, 4096);
    rc = http_do(&r, "GET", url, accept, NULL, &k, &rs, eb);
    if (rc == LLEM_EFORMAT) {
        rc = llem_errf(eb, LLEM_ELIMIT, "manifest at %s is larger than %u bytes", url,
                       STORE_MANIFEST_MAX_BYTES);
    } else if (rc == LLEM_OK && rs.status != 200) {
        rc = status_err(&rs, "GET", url, eb);
        if (rc == LLEM_ENOTFOUND) {
            char disp[512];
            store_name_display(&n, disp, sizeof(disp));
            llem_errf(eb, rc, "pull model manifest: '%s' not found on %s", disp, r.base);
        }
    }
    strbuf_deinit(&rs.err);
    if (rc == LLEM_OK) {
        rc = store_manifest_parse(body.data ? body.data : "", body.len, &m, eb);
    }
    if (rc == LLEM_OK && hold_all(s, &m, &held) != LLEM_OK) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == LLEM_OK && i <= m.n_layers; i++) {
        rc = pull_blob(&r, &n, i < m.n_layers ? &m.layers[i] : &m.config, eb);
    }
    if (rc == LLEM_OK && !report(&r, "writing manifest", NULL, 0, 0)) {
        rc = llem_errf(eb, LLEM_ECANCELED, "canceled");
    }
    if (rc == LLEM_OK) {
        pthread_mutex_lock(&s->lock);
        rc = store_manifest_save_raw(s, &n, body.data, body.len, eb);
        pthread_mutex_unlock(&s->lock);
    }
    release_all(s, &m, held);
    if (rc == LLEM_OK && !s->no_prune) {
        struct llem_errbuf peb;
        store_prune(s, NULL, &peb); // layers only the replaced manifest used
    }
    if (rc == LLEM_OK) {
        report(&r, "success", NULL, 0, 0);
    }
out:
    llem_free(url);
    strbuf_deinit(&body);
    store_manifest_deinit(&m);
    reg_close(&r);
    return rc;
}

// ---- push -----------------------------------------------------------------------------------

static uint64_t chunk_size(void)
{
    const char *e = getenv("LLEM_PUSH_CHUNK"); // tests: force several PATCH requests
    if (e && *e) {
        char *end;
        unsigned long long v = strtoull(e, &end, 10);
        if (*end == '\0' && v >= 1024 && v <= (1ull << 32)) {
            return v;
        }
    }
    return REG_CHUNK_DEFAULT;
}

// Appends "digest=<d>" to an upload location (which may already carry a query).
static char *with_digest(const char *loc, const char *digest)
{
    size_t len = strlen(loc) + strlen(digest) + 16;
    char *u = llem_malloc(len);
    if (u) {
        snprintf(u, len, "%s%cdigest=%s", loc, strchr(loc, '?') ? '&' : '?', digest);
    }
    return u;
}

static enum llem_err push_blob(struct reg *r, const struct store_name *n,
                               const struct store_layer *l, struct llem_errbuf *eb)
{
    char st[64];
    snprintf(st, sizeof(st), "pushing %.12s", l->digest + 7);
    char *url = url_join(r->base, n, "blobs", l->digest);
    char *path = NULL, *loc = NULL;
    int fd = -1;
    struct resp rs = {0};
    strbuf_init(&rs.err, 4096);
    enum llem_err rc = url ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "out of memory");
    if (rc == LLEM_OK) {
        rc = http_do(r, "HEAD", url, NULL, NULL, NULL, &rs, eb);
    }
    if (rc == LLEM_OK && rs.status == 200) {
        report(r, st, l->digest, l->size, l->size);
        goto out;
    }
    if (rc == LLEM_OK && rs.status != 404) {
        rc = status_err(&rs, "HEAD", url, eb);
    }
    if (rc == LLEM_OK) {
        rc = store_blob_path(r->s, l->digest, &path, eb);
    }
    uint64_t size = 0;
    if (rc == LLEM_OK) {
        rc = fs_open_read(path, &fd, &size, eb);
    }
    if (rc == LLEM_OK && size != l->size) {
        rc = llem_errf(eb, LLEM_EFORMAT, "blob %s is %llu bytes, the manifest says %llu", l->digest,
                       (unsigned long long)size, (unsigned long long)l->size);
    }
    if (rc != LLEM_OK) {
        goto out;
    }
    // Start an upload session.
    llem_free(url);
    url = url_join(r->base, n, "blobs", NULL);
    size_t ul = url ? strlen(url) + 16 : 0;
    char *post = url ? llem_malloc(ul) : NULL;
    if (!post) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(post, ul, "%s/uploads/", url);
    rc = http_do(r, "POST", post, NULL, NULL, NULL, &rs, eb);
    if (rc == LLEM_OK && rs.status != 202) {
        rc = status_err(&rs, "POST", post, eb);
    }
    if (rc == LLEM_OK && !(loc = store_url_resolve(r->base, rs.location))) {
        rc = llem_errf(eb, LLEM_EIO, "POST %s: no usable Location header", post);
    }
    llem_free(post);
    uint64_t chunk = chunk_size(), off = 0;
    report(r, st, l->digest, l->size, 0);
    // Chunked: PATCH each piece with Content-Range; the last (or only, when small) goes with
    // the closing PUT ("monolithic" for blobs below one chunk).
    while (rc == LLEM_OK && size - off > chunk) {
        struct body b = {.fd = fd, .off = off, .len = chunk};
        char cr[96];
        snprintf(cr, sizeof(cr), "Content-Range: %llu-%llu", (unsigned long long)off,
                 (unsigned long long)(off + chunk - 1));
        const char *hdrs[] = {"Content-Type: application/octet-stream", cr, NULL};
        rc = http_do(r, "PATCH", loc, hdrs, &b, NULL, &rs, eb);
        if (rc == LLEM_OK && rs.status != 202) {
            rc = status_err(&rs, "PATCH", loc, eb);
        }
        if (rc == LLEM_OK && rs.location[0]) {
            char *nl = store_url_resolve(r->base, rs.location);
            if (!nl) {
                rc = llem_errf(eb, LLEM_EIO, "PATCH %s: unusable Location header", loc);
            } else {
                llem_free(loc);
                loc = nl;
            }
        }
        off += chunk;
        if (rc == LLEM_OK && !report(r, st, l->digest, l->size, off)) {
            rc = llem_errf(eb, LLEM_ECANCELED, "canceled");
        }
    }
    if (rc == LLEM_OK) {
        char *put = with_digest(loc, l->digest);
        struct body b = {.fd = fd, .off = off, .len = size - off};
        const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
        rc = put ? http_do(r, "PUT", put, hdrs, &b, NULL, &rs, eb)
                 : llem_errf(eb, LLEM_ENOMEM, "out of memory");
        if (rc == LLEM_OK && rs.status != 201) {
            rc = status_err(&rs, "PUT", put, eb);
        }
        llem_free(put);
    }
    if (rc == LLEM_OK) {
        report(r, st, l->digest, l->size, l->size);
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    strbuf_deinit(&rs.err);
    llem_free(url);
    llem_free(path);
    llem_free(loc);
    return rc;
}

enum llem_err store_push(struct store *s, const char *name, const struct store_registry_opts *o,
                         struct llem_errbuf *eb)
{
    struct store_name n;
    enum llem_err rc = store_name_parse(name, &n, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct store_model *sm = NULL;
    rc = store_resolve(s, name, &sm, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct reg r;
    struct store_manifest m = {0};
    char *url = NULL;
    rc = reg_open(&r, s, &n, o, eb);
    if (rc == LLEM_OK) {
        report(&r, "retrieving manifest", NULL, 0, 0);
        rc = store_manifest_parse(sm->manifest_json, strlen(sm->manifest_json), &m, eb);
    }
    for (size_t i = 0; rc == LLEM_OK && i <= m.n_layers; i++) {
        rc = push_blob(&r, &n, i < m.n_layers ? &m.layers[i] : &m.config, eb);
    }
    if (rc == LLEM_OK && !report(&r, "pushing manifest", NULL, 0, 0)) {
        rc = llem_errf(eb, LLEM_ECANCELED, "canceled");
    }
    if (rc == LLEM_OK) {
        url = url_join(r.base, &n, "manifests", n.tag);
        struct body b = {.mem = sm->manifest_json, .fd = -1, .len = strlen(sm->manifest_json)};
        const char *hdrs[] = {"Content-Type: " STORE_MT_MANIFEST, NULL};
        struct resp rs = {0};
        strbuf_init(&rs.err, 4096);
        rc = url ? http_do(&r, "PUT", url, hdrs, &b, NULL, &rs, eb)
                 : llem_errf(eb, LLEM_ENOMEM, "out of memory");
        if (rc == LLEM_OK && rs.status != 201 && rs.status != 200) {
            rc = status_err(&rs, "PUT", url, eb);
        }
        strbuf_deinit(&rs.err);
    }
    if (rc == LLEM_OK) {
        report(&r, "success", NULL, 0, 0);
    }
    llem_free(url);
    store_manifest_deinit(&m);
    store_model_free(sm);
    reg_close(&r);
    return rc;
}
