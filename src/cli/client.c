// cli/client.c: the HTTP client of the CLI verbs (libcurl): one JSON call, NDJSON streams
// read line by line, the server's {"error": ...} bodies turned into one-line errors, Ctrl-C
// cancelling a transfer, and starting a background `llem serve` for `llem run`. Also the
// shared output helpers (Ollama's byte and time formats, tables, progress bars).
#include "cli/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/strbuf.h"
#include "cli/cli.h"
#include "server/server.h"

#define CLI_MAX_BODY (64u << 20)  // a non-streamed answer (show -v of a big model fits)
#define CLI_MAX_LINE (16u << 20)  // one NDJSON line

volatile sig_atomic_t cli_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_sigint(bool on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on ? on_sigint : SIG_DFL;
    sa.sa_flags = 0; // no SA_RESTART: a blocking read returns EINTR
    sigaction(SIGINT, &sa, NULL);
}

static void curl_global(void)
{
    static bool done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = true;
    }
}

enum llem_err cli_client_init(struct cli_client *c, struct llem_errbuf *eb)
{
    memset(c, 0, sizeof *c);
    const char *var = "LLEM_HOST";
    const char *v = getenv(var);
    if (!v || !*v) {
        var = "OLLAMA_HOST";
        v = getenv(var);
    }
    char host[256] = "127.0.0.1";
    uint16_t port = SERVER_DEFAULT_PORT;
    bool https = false;
    if (v && *v) {
        struct llem_errbuf e2 = {0};
        if (server_parse_host(v, host, sizeof host, &port, &e2) != LLEM_OK) {
            return llem_errf(eb, LLEM_EINVAL, "%s: %s", var, e2.msg);
        }
        const char *s = v;
        while (*s == ' ' || *s == '"' || *s == '\'') {
            s++;
        }
        https = !strncmp(s, "https://", 8);
    }
    if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
        // A wildcard bind address is reached through loopback.
        snprintf(host, sizeof host, "%s", strchr(host, ':') ? "::1" : "127.0.0.1");
    }
    bool v6 = strchr(host, ':') != NULL;
    snprintf(c->base, sizeof c->base, "%s://%s%s%s:%u", https ? "https" : "http", v6 ? "[" : "",
             host, v6 ? "]" : "", (unsigned)port);
    c->local = !strcmp(host, "127.0.0.1") || !strcmp(host, "localhost") || !strcmp(host, "::1") ||
               !strncmp(host, "127.", 4);
    return LLEM_OK;
}

// ---- transfers ----------------------------------------------------------------------------------

struct xfer {
    CURL *h;
    long status;      // 0 until the headers are in
    struct strbuf buf; // the whole body (non-2xx or non-streamed) or the pending partial line
    cli_line_fn fn;   // NULL: collect the body
    void *ctx;
    bool stopped;     // fn asked to stop
    bool failed;      // a stream line was an error or malformed: see eb
    struct llem_errbuf *eb;
};

// Handles one NDJSON line; false stops the transfer.
static bool stream_line(struct xfer *x, const char *s, size_t n)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    if (!n) {
        return true;
    }
    cJSON *j = cJSON_ParseWithLength(s, n);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        llem_errf(x->eb, LLEM_EIO, "malformed line in the server's answer: %.60s", s);
        x->failed = true;
        return false;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsString(err)) {
        llem_errf(x->eb, LLEM_EIO, "%s", err->valuestring);
        x->failed = true;
        cJSON_Delete(j);
        return false;
    }
    bool go = x->fn(x->ctx, j);
    cJSON_Delete(j);
    if (!go) {
        x->stopped = true;
    }
    return go;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *user)
{
    struct xfer *x = user;
    size_t n = size * nmemb;
    if (!x->status) {
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    }
    if (strbuf_append(&x->buf, data, n) != LLEM_OK) {
        llem_errf(x->eb, LLEM_ELIMIT, "the server's answer is too large");
        x->failed = true;
        return 0;
    }
    if (!x->fn || x->status < 200 || x->status >= 300) {
        return n;
    }
    // Hand over every complete line; keep the tail.
    size_t start = 0;
    const char *b = x->buf.data;
    for (size_t i = 0; i < x->buf.len; i++) {
        if (b[i] == '\n') {
            if (!stream_line(x, b + start, i - start)) {
                return 0;
            }
            start = i + 1;
        }
    }
    if (start) {
        memmove(x->buf.data, b + start, x->buf.len - start);
        strbuf_truncate(&x->buf, x->buf.len - start);
    }
    return n;
}

