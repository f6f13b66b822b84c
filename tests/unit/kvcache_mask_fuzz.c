// tests/unit/kvcache_mask_fuzz.c: drives kv_cells through thousands of random operations
// (decode, prompt and mixed batches over up to 64 sequences, rollback, reserve, remove with and
// without shift, copy_prefix, clear; causal, SWA, chunked and non-causal caches; f16 and f32
// masks; AVX2 and portable mask expansion) and after each one checks the cache against rules
// computed here from scratch: every mask element, the batch's cells, the per-sequence bitmaps
// and bounds against the per-cell sets, the free bitmap, and what remove and copy_prefix did.
#include "base/alloc.h"
#include "base/rng.h"
#include "check.h"
#include "kvcache/kv_cells.h"

#define MAX_TOKENS 64

struct fz {
    struct rng r;
    struct kv_cells c;
    struct kv_cells_params p;
    bool avx2;                 // the CPU can expand with AVX2
    llem_pos next[KV_MAX_SEQ]; // a plausible next position per sequence
    uint64_t *seqs0;           // snapshots before remove / copy_prefix
    llem_pos *pos0;
    int failures_at_start;
};

static int rnd(struct fz *f, int lo, int hi) // uniform in [lo, hi]
{
    return lo + (int)rng_bounded(&f->r, (uint64_t)(hi - lo + 1));
}

// The rules, straight from their description: a token at position p of sequence s sees a cell
// that belongs to s, is not after p (causal), not before p - window (SWA) and not before the
// start of p's chunk (chunked).
static bool visible(const struct fz *f, int32_t cell, llem_seq s, llem_pos p)
{
    const struct kv_cells *c = &f->c;
    if (!((c->seqs[cell] >> s) & 1)) {
        return false;
    }
    const llem_pos cp = c->pos[cell];
    if (c->causal && cp > p) {
        return false;
    }
    if (f->p.kind == KV_SWA && (int64_t)cp < (int64_t)p - f->p.window) {
        return false;
    }
    if (f->p.kind == KV_CHUNKED && cp < p - p % f->p.chunk) {
        return false;
    }
    return true;
}

static void check_invariants(struct fz *f)
{
    const struct kv_cells *c = &f->c;
    int32_t used = 0;
    for (int32_t i = 0; i < c->n_cells; i++) {
        used += c->seqs[i] != 0;
        bool free_bit = (c->free_bits[i >> 6] >> (i & 63)) & 1;
        CHECK(free_bit == (c->seqs[i] == 0));
        CHECK(f->p.n_seq_max == KV_MAX_SEQ || (c->seqs[i] >> f->p.n_seq_max) == 0);
    }
    CHECK_EQ_I64(c->n_used, used);
    for (int32_t w = 0; w < c->n_words; w++) {
        CHECK(((c->free_summary[w >> 6] >> (w & 63)) & 1) == (c->free_bits[w] != 0));
    }
    for (llem_seq s = 0; s < f->p.n_seq_max; s++) {
        const uint64_t *row = c->seq_bits + (size_t)s * (size_t)c->seq_words;
        int32_t count = 0;
        llem_pos lo = INT32_MAX, hi = -1;
        for (int32_t i = 0; i < c->seq_words * 64; i++) {
            bool in_row = (row[i >> 6] >> (i & 63)) & 1;
            bool in_cell = i < c->n_cells && ((c->seqs[i] >> s) & 1);
            CHECK(in_row == in_cell);
            if (in_cell) {
                count++;
                lo = LLEM_MIN(lo, c->pos[i]);
                hi = LLEM_MAX(hi, c->pos[i]);
                CHECK(i >= c->seq_min[s] && i <= c->seq_max[s]);
            }
        }
        CHECK_EQ_I64(c->seq_pos_lo[s], lo);
        CHECK_EQ_I64(c->seq_pos_hi[s], hi);
        CHECK_EQ_I64(kv_cells_seq_count(c, s), count);
        CHECK_EQ_I64(kv_cells_seq_pos_max(c, s), hi);
        for (int k = 0; k < 3; k++) {
            llem_pos p = rnd(f, 0, 60);
            bool want = c->memory == INT32_MAX ||
                        (hi >= 0 && LLEM_MAX(0, (int64_t)p - c->window) >= lo && p <= hi + 1);
            CHECK(kv_cells_can_resume(c, s, p) == want);
        }
    }
}

