// kvcache/kv_cells.c: cell bookkeeping of the KV cache: positions, sequence bitmaps, the
// two-level free bitmap, per-sequence cell ranges, sliding-window eviction and the mask.
// The rules (first-free placement, view range, mask values, SWA eviction timing, remove and
// shift) follow the upstream causal cache described in research/ollama.md §6.1.
#include "kvcache/kv_cells.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"

#define KV_UNLIMITED INT32_MAX

static int32_t round_up_i32(int32_t v, int32_t pad)
{
    return (int32_t)((((int64_t)v + pad - 1) / pad) * pad);
}

static int32_t round_down_i32(int32_t v, int32_t pad)
{
    return (v / pad) * pad;
}

// ---- free bitmap ---------------------------------------------------------------------------

static void free_mark(struct kv_cells *c, int32_t cell)
{
    int32_t w = cell >> 6;
    c->free_bits[w] |= 1ull << (cell & 63);
    c->free_summary[w >> 6] |= 1ull << (w & 63);
}

static void free_unmark(struct kv_cells *c, int32_t cell)
{
    int32_t w = cell >> 6;
    c->free_bits[w] &= ~(1ull << (cell & 63));
    if (c->free_bits[w] == 0) {
        c->free_summary[w >> 6] &= ~(1ull << (w & 63));
    }
}

// First free cell at or after `from`, or -1. Cost: the words skipped, so a batch that takes
// cells in increasing order pays O(batch + skipped words / 64).
static int32_t free_next(const struct kv_cells *c, int32_t from)
{
    if (from >= c->n_cells) {
        return -1;
    }
    int32_t w = from >> 6;
    uint64_t bits = c->free_bits[w] & (~0ull << (from & 63));
    if (bits) {
        return (w << 6) + __builtin_ctzll(bits);
    }
    w++;
    for (int32_t sw = w >> 6; sw < c->n_summary; sw++) {
        uint64_t sum = c->free_summary[sw];
        if (sw == (w >> 6)) {
            sum &= (w & 63) ? (~0ull << (w & 63)) : ~0ull;
        }
        if (sum) {
            int32_t word = (sw << 6) + __builtin_ctzll(sum);
            return (word << 6) + __builtin_ctzll(c->free_bits[word]);
        }
    }
    return -1;
}

// Drops sequence s from a cell, freeing the cell when no sequence is left.
static void cell_drop_seq(struct kv_cells *c, int32_t cell, llem_seq s)
{
    c->seqs[cell] &= ~(1ull << s);
    if (c->seqs[cell] == 0) {
        free_mark(c, cell);
        c->n_used--;
    }
}

static void cell_add_seq(struct kv_cells *c, int32_t cell, llem_seq s)
{
    if (c->seqs[cell] == 0) {
        free_unmark(c, cell);
        c->n_used++;
    }
    c->seqs[cell] |= 1ull << s;
}

static void seq_range_reset(struct kv_cells *c, llem_seq s)
{
    c->seq_min[s] = INT32_MAX;
    c->seq_max[s] = -1;
}

static void seq_range_widen(struct kv_cells *c, llem_seq s, int32_t cell)
{
    if (cell < c->seq_min[s]) {
        c->seq_min[s] = cell;
    }
    if (cell > c->seq_max[s]) {
        c->seq_max[s] = cell;
    }
}

// ---- life cycle ----------------------------------------------------------------------------

