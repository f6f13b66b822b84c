// tests/unit/store_test.h: helpers shared by the store tests: a fresh temp folder per test,
// recursive removal, counting the files under a folder (to prove nothing was written outside
// the store or left half-written), and writing small files.
#pragma once
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Creates a fresh folder /tmp/llem-store-<tag>-XXXXXX into buf; exits on failure.
static inline void st_mkdtemp(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/llem-store-%s-XXXXXX", tag);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(1);
    }
}

static inline void st_rmrf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char sub[4096];
            int len = snprintf(sub, sizeof(sub), "%s/%.255s", path, e->d_name);
            if (len > 0 && (size_t)len < sizeof(sub)) {
                st_rmrf(sub);
            }
        }
        if (d) {
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

// Regular files under path (recursively).
static inline int st_count_files(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        return 1;
    }
    int n = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char sub[4096];
        int len = snprintf(sub, sizeof(sub), "%s/%.255s", path, e->d_name);
        if (len < 0 || (size_t)len >= sizeof(sub)) {
            continue; // too deep to matter for the test stores
        }
        n += st_count_files(sub);
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static inline int st_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        return -1;
    }
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}
