// runner/runner.c: the runner thread. Each step it admits queued tasks into idle slots (reusing
// the longest cached prompt prefix, forking it from another slot with copy-prefix when that
// slot holds more), packs decode tokens and prompt chunks of every busy slot into one ubatch
// (round-robin, at most n_batch tokens; logits only for each slot's last token), decodes,
// samples, and posts text to each task's channel. A full slot context shifts (keep num_keep,
// drop half the rest). The hot loop reuses the batch arrays and per-slot buffers; nothing is
// allocated per step once the buffers have grown. docs/internals/runner.md has the life cycle.
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "runner/runner_int.h"

struct slot {
    llem_seq id;
    struct runner_task *task; // NULL: idle
    llem_token *toks;         // [n_ctx] the slot's context: [0, n_cache) are in the KV cache,
    int32_t n_toks, n_cache;  // [n_cache, n_toks) wait to be fed
    int32_t n_gen, limit;
    bool got_first;
    int32_t n_fed;            // tokens in the current batch
    int32_t out_row;          // logits row in the current batch, -1: none
    struct tok_stream ts;
    char *pend;               // decoded text held back (stop strings)
    size_t n_pend, cap_pend;
    uint64_t last_used;       // admission counter, for LRU
    int64_t t_start, t_first;
    struct runner_stats st;
};

struct runner {
    struct model *m;
    const struct tok_vocab *vocab;
    struct model_ctx *ctx;
    struct runner_params p;
    struct slot *slots;
    int32_t n_vocab;
    // batch arrays, sized n_batch once
    llem_token *b_tok;
    llem_pos *b_pos;
    llem_seq *b_seq;
    int8_t *b_out;
    struct runner_task **admit_task; // [n_parallel] tasks taken from the queue this step
    char *piece;
    size_t piece_cap;
    int32_t rr;
    uint64_t use_clock;
    pthread_mutex_t gv_mu;          // builds gv once
    struct grammar_vocab *gv;       // shared by the grammars of every task (runner_grammar_vocab)

    pthread_t thread;
    bool started;
    pthread_mutex_t mu; // queue, flags and status below
    pthread_cond_t cv;
    struct runner_task *q_head, *q_tail;
    int32_t n_queued, n_busy;
    bool stop, hold;
    struct runner_status st;
};

struct runner_params runner_params_default(void)
{
    struct model_ctx_params cp = model_ctx_default_params();
    return (struct runner_params){.n_ctx = 4096, .n_parallel = 4, .n_batch = 512,
                                  .max_queue = 512, .flash_attn = -1, .type_k = cp.type_k,
                                  .type_v = cp.type_v};
}

// ---- posting ---------------------------------------------------------------------------------

// Marks the slot idle and publishes the cache use, before the task hears its final event (so a
// reader that sees DONE/ERROR also sees the slot freed in runner_status).
static void slot_release(struct runner *r, struct slot *s, bool drop_cells)
{
    if (drop_cells) {
        model_ctx_seq_remove(r->ctx, s->id, 0, -1, NULL);
        s->n_cache = 0;
    }
    s->n_toks = s->n_cache; // pending tokens (the last sampled one) are not in the cache
    s->task = NULL;
    pthread_mutex_lock(&r->mu);
    r->n_busy--;
    r->st.kv_cells_used = model_ctx_kv(r->ctx)->cells.n_used;
    pthread_mutex_unlock(&r->mu);
}

// Ends the slot's task with an error; the slot's cells are freed (its content is unknown).
static void slot_fail(struct runner *r, struct slot *s, enum llem_err code, const char *msg)
{
    struct runner_task *t = s->task;
    slot_release(r, s, true);
    runner_task_post_error_(t, code, msg);
    runner_task_unref_(t);
}

// Sends held-back text: up to the stop-string hold-back, or all of it when final. Returns true
// when a stop string matched (the text from it on is dropped).
static bool slot_emit(struct slot *s, bool final, bool *oom)
{
    struct runner_task *t = s->task;
    if (s->n_pend == 0) {
        return false;
    }
    size_t emit = s->n_pend;
    bool stop = sampler_stop_scan((const char *const *)t->stops, t->n_stops, s->pend, s->n_pend,
                                  &emit);
    if (final && !stop) {
        emit = s->n_pend;
    }
    if (!runner_task_post_text_(t, s->pend, emit)) {
        *oom = true;
    }
    memmove(s->pend, s->pend + emit, s->n_pend - emit);
    s->n_pend -= emit;
    return stop;
}

