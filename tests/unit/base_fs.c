// tests/unit/base_fs.c: base/fs: maps, ranged reads, whole-file reads with a cap, mkdir -p,
// and atomic writes: the target appears only at commit, abort and every error leave neither
// the target nor a temp file, and allocation failures inside are clean.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "check.h"

static char root[256];

// Number of entries in `dir` (other than . and ..) whose name starts with `prefix`.
static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            n++;
        }
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static void test_atomic(void)
{
    struct llem_errbuf eb = {0};
    char path[512];
    snprintf(path, sizeof path, "%s/a.bin", root);
    CHECK_OK(fs_write_atomic(path, "hello", 5, &eb), &eb);
    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(fs_read_file(path, 100, &buf, &len, &eb), &eb);
    CHECK(len == 5 && buf && strcmp(buf, "hello") == 0);
    llem_free(buf);

    // streaming: nothing at the target until commit; the temp file is named .a.bin.tmp-*
    struct fs_atomic a;
    CHECK_OK(fs_atomic_open(&a, path, &eb), &eb);
    CHECK(strstr(a.tmp, "/.a.bin.tmp-") != NULL);
    CHECK_OK(fs_atomic_write(&a, "new ", 4, &eb), &eb);
    CHECK_OK(fs_atomic_write(&a, "content", 7, &eb), &eb);
    CHECK_OK(fs_read_file(path, 100, &buf, &len, &eb), &eb);
    CHECK_EQ_STR(buf, "hello"); // old content until commit
    llem_free(buf);
    CHECK_EQ_I64(count_entries(root, ".a.bin.tmp-"), 1);
    CHECK_OK(fs_atomic_commit(&a, &eb), &eb);
    CHECK_EQ_I64(count_entries(root, ".a.bin.tmp-"), 0);
    CHECK_OK(fs_read_file(path, 100, &buf, &len, &eb), &eb);
    CHECK_EQ_STR(buf, "new content");
    llem_free(buf);
    fs_atomic_abort(&a); // after commit: no-op

    // abort: the old file stays, no temp file
    CHECK_OK(fs_atomic_open(&a, path, &eb), &eb);
    CHECK_OK(fs_atomic_write(&a, "zzz", 3, &eb), &eb);
    fs_atomic_abort(&a);
    CHECK_EQ_I64(count_entries(root, ".a.bin.tmp-"), 0);
    CHECK_OK(fs_read_file(path, 100, &buf, &len, &eb), &eb);
    CHECK_EQ_STR(buf, "new content");
    llem_free(buf);

    // errors: missing folder, a folder in the way of the rename
    char bad[512];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x", root);
    CHECK_EQ_I64(fs_write_atomic(bad, "x", 1, &eb), LLEM_EIO);
    CHECK(strstr(eb.msg, "no/such/dir") != NULL);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/sub", root);
    CHECK_OK(fs_mkdir_p(sub, 0755, &eb), &eb);
    char inner[600];
    snprintf(inner, sizeof inner, "%s/f", sub);
    CHECK_OK(fs_write_atomic(inner, "x", 1, &eb), &eb);
    CHECK_EQ_I64(fs_write_atomic(sub, "x", 1, &eb), LLEM_EIO); // rename over a non-empty folder
    CHECK_EQ_I64(count_entries(root, ".sub.tmp-"), 0);
    CHECK_EQ_I64(fs_atomic_open(&a, "", &eb), LLEM_EINVAL);

    // allocation failures: clean ENOMEM, nothing left behind
    char oom[512];
    snprintf(oom, sizeof oom, "%s/oom.bin", root);
    for (uint64_t k = 1; k < 100; k++) {
        llem_alloc_fail_at(k, 0);
        enum llem_err rc = fs_write_atomic(oom, "abc", 3, &eb);
        int fired = llem_alloc_fail_fired();
        llem_alloc_fail_at(0, 0);
        if (!fired) {
            CHECK_EQ_I64(rc, LLEM_OK);
            break;
        }
        CHECK_EQ_I64(rc, LLEM_ENOMEM);
        CHECK(access(oom, F_OK) != 0);
        CHECK_EQ_I64(count_entries(root, ".oom.bin.tmp-"), 0);
    }
}

