// server/http.c: the libmicrohttpd transport. One thread per connection; each request gets a
// struct http_req (allocated when its request line arrives, for the watchdog), is checked
// against the Host filter (DNS rebinding) and Ollama's CORS rules, has its body collected up
// to the cap (413 from Content-Length before any body is read; chunked bodies counted), and is
// then dispatched through the route table. Entry points: http_start (server.c), http_reply*.
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "server/server_int.h"

// ---- routes -----------------------------------------------------------------------------------

struct route_def {
    const char *method; // "GET" also serves HEAD
    const char *path;
    bool prefix;        // path is a prefix; the rest goes to http_req.tail
    enum srv_route route;
    srv_handler_fn fn;
};

static const struct route_def routes[] = {
    {"GET", "/", false, ROUTE_ROOT, api_root},
    {"GET", "/api/version", false, ROUTE_VERSION, api_version},
    {"POST", "/api/generate", false, ROUTE_GENERATE, api_generate},
    {"POST", "/api/chat", false, ROUTE_CHAT, api_chat},
    {"POST", "/api/embed", false, ROUTE_EMBED, api_embed},
    {"POST", "/api/embeddings", false, ROUTE_EMBEDDINGS, api_embed},
    {"GET", "/api/tags", false, ROUTE_TAGS, api_tags},
    {"POST", "/api/show", false, ROUTE_SHOW, api_show},
    {"GET", "/api/ps", false, ROUTE_PS, api_ps},
    {"POST", "/api/copy", false, ROUTE_COPY, api_copy},
    {"DELETE", "/api/delete", false, ROUTE_DELETE, api_delete},
    {"POST", "/api/create", false, ROUTE_CREATE, api_create},
    {"GET", "/api/blobs/", true, ROUTE_BLOBS, api_blobs},
    {"POST", "/api/blobs/", true, ROUTE_BLOBS, api_blobs},
    {"POST", "/api/pull", false, ROUTE_PULL, api_pull},
    {"POST", "/api/push", false, ROUTE_PUSH, api_push},
    {"POST", "/v1/chat/completions", false, ROUTE_OAI_CHAT, api_oai_chat},
    {"POST", "/v1/completions", false, ROUTE_OAI_COMPLETIONS, api_oai_completions},
    {"GET", "/v1/models", false, ROUTE_OAI_MODELS, api_oai_models},
    {"GET", "/v1/models/", true, ROUTE_OAI_MODEL, api_oai_model},
    {"POST", "/v1/embeddings", false, ROUTE_OAI_EMBEDDINGS, api_oai_embeddings},
    {"GET", "/metrics", false, ROUTE_METRICS, api_metrics},
};

static bool method_is(const char *m, const char *want)
{
    return !strcmp(m, want) || (!strcmp(want, "GET") && !strcmp(m, "HEAD"));
}

// Finds the route; *path_known says the path exists under another method (405).
static const struct route_def *route_find(const char *method, const char *url, bool *path_known,
                                          const char **tail)
{
    *path_known = false;
    for (size_t i = 0; i < LLEM_ARRAY_LEN(routes); i++) {
        const struct route_def *d = &routes[i];
        size_t n = strlen(d->path);
        bool match = d->prefix ? (!strncmp(url, d->path, n) && url[n]) : !strcmp(url, d->path);
        if (!match) {
            continue;
        }
        *path_known = true;
        if (method_is(method, d->method)) {
            *tail = d->prefix ? url + n : "";
            return d;
        }
    }
    return NULL;
}

// ---- host filter and CORS -------------------------------------------------------------------