enum llem_err kv_cells_init(struct kv_cells *c, const struct kv_cells_params *p,
                            struct llem_errbuf *eb)
{
    memset(c, 0, sizeof *c);
    if (p->n_seq_max < 1 || p->n_seq_max > KV_MAX_SEQ) {
        return llem_errf(eb, LLEM_EINVAL, "kv cache: %d sequences requested, at most %d supported",
                         p->n_seq_max, KV_MAX_SEQ);
    }
    if (p->n_ctx_seq < 1 || p->n_batch_max < 1 || p->padding < 1 || p->padding > 4096) {
        return llem_errf(eb, LLEM_EINVAL, "kv cache: bad context %d, batch %d or padding %d",
                         p->n_ctx_seq, p->n_batch_max, p->padding);
    }
    int32_t window = KV_UNLIMITED, memory = KV_UNLIMITED;
    if (p->kind == KV_SWA) {
        if (p->window < 1) {
            return llem_errf(eb, LLEM_EINVAL, "kv cache: sliding window must be > 0");
        }
        window = p->window;
        memory = p->memory ? p->memory : window;
        // One extra cell per sequence when several share the cache, so a sequence can roll
        // back over its stop token without losing the window (upstream behaviour).
        if (p->n_seq_max > 1 && memory < window + 1 && window < KV_UNLIMITED) {
            memory = window + 1;
        }
        if (memory >= p->n_ctx_seq) {
            memory = KV_UNLIMITED;
        }
        if (memory < window) {
            return llem_errf(eb, LLEM_EINVAL, "kv cache: window memory %d smaller than window %d",
                             memory, window);
        }
    } else if (p->kind == KV_CHUNKED && p->chunk < 1) {
        return llem_errf(eb, LLEM_EINVAL, "kv cache: chunk size must be > 0");
    }
    int64_t n_cells = memory == KV_UNLIMITED
                          ? (int64_t)p->n_seq_max * p->n_ctx_seq
                          : (int64_t)p->n_seq_max * memory + p->n_batch_max;
    n_cells = ((n_cells + p->padding - 1) / p->padding) * p->padding;
    if (n_cells > (1 << 26)) {
        return llem_errf(eb, LLEM_ELIMIT, "kv cache: %lld cells is too many", (long long)n_cells);
    }
    c->p = *p;
    c->window = window;
    c->memory = memory;
    c->n_cells = (int32_t)n_cells;
    c->n_words = (c->n_cells + 63) / 64;
    c->n_summary = (c->n_words + 63) / 64;
    c->causal = true;
    c->pos = llem_calloc((size_t)c->n_cells, sizeof *c->pos);
    c->seqs = llem_calloc((size_t)c->n_cells, sizeof *c->seqs);
    c->free_bits = llem_calloc((size_t)c->n_words, sizeof *c->free_bits);
    c->free_summary = llem_calloc((size_t)c->n_summary, sizeof *c->free_summary);
    c->locs = llem_calloc((size_t)p->n_batch_max, sizeof *c->locs);
    if (!c->pos || !c->seqs || !c->free_bits || !c->free_summary || !c->locs) {
        kv_cells_deinit(c);
        return llem_errf(eb, LLEM_ENOMEM, "kv cache: out of memory for %d cells", (int)n_cells);
    }
    kv_cells_clear(c);
    return LLEM_OK;
}

void kv_cells_deinit(struct kv_cells *c)
{
    if (!c) {
        return;
    }
    llem_free(c->pos);
    llem_free(c->seqs);
    llem_free(c->free_bits);
    llem_free(c->free_summary);
    llem_free(c->locs);
    llem_aligned_free(c->mask);
    memset(c, 0, sizeof *c);
}

void kv_cells_clear(struct kv_cells *c)
{
    for (int32_t i = 0; i < c->n_cells; i++) {
        c->pos[i] = -1;
        c->seqs[i] = 0;
    }
    memset(c->free_bits, 0, (size_t)c->n_words * sizeof *c->free_bits);
    memset(c->free_summary, 0, (size_t)c->n_summary * sizeof *c->free_summary);
    for (int32_t i = 0; i < c->n_cells; i++) {
        free_mark(c, i);
    }
    for (int s = 0; s < KV_MAX_SEQ; s++) {
        seq_range_reset(c, s);
    }
    c->n_used = 0;
    c->n_tokens = 0;
    c->view_min = 0;
    c->view_len = 0;
}

// ---- forward pass --------------------------------------------------------------------------

static void range_widen(int32_t *lo, int32_t *hi, int32_t cell)
{
    if (cell < *lo) {
        *lo = cell;
    }
    if (cell > *hi) {
        *hi = cell;
    }
}

