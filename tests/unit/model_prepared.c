// tests/unit/model_prepared.c: the prepared-weights file (model/prepared.c). A synthetic
// Q4_K_M model (Q4_K and Q6_K weights, both repacked on AVX2 machines) is loaded with a
// prepared folder: the first load repacks and writes the file, the second maps it, and both
// give logits bit-identical to a load without the folder. A truncated file, a damaged header,
// a GGUF with a new mtime and an unusable folder each fall back to repacking (the file is then
// rewritten) without an error; a file whose GGUF is gone and a dead writer's temp file are
// pruned; LLEM_CACHE_DIR="" is off.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "base/alloc.h"
#include "base/cpu.h"
#include "check.h"
#include "model/model.h"
#include "synth/synth.h"

static char tmpdir[256], gguf_path[512], prep_dir[512];

enum { N_TOK = 6, N_GEN = 3 };

// Logits of a 6-token prompt's last row, then of 3 tokens decoded one by one.
static float *run_logits(const struct model *m, int *n_vocab)
{
    struct llem_errbuf eb = {0};
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = 64;
    struct model_ctx *ctx = NULL;
    CHECK_OK(model_ctx_new((struct model *)m, &cp, &ctx, &eb), &eb);
    const int nv = m->hp.n_vocab;
    *n_vocab = nv;
    float *out = llem_calloc((size_t)(1 + N_GEN) * (size_t)nv, sizeof(float));
    if (!ctx || !out) {
        model_ctx_free(ctx);
        return out;
    }
    llem_token tok[N_TOK] = {1, 5, 9, 2, 7, 3};
    llem_pos pos[N_TOK];
    llem_seq seq[N_TOK] = {0};
    int8_t want[N_TOK] = {0};
    for (int i = 0; i < N_TOK; i++) {
        pos[i] = i;
    }
    want[N_TOK - 1] = 1;
    struct ubatch ub = {.n_tokens = N_TOK, .tokens = tok, .pos = pos, .seq = seq, .output = want};
    CHECK_OK(model_ctx_decode(ctx, &ub, &eb), &eb);
    memcpy(out, model_ctx_logits(ctx, 0), (size_t)nv * sizeof(float));
    for (int g = 0; g < N_GEN; g++) {
        llem_token t = (llem_token)(11 + g);
        llem_pos p = N_TOK + g;
        llem_seq s = 0;
        int8_t o = 1;
        struct ubatch one = {.n_tokens = 1, .tokens = &t, .pos = &p, .seq = &s, .output = &o};
        CHECK_OK(model_ctx_decode(ctx, &one, &eb), &eb);
        memcpy(out + (size_t)(1 + g) * (size_t)nv, model_ctx_logits(ctx, 0),
               (size_t)nv * sizeof(float));
    }
    model_ctx_free(ctx);
    return out;
}

struct loaded {
    bool mapped;       // the weights came from the prepared file
    uint64_t prepared; // bytes of prepared copies
    float *logits;
};

static struct loaded load(struct backend *be, const char *dir, int *n_vocab)
{
    struct llem_errbuf eb = {0};
    struct model_params mp = {.prepared_dir = dir};
    struct model *m = NULL;
    struct loaded r = {0};
    CHECK_OK(model_load(gguf_path, &mp, be, &m, &eb), &eb);
    if (m) {
        r.mapped = m->prepared != NULL;
        r.prepared = m->repacked_bytes;
        r.logits = run_logits(m, n_vocab);
        model_free(m); // waits for the file to be written
    }
    return r;
}

