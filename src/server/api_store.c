// server/api_store.c: the model-store routes of Ollama's API on top of store/store.h:
// POST /api/copy, DELETE /api/delete, HEAD/POST /api/blobs/:digest (the body streams into a
// verified blob writer), and POST /api/create, /api/pull, /api/push, which run on a
// background thread and stream {"status","digest","total","completed"} lines (or answer one
// object with "stream": false). Every name and digest is validated by store/ before anything
// touches the disk; a JSON body with an escaped NUL is refused outright.
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "model/model.h"
#include "server/server_int.h"
#include "store/store.h"
#include "tensor/quantize_file.h"

void api_store_open(struct srv *s)
{
    char ollama[1024];
    struct store_opts o = {0};
    if (store_ollama_root(ollama, sizeof ollama)) {
        o.ro_root = ollama;
    }
    struct llem_errbuf eb = {0};
    if (store_open(&s->store, &o, &eb) != LLEM_OK) {
        log_warn("serve: model store unavailable (%s); only --model names and GGUF paths "
                 "can be served", eb.msg);
        s->store = NULL;
        return;
    }
    log_info("serve: model store %s%s%s", store_root(s->store), o.ro_root ? ", read-only: " : "",
             o.ro_root ? o.ro_root : "");
}

static enum MHD_Result no_store(struct http_req *r)
{
    return http_reply_error(r, 500, "the model store is not available (see the server log)");
}

// True when the JSON text has a \u0000 escape: cJSON would cut the string there, so a name
// such as "a\u0000/../../b" would silently become "a".
bool api_body_has_nul(const struct http_req *r)
{
    const char *t = strbuf_cstr(&r->body);
    size_t n = r->body.len;
    for (size_t i = 0; i + 1 < n; i++) {
        if (t[i] != '\\') {
            continue;
        }
        if (i + 5 < n && t[i + 1] == 'u' && !memcmp(t + i + 2, "0000", 4)) {
            return true;
        }
        i++; // the escaped character (so "\\u0000" is a backslash and text)
    }
    return false;
}

static cJSON *parse(struct http_req *r, enum MHD_Result *res)
{
    if (api_body_has_nul(r)) {
        *res = http_reply_error(r, 400, "invalid request: NUL characters are not allowed");
        return NULL;
    }
    return json_parse_body(r, res);
}

// A required name field (key, else the deprecated alt), validated as a store name.
static enum llem_err get_name(const cJSON *j, const char *key, const char *alt, const char **out,
                              struct llem_errbuf *eb)
{
    *out = NULL;
    enum llem_err e = json_get_str(j, key, out, eb);
    if (e == LLEM_OK && !*out && alt) {
        e = json_get_str(j, alt, out, eb);
    }
    if (e == LLEM_OK && (!*out || !**out)) {
        e = llem_errf(eb, LLEM_EINVAL, "%s is required", key);
    }
    struct store_name n;
    if (e == LLEM_OK) {
        e = store_name_parse(*out, &n, eb);
    }
    return e;
}

static enum MHD_Result reply_store_err(struct http_req *r, enum llem_err e,
                                       const struct llem_errbuf *eb)
{
    int st = e == LLEM_EFORMAT ? 400 : srv_status_for(e);
    return http_reply_error(r, st, "%s", eb->msg[0] ? eb->msg : llem_err_str(e));
}

// ---- copy / delete ----------------------------------------------------------------------------

enum MHD_Result api_copy(struct srv *s, struct http_req *r)
{
    enum MHD_Result res;
    cJSON *j = parse(r, &res);
    if (!j) {
        return res;
    }
    struct llem_errbuf eb = {0};
    const char *src = NULL, *dst = NULL;
    enum llem_err e = get_name(j, "source", NULL, &src, &eb);
    if (e == LLEM_OK) {
        e = get_name(j, "destination", NULL, &dst, &eb);
    }
    if (e == LLEM_OK && !s->store) {
        cJSON_Delete(j);
        return no_store(r);
    }
    if (e == LLEM_OK) {
        e = store_copy(s->store, src, dst, &eb);
        if (e == LLEM_ENOTFOUND) {
            e = llem_errf(&eb, LLEM_ENOTFOUND, "model '%s' not found", src);
        }
    }
    res = e == LLEM_OK ? http_reply(r, 200, NULL, "", 0) : reply_store_err(r, e, &eb);
    cJSON_Delete(j);
    return res;
}

