// store/create.c: `create` — a model from a Modelfile. FROM gives the model layer (a GGUF file
// or folder imported as a blob, a blob uploaded earlier, or an existing model's layers); the
// other instructions add or replace template/system/params/messages/license/adapter layers;
// optional quantization goes through a caller-supplied whole-file quantizer (store/ sits below
// tensor/). The config blob is written, then the manifest, last.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "gguf/gguf.h"
#include "store/store_int.h"


// Parameter count like Ollama's format.HumanNumber: "8.0B", "135.06M", "260K".
static void human_number(uint64_t n, char *buf, size_t cap)
{
    if (n >= 1000000000ull) {
        snprintf(buf, cap, "%.1fB", (double)n / 1e9);
    } else if (n >= 1000000ull) {
        snprintf(buf, cap, "%.2fM", (double)n / 1e6);
    } else if (n >= 1000ull) {
        snprintf(buf, cap, "%.0fK", (double)n / 1e3);
    } else {
        snprintf(buf, cap, "%llu", (unsigned long long)n);
    }
}

// What create needs from a GGUF: its layer media type and the config details.
struct gguf_facts {
    char arch[64];
    char file_type[16];
    char params[32];
    const char *media_type;
    bool float_weights; // every 2-D+ weight is F32/F16/BF16 (quantization allowed)
};

static enum llem_err gguf_facts_read(const char *path, struct gguf_facts *g, struct llem_errbuf *eb)
{
    memset(g, 0, sizeof(*g));
    struct gguf_file *f;
    struct gguf_open_opts oo = {.metadata_only = true};
    enum llem_err rc = gguf_open(&f, path, &oo, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    const char *arch = gguf_get_str(f, "general.architecture");
    snprintf(g->arch, sizeof(g->arch), "%s", arch ? arch : "");
    const char *type = gguf_get_str(f, "general.type");
    g->media_type = STORE_MT_MODEL;
    if (type && strcasecmp(type, "adapter") == 0) {
        g->media_type = STORE_MT_ADAPTER;
    } else if ((type && (strcasecmp(type, "projector") == 0 || strcasecmp(type, "mmproj") == 0)) ||
               (arch && strcmp(arch, "clip") == 0)) {
        g->media_type = STORE_MT_PROJECTOR;
    }
    uint64_t nparams = 0;
    g->float_weights = true;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor_info *t = gguf_tensor(f, i);
        uint64_t e = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            e *= (uint64_t)t->ne[d];
        }
        nparams += e;
        if (t->n_dims >= 2 && t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16 &&
            t->type != GGML_TYPE_BF16) {
            g->float_weights = false;
        }
    }
    human_number(nparams, g->params, sizeof(g->params));
    uint32_t ft;
    snprintf(g->file_type, sizeof(g->file_type), "%s",
             !gguf_get_u32(f, "general.file_type", &ft) ? ""
             : gguf_ftype_name(ft)                       ? gguf_ftype_name(ft)
                                                         : "unknown");
    gguf_close(f);
    return LLEM_OK;
}

// ---- the work in progress ------------------------------------------------------------------

struct job {
    struct store *s;
    const struct store_create_opts *o;
    struct llem_errbuf *eb;
    struct store_manifest man;
    struct gguf_facts facts;
    bool have_facts;
    char *renderer, *parser;
    char (*held)[STORE_DIGEST_BYTES]; // digests added to the pending set by this job
    size_t n_held;
};

static bool report(struct job *j, const char *status, const char *digest, uint64_t total,
                   uint64_t done)
{
    if (!j->o->progress) {
        return true;
    }
    struct store_progress p = {status, digest, total, done};
    return j->o->progress(j->o->progress_ctx, &p);
}

// Keeps digest away from prune until the manifest is written.
static enum llem_err hold(struct job *j, const char *digest)
{
    void *p = llem_realloc(j->held, (j->n_held + 1) * sizeof(*j->held));
    if (!p || store_pending_add(j->s, digest) != LLEM_OK) {
        if (p) {
            j->held = p;
        }
        return llem_errf(j->eb, LLEM_ENOMEM, "out of memory");
    }
    j->held = p;
    memcpy(j->held[j->n_held++], digest, STORE_DIGEST_BYTES);
    return LLEM_OK;
}

static enum llem_err add_layer(struct job *j, const char *mt, const char *digest, uint64_t size,
                               bool replace)
{
    if (replace) {
        store_manifest_remove_type(&j->man, mt);
        if (strcmp(mt, STORE_MT_TEMPLATE) == 0) {
            store_manifest_remove_type(&j->man, STORE_MT_PROMPT);
        }
    }
    struct store_layer l = {.size = size};
    snprintf(l.media_type, sizeof(l.media_type), "%s", mt);
    memcpy(l.digest, digest, STORE_DIGEST_BYTES);
    if (store_manifest_add_layer(&j->man, &l) != LLEM_OK) {
        return llem_errf(j->eb, LLEM_ENOMEM, "out of memory");
    }
    return LLEM_OK;
}

