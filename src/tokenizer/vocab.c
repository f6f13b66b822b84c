// tokenizer/vocab.c: builds a struct tok_vocab from a description or a GGUF's tokenizer.ggml.*
// keys: validation, string interning (token text -> id), BPE merge ranks, special-token
// roles and the per-model defaults and fix-ups llama.cpp applies, so that ids come out the
// same. Entry points: tok_vocab_new, tok_vocab_load, the accessors of tokenizer.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/alloc.h"
#include "base/log.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer_int.h"

// ---- small helpers shared with the other files ----------------------------------------------

enum llem_err tok_vec_push(struct tok_vec *tv, llem_token id)
{
    if (tv->n == tv->cap) {
        size_t ncap = tv->cap > 32 ? tv->cap * 2 : 64;
        llem_token *nd = llem_realloc(tv->ext ? NULL : tv->data, ncap * sizeof *nd);
        if (!nd) {
            return LLEM_ENOMEM;
        }
        if (tv->ext && tv->n) {
            memcpy(nd, tv->data, tv->n * sizeof *nd);
        }
        tv->data = nd;
        tv->cap = ncap;
        tv->ext = false;
    }
    tv->data[tv->n++] = id;
    return LLEM_OK;
}

// ---- interning ------------------------------------------------------------------------------

struct builder {
    struct tok_vocab *v;
    size_t blob_len, blob_cap;
    int32_t intern_cap; // capacity of text_off/text_len
};

// The maps are probed at random (hundreds of thousands of times while loading): a large one
// goes on transparent huge pages where the system allows, which removes most TLB misses.
// Freed with llem_aligned_free.
static void *map_alloc(size_t size)
{
    const size_t huge = (size_t)2 << 20;
    if (size < huge) {
        return llem_aligned_alloc(64, size);
    }
    size = (size + huge - 1) & ~(huge - 1);
    void *p = llem_aligned_alloc(huge, size);
#ifdef MADV_HUGEPAGE
    if (p) {
        (void)madvise(p, size, MADV_HUGEPAGE); // only a hint: failure is harmless
    }
#endif
    return p;
}

static enum llem_err strmap_resize(struct tok_vocab *v, uint32_t cap)
{
    struct tok_strslot *slot = map_alloc((size_t)cap * sizeof *slot);
    if (!slot) {
        return LLEM_ENOMEM;
    }
    for (uint32_t i = 0; i < cap; i++) {
        slot[i].id = -1;
    }
    uint32_t mask = cap - 1;
    if (v->map.slot) {
        for (uint32_t i = 0; i <= v->map.mask; i++) {
            const struct tok_strslot *e = &v->map.slot[i];
            if (e->id < 0) {
                continue;
            }
            uint32_t j = e->hash & mask;
            while (slot[j].id >= 0) {
                j = (j + 1) & mask;
            }
            slot[j] = *e;
        }
    }
    llem_aligned_free(v->map.slot);
    v->map.slot = slot;
    v->map.mask = mask;
    return LLEM_OK;
}

// Smallest power-of-two map capacity that keeps n strings at most half full.
static uint32_t strmap_cap_for(uint64_t n)
{
    uint64_t cap = 1024;
    while (cap < n * 2 && cap < (1ull << 31)) {
        cap *= 2;
    }
    return (uint32_t)cap;
}

// Appends s[0..n) (tok_hash h) as interned string `id` (which must be v->n_intern) without
// lookup.
static enum llem_err intern_append(struct builder *b, const char *s, size_t n, uint32_t h)
{
    struct tok_vocab *v = b->v;
    if (n > UINT32_MAX || b->blob_len + n > UINT32_MAX || v->n_intern == INT32_MAX) {
        return LLEM_ELIMIT;
    }
    if (b->blob_len + n > b->blob_cap) {
        size_t ncap = b->blob_cap ? b->blob_cap : 4096;
        while (ncap < b->blob_len + n) {
            ncap *= 2;
        }
        char *nb = llem_realloc(v->blob, ncap);
        if (!nb) {
            return LLEM_ENOMEM;
        }
        v->blob = nb;
        b->blob_cap = ncap;
    }
    if (v->n_intern == b->intern_cap) {
        int32_t ncap = b->intern_cap ? b->intern_cap * 2 : 1024;
        uint32_t *no = llem_realloc(v->text_off, (size_t)ncap * sizeof *no);
        if (!no) {
            return LLEM_ENOMEM;
        }
        v->text_off = no;
        uint32_t *nl = llem_realloc(v->text_len, (size_t)ncap * sizeof *nl);
        if (!nl) {
            return LLEM_ENOMEM;
        }
        v->text_len = nl;
        b->intern_cap = ncap;
    }
    // keep the map at most half full
    if (!v->map.slot || (uint64_t)(v->n_intern + 1) * 2 > (uint64_t)v->map.mask + 1) {
        uint32_t cap = v->map.slot ? (v->map.mask + 1) * 2 : 1024;
        enum llem_err e = strmap_resize(v, cap);
        if (e) {
            return e;
        }
    }
    if (n) {
        memcpy(v->blob + b->blob_len, s, n);
    }
    int32_t id = v->n_intern++;
    v->text_off[id] = (uint32_t)b->blob_len;
    v->text_len[id] = (uint32_t)n;
    uint32_t i = h & v->map.mask;
    while (v->map.slot[i].id >= 0) {
        i = (i + 1) & v->map.mask;
    }
    v->map.slot[i] = (struct tok_strslot){h, id, (uint32_t)b->blob_len, (uint32_t)n,
                                          tok_head(s, n)};
    b->blob_len += n;
    return LLEM_OK;
}

