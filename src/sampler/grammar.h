// sampler/grammar.h: grammar-constrained sampling. A grammar (GBNF-like rules: sequences,
// alternatives, character classes, repetition with min/max, literals) is compiled from GBNF
// text, from `format: "json"`, or from a JSON Schema (Ollama's `format: {schema}`, OpenAI's
// response_format json_schema); a per-sequence parser then says which tokens may come next.
// The parser advances over the BYTES of token pieces, so a token is allowed iff all its bytes
// can be consumed; the token filter walks a byte trie of the vocabulary together with the
// grammar's live states, so a step costs far less than n_vocab checks. See
// docs/internals/structured.md.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/strbuf.h"

struct grammar_rules; // compiled rules: immutable after creation, shareable between threads
struct grammar_vocab; // the vocabulary's pieces as a byte trie: immutable, build once per vocab
struct grammar;       // one sequence's parse state (not thread-safe)
struct sampler;

// ---- compiling -----------------------------------------------------------------------------

// Parses GBNF text (llama.cpp's dialect: `name ::= alt | alt`, "literals", [classes] with
// ranges and ^, ( groups ), ?, *, +, {m}, {m,}, {m,n}, # comments). `root` names the start
// rule (NULL = "root"). LLEM_EINVAL for a syntax error or an undefined rule (eb says which),
// LLEM_ELIMIT past the size caps, LLEM_ENOMEM.
enum llem_err grammar_rules_gbnf(struct grammar_rules **out, const char *src, size_t len,
                                 const char *root, struct llem_errbuf *eb);

// Ollama's `format: "json"`: a JSON object (any keys and values), with bounded optional
// whitespace between tokens.
enum llem_err grammar_rules_json(struct grammar_rules **out, struct llem_errbuf *eb);

// A JSON Schema given as JSON text. Supported: type (string/number/integer/boolean/null/
// object/array, and lists of them), properties (emitted in declared order; required ones must
// appear, optional ones may be omitted), additionalProperties (false by default in generated
// output; a schema object allows extra keys of that schema), items / prefixItems, minItems /
// maxItems, enum, const, $defs / definitions + $ref "#/..." (recursion included), anyOf /
// oneOf / allOf (of objects), string minLength / maxLength, pattern (literal characters,
// classes, ., *, +, ?, {m,n}, groups, alternation, ^ $ anchors), format date / time /
// date-time / uuid / email-ish, integer minimum / maximum (small ranges) and annotations
// (title, description, default, examples, $schema, $id, strict). Anything else that changes
// validity (not, if/then/else, dependentSchemas, patternProperties, lookarounds,
// backreferences, uniqueItems, multipleOf, external $ref, ...) is LLEM_EUNSUPPORTED naming
// the feature (the server answers 400): never silent non-compliance. LLEM_EINVAL for a
// malformed schema, LLEM_ELIMIT past the size caps.
enum llem_err grammar_rules_schema(struct grammar_rules **out, const char *schema, size_t len,
                                   struct llem_errbuf *eb);

// Ollama's `format` field as raw JSON text: "json" -> grammar_rules_json, an object ->
// grammar_rules_schema; null, "" or an absent field (len 0) -> *out = NULL and LLEM_OK (no
// constraint). Anything else is LLEM_EINVAL "invalid format".
enum llem_err grammar_rules_format(struct grammar_rules **out, const char *format, size_t len,
                                   struct llem_errbuf *eb);

// OpenAI's `response_format` as raw JSON text: {"type":"text"} -> *out = NULL;
// {"type":"json_object"} -> grammar_rules_json; {"type":"json_schema","json_schema":{"name":
// ..., "schema": {...}, "strict": ...}} -> grammar_rules_schema. Otherwise LLEM_EINVAL.
enum llem_err grammar_rules_openai(struct grammar_rules **out, const char *response_format,
                                   size_t len, struct llem_errbuf *eb);

void grammar_rules_free(struct grammar_rules *r); // NULL is a no-op

// Appends the rules as GBNF text (debugging, `llem` tooling, tests).
enum llem_err grammar_rules_print(const struct grammar_rules *r, struct strbuf *out);

// ---- the vocabulary ------------------------------------------------------------------------

