// server/server_int.h: the server's private structures and the functions its files share:
// http.c (transport, connections, routing), json.c (typed field access), errors.c (status
// mapping and error bodies), prompt.c (chat -> prompt), gen.c/stream.c (a generation from
// submit to the last byte), api_ollama.c, api_openai.c, models.c (names), metrics.c.
// Not for use outside src/server/.
#pragma once
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/strbuf.h"
#include "server/server.h"

// ---- routes and per-route request counters --------------------------------------------------

enum srv_route {
    ROUTE_ROOT, ROUTE_VERSION, ROUTE_GENERATE, ROUTE_CHAT, ROUTE_EMBED, ROUTE_EMBEDDINGS,
    ROUTE_TAGS, ROUTE_SHOW, ROUTE_PS, ROUTE_COPY, ROUTE_DELETE, ROUTE_CREATE, ROUTE_BLOBS,
    ROUTE_PULL, ROUTE_PUSH, ROUTE_OAI_CHAT, ROUTE_OAI_COMPLETIONS, ROUTE_OAI_MODELS,
    ROUTE_OAI_MODEL, ROUTE_OAI_EMBEDDINGS, ROUTE_METRICS, ROUTE_OTHER, ROUTE_COUNT
};
// Status codes counted separately; anything else lands in the last bucket ("other").
#define SRV_N_STATUS 14

struct srv;
struct http_req;

typedef enum MHD_Result (*srv_handler_fn)(struct srv *s, struct http_req *r);

// ---- connections ----------------------------------------------------------------------------

// FRESH: accepted, no request yet (must send one within request_timeout); IDLE: keep-alive
// between requests (idle_timeout); REQUEST: request line seen, headers/body arriving
// (request_timeout); HANDLING: being answered (never cut by the watchdog).
enum conn_phase { CONN_FRESH, CONN_IDLE, CONN_REQUEST, CONN_HANDLING };

// One TCP connection, tracked for the watchdog (slow or idle clients are shut down).
struct srv_conn {
    int fd;
    _Atomic int phase;          // enum conn_phase
    _Atomic int64_t phase_ns;   // monotonic time the phase began
    struct srv_conn *prev, *next;
};

// One HTTP request (MHD's per-request context).
struct http_req {
    struct MHD_Connection *conn;
    struct srv_conn *sc;        // NULL if the connection was not tracked
    enum srv_route route;
    srv_handler_fn handler;
    const char *method;         // MHD's strings, valid for the request
    const char *url;
    char tail[1024];            // path after a route prefix (/api/blobs/:digest, /v1/models/:id)
    bool openai;                // /v1/*: OpenAI error shapes
    struct strbuf body;
    uint64_t body_seen;         // bytes received, stored or not
    bool too_large;             // a chunked body passed the cap: answer 413 at the end
    bool started;               // the handler ran
    // POST /api/blobs/:digest streams its body into the store instead of r->body (blobs are
    // gigabytes): see api_store.c.
    struct store_blob_writer *blob_w;
    enum llem_err blob_rc;      // first error while writing (the rest of the body is drained)
    char blob_msg[256];
    bool blob_upload;           // this request's body goes to blob_w (or is drained after an error)
    uint64_t blob_since;        // bytes since the watchdog timer was last reset
    char origin[512];           // an allowed Origin to echo in CORS headers ("" = none)
    int status;                 // status answered (metrics)
    int64_t t_start_ns;
};

// ---- the server -----------------------------------------------------------------------------

struct store;
struct store_model;

struct srv {
    struct server_params p;
    struct sched *sched;
    struct store *store;         // the model store (NULL when it could not be opened)
    atomic_int store_jobs;       // create/pull/push threads running (server_free waits)
    struct MHD_Daemon *mhd;
    uint16_t port;
    bool loopback;               // bound to a loopback address: the Host filter applies
    atomic_bool stopping;

    pthread_mutex_t conn_mu;     // the connection list
    struct srv_conn *conns;
    pthread_t watchdog;
    bool watchdog_started;
    pthread_mutex_t wd_mu;
    pthread_cond_t wd_cv;

    atomic_uint_fast64_t req_count[ROUTE_COUNT][SRV_N_STATUS];
    atomic_int inflight;         // generations in progress
    int m_ttft, m_token, m_tokens_in, m_tokens_out, m_requests; // metrics registry ids
    int64_t start_unix;
};

// ---- http.c: responses ----------------------------------------------------------------------

