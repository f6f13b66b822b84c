// kvcache/kv_cells.c: cell bookkeeping of the KV cache: positions, sequence bitmaps (per cell
// and per sequence), the two-level free bitmap, per-sequence cell and position ranges,
// sliding-window eviction and the mask. The rules (first-free placement, view range, mask
// values, SWA eviction timing, remove and shift) follow the upstream causal cache described in
// research/ollama.md §6.1.
#include "kvcache/kv_cells.h"

#include <limits.h>
#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/alloc.h"
#include "base/cpu.h"
#include "kvcache/kvcache_int.h"

#define KV_UNLIMITED INT32_MAX

// Mask elements for 8 cells at once: entry b holds 8 elements, element k is 0 (attend) when
// bit k of b is set and -inf (not) otherwise. The portable expansion of a row's bitmap reads
// one entry per byte; the preprocessor builds them as read-only data.
#define NEG_F32 0xFF800000u // -inf as float bits
#define NEG_F16 0xFC00u     // -inf as IEEE half bits
#define LUT_E(b, k, neg) ((((b) >> (k)) & 1) ? 0u : (neg))
#define LUT_ROW(b, neg)                                                                    \
    {LUT_E(b, 0, neg), LUT_E(b, 1, neg), LUT_E(b, 2, neg), LUT_E(b, 3, neg),             \
     LUT_E(b, 4, neg), LUT_E(b, 5, neg), LUT_E(b, 6, neg), LUT_E(b, 7, neg)}
#define LUT_R4(b, neg)                                                                     \
    LUT_ROW(b, neg), LUT_ROW((b) + 1, neg), LUT_ROW((b) + 2, neg), LUT_ROW((b) + 3, neg)
#define LUT_R16(b, neg)                                                                    \
    LUT_R4(b, neg), LUT_R4((b) + 4, neg), LUT_R4((b) + 8, neg), LUT_R4((b) + 12, neg)
#define LUT_R64(b, neg)                                                                    \
    LUT_R16(b, neg), LUT_R16((b) + 16, neg), LUT_R16((b) + 32, neg), LUT_R16((b) + 48, neg)
#define LUT_R256(neg) LUT_R64(0, neg), LUT_R64(64, neg), LUT_R64(128, neg), LUT_R64(192, neg)

static _Alignas(64) const uint32_t lut_f32[256][8] = {LUT_R256(NEG_F32)};
static _Alignas(64) const uint16_t lut_f16[256][8] = {LUT_R256(NEG_F16)};

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

// ---- sequence bitmaps and ranges ----------------------------------------------------------

static inline uint64_t *seq_row(const struct kv_cells *c, llem_seq s)
{
    return c->seq_bits + (size_t)s * (size_t)c->seq_words;
}

// The 64 bits of a sequence row starting at bit `at` (at < n_cells; the row's trailing zero
// word makes the second read safe).
static inline uint64_t bits_at(const uint64_t *row, int32_t at)
{
    const int32_t w = at >> 6, sh = at & 63;
    uint64_t v = row[w] >> sh;
    if (sh) {
        v |= row[w + 1] << (64 - sh);
    }
    return v;
}

// Drops sequence s from a cell, freeing the cell when no sequence is left. The caller keeps
// the position bounds right.
static void cell_drop_seq(struct kv_cells *c, int32_t cell, llem_seq s)
{
    c->seqs[cell] &= ~(1ull << s);
    seq_row(c, s)[cell >> 6] &= ~(1ull << (cell & 63));
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
    seq_row(c, s)[cell >> 6] |= 1ull << (cell & 63);
}

// Empties the cell range and the position bounds of s (the caller widens them again).
static void seq_range_reset(struct kv_cells *c, llem_seq s)
{
    c->seq_min[s] = INT32_MAX;
    c->seq_max[s] = -1;
    c->seq_pos_lo[s] = INT32_MAX;
    c->seq_pos_hi[s] = -1;
}

static void seq_pos_widen(struct kv_cells *c, llem_seq s, llem_pos p)
{
    if (p < c->seq_pos_lo[s]) {
        c->seq_pos_lo[s] = p;
    }
    if (p > c->seq_pos_hi[s]) {
        c->seq_pos_hi[s] = p;
    }
}

