// tests/unit/sampler_grammar.c: the grammar engine on a toy vocabulary (every byte, some
// multi-byte JSON-ish pieces, an EOG token and an empty control token): GBNF compile errors,
// byte acceptance, trie filter == per-token check, integer ranges checked exhaustively,
// patterns, UTF-8 classes, schema features and their EUNSUPPORTED errors, the trigger, finish
// mode, and random walks whose outputs must parse as JSON.
#include <cjson/cJSON.h>

#include "base/alloc.h"
#include "base/rng.h"
#include "check.h"
#include "sampler/grammar.h"

#define N_EXTRA 24
static const char *const EXTRA[N_EXTRA] = {
    "{\"", "\":", "\": ", "\",", "\"}", "true", "false", "null", ", \"", "}", "]", "[{",
    "abc", "hello world", "12", "3.5", "\\n", "\\u00e9", "é", "\xe4\xbd\xa0", " ", "\n  ",
    "</think>", "</think>\n\n{",
};
#define TOY_EOG (256 + N_EXTRA)
#define TOY_CTRL (TOY_EOG + 1)
#define TOY_N (TOY_CTRL + 1)

static size_t toy_piece(void *user, int32_t id, char *buf, size_t cap, bool *eog)
{
    (void)user;
    *eog = id == TOY_EOG;
    const char *s = NULL;
    size_t n = 0;
    char one;
    if (id < 256) {
        one = (char)id;
        s = &one;
        n = 1;
    } else if (id < 256 + N_EXTRA) {
        s = EXTRA[id - 256];
        n = strlen(s);
    }
    if (n <= cap && n) {
        memcpy(buf, s, n);
    }
    return n;
}

static struct grammar_vocab *toy_vocab(void)
{
    struct grammar_vocab *v = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(grammar_vocab_new(&v, TOY_N, toy_piece, NULL, &eb), &eb);
    return v;
}

static struct grammar *gbnf(struct grammar_vocab *v, const char *src)
{
    struct grammar_rules *r = NULL;
    struct grammar *g = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(grammar_rules_gbnf(&r, src, strlen(src), NULL, &eb), &eb);
    if (r) {
        CHECK_OK(grammar_new(&g, r, v, &eb), &eb);
    }
    grammar_rules_free(r);
    return g;
}

static struct grammar *schema(struct grammar_vocab *v, const char *src)
{
    struct grammar_rules *r = NULL;
    struct grammar *g = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(grammar_rules_schema(&r, src, strlen(src), &eb), &eb);
    if (r) {
        CHECK_OK(grammar_new(&g, r, v, &eb), &eb);
    }
    grammar_rules_free(r);
    return g;
}

// Whether the whole text is accepted and complete (the grammar is reset first and after).
static bool matches(struct grammar *g, const char *text)
{
    struct llem_errbuf eb = {0};
    grammar_reset(g);
    bool ok = grammar_accept_bytes(g, text, strlen(text), &eb) == LLEM_OK && grammar_is_complete(g);
    grammar_reset(g);
    return ok;
}

static void test_gbnf_errors(void)
{
    static const char *bad[] = {
        "root ::= foo",                 // undefined
        "root ::= root \"a\" | \"b\"",  // left recursion
        "root ::= a\na ::= \"x\"? root", // indirect left recursion through a nullable prefix
        "root ::= \"a",                 // unterminated
        "root ::= [b-a]",               // reversed range
        "root ::= \"a\"{3,1}",          // bad repetition
        "root ::= ( \"a\"",             // missing )
        "root ::= \"a\" root",          // can never finish
        "root ::= \"a\"\nroot ::= \"b\"", // defined twice
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct grammar_rules *r = NULL;
        struct llem_errbuf eb = {0};
        enum llem_err e = grammar_rules_gbnf(&r, bad[i], strlen(bad[i]), NULL, &eb);
        if (e == LLEM_OK) {
            fprintf(stderr, "accepted bad grammar %zu: %s\n", i, bad[i]);
        }
        CHECK(e == LLEM_EINVAL);
        CHECK(r == NULL);
    }
}

