// tensor/plan.h: the memory planner. Given a recorded graph, it computes every intermediate's
// lifetime and assigns it an offset in one compute buffer (greedy best fit, in-place reuse of
// a dying source for elementwise/row-wise ops), plus each node's scratch ("work") area. The
// peak is known before anything is allocated, which is what the scheduler needs to decide
// whether a model fits. Entry points: plan_init, plan_build, plan_peak_bytes, plan_offset.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/graph.h"

#define PLAN_NO_OFFSET SIZE_MAX // tensor not placed by the planner (external, or a view)

// Bytes of scratch a node needs while it runs (e.g. quantized activations for mul_mat,
// per-thread tiles for flash attention); 0 for none. Supplied by the backend that will run it.
typedef size_t (*plan_work_fn)(const struct tensor *node, void *user);

struct plan {
    size_t *offs;       // [n_tensors] byte offset in the compute buffer, or PLAN_NO_OFFSET
    size_t *work_offs;  // [n_tensors] offset of the node's scratch (PLAN_NO_OFFSET if none)
    size_t *work_bytes; // [n_tensors] size of that scratch
    int32_t *inplace;   // [n_tensors] id of the source whose memory the node reuses, or -1
    int cap;            // capacity of the arrays above (kept across builds)
    int n;              // tensors planned by the last build
    size_t peak_bytes;  // compute buffer bytes needed (aligned)
    size_t naive_bytes; // what one buffer per tensor would take (for reports/tests)
    // scratch for building: lifetimes and the free list (kept across builds)
    int32_t *last_use;              // [n_tensors] last node reading the tensor's storage
    uint8_t *state;                 // [n_tensors] unplaced / live / released
    struct plan_block *free_blocks; // [free_cap] free ranges below the high-water mark
    int free_cap;
};

void plan_init(struct plan *p);   // an empty plan; no allocation
void plan_deinit(struct plan *p); // p may be zeroed

// Plans gr (which must be free of recording errors). Tensors that already have storage (weights,
// KV cache: t->buf set) and views are not placed; inputs and op results are, at `align` (a
// power of two, LLEM_CPU_ALIGN on CPU). work may be NULL (no scratch). Reuses p's arrays, so
// planning the same graph twice allocates nothing the second time. ENOMEM or EINVAL (bad
// graph: an un-bound leaf that is not an input) with a message; p is then empty (n = 0).
enum llem_err plan_build(struct plan *p, const struct graph *gr, size_t align, plan_work_fn work,
                         void *work_user, struct llem_errbuf *eb);

static inline size_t plan_peak_bytes(const struct plan *p)
{
    return p->peak_bytes;
}

// Offset of t in the compute buffer (t from the planned graph), or PLAN_NO_OFFSET.
size_t plan_offset(const struct plan *p, const struct tensor *t);