static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)user, (void)dt, (void)dn, (void)ut, (void)un;
    return cli_interrupted ? 1 : 0;
}

static enum llem_err connect_error(const struct cli_client *c, struct llem_errbuf *eb)
{
    return llem_errf(eb, LLEM_EIO, "could not connect to llem server at %s, is it running? "
                     "(start it with 'llem serve')", c->base);
}

// The error of a non-2xx answer: {"error": "..."} if present, else the status and a snippet.
static enum llem_err status_error(long status, const char *body, struct llem_errbuf *eb)
{
    enum llem_err code = status == 404 ? LLEM_ENOTFOUND : status == 400 ? LLEM_EINVAL : LLEM_EIO;
    cJSON *j = cJSON_Parse(body);
    const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    if (cJSON_IsString(e)) {
        llem_errf(eb, code, "%s", e->valuestring);
    } else if (cJSON_IsObject(e) && cJSON_IsString(cJSON_GetObjectItem(e, "message"))) {
        llem_errf(eb, code, "%s", cJSON_GetObjectItem(e, "message")->valuestring);
    } else {
        size_t n = strcspn(body, "\r\n");
        llem_errf(eb, code, "the server answered %ld%s%.*s", status, n ? ": " : "",
                  (int)LLEM_MIN(n, (size_t)160), body);
    }
    cJSON_Delete(j);
    return code;
}

// Runs one request. body_json (may be NULL) or upload (a FILE, may be NULL) is sent.
static enum llem_err perform(const struct cli_client *c, const char *method, const char *path,
                             const char *body_json, FILE *upload, uint64_t upload_len,
                             struct xfer *x, long timeout_ms, struct llem_errbuf *eb)
{
    curl_global();
    char url[1024];
    int k = snprintf(url, sizeof url, "%s%s", c->base, path);
    if (k < 0 || (size_t)k >= sizeof url) {
        return llem_errf(eb, LLEM_ELIMIT, "request path too long");
    }
    CURL *h = curl_easy_init();
    if (!h) {
        return llem_errf(eb, LLEM_ENOMEM, "cannot start an HTTP transfer");
    }
    x->h = h;
    x->eb = eb;
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Accept: application/x-ndjson");
    hdr = curl_slist_append(hdr, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "llem/" LLEM_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    if (timeout_ms > 0) {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    if (upload) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, upload);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)upload_len);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (body_json) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body_json);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body_json));
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    x->h = NULL;
    if (x->failed) {
        return eb ? eb->code : LLEM_EIO;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        return llem_errf(eb, LLEM_ECANCELED, "canceled");
    }
    if (rc == CURLE_WRITE_ERROR && x->stopped) {
        return LLEM_OK;
    }
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        (rc == CURLE_OPERATION_TIMEDOUT && x->status == 0)) {
        return connect_error(c, eb);
    }
    if (rc != CURLE_OK) {
        return llem_errf(eb, LLEM_EIO, "%s %s: %s", method, url, curl_easy_strerror(rc));
    }
    return LLEM_OK;
}

bool cli_server_up(const struct cli_client *c)
{
    struct xfer x = {0};
    strbuf_init(&x.buf, 4096);
    enum llem_err e = perform(c, "GET", "/api/version", NULL, NULL, 0, &x, 2000, NULL);
    strbuf_deinit(&x.buf);
    return e == LLEM_OK && x.status == 200;
}

enum llem_err cli_call(const struct cli_client *c, const char *method, const char *path,
                       const cJSON *req, cJSON **out, struct llem_errbuf *eb)
{
    if (out) {
        *out = NULL;
    }
    char *body = req ? cJSON_PrintUnformatted(req) : NULL;
    if (req && !body) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    struct xfer x = {0};
    strbuf_init(&x.buf, CLI_MAX_BODY);
    enum llem_err e = perform(c, method, path, body, NULL, 0, &x, 0, eb);
    cJSON_free(body);
    if (e == LLEM_OK && (x.status < 200 || x.status >= 300)) {
        e = status_error(x.status, strbuf_cstr(&x.buf), eb);
    }
    if (e == LLEM_OK && out && x.buf.len) {
        *out = cJSON_ParseWithLength(x.buf.data, x.buf.len);
        if (!*out) {
            e = llem_errf(eb, LLEM_EIO, "malformed answer from the server to %s %s", method,
                          path);
        }
    }
    strbuf_deinit(&x.buf);
    return e;
}

