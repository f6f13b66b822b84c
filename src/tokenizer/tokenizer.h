// tokenizer/tokenizer.h: text <-> token ids, driven entirely by a GGUF's tokenizer.ggml.*
// metadata: SentencePiece-style score merging ("llama"), byte-level BPE with pre-tokenizer
// regexes ("gpt2"), WordPiece ("bert"). Entry points: tok_vocab_load, tok_encode, tok_piece
// and the streaming decoder tok_stream_*. A loaded vocab is immutable: any number of threads
// may encode and decode with it at once.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct gguf_file;
struct tok_vocab; // opaque

enum tok_model {
    TOK_MODEL_SPM, // tokenizer.ggml.model = "llama"
    TOK_MODEL_BPE, // "gpt2"
    TOK_MODEL_WPM, // "bert"
};

// Token attributes (bit set), from tokenizer.ggml.token_type plus per-model fix-ups.
enum tok_attr {
    TOK_ATTR_NORMAL = 1u << 0,
    TOK_ATTR_UNKNOWN = 1u << 1,
    TOK_ATTR_UNUSED = 1u << 2,
    TOK_ATTR_CONTROL = 1u << 3,
    TOK_ATTR_USER_DEFINED = 1u << 4,
    TOK_ATTR_BYTE = 1u << 5,
    TOK_ATTR_LSTRIP = 1u << 6, // when matched in text, eat whitespace on its left
    TOK_ATTR_RSTRIP = 1u << 7, // ... and on its right
    TOK_ATTR_EOG = 1u << 8,    // ends generation (eos, eot, eom, "<|im_end|>", ...)
};

// The special-token roles a vocab may define (-1 when absent).
enum tok_special {
    TOK_SPECIAL_BOS,
    TOK_SPECIAL_EOS,
    TOK_SPECIAL_EOT,
    TOK_SPECIAL_EOM,
    TOK_SPECIAL_UNK,
    TOK_SPECIAL_SEP,
    TOK_SPECIAL_PAD,
    TOK_SPECIAL_CLS,
    TOK_SPECIAL_MASK,
    TOK_SPECIAL_FIM_PRE,
    TOK_SPECIAL_FIM_SUF,
    TOK_SPECIAL_FIM_MID,
    TOK_SPECIAL_FIM_PAD,
    TOK_SPECIAL_FIM_REP,
    TOK_SPECIAL_FIM_SEP,
    TOK_SPECIAL_COUNT
};

// ---- building a vocab ----------------------------------------------------------------------

// Sentinel for tok_vocab_desc fields: "not given, use the model's default".
#define TOK_DESC_UNSET INT64_MIN

// A vocabulary described in memory: what tok_vocab_load reads from GGUF metadata, also used
// directly by tests, fuzzers and synthetic models. Pointers are borrowed for the call only.
struct tok_vocab_desc {
    const char *model;            // "llama" | "gpt2" | "bert"
    const char *pre;              // tokenizer.ggml.pre; NULL = "default"
    const char *name;             // general.name (selects a few per-model fix-ups); may be NULL
    const char *const *tokens;    // [n_tokens] NUL-terminated token texts
    const size_t *token_lens;     // [n_tokens] byte lengths, or NULL to use strlen
    uint32_t n_tokens;
    const float *scores;          // [n_tokens] or NULL (all 0)
    const int32_t *token_types;   // [n_tokens] 0..6 as in GGUF, or NULL (all normal)
    const char *const *merges;    // [n_merges] "left right"; required for "gpt2"
    uint64_t n_merges;
    int64_t special[TOK_SPECIAL_COUNT]; // ids; TOK_DESC_UNSET = default, -1 = none
    int add_bos, add_eos;               // 0/1, or -1 = model default
    int add_space_prefix;               // 0/1, or -1 = model default
    int remove_extra_whitespaces;       // 0/1, or -1 = default (false)
};

// Fills d with "nothing given" (every special UNSET, every flag -1, pointers NULL).
void tok_vocab_desc_init(struct tok_vocab_desc *d);

// Builds a vocab from a description. Validates everything: model and pre-tokenizer known,
// token texts unique, token types in range, merges "a b" with both halves non-empty, special
// ids in range. Errors: LLEM_EFORMAT (names the offending field/index), LLEM_EUNSUPPORTED
// (unknown model or pre-tokenizer), LLEM_ENOMEM. *out is NULL on error.
enum llem_err tok_vocab_new(struct tok_vocab **out, const struct tok_vocab_desc *d,
                            struct llem_errbuf *eb);