// Queues a response with body[0..len) (copied) and content type; adds CORS headers.
enum MHD_Result http_reply(struct http_req *r, int status, const char *ctype, const char *body,
                           size_t len);
enum MHD_Result http_reply_json(struct http_req *r, int status, const struct strbuf *sb);
enum MHD_Result http_reply_cjson(struct http_req *r, int status, const cJSON *obj);
// {"error": msg} (Ollama) or {"error":{"message","type","param","code"}} (OpenAI routes).
enum MHD_Result http_reply_error(struct http_req *r, int status, const char *fmt, ...)
    LLEM_PRINTF(3, 4);
// Adds the CORS headers this request earned to resp.
void http_add_cors(const struct http_req *r, struct MHD_Response *resp);
// True when the client closed its side of the connection (checked without blocking).
bool http_client_gone(const struct http_req *r);
// A request header value or NULL.
const char *http_header(const struct http_req *r, const char *name);

// ---- errors.c -------------------------------------------------------------------------------

// HTTP status for an error value (400, 404, 413, 499, 500, 501, 503).
int srv_status_for(enum llem_err e);
// Appends an OpenAI-shaped error object (no trailing newline) or an Ollama one.
enum llem_err srv_error_json(struct strbuf *sb, bool openai, int status, const char *msg);
enum MHD_Result srv_reply_err(struct http_req *r, const struct llem_errbuf *eb);

// ---- json.c: typed access with validation ---------------------------------------------------

// Parses r->body as one JSON object (depth and UTF-8 checked). On error answers 400 itself
// and returns NULL with *res set to the MHD result.
cJSON *json_parse_body(struct http_req *r, enum MHD_Result *res);
// Field getters: absent (or JSON null) leaves *out unchanged and returns LLEM_OK; a wrong type
// or range is LLEM_EINVAL with a message naming the field.
enum llem_err json_get_str(const cJSON *o, const char *key, const char **out,
                           struct llem_errbuf *eb);
enum llem_err json_get_bool(const cJSON *o, const char *key, bool *out, bool *present,
                            struct llem_errbuf *eb);
enum llem_err json_get_i64(const cJSON *o, const char *key, int64_t min, int64_t max,
                           int64_t *out, bool *present, struct llem_errbuf *eb);
enum llem_err json_get_f32(const cJSON *o, const char *key, float *out, bool *present,
                           struct llem_errbuf *eb);
// keep_alive: a duration string or a number of seconds.
enum llem_err json_get_duration(const cJSON *o, const char *key, int64_t *ns, bool *present,
                                struct llem_errbuf *eb);
// Appends "key":"escaped" (with a leading comma when comma).
enum llem_err json_kv_str(struct strbuf *sb, bool comma, const char *key, const char *v,
                          size_t n);
// RFC 3339 UTC with nanoseconds, as Go prints time.Time: "2026-11-25T18:49:42.123456789Z".
void json_time_rfc3339(int64_t unix_ns, char *buf, size_t cap);
int64_t json_now_unix_ns(void);

// ---- models.c: names ------------------------------------------------------------------------

// The scheduler's resolver: NAME (alias, LLEM_MODELS_DIR stem, with or without ":latest") or a
// GGUF path -> path. LLEM_ENOTFOUND "model 'x' not found".
enum llem_err models_resolve(void *user, const char *name, char *path, size_t cap,
                             struct llem_errbuf *eb);
// Canonical form of a request's model name (the one the scheduler keys on): aliases and stems
// lose ":latest" and are lower-cased; a path stays a path.
void models_canonical(const struct srv *s, const char *name, char *out, size_t cap);
// Display name: "name:latest" for names, the path for paths.
void models_display(const char *canonical, char *out, size_t cap);

struct model_entry {
    char name[256];  // display name
    char path[1024]; // GGUF path ("" for store models: look them up by name)
    uint64_t size;
    int64_t mtime_unix;
    bool from_store;
    char digest[80]; // store models: the manifest digest, hex without "sha256:"
    char family[64], parameter_size[32], quantization_level[32], parent_model[256];
};
// Every model known by name: the store's (and the read-only Ollama store's), then aliases,
// LLEM_MODELS_DIR stems and loaded path models not already listed. Returns the count (at most
// cap).
int32_t models_list(struct srv *s, struct model_entry *out, int32_t cap);
// Appends Ollama's "details" object for a GGUF (family, parameter_size, quantization_level).
// verbose/model_info as /api/show wants them when info is not NULL.
enum llem_err models_show(struct srv *s, const char *path, bool verbose, cJSON *out,
                          struct llem_errbuf *eb);