enum MHD_Result api_delete(struct srv *s, struct http_req *r)
{
    enum MHD_Result res;
    cJSON *j = parse(r, &res);
    if (!j) {
        return res;
    }
    struct llem_errbuf eb = {0};
    const char *name = NULL;
    enum llem_err e = get_name(j, "model", "name", &name, &eb);
    if (e == LLEM_OK && !s->store) {
        cJSON_Delete(j);
        return no_store(r);
    }
    if (e == LLEM_OK) {
        e = store_delete(s->store, name, &eb);
        if (e == LLEM_ENOTFOUND) {
            e = llem_errf(&eb, LLEM_ENOTFOUND, "model '%s' not found", name);
        }
    }
    if (e == LLEM_OK) { // the model's GGUF blob may be gone now: so is its prepared copy
        char prepared[PATH_MAX];
        if (model_default_prepared_dir(prepared, sizeof prepared)) {
            model_prepared_prune(prepared);
        }
    }
    res = e == LLEM_OK ? http_reply(r, 200, NULL, "", 0) : reply_store_err(r, e, &eb);
    cJSON_Delete(j);
    return res;
}

// ---- blobs ------------------------------------------------------------------------------------

bool api_blobs_begin(struct srv *s, struct http_req *r, enum MHD_Result *res)
{
    struct llem_errbuf eb = {0};
    char digest[STORE_DIGEST_BYTES];
    if (store_digest_normalize(r->tail, digest, &eb) != LLEM_OK) {
        *res = http_reply_error(r, 400, "invalid digest '%.80s': expected sha256:<64 hex>",
                                r->tail);
        return false;
    }
    if (!s->store) {
        *res = no_store(r);
        return false;
    }
    if (store_blob_has(s->store, digest)) {
        *res = http_reply(r, 200, NULL, "", 0); // already there: the body is not needed
        return false;
    }
    enum llem_err e = store_blob_writer_new(s->store, digest, &r->blob_w, &eb);
    if (e != LLEM_OK) {
        *res = srv_reply_err(r, &eb);
        return false;
    }
    r->blob_upload = true;
    return true;
}

void api_blobs_data(struct http_req *r, const char *data, size_t n)
{
    if (!r->blob_w) {
        return; // an earlier write failed: drain
    }
    struct llem_errbuf eb = {0};
    enum llem_err e = store_blob_writer_write(r->blob_w, data, n, &eb);
    if (e != LLEM_OK) {
        store_blob_writer_abort(r->blob_w);
        r->blob_w = NULL;
        r->blob_rc = e;
        snprintf(r->blob_msg, sizeof r->blob_msg, "%s", eb.msg);
    }
}

void api_blobs_end(struct http_req *r)
{
    if (r->blob_w) { // the client left mid-upload: nothing half-written stays
        store_blob_writer_abort(r->blob_w);
        r->blob_w = NULL;
    }
}

enum MHD_Result api_blobs(struct srv *s, struct http_req *r)
{
    struct llem_errbuf eb = {0};
    if (!r->blob_upload) { // HEAD (or GET): does it exist?
        char digest[STORE_DIGEST_BYTES];
        if (store_digest_normalize(r->tail, digest, &eb) != LLEM_OK) {
            return http_reply_error(r, 400, "invalid digest '%.80s': expected sha256:<64 hex>",
                                    r->tail);
        }
        if (!s->store) {
            return no_store(r);
        }
        if (store_blob_has(s->store, digest)) {
            return http_reply(r, 200, NULL, "", 0);
        }
        return http_reply_error(r, 404, "blob %s not found", digest);
    }
    if (r->blob_rc != LLEM_OK) {
        return http_reply_error(r, srv_status_for(r->blob_rc), "%s", r->blob_msg);
    }
    struct store_blob_writer *w = r->blob_w;
    r->blob_w = NULL;
    if (!w) {
        return http_reply_error(r, 500, "blob upload failed");
    }
    enum llem_err e = store_blob_writer_commit(w, &eb);
    if (e == LLEM_OK) {
        return http_reply(r, 201, NULL, "", 0);
    }
    return http_reply_error(r, e == LLEM_EFORMAT ? 400 : srv_status_for(e), "%s", eb.msg);
}

