// tests/unit/store_manifest.c: manifests (parse/serialize round trip, malformed input refused
// with the field named), and a store in Ollama's layout made here from ../shared/models (as
// Ollama would have written it) that llem lists, resolves (case-insensitively), shows, copies
// and deletes, both as its own root and as a read-only second store.
#include "base/alloc.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "check.h"
#include "store/store_int.h"
#include "store_test.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void test_round_trip(void)
{
    const char *json =
        "{\"schemaVersion\":2,\"mediaType\":\"" STORE_MT_MANIFEST
        "\",\"config\":{\"mediaType\":\"" STORE_MT_CONFIG "\",\"digest\":\"" D1
        "\",\"size\":123},\"layers\":[{\"mediaType\":\"" STORE_MT_MODEL "\",\"digest\":\"" D2
        "\",\"size\":4000000000,\"from\":\"base:latest\"},"
        "{\"mediaType\":\"" STORE_MT_TEMPLATE "\",\"digest\":\"" D1 "\",\"size\":0}]}";
    struct store_manifest m;
    struct llem_errbuf eb = {0};
    CHECK_OK(store_manifest_parse(json, strlen(json), &m, &eb), &eb);
    CHECK_EQ_I64(m.n_layers, 2);
    CHECK_EQ_I64(m.config.size, 123);
    CHECK_EQ_I64(m.layers[0].size, 4000000000ll);
    CHECK_EQ_STR(m.layers[0].from, "base:latest");
    CHECK(m.layers[1].from == NULL);
    CHECK(store_manifest_find(&m, STORE_MT_TEMPLATE) == &m.layers[1]);
    char *out = store_manifest_to_json(&m);
    CHECK_EQ_STR(out, json); // same field order and spelling as Ollama writes
    struct store_manifest m2;
    CHECK_OK(store_manifest_parse(out, strlen(out), &m2, &eb), &eb);
    CHECK_EQ_I64(m2.n_layers, 2);
    CHECK_EQ_STR(m2.layers[0].digest, D2);
    store_manifest_remove_type(&m2, STORE_MT_MODEL);
    CHECK_EQ_I64(m2.n_layers, 1);
    CHECK_EQ_STR(m2.layers[0].media_type, STORE_MT_TEMPLATE);
    store_manifest_deinit(&m2);
    llem_free(out);
    store_manifest_deinit(&m);
}

static void test_malformed(void)
{
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"", "not valid JSON"},
        {"[]", "schemaVersion"},
        {"{\"schemaVersion\":1,\"config\":{},\"layers\":[]}", "schemaVersion"},
        {"{\"schemaVersion\":2,\"layers\":[]}", "config"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1}}",
         "layers"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:../../x\","
         "\"size\":1},\"layers\":[]}",
         "config digest"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":-1},"
         "\"layers\":[]}",
         "config size"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1.5},"
         "\"layers\":[]}",
         "config size"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1},"
         "\"layers\":[{\"mediaType\":\"a\\nb\",\"digest\":\"" D1 "\",\"size\":1}]}",
         "layer 0"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1},"
         "\"layers\":[{\"mediaType\":\"m\",\"digest\":\"" D1 "\",\"size\":1},3]}",
         "layer 1"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1},"
         "\"layers\":[{\"mediaType\":\"m\",\"digest\":\"" D1 "\",\"size\":1e300}]}",
         "layer 0 size"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct store_manifest m;
        struct llem_errbuf eb = {0};
        CHECK(store_manifest_parse(cases[i].json, strlen(cases[i].json), &m, &eb) == LLEM_EFORMAT);
        if (!strstr(eb.msg, cases[i].msg)) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", i, eb.msg, cases[i].msg);
            CHECK(0);
        }
        CHECK(m.layers == NULL && m.n_layers == 0);
    }
}

// ---- an Ollama-layout store ------------------------------------------------------------------

static void digest_of(const void *data, size_t n, char out[STORE_DIGEST_BYTES])
{
    uint8_t d[SHA256_BYTES];
    char hex[SHA256_HEX_BYTES];
    sha256_oneshot(data, n, d);
    sha256_hex(d, hex);
    snprintf(out, STORE_DIGEST_BYTES, "sha256:%s", hex);
}

