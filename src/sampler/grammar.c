// sampler/grammar.c: the grammar runtime. A parse position is a stack node (element position,
// parent node) interned in a hash table, so stacks share their tails; the set of live stacks
// after some bytes is a "state", also interned, and byte transitions between states are
// memoized: a lazily built DFA over the pushdown automaton's reachable configurations. The token
// filter walks the vocabulary trie (preorder arrays) from the current state, pruning a subtree
// as soon as its prefix is dead, and caches the resulting allowed-token bitmap per state.
// When the tables grow past their caps they are rebuilt from the current state alone.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "sampler/grammar_int.h"
#include "sampler/sampler.h"

#define NODE_ACCEPT 0
#define MAX_NODES (4 << 20)
#define MAX_STATES (1 << 19)
#define MAX_TRANS (8 << 20)
#define MAX_BITMAP_BYTES ((size_t)96 << 20)
#define MAX_CLOSURE_DEPTH 4096
#define TRIGGER_MAX 64
#define DIST_INF (INT32_MAX / 4)

// ---- vocabulary trie -----------------------------------------------------------------------

struct grammar_vocab {
    int32_t n_vocab;
    int32_t n_nodes;      // node 0 is the root (empty prefix)
    uint8_t *byte;        // [n_nodes] the byte leading into the node
    uint16_t *depth;      // [n_nodes]
    int32_t *end;         // [n_nodes] one past the node's subtree (preorder)
    int32_t *tok_lo;      // [n_nodes + 1] tokens ending at node i: toks[tok_lo[i] .. tok_lo[i+1])
    int32_t *toks;        // token ids in trie order
    int32_t max_depth;
    char *bytes;          // all pieces, concatenated
    int64_t *off;         // [n_vocab + 1]
    uint8_t *eog;         // [n_vocab]
    int32_t *eogs;        // EOG token ids
    int32_t n_eog;
};

struct piece_ref {
    const char *p;
    uint32_t len;
    int32_t id;
};

static int piece_cmp(const void *a, const void *b)
{
    const struct piece_ref *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c) {
        return c;
    }
    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

void grammar_vocab_free(struct grammar_vocab *v)
{
    if (!v) {
        return;
    }
    llem_free(v->byte);
    llem_free(v->depth);
    llem_free(v->end);
    llem_free(v->tok_lo);
    llem_free(v->toks);
    llem_free(v->bytes);
    llem_free(v->off);
    llem_free(v->eog);
    llem_free(v->eogs);
    llem_free(v);
}

int32_t grammar_vocab_n(const struct grammar_vocab *v)
{
    return v->n_vocab;
}

// Builds the trie: sort the pieces; each one adds the nodes past its common prefix with the
// one before, which yields preorder directly.
static enum llem_err vocab_build_trie(struct grammar_vocab *v, struct piece_ref *refs, int32_t n)
{
    qsort(refs, (size_t)n, sizeof *refs, piece_cmp);
    int64_t total = 1;
    for (int32_t i = 0; i < n; i++) {
        total += refs[i].len;
    }
    if (total > INT32_MAX / 2) {
        return LLEM_ELIMIT;
    }
    v->byte = llem_malloc((size_t)total);
    v->depth = llem_malloc((size_t)total * sizeof *v->depth);
    v->end = llem_malloc((size_t)total * sizeof *v->end);
    v->tok_lo = llem_calloc((size_t)total + 1, sizeof *v->tok_lo);
    v->toks = llem_malloc((size_t)(n + 1) * sizeof *v->toks);
    int32_t *open = llem_malloc(((size_t)UINT16_MAX + 2) * sizeof *open);
    int32_t *tok_node = llem_malloc((size_t)(n + 1) * sizeof *tok_node);
    if (!v->byte || !v->depth || !v->end || !v->tok_lo || !v->toks || !open || !tok_node) {
        llem_free(open);
        llem_free(tok_node);
        return LLEM_ENOMEM;
    }
    int32_t nn = 1, top = 0; // open[0..top] are the nodes on the current path
    v->byte[0] = 0;
    v->depth[0] = 0;
    open[0] = 0;
    for (int32_t i = 0; i < n; i++) {
        uint32_t lcp = 0;
        if (i > 0) {
            uint32_t m = refs[i - 1].len < refs[i].len ? refs[i - 1].len : refs[i].len;
            while (lcp < m && refs[i - 1].p[lcp] == refs[i].p[lcp]) {
                lcp++;
            }
        }
        while (top > (int32_t)lcp) { // close the nodes deeper than the common prefix
            v->end[open[top--]] = nn;
        }
        for (uint32_t k = lcp; k < refs[i].len; k++) {
            v->byte[nn] = (uint8_t)refs[i].p[k];
            v->depth[nn] = (uint16_t)(k + 1);
            open[++top] = nn++;
        }
        if ((int32_t)refs[i].len > v->max_depth) {
            v->max_depth = (int32_t)refs[i].len;
        }
        tok_node[i] = open[refs[i].len];
        v->toks[i] = refs[i].id;
    }
    while (top >= 0) {
        v->end[open[top--]] = nn;
    }
    v->n_nodes = nn;
    for (int32_t i = 0; i < n; i++) {
        v->tok_lo[tok_node[i] + 1]++;
    }
    for (int32_t i = 0; i < nn; i++) {
        v->tok_lo[i + 1] += v->tok_lo[i];
    }
    llem_free(open);
    llem_free(tok_node);
    return LLEM_OK;
}

