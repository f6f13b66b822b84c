// base/fs.h: files the way llem needs them: read-only memory maps (weights), positioned reads
// into aligned memory (the no-mmap fallback), whole small files (manifests, configs), mkdir -p,
// and atomic writes (temp file in the target's folder + fsync + rename + fsync folder), so a
// crash or an error never leaves a half-written file at the target path.
// Every function returns enum llem_err and names the path in eb; all are thread-safe.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

// ---- read-only maps -------------------------------------------------------------------------

struct fs_map {
    const void *addr; // PROT_READ, MAP_PRIVATE; NULL when size == 0
    size_t size;      // file size at open
    int fd;           // kept open for fs_map_fd users (pread, fadvise); -1 when closed
};

// Maps the whole regular file `path` read-only. A zero-length file gives addr NULL, size 0.
// LLEM_EIO when it cannot be opened, is not a regular file or cannot be mapped; LLEM_ELIMIT
// when it does not fit the address space. On error *m is left closed (fs_map_close is safe).
// Note: a file truncated by someone else while mapped raises SIGBUS on access; llem's model
// files are immutable blobs, so this is accepted (as llama.cpp and ollama do).
enum llem_err fs_map_open(struct fs_map *m, const char *path, struct llem_errbuf *eb);
void fs_map_close(struct fs_map *m); // NULL or closed: no-op; leaves m closed

enum fs_advice {
    FS_ADVICE_NORMAL,
    FS_ADVICE_SEQUENTIAL,
    FS_ADVICE_RANDOM,
    FS_ADVICE_WILLNEED,
    FS_ADVICE_DONTNEED,
    FS_ADVICE_POPULATE,   // map the pages now, reading those not cached (one call, not a fault
                          // per page); a no-op on kernels before 5.14
    FS_ADVICE_NOHUGEPAGE, // map 4 KiB pages only: for data read a row here and there
    FS_ADVICE_HUGEPAGE    // 2 MiB pages where the kernel can: page-cache reads then fill whole
                          // 2 MiB folios, which map with one TLB entry each
};
// madvise hint for [off, off + len) of the map (clamped to it); advisory, never fails.
void fs_map_advise(const struct fs_map *m, uint64_t off, uint64_t len, enum fs_advice advice);

// ---- reads ------------------------------------------------------------------------------------

// Opens `path` read-only (O_CLOEXEC) and returns its size; EIO if missing or not a regular file.
enum llem_err fs_open_read(const char *path, int *fd, uint64_t *size, struct llem_errbuf *eb);

// Reads exactly n bytes at `off` (retrying short reads and EINTR). EIO on error or end of file.
enum llem_err fs_pread_full(int fd, void *buf, size_t n, uint64_t off, struct llem_errbuf *eb);

// Reads [off, off + len) of an open file into a new allocation aligned to `align` (a power of
// two >= sizeof(void *)); free it with llem_aligned_free. ENOMEM, EIO (past end of file).
enum llem_err fs_read_range(int fd, uint64_t off, size_t len, size_t align, void **out,
                            struct llem_errbuf *eb);

// Reads a whole file of at most `cap` bytes into a new NUL-terminated buffer (*len excludes
// the NUL; free with llem_free). ELIMIT when larger than cap, EIO, ENOMEM.
enum llem_err fs_read_file(const char *path, size_t cap, char **buf, size_t *len,
                           struct llem_errbuf *eb);

// Size of the file at `path` (following symlinks). EIO if it does not exist / is not regular.
enum llem_err fs_file_size(const char *path, uint64_t *size, struct llem_errbuf *eb);

// Creates `path` and every missing parent with `mode` (like mkdir -p). OK if it exists as a
// folder; EIO if it (or a parent) exists as something else or cannot be created.
enum llem_err fs_mkdir_p(const char *path, unsigned mode, struct llem_errbuf *eb);

// The folder for llem's regenerable data (prepared weights): $LLEM_CACHE_DIR, else
// $XDG_CACHE_HOME/llem, else $HOME/.cache/llem, written to buf. False (buf "") when
// LLEM_CACHE_DIR is set but empty (caching off), none of them is set, or it does not fit cap.
bool fs_cache_dir(char *buf, size_t cap);

// ---- atomic writes ----------------------------------------------------------------------------

// A file being written: bytes go to ".<name>.tmp-<pid>-<n>" beside the target and appear at
// the target only at fs_atomic_commit. Exactly one of commit/abort must follow a successful
// open (both release everything; abort after commit is a no-op, as is abort on a zeroed one).
struct fs_atomic {
    int fd;     // -1 when not open
    char *path; // target (owned)
    char *tmp;  // temp file path (owned)
    uint64_t written;
};

enum llem_err fs_atomic_open(struct fs_atomic *a, const char *path, struct llem_errbuf *eb);
// Appends n bytes. On error the temp file is removed (the write is aborted).
enum llem_err fs_atomic_write(struct fs_atomic *a, const void *data, size_t n,
                              struct llem_errbuf *eb);
// fsync, rename over the target, fsync the folder. On error nothing is at the target path
// (the temp file, and the target if the folder sync failed after rename, are removed).
enum llem_err fs_atomic_commit(struct fs_atomic *a, struct llem_errbuf *eb);
void fs_atomic_abort(struct fs_atomic *a); // removes the temp file

// The whole file in one call (open + write + commit).
enum llem_err fs_write_atomic(const char *path, const void *data, size_t size,
                              struct llem_errbuf *eb);