static bool slot_append(struct slot *s, const char *txt, size_t n)
{
    if (n == 0) {
        return true;
    }
    if (s->n_pend + n > s->cap_pend) {
        size_t cap = LLEM_MAX(s->cap_pend * 2, s->n_pend + n + 64);
        char *p = llem_realloc(s->pend, cap);
        if (!p) {
            return false;
        }
        s->pend = p;
        s->cap_pend = cap;
    }
    memcpy(s->pend + s->n_pend, txt, n);
    s->n_pend += n;
    return true;
}

// Finishes the slot's task with DONE. The slot keeps its cached tokens for prefix reuse.
static void slot_done(struct runner *r, struct slot *s, const char *reason, bool stopped)
{
    struct runner_task *t = s->task;
    bool oom = false;
    if (!stopped) {
        size_t n = tok_stream_flush(&s->ts, r->piece, r->piece_cap);
        if (!slot_append(s, r->piece, n)) {
            oom = true;
        }
        if (slot_emit(s, true, &oom)) {
            reason = "stop";
        }
    }
    if (oom) {
        slot_fail(r, s, LLEM_ENOMEM, "out of memory for generated text");
        return;
    }
    int64_t now = time_now_ns();
    struct runner_event ev = {.kind = RUNNER_EV_DONE, .done_reason = reason};
    s->st.eval_count = s->n_gen;
    if (!s->got_first) {
        s->st.prompt_eval_ns = now - s->t_start;
    }
    s->st.eval_ns = s->got_first ? now - s->t_first : 0;
    ev.stats = s->st;
    if (t->want_context) {
        size_t n = (size_t)t->n_prompt + (size_t)t->n_gen;
        ev.context = llem_malloc(LLEM_MAX(n, 1) * sizeof *ev.context);
        if (!ev.context) {
            slot_fail(r, s, LLEM_ENOMEM, "out of memory for the context tokens");
            return;
        }
        memcpy(ev.context, t->prompt, (size_t)t->n_prompt * sizeof *ev.context);
        memcpy(ev.context + t->n_prompt, t->gen, (size_t)t->n_gen * sizeof *ev.context);
        ev.n_context = (int32_t)n;
    }
    slot_release(r, s, false);
    runner_task_post_final_(t, &ev);
    runner_task_unref_(t);
}

// ---- admission and prefix reuse --------------------------------------------------------------

static int32_t common_prefix(const llem_token *a, int32_t na, const llem_token *b, int32_t nb)
{
    int32_t n = LLEM_MIN(na, nb), i = 0;
    while (i < n && a[i] == b[i]) {
        i++;
    }
    return i;
}

