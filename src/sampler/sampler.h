// sampler/sampler.h: turns a row of logits into the next token, with Ollama's options and
// defaults, and matches stop sequences in generated text. One sampler per sequence; it owns
// its scratch (sized once for the vocabulary) and its RNG, so sampling allocates nothing and
// a seeded sequence is reproducible. Not thread-safe per instance.
//
// Chain (as llama.cpp's, which Ollama's llama runner uses): repetition penalties -> top_k ->
// typical_p -> top_p -> min_p -> temperature -> draw. temperature <= 0 means greedy: the argmax
// of the raw logits (lowest id on ties), with no penalty applied, as Ollama's engine does; a
// token filter (grammar) still applies.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct sampler_params {
    float temperature;       // 0.8; <= 0: greedy
    int32_t top_k;           // 40; <= 0: off
    float top_p;             // 0.9; >= 1: off
    float min_p;             // 0.0: off
    float typical_p;         // 1.0: off
    float repeat_penalty;    // 1.1; 1: off
    int32_t repeat_last_n;   // 64; 0: off; -1: the whole context (n_ctx)
    float presence_penalty;  // 0: off
    float frequency_penalty; // 0: off
    int64_t seed;            // -1: a random seed
};

// Ollama's defaults.
struct sampler_params sampler_params_default(void);

// Optional token filter (grammar constraint): sets logits[id] = -INFINITY for every token that
// may not come next. `ids` lists the candidates still alive (n of them) when the filter is
// called on a subset; a NULL ids means the whole vocabulary. Returns false on an internal
// error (the sampler then fails with LLEM_EINTERNAL).
typedef bool (*sampler_filter_fn)(void *user, float *logits, const int32_t *ids, int32_t n);

struct sampler;

// n_ctx bounds repeat_last_n = -1. LLEM_EINVAL for out-of-range parameters (negative top_p,
// temperature NaN, ...), LLEM_ENOMEM.
enum llem_err sampler_new(struct sampler **out, const struct sampler_params *p, int32_t n_vocab,
                          int32_t n_ctx, struct llem_errbuf *eb);
void sampler_free(struct sampler *s);

void sampler_set_filter(struct sampler *s, sampler_filter_fn fn, void *user);

// Records a token of the sequence (prompt or generated) for the repetition penalties.
void sampler_accept(struct sampler *s, int32_t token);
void sampler_reset(struct sampler *s); // forgets the history (not the RNG state)

// Picks the next token from logits[n_vocab]; the logits are not modified. LLEM_EINVAL when no
// token is possible (every logit -inf after filtering).
enum llem_err sampler_sample(struct sampler *s, const float *logits, int32_t *token,
                             struct llem_errbuf *eb);

// ---- stop sequences ------------------------------------------------------------------------

// Looks for stop strings in generated text. `text` is everything generated and not yet sent.
// Returns true if a stop string occurs (earliest first); *emit is then the bytes before it.
// Otherwise *emit is how many leading bytes can be sent now: the rest could still be the start
// of a stop string and must be held back.
bool sampler_stop_scan(const char *const *stops, int32_t n_stops, const char *text, size_t len,
                       size_t *emit);
