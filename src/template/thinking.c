// template/thinking.c: thinking-tag detection from template text and the streaming splitter of
// output into thinking and content. The splitter works byte by byte with a small held buffer
// holding a possible partial tag (never emitted until it is known not to be the tag).
#include "template/thinking.h"

#include <string.h>

static const char *const PAIRS[][2] = {
    {"<think>", "</think>"},
    {"<thinking>", "</thinking>"},
    {"<seed:think>", "</seed:think>"},
    {"<|begin_of_thought|>", "<|end_of_thought|>"},
    {"[THINK]", "[/THINK]"},
};

static bool has(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(s + i, needle, k) == 0) {
            return true;
        }
    }
    return false;
}

bool think_detect(const char *tpl, size_t len, struct think_tags *tags)
{
    memset(tags, 0, sizeof *tags);
    for (size_t i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++) {
        if (has(tpl, len, PAIRS[i][0]) && has(tpl, len, PAIRS[i][1])) {
            memcpy(tags->open, PAIRS[i][0], strlen(PAIRS[i][0]) + 1);
            memcpy(tags->close, PAIRS[i][1], strlen(PAIRS[i][1]) + 1);
            return true;
        }
    }
    return false;
}

bool think_template_has_switch(const char *tpl, size_t len)
{
    if (has(tpl, len, "enable_thinking")) {
        return true;
    }
    for (size_t i = 0; i + 6 <= len; i++) { // Go: .Think or .ThinkLevel, not .Thinking
        if (memcmp(tpl + i, ".Think", 6) == 0 && (i + 6 == len || tpl[i + 6] != 'i')) {
            return true;
        }
    }
    return false;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool think_prompt_primed(const struct think_tags *t, const char *prompt, size_t len)
{
    size_t k = strlen(t->open);
    while (len > 0 && is_ws(prompt[len - 1])) {
        len--;
    }
    return k > 0 && len >= k && memcmp(prompt + len - k, t->open, k) == 0;
}

void think_parser_init(struct think_parser *p, const struct think_tags *tags, bool start_inside,
                       bool discard)
{
    memset(p, 0, sizeof *p);
    if (tags) {
        p->tags = *tags;
    }
    p->discard = discard;
    if (!p->tags.open[0] || !p->tags.close[0]) {
        p->phase = THINK_PHASE_CONTENT;
    } else {
        p->phase = start_inside ? THINK_PHASE_INSIDE : THINK_PHASE_BEFORE;
        p->eat_ws = true;
    }
}

static enum llem_err emit(struct think_parser *p, bool thinking, const char *s, size_t n,
                          struct strbuf *content, struct strbuf *th)
{
    if (n == 0) {
        return LLEM_OK;
    }
    if (thinking) {
        return p->discard || !th ? LLEM_OK : strbuf_append(th, s, n);
    }
    return strbuf_append(content, s, n);
}

// Feeds byte c to the tag matcher: held is a proper prefix of tag. Bytes that can no longer
// start the tag are emitted; returns true when the whole tag has just been matched.
static bool match_byte(struct think_parser *p, const char *tag, char c, bool thinking,
                       struct strbuf *content, struct strbuf *th, enum llem_err *e)
{
    size_t k = strlen(tag);
    p->held[p->n_held++] = c;
    while (p->n_held > 0 && memcmp(p->held, tag, p->n_held) != 0) {
        if ((*e = emit(p, thinking, p->held, 1, content, th))) {
            return false;
        }
        memmove(p->held, p->held + 1, --p->n_held);
    }
    if (p->n_held == k) {
        p->n_held = 0;
        return true;
    }
    return false;
}

enum llem_err think_parser_add(struct think_parser *p, const char *s, size_t n, bool done,
                               struct strbuf *content, struct strbuf *thinking)
{
    enum llem_err e = LLEM_OK;
    size_t i = 0;
    while (i < n && !e) {
        char c = s[i];
        switch (p->phase) {
        case THINK_PHASE_CONTENT: // the rest is content: one append
            e = emit(p, false, s + i, n - i, content, thinking);
            i = n;
            continue;
        case THINK_PHASE_BEFORE:
            if (p->n_held == 0 && is_ws(c)) {
                break; // leading whitespace before the open tag is dropped
            }
            if (match_byte(p, p->tags.open, c, false, content, thinking, &e)) {
                p->phase = THINK_PHASE_INSIDE;
                p->eat_ws = true;
            } else if (!e && p->n_held == 0) {
                p->phase = THINK_PHASE_CONTENT; // something else came first
            }
            break;
        case THINK_PHASE_INSIDE:
            if (p->eat_ws && p->n_held == 0 && is_ws(c)) {
                break;
            }
            p->eat_ws = false;
            if (p->n_held == 0 && c != p->tags.close[0]) { // fast path: a run of plain bytes
                size_t j = i;
                while (j < n && s[j] != p->tags.close[0]) {
                    j++;
                }
                e = emit(p, true, s + i, j - i, content, thinking);
                i = j;
                continue;
            }
            if (match_byte(p, p->tags.close, c, true, content, thinking, &e)) {
                p->phase = THINK_PHASE_AFTER;
                p->eat_ws = true;
            }
            break;
        case THINK_PHASE_AFTER:
            if (p->eat_ws && is_ws(c)) {
                break;
            }
            p->eat_ws = false;
            e = emit(p, false, s + i, n - i, content, thinking);
            i = n;
            continue;
        }
        i++;
    }
    if (!e && done && p->n_held) {
        e = emit(p, p->phase == THINK_PHASE_INSIDE, p->held, p->n_held, content, thinking);
        p->n_held = 0;
    }
    return e;
}