// Sliding-window sweep before placing a batch: every sequence forgets cells older than its
// memory, and the view covers, for sequences in the batch, the cells inside their window.
static void swa_sweep(struct kv_cells *c, int32_t n, const llem_pos *pos, const llem_seq *seq,
                      int32_t *lo, int32_t *hi)
{
    llem_pos low[KV_MAX_SEQ];
    uint64_t in_batch = 0;
    for (int32_t i = 0; i < n; i++) {
        llem_seq s = seq[i];
        if (!((in_batch >> s) & 1) || pos[i] < low[s]) {
            low[s] = pos[i];
        }
        in_batch |= 1ull << s;
    }
    for (llem_seq s = 0; s < c->p.n_seq_max; s++) {
        if (c->seq_min[s] > c->seq_max[s]) {
            continue;
        }
        bool cur = (in_batch >> s) & 1;
        if (!cur) { // not in this batch: its next token would come after its last one
            llem_pos last = 0;
            for (int32_t i = c->seq_min[s]; i <= c->seq_max[s]; i++) {
                if (kv_cell_has_seq(c, i, s) && c->pos[i] > last) {
                    last = c->pos[i];
                }
            }
            low[s] = last + 1;
        }
        int32_t old_min = c->seq_min[s], old_max = c->seq_max[s];
        seq_range_reset(c, s);
        for (int32_t i = old_min; i <= old_max; i++) {
            if (!kv_cell_has_seq(c, i, s)) {
                continue;
            }
            if ((int64_t)c->pos[i] < (int64_t)low[s] - c->memory) {
                cell_drop_seq(c, i, s);
            } else {
                seq_range_widen(c, s, i);
            }
            if (cur && (int64_t)c->pos[i] >= (int64_t)low[s] - c->window) {
                range_widen(lo, hi, i);
            }
        }
    }
}

// Row stride of the mask in elements: the view length rounded up to 64 bytes, plus 64 bytes
// when that lands on a multiple of 4 KiB (see mask_build).
static int32_t mask_stride_for(int32_t len, size_t elem)
{
    int32_t per_line = (int32_t)(64 / elem);
    int32_t stride = (len + per_line - 1) / per_line * per_line;
    if (((size_t)stride * elem) % 4096 == 0) {
        stride += per_line;
    }
    return stride;
}

static enum llem_err mask_reserve(struct kv_cells *c, int32_t n_rows, int32_t n_cols,
                                  struct llem_errbuf *eb)
{
    size_t elem = c->p.mask_f16 ? 2 : 4;
    c->mask_stride = mask_stride_for(n_cols, elem);
    size_t need = (size_t)n_rows * (size_t)c->mask_stride * elem;
    if (need <= c->mask_cap_bytes) {
        return LLEM_OK;
    }
    size_t cap = need + need / 4 + 64;
    void *m = llem_aligned_alloc(64, cap);
    if (!m) {
        return llem_errf(eb, LLEM_ENOMEM, "kv cache: no memory for a %d x %d mask", n_rows,
                         n_cols);
    }
    llem_aligned_free(c->mask);
    c->mask = m;
    c->mask_cap_bytes = cap;
    return LLEM_OK;
}

// Fills n elements of `size` bytes with the pattern at dst[0..size): writes one element, then
// doubles the filled prefix with memcpy (glibc's vectorized copy does the bulk).
static void fill_pattern(void *dst, size_t n, const void *pattern, size_t size)
{
    if (n == 0) {
        return;
    }
    unsigned char *d = dst;
    memcpy(d, pattern, size);
    size_t done = size, total = n * size;
    while (done < total) {
        size_t chunk = LLEM_MIN(done, total - done);
        memcpy(d + done, d, chunk);
        done += chunk;
    }
}

static void fill_f32(float *dst, int32_t n, float v)
{
    fill_pattern(dst, (size_t)n, &v, sizeof v);
}

static void fill_f16(uint16_t *dst, int32_t n, uint16_t v)
{
    fill_pattern(dst, (size_t)n, &v, sizeof v);
}

// Lowest position a token at position p may attend (window and chunk rules); the causal rule
// gives the highest (p itself, or unbounded when causality is off).
static inline int64_t visible_lo(const struct kv_cells *c, llem_pos p)
{
    int64_t lo = (int64_t)p - c->window;
    if (c->p.kind == KV_CHUNKED && p - p % c->p.chunk > lo) {
        lo = p - p % c->p.chunk;
    }
    return lo;
}

