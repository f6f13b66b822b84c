// tensor/quantize_file.c: whole-file GGUF quantization (see quantize_file.h): per-tensor target
// types from tensor/mixture.c, rows of each tensor split over worker threads, metadata copied,
// output written atomically by the GGUF writer. Shared by `llem quantize` and model creation.
#include "tensor/quantize_file.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/compiler.h"
#include "base/log.h"
#include "gguf/gguf.h"
#include "tensor/types.h"

#define MAX_THREADS 256

// Block index of "blk.<i>.<...>" names; -1 for tensors outside the blocks.
static int layer_of(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0) {
        return -1;
    }
    int v = 0;
    const char *p = name + 4;
    if (*p < '0' || *p > '9') {
        return -1;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > 100000) {
            return -1;
        }
        v = v * 10 + (*p - '0');
    }
    return *p == '.' ? v : -1;
}

// One tensor's conversion, split by rows over the workers.
struct job {
    const struct type_traits *src_t;
    uint32_t dst_type;
    const uint8_t *src;
    uint8_t *dst;
    size_t src_row, dst_row;
    int64_t n_per_row, nrows;
    int ith, nth;
    bool failed;
};

static void *job_run(void *arg)
{
    struct job *j = arg;
    const int64_t per = (j->nrows + j->nth - 1) / j->nth;
    const int64_t r0 = per * j->ith;
    const int64_t r1 = r0 + per < j->nrows ? r0 + per : j->nrows;
    float *row = NULL;
    const bool is_f32 = j->src_t->to_f32 != NULL && j->src_t->blck == 1 && j->src_t->type_size == 4;
    if (!is_f32 && r0 < r1) {
        row = llem_malloc((size_t)j->n_per_row * sizeof(float));
        if (!row) {
            j->failed = true;
            return NULL;
        }
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *s = j->src + (size_t)r * j->src_row;
        const float *x = (const float *)(const void *)s;
        if (!is_f32) {
            j->src_t->to_f32(s, row, j->n_per_row);
            x = row;
        }
        if (tensor_quantize_rows(j->dst_type, x, j->dst + (size_t)r * j->dst_row, 1, j->n_per_row,
                                 NULL) != j->dst_row) {
            j->failed = true;
            break;
        }
    }
    llem_free(row);
    return NULL;
}

// Converts nrows rows with up to nth threads; false on failure (out of memory, no threads).
static bool convert(struct job *tmpl, int nth)
{
    struct job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    if (tmpl->nrows < nth) {
        nth = (int)(tmpl->nrows > 0 ? tmpl->nrows : 1);
    }
    for (int i = 0; i < nth; i++) {
        jobs[i] = *tmpl;
        jobs[i].ith = i;
        jobs[i].nth = nth;
    }
    for (int i = 1; i < nth; i++) {
        started[i] = pthread_create(&tid[i], NULL, job_run, &jobs[i]) == 0;
        if (!started[i]) {
            jobs[i].failed = true;
        }
    }
    job_run(&jobs[0]);
    bool ok = true;
    for (int i = 0; i < nth; i++) {
        if (i > 0 && started[i]) {
            pthread_join(tid[i], NULL);
        }
        ok = ok && !jobs[i].failed;
    }
    return ok;
}

// Model facts the mixture rules need: layer count, GQA ratio, whether output.weight exists.
static void model_facts(const struct gguf_file *f, int *n_layer, int *n_gqa, bool *has_output)
{
    char key[160];
    const char *arch = gguf_get_str(f, "general.architecture");
    uint32_t nl = 0, nh = 0, nkv = 0;
    if (arch) {
        snprintf(key, sizeof key, "%s.block_count", arch);
        gguf_get_u32(f, key, &nl);
        snprintf(key, sizeof key, "%s.attention.head_count", arch);
        gguf_get_u32(f, key, &nh);
        snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
        if (!gguf_get_u32(f, key, &nkv)) {
            nkv = nh;
        }
    }
    if (nl == 0) { // no metadata: count the blocks from the tensor names
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
            int l = layer_of(gguf_tensor(f, i)->name);
            if (l >= 0 && (uint32_t)l + 1 > nl) {
                nl = (uint32_t)l + 1;
            }
        }
    }
    *n_layer = nl > 0 && nl < 100000 ? (int)nl : 1;
    *n_gqa = nh > 0 && nkv > 0 ? (int)(nh / nkv) : 1;
    *has_output = gguf_find_tensor(f, "output.weight") >= 0;
}

struct run {
    struct gguf_file *in;
    struct gguf_writer *w;
    uint8_t **bufs; // converted tensors, owned (the writer borrows them)
    int64_t n_bufs;
};

