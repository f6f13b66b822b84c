// store/store.c: opening a store and the model-level operations that read manifests: resolve
// (name -> GGUF blob + template/system/params/...), show, list, copy, delete (+ prune), and
// rendering the Modelfile that recreates a model (`show --modelfile`).
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "store/store_int.h"

// ---- open / close -------------------------------------------------------------------------------

enum llem_err store_open(struct store **out, const struct store_opts *opts, struct llem_errbuf *eb)
{
    *out = NULL;
    char root[STORE_PATH_MAX];
    enum llem_err rc;
    if (opts && opts->root) {
        if (strlen(opts->root) >= sizeof(root) - 200 || !*opts->root) {
            return llem_errf(eb, LLEM_EINVAL, "model store path is empty or too long");
        }
        snprintf(root, sizeof(root), "%s", opts->root);
    } else if ((rc = store_default_root(root, sizeof(root) - 200, eb)) != LLEM_OK) {
        return rc;
    }
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') {
        root[--n] = '\0';
    }
    struct store *s = llem_calloc(1, sizeof(*s));
    if (!s) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    s->root = llem_strdup(root);
    if (opts && opts->ro_root && strcmp(opts->ro_root, root) != 0) {
        s->ro_root = llem_strdup(opts->ro_root);
        if (!s->ro_root) {
            llem_free(s->root);
            s->root = NULL;
        }
    }
    const char *np = getenv("LLEM_NOPRUNE");
    s->no_prune = (opts && opts->no_prune) || (np && *np && strcmp(np, "0") != 0);
    if (!s->root) {
        llem_free(s);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->lock, NULL);
    char sub[STORE_PATH_MAX + 32];
    snprintf(sub, sizeof(sub), "%s/manifests", root);
    rc = fs_mkdir_p(sub, 0755, eb);
    if (rc == LLEM_OK) {
        snprintf(sub, sizeof(sub), "%s/blobs", root);
        rc = fs_mkdir_p(sub, 0755, eb);
    }
    if (rc != LLEM_OK) {
        store_close(s);
        return rc;
    }
    *out = s;
    return LLEM_OK;
}

void store_close(struct store *s)
{
    if (!s) {
        return;
    }
    pthread_mutex_destroy(&s->lock);
    llem_free(s->root);
    llem_free(s->ro_root);
    llem_free(s->pending);
    llem_free(s);
}

const char *store_root(const struct store *s)
{
    return s->root;
}

// ---- resolve ------------------------------------------------------------------------------------

void store_model_free(struct store_model *m)
{
    if (!m) {
        return;
    }
    llem_free(m->name);
    llem_free(m->full_name);
    llem_free(m->model_path);
    llem_free(m->projector_path);
    llem_free(m->adapter_path);
    llem_free(m->template_text);
    llem_free(m->system_text);
    llem_free(m->params_json);
    llem_free(m->messages_json);
    for (size_t i = 0; i < m->n_licenses; i++) {
        llem_free(m->licenses[i]);
    }
    llem_free(m->licenses);
    llem_free(m->manifest_json);
    store_details_deinit(&m->details);
    llem_free(m);
}

// Finds the manifest of n: root first, then ro_root. *ro tells which.
static enum llem_err find_manifest(const struct store *s, const struct store_name *n, char **path,
                                   bool *ro, struct llem_errbuf *eb)
{
    bool exists = false;
    *ro = false;
    enum llem_err rc = store_manifest_path(s->root, n, path, &exists, eb);
    if (rc != LLEM_OK || exists) {
        return rc;
    }
    if (s->ro_root) {
        llem_free(*path);
        rc = store_manifest_path(s->ro_root, n, path, &exists, eb);
        if (rc != LLEM_OK || exists) {
            *ro = exists;
            return rc;
        }
    }
    llem_free(*path);
    *path = NULL;
    char disp[512];
    store_name_display(n, disp, sizeof(disp));
    return llem_errf(eb, LLEM_ENOTFOUND, "model '%s' not found", disp);
}

