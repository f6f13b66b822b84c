// backend/backend.h: the backend contract (a vtable every backend fills in), the registry, and
// the glue the model layer calls: buffers (weights, KV cache, compute memory), tensor
// upload/download, and planning + executing a recorded graph. Entry points: backend_new,
// backend_buffer_alloc, backend_tensor_set/get, backend_galloc_*, backend_graph_compute.
// The CPU backend is always built (backend/cpu/cpu.h); CUDA only with -DLLEM_CUDA=ON.
// Threading: one backend instance is driven by one thread (the runner); the backend may use
// its own workers inside graph_compute. See docs/internals/backend.md for the full contract.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "tensor/graph.h"
#include "tensor/plan.h"

struct backend;

enum backend_buffer_usage {
    BACKEND_BUFFER_ANY = 0,
    BACKEND_BUFFER_WEIGHTS = 1, // read-only during compute
    BACKEND_BUFFER_COMPUTE = 2, // planner-managed intermediates
    BACKEND_BUFFER_KV = 3,      // KV cache (written by set_rows / cpy)
};

// A block of backend memory. `base` is meaningful only to the backend that made it (a host
// pointer on CPU, a device pointer on CUDA); nothing outside that backend dereferences it.
struct backend_buffer {
    struct backend *be; // owner
    void *base;         // backend-specific handle; 64-byte aligned on CPU
    size_t size;        // bytes
    bool owned;         // false for buffer_from_host_ptr: the caller keeps the memory
    bool zero_filled;   // set by buffer_alloc when its memory reads as zeros (fresh anonymous
                        // pages): backend_buffer_alloc_zeroed then writes nothing
    enum backend_buffer_usage usage;
};

// One op-kind's accumulated time, recorded around nodes by graph_compute when enabled.
struct backend_op_stat {
    uint64_t count; // nodes executed
    uint64_t ns;    // wall time, including the barrier that ends each node
};

// The vtable. Entries marked (optional) may be NULL.
struct backend_ops {
    const char *name; // "cpu", "cuda"
    // Whether this backend can execute node t (its op, types and layout).
    bool (*supports_op)(const struct backend *be, const struct tensor *t);
    enum llem_err (*buffer_alloc)(struct backend *be, size_t size, struct backend_buffer *b,
                                  struct llem_errbuf *eb);
    void (*buffer_free)(struct backend_buffer *b);                 // releases b's memory (b->base)
    void (*buffer_clear)(struct backend_buffer *b, uint8_t value); // every byte = value
    // (optional) Wraps host memory without copying (mmapped weights on CPU). ptr must outlive
    // the buffer.
    enum llem_err (*buffer_from_host_ptr)(struct backend *be, void *ptr, size_t size,
                                          struct backend_buffer *b, struct llem_errbuf *eb);
    // Copy size bytes at byte offset `offset` inside t's data (t contiguous over that range).
    void (*tensor_set)(struct tensor *t, const void *data, size_t offset, size_t size);
    void (*tensor_get)(const struct tensor *t, void *data, size_t offset, size_t size);
    // Scratch bytes node t needs while running (plan_work_fn for this backend).
    size_t (*work_size)(const struct backend *be, const struct tensor *t);
    // Executes every node of gr in order; all tensors must be bound. Asynchronous backends may
    // return before completion (see synchronize).
    enum llem_err (*graph_compute)(struct backend *be, struct graph *gr, struct llem_errbuf *eb);
    void (*synchronize)(struct backend *be); // (optional) waits for queued work
    // (optional) Gives the backend a bound weight tensor to convert, once at load time, into
    // a layout its kernels read faster (kept in t->extra; *bytes = the memory it took, 0 when
    // t stays as it is). weight_release frees it; both accept any weight.
    enum llem_err (*weight_prepare)(struct backend *be, struct tensor *t, size_t *bytes,
                                    struct llem_errbuf *eb);
    void (*weight_release)(struct backend *be, struct tensor *t);
    // (optional, with weight_adopt and weight_prepared) For a cache of prepared weights on
    // disk: the bytes weight_prepare would take for t without preparing it (0: none) and a
    // fingerprint of their layout (equal fingerprints: the same bytes from the same weight);
    // adopting such bytes (borrowed) as t's prepared copy; a prepared copy's bytes.
    size_t (*weight_plan)(struct backend *be, const struct tensor *t, uint64_t *layout);
    enum llem_err (*weight_adopt)(struct backend *be, struct tensor *t, const void *data,
                                  size_t bytes, struct llem_errbuf *eb);
    const void *(*weight_prepared)(const struct tensor *t, size_t *bytes);
    void (*release)(struct backend *be);     // frees be itself (backend_free calls it)
};

struct backend {
    const struct backend_ops *ops;
    void *ctx;                              // backend-private state
    bool stats_enabled;                     // record per-op time in stats[]
    struct backend_op_stat stats[OP_COUNT]; // indexed by enum tensor_op
};

// ---- registry ------------------------------------------------------------------------------------

struct backend_params {
    int n_threads;      // CPU worker threads (0 = physical cores); ignored by device backends
    int device;         // device index for device backends
    bool stats;         // record per-op time
    const char *isa;    // CPU kernel set: NULL/"auto" (best supported), "scalar", "avx2"
    bool generic_quant; // CPU: dequantize + F32 dot instead of quantized vec_dot kernels
                        // (tests of the fallback, A/B measurements)
};

struct backend_reg {
    const char *name;
    enum llem_err (*create)(const struct backend_params *p, struct backend **out,
                            struct llem_errbuf *eb);
};

