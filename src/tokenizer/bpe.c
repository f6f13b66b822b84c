// tokenizer/bpe.c: byte-level BPE ("gpt2"): the pre-tokenizer (regexes chosen by
// tokenizer.ggml.pre, compiled once per vocab with PCRE2 UTF+UCP+JIT, applied in sequence as
// llama.cpp does: each regex splits every piece of the previous split into matches and the
// gaps between them) and rank-ordered merging with a binary heap over a linked list of symbols.
// Entry points: tok_pretok_new/free/split, tok_bpe_encode.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/tokenizer_int.h"

// ---- pre-tokenizer regexes (the patterns are llama.cpp's, as facts of each model family) ----

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_PORO " ?[^(\\s|.,!?…。，、।۔،)]+"
#define RE_CJK "[一-龥ࠀ-一가-퟿]+"

static const char *const re_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+",
                                         "[0-9][0-9][0-9]", NULL};
static const char *const re_llama3[] = {RE_LLAMA3, NULL};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    RE_CJK,
    "\\p{N}+",
    NULL};
static const char *const re_deepseek3[] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_deepseek_coder[] = {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK,
                                                "\\p{N}", NULL};
static const char *const re_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]",
                                        NULL};
static const char *const re_starcoder[] = {"\\p{N}", RE_GPT2, NULL};
static const char *const re_gpt2[] = {RE_GPT2, NULL};
static const char *const re_qwen2[] = {RE_QWEN2, NULL};
static const char *const re_poro[] = {RE_PORO, NULL};
static const char *const re_viking[] = {RE_PORO, "\\p{N}", NULL};
static const char *const re_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_chameleon[] = {
    "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2, NULL};

enum pre_flag { PRE_IGNORE_MERGES = 1, PRE_ADD_BOS = 2, PRE_NO_BOS = 4 };

static const struct pre_def {
    const char *name;
    const char *const *re;
    unsigned flags;
} pre_defs[] = {
    {"default", re_default, 0},
    {"llama3", re_llama3, PRE_IGNORE_MERGES | PRE_ADD_BOS},
    {"llama-v3", re_llama3, PRE_IGNORE_MERGES | PRE_ADD_BOS},
    {"llama-bpe", re_llama3, PRE_IGNORE_MERGES | PRE_ADD_BOS},
    {"falcon3", re_llama3, PRE_IGNORE_MERGES | PRE_ADD_BOS},
    {"dbrx", re_llama3, 0},
    {"smaug-bpe", re_llama3, 0},
    {"deepseek-llm", re_deepseek_llm, 0},
    {"deepseek-coder", re_deepseek_coder, 0},
    {"deepseek-v3", re_deepseek3, 0},
    {"falcon", re_falcon, 0},
    {"starcoder", re_starcoder, 0},
    {"refact", re_starcoder, 0},
    {"command-r", re_starcoder, 0},
    {"smollm", re_starcoder, 0},
    {"codeshell", re_starcoder, 0},
    {"exaone", re_starcoder, 0},
    {"minerva-7b", re_starcoder, 0},
    {"gpt-2", re_gpt2, 0},
    {"gpt2", re_gpt2, 0},
    {"gpt-neox", re_gpt2, 0},
    {"phi-2", re_gpt2, 0},
    {"mpt", re_gpt2, 0},
    {"olmo", re_gpt2, 0},
    {"jais", re_gpt2, 0},
    {"jina-es", re_gpt2, 0},
    {"jina-de", re_gpt2, 0},
    {"jina-v1-en", re_gpt2, 0},
    {"jina-v2-es", re_gpt2, 0},
    {"jina-v2-de", re_gpt2, 0},
    {"jina-v2-code", re_gpt2, 0},
    {"gigachat", re_gpt2, 0},
    {"roberta-bpe", re_gpt2, 0},
    {"qwen2", re_qwen2, 0},
    {"deepseek-r1-qwen", re_qwen2, 0},
    {"megrez", re_qwen2, 0},
    {"stablelm2", re_qwen2, 0},
    {"poro-chat", re_poro, 0},
    {"bloom", re_poro, 0},
    {"gpt3-finnish", re_poro, 0},
    {"viking", re_viking, 0},
    {"chatglm-bpe", re_llama3, PRE_NO_BOS},
    {"tekken", re_tekken, PRE_IGNORE_MERGES | PRE_ADD_BOS},
    {"chameleon", re_chameleon, PRE_ADD_BOS},
};

#define PRETOK_MAX_RE 8

struct tok_pretok {
    pcre2_general_context *gctx;
    pcre2_code *code[PRETOK_MAX_RE];
    int n_re;
};

// PCRE2 allocates through llem's allocator, so its memory is counted and fault-injectable.
static void *pc_alloc(PCRE2_SIZE n, void *ud)
{
    (void)ud;
    return llem_malloc(n);
}

static void pc_release(void *p, void *ud)
{
    (void)ud;
    llem_free(p);
}

void tok_pretok_free(struct tok_pretok *p)
{
    if (!p) {
        return;
    }
    for (int i = 0; i < p->n_re; i++) {
        pcre2_code_free(p->code[i]);
    }
    pcre2_general_context_free(p->gctx);
    llem_free(p);
}

enum llem_err tok_pretok_new(struct tok_vocab *v, const char *name, struct llem_errbuf *eb)
{
    const struct pre_def *def = NULL;
    for (size_t i = 0; i < LLEM_ARRAY_LEN(pre_defs); i++) {
        if (strcmp(pre_defs[i].name, name) == 0) {
            def = &pre_defs[i];
            break;
        }
    }
    if (!def) {
        return llem_errf(eb, LLEM_EUNSUPPORTED, "tokenizer.ggml.pre '%.60s' is not supported",
                         name);
    }
    struct tok_pretok *p = llem_calloc(1, sizeof *p);
    if (!p) {
        return llem_errf(eb, LLEM_ENOMEM, "tokenizer: out of memory");
    }
    p->gctx = pcre2_general_context_create(pc_alloc, pc_release, NULL);
    pcre2_compile_context *cctx = p->gctx ? pcre2_compile_context_create(p->gctx) : NULL;
    if (!cctx) {
        tok_pretok_free(p);
        return llem_errf(eb, LLEM_ENOMEM, "tokenizer: out of memory");
    }
    enum llem_err e = LLEM_OK;
    for (int i = 0; def->re[i]; i++) {
        LLEM_ASSERT(i < PRETOK_MAX_RE);
        int err;
        PCRE2_SIZE erroff;
        // DOLLAR_ENDONLY: '$' means the end of the piece, as in ECMAScript regexes.
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)def->re[i], PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err,
                                      &erroff, cctx);
        if (!c) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(err, msg, sizeof msg);
            e = llem_errf(eb, err == PCRE2_ERROR_HEAPLIMIT || err == PCRE2_ERROR_NOMEMORY
                              ? LLEM_ENOMEM : LLEM_EINTERNAL,
                          "pre-tokenizer '%s' regex %d: %s at %zu", name, i, (char *)msg,
                          (size_t)erroff);
            break;
        }
        p->code[p->n_re++] = c;
        (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); // falls back to the interpreter
    }
    pcre2_compile_context_free(cctx);
    if (e) {
        tok_pretok_free(p);
        return e;
    }
    v->pretok = p;
    if (def->flags & PRE_IGNORE_MERGES) {
        v->ignore_merges = true;
    }
    if (def->flags & PRE_ADD_BOS) {
        v->add_bos = true;
    }
    if (def->flags & PRE_NO_BOS) {
        v->special[TOK_SPECIAL_BOS] = -1;
    }
    return LLEM_OK;
}