// Puts task t into an idle slot. The slot is chosen for the longest cached prefix: an idle slot
// whose whole content is a prefix of the prompt is used as is; otherwise the least recently
// used idle slot is taken and the best prefix found in any slot (busy ones included) is shared
// into it by reference (copy-prefix), or the chosen slot's own tail is removed.
static void slot_start(struct runner *r, struct runner_task *t)
{
    const int32_t n_slots = r->p.n_parallel;
    struct slot *best = NULL, *target = NULL;
    int32_t best_len = 0;
    for (int32_t i = 0; i < n_slots; i++) {
        struct slot *s = &r->slots[i];
        int32_t l = common_prefix(s->toks, s->n_cache, t->prompt, t->n_prompt);
        if (l > best_len || (l == best_len && best && l > 0 && !s->task && best->task)) {
            best = s;
            best_len = l;
        }
        if (!s->task && l == s->n_cache && l > 0 && (!target || l > target->n_cache)) {
            target = s; // reusing it whole loses nothing
        }
    }
    if (target && (!best || common_prefix(target->toks, target->n_cache, t->prompt,
                                          t->n_prompt) == best_len)) {
        best = target;
    } else {
        target = NULL;
        for (int32_t i = 0; i < n_slots; i++) {
            struct slot *s = &r->slots[i];
            if (s->task) {
                continue;
            }
            // empty slots first, then least recently used
            if (!target || (s->n_cache == 0) > (target->n_cache == 0) ||
                ((s->n_cache == 0) == (target->n_cache == 0) && s->last_used < target->last_used)) {
                target = s;
            }
        }
    }
    LLEM_ASSERT(target != NULL); // admission only takes as many tasks as there are idle slots
    // At least the last prompt token is computed: its logits start the generation.
    int32_t len = LLEM_MIN(best_len, t->n_prompt - 1);
    struct kv_cache *kv = model_ctx_kv(r->ctx);
    if (len > 0 && best && !kv_cells_can_resume(&kv->cells, best->id, len)) {
        len = 0; // a sliding window no longer covers the prefix
    }
    if (len > 0 && best != target) {
        model_ctx_seq_copy_prefix(r->ctx, best->id, target->id, len);
        pthread_mutex_lock(&r->mu);
        r->st.prefix_forks++;
        pthread_mutex_unlock(&r->mu);
    } else if (len < target->n_cache &&
               model_ctx_seq_remove(r->ctx, target->id, len, -1, NULL) != LLEM_OK) {
        model_ctx_seq_remove(r->ctx, target->id, 0, -1, NULL);
        len = 0;
    }
    if (len == 0 && target->n_cache > 0) {
        model_ctx_seq_remove(r->ctx, target->id, 0, -1, NULL);
    }
    struct slot *s = target;
    memcpy(s->toks, t->prompt, (size_t)t->n_prompt * sizeof *s->toks);
    s->n_toks = t->n_prompt;
    s->n_cache = len;
    s->task = t;
    s->n_gen = 0;
    s->limit = t->num_predict > 0 ? t->num_predict : 10 * r->p.n_ctx;
    s->got_first = false;
    s->n_fed = 0;
    s->out_row = -1;
    tok_stream_init(&s->ts, r->vocab, t->render_special);
    s->ts.strip_space = false; // a completion continues the prompt: keep its leading space
    s->n_pend = 0;
    s->last_used = ++r->use_clock;
    s->t_start = time_now_ns();
    memset(&s->st, 0, sizeof s->st);
    s->st.queue_ns = s->t_start - t->t_submit;
    s->st.prompt_cached = len;
    s->st.prompt_eval_count = t->n_prompt - len;
}

// Runs an embedding task to the end on an idle slot's sequence, within this step (an embedding
// is one prompt pass: nothing to interleave with other slots afterwards). The slot's cached
// prefix is dropped (model_ctx_embed clears and frees the sequence); the slot is idle again
// before DONE is posted.
static void slot_embed(struct runner *r, struct runner_task *t)
{
    struct slot *s = NULL;
    for (int32_t i = 0; i < r->p.n_parallel; i++) {
        struct slot *c = &r->slots[i];
        if (!c->task && (!s || (c->n_cache == 0) > (s->n_cache == 0) ||
                         ((c->n_cache == 0) == (s->n_cache == 0) && c->last_used < s->last_used))) {
            s = c; // empty slots first, then least recently used: keeps useful prefixes
        }
    }
    LLEM_ASSERT(s != NULL); // admission only takes as many tasks as there are idle slots
    s->task = t;
    s->n_cache = s->n_toks = 0;
    s->n_fed = 0;
    s->out_row = -1;
    if (atomic_load(&t->cancel)) {
        slot_fail(r, s, LLEM_ECANCELED, "canceled");
        return;
    }
    const int32_t n_embd = r->m->hp.n_embd;
    int64_t t0 = time_now_ns();
    struct runner_event ev = {.kind = RUNNER_EV_DONE, .done_reason = "stop", .n_embd = n_embd};
    ev.embedding = llem_malloc((size_t)n_embd * sizeof *ev.embedding);
    if (!ev.embedding) {
        slot_fail(r, s, LLEM_ENOMEM, "out of memory for an embedding");
        return;
    }
    struct llem_errbuf eb = {0};
    enum llem_err rc = model_ctx_embed(r->ctx, s->id, t->prompt, t->n_prompt, ev.embedding, &eb);
    if (rc != LLEM_OK) {
        llem_free(ev.embedding);
        slot_fail(r, s, rc, eb.msg);
        return;
    }
    int64_t now = time_now_ns();
    ev.stats.queue_ns = t0 - t->t_submit;
    ev.stats.prompt_eval_count = t->n_prompt;
    ev.stats.prompt_eval_ns = now - t0;
    pthread_mutex_lock(&r->mu);
    r->st.steps += (uint64_t)((t->n_prompt + r->p.n_batch - 1) / r->p.n_batch);
    r->st.peak_step_seqs = LLEM_MAX(r->st.peak_step_seqs, 1);
    r->st.tokens_in += (uint64_t)t->n_prompt;
    pthread_mutex_unlock(&r->mu);
    slot_release(r, s, false); // the cells are already gone
    runner_task_post_final_(t, &ev);
    runner_task_unref_(t);
}