enum llem_err grammar_vocab_new(struct grammar_vocab **out, int32_t n_vocab,
                                grammar_piece_fn piece, void *user, struct llem_errbuf *eb)
{
    *out = NULL;
    if (n_vocab <= 0 || !piece) {
        return llem_errf(eb, LLEM_EINVAL, "grammar: empty vocabulary");
    }
    struct grammar_vocab *v = llem_calloc(1, sizeof *v);
    size_t cap = 1 << 20, used = 0, bcap = 256;
    char *buf = llem_malloc(bcap);
    struct piece_ref *refs = llem_malloc((size_t)n_vocab * sizeof *refs);
    enum llem_err e = LLEM_OK;
    if (!v || !buf || !refs || !(v->bytes = llem_malloc(cap)) ||
        !(v->off = llem_malloc((size_t)(n_vocab + 1) * sizeof *v->off)) ||
        !(v->eog = llem_calloc((size_t)n_vocab, 1)) ||
        !(v->eogs = llem_malloc((size_t)n_vocab * sizeof *v->eogs))) {
        e = LLEM_ENOMEM;
        goto done;
    }
    v->n_vocab = n_vocab;
    for (int32_t id = 0; id < n_vocab; id++) {
        bool eog = false;
        size_t len = piece(user, id, buf, bcap, &eog);
        if (len > bcap) {
            if (len > UINT16_MAX) {
                len = 0; // a piece this long is never allowed (never seen in real vocabs)
            } else {
                char *nb = llem_realloc(buf, len);
                if (!nb) {
                    e = LLEM_ENOMEM;
                    goto done;
                }
                buf = nb;
                bcap = len;
                len = piece(user, id, buf, bcap, &eog);
                len = len > bcap ? 0 : len;
            }
        }
        if (used + len > cap) {
            size_t nc = (used + len) * 2;
            char *nb = llem_realloc(v->bytes, nc);
            if (!nb) {
                e = LLEM_ENOMEM;
                goto done;
            }
            v->bytes = nb;
            cap = nc;
        }
        memcpy(v->bytes + used, buf, len);
        v->off[id] = (int64_t)used;
        used += len;
        v->eog[id] = eog;
        if (eog) {
            v->eogs[v->n_eog++] = id;
        }
    }
    v->off[n_vocab] = (int64_t)used;
    int32_t n = 0;
    for (int32_t id = 0; id < n_vocab; id++) {
        uint32_t len = (uint32_t)(v->off[id + 1] - v->off[id]);
        if (len > 0 && !v->eog[id]) { // empty non-EOG pieces are never allowed
            refs[n++] = (struct piece_ref){v->bytes + v->off[id], len, id};
        }
    }
    e = vocab_build_trie(v, refs, n);
done:
    llem_free(buf);
    llem_free(refs);
    if (e) {
        grammar_vocab_free(v);
        return llem_errf(eb, e, "grammar: %s building the vocabulary trie",
                         e == LLEM_ENOMEM ? "out of memory" : "size limit");
    }
    *out = v;
    return LLEM_OK;
}

// ---- per-sequence state --------------------------------------------------------------------

struct gstate {
    int64_t off;     // live nodes: pool[off .. off + n), sorted
    int32_t n;
    int32_t dist;    // fewest bytes to complete
    uint32_t hash;
    bool complete;
    uint64_t *allow; // cached allowed-token bitmap, or NULL
};

struct grammar {
    struct grammar_rules *r;
    const struct grammar_vocab *v;
    // stack nodes: (pos, parent)
    int32_t *npos, *npar, *ndist;
    uint32_t *stamp;
    int32_t n_nodes, cap_nodes;
    int32_t *nhash;
    uint32_t nhash_cap;
    uint32_t stamp_gen;
    // states
    struct gstate *st;
    int32_t n_st, cap_st;
    int32_t *shash;
    uint32_t shash_cap;
    int32_t *pool;
    int64_t n_pool, cap_pool;
    // memoized transitions (state << 8 | byte) -> state or -1
    uint64_t *tkey;
    int32_t *tval;
    uint32_t tcap, tn;
    // scratch
    int32_t *tmp;
    int32_t n_tmp, cap_tmp;
    int32_t *walk; // [max_depth + 1]
    size_t bitmap_bytes;
    bool oom;
    int32_t start, cur;
    bool finish;
    // deferred start
    char trig[TRIGGER_MAX];
    size_t trig_len, trig_match;
    bool active;
};

