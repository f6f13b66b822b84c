// store/manifest.c: Docker v2 schema-2 manifests with Ollama's layer media types: parse (every
// field checked before use), serialize, find on disk (case-insensitive per path level), load
// with the manifest's own digest (the model ID) and save atomically. Also the config blob's
// details (format, family, parameter size, quantization) shown by list/show.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "store/store_int.h"

// ---- layers -------------------------------------------------------------------------------------

static enum llem_err parse_layer(const cJSON *o, const char *what, struct store_layer *l,
                                 struct llem_errbuf *eb)
{
    memset(l, 0, sizeof(*l));
    if (!cJSON_IsObject(o)) {
        return llem_errf(eb, LLEM_EFORMAT, "manifest: %s is not an object", what);
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(o, "mediaType");
    const cJSON *dg = cJSON_GetObjectItemCaseSensitive(o, "digest");
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(o, "size");
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(o, "from");
    if (!cJSON_IsString(mt) || strlen(mt->valuestring) == 0 ||
        strlen(mt->valuestring) > STORE_MEDIA_TYPE_MAX) {
        return llem_errf(eb, LLEM_EFORMAT, "manifest: %s has no valid mediaType", what);
    }
    for (const char *c = mt->valuestring; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) {
            return llem_errf(eb, LLEM_EFORMAT, "manifest: %s mediaType is not printable", what);
        }
    }
    if (!cJSON_IsString(dg) || !store_digest_valid(dg->valuestring)) {
        return llem_errf(eb, LLEM_EFORMAT, "manifest: %s digest is not sha256:<64 lowercase hex>",
                         what);
    }
    // cJSON keeps numbers as double: require an exact non-negative integer below 2^53.
    if (!cJSON_IsNumber(sz) || !(sz->valuedouble >= 0) || sz->valuedouble > 9007199254740992.0 ||
        floor(sz->valuedouble) != sz->valuedouble) {
        return llem_errf(eb, LLEM_EFORMAT, "manifest: %s size is not a non-negative integer", what);
    }
    if (from && !cJSON_IsNull(from) && !cJSON_IsString(from)) {
        return llem_errf(eb, LLEM_EFORMAT, "manifest: %s 'from' is not a string", what);
    }
    memcpy(l->media_type, mt->valuestring, strlen(mt->valuestring) + 1);
    memcpy(l->digest, dg->valuestring, STORE_DIGEST_BYTES);
    l->size = (uint64_t)sz->valuedouble;
    if (cJSON_IsString(from) && *from->valuestring) {
        l->from = llem_strdup(from->valuestring);
        if (!l->from) {
            return llem_errf(eb, LLEM_ENOMEM, "manifest: out of memory");
        }
    }
    return LLEM_OK;
}

void store_manifest_deinit(struct store_manifest *m)
{
    if (!m) {
        return;
    }
    llem_free(m->config.from);
    for (size_t i = 0; i < m->n_layers; i++) {
        llem_free(m->layers[i].from);
    }
    llem_free(m->layers);
    memset(m, 0, sizeof(*m));
}

enum llem_err store_manifest_parse(const char *json, size_t len, struct store_manifest *m,
                                   struct llem_errbuf *eb)
{
    memset(m, 0, sizeof(*m));
    if (len > STORE_MANIFEST_MAX_BYTES) {
        return llem_errf(eb, LLEM_ELIMIT, "manifest: %zu bytes (max %u)", len,
                         STORE_MANIFEST_MAX_BYTES);
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        return llem_errf(eb, LLEM_EFORMAT, "manifest: not valid JSON");
    }
    enum llem_err rc = LLEM_OK;
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(root, "schemaVersion");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
    if (!cJSON_IsObject(root) || !cJSON_IsNumber(sv) || sv->valuedouble != 2.0) {
        rc = llem_errf(eb, LLEM_EFORMAT, "manifest: schemaVersion is not 2");
        goto out;
    }
    if (!cJSON_IsArray(layers)) {
        rc = llem_errf(eb, LLEM_EFORMAT, "manifest: no layers array");
        goto out;
    }
    rc = parse_layer(cfg, "config", &m->config, eb);
    if (rc != LLEM_OK) {
        goto out;
    }
    int n = cJSON_GetArraySize(layers);
    if (n < 0 || (unsigned)n > STORE_MANIFEST_MAX_LAYERS) {
        rc = llem_errf(eb, LLEM_ELIMIT, "manifest: %d layers (max %u)", n,
                       STORE_MANIFEST_MAX_LAYERS);
        goto out;
    }
    if (n > 0) {
        m->layers = llem_calloc((size_t)n, sizeof(*m->layers));
        if (!m->layers) {
            rc = llem_errf(eb, LLEM_ENOMEM, "manifest: out of memory");
            goto out;
        }
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, layers)
    {
        char what[32];
        snprintf(what, sizeof(what), "layer %zu", m->n_layers);
        rc = parse_layer(it, what, &m->layers[m->n_layers], eb);
        if (rc != LLEM_OK) {
            goto out;
        }
        m->n_layers++;
    }
out:
    cJSON_Delete(root);
    if (rc != LLEM_OK) {
        store_manifest_deinit(m);
    }
    return rc;
}

