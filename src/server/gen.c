// server/gen.c: one generation request from validated fields to the last byte, shared by
// /api/generate, /api/chat, /v1/chat/completions and /v1/completions: Ollama's options, the
// load/unload shortcut of an empty prompt, scheduler lease, prompt rendering, tokenization
// (with truncation), runner submission, then either a streamed response (stream.c) or one
// merged object built here on the HTTP thread.
#include <string.h>

#include "base/alloc.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/timeutil.h"
#include "sampler/grammar.h"
#include "server/gen_int.h"
#include "store/store.h"
#include "tokenizer/tokenizer.h"

void gen_req_init(struct gen_req *g, enum gen_api api)
{
    memset(g, 0, sizeof *g);
    g->api = api;
    g->stream = true;
    g->sp = sampler_params_default();
    g->num_predict = -1;
    g->num_keep = 4;
    g->truncate = true;
    if (api == GEN_OAI_CHAT || api == GEN_OAI_COMPLETION) {
        g->sp.temperature = 1.0f; // Ollama's /v1 defaults, overriding the model's
        g->sp.top_p = 1.0f;
        g->stream = false;
    }
}

void gen_req_deinit(struct gen_req *g)
{
    store_model_free(g->smodel);
    g->smodel = NULL;
    cJSON_Delete(g->model_params);
    g->model_params = NULL;
}

enum opt_kind { OPT_INT, OPT_FLOAT, OPT_BOOL, OPT_STOP };

struct opt_def {
    const char *key;
    enum opt_kind kind;
    bool honoured; // false: accepted, type-checked and ignored (docs/internals/server.md)
};

static const struct opt_def opt_defs[] = {
    {"num_keep", OPT_INT, true},          {"seed", OPT_INT, true},
    {"num_predict", OPT_INT, true},       {"top_k", OPT_INT, true},
    {"top_p", OPT_FLOAT, true},           {"min_p", OPT_FLOAT, true},
    {"typical_p", OPT_FLOAT, true},       {"repeat_last_n", OPT_INT, true},
    {"temperature", OPT_FLOAT, true},     {"repeat_penalty", OPT_FLOAT, true},
    {"presence_penalty", OPT_FLOAT, true}, {"frequency_penalty", OPT_FLOAT, true},
    {"stop", OPT_STOP, true},             {"num_ctx", OPT_INT, true},
    {"num_batch", OPT_INT, false},        {"num_gpu", OPT_INT, false},
    {"main_gpu", OPT_INT, false},         {"num_thread", OPT_INT, false},
    {"use_mmap", OPT_BOOL, false},        {"use_mlock", OPT_BOOL, false},
    {"numa", OPT_BOOL, false},            {"low_vram", OPT_BOOL, false},
    {"f16_kv", OPT_BOOL, false},          {"logits_all", OPT_BOOL, false},
    {"vocab_only", OPT_BOOL, false},      {"penalize_newline", OPT_BOOL, false},
    {"mirostat", OPT_INT, false},         {"mirostat_tau", OPT_FLOAT, false},
    {"mirostat_eta", OPT_FLOAT, false},   {"tfs_z", OPT_FLOAT, false},
    {"draft_num_predict", OPT_INT, false},
};

enum llem_err gen_parse_stop(struct gen_req *g, const cJSON *v, const char *field,
                             struct llem_errbuf *eb)
{
    if (!v || cJSON_IsNull(v)) {
        return LLEM_OK;
    }
    g->n_stops = 0;
    if (cJSON_IsString(v)) {
        if (v->valuestring[0]) {
            g->stops[g->n_stops++] = v->valuestring;
        }
        return LLEM_OK;
    }
    if (!cJSON_IsArray(v)) {
        return llem_errf(eb, LLEM_EINVAL, "%s: expected a string or an array of strings", field);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            return llem_errf(eb, LLEM_EINVAL, "%s: every stop sequence must be a string", field);
        }
        if (!it->valuestring[0]) {
            continue;
        }
        if (g->n_stops >= GEN_MAX_STOPS) {
            return llem_errf(eb, LLEM_EINVAL, "%s: more than %d stop sequences", field,
                             GEN_MAX_STOPS);
        }
        g->stops[g->n_stops++] = it->valuestring;
    }
    return LLEM_OK;
}

