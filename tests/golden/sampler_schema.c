// tests/golden/sampler_schema.c: structured output on a random-weight model. For 20 JSON
// schemas of increasing complexity and several seeds, a tiny random model
// (../shared/models/llama-tiny-Q8_0.gguf; qwen2-tiny-F16 too) samples at temperature 1 under
// the grammar (Ollama's sample-then-check shortcut, finish mode once the token budget runs
// low); every output must parse as JSON and validate against its schema with the small
// validator below. Skips visibly without ../shared.
#include <regex.h>

#include <cjson/cJSON.h>

#include "backend/backend.h"
#include "base/alloc.h"
#include "check.h"
#include "model/model.h"
#include "sampler/grammar.h"
#include "sampler/sampler.h"
#include "tokenizer/tokenizer.h"

static const char *const SCHEMAS[20] = {
    "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}},\"required\":[\"ok\"]}",
    "{\"type\":\"string\",\"maxLength\":20}",
    "{\"type\":\"integer\",\"minimum\":0,\"maximum\":100}",
    "{\"enum\":[\"red\",\"green\",\"blue\",42,null]}",
    "{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"maxItems\":5}",
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":30},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150}},"
    "\"required\":[\"name\",\"age\"]}",
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"number\"},"
    "\"c\":{\"type\":\"boolean\"},\"d\":{\"type\":\"null\"}},\"required\":[\"c\"]}",
    "{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"point\"},\"x\":{\"type\":"
    "\"number\"},\"y\":{\"type\":\"number\"}},\"required\":[\"kind\",\"x\",\"y\"]}",
    "{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\",\"c\"]},\"minItems\":2,\"maxItems\":4}",
    "{\"type\":\"object\",\"properties\":{\"address\":{\"type\":\"object\",\"properties\":{"
    "\"street\":{\"type\":\"string\",\"maxLength\":40},\"city\":{\"type\":\"string\"},\"zip\":{"
    "\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"}},\"required\":[\"city\",\"zip\"]}},"
    "\"required\":[\"address\"]}",
    "{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\",\"pattern\":"
    "\"^[A-Z]{3}-[0-9]{2,4}$\"},\"email\":{\"type\":\"string\",\"format\":\"email\"},\"tag\":{"
    "\"type\":\"string\",\"pattern\":\"x+(y|z)\"}},\"required\":[\"code\",\"email\",\"tag\"]}",
    "{\"type\":\"object\",\"properties\":{\"day\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"at\":{\"type\":\"string\",\"format\":\"date-time\"}},\"required\":[\"day\",\"at\"]}",
    "{\"type\":\"object\",\"properties\":{\"v\":{\"anyOf\":[{\"type\":\"string\",\"maxLength\":8},"
    "{\"type\":\"integer\"},{\"type\":\"null\"}]}},\"required\":[\"v\"]}",
    "{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"shape\":{\"const\":\"circle\"},\"r\":{"
    "\"type\":\"number\"}},\"required\":[\"shape\",\"r\"]},{\"type\":\"object\",\"properties\":{"
    "\"shape\":{\"const\":\"square\"},\"side\":{\"type\":\"integer\",\"minimum\":1}},"
    "\"required\":[\"shape\",\"side\"]}]}",
    "{\"$defs\":{\"person\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\","
    "\"maxLength\":12},\"born\":{\"type\":\"integer\",\"minimum\":1900,\"maximum\":2025}},"
    "\"required\":[\"name\"]}},\"type\":\"object\",\"properties\":{\"author\":{\"$ref\":"
    "\"#/$defs/person\"},\"editor\":{\"$ref\":\"#/$defs/person\"}},\"required\":[\"author\"]}",
    "{\"$ref\":\"#/$defs/node\",\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"value\":"
    "{\"type\":\"integer\"},\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/"
    "node\"},\"maxItems\":3}},\"required\":[\"value\"]}}}",
    "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":[\"string\",\"null\"],\"maxLength\":6},"
    "\"n\":{\"type\":\"integer\",\"nullable\":true},\"l\":{\"type\":\"array\",\"items\":{\"type\":"
    "[\"boolean\",\"integer\"]}}},\"required\":[\"s\",\"n\",\"l\"]}",
    "{\"allOf\":[{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\",\"minimum\":1}},"
    "\"required\":[\"id\"]},{\"type\":\"object\",\"properties\":{\"label\":{\"enum\":[\"x\",\"y\"]}"
    "},\"required\":[\"label\"]}]}",
    "{\"type\":\"object\",\"properties\":{\"row\":{\"type\":\"array\",\"prefixItems\":[{\"type\":"
    "\"string\",\"maxLength\":5},{\"type\":\"integer\"},{\"type\":\"boolean\"}],\"items\":false,"
    "\"minItems\":2},\"counts\":{\"type\":\"object\",\"additionalProperties\":{\"type\":"
    "\"integer\",\"minimum\":0}}},\"required\":[\"row\",\"counts\"]}",
    "{\"type\":\"object\",\"properties\":{\"tool\":{\"enum\":[\"search\",\"fetch\"]},\"args\":{"
    "\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\",\"minLength\":2,"
    "\"maxLength\":24},\"filters\":{\"type\":\"array\",\"maxItems\":3,\"items\":{\"type\":"
    "\"object\",\"properties\":{\"field\":{\"enum\":[\"date\",\"lang\"]},\"op\":{\"enum\":[\"eq\","
    "\"lt\",\"gt\"]},\"value\":{\"anyOf\":[{\"type\":\"string\",\"maxLength\":10},{\"type\":"
    "\"number\"}]}},\"required\":[\"field\",\"op\",\"value\"]}},\"limit\":{\"type\":\"integer\","
    "\"minimum\":1,\"maximum\":50},\"when\":{\"type\":\"string\",\"format\":\"date\"}},"
    "\"required\":[\"query\"]},\"confidence\":{\"type\":\"number\"},\"notes\":{\"type\":\"array\","
    "\"items\":{\"type\":\"string\",\"maxLength\":16}}},\"required\":[\"tool\",\"args\","
    "\"confidence\"]}",
};

