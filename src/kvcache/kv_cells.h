// kvcache/kv_cells.h: the bookkeeping half of the KV cache, independent of any backend.
// Cells hold one token each (its K/V rows live in backend tensors at the same index); a cell
// has a position and a 64-bit set of sequences, so a shared prompt prefix is stored once.
// Free cells sit in a two-level bitmap, so a batch finds its cells first-free-first in
// O(batch) amortized. Each sequence also has a bitmap over the cells (the transpose of the
// per-cell sets), so sequence operations and the attention mask work 64 cells at a time; the
// mask is built into a reused scratch buffer. Single-threaded: only the runner thread that
// owns the cache calls these.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

enum { KV_MAX_SEQ = 64 };

enum kv_kind {
    KV_CAUSAL,  // full causal attention
    KV_SWA,     // sliding window: a token sees positions (pos - window, pos]
    KV_CHUNKED, // a token sees only earlier tokens of its own chunk (llama4-style)
};

struct kv_cells_params {
    enum kv_kind kind;
    int32_t window;      // KV_SWA: window in tokens (> 0)
    int32_t memory;      // KV_SWA: tokens kept per sequence (>= window; 0 = window) so a
                         // prefix can still be resumed
    int32_t chunk;       // KV_CHUNKED: chunk size in tokens (> 0)
    int32_t n_seq_max;   // 1..KV_MAX_SEQ sequences share the cache
    int32_t n_ctx_seq;   // capacity per sequence, tokens
    int32_t n_batch_max; // most tokens in one batch
    int32_t padding;     // the view range is rounded to this many cells (>= 1)
    bool mask_f16;       // build the mask as IEEE half (0x0000 / 0xFC00) instead of float
};

struct kv_cells {
    struct kv_cells_params p;
    int32_t window;           // effective window (INT32_MAX = unlimited)
    int32_t memory;           // effective SWA memory (INT32_MAX = unlimited)
    int32_t n_cells;
    int32_t n_used;           // cells with at least one sequence
    llem_pos *pos;            // [n_cells] position of the token in the cell (64 spare
                              // entries follow, always -1)
    uint64_t *seqs;           // [n_cells] bit s set: the cell belongs to sequence s; 0 = free
    uint64_t *free_bits;      // [n_words] bit set: the cell is free
    uint64_t *free_summary;   // [n_summary] bit w set: free_bits[w] != 0
    int32_t n_words, n_summary;
    int32_t seq_min[KV_MAX_SEQ]; // cell range per sequence; seq_min > seq_max when empty
    int32_t seq_max[KV_MAX_SEQ]; // (may stay wider than the cells after a rollback)
    uint64_t *seq_bits;       // [n_seq_max * seq_words] the transpose of seqs: bit (cell & 63)
                              // of word s * seq_words + (cell >> 6) set: cell belongs to s
    int32_t seq_words;        // n_words + 1: a zero word ends each row, so 64 bits can be read
                              // at any bit offset below n_cells
    llem_pos seq_pos_lo[KV_MAX_SEQ]; // lowest and highest position held by each sequence,
    llem_pos seq_pos_hi[KV_MAX_SEQ]; // exact; lo = INT32_MAX, hi = -1 when it holds none
    uint64_t *row_bits;       // [seq_words] scratch: the bitmap of one mask row
    uint64_t *view_bits;      // [seq_words] scratch: a sequence's bitmap over the view and
    llem_pos *view_pos;       // [2 * seq_words] the lowest, highest position of its cells in
                              // each 64 cells of the view (mask rows that need position tests)
    bool mask_avx2;           // expand mask rows with AVX2 (set at init from the CPU's
                              // features; clearing it forces the portable loop)
    bool causal;              // false turns the causal rule off (bidirectional batches)

