// tests/unit/store_names.c: model-name parsing and strict validation. Valid names get Ollama's
// defaults and display forms; every path-traversal shape, absolute path, NUL/backslash, over-long
// part and malformed digest is refused by the parser and by every store function that takes a
// name or digest, and nothing is written outside the store root.
#include "base/alloc.h"
#include "check.h"
#include "store/store_int.h"
#include "store_test.h"

static void test_valid(void)
{
    static const struct {
        const char *in, *host, *ns, *model, *tag, *disp;
    } cases[] = {
        {"llama3.2", "registry.ollama.ai", "library", "llama3.2", "latest", "llama3.2:latest"},
        {"llama3.2:1b", "registry.ollama.ai", "library", "llama3.2", "1b", "llama3.2:1b"},
        {"me/m:v1", "registry.ollama.ai", "me", "m", "v1", "me/m:v1"},
        {"hf.co/bartowski/Qwen2-GGUF:Q4_K_M", "hf.co", "bartowski", "Qwen2-GGUF", "Q4_K_M",
         "hf.co/bartowski/Qwen2-GGUF:Q4_K_M"},
        {"localhost:5000/ns/m", "localhost:5000", "ns", "m", "latest",
         "localhost:5000/ns/m:latest"},
        {"localhost:5000/ns/m:t", "localhost:5000", "ns", "m", "t", "localhost:5000/ns/m:t"},
        {"https://example.com/a/b:c", "example.com", "a", "b", "c", "example.com/a/b:c"},
        {"registry.ollama.ai/library/x:y", "registry.ollama.ai", "library", "x", "y", "x:y"},
        {"_a/b_c-d.e:f_g-h.i", "registry.ollama.ai", "_a", "b_c-d.e", "f_g-h.i",
         "_a/b_c-d.e:f_g-h.i"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct store_name n;
        struct llem_errbuf eb = {0};
        CHECK_OK(store_name_parse(cases[i].in, &n, &eb), &eb);
        CHECK_EQ_STR(n.host, cases[i].host);
        CHECK_EQ_STR(n.ns, cases[i].ns);
        CHECK_EQ_STR(n.model, cases[i].model);
        CHECK_EQ_STR(n.tag, cases[i].tag);
        char d[600];
        store_name_display(&n, d, sizeof(d));
        CHECK_EQ_STR(d, cases[i].disp);
    }
    struct store_name a, b;
    CHECK(store_name_parse("Llama3:Latest", &a, NULL) == LLEM_OK);
    CHECK(store_name_parse("registry.ollama.ai/library/llama3", &b, NULL) == LLEM_OK);
    CHECK(store_name_equal(&a, &b));
    CHECK(store_name_parse("http://h.io/a/b", &a, NULL) == LLEM_OK && a.insecure_scheme);
    // 80-byte parts are the maximum and still fine.
    char p80[200];
    memset(p80, 'a', 80);
    p80[80] = '\0';
    CHECK(store_name_parse(p80, &a, NULL) == LLEM_OK);
}

static char long_part[400], long_ns[400], long_tag[400], long_host[600];

static const char *const invalid[] = {
    "",
    "../../etc/passwd",
    "a/../../b",
    "..",
    "../x",
    "x/..",
    "x:..",
    "/etc/passwd",
    "/abs/path:tag",
    "a/b/c/d",
    "a//b",
    "a/b/",
    "/a",
    "a:",
    ":tag",
    "a:b:c/d",
    "a\\b",
    "..\\..\\x",
    "a/.hidden",
    ".x",
    "-x",
    "a/-b",
    "x:.t",
    "x:-t",
    "x:t/y",
    "a b",
    "a\tb",
    "a\nb",
    "a..b",
    "x:a..b",
    "h..o/n/m",
    "ns/m@sha256:0000",
    "ftp://h/a/b",
    "a%2e%2e/b",
    "a/%2e%2e",
    "~/x",
    "a;rm -rf",
    "x:t:u",
    "é",
    long_part,
    long_ns,
    long_tag,
    long_host,
};

static void test_invalid(void)
{
    memset(long_part, 'a', 300);
    snprintf(long_ns, sizeof(long_ns), "%.*s/m", 81, long_part);
    snprintf(long_tag, sizeof(long_tag), "m:%.*s", 81, long_part);
    char h[400];
    memset(h, 'h', 351);
    h[351] = '\0';
    snprintf(long_host, sizeof(long_host), "%s/n/m", h);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        struct store_name n;
        struct llem_errbuf eb = {0};
        enum llem_err rc = store_name_parse(invalid[i], &n, &eb);
        if (rc != LLEM_EINVAL) {
            fprintf(stderr, "accepted invalid name '%s'\n", invalid[i]);
        }
        CHECK(rc == LLEM_EINVAL);
        CHECK(strstr(eb.msg, "invalid model name") != NULL);
    }
    // A NUL inside the buffer ends the C string: "a\0/../../x" is just "a"; the parser never
    // sees the rest. Embedded NUL in JSON input is the server's job (cJSON stops there too).
    struct store_name n;
    CHECK(store_name_parse(NULL, &n, NULL) == LLEM_EINVAL);
}