static enum llem_err intern(struct builder *b, const char *s, size_t n, uint32_t h, int32_t *id)
{
    int32_t found = tok_strmap_find_h(b->v, s, n, h);
    if (found >= 0) {
        *id = found;
        return LLEM_OK;
    }
    *id = b->v->n_intern;
    return intern_append(b, s, n, h);
}

// Loads are dominated by cache misses on the maps (hundreds of thousands of random lookups),
// so the loaders work in batches: hash a batch and prefetch the slots first, then the texts
// the slots point to, then do the real lookups.
#define LOAD_BATCH 32

static void strmap_prefetch_slot(const struct tok_vocab *v, uint32_t h)
{
    __builtin_prefetch(&v->map.slot[h & v->map.mask]);
}

// Prefetches the rest of the text of the first slot probed for h when it looks like the match
// and the text does not fit in the slot.
static void strmap_prefetch_text(const struct tok_vocab *v, uint32_t h)
{
    const struct tok_strslot *e = &v->map.slot[h & v->map.mask];
    if (e->id >= 0 && e->hash == h && e->len > 8) {
        __builtin_prefetch(v->blob + e->off + 8);
    }
}

// ---- merges -----------------------------------------------------------------------------------

static enum llem_err mergemap_init(struct tok_mergemap *m, uint64_t n)
{
    uint64_t cap = 64;
    while (cap < n + n / 2) {
        cap *= 2;
    }
    if (cap > (1ull << 31)) {
        return LLEM_ELIMIT;
    }
    m->slot = map_alloc((size_t)cap * sizeof *m->slot);
    if (!m->slot) {
        return LLEM_ENOMEM;
    }
    memset(m->slot, 0, (size_t)cap * sizeof *m->slot);
    m->mask = (uint32_t)(cap - 1);
    return LLEM_OK;
}

