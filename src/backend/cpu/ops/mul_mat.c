// backend/cpu/ops/mul_mat.c: dst[N, M] = w[K, N] x x[K, M] (ggml convention), for every weight
// type. F32/F16 weights dot directly against F32 activations (register-blocked 4x3 tiles);
// quantized weights with a vec_dot kernel first convert each activation row once to the
// type's dot partner (prep phase, into the planned scratch), and types without one
// dequantize each weight row into per-thread scratch and dot in F32. For prompts, quantized
// types with a kernel tile (vec_dot_table.c) unpack each weight block once for all the columns
// of a grid cell; a tile element equals the type's vec_dot bit for bit. Work is cut into tiles
// of MM_RB rows x MM_CB columns whose grid depends only on the shapes, and each thread takes a
// contiguous run of tiles: for one token that is a split by weight rows, for a prompt a split
// by tiles. Each output element is one dot product, so the thread count never changes a bit.
#include <string.h>

#include "backend/cpu/cpu_int.h"
#include "backend/cpu/quant/quant.h"

#define MM_RB 16 // weight rows per tile (multiple of 4)
#define MM_CB 24 // activation columns per tile (multiple of 3; at most CPU_TILE_MAX_COLS)
_Static_assert(MM_CB <= CPU_TILE_MAX_COLS, "a grid cell's columns must fit one kernel tile");

enum mm_path { MM_F32, MM_F16, MM_VEC_DOT, MM_REPACKED, MM_DEQUANT };

static enum mm_path mm_path_of(const struct tensor *w, const struct cpu_vec_dot_entry *e)
{
    const uint32_t wtype = w->type;
    const int64_t K = w->ne[0];
    if (e && w->extra) {
        return MM_REPACKED; // repacked at load (cpu_backend.c); activations as for vec_dot
    }
    if (wtype == GGML_TYPE_F32) {
        return MM_F32;
    }
    if (wtype == GGML_TYPE_F16) {
        return MM_F16;
    }
    const struct type_traits *tr = tensor_traits(wtype);
    if (e && e->vec_dot && tr) {
        const struct type_traits *vt = tensor_traits(tr->vec_dot_type);
        if (vt && K % vt->blck == 0 &&
            (e->from_f32 || vt->from_f32 || tr->vec_dot_type == GGML_TYPE_F32)) {
            return MM_VEC_DOT;
        }
    }
    return MM_DEQUANT;
}

// Where the activations' aux data of MM_REPACKED starts in the scratch: after the converted rows.
static size_t mm_aux_offset(size_t converted_bytes)
{
    return (converted_bytes + 63) & ~(size_t)63;
}

// Bytes of one activation row's aux data (64-byte multiple, so rows stay aligned).
static size_t mm_aux_bytes(const struct cpu_repack_kind *kind, int64_t K)
{
    if (!kind->aux) {
        return 0;
    }
    return ((size_t)(K / kind->aux_per) * sizeof(int16_t) + 63) & ~(size_t)63;
}

static const struct cpu_vec_dot_entry *vd_entry(uint32_t wtype, enum cpu_isa isa)
{
    return wtype < GGML_TYPE_COUNT ? &cpu_vec_dot_table(isa)[wtype] : NULL;
}

// Scratch: the converted activations (MM_VEC_DOT; MM_REPACKED adds the kind's aux data after
// them) or one dequantized weight row per thread (MM_DEQUANT). The planner reserves the larger,
// so either path (and either ISA) fits whatever plan was made.
size_t cpu_mul_mat_work_size(const struct tensor *t, int n_threads)
{
    const struct tensor *w = t->src[0], *x = t->src[1];
    const int64_t K = w->ne[0];
    if (w->type == GGML_TYPE_F32 || w->type == GGML_TYPE_F16) {
        return 0;
    }
    size_t deq = (size_t)n_threads * (((size_t)K * sizeof(float) + 63) & ~(size_t)63);
    size_t vd = 0;
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        enum mm_path path = mm_path_of(w, vd_entry(w->type, (enum cpu_isa)isa));
        if (path == MM_VEC_DOT || path == MM_REPACKED) {
            uint32_t vdt = tensor_traits(w->type)->vec_dot_type;
            vd = tensor_row_size(vdt, K) * (size_t)tensor_nrows(x);
        }
        const struct cpu_repack_kind *kind = cpu_repack_kind_of(w->type);
        if ((path == MM_VEC_DOT || path == MM_REPACKED) && kind && kind->aux) {
            // room for the aux data even before the weight is repacked, so a plan made
            // earlier still fits
            vd = mm_aux_offset(vd) + mm_aux_bytes(kind, K) * (size_t)tensor_nrows(x);
        }
    }
    return deq > vd ? deq : vd;
}

