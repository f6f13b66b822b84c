// runner/runner_int.h: the runner's private structures, shared by runner.c (thread, queue,
// batching, slots) and runner_task.c (event channel). Not for use outside src/runner/.
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "base/compiler.h"
#include "runner/runner.h"

struct runner_task {
    // Set by runner_submit, then read-only (sampler and gen: runner thread only).
    llem_token *prompt;
    int32_t n_prompt;
    int32_t num_predict, num_keep;
    char **stops;
    int32_t n_stops;
    bool want_context;
    struct sampler *smp;
    struct grammar *grammar; // owned; used by the runner thread only
    llem_token *trig_toks;   // forced to reach the grammar's trigger (see runner.h)
    int32_t n_trig_toks, i_trig; // i_trig: next one to force (runner thread)
    bool render_special;
    bool embed;              // embedding task (runner_task_params.embed)
    int64_t t_submit;
    llem_token *gen; // generated tokens (want_context only), runner thread
    int32_t n_gen, cap_gen;

    // The channel, under mu.
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *text; // pieces not yet read, concatenated
    size_t len, cap;
    bool has_final, final_taken;
    struct runner_event final;

    atomic_bool cancel;
    atomic_int refs; // submitter + runner
    struct runner_task *next; // queue link (under runner->mu)
};

void runner_task_free_(struct runner_task *t);
void runner_task_unref_(struct runner_task *t);
// Appends text to the channel; false when it cannot grow (out of memory).
bool runner_task_post_text_(struct runner_task *t, const char *s, size_t n);
// Posts the final event (moved from *ev, which is cleared). Only the first one counts.
void runner_task_post_final_(struct runner_task *t, struct runner_event *ev);
void runner_task_post_error_(struct runner_task *t, enum llem_err code, const char *msg);