static uint64_t merge_key(int32_t l, int32_t r)
{
    return (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
}

// Adds key -> (rank, result) unless the pair is already there (the first rank wins).
static void mergemap_add(struct tok_mergemap *m, uint64_t key, int32_t rank, int32_t res)
{
    for (uint32_t i = tok_mix64(key) & m->mask;; i = (i + 1) & m->mask) {
        struct tok_mergeslot *e = &m->slot[i];
        if (e->key == key) {
            return;
        }
        if (e->key == 0) {
            *e = (struct tok_mergeslot){key, rank, res};
            return;
        }
    }
}

// One merge "left right" of a batch being loaded.
struct merge_item {
    const char *l, *r;
    size_t nl, nr;
    uint32_t hl, hr;
    int32_t il, ir, res;
    uint64_t key;
};

// True if interned string `id` is l + r.
static bool text_is_concat(const struct tok_vocab *v, int32_t id, const struct merge_item *it)
{
    const char *t = v->blob + v->text_off[id];
    return v->text_len[id] == it->nl + it->nr && memcmp(t, it->l, it->nl) == 0 &&
           memcmp(t + it->nl, it->r, it->nr) == 0;
}

static enum llem_err parse_merges(struct builder *b, const struct tok_vocab_desc *d,
                                  struct llem_errbuf *eb)
{
    struct tok_vocab *v = b->v;
    if (!d->merges && d->n_merges) {
        return llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.merges: missing");
    }
    if (d->n_merges > INT32_MAX) {
        return llem_errf(eb, LLEM_ELIMIT, "tokenizer.ggml.merges: %llu merges",
                         (unsigned long long)d->n_merges);
    }
    enum llem_err e = mergemap_init(&v->merges, d->n_merges);
    if (e) {
        return llem_errf(eb, e, "tokenizer.ggml.merges: %s", llem_err_str(e));
    }
    char *tmp = NULL;
    size_t tmp_cap = 0;
    // Merge results come in id order in real vocabs (merge i makes the same token as merge
    // i - 1 or the next one), so the result is first checked against those two candidates,
    // which are read sequentially, before a hash lookup.
    int32_t last_res = -1;
    struct merge_item it[LOAD_BATCH];
    for (uint64_t base = 0; base < d->n_merges && !e; base += LOAD_BATCH) {
        size_t k = d->n_merges - base < LOAD_BATCH ? (size_t)(d->n_merges - base) : LOAD_BATCH;
        for (size_t j = 0; j < k; j++) { // split, hash, prefetch the slots
            uint64_t i = base + j;
            const char *m = d->merges[i];
            if (!m) {
                e = llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.merges[%llu]: missing",
                              (unsigned long long)i);
                break;
            }
            size_t n = strlen(m);
            // split at the first space after position 0, as upstream does
            const char *sp = n > 1 ? memchr(m + 1, ' ', n - 1) : NULL;
            if (!sp || (size_t)(sp - m) + 1 >= n) {
                e = llem_errf(eb, LLEM_EFORMAT,
                              "tokenizer.ggml.merges[%llu]: '%.40s' is not 'left right'",
                              (unsigned long long)i, m);
                break;
            }
            it[j].l = m;
            it[j].nl = (size_t)(sp - m);
            it[j].r = sp + 1;
            it[j].nr = n - it[j].nl - 1;
            it[j].hl = tok_hash(it[j].l, it[j].nl);
            it[j].hr = tok_hash(it[j].r, it[j].nr);
            strmap_prefetch_slot(v, it[j].hl);
            strmap_prefetch_slot(v, it[j].hr);
        }
        if (e) {
            break;
        }
        for (size_t j = 0; j < k; j++) {
            strmap_prefetch_text(v, it[j].hl);
            strmap_prefetch_text(v, it[j].hr);
        }
        for (size_t j = 0; j < k && !e; j++) { // look up (or add) the halves and the result
            struct merge_item *t = &it[j];
            if ((e = intern(b, t->l, t->nl, t->hl, &t->il)) ||
                (e = intern(b, t->r, t->nr, t->hr, &t->ir))) {
                break;
            }
            if (last_res >= 0 && text_is_concat(v, last_res, t)) {
                t->res = last_res;
            } else if (last_res >= 0 && last_res + 1 < v->n_intern &&
                       text_is_concat(v, last_res + 1, t)) {
                t->res = last_res + 1;
            } else {
                if (t->nl + t->nr > tmp_cap) {
                    tmp_cap = (t->nl + t->nr) * 2;
                    llem_free(tmp);
                    tmp = llem_malloc(tmp_cap);
                    if (!tmp) {
                        e = LLEM_ENOMEM;
                        break;
                    }
                }
                memcpy(tmp, t->l, t->nl);
                memcpy(tmp + t->nl, t->r, t->nr);
                if ((e = intern(b, tmp, t->nl + t->nr, tok_hash(tmp, t->nl + t->nr),
                                &t->res))) {
                    break;
                }
            }
            last_res = t->res;
            t->key = merge_key(t->il, t->ir);
            __builtin_prefetch(&v->merges.slot[tok_mix64(t->key) & v->merges.mask]);
        }
        if (e) {
            llem_errf(eb, e, "tokenizer.ggml.merges: %s", llem_err_str(e));
            break;
        }
        for (size_t j = 0; j < k; j++) { // in rank order: the first rank of a pair wins
            mergemap_add(&v->merges, it[j].key, (int32_t)(base + j), it[j].res);
        }
    }
    llem_free(tmp);
    return e;
}

// ---- building -------------------------------------------------------------------------------

void tok_vocab_desc_init(struct tok_vocab_desc *d)
{
    memset(d, 0, sizeof *d);
    for (int i = 0; i < TOK_SPECIAL_COUNT; i++) {
        d->special[i] = TOK_DESC_UNSET;
    }
    d->add_bos = d->add_eos = d->add_space_prefix = d->remove_extra_whitespaces = -1;
}

static const char *const special_names[TOK_SPECIAL_COUNT] = {
    "bos", "eos", "eot", "eom", "unk", "sep", "pad", "cls", "mask",
    "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep",
};

// A control-looking token that the file did not mark as control becomes one (upstream does the
// same), so it is hidden when detokenizing without `special`.
static void set_control(struct tok_vocab *v, int32_t id)
{
    if (!(v->attr[id] & TOK_ATTR_CONTROL)) {
        v->attr[id] = (uint16_t)(TOK_ATTR_CONTROL | (v->attr[id] & TOK_ATTR_EOG));
    }
}

// Smallest token id whose text is in `list`, or -1 (lookups, not a scan of the vocab).
static int32_t first_in(const struct tok_vocab *v, const char *const *list)
{
    int32_t best = -1;
    for (; *list; list++) {
        int32_t id = tok_strmap_find(v, *list, strlen(*list));
        if (id >= 0 && id < v->n_vocab && (best < 0 || id < best)) {
            best = id;
        }
    }
    return best;
}

