// backend/cpu/ops/flash_attn.c: attention with an online softmax, never materialising the
// [n_kv x n_q] score matrix. A query row's visible (unmasked) cells, in cell order, are cut
// into blocks of FA_KVB; a block's partial softmax (max, sum of exp, sum of p * V) is computed
// for the GQA heads that share the row's query and KV head, reading each K/V row once for all
// of them, and the partials are merged in block order. Blocks count visible cells only, so a
// row's result depends on its own cells and nothing else: not on the thread count, not on
// which other sequences share the batch or the cache. Decode (n_q < 4): the prep phase
// computes all blocks in parallel (a long context is shared by all threads) into scratch and
// the run phase merges them; prompts: a job takes a tile of FA_TQ query rows and walks their
// blocks in lockstep, so a block's K/V, read from memory for the first row, is still in L2
// for the others (a row's arithmetic is the same as when it is walked alone). Sinks
// join at the end as one more logit with no value. The AVX2 entry points run the same driver
// with the helpers of x86/flash_attn_avx2.c; for F16 K/V and GQA groups of 4 or more heads
// their block_f16 helper computes a whole block with the group's heads as vector lanes.
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_int.h"

#define FA_KVB 256 // visible KV cells per block
#define FA_TQ 16   // query rows of a prompt job

struct fa_shape {
    int64_t D, Dv, n_kv, n_q, n_head, n_head_kv, n_rep, n_batch;
    bool split;    // decode: blocks in the prep phase, merge in the run phase
    int64_t n_blk; // blocks of a row with every cell visible
    int64_t n_tile; // prompts: tiles of FA_TQ query rows
};

static void fa_shape_of(const struct tensor *d, struct fa_shape *s)
{
    const struct tensor *q = d->src[0], *k = d->src[1], *v = d->src[2];
    s->D = q->ne[0];
    s->Dv = v->ne[0];
    s->n_kv = k->ne[1];
    s->n_q = q->ne[1];
    s->n_head = q->ne[2];
    s->n_head_kv = k->ne[2];
    s->n_rep = s->n_head / s->n_head_kv;
    s->n_batch = q->ne[3];
    s->split = s->n_q < 4;
    s->n_blk = (s->n_kv + FA_KVB - 1) / FA_KVB;
    s->n_tile = (s->n_q + FA_TQ - 1) / FA_TQ;
}

// A partial or running softmax state: max, sum, acc[Dv].
static size_t fa_state_floats(const struct fa_shape *s)
{
    return (size_t)s->Dv + 2;
}

// Scores per cell: n_rep, or 8 for the block_f16 helper's lanes.
static size_t fa_score_floats(const struct fa_shape *s)
{
    return (size_t)LLEM_MAX(s->n_rep, 8) * FA_KVB;
}

// Per-chunk scratch (bytes, 64-byte multiple): cell indices, their mask values, K and V row
// pointers, query and accumulator pointers, the scores, a K and a V row, and (prompts) a block
// state per head and a running state per head and tile row.
static size_t fa_chunk_bytes(const struct fa_shape *s)
{
    size_t n = FA_KVB * (sizeof(int32_t) + sizeof(float)) + 2 * FA_KVB * sizeof(void *) +
               2 * (size_t)s->n_rep * sizeof(void *) +
               (fa_score_floats(s) + (size_t)s->D + (size_t)s->Dv) * sizeof(float);
    if (!s->split) {
        n += (1 + FA_TQ) * (size_t)s->n_rep * fa_state_floats(s) * sizeof(float);
    }
    return (n + 63) & ~(size_t)63;
}

// Decode partials, shared by all threads: a state per (batch, head, query, block).
static size_t fa_parts_bytes(const struct fa_shape *s)
{
    if (!s->split) {
        return 0;
    }
    size_t n = (size_t)s->n_batch * (size_t)s->n_head * (size_t)s->n_q * (size_t)s->n_blk *
               fa_state_floats(s) * sizeof(float);
    return (n + 63) & ~(size_t)63;
}

size_t cpu_flash_attn_work_size(const struct tensor *t, int n_threads)
{
    struct fa_shape s;
    fa_shape_of(t, &s);
    return fa_parts_bytes(&s) + (size_t)n_threads * fa_chunk_bytes(&s);
}

