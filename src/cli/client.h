// cli/client.h: the CLI's side of the HTTP API: the verbs that manage models (list, ps, show,
// stop, cp, rm, pull, push, create, run MODEL) talk to a running `llem serve` exactly as
// Ollama's CLI does. Server address from LLEM_HOST, else OLLAMA_HOST, else 127.0.0.1:11434.
// Also the output helpers those verbs share: Ollama's byte/time formats, column tables and
// TTY-aware progress bars. Entry points: cli_client_init, cli_call, cli_stream.
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "base/err.h"

// Set (to 1) by the SIGINT handler cli_catch_sigint installs; a transfer in progress stops
// with LLEM_ECANCELED at its next progress tick. Cleared by whoever handles the interrupt.
extern volatile sig_atomic_t cli_interrupted;
// Installs (true) a SIGINT handler that only sets cli_interrupted, without SA_RESTART so a
// blocking read returns; false restores the default action.
void cli_catch_sigint(bool on);

struct cli_client {
    char base[512]; // "http://127.0.0.1:11434", no trailing '/'
    bool local;     // the host is a loopback address (a server may be started for it)
};

// Reads LLEM_HOST (else OLLAMA_HOST) the way Ollama parses OLLAMA_HOST: "host", "host:port",
// ":port", "scheme://host[:port][/path]"; default http://127.0.0.1:11434. LLEM_EINVAL naming
// the variable for a value that does not parse.
enum llem_err cli_client_init(struct cli_client *c, struct llem_errbuf *eb);

// True when GET /api/version answers 200 (within about 2 s).
bool cli_server_up(const struct cli_client *c);
// Makes sure a server answers: when none does and the address is local, starts `llem serve`
// (this executable) in the background, detached from the terminal's signals, with its output
// appended to ~/.llem/logs/server.log (its pid in server.pid there), and waits up to ~15 s
// for /api/version. LLEM_EIO with the "could not connect" message otherwise.
enum llem_err cli_ensure_server(const struct cli_client *c, struct llem_errbuf *eb);

// One request with a JSON body (req may be NULL: no body) whose answer is one JSON value.
// 2xx: OK with *out the parsed body (NULL for an empty body; out may be NULL to ignore it).
// Otherwise the server's {"error": "..."} message, as LLEM_ENOTFOUND for 404, LLEM_EINVAL for
// 400, LLEM_EIO for the rest (and for "could not connect to llem server ..."). Free *out with
// cJSON_Delete.
enum llem_err cli_call(const struct cli_client *c, const char *method, const char *path,
                       const cJSON *req, cJSON **out, struct llem_errbuf *eb);

// Raw variant used for blob uploads: body bytes from a file (NULL: none), status returned in
// *status (any status is OK here; transport failures are LLEM_EIO).
enum llem_err cli_call_file(const struct cli_client *c, const char *method, const char *path,
                            FILE *body, uint64_t body_len, long *status,
                            struct llem_errbuf *eb);

// A streamed answer: fn gets each NDJSON object in order (it may keep nothing past the call)
// and returns false to stop early (then OK). A line {"error": "..."} ends the stream with
// LLEM_EIO and that message; errors before streaming are as cli_call's. SIGINT (with
// cli_catch_sigint on) aborts the transfer: LLEM_ECANCELED.
typedef bool (*cli_line_fn)(void *ctx, const cJSON *obj);
enum llem_err cli_stream(const struct cli_client *c, const char *method, const char *path,
                         const cJSON *req, cli_line_fn fn, void *ctx, struct llem_errbuf *eb);

// ---- shared output helpers ---------------------------------------------------------------------

// Ollama's format.HumanBytes: "512 B", "260 KB", "1.2 GB", "15 GB" (decimal units).
void cli_human_bytes(uint64_t b, char *buf, size_t cap);
// Ollama's format.HumanTime relative to now: "2 days ago", "4 minutes from now", "Forever"
// (more than 20 years ahead); `zero` when t is 0.
void cli_human_time(int64_t unix_s, const char *zero, char *buf, size_t cap);
// Parses an RFC 3339 time ("2024-05-01T12:00:00.5+02:00", "...Z"); 0 when malformed.
int64_t cli_parse_time(const char *s);

// A left-aligned text table printed like Ollama's (columns separated by 4 spaces; the first
// row is the header). Cells are copied.
struct cli_table {
    char **cells;
    size_t n_cols, n_cells, cap;
};
void cli_table_init(struct cli_table *t, size_t n_cols);
void cli_table_add(struct cli_table *t, const char *cell); // row-major
// Prints every row prefixed by indent; returns nothing (an allocation failure drops cells).
void cli_table_print(const struct cli_table *t, const char *indent);
void cli_table_deinit(struct cli_table *t);

// Progress lines of pull/push/create: on a terminal a redrawn bar per status
// ("pulling 2af3b81862c6: 100% ▕████▏ 1.2 MB"), otherwise one plain line per new status.
struct cli_progress {
    bool tty;
    char status[256]; // the line being drawn
    bool open;        // a bar line without its newline yet
};
void cli_progress_init(struct cli_progress *p);
// One {"status","digest","total","completed"} object.
void cli_progress_update(struct cli_progress *p, const cJSON *obj);
void cli_progress_done(struct cli_progress *p); // ends an open line

// Reads a whole stream (stdin, a file) into a heap string (llem_free); NULL on error or past
// max bytes.
char *cli_slurp(FILE *f, size_t max, size_t *len);
// ~/.llem (from HOME); false when HOME is unset or the path does not fit.
bool cli_llem_home(char *buf, size_t cap);

// The environment section every client verb's --help ends with.
#define CLI_ENV_HELP                                                                            \
    "\nEnvironment Variables:\n"                                                                \
    "  LLEM_HOST    address of the llem server (default 127.0.0.1:11434; else OLLAMA_HOST)\n"

// The common start of a client verb: reads the server address; prints the error and returns
// false when LLEM_HOST does not parse.
bool cli_client_open(struct cli_client *c, const char *verb);
// The short ID Ollama shows: the first 12 hex digits of a "sha256:<hex>" or bare digest.
void cli_short_id(const char *digest, char out[13]);

// POST /api/pull or /api/push for model, drawing the streamed progress; used by pull, push and
// run (which pulls a missing model). Returns the exit status (errors printed as "llem VERB:").
int cli_registry_transfer(const struct cli_client *c, const char *verb, const char *model,
                          bool insecure);
// The whole of `llem pull` / `llem push` (same flags): usage is printed for --help.
int cli_transfer_verb(const char *verb, const char *usage, int argc, char **argv);

// True when a `run`/`show` argument is a GGUF file rather than a model name: it ends in
// ".gguf" (existing or not, so a typo reports the missing file) or names an existing regular
// file. Anything else is a model name for the server.
bool cli_is_model_file(const char *arg);
// Prints an /api/show answer as Ollama's `show` does: Model, Capabilities, Parameters, (with
// verbose: Metadata and Tensors), System and License sections.
void cli_show_info(const cJSON *resp, bool verbose);

// `llem run MODEL ...` (cli/repl.c): everything after the file/name decision of cli_run.
int cli_run_model(int argc, char **argv);
