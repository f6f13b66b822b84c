// tokenizer/encode.c: text -> token ids. tok_encode splits special-token texts out of the
// input (longest first, as llama.cpp does), then runs the model's encoder on each plain-text
// fragment: SentencePiece score merging and WordPiece greedy matching live here, byte-level
// BPE in bpe.c. All scratch memory is per call, so encodes may run concurrently.
#include <ctype.h>
#include <string.h>
#include <utf8proc.h>

#include "base/alloc.h"
#include "tokenizer/tokenizer_int.h"

// ---- special-token partition ---------------------------------------------------------------

struct frag {
    llem_token token; // -1 for raw text
    size_t off, len;
};

struct frags {
    struct frag *a;
    size_t n, cap;
};

static enum llem_err frags_push(struct frags *f, llem_token token, size_t off, size_t len)
{
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 16;
        struct frag *na = llem_realloc(f->a, ncap * sizeof *na);
        if (!na) {
            return LLEM_ENOMEM;
        }
        f->a = na;
        f->cap = ncap;
    }
    f->a[f->n++] = (struct frag){token, off, len};
    return LLEM_OK;
}

static bool is_space(char c)
{
    return isspace((unsigned char)c) != 0;
}

// Splits every raw fragment of `in` at each occurrence of special token `id` into `out`.
static enum llem_err split_special(const struct tok_vocab *v, llem_token id, const char *text,
                                   const struct frags *in, struct frags *out)
{
    const char *t = v->blob + v->text_off[id];
    size_t tl = v->text_len[id];
    uint16_t attr = v->attr[id];
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        struct frag f = in->a[k];
        if (f.token >= 0 || f.len < tl) {
            if (frags_push(out, f.token, f.off, f.len)) {
                return LLEM_ENOMEM;
            }
            continue;
        }
        size_t off = f.off, end = f.off + f.len;
        while (off < end) {
            const char *m = memmem(text + off, end - off, t, tl);
            if (!m) {
                break;
            }
            size_t ms = (size_t)(m - text), left_len = ms - off;
            if (attr & TOK_ATTR_LSTRIP) {
                while (left_len > 0 && is_space(text[off + left_len - 1])) {
                    left_len--;
                }
            }
            if ((left_len && frags_push(out, -1, off, left_len)) || frags_push(out, id, 0, 0)) {
                return LLEM_ENOMEM;
            }
            off = ms + tl;
            if (attr & TOK_ATTR_RSTRIP) {
                while (off < end && is_space(text[off])) {
                    off++;
                }
            }
        }
        if (off < end && frags_push(out, -1, off, end - off)) {
            return LLEM_ENOMEM;
        }
    }
    return LLEM_OK;
}

