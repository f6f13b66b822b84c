// tests/unit/store_blob.c: content-addressed blobs. A verified write appears under its name; a
// digest mismatch, a failing reader, an abort or a writer process killed mid-write leaves
// nothing under the blob's name (and prune clears a dead writer's temp file); prune keeps
// referenced and in-flight blobs and removes the rest; LLEM_NOPRUNE turns prune-on-delete off.
#include <signal.h>
#include <sys/wait.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "check.h"
#include "store/store_int.h"
#include "store_test.h"

static char sandbox[256], root[300], blobs[320];

static void digest_of(const void *data, size_t n, char out[STORE_DIGEST_BYTES])
{
    uint8_t d[SHA256_BYTES];
    char hex[SHA256_HEX_BYTES];
    sha256_oneshot(data, n, d);
    sha256_hex(d, hex);
    snprintf(out, STORE_DIGEST_BYTES, "sha256:%s", hex);
}

struct src {
    const char *data;
    size_t len, pos;
    long long fail_after; // return -1 once pos reaches this (-1: never)
};

static long long src_read(void *ctx, void *buf, size_t cap)
{
    struct src *s = ctx;
    if (s->fail_after >= 0 && (long long)s->pos >= s->fail_after) {
        return -1;
    }
    size_t n = s->len - s->pos < cap ? s->len - s->pos : cap;
    if (n > 7) {
        n = 7; // small pieces: many writes
    }
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    return (long long)n;
}

static struct store *open_store(bool no_prune)
{
    struct store *s = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(store_open(&s, &(struct store_opts){.root = root, .no_prune = no_prune}, &eb), &eb);
    return s;
}

static void test_write_and_mismatch(void)
{
    struct store *s = open_store(false);
    struct llem_errbuf eb = {0};
    const char *text = "hello, blob world";
    char dg[STORE_DIGEST_BYTES];
    digest_of(text, strlen(text), dg);
    struct src in = {text, strlen(text), 0, -1};
    CHECK_OK(store_blob_write(s, dg, src_read, &in, &eb), &eb);
    CHECK(store_blob_has(s, dg));
    char *p = NULL;
    CHECK_OK(store_blob_path(s, dg, &p, &eb), &eb);
    char *got = NULL;
    size_t n = 0;
    CHECK_OK(fs_read_file(p, 1000, &got, &n, &eb), &eb);
    CHECK_EQ_STR(got, text);
    llem_free(got);
    llem_free(p);
    CHECK_EQ_I64(st_count_files(blobs), 1);

    // The same bytes under another digest: refused, nothing left behind.
    char wrong[STORE_DIGEST_BYTES];
    digest_of("other", 5, wrong);
    in = (struct src){text, strlen(text), 0, -1};
    CHECK(store_blob_write(s, wrong, src_read, &in, &eb) == LLEM_EFORMAT);
    CHECK(strstr(eb.msg, "digest mismatch") != NULL);
    CHECK(!store_blob_has(s, wrong));
    CHECK_EQ_I64(st_count_files(blobs), 1);

    // Push-style writer with the digest in "sha256-" form and upper-case hex.
    char alt[STORE_DIGEST_BYTES];
    const char *t2 = "second blob";
    digest_of(t2, strlen(t2), alt);
    alt[6] = '-';
    for (int i = 7; i < 71; i++) {
        alt[i] = (char)(alt[i] >= 'a' && alt[i] <= 'f' ? alt[i] - 32 : alt[i]);
    }
    struct store_blob_writer *w = NULL;
    CHECK_OK(store_blob_writer_new(s, alt, &w, &eb), &eb);
    CHECK_OK(store_blob_writer_write(w, t2, 3, &eb), &eb);
    CHECK_OK(store_blob_writer_write(w, t2 + 3, strlen(t2) - 3, &eb), &eb);
    CHECK_OK(store_blob_writer_commit(w, &eb), &eb);
    CHECK(store_blob_has(s, alt));
    CHECK_EQ_I64(st_count_files(blobs), 2);
    // A short body fails the digest check at commit.
    char d3[STORE_DIGEST_BYTES];
    digest_of("complete body", 13, d3);
    CHECK_OK(store_blob_writer_new(s, d3, &w, &eb), &eb);
    CHECK_OK(store_blob_writer_write(w, "complete", 8, &eb), &eb);
    CHECK(store_blob_writer_commit(w, &eb) == LLEM_EFORMAT);
    CHECK(!store_blob_has(s, d3));
    CHECK_EQ_I64(st_count_files(blobs), 2);
    store_close(s);
}

