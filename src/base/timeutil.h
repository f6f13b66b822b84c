// base/timeutil.h: the monotonic clock and Go-style duration strings ("5m", "1h30m", "300ms",
// "1.5s", "-1"), which keep_alive and OLLAMA_* settings use. A number without a unit means
// seconds (Ollama accepts keep_alive as a number of seconds; "-1" means "forever" to the
// caller, which maps negative values). Pure and thread-safe.
#pragma once
#include <stdint.h>

#include "base/err.h"

// CLOCK_MONOTONIC in nanoseconds (never goes back; unrelated to wall time).
int64_t time_now_ns(void);

// Parses s into nanoseconds. Grammar: [+-] then either a bare decimal number (seconds) or one
// or more <decimal><unit> with unit in ns, us, µs, ms, s, m, h (Go's time.ParseDuration).
// "0" is 0. LLEM_EINVAL for malformed input (empty, missing unit between terms, unknown
// unit, stray characters), LLEM_ELIMIT when the value does not fit int64 ns or s is longer
// than LLEM_DURATION_MAX_BYTES. eb may be NULL.
enum llem_err time_parse_duration(const char *s, int64_t *out_ns, struct llem_errbuf *eb);