static void mm_prep(const struct cpu_op_ctx *c, int ith, int nth, enum cpu_isa isa)
{
    const struct tensor *w = c->dst->src[0], *x = c->dst->src[1];
    const int64_t K = w->ne[0];
    const struct cpu_vec_dot_entry *e = c->generic_quant ? NULL : vd_entry(w->type, isa);
    const enum mm_path path = mm_path_of(w, e);
    if (path != MM_VEC_DOT && path != MM_REPACKED) {
        return;
    }
    const uint32_t vdt = tensor_traits(w->type)->vec_dot_type;
    const size_t row_bytes = tensor_row_size(vdt, K);
    const int64_t nr = tensor_nrows(x);
    // MM_REPACKED kinds with aux data get it per converted row, after the rows
    const struct cpu_repack_kind *kind = path == MM_REPACKED ? cpu_repacked_of(w)->kind : NULL;
    char *aux = c->work + mm_aux_offset(row_bytes * (size_t)nr);
    const size_t aux_bytes = kind ? mm_aux_bytes(kind, K) : 0;
    int64_t r0, r1;
    cpu_split(nr, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        cpu_row_index(x, r, &i1, &i2, &i3);
        const float *src = (const float *)(const void *)cpu_row_c(c->src_data[1], x, i1, i2, i3);
        void *out = c->work + (size_t)r * row_bytes;
        if (e->from_f32) {
            e->from_f32(src, out, K);
        } else {
            cpu_row_from_f32(vdt, src, out, K);
        }
        if (kind && kind->aux) {
            kind->aux(out, K, (int16_t *)(void *)(aux + (size_t)r * aux_bytes));
        }
    }
}

// One tile: weight rows [n0, n1) x activation columns [m0, m1) of batch (i2, i3).
static void mm_tile(const struct cpu_op_ctx *c, const struct cpu_vec *v,
                    const struct cpu_vec_dot_entry *e, enum cpu_isa isa, enum mm_path path,
                    int ith, int64_t i2, int64_t i3, int64_t n0, int64_t n1, int64_t m0, int64_t m1)
{
    const struct tensor *w = c->dst->src[0], *x = c->dst->src[1], *d = c->dst;
    const int64_t K = w->ne[0];
    const int64_t w2 = i2 / (x->ne[2] / w->ne[2]), w3 = i3 / (x->ne[3] / w->ne[3]);
    const char *wd = c->src_data[0], *xd = c->src_data[1];
#define WROW(n)   cpu_row_c(wd, w, (n), w2, w3)
#define XROW(m)   ((const float *)(const void *)cpu_row_c(xd, x, (m), i2, i3))
#define DST(n, m) (((float *)(void *)cpu_row(c->dst_data, d, (m), i2, i3))[(n)])
    if (path == MM_F32 || path == MM_F16) {
        for (int64_t n = n0; n < n1; n += 4) {
            const void *wr[4];
            for (int r = 0; r < 4; r++) {
                wr[r] = WROW(n + r < n1 ? n + r : n); // repeat a row past the edge
            }
            int64_t m = m0;
            float out[4][3];
            for (; m + 3 <= m1; m += 3) {
                const float *xs[3] = {XROW(m), XROW(m + 1), XROW(m + 2)};
                if (path == MM_F32) {
                    v->tile4x3_f32(K, (const float *const *)wr, xs, out);
                } else {
                    v->tile4x3_f16(K, (const uint16_t *const *)wr, xs, out);
                }
                for (int r = 0; r < 4 && n + r < n1; r++) {
                    for (int q = 0; q < 3; q++) {
                        DST(n + r, m + q) = out[r][q];
                    }
                }
            }
            for (; m < m1; m++) {
                float o[4];
                if (path == MM_F32) {
                    v->tile4x1_f32(K, (const float *const *)wr, XROW(m), o);
                } else {
                    v->tile4x1_f16(K, (const uint16_t *const *)wr, XROW(m), o);
                }
                for (int r = 0; r < 4 && n + r < n1; r++) {
                    DST(n + r, m) = o[r];
                }
            }
        }
    } else if (path == MM_VEC_DOT) {
        const uint32_t vdt = tensor_traits(w->type)->vec_dot_type;
        const size_t row_bytes = tensor_row_size(vdt, K);
        const int64_t rows_per_batch = x->ne[1];
        const int64_t base = (i3 * x->ne[2] + i2) * rows_per_batch;
        int64_t m = m0;
        if (e->tile && m1 - m0 >= 2) {
            // 4 weight rows x all the tile's columns per call: each weight block is unpacked
            // once for up to MM_CB columns. The last 1-3 rows repeat a row pointer and drop
            // the copy (every tile element equals vec_dot, so this changes no bit).
            const void *ys[MM_CB];
            const int nc = (int)(m1 - m0);
            for (int q = 0; q < nc; q++) {
                ys[q] = c->work + (size_t)(base + m0 + q) * row_bytes;
            }
            for (int64_t n = n0; n < n1; n += 4) {
                const int nr = n + 4 <= n1 ? 4 : (int)(n1 - n);
                const void *ws[4];
                for (int r = 0; r < 4; r++) {
                    ws[r] = WROW(n + (r < nr ? r : nr - 1));
                }
                float out[4 * MM_CB];
                e->tile((int)K, ws, ys, nc, out);
                for (int r = 0; r < nr; r++) {
                    for (int q = 0; q < nc; q++) {
                        DST(n + r, m0 + q) = out[r * nc + q];
                    }
                }
            }
            m = m1;
        }
        for (; m < m1; m++) {
            const char *xq = c->work + (size_t)(base + m) * row_bytes;
            for (int64_t n = n0; n < n1; n++) {
                float s;
                e->vec_dot((int)K, &s, WROW(n), xq);
                DST(n, m) = s;
            }
        }
    } else if (path == MM_REPACKED) {
        // Groups of 8 weight rows (n0, n1 are multiples of 8: N is) x up to 4 columns per call;
        // every element is the same chain whatever nc is, so batches never change a bit.
        const struct cpu_repacked *rp = cpu_repacked_of(w);
        const struct cpu_repack_kind *kind = rp->kind;
        const cpu_repack_gemm_fn gemm = isa == CPU_ISA_AVX2 ? kind->gemm_avx2 : kind->gemm_ref;
        const size_t row_bytes = tensor_row_size(tensor_traits(w->type)->vec_dot_type, K);
        const size_t aux_bytes = mm_aux_bytes(kind, K);
        const int64_t base = (i3 * x->ne[2] + i2) * x->ne[1];
        const char *aux = c->work + mm_aux_offset(row_bytes * (size_t)tensor_nrows(x));
        for (int64_t n = n0; n < n1; n += REPACK_ROWS) {
            const void *group = (const char *)rp->data + (size_t)(n / REPACK_ROWS) * rp->group_bytes;
            for (int64_t m = m0; m < m1; m += REPACK_MAX_COLS) {
                const int nc = m1 - m < REPACK_MAX_COLS ? (int)(m1 - m) : REPACK_MAX_COLS;
                const void *ys[REPACK_MAX_COLS];
                const int16_t *as[REPACK_MAX_COLS];
                for (int q = 0; q < nc; q++) {
                    ys[q] = c->work + (size_t)(base + m + q) * row_bytes;
                    as[q] = kind->aux ? (const int16_t *)(const void *)(aux + (size_t)(base + m + q) * aux_bytes)
                                      : NULL;
                }
                float out[REPACK_ROWS * REPACK_MAX_COLS];
                gemm((int)K, group, ys, as, nc, out);
                for (int q = 0; q < nc; q++) {
                    for (int r = 0; r < REPACK_ROWS; r++) {
                        DST(n + r, m + q) = out[REPACK_ROWS * q + r];
                    }
                }
            }
        }
    } else {
        const size_t stride = (((size_t)K * sizeof(float) + 63) & ~(size_t)63);
        float *row = (float *)(void *)(c->work + (size_t)ith * stride);
        for (int64_t n = n0; n < n1; n++) {
            cpu_row_to_f32(w->type, WROW(n), row, K);
            for (int64_t m = m0; m < m1; m++) {
                DST(n, m) = v->dot_f32(K, row, XROW(m));
            }
        }
    }
#undef WROW
#undef XROW
#undef DST
}

