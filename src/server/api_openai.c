// server/api_openai.c: the OpenAI-compatible /v1 routes, translated into the same generation
// path as Ollama's (gen.c) the way Ollama's middleware does it: /v1/chat/completions,
// /v1/completions (SSE when streaming, stream_options.include_usage), /v1/models,
// /v1/models/{id}; /v1/embeddings is in embed.c.
// Errors use OpenAI's {"error": {"message", "type", "param", "code"}} shape.
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "server/server_int.h"

// Fields /v1/chat/completions and /v1/completions share.
static enum llem_err oai_common(struct srv *s, const cJSON *j, struct gen_req *g,
                                struct llem_errbuf *eb)
{
    enum llem_err e = json_get_str(j, "model", &g->model, eb);
    if (e == LLEM_OK && (!g->model || !g->model[0])) {
        e = llem_errf(eb, LLEM_EINVAL, "model is required");
    }
    if (e == LLEM_OK) {
        e = gen_apply_model(s, g, eb); // the model's PARAMETERs, under the request's fields
    }
    if (e == LLEM_OK) {
        e = json_get_bool(j, "stream", &g->stream, NULL, eb);
    }
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
    if (e == LLEM_OK && so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) {
            e = llem_errf(eb, LLEM_EINVAL, "field \"stream_options\": expected an object");
        } else {
            e = json_get_bool(so, "include_usage", &g->include_usage, NULL, eb);
        }
    }
    int64_t v = 0;
    bool has = false;
    if (e == LLEM_OK) {
        e = json_get_i64(j, "max_tokens", 0, 1 << 30, &v, &has, eb);
    }
    if (e == LLEM_OK) {
        e = json_get_i64(j, "max_completion_tokens", 0, 1 << 30, &v, &has, eb);
    }
    if (e == LLEM_OK && has) {
        g->num_predict = (int32_t)v;
    }
    has = false;
    if (e == LLEM_OK) {
        e = json_get_i64(j, "seed", INT64_MIN / 2, INT64_MAX / 2, &v, &has, eb);
    }
    if (e == LLEM_OK && has) {
        g->sp.seed = v < 0 ? -1 : v;
    }
    if (e == LLEM_OK) {
        e = json_get_f32(j, "temperature", &g->sp.temperature, NULL, eb);
    }
    if (e == LLEM_OK) {
        e = json_get_f32(j, "top_p", &g->sp.top_p, NULL, eb);
    }
    if (e == LLEM_OK) {
        e = json_get_f32(j, "frequency_penalty", &g->sp.frequency_penalty, NULL, eb);
    }
    if (e == LLEM_OK) {
        e = json_get_f32(j, "presence_penalty", &g->sp.presence_penalty, NULL, eb);
    }
    if (e == LLEM_OK) {
        e = gen_parse_stop(g, cJSON_GetObjectItemCaseSensitive(j, "stop"), "field \"stop\"", eb);
    }
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(j, "response_format");
    if (e == LLEM_OK && rf && !cJSON_IsNull(rf)) {
        const char *type = NULL;
        if (!cJSON_IsObject(rf) || json_get_str(rf, "type", &type, eb) != LLEM_OK) {
            e = llem_errf(eb, LLEM_EINVAL, "field \"response_format\": expected an object");
        } else if (type && strcmp(type, "text")) {
            g->format = rf; // json_object / json_schema: compiled in gen_run (400 if unsupported)
            g->format_openai = true;
        }
    }
    if (e == LLEM_OK) {
        e = json_get_str(j, "grammar", &g->grammar, eb); // llem extension (GBNF)
    }
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(j, "logprobs");
    if (e == LLEM_OK && lp && (cJSON_IsTrue(lp) || (cJSON_IsNumber(lp) && lp->valuedouble > 0))) {
        e = llem_errf(eb, LLEM_EUNSUPPORTED, "logprobs are not implemented yet");
    }
    return e;
}

// An assistant message's tool_calls carry their arguments as a JSON string in OpenAI's shape;
// chat templates expect an object (`arguments | tojson`), as Ollama's middleware gives them.
static enum llem_err tool_call_args_to_objects(cJSON *m, int i, struct llem_errbuf *eb)
{
    cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    if (!calls || cJSON_IsNull(calls)) {
        return LLEM_OK;
    }
    if (!cJSON_IsArray(calls)) {
        return llem_errf(eb, LLEM_EINVAL, "messages[%d]: \"tool_calls\" must be an array", i);
    }
    cJSON *c;
    cJSON_ArrayForEach(c, calls)
    {
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        cJSON *args = cJSON_IsObject(fn) ? cJSON_GetObjectItemCaseSensitive(fn, "arguments")
                                         : NULL;
        if (!cJSON_IsString(args)) {
            continue;
        }
        cJSON *obj = cJSON_Parse(args->valuestring);
        if (!cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            return llem_errf(eb, LLEM_EINVAL, "messages[%d]: tool call arguments are not a "
                             "JSON object", i);
        }
        cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", obj);
    }
    return LLEM_OK;
}