enum llem_err cli_call_file(const struct cli_client *c, const char *method, const char *path,
                            FILE *body, uint64_t body_len, long *status, struct llem_errbuf *eb)
{
    struct xfer x = {0};
    strbuf_init(&x.buf, CLI_MAX_BODY);
    enum llem_err e = perform(c, method, path, NULL, body, body_len, &x, 0, eb);
    *status = x.status;
    if (e == LLEM_OK && (x.status < 200 || x.status >= 300) && x.buf.len) {
        struct llem_errbuf tmp = {0};
        status_error(x.status, strbuf_cstr(&x.buf), &tmp);
        llem_errf(eb, tmp.code, "%s", tmp.msg); // for the caller's message, status says more
    }
    strbuf_deinit(&x.buf);
    return e;
}

enum llem_err cli_stream(const struct cli_client *c, const char *method, const char *path,
                         const cJSON *req, cli_line_fn fn, void *ctx, struct llem_errbuf *eb)
{
    char *body = req ? cJSON_PrintUnformatted(req) : NULL;
    if (req && !body) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    struct xfer x = {.fn = fn, .ctx = ctx};
    strbuf_init(&x.buf, CLI_MAX_LINE);
    enum llem_err e = perform(c, method, path, body, NULL, 0, &x, 0, eb);
    cJSON_free(body);
    if (e == LLEM_OK && (x.status < 200 || x.status >= 300)) {
        e = status_error(x.status, strbuf_cstr(&x.buf), eb);
    } else if (e == LLEM_OK && !x.stopped && x.buf.len) {
        x.eb = eb;
        stream_line(&x, x.buf.data, x.buf.len); // a last line without its newline
        if (x.failed) {
            e = eb ? eb->code : LLEM_EIO;
        }
    }
    strbuf_deinit(&x.buf);
    return e;
}

// ---- background server ------------------------------------------------------------------------

bool cli_llem_home(char *buf, size_t cap)
{
    const char *home = getenv("HOME");
    if (!home || !*home) {
        return false;
    }
    int k = snprintf(buf, cap, "%s/.llem", home);
    return k > 0 && (size_t)k < cap;
}

enum llem_err cli_ensure_server(const struct cli_client *c, struct llem_errbuf *eb)
{
    if (cli_server_up(c)) {
        return LLEM_OK;
    }
    if (!c->local) {
        return connect_error(c, eb);
    }
    char exe[PATH_MAX], log_path[PATH_MAX + 32], pid_path[PATH_MAX + 32], dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || !cli_llem_home(dir, sizeof dir - 8)) {
        return connect_error(c, eb);
    }
    exe[n] = '\0';
    mkdir(dir, 0755);
    size_t dl = strlen(dir);
    snprintf(dir + dl, sizeof dir - dl, "/logs");
    mkdir(dir, 0755);
    snprintf(log_path, sizeof log_path, "%s/server.log", dir);
    snprintf(pid_path, sizeof pid_path, "%s/server.pid", dir);
    fprintf(stderr, "starting llem serve in the background (log: %s)\n", log_path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        return llem_errf(eb, LLEM_EIO, "cannot start llem serve: %s", strerror(errno));
    }
    if (pid == 0) {
        // Double fork: the server is re-parented to init, so it never becomes our zombie, and
        // setsid keeps the terminal's Ctrl-C away from it.
        if (fork() != 0) {
            _exit(0);
        }
        setsid();
        FILE *pf = fopen(pid_path, "w"); // lets the user (and tests) stop this server
        if (pf) {
            fprintf(pf, "%ld\n", (long)getpid());
            fclose(pf);
        }
        int in = open("/dev/null", O_RDONLY);
        int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in >= 0) {
            dup2(in, STDIN_FILENO);
        }
        if (out >= 0) {
            dup2(out, STDOUT_FILENO);
            dup2(out, STDERR_FILENO);
        }
        execl(exe, "llem", "serve", (char *)NULL);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
    // Polls /api/version for up to ~15 s (the server binds at once; models load lazily).
    for (int i = 0; i < 150; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (cli_server_up(c)) {
            return LLEM_OK;
        }
    }
    return llem_errf(eb, LLEM_EIO, "started llem serve but it does not answer at %s (see %s)",
                     c->base, log_path);
}

