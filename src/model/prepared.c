// model/prepared.c: the prepared-weights file (see model_int.h). Why it exists: a repacked
// weight costs a load twice over, in conversion and in fresh memory the kernel must zero (on
// a VM, memory handed back to the host is slow to touch again). Mapped from the page cache,
// the same bytes cost neither: a warm load maps them, a cold one reads them once.
//
// Layout (host byte order: the file is this machine's, regenerated when anything differs):
//   struct prep_header, n_entries x struct prep_entry, the GGUF's absolute path (path_len
//   bytes), zero padding to PREP_ALIGN; then each entry's bytes at its offset, a multiple of
//   PREP_ALIGN (the kernels load aligned groups; page-aligned ranges map and advise cleanly).
// A file is used only when its header matches the GGUF file's size, mtime, inode and device
// and every entry matches, in order, the tensor, type, shape, layout fingerprint and size the
// backend plans for it now; the fingerprint changes with any change to a layout.
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/sha256.h"
#include "model/model_int.h"

#define PREP_MAGIC   "LLEMPREP"
#define PREP_VERSION 1u
#define PREP_ALIGN   4096u
#define PREP_SUFFIX  ".prep"

struct prep_header {
    char magic[8];
    uint32_t version;
    uint32_t n_entries;
    uint64_t file_bytes; // the whole file
    uint64_t src_bytes, src_mtime_ns, src_ino, src_dev;
    uint32_t path_len; // the GGUF's path, after the entries (for pruning)
    uint32_t reserved;
};

struct prep_entry {
    char name[TENSOR_NAME_MAX];
    int32_t tensor; // index in m->tensors
    uint32_t type;
    int64_t ne0, ne1;
    uint64_t layout; // backend_weight_plan's fingerprint
    uint64_t offset, bytes;
};

struct prepared_file {
    struct fs_map map;
};

static uint64_t align_prep(uint64_t n)
{
    return (n + PREP_ALIGN - 1) / PREP_ALIGN * PREP_ALIGN;
}

// <dir>/<first 16 hex digits of sha256(absolute path)>.prep, and that absolute path.
static bool prep_paths(const char *dir, const char *path, char *file, size_t cap,
                       char abs[PATH_MAX])
{
    if (!realpath(path, abs)) {
        return false;
    }
    uint8_t d[SHA256_BYTES];
    char hex[SHA256_HEX_BYTES];
    if (sha256_oneshot(abs, strlen(abs), d) != LLEM_OK) {
        return false;
    }
    sha256_hex(d, hex);
    int n = snprintf(file, cap, "%s/%.16s%s", dir, hex, PREP_SUFFIX);
    return n > 0 && (size_t)n < cap;
}

static bool src_identity(const char *path, struct prep_header *h)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return false;
    }
    h->src_bytes = (uint64_t)st.st_size;
    h->src_mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    h->src_ino = (uint64_t)st.st_ino;
    h->src_dev = (uint64_t)st.st_dev;
    return true;
}

// The entries the backend plans for m now (n: how many; NULL when none or out of memory).
static struct prep_entry *plan_entries(const struct model *m, uint32_t *n)
{
    *n = 0;
    struct prep_entry *e = llem_calloc((size_t)m->n_tensors, sizeof *e);
    if (!e) {
        return NULL;
    }
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const struct tensor *t = &m->tensors[i];
        uint64_t layout;
        size_t bytes = model_gathered_only(m, t) ? 0 : backend_weight_plan(m->be, t, &layout);
        if (bytes == 0) {
            continue;
        }
        struct prep_entry *x = &e[(*n)++];
        snprintf(x->name, sizeof x->name, "%s", t->name);
        x->tensor = i;
        x->type = t->type;
        x->ne0 = t->ne[0];
        x->ne1 = t->ne[1];
        x->layout = layout;
        x->bytes = bytes;
    }
    if (*n == 0) {
        llem_free(e);
        return NULL;
    }
    return e;
}

static uint64_t header_bytes(uint32_t n_entries, uint32_t path_len)
{
    return align_prep(sizeof(struct prep_header) + (uint64_t)n_entries * sizeof(struct prep_entry) +
                      path_len);
}

static void release_adopted(struct model *m, const struct prep_entry *e, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        backend_weight_release(m->be, &m->tensors[e[k].tensor]);
    }
}