// Flattens content parts ([{"type":"text","text":...}]) into one string, maps "developer" to
// "system"; images are refused (no vision models yet).
static enum llem_err normalize_messages(cJSON *msgs, struct llem_errbuf *eb)
{
    if (!cJSON_IsArray(msgs)) {
        return llem_errf(eb, LLEM_EINVAL, "field \"messages\": expected an array");
    }
    int i = 0;
    cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        if (!cJSON_IsObject(m)) {
            return llem_errf(eb, LLEM_EINVAL, "messages[%d]: expected an object", i);
        }
        cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (cJSON_IsString(role) && !strcmp(role->valuestring, "developer")) {
            cJSON_SetValuestring(role, "system");
        }
        enum llem_err te = tool_call_args_to_objects(m, i, eb);
        if (te != LLEM_OK) {
            return te;
        }
        cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsArray(c)) {
            struct strbuf sb;
            strbuf_init(&sb, 0);
            const cJSON *part;
            cJSON_ArrayForEach(part, c)
            {
                const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
                const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
                if (!cJSON_IsString(type)) {
                    strbuf_deinit(&sb);
                    return llem_errf(eb, LLEM_EINVAL, "messages[%d]: content part without type",
                                     i);
                }
                if (!strcmp(type->valuestring, "text") && cJSON_IsString(text)) {
                    strbuf_append_str(&sb, text->valuestring);
                } else {
                    strbuf_deinit(&sb);
                    return llem_errf(eb, LLEM_EINVAL, "messages[%d]: content part type '%.20s' "
                                     "is not supported by this model", i, type->valuestring);
                }
            }
            cJSON_ReplaceItemInObjectCaseSensitive(m, "content",
                                                   cJSON_CreateString(strbuf_cstr(&sb)));
            strbuf_deinit(&sb);
        }
        i++;
    }
    return gen_check_messages(msgs, eb);
}

enum MHD_Result api_oai_chat(struct srv *s, struct http_req *r)
{
    enum MHD_Result res;
    cJSON *j = json_parse_body(r, &res);
    if (!j) {
        return res;
    }
    struct gen_req g;
    gen_req_init(&g, GEN_OAI_CHAT);
    struct llem_errbuf eb = {0};
    enum llem_err e = oai_common(s, j, &g, &eb);
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
    if (e == LLEM_OK) {
        e = normalize_messages(msgs, &eb);
        if (e == LLEM_EUNSUPPORTED) {
            e = LLEM_EINVAL;
        }
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(j, "tools");
    if (e == LLEM_OK && tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) {
            e = llem_errf(&eb, LLEM_EINVAL, "field \"tools\": expected an array");
        } else if (cJSON_GetArraySize(tools) > 0) {
            g.tools = tools;
        }
    }
    const char *effort = NULL;
    if (e == LLEM_OK) {
        e = json_get_str(j, "reasoning_effort", &effort, &eb);
    }
    const cJSON *reasoning = cJSON_GetObjectItemCaseSensitive(j, "reasoning");
    if (e == LLEM_OK && !effort && cJSON_IsObject(reasoning)) {
        e = json_get_str(reasoning, "effort", &effort, &eb);
    }
    if (e == LLEM_OK && effort) {
        g.think_set = true;
        g.think = strcmp(effort, "none") != 0;
        if (!strcmp(effort, "low") || !strcmp(effort, "medium") || !strcmp(effort, "high")) {
            g.think_level = effort; // harmony templates take it; others just think
        } else if (g.think) {
            e = llem_errf(&eb, LLEM_EINVAL, "invalid reasoning effort \"%.20s\" (must be "
                          "\"high\", \"medium\", \"low\" or \"none\")", effort);
        }
    }
    if (e != LLEM_OK) {
        res = srv_reply_err(r, &eb);
    } else {
        g.messages = msgs;
        res = gen_run(s, r, &g);
    }
    gen_req_deinit(&g);
    cJSON_Delete(j);
    return res;
}

enum MHD_Result api_oai_completions(struct srv *s, struct http_req *r)
{
    enum MHD_Result res;
    cJSON *j = json_parse_body(r, &res);
    if (!j) {
        return res;
    }
    struct gen_req g;
    gen_req_init(&g, GEN_OAI_COMPLETION);
    struct llem_errbuf eb = {0};
    enum llem_err e = oai_common(s, j, &g, &eb);
    const char *suffix = NULL;
    if (e == LLEM_OK) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 &&
            cJSON_IsString(cJSON_GetArrayItem(p, 0))) {
            g.prompt = cJSON_GetArrayItem(p, 0)->valuestring; // the SDK's one-element form
        } else {
            e = json_get_str(j, "prompt", &g.prompt, &eb);
        }
    }
    if (e == LLEM_OK) {
        e = json_get_str(j, "suffix", &suffix, &eb);
    }
    if (e == LLEM_OK && suffix && suffix[0]) {
        e = llem_errf(&eb, LLEM_EINVAL, "this model does not support insert");
    }
    if (e != LLEM_OK) {
        res = srv_reply_err(r, &eb);
    } else {
        res = gen_run(s, r, &g);
    }
    gen_req_deinit(&g);
    cJSON_Delete(j);
    return res;
}

static cJSON *model_obj(const char *id, int64_t created)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "owned_by", "library");
    return o;
}

enum MHD_Result api_oai_models(struct srv *s, struct http_req *r)
{
    struct model_entry *ms = llem_calloc(256, sizeof *ms);
    cJSON *root = cJSON_CreateObject();
    if (!ms || !root) {
        llem_free(ms);
        cJSON_Delete(root);
        return http_reply_error(r, 500, "out of memory");
    }
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    int32_t n = models_list(s, ms, 256);
    for (int32_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(data, model_obj(ms[i].name, ms[i].mtime_unix));
    }
    enum MHD_Result res = http_reply_cjson(r, 200, root);
    cJSON_Delete(root);
    llem_free(ms);
    return res;
}

enum MHD_Result api_oai_model(struct srv *s, struct http_req *r)
{
    char path[1024];
    struct llem_errbuf eb = {0};
    if (models_resolve(s, r->tail, path, sizeof path, &eb) != LLEM_OK) {
        return srv_reply_err(r, &eb);
    }
    struct stat st;
    int64_t mtime = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    cJSON *o = model_obj(r->tail, mtime);
    enum MHD_Result res = http_reply_cjson(r, 200, o);
    cJSON_Delete(o);
    return res;
}
