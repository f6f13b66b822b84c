// tensor/graph.h: recording a forward pass as a graph of ops. Architecture code calls op_*
// like straight-line math; each call appends a node (recording order is a valid topological
// order) and returns its result tensor, owned by the graph. A backend plans memory for the
// graph (tensor/plan.h) and executes it (backend/backend.h). Entry points: graph_new,
// graph_reset, graph_input, op_*, graph_set_output, graph_error.
//
// Errors are sticky: an op given bad shapes (or the graph running out of memory) records the
// first error in the graph and returns a placeholder tensor, so forward code needs no checks
// per call; graph_error() reports it, and planning/compute refuse a graph in error.
// Not thread-safe: one graph is built and used by one thread (the runner).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"

struct graph; // opaque: tensor pool + node list

// Creates an empty graph. Tensor storage grows in chunks while a forward is first built and is
// kept by graph_reset, so rebuilding the same forward allocates nothing after warm-up.
enum llem_err graph_new(struct graph **out, struct llem_errbuf *eb);
void graph_free(struct graph *gr); // NULL is a no-op; tensors of gr die here

// Forgets every tensor and the error (tensors from before are invalid); keeps capacity.
void graph_reset(struct graph *gr);

// LLEM_OK, or the first recording error (message copied into eb when not NULL).
enum llem_err graph_error(const struct graph *gr, struct llem_errbuf *eb);

// Records a caller's validation failure (the first error wins) and returns the placeholder
// tensor, so a layer can refuse bad shapes the same way ops do.
struct tensor *graph_fail(struct graph *gr, const char *msg);

// All tensors the graph created, in creation order (leaves and nodes); id == index.
int graph_n_tensors(const struct graph *gr);
struct tensor *graph_tensor(const struct graph *gr, int i);

// Set by a backend's graph allocator after planning: the compute buffer the graph's
// intermediates live in and the plan (for each node's scratch area). Cleared by graph_reset.
struct plan;
void graph_bind_compute(struct graph *gr, struct backend_buffer *buf, const struct plan *plan);
struct backend_buffer *graph_compute_buffer(const struct graph *gr);
const struct plan *graph_plan(const struct graph *gr);

// ---- leaves ------------------------------------------------------------------------------------

// A new contiguous tensor flagged INPUT: the planner gives it memory; the caller fills it with
// backend_tensor_set after the graph is allocated. ne1..ne3 = 1 for fewer dims.
struct tensor *graph_input(struct graph *gr, const char *name, uint32_t type, int64_t ne0,
                           int64_t ne1, int64_t ne2, int64_t ne3);

// Marks t as an output: it stays alive (never reused) until compute finishes.
void graph_set_output(struct graph *gr, struct tensor *t);

// ---- ops ---------------------------------------------------------------------------------------
// Shapes follow ggml: ne[0] is the innermost (contiguous) dim. Unless stated, results are F32
// and contiguous, and F32 inputs may be non-contiguous views (rows are read through nb[]).

// Rows of `table` ([n_embd, n_rows, b2, b3], any type) at `ids` (I32 [n, b2, b3]), dequantized:
// -> F32 [n_embd, n, b2, b3]. Ids out of range are clamped by no one: callers validate tokens.
struct tensor *op_get_rows(struct graph *gr, struct tensor *table, struct tensor *ids);
// a + b and a * b; b broadcasts to a (each a->ne[i] a multiple of b->ne[i]: a bias row works).
struct tensor *op_add(struct graph *gr, struct tensor *a, struct tensor *b);
struct tensor *op_mul(struct graph *gr, struct tensor *a, struct tensor *b);
// x * s (op_scale_bias: x * s + b).
struct tensor *op_scale(struct graph *gr, struct tensor *x, float s);
struct tensor *op_scale_bias(struct graph *gr, struct tensor *x, float s, float b);
// x / sqrt(mean(x^2) + eps) over ne[0] of every row (no weight: multiply with op_mul).
struct tensor *op_rms_norm(struct graph *gr, struct tensor *x, float eps);
// w [K, N, w2, w3] (any type; rows dequantized or dotted in the type's vec_dot partner) times
// x [K, M, x2, x3] (F32) -> [N, M, x2, x3]; w broadcasts over x2/x3 (x2 a multiple of w2).
struct tensor *op_mul_mat(struct graph *gr, struct tensor *w, struct tensor *x);
// Rotary embedding of x [head_dim, n_head, n_tokens, 1] (F32) at positions pos (I32
// [n_tokens]); freq_factors (F32 [n_rot/2]) may be NULL. YaRN as llama.cpp's rope; plain
// RoPE is ext_factor 0, attn_factor 1, freq_scale 1.
struct tensor *op_rope(struct graph *gr, struct tensor *x, struct tensor *pos,
                       struct tensor *freq_factors, const struct op_rope_params *p);
