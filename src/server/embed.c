// server/embed.c: the embedding routes: Ollama's /api/embed (input string or array, batched,
// L2-normalised) and legacy /api/embeddings (prompt -> embedding), and OpenAI's /v1/embeddings
// (strings or token arrays, float or base64). Fields are validated, the model leased, each
// input tokenized (cut to the context when truncate allows) and submitted as one runner embed
// task (a bounded window in flight); vectors are gathered in order on the HTTP thread.
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/timeutil.h"
#include "server/gen_int.h"
#include "store/store.h"
#include "tokenizer/tokenizer.h"

enum embed_api { EMB_OLLAMA, EMB_LEGACY, EMB_OPENAI };

#define EMBED_MAX_INPUTS 4096 // inputs per request
#define EMBED_WINDOW     16   // tasks in flight per request (keeps the runner queue for others)
#define EMBED_POLL_MS    100

struct embed_req {
    enum embed_api api;
    struct gen_req g;                      // model (+ store model), options (num_ctx), keep_alive
    const cJSON *inputs[EMBED_MAX_INPUTS]; // strings, or arrays of token ids (OpenAI)
    int32_t n_in;
    bool truncate;
    int64_t dimensions; // 0: all
    bool base64;
};

// ---- request fields ----------------------------------------------------------------------------

static bool is_token_array(const cJSON *a)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0) {
        return false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsNumber(it)) {
            return false;
        }
    }
    return true;
}

// input: a string, an array of strings, and on /v1 also one token array or an array of them.
static enum llem_err parse_input(struct embed_req *q, const cJSON *in, struct llem_errbuf *eb)
{
    if (!in || cJSON_IsNull(in)) {
        return q->api == EMB_OPENAI ? llem_errf(eb, LLEM_EINVAL, "invalid input: missing input")
                                    : LLEM_OK;
    }
    if (cJSON_IsString(in)) {
        if (in->valuestring[0]) {
            q->inputs[q->n_in++] = in;
        } else if (q->api == EMB_OPENAI) {
            return llem_errf(eb, LLEM_EINVAL, "invalid input: the input is empty");
        }
        return LLEM_OK;
    }
    if (!cJSON_IsArray(in)) {
        return llem_errf(eb, LLEM_EINVAL,
                         "invalid input type: expected a string or an array "
                         "of strings");
    }
    if (q->api == EMB_OPENAI && is_token_array(in)) {
        q->inputs[q->n_in++] = in; // one tokenized input
        return LLEM_OK;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, in)
    {
        bool ok = cJSON_IsString(it) || (q->api == EMB_OPENAI && is_token_array(it));
        if (!ok) {
            return llem_errf(eb, LLEM_EINVAL, "invalid input type: input[%d] must be a %s", q->n_in,
                             q->api == EMB_OPENAI ? "string or an array of token ids" : "string");
        }
        if (q->n_in >= EMBED_MAX_INPUTS) {
            return llem_errf(eb, LLEM_EINVAL, "more than %d inputs", EMBED_MAX_INPUTS);
        }
        q->inputs[q->n_in++] = it;
    }
    if (q->api == EMB_OPENAI && q->n_in == 0) {
        return llem_errf(eb, LLEM_EINVAL, "invalid input: the input is empty");
    }
    return LLEM_OK;
}