// Returns the byte length of token `id`'s piece, copying min(length, cap) bytes to buf, and
// sets *eog when the token ends generation. Same shape as tok_piece (special=false): a runner
// wraps it as `*eog = tok_is_eog(v, id); return tok_piece(v, id, false, buf, cap);`.
// Non-EOG tokens with an empty piece (control tokens) are never allowed by a grammar.
typedef size_t (*grammar_piece_fn)(void *user, int32_t id, char *buf, size_t cap, bool *eog);

// Builds the trie over all n_vocab pieces (tens of ms for 150k tokens). Build it once per
// loaded vocabulary and share it: it is immutable and may be used by any number of grammars
// on any threads. LLEM_EINVAL (n_vocab <= 0), LLEM_ENOMEM.
enum llem_err grammar_vocab_new(struct grammar_vocab **out, int32_t n_vocab,
                                grammar_piece_fn piece, void *user, struct llem_errbuf *eb);
void grammar_vocab_free(struct grammar_vocab *v); // NULL is a no-op
int32_t grammar_vocab_n(const struct grammar_vocab *v);

// ---- per-sequence state --------------------------------------------------------------------

// A parser at the start of `r`. The rules are copied: r may be freed right after. The vocab is
// borrowed and must outlive the grammar. LLEM_ENOMEM.
enum llem_err grammar_new(struct grammar **out, const struct grammar_rules *r,
                          const struct grammar_vocab *v, struct llem_errbuf *eb);
void grammar_free(struct grammar *g); // NULL is a no-op
void grammar_reset(struct grammar *g); // back to the start (and to before the trigger)

// Defers the constraint until the generated text contains `trigger` (e.g. "</think>" for a
// thinking model, so the schema applies to the answer after the thinking section): until then
// every token is allowed (EOG included) and accepted bytes are only scanned for the trigger;
// the bytes after it are fed to the grammar. NULL or "" removes the trigger. LLEM_EINVAL for a
// trigger over 64 bytes.
enum llem_err grammar_set_trigger(struct grammar *g, const char *trigger, struct llem_errbuf *eb);

// The token filter (a sampler_filter_fn; user is the struct grammar *): sets logits[id] =
// -INFINITY for every token that may not come next. ids == NULL: the whole vocabulary (trie
// walk); otherwise only logits[ids[0..n)] are examined and changed (per-token checks, for
// "is the sampled token allowed" probes). End-of-generation tokens are allowed exactly when the
// grammar is complete. Returns false only on an internal error (allocation failure).
bool grammar_filter(void *user, float *logits, const int32_t *ids, int32_t n);

// Whether `token` may come next (false for out-of-range ids).
bool grammar_allows(struct grammar *g, int32_t token);

// Advances over the token's bytes after it was sampled. An EOG token is accepted only when the
// grammar is complete. LLEM_EINVAL when the token is not allowed (the state is unchanged).
enum llem_err grammar_accept(struct grammar *g, int32_t token, struct llem_errbuf *eb);

// Advances over raw bytes (a forced prefix, tests). LLEM_EINVAL if they do not fit (state
// unchanged).
enum llem_err grammar_accept_bytes(struct grammar *g, const char *s, size_t n,
                                   struct llem_errbuf *eb);

// The bytes so far form a complete match: end of generation is allowed.
bool grammar_is_complete(const struct grammar *g);
// Complete and no further byte is possible: the caller can stop (only EOG is allowed).
bool grammar_is_finished(const struct grammar *g);

// Fewest bytes still needed to complete the grammar (0 when complete). Every token adds at
// least one byte, so with `left` tokens of budget (num_predict), turning finish mode on once
// left <= grammar_min_remaining(g) + margin guarantees a complete output.
int32_t grammar_min_remaining(const struct grammar *g);
// Finish mode: only tokens that bring completion strictly closer are allowed (and only EOG once
// complete), so the output closes in at most grammar_min_remaining() tokens.
void grammar_set_finish(struct grammar *g, bool on);

// Samples with Ollama's shortcut: draw from the unconstrained distribution first and keep the
// token if the grammar allows it; only otherwise mask the whole vocabulary and draw again. Then
// advances the grammar over the chosen token. The call sets the sampler's filter as it needs and
// leaves it cleared (NULL), so do not combine it with another filter. Errors: as
// sampler_sample, LLEM_ENOMEM.
enum llem_err grammar_sample(struct grammar *g, struct sampler *s, const float *logits,
                             int32_t *token, struct llem_errbuf *eb);
