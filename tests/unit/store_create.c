// tests/unit/store_create.c: store_create from Modelfiles over ../shared/models (skipped when
// absent): FROM a file, a folder, an uploaded blob and an existing model (layers reused, params
// merged); every text layer; ADAPTER recorded; errors naming the line; progress and cancel;
// and --quantize Q4_0 of llama-tiny-F16 through the real quantizer (`$LLEM quantize`, as the
// store library sits below tensor/) giving a model the GGUF reader loads as Q4_0.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "check.h"
#include "gguf/gguf.h"
#include "store/store_int.h"
#include "store_test.h"

extern char **environ;

static char sandbox[256], root[300], models[2048];
static struct store *s;

struct prog {
    int events;
    char last[128];
    bool saw_quantize;
    int cancel_at; // cancel at this event (0: never)
};

static bool on_progress(void *ctx, const struct store_progress *p)
{
    struct prog *pr = ctx;
    pr->events++;
    snprintf(pr->last, sizeof(pr->last), "%s", p->status);
    if (strncmp(p->status, "quantizing", 10) == 0) {
        pr->saw_quantize = true;
    }
    return pr->cancel_at == 0 || pr->events < pr->cancel_at;
}

static enum llem_err create(const char *name, const char *mf, struct prog *pr,
                            struct llem_errbuf *eb)
{
    struct store_create_opts o = {.base_dir = models, .progress = on_progress, .progress_ctx = pr};
    return store_create(s, name, mf, &o, eb);
}

static void test_from_file(void)
{
    struct llem_errbuf eb = {0};
    struct prog pr = {0};
    const char *mf = "FROM llama-tiny-Q4_0.gguf\n"
                     "TEMPLATE \"\"\"{{ .Prompt }}\"\"\"\n"
                     "SYSTEM be brief\n"
                     "PARAMETER temperature 0\n"
                     "PARAMETER stop </s>\n"
                     "MESSAGE user hi\n"
                     "MESSAGE assistant hello\n"
                     "LICENSE lic A\n"
                     "LICENSE lic B\n"
                     "ADAPTER stories260K.gguf\n";
    CHECK_OK(create("tiny:q4", mf, &pr, &eb), &eb);
    CHECK_EQ_STR(pr.last, "success");
    struct store_model *m = NULL;
    CHECK_OK(store_resolve(s, "tiny:q4", &m, &eb), &eb);
    if (!m) {
        return;
    }
    char src[2200], want[STORE_DIGEST_BYTES], got[STORE_DIGEST_BYTES];
    snprintf(src, sizeof(src), "%s/llama-tiny-Q4_0.gguf", models);
    CHECK_OK(store_hash_file(src, want, NULL, &eb), &eb);
    CHECK_OK(store_hash_file(m->model_path, got, NULL, &eb), &eb);
    CHECK_EQ_STR(got, want); // the GGUF is stored as is
    CHECK_EQ_STR(m->template_text, "{{ .Prompt }}");
    CHECK_EQ_STR(m->system_text, "be brief");
    CHECK_EQ_STR(m->params_json, "{\"stop\":[\"</s>\"],\"temperature\":0}");
    CHECK_EQ_STR(m->messages_json, "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":"
                                   "\"assistant\",\"content\":\"hello\"}]");
    CHECK_EQ_I64(m->n_licenses, 2);
    CHECK(m->adapter_path != NULL); // recorded; loaders refuse it as "not supported yet"
    CHECK_EQ_STR(m->details.format, "gguf");
    CHECK_EQ_STR(m->details.family, "llama");
    CHECK_EQ_STR(m->details.quantization_level, "Q4_0");
    CHECK(m->details.parameter_size[0] != '\0');
    char first[STORE_DIGEST_BYTES];
    memcpy(first, m->digest, sizeof(first));
    store_model_free(m);
    // Creating the same thing again gives the same manifest (the model ID is stable).
    CHECK_OK(create("tiny:q4", mf, &pr, &eb), &eb);
    CHECK_OK(store_resolve(s, "tiny:q4", &m, &eb), &eb);
    CHECK(m && strcmp(m->digest, first) == 0);
    store_model_free(m);
}