// The name as spelled on disk (the last four components of a manifest path), so a
// case-insensitive lookup reports the stored spelling. Falls back to n when unparsable.
static void name_from_path(const char *path, const struct store_name *n, struct store_name *out)
{
    *out = *n;
    const char *p[5];
    const char *end = path + strlen(path);
    int k = 0;
    for (const char *q = end; q > path && k < 4; q--) {
        if (q[-1] == '/') {
            p[k++] = q;
        }
    }
    if (k < 4) {
        return;
    }
    char spec[1100];
    // p[3] host, p[2] ns, p[1] model, p[0] tag (each ends at the next '/').
    snprintf(spec, sizeof(spec), "%.*s/%.*s/%.*s:%s", (int)(p[2] - p[3] - 1), p[3],
             (int)(p[1] - p[2] - 1), p[2], (int)(p[0] - p[1] - 1), p[1], p[0]);
    struct store_name tmp;
    if (store_name_parse(spec, &tmp, NULL) == LLEM_OK) {
        tmp.insecure_scheme = n->insecure_scheme;
        *out = tmp;
    }
}

static enum llem_err blob_file(const struct store *s, const char *digest, char **out,
                               struct llem_errbuf *eb)
{
    enum llem_err rc = store_blob_path(s, digest, out, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct stat st;
    if (stat(*out, &st) != 0 || !S_ISREG(st.st_mode)) {
        llem_errf(eb, LLEM_EIO, "blob %s is missing from the store (%s)", digest, *out);
        llem_free(*out);
        *out = NULL;
        return LLEM_EIO;
    }
    return LLEM_OK;
}

static enum llem_err text_layer(const struct store *s, const struct store_layer *l, char **out,
                                struct llem_errbuf *eb)
{
    enum llem_err rc = store_blob_read_text(s, l->digest, STORE_TEXT_LAYER_MAX_BYTES, out, eb);
    if (rc == LLEM_EIO) {
        llem_errf(eb, LLEM_EIO, "blob %s (%s) is missing or unreadable", l->digest, l->media_type);
    }
    return rc;
}

static enum llem_err fill_layers(const struct store *s, const struct store_manifest *man,
                                 struct store_model *m, struct llem_errbuf *eb)
{
    enum llem_err rc = LLEM_OK;
    for (size_t i = 0; rc == LLEM_OK && i < man->n_layers; i++) {
        const struct store_layer *l = &man->layers[i];
        const char *mt = l->media_type;
        m->size += l->size;
        char **slot = NULL;
        if (strcmp(mt, STORE_MT_MODEL) == 0) {
            if (!m->model_path) { // Ollama uses the first model layer
                rc = blob_file(s, l->digest, &m->model_path, eb);
            }
        } else if (strcmp(mt, STORE_MT_PROJECTOR) == 0) {
            if (!m->projector_path) {
                rc = blob_file(s, l->digest, &m->projector_path, eb);
            }
        } else if (strcmp(mt, STORE_MT_ADAPTER) == 0) {
            if (!m->adapter_path) {
                rc = blob_file(s, l->digest, &m->adapter_path, eb);
            }
        } else if (strcmp(mt, STORE_MT_TEMPLATE) == 0 || strcmp(mt, STORE_MT_PROMPT) == 0) {
            slot = &m->template_text;
        } else if (strcmp(mt, STORE_MT_SYSTEM) == 0) {
            slot = &m->system_text;
        } else if (strcmp(mt, STORE_MT_PARAMS) == 0) {
            slot = &m->params_json;
        } else if (strcmp(mt, STORE_MT_MESSAGES) == 0) {
            slot = &m->messages_json;
        } else if (strcmp(mt, STORE_MT_LICENSE) == 0) {
            char *t = NULL;
            rc = text_layer(s, l, &t, eb);
            if (rc == LLEM_OK) {
                char **nl = llem_realloc(m->licenses, (m->n_licenses + 1) * sizeof(char *));
                if (!nl) {
                    llem_free(t);
                    rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
                } else {
                    m->licenses = nl;
                    m->licenses[m->n_licenses++] = t;
                }
            }
        }
        if (slot && rc == LLEM_OK) {
            llem_free(*slot); // a later layer of the same type wins
            *slot = NULL;
            rc = text_layer(s, l, slot, eb);
        }
    }
    if (rc == LLEM_OK && !m->model_path) {
        rc = llem_errf(eb, LLEM_EFORMAT, "model '%s' has no model layer", m->name);
    }
    if (rc == LLEM_OK && m->params_json) {
        cJSON *p = cJSON_Parse(m->params_json);
        bool ok = cJSON_IsObject(p);
        cJSON_Delete(p);
        if (!ok) {
            rc = llem_errf(eb, LLEM_EFORMAT, "model '%s': params layer is not a JSON object",
                           m->name);
        }
    }
    return rc;
}

enum llem_err store_resolve(struct store *s, const char *name, struct store_model **out,
                            struct llem_errbuf *eb)
{
    *out = NULL;
    struct store_name n;
    enum llem_err rc = store_name_parse(name, &n, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    char *path = NULL;
    bool ro;
    rc = find_manifest(s, &n, &path, &ro, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct store_model *m = llem_calloc(1, sizeof(*m));
    char disp[512], full[512];
    struct store_name on_disk;
    name_from_path(path, &n, &on_disk);
    store_name_display(&on_disk, disp, sizeof(disp));
    store_name_full(&on_disk, full, sizeof(full));
    if (!m || !(m->name = llem_strdup(disp)) || !(m->full_name = llem_strdup(full))) {
        llem_free(path);
        store_model_free(m);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    m->read_only = ro;
    struct store_manifest man;
    rc = store_manifest_load(path, &man, &m->manifest_json, m->digest, &m->modified, eb);
    llem_free(path);
    if (rc == LLEM_OK) {
        rc = fill_layers(s, &man, m, eb);
        if (rc == LLEM_OK && store_details_load(s, &man, &m->details) != LLEM_OK) {
            rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        store_manifest_deinit(&man);
    }
    if (rc != LLEM_OK) {
        store_model_free(m);
        return rc;
    }
    *out = m;
    return LLEM_OK;
}

enum llem_err store_show(struct store *s, const char *name, struct store_model **out,
                         struct llem_errbuf *eb)
{
    return store_resolve(s, name, out, eb);
}

// ---- Modelfile rendering ------------------------------------------------------------------------

static void append_quoted(struct strbuf *sb, const char *kw, const char *text)
{
    strbuf_appendf(sb, "%s \"\"\"%s\"\"\"\n", kw, text);
}

// A params value as a Modelfile literal: strings raw (quoted if they hold spaces), numbers and
// booleans as JSON prints them.
static void append_param(struct strbuf *sb, const char *key, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        bool q = strpbrk(v->valuestring, " \t\n\"") != NULL;
        strbuf_appendf(sb, "PARAMETER %s ", key);
        if (q) {
            strbuf_append_char(sb, '"');
            for (const char *c = v->valuestring; *c; c++) {
                if (*c == '"' || *c == '\\') {
                    strbuf_append_char(sb, '\\');
                }
                strbuf_append_char(sb, *c);
            }
            strbuf_append_str(sb, "\"\n");
        } else {
            strbuf_appendf(sb, "%s\n", v->valuestring);
        }
        return;
    }
    char *t = cJSON_PrintUnformatted(v);
    if (t) {
        strbuf_appendf(sb, "PARAMETER %s %s\n", key, t);
        cJSON_free(t);
    }
}

char *store_model_modelfile(const struct store_model *m)
{
    struct strbuf sb;
    strbuf_init(&sb, 0);
    strbuf_appendf(&sb,
                   "# Modelfile generated by \"llem show\"\n"
                   "# To build a new Modelfile based on this, replace FROM with:\n"
                   "# FROM %s\n\nFROM %s\n",
                   m->name, m->model_path);
    if (m->adapter_path) {
        strbuf_appendf(&sb, "ADAPTER %s\n", m->adapter_path);
    }
    if (m->template_text) {
        append_quoted(&sb, "TEMPLATE", m->template_text);
    }
    if (m->system_text) {
        append_quoted(&sb, "SYSTEM", m->system_text);
    }
    cJSON *p = m->params_json ? cJSON_Parse(m->params_json) : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, p)
    {
        if (cJSON_IsArray(it)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, it)
            {
                append_param(&sb, it->string, e);
            }
        } else {
            append_param(&sb, it->string, it);
        }
    }
    cJSON_Delete(p);
    cJSON *msgs = m->messages_json ? cJSON_Parse(m->messages_json) : NULL;
    cJSON_ArrayForEach(it, msgs)
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "role");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (cJSON_IsString(r) && cJSON_IsString(c)) {
            strbuf_appendf(&sb, "MESSAGE %s \"\"\"%s\"\"\"\n", r->valuestring, c->valuestring);
        }
    }
    cJSON_Delete(msgs);
    for (size_t i = 0; i < m->n_licenses; i++) {
        append_quoted(&sb, "LICENSE", m->licenses[i]);
    }
    return strbuf_take(&sb);
}