static uint32_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static bool grow(void **p, int32_t *cap, int32_t need, size_t elem)
{
    if (need <= *cap) {
        return true;
    }
    int32_t nc = *cap ? *cap : 1024;
    while (nc < need) {
        nc *= 2;
    }
    void *np = llem_realloc(*p, (size_t)nc * elem);
    if (!np) {
        return false;
    }
    *p = np;
    *cap = nc;
    return true;
}

static bool nhash_rebuild(struct grammar *g, uint32_t cap)
{
    int32_t *h = llem_malloc((size_t)cap * sizeof *h);
    if (!h) {
        return false;
    }
    memset(h, 0xff, (size_t)cap * sizeof *h);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        uint32_t k = mix(((uint64_t)(uint32_t)g->npos[i] << 32) | (uint32_t)g->npar[i]) & (cap - 1);
        while (h[k] >= 0) {
            k = (k + 1) & (cap - 1);
        }
        h[k] = i;
    }
    llem_free(g->nhash);
    g->nhash = h;
    g->nhash_cap = cap;
    return true;
}

// The node (pos, parent), created when new; -1 when out of memory or past the cap.
static int32_t node_get(struct grammar *g, int32_t pos, int32_t parent)
{
    if ((uint32_t)(g->n_nodes + 1) * 2 > g->nhash_cap &&
        !nhash_rebuild(g, g->nhash_cap ? g->nhash_cap * 2 : 4096)) {
        g->oom = true;
        return -1;
    }
    uint32_t mask = g->nhash_cap - 1;
    uint32_t k = mix(((uint64_t)(uint32_t)pos << 32) | (uint32_t)parent) & mask;
    for (;;) {
        int32_t id = g->nhash[k];
        if (id < 0) {
            break;
        }
        if (g->npos[id] == pos && g->npar[id] == parent) {
            return id;
        }
        k = (k + 1) & mask;
    }
    int32_t n = g->n_nodes;
    if (n >= MAX_NODES) {
        g->oom = true;
        return -1;
    }
    if (n >= g->cap_nodes) {
        int32_t nc = g->cap_nodes ? g->cap_nodes * 2 : 4096;
        int32_t *a = llem_realloc(g->npos, (size_t)nc * sizeof *a);
        if (a) {
            g->npos = a;
        }
        int32_t *b = a ? llem_realloc(g->npar, (size_t)nc * sizeof *b) : NULL;
        if (b) {
            g->npar = b;
        }
        int32_t *c = b ? llem_realloc(g->ndist, (size_t)nc * sizeof *c) : NULL;
        if (c) {
            g->ndist = c;
        }
        uint32_t *d = c ? llem_realloc(g->stamp, (size_t)nc * sizeof *d) : NULL;
        if (!d) {
            g->oom = true;
            return -1;
        }
        g->stamp = d;
        g->cap_nodes = nc;
    }
    g->npos[n] = pos;
    g->npar[n] = parent;
    g->ndist[n] = -1;
    g->stamp[n] = 0;
    g->nhash[k] = n;
    g->n_nodes++;
    return n;
}

static bool tmp_add(struct grammar *g, int32_t node)
{
    if (g->stamp[node] == g->stamp_gen) {
        return true;
    }
    g->stamp[node] = g->stamp_gen;
    if (!grow((void **)&g->tmp, &g->cap_tmp, g->n_tmp + 1, sizeof *g->tmp)) {
        g->oom = true;
        return false;
    }
    g->tmp[g->n_tmp++] = node;
    return true;
}

// Adds to tmp the live nodes (terminal positions, or ACCEPT) reachable from position pos with
// continuation `parent` without consuming a byte. Rule references in tail position reuse the
// parent (no growth for right recursion); a reference node is stamped so that a shared
// sub-expansion is visited once per closure.
static bool closure(struct grammar *g, int32_t pos, int32_t parent, int depth)
{
    if (depth > MAX_CLOSURE_DEPTH) {
        g->oom = true;
        return false;
    }
    const struct grammar_rules *r = g->r;
    int32_t el = r->elems[pos];
    if (el == GRAMMAR_END) {
        if (parent < 0) {
            return tmp_add(g, NODE_ACCEPT);
        }
        return closure(g, g->npos[parent], g->npar[parent], depth + 1);
    }
    int32_t n = node_get(g, pos, parent);
    if (n < 0) {
        return false;
    }
    if (!GRAMMAR_IS_REF(el)) {
        return tmp_add(g, n);
    }
    if (g->stamp[n] == g->stamp_gen) {
        return true;
    }
    g->stamp[n] = g->stamp_gen;
    int32_t cont = parent;
    if (r->elems[pos + 1] != GRAMMAR_END) {
        cont = node_get(g, pos + 1, parent);
        if (cont < 0) {
            return false;
        }
    }
    int32_t rule = GRAMMAR_REF_RULE(el);
    for (int32_t a = r->rule_alt[rule]; a < r->rule_alt[rule + 1]; a++) {
        if (!closure(g, r->alts[a], cont, depth + 1)) {
            return false;
        }
    }
    return true;
}