static int clamp_chunks(int64_t n, int64_t jobs)
{
    n = n < 1 ? 1 : n > 32 ? 32 : n;
    return (int)(n < jobs ? n : jobs < 1 ? 1 : jobs);
}

int cpu_flash_attn_chunks(const struct tensor *t, bool prep)
{
    struct fa_shape s;
    fa_shape_of(t, &s);
    // Work ~ cells x query rows; 64K cell-rows are ~10-20 us.
    const int64_t work = s.n_kv * s.n_q * s.n_head * s.n_batch / 65536;
    const int64_t groups = s.n_batch * s.n_head_kv * s.n_q;
    if (s.split) {
        if (prep) {
            return clamp_chunks(work, groups * s.n_blk);
        }
        return clamp_chunks(s.n_batch * s.n_head * s.n_q * s.n_blk * s.Dv / 16384, groups);
    }
    return prep ? 0 : clamp_chunks(work, s.n_batch * s.n_head_kv * s.n_tile);
}

// ---- scalar inner loops (x86/flash_attn_avx2.c has the AVX2 ones) ---------------------------

static void scores_ref(int64_t D, const float *k, const float *const *q, int64_t nr, float *out)
{
    for (int64_t r = 0; r < nr; r++) {
        out[r] = cpu_vec_ref.dot_f32(D, k, q[r]);
    }
}

static void accum_ref(int64_t Dv, const float *v, const float *p, int64_t ps, float *const *acc,
                      int64_t nr)
{
    for (int64_t r = 0; r < nr; r++) {
        const float w = p[r * ps];
        if (w != 0.0f) {
            cpu_vec_ref.axpy_f32(Dv, w, v, acc[r]);
        }
    }
}

static void accum_rows_f16_ref(int64_t Dv, const uint16_t *const *v, const float *p, int64_t nc,
                               float *acc)
{
    for (int64_t i = 0; i < nc; i++) {
        if (p[i] != 0.0f) {
            for (int64_t e = 0; e < Dv; e++) {
                acc[e] += p[i] * fp16_to_f32(v[i][e]);
            }
        }
    }
}

static void accum_rows_f32_ref(int64_t Dv, const float *const *v, const float *p, int64_t nc,
                               float *acc)
{
    for (int64_t i = 0; i < nc; i++) {
        if (p[i] != 0.0f) {
            cpu_vec_ref.axpy_f32(Dv, p[i], v[i], acc);
        }
    }
}

static float exp_sum_ref(int64_t n, float *s, float m)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        s[i] = s[i] == -INFINITY ? 0.0f : expf(s[i] - m);
        sum += s[i];
    }
    return sum;
}

static void f16_row_ref(int64_t n, const uint16_t *x, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        y[i] = fp16_to_f32(x[i]);
    }
}

static int64_t skip_f16_ref(int64_t n, const uint16_t *row, int64_t j, int64_t *k)
{
    for (; j < n; j++) {
        if (row[j] != 0xFC00u) {
            if (*k == 0) {
                break;
            }
            (*k)--;
        }
    }
    return j;
}

const struct cpu_fa_helpers cpu_fa_ref = {
    .scores = scores_ref,
    .accum = accum_ref,
    .accum_rows_f16 = accum_rows_f16_ref,
    .accum_rows_f32 = accum_rows_f32_ref,
    .exp_sum = exp_sum_ref,
    .f16_row = f16_row_ref,
    .skip_f16 = skip_f16_ref,
};

// Row `type` at p as F32: p itself for F32, else converted into buf.
static const float *fa_row_f32(const struct cpu_fa_helpers *h, uint32_t type, const char *p,
                               float *buf, int64_t n)
{
    if (type == GGML_TYPE_F32) {
        return (const float *)(const void *)p;
    }
    if (type == GGML_TYPE_F16) {
        h->f16_row(n, (const uint16_t *)(const void *)p, buf);
    } else {
        cpu_row_to_f32(type, p, buf, n);
    }
    return buf;
}

// ---- the driver --------------------------------------------------------------------------------