static enum llem_err text_layer(struct job *j, const char *mt, const char *text, bool replace)
{
    char digest[STORE_DIGEST_BYTES];
    size_t n = strlen(text);
    enum llem_err rc = store_blob_put_bytes(j->s, text, n, digest, j->eb);
    if (rc == LLEM_OK) {
        rc = hold(j, digest);
    }
    if (rc == LLEM_OK) {
        char st[128];
        snprintf(st, sizeof(st), "using layer %s", digest);
        report(j, st, digest, n, n);
        rc = add_layer(j, mt, digest, n, replace);
    }
    return rc;
}

// Expands "~/" and makes a relative path relative to base_dir. Heap string.
static char *expand_path(const char *p, const char *base_dir)
{
    const char *home = getenv("HOME");
    size_t n;
    char *out;
    if ((strcmp(p, "~") == 0 || strncmp(p, "~/", 2) == 0) && home) {
        n = strlen(home) + strlen(p) + 1;
        out = llem_malloc(n);
        if (out) {
            snprintf(out, n, "%s%s", home, p + 1);
        }
        return out;
    }
    if (p[0] == '/' || !base_dir) {
        return llem_strdup(p);
    }
    n = strlen(base_dir) + strlen(p) + 2;
    out = llem_malloc(n);
    if (out) {
        snprintf(out, n, "%s/%s", base_dir, p);
    }
    return out;
}

// A folder given to FROM must hold exactly one *.gguf (safetensors conversion is not supported).
static enum llem_err gguf_in_dir(const char *dir, int line, char **out, struct llem_errbuf *eb)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        return llem_errf(eb, LLEM_EIO, "Modelfile line %d: %s: %s", line, dir, strerror(errno));
    }
    char found[1024] = "";
    int count = 0;
    bool safetensors = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcasecmp(e->d_name + n - 5, ".gguf") == 0 && e->d_name[0] != '.') {
            if (count++ == 0) {
                snprintf(found, sizeof(found), "%s", e->d_name);
            }
        } else if (n > 12 && strcasecmp(e->d_name + n - 12, ".safetensors") == 0) {
            safetensors = true;
        }
    }
    closedir(d);
    if (count == 0) {
        return llem_errf(eb, safetensors ? LLEM_EUNSUPPORTED : LLEM_ENOTFOUND,
                         "Modelfile line %d: %s holds no .gguf file%s", line, dir,
                         safetensors ? " (safetensors conversion is not supported yet)" : "");
    }
    if (count > 1) {
        return llem_errf(eb, LLEM_EINVAL,
                         "Modelfile line %d: %s holds %d .gguf files; name "
                         "one in FROM",
                         line, dir, count);
    }
    size_t n = strlen(dir) + strlen(found) + 2;
    *out = llem_malloc(n);
    if (!*out) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    snprintf(*out, n, "%s/%s", dir, found);
    return LLEM_OK;
}

// Resolves a FROM/ADAPTER argument that is a file: "@sha256:..." (a blob in the store) or a
// path. *blob_path gets the blob's path after import, digest/size its identity.
static enum llem_err import_arg(struct job *j, const char *arg, int line, bool allow_dir,
                                char **blob_path, char digest[STORE_DIGEST_BYTES], uint64_t *size,
                                bool *is_path)
{
    struct llem_errbuf *eb = j->eb;
    *blob_path = NULL;
    *is_path = true;
    enum llem_err rc;
    if (arg[0] == '@') {
        rc = store_digest_normalize(arg + 1, digest, eb);
        if (rc != LLEM_OK) {
            return llem_errf(eb, rc, "Modelfile line %d: %s", line, eb->msg);
        }
        if (!store_blob_has(j->s, digest)) {
            return llem_errf(eb, LLEM_ENOTFOUND, "Modelfile line %d: blob %s is not in the store",
                             line, digest);
        }
        rc = store_blob_path(j->s, digest, blob_path, eb);
        if (rc == LLEM_OK) {
            rc = fs_file_size(*blob_path, size, eb);
        }
        return rc == LLEM_OK ? hold(j, digest) : rc;
    }
    char *p = expand_path(arg, j->o->base_dir);
    if (!p) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    struct stat st;
    if (stat(p, &st) != 0) {
        llem_free(p);
        *is_path = false;
        return LLEM_ENOTFOUND;
    }
    if (S_ISDIR(st.st_mode)) {
        char *f = NULL;
        rc = allow_dir ? gguf_in_dir(p, line, &f, eb)
                       : llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: %s is a folder", line, p);
        llem_free(p);
        if (rc != LLEM_OK) {
            return rc;
        }
        p = f;
    }
    // Check it is a GGUF before copying gigabytes.
    struct gguf_facts g;
    rc = gguf_facts_read(p, &g, eb);
    if (rc != LLEM_OK) {
        llem_errf(eb, rc, "Modelfile line %d: %s is not a usable GGUF file: %s", line, p, eb->msg);
        llem_free(p);
        return rc;
    }
    report(j, "copying file", NULL, 0, 0);
    rc = store_blob_import_file(j->s, p, digest, size, j->o->progress, j->o->progress_ctx, eb);
    llem_free(p);
    if (rc == LLEM_OK) {
        rc = hold(j, digest);
    }
    if (rc == LLEM_OK) {
        rc = store_blob_path(j->s, digest, blob_path, eb);
    }
    return rc;
}

