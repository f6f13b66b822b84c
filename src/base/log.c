// base/log.c: the log sink. Level read lazily from LLEM_DEBUG / LLEM_LOG_LEVEL.
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int log_level = -1;
static log_sink_fn log_sink;
static void *log_sink_user;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER; // serializes writes to stderr

static enum log_level level_from_env(void)
{
    const char *d = getenv("LLEM_DEBUG");
    if (d && *d && strcmp(d, "0") != 0 && strcmp(d, "false") != 0) {
        return LOG_LEVEL_DEBUG;
    }
    const char *l = getenv("LLEM_LOG_LEVEL");
    if (l) {
        if (!strcmp(l, "debug")) return LOG_LEVEL_DEBUG;
        if (!strcmp(l, "info")) return LOG_LEVEL_INFO;
        if (!strcmp(l, "warn")) return LOG_LEVEL_WARN;
        if (!strcmp(l, "error")) return LOG_LEVEL_ERROR;
        if (!strcmp(l, "off")) return LOG_LEVEL_OFF;
    }
    return LOG_LEVEL_WARN;
}

enum log_level log_get_level(void)
{
    int l = atomic_load_explicit(&log_level, memory_order_relaxed);
    if (l < 0) {
        l = (int)level_from_env();
        atomic_store(&log_level, l);
    }
    return (enum log_level)l;
}

void log_set_level(enum log_level level)
{
    atomic_store(&log_level, (int)level);
}

void log_set_sink(log_sink_fn fn, void *user)
{
    pthread_mutex_lock(&log_mu);
    log_sink = fn;
    log_sink_user = user;
    pthread_mutex_unlock(&log_mu);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_get_level()) {
        return;
    }
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_mu);
    if (log_sink) {
        log_sink(level, line, log_sink_user);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000, names[level], line);
    }
    pthread_mutex_unlock(&log_mu);
}