static int32_t node_dist(struct grammar *g, int32_t n)
{
    if (n == NODE_ACCEPT) {
        return 0;
    }
    int64_t d = 0;
    int32_t m = n;
    while (m >= 0 && g->ndist[m] < 0) {
        d += g->r->min_suffix[g->npos[m]];
        m = g->npar[m];
    }
    if (m >= 0) {
        d += g->ndist[m];
    }
    g->ndist[n] = d >= DIST_INF ? DIST_INF : (int32_t)d;
    return g->ndist[n];
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static bool shash_rebuild(struct grammar *g, uint32_t cap)
{
    int32_t *h = llem_malloc((size_t)cap * sizeof *h);
    if (!h) {
        return false;
    }
    memset(h, 0xff, (size_t)cap * sizeof *h);
    for (int32_t i = 0; i < g->n_st; i++) {
        uint32_t k = g->st[i].hash & (cap - 1);
        while (h[k] >= 0) {
            k = (k + 1) & (cap - 1);
        }
        h[k] = i;
    }
    llem_free(g->shash);
    g->shash = h;
    g->shash_cap = cap;
    return true;
}

// Interns the node set in tmp (sorted here) as a state; -1 on failure.
static int32_t state_from_tmp(struct grammar *g)
{
    qsort(g->tmp, (size_t)g->n_tmp, sizeof *g->tmp, cmp_i32);
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int32_t i = 0; i < g->n_tmp; i++) {
        h = (h ^ (uint32_t)g->tmp[i]) * 0x100000001b3ULL;
    }
    uint32_t hash = mix(h);
    if ((uint32_t)(g->n_st + 1) * 2 > g->shash_cap &&
        !shash_rebuild(g, g->shash_cap ? g->shash_cap * 2 : 1024)) {
        g->oom = true;
        return -1;
    }
    uint32_t mask = g->shash_cap - 1, k = hash & mask;
    for (;;) {
        int32_t id = g->shash[k];
        if (id < 0) {
            break;
        }
        const struct gstate *s = &g->st[id];
        if (s->hash == hash && s->n == g->n_tmp &&
            memcmp(g->pool + s->off, g->tmp, (size_t)s->n * sizeof *g->tmp) == 0) {
            return id;
        }
        k = (k + 1) & mask;
    }
    if (g->n_st >= MAX_STATES || g->n_pool + g->n_tmp > INT32_MAX) {
        g->oom = true;
        return -1;
    }
    if (!grow((void **)&g->st, &g->cap_st, g->n_st + 1, sizeof *g->st)) {
        g->oom = true;
        return -1;
    }
    if (g->n_pool + g->n_tmp > g->cap_pool) {
        int64_t nc = g->cap_pool ? g->cap_pool * 2 : 4096;
        while (nc < g->n_pool + g->n_tmp) {
            nc *= 2;
        }
        int32_t *np = llem_realloc(g->pool, (size_t)nc * sizeof *np);
        if (!np) {
            g->oom = true;
            return -1;
        }
        g->pool = np;
        g->cap_pool = nc;
    }
    struct gstate *s = &g->st[g->n_st];
    s->off = g->n_pool;
    s->n = g->n_tmp;
    s->hash = hash;
    s->allow = NULL;
    s->complete = g->n_tmp > 0 && g->tmp[0] == NODE_ACCEPT;
    int32_t d = DIST_INF;
    for (int32_t i = 0; i < g->n_tmp; i++) {
        int32_t nd = node_dist(g, g->tmp[i]);
        d = nd < d ? nd : d;
    }
    s->dist = d;
    memcpy(g->pool + g->n_pool, g->tmp, (size_t)g->n_tmp * sizeof *g->tmp);
    g->n_pool += g->n_tmp;
    g->shash[k] = g->n_st;
    return g->n_st++;
}