// Roles found by token text when the metadata does not name them (as llama.cpp does), and
// the set of tokens that end generation.
static void detect_by_text(struct tok_vocab *v)
{
    static const char *const eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>",
        "<end_of_turn>", "<|endoftext|>", "<EOT>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL};
    static const char *const eom_texts[] = {"<|eom_id|>", NULL};
    static const char *const pre_texts[] = {"<|fim_prefix|>", "<fim-prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", NULL};
    static const char *const suf_texts[] = {"<|fim_suffix|>", "<fim-suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>", NULL};
    static const char *const mid_texts[] = {"<|fim_middle|>", "<fim-middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", NULL};
    static const char *const pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
    static const char *const rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
    static const char *const sep_texts[] = {"<|file_sep|>", NULL};
    static const char *const eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
        "<|endoftext|>", "<|eom_id|>", "<EOT>", NULL};
    struct {
        enum tok_special role;
        const char *const *texts;
    } roles[] = {
        {TOK_SPECIAL_EOT, eot_texts}, {TOK_SPECIAL_EOM, eom_texts},
        {TOK_SPECIAL_FIM_PRE, pre_texts}, {TOK_SPECIAL_FIM_SUF, suf_texts},
        {TOK_SPECIAL_FIM_MID, mid_texts}, {TOK_SPECIAL_FIM_PAD, pad_texts},
        {TOK_SPECIAL_FIM_REP, rep_texts}, {TOK_SPECIAL_FIM_SEP, sep_texts},
    };
    for (size_t r = 0; r < LLEM_ARRAY_LEN(roles); r++) {
        if (v->special[roles[r].role] >= 0) {
            continue;
        }
        int32_t id = first_in(v, roles[r].texts);
        if (id >= 0) {
            v->special[roles[r].role] = id;
            set_control(v, id);
        }
    }
    for (const char *const *t = eog_texts; *t; t++) {
        int32_t id = tok_strmap_find(v, *t, strlen(*t));
        if (id >= 0 && id < v->n_vocab) {
            v->attr[id] |= TOK_ATTR_EOG;
            set_control(v, id);
        }
    }
    const enum tok_special eog_roles[] = {TOK_SPECIAL_EOS, TOK_SPECIAL_EOT, TOK_SPECIAL_EOM,
                                          TOK_SPECIAL_FIM_PAD, TOK_SPECIAL_FIM_REP,
                                          TOK_SPECIAL_FIM_SEP};
    for (size_t i = 0; i < LLEM_ARRAY_LEN(eog_roles); i++) {
        if (v->special[eog_roles[i]] >= 0) {
            v->attr[v->special[eog_roles[i]]] |= TOK_ATTR_EOG;
        }
    }
}

static int cmp_special(const void *pa, const void *pb, void *ctx)
{
    const struct tok_vocab *v = ctx;
    llem_token a = *(const llem_token *)pa, b = *(const llem_token *)pb;
    if (v->text_len[a] != v->text_len[b]) {
        return v->text_len[a] > v->text_len[b] ? -1 : 1;
    }
    return a < b ? -1 : a > b;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; hay && *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && (hay[i] | 0x20) == (needle[i] | 0x20)) {
            i++;
        }
        if (i == n) {
            return true;
        }
    }
    return false;
}

static void set_attr_by_text(struct tok_vocab *v, const char *text, uint16_t bit, bool on)
{
    int32_t id = tok_strmap_find(v, text, strlen(text));
    if (id >= 0 && id < v->n_vocab) {
        v->attr[id] = (uint16_t)(on ? (v->attr[id] | bit) : (v->attr[id] & ~bit));
    }
}

static enum llem_err build_specials(struct tok_vocab *v, const struct tok_vocab_desc *d)
{
    int32_t n = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        if (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) {
            n++;
        }
    }
    v->specials = llem_malloc((size_t)(n ? n : 1) * sizeof *v->specials);
    if (!v->specials) {
        return LLEM_ENOMEM;
    }
    v->n_specials = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        if (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) {
            v->specials[v->n_specials++] = id;
        }
    }
    qsort_r(v->specials, (size_t)v->n_specials, sizeof *v->specials, cmp_special, v);

    // Per-model whitespace stripping around special tokens (llama.cpp sets these by name,
    // GGUF has no field for them).
    if (v->pre_name && (strstr(v->pre_name, "jina-v2-de") || strstr(v->pre_name, "jina-v2-es") ||
                        strstr(v->pre_name, "jina-v2-code"))) {
        set_attr_by_text(v, "<mask>", TOK_ATTR_LSTRIP, true);
    } else if (contains_ci(d->name, "phi-3") || contains_ci(d->name, "phi3")) {
        for (int32_t i = 0; i < v->n_specials; i++) {
            v->attr[v->specials[i]] |= TOK_ATTR_RSTRIP;
        }
        set_attr_by_text(v, "</s>", TOK_ATTR_RSTRIP, true);
        set_attr_by_text(v, "<unk>", TOK_ATTR_RSTRIP, false);
        set_attr_by_text(v, "<s>", TOK_ATTR_RSTRIP, false);
        set_attr_by_text(v, "<|endoftext|>", TOK_ATTR_RSTRIP, false);
    }
    return LLEM_OK;
}