// A sequence's cell range and position bounds gathered in locals while walking its cells
// (stores to c->pos could otherwise alias them), stored back once.
struct seq_bounds {
    int32_t cmin, cmax;
    llem_pos plo, phi;
};
#define SEQ_BOUNDS_EMPTY {INT32_MAX, -1, INT32_MAX, -1}

static inline void bounds_add(struct seq_bounds *b, int32_t cell, llem_pos p)
{
    b->cmin = LLEM_MIN(b->cmin, cell);
    b->cmax = LLEM_MAX(b->cmax, cell);
    b->plo = LLEM_MIN(b->plo, p);
    b->phi = LLEM_MAX(b->phi, p);
}

static void bounds_store(struct kv_cells *c, llem_seq s, const struct seq_bounds *b)
{
    c->seq_min[s] = b->cmin;
    c->seq_max[s] = b->cmax;
    c->seq_pos_lo[s] = b->plo;
    c->seq_pos_hi[s] = b->phi;
}

// Recomputes the position bounds of s from its cells (after cells were dropped); the cell
// range stays as it is.
static void seq_pos_recompute(struct kv_cells *c, llem_seq s)
{
    llem_pos plo = INT32_MAX, phi = -1;
    if (c->seq_min[s] <= c->seq_max[s]) {
        const uint64_t *row = seq_row(c, s);
        for (int32_t w = c->seq_min[s] >> 6; w <= c->seq_max[s] >> 6; w++) {
            for (uint64_t m = row[w]; m; m &= m - 1) {
                const llem_pos p = c->pos[(w << 6) + __builtin_ctzll(m)];
                plo = LLEM_MIN(plo, p);
                phi = LLEM_MAX(phi, p);
            }
        }
    }
    c->seq_pos_lo[s] = plo;
    c->seq_pos_hi[s] = phi;
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
    // 64 spare positions: range_bits reads 64 at a time from any cell.
    c->pos = llem_calloc((size_t)c->n_cells + 64, sizeof *c->pos);
    c->seqs = llem_calloc((size_t)c->n_cells, sizeof *c->seqs);
    c->free_bits = llem_calloc((size_t)c->n_words, sizeof *c->free_bits);
    c->free_summary = llem_calloc((size_t)c->n_summary, sizeof *c->free_summary);
    c->locs = llem_calloc((size_t)p->n_batch_max, sizeof *c->locs);
    c->seq_words = c->n_words + 1;
    c->seq_bits = llem_calloc((size_t)p->n_seq_max * (size_t)c->seq_words, sizeof *c->seq_bits);
    c->row_bits = llem_calloc((size_t)c->seq_words, sizeof *c->row_bits);
    c->view_bits = llem_calloc((size_t)c->seq_words, sizeof *c->view_bits);
    c->view_pos = llem_calloc(2 * (size_t)c->seq_words, sizeof *c->view_pos);
    if (!c->pos || !c->seqs || !c->free_bits || !c->free_summary || !c->locs || !c->seq_bits ||
        !c->row_bits || !c->view_bits || !c->view_pos) {
        kv_cells_deinit(c);
        return llem_errf(eb, LLEM_ENOMEM, "kv cache: out of memory for %d cells", (int)n_cells);
    }
#if defined(__x86_64__) || defined(__i386__)
    const struct cpu_features *f = cpu_features();
    c->mask_avx2 = f->avx2 && f->os_ymm;
#endif
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
    llem_free(c->seq_bits);
    llem_free(c->row_bits);
    llem_free(c->view_bits);
    llem_free(c->view_pos);
    llem_aligned_free(c->mask);
    memset(c, 0, sizeof *c);
}