static bool thash_rebuild(struct grammar *g, uint32_t cap)
{
    uint64_t *k2 = llem_malloc((size_t)cap * sizeof *k2);
    int32_t *v2 = llem_malloc((size_t)cap * sizeof *v2);
    if (!k2 || !v2) {
        llem_free(k2);
        llem_free(v2);
        return false;
    }
    memset(k2, 0xff, (size_t)cap * sizeof *k2);
    for (uint32_t i = 0; i < g->tcap; i++) {
        if (g->tkey[i] != UINT64_MAX) {
            uint32_t k = mix(g->tkey[i]) & (cap - 1);
            while (k2[k] != UINT64_MAX) {
                k = (k + 1) & (cap - 1);
            }
            k2[k] = g->tkey[i];
            v2[k] = g->tval[i];
        }
    }
    llem_free(g->tkey);
    llem_free(g->tval);
    g->tkey = k2;
    g->tval = v2;
    g->tcap = cap;
    return true;
}

// The state after byte b from state q: -1 when b cannot come next (or on failure, g->oom).
static int32_t step(struct grammar *g, int32_t q, uint8_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)q << 8) | b;
    uint32_t mask = g->tcap - 1, k = mix(key) & mask;
    for (;;) {
        if (g->tkey[k] == key) {
            return g->tval[k];
        }
        if (g->tkey[k] == UINT64_MAX) {
            break;
        }
        k = (k + 1) & mask;
    }
    const struct grammar_rules *r = g->r;
    g->n_tmp = 0;
    g->stamp_gen++;
    int64_t off = g->st[q].off; // the pool may move while new nodes are made: index, not pointer
    int32_t n = g->st[q].n;
    for (int32_t i = 0; i < n; i++) {
        int32_t nd = g->pool[off + i];
        if (nd == NODE_ACCEPT) {
            continue;
        }
        int32_t pos = g->npos[nd];
        if (grammar_set_has(r->sets[r->elems[pos]], b) &&
            !closure(g, pos + 1, g->npar[nd], 0)) {
            return -1;
        }
    }
    int32_t res = g->n_tmp ? state_from_tmp(g) : -1;
    if (g->oom) {
        return -1;
    }
    if (g->tn >= MAX_TRANS) {
        g->oom = true;
        return -1;
    }
    if ((g->tn + 1) * 2 > g->tcap) {
        if (!thash_rebuild(g, g->tcap * 2)) {
            g->oom = true;
            return -1;
        }
        mask = g->tcap - 1;
        k = mix(key) & mask;
        while (g->tkey[k] != UINT64_MAX) {
            k = (k + 1) & mask;
        }
    }
    g->tkey[k] = key;
    g->tval[k] = res;
    g->tn++;
    return res;
}

static void tables_clear(struct grammar *g)
{
    for (int32_t i = 0; i < g->n_st; i++) {
        llem_free(g->st[i].allow);
    }
    g->n_st = 0;
    g->n_pool = 0;
    g->n_nodes = 0;
    g->tn = 0;
    g->bitmap_bytes = 0;
    if (g->nhash) {
        memset(g->nhash, 0xff, (size_t)g->nhash_cap * sizeof *g->nhash);
    }
    if (g->shash) {
        memset(g->shash, 0xff, (size_t)g->shash_cap * sizeof *g->shash);
    }
    memset(g->tkey, 0xff, (size_t)g->tcap * sizeof *g->tkey);
}

// The start state: the closure of the root's alternatives.
static int32_t make_start(struct grammar *g)
{
    g->n_tmp = 0;
    g->stamp_gen++;
    if (node_get(g, -1, -1) != NODE_ACCEPT) { // node 0 is ACCEPT
        return -1;
    }
    const struct grammar_rules *r = g->r;
    for (int32_t a = r->rule_alt[r->root]; a < r->rule_alt[r->root + 1]; a++) {
        if (!closure(g, r->alts[a], -1, 0)) {
            return -1;
        }
    }
    return g->n_tmp ? state_from_tmp(g) : -1;
}

// Re-creates node `n` of the old tables (arrays opos/opar) in the fresh tables.
static int32_t renode(struct grammar *g, const int32_t *opos, const int32_t *opar, int32_t n)
{
    if (n == NODE_ACCEPT) {
        return NODE_ACCEPT;
    }
    int32_t parent = opar[n] < 0 ? -1 : renode(g, opos, opar, opar[n]);
    if (opar[n] >= 0 && parent < 0) {
        return -1;
    }
    return node_get(g, opos[n], parent);
}

