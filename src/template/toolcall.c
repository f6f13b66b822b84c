// template/toolcall.c: streaming tool-call parser. Everything not yet decided sits in `buf`:
// in TEXT the parser emits content up to any possible start of a call marker and holds the
// rest; in CALL it waits until the call's JSON (or closing tag) is complete, then records the
// call(s) and goes on. Harmony output is parsed by its channel headers instead (harmony_*).
// What cannot be parsed as a call is returned as content at the end, never dropped.
#include "template/toolcall.h"

#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/alloc.h"
#include "base/rng.h"

#define TC_MAX_BUF (1u << 20)

enum tc_state { TC_TEXT, TC_CALL, TC_H_HEADER, TC_H_BODY };
enum h_kind { H_CONTENT, H_THINKING, H_CALL };

struct tc_parser {
    enum tc_format f;
    enum tc_state state;
    struct strbuf buf;    // undecided text
    bool seen_text;       // some non-space output was already emitted as content
    const char *marker;   // the marker that opened the current call
    struct tc_call *calls;
    int32_t n_calls, cap_calls;
    char **names;         // known tool names (NULL: any)
    int32_t n_names;
    struct rng rng;
    enum h_kind h_kind;   // harmony body kind
    char h_name[128];     // harmony recipient function name
};

const char *tc_format_name(enum tc_format f)
{
    static const char *const names[] = {"none", "json", "llama3", "hermes", "mistral", "harmony"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "?";
}

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

enum tc_format tc_detect(const char *tpl, size_t len)
{
    if (has(tpl, len, "<|channel|>") && has(tpl, len, "<|start|>")) {
        return TC_FORMAT_HARMONY;
    }
    if (has(tpl, len, "<tool_call>")) {
        return TC_FORMAT_HERMES;
    }
    if (has(tpl, len, "[TOOL_CALLS]")) {
        return TC_FORMAT_MISTRAL;
    }
    if (has(tpl, len, "<|python_tag|>") ||
        (has(tpl, len, "<|start_header_id|>") && has(tpl, len, "parameters"))) {
        return TC_FORMAT_LLAMA3;
    }
    if (has(tpl, len, "tools") || has(tpl, len, ".Tools") || has(tpl, len, "tool_calls")) {
        return TC_FORMAT_JSON;
    }
    return TC_FORMAT_NONE;
}

enum llem_err tc_parser_new(struct tc_parser **out, enum tc_format f, const char *tools_json,
                            size_t tools_len, uint64_t id_seed, struct llem_errbuf *eb)
{
    *out = NULL;
    struct tc_parser *p = llem_calloc(1, sizeof *p);
    if (!p) {
        return llem_errf(eb, LLEM_ENOMEM, "tool calls: out of memory");
    }
    p->f = f;
    p->state = f == TC_FORMAT_HARMONY ? TC_H_HEADER : TC_TEXT;
    strbuf_init(&p->buf, TC_MAX_BUF);
    if (id_seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id_seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ (uintptr_t)p;
    }
    rng_seed(&p->rng, id_seed);
    if (tools_json && tools_len) {
        cJSON *t = cJSON_ParseWithLength(tools_json, tools_len);
        if (!cJSON_IsArray(t)) {
            cJSON_Delete(t);
            tc_parser_free(p);
            return llem_errf(eb, LLEM_EINVAL, "tools: expected a JSON array");
        }
        int n = cJSON_GetArraySize(t);
        p->names = llem_calloc((size_t)n + 1, sizeof *p->names);
        const cJSON *tool;
        cJSON_ArrayForEach(tool, t)
        {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn ? fn : tool, "name");
            if (p->names && cJSON_IsString(name)) {
                p->names[p->n_names] = llem_strdup(name->valuestring);
                p->n_names += p->names[p->n_names] != NULL;
            }
        }
        cJSON_Delete(t);
        if (!p->names) {
            tc_parser_free(p);
            return llem_errf(eb, LLEM_ENOMEM, "tool calls: out of memory");
        }
    }
    *out = p;
    return LLEM_OK;
}

void tc_parser_free(struct tc_parser *p)
{
    if (!p) {
        return;
    }
    for (int32_t i = 0; i < p->n_calls; i++) {
        llem_free(p->calls[i].name);
        llem_free(p->calls[i].arguments);
    }
    llem_free(p->calls);
    for (int32_t i = 0; i < p->n_names; i++) {
        llem_free(p->names[i]);
    }
    llem_free(p->names);
    strbuf_deinit(&p->buf);
    llem_free(p);
}

int32_t tc_parser_n_calls(const struct tc_parser *p)
{
    return p->n_calls;
}