static enum llem_err partition(const struct tok_vocab *v, const char *text, size_t len,
                               bool parse_special, struct frags *res)
{
    struct frags a = {0}, b = {0};
    enum llem_err e = LLEM_OK;
    if (len && (e = frags_push(&a, -1, 0, len))) {
        goto done;
    }
    for (int32_t i = 0; i < v->n_specials && a.n; i++) {
        llem_token id = v->specials[i];
        if (!parse_special && (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) {
            continue; // user-defined tokens are split out even from plain text
        }
        if ((e = split_special(v, id, text, &a, &b))) {
            goto done;
        }
        struct frags t = a;
        a = b;
        b = t;
    }
done:
    llem_free(b.a);
    if (e) {
        llem_free(a.a);
        a = (struct frags){0};
    }
    *res = a;
    return e;
}

// ---- SentencePiece ---------------------------------------------------------------------------

struct spm_sym {
    int32_t prev, next;
    uint32_t start, n; // bytes of the escaped text; n == 0 once merged away
};

struct spm_bigram {
    float score;
    int32_t left, right;
    uint32_t size;
};

struct spm_ctx {
    const struct tok_vocab *v;
    const char *s;
    struct spm_sym *sym;
    struct spm_bigram *heap;
    size_t heap_n, heap_cap;
};

// Highest score first; on equal scores the leftmost pair.
static bool spm_before(const struct spm_bigram *a, const struct spm_bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static enum llem_err spm_try(struct spm_ctx *c, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) {
        return LLEM_OK;
    }
    uint32_t size = c->sym[l].n + c->sym[r].n;
    int32_t id = tok_strmap_find(c->v, c->s + c->sym[l].start, size);
    if (id < 0 || id >= c->v->n_vocab) {
        return LLEM_OK;
    }
    if (c->heap_n == c->heap_cap) {
        size_t ncap = c->heap_cap ? c->heap_cap * 2 : 256;
        struct spm_bigram *nh = llem_realloc(c->heap, ncap * sizeof *nh);
        if (!nh) {
            return LLEM_ENOMEM;
        }
        c->heap = nh;
        c->heap_cap = ncap;
    }
    struct spm_bigram g = {c->v->scores[id], l, r, size};
    size_t i = c->heap_n++;
    while (i > 0 && spm_before(&g, &c->heap[(i - 1) / 2])) {
        c->heap[i] = c->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    c->heap[i] = g;
    return LLEM_OK;
}

static struct spm_bigram spm_pop(struct spm_ctx *c)
{
    struct spm_bigram top = c->heap[0], last = c->heap[--c->heap_n];
    size_t i = 0, n = c->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct spm_bigram *best = &last;
        if (l < n && spm_before(&c->heap[l], best)) {
            m = l;
            best = &c->heap[l];
        }
        if (r < n && spm_before(&c->heap[r], best)) {
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

// A segment starts at symbol i when it is exactly "▁" and the 3 bytes before it are not "▁".
// With a vocab where "▁" is only ever preceded by "▁" inside a token (v->spm_split), no
// token can span such a point, so the segments can be merged independently: each merge order
// restricted to one segment is the same as in one heap over the whole text.
static bool spm_boundary(const char *s, const struct spm_sym *sym, int32_t i)
{
    const char *p = s + sym[i].start;
    return sym[i].n == 3 && memcmp(p, "\xe2\x96\x81", 3) == 0 &&
           (sym[i].start < 3 || memcmp(p - 3, "\xe2\x96\x81", 3) != 0);
}

// Merges the linked symbols [first, end) by score and appends their ids to out.
static enum llem_err spm_segment(struct spm_ctx *c, int32_t first, int32_t end,
                                 struct tok_vec *out)
{
    const struct tok_vocab *v = c->v;
    struct spm_sym *sym = c->sym;
    const char *s = c->s;
    enum llem_err e = LLEM_OK;
    c->heap_n = 0;
    for (int32_t i = first + 1; i < end; i++) {
        if ((e = spm_try(c, i - 1, i))) {
            return e;
        }
    }
    while (c->heap_n) {
        struct spm_bigram g = spm_pop(c);
        struct spm_sym *l = &sym[g.left], *r = &sym[g.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != g.size) {
            continue; // stale
        }
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) {
            sym[r->next].prev = g.left;
        }
        if ((e = spm_try(c, l->prev, g.left)) || (e = spm_try(c, g.left, l->next))) {
            return e;
        }
    }
    for (int32_t i = first; i >= 0 && !e; i = sym[i].next) {
        int32_t id = tok_strmap_find(v, s + sym[i].start, sym[i].n);
        if (id >= 0 && id < v->n_vocab) {
            e = tok_vec_push(out, id);
            continue;
        }
        for (uint32_t k = 0; k < sym[i].n && !e; k++) { // byte fallback
            llem_token b = v->byte_tok[(uint8_t)s[sym[i].start + k]];
            if (b >= 0) {
                e = tok_vec_push(out, b);
            }
        }
    }
    return e;
}

enum llem_err tok_spm_encode(const struct tok_vocab *v, const char *text, size_t len,
                             bool space_prefix, struct tok_vec *out)
{
    if (len > (UINT32_MAX - 3) / 3) {
        return LLEM_ELIMIT;
    }
    // escape: optional dummy prefix, every space as "▁"
    char *s = llem_malloc(len * 3 + 3);
    struct spm_sym *sym = NULL;
    enum llem_err e = LLEM_OK;
    struct spm_ctx c = {.v = v, .s = s};
    if (!s) {
        e = LLEM_ENOMEM;
        goto done;
    }
    size_t n = 0;
    if (space_prefix) {
        memcpy(s, "\xe2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            s[n++] = text[i];
        }
    }
    // one symbol per UTF-8 character (length from the lead byte only, as upstream); with
    // malformed input a lead byte can swallow part of a "▁", so allow one symbol per byte
    c.sym = sym = llem_malloc((n + 1) * sizeof *sym);
    if (!sym) {
        e = LLEM_ENOMEM;
        goto done;
    }
    static const uint8_t lead_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = lead_len[(uint8_t)s[off] >> 4];
        if (cl > n - off) {
            cl = n - off;
        }
        sym[ns] = (struct spm_sym){ns - 1, -1, (uint32_t)off, (uint32_t)cl};
        if (ns > 0) {
            sym[ns - 1].next = ns;
        }
        ns++;
        off += cl;
    }
    // Merge each segment between word boundaries on its own (a small heap each), then emit it.
    for (int32_t seg = 0; seg < ns && !e;) {
        int32_t end = seg + 1;
        if (v->spm_split) {
            while (end < ns && !spm_boundary(s, sym, end)) {
                end++;
            }
        } else {
            end = ns;
        }
        sym[seg].prev = -1;
        sym[end - 1].next = -1;
        e = spm_segment(&c, seg, end, out);
        seg = end;
    }
done:
    llem_free(c.heap);
    llem_free(sym);
    llem_free(s);
    return e;
}

// ---- WordPiece -------------------------------------------------------------------------------

static bool wpm_is_whitespace(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static bool wpm_is_chinese(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// The first code point of the canonical decomposition (accents dropped), as upstream's table.
static uint32_t wpm_nfd_first(uint32_t cp)
{
    utf8proc_int32_t dst[32];
    int bound = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)cp, dst, 32,
                                                 UTF8PROC_DECOMPOSE, &bound);
    return n >= 1 ? (uint32_t)dst[0] : cp;
}

// Greedy longest-match of "▁" + word; the whole word becomes [UNK] if any position fails.
static enum llem_err wpm_word(const struct tok_vocab *v, const char *w, size_t n,
                              struct tok_vec *out)
{
    size_t mark = out->n;
    for (size_t i = 0; i < n;) {
        size_t j = i + v->max_token_len + 1 < n ? i + v->max_token_len + 1 : n;
        int32_t id = -1;
        for (; j > i; j--) {
            id = tok_strmap_find(v, w + i, j - i);
            if (id >= 0 && id < v->n_vocab) {
                break;
            }
        }
        if (j == i) {
            out->n = mark;
            break;
        }
        enum llem_err e = tok_vec_push(out, id);
        if (e) {
            return e;
        }
        i = j;
    }
    if (out->n == mark && v->special[TOK_SPECIAL_UNK] >= 0) {
        return tok_vec_push(out, v->special[TOK_SPECIAL_UNK]);
    }
    return LLEM_OK;
}

enum llem_err tok_wpm_encode(const struct tok_vocab *v, const char *text, size_t len,
                             struct tok_vec *out)
{
    // Each input byte yields at most one code point of at most 4 bytes; words get a 3-byte
    // "▁" prefix, and there are at most len words.
    if (len > SIZE_MAX / 8) {
        return LLEM_ELIMIT;
    }
    char *buf = llem_malloc(len * 8 + 8);
    if (!buf) {
        return LLEM_ENOMEM;
    }
    enum llem_err e = LLEM_OK;
    size_t wstart = 0, n = 0; // current word: buf[wstart..n), beginning with "▁"
    bool in_word = false;
    for (size_t off = 0; off < len && !e;) {
        uint32_t cp = wpm_nfd_first(tok_utf8_next(text, len, &off));
        if (wpm_is_whitespace(cp)) {
            if (in_word) {
                e = wpm_word(v, buf + wstart, n - wstart, out);
                in_word = false;
            }
            continue;
        }
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
        if (cp == 0 || cp == 0xFFFD || cat == UTF8PROC_CATEGORY_CC ||
            cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO ||
            cat == UTF8PROC_CATEGORY_CS) {
            continue;
        }
        bool punct = cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
        bool sym = cat >= UTF8PROC_CATEGORY_SM && cat <= UTF8PROC_CATEGORY_SO;
        bool alone = punct || (cp < 0x7F && sym) || wpm_is_chinese(cp);
        if (alone && in_word) {
            e = wpm_word(v, buf + wstart, n - wstart, out);
            in_word = false;
            if (e) {
                break;
            }
        }
        if (!in_word) {
            n = 0;
            memcpy(buf, "\xe2\x96\x81", 3);
            n = 3;
            wstart = 0;
            in_word = true;
        }
        utf8proc_int32_t lower = utf8proc_tolower((utf8proc_int32_t)cp);
        n += (size_t)utf8proc_encode_char(lower, (utf8proc_uint8_t *)buf + n);
        if (alone) {
            e = wpm_word(v, buf + wstart, n - wstart, out);
            in_word = false;
        }
    }
    if (!e && in_word) {
        e = wpm_word(v, buf + wstart, n - wstart, out);
    }
    llem_free(buf);
    return e;
}

// ---- entry point -----------------------------------------------------------------------------

static enum llem_err encode_all(const struct tok_vocab *v, const char *text, size_t len,
                                bool add_special, bool parse_special, struct tok_vec *out,
                                struct llem_errbuf *eb)
{
    struct frags fr;
    enum llem_err e = partition(v, text, len, parse_special, &fr);
    if (e) {
        return llem_errf(eb, e, "tokenizer: out of memory");
    }
    const llem_token bos = v->special[TOK_SPECIAL_BOS], eos = v->special[TOK_SPECIAL_EOS];
    bool prev_special = true; // SPM: a dummy prefix before the first text fragment
    if (add_special) {
        if (v->model == TOK_MODEL_WPM ? bos >= 0 : (v->add_bos && bos >= 0)) {
            e = tok_vec_push(out, bos);
        }
    }
    for (size_t i = 0; i < fr.n && !e; i++) {
        const struct frag *f = &fr.a[i];
        if (f->token >= 0) {
            e = tok_vec_push(out, f->token);
            prev_special = true;
            continue;
        }
        switch (v->model) {
        case TOK_MODEL_SPM:
            e = tok_spm_encode(v, text + f->off, f->len, v->add_space_prefix && prev_special,
                               out);
            break;
        case TOK_MODEL_BPE:
            e = tok_bpe_encode(v, text + f->off, f->len, out, eb);
            break;
        case TOK_MODEL_WPM:
            e = tok_wpm_encode(v, text + f->off, f->len, out);
            break;
        }
        prev_special = false;
    }
    if (!e && add_special) {
        if (v->model == TOK_MODEL_WPM) {
            if (v->special[TOK_SPECIAL_SEP] >= 0) {
                e = tok_vec_push(out, v->special[TOK_SPECIAL_SEP]);
            }
        } else if (v->add_eos && eos >= 0) {
            e = tok_vec_push(out, eos);
        }
    }
    llem_free(fr.a);
    if (e && (!eb || eb->code != e)) {
        llem_errf(eb, e, "tokenizer: %s", e == LLEM_ELIMIT ? "text too long" : llem_err_str(e));
    }
    return e;
}

enum llem_err tok_encode(const struct tok_vocab *v, const char *text, size_t len,
                         bool add_special, bool parse_special, llem_token *out, size_t n_max,
                         size_t *n_out, struct llem_errbuf *eb)
{
    // ids go straight to the caller's buffer; only when it overflows (LLEM_ELIMIT) are they
    // counted in a heap copy
    struct tok_vec tv = {.data = out, .cap = out ? n_max : 0, .ext = true};
    *n_out = 0;
    if (eb) {
        eb->code = LLEM_OK;
    }
    enum llem_err e = encode_all(v, text, len, add_special, parse_special, &tv, eb);
    if (!e) {
        *n_out = tv.n;
        if (tv.n > n_max) {
            e = llem_errf(eb, LLEM_ELIMIT, "tokenize: %zu tokens do not fit in %zu", tv.n,
                          n_max);
        } else if (!tv.ext && tv.n) {
            memcpy(out, tv.data, tv.n * sizeof *out);
        }
    }
    if (!tv.ext) {
        llem_free(tv.data);
    }
    return e;
}
