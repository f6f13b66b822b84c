// server/prompt.c: chat -> prompt text. In order of preference: the GGUF's
// tokenizer.chat_template rendered by the Jinja engine (as Hugging Face's apply_chat_template,
// add_generation_prompt true), else ChatML when the vocabulary has <|im_start|> and
// <|im_end|>, else a plain fallback that concatenates the contents (system messages followed by
// a blank line), which matches Ollama's default template `{{ .Prompt }}` for one user turn.
// /api/generate's `template` field is an Ollama Go template rendered by template/gotmpl.h.
#include <string.h>

#include "base/limits.h"
#include "model/model.h"
#include "server/server_int.h"
#include "template/gotmpl.h"
#include "template/template.h"
#include "template/thinking.h"
#include "template/toolcall.h"
#include "tokenizer/tokenizer.h"

const char prompt_chatml_doc[] =
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n";
const char prompt_plain_doc[] = "{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}";

static const char *chat_template(const struct model *m)
{
    return m && m->gguf ? gguf_get_str(m->gguf, "tokenizer.chat_template") : NULL;
}

static bool has_chatml(const struct tok_vocab *v)
{
    return tok_find(v, "<|im_start|>", 12) >= 0 && tok_find(v, "<|im_end|>", 10) >= 0;
}

const char *prompt_kind(const struct model *m, const struct tok_vocab *v)
{
    if (chat_template(m)) {
        return "jinja";
    }
    return has_chatml(v) ? "chatml" : "plain";
}

const char *prompt_template_text(const struct model *m, const struct tok_vocab *v)
{
    const char *src = chat_template(m);
    if (src) {
        return src;
    }
    return has_chatml(v) ? prompt_chatml_doc : prompt_plain_doc;
}

bool prompt_supports_tools(const char *src)
{
    return src && strstr(src, "tools") != NULL;
}

static const char *content_of(const cJSON *msg, size_t *n)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
    const char *s = cJSON_IsString(c) ? c->valuestring : "";
    *n = strlen(s);
    return s;
}

static enum llem_err render_chatml(const cJSON *msgs, struct strbuf *out)
{
    enum llem_err e = LLEM_OK;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        size_t n;
        const char *c = content_of(m, &n);
        if (e == LLEM_OK) {
            e = strbuf_appendf(out, "<|im_start|>%s\n", role->valuestring);
        }
        if (e == LLEM_OK) {
            e = strbuf_append(out, c, n);
        }
        if (e == LLEM_OK) {
            e = strbuf_append_str(out, "<|im_end|>\n");
        }
    }
    if (e == LLEM_OK) {
        e = strbuf_append_str(out, "<|im_start|>assistant\n");
    }
    return e;
}

static enum llem_err render_plain(const cJSON *msgs, struct strbuf *out)
{
    enum llem_err e = LLEM_OK;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        size_t n;
        const char *c = content_of(m, &n);
        if (e == LLEM_OK) {
            e = strbuf_append(out, c, n);
        }
        if (e == LLEM_OK && !strcmp(role->valuestring, "system") && n > 0) {
            e = strbuf_append_str(out, "\n\n");
        }
    }
    return e;
}

static void add_token_str(cJSON *vars, const char *key, const struct tok_vocab *v, llem_token id)
{
    size_t n = 0;
    const char *t = id >= 0 ? tok_text(v, id, &n) : NULL;
    if (t && n < 256) {
        char buf[256];
        memcpy(buf, t, n);
        buf[n] = '\0';
        cJSON_AddStringToObject(vars, key, buf);
    } else {
        cJSON_AddStringToObject(vars, key, "");
    }
}

static enum llem_err render_jinja(const char *src, const struct tok_vocab *v,
                                  const cJSON *msgs, const cJSON *tools, bool think_set,
                                  bool think, const char *level, struct strbuf *out,
                                  struct llem_errbuf *eb)
{
    cJSON *vars = cJSON_CreateObject();
    if (!vars) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    cJSON_AddItemToObject(vars, "messages", cJSON_Duplicate(msgs, true));
    if (tools) {
        cJSON_AddItemToObject(vars, "tools", cJSON_Duplicate(tools, true));
    }
    cJSON_AddBoolToObject(vars, "add_generation_prompt", true);
    if (think_set) {
        cJSON_AddBoolToObject(vars, "enable_thinking", think);
    }
    if (level) {
        cJSON_AddStringToObject(vars, "reasoning_effort", level); // gpt-oss's template variable
    }
    add_token_str(vars, "bos_token", v, tok_bos(v));
    add_token_str(vars, "eos_token", v, tok_eos(v));
    char *json = cJSON_PrintUnformatted(vars);
    cJSON_Delete(vars);
    if (!json) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    struct tpl_jinja *t = NULL;
    enum llem_err e = tpl_jinja_compile(src, strlen(src), &t, eb);
    size_t start = out->len;
    if (e == LLEM_OK) {
        e = tpl_jinja_render(t, json, strlen(json), NULL, out, eb);
    }
    tpl_jinja_free(t);
    cJSON_free(json);
    if (e != LLEM_OK) {
        return llem_errf(eb, e == LLEM_ELIMIT ? LLEM_ELIMIT : LLEM_EINVAL,
                         "chat template: %s", eb->msg);
    }
    // The tokenizer adds BOS itself: drop a BOS the template wrote, or it would be doubled.
    size_t bn = 0;
    const char *bos = tok_add_bos(v) && tok_bos(v) >= 0 ? tok_text(v, tok_bos(v), &bn) : NULL;
    if (bos && bn > 0 && out->len - start >= bn && !memcmp(out->data + start, bos, bn)) {
        memmove(out->data + start, out->data + start + bn, out->len - start - bn);
        strbuf_truncate(out, out->len - bn);
    }
    return LLEM_OK;
}