static enum llem_err set_int_opt(struct gen_req *g, const char *k, int64_t v,
                                 struct llem_errbuf *eb)
{
    if (!strcmp(k, "seed")) {
        g->sp.seed = v < 0 ? -1 : v;
    } else if (!strcmp(k, "num_keep")) {
        g->num_keep = v < 0 ? 0 : (int32_t)LLEM_MIN(v, 1 << 24);
    } else if (!strcmp(k, "num_predict")) {
        g->num_predict = v < 0 ? -1 : (int32_t)LLEM_MIN(v, 1 << 30);
    } else if (!strcmp(k, "top_k")) {
        g->sp.top_k = (int32_t)LLEM_MAX(LLEM_MIN(v, 1 << 24), -1);
    } else if (!strcmp(k, "repeat_last_n")) {
        if (v < -1) {
            return llem_errf(eb, LLEM_EINVAL, "option \"repeat_last_n\" must be >= -1");
        }
        g->sp.repeat_last_n = (int32_t)LLEM_MIN(v, 1 << 24);
    } else if (!strcmp(k, "num_ctx")) {
        if (v < 0 || v > (1 << 24)) {
            return llem_errf(eb, LLEM_EINVAL, "option \"num_ctx\" out of range");
        }
        g->num_ctx = (int32_t)v;
    }
    return LLEM_OK;
}

static void set_float_opt(struct gen_req *g, const char *k, float v)
{
    if (!strcmp(k, "temperature")) {
        g->sp.temperature = v;
    } else if (!strcmp(k, "top_p")) {
        g->sp.top_p = v;
    } else if (!strcmp(k, "min_p")) {
        g->sp.min_p = v;
    } else if (!strcmp(k, "typical_p")) {
        g->sp.typical_p = v;
    } else if (!strcmp(k, "repeat_penalty")) {
        g->sp.repeat_penalty = v;
    } else if (!strcmp(k, "presence_penalty")) {
        g->sp.presence_penalty = v;
    } else if (!strcmp(k, "frequency_penalty")) {
        g->sp.frequency_penalty = v;
    }
}

enum llem_err gen_parse_options(struct gen_req *g, const cJSON *opts, struct llem_errbuf *eb)
{
    if (!opts || cJSON_IsNull(opts)) {
        return LLEM_OK;
    }
    if (!cJSON_IsObject(opts)) {
        return llem_errf(eb, LLEM_EINVAL, "field \"options\": expected an object");
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, opts)
    {
        const struct opt_def *d = NULL;
        for (size_t i = 0; i < LLEM_ARRAY_LEN(opt_defs); i++) {
            if (!strcmp(opt_defs[i].key, it->string)) {
                d = &opt_defs[i];
                break;
            }
        }
        if (!d) {
            log_warn("serve: invalid option provided: %.64s (ignored)", it->string);
            continue;
        }
        if (cJSON_IsNull(it)) {
            continue;
        }
        enum llem_err e = LLEM_OK;
        struct llem_errbuf e2 = {0};
        if (d->kind == OPT_INT) {
            int64_t v = 0;
            e = json_get_i64(opts, d->key, INT64_MIN / 2, INT64_MAX / 2, &v, NULL, &e2);
            if (e == LLEM_OK && d->honoured) {
                e = set_int_opt(g, d->key, v, &e2);
            }
        } else if (d->kind == OPT_FLOAT) {
            float v = 0;
            e = json_get_f32(opts, d->key, &v, NULL, &e2);
            if (e == LLEM_OK && d->honoured) {
                set_float_opt(g, d->key, v);
            }
        } else if (d->kind == OPT_BOOL) {
            bool v = false;
            e = json_get_bool(opts, d->key, &v, NULL, &e2);
        } else {
            e = gen_parse_stop(g, it, "option \"stop\"", &e2);
        }
        if (e != LLEM_OK) {
            return llem_errf(eb, LLEM_EINVAL, "options: %s", e2.msg);
        }
    }
    return LLEM_OK;
}

