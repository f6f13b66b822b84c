// server/gen_int.h: a generation in flight (struct gen_job), shared by gen.c (submission and
// the merged, non-streaming answer) and stream.c (NDJSON / SSE lines from runner events).
#pragma once
#include "server/server_int.h"
#include "template/thinking.h"
#include "template/toolcall.h"

// How a generation's output is split (gen_parse.c): thinking between the template's tags goes
// to `thinking`, tool calls into calls, the rest to content. Harmony output goes through the
// tool-call parser alone (it knows the channels). Inactive: every byte is content.
struct gen_parse {
    bool active;
    bool thinking_on;            // the think parser runs (tags found and not harmony)
    struct think_parser tp;
    struct tc_parser *tc;        // NULL: no tool-call parsing
    struct strbuf content, thinking; // what the last gen_parse_add decided
    struct strbuf mid;           // think parser's content on its way to the tool-call parser
    int32_t n_calls_sent;        // calls already put in a streamed chunk
};

// Configures the parsers from the template text and the request: tools (array, may be NULL),
// thinking (tags found, think not false), think_discard (think:false: drop what the model
// thinks anyway), primed (the prompt ends inside thinking), harmony.
enum llem_err gen_parse_init(struct gen_parse *p, const char *tpl, const cJSON *tools,
                             bool think_on, bool primed, struct llem_errbuf *eb);
void gen_parse_deinit(struct gen_parse *p);
// Feeds output text; content/thinking are replaced by what this chunk decided; new calls are
// those from n_calls_sent to tc_parser_n_calls(p->tc). done: the output ended (flush).
enum llem_err gen_parse_add(struct gen_parse *p, const char *s, size_t n, bool done,
                            struct llem_errbuf *eb);
int32_t gen_parse_n_calls(const struct gen_parse *p);

struct grammar_rules;
struct gen_job;
struct grammar;
// The request's constraint: llem's `grammar` (GBNF), Ollama's `format` or OpenAI's
// `response_format`; *out NULL when none. What the grammar cannot express (unsupported schema
// features, size caps) is LLEM_EINVAL (HTTP 400) naming it.
enum llem_err gen_compile_rules(const struct gen_req *g, struct grammar_rules **out,
                                struct llem_errbuf *eb);
// Ollama's thinking rules against the template text: a model that can think (thinking tags or
// harmony) thinks unless think is false; think true on one that cannot is 400; levels are for
// harmony only (400 on Ollama's routes, dropped on /v1). Sets *think_on.
enum llem_err gen_plan_think(struct gen_req *g, const char *tpl, bool *think_on,
                             struct llem_errbuf *eb);
// After the prompt is rendered: sets up j->parse (chat, and generate unless raw), makes *gr
// from rules over the runner's grammar vocabulary (triggered after the thinking section when
// the model thinks), and says whether pieces must render control tokens.
#define GEN_TRIGGER_MAX 16
struct gen_trigger {
    llem_token toks[GEN_TRIGGER_MAX]; // the thinking close tag, tokenized
    int32_t n;
};
// A model that thinks with a constraint gets its thinking opened in the prompt (when the
// template did not) and the close tag's tokens in *trig, for the runner to force near the end.
enum llem_err gen_setup_output(struct gen_job *j, const struct gen_req *g, const char *tpl,
                               bool think_on, struct strbuf *prompt,
                               struct grammar_rules *rules, struct grammar **gr,
                               bool *render_special, struct gen_trigger *trig,
                               struct llem_errbuf *eb);

struct gen_job {
    struct srv *s;
    struct http_req *r;          // valid while MHD serves the request (not in gen_job_free)
    enum gen_api api;
    bool stream, include_usage;
    char model[256];             // echoed in every object
    struct sched_lease lease;
    bool leased;
    struct runner_task *task;
    int32_t n_prompt;            // prompt tokens submitted
    int64_t t_start_ns, t_first_ns, t_last_ns; // request start, first piece, last piece
    int64_t created;             // unix seconds (OpenAI "created")
    char id[48];                 // OpenAI completion id
    struct strbuf out;           // bytes formatted and not yet handed to MHD
    size_t out_pos;
    struct strbuf text;          // merged text (stream false)
    bool finished;               // DONE/ERROR seen (or the client left)
    bool client_gone;
    llem_token *context;         // DONE's token list (generate)
    int32_t n_context;
    struct gen_parse parse;      // output -> content / thinking / tool calls
    struct strbuf thinking;      // merged thinking (stream false)
};

// Frees the job: cancels and releases the task if still running, releases the lease.
void gen_job_free(struct gen_job *j);
// Queues a chunked response fed from runner events; takes ownership of j.
enum MHD_Result stream_respond(struct gen_job *j);
// Waits for the whole answer (cancelling if the client leaves) and queues one JSON object;
// takes ownership of j.
enum MHD_Result merged_respond(struct gen_job *j);