static void test_from_model_and_blob(void)
{
    struct llem_errbuf eb = {0};
    struct prog pr = {0};
    CHECK_OK(create("derived",
                    "FROM tiny:q4\nSYSTEM be verbose\nPARAMETER top_k 7\n"
                    "PARAMETER temperature 0.5\n",
                    &pr, &eb),
             &eb);
    struct store_model *base = NULL, *m = NULL;
    CHECK_OK(store_resolve(s, "tiny:q4", &base, &eb), &eb);
    CHECK_OK(store_resolve(s, "derived", &m, &eb), &eb);
    if (!base || !m) {
        store_model_free(base);
        store_model_free(m);
        return;
    }
    CHECK_EQ_STR(m->model_path, base->model_path); // weights shared, not copied
    CHECK_EQ_STR(m->system_text, "be verbose");
    CHECK_EQ_STR(m->template_text, "{{ .Prompt }}");
    CHECK_EQ_STR(m->params_json, "{\"stop\":[\"</s>\"],\"temperature\":0.5,\"top_k\":7}");
    CHECK_EQ_STR(m->details.parent_model, "tiny:q4");
    CHECK(strstr(m->manifest_json, "\"from\":\"tiny:q4\"") != NULL);

    // FROM @digest: a blob uploaded first (what POST /api/blobs + /api/create do).
    char *gguf = NULL;
    size_t n = 0;
    char src[2200], dg[STORE_DIGEST_BYTES];
    snprintf(src, sizeof(src), "%s/qwen3-tiny-Q4_0.gguf", models);
    CHECK_OK(fs_read_file(src, 64u << 20, &gguf, &n, &eb), &eb);
    CHECK_OK(store_hash_file(src, dg, NULL, &eb), &eb);
    struct store_blob_writer *w = NULL;
    CHECK_OK(store_blob_writer_new(s, dg, &w, &eb), &eb);
    CHECK_OK(store_blob_writer_write(w, gguf, n, &eb), &eb);
    CHECK_OK(store_blob_writer_commit(w, &eb), &eb);
    llem_free(gguf);
    char mf[200];
    snprintf(mf, sizeof(mf), "FROM @%s\n", dg);
    CHECK_OK(create("qwen3:blob", mf, &pr, &eb), &eb);
    store_model_free(m);
    CHECK_OK(store_resolve(s, "qwen3:blob", &m, &eb), &eb);
    CHECK(m && strcmp(m->details.family, "qwen3") == 0);
    store_model_free(m);
    store_model_free(base);
}