static enum llem_err parse_request(struct srv *s, const cJSON *j, struct embed_req *q,
                                   struct llem_errbuf *eb)
{
    struct gen_req *g = &q->g;
    enum llem_err e = json_get_str(j, "model", &g->model, eb);
    if (e == LLEM_OK && (!g->model || !g->model[0])) {
        e = llem_errf(eb, LLEM_EINVAL, "model is required");
    }
    if (e == LLEM_OK) {
        e = gen_apply_model(s, g, eb);
    }
    if (e == LLEM_OK) {
        e = json_get_duration(j, "keep_alive", &g->keep_alive_ns, &g->has_keep_alive, eb);
    }
    if (e == LLEM_OK) {
        e = gen_parse_options(g, cJSON_GetObjectItemCaseSensitive(j, "options"), eb);
    }
    if (e == LLEM_OK) {
        e = json_get_bool(j, "truncate", &q->truncate, NULL, eb);
    }
    if (e == LLEM_OK) {
        e = json_get_i64(j, "dimensions", 0, 1 << 20, &q->dimensions, NULL, eb);
    }
    if (e != LLEM_OK) {
        return e;
    }
    if (q->api == EMB_LEGACY) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        if (p && !cJSON_IsNull(p) && !cJSON_IsString(p)) {
            return llem_errf(eb, LLEM_EINVAL, "field \"prompt\": expected a string");
        }
        return parse_input(q, p, eb);
    }
    if (q->api == EMB_OPENAI) {
        const char *fmt = NULL;
        e = json_get_str(j, "encoding_format", &fmt, eb);
        if (e == LLEM_OK && fmt && strcmp(fmt, "float") && strcmp(fmt, "base64")) {
            return llem_errf(eb, LLEM_EINVAL,
                             "invalid encoding format: \"%.20s\" (must be "
                             "\"float\" or \"base64\")",
                             fmt);
        }
        q->base64 = fmt && !strcmp(fmt, "base64");
        if (e != LLEM_OK) {
            return e;
        }
    }
    return parse_input(q, cJSON_GetObjectItemCaseSensitive(j, "input"), eb);
}

// ---- tokens ---------------------------------------------------------------------------------

// The tokens of input i (BOS/EOS as the vocabulary asks; control-token texts stay text), cut
// to n_ctx when truncating, else LLEM_EINVAL. *out is owned by the caller.
static enum llem_err input_tokens(const struct embed_req *q, const struct sched_lease *L, int32_t i,
                                  llem_token **out, int32_t *n_out, struct llem_errbuf *eb)
{
    const cJSON *in = q->inputs[i];
    llem_token *toks = NULL;
    size_t n = 0;
    if (cJSON_IsArray(in)) {
        int32_t nv = tok_n_vocab(L->vocab), k = 0;
        n = (size_t)cJSON_GetArraySize(in);
        toks = llem_malloc(n * sizeof *toks);
        if (!toks) {
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, in)
        {
            double d = it->valuedouble;
            if (d < 0 || d >= nv || d != (double)(int32_t)d) {
                llem_free(toks);
                return llem_errf(eb, LLEM_EINVAL, "input[%d][%d]: not a token id of this model", i,
                                 k);
            }
            toks[k++] = (llem_token)d;
        }
    } else {
        const char *text = in->valuestring;
        size_t len = strlen(text), cap = len + 16;
        for (int attempt = 0; attempt < 2; attempt++) {
            toks = llem_malloc(cap * sizeof *toks);
            if (!toks) {
                return llem_errf(eb, LLEM_ENOMEM, "out of memory tokenizing %zu bytes", len);
            }
            enum llem_err e = tok_encode(L->vocab, text, len, true, false, toks, cap, &n, eb);
            if (e == LLEM_OK) {
                break;
            }
            llem_free(toks);
            toks = NULL;
            if (e != LLEM_ELIMIT || attempt == 1) {
                return e == LLEM_ELIMIT ? llem_errf(eb, LLEM_EINTERNAL, "tokenizer size mismatch")
                                        : e;
            }
            cap = n;
        }
    }
    if (n == 0) {
        llem_free(toks);
        return llem_errf(eb, LLEM_EINVAL, "input[%d] is empty after tokenization", i);
    }
    if (n > (size_t)L->n_ctx) {
        if (!q->truncate) {
            llem_free(toks);
            return llem_errf(eb, LLEM_EINVAL,
                             "input[%d] length (%zu tokens) exceeds the context "
                             "length (%d)",
                             i, n, L->n_ctx);
        }
        log_info("serve: embedding input of %zu tokens truncated to %d", n, L->n_ctx);
        n = (size_t)L->n_ctx;
    }
    *out = toks;
    *n_out = (int32_t)n;
    return LLEM_OK;
}

