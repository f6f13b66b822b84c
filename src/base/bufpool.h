// base/bufpool.h: tiered pool of 64-byte-aligned buffers (128 KiB, 512 KiB, 1 MiB, 4 MiB) for
// I/O chunks, upload staging and per-request scratch. A request is served from the smallest
// tier that fits; larger ones go straight to llem_aligned_alloc. Freed buffers wait on a
// per-tier lock-free stack (tagged indices against ABA), so after warm-up get/put allocate
// nothing. Each tier retains at most a configured number of bytes; buffers beyond that are
// allocated and freed normally. All functions except init/deinit are thread-safe.
#pragma once
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define BUFPOOL_TIERS 4
#define BUFPOOL_ALIGN 64

// A buffer on loan from the pool. Pass it back unchanged to bufpool_put.
struct buf {
    void *data;   // BUFPOOL_ALIGN-aligned; NULL when the get failed (out of memory)
    size_t cap;   // usable bytes (>= the size asked for): the tier size, or the size itself
    int32_t tier; // 0..BUFPOOL_TIERS-1, or -1: allocated directly (large or over the cap)
    int32_t slot; // index in the tier's slot table, -1 when not pooled
};

struct bufpool_tier_stats {
    uint64_t hits;           // gets served from the free list (modulo 2^40)
    uint64_t misses;         // gets that allocated (warm-up, or over the retention cap)
    uint64_t bytes_retained; // bytes of pooled buffers the tier owns (out on loan or free)
    uint64_t slots_used;     // pooled buffers created so far (<= max slots)
};

struct bufpool_stats {
    struct bufpool_tier_stats tier[BUFPOOL_TIERS];
    uint64_t large_allocs; // gets above the largest tier (always allocated)
};

struct bufpool_tier; // private

struct bufpool {
    struct bufpool_tier *tiers[BUFPOOL_TIERS];
    _Atomic uint64_t large_allocs;
};

// Per-tier retention caps in bytes; 0 means the default (32 MiB for the three smaller tiers,
// 64 MiB for 4 MiB buffers). A cap smaller than the tier size retains nothing for that tier.
struct bufpool_config {
    size_t max_retained_bytes[BUFPOOL_TIERS];
};

// Tier sizes in bytes, smallest first.
size_t bufpool_tier_size(int tier);

// cfg may be NULL for defaults. Allocates only the slot tables (no buffers): LLEM_ENOMEM.
enum llem_err bufpool_init(struct bufpool *p, const struct bufpool_config *cfg);
// Frees every retained buffer. Every loaned buffer must have been put back before; p may be
// NULL or have failed init.
void bufpool_deinit(struct bufpool *p);

// A buffer of at least `size` bytes; on allocation failure b.data is NULL (nothing to put).
struct buf bufpool_get(struct bufpool *p, size_t size);
// Returns a buffer from bufpool_get (a NULL data is ignored). After warm-up this and get are
// a compare-and-swap each, no allocation.
void bufpool_put(struct bufpool *p, struct buf b);

void bufpool_get_stats(const struct bufpool *p, struct bufpool_stats *out);
