// synth/synth_vocab.c: the generated vocabulary of synthetic models, used when no vocabulary
// GGUF is given or found. A tiny byte-pair trainer runs over a built-in English paragraph, so
// every merge joins two existing tokens and a real tokenizer (ours, llama.cpp's) can use it:
//   SPM: <unk> <s> </s>, 256 byte-fallback tokens <0xXX>, the corpus characters, merged pieces
//        (score = -rank), tokenizer.ggml.model "llama";
//   BPE: the 256 GPT-2 byte symbols (id = byte), merged tokens, merges list, special tokens,
//        tokenizer.ggml.model "gpt2" with the qwen2 or llama-bpe pre-tokenizer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "synth/synth_int.h"

// Token types as llama.cpp's llama_token_type numbers them.
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_UNUSED = 5, TT_BYTE = 6 };

#define MAX_MERGES 400 // enough for the common English words of the corpus

static const char corpus[] =
    "The small model reads a line of text and guesses the next word. It has never seen a "
    "book, so its guesses are random, but the numbers that flow through it are the same kind "
    "of numbers a real model would use. That is what these files are for: they test that "
    "every layer, every head and every tensor is in the right place, and that the program "
    "which loads them does the same work as the one it follows. When the weights are "
    "quantized to four or eight bits, the results should change only a little. Then the "
    "time it takes to run one token, or one thousand tokens, tells us how fast the engine "
    "is on this machine. There were 2048 numbers in each row, 16 rows in a block, and 32 "
    "heads in every layer; the first test started at 9:30 and ended at 10:15. Please write "
    "down what you see, where you saw it, and why it matters. She said that the answer "
    "would come in time, and he thought about it for a while before he went home. We can "
    "make this better if we work together and share what we learn with other people in "
    "the world. What do you think about that? I think it is a good idea, and I want to "
    "help with it today, tomorrow and after that.";

struct vstr { // a growable array of owned strings
    char **v;
    size_t n, cap;
};

