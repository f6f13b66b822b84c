// server/metrics.c: GET /metrics in Prometheus text format 0.0.4. Request counts by route and
// status live in a fixed table here (a bounded label set, so no registry slots are spent);
// per-model state (slots, queue, KV cells, memory, tokens) is read from the scheduler at
// scrape time; TTFT, per-token latency, tokens in/out and the engine's per-op compute times
// come from the process-wide registry (base/metrics.h).
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
#include "base/metrics.h"
#include "server/server_int.h"

static const int status_codes[SRV_N_STATUS - 1] = {200, 201, 204, 400, 403, 404, 405,
                                                   413, 499, 500, 501, 503, 504};

static const char *const route_names[ROUTE_COUNT] = {
    [ROUTE_ROOT] = "/", [ROUTE_VERSION] = "/api/version", [ROUTE_GENERATE] = "/api/generate",
    [ROUTE_CHAT] = "/api/chat", [ROUTE_EMBED] = "/api/embed",
    [ROUTE_EMBEDDINGS] = "/api/embeddings", [ROUTE_TAGS] = "/api/tags",
    [ROUTE_SHOW] = "/api/show", [ROUTE_PS] = "/api/ps", [ROUTE_COPY] = "/api/copy",
    [ROUTE_DELETE] = "/api/delete", [ROUTE_CREATE] = "/api/create",
    [ROUTE_BLOBS] = "/api/blobs", [ROUTE_PULL] = "/api/pull", [ROUTE_PUSH] = "/api/push",
    [ROUTE_OAI_CHAT] = "/v1/chat/completions", [ROUTE_OAI_COMPLETIONS] = "/v1/completions",
    [ROUTE_OAI_MODELS] = "/v1/models", [ROUTE_OAI_MODEL] = "/v1/models/{id}",
    [ROUTE_OAI_EMBEDDINGS] = "/v1/embeddings", [ROUTE_METRICS] = "/metrics",
    [ROUTE_OTHER] = "other",
};

void srv_metrics_init(struct srv *s)
{
    metrics_register(METRIC_TIMER, "llem_server_ttft_seconds",
                     "Time from request arrival to the first generated text", &s->m_ttft);
    metrics_register(METRIC_TIMER, "llem_server_token_latency_seconds",
                     "Time between successive streamed pieces of one generation", &s->m_token);
    metrics_register(METRIC_COUNTER, "llem_server_prompt_tokens_total",
                     "Prompt tokens submitted to runners", &s->m_tokens_in);
    metrics_register(METRIC_COUNTER, "llem_server_generated_tokens_total",
                     "Tokens generated for clients", &s->m_tokens_out);
}

void srv_metrics_count(struct srv *s, enum srv_route route, int status)
{
    int k = SRV_N_STATUS - 1;
    for (int i = 0; i < SRV_N_STATUS - 1; i++) {
        if (status_codes[i] == status) {
            k = i;
            break;
        }
    }
    if ((unsigned)route < ROUTE_COUNT) {
        atomic_fetch_add(&s->req_count[route][k], 1);
    }
}

// Appends `"` + v with \, " and newline escaped + `"` (Prometheus label values).
static void label(struct strbuf *sb, const char *v)
{
    strbuf_append_char(sb, '"');
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"') {
            strbuf_append_char(sb, '\\');
            strbuf_append_char(sb, *p);
        } else if (*p == '\n') {
            strbuf_append_str(sb, "\\n");
        } else {
            strbuf_append_char(sb, *p);
        }
    }
    strbuf_append_char(sb, '"');
}