// ---- context shift ----------------------------------------------------------------------------

// Makes room for one more token in a full slot: keeps num_keep tokens, drops half the rest.
// The cache shifts positions in place (RoPE re-applied); when it cannot (cells shared with
// another slot after a fork), the slot is cleared and the kept tokens are computed again.
static void slot_shift(struct runner *r, struct slot *s)
{
    int32_t keep = LLEM_MAX(0, LLEM_MIN(s->task->num_keep, s->n_toks - 1));
    int32_t discard = (s->n_toks - keep) / 2;
    if (discard <= 0) {
        discard = 1;
    }
    bool reprocess = false;
    if (r->p.shift_recompute || s->n_cache < s->n_toks ||
        model_ctx_seq_remove(r->ctx, s->id, keep, keep + discard, NULL) != LLEM_OK) {
        model_ctx_seq_remove(r->ctx, s->id, 0, -1, NULL);
        reprocess = true;
    }
    memmove(s->toks + keep, s->toks + keep + discard,
            (size_t)(s->n_toks - keep - discard) * sizeof *s->toks);
    s->n_toks -= discard;
    s->n_cache = reprocess ? 0 : s->n_cache - discard;
    pthread_mutex_lock(&r->mu);
    r->st.shifts++;
    r->st.shift_reprocess += reprocess;
    pthread_mutex_unlock(&r->mu);
}

// ---- sampling ----------------------------------------------------------------------------------

// Tokens of slack before finish mode: a token in normal mode may raise the bytes still needed
// (an opening bracket or quote needs its closing one), while every finish-mode token lowers it
// by at least one.
#define GRAMMAR_FINISH_MARGIN 8

// Samples the next token, through the task's grammar when it has one (accepted into it).
static enum llem_err task_sample(const struct runner *r, struct slot *s, const float *logits,
                                 llem_token *tok, struct llem_errbuf *eb)
{
    struct runner_task *t = s->task;
    if (!t->grammar) {
        return sampler_sample(t->smp, logits, tok, eb);
    }
    int32_t left = s->limit - s->n_gen;
    int32_t need = grammar_min_remaining(t->grammar);
    // Still waiting for the trigger (complete with bytes still needed only then): when the
    // budget gets short, the trigger is forced so the constrained part can follow.
    bool pending = grammar_is_complete(t->grammar) && need > 0;
    if (pending && t->i_trig < t->n_trig_toks &&
        (t->i_trig > 0 || left <= need + t->n_trig_toks + GRAMMAR_FINISH_MARGIN)) {
        *tok = t->trig_toks[t->i_trig++];
        return grammar_accept(t->grammar, *tok, eb);
    }
    grammar_set_finish(t->grammar, left <= need + GRAMMAR_FINISH_MARGIN);
    enum llem_err e = grammar_sample(t->grammar, t->smp, logits, tok, eb);
    if (e == LLEM_OK && pending && t->i_trig < t->n_trig_toks && tok_is_eog(r->vocab, *tok)) {
        // an end before the trigger would leave the constrained part out: close thinking instead
        *tok = t->trig_toks[t->i_trig++];
        e = grammar_accept(t->grammar, *tok, eb);
    }
    return e;
}