// ---- create / pull / push: a background job streaming progress lines -------------------------

enum job_op { JOB_CREATE, JOB_PULL, JOB_PUSH };

struct sjob {
    struct srv *s;
    enum job_op op;
    char *body;      // create: the request JSON (owned copy)
    size_t body_len;
    char name[1024]; // pull/push
    bool insecure;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct strbuf out;   // NDJSON lines not yet sent
    size_t out_pos;
    bool held;           // only "preamble" statuses so far: the HTTP status is not decided yet
    bool done;
    bool last_success;   // the last status line was "success"
    enum llem_err rc;
    struct llem_errbuf eb;
    char status[128];    // the last status (quantize progress repeats it)
    atomic_bool cancel;
    int refs;            // the thread and the HTTP side
};

static void job_unref(struct sjob *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) {
        return;
    }
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    strbuf_deinit(&j->out);
    llem_free(j->body);
    llem_free(j);
}

// Statuses sent before any real work: an error right after them still gets its own status
// code instead of a 200 stream ending in an error line.
static bool preamble(const char *st)
{
    return !strcmp(st, "parsing modelfile") || !strcmp(st, "pulling manifest") ||
           !strcmp(st, "retrieving manifest");
}

static bool on_progress(void *ctx, const struct store_progress *p)
{
    struct sjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    snprintf(j->status, sizeof j->status, "%s", p->status);
    strbuf_append_str(&j->out, "{");
    json_kv_str(&j->out, false, "status", p->status, strlen(p->status));
    if (p->digest) {
        json_kv_str(&j->out, true, "digest", p->digest, strlen(p->digest));
    }
    if (p->total) {
        strbuf_appendf(&j->out, ",\"total\":%llu,\"completed\":%llu",
                       (unsigned long long)p->total, (unsigned long long)p->completed);
    }
    strbuf_append_str(&j->out, "}\n");
    j->last_success = !strcmp(p->status, "success");
    if (!preamble(p->status)) {
        j->held = false;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return !atomic_load(&j->cancel) && !atomic_load(&j->s->stopping);
}

struct qctx {
    struct sjob *j;
    store_progress_fn fn;
    void *pctx;
};

static bool on_tensor(void *ctx, const struct tensor_qfile_progress *p)
{
    struct qctx *q = ctx;
    if (!q->fn) {
        return !atomic_load(&q->j->cancel);
    }
    char st[128];
    pthread_mutex_lock(&q->j->mu);
    snprintf(st, sizeof st, "%s", q->j->status);
    pthread_mutex_unlock(&q->j->mu);
    struct store_progress sp = {st, NULL, (uint64_t)p->n, (uint64_t)p->i + 1};
    return q->fn(q->pctx, &sp);
}

// store_quantize_fn over tensor_quantize_file (store/ cannot call tensor/: layering).
static enum llem_err quantize_cb(void *ctx, const char *src, const char *dst, const char *type,
                                 store_progress_fn progress, void *pctx,
                                 struct llem_errbuf *eb)
{
    struct qctx q = {ctx, progress, pctx};
    return tensor_quantize_file(src, dst, type, 0, on_tensor, &q, NULL, eb);
}

static void *job_main(void *arg)
{
    struct sjob *j = arg;
    struct llem_errbuf eb = {0};
    enum llem_err rc;
    if (j->op == JOB_CREATE) {
        struct store_create_opts o = {.quantize_fn = quantize_cb, .quantize_ctx = j,
                                      .progress = on_progress, .progress_ctx = j};
        rc = store_create_json(j->s->store, j->body, j->body_len, &o, &eb);
    } else {
        struct store_registry_opts o = {.insecure = j->insecure, .progress = on_progress,
                                        .progress_ctx = j};
        rc = j->op == JOB_PULL ? store_pull(j->s->store, j->name, &o, &eb)
                               : store_push(j->s->store, j->name, &o, &eb);
    }
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    j->eb = eb;
    if (rc != LLEM_OK) {
        const char *msg = eb.msg[0] ? eb.msg : llem_err_str(rc);
        strbuf_append_str(&j->out, "{");
        json_kv_str(&j->out, false, "error", msg, strlen(msg));
        strbuf_append_str(&j->out, "}\n");
        log_info("serve: %s failed: %s", j->op == JOB_CREATE ? "create" :
                 j->op == JOB_PULL ? "pull" : "push", msg);
    } else if (!j->last_success) {
        strbuf_append_str(&j->out, "{\"status\":\"success\"}\n");
    }
    j->done = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    atomic_fetch_sub(&j->s->store_jobs, 1);
    job_unref(j);
    return NULL;
}

// Waits up to 100 ms for the condition; the caller holds j->mu.
static void job_wait(struct sjob *j)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

struct job_resp {
    struct sjob *j;
    struct http_req *r; // valid while MHD serves the request
};

static ssize_t job_stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct job_resp *jr = cls;
    struct sjob *j = jr->j;
    pthread_mutex_lock(&j->mu);
    while (j->out_pos == j->out.len && !j->done) {
        if (http_client_gone(jr->r) || atomic_load(&j->s->stopping)) {
            atomic_store(&j->cancel, true);
            pthread_mutex_unlock(&j->mu);
            jr->r->status = 499;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        job_wait(j);
    }
    if (j->out_pos == j->out.len) {
        pthread_mutex_unlock(&j->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = LLEM_MIN(max, j->out.len - j->out_pos);
    memcpy(buf, j->out.data + j->out_pos, n);
    j->out_pos += n;
    pthread_mutex_unlock(&j->mu);
    return (ssize_t)n;
}

static void job_stream_free(void *cls)
{
    struct job_resp *jr = cls;
    atomic_store(&jr->j->cancel, true); // no-op once done; stops it when the client left
    job_unref(jr->j);
    llem_free(jr);
}

// Starts the job thread and answers: streamed lines (once past the preamble, so that early
// errors keep their status code), or one object when !stream.
static enum MHD_Result job_run(struct srv *s, struct http_req *r, struct sjob *j, bool stream)
{
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    strbuf_init(&j->out, 0);
    j->s = s;
    j->held = true;
    j->refs = 2;
    atomic_fetch_add(&s->store_jobs, 1);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, job_main, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&s->store_jobs, 1);
        j->refs = 1;
        job_unref(j);
        return http_reply_error(r, 500, "cannot start a thread");
    }
    pthread_mutex_lock(&j->mu);
    while (!j->done && (!stream || j->held)) {
        if (http_client_gone(r)) {
            atomic_store(&j->cancel, true);
        }
        job_wait(j);
    }
    bool done = j->done;
    enum llem_err jrc = j->rc;
    struct llem_errbuf eb = j->eb;
    pthread_mutex_unlock(&j->mu);
    if (done && jrc != LLEM_OK) {
        int st = jrc == LLEM_EFORMAT && j->op == JOB_CREATE ? 400 : srv_status_for(jrc);
        job_unref(j);
        return http_reply_error(r, st, "%s", eb.msg[0] ? eb.msg : llem_err_str(jrc));
    }
    if (!stream) {
        job_unref(j);
        static const char ok[] = "{\"status\":\"success\"}";
        return http_reply(r, 200, "application/json; charset=utf-8", ok, sizeof ok - 1);
    }
    struct job_resp *jr = llem_calloc(1, sizeof *jr);
    struct MHD_Response *resp = NULL;
    if (jr) {
        jr->j = j;
        jr->r = r;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, job_stream_cb, jr,
                                                 job_stream_free);
    }
    if (!resp) {
        atomic_store(&j->cancel, true);
        llem_free(jr);
        job_unref(j);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
    http_add_cors(r, resp);
    r->status = 200;
    enum MHD_Result res = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return res;
}

static struct sjob *job_new(enum job_op op)
{
    struct sjob *j = llem_calloc(1, sizeof *j);
    if (j) {
        j->op = op;
    }
    return j;
}

enum MHD_Result api_create(struct srv *s, struct http_req *r)
{
    enum MHD_Result res;
    cJSON *j = parse(r, &res);
    if (!j) {
        return res;
    }
    struct llem_errbuf eb = {0};
    const char *name = NULL, *mf = NULL, *quant = NULL;
    bool stream = true;
    enum llem_err e = get_name(j, "model", "name", &name, &eb);
    if (e == LLEM_OK) {
        e = json_get_bool(j, "stream", &stream, NULL, &eb);
    }
    if (e == LLEM_OK) {
        e = json_get_str(j, "modelfile", &mf, &eb);
    }
    if (e == LLEM_OK) {
        e = json_get_str(j, "quantize", &quant, &eb);
    }
    if (e == LLEM_OK && !quant) {
        e = json_get_str(j, "quantization", &quant, &eb); // deprecated spelling
        if (e == LLEM_OK && quant) {
            cJSON_AddStringToObject(j, "quantize", quant);
        }
    }
    if (e == LLEM_OK && mf && mf[0]) {
        // The older {"name", "modelfile"} form: a Modelfile error is a 400 naming its line.
        struct store_modelfile m = {0};
        char *params = NULL;
        e = store_modelfile_parse(mf, strlen(mf), &m, &eb);
        if (e == LLEM_OK) {
            e = store_modelfile_params_json(&m, &params, &eb);
        }
        llem_free(params);
        store_modelfile_deinit(&m);
        if (e != LLEM_OK) {
            e = LLEM_EINVAL;
        }
    }
    if (e != LLEM_OK) {
        cJSON_Delete(j);
        return http_reply_error(r, 400, "%s", eb.msg);
    }
    if (!s->store) {
        cJSON_Delete(j);
        return no_store(r);
    }
    struct sjob *jb = job_new(JOB_CREATE);
    char *body = jb ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (jb && body) {
        jb->body = llem_strdup(body);
        jb->body_len = jb->body ? strlen(jb->body) : 0;
    }
    cJSON_free(body);
    if (!jb || !jb->body) {
        if (jb) {
            llem_free(jb->body);
        }
        llem_free(jb);
        return http_reply_error(r, 500, "out of memory");
    }
    return job_run(s, r, jb, stream);
}

static enum MHD_Result registry_route(struct srv *s, struct http_req *r, enum job_op op)
{
    enum MHD_Result res;
    cJSON *j = parse(r, &res);
    if (!j) {
        return res;
    }
    struct llem_errbuf eb = {0};
    const char *name = NULL;
    bool stream = true, insecure = false;
    enum llem_err e = get_name(j, "model", "name", &name, &eb);
    if (e == LLEM_OK) {
        e = json_get_bool(j, "stream", &stream, NULL, &eb);
    }
    if (e == LLEM_OK) {
        e = json_get_bool(j, "insecure", &insecure, NULL, &eb);
    }
    if (e == LLEM_OK && strlen(name) >= sizeof(((struct sjob *)0)->name)) {
        e = llem_errf(&eb, LLEM_EINVAL, "model name too long");
    }
    if (e != LLEM_OK) {
        cJSON_Delete(j);
        return http_reply_error(r, 400, "%s", eb.msg);
    }
    if (!s->store) {
        cJSON_Delete(j);
        return no_store(r);
    }
    if (op == JOB_PUSH) {
        struct store_model *m = NULL;
        e = store_resolve(s->store, name, &m, &eb);
        store_model_free(m);
        if (e != LLEM_OK) {
            cJSON_Delete(j);
            if (e == LLEM_ENOTFOUND) {
                return http_reply_error(r, 404, "model '%s' not found", name);
            }
            return reply_store_err(r, e, &eb);
        }
    }
    struct sjob *jb = job_new(op);
    if (!jb) {
        cJSON_Delete(j);
        return http_reply_error(r, 500, "out of memory");
    }
    snprintf(jb->name, sizeof jb->name, "%s", name);
    jb->insecure = insecure;
    cJSON_Delete(j);
    return job_run(s, r, jb, stream);
}

enum MHD_Result api_pull(struct srv *s, struct http_req *r)
{
    return registry_route(s, r, JOB_PULL);
}

enum MHD_Result api_push(struct srv *s, struct http_req *r)
{
    return registry_route(s, r, JOB_PUSH);
}