static enum llem_err apply_specials(struct tok_vocab *v, const struct tok_vocab_desc *d,
                                    struct llem_errbuf *eb)
{
    for (int i = 0; i < TOK_SPECIAL_COUNT; i++) {
        int64_t id = d->special[i];
        if (id == TOK_DESC_UNSET) {
            continue;
        }
        if (id == -1) {
            v->special[i] = -1;
            continue;
        }
        if (id < 0 || id >= v->n_vocab) {
            bool required = i == TOK_SPECIAL_BOS || i == TOK_SPECIAL_EOS || i == TOK_SPECIAL_UNK ||
                            i == TOK_SPECIAL_EOT || i == TOK_SPECIAL_EOM;
            if (required) {
                return llem_errf(eb, LLEM_EFORMAT, "tokenizer: %s token id %lld out of range "
                                 "(n_vocab %d)", special_names[i], (long long)id, v->n_vocab);
            }
            log_warn("tokenizer: ignoring %s token id %lld (n_vocab %d)", special_names[i],
                     (long long)id, v->n_vocab);
            continue;
        }
        v->special[i] = (llem_token)id;
    }
    // model defaults that do not fit a small vocab mean "none"
    for (int i = 0; i < TOK_SPECIAL_COUNT; i++) {
        if (v->special[i] >= v->n_vocab) {
            v->special[i] = -1;
        }
    }
    return LLEM_OK;
}

static void set_model_defaults(struct tok_vocab *v)
{
    for (int i = 0; i < TOK_SPECIAL_COUNT; i++) {
        v->special[i] = -1;
    }
    switch (v->model) {
    case TOK_MODEL_SPM:
        v->special[TOK_SPECIAL_BOS] = 1;
        v->special[TOK_SPECIAL_EOS] = 2;
        v->special[TOK_SPECIAL_UNK] = 0;
        v->add_space_prefix = true;
        v->add_bos = true;
        break;
    case TOK_MODEL_BPE:
        v->special[TOK_SPECIAL_BOS] = 11;
        v->special[TOK_SPECIAL_EOS] = 11;
        break;
    case TOK_MODEL_WPM:
        v->special[TOK_SPECIAL_BOS] = 101;
        v->special[TOK_SPECIAL_UNK] = 100;
        v->special[TOK_SPECIAL_SEP] = 102;
        v->special[TOK_SPECIAL_PAD] = 0;
        v->special[TOK_SPECIAL_MASK] = 103;
        v->add_bos = true;
        break;
    }
}

static uint16_t attr_from_type(int32_t t)
{
    switch (t) {
    case 1: return TOK_ATTR_NORMAL;
    case 2: return TOK_ATTR_UNKNOWN;
    case 3: return TOK_ATTR_CONTROL;
    case 4: return TOK_ATTR_USER_DEFINED;
    case 5: return TOK_ATTR_UNUSED;
    case 6: return TOK_ATTR_BYTE;
    default: return 0; // undefined
    }
}

static void build_byte_tables(struct tok_vocab *v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        char c = (char)b;
        int32_t id = tok_strmap_find(v, buf, 6);
        if (id < 0 || id >= v->n_vocab) {
            id = tok_strmap_find(v, &c, 1);
        }
        if (id < 0 || id >= v->n_vocab) {
            id = v->special[TOK_SPECIAL_UNK];
        }
        v->byte_tok[b] = id;
        char u[4];
        uint32_t cp = tok_byte_to_cp((uint8_t)b);
        int n = cp < 0x80 ? (u[0] = (char)cp, 1)
                          : (u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), 2);
        v->bpe_byte_id[b] = tok_strmap_find(v, u, (size_t)n);
    }
}

// True when every "▁" (E2 96 81) inside a token text, past its first byte, directly follows
// another "▁": then no token can span a "▁" that follows something else, and SentencePiece
// encoding may merge the words between such points separately (encode.c).
static bool spm_split_safe(const struct tok_vocab *v)
{
    for (int32_t id = 0; id < v->n_vocab; id++) {
        const char *t = v->blob + v->text_off[id];
        size_t n = v->text_len[id];
        for (size_t q = 1; q + 3 <= n; q++) {
            const char *m = memmem(t + q, n - q, "\xe2\x96\x81", 3);
            if (!m) {
                break;
            }
            q = (size_t)(m - t);
            if (q < 3 || memcmp(m - 3, "\xe2\x96\x81", 3) != 0) {
                return false;
            }
        }
    }
    return true;
}

