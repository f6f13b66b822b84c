// runner/runner.h: one thread per loaded model running continuous batching. Requests (already
// tokenized prompts with sampling options) are submitted from HTTP threads into a bounded
// queue; each step the runner packs prompt chunks and decode tokens of every active slot into
// one batch, decodes, samples, and pushes text pieces into each task's bounded event channel.
// Prompt prefixes are reused across requests (longest common prefix per slot; a shared prefix
// is forked with copy-prefix instead of recomputed). Stop strings are held back until they can
// no longer match; a full context shifts (keep num_keep, drop half the rest); a cancelled task
// (client gone) frees its slot and KV cells at the next step.
// Thread-safety: runner_submit and every runner_task_* function may be called from any thread;
// the model, its context and KV cache are touched only by the runner thread.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "sampler/grammar.h"
#include "sampler/sampler.h"
#include "tokenizer/tokenizer.h"

struct runner_params {
    int32_t n_ctx;       // context per slot (tokens)
    int32_t n_parallel;  // slots (1..64); the KV cache holds n_parallel x n_ctx cells
    int32_t n_batch;     // most tokens per decode step (prompt chunks + decode tokens)
    int32_t max_queue;   // pending tasks beyond the slots before runner_submit says EBUSY
    int flash_attn;      // -1 auto, 0 off, 1 on
    uint32_t type_k, type_v;
    bool shift_recompute; // context shift by clearing the slot and recomputing the kept tokens
                          // (the fallback for shared cells) instead of shifting the cache
};

// n_ctx 4096, n_parallel 4, n_batch 512, max_queue 512, flash_attn -1, K/V f16. Start from
// this: a zeroed struct would ask for f32 K/V (GGML type 0).
struct runner_params runner_params_default(void);

struct runner;      // opaque
struct runner_task; // one request in flight; shared by the submitter and the runner thread

struct runner_task_params {
    const llem_token *prompt; // copied
    int32_t n_prompt;
    struct sampler_params sampling;
    int32_t num_predict;      // -1: until end of generation (capped at 10 x n_ctx)
    int32_t num_keep;         // tokens kept at the start on a context shift
    const char *const *stops; // copied
    int32_t n_stops;
    bool want_context;        // report the final token list (Ollama's `context` field)
    sampler_filter_fn filter; // optional token filter, called on the runner thread (ignored
    void *filter_user;        // when grammar is set)
    // Optional grammar constraint, made with grammar_new over THIS runner's
    // runner_grammar_vocab() (another vocabulary is undefined behaviour). Ownership
    // passes to runner_submit in every case (freed on error too). Each token is sampled with
    // grammar_sample and accepted; finish mode is switched on near num_predict so a limited
    // output still completes; end of generation is allowed only once the grammar is complete,
    // and a finished grammar (nothing more possible) ends the task with "stop".
    struct grammar *grammar;
    // With a grammar that waits for a trigger (grammar_set_trigger, e.g. "</think>"): the
    // trigger's tokens, forced one by one once the budget left is only what the trigger and
    // the grammar still need, so a num_predict-limited output still ends with a complete
    // constrained part. Copied; may be NULL.
    const llem_token *trigger_tokens;
    int32_t n_trigger_tokens;
    // Render control tokens as their text in the pieces (EOG tokens never appear), for output
    // parsers that look for "<|python_tag|>", "<|channel|>", "[TOOL_CALLS]"; false: plain text.
    bool render_special;
    // An embedding task: the prompt (1..n_ctx tokens; longer is LLEM_EINVAL, truncate first)
    // is embedded (model_ctx_embed: mean-pooled, L2-normalised) on a free slot's sequence with
    // no sampling; the DONE event carries the vector. Sampling, stops, grammar are ignored.
    bool embed;
};

enum runner_event_kind {
    RUNNER_EV_PIECE, // text (complete UTF-8, stop strings removed)
    RUNNER_EV_DONE,  // finished; stats and done_reason set
    RUNNER_EV_ERROR, // failed; error set (the task is over)
};

struct runner_stats {
    int32_t prompt_eval_count;     // prompt tokens actually computed (not reused from cache)
    int32_t prompt_cached;         // prompt tokens reused from the cache
    int64_t prompt_eval_ns;        // slot assigned..first token (queue time excluded)
    int32_t eval_count;            // generated tokens
    int64_t eval_ns;
    int64_t queue_ns;              // time waiting for a slot
};

struct runner_event {
    enum runner_event_kind kind;
    char *text;                  // PIECE: owned by the event; free with runner_event_clear
    size_t len;
    const char *done_reason;     // DONE: "stop" (end token or stop string) or "length"
    struct runner_stats stats;   // DONE
    llem_token *context;         // DONE with want_context: prompt + generated tokens (owned)
    int32_t n_context;
    float *embedding;            // DONE of an embed task: [n_embd] unit vector (owned)
    int32_t n_embd;
    struct llem_errbuf error;    // ERROR
};

// Creates the context for the model (KV cache of n_parallel x n_ctx) and starts the thread.
// The model and vocabulary are borrowed and must outlive the runner.
enum llem_err runner_new(struct model *m, const struct tok_vocab *vocab,
                         const struct runner_params *p, struct runner **out,
                         struct llem_errbuf *eb);
// Stops the thread: queued and running tasks end with an ERROR event (LLEM_ECANCELED).
void runner_free(struct runner *r);

// Queues a request. LLEM_EBUSY when the queue is full, LLEM_EINVAL for bad params (empty
// prompt, prompt longer than the context, bad sampling options), LLEM_ENOMEM.
enum llem_err runner_submit(struct runner *r, const struct runner_task_params *tp,
                            struct runner_task **out, struct llem_errbuf *eb);

// Waits up to timeout_ms (-1: forever) for the task's next event. Returns false on timeout.
// After DONE or ERROR no more events come.
bool runner_task_next(struct runner_task *t, struct runner_event *ev, int timeout_ms);
void runner_event_clear(struct runner_event *ev);
// Asks the runner to stop the task (client disconnected); its slot is freed at the next step.
void runner_task_cancel(struct runner_task *t);
// The submitter is done with the task (after DONE/ERROR, or after cancel). Frees it once the
// runner is done with it too.
void runner_task_release(struct runner_task *t);

// Introspection for /api/ps and /metrics (thread-safe snapshots).
struct runner_status {
    int32_t n_slots, n_busy, n_queued;
    int32_t kv_cells_used, kv_cells_total;
    uint64_t tokens_in, tokens_out; // totals since start
    uint64_t steps;                 // decode calls
    int32_t peak_step_seqs;         // most sequences that shared one decode call
    uint64_t shifts, shift_reprocess; // context shifts; those that had to recompute
    uint64_t prefix_forks;          // prompts that forked a prefix from another slot
};
void runner_status(struct runner *r, struct runner_status *st);
int32_t runner_n_ctx(const struct runner *r);

// The grammar vocabulary (byte trie of the pieces, control tokens empty) of the runner's
// tokenizer: built on first use (tens of ms), then shared by every request until runner_free.
// Thread-safe. LLEM_ENOMEM.
enum llem_err runner_grammar_vocab(struct runner *r, const struct grammar_vocab **out,
                                   struct llem_errbuf *eb);

// While held, queued tasks are not admitted to slots (running ones go on); releasing admits
// every waiting task at the next step, so tests can make N tasks start in the same batch.
void runner_hold(struct runner *r, bool hold);
