// cli/engine.h: what the file-level verbs (run, eval, bench) share: opening a GGUF as a
// backend + model + tokenizer, and feeding a token sequence through a context in batches.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

struct cli_engine {
    struct backend *be;
    struct model *model;
    struct tok_vocab *vocab; // NULL with want_vocab false
    double load_ms;
};

// Opens `path` with n_threads CPU threads (0: physical cores). One-line errors on stderr
// prefixed with the verb; returns 0 or 1 (the exit status).
int cli_engine_open(struct cli_engine *e, const char *verb, const char *path, int n_threads,
                    bool want_vocab);
void cli_engine_close(struct cli_engine *e);

// Decodes tokens[0..n) of sequence `seq` starting at position pos0 in batches of the context's
// n_batch; if all_logits, copies every row's logits to out_logits ([n][n_vocab]), otherwise
// only the last row's logits are computed (read them with model_ctx_logits(ctx, 0)).
enum llem_err cli_decode_tokens(struct model_ctx *ctx, const llem_token *tokens, int32_t n,
                                llem_pos pos0, llem_seq seq, bool all_logits, float *out_logits,
                                struct llem_errbuf *eb);

double cli_now_ms(void);

// Opens only the vocabulary of a GGUF (metadata, no weights). On failure prints
// "llem VERB: ..." and returns 1; 0 with *out set otherwise (free with tok_vocab_free).
int cli_vocab_open(const char *verb, const char *path, struct tok_vocab **out);

// Reads all of `in` into a NUL-terminated heap buffer (llem_free), at most cap bytes.
bool cli_read_all(FILE *in, char **buf, size_t *len, size_t cap); // cli/tokenize.c