static inline bool mask_open(const struct tensor *m, const char *row, int64_t j, float *mv)
{
    if (!m) {
        *mv = 0.0f;
        return true;
    }
    if (m->type == GGML_TYPE_F16) {
        uint16_t h;
        memcpy(&h, row + 2 * j, 2);
        if (h == 0xFC00u) { // -inf
            return false;
        }
        *mv = fp16_to_f32(h);
        return true;
    }
    memcpy(mv, row + 4 * j, 4);
    return *mv != -INFINITY;
}

// The index of the k-th (0-based) visible cell of a mask row at or after cell j0, or n_kv.
static int64_t fa_skip_visible(const struct cpu_fa_helpers *hp, const struct tensor *m,
                               const char *row, int64_t j0, int64_t n_kv, int64_t k)
{
    if (!m) {
        return j0 + k < n_kv ? j0 + k : n_kv;
    }
    int64_t j = j0;
    if (m->type == GGML_TYPE_F16) {
        j = hp->skip_f16(n_kv, (const uint16_t *)(const void *)row, j, &k);
    }
    float mv;
    for (; j < n_kv; j++) {
        if (mask_open(m, row, j, &mv)) {
            if (k == 0) {
                return j;
            }
            k--;
        }
    }
    return n_kv;
}

// Where a job reads and writes.
struct fa_job {
    int64_t b, hk, qi; // batch, KV head, query
    const char *mrow;  // mask row of the query (NULL: no mask)
};

struct fa_scratch {
    int32_t *idx;     // [FA_KVB] visible cells of the block
    float *mv;        // [FA_KVB] their mask values
    const void **kp;  // [FA_KVB] their K rows (block_f16)
    const void **vp;  // [FA_KVB] their V rows
    const float **qp; // [n_rep] query rows
    float **ap;       // [n_rep] accumulators of the block states
    float *sc;        // [n_rep][FA_KVB] scores, then exp weights ([FA_KVB][8] for block_f16)
    float *krow, *vrow;
    float *blk, *run; // prompts: [n_rep] block states, [FA_TQ][n_rep] running states
};

static void fa_scratch_of(const struct cpu_op_ctx *c, const struct fa_shape *s, int ith,
                          struct fa_scratch *w)
{
    char *p = c->work + fa_parts_bytes(s) + (size_t)ith * fa_chunk_bytes(s);
    w->vp = (const void **)(void *)p;
    p += FA_KVB * sizeof(void *);
    w->kp = (const void **)(void *)p;
    p += FA_KVB * sizeof(void *);
    w->idx = (int32_t *)(void *)p;
    p += FA_KVB * sizeof(int32_t);
    w->mv = (float *)(void *)p;
    p += FA_KVB * sizeof(float);
    w->qp = (const float **)(void *)p;
    p += (size_t)s->n_rep * sizeof(void *);
    w->ap = (float **)(void *)p;
    p += (size_t)s->n_rep * sizeof(void *);
    w->sc = (float *)(void *)p;
    w->krow = w->sc + fa_score_floats(s);
    w->vrow = w->krow + s->D;
    w->blk = w->vrow + s->Dv;
    w->run = w->blk + (size_t)s->n_rep * fa_state_floats(s);
}