// Checks the batch's cells, the view and every mask element after a successful start.
static void check_batch(struct fz *f, int32_t n, const llem_pos *pos, const llem_seq *seq)
{
    const struct kv_cells *c = &f->c;
    const int32_t v0 = c->view_min, len = c->view_len;
    CHECK(v0 >= 0 && len >= 0 && v0 + len <= c->n_cells);
    CHECK(v0 % f->p.padding == 0 && len % f->p.padding == 0);
    CHECK(c->mask_stride >= len);
    for (int32_t i = 0; i < n; i++) {
        const int32_t cell = c->locs[i];
        CHECK(cell >= 0 && cell < c->n_cells && cell >= v0 && cell < v0 + len);
        CHECK((c->seqs[cell] >> seq[i]) & 1);
        CHECK_EQ_I64(c->pos[cell], pos[i]);
        for (int32_t k = 0; k < i; k++) {
            CHECK(c->locs[k] != cell);
        }
    }
    int bad = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t zeros = 0, want_zeros = 0;
        for (int32_t cell = 0; cell < c->n_cells; cell++) {
            want_zeros += visible(f, cell, seq[i], pos[i]);
        }
        for (int32_t j = 0; j < len; j++) {
            const bool want = visible(f, v0 + j, seq[i], pos[i]);
            const size_t at = (size_t)i * (size_t)c->mask_stride + (size_t)j;
            bool ok;
            if (f->p.mask_f16) {
                uint16_t m = ((const uint16_t *)c->mask)[at];
                ok = m == (want ? 0 : 0xFC00);
                zeros += m == 0;
            } else {
                float m = ((const float *)c->mask)[at];
                uint32_t b;
                memcpy(&b, &m, sizeof b);
                ok = b == (want ? 0u : 0xFF800000u);
                zeros += b == 0;
            }
            if (!ok && bad++ < 5) {
                fprintf(stderr, "  mask row %d col %d (cell %d, seq %d, pos %d; kind %d, %s, "
                                "avx2 %d): want %s\n", i, j, v0 + j, seq[i], pos[i], f->p.kind,
                        f->p.mask_f16 ? "f16" : "f32", c->mask_avx2, want ? "0" : "-inf");
            }
            CHECK(ok);
        }
        CHECK_EQ_I64(zeros, want_zeros); // nothing visible lies outside the view
    }
}

// A batch: decode (one token per chosen sequence), a prompt chunk of one sequence, runs of
// several sequences, or arbitrary (sequence, position) pairs.
static int32_t make_batch(struct fz *f, llem_pos *pos, llem_seq *seq)
{
    const int32_t nb = rnd(f, 1, f->p.n_batch_max);
    int32_t n = 0;
    switch (rnd(f, 0, 3)) {
    case 0:
        for (llem_seq s = 0; s < f->p.n_seq_max && n < nb; s++) {
            if (rnd(f, 0, 2)) {
                seq[n] = s;
                pos[n++] = f->next[s];
            }
        }
        break;
    case 1: {
        llem_seq s = rnd(f, 0, f->p.n_seq_max - 1);
        for (; n < nb; n++) {
            seq[n] = s;
            pos[n] = f->next[s] + n;
        }
        break;
    }
    case 2:
        while (n < nb) {
            llem_seq s = rnd(f, 0, f->p.n_seq_max - 1);
            int32_t first = n;
            for (int32_t k = 0; k < n; k++) {
                if (seq[k] == s) {
                    first = -1; // one run per sequence
                }
            }
            if (first < 0) {
                break;
            }
            for (int32_t k = rnd(f, 1, 6); k > 0 && n < nb; k--, n++) {
                seq[n] = s;
                pos[n] = f->next[s] + (n - first);
            }
        }
        break;
    default:
        for (; n < nb; n++) {
            seq[n] = rnd(f, 0, f->p.n_seq_max - 1);
            pos[n] = rnd(f, 0, 50);
        }
    }
    if (n == 0) {
        seq[0] = 0;
        pos[0] = f->next[0];
        n = 1;
    }
    return n;
}