enum llem_err gen_apply_model(struct srv *s, struct gen_req *g, struct llem_errbuf *eb)
{
    struct store_model *m = NULL;
    struct llem_errbuf seb = {0};
    enum llem_err e = models_store_lookup(s, g->model, &m, &seb);
    if (e == LLEM_ENOTFOUND || e == LLEM_EINVAL) {
        return LLEM_OK; // an alias or a path (models_resolve decides, 404 / 400 there)
    }
    if (e != LLEM_OK) {
        return llem_errf(eb, e, "%s", seb.msg);
    }
    if (m->adapter_path) {
        e = llem_errf(eb, LLEM_EINVAL, "model '%s' has an ADAPTER layer: adapters (LoRA) are "
                      "not supported yet", m->name);
        store_model_free(m);
        return e;
    }
    gen_req_deinit(g);
    g->smodel = m;
    if (!m->params_json) {
        return LLEM_OK;
    }
    g->model_params = cJSON_Parse(m->params_json);
    if (!cJSON_IsObject(g->model_params)) {
        log_warn("serve: model '%s': its params layer is not a JSON object (ignored)", m->name);
        return LLEM_OK;
    }
    float temp = g->sp.temperature, top_p = g->sp.top_p;
    e = gen_parse_options(g, g->model_params, eb);
    if (e != LLEM_OK) {
        return llem_errf(eb, LLEM_EINVAL, "model '%s' parameters: %s", m->name, eb->msg);
    }
    if (g->api == GEN_OAI_CHAT || g->api == GEN_OAI_COMPLETION) {
        // Ollama's /v1 middleware always sends temperature and top_p (default 1).
        g->sp.temperature = temp;
        g->sp.top_p = top_p;
    }
    return LLEM_OK;
}

enum llem_err gen_check_messages(const cJSON *msgs, struct llem_errbuf *eb)
{
    if (!cJSON_IsArray(msgs)) {
        return llem_errf(eb, LLEM_EINVAL, "field \"messages\": expected an array");
    }
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        if (!cJSON_IsObject(m)) {
            return llem_errf(eb, LLEM_EINVAL, "messages[%d]: expected an object", i);
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role) || !role->valuestring[0]) {
            return llem_errf(eb, LLEM_EINVAL, "messages[%d]: \"role\" must be a string", i);
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (c && !cJSON_IsNull(c) && !cJSON_IsString(c)) {
            return llem_errf(eb, LLEM_EINVAL, "messages[%d]: \"content\" must be a string", i);
        }
        const cJSON *img = cJSON_GetObjectItemCaseSensitive(m, "images");
        if (img && !cJSON_IsNull(img) && !(cJSON_IsArray(img) && cJSON_GetArraySize(img) == 0)) {
            return llem_errf(eb, LLEM_EUNSUPPORTED,
                             "messages[%d]: this model does not support images", i);
        }
        if ((unsigned)++i > LLEM_HTTP_MAX_MESSAGES) {
            return llem_errf(eb, LLEM_ELIMIT, "more than %u messages", LLEM_HTTP_MAX_MESSAGES);
        }
    }
    return LLEM_OK;
}

// ---- the request ------------------------------------------------------------------------------

static void job_free_now(struct gen_job *j)
{
    if (!j) {
        return;
    }
    if (j->task) {
        runner_task_cancel(j->task);
        runner_task_release(j->task);
    }
    if (j->leased) {
        sched_release(j->s->sched, &j->lease);
    }
    atomic_fetch_sub(&j->s->inflight, 1);
    strbuf_deinit(&j->out);
    strbuf_deinit(&j->text);
    strbuf_deinit(&j->thinking);
    gen_parse_deinit(&j->parse);
    llem_free(j->context);
    llem_free(j);
}

void gen_job_free(struct gen_job *j)
{
    job_free_now(j);
}

static enum MHD_Result reply_load(struct srv *s, struct http_req *r, const struct gen_req *g,
                                  const char *reason)
{
    (void)s;
    struct strbuf sb;
    strbuf_init(&sb, 1 << 16);
    char ts[64];
    json_time_rfc3339(json_now_unix_ns(), ts, sizeof ts);
    strbuf_append_str(&sb, "{");
    json_kv_str(&sb, false, "model", g->model, strlen(g->model));
    json_kv_str(&sb, true, "created_at", ts, strlen(ts));
    if (g->api == GEN_CHAT) {
        strbuf_append_str(&sb, ",\"message\":{\"role\":\"assistant\",\"content\":\"\"}");
    } else {
        strbuf_append_str(&sb, ",\"response\":\"\"");
    }
    strbuf_appendf(&sb, ",\"done\":true,\"done_reason\":\"%s\"}", reason);
    enum MHD_Result res = http_reply_json(r, 200, &sb);
    strbuf_deinit(&sb);
    return res;
}

