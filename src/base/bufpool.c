// base/bufpool.c: tiered buffer pool (see bufpool.h). Each tier owns a fixed table of slots
// (its retention cap divided by the tier size); a slot holds one buffer once created. Free
// slots form a Treiber stack threaded through the table by index; the 64-bit head packs a
// 32-bit tag (bumped on every change, defeating ABA) with index+1 (0 = empty).
#include "base/bufpool.h"

#include <string.h>

#include "base/alloc.h"

struct slot {
    void *data;               // written once, before the slot is first handed out
    _Atomic uint32_t next;    // index+1 of the next free slot (read racily by pop; see below)
};

struct bufpool_tier {
    _Alignas(64) _Atomic uint64_t head;   // pops << IDX_BITS | (index + 1)
    _Alignas(64) _Atomic uint32_t nslots; // slots created so far (claimed by CAS)
    _Atomic uint64_t misses;
    size_t size;
    uint32_t max_slots;
    struct slot *slots;
};

#define IDX_BITS 24
#define IDX_MASK ((1ull << IDX_BITS) - 1)
#define MAX_SLOTS ((uint32_t)IDX_MASK - 1)

static const size_t tier_sizes[BUFPOOL_TIERS] = {128u << 10, 512u << 10, 1u << 20, 4u << 20};
static const size_t default_retain[BUFPOOL_TIERS] = {32u << 20, 32u << 20, 32u << 20,
                                                     64u << 20};

size_t bufpool_tier_size(int tier)
{
    return (tier >= 0 && tier < BUFPOOL_TIERS) ? tier_sizes[tier] : 0;
}

enum llem_err bufpool_init(struct bufpool *p, const struct bufpool_config *cfg)
{
    memset(p, 0, sizeof(*p));
    for (int t = 0; t < BUFPOOL_TIERS; t++) {
        size_t cap = cfg && cfg->max_retained_bytes[t] ? cfg->max_retained_bytes[t]
                                                       : default_retain[t];
        size_t n = cap / tier_sizes[t];
        if (n > MAX_SLOTS) {
            n = MAX_SLOTS;
        }
        struct bufpool_tier *tr = llem_aligned_alloc(64, sizeof(*tr));
        struct slot *slots = n ? llem_calloc(n, sizeof(struct slot)) : NULL;
        if (!tr || (n && !slots)) {
            llem_aligned_free(tr);
            llem_free(slots);
            bufpool_deinit(p);
            return LLEM_ENOMEM;
        }
        memset(tr, 0, sizeof(*tr));
        tr->size = tier_sizes[t];
        tr->max_slots = (uint32_t)n;
        tr->slots = slots;
        p->tiers[t] = tr;
    }
    return LLEM_OK;
}

void bufpool_deinit(struct bufpool *p)
{
    if (!p) {
        return;
    }
    for (int t = 0; t < BUFPOOL_TIERS; t++) {
        struct bufpool_tier *tr = p->tiers[t];
        if (!tr) {
            continue;
        }
        uint32_t n = atomic_load(&tr->nslots);
        for (uint32_t i = 0; i < n && i < tr->max_slots; i++) {
            llem_aligned_free(tr->slots[i].data);
        }
        llem_free(tr->slots);
        llem_aligned_free(tr);
        p->tiers[t] = NULL;
    }
}

// Pops a free slot index, or -1 when the stack is empty.
static int64_t stack_pop(struct bufpool_tier *tr)
{
    uint64_t head = atomic_load_explicit(&tr->head, memory_order_acquire);
    for (;;) {
        uint32_t idx1 = (uint32_t)(head & IDX_MASK);
        if (idx1 == 0) {
            return -1;
        }
        // Another thread may pop this slot and push it back with a different `next` before
        // our CAS; the tag in head then differs and the CAS fails, so a stale `next` is never
        // installed. The slot table never moves, so the read itself is always safe.
        uint32_t next = atomic_load_explicit(&tr->slots[idx1 - 1].next, memory_order_relaxed);
        uint64_t nhead = ((head >> IDX_BITS) + 1) << IDX_BITS | next;
        if (atomic_compare_exchange_weak_explicit(&tr->head, &head, nhead, memory_order_acquire,
                                                  memory_order_acquire)) {
            return (int64_t)idx1 - 1;
        }
    }
}