// Writes data as blobs/sha256-<hex> under root; returns its digest.
static void put_blob(const char *root, const void *data, size_t n, char dg[STORE_DIGEST_BYTES])
{
    digest_of(data, n, dg);
    char path[1024];
    snprintf(path, sizeof(path), "%s/blobs/sha256-%s", root, dg + 7);
    CHECK(st_write(path, data, n) == 0);
}

// Makes <root>/manifests/registry.ollama.ai/library/<model>/<tag> the way Ollama does.
static void make_ollama_store(const char *root, const char *gguf, const char *model,
                              const char *tag)
{
    char path[1024];
    struct llem_errbuf eb = {0};
    snprintf(path, sizeof(path), "%s/blobs", root);
    CHECK_OK(fs_mkdir_p(path, 0755, &eb), &eb);
    char *w = NULL;
    size_t wn = 0;
    CHECK_OK(fs_read_file(gguf, 64u << 20, &w, &wn, &eb), &eb);
    char dw[STORE_DIGEST_BYTES], dt[STORE_DIGEST_BYTES], dp[STORE_DIGEST_BYTES],
        dc[STORE_DIGEST_BYTES], dl[STORE_DIGEST_BYTES];
    put_blob(root, w, wn, dw);
    const char *tmpl = "{{ .System }}USER: {{ .Prompt }} ASSISTANT:";
    put_blob(root, tmpl, strlen(tmpl), dt);
    const char *params = "{\"stop\":[\"USER:\"],\"temperature\":0.6}";
    put_blob(root, params, strlen(params), dp);
    const char *lic = "MIT-ish test license";
    put_blob(root, lic, strlen(lic), dl);
    const char *cfg = "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":"
                      "[\"llama\"],\"model_type\":\"1.2M\",\"file_type\":\"Q4_0\","
                      "\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                      "\"diff_ids\":[]}}";
    put_blob(root, cfg, strlen(cfg), dc);
    char man[4096];
    int n = snprintf(man, sizeof(man),
                     "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
                     "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":"
                     "\"%s\",\"size\":%zu},{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},"
                     "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},{\"mediaType\":\"%s\","
                     "\"digest\":\"%s\",\"size\":%zu}]}",
                     STORE_MT_MANIFEST, STORE_MT_CONFIG, dc, strlen(cfg), STORE_MT_MODEL, dw, wn,
                     STORE_MT_TEMPLATE, dt, strlen(tmpl), STORE_MT_PARAMS, dp, strlen(params),
                     STORE_MT_LICENSE, dl, strlen(lic));
    snprintf(path, sizeof(path), "%s/manifests/registry.ollama.ai/library/%s", root, model);
    CHECK_OK(fs_mkdir_p(path, 0755, &eb), &eb);
    snprintf(path, sizeof(path), "%s/manifests/registry.ollama.ai/library/%s/%s", root, model, tag);
    CHECK(st_write(path, man, (size_t)n) == 0);
    llem_free(w);
}

static void check_resolved(struct store *s, const char *name, const char *root, bool ro)
{
    struct store_model *m = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(store_resolve(s, name, &m, &eb), &eb);
    if (!m) {
        return;
    }
    CHECK_EQ_STR(m->name, "tiny:latest");
    CHECK(strncmp(m->model_path, root, strlen(root)) == 0);
    struct gguf_file;
    FILE *f = fopen(m->model_path, "rb");
    char magic[4] = {0};
    CHECK(f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0);
    if (f) {
        fclose(f);
    }
    CHECK_EQ_STR(m->template_text, "{{ .System }}USER: {{ .Prompt }} ASSISTANT:");
    CHECK_EQ_STR(m->params_json, "{\"stop\":[\"USER:\"],\"temperature\":0.6}");
    CHECK(m->system_text == NULL && m->adapter_path == NULL);
    CHECK_EQ_I64(m->n_licenses, 1);
    CHECK_EQ_STR(m->details.family, "llama");
    CHECK_EQ_STR(m->details.quantization_level, "Q4_0");
    CHECK_EQ_I64(m->details.n_families, 1);
    CHECK(store_digest_valid(m->digest));
    CHECK(m->read_only == ro);
    CHECK(m->size > 1000000);
    char *mf = store_model_modelfile(m);
    CHECK(mf && strstr(mf, "TEMPLATE \"\"\"{{ .System }}USER:") != NULL);
    CHECK(mf && strstr(mf, "PARAMETER stop USER:\n") != NULL);
    CHECK(mf && strstr(mf, "PARAMETER temperature 0.6\n") != NULL);
    CHECK(mf && strstr(mf, "LICENSE \"\"\"MIT-ish") != NULL);
    // The rendered Modelfile parses back.
    struct store_modelfile p;
    CHECK_OK(store_modelfile_parse(mf, strlen(mf), &p, &eb), &eb);
    store_modelfile_deinit(&p);
    llem_free(mf);
    store_model_free(m);
}