static void test_reads(void)
{
    struct llem_errbuf eb = {0};
    char path[512];
    snprintf(path, sizeof path, "%s/r.bin", root);
    static uint8_t data[10000];
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)(i * 13);
    }
    CHECK_OK(fs_write_atomic(path, data, sizeof data, &eb), &eb);
    uint64_t size = 0;
    CHECK_OK(fs_file_size(path, &size, &eb), &eb);
    CHECK_EQ_I64(size, sizeof data);
    CHECK_EQ_I64(fs_file_size(root, &size, &eb), LLEM_EIO); // a folder
    CHECK_EQ_I64(fs_file_size("/nonexistent/x", &size, &eb), LLEM_EIO);

    struct fs_map m;
    CHECK_OK(fs_map_open(&m, path, &eb), &eb);
    CHECK(m.size == sizeof data && m.addr && memcmp(m.addr, data, sizeof data) == 0);
    fs_map_advise(&m, 100, 5000, FS_ADVICE_WILLNEED);
    fs_map_advise(&m, 20000, 5, FS_ADVICE_RANDOM); // past the end: ignored
    void *range = NULL;
    CHECK_OK(fs_read_range(m.fd, 1000, 3000, 64, &range, &eb), &eb);
    CHECK(range && ((uintptr_t)range % 64) == 0 && memcmp(range, data + 1000, 3000) == 0);
    llem_aligned_free(range);
    CHECK_EQ_I64(fs_read_range(m.fd, 9000, 3000, 64, &range, &eb), LLEM_EIO); // past the end
    CHECK(range == NULL);
    fs_map_close(&m);
    fs_map_close(&m); // twice: no-op
    fs_map_close(NULL);
    CHECK_EQ_I64(fs_map_open(&m, root, &eb), LLEM_EIO);
    CHECK_EQ_I64(fs_map_open(&m, "/nonexistent/x", &eb), LLEM_EIO);
    fs_map_close(&m);

    char empty[512];
    snprintf(empty, sizeof empty, "%s/empty", root);
    CHECK_OK(fs_write_atomic(empty, "", 0, &eb), &eb);
    CHECK_OK(fs_map_open(&m, empty, &eb), &eb);
    CHECK(m.addr == NULL && m.size == 0);
    fs_map_close(&m);

    char *buf = NULL;
    size_t len = 0;
    CHECK_EQ_I64(fs_read_file(path, 9999, &buf, &len, &eb), LLEM_ELIMIT);
    CHECK(buf == NULL);
    CHECK_OK(fs_read_file(path, 10000, &buf, &len, &eb), &eb);
    CHECK(len == sizeof data && memcmp(buf, data, len) == 0 && buf[len] == '\0');
    llem_free(buf);
}

static void test_mkdir(void)
{
    struct llem_errbuf eb = {0};
    char p[512];
    snprintf(p, sizeof p, "%s/x/y//z/", root);
    CHECK_OK(fs_mkdir_p(p, 0755, &eb), &eb);
    struct stat st;
    snprintf(p, sizeof p, "%s/x/y/z", root);
    CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_OK(fs_mkdir_p(p, 0755, &eb), &eb); // exists: fine
    char f[600];
    snprintf(f, sizeof f, "%s/file", p);
    CHECK_OK(fs_write_atomic(f, "x", 1, &eb), &eb);
    char under[700];
    snprintf(under, sizeof under, "%s/below", f);
    CHECK_EQ_I64(fs_mkdir_p(under, 0755, &eb), LLEM_EIO); // a file in the way
    CHECK_EQ_I64(fs_mkdir_p("", 0755, &eb), LLEM_EINVAL);
}

int main(void)
{
    snprintf(root, sizeof root, "./fs-test-%ld", (long)getpid());
    struct llem_errbuf eb = {0};
    if (fs_mkdir_p(root, 0755, &eb) != LLEM_OK) {
        fprintf(stderr, "cannot create %s: %s\n", root, eb.msg);
        return 1;
    }
    RUN_TEST(test_atomic);
    RUN_TEST(test_reads);
    RUN_TEST(test_mkdir);
    if (check_remove_tree(root) != 0) {
        fprintf(stderr, "cannot remove %s\n", root);
    }
    return TEST_EXIT();
}