static void stack_push(struct bufpool_tier *tr, uint32_t idx)
{
    uint64_t head = atomic_load_explicit(&tr->head, memory_order_relaxed);
    for (;;) {
        atomic_store_explicit(&tr->slots[idx].next, (uint32_t)(head & IDX_MASK),
                              memory_order_relaxed);
        uint64_t nhead = (head & ~IDX_MASK) | (idx + 1);
        if (atomic_compare_exchange_weak_explicit(&tr->head, &head, nhead, memory_order_release,
                                                  memory_order_relaxed)) {
            return;
        }
    }
}

static int tier_for(size_t size)
{
    for (int t = 0; t < BUFPOOL_TIERS; t++) {
        if (size <= tier_sizes[t]) {
            return t;
        }
    }
    return -1;
}

struct buf bufpool_get(struct bufpool *p, size_t size)
{
    struct buf b = {NULL, 0, -1, -1};
    int t = tier_for(size);
    if (t < 0) {
        atomic_fetch_add_explicit(&p->large_allocs, 1, memory_order_relaxed);
        b.data = llem_aligned_alloc(BUFPOOL_ALIGN, size);
        b.cap = b.data ? size : 0;
        return b;
    }
    struct bufpool_tier *tr = p->tiers[t];
    int64_t idx = stack_pop(tr);
    if (LLEM_LIKELY(idx >= 0)) {
        b.data = tr->slots[idx].data;
        b.cap = tr->size;
        b.tier = t;
        b.slot = (int32_t)idx;
        return b;
    }
    // Warm-up (or beyond the cap): allocate, and keep it pooled if a slot is left.
    atomic_fetch_add_explicit(&tr->misses, 1, memory_order_relaxed);
    void *data = llem_aligned_alloc(BUFPOOL_ALIGN, tr->size);
    if (!data) {
        return b;
    }
    b.data = data;
    b.cap = tr->size;
    b.tier = t;
    uint32_t n = atomic_load_explicit(&tr->nslots, memory_order_relaxed);
    while (n < tr->max_slots) {
        if (atomic_compare_exchange_weak_explicit(&tr->nslots, &n, n + 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            tr->slots[n].data = data; // published to other threads by the push in put
            b.slot = (int32_t)n;
            break;
        }
    }
    return b;
}

void bufpool_put(struct bufpool *p, struct buf b)
{
    if (!b.data) {
        return;
    }
    if (b.slot < 0) {
        llem_aligned_free(b.data);
        return;
    }
    struct bufpool_tier *tr = p->tiers[b.tier];
    LLEM_ASSERT((uint32_t)b.slot < tr->max_slots && tr->slots[b.slot].data == b.data);
    stack_push(tr, (uint32_t)b.slot);
}

void bufpool_get_stats(const struct bufpool *p, struct bufpool_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (int t = 0; t < BUFPOOL_TIERS; t++) {
        struct bufpool_tier *tr = p->tiers[t];
        if (!tr) {
            continue;
        }
        struct bufpool_tier_stats *s = &out->tier[t];
        s->hits = atomic_load_explicit(&tr->head, memory_order_relaxed) >> IDX_BITS;
        s->misses = atomic_load_explicit(&tr->misses, memory_order_relaxed);
        uint32_t n = atomic_load_explicit(&tr->nslots, memory_order_relaxed);
        s->slots_used = n;
        s->bytes_retained = (uint64_t)n * tr->size;
    }
    out->large_allocs = atomic_load_explicit(&p->large_allocs, memory_order_relaxed);
}
