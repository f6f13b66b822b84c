// server/stream.c: runner events -> response bytes. Streaming answers are chunked responses
// whose reader callback blocks (thread per connection) on the task's event channel and writes
// one NDJSON line (/api/*) or one SSE event (/v1/*) per text piece, then the final object with
// Ollama's metrics (or OpenAI's finish chunk, usage chunk and [DONE]). Non-streaming answers
// merge every piece into one object. While waiting, the client socket is polled so that a
// client that disconnects cancels its task (its KV slot is freed at the runner's next step).
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/timeutil.h"
#include "server/gen_int.h"

#define STREAM_POLL_MS 100

static bool is_sse(const struct gen_job *j)
{
    return j->stream && (j->api == GEN_OAI_CHAT || j->api == GEN_OAI_COMPLETION);
}

static void frame_begin(struct gen_job *j)
{
    if (is_sse(j)) {
        strbuf_append_str(&j->out, "data: ");
    }
}

static void frame_end(struct gen_job *j)
{
    strbuf_append_str(&j->out, is_sse(j) ? "\n\n" : "\n");
}

static void ollama_head(struct gen_job *j)
{
    char ts[64];
    json_time_rfc3339(json_now_unix_ns(), ts, sizeof ts);
    strbuf_append_str(&j->out, "{");
    json_kv_str(&j->out, false, "model", j->model, strlen(j->model));
    json_kv_str(&j->out, true, "created_at", ts, strlen(ts));
}

// What one object carries: content, thinking and the tool calls [from, to) of the parser.
struct out_part {
    const char *txt;
    size_t n;
    const char *th;
    size_t tn;
    int32_t from, to;
};

// ,"tool_calls":[...] in the API's shape (Ollama: object arguments; OpenAI: string arguments
// and ids, "index" in streamed deltas).
static void fmt_calls(struct gen_job *j, const struct out_part *p)
{
    if (p->to <= p->from || !j->parse.tc) {
        return;
    }
    strbuf_append_str(&j->out, ",\"tool_calls\":[");
    for (int32_t i = p->from; i < p->to; i++) {
        const struct tc_call *c = tc_parser_call(j->parse.tc, i);
        if (i > p->from) {
            strbuf_append_char(&j->out, ',');
        }
        if (j->api == GEN_CHAT) {
            tc_call_append_ollama(c, false, &j->out);
        } else {
            tc_call_append_openai(c, j->stream, &j->out);
        }
    }
    strbuf_append_str(&j->out, "]");
}

static void ollama_text(struct gen_job *j, const struct out_part *p)
{
    if (j->api == GEN_CHAT) {
        strbuf_append_str(&j->out, ",\"message\":{\"role\":\"assistant\"");
        json_kv_str(&j->out, true, "content", p->txt, p->n);
        if (p->tn > 0) {
            json_kv_str(&j->out, true, "thinking", p->th, p->tn);
        }
        fmt_calls(j, p);
        strbuf_append_str(&j->out, "}");
    } else {
        json_kv_str(&j->out, true, "response", p->txt, p->n);
        if (p->tn > 0) {
            json_kv_str(&j->out, true, "thinking", p->th, p->tn);
        }
    }
}

static void oai_head(struct gen_job *j, bool chunk)
{
    const char *obj = j->api == GEN_OAI_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                             : "text_completion";
    strbuf_appendf(&j->out, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld", j->id, obj,
                   (long long)j->created);
    json_kv_str(&j->out, true, "model", j->model, strlen(j->model));
    strbuf_append_str(&j->out, ",\"system_fingerprint\":\"fp_ollama\"");
}

// One choice; finish NULL means null.
static void oai_choice(struct gen_job *j, bool chunk, const struct out_part *p,
                       const char *finish)
{
    strbuf_append_str(&j->out, ",\"choices\":[{\"index\":0");
    if (j->api == GEN_OAI_CHAT) {
        strbuf_appendf(&j->out, ",\"%s\":{\"role\":\"assistant\"", chunk ? "delta" : "message");
        json_kv_str(&j->out, true, "content", p->txt, p->n);
        if (p->tn > 0) {
            json_kv_str(&j->out, true, "reasoning_content", p->th, p->tn);
        }
        fmt_calls(j, p);
        strbuf_append_str(&j->out, "}");
    } else {
        json_kv_str(&j->out, true, "text", p->txt, p->n);
        strbuf_append_str(&j->out, ",\"logprobs\":null");
    }
    if (finish) {
        strbuf_appendf(&j->out, ",\"finish_reason\":\"%s\"}]", finish);
    } else {
        strbuf_append_str(&j->out, ",\"finish_reason\":null}]");
    }
}

static void oai_usage(struct gen_job *j, const struct runner_stats *st)
{
    strbuf_appendf(&j->out,
                   ",\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                   "\"total_tokens\":%d}",
                   j->n_prompt, st->eval_count, j->n_prompt + st->eval_count);
}

