// tokenizer/tokenizer_int.h: the vocab's in-memory layout shared by the tokenizer's files
// (vocab.c builds it; spm/bpe/wpm/encode/decode read it). Not part of the interface.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

// Open-addressing hash (linear probing, at most half full) from a string (interned text) to
// its id. A slot holds everything a probe needs: a text of up to 8 bytes (most token texts,
// nearly all BPE merge halves) is compared within the slot, a longer one costs one more cache
// miss for the rest of the text. The loader prefetches both (vocab.c).
struct tok_strslot {
    uint32_t hash; // tok_hash of the text
    int32_t id;    // interned id, -1 = empty
    uint32_t off;  // text at blob + off ...
    uint32_t len;  // ... of len bytes
    uint64_t head; // its first 8 bytes, zero-padded (tok_head)
};

struct tok_strmap {
    struct tok_strslot *slot; // [mask + 1]
    uint32_t mask;            // cap - 1 (cap a power of two)
};

// Open-addressing hash (at most 2/3 full) from a pair of interned ids to (rank, merged id).
struct tok_mergeslot {
    uint64_t key;   // (left << 32 | right) + 1; 0 = empty
    int32_t rank;
    int32_t result; // interned id of left+right
};

struct tok_mergemap {
    struct tok_mergeslot *slot; // [mask + 1]
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

    // SPM: no token has a "▁" preceded by anything but "▁", so text can be merged word by word
    // (see spm_boundary in encode.c). Otherwise one heap runs over each whole fragment.
    bool spm_split;
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

// Growable token list used while encoding. It may start on the caller's buffer (ext): ids go
// straight there until it overflows, then to a heap copy.
struct tok_vec {
    llem_token *data;
    size_t n, cap;
    bool ext; // data is not ours (do not realloc or free it)
};
enum llem_err tok_vec_push(struct tok_vec *tv, llem_token id);

// s[0..n) for n <= 8 as a little-endian integer, zero-padded; without a variable-length copy
// (which compiles to a library call): two overlapping loads, or three bytes below 4.
static inline uint64_t tok_load_tail(const char *s, size_t n)
{
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        return (uint64_t)lo | (uint64_t)hi << (8 * (n - 4));
    }
    if (n == 0) {
        return 0;
    }
    const uint8_t *u = (const uint8_t *)s;
    return (uint64_t)u[0] | (uint64_t)u[n >> 1] << (8 * (n >> 1)) |
           (uint64_t)u[n - 1] << (8 * (n - 1));
}

// Hashing and lookup of interned strings (inline: they are the hot path of loading and of
// every encoder).
static inline uint32_t tok_hash(const char *s, size_t n)
{
    // 8 bytes at a time with a multiply-xorshift mix: token texts are short, merges many.
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = tok_load_tail(s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    return (uint32_t)h;
}

// The first (up to) 8 bytes of s[0..n), zero-padded, as stored in a slot.
static inline uint64_t tok_head(const char *s, size_t n)
{
    return tok_load_tail(s, n < 8 ? n : 8);
}

// The id of s[0..n) whose tok_hash is h, or -1.
static inline int32_t tok_strmap_find_h(const struct tok_vocab *v, const char *s, size_t n,
                                        uint32_t h)
{
    const struct tok_strslot *slot = v->map.slot;
    if (!slot) {
        return -1;
    }
    uint64_t head = tok_head(s, n);
    for (uint32_t i = h & v->map.mask;; i = (i + 1) & v->map.mask) {
        const struct tok_strslot *e = &slot[i];
        if (e->id < 0) {
            return -1;
        }
        if (e->hash == h && e->len == n && e->head == head &&
            (n <= 8 || memcmp(v->blob + e->off + 8, s + 8, n - 8) == 0)) {
            return e->id;
        }
    }
}

static inline int32_t tok_strmap_find(const struct tok_vocab *v, const char *s, size_t n)
{
    return tok_strmap_find_h(v, s, n, tok_hash(s, n));
}

static inline uint32_t tok_mix64(uint64_t k) // hash of a merge key (a pair of interned ids)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return (uint32_t)k;
}

// GPT-2 byte <-> code point mapping (printable bytes map to themselves); tok_cp_to_byte gives
// -1 if cp is not in the image of the mapping.
// Lenient UTF-8 decoding exactly as llama.cpp's unicode_cpts_from_utf8: tok_utf8_next returns
// the code point at s[*off] and advances *off; a malformed sequence yields U+FFFD and advances
// 1 byte. (Inline: called per character by the BPE encoder and the piece table builder.)
static inline uint32_t tok_byte_to_cp(uint8_t b)
{
    // GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes
    // (0x00-0x20, 0x7F-0xA0, 0xAD) to U+0100.. in byte order.
    if (b <= 0x20) {
        return 256u + b;
    }
    if (b >= 0x7F && b <= 0xA0) {
        return 256u + 33 + (b - 0x7Fu);
    }
    return b == 0xAD ? 256u + 67 : b;
}

static inline int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256) {
        return tok_byte_to_cp((uint8_t)cp) == cp ? (int)cp : -1;
    }
    uint32_t k = cp - 256;
    return k < 33 ? (int)k : k < 67 ? (int)(0x7F + k - 33) : k == 67 ? 0xAD : -1;
}

static inline uint32_t tok_utf8_next(const char *str, size_t n, size_t *off)
{
    // Mirrors llama.cpp: only the lead byte's pattern and the continuation bytes are checked
    // (overlongs and surrogates decode); anything else is U+FFFD for one byte. Leads above
    // 0xF4 are refused here (upstream would produce code points past U+10FFFF).
    const uint8_t *s = (const uint8_t *)str;
    size_t i = *off;
    uint8_t c = s[i];
    if (c < 0x80) {
        *off = i + 1;
        return c;
    }
    int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || i + (size_t)len > n) {
        *off = i + 1;
        return 0xFFFD;
    }
    uint32_t cp = len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (int k = 1; k < len; k++) {
        if ((s[i + (size_t)k] & 0xC0) != 0x80) {
            *off = i + 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (s[i + (size_t)k] & 0x3Fu);
    }
    if (cp > 0x10FFFF) {
        *off = i + 1;
        return 0xFFFD;
    }
    *off = i + (size_t)len;
    return cp;
}

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
