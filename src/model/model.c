// model/model.c: loading a model: the architecture table, llama-style hyper-parameters, and
// binding GGUF tensors (validated by name, shape and type) to a zero-copy weights buffer.
#include "model/model.h"
#include "model/model_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"

// ---- architecture table ----------------------------------------------------------------------

#define LLEM_ARCH(n) extern const struct llem_arch arch_##n;
#include "model/arch_list.h"
#undef LLEM_ARCH

static const struct llem_arch *const arch_table[] = {
#define LLEM_ARCH(n) &arch_##n,
#include "model/arch_list.h"
#undef LLEM_ARCH
};

const struct llem_arch *model_arch_find(const char *name)
{
    for (size_t i = 0; i < LLEM_ARRAY_LEN(arch_table); i++) {
        if (strcmp(arch_table[i]->name, name) == 0) {
            return arch_table[i];
        }
    }
    return NULL;
}

// ---- metadata helpers ------------------------------------------------------------------------

bool model_kv_u32(const struct gguf_file *f, const char *arch, const char *key, uint32_t *out)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    return gguf_get_u32(f, full, out);
}

bool model_kv_f32(const struct gguf_file *f, const char *arch, const char *key, float *out)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    return gguf_get_f32(f, full, out);
}

static enum llem_err need_u32(const struct gguf_file *f, const char *arch, const char *key,
                              uint32_t lo, uint32_t hi, int32_t *out, struct llem_errbuf *eb)
{
    uint32_t v;
    if (!model_kv_u32(f, arch, key, &v)) {
        return llem_errf(eb, LLEM_EFORMAT, "missing or non-integer key %s.%s", arch, key);
    }
    if (v < lo || v > hi) {
        return llem_errf(eb, LLEM_EFORMAT, "key %s.%s = %u is out of range [%u, %u]", arch, key,
                         v, lo, hi);
    }
    *out = (int32_t)v;
    return LLEM_OK;
}

