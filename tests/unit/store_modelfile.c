// tests/unit/store_modelfile.c: the Modelfile grammar: every instruction, case-insensitive
// keywords, comments, unquoted / "quoted" / """multi-line""" values, a BOM, and errors that
// name the right line; PARAMETER values typed into the params JSON (sorted keys, stop lists).
#include "base/alloc.h"
#include "check.h"
#include "store/store.h"

static void test_every_directive(void)
{
    const char *text = "\xEF\xBB\xBF# a comment line\n"
                       "FROM ./model.gguf\n"
                       "\n"
                       "parameter temperature 0.7\n"
                       "PARAMETER Stop \"<|end|>\"\n"
                       "PARAMETER stop USER:\n"
                       "  PARAMETER num_ctx 4096   \n"
                       "TEMPLATE \"\"\"{{ if .System }}{{ .System }}\n"
                       "{{ end }}{{ .Prompt }}\"\"\"\n"
                       "SYSTEM You are \"terse\".\n"
                       "ADAPTER ./lora.gguf\n"
                       "LICENSE \"\"\"\n"
                       "line one\n"
                       "line two\n"
                       "\"\"\"\n"
                       "MESSAGE user Hi there\n"
                       "MESSAGE assistant \"Hello, \\\"friend\\\"\"\n"
                       "Renderer qwen3\n"
                       "PARSER qwen3\n";
    struct store_modelfile mf;
    struct llem_errbuf eb = {0};
    CHECK_OK(store_modelfile_parse(text, strlen(text), &mf, &eb), &eb);
    CHECK_EQ_I64(mf.n, 13);
    if (mf.n != 13) {
        store_modelfile_deinit(&mf);
        return;
    }
    const struct store_mf_line *l = mf.lines;
    CHECK(l[0].cmd == STORE_MF_FROM);
    CHECK_EQ_STR(l[0].value, "./model.gguf");
    CHECK_EQ_I64(l[0].line, 2);
    CHECK(l[1].cmd == STORE_MF_PARAMETER);
    CHECK_EQ_STR(l[1].name, "temperature");
    CHECK_EQ_STR(l[1].value, "0.7");
    CHECK_EQ_STR(l[2].name, "stop"); // lowercased
    CHECK_EQ_STR(l[2].value, "<|end|>");
    CHECK_EQ_STR(l[3].value, "USER:");
    CHECK_EQ_STR(l[4].value, "4096"); // trailing blanks trimmed
    CHECK_EQ_I64(l[4].line, 7);
    CHECK(l[5].cmd == STORE_MF_TEMPLATE);
    CHECK_EQ_STR(l[5].value, "{{ if .System }}{{ .System }}\n{{ end }}{{ .Prompt }}");
    CHECK_EQ_I64(l[5].line, 8);
    CHECK(l[6].cmd == STORE_MF_SYSTEM);
    CHECK_EQ_STR(l[6].value, "You are \"terse\"."); // unquoted: to end of line, as is
    CHECK_EQ_I64(l[6].line, 10);
    CHECK(l[7].cmd == STORE_MF_ADAPTER);
    CHECK(l[8].cmd == STORE_MF_LICENSE);
    CHECK_EQ_STR(l[8].value, "\nline one\nline two\n");
    CHECK_EQ_I64(l[8].line, 12);
    CHECK(l[9].cmd == STORE_MF_MESSAGE);
    CHECK_EQ_STR(l[9].name, "user");
    CHECK_EQ_STR(l[9].value, "Hi there");
    CHECK_EQ_I64(l[9].line, 16);
    CHECK_EQ_STR(l[10].name, "assistant");
    CHECK_EQ_STR(l[10].value, "Hello, \"friend\"");
    CHECK(l[11].cmd == STORE_MF_RENDERER);
    CHECK(l[12].cmd == STORE_MF_PARSER);
    CHECK_EQ_I64(l[12].line, 19);

    char *json = NULL;
    CHECK_OK(store_modelfile_params_json(&mf, &json, &eb), &eb);
    CHECK_EQ_STR(json, "{\"num_ctx\":4096,\"stop\":[\"<|end|>\",\"USER:\"],\"temperature\":0.7}");
    llem_free(json);
    store_modelfile_deinit(&mf);
    store_modelfile_deinit(&mf); // twice is fine
}