// ---- formats ----------------------------------------------------------------------------------

void cli_human_bytes(uint64_t b, char *buf, size_t cap)
{
    static const char *const units[] = {"KB", "MB", "GB", "TB"};
    double scale[] = {1e3, 1e6, 1e9, 1e12};
    int u = -1;
    for (int i = 3; i >= 0; i--) {
        if ((double)b >= scale[i]) {
            u = i;
            break;
        }
    }
    if (u < 0) {
        snprintf(buf, cap, "%llu B", (unsigned long long)b);
        return;
    }
    double v = (double)b / scale[u];
    if (v >= 10 || v == trunc(v)) {
        snprintf(buf, cap, "%d %s", (int)v, units[u]);
    } else {
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    }
}

// Ollama's format.HumanDuration.
static void human_duration(int64_t s, char *buf, size_t cap)
{
    if (s < 1) {
        snprintf(buf, cap, "Less than a second");
    } else if (s == 1) {
        snprintf(buf, cap, "1 second");
    } else if (s < 60) {
        snprintf(buf, cap, "%lld seconds", (long long)s);
    } else if (s / 60 == 1) {
        snprintf(buf, cap, "About a minute");
    } else if (s / 60 < 60) {
        snprintf(buf, cap, "%lld minutes", (long long)(s / 60));
    } else {
        int64_t h = (int64_t)llround((double)s / 3600.0);
        if (h == 1) {
            snprintf(buf, cap, "About an hour");
        } else if (h < 48) {
            snprintf(buf, cap, "%lld hours", (long long)h);
        } else if (h < 24 * 7 * 2) {
            snprintf(buf, cap, "%lld days", (long long)(h / 24));
        } else if (h < 24 * 30 * 2) {
            snprintf(buf, cap, "%lld weeks", (long long)(h / 24 / 7));
        } else if (h < 24 * 365 * 2) {
            snprintf(buf, cap, "%lld months", (long long)(h / 24 / 30));
        } else {
            snprintf(buf, cap, "%lld years", (long long)(h / 24 / 365));
        }
    }
}

void cli_human_time(int64_t unix_s, const char *zero, char *buf, size_t cap)
{
    if (unix_s == 0) {
        snprintf(buf, cap, "%s", zero);
        return;
    }
    int64_t delta = (int64_t)time(NULL) - unix_s;
    char d[64];
    if (delta < -20LL * 365 * 24 * 3600) {
        snprintf(buf, cap, "Forever");
    } else if (delta < 0) {
        human_duration(-delta, d, sizeof d);
        snprintf(buf, cap, "%s from now", d);
    } else {
        human_duration(delta, d, sizeof d);
        snprintf(buf, cap, "%s ago", d);
    }
}

// Reads exactly n decimal digits.
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9') {
            return false;
        }
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return true;
}

int64_t cli_parse_time(const char *s)
{
    if (!s) {
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, sec;
    const char *p = s;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' ')) {
        return 0;
    }
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
        !digits(&p, 2, &sec)) {
        return 0;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    int off = 0;
    if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om)) {
            return 0;
        }
        off = sign * (oh * 3600 + om * 60);
    } else if (*p != 'Z' && *p != 'z') {
        return 0;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm) - off;
}

// ---- tables -----------------------------------------------------------------------------------

void cli_table_init(struct cli_table *t, size_t n_cols)
{
    memset(t, 0, sizeof *t);
    t->n_cols = n_cols;
}

void cli_table_add(struct cli_table *t, const char *cell)
{
    if (t->n_cells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        char **p = llem_realloc(t->cells, cap * sizeof *p);
        if (!p) {
            return;
        }
        t->cells = p;
        t->cap = cap;
    }
    t->cells[t->n_cells++] = llem_strdup(cell ? cell : "");
}

// Display width of UTF-8 text: code points (continuation bytes are not counted).
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; s && *s; s++) {
        w += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return w;
}