void models_details(const char *path, cJSON *details);
// Ollama's "details" object for a listed entry (store fields, or read from the GGUF).
void models_entry_details(const struct model_entry *m, cJSON *details);

// The store model a request name means, if any: LLEM_OK with *out (store_model_free), or
// LLEM_ENOTFOUND (not in the store: try aliases and paths), LLEM_EINVAL (not a valid store
// name), other errors as store_resolve gives them. No store: LLEM_ENOTFOUND.
enum llem_err models_store_lookup(struct srv *s, const char *name, struct store_model **out,
                                  struct llem_errbuf *eb);
// /api/show for a store model: the GGUF's metadata, then the store's modelfile, parameters,
// template, system, license, messages, details, capabilities and modified_at.
enum llem_err models_show_store(struct srv *s, const struct store_model *m, bool verbose,
                                cJSON *out, struct llem_errbuf *eb);
// Appends Ollama's "parameters" text (one `name value` line per option, values as Go's %#v)
// for a params JSON object.
void models_params_text(const char *params_json, struct strbuf *out);

// ---- generation (gen.c) ---------------------------------------------------------------------

enum gen_api { GEN_GENERATE, GEN_CHAT, GEN_OAI_CHAT, GEN_OAI_COMPLETION };

#define GEN_MAX_STOPS 16

// A validated generation request, in the terms of every API.
struct gen_req {
    enum gen_api api;
    const char *model;           // as the client spelled it (echoed back)
    bool stream;
    bool include_usage;          // OpenAI stream_options.include_usage
    struct sampler_params sp;
    int32_t num_predict, num_keep, num_ctx;
    const char *stops[GEN_MAX_STOPS];
    int32_t n_stops;
    bool has_keep_alive;
    int64_t keep_alive_ns;
    bool raw, truncate;
    // Prompt sources (one of them): a generate prompt (+system, template), or chat messages.
    const char *prompt;
    const char *system;
    const char *tmpl;            // a Go template override (generate)
    const cJSON *messages;       // validated array
    const cJSON *tools;          // validated array or NULL
    const cJSON *context;        // generate's deprecated token list (validated ints)
    bool think_set, think;
    const char *think_level;     // "low" | "medium" | "high" (harmony templates only) or NULL
    // Structured output, compiled by gen_run (400 for what the grammar cannot express):
    // Ollama's `format` or OpenAI's `response_format` (format_openai), and llem's `grammar`
    // extension (GBNF text for the whole output, as llama.cpp's server takes it).
    const cJSON *format;
    bool format_openai;
    const char *grammar;
    // The store model the name resolved to (owned; gen_req_deinit frees it) and its parsed
    // PARAMETER defaults (stop strings point into it).
    struct store_model *smodel;
    cJSON *model_params;
};

void gen_req_init(struct gen_req *g, enum gen_api api);
void gen_req_deinit(struct gen_req *g);
// Looks up g->model in the store and applies its PARAMETER defaults to g (call after reading
// the model name and before the request's own options, which override them). A model with an
// ADAPTER layer is refused (400). Not a store model: nothing happens.
enum llem_err gen_apply_model(struct srv *s, struct gen_req *g, struct llem_errbuf *eb);
// Reads Ollama's options object into g (every key known; wrong types LLEM_EINVAL).
enum llem_err gen_parse_options(struct gen_req *g, const cJSON *opts, struct llem_errbuf *eb);
// Reads a stop value (string or array of strings) into g.
enum llem_err gen_parse_stop(struct gen_req *g, const cJSON *v, const char *field,
                             struct llem_errbuf *eb);
// Validates a messages array (roles, content strings; OpenAI content parts flattened into the
// copy the caller passes). LLEM_EINVAL naming the message.
enum llem_err gen_check_messages(const cJSON *msgs, struct llem_errbuf *eb);
// Runs the whole request: load (or unload for an empty prompt), template, tokenize, submit,
// then stream or merge. Always queues a response.
enum MHD_Result gen_run(struct srv *s, struct http_req *r, struct gen_req *g);

// ---- prompt.c ---------------------------------------------------------------------------------

