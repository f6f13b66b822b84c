// tests/fuzz/fuzz_tokenizer_encode.c: random bytes as text through a byte-level BPE vocab
// (llama3 pre-tokenizer) and a SentencePiece vocab with byte fallback, both built in memory.
// The first input byte picks flags. Checks: ids in range, and for valid UTF-8 the streaming
// decoder gives the text back exactly (both tokenizers are lossless there, given a vocab in
// which every merge result is a token, as in real files).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tok_vocab *bpe, *spm;

static struct tok_vocab *build(bool is_bpe)
{
    static char names[512][12];
    static const char *toks[600];
    static int32_t types[600];
    static float scores[600];
    uint32_t n = 0;
    struct tok_vocab_desc d;
    tok_vocab_desc_init(&d);
    if (is_bpe) {
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            bool pr = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
            int cp = pr ? b : 256 + extra++;
            char *s = names[b];
            if (cp < 0x80) {
                s[0] = (char)cp;
            } else {
                s[0] = (char)(0xC0 | (cp >> 6));
                s[1] = (char)(0x80 | (cp & 0x3F));
            }
            toks[n] = s;
            types[n++] = 1;
        }
        static const char *const words[] = {"th", "the", "\xc4\xa0the", "in", "an", "and",
                                            "\u0120a", "er", "\xc4\xa0\xc4\xa0", "\u0120th", "xy",
                                            "<|eot|>"};
        static const char *const merges[] = {"t h", "th e", "\xc4\xa0 the", "i n", "a n",
                                             "an d", "\u0120 a", "e r", "\xc4\xa0 \xc4\xa0",
                                             "\xc4\xa0 th", "x y"};
        for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
            types[n] = i + 1 == sizeof words / sizeof *words ? 3 : 1;
            toks[n++] = words[i];
        }
        d.model = "gpt2";
        d.pre = "llama-bpe";
        d.merges = merges;
        d.n_merges = sizeof merges / sizeof *merges;
    } else {
        toks[n] = "<unk>", types[n++] = 2;
        toks[n] = "<s>", types[n++] = 3;
        toks[n] = "</s>", types[n++] = 3;
        for (int b = 0; b < 256; b++) {
            snprintf(names[b], sizeof names[b], "<0x%02X>", b);
            toks[n] = names[b], types[n++] = 6;
        }
        static const char *const words[] = {"\xe2\x96\x81", "t", "h", "e", "th", "the",
                                            "\xe2\x96\x81the", "a", "n", "d", "an", "and",
                                            "\u2581and", "\xc3\xa9", "<user>"};
        for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
            scores[n] = -(float)(i % 5);
            types[n] = i + 1 == sizeof words / sizeof *words ? 4 : 1;
            toks[n++] = words[i];
        }
        d.model = "llama";
        d.scores = scores;
    }
    d.tokens = toks;
    d.n_tokens = n;
    d.token_types = types;
    struct tok_vocab *v = NULL;
    struct llem_errbuf eb = {0};
    if (tok_vocab_new(&v, &d, &eb)) {
        fprintf(stderr, "fuzz: vocab: %s\n", eb.msg);
        abort();
    }
    return v;
}

static void check(const struct tok_vocab *v, const char *text, size_t len, bool add,
                  bool special)
{
    size_t cap = len * 2 + 8, n = 0;
    llem_token *ids = malloc(cap * sizeof *ids);
    struct llem_errbuf eb = {0};
    enum llem_err e = tok_encode(v, text, len, add, special, ids, cap, &n, &eb);
    if (e == LLEM_ELIMIT && n > cap) { // invalid bytes become U+FFFD: 3 tokens each
        cap = n;
        ids = realloc(ids, cap * sizeof *ids);
        e = tok_encode(v, text, len, add, special, ids, cap, &n, &eb);
    }
    if (e) {
        fprintf(stderr, "fuzz: encode failed: %s\n", eb.msg);
        abort();
    }
    size_t pcap = tok_piece_max(v) + 8, total = 0;
    char *out = malloc(n * pcap + 8);
    struct tok_stream st;
    tok_stream_init(&st, v, false);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(v)) {
            abort();
        }
        size_t k = 0;
        if (tok_stream_push(&st, ids[i], out + total, pcap, &k, &eb)) {
            abort();
        }
        total += k;
    }
    total += tok_stream_flush(&st, out + total, 8);
    // lossless for valid UTF-8 without special tokens and without a literal "▁"
    bool plain = !add && !special && utf8_valid(text, len, NULL) &&
                 !memmem(text, len, "\xe2\x96\x81", 3) && !memmem(text, len, "<user>", 6);
    if (plain && (total != len || memcmp(out, text, len) != 0)) {
        fprintf(stderr, "fuzz: round trip mismatch (%zu vs %zu bytes)\n", total, len);
        abort();
    }
    free(out);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!bpe) {
        bpe = build(true);
        spm = build(false);
    }
    if (size == 0) {
        return 0;
    }
    uint8_t flags = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    check(bpe, text, len, flags & 1, flags & 2);
    check(spm, text, len, flags & 1, flags & 2);
    return 0;
}