static void op_start(struct fz *f)
{
    llem_pos pos[MAX_TOKENS];
    llem_seq seq[MAX_TOKENS];
    struct llem_errbuf eb = {0};
    const int32_t n = make_batch(f, pos, seq);
    if (f->avx2) {
        f->c.mask_avx2 = rnd(f, 0, 1);
    }
    enum llem_err rc = kv_cells_start(&f->c, n, pos, seq, &eb);
    CHECK(rc == LLEM_OK || rc == LLEM_EFULL);
    if (rc != LLEM_OK) {
        return;
    }
    check_batch(f, n, pos, seq);
    if (rnd(f, 0, 9) == 0) { // a failed forward pass
        kv_cells_rollback(&f->c, seq);
        for (int32_t i = 0; i < n; i++) {
            CHECK(!((f->c.seqs[f->c.locs[i]] >> seq[i]) & 1));
        }
    } else {
        for (int32_t i = 0; i < n; i++) {
            f->next[seq[i]] = LLEM_MAX(f->next[seq[i]], pos[i] + 1);
        }
    }
}

static void snapshot(struct fz *f)
{
    memcpy(f->seqs0, f->c.seqs, (size_t)f->c.n_cells * sizeof *f->seqs0);
    memcpy(f->pos0, f->c.pos, (size_t)f->c.n_cells * sizeof *f->pos0);
}

static void op_remove(struct fz *f)
{
    struct kv_cells *c = &f->c;
    struct llem_errbuf eb = {0};
    struct kv_shift sh;
    const llem_seq s = rnd(f, 0, f->p.n_seq_max - 1);
    const llem_pos begin = rnd(f, 0, 45), end = rnd(f, 0, 2) ? begin + rnd(f, 0, 8) : -1;
    const uint64_t bit = 1ull << s;
    snapshot(f);
    enum llem_err rc = kv_cells_remove(c, s, begin, end, &sh, &eb);
    bool shared_after_end = false;
    for (int32_t i = 0; i < c->n_cells; i++) {
        shared_after_end |= end > begin && (f->seqs0[i] & bit) && f->pos0[i] >= end &&
                            (f->seqs0[i] & ~bit);
    }
    if (shared_after_end) {
        CHECK_EQ_I64(rc, LLEM_EUNSUPPORTED);
        CHECK(memcmp(f->seqs0, c->seqs, (size_t)c->n_cells * sizeof *c->seqs) == 0);
        CHECK(memcmp(f->pos0, c->pos, (size_t)c->n_cells * sizeof *c->pos) == 0);
        return;
    }
    CHECK_OK(rc, &eb);
    int32_t first = -1, last = -1;
    for (int32_t i = 0; i < c->n_cells; i++) {
        const bool had = f->seqs0[i] & bit;
        const bool gone = had && f->pos0[i] >= begin && (end < 0 || f->pos0[i] < end);
        const bool moved = had && end >= 0 && f->pos0[i] >= end && end > begin;
        CHECK_EQ_I64(c->seqs[i], gone ? f->seqs0[i] & ~bit : f->seqs0[i]);
        CHECK_EQ_I64(c->pos[i], moved ? f->pos0[i] - (end - begin) : f->pos0[i]);
        if (moved) {
            first = first < 0 ? i : first;
            last = i;
        }
    }
    CHECK_EQ_I64(sh.n_cells, first < 0 ? 0 : last - first + 1);
    if (first >= 0) {
        int32_t delta[4096];
        CHECK_EQ_I64(sh.first_cell, first);
        CHECK_EQ_I64(sh.delta, begin - end);
        kv_cells_shift_deltas(c, &sh, delta);
        for (int32_t i = first; i <= last; i++) {
            bool moved = (f->seqs0[i] & bit) && f->pos0[i] >= end;
            CHECK_EQ_I64(delta[i - first], moved ? begin - end : 0);
        }
    }
    f->next[s] = kv_cells_seq_pos_max(c, s) + 1;
}

