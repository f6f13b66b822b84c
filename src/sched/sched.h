// sched/sched.h: the scheduler. Finds or loads the model a request names (a GGUF path now,
// a store name through a resolver later), hands out reference-counted leases on its runner,
// keeps idle models for keep_alive, caps the loaded set (LLEM_MAX_LOADED_MODELS) and the
// memory it may use (evicting idle models first, refusing loads that still do not fit), and
// bounds waiting requests (LLEM_MAX_QUEUE -> LLEM_EBUSY). A request asking for a num_ctx no
// larger than the loaded one reuses the loaded model. Thread-safe: every function may be
// called from any HTTP thread; loads run in the acquiring thread, one at a time.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runner/runner.h"

// Maps a model name (as a request gives it) to a GGUF path. Writes a NUL-terminated path of at
// most cap bytes to `path`. LLEM_ENOTFOUND for an unknown name (the server answers 404), any
// other error as it comes. NULL resolver: the name must itself be a readable GGUF path.
typedef enum llem_err (*sched_resolve_fn)(void *user, const char *name, char *path, size_t cap,
                                          struct llem_errbuf *eb);

#define SCHED_KEEP_ALIVE_DEFAULT_NS (5LL * 60 * 1000000000LL) // 5m

struct sched_params {
    int32_t max_loaded;      // LLEM_MAX_LOADED_MODELS: most models loaded at once (3)
    int64_t keep_alive_ns;   // LLEM_KEEP_ALIVE: default keep-alive (5m); 0 = unload when the
                             // last request ends; negative = forever
    int32_t num_parallel;    // LLEM_NUM_PARALLEL: slots per model (4; 1..64)
    int32_t max_queue;       // LLEM_MAX_QUEUE: requests waiting for a load or a slot (512)
    int32_t num_ctx;         // default context per slot; 0 = model_fit_n_ctx default
                             // (LLEM_CONTEXT_LENGTH or 16384, clamped and fitted)
    int32_t n_batch;         // tokens per decode step (512)
    int32_t n_threads;       // CPU threads per model backend (0: physical cores)
    int flash_attn;          // -1 auto, 0 off, 1 on (LLEM_FLASH_ATTENTION is read below)
    size_t mem_budget;       // bytes all loaded models may use; 0 = what model_mem_available()
                             // reports at each load (tests set it to force evictions)
    sched_resolve_fn resolve; // NULL: names are GGUF paths
    void *resolve_user;
};

// Defaults, then the LLEM_* variables above. LLEM_EINVAL naming the variable for a value
// that does not parse or is out of range (the server refuses to start).
enum llem_err sched_params_from_env(struct sched_params *p, struct llem_errbuf *eb);
struct sched_params sched_params_default(void); // defaults only, no environment

struct sched;

enum llem_err sched_new(const struct sched_params *p, struct sched **out, struct llem_errbuf *eb);
// Unloads every model: running and queued tasks end with LLEM_ECANCELED events. Every lease
// must have been released first.
void sched_free(struct sched *s);

// What a request asks of the scheduler.
struct sched_request {
    const char *model;      // name or path, resolved by params.resolve
    int32_t num_ctx;        // 0: default; a loaded instance with n_ctx >= num_ctx is reused,
                            // a larger one reloads the model once it is idle
    bool has_keep_alive;    // keep_alive_ns given by the request (else the default)
    int64_t keep_alive_ns;  // 0: unload when this request ends; negative: never unload
};

// A reference on a loaded model; valid until sched_release. Fields are read-only.
struct sched_lease {
    struct runner *runner;          // submit tasks here (runner_submit)
    const struct tok_vocab *vocab;  // tokenize / detokenize on the caller's thread
    const struct model *model;      // hparams, GGUF metadata (chat template) read-only
    const char *name;               // the name it was loaded under
    const char *path;               // the GGUF path
    int32_t n_ctx;                  // context per slot of the loaded instance
    int64_t load_ns;                // time this acquire spent loading (0 when reused)
    void *entry_;                   // private
};

// Finds or loads the model and takes a reference. Blocks while another load runs, while a
// larger-context reload waits for the model to go idle, or while max_loaded models are all in
// use (until one is released, as Ollama does). Errors: LLEM_ENOTFOUND (unknown name or missing
// file), LLEM_EFORMAT/LLEM_EIO (bad file), LLEM_ENOMEM (does not fit in memory even after
// evicting idle models; the message gives needed and available bytes), LLEM_EBUSY (max_queue
// requests already waiting here), LLEM_ECANCELED (shutting down), LLEM_EINVAL (bad num_ctx).
// A request that gets a lease may still get LLEM_EBUSY from runner_submit (slots + queue full).
enum llem_err sched_acquire(struct sched *s, const struct sched_request *req,
                            struct sched_lease *out, struct llem_errbuf *eb);
// Drops the reference. When the last one goes, the model expires after its keep_alive (the
// latest request's): immediately for 0 (unloaded before this returns), never for negative.
void sched_release(struct sched *s, struct sched_lease *lease);

// Unloads a model now if it is loaded and idle (Ollama's empty request with keep_alive 0);
// a busy one is marked to unload when its last reference goes. LLEM_ENOTFOUND when not loaded.
enum llem_err sched_unload(struct sched *s, const char *model, struct llem_errbuf *eb);

// One loaded model, for /api/ps and /metrics.
struct sched_model_info {
    char name[256];
    char path[1024];
    uint64_t size;           // estimated bytes: weights + KV cache + compute
    uint64_t weight_bytes;
    uint64_t kv_bytes;
    int32_t context_length;  // n_ctx per slot
    int32_t n_parallel;
    int64_t expires_at_unix_ns; // wall clock; 0 = never (keep_alive negative)
    int32_t refs;            // requests holding it
    const char *processor;   // "100% CPU"
    struct runner_status status;
};

// Copies up to cap entries (most recently used first) and returns how many models are loaded.
int32_t sched_list(struct sched *s, struct sched_model_info *out, int32_t cap);

// Counters for /metrics.
struct sched_stats {
    int32_t n_loaded, n_waiting;
    uint64_t loads, unloads, evictions, refused_mem, refused_busy;
};
void sched_stats(struct sched *s, struct sched_stats *st);