bool prepared_open(struct model *m, const char *dir, const char *path)
{
    char file[PATH_MAX + 64], abs[PATH_MAX];
    struct prep_header want = {0};
    uint32_t n = 0;
    struct prep_entry *plan = NULL;
    struct prepared_file *pf = NULL;
    bool ok = false;
    if (!prep_paths(dir, path, file, sizeof file, abs) || !src_identity(path, &want) ||
        !(plan = plan_entries(m, &n)) || !(pf = llem_calloc(1, sizeof *pf))) {
        goto done;
    }
    pf->map.fd = -1;
    struct llem_errbuf eb = {0};
    if (fs_map_open(&pf->map, file, &eb) != LLEM_OK) {
        goto done; // none yet: the normal first load
    }
    const uint8_t *base = pf->map.addr;
    const size_t size = pf->map.size;
    struct prep_header h;
    if (size < sizeof h) {
        goto stale;
    }
    memcpy(&h, base, sizeof h);
    if (memcmp(h.magic, PREP_MAGIC, 8) != 0 || h.version != PREP_VERSION || h.n_entries != n ||
        h.file_bytes != size || h.src_bytes != want.src_bytes ||
        h.src_mtime_ns != want.src_mtime_ns || h.src_ino != want.src_ino ||
        h.src_dev != want.src_dev || h.path_len > PATH_MAX || header_bytes(n, h.path_len) > size) {
        goto stale;
    }
    for (uint32_t k = 0; k < n; k++) {
        struct prep_entry e;
        memcpy(&e, base + sizeof h + (size_t)k * sizeof e, sizeof e);
        const struct prep_entry *p = &plan[k];
        if (strncmp(e.name, p->name, sizeof e.name) != 0 || e.tensor != p->tensor ||
            e.type != p->type || e.ne0 != p->ne0 || e.ne1 != p->ne1 || e.layout != p->layout ||
            e.bytes != p->bytes || e.offset % PREP_ALIGN != 0 ||
            e.offset < header_bytes(n, h.path_len) || e.offset > size ||
            e.bytes > size - e.offset) {
            goto stale;
        }
        plan[k].offset = e.offset;
    }
    // Map everything before adopting anything: a cold read runs in large sequential requests
    // and fills 2 MiB folios, which decode then streams with one TLB entry per 2 MiB.
    fs_map_advise(&pf->map, 0, size, FS_ADVICE_HUGEPAGE);
    fs_map_advise(&pf->map, 0, size, FS_ADVICE_POPULATE);
    uint64_t adopted = 0;
    for (uint32_t k = 0; k < n; k++) {
        struct tensor *t = &m->tensors[plan[k].tensor];
        if (backend_weight_adopt(m->be, t, base + plan[k].offset, plan[k].bytes, &eb) != LLEM_OK) {
            release_adopted(m, plan, k);
            goto stale;
        }
        adopted += plan[k].bytes;
    }
    m->repacked_bytes += adopted;
    m->prepared = pf;
    pf = NULL;
    ok = true;
    log_debug("%s: prepared weights mapped from %s (%u tensors)", path, file, n);
    goto done;
stale:
    log_info("%s: ignoring %s (stale or damaged); it will be rewritten", path, file);
done:
    if (pf) {
        fs_map_close(&pf->map);
        llem_free(pf);
    }
    llem_free(plan);
    return ok;
}