// FROM an existing model: start from its manifest, layers keep (or get) "from".
static enum llem_err from_model(struct job *j, const char *arg, int line)
{
    struct llem_errbuf *eb = j->eb;
    struct store_model *base = NULL;
    enum llem_err rc = store_resolve(j->s, arg, &base, eb);
    if (rc != LLEM_OK) {
        return llem_errf(eb, rc, "Modelfile line %d: FROM %s: %s", line, arg, eb->msg);
    }
    struct store_manifest bm;
    rc = store_manifest_parse(base->manifest_json, strlen(base->manifest_json), &bm, eb);
    for (size_t i = 0; rc == LLEM_OK && i < bm.n_layers; i++) {
        struct store_layer l = bm.layers[i];
        if (!l.from) {
            l.from = base->name;
        }
        // Blobs of a read-only (Ollama) store must be brought into ours.
        if (!store_blob_has(j->s, l.digest)) {
            rc = llem_errf(eb, LLEM_EIO, "blob %s of %s is missing", l.digest, base->name);
        } else if (base->read_only) {
            char *src = store_blob_path_in(j->s->ro_root, l.digest);
            char *dst = store_blob_path_in(j->s->root, l.digest);
            struct stat st;
            if (!src || !dst) {
                rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
            } else if (stat(dst, &st) != 0) {
                char got[STORE_DIGEST_BYTES];
                rc = store_blob_import_file(j->s, src, got, NULL, j->o->progress,
                                            j->o->progress_ctx, eb);
            }
            llem_free(src);
            llem_free(dst);
        }
        if (rc == LLEM_OK) {
            rc = hold(j, l.digest);
        }
        if (rc == LLEM_OK && store_manifest_add_layer(&j->man, &l) != LLEM_OK) {
            rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
    }
    if (rc == LLEM_OK) {
        rc = gguf_facts_read(base->model_path, &j->facts, eb);
        j->have_facts = rc == LLEM_OK;
    }
    // Inherit renderer/parser from the base's config.
    char *cfg = NULL;
    if (rc == LLEM_OK && store_blob_read_text(j->s, bm.config.digest, STORE_TEXT_LAYER_MAX_BYTES,
                                              &cfg, NULL) == LLEM_OK) {
        cJSON *c = cJSON_Parse(cfg);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "renderer");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(c, "parser");
        if (cJSON_IsString(r) && *r->valuestring) {
            j->renderer = llem_strdup(r->valuestring);
        }
        if (cJSON_IsString(p) && *p->valuestring) {
            j->parser = llem_strdup(p->valuestring);
        }
        cJSON_Delete(c);
    }
    llem_free(cfg);
    store_manifest_deinit(&bm);
    store_model_free(base);
    return rc;
}

static atomic_uint quant_counter;