// Drops every cached node, state, transition and bitmap except what the current state needs.
static bool tables_compact(struct grammar *g)
{
    int32_t nn = g->n_nodes;
    int32_t *opos = llem_malloc((size_t)nn * sizeof *opos);
    int32_t *opar = llem_malloc((size_t)nn * sizeof *opar);
    int32_t n = g->st[g->cur].n;
    int32_t *live = llem_malloc((size_t)n * sizeof *live);
    bool ok = opos && opar && live;
    if (ok) {
        memcpy(opos, g->npos, (size_t)nn * sizeof *opos);
        memcpy(opar, g->npar, (size_t)nn * sizeof *opar);
        memcpy(live, g->pool + g->st[g->cur].off, (size_t)n * sizeof *live);
        tables_clear(g);
        g->start = make_start(g);
        ok = g->start >= 0;
        for (int32_t i = 0; ok && i < n; i++) {
            int32_t m = renode(g, opos, opar, live[i]);
            live[i] = m;
            ok = m >= 0;
        }
        if (ok) {
            g->n_tmp = 0;
            g->stamp_gen++;
            for (int32_t i = 0; ok && i < n; i++) {
                ok = tmp_add(g, live[i]);
            }
            g->cur = ok ? state_from_tmp(g) : -1;
            ok = ok && g->cur >= 0;
        }
    }
    llem_free(opos);
    llem_free(opar);
    llem_free(live);
    return ok;
}

static bool maybe_compact(struct grammar *g)
{
    if (g->n_nodes < MAX_NODES / 2 && g->n_st < MAX_STATES / 2 && g->tn < MAX_TRANS / 2 &&
        g->bitmap_bytes < MAX_BITMAP_BYTES) {
        return true;
    }
    g->oom = false;
    return tables_compact(g);
}

enum llem_err grammar_new(struct grammar **out, const struct grammar_rules *r,
                          const struct grammar_vocab *v, struct llem_errbuf *eb)
{
    *out = NULL;
    struct grammar *g = llem_calloc(1, sizeof *g);
    if (!g) {
        return llem_errf(eb, LLEM_ENOMEM, "grammar: out of memory");
    }
    enum llem_err e = grammar_rules_clone(r, &g->r, eb);
    if (e) {
        llem_free(g);
        return e;
    }
    g->v = v;
    g->walk = llem_malloc((size_t)(v->max_depth + 2) * sizeof *g->walk);
    if (!g->walk || !thash_rebuild(g, 1 << 14)) {
        grammar_free(g);
        return llem_errf(eb, LLEM_ENOMEM, "grammar: out of memory");
    }
    g->start = g->cur = make_start(g);
    if (g->start < 0) {
        grammar_free(g);
        return llem_errf(eb, g->oom ? LLEM_ENOMEM : LLEM_EINVAL,
                         "grammar: cannot build the start state");
    }
    g->active = true;
    *out = g;
    return LLEM_OK;
}

void grammar_free(struct grammar *g)
{
    if (!g) {
        return;
    }
    for (int32_t i = 0; i < g->n_st; i++) {
        llem_free(g->st[i].allow);
    }
    grammar_rules_free(g->r);
    llem_free(g->npos);
    llem_free(g->npar);
    llem_free(g->ndist);
    llem_free(g->stamp);
    llem_free(g->nhash);
    llem_free(g->st);
    llem_free(g->shash);
    llem_free(g->pool);
    llem_free(g->tkey);
    llem_free(g->tval);
    llem_free(g->tmp);
    llem_free(g->walk);
    llem_free(g);
}

void grammar_reset(struct grammar *g)
{
    g->cur = g->start;
    g->finish = false;
    g->trig_match = 0;
    g->active = g->trig_len == 0;
}

enum llem_err grammar_set_trigger(struct grammar *g, const char *trigger, struct llem_errbuf *eb)
{
    size_t n = trigger ? strlen(trigger) : 0;
    if (n > TRIGGER_MAX) {
        return llem_errf(eb, LLEM_EINVAL, "grammar: trigger over %d bytes", TRIGGER_MAX);
    }
    memcpy(g->trig, trigger ? trigger : "", n);
    g->trig_len = n;
    g->trig_match = 0;
    g->active = n == 0;
    g->cur = g->start;
    return LLEM_OK;
}

void grammar_set_finish(struct grammar *g, bool on)
{
    g->finish = on;
}

int32_t grammar_min_remaining(const struct grammar *g)
{
    if (!g->active) {
        return g->st[g->start].dist + (int32_t)(g->trig_len - g->trig_match);
    }
    return g->st[g->cur].dist;
}

bool grammar_is_complete(const struct grammar *g)
{
    return !g->active || g->st[g->cur].complete;
}

bool grammar_is_finished(const struct grammar *g)
{
    return g->active && g->st[g->cur].n == 1 && g->st[g->cur].complete;
}

// Advances state q over s[0..n): the final state or -1.
static int32_t run_bytes(struct grammar *g, int32_t q, const char *s, size_t n)
{
    for (size_t i = 0; i < n && q >= 0; i++) {
        q = step(g, q, (uint8_t)s[i]);
    }
    return q;
}

// Advances the trigger matcher by one byte: the longest trigger prefix that ends the text.
static size_t trig_advance(const struct grammar *g, size_t m, char c)
{
    for (;;) {
        if (m < g->trig_len && g->trig[m] == c) {
            return m + 1;
        }
        if (m == 0) {
            return 0;
        }
        // fall back to the longest proper border of trig[0..m) (triggers are short)
        size_t k = m - 1;
        while (k > 0 && memcmp(g->trig, g->trig + m - k, k) != 0) {
            k--;
        }
        m = k;
    }
}

