// server/api_ollama.c: Ollama's native routes: /, /api/version, /api/generate, /api/chat,
// /api/tags (/api/embed and /api/embeddings: embed.c), /api/show, /api/ps, and the store-backed routes (copy, delete,
// create, blobs, pull, push), which answer 501 until the store lands. Request fields are read
// with json.c's typed getters (a wrong type is 400); generation goes through gen.c.
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/sha256.h"
#include "server/server_int.h"
#include "store/store.h"

enum MHD_Result api_root(struct srv *s, struct http_req *r)
{
    (void)s;
    static const char msg[] = "Ollama is running";
    return http_reply(r, 200, "text/plain; charset=utf-8", msg, sizeof msg - 1);
}

enum MHD_Result api_version(struct srv *s, struct http_req *r)
{
    (void)s;
    char body[96];
    int n = snprintf(body, sizeof body, "{\"version\":\"%s\"}", llem_version());
    return http_reply(r, 200, "application/json; charset=utf-8", body, (size_t)n);
}

// Fields every generation route shares: model, stream, keep_alive, options, think, format,
// truncate, shift, logprobs.
static enum llem_err common_fields(struct srv *s, const cJSON *j, struct gen_req *g,
                                   struct llem_errbuf *eb)
{
    enum llem_err e = json_get_str(j, "model", &g->model, eb);
    if (e == LLEM_OK && (!g->model || !g->model[0])) {
        e = llem_errf(eb, LLEM_EINVAL, "model is required");
    }
    if (e == LLEM_OK) {
        e = gen_apply_model(s, g, eb); // the model's PARAMETERs, under the request's options
    }
    if (e == LLEM_OK) {
        e = json_get_bool(j, "stream", &g->stream, NULL, eb);
    }
    if (e == LLEM_OK) {
        e = json_get_duration(j, "keep_alive", &g->keep_alive_ns, &g->has_keep_alive, eb);
    }
    if (e == LLEM_OK) {
        e = gen_parse_options(g, cJSON_GetObjectItemCaseSensitive(j, "options"), eb);
    }
    const cJSON *think = cJSON_GetObjectItemCaseSensitive(j, "think");
    if (e == LLEM_OK && think && !cJSON_IsNull(think)) {
        if (cJSON_IsBool(think)) {
            g->think_set = true;
            g->think = cJSON_IsTrue(think);
        } else if (cJSON_IsString(think)) {
            const char *t = think->valuestring;
            if (!strcmp(t, "true") || !strcmp(t, "false")) {
                g->think_set = true;
                g->think = t[0] == 't';
            } else if (!strcmp(t, "low") || !strcmp(t, "medium") || !strcmp(t, "high")) {
                g->think_set = true; // a level: harmony models only (checked with the template)
                g->think = true;
                g->think_level = t;
            } else {
                e = llem_errf(eb, LLEM_EINVAL, "invalid think value: \"%.20s\" (must be "
                              "\"high\", \"medium\", \"low\", true, or false)", t);
            }
        } else {
            e = llem_errf(eb, LLEM_EINVAL, "field \"think\": expected a bool or a string");
        }
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (e == LLEM_OK && fmt && !cJSON_IsNull(fmt) &&
        !(cJSON_IsString(fmt) && !fmt->valuestring[0])) {
        if (cJSON_IsString(fmt) && strcmp(fmt->valuestring, "json")) {
            e = llem_errf(eb, LLEM_EINVAL, "invalid format: %.40s", fmt->valuestring);
        } else if (!cJSON_IsString(fmt) && !cJSON_IsObject(fmt)) {
            e = llem_errf(eb, LLEM_EINVAL, "invalid format");
        } else {
            g->format = fmt; // compiled in gen_run: an unsupported schema is a 400 there
        }
    }
    if (e == LLEM_OK) {
        e = json_get_str(j, "grammar", &g->grammar, eb); // llem extension (GBNF)
    }
    bool shift = true, logprobs = false;
    int64_t top_lp = 0;
    if (e == LLEM_OK) {
        e = json_get_bool(j, "truncate", &g->truncate, NULL, eb);
    }
    if (e == LLEM_OK) {
        e = json_get_bool(j, "shift", &shift, NULL, eb); // the runner always shifts
    }
    if (e == LLEM_OK) {
        e = json_get_i64(j, "top_logprobs", 0, 20, &top_lp, NULL, eb);
    }
    if (e == LLEM_OK) {
        e = json_get_bool(j, "logprobs", &logprobs, NULL, eb);
    }
    if (e == LLEM_OK && (logprobs || top_lp > 0)) {
        e = llem_errf(eb, LLEM_EUNSUPPORTED, "logprobs are not implemented yet");
    }
    return e;
}

static enum llem_err check_no_images(const cJSON *j, struct llem_errbuf *eb)
{
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(j, "images");
    if (img && !cJSON_IsNull(img) && !(cJSON_IsArray(img) && cJSON_GetArraySize(img) == 0)) {
        return llem_errf(eb, LLEM_EINVAL, "this model does not support images");
    }
    return LLEM_OK;
}

enum MHD_Result api_generate(struct srv *s, struct http_req *r)
{
    enum MHD_Result res;
    cJSON *j = json_parse_body(r, &res);
    if (!j) {
        return res;
    }
    struct gen_req g;
    gen_req_init(&g, GEN_GENERATE);
    struct llem_errbuf eb = {0};
    enum llem_err e = common_fields(s, j, &g, &eb);
    const char *suffix = NULL;
    if (e == LLEM_OK) {
        e = json_get_str(j, "prompt", &g.prompt, &eb);
    }
    if (e == LLEM_OK) {
        e = json_get_str(j, "system", &g.system, &eb);
    }
    if (e == LLEM_OK) {
        e = json_get_str(j, "template", &g.tmpl, &eb);
    }
    if (e == LLEM_OK) {
        e = json_get_str(j, "suffix", &suffix, &eb);
    }
    if (e == LLEM_OK) {
        e = json_get_bool(j, "raw", &g.raw, NULL, &eb);
    }
    if (e == LLEM_OK) {
        e = check_no_images(j, &eb);
    }
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(j, "context");
    if (e == LLEM_OK && ctx && !cJSON_IsNull(ctx)) {
        if (!cJSON_IsArray(ctx)) {
            e = llem_errf(&eb, LLEM_EINVAL, "field \"context\": expected an array of integers");
        } else if (cJSON_GetArraySize(ctx) > 0) {
            g.context = ctx;
        }
    }
    if (e == LLEM_OK && suffix && suffix[0]) {
        e = llem_errf(&eb, LLEM_EINVAL, "this model does not support insert");
    }
    if (e == LLEM_OK && g.raw && ((g.tmpl && g.tmpl[0]) || (g.system && g.system[0]) ||
                                  g.context)) {
        e = llem_errf(&eb, LLEM_EINVAL, "raw mode does not support template, system, or context");
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

// Lower-cases roles (Ollama does) after validation.
static void lower_roles(cJSON *msgs)
{
    cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        for (char *p = role->valuestring; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
    }
}

enum MHD_Result api_chat(struct srv *s, struct http_req *r)
{
    enum MHD_Result res;
    cJSON *j = json_parse_body(r, &res);
    if (!j) {
        return res;
    }
    struct gen_req g;
    gen_req_init(&g, GEN_CHAT);
    struct llem_errbuf eb = {0};
    enum llem_err e = common_fields(s, j, &g, &eb);
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
    if (e == LLEM_OK) {
        if (!msgs || cJSON_IsNull(msgs)) {
            msgs = cJSON_AddArrayToObject(j, "messages");
        }
        e = gen_check_messages(msgs, &eb);
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
    if (e != LLEM_OK) {
        res = srv_reply_err(r, &eb);
    } else {
        lower_roles(msgs);
        g.messages = msgs;
        res = gen_run(s, r, &g);
    }
    gen_req_deinit(&g);
    cJSON_Delete(j);
    return res;
}

// Identity of a model file for "digest": sha256 of path, size and mtime. It is not a content
// hash (hashing gigabytes per listing is too slow); the store's manifests will give real ones.
static void file_digest(const struct model_entry *m, char hex[SHA256_HEX_BYTES])
{
    char key[1200];
    int n = snprintf(key, sizeof key, "%s|%llu|%lld", m->path, (unsigned long long)m->size,
                     (long long)m->mtime_unix);
    uint8_t d[SHA256_BYTES];
    sha256_oneshot(key, (size_t)n, d);
    sha256_hex(d, hex);
}

#define MAX_LISTED 256

enum MHD_Result api_tags(struct srv *s, struct http_req *r)
{
    struct model_entry *ms = llem_calloc(MAX_LISTED, sizeof *ms);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "models") : NULL;
    if (!ms || !arr) {
        llem_free(ms);
        cJSON_Delete(root);
        return http_reply_error(r, 500, "out of memory");
    }
    int32_t n = models_list(s, ms, MAX_LISTED);
    for (int32_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char ts[64], hex[80];
        json_time_rfc3339(ms[i].mtime_unix * 1000000000LL, ts, sizeof ts);
        if (ms[i].from_store) {
            snprintf(hex, sizeof hex, "%s", ms[i].digest);
        } else {
            file_digest(&ms[i], hex);
        }
        cJSON_AddStringToObject(o, "name", ms[i].name);
        cJSON_AddStringToObject(o, "model", ms[i].name);
        cJSON_AddStringToObject(o, "modified_at", ts);
        cJSON_AddNumberToObject(o, "size", (double)ms[i].size);
        cJSON_AddStringToObject(o, "digest", hex);
        models_entry_details(&ms[i], cJSON_AddObjectToObject(o, "details"));
        cJSON_AddItemToArray(arr, o);
    }
    enum MHD_Result res = http_reply_cjson(r, 200, root);
    cJSON_Delete(root);
    llem_free(ms);
    return res;
}

enum MHD_Result api_show(struct srv *s, struct http_req *r)
{
    enum MHD_Result res;
    if (api_body_has_nul(r)) {
        return http_reply_error(r, 400, "invalid request: NUL characters are not allowed");
    }
    cJSON *j = json_parse_body(r, &res);
    if (!j) {
        return res;
    }
    struct llem_errbuf eb = {0};
    const char *model = NULL;
    bool verbose = false;
    enum llem_err e = json_get_str(j, "model", &model, &eb);
    if (e == LLEM_OK && !model) {
        e = json_get_str(j, "name", &model, &eb); // deprecated spelling
    }
    if (e == LLEM_OK && (!model || !model[0])) {
        e = llem_errf(&eb, LLEM_EINVAL, "model is required");
    }
    if (e == LLEM_OK) {
        e = json_get_bool(j, "verbose", &verbose, NULL, &eb);
    }
    char path[1024];
    struct store_model *sm = NULL;
    if (e == LLEM_OK) {
        e = models_store_lookup(s, model, &sm, &eb);
        if (e == LLEM_ENOTFOUND || e == LLEM_EINVAL) {
            e = models_resolve(s, model, path, sizeof path, &eb);
        }
    }
    cJSON *out = cJSON_CreateObject();
    if (e == LLEM_OK && !out) {
        e = llem_errf(&eb, LLEM_ENOMEM, "out of memory");
    }
    if (e == LLEM_OK) {
        e = sm ? models_show_store(s, sm, verbose, out, &eb)
               : models_show(s, path, verbose, out, &eb);
    }
    res = e == LLEM_OK ? http_reply_cjson(r, 200, out) : srv_reply_err(r, &eb);
    store_model_free(sm);
    cJSON_Delete(out);
    cJSON_Delete(j);
    return res;
}

enum MHD_Result api_ps(struct srv *s, struct http_req *r)
{
    struct sched_model_info *info = llem_calloc(64, sizeof *info);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "models") : NULL;
    if (!info || !arr) {
        llem_free(info);
        cJSON_Delete(root);
        return http_reply_error(r, 500, "out of memory");
    }
    int32_t n = LLEM_MIN(sched_list(s->sched, info, 64), 64);
    for (int32_t i = 0; i < n; i++) {
        const struct sched_model_info *m = &info[i];
        cJSON *o = cJSON_CreateObject();
        char disp[256], ts[64], hex[80];
        models_display(m->name, disp, sizeof disp);
        cJSON_AddStringToObject(o, "name", disp);
        cJSON_AddStringToObject(o, "model", disp);
        cJSON_AddNumberToObject(o, "size", (double)m->size);
        struct model_entry me = {0};
        struct stat st;
        snprintf(me.path, sizeof me.path, "%s", m->path);
        if (stat(m->path, &st) == 0) { // the same identity as /api/tags
            me.size = (uint64_t)st.st_size;
            me.mtime_unix = (int64_t)st.st_mtime;
        }
        file_digest(&me, hex);
        struct store_model *sm = NULL;
        struct llem_errbuf seb;
        cJSON *details = cJSON_AddObjectToObject(o, "details");
        if (models_store_lookup(s, m->name, &sm, &seb) == LLEM_OK &&
            !strcmp(sm->model_path, m->path)) {
            // The same identity and details as /api/tags gives the store model.
            const char *d = sm->digest;
            snprintf(hex, sizeof hex, "%s", strncmp(d, "sha256:", 7) ? d : d + 7);
            struct model_entry se = {.from_store = true};
            const struct store_details *dt = &sm->details;
            snprintf(se.family, sizeof se.family, "%s", dt->family ? dt->family : "");
            snprintf(se.parameter_size, sizeof se.parameter_size, "%s",
                     dt->parameter_size ? dt->parameter_size : "");
            snprintf(se.quantization_level, sizeof se.quantization_level, "%s",
                     dt->quantization_level ? dt->quantization_level : "");
            snprintf(se.parent_model, sizeof se.parent_model, "%s",
                     dt->parent_model ? dt->parent_model : "");
            models_entry_details(&se, details);
        } else {
            models_details(m->path, details);
        }
        store_model_free(sm);
        cJSON_AddStringToObject(o, "digest", hex);
        // Never expiring: Ollama reports a far-future time; keep the field a valid time.
        int64_t exp = m->expires_at_unix_ns ? m->expires_at_unix_ns
                                            : (int64_t)4102444800LL * 1000000000LL;
        json_time_rfc3339(exp, ts, sizeof ts);
        cJSON_AddStringToObject(o, "expires_at", ts);
        cJSON_AddNumberToObject(o, "size_vram", 0);
        cJSON_AddNumberToObject(o, "context_length", m->context_length);
        // llem extras: slot and KV occupancy (lets tests see a cancelled stream free its slot).
        cJSON_AddNumberToObject(o, "num_parallel", m->n_parallel);
        cJSON_AddNumberToObject(o, "slots_busy", m->status.n_busy);
        cJSON_AddNumberToObject(o, "queued", m->status.n_queued);
        cJSON_AddNumberToObject(o, "kv_cells_used", m->status.kv_cells_used);
        cJSON_AddNumberToObject(o, "kv_cells_total", m->status.kv_cells_total);
        cJSON_AddNumberToObject(o, "refs", m->refs);
        cJSON_AddItemToArray(arr, o);
    }
    enum MHD_Result res = http_reply_cjson(r, 200, root);
    cJSON_Delete(root);
    llem_free(info);
    return res;
}