void kv_cells_clear(struct kv_cells *c)
{
    for (int32_t i = 0; i < c->n_cells + 64; i++) {
        c->pos[i] = -1;
    }
    memset(c->seqs, 0, (size_t)c->n_cells * sizeof *c->seqs);
    memset(c->free_bits, 0, (size_t)c->n_words * sizeof *c->free_bits);
    memset(c->free_summary, 0, (size_t)c->n_summary * sizeof *c->free_summary);
    memset(c->seq_bits, 0,
           (size_t)c->p.n_seq_max * (size_t)c->seq_words * sizeof *c->seq_bits);
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
        const bool cur = (in_batch >> s) & 1;
        if (!cur) { // not in this batch: its next token would come after its last one
            low[s] = LLEM_MAX(c->seq_pos_hi[s], 0) + 1;
        }
        const int64_t forget_below = (int64_t)low[s] - c->memory;
        const int64_t see_from = (int64_t)low[s] - c->window;
        const int32_t w0 = c->seq_min[s] >> 6, w1 = c->seq_max[s] >> 6;
        const uint64_t *row = seq_row(c, s);
        struct seq_bounds b = SEQ_BOUNDS_EMPTY;
        int32_t vlo = *lo, vhi = *hi;
        for (int32_t w = w0; w <= w1; w++) {
            for (uint64_t m = row[w]; m; m &= m - 1) { // a copy: drops clear bits of row[w]
                const int32_t cell = (w << 6) + __builtin_ctzll(m);
                const llem_pos p = c->pos[cell];
                if (p < forget_below) {
                    cell_drop_seq(c, cell, s);
                } else {
                    bounds_add(&b, cell, p);
                }
                if (cur && p >= see_from) {
                    range_widen(&vlo, &vhi, cell);
                }
            }
        }
        bounds_store(c, s, &b);
        *lo = vlo;
        *hi = vhi;
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

// Bit k set: lo <= p[k] <= lo + span, for the 64 positions at p (c->pos has 64 spare
// entries, so any cell may start the run). Four compares at a time with SSE2.
static uint64_t range_bits(const llem_pos *p, uint32_t lo, uint32_t span)
{
    uint64_t in = 0;
#if defined(__SSE2__)
    const __m128i vlo = _mm_set1_epi32((int)lo);
    const __m128i sign = _mm_set1_epi32(INT32_MIN);
    const __m128i top = _mm_set1_epi32((int)(span ^ 0x80000000u));
    for (int k = 0; k < 64; k += 4) {
        // unsigned p - lo > span, compared as signed after flipping the sign bits
        __m128i d = _mm_xor_si128(_mm_sub_epi32(_mm_loadu_si128((const __m128i *)(p + k)), vlo),
                                  sign);
        int out = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(d, top)));
        in |= (uint64_t)(~out & 0xF) << k;
    }
#else
    for (int k = 0; k < 64; k++) {
        in |= (uint64_t)((uint32_t)p[k] - lo <= span) << k;
    }
#endif
    return in;
}

// Keeps the cells of `bits` (bit k: cell k of the run at `pos`) whose position lies in
// [lo, lo + span]: few members are tested one by one, many all at once.
static uint64_t keep_in_range(const llem_pos *pos, uint64_t bits, uint32_t lo, uint32_t span)
{
    if (__builtin_popcountll(bits) <= 8) {
        for (uint64_t t = bits; t; t &= t - 1) {
            const int k = __builtin_ctzll(t);
            if ((uint32_t)pos[k] - lo > span) {
                bits &= ~(1ull << k);
            }
        }
        return bits;
    }
    return bits & range_bits(pos, lo, span);
}

// Fills view_bits and view_pos for sequence s: its bitmap over the view, 64 cells per word,
// and the lowest and highest position among its cells of each word (INT32_MAX, -1: none).
static void view_bits_fill(struct kv_cells *c, llem_seq s)
{
    const int32_t len = c->view_len, v0 = c->view_min;
    const uint64_t *src = seq_row(c, s);
    for (int32_t j = 0; j < len; j += 64) {
        const int32_t m = LLEM_MIN(64, len - j);
        uint64_t b = bits_at(src, v0 + j);
        if (m < 64) {
            b &= (1ull << m) - 1;
        }
        llem_pos plo = INT32_MAX, phi = -1;
        for (uint64_t t = b; t; t &= t - 1) {
            const llem_pos p = c->pos[v0 + j + __builtin_ctzll(t)];
            plo = LLEM_MIN(plo, p);
            phi = LLEM_MAX(phi, p);
        }
        c->view_bits[j >> 6] = b;
        c->view_pos[2 * (j >> 6)] = plo;
        c->view_pos[2 * (j >> 6) + 1] = phi;
    }
}