// ---- output ---------------------------------------------------------------------------------

static void append_floats(struct strbuf *sb, const float *v, int32_t n)
{
    strbuf_append_char(sb, '[');
    for (int32_t d = 0; d < n; d++) {
        strbuf_appendf(sb, d ? ",%.9g" : "%.9g", (double)v[d]);
    }
    strbuf_append_char(sb, ']');
}

// Little-endian float32 bytes, base64 (OpenAI's encoding_format "base64").
static void append_base64(struct strbuf *sb, const float *v, int32_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const size_t nb = (size_t)n * 4;
    unsigned char *b = llem_malloc(nb ? nb : 1);
    if (!b) {
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        b[4 * i] = (unsigned char)u;
        b[4 * i + 1] = (unsigned char)(u >> 8);
        b[4 * i + 2] = (unsigned char)(u >> 16);
        b[4 * i + 3] = (unsigned char)(u >> 24);
    }
    strbuf_append_char(sb, '"');
    for (size_t i = 0; i < nb; i += 3) {
        uint32_t x = (uint32_t)b[i] << 16 | (i + 1 < nb ? (uint32_t)b[i + 1] << 8 : 0) |
                     (i + 2 < nb ? b[i + 2] : 0);
        char q[4] = {tab[x >> 18], tab[(x >> 12) & 63], i + 1 < nb ? tab[(x >> 6) & 63] : '=',
                     i + 2 < nb ? tab[x & 63] : '='};
        strbuf_append(sb, q, 4);
    }
    strbuf_append_char(sb, '"');
    llem_free(b);
}

// Ollama's `dimensions`: keep the first d components and normalise again.
static void cut_dims(float *v, int32_t n, int32_t d)
{
    double ss = 0;
    for (int32_t i = 0; i < d && i < n; i++) {
        ss += (double)v[i] * (double)v[i];
    }
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
    for (int32_t i = 0; i < d && i < n; i++) {
        v[i] = (float)((double)v[i] * inv);
    }
}

static enum MHD_Result reply(struct http_req *r, const struct embed_req *q, const float *vecs,
                             int32_t n_vec, int32_t n_embd, int32_t dims, int64_t n_tokens,
                             int64_t load_ns, int64_t t_start)
{
    struct strbuf sb;
    strbuf_init(&sb, 0);
    const char *model = q->g.model;
    if (q->api == EMB_LEGACY) {
        strbuf_append_str(&sb, "{\"embedding\":");
        if (n_vec > 0) {
            append_floats(&sb, vecs, dims);
        } else {
            strbuf_append_str(&sb, "[]");
        }
        strbuf_append_char(&sb, '}');
    } else if (q->api == EMB_OLLAMA) {
        strbuf_append_str(&sb, "{");
        json_kv_str(&sb, false, "model", model, strlen(model));
        strbuf_append_str(&sb, ",\"embeddings\":[");
        for (int32_t i = 0; i < n_vec; i++) {
            if (i) {
                strbuf_append_char(&sb, ',');
            }
            append_floats(&sb, vecs + (size_t)i * (size_t)n_embd, dims);
        }
        strbuf_appendf(&sb,
                       "],\"total_duration\":%lld,\"load_duration\":%lld,"
                       "\"prompt_eval_count\":%lld}",
                       (long long)(time_now_ns() - t_start), (long long)load_ns,
                       (long long)n_tokens);
    } else {
        strbuf_append_str(&sb, "{\"object\":\"list\",\"data\":[");
        for (int32_t i = 0; i < n_vec; i++) {
            strbuf_appendf(&sb, "%s{\"object\":\"embedding\",\"embedding\":", i ? "," : "");
            if (q->base64) {
                append_base64(&sb, vecs + (size_t)i * (size_t)n_embd, dims);
            } else {
                append_floats(&sb, vecs + (size_t)i * (size_t)n_embd, dims);
            }
            strbuf_appendf(&sb, ",\"index\":%d}", i);
        }
        strbuf_append_str(&sb, "]");
        json_kv_str(&sb, true, "model", model, strlen(model));
        strbuf_appendf(&sb, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                       (long long)n_tokens, (long long)n_tokens);
    }
    enum MHD_Result res =
        sb.len > 0 ? http_reply_json(r, 200, &sb) : http_reply_error(r, 500, "out of memory");
    strbuf_deinit(&sb);
    return res;
}

