// server/server.c: server parameters (defaults, environment, OLLAMA_HOST-style addresses,
// --model aliases), start-up (scheduler + libmicrohttpd daemon) and shutdown, and the
// connection watchdog that cuts off slow (drip-feeding) and idle clients, which
// libmicrohttpd's inactivity timeout cannot do: a client sending one byte a second is never
// inactive.
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "server/server_int.h"
#include "store/store.h"

void server_params_init(struct server_params *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->host, sizeof p->host, "127.0.0.1");
    p->port = SERVER_DEFAULT_PORT;
    p->max_body = LLEM_HTTP_MAX_BODY_BYTES_DEFAULT;
    p->request_timeout_ms = 30 * 1000;
    p->idle_timeout_ms = 5 * 60 * 1000;
    p->max_connections = 512;
}

enum llem_err server_parse_host(const char *s, char *host, size_t host_cap, uint16_t *port,
                                struct llem_errbuf *eb)
{
    char buf[512];
    unsigned long dport = SERVER_DEFAULT_PORT;
    size_t n = strlen(s);
    if (n >= sizeof buf) {
        return llem_errf(eb, LLEM_EINVAL, "host '%.40s...' is too long", s);
    }
    memcpy(buf, s, n + 1);
    char *h = buf;
    char *scheme_end = strstr(h, "://");
    if (scheme_end) {
        *scheme_end = '\0';
        if (!strcasecmp(h, "https")) {
            dport = 443;
        } else if (!strcasecmp(h, "http")) {
            dport = SERVER_DEFAULT_PORT;
        } else {
            return llem_errf(eb, LLEM_EINVAL, "host '%s': unknown scheme '%s'", s, h);
        }
        h = scheme_end + 3;
    }
    char *slash = strchr(h, '/');
    if (slash) {
        *slash = '\0'; // a path is allowed and ignored
    }
    const char *name = h;
    char *portstr = NULL;
    if (h[0] == '[') { // [v6]:port
        char *close = strchr(h, ']');
        if (!close) {
            return llem_errf(eb, LLEM_EINVAL, "host '%s': missing ']'", s);
        }
        *close = '\0';
        name = h + 1;
        if (close[1] == ':') {
            portstr = close + 2;
        } else if (close[1]) {
            return llem_errf(eb, LLEM_EINVAL, "host '%s': junk after ']'", s);
        }
    } else {
        char *colon = strrchr(h, ':');
        if (colon && strchr(h, ':') == colon) {
            *colon = '\0';
            portstr = colon + 1;
        } else if (colon) {
            name = h; // a bare IPv6 literal without a port
        }
    }
    unsigned long pv = dport;
    if (portstr) {
        char *end;
        errno = 0;
        pv = strtoul(portstr, &end, 10);
        if (!*portstr || *end || errno || pv > 65535) {
            return llem_errf(eb, LLEM_EINVAL, "host '%s': bad port '%s'", s, portstr);
        }
    }
    if (!*name) {
        name = "127.0.0.1";
    }
    if (strlen(name) >= host_cap) {
        return llem_errf(eb, LLEM_EINVAL, "host '%s': name too long", s);
    }
    snprintf(host, host_cap, "%s", name);
    *port = (uint16_t)pv;
    return LLEM_OK;
}

static enum llem_err env_duration_ms(const char *var, int64_t *ms, struct llem_errbuf *eb)
{
    const char *v = getenv(var);
    if (!v || !*v) {
        return LLEM_OK;
    }
    int64_t ns;
    if (time_parse_duration(v, &ns, NULL) != LLEM_OK || ns <= 0) {
        return llem_errf(eb, LLEM_EINVAL, "%s='%s': expected a positive duration (\"30s\")", var,
                         v);
    }
    *ms = ns / 1000000 > 0 ? ns / 1000000 : 1;
    return LLEM_OK;
}

enum llem_err server_params_from_env(struct server_params *p, struct llem_errbuf *eb)
{
    server_params_init(p);
    const char *h = getenv("LLEM_HOST");
    const char *var = "LLEM_HOST";
    if (!h || !*h) {
        h = getenv("OLLAMA_HOST");
        var = "OLLAMA_HOST";
    }
    if (h && *h) {
        enum llem_err e = server_parse_host(h, p->host, sizeof p->host, &p->port, eb);
        if (e != LLEM_OK) {
            return llem_err_prefix(eb, var);
        }
    }
    const char *mb = getenv("LLEM_MAX_BODY");
    if (mb && *mb) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(mb, &end, 10);
        if (errno || *end || v == 0 || mb[0] == '-') {
            return llem_errf(eb, LLEM_EINVAL, "LLEM_MAX_BODY='%s': expected a byte count", mb);
        }
        p->max_body = v;
    }
    enum llem_err e = env_duration_ms("LLEM_HTTP_REQUEST_TIMEOUT", &p->request_timeout_ms, eb);
    if (e == LLEM_OK) {
        e = env_duration_ms("LLEM_HTTP_IDLE_TIMEOUT", &p->idle_timeout_ms, eb);
    }
    if (e != LLEM_OK) {
        return e;
    }
    const char *o = getenv("LLEM_ORIGINS");
    if (!o || !*o) {
        o = getenv("OLLAMA_ORIGINS");
    }
    if (o) {
        snprintf(p->origins, sizeof p->origins, "%s", o);
    }
    const char *d = getenv("LLEM_MODELS_DIR");
    if (d) {
        snprintf(p->models_dir, sizeof p->models_dir, "%s", d);
    }
    return LLEM_OK;
}

