// synth/synth_gen.c: synth_generate, the driver of the generator: resolves preset, arch and
// target type, writes the metadata and the tokenizer, then fills every tensor (seeded
// gaussian rows, quantized to the type the mixture picks) across worker threads and hands
// the whole set to the gguf writer. Each row draws from its own RNG stream keyed by (seed,
// tensor name, row), so the bytes never depend on the thread count or the chunking.
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/rng.h"
#include "synth/synth_int.h"
#include "tensor/types.h"

#define SCRATCH_FLOATS (1 << 18) // per worker: rows of F32 generated before each quantize call
#define PARALLEL_MIN_ELEMS (1 << 16)

// ---- rows -------------------------------------------------------------------------------------

static uint64_t name_key(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h = (h ^ *p) * 0x100000001b3ull;
    }
    uint64_t s = seed;
    return h ^ rng_splitmix64(&s);
}

// N(mean, std) by Box-Muller, both values of each pair used; 24-bit uniforms from one draw.
static void fill_normal(uint64_t key, int64_t row, float mean, float std, float *x, int64_t n)
{
    uint64_t s = key ^ ((uint64_t)row * 0xD1B54A32D192ED03ull);
    struct rng r;
    rng_seed(&r, rng_splitmix64(&s));
    for (int64_t i = 0; i < n; i += 2) {
        uint64_t b = rng_next_u64(&r);
        float u1 = ((float)(b >> 40) + 1.0f) * 0x1p-24f; // (0, 1]: log is finite
        float u2 = (float)((b >> 8) & 0xFFFFFFu) * 0x1p-24f;
        float rad = sqrtf(-2.0f * logf(u1));
        float th = 6.28318530718f * u2;
        x[i] = mean + std * rad * cosf(th);
        if (i + 1 < n) {
            x[i + 1] = mean + std * rad * sinf(th);
        }
    }
}