// Replaces the model layer by its quantized conversion.
static enum llem_err quantize_model(struct job *j, int line)
{
    struct llem_errbuf *eb = j->eb;
    const struct store_layer *ml = store_manifest_find(&j->man, STORE_MT_MODEL);
    if (!ml) {
        return llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: nothing to quantize", line);
    }
    if (!j->o->quantize_fn) {
        return llem_errf(eb, LLEM_EUNSUPPORTED, "quantization is not available here");
    }
    if (!j->facts.float_weights) {
        return llem_errf(eb, LLEM_EUNSUPPORTED,
                         "quantize: only F32/F16/BF16 models can be "
                         "quantized (this one is %s)",
                         j->facts.file_type[0] ? j->facts.file_type : "already quantized");
    }
    char *src = NULL;
    enum llem_err rc = store_blob_path(j->s, ml->digest, &src, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    size_t n = strlen(j->s->root) + 64;
    char *tmp = llem_malloc(n);
    if (!tmp) {
        llem_free(src);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    // A dot-name in blobs/ is invisible to prune and list; the quantizer writes it atomically.
    snprintf(tmp, n, "%s/blobs/.quantize-%ld-%u.gguf", j->s->root, (long)getpid(),
             atomic_fetch_add(&quant_counter, 1u));
    char st[96];
    snprintf(st, sizeof(st), "quantizing %s model to %s",
             j->facts.file_type[0] ? j->facts.file_type : "F16", j->o->quantize);
    report(j, st, NULL, 0, 0);
    rc = j->o->quantize_fn(j->o->quantize_ctx, src, tmp, j->o->quantize, j->o->progress,
                           j->o->progress_ctx, eb);
    llem_free(src);
    char digest[STORE_DIGEST_BYTES];
    uint64_t size = 0;
    if (rc == LLEM_OK) {
        rc = gguf_facts_read(tmp, &j->facts, eb);
    }
    if (rc == LLEM_OK) {
        rc = store_blob_import_file(j->s, tmp, digest, &size, NULL, NULL, eb);
    }
    unlink(tmp);
    llem_free(tmp);
    if (rc == LLEM_OK) {
        rc = hold(j, digest);
    }
    if (rc == LLEM_OK) {
        rc = add_layer(j, STORE_MT_MODEL, digest, size, true);
    }
    return rc;
}

// The config blob: details plus the OCI fields registries expect.
static enum llem_err write_config(struct job *j)
{
    cJSON *c = cJSON_CreateObject();
    cJSON *fams = NULL, *rootfs = NULL, *ids = NULL;
    bool ok = c != NULL;
    ok = ok && cJSON_AddStringToObject(c, "model_format", "gguf");
    ok = ok && cJSON_AddStringToObject(c, "model_family", j->facts.arch);
    ok = ok && (fams = cJSON_AddArrayToObject(c, "model_families")) != NULL;
    if (ok && j->facts.arch[0]) {
        cJSON *f = cJSON_CreateString(j->facts.arch);
        ok = f != NULL;
        if (ok) {
            cJSON_AddItemToArray(fams, f);
        }
    }
    ok = ok && cJSON_AddStringToObject(c, "model_type", j->facts.params);
    ok = ok && cJSON_AddStringToObject(c, "file_type", j->facts.file_type);
    if (ok && j->renderer) {
        ok = cJSON_AddStringToObject(c, "renderer", j->renderer) != NULL;
    }
    if (ok && j->parser) {
        ok = cJSON_AddStringToObject(c, "parser", j->parser) != NULL;
    }
    ok = ok && cJSON_AddStringToObject(c, "architecture", "amd64");
    ok = ok && cJSON_AddStringToObject(c, "os", "linux");
    ok = ok && (rootfs = cJSON_AddObjectToObject(c, "rootfs")) != NULL;
    ok = ok && cJSON_AddStringToObject(rootfs, "type", "layers");
    ok = ok && (ids = cJSON_AddArrayToObject(rootfs, "diff_ids")) != NULL;
    for (size_t i = 0; ok && i < j->man.n_layers; i++) {
        cJSON *d = cJSON_CreateString(j->man.layers[i].digest);
        ok = d != NULL;
        if (ok) {
            cJSON_AddItemToArray(ids, d);
        }
    }
    char *text = ok ? cJSON_PrintUnformatted(c) : NULL;
    cJSON_Delete(c);
    if (!text) {
        return llem_errf(j->eb, LLEM_ENOMEM, "out of memory");
    }
    char digest[STORE_DIGEST_BYTES];
    size_t n = strlen(text);
    enum llem_err rc = store_blob_put_bytes(j->s, text, n, digest, j->eb);
    cJSON_free(text);
    if (rc == LLEM_OK) {
        rc = hold(j, digest);
    }
    if (rc == LLEM_OK) {
        memset(&j->man.config, 0, sizeof(j->man.config));
        snprintf(j->man.config.media_type, sizeof(j->man.config.media_type), "%s", STORE_MT_CONFIG);
        memcpy(j->man.config.digest, digest, STORE_DIGEST_BYTES);
        j->man.config.size = n;
    }
    return rc;
}

// Params: the base's params merged with the Modelfile's (new keys win).
static enum llem_err merge_params(struct job *j, const struct store_modelfile *mf)
{
    char *fresh = NULL;
    enum llem_err rc = store_modelfile_params_json(mf, &fresh, j->eb);
    if (rc != LLEM_OK || !fresh) {
        return rc;
    }
    const struct store_layer *old = store_manifest_find(&j->man, STORE_MT_PARAMS);
    char *prev = NULL;
    if (old) {
        rc = store_blob_read_text(j->s, old->digest, STORE_TEXT_LAYER_MAX_BYTES, &prev, j->eb);
        if (rc != LLEM_OK) {
            llem_free(fresh);
            return rc;
        }
    }
    cJSON *a = prev ? cJSON_Parse(prev) : cJSON_CreateObject();
    cJSON *b = cJSON_Parse(fresh);
    llem_free(prev);
    llem_free(fresh);
    if (!cJSON_IsObject(a) || !b) {
        cJSON_Delete(a);
        cJSON_Delete(b);
        return llem_errf(j->eb, LLEM_EFORMAT, "base model's params layer is not a JSON object");
    }
    while (b->child) {
        cJSON *it = cJSON_DetachItemViaPointer(b, b->child);
        cJSON_DeleteItemFromObjectCaseSensitive(a, it->string);
        cJSON_AddItemToObject(a, it->string, it);
    }
    cJSON_Delete(b);
    char *text = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    if (!text) {
        return llem_errf(j->eb, LLEM_ENOMEM, "out of memory");
    }
    rc = text_layer(j, STORE_MT_PARAMS, text, true);
    cJSON_free(text);
    return rc;
}

static enum llem_err messages_layer(struct job *j, const struct store_modelfile *mf)
{
    cJSON *arr = NULL;
    for (size_t i = 0; i < mf->n; i++) {
        const struct store_mf_line *l = &mf->lines[i];
        if (l->cmd != STORE_MF_MESSAGE) {
            continue;
        }
        if (!arr && !(arr = cJSON_CreateArray())) {
            return llem_errf(j->eb, LLEM_ENOMEM, "out of memory");
        }
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddStringToObject(m, "role", l->name) ||
            !cJSON_AddStringToObject(m, "content", l->value)) {
            cJSON_Delete(m);
            cJSON_Delete(arr);
            return llem_errf(j->eb, LLEM_ENOMEM, "out of memory");
        }
        cJSON_AddItemToArray(arr, m);
    }
    if (!arr) {
        return LLEM_OK;
    }
    char *text = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!text) {
        return llem_errf(j->eb, LLEM_ENOMEM, "out of memory");
    }
    enum llem_err rc = text_layer(j, STORE_MT_MESSAGES, text, true);
    cJSON_free(text);
    return rc;
}