static void test_interrupted(void)
{
    struct store *s = open_store(false);
    struct llem_errbuf eb = {0};
    int before = st_count_files(blobs);
    char big[4096];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char)(i * 7);
    }
    char dg[STORE_DIGEST_BYTES];
    digest_of(big, sizeof(big), dg);
    // The source fails halfway.
    struct src in = {big, sizeof(big), 0, 2000};
    CHECK(store_blob_write(s, dg, src_read, &in, &eb) == LLEM_EIO);
    CHECK(!store_blob_has(s, dg));
    CHECK_EQ_I64(st_count_files(blobs), before);
    // The client goes away: abort.
    struct store_blob_writer *w = NULL;
    CHECK_OK(store_blob_writer_new(s, dg, &w, &eb), &eb);
    CHECK_OK(store_blob_writer_write(w, big, 1000, &eb), &eb);
    store_blob_writer_abort(w);
    CHECK(!store_blob_has(s, dg));
    CHECK_EQ_I64(st_count_files(blobs), before);
    // The writing process dies mid-write: nothing under the blob's name; its temp file is
    // cleared by the next prune (its pid is gone).
    pid_t pid = fork();
    if (pid == 0) {
        struct store_blob_writer *cw = NULL;
        if (store_blob_writer_new(s, dg, &cw, NULL) == LLEM_OK) {
            store_blob_writer_write(cw, big, 1500, NULL);
        }
        _exit(0); // no commit, no abort
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(!store_blob_has(s, dg));
    CHECK_EQ_I64(st_count_files(blobs), before + 1); // the dead writer's hidden temp file
    size_t removed = 0;
    CHECK_OK(store_prune(s, &removed, &eb), &eb);
    CHECK_EQ_I64(st_count_files(blobs), 0); // temp gone; the unreferenced blobs too
    CHECK_EQ_I64(removed, before);
    store_close(s);
}

// A manifest that references blob `dg` under name.
static void reference(struct store *s, const char *name, const char *dg, const char *cfg)
{
    struct store_manifest m = {0};
    snprintf(m.config.media_type, sizeof(m.config.media_type), "%s", STORE_MT_CONFIG);
    memcpy(m.config.digest, cfg, STORE_DIGEST_BYTES);
    struct store_layer l = {.size = 1};
    snprintf(l.media_type, sizeof(l.media_type), "%s", STORE_MT_MODEL);
    memcpy(l.digest, dg, STORE_DIGEST_BYTES);
    CHECK(store_manifest_add_layer(&m, &l) == LLEM_OK);
    struct store_name n;
    struct llem_errbuf eb = {0};
    CHECK_OK(store_name_parse(name, &n, &eb), &eb);
    CHECK_OK(store_manifest_save(s, &n, &m, &eb), &eb);
    store_manifest_deinit(&m);
}