struct model;
struct tok_vocab;
// Renders a chat (messages [+ tools]) to the prompt text with the model's template: the GGUF's
// tokenizer.chat_template through the Jinja engine, else ChatML when the vocabulary has
// <|im_start|>/<|im_end|>, else the plain fallback (see docs/internals/server.md).
// think_level is passed to harmony templates as reasoning_effort (NULL: none).
enum llem_err prompt_render_chat(const struct model *m, const struct tok_vocab *v,
                                 const cJSON *messages, const cJSON *tools, bool think_set,
                                 bool think, const char *think_level, struct strbuf *out,
                                 struct llem_errbuf *eb);
// The prompt for /api/generate: prompt (+system) through the model's template as one user turn;
// with tmpl, that Go template renders it instead.
enum llem_err prompt_render_generate(const struct model *m, const struct tok_vocab *v,
                                     const char *prompt, const char *system, const char *tmpl,
                                     bool think_set, bool think, struct strbuf *out,
                                     struct llem_errbuf *eb);
// The template text a chat is rendered with (the GGUF's Jinja source, else the ChatML or plain
// fallback's Go text): what the tool-call and thinking parsers are configured from.
const char *prompt_template_text(const struct model *m, const struct tok_vocab *v);
// Which template a model uses ("jinja", "chatml", "plain") and whether it mentions tools.
const char *prompt_kind(const struct model *m, const struct tok_vocab *v);
bool prompt_supports_tools(const char *chat_template);
// Renders messages (+ tools, think) through an Ollama Go template (a TEMPLATE layer or the
// request's `template`), as Ollama's Template.Execute does.
enum llem_err prompt_render_gotmpl(const char *src, const cJSON *messages, const cJSON *tools,
                                   bool think_set, bool think, struct strbuf *out,
                                   struct llem_errbuf *eb);
// The fallback texts, for /api/show's "template".
extern const char prompt_chatml_doc[];
extern const char prompt_plain_doc[];

// ---- api_*.c handlers -----------------------------------------------------------------------

enum MHD_Result api_root(struct srv *s, struct http_req *r);
enum MHD_Result api_version(struct srv *s, struct http_req *r);
enum MHD_Result api_generate(struct srv *s, struct http_req *r);
enum MHD_Result api_chat(struct srv *s, struct http_req *r);
enum MHD_Result api_embed(struct srv *s, struct http_req *r);
enum MHD_Result api_tags(struct srv *s, struct http_req *r);
enum MHD_Result api_show(struct srv *s, struct http_req *r);
enum MHD_Result api_ps(struct srv *s, struct http_req *r);
// api_store.c: the store-backed routes.
enum MHD_Result api_copy(struct srv *s, struct http_req *r);
enum MHD_Result api_delete(struct srv *s, struct http_req *r);
enum MHD_Result api_create(struct srv *s, struct http_req *r);
enum MHD_Result api_blobs(struct srv *s, struct http_req *r);
enum MHD_Result api_pull(struct srv *s, struct http_req *r);
enum MHD_Result api_push(struct srv *s, struct http_req *r);
// Called by http.c for POST /api/blobs/:digest: on the first call (validates the digest and
// opens the writer; returns false after queueing an error reply in *res), for each piece of
// body, and when the request ends (aborts an unfinished writer).
bool api_blobs_begin(struct srv *s, struct http_req *r, enum MHD_Result *res);
void api_blobs_data(struct http_req *r, const char *data, size_t n);
void api_blobs_end(struct http_req *r);
// True when the request body has a \u0000 escape (cJSON would cut a name there): the routes
// taking a model name refuse such bodies (400).
bool api_body_has_nul(const struct http_req *r);
// Opens the store at start-up (LLEM_MODELS, plus Ollama's store read-only); logs and leaves
// s->store NULL when it cannot.
void api_store_open(struct srv *s);
enum MHD_Result api_oai_chat(struct srv *s, struct http_req *r);
enum MHD_Result api_oai_completions(struct srv *s, struct http_req *r);
enum MHD_Result api_oai_models(struct srv *s, struct http_req *r);
enum MHD_Result api_oai_model(struct srv *s, struct http_req *r);
enum MHD_Result api_oai_embeddings(struct srv *s, struct http_req *r);
enum MHD_Result api_metrics(struct srv *s, struct http_req *r);

// ---- metrics.c --------------------------------------------------------------------------------

void srv_metrics_init(struct srv *s);
void srv_metrics_count(struct srv *s, enum srv_route route, int status);
