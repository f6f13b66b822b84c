// template/template.h: chat-template rendering. The Jinja engine renders a GGUF's
// `tokenizer.chat_template` as Hugging Face's apply_chat_template does (jinja2's sandboxed
// environment with trim_blocks and lstrip_blocks, loop controls, transformers' tojson,
// raise_exception and strftime_now). Compile once, render many: a compiled template is
// immutable and may be rendered from several threads at once. Rendering is sandboxed (caps
// on loop iterations, recursion, memory and output; no I/O); errors carry line:col.
// The Go-template engine for Ollama TEMPLATEs is in template/gotmpl.h.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/strbuf.h"

struct tpl_jinja;

// Parses src[0..len) (need not be NUL-terminated; newlines are normalized and one trailing
// newline dropped, as jinja2 does). Errors: LLEM_EINVAL (syntax error, unknown tag/filter/test
// outside a conditional; eb says "line L:C: TemplateSyntaxError: ..."), LLEM_ELIMIT (source
// over 1 MiB, nesting deeper than 200), LLEM_ENOMEM. On success *out is freed with
// tpl_jinja_free; it does not reference src.
enum llem_err tpl_jinja_compile(const char *src, size_t len, struct tpl_jinja **out,
                                struct llem_errbuf *eb);
void tpl_jinja_free(struct tpl_jinja *t); // t may be NULL

struct tpl_jinja_opts {
    int64_t now_unix;  // instant strftime_now formats, as UTC; 0 = the real clock, local time
    size_t max_output; // bytes of output (and of any one string); 0 = LLEM_TEMPLATE_MAX_OUTPUT_BYTES
};

// Renders t with the variables of vars_json[0..vars_len), a JSON object: messages, tools,
// add_generation_prompt, bos_token, eos_token and any extra keyword arguments (e.g.
// enable_thinking); key order and the int/float distinction of JSON numbers are kept. Names
// that are absent are undefined in the template. On success the output is appended to out;
// on error out is unchanged (never partial output). Errors: LLEM_EINVAL (bad variables JSON,
// or an error raised while rendering: raise_exception's "TemplateError: <message>",
// "UndefinedError: ...", "TypeError: ...", "SecurityError: ..." with line:col), LLEM_ELIMIT
// (loop iterations, recursion, memory or output caps; or out's own cap), LLEM_ENOMEM.
// opts may be NULL. Thread-safe for concurrent renders of one t.
enum llem_err tpl_jinja_render(const struct tpl_jinja *t, const char *vars_json, size_t vars_len,
                               const struct tpl_jinja_opts *opts, struct strbuf *out,
                               struct llem_errbuf *eb);

// Compile + render in one call (the CLI, tests).
enum llem_err tpl_jinja_render_src(const char *src, size_t len, const char *vars_json,
                                   size_t vars_len, const struct tpl_jinja_opts *opts,
                                   struct strbuf *out, struct llem_errbuf *eb);