static void test_gbnf_match(void)
{
    struct grammar_vocab *v = toy_vocab();
    struct grammar *g = gbnf(v, "root ::= \"a\" [b-d]+ ( \"e\" | x ){0,2}\nx ::= \"\\x41\" # c\n");
    CHECK(matches(g, "ab"));
    CHECK(matches(g, "abdcb"));
    CHECK(matches(g, "abeA"));
    CHECK(matches(g, "abAA"));
    CHECK(!matches(g, "a"));
    CHECK(!matches(g, "abeee"));
    CHECK(!matches(g, "xb"));
    struct llem_errbuf eb = {0};
    CHECK_OK(grammar_accept_bytes(g, "abee", 4, &eb), &eb);
    CHECK(grammar_is_finished(g));
    CHECK_EQ_I64(grammar_min_remaining(g), 0);
    grammar_reset(g);
    CHECK_EQ_I64(grammar_min_remaining(g), 2);
    CHECK(grammar_accept_bytes(g, "b", 1, &eb) == LLEM_EINVAL);
    CHECK_EQ_I64(grammar_min_remaining(g), 2); // unchanged by the failed accept
    grammar_free(g);
    // UTF-8 classes and '.'
    g = gbnf(v, "root ::= [α-ω] [^a-z] .\n");
    CHECK(matches(g, "βXé"));
    CHECK(matches(g, "ω\xe4\xbd\xa0z"));
    CHECK(!matches(g, "aXX"));
    CHECK(!matches(g, "βaX"));
    CHECK(!matches(g, "β\xed\xa0\x80X")); // a surrogate is not a character
    grammar_free(g);
    grammar_vocab_free(v);
}

// The trie filter agrees with per-token checks, and EOG is allowed exactly when complete.
static void check_filter_consistent(struct grammar *g)
{
    float *lg = llem_malloc(TOY_N * sizeof *lg);
    for (int i = 0; i < TOY_N; i++) {
        lg[i] = 0;
    }
    CHECK(grammar_filter(g, lg, NULL, TOY_N));
    int bad = 0;
    for (int32_t id = 0; id < TOY_N; id++) {
        bool a = lg[id] > -INFINITY, b = grammar_allows(g, id);
        bad += a != b;
    }
    CHECK_EQ_I64(bad, 0);
    CHECK((lg[TOY_EOG] > -INFINITY) == grammar_is_complete(g));
    CHECK(lg[TOY_CTRL] == -INFINITY);
    llem_free(lg);
}

// Draws uniformly among allowed tokens until EOG; finish mode near the budget. Returns the text.
static char *random_walk(struct grammar *g, uint64_t seed, int budget, bool check_each)
{
    struct rng r;
    rng_seed(&r, seed);
    float *lg = llem_malloc(TOY_N * sizeof *lg);
    struct strbuf out;
    strbuf_init(&out, 0);
    struct llem_errbuf eb = {0};
    grammar_reset(g);
    for (int step = 0; step < budget; step++) {
        int left = budget - step;
        grammar_set_finish(g, left <= grammar_min_remaining(g) + 2);
        if (check_each) {
            check_filter_consistent(g);
        }
        for (int i = 0; i < TOY_N; i++) {
            lg[i] = 0;
        }
        if (!grammar_filter(g, lg, NULL, TOY_N)) {
            CHECK(false);
            break;
        }
        int n_ok = 0;
        for (int i = 0; i < TOY_N; i++) {
            n_ok += lg[i] > -INFINITY;
        }
        CHECK(n_ok > 0);
        if (n_ok == 0) {
            break;
        }
        int k = (int)rng_bounded(&r, (uint64_t)n_ok), id = 0;
        for (id = 0; id < TOY_N; id++) {
            if (lg[id] > -INFINITY && k-- == 0) {
                break;
            }
        }
        CHECK_OK(grammar_accept(g, id, &eb), &eb);
        if (id == TOY_EOG) {
            break;
        }
        char buf[64];
        bool eog;
        size_t n = toy_piece(NULL, id, buf, sizeof buf, &eog);
        strbuf_append(&out, buf, n);
    }
    CHECK(grammar_is_complete(g));
    grammar_set_finish(g, false);
    llem_free(lg);
    return strbuf_take(&out);
}

static void test_json_walks(void)
{
    struct grammar_vocab *v = toy_vocab();
    struct grammar_rules *r = NULL;
    struct grammar *g = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(grammar_rules_format(&r, "\"json\"", 6, &eb), &eb);
    CHECK_OK(grammar_new(&g, r, v, &eb), &eb);
    grammar_rules_free(r);
    for (uint64_t seed = 1; seed <= 30; seed++) {
        char *txt = random_walk(g, seed, 120, seed <= 3);
        if (getenv("GRAMMAR_SHOW")) {
            fprintf(stderr, "walk %d: %s\n", (int)seed, txt);
        }
        cJSON *j = cJSON_Parse(txt);
        if (!cJSON_IsObject(j)) {
            fprintf(stderr, "seed %d: not a JSON object: %s\n", (int)seed, txt);
        }
        CHECK(cJSON_IsObject(j));
        cJSON_Delete(j);
        llem_free(txt);
    }
    grammar_free(g);
    // format null / "" -> no grammar; a number -> invalid
    CHECK_OK(grammar_rules_format(&r, "null", 4, &eb), &eb);
    CHECK(r == NULL);
    CHECK_OK(grammar_rules_format(&r, "\"\"", 2, &eb), &eb);
    CHECK(r == NULL);
    CHECK(grammar_rules_format(&r, "3", 1, &eb) == LLEM_EINVAL);
    CHECK_OK(grammar_rules_openai(&r, "{\"type\":\"text\"}", 15, &eb), &eb);
    CHECK(r == NULL);
    const char *oa = "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"strict\":true,"
                     "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"}},"
                     "\"required\":[\"a\"]}}}";
    CHECK_OK(grammar_rules_openai(&r, oa, strlen(oa), &eb), &eb);
    CHECK(r != NULL);
    CHECK_OK(grammar_new(&g, r, v, &eb), &eb);
    grammar_rules_free(r);
    CHECK(matches(g, "{\"a\": true}"));
    CHECK(!matches(g, "{}"));
    grammar_free(g);
    grammar_vocab_free(v);
}