static void test_errors(void)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"", "line 1: no FROM"},
        {"# only a comment\n\n", "line 3: no FROM"},
        {"FROM a\nFROM b\nFROB c\n", "line 3: unknown instruction 'FROB'"},
        {"FROM a\nBOGUS x\n", "line 2: unknown instruction 'BOGUS'"},
        {"FROM a\nFROMX b\n", "line 2: unknown instruction 'FROMX'"},
        {"FROM\n", "line 1: missing value for FROM"},
        {"FROM a\nSYSTEM   \n", "line 2: missing value for SYSTEM"},
        {"FROM a\nPARAMETER\n", "line 2: missing parameter name"},
        {"FROM a\nPARAMETER temperature\n", "line 2: missing value for PARAMETER"},
        {"FROM a\n\nTEMPLATE \"\"\"abc\nxyz\n", "line 3: unterminated \"\"\" string"},
        {"FROM a\nSYSTEM \"abc\nxyz\"\n", "line 2: unterminated \" string"},
        {"FROM a\nSYSTEM \"abc\" extra\n", "line 2: unexpected text after the closing quote"},
        {"FROM a\nTEMPLATE \"\"\"a\nb\"\"\" x\n", "line 3: unexpected text after"},
        {"FROM a\nMESSAGE robot hi\n", "line 2: message role 'robot'"},
        {"FROM a\n123\n", "line 2: expected an instruction"},
        {"\xFF\xFE"
         "F\0R\0",
         "UTF-16"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct store_modelfile mf;
        struct llem_errbuf eb = {0};
        size_t len = i == sizeof(cases) / sizeof(cases[0]) - 1 ? 6 : strlen(cases[i].text);
        CHECK(store_modelfile_parse(cases[i].text, len, &mf, &eb) == LLEM_EINVAL);
        if (!strstr(eb.msg, cases[i].msg)) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", i, eb.msg, cases[i].msg);
            CHECK(0);
        }
        CHECK(mf.n == 0 && mf.lines == NULL);
    }
    struct store_modelfile mf;
    struct llem_errbuf eb = {0};
    const char nul[] = "FROM a\nSYSTEM x\0y\n";
    CHECK(store_modelfile_parse(nul, sizeof(nul) - 1, &mf, &eb) == LLEM_EINVAL);
    CHECK(strstr(eb.msg, "line 2: NUL byte") != NULL);
}

static void test_param_errors(void)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"FROM a\nPARAMETER nonsense 1\n", "line 2: unknown parameter 'nonsense'"},
        {"FROM a\n\nPARAMETER top_k 4.5\n", "line 3: parameter top_k: '4.5' is not an integer"},
        {"FROM a\nPARAMETER temperature hot\n", "line 2: parameter temperature: 'hot' is not a "
                                                "number"},
        {"FROM a\nPARAMETER temperature inf\n", "is not a number"},
        {"FROM a\nPARAMETER use_mmap maybe\n", "line 2: parameter use_mmap: 'maybe' is not true "
                                               "or false"},
        {"FROM a\nPARAMETER seed 99999999999999999999\n", "is not an integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct store_modelfile mf;
        struct llem_errbuf eb = {0};
        CHECK_OK(store_modelfile_parse(cases[i].text, strlen(cases[i].text), &mf, &eb), &eb);
        char *json = NULL;
        CHECK(store_modelfile_params_json(&mf, &json, &eb) == LLEM_EINVAL);
        CHECK(json == NULL);
        if (!strstr(eb.msg, cases[i].msg)) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", i, eb.msg, cases[i].msg);
            CHECK(0);
        }
        store_modelfile_deinit(&mf);
    }
    // Deprecated parameters are ignored (with a warning); no PARAMETER gives no JSON.
    const char *t = "FROM a\nPARAMETER mirostat 2\nPARAMETER use_mmap TRUE\nPARAMETER seed -1\n";
    struct store_modelfile mf;
    struct llem_errbuf eb = {0};
    CHECK_OK(store_modelfile_parse(t, strlen(t), &mf, &eb), &eb);
    char *json = NULL;
    CHECK_OK(store_modelfile_params_json(&mf, &json, &eb), &eb);
    CHECK_EQ_STR(json, "{\"seed\":-1,\"use_mmap\":true}");
    llem_free(json);
    store_modelfile_deinit(&mf);
    CHECK_OK(store_modelfile_parse("from x", 6, &mf, &eb), &eb);
    CHECK_OK(store_modelfile_params_json(&mf, &json, &eb), &eb);
    CHECK(json == NULL);
    store_modelfile_deinit(&mf);
}

static void test_alloc_failures(void)
{
    const char *text = "FROM a\nPARAMETER stop x\nPARAMETER stop y\nTEMPLATE \"\"\"t\n\"\"\"\n"
                       "MESSAGE user \"q\"\n";
    for (uint64_t k = 1; k < 200; k++) {
        struct store_modelfile mf;
        struct llem_errbuf eb = {0};
        llem_alloc_fail_at(k, 1);
        enum llem_err rc = store_modelfile_parse(text, strlen(text), &mf, &eb);
        char *json = NULL;
        if (rc == LLEM_OK) {
            rc = store_modelfile_params_json(&mf, &json, &eb);
        }
        int fired = llem_alloc_fail_fired();
        llem_alloc_fail_at(0, 0);
        CHECK(rc == LLEM_OK || rc == LLEM_ENOMEM);
        llem_free(json);
        store_modelfile_deinit(&mf);
        if (!fired) {
            break;
        }
    }
}

int main(void)
{
    RUN_TEST(test_every_directive);
    RUN_TEST(test_errors);
    RUN_TEST(test_param_errors);
    RUN_TEST(test_alloc_failures);
    return TEST_EXIT();
}