// Portable row expansion (kvcache_int.h has the contract): 8 elements per table entry,
// fixed-size copies the compiler turns into vector moves.
static inline void put8_f32(uint32_t *dst, uint64_t byte)
{
    memcpy(dst, lut_f32[byte & 0xFF], sizeof lut_f32[0]);
}

static inline void put8_f16(uint16_t *dst, uint64_t byte)
{
    memcpy(dst, lut_f16[byte & 0xFF], sizeof lut_f16[0]);
}

static void expand_f32(uint32_t *dst, const uint64_t *bits, int32_t n)
{
    int32_t j = 0;
    for (; j + 64 <= n; j += 64) {
        const uint64_t w = bits[j >> 6];
        put8_f32(dst + j, w);
        put8_f32(dst + j + 8, w >> 8);
        put8_f32(dst + j + 16, w >> 16);
        put8_f32(dst + j + 24, w >> 24);
        put8_f32(dst + j + 32, w >> 32);
        put8_f32(dst + j + 40, w >> 40);
        put8_f32(dst + j + 48, w >> 48);
        put8_f32(dst + j + 56, w >> 56);
    }
    if (j < n) {
        const uint64_t w = bits[j >> 6];
        int32_t k = 0;
        for (; j + k + 8 <= n; k += 8) {
            put8_f32(dst + j + k, w >> k);
        }
        for (; j + k < n; k++) {
            dst[j + k] = ((w >> k) & 1) ? 0 : NEG_F32;
        }
    }
}

static void expand_f16(uint16_t *dst, const uint64_t *bits, int32_t n)
{
    int32_t j = 0;
    for (; j + 64 <= n; j += 64) {
        const uint64_t w = bits[j >> 6];
        put8_f16(dst + j, w);
        put8_f16(dst + j + 8, w >> 8);
        put8_f16(dst + j + 16, w >> 16);
        put8_f16(dst + j + 24, w >> 24);
        put8_f16(dst + j + 32, w >> 32);
        put8_f16(dst + j + 40, w >> 40);
        put8_f16(dst + j + 48, w >> 48);
        put8_f16(dst + j + 56, w >> 56);
    }
    if (j < n) {
        const uint64_t w = bits[j >> 6];
        int32_t k = 0;
        for (; j + k + 8 <= n; k += 8) {
            put8_f16(dst + j + k, w >> k);
        }
        for (; j + k < n; k++) {
            dst[j + k] = ((w >> k) & 1) ? 0 : NEG_F16;
        }
    }
}

// One mask row from its bitmap, with AVX2 where the CPU has it.
static void expand_row_f32(const struct kv_cells *c, uint32_t *row, const uint64_t *bits,
                           int32_t len)
{
#if defined(__x86_64__) || defined(__i386__)
    if (c->mask_avx2) {
        kv_mask_expand_f32_avx2(row, bits, len);
        return;
    }
#endif
    LLEM_UNUSED(c);
    expand_f32(row, bits, len);
}

static void expand_row_f16(const struct kv_cells *c, uint16_t *row, const uint64_t *bits,
                           int32_t len)
{
#if defined(__x86_64__) || defined(__i386__)
    if (c->mask_avx2) {
        kv_mask_expand_f16_avx2(row, bits, len);
        return;
    }
#endif
    LLEM_UNUSED(c);
    expand_f16(row, bits, len);
}

