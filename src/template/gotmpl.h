// template/gotmpl.h: the Go text/template engine for Ollama TEMPLATEs (Modelfile and store
// layers). Parse once, execute many: a parsed template is immutable and may be executed from
// several threads at once. Execution is sandboxed: output bytes, loop iterations, evaluation
// steps, memory and template recursion are capped; a template error is a message naming the
// line and column (Go's own wording where it has one), never a crash.
// Entry points: gotmpl_parse, gotmpl_render_chat (Ollama's chat path), gotmpl_execute_json.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/strbuf.h"

struct gotmpl;

// Caps for one execution. gotmpl_limits_default fills the values of base/limits.h.
struct gotmpl_limits {
    size_t max_output_bytes;  // bytes this execution may append to the output buffer
    uint64_t max_loop_iters;  // range iterations over the whole execution
    uint64_t max_steps;       // evaluated nodes over the whole execution (CPU bound)
    size_t max_memory_bytes;  // bytes of values built while executing (printf results, ...)
    unsigned max_depth;       // nested {{template}} calls
    int64_t now_unix;         // clock for currentDate/yesterdayDate; 0 = the real clock
};
void gotmpl_limits_default(struct gotmpl_limits *lim);

// Parses src[0..len) as Ollama does (template.Parse): Go text/template syntax with the
// functions of Go plus Ollama's json, currentDate, yesterdayDate and toTypeScriptType. Errors
// (LLEM_EFORMAT) read like Go's: "template: :3: function \"foo\" not defined". On success *out
// owns a copy of src; free with gotmpl_free. src need not be NUL-terminated.
enum llem_err gotmpl_parse(struct gotmpl **out, const char *src, size_t len,
                           struct llem_errbuf *eb);
void gotmpl_free(struct gotmpl *t); // t may be NULL

// True when the template mentions the identifier (a field or variable name, compared without
// case) anywhere, as Ollama's Template.Vars() does: "messages", "tools", "response", "suffix".
// Ollama infers capabilities from this (tools: "tools"; insert: "suffix").
bool gotmpl_uses(const struct gotmpl *t, const char *name);

// Renders an Ollama chat through the template exactly as Ollama's Template.Execute does.
// req is a JSON object in Ollama's API shape:
//   {"messages": [{"role", "content", "thinking", "images": [base64...],
//                  "tool_calls": [{"id", "function": {"index", "name", "arguments": {}}}],
//                  "tool_name", "tool_call_id"}...],
//    "tools": [{"type": "function", "function": {"name", "description", "parameters"}}...],
//    "think": true | false | "high" | "medium" | "low"   (absent: not set),
//    "prompt": "...", "suffix": "..."}                     (fill-in-the-middle, generate only)
// Consecutive messages of one role are merged (except tool messages), all system messages are
// joined into .System, images become "[img-N]" tags in their message's content (N counts
// from 0 over req's messages; a literal "[img]" is replaced, else the tag is prefixed).
// Templates that never mention .Messages run once per turn with .System/.Prompt/.Response,
// the last turn cut after {{ .Response }}. The result is appended to out.
// Errors: LLEM_EINVAL (bad request shape or a template execution error; the message says
// which), LLEM_ELIMIT (a cap of lim, or out's own cap), LLEM_ENOMEM. lim may be NULL.
enum llem_err gotmpl_render_chat(const struct gotmpl *t, const cJSON *req,
                                 const struct gotmpl_limits *lim, struct strbuf *out,
                                 struct llem_errbuf *eb);

// Executes the template with data converted as Go's json.Unmarshal into `any` would (objects
// become map[string]any, numbers float64, null nil): the generic path, for `llem template`
// with hand-written data and for tests. data may be NULL (Go's nil). Same errors as above.
enum llem_err gotmpl_execute_json(const struct gotmpl *t, const cJSON *data,
                                  const struct gotmpl_limits *lim, struct strbuf *out,
                                  struct llem_errbuf *eb);

// ---- built-in templates (Ollama's detection table) ---------------------------------------
// The table and template texts are Ollama's data; llem does not ship them. They are read at
// run time from a folder laid out like ../shared/testdata/gotemplates (index.json,
// <name>.gotmpl, <name>.json): $LLEM_GOTEMPLATES_DIR, else $LLEM_SHARED/testdata/gotemplates.

// The built-in template whose Jinja source is closest to jinja_src by Levenshtein distance
// over code points, if that distance is below 100 (ties: the first in index.json), as Ollama
// does at create time. Returns a name with static lifetime, or NULL when nothing is close
// enough or the table is absent. Thread-safe (the table is loaded once).
const char *gotmpl_builtin_for(const char *jinja_src);

// Same with an explicit folder: copies the matched name into name[0..name_size) ("" when
// nothing is close enough). LLEM_ENOTFOUND when dir has no readable index.json, LLEM_EFORMAT
// when it does not parse, LLEM_ELIMIT when the name does not fit.
enum llem_err gotmpl_builtin_for_dir(const char *dir, const char *jinja_src, char *name,
                                     size_t name_size, struct llem_errbuf *eb);

// Appends the text of built-in template `name` (<dir>/<name>.gotmpl, CRLF turned into LF) to
// text and, when params is not NULL, its parameters JSON (<name>.json, e.g. {"stop": [...]},
// "" when absent) to params. dir NULL means the default folder above. LLEM_ENOTFOUND when
// the folder or the template is missing; LLEM_EINVAL for a name with a path separator.
enum llem_err gotmpl_builtin_load(const char *dir, const char *name, struct strbuf *text,
                                  struct strbuf *params, struct llem_errbuf *eb);
