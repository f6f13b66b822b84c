// tests/fuzz/fuzz_template_gotmpl.c: libFuzzer target for the Go-template engine. The input is
// a template source; it is parsed and, when it parses, rendered through Ollama's chat path
// (a fixed conversation with a system prompt, tool calls, tools and think) and through the
// generic JSON path, under small caps so that loops and blow-ups end quickly. Any crash, leak
// or sanitizer report is a bug; template errors are expected and ignored.
#include <stddef.h>
#include <stdint.h>

#include "template/gotmpl.h"

static const char req_json[] =
    "{\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be brief <&>.\"},"
    "{\"role\":\"user\",\"content\":\"What is the weather in Paris?\",\"images\":[\"aGk=\"]},"
    "{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"call a tool\","
    "\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":"
    "{\"city\":\"Paris\",\"days\":3,\"opts\":{\"unit\":\"c\"},\"tags\":[1,2.5,null,true]}}}]},"
    "{\"role\":\"tool\",\"content\":\"{\\\"temp\\\": 21}\",\"tool_name\":\"get_weather\"},"
    "{\"role\":\"user\",\"content\":\"Thanks\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"description\":\"Get the weather\",\"parameters\":{\"type\":\"object\","
    "\"required\":[\"city\"],\"properties\":{\"city\":{\"type\":\"string\","
    "\"description\":\"City\"},\"days\":{\"type\":[\"integer\",\"null\"]},"
    "\"unit\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]}}}}}],"
    "\"think\":\"high\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384) return 0;
    struct llem_errbuf eb;
    struct gotmpl *t = NULL;
    if (gotmpl_parse(&t, (const char *)data, size, &eb) != LLEM_OK) return 0;
    struct gotmpl_limits lim;
    gotmpl_limits_default(&lim);
    lim.max_output_bytes = 1u << 16;
    lim.max_loop_iters = 2000;
    lim.max_steps = 100000;
    lim.max_memory_bytes = 8u << 20;
    lim.max_depth = 8;
    lim.now_unix = 1700000000;
    cJSON *req = cJSON_Parse(req_json);
    struct strbuf out;
    strbuf_init(&out, 1u << 20);
    (void)gotmpl_render_chat(t, req, &lim, &out, &eb);
    strbuf_reset(&out);
    (void)gotmpl_execute_json(t, req, &lim, &out, &eb);
    strbuf_reset(&out);
    (void)gotmpl_execute_json(t, NULL, &lim, &out, &eb);
    strbuf_deinit(&out);
    cJSON_Delete(req);
    gotmpl_free(t);
    return 0;
}