// ---- splitting -------------------------------------------------------------------------------

struct matcher {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    pcre2_general_context *gctx;
};

static int run_match(struct matcher *m, const pcre2_code *c, const char *s, size_t len,
                     size_t start)
{
    int rc = pcre2_match(c, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK, m->md, m->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !m->jstack) {
        // very long runs of one class: retry with a larger JIT stack (heap, up to 64 MiB)
        m->mctx = pcre2_match_context_create(m->gctx);
        m->jstack = m->mctx ? pcre2_jit_stack_create(1 << 16, 64 << 20, m->gctx) : NULL;
        if (!m->jstack) {
            return PCRE2_ERROR_NOMEMORY;
        }
        pcre2_jit_stack_assign(m->mctx, NULL, m->jstack);
        rc = pcre2_match(c, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK, m->md, m->mctx);
    }
    return rc;
}

struct split_ctx {
    const struct tok_pretok *p;
    struct matcher m;
    const char *text;
    enum llem_err (*fn)(size_t off, size_t len, void *ctx);
    void *fn_ctx;
    struct llem_errbuf *eb;
};

static enum llem_err split_level(struct split_ctx *sc, int level, size_t off, size_t len);

// Passes a non-empty piece on to the next regex, or to the callback after the last one.
static enum llem_err split_emit(struct split_ctx *sc, int level, size_t off, size_t len)
{
    if (len == 0) {
        return LLEM_OK;
    }
    if (level + 1 < sc->p->n_re) {
        return split_level(sc, level + 1, off, len);
    }
    enum llem_err e = sc->fn(off, len, sc->fn_ctx);
    if (e == LLEM_ENOMEM) {
        llem_errf(sc->eb, e, "tokenizer: out of memory");
    }
    return e;
}