// A writer's temp file (fs_atomic: ".<name>.prep.tmp-<pid>-<n>") whose process is gone: one
// killed while writing. True when the name says so and no process has that pid.
static bool orphan_temp(const char *name)
{
    const char *t = strstr(name, PREP_SUFFIX ".tmp-");
    if (name[0] != '.' || !t) {
        return false;
    }
    char *end;
    long pid = strtol(t + strlen(PREP_SUFFIX ".tmp-"), &end, 10);
    return pid > 0 && *end == '-' && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

// Removes <dir>/*.prep files whose GGUF is gone: their names hash paths, so a file whose GGUF
// was deleted would otherwise stay forever (a changed GGUF's file is replaced at its next
// load); and temp files of writers that died.
static void prune(const char *dir, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *de;
    char file[PATH_MAX + 64], src[PATH_MAX + 1];
    while ((de = readdir(d))) {
        if (orphan_temp(de->d_name)) {
            int w = snprintf(file, sizeof file, "%s/%s", dir, de->d_name);
            if (w > 0 && (size_t)w < sizeof file) {
                unlink(file);
            }
            continue;
        }
        size_t len = strlen(de->d_name);
        if (len <= strlen(PREP_SUFFIX) || de->d_name[0] == '.' ||
            strcmp(de->d_name + len - strlen(PREP_SUFFIX), PREP_SUFFIX) != 0) {
            continue;
        }
        int w = snprintf(file, sizeof file, "%s/%s", dir, de->d_name);
        if (w <= 0 || (size_t)w >= sizeof file || strcmp(file, keep) == 0) {
            continue;
        }
        int fd;
        uint64_t size;
        struct llem_errbuf eb = {0};
        if (fs_open_read(file, &fd, &size, &eb) != LLEM_OK) {
            continue;
        }
        struct prep_header h;
        bool gone = false;
        if (fs_pread_full(fd, &h, sizeof h, 0, &eb) == LLEM_OK &&
            memcmp(h.magic, PREP_MAGIC, 8) == 0 && h.path_len > 0 && h.path_len <= PATH_MAX &&
            fs_pread_full(fd, src, h.path_len,
                          sizeof h + (uint64_t)h.n_entries * sizeof(struct prep_entry),
                          &eb) == LLEM_OK) {
            src[h.path_len] = '\0';
            gone = access(src, F_OK) != 0;
        }
        close(fd);
        if (gone) {
            unlink(file);
        }
    }
    closedir(d);
}

void model_prepared_prune(const char *dir)
{
    if (dir && *dir) {
        prune(dir, "");
    }
}

static void store(struct model *m, const char *dir, const char *path)
{
    char file[PATH_MAX + 64], abs[PATH_MAX];
    struct prep_header h = {0};
    uint32_t n = 0;
    struct prep_entry *e = NULL;
    struct fs_atomic a = {.fd = -1};
    struct llem_errbuf eb = {0};
    static const uint8_t zeros[PREP_ALIGN];
    if (!prep_paths(dir, path, file, sizeof file, abs) || !src_identity(path, &h) ||
        !(e = plan_entries(m, &n))) {
        goto done;
    }
    memcpy(h.magic, PREP_MAGIC, 8);
    h.version = PREP_VERSION;
    h.n_entries = n;
    h.path_len = (uint32_t)strlen(abs);
    uint64_t off = header_bytes(n, h.path_len);
    for (uint32_t k = 0; k < n; k++) {
        size_t bytes;
        if (!backend_weight_prepared(m->be, &m->tensors[e[k].tensor], &bytes) ||
            bytes != e[k].bytes) {
            goto done; // not prepared this load (out of memory?): nothing to keep
        }
        e[k].offset = off;
        off = align_prep(off + bytes);
    }
    h.file_bytes = off;
    const uint64_t head = sizeof h + (uint64_t)n * sizeof *e + h.path_len;
    if (fs_mkdir_p(dir, 0755, &eb) != LLEM_OK || fs_atomic_open(&a, file, &eb) != LLEM_OK ||
        fs_atomic_write(&a, &h, sizeof h, &eb) != LLEM_OK ||
        fs_atomic_write(&a, e, (size_t)n * sizeof *e, &eb) != LLEM_OK ||
        fs_atomic_write(&a, abs, h.path_len, &eb) != LLEM_OK ||
        fs_atomic_write(&a, zeros, (size_t)(header_bytes(n, h.path_len) - head), &eb) != LLEM_OK) {
        goto fail;
    }
    for (uint32_t k = 0; k < n; k++) {
        size_t bytes;
        const void *data = backend_weight_prepared(m->be, &m->tensors[e[k].tensor], &bytes);
        if (fs_atomic_write(&a, data, bytes, &eb) != LLEM_OK ||
            fs_atomic_write(&a, zeros, (size_t)(align_prep(bytes) - bytes), &eb) != LLEM_OK) {
            goto fail;
        }
    }
    if (fs_atomic_commit(&a, &eb) != LLEM_OK) {
        goto fail;
    }
    log_debug("%s: prepared weights kept in %s", path, file);
    prune(dir, file);
    goto done;
fail:
    fs_atomic_abort(&a);
    log_warn("%s: prepared weights not kept: %s", path, eb.msg);
done:
    llem_free(e);
}

// The store runs beside the first prompt: writing and syncing a few hundred MiB takes
// seconds, and only the next load needs the file. The copies it reads are immutable after the
// load; model_free waits for it before releasing them.
struct prepared_writer {
    pthread_t thread;
    struct model *m;
    char *dir, *path;
};

static void *writer_main(void *arg)
{
    struct prepared_writer *w = arg;
    store(w->m, w->dir, w->path);
    return NULL;
}

void prepared_store(struct model *m, const char *dir, const char *path)
{
    struct prepared_writer *w = llem_calloc(1, sizeof *w);
    if (w) {
        w->m = m;
        w->dir = llem_strdup(dir);
        w->path = llem_strdup(path);
        if (w->dir && w->path && pthread_create(&w->thread, NULL, writer_main, w) == 0) {
            m->prepared_writer = w;
            return;
        }
        llem_free(w->dir);
        llem_free(w->path);
        llem_free(w);
    }
    store(m, dir, path); // no thread: write it now
}

void prepared_wait(struct model *m)
{
    struct prepared_writer *w = m->prepared_writer;
    if (w) {
        pthread_join(w->thread, NULL);
        llem_free(w->dir);
        llem_free(w->path);
        llem_free(w);
        m->prepared_writer = NULL;
    }
}

void prepared_close(struct model *m)
{
    prepared_wait(m);
    if (m->prepared) {
        fs_map_close(&m->prepared->map);
        llem_free(m->prepared);
        m->prepared = NULL;
    }
}