// Empty prompt or messages: load the model (or unload it with keep_alive 0), as Ollama does.
static enum MHD_Result load_or_unload(struct srv *s, struct http_req *r, const struct gen_req *g,
                                      const char *canon)
{
    struct llem_errbuf eb = {0};
    char path[1024];
    if (models_resolve(s, canon, path, sizeof path, &eb) != LLEM_OK) {
        return srv_reply_err(r, &eb);
    }
    if (g->has_keep_alive && g->keep_alive_ns == 0) {
        sched_unload(s->sched, canon, &eb); // not loaded: nothing to do
        return reply_load(s, r, g, "unload");
    }
    struct sched_request sr = {.model = canon, .num_ctx = g->num_ctx,
                               .has_keep_alive = g->has_keep_alive,
                               .keep_alive_ns = g->keep_alive_ns};
    struct sched_lease lease;
    if (sched_acquire(s->sched, &sr, &lease, &eb) != LLEM_OK) {
        return srv_reply_err(r, &eb);
    }
    sched_release(s->sched, &lease);
    return reply_load(s, r, g, "load");
}

// Tokenizes text (special tokens parsed, BOS as the vocabulary asks) after `pre` tokens.
static enum llem_err tokenize(const struct tok_vocab *v, const char *text, size_t len,
                              const llem_token *pre, int32_t n_pre, llem_token **out,
                              int32_t *n_out, struct llem_errbuf *eb)
{
    size_t cap = len + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        llem_token *toks = llem_malloc((cap + (size_t)n_pre) * sizeof *toks);
        if (!toks) {
            return llem_errf(eb, LLEM_ENOMEM, "out of memory tokenizing %zu bytes", len);
        }
        if (n_pre > 0) {
            memcpy(toks, pre, (size_t)n_pre * sizeof *toks);
        }
        size_t n = 0;
        enum llem_err e = tok_encode(v, text, len, n_pre == 0, true, toks + n_pre, cap, &n, eb);
        if (e == LLEM_OK) {
            if (n + (size_t)n_pre > (size_t)INT32_MAX) {
                llem_free(toks);
                return llem_errf(eb, LLEM_ELIMIT, "prompt too long");
            }
            *out = toks;
            *n_out = (int32_t)n + n_pre;
            return LLEM_OK;
        }
        llem_free(toks);
        if (e != LLEM_ELIMIT) {
            return e;
        }
        cap = n;
    }
    return llem_errf(eb, LLEM_EINTERNAL, "tokenizer size mismatch");
}

static void add_msg(cJSON *msgs, const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    cJSON_AddItemToArray(msgs, m);
}