static cJSON *layer_json(const struct store_layer *l)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "mediaType", l->media_type) ||
        !cJSON_AddStringToObject(o, "digest", l->digest) ||
        !cJSON_AddNumberToObject(o, "size", (double)l->size) ||
        (l->from && !cJSON_AddStringToObject(o, "from", l->from))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *store_manifest_to_json(const struct store_manifest *m)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *layers = NULL, *cfg = NULL;
    char *out = NULL;
    if (!root || !cJSON_AddNumberToObject(root, "schemaVersion", 2) ||
        !cJSON_AddStringToObject(root, "mediaType", STORE_MT_MANIFEST)) {
        goto done;
    }
    cfg = layer_json(&m->config);
    if (!cfg) {
        goto done;
    }
    cJSON_AddItemToObject(root, "config", cfg);
    layers = cJSON_AddArrayToObject(root, "layers");
    if (!layers) {
        goto done;
    }
    for (size_t i = 0; i < m->n_layers; i++) {
        cJSON *l = layer_json(&m->layers[i]);
        if (!l) {
            goto done;
        }
        cJSON_AddItemToArray(layers, l);
    }
    char *s = cJSON_PrintUnformatted(root);
    if (s) {
        out = llem_strdup(s); // cJSON's allocator is libc's; hand back llem memory
        cJSON_free(s);
    }
done:
    cJSON_Delete(root);
    return out;
}

enum llem_err store_manifest_add_layer(struct store_manifest *m, const struct store_layer *l)
{
    struct store_layer *nl = llem_realloc(m->layers, (m->n_layers + 1) * sizeof(*nl));
    if (!nl) {
        return LLEM_ENOMEM;
    }
    m->layers = nl;
    struct store_layer *d = &m->layers[m->n_layers];
    *d = *l;
    d->from = NULL;
    if (l->from && !(d->from = llem_strdup(l->from))) {
        return LLEM_ENOMEM;
    }
    m->n_layers++;
    return LLEM_OK;
}

void store_manifest_remove_type(struct store_manifest *m, const char *mt)
{
    size_t j = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        if (strcmp(m->layers[i].media_type, mt) == 0) {
            llem_free(m->layers[i].from);
        } else {
            m->layers[j++] = m->layers[i];
        }
    }
    m->n_layers = j;
}

const struct store_layer *store_manifest_find(const struct store_manifest *m, const char *mt)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        if (strcmp(m->layers[i].media_type, mt) == 0) {
            return &m->layers[i];
        }
    }
    return NULL;
}

// ---- on disk ------------------------------------------------------------------------------------

// Appends "/<part>" to path, using an existing entry of dir that matches part ignoring case
// when the exact spelling is absent. Returns whether some entry exists.
static bool join_ci(char *path, size_t cap, const char *part)
{
    size_t len = strlen(path);
    snprintf(path + len, cap - len, "/%s", part);
    struct stat st;
    if (lstat(path, &st) == 0) {
        return true;
    }
    path[len] = '\0';
    DIR *d = opendir(path);
    bool found = false;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcasecmp(e->d_name, part) == 0) {
                snprintf(path + len, cap - len, "/%s", e->d_name);
                found = true;
                break;
            }
        }
        closedir(d);
    }
    if (!found) {
        snprintf(path + len, cap - len, "/%s", part);
    }
    return found;
}

enum llem_err store_manifest_path(const char *root, const struct store_name *n, char **path,
                                  bool *exists, struct llem_errbuf *eb)
{
    *path = NULL;
    char buf[STORE_PATH_MAX];
    int w = snprintf(buf, sizeof(buf), "%s/manifests", root);
    if (w < 0 ||
        (size_t)w + strlen(n->host) + strlen(n->ns) + strlen(n->model) + strlen(n->tag) + 8 >=
            sizeof(buf)) {
        return llem_errf(eb, LLEM_ELIMIT, "manifest path too long");
    }
    bool ok = join_ci(buf, sizeof(buf), n->host);
    ok = join_ci(buf, sizeof(buf), n->ns) && ok;
    ok = join_ci(buf, sizeof(buf), n->model) && ok;
    ok = join_ci(buf, sizeof(buf), n->tag) && ok;
    struct stat st;
    *exists = ok && stat(buf, &st) == 0 && S_ISREG(st.st_mode);
    *path = llem_strdup(buf);
    return *path ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "out of memory");
}