enum llem_err prompt_render_chat(const struct model *m, const struct tok_vocab *v,
                                 const cJSON *messages, const cJSON *tools, bool think_set,
                                 bool think, const char *think_level, struct strbuf *out,
                                 struct llem_errbuf *eb)
{
    const char *src = chat_template(m);
    if (tools && cJSON_GetArraySize(tools) > 0 && !prompt_supports_tools(src)) {
        return llem_errf(eb, LLEM_EINVAL, "this model does not support tools");
    }
    size_t n = src ? strlen(src) : 0;
    struct think_tags tags;
    bool harmony = src && tc_detect(src, n) == TC_FORMAT_HARMONY;
    if (think_set && think && !(src && (think_detect(src, n, &tags) || harmony))) {
        return llem_errf(eb, LLEM_EINVAL, "this model does not support thinking");
    }
    if (think_level && !harmony) {
        return llem_errf(eb, LLEM_EINVAL, "think value \"%.20s\" is not supported for this "
                         "model", think_level);
    }
    if (src) {
        return render_jinja(src, v, messages, tools, think_set, think, think_level, out, eb);
    }
    enum llem_err e = has_chatml(v) ? render_chatml(messages, out) : render_plain(messages, out);
    if (e != LLEM_OK) {
        return llem_errf(eb, e, "prompt too long");
    }
    return LLEM_OK;
}

enum llem_err prompt_render_gotmpl(const char *src, const cJSON *messages, const cJSON *tools,
                                   bool think_set, bool think, struct strbuf *out,
                                   struct llem_errbuf *eb)
{
    struct gotmpl *t = NULL;
    enum llem_err e = gotmpl_parse(&t, src, strlen(src), eb);
    if (e != LLEM_OK) {
        return llem_errf(eb, e == LLEM_ENOMEM ? e : LLEM_EINVAL, "template: %s", eb->msg);
    }
    if (tools && cJSON_GetArraySize(tools) > 0 && !gotmpl_uses(t, "tools")) {
        gotmpl_free(t);
        return llem_errf(eb, LLEM_EINVAL, "this model does not support tools");
    }
    cJSON *req = cJSON_CreateObject();
    if (!req) {
        gotmpl_free(t);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    cJSON_AddItemToObject(req, "messages", cJSON_Duplicate(messages, true));
    if (tools && cJSON_GetArraySize(tools) > 0) {
        cJSON_AddItemToObject(req, "tools", cJSON_Duplicate(tools, true));
    }
    if (think_set) {
        cJSON_AddBoolToObject(req, "think", think);
    }
    e = gotmpl_render_chat(t, req, NULL, out, eb);
    cJSON_Delete(req);
    gotmpl_free(t);
    if (e != LLEM_OK) {
        return llem_errf(eb, e == LLEM_ENOMEM || e == LLEM_ELIMIT ? e : LLEM_EINVAL,
                         "template: %s", eb->msg);
    }
    return LLEM_OK;
}

// [system?, user] as a messages array.
static cJSON *one_turn(const char *prompt, const char *system)
{
    cJSON *msgs = cJSON_CreateArray();
    if (!msgs) {
        return NULL;
    }
    if (system && system[0]) {
        cJSON *sm = cJSON_CreateObject();
        cJSON_AddStringToObject(sm, "role", "system");
        cJSON_AddStringToObject(sm, "content", system);
        cJSON_AddItemToArray(msgs, sm);
    }
    cJSON *um = cJSON_CreateObject();
    cJSON_AddStringToObject(um, "role", "user");
    cJSON_AddStringToObject(um, "content", prompt);
    cJSON_AddItemToArray(msgs, um);
    return msgs;
}

enum llem_err prompt_render_generate(const struct model *m, const struct tok_vocab *v,
                                     const char *prompt, const char *system, const char *tmpl,
                                     bool think_set, bool think, struct strbuf *out,
                                     struct llem_errbuf *eb)
{
    cJSON *msgs = one_turn(prompt, system);
    if (!msgs) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    enum llem_err e;
    if (tmpl && tmpl[0]) {
        struct gotmpl *t = NULL;
        e = gotmpl_parse(&t, tmpl, strlen(tmpl), eb);
        if (e == LLEM_OK) {
            cJSON *req = cJSON_CreateObject();
            cJSON_AddItemToObject(req, "messages", msgs);
            msgs = NULL;
            e = gotmpl_render_chat(t, req, NULL, out, eb);
            cJSON_Delete(req);
        }
        gotmpl_free(t);
        if (e != LLEM_OK) {
            e = llem_errf(eb, e == LLEM_ENOMEM ? e : LLEM_EINVAL, "template: %s", eb->msg);
        }
    } else {
        e = prompt_render_chat(m, v, msgs, NULL, think_set, think, NULL, out, eb);
    }
    cJSON_Delete(msgs);
    return e;
}