const struct tc_call *tc_parser_call(const struct tc_parser *p, int32_t i)
{
    return i >= 0 && i < p->n_calls ? &p->calls[i] : NULL;
}

// ---- calls ---------------------------------------------------------------------------------

static bool name_known(const struct tc_parser *p, const char *name)
{
    if (!p->names || p->n_names == 0) {
        return true;
    }
    for (int32_t i = 0; i < p->n_names; i++) {
        if (strcmp(p->names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static enum llem_err add_call(struct tc_parser *p, const char *name, const cJSON *args)
{
    if (p->n_calls == p->cap_calls) {
        int32_t nc = p->cap_calls ? p->cap_calls * 2 : 4;
        struct tc_call *n = llem_realloc(p->calls, (size_t)nc * sizeof *n);
        if (!n) {
            return LLEM_ENOMEM;
        }
        p->calls = n;
        p->cap_calls = nc;
    }
    struct tc_call *c = &p->calls[p->n_calls];
    memset(c, 0, sizeof *c);
    c->name = llem_strdup(name);
    char *a = args ? cJSON_PrintUnformatted(args) : NULL;
    c->arguments = llem_strdup(a ? a : "{}");
    cJSON_free(a);
    if (!c->name || !c->arguments) {
        llem_free(c->name);
        llem_free(c->arguments);
        return LLEM_ENOMEM;
    }
    c->index = p->n_calls;
    memcpy(c->id, "call_", 5);
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < 8; i++) {
        c->id[5 + i] = alnum[rng_bounded(&p->rng, 36)];
    }
    c->id[13] = 0;
    p->n_calls++;
    return LLEM_OK;
}

// One call object: {"name", "arguments"|"parameters"} or {"function": {...}} (OpenAI-shaped);
// arguments may be an object or a string holding one. Returns false when it is not a call.
static bool call_from_json(struct tc_parser *p, const cJSON *o, enum llem_err *e)
{
    if (!cJSON_IsObject(o)) {
        return false;
    }
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(o, "function");
    if (cJSON_IsObject(fn)) {
        o = fn;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0] || !name_known(p, name->valuestring)) {
        return false;
    }
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!args) {
        args = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    }
    cJSON *parsed = NULL;
    if (cJSON_IsString(args)) {
        parsed = cJSON_Parse(args->valuestring);
        if (!cJSON_IsObject(parsed)) {
            cJSON_Delete(parsed);
            return false;
        }
        args = parsed;
    } else if (args && !cJSON_IsObject(args)) {
        return false;
    }
    *e = add_call(p, name->valuestring, args);
    cJSON_Delete(parsed);
    return *e == LLEM_OK;
}

// JSON text -> one call or an array of calls; all or nothing.
static bool calls_from_text(struct tc_parser *p, const char *s, size_t n, enum llem_err *e)
{
    cJSON *j = cJSON_ParseWithLength(s, n);
    if (!j) {
        return false;
    }
    bool ok = false;
    int32_t before = p->n_calls;
    if (cJSON_IsArray(j)) {
        const cJSON *it;
        ok = cJSON_GetArraySize(j) > 0;
        cJSON_ArrayForEach(it, j)
        {
            if (!call_from_json(p, it, e)) {
                ok = false;
                break;
            }
        }
    } else {
        ok = call_from_json(p, j, e);
    }
    if (!ok) { // undo partial arrays
        while (p->n_calls > before) {
            p->n_calls--;
            llem_free(p->calls[p->n_calls].name);
            llem_free(p->calls[p->n_calls].arguments);
        }
    }
    cJSON_Delete(j);
    return ok;
}

// End (exclusive) of the balanced JSON value starting at s[0] ('{' or '['): 0 if incomplete.
static size_t json_span(const char *s, size_t n)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) {
                return i + 1;
            }
        }
    }
    return 0;
}

static size_t find(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(s + i, needle, k) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

// Length of the longest suffix of s[0..n) that is a proper prefix of needle.
static size_t partial_suffix(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t l = k - 1 < n ? k - 1 : n; l > 0; l--) {
        if (memcmp(s + n - l, needle, l) == 0) {
            return l;
        }
    }
    return 0;
}

static bool all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r') {
            return false;
        }
    }
    return true;
}

static void consume(struct tc_parser *p, size_t n)
{
    memmove(p->buf.data, p->buf.data + n, p->buf.len - n);
    strbuf_truncate(&p->buf, p->buf.len - n);
}