// Length and hash of token i (0 and anything when missing), and a prefetch of its map slot.
static void token_peek(const struct tok_vocab *v, const struct tok_vocab_desc *d, uint32_t i,
                       uint32_t *h, size_t *n)
{
    const char *t = d->tokens[i];
    *n = !t ? 0 : d->token_lens ? d->token_lens[i] : strlen(t);
    *h = t ? tok_hash(t, *n) : 0;
    strmap_prefetch_slot(v, *h);
}

enum llem_err tok_vocab_new(struct tok_vocab **out, const struct tok_vocab_desc *d,
                            struct llem_errbuf *eb)
{
    *out = NULL;
    enum tok_model model;
    if (!d->model) {
        return llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.model: missing");
    } else if (strcmp(d->model, "llama") == 0) {
        model = TOK_MODEL_SPM;
    } else if (strcmp(d->model, "gpt2") == 0) {
        model = TOK_MODEL_BPE;
    } else if (strcmp(d->model, "bert") == 0) {
        model = TOK_MODEL_WPM;
    } else {
        return llem_errf(eb, LLEM_EUNSUPPORTED, "tokenizer.ggml.model '%.40s' is not supported "
                         "(llama, gpt2, bert)", d->model);
    }
    if (d->n_tokens == 0 || !d->tokens) {
        return llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.tokens: empty");
    }
    if (d->n_tokens > INT32_MAX / 2) {
        return llem_errf(eb, LLEM_ELIMIT, "tokenizer.ggml.tokens: %u tokens", d->n_tokens);
    }
    struct tok_vocab *v = llem_calloc(1, sizeof *v);
    if (!v) {
        return llem_errf(eb, LLEM_ENOMEM, "tokenizer: out of memory");
    }
    struct builder b = {.v = v};
    enum llem_err e = LLEM_OK;
    v->model = model;
    v->n_vocab = (int32_t)d->n_tokens;
    v->pre_name = llem_strdup(d->pre ? d->pre : "default");
    v->scores = llem_calloc(d->n_tokens, sizeof *v->scores);
    v->attr = llem_calloc(d->n_tokens, sizeof *v->attr);
    // size the map for the tokens up front (BPE merges rarely add strings)
    if (!v->pre_name || !v->scores || !v->attr ||
        strmap_resize(v, strmap_cap_for((uint64_t)d->n_tokens + 64))) {
        e = llem_errf(eb, LLEM_ENOMEM, "tokenizer: out of memory");
        goto fail;
    }
    set_model_defaults(v);

    // Inserting is a random slot access per token: hash LOAD_BATCH tokens ahead and prefetch.
    uint32_t ahead_h[LOAD_BATCH];
    size_t ahead_n[LOAD_BATCH];
    for (uint32_t i = 0; i < d->n_tokens && i < LOAD_BATCH; i++) {
        token_peek(v, d, i, &ahead_h[i], &ahead_n[i]);
    }
    for (uint32_t i = 0; i < d->n_tokens; i++) {
        const char *t = d->tokens[i];
        if (!t) {
            e = llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.tokens[%u]: missing", i);
            goto fail;
        }
        size_t n = ahead_n[i % LOAD_BATCH];
        uint32_t h = ahead_h[i % LOAD_BATCH];
        if (i + LOAD_BATCH < d->n_tokens) {
            token_peek(v, d, i + LOAD_BATCH, &ahead_h[i % LOAD_BATCH], &ahead_n[i % LOAD_BATCH]);
        }
        char empty[32];
        if (n == 0) { // upstream renames empty tokens so they stay unique and visible
            int k = snprintf(empty, sizeof empty, "[EMPTY_%u]", i);
            t = empty;
            n = (size_t)k;
            h = tok_hash(t, n);
        }
        if (tok_strmap_find_h(v, t, n, h) >= 0) {
            e = llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.tokens[%u]: duplicate text '%.40s'",
                          i, t);
            goto fail;
        }
        if ((e = intern_append(&b, t, n, h))) {
            llem_errf(eb, e, "tokenizer.ggml.tokens: %s", llem_err_str(e));
            goto fail;
        }
        if (n > v->max_token_len) {
            v->max_token_len = n;
        }
        if (d->scores) {
            v->scores[i] = d->scores[i];
        }
        if (d->token_types) {
            int32_t ty = d->token_types[i];
            if (ty < 0 || ty > 6) {
                e = llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.token_type[%u]: %d not in 0..6",
                              i, ty);
                goto fail;
            }
            v->attr[i] = attr_from_type(ty);
        } else {
            v->attr[i] = TOK_ATTR_NORMAL;
        }
    }

    if (model == TOK_MODEL_BPE) {
        if ((e = tok_pretok_new(v, v->pre_name, eb))) {
            goto fail;
        }
        if (!d->merges) {
            e = llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.merges: missing (needed by gpt2)");
            goto fail;
        }
        if ((e = parse_merges(&b, d, eb))) {
            goto fail;
        }
    }
    if ((e = apply_specials(v, d, eb))) {
        goto fail;
    }
    if (d->add_bos >= 0) {
        v->add_bos = d->add_bos;
    }
    if (d->add_eos >= 0) {
        v->add_eos = d->add_eos;
    }
    if (d->add_space_prefix >= 0) {
        v->add_space_prefix = d->add_space_prefix;
    }
    if (d->remove_extra_whitespaces >= 0) {
        v->remove_extra_ws = d->remove_extra_whitespaces;
    }
    if (v->add_bos && v->special[TOK_SPECIAL_BOS] < 0 && model != TOK_MODEL_WPM) {
        log_warn("tokenizer: add_bos_token set but there is no BOS token; not adding it");
        v->add_bos = false;
    }
    if (v->add_eos && v->special[TOK_SPECIAL_EOS] < 0) {
        log_warn("tokenizer: add_eos_token set but there is no EOS token; not adding it");
        v->add_eos = false;
    }
    detect_by_text(v);
    build_byte_tables(v);
    v->spm_split = model == TOK_MODEL_SPM && spm_split_safe(v);
    if (build_specials(v, d) || tok_pieces_build(v)) {
        e = llem_errf(eb, LLEM_ENOMEM, "tokenizer: out of memory");
        goto fail;
    }
    *out = v;
    return LLEM_OK;