// Token check from state q in normal or finish mode.
static bool token_ok(struct grammar *g, int32_t q, int32_t id)
{
    const struct grammar_vocab *v = g->v;
    if (id < 0 || id >= v->n_vocab) {
        return false;
    }
    if (v->eog[id]) {
        return g->st[q].complete;
    }
    if (g->finish && g->st[q].complete) {
        return false;
    }
    size_t len = (size_t)(v->off[id + 1] - v->off[id]);
    if (len == 0) {
        return false;
    }
    int32_t s = run_bytes(g, q, v->bytes + v->off[id], len);
    return s >= 0 && (!g->finish || g->st[s].dist < g->st[q].dist);
}

// Before the trigger: a token is allowed unless it completes the trigger and its remaining
// bytes cannot start the grammar.
static bool token_ok_pending(struct grammar *g, int32_t id)
{
    const struct grammar_vocab *v = g->v;
    if (id < 0 || id >= v->n_vocab) {
        return false;
    }
    const char *p = v->bytes + v->off[id];
    size_t len = (size_t)(v->off[id + 1] - v->off[id]), m = g->trig_match;
    for (size_t i = 0; i < len; i++) {
        m = trig_advance(g, m, p[i]);
        if (m == g->trig_len) {
            return run_bytes(g, g->start, p + i + 1, len - i - 1) >= 0;
        }
    }
    return true;
}

bool grammar_allows(struct grammar *g, int32_t token)
{
    bool ok = g->active ? token_ok(g, g->cur, token) : token_ok_pending(g, token);
    g->oom = false;
    return ok;
}

// The allowed-token bitmap of state q (normal mode), cached on the state.
static const uint64_t *allow_bitmap(struct grammar *g, int32_t q)
{
    if (g->st[q].allow) {
        return g->st[q].allow;
    }
    const struct grammar_vocab *v = g->v;
    size_t words = ((size_t)v->n_vocab + 63) / 64;
    uint64_t *bits = llem_calloc(words, sizeof *bits);
    if (!bits) {
        g->oom = true;
        return NULL;
    }
    int32_t *walk = g->walk;
    walk[0] = q;
    for (int32_t i = 1; i < v->n_nodes;) {
        int32_t d = v->depth[i];
        int32_t s = step(g, walk[d - 1], v->byte[i]);
        if (s < 0) {
            if (g->oom) {
                llem_free(bits);
                return NULL;
            }
            i = v->end[i];
            continue;
        }
        walk[d] = s;
        for (int32_t t = v->tok_lo[i]; t < v->tok_lo[i + 1]; t++) {
            int32_t id = v->toks[t];
            bits[id >> 6] |= 1ull << (id & 63);
        }
        i++;
    }
    if (g->st[q].complete) {
        for (int32_t k = 0; k < v->n_eog; k++) {
            bits[v->eogs[k] >> 6] |= 1ull << (v->eogs[k] & 63);
        }
    }
    g->st[q].allow = bits;
    g->bitmap_bytes += words * sizeof *bits;
    return bits;
}

// Finish mode: tokens that bring completion strictly closer (uncached: used only near the end).
static bool filter_finish(struct grammar *g, float *logits)
{
    const struct grammar_vocab *v = g->v;
    int32_t q = g->cur, dq = g->st[q].dist;
    size_t words = ((size_t)v->n_vocab + 63) / 64;
    uint64_t *bits = llem_calloc(words, sizeof *bits);
    if (!bits) {
        return false;
    }
    if (g->st[q].complete) {
        for (int32_t k = 0; k < v->n_eog; k++) {
            bits[v->eogs[k] >> 6] |= 1ull << (v->eogs[k] & 63);
        }
    } else {
        int32_t *walk = g->walk;
        walk[0] = q;
        for (int32_t i = 1; i < v->n_nodes;) {
            int32_t d = v->depth[i];
            int32_t s = step(g, walk[d - 1], v->byte[i]);
            if (s < 0) {
                if (g->oom) {
                    llem_free(bits);
                    return false;
                }
                i = v->end[i];
                continue;
            }
            walk[d] = s;
            if (g->st[s].dist < dq) {
                for (int32_t t = v->tok_lo[i]; t < v->tok_lo[i + 1]; t++) {
                    int32_t id = v->toks[t];
                    bits[id >> 6] |= 1ull << (id & 63);
                }
            }
            i++;
        }
    }
    for (int32_t id = 0; id < v->n_vocab; id++) {
        if (!((bits[id >> 6] >> (id & 63)) & 1)) {
            logits[id] = -INFINITY;
        }
    }
    llem_free(bits);
    return true;
}