static enum llem_err emit_content(struct tc_parser *p, const char *s, size_t n, struct strbuf *c)
{
    if (n == 0) {
        return LLEM_OK;
    }
    if (!all_space(s, n)) {
        p->seen_text = true;
    } else if (p->n_calls > 0) {
        return LLEM_OK; // whitespace between / after calls is not content
    }
    return strbuf_append(c, s, n);
}

// ---- marker formats ------------------------------------------------------------------------

// Markers that open a call anywhere in the text for this format.
static int markers(enum tc_format f, const char *m[2])
{
    switch (f) {
    case TC_FORMAT_HERMES: m[0] = "<tool_call>"; return 1;
    case TC_FORMAT_MISTRAL: m[0] = "[TOOL_CALLS]"; return 1;
    case TC_FORMAT_LLAMA3: m[0] = "<|python_tag|>"; return 1;
    default: return 0;
    }
}

// TEXT state: emit what cannot start a call; returns true when a call starts (state CALL).
static enum llem_err step_text(struct tc_parser *p, bool done, struct strbuf *content, bool *more)
{
    const char *s = p->buf.data ? p->buf.data : "";
    size_t n = p->buf.len;
    *more = false;
    // bare JSON at the start of the output (Llama 3 and generic JSON)
    if ((p->f == TC_FORMAT_JSON || p->f == TC_FORMAT_LLAMA3) && !p->seen_text) {
        size_t i = 0;
        while (i < n && all_space(s + i, 1)) {
            i++;
        }
        if (i < n && (s[i] == '{' || (p->f == TC_FORMAT_JSON && s[i] == '['))) {
            consume(p, i);
            p->marker = "";
            p->state = TC_CALL;
            *more = true;
            return LLEM_OK;
        }
        if (i == n && !done) {
            return LLEM_OK; // only whitespace so far: wait
        }
    }
    const char *m[2];
    int nm = markers(p->f, m);
    size_t first = SIZE_MAX, hold = 0;
    int which = -1;
    for (int k = 0; k < nm; k++) {
        size_t at = find(s, n, m[k]);
        if (at < first) {
            first = at;
            which = k;
        }
        size_t h = partial_suffix(s, n, m[k]);
        hold = h > hold ? h : hold;
    }
    if (which >= 0) {
        enum llem_err e = emit_content(p, s, first, content);
        if (e) {
            return e;
        }
        consume(p, first + strlen(m[which]));
        p->marker = m[which];
        p->state = TC_CALL;
        *more = true;
        return LLEM_OK;
    }
    size_t emit = done ? n : n - hold;
    enum llem_err e = emit_content(p, s, emit, content);
    if (!e) {
        consume(p, emit);
    }
    return e;
}

// Gives up on the call in progress: its marker and text become content.
static enum llem_err call_to_content(struct tc_parser *p, struct strbuf *content)
{
    enum llem_err e = emit_content(p, p->marker, strlen(p->marker), content);
    if (!e) {
        e = emit_content(p, p->buf.data ? p->buf.data : "", p->buf.len, content);
    }
    strbuf_reset(&p->buf);
    p->state = TC_TEXT;
    return e;
}

// CALL state: waits for a complete call, records it, and goes back to TEXT.
static enum llem_err step_call(struct tc_parser *p, bool done, struct strbuf *content, bool *more)
{
    const char *s = p->buf.data ? p->buf.data : "";
    size_t n = p->buf.len, i = 0;
    enum llem_err e = LLEM_OK;
    *more = false;
    while (i < n && (all_space(s + i, 1) || s[i] == ';' || s[i] == ',')) {
        i++; // separators between chained calls (Llama 3 uses ';')
    }
    if (p->f == TC_FORMAT_HERMES) {
        size_t end = find(s, n, "</tool_call>");
        if (end == SIZE_MAX && !done) {
            return LLEM_OK;
        }
        size_t body_end = end == SIZE_MAX ? n : end;
        if (!calls_from_text(p, s + i, body_end - i, &e)) {
            return e ? e : call_to_content(p, content);
        }
        consume(p, end == SIZE_MAX ? n : end + strlen("</tool_call>"));
        p->state = TC_TEXT;
        *more = true;
        return LLEM_OK;
    }
    if (p->f == TC_FORMAT_MISTRAL && i < n && s[i] != '[' && s[i] != '{') {
        size_t a = find(s, n, "[ARGS]"); // [TOOL_CALLS]name[ARGS]{...}
        size_t span = a == SIZE_MAX ? 0 : json_span(s + a + 6, n - a - 6);
        if (span == 0) {
            return done ? call_to_content(p, content) : LLEM_OK;
        }
        char name[128];
        size_t nl = a - i < sizeof name - 1 ? a - i : sizeof name - 1;
        memcpy(name, s + i, nl);
        name[nl] = 0;
        cJSON *args = cJSON_ParseWithLength(s + a + 6, span);
        if (!cJSON_IsObject(args) || !name_known(p, name)) {
            cJSON_Delete(args);
            return call_to_content(p, content);
        }
        e = add_call(p, name, args);
        cJSON_Delete(args);
        if (e) {
            return e;
        }
        consume(p, a + 6 + span);
        p->state = TC_TEXT;
        *more = true;
        return LLEM_OK;
    }
    if (i == n) {
        return done ? call_to_content(p, content) : LLEM_OK;
    }
    if (s[i] != '{' && s[i] != '[') {
        return call_to_content(p, content);
    }
    size_t span = json_span(s + i, n - i);
    if (span == 0) {
        return done ? call_to_content(p, content) : LLEM_OK;
    }
    if (!calls_from_text(p, s + i, span, &e)) {
        return e ? e : call_to_content(p, content);
    }
    // Llama 3 may chain calls with ';' (or newlines); the bare-JSON formats may follow with more
    size_t j = i + span;
    while (j < n && (all_space(s + j, 1) || s[j] == ';' || s[j] == ',')) {
        j++;
    }
    bool another = j < n && s[j] == '{';
    consume(p, j);
    p->marker = ""; // the marker was used: giving up later must not repeat it
    if (another) {
        *more = true; // another call right after
        return LLEM_OK;
    }
    if (j == n && !done) {
        return LLEM_OK; // maybe more calls: stay in CALL
    }
    p->state = TC_TEXT;
    *more = p->buf.len > 0;
    return LLEM_OK;
}