static void slot_sample(struct runner *r, struct slot *s, const float *logits)
{
    struct runner_task *t = s->task;
    struct llem_errbuf eb = {0};
    llem_token tok;
    if (!logits || task_sample(r, s, logits, &tok, &eb) != LLEM_OK) {
        slot_fail(r, s, logits ? eb.code : LLEM_EINTERNAL,
                  logits ? eb.msg : "no logits for a sequence");
        return;
    }
    if (!s->got_first) {
        s->got_first = true;
        s->t_first = time_now_ns();
        s->st.prompt_eval_ns = s->t_first - s->t_start;
    }
    if (tok_is_eog(r->vocab, tok)) {
        slot_done(r, s, "stop", false);
        return;
    }
    sampler_accept(t->smp, tok);
    s->n_gen++;
    if (t->want_context) {
        if (t->n_gen == t->cap_gen) {
            int32_t cap = LLEM_MAX(64, t->cap_gen * 2);
            llem_token *g = llem_realloc(t->gen, (size_t)cap * sizeof *g);
            if (!g) {
                slot_fail(r, s, LLEM_ENOMEM, "out of memory for generated tokens");
                return;
            }
            t->gen = g;
            t->cap_gen = cap;
        }
        t->gen[t->n_gen++] = tok;
    }
    size_t n = 0;
    bool oom = false;
    if (tok_stream_push(&s->ts, tok, r->piece, r->piece_cap, &n, &eb) != LLEM_OK ||
        !slot_append(s, r->piece, n)) {
        slot_fail(r, s, LLEM_ENOMEM, "cannot decode a generated token");
        return;
    }
    bool stop = slot_emit(s, false, &oom);
    if (oom) {
        slot_fail(r, s, LLEM_ENOMEM, "out of memory for generated text");
        return;
    }
    if (stop) {
        slot_done(r, s, "stop", true);
        return;
    }
    if (t->grammar && grammar_is_finished(t->grammar)) {
        slot_done(r, s, "stop", false); // only an end token could follow: spare the decode
        return;
    }
    if (s->n_gen >= s->limit) {
        slot_done(r, s, "length", false);
        return;
    }
    if (s->n_toks >= r->p.n_ctx) {
        slot_shift(r, s);
    }
    s->toks[s->n_toks++] = tok;
}

// ---- the step ------------------------------------------------------------------------------------

// Adds the slot's waiting tokens (up to what the batch has room for) to the batch.
static void batch_add(struct runner *r, struct slot *s, int32_t *n, int32_t *n_out)
{
    int32_t take = LLEM_MIN(s->n_toks - s->n_cache, r->p.n_batch - *n);
    for (int32_t j = 0; j < take; j++) {
        int32_t k = *n + j;
        int32_t at = s->n_cache + j;
        r->b_tok[k] = s->toks[at];
        r->b_pos[k] = at;
        r->b_seq[k] = s->id;
        r->b_out[k] = at == s->n_toks - 1;
    }
    s->n_fed = take;
    s->out_row = take > 0 && s->n_cache + take == s->n_toks ? (*n_out)++ : -1;
    *n += take;
}

// Builds and runs one decode step; false when no slot had work.
static bool runner_step(struct runner *r)
{
    const int32_t n_slots = r->p.n_parallel;
    int32_t n = 0, n_out = 0, n_seqs = 0;
    // Decode tokens first (one per generating slot, so generation never stalls behind a long
    // prompt), then prompt chunks; both passes round-robin from a rotating start.
    for (int pass = 0; pass < 2; pass++) {
        for (int32_t k = 0; k < n_slots && n < r->p.n_batch; k++) {
            struct slot *s = &r->slots[(r->rr + k) % n_slots];
            int32_t waiting = s->task ? s->n_toks - s->n_cache : 0;
            if (waiting <= 0 || (pass == 0) != (waiting == 1 && s->got_first) || s->n_fed) {
                continue;
            }
            batch_add(r, s, &n, &n_out);
            n_seqs++;
        }
    }
    r->rr = (r->rr + 1) % n_slots;
    if (n == 0) {
        return false;
    }
    struct ubatch ub = {.n_tokens = n, .tokens = r->b_tok, .pos = r->b_pos, .seq = r->b_seq,
                        .output = r->b_out};
    struct llem_errbuf eb = {0};
    enum llem_err rc = model_ctx_decode(r->ctx, &ub, &eb);
    uint64_t fed_prompt = 0;
    for (int32_t i = 0; i < n_slots; i++) {
        struct slot *s = &r->slots[i];
        if (!s->n_fed) {
            continue;
        }
        if (rc != LLEM_OK) {
            s->n_fed = 0;
            slot_fail(r, s, rc, eb.msg);
            continue;
        }
        if (!s->got_first) {
            fed_prompt += (uint64_t)s->n_fed;
        }
        s->n_cache += s->n_fed;
        s->n_fed = 0;
        if (s->out_row >= 0) {
            slot_sample(r, s, model_ctx_logits(r->ctx, s->out_row));
        }
    }
    pthread_mutex_lock(&r->mu);
    r->st.steps++;
    r->st.peak_step_seqs = LLEM_MAX(r->st.peak_step_seqs, n_seqs);
    r->st.tokens_in += fed_prompt;
    r->st.tokens_out += (uint64_t)n_out;
    r->st.kv_cells_used = model_ctx_kv(r->ctx)->cells.n_used;
    pthread_mutex_unlock(&r->mu);
    return true;
}