// ---- running ---------------------------------------------------------------------------------

// Waits for the task's DONE/ERROR, polling the client and shutdown. False: the client left.
static bool wait_final(struct srv *s, struct http_req *r, struct runner_task *t,
                       struct runner_event *ev)
{
    for (;;) {
        if (atomic_load(&s->stopping)) {
            runner_task_cancel(t);
            memset(ev, 0, sizeof *ev);
            ev->kind = RUNNER_EV_ERROR;
            llem_errf(&ev->error, LLEM_ECANCELED, "server is shutting down");
            return true;
        }
        if (runner_task_next(t, ev, EMBED_POLL_MS)) {
            if (ev->kind == RUNNER_EV_PIECE) { // embed tasks post no text; skip defensively
                runner_event_clear(ev);
                continue;
            }
            return true;
        }
        if (http_client_gone(r)) {
            return false;
        }
    }
}

static enum MHD_Result embed_run(struct srv *s, struct http_req *r, struct embed_req *q)
{
    char canon[1024];
    if (q->g.smodel) {
        snprintf(canon, sizeof canon, "%s", q->g.smodel->name);
    } else {
        models_canonical(s, q->g.model, canon, sizeof canon);
    }
    struct llem_errbuf eb = {0};
    struct sched_request sr = {.model = canon,
                               .num_ctx = q->g.num_ctx,
                               .has_keep_alive = q->g.has_keep_alive,
                               .keep_alive_ns = q->g.keep_alive_ns};
    struct sched_lease lease;
    enum llem_err e = sched_acquire(s->sched, &sr, &lease, &eb);
    if (e == LLEM_EBUSY) {
        return http_reply_error(r, 503,
                                "server busy, please try again.  maximum pending "
                                "requests exceeded (%s)",
                                eb.msg);
    }
    if (e != LLEM_OK) {
        return srv_reply_err(r, &eb);
    }
    const int32_t n_embd = lease.model->hp.n_embd;
    int32_t dims = q->dimensions > 0 && q->dimensions < n_embd ? (int32_t)q->dimensions : n_embd;
    float *vecs = llem_malloc(((size_t)q->n_in + 1) * (size_t)n_embd * sizeof *vecs);
    struct runner_task **tasks = llem_calloc((size_t)q->n_in + 1, sizeof *tasks);
    int32_t *n_toks = llem_calloc((size_t)q->n_in + 1, sizeof *n_toks);
    if (!vecs || !tasks || !n_toks) {
        e = llem_errf(&eb, LLEM_ENOMEM, "out of memory for %d embeddings", q->n_in);
    }
    // Tokenize everything first: a bad or too long input fails the request before any work.
    llem_token **toks = e == LLEM_OK ? llem_calloc((size_t)q->n_in + 1, sizeof *toks) : NULL;
    if (e == LLEM_OK && !toks) {
        e = llem_errf(&eb, LLEM_ENOMEM, "out of memory");
    }
    for (int32_t i = 0; e == LLEM_OK && i < q->n_in; i++) {
        e = input_tokens(q, &lease, i, &toks[i], &n_toks[i], &eb);
    }
    int64_t n_total = 0;
    bool gone = false;
    int32_t next = 0; // next input to submit
    for (int32_t i = 0; e == LLEM_OK && i < q->n_in; i++) {
        while (e == LLEM_OK && next < q->n_in && next < i + EMBED_WINDOW) {
            struct runner_task_params tp = {
                .prompt = toks[next], .n_prompt = n_toks[next], .embed = true};
            e = runner_submit(lease.runner, &tp, &tasks[next], &eb);
            next += e == LLEM_OK;
        }
        if (e != LLEM_OK) {
            break;
        }
        struct runner_event ev;
        if (!wait_final(s, r, tasks[i], &ev)) {
            gone = true;
            break;
        }
        if (ev.kind == RUNNER_EV_DONE && ev.embedding && ev.n_embd == n_embd) {
            float *v = vecs + (size_t)i * (size_t)n_embd;
            memcpy(v, ev.embedding, (size_t)n_embd * sizeof *v);
            if (dims < n_embd) {
                cut_dims(v, n_embd, dims);
            }
            n_total += ev.stats.prompt_eval_count;
        } else if (ev.kind == RUNNER_EV_ERROR) {
            e = llem_errf(&eb, ev.error.code, "%s", ev.error.msg);
        } else {
            e = llem_errf(&eb, LLEM_EINTERNAL, "the runner returned no embedding");
        }
        runner_event_clear(&ev);
    }
    for (int32_t i = 0; i < q->n_in; i++) {
        if (tasks && tasks[i]) {
            runner_task_cancel(tasks[i]);
            runner_task_release(tasks[i]);
        }
        if (toks) {
            llem_free(toks[i]);
        }
    }
    llem_free(toks);
    llem_free(tasks);
    llem_free(n_toks);
    int64_t load_ns = lease.load_ns;
    sched_release(s->sched, &lease);
    enum MHD_Result res;
    if (gone) {
        r->status = 499;
        res = MHD_NO;
    } else if (e == LLEM_EBUSY) {
        res = http_reply_error(r, 503,
                               "server busy, please try again.  maximum pending "
                               "requests exceeded");
    } else if (e != LLEM_OK) {
        res = srv_reply_err(r, &eb);
    } else {
        metrics_counter_add(s->m_tokens_in, (uint64_t)n_total);
        res = reply(r, q, vecs, q->n_in, n_embd, dims, n_total, load_ns, r->t_start_ns);
    }
    llem_free(vecs);
    return res;
}