// ---- a small validator for the subset we generate --------------------------------------------

static int64_t utf8_len(const char *s)
{
    int64_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

static bool regex_ok(const char *pat, const char *s)
{
    regex_t re;
    if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0) {
        return false;
    }
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static bool validate(const cJSON *root, const cJSON *sch, const cJSON *v);

static bool type_ok(const cJSON *root, const cJSON *sch, const char *t, const cJSON *v)
{
    (void)root;
    if (strcmp(t, "null") == 0) {
        return cJSON_IsNull(v);
    }
    if (strcmp(t, "boolean") == 0) {
        return cJSON_IsBool(v);
    }
    if (strcmp(t, "number") == 0 || strcmp(t, "integer") == 0) {
        if (!cJSON_IsNumber(v)) {
            return false;
        }
        double x = v->valuedouble;
        if (t[0] == 'i' && x != (double)(int64_t)x) {
            return false;
        }
        const cJSON *mn = cJSON_GetObjectItem(sch, "minimum"), *mx = cJSON_GetObjectItem(sch, "maximum");
        return (!mn || x >= mn->valuedouble) && (!mx || x <= mx->valuedouble);
    }
    if (strcmp(t, "string") == 0) {
        if (!cJSON_IsString(v)) {
            return false;
        }
        const char *s = v->valuestring;
        const cJSON *mn = cJSON_GetObjectItem(sch, "minLength"), *mx = cJSON_GetObjectItem(sch, "maxLength");
        const cJSON *pat = cJSON_GetObjectItem(sch, "pattern"), *fmt = cJSON_GetObjectItem(sch, "format");
        if ((mn && utf8_len(s) < mn->valueint) || (mx && utf8_len(s) > mx->valueint)) {
            return false;
        }
        if (pat && !regex_ok(pat->valuestring, s)) {
            return false;
        }
        if (fmt && strcmp(fmt->valuestring, "date") == 0) {
            return regex_ok("^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", s);
        }
        if (fmt && strcmp(fmt->valuestring, "date-time") == 0) {
            return regex_ok("^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3])"
                            ":[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$", s);
        }
        if (fmt && strcmp(fmt->valuestring, "email") == 0) {
            return regex_ok("^[^@]+@[a-zA-Z0-9-]+(\\.[a-zA-Z0-9-]+)+$", s);
        }
        return true;
    }
    if (strcmp(t, "array") == 0) {
        if (!cJSON_IsArray(v)) {
            return false;
        }
        int n = cJSON_GetArraySize(v);
        const cJSON *mn = cJSON_GetObjectItem(sch, "minItems"), *mx = cJSON_GetObjectItem(sch, "maxItems");
        if ((mn && n < mn->valueint) || (mx && n > mx->valueint)) {
            return false;
        }
        const cJSON *prefix = cJSON_GetObjectItem(sch, "prefixItems");
        const cJSON *items = cJSON_GetObjectItem(sch, "items");
        int np = prefix ? cJSON_GetArraySize(prefix) : 0;
        for (int i = 0; i < n; i++) {
            const cJSON *s = i < np ? cJSON_GetArrayItem(prefix, i) : items;
            if (s && !validate(root, s, cJSON_GetArrayItem(v, i))) {
                return false;
            }
        }
        return true;
    }
    if (strcmp(t, "object") == 0) {
        if (!cJSON_IsObject(v)) {
            return false;
        }
        const cJSON *props = cJSON_GetObjectItem(sch, "properties");
        const cJSON *addl = cJSON_GetObjectItem(sch, "additionalProperties");
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(sch, "required"))
        {
            if (!cJSON_GetObjectItemCaseSensitive(v, r->valuestring)) {
                return false;
            }
        }
        const cJSON *kv;
        cJSON_ArrayForEach(kv, v)
        {
            const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, kv->string);
            if (!ps && !addl) {
                return false; // our grammar never adds undeclared keys
            }
            if (!validate(root, ps ? ps : addl, kv)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

static bool validate(const cJSON *root, const cJSON *sch, const cJSON *v)
{
    if (cJSON_IsTrue(sch)) {
        return true;
    }
    if (cJSON_IsFalse(sch)) {
        return false;
    }
    const cJSON *ref = cJSON_GetObjectItem(sch, "$ref");
    if (ref) { // "#/$defs/NAME" only
        const char *name = strrchr(ref->valuestring, '/') + 1;
        return validate(root, cJSON_GetObjectItem(cJSON_GetObjectItem(root, "$defs"), name), v);
    }
    const cJSON *c = cJSON_GetObjectItem(sch, "const");
    if (c && !cJSON_Compare(c, v, true)) {
        return false;
    }
    const cJSON *en = cJSON_GetObjectItem(sch, "enum"), *x;
    if (en) {
        bool any = false;
        cJSON_ArrayForEach(x, en)
        {
            any |= cJSON_Compare(x, v, true);
        }
        if (!any) {
            return false;
        }
    }
    const cJSON *any_of = cJSON_GetObjectItem(sch, "anyOf");
    const cJSON *one_of = cJSON_GetObjectItem(sch, "oneOf");
    const cJSON *all_of = cJSON_GetObjectItem(sch, "allOf");
    if (any_of || one_of) {
        int n = 0;
        const cJSON *list = any_of ? any_of : one_of;
        cJSON_ArrayForEach(x, list)
        {
            n += validate(root, x, v);
        }
        if (any_of ? n == 0 : n != 1) {
            return false;
        }
    }
    if (all_of) { // our allOf parts are objects: merged key sets, each part's own checks
        cJSON_ArrayForEach(x, all_of)
        {
            const cJSON *r;
            cJSON_ArrayForEach(r, cJSON_GetObjectItem(x, "required"))
            {
                if (!cJSON_GetObjectItemCaseSensitive(v, r->valuestring)) {
                    return false;
                }
            }
            const cJSON *p;
            cJSON_ArrayForEach(p, cJSON_GetObjectItem(x, "properties"))
            {
                const cJSON *val = cJSON_GetObjectItemCaseSensitive(v, p->string);
                if (val && !validate(root, p, val)) {
                    return false;
                }
            }
        }
    }
    const cJSON *type = cJSON_GetObjectItem(sch, "type");
    if (cJSON_IsTrue(cJSON_GetObjectItem(sch, "nullable")) && cJSON_IsNull(v)) {
        return true;
    }
    if (cJSON_IsString(type)) {
        return type_ok(root, sch, type->valuestring, v);
    }
    if (cJSON_IsArray(type)) {
        cJSON_ArrayForEach(x, type)
        {
            if (type_ok(root, sch, x->valuestring, v)) {
                return true;
            }
        }
        return false;
    }
    return true;
}

static void test_validator_can_fail(void)
{
    cJSON *s = cJSON_Parse(SCHEMAS[5]);
    cJSON *good = cJSON_Parse("{\"name\":\"x\",\"age\":3}");
    cJSON *bad1 = cJSON_Parse("{\"name\":\"x\",\"age\":300}");
    cJSON *bad2 = cJSON_Parse("{\"name\":\"x\",\"age\":3,\"z\":1}");
    CHECK(validate(s, s, good));
    CHECK(!validate(s, s, bad1));
    CHECK(!validate(s, s, bad2));
    cJSON_Delete(s);
    cJSON_Delete(good);
    cJSON_Delete(bad1);
    cJSON_Delete(bad2);
    s = cJSON_Parse(SCHEMAS[13]);
    good = cJSON_Parse("{\"shape\":\"circle\",\"r\":1}");
    bad1 = cJSON_Parse("{\"shape\":\"square\",\"side\":0}");
    CHECK(validate(s, s, good));
    CHECK(!validate(s, s, bad1));
    cJSON_Delete(s);
    cJSON_Delete(good);
    cJSON_Delete(bad1);
}

// ---- generation ----------------------------------------------------------------------------

static size_t piece_fn(void *user, int32_t id, char *buf, size_t cap, bool *eog)
{
    const struct tok_vocab *v = user;
    *eog = tok_is_eog(v, id);
    return tok_piece(v, id, false, buf, cap);
}

// Decodes one token at position pos of sequence 0 (its logits become row 0).
static enum llem_err cli_like_decode(struct model_ctx *ctx, llem_token tok, llem_pos pos,
                                     struct llem_errbuf *eb)
{
    llem_seq seq = 0;
    int8_t out = 1;
    struct ubatch ub = {.n_tokens = 1, .tokens = &tok, .pos = &pos, .seq = &seq, .output = &out};
    return model_ctx_decode(ctx, &ub, eb);
}

static int n_outputs, n_valid;

static void run_model(const char *rel, int n_seeds)
{
    char path[512];
    test_shared_path(path, sizeof path, rel);
    struct llem_errbuf eb = {0};
    struct backend *be = NULL;
    struct model *m = NULL;
    struct tok_vocab *vocab = NULL;
    struct model_ctx *ctx = NULL;
    struct grammar_vocab *gv = NULL;
    struct backend_params bp = {.n_threads = 1};
    CHECK_OK(backend_new("cpu", &bp, &be, &eb), &eb);
    CHECK_OK(model_load(path, NULL, be, &m, &eb), &eb);
    if (!m) {
        backend_free(be);
        return;
    }
    CHECK_OK(tok_vocab_load(&vocab, m->gguf, &eb), &eb);
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 64;
    CHECK_OK(model_ctx_new(m, &cp, &ctx, &eb), &eb);
    CHECK_OK(grammar_vocab_new(&gv, tok_n_vocab(vocab), piece_fn, vocab, &eb), &eb);
    const int budget = 256;
    char *piece = llem_malloc(tok_piece_max(vocab) + 8);
    for (int si = 0; si < 20; si++) {
        struct grammar_rules *rules = NULL;
        struct grammar *g = NULL;
        CHECK_OK(grammar_rules_schema(&rules, SCHEMAS[si], strlen(SCHEMAS[si]), &eb), &eb);
        if (!rules) {
            continue;
        }
        CHECK_OK(grammar_new(&g, rules, gv, &eb), &eb);
        grammar_rules_free(rules);
        cJSON *sch = cJSON_Parse(SCHEMAS[si]);
        for (int seed = 1; seed <= n_seeds && g; seed++) {
            struct sampler_params sp = sampler_params_default();
            sp.temperature = 1.0f;
            sp.top_k = 0;
            sp.top_p = 1.0f;
            sp.repeat_penalty = 1.0f;
            sp.seed = seed * 7919 + si;
            struct sampler *smp = NULL;
            CHECK_OK(sampler_new(&smp, &sp, m->hp.n_vocab, cp.n_ctx, &eb), &eb);
            model_ctx_clear(ctx);
            grammar_reset(g);
            llem_token tok = tok_bos(vocab) >= 0 ? tok_bos(vocab) : 0;
            struct strbuf out;
            strbuf_init(&out, 0);
            bool ended = false;
            for (int i = 0; i < budget && smp; i++) {
                if (cli_like_decode(ctx, tok, i, &eb) != LLEM_OK) {
                    CHECK(false);
                    break;
                }
                grammar_set_finish(g, budget - i <= grammar_min_remaining(g) + 4);
                if (grammar_sample(g, smp, model_ctx_logits(ctx, 0), &tok, &eb) != LLEM_OK) {
                    fprintf(stderr, "schema %d seed %d: %s\n", si, seed, eb.msg);
                    CHECK(false);
                    break;
                }
                if (tok_is_eog(vocab, tok)) {
                    ended = true;
                    break;
                }
                size_t n = tok_piece(vocab, tok, false, piece, tok_piece_max(vocab) + 8);
                strbuf_append(&out, piece, n);
            }
            n_outputs++;
            cJSON *j = cJSON_Parse(strbuf_cstr(&out));
            bool ok = ended && j && validate(sch, sch, j);
            n_valid += ok;
            if (!ok || getenv("SCHEMA_SHOW")) {
                fprintf(stderr, "%s schema %d seed %d (%s): %s\n", ok ? "ok" : "INVALID", si, seed,
                        ended ? "ended" : "cut", strbuf_cstr(&out));
            }
            CHECK(ok);
            cJSON_Delete(j);
            strbuf_deinit(&out);
            sampler_free(smp);
        }
        cJSON_Delete(sch);
        grammar_free(g);
    }
    llem_free(piece);
    grammar_vocab_free(gv);
    model_ctx_free(ctx);
    tok_vocab_free(vocab);
    model_free(m);
    backend_free(be);
}

static void test_llama_tiny(void)
{
    run_model("models/llama-tiny-Q8_0.gguf", 3);
}

static void test_qwen2_tiny(void)
{
    run_model("models/qwen2-tiny-F16.gguf", 2);
}

int main(void)
{
    RUN_TEST(test_validator_can_fail);
    RUN_TEST(test_llama_tiny);
    RUN_TEST(test_qwen2_tiny);
    fprintf(stderr, "%d/%d outputs parse and validate\n", n_valid, n_outputs);
    return TEST_EXIT();
}