bool grammar_filter(void *user, float *logits, const int32_t *ids, int32_t n)
{
    struct grammar *g = user;
    if (!maybe_compact(g)) {
        return false;
    }
    if (ids) {
        for (int32_t i = 0; i < n; i++) {
            int32_t id = ids[i];
            if (id >= 0 && id < g->v->n_vocab && !grammar_allows(g, id)) {
                logits[id] = -INFINITY;
            }
        }
        return !g->oom;
    }
    if (!g->active) {
        // only tokens containing the trigger's last byte can complete it
        const struct grammar_vocab *v = g->v;
        char last = g->trig[g->trig_len - 1];
        for (int32_t id = 0; id < v->n_vocab; id++) {
            const char *p = v->bytes + v->off[id];
            size_t len = (size_t)(v->off[id + 1] - v->off[id]);
            if (len && memchr(p, last, len) && !token_ok_pending(g, id)) {
                logits[id] = -INFINITY;
            }
        }
        bool ok = !g->oom;
        g->oom = false;
        return ok;
    }
    if (g->finish) {
        bool ok = filter_finish(g, logits);
        g->oom = false;
        return ok;
    }
    const uint64_t *bits = allow_bitmap(g, g->cur);
    if (!bits) {
        g->oom = false;
        return false;
    }
    int32_t nv = g->v->n_vocab;
    for (int32_t w = 0; w * 64 < nv; w++) {
        uint64_t m = bits[w];
        if (m == UINT64_MAX) {
            continue;
        }
        int32_t hi = (w + 1) * 64 < nv ? (w + 1) * 64 : nv;
        for (int32_t id = w * 64; id < hi; id++) {
            if (!((m >> (id & 63)) & 1)) {
                logits[id] = -INFINITY;
            }
        }
    }
    return true;
}

static enum llem_err feed(struct grammar *g, const char *s, size_t n, bool eog,
                          struct llem_errbuf *eb)
{
    if (!maybe_compact(g)) {
        return llem_errf(eb, LLEM_ENOMEM, "grammar: out of memory");
    }
    if (!g->active) {
        size_t m = g->trig_match;
        for (size_t i = 0; i < n; i++) {
            m = trig_advance(g, m, s[i]);
            if (m == g->trig_len) {
                int32_t q = run_bytes(g, g->start, s + i + 1, n - i - 1);
                if (q < 0) {
                    bool oom = g->oom;
                    g->oom = false;
                    return llem_errf(eb, oom ? LLEM_ENOMEM : LLEM_EINVAL,
                                     "grammar: text after the trigger does not fit the grammar");
                }
                g->cur = q;
                g->active = true;
                return LLEM_OK;
            }
        }
        g->trig_match = m;
        return LLEM_OK;
    }
    if (eog) {
        if (!g->st[g->cur].complete) {
            return llem_errf(eb, LLEM_EINVAL, "grammar: end of generation before completion");
        }
        return LLEM_OK;
    }
    int32_t q = run_bytes(g, g->cur, s, n);
    if (q < 0) {
        bool oom = g->oom;
        g->oom = false;
        return llem_errf(eb, oom ? LLEM_ENOMEM : LLEM_EINVAL,
                         "grammar: the text does not fit the grammar");
    }
    g->cur = q;
    return LLEM_OK;
}

enum llem_err grammar_accept(struct grammar *g, int32_t token, struct llem_errbuf *eb)
{
    const struct grammar_vocab *v = g->v;
    if (token < 0 || token >= v->n_vocab) {
        return llem_errf(eb, LLEM_EINVAL, "grammar: token %d out of range", token);
    }
    size_t len = (size_t)(v->off[token + 1] - v->off[token]);
    if (g->active && !v->eog[token] && len == 0) {
        return llem_errf(eb, LLEM_EINVAL, "grammar: token %d has no text", token);
    }
    return feed(g, v->bytes + v->off[token], len, v->eog[token], eb);
}

enum llem_err grammar_accept_bytes(struct grammar *g, const char *s, size_t n,
                                   struct llem_errbuf *eb)
{
    return feed(g, s, n, false, eb);
}

enum llem_err grammar_sample(struct grammar *g, struct sampler *s, const float *logits,
                             int32_t *token, struct llem_errbuf *eb)
{
    sampler_set_filter(s, NULL, NULL);
    enum llem_err e = sampler_sample(s, logits, token, eb);
    if (e) {
        return e;
    }
    if (!grammar_allows(g, *token)) {
        sampler_set_filter(s, grammar_filter, g);
        e = sampler_sample(s, logits, token, eb);
        sampler_set_filter(s, NULL, NULL);
        if (e) {
            return e;
        }
    }
    return grammar_accept(g, *token, eb);
}