enum llem_err server_add_alias(struct server_params *p, const char *spec,
                               struct llem_errbuf *eb)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
        return llem_errf(eb, LLEM_EINVAL, "--model '%s': expected NAME=PATH", spec);
    }
    size_t nlen = (size_t)(eq - spec);
    if (p->n_aliases >= SERVER_MAX_ALIASES) {
        return llem_errf(eb, LLEM_ELIMIT, "more than %d --model names", SERVER_MAX_ALIASES);
    }
    struct server_alias *a = &p->aliases[p->n_aliases];
    if (nlen >= sizeof a->name || strlen(eq + 1) >= sizeof a->path) {
        return llem_errf(eb, LLEM_EINVAL, "--model '%.60s': name or path too long", spec);
    }
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)spec[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':') {
            return llem_errf(eb, LLEM_EINVAL, "--model '%s': bad character in the name", spec);
        }
        a->name[i] = (char)tolower(c);
    }
    a->name[nlen] = '\0';
    // "name:latest" is the same model as "name".
    size_t L = strlen(a->name);
    if (L > 7 && !strcmp(a->name + L - 7, ":latest")) {
        a->name[L - 7] = '\0';
    }
    snprintf(a->path, sizeof a->path, "%s", eq + 1);
    p->n_aliases++;
    return LLEM_OK;
}

// ---- watchdog -------------------------------------------------------------------------------

static void *watchdog_main(void *arg)
{
    struct srv *s = arg;
    pthread_mutex_lock(&s->wd_mu);
    while (!atomic_load(&s->stopping)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wd_cv, &s->wd_mu, &ts);
        int64_t now = time_now_ns();
        pthread_mutex_lock(&s->conn_mu);
        for (struct srv_conn *c = s->conns; c; c = c->next) {
            int ph = atomic_load(&c->phase);
            int64_t age_ms = (now - atomic_load(&c->phase_ns)) / 1000000;
            bool cut = ((ph == CONN_REQUEST || ph == CONN_FRESH) &&
                        age_ms > s->p.request_timeout_ms) ||
                       (ph == CONN_IDLE && age_ms > s->p.idle_timeout_ms);
            if (cut) {
                log_info("serve: closing a connection %s for %lld ms",
                         ph == CONN_IDLE ? "idle" : "still sending its request",
                         (long long)age_ms);
                // The connection thread sees EOF and closes; CONN_HANDLING is never cut.
                shutdown(c->fd, SHUT_RDWR);
                atomic_store(&c->phase, CONN_HANDLING);
            }
        }
        pthread_mutex_unlock(&s->conn_mu);
    }
    pthread_mutex_unlock(&s->wd_mu);
    return NULL;
}

// ---- lifecycle ------------------------------------------------------------------------------

enum llem_err http_start(struct srv *s, struct llem_errbuf *eb); // http.c

static bool host_is_loopback(const char *h)
{
    if (!strcasecmp(h, "localhost") || !strcmp(h, "::1")) {
        return true;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, h, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    return false;
}

enum llem_err server_new(const struct server_params *p, const struct sched_params *sp,
                         struct server **out, struct llem_errbuf *eb)
{
    *out = NULL;
    struct srv *s = llem_calloc(1, sizeof *s);
    if (!s) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    s->p = *p;
    s->loopback = host_is_loopback(p->host);
    s->start_unix = time(NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_mutex_init(&s->wd_mu, NULL);
    pthread_cond_init(&s->wd_cv, NULL);
    srv_metrics_init(s);
    api_store_open(s);
    struct sched_params spp = *sp;
    spp.resolve = models_resolve;
    spp.resolve_user = s;
    enum llem_err e = sched_new(&spp, &s->sched, eb);
    if (e == LLEM_OK) {
        e = http_start(s, eb);
    }
    if (e == LLEM_OK) {
        if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
            e = llem_errf(eb, LLEM_ENOMEM, "cannot start the watchdog thread");
        } else {
            s->watchdog_started = true;
        }
    }
    if (e != LLEM_OK) {
        server_free((struct server *)s);
        return e;
    }
    *out = (struct server *)s;
    return LLEM_OK;
}

uint16_t server_port(const struct server *sv)
{
    return ((const struct srv *)sv)->port;
}

void server_free(struct server *sv)
{
    struct srv *s = (struct srv *)sv;
    if (!s) {
        return;
    }
    atomic_store(&s->stopping, true);
    if (s->mhd) {
        MHD_quiesce_daemon(s->mhd);
        // Generations see `stopping` within their poll interval and end with an error line;
        // give them up to 5 s to get it out before MHD_stop_daemon closes every socket (idle
        // keep-alive connections included).
        for (int i = 0; i < 100 && atomic_load(&s->inflight) > 0; i++) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(s->mhd);
    }
    if (s->watchdog_started) {
        pthread_mutex_lock(&s->wd_mu);
        pthread_cond_broadcast(&s->wd_cv);
        pthread_mutex_unlock(&s->wd_mu);
        pthread_join(s->watchdog, NULL);
    }
    // Store jobs (create/pull/push threads) see `stopping` at their next progress report.
    for (int i = 0; atomic_load(&s->store_jobs) > 0; i++) {
        if (i % 100 == 99) {
            log_info("serve: waiting for %d model store operation(s) to stop",
                     atomic_load(&s->store_jobs));
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    sched_free(s->sched);
    store_close(s->store);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_mutex_destroy(&s->wd_mu);
    pthread_cond_destroy(&s->wd_cv);
    llem_free(s);
}