static void header(struct strbuf *sb, const char *name, const char *type, const char *help)
{
    strbuf_appendf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void model_series(struct strbuf *sb, const char *name, const char *type,
                         const char *help, const struct sched_model_info *info, int32_t n,
                         size_t field_off, bool is_u64)
{
    header(sb, name, type, help);
    for (int32_t i = 0; i < n; i++) {
        const char *base = (const char *)&info[i];
        strbuf_appendf(sb, "%s{model=", name);
        label(sb, info[i].name);
        if (is_u64) {
            uint64_t v;
            memcpy(&v, base + field_off, sizeof v);
            strbuf_appendf(sb, "} %llu\n", (unsigned long long)v);
        } else {
            int32_t v;
            memcpy(&v, base + field_off, sizeof v);
            strbuf_appendf(sb, "} %d\n", v);
        }
    }
}

#define MSER(name, type, help, field, u64)                                                   \
    model_series(&sb, name, type, help, info, n, offsetof(struct sched_model_info, field), u64)

enum MHD_Result api_metrics(struct srv *s, struct http_req *r)
{
    struct strbuf sb;
    strbuf_init(&sb, 16u << 20);
    header(&sb, "llem_http_requests_total", "counter", "HTTP requests by route and status");
    for (int rt = 0; rt < ROUTE_COUNT; rt++) {
        for (int k = 0; k < SRV_N_STATUS; k++) {
            uint64_t v = atomic_load(&s->req_count[rt][k]);
            if (v == 0) {
                continue;
            }
            char code[8];
            snprintf(code, sizeof code, "%d", k < SRV_N_STATUS - 1 ? status_codes[k] : 0);
            strbuf_appendf(&sb, "llem_http_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
                           route_names[rt], k < SRV_N_STATUS - 1 ? code : "other",
                           (unsigned long long)v);
        }
    }
    struct sched_model_info *info = llem_calloc(64, sizeof *info);
    int32_t n = info ? LLEM_MIN(sched_list(s->sched, info, 64), 64) : 0;
    struct sched_stats st = {0};
    sched_stats(s->sched, &st);
    int64_t queued = st.n_waiting;
    for (int32_t i = 0; i < n; i++) {
        queued += info[i].status.n_queued;
    }
    header(&sb, "llem_queue_depth", "gauge",
           "Requests waiting for a model load or a runner slot");
    strbuf_appendf(&sb, "llem_queue_depth %lld\n", (long long)queued);
    header(&sb, "llem_inflight_generations", "gauge", "Generations being served over HTTP");
    strbuf_appendf(&sb, "llem_inflight_generations %d\n", atomic_load(&s->inflight));
    header(&sb, "llem_models_loaded", "gauge", "Models loaded");
    strbuf_appendf(&sb, "llem_models_loaded %d\n", st.n_loaded);
    header(&sb, "llem_model_loads_total", "counter", "Model loads since start");
    strbuf_appendf(&sb, "llem_model_loads_total %llu\n", (unsigned long long)st.loads);
    header(&sb, "llem_model_unloads_total", "counter", "Model unloads since start");
    strbuf_appendf(&sb, "llem_model_unloads_total %llu\n", (unsigned long long)st.unloads);
    header(&sb, "llem_requests_refused_total", "counter",
           "Requests refused: queue full (busy) or not enough memory (memory)");
    strbuf_appendf(&sb, "llem_requests_refused_total{reason=\"busy\"} %llu\n",
                   (unsigned long long)st.refused_busy);
    strbuf_appendf(&sb, "llem_requests_refused_total{reason=\"memory\"} %llu\n",
                   (unsigned long long)st.refused_mem);
    if (info) {
        MSER("llem_model_memory_bytes", "gauge", "Estimated bytes of a loaded model", size,
             true);
        MSER("llem_model_weight_bytes", "gauge", "Weight bytes of a loaded model", weight_bytes,
             true);
        MSER("llem_model_kv_bytes", "gauge", "KV cache bytes of a loaded model", kv_bytes, true);
        MSER("llem_kv_cells_used", "gauge", "KV cache cells in use", status.kv_cells_used,
             false);
        MSER("llem_kv_cells_total", "gauge", "KV cache cells", status.kv_cells_total, false);
        MSER("llem_slots_busy", "gauge", "Runner slots generating", status.n_busy, false);
        MSER("llem_slots_total", "gauge", "Runner slots", status.n_slots, false);
        MSER("llem_runner_queued", "gauge", "Tasks waiting for a slot", status.n_queued, false);
        MSER("llem_runner_tokens_in_total", "counter", "Prompt tokens a runner processed",
             status.tokens_in, true);
        MSER("llem_runner_tokens_out_total", "counter", "Tokens a runner generated",
             status.tokens_out, true);
        MSER("llem_runner_steps_total", "counter", "Decode steps a runner ran", status.steps,
             true);
        llem_free(info);
    }
    size_t need = 0;
    enum llem_err e = strbuf_reserve(&sb, 256u << 10);
    if (e == LLEM_OK) {
        e = metrics_write_prometheus(sb.data + sb.len, sb.cap - sb.len, &need);
        if (e == LLEM_ELIMIT && strbuf_reserve(&sb, need + 1) == LLEM_OK) {
            e = metrics_write_prometheus(sb.data + sb.len, sb.cap - sb.len, &need);
        }
        if (e == LLEM_OK) {
            sb.len += need;
        } else {
            sb.data[sb.len] = '\0';
        }
    }
    enum MHD_Result res =
        http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", strbuf_cstr(&sb), sb.len);
    strbuf_deinit(&sb);
    return res;
}