static bool ends_with_ci(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

// Ollama's allowedHost: loopback, private or unspecified IPs, localhost, the machine's name,
// and *.localhost / *.local / *.internal. An absent Host (HTTP/1.0) is allowed.
static bool host_allowed(const char *hosthdr)
{
    if (!hosthdr || !*hosthdr) {
        return true;
    }
    char h[256];
    size_t n = strlen(hosthdr);
    if (n >= sizeof h) {
        return false;
    }
    memcpy(h, hosthdr, n + 1);
    if (h[0] == '[') {
        char *close = strchr(h, ']');
        if (!close) {
            return false;
        }
        *close = '\0';
        memmove(h, h + 1, strlen(h + 1) + 1);
    } else {
        char *colon = strchr(h, ':');
        if (colon && strrchr(h, ':') == colon) {
            *colon = '\0';
        }
    }
    if (!strcasecmp(h, "localhost") || ends_with_ci(h, ".localhost") ||
        ends_with_ci(h, ".local") || ends_with_ci(h, ".internal")) {
        return true;
    }
    char me[256];
    if (gethostname(me, sizeof me) == 0) {
        me[sizeof me - 1] = '\0';
        if (!strcasecmp(h, me)) {
            return true;
        }
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, h, &a4) == 1) {
        uint32_t a = ntohl(a4.s_addr);
        return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 20) == 0xAC1 ||
               (a >> 16) == 0xC0A8 || a == 0;
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, h, &a6) == 1) {
        static const uint8_t zero[16];
        bool loop = !memcmp(a6.s6_addr, zero, 15) && a6.s6_addr[15] == 1;
        bool unspec = !memcmp(a6.s6_addr, zero, 16);
        bool ula = (a6.s6_addr[0] & 0xFE) == 0xFC;
        return loop || unspec || ula;
    }
    return false;
}

// '*' matches any run of characters (gin-contrib/cors wildcards).
static bool glob_match(const char *pat, const char *s)
{
    while (*pat) {
        if (*pat == '*') {
            pat++;
            for (const char *t = s;; t++) {
                if (glob_match(pat, t)) {
                    return true;
                }
                if (!*t) {
                    return false;
                }
            }
        }
        if (*pat != *s) {
            return false;
        }
        pat++;
        s++;
    }
    return *s == '\0';
}

static const char *const default_origins[] = {
    "http://localhost",   "https://localhost",   "http://localhost:*",   "https://localhost:*",
    "http://127.0.0.1",   "https://127.0.0.1",   "http://127.0.0.1:*",   "https://127.0.0.1:*",
    "http://0.0.0.0",     "https://0.0.0.0",     "http://0.0.0.0:*",     "https://0.0.0.0:*",
    "app://*",            "file://*",            "tauri://*",            "vscode-webview://*",
    "vscode-file://*",
};

static bool origin_allowed(const struct srv *s, const char *origin)
{
    for (size_t i = 0; i < LLEM_ARRAY_LEN(default_origins); i++) {
        if (glob_match(default_origins[i], origin)) {
            return true;
        }
    }
    const char *p = s->p.origins;
    while (*p) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n > 0 && p[n - 1] == ' ') {
            n--;
        }
        char pat[512];
        if (n > 0 && n < sizeof pat) {
            memcpy(pat, p, n);
            pat[n] = '\0';
            if (glob_match(pat, origin)) {
                return true;
            }
        }
        p += e ? (size_t)(e - p) + 1 : strlen(p);
    }
    return false;
}

void http_add_cors(const struct http_req *r, struct MHD_Response *resp)
{
    if (r->origin[0]) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
}

// ---- responses ----------------------------------------------------------------------------------

const char *http_header(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

enum MHD_Result http_reply(struct http_req *r, int status, const char *ctype, const char *body,
                           size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        return MHD_NO;
    }
    if (ctype) {
        MHD_add_response_header(resp, "Content-Type", ctype);
    }
    http_add_cors(r, resp);
    r->status = status;
    enum MHD_Result res = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return res;
}

enum MHD_Result http_reply_json(struct http_req *r, int status, const struct strbuf *sb)
{
    return http_reply(r, status, "application/json; charset=utf-8", strbuf_cstr(sb), sb->len);
}

enum MHD_Result http_reply_cjson(struct http_req *r, int status, const cJSON *obj)
{
    char *txt = cJSON_PrintUnformatted(obj);
    if (!txt) {
        return http_reply_error(r, 500, "out of memory");
    }
    enum MHD_Result res =
        http_reply(r, status, "application/json; charset=utf-8", txt, strlen(txt));
    cJSON_free(txt);
    return res;
}

