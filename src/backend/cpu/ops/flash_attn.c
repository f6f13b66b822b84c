// backend/cpu/ops/flash_attn.c: attention with an online softmax, never materialising the
// [n_kv x n_q] score matrix. A job is a tile of query rows (one or all heads sharing a KV
// head, times up to FA_QB queries); it walks the KV cells once, in order, converting each K/V
// row to F32 at most once per tile (F16 is dotted directly) and updating every row's running
// max, denominator and value accumulator. Each row sees the cells in the same order whatever
// the tiling, so results do not depend on the thread count. Sinks join at the end as one
// more logit with no value. The AVX2 entry point runs the same driver with AVX2 helpers.
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_int.h"

#define FA_QB 8 // queries per tile (prompt processing); one query per tile when decoding

struct fa_shape {
    int64_t D, Dv, n_kv, n_q, n_head, n_head_kv, n_rep, n_batch;
    int64_t heads_per_job; // 1 or n_rep
    int64_t q_per_job;
    int64_t rows; // heads_per_job * q_per_job
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
    // Prompts: tile GQA heads x queries so each K/V row is reused; decode: one row per job
    // so all threads get work.
    const bool prompt = s->n_q >= 4;
    s->heads_per_job = prompt ? s->n_rep : 1;
    s->q_per_job = prompt ? FA_QB : 1;
    s->rows = s->heads_per_job * s->q_per_job;
}

// Per-thread scratch in floats: acc[rows][Dv], max[rows], sum[rows], k row, v row.
static size_t fa_thread_floats(const struct fa_shape *s)
{
    size_t n = (size_t)s->rows * (size_t)s->Dv + 2 * (size_t)s->rows + (size_t)s->D + (size_t)s->Dv;
    return (n + 15) & ~(size_t)15; // 64-byte multiple
}

size_t cpu_flash_attn_work_size(const struct tensor *t, int n_threads)
{
    struct fa_shape s;
    fa_shape_of(t, &s);
    return (size_t)n_threads * fa_thread_floats(&s) * sizeof(float);
}

static inline float mask_value(const struct tensor *m, const char *row, int64_t j)
{
    if (m->type == GGML_TYPE_F16) {
        uint16_t h;
        memcpy(&h, row + 2 * j, 2);
        return fp16_to_f32(h);
    }
    float f;
    memcpy(&f, row + 4 * j, 4);
    return f;
}