static void fmt_piece(struct gen_job *j, const struct out_part *p)
{
    if (p->n == 0 && p->tn == 0 && p->to <= p->from) {
        return; // everything held back by the parsers
    }
    frame_begin(j);
    if (j->api == GEN_GENERATE || j->api == GEN_CHAT) {
        ollama_head(j);
        ollama_text(j, p);
        strbuf_append_str(&j->out, ",\"done\":false}");
    } else {
        oai_head(j, true);
        oai_choice(j, true, p, NULL);
        strbuf_append_str(&j->out, "}");
    }
    frame_end(j);
}

// The final object: streamed (p empty) or merged (p holds everything).
static void fmt_final(struct gen_job *j, const struct runner_event *ev, const struct out_part *p)
{
    const char *reason = ev->done_reason ? ev->done_reason : "stop";
    const struct runner_stats *st = &ev->stats;
    if (j->api == GEN_GENERATE || j->api == GEN_CHAT) {
        frame_begin(j);
        ollama_head(j);
        ollama_text(j, p);
        strbuf_appendf(&j->out, ",\"done\":true,\"done_reason\":\"%s\"", reason);
        if (j->api == GEN_GENERATE && ev->context && ev->n_context > 0) {
            strbuf_append_str(&j->out, ",\"context\":[");
            for (int32_t i = 0; i < ev->n_context; i++) {
                strbuf_appendf(&j->out, "%s%d", i ? "," : "", ev->context[i]);
            }
            strbuf_append_str(&j->out, "]");
        }
        int64_t total = time_now_ns() - j->t_start_ns;
        strbuf_appendf(&j->out,
                       ",\"total_duration\":%lld,\"load_duration\":%lld,"
                       "\"prompt_eval_count\":%d,\"prompt_eval_duration\":%lld,"
                       "\"eval_count\":%d,\"eval_duration\":%lld}",
                       (long long)total, (long long)j->lease.load_ns, j->n_prompt,
                       (long long)st->prompt_eval_ns, st->eval_count, (long long)st->eval_ns);
        frame_end(j);
        return;
    }
    if (gen_parse_n_calls(&j->parse) > 0 && !strcmp(reason, "stop")) {
        reason = "tool_calls";
    }
    frame_begin(j);
    oai_head(j, j->stream);
    oai_choice(j, j->stream, p, reason);
    if (!j->stream) {
        oai_usage(j, st);
    }
    strbuf_append_str(&j->out, "}");
    frame_end(j);
    if (j->stream && j->include_usage) {
        frame_begin(j);
        oai_head(j, true);
        strbuf_append_str(&j->out, ",\"choices\":[]");
        oai_usage(j, st);
        strbuf_append_str(&j->out, "}");
        frame_end(j);
    }
    if (j->stream) {
        strbuf_append_str(&j->out, "data: [DONE]\n\n");
    }
}

static void fmt_error(struct gen_job *j, const char *msg)
{
    frame_begin(j);
    srv_error_json(&j->out, is_sse(j), 500, msg);
    frame_end(j);
}

// Next event, polling the client and the server's shutdown flag. False when the client left
// (the task is then cancelled). A shutdown turns into an ERROR event.
static bool job_next(struct gen_job *j, struct runner_event *ev)
{
    for (;;) {
        // Checked before every event, not only when idle: a fast stream never times out.
        bool stopping = atomic_load(&j->s->stopping);
        if (!stopping && runner_task_next(j->task, ev, STREAM_POLL_MS)) {
            return true;
        }
        if (stopping) {
            runner_task_cancel(j->task);
            memset(ev, 0, sizeof *ev);
            ev->kind = RUNNER_EV_ERROR;
            llem_errf(&ev->error, LLEM_ECANCELED, "server is shutting down");
            return true;
        }
        if (http_client_gone(j->r)) {
            log_debug("serve: client left; cancelling its generation");
            runner_task_cancel(j->task);
            j->client_gone = true;
            return false;
        }
    }
}

// Bookkeeping shared by both modes for a PIECE or DONE event.
static void account(struct gen_job *j, const struct runner_event *ev)
{
    int64_t now = time_now_ns();
    if (ev->kind == RUNNER_EV_PIECE) {
        if (!j->t_first_ns) {
            j->t_first_ns = now;
            metrics_timer_record(j->s->m_ttft, (uint64_t)(now - j->t_start_ns));
        } else {
            metrics_timer_record(j->s->m_token, (uint64_t)(now - j->t_last_ns));
        }
        j->t_last_ns = now;
    } else if (ev->kind == RUNNER_EV_DONE) {
        metrics_counter_add(j->s->m_tokens_out, (uint64_t)ev->stats.eval_count);
    }
}