// Builds the mask for the current batch. Rows are mask_stride elements apart: the stride is
// padded off multiples of 4 KiB so rows don't alias in L1 when written column-wise. Two
// strategies with the same result:
//  - decode-like batches (one token per sequence): fill with -inf row by row, then one pass
//    over the view's cells opens each cell in its sequences' rows (O(view + rows), not
//    O(view x rows));
//  - prompt chunks: row by row, a branch-free pass over the sequence's cell range.
static void mask_build(struct kv_cells *c, const llem_pos *pos, const llem_seq *seq)
{
    const int32_t len = c->view_len, v0 = c->view_min, n = c->n_tokens;
    const size_t stride = (size_t)c->mask_stride;
    const bool f16 = c->p.mask_f16;
    int32_t row_of[KV_MAX_SEQ];
    uint64_t batch_seqs = 0;
    bool one_row_per_seq = true;
    for (int32_t i = 0; i < n; i++) {
        uint64_t bit = 1ull << seq[i];
        one_row_per_seq = one_row_per_seq && !(batch_seqs & bit);
        batch_seqs |= bit;
        row_of[seq[i]] = i;
    }
    for (int32_t i = 0; i < n; i++) {
        if (f16) {
            fill_f16((uint16_t *)c->mask + i * stride, len, 0xFC00);
        } else {
            fill_f32((float *)c->mask + i * stride, len, -INFINITY);
        }
    }
    if (one_row_per_seq) {
        llem_pos lo[KV_MAX_SEQ], hi[KV_MAX_SEQ];
        for (int32_t i = 0; i < n; i++) {
            int64_t l = visible_lo(c, pos[i]);
            lo[seq[i]] = l < 0 ? 0 : (llem_pos)l;
            hi[seq[i]] = c->causal ? pos[i] : INT32_MAX;
        }
        for (int32_t j = 0; j < len; j++) {
            uint64_t m = c->seqs[v0 + j] & batch_seqs;
            const llem_pos cp = c->pos[v0 + j];
            while (m) {
                int s = __builtin_ctzll(m);
                m &= m - 1;
                if (cp <= hi[s] && cp >= lo[s]) {
                    size_t at = (size_t)row_of[s] * stride + (size_t)j;
                    if (f16) {
                        ((uint16_t *)c->mask)[at] = 0;
                    } else {
                        ((float *)c->mask)[at] = 0.0f;
                    }
                }
            }
        }
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        const llem_seq s = seq[i];
        const uint64_t bit = 1ull << s;
        const int64_t lo = visible_lo(c, pos[i]);
        const int64_t hi = c->causal ? pos[i] : INT64_MAX;
        const int32_t a = LLEM_MAX(c->seq_min[s], v0) - v0;
        const int32_t b = LLEM_MIN(c->seq_max[s], v0 + len - 1) - v0 + 1;
        if (f16) {
            uint16_t *row = (uint16_t *)c->mask + i * stride;
            for (int32_t j = a; j < b; j++) {
                const int32_t cell = v0 + j;
                bool vis = (c->seqs[cell] & bit) && c->pos[cell] <= hi && c->pos[cell] >= lo;
                row[j] = vis ? 0 : 0xFC00;
            }
        } else {
            float *row = (float *)c->mask + i * stride;
            for (int32_t j = a; j < b; j++) {
                const int32_t cell = v0 + j;
                bool vis = (c->seqs[cell] & bit) && c->pos[cell] <= hi && c->pos[cell] >= lo;
                row[j] = vis ? 0.0f : -INFINITY;
            }
        }
    }
}