static void test_ollama_store(void)
{
    char gguf[1024];
    test_shared_path(gguf, sizeof(gguf), "models/llama-tiny-Q4_0.gguf");
    char sandbox[256], ollama[300], mine[300];
    st_mkdtemp(sandbox, sizeof(sandbox), "ollama");
    snprintf(ollama, sizeof(ollama), "%s/ollama-models", sandbox);
    snprintf(mine, sizeof(mine), "%s/llem-models", sandbox);
    make_ollama_store(ollama, gguf, "tiny", "latest");
    struct llem_errbuf eb = {0};

    // 1. Ollama's folder as llem's own root.
    struct store *s = NULL;
    CHECK_OK(store_open(&s, &(struct store_opts){.root = ollama, .no_prune = true}, &eb), &eb);
    struct store_entry *e = NULL;
    size_t n = 0;
    CHECK_OK(store_list(s, &e, &n, &eb), &eb);
    CHECK_EQ_I64(n, 1);
    if (n == 1) {
        CHECK_EQ_STR(e[0].name, "tiny:latest");
        CHECK(e[0].size > 1000000);
        CHECK_EQ_STR(e[0].details.family, "llama");
        CHECK_EQ_STR(e[0].details.parameter_size, "1.2M");
        CHECK(!e[0].read_only);
    }
    store_list_free(e, n);
    check_resolved(s, "tiny", ollama, false);
    check_resolved(s, "TINY:Latest", ollama, false);
    check_resolved(s, "registry.ollama.ai/library/tiny:latest", ollama, false);
    struct store_model *m = NULL;
    CHECK(store_resolve(s, "tiny:other", &m, &eb) == LLEM_ENOTFOUND);
    CHECK(strstr(eb.msg, "not found") != NULL);
    store_close(s);

    // 2. Read-only second store: listed and resolved, never written; copy brings blobs over.
    int ollama_files = st_count_files(ollama);
    CHECK_OK(store_open(&s, &(struct store_opts){.root = mine, .ro_root = ollama}, &eb), &eb);
    CHECK_OK(store_list(s, &e, &n, &eb), &eb);
    CHECK_EQ_I64(n, 1);
    CHECK(n == 1 && e[0].read_only);
    store_list_free(e, n);
    check_resolved(s, "tiny", ollama, true);
    CHECK(store_delete(s, "tiny", &eb) == LLEM_ENOTFOUND); // never deletes from Ollama's store
    CHECK_OK(store_copy(s, "tiny", "me/tiny2:v1", &eb), &eb);
    CHECK_OK(store_resolve(s, "me/tiny2:v1", &m, &eb), &eb);
    CHECK(m && strncmp(m->model_path, mine, strlen(mine)) == 0 && !m->read_only);
    store_model_free(m);
    CHECK_OK(store_list(s, &e, &n, &eb), &eb);
    CHECK_EQ_I64(n, 2);
    store_list_free(e, n);
    CHECK_OK(store_delete(s, "ME/Tiny2:V1", &eb), &eb); // case-insensitive match
    char p[600];
    snprintf(p, sizeof(p), "%s/manifests/registry.ollama.ai/me", mine);
    struct stat st;
    CHECK(stat(p, &st) != 0); // empty manifest folders are removed
    snprintf(p, sizeof(p), "%s/blobs", mine);
    CHECK_EQ_I64(st_count_files(p), 0); // pruned
    CHECK_EQ_I64(st_count_files(ollama), ollama_files);
    store_close(s);
    st_rmrf(sandbox);
}

int main(void)
{
    RUN_TEST(test_round_trip);
    RUN_TEST(test_malformed);
    RUN_TEST(test_ollama_store);
    return TEST_EXIT();
}