int backend_reg_count(void);                                  // backends compiled in (CPU first)
const struct backend_reg *backend_reg_get(int i);             // NULL if out of range
const struct backend_reg *backend_reg_find(const char *name); // NULL if not compiled in

// Creates a backend by registry name ("cpu"); p may be NULL for defaults. ENOTFOUND for an
// unknown name, EUNSUPPORTED for an ISA this CPU lacks, ENOMEM.
enum llem_err backend_new(const char *name, const struct backend_params *p, struct backend **out,
                          struct llem_errbuf *eb);
void backend_free(struct backend *be); // NULL is a no-op
const char *backend_name(const struct backend *be);

// ---- buffers -----------------------------------------------------------------------------------

// Allocates size bytes (> 0) of backend memory; the struct itself comes from the heap.
// ENOMEM on failure (*out NULL).
enum llem_err backend_buffer_alloc(struct backend *be, size_t size, enum backend_buffer_usage usage,
                                   struct backend_buffer **out, struct llem_errbuf *eb);
// backend_buffer_alloc whose every byte is zero (the KV cache: cells never written must hold
// finite values). Fresh anonymous pages already read as zeros, so it clears only memory that
// may be reused; the pages it doesn't touch cost neither time nor resident memory until used.
enum llem_err backend_buffer_alloc_zeroed(struct backend *be, size_t size,
                                          enum backend_buffer_usage usage,
                                          struct backend_buffer **out, struct llem_errbuf *eb);
// Zero-copy wrap of host memory (mmapped weights); EUNSUPPORTED if the backend cannot.
enum llem_err backend_buffer_from_host_ptr(struct backend *be, void *ptr, size_t size,
                                           struct backend_buffer **out, struct llem_errbuf *eb);
void backend_buffer_free(struct backend_buffer *b); // NULL is a no-op
// Sets every byte of b to `value` (KV cache clear).
void backend_buffer_clear(struct backend_buffer *b, uint8_t value);

// Binds t (not a view) to buf at byte offset offs (no copy): weights into a weight buffer,
// KV cache tensors into a KV buffer. EINVAL if [offs, offs + tensor_nbytes(t)) is outside buf.
enum llem_err backend_tensor_bind(struct tensor *t, struct backend_buffer *buf, size_t offs,
                                  struct llem_errbuf *eb);

// Repacks a bound weight for this backend's kernels where it has a faster layout (CPU: Q4_0
// in groups of 8 rows); *bytes says how much memory that took (0: nothing done). The tensor's
// original bytes are still read by ops without a repacked kernel. ENOMEM on failure.
enum llem_err backend_weight_prepare(struct backend *be, struct tensor *t, size_t *bytes,
                                     struct llem_errbuf *eb);
void backend_weight_release(struct backend *be, struct tensor *t); // NULL-safe, idempotent

// The prepared copy as bytes, so a loader can keep it on disk and skip the preparation next
// time. backend_weight_plan: the size weight_prepare's copy of t would have (0: it makes none,
// or the backend cannot adopt copies) and its layout fingerprint, which changes whenever the
// backend's layout does. backend_weight_adopt: t reads `data` (bytes long, laid out as planned;
// borrowed: it must outlive t's use) instead of making a copy; EINVAL when bytes differs from
// the plan. backend_weight_prepared: t's prepared bytes (NULL: none).
size_t backend_weight_plan(struct backend *be, const struct tensor *t, uint64_t *layout);
enum llem_err backend_weight_adopt(struct backend *be, struct tensor *t, const void *data,
                                   size_t bytes, struct llem_errbuf *eb);
const void *backend_weight_prepared(const struct backend *be, const struct tensor *t,
                                    size_t *bytes);

// ---- tensor data ---------------------------------------------------------------------------------
// Copies between host memory and t's storage (t bound, [offset, offset+size) inside
// tensor_nbytes(t); asserts otherwise: these are programming errors, not input errors).
void backend_tensor_set(struct tensor *t, const void *data, size_t offset, size_t size);
void backend_tensor_get(const struct tensor *t, void *data, size_t offset, size_t size);

// ---- graph memory + execution --------------------------------------------------------------------

// A compute-memory allocator: plans a graph and binds its inputs/intermediates to one backend
// buffer that grows only when a plan's peak exceeds it (so after warm-up nothing is allocated).
struct backend_galloc;

enum llem_err backend_galloc_new(struct backend *be, struct backend_galloc **out,
                                 struct llem_errbuf *eb);
void backend_galloc_free(struct backend_galloc *ga); // frees the compute buffer too
// Plans gr and sizes the buffer for it without binding (call with the worst-case graph at
// context creation, so a later alloc never reallocates).
enum llem_err backend_galloc_reserve(struct backend_galloc *ga, const struct graph *gr,
                                     struct llem_errbuf *eb);
// Plans gr and binds every input and intermediate (views resolved to their root's storage).
// Afterwards inputs can be set and the graph computed. Fails with the graph's recording error
// if it has one, or ENOMEM (the tensors are then unbound).
enum llem_err backend_galloc_alloc_graph(struct backend_galloc *ga, struct graph *gr,
                                         struct llem_errbuf *eb);
size_t backend_galloc_buffer_size(const struct backend_galloc *ga);      // bytes now allocated
const struct plan *backend_galloc_plan(const struct backend_galloc *ga); // last plan

// Executes gr (allocated by a galloc of the same backend) and waits for it to finish.
enum llem_err backend_graph_compute(struct backend *be, struct graph *gr, struct llem_errbuf *eb);
bool backend_supports_op(const struct backend *be, const struct tensor *t);

// Per-op statistics (enabled with backend_params.stats or backend_set_stats).
void backend_set_stats(struct backend *be, bool on);
void backend_reset_stats(struct backend *be);