// Reads tokenizer.ggml.* from an open GGUF (metadata_only is enough) and builds the vocab.
// The file may be closed afterwards. Errors as tok_vocab_new, plus LLEM_ENOTFOUND when the
// file has no tokenizer, LLEM_EFORMAT for a key of the wrong type or arrays of mismatched
// lengths. Out-of-range pad/sep/cls/mask/fim ids are ignored with a warning (real files carry
// them, e.g. 0xFFFFFFFF); out-of-range bos/eos/unk/eot/eom ids are errors.
enum llem_err tok_vocab_load(struct tok_vocab **out, const struct gguf_file *f,
                             struct llem_errbuf *eb);

void tok_vocab_free(struct tok_vocab *v); // NULL is a no-op

// ---- accessors -----------------------------------------------------------------------------

enum tok_model tok_vocab_model(const struct tok_vocab *v);
const char *tok_vocab_pre(const struct tok_vocab *v); // pre-tokenizer name ("default", ...)
int32_t tok_n_vocab(const struct tok_vocab *v);
llem_token tok_special_id(const struct tok_vocab *v, enum tok_special which); // -1 if none
llem_token tok_bos(const struct tok_vocab *v);
llem_token tok_eos(const struct tok_vocab *v);
llem_token tok_eot(const struct tok_vocab *v);
bool tok_add_bos(const struct tok_vocab *v);
bool tok_add_eos(const struct tok_vocab *v);
bool tok_is_eog(const struct tok_vocab *v, llem_token id); // false for out-of-range ids
bool tok_is_control(const struct tok_vocab *v, llem_token id);
uint32_t tok_attr(const struct tok_vocab *v, llem_token id); // 0 for out-of-range ids
// The token's text as stored in the vocab (not NUL-terminated); NULL for out-of-range ids.
const char *tok_text(const struct tok_vocab *v, llem_token id, size_t *len);
// Id of a token whose text is exactly s[0..n), or -1.
llem_token tok_find(const struct tok_vocab *v, const char *s, size_t n);
// Longest piece tok_piece can produce, in bytes: size buffers for tok_stream_push with it.
size_t tok_piece_max(const struct tok_vocab *v);

// ---- encoding ------------------------------------------------------------------------------

// Tokenizes text[0..len) (any bytes; invalid UTF-8 is handled as llama.cpp does).
// add_special: add BOS/EOS (or CLS/SEP for WordPiece) as the vocab's metadata asks.
// parse_special: recognize control/unknown token texts in the text ("<|im_start|>");
// user-defined tokens are always recognized, as upstream tokenizers do.
// Writes up to n_max ids to out and the total count to *n_out. If the result needs more than
// n_max ids, returns LLEM_ELIMIT with *n_out = the needed count (call again with a larger
// buffer; out may be NULL when n_max is 0). Other errors: LLEM_ENOMEM, LLEM_EINTERNAL (the
// regex engine failed). Thread-safe.
enum llem_err tok_encode(const struct tok_vocab *v, const char *text, size_t len,
                         bool add_special, bool parse_special, llem_token *out, size_t n_max,
                         size_t *n_out, struct llem_errbuf *eb);

// ---- decoding ------------------------------------------------------------------------------

// The bytes of one token: SentencePiece "▁" as space and <0xNN> as the byte, byte-level BPE
// mapped back to raw bytes, control/unknown tokens rendered as their text only when `special`
// (otherwise empty). Copies min(len, cap) bytes to buf (no NUL) and returns the piece length;
// a return > cap means the buffer was too small. Returns 0 for out-of-range ids.
size_t tok_piece(const struct tok_vocab *v, llem_token id, bool special, char *buf, size_t cap);

// Streaming detokenizer: pushes one token at a time and yields only complete UTF-8 text; a
// piece that ends inside a character is held back until the next piece completes it (bytes
// that can never become valid UTF-8 are passed through). Also drops the leading space the
// SentencePiece dummy prefix put before the first token. Caller-owned, no allocation.
struct tok_stream {
    const struct tok_vocab *v;
    bool special;      // render control tokens
    bool strip_space;  // drop one leading space from the next piece (dummy prefix)
    uint8_t held[4];   // incomplete UTF-8 tail from earlier pieces
    size_t n_held;
};

void tok_stream_init(struct tok_stream *s, const struct tok_vocab *v, bool special);
// Appends the text completed by `id` to out[0..cap): *n_out bytes. cap of at least
// tok_piece_max(v) + 4 always suffices; with less, returns LLEM_ELIMIT and the stream is
// unchanged. Out-of-range ids are LLEM_EINVAL.
enum llem_err tok_stream_push(struct tok_stream *s, llem_token id, char *out, size_t cap,
                              size_t *n_out, struct llem_errbuf *eb);
// Emits whatever is held back (an incomplete character at the end of generation); needs
// cap >= 4.
size_t tok_stream_flush(struct tok_stream *s, char *out, size_t cap);
