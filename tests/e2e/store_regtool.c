// tests/e2e/store_regtool.c: drives the store library for tests/e2e/store_registry.sh (create,
// push, pull, rm, resolve, a big synthetic GGUF, and a pull that SIGKILLs the registry halfway
// through a blob). Run with no arguments (as CTest does), it checks the offline failure path:
// a pull from a registry that is not listening fails with EIO and stores nothing.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "gguf/gguf.h"
#include "store/store.h"

struct pull_watch {
    long kill_pid; // SIGKILL this pid once the largest blob is half done (0: never)
    bool killed;
    char first[STORE_DIGEST_BYTES]; // digest whose first progress event we report
    bool verbose;
    char seen[64][STORE_DIGEST_BYTES];
    int n_seen;
};

static bool on_progress(void *ctx, const struct store_progress *p)
{
    struct pull_watch *w = ctx;
    if (!p->digest || strncmp(p->status, "pulling ", 8) != 0) {
        if (w->verbose) {
            fprintf(stderr, "progress: %s\n", p->status);
        }
        return true;
    }
    bool seen = false;
    for (int i = 0; i < w->n_seen; i++) {
        seen = seen || strcmp(w->seen[i], p->digest) == 0;
    }
    if (!seen && w->n_seen < 64) {
        snprintf(w->seen[w->n_seen++], STORE_DIGEST_BYTES, "%s", p->digest);
        // The first event of each blob tells where its download started (resume point).
        printf("start %s %llu %llu\n", p->digest, (unsigned long long)p->completed,
               (unsigned long long)p->total);
        fflush(stdout);
    }
    if (w->kill_pid > 0 && !w->killed && p->total > (8u << 20) && p->completed >= p->total / 2) {
        printf("killing registry at %llu of %llu\n", (unsigned long long)p->completed,
               (unsigned long long)p->total);
        fflush(stdout);
        kill((pid_t)w->kill_pid, SIGKILL);
        w->killed = true;
    }
    return true;
}

static int fail(const char *what, const struct llem_errbuf *eb)
{
    fprintf(stderr, "regtool: %s: %s\n", what, eb->msg);
    return 1;
}

// A valid GGUF of about `mb` MiB: llama metadata and one F32 tensor of pseudo-random values.
static int make_gguf(const char *path, long mb)
{
    struct llem_errbuf eb = {0};
    int64_t ne[2] = {1024, mb * 256}; // 1024 floats * 4 B = 4 KiB a row, 256 rows a MiB
    size_t n = (size_t)(ne[0] * ne[1]);
    float *data = llem_malloc(n * sizeof(float));
    struct gguf_writer *w = gguf_writer_new();
    if (!data || !w) {
        return 1;
    }
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        data[i] = (float)(x >> 8) / 16777216.0f;
    }
    int rc =
        gguf_writer_set_str(w, "general.architecture", "llama") != LLEM_OK ||
        gguf_writer_set_u32(w, "general.file_type", 0) != LLEM_OK ||
        gguf_writer_add_tensor(w, "token_embd.weight", GGML_TYPE_F32, 2, ne, data) != LLEM_OK ||
        gguf_writer_write(w, path, &eb) != LLEM_OK;
    gguf_writer_free(w);
    llem_free(data);
    if (rc) {
        fprintf(stderr, "regtool: mkgguf: %s\n", eb.msg);
    }
    return rc;
}