// Keys every llama-style architecture shares (llama.cpp's LLM_KV names).
static enum llem_err load_common_hparams(struct model *m, const struct gguf_file *f,
                                         struct llem_errbuf *eb)
{
    struct hparams *hp = &m->hp;
    const char *a = m->arch->name;
    enum llem_err rc;
    if ((rc = need_u32(f, a, "embedding_length", 1, 1u << 17, &hp->n_embd, eb)) ||
        (rc = need_u32(f, a, "block_count", 1, 1024, &hp->n_layer, eb)) ||
        (rc = need_u32(f, a, "attention.head_count", 1, 4096, &hp->n_head, eb)) ||
        (rc = need_u32(f, a, "feed_forward_length", 1, 1u << 20, &hp->n_ff, eb))) {
        return rc;
    }
    uint32_t v;
    hp->n_head_kv = model_kv_u32(f, a, "attention.head_count_kv", &v) ? (int32_t)v : hp->n_head;
    hp->n_ctx_train = model_kv_u32(f, a, "context_length", &v) ? (int32_t)LLEM_MIN(v, 1u << 24)
                                                               : 2048;
    if (hp->n_head_kv < 1 || hp->n_head % hp->n_head_kv != 0) {
        return llem_errf(eb, LLEM_EFORMAT, "%d attention heads are not a multiple of %d KV heads",
                         hp->n_head, hp->n_head_kv);
    }
    hp->head_dim = model_kv_u32(f, a, "attention.key_length", &v) ? (int32_t)v
                                                                   : hp->n_embd / hp->n_head;
    hp->head_dim_v = model_kv_u32(f, a, "attention.value_length", &v) ? (int32_t)v : hp->head_dim;
    if (hp->head_dim < 2 || hp->head_dim > 1024 || hp->head_dim % 2 || hp->head_dim_v < 1 ||
        hp->head_dim_v > 1024 ||
        (!model_kv_u32(f, a, "attention.key_length", &v) && hp->n_embd % hp->n_head)) {
        return llem_errf(eb, LLEM_EFORMAT, "bad head size %d/%d (n_embd %d, %d heads)",
                         hp->head_dim, hp->head_dim_v, hp->n_embd, hp->n_head);
    }
    hp->n_rot = model_kv_u32(f, a, "rope.dimension_count", &v) ? (int32_t)v : hp->head_dim;
    if (hp->n_rot < 2 || hp->n_rot > hp->head_dim || hp->n_rot % 2) {
        return llem_errf(eb, LLEM_EFORMAT, "bad rope.dimension_count %d (head size %d)",
                         hp->n_rot, hp->head_dim);
    }
    hp->norm_eps = 1e-5f;
    model_kv_f32(f, a, "attention.layer_norm_rms_epsilon", &hp->norm_eps);
    if (!(hp->norm_eps > 0 && hp->norm_eps < 1)) {
        return llem_errf(eb, LLEM_EFORMAT, "bad layer_norm_rms_epsilon %g", (double)hp->norm_eps);
    }
    hp->rope_freq_base = 10000.0f;
    model_kv_f32(f, a, "rope.freq_base", &hp->rope_freq_base);
    if (!(hp->rope_freq_base > 0) || !isfinite(hp->rope_freq_base)) {
        return llem_errf(eb, LLEM_EFORMAT, "bad rope.freq_base %g", (double)hp->rope_freq_base);
    }
    // RoPE scaling (llama.cpp's keys and defaults).
    hp->rope_scaling = ROPE_SCALING_NONE;
    hp->rope_scaling_factor = 1.0f;
    hp->rope_freq_scale = 1.0f;
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    const char *type = gguf_get_str(f, key);
    if (type && strcmp(type, "linear") == 0) {
        hp->rope_scaling = ROPE_SCALING_LINEAR;
    } else if (type && strcmp(type, "yarn") == 0) {
        hp->rope_scaling = ROPE_SCALING_YARN;
    } else if (type && strcmp(type, "llama3") == 0) {
        hp->rope_scaling = ROPE_SCALING_LLAMA3;
    } else if (type && strcmp(type, "none") != 0) {
        return llem_errf(eb, LLEM_EUNSUPPORTED, "unsupported rope scaling type '%s'", type);
    }
    float factor = 0;
    if (!model_kv_f32(f, a, "rope.scaling.factor", &factor)) {
        model_kv_f32(f, a, "rope.scale_linear", &factor);
    }
    if (factor > 0 && hp->rope_scaling != ROPE_SCALING_LLAMA3) {
        if (!isfinite(factor) || factor > 1024) {
            return llem_errf(eb, LLEM_EFORMAT, "bad rope scaling factor %g", (double)factor);
        }
        hp->rope_scaling_factor = factor;
        hp->rope_freq_scale = 1.0f / factor;
        if (hp->rope_scaling == ROPE_SCALING_NONE) {
            hp->rope_scaling = ROPE_SCALING_LINEAR;
        }
    }
    hp->rope_n_ctx_orig = model_kv_u32(f, a, "rope.scaling.original_context_length", &v)
                              ? (int32_t)v
                              : hp->n_ctx_train;
    hp->yarn_ext_factor = hp->rope_scaling == ROPE_SCALING_YARN ? 1.0f : 0.0f;
    hp->yarn_attn_factor = 1.0f;
    model_kv_f32(f, a, "rope.scaling.attn_factor", &hp->yarn_attn_factor);
    hp->yarn_beta_fast = 32.0f;
    hp->yarn_beta_slow = 1.0f;
    model_kv_f32(f, a, "rope.scaling.yarn_beta_fast", &hp->yarn_beta_fast);
    model_kv_f32(f, a, "rope.scaling.yarn_beta_slow", &hp->yarn_beta_slow);
    hp->f_attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    return LLEM_OK;
}

// ---- binder --------------------------------------------------------------------------------

struct binder {
    struct model *m;
    enum llem_err rc;
    struct llem_errbuf eb;
    size_t data_offset; // file offset of the data section (tensor offsets are relative)
};

// Expands the one "%d" of a tensor-name pattern with the layer index (no printf on a
// non-literal format).
static void layer_name(char *out, size_t cap, const char *pattern, int il)
{
    const char *at = il >= 0 ? strstr(pattern, "%d") : NULL;
    if (!at) {
        snprintf(out, cap, "%s", pattern);
        return;
    }
    snprintf(out, cap, "%.*s%d%s", (int)(at - pattern), pattern, il, at + 2);
}