    // ---- the current batch (set by kv_cells_start) ----
    int32_t n_tokens;
    int32_t *locs;            // [n_batch_max] cell of each token of the batch
    int32_t view_min;         // first cell of the attention view (padded)
    int32_t view_len;         // cells in the view (padded); 0 when nothing to attend
    void *mask;               // [n_tokens] rows of view_len float or half, mask_stride
                              // elements apart; 0 = attend, -inf = not
    int32_t mask_stride;      // elements between mask rows (>= view_len)
    size_t mask_cap_bytes;    // scratch capacity, kept across batches
};

// Sizes the cell array: n_seq_max * n_ctx_seq (causal/chunked) or n_seq_max * memory +
// n_batch_max (SWA), rounded up to the padding. LLEM_EINVAL for bad parameters (e.g. more than
// 64 sequences), LLEM_ENOMEM. On error the struct is left deinitialized.
enum llem_err kv_cells_init(struct kv_cells *c, const struct kv_cells_params *p,
                            struct llem_errbuf *eb);
void kv_cells_deinit(struct kv_cells *c);
void kv_cells_clear(struct kv_cells *c); // frees every cell

static inline bool kv_cell_has_seq(const struct kv_cells *c, int32_t cell, llem_seq s)
{
    return (c->seqs[cell] >> s) & 1u;
}

// Starts a forward pass for a batch of n tokens (pos[i], seq[i]): applies the sliding-window
// eviction, assigns cells first-free-first (locs), computes the view range and builds the mask
// into the scratch buffer. LLEM_EFULL (cache unchanged except SWA eviction of tokens that can
// no longer be attended) when not enough cells are free; LLEM_EINVAL for a bad seq or n;
// LLEM_ENOMEM if the mask scratch cannot grow. Allocates nothing once warmed up.
enum llem_err kv_cells_start(struct kv_cells *c, int32_t n, const llem_pos *pos,
                             const llem_seq *seq, struct llem_errbuf *eb);

// Undoes the cell assignment of the last kv_cells_start (a forward pass that failed): the
// batch's cells lose their sequence again. Sequence ranges may stay wider than needed.
void kv_cells_rollback(struct kv_cells *c, const llem_seq *seq);

// As kv_cells_start for worst-case sizing: no metadata changes; the view covers every cell.
enum llem_err kv_cells_reserve(struct kv_cells *c, int32_t n, struct llem_errbuf *eb);

// Shares the first `len` positions of src with dst by reference (no tensor copy); dst's old
// cells are dropped first. Does nothing when src == dst or either is outside [0, n_seq_max).
void kv_cells_copy_prefix(struct kv_cells *c, llem_seq src, llem_seq dst, llem_pos len);

// Removes positions [begin, end) of seq; end < 0 means to the end. For a finite end, later
// positions of seq move back by (end - begin) and *shift (if not NULL) says which cells need
// their keys rotated again (shift->n_cells == 0: none). LLEM_EUNSUPPORTED, with nothing
// changed, when a cell that must move is shared with another sequence.
struct kv_shift {
    llem_seq seq;
    llem_pos begin;      // cells of seq whose (new) position is >= begin moved
    llem_pos delta;      // by this many positions (negative)
    int32_t first_cell;  // they all lie in [first_cell, first_cell + n_cells)
    int32_t n_cells;
};
enum llem_err kv_cells_remove(struct kv_cells *c, llem_seq seq, llem_pos begin, llem_pos end,
                              struct kv_shift *shift, struct llem_errbuf *eb);

// Fills delta[i] for cell first_cell + i: shift->delta for moved cells, 0 for the others.
void kv_cells_shift_deltas(const struct kv_cells *c, const struct kv_shift *shift,
                           int32_t *delta);

// True if a sequence can continue at `pos` with what the cache still holds (always true
// without a sliding window).
bool kv_cells_can_resume(const struct kv_cells *c, llem_seq seq, llem_pos pos);

// Number of positions seq holds, and its highest position (-1 when empty or out of range).
int32_t kv_cells_seq_count(const struct kv_cells *c, llem_seq seq);
llem_pos kv_cells_seq_pos_max(const struct kv_cells *c, llem_seq seq);