// One block: the visible cells [first, ...) up to FA_KVB of them, for the n_rep heads of the
// job; writes each head's state (max, sum, acc) at ap[hi] - 2. Returns the cell after the
// block's last (n_kv when the row has no more).
static int64_t fa_block(const struct cpu_op_ctx *c, const struct fa_shape *s,
                        const struct cpu_fa_helpers *hp, const struct fa_job *jb,
                        struct fa_scratch *w, int64_t first)
{
    const struct tensor *d = c->dst, *k = d->src[1], *v = d->src[2], *m = d->src[3];
    const float scale = d->p.flash_attn.scale;
    const int64_t bk = jb->b % k->ne[3], n_rep = s->n_rep;
    int64_t nc = 0, j = first;
    float mv;
    for (; j < s->n_kv && nc < FA_KVB; j++) {
        if (mask_open(m, jb->mrow, j, &mv)) {
            w->idx[nc] = (int32_t)j;
            w->mv[nc++] = mv;
        }
    }
    if (hp->block_f16 && nc > 0 && n_rep >= 4 && k->type == GGML_TYPE_F16 &&
        v->type == GGML_TYPE_F16 && s->D % 8 == 0 && s->Dv % 16 == 0) {
        for (int64_t i = 0; i < nc; i++) {
            w->kp[i] = cpu_row_c(c->src_data[1], k, w->idx[i], jb->hk, bk);
            w->vp[i] = cpu_row_c(c->src_data[2], v, w->idx[i], jb->hk, bk);
        }
        for (int64_t r0 = 0; r0 < n_rep; r0 += 8) {
            hp->block_f16(s->D, s->Dv, (const uint16_t *const *)w->kp,
                          (const uint16_t *const *)w->vp, w->mv, nc, w->qp + r0,
                          LLEM_MIN(8, n_rep - r0), scale, w->sc, w->ap + r0);
        }
        return j;
    }
    // Scores: each K row once for all heads; sc[hi * FA_KVB + i].
    float tmp[64];
    for (int64_t i = 0; i < nc; i++) {
        const int64_t cell = w->idx[i];
        const float *kr = fa_row_f32(hp, k->type, cpu_row_c(c->src_data[1], k, cell, jb->hk, bk),
                                     w->krow, s->D);
        mv = w->mv[i];
        for (int64_t r0 = 0; r0 < n_rep; r0 += 64) {
            const int64_t nr = LLEM_MIN(64, n_rep - r0);
            hp->scores(s->D, kr, w->qp + r0, nr, tmp);
            for (int64_t r = 0; r < nr; r++) {
                w->sc[(r0 + r) * FA_KVB + i] = tmp[r] * scale + mv;
            }
        }
    }
    for (int64_t hi = 0; hi < n_rep; hi++) {
        float *row = w->sc + hi * FA_KVB, *st = w->ap[hi] - 2;
        float mx = -INFINITY;
        for (int64_t i = 0; i < nc; i++) {
            mx = row[i] > mx ? row[i] : mx;
        }
        st[0] = mx;
        memset(w->ap[hi], 0, (size_t)s->Dv * sizeof(float));
        if (mx == -INFINITY) { // empty block, or scores of -inf
            st[1] = 0.0f;
            memset(row, 0, (size_t)nc * sizeof(float));
            continue;
        }
        st[1] = hp->exp_sum(nc, row, mx);
    }
    // Values: acc[hi] += p[hi][i] * v_i in cell order. F16/F32 rows are read in place, one
    // head at a time (its accumulator stays in registers); other types are converted once.
    if (v->type == GGML_TYPE_F16 || v->type == GGML_TYPE_F32) {
        for (int64_t i = 0; i < nc; i++) {
            w->vp[i] = cpu_row_c(c->src_data[2], v, w->idx[i], jb->hk, bk);
        }
        for (int64_t hi = 0; hi < n_rep; hi++) {
            if (v->type == GGML_TYPE_F16) {
                hp->accum_rows_f16(s->Dv, (const uint16_t *const *)w->vp, w->sc + hi * FA_KVB,
                                   nc, w->ap[hi]);
            } else {
                hp->accum_rows_f32(s->Dv, (const float *const *)w->vp, w->sc + hi * FA_KVB, nc,
                                   w->ap[hi]);
            }
        }
        return j;
    }
    for (int64_t i = 0; i < nc; i++) {
        const float *vr = fa_row_f32(hp, v->type,
                                     cpu_row_c(c->src_data[2], v, w->idx[i], jb->hk, bk), w->vrow,
                                     s->Dv);
        hp->accum(s->Dv, vr, w->sc + i, FA_KVB, w->ap, n_rep);
    }
    return j;
}

// Merges a block state into a running state (same arithmetic for both drivers).
static void fa_merge(const struct cpu_vec *vec, int64_t Dv, float *run, const float *blk)
{
    if (blk[0] == -INFINITY) {
        return;
    }
    if (blk[0] > run[0]) {
        const float ms = expf(run[0] - blk[0]); // 0 while the running state is empty
        vec->scale_f32(Dv, ms, run + 2);
        run[1] *= ms;
        run[0] = blk[0];
        vec->axpy_f32(Dv, 1.0f, blk + 2, run + 2);
        run[1] += blk[1];
    } else {
        const float w = expf(blk[0] - run[0]);
        vec->axpy_f32(Dv, w, blk + 2, run + 2);
        run[1] += blk[1] * w;
    }
}