fail:
    tok_vocab_free(v);
    return e ? e : LLEM_EINTERNAL;
}

void tok_vocab_free(struct tok_vocab *v)
{
    if (!v) {
        return;
    }
    tok_pretok_free(v->pretok);
    llem_free(v->pre_name);
    llem_free(v->text_off);
    llem_free(v->text_len);
    llem_free(v->blob);
    llem_aligned_free(v->map.slot);
    llem_free(v->scores);
    llem_free(v->attr);
    llem_free(v->specials);
    llem_aligned_free(v->merges.slot);
    llem_free(v->piece_off);
    llem_free(v->piece_len);
    llem_free(v->piece_blob);
    llem_free(v);
}

// ---- GGUF ------------------------------------------------------------------------------------

// Reads an optional token id key: TOK_DESC_UNSET when absent, -1 for the "none" values
// writers use (-1, 0xFFFFFFFF).
static enum llem_err read_id(const struct gguf_file *f, const char *key, int64_t *out,
                             struct llem_errbuf *eb)
{
    const struct gguf_value *val = gguf_get(f, key);
    if (!val) {
        return LLEM_OK;
    }
    int64_t i64;
    if (!gguf_get_i64(f, key, &i64)) {
        return llem_errf(eb, LLEM_EFORMAT, "%s: not an integer", key);
    }
    *out = (i64 == -1 || i64 == (int64_t)UINT32_MAX) ? -1 : i64;
    return LLEM_OK;
}

static enum llem_err read_flag(const struct gguf_file *f, const char *key, int *out,
                               struct llem_errbuf *eb)
{
    if (!gguf_get(f, key)) {
        return LLEM_OK;
    }
    bool b;
    if (!gguf_get_bool(f, key, &b)) {
        return llem_errf(eb, LLEM_EFORMAT, "%s: not a bool", key);
    }
    *out = b;
    return LLEM_OK;
}

enum llem_err tok_vocab_load(struct tok_vocab **out, const struct gguf_file *f,
                             struct llem_errbuf *eb)
{
    *out = NULL;
    struct tok_vocab_desc d;
    tok_vocab_desc_init(&d);
    const struct gguf_value *mv = gguf_get(f, "tokenizer.ggml.model");
    if (!mv) {
        return llem_errf(eb, LLEM_ENOTFOUND, "no tokenizer in this file (tokenizer.ggml.model)");
    }
    d.model = gguf_get_str(f, "tokenizer.ggml.model");
    if (!d.model) {
        return llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.model: not a string");
    }
    if (gguf_get(f, "tokenizer.ggml.pre")) {
        d.pre = gguf_get_str(f, "tokenizer.ggml.pre");
        if (!d.pre) {
            return llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.pre: not a string");
        }
    }
    d.name = gguf_get_str(f, "general.name");