// Drops cancelled tasks: from the queue (under r->mu, returned in a list) and from slots.
static struct runner_task *take_cancelled_queued(struct runner *r)
{
    struct runner_task *out = NULL, **pp = &r->q_head;
    r->q_tail = NULL;
    while (*pp) {
        struct runner_task *t = *pp;
        if (atomic_load(&t->cancel)) {
            *pp = t->next;
            t->next = out;
            out = t;
            r->n_queued--;
        } else {
            r->q_tail = t;
            pp = &t->next;
        }
    }
    return out;
}

static void fail_list(struct runner_task *t, enum llem_err code, const char *msg)
{
    while (t) {
        struct runner_task *next = t->next;
        runner_task_post_error_(t, code, msg);
        runner_task_unref_(t);
        t = next;
    }
}

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    for (;;) {
        int32_t n_admit = 0;
        pthread_mutex_lock(&r->mu);
        struct runner_task *gone = take_cancelled_queued(r);
        while (!r->stop && !r->hold && r->q_head && r->n_busy < r->p.n_parallel) {
            struct runner_task *t = r->q_head;
            r->q_head = t->next;
            if (!r->q_head) {
                r->q_tail = NULL;
            }
            t->next = NULL;
            r->n_queued--;
            r->n_busy++;
            r->admit_task[n_admit++] = t;
        }
        bool idle = r->n_busy == 0;
        while (!r->stop && idle && !gone && (r->hold || !r->q_head)) {
            pthread_cond_wait(&r->cv, &r->mu);
            if (r->q_head && !r->hold) {
                break;
            }
        }
        bool stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        fail_list(gone, LLEM_ECANCELED, "canceled");
        if (stop) {
            for (int32_t i = 0; i < n_admit; i++) {
                runner_task_post_error_(r->admit_task[i], LLEM_ECANCELED, "the model is unloading");
                runner_task_unref_(r->admit_task[i]);
            }
            break;
        }
        for (int32_t i = 0; i < n_admit; i++) {
            if (r->admit_task[i]->embed) {
                slot_embed(r, r->admit_task[i]);
            } else {
                slot_start(r, r->admit_task[i]);
            }
        }
        for (int32_t i = 0; i < r->p.n_parallel; i++) {
            struct slot *s = &r->slots[i];
            if (s->task && atomic_load(&s->task->cancel)) {
                slot_fail(r, s, LLEM_ECANCELED, "canceled");
            }
        }
        runner_step(r);
    }
    // Shutting down: every task still here ends with ECANCELED.
    for (int32_t i = 0; i < r->p.n_parallel; i++) {
        if (r->slots[i].task) {
            slot_fail(r, &r->slots[i], LLEM_ECANCELED, "the model is unloading");
        }
    }
    pthread_mutex_lock(&r->mu);
    struct runner_task *rest = r->q_head;
    r->q_head = r->q_tail = NULL;
    r->n_queued = 0;
    pthread_mutex_unlock(&r->mu);
    fail_list(rest, LLEM_ECANCELED, "the model is unloading");
    return NULL;
}

// ---- API ---------------------------------------------------------------------------------------

static void runner_destroy(struct runner *r)
{
    if (r->slots) {
        for (int32_t i = 0; i < r->p.n_parallel; i++) {
            llem_free(r->slots[i].toks);
            llem_free(r->slots[i].pend);
        }
    }
    llem_free(r->slots);
    llem_free(r->b_tok);
    llem_free(r->b_pos);
    llem_free(r->b_seq);
    llem_free(r->b_out);
    llem_free(r->admit_task);
    llem_free(r->piece);
    grammar_vocab_free(r->gv);
    model_ctx_free(r->ctx);
    pthread_mutex_destroy(&r->gv_mu);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    llem_free(r);
}