// Adds the sink of head h and writes y = acc / sum.
static void fa_finish(const struct cpu_op_ctx *c, const struct cpu_vec *vec, int64_t Dv,
                      int64_t h, float *run, float *y)
{
    if (c->dst->src[4]) {
        const float sink = ((const float *)(const void *)c->src_data[4])[h];
        if (sink > run[0]) {
            const float ms = expf(run[0] - sink);
            vec->scale_f32(Dv, ms, run + 2);
            run[1] = run[1] * ms + 1.0f;
            run[0] = sink;
        } else {
            run[1] += expf(sink - run[0]);
        }
    }
    const float inv = run[1] > 0.0f ? 1.0f / run[1] : 0.0f;
    for (int64_t i = 0; i < Dv; i++) {
        y[i] = run[2 + i] * inv;
    }
}

static void fa_job_of(const struct cpu_op_ctx *c, const struct fa_shape *s, int64_t g,
                      struct fa_job *jb)
{
    const struct tensor *m = c->dst->src[3];
    jb->b = g / (s->n_head_kv * s->n_q);
    jb->hk = (g / s->n_q) % s->n_head_kv;
    jb->qi = g % s->n_q;
    // The mask may be per head; heads of a GQA group then differ and are not grouped (see
    // cpu_supports). Here it is broadcast over heads.
    jb->mrow = m ? cpu_row_c(c->src_data[3], m, jb->qi, 0, jb->b % m->ne[3]) : NULL;
}

static void fa_point_queries(const struct cpu_op_ctx *c, const struct fa_shape *s,
                             const struct fa_job *jb, struct fa_scratch *w)
{
    const struct tensor *q = c->dst->src[0];
    for (int64_t hi = 0; hi < s->n_rep; hi++) {
        w->qp[hi] = (const float *)(const void *)cpu_row_c(c->src_data[0], q, jb->qi,
                                                         jb->hk * s->n_rep + hi, jb->b);
    }
}

static float *fa_part(float *parts, const struct fa_shape *s, int64_t b, int64_t h, int64_t qi,
                      int64_t blk)
{
    return parts + ((((size_t)b * (size_t)s->n_head + (size_t)h) * (size_t)s->n_q + (size_t)qi) *
                        (size_t)s->n_blk + (size_t)blk) * fa_state_floats(s);
}

// Decode prep: every (batch, KV head, query, block) job computes its block state.
static void fa_split_blocks(const struct cpu_op_ctx *c, int ith, int nth,
                            const struct cpu_fa_helpers *hp)
{
    struct fa_shape s;
    fa_shape_of(c->dst, &s);
    if (!s.split) {
        return;
    }
    float *parts = (float *)(void *)c->work;
    struct fa_scratch w;
    fa_scratch_of(c, &s, ith, &w);
    int64_t j0, j1;
    cpu_split(s.n_batch * s.n_head_kv * s.n_q * s.n_blk, ith, nth, &j0, &j1);
    for (int64_t job = j0; job < j1; job++) {
        struct fa_job jb;
        fa_job_of(c, &s, job / s.n_blk, &jb);
        const int64_t blk = job % s.n_blk;
        fa_point_queries(c, &s, &jb, &w);
        for (int64_t hi = 0; hi < s.n_rep; hi++) {
            w.ap[hi] = fa_part(parts, &s, jb.b, jb.hk * s.n_rep + hi, jb.qi, blk) + 2;
        }
        const int64_t first =
            fa_skip_visible(hp, c->dst->src[3], jb.mrow, 0, s.n_kv, blk * FA_KVB);
        fa_block(c, &s, hp, &jb, &w, first);
    }
}