static void test_prune(void)
{
    st_rmrf(root);
    struct store *s = open_store(false);
    struct llem_errbuf eb = {0};
    char a[STORE_DIGEST_BYTES], b[STORE_DIGEST_BYTES], c[STORE_DIGEST_BYTES],
        cfg[STORE_DIGEST_BYTES], pend[STORE_DIGEST_BYTES];
    CHECK_OK(store_blob_put_bytes(s, "A", 1, a, &eb), &eb);
    CHECK_OK(store_blob_put_bytes(s, "B", 1, b, &eb), &eb);
    CHECK_OK(store_blob_put_bytes(s, "C", 1, c, &eb), &eb);
    CHECK_OK(store_blob_put_bytes(s, "{}", 2, cfg, &eb), &eb);
    CHECK_OK(store_blob_put_bytes(s, "P", 1, pend, &eb), &eb);
    char partial[600];
    snprintf(partial, sizeof(partial), "%s/sha256-%s-partial", blobs, c + 7);
    CHECK(st_write(partial, "x", 1) == 0);
    reference(s, "m1", a, cfg);
    reference(s, "m2", b, cfg);
    CHECK(store_pending_add(s, pend) == LLEM_OK); // being written by someone: keep it
    size_t removed = 0;
    CHECK_OK(store_prune(s, &removed, &eb), &eb);
    CHECK_EQ_I64(removed, 2); // C and its partial
    CHECK(store_blob_has(s, a) && store_blob_has(s, b) && store_blob_has(s, cfg));
    CHECK(!store_blob_has(s, c));
    CHECK(store_blob_has(s, pend));
    store_pending_remove(s, pend);
    // Delete prunes what only that model used.
    CHECK_OK(store_delete(s, "m1", &eb), &eb);
    CHECK(!store_blob_has(s, a));
    CHECK(!store_blob_has(s, pend));
    CHECK(store_blob_has(s, b) && store_blob_has(s, cfg));
    // A malformed manifest stops prune (deleting on a partial view could lose data).
    char bad[600];
    snprintf(bad, sizeof(bad), "%s/manifests/registry.ollama.ai/library/broken", root);
    CHECK_OK(fs_mkdir_p(bad, 0755, &eb), &eb);
    snprintf(bad, sizeof(bad), "%s/manifests/registry.ollama.ai/library/broken/latest", root);
    CHECK(st_write(bad, "{", 1) == 0);
    CHECK_OK(store_blob_put_bytes(s, "D", 1, c, &eb), &eb);
    CHECK(store_prune(s, &removed, &eb) == LLEM_EFORMAT);
    CHECK(store_blob_has(s, c));
    unlink(bad);
    store_close(s);

    // LLEM_NOPRUNE: delete leaves the blobs.
    setenv("LLEM_NOPRUNE", "1", 1);
    s = open_store(false);
    CHECK_OK(store_delete(s, "m2", &eb), &eb);
    CHECK(store_blob_has(s, b));
    store_close(s);
    unsetenv("LLEM_NOPRUNE");
    s = open_store(false);
    CHECK_OK(store_prune(s, &removed, &eb), &eb);
    CHECK(!store_blob_has(s, b));
    store_close(s);
}

static void test_import_file(void)
{
    struct store *s = open_store(true);
    struct llem_errbuf eb = {0};
    char f[600];
    snprintf(f, sizeof(f), "%s/source.bin", sandbox);
    CHECK(st_write(f, "imported bytes", 14) == 0);
    char dg[STORE_DIGEST_BYTES], want[STORE_DIGEST_BYTES];
    uint64_t size = 0;
    CHECK_OK(store_blob_import_file(s, f, dg, &size, NULL, NULL, &eb), &eb);
    digest_of("imported bytes", 14, want);
    CHECK_EQ_STR(dg, want);
    CHECK_EQ_I64(size, 14);
    CHECK(store_blob_has(s, dg));
    // Importing again is a no-op that succeeds.
    CHECK_OK(store_blob_import_file(s, f, dg, &size, NULL, NULL, &eb), &eb);
    snprintf(f, sizeof(f), "%s/missing.bin", sandbox);
    CHECK(store_blob_import_file(s, f, dg, &size, NULL, NULL, &eb) == LLEM_EIO);
    store_close(s);
}

int main(void)
{
    st_mkdtemp(sandbox, sizeof(sandbox), "blob");
    snprintf(root, sizeof(root), "%s/store", sandbox);
    snprintf(blobs, sizeof(blobs), "%s/blobs", root);
    RUN_TEST(test_write_and_mismatch);
    RUN_TEST(test_interrupted);
    RUN_TEST(test_prune);
    RUN_TEST(test_import_file);
    st_rmrf(sandbox);
    return TEST_EXIT();
}
