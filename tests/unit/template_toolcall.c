// tests/unit/template_toolcall.c: tool-call format detection and streaming parsing for every
// format, at every chunk split: calls parsed (names, arguments, several per turn), markers never
// leaked into content, unparseable calls returned as content; output shapes for Ollama/OpenAI.
#include <cjson/cJSON.h>

#include "check.h"
#include "template/toolcall.h"

static const char TOOLS[] = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                            "\"parameters\":{}}},{\"type\":\"function\",\"function\":{\"name\":"
                            "\"add\",\"parameters\":{}}}]";

struct want {
    const char *content, *thinking;
    int n_calls;
    const char *name0, *args0, *name1, *args1;
};

static void run(enum tc_format f, const char *out, const struct want *w)
{
    size_t n = strlen(out);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += 3) {
            struct tc_parser *p = NULL;
            struct llem_errbuf eb = {0};
            CHECK_OK(tc_parser_new(&p, f, TOOLS, strlen(TOOLS), 42, &eb), &eb);
            struct strbuf c, th;
            strbuf_init(&c, 0);
            strbuf_init(&th, 0);
            CHECK_OK(tc_parser_add(p, out, a, false, &c, &th, &eb), &eb);
            bool leak = !strchr(w->content, '<') && !strchr(w->content, '[') && (strstr(strbuf_cstr(&c), "<tool_c") || strstr(strbuf_cstr(&c), "[TOOL") ||
                        strstr(strbuf_cstr(&c), "<|"));
            CHECK_OK(tc_parser_add(p, out + a, b - a, false, &c, &th, &eb), &eb);
            CHECK_OK(tc_parser_add(p, out + b, n - b, true, &c, &th, &eb), &eb);
            bool ok = !leak && strcmp(strbuf_cstr(&c), w->content) == 0 &&
                      strcmp(strbuf_cstr(&th), w->thinking ? w->thinking : "") == 0 &&
                      tc_parser_n_calls(p) == w->n_calls;
            for (int k = 0; ok && k < w->n_calls && k < 2; k++) {
                const struct tc_call *call = tc_parser_call(p, k);
                ok = strcmp(call->name, k ? w->name1 : w->name0) == 0 &&
                     strcmp(call->arguments, k ? w->args1 : w->args0) == 0 && call->index == k;
            }
            if (!ok) {
                fprintf(stderr, "%s cut %zu/%zu: content \"%s\" thinking \"%s\" calls %d%s%s%s\n",
                        tc_format_name(f), a, b, strbuf_cstr(&c), strbuf_cstr(&th),
                        tc_parser_n_calls(p), leak ? " (leaked a marker)" : "",
                        tc_parser_n_calls(p) ? " first: " : "",
                        tc_parser_n_calls(p) ? tc_parser_call(p, 0)->arguments : "");
                check_failures++;
                a = b = n + 1;
            }
            strbuf_deinit(&c);
            strbuf_deinit(&th);
            tc_parser_free(p);
        }
    }
}

static void test_detect(void)
{
    CHECK(tc_detect("{% for m in messages %}<tool_call>{{ t }}</tool_call>", 52) == TC_FORMAT_HERMES);
    const char *mis = "[AVAILABLE_TOOLS]{{ tools }}[/AVAILABLE_TOOLS][TOOL_CALLS]";
    CHECK(tc_detect(mis, strlen(mis)) == TC_FORMAT_MISTRAL);
    const char *l3 = "<|start_header_id|>ipython<|end_header_id|>{\"name\": x, \"parameters\": y}";
    CHECK(tc_detect(l3, strlen(l3)) == TC_FORMAT_LLAMA3);
    const char *h = "<|start|>assistant<|channel|>commentary to=functions.x<|message|>";
    CHECK(tc_detect(h, strlen(h)) == TC_FORMAT_HARMONY);
    CHECK(tc_detect("{{ if .Tools }}{{ .Tools }}{{ end }}", 36) == TC_FORMAT_JSON);
    CHECK(tc_detect("{{ .Prompt }}", 13) == TC_FORMAT_NONE);
}

static void test_hermes(void)
{
    struct want w = {"Let me check.", NULL, 2, "get_weather", "{\"city\":\"Paris\"}", "add",
                     "{\"a\":1,\"b\":2}"};
    run(TC_FORMAT_HERMES,
        "Let me check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
        "\"Paris\"}}\n</tool_call>\n<tool_call>{\"name\":\"add\",\"arguments\":\"{\\\"a\\\":1,"
        "\\\"b\\\":2}\"}</tool_call>",
        &w);
    struct want bad = {"<tool_call>{\"name\": \"nope\", \"arguments\": {}}</tool_call>", NULL, 0, NULL, NULL, NULL, NULL};
    run(TC_FORMAT_HERMES, "<tool_call>{\"name\": \"nope\", \"arguments\": {}}</tool_call>", &bad);
    struct want cut = {"<tool_call>{\"name\": \"add\", \"argu", NULL, 0, NULL, NULL, NULL, NULL};
    run(TC_FORMAT_HERMES, "<tool_call>{\"name\": \"add\", \"argu", &cut);
    struct want plain = {"a < b and <tool is fine", NULL, 0, NULL, NULL, NULL, NULL};
    run(TC_FORMAT_HERMES, "a < b and <tool is fine", &plain);
}

