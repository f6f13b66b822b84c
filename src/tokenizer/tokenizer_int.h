// tokenizer/tokenizer_int.h: the vocab's in-memory layout shared by the tokenizer's files
// (vocab.c builds it; spm/bpe/wpm/encode/decode read it). Not part of the interface.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

// Open-addressing hash from a string (interned text) to its id.
struct tok_strmap {
    uint32_t *slot_hash; // [cap] hash of the key in the slot
    int32_t *slot_id;    // [cap] interned id, -1 = empty
    uint32_t mask;       // cap - 1 (cap a power of two)
};

// Open-addressing hash from a pair of interned ids to (rank, merged id).
struct tok_mergemap {
    uint64_t *key;   // [cap] (left << 32 | right) + 1; 0 = empty
    int32_t *rank;   // [cap]
    int32_t *result; // [cap] interned id of left+right
    uint32_t mask;
};

struct tok_pretok; // compiled pre-tokenizer regexes (bpe.c)

struct tok_vocab {
    enum tok_model model;
    char *pre_name;
    int32_t n_vocab;

    // Interned strings: ids [0, n_vocab) are the tokens; ids above are extra strings that only
    // occur in BPE merges (halves or results that are not tokens themselves).
    int32_t n_intern;
    uint32_t *text_off; // [n_intern] offset into blob
    uint32_t *text_len; // [n_intern]
    char *blob;
    struct tok_strmap map;

    float *scores;  // [n_vocab]
    uint16_t *attr; // [n_vocab] enum tok_attr bits
    llem_token special[TOK_SPECIAL_COUNT];
    bool add_bos, add_eos, add_space_prefix, remove_extra_ws;
    bool ignore_merges; // BPE: a pre-tokenized word that is a token is emitted whole
    size_t max_token_len;

    // Special tokens (control, user-defined, unknown) by decreasing text length: the order in
    // which they are split out of the text.
    llem_token *specials;
    int32_t n_specials;

    // SPM: byte -> token (<0xNN>, else the 1-byte token, else unk, else -1).
    llem_token byte_tok[256];

    // BPE
    struct tok_mergemap merges;
    int32_t bpe_byte_id[256]; // interned id of the 1-char mapped string of each byte, or -1
    struct tok_pretok *pretok;

    // Decoding: the piece of every token rendered with special = true.
    uint32_t *piece_off; // [n_vocab]
    uint32_t *piece_len; // [n_vocab]
    char *piece_blob;
    size_t piece_max;
};

// Growable token list used while encoding.
struct tok_vec {
    llem_token *data;
    size_t n, cap;
};
enum llem_err tok_vec_push(struct tok_vec *tv, llem_token id);

// Hashing and lookup of interned strings.
uint32_t tok_hash(const char *s, size_t n);
uint32_t tok_mix64(uint64_t k); // hash of a merge key (a pair of interned ids)
int32_t tok_strmap_find(const struct tok_vocab *v, const char *s, size_t n);

// GPT-2 byte <-> code point mapping (printable bytes map to themselves).
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp); // -1 if cp is not in the image of the mapping

// Lenient UTF-8 decoding exactly as llama.cpp's unicode_cpts_from_utf8: returns the code
// point at s[*off] and advances *off; a malformed sequence yields U+FFFD and advances 1 byte.
uint32_t tok_utf8_next(const char *s, size_t n, size_t *off);

// Per-model encoders: append the ids for one raw-text fragment.
enum llem_err tok_spm_encode(const struct tok_vocab *v, const char *text, size_t len,
                             bool space_prefix, struct tok_vec *out);
enum llem_err tok_bpe_encode(const struct tok_vocab *v, const char *text, size_t len,
                             struct tok_vec *out, struct llem_errbuf *eb);
enum llem_err tok_wpm_encode(const struct tok_vocab *v, const char *text, size_t len,
                             struct tok_vec *out);

// Pre-tokenizer lifetime (bpe.c). tok_pretok_new fails with LLEM_EUNSUPPORTED for an unknown
// name; it also sets the per-pre defaults (ignore_merges, add_bos) on v.
enum llem_err tok_pretok_new(struct tok_vocab *v, const char *name, struct llem_errbuf *eb);
void tok_pretok_free(struct tok_pretok *p);
// Splits text into pre-tokenized words: calls fn(word_off, word_len, ctx) in order.
enum llem_err tok_pretok_split(const struct tok_pretok *p, const char *text, size_t len,
                               enum llem_err (*fn)(size_t off, size_t len, void *ctx),
                               void *ctx, struct llem_errbuf *eb);

// Builds the per-token piece table (decode.c), called once at the end of tok_vocab_new.
enum llem_err tok_pieces_build(struct tok_vocab *v);