static void fa_run(const struct cpu_op_ctx *c, int ith, int nth, const struct cpu_vec *vec)
{
    const struct tensor *d = c->dst, *q = d->src[0], *k = d->src[1], *v = d->src[2];
    const struct tensor *m = d->src[3], *sk = d->src[4];
    const float scale = d->p.flash_attn.scale;
    struct fa_shape s;
    fa_shape_of(d, &s);
    float *acc = (float *)(void *)c->work + (size_t)ith * fa_thread_floats(&s);
    float *mx = acc + s.rows * s.Dv;
    float *sum = mx + s.rows;
    float *krow = sum + s.rows;
    float *vrow = krow + s.D;

    const int64_t n_hgroups = s.n_head / s.heads_per_job;
    const int64_t n_qblocks = (s.n_q + s.q_per_job - 1) / s.q_per_job;
    int64_t j0, j1;
    cpu_split(s.n_batch * n_hgroups * n_qblocks, ith, nth, &j0, &j1);
    for (int64_t job = j0; job < j1; job++) {
        const int64_t b = job / (n_hgroups * n_qblocks);
        const int64_t hg = (job / n_qblocks) % n_hgroups, qb = job % n_qblocks;
        const int64_t h0 = hg * s.heads_per_job, q0 = qb * s.q_per_job;
        const int64_t nq = LLEM_MIN(s.q_per_job, s.n_q - q0);
        const int64_t hk = h0 / s.n_rep, bk = b % k->ne[3];
        const int64_t rows = s.heads_per_job * nq; // row = hi * nq + qi
        for (int64_t r = 0; r < rows; r++) {
            mx[r] = -INFINITY;
            sum[r] = 0.0f;
            memset(acc + r * s.Dv, 0, (size_t)s.Dv * sizeof(float));
        }
        for (int64_t j = 0; j < s.n_kv; j++) {
            const char *kr = cpu_row_c(c->src_data[1], k, j, hk, bk);
            const char *vr = cpu_row_c(c->src_data[2], v, j, hk, bk);
            bool k_ready = k->type != GGML_TYPE_F32 && k->type != GGML_TYPE_F16 ? false : true;
            bool v_ready = v->type != GGML_TYPE_F32 && v->type != GGML_TYPE_F16 ? false : true;
            for (int64_t hi = 0; hi < s.heads_per_job; hi++) {
                const int64_t h = h0 + hi;
                for (int64_t qi = 0; qi < nq; qi++) {
                    const int64_t iq = q0 + qi, r = hi * nq + qi;
                    float mv = 0.0f;
                    if (m) {
                        mv = mask_value(
                            m, cpu_row_c(c->src_data[3], m, iq, h % m->ne[2], b % m->ne[3]), j);
                        if (mv == -INFINITY) {
                            continue;
                        }
                    }
                    const float *qr =
                        (const float *)(const void *)cpu_row_c(c->src_data[0], q, iq, h, b);
                    float dot;
                    if (k->type == GGML_TYPE_F32) {
                        dot = vec->dot_f32(s.D, qr, (const float *)(const void *)kr);
                    } else if (k->type == GGML_TYPE_F16) {
                        dot = vec->dot_f16_f32(s.D, (const uint16_t *)(const void *)kr, qr);
                    } else {
                        if (!k_ready) {
                            cpu_row_to_f32(k->type, kr, krow, s.D);
                            k_ready = true;
                        }
                        dot = vec->dot_f32(s.D, krow, qr);
                    }
                    const float sc = dot * scale + mv;
                    float *a = acc + r * s.Dv;
                    float w = 1.0f;
                    if (sc > mx[r]) {
                        const float ms = expf(mx[r] - sc); // 0 on the first cell
                        mx[r] = sc;
                        vec->scale_f32(s.Dv, ms, a);
                        sum[r] *= ms;
                    } else {
                        w = expf(sc - mx[r]);
                    }
                    sum[r] += w;
                    if (v->type == GGML_TYPE_F32) {
                        vec->axpy_f32(s.Dv, w, (const float *)(const void *)vr, a);
                    } else if (v->type == GGML_TYPE_F16) {
                        vec->axpy_f16(s.Dv, w, (const uint16_t *)(const void *)vr, a);
                    } else {
                        if (!v_ready) {
                            cpu_row_to_f32(v->type, vr, vrow, s.Dv);
                            v_ready = true;
                        }
                        vec->axpy_f32(s.Dv, w, vrow, a);
                    }
                }
            }
        }
        for (int64_t hi = 0; hi < s.heads_per_job; hi++) {
            const int64_t h = h0 + hi;
            for (int64_t qi = 0; qi < nq; qi++) {
                const int64_t r = hi * nq + qi;
                float *a = acc + r * s.Dv;
                if (sk) {
                    const float sink = ((const float *)(const void *)c->src_data[4])[h];
                    if (sink > mx[r]) {
                        const float ms = expf(mx[r] - sink);
                        vec->scale_f32(s.Dv, ms, a);
                        sum[r] = sum[r] * ms + 1.0f;
                        mx[r] = sink;
                    } else {
                        sum[r] += expf(sink - mx[r]);
                    }
                }
                float *y = (float *)(void *)cpu_row(c->dst_data, d, h, q0 + qi, b);
                const float inv = sum[r] > 0.0f ? 1.0f / sum[r] : 0.0f;
                for (int64_t i = 0; i < s.Dv; i++) {
                    y[i] = a[i] * inv;
                }
            }
        }
    }
}

void cpu_flash_attn_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    fa_run(c, ith, nth, &cpu_vec_ref);
}

void cpu_flash_attn_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    fa_run(c, ith, nth, &cpu_vec_avx2);
}