enum llem_err kv_cells_start(struct kv_cells *c, int32_t n, const llem_pos *pos,
                             const llem_seq *seq, struct llem_errbuf *eb)
{
    if (n < 1 || n > c->p.n_batch_max) {
        return llem_errf(eb, LLEM_EINVAL, "kv cache: batch of %d tokens (max %d)", n,
                         c->p.n_batch_max);
    }
    for (int32_t i = 0; i < n; i++) {
        if (seq[i] < 0 || seq[i] >= c->p.n_seq_max || pos[i] < 0) {
            return llem_errf(eb, LLEM_EINVAL, "kv cache: token %d has sequence %d, position %d",
                             i, seq[i], pos[i]);
        }
    }
    int32_t lo = INT32_MAX, hi = -1;
    if (c->memory != KV_UNLIMITED) {
        swa_sweep(c, n, pos, seq, &lo, &hi);
    } else {
        uint64_t seen = 0;
        for (int32_t i = 0; i < n; i++) {
            llem_seq s = seq[i];
            if (!((seen >> s) & 1) && c->seq_min[s] <= c->seq_max[s]) {
                range_widen(&lo, &hi, c->seq_min[s]);
                range_widen(&lo, &hi, c->seq_max[s]);
            }
            seen |= 1ull << s;
        }
    }
    if (c->n_cells - c->n_used < n) {
        return llem_errf(eb, LLEM_EFULL, "kv cache full: %d of %d cells used, batch needs %d",
                         c->n_used, c->n_cells, n);
    }
    int32_t next = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t cell = free_next(c, next);
        LLEM_ASSERT(cell >= 0); // n_used says there is room
        c->locs[i] = cell;
        next = cell + 1;
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t cell = c->locs[i];
        c->pos[cell] = pos[i];
        cell_add_seq(c, cell, seq[i]);
        seq_range_widen(c, seq[i], cell);
        range_widen(&lo, &hi, cell);
    }
    c->n_tokens = n;
    c->view_min = round_down_i32(lo, c->p.padding);
    c->view_len = round_up_i32(hi + 1, c->p.padding) - c->view_min;
    enum llem_err rc = mask_reserve(c, n, c->view_len, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    mask_build(c, pos, seq);
    return LLEM_OK;
}

void kv_cells_rollback(struct kv_cells *c, const llem_seq *seq)
{
    for (int32_t i = 0; i < c->n_tokens; i++) {
        if (kv_cell_has_seq(c, c->locs[i], seq[i])) {
            cell_drop_seq(c, c->locs[i], seq[i]);
        }
    }
    c->n_tokens = 0;
}