static enum MHD_Result embed_route(struct srv *s, struct http_req *r, enum embed_api api)
{
    if (api_body_has_nul(r)) {
        return http_reply_error(r, 400, "invalid request: NUL characters are not allowed");
    }
    enum MHD_Result res;
    cJSON *j = json_parse_body(r, &res);
    if (!j) {
        return res;
    }
    struct embed_req *q = llem_calloc(1, sizeof *q);
    if (!q) {
        cJSON_Delete(j);
        return http_reply_error(r, 500, "out of memory");
    }
    q->api = api;
    q->truncate = true;
    gen_req_init(&q->g, GEN_GENERATE);
    atomic_fetch_add(&s->inflight, 1);
    struct llem_errbuf eb = {0};
    if (parse_request(s, j, q, &eb) != LLEM_OK) {
        res = srv_reply_err(r, &eb);
    } else {
        // No input: load the model (or just check it) and answer an empty list, as Ollama.
        res = embed_run(s, r, q);
    }
    atomic_fetch_sub(&s->inflight, 1);
    gen_req_deinit(&q->g);
    llem_free(q);
    cJSON_Delete(j);
    return res;
}

enum MHD_Result api_embed(struct srv *s, struct http_req *r)
{
    return embed_route(s, r, r->route == ROUTE_EMBEDDINGS ? EMB_LEGACY : EMB_OLLAMA);
}

enum MHD_Result api_oai_embeddings(struct srv *s, struct http_req *r)
{
    return embed_route(s, r, EMB_OPENAI);
}