enum llem_err runner_new(struct model *m, const struct tok_vocab *vocab,
                         const struct runner_params *p, struct runner **out,
                         struct llem_errbuf *eb)
{
    *out = NULL;
    if (p->n_ctx < 2 || p->n_parallel < 1 || p->n_parallel > KV_MAX_SEQ || p->n_batch < 1 ||
        p->max_queue < 0) {
        return llem_errf(eb, LLEM_EINVAL,
                         "runner: bad parameters (n_ctx %d, n_parallel %d (1..%d), n_batch %d, "
                         "max_queue %d)", p->n_ctx, p->n_parallel, KV_MAX_SEQ, p->n_batch,
                         p->max_queue);
    }
    if (tok_n_vocab(vocab) != m->hp.n_vocab) {
        return llem_errf(eb, LLEM_EFORMAT, "runner: tokenizer has %d tokens, the model %d",
                         tok_n_vocab(vocab), m->hp.n_vocab);
    }
    struct runner *r = llem_calloc(1, sizeof *r);
    if (!r) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->gv_mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->m = m;
    r->vocab = vocab;
    r->p = *p;
    r->n_vocab = m->hp.n_vocab;
    const int32_t nb = p->n_batch, ns = p->n_parallel;
    r->slots = llem_calloc((size_t)ns, sizeof *r->slots);
    r->b_tok = llem_malloc((size_t)nb * sizeof *r->b_tok);
    r->b_pos = llem_malloc((size_t)nb * sizeof *r->b_pos);
    r->b_seq = llem_malloc((size_t)nb * sizeof *r->b_seq);
    r->b_out = llem_malloc((size_t)nb);
    r->admit_task = llem_calloc((size_t)ns, sizeof *r->admit_task);
    r->piece_cap = tok_piece_max(vocab) + 8;
    r->piece = llem_malloc(r->piece_cap);
    bool ok = r->slots && r->b_tok && r->b_pos && r->b_seq && r->b_out && r->admit_task && r->piece;
    for (int32_t i = 0; ok && i < ns; i++) {
        r->slots[i].id = i;
        r->slots[i].toks = llem_malloc((size_t)p->n_ctx * sizeof *r->slots[i].toks);
        ok = r->slots[i].toks != NULL;
    }
    if (!ok) {
        runner_destroy(r);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory for %d slots of %d tokens", ns,
                         p->n_ctx);
    }
    struct model_ctx_params cp = model_ctx_default_params();
    cp.n_ctx = p->n_ctx;
    cp.n_batch = nb;
    cp.n_seq_max = ns;
    cp.type_k = p->type_k;
    cp.type_v = p->type_v;
    cp.flash_attn = p->flash_attn;
    enum llem_err rc = model_ctx_new(m, &cp, &r->ctx, eb);
    if (rc != LLEM_OK) {
        runner_destroy(r);
        return rc;
    }
    r->st.n_slots = ns;
    r->st.kv_cells_total = model_ctx_kv(r->ctx)->cells.n_cells;
    if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
        runner_destroy(r);
        return llem_errf(eb, LLEM_ENOMEM, "runner: cannot start the thread");
    }
    r->started = true;
    *out = r;
    return LLEM_OK;
}

void runner_free(struct runner *r)
{
    if (!r) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->started) {
        pthread_join(r->thread, NULL);
    }
    runner_destroy(r);
}