// Llama 3 frequency scaling per rotary pair (as the converter bakes it into rope_freqs):
// long wavelengths are divided by `factor`, short ones kept, a smooth ramp in between.
static void fill_rope_freqs(const struct synth_hparams *hp, uint32_t head_dim, float *x,
                            int64_t n)
{
    const double pi = 3.14159265358979323846;
    double orig = hp->rope_llama3_orig_ctx, lo = hp->rope_llama3_low, hi = hp->rope_llama3_high;
    double factor = hp->rope_llama3_factor;
    for (int64_t i = 0; i < n; i++) {
        double freq = 1.0 / pow((double)hp->rope_theta, (double)(2 * i) / (double)head_dim);
        double wavelen = 2.0 * pi / freq;
        double v;
        if (wavelen < orig / hi) {
            v = 1.0;
        } else if (wavelen > orig / lo) {
            v = factor;
        } else {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            v = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        x[i] = (float)v;
    }
}

static bool convert_rows(uint32_t type, const float *src, void *dst, int64_t nr, int64_t ne0,
                         size_t row_bytes)
{
    switch (type) {
    case GGML_TYPE_F32:
        memcpy(dst, src, (size_t)(nr * ne0) * sizeof(float));
        return true;
    case GGML_TYPE_F16:
        tensor_f32_to_f16_row(src, dst, nr * ne0);
        return true;
    case GGML_TYPE_BF16:
        tensor_f32_to_bf16_row(src, dst, nr * ne0);
        return true;
    default:
        return tensor_quantize_rows(type, src, dst, nr, ne0, NULL) == (size_t)nr * row_bytes;
    }
}

// ---- parallel fill ------------------------------------------------------------------------------

struct fill_job {
    const struct synth_tensor *t;
    const struct synth_shape *shape;
    uint32_t type;
    size_t row_bytes;
    int64_t nrows, ne0, chunk_rows;
    uint8_t *dst;
    uint64_t key;
    atomic_llong next_chunk;
    atomic_int failed;
};

struct worker {
    struct fill_job *job;
    float *scratch; // SCRATCH_FLOATS or one row, whichever is larger
    pthread_t th;
};

static void run_chunks(struct fill_job *j, float *scratch)
{
    int64_t n_chunks = (j->nrows + j->chunk_rows - 1) / j->chunk_rows;
    for (;;) {
        int64_t c = atomic_fetch_add(&j->next_chunk, 1);
        if (c >= n_chunks || atomic_load(&j->failed)) {
            return;
        }
        int64_t r0 = c * j->chunk_rows;
        int64_t nr = j->nrows - r0 < j->chunk_rows ? j->nrows - r0 : j->chunk_rows;
        for (int64_t r = 0; r < nr; r++) {
            float *x = scratch + r * j->ne0;
            if (j->t->init == SYNTH_INIT_ROPE_FREQS) {
                fill_rope_freqs(&j->shape->hp, j->shape->head_dim, x, j->ne0);
            } else {
                fill_normal(j->key, r0 + r, j->t->mean, j->t->std, x, j->ne0);
            }
        }
        if (!convert_rows(j->type, scratch, j->dst + (size_t)r0 * j->row_bytes, nr, j->ne0,
                          j->row_bytes)) {
            atomic_store(&j->failed, 1);
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    run_chunks(wk->job, wk->scratch);
    return NULL;
}

// Fills one tensor with up to n_workers threads (the caller's thread is worker 0).
static enum llem_err fill_tensor(struct fill_job *j, struct worker *wk, int n_workers)
{
    int n = (int64_t)j->nrows * j->ne0 < PARALLEL_MIN_ELEMS ? 1 : n_workers;
    int started = 1;
    for (int i = 1; i < n; i++) {
        wk[i].job = j;
        if (pthread_create(&wk[i].th, NULL, worker_main, &wk[i]) != 0) {
            break; // fewer threads is fine: the remaining chunks still get done
        }
        started++;
    }
    run_chunks(j, wk[0].scratch);
    for (int i = 1; i < started; i++) {
        pthread_join(wk[i].th, NULL);
    }
    return atomic_load(&j->failed) ? LLEM_EINTERNAL : LLEM_OK;
}

// ---- resolution -------------------------------------------------------------------------------

static enum llem_err resolve(const struct synth_opts *o, const struct synth_preset **pp,
                             const struct synth_arch **pa, const struct tensor_mixture **pm,
                             struct synth_shape *s, struct llem_errbuf *eb)
{
    const struct synth_preset *p = synth_preset_find(o->preset);
    if (!p) {
        return llem_errf(eb, LLEM_EINVAL, "unknown preset '%s'", o->preset ? o->preset : "");
    }
    const char *arch_name = o->arch ? o->arch : p->arch ? p->arch : "llama";
    const struct synth_arch *a = synth_arch_find(arch_name);
    if (!a) {
        return llem_errf(eb, LLEM_EINVAL, "unknown architecture '%s'", arch_name);
    }
    if (p->arch && strcmp(p->arch, a->name) != 0) {
        return llem_errf(eb, LLEM_EINVAL, "preset '%s' is a %s model, not %s", p->name, p->arch,
                         a->name);
    }
    const char *type = o->type ? o->type : "F16";
    const struct tensor_mixture *m = tensor_mixture_find(type);
    if (!m) {
        return llem_errf(eb, LLEM_EINVAL, "unknown type '%s'", type);
    }
    memset(s, 0, sizeof *s);
    s->hp = p->hp;
    if (p->arch_defaults) {
        s->hp.rope_theta = a->rope_theta;
        s->hp.norm_eps = a->norm_eps;
        s->hp.tied = a->tied;
    }
    if (o->n_ctx) {
        s->hp.n_ctx = o->n_ctx;
    }
    const struct synth_hparams *hp = &s->hp;
    if (!hp->n_embd || !hp->n_layer || !hp->n_head || !hp->n_head_kv || !hp->n_ff ||
        hp->n_head % hp->n_head_kv || (!hp->head_dim && hp->n_embd % hp->n_head)) {
        return llem_errf(eb, LLEM_EINVAL, "preset '%s': inconsistent shape", p->name);
    }
    s->head_dim = hp->head_dim ? hp->head_dim : hp->n_embd / hp->n_head;
    *pp = p;
    *pa = a;
    *pm = m;
    return LLEM_OK;
}

#define TRY(call)                                                                           \
    do {                                                                                    \
        if ((err = (call)) != LLEM_OK) {                                                    \
            goto done;                                                                      \
        }                                                                                   \
    } while (0)

// Copies tokenizer.ggml.* from a vocabulary GGUF; *n_vocab = its token count.
static enum llem_err copy_vocab(struct gguf_writer *w, const char *path, uint32_t *n_vocab,
                                struct llem_errbuf *eb)
{
    struct gguf_file *f = NULL;
    struct gguf_open_opts oo = {.metadata_only = true};
    enum llem_err err = gguf_open(&f, path, &oo, eb);
    if (err) {
        return llem_err_prefix(eb, "vocabulary");
    }
    uint64_t n = 0;
    if (!gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &n) || n == 0 ||
        n > UINT32_MAX) {
        err = llem_errf(eb, LLEM_EFORMAT, "%s: no tokenizer.ggml.tokens array", path);
        goto done;
    }
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_kv_key(f, i);
        if (strncmp(key, "tokenizer.ggml.", 15) == 0) {
            if ((err = gguf_writer_copy_kv(w, f, key)) != LLEM_OK) {
                err = llem_errf(eb, err, "copying %s from %s", key, path);
                goto done;
            }
        }
    }
    *n_vocab = (uint32_t)n;
done:
    gguf_close(f);
    return err;
}

static bool file_exists(const char *path)
{
    uint64_t size;
    struct llem_errbuf ignored;
    return fs_file_size(path, &size, &ignored) == LLEM_OK;
}

// Writes the tokenizer; picks the file (explicit, preset default found, or none).
static enum llem_err write_vocab(struct gguf_writer *w, const struct synth_opts *o,
                                 const struct synth_preset *p, const struct synth_arch *a,
                                 struct synth_shape *s, struct synth_result *res,
                                 struct llem_errbuf *eb)
{
    char path[4096];
    const char *file = NULL;
    if (!o->gen_vocab && o->vocab_path) {
        file = o->vocab_path;
    } else if (!o->gen_vocab && p->vocab_file && o->vocab_dir) {
        int len = snprintf(path, sizeof path, "%s/%s", o->vocab_dir, p->vocab_file);
        if (len > 0 && (size_t)len < sizeof path && file_exists(path)) {
            file = path;
        } else {
            log_info("gen: %s not found in %s, using a generated vocabulary", p->vocab_file,
                     o->vocab_dir);
        }
    }
    uint32_t want = s->hp.n_vocab, got = 0;
    enum llem_err err;
    if (file) {
        if ((err = copy_vocab(w, file, &got, eb)) != LLEM_OK) {
            return err;
        }
        snprintf(res->vocab_source, sizeof res->vocab_source, "%.191s", file);
    } else {
        enum synth_vocab_kind kind = p->vocab_kind ? p->vocab_kind : a->vocab_kind;
        if ((err = synth_vocab_write(w, kind, want, &got, eb)) != LLEM_OK) {
            return err;
        }
        snprintf(res->vocab_source, sizeof res->vocab_source, "generated (%s)",
                 kind == SYNTH_VOCAB_SPM ? "spm" : "bpe");
    }
    if (want && got != want) {
        log_warn("gen: preset %s has %u tokens, the vocabulary %u: n_vocab is now %u", p->name,
                 want, got, got);
    }
    s->hp.n_vocab = got;
    res->n_vocab = got;
    return LLEM_OK;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > LLEM_MAX_THREADS ? LLEM_MAX_THREADS : (int)n;
}

enum llem_err synth_generate(const struct synth_opts *o, const char *path,
                             struct synth_result *res_out, struct llem_errbuf *eb)
{
    const struct synth_preset *p = NULL;
    const struct synth_arch *a = NULL;
    const struct tensor_mixture *mix = NULL;
    struct synth_shape s;
    struct synth_result res;
    memset(&res, 0, sizeof res);
    enum llem_err err = resolve(o, &p, &a, &mix, &s, eb);
    if (err) {
        return err;
    }
    struct gguf_writer *w = gguf_writer_new();
    struct synth_tensor_list tl = {0};
    void **bufs = NULL;
    struct worker *wk = NULL;
    int n_workers = o->n_threads > 0 ? o->n_threads : default_threads();
    if (n_workers > LLEM_MAX_THREADS) {
        n_workers = LLEM_MAX_THREADS;
    }
    if (!w) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }

    // metadata: general.*, then the tokenizer (it fixes n_vocab), then the hparams
    char name[128], desc[160];
    if (p->model_name) {
        snprintf(name, sizeof name, "%s", p->model_name);
    } else {
        snprintf(name, sizeof name, "%s %s (synthetic)", p->name, a->name);
    }
    snprintf(desc, sizeof desc, "synthetic random-weight model: llem gen --preset %s, seed %llu",
             p->name, (unsigned long long)o->seed);
    TRY(gguf_writer_set_str(w, "general.architecture", a->name));
    TRY(gguf_writer_set_str(w, "general.name", name));
    TRY(gguf_writer_set_str(w, "general.description", desc));
    TRY(gguf_writer_set_u32(w, "general.file_type", mix->ftype));
    TRY(gguf_writer_set_u32(w, "general.quantization_version", 2));
    TRY(gguf_writer_set_u32(w, "general.alignment", GGUF_DEFAULT_ALIGNMENT));
    if ((err = write_vocab(w, o, p, a, &s, &res, eb)) != LLEM_OK) {
        goto fail;
    }
    TRY(synth_arch_write_kv(a, &s, w));
    if (o->chat_template) {
        TRY(gguf_writer_set_str(w, "tokenizer.chat_template", o->chat_template));
    }
    res.file_type = mix->ftype;

    // tensors
    TRY(a->tensors(&s, &tl));
    bufs = llem_calloc(tl.n, sizeof *bufs);
    wk = llem_calloc((size_t)n_workers, sizeof *wk);
    if (!bufs || !wk) {
        err = LLEM_ENOMEM;
        goto done;
    }
    int64_t max_ne0 = 1;
    for (size_t i = 0; i < tl.n; i++) {
        max_ne0 = tl.v[i].ne[0] > max_ne0 ? tl.v[i].ne[0] : max_ne0;
    }
    size_t scratch = max_ne0 > SCRATCH_FLOATS ? (size_t)max_ne0 : SCRATCH_FLOATS;
    for (int i = 0; i < n_workers; i++) {
        wk[i].scratch = llem_aligned_alloc(64, scratch * sizeof(float));
        if (!wk[i].scratch) {
            err = LLEM_ENOMEM;
            goto done;
        }
    }
    int n_gqa = (int)(s.hp.n_head / s.hp.n_head_kv);
    for (size_t i = 0; i < tl.n; i++) {
        const struct synth_tensor *t = &tl.v[i];
        uint32_t type = tensor_mixture_type(mix->name, t->name, t->ne, (int)t->n_dims, t->layer,
                                            (int)s.hp.n_layer, n_gqa, !s.hp.tied, GGML_TYPE_F32);
        size_t row_bytes = gguf_row_bytes(type, t->ne[0]);
        int64_t nrows = t->ne[1] * t->ne[2] * t->ne[3];
        if (row_bytes == 0) {
            err = llem_errf(eb, LLEM_EINVAL, "tensor %s: rows of %lld do not fit type %s",
                            t->name, (long long)t->ne[0], gguf_type_name(type));
            goto fail;
        }
        bufs[i] = llem_aligned_alloc(64, row_bytes * (size_t)nrows);
        if (!bufs[i]) {
            err = LLEM_ENOMEM;
            goto done;
        }
        struct fill_job job = {
            .t = t, .shape = &s, .type = type, .row_bytes = row_bytes, .nrows = nrows,
            .ne0 = t->ne[0], .chunk_rows = (int64_t)(scratch / (size_t)t->ne[0]),
            .dst = bufs[i], .key = name_key(o->seed, t->name),
        };
        atomic_init(&job.next_chunk, 0);
        atomic_init(&job.failed, 0);
        if (fill_tensor(&job, wk, n_workers) != LLEM_OK) {
            err = llem_errf(eb, LLEM_EINTERNAL, "tensor %s: quantizing to %s failed", t->name,
                            gguf_type_name(type));
            goto fail;
        }
        TRY(gguf_writer_add_tensor(w, t->name, type, t->n_dims, t->ne, bufs[i]));
        res.n_params += (uint64_t)(t->ne[0] * nrows);
        res.n_data_bytes += row_bytes * (size_t)nrows;
        if (o->progress) {
            o->progress(o->progress_user, i + 1, tl.n);
        }
    }
    res.n_tensors = tl.n;
    if ((err = gguf_writer_write(w, path, eb)) != LLEM_OK) {
        goto fail;
    }
done:
    if (err) {
        llem_errf(eb, err, "%s", llem_err_str(err));
    }
fail:
    for (int i = 0; wk && i < n_workers; i++) {
        llem_aligned_free(wk[i].scratch);
    }
    llem_free(wk);
    for (size_t i = 0; bufs && i < tl.n; i++) {
        llem_aligned_free(bufs[i]);
    }
    llem_free(bufs);
    synth_list_deinit(&tl);
    gguf_writer_free(w);
    if (!err && res_out) {
        *res_out = res;
    }
    return err;
}