static void test_integer_ranges(void)
{
    struct grammar_vocab *v = toy_vocab();
    static const struct {
        const char *schema;
        int lo, hi;
    } cases[] = {
        {"{\"type\":\"integer\",\"minimum\":5,\"maximum\":123}", 5, 123},
        {"{\"type\":\"integer\",\"minimum\":-42,\"maximum\":7}", -42, 7},
        {"{\"type\":\"integer\",\"minimum\":-150,\"maximum\":-9}", -150, -9},
        {"{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":100}", 1, 99},
        {"{\"type\":\"integer\",\"minimum\":19}", 19, 1000000},
        {"{\"type\":\"integer\",\"maximum\":-3}", -1000000, -3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct grammar *g = schema(v, cases[c].schema);
        if (!g) {
            continue;
        }
        int bad = 0;
        for (int x = -300; x <= 300; x++) {
            char buf[16];
            snprintf(buf, sizeof buf, "%d", x);
            bool want = x >= cases[c].lo && x <= cases[c].hi;
            if (matches(g, buf) != want) {
                if (bad++ < 3) {
                    fprintf(stderr, "case %zu: %d %s\n", c, x, want ? "rejected" : "accepted");
                }
            }
        }
        CHECK_EQ_I64(bad, 0);
        CHECK(!matches(g, "007"));
        CHECK(!matches(g, "-0"));
        grammar_free(g);
    }
    grammar_vocab_free(v);
}

static void test_schema_features(void)
{
    struct grammar_vocab *v = toy_vocab();
    struct grammar *g = schema(
        v, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"maxLength\":3},"
           "\"b\":{\"enum\":[1,\"x\",null]},\"c\":{\"type\":\"array\",\"items\":{\"type\":"
           "\"boolean\"},\"minItems\":1,\"maxItems\":2}},\"required\":[\"b\"]}");
    CHECK(matches(g, "{\"b\":1}"));
    CHECK(matches(g, "{\"a\":\"xyz\", \"b\": \"x\", \"c\": [true]}"));
    CHECK(matches(g, "{\"b\":null,\"c\":[true,false]}"));
    CHECK(!matches(g, "{\"a\":\"xyzw\",\"b\":1}")); // maxLength
    CHECK(!matches(g, "{\"b\":2}"));                  // enum
    CHECK(!matches(g, "{\"b\":1,\"c\":[]}"));         // minItems
    CHECK(!matches(g, "{\"b\":1,\"c\":[true,true,true]}"));
    CHECK(!matches(g, "{\"c\":[true],\"b\":1}"));     // declared order
    CHECK(!matches(g, "{\"b\":1,\"d\":1}"));          // no additional properties
    CHECK(!matches(g, "{\"a\":\"x\"}"));              // b is required
    grammar_free(g);
    // recursion through $defs, anyOf, const
    g = schema(v, "{\"$ref\":\"#/$defs/node\",\"$defs\":{\"node\":{\"type\":\"object\","
                  "\"properties\":{\"v\":{\"const\":\"k\"},\"kids\":{\"type\":\"array\","
                  "\"items\":{\"$ref\":\"#/$defs/node\"}}},\"required\":[\"v\"]}}}");
    CHECK(matches(g, "{\"v\":\"k\",\"kids\":[{\"v\":\"k\"},{\"v\":\"k\",\"kids\":[]}]}"));
    CHECK(!matches(g, "{\"v\":\"j\"}"));
    grammar_free(g);
    // patterns (over the JSON-encoded text) and formats
    g = schema(v, "{\"type\":\"string\",\"pattern\":\"^[a-z]+(\\\\.[a-z]+)*@x\\\\.(com|org)$\"}");
    CHECK(matches(g, "\"ab.c@x.com\""));
    CHECK(matches(g, "\"q@x.org\""));
    CHECK(!matches(g, "\"Q@x.org\""));
    CHECK(!matches(g, "\"q@x.net\""));
    grammar_free(g);
    g = schema(v, "{\"type\":\"string\",\"pattern\":\"a\\\"b\\\\d{2}\"}");
    CHECK(matches(g, "\"xa\\\"b42yy\"")); // unanchored: search semantics; '"' encoded as \"
    CHECK(!matches(g, "\"a\\\"b4\""));
    grammar_free(g);
    g = schema(v, "{\"type\":\"string\",\"format\":\"date-time\"}");
    CHECK(matches(g, "\"2024-02-29T13:05:59Z\""));
    CHECK(matches(g, "\"2024-02-29T13:05:59.123+02:00\""));
    CHECK(!matches(g, "\"2024-13-01T00:00:00Z\""));
    grammar_free(g);
    g = schema(v, "{\"type\":[\"integer\",\"null\"]}");
    CHECK(matches(g, "-12"));
    CHECK(matches(g, "null"));
    CHECK(!matches(g, "1.5"));
    grammar_free(g);
    // unsupported -> EUNSUPPORTED, never silently accepted
    static const char *unsup[] = {
        "{\"not\":{\"type\":\"string\"}}",
        "{\"type\":\"string\",\"if\":{},\"then\":{}}",
        "{\"type\":\"object\",\"dependentSchemas\":{}}",
        "{\"type\":\"string\",\"pattern\":\"(?=a)b\"}",
        "{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}",
        "{\"type\":\"array\",\"uniqueItems\":true}",
        "{\"type\":\"number\",\"multipleOf\":2}",
        "{\"$ref\":\"http://example.com/s.json\"}",
        "{\"type\":\"number\",\"minimum\":0.5}",
    };
    for (size_t i = 0; i < sizeof unsup / sizeof unsup[0]; i++) {
        struct grammar_rules *r = NULL;
        struct llem_errbuf eb = {0};
        enum llem_err e = grammar_rules_schema(&r, unsup[i], strlen(unsup[i]), &eb);
        if (e != LLEM_EUNSUPPORTED) {
            fprintf(stderr, "schema %zu: got %d (%s)\n", i, e, eb.msg);
        }
        CHECK(e == LLEM_EUNSUPPORTED);
        grammar_rules_free(r);
    }
    struct grammar_rules *r = NULL;
    struct llem_errbuf eb = {0};
    CHECK(grammar_rules_schema(&r, "{\"type\":", 8, &eb) == LLEM_EINVAL);
    grammar_vocab_free(v);
}

static void test_trigger(void)
{
    struct grammar_vocab *v = toy_vocab();
    struct grammar *g = gbnf(v, "root ::= \"{\" [a-z]* \"}\"\n");
    struct llem_errbuf eb = {0};
    CHECK_OK(grammar_set_trigger(g, "</think>", &eb), &eb);
    CHECK(grammar_allows(g, 'Q'));
    CHECK(grammar_allows(g, TOY_EOG));
    CHECK(!grammar_allows(g, 256 + 23)); // "</think>\n\n{": "\n\n{" does not fit after it
    CHECK(grammar_allows(g, 256 + 22));  // "</think>"
    CHECK_OK(grammar_accept_bytes(g, "I think </thi", 13, &eb), &eb);
    CHECK(grammar_allows(g, 'n'));
    CHECK_OK(grammar_accept_bytes(g, "nk>{a", 5, &eb), &eb);
    CHECK(!grammar_allows(g, 'Q'));
    CHECK(!grammar_allows(g, TOY_EOG));
    CHECK(grammar_allows(g, '}'));
    check_filter_consistent(g);
    CHECK_OK(grammar_accept(g, '}', &eb), &eb);
    CHECK(grammar_is_finished(g));
    CHECK_OK(grammar_accept(g, TOY_EOG, &eb), &eb);
    grammar_free(g);
    grammar_vocab_free(v);
}

// A schema with an unbounded string still completes within budget thanks to finish mode.
static void test_finish_mode(void)
{
    struct grammar_vocab *v = toy_vocab();
    struct grammar *g = schema(v, "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":"
                                  "\"string\"},\"n\":{\"type\":\"array\",\"items\":{\"type\":"
                                  "\"number\"}}},\"required\":[\"s\",\"n\"]}");
    for (uint64_t seed = 1; seed <= 10; seed++) {
        char *txt = random_walk(g, seed, 40, false);
        cJSON *j = cJSON_Parse(txt);
        CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "s")));
        CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "n")));
        cJSON_Delete(j);
        llem_free(txt);
    }
    grammar_free(g);
    grammar_vocab_free(v);
}

int main(void)
{
    RUN_TEST(test_gbnf_errors);
    RUN_TEST(test_gbnf_match);
    RUN_TEST(test_json_walks);
    RUN_TEST(test_integer_ranges);
    RUN_TEST(test_schema_features);
    RUN_TEST(test_trigger);
    RUN_TEST(test_finish_mode);
    return TEST_EXIT();
}