// Runs a PIECE's text (or the end, done) through the output parsers. The part then holds what
// was decided (pointing into j->parse) and the calls not yet sent. Without parsers the text
// passes as is.
static enum llem_err parse_event(struct gen_job *j, const char *txt, size_t n, bool done,
                                 struct out_part *p, struct llem_errbuf *eb)
{
    memset(p, 0, sizeof *p);
    if (!j->parse.active) {
        p->txt = txt;
        p->n = n;
        return LLEM_OK;
    }
    enum llem_err e = gen_parse_add(&j->parse, txt, n, done, eb);
    if (e != LLEM_OK) {
        return e;
    }
    p->txt = j->parse.content.data ? j->parse.content.data : "";
    p->n = j->parse.content.len;
    p->th = j->parse.thinking.data ? j->parse.thinking.data : "";
    p->tn = j->parse.thinking.len;
    p->from = j->parse.n_calls_sent;
    p->to = gen_parse_n_calls(&j->parse);
    j->parse.n_calls_sent = p->to;
    return LLEM_OK;
}

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct gen_job *j = cls;
    (void)pos;
    while (j->out_pos >= j->out.len) {
        strbuf_reset(&j->out);
        j->out_pos = 0;
        if (j->finished) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        struct runner_event ev;
        if (!job_next(j, &ev)) {
            j->finished = true;
            j->r->status = 499; // counted as Ollama's "client closed request"
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        account(j, &ev);
        struct out_part part;
        struct llem_errbuf eb = {0};
        if (ev.kind != RUNNER_EV_ERROR &&
            parse_event(j, ev.text ? ev.text : "", ev.len, ev.kind == RUNNER_EV_DONE, &part,
                        &eb) != LLEM_OK) {
            runner_task_cancel(j->task);
            runner_event_clear(&ev);
            ev.kind = RUNNER_EV_ERROR;
            ev.error = eb;
        }
        if (ev.kind == RUNNER_EV_PIECE) {
            fmt_piece(j, &part);
        } else if (ev.kind == RUNNER_EV_DONE) {
            fmt_piece(j, &part); // what the parsers held until the end
            struct out_part none = {.txt = "", .th = ""};
            fmt_final(j, &ev, &none);
            j->finished = true;
        } else {
            fmt_error(j, ev.error.msg[0] ? ev.error.msg : llem_err_str(ev.error.code));
            j->finished = true;
        }
        runner_event_clear(&ev);
    }
    size_t n = LLEM_MIN(max, j->out.len - j->out_pos);
    memcpy(buf, j->out.data + j->out_pos, n);
    j->out_pos += n;
    return (ssize_t)n;
}

static void stream_free_cb(void *cls)
{
    gen_job_free(cls);
}

enum MHD_Result stream_respond(struct gen_job *j)
{
    struct http_req *r = j->r;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_cb, j,
                                          stream_free_cb);
    if (!resp) {
        gen_job_free(j);
        return MHD_NO;
    }
    if (is_sse(j)) {
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    } else {
        MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
    }
    http_add_cors(r, resp);
    r->status = 200;
    enum MHD_Result res = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return res;
}

enum MHD_Result merged_respond(struct gen_job *j)
{
    struct http_req *r = j->r;
    for (;;) {
        struct runner_event ev;
        if (!job_next(j, &ev)) {
            r->status = 499;
            gen_job_free(j);
            return MHD_NO; // closes the connection; nobody is listening
        }
        account(j, &ev);
        if (ev.kind != RUNNER_EV_ERROR) {
            struct out_part part;
            struct llem_errbuf eb = {0};
            enum llem_err e = parse_event(j, ev.text ? ev.text : "", ev.len,
                                          ev.kind == RUNNER_EV_DONE, &part, &eb);
            if (e == LLEM_OK) {
                e = strbuf_append(&j->text, part.txt, part.n);
            }
            if (e == LLEM_OK && part.tn) {
                e = strbuf_append(&j->thinking, part.th, part.tn);
            }
            if (e != LLEM_OK) {
                runner_event_clear(&ev);
                gen_job_free(j);
                return http_reply_error(r, 500, "%s", eb.msg[0] ? eb.msg : "out of memory "
                                        "merging the answer");
            }
        }
        if (ev.kind == RUNNER_EV_PIECE) {
            runner_event_clear(&ev);
            continue;
        }
        enum MHD_Result res;
        if (ev.kind == RUNNER_EV_DONE) {
            struct out_part all = {.txt = strbuf_cstr(&j->text), .n = j->text.len,
                                   .th = strbuf_cstr(&j->thinking), .tn = j->thinking.len,
                                   .from = 0, .to = gen_parse_n_calls(&j->parse)};
            fmt_final(j, &ev, &all);
            res = http_reply_json(r, 200, &j->out);
        } else {
            res = srv_reply_err(r, &ev.error);
        }
        runner_event_clear(&ev);
        gen_job_free(j);
        return res;
    }
}
