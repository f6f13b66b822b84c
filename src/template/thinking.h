// template/thinking.h: separates a model's reasoning from its answer in streamed output. The
// thinking tags (<think>...</think> for qwen3 / deepseek-r1 style models) are detected from the
// chat template's text; a streaming state machine then routes each chunk's bytes to
// `thinking` or `content`, holding back a partial tag at a chunk boundary so a tag never leaks
// into either. A template that opens the tag itself (the rendered prompt ends with it) means
// the output starts inside thinking. Harmony (gpt-oss) channels are handled by
// template/toolcall.h instead.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/strbuf.h"

#define THINK_TAG_MAX 32

struct think_tags {
    char open[THINK_TAG_MAX];  // "<think>"; "" when the template has no thinking
    char close[THINK_TAG_MAX]; // "</think>"
};

// Finds the thinking tags a chat template (Jinja or Go) uses. Known pairs: <think>/</think>,
// <thinking>/</thinking>, <seed:think>/</seed:think>, <|begin_of_thought|>/
// <|end_of_thought|>, [THINK]/[/THINK]. Returns false (tags empty) when none occurs.
bool think_detect(const char *tpl, size_t len, struct think_tags *tags);

// Whether the template can switch thinking off by itself: a Jinja template that reads
// `enable_thinking` (render it with enable_thinking=false for think:false), or a Go template
// that reads `.Think`. Otherwise think:false is honoured by stripping thinking from output.
bool think_template_has_switch(const char *tpl, size_t len);

// Whether a rendered prompt ends inside thinking: its last non-whitespace text is the open tag
// (e.g. deepseek-r1's "<think>\n", or qwen3's generation prompt after enable_thinking).
bool think_prompt_primed(const struct think_tags *t, const char *prompt, size_t len);

enum think_phase {
    THINK_PHASE_BEFORE,  // looking for the open tag (leading whitespace held)
    THINK_PHASE_INSIDE,  // between the tags: bytes are thinking
    THINK_PHASE_AFTER,   // closed: bytes are content (leading whitespace after the tag eaten)
    THINK_PHASE_CONTENT, // no thinking in this output: everything is content
};

// Caller-owned streaming state; no allocation of its own.
struct think_parser {
    struct think_tags tags;
    enum think_phase phase;
    bool discard;       // think:false without template support: drop thinking text
    bool eat_ws;        // skip whitespace at the start of the current section
    char held[THINK_TAG_MAX + 8]; // bytes that may be the start of a tag
    size_t n_held;
};

// tags == NULL or empty: every byte is content. start_inside: the prompt was primed
// (think_prompt_primed). discard: thinking is dropped instead of returned.
void think_parser_init(struct think_parser *p, const struct think_tags *tags, bool start_inside,
                       bool discard);

// Feeds chunk s[0..n) of output; appends what is decided to content / thinking (thinking may
// be NULL when discard). done: the output ended, so whatever is held is flushed (a partial tag
// at the very end is content, or thinking when inside). Errors only from the strbufs
// (LLEM_ELIMIT, LLEM_ENOMEM); the parser state then is unspecified.
enum llem_err think_parser_add(struct think_parser *p, const char *s, size_t n, bool done,
                               struct strbuf *content, struct strbuf *thinking);
