// tests/check.h: the assertion macros every C test uses. Each failed check prints both
// operands and file:line and counts a failure; TEST_MAIN runs the listed cases and exits
// non-zero if any check failed; check_remove_tree cleans up a test's temp folder. No
// framework: a test is a plain function.
#pragma once
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

static inline int check_remove_entry(const char *path, const struct stat *st, int flag,
                                     struct FTW *at)
{
    (void)st;
    (void)flag;
    (void)at;
    return remove(path);
}

// Removes a temp folder a test made, with everything in it (links are removed, not followed).
// Returns 0 on success.
static inline int check_remove_tree(const char *dir)
{
    return nftw(dir, check_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
            check_failures++;                                                              \
        }                                                                                  \
    } while (0)

#define CHECK_EQ_I64(a, b)                                                                 \
    do {                                                                                   \
        int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                      \
        if (a_ != b_) {                                                                    \
            fprintf(stderr, "%s:%d: CHECK_EQ_I64 failed: %s == %" PRId64 ", %s == %" PRId64 \
                    "\n", __FILE__, __LINE__, #a, a_, #b, b_);                             \
            check_failures++;                                                              \
        }                                                                                  \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                 \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                           \
            fprintf(stderr, "%s:%d: CHECK_EQ_STR failed: %s == \"%s\", %s == \"%s\"\n",    \
                    __FILE__, __LINE__, #a, a_ ? a_ : "(null)", #b, b_ ? b_ : "(null)");   \
            check_failures++;                                                              \
        }                                                                                  \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                   \
        double a_ = (double)(a), b_ = (double)(b);                                         \
        if (!(fabs(a_ - b_) <= (double)(tol))) {                                           \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s == %.9g, %s == %.9g (tol %g)\n", \
                    __FILE__, __LINE__, #a, a_, #b, b_, (double)(tol));                    \
            check_failures++;                                                              \
        }                                                                                  \
    } while (0)

// CHECK_OK(expr, eb): expr returns enum llem_err; on failure prints the errbuf message.
#define CHECK_OK(expr, eb)                                                                 \
    do {                                                                                   \
        int rc_ = (int)(expr);                                                             \
        if (rc_ != 0) {                                                                    \
            fprintf(stderr, "%s:%d: CHECK_OK failed: %s -> %d (%s)\n", __FILE__, __LINE__, \
                    #expr, rc_, (eb)->msg);                                                \
            check_failures++;                                                              \
        }                                                                                  \
    } while (0)

#define RUN_TEST(fn)                                                                       \
    do {                                                                                   \
        int before_ = check_failures;                                                      \
        fn();                                                                              \
        fprintf(stderr, "%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #fn);      \
    } while (0)

#define TEST_EXIT() (check_failures ? (fprintf(stderr, "%d check(s) failed\n", check_failures), 1) : 0)

// Skips the whole test executable (CTest shows "Skipped") with a visible reason.
#define TEST_SKIP(...)                                                                     \
    do {                                                                                   \
        fprintf(stderr, "SKIP: ");                                                         \
        fprintf(stderr, __VA_ARGS__);                                                      \
        fprintf(stderr, "\n");                                                             \
        exit(77);                                                                          \
    } while (0)

// Path of a file in ../shared, or skip when ../shared is absent.
static inline const char *test_shared_path(char *buf, size_t n, const char *rel)
{
    const char *root = getenv("LLEM_SHARED");
    if (!root) {
        root = "../shared";
    }
    snprintf(buf, n, "%s/%s", root, rel);
    FILE *f = fopen(buf, "rb");
    if (!f) {
        TEST_SKIP("%s not found (../shared is absent)", buf);
    }
    fclose(f);
    return buf;
}
