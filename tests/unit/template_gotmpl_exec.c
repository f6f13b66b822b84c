// tests/unit/template_gotmpl_exec.c: the Go-template engine's parser and executor on small
// templates whose Go (text/template + Ollama) output is known: trimming, comments, variables,
// control flow, builtins and their value semantics, printf/json formatting, Ollama's data model
// (collate, legacy per-turn path, image tags, tools' String() as JSON), error messages, the
// limits (recursion, loops, output, memory) and allocation-failure injection.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "check.h"
#include "template/gotmpl.h"

static char result[8192];
static struct llem_errbuf last_eb;

// Renders src with data (JSON text or NULL); chat selects the Ollama chat path. Returns the
// error code; the output or the error message is in `result`.
static enum llem_err run_lim(const char *src, const char *data, bool chat,
                             const struct gotmpl_limits *lim)
{
    struct gotmpl *t = NULL;
    memset(&last_eb, 0, sizeof(last_eb));
    enum llem_err e = gotmpl_parse(&t, src, strlen(src), &last_eb);
    if (e) {
        snprintf(result, sizeof(result), "%s", last_eb.msg);
        return e;
    }
    cJSON *j = data ? cJSON_Parse(data) : NULL;
    if (data && !j) {
        fprintf(stderr, "bad test JSON: %s\n", data);
        check_failures++;
    }
    struct strbuf out;
    strbuf_init(&out, 0);
    e = chat ? gotmpl_render_chat(t, j, lim, &out, &last_eb)
             : gotmpl_execute_json(t, j, lim, &out, &last_eb);
    snprintf(result, sizeof(result), "%s", e ? last_eb.msg : strbuf_cstr(&out));
    strbuf_deinit(&out);
    cJSON_Delete(j);
    gotmpl_free(t);
    return e;
}

static enum llem_err run(const char *src, const char *data, bool chat)
{
    struct gotmpl_limits lim;
    gotmpl_limits_default(&lim);
    lim.now_unix = 1700000000; // 2023-11-14 UTC
    return run_lim(src, data, chat, &lim);
}

#define EXPECT(src, data, want)                                                            \
    do {                                                                                   \
        CHECK_EQ_I64(run(src, data, false), LLEM_OK);                                      \
        CHECK_EQ_STR(result, want);                                                        \
    } while (0)
#define EXPECT_CHAT(src, data, want)                                                       \
    do {                                                                                   \
        CHECK_EQ_I64(run(src, data, true), LLEM_OK);                                       \
        CHECK_EQ_STR(result, want);                                                        \
    } while (0)