static enum llem_err task_fill(struct runner *r, struct runner_task *t,
                               const struct runner_task_params *tp, struct llem_errbuf *eb)
{
    if (!tp->prompt || tp->n_prompt < 1) {
        return llem_errf(eb, LLEM_EINVAL, "the prompt is empty");
    }
    if (tp->n_prompt > r->p.n_ctx) {
        return llem_errf(eb, LLEM_EINVAL, "the prompt has %d tokens, more than the context "
                         "of %d", tp->n_prompt, r->p.n_ctx);
    }
    if (tp->n_stops < 0 || (tp->n_stops > 0 && !tp->stops)) {
        return llem_errf(eb, LLEM_EINVAL, "bad stop list");
    }
    for (int32_t i = 0; i < tp->n_prompt; i++) {
        if (tp->prompt[i] < 0 || tp->prompt[i] >= r->n_vocab) {
            return llem_errf(eb, LLEM_EINVAL, "prompt token %d at %d is outside the vocabulary "
                             "of %d", tp->prompt[i], i, r->n_vocab);
        }
    }
    t->prompt = llem_malloc((size_t)tp->n_prompt * sizeof *t->prompt);
    t->stops = tp->n_stops ? llem_calloc((size_t)tp->n_stops, sizeof *t->stops) : NULL;
    if (!t->prompt || (tp->n_stops && !t->stops)) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    memcpy(t->prompt, tp->prompt, (size_t)tp->n_prompt * sizeof *t->prompt);
    t->n_prompt = tp->n_prompt;
    for (int32_t i = 0; i < tp->n_stops; i++) {
        if (!tp->stops[i] || !tp->stops[i][0]) {
            return llem_errf(eb, LLEM_EINVAL, "stop string %d is empty", i);
        }
        if (!(t->stops[t->n_stops] = llem_strdup(tp->stops[i]))) {
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        t->n_stops++;
    }
    t->num_predict = tp->num_predict;
    t->num_keep = tp->num_keep;
    t->want_context = tp->want_context;
    t->embed = tp->embed;
    if (t->embed) {
        return LLEM_OK; // no sampling
    }
    enum llem_err rc = sampler_new(&t->smp, &tp->sampling, r->n_vocab, r->p.n_ctx, eb);
    if (rc != LLEM_OK) {
        return rc;
    }
    t->render_special = tp->render_special;
    if (tp->n_trigger_tokens > 0 && tp->trigger_tokens && t->grammar) {
        t->trig_toks = llem_malloc((size_t)tp->n_trigger_tokens * sizeof *t->trig_toks);
        if (!t->trig_toks) {
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        for (int32_t i = 0; i < tp->n_trigger_tokens; i++) {
            if (tp->trigger_tokens[i] < 0 || tp->trigger_tokens[i] >= r->n_vocab) {
                return llem_errf(eb, LLEM_EINVAL, "trigger token outside the vocabulary");
            }
            t->trig_toks[i] = tp->trigger_tokens[i];
        }
        t->n_trig_toks = tp->n_trigger_tokens;
    }
    if (!t->grammar && tp->filter) {
        sampler_set_filter(t->smp, tp->filter, tp->filter_user);
    }
    for (int32_t i = 0; i < t->n_prompt; i++) {
        sampler_accept(t->smp, t->prompt[i]);
    }
    return LLEM_OK;
}

enum llem_err runner_submit(struct runner *r, const struct runner_task_params *tp,
                            struct runner_task **out, struct llem_errbuf *eb)
{
    *out = NULL;
    struct runner_task *t = llem_calloc(1, sizeof *t);
    if (!t) {
        grammar_free(tp->grammar);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    atomic_init(&t->refs, 2);
    atomic_init(&t->cancel, false);
    t->grammar = tp->grammar; // owned from here on, whatever happens
    enum llem_err rc = task_fill(r, t, tp, eb);
    if (rc != LLEM_OK) {
        runner_task_free_(t);
        return rc;
    }
    t->t_submit = time_now_ns();
    pthread_mutex_lock(&r->mu);
    int32_t room = r->p.max_queue + (r->p.n_parallel - r->n_busy);
    if (r->stop || r->n_queued >= room) {
        bool stopping = r->stop;
        pthread_mutex_unlock(&r->mu);
        runner_task_free_(t);
        return stopping ? llem_errf(eb, LLEM_ECANCELED, "the model is unloading")
                        : llem_errf(eb, LLEM_EBUSY, "server busy: %d requests already queued",
                                    r->p.max_queue);
    }
    if (r->q_tail) {
        r->q_tail->next = t;
    } else {
        r->q_head = t;
    }
    r->q_tail = t;
    r->n_queued++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    *out = t;
    return LLEM_OK;
}

void runner_status(struct runner *r, struct runner_status *st)
{
    pthread_mutex_lock(&r->mu);
    *st = r->st;
    st->n_busy = r->n_busy;
    st->n_queued = r->n_queued;
    pthread_mutex_unlock(&r->mu);
}

int32_t runner_n_ctx(const struct runner *r)
{
    return r->p.n_ctx;
}

void runner_hold(struct runner *r, bool hold)
{
    pthread_mutex_lock(&r->mu);
    r->hold = hold;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static size_t gv_piece(void *user, int32_t id, char *buf, size_t cap, bool *eog)
{
    const struct tok_vocab *v = user;
    *eog = tok_is_eog(v, id);
    return tok_piece(v, id, false, buf, cap);
}

enum llem_err runner_grammar_vocab(struct runner *r, const struct grammar_vocab **out,
                                   struct llem_errbuf *eb)
{
    enum llem_err e = LLEM_OK;
    pthread_mutex_lock(&r->gv_mu);
    if (!r->gv) {
        e = grammar_vocab_new(&r->gv, r->n_vocab, gv_piece, (void *)r->vocab, eb);
    }
    *out = r->gv;
    pthread_mutex_unlock(&r->gv_mu);
    return e;
}