static void test_digests(void)
{
    const char *good = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    CHECK(store_digest_valid(good));
    static const char *const bad[] = {
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",   // 63
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", // 65
        "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",  // upper
        "sha256:../../../../etc/passwd0123456789abcdef0123456789abcdef0123456789a",
        "sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "sha256:/123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "",
        "sha256:",
        "sha256-",
    };
    char out[STORE_DIGEST_BYTES];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(!store_digest_valid(bad[i]));
        if (i != 2) { // upper-case hex is normalized, the rest refused
            CHECK(store_digest_normalize(bad[i], out, NULL) == LLEM_EINVAL);
        }
    }
    CHECK(store_digest_normalize(bad[2], out, NULL) == LLEM_OK);
    CHECK(store_digest_valid(out));
    CHECK(store_digest_normalize(
              "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", out,
              NULL) == LLEM_OK);
    CHECK_EQ_STR(out, good);
}

static long long empty_reader(void *ctx, void *buf, size_t cap)
{
    (void)ctx, (void)buf, (void)cap;
    return 0;
}

// Every entry point that takes a name or digest refuses the invalid ones and writes nothing
// anywhere (the store sits in a sandbox whose file count must not change).
static void test_every_function_refuses(void)
{
    char sandbox[256], root[300];
    st_mkdtemp(sandbox, sizeof(sandbox), "names");
    snprintf(root, sizeof(root), "%s/store", sandbox);
    struct store *s = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(store_open(&s, &(struct store_opts){.root = root}, &eb), &eb);
    if (!s) {
        return;
    }
    int before = st_count_files(sandbox);
    char outside[300];
    snprintf(outside, sizeof(outside), "%s/etc/passwd", sandbox);
    const char *mf = "FROM /nonexistent.gguf\n";
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        const char *nm = invalid[i];
        struct store_model *m = NULL;
        CHECK(store_resolve(s, nm, &m, &eb) == LLEM_EINVAL && !m);
        CHECK(store_show(s, nm, &m, &eb) == LLEM_EINVAL);
        CHECK(store_copy(s, nm, "ok", &eb) == LLEM_EINVAL);
        CHECK(store_copy(s, "ok", nm, &eb) == LLEM_EINVAL);
        CHECK(store_delete(s, nm, &eb) == LLEM_EINVAL);
        CHECK(store_create(s, nm, mf, NULL, &eb) == LLEM_EINVAL);
        struct store_registry_opts ro = {.insecure = true, .base_url = "http://127.0.0.1:9"};
        CHECK(store_pull(s, nm, &ro, &eb) == LLEM_EINVAL);
        CHECK(store_push(s, nm, &ro, &eb) == LLEM_EINVAL);
        char *url = NULL;
        CHECK(store_registry_manifest_url(nm, &ro, &url, &eb) == LLEM_EINVAL && !url);
    }
    static const char *const bad_digests[] = {
        "../../etc/passwd",
        "sha256:../../../etc/passwd",
        "sha256-../x",
        "/etc/passwd",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd/f",
        "",
    };
    for (size_t i = 0; i < sizeof(bad_digests) / sizeof(bad_digests[0]); i++) {
        const char *d = bad_digests[i];
        char *p = NULL;
        struct store_blob_writer *w = NULL;
        CHECK(!store_blob_has(s, d));
        CHECK(store_blob_path(s, d, &p, &eb) == LLEM_EINVAL && !p);
        CHECK(store_blob_writer_new(s, d, &w, &eb) == LLEM_EINVAL && !w);
        CHECK(store_blob_write(s, d, empty_reader, NULL, &eb) == LLEM_EINVAL);
    }
    // FROM "@<bad digest>" is refused too.
    CHECK(store_create(s, "ok", "FROM @sha256:../../etc/passwd\n", NULL, &eb) == LLEM_EINVAL);
    CHECK(strstr(eb.msg, "line 1") != NULL);
    CHECK_EQ_I64(st_count_files(sandbox), before);
    struct stat st;
    CHECK(stat(outside, &st) != 0);
    store_close(s);
    st_rmrf(sandbox);
}