static int vstr_push(struct vstr *a, char *s) // takes s (even on failure)
{
    if (!s) {
        return -1;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 512;
        char **v = llem_realloc(a->v, cap * sizeof *v);
        if (!v) {
            llem_free(s);
            return -1;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = s;
    return 0;
}

static void vstr_deinit(struct vstr *a)
{
    for (size_t i = 0; i < a->n; i++) {
        llem_free(a->v[i]);
    }
    llem_free(a->v);
    memset(a, 0, sizeof *a);
}

// GPT-2's byte-to-unicode table: printable Latin-1 bytes stand for themselves, the others
// map in order to U+0100.. . Writes the UTF-8 of byte b's symbol into out (3 bytes + NUL).
static void byte_symbol(unsigned b, char out[4])
{
    unsigned cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
        cp = b;
    } else {
        unsigned k = 0; // rank of b among the non-printable bytes
        for (unsigned x = 0; x < b; x++) {
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) {
                k++;
            }
        }
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static char *concat(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = llem_malloc(la + ls + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, sep, ls);
        memcpy(s + la + ls, b, lb + 1);
    }
    return s;
}

// The trainer's state: token strings, the corpus as words of token ids (with counts).
struct trainer {
    struct vstr tok;    // id -> text
    struct vstr merges; // "left right"
    int *sym;           // all words' symbols back to back, -1 ends a word
    size_t n_sym;
};

static int find_token(const struct vstr *tok, const char *s, size_t first)
{
    for (size_t i = first; i < tok->n; i++) {
        if (strcmp(tok->v[i], s) == 0) {
            return (int)i;
        }
    }
    return -1;
}

struct pair {
    int a, b;
};

static int pair_cmp(const void *x, const void *y)
{
    const struct pair *p = x, *q = y;
    if (p->a != q->a) {
        return p->a < q->a ? -1 : 1;
    }
    return p->b < q->b ? -1 : (p->b > q->b);
}

// Runs up to MAX_MERGES merges of the most frequent adjacent pair (ties: smallest ids, so the
// result is deterministic). Token ids below `first_mergeable` are never looked up as merge
// results (byte-fallback and control tokens).
static enum llem_err train(struct trainer *t, size_t first_mergeable)
{
    struct pair *pairs = llem_malloc((t->n_sym + 1) * sizeof *pairs);
    if (!pairs) {
        return LLEM_ENOMEM;
    }
    enum llem_err err = LLEM_OK;
    for (int it = 0; it < MAX_MERGES; it++) {
        size_t np = 0;
        for (size_t i = 0; i + 1 < t->n_sym; i++) {
            if (t->sym[i] >= 0 && t->sym[i + 1] >= 0) {
                pairs[np++] = (struct pair){t->sym[i], t->sym[i + 1]};
            }
        }
        if (np == 0) {
            break;
        }
        qsort(pairs, np, sizeof *pairs, pair_cmp);
        struct pair best = pairs[0];
        size_t best_n = 0;
        for (size_t i = 0; i < np;) {
            size_t j = i;
            while (j < np && pairs[j].a == pairs[i].a && pairs[j].b == pairs[i].b) {
                j++;
            }
            if (j - i > best_n) {
                best_n = j - i;
                best = pairs[i];
            }
            i = j;
        }
        if (best_n < 2) {
            break;
        }
        char *text = concat(t->tok.v[best.a], "", t->tok.v[best.b]);
        if (!text) {
            err = LLEM_ENOMEM;
            break;
        }
        int id = find_token(&t->tok, text, first_mergeable);
        if (id < 0) {
            id = (int)t->tok.n;
            if (vstr_push(&t->tok, text)) {
                err = LLEM_ENOMEM;
                break;
            }
        } else {
            llem_free(text);
        }
        if (vstr_push(&t->merges, concat(t->tok.v[best.a], " ", t->tok.v[best.b]))) {
            err = LLEM_ENOMEM;
            break;
        }
        size_t o = 0;
        for (size_t i = 0; i < t->n_sym; i++) {
            if (i + 1 < t->n_sym && t->sym[i] == best.a && t->sym[i + 1] == best.b) {
                t->sym[o++] = id;
                i++;
            } else {
                t->sym[o++] = t->sym[i];
            }
        }
        t->n_sym = o;
    }
    llem_free(pairs);
    return err;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Splits the corpus into the trainer's words. BPE: runs of letters (with the preceding space
// as the GPT-2 'Ġ' symbol), runs of digits, single other characters, as the GPT-2 style
// pre-tokenizers would. SPM: whitespace-separated words with the '▁' prefix.
static enum llem_err load_corpus(struct trainer *t, bool spm)
{
    size_t n = sizeof corpus - 1;
    t->sym = llem_malloc((2 * n + 2) * sizeof *t->sym);
    if (!t->sym) {
        return LLEM_ENOMEM;
    }
    t->n_sym = 0;
    for (size_t i = 0; i < n;) {
        if (corpus[i] == ' ') {
            i++;
            continue;
        }
        bool space_before = i > 0 && corpus[i - 1] == ' ';
        size_t j = i + 1;
        if (spm) {
            while (j < n && corpus[j] != ' ') {
                j++;
            }
        } else if (is_alpha(corpus[i])) {
            while (j < n && is_alpha(corpus[j])) {
                j++;
            }
        } else if (corpus[i] >= '0' && corpus[i] <= '9') {
            while (j < n && corpus[j] >= '0' && corpus[j] <= '9') {
                j++;
            }
        }
        char sym[8];
        if (spm || (space_before && is_alpha(corpus[i]))) {
            if (spm) {
                memcpy(sym, "\xE2\x96\x81", 4); // U+2581 '▁'
            } else {
                byte_symbol(' ', sym);
            }
            int id = find_token(&t->tok, sym, 0);
            if (id < 0) {
                return LLEM_EINTERNAL; // every symbol was added up front
            }
            t->sym[t->n_sym++] = id;
        }
        for (size_t k = i; k < j; k++) {
            if (spm) {
                sym[0] = corpus[k];
                sym[1] = 0;
            } else {
                byte_symbol((unsigned char)corpus[k], sym);
            }
            int id = find_token(&t->tok, sym, 0);
            if (id < 0) {
                return LLEM_EINTERNAL;
            }
            t->sym[t->n_sym++] = id;
        }
        t->sym[t->n_sym++] = -1;
        i = j;
    }
    return LLEM_OK;
}

static char *dup_fmt_byte(unsigned b)
{
    char buf[8];
    snprintf(buf, sizeof buf, "<0x%02X>", b);
    return llem_strdup(buf);
}

static const char *const qwen_specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
static const char *const llama3_specials[] = {"<|begin_of_text|>", "<|end_of_text|>",
                                              "<|start_header_id|>", "<|end_header_id|>",
                                              "<|eot_id|>"};

// Builds the token list; fills types/scores (allocated here) and the special ids.
static enum llem_err build(struct trainer *t, enum synth_vocab_kind kind, size_t *n_base,
                           size_t *first_special)
{
    enum llem_err err;
    if (kind == SYNTH_VOCAB_SPM) {
        if (vstr_push(&t->tok, llem_strdup("<unk>")) || vstr_push(&t->tok, llem_strdup("<s>")) ||
            vstr_push(&t->tok, llem_strdup("</s>"))) {
            return LLEM_ENOMEM;
        }
        for (unsigned b = 0; b < 256; b++) {
            if (vstr_push(&t->tok, dup_fmt_byte(b))) {
                return LLEM_ENOMEM;
            }
        }
        *n_base = t->tok.n; // byte tokens end here; characters follow
        if (vstr_push(&t->tok, llem_strdup("\xE2\x96\x81"))) {
            return LLEM_ENOMEM;
        }
        bool seen[128] = {false};
        for (size_t i = 0; i + 1 < sizeof corpus; i++) {
            unsigned char c = (unsigned char)corpus[i];
            if (c != ' ' && c < 128 && !seen[c]) {
                seen[c] = true;
                char s[2] = {(char)c, 0};
                if (vstr_push(&t->tok, llem_strdup(s))) {
                    return LLEM_ENOMEM;
                }
            }
        }
    } else {
        for (unsigned b = 0; b < 256; b++) {
            char s[4];
            byte_symbol(b, s);
            if (vstr_push(&t->tok, llem_strdup(s))) {
                return LLEM_ENOMEM;
            }
        }
        *n_base = 0;
    }
    if ((err = load_corpus(t, kind == SYNTH_VOCAB_SPM)) != LLEM_OK) {
        return err;
    }
    if ((err = train(t, *n_base)) != LLEM_OK) {
        return err;
    }
    *first_special = t->tok.n;
    if (kind != SYNTH_VOCAB_SPM) {
        const char *const *names = kind == SYNTH_VOCAB_BPE_QWEN ? qwen_specials : llama3_specials;
        size_t ns = kind == SYNTH_VOCAB_BPE_QWEN ? 3 : 5;
        for (size_t i = 0; i < ns; i++) {
            if (vstr_push(&t->tok, llem_strdup(names[i]))) {
                return LLEM_ENOMEM;
            }
        }
    }
    return LLEM_OK;
}

#define KV(call)                                                                            \
    do {                                                                                    \
        if ((err = (call)) != LLEM_OK) {                                                    \
            goto done;                                                                      \
        }                                                                                   \
    } while (0)

enum llem_err synth_vocab_write(struct gguf_writer *w, enum synth_vocab_kind kind,
                                uint32_t pad_to, uint32_t *n_vocab, struct llem_errbuf *eb)
{
    struct trainer t = {0};
    size_t n_base = 0, first_special = 0;
    const char **all = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    char *padbuf = NULL;
    enum llem_err err = build(&t, kind, &n_base, &first_special);
    if (err) {
        goto done;
    }
    size_t n_real = t.tok.n;
    size_t n = n_real < pad_to ? pad_to : n_real;
    all = llem_calloc(n, sizeof *all);
    scores = llem_calloc(n, sizeof *scores);
    types = llem_calloc(n, sizeof *types);
    // "[PAD4294967295]" at most 16 bytes each, in one block instead of n allocations.
    padbuf = n > n_real ? llem_malloc((n - n_real) * 16) : NULL;
    if (!all || !scores || !types || (n > n_real && !padbuf)) {
        err = LLEM_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_real; i++) {
        all[i] = t.tok.v[i];
        types[i] = TT_NORMAL;
        scores[i] = 0.0f;
    }
    if (n > n_real) {
        log_info("gen: generated vocabulary of %zu tokens padded to %zu", n_real, n);
    }
    for (size_t i = n_real; i < n; i++) {
        char *p = padbuf + (i - n_real) * 16;
        snprintf(p, 16, "[PAD%u]", (unsigned)i);
        all[i] = p;
        types[i] = TT_UNUSED;
    }
    if (kind == SYNTH_VOCAB_SPM) {
        types[0] = TT_UNKNOWN;
        types[1] = types[2] = TT_CONTROL;
        for (size_t i = 3; i < n_base; i++) {
            types[i] = TT_BYTE;
        }
        // SentencePiece merges the bigram whose result scores highest: earlier merges first.
        for (size_t i = n_base; i < n_real; i++) {
            scores[i] = -(float)(i - n_base);
        }
        KV(gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
        KV(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", all, n));
        KV(gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VALUE_FLOAT32, scores, n));
        KV(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VALUE_INT32, types, n));
        KV(gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0));
        KV(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1));
        KV(gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2));
        KV(gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true));
        KV(gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false));
    } else {
        bool qwen = kind == SYNTH_VOCAB_BPE_QWEN;
        uint32_t s0 = (uint32_t)first_special;
        for (size_t i = first_special; i < n_real; i++) {
            types[i] = TT_CONTROL;
        }
        KV(gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"));
        KV(gguf_writer_set_str(w, "tokenizer.ggml.pre", qwen ? "qwen2" : "llama-bpe"));
        KV(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", all, n));
        KV(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VALUE_INT32, types, n));
        KV(gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)t.merges.v,
                                   t.merges.n));
        if (qwen) { // <|endoftext|> is BOS and padding, <|im_end|> ends a turn
            KV(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", s0));
            KV(gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", s0 + 2));
            KV(gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", s0));
            KV(gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false));
        } else {
            KV(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", s0));
            KV(gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", s0 + 1));
            KV(gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", s0 + 4));
            KV(gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true));
        }
    }
    *n_vocab = (uint32_t)n;
done:
    if (err) {
        llem_errf(eb, err, "generated vocabulary: %s", llem_err_str(err));
    }
    llem_free(padbuf);
    llem_free(types);
    llem_free(scores);
    llem_free(all);
    llem_free(t.sym);
    vstr_deinit(&t.merges);
    vstr_deinit(&t.tok);
    return err;
}