    uint64_t n_tok = 0, n = 0;
    d.tokens = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &n_tok);
    if (!d.tokens) {
        return llem_errf(eb, gguf_get(f, "tokenizer.ggml.tokens") ? LLEM_EFORMAT : LLEM_ENOTFOUND,
                         "tokenizer.ggml.tokens: missing or not an array of strings");
    }
    if (n_tok == 0 || n_tok > INT32_MAX / 2) {
        return llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.tokens: %llu tokens",
                         (unsigned long long)n_tok);
    }
    d.n_tokens = (uint32_t)n_tok;
    if (gguf_get(f, "tokenizer.ggml.scores")) {
        d.scores = gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_VALUE_FLOAT32, &n);
        if (!d.scores || n != n_tok) {
            return llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.scores: expected %llu float32, "
                             "got %s%llu", (unsigned long long)n_tok, d.scores ? "" : "another type or ",
                             (unsigned long long)n);
        }
    }
    if (gguf_get(f, "tokenizer.ggml.token_type")) {
        d.token_types = gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_VALUE_INT32, &n);
        if (!d.token_types || n != n_tok) {
            return llem_errf(eb, LLEM_EFORMAT, "tokenizer.ggml.token_type: expected %llu int32, "
                             "got %s%llu", (unsigned long long)n_tok,
                             d.token_types ? "" : "another type or ", (unsigned long long)n);
        }
    }
    if (gguf_get(f, "tokenizer.ggml.merges")) {
        d.merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_VALUE_STRING, &d.n_merges);
        if (!d.merges) {
            return llem_errf(eb, LLEM_EFORMAT,
                             "tokenizer.ggml.merges: not an array of strings");
        }
    }
    static const char *const keys[TOK_SPECIAL_COUNT] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.cls_token_id",
        "tokenizer.ggml.mask_token_id", "tokenizer.ggml.fim_pre_token_id",
        "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id",
        "tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id",
        "tokenizer.ggml.fim_sep_token_id",
    };
    enum llem_err e;
    for (int i = 0; i < TOK_SPECIAL_COUNT; i++) {
        if ((e = read_id(f, keys[i], &d.special[i], eb))) {
            return e;
        }
    }
    // deprecated spellings of the FIM ids
    static const char *const old_fim[3] = {"tokenizer.ggml.prefix_token_id",
        "tokenizer.ggml.suffix_token_id", "tokenizer.ggml.middle_token_id"};
    for (int i = 0; i < 3; i++) {
        int64_t id = TOK_DESC_UNSET;
        if ((e = read_id(f, old_fim[i], &id, eb))) {
            return e;
        }
        if (id != TOK_DESC_UNSET) {
            d.special[TOK_SPECIAL_FIM_PRE + i] = id;
        }
    }
    if ((e = read_flag(f, "tokenizer.ggml.add_bos_token", &d.add_bos, eb)) ||
        (e = read_flag(f, "tokenizer.ggml.add_eos_token", &d.add_eos, eb)) ||
        (e = read_flag(f, "tokenizer.ggml.add_space_prefix", &d.add_space_prefix, eb)) ||
        (e = read_flag(f, "tokenizer.ggml.remove_extra_whitespaces",
                       &d.remove_extra_whitespaces, eb))) {
        return e;
    }
    return tok_vocab_new(out, &d, eb);
}

// ---- accessors -------------------------------------------------------------------------------

enum tok_model tok_vocab_model(const struct tok_vocab *v) { return v->model; }
const char *tok_vocab_pre(const struct tok_vocab *v) { return v->pre_name; }
int32_t tok_n_vocab(const struct tok_vocab *v) { return v->n_vocab; }
llem_token tok_bos(const struct tok_vocab *v) { return v->special[TOK_SPECIAL_BOS]; }
llem_token tok_eos(const struct tok_vocab *v) { return v->special[TOK_SPECIAL_EOS]; }
llem_token tok_eot(const struct tok_vocab *v) { return v->special[TOK_SPECIAL_EOT]; }
bool tok_add_bos(const struct tok_vocab *v) { return v->add_bos; }
bool tok_add_eos(const struct tok_vocab *v) { return v->add_eos; }
size_t tok_piece_max(const struct tok_vocab *v) { return v->piece_max; }

llem_token tok_special_id(const struct tok_vocab *v, enum tok_special which)
{
    return (unsigned)which < TOK_SPECIAL_COUNT ? v->special[which] : -1;
}

uint32_t tok_attr(const struct tok_vocab *v, llem_token id)
{
    return id >= 0 && id < v->n_vocab ? v->attr[id] : 0;
}

bool tok_is_eog(const struct tok_vocab *v, llem_token id)
{
    return (tok_attr(v, id) & TOK_ATTR_EOG) != 0;
}

bool tok_is_control(const struct tok_vocab *v, llem_token id)
{
    return (tok_attr(v, id) & TOK_ATTR_CONTROL) != 0;
}

const char *tok_text(const struct tok_vocab *v, llem_token id, size_t *len)
{
    if (id < 0 || id >= v->n_vocab) {
        return NULL;
    }
    if (len) {
        *len = v->text_len[id];
    }
    return v->blob + v->text_off[id];
}

llem_token tok_find(const struct tok_vocab *v, const char *s, size_t n)
{
    int32_t id = tok_strmap_find(v, s, n);
    return id < v->n_vocab ? id : -1;
}