// A store model's layers around the request, as Ollama does: generate gets [system (the
// request's, else the model's)] + MESSAGE history (unless `context` continues an answer) +
// the prompt; chat gets the history before the request's messages and the model's system
// prompt first unless the request starts with one. The Go TEMPLATE (generate: the request's
// `template` first) renders it; without one, the GGUF's template does.
static enum llem_err build_store_prompt(const struct gen_req *g, const struct sched_lease *L,
                                        struct strbuf *text, struct llem_errbuf *eb)
{
    const struct store_model *m = g->smodel;
    bool chat = g->api == GEN_CHAT || g->api == GEN_OAI_CHAT;
    if (!chat && g->raw) {
        return strbuf_append_str(text, g->prompt ? g->prompt : "");
    }
    cJSON *msgs = cJSON_CreateArray();
    cJSON *hist = m->messages_json ? cJSON_Parse(m->messages_json) : NULL;
    if (!msgs) {
        cJSON_Delete(hist);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    const cJSON *it;
    if (!chat) {
        const char *sys = g->system && g->system[0] ? g->system : m->system_text;
        if (sys && sys[0]) {
            add_msg(msgs, "system", sys);
        }
        if (!g->context) {
            cJSON_ArrayForEach(it, hist)
            {
                cJSON_AddItemToArray(msgs, cJSON_Duplicate(it, true));
            }
        }
        add_msg(msgs, "user", g->prompt ? g->prompt : "");
    } else {
        const cJSON *first = cJSON_GetArrayItem(g->messages, 0);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(first, "role");
        if (m->system_text && m->system_text[0] &&
            !(cJSON_IsString(role) && !strcmp(role->valuestring, "system"))) {
            add_msg(msgs, "system", m->system_text);
        }
        cJSON_ArrayForEach(it, hist)
        {
            cJSON_AddItemToArray(msgs, cJSON_Duplicate(it, true));
        }
        cJSON_ArrayForEach(it, g->messages)
        {
            cJSON_AddItemToArray(msgs, cJSON_Duplicate(it, true));
        }
    }
    cJSON_Delete(hist);
    const char *tmpl = !chat && g->tmpl && g->tmpl[0] ? g->tmpl : m->template_text;
    enum llem_err e;
    if (tmpl) {
        e = prompt_render_gotmpl(tmpl, msgs, chat ? g->tools : NULL, g->think_set, g->think,
                                 text, eb);
    } else {
        e = prompt_render_chat(L->model, L->vocab, msgs, chat ? g->tools : NULL, g->think_set,
                               g->think, g->think_level, text, eb);
    }
    cJSON_Delete(msgs);
    return e;
}

// The template the prompt is rendered with, as build_prompt picks it: what the output parsers
// (tool-call format, thinking tags) are configured from.
static const char *template_text(const struct gen_req *g, const struct sched_lease *L)
{
    bool chat = g->api == GEN_CHAT || g->api == GEN_OAI_CHAT;
    if (!chat && g->tmpl && g->tmpl[0]) {
        return g->tmpl;
    }
    if (g->smodel && g->smodel->template_text) {
        return g->smodel->template_text;
    }
    return prompt_template_text(L->model, L->vocab);
}

static enum llem_err build_prompt(const struct gen_req *g, const struct sched_lease *L,
                                  struct strbuf *text, struct llem_errbuf *eb)
{
    if (g->smodel) {
        return build_store_prompt(g, L, text, eb);
    }
    switch (g->api) {
    case GEN_CHAT:
    case GEN_OAI_CHAT:
        return prompt_render_chat(L->model, L->vocab, g->messages, g->tools, g->think_set,
                                  g->think, g->think_level, text, eb);
    case GEN_GENERATE:
    case GEN_OAI_COMPLETION:
        if (g->raw) {
            return strbuf_append_str(text, g->prompt ? g->prompt : "");
        }
        return prompt_render_generate(L->model, L->vocab, g->prompt ? g->prompt : "", g->system,
                                      g->tmpl, g->think_set, g->think, text, eb);
    }
    return LLEM_EINTERNAL;
}

// Keeps num_keep tokens and the tail when the prompt does not fit (Ollama's truncate), leaving
// a quarter of the context to generate into.
static enum llem_err fit_prompt(const struct gen_req *g, int32_t n_ctx, llem_token *toks,
                                int32_t *n, struct llem_errbuf *eb)
{
    if (*n < n_ctx) {
        return LLEM_OK;
    }
    if (!g->truncate) {
        return llem_errf(eb, LLEM_EINVAL,
                         "the input length (%d tokens) exceeds the context length (%d)", *n,
                         n_ctx);
    }
    int32_t target = n_ctx - n_ctx / 4;
    int32_t keep = LLEM_MIN(g->num_keep, target / 2);
    int32_t tail = target - keep;
    memmove(toks + keep, toks + *n - tail, (size_t)tail * sizeof *toks);
    log_info("serve: prompt of %d tokens truncated to %d (num_ctx %d)", *n, target, n_ctx);
    *n = target;
    return LLEM_OK;
}

static struct gen_job *job_new(struct srv *s, struct http_req *r, const struct gen_req *g)
{
    struct gen_job *j = llem_calloc(1, sizeof *j);
    if (!j) {
        return NULL;
    }
    atomic_fetch_add(&s->inflight, 1);
    j->s = s;
    j->r = r;
    j->api = g->api;
    j->stream = g->stream;
    j->include_usage = g->include_usage;
    snprintf(j->model, sizeof j->model, "%s", g->model);
    j->t_start_ns = r->t_start_ns ? r->t_start_ns : time_now_ns();
    j->created = json_now_unix_ns() / 1000000000LL;
    snprintf(j->id, sizeof j->id, "%s-%lld%03d",
             g->api == GEN_OAI_CHAT ? "chatcmpl" : "cmpl",
             (long long)(time_now_ns() % 1000000000LL), (int)(atomic_load(&s->inflight) % 1000));
    strbuf_init(&j->out, 0);
    strbuf_init(&j->text, 0);
    strbuf_init(&j->thinking, 0);
    return j;
}

enum MHD_Result gen_run(struct srv *s, struct http_req *r, struct gen_req *g)
{
    char canon[1024];
    if (g->smodel) {
        snprintf(canon, sizeof canon, "%s", g->smodel->name);
    } else {
        models_canonical(s, g->model, canon, sizeof canon);
    }
    bool empty = g->api == GEN_CHAT || g->api == GEN_OAI_CHAT
                     ? cJSON_GetArraySize(g->messages) == 0
                     : (!g->prompt || !g->prompt[0]) && !g->context;
    if (empty) {
        if (g->api == GEN_OAI_CHAT || g->api == GEN_OAI_COMPLETION) {
            return http_reply_error(r, 400, "%s must not be empty",
                                    g->api == GEN_OAI_CHAT ? "messages" : "prompt");
        }
        return load_or_unload(s, r, g, canon);
    }
    struct llem_errbuf eb = {0};
    struct grammar_rules *rules = NULL; // checked before any model is loaded
    if (gen_compile_rules(g, &rules, &eb) != LLEM_OK) {
        return srv_reply_err(r, &eb);
    }
    struct gen_job *j = job_new(s, r, g);
    if (!j) {
        grammar_rules_free(rules);
        return http_reply_error(r, 500, "out of memory");
    }
    struct sched_request sr = {.model = canon, .num_ctx = g->num_ctx,
                               .has_keep_alive = g->has_keep_alive,
                               .keep_alive_ns = g->keep_alive_ns};
    enum llem_err e = sched_acquire(s->sched, &sr, &j->lease, &eb);
    if (e != LLEM_OK) {
        grammar_rules_free(rules);
        job_free_now(j);
        if (e == LLEM_EBUSY) {
            return http_reply_error(r, 503, "server busy, please try again.  maximum pending "
                                    "requests exceeded (%s)", eb.msg);
        }
        return srv_reply_err(r, &eb);
    }
    j->leased = true;

