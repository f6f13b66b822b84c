// runner/runner_task.c: a task's side shared between its submitter and the runner thread: the
// event channel (text pieces concatenated into one growing buffer, so the runner never waits
// for a slow reader; the final DONE/ERROR event kept aside), cancellation and the two-owner
// reference count. Lock order: runner->mu before task->mu; the runner thread takes only
// task->mu when it posts.
#include <string.h>

#include "base/alloc.h"
#include "runner/runner_int.h"

void runner_task_free_(struct runner_task *t)
{
    if (!t) {
        return;
    }
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    llem_free(t->prompt);
    for (int32_t i = 0; i < t->n_stops; i++) {
        llem_free(t->stops[i]);
    }
    llem_free(t->stops);
    sampler_free(t->smp);
    grammar_free(t->grammar); // does not touch the vocabulary, which may be gone by now
    llem_free(t->trig_toks);
    llem_free(t->text);
    llem_free(t->gen);
    if (t->has_final && !t->final_taken) {
        runner_event_clear(&t->final);
    }
    llem_free(t);
}

void runner_task_unref_(struct runner_task *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
        runner_task_free_(t);
    }
}

bool runner_task_post_text_(struct runner_task *t, const char *s, size_t n)
{
    if (n == 0) {
        return true;
    }
    bool ok = true;
    pthread_mutex_lock(&t->mu);
    if (t->len + n + 1 > t->cap) {
        size_t cap = LLEM_MAX(t->cap * 2, t->len + n + 64);
        char *p = llem_realloc(t->text, cap);
        if (p) {
            t->text = p;
            t->cap = cap;
        } else {
            ok = false;
        }
    }
    if (ok) {
        memcpy(t->text + t->len, s, n);
        t->len += n;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void runner_task_post_final_(struct runner_task *t, struct runner_event *ev)
{
    pthread_mutex_lock(&t->mu);
    if (!t->has_final) {
        t->final = *ev;
        t->has_final = true;
        memset(ev, 0, sizeof *ev);
    }
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    runner_event_clear(ev); // only non-empty if a final event was already posted
}

void runner_task_post_error_(struct runner_task *t, enum llem_err code, const char *msg)
{
    struct runner_event ev = {.kind = RUNNER_EV_ERROR};
    llem_errf(&ev.error, code, "%s", msg);
    runner_task_post_final_(t, &ev);
}

static void abs_deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

bool runner_task_next(struct runner_task *t, struct runner_event *ev, int timeout_ms)
{
    memset(ev, 0, sizeof *ev);
    struct timespec deadline;
    if (timeout_ms >= 0) {
        abs_deadline(&deadline, timeout_ms);
    }
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (t->final_taken) {
            pthread_mutex_unlock(&t->mu);
            return false; // nothing comes after DONE/ERROR
        }
        if (t->len > 0 || t->has_final) {
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&t->cv, &t->mu);
        } else if (pthread_cond_timedwait(&t->cv, &t->mu, &deadline) != 0 && t->len == 0 &&
                   !t->has_final) {
            pthread_mutex_unlock(&t->mu);
            return false;
        }
    }
    if (t->len > 0) {
        // Copy out and keep the channel's buffer: the runner thread then never reallocates
        // once the buffer has grown to a burst's size.
        char *p = llem_malloc(t->len + 1);
        if (p) {
            memcpy(p, t->text, t->len);
            p[t->len] = '\0';
            ev->kind = RUNNER_EV_PIECE;
            ev->text = p;
            ev->len = t->len;
            t->len = 0;
        } else {
            ev->kind = RUNNER_EV_ERROR;
            llem_errf(&ev->error, LLEM_ENOMEM, "out of memory for a %zu-byte piece", t->len);
            t->final_taken = true;
            atomic_store(&t->cancel, true);
        }
    } else {
        *ev = t->final;
        memset(&t->final, 0, sizeof t->final);
        t->final_taken = true;
    }
    pthread_mutex_unlock(&t->mu);
    return true;
}

void runner_event_clear(struct runner_event *ev)
{
    if (!ev) {
        return;
    }
    llem_free(ev->text);
    llem_free(ev->context);
    llem_free(ev->embedding);
    memset(ev, 0, sizeof *ev);
}

void runner_task_cancel(struct runner_task *t)
{
    if (t) {
        atomic_store(&t->cancel, true);
    }
}

void runner_task_release(struct runner_task *t)
{
    if (!t) {
        return;
    }
    // A submitter that walks away before the end cancels the work it no longer wants.
    atomic_store(&t->cancel, true);
    runner_task_unref_(t);
}