// ---- harmony -------------------------------------------------------------------------------

static const char *const H_ENDS[] = {"<|end|>", "<|call|>", "<|return|>", "<|start|>",
                                     "<|channel|>"};

// Header text (from <|start|>/<|channel|> up to <|message|>) -> body kind and recipient.
static void harmony_header(struct tc_parser *p, const char *h, size_t n)
{
    p->h_kind = H_CONTENT;
    p->h_name[0] = 0;
    size_t ch = find(h, n, "<|channel|>");
    if (ch != SIZE_MAX) {
        const char *c = h + ch + 11;
        size_t cn = n - ch - 11;
        if (cn >= 8 && memcmp(c, "analysis", 8) == 0) {
            p->h_kind = H_THINKING;
        }
    }
    size_t to = find(h, n, "to=functions.");
    if (to != SIZE_MAX) {
        size_t k = to + 13, l = 0;
        while (k < n && l + 1 < sizeof p->h_name && h[k] != ' ' && h[k] != '<' && h[k] != '\n') {
            p->h_name[l++] = h[k++];
        }
        p->h_name[l] = 0;
        p->h_kind = l ? H_CALL : p->h_kind;
    }
}

static enum llem_err harmony_finish_body(struct tc_parser *p, struct strbuf *content)
{
    if (p->h_kind != H_CALL) {
        return LLEM_OK;
    }
    const char *s = p->buf.data ? p->buf.data : "";
    cJSON *args = cJSON_ParseWithLength(s, p->buf.len);
    enum llem_err e = LLEM_OK;
    if (cJSON_IsObject(args) && name_known(p, p->h_name)) {
        e = add_call(p, p->h_name, args);
    } else {
        e = emit_content(p, s, p->buf.len, content); // never dropped
    }
    cJSON_Delete(args);
    strbuf_reset(&p->buf);
    return e;
}