enum MHD_Result http_reply_error(struct http_req *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct strbuf sb;
    strbuf_init(&sb, 4096);
    srv_error_json(&sb, r->openai, status, msg);
    enum MHD_Result res = http_reply_json(r, status, &sb);
    strbuf_deinit(&sb);
    return res;
}

bool http_client_gone(const struct http_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) {
        return false;
    }
    struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&pfd, 1, 0) <= 0) {
        return false;
    }
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

// ---- MHD callbacks --------------------------------------------------------------------------

static void conn_phase(struct http_req *r, enum conn_phase ph)
{
    if (r && r->sc) {
        atomic_store(&r->sc->phase_ns, time_now_ns());
        atomic_store(&r->sc->phase, ph);
    }
}

static struct srv_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct srv *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct srv_conn *sc = llem_calloc(1, sizeof *sc);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!sc || !ci) {
            llem_free(sc);
            return;
        }
        sc->fd = ci->connect_fd;
        atomic_store(&sc->phase, CONN_FRESH);
        atomic_store(&sc->phase_ns, time_now_ns());
        pthread_mutex_lock(&s->conn_mu);
        sc->next = s->conns;
        if (s->conns) {
            s->conns->prev = sc;
        }
        s->conns = sc;
        pthread_mutex_unlock(&s->conn_mu);
        *socket_context = sc;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct srv_conn *sc = *socket_context;
        if (!sc) {
            return;
        }
        pthread_mutex_lock(&s->conn_mu);
        if (sc->prev) {
            sc->prev->next = sc->next;
        } else {
            s->conns = sc->next;
        }
        if (sc->next) {
            sc->next->prev = sc->prev;
        }
        pthread_mutex_unlock(&s->conn_mu);
        llem_free(sc);
        *socket_context = NULL;
    }
}

// Called when the request line has arrived: from here on the request must complete within
// request_timeout (the watchdog enforces it).
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)uri;
    struct http_req *r = llem_calloc(1, sizeof *r);
    if (!r) {
        return NULL;
    }
    r->conn = c;
    r->sc = conn_of(c);
    r->t_start_ns = time_now_ns();
    conn_phase(r, CONN_REQUEST);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct srv *s = cls;
    (void)c;
    struct http_req *r = *con_cls;
    if (!r) {
        return;
    }
    int status = r->status;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && status == 0) {
        status = 499;
    }
    if (r->method) { // a request that never reached the handler stage is not counted
        srv_metrics_count(s, r->route, status);
        log_info("serve: %d %8.3fs %s %s", status,
                 (double)(time_now_ns() - r->t_start_ns) * 1e-9, r->method, r->url);
    }
    conn_phase(r, CONN_IDLE);
    api_blobs_end(r);
    strbuf_deinit(&r->body);
    llem_free(r);
    *con_cls = NULL;
}

static enum MHD_Result preflight(struct http_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        return MHD_NO;
    }
    http_add_cors(r, resp);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                            "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    const char *want = http_header(r, "Access-Control-Request-Headers");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            want ? want
                                 : "Authorization, Content-Type, User-Agent, Accept, "
                                   "X-Requested-With, OpenAI-Beta");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "43200");
    r->status = 204;
    enum MHD_Result res = MHD_queue_response(r->conn, 204, resp);
    MHD_destroy_response(resp);
    return res;
}

