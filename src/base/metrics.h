// base/metrics.h: process-wide registry of counters, gauges and timers (I/O bytes,
// allocations, per-op compute time, tensor op counts, TTFT, tok/s). Registration takes a lock
// and returns a small integer id; recording never locks: each thread writes its own shard
// (plain loads and stores on a cache-line-aligned array, no atomic read-modify-write), and
// readers sum the shards. Threads beyond METRICS_MAX_SHARDS share one overflow shard updated
// with atomic adds. server/ exports the registry as Prometheus text (metrics_write_prometheus).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define METRICS_MAX_COUNTERS 256
#define METRICS_MAX_GAUGES 64
#define METRICS_MAX_TIMERS 256
#define METRICS_MAX_SHARDS 64      // threads with a private shard at the same time
#define METRICS_HIST_BUCKETS 40    // bucket b counts durations in [2^(b-1), 2^b) ns; the last
                                   // bucket also takes everything longer (>= ~4.6 min)
#define METRICS_MAX_NAME 128       // "name" or "name{label=\"v\",...}", Prometheus syntax
#define METRICS_MAX_HELP 160

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_TIMER };

// Registers (or finds, if the same name and kind were registered before) a metric and returns
// its id (>= 0) in *id. name: [a-zA-Z_:][a-zA-Z0-9_:]* optionally followed by {labels}; help:
// one line. LLEM_EINVAL for a bad name, LLEM_EEXIST if the name has another kind, LLEM_ELIMIT
// when that kind's table is full. On failure *id = -1, and recording with id -1 is a no-op,
// so callers may ignore the error. Thread-safe (locks).
enum llem_err metrics_register(enum metric_kind kind, const char *name, const char *help,
                               int *id);

// Recording: lock-free, wait-free, tens of nanoseconds at most. An id out of range
// (including -1) is ignored. The first record on a thread claims a shard (once per thread,
// under the lock); the shard is folded into the totals when the thread exits.
void metrics_counter_add(int id, uint64_t v);
void metrics_gauge_set(int id, int64_t v); // gauges are single atomics, not sharded
void metrics_gauge_add(int id, int64_t v);
void metrics_timer_record(int id, uint64_t ns);

// CLOCK_MONOTONIC nanoseconds (vDSO, ~20 ns).
int64_t metrics_now_ns(void);
// Records now - t0 (clamped at 0) into timer id; returns now, to chain phases.
int64_t metrics_timer_since(int id, int64_t t0_ns);

struct timer_stats {
    uint64_t count;
    uint64_t total_ns;
    uint64_t max_ns;
    uint64_t hist[METRICS_HIST_BUCKETS];
};

// Snapshot readers (lock; sum every shard). Values being recorded concurrently may or may not
// be included. Unknown ids read as 0.
uint64_t metrics_counter_get(int id);
int64_t metrics_gauge_get(int id);
void metrics_timer_get(int id, struct timer_stats *out);
// Bucket index a duration falls in (exposed for tests and exporters).
int metrics_hist_bucket(uint64_t ns);

// One registered metric, for export. Strings point into the registry (valid for the process).
struct metric_info {
    enum metric_kind kind;
    int id;
    const char *name;
    const char *help;
};
// Number of registered metrics and the i-th in registration order (false if i is too large).
size_t metrics_count(void);
bool metrics_info(size_t i, struct metric_info *out);

// Writes every metric in Prometheus text format 0.0.4 into buf[0..size) (NUL-terminated):
// counters as counter, gauges as gauge, timers as histogram in seconds (le = 2^b ns for even b
// from 10 to 38, ~1 us to ~275 s, plus +Inf; _sum, _count) plus a gauge <name>_max_seconds. *written = bytes without the NUL.
// LLEM_ELIMIT if size is too small (buf then holds a truncated prefix; *written = the size
// needed). Metrics sharing a base name share one # HELP / # TYPE header.
enum llem_err metrics_write_prometheus(char *buf, size_t size, size_t *written);

// Zeroes every value (tests, benchmarks). Records racing with it may survive.
void metrics_reset_values(void);