enum llem_err kv_cells_reserve(struct kv_cells *c, int32_t n, struct llem_errbuf *eb)
{
    if (n < 1 || n > c->p.n_batch_max) {
        return llem_errf(eb, LLEM_EINVAL, "kv cache: batch of %d tokens (max %d)", n,
                         c->p.n_batch_max);
    }
    for (int32_t i = 0; i < n; i++) {
        c->locs[i] = i;
    }
    c->n_tokens = n;
    c->view_min = 0;
    c->view_len = c->n_cells;
    enum llem_err rc = mask_reserve(c, n, c->view_len, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    if (c->p.mask_f16) {
        fill_f16(c->mask, n * c->mask_stride, 0xFC00);
    } else {
        fill_f32(c->mask, n * c->mask_stride, -INFINITY);
    }
    return LLEM_OK;
}

// ---- sequence operations -------------------------------------------------------------------

void kv_cells_copy_prefix(struct kv_cells *c, llem_seq src, llem_seq dst, llem_pos len)
{
    if (src == dst || src < 0 || dst < 0 || src >= KV_MAX_SEQ || dst >= KV_MAX_SEQ) {
        return;
    }
    for (int32_t i = c->seq_min[dst]; i <= c->seq_max[dst]; i++) {
        if (kv_cell_has_seq(c, i, dst)) {
            cell_drop_seq(c, i, dst);
        }
    }
    seq_range_reset(c, dst);
    for (int32_t i = c->seq_min[src]; i <= c->seq_max[src]; i++) {
        if (kv_cell_has_seq(c, i, src) && c->pos[i] < len) {
            cell_add_seq(c, i, dst);
            seq_range_widen(c, dst, i);
        }
    }
}

enum llem_err kv_cells_remove(struct kv_cells *c, llem_seq seq, llem_pos begin, llem_pos end,
                              struct kv_shift *shift, struct llem_errbuf *eb)
{
    if (shift) {
        memset(shift, 0, sizeof *shift);
    }
    if (seq < 0 || seq >= c->p.n_seq_max || begin < 0 || (end >= 0 && end < begin)) {
        return llem_errf(eb, LLEM_EINVAL, "kv cache: remove seq %d [%d, %d)", seq, begin, end);
    }
    const bool to_end = end < 0;
    const llem_pos offset = to_end ? 0 : begin - end;
    const uint64_t bit = 1ull << seq;
    // Validate before changing anything: moving a shared cell would move it for the other
    // sequences too.
    if (!to_end && offset != 0) {
        for (int32_t i = c->seq_min[seq]; i <= c->seq_max[seq]; i++) {
            if ((c->seqs[i] & bit) && c->pos[i] >= end && (c->seqs[i] & ~bit)) {
                return llem_errf(eb, LLEM_EUNSUPPORTED,
                                 "kv cache: cannot shift cell %d, shared by several sequences", i);
            }
        }
    }
    int32_t old_min = c->seq_min[seq], old_max = c->seq_max[seq];
    seq_range_reset(c, seq);
    for (int32_t i = old_min; i <= old_max; i++) {
        if (!(c->seqs[i] & bit)) {
            continue;
        }
        if (c->pos[i] >= begin && (to_end || c->pos[i] < end)) {
            cell_drop_seq(c, i, seq);
            continue;
        }
        if (!to_end && c->pos[i] >= end) {
            c->pos[i] += offset;
        }
        seq_range_widen(c, seq, i);
    }
    if (shift && !to_end && offset != 0 && c->seq_min[seq] <= c->seq_max[seq]) {
        int32_t first = -1, last = -1;
        for (int32_t i = c->seq_min[seq]; i <= c->seq_max[seq]; i++) {
            if ((c->seqs[i] & bit) && c->pos[i] >= begin) {
                if (first < 0) {
                    first = i;
                }
                last = i;
            }
        }
        if (first >= 0) {
            shift->seq = seq;
            shift->begin = begin;
            shift->delta = offset;
            shift->first_cell = first;
            shift->n_cells = last - first + 1;
        }
    }
    return LLEM_OK;
}

void kv_cells_shift_deltas(const struct kv_cells *c, const struct kv_shift *shift,
                           int32_t *delta)
{
    for (int32_t i = 0; i < shift->n_cells; i++) {
        int32_t cell = shift->first_cell + i;
        bool moved = kv_cell_has_seq(c, cell, shift->seq) && c->pos[cell] >= shift->begin;
        delta[i] = moved ? shift->delta : 0;
    }
}

bool kv_cells_can_resume(const struct kv_cells *c, llem_seq seq, llem_pos pos)
{
    if (c->memory == KV_UNLIMITED) {
        return true;
    }
    if (seq < 0 || seq >= c->p.n_seq_max || c->seq_min[seq] > c->seq_max[seq]) {
        return false;
    }
    llem_pos first = INT32_MAX, last = -1;
    for (int32_t i = c->seq_min[seq]; i <= c->seq_max[seq]; i++) {
        if (kv_cell_has_seq(c, i, seq)) {
            first = LLEM_MIN(first, c->pos[i]);
            last = LLEM_MAX(last, c->pos[i]);
        }
    }
    if (last < 0) {
        return false;
    }
    llem_pos window_start = (llem_pos)LLEM_MAX(0, (int64_t)pos - c->window);
    return window_start >= first && pos <= last + 1;
}

int32_t kv_cells_seq_count(const struct kv_cells *c, llem_seq seq)
{
    int32_t n = 0;
    for (int32_t i = c->seq_min[seq]; i <= c->seq_max[seq]; i++) {
        n += kv_cell_has_seq(c, i, seq);
    }
    return n;
}

llem_pos kv_cells_seq_pos_max(const struct kv_cells *c, llem_seq seq)
{
    llem_pos m = -1;
    for (int32_t i = c->seq_min[seq]; i <= c->seq_max[seq]; i++) {
        if (kv_cell_has_seq(c, i, seq) && c->pos[i] > m) {
            m = c->pos[i];
        }
    }
    return m;
}