static void test_urls(void)
{
    struct llem_errbuf eb = {0};
    char *u = NULL;
    struct store_registry_opts o = {0};
    unsetenv("LLEM_REGISTRY");
    CHECK_OK(store_registry_manifest_url("llama3.2", &o, &u, &eb), &eb);
    CHECK_EQ_STR(u, "https://registry.ollama.ai/v2/library/llama3.2/manifests/latest");
    llem_free(u);
    CHECK_OK(store_registry_manifest_url("hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M", &o, &u, &eb),
             &eb);
    CHECK_EQ_STR(u, "https://hf.co/v2/bartowski/Llama-3.2-1B-GGUF/manifests/Q4_K_M");
    llem_free(u);
    CHECK_OK(store_registry_manifest_url("huggingface.co/u/r", &o, &u, &eb), &eb);
    CHECK_EQ_STR(u, "https://hf.co/v2/u/r/manifests/latest");
    llem_free(u);
    // Plain HTTP needs insecure, through the name or a base URL.
    CHECK(store_registry_manifest_url("http://h.io/a/b", &o, &u, &eb) == LLEM_EINVAL);
    o.base_url = "http://127.0.0.1:5000/";
    CHECK(store_registry_manifest_url("a/b:c", &o, &u, &eb) == LLEM_EINVAL);
    o.insecure = true;
    CHECK_OK(store_registry_manifest_url("a/b:c", &o, &u, &eb), &eb);
    CHECK_EQ_STR(u, "http://127.0.0.1:5000/v2/a/b/manifests/c");
    llem_free(u);
    o.base_url = NULL;
    // --insecure alone means plain HTTP to the name's own host, as Ollama does.
    CHECK_OK(store_registry_manifest_url("localhost:5000/a/b", &o, &u, &eb), &eb);
    CHECK_EQ_STR(u, "http://localhost:5000/v2/a/b/manifests/latest");
    llem_free(u);
    setenv("LLEM_REGISTRY", "http://127.0.0.1:5001", 1);
    CHECK_OK(store_registry_manifest_url("x", &o, &u, &eb), &eb);
    CHECK_EQ_STR(u, "http://127.0.0.1:5001/v2/library/x/manifests/latest");
    llem_free(u);
    unsetenv("LLEM_REGISTRY");

    CHECK_OK(
        store_hf_file_url("TheBloke", "Llama-2-7B-GGUF", "llama-2-7b.Q4_K_M.gguf", NULL, &u, &eb),
        &eb);
    CHECK_EQ_STR(u, "https://huggingface.co/TheBloke/Llama-2-7B-GGUF/resolve/main/"
                    "llama-2-7b.Q4_K_M.gguf");
    llem_free(u);
    CHECK_OK(store_hf_file_url("u", "r", "sub/m.gguf", "v1.0", &u, &eb), &eb);
    CHECK_EQ_STR(u, "https://huggingface.co/u/r/resolve/v1.0/sub/m.gguf");
    llem_free(u);
    static const char *const bad_files[] = {"../x.gguf", "a/../b.gguf", "/abs.gguf", "x.bin",
                                            "a//b.gguf", ".gguf",       "a b.gguf",  "x.gguf/"};
    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        CHECK(store_hf_file_url("u", "r", bad_files[i], NULL, &u, &eb) == LLEM_EINVAL && !u);
    }
    CHECK(store_hf_file_url("..", "r", "x.gguf", NULL, &u, &eb) == LLEM_EINVAL);
    CHECK(store_hf_file_url("u", "r/x", "x.gguf", NULL, &u, &eb) == LLEM_EINVAL);
    CHECK(store_hf_file_url("u", "r", "x.gguf", "../main", &u, &eb) == LLEM_EINVAL);
}

static void test_auth_and_location(void)
{
    struct store_auth_challenge c;
    CHECK(store_auth_parse("Bearer realm=\"https://auth.io/token\",service=\"registry.io\","
                           "scope=\"repository:a/b:pull,push\"",
                           &c) == LLEM_OK);
    CHECK_EQ_STR(c.scheme, "Bearer");
    CHECK_EQ_STR(c.realm, "https://auth.io/token");
    CHECK_EQ_STR(c.service, "registry.io");
    CHECK_EQ_STR(c.scope, "repository:a/b:pull,push");
    store_auth_deinit(&c);
    CHECK(store_auth_parse("Basic realm=x", &c) == LLEM_OK);
    CHECK_EQ_STR(c.scheme, "Basic");
    CHECK_EQ_STR(c.realm, "x");
    store_auth_deinit(&c);
    CHECK(store_auth_parse("Bearer realm=\"unterminated", &c) == LLEM_EFORMAT);
    CHECK(store_auth_parse("", &c) == LLEM_EFORMAT);
    char *u = store_url_resolve("http://127.0.0.1:5000", "/v2/a/b/blobs/uploads/x?_state=1");
    CHECK_EQ_STR(u, "http://127.0.0.1:5000/v2/a/b/blobs/uploads/x?_state=1");
    llem_free(u);
    u = store_url_resolve("https://r.io", "https://cdn.io/blob");
    CHECK_EQ_STR(u, "https://cdn.io/blob");
    llem_free(u);
    CHECK(store_url_resolve("https://r.io", "relative/x") == NULL);
}

int main(void)
{
    RUN_TEST(test_valid);
    RUN_TEST(test_invalid);
    RUN_TEST(test_digests);
    RUN_TEST(test_every_function_refuses);
    RUN_TEST(test_urls);
    RUN_TEST(test_auth_and_location);
    return TEST_EXIT();
}