static enum llem_err run_job(struct job *j, const struct store_name *name,
                             const struct store_modelfile *mf)
{
    struct llem_errbuf *eb = j->eb;
    enum llem_err rc = LLEM_OK;
    // FROM lines first: the first may be a file, a blob or a model name; later ones must be
    // GGUF files (a vision projector) and cannot bring a second set of weights.
    bool first = true;
    for (size_t i = 0; rc == LLEM_OK && i < mf->n; i++) {
        const struct store_mf_line *l = &mf->lines[i];
        if (l->cmd != STORE_MF_FROM) {
            continue;
        }
        char *blob = NULL, digest[STORE_DIGEST_BYTES];
        uint64_t size = 0;
        bool is_path;
        rc = import_arg(j, l->value, l->line, true, &blob, digest, &size, &is_path);
        if (rc == LLEM_ENOTFOUND && !is_path) {
            struct store_name bn;
            struct llem_errbuf neb;
            if (!first || store_name_parse(l->value, &bn, &neb) != LLEM_OK) {
                llem_free(blob);
                return llem_errf(eb, LLEM_ENOTFOUND,
                                 "Modelfile line %d: FROM %s: no such file%s%s%s", l->line,
                                 l->value, first ? ", and not a model name (" : "",
                                 first ? neb.msg : "", first ? ")" : "");
            }
            rc = from_model(j, l->value, l->line);
        } else if (rc == LLEM_OK) {
            struct gguf_facts g;
            rc = gguf_facts_read(blob, &g, eb);
            bool is_model = rc == LLEM_OK && strcmp(g.media_type, STORE_MT_MODEL) == 0;
            if (is_model && store_manifest_find(&j->man, STORE_MT_MODEL)) {
                rc = llem_errf(eb, LLEM_EINVAL,
                               "Modelfile line %d: FROM %s: a second model; only "
                               "a projector GGUF may follow the first FROM",
                               l->line, l->value);
            }
            if (rc == LLEM_OK && is_model) {
                j->facts = g;
                j->have_facts = true;
            }
            if (rc == LLEM_OK) {
                rc = add_layer(j, g.media_type, digest, size,
                               strcmp(g.media_type, STORE_MT_PROJECTOR) != 0);
            }
        }
        llem_free(blob);
        first = false;
    }
    if (rc == LLEM_OK && !store_manifest_find(&j->man, STORE_MT_MODEL)) {
        return llem_errf(eb, LLEM_EINVAL, "Modelfile: FROM names no model weights");
    }
    if (rc == LLEM_OK && j->o->quantize && *j->o->quantize) {
        rc = quantize_model(j, mf->lines[0].line);
    }
    bool license_replaced = false;
    for (size_t i = 0; rc == LLEM_OK && i < mf->n; i++) {
        const struct store_mf_line *l = &mf->lines[i];
        switch (l->cmd) {
        case STORE_MF_ADAPTER: {
            char *blob = NULL, digest[STORE_DIGEST_BYTES];
            uint64_t size = 0;
            bool is_path;
            rc = import_arg(j, l->value, l->line, false, &blob, digest, &size, &is_path);
            if (rc == LLEM_ENOTFOUND && !is_path) {
                rc = llem_errf(eb, LLEM_ENOTFOUND, "Modelfile line %d: ADAPTER %s: no such file",
                               l->line, l->value);
            }
            llem_free(blob);
            if (rc == LLEM_OK) {
                rc = add_layer(j, STORE_MT_ADAPTER, digest, size, true);
            }
            break;
        }
        case STORE_MF_TEMPLATE: rc = text_layer(j, STORE_MT_TEMPLATE, l->value, true); break;
        case STORE_MF_SYSTEM: rc = text_layer(j, STORE_MT_SYSTEM, l->value, true); break;
        case STORE_MF_LICENSE: // several LICENSE lines give several layers; they replace the base's
            rc = text_layer(j, STORE_MT_LICENSE, l->value, !license_replaced);
            license_replaced = true;
            break;
        case STORE_MF_RENDERER:
            llem_free(j->renderer);
            j->renderer = llem_strdup(l->value);
            rc = j->renderer ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "out of memory");
            break;
        case STORE_MF_PARSER:
            llem_free(j->parser);
            j->parser = llem_strdup(l->value);
            rc = j->parser ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "out of memory");
            break;
        default: break;
        }
    }
    if (rc == LLEM_OK) {
        rc = merge_params(j, mf);
    }
    if (rc == LLEM_OK) {
        rc = messages_layer(j, mf);
    }
    if (rc == LLEM_OK) {
        rc = write_config(j);
    }
    if (rc == LLEM_OK && !report(j, "writing manifest", NULL, 0, 0)) {
        rc = llem_errf(eb, LLEM_ECANCELED, "canceled");
    }
    if (rc == LLEM_OK) {
        pthread_mutex_lock(&j->s->lock);
        rc = store_manifest_save(j->s, name, &j->man, eb);
        pthread_mutex_unlock(&j->s->lock);
    }
    if (rc == LLEM_OK) {
        report(j, "success", NULL, 0, 0);
    }
    return rc;
}