// softmax(x * scale + mask) over ne[0] of every row of x [n_kv, n_q, n_head, b3].
// mask (F32 or F16 [n_kv, >= n_q, 1 or n_head, 1], broadcast over heads) and sinks (F32
// [n_head]: one extra logit per head that takes probability mass but has no value) may be NULL.
struct tensor *op_softmax_ext(struct graph *gr, struct tensor *x, struct tensor *mask, float scale,
                              struct tensor *sinks);
struct tensor *op_silu(struct graph *gr, struct tensor *x);
// silu(a) * b, fused (a and b same shape): the SwiGLU FFN's gate.
struct tensor *op_swiglu(struct graph *gr, struct tensor *a, struct tensor *b);
// Writes src converted to dst's type into dst's storage (same element count; dst may be a view,
// e.g. a slice of the KV cache). Returns a view of dst that depends on the copy.
// Conversions: F32/F16 -> F32/F16, and F32 -> any type with a from_f32 (Q8_0, Q4_0, ...).
struct tensor *op_cpy(struct graph *gr, struct tensor *src, struct tensor *dst);
// A contiguous copy of x (same type); op_cont_type converts (F32 -> F16/Q8_0/..., F16 -> F32).
struct tensor *op_cont(struct graph *gr, struct tensor *x);
struct tensor *op_cont_type(struct graph *gr, struct tensor *x, uint32_t type);
// Scatter: row i of src (F32 [ne0, n, b2, b3]) is converted to dst's type and written to row
// idx[i] of dst ([ne0, n_dst_rows, b2, b3], I32 or I64 idx [n, b2?, b3?]). Returns a view of
// dst that depends on the write (the KV cache stores new K/V cells with it).
struct tensor *op_set_rows(struct graph *gr, struct tensor *dst, struct tensor *src,
                           struct tensor *idx);
// Attention without materialising scores: q F32 [D, n_q, n_head, 1], k [D, n_kv, n_head_kv, 1]
// and v [Dv, n_kv, n_head_kv, 1] (F32, F16, or Q8_0/Q4_0 via dequantization); n_head a
// multiple of n_head_kv (GQA). mask as op_softmax_ext (F16 or F32 [n_kv, >= n_q]), sinks F32
// [n_head] or NULL. -> F32 [Dv, n_head, n_q, 1] (heads adjacent: reshape to [Dv*n_head, n_q]).
struct tensor *op_flash_attn_ext(struct graph *gr, struct tensor *q, struct tensor *k,
                                 struct tensor *v, struct tensor *mask, float scale,
                                 struct tensor *sinks);

// ---- views (no data movement; the result aliases x's storage) -----------------------------------
// ne/nb in elements/bytes as in struct tensor; offs in bytes from x's first byte. The view must
// stay inside x's storage (checked).
struct tensor *op_view_1d(struct graph *gr, struct tensor *x, int64_t ne0, size_t offs);
struct tensor *op_view_2d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1, size_t nb1,
                          size_t offs);
struct tensor *op_view_3d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1, int64_t ne2,
                          size_t nb1, size_t nb2, size_t offs);
struct tensor *op_view_4d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1, int64_t ne2,
                          int64_t ne3, size_t nb1, size_t nb2, size_t nb3, size_t offs);
// Same elements, new shape; x must be contiguous (use op_cont first).
struct tensor *op_reshape_2d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1);
struct tensor *op_reshape_3d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1,
                             int64_t ne2);
struct tensor *op_reshape_4d(struct graph *gr, struct tensor *x, int64_t ne0, int64_t ne1,
                             int64_t ne2, int64_t ne3);
// Source dim i becomes output dim a_i (ggml convention; a0..a3 a permutation of 0..3).
struct tensor *op_permute(struct graph *gr, struct tensor *x, int a0, int a1, int a2, int a3);
// Swaps dims 0 and 1.
struct tensor *op_transpose(struct graph *gr, struct tensor *x);
