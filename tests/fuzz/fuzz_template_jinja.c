// tests/fuzz/fuzz_template_jinja.c: libFuzzer target for the Jinja engine. The input is
// template source, compiled and rendered against a fixed chat (system/user/assistant with tool
// calls, a tool result, tools, extra kwargs) with a 1 MiB output cap. Any result is fine except
// a crash, a sanitizer report, a leak, or success with an empty error-free contract broken.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/strbuf.h"
#include "template/template.h"

static const char VARS[] =
    "{\"messages\": ["
    "{\"role\": \"system\", \"content\": \"You are helpful.\"},"
    "{\"role\": \"user\", \"content\": \"What's the weather in Paris? \\u00e9\\u65e5 <b>&</b>\"},"
    "{\"role\": \"assistant\", \"content\": \"<think>hmm</think>Let me check.\", \"tool_calls\": ["
    "{\"id\": \"call_1\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\","
    " \"arguments\": {\"location\": \"Paris\", \"days\": 3, \"ratio\": 0.5, \"x\": null}}}]},"
    "{\"role\": \"tool\", \"tool_call_id\": \"call_1\", \"content\": \"{\\\"temp\\\": 21}\"},"
    "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"thanks\"}]}],"
    "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
    " \"description\": \"Get weather\", \"parameters\": {\"type\": \"object\", \"properties\":"
    " {\"location\": {\"type\": \"string\"}, \"days\": {\"type\": \"integer\"}},"
    " \"required\": [\"location\"]}}}],"
    "\"documents\": null, \"add_generation_prompt\": true, \"bos_token\": \"<s>\","
    " \"eos_token\": \"</s>\", \"enable_thinking\": false, \"n\": 7, \"f\": 1.0}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tpl_jinja *t = NULL;
    struct llem_errbuf eb = {0};
    if (tpl_jinja_compile((const char *)data, size, &t, &eb) != LLEM_OK) {
        return 0;
    }
    struct tpl_jinja_opts opts = {.now_unix = 1768478400, .max_output = 1u << 20};
    struct strbuf out;
    strbuf_init(&out, 0);
    enum llem_err e = tpl_jinja_render(t, VARS, sizeof(VARS) - 1, &opts, &out, &eb);
    if (e != LLEM_OK && out.len != 0) {
        __builtin_trap(); // a failed render must leave the output untouched
    }
    strbuf_deinit(&out);
    tpl_jinja_free(t);
    return 0;
}