static void test_json_request(void)
{
    struct llem_errbuf eb = {0};
    char src[2200], dg[STORE_DIGEST_BYTES], req[2048];
    snprintf(src, sizeof(src), "%s/llama-tiny-Q8_0.gguf", models);
    uint64_t size;
    CHECK_OK(store_blob_import_file(s, src, dg, &size, NULL, NULL, &eb), &eb); // as /api/blobs
    snprintf(req, sizeof(req),
             "{\"model\":\"json:v1\",\"files\":{\"m.gguf\":\"%s\"},\"template\":\"T\","
             "\"system\":\"S\",\"parameters\":{\"temperature\":0.25,\"stop\":[\"a\",\"b\"],"
             "\"num_ctx\":2048},\"license\":[\"L1\",\"L2\"],\"messages\":[{\"role\":"
             "\"user\",\"content\":\"hi\"}],\"stream\":true}",
             dg);
    CHECK_OK(store_create_json(s, req, strlen(req), NULL, &eb), &eb);
    struct store_model *m = NULL;
    CHECK_OK(store_resolve(s, "json:v1", &m, &eb), &eb);
    if (m) {
        CHECK_EQ_STR(m->template_text, "T");
        CHECK_EQ_STR(m->system_text, "S");
        CHECK_EQ_STR(m->params_json, "{\"num_ctx\":2048,\"stop\":[\"a\",\"b\"],"
                                     "\"temperature\":0.25}");
        CHECK_EQ_I64(m->n_licenses, 2);
        CHECK_EQ_STR(m->messages_json, "[{\"role\":\"user\",\"content\":\"hi\"}]");
        CHECK_EQ_STR(m->details.quantization_level, "Q8_0");
    }
    store_model_free(m);
    const char *from = "{\"model\":\"json:v2\",\"from\":\"json:v1\",\"system\":\"S2\"}";
    CHECK_OK(store_create_json(s, from, strlen(from), NULL, &eb), &eb);
    CHECK_OK(store_resolve(s, "json:v2", &m, &eb), &eb);
    CHECK(m && strcmp(m->system_text, "S2") == 0 && strcmp(m->template_text, "T") == 0);
    store_model_free(m);
    const char *legacy = "{\"name\":\"json:v3\",\"modelfile\":\"FROM json:v1\\nSYSTEM S3\"}";
    CHECK_OK(store_create_json(s, legacy, strlen(legacy), NULL, &eb), &eb);
    static const struct {
        const char *req, *msg;
    } bad[] = {
        {"[1]", "not a JSON object"},
        {"{\"model\":\"../../etc/passwd\",\"from\":\"json:v1\"}", "invalid model name"},
        {"{\"from\":\"json:v1\"}", "'model'"},
        {"{\"model\":\"j\"}", "neither 'from' nor 'files'"},
        {"{\"model\":\"j\",\"files\":{\"a\":\"sha256:../../x\"}}", "files['a']"},
        {"{\"model\":\"j\",\"from\":\"json:v1\",\"system\":7}", "'system' must be"},
        {"{\"model\":\"j\",\"from\":\"json:v1\",\"messages\":[{\"role\":\"x\","
         "\"content\":\"y\"}]}",
         "'messages' must be"},
        {"{\"model\":\"j\",\"from\":\"json:v1\",\"parameters\":{\"bogus\":1}}",
         "unknown parameter 'bogus'"},
        {"{\"model\":\"j\",\"from\":\"json:v1\",\"parameters\":{\"top_k\":{}}}", "wrong type"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum llem_err rc = store_create_json(s, bad[i].req, strlen(bad[i].req), NULL, &eb);
        if (rc != LLEM_EINVAL || !strstr(eb.msg, bad[i].msg) || strstr(eb.msg, "Modelfile line")) {
            fprintf(stderr, "bad request %zu: rc %d '%s' (want '%s')\n", i, (int)rc, eb.msg,
                    bad[i].msg);
            CHECK(0);
        }
    }
    CHECK(store_resolve(s, "j", &m, &eb) == LLEM_ENOTFOUND);
    const char *names[] = {"json:v1", "json:v2", "json:v3"};
    for (size_t i = 0; i < 3; i++) {
        CHECK_OK(store_delete(s, names[i], &eb), &eb);
    }
    CHECK(!store_blob_has(s, dg));
}

static void test_from_dir_and_errors(void)
{
    struct llem_errbuf eb = {0};
    struct prog pr = {0};
    char dir[600], link[700], src[2200];
    snprintf(dir, sizeof(dir), "%s/weights", sandbox);
    CHECK_OK(fs_mkdir_p(dir, 0755, &eb), &eb);
    snprintf(link, sizeof(link), "%s/only.gguf", dir);
    snprintf(src, sizeof(src), "%s/qwen2-tiny-Q8_0.gguf", models);
    CHECK(symlink(src, link) == 0);
    char mf[800];
    snprintf(mf, sizeof(mf), "# from a folder\nFROM %s\n", dir);
    CHECK_OK(create("qwen2", mf, &pr, &eb), &eb);
    snprintf(link, sizeof(link), "%s/second.gguf", dir);
    CHECK(symlink(src, link) == 0);
    CHECK(create("qwen2b", mf, &pr, &eb) == LLEM_EINVAL);
    CHECK(strstr(eb.msg, "line 2") && strstr(eb.msg, "2 .gguf files"));

    static const struct {
        const char *mf, *msg;
        enum llem_err rc;
    } cases[] = {
        {"\nFROM ./missing.gguf\n", "line 2: FROM ./missing.gguf: no such file", LLEM_ENOTFOUND},
        {"FROM nosuchmodel:v9\n", "line 1: FROM nosuchmodel:v9", LLEM_ENOTFOUND},
        {"FROM README.md\n", "line 1:", LLEM_EFORMAT},
        {"FROM tiny:q4\nADAPTER ./nope.gguf\n", "line 2: ADAPTER ./nope.gguf", LLEM_ENOTFOUND},
        {"FROM tiny:q4\nPARAMETER bogus 1\n", "line 2: unknown parameter", LLEM_EINVAL},
        {"FROM tiny:q4\nTEMPLATE \"\"\"x\n", "line 2: unterminated", LLEM_EINVAL},
        {"FROM llama-tiny-Q4_0.gguf\nFROM qwen2-tiny-Q8_0.gguf\n",
         "line 2: FROM "
         "qwen2-tiny-Q8_0.gguf: a second model",
         LLEM_EINVAL},
        {"FROM tiny:q4\nFROM other:v1\n", "line 2: FROM other:v1: no such file", LLEM_ENOTFOUND},
        {"FROM @sha256:00000000000000000000000000000000000000000000000000000000000000ff\n",
         "is not in the store", LLEM_ENOTFOUND},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum llem_err rc = create("bad", cases[i].mf, &pr, &eb);
        if (rc != cases[i].rc || !strstr(eb.msg, cases[i].msg)) {
            fprintf(stderr, "case %zu: rc %d, message '%s' (want '%s')\n", i, (int)rc, eb.msg,
                    cases[i].msg);
            CHECK(0);
        }
        struct store_model *m = NULL;
        CHECK(store_resolve(s, "bad", &m, &eb) == LLEM_ENOTFOUND); // nothing half-created
    }
    // Quantize: no quantizer, or a source that is already quantized.
    struct store_create_opts o = {.base_dir = models, .quantize = "Q4_0"};
    CHECK(store_create(s, "bad", "FROM llama-tiny-F16.gguf\n", &o, &eb) == LLEM_EUNSUPPORTED);
    // Cancel from the progress callback: no manifest.
    pr = (struct prog){.cancel_at = 2};
    CHECK(create("canceled", "FROM tiny:q4\nSYSTEM x\n", &pr, &eb) == LLEM_ECANCELED);
    struct store_model *m = NULL;
    CHECK(store_resolve(s, "canceled", &m, &eb) == LLEM_ENOTFOUND);
}

// store_quantize_fn through the llem binary (the test links only llem_store).
static enum llem_err quantize_with_cli(void *ctx, const char *src, const char *dst,
                                       const char *type, store_progress_fn progress, void *pctx,
                                       struct llem_errbuf *eb)
{
    (void)progress, (void)pctx;
    const char *llem = ctx;
    char *argv[] = {(char *)llem, "quantize",  (char *)src, (char *)dst,
                    (char *)type, "--threads", "2",         NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, llem, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        return llem_errf(eb, LLEM_EIO, "llem quantize failed");
    }
    return LLEM_OK;
}

static void test_quantize(void)
{
    const char *llem = getenv("LLEM");
    if (!llem || access(llem, X_OK) != 0) {
        fprintf(stderr, "note: $LLEM not built; quantize check skipped\n");
        return;
    }
    struct llem_errbuf eb = {0};
    struct prog pr = {0};
    struct store_create_opts o = {.base_dir = models,
                                  .quantize = "Q4_0",
                                  .quantize_fn = quantize_with_cli,
                                  .quantize_ctx = (void *)llem,
                                  .progress = on_progress,
                                  .progress_ctx = &pr};
    CHECK_OK(store_create(s, "tiny:f16-q4", "FROM llama-tiny-F16.gguf\n", &o, &eb), &eb);
    CHECK(pr.saw_quantize);
    struct store_model *m = NULL;
    CHECK_OK(store_resolve(s, "tiny:f16-q4", &m, &eb), &eb);
    if (!m) {
        return;
    }
    CHECK_EQ_STR(m->details.quantization_level, "Q4_0");
    struct gguf_file *f = NULL;
    CHECK_OK(gguf_open(&f, m->model_path, NULL, &eb), &eb);
    if (f) {
        uint32_t ft = 0;
        CHECK(gguf_get_u32(f, "general.file_type", &ft) && ft == 2);
        int64_t t = gguf_find_tensor(f, "blk.0.attn_q.weight");
        CHECK(t >= 0 && gguf_tensor(f, t)->type == GGML_TYPE_Q4_0);
        CHECK(gguf_tensor_data(f, t) != NULL);
        CHECK_EQ_I64(gguf_file_size(f), 1457728); // llama-quantize's Q4_0 of this model
        gguf_close(f);
    }
    // The F16 copy is not referenced by any manifest and was pruned.
    char src[2200], dg[STORE_DIGEST_BYTES];
    snprintf(src, sizeof(src), "%s/llama-tiny-F16.gguf", models);
    CHECK_OK(store_hash_file(src, dg, NULL, &eb), &eb);
    CHECK(!store_blob_has(s, dg));
    // An already-quantized source is refused.
    CHECK(store_create(s, "bad", "FROM tiny:f16-q4\n", &o, &eb) == LLEM_EUNSUPPORTED);
    CHECK(strstr(eb.msg, "only F32/F16/BF16") != NULL);
    store_model_free(m);
}

static void test_list_after(void)
{
    struct llem_errbuf eb = {0};
    struct store_entry *e = NULL;
    size_t n = 0;
    CHECK_OK(store_list(s, &e, &n, &eb), &eb);
    CHECK(n >= 4);
    for (size_t i = 0; i + 1 < n; i++) {
        CHECK(e[i].modified >= e[i + 1].modified); // newest first
    }
    store_list_free(e, n);
    // Deleting everything leaves an empty blobs folder (all pruned).
    const char *names[] = {"tiny:q4", "derived", "qwen3:blob", "qwen2", "tiny:f16-q4"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        enum llem_err rc = store_delete(s, names[i], &eb);
        CHECK(rc == LLEM_OK || (rc == LLEM_ENOTFOUND && i == 4));
    }
    char blobs[400];
    snprintf(blobs, sizeof(blobs), "%s/blobs", root);
    CHECK_EQ_I64(st_count_files(blobs), 0);
}

int main(void)
{
    char probe[1024];
    test_shared_path(probe, sizeof(probe), "models/llama-tiny-F16.gguf");
    snprintf(models, sizeof(models), "%s", probe);
    *strrchr(models, '/') = '\0';
    char *abs = realpath(models, NULL); // base_dir absolute, whatever LLEM_SHARED was
    if (abs) {
        snprintf(models, sizeof(models), "%s", abs);
        free(abs); // realpath's buffer comes from libc
    }
    st_mkdtemp(sandbox, sizeof(sandbox), "create");
    snprintf(root, sizeof(root), "%s/store", sandbox);
    struct llem_errbuf eb = {0};
    CHECK_OK(store_open(&s, &(struct store_opts){.root = root}, &eb), &eb);
    if (!s) {
        return 1;
    }
    RUN_TEST(test_from_file);
    RUN_TEST(test_from_model_and_blob);
    RUN_TEST(test_json_request);
    RUN_TEST(test_from_dir_and_errors);
    RUN_TEST(test_quantize);
    RUN_TEST(test_list_after);
    store_close(s);
    st_rmrf(sandbox);
    return TEST_EXIT();
}