// Builds the mask for the current batch. Rows are mask_stride elements apart: the stride is
// padded off multiples of 4 KiB so rows don't alias in L1. A row is its sequence's bitmap
// over the view, minus the cells whose position the row may not see, expanded to 0 / -inf.
// When every position the sequence holds is visible to the row (a decode token with causal
// attention and nothing cut by a window) the bitmap is the row as it is: no per-cell work,
// and no copy when the view starts on a multiple of 64 cells. Other rows (prompt chunks,
// windows) go 64 cells at a time: a word whose positions are all visible or all hidden costs
// one comparison; only words that straddle the row's limits test their cells.
static void mask_build(struct kv_cells *c, const llem_pos *pos, const llem_seq *seq)
{
    const int32_t len = c->view_len, v0 = c->view_min, n = c->n_tokens;
    const size_t stride = (size_t)c->mask_stride;
    const bool f16 = c->p.mask_f16;
    llem_seq view_seq = -1; // whose bits view_bits holds
    for (int32_t i = 0; i < n; i++) {
        const llem_seq s = seq[i];
        const int64_t l = visible_lo(c, pos[i]);
        const llem_pos lo = l < 0 ? 0 : (llem_pos)l; // positions are >= 0
        const llem_pos hi = c->causal ? pos[i] : INT32_MAX;
        const uint64_t *bits = seq_row(c, s) + (v0 >> 6);
        if (c->seq_pos_lo[s] < lo || c->seq_pos_hi[s] > hi) {
            if (view_seq != s) {
                view_bits_fill(c, s);
                view_seq = s;
            }
            const uint32_t span = (uint32_t)hi - (uint32_t)lo; // lo <= pos[i] <= hi
            for (int32_t j = 0; j < len; j += 64) {
                const int32_t w = j >> 6;
                const llem_pos plo = c->view_pos[2 * w], phi = c->view_pos[2 * w + 1];
                uint64_t b = c->view_bits[w];
                if (phi < lo || plo > hi) {
                    b = 0; // none visible (or no cells)
                } else if (plo < lo || phi > hi) {
                    b = keep_in_range(c->pos + v0 + j, b, (uint32_t)lo, span);
                }
                c->row_bits[w] = b;
            }
            bits = c->row_bits;
        } else if (v0 & 63) {
            const uint64_t *src = seq_row(c, s);
            for (int32_t j = 0; j < len; j += 64) {
                c->row_bits[j >> 6] = bits_at(src, v0 + j);
            }
            bits = c->row_bits;
        }
        if (f16) {
            expand_row_f16(c, (uint16_t *)c->mask + (size_t)i * stride, bits, len);
        } else {
            expand_row_f32(c, (uint32_t *)c->mask + (size_t)i * stride, bits, len);
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
        seq_pos_widen(c, seq[i], pos[i]);
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
    uint64_t touched = 0;
    for (int32_t i = 0; i < c->n_tokens; i++) {
        if (kv_cell_has_seq(c, c->locs[i], seq[i])) {
            cell_drop_seq(c, c->locs[i], seq[i]);
            touched |= 1ull << seq[i];
        }
    }
    for (; touched; touched &= touched - 1) {
        seq_pos_recompute(c, __builtin_ctzll(touched));
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
    if (src == dst || src < 0 || dst < 0 || src >= c->p.n_seq_max || dst >= c->p.n_seq_max) {
        return;
    }
    // Word by word: dst's new cells are src's cells with pos < len; only the difference from
    // dst's old cells is written, so copying the same prefix again touches no cell and keeps
    // dst's bounds. A cell of src is in use: adding dst to it changes neither the free bitmap
    // nor n_used.
    const uint64_t dbit = 1ull << dst;
    uint64_t *drow = seq_row(c, dst);
    const uint64_t *srow = seq_row(c, src);
    const bool has_old = c->seq_min[dst] <= c->seq_max[dst];
    const bool has_src = c->seq_min[src] <= c->seq_max[src] && len > 0;
    if (!has_old && !has_src) {
        return;
    }
    const int32_t w0 = LLEM_MIN(has_old ? c->seq_min[dst] : INT32_MAX,
                                has_src ? c->seq_min[src] : INT32_MAX) >> 6;
    const int32_t w1 = LLEM_MAX(has_old ? c->seq_max[dst] : -1,
                                has_src ? c->seq_max[src] : -1) >> 6;
    const bool all = c->seq_pos_hi[src] < len; // every position of src is copied
    bool changed = false;
    int32_t cmin = INT32_MAX, cmax = -1;
    for (int32_t w = w0; w <= w1; w++) {
        uint64_t keep = has_src ? srow[w] : 0;
        if (keep && !all) {
            keep &= range_bits(c->pos + (w << 6), 0, (uint32_t)len - 1);
        }
        const uint64_t old = drow[w];
        if (keep != old) {
            changed = true;
            for (uint64_t m = old & ~keep; m; m &= m - 1) {
                const int32_t cell = (w << 6) + __builtin_ctzll(m);
                c->seqs[cell] &= ~dbit;
                if (c->seqs[cell] == 0) {
                    free_mark(c, cell);
                    c->n_used--;
                }
            }
            for (uint64_t m = keep & ~old; m; m &= m - 1) {
                c->seqs[(w << 6) + __builtin_ctzll(m)] |= dbit;
            }
            drow[w] = keep;
        }
        if (keep) {
            cmin = LLEM_MIN(cmin, (w << 6) + __builtin_ctzll(keep));
            cmax = (w << 6) + 63 - __builtin_clzll(keep);
        }
    }
    c->seq_min[dst] = cmin; // exact, like the old range if nothing changed
    c->seq_max[dst] = cmax;
    if (!changed) {
        return;
    }
    if (all) {
        c->seq_pos_lo[dst] = c->seq_pos_lo[src];
        c->seq_pos_hi[dst] = c->seq_pos_hi[src];
    } else {
        seq_pos_recompute(c, dst);
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
    if (c->seq_min[seq] > c->seq_max[seq]) {
        return LLEM_OK; // holds nothing
    }
    const bool to_end = end < 0;
    const llem_pos offset = to_end ? 0 : begin - end;
    const uint64_t bit = 1ull << seq;
    uint64_t *row = seq_row(c, seq);
    const int32_t w0 = c->seq_min[seq] >> 6, w1 = c->seq_max[seq] >> 6;
    // Validate before changing anything: moving a shared cell would move it for the other
    // sequences too.
    if (!to_end && offset != 0 && c->seq_pos_hi[seq] >= end) {
        for (int32_t w = w0; w <= w1; w++) {
            for (uint64_t m = row[w]; m; m &= m - 1) {
                const int32_t i = (w << 6) + __builtin_ctzll(m);
                if (c->pos[i] >= end && (c->seqs[i] & ~bit)) {
                    return llem_errf(eb, LLEM_EUNSUPPORTED,
                                     "kv cache: cannot shift cell %d, shared by several sequences",
                                     i);
                }
            }
        }
    }
    struct seq_bounds b = SEQ_BOUNDS_EMPTY;
    int32_t first = -1, last = -1; // cells that moved
    for (int32_t w = w0; w <= w1; w++) {
        for (uint64_t m = row[w]; m; m &= m - 1) { // a copy: drops clear bits of row[w]
            const int32_t i = (w << 6) + __builtin_ctzll(m);
            llem_pos p = c->pos[i];
            if (p >= begin && (to_end || p < end)) {
                cell_drop_seq(c, i, seq);
                continue;
            }
            if (!to_end && p >= end) {
                p += offset;
                c->pos[i] = p;
            }
            bounds_add(&b, i, p);
            if (p >= begin) { // only moved cells are at or past begin now
                if (first < 0) {
                    first = i;
                }
                last = i;
            }
        }
    }
    bounds_store(c, seq, &b);
    if (shift && !to_end && offset != 0 && first >= 0) {
        shift->seq = seq;
        shift->begin = begin;
        shift->delta = offset;
        shift->first_cell = first;
        shift->n_cells = last - first + 1;
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
    if (seq < 0 || seq >= c->p.n_seq_max || c->seq_pos_hi[seq] < 0) {
        return false;
    }
    llem_pos window_start = (llem_pos)LLEM_MAX(0, (int64_t)pos - c->window);
    return window_start >= c->seq_pos_lo[seq] && pos <= c->seq_pos_hi[seq] + 1;
}

int32_t kv_cells_seq_count(const struct kv_cells *c, llem_seq seq)
{
    if (seq < 0 || seq >= c->p.n_seq_max || c->seq_min[seq] > c->seq_max[seq]) {
        return 0;
    }
    const uint64_t *row = seq_row(c, seq);
    int32_t n = 0;
    for (int32_t w = c->seq_min[seq] >> 6; w <= c->seq_max[seq] >> 6; w++) {
        n += __builtin_popcountll(row[w]);
    }
    return n;
}

llem_pos kv_cells_seq_pos_max(const struct kv_cells *c, llem_seq seq)
{
    return seq < 0 || seq >= c->p.n_seq_max ? -1 : c->seq_pos_hi[seq];
}