static void test_mistral(void)
{
    struct want w = {"", NULL, 2, "get_weather", "{\"city\":\"Oslo\"}", "add", "{}"};
    run(TC_FORMAT_MISTRAL,
        "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}, "
        "{\"name\": \"add\", \"arguments\": {}}]",
        &w);
    struct want w2 = {"", NULL, 1, "add", "{\"a\":[1,\"]\"]}", NULL, NULL};
    run(TC_FORMAT_MISTRAL, "[TOOL_CALLS]add[ARGS]{\"a\": [1, \"]\"]}", &w2);
}

static void test_llama3_json(void)
{
    struct want w = {"", NULL, 2, "get_weather", "{\"city\":\"Rome\"}", "add", "{\"x\":2}"};
    run(TC_FORMAT_LLAMA3,
        "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}; {\"name\": \"add\", "
        "\"parameters\": {\"x\": 2}}",
        &w);
    struct want w2 = {"", NULL, 1, "add", "{\"x\":3}", NULL, NULL};
    run(TC_FORMAT_LLAMA3, "<|python_tag|>{\"name\": \"add\", \"parameters\": {\"x\": 3}}", &w2);
    struct want w3 = {"{\"answer\": 42}", NULL, 0, NULL, NULL, NULL, NULL};
    run(TC_FORMAT_JSON, "{\"answer\": 42}", &w3);
    struct want w4 = {"", NULL, 1, "add", "{\"q\":\"{\"}", NULL, NULL};
    run(TC_FORMAT_JSON, " [{\"function\": {\"name\": \"add\", \"arguments\": {\"q\": \"{\"}}}]", &w4);
    struct want w5 = {"Sure: {\"name\": \"add\"}", NULL, 0, NULL, NULL, NULL, NULL};
    run(TC_FORMAT_JSON, "Sure: {\"name\": \"add\"}", &w5);
}

static void test_harmony(void)
{
    struct want w = {"Checking.", "User wants weather.", 1, "get_weather", "{\"city\":\"Lima\"}", NULL, NULL};
    run(TC_FORMAT_HARMONY,
        "<|channel|>analysis<|message|>User wants weather.<|end|><|start|>assistant<|channel|>"
        "commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>commentary "
        "to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Lima\"}<|call|>",
        &w);
    struct want w2 = {"It is sunny.", "ok", 0, NULL, NULL, NULL, NULL};
    run(TC_FORMAT_HARMONY,
        "<|channel|>analysis<|message|>ok<|end|><|start|>assistant<|channel|>final<|message|>"
        "It is sunny.",
        &w2);
}

static void test_shapes(void)
{
    struct tc_parser *p = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(tc_parser_new(&p, TC_FORMAT_HERMES, NULL, 0, 7, &eb), &eb);
    struct strbuf c, o;
    strbuf_init(&c, 0);
    strbuf_init(&o, 0);
    const char *out = "<tool_call>{\"name\":\"f\",\"arguments\":{\"s\":\"q\\\"x\"}}</tool_call>";
    CHECK_OK(tc_parser_add(p, out, strlen(out), true, &c, NULL, &eb), &eb);
    CHECK_EQ_I64(tc_parser_n_calls(p), 1);
    const struct tc_call *call = tc_parser_call(p, 0);
    CHECK(strncmp(call->id, "call_", 5) == 0 && strlen(call->id) == 13);
    CHECK_OK(tc_call_append_ollama(call, false, &o), &eb);
    CHECK_EQ_STR(strbuf_cstr(&o),
                 "{\"function\":{\"index\":0,\"name\":\"f\",\"arguments\":{\"s\":\"q\\\"x\"}}}");
    strbuf_reset(&o);
    CHECK_OK(tc_call_append_openai(call, true, &o), &eb);
    cJSON *j = cJSON_Parse(strbuf_cstr(&o));
    const cJSON *fn = cJSON_GetObjectItem(j, "function");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(fn, "arguments")), "{\"s\":\"q\\\"x\"}");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "type")), "function");
    CHECK_EQ_I64(cJSON_GetObjectItem(j, "index")->valueint, 0);
    cJSON_Delete(j);
    strbuf_deinit(&c);
    strbuf_deinit(&o);
    tc_parser_free(p);
}

int main(void)
{
    RUN_TEST(test_detect);
    RUN_TEST(test_hermes);
    RUN_TEST(test_mistral);
    RUN_TEST(test_llama3_json);
    RUN_TEST(test_harmony);
    RUN_TEST(test_shapes);
    return TEST_EXIT();
}