// First call for a request: route, Host filter, CORS, Content-Length cap.
static enum MHD_Result on_first_call(struct srv *s, struct http_req *r, const char *url,
                                     const char *method)
{
    r->method = method;
    r->url = url;
    r->openai = !strncmp(url, "/v1/", 4);
    strbuf_init(&r->body, s->p.max_body > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)s->p.max_body);
    bool known = false;
    const char *tail = "";
    const struct route_def *d = route_find(method, url, &known, &tail);
    r->route = d ? d->route : ROUTE_OTHER;
    if (s->loopback && !host_allowed(http_header(r, MHD_HTTP_HEADER_HOST))) {
        return http_reply_error(r, 403, "host not allowed");
    }
    const char *origin = http_header(r, "Origin");
    if (origin && *origin) {
        if (!origin_allowed(s, origin)) {
            return http_reply_error(r, 403, "origin not allowed");
        }
        snprintf(r->origin, sizeof r->origin, "%s", origin);
    }
    if (!strcmp(method, "OPTIONS")) {
        return preflight(r);
    }
    if (!d) {
        if (known) {
            return http_reply_error(r, 405, "method %s not allowed on %s", method, url);
        }
        return http_reply_error(r, 404, "404 page not found: %s %s", method, url);
    }
    if (strlen(tail) >= sizeof r->tail) {
        return http_reply_error(r, 400, "path too long");
    }
    snprintf(r->tail, sizeof r->tail, "%s", tail);
    r->handler = d->fn;
    if (d->route == ROUTE_BLOBS && !strcmp(method, "POST")) {
        // A blob upload streams into the store (no body cap); see api_store.c.
        enum MHD_Result res = MHD_YES;
        return api_blobs_begin(s, r, &res) ? MHD_YES : res;
    }
    const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || *end || cl[0] == '-') {
            return http_reply_error(r, 400, "bad Content-Length");
        }
        if (n > s->p.max_body) {
            return http_reply_error(r, 413, "request body too large: %llu bytes (limit %llu, "
                                    "LLEM_MAX_BODY)", n, (unsigned long long)s->p.max_body);
        }
    }
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    struct srv *s = cls;
    (void)version;
    struct http_req *r = *con_cls;
    if (!r) {
        r = on_uri(s, url, c);
        if (!r) {
            return MHD_NO;
        }
        *con_cls = r;
    }
    if (!r->method) {
        return on_first_call(s, r, url, method);
    }
    if (*upload_data_size > 0 && r->blob_upload) {
        api_blobs_data(r, upload_data, *upload_data_size);
        r->blob_since += *upload_data_size;
        *upload_data_size = 0;
        if (r->blob_since >= ((uint64_t)1 << 20)) { // progress: restart the watchdog's clock
            r->blob_since = 0;
            conn_phase(r, CONN_REQUEST);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        r->body_seen += n;
        if (!r->too_large && strbuf_append(&r->body, upload_data, n) != LLEM_OK) {
            r->too_large = true; // chunked body over the cap (or out of memory)
            strbuf_deinit(&r->body);
        }
        *upload_data_size = 0;
        // Drain a chunked body up to 4x the cap to answer 413 cleanly, then give up.
        if (r->too_large && r->body_seen / 4 > s->p.max_body) {
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (r->started) {
        return MHD_YES;
    }
    r->started = true;
    if (r->too_large) {
        return http_reply_error(r, 413, "request body too large: more than %llu bytes "
                                "(LLEM_MAX_BODY)", (unsigned long long)s->p.max_body);
    }
    conn_phase(r, CONN_HANDLING);
    if (atomic_load(&s->stopping)) {
        return http_reply_error(r, 503, "server is shutting down");
    }
    return r->handler(s, r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n') {
        line[--n] = '\0';
    }
    log_debug("serve: http: %s", line);
}

enum llem_err http_start(struct srv *s, struct llem_errbuf *eb); // called by server.c

enum llem_err http_start(struct srv *s, struct llem_errbuf *eb)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)s->p.port);
    int gai = getaddrinfo(s->p.host, portstr, &hints, &ai);
    if (gai != 0 || !ai) {
        return llem_errf(eb, LLEM_EINVAL, "cannot resolve host '%s': %s", s->p.host,
                         gai_strerror(gai));
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    s->mhd = MHD_start_daemon(
        flags, s->p.port, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_TIMEOUT, 0u, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->p.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(128u << 10), MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        // No LISTENING_ADDRESS_REUSE: its SO_REUSEPORT would let a second server share a port
        // that is in use; MHD's default (SO_REUSEADDR only) refuses it and still restarts fast.
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->mhd) {
        return llem_errf(eb, LLEM_EIO, "cannot listen on %s:%u (address in use?)", s->p.host,
                         (unsigned)s->p.port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->p.port;
    return LLEM_OK;
}