enum llem_err store_manifest_load(const char *path, struct store_manifest *m, char **json,
                                  char digest[STORE_DIGEST_BYTES], int64_t *mtime,
                                  struct llem_errbuf *eb)
{
    memset(m, 0, sizeof(*m));
    if (json) {
        *json = NULL;
    }
    char *buf = NULL;
    size_t len = 0;
    enum llem_err rc = fs_read_file(path, STORE_MANIFEST_MAX_BYTES, &buf, &len, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    rc = store_manifest_parse(buf, len, m, eb);
    if (rc != LLEM_OK) {
        llem_err_prefix(eb, path);
        llem_free(buf);
        return rc;
    }
    if (digest) {
        uint8_t d[SHA256_BYTES];
        char hex[SHA256_HEX_BYTES];
        rc = sha256_oneshot(buf, len, d);
        if (rc != LLEM_OK) {
            store_manifest_deinit(m);
            llem_free(buf);
            return llem_errf(eb, rc, "sha256 failed");
        }
        sha256_hex(d, hex);
        snprintf(digest, STORE_DIGEST_BYTES, "sha256:%s", hex);
    }
    if (mtime) {
        struct stat st;
        *mtime = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    }
    if (json) {
        *json = buf;
    } else {
        llem_free(buf);
    }
    return LLEM_OK;
}

enum llem_err store_manifest_save_raw(struct store *s, const struct store_name *n, const char *json,
                                      size_t len, struct llem_errbuf *eb)
{
    char *path = NULL;
    bool exists;
    enum llem_err rc = store_manifest_path(s->root, n, &path, &exists, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rc = fs_mkdir_p(path, 0755, eb);
    *slash = '/';
    if (rc == LLEM_OK) {
        rc = fs_write_atomic(path, json, len, eb);
    }
    llem_free(path);
    return rc;
}

enum llem_err store_manifest_save(struct store *s, const struct store_name *n,
                                  const struct store_manifest *m, struct llem_errbuf *eb)
{
    char *json = store_manifest_to_json(m);
    if (!json) {
        return llem_errf(eb, LLEM_ENOMEM, "manifest: out of memory");
    }
    enum llem_err rc = store_manifest_save_raw(s, n, json, strlen(json), eb);
    llem_free(json);
    return rc;
}

// ---- details (config blob) ------------------------------------------------------------------

static char *dup_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return llem_strdup(cJSON_IsString(v) && strlen(v->valuestring) < 4096 ? v->valuestring : "");
}

void store_details_deinit(struct store_details *d)
{
    if (!d) {
        return;
    }
    llem_free(d->format);
    llem_free(d->family);
    for (size_t i = 0; i < d->n_families; i++) {
        llem_free(d->families[i]);
    }
    llem_free(d->families);
    llem_free(d->parameter_size);
    llem_free(d->quantization_level);
    llem_free(d->parent_model);
    memset(d, 0, sizeof(*d));
}

enum llem_err store_details_load(const struct store *s, const struct store_manifest *m,
                                 struct store_details *d)
{
    memset(d, 0, sizeof(*d));
    char *text = NULL;
    struct llem_errbuf eb;
    cJSON *root = NULL;
    if (store_blob_read_text(s, m->config.digest, STORE_TEXT_LAYER_MAX_BYTES, &text, &eb) ==
        LLEM_OK) {
        root = cJSON_Parse(text);
    }
    llem_free(text);
    const cJSON *o = cJSON_IsObject(root) ? root : NULL;
    d->format = dup_str(o, "model_format");
    d->family = dup_str(o, "model_family");
    d->parameter_size = dup_str(o, "model_type");
    d->quantization_level = dup_str(o, "file_type");
    d->parent_model = llem_strdup(m->n_layers > 0 && m->layers[0].from ? m->layers[0].from : "");
    const cJSON *fams = cJSON_GetObjectItemCaseSensitive(o, "model_families");
    enum llem_err rc = LLEM_OK;
    if (!d->format || !d->family || !d->parameter_size || !d->quantization_level ||
        !d->parent_model) {
        rc = LLEM_ENOMEM;
    } else if (cJSON_IsArray(fams)) {
        int n = cJSON_GetArraySize(fams);
        if (n > 0 && n < 256) {
            d->families = llem_calloc((size_t)n, sizeof(char *));
            if (!d->families) {
                rc = LLEM_ENOMEM;
            }
            const cJSON *it;
            cJSON_ArrayForEach(it, fams)
            {
                if (rc != LLEM_OK) {
                    break;
                }
                if (cJSON_IsString(it) && strlen(it->valuestring) < 256) {
                    char *f = llem_strdup(it->valuestring);
                    if (!f) {
                        rc = LLEM_ENOMEM;
                        break;
                    }
                    d->families[d->n_families++] = f;
                }
            }
        }
    }
    cJSON_Delete(root);
    if (rc != LLEM_OK) {
        store_details_deinit(d);
    }
    return rc;
}
