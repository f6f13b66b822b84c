// base/log.h: leveled logging to stderr (or a sink set once at start-up). The level comes
// from LLEM_DEBUG (1 = debug) or log_set_level. Thread-safe; one line per call.
#pragma once
#include "base/compiler.h"

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR, LOG_LEVEL_OFF };

typedef void (*log_sink_fn)(enum log_level level, const char *line, void *user);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_sink(log_sink_fn fn, void *user); // NULL restores stderr
void log_msg(enum log_level level, const char *fmt, ...) LLEM_PRINTF(2, 3);

#define log_debug(...)                                                                     \
    do {                                                                                   \
        if (log_get_level() <= LOG_LEVEL_DEBUG) {                                          \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                         \
        }                                                                                  \
    } while (0)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