static enum llem_err step_harmony(struct tc_parser *p, bool done, struct strbuf *content,
                                  struct strbuf *thinking, bool *more)
{
    const char *s = p->buf.data ? p->buf.data : "";
    size_t n = p->buf.len;
    enum llem_err e = LLEM_OK;
    *more = false;
    if (p->state == TC_H_HEADER) {
        size_t m = find(s, n, "<|message|>");
        if (m != SIZE_MAX) {
            harmony_header(p, s, m);
            consume(p, m + 11);
            p->state = TC_H_BODY;
            *more = true;
            return LLEM_OK;
        }
        bool tagged = n >= 2 ? memcmp(s, "<|", 2) == 0 : (n == 0 || s[0] == '<');
        if (done || !tagged || n > 512) { // not a header after all: plain content
            p->h_kind = H_CONTENT;
            p->state = TC_H_BODY;
            *more = n > 0 && !done;
            if (done) {
                e = emit_content(p, s, n, content);
                strbuf_reset(&p->buf);
            }
        }
        return e;
    }
    // body: up to the first end tag
    size_t first = SIZE_MAX, hold = 0;
    int which = -1;
    for (int k = 0; k < (int)(sizeof H_ENDS / sizeof H_ENDS[0]); k++) {
        size_t at = find(s, n, H_ENDS[k]);
        if (at < first) {
            first = at;
            which = k;
        }
        size_t h = partial_suffix(s, n, H_ENDS[k]);
        hold = h > hold ? h : hold;
    }
    size_t emit = which >= 0 ? first : done ? n : n - hold;
    if (p->h_kind == H_CALL) {
        if (which < 0 && !done) {
            return LLEM_OK; // arguments are taken whole
        }
        struct strbuf rest;
        strbuf_init(&rest, TC_MAX_BUF);
        e = strbuf_append(&rest, s + emit, n - emit);
        strbuf_truncate(&p->buf, emit);
        if (!e) {
            e = harmony_finish_body(p, content);
        }
        if (!e) {
            e = strbuf_append(&p->buf, rest.data ? rest.data : "", rest.len);
        }
        strbuf_deinit(&rest);
        if (e) {
            return e;
        }
        s = p->buf.data ? p->buf.data : "";
        emit = 0;
    } else if (p->h_kind == H_THINKING) {
        e = thinking ? strbuf_append(thinking, s, emit) : LLEM_OK;
        consume(p, emit);
    } else {
        e = emit_content(p, s, emit, content);
        consume(p, emit);
    }
    if (e || which < 0) {
        return e;
    }
    // drop the end tag (a <|channel|> starts the next header, so it stays)
    size_t tl = strlen(H_ENDS[which]);
    if (which != 4) {
        consume(p, tl);
    }
    p->state = TC_H_HEADER;
    *more = true;
    return LLEM_OK;
}

enum llem_err tc_parser_add(struct tc_parser *p, const char *s, size_t n, bool done,
                            struct strbuf *content, struct strbuf *thinking,
                            struct llem_errbuf *eb)
{
    if (p->f == TC_FORMAT_NONE) {
        enum llem_err e = strbuf_append(content, s, n);
        return e ? llem_errf(eb, e, "tool calls: output too large") : LLEM_OK;
    }
    enum llem_err e = strbuf_append(&p->buf, s, n);
    if (e) {
        return llem_errf(eb, e, "tool calls: a call is over %u bytes", TC_MAX_BUF);
    }
    for (int guard = 0; guard < 1 << 20; guard++) {
        bool more = false;
        switch (p->state) {
        case TC_TEXT: e = step_text(p, done, content, &more); break;
        case TC_CALL: e = step_call(p, done, content, &more); break;
        default: e = step_harmony(p, done, content, thinking, &more); break;
        }
        if (e) {
            return llem_errf(eb, e, "tool calls: %s", e == LLEM_ENOMEM ? "out of memory"
                                                                        : "output too large");
        }
        if (!more) {
            break;
        }
    }
    if (done && p->buf.len) { // anything left over is content
        e = emit_content(p, p->buf.data, p->buf.len, content);
        strbuf_reset(&p->buf);
    }
    return e ? llem_errf(eb, e, "tool calls: out of memory") : LLEM_OK;
}

// ---- output shapes -------------------------------------------------------------------------

enum llem_err tc_call_append_ollama(const struct tc_call *c, bool with_id, struct strbuf *out)
{
    enum llem_err e = strbuf_append_str(out, "{");
    if (!e && with_id) {
        e = strbuf_appendf(out, "\"id\":\"%s\",", c->id);
    }
    if (!e) {
        e = strbuf_appendf(out, "\"function\":{\"index\":%d,\"name\":\"", (int)c->index);
    }
    if (!e) {
        e = strbuf_append_json_escaped(out, c->name, strlen(c->name));
    }
    if (!e) {
        e = strbuf_appendf(out, "\",\"arguments\":%s}}", c->arguments);
    }
    return e;
}

enum llem_err tc_call_append_openai(const struct tc_call *c, bool stream, struct strbuf *out)
{
    enum llem_err e = strbuf_append_str(out, "{");
    if (!e && stream) {
        e = strbuf_appendf(out, "\"index\":%d,", (int)c->index);
    }
    if (!e) {
        e = strbuf_appendf(out, "\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":\"",
                           c->id);
    }
    if (!e) {
        e = strbuf_append_json_escaped(out, c->name, strlen(c->name));
    }
    if (!e) {
        e = strbuf_append_str(out, "\",\"arguments\":\"");
    }
    if (!e) {
        e = strbuf_append_json_escaped(out, c->arguments, strlen(c->arguments));
    }
    if (!e) {
        e = strbuf_append_str(out, "\"}}");
    }
    return e;
}