// Decode run: merges each row's block states in block order.
static void fa_split_merge(const struct cpu_op_ctx *c, int ith, int nth, const struct cpu_vec *vec)
{
    const struct tensor *d = c->dst;
    struct fa_shape s;
    fa_shape_of(d, &s);
    float *parts = (float *)(void *)c->work;
    int64_t r0, r1;
    cpu_split(s.n_batch * s.n_head * s.n_q, ith, nth, &r0, &r1);
    for (int64_t ri = r0; ri < r1; ri++) {
        const int64_t b = ri / (s.n_head * s.n_q), h = (ri / s.n_q) % s.n_head, qi = ri % s.n_q;
        // The running state lives in block 0's slot: merging it into itself is skipped.
        float *run = fa_part(parts, &s, b, h, qi, 0);
        for (int64_t blk = 1; blk < s.n_blk; blk++) {
            fa_merge(vec, s.Dv, run, fa_part(parts, &s, b, h, qi, blk));
        }
        fa_finish(c, vec, s.Dv, h, run, (float *)(void *)cpu_row(c->dst_data, d, h, qi, b));
    }
}

// Prompt run: each (batch, KV head, tile of FA_TQ queries) job walks its rows' blocks in
// lockstep: pass p computes block p of every row not yet done. Causal rows of one sequence
// share their first blocks' cells, so the tile reads those K/V rows once from memory.
static void fa_rows(const struct cpu_op_ctx *c, int ith, int nth, const struct cpu_fa_helpers *hp,
                    const struct cpu_vec *vec)
{
    const struct tensor *d = c->dst;
    struct fa_shape s;
    fa_shape_of(d, &s);
    struct fa_scratch w;
    fa_scratch_of(c, &s, ith, &w);
    const size_t sf = fa_state_floats(&s);
    int64_t j0, j1;
    cpu_split(s.n_batch * s.n_head_kv * s.n_tile, ith, nth, &j0, &j1);
    for (int64_t job = j0; job < j1; job++) {
        const int64_t q0 = job % s.n_tile * FA_TQ, nq = LLEM_MIN(FA_TQ, s.n_q - q0);
        struct fa_job jb[FA_TQ];
        int64_t next[FA_TQ];
        for (int64_t r = 0; r < nq; r++) {
            fa_job_of(c, &s, job / s.n_tile * s.n_q + q0 + r, &jb[r]);
            next[r] = 0;
        }
        for (int64_t pass = 0, left = nq; left > 0; pass++) {
            for (int64_t r = 0; r < nq; r++) {
                if (pass > 0 && next[r] >= s.n_kv) {
                    continue;
                }
                float *run = w.run + (size_t)r * (size_t)s.n_rep * sf;
                fa_point_queries(c, &s, &jb[r], &w);
                // Block 0 becomes the running state as is, as in fa_split_merge.
                for (int64_t hi = 0; hi < s.n_rep; hi++) {
                    w.ap[hi] = (pass == 0 ? run : w.blk) + hi * sf + 2;
                }
                next[r] = fa_block(c, &s, hp, &jb[r], &w, next[r]);
                if (pass > 0) {
                    for (int64_t hi = 0; hi < s.n_rep; hi++) {
                        fa_merge(vec, s.Dv, run + hi * sf, w.blk + hi * sf);
                    }
                }
                if (next[r] < s.n_kv) {
                    continue;
                }
                left--;
                for (int64_t hi = 0; hi < s.n_rep; hi++) {
                    const int64_t h = jb[r].hk * s.n_rep + hi;
                    fa_finish(c, vec, s.Dv, h, run + hi * sf,
                              (float *)(void *)cpu_row(c->dst_data, d, h, jb[r].qi, jb[r].b));
                }
            }
        }
    }
}

static void fa_run(const struct cpu_op_ctx *c, int ith, int nth, const struct cpu_fa_helpers *hp,
                   const struct cpu_vec *vec)
{
    struct fa_shape s;
    fa_shape_of(c->dst, &s);
    if (s.split) {
        fa_split_merge(c, ith, nth, vec);
    } else {
        fa_rows(c, ith, nth, hp, vec);
    }
}

void cpu_flash_attn_prep_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    fa_split_blocks(c, ith, nth, &cpu_fa_ref);
}

void cpu_flash_attn_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    fa_run(c, ith, nth, &cpu_fa_ref, &cpu_vec_ref);
}

void cpu_flash_attn_prep_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    fa_split_blocks(c, ith, nth, &cpu_fa_avx2);
}

void cpu_flash_attn_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    fa_run(c, ith, nth, &cpu_fa_avx2, &cpu_vec_avx2);
}
