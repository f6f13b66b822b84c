// template/toolcall.h: turns streamed model output into tool calls. The call format is detected
// from the chat template's text (Llama 3.x JSON / <|python_tag|>, Hermes/Qwen <tool_call>,
// Mistral [TOOL_CALLS], gpt-oss harmony channels, generic JSON); the parser passes content
// through until a call starts, holds back anything that might be the start of a call marker (so
// a marker never leaks into content), parses any number of calls per turn, and formats them as
// Ollama (`message.tool_calls`, object arguments) or OpenAI (string arguments, "call_" ids)
// expect. Output must be rendered with special tokens visible (e.g. "<|channel|>"), EOG
// tokens excluded.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/strbuf.h"

enum tc_format {
    TC_FORMAT_NONE,    // no tool calling: everything is content
    TC_FORMAT_JSON,    // generic: output that starts with { or [ holding {"name", "arguments"}
    TC_FORMAT_LLAMA3,  // Llama 3.x: <|python_tag|>{...} or a bare {"name", "parameters"} object
    TC_FORMAT_HERMES,  // Hermes / Qwen: <tool_call>{...}</tool_call>, repeated
    TC_FORMAT_MISTRAL, // [TOOL_CALLS][{...}, ...] or [TOOL_CALLS]name[ARGS]{...}
    TC_FORMAT_HARMONY, // gpt-oss: <|channel|>commentary to=functions.NAME ...<|message|>{...}
};

const char *tc_format_name(enum tc_format f); // "hermes", ...

// The format a chat template (Jinja or Go) implies: harmony markers, <tool_call>,
// [TOOL_CALLS], <|python_tag|> / "parameters", else TC_FORMAT_JSON when the template mentions
// tools at all, else TC_FORMAT_NONE.
enum tc_format tc_detect(const char *tpl, size_t len);

struct tc_call {
    char *name;       // NUL-terminated, owned by the parser
    char *arguments;  // the arguments as compact JSON object text, NUL-terminated ("{}" if none)
    int32_t index;    // 0, 1, ... in order of appearance in this turn
    char id[32];      // "call_" + 8 random lowercase alphanumerics (OpenAI needs one)
};

struct tc_parser;

// tools_json: the request's OpenAI-shaped `tools` array as JSON text, used to recognise tool
// names (may be NULL / 0: any name is accepted). id_seed seeds the call ids (0: from the
// clock). Errors: LLEM_EINVAL (tools not a JSON array), LLEM_ENOMEM.
enum llem_err tc_parser_new(struct tc_parser **out, enum tc_format f, const char *tools_json,
                            size_t tools_len, uint64_t id_seed, struct llem_errbuf *eb);
void tc_parser_free(struct tc_parser *p); // NULL is a no-op

// Feeds chunk s[0..n) of output. Appends text decided to be content to `content`, harmony
// analysis text to `thinking` (may be NULL: dropped), and completes calls into the parser's
// list (tc_parser_n_calls grows). done: end of output; a call in progress is completed if its
// JSON is complete, otherwise its text goes back to content (never silently dropped).
// Errors: LLEM_ELIMIT / LLEM_ENOMEM (strbufs, a call over 1 MiB).
enum llem_err tc_parser_add(struct tc_parser *p, const char *s, size_t n, bool done,
                            struct strbuf *content, struct strbuf *thinking,
                            struct llem_errbuf *eb);

int32_t tc_parser_n_calls(const struct tc_parser *p);
const struct tc_call *tc_parser_call(const struct tc_parser *p, int32_t i); // NULL if out of range

// Appends one call in Ollama's shape: {"function":{"index":I,"name":"N","arguments":{...}}}
// (also "id" when with_id).
enum llem_err tc_call_append_ollama(const struct tc_call *c, bool with_id, struct strbuf *out);

// Appends one call in OpenAI's shape: {"index":I,"id":"call_x","type":"function","function":
// {"name":"N","arguments":"{...}"}} (arguments as a JSON string; "index" only when stream).
enum llem_err tc_call_append_openai(const struct tc_call *c, bool stream, struct strbuf *out);
