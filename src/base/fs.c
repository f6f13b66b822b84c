// base/fs.c: read-only maps, positioned reads, mkdir -p and atomic writes over POSIX.
// Short reads/writes and EINTR are retried everywhere; every failure names the path and the
// errno text. Atomic writes use a temp file in the same folder so rename(2) stays atomic.
#include "base/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"

// ---- reads ------------------------------------------------------------------------------------

enum llem_err fs_open_read(const char *path, int *fd, uint64_t *size, struct llem_errbuf *eb)
{
    *fd = -1;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        return llem_errf(eb, LLEM_EIO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return llem_errf(eb, LLEM_EIO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return llem_errf(eb, LLEM_EIO, "%s: not a regular file", path);
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return LLEM_OK;
}

enum llem_err fs_pread_full(int fd, void *buf, size_t n, uint64_t off, struct llem_errbuf *eb)
{
    unsigned char *p = buf;
    while (n > 0) {
        if (off > (uint64_t)INT64_MAX) {
            return llem_errf(eb, LLEM_EIO, "read past the end of the file");
        }
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t got = pread(fd, p, chunk, (off_t)off);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return llem_errf(eb, LLEM_EIO, "read at offset %llu: %s", (unsigned long long)off,
                             strerror(errno));
        }
        if (got == 0) {
            return llem_errf(eb, LLEM_EIO, "unexpected end of file at offset %llu",
                             (unsigned long long)off);
        }
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return LLEM_OK;
}

enum llem_err fs_read_range(int fd, uint64_t off, size_t len, size_t align, void **out,
                            struct llem_errbuf *eb)
{
    *out = NULL;
    void *buf = llem_aligned_alloc(align, len);
    if (!buf) {
        return llem_errf(eb, LLEM_ENOMEM, "cannot allocate %zu bytes", len);
    }
    enum llem_err rc = fs_pread_full(fd, buf, len, off, eb);
    if (rc != LLEM_OK) {
        llem_aligned_free(buf);
        return rc;
    }
    *out = buf;
    return LLEM_OK;
}

enum llem_err fs_read_file(const char *path, size_t cap, char **buf, size_t *len,
                           struct llem_errbuf *eb)
{
    *buf = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    enum llem_err rc = fs_open_read(path, &fd, &size, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    if (size > cap || size >= SIZE_MAX) {
        close(fd);
        return llem_errf(eb, LLEM_ELIMIT, "%s: %llu bytes is over the limit of %zu", path,
                         (unsigned long long)size, cap);
    }
    char *b = llem_malloc((size_t)size + 1);
    if (!b) {
        close(fd);
        return llem_errf(eb, LLEM_ENOMEM, "%s: cannot allocate %llu bytes", path,
                         (unsigned long long)size);
    }
    rc = fs_pread_full(fd, b, (size_t)size, 0, eb);
    close(fd);
    if (rc != LLEM_OK) {
        llem_free(b);
        return llem_err_prefix(eb, path);
    }
    b[size] = '\0';
    *buf = b;
    *len = (size_t)size;
    return LLEM_OK;
}

enum llem_err fs_file_size(const char *path, uint64_t *size, struct llem_errbuf *eb)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return llem_errf(eb, LLEM_EIO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return llem_errf(eb, LLEM_EIO, "%s: not a regular file", path);
    }
    *size = (uint64_t)st.st_size;
    return LLEM_OK;
}

// ---- maps -------------------------------------------------------------------------------------

enum llem_err fs_map_open(struct fs_map *m, const char *path, struct llem_errbuf *eb)
{
    m->addr = NULL;
    m->size = 0;
    m->fd = -1;
    int fd;
    uint64_t size;
    enum llem_err rc = fs_open_read(path, &fd, &size, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    if (size > (uint64_t)SIZE_MAX / 2) {
        close(fd);
        return llem_errf(eb, LLEM_ELIMIT, "%s: too large to map", path);
    }
    if (size > 0) {
        void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return llem_errf(eb, e == ENOMEM ? LLEM_ENOMEM : LLEM_EIO, "%s: mmap: %s", path,
                             strerror(e));
        }
        m->addr = p;
    }
    m->size = (size_t)size;
    m->fd = fd;
    return LLEM_OK;
}

void fs_map_close(struct fs_map *m)
{
    if (!m) {
        return;
    }
    if (m->addr) {
        munmap((void *)(uintptr_t)m->addr, m->size);
    }
    if (m->fd >= 0) {
        close(m->fd);
    }
    m->addr = NULL;
    m->size = 0;
    m->fd = -1;
}

void fs_map_advise(const struct fs_map *m, uint64_t off, uint64_t len, enum fs_advice advice)
{
    if (!m || !m->addr || off >= m->size) {
        return;
    }
    if (len > m->size - off) {
        len = m->size - off;
    }
    // madvise needs a page-aligned start: round down and extend the length by the same amount.
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pg = page > 0 ? (uint64_t)page : 4096;
    uint64_t start = off & ~(pg - 1);
    len += off - start;
    int adv = MADV_NORMAL;
    switch (advice) {
    case FS_ADVICE_NORMAL: adv = MADV_NORMAL; break;
    case FS_ADVICE_SEQUENTIAL: adv = MADV_SEQUENTIAL; break;
    case FS_ADVICE_RANDOM: adv = MADV_RANDOM; break;
    case FS_ADVICE_WILLNEED: adv = MADV_WILLNEED; break;
    case FS_ADVICE_DONTNEED: adv = MADV_DONTNEED; break;
    case FS_ADVICE_NOHUGEPAGE: adv = MADV_NOHUGEPAGE; break;
    case FS_ADVICE_HUGEPAGE: adv = MADV_HUGEPAGE; break;
    case FS_ADVICE_POPULATE:
#ifdef MADV_POPULATE_READ
        adv = MADV_POPULATE_READ;
        break;
#else
        return;
#endif
    }
    (void)madvise((char *)(uintptr_t)m->addr + start, (size_t)len, adv);
}

// ---- folders ----------------------------------------------------------------------------------

bool fs_cache_dir(char *buf, size_t cap)
{
    const char *own = getenv("LLEM_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n = -1;
    if (own) {
        n = own[0] ? snprintf(buf, cap, "%s", own) : -1;
    } else if (xdg && xdg[0] == '/') { // the XDG spec: a relative value is to be ignored
        n = snprintf(buf, cap, "%s/llem", xdg);
    } else if (home && home[0]) {
        n = snprintf(buf, cap, "%s/.cache/llem", home);
    }
    if (n <= 0 || (size_t)n >= cap) {
        if (cap > 0) {
            buf[0] = '\0';
        }
        return false;
    }
    return true;
}

enum llem_err fs_mkdir_p(const char *path, unsigned mode, struct llem_errbuf *eb)
{
    if (!path || !*path) {
        return llem_errf(eb, LLEM_EINVAL, "mkdir: empty path");
    }
    char *p = llem_strdup(path);
    if (!p) {
        return llem_errf(eb, LLEM_ENOMEM, "mkdir %s: out of memory", path);
    }
    // Walk the path creating each prefix; '/' separators are temporarily cut to NUL.
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') {
            continue;
        }
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
            enum llem_err rc = llem_errf(eb, LLEM_EIO, "mkdir %s: %s", p, strerror(errno));
            llem_free(p);
            return rc;
        }
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
            enum llem_err rc = llem_errf(eb, LLEM_EIO, "mkdir %s: exists and is not a folder", p);
            llem_free(p);
            return rc;
        }
        p[i] = saved;
        while (p[i] == '/' && p[i + 1] == '/') { // "a//b": skip repeated separators
            i++;
        }
    }
    llem_free(p);
    return LLEM_OK;
}