// ---- list -------------------------------------------------------------------------------------

struct list_acc {
    struct store_entry *e;
    size_t n, cap;
};

void store_list_free(struct store_entry *e, size_t n)
{
    if (!e) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        llem_free(e[i].name);
        store_details_deinit(&e[i].details);
    }
    llem_free(e);
}

static bool listed(const struct list_acc *acc, const char *name)
{
    for (size_t i = 0; i < acc->n; i++) {
        if (strcasecmp(acc->e[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

// Adds the manifest at path (parts = host, ns, model, tag from the folder names).
static enum llem_err list_one(const struct store *s, const char *path, char parts[4][256], bool ro,
                              struct list_acc *acc)
{
    char spec[1100];
    snprintf(spec, sizeof(spec), "%s/%s/%s:%s", parts[0], parts[1], parts[2], parts[3]);
    struct store_name n;
    struct llem_errbuf eb;
    if (store_name_parse(spec, &n, &eb) != LLEM_OK) {
        log_warn("store: skipping %s: %s", path, eb.msg);
        return LLEM_OK;
    }
    char disp[512];
    store_name_display(&n, disp, sizeof(disp));
    if (listed(acc, disp)) {
        return LLEM_OK;
    }
    struct store_manifest m;
    struct store_entry e = {0};
    enum llem_err rc = store_manifest_load(path, &m, NULL, e.digest, &e.modified, &eb);
    if (rc == LLEM_ENOMEM) {
        return rc;
    }
    if (rc != LLEM_OK) {
        log_warn("store: skipping %s: %s", path, eb.msg);
        return LLEM_OK;
    }
    for (size_t i = 0; i < m.n_layers; i++) {
        e.size += m.layers[i].size;
    }
    e.read_only = ro;
    e.name = llem_strdup(disp);
    rc = e.name ? store_details_load(s, &m, &e.details) : LLEM_ENOMEM;
    store_manifest_deinit(&m);
    if (rc == LLEM_OK && acc->n == acc->cap) {
        size_t cap = acc->cap ? acc->cap * 2 : 16;
        struct store_entry *ne = llem_realloc(acc->e, cap * sizeof(*ne));
        if (!ne) {
            rc = LLEM_ENOMEM;
        } else {
            acc->e = ne;
            acc->cap = cap;
        }
    }
    if (rc != LLEM_OK) {
        llem_free(e.name);
        store_details_deinit(&e.details);
        return rc;
    }
    acc->e[acc->n++] = e;
    return LLEM_OK;
}

static enum llem_err list_walk(const struct store *s, char *dir, size_t cap, int depth,
                               char parts[4][256], bool ro, struct list_acc *acc)
{
    DIR *d = opendir(dir);
    if (!d) {
        return LLEM_OK;
    }
    enum llem_err rc = LLEM_OK;
    size_t len = strlen(dir);
    struct dirent *e;
    while (rc == LLEM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= 256) {
            continue; // also skips fs_atomic temp files
        }
        if (len + strlen(e->d_name) + 2 >= cap) {
            continue;
        }
        snprintf(dir + len, cap - len, "/%s", e->d_name);
        snprintf(parts[depth], 256, "%s", e->d_name);
        struct stat st;
        if (lstat(dir, &st) == 0) {
            if (depth < 3 && S_ISDIR(st.st_mode)) {
                rc = list_walk(s, dir, cap, depth + 1, parts, ro, acc);
            } else if (depth == 3 && S_ISREG(st.st_mode)) {
                rc = list_one(s, dir, parts, ro, acc);
            }
        }
        dir[len] = '\0';
    }
    closedir(d);
    return rc;
}

static int cmp_modified(const void *a, const void *b)
{
    const struct store_entry *x = a, *y = b;
    if (x->modified != y->modified) {
        return x->modified > y->modified ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}

enum llem_err store_list(struct store *s, struct store_entry **out, size_t *n,
                         struct llem_errbuf *eb)
{
    *out = NULL;
    *n = 0;
    struct list_acc acc = {0};
    char dir[STORE_PATH_MAX];
    char parts[4][256];
    enum llem_err rc = LLEM_OK;
    for (int pass = 0; pass < 2 && rc == LLEM_OK; pass++) {
        const char *root = pass == 0 ? s->root : s->ro_root;
        if (!root) {
            continue;
        }
        snprintf(dir, sizeof(dir), "%s/manifests", root);
        rc = list_walk(s, dir, sizeof(dir), 0, parts, pass == 1, &acc);
    }
    if (rc != LLEM_OK) {
        store_list_free(acc.e, acc.n);
        return llem_errf(eb, rc, "listing models: out of memory");
    }
    if (acc.n > 1) {
        qsort(acc.e, acc.n, sizeof(*acc.e), cmp_modified);
    }
    *out = acc.e;
    *n = acc.n;
    return LLEM_OK;
}

// ---- copy / delete --------------------------------------------------------------------------

enum llem_err store_copy(struct store *s, const char *src, const char *dst, struct llem_errbuf *eb)
{
    struct store_name ns, nd;
    enum llem_err rc = store_name_parse(src, &ns, eb);
    if (rc == LLEM_OK) {
        rc = store_name_parse(dst, &nd, eb);
    }
    if (rc != LLEM_OK) {
        return rc;
    }
    char *path = NULL;
    bool ro;
    rc = find_manifest(s, &ns, &path, &ro, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct store_manifest m;
    rc = store_manifest_load(path, &m, NULL, NULL, NULL, eb);
    llem_free(path);
    if (rc != LLEM_OK) {
        return rc;
    }
    // Blobs of a read-only store must exist in ours before our manifest may name them.
    for (size_t i = 0; ro && rc == LLEM_OK && i <= m.n_layers; i++) {
        const char *dg = i < m.n_layers ? m.layers[i].digest : m.config.digest;
        char *from = store_blob_path_in(s->ro_root, dg);
        char *to = store_blob_path_in(s->root, dg);
        struct stat st;
        if (!from || !to) {
            rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
        } else if (stat(to, &st) != 0) {
            char got[STORE_DIGEST_BYTES];
            uint64_t size;
            rc = store_blob_import_file(s, from, got, &size, NULL, NULL, eb);
            if (rc == LLEM_OK && strcmp(got, dg) != 0) {
                rc =
                    llem_errf(eb, LLEM_EFORMAT, "blob %s in %s has digest %s", dg, s->ro_root, got);
            }
        }
        llem_free(from);
        llem_free(to);
    }
    if (rc == LLEM_OK) {
        pthread_mutex_lock(&s->lock);
        rc = store_manifest_save(s, &nd, &m, eb);
        pthread_mutex_unlock(&s->lock);
    }
    store_manifest_deinit(&m);
    return rc;
}

// Removes now-empty folders from the manifest's folder up to (not including) manifests/.
static void remove_empty_parents(const char *root, char *path)
{
    char stop[STORE_PATH_MAX];
    snprintf(stop, sizeof(stop), "%s/manifests", root);
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(path, '/');
        if (!slash) {
            return;
        }
        *slash = '\0';
        if (strcmp(path, stop) == 0 || rmdir(path) != 0) {
            return;
        }
    }
}

enum llem_err store_delete(struct store *s, const char *name, struct llem_errbuf *eb)
{
    struct store_name n;
    enum llem_err rc = store_name_parse(name, &n, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    char *path = NULL;
    bool exists;
    rc = store_manifest_path(s->root, &n, &path, &exists, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    if (!exists) {
        llem_free(path);
        char disp[512];
        store_name_display(&n, disp, sizeof(disp));
        return llem_errf(eb, LLEM_ENOTFOUND, "model '%s' not found", disp);
    }
    pthread_mutex_lock(&s->lock);
    if (unlink(path) != 0) {
        rc = llem_errf(eb, LLEM_EIO, "%s: %s", path, strerror(errno));
    } else {
        remove_empty_parents(s->root, path);
        if (!s->no_prune) {
            struct llem_errbuf peb;
            if (store_prune_locked(s, NULL, &peb) != LLEM_OK) {
                log_warn("store: %s", peb.msg); // the delete itself succeeded
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    llem_free(path);
    return rc;
}