// Splits text[off..off+len) with regex `level` into matches and the gaps between them, each
// passed on at once. Depth first, this yields the pieces in the same order as applying each
// regex to the whole list of pieces of the previous one (llama.cpp's order), with no lists.
static enum llem_err split_level(struct split_ctx *sc, int level, size_t off, size_t len)
{
    const pcre2_code *c = sc->p->code[level];
    const char *sub = sc->text + off;
    size_t pos = 0, last = 0;
    enum llem_err e;
    while (pos < len) {
        int rc = run_match(&sc->m, c, sub, len, pos);
        if (rc == PCRE2_ERROR_NOMATCH) {
            break;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return llem_errf(sc->eb, rc == PCRE2_ERROR_NOMEMORY ? LLEM_ENOMEM : LLEM_EINTERNAL,
                             "pre-tokenizer: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->m.md);
        size_t ms = ov[0], me = ov[1]; // copied: deeper levels reuse the match data
        if (me == ms) { // empty match: step over one character
            pos = ms + 1;
            while (pos < len && ((uint8_t)sub[pos] & 0xC0) == 0x80) {
                pos++;
            }
            continue;
        }
        if ((e = split_emit(sc, level, off + last, ms - last)) ||
            (e = split_emit(sc, level, off + ms, me - ms))) {
            return e;
        }
        last = pos = me;
    }
    return split_emit(sc, level, off + last, len - last);
}

enum llem_err tok_pretok_split(const struct tok_pretok *p, const char *text, size_t len,
                               enum llem_err (*fn)(size_t off, size_t len, void *ctx),
                               void *ctx, struct llem_errbuf *eb)
{
    struct split_ctx sc = {.p = p, .m = {.gctx = p->gctx}, .text = text, .fn = fn,
                           .fn_ctx = ctx, .eb = eb};
    enum llem_err e = LLEM_OK;
    sc.m.md = pcre2_match_data_create(1, p->gctx);
    if (!sc.m.md) {
        e = llem_errf(eb, LLEM_ENOMEM, "pre-tokenizer: out of memory");
    } else if (len) {
        e = p->n_re ? split_level(&sc, 0, 0, len) : split_emit(&sc, -1, 0, len);
    }
    pcre2_match_data_free(sc.m.md);
    pcre2_jit_stack_free(sc.m.jstack);
    pcre2_match_context_free(sc.m.mctx);
    return e;
}

// ---- merging ---------------------------------------------------------------------------------

struct bigram {
    int32_t rank, left, right, idl, idr, res;
};

struct bpe_ctx {
    const struct tok_vocab *v;
    const char *s; // the cleaned text
    struct tok_vec *out;
    // per-word scratch, grown as needed
    int32_t *id, *prev, *next, *len;
    size_t sym_cap;
    struct bigram *heap;
    size_t heap_n, heap_cap;
    char *enc;
    size_t enc_cap;
};

static bool merge_find(const struct tok_vocab *v, int32_t l, int32_t r, int32_t *rank,
                       int32_t *res)
{
    const struct tok_mergemap *m = &v->merges;
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    for (uint32_t i = tok_mix64(key) & m->mask;; i = (i + 1) & m->mask) {
        const struct tok_mergeslot *e = &m->slot[i];
        if (e->key == key) {
            *rank = e->rank;
            *res = e->result;
            return true;
        }
        if (e->key == 0) {
            return false;
        }
    }
}

static bool bigram_less(const struct bigram *a, const struct bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static enum llem_err heap_push(struct bpe_ctx *c, struct bigram g)
{
    if (c->heap_n == c->heap_cap) {
        size_t ncap = c->heap_cap ? c->heap_cap * 2 : 256;
        struct bigram *nh = llem_realloc(c->heap, ncap * sizeof *nh);
        if (!nh) {
            return LLEM_ENOMEM;
        }
        c->heap = nh;
        c->heap_cap = ncap;
    }
    size_t i = c->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_less(&g, &c->heap[p])) {
            break;
        }
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = g;
    return LLEM_OK;
}

static struct bigram heap_pop(struct bpe_ctx *c)
{
    struct bigram top = c->heap[0], last = c->heap[--c->heap_n];
    size_t i = 0, n = c->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct bigram *best = &last;
        if (l < n && bigram_less(&c->heap[l], best)) {
            m = l;
            best = &c->heap[l];
        }
        if (r < n && bigram_less(&c->heap[r], best)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (n) {
        c->heap[i] = last;
    }
    return top;
}

static enum llem_err try_pair(struct bpe_ctx *c, int32_t l, int32_t r)
{
    if (l < 0 || r < 0 || c->id[l] < 0 || c->id[r] < 0) {
        return LLEM_OK;
    }
    int32_t rank, res;
    if (!merge_find(c->v, c->id[l], c->id[r], &rank, &res)) {
        return LLEM_OK;
    }
    return heap_push(c, (struct bigram){rank, l, r, c->id[l], c->id[r], res});
}

// The byte-level (GPT-2 alphabet) spelling of bytes s[0..n) into c->enc.
static enum llem_err encode_bytes(struct bpe_ctx *c, const char *s, size_t n, size_t *out_n)
{
    if (n * 2 > c->enc_cap) {
        size_t cap = n * 4 > 256 ? n * 4 : 256; // words are short: few regrowths per call
        char *ne = llem_realloc(c->enc, cap);
        if (!ne) {
            return LLEM_ENOMEM;
        }
        c->enc = ne;
        c->enc_cap = cap;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_byte_to_cp((uint8_t)s[i]);
        if (cp < 0x80) {
            c->enc[k++] = (char)cp;
        } else {
            c->enc[k++] = (char)(0xC0 | (cp >> 6));
            c->enc[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    *out_n = k;
    return LLEM_OK;
}

static enum llem_err emit_symbol(struct bpe_ctx *c, int32_t id, const char *s, size_t n)
{
    const struct tok_vocab *v = c->v;
    if (id >= 0 && id < v->n_vocab) {
        return tok_vec_push(c->out, id);
    }
    // not a token: upstream emits the single-byte tokens of its spelling, where they exist
    size_t k;
    enum llem_err e = encode_bytes(c, s, n, &k);
    for (size_t i = 0; !e && i < k; i++) {
        int32_t t = tok_strmap_find(v, c->enc + i, 1);
        if (t >= 0 && t < v->n_vocab) {
            e = tok_vec_push(c->out, t);
        }
    }
    return e;
}

static enum llem_err bpe_word(size_t off, size_t n, void *ctx)
{
    struct bpe_ctx *c = ctx;
    const struct tok_vocab *v = c->v;
    const char *w = c->s + off;
    enum llem_err e;
    if (v->ignore_merges) {
        size_t k;
        if ((e = encode_bytes(c, w, n, &k))) {
            return e;
        }
        int32_t id = tok_strmap_find(v, c->enc, k);
        if (id >= 0 && id < v->n_vocab) {
            return tok_vec_push(c->out, id);
        }
    }
    if (n > c->sym_cap) {
        size_t cap = n * 2 > 64 ? n * 2 : 64;
        int32_t *a = llem_realloc(c->id, cap * 4 * sizeof *a);
        if (!a) {
            return LLEM_ENOMEM;
        }
        c->id = a;
        c->prev = a + cap;
        c->next = a + 2 * cap;
        c->len = a + 3 * cap;
        c->sym_cap = cap;
    }
    // one symbol per byte: each byte is one character of the GPT-2 alphabet
    for (size_t i = 0; i < n; i++) {
        c->id[i] = v->bpe_byte_id[(uint8_t)w[i]];
        c->prev[i] = (int32_t)i - 1;
        c->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        c->len[i] = 1;
    }
    c->heap_n = 0;
    for (size_t i = 1; i < n; i++) {
        if ((e = try_pair(c, (int32_t)i - 1, (int32_t)i))) {
            return e;
        }
    }
    while (c->heap_n) {
        struct bigram g = heap_pop(c);
        int32_t l = g.left, r = g.right;
        if (c->len[l] == 0 || c->len[r] == 0 || c->id[l] != g.idl || c->id[r] != g.idr ||
            c->next[l] != r) {
            continue; // stale: one side changed since this pair was queued
        }
        c->id[l] = g.res;
        c->len[l] += c->len[r];
        c->len[r] = 0;
        c->next[l] = c->next[r];
        if (c->next[r] >= 0) {
            c->prev[c->next[r]] = l;
        }
        if ((e = try_pair(c, c->prev[l], l)) || (e = try_pair(c, l, c->next[l]))) {
            return e;
        }
    }
    size_t pos = 0;
    for (int32_t i = 0; i >= 0; i = c->next[i]) {
        if ((e = emit_symbol(c, c->id[i], w + pos, (size_t)c->len[i]))) {
            return e;
        }
        pos += (size_t)c->len[i];
    }
    return LLEM_OK;
}

enum llem_err tok_bpe_encode(const struct tok_vocab *v, const char *text, size_t len,
                             struct tok_vec *out, struct llem_errbuf *eb)
{
    // Re-encode the text the way upstream sees it: malformed bytes become U+FFFD, overlong
    // forms their shortest form. Surrogates keep their 3 bytes but the regex engine sees
    // U+FFFD in their place (same length), since PCRE2 needs valid UTF-8.
    size_t cap = len * 3 + 1;
    char *clean = llem_malloc(cap);
    char *view = NULL;
    if (!clean) {
        return llem_errf(eb, LLEM_ENOMEM, "tokenizer: out of memory");
    }
    size_t n = 0;
    bool surrogates = false;
    for (size_t off = 0; off < len;) {
        uint32_t cp = tok_utf8_next(text, len, &off);
        if (cp < 0x80) {
            clean[n++] = (char)cp;
        } else if (cp < 0x800) {
            clean[n++] = (char)(0xC0 | (cp >> 6));
            clean[n++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            surrogates |= cp >= 0xD800 && cp <= 0xDFFF;
            clean[n++] = (char)(0xE0 | (cp >> 12));
            clean[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            clean[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            clean[n++] = (char)(0xF0 | (cp >> 18));
            clean[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            clean[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            clean[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    const char *rx = clean;
    if (surrogates) {
        view = llem_malloc(n + 1);
        if (!view) {
            llem_free(clean);
            return llem_errf(eb, LLEM_ENOMEM, "tokenizer: out of memory");
        }
        memcpy(view, clean, n);
        for (size_t i = 0; i + 2 < n; i++) {
            if ((uint8_t)view[i] == 0xED && (uint8_t)view[i + 1] >= 0xA0) {
                view[i] = (char)0xEF;
                view[i + 1] = (char)0xBF;
                view[i + 2] = (char)0xBD;
                i += 2;
            }
        }
        rx = view;
    }
    struct bpe_ctx c = {.v = v, .s = clean, .out = out};
    enum llem_err e = tok_pretok_split(v->pretok, rx, n, bpe_word, &c, eb);
    llem_free(c.id);
    llem_free(c.heap);
    llem_free(c.enc);
    llem_free(view);
    llem_free(clean);
    return e;
}