// ---- atomic writes ----------------------------------------------------------------------------

static atomic_uint tmp_counter;

// Folder of `path` as a new string ("." for a bare name).
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        return llem_strdup(".");
    }
    if (slash == path) {
        return llem_strdup("/");
    }
    return llem_strndup(path, (size_t)(slash - path));
}

static void atomic_release(struct fs_atomic *a)
{
    if (a->fd >= 0) {
        close(a->fd);
    }
    a->fd = -1;
    llem_free(a->path);
    llem_free(a->tmp);
    a->path = NULL;
    a->tmp = NULL;
    a->written = 0;
}

enum llem_err fs_atomic_open(struct fs_atomic *a, const char *path, struct llem_errbuf *eb)
{
    a->fd = -1;
    a->path = NULL;
    a->tmp = NULL;
    a->written = 0;
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name) {
        return llem_errf(eb, LLEM_EINVAL, "%s: not a file name", path);
    }
    size_t dir_len = (size_t)(name - path);
    size_t cap = strlen(path) + 64;
    a->path = llem_strdup(path);
    a->tmp = llem_malloc(cap);
    if (!a->path || !a->tmp) {
        atomic_release(a);
        return llem_errf(eb, LLEM_ENOMEM, "%s: out of memory", path);
    }
    unsigned n = atomic_fetch_add(&tmp_counter, 1u);
    snprintf(a->tmp, cap, "%.*s.%s.tmp-%ld-%u", (int)dir_len, path, name, (long)getpid(), n);
    a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (a->fd < 0) {
        enum llem_err rc = llem_errf(eb, LLEM_EIO, "%s: %s", a->tmp, strerror(errno));
        atomic_release(a);
        return rc;
    }
    return LLEM_OK;
}

