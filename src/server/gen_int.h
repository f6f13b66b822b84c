// server/gen_int.h: a generation in flight (struct gen_job), shared by gen.c (submission and
// the merged, non-streaming answer) and stream.c (NDJSON / SSE lines from runner events).
#pragma once
#include "server/server_int.h"

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
};

// Frees the job: cancels and releases the task if still running, releases the lease.
void gen_job_free(struct gen_job *j);
// Queues a chunked response fed from runner events; takes ownership of j.
enum MHD_Result stream_respond(struct gen_job *j);
// Waits for the whole answer (cancelling if the client leaves) and queues one JSON object;
// takes ownership of j.
enum MHD_Result merged_respond(struct gen_job *j);