static int offline_check(void)
{
    char root[] = "/tmp/llem-regtool-XXXXXX";
    if (!mkdtemp(root)) {
        return 1;
    }
    struct store *s = NULL;
    struct llem_errbuf eb = {0};
    if (store_open(&s, &(struct store_opts){.root = root}, &eb) != LLEM_OK) {
        return fail("open", &eb);
    }
    // Port 9 (discard) is not served on test machines: connection refused.
    struct store_registry_opts o = {.insecure = true, .base_url = "http://127.0.0.1:9"};
    enum llem_err rc = store_pull(s, "e2e/nothing:v1", &o, &eb);
    int bad = 0;
    if (rc != LLEM_EIO || !strstr(eb.msg, "127.0.0.1:9")) {
        fprintf(stderr, "regtool: offline pull gave %d (%s), want EIO naming the URL\n", (int)rc,
                eb.msg);
        bad = 1;
    }
    o.insecure = false; // plain http without --insecure is refused before any I/O
    if (store_pull(s, "e2e/nothing:v1", &o, &eb) != LLEM_EINVAL || !strstr(eb.msg, "insecure")) {
        fprintf(stderr, "regtool: plain-http pull without insecure: %s\n", eb.msg);
        bad = 1;
    }
    struct store_entry *e = NULL;
    size_t n = 0;
    if (store_list(s, &e, &n, &eb) != LLEM_OK || n != 0) {
        bad = 1;
    }
    store_list_free(e, n);
    char blobs[256];
    snprintf(blobs, sizeof(blobs), "%s/blobs", root);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\" && rm -rf %s", blobs, root);
    if (system(cmd) != 0) {
        fprintf(stderr, "regtool: offline pull left files in %s\n", blobs);
        bad = 1;
    }
    store_close(s);
    fprintf(stderr, "%s offline pull\n", bad ? "FAIL" : "ok  ");
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return offline_check();
    }
    if (argc == 4 && strcmp(argv[1], "mkgguf") == 0) {
        return make_gguf(argv[2], strtol(argv[3], NULL, 10));
    }
    if (argc < 4) {
        fprintf(stderr, "usage: regtool ROOT create NAME MODELFILE | push NAME URL | pull NAME URL "
                        "[KILLPID] | rm NAME | resolve NAME\n       regtool mkgguf PATH MIB\n");
        return 2;
    }
    const char *root = argv[1], *verb = argv[2], *name = argv[3];
    struct store *s = NULL;
    struct llem_errbuf eb = {0};
    if (store_open(&s, &(struct store_opts){.root = root}, &eb) != LLEM_OK) {
        return fail("open", &eb);
    }
    int rc = 0;
    struct pull_watch watch = {.verbose = getenv("REGTOOL_VERBOSE") != NULL};
    struct store_registry_opts o = {.insecure = true,
                                    .base_url = argc > 4 ? argv[4] : NULL,
                                    .progress = on_progress,
                                    .progress_ctx = &watch};
    if (strcmp(verb, "create") == 0 && argc == 5) {
        char *text = NULL;
        size_t len = 0;
        if (fs_read_file(argv[4], 1 << 20, &text, &len, &eb) != LLEM_OK) {
            rc = fail("read Modelfile", &eb);
        } else {
            char dir[1024];
            snprintf(dir, sizeof(dir), "%s", argv[4]);
            char *sl = strrchr(dir, '/');
            if (sl) {
                *sl = '\0'; // relative FROM paths are relative to the Modelfile
            } else {
                snprintf(dir, sizeof(dir), ".");
            }
            struct store_create_opts co = {.base_dir = dir};
            if (store_create(s, name, text, &co, &eb) != LLEM_OK) {
                rc = fail("create", &eb);
            }
            llem_free(text);
        }
    } else if (strcmp(verb, "push") == 0) {
        if (store_push(s, name, &o, &eb) != LLEM_OK) {
            rc = fail("push", &eb);
        }
    } else if (strcmp(verb, "pull") == 0) {
        watch.kill_pid = argc > 5 ? strtol(argv[5], NULL, 10) : 0;
        if (store_pull(s, name, &o, &eb) != LLEM_OK) {
            rc = fail("pull", &eb);
        }
    } else if (strcmp(verb, "rm") == 0) {
        if (store_delete(s, name, &eb) != LLEM_OK) {
            rc = fail("rm", &eb);
        }
    } else if (strcmp(verb, "resolve") == 0) {
        struct store_model *m = NULL;
        if (store_resolve(s, name, &m, &eb) != LLEM_OK) {
            rc = fail("resolve", &eb);
        } else {
            // A working model: the GGUF opens fully validated (tensor data in range).
            struct gguf_file *f = NULL;
            if (gguf_open(&f, m->model_path, NULL, &eb) != LLEM_OK) {
                rc = fail("gguf", &eb);
            } else {
                printf("model %s\nfamily %s\ntensors %lld\nsystem %s\nid %s\n", m->model_path,
                       m->details.family, (long long)gguf_n_tensors(f),
                       m->system_text ? m->system_text : "", m->digest);
                gguf_close(f);
            }
            store_model_free(m);
        }
    } else {
        fprintf(stderr, "regtool: unknown command '%s'\n", verb);
        rc = 2;
    }
    store_close(s);
    return rc;
}