static char *prep_file(char *buf, size_t cap)
{
    buf[0] = '\0';
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s/*.prep 2>/dev/null | head -1", prep_dir);
    FILE *p = popen(cmd, "r");
    if (p) {
        if (fgets(buf, (int)cap, p)) {
            buf[strcspn(buf, "\n")] = '\0';
        }
        pclose(p);
    }
    return buf;
}

static void check_same(const float *a, const float *b, int n_vocab)
{
    CHECK(a && b);
    if (a && b) {
        CHECK(memcmp(a, b, (size_t)(1 + N_GEN) * (size_t)n_vocab * sizeof(float)) == 0);
    }
}

static void test_prepared_roundtrip(void)
{
    struct llem_errbuf eb = {0};
    struct backend *be = NULL;
    CHECK_OK(backend_new("cpu", NULL, &be, &eb), &eb);
    int nv = 0;
    struct loaded plain = load(be, NULL, &nv);
    if (plain.prepared == 0) {
        // Nothing is repacked without AVX2: the file is never written, loads read the GGUF.
        struct loaded again = load(be, prep_dir, &nv);
        char f[600];
        CHECK(!again.mapped);
        CHECK(prep_file(f, sizeof f)[0] == '\0');
        check_same(plain.logits, again.logits, nv);
        printf("  (no repacked weights on this CPU: only the no-file path checked)\n");
        llem_free(plain.logits);
        llem_free(again.logits);
        backend_free(be);
        return;
    }
    struct loaded first = load(be, prep_dir, &nv);
    char f[600];
    CHECK(!first.mapped);
    CHECK(prep_file(f, sizeof f)[0] != '\0');
    struct loaded second = load(be, prep_dir, &nv);
    CHECK(second.mapped);
    CHECK_EQ_I64((int64_t)second.prepared, (int64_t)plain.prepared);
    check_same(plain.logits, first.logits, nv);
    check_same(plain.logits, second.logits, nv);

    // Damage, one at a time: each load repacks, matches, and leaves a good file behind.
    struct stat st;
    CHECK(stat(f, &st) == 0);
    for (int damage = 0; damage < 3; damage++) {
        if (damage == 0) { // truncated
            CHECK(truncate(f, st.st_size - 4096) == 0);
        } else if (damage == 1) { // header overwritten
            int fd = open(f, O_WRONLY);
            CHECK(fd >= 0 && pwrite(fd, "XXXXXXXX", 8, 0) == 8);
            close(fd);
        } else { // the GGUF changed (its mtime)
            struct timespec ts[2] = {{.tv_sec = 1000000000 + damage}, {.tv_sec = 1000000000}};
            CHECK(utimensat(AT_FDCWD, gguf_path, ts, 0) == 0);
        }
        struct loaded d = load(be, prep_dir, &nv);
        CHECK(!d.mapped);
        check_same(plain.logits, d.logits, nv);
        struct loaded back = load(be, prep_dir, &nv);
        CHECK(back.mapped);
        check_same(plain.logits, back.logits, nv);
        llem_free(d.logits);
        llem_free(back.logits);
    }

    // An unusable folder (a regular file stands where it should be): loads, maps nothing.
    char bad[600];
    snprintf(bad, sizeof bad, "%s/not-a-dir", tmpdir);
    FILE *x = fopen(bad, "w");
    CHECK(x != NULL);
    if (x) {
        fclose(x);
    }
    strcat(bad, "/prepared");
    struct loaded u = load(be, bad, &nv);
    CHECK(!u.mapped);
    check_same(plain.logits, u.logits, nv);

    // Pruning: a file whose GGUF is gone disappears at the next write; other files stay.
    char orphan[600], other[600];
    snprintf(orphan, sizeof orphan, "%s/0000000000000000.prep", prep_dir);
    snprintf(other, sizeof other, "%s/notes.txt", prep_dir);
    char dead_tmp[600], live_tmp[600], cmd[4096];
    // temp files of writers: pid 2^22 + 1 is above Linux's pid_max, so no process has it
    snprintf(dead_tmp, sizeof dead_tmp, "%s/.x.prep.tmp-4194305-0", prep_dir);
    snprintf(live_tmp, sizeof live_tmp, "%s/.x.prep.tmp-%ld-0", prep_dir, (long)getpid());
    snprintf(cmd, sizeof cmd, "cp %s %s && touch %s %s %s", f, orphan, other, dead_tmp, live_tmp);
    CHECK(system(cmd) == 0);
    // The orphan is f with its GGUF path overwritten by 'z's: a file that does not exist.
    {
        FILE *o = fopen(orphan, "r+b");
        CHECK(o != NULL);
        if (o) {
            struct {
                char magic[8];
                uint32_t version, n_entries;
                uint64_t file_bytes, a, b, c, d;
                uint32_t path_len, reserved;
            } h;
            CHECK(fread(&h, sizeof h, 1, o) == 1);
            // entries are 64 + 4 + 4 + 8 * 5 bytes each
            long at = (long)(sizeof h + (size_t)h.n_entries * 112);
            CHECK(fseek(o, at, SEEK_SET) == 0);
            for (uint32_t i = 0; i < h.path_len; i++) {
                fputc('z', o);
            }
            fclose(o);
        }
    }
    CHECK(utimensat(AT_FDCWD, gguf_path, NULL, 0) == 0); // new mtime: the next load writes
    struct loaded p = load(be, prep_dir, &nv);
    CHECK(!p.mapped);
    CHECK(access(orphan, F_OK) != 0);
    CHECK(access(other, F_OK) == 0);
    CHECK(access(dead_tmp, F_OK) != 0);
    CHECK(access(live_tmp, F_OK) == 0);
    CHECK(access(f, F_OK) == 0);

    llem_free(plain.logits);
    llem_free(first.logits);
    llem_free(second.logits);
    llem_free(u.logits);
    llem_free(p.logits);
    backend_free(be);
}

static void test_default_dir(void)
{
    char buf[512];
    setenv("LLEM_CACHE_DIR", "/some/where", 1);
    CHECK(model_default_prepared_dir(buf, sizeof buf));
    CHECK_EQ_STR(buf, "/some/where/prepared");
    CHECK(!model_default_prepared_dir(buf, 8)); // does not fit
    setenv("LLEM_CACHE_DIR", "", 1);
    CHECK(!model_default_prepared_dir(buf, sizeof buf));
    unsetenv("LLEM_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK(model_default_prepared_dir(buf, sizeof buf));
    CHECK_EQ_STR(buf, "/xdg/llem/prepared");
    setenv("XDG_CACHE_HOME", "relative", 1); // ignored, as the XDG spec says
    setenv("HOME", "/home/u", 1);
    CHECK(model_default_prepared_dir(buf, sizeof buf));
    CHECK_EQ_STR(buf, "/home/u/.cache/llem/prepared");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/llem-prepared-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(gguf_path, sizeof gguf_path, "%s/tiny-Q4_K_M.gguf", tmpdir);
    snprintf(prep_dir, sizeof prep_dir, "%s/cache/prepared", tmpdir);
    struct synth_opts o = {.preset = "tiny",
                           .arch = "llama",
                           .type = "Q4_K_M",
                           .seed = 7,
                           .n_threads = 2,
                           .gen_vocab = true};
    struct llem_errbuf eb = {0};
    CHECK_OK(synth_generate(&o, gguf_path, NULL, &eb), &eb);
    RUN_TEST(test_prepared_roundtrip);
    RUN_TEST(test_default_dir);
    if (check_remove_tree(tmpdir) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return TEST_EXIT();
}