static void run_free(struct run *r)
{
    for (int64_t i = 0; i < r->n_bufs; i++) {
        llem_aligned_free(r->bufs[i]);
    }
    llem_free(r->bufs);
    gguf_writer_free(r->w);
    gguf_close(r->in);
}

enum llem_err tensor_quantize_file(const char *in_path, const char *out_path, const char *target,
                                   int nth, tensor_qfile_progress_fn progress, void *ctx,
                                   struct tensor_qfile_stats *stats, struct llem_errbuf *eb)
{
    const struct tensor_mixture *mix = tensor_mixture_find(target);
    if (!mix) {
        return llem_errf(eb, LLEM_EINVAL, "unknown quantization type '%s'", target);
    }
    if (nth <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nth = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
    }
    if (nth > MAX_THREADS) {
        nth = MAX_THREADS;
    }
    struct tensor_qfile_stats st = {0};
    struct run r = {0};
    enum llem_err rc = gguf_open(&r.in, in_path, NULL, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    const int64_t n_t = gguf_n_tensors(r.in);
    r.w = gguf_writer_new();
    r.bufs = llem_calloc(n_t > 0 ? (size_t)n_t : 1, sizeof *r.bufs);
    if (!r.w || !r.bufs || gguf_writer_copy_kv(r.w, r.in, NULL) != LLEM_OK ||
        gguf_writer_set_u32(r.w, "general.file_type", mix->ftype) != LLEM_OK ||
        gguf_writer_set_u32(r.w, "general.quantization_version", 2) != LLEM_OK) {
        run_free(&r);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    int n_layer, n_gqa;
    bool has_output;
    model_facts(r.in, &n_layer, &n_gqa, &has_output);

    for (int64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor_info *ti = gguf_tensor(r.in, i);
        const struct type_traits *srct = tensor_traits(ti->type);
        uint32_t dt = tensor_mixture_type(mix->name, ti->name, ti->ne, (int)ti->n_dims,
                                          layer_of(ti->name), n_layer, n_gqa, has_output, ti->type);
        const void *data = gguf_tensor_data(r.in, i);
        const void *out = data;
        uint64_t out_bytes = ti->n_bytes;
        if (dt != ti->type) {
            if (!srct || !srct->to_f32) {
                run_free(&r);
                return llem_errf(eb, LLEM_EUNSUPPORTED, "tensor '%s': cannot convert from type %s",
                                 ti->name, gguf_type_name(ti->type));
            }
            if (srct->is_quant && !st.requantized) {
                log_warn("quantize: requantizing already quantized tensors (%s from %s): quality "
                         "is lost",
                         ti->name, srct->name);
                st.requantized = true;
            }
            const int64_t n_per_row = ti->ne[0];
            const int64_t nrows = ti->ne[1] * ti->ne[2] * ti->ne[3];
            const size_t dst_row = tensor_row_size(dt, n_per_row);
            size_t total;
            if (dst_row == 0 || !size_mul_ok(dst_row, (size_t)nrows, &total)) {
                run_free(&r);
                return llem_errf(eb, LLEM_EUNSUPPORTED, "tensor '%s': cannot be stored as %s",
                                 ti->name, gguf_type_name(dt));
            }
            uint8_t *buf = llem_aligned_alloc(64, total > 0 ? total : 1);
            if (!buf) {
                run_free(&r);
                return llem_errf(eb, LLEM_ENOMEM, "out of memory converting '%s'", ti->name);
            }
            r.bufs[r.n_bufs++] = buf;
            struct job j = {.src_t = srct,
                            .dst_type = dt,
                            .src = data,
                            .dst = buf,
                            .src_row = (size_t)(ti->n_bytes / (uint64_t)nrows),
                            .dst_row = dst_row,
                            .n_per_row = n_per_row,
                            .nrows = nrows};
            if (!convert(&j, nth)) {
                run_free(&r);
                return llem_errf(eb, LLEM_ENOMEM, "converting '%s' failed (out of memory?)",
                                 ti->name);
            }
            out = buf;
            out_bytes = total;
        }
        if (gguf_writer_add_tensor(r.w, ti->name, dt, ti->n_dims, ti->ne, out) != LLEM_OK) {
            run_free(&r);
            return llem_errf(eb, LLEM_ENOMEM, "tensor '%s': cannot add to the output", ti->name);
        }
        st.bytes_in += ti->n_bytes;
        st.bytes_out += out_bytes;
        if (progress) {
            struct tensor_qfile_progress p = {i, n_t, ti->name, ti->type, dt};
            if (!progress(ctx, &p)) {
                run_free(&r);
                return llem_errf(eb, LLEM_ECANCELED, "quantization canceled");
            }
        }
    }
    rc = gguf_writer_write(r.w, out_path, eb);
    run_free(&r);
    st.n_tensors = n_t;
    if (rc == LLEM_OK && stats) {
        *stats = st;
    }
    return rc;
}