void cli_table_print(const struct cli_table *t, const char *indent)
{
    size_t widths[16] = {0};
    size_t nc = LLEM_MIN(t->n_cols, (size_t)16);
    for (size_t i = 0; i < t->n_cells; i++) {
        size_t w = text_width(t->cells[i]);
        if (w > widths[i % t->n_cols % 16]) {
            widths[i % t->n_cols % 16] = w;
        }
    }
    for (size_t r = 0; r * t->n_cols < t->n_cells; r++) {
        fputs(indent, stdout);
        for (size_t col = 0; col < nc && r * t->n_cols + col < t->n_cells; col++) {
            const char *cell = t->cells[r * t->n_cols + col];
            fputs(cell ? cell : "", stdout);
            // No padding after the last non-empty cell of a row (no trailing blanks).
            bool last = true;
            for (size_t k = col + 1; k < nc && r * t->n_cols + k < t->n_cells; k++) {
                const char *next = t->cells[r * t->n_cols + k];
                last = last && (!next || !next[0]);
            }
            if (!last) {
                for (size_t k = text_width(cell); k < widths[col] + 4; k++) {
                    putchar(' ');
                }
            }
        }
        putchar('\n');
    }
}

void cli_table_deinit(struct cli_table *t)
{
    for (size_t i = 0; t && i < t->n_cells; i++) {
        llem_free(t->cells[i]);
    }
    if (t) {
        llem_free(t->cells);
        memset(t, 0, sizeof *t);
    }
}

// ---- progress ---------------------------------------------------------------------------------

void cli_progress_init(struct cli_progress *p)
{
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO);
}

static uint64_t num_field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

void cli_progress_update(struct cli_progress *p, const cJSON *obj)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "status");
    if (!cJSON_IsString(st)) {
        return;
    }
    uint64_t total = num_field(obj, "total"), done = num_field(obj, "completed");
    bool same = p->status[0] && !strncmp(p->status, st->valuestring, sizeof p->status - 1);
    if (!p->tty) {
        if (!same) {
            fprintf(stderr, "%s\n", st->valuestring);
            snprintf(p->status, sizeof p->status, "%s", st->valuestring);
        }
        return;
    }
    if (!same && p->open) {
        fputc('\n', stderr);
        p->open = false;
    }
    snprintf(p->status, sizeof p->status, "%s", st->valuestring);
    if (!total) {
        if (!same) {
            fprintf(stderr, "%s", p->status);
            p->open = true;
        }
        fflush(stderr);
        return;
    }
    enum { BAR = 25 };
    int pct = (int)(LLEM_MIN(done, total) * 100 / total);
    int fill = pct * BAR / 100;
    char a[32], b[32];
    cli_human_bytes(done, a, sizeof a);
    cli_human_bytes(total, b, sizeof b);
    fprintf(stderr, "\r\033[K%s: %3d%% \u2595", p->status, pct);
    for (int i = 0; i < BAR; i++) {
        fputs(i < fill ? "\u2588" : " ", stderr);
    }
    if (done >= total) {
        fprintf(stderr, "\u258f %s", b);
    } else {
        fprintf(stderr, "\u258f %s/%s", a, b);
    }
    p->open = true;
    fflush(stderr);
}

void cli_progress_done(struct cli_progress *p)
{
    if (p->open) {
        fputc('\n', stderr);
        p->open = false;
    }
}

char *cli_slurp(FILE *f, size_t max, size_t *len)
{
    struct strbuf sb;
    strbuf_init(&sb, max);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (strbuf_append(&sb, chunk, n) != LLEM_OK) {
            strbuf_deinit(&sb);
            return NULL;
        }
    }
    if (ferror(f)) {
        strbuf_deinit(&sb);
        return NULL;
    }
    if (len) {
        *len = sb.len;
    }
    return strbuf_take(&sb);
}

bool cli_client_open(struct cli_client *c, const char *verb)
{
    struct llem_errbuf eb = {0};
    if (cli_client_init(c, &eb) != LLEM_OK) {
        cli_fail(verb, "%s", eb.msg);
        return false;
    }
    return true;
}

void cli_short_id(const char *digest, char out[13])
{
    const char *h = digest ? digest : "";
    if (!strncmp(h, "sha256:", 7) || !strncmp(h, "sha256-", 7)) {
        h += 7;
    }
    snprintf(out, 13, "%s", h);
}