    struct strbuf text;
    strbuf_init(&text, LLEM_TEMPLATE_MAX_OUTPUT_BYTES);
    const char *tpl = template_text(g, &j->lease);
    bool think_on = false, special = false;
    struct grammar *gram = NULL;
    struct gen_trigger trig = {.n = 0};
    e = gen_plan_think(g, tpl, &think_on, &eb);
    if (e == LLEM_OK) {
        e = build_prompt(g, &j->lease, &text, &eb);
    }
    if (e == LLEM_OK) {
        e = gen_setup_output(j, g, tpl, think_on, &text, rules, &gram, &special, &trig, &eb);
    }
    grammar_rules_free(rules);
    llem_token *pre = NULL;
    int32_t n_pre = 0;
    if (e == LLEM_OK && g->context) {
        n_pre = cJSON_GetArraySize(g->context);
        pre = llem_malloc(((size_t)n_pre + 1) * sizeof *pre);
        int32_t nv = tok_n_vocab(j->lease.vocab), i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, g->context)
        {
            double d = it->valuedouble;
            if (!pre || !cJSON_IsNumber(it) || d < 0 || d >= nv || d != (double)(int32_t)d) {
                e = llem_errf(&eb, LLEM_EINVAL, "context[%d]: not a token id of this model", i);
                break;
            }
            pre[i++] = (llem_token)d;
        }
    }
    llem_token *toks = NULL;
    int32_t n_toks = 0;
    if (e == LLEM_OK) {
        e = tokenize(j->lease.vocab, strbuf_cstr(&text), text.len, pre, n_pre, &toks, &n_toks,
                     &eb);
    }
    llem_free(pre);
    strbuf_deinit(&text);
    if (e == LLEM_OK && n_toks == 0) {
        e = llem_errf(&eb, LLEM_EINVAL, "the prompt is empty after tokenization");
    }
    if (e == LLEM_OK) {
        e = fit_prompt(g, j->lease.n_ctx, toks, &n_toks, &eb);
    }
    if (e == LLEM_OK) {
        struct runner_task_params tp = {
            .prompt = toks, .n_prompt = n_toks, .sampling = g->sp,
            .num_predict = g->num_predict, .num_keep = g->num_keep, .stops = g->stops,
            .n_stops = g->n_stops, .want_context = g->api == GEN_GENERATE && !g->raw,
            .grammar = gram, .render_special = special, .trigger_tokens = trig.toks,
            .n_trigger_tokens = trig.n};
        gram = NULL; // the task owns it now
        j->n_prompt = n_toks;
        e = runner_submit(j->lease.runner, &tp, &j->task, &eb);
        if (e == LLEM_EBUSY) {
            llem_free(toks);
            job_free_now(j);
            return http_reply_error(r, 503, "server busy, please try again.  maximum pending "
                                    "requests exceeded");
        }
    }
    llem_free(toks);
    grammar_free(gram); // not submitted
    if (e != LLEM_OK) {
        job_free_now(j);
        return srv_reply_err(r, &eb);
    }
    metrics_counter_add(s->m_tokens_in, (uint64_t)n_toks);
    if (g->stream) {
        return stream_respond(j);
    }
    return merged_respond(j);
}