struct tensor *binder_get(struct binder *b, const char *fmt, int il, int n_dims,
                          const int64_t *ne, bool optional)
{
    if (b->rc != LLEM_OK) {
        return NULL;
    }
    char name[TENSOR_NAME_MAX];
    layer_name(name, sizeof name, fmt, il);
    struct model *m = b->m;
    int64_t idx = gguf_find_tensor(m->gguf, name);
    if (idx < 0) {
        if (!optional) {
            b->rc = llem_errf(&b->eb, LLEM_EFORMAT, "missing tensor '%s'", name);
        }
        return NULL;
    }
    const struct gguf_tensor_info *ti = gguf_tensor(m->gguf, idx);
    bool shape_ok = true;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        int64_t want = d < n_dims ? ne[d] : 1;
        shape_ok = shape_ok && ti->ne[d] == want;
    }
    if (!shape_ok) {
        char want[96] = "", got[96] = "";
        for (int d = 0; d < n_dims; d++) {
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "",
                     (long long)ne[d]);
        }
        for (uint32_t d = 0; d < ti->n_dims; d++) {
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                     (long long)ti->ne[d]);
        }
        b->rc = llem_errf(&b->eb, LLEM_EFORMAT, "tensor '%s' has shape [%s], expected [%s]",
                          name, got, want);
        return NULL;
    }
    const struct type_traits *tr = tensor_traits(ti->type);
    if (!tr || !tr->to_f32) {
        b->rc = llem_errf(&b->eb, LLEM_EUNSUPPORTED, "tensor '%s' has unsupported type %s", name,
                          gguf_type_name(ti->type));
        return NULL;
    }
    if (m->n_tensors >= m->cap_tensors) {
        b->rc = llem_errf(&b->eb, LLEM_EFORMAT, "tensor '%s' bound twice", name);
        return NULL;
    }
    struct tensor *t = &m->tensors[m->n_tensors];
    enum llem_err rc = tensor_init(t, ti->type, (int)ti->n_dims, ti->ne, name, &b->eb);
    if (rc == LLEM_OK) {
        rc = backend_tensor_bind(t, m->weights, (size_t)ti->offset, &b->eb);
    }
    if (rc != LLEM_OK) {
        b->rc = rc;
        return NULL;
    }
    t->flags |= TENSOR_FLAG_WEIGHT;
    m->n_tensors++;
    m->n_params += (uint64_t)tensor_nelements(t);
    m->weight_bytes += ti->n_bytes;
    return t;
}

enum llem_err binder_status(const struct binder *b, struct llem_errbuf *eb)
{
    if (b->rc != LLEM_OK && eb) {
        *eb = b->eb;
    }
    return b->rc;
}

// ---- load ------------------------------------------------------------------------------------

