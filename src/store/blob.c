// store/blob.c: content-addressed blobs (blobs/sha256-<hex>). Every write goes to a temp file
// beside the target (base/fs.h fs_atomic_*), hashed while written; only a matching digest is
// fsynced and renamed into place, so no reader ever sees a partial or wrong blob under its name.
// Prune removes blobs no manifest references, keeping digests still being written (pending).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/sha256.h"
#include "store/store_int.h"

char *store_blob_path_in(const char *root, const char *digest)
{
    char file[STORE_DIGEST_BYTES];
    store_digest_to_file(digest, file);
    size_t n = strlen(root) + strlen(file) + 8;
    char *p = llem_malloc(n);
    if (p) {
        snprintf(p, n, "%s/blobs/%s", root, file);
    }
    return p;
}

enum llem_err store_blob_path(const struct store *s, const char *digest, char **path,
                              struct llem_errbuf *eb)
{
    *path = NULL;
    char d[STORE_DIGEST_BYTES];
    enum llem_err rc = store_digest_normalize(digest, d, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    char *p = store_blob_path_in(s->root, d);
    if (!p) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    struct stat st;
    if (s->ro_root && stat(p, &st) != 0) {
        char *q = store_blob_path_in(s->ro_root, d);
        if (q && stat(q, &st) == 0) {
            llem_free(p);
            p = q;
        } else {
            llem_free(q);
        }
    }
    *path = p;
    return LLEM_OK;
}

bool store_blob_has(struct store *s, const char *digest)
{
    char *p = NULL;
    if (store_blob_path(s, digest, &p, NULL) != LLEM_OK) {
        return false;
    }
    struct stat st;
    bool ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    llem_free(p);
    return ok;
}

// ---- pending set ------------------------------------------------------------------------------

enum llem_err store_pending_add(struct store *s, const char *digest)
{
    pthread_mutex_lock(&s->lock);
    enum llem_err rc = LLEM_OK;
    if (s->n_pending == s->cap_pending) {
        size_t cap = s->cap_pending ? s->cap_pending * 2 : 8;
        void *p = llem_realloc(s->pending, cap * sizeof(*s->pending));
        if (!p) {
            rc = LLEM_ENOMEM;
        } else {
            s->pending = p;
            s->cap_pending = cap;
        }
    }
    if (rc == LLEM_OK) {
        memcpy(s->pending[s->n_pending++], digest, STORE_DIGEST_BYTES);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void store_pending_remove(struct store *s, const char *digest)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_pending; i++) {
        if (strcmp(s->pending[i], digest) == 0) {
            memmove(s->pending[i], s->pending[s->n_pending - 1], STORE_DIGEST_BYTES);
            s->n_pending--;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

// ---- writer -----------------------------------------------------------------------------------

struct store_blob_writer {
    struct store *s;
    char digest[STORE_DIGEST_BYTES]; // expected; "" when unknown (import: computed)
    struct fs_atomic at;
    struct sha256 sha;
    bool pending;
};

static enum llem_err writer_open(struct store *s, const char *digest, const char *path,
                                 struct store_blob_writer **out, struct llem_errbuf *eb)
{
    *out = NULL;
    struct store_blob_writer *w = llem_calloc(1, sizeof(*w));
    if (!w) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    w->s = s;
    w->at.fd = -1;
    if (digest) {
        memcpy(w->digest, digest, STORE_DIGEST_BYTES);
    }
    enum llem_err rc = sha256_init(&w->sha);
    if (rc != LLEM_OK) {
        llem_free(w);
        return llem_errf(eb, rc, "sha256 init failed");
    }
    if (digest) {
        if (store_pending_add(s, digest) != LLEM_OK) {
            sha256_deinit(&w->sha);
            llem_free(w);
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        w->pending = true;
    }
    rc = fs_atomic_open(&w->at, path, eb);
    if (rc != LLEM_OK) {
        store_blob_writer_abort(w);
        return rc;
    }
    *out = w;
    return LLEM_OK;
}

enum llem_err store_blob_writer_new(struct store *s, const char *digest,
                                    struct store_blob_writer **out, struct llem_errbuf *eb)
{
    *out = NULL;
    char d[STORE_DIGEST_BYTES];
    enum llem_err rc = store_digest_normalize(digest, d, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    char *path = store_blob_path_in(s->root, d);
    if (!path) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    rc = writer_open(s, d, path, out, eb);
    llem_free(path);
    return rc;
}

enum llem_err store_blob_writer_write(struct store_blob_writer *w, const void *data, size_t n,
                                      struct llem_errbuf *eb)
{
    if (n == 0) {
        return LLEM_OK;
    }
    if (w->at.fd < 0) {
        return llem_errf(eb, LLEM_EIO, "blob write after an earlier error");
    }
    if (sha256_update(&w->sha, data, n) != LLEM_OK) {
        fs_atomic_abort(&w->at);
        return llem_errf(eb, LLEM_EINTERNAL, "sha256 update failed");
    }
    return fs_atomic_write(&w->at, data, n, eb); // aborts (removes the temp) on error
}

static void writer_free(struct store_blob_writer *w)
{
    if (w->pending) {
        store_pending_remove(w->s, w->digest);
    }
    sha256_deinit(&w->sha);
    llem_free(w);
}

void store_blob_writer_abort(struct store_blob_writer *w)
{
    if (!w) {
        return;
    }
    fs_atomic_abort(&w->at);
    writer_free(w);
}

// Finishes the hash; with an expected digest, compares; commits or aborts.
static enum llem_err writer_finish(struct store_blob_writer *w, char got[STORE_DIGEST_BYTES],
                                   struct llem_errbuf *eb)
{
    uint8_t d[SHA256_BYTES];
    char hex[SHA256_HEX_BYTES];
    if (w->at.fd < 0) {
        return llem_errf(eb, LLEM_EIO, "blob write after an earlier error");
    }
    if (sha256_final(&w->sha, d) != LLEM_OK) {
        fs_atomic_abort(&w->at);
        return llem_errf(eb, LLEM_EINTERNAL, "sha256 failed");
    }
    sha256_hex(d, hex);
    snprintf(got, STORE_DIGEST_BYTES, "sha256:%s", hex);
    if (w->digest[0] && strcmp(got, w->digest) != 0) {
        fs_atomic_abort(&w->at);
        return llem_errf(eb, LLEM_EFORMAT, "digest mismatch: expected %s, got %s", w->digest, got);
    }
    return fs_atomic_commit(&w->at, eb);
}

enum llem_err store_blob_writer_commit(struct store_blob_writer *w, struct llem_errbuf *eb)
{
    char got[STORE_DIGEST_BYTES];
    enum llem_err rc = writer_finish(w, got, eb);
    writer_free(w);
    return rc;
}

enum llem_err store_blob_write(struct store *s, const char *digest, store_read_fn rd, void *ctx,
                               struct llem_errbuf *eb)
{
    char d[STORE_DIGEST_BYTES];
    enum llem_err rc = store_digest_normalize(digest, d, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    char *p = store_blob_path_in(s->root, d);
    struct stat st;
    bool have = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    llem_free(p);
    if (have) {
        return LLEM_OK;
    }
    struct store_blob_writer *w;
    rc = store_blob_writer_new(s, d, &w, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = llem_malloc(CHUNK);
    if (!buf) {
        store_blob_writer_abort(w);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    for (;;) {
        long long n = rd(ctx, buf, CHUNK);
        if (n < 0 || n > CHUNK) {
            rc = llem_errf(eb, LLEM_EIO, "blob %s: read error from the source", d);
            break;
        }
        if (n == 0) {
            break;
        }
        rc = store_blob_writer_write(w, buf, (size_t)n, eb);
        if (rc != LLEM_OK) {
            break;
        }
    }
    llem_free(buf);
    if (rc != LLEM_OK) {
        store_blob_writer_abort(w);
        return rc;
    }
    return store_blob_writer_commit(w, eb);
}

// ---- files ----------------------------------------------------------------------------------

enum llem_err store_hash_file(const char *path, char digest[STORE_DIGEST_BYTES], uint64_t *size,
                              struct llem_errbuf *eb)
{
    int fd;
    uint64_t sz;
    enum llem_err rc = fs_open_read(path, &fd, &sz, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    struct sha256 sha;
    rc = sha256_init(&sha);
    enum { CHUNK = 1 << 20 };
    char *buf = rc == LLEM_OK ? llem_malloc(CHUNK) : NULL;
    if (!buf) {
        close(fd);
        sha256_deinit(&sha);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = llem_errf(eb, LLEM_EIO, "%s: %s", path, strerror(errno));
            break;
        }
        if (n == 0) {
            break;
        }
        sha256_update(&sha, buf, (size_t)n);
        total += (uint64_t)n;
    }
    llem_free(buf);
    close(fd);
    uint8_t d[SHA256_BYTES];
    if (rc == LLEM_OK && sha256_final(&sha, d) != LLEM_OK) {
        rc = llem_errf(eb, LLEM_EINTERNAL, "sha256 failed");
    }
    sha256_deinit(&sha);
    if (rc == LLEM_OK) {
        char hex[SHA256_HEX_BYTES];
        sha256_hex(d, hex);
        snprintf(digest, STORE_DIGEST_BYTES, "sha256:%s", hex);
        if (size) {
            *size = total;
        }
    }
    return rc;
}

enum llem_err store_blob_import_file(struct store *s, const char *path,
                                     char digest[STORE_DIGEST_BYTES], uint64_t *size,
                                     store_progress_fn progress, void *pctx, struct llem_errbuf *eb)
{
    // Hash first: an existing blob needs no copy (re-creating from the same GGUF is cheap).
    uint64_t sz = 0;
    enum llem_err rc = store_hash_file(path, digest, &sz, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    if (size) {
        *size = sz;
    }
    char *dst = store_blob_path_in(s->root, digest);
    if (!dst) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    struct stat st;
    if (stat(dst, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == sz) {
        llem_free(dst);
        return LLEM_OK;
    }
    // Copy, hashing again while writing: the source could change between the two passes, and
    // the blob's name must match its bytes.
    struct store_blob_writer *w;
    rc = writer_open(s, digest, dst, &w, eb);
    llem_free(dst);
    if (rc != LLEM_OK) {
        return rc;
    }
    int fd;
    uint64_t fsz;
    rc = fs_open_read(path, &fd, &fsz, eb);
    if (rc != LLEM_OK) {
        store_blob_writer_abort(w);
        return rc;
    }
    enum { CHUNK = 4 << 20 };
    char *buf = llem_malloc(CHUNK);
    uint64_t done = 0;
    if (!buf) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    while (rc == LLEM_OK) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = llem_errf(eb, LLEM_EIO, "%s: %s", path, strerror(errno));
            break;
        }
        if (n == 0) {
            break;
        }
        rc = store_blob_writer_write(w, buf, (size_t)n, eb);
        done += (uint64_t)n;
        if (rc == LLEM_OK && progress) {
            struct store_progress p = {"copying model", digest, sz, done};
            if (!progress(pctx, &p)) {
                rc = llem_errf(eb, LLEM_ECANCELED, "canceled");
            }
        }
    }
    llem_free(buf);
    close(fd);
    if (rc != LLEM_OK) {
        store_blob_writer_abort(w);
        return rc;
    }
    return store_blob_writer_commit(w, eb);
}

enum llem_err store_blob_put_bytes(struct store *s, const void *data, size_t n,
                                   char digest[STORE_DIGEST_BYTES], struct llem_errbuf *eb)
{
    uint8_t d[SHA256_BYTES];
    char hex[SHA256_HEX_BYTES];
    if (sha256_oneshot(data, n, d) != LLEM_OK) {
        return llem_errf(eb, LLEM_EINTERNAL, "sha256 failed");
    }
    sha256_hex(d, hex);
    snprintf(digest, STORE_DIGEST_BYTES, "sha256:%s", hex);
    char *p = store_blob_path_in(s->root, digest);
    if (!p) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    struct stat st;
    enum llem_err rc = LLEM_OK;
    if (!(stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == n)) {
        rc = store_pending_add(s, digest);
        if (rc == LLEM_OK) {
            rc = fs_write_atomic(p, data, n, eb);
            store_pending_remove(s, digest);
        } else {
            rc = llem_errf(eb, rc, "out of memory");
        }
    }
    llem_free(p);
    return rc;
}

enum llem_err store_blob_read_text(const struct store *s, const char *digest, size_t cap,
                                   char **out, struct llem_errbuf *eb)
{
    *out = NULL;
    char *p = NULL;
    enum llem_err rc = store_blob_path(s, digest, &p, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    size_t len;
    rc = fs_read_file(p, cap, out, &len, eb);
    llem_free(p);
    return rc;
}

// ---- prune ----------------------------------------------------------------------------------

struct digest_set {
    char (*d)[STORE_DIGEST_BYTES];
    size_t n, cap;
};

static int cmp_digest(const void *a, const void *b)
{
    return strcmp(a, b);
}

static enum llem_err set_add(struct digest_set *set, const char *d)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        void *p = llem_realloc(set->d, cap * sizeof(*set->d));
        if (!p) {
            return LLEM_ENOMEM;
        }
        set->d = p;
        set->cap = cap;
    }
    memcpy(set->d[set->n++], d, STORE_DIGEST_BYTES);
    return LLEM_OK;
}

// Collects every digest referenced by the manifests under dir (recursively, depth <= 4).
// A manifest that cannot be parsed makes prune stop: deleting blobs on a partial view of the
// store could lose data.
static enum llem_err collect_refs(const char *dir, int depth, struct digest_set *set,
                                  struct llem_errbuf *eb)
{
    DIR *d = opendir(dir);
    if (!d) {
        return errno == ENOENT ? LLEM_OK : llem_errf(eb, LLEM_EIO, "%s: %s", dir, strerror(errno));
    }
    enum llem_err rc = LLEM_OK;
    struct dirent *e;
    char path[STORE_PATH_MAX];
    while (rc == LLEM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            continue;
        }
        struct stat st;
        if (lstat(path, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode) && depth < 3) {
            rc = collect_refs(path, depth + 1, set, eb);
        } else if (S_ISREG(st.st_mode) && depth == 3) {
            struct store_manifest m;
            rc = store_manifest_load(path, &m, NULL, NULL, NULL, eb);
            if (rc == LLEM_ENOMEM) {
                break;
            }
            if (rc != LLEM_OK) {
                rc = llem_errf(eb, LLEM_EFORMAT, "prune skipped: cannot read manifest %s", path);
                break;
            }
            rc = set_add(set, m.config.digest);
            for (size_t i = 0; rc == LLEM_OK && i < m.n_layers; i++) {
                rc = set_add(set, m.layers[i].digest);
            }
            store_manifest_deinit(&m);
        }
    }
    closedir(d);
    return rc;
}

// Temp files of fs_atomic are ".<name>.tmp-<pid>-<n>": stale when <pid> is gone.
static bool stale_temp(const char *name)
{
    const char *t = strstr(name, ".tmp-");
    if (name[0] != '.' || !t) {
        return false;
    }
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (pid <= 0 || *end != '-') {
        return false;
    }
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

enum llem_err store_prune_locked(struct store *s, size_t *removed, struct llem_errbuf *eb)
{
    size_t count = 0;
    struct digest_set set = {0};
    char path[STORE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/manifests", s->root);
    enum llem_err rc = collect_refs(path, 0, &set, eb);
    for (size_t i = 0; rc == LLEM_OK && i < s->n_pending; i++) {
        rc = set_add(&set, s->pending[i]);
    }
    if (rc == LLEM_ENOMEM) {
        llem_errf(eb, rc, "out of memory");
    }
    if (rc != LLEM_OK) {
        llem_free(set.d);
        return rc;
    }
    if (set.n > 1) {
        qsort(set.d, set.n, sizeof(*set.d), cmp_digest);
    }
    snprintf(path, sizeof(path), "%s/blobs", s->root);
    DIR *d = opendir(path);
    if (!d) {
        llem_free(set.d);
        return LLEM_OK;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char file[STORE_PATH_MAX];
        int n = snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(file)) {
            continue;
        }
        if (stale_temp(e->d_name)) {
            unlink(file);
            continue;
        }
        if (strncmp(e->d_name, "sha256-", 7) != 0 || strlen(e->d_name) < 71) {
            continue;
        }
        char dg[STORE_DIGEST_BYTES];
        memcpy(dg, e->d_name, 71);
        dg[71] = '\0';
        dg[6] = ':';
        if (!store_digest_valid(dg)) {
            continue;
        }
        if (set.n > 0 && bsearch(dg, set.d, set.n, sizeof(*set.d), cmp_digest)) {
            continue;
        }
        // Unreferenced: the blob itself or a "-partial" download of it.
        if (unlink(file) == 0) {
            count++;
            log_debug("store: pruned %s", e->d_name);
        }
    }
    closedir(d);
    llem_free(set.d);
    if (removed) {
        *removed = count;
    }
    return LLEM_OK;
}

enum llem_err store_prune(struct store *s, size_t *removed, struct llem_errbuf *eb)
{
    pthread_mutex_lock(&s->lock);
    enum llem_err rc = store_prune_locked(s, removed, eb);
    pthread_mutex_unlock(&s->lock);
    return rc;
}