static void op_copy_prefix(struct fz *f)
{
    struct kv_cells *c = &f->c;
    const llem_seq src = rnd(f, 0, f->p.n_seq_max - 1), dst = rnd(f, 0, f->p.n_seq_max - 1);
    const llem_pos len = rnd(f, 0, 45);
    snapshot(f);
    kv_cells_copy_prefix(c, src, dst, len);
    const uint64_t dbit = 1ull << dst;
    for (int32_t i = 0; i < c->n_cells; i++) {
        uint64_t want = f->seqs0[i];
        if (src != dst) {
            want &= ~dbit;
            if (((f->seqs0[i] >> src) & 1) && f->pos0[i] < len) {
                want |= dbit;
            }
        }
        CHECK_EQ_I64(c->seqs[i], want);
        CHECK_EQ_I64(c->pos[i], f->pos0[i]);
    }
    f->next[dst] = kv_cells_seq_pos_max(c, dst) + 1;
}

static void run_config(struct fz *f, int steps)
{
    struct llem_errbuf eb = {0};
    static const int32_t n_seqs[] = {1, 1, 2, 3, 5, 16, 64};
    static const int32_t pads[] = {1, 1, 1, 2, 3, 4, 8, 16, 64, 256};
    struct kv_cells_params p = {0};
    const int kind = rnd(f, 0, 2);
    p.kind = kind == 0 ? KV_CAUSAL : kind == 1 ? KV_SWA : KV_CHUNKED;
    p.window = rnd(f, 1, 10);
    p.memory = rnd(f, 0, 1) ? 0 : p.window + rnd(f, 0, 8);
    p.chunk = rnd(f, 1, 8);
    p.n_seq_max = n_seqs[rnd(f, 0, (int)LLEM_ARRAY_LEN(n_seqs) - 1)];
    p.n_ctx_seq = rnd(f, 1, p.n_seq_max == KV_MAX_SEQ ? 12 : 40); // keeps the run short
    p.n_batch_max = rnd(f, 1, MAX_TOKENS);
    p.padding = pads[rnd(f, 0, (int)LLEM_ARRAY_LEN(pads) - 1)];
    p.mask_f16 = rnd(f, 0, 1);
    f->p = p;
    CHECK_OK(kv_cells_init(&f->c, &p, &eb), &eb);
    CHECK(f->c.n_cells <= 4096);
    f->avx2 = f->c.mask_avx2;
    f->c.causal = rnd(f, 0, 9) != 0; // sometimes bidirectional
    memset(f->next, 0, sizeof f->next);
    for (int step = 0; step < steps && check_failures == f->failures_at_start; step++) {
        const int op = rnd(f, 0, 99);
        if (op < 55) {
            op_start(f);
        } else if (op < 60) {
            CHECK_OK(kv_cells_reserve(&f->c, rnd(f, 1, p.n_batch_max), &eb), &eb);
        } else if (op < 78) {
            op_remove(f);
        } else if (op < 97) {
            op_copy_prefix(f);
        } else {
            kv_cells_clear(&f->c);
            memset(f->next, 0, sizeof f->next);
        }
        check_invariants(f);
    }
    kv_cells_deinit(&f->c);
}

static void test_random_operations(void)
{
    struct fz f;
    memset(&f, 0, sizeof f);
    rng_seed(&f.r, 20250704);
    f.seqs0 = llem_calloc(4096, sizeof *f.seqs0);
    f.pos0 = llem_calloc(4096, sizeof *f.pos0);
    for (int cfg = 0; cfg < 200 && !check_failures; cfg++) {
        f.failures_at_start = check_failures;
        run_config(&f, 200);
    }
    llem_free(f.seqs0);
    llem_free(f.pos0);
}

int main(void)
{
    RUN_TEST(test_random_operations);
    return TEST_EXIT();
}