#define EXPECT_ERR(src, data, code, substr)                                                \
    do {                                                                                   \
        CHECK_EQ_I64(run(src, data, false), code);                                         \
        if (!strstr(result, substr)) {                                                     \
            fprintf(stderr, "%s:%d: error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__,      \
                    result, substr);                                                       \
            check_failures++;                                                              \
        }                                                                                  \
    } while (0)

static void test_text_trim_comments(void)
{
    EXPECT("plain text", NULL, "plain text");
    EXPECT("a  {{- 1 -}}  b", NULL, "a1b");
    EXPECT("a {{-3}} b", NULL, "a -3 b");
    EXPECT("x{{/* c */}}y", NULL, "xy");
    EXPECT("x \n {{- /* a\ncomment */ -}} \n y", NULL, "xy");
    EXPECT("{{ `raw\\n` }}{{ \"q\\t\\u00e9\\x41\" }}{{ 'a' }}", NULL, "raw\\nq\té\x41" "97");
    EXPECT("{{\n.a\n}}", "{\"a\":\"multi-line action\"}", "multi-line action");
}

static void test_variables_control(void)
{
    EXPECT("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", NULL, "2");
    EXPECT("{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}", "{\"b\":1}", "B");
    EXPECT("{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}", "{}", "C");
    EXPECT("{{ with .a }}{{ . }}{{ else with .b }}b={{ . }}{{ else }}none{{ end }}",
           "{\"b\":\"x\"}", "b=x");
    EXPECT("{{ range .l }}{{ . }},{{ else }}empty{{ end }}", "{\"l\":[1,\"a\",true,null]}",
           "1,a,true,<no value>,");
    EXPECT("{{ range .l }}{{ . }},{{ else }}empty{{ end }}", "{\"l\":[]}", "empty");
    EXPECT("{{ range .nope }}x{{ else }}nil ranges as empty{{ end }}", "{}", "nil ranges as empty");
    EXPECT("{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}", "{\"m\":{\"b\":1,\"a\":2}}",
           "a=2;b=1;");
    EXPECT("{{ range $i, $v := .l }}{{ $i }}:{{ $v }} {{ end }}", "{\"l\":[\"x\",\"y\"]}",
           "0:x 1:y ");
    EXPECT("{{ range $i := 3 }}{{ $i }}{{ end }}", NULL, "012");
    EXPECT("{{ range 10 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if gt . 4 }}{{ break }}{{ end }}"
           "{{ . }}{{ end }}", NULL, "0134");
    // variables declared inside a range body are per iteration; outer ones are assignable
    EXPECT("{{ $n := 0 }}{{ range .l }}{{ $n = . }}{{ end }}{{ $n }}", "{\"l\":[1,2,3]}", "3");
    EXPECT("{{ $ }}", "\"root\"", "root");
    EXPECT("{{ range .l }}{{ $.k }}{{ end }}", "{\"l\":[1,2],\"k\":\"K\"}", "KK");
}

static void test_builtins(void)
{
    EXPECT("{{ eq \"b\" \"a\" \"b\" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le \"b\" \"a\" }} {{ gt 2.5 1.5 }}"
           " {{ ge 2 2 }}", NULL, "true true true false true true");
    EXPECT("{{ and 1 0 }} {{ or 0 \"\" \"x\" }} {{ and 1 2 }} {{ not 0 }} {{ or 0 false }}", NULL,
           "0 x 2 true false");
    // short-circuit: the failing index is never evaluated
    EXPECT("{{ and false (index .l 99) }} {{ or true (index .l 99) }}", "{\"l\":[]}",
           "false true");
    EXPECT("{{ .nope }} {{ print .nope }} {{ printf \"%v\" .nope }}", "{}",
           "<no value> <nil> <nil>");
    EXPECT("{{ len .l }} {{ len \"héllo\" }} {{ len .m }}", "{\"l\":[1,2],\"m\":{\"a\":1}}",
           "2 6 1");
    EXPECT("{{ index .l 1 }} {{ index .m \"a\" }} {{ index .m \"zz\" }} {{ index \"abc\" 1 }}",
           "{\"l\":[\"p\",\"q\"],\"m\":{\"a\":\"A\"}}", "q A <no value> 98");
    EXPECT("{{ slice \"hello\" 1 3 }} {{ slice .l 1 }} {{ len (slice .l 0 0) }}",
           "{\"l\":[1,2,3]}", "el [2 3] 0");
    EXPECT("{{ print 1 2 \"x\" 3 \"y\" \"z\" }}|{{ println 1 \"a\" }}|", NULL, "1 2x3yz|1 a\n|");
    EXPECT("{{ html \"<a href='x'>&\\\"\" }} {{ js \"it's <b>\" }} {{ urlquery \"a b&c/d\" }}", NULL,
           "&lt;a href=&#39;x&#39;&gt;&amp;&#34; it\\'s \\u003Cb\\u003E a+b%26c%2Fd");
    EXPECT("{{ currentDate }}", NULL, "2023-11-14");
    EXPECT("{{ \"x\" | printf \"%s-%s\" \"y\" }}", NULL, "y-x");
    EXPECT("{{ 3 | eq 3 }}", NULL, "true");
}

static void test_formatting(void)
{
    EXPECT("{{ printf \"%s-%d-%v-%q-%5.2f|%-4s|%04d|%x|%X|%t|%%|%c\" \"a\" 7 true \"q\" 3.14159 \"x\" 42 "
           "255 \"hi\" false 65 }}", NULL, "a-7-true-\"q\"- 3.14|x   |0042|ff|6869|false|%|A");
    EXPECT("{{ printf \"%d %s\" \"str\" 5 }}", NULL, "%!d(string=str) %!s(int=5)");
    EXPECT("{{ printf \"%d\" }} {{ printf \"x\" 1 }}", NULL, "%!d(MISSING) x%!(EXTRA int=1)");
    EXPECT("{{ .a }} {{ .b }} {{ .c }} {{ .d }} {{ .e }} {{ 1e3 }} {{ 0x10 }}",
           "{\"a\":1000000,\"b\":1.5,\"c\":3,\"d\":0.00001,\"e\":123456}",
           "1e+06 1.5 3 1e-05 123456 1000 16");
    EXPECT("{{ .l }} {{ .m }}", "{\"l\":[1,\"a\",[true]],\"m\":{\"k\":[1,2],\"j\":null}}",
           "[1 a [true]] map[j:<nil> k:[1 2]]");
    EXPECT("{{ json .m }}", "{\"m\":{\"b\":\"<x> & \\u2028\",\"a\":[1,2.5,null,1e21,1e-7],\"c\":\"\\n\\b\"}}",
           "{\"a\":[1,2.5,null,1e+21,1e-7],\"b\":\"\\u003cx\\u003e \\u0026 \\u2028\",\"c\":\"\\n\\b\"}");
    EXPECT("{{ json \"x\" }} {{ json 1 }} {{ json .nope }}", "{}", "\"x\" 1 null");
}

static void test_define_template_block(void)
{
    EXPECT("{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" .a }}{{ template \"x\" \"lit\" }}",
           "{\"a\":\"A\"}", "[A][lit]");
    EXPECT("{{ block \"b\" .a }}<{{ . }}>{{ end }}", "{\"a\":1}", "<1>");
    // a block's body is replaced by a later non-empty define of the same name? No: in one
    // parse that is a redefinition error, as in Go.
    EXPECT_ERR("{{ define \"a\" }}x{{ end }}{{ define \"a\" }}y{{ end }}", NULL, LLEM_EFORMAT,
               "multiple definition of template \"a\"");
    EXPECT("{{ $v := 1 }}{{ define \"t\" }}{{ end }}{{ $v }}", NULL, "1");
}

static void test_parse_errors(void)
{
    EXPECT_ERR("{{ foo }}", NULL, LLEM_EFORMAT, "template: :1: function \"foo\" not defined");
    EXPECT_ERR("a\n{{ if 1 }}", NULL, LLEM_EFORMAT, "unexpected EOF");
    EXPECT_ERR("{{ $x }}", NULL, LLEM_EFORMAT, "undefined variable \"$x\"");
    EXPECT_ERR("{{ end }}", NULL, LLEM_EFORMAT, "unexpected {{end}}");
    EXPECT_ERR("{{ break }}", NULL, LLEM_EFORMAT, "{{break}} outside {{range}}");
    EXPECT_ERR("{{ .a", NULL, LLEM_EFORMAT, "unclosed action");
    EXPECT_ERR("{{ /* x */ }}", NULL, LLEM_EFORMAT, "unexpected \"/\" in command");
    EXPECT_ERR("{{ \x01 }}", NULL, LLEM_EFORMAT, "unrecognized character in action: U+0001");
    EXPECT_ERR("{{/* x */ 1 }}", NULL, LLEM_EFORMAT, "comment ends before closing delimiter");
    EXPECT_ERR("{{ \"abc }}", NULL, LLEM_EFORMAT, "unterminated quoted string");
    EXPECT_ERR("{{ 1 | 2 }}", NULL, LLEM_EFORMAT, "non executable command in pipeline stage 2");
    EXPECT_ERR("{{ (1 }}", NULL, LLEM_EFORMAT, "unclosed left paren");
    EXPECT_ERR("{{ template \"x\" }}", NULL, LLEM_EFORMAT, "undefined template specified");
    EXPECT_ERR("{{ 99999999999999999999 }}", NULL, LLEM_EFORMAT, "integer overflow");
}

static void test_exec_errors(void)
{
    EXPECT_ERR("{{ len 3 }}", NULL, LLEM_EINVAL, "error calling len: len of type int");
    EXPECT_ERR("x\n  {{ lt 1 \"a\" }}", NULL, LLEM_EINVAL,
               "template: :2:5: executing \"\" at <lt>: error calling lt: incompatible types for comparison");
    EXPECT_ERR("{{ .a.b }}", "{}", LLEM_EINVAL, "nil pointer evaluating interface {}.b");
    EXPECT_ERR("{{ index .l 5 }}", "{\"l\":[1]}", LLEM_EINVAL, "index out of range: 5");
    EXPECT_ERR("{{ template \"nope\" . }}", NULL, LLEM_EINVAL, "template \"nope\" not defined");
    EXPECT_ERR("{{ range 1.5 }}{{ end }}", NULL, LLEM_EINVAL, "range can't iterate over 1.5");
    EXPECT_ERR("{{ nil }}", NULL, LLEM_EINVAL, "nil is not a command");
    EXPECT_ERR("{{ .a 1 }}", "{\"a\":1}", LLEM_EINVAL, "a is not a method but has arguments");
    EXPECT_ERR("{{ currentDate 1 }}", NULL, LLEM_EINVAL, "expected string; found 1");
    EXPECT_ERR("{{ not 1 2 }}", NULL, LLEM_EINVAL, "wrong number of args for not: want 1 got 2");
    CHECK_EQ_I64(run("{{ range .Messages }}{{ .Nope }}{{ end }}",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", true),
                 LLEM_EINVAL);
    CHECK(strstr(result, "can't evaluate field Nope in type *api.Message") != NULL);
}

static void test_limits(void)
{
    struct gotmpl_limits lim;
    gotmpl_limits_default(&lim);
    CHECK_EQ_I64(run_lim("{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}",
                         NULL, false, &lim), LLEM_ELIMIT);
    CHECK(strstr(result, "maximum template depth") != NULL);
    // exponential output: 2^40 copies without the caps
    lim.max_output_bytes = 1u << 16;
    CHECK_EQ_I64(run_lim("{{ define \"a\" }}{{ if lt (len .) 40 }}{{ template \"a\" (printf \"%s.\" .) }}"
                         "{{ template \"a\" (printf \"%s.\" .) }}{{ else }}xxxxxxxx{{ end }}{{ end }}"
                         "{{ template \"a\" \"\" }}", NULL, false, &lim), LLEM_ELIMIT);
    gotmpl_limits_default(&lim);
    lim.max_loop_iters = 1000;
    CHECK_EQ_I64(run_lim("{{ range 100000000 }}{{ end }}", NULL, false, &lim), LLEM_ELIMIT);
    CHECK(strstr(result, "iterations") != NULL);
    gotmpl_limits_default(&lim);
    lim.max_memory_bytes = 1u << 20;
    CHECK_EQ_I64(run_lim("{{ $s := \"xxxxxxxx\" }}{{ range 100 }}{{ $s = printf \"%s%s\" $s $s }}"
                         "{{ end }}", NULL, false, &lim), LLEM_ELIMIT);
    gotmpl_limits_default(&lim);
    lim.max_steps = 10000;
    CHECK_EQ_I64(run_lim("{{ range 100000 }}{{ $x := 1 }}{{ end }}", NULL, false, &lim),
                 LLEM_ELIMIT);
    // output cap of the caller's buffer is honoured too, and a failed render appends nothing
    struct gotmpl *t = NULL;
    struct llem_errbuf eb;
    CHECK_OK(gotmpl_parse(&t, "{{ range 100 }}0123456789{{ end }}", 34, &eb), &eb);
    struct strbuf out;
    strbuf_init(&out, 100);
    CHECK_OK(strbuf_append_str(&out, "keep"), &eb);
    CHECK_EQ_I64(gotmpl_execute_json(t, NULL, NULL, &out, &eb), LLEM_ELIMIT);
    CHECK_EQ_STR(strbuf_cstr(&out), "keep");
    strbuf_deinit(&out);
    gotmpl_free(t);
}

static const char *const chat_req =
    "{\"messages\":["
    "{\"role\":\"system\",\"content\":\"A\"},{\"role\":\"System\",\"content\":\"B\"},"
    "{\"role\":\"user\",\"content\":\"look [img] here\",\"images\":[\"aGk=\"]},"
    "{\"role\":\"user\",\"content\":\"and\",\"images\":[\"aGk=\",\"aGk=\"]},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"get_weather\","
    "\"arguments\":{\"city\":\"Paris\",\"a\":1}}}]},"
    "{\"role\":\"tool\",\"content\":\"21\"},{\"role\":\"tool\",\"content\":\"22\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Get <weather>\",\"parameters\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":"
    "{\"city\":{\"type\":\"string\",\"description\":\"City\"},\"n\":{\"type\":[\"integer\",\"null\"]}}}}}],"
    "\"think\":true}";

static void test_ollama_chat(void)
{
    EXPECT_CHAT("{{ .System }}|{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}", chat_req,
                "A\n\nB|system:A\n\nB;user:look [img-0] here\n\n[img-1][img-2]and;assistant:;"
                "tool:21;tool:22;");
    EXPECT_CHAT("{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Name }}({{ .Function.Arguments }})"
                "{{ json .Function.Arguments }}{{ end }}{{ end }}", chat_req,
                "get_weather({\"a\":1,\"city\":\"Paris\"}){\"a\":1,\"city\":\"Paris\"}");
    EXPECT_CHAT("{{ $m := .Messages }}{{ range .Tools }}{{ .Function }}{{ end }}", chat_req,
                "{\"name\":\"get_weather\",\"description\":\"Get \\u003cweather\\u003e\","
                "\"parameters\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":"
                "{\"city\":{\"type\":\"string\",\"description\":\"City\"},\"n\":{\"type\":"
                "[\"integer\",\"null\"]}}}}");
    EXPECT_CHAT("{{ $m := .Messages }}{{ range .Tools }}{{ json . }}{{ end }}", chat_req,
                "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
                "\"Get \\u003cweather\\u003e\",\"parameters\":{\"type\":\"object\",\"required\":"
                "[\"city\"],\"properties\":{\"city\":{\"type\":\"string\",\"description\":\"City\"},"
                "\"n\":{\"type\":[\"integer\",\"null\"]}}}}}");
    EXPECT_CHAT("{{ $m := .Messages }}{{ range .Tools }}{{ range $k, $p := .Function.Parameters.Properties }}{{ $k }}:"
                "{{ $p.Type }}:{{ toTypeScriptType $p }};{{ end }}{{ end }}", chat_req,
                "city:string:string;n:[integer null]:number | null;");
    EXPECT_CHAT("{{ .Think }} {{ .ThinkLevel }} {{ .IsThinkSet }}{{ .Messages | len }}", chat_req,
                "true medium true5");
    EXPECT_CHAT("{{ .Think }} {{ .ThinkLevel }} {{ .IsThinkSet }}{{ .Messages }}{{ .Tools }}",
                "{\"messages\":[]}", "false  false[]null");
    // a template that never mentions .Messages takes the legacy path: no .Tools there
    EXPECT_CHAT("{{ .Tools }}|{{ .Prompt }}", chat_req,
                "<no value>|look [img-0] here\n\n[img-1][img-2]and");
    // legacy templates: one execution per turn, the last one cut after .Response
    EXPECT_CHAT("{{ if .System }}S:{{ .System }} {{ end }}U:{{ .Prompt }} A:{{ .Response }}</s>",
                "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\","
                "\"content\":\"u1\"},{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"user\","
                "\"content\":\"u2\"}]}", "S:s U:u1 A:a1</s>U:u2 A:");
    EXPECT_CHAT("[{{ .Prompt }}]", "{\"messages\":[{\"role\":\"user\",\"content\":\"u1\"},"
                "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"user\",\"content\":\"u2\"}]}",
                "[u1]a1[u2]");
    EXPECT_CHAT("<{{ .Prompt }}|{{ .Suffix }}>", "{\"prompt\":\"p\",\"suffix\":\"s\"}", "<p|s>");
    CHECK_EQ_I64(run("x", "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", true), LLEM_EINVAL);
    CHECK_EQ_I64(run("x", "{\"think\":\"max\"}", true), LLEM_EINVAL);
}

static void test_alloc_failures(void)
{
    const char *src = "{{ range $i, $m := .Messages }}{{ printf \"%d:%s\" $i .Content }}"
                      "{{ json $.Tools }}{{ end }}";
    int fired = 0;
    for (uint64_t k = 1; k < 400; k++) {
        struct gotmpl *t = NULL;
        struct llem_errbuf eb;
        cJSON *j = cJSON_Parse(chat_req);
        struct strbuf out;
        strbuf_init(&out, 0);
        llem_alloc_fail_at(k, 0);
        enum llem_err e = gotmpl_parse(&t, src, strlen(src), &eb);
        if (!e) e = gotmpl_render_chat(t, j, NULL, &out, &eb);
        int hit = llem_alloc_fail_fired();
        llem_alloc_fail_at(0, 0);
        CHECK(e == LLEM_OK || e == LLEM_ENOMEM);
        CHECK(hit || e == LLEM_OK);
        strbuf_deinit(&out);
        gotmpl_free(t);
        cJSON_Delete(j);
        if (!hit) break;
        fired++;
    }
    CHECK(fired > 5);
}

int main(void)
{
    setenv("TZ", "UTC", 1); // currentDate is local time; the expected dates are UTC
    tzset();
    RUN_TEST(test_text_trim_comments);
    RUN_TEST(test_variables_control);
    RUN_TEST(test_builtins);
    RUN_TEST(test_formatting);
    RUN_TEST(test_define_template_block);
    RUN_TEST(test_parse_errors);
    RUN_TEST(test_exec_errors);
    RUN_TEST(test_limits);
    RUN_TEST(test_ollama_chat);
    RUN_TEST(test_alloc_failures);
    return TEST_EXIT();
}