// Runs a parsed Modelfile (from text or from an /api/create request).
static enum llem_err create_mf(struct store *s, const struct store_name *n,
                               const struct store_modelfile *mf,
                               const struct store_create_opts *opts, struct llem_errbuf *eb)
{
    static const struct store_create_opts none = {0};
    struct job j = {.s = s, .o = opts ? opts : &none, .eb = eb};
    if (!report(&j, "parsing modelfile", NULL, 0, 0)) {
        return llem_errf(eb, LLEM_ECANCELED, "canceled");
    }
    enum llem_err rc = run_job(&j, n, mf);
    for (size_t i = 0; i < j.n_held; i++) {
        store_pending_remove(s, j.held[i]);
    }
    llem_free(j.held);
    if (rc == LLEM_OK && !s->no_prune) {
        // Layers the replaced manifest used, and an unquantized source nothing references.
        struct llem_errbuf peb;
        store_prune(s, NULL, &peb);
    }
    llem_free(j.renderer);
    llem_free(j.parser);
    store_manifest_deinit(&j.man);
    return rc;
}

enum llem_err store_create(struct store *s, const char *name, const char *modelfile,
                           const struct store_create_opts *opts, struct llem_errbuf *eb)
{
    struct store_name n;
    enum llem_err rc = store_name_parse(name, &n, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct store_modelfile mf;
    rc = store_modelfile_parse(modelfile, strlen(modelfile), &mf, eb);
    if (rc == LLEM_OK) {
        rc = create_mf(s, &n, &mf, opts, eb);
    }
    store_modelfile_deinit(&mf);
    return rc;
}

// ---- POST /api/create -----------------------------------------------------------------------

static enum llem_err mf_add(struct store_modelfile *mf, enum store_mf_cmd cmd, const char *name,
                            const char *value)
{
    struct store_mf_line *nl = llem_realloc(mf->lines, (mf->n + 1) * sizeof(*nl));
    if (!nl) {
        return LLEM_ENOMEM;
    }
    mf->lines = nl;
    struct store_mf_line *l = &mf->lines[mf->n];
    *l = (struct store_mf_line){.cmd = cmd, .line = (int)mf->n + 1};
    l->name = name ? llem_strdup(name) : NULL;
    l->value = llem_strdup(value);
    if ((name && !l->name) || !l->value) {
        llem_free(l->name);
        llem_free(l->value);
        return LLEM_ENOMEM;
    }
    mf->n++;
    return LLEM_OK;
}

static enum llem_err bad_field(struct llem_errbuf *eb, const char *field, const char *want)
{
    return llem_errf(eb, LLEM_EINVAL, "create request: '%s' must be %s", field, want);
}

// "files"/"adapters": {"name.gguf": "sha256:<hex>"} -> FROM/ADAPTER @digest.
static enum llem_err json_files(const cJSON *o, const char *field, enum store_mf_cmd cmd,
                                struct store_modelfile *mf, struct llem_errbuf *eb)
{
    if (!o) {
        return LLEM_OK;
    }
    if (!cJSON_IsObject(o)) {
        return bad_field(eb, field, "an object of file name -> digest");
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        char d[STORE_DIGEST_BYTES], v[STORE_DIGEST_BYTES + 1];
        if (!cJSON_IsString(it) || store_digest_normalize(it->valuestring, d, NULL) != LLEM_OK) {
            return llem_errf(eb, LLEM_EINVAL,
                             "create request: %s['%.100s'] is not a sha256 "
                             "digest",
                             field, it->string ? it->string : "");
        }
        snprintf(v, sizeof(v), "@%s", d);
        if (mf_add(mf, cmd, NULL, v) != LLEM_OK) {
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
    }
    return LLEM_OK;
}

// A parameter value as the Modelfile would spell it (typed again by params_json).
static enum llem_err json_param(struct store_modelfile *mf, const char *key, const cJSON *v,
                                struct llem_errbuf *eb)
{
    if (cJSON_IsString(v)) {
        return mf_add(mf, STORE_MF_PARAMETER, key, v->valuestring) == LLEM_OK
                   ? LLEM_OK
                   : llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    if (cJSON_IsNumber(v) || cJSON_IsBool(v)) {
        char *t = cJSON_PrintUnformatted(v);
        enum llem_err rc = t ? mf_add(mf, STORE_MF_PARAMETER, key, t) : LLEM_ENOMEM;
        cJSON_free(t);
        return rc == LLEM_OK ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    return llem_errf(eb, LLEM_EINVAL,
                     "create request: parameter '%.64s' has a value of the "
                     "wrong type",
                     key);
}

static enum llem_err json_to_mf(const cJSON *req, struct store_modelfile *mf, const char **quant,
                                struct llem_errbuf *eb)
{
    enum llem_err rc = LLEM_OK;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(req, "from");
    if (from && !cJSON_IsString(from)) {
        return bad_field(eb, "from", "a string");
    }
    if (cJSON_IsString(from) && *from->valuestring &&
        mf_add(mf, STORE_MF_FROM, NULL, from->valuestring) != LLEM_OK) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    rc = json_files(cJSON_GetObjectItemCaseSensitive(req, "files"), "files", STORE_MF_FROM, mf, eb);
    if (rc == LLEM_OK) {
        rc = json_files(cJSON_GetObjectItemCaseSensitive(req, "adapters"), "adapters",
                        STORE_MF_ADAPTER, mf, eb);
    }
    static const struct {
        const char *key;
        enum store_mf_cmd cmd;
    } texts[] = {{"template", STORE_MF_TEMPLATE},
                 {"system", STORE_MF_SYSTEM},
                 {"renderer", STORE_MF_RENDERER},
                 {"parser", STORE_MF_PARSER}};
    for (size_t i = 0; rc == LLEM_OK && i < sizeof(texts) / sizeof(texts[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, texts[i].key);
        if (v && !cJSON_IsString(v)) {
            rc = bad_field(eb, texts[i].key, "a string");
        } else if (v && mf_add(mf, texts[i].cmd, NULL, v->valuestring) != LLEM_OK) {
            rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
    }
    const cJSON *lic = cJSON_GetObjectItemCaseSensitive(req, "license");
    if (rc == LLEM_OK && cJSON_IsString(lic)) {
        rc = mf_add(mf, STORE_MF_LICENSE, NULL, lic->valuestring);
    } else if (rc == LLEM_OK && cJSON_IsArray(lic)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, lic)
        {
            if (rc == LLEM_OK) {
                rc = cJSON_IsString(it) ? mf_add(mf, STORE_MF_LICENSE, NULL, it->valuestring)
                                        : bad_field(eb, "license", "a string or strings");
            }
        }
    } else if (rc == LLEM_OK && lic && !cJSON_IsNull(lic)) {
        rc = bad_field(eb, "license", "a string or strings");
    }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (rc == LLEM_OK && msgs && !cJSON_IsArray(msgs)) {
        rc = bad_field(eb, "messages", "an array");
    }
    const cJSON *it;
    const cJSON *mlist = rc == LLEM_OK ? msgs : NULL;
    cJSON_ArrayForEach(it, mlist)
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "role");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (rc != LLEM_OK) {
            break;
        }
        if (!cJSON_IsString(r) || !cJSON_IsString(c) ||
            (strcmp(r->valuestring, "system") && strcmp(r->valuestring, "user") &&
             strcmp(r->valuestring, "assistant") && strcmp(r->valuestring, "tool"))) {
            rc = bad_field(eb, "messages", "[{role: system|user|assistant|tool, content}]");
        } else {
            rc = mf_add(mf, STORE_MF_MESSAGE, r->valuestring, c->valuestring);
        }
    }
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "parameters");
    if (rc == LLEM_OK && params && !cJSON_IsObject(params)) {
        rc = bad_field(eb, "parameters", "an object");
    }
    const cJSON *plist = rc == LLEM_OK ? params : NULL;
    cJSON_ArrayForEach(it, plist)
    {
        if (rc != LLEM_OK) {
            break;
        }
        if (cJSON_IsArray(it)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, it)
            {
                if (rc == LLEM_OK) {
                    rc = json_param(mf, it->string, e, eb);
                }
            }
        } else {
            rc = json_param(mf, it->string, it, eb);
        }
    }
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(req, "quantize");
    if (!q) {
        q = cJSON_GetObjectItemCaseSensitive(req, "quantization");
    }
    if (rc == LLEM_OK && q && !cJSON_IsNull(q) && !cJSON_IsString(q)) {
        rc = bad_field(eb, "quantize", "a string");
    }
    if (rc == LLEM_OK && cJSON_IsString(q) && *q->valuestring) {
        *quant = q->valuestring;
    }
    if (rc == LLEM_ENOMEM) {
        llem_errf(eb, rc, "out of memory");
    }
    return rc;
}

enum llem_err store_create_json(struct store *s, const char *json, size_t len,
                                const struct store_create_opts *opts, struct llem_errbuf *eb)
{
    cJSON *req = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        return llem_errf(eb, LLEM_EINVAL, "create request: not a JSON object");
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "model");
    if (!name) {
        name = cJSON_GetObjectItemCaseSensitive(req, "name"); // older clients
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(req, "modelfile"); // older clients
    struct store_name n;
    enum llem_err rc = cJSON_IsString(name) ? store_name_parse(name->valuestring, &n, eb)
                                            : bad_field(eb, "model", "a model name");
    struct store_modelfile mf = {0};
    const char *quant = NULL;
    if (rc == LLEM_OK && cJSON_IsString(text) && *text->valuestring) {
        rc = store_modelfile_parse(text->valuestring, strlen(text->valuestring), &mf, eb);
    } else if (rc == LLEM_OK) {
        rc = json_to_mf(req, &mf, &quant, eb);
        if (rc == LLEM_OK && !(mf.n > 0 && mf.lines[0].cmd == STORE_MF_FROM)) {
            bool any_from = false;
            for (size_t i = 0; i < mf.n; i++) {
                any_from = any_from || mf.lines[i].cmd == STORE_MF_FROM;
            }
            if (!any_from) {
                rc = llem_errf(eb, LLEM_EINVAL, "create request: neither 'from' nor 'files'");
            }
        }
    }
    if (rc == LLEM_OK) {
        struct store_create_opts o = opts ? *opts : (struct store_create_opts){0};
        if (!o.quantize && quant) {
            o.quantize = quant;
        }
        rc = create_mf(s, &n, &mf, &o, eb);
        // Lines were made from JSON fields: "Modelfile line N: " would point nowhere.
        const char *p = eb ? strstr(eb->msg, "Modelfile line ") : NULL;
        const char *colon = p ? strstr(p, ": ") : NULL;
        if (rc != LLEM_OK && colon && !(cJSON_IsString(text) && *text->valuestring)) {
            memmove((char *)p, colon + 2, strlen(colon + 2) + 1);
        }
    }
    store_modelfile_deinit(&mf);
    cJSON_Delete(req);
    return rc;
}
