// model/model_int.h: the loader's private parts shared between model.c and prepared.c.
#pragma once
#include <stdbool.h>

#include "model/model.h"

// The token embedding is only gathered by rows (a few per token), unless it doubles as the
// output matrix: load time neither reads it nor copies it.
static inline bool model_gathered_only(const struct model *m, const struct tensor *t)
{
    return t == m->tok_embd && m->output != m->tok_embd;
}

// The prepared-weights file (model/prepared.c): the backend's copies of a model's weights in
// its own layouts (CPU: repacked 8-row groups), kept in `dir` between loads so a later load
// maps them instead of converting the weights again. One file per GGUF path, rewritten when
// the GGUF file or the backend's layouts change.
//
// prepared_open: when a valid file exists for `path`, maps it and has the backend adopt every
// weight it holds (m->prepared holds the map; the weights' GGUF bytes are never read). False
// when there is none, it is stale or damaged (it is then ignored, and replaced after the load),
// or nothing of this model is prepared.
bool prepared_open(struct model *m, const char *dir, const char *path);
// prepared_store: writes the file for `path` from the copies the load just made, on a thread
// of its own (atomically; a failure is logged and changes nothing), and removes files whose
// GGUF no longer exists. prepared_wait: returns once that write is over (no-op when none).
// prepared_close: waits, then unmaps the file.
void prepared_store(struct model *m, const char *dir, const char *path);
void prepared_wait(struct model *m);
void prepared_close(struct model *m);