static void mm_run(const struct cpu_op_ctx *c, int ith, int nth, enum cpu_isa isa)
{
    const struct tensor *w = c->dst->src[0], *x = c->dst->src[1];
    const int64_t N = w->ne[1], M = x->ne[1];
    const struct cpu_vec_dot_entry *e = c->generic_quant ? NULL : vd_entry(w->type, isa);
    const enum mm_path path = mm_path_of(w, e);
    const struct cpu_vec *v = cpu_vec(isa);
    const int64_t nrt = (N + MM_RB - 1) / MM_RB, nct = (M + MM_CB - 1) / MM_CB;
    const int64_t n_batch = x->ne[2] * x->ne[3];
    int64_t j0, j1;
    cpu_split(n_batch * nrt * nct, ith, nth, &j0, &j1);
    for (int64_t j = j0; j < j1; j++) {
        // Column tiles outermost inside a batch, so consecutive tiles of a thread share
        // activations and walk weight rows (one token: a plain split by weight rows).
        const int64_t b = j / (nrt * nct), rem = j % (nrt * nct);
        const int64_t ct = rem / nrt, rt = rem % nrt;
        const int64_t n0 = rt * MM_RB, n1 = n0 + MM_RB < N ? n0 + MM_RB : N;
        const int64_t m0 = ct * MM_CB, m1 = m0 + MM_CB < M ? m0 + MM_CB : M;
        mm_tile(c, v, e, isa, path, ith, b % x->ne[2], b / x->ne[2], n0, n1, m0, m1);
    }
}

void cpu_mul_mat_prep_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    mm_prep(c, ith, nth, CPU_ISA_SCALAR);
}

void cpu_mul_mat_ref(const struct cpu_op_ctx *c, int ith, int nth)
{
    mm_run(c, ith, nth, CPU_ISA_SCALAR);
}

// The AVX2 entry points share the driver; their SIMD lives in x86/vec_avx2.c (tiles) and in
// the quant kernels' table for AVX2.
void cpu_mul_mat_prep_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    mm_prep(c, ith, nth, CPU_ISA_AVX2);
}

void cpu_mul_mat_avx2(const struct cpu_op_ctx *c, int ith, int nth)
{
    mm_run(c, ith, nth, CPU_ISA_AVX2);
}