void fs_atomic_abort(struct fs_atomic *a)
{
    if (!a) {
        return;
    }
    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
    }
    if (a->tmp) {
        unlink(a->tmp);
    }
    atomic_release(a);
}

enum llem_err fs_atomic_write(struct fs_atomic *a, const void *data, size_t n,
                              struct llem_errbuf *eb)
{
    if (a->fd < 0) {
        return llem_errf(eb, LLEM_EINVAL, "atomic write: file is not open");
    }
    const unsigned char *p = data;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t w = write(a->fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            enum llem_err rc = llem_errf(eb, LLEM_EIO, "%s: write: %s", a->path, strerror(errno));
            fs_atomic_abort(a);
            return rc;
        }
        p += w;
        n -= (size_t)w;
        a->written += (uint64_t)w;
    }
    return LLEM_OK;
}

enum llem_err fs_atomic_commit(struct fs_atomic *a, struct llem_errbuf *eb)
{
    if (a->fd < 0) {
        return llem_errf(eb, LLEM_EINVAL, "atomic commit: file is not open");
    }
    char *dir = dir_of(a->path); // before the rename: failing later would cost the file
    if (!dir) {
        enum llem_err rc = llem_errf(eb, LLEM_ENOMEM, "%s: out of memory", a->path);
        fs_atomic_abort(a);
        return rc;
    }
    enum llem_err rc = LLEM_OK;
    if (fsync(a->fd) != 0) {
        rc = llem_errf(eb, LLEM_EIO, "%s: fsync: %s", a->path, strerror(errno));
    }
    int fd = a->fd;
    a->fd = -1;
    if (close(fd) != 0 && rc == LLEM_OK) {
        rc = llem_errf(eb, LLEM_EIO, "%s: close: %s", a->path, strerror(errno));
    }
    if (rc == LLEM_OK && rename(a->tmp, a->path) != 0) {
        rc = llem_errf(eb, LLEM_EIO, "%s: rename: %s", a->path, strerror(errno));
    }
    if (rc != LLEM_OK) {
        llem_free(dir);
        fs_atomic_abort(a);
        return rc;
    }
    // The rename is durable only once the folder entry is: sync the folder.
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = llem_errf(eb, LLEM_EIO, "%s: cannot sync its folder: %s", a->path, strerror(errno));
        unlink(a->path); // keep the contract: an error leaves nothing at the target
    }
    if (dfd >= 0) {
        close(dfd);
    }
    llem_free(dir);
    atomic_release(a);
    return rc;
}

enum llem_err fs_write_atomic(const char *path, const void *data, size_t size,
                              struct llem_errbuf *eb)
{
    struct fs_atomic a;
    enum llem_err rc = fs_atomic_open(&a, path, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    rc = fs_atomic_write(&a, data, size, eb);
    if (rc != LLEM_OK) {
        return rc; // already aborted
    }
    return fs_atomic_commit(&a, eb);
}
