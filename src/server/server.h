// server/server.h: `llem serve`, the Ollama- and OpenAI-compatible HTTP server. The transport
// is libmicrohttpd with one thread per connection: HTTP threads parse and validate requests,
// render chat templates, tokenize, submit to the model's runner (through the scheduler) and
// stream NDJSON (/api/*) or SSE (/v1/*) back; they never touch model or KV state.
// Entry points: server_params_init/server_params_from_env, server_new, server_free.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "sched/sched.h"

#define SERVER_DEFAULT_PORT 11434
#define SERVER_MAX_ALIASES 64

// A model name registered with `llem serve --model NAME=PATH`.
struct server_alias {
    char name[128];
    char path[1024];
};

struct server_params {
    char host[256];            // bind address (IP literal or name); "127.0.0.1"
    uint16_t port;             // 11434; 0 = any free port (see server_port)
    uint64_t max_body;         // LLEM_MAX_BODY: request body cap in bytes (64 MiB)
    int64_t request_timeout_ms; // LLEM_HTTP_REQUEST_TIMEOUT: a request line + headers + body must
                               // arrive within this (30 s); cuts off slow (drip-feed) clients
    int64_t idle_timeout_ms;   // LLEM_HTTP_IDLE_TIMEOUT: idle keep-alive connections close (5m)
    uint32_t max_connections;  // concurrent connections (512)
    char origins[2048];        // LLEM_ORIGINS, else OLLAMA_ORIGINS: extra CORS origins, comma list
    char models_dir[1024];     // LLEM_MODELS_DIR: NAME resolves to <dir>/NAME.gguf ("" = none)
    struct server_alias aliases[SERVER_MAX_ALIASES];
    int32_t n_aliases;
};

// Defaults only (no environment).
void server_params_init(struct server_params *p);
// Defaults, then LLEM_HOST (else OLLAMA_HOST), LLEM_MAX_BODY, LLEM_HTTP_REQUEST_TIMEOUT,
// LLEM_HTTP_IDLE_TIMEOUT, LLEM_ORIGINS (else OLLAMA_ORIGINS), LLEM_MODELS_DIR. LLEM_EINVAL
// naming the variable for a value that does not parse.
enum llem_err server_params_from_env(struct server_params *p, struct llem_errbuf *eb);

// Parses "host", "host:port", ":port", "scheme://host:port[/path]", "[v6]:port" as Ollama's
// OLLAMA_HOST does (http default port 11434, https 443; an empty host is 127.0.0.1).
enum llem_err server_parse_host(const char *s, char *host, size_t host_cap, uint16_t *port,
                                struct llem_errbuf *eb);

// Registers NAME=PATH (the --model flag). LLEM_EINVAL for a malformed spec, LLEM_ELIMIT when
// the table is full.
enum llem_err server_add_alias(struct server_params *p, const char *spec,
                               struct llem_errbuf *eb);

struct server;

// Creates the scheduler (with the server's name resolver) and starts listening. Errors:
// LLEM_EIO (cannot bind), LLEM_EINVAL (bad parameters), LLEM_ENOMEM.
enum llem_err server_new(const struct server_params *p, const struct sched_params *sp,
                         struct server **out, struct llem_errbuf *eb);
// The port actually bound (useful when params.port was 0).
uint16_t server_port(const struct server *s);
// Stops accepting, ends every in-flight generation (clients get a final error line), joins
// the connection threads and unloads every model. NULL is a no-op.
void server_free(struct server *s);