enum llem_err model_load(const char *path, const struct model_params *p, struct backend *be,
                         struct model **out, struct llem_errbuf *eb)
{
    *out = NULL;
    struct model *m = llem_calloc(1, sizeof *m);
    if (!m) {
        return llem_errf(eb, LLEM_ENOMEM, "%s: out of memory", path);
    }
    m->be = be;
    struct gguf_open_opts opts = {.no_mmap = p && p->no_mmap};
    enum llem_err rc = gguf_open(&m->gguf, path, &opts, eb);
    if (rc != LLEM_OK) {
        llem_free(m);
        return rc;
    }
    const char *arch = gguf_get_str(m->gguf, "general.architecture");
    if (!arch) {
        rc = llem_errf(eb, LLEM_EFORMAT, "no general.architecture key");
        goto fail;
    }
    m->arch = model_arch_find(arch);
    if (!m->arch) {
        rc = llem_errf(eb, LLEM_EUNSUPPORTED, "unknown model architecture '%s'", arch);
        goto fail;
    }
    if ((rc = load_common_hparams(m, m->gguf, eb)) != LLEM_OK ||
        (m->arch->load_hparams && (rc = m->arch->load_hparams(m, m->gguf, eb)) != LLEM_OK)) {
        goto fail;
    }
    int64_t n = gguf_n_tensors(m->gguf);
    if (n < 1) {
        rc = llem_errf(eb, LLEM_EFORMAT, "the file has no tensors");
        goto fail;
    }
    // Zero-copy: one buffer over the whole mapped data section; tensors bind at their offsets.
    const struct gguf_tensor_info *t0 = gguf_tensor(m->gguf, 0);
    const unsigned char *data0 = gguf_tensor_data(m->gguf, 0);
    size_t data_size = (size_t)(gguf_file_size(m->gguf) - gguf_data_offset(m->gguf));
    if (!data0 || data_size == 0) {
        rc = llem_errf(eb, LLEM_EFORMAT, "the file has no tensor data");
        goto fail;
    }
    rc = backend_buffer_from_host_ptr(be, (void *)(uintptr_t)(data0 - t0->offset), data_size,
                                      &m->weights, eb);
    if (rc != LLEM_OK) {
        goto fail;
    }
    m->cap_tensors = (int32_t)n;
    m->tensors = llem_calloc((size_t)n, sizeof *m->tensors);
    m->layers = llem_calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->tensors || !m->layers) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory for %lld tensors", (long long)n);
        goto fail;
    }
    struct binder b = {.m = m};
    rc = m->arch->bind_tensors(m, &b, eb);
    if (rc == LLEM_OK) {
        rc = binder_status(&b, eb);
    }
    if (rc != LLEM_OK) {
        goto fail;
    }
    // Weights the backend computes faster from another layout get a copy now (CPU: 8-row
    // groups); the copy replaces the file pages in memory (they are dropped), so weight_bytes
    // still measures what the weights occupy. Per tensor, in order:
    // - the next tensor's reads are queued (MADV_WILLNEED returns once they are), so on a cold
    //   cache the disk works while this one is copied; asking further ahead (16, 64 MiB)
    //   measured slower: those reads delayed the ones the copy waited for;
    // - its pages are mapped in one call (a fault per page cost more than the copy);
    // - the copied ranges and a gathered-only embedding are marked MADV_NOHUGEPAGE: the page
    //   cache holds 2 MiB folios, and what is still read from the file afterwards (an 8 KiB
    //   norm between copied tensors, embedding rows) was mapping them whole as PMDs, ~100 MiB
    //   of resident set; the marks also leave each norm in a mapping of its own few pages.
    // Copies kept by an earlier load are mapped instead (t->extra set: skipped below).
    const char *prepared_dir = p && !p->no_mmap ? p->prepared_dir : NULL;
    const bool from_file = prepared_dir && prepared_open(m, prepared_dir, path);
    int32_t n_repacked = 0;
    for (int32_t i = 0; i < m->n_tensors; i++) {
        struct tensor *t = &m->tensors[i];
        const int64_t gi = gguf_find_tensor(m->gguf, t->name);
        if (t->extra) { // adopted from the prepared-weights file: its GGUF bytes stay unread
            gguf_tensor_advise(m->gguf, gi, FS_ADVICE_NOHUGEPAGE);
            n_repacked++;
            continue;
        }
        for (int32_t j = i + 1; j < m->n_tensors; j++) {
            if (!model_gathered_only(m, &m->tensors[j]) && !m->tensors[j].extra) {
                gguf_tensor_advise(m->gguf, gguf_find_tensor(m->gguf, m->tensors[j].name),
                                   FS_ADVICE_WILLNEED);
                break;
            }
        }
        size_t bytes = 0;
        if (!model_gathered_only(m, t)) {
            gguf_tensor_advise(m->gguf, gi, FS_ADVICE_POPULATE);
            if ((rc = backend_weight_prepare(be, t, &bytes, eb)) != LLEM_OK) {
                goto fail;
            }
        }
        m->repacked_bytes += bytes;
        if (bytes > 0) { // the backend reads its copy now: don't keep the file pages resident
            gguf_tensor_advise(m->gguf, gi, FS_ADVICE_DONTNEED);
            n_repacked++;
        }
        if (model_gathered_only(m, t) || bytes > 0) {
            gguf_tensor_advise(m->gguf, gi, FS_ADVICE_NOHUGEPAGE);
        }
    }
    if (n_repacked > 0) {
        log_info("%s: %d weights %s for the %s kernels (%.1f MiB)", path, n_repacked,
                 from_file ? "mapped prepared" : "repacked", backend_name(be),
                 (double)m->repacked_bytes / 1048576.0);
    }
    if (prepared_dir && !from_file && n_repacked > 0) {
        prepared_store(m, prepared_dir, path);
    }
    *out = m;
    return LLEM_OK;
fail:
    llem_err_prefix(eb, path);
    model_free(m);
    return rc;
}

bool model_default_prepared_dir(char *buf, size_t cap)
{
    if (!fs_cache_dir(buf, cap)) {
        return false;
    }
    size_t n = strlen(buf);
    int w = snprintf(buf + n, cap - n, "/prepared");
    if (w <= 0 || (size_t)w >= cap - n) {
        buf[0] = '\0';
        return false;
    }
    return true;
}

void model_free(struct model *m)
{
    if (!m) {
        return;
    }
    prepared_wait(m); // it reads the copies released below
    for (int32_t i = 0; m->tensors && i < m->n_tensors; i++) {
        backend_weight_release(m->be, &m->tensors[i]);
    }
    prepared_close(m); // after the release: adopted copies point into it
    backend_buffer_free(m->weights);
    gguf_close(m->gguf);
    llem_free(m->tensors);
    llem_free(m->layers);
    llem_free(m);
}
